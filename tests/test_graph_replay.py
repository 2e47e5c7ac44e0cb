"""The replay's generated code (Graph._compile): a plain ufunc writes into an
operand at its last use when nothing else refers to that array; values read
only by ufuncs may stay numpy scalars; VJPs are called directly with
unbroadcast only on a shape mismatch. None of it may change a result: every
replay here is compared bit for bit with eager mode (the same forwards and
VJPs, each into a fresh array), and no array handed to or by the caller is
written."""
from __future__ import annotations

import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph.losses import cross_entropy


def _param(values, name: str) -> tg.Tensor:
    return tg.tensor(np.asarray(values, np.float32), requires_grad=True, name=name)


def _eager(fn, *arrays):
    """fn run eagerly on Tensors, as arrays (nested like fn's result)."""
    out = fn(*[tg.tensor(a) for a in arrays])
    return _arrays(out)


def _arrays(out):
    if isinstance(out, tg.Tensor):
        return out.data.copy()
    return type(out)(_arrays(o) for o in out)


def _assert_same(got, want) -> None:
    if isinstance(want, np.ndarray):
        assert isinstance(got, tg.Tensor) and type(got.data) is np.ndarray
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got.data, want)
        return
    assert len(got) == len(want)
    for g, w in zip(got, want):
        _assert_same(g, w)


def test_a_ufunc_chain_reuses_its_buffers_and_equals_eager_bit_for_bit() -> None:
    w = _param(np.linspace(-1, 1, 6), "w")
    b = _param(np.linspace(0.5, -0.5, 6), "b")

    def chain(x):
        for _ in range(5):
            x = tg.tanh(x * w + b)
        return x
    g = tg.capture(chain, tg.placeholder((None, 6), name="x"))
    rng = np.random.default_rng(0)
    for batch in (1, 4):
        x = rng.standard_normal((batch, 6)).astype(np.float32)
        x_before = x.copy()
        _assert_same(g(x), _eager(chain, x))
        np.testing.assert_array_equal(x, x_before)           # the input is never written
    assert "out=" in g._plan.source                          # the in-place path was taken
    np.testing.assert_array_equal(w.data, np.linspace(-1, 1, 6).astype(np.float32))


def test_an_intermediate_read_by_two_ops_is_not_overwritten_before_its_last_use() -> None:
    w = _param([0.5, -2.0, 3.0], "w")

    def fn(x):
        a = x * w                     # read by tanh, then by the add (its last use)
        t = tg.tanh(a)
        return tg.exp(a + t) - a * 0.0 + t
    x = np.array([[0.1, 0.2, 0.3], [1.0, -1.0, 2.0]], np.float32)
    g = tg.capture(fn, x)
    _assert_same(g(x), _eager(fn, x))


def test_an_output_that_is_also_an_intermediate_keeps_its_value() -> None:
    w = _param([1.5, -0.5], "w")

    def fn(x):
        a = x * w                     # returned, and the operand of a later ufunc
        return a, tg.tanh(a) + 1.0, a
    x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    g = tg.capture(fn, x)
    got = g(x)
    _assert_same(got, _eager(fn, x))
    np.testing.assert_array_equal(got[0].data, x * w.data)


def test_results_of_one_call_are_unchanged_by_the_next() -> None:
    w = _param([0.3, -0.7, 1.1], "w")
    b = _param([0.0, 0.1, 0.2], "b")

    def fn(x):
        h = tg.tanh(x * w + b)
        return h, (h * 2.0 + 1.0).sum(axis=1), tg.exp(h)
    g = tg.capture(fn, tg.placeholder((None, 3), name="x"))
    rng = np.random.default_rng(1)
    x1, x2 = (rng.standard_normal((4, 3)).astype(np.float32) for _ in range(2))
    first = g(x1)
    kept = [t.data.copy() for t in first]
    second = g(x2)
    for t, k in zip(first, kept):
        np.testing.assert_array_equal(t.data, k)
    for t1, t2 in zip(first, second):
        assert not np.shares_memory(t1.data, t2.data)
    _assert_same(second, _eager(fn, x2))


def _view_then_ufunc(x):
    a = x * 2.0
    v = a.reshape(-1)                 # a view of a: a's buffer must stay as it is
    return v, tg.tanh(a)


def _two_views(x):
    a = x * 2.0
    v1 = a.reshape(-1)                # two views of one buffer, a itself no longer read
    v2 = a.reshape(-1)
    return v2, tg.tanh(v1)            # v1's last use: tanh must not write through it


@pytest.mark.parametrize("fn", [_view_then_ufunc, _two_views])
def test_memory_a_view_shares_is_not_written(fn) -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    g = tg.capture(fn, x)
    got = g(x)
    _assert_same(got, _eager(fn, x))
    np.testing.assert_array_equal(got[0].data, np.arange(6, dtype=np.float32) * 2)


def test_an_op_returning_its_input_shares_the_array_and_blocks_reuse() -> None:
    IDENT = tg.defop("ident", lambda x: x, differentiable=False)

    def fn(x):
        a = x + 1.0
        same = IDENT(a)               # the very array of a, returned
        return same, tg.exp(a)        # a's last use: exp must not write into it
    x = np.array([0.0, 1.0, 2.0], np.float32)
    g = tg.capture(fn, x)
    got = g(x)
    np.testing.assert_array_equal(got[0].data, x + 1)
    np.testing.assert_array_equal(got[1].data, np.exp(x + 1))


def test_open_sizes_that_broadcast_otherwise_at_replay_fall_back_to_a_new_array() -> None:
    def fn(x, y):
        a = x * 2.0                   # (None,), its last use the add below
        return a + y * 3.0
    g = tg.capture(fn, tg.placeholder((None,), name="x"), tg.placeholder((None,), name="y"))
    x = np.array([1.5], np.float32)                      # a has 1 element, the sum 4
    y = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    _assert_same(g(x, y), _eager(fn, x, y))
    assert "out=" in g._plan.source                      # the add may write into a
    _assert_same(g(y, x), _eager(fn, y, x))
    _assert_same(g(y, y), _eager(fn, y, y))


def test_scalars_between_ufuncs_are_arrays_again_where_another_op_or_the_caller_reads_them() -> None:
    seen: list[type] = []

    def need_array(x: np.ndarray) -> np.ndarray:
        seen.append(type(x))
        return x * 1
    NEED = tg.defop("need_array", need_array, differentiable=False)
    w = _param(0.9, "w")
    b = _param(0.1, "b")

    def fn(x):
        for _ in range(3):
            x = tg.tanh(x * w + b)
        mid = x
        for _ in range(3):
            x = tg.tanh(x * w + b)
        return NEED(mid), x
    x = np.asarray(0.5, np.float32)
    g = tg.capture(fn, x)
    seen.clear()
    got = g(x)
    assert seen == [np.ndarray]
    _assert_same(got, _eager(fn, x))


def test_a_returned_gradient_shared_by_two_inputs_is_not_summed_into() -> None:
    # add's VJPs return the incoming gradient itself, so dL/da and dL/db are one
    # array; a's second path then sums into dL/da: that sum needs a new array.
    a = _param([[1.0, 2.0], [3.0, 4.0]], "a")
    b = _param([[0.5, -1.0], [2.0, 0.0]], "b")

    def fn(x):
        loss = ((a + b) * x).sum() + (tg.tanh(a) * x).sum()
        return loss, tg.grad(loss, [a, b])
    x = np.array([[1.0, -2.0], [0.5, 3.0]], np.float32)
    g = tg.capture(fn, x)
    got = g(x)
    _, want = fn(tg.tensor(x))                                       # eager tg.grad
    for t, e in zip(got[1], want):
        np.testing.assert_array_equal(t.data, e.data)
    np.testing.assert_array_equal(got[1][1].data, x)                 # dL/db = x exactly
    np.testing.assert_allclose(got[1][0].data, x * (2 - np.tanh(a.data) ** 2), rtol=1e-6)


@pytest.mark.parametrize("batches", [(3, 5, 3, 1)])
def test_replayed_bias_gradients_follow_the_batch_size(batches) -> None:
    # the remembered unbroadcast axes are per (gradient, input, output) shape
    rng = np.random.default_rng(2)
    W = _param(rng.standard_normal((4, 3)), "W")
    bias = _param(rng.standard_normal(3), "bias")
    s = _param(rng.standard_normal((1, 3)), "s")

    def step(x, y):
        loss = cross_entropy((x @ W + bias) * s, y)
        return loss, tg.grad(loss, [W, bias, s])
    g = tg.capture(step, tg.placeholder((None, 4), name="x"),
                   tg.placeholder((None,), "int64", name="y"))
    for n in batches:
        x = rng.standard_normal((n, 4)).astype(np.float32)
        y = rng.integers(0, 3, n)
        loss, grads = g(x, y)
        eager_loss = cross_entropy((tg.tensor(x) @ W + bias) * s, y)
        eager = tg.grad(eager_loss, [W, bias, s])
        np.testing.assert_array_equal(loss.data, eager_loss.data)
        for got, want in zip(grads, eager):
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_array_equal(got.data, want.data)
        # independent oracle for the bias: the column sums of dL/dz, times s
        z = (x @ W.data + bias.data) * s.data
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(n), y] -= 1
        np.testing.assert_allclose(grads[1].data, (p / n * s.data).sum(axis=0), rtol=1e-5,
                                   atol=1e-7)
