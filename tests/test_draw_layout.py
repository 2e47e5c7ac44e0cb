"""How the op views look once laid out: measured on the SVG that each
backend writes (positions, not only the DOT text)."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph.draw import DrawWarning, backends
from test_draw import SVG, need, svg_root

BACKENDS = ["dot", "wasm"]

# Layout geometry measured on rendered SVGs from both backends: seconds; CI runs it
# (make test-slow), make test leaves it out.
pytestmark = pytest.mark.slow


def chain(steps: int, shared: bool):
    """y = tanh(y * w + 0.1), `steps` times: with one shared parameter w
    (issue 8, finding 1) or with a constant in its place."""
    x = tg.tensor(np.ones(3), requires_grad=True, name="x")
    w = tg.tensor(np.full(3, 0.5), requires_grad=True, name="w")
    y = x
    for _ in range(steps):
        y = tg.tanh(y * (w if shared else 0.5) + 0.1)
    return y.sum()


def node_centres(svg: str, first_line: str) -> list[float]:
    """The x of the first text line of every node whose label starts with `first_line`."""
    xs = []
    for g in svg_root(svg).iter(SVG + "g"):
        if g.get("class") != "node":
            continue
        texts = g.findall(SVG + "text")
        if texts and (texts[0].text or "") == first_line:
            xs.append(float(texts[0].get("x")))
    return xs


def width_pt(svg: str) -> float:
    return float(re.match(r"([\d.]+)pt", svg_root(svg).get("width")).group(1))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shared", [True, False], ids=["shared-w", "constant"])
def test_a_long_chain_is_drawn_straight_not_as_a_staircase(backend: str, shared: bool) -> None:
    # Each step's op has one input from the chain and one from the side (a
    # copy of w, a constant); dot centred every op between its two inputs, so
    # the chain drifted sideways half a node per step: the 50-step chain was a
    # diagonal 57 inches wide. The chain must stay one column.
    need(backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DrawWarning)
        svg = tg.draw(chain(50, shared), backend=backend).svg()
    tanh = node_centres(svg, "tanh")
    assert len(tanh) == 50
    assert max(tanh) - min(tanh) < 30, (min(tanh), max(tanh))
    assert width_pt(svg) < 500, width_pt(svg)


def test_an_output_computed_under_no_grad_says_why_nothing_is_drawn() -> None:
    # An inference pass under no_grad records no ops: the output is a leaf.
    # Drawn as one box called "input" with no word, a new user is left to
    # guess; the heading must say that no ops were recorded, and why.
    net = tg.nn.Sequential(tg.nn.Linear(4, 3), tg.nn.ReLU(), tg.nn.Linear(3, 2))
    x = tg.tensor(np.ones((5, 4), dtype=np.float32), name="x")
    with tg.no_grad():
        y = net(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # an explanation, not a warning
        d = tg.draw(y)
    assert len(d.notes) == 1
    note = d.notes[0]
    assert "no ops were recorded" in note and "no_grad" in note and "requires_grad" in note
    assert "no ops were recorded" in " ".join(d.source.split())
    # a graph with ops says nothing of the kind
    assert not any("no ops" in n for n in tg.draw(net(x).sum()).notes)


def deep(layers: int):
    return tg.nn.Sequential(*[tg.nn.Linear(16, 16) for _ in range(layers)])


@pytest.mark.parametrize("backend", BACKENDS)
def test_network_view_keeps_to_the_node_budget(backend: str) -> None:
    # The network view ignored max_nodes: a 1000-layer network gave 11,020
    # nodes and 91,027 edges, and `dot` ran into the time limit, whose message
    # then advised a max_nodes that the view did not honour.
    need(backend)
    import time
    from test_draw import parse
    with pytest.warns(DrawWarning, match=r"max_nodes=400"):
        d = tg.draw(deep(1000), backend=backend)
    nodes, edges = parse(d.source)
    assert len(nodes) <= 400
    gap = [v["label"] for k, v in nodes.items() if "more layers" in v["label"]]
    assert len(gap) == 1 and gap[0].startswith("⋯ ")
    # the first layers and the output layer are drawn, the ones between counted
    hidden = int(re.search(r"(\d+) more layers", gap[0]).group(1))
    headers = [v["label"] for k, v in nodes.items() if re.fullmatch(r"h\d+", k)]
    assert "output (16)\nlinear" in headers and "hidden 1 (16)\nlinear" in headers
    assert len(headers) - 1 + hidden == 1000          # input column + drawn layers + hidden
    t0 = time.perf_counter()
    d.svg()
    assert time.perf_counter() - t0 < 10
    # the budget is the user's: None draws every layer, a larger one more of them
    assert len(parse(tg.draw(deep(30), max_nodes=None).source)[0]) > 300
    with pytest.warns(DrawWarning):
        more = tg.draw(deep(1000), max_nodes=800)
    assert 400 < len(parse(more.source)[0]) <= 800
    # a network under the budget is drawn whole, silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not any("more layers" in v["label"]
                       for v in parse(tg.draw(deep(5)).source)[0].values())


def test_a_deep_networks_heading_is_not_cut_mid_way() -> None:
    # The sizes "16 → 16 → ..." of 300 layers were clipped at 200 characters,
    # ending the heading in a dangling arrow.
    from test_draw import parse
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DrawWarning)
        d = tg.draw(deep(300))
    heading = re.search(r'^\s*graph \[.*label="([^"]*)"', d.source, re.M).group(1)
    lines = heading.split("\\n")      # wrapped at spaces: joined back with one
    assert " ".join(lines[:-1]) == \
        "16 → 16 → 16 → 16 → 16 → 16 → … (300 layers) … → 16 → 16 → 16 → 16"
    assert lines[-1].startswith("edge width")
    assert parse(tg.draw(deep(3)).source) and \
        "16 → 16 → 16 → 16\\n" in tg.draw(deep(3)).source


class Recurrent(tg.nn.Module):
    """One cell called once per step, as an unrolled recurrent network."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.cell = tg.nn.Linear(4, 4, seed=0)

    def forward(self, x):
        h = x
        for _ in range(self.steps):
            h = tg.tanh(self.cell(h))
        return h


def is_acyclic(edges) -> bool:
    succ: dict[str, list[str]] = {}
    indeg: dict[str, int] = {}
    for s, d, _ in edges:
        succ.setdefault(s, []).append(d)
        indeg[d] = indeg.get(d, 0) + 1
        indeg.setdefault(s, 0)
    ready = [n for n, k in indeg.items() if k == 0]
    seen = 0
    while ready:
        n = ready.pop()
        seen += 1
        for d in succ.get(n, ()):
            indeg[d] -= 1
            if indeg[d] == 0:
                ready.append(d)
    return seen == len(indeg)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_module_called_at_every_step_collapses_to_one_block_per_call(backend: str) -> None:
    # depth=1 collapsed all 50 calls of the cell into ONE block, with an edge
    # into every tanh and back: a cycle that dot drew as a row of 50 tanh
    # boxes 48 inches wide under one block whose in/out lists were cut off.
    need(backend)
    from test_draw import parse
    x = tg.tensor(np.ones((2, 4), dtype=np.float32), name="x")
    d = tg.draw(Recurrent(50), view="modules", input=x, depth=1, backend=backend)
    nodes, edges = parse(d.source)
    blocks = [v["label"] for v in nodes.values() if v["label"].startswith("cell: Linear")]
    assert len(blocks) == 50
    assert sorted(b.split("\n")[-1] for b in blocks) == sorted(
        f"call {k} of 50" for k in range(1, 51))
    assert all("\nin (4, 4), (2, 4), (4,)\nout (2, 4)\n3 ops\n" in b for b in blocks)
    assert is_acyclic(edges)
    # the cell's parameters are drawn once, and shared by reference at each call
    assert any(v["label"].startswith("cell.weight\n(4, 4)\nused 50×") for v in nodes.values())
    svg = d.svg()
    tanh = node_centres(svg, "tanh")
    assert len(tanh) == 50 and width_pt(svg) < 600, width_pt(svg)
    # a module called once is one block as before
    net = tg.nn.Sequential(tg.nn.Linear(4, 4), tg.nn.Tanh())
    nodes, _ = parse(tg.draw(net, view="modules", input=x, depth=2).source)
    assert not any("call" in v["label"] for v in nodes.values())


def test_a_network_views_timeout_names_that_views_options() -> None:
    # The time limit's advice named depth= and view='modules', which do
    # nothing for a network drawing; its own options are max_nodes and cap.
    need("dot")
    d = tg.draw(deep(300), max_nodes=None, cap=16, timeout=0.3, backend="dot")
    with pytest.raises(backends.LayoutTimeout) as info:
        d.svg()
    message = str(info.value)
    assert "did not finish the layout within 0.3 s" in message and "nodes and" in message
    assert "max_nodes=" in message and "cap=" in message
    assert "depth" not in message and "view='modules'" not in message


def test_backward_view_of_a_module_says_what_to_draw_instead() -> None:
    # draw(net, view="backward", input=x) traced a fresh output nobody had
    # run backward on, then told the user to call .backward on "the output",
    # which they never had in hand.
    net = tg.nn.Sequential(tg.nn.Linear(3, 2), tg.nn.ReLU())
    x = tg.tensor(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"draw\(view='backward'\) of a module: .*"
                       r"loss\.backward\(retain_graph=True\).*tg\.draw\(loss, "
                       r"view='backward', module=net\)"):
        tg.draw(net, view="backward", input=x)
    loss = net(x).sum()
    loss.backward(retain_graph=True)
    assert "grad" in tg.draw(loss, view="backward", module=net).source


def test_alternating_layers_and_activations_are_drawn_once_with_a_count() -> None:
    # PyTorch's Sequential(Linear, Tanh, Linear, Tanh, ...) alternates two
    # kinds of block, so "a chain of identical blocks drawn once with ×N"
    # never applied: 100 pairs were 200 boxes in a 20,000-pixel column.
    from test_draw import parse
    x = tg.tensor(np.ones((2, 4), dtype=np.float32), name="x")
    net = tg.nn.Sequential(*[m for _ in range(6) for m in (tg.nn.Linear(4, 4), tg.nn.Tanh())])
    nodes, edges = parse(tg.draw(net, view="modules", input=x, depth=2).source)
    labels = [v["label"] for v in nodes.values()]
    merged = [lab for lab in labels if "×" in lab]
    assert len(merged) == 1
    assert merged[0].split("\n")[:2] == ["0 … 11  ×6: Linear, Tanh",
                                         "6 identical blocks of 4 ops"]
    assert "in (2, 4)" in merged[0] and "out (2, 4)" in merged[0]
    assert len(nodes) == 2                  # x and the ×6 block (the output)
    # two pairs and a last layer (a short MLP) stay as drawn before
    short = tg.nn.Sequential(tg.nn.Linear(4, 4), tg.nn.ReLU(), tg.nn.Linear(4, 4), tg.nn.ReLU(),
                             tg.nn.Linear(4, 2))
    nodes, _ = parse(tg.draw(short, view="modules", input=x, depth=2).source)
    assert not any("×" in v["label"] for v in nodes.values()) and len(nodes) == 6
    # a trailing layer after the repeats is kept apart
    tail = tg.nn.Sequential(*[m for _ in range(3) for m in (tg.nn.Linear(4, 4), tg.nn.ReLU())],
                            tg.nn.Linear(4, 2))
    nodes, _ = parse(tg.draw(tail, view="modules", input=x, depth=2).source)
    labels = sorted(v["label"].split("\n")[0] for v in nodes.values())
    assert labels == ["0 … 5  ×3: Linear, ReLU", "6: Linear", "x"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("view", ["ops", "modules"])
def test_an_mlp_is_drawn_with_a_straight_spine(backend: str, view: str) -> None:
    # Each Linear's matmul has two op inputs, the previous activation and the
    # transpose of its weight; weighing both alike, dot centred the matmul
    # between them and the network drifted sideways layer by layer.
    need(backend)
    net = tg.nn.Sequential(*[m for _ in range(5) for m in (tg.nn.Linear(4, 4), tg.nn.ReLU())])
    x = tg.tensor(np.ones((2, 4), dtype=np.float32), name="x")
    svg = tg.draw(net, view=view, input=x, backend=backend).svg()
    relu = node_centres(svg, "relu")
    assert len(relu) == 5
    # before: 144 pt (ops) and 528 pt (modules: the boxes stood in a staircase)
    assert max(relu) - min(relu) < 60, relu
