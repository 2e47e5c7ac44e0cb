"""Elementwise ops: arithmetic, functions, comparisons and logic.

Each VJP may return the broadcast shape (the engine unbroadcasts); VJPs reuse
the output where that is cheaper.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..tensor import ArrayLike, Tensor, _new, record
from .registry import OPS, as_tensor, binary, constant, operand, unary

defop, public = OPS.defop, OPS.public

# ---------------------------------------------------------------------------
# Arithmetic

ADD = defop("add", np.add,
            lambda g, out, a, b: g,
            lambda g, out, a, b: g)


@public(ADD, operator=("__add__", "__radd__"), numpy=np.add)
def add(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a + b, broadcasting."""
    return binary(ADD, a, b)


SUB = defop("sub", np.subtract,
            lambda g, out, a, b: g,
            lambda g, out, a, b: -g)


@public(SUB, operator=("__sub__", "__rsub__"), numpy=np.subtract)
def subtract(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a - b, broadcasting."""
    return binary(SUB, a, b)


MUL = defop("mul", np.multiply,
            lambda g, out, a, b: g * b,
            lambda g, out, a, b: g * a)


@public(MUL, operator=("__mul__", "__rmul__"), numpy=np.multiply)
def multiply(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a * b, broadcasting. ∂/∂a = b, ∂/∂b = a."""
    return binary(MUL, a, b)


DIV = defop("div", np.true_divide,
            lambda g, out, a, b: g / b,
            lambda g, out, a, b: -g * out / b)          # d(a/b)/db = -a/b² = -out/b


@public(DIV, operator=("__truediv__", "__rtruediv__"), numpy=np.true_divide)
def divide(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a / b, broadcasting. ∂/∂a = 1/b, ∂/∂b = -a/b²."""
    return binary(DIV, a, b)


def _pow_vjp_a(g: Any, out: Any, a: Any, b: Any) -> Any:
    # b·a^(b-1) is 0·inf at a = b = 0, but a^0 is constant: 0 there, as PyTorch.
    # The base is replaced by 1 at those points (not only the result masked), so
    # that differentiating this VJP again (create_graph) gives 0, not 0·inf = nan.
    flat = (b == 0) & (a == 0)
    return np.where(flat, 0, g * b * np.where(flat, 1, a) ** (b - 1))


POW = defop("pow", np.power,
            _pow_vjp_a,
            # d(a^b)/db = a^b ln a; taken as 0 where a <= 0 (no real log), as PyTorch
            lambda g, out, a, b: g * out * np.log(np.where(a > 0, a, 1)))


@public(POW, operator=("__pow__", "__rpow__"), method="pow", numpy=np.power)
def power(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a ** b. ∂/∂a = b a^(b-1) (0 at a = b = 0), ∂/∂b = a^b ln a (0 where a <= 0)."""
    return binary(POW, a, b)


NEG = defop("neg", np.negative, lambda g, out, x: -g)


@public(NEG, operator="__neg__", numpy=np.negative)
def negative(x: ArrayLike) -> Tensor:
    """-x."""
    return unary(NEG, x)


# ---------------------------------------------------------------------------
# Functions

ABS = defop("abs", np.abs, lambda g, out, x: g * np.sign(x))     # 0 at x = 0, as PyTorch


@public(ABS, method=True, operator="__abs__", numpy=np.absolute)
def abs(x: ArrayLike) -> Tensor:  # noqa: A001 - numpy's name
    """|x|. The gradient at 0 is 0."""
    return unary(ABS, x)


EXP = defop("exp", np.exp, lambda g, out, x: g * out)


@public(EXP, method=True, numpy=np.exp)
def exp(x: ArrayLike) -> Tensor:
    """e^x. d/dx = e^x."""
    return unary(EXP, x)


LOG = defop("log", np.log, lambda g, out, x: g / x)


@public(LOG, method=True, numpy=np.log)
def log(x: ArrayLike) -> Tensor:
    """Natural log. d/dx = 1/x."""
    return unary(LOG, x)


SQRT = defop("sqrt", np.sqrt, lambda g, out, x: g / (2 * out))


@public(SQRT, method=True, numpy=np.sqrt)
def sqrt(x: ArrayLike) -> Tensor:
    """√x. d/dx = 1/(2√x)."""
    return unary(SQRT, x)


TANH = defop("tanh", np.tanh, lambda g, out, x: g * (1 - out * out))


@public(TANH, method=True, numpy=np.tanh)
def tanh(x: ArrayLike) -> Tensor:
    """The tanh neuron's activation, (e^z - e^-z)/(e^z + e^-z), in (-1, 1).
    d/dz = 1 - tanh(z)²."""
    return unary(TANH, x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: no overflow for large |x|.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


SIGMOID = defop("sigmoid", _sigmoid, lambda g, out, x: g * out * (1 - out))


@public(SIGMOID, method=True)
def sigmoid(x: ArrayLike) -> Tensor:
    """The sigmoid neuron's activation, f(z) = 1/(1 + e^-z), in (0, 1).
    d/dz = f(z)(1 - f(z)). Computed without overflow for large |z|."""
    return unary(SIGMOID, x)


RELU = defop("relu", lambda x: np.maximum(x, 0), lambda g, out, x: g * (out > 0))


@public(RELU, method=True)
def relu(x: ArrayLike) -> Tensor:
    """The rectified linear neuron, f(z) = max(0, z). d/dz = 1 if z > 0 else 0."""
    return unary(RELU, x)


LEAKY_RELU = defop("leaky_relu",
                   lambda x, negative_slope: np.where(x > 0, x, x * negative_slope),
                   lambda g, out, x, negative_slope: np.where(x > 0, g, g * negative_slope))


@public(LEAKY_RELU, method=True)
def leaky_relu(x: ArrayLike, negative_slope: float = 0.01) -> Tensor:
    """z if z > 0 else negative_slope·z."""
    if type(negative_slope) is not float:
        negative_slope = constant(negative_slope, "leaky_relu", "negative_slope")
    return unary(LEAKY_RELU, x, negative_slope=float(negative_slope))


SOFTPLUS = defop("softplus", lambda x: np.logaddexp(0, x),
                 lambda g, out, x: g * SIGMOID(x))


@public(SOFTPLUS, method=True)
def softplus(x: ArrayLike) -> Tensor:
    """log(1 + e^z), a smooth ReLU; d/dz = sigmoid(z). Stable for large |z|."""
    return unary(SOFTPLUS, x)


# Ties go half to each side (the subgradient PyTorch uses too).
MAXIMUM = defop("maximum", np.maximum,
                lambda g, out, a, b: np.where(a > b, g, np.where(a == b, g * 0.5, 0)),
                lambda g, out, a, b: np.where(b > a, g, np.where(a == b, g * 0.5, 0)))


@public(MAXIMUM, numpy=np.maximum)
def maximum(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Elementwise max, broadcasting. Where a == b the gradient is split evenly."""
    return binary(MAXIMUM, a, b)


MINIMUM = defop("minimum", np.minimum,
                lambda g, out, a, b: np.where(a < b, g, np.where(a == b, g * 0.5, 0)),
                lambda g, out, a, b: np.where(b < a, g, np.where(a == b, g * 0.5, 0)))


@public(MINIMUM, numpy=np.minimum)
def minimum(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Elementwise min, broadcasting. Where a == b the gradient is split evenly."""
    return binary(MINIMUM, a, b)


CLIP = defop("clip", lambda x, lo, hi: np.clip(x, lo, hi),
             lambda g, out, x, lo, hi: g * ((x >= (-np.inf if lo is None else lo))
                                            & (x <= (np.inf if hi is None else hi))))


def _np_clip(a: Any, a_min: Any = None, a_max: Any = None, out: Any = None, *,
             min: Any = None, max: Any = None, **kwargs: Any) -> Tensor:  # noqa: A002
    # numpy's names: a_min/a_max, and (numpy >= 2.1) min/max.
    if out is not None or kwargs:
        raise TypeError("numpy.clip on a Tensor: out= and ufunc keywords are not supported")
    return clip(a, a_min if a_min is not None else min, a_max if a_max is not None else max)


@public(CLIP, method=True, numpy={np.clip: _np_clip})
def clip(x: ArrayLike, lo: Optional[ArrayLike] = None, hi: Optional[ArrayLike] = None) -> Tensor:
    """Limit x to [lo, hi] (None: no bound). The gradient passes where
    lo <= x <= hi, bounds included, and is 0 outside."""
    if lo is None and hi is None:
        raise ValueError("clip: give at least one of lo and hi")
    # A list holding Tensors is stacked first, so that one that requires grad is
    # refused below; a list of numbers is weak (x's precision, as a scalar bound).
    x = x if isinstance(x, Tensor) else as_tensor(x, "clip", 0)
    lo, hi = (operand(v, x, "clip") if isinstance(v, (list, tuple)) else v for v in (lo, hi))
    for what, v in (("lo", lo), ("hi", hi)):
        if isinstance(v, Tensor) and v.requires_grad:
            raise TypeError(f"clip: bound {what} is not differentiable, but the Tensor given "
                            f"(shape {v.shape}) requires grad; use tg.maximum / tg.minimum")
    # Tensor bounds as arrays (a Tensor attr would re-enter clip through numpy
    # dispatch, forever); numpy scalars as Python numbers, which are weak:
    # float32 stays float32.
    lo, hi = (v._data if isinstance(v, Tensor) else v for v in (lo, hi))
    lo, hi = (v.item() if isinstance(v, np.generic) or isinstance(v, np.ndarray) and v.ndim == 0
              else v for v in (lo, hi))
    return unary(CLIP, x, lo=lo, hi=hi)


@public(None, method=True)
def clamp(x: ArrayLike, min: Optional[ArrayLike] = None,  # noqa: A002 - PyTorch's names
          max: Optional[ArrayLike] = None) -> Tensor:  # noqa: A002
    """PyTorch's spelling of `clip(x, min, max)`."""
    return clip(x, min, max)


WHERE = defop("where", np.where,
              None,
              lambda g, out, c, a, b: np.where(c, g, 0),
              lambda g, out, c, a, b: np.where(c, 0, g))


@public(WHERE, numpy=np.where)
def where(cond: ArrayLike, a: ArrayLike, b: ArrayLike) -> Tensor:
    """a where cond is true, else b (broadcasting). Not differentiable in cond."""
    c = cond if isinstance(cond, Tensor) else as_tensor(np.asarray(cond), "where", 0)
    if c.dtype != np.bool_:
        raise TypeError(f"where: cond must be boolean, got dtype {c.dtype}")
    if isinstance(a, Tensor):
        like = a
    elif isinstance(b, Tensor):
        like = b
    else:
        like = as_tensor(a, "where", 1)
    return record(WHERE, (c, operand(a, like, "where"), operand(b, like, "where")), {})


CAST = defop("astype", lambda x, dtype: x.astype(dtype), lambda g, out, x, dtype: g)


@public(CAST, method=True)
def astype(x: ArrayLike, dtype: Any) -> Tensor:
    """A copy converted to `dtype`; the gradient is converted back."""
    return unary(CAST, x, dtype=np.dtype(dtype))


# ---------------------------------------------------------------------------
# Comparisons and logic: boolean results, not differentiable.

LESS = defop("less", np.less, differentiable=False)


@public(LESS, operator="__lt__", numpy=np.less)
def less(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a < b elementwise (boolean)."""
    return binary(LESS, a, b)


LESS_EQUAL = defop("less_equal", np.less_equal, differentiable=False)


@public(LESS_EQUAL, operator="__le__", numpy=np.less_equal)
def less_equal(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a <= b elementwise (boolean)."""
    return binary(LESS_EQUAL, a, b)


GREATER = defop("greater", np.greater, differentiable=False)


@public(GREATER, operator="__gt__", numpy=np.greater)
def greater(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a > b elementwise (boolean)."""
    return binary(GREATER, a, b)


GREATER_EQUAL = defop("greater_equal", np.greater_equal, differentiable=False)


@public(GREATER_EQUAL, operator="__ge__", numpy=np.greater_equal)
def greater_equal(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a >= b elementwise (boolean)."""
    return binary(GREATER_EQUAL, a, b)


EQUAL = defop("equal", np.equal, differentiable=False)


@public(EQUAL, operator="__eq__", numpy=np.equal)
def equal(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a == b elementwise (boolean)."""
    return binary(EQUAL, a, b)


NOT_EQUAL = defop("not_equal", np.not_equal, differentiable=False)


@public(NOT_EQUAL, operator="__ne__", numpy=np.not_equal)
def not_equal(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a != b elementwise (boolean)."""
    return binary(NOT_EQUAL, a, b)


def _sign_vjp(g: Any, out: Any, x: Any) -> Any:
    # 0 wherever the derivative exists (as floor/ceil/round, and PyTorch's sign):
    # a loss through sign() gets a zero gradient, not "no graph".
    if isinstance(g, Tensor):
        return _new(np.zeros_like(g._data))
    return np.zeros_like(g)


SIGN = defop("sign", np.sign, _sign_vjp)


@public(SIGN, method=True, numpy=np.sign)
def sign(x: ArrayLike) -> Tensor:
    """-1, 0 or 1 by the sign of x. Gradient 0 (its derivative wherever it
    exists), as for floor/ceil/round."""
    return unary(SIGN, x)


LOGICAL_AND = defop("logical_and", np.logical_and, differentiable=False)


@public(LOGICAL_AND, operator=("__and__", "__rand__"),
        numpy=(np.logical_and, np.bitwise_and))
def logical_and(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a and b elementwise (boolean; `&` on Tensors)."""
    return binary(LOGICAL_AND, a, b)


LOGICAL_OR = defop("logical_or", np.logical_or, differentiable=False)


@public(LOGICAL_OR, operator=("__or__", "__ror__"), numpy=np.logical_or)
def logical_or(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a or b elementwise (boolean; `|` on Tensors)."""
    return binary(LOGICAL_OR, a, b)


LOGICAL_NOT = defop("logical_not", np.logical_not, differentiable=False)


@public(LOGICAL_NOT, operator="__invert__", numpy=np.logical_not)
def logical_not(x: ArrayLike) -> Tensor:
    """not x elementwise (boolean; `~` on Tensors)."""
    return unary(LOGICAL_NOT, x)


# ---------------------------------------------------------------------------
# Copies

CLONE = defop("clone", np.copy, lambda g, out, x: g)


@public(CLONE, method=True, numpy=np.copy)
def clone(x: ArrayLike) -> Tensor:
    """A copy of x that stays in the graph (the gradient passes unchanged),
    as PyTorch's clone; modify the copy in place without touching x."""
    return unary(CLONE, x)
