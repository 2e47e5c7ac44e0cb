"""The op table: every differentiable op, its forward beside its VJPs.

An op is registered once with `defop(name, forward, *vjps)`:
- `forward(*arrays, **attrs)` is a pure numpy function;
- `vjps[i](g, out, *inputs, **attrs)` returns dL/d(input i) given g = dL/d(out).
  VJPs may return a gradient of the *broadcast* shape: the engine reduces it to
  the input's shape in one place (`autograd.unbroadcast`), so no op repeats it.

VJPs are written with operators, methods shared by ndarray and Tensor (`.sum`,
`.reshape`, ...), numpy functions (which dispatch to tensorgraph through
`__array_function__`/`__array_ufunc__`) and `Op` objects (which accept arrays or
Tensors). So one VJP serves both modes: on arrays for a plain backward, on
Tensors when `create_graph=True` records the backward pass itself.

Non-differentiable ops (comparisons, argmax, ...) are registered with
`differentiable=False`; their results never require grad.
"""
from __future__ import annotations

import builtins
import math
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from .tensor import ArrayLike, Tensor, _new, record

_AxisError = np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError  # type: ignore[attr-defined]
Axis = Union[None, int, Sequence[int]]

# ---------------------------------------------------------------------------
# The registry

OPS: dict[str, "Op"] = {}


class Op:
    """One entry of the op table. Calling it records on Tensors and computes
    plain numpy on arrays, which is what lets VJPs serve both modes."""

    __slots__ = ("name", "forward", "vjps", "differentiable", "variadic", "saves", "__weakref__")

    def __init__(self, name: str, forward: Callable[..., Any], vjps: tuple[Any, ...],
                 differentiable: bool, variadic: bool, saves: bool = False) -> None:
        self.name = name
        self.forward = forward
        self.vjps = vjps
        self.differentiable = differentiable
        self.variadic = variadic
        self.saves = saves

    def __call__(self, *args: Any, **attrs: Any) -> Any:
        for a in args:
            if isinstance(a, Tensor):
                like = a
                break
        else:
            out = self.forward(*args, **attrs)
            return out[0] if self.saves else out
        return record(self, tuple(_operand(x, like, self.name) for x in args), attrs)

    def error(self, e: Exception, args: Sequence[Tensor], attrs: dict[str, Any]) -> Exception:
        """Re-word a numpy error so that it names this op and the shapes."""
        shapes = ", ".join(str(a.shape) for a in args)
        shown = {k: v for k, v in attrs.items() if k not in ("index",)}
        text = str(e).removeprefix(f"{self.name}: ")  # numpy's matmul names itself too
        msg = f"{self.name}: {text} (input shapes: {shapes}" + (f"; {shown}" if shown else "") + ")"
        if isinstance(e, _AxisError):
            return _AxisError(msg)
        return type(e)(msg) if type(e) in (ValueError, IndexError, TypeError) else ValueError(msg)

    def __repr__(self) -> str:
        return f"<Op {self.name}>"


def defop(name: str, forward: Callable[..., Any], *vjps: Optional[Callable[..., Any]],
          differentiable: bool = True, variadic: bool = False, saves: bool = False) -> Op:
    """Register an op. Give one VJP per input (None for inputs that can never
    require grad), or, with `variadic=True`, one VJP taking the input index.

    With `saves=True` the forward returns `(out, saved)`: an array computed on
    the way that the VJPs reuse (they get it as `saved=`; None when the VJPs
    run on Tensors for create_graph, where they must recompute it so that it
    is differentiated too). It is freed by a backward that does not retain
    the graph."""
    if name in OPS:
        raise ValueError(f"defop: op {name!r} is already registered")
    if differentiable and not vjps:
        raise ValueError(f"defop: differentiable op {name!r} needs VJPs")
    op = Op(name, forward, tuple(vjps), differentiable, variadic, saves)
    OPS[name] = op
    return op


# ---------------------------------------------------------------------------
# Turning arguments into tensors

_SCALARS = (bool, int, float, np.generic)


def _scalar_dtype(v: Any, like: np.dtype) -> np.dtype:
    """Python and numpy scalars are weak: they take the other operand's dtype
    when it is of the same kind or wider (so float32 * 2.0 stays float32)."""
    k = like.kind
    if isinstance(v, (bool, np.bool_)):
        return like
    if isinstance(v, (int, np.integer)):
        return like if k in "iuf" else np.dtype(np.int64)
    if isinstance(v, (float, np.floating)):
        return like if k == "f" else np.dtype(np.float32)
    raise TypeError(f"unsupported scalar {v!r} of type {type(v).__name__}")


def _operand(x: Any, like: Tensor, opname: str) -> Tensor:
    """Coerce an op argument to a Tensor; scalars follow `like`'s dtype."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return _new(x)
    if isinstance(x, _SCALARS):
        return _new(np.asarray(x, dtype=_scalar_dtype(x, like._data.dtype)))
    if isinstance(x, (list, tuple)):
        return Tensor(x)
    raise TypeError(f"{opname}: unsupported operand of type {type(x).__name__} "
                    f"(with a Tensor of shape {like.shape} and dtype {like.dtype})")


def _as_tensor(x: ArrayLike, opname: str = "tensor") -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (np.ndarray, list, tuple) + _SCALARS):
        return Tensor(x)
    raise TypeError(f"{opname}: unsupported argument of type {type(x).__name__}")


def _binary(op: Op, a: Any, b: Any) -> Tensor:
    if isinstance(a, Tensor):
        return record(op, (a, _operand(b, a, op.name)), {})
    if isinstance(b, Tensor):
        return record(op, (_operand(a, b, op.name), b), {})
    a = _as_tensor(a, op.name)
    return record(op, (a, _operand(b, a, op.name)), {})


def _unary(op: Op, x: Any, **attrs: Any) -> Tensor:
    return record(op, (x if isinstance(x, Tensor) else _as_tensor(x, op.name),), attrs)


def _axes(axis: Axis, ndim: int, what: str = "") -> tuple[int, ...]:
    """Normalize an axis argument to a tuple of non-negative ints. `what`
    (e.g. "swapaxes (input shape (2,))") prefixes the out-of-bounds error."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (int(axis),)
    out = []
    for a in axis:
        a = int(a)
        if not -builtins.max(ndim, 1) <= a < builtins.max(ndim, 1):
            raise _AxisError((f"{what}: " if what else "")
                             + f"axis {a} is out of bounds for array of dimension {ndim}")
        out.append(a % ndim if ndim else 0)
    return tuple(out)


def _keep(g: Any, shape: tuple[int, ...], axis: Axis, keepdims: bool) -> Any:
    """Reshape a reduction's output (or its gradient) so that it broadcasts
    against the input again, i.e. as if keepdims=True."""
    if keepdims:
        return g
    axes = _axes(axis, len(shape))
    return g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))


def _count(shape: tuple[int, ...], axis: Axis) -> int:
    return math.prod(shape[a] for a in _axes(axis, len(shape)))


# ---------------------------------------------------------------------------
# Elementwise arithmetic. Each VJP may return the broadcast shape.

ADD = defop("add", np.add,
            lambda g, out, a, b: g,
            lambda g, out, a, b: g)
SUB = defop("sub", np.subtract,
            lambda g, out, a, b: g,
            lambda g, out, a, b: -g)
MUL = defop("mul", np.multiply,
            lambda g, out, a, b: g * b,
            lambda g, out, a, b: g * a)
DIV = defop("div", np.true_divide,
            lambda g, out, a, b: g / b,
            lambda g, out, a, b: -g * out / b)          # d(a/b)/db = -a/b² = -out/b
POW = defop("pow", np.power,
            # 0 at a = b = 0 (a^0 is constant; b·a^(b-1) would be 0·inf = nan there), as PyTorch
            lambda g, out, a, b: np.where((b == 0) & (a == 0), 0, g * b * a ** (b - 1)),
            # d(a^b)/db = a^b ln a; taken as 0 where a <= 0 (no real log), as PyTorch
            lambda g, out, a, b: g * out * np.log(np.where(a > 0, a, 1)))
NEG = defop("neg", np.negative, lambda g, out, x: -g)


def add(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a + b, broadcasting."""
    return _binary(ADD, a, b)


def subtract(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a - b, broadcasting."""
    return _binary(SUB, a, b)


def multiply(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a * b, broadcasting. ∂/∂a = b, ∂/∂b = a."""
    return _binary(MUL, a, b)


def divide(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a / b, broadcasting. ∂/∂a = 1/b, ∂/∂b = -a/b²."""
    return _binary(DIV, a, b)


def power(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a ** b. ∂/∂a = b a^(b-1) (0 at a = b = 0), ∂/∂b = a^b ln a (0 where a <= 0)."""
    return _binary(POW, a, b)


def negative(x: ArrayLike) -> Tensor:
    """-x."""
    return _unary(NEG, x)


# ---------------------------------------------------------------------------
# Elementwise functions. VJPs reuse the output where that is cheaper.

def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: no overflow for large |x|.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


ABS = defop("abs", np.abs, lambda g, out, x: g * np.sign(x))     # 0 at x = 0, as PyTorch
EXP = defop("exp", np.exp, lambda g, out, x: g * out)
LOG = defop("log", np.log, lambda g, out, x: g / x)
SQRT = defop("sqrt", np.sqrt, lambda g, out, x: g / (2 * out))
TANH = defop("tanh", np.tanh, lambda g, out, x: g * (1 - out * out))
SIGMOID = defop("sigmoid", _sigmoid, lambda g, out, x: g * out * (1 - out))
RELU = defop("relu", lambda x: np.maximum(x, 0), lambda g, out, x: g * (out > 0))
LEAKY_RELU = defop("leaky_relu",
                   lambda x, negative_slope: np.where(x > 0, x, x * negative_slope),
                   lambda g, out, x, negative_slope: np.where(x > 0, g, g * negative_slope))
SOFTPLUS = defop("softplus", lambda x: np.logaddexp(0, x),
                 lambda g, out, x: g * SIGMOID(x))
# Ties go half to each side (the subgradient PyTorch uses too).
MAXIMUM = defop("maximum", np.maximum,
                lambda g, out, a, b: np.where(a > b, g, np.where(a == b, g * 0.5, 0)),
                lambda g, out, a, b: np.where(b > a, g, np.where(a == b, g * 0.5, 0)))
MINIMUM = defop("minimum", np.minimum,
                lambda g, out, a, b: np.where(a < b, g, np.where(a == b, g * 0.5, 0)),
                lambda g, out, a, b: np.where(b < a, g, np.where(a == b, g * 0.5, 0)))
CLIP = defop("clip", lambda x, lo, hi: np.clip(x, lo, hi),
             lambda g, out, x, lo, hi: g * ((x >= (-np.inf if lo is None else lo))
                                            & (x <= (np.inf if hi is None else hi))))
WHERE = defop("where", np.where,
              None,
              lambda g, out, c, a, b: np.where(c, g, 0),
              lambda g, out, c, a, b: np.where(c, 0, g))
CAST = defop("astype", lambda x, dtype: x.astype(dtype), lambda g, out, x, dtype: g)


def abs(x: ArrayLike) -> Tensor:  # noqa: A001 - numpy's name
    """|x|. The gradient at 0 is 0."""
    return _unary(ABS, x)


def exp(x: ArrayLike) -> Tensor:
    """e^x. d/dx = e^x."""
    return _unary(EXP, x)


def log(x: ArrayLike) -> Tensor:
    """Natural log. d/dx = 1/x."""
    return _unary(LOG, x)


def sqrt(x: ArrayLike) -> Tensor:
    """√x. d/dx = 1/(2√x)."""
    return _unary(SQRT, x)


def tanh(x: ArrayLike) -> Tensor:
    """The tanh neuron's activation, (e^z - e^-z)/(e^z + e^-z), in (-1, 1).
    d/dz = 1 - tanh(z)²."""
    return _unary(TANH, x)


def sigmoid(x: ArrayLike) -> Tensor:
    """The sigmoid neuron's activation, f(z) = 1/(1 + e^-z), in (0, 1).
    d/dz = f(z)(1 - f(z)). Computed without overflow for large |z|."""
    return _unary(SIGMOID, x)


def relu(x: ArrayLike) -> Tensor:
    """The rectified linear neuron, f(z) = max(0, z). d/dz = 1 if z > 0 else 0."""
    return _unary(RELU, x)


def leaky_relu(x: ArrayLike, negative_slope: float = 0.01) -> Tensor:
    """z if z > 0 else negative_slope·z."""
    return _unary(LEAKY_RELU, x, negative_slope=float(negative_slope))


def softplus(x: ArrayLike) -> Tensor:
    """log(1 + e^z), a smooth ReLU; d/dz = sigmoid(z). Stable for large |z|."""
    return _unary(SOFTPLUS, x)


def maximum(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Elementwise max, broadcasting. Where a == b the gradient is split evenly."""
    return _binary(MAXIMUM, a, b)


def minimum(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Elementwise min, broadcasting. Where a == b the gradient is split evenly."""
    return _binary(MINIMUM, a, b)


def clip(x: ArrayLike, lo: Optional[float], hi: Optional[float]) -> Tensor:
    """Limit x to [lo, hi] (None: no bound). The gradient passes where
    lo <= x <= hi, bounds included, and is 0 outside."""
    if lo is None and hi is None:
        raise ValueError("clip: give at least one of lo and hi")
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
    return _unary(CLIP, x, lo=lo, hi=hi)


def where(cond: ArrayLike, a: ArrayLike, b: ArrayLike) -> Tensor:
    """a where cond is true, else b (broadcasting). Not differentiable in cond."""
    c = cond if isinstance(cond, Tensor) else _new(np.asarray(cond))
    if c.dtype != np.bool_:
        raise TypeError(f"where: cond must be boolean, got dtype {c.dtype}")
    if isinstance(a, Tensor):
        like = a
    elif isinstance(b, Tensor):
        like = b
    else:
        like = _as_tensor(a, "where")
    return record(WHERE, (c, _operand(a, like, "where"), _operand(b, like, "where")), {})


def astype(x: ArrayLike, dtype: Any) -> Tensor:
    """A copy converted to `dtype`; the gradient is converted back."""
    return _unary(CAST, x, dtype=np.dtype(dtype))


# Comparisons: boolean results, not differentiable.
LESS = defop("less", np.less, differentiable=False)
LESS_EQUAL = defop("less_equal", np.less_equal, differentiable=False)
GREATER = defop("greater", np.greater, differentiable=False)
GREATER_EQUAL = defop("greater_equal", np.greater_equal, differentiable=False)
EQUAL = defop("equal", np.equal, differentiable=False)
NOT_EQUAL = defop("not_equal", np.not_equal, differentiable=False)
SIGN = defop("sign", np.sign, differentiable=False)
LOGICAL_AND = defop("logical_and", np.logical_and, differentiable=False)
LOGICAL_OR = defop("logical_or", np.logical_or, differentiable=False)
LOGICAL_NOT = defop("logical_not", np.logical_not, differentiable=False)


def less(a: ArrayLike, b: ArrayLike) -> Tensor:
    return _binary(LESS, a, b)


def less_equal(a: ArrayLike, b: ArrayLike) -> Tensor:
    return _binary(LESS_EQUAL, a, b)


def greater(a: ArrayLike, b: ArrayLike) -> Tensor:
    return _binary(GREATER, a, b)


def greater_equal(a: ArrayLike, b: ArrayLike) -> Tensor:
    return _binary(GREATER_EQUAL, a, b)


def equal(a: ArrayLike, b: ArrayLike) -> Tensor:
    return _binary(EQUAL, a, b)


def not_equal(a: ArrayLike, b: ArrayLike) -> Tensor:
    return _binary(NOT_EQUAL, a, b)


def sign(x: ArrayLike) -> Tensor:
    return _unary(SIGN, x)


# ---------------------------------------------------------------------------
# Reductions. `_keep` puts the reduced axes back (size 1) for broadcasting.

def _sum_vjp(g: Any, out: Any, x: Any, axis: Axis, keepdims: bool) -> Any:
    return np.broadcast_to(_keep(g, x.shape, axis, keepdims), x.shape)


def _mean_vjp(g: Any, out: Any, x: Any, axis: Axis, keepdims: bool) -> Any:
    return np.broadcast_to(_keep(g, x.shape, axis, keepdims) / _count(x.shape, axis), x.shape)


def _extremum_vjp(g: Any, out: Any, x: Any, axis: Axis, keepdims: bool) -> Any:
    # Every element equal to the extremum shares the gradient evenly.
    hit = (x == _keep(out, x.shape, axis, keepdims)).astype(x.dtype)
    return _keep(g, x.shape, axis, keepdims) * hit / hit.sum(axis=axis, keepdims=True)


def _var_vjp(g: Any, out: Any, x: Any, axis: Axis, ddof: int, keepdims: bool) -> Any:
    n = _count(x.shape, axis)
    # N - ddof <= 0: numpy's forward divides by 0 (inf/nan); so does the
    # gradient, instead of raising ZeroDivisionError.
    scale = 2 / (n - ddof) if n > ddof else math.inf
    return _keep(g, x.shape, axis, keepdims) * (x - x.mean(axis=axis, keepdims=True)) * scale


def _logsumexp(x: np.ndarray, axis: Axis, keepdims: bool) -> np.ndarray:
    # log Σ e^x = m + log Σ e^(x - m): no overflow; m = 0 where the max is ±inf.
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _ax(axis: Axis) -> Axis:
    return tuple(axis) if isinstance(axis, list) else axis


SUM = defop("sum", lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims), _sum_vjp)
MEAN = defop("mean", lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims), _mean_vjp)
MAX = defop("max", lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims), _extremum_vjp)
MIN = defop("min", lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims), _extremum_vjp)
VAR = defop("var", lambda x, axis, ddof, keepdims: np.var(x, axis=axis, ddof=ddof, keepdims=keepdims),
            _var_vjp)
def _logsumexp_vjp(g: Any, out: Any, x: Any, axis: Axis, keepdims: bool) -> Any:
    # softmax(x), from x - max(x) (exact) rather than e^(x - out): `out` is
    # rounded at the logits' magnitude, which costs float32 digits near 1000.
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return _keep(g, x.shape, axis, keepdims) * (e / e.sum(axis=axis, keepdims=True))


LOGSUMEXP = defop("logsumexp", _logsumexp, _logsumexp_vjp)
ARGMAX = defop("argmax", lambda x, axis, keepdims: np.argmax(x, axis=axis, keepdims=keepdims),
               differentiable=False)
ARGMIN = defop("argmin", lambda x, axis, keepdims: np.argmin(x, axis=axis, keepdims=keepdims),
               differentiable=False)


def sum(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Σ over `axis` (an int, a tuple, or None for all)."""
    return _unary(SUM, x, axis=_ax(axis), keepdims=keepdims)


def mean(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """The average over `axis`."""
    return _unary(MEAN, x, axis=_ax(axis), keepdims=keepdims)


def max(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """The largest element over `axis`. The gradient goes to the maximum;
    if several elements tie, it is split evenly among them."""
    return _unary(MAX, x, axis=_ax(axis), keepdims=keepdims)


def min(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """The smallest element over `axis`; ties split the gradient evenly."""
    return _unary(MIN, x, axis=_ax(axis), keepdims=keepdims)


def var(x: ArrayLike, axis: Axis = None, ddof: int = 0, keepdims: bool = False) -> Tensor:
    """Variance, Σ(x - mean)²/(N - ddof), as numpy (ddof=0 by default)."""
    return _unary(VAR, x, axis=_ax(axis), ddof=int(ddof), keepdims=keepdims)


def logsumexp(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """log Σ e^x over `axis`, computed stably; its gradient is softmax(x)."""
    return _unary(LOGSUMEXP, x, axis=_ax(axis), keepdims=keepdims)


def argmax(x: ArrayLike, axis: Optional[int] = None, keepdims: bool = False) -> Tensor:
    """Index of the largest element (int64; not differentiable)."""
    return _unary(ARGMAX, x, axis=axis, keepdims=keepdims)


def argmin(x: ArrayLike, axis: Optional[int] = None, keepdims: bool = False) -> Tensor:
    """Index of the smallest element (int64; not differentiable)."""
    return _unary(ARGMIN, x, axis=axis, keepdims=keepdims)


# ---------------------------------------------------------------------------
# Softmax outputs

def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    # (x - m) - log Σ e^(x - m): x - m is exact, so float32 keeps its digits
    # for large logits (x - (m + log Σ) would round at m's magnitude).
    m = np.max(x, axis=axis, keepdims=True)
    s = x - np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


SOFTMAX = defop("softmax", _softmax,
                lambda g, out, x, axis: out * (g - (g * out).sum(axis=axis, keepdims=True)))
LOG_SOFTMAX = defop("log_softmax", _log_softmax,
                    lambda g, out, x, axis: g - np.exp(out) * g.sum(axis=axis, keepdims=True))


def softmax(x: ArrayLike, axis: int = -1) -> Tensor:
    """The softmax output layer: y_i = e^{z_i} / Σ_j e^{z_j} along `axis`, a
    probability distribution over classes. Stable: z - max(z) is exponentiated.
    Jacobian-vector form: dz = y ⊙ (g - Σ g ⊙ y)."""
    return _unary(SOFTMAX, x, axis=axis)


def log_softmax(x: ArrayLike, axis: int = -1) -> Tensor:
    """log softmax(x) = x - logsumexp(x), computed stably."""
    return _unary(LOG_SOFTMAX, x, axis=axis)


# ---------------------------------------------------------------------------
# Linear algebra

def _mT(x: Any) -> Any:
    return x.swapaxes(-1, -2)


def _matmul_vjp_a(g: Any, out: Any, a: Any, b: Any) -> Any:
    if b.ndim == 1:
        return g * b if a.ndim == 1 else g[..., None] * b        # (..., n, k)
    if a.ndim == 1:
        return (b @ g[..., None])[..., 0]                        # (..., k) → unbroadcast
    return g @ _mT(b)


def _matmul_vjp_b(g: Any, out: Any, a: Any, b: Any) -> Any:
    if a.ndim == 1:
        return g * a if b.ndim == 1 else a[:, None] * g[..., None, :]   # (..., k, m)
    if b.ndim == 1:
        return (_mT(a) @ g[..., None])[..., 0]                   # (..., k) → unbroadcast
    return _mT(a) @ g


MATMUL = defop("matmul", np.matmul, _matmul_vjp_a, _matmul_vjp_b)


def matmul(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Matrix product with numpy's rules: 1-D operands are vectors, leading
    dimensions are batch dimensions and broadcast. For 2-D, ∂L/∂A = G Bᵀ and
    ∂L/∂B = Aᵀ G."""
    for x in (a, b):
        if isinstance(x, _SCALARS) or (hasattr(x, "ndim") and x.ndim == 0):
            raise ValueError("matmul: operands must have at least 1 dimension, got a scalar "
                             f"(shapes {np.shape(a)} and {np.shape(b)})")
    return _binary(MATMUL, a, b)


def dot(a: ArrayLike, b: ArrayLike) -> Tensor:
    """numpy.dot for 0-, 1- and 2-D operands (use matmul for batches)."""
    a, b = _as_tensor(a, "dot"), _as_tensor(b, "dot")
    if a.ndim > 2 or b.ndim > 2:
        raise ValueError(f"dot: only 0-, 1- and 2-D operands; use matmul for batches "
                         f"(shapes {a.shape} and {b.shape})")
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    return matmul(a, b)


def outer(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Outer product of two vectors (flattened first, as numpy.outer)."""
    a, b = _as_tensor(a, "outer"), _as_tensor(b, "outer")
    return multiply(reshape(a, (-1, 1)), reshape(b, (1, -1)))


# ---------------------------------------------------------------------------
# Shape

RESHAPE = defop("reshape", lambda x, shape: np.reshape(x, shape),
                lambda g, out, x, shape: g.reshape(x.shape))
TRANSPOSE = defop("transpose", lambda x, axes: np.transpose(x, axes),
                  # axes may be negative (numpy allows it): the inverse permutation
                  # is the argsort of the non-negative ones.
                  lambda g, out, x, axes: g.transpose(
                      None if axes is None else tuple(np.argsort([a % x.ndim for a in axes]))))
EXPAND_DIMS = defop("expand_dims", lambda x, axis: np.expand_dims(x, axis),
                    lambda g, out, x, axis: g.reshape(x.shape))
SQUEEZE = defop("squeeze", lambda x, axis: np.squeeze(x, axis),
                lambda g, out, x, axis: g.reshape(x.shape))
# Its VJP is the identity: the engine's unbroadcast sums the stretched axes.
BROADCAST_TO = defop("broadcast_to", lambda x, shape: np.broadcast_to(x, shape),
                     lambda g, out, x, shape: g)
FLIP = defop("flip", lambda x, axis: np.flip(x, axis), lambda g, out, x, axis: FLIP(g, axis=axis))


def _concat_vjp(i: int, g: Any, out: Any, *xs: Any, axis: int) -> Any:
    ax = axis % out.ndim
    start = builtins.sum(x.shape[ax] for x in xs[:i])
    return GETITEM(g, index=(slice(None),) * ax + (slice(start, start + xs[i].shape[ax]),))


def _stack_vjp(i: int, g: Any, out: Any, *xs: Any, axis: int) -> Any:
    return GETITEM(g, index=(slice(None),) * (axis % out.ndim) + (i,))


def _pad_vjp(g: Any, out: Any, x: Any, pad_width: Any, constant_values: float) -> Any:
    # `pad` records pad_width as one (before, after) pair per axis.
    return GETITEM(g, index=tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, x.shape)))


CONCAT = defop("concat", lambda *xs, axis: np.concatenate(xs, axis=axis), _concat_vjp, variadic=True)
STACK = defop("stack", lambda *xs, axis: np.stack(xs, axis=axis), _stack_vjp, variadic=True)
PAD = defop("pad", lambda x, pad_width, constant_values:
            np.pad(x, pad_width, mode="constant", constant_values=constant_values), _pad_vjp)


def _shape_arg(shape: tuple[Any, ...]) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def reshape(x: ArrayLike, shape: Union[int, Sequence[int]]) -> Tensor:
    """The same elements in a new shape (one entry may be -1)."""
    return _unary(RESHAPE, x, shape=(int(shape),) if isinstance(shape, (int, np.integer))
                  else _shape_arg(tuple(shape)))


def transpose(x: ArrayLike, *axes: Any) -> Tensor:
    """Permute the axes (reverse them when none are given), as numpy."""
    ax = _shape_arg(axes) if axes and axes != (None,) else None
    return _unary(TRANSPOSE, x, axes=ax)


def swapaxes(x: ArrayLike, axis1: int, axis2: int) -> Tensor:
    """Exchange two axes."""
    x = _as_tensor(x, "swapaxes")
    a1, a2 = _axes((axis1, axis2), x.ndim, f"swapaxes (input shape {x.shape})")
    perm = list(range(x.ndim))
    perm[a1], perm[a2] = perm[a2], perm[a1]
    return _unary(TRANSPOSE, x, axes=tuple(perm))


def expand_dims(x: ArrayLike, axis: Union[int, Sequence[int]]) -> Tensor:
    """Insert axes of size 1 at `axis`."""
    return _unary(EXPAND_DIMS, x, axis=_ax(axis))


def squeeze(x: ArrayLike, axis: Axis = None) -> Tensor:
    """Remove axes of size 1 (all of them, or those in `axis`)."""
    return _unary(SQUEEZE, x, axis=_ax(axis))


def broadcast_to(x: ArrayLike, shape: Sequence[int]) -> Tensor:
    """x broadcast to `shape` (a read-only view); the gradient sums back."""
    return _unary(BROADCAST_TO, x, shape=_shape_arg(tuple(shape)))


def flip(x: ArrayLike, axis: Axis = None) -> Tensor:
    """Reverse the order of elements along `axis` (all axes when None)."""
    return _unary(FLIP, x, axis=_ax(axis))


def _tensors(xs: Sequence[ArrayLike], opname: str) -> tuple[Tensor, ...]:
    if isinstance(xs, (Tensor, np.ndarray)):
        raise TypeError(f"{opname}: expects a sequence of tensors, got a single {type(xs).__name__}")
    ts = tuple(_as_tensor(x, opname) for x in xs)
    if not ts:
        raise ValueError(f"{opname}: needs at least one tensor")
    return ts


def concat(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (numpy.concatenate)."""
    return record(CONCAT, _tensors(tensors, "concat"), {"axis": int(axis)})


def stack(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    """Join tensors along a new axis."""
    return record(STACK, _tensors(tensors, "stack"), {"axis": int(axis)})


def split(x: ArrayLike, indices_or_sections: Union[int, Sequence[int]], axis: int = 0) -> list[Tensor]:
    """Split into pieces along `axis`, as numpy.split: a number of equal
    sections, or the indices where to cut. Each piece is a slice of x."""
    x = _as_tensor(x, "split")
    (ax,) = _axes(axis, x.ndim, f"split (input shape {x.shape})")
    n = x.shape[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0 or n % k:
            raise ValueError(f"split: axis {axis} of size {n} does not divide into {k} equal "
                             f"sections (shape {x.shape})")
        cuts = [n // k * i for i in range(1, k)]
    else:
        cuts = [int(c) for c in indices_or_sections]
    bounds = [0] + cuts + [n]
    return [x[(slice(None),) * ax + (slice(lo, hi),)] for lo, hi in zip(bounds[:-1], bounds[1:])]


def pad(x: ArrayLike, pad_width: Any, constant_values: float = 0) -> Tensor:
    """Pad with a constant (numpy.pad, mode="constant"); pad_width as numpy."""
    x = _as_tensor(x, "pad")
    pw = np.asarray(pad_width)
    if pw.dtype.kind not in "iu" or (pw < 0).any():
        raise ValueError(f"pad: pad_width must be non-negative integers, got {pad_width!r}")
    try:  # numpy's forms (p, (p,), (lo, hi), one pair per axis) as one pair per axis
        pw = np.broadcast_to(pw, (x.ndim, 2))
    except ValueError:
        raise ValueError(f"pad: pad_width {pad_width!r} does not fit an input of shape "
                         f"{x.shape}") from None
    return _unary(PAD, x, pad_width=pw.tolist(), constant_values=constant_values)


# ---------------------------------------------------------------------------
# Indexing. The backward of a gather is a scatter-add, so repeated indices
# accumulate; `index_add` is that scatter, and its own VJP is the gather.

def _is_basic(index: tuple[Any, ...]) -> bool:
    return builtins.all(i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer))
                        and not isinstance(i, (bool, np.bool_)) for i in index)


def _index_add(g: np.ndarray, shape: tuple[int, ...], index: tuple[Any, ...]) -> np.ndarray:
    z = np.zeros(shape, dtype=g.dtype)
    if _is_basic(index):
        z[index] = g          # basic indexing never repeats an element
    else:
        np.add.at(z, index, g)
    return z


GETITEM = defop("getitem", lambda x, index: x[index],
                lambda g, out, x, index: INDEX_ADD(g, shape=x.shape, index=index))
INDEX_ADD = defop("index_add", _index_add,
                  lambda g, out, src, shape, index: GETITEM(g, index=index))


def _index(key: Any) -> tuple[Any, ...]:
    key = key if isinstance(key, tuple) else (key,)
    out = []
    for k in key:
        if isinstance(k, Tensor):
            k = k._data
        elif isinstance(k, list):
            k = np.asarray(k)
        out.append(k)
    return tuple(out)


def getitem(x: ArrayLike, key: Any) -> Tensor:
    """x[key] with ints, slices, None, Ellipsis, boolean masks and integer
    arrays, as numpy. The backward scatter-adds, so repeated indices accumulate."""
    return _unary(GETITEM, x, index=_index(key))


def take(x: ArrayLike, indices: ArrayLike, axis: Optional[int] = None) -> Tensor:
    """Elements at `indices` along `axis` (of the flattened x when None)."""
    x = _as_tensor(x, "take")
    idx = np.asarray(indices._data if isinstance(indices, Tensor) else indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"take: indices must be integers, got dtype {idx.dtype}")
    if axis is None:
        return getitem(reshape(x, (-1,)), (idx,))
    (ax,) = _axes(axis, x.ndim, f"take (input shape {x.shape})")
    return getitem(x, (slice(None),) * ax + (idx,))


def one_hot(indices: ArrayLike, num_classes: Optional[int] = None, dtype: Any = np.float32) -> Tensor:
    """Rows of the identity: one_hot([2, 0], 3) = [[0,0,1],[1,0,0]]. Not differentiable."""
    idx = np.asarray(indices._data if isinstance(indices, Tensor) else indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got dtype {idx.dtype}")
    n = int(idx.max()) + 1 if num_classes is None and idx.size else int(num_classes or 0)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"one_hot: indices must lie in [0, {n}), got min {idx.min()} and "
                         f"max {idx.max()}")
    return Tensor(np.eye(n, dtype=dtype)[idx])


# ---------------------------------------------------------------------------
# Tensor operators and methods, all routed through the table above.

def _install() -> None:
    def binary(op: Op, reflected: bool = False) -> Callable[[Tensor, Any], Tensor]:
        # `type(...) is Tensor` first: the common case skips the coercion call.
        if reflected:
            return lambda self, other: record(
                op, (other if type(other) is Tensor else _operand(other, self, op.name), self), {})
        return lambda self, other: record(
            op, (self, other if type(other) is Tensor else _operand(other, self, op.name)), {})

    T = Tensor
    for name, op in [("add", ADD), ("sub", SUB), ("mul", MUL), ("truediv", DIV),
                     ("pow", POW), ("matmul", MATMUL)]:
        setattr(T, f"__{name}__", binary(op))
        setattr(T, f"__r{name}__", binary(op, reflected=True))
    for name, op in [("lt", LESS), ("le", LESS_EQUAL), ("gt", GREATER), ("ge", GREATER_EQUAL)]:
        setattr(T, f"__{name}__", binary(op))

    def eq(self: Tensor, other: Any) -> Any:
        return NotImplemented if other is None else record(EQUAL, (self, _operand(other, self, "equal")), {})

    def ne(self: Tensor, other: Any) -> Any:
        return NotImplemented if other is None else record(NOT_EQUAL, (self, _operand(other, self, "not_equal")), {})

    T.__eq__ = eq  # type: ignore[assignment]
    T.__ne__ = ne  # type: ignore[assignment]
    T.__neg__ = lambda self: record(NEG, (self,), {})
    T.__pos__ = lambda self: self
    T.__abs__ = lambda self: record(ABS, (self,), {})
    T.__and__ = lambda self, o: _binary(LOGICAL_AND, self, o)
    T.__or__ = lambda self, o: _binary(LOGICAL_OR, self, o)
    T.__invert__ = lambda self: _unary(LOGICAL_NOT, self)
    T.__getitem__ = getitem

    def __setitem__(self: Tensor, key: Any, value: Any) -> None:
        if self.requires_grad or self.node is not None:
            raise RuntimeError("__setitem__: in-place assignment into a tensor that is part of "
                               "a graph would make its gradients wrong; build a new tensor "
                               "(tg.where, tg.concat) or assign to .data of a leaf")
        self._data[_index(key)] = value._data if isinstance(value, Tensor) else value
    T.__setitem__ = __setitem__

    # Methods named as on numpy arrays and PyTorch tensors.
    for fn in (exp, log, sqrt, tanh, sigmoid, relu, leaky_relu, softplus, abs, clip, sum, mean,
               max, min, var, logsumexp, argmax, argmin, softmax, log_softmax, matmul, dot,
               expand_dims, squeeze, broadcast_to, flip, swapaxes, astype, take, transpose):
        setattr(T, fn.__name__, fn)
    T.reshape = lambda self, *shape: reshape(self, _shape_arg(shape))  # type: ignore[attr-defined]
    T.flatten = lambda self: reshape(self, (-1,))                      # type: ignore[attr-defined]
    T.unsqueeze = expand_dims                                          # type: ignore[attr-defined]
    T.T = property(lambda self: transpose(self))                       # type: ignore[attr-defined]
    T.mT = property(lambda self: swapaxes(self, -1, -2))               # type: ignore[attr-defined]
    T.__array_ufunc__ = _array_ufunc                                   # type: ignore[attr-defined]
    T.__array_function__ = _array_function                             # type: ignore[attr-defined]


# numpy's own functions applied to Tensors dispatch here (NEP 13 and NEP 18),
# which is what lets the same VJP code run on arrays and on Tensors.
_UFUNCS: dict[Any, Callable[..., Tensor]] = {
    np.add: add, np.subtract: subtract, np.multiply: multiply, np.true_divide: divide,
    np.power: power, np.negative: negative, np.absolute: abs, np.exp: exp, np.log: log,
    np.sqrt: sqrt, np.tanh: tanh, np.maximum: maximum, np.minimum: minimum, np.matmul: matmul,
    np.less: less, np.less_equal: less_equal, np.greater: greater,
    np.greater_equal: greater_equal, np.equal: equal, np.not_equal: not_equal, np.sign: sign,
    np.logical_and: lambda a, b: _binary(LOGICAL_AND, a, b),
    np.logical_or: lambda a, b: _binary(LOGICAL_OR, a, b),
    np.logical_not: lambda x: _unary(LOGICAL_NOT, x),
    np.bitwise_and: lambda a, b: _binary(LOGICAL_AND, a, b),
}


def _to_arrays(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x._data
    if isinstance(x, (list, tuple)):
        return type(x)(_to_arrays(v) for v in x)
    return x


def _any_requires_grad(x: Any) -> bool:
    if isinstance(x, Tensor):
        return x.requires_grad
    if isinstance(x, (list, tuple)):
        return builtins.any(_any_requires_grad(v) for v in x)
    if isinstance(x, dict):
        return builtins.any(_any_requires_grad(v) for v in x.values())
    return False


def _array_ufunc(self: Tensor, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
    fn = _UFUNCS.get(ufunc)
    if fn is not None and method == "__call__" and not kwargs:
        return fn(*inputs)
    # Anything else would silently cut the graph if a gradient is wanted.
    if _any_requires_grad(inputs) or _any_requires_grad(kwargs):
        raise TypeError(f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
                        + " is not a tensorgraph op, so it cannot carry a gradient; use a tg "
                        "function, or .detach().numpy() to leave the graph on purpose")
    result = getattr(ufunc, method)(*_to_arrays(inputs), **{k: _to_arrays(v) for k, v in kwargs.items()})
    return result


_FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.sum: sum, np.mean: mean, np.max: max, np.min: min, np.var: var, np.argmax: argmax,
    np.argmin: argmin, np.reshape: reshape, np.transpose: lambda x, axes=None: transpose(x, axes),
    np.swapaxes: swapaxes, np.expand_dims: expand_dims, np.squeeze: squeeze,
    np.broadcast_to: broadcast_to, np.concatenate: concat, np.stack: stack, np.split: split,
    np.flip: flip, np.take: take, np.where: where, np.clip: clip, np.dot: dot, np.outer: outer,
    np.matmul: matmul, np.abs: abs,
    # Shape queries lose no gradient (matmul's own error message uses np.shape).
    np.shape: lambda x: x.shape, np.ndim: lambda x: x.ndim,
    np.size: lambda x, axis=None: x.size if axis is None else x.shape[axis],
    np.pad: lambda x, pad_width, mode="constant", constant_values=0:
        pad(x, pad_width, constant_values) if mode == "constant" else
        (_ for _ in ()).throw(ValueError(f"pad: only mode='constant' is supported, got {mode!r}")),
}
for _alias in ("amax", "amin"):
    if hasattr(np, _alias):
        _FUNCTIONS[getattr(np, _alias)] = max if _alias == "amax" else min


def _array_function(self: Tensor, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
    fn = _FUNCTIONS.get(func)
    if fn is not None:
        return fn(*args, **kwargs)
    if _any_requires_grad(args) or _any_requires_grad(kwargs):
        raise TypeError(f"numpy.{func.__name__} is not a tensorgraph op, so it cannot carry a "
                        "gradient; use a tg function, or .detach().numpy() to leave the graph "
                        "on purpose")
    return func(*_to_arrays(args), **{k: _to_arrays(v) for k, v in kwargs.items()})


_install()
