"""numpy's elementwise functions and the reductions a numpy user reaches for.

Each op is its forward (a numpy function) beside one VJP per input. The VJPs
are written with operators, numpy functions that dispatch to tensorgraph and
the `Op` objects of this file, so they run on arrays (a plain backward) and on
Tensors (`create_graph=True`): every op here has second derivatives.

floor, ceil, round, floor_divide are piecewise constant: their gradient is 0
(as HIPS autograd and PyTorch define it), not an error, so they can sit inside
a differentiable computation.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from ..tensor import ArrayLike, Tensor, _new
from .registry import (OPS, Axis, Op, as_tensor, axes, binary, constant, count, keep, norm_axis,
                       torch_alias, unary)
from .shape import FLIP

defop, public = OPS.defop, OPS.public

__all__ = ['SIN', 'COS', 'TAN', 'SINH', 'COSH', 'ARCSIN', 'ARCCOS', 'ARCTAN', 'ARCSINH',
           'ARCCOSH', 'ARCTANH', 'ARCTAN2', 'SINC', 'LOG2', 'LOG10', 'LOG1P', 'EXP2', 'EXPM1',
           'SQUARE', 'RECIPROCAL', 'LOGADDEXP', 'HYPOT', 'FLOOR', 'CEIL', 'ROUND', 'FLOOR_DIVIDE',
           'MOD', 'FMAX', 'FMIN', 'STD', 'PROD', 'CUMSUM', 'CUMPROD', 'sin', 'cos', 'tan', 'sinh', 'cosh',
           'arcsin', 'arccos', 'arctan', 'arcsinh', 'arccosh', 'arctanh', 'arctan2', 'sinc',
           'log2', 'log10', 'log1p', 'exp2', 'expm1', 'square', 'reciprocal', 'logaddexp',
           'hypot', 'floor', 'ceil', 'round', 'floor_divide', 'mod', 'remainder', 'fmax', 'fmin',
           'std', 'prod', 'cumsum', 'cumprod']

LN2 = math.log(2.0)
LN10 = math.log(10.0)


def _zeros(g: Any) -> Any:
    """A zero gradient of g's shape and dtype (g * 0 would turn inf into nan)."""
    if isinstance(g, Tensor):
        return _new(np.zeros_like(g._data))
    return np.zeros_like(g)


def _zero_vjp(g: Any, out: Any, *xs: Any, **attrs: Any) -> Any:
    return _zeros(g)


def _safe(d: Any) -> Any:
    """d with its zeros replaced by 1, for a division guarded by a where()."""
    return np.where(d == 0, 1, d)


# ---------------------------------------------------------------------------
# Trigonometric and hyperbolic functions

COS: Op        # declared below; the VJPs of sin and sinh use them
COSH: Op
SIN = defop("sin", np.sin, lambda g, out, x: g * COS(x))
COS = defop("cos", np.cos, lambda g, out, x: -g * SIN(x))
TAN = defop("tan", np.tan, lambda g, out, x: g * (1 + out * out))          # sec² = 1 + tan²
SINH = defop("sinh", np.sinh, lambda g, out, x: g * COSH(x))
COSH = defop("cosh", np.cosh, lambda g, out, x: g * SINH(x))
ARCSIN = defop("arcsin", np.arcsin, lambda g, out, x: g / np.sqrt(1 - x * x))
ARCCOS = defop("arccos", np.arccos, lambda g, out, x: -g / np.sqrt(1 - x * x))
ARCTAN = defop("arctan", np.arctan, lambda g, out, x: g / (1 + x * x))
ARCSINH = defop("arcsinh", np.arcsinh, lambda g, out, x: g / np.sqrt(x * x + 1))
ARCCOSH = defop("arccosh", np.arccosh, lambda g, out, x: g / np.sqrt(x * x - 1))
ARCTANH = defop("arctanh", np.arctanh, lambda g, out, x: g / (1 - x * x))
ARCTAN2 = defop("arctan2", np.arctan2,
                lambda g, out, y, x: g * x / (x * x + y * y),
                lambda g, out, y, x: -g * y / (x * x + y * y))


def _sinc_vjp(g: Any, out: Any, x: Any) -> Any:
    # sinc(x) = sin(πx)/(πx): d/dx = (cos(πx) - sinc(x))/x, and 0 at x = 0.
    # At 0 the branch is x·sinc''(0) = -x·π²/3: 0 there, and its derivative is
    # the true second derivative (the third, 0, follows too), as create_graph needs.
    return g * np.where(x == 0, x * (-math.pi ** 2 / 3), (COS(math.pi * x) - out) / _safe(x))


SINC = defop("sinc", np.sinc, _sinc_vjp)


@public(SIN, method=True, numpy=np.sin)
def sin(x: ArrayLike) -> Tensor:
    """sin x. d/dx = cos x."""
    return unary(SIN, x)


@public(COS, method=True, numpy=np.cos)
def cos(x: ArrayLike) -> Tensor:
    """cos x. d/dx = -sin x."""
    return unary(COS, x)


@public(TAN, method=True, numpy=np.tan)
def tan(x: ArrayLike) -> Tensor:
    """tan x. d/dx = 1 + tan² x."""
    return unary(TAN, x)


@public(SINH, method=True, numpy=np.sinh)
def sinh(x: ArrayLike) -> Tensor:
    """sinh x = (e^x - e^-x)/2. d/dx = cosh x."""
    return unary(SINH, x)


@public(COSH, method=True, numpy=np.cosh)
def cosh(x: ArrayLike) -> Tensor:
    """cosh x = (e^x + e^-x)/2. d/dx = sinh x."""
    return unary(COSH, x)


@public(ARCSIN, method=True, numpy=np.arcsin)
def arcsin(x: ArrayLike) -> Tensor:
    """arcsin x on [-1, 1]. d/dx = 1/√(1 - x²) (inf at ±1, nan outside, as numpy)."""
    return unary(ARCSIN, x)


@public(ARCCOS, method=True, numpy=np.arccos)
def arccos(x: ArrayLike) -> Tensor:
    """arccos x on [-1, 1]. d/dx = -1/√(1 - x²)."""
    return unary(ARCCOS, x)


@public(ARCTAN, method=True, numpy=np.arctan)
def arctan(x: ArrayLike) -> Tensor:
    """arctan x. d/dx = 1/(1 + x²)."""
    return unary(ARCTAN, x)


@public(ARCSINH, method=True, numpy=np.arcsinh)
def arcsinh(x: ArrayLike) -> Tensor:
    """arcsinh x = log(x + √(x² + 1)). d/dx = 1/√(x² + 1)."""
    return unary(ARCSINH, x)


@public(ARCCOSH, method=True, numpy=np.arccosh)
def arccosh(x: ArrayLike) -> Tensor:
    """arccosh x for x >= 1. d/dx = 1/√(x² - 1)."""
    return unary(ARCCOSH, x)


@public(ARCTANH, method=True, numpy=np.arctanh)
def arctanh(x: ArrayLike) -> Tensor:
    """arctanh x on (-1, 1). d/dx = 1/(1 - x²)."""
    return unary(ARCTANH, x)


@public(ARCTAN2, method=True, numpy=np.arctan2)
def arctan2(y: ArrayLike, x: ArrayLike) -> Tensor:
    """The angle of the point (x, y), in (-π, π], broadcasting.
    ∂/∂y = x/(x² + y²), ∂/∂x = -y/(x² + y²)."""
    return binary(ARCTAN2, y, x)


@public(SINC, method=True, numpy=np.sinc)
def sinc(x: ArrayLike) -> Tensor:
    """numpy's normalised sinc: sin(πx)/(πx), 1 at x = 0.
    d/dx = (cos(πx) - sinc(x))/x, 0 at x = 0."""
    return unary(SINC, x)


# ---------------------------------------------------------------------------
# Exponentials, logarithms, powers

LOG2 = defop("log2", np.log2, lambda g, out, x: g / (x * LN2))
LOG10 = defop("log10", np.log10, lambda g, out, x: g / (x * LN10))
LOG1P = defop("log1p", np.log1p, lambda g, out, x: g / (1 + x))
EXP2 = defop("exp2", np.exp2, lambda g, out, x: g * out * LN2)
EXPM1 = defop("expm1", np.expm1, lambda g, out, x: g * (out + 1))
SQUARE = defop("square", np.square, lambda g, out, x: g * 2 * x)
RECIPROCAL = defop("reciprocal", np.reciprocal, lambda g, out, x: -g * out * out)
LOGADDEXP = defop("logaddexp", np.logaddexp,
                  lambda g, out, a, b: g * np.exp(a - out),
                  lambda g, out, a, b: g * np.exp(b - out))
# ∂/∂a = a/√(a² + b²); taken as 0 at a = b = 0 (any value in [-1, 1] is a subgradient).
HYPOT = defop("hypot", np.hypot,
              lambda g, out, a, b: np.where(out == 0, 0, g * a / _safe(out)),
              lambda g, out, a, b: np.where(out == 0, 0, g * b / _safe(out)))


@public(LOG2, method=True, numpy=np.log2)
def log2(x: ArrayLike) -> Tensor:
    """log₂ x. d/dx = 1/(x ln 2)."""
    return unary(LOG2, x)


@public(LOG10, method=True, numpy=np.log10)
def log10(x: ArrayLike) -> Tensor:
    """log₁₀ x. d/dx = 1/(x ln 10)."""
    return unary(LOG10, x)


@public(LOG1P, method=True, numpy=np.log1p)
def log1p(x: ArrayLike) -> Tensor:
    """log(1 + x), accurate for small x. d/dx = 1/(1 + x)."""
    return unary(LOG1P, x)


@public(EXP2, method=True, numpy=np.exp2)
def exp2(x: ArrayLike) -> Tensor:
    """2^x. d/dx = 2^x ln 2."""
    return unary(EXP2, x)


@public(EXPM1, method=True, numpy=np.expm1)
def expm1(x: ArrayLike) -> Tensor:
    """e^x - 1, accurate for small x. d/dx = e^x."""
    return unary(EXPM1, x)


@public(SQUARE, method=True, numpy=np.square)
def square(x: ArrayLike) -> Tensor:
    """x². d/dx = 2x."""
    return unary(SQUARE, x)


@public(RECIPROCAL, method=True, numpy=np.reciprocal)
def reciprocal(x: ArrayLike) -> Tensor:
    """1/x. d/dx = -1/x²."""
    return unary(RECIPROCAL, x)


@public(LOGADDEXP, method=True, numpy=np.logaddexp)
def logaddexp(a: ArrayLike, b: ArrayLike) -> Tensor:
    """log(e^a + e^b), computed stably, broadcasting.
    ∂/∂a = e^(a - out), ∂/∂b = e^(b - out) (a softmax of the two)."""
    return binary(LOGADDEXP, a, b)


@public(HYPOT, method=True, numpy=np.hypot)
def hypot(a: ArrayLike, b: ArrayLike) -> Tensor:
    """√(a² + b²) without overflow, broadcasting. ∂/∂a = a/out, ∂/∂b = b/out
    (0 where a = b = 0)."""
    return binary(HYPOT, a, b)


# ---------------------------------------------------------------------------
# Rounding and integer division: gradient 0 (mod has a real one).

FLOOR = defop("floor", np.floor, _zero_vjp)
CEIL = defop("ceil", np.ceil, _zero_vjp)
ROUND = defop("round", lambda x, decimals: np.round(x, decimals), _zero_vjp)
# numpy 2 keeps np.around as a separate (older) name of np.round.
_ROUND_NUMPY = tuple({np.round, getattr(np, "around", np.round)})
FLOOR_DIVIDE = defop("floor_divide", np.floor_divide, _zero_vjp, _zero_vjp)
# a mod b = a - floor(a/b)·b, with the sign of b (numpy's and Python's %).
MOD = defop("mod", np.mod,
            lambda g, out, a, b: g,
            lambda g, out, a, b: -g * FLOOR(a / b))


@public(FLOOR, method=True, numpy=np.floor)
def floor(x: ArrayLike) -> Tensor:
    """The largest integer <= x (as a float for float x). Gradient 0."""
    return unary(FLOOR, x)


@public(CEIL, method=True, numpy=np.ceil)
def ceil(x: ArrayLike) -> Tensor:
    """The smallest integer >= x. Gradient 0."""
    return unary(CEIL, x)


@public(ROUND, method=("round", "__round__"), numpy=_ROUND_NUMPY)
def round(x: ArrayLike, decimals: int = 0) -> Tensor:  # noqa: A001 - numpy's name
    """Round to `decimals` places, halves to even (numpy.round). Gradient 0."""
    return unary(ROUND, x, decimals=int(constant(decimals, "round", "decimals")))


@public(FLOOR_DIVIDE, operator=("__floordiv__", "__rfloordiv__"), numpy=np.floor_divide)
def floor_divide(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a // b = floor(a/b), broadcasting (the `//` operator). Gradient 0."""
    return binary(FLOOR_DIVIDE, a, b)


@public(MOD, operator=("__mod__", "__rmod__"), numpy=np.remainder)
def mod(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a mod b = a - floor(a/b)·b: the result has the sign of b, as numpy's
    `mod` and Python's `%` (not C's fmod). ∂/∂a = 1, ∂/∂b = -floor(a/b)."""
    return binary(MOD, a, b)


@public(MOD, method=True)
def remainder(a: ArrayLike, b: ArrayLike) -> Tensor:
    """The same as `mod` (numpy's and PyTorch's other name for it)."""
    return binary(MOD, a, b)


# ---------------------------------------------------------------------------
# NaN-ignoring maximum and minimum

def _fmax_vjp(g: Any, out: Any, a: Any, b: Any) -> Any:
    # a wins where it is larger or b is NaN (fmax ignores NaN); ties split.
    return np.where((a > b) | (b != b), g, np.where(a == b, g * 0.5, 0))


def _fmin_vjp(g: Any, out: Any, a: Any, b: Any) -> Any:
    return np.where((a < b) | (b != b), g, np.where(a == b, g * 0.5, 0))


FMAX = defop("fmax", np.fmax, _fmax_vjp, lambda g, out, a, b: _fmax_vjp(g, out, b, a))
FMIN = defop("fmin", np.fmin, _fmin_vjp, lambda g, out, a, b: _fmin_vjp(g, out, b, a))


@public(FMAX, method=True, numpy=np.fmax)
def fmax(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Elementwise max ignoring NaN (the other value wins), broadcasting.
    The gradient goes to the larger value; ties split it evenly."""
    return binary(FMAX, a, b)


@public(FMIN, method=True, numpy=np.fmin)
def fmin(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Elementwise min ignoring NaN, broadcasting; ties split the gradient."""
    return binary(FMIN, a, b)


# ---------------------------------------------------------------------------
# Reductions: std, prod, cumsum, cumprod

def _std_vjp(g: Any, out: Any, x: Any, axis: Axis, ddof: int, keepdims: bool) -> Any:
    # d std = d var / (2 std), d var = 2 (x - mean)/(N - ddof). Where std = 0
    # (all values equal) the subgradient 0, as PyTorch (and norm at 0): not 0/0.
    n = count(x.shape, axis)
    o = keep(out, x.shape, axis, keepdims)
    d = x - x.mean(axis=axis, keepdims=True)
    return keep(g, x.shape, axis, keepdims) * np.where(o == 0, 0, d / ((n - ddof) *
                                                                       np.where(o == 0, 1, o)))


STD = defop("std", lambda x, axis, ddof, keepdims:
            np.std(x, axis=axis, ddof=ddof, keepdims=keepdims), _std_vjp)


def _others(x: Any, n: int) -> Any:
    """For x of shape (..., n): the product of the *other* elements of each
    row, exactly (no division, so zeros in x are fine)."""
    if isinstance(x, Tensor):
        # Differentiable (create_graph). Without zeros, Πx / x_i (a function
        # of x near x, so its own derivative is right too); with zeros, each
        # row repeated n times with its diagonal replaced by 1, multiplied out
        # (O(n²) memory, only then).
        if (x._data != 0).all():
            return PROD(x, axis=-1, keepdims=True) / x
        m = np.where(np.eye(n, dtype=bool), 1, x.reshape(x.shape[:-1] + (1, n)))
        return PROD(m, axis=-1, keepdims=False)
    ones = np.ones(x.shape[:-1] + (1,), dtype=x.dtype)
    left = np.cumprod(np.concatenate([ones, x[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, x[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    return left * right


def _prod_vjp(g: Any, out: Any, x: Any, axis: Axis, keepdims: bool) -> Any:
    # ∂(Π x)/∂x_i = Π_{j≠i} x_j: move the reduced axes last, flatten them.
    if x.size == 0:
        return _zeros(x)
    red = axes(axis, x.ndim)
    kept = [i for i in range(x.ndim) if i not in red]
    perm = tuple(kept + list(red))
    rest = tuple(x.shape[i] for i in kept)
    n = count(x.shape, axis)
    xt = x.transpose(perm).reshape(rest + (n,))
    gt = g.reshape(rest + (1,)) * _others(xt, n)
    return gt.reshape(tuple(x.shape[i] for i in perm)).transpose(tuple(np.argsort(perm)))


PROD = defop("prod", lambda x, axis, keepdims: np.prod(x, axis=axis, keepdims=keepdims), _prod_vjp)


def _cumsum_vjp(g: Any, out: Any, x: Any, axis: Optional[int]) -> Any:
    # Each x_i feeds every later output: the gradient is a reversed cumsum.
    ax = 0 if axis is None else axis
    back = FLIP(CUMSUM(FLIP(g, axis=ax), axis=ax), axis=ax)
    return back.reshape(x.shape)


CUMSUM = defop("cumsum", lambda x, axis: np.cumsum(x, axis=axis), _cumsum_vjp)


def _rcumsum(v: Any, axis: int) -> Any:
    """Σ_{j≥i} v_j along `axis`: the reversed running sum."""
    return FLIP(CUMSUM(FLIP(v, axis=axis), axis=axis), axis=axis)


def _cumprod_vjp(g: Any, out: Any, x: Any, axis: Optional[int]) -> Any:
    # y_j = Π_{k≤j} x_k, so ∂L/∂x_i = Σ_{j≥i} g_j Π_{k≤j, k≠i} x_k.
    ax = 0 if axis is None else axis
    xf = x.reshape(-1) if axis is None else x
    zero = (xf._data if isinstance(xf, Tensor) else xf) == 0
    if not zero.any():
        # Σ_{j≥i} g_j y_j / x_i: one reversed running sum
        return (_rcumsum(g * out, ax) / xf).reshape(x.shape)
    if isinstance(x, Tensor):
        # Differentiable (create_graph): the sum written as polynomials in x,
        # row i of C being the running product of x with x_i set to 1, so that
        # its own derivatives are right at the zeros too (O(n²) memory, only then).
        xl, gl = xf.swapaxes(ax, -1), g.swapaxes(ax, -1)
        n = xl.shape[-1]
        c = CUMPROD(np.where(np.eye(n, dtype=bool), 1, xl[..., None, :]), axis=-1)
        upper = np.triu(np.ones((n, n), dtype=bool))           # j ≥ i
        return (c * upper * gl[..., None, :]).sum(axis=-1).swapaxes(ax, -1).reshape(x.shape)
    # With zeros, exactly and in O(n): up to the first zero x_z divide as
    # above (the terms j ≥ z are 0 on both sides); at x_z, the running product
    # with x_z set to 1; after it every term holds the factor x_z = 0.
    seen = np.cumsum(zero, axis=ax)
    before, first = seen == 0, zero & (seen == 1)
    grad = np.where(before, _rcumsum(g * out, ax) / np.where(before, xf, 1), 0)
    at_zero = _rcumsum(g * np.cumprod(np.where(first, 1, xf), axis=ax), ax)
    return np.where(first, at_zero, grad).reshape(x.shape)


CUMPROD = defop("cumprod", lambda x, axis: np.cumprod(x, axis=axis), _cumprod_vjp)


@public(STD, method=True, numpy=np.std)
def std(x: ArrayLike, axis: Axis = None, ddof: int = 0, keepdims: bool = False, *,
        dim: Axis = None, keepdim: Optional[bool] = None) -> Tensor:
    """Standard deviation √(Σ(x - mean)²/(N - ddof)), as numpy (ddof=0 by
    default; PyTorch's default is 1). ∂/∂x = (x - mean)/((N - ddof)·std),
    and 0 where std = 0 (all values equal)."""
    axis, keepdims = torch_alias("std", axis, keepdims, dim, keepdim)
    return unary(STD, x, axis=norm_axis(axis), ddof=int(constant(ddof, "std", "ddof")),
                 keepdims=keepdims)


@public(PROD, method=True, numpy=np.prod)
def prod(x: ArrayLike, axis: Axis = None, keepdims: bool = False, *,
         dim: Axis = None, keepdim: Optional[bool] = None) -> Tensor:
    """Π over `axis`. ∂/∂x_i = Π_{j≠i} x_j, computed without dividing by x_i,
    so it is right where x has zeros."""
    axis, keepdims = torch_alias("prod", axis, keepdims, dim, keepdim)
    return unary(PROD, x, axis=norm_axis(axis), keepdims=keepdims)


@public(CUMSUM, method=True, numpy=np.cumsum)
def cumsum(x: ArrayLike, axis: Optional[int] = None, *, dim: Optional[int] = None) -> Tensor:
    """Running sum along `axis` (of the flattened x when None, as numpy).
    The gradient is the reversed running sum of g."""
    axis, _ = torch_alias("cumsum", axis, False, dim, None)
    x = as_tensor(x, "cumsum")
    if axis is not None:
        (axis,) = axes(axis, x.ndim, f"cumsum (input shape {x.shape})")
    return unary(CUMSUM, x, axis=axis)


@public(CUMPROD, method=True, numpy=np.cumprod)
def cumprod(x: ArrayLike, axis: Optional[int] = None, *, dim: Optional[int] = None) -> Tensor:
    """Running product along `axis` (of the flattened x when None, as numpy):
    y_j = Π_{k≤j} x_k. ∂L/∂x_i = Σ_{j≥i} g_j Π_{k≤j, k≠i} x_k, computed
    without dividing by x_i where x has zeros, so it is right there too."""
    axis, _ = torch_alias("cumprod", axis, False, dim, None)
    x = as_tensor(x, "cumprod")
    if axis is not None:
        (axis,) = axes(axis, x.ndim, f"cumprod (input shape {x.shape})")
    return unary(CUMPROD, x, axis=axis)


