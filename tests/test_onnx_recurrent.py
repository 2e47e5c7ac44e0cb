"""Captured recurrent encoders (tg.capture with a placeholder input) replay as
eager, and export to ONNX as their unrolled ops (tensorgraph/onnx/rules_recurrent.py
writes the fused cells); onnxruntime agrees to 1e-5 at two batch sizes."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require_module
from test_onnx import check, one_op, rand, run_onnx

#: the rules tested here (tests/test_onnx.py's test_every_rule_is_tested reads it)
TESTED_RECURRENT = {"lstm_cell", "gru_cell", "lstm_sequence"}

ONE_OP = [
    ("lstm_cell", [(3, 8), (3, 4)]),
    ("lstm_cell", [(3, 8), (4,)]),           # a zero initial state is one row
    ("lstm_cell", [(2, 3, 12), (3, 6)]),
    ("gru_cell", [(3, 6), (3, 6), (3, 2)]),
    ("gru_cell", [(3, 6), (6,), (2,)]),
    # x (T, B, I), h0, c0 (B, H), W_ih (4H, I), W_hh (4H, H), b_ih, b_hh (4H,)
    ("lstm_sequence", [(4, 3, 5), (3, 2), (3, 2), (8, 5), (8, 2), (8,), (8,)]),
    ("lstm_sequence", [(1, 2, 3), (2, 4), (2, 4), (16, 3), (16, 4), (16,), (16,)]),
]


@pytest.mark.parametrize("name,shapes", ONE_OP, ids=[f"{c[0]}-{i}" for i, c in enumerate(ONE_OP)])
def test_one_op(name: str, shapes: list[tuple[int, ...]], tmp_path: Path) -> None:
    args = [rand(*s) for s in shapes]
    check(one_op(name, args), tmp_path, *args)


def _encoder(kind: str, **kw: Any) -> Any:
    m = getattr(tg.nn, kind)(5, 6, seed=0, **kw)
    m.eval()

    def encode(x: tg.Tensor) -> Any:
        out, state = m(x)
        h = state[0] if kind == "LSTM" else state
        return {"output": out, "h_n": h}
    return m, encode


@pytest.mark.parametrize("kind,kw", [("LSTM", {}), ("GRU", {}),
                                     ("LSTM", {"num_layers": 2, "bidirectional": True}),
                                     ("GRU", {"batch_first": True, "num_layers": 2}),
                                     ("RNN", {"bidirectional": True})])
def test_captured_encoder_replays_and_exports(kind: str, kw: dict[str, Any],
                                              tmp_path: Path) -> None:
    onnx = require_module("onnx")
    from tensorgraph.onnx import export
    T = 4
    bf = kw.get("batch_first", False)
    m, encode = _encoder(kind, **kw)
    shape = (None, T, 5) if bf else (T, None, 5)
    g = tg.capture(encode, tg.placeholder(shape, name="x"))
    path = tmp_path / "enc.onnx"
    model = export(g, path=path)
    onnx.checker.check_model(model)
    types = [n.op_type for n in model.graph.node]
    L, D = kw.get("num_layers", 1), 2 if kw.get("bidirectional") else 1
    # unrolled: per layer and direction one input projection and one W_hh product per step
    # after the first (the zero initial state's product is skipped)
    assert types.count("MatMul") == L * D * T
    assert "LSTM" not in types and "GRU" not in types
    for batch in (1, 3):
        x = rand(batch, T, 5) if bf else rand(T, batch, 5)
        want = encode(tg.tensor(x))
        replay = g(x)
        got = dict(zip(["output", "h_n"], run_onnx(path, x)))
        for k in ("output", "h_n"):
            np.testing.assert_allclose(replay[k].data, want[k].data, rtol=1e-6, atol=1e-6)
            assert got[k].shape == want[k].shape
            np.testing.assert_allclose(got[k], want[k].data, rtol=1e-5, atol=1e-5)


def test_captured_padded_batch_replays_and_exports(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import export
    m = tg.nn.LSTM(5, 6, bidirectional=True, seed=0)
    lengths = [4, 2, 3]

    def encode(x: tg.Tensor) -> Any:
        out, (h, c) = m(x, lengths=lengths)
        return {"output": out, "h_n": h}
    g = tg.capture(encode, tg.placeholder((4, 3, 5), name="x"))
    export(g, path=tmp_path / "m.onnx")
    x = rand(4, 3, 5)
    want = encode(tg.tensor(x))
    got = run_onnx(tmp_path / "m.onnx", x)
    for a, k in zip(got, ("output", "h_n")):
        np.testing.assert_allclose(g(x)[k].data, want[k].data, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(a, want[k].data, rtol=1e-5, atol=1e-5)
    assert (got[0][2:, 1] == 0).all()      # padded rows stay zero


#: the gradient rules tested here (tests/test_onnx_grad.py's test_every_vjp_rule_has_a_case)
TESTED_RECURRENT_VJPS = {"lstm_cell_vjp0", "lstm_cell_vjp1", "gru_cell_vjp0", "gru_cell_vjp1",
                         "gru_cell_vjp2"}

VJP_CASES = [
    ("lstm_cell", 0, [(3, 8), (3, 4)]), ("lstm_cell", 1, [(3, 8), (3, 4)]),
    ("lstm_cell", 0, [(3, 8), (4,)]), ("lstm_cell", 1, [(3, 8), (4,)]),     # broadcast state
    ("gru_cell", 0, [(3, 6), (3, 6), (3, 2)]), ("gru_cell", 1, [(3, 6), (3, 6), (3, 2)]),
    ("gru_cell", 2, [(3, 6), (3, 6), (3, 2)]),
    ("gru_cell", 1, [(3, 6), (6,), (2,)]), ("gru_cell", 2, [(3, 6), (6,), (2,)]),
]


@pytest.mark.parametrize("name,i,shapes", VJP_CASES,
                         ids=[f"{c[0]}_vjp{c[1]}-{k}" for k, c in enumerate(VJP_CASES)])
def test_vjp_rule(name: str, i: int, shapes: list[tuple[int, ...]], tmp_path: Path) -> None:
    from test_onnx_grad import check_vjp
    check_vjp(name, i, [rand(*s) for s in shapes], tmp_path)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_captured_loss_and_gradients_export(kind: str, tmp_path: Path) -> None:
    # A captured tg.grad of a recurrent classifier runs in onnxruntime at two batch sizes.
    require_module("onnx")
    from tensorgraph.onnx import export
    rnn = getattr(tg.nn, kind)(5, 6, seed=0)
    head = tg.nn.Linear(6, 3, seed=1)
    params = rnn.parameters() + head.parameters()

    def loss_and_grads(x: tg.Tensor, y: tg.Tensor) -> list[tg.Tensor]:
        out, _ = rnn(x)
        loss = tg.losses.cross_entropy(head(out[-1]), y)
        return [loss, *tg.grad(loss, params)]
    g = tg.capture(loss_and_grads, tg.placeholder((4, None, 5), name="x"),
                   tg.placeholder((None,), "int64", name="y"))
    path = tmp_path / "grads.onnx"
    export(g, path=path)
    for batch in (2, 5):
        x, y = rand(4, batch, 5), RNG.integers(0, 3, batch)
        want = loss_and_grads(tg.tensor(x), tg.tensor(y))
        got = run_onnx(path, x, y)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b.data, rtol=1e-4, atol=1e-5)


RNG = np.random.default_rng(5)


def test_lstm_sequence_needs_its_length_and_its_gradients_are_refused_by_name(
        tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import ExportError, export
    from test_onnx_grad import one_vjp
    w = [tg.tensor(rand(*s)) for s in [(8, 5), (8, 2), (8,), (8,)]]
    with pytest.raises(ExportError, match=r"op 'lstm_sequence' .*cannot be written as ONNX: it "
                                          r"is unrolled .*sequence length"):
        export(lambda x: tg.lstm_sequence(x, None, None, *w), tg.placeholder((None, 3, 5)),
               path=tmp_path / "m.onnx")
    # a fixed length exports, the state zeros as constants
    export(lambda x: tg.lstm_sequence(x, None, None, *w), tg.placeholder((4, None, 5)),
           path=tmp_path / "m.onnx")
    x = rand(4, 3, 5)
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", x)[0],
                               tg.lstm_sequence(x, None, None, *w).data, rtol=1e-5, atol=1e-5)
    g, _ = one_vjp("lstm_sequence", 3, [rand(*s) for s in
                                        [(4, 3, 5), (3, 2), (3, 2), (8, 5), (8, 2), (8,), (8,)]])
    with pytest.raises(ExportError, match=r"op 'lstm_sequence_vjp3' .*no ONNX export rule: it is "
                                          r"backpropagation through a whole LSTM layer"):
        export(g, path=tmp_path / "g.onnx")
