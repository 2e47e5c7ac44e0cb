"""`lstm_sequence`, a whole one-direction LSTM layer as one op (nn.LSTM's
default path; tensorgraph/ops/recurrent.py), against independent references:
the per-step path (`nn.record_steps()`: matmul + lstm_cell per step), PyTorch's
nn.LSTM, float64 central differences (first and second order), and its own
VJPs run the way a captured `tg.grad` runs them (without forward's values).
Also: when nn.LSTM uses it, its errors, and a backward run twice."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgraph as tg
from conftest import require_module
from op_specs_recurrent import lstm_sequence_ref

nn = tg.nn
F64 = np.float64
FEW = settings(max_examples=8, deadline=None)


def _ops(out: tg.Tensor) -> list[str]:
    return [t.node.op.name for t in tg.walk(out) if t.node is not None]


def _args(rng: np.random.Generator, T: int, B: int, I: int, H: int,
          dtype: Any = F64) -> list[np.ndarray]:
    shapes = [(T, B, I), (B, H), (B, H), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,)]
    return [rng.uniform(-1.5, 1.5, s).astype(dtype) for s in shapes]


def _run(m: Any, x: np.ndarray, hx: Any, steps: bool) -> tuple[list[np.ndarray], list[Any]]:
    """Outputs (out, h_n, c_n) and the gradients of the input, hx and every
    parameter for a fixed weighting of the outputs; per step or fused."""
    m.zero_grad()
    xt = tg.tensor(x, requires_grad=True)
    hxt = None if hx is None else tuple(tg.tensor(a, requires_grad=True) for a in hx)
    if steps:
        with nn.record_steps():
            out, (h, c) = m(xt, hxt)
    else:
        out, (h, c) = m(xt, hxt)
    outs = [out, h, c]
    loss = sum(tg.sum(o * np.cos(np.arange(o.size)).reshape(o.shape)) for o in outs)
    loss.backward()
    grads = [xt.grad] + ([] if hxt is None else [t.grad for t in hxt])
    grads += [p.grad for p in m.parameters()]
    return [o.data for o in outs], [np.asarray(g.data if isinstance(g, tg.Tensor) else g)
                                    for g in grads]


# ---------------------------------------------------------------------------
# Against the per-step path and PyTorch

CONFIGS = [{}, {"num_layers": 2}, {"bias": False}, {"batch_first": True},
           {"num_layers": 2, "dropout": 0.5}]


@pytest.mark.parametrize("kw", CONFIGS, ids=[str(c) for c in CONFIGS])
@pytest.mark.parametrize("given_state", [False, True])
def test_layer_equals_the_per_step_path(kw: dict[str, Any], given_state: bool) -> None:
    rng = np.random.default_rng(3)
    m = nn.LSTM(3, 4, seed=0, dtype=F64, **kw)
    m.eval()                                 # dropout off: both paths see the same layers
    L = kw.get("num_layers", 1)
    x = rng.standard_normal((2, 5, 3) if kw.get("batch_first") else (5, 2, 3))
    hx = (rng.standard_normal((L, 2, 4)), rng.standard_normal((L, 2, 4))) if given_state else None
    fused_out, fused_grads = _run(m, x, hx, steps=False)
    step_out, step_grads = _run(m, x, hx, steps=True)
    for a, b in zip(fused_out + fused_grads, step_out + step_grads):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_float32_layer_equals_the_per_step_path_and_keeps_float32() -> None:
    rng = np.random.default_rng(4)
    m = nn.LSTM(6, 8, num_layers=2, seed=0)
    x = rng.standard_normal((7, 3, 6)).astype(np.float32)
    fused_out, fused_grads = _run(m, x, None, steps=False)
    step_out, step_grads = _run(m, x, None, steps=True)
    for a, b in zip(fused_out + fused_grads, step_out + step_grads):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_unbatched_input_equals_the_per_step_path() -> None:
    rng = np.random.default_rng(5)
    m = nn.LSTM(3, 2, seed=0, dtype=F64)
    x = rng.standard_normal((4, 3))
    hx = (rng.standard_normal((1, 2)), rng.standard_normal((1, 2)))
    for state in (None, hx):
        a_out, a_grads = _run(m, x, state, steps=False)
        b_out, b_grads = _run(m, x, state, steps=True)
        for a, b in zip(a_out + a_grads, b_out + b_grads):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kw", [{}, {"num_layers": 2}, {"bias": False, "batch_first": True}])
def test_layer_matches_torch(kw: dict[str, Any]) -> None:
    torch = require_module("torch")
    tm = torch.nn.LSTM(3, 5, **kw).double()
    ours = nn.LSTM(3, 5, **kw, dtype=F64, seed=0)
    ours.load_state_dict(tm.state_dict())
    rng = np.random.default_rng(6)
    L = kw.get("num_layers", 1)
    x = rng.standard_normal((2, 6, 3) if kw.get("batch_first") else (6, 2, 3))
    h0, c0 = rng.standard_normal((L, 2, 5)), rng.standard_normal((L, 2, 5))
    tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    tout, (thn, tcn) = tm(tx, (th, tc))
    gx, gh, gc = (tg.tensor(a, requires_grad=True) for a in (x, h0, c0))
    out, (hn, cn) = ours(gx, (gh, gc))
    assert "lstm_sequence" in _ops(out) and "lstm_cell" not in _ops(out)
    seeds = [rng.standard_normal(t.shape) for t in (tout, thn, tcn)]
    for o, t in zip((out, hn, cn), (tout, thn, tcn)):
        np.testing.assert_allclose(o.data, t.detach().numpy(), rtol=1e-10, atol=1e-10)
    torch.autograd.backward([tout, thn, tcn], [torch.tensor(s) for s in seeds])
    sum(tg.sum(o * s) for o, s in zip((out, hn, cn), seeds)).backward()
    for a, t in zip((gx, gh, gc), (tx, th, tc)):
        np.testing.assert_allclose(a.grad.data, t.grad.numpy(), rtol=1e-10, atol=1e-10)
    theirs = dict(tm.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.data, theirs[name].grad.numpy(), rtol=1e-10,
                                   atol=1e-10, err_msg=name)


# ---------------------------------------------------------------------------
# Central differences (float64), first and second order

@FEW
@given(T=st.integers(1, 4), B=st.integers(1, 3), I=st.integers(1, 3), H=st.integers(1, 3),
       row=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_op_gradcheck_over_random_sizes(T: int, B: int, I: int, H: int, row: bool,
                                        seed: int) -> None:
    arrays = _args(np.random.default_rng(seed), T, B, I, H)
    if row:                           # one initial state row for the whole batch
        arrays[1], arrays[2] = arrays[1][:1], arrays[2][:1]
    xs = [tg.tensor(a, requires_grad=True) for a in arrays]
    out = tg.lstm_sequence(*xs)
    np.testing.assert_allclose(out.data, lstm_sequence_ref(*[x.data for x in xs]), rtol=1e-12,
                               atol=1e-12)
    assert tg.gradcheck(tg.lstm_sequence, xs)


@FEW
@given(L=st.integers(1, 2), T=st.integers(1, 3), B=st.integers(1, 2), H=st.integers(1, 3),
       given_state=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_layer_gradcheck_over_random_sizes(L: int, T: int, B: int, H: int, given_state: bool,
                                           seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = nn.LSTM(2, H, num_layers=L, seed=seed, dtype=F64)
    params = list(m.parameters())
    x = tg.tensor(rng.standard_normal((T, B, 2)), requires_grad=True)
    state = [tg.tensor(rng.standard_normal((L, B, H)), requires_grad=True) for _ in range(2)]

    def f(x: tg.Tensor, h0: tg.Tensor, c0: tg.Tensor, *_: tg.Tensor) -> Any:
        out, (h, c) = m(x, (h0, c0) if given_state else None)
        assert "lstm_sequence" in _ops(out)
        return out, h, c
    assert tg.gradcheck(f, [x, *state, *params])


def test_second_derivatives_of_the_op() -> None:
    rng = np.random.default_rng(7)
    xs = [tg.tensor(a, requires_grad=True) for a in _args(rng, 2, 2, 1, 1)]   # small: < 1.5 s

    def first(*xs: tg.Tensor) -> Any:
        out = tg.lstm_sequence(*xs)
        w = np.cos(np.arange(out.size, dtype=F64)).reshape(out.shape) + 1.5
        return tg.grad((out * w).sum(), list(xs), create_graph=True)
    assert tg.gradcheck(first, xs, atol=1e-5)


def test_second_derivatives_of_the_layer_equal_the_per_step_path() -> None:
    rng = np.random.default_rng(8)
    m = nn.LSTM(2, 3, num_layers=2, seed=1, dtype=F64)
    x = rng.standard_normal((3, 2, 2))

    def grad_norm(steps: bool) -> list[np.ndarray]:
        xt = tg.tensor(x, requires_grad=True)
        if steps:
            with nn.record_steps():
                out = m(xt)[0]
        else:
            out = m(xt)[0]
        gx, = tg.grad(tg.sum(out ** 2), [xt], create_graph=True)
        return [g.data for g in tg.grad(tg.sum(gx ** 2), [xt, *m.parameters()])]
    for a, b in zip(grad_norm(False), grad_norm(True)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# The VJPs: shared, recomputed, run twice

def test_vjps_without_forward_values_give_the_same_gradients() -> None:
    # what a captured tg.grad runs: each VJP alone, forward's values recomputed
    from tensorgraph.autograd import vjp_op
    from tensorgraph.ops.recurrent import LSTM_SEQUENCE
    rng = np.random.default_rng(9)
    arrays = _args(rng, 4, 2, 3, 2)
    xs = [tg.tensor(a, requires_grad=True) for a in arrays]
    out = tg.lstm_sequence(*xs)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    for i, x in enumerate(xs):
        got = vjp_op(LSTM_SEQUENCE, i).forward(g, out.data, *arrays)
        np.testing.assert_allclose(got, x.grad.data, rtol=1e-12, atol=1e-14)


def test_backward_twice_with_different_gradients() -> None:
    # The seven VJPs share one BPTT per backward: a second backward with another
    # upstream gradient must not reuse the first one's.
    rng = np.random.default_rng(10)
    xs = [tg.tensor(a, requires_grad=True) for a in _args(rng, 3, 2, 2, 2)]
    out = tg.lstm_sequence(*xs)
    g1, g2 = rng.standard_normal(out.shape), rng.standard_normal(out.shape)
    first = tg.grad(out, xs, g1, retain_graph=True)
    second = tg.grad(out, xs, g2, retain_graph=True)
    again = tg.grad(out, xs, g1)
    from tensorgraph.ops.recurrent import _lstm_sequence_recorded    # matmul + lstm_cell per step
    steps = _lstm_sequence_recorded(*xs)
    for g, got in ((g1, first), (g2, second), (g1, again)):
        want = tg.grad(steps, xs, g, retain_graph=True)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-14)


def test_only_the_inputs_that_require_grad_get_one() -> None:
    rng = np.random.default_rng(11)
    arrays = _args(rng, 3, 2, 2, 2)
    w_ih = tg.tensor(arrays[3], requires_grad=True)
    out = tg.lstm_sequence(arrays[0], None, None, w_ih, arrays[4])   # no biases, zero state
    tg.sum(out).backward()
    steps = lstm_sequence_ref(arrays[0], np.zeros((2, 2)), np.zeros((2, 2)), arrays[3],
                              arrays[4], np.zeros(8), np.zeros(8))
    np.testing.assert_allclose(out.data, steps, rtol=1e-12, atol=1e-12)
    assert w_ih.grad.shape == (8, 2)


def test_a_thousand_steps_backpropagate() -> None:
    m = nn.LSTM(2, 3, seed=0)
    x = tg.tensor(np.random.default_rng(12).standard_normal((1000, 2, 2)).astype(np.float32),
                  requires_grad=True)
    out, (h, c) = m(x)
    tg.sum(h).backward()
    assert np.isfinite(x.grad.data).all() and np.abs(x.grad.data[-1]).sum() > 0


def test_the_op_captures_and_replays_with_its_gradients() -> None:
    # nn.LSTM records its steps under tg.capture; the op itself captures too: its
    # forward, and a captured tg.grad (one VJP op per input, each from the forward's
    # saved values), at batch sizes the capture never saw
    rng = np.random.default_rng(13)
    w = [tg.tensor(a, requires_grad=True) for a in _args(rng, 1, 1, 5, 3, np.float32)[3:]]

    def step(x: tg.Tensor) -> Any:
        out = tg.lstm_sequence(x, None, None, *w)
        loss = tg.sum(out * out)
        return [out, *tg.grad(loss, w)]
    g = tg.capture(step, tg.placeholder((4, None, 5), name="x"))
    names = [n.op.name for n in g.nodes]
    assert names.count("lstm_sequence") == 1
    assert {f"lstm_sequence_vjp{i}" for i in range(3, 7)} <= set(names)
    for batch in (1, 3):
        x = rng.standard_normal((4, batch, 5)).astype(np.float32)
        got, want = g(x), step(tg.tensor(x))
        for a, b in zip(got, want):
            np.testing.assert_allclose(a.data, b.data, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------
# When nn.LSTM uses it

def test_which_path_records_what() -> None:
    x = np.ones((4, 2, 3), np.float32)
    m = nn.LSTM(3, 2, num_layers=2, seed=0)
    ops = _ops(m(x)[0])
    assert ops.count("lstm_sequence") == 2 and "lstm_cell" not in ops
    with nn.record_steps():
        ops = _ops(m(x)[0])
    assert "lstm_sequence" not in ops and ops.count("lstm_cell") == 8
    with pytest.raises(RuntimeError), nn.record_steps():
        raise RuntimeError          # leaving by an exception ends it too
    assert "lstm_sequence" in _ops(m(x)[0])
    assert "lstm_sequence" not in _ops(m(x, lengths=[4, 2])[0])
    assert "lstm_sequence" not in _ops(nn.LSTM(3, 2, bidirectional=True, seed=0)(x)[0])
    g = tg.capture(lambda x: m(x)[0], tg.placeholder((4, None, 3)))
    assert "lstm_sequence" not in [n.op.name for n in g.nodes]
    assert "lstm_cell" in [n.op.name for n in g.nodes]


def test_the_op_is_recorded_under_the_layers_scope() -> None:
    m = nn.LSTM(3, 2, num_layers=2, seed=0, name="enc")
    out = m(np.ones((4, 2, 3), np.float32))[0]
    scopes = [t.node.scope for t in tg.walk(out)
              if t.node is not None and t.node.op.name == "lstm_sequence"]
    assert scopes == [("enc", "l0"), ("enc", "l1")]


# ---------------------------------------------------------------------------
# Errors name the op, the argument and the shapes

@pytest.mark.parametrize("shapes,match", [
    ([(4, 3), None, None, (8, 3), (8, 2)], r"lstm_sequence: x must be \(T, B, input_size\).*\(4, 3\)"),
    ([(4, 2, 3), None, None, (8, 3), (8, 3)],
     r"lstm_sequence: weight_hh must be \(4·hidden_size, hidden_size\), got shape \(8, 3\)"),
    ([(4, 2, 3), None, None, (8, 5), (8, 2)],
     r"lstm_sequence: weight_ih must be .* = \(8, 3\) for x of shape \(4, 2, 3\).*got shape \(8, 5\)"),
    ([(4, 2, 3), (3, 2), None, (8, 3), (8, 2)],
     r"lstm_sequence: h0 must be \(batch, hidden_size\) = \(2, 2\).*got shape \(3, 2\)"),
    ([(4, 2, 3), None, (2, 3), (8, 3), (8, 2)],
     r"lstm_sequence: c0 must be .* = \(2, 2\).*got shape \(2, 3\)"),
    ([(4, 2, 3), None, None, (8, 3), (8, 2), (4,)],
     r"lstm_sequence: bias_ih must be \(4·hidden_size,\) = \(8,\), got shape \(4,\)"),
])
def test_errors(shapes: list[Any], match: str) -> None:
    args = [None if s is None else np.zeros(s, np.float32) for s in shapes]
    with pytest.raises(ValueError, match=match):
        tg.lstm_sequence(*args)
