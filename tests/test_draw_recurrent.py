"""Drawing sequences: the modules view folds the time steps of a recurrent
network (one step drawn, a loop edge "×T"; or the first k steps with
unroll=k), a module returning a tuple draws every tensor in it, and the
network view draws RNN/LSTM/GRU layers and cells as the book's cell diagram.
"""
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require
from tensorgraph import nn
from test_draw import any_backend, attrs_of, labels, parse, svg_node_titles

try:
    import graphviz
except ImportError:
    graphviz = None

GOLDEN = Path(__file__).parent / "golden" / "recurrent"


@pytest.fixture(autouse=True)
def _need_graphviz():
    require(graphviz is not None, "the graphviz package is not installed "
                                  "(pip install 'tensorgraph[draw]')")


def seq(T, B=2, D=3, seed=0):
    return tg.tensor(np.random.default_rng(seed).standard_normal((T, B, D)).astype(np.float32))


def clusters(source):
    """The label of every cluster (module or time-step box), in order."""
    return [attrs_of(line)["label"] for line in source.splitlines()
            if "labeljust=l" in line and "label=" in line]


def op_count(source, op):
    return sum(1 for lab in labels(source).values() if lab.split("\n")[0] == op)


def loop_labels(source):
    return [e.get("label", "").strip() for _, _, e in parse(source)[1]
            if e.get("tooltip") == "the state carried to the next time step"]


def node_count(source):
    return len(parse(source)[0])


# ---------------------------------------------------------------------------
# Folding the time steps in the modules view

def test_lstm_is_folded_to_one_step_with_a_loop_labelled_with_the_count():
    lstm = nn.LSTM(3, 5, name="encoder", seed=0)
    d = tg.draw(lstm, view="modules", input=seq(7))
    steps = [c for c in clusters(d.source) if "time step" in c]
    assert steps == ["one time step of 7 (t0 … t6), drawn once"]
    assert not any(re.fullmatch(r"t\d+", c) for c in clusters(d.source))
    assert op_count(d.source, "lstm_cell") == 1        # the cell once, not 7 times
    loops = loop_labels(d.source)
    assert loops.count("next step ×7") == 1 and len(loops) >= 1
    assert any("7 time steps" in n for n in d.notes)


def test_unroll_k_draws_k_steps_and_the_rest_as_one_block():
    lstm = nn.LSTM(3, 5, name="encoder", seed=0)
    d = tg.draw(lstm, view="modules", input=seq(35), unroll=3)
    names = clusters(d.source)
    for k in range(3):
        assert f"t{k} (step {k + 1} of 35)" in names
    assert not any("t3 (" in c for c in names)
    assert op_count(d.source, "lstm_cell") == 3
    blocks = [lab for lab in labels(d.source).values() if lab.startswith("… 32 more steps")]
    assert blocks == [blocks[0]] and "(t3 … t34)" in blocks[0]
    assert blocks[0].endswith("each step: 4 ops")    # h slice, h product, add, lstm_cell
    assert loop_labels(d.source) == []
    # the block takes the third step's state and gives the stacked outputs
    nodes, edges = parse(d.source)
    block = next(k for k, v in nodes.items() if v.get("label", "").startswith("… 32 more"))
    assert any(dst == block and nodes[src]["label"].startswith("lstm_cell")
               for src, dst, _ in edges)
    assert any(src == block and nodes[dst]["label"].startswith("stack")
               for src, dst, _ in edges)


def test_unroll_true_draws_every_step_and_bad_values_are_refused():
    rnn = nn.RNN(3, 4, seed=0)
    x = seq(5)
    d = tg.draw(rnn, view="modules", input=x, unroll=True)
    assert op_count(d.source, "tanh") == 5
    assert loop_labels(d.source) == []
    assert op_count(tg.draw(rnn, view="modules", input=x, unroll=10).source, "tanh") == 5
    for bad in (0, -2, 1.5, "all"):
        with pytest.raises(ValueError, match="unroll must be None .* positive int"):
            tg.draw(rnn, view="modules", input=x, unroll=bad)


def test_a_thousand_steps_draw_in_a_bounded_number_of_nodes():
    lstm = nn.LSTM(3, 4, seed=0)
    x = seq(1000, B=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", tg.draw.DrawWarning)   # nothing cut to fit the budget
        folded = tg.draw(lstm, view="modules", input=x)
        unrolled = tg.draw(lstm, view="modules", input=x, unroll=3)
    short = tg.draw(lstm, view="modules", input=seq(8, B=1))
    # the 1,000 steps cost no more than 8 do, but the halving slices of the input (log T)
    assert node_count(folded.source) <= node_count(short.source) + 2 * 10
    assert node_count(folded.source) < 60
    assert node_count(unrolled.source) < 90
    assert loop_labels(folded.source).count("next step ×1000") == 1
    assert op_count(unrolled.source, "lstm_cell") == 3


def test_bidirectional_two_layers_fold_each_direction_and_layer():
    gru = nn.GRU(3, 4, num_layers=2, bidirectional=True, name="enc", seed=0)
    d = tg.draw(gru, view="modules", input=seq(6))
    steps = [c for c in clusters(d.source) if c.startswith("one time step")]
    assert len(steps) == 4                         # l0, l0_reverse, l1, l1_reverse
    assert loop_labels(d.source).count("next step ×6") == 4
    assert op_count(d.source, "gru_cell") == 4
    assert sum("enc/l0_reverse: 6 time steps" in n for n in d.notes) == 1


class Seq2Seq(nn.Module):
    """An LSTM encoder and a decoder loop over an LSTMCell (the same cell at
    every step: its parameters are shared) with dot-product attention."""

    def __init__(self, steps=5):
        super().__init__(name="s2s")
        self.steps = steps
        self.encoder = nn.LSTM(3, 4, seed=0)
        self.cell = nn.LSTMCell(4, 4, seed=1)
        self.out = nn.Linear(4, 3, seed=2)

    def forward(self, x):
        enc, (h, c) = self.encoder(x)
        h, c, y = h[0], c[0], enc[-1]
        ys = []
        for t in range(self.steps):
            with tg.name_scope(f"t{t}"):
                w = tg.softmax((enc * h).sum(-1), axis=0)      # attention over the inputs
                ctx = (w[..., None] * enc).sum(0)
                h, c = self.cell(ctx + y, (h, c))
                y = h
                ys.append(self.out(h))
        return tg.stack(ys)


def test_seq2seq_folds_the_encoder_and_the_decoder_loop_with_attention_inside():
    net = Seq2Seq(steps=5)
    d = tg.draw(net, view="modules", input=seq(6))
    loops = loop_labels(d.source)
    assert loops.count("next step ×6") == 1 and loops.count("next step ×5") == 1
    assert op_count(d.source, "softmax") == 1            # the attention of the drawn step
    assert op_count(d.source, "lstm_cell") == 2          # encoder cell and decoder cell
    # the shared cell's parameters are drawn once each, outside the steps
    weights = [lab for lab in labels(d.source).values() if lab.startswith("weight_hh\n")]
    assert len(weights) == 1
    unrolled = tg.draw(net, view="modules", input=seq(6), unroll=2)
    assert op_count(unrolled.source, "softmax") == 2
    assert op_count(tg.draw(net, view="modules", input=seq(6), unroll=True).source,
                    "softmax") == 5


def test_modules_named_like_steps_are_not_steps():
    class Two(nn.Module):
        def __init__(self):
            super().__init__(name="net")
            self.t0 = nn.Linear(3, 3, seed=0)
            self.t1 = nn.Linear(3, 3, seed=1)

        def forward(self, x):
            return self.t1(self.t0(x))

    d = tg.draw(Two(), view="modules", input=tg.tensor(np.ones((2, 3), np.float32)))
    assert op_count(d.source, "matmul") == 2
    assert loop_labels(d.source) == []
    assert not any("time step" in c for c in clusters(d.source))


def test_a_loop_without_step_scopes_is_drawn_as_before():
    cell = nn.RNNCell(3, 4, seed=0)
    h = None
    for t in range(4):          # no name_scope per step: nothing tells the steps apart
        h = cell(seq(1, B=2)[0], h)
    d = tg.draw(h, view="modules", module=cell)
    assert op_count(d.source, "tanh") == 4
    assert loop_labels(d.source) == []


def test_depth_collapsing_the_layer_keeps_the_old_picture():
    lstm = nn.LSTM(3, 5, name="encoder", seed=0)
    d = tg.draw(lstm, view="modules", input=seq(7), depth=0)
    assert loop_labels(d.source) == []
    block = next(lab for lab in labels(d.source).values() if lab.startswith("encoder"))
    ops_in_block = int(re.search(r"(\d+) ops", block).group(1))
    folded = tg.draw(lstm, view="modules", input=seq(7), depth=None)
    assert ops_in_block > node_count(folded.source) // 2   # all 7 steps counted


def test_a_loop_the_node_budget_collapses_says_its_steps_are_folded():
    lstm = nn.LSTM(3, 5, name="encoder", seed=0)
    with pytest.warns(tg.draw.DrawWarning, match="node budget"):
        d = tg.draw(lstm, view="modules", input=seq(30), max_nodes=6)
    blocks = [lab for lab in labels(d.source).values() if "time steps folded" in lab]
    assert len(blocks) == 1 and blocks[0].endswith("time steps folded to one (×30)")
    assert not any("30 time steps" in n for n in d.notes)   # no step is drawn


# ---------------------------------------------------------------------------
# Modules that return a tuple

@pytest.mark.parametrize("make, outputs", [
    (lambda: nn.LSTM(3, 4, seed=0), 3),      # (output, (h_n, c_n))
    (lambda: nn.GRU(3, 4, seed=0), 2),       # (output, h_n)
    (lambda: nn.LSTMCell(3, 4, seed=0), 2),  # (h, c)
])
def test_a_module_returning_a_tuple_draws_every_tensor_in_it(make, outputs):
    m = make()
    x = seq(4) if isinstance(m, (nn.LSTM, nn.GRU)) else seq(1)[0]
    for view in ("modules", "ops"):
        d = tg.draw(m, view=view, input=x)
        thick = [k for k, v in parse(d.source)[0].items() if v.get("penwidth") == "2.2"]
        assert len(thick) == outputs, view


def test_a_returned_structure_without_tensors_is_refused():
    class Words(nn.Module):
        def forward(self, x):
            return ("not", "tensors")
    with pytest.raises(TypeError, match="target must be a Tensor.*got tuple"):
        tg.draw(Words(), view="modules", input=np.ones(2))


# ---------------------------------------------------------------------------
# The network view: the book's cell diagrams

def test_recurrent_modules_describe_themselves_as_cells():
    assert nn.LSTM(4, 16, num_layers=2, bidirectional=True, name="enc").diagram() == [
        nn.Cell("enc", "lstm", 4, 16, sequence=True, num_layers=2, bidirectional=True)]
    assert nn.GRUCell(3, 5, bias=False).diagram() == [nn.Cell("grucell", "gru", 3, 5,
                                                              bias=False)]
    assert nn.RNN(2, 3, nonlinearity="relu").diagram()[0].nonlinearity == "relu"


def test_lstm_cell_diagram_has_the_gates_the_cell_state_path_and_sizes():
    d = tg.draw(nn.LSTM(4, 16, name="lstm", seed=0))
    text = labels(d.source)
    lines = {lab.split("\n")[0] for lab in text.values()}
    for gate in ("σ  forget gate f", "σ  input gate i", "tanh  candidate g",
                 "σ  output gate o"):
        assert gate in lines
    assert sum(lab.endswith("16 units") for lab in text.values()) == 4
    assert list(text.values()).count("×") == 3 and list(text.values()).count("+") == 1
    assert "tanh" in text.values()
    nodes, edges = parse(d.source)
    by_label = {v.get("label", "").split("\n")[0]: k for k, v in nodes.items()}
    c_prev, c = by_label["c⟨t−1⟩  cell state"], by_label["c⟨t⟩  cell state"]
    thick = {(s, t) for s, t, e in edges if e.get("penwidth") == "2.6"}
    # c⟨t−1⟩ → × → + → c⟨t⟩ along the top, drawn thick
    path = [c_prev]
    while path[-1] != c:
        nxt = [t for s, t in thick if s == path[-1]]
        assert len(nxt) == 1, path
        path.append(nxt[0])
    assert [text[k] for k in path[1:-1]] == ["×", "+"]
    heading = attrs_of(next(line for line in d.source.splitlines() if "labelloc" in line))
    assert "input 4, hidden 16" in heading["label"]
    assert "c⟨t⟩ = f ⊙ c⟨t−1⟩ + i ⊙ g" in heading["label"]


def test_gru_and_rnn_cell_diagrams():
    gru = labels(tg.draw(nn.GRUCell(3, 8)).source)
    firsts = {lab.split("\n")[0] for lab in gru.values()}
    assert {"σ  reset gate r", "σ  update gate z", "tanh  candidate n"} <= firsts
    assert "1−" in gru.values()
    rnn = tg.draw(nn.RNN(3, 8, nonlinearity="relu"))
    assert "relu  hidden layer\n8 units" in labels(rnn.source).values()
    assert "next step" in rnn.source


def test_a_sequential_mixing_embedding_lstm_and_linear_draws_as_boxes():
    net = nn.Sequential(nn.Embedding(100, 4), nn.LSTM(4, 16), nn.Linear(16, 2))
    text = list(labels(tg.draw(net).source).values())
    assert text[0].startswith("layers.0: Embedding")
    assert text[1].startswith("layers.1: LSTM\ninput 4 → hidden 16")
    assert text[2].startswith("layers.2: 16 → 2")


def test_cell_diagram_renders():
    svg = tg.draw(nn.LSTMCell(2, 3)).svg(any_backend())
    assert len(svg_node_titles(svg)) >= 15


GOLDEN_CASES = {
    "lstm_cell": lambda: nn.LSTMCell(4, 16, name="lstm"),
    "gru_layer": lambda: nn.GRU(4, 16, num_layers=2, bidirectional=True, name="gru"),
    "rnn_layer": lambda: nn.RNN(4, 16, name="rnn"),
}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_cell_diagram_dot_is_unchanged(case):
    """Regenerate for an intended change only:
    TG_REGEN_GOLDEN=1 python -m pytest tests/test_draw_recurrent.py -k dot_is_unchanged"""
    source = tg.draw(GOLDEN_CASES[case]()).source
    path = GOLDEN / f"{case}.dot"
    if os.environ.get("TG_REGEN_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(source, encoding="utf-8")
    assert source == path.read_text(encoding="utf-8"), f"cell diagram of {case} changed"
