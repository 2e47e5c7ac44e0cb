"""Tests for numpy's functions as tensorgraph ops (ops_math, ops_arrays,
ops_linalg): for each, the forward value against numpy over random shapes
(broadcast pairs for binary ops), the gradient against float64 central
differences (`tg.gradcheck`), each spelling (function, method, operator,
numpy dispatch), float32 staying float32, second derivatives against finite
differences of the first, and the edge cases named in issue 8.
"""
from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import strategies as S
from checks import assert_forward, check_grads, leaf, op_name
import tensorgraph as tg

FEW = settings(max_examples=20)
SOME = settings(max_examples=30)


def check_second(fn: Callable[..., Any], *arrays: Any, atol: float = 1e-5) -> None:
    """The gradient computed with create_graph=True is itself checked against
    finite differences: second derivatives."""
    def first(*xs: tg.Tensor) -> Any:
        return tg.grad(fn(*xs).sum(), list(xs), create_graph=True)
    xs = [leaf(a) for a in arrays]
    assert tg.gradcheck(first, xs, atol=atol)


# ---------------------------------------------------------------------------
# Value strategies: inside each op's domain, away from its edges and jumps.

def _interval(lo: float, hi: float) -> Callable[[S.Shape], Any]:
    return lambda shape: S.arrays(shape, lo, hi)


def _symmetric(lo: float, hi: float) -> Callable[[S.Shape], Any]:
    return lambda shape: S.nonzero_arrays(shape, lo, hi)


def _odd(shape: S.Shape) -> Any:
    """Odd multiples of 0.05: never an integer nor a half, so floor, ceil and
    round are locally constant there (their finite differences are 0)."""
    return S.lattice_arrays(shape, odd=True)


def _even(shape: S.Shape) -> Any:
    return S.lattice_arrays(shape, odd=False)


UNARY: dict[str, tuple[Callable[..., Any], Callable[..., Any], Any, str]] = {
    # name: (tensorgraph spelling, numpy reference, value strategy, recorded op)
    "sin": (tg.sin, np.sin, S.arrays, "sin"),
    "np.sin": (np.sin, np.sin, S.arrays, "sin"),
    ".sin()": (lambda x: x.sin(), np.sin, S.arrays, "sin"),
    "cos": (tg.cos, np.cos, S.arrays, "cos"),
    "np.cos": (np.cos, np.cos, S.arrays, "cos"),
    ".cos()": (lambda x: x.cos(), np.cos, S.arrays, "cos"),
    "tan": (tg.tan, np.tan, _interval(-1.2, 1.2), "tan"),
    "np.tan": (np.tan, np.tan, _interval(-1.2, 1.2), "tan"),
    "sinh": (tg.sinh, np.sinh, S.arrays, "sinh"),
    "np.sinh": (np.sinh, np.sinh, S.arrays, "sinh"),
    "cosh": (tg.cosh, np.cosh, S.arrays, "cosh"),
    "np.cosh": (np.cosh, np.cosh, S.arrays, "cosh"),
    "arcsin": (tg.arcsin, np.arcsin, _interval(-0.9, 0.9), "arcsin"),
    "np.arcsin": (np.arcsin, np.arcsin, _interval(-0.9, 0.9), "arcsin"),
    "arccos": (tg.arccos, np.arccos, _interval(-0.9, 0.9), "arccos"),
    "np.arccos": (np.arccos, np.arccos, _interval(-0.9, 0.9), "arccos"),
    "arctan": (tg.arctan, np.arctan, S.arrays, "arctan"),
    "np.arctan": (np.arctan, np.arctan, S.arrays, "arctan"),
    "arcsinh": (tg.arcsinh, np.arcsinh, S.arrays, "arcsinh"),
    "np.arcsinh": (np.arcsinh, np.arcsinh, S.arrays, "arcsinh"),
    "arccosh": (tg.arccosh, np.arccosh, _interval(1.1, 3.0), "arccosh"),
    "np.arccosh": (np.arccosh, np.arccosh, _interval(1.1, 3.0), "arccosh"),
    "arctanh": (tg.arctanh, np.arctanh, _interval(-0.9, 0.9), "arctanh"),
    "np.arctanh": (np.arctanh, np.arctanh, _interval(-0.9, 0.9), "arctanh"),
    "log2": (tg.log2, np.log2, S.positive_arrays, "log2"),
    "np.log2": (np.log2, np.log2, S.positive_arrays, "log2"),
    "log10": (tg.log10, np.log10, S.positive_arrays, "log10"),
    "np.log10": (np.log10, np.log10, S.positive_arrays, "log10"),
    "log1p": (tg.log1p, np.log1p, _interval(-0.8, 3.0), "log1p"),
    "np.log1p": (np.log1p, np.log1p, _interval(-0.8, 3.0), "log1p"),
    "exp2": (tg.exp2, np.exp2, S.arrays, "exp2"),
    "np.exp2": (np.exp2, np.exp2, S.arrays, "exp2"),
    "expm1": (tg.expm1, np.expm1, S.arrays, "expm1"),
    "np.expm1": (np.expm1, np.expm1, S.arrays, "expm1"),
    "square": (tg.square, np.square, S.arrays, "square"),
    "np.square": (np.square, np.square, S.arrays, "square"),
    ".square()": (lambda x: x.square(), np.square, S.arrays, "square"),
    "reciprocal": (tg.reciprocal, np.reciprocal, _symmetric(0.3, 2.0), "reciprocal"),
    "np.reciprocal": (np.reciprocal, np.reciprocal, _symmetric(0.3, 2.0), "reciprocal"),
    "sinc": (tg.sinc, np.sinc, S.arrays, "sinc"),
    "np.sinc": (np.sinc, np.sinc, S.arrays, "sinc"),
    "floor": (tg.floor, np.floor, _odd, "floor"),
    "np.floor": (np.floor, np.floor, _odd, "floor"),
    "ceil": (tg.ceil, np.ceil, _odd, "ceil"),
    "np.ceil": (np.ceil, np.ceil, _odd, "ceil"),
    "round": (tg.round, np.round, _odd, "round"),
    "np.round": (np.round, np.round, _odd, "round"),
    ".round()": (lambda x: x.round(), np.round, _odd, "round"),
    "builtin round": (round, np.round, _odd, "round"),
    "round(decimals=1)": (lambda x: tg.round(x, 1), lambda a: np.round(a, 1),
                          lambda s: S.lattice_arrays(s, odd=True, k=40).map(lambda a: a + 0.01),
                          "round"),
}


def _primary(name: str) -> bool:
    """The tg.<name> spelling of an op; numpy's, the method and the operator
    record the same op (checked), so its gradient is checked once."""
    return name.isidentifier() or "(" in name and not name.startswith(".")


@pytest.mark.parametrize("name", list(UNARY))
@SOME
@given(data=st.data())
def test_unary(name: str, data: st.DataObject) -> None:
    fn, ref, values, recorded = UNARY[name]
    a = data.draw(S.shapes(allow_zero=True).flatmap(values), label="x")
    out = fn(leaf(a))
    assert_forward(out, ref(a), rtol=1e-10, atol=1e-15)
    assert op_name(out) == recorded
    if _primary(name):          # the other spellings record the same op
        check_grads(fn, a)


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "sign"])
def test_rounding_gradient_is_zero(name: str) -> None:
    # Zero, not None and not an error, as numpy autograds define it; at the
    # jumps too (where finite differences would blow up).
    x = leaf([-1.5, -0.5, 0.0, 0.5, 1.0, 2.7])
    getattr(tg, name)(x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.zeros(6))


def test_sinc_at_zero() -> None:
    x = leaf([0.0, 1.0, -0.5])
    y = tg.sinc(x)
    np.testing.assert_allclose(y.data, np.sinc([0.0, 1.0, -0.5]))
    y.sum().backward()
    # d sinc/dx = (cos(πx) - sinc x)/x: 0 at 0, -1 at 1, and 4/π at -0.5.
    np.testing.assert_allclose(x.grad.data, [0.0, -1.0, 4 / np.pi], atol=1e-15)


def test_sinc_second_and_third_derivatives_at_zero() -> None:
    # sinc(x) = 1 - (πx)²/6 + (πx)⁴/120 - ...: the second derivative at 0 is
    # -π²/3 and the third is 0.
    x = leaf([0.0, 0.0])
    (g1,) = tg.grad(tg.sinc(x).sum(), [x], create_graph=True)
    (g2,) = tg.grad(g1.sum(), [x], create_graph=True)
    (g3,) = tg.grad(g2.sum(), [x], allow_unused=True)
    np.testing.assert_allclose(g2.data, [-np.pi ** 2 / 3] * 2, rtol=1e-12)
    np.testing.assert_allclose(g3.data, [0.0, 0.0], atol=1e-12)
    # and against finite differences of the first derivative, at 0 and beside it
    check_second(tg.sinc, np.array([0.0, 0.3, -1.2]))


# ---------------------------------------------------------------------------
# Domains: numpy's nan/inf outside, and gradients that say so.

@pytest.mark.parametrize("name, inside, edge, outside, grad_outside", [
    ("arcsin", 0.5, 1.0, 1.5, np.nan),
    ("arccos", -0.5, -1.0, -1.5, np.nan),
    # 1/(1 - x²) is defined beyond ±1 (PyTorch's atanh gradient gives it too).
    ("arctanh", 0.5, 1.0, 1.5, 1 / (1 - 1.5 ** 2)),
    ("arccosh", 2.0, 1.0, 0.5, np.nan),
])
def test_inverse_functions_follow_numpy_at_and_beyond_their_domain(
        name: str, inside: float, edge: float, outside: float, grad_outside: float) -> None:
    a = np.array([inside, edge, outside])
    x = leaf(a)
    with np.errstate(all="ignore"):
        y = getattr(tg, name)(x)
        expected = getattr(np, name)(a)
        np.testing.assert_array_equal(y.data, expected)      # nan beyond the domain
        y.sum().backward()
    g = x.grad.data
    assert np.isfinite(g[0])
    assert np.isinf(g[1])          # the derivative is unbounded at the edge
    np.testing.assert_allclose(g[2], grad_outside)     # nan: √ of a negative number


# ---------------------------------------------------------------------------
# Binary ops over broadcast pairs

def _mod_pair(data: st.DataObject, sa: S.Shape, sb: S.Shape) -> tuple[np.ndarray, np.ndarray]:
    """Operands of mod/floor_divide, both signs, with a/b away from integers
    (where floor(a/b) jumps)."""
    a = data.draw(S.nonzero_arrays(sa, 0.1, 3.0), label="a")
    b = data.draw(S.nonzero_arrays(sb, 0.3, 2.0), label="b")
    q = a / b
    assume(np.all(np.abs(q - np.round(q)) > 1e-3))
    return a, b


BINARY: dict[str, tuple[Callable[..., Any], Callable[..., Any], Any, str]] = {
    # name: (tensorgraph spelling, numpy reference, strategy for (a, b), recorded op)
    "arctan2": (tg.arctan2, np.arctan2, "nonzero", "arctan2"),
    "np.arctan2": (np.arctan2, np.arctan2, "nonzero", "arctan2"),
    "hypot": (tg.hypot, np.hypot, "nonzero", "hypot"),
    "np.hypot": (np.hypot, np.hypot, "nonzero", "hypot"),
    "logaddexp": (tg.logaddexp, np.logaddexp, "any", "logaddexp"),
    "np.logaddexp": (np.logaddexp, np.logaddexp, "any", "logaddexp"),
    "mod": (tg.mod, np.mod, "mod", "mod"),
    "remainder": (tg.remainder, np.remainder, "mod", "mod"),
    "np.mod": (np.mod, np.mod, "mod", "mod"),
    "%": (operator.mod, np.mod, "mod", "mod"),
    "floor_divide": (tg.floor_divide, np.floor_divide, "mod", "floor_divide"),
    "np.floor_divide": (np.floor_divide, np.floor_divide, "mod", "floor_divide"),
    "//": (operator.floordiv, np.floor_divide, "mod", "floor_divide"),
    "fmax": (tg.fmax, np.fmax, "lattice", "fmax"),
    "np.fmax": (np.fmax, np.fmax, "lattice", "fmax"),
    "fmin": (tg.fmin, np.fmin, "lattice", "fmin"),
    "np.fmin": (np.fmin, np.fmin, "lattice", "fmin"),
}


def _binary_operands(kind: str, data: st.DataObject, sa: S.Shape, sb: S.Shape) -> Any:
    if kind == "mod":
        return _mod_pair(data, sa, sb)
    if kind == "lattice":      # odd against even multiples of 0.05: never a tie
        return data.draw(_odd(sa), label="a"), data.draw(_even(sb), label="b")
    make = S.nonzero_arrays if kind == "nonzero" else S.arrays
    return data.draw(make(sa), label="a"), data.draw(make(sb), label="b")


@pytest.mark.parametrize("name", list(BINARY))
@SOME
@given(data=st.data())
def test_binary(name: str, data: st.DataObject) -> None:
    fn, ref, kind, recorded = BINARY[name]
    (sa, sb), _ = data.draw(S.broadcast_shapes(allow_zero=True), label="shapes")
    a, b = _binary_operands(kind, data, sa, sb)
    expected = ref(a, b)
    out = fn(leaf(a), leaf(b))
    assert_forward(out, expected)
    assert op_name(out) == recorded
    # An ndarray on either side, and the reflected operators.
    assert_forward(fn(a, leaf(b)), expected)
    assert_forward(fn(leaf(a), b), expected)
    if _primary(name):
        check_grads(fn, a, b)


def test_mod_follows_numpys_sign_convention() -> None:
    # The result has the sign of the divisor (Python's %, numpy.mod), not of
    # the dividend (C's fmod).
    a = np.array([7.0, -7.0, 7.0, -7.0, 5.5])
    b = np.array([3.0, 3.0, -3.0, -3.0, 2.0])
    x, y = leaf(a), leaf(b)
    out = x % y
    np.testing.assert_array_equal(out.data, [1.0, 2.0, -2.0, -1.0, 1.5])
    np.testing.assert_array_equal(out.data, np.mod(a, b))
    out.sum().backward()
    # a mod b = a - floor(a/b)·b: ∂/∂a = 1, ∂/∂b = -floor(a/b).
    np.testing.assert_array_equal(x.grad.data, np.ones(5))
    np.testing.assert_array_equal(y.grad.data, -np.floor(a / b))
    np.testing.assert_array_equal(y.grad.data, [-2.0, 3.0, 3.0, -2.0, -2.0])


def test_mod_and_floordiv_with_python_scalars() -> None:
    x = leaf([-3.5, 4.25])
    np.testing.assert_array_equal((x % 3).data, [2.5, 1.25])
    np.testing.assert_array_equal((10 % x).data, np.mod(10, [-3.5, 4.25]))
    np.testing.assert_array_equal((x // 2).data, [-2.0, 2.0])
    np.testing.assert_array_equal((7 // x).data, np.floor_divide(7, [-3.5, 4.25]))
    (x // 2).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


def test_integer_mod_and_floordiv_stay_integer() -> None:
    t = tg.tensor([7, -7])
    assert (t % 3).dtype == np.int64 and (t // 2).dtype == np.int64
    np.testing.assert_array_equal((t % 3).data, [1, 2])
    np.testing.assert_array_equal((t // 2).data, [3, -4])


def test_hypot_and_arctan2_broadcast_and_their_gradients() -> None:
    y = leaf([[1.0], [-2.0]])                 # (2, 1)
    x = leaf([3.0, -1.0, 0.5])                # (3,)
    ang = tg.arctan2(y, x)
    np.testing.assert_allclose(ang.data, np.arctan2(y.data, x.data))
    r = tg.hypot(y, x)
    np.testing.assert_allclose(r.data, np.hypot(y.data, x.data))
    (ang.sum() + r.sum()).backward()
    r2 = y.data ** 2 + x.data ** 2
    np.testing.assert_allclose(y.grad.data,
                               (x.data / r2 + y.data / np.sqrt(r2)).sum(1, keepdims=True))
    np.testing.assert_allclose(x.grad.data, (-y.data / r2 + x.data / np.sqrt(r2)).sum(0))


def test_hypot_at_the_origin_has_gradient_zero() -> None:
    a, b = leaf([0.0, 3.0]), leaf([0.0, 4.0])
    tg.hypot(a, b).sum().backward()
    np.testing.assert_allclose(a.grad.data, [0.0, 0.6])
    np.testing.assert_allclose(b.grad.data, [0.0, 0.8])


def test_fmax_fmin_ignore_nan_and_split_ties() -> None:
    a, b = leaf([1.0, np.nan, 2.0, 3.0]), leaf([np.nan, 5.0, 2.0, 1.0])
    out = tg.fmax(a, b)
    np.testing.assert_array_equal(out.data, [1.0, 5.0, 2.0, 3.0])
    out.sum().backward()
    np.testing.assert_array_equal(a.grad.data, [1.0, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(b.grad.data, [0.0, 1.0, 0.5, 0.0])
    a.grad = b.grad = None
    out = tg.fmin(a, b)
    np.testing.assert_array_equal(out.data, [1.0, 5.0, 2.0, 1.0])
    out.sum().backward()
    np.testing.assert_array_equal(a.grad.data, [1.0, 0.0, 0.5, 0.0])
    np.testing.assert_array_equal(b.grad.data, [0.0, 1.0, 0.5, 1.0])


# ---------------------------------------------------------------------------
# Reductions: std, prod, cumsum

@pytest.mark.parametrize("spelling", ["tg", "method", "numpy"])
@SOME
@given(data=st.data())
def test_std(spelling: str, data: st.DataObject) -> None:
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    a = data.draw(S.distinct_arrays(shape), label="x")
    axis, keepdims = data.draw(S.reduction_args(len(shape)), label="axis, keepdims")
    n = S.reduced_count(shape, axis)
    ddof = data.draw(st.integers(0, 1), label="ddof")
    assume(n - ddof >= 1 and n >= 2)        # std = 0 has no derivative
    fn = {"tg": lambda x: tg.std(x, axis=axis, ddof=ddof, keepdims=keepdims),
          "method": lambda x: x.std(axis=axis, ddof=ddof, keepdims=keepdims),
          "numpy": lambda x: np.std(x, axis=axis, ddof=ddof, keepdims=keepdims)}[spelling]
    out = fn(leaf(a))
    assert_forward(out, np.std(a, axis=axis, ddof=ddof, keepdims=keepdims), rtol=1e-10)
    assert op_name(out) == "std"
    if spelling == "tg":        # the others record the same op
        check_grads(fn, a)


@pytest.mark.parametrize("spelling", ["tg", "method", "numpy"])
@SOME
@given(data=st.data())
def test_prod(spelling: str, data: st.DataObject) -> None:
    shape = data.draw(S.shapes(allow_zero=True), label="shape")
    a = data.draw(S.arrays(shape, -1.5, 1.5), label="x")
    axis, keepdims = data.draw(S.reduction_args(len(shape)), label="axis, keepdims")
    fn = {"tg": lambda x: tg.prod(x, axis=axis, keepdims=keepdims),
          "method": lambda x: x.prod(axis=axis, keepdims=keepdims),
          "numpy": lambda x: np.prod(x, axis=axis, keepdims=keepdims)}[spelling]
    out = fn(leaf(a))
    assert_forward(out, np.prod(a, axis=axis, keepdims=keepdims), rtol=1e-10)
    assert op_name(out) == "prod"
    if spelling == "tg":        # the others record the same op
        check_grads(fn, a)


def test_std_of_equal_values_has_gradient_zero() -> None:
    # std = 0 there: (x - mean)/((N - ddof)·std) would be 0/0; the subgradient
    # 0, as PyTorch (and tg.norm at 0). One value along the axis is the same case.
    for a, axis in ((np.full((2, 3), 1.5), None), (np.array([[2.0, -1.0, 4.0]]), 0),
                    (np.array([[1.0, 1.0], [0.5, 2.0]]), 1)):
        x = leaf(a)
        y = tg.std(x, axis=axis)
        y.sum().backward()
        expected = np.zeros_like(a)
        if axis == 1:   # the second row is not constant: its usual gradient
            r = a[1]
            expected[1] = (r - r.mean()) / (2 * r.std())
        np.testing.assert_allclose(x.grad.data, expected, rtol=1e-12)
        assert np.isfinite(x.grad.data).all()
    # and the second derivative stays finite there
    x = leaf(np.full(3, 0.5))
    (g,) = tg.grad(tg.std(x), [x], create_graph=True)
    (h,) = tg.grad(g.sum(), [x], allow_unused=True)
    assert h is None or np.isfinite(h.data).all()


def test_prod_gradient_with_zeros() -> None:
    # ∂(Πx)/∂x_i = Π_{j≠i} x_j, also where x has zeros (x/x_i would be nan).
    x = leaf([[2.0, 0.0, 3.0, 5.0],       # one zero: only it gets a gradient
              [0.0, 4.0, 0.0, 1.0],       # two zeros: every gradient is 0
              [1.0, 2.0, 3.0, 4.0]])
    tg.prod(x, axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0.0, 30.0, 0.0, 0.0],
                                                [0.0, 0.0, 0.0, 0.0],
                                                [24.0, 12.0, 8.0, 6.0]])
    check_grads(lambda t: tg.prod(t, axis=1), x.data)
    check_grads(lambda t: tg.prod(t), np.array([0.0, 2.0, -3.0]))


def test_prod_second_derivative_without_zeros() -> None:
    check_second(lambda t: tg.prod(t, axis=(0, 2), keepdims=True),
                 np.array([[[0.5, 1.5], [2.0, -0.7]], [[-1.0, 3.0], [1.2, 0.9]]]))


def test_prod_second_derivative_with_zeros() -> None:
    # ∂²(x0 x1 x2)/∂x0∂x1 = x2: nonzero even where x0 = 0.
    x = leaf([0.0, 2.0, 3.0])
    (g,) = tg.grad(tg.prod(x), x, create_graph=True)
    np.testing.assert_array_equal(g.data, [6.0, 0.0, 0.0])
    (h0,) = tg.grad(g[0], x)
    np.testing.assert_array_equal(h0.data, [0.0, 3.0, 2.0])
    check_second(lambda t: tg.prod(t, axis=0), np.array([[0.0, 1.5], [2.0, 0.0], [-1.0, 3.0]]))


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@pytest.mark.parametrize("spelling", ["tg", "method", "numpy"])
@SOME
@given(data=st.data())
def test_running_sum_and_product(name: str, spelling: str, data: st.DataObject) -> None:
    shape = data.draw(S.shapes(allow_zero=True), label="shape")
    a = data.draw(S.arrays(shape, -1.5, 1.5), label="x")
    axis = data.draw(S.axes(len(shape), allow_tuple=False), label="axis")
    fn = {"tg": lambda x: getattr(tg, name)(x, axis=axis),
          "method": lambda x: getattr(x, name)(axis),
          "numpy": lambda x: getattr(np, name)(x, axis=axis)}[spelling]
    out = fn(leaf(a))
    assert_forward(out, getattr(np, name)(a, axis=axis), rtol=1e-12, atol=1e-14)
    assert op_name(out) == name
    if spelling == "tg":        # the others record the same op
        check_grads(fn, a)


# Zeros where the gradient would divide by x_i: one zero, two, a zero first
# and last, a row of them (a DNC's usage starts at exactly 0).
CUMPROD_ZEROS = np.array([[0.5, 0.0, 2.0, 0.0, 3.0],
                          [0.0, 1.5, -1.0, 1.2, 2.0],
                          [1.0, -2.0, 3.0, 0.5, 0.0],
                          [0.0, 0.0, 0.0, 0.0, 0.0]])


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_cumprod_gradient_with_zeros_against_central_differences(axis: Any) -> None:
    check_grads(lambda t: tg.cumprod(t, axis=axis), CUMPROD_ZEROS)


def test_cumprod_gradient_with_zeros_written_out() -> None:
    # ∂L/∂x_i = Σ_{j≥i} g_j Π_{k≤j, k≠i} x_k, summed term by term.
    g = np.arange(1.0, 6.0)
    for row in CUMPROD_ZEROS:
        x = leaf(row)
        (tg.cumprod(x) * g).sum().backward()
        want = [sum(g[j] * np.prod([row[k] for k in range(j + 1) if k != i])
                    for j in range(i, 5)) for i in range(5)]
        np.testing.assert_allclose(x.grad.data, want, rtol=1e-12)


@pytest.mark.parametrize("axis", [None, 1])
def test_cumprod_second_derivative(axis: Any) -> None:
    check_second(lambda t: tg.cumprod(t, axis=axis), CUMPROD_ZEROS)
    check_second(lambda t: tg.cumprod(t, axis=axis), CUMPROD_ZEROS + 0.25)   # no zeros


# ---------------------------------------------------------------------------
# Array ops: repeat, tile, roll, diagonal, diag, trace, sort

@SOME
@given(data=st.data())
def test_repeat(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(allow_zero=True), label="shape")
    a = data.draw(S.arrays(shape), label="x")
    axis = data.draw(S.axes(len(shape), allow_tuple=False), label="axis")
    n = a.size if axis is None else shape[axis]
    repeats = data.draw(st.one_of(st.integers(0, 3),
                                  st.lists(st.integers(0, 3), min_size=n, max_size=n)),
                        label="repeats")
    spelling = data.draw(st.sampled_from(["tg", "method", "numpy"]), label="spelling")
    fn = {"tg": lambda x: tg.repeat(x, repeats, axis=axis),
          "method": lambda x: x.repeat(repeats, axis=axis),
          "numpy": lambda x: np.repeat(x, repeats, axis=axis)}[spelling]
    out = fn(leaf(a))
    assert_forward(out, np.repeat(a, repeats, axis=axis))
    assert op_name(out) == "repeat"
    check_grads(fn, a)


def test_repeat_is_numpys_not_pytorchs() -> None:
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(x.repeat(2).data, [1, 1, 2, 2, 3, 3, 4, 4])
    np.testing.assert_array_equal(tg.repeat(x, [1, 2], axis=0).data, [[1, 2], [3, 4], [3, 4]])
    tg.repeat(x, [1, 3], axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[1, 3], [1, 3]])


def test_repeat_errors_name_the_op() -> None:
    x = tg.ones(2, 3)
    with pytest.raises(ValueError, match=r"repeat: 2 repeats for 3 elements along axis 1 "
                                         r"\(input shape \(2, 3\)\)"):
        tg.repeat(x, [1, 2], axis=1)
    with pytest.raises(ValueError, match="repeat: repeats must be a non-negative int"):
        tg.repeat(x, -1)


@SOME
@given(data=st.data())
def test_tile(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(allow_zero=True), label="shape")
    a = data.draw(S.arrays(shape), label="x")
    reps = data.draw(st.one_of(st.integers(0, 3),
                               st.lists(st.integers(0, 3), min_size=0, max_size=4).map(tuple)),
                     label="reps")
    spelling = data.draw(st.sampled_from(["tg", "method", "numpy"]), label="spelling")
    fn = {"tg": lambda x: tg.tile(x, reps), "method": lambda x: x.tile(reps),
          "numpy": lambda x: np.tile(x, reps)}[spelling]
    out = fn(leaf(a))
    assert_forward(out, np.tile(a, reps))
    assert op_name(out) == "tile"
    check_grads(fn, a)


def test_tile_gradient_counts_the_copies() -> None:
    x = leaf([1.0, 2.0])
    y = tg.tile(x, (2, 3))              # more reps than axes: a new leading axis
    assert y.shape == (2, 6)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [6.0, 6.0])


@st.composite
def _roll_args(draw: Any, ndim: int) -> tuple[Any, Any]:
    if ndim == 0 or draw(st.booleans()):
        return draw(st.integers(-7, 7)), None
    axes = draw(st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=3))
    if len(axes) == 1 and draw(st.booleans()):
        return draw(st.integers(-7, 7)), axes[0]
    shifts = draw(st.lists(st.integers(-7, 7), min_size=len(axes), max_size=len(axes)))
    return tuple(shifts), tuple(axes)       # an axis may repeat: numpy adds its shifts


@SOME
@given(data=st.data())
def test_roll(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(allow_zero=True), label="shape")
    a = data.draw(S.arrays(shape), label="x")
    shift, axis = data.draw(_roll_args(len(shape)), label="shift, axis")
    spelling = data.draw(st.sampled_from(["tg", "method", "numpy"]), label="spelling")
    fn = {"tg": lambda x: tg.roll(x, shift, axis=axis),
          "method": lambda x: x.roll(shift, axis=axis),
          "numpy": lambda x: np.roll(x, shift, axis=axis)}[spelling]
    out = fn(leaf(a))
    assert_forward(out, np.roll(a, shift, axis=axis))
    assert op_name(out) == "roll"
    check_grads(fn, a)


def test_roll_negative_and_multiple_shifts() -> None:
    x = leaf(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(tg.roll(x, -1).data, [[1, 2, 3], [4, 5, 0]])
    np.testing.assert_array_equal(tg.roll(x, (1, -1), axis=(0, 1)).data, [[4, 5, 3], [1, 2, 0]])
    w = np.arange(6.0).reshape(2, 3) * 10
    (tg.roll(x, (1, -1), axis=(0, 1)) * w).sum().backward()
    # The gradient rolls w back: element (i, j) went to (i+1, j-1).
    np.testing.assert_array_equal(x.grad.data, np.roll(w, (-1, 1), axis=(0, 1)))


def test_roll_shapes_of_shift_and_axis() -> None:
    x = leaf(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(tg.roll(x, (1, 2)).data, np.roll(x.data, (1, 2)))
    np.testing.assert_array_equal(tg.roll(x, 1, axis=(0, 1)).data, np.roll(x.data, 1, (0, 1)))
    with pytest.raises(ValueError, match=r"roll: 2 shifts for 3 axes \(input shape \(2, 3\)\)"):
        tg.roll(x, (1, 2), axis=(0, 1, 1))


@st.composite
def _diagonal_args(draw: Any) -> tuple[S.Shape, int, int, int]:
    shape = draw(S.shapes(min_dims=2, allow_zero=True))
    a1, a2 = draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=2, max_size=2)
                  .filter(lambda v: v[0] % len(shape) != v[1] % len(shape)))
    offset = draw(st.integers(-4, 4))
    return shape, offset, a1, a2


@SOME
@given(data=st.data())
def test_diagonal(data: st.DataObject) -> None:
    shape, offset, a1, a2 = data.draw(_diagonal_args(), label="shape, offset, axes")
    a = data.draw(S.arrays(shape), label="x")
    spelling = data.draw(st.sampled_from(["tg", "method", "numpy"]), label="spelling")
    fn = {"tg": lambda x: tg.diagonal(x, offset, a1, a2),
          "method": lambda x: x.diagonal(offset, a1, a2),
          "numpy": lambda x: np.diagonal(x, offset, a1, a2)}[spelling]
    out = fn(leaf(a))
    assert_forward(out, np.diagonal(a, offset, a1, a2))
    assert op_name(out) == "diagonal"
    check_grads(fn, a)


@SOME
@given(data=st.data())
def test_trace(data: st.DataObject) -> None:
    shape, offset, a1, a2 = data.draw(_diagonal_args(), label="shape, offset, axes")
    a = data.draw(S.arrays(shape), label="x")
    spelling = data.draw(st.sampled_from(["tg", "method", "numpy"]), label="spelling")
    fn = {"tg": lambda x: tg.trace(x, offset, a1, a2),
          "method": lambda x: x.trace(offset, a1, a2),
          "numpy": lambda x: np.trace(x, offset, a1, a2)}[spelling]
    out = fn(leaf(a))
    assert_forward(out, np.trace(a, offset, a1, a2), atol=1e-14)
    check_grads(fn, a)


def test_trace_and_diagonal_with_offset() -> None:
    x = leaf(np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(tg.diagonal(x, 1).data, [1, 6, 11])
    np.testing.assert_array_equal(tg.diagonal(x, -1).data, [4, 9])
    assert tg.trace(x, 1).item() == 18.0
    tg.trace(x, -1).backward()
    expected = np.zeros((3, 4))
    expected[1, 0] = expected[2, 1] = 1.0
    np.testing.assert_array_equal(x.grad.data, expected)


def test_diagonal_errors_name_the_op() -> None:
    with pytest.raises(ValueError,
                       match=r"diagonal: needs at least 2 dimensions, got shape \(3,\)"):
        tg.diagonal(tg.ones(3))
    with pytest.raises(ValueError, match="diagonal: axis1 and axis2 cannot be the same"):
        tg.diagonal(tg.ones(2, 2), 0, 1, -1)
    with pytest.raises(ValueError, match=r"^trace: needs at least 2 dimensions, got shape \(3,\)"):
        tg.trace(tg.ones(3))


@SOME
@given(data=st.data())
def test_diag(data: st.DataObject) -> None:
    ndim = data.draw(st.sampled_from([1, 2]), label="ndim")
    shape = data.draw(S.shapes(min_dims=ndim, max_dims=ndim, allow_zero=True), label="shape")
    a = data.draw(S.arrays(shape), label="x")
    k = data.draw(st.integers(-3, 3), label="k")
    fn = data.draw(st.sampled_from([lambda x: tg.diag(x, k), lambda x: np.diag(x, k),
                                    lambda x: x.diag(k)]), label="spelling")
    out = fn(leaf(a))
    assert_forward(out, np.diag(a, k))
    assert op_name(out) == ("diag" if ndim == 1 else "diagonal")
    check_grads(fn, a)


def test_diag_needs_1d_or_2d() -> None:
    with pytest.raises(ValueError, match=r"diag: input must be 1-D or 2-D, got shape \(2, 2, 2\)"):
        tg.diag(tg.ones(2, 2, 2))


@SOME
@given(data=st.data())
def test_sort(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(allow_zero=True), label="shape")
    # Distinct values: no ties, so the sort is differentiable everywhere nearby.
    a = data.draw(S.distinct_arrays(shape), label="x")
    axis = data.draw(st.none() if not shape else S.axes(len(shape), allow_tuple=False),
                     label="axis")
    spelling = data.draw(st.sampled_from(["tg", "method", "numpy"]), label="spelling")
    fn = {"tg": lambda x: tg.sort(x, axis=axis), "method": lambda x: x.sort(axis=axis),
          "numpy": lambda x: np.sort(x, axis=axis)}[spelling]
    out = fn(leaf(a))
    assert_forward(out, np.sort(a, axis=axis))
    assert op_name(out) == "sort"
    check_grads(fn, a)


def test_sort_with_ties_sends_each_gradient_to_one_element() -> None:
    x = leaf([[3.0, 1.0, 3.0, 1.0, 2.0]])
    y = tg.sort(x)
    np.testing.assert_array_equal(y.data, [[1.0, 1.0, 2.0, 3.0, 3.0]])
    w = np.array([[10.0, 20.0, 30.0, 40.0, 50.0]])
    (y * w).sum().backward()
    # Stable: the first 1 (index 1) takes the first place, the second (index 3)
    # the next; the same for the 3s. Every g lands exactly once.
    np.testing.assert_array_equal(x.grad.data, [[40.0, 10.0, 50.0, 20.0, 30.0]])


@SOME
@given(data=st.data())
def test_argsort(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(allow_zero=True), label="shape")
    a = data.draw(S.small_int_arrays(shape), label="x")      # many ties: the order is stable
    axis = data.draw(st.none() if not shape else S.axes(len(shape), allow_tuple=False),
                     label="axis")
    for fn in (lambda x: tg.argsort(x, axis), lambda x: x.argsort(axis),
               lambda x: np.argsort(x, axis)):
        out = fn(leaf(a))
        assert_forward(out, np.argsort(a, axis, kind="stable"))
        assert not out.requires_grad
    # sort's values are x taken at argsort's indices
    if axis is None:
        np.testing.assert_array_equal(tg.sort(leaf(a), None).data,
                                      a.reshape(-1)[tg.argsort(leaf(a), None).data])
    else:
        np.testing.assert_array_equal(tg.sort(leaf(a), axis).data, np.take_along_axis(
            a, tg.argsort(leaf(a), axis).data, axis))


def test_sort_accepts_numpys_kind() -> None:
    x = leaf([2.0, -1.0, 0.5])
    np.testing.assert_array_equal(np.sort(x, kind="quicksort").data, [-1.0, 0.5, 2.0])
    with pytest.raises(ValueError, match="sort: unknown kind 'bogus'"):
        tg.sort(x, kind="bogus")


def test_sort_method_returns_a_new_tensor() -> None:
    # numpy's ndarray.sort sorts in place; a recorded tensor is never changed
    # in place, so Tensor.sort returns the sorted copy (np.sort's meaning).
    x = leaf([2.0, 1.0])
    y = x.sort()
    np.testing.assert_array_equal(y.data, [1.0, 2.0])
    np.testing.assert_array_equal(x.data, [2.0, 1.0])


# ---------------------------------------------------------------------------
# Linear algebra: einsum, inner, cross, norm

EINSUM_CASES = [
    # (subscripts, operand shapes)
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),               # implicit: "ik"
    ("ij,ij->", [(2, 3), (2, 3)]),
    ("i,i", [(4,), (4,)]),                      # implicit: a scalar
    ("i,j->ij", [(2,), (3,)]),
    ("ij->ji", [(2, 3)]),
    ("ij", [(2, 3)]),
    ("ji", [(2, 3)]),                           # implicit output sorts: a transpose
    ("ii", [(3, 3)]),                           # trace
    ("ii->i", [(3, 3)]),                        # diagonal
    ("iij->j", [(2, 2, 3)]),
    ("ij->i", [(2, 3)]),                        # a sum over j only x has
    ("ij->", [(2, 3)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
    ("...ij,...jk->...ik", [(2, 2, 3), (3, 4)]),   # ellipsis, broadcast batch
    ("...i,...i", [(3, 4), (1, 4)]),               # implicit with ellipsis: "..."
    ("i...->...", [(3, 2, 2)]),
    ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]),
    ("ij,kj->ikj", [(1, 3), (2, 3)]),           # size-1 letter broadcasts
    ("ij,ij", [(2, 3), (1, 3)]),                # ... and comes back stretched
    ("ij,ij->i", [(1, 3), (2, 1)]),
    ("a,b,c", [(2,), (3,), (1,)]),
    ("Ab,bC->AC", [(2, 3), (3, 2)]),
    ("aB,Ab", [(2, 3), (4, 3)]),                # implicit: ASCII order, "ABab"
]


@pytest.mark.parametrize("subscripts, shapes", EINSUM_CASES)
@FEW
@given(data=st.data())
def test_einsum(subscripts: str, shapes: list[S.Shape], data: st.DataObject) -> None:
    arrays = [data.draw(S.arrays(s), label=f"x{i}") for i, s in enumerate(shapes)]
    expected = np.einsum(subscripts, *arrays)
    for fn in (lambda *xs: tg.einsum(subscripts, *xs), lambda *xs: np.einsum(subscripts, *xs)):
        out = fn(*[leaf(a) for a in arrays])
        assert_forward(out, expected, rtol=1e-10, atol=1e-14)
        assert op_name(out) == "einsum"
    check_grads(lambda *xs: tg.einsum(subscripts, *xs), *arrays)


def test_einsum_accepts_numpys_optimize() -> None:
    a = leaf(np.arange(6.0).reshape(2, 3))
    out = np.einsum("ij,kj,k->i", a, a, np.ones(2), optimize=True)
    np.testing.assert_allclose(out.data, np.einsum("ij,kj,k->i", a.data, a.data, np.ones(2)))


def test_einsum_errors_name_the_op() -> None:
    a = tg.ones(2, 3)
    with pytest.raises(ValueError, match="einsum: subscripts 'ij,jk' name 2 operand"):
        tg.einsum("ij,jk", a)
    with pytest.raises(ValueError, match=r"einsum: subscripts 'ijk' give 3 axes for an operand "
                                         r"of shape \(2, 3\)"):
        tg.einsum("ijk", a)
    with pytest.raises(ValueError, match=r"einsum: .*\(input shapes: \(2, 3\), \(2, 3\)"):
        tg.einsum("ij,jk->ik", a, a)
    with pytest.raises(TypeError, match="einsum: give the subscripts as a string"):
        tg.einsum(a, [0, 1])


@pytest.mark.parametrize("sa, sb", [((3,), (3,)), ((2, 3), (3,)), ((2, 3), (4, 3)),
                                    ((2, 1, 3), (2, 3)), ((), (2, 3)), ((3,), ())])
@FEW
@given(data=st.data())
def test_inner(sa: S.Shape, sb: S.Shape, data: st.DataObject) -> None:
    a, b = data.draw(S.arrays(sa), label="a"), data.draw(S.arrays(sb), label="b")
    for fn in (tg.inner, np.inner, lambda x, y: x.inner(y)):
        out = fn(leaf(a), leaf(b))
        assert_forward(out, np.inner(a, b), rtol=1e-10, atol=1e-14)
    check_grads(tg.inner, a, b)


def test_inner_checks_the_last_axes() -> None:
    with pytest.raises(ValueError, match=r"inner: the last axes must match, got shapes \(2, 3\) "
                                         r"and \(1,\)"):
        tg.inner(tg.ones(2, 3), tg.ones(1))


@SOME
@given(data=st.data())
def test_cross(data: st.DataObject) -> None:
    (sa, sb), _ = data.draw(S.broadcast_shapes(max_dims=2), label="batch shapes")
    a = data.draw(S.arrays(sa + (3,)), label="a")
    b = data.draw(S.arrays(sb + (3,)), label="b")
    for fn in (tg.cross, np.cross, lambda x, y: x.cross(y)):
        out = fn(leaf(a), leaf(b))
        assert_forward(out, np.cross(a, b), rtol=1e-10, atol=1e-14)
        assert op_name(out) == "cross"
    check_grads(tg.cross, a, b)


def test_cross_along_other_axes() -> None:
    a = np.arange(6.0).reshape(3, 2)            # vectors down axis 0
    b = np.array([[1.0, 0.0, 2.0], [0.5, -1.0, 1.0]])   # vectors along axis 1
    expected = np.cross(a, b, axisa=0, axisb=1, axisc=0)
    fn = lambda x, y: tg.cross(x, y, axisa=0, axisb=1, axisc=0)   # noqa: E731
    assert_forward(fn(leaf(a), leaf(b)), expected)
    check_grads(fn, a, b)
    c = np.arange(12.0).reshape(3, 4) - 5
    assert_forward(tg.cross(leaf(c), leaf(c[::-1].copy()), axis=0), np.cross(c, c[::-1], axis=0))


def test_cross_of_the_unit_vectors() -> None:
    e = np.eye(3)
    np.testing.assert_array_equal(tg.cross(tg.tensor(e[0]), tg.tensor(e[1])).data, e[2])
    with pytest.raises(ValueError, match=r"cross: only 3-vectors are supported, got vectors of "
                                         r"sizes 2 and 3 \(input shapes \(2,\) and \(3,\)\)"):
        tg.cross(tg.ones(2), tg.ones(3))
    with pytest.raises(ValueError, match=r"sizes 3 and 2 \(input shapes \(4, 3\) and \(2, 1\)\)"):
        tg.cross(tg.ones(4, 3), tg.ones(2, 1), axisb=0)


@st.composite
def _distinct_magnitudes(draw: Any, shape: S.Shape) -> np.ndarray:
    """Either sign, |x| >= 0.1 and all |x| at least 0.1 apart: no tie for
    max|x| or a sum of them, no kink of |x|."""
    n = int(np.prod(shape))
    perm = np.array(draw(st.permutations(range(n))), dtype=np.float64)
    signs = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n, max_size=n)))
    return (signs * (0.1 + 0.1 * perm)).reshape(shape)


VECTOR_ORDS = [None, 2, 1, np.inf, -np.inf, 3, 0.5]
MATRIX_ORDS = [None, "fro", 1, -1, np.inf, -np.inf, 2, -2, "nuc"]


@pytest.mark.parametrize("ord", VECTOR_ORDS)
@FEW
@given(data=st.data())
def test_vector_norm(ord: Any, data: st.DataObject) -> None:
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    a = data.draw(_distinct_magnitudes(shape), label="x")
    axis = data.draw(st.none() if len(shape) == 1 else st.integers(-len(shape), len(shape) - 1),
                     label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")
    fn = lambda x: tg.norm(x, ord=ord, axis=axis, keepdims=keepdims)   # noqa: E731
    expected = np.linalg.norm(a, ord=ord, axis=axis, keepdims=keepdims)
    assert_forward(fn(leaf(a)), expected, rtol=1e-10)
    assert_forward(np.linalg.norm(leaf(a), ord=ord, axis=axis, keepdims=keepdims), expected,
                   rtol=1e-10)
    check_grads(fn, a)


@pytest.mark.parametrize("ord", MATRIX_ORDS)
@FEW
@given(data=st.data())
def test_matrix_norm(ord: Any, data: st.DataObject) -> None:
    shape = data.draw(S.shapes(min_dims=2), label="shape")
    a = data.draw(_distinct_magnitudes(shape), label="x")
    if len(shape) == 2 and data.draw(st.booleans(), label="axis None"):
        axis = None
    else:
        axis = tuple(data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=2,
                                        max_size=2, unique_by=lambda v: v % len(shape)),
                               label="axis"))
    keepdims = data.draw(st.booleans(), label="keepdims")
    if ord in (2, -2, "nuc"):
        # Distinct singular values, and sums of |x| with one winner: differentiable.
        m = np.moveaxis(a, axis if axis else (0, 1), (-2, -1))
        s = np.linalg.svd(m, compute_uv=False)
        assume(s.shape[-1] == 0 or (np.diff(s, axis=-1) < -1e-3).all() and s.min() > 1e-3)
    fn = lambda x: tg.norm(x, ord=ord, axis=axis, keepdims=keepdims)   # noqa: E731
    expected = np.linalg.norm(a, ord=ord, axis=axis, keepdims=keepdims)
    assert_forward(fn(leaf(a)), expected, rtol=1e-10)
    assert_forward(np.linalg.norm(leaf(a), ord=ord, axis=axis, keepdims=keepdims), expected,
                   rtol=1e-10)
    if ord in (1, -1, np.inf, -np.inf):
        row, col = (0, 1) if axis is None else axis
        inner_ax, outer_ax = (row, col) if ord in (1, -1) else (col, row)
        sums = np.sort(np.abs(a).sum(axis=inner_ax, keepdims=True), axis=outer_ax)
        assume(sums.shape[outer_ax] < 2 or (np.diff(sums, axis=outer_ax) > 1e-3).all())
    check_grads(fn, a)


@SOME
@given(data=st.data())
def test_norm_of_all_elements(data: st.DataObject) -> None:
    # axis=None, ord=None: the 2-norm of all elements, whatever the ndim (numpy).
    shape = data.draw(S.shapes(), label="shape")
    a = data.draw(S.nonzero_arrays(shape), label="x")
    keepdims = data.draw(st.booleans(), label="keepdims")
    fn = lambda x: tg.norm(x, keepdims=keepdims)   # noqa: E731
    out = fn(leaf(a))
    assert_forward(out, np.linalg.norm(a, keepdims=keepdims), rtol=1e-10)
    assert op_name(out) == "norm"
    assert_forward(leaf(a).norm(), np.linalg.norm(a), rtol=1e-10)
    check_grads(fn, a)


def test_norm_of_zero_has_gradient_zero() -> None:
    x = leaf([0.0, 0.0])
    tg.norm(x).backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


def test_vector_norm_zero_counts_nonzeros() -> None:
    a = np.array([0.0, 1.5, -2.0, 0.0])
    assert tg.norm(tg.tensor(a), ord=0).item() == np.linalg.norm(a, ord=0) == 2.0


def test_norm_errors_name_the_op() -> None:
    with pytest.raises(ValueError, match=r"norm: with ord=1 and axis=None the input must be 1-D "
                                         r"or 2-D, got shape \(2, 2, 2\)"):
        tg.norm(tg.ones(2, 2, 2), ord=1)
    with pytest.raises(ValueError, match="norm: invalid ord 'fro' for a vector norm"):
        tg.norm(tg.ones(3), ord="fro")
    with pytest.raises(ValueError, match="norm: invalid ord 3 for a matrix norm"):
        tg.norm(tg.ones(2, 2), ord=3)


def test_svdvals_has_no_second_derivative_yet() -> None:
    x = leaf([[2.0, 1.0], [0.0, 1.0]])
    (g,) = tg.grad(tg.norm(x, ord=2), x)
    u, s, vh = np.linalg.svd(x.data)
    np.testing.assert_allclose(g.data, np.outer(u[:, 0], vh[0]))
    with pytest.raises(NotImplementedError, match="svdvals .* second derivatives"):
        tg.grad(tg.norm(x, ord=2), x, create_graph=True)


# ---------------------------------------------------------------------------
# Second derivatives: the VJPs are written with ops, so create_graph works.

SECOND: dict[str, tuple[Callable[..., Any], list[Any]]] = {
    "sin": (tg.sin, [np.array([0.3, -1.2, 2.0])]),
    "cos": (tg.cos, [np.array([0.3, -1.2, 2.0])]),
    "tan": (tg.tan, [np.array([0.3, -1.0, 0.7])]),
    "sinh, cosh": (lambda x: tg.sinh(x) * tg.cosh(x), [np.array([0.3, -1.2])]),
    "arcsin": (tg.arcsin, [np.array([0.3, -0.8])]),
    "arccos": (tg.arccos, [np.array([0.3, -0.8])]),
    "arctan": (tg.arctan, [np.array([0.3, -1.8])]),
    "arcsinh": (tg.arcsinh, [np.array([0.3, -1.8])]),
    "arccosh": (tg.arccosh, [np.array([1.3, 2.8])]),
    "arctanh": (tg.arctanh, [np.array([0.3, -0.8])]),
    "log2, log10, log1p": (lambda x: tg.log2(x) * tg.log10(x) + tg.log1p(x),
                           [np.array([0.3, 1.7])]),
    "exp2, expm1": (lambda x: tg.exp2(x) * tg.expm1(x), [np.array([0.3, -1.7])]),
    "square, reciprocal": (lambda x: tg.square(x) * tg.reciprocal(x + 3), [np.array([0.3, -1.7])]),
    "sinc": (tg.sinc, [np.array([0.3, -1.7, 0.9])]),
    "arctan2": (tg.arctan2, [np.array([0.5, -1.0]), np.array([[1.5], [-0.7]])]),
    "hypot": (tg.hypot, [np.array([0.5, -1.0]), np.array([[1.5], [-0.7]])]),
    "logaddexp": (tg.logaddexp, [np.array([0.5, -1.0]), np.array([[1.5], [-0.7]])]),
    "mod": (lambda a, b: tg.mod(a, b) * a * b, [np.array([2.3, -1.3]), np.array([0.7, 0.9])]),
    "fmax, fmin": (lambda a, b: tg.fmax(a, b) * tg.fmin(a, b) * a,
                   [np.array([0.5, -1.0]), np.array([0.3, 1.0])]),
    "floor, round": (lambda x: (tg.floor(x) + tg.round(x)) * x, [np.array([0.3, -1.7])]),
    "std": (lambda x: tg.std(x, axis=1, ddof=1), [np.array([[0.5, -1.0, 2.0], [1.0, 0.2, 0.3]])]),
    "prod": (lambda x: tg.prod(x, axis=1), [np.array([[0.5, -1.0, 2.0], [1.0, 0.2, 0.3]])]),
    "cumsum": (lambda x: tg.cumsum(x, axis=0) ** 2, [np.array([[0.5, -1.0], [1.0, 0.2]])]),
    "repeat, tile": (lambda x: tg.tile(tg.repeat(x, [1, 2], axis=0), 2) ** 3,
                     [np.array([[0.5, -1.0], [1.0, 0.2]])]),
    "roll, diagonal": (lambda x: tg.diagonal(tg.roll(x, 1, axis=1)) ** 3,
                       [np.array([[0.5, -1.0], [1.0, 0.2]])]),
    "diag, trace": (lambda x: tg.trace(tg.diag(x ** 2) @ tg.diag(x)), [np.array([0.5, -1.0])]),
    "sort": (lambda x: tg.sort(x) ** 3 * np.array([1.0, 2.0, 3.0]), [np.array([0.5, -1.0, 2.0])]),
    "einsum": (lambda a, b: tg.einsum("ii,ij->j", a, b) ** 2,
               [np.array([[0.5, -1.0], [1.0, 0.2]]), np.array([[0.3, 1.0], [2.0, -1.5]])]),
    "inner": (lambda a, b: tg.inner(a, b) ** 2, [np.array([0.5, -1.0]), np.array([0.3, 1.0])]),
    "cross": (lambda a, b: tg.cross(a, b) ** 2,
              [np.array([0.5, -1.0, 2.0]), np.array([[0.3, 1.0, 0.1], [2.0, -1.5, 1.0]])]),
    "norm": (lambda x: tg.norm(x, axis=0), [np.array([[0.5, -1.0], [1.0, 0.2]])]),
    "norm ord 1, inf": (lambda x: tg.norm(x, ord=1) * tg.norm(x, ord=np.inf),
                        [np.array([[0.5, -1.0], [1.3, 0.4]])]),
}


@pytest.mark.parametrize("name", list(SECOND))
def test_second_derivatives(name: str) -> None:
    fn, arrays = SECOND[name]
    check_second(fn, *arrays)


THIRD: dict[str, tuple[Callable[..., Any], list[Any]]] = {
    "tan": (tg.tan, [np.array([0.3, -0.7])]),
    "arcsin": (tg.arcsin, [np.array([0.3, -0.6])]),
    "arctanh": (tg.arctanh, [np.array([0.3, -0.6])]),
    "logaddexp": (tg.logaddexp, [np.array([0.5, -1.0]), np.array([1.5, -0.7])]),
    "hypot": (tg.hypot, [np.array([0.5, -1.0]), np.array([1.5, -0.7])]),
    "std": (lambda x: tg.std(x, axis=0), [np.array([[0.5, -1.0], [1.0, 0.2], [0.1, 0.7]])]),
    "prod": (lambda x: tg.prod(x, axis=0), [np.array([[0.5, -1.0], [1.0, 0.2], [0.1, 0.7]])]),
    "sinc": (tg.sinc, [np.array([0.3, -1.4])]),
}


@pytest.mark.parametrize("name", list(THIRD))
def test_third_derivatives(name: str) -> None:
    # d/dx of the second derivative (Σ of the Hessian's rows, made with
    # create_graph twice) against finite differences.
    fn, arrays = THIRD[name]

    def second(*xs: tg.Tensor) -> Any:
        g = tg.grad(fn(*xs).sum(), list(xs), create_graph=True)
        return tg.grad(sum(gi.sum() for gi in g), list(xs), create_graph=True)
    assert tg.gradcheck(second, [leaf(a) for a in arrays])


def test_third_derivative_of_sin() -> None:
    x = leaf([0.3, -1.1])
    (d1,) = tg.grad(tg.sin(x).sum(), x, create_graph=True)
    (d2,) = tg.grad(d1.sum(), x, create_graph=True)
    (d3,) = tg.grad(d2.sum(), x)
    np.testing.assert_allclose(d3.data, -np.cos(x.data))


# ---------------------------------------------------------------------------
# float32 stays float32, forward and backward

FLOAT32_CASES: dict[str, Callable[..., Any]] = {
    **{n: getattr(tg, n) for n in ["sin", "cos", "tan", "sinh", "cosh", "arctan", "arcsinh",
                                   "exp2", "expm1", "square", "sinc", "floor", "ceil", "round"]},
    "arcsin": lambda x: tg.arcsin(x * 0.1),
    "arccos": lambda x: tg.arccos(x * 0.1),
    "arctanh": lambda x: tg.arctanh(x * 0.1),
    "arccosh": lambda x: tg.arccosh(x + 2),
    "log2": lambda x: tg.log2(x + 2),
    "log10": lambda x: tg.log10(x + 2),
    "log1p": lambda x: tg.log1p(x + 2),
    "reciprocal": lambda x: tg.reciprocal(x + 2),
    "arctan2": lambda x: tg.arctan2(x, 2.0),
    "hypot": lambda x: tg.hypot(x, 2.0),
    "logaddexp": lambda x: tg.logaddexp(x, 0.5),
    "mod": lambda x: x % 0.7,
    "rmod": lambda x: 2.5 % (x + 2),
    "floor_divide": lambda x: x // 0.7,
    "fmax": lambda x: tg.fmax(x, 0.1),
    "fmin": lambda x: tg.fmin(x, 0.1),
    "std": lambda x: tg.std(x, axis=0),
    "prod": lambda x: tg.prod(x, axis=1),
    "cumsum": lambda x: tg.cumsum(x, axis=1),
    "repeat": lambda x: tg.repeat(x, 2, axis=0),
    "tile": lambda x: tg.tile(x, (2, 1)),
    "roll": lambda x: tg.roll(x, 1),
    "trace": tg.trace,
    "diagonal": tg.diagonal,
    "diag": lambda x: tg.diag(x[0]),
    "inner": lambda x: tg.inner(x, x),
    "cross": lambda x: tg.cross(x, x[::-1]),
    "sort": tg.sort,
    "einsum": lambda x: tg.einsum("ij,jk", x, x),
    "norm": tg.norm,
    "norm ord 2": lambda x: tg.norm(x, ord=2),
    "norm ord 1": lambda x: tg.norm(x, ord=1),
}


@pytest.mark.parametrize("name", list(FLOAT32_CASES))
def test_float32_stays_float32(name: str) -> None:
    x = tg.tensor(np.array([[0.3, -0.4, 0.9], [0.2, 0.5, -0.6], [0.7, 0.1, 0.25]], np.float32),
                  requires_grad=True)
    y = FLOAT32_CASES[name](x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


# ---------------------------------------------------------------------------
# A Tensor that requires grad given to numpy's own function is never silently
# turned into an array.

@pytest.mark.parametrize("fn", [np.sin, np.cumsum, np.cumprod, np.prod, np.std, np.sort, np.trace,
                                lambda t: np.einsum("ij->j", t), np.linalg.norm, np.square])
def test_numpy_functions_on_tensors_record(fn: Any) -> None:
    x = leaf([[0.5, -1.0], [1.0, 0.2]])
    y = fn(x)
    assert isinstance(y, tg.Tensor) and y.requires_grad
    y.sum().backward()
    assert x.grad is not None and np.isfinite(x.grad.data).all()



# What tests/test_ops.py and tests/test_tensor.py asserted with np.sin,
# np.cumsum, np.cumprod, np.sort, np.linalg.norm and np.cos (ops now) holds for the
# numpy functions that are still not ops.
@pytest.mark.parametrize("fn, shown", [
    (np.cbrt, r"numpy\.cbrt is not a tensorgraph op"),
    (np.median, r"numpy\.median is not a tensorgraph op"),
    (lambda t: np.linalg.det(t.reshape(2, 2)), r"numpy\.(linalg\.)?det is not a tensorgraph op"),
])
def test_numpy_functions_that_are_still_not_ops_raise(fn: Any, shown: str) -> None:
    x = leaf([0.5, 1.5, 2.5, 3.0])
    with pytest.raises(TypeError, match=shown) as info:
        fn(x)
    assert "cannot carry a gradient" in str(info.value)
    # without a gradient to lose, numpy just computes
    np.testing.assert_allclose(np.asarray(fn(tg.tensor(x.data))), fn(x.data))


def test_numpy_value_free_helpers_work_on_a_tensor_that_requires_grad() -> None:
    # their result depends on the shape and dtype only: nothing to lose
    x = leaf([[0.5, 1.5, 2.5]])
    for fn, fill in ((np.zeros_like, 0.0), (np.ones_like, 1.0),
                     (lambda t: np.full_like(t, 7.0), 7.0)):
        out = fn(x)
        assert isinstance(out, np.ndarray) and out.shape == (1, 3) and out.dtype == np.float64
        np.testing.assert_array_equal(out, np.full((1, 3), fill))
    assert np.empty_like(x).shape == (1, 3)


def test_numpy_arguments_an_op_lacks_are_named() -> None:
    x = leaf([0.5, 1.5])
    with pytest.raises(TypeError, match=r"numpy\.exp with out= is not a tensorgraph op \(the op "
                                        r"takes no out=, where= or dtype=\)"):
        np.exp(x, out=np.zeros(2))
    with pytest.raises(TypeError, match=r"numpy\.sum on a Tensor runs tg\.sum\(x.*\): .*"
                                        r"unexpected keyword argument 'out'"):
        np.sum(x, out=np.zeros(()))
    # without a gradient to lose, numpy's keywords work as in numpy
    out = np.zeros(2)
    np.exp(tg.tensor(x.data), out=out)
    np.testing.assert_allclose(out, np.exp(x.data))
