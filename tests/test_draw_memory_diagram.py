"""The network view of the NTM and the DNC (chapter 8): the book's
architecture figure, laid out by tensorgraph.draw.memory_diagram from what
the module says of itself (`Module.diagram()` -> a `MemoryNetwork`); and the
modules view of an unrolled run, folded to one step.

The figures are read back from the DOT source as data (nodes, edges,
labels); sizes are checked against the modules' own parameters, and the
interface fields against the order the paper lists them in.
"""
import dataclasses
import os
import re
from pathlib import Path

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require
from tensorgraph import nn
from test_draw import attrs_of, labels, need, parse, svg_node_titles, svg_texts

try:
    import graphviz
except ImportError:
    graphviz = None

GOLDEN = Path(__file__).parent / "golden" / "memory"
T0, TM1 = "⟨t⟩", "⟨t−1⟩"
LOOP_COLOUR = "#2563eb"


@pytest.fixture(autouse=True)
def _need_graphviz():
    require(graphviz is not None, "the graphviz package is not installed "
                                  "(pip install 'tensorgraph[draw]')")


def dnc(**kw):
    args = dict(hidden_size=20, memory_size=12, word_size=5, num_reads=3, name="dnc", seed=0)
    return nn.DNC(6, 4, **{**args, **kw})


def ntm(**kw):
    args = dict(hidden_size=24, memory_size=10, word_size=7, name="ntm", seed=0)
    return nn.NTM(3, 2, **{**args, **kw})


def first_lines(source):
    """Node id -> the first line of its label."""
    return {k: lab.split("\n")[0] for k, lab in labels(source).items()}


def node(source, first_line):
    hits = [k for k, lab in first_lines(source).items() if lab == first_line]
    assert len(hits) == 1, (first_line, sorted(first_lines(source).values()))
    return hits[0]


def heading(source):
    return attrs_of(next(line for line in source.splitlines() if "labelloc" in line))["label"]


def edges(source):
    """The edges as drawn: tail -> head in the arrow's direction (a back edge,
    dir=back, is written head -> tail)."""
    return [(d, s, e) if e.get("dir") == "back" else (s, d, e) for s, d, e in parse(source)[1]]


def loops(source):
    """The dashed blue edges: what a step carries to the next."""
    return [(s, d, e) for s, d, e in edges(source)
            if e.get("color") == LOOP_COLOUR and e.get("style") == "dashed"]


# ---------------------------------------------------------------------------
# What the modules say of themselves

def test_the_dnc_describes_its_interface_in_the_papers_order_with_its_sizes():
    m = dnc()
    (part,) = m.diagram()
    assert isinstance(part, nn.MemoryNetwork)
    N, W, R = 12, 5, 3
    assert (part.memory_size, part.word_size, part.num_reads) == (N, W, R)
    # the controller as the LSTMCell describes itself: it takes [x; r] of 6 + R·W
    assert part.controller == m.controller.diagram("controller")[0]
    assert (part.controller.kind, part.controller.input_size) == ("lstm", 6 + R * W)
    # Graves et al. 2016, methods: ξ = [k^r; β^r; k^w; β^w; e; v; f; g^a; g^w; π]
    assert [(f.name, f.shape) for f in part.interface] == [
        ("read keys", (R, W)), ("read strengths", (R,)), ("write key", (W,)),
        ("write strength", (1,)), ("erase", (W,)), ("write vector", (W,)),
        ("free gates", (R,)), ("allocation gate", (1,)), ("write gate", (1,)),
        ("read modes", (R, 3))]
    # the fields fill the interface layer exactly (its weight is (out, hidden))
    assert sum(int(np.prod(f.shape)) for f in part.interface) == \
        m.interface.weight.shape[0] == part.interface_size == R * W + 3 * W + 5 * R + 3


def test_the_ntm_describes_two_heads_with_the_location_addressing():
    m = ntm(shift_range=2)
    (part,) = m.diagram()
    W = 7
    assert [(f.name, f.shape) for f in part.interface] == [
        ("write key", (W,)), ("write strength", (1,)), ("write gate", (1,)),
        ("write shift", (5,)), ("write sharpen", (1,)),
        ("read key", (W,)), ("read strength", (1,)), ("read gate", (1,)),
        ("read shift", (5,)), ("read sharpen", (1,)), ("erase", (W,)), ("add", (W,))]
    assert sum(int(np.prod(f.shape)) for f in part.interface) == m.interface.weight.shape[0]
    assert [s.name for s in part.write_head] == [
        "content weighting", "interpolated weighting", "shifted weighting", "write weighting",
        "erase and add"]
    assert [s.writes for s in part.write_head] == [False] * 4 + [True]
    assert part.read_head[-1].name == "read vector" and part.read_head[-1].shape == (W,)
    assert part.controller.input_size == 3 + W and part.num_reads == 1


# ---------------------------------------------------------------------------
# The figure

def test_dnc_figure_has_its_parts_with_the_modules_sizes():
    src = tg.draw(dnc(), view="network").source
    text = labels(src)
    N, W, R, H = 12, 5, 3, 20
    assert text[node(src, f"memory M{T0}")] == \
        f"memory M{T0}\nN × W = {N} × {W}\n{N} rows (locations)\nof {W} numbers (words)"
    assert text[node(src, "controller: LSTM")].endswith(f"[x{T0}; r{TM1}]: 6 + {R * W} → "
                                                         f"hidden {H}")
    assert text[node(src, f"interface ξ{T0} = W_ξ h{T0} + b_ξ")].endswith(f"{H} → 48")
    fields = {lab.split("\n")[0]: lab.split("\n")[1] for lab in text.values()
              if re.match(r"^\S+  (read|write|erase|free|allocation)", lab) and
              lab.count("\n") == 1}
    assert fields["kʳ  read keys"] == f"{R} × {W}, linear"
    assert fields["βʳ  read strengths"] == f"{R}, oneplus"
    assert fields["π  read modes"] == f"{R} × 3, softmax"
    assert fields["f  free gates"] == f"{R}, σ"
    assert fields["gᵃ  allocation gate"] == "1, σ"
    for first, size in ((f"u{T0}  usage", f"({N})"), (f"a{T0}  allocation", f"({N})"),
                        (f"L{T0}  temporal link", f"({N} × {N})"),
                        (f"p{T0}  precedence", f"({N})"),
                        (f"M{T0}  erase and add", f"({N} × {W})"),
                        (f"wʳ{T0}  read weighting", f"({N})"),
                        (f"r{T0}  read vector", f"({W})")):
        assert text[node(src, first)].split("\n")[1] == size, first
    assert text[node(src, f"output layer  y{T0} = W_y [h{T0}; r{T0}] + b_y")].endswith(
        f"{H} + {R * W} → 4")
    assert f"one of {R}" in src      # the read head cluster: one drawn for the R alike
    # content addressing compares the keys with the rows of M⟨t−1⟩ (write) and
    # M⟨t⟩ (read, after the write); the read vector is M⟨t⟩ᵀ wʳ
    mem = node(src, f"memory M{T0}")
    reads = {(first_lines(src)[d], e.get("label")) for s, d, e in edges(src)
             if s == mem and d != mem}
    assert reads == {(f"cʷ{T0}  write content weighting", f"M{TM1}"),
                     (f"M{T0}  erase and add", f"M{TM1}"),
                     (f"cʳ{T0}  read content weighting", f"M{T0}"),
                     (f"r{T0}  read vector", f"M{T0}")}
    head = heading(src)
    assert "dnc: Differentiable Neural Computer" in head
    assert f"N × W = {N} × {W}" in head and f"{R} read heads" in head


def test_the_interface_column_keeps_the_order_the_vector_is_cut_in():
    src = tg.draw(dnc(), view="network").source
    part = dnc().diagram()[0]
    ids = {f"{f.symbol}  {f.name}": node(src, f"{f.symbol}  {f.name}") for f in part.interface}
    # chained by invisible edges in one rank: Graphviz keeps that order
    chain = re.findall(r"^\s*(\w+) -> (\w+) \[style=invis\]$", src, re.M)
    order = ["xi_head"]
    while True:
        nxt = [b for a, b in chain if a == order[-1] and b.startswith("xi")]
        if not nxt:
            break
        order.append(nxt[0])
    assert order[1:] == list(ids.values())


def test_every_field_feeds_a_stage_of_its_own_head_and_the_memory_sits_between_the_heads():
    for m in (dnc(), ntm()):
        part = m.diagram()[0]
        src = tg.draw(m, view="network").source
        drawn = edges(src)
        by_first = {v: k for k, v in first_lines(src).items()}
        head_of = {by_first[f"{s.symbol}{T0}  {s.name}"]: h for h, stages in
                   (("write", part.write_head), ("read", part.read_head)) for s in stages}
        for f in part.interface:
            fid = by_first[f"{f.symbol}  {f.name}"]
            targets = [d for s, d, _ in drawn if s == fid]
            assert targets and all(head_of[d] == f.head for d in targets), f.name
        mem = by_first[f"memory M{T0}"]
        writer = next(s for s in part.write_head if s.writes)
        into = [(s, e) for s, d, e in drawn if d == mem and s != mem]
        assert [s for s, _ in into] == [by_first[f"M{T0}  {writer.name}"]]
        # the read heads read M⟨t⟩ (solid); the write head addresses M⟨t−1⟩ (a loop)
        out = {(d, e.get("label"), e.get("style")) for s, d, e in drawn if s == mem and d != mem}
        assert {(head_of[d], lab, style) for d, lab, style in out} == {
            ("read", f"M{T0}", None), ("write", f"M{TM1}", "dashed")}


def test_ntm_and_dnc_differ_as_their_papers_do():
    d_src, n_src = (tg.draw(m, view="network").source for m in (dnc(), ntm(shift_range=1)))
    d_text, n_text = set(first_lines(d_src).values()), set(first_lines(n_src).values())
    dnc_only = {f"u{T0}  usage", f"a{T0}  allocation", f"L{T0}  temporal link",
                f"p{T0}  precedence", "f  free gates", "gᵃ  allocation gate", "π  read modes",
                f"f, b{T0}  forward and backward weightings"}
    ntm_only = {f"w̃{T0}  shifted weighting", f"wᵍ{T0}  interpolated weighting",
                "sʷ  write shift", "γʷ  write sharpen", "gʳ  read gate"}
    assert dnc_only <= d_text and not dnc_only & n_text
    assert ntm_only <= n_text and not ntm_only & d_text
    assert "Neural Turing Machine" in heading(n_src) and "1 read head," in heading(n_src)
    # the shift distribution has 2·shift_range + 1 entries
    assert "3, softmax" in labels(n_src)[node(n_src, "sʷ  write shift")]
    wide = tg.draw(ntm(shift_range=2), view="network").source
    assert "5, softmax" in labels(wide)[node(wide, "sʷ  write shift")]
    assert "k = −2..2" in labels(wide)[node(wide, f"w̃{T0}  shifted weighting")]


def test_the_state_carried_to_the_next_step_is_drawn_as_labelled_loops():
    src = tg.draw(dnc(), view="network").source
    by_first = {v: k for k, v in first_lines(src).items()}
    text = labels(src)
    got = {(text[s].split("\n")[0], text[d].split("\n")[0], e.get("label", ""))
           for s, d, e in loops(src)}
    r, r_prev = f"r{T0}  read vector", f"r{TM1}  words read"
    assert (r, r_prev, f"r{T0} → r{TM1}\nnext step") in got
    assert (f"memory M{T0}", f"memory M{T0}", f"M{T0} → M{TM1}") in got
    assert ("controller: LSTM", "controller: LSTM", f"h{TM1}, c{TM1}") in got
    for a, b, lab in ((f"u{T0}  usage", f"u{T0}  usage", f"u{TM1}"),
                      (f"wʷ{T0}  write weighting", f"u{T0}  usage", f"wʷ{TM1}"),
                      (f"wʳ{T0}  read weighting", f"u{T0}  usage", f"wʳ{TM1}"),
                      (f"L{T0}  temporal link", f"L{T0}  temporal link", f"L{TM1}"),
                      (f"p{T0}  precedence", f"L{T0}  temporal link", f"p{TM1}"),
                      (f"wʳ{T0}  read weighting", f"f, b{T0}  forward and backward weightings",
                       f"wʳ{TM1}")):
        assert (a, b, lab) in got, (a, b, lab)
    assert (by_first[r_prev], "controller") in {(s, d) for s, d, _ in edges(src)}
    # NTM: the heads' weightings feed their interpolation at the next step
    n_src = tg.draw(ntm(), view="network").source
    n_text = labels(n_src)
    n_got = {(n_text[s].split("\n")[0], n_text[d].split("\n")[0], e.get("label", ""))
             for s, d, e in loops(n_src)}
    assert (f"wʷ{T0}  write weighting", f"wᵍ{T0}  interpolated weighting", f"wʷ{TM1}") in n_got
    assert (f"wʳ{T0}  read weighting", f"wᵍ{T0}  read interpolated weighting",
            f"wʳ{TM1}") in n_got


def test_a_memory_network_among_other_modules_is_one_box_with_its_sizes():
    net = nn.Sequential(nn.Linear(4, 6), dnc(name=None))
    text = list(labels(tg.draw(net, view="network").source).values())
    assert text[0].startswith("layers.0: 4 → 6")
    assert text[1] == ("layers.1: Differentiable Neural Computer\nLSTM controller, hidden 20\n"
                       "memory N × W = 12 × 5, 3 read heads\ninput 6 → output 4")


@pytest.mark.backend
@pytest.mark.parametrize("backend", ["dot", pytest.param("wasm", marks=pytest.mark.slow)])
def test_the_figure_renders_to_svg(backend):   # WebAssembly: ~3 s, its module compiled
    need(backend)
    for m in (dnc(), ntm()):
        d = tg.draw(m, view="network", backend=backend)
        svg = d.svg()
        assert len(svg_node_titles(svg)) == len(parse(d.source)[0])    # every node laid out
        texts = svg_texts(svg)
        assert f"memory M{T0}" in texts and "controller: LSTM" in texts
        assert f"N × W = {m.memory_size} × {m.word_size}" in texts


GOLDEN_CASES = {"ntm": lambda: ntm(shift_range=1), "dnc": dnc}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_figure_dot_is_unchanged(case):
    """Regenerate for an intended change only:
    TG_REGEN_GOLDEN=1 python -m pytest tests/test_draw_memory_diagram.py -k dot_is_unchanged"""
    source = tg.draw(GOLDEN_CASES[case](), view="network").source
    path = GOLDEN / f"{case}.dot"
    if os.environ.get("TG_REGEN_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(source, encoding="utf-8")
    assert source == path.read_text(encoding="utf-8"), f"figure of {case} changed"


# ---------------------------------------------------------------------------
# Bad requests

def _with(**changes):
    """A DNC subclass that describes itself wrongly: its part with `changes`."""
    class Described(nn.DNC):
        def diagram(self, name=""):
            return [dataclasses.replace(super().diagram(name)[0], **changes)]
    return Described(6, 4, hidden_size=20, memory_size=12, word_size=5, num_reads=3,
                     name="dnc", seed=0)


def test_a_part_that_contradicts_itself_is_refused_naming_what_is_wrong():
    m = dnc()
    part = m.diagram()[0]
    short = _with(interface=part.interface[:-1])
    with pytest.raises(ValueError, match=r"Differentiable Neural Computer 'dnc': its interface "
                                         r"fields hold 39 numbers \(read keys 3 × 5, .*\) but "
                                         r"the interface layer gives 48"):
        tg.draw(short, view="network")
    bad_stage = dataclasses.replace(part.write_head[1], inputs=("usage", "usagee"))
    typo = _with(write_head=(part.write_head[0], bad_stage) + part.write_head[2:])
    with pytest.raises(ValueError, match=r"stage 'allocation' uses 'usagee', which is neither an "
                                         r"interface field nor a stage"):
        tg.draw(typo, view="network")
    bad_prev = dataclasses.replace(part.write_head[0], previous=("usage", "free gates"))
    with pytest.raises(ValueError, match=r"stage 'usage' uses 'free gates' of the previous step, "
                                         r"which is not a stage"):
        tg.draw(_with(write_head=(bad_prev,) + part.write_head[1:]), view="network")
    fields = (dataclasses.replace(part.interface[0], head="both"),) + part.interface[1:]
    with pytest.raises(ValueError, match=r"interface field 'read keys' is used by head 'both'; "
                                         r"expected 'write' or 'read'"):
        tg.draw(_with(interface=fields), view="network")
    twice = (dataclasses.replace(part.interface[0], name="erase"),) + part.interface[1:]
    with pytest.raises(ValueError, match=r"the name 'erase' is given to more than one field"):
        tg.draw(_with(interface=twice), view="network")
    no_writer = tuple(dataclasses.replace(s, writes=False) for s in part.write_head)
    with pytest.raises(ValueError, match=r"exactly one write-head stage must write the memory "
                                         r"\(writes=True\), got none"):
        tg.draw(_with(write_head=no_writer), view="network")


def test_options_of_other_views_are_refused_as_for_any_network():
    with pytest.raises(ValueError, match=r"draw\(view='network'\): cap must be an int >= 3"):
        tg.draw(ntm(), view="network", cap=2)
    with pytest.raises(TypeError, match=r"draw\(view='modules'\) of a module needs input="):
        tg.draw(ntm(), view="modules")


# ---------------------------------------------------------------------------
# The modules view of an unrolled run: folded to one step

def clusters(source):
    return [attrs_of(line)["label"] for line in source.splitlines()
            if "labeljust=l" in line and "label=" in line]


def _seq(T, B=2, D=3):
    return np.random.default_rng(0).standard_normal((T, B, D)).astype(np.float32)


def test_an_unrolled_ntm_folds_to_one_step_with_a_loop_times_T():
    m = nn.NTM(3, 2, hidden_size=4, memory_size=5, word_size=2, name="ntm", seed=0)
    d = tg.draw(m, view="modules", input=_seq(6))
    steps = [c for c in clusters(d.source) if "time step" in c]
    assert steps == ["one time step of 6 (t0 … t5), drawn once"]
    assert not any(re.fullmatch(r"t\d+", c) for c in clusters(d.source))
    state = [e for _, _, e in parse(d.source)[1]
             if e.get("tooltip") == "the state carried to the next time step"]
    assert [e["label"].strip() for e in state if "label" in e] == ["next step ×6"]
    # the memory, the read vector, h and c and both weightings cross the steps
    assert len(state) >= 6
    assert any("6 time steps" in n for n in d.notes)


def test_a_dnc_unrolled_k_steps_draws_k_and_the_rest_as_one_block():
    m = nn.DNC(3, 2, hidden_size=4, memory_size=4, word_size=2, name="dnc", seed=0)
    d = tg.draw(m, view="modules", input=_seq(7), unroll=1)
    names = clusters(d.source)
    assert "t0 (step 1 of 7)" in names and not any(c.startswith("t1 (") for c in names)
    blocks = [lab for lab in labels(d.source).values() if lab.startswith("… 6 more steps")]
    assert len(blocks) == 1 and "(t1 … t6)" in blocks[0]
    folded = tg.draw(m, view="modules", input=_seq(7))
    assert "one time step of 7 (t0 … t6), drawn once" in clusters(folded.source)
    state = [e for _, _, e in parse(folded.source)[1]
             if e.get("tooltip") == "the state carried to the next time step"]
    assert [e["label"].strip() for e in state if "label" in e] == ["next step ×7"]
    # one allocation (its exclusive cumprod) drawn for the 7 steps
    assert sum(lab.split("\n")[0] == "cumprod" for lab in labels(folded.source).values()) == 1
