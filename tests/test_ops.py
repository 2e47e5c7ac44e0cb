"""Per-op tests for the op table.

For every op: hypothesis draws shapes (broadcast pairs, size-1 and, where valid,
size-0 dimensions) and values, then (1) the forward value is compared with the
plain numpy expression and (2) the gradient with float64 central differences
(`tg.gradcheck`). Values are kept away from kinks, ties and domain edges, where
finite differences mean nothing (see tests/strategies.py); the subgradients
chosen at those points (ties split evenly, relu'(0) = 0, ...) are tested
separately with hand-written expected gradients.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import strategies as S
from checks import assert_forward, check_grads, leaf, op_name
import tensorgraph as tg

# Budgets: the whole file must stay well under a minute on a busy 2-core box.
FEW = settings(max_examples=25)
SOME = settings(max_examples=40)
MORE = settings(max_examples=60)


# ---------------------------------------------------------------------------
# Elementwise unary ops

def _np_sigmoid(a: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):      # e^1000 = inf gives the right limit, 0
        return 1 / (1 + np.exp(-a))


UNARY: dict[str, tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any], str]] = {
    # name: (tensorgraph spelling, numpy expression, value strategy, recorded op)
    "neg": (lambda x: -x, lambda a: -a, S.arrays, "neg"),
    "negative": (tg.negative, np.negative, S.arrays, "neg"),
    "np.negative": (np.negative, np.negative, S.arrays, "neg"),
    "abs": (tg.abs, np.abs, S.nonzero_arrays, "abs"),
    "builtin abs": (abs, np.abs, S.nonzero_arrays, "abs"),
    "np.abs": (np.abs, np.abs, S.nonzero_arrays, "abs"),
    "exp": (tg.exp, np.exp, S.arrays, "exp"),
    "np.exp": (np.exp, np.exp, S.arrays, "exp"),
    "log": (tg.log, np.log, S.positive_arrays, "log"),
    ".log()": (lambda x: x.log(), np.log, S.positive_arrays, "log"),
    "sqrt": (tg.sqrt, np.sqrt, S.positive_arrays, "sqrt"),
    "np.sqrt": (np.sqrt, np.sqrt, S.positive_arrays, "sqrt"),
    "tanh": (tg.tanh, np.tanh, S.arrays, "tanh"),
    ".tanh()": (lambda x: x.tanh(), np.tanh, S.arrays, "tanh"),
    "sigmoid": (tg.sigmoid, _np_sigmoid, S.arrays, "sigmoid"),
    ".sigmoid()": (lambda x: x.sigmoid(), _np_sigmoid, S.arrays, "sigmoid"),
    "relu": (tg.relu, lambda a: np.maximum(a, 0), S.nonzero_arrays, "relu"),
    ".relu()": (lambda x: x.relu(), lambda a: np.maximum(a, 0), S.nonzero_arrays, "relu"),
    "leaky_relu": (tg.leaky_relu, lambda a: np.where(a > 0, a, 0.01 * a), S.nonzero_arrays,
                   "leaky_relu"),
    "leaky_relu(0.2)": (lambda x: tg.leaky_relu(x, negative_slope=0.2),
                        lambda a: np.where(a > 0, a, 0.2 * a), S.nonzero_arrays, "leaky_relu"),
    "softplus": (tg.softplus, lambda a: np.log(1 + np.exp(a)), S.arrays, "softplus"),
    ".softplus()": (lambda x: x.softplus(), lambda a: np.log(1 + np.exp(a)), S.arrays, "softplus"),
}


@pytest.mark.parametrize("name", list(UNARY))
@SOME
@given(data=st.data())
def test_unary(name: str, data: st.DataObject) -> None:
    fn, ref, values, recorded = UNARY[name]
    a = data.draw(S.shapes(allow_zero=True).flatmap(values), label="x")
    out = fn(leaf(a))
    assert_forward(out, ref(a), rtol=1e-10, atol=1e-15)
    assert op_name(out) == recorded
    check_grads(fn, a)


def test_unary_large_inputs_stay_finite() -> None:
    # sigmoid and softplus must not overflow for large |z|.
    a = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    x = leaf(a)
    s = tg.sigmoid(x)
    np.testing.assert_allclose(s.data, [0.0, _np_sigmoid(-50.0), 0.5, _np_sigmoid(50.0), 1.0])
    sp = tg.softplus(x)
    np.testing.assert_allclose(sp.data, [0.0, np.log1p(np.exp(-50.0)), np.log(2), 50.0, 1000.0],
                               rtol=1e-12)
    (s.sum() + sp.sum()).backward()
    assert np.isfinite(x.grad.data).all()
    # d/dz [sigmoid + softplus] = s(1 - s) + s
    sv = _np_sigmoid(a)
    np.testing.assert_allclose(x.grad.data, sv * (1 - sv) + sv, rtol=1e-12)


# ---------------------------------------------------------------------------
# Elementwise binary ops over broadcast pairs

def _odd(shape: S.Shape) -> Any:
    return S.lattice_arrays(shape, odd=True)


def _even(shape: S.Shape) -> Any:
    return S.lattice_arrays(shape, odd=False)


BINARY: dict[str, tuple[Callable[..., Any], Callable[..., Any], Any, Any, str]] = {
    # name: (tensorgraph spelling, numpy expression, strategy for a, for b, recorded op)
    "+": (operator.add, np.add, S.arrays, S.arrays, "add"),
    "add": (tg.add, np.add, S.arrays, S.arrays, "add"),
    "-": (operator.sub, np.subtract, S.arrays, S.arrays, "sub"),
    "subtract": (tg.subtract, np.subtract, S.arrays, S.arrays, "sub"),
    "*": (operator.mul, np.multiply, S.arrays, S.arrays, "mul"),
    "multiply": (tg.multiply, np.multiply, S.arrays, S.arrays, "mul"),
    "/": (operator.truediv, np.true_divide, S.arrays,
          lambda s: S.nonzero_arrays(s, 0.5, 2.0), "div"),
    "divide": (tg.divide, np.true_divide, S.arrays,
               lambda s: S.nonzero_arrays(s, 0.5, 2.0), "div"),
    # ∂(a^b)/∂b = a^b ln a needs a > 0.
    "**": (operator.pow, np.power, lambda s: S.positive_arrays(s, 0.5, 2.0), S.arrays, "pow"),
    "power": (tg.power, np.power, lambda s: S.positive_arrays(s, 0.5, 2.0), S.arrays, "pow"),
    # a on the odd lattice, b on the even one: never a tie.
    "maximum": (tg.maximum, np.maximum, _odd, _even, "maximum"),
    "np.maximum": (np.maximum, np.maximum, _odd, _even, "maximum"),
    "minimum": (tg.minimum, np.minimum, _odd, _even, "minimum"),
    "np.minimum": (np.minimum, np.minimum, _odd, _even, "minimum"),
}


@pytest.mark.parametrize("name", list(BINARY))
@SOME
@given(data=st.data())
def test_binary(name: str, data: st.DataObject) -> None:
    fn, ref, va, vb, recorded = BINARY[name]
    (sa, sb), _ = data.draw(S.broadcast_shapes(allow_zero=True), label="shapes")
    a = data.draw(va(sa), label="a")
    b = data.draw(vb(sb), label="b")
    expected = ref(a, b)
    out = fn(leaf(a), leaf(b))
    assert_forward(out, expected)
    assert op_name(out) == recorded
    # An ndarray on either side: numpy defers to the Tensor, which records.
    right = fn(a, leaf(b))
    assert_forward(right, expected)
    assert op_name(right) == recorded
    assert_forward(fn(leaf(a), b), expected)
    check_grads(fn, a, b)


SCALAR_CASES: dict[str, tuple[Callable[..., Any], Callable[..., Any], Any]] = {
    # name: (tensorgraph expression, numpy expression, value strategy for x)
    "x + 2.5": (lambda x: x + 2.5, lambda a: a + 2.5, S.arrays),
    "2.5 + x": (lambda x: 2.5 + x, lambda a: 2.5 + a, S.arrays),
    "x - 1.5": (lambda x: x - 1.5, lambda a: a - 1.5, S.arrays),
    "1.5 - x": (lambda x: 1.5 - x, lambda a: 1.5 - a, S.arrays),
    "x * -3": (lambda x: x * -3, lambda a: a * -3, S.arrays),
    "-3.0 * x": (lambda x: -3.0 * x, lambda a: -3.0 * a, S.arrays),
    "x / 4.0": (lambda x: x / 4.0, lambda a: a / 4.0, S.arrays),
    "4.0 / x": (lambda x: 4.0 / x, lambda a: 4.0 / a, lambda s: S.nonzero_arrays(s, 0.5, 2.0)),
    # Integer powers of negative bases are real: only ∂/∂a is needed.
    "x ** 2": (lambda x: x ** 2, lambda a: a ** 2, S.arrays),
    "x ** 3": (lambda x: x ** 3, lambda a: a ** 3, S.arrays),
    "x ** -1": (lambda x: x ** -1, lambda a: a ** -1.0, lambda s: S.nonzero_arrays(s, 0.5, 2.0)),
    "x ** 0.5": (lambda x: x ** 0.5, lambda a: a ** 0.5, S.positive_arrays),
    "2.0 ** x": (lambda x: 2.0 ** x, lambda a: 2.0 ** a, S.arrays),
    "maximum(x, 0.3)": (lambda x: tg.maximum(x, 0.3), lambda a: np.maximum(a, 0.3), _odd),
    "minimum(-0.2, x)": (lambda x: tg.minimum(-0.2, x), lambda a: np.minimum(-0.2, a), _odd),
}


@pytest.mark.parametrize("name", list(SCALAR_CASES))
@FEW
@given(data=st.data())
def test_binary_with_python_scalar(name: str, data: st.DataObject) -> None:
    fn, ref, values = SCALAR_CASES[name]
    a = data.draw(S.shapes(allow_zero=True).flatmap(values), label="x")
    assert_forward(fn(leaf(a)), ref(a))
    check_grads(fn, a)


@MORE
@given(data=st.data())
def test_clip(data: st.DataObject) -> None:
    # x on the odd lattice, the bounds on the even one: x never sits on a bound.
    a = data.draw(S.shapes(allow_zero=True).flatmap(_odd), label="x")
    lo, hi = sorted(data.draw(st.tuples(S.lattice_values(odd=False), S.lattice_values(odd=False))))
    which = data.draw(st.sampled_from(["both", "lo", "hi"]))
    lo, hi = (lo, hi) if which == "both" else (lo, None) if which == "lo" else (None, hi)
    expected = np.clip(a, lo, hi)
    for spelling in (lambda x: tg.clip(x, lo, hi), lambda x: x.clip(lo, hi),
                     lambda x: np.clip(x, lo, hi)):
        out = spelling(leaf(a))
        assert_forward(out, expected)
        assert op_name(out) == "clip"
    check_grads(lambda x: tg.clip(x, lo, hi), a)


def test_clip_needs_a_bound() -> None:
    with pytest.raises(ValueError, match="clip: give at least one of lo and hi"):
        tg.clip(leaf([1.0]), None, None)


@MORE
@given(data=st.data())
def test_where(data: st.DataObject) -> None:
    (sc, sa, sb), _ = data.draw(S.broadcast_shapes(num_shapes=3, allow_zero=True), label="shapes")
    cond = data.draw(hnp.arrays(np.bool_, sc), label="cond")
    a = data.draw(S.arrays(sa), label="a")
    b = data.draw(S.arrays(sb), label="b")
    expected = np.where(cond, a, b)
    assert_forward(tg.where(cond, leaf(a), leaf(b)), expected)
    assert_forward(tg.where(tg.tensor(cond), leaf(a), b), expected)   # a boolean Tensor too
    out = np.where(cond, leaf(a), leaf(b))
    assert_forward(out, expected)
    assert op_name(out) == "where"
    assert_forward(tg.where(cond, leaf(a), 0.0), np.where(cond, a, 0.0))
    check_grads(lambda x, y: tg.where(cond, x, y), a, b)
    check_grads(lambda x: tg.where(cond, 1.5, x), b)


def test_where_needs_boolean_cond() -> None:
    with pytest.raises(TypeError, match="where: cond must be boolean, got dtype float64"):
        tg.where(np.ones(2), leaf([1.0, 2.0]), 0.0)


# ---------------------------------------------------------------------------
# Comparisons: boolean results, never recorded, never requiring grad

COMPARISONS = {
    "<": (operator.lt, np.less, tg.less),
    "<=": (operator.le, np.less_equal, tg.less_equal),
    ">": (operator.gt, np.greater, tg.greater),
    ">=": (operator.ge, np.greater_equal, tg.greater_equal),
    "==": (operator.eq, np.equal, tg.equal),
    "!=": (operator.ne, np.not_equal, tg.not_equal),
}


def _assert_boolean(out: Any, expected: np.ndarray) -> None:
    assert isinstance(out, tg.Tensor)
    assert out.dtype == np.bool_ and out.shape == expected.shape
    np.testing.assert_array_equal(out.data, expected)
    assert not out.requires_grad and out.node is None


@pytest.mark.parametrize("name", list(COMPARISONS))
@SOME
@given(data=st.data())
def test_comparison(name: str, data: st.DataObject) -> None:
    op, ref, fn = COMPARISONS[name]
    (sa, sb), _ = data.draw(S.broadcast_shapes(allow_zero=True), label="shapes")
    a = data.draw(S.small_int_arrays(sa), label="a")       # small ints: many ties
    b = data.draw(S.small_int_arrays(sb), label="b")
    _assert_boolean(op(leaf(a), leaf(b)), ref(a, b))
    _assert_boolean(op(a, leaf(b)), ref(a, b))             # ndarray on the left
    _assert_boolean(fn(leaf(a), b), ref(a, b))
    _assert_boolean(op(leaf(a), 0.0), ref(a, 0.0))
    _assert_boolean(op(1, leaf(b)), ref(1, b))


# ---------------------------------------------------------------------------
# Reductions, with axis an int, a tuple or None, and keepdims

def _np_logsumexp(a: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    return np.log(np.sum(np.exp(a), axis=axis, keepdims=keepdims))


REDUCTIONS: dict[str, tuple[Any, ...]] = {
    # name: (tg function, method name, numpy function, value strategy, min count, allow size 0)
    "sum": (tg.sum, "sum", np.sum, S.arrays, 0, True),
    "mean": (tg.mean, "mean", np.mean, S.arrays, 1, False),
    "max": (tg.max, "max", np.max, S.distinct_arrays, 1, False),
    "min": (tg.min, "min", np.min, S.distinct_arrays, 1, False),
    "var": (tg.var, "var", np.var, S.arrays, 1, False),
    "logsumexp": (tg.logsumexp, "logsumexp", _np_logsumexp, S.arrays, 1, False),
}


@pytest.mark.parametrize("name", list(REDUCTIONS))
@MORE
@given(data=st.data())
def test_reduction(name: str, data: st.DataObject) -> None:
    fn, method, ref, values, min_count, allow_zero = REDUCTIONS[name]
    shape = data.draw(S.shapes(allow_zero=allow_zero), label="shape")
    axis, keepdims = data.draw(S.reduction_args(len(shape)), label="axis, keepdims")
    assume(S.reduced_count(shape, axis) >= min_count)
    a = data.draw(values(shape), label="x")
    expected = ref(a, axis=axis, keepdims=keepdims)
    out = fn(leaf(a), axis=axis, keepdims=keepdims)
    assert_forward(out, expected, rtol=1e-10, atol=1e-12)
    assert op_name(out) == name
    assert_forward(getattr(leaf(a), method)(axis=axis, keepdims=keepdims), expected,
                   rtol=1e-10, atol=1e-12)
    if name != "logsumexp":        # numpy has no logsumexp to dispatch
        assert_forward(ref(leaf(a), axis=axis, keepdims=keepdims), expected, rtol=1e-10, atol=1e-12)
    check_grads(lambda x: fn(x, axis=axis, keepdims=keepdims), a)


@FEW
@given(data=st.data())
def test_var_ddof(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    axis, keepdims = data.draw(S.reduction_args(len(shape)), label="axis, keepdims")
    assume(S.reduced_count(shape, axis) >= 2)
    a = data.draw(S.arrays(shape), label="x")
    expected = np.var(a, axis=axis, ddof=1, keepdims=keepdims)
    assert_forward(tg.var(leaf(a), axis=axis, ddof=1, keepdims=keepdims), expected, rtol=1e-10,
                   atol=1e-12)
    assert_forward(np.var(leaf(a), axis=axis, ddof=1, keepdims=keepdims), expected, rtol=1e-10,
                   atol=1e-12)
    check_grads(lambda x: tg.var(x, axis=axis, ddof=1, keepdims=keepdims), a)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@SOME
@given(data=st.data())
def test_argmax_argmin(name: str, data: st.DataObject) -> None:
    shape = data.draw(S.shapes(), label="shape")
    axis = data.draw(S.axes(len(shape), allow_tuple=False), label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")
    a = data.draw(S.distinct_arrays(shape), label="x")
    ref = getattr(np, name)
    expected = ref(a, axis=axis, keepdims=keepdims)
    for out in (getattr(tg, name)(leaf(a), axis=axis, keepdims=keepdims),
                getattr(leaf(a), name)(axis=axis, keepdims=keepdims),
                ref(leaf(a), axis=axis, keepdims=keepdims)):
        assert isinstance(out, tg.Tensor)
        assert out.dtype.kind == "i" and out.shape == expected.shape
        np.testing.assert_array_equal(out.data, expected)
        assert not out.requires_grad and out.node is None


# ---------------------------------------------------------------------------
# The documented subgradients at ties and kinks, by hand

def test_max_ties_split_evenly() -> None:
    x = leaf([1.0, 3.0, 3.0])
    tg.max(x).backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.5, 0.5])


def test_min_ties_split_evenly() -> None:
    x = leaf([2.0, -1.0, -1.0, -1.0])
    tg.min(x).backward()
    np.testing.assert_allclose(x.grad.data, [0.0, 1 / 3, 1 / 3, 1 / 3], rtol=1e-15)


@pytest.mark.parametrize("keepdims", [False, True])
def test_max_min_ties_along_an_axis(keepdims: bool) -> None:
    a = np.array([[2.0, 2.0, 1.0],
                  [0.0, 5.0, 5.0],
                  [4.0, 4.0, 4.0],
                  [7.0, 6.0, 6.0]])
    g = np.array([1.0, 2.0, 3.0, 4.0])
    g = g[:, None] if keepdims else g
    x = leaf(a)
    tg.max(x, axis=1, keepdims=keepdims).backward(g)
    np.testing.assert_allclose(x.grad.data, [[0.5, 0.5, 0.0],
                                             [0.0, 1.0, 1.0],
                                             [1.0, 1.0, 1.0],
                                             [4.0, 0.0, 0.0]], rtol=1e-15)
    x = leaf(a)
    tg.min(x, axis=-1, keepdims=keepdims).backward(g)
    np.testing.assert_allclose(x.grad.data, [[0.0, 0.0, 1.0],
                                             [2.0, 0.0, 0.0],
                                             [1.0, 1.0, 1.0],
                                             [0.0, 2.0, 2.0]], rtol=1e-15)


def test_max_ties_over_a_tuple_of_axes() -> None:
    x = leaf(np.array([[[1.0, 3.0], [3.0, 0.0]], [[2.0, 2.0], [2.0, 2.0]]]))
    tg.max(x, axis=(1, 2)).backward(np.array([1.0, 8.0]))
    np.testing.assert_array_equal(x.grad.data, [[[0.0, 0.5], [0.5, 0.0]], [[2.0, 2.0], [2.0, 2.0]]])


def test_maximum_minimum_ties_split_evenly() -> None:
    a, b = leaf([1.0, 2.0, 3.0]), leaf([3.0, 2.0, 1.0])
    tg.maximum(a, b).backward(np.ones(3))
    np.testing.assert_array_equal(a.grad.data, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(b.grad.data, [1.0, 0.5, 0.0])
    a, b = leaf([1.0, 2.0, 3.0]), leaf([3.0, 2.0, 1.0])
    tg.minimum(a, b).backward(np.ones(3))
    np.testing.assert_array_equal(a.grad.data, [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(b.grad.data, [0.0, 0.5, 1.0])


def test_maximum_minimum_ties_with_broadcasting() -> None:
    # b (a 0-d leaf) is compared with every element of a; its gradient sums.
    a, b = leaf([1.0, 2.0, 3.0]), leaf(2.0)
    tg.maximum(a, b).backward(np.array([1.0, 10.0, 100.0]))
    np.testing.assert_array_equal(a.grad.data, [0.0, 5.0, 100.0])
    assert b.grad.shape == () and b.grad.item() == 1.0 + 5.0
    a, b = leaf([1.0, 2.0, 3.0]), leaf(2.0)
    tg.minimum(a, b).backward(np.array([1.0, 10.0, 100.0]))
    np.testing.assert_array_equal(a.grad.data, [1.0, 5.0, 0.0])
    assert b.grad.item() == 5.0 + 100.0


def test_maximum_of_a_tensor_with_itself() -> None:
    # Both halves of the tie land on x: d max(x, x)/dx = 1.
    x = leaf([-1.0, 0.0, 2.0])
    tg.maximum(x, x).backward(np.ones(3))
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0, 1.0])


def test_documented_kink_subgradients() -> None:
    # relu'(0) = 0 and |x|'(0) = 0 (as PyTorch); clip passes the gradient on
    # its bounds, which are included.
    x = leaf([-1.0, 0.0, 1.0])
    tg.relu(x).backward(np.ones(3))
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 1.0])
    x = leaf([-1.0, 0.0, 1.0])
    tg.abs(x).backward(np.ones(3))
    np.testing.assert_array_equal(x.grad.data, [-1.0, 0.0, 1.0])
    x = leaf([-2.0, -1.0, 0.0, 1.0, 2.0])
    tg.clip(x, -1.0, 1.0).backward(np.ones(5))
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 1.0, 1.0, 0.0])


# ---------------------------------------------------------------------------
# Linear algebra

@MORE
@given(data=st.data())
def test_matmul(data: st.DataObject) -> None:
    (sa, sb), sout = data.draw(S.matmul_shapes(), label="shapes")
    a = data.draw(S.arrays(sa), label="a")
    b = data.draw(S.arrays(sb), label="b")
    expected = np.matmul(a, b)
    for out in (leaf(a) @ leaf(b), tg.matmul(leaf(a), leaf(b)), np.matmul(leaf(a), leaf(b)),
                a @ leaf(b), leaf(a) @ b, leaf(a).matmul(leaf(b))):
        assert_forward(out, expected, rtol=1e-12, atol=1e-14)
        assert op_name(out) == "matmul"
    check_grads(operator.matmul, a, b)


@pytest.mark.parametrize("sa, sb", [((2, 0), (0, 3)), ((0, 3), (3, 2)), ((3,), (0, 3, 2)),
                                    ((0,), (0,)), ((2, 0, 3), (3, 4)), ((2, 3), (3, 0))])
def test_matmul_size_zero(sa: S.Shape, sb: S.Shape) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    assert_forward(leaf(a) @ leaf(b), a @ b)
    check_grads(operator.matmul, a, b)


@st.composite
def _dot_shapes(draw: Any) -> tuple[S.Shape, S.Shape]:
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    return draw(st.sampled_from([((), ()), ((), (k,)), ((k,), ()), ((k,), (k,)), ((k,), (k, m)),
                                 ((n, k), (k,)), ((n, k), (k, m)), ((), (n, k)), ((n, k), ())]))


@SOME
@given(data=st.data())
def test_dot(data: st.DataObject) -> None:
    sa, sb = data.draw(_dot_shapes(), label="shapes")
    a = data.draw(S.arrays(sa), label="a")
    b = data.draw(S.arrays(sb), label="b")
    expected = np.dot(a, b)
    assert_forward(tg.dot(leaf(a), leaf(b)), expected, rtol=1e-12, atol=1e-14)
    assert_forward(leaf(a).dot(leaf(b)), expected, rtol=1e-12, atol=1e-14)
    assert_forward(np.dot(leaf(a), leaf(b)), expected, rtol=1e-12, atol=1e-14)
    check_grads(tg.dot, a, b)


@SOME
@given(data=st.data())
def test_outer(data: st.DataObject) -> None:
    # numpy.outer flattens its operands first.
    sa = data.draw(S.shapes(max_dims=2, allow_zero=True), label="shape a")
    sb = data.draw(S.shapes(max_dims=2, allow_zero=True), label="shape b")
    a = data.draw(S.arrays(sa), label="a")
    b = data.draw(S.arrays(sb), label="b")
    expected = np.outer(a, b)
    assert_forward(tg.outer(leaf(a), leaf(b)), expected)
    assert_forward(np.outer(leaf(a), leaf(b)), expected)
    check_grads(tg.outer, a, b)


# ---------------------------------------------------------------------------
# Shape ops

@MORE
@given(data=st.data())
def test_reshape(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(allow_zero=True), label="shape")
    target = data.draw(S.reshape_targets(shape), label="target")
    a = data.draw(S.arrays(shape), label="x")
    expected = np.reshape(a, target)
    for out in (tg.reshape(leaf(a), target), leaf(a).reshape(target), leaf(a).reshape(*target),
                np.reshape(leaf(a), target)):
        assert_forward(out, expected)
        assert op_name(out) == "reshape"
    assert_forward(leaf(a).flatten(), a.reshape(-1))
    check_grads(lambda x: tg.reshape(x, target), a)


@MORE
@given(data=st.data())
def test_transpose(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(allow_zero=True), label="shape")
    perm = tuple(data.draw(st.permutations(range(len(shape))), label="axes"))
    a = data.draw(S.arrays(shape), label="x")
    expected = np.transpose(a, perm)
    for out in (tg.transpose(leaf(a), *perm), leaf(a).transpose(*perm), leaf(a).transpose(perm),
                np.transpose(leaf(a), perm)):
        assert_forward(out, expected)
        assert op_name(out) == "transpose"
    for out in (leaf(a).T, tg.transpose(leaf(a)), np.transpose(leaf(a))):
        assert_forward(out, a.T)
    check_grads(lambda x: tg.transpose(x, *perm), a)
    check_grads(lambda x: x.T, a)


@SOME
@given(data=st.data())
def test_swapaxes(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(min_dims=1, allow_zero=True), label="shape")
    n = len(shape)
    a1, a2 = data.draw(st.tuples(st.integers(-n, n - 1), st.integers(-n, n - 1)), label="axes")
    a = data.draw(S.arrays(shape), label="x")
    assert_forward(tg.swapaxes(leaf(a), a1, a2), np.swapaxes(a, a1, a2))
    assert_forward(leaf(a).swapaxes(a1, a2), np.swapaxes(a, a1, a2))
    check_grads(lambda x: tg.swapaxes(x, a1, a2), a)


@st.composite
def _expand_axes(draw: Any, ndim: int) -> Any:
    """An axis for expand_dims: an int or a tuple of positions in the output."""
    k = draw(st.integers(1, 2))
    out_ndim = ndim + k
    pos = draw(st.lists(st.integers(0, out_ndim - 1), min_size=k, max_size=k, unique=True))
    pos = [p - out_ndim if draw(st.booleans()) else p for p in pos]
    return pos[0] if k == 1 and draw(st.booleans()) else tuple(pos)


@SOME
@given(data=st.data())
def test_expand_dims(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(allow_zero=True), label="shape")
    axis = data.draw(_expand_axes(len(shape)), label="axis")
    a = data.draw(S.arrays(shape), label="x")
    expected = np.expand_dims(a, axis)
    for out in (tg.expand_dims(leaf(a), axis), leaf(a).expand_dims(axis),
                np.expand_dims(leaf(a), axis)):
        assert_forward(out, expected)
        assert op_name(out) == "expand_dims"
    check_grads(lambda x: tg.expand_dims(x, axis), a)


@SOME
@given(data=st.data())
def test_squeeze(data: st.DataObject) -> None:
    base = data.draw(S.shapes(allow_zero=True), label="base")
    ones = data.draw(st.lists(st.integers(0, len(base)), max_size=2), label="positions of 1s")
    shape = list(base)
    for p in sorted(ones, reverse=True):
        shape.insert(p, 1)
    shape = tuple(shape)
    size1 = [i for i, n in enumerate(shape) if n == 1]
    axis = data.draw(st.one_of(st.none(), S.subsets(size1),
                               st.sampled_from(size1 or [None])), label="axis")
    if isinstance(axis, int) and data.draw(st.booleans()):
        axis -= len(shape)
    a = data.draw(S.arrays(shape), label="x")
    expected = np.squeeze(a, axis)
    for out in (tg.squeeze(leaf(a), axis), leaf(a).squeeze(axis), np.squeeze(leaf(a), axis)):
        assert_forward(out, expected)
        assert op_name(out) == "squeeze"
    check_grads(lambda x: tg.squeeze(x, axis), a)


@SOME
@given(data=st.data())
def test_broadcast_to(data: st.DataObject) -> None:
    (s, _), target = data.draw(S.broadcast_shapes(allow_zero=True), label="shapes")
    a = data.draw(S.arrays(s), label="x")
    expected = np.broadcast_to(a, target)
    for out in (tg.broadcast_to(leaf(a), target), leaf(a).broadcast_to(target),
                np.broadcast_to(leaf(a), target)):
        assert_forward(out, expected)
        assert op_name(out) == "broadcast_to"
    check_grads(lambda x: tg.broadcast_to(x, target), a)


@st.composite
def _concat_args(draw: Any) -> tuple[list[S.Shape], int]:
    shape = draw(S.shapes(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    sizes = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    ax = axis % len(shape)
    return [shape[:ax] + (n,) + shape[ax + 1:] for n in sizes], axis


@SOME
@given(data=st.data())
def test_concat(data: st.DataObject) -> None:
    shapes, axis = data.draw(_concat_args(), label="shapes, axis")
    arrays = [data.draw(S.arrays(s), label="piece") for s in shapes]
    expected = np.concatenate(arrays, axis=axis)
    out = tg.concat([leaf(a) for a in arrays], axis=axis)
    assert_forward(out, expected)
    assert op_name(out) == "concat"
    assert_forward(np.concatenate([leaf(a) for a in arrays], axis=axis), expected)
    assert_forward(tg.concat([leaf(arrays[0])] + arrays[1:], axis=axis), expected)  # mixed
    check_grads(lambda *xs: tg.concat(xs, axis=axis), *arrays)


@SOME
@given(data=st.data())
def test_stack(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(allow_zero=True), label="shape")
    k = data.draw(st.integers(1, 3), label="count")
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    arrays = [data.draw(S.arrays(shape), label="piece") for _ in range(k)]
    expected = np.stack(arrays, axis=axis)
    out = tg.stack([leaf(a) for a in arrays], axis=axis)
    assert_forward(out, expected)
    assert op_name(out) == "stack"
    assert_forward(np.stack([leaf(a) for a in arrays], axis=axis), expected)
    check_grads(lambda *xs: tg.stack(xs, axis=axis), *arrays)


@SOME
@given(data=st.data())
def test_split(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(min_dims=1, allow_zero=True), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    n = shape[axis]
    divisors = [k for k in range(1, 5) if n % k == 0]
    how = data.draw(st.one_of(st.sampled_from(divisors),
                              st.lists(st.integers(-n - 1, n + 1), max_size=3)), label="sections")
    a = data.draw(S.arrays(shape), label="x")
    expected = np.split(a, how, axis=axis)
    for pieces in (tg.split(leaf(a), how, axis=axis), np.split(leaf(a), how, axis=axis)):
        assert len(pieces) == len(expected)
        for p, e in zip(pieces, expected):
            assert_forward(p, e)
    check_grads(lambda x: tg.split(x, how, axis=axis), a)


def test_split_uneven_sections_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"split: axis 0 of size 5 does not divide into 2 equal"):
        tg.split(leaf(np.zeros(5)), 2)


@MORE
@given(data=st.data())
def test_pad(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(min_dims=1, allow_zero=True), label="shape")
    pw = data.draw(S.pad_widths(len(shape)), label="pad_width")
    c = data.draw(st.sampled_from([0.0, -1.5]), label="constant_values")
    a = data.draw(S.arrays(shape), label="x")
    expected = np.pad(a, pw, constant_values=c)
    for out in (tg.pad(leaf(a), pw, constant_values=c), np.pad(leaf(a), pw, constant_values=c)):
        assert_forward(out, expected)
        assert op_name(out) == "pad"
    check_grads(lambda x: tg.pad(x, pw, constant_values=c), a)


def test_pad_width_that_does_not_fit_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"pad: pad_width \(\(1, 1\), \(1, 1\), \(1, 1\)\) does "
                                         r"not fit an input of shape \(2, 3\)"):
        tg.pad(leaf(np.zeros((2, 3))), ((1, 1), (1, 1), (1, 1)))
    with pytest.raises(ValueError, match="pad: pad_width must be non-negative integers"):
        tg.pad(leaf(np.zeros(2)), -1)


@SOME
@given(data=st.data())
def test_flip(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(allow_zero=True), label="shape")
    axis = data.draw(S.axes(len(shape)), label="axis")
    a = data.draw(S.arrays(shape), label="x")
    expected = np.flip(a, axis)
    for out in (tg.flip(leaf(a), axis), leaf(a).flip(axis), np.flip(leaf(a), axis)):
        assert_forward(out, expected)
        assert op_name(out) == "flip"
    check_grads(lambda x: tg.flip(x, axis), a)


# ---------------------------------------------------------------------------
# Indexing

@settings(max_examples=150)
@given(data=st.data())
def test_getitem(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(allow_zero=True), label="shape")
    key = data.draw(S.index_keys(shape), label="key")
    a = data.draw(S.arrays(shape), label="x")
    expected = a[key]
    out = leaf(a)[key]
    assert_forward(out, np.asarray(expected))
    assert op_name(out) == "getitem"
    assert_forward(tg.getitem(leaf(a), key), np.asarray(expected))
    check_grads(lambda x: x[key], a)


def test_getitem_repeated_indices_accumulate() -> None:
    x = leaf([10.0, 20.0, 30.0, 40.0])
    y = x[[0, 0, 3, 0]]
    np.testing.assert_array_equal(y.data, [10.0, 10.0, 40.0, 10.0])
    y.backward(np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(x.grad.data, [1.0 + 2.0 + 4.0, 0.0, 0.0, 3.0])

    x = leaf(np.arange(6.0).reshape(2, 3))
    x[np.array([1, 1, 0]), np.array([2, 2, -1])].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0.0, 0.0, 1.0], [0.0, 0.0, 2.0]])

    x = leaf(np.arange(6.0).reshape(2, 3))
    x[:, [1, 1, 1]].sum().backward()      # a slice, then a repeated array
    np.testing.assert_array_equal(x.grad.data, [[0.0, 3.0, 0.0], [0.0, 3.0, 0.0]])


def test_getitem_with_tensor_keys() -> None:
    a = np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]])
    x = leaf(a)
    y = x[x > 0]                            # a boolean Tensor as the mask
    assert_forward(y, a[a > 0])
    y.backward(np.ones(3))
    np.testing.assert_array_equal(x.grad.data, (a > 0).astype(float))
    x = leaf(a)
    x[tg.tensor([1, 1])].sum().backward()   # an integer Tensor, repeated
    np.testing.assert_array_equal(x.grad.data, [[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]])
    x = leaf(a)
    x[..., None, 1].backward(np.ones((2, 1)))
    np.testing.assert_array_equal(x.grad.data, [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])


@SOME
@given(data=st.data())
def test_take(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)), label="axis")
    n = math.prod(shape) if axis is None else shape[axis]
    idx = data.draw(S.int_index_arrays(n), label="indices")
    a = data.draw(S.arrays(shape), label="x")
    expected = np.take(a, idx, axis=axis)
    for out in (tg.take(leaf(a), idx, axis=axis), leaf(a).take(idx, axis=axis),
                np.take(leaf(a), idx, axis=axis), tg.take(leaf(a), tg.tensor(idx), axis=axis)):
        assert_forward(out, expected)
    check_grads(lambda x: tg.take(x, idx, axis=axis), a)


def test_take_needs_integer_indices() -> None:
    with pytest.raises(TypeError, match="take: indices must be integers, got dtype float64"):
        tg.take(leaf([1.0, 2.0]), np.array([0.0]))


@SOME
@given(data=st.data())
def test_one_hot(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(max_dims=2, allow_zero=True), label="shape")
    n = data.draw(st.integers(1, 5), label="num_classes")
    idx = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, n - 1)), label="indices")
    expected = np.eye(n, dtype=np.float32)[idx]
    for out in (tg.one_hot(idx, n), tg.one_hot(tg.tensor(idx), num_classes=n)):
        assert_forward(out, expected)
        assert not out.requires_grad and out.node is None
    assert_forward(tg.one_hot(idx, n, dtype=np.float64), expected.astype(np.float64))
    if idx.size:
        assert_forward(tg.one_hot(idx), np.eye(int(idx.max()) + 1, dtype=np.float32)[idx])


def test_one_hot_checks_range() -> None:
    with pytest.raises(ValueError, match=r"one_hot: indices must lie in \[0, 3\), got min 0 and max 3"):
        tg.one_hot([0, 3], 3)


# ---------------------------------------------------------------------------
# softmax and log_softmax

def _np_softmax(a: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(a)
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@MORE
@given(data=st.data())
def test_softmax(name: str, data: st.DataObject) -> None:
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    a = data.draw(S.arrays(shape, -3.0, 3.0), label="x")
    expected = _np_softmax(a, axis)
    expected = expected if name == "softmax" else np.log(expected)
    fn = getattr(tg, name)
    for out in (fn(leaf(a), axis=axis), getattr(leaf(a), name)(axis=axis)):
        assert_forward(out, expected, rtol=1e-10, atol=1e-14)
        assert op_name(out) == name
    if axis == -1:
        assert_forward(fn(leaf(a)), expected, rtol=1e-10, atol=1e-14)   # default axis=-1
    check_grads(lambda x: fn(x, axis=axis), a)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_log_softmax_logsumexp_stable_for_large_logits(dtype: Any) -> None:
    a = np.array([[1000.0, 0.0, -1000.0],
                  [1000.0, 1000.0, -1000.0],
                  [-1000.0, -1000.0, -1000.0]])
    l2, l3 = math.log(2), math.log(3)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    x = leaf(a, dtype)
    y = tg.softmax(x)
    np.testing.assert_allclose(y.data, [[1, 0, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=rtol)
    ly = tg.log_softmax(x)
    np.testing.assert_allclose(ly.data, [[0, -1000, -2000], [-l2, -l2, -2000 - l2], [-l3] * 3],
                               rtol=rtol)
    lse = tg.logsumexp(x, axis=-1)
    np.testing.assert_allclose(lse.data, [1000, 1000 + l2, -1000 + l3], rtol=rtol)
    for t in (y, ly, lse):
        assert t.dtype == dtype and np.isfinite(t.data).all()

    # Gradients, written out: softmax: y ⊙ (v - Σ v⊙y); log_softmax: v - y Σ v;
    # logsumexp: v softmax(x).
    p = np.array([[1, 0, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]])
    v = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0], [0.0, 1.0, -1.0]])
    cases = [(tg.softmax, v, p * (v - (v * p).sum(-1, keepdims=True))),
             (tg.log_softmax, v, v - p * v.sum(-1, keepdims=True)),
             (lambda t: tg.logsumexp(t, axis=-1), v[:, 0], v[:, :1] * p)]
    for fn, g, expected in cases:
        x = leaf(a, dtype)
        fn(x).backward(g.astype(dtype))
        assert x.grad.dtype == dtype and np.isfinite(x.grad.data).all()
        np.testing.assert_allclose(x.grad.data, expected, rtol=rtol, atol=1e-7)


# ---------------------------------------------------------------------------
# dtype policy: float32 stays float32; a gradient has its tensor's dtype

FLOAT32_CASES: dict[str, Callable[[tg.Tensor], tg.Tensor]] = {
    "x * 2.0": lambda x: x * 2.0,
    "x + np.float64": lambda x: x + np.float64(0.5),
    "np.float64 * x": lambda x: np.float64(3.0) * x,
    "x / 3": lambda x: x / 3,
    "1 - x": lambda x: 1 - x,
    "x ** 2": lambda x: x ** 2,
    "x ** np.float64": lambda x: x ** np.float64(2.0),
    "2.0 ** x": lambda x: 2.0 ** x,
    "maximum(x, 0.5)": lambda x: tg.maximum(x, 0.5),
    "minimum(np.float64, x)": lambda x: tg.minimum(np.float64(0.5), x),
    "where(x > 0, x, 0.0)": lambda x: tg.where(x > 0, x, 0.0),
    "clip": lambda x: tg.clip(x, -0.5, np.float64(0.5)),
    "exp": tg.exp, "log|x|": lambda x: tg.log(tg.abs(x)), "sqrt|x|": lambda x: tg.sqrt(abs(x)),
    "tanh": tg.tanh, "sigmoid": tg.sigmoid, "relu": tg.relu, "leaky_relu": tg.leaky_relu,
    "softplus": tg.softplus,
    "sum": lambda x: x.sum(axis=0), "mean": lambda x: x.mean(axis=1), "max": tg.max,
    "min": lambda x: tg.min(x, axis=0), "var": lambda x: tg.var(x, axis=1, ddof=1),
    "logsumexp": tg.logsumexp, "softmax": tg.softmax, "log_softmax": tg.log_softmax,
    "x @ x.T": lambda x: x @ x.T, "reshape": lambda x: x.reshape(-1),
    "pad": lambda x: tg.pad(x, 1, constant_values=np.float64(2.0)),
    "getitem": lambda x: x[[0, 0, 1]], "take": lambda x: tg.take(x, [2, 2]),
    "concat": lambda x: tg.concat([x, x], axis=1), "stack": lambda x: tg.stack([x, x]),
}


@pytest.mark.parametrize("name", list(FLOAT32_CASES))
def test_float32_stays_float32(name: str) -> None:
    x = leaf([[0.5, -1.5, 2.0], [1.0, 0.25, -0.75]], np.float32)
    out = FLOAT32_CASES[name](x)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, dtype=np.float32))
    assert x.grad.dtype == np.float32 and x.grad.shape == x.shape


MIXED_CASES: dict[str, Callable[[tg.Tensor, np.ndarray], tg.Tensor]] = {
    "x + arr": operator.add, "arr - x": lambda x, a: a - x, "x * arr": operator.mul,
    "arr / x": lambda x, a: a / x, "x ** arr": lambda x, a: abs(x) ** a,
    "maximum": tg.maximum, "minimum": lambda x, a: tg.minimum(a, x),
    "x @ arr.T": lambda x, a: x @ a.T, "arr @ x.T": lambda x, a: a @ x.T,
    "where": lambda x, a: tg.where(a > 0, x, a), "concat": lambda x, a: tg.concat([x, a]),
    "stack": lambda x, a: tg.stack([a, x], axis=1),
}


@pytest.mark.parametrize("other", [np.float64, np.int64])
@pytest.mark.parametrize("name", list(MIXED_CASES))
def test_grad_dtype_of_float32_with_wider_array(name: str, other: Any) -> None:
    # numpy 2 promotes float32 with a float64 or int64 array to float64; the
    # forward follows numpy, but x's gradient must come back as float32.
    x = leaf([[0.5, -1.5, 2.0], [1.0, 0.25, -0.75]], np.float32)
    arr = np.array([[1, -2, 3], [2, 1, -1]], dtype=other)
    out = MIXED_CASES[name](x, arr)
    expected_dtype = MIXED_CASES[name](x.data, arr).dtype
    assert out.dtype == expected_dtype
    out.backward(np.ones(out.shape, dtype=out.dtype))
    assert x.grad.dtype == np.float32 and x.grad.shape == x.shape


def test_float64_gradient_values_match_float32_ones() -> None:
    # The float32 path computes the same gradient as float64, to float32 precision.
    a = np.array([[0.5, -1.5, 2.0], [1.0, 0.25, -0.75]])
    grads = []
    for dtype in (np.float32, np.float64):
        x = leaf(a, dtype)
        (tg.softmax(x * np.float64(2.0)) * np.arange(3.0)).sum().backward()
        grads.append(x.grad.data)
    assert grads[0].dtype == np.float32
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# numpy interop

def test_np_asarray_gives_the_data() -> None:
    x = leaf([1.0, 2.0], np.float32)
    arr = np.asarray(x)
    assert type(arr) is np.ndarray and arr.dtype == np.float32
    assert np.shares_memory(arr, x.data)
    np.testing.assert_array_equal(np.asarray(x, dtype=np.float64), [1.0, 2.0])


@pytest.mark.parametrize("name, fn, expected_grad", [
    ("add", lambda a, x: a + x, lambda a, x: np.ones_like(x)),
    ("sub", lambda a, x: a - x, lambda a, x: -np.ones_like(x)),
    ("mul", lambda a, x: a * x, lambda a, x: a),
    ("div", lambda a, x: a / x, lambda a, x: -a / x ** 2),
    ("pow", lambda a, x: a ** x, lambda a, x: a ** x * np.log(a)),
    ("matmul", lambda a, x: a @ x, lambda a, x: np.broadcast_to(a.sum(0), x.shape)),
])
def test_ndarray_on_the_left_returns_a_tensor(name: str, fn: Any, expected_grad: Any) -> None:
    a = np.array([1.5, 2.0, 3.0])
    x = leaf([0.5, -1.0, 2.0])
    if name == "matmul":
        a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    out = fn(a, x)
    assert isinstance(out, tg.Tensor) and op_name(out) == name
    np.testing.assert_allclose(out.data, fn(a, x.data))
    out.backward(np.ones(out.shape))
    np.testing.assert_allclose(x.grad.data, expected_grad(a, x.data), rtol=1e-12)


@pytest.mark.parametrize("fn, name", [
    (np.exp, "exp"), (np.log, "log"), (np.tanh, "tanh"), (np.sqrt, "sqrt"),
    (np.negative, "neg"), (lambda t: np.maximum(t, 1.0), "maximum"),
    (np.sum, "sum"), (np.mean, "mean"), (np.max, "max"), (np.var, "var"),
    (lambda t: np.reshape(t, (3, 1)), "reshape"), (np.transpose, "transpose"),
    (lambda t: np.concatenate([t, t]), "concat"), (lambda t: np.where(t > 1, t, 0.0), "where"),
])
def test_numpy_functions_that_are_ops_record(fn: Any, name: str) -> None:
    x = leaf([0.5, 1.5, 2.5])
    out = fn(x)
    assert isinstance(out, tg.Tensor) and op_name(out) == name
    assert any(p is x for p in out.node.parents)


def test_np_exp_records_and_backpropagates() -> None:
    a = np.array([0.5, -1.0, 2.0])
    x = leaf(a)
    y = np.exp(x)
    assert op_name(y) == "exp"
    y.backward(np.ones(3))
    np.testing.assert_allclose(x.grad.data, np.exp(a), rtol=1e-15)


@pytest.mark.parametrize("fn, shown", [
    (np.cbrt, r"numpy\.cbrt is not a tensorgraph op"),
    (np.nancumprod, r"numpy\.nancumprod is not a tensorgraph op"),
    (np.median, r"numpy\.median is not a tensorgraph op"),
    (np.add.reduce, r"numpy\.add\.reduce is not a tensorgraph op"),
    (lambda t: np.exp(t, out=np.empty(3)), r"numpy\.exp with out= is not a tensorgraph op"),
    (lambda t: np.linalg.det(np.outer(t, t)), r"numpy\.(linalg\.)?det is not a tensorgraph op"),
])
def test_numpy_functions_that_are_not_ops_raise(fn: Any, shown: str) -> None:
    x = leaf([0.5, 1.5, 2.5])
    with pytest.raises(TypeError, match=shown) as info:
        fn(x)
    assert "cannot carry a gradient" in str(info.value)


def test_numpy_functions_that_are_not_ops_work_without_grad() -> None:
    # Nothing to lose when no gradient is wanted: plain numpy results.
    a = np.array([0.5, 1.5, 2.5])
    t = tg.tensor(a)
    np.testing.assert_array_equal(np.cbrt(t), np.cbrt(a))
    np.testing.assert_array_equal(np.nancumprod(t), np.nancumprod(a))


# ---------------------------------------------------------------------------
# Regressions from a review of the core

@MORE
@given(data=st.data())
def test_transpose_negative_axes(data: st.DataObject) -> None:
    # numpy accepts negative axes in a permutation; the VJP must invert the
    # normalized permutation (argsort of (-1, 0, 1) is not the inverse of (2, 0, 1)).
    shape = data.draw(S.shapes(min_dims=2), label="shape")
    perm = data.draw(st.permutations(range(len(shape))), label="axes")
    neg = tuple(p - len(shape) if data.draw(st.booleans()) else p for p in perm)
    a = data.draw(S.arrays(shape), label="x")
    assert_forward(tg.transpose(leaf(a), neg), np.transpose(a, neg))
    check_grads(lambda x: tg.transpose(x, neg), a)
    # the inverse permutation, written out: g of the output transposed back
    g = np.random.default_rng(0).standard_normal(np.transpose(a, neg).shape)
    x = leaf(a)
    tg.transpose(x, neg).backward(g)
    inverse = np.argsort([p % a.ndim for p in neg])
    np.testing.assert_array_equal(x.grad.data, np.transpose(g, inverse))


def test_pow_gradient_at_zero_base_and_zero_exponent() -> None:
    # d(a^b)/da = b·a^(b-1) is 0·inf at a = b = 0; a^0 is constant, so 0 (as PyTorch).
    x = leaf([0.0, 2.0])
    with np.errstate(divide="ignore", invalid="ignore"):  # 0^-1 in the masked branch
        (x ** 0.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])
    x, e = leaf([0.0, 3.0]), tg.tensor(np.array([0.0, 0.0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        (x ** e).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])
    # elsewhere the formula is unchanged, including second order in the exponent at b = 0
    check_grads(lambda a, b: a ** b, [0.3, 1.5, 2.0], [0.0, 1.0, 3.0])

    def dfdx(a: tg.Tensor, b: tg.Tensor) -> tg.Tensor:
        (g,) = tg.grad((a ** b).sum(), [a], create_graph=True)
        return g
    assert tg.gradcheck(dfdx, [leaf([0.3, 1.5, 2.0]), leaf([0.0, 1.0, 3.0])])


def test_var_gradient_when_ddof_reaches_the_count() -> None:
    # numpy's forward divides by max(N - ddof, 0) and returns nan; the backward
    # used to raise ZeroDivisionError. Now it is nan too (0 · inf), as PyTorch.
    import warnings
    x = leaf([5.0])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy: "Degrees of freedom <= 0"
        y = tg.var(x, ddof=1)
        y.backward()
    assert np.isnan(y.item())
    assert x.grad.shape == (1,) and np.isnan(x.grad.data).all()


def test_clip_with_tensor_bounds() -> None:
    # A Tensor bound used to recurse forever (np.clip on the Tensor attr dispatched back to clip).
    a = np.array([-1.0, 0.5, 2.0])
    lo = tg.tensor(np.array([0.0, 0.0, -3.0]))
    out = tg.clip(leaf(a), lo, tg.tensor(1.5))
    assert_forward(out, np.clip(a, lo.data, 1.5))
    assert_forward(np.clip(leaf(a), tg.tensor(0.0), None), np.clip(a, 0.0, None))
    x = leaf(a)
    tg.clip(x, lo, tg.tensor(1.5)).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 0.0])   # passes only inside [lo, hi]
    check_grads(lambda x: tg.clip(x, lo, tg.tensor(1.5)), a)
    # a 0-d Tensor bound is weak like a Python number: float32 stays float32
    assert tg.clip(tg.tensor([1.0, 2.0]), tg.tensor(np.float64(1.5)), None).dtype == np.float32
    with pytest.raises(TypeError, match=r"clip: bound lo is not differentiable.*shape \(3,\)"):
        tg.clip(leaf(a), leaf(a), None)
    with pytest.raises(TypeError, match=r"clip: bound hi is not differentiable.*shape \(2,\)"):
        tg.clip(leaf([1.0, 2.0]), None, [leaf(1.0), 2.0])
    assert_forward(tg.clip(leaf(a), [0.0, 0.0, 0.0], None), np.clip(a, 0.0, None))


# ---------------------------------------------------------------------------
# Issue 8: numpy's and PyTorch's surface

def test_dot_keeps_python_scalars_weak() -> None:
    t = tg.tensor(np.array([1.0, 2.0], dtype=np.float32))
    for out in (tg.dot(t, 2.5), tg.dot(2.5, t), t.dot(2.5)):
        assert out.dtype == np.float32 and out.dtype == (t * 2.5).dtype
        np.testing.assert_array_equal(out.data, [2.5, 5.0])


@FEW
@given(data=st.data())
def test_dot_follows_numpy_for_n_d_operands(data: st.DataObject) -> None:
    k = data.draw(st.integers(1, 3), label="k")
    a_shape = data.draw(S.shapes(max_dims=2), label="a lead") + (k,)
    b_lead = data.draw(S.shapes(max_dims=2), label="b lead")
    b_shape = b_lead + (k, data.draw(st.integers(1, 3))) if data.draw(st.booleans()) else (k,)
    a, b = data.draw(S.arrays(a_shape), label="a"), data.draw(S.arrays(b_shape), label="b")
    assert_forward(tg.dot(leaf(a), leaf(b)), np.dot(a, b), rtol=1e-12, atol=1e-14)
    assert_forward(np.dot(leaf(a), leaf(b)), np.dot(a, b), rtol=1e-12, atol=1e-14)
    check_grads(tg.dot, a, b)


def test_ravel_and_flatten() -> None:
    a = np.arange(6.0).reshape(2, 3)
    for out in (np.ravel(leaf(a)), leaf(a).ravel(), tg.ravel(leaf(a)), leaf(a).flatten()):
        assert_forward(out, a.ravel())
        assert op_name(out) == "reshape"
    check_grads(np.ravel, a)


def test_np_clip_with_numpy_argument_names() -> None:
    a = np.array([-1.0, 0.5, 2.0])
    x = leaf(a)
    out = np.clip(x, a_min=0.0, a_max=1.0)
    assert_forward(out, np.clip(a, 0.0, 1.0))
    assert op_name(out) == "clip"
    assert_forward(np.clip(leaf(a), None, 1.0), np.clip(a, None, 1.0))
    assert_forward(np.clip(leaf(a), 0.0, a_max=1.0), np.clip(a, 0.0, 1.0))
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 0.0])


def test_clamp_is_clip_with_pytorchs_names() -> None:
    a = np.array([-1.0, 0.5, 2.0])
    assert_forward(tg.clamp(leaf(a), min=0.0), np.clip(a, 0.0, None))
    assert_forward(leaf(a).clamp(max=1.0), np.clip(a, None, 1.0))
    assert op_name(leaf(a).clamp(0.0, 1.0)) == "clip"


@pytest.mark.parametrize("fn, expected", [
    (lambda t: np.allclose(t, [0.5, 1.5, 2.5]), True),
    (lambda t: np.isfinite(t).tolist(), [True, True, True]),
    (lambda t: np.iscomplex(t).tolist(), [False, False, False]),
    (lambda t: np.shape(t), (3,)),
    (lambda t: np.ndim(t), 1),
    (lambda t: np.size(t), 3),
    (lambda t: np.array_equal(t, t), True),
    (lambda t: np.isnan(t).any(), False),
    (lambda t: int(np.count_nonzero(t)), 3),
])
def test_numpy_helpers_with_no_float_result_work_on_tensors_that_require_grad(fn, expected) -> None:
    # Nothing to lose: a boolean, integer or shape result has no gradient.
    x = leaf([0.5, 1.5, 2.5])
    assert fn(x) == expected


def test_methods_a_user_reaches_for() -> None:
    a = np.array([[1.0, -2.0], [0.0, 4.0]])
    x = leaf(a)
    c = x.clone()
    assert_forward(c, a)
    assert op_name(c) == "clone" and c.data is not x.data and not np.shares_memory(c.data, a)
    check_grads(lambda x: x.clone() * 3.0, a)
    assert_forward(x.pow(2), a ** 2)
    assert op_name(x.pow(2)) == "pow"
    assert x.numel() == 4 == x.size
    assert_forward(x.any(), np.any(a))
    assert_forward(x.all(axis=1), np.all(a, axis=1))
    assert_forward(tg.any(x > 3, dim=0, keepdim=True), np.any(a > 3, axis=0, keepdims=True))
    assert_forward(np.all(x > -3), np.all(a > -3))
    assert not x.any().requires_grad


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "var", "logsumexp"])
def test_dim_and_keepdim_are_aliases(name: str) -> None:
    a = np.arange(6.0).reshape(2, 3)
    fn = getattr(tg, name)
    assert_forward(fn(leaf(a), dim=1, keepdim=True), fn(leaf(a), axis=1, keepdims=True).data)
    assert_forward(getattr(leaf(a), name)(dim=0), fn(leaf(a), axis=0).data)
    with pytest.raises(TypeError, match=rf"{name}: give axis= or dim=, not both"):
        fn(leaf(a), axis=0, dim=0)


def test_argmax_dim_and_softmax_dim() -> None:
    a = np.array([[1.0, 3.0, 2.0], [5.0, 0.0, 1.0]])
    assert_forward(tg.argmax(leaf(a), dim=1), np.argmax(a, axis=1))
    assert_forward(tg.softmax(leaf(a), dim=0), tg.softmax(leaf(a), axis=0).data)


def test_cat_is_concat() -> None:
    a, b = np.ones((2, 3)), np.zeros((2, 1))
    out = tg.cat([leaf(a), leaf(b)], dim=1)
    assert_forward(out, np.concatenate([a, b], axis=1))
    assert op_name(out) == "concat"


# ---------------------------------------------------------------------------
# Issue 8: never drop a graph silently

def test_mean_of_a_list_of_tensors_keeps_the_graph() -> None:
    x = leaf(1.5)
    m = tg.mean([x, x + 2])
    assert m.dtype == np.float64 and m.item() == 2.5
    m.backward()
    assert x.grad.item() == 1.0


def test_tensor_of_a_list_of_tensors_stacks_them_recorded() -> None:
    x = leaf(2.0)
    t = tg.tensor([x, 3 * x])
    assert t.shape == (2,) and op_name(t) == "stack"
    (t * np.array([0.0, 2.0])).sum().backward()
    assert x.grad.item() == 6.0
    with pytest.raises(TypeError, match=r"tensor: requires_grad=True makes a leaf"):
        tg.tensor([x, x], requires_grad=True)
    nested = tg.tensor([[x, 1.0], [2.0, x * x]])
    assert nested.shape == (2, 2) and nested.dtype == np.float64
    nested.sum().backward()
    assert x.grad.item() == 6.0 + 1.0 + 4.0


def test_concat_with_nested_lists_of_tensors_keeps_the_graph() -> None:
    a, b, c = leaf(1.0), leaf(2.0), leaf(3.0)
    stacked = tg.stack([tg.stack([a, b, c])])
    out = tg.concat([stacked, [[a, b, c]]])
    assert out.shape == (2, 3)
    (out * np.array([[1.0, 1.0, 1.0], [2.0, 3.0, 4.0]])).sum().backward()
    assert (a.grad.item(), b.grad.item(), c.grad.item()) == (3.0, 4.0, 5.0)


@pytest.mark.parametrize("call", [
    lambda x: tg.exp([x, x]),
    lambda x: tg.add([x, 1.0], 2.0),
    lambda x: x + [x, x],
    lambda x: tg.stack([[x], [x]]),
    lambda x: tg.where(np.array([True, False]), [x, x], 0.0),
    lambda x: tg.sum([[x, x], [x, x]], axis=0),
])
def test_every_entry_point_keeps_the_graph_of_listed_tensors(call) -> None:
    x = leaf(1.5)
    out = call(x)
    assert out.requires_grad
    out.sum().backward()
    assert x.grad is not None and x.grad.item() != 0.0


def test_the_tensor_constructor_refuses_to_drop_a_graph() -> None:
    x = leaf(1.0)
    with pytest.raises(TypeError, match=r"Tensor: the list holds a Tensor that requires grad at "
                                        r"\[1\]\[0\]"):
        tg.Tensor([[1.0], [x]])


# ---------------------------------------------------------------------------
# Issue 8: dtype policy

@pytest.mark.parametrize("fn", [lambda t: t * 0.5, lambda t: 0.5 * t, lambda t: t + 1.5,
                                lambda t: t / 2.0, lambda t: tg.multiply(t, 0.5),
                                lambda t: t - np.float64(0.5), lambda t: t / 2,
                                lambda t: 2 / (t + 1), lambda t: tg.divide(t, 2)])
def test_an_integer_tensor_with_a_python_float_is_float32(fn) -> None:
    # (and its true division by a Python int, as `t / 2.0`)
    # PyTorch's rule (default float dtype), not numpy's float64.
    t = tg.tensor([1, 2, 3])
    assert t.dtype == np.int64
    out = fn(t)
    assert out.dtype == np.float32
    assert fn(tg.tensor([True, False])).dtype == np.float32
    assert (t * 2).dtype == np.int64          # an int stays int


@pytest.mark.parametrize("fn, expected", [
    (lambda t, v: t + v, [1.1, 2.3]),
    (lambda t, v: v * t, [0.1 * 1.0, 0.3 * 2.0]),
    (lambda t, v: t - v, [1.0 - 0.1, 2.0 - 0.3]),
    (lambda t, v: tg.maximum(v, t * 0.01), [0.1, 0.3]),
    (lambda t, v: tg.where(np.array([True, False]), t, v), [1.0, 0.3]),
    (lambda t, v: t.clone().copy_(v), [0.1, 0.3]),
])
def test_a_list_of_python_numbers_is_weak_like_the_numbers(fn, expected) -> None:
    # float64 with [0.1, 0.3] is exact (numpy's values), not rounded through
    # float32; float32 stays float32.
    v = [0.1, 0.3]
    out = fn(tg.tensor(np.array([1.0, 2.0])), v)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out.data, np.array(expected))
    assert fn(tg.tensor([1.0, 2.0]), v).dtype == np.float32


def test_lists_of_numbers_with_an_integer_tensor() -> None:
    t = tg.tensor([1, 2])
    assert (t + [0.5, 0.25]).dtype == np.float32   # as t + 0.5 (PyTorch's default float)
    assert ([0.5, 1.5] * t).dtype == np.float32
    assert (t + [1, 2]).dtype == np.int64
    assert (t / [1, 2]).dtype == np.float32        # true division, as t / 2
    assert (t * np.array([0.5, 1.0])).dtype == np.float64   # an array is not weak


@pytest.mark.parametrize("fn, expected", [
    (lambda t, v: tg.stack([t, v]), [[1.0, 2.0], [0.1, 0.3]]),
    (lambda t, v: tg.stack([v, t]), [[0.1, 0.3], [1.0, 2.0]]),
    (lambda t, v: tg.concat([t, v]), [1.0, 2.0, 0.1, 0.3]),
    (lambda t, v: np.concatenate([t, v]), [1.0, 2.0, 0.1, 0.3]),
    (lambda t, v: tg.dot(t, v), 1.0 * 0.1 + 2.0 * 0.3),
    (lambda t, v: tg.inner(v, t), 1.0 * 0.1 + 2.0 * 0.3),
    (lambda t, v: tg.outer(t, v), [[0.1, 0.3], [0.2, 0.6]]),
    (lambda t, v: tg.clip(t * 0.0, v, None), [0.1, 0.3]),
    (lambda t, v: tg.clip(t, None, v), [0.1, 0.3]),
    (lambda t, v: tg.cross(tg.concat([t, [0.5]]), v + [0.7]),
     np.cross([1.0, 2.0, 0.5], [0.1, 0.3, 0.7])),
])
def test_many_input_functions_take_lists_of_numbers_at_the_tensors_precision(fn, expected) -> None:
    out = fn(tg.tensor(np.array([1.0, 2.0])), [0.1, 0.3])
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out.data, np.array(expected))
    assert fn(tg.tensor([1.0, 2.0]), [0.1, 0.3]).dtype == np.float32
