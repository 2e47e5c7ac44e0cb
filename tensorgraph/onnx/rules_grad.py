"""Export rules for the gradient ops that a captured `tg.grad` records.

Inside `tg.capture`, `tg.grad` records one op per VJP, `{op}_vjp{i}`
(autograd.vjp_op): inputs (g, out, *op's inputs), attrs the op's; the
result is dL/d(input i), unbroadcast and cast to that input's shape and
dtype. Each rule here writes the same formula as the op's VJP in its
declaration (tensorgraph/ops/*.py, losses.py, nn/neurons.py), at the
broadcast shape, and `_vjp` then sums over the broadcast axes (ReduceSum +
Squeeze) and casts, as the replay does. Sizes are read from the arrays at
run time (Shape) wherever a VJP needs them, so an exported training step
runs at any batch size.

A variadic op's VJP (`concat_vjp0`, `concat_vjp1`, ...) has one rule under
`{op}_vjp` (no index). VJPs without a rule are refused by name in REFUSED.
"""
from __future__ import annotations

import math
import string
from typing import Any, Callable, Optional

import numpy as np

from .rules import REFUSED, RULES, Context, Unsupported, cross_of, diagonal_of

__all__ = ["vjp_key"]

_BIG = np.iinfo(np.int64)


def vjp_key(op: Any, i: int) -> str:
    """The RULES / REFUSED key of the VJP of `op` for input i."""
    return f"{op.name}_vjp" if op.variadic else f"{op.name}_vjp{i}"


class _Grad:
    """What a VJP rule reads: the node's names and shapes, with helpers."""

    def __init__(self, ctx: Context, node: Any, xs: list[str]) -> None:
        self.ctx, self.node, self.attrs = ctx, node, node.attrs
        self.of = node.op.forward.vjp_of
        self.i = int(node.op.name.rsplit("_vjp", 1)[1])
        self.dt = np.dtype(node.inputs[1].dtype)      # the op's output dtype: g's
        self.vals = node.inputs[2:]                   # the op's inputs (Values)
        self.raw = xs[2:]
        self.g = ctx.cast(xs[0], node.inputs[0].dtype, self.dt)
        self.out = ctx.cast(xs[1], node.inputs[1].dtype, self.dt)

    def x(self, k: int) -> str:
        """Input k, in the gradient's dtype when it is a number (not a bool)."""
        v = self.vals[k]
        if np.dtype(v.dtype) == np.bool_:
            return self.raw[k]
        return self.ctx.cast(self.raw[k], v.dtype, self.dt)

    def c(self, value: float, base: str = "const") -> str:
        return self.ctx.const(np.asarray(value, dtype=self.dt), base)

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        return self.ctx.op(op_type, *inputs, **attrs)

    def nd(self, k: int = 0) -> int:
        return len(self.vals[k].shape)

    def axes(self, k: int = 0) -> list[int]:
        """The reduced axes of input k (attr `axis`), non-negative; None: all."""
        nd, axis = self.nd(k), self.attrs.get("axis")
        if axis is None:
            return list(range(nd))
        ax = [int(axis)] if np.ndim(axis) == 0 else [int(a) for a in axis]
        return sorted(a % nd for a in ax)

    def keep(self, name: str, k: int = 0) -> str:
        """A reduction's output (or gradient) with its reduced axes back as 1s."""
        ax = self.axes(k)
        if self.attrs.get("keepdims", False) or not ax:
            return name
        return self.op("Unsqueeze", name, self.ctx.ints(ax))

    def reduce(self, op_type: str, name: str, k: int = 0) -> str:
        """`op_type` over the reduced axes of input k, keepdims."""
        ax = self.axes(k)
        if not ax:
            return name
        return self.op(op_type, name, self.ctx.ints(ax), keepdims=1)

    def shape(self, k: int = 0) -> str:
        return self.op("Shape", self.raw[k])

    def count(self, k: int, ax: list[int]) -> str:
        """The number of elements over axes `ax` of input k, in the gradient's
        dtype: a constant when the sizes are known, else read at run time."""
        sizes = [self.vals[k].shape[a] for a in ax]
        if None not in sizes:
            return self.c(math.prod(sizes), "count")
        n = self.op("ReduceProd", self.op("Gather", self.shape(k), self.ctx.ints(ax), axis=0),
                    keepdims=0)
        return self.op("Cast", n, to=self.ctx.onnx.helper.np_dtype_to_tensor_dtype(self.dt))

    def zeros_like_g(self) -> str:
        zero = self.ctx.onnx.numpy_helper.from_array(np.zeros(1, self.dt))
        return self.op("ConstantOfShape", self.op("Shape", self.g), value=zero)


Local = Callable[[_Grad], str]


def _vjp(name: str, *inputs: int) -> Callable[[Local], Local]:
    """Register the decorated formula as the rule of `{name}_vjp{i}` for each
    i in `inputs` (of `{name}_vjp` when none: a variadic op)."""
    def register(f: Local) -> Local:
        keys = [f"{name}_vjp{i}" for i in inputs] or [f"{name}_vjp"]
        for key in keys:
            RULES[key] = _written_by(f)
        return f
    return register


def _written_by(f: Local) -> Callable[[Context, Any, list[str]], str]:
    def write(ctx: Context, node: Any, xs: list[str]) -> str:
        d = _Grad(ctx, node, xs)
        gi = f(d)
        gi = _unbroadcast(d, gi)
        gi = ctx.cast(gi, d.dt, node.output.dtype)
        if gi in xs:              # a gradient passed through: a node of its own
            gi = ctx.op("Identity", gi)
        return gi
    return write


def _grad_shape(d: _Grad) -> Optional[tuple[int, ...]]:
    """The shape the op's VJP returns before unbroadcasting, from a run of the
    registry VJP on example arrays (open sizes 2): which axes were broadcast."""
    of, node = d.of, d.node
    vals = [np.ones(tuple(2 if s is None else s for s in v.shape), v.dtype)
            if np.dtype(v.dtype).kind not in "iu" else
            np.zeros(tuple(2 if s is None else s for s in v.shape), v.dtype)
            for v in node.inputs]
    attrs = dict(node.attrs)
    if of.saves:
        attrs.setdefault("saved", None)
    vjp = of.vjps[0] if of.variadic else of.vjps[d.i]
    try:
        with np.errstate(all="ignore"):
            gi = vjp(d.i, *vals, **attrs) if of.variadic else vjp(*vals, **attrs)
    except Exception:          # the example values do not fit: take the output's shape
        return None
    return tuple(np.shape(gi.data if hasattr(gi, "_data") else gi))


#: ops whose VJP reshapes g to the input's shape: nothing to unbroadcast. Their
#: example run in _grad_shape fails when open sizes were merged or split
#: (x.reshape(T, -1, n) of T·B rows: the example's 2s do not multiply back).
_RESHAPES = frozenset({"reshape", "expand_dims", "squeeze", "flatten"})


def _unbroadcast(d: _Grad, gi: str) -> str:
    """Sum the gradient over the axes its input was broadcast along (as
    autograd.unbroadcast does): the leading extra axes and the 1s."""
    want = d.node.output.shape
    have = _grad_shape(d)
    if have is None and d.of.name in _RESHAPES:
        return gi                # already the input's shape (Reshape to Shape(input))
    if have is None:
        have = tuple(2 if s is None else s for s in d.node.inputs[1].shape)
    lead = len(have) - len(want)
    if lead < 0:
        return gi
    ones = [lead + j for j, n in enumerate(want) if n == 1 and have[lead + j] != 1]
    axes = list(range(lead)) + ones
    if axes:
        gi = d.op("ReduceSum", gi, d.ctx.ints(axes), keepdims=1)
    if lead:
        gi = d.op("Squeeze", gi, d.ctx.ints(range(lead)))
    return gi


# ---------------------------------------------------------------------------
# Arithmetic

@_vjp("add", 0, 1)
@_vjp("sub", 0)
@_vjp("mod", 0)
@_vjp("clone", 0)
@_vjp("astype", 0)
@_vjp("broadcast_to", 0)
def _identity(d: _Grad) -> str:
    return d.g


@_vjp("sub", 1)
@_vjp("neg", 0)
def _negated(d: _Grad) -> str:
    return d.op("Neg", d.g)


@_vjp("mul", 0, 1)
def _mul(d: _Grad) -> str:
    return d.op("Mul", d.g, d.x(1 - d.i))


@_vjp("div", 0)
def _div_a(d: _Grad) -> str:
    return d.op("Div", d.g, d.x(1))


@_vjp("div", 1)
def _div_b(d: _Grad) -> str:
    # d(a/b)/db = -a/b² = -out/b
    return d.op("Div", d.op("Mul", d.op("Neg", d.g), d.out), d.x(1))


@_vjp("pow", 0)
def _pow_a(d: _Grad) -> str:
    # b·a^(b-1), 0 where a = b = 0 (a^0 is constant there)
    a, b = d.x(0), d.x(1)
    zero = d.c(0, "zero")
    flat = d.op("And", d.op("Equal", b, zero), d.op("Equal", a, zero))
    base = d.op("Where", flat, d.c(1, "one"), a)
    grad = d.op("Mul", d.op("Mul", d.g, b), d.op("Pow", base, d.op("Sub", b, d.c(1, "one"))))
    return d.op("Where", flat, zero, grad)


@_vjp("pow", 1)
def _pow_b(d: _Grad) -> str:
    # a^b ln a, 0 where a <= 0
    a = d.x(0)
    safe = d.op("Where", d.op("Greater", a, d.c(0, "zero")), a, d.c(1, "one"))
    return d.op("Mul", d.op("Mul", d.g, d.out), d.op("Log", safe))


@_vjp("maximum", 0, 1)
@_vjp("minimum", 0, 1)
def _extremum2(d: _Grad) -> str:
    # the gradient goes to the larger (smaller) side; ties split it evenly
    mine, other = d.x(d.i), d.x(1 - d.i)
    wins = d.op("Greater" if d.of.name == "maximum" else "Less", mine, other)
    half = d.op("Where", d.op("Equal", mine, other), d.op("Mul", d.g, d.c(0.5, "half")),
                d.c(0, "zero"))
    return d.op("Where", wins, d.g, half)


@_vjp("where", 1, 2)
def _where(d: _Grad) -> str:
    zero = d.c(0, "zero")
    a, b = (d.g, zero) if d.i == 1 else (zero, d.g)
    return d.op("Where", d.x(0), a, b)


# ---------------------------------------------------------------------------
# Functions of one input

@_vjp("abs", 0)
def _abs(d: _Grad) -> str:
    return d.op("Mul", d.g, d.op("Sign", d.x(0)))


@_vjp("exp", 0)
def _exp(d: _Grad) -> str:
    return d.op("Mul", d.g, d.out)


@_vjp("log", 0)
def _log(d: _Grad) -> str:
    return d.op("Div", d.g, d.x(0))


@_vjp("sqrt", 0)
def _sqrt(d: _Grad) -> str:
    return d.op("Div", d.g, d.op("Mul", d.c(2, "two"), d.out))


@_vjp("tanh", 0)
def _tanh(d: _Grad) -> str:
    return d.op("Mul", d.g, d.op("Sub", d.c(1, "one"), d.op("Mul", d.out, d.out)))


@_vjp("sigmoid", 0)
def _sigmoid(d: _Grad) -> str:
    return d.op("Mul", d.op("Mul", d.g, d.out), d.op("Sub", d.c(1, "one"), d.out))


@_vjp("relu", 0)
def _relu(d: _Grad) -> str:
    on = d.op("Greater", d.out, d.c(0, "zero"))
    return d.op("Mul", d.g, d.ctx.cast(on, np.bool_, d.dt))


@_vjp("leaky_relu", 0)
def _leaky_relu(d: _Grad) -> str:
    slope = d.c(float(d.attrs["negative_slope"]), "slope")
    return d.op("Where", d.op("Greater", d.x(0), d.c(0, "zero")), d.g, d.op("Mul", d.g, slope))


@_vjp("softplus", 0)
def _softplus(d: _Grad) -> str:
    return d.op("Mul", d.g, d.op("Sigmoid", d.x(0)))


@_vjp("clip", 0)
def _clip(d: _Grad) -> str:
    # the gradient passes where lo <= x <= hi, bounds included
    x, inside = d.x(0), None
    for bound, cmp in (("lo", "GreaterOrEqual"), ("hi", "LessOrEqual")):
        v = d.attrs.get(bound)
        if v is None:
            continue
        ok = d.op(cmp, x, d.ctx.const(np.asarray(v, dtype=d.dt), bound))
        inside = ok if inside is None else d.op("And", inside, ok)
    if inside is None:
        return d.g
    return d.op("Mul", d.g, d.ctx.cast(inside, np.bool_, d.dt))


@_vjp("floor_divide", 0, 1)
@_vjp("sign", 0)
@_vjp("floor", 0)
@_vjp("ceil", 0)
@_vjp("round", 0)
def _zero(d: _Grad) -> str:
    # flat wherever differentiable: zeros of g's shape (g·0 would turn inf into nan)
    return d.zeros_like_g()


@_vjp("step", 0)
def _step(d: _Grad) -> str:
    return d.op("Mul", d.g, d.c(0, "zero"))      # nn's step VJP is g * 0


@_vjp("square", 0)
def _square(d: _Grad) -> str:
    return d.op("Mul", d.op("Mul", d.g, d.c(2, "two")), d.x(0))


@_vjp("reciprocal", 0)
def _reciprocal(d: _Grad) -> str:
    return d.op("Mul", d.op("Mul", d.op("Neg", d.g), d.out), d.out)


@_vjp("sin", 0)
def _sin(d: _Grad) -> str:
    return d.op("Mul", d.g, d.op("Cos", d.x(0)))


@_vjp("cos", 0)
def _cos(d: _Grad) -> str:
    return d.op("Mul", d.op("Neg", d.g), d.op("Sin", d.x(0)))


@_vjp("sinh", 0)
def _sinh(d: _Grad) -> str:
    return d.op("Mul", d.g, d.op("Cosh", d.x(0)))


@_vjp("cosh", 0)
def _cosh(d: _Grad) -> str:
    return d.op("Mul", d.g, d.op("Sinh", d.x(0)))


@_vjp("tan", 0)
def _tan(d: _Grad) -> str:
    return d.op("Mul", d.g, d.op("Add", d.c(1, "one"), d.op("Mul", d.out, d.out)))


@_vjp("arctan", 0)
def _arctan(d: _Grad) -> str:
    x = d.x(0)
    return d.op("Div", d.g, d.op("Add", d.c(1, "one"), d.op("Mul", x, x)))


@_vjp("log1p", 0)
def _log1p(d: _Grad) -> str:
    return d.op("Div", d.g, d.op("Add", d.c(1, "one"), d.x(0)))


@_vjp("expm1", 0)
def _expm1(d: _Grad) -> str:
    return d.op("Mul", d.g, d.op("Add", d.out, d.c(1, "one")))


def _one_minus_sq(d: _Grad, sign: float = -1.0, first: float = 1.0) -> str:
    """first + sign·x² (1 - x², x² + 1, x² - 1)."""
    x = d.x(0)
    sq = d.op("Mul", x, x)
    if first == 1.0 and sign == -1.0:
        return d.op("Sub", d.c(1, "one"), sq)
    return d.op("Add" if first > 0 else "Sub", sq, d.c(abs(first), "one"))


@_vjp("arcsin", 0)
@_vjp("arccos", 0)
def _arcsin(d: _Grad) -> str:
    g = d.g if d.of.name == "arcsin" else d.op("Neg", d.g)
    return d.op("Div", g, d.op("Sqrt", _one_minus_sq(d)))


@_vjp("arcsinh", 0)
@_vjp("arccosh", 0)
def _arcsinh(d: _Grad) -> str:
    return d.op("Div", d.g, d.op("Sqrt", _one_minus_sq(d, 1.0, 1.0 if d.of.name == "arcsinh" else -1.0)))


@_vjp("arctanh", 0)
def _arctanh(d: _Grad) -> str:
    return d.op("Div", d.g, _one_minus_sq(d))


@_vjp("log2", 0)
@_vjp("log10", 0)
def _log_base(d: _Grad) -> str:
    ln = math.log(2.0) if d.of.name == "log2" else math.log(10.0)
    return d.op("Div", d.g, d.op("Mul", d.x(0), d.c(ln, "ln_base")))


@_vjp("exp2", 0)
def _exp2(d: _Grad) -> str:
    return d.op("Mul", d.op("Mul", d.g, d.out), d.c(math.log(2.0), "ln2"))


@_vjp("sinc", 0)
def _sinc(d: _Grad) -> str:
    # (cos(πx) - sinc x)/x, 0·(-π²/3) at x = 0
    x = d.x(0)
    zero = d.c(0, "zero")
    at0 = d.op("Equal", x, zero)
    slope = d.op("Div", d.op("Sub", d.op("Cos", d.op("Mul", d.c(math.pi, "pi"), x)), d.out),
                 d.op("Where", at0, d.c(1, "one"), x))
    return d.op("Mul", d.g, d.op("Where", at0, d.op("Mul", x, d.c(-math.pi ** 2 / 3, "k")), slope))


@_vjp("logaddexp", 0, 1)
def _logaddexp(d: _Grad) -> str:
    return d.op("Mul", d.g, d.op("Exp", d.op("Sub", d.x(d.i), d.out)))


@_vjp("hypot", 0, 1)
def _hypot(d: _Grad) -> str:
    # x_i/out, 0 where out = 0
    zero = d.c(0, "zero")
    at0 = d.op("Equal", d.out, zero)
    ratio = d.op("Div", d.op("Mul", d.g, d.x(d.i)), d.op("Where", at0, d.c(1, "one"), d.out))
    return d.op("Where", at0, zero, ratio)


@_vjp("mod", 1)
def _mod_b(d: _Grad) -> str:
    # a mod b = a - floor(a/b)·b
    return d.op("Mul", d.op("Neg", d.g), d.op("Floor", d.op("Div", d.x(0), d.x(1))))


@_vjp("fmax", 0, 1)
@_vjp("fmin", 0, 1)
def _fmax(d: _Grad) -> str:
    # like maximum, and the other side's NaN loses
    mine, other = d.x(d.i), d.x(1 - d.i)
    wins = d.op("Or", d.op("Greater" if d.of.name == "fmax" else "Less", mine, other),
                d.op("IsNaN", other))
    half = d.op("Where", d.op("Equal", mine, other), d.op("Mul", d.g, d.c(0.5, "half")),
                d.c(0, "zero"))
    return d.op("Where", wins, d.g, half)


# ---------------------------------------------------------------------------
# Matrix product (numpy's rules: 1-D operands are vectors, batch axes broadcast)

def _mT(d: _Grad, x: str, nd: int) -> str:
    perm = list(range(nd))
    perm[-2:] = perm[-1], perm[-2]
    return d.op("Transpose", x, perm=perm)


@_vjp("matmul", 0)
def _matmul_a(d: _Grad) -> str:
    na, nb = d.nd(0), d.nd(1)
    g, b = d.g, d.x(1)
    if nb == 1:                  # g (..., n) times b (k,): (..., n, k)
        return d.op("Mul", g, b) if na == 1 else \
            d.op("Mul", d.op("Unsqueeze", g, d.ctx.ints([-1])), b)
    if na == 1:                  # (b @ g[..., None])[..., 0]
        return d.op("Squeeze", d.op("MatMul", b, d.op("Unsqueeze", g, d.ctx.ints([-1]))),
                    d.ctx.ints([-1]))
    return d.op("MatMul", g, _mT(d, b, nb))


@_vjp("matmul", 1)
def _matmul_b(d: _Grad) -> str:
    na, nb = d.nd(0), d.nd(1)
    g, a = d.g, d.x(0)
    if na == 1:                  # a[:, None] * g[..., None, :]
        return d.op("Mul", g, a) if nb == 1 else \
            d.op("Mul", d.op("Unsqueeze", a, d.ctx.ints([1])),
                 d.op("Unsqueeze", g, d.ctx.ints([-2])))
    if nb == 1:                  # (aᵀ @ g[..., None])[..., 0]
        return d.op("Squeeze", d.op("MatMul", _mT(d, a, na),
                                    d.op("Unsqueeze", g, d.ctx.ints([-1]))), d.ctx.ints([-1]))
    return d.op("MatMul", _mT(d, a, na), g)


# ---------------------------------------------------------------------------
# Reductions and softmax

@_vjp("sum", 0)
def _sum(d: _Grad) -> str:
    return d.op("Expand", d.keep(d.g), d.shape())


@_vjp("mean", 0)
def _mean(d: _Grad) -> str:
    return d.op("Expand", d.op("Div", d.keep(d.g), d.count(0, d.axes())), d.shape())


@_vjp("max", 0)
@_vjp("min", 0)
def _extremum(d: _Grad) -> str:
    # every element equal to the extremum shares the gradient evenly
    x = d.x(0)
    hit = d.ctx.cast(d.op("Equal", x, d.keep(d.out)), np.bool_, d.dt)
    share = d.reduce("ReduceSum", hit) if d.axes() else hit
    return d.op("Div", d.op("Mul", d.keep(d.g), hit), share)


@_vjp("logsumexp", 0)
def _logsumexp(d: _Grad) -> str:
    x = d.x(0)
    e = d.op("Exp", d.op("Sub", x, d.reduce("ReduceMax", x)))
    return d.op("Mul", d.keep(d.g), d.op("Div", e, d.reduce("ReduceSum", e)))


@_vjp("var", 0)
def _var(d: _Grad) -> str:
    # 2 (x - mean x) / (N - ddof)
    x = d.x(0)
    centred = d.op("Sub", x, d.reduce("ReduceMean", x))
    dof = d.op("Sub", d.count(0, d.axes()), d.c(int(d.attrs.get("ddof", 0)), "ddof"))
    scale = d.op("Div", d.c(2, "two"), dof)
    return d.op("Mul", d.op("Mul", d.keep(d.g), centred), scale)


@_vjp("std", 0)
def _std(d: _Grad) -> str:
    # (x - mean)/((N - ddof)·std), 0 where std = 0
    x, o = d.x(0), d.keep(d.out)
    zero = d.c(0, "zero")
    at0 = d.op("Equal", o, zero)
    dof = d.op("Sub", d.count(0, d.axes()), d.c(int(d.attrs.get("ddof", 0)), "ddof"))
    centred = d.op("Sub", x, d.reduce("ReduceMean", x))
    unit = d.op("Div", centred, d.op("Mul", dof, d.op("Where", at0, d.c(1, "one"), o)))
    return d.op("Mul", d.keep(d.g), d.op("Where", at0, zero, unit))


@_vjp("cumsum", 0)
def _cumsum(d: _Grad) -> str:
    # each x_i feeds every later output: a reversed cumsum (of the flat g for axis=None)
    axis = d.attrs.get("axis")
    out = d.op("CumSum", d.g, d.ctx.const(np.asarray(0 if axis is None else int(axis), np.int64),
                                          "axis"), reverse=1)
    return out if axis is not None else d.op("Reshape", out, d.shape())


@_vjp("norm", 0)
def _norm(d: _Grad) -> str:
    # x/‖x‖, 0 where ‖x‖ = 0
    x, o = d.x(0), d.keep(d.out)
    zero = d.c(0, "zero")
    at0 = d.op("Equal", o, zero)
    unit = d.op("Where", at0, zero, d.op("Div", x, d.op("Where", at0, d.c(1, "one"), o)))
    return d.op("Mul", d.keep(d.g), unit)


@_vjp("softmax", 0)
def _softmax(d: _Grad) -> str:
    # y ⊙ (g - Σ g ⊙ y)
    ax = d.ctx.ints([int(d.attrs["axis"])])
    s = d.op("ReduceSum", d.op("Mul", d.g, d.out), ax, keepdims=1)
    return d.op("Mul", d.out, d.op("Sub", d.g, s))


@_vjp("log_softmax", 0)
def _log_softmax(d: _Grad) -> str:
    # g - e^out Σ g
    ax = d.ctx.ints([int(d.attrs["axis"])])
    return d.op("Sub", d.g, d.op("Mul", d.op("Exp", d.out), d.op("ReduceSum", d.g, ax, keepdims=1)))


@_vjp("cross_entropy", 0)
def _cross_entropy_logits(d: _Grad) -> str:
    # (softmax(z)·Σ_c t_c − t) · scale; softmax(z) − onehot(t) for class indices
    z, t = d.vals
    C = z.shape[-1]
    p = d.op("Softmax", d.x(0), axis=-1)
    if np.dtype(t.dtype).kind in "iu":
        if C is None:
            raise Unsupported("the gradient for class-index targets needs the number of "
                              "classes (the logits' last size) when exporting")
        classes = d.ctx.const(np.arange(C, dtype=t.dtype), "classes")
        hot = d.op("Equal", d.op("Unsqueeze", d.raw[1], d.ctx.ints([-1])), classes)
        diff = d.op("Sub", p, d.ctx.cast(hot, np.bool_, d.dt))
    else:
        tt = d.x(1)
        diff = d.op("Sub", d.op("Mul", p, d.op("ReduceSum", tt, d.ctx.ints([-1]), keepdims=1)), tt)
    return d.op("Mul", _ce_scale(d), diff)


@_vjp("cross_entropy", 1)
def _cross_entropy_targets(d: _Grad) -> str:
    # −log softmax(z) · scale (probability targets)
    return d.op("Mul", d.op("Neg", _ce_scale(d)), d.op("LogSoftmax", d.x(0), axis=-1))


def _ce_scale(d: _Grad) -> str:
    """The incoming gradient shaped to broadcast against the logits (..., C):
    divided by the number of examples for "mean", a class axis for "none"."""
    reduction = d.attrs.get("reduction", "mean")
    if reduction == "none":
        return d.op("Unsqueeze", d.g, d.ctx.ints([-1]))
    if reduction == "mean":
        n = d.count(0, list(range(d.nd(0) - 1)))
        return d.op("Div", d.g, d.op("Max", n, d.c(1, "one")))
    return d.g


# ---------------------------------------------------------------------------
# Shapes and indexing

@_vjp("reshape", 0)
@_vjp("expand_dims", 0)
@_vjp("squeeze", 0)
@_vjp("flatten", 0)
def _reshape(d: _Grad) -> str:
    return d.op("Reshape", d.g, d.shape())


@_vjp("transpose", 0)
def _transpose(d: _Grad) -> str:
    nd, axes = d.nd(), d.attrs.get("axes")
    perm = list(range(nd))[::-1] if axes is None else [int(a) % nd for a in axes]
    return d.op("Transpose", d.g, perm=[int(p) for p in np.argsort(perm)])


@_vjp("flip", 0)
def _flip(d: _Grad) -> str:
    nd, axis = d.nd(), d.attrs.get("axis")
    axes = list(range(nd)) if axis is None else \
        [int(a) % nd for a in ([axis] if np.ndim(axis) == 0 else axis)]
    return d.op("Slice", d.g, d.ctx.ints([-1] * len(axes), "starts"),
                d.ctx.ints([_BIG.min] * len(axes), "ends"), d.ctx.ints(axes),
                d.ctx.ints([-1] * len(axes), "steps"))


@_vjp("concat")
def _concat(d: _Grad) -> str:
    ax = int(d.attrs["axis"]) % d.nd(0)
    sizes = [v.shape[ax] for v in d.vals[:d.i + 1]]
    if None in sizes:
        raise Unsupported("the gradient of a concat along an open (batch) axis needs the sizes")
    start = sum(sizes[:-1])
    return d.op("Slice", d.g, d.ctx.ints([start], "starts"), d.ctx.ints([start + sizes[-1]], "ends"),
                d.ctx.ints([ax]))


@_vjp("stack")
def _stack(d: _Grad) -> str:
    ax = int(d.attrs["axis"]) % (d.nd(0) + 1)
    return d.op("Gather", d.g, d.ctx.const(np.asarray(d.i, np.int64), "index"), axis=ax)


@_vjp("pad", 0)
def _pad(d: _Grad) -> str:
    pw = np.asarray(d.attrs["pad_width"], dtype=np.int64).reshape(-1, 2)
    ends = [-int(hi) if hi else _BIG.max for _, hi in pw]
    return d.op("Slice", d.g, d.ctx.ints([int(lo) for lo, _ in pw], "starts"),
                d.ctx.ints(ends, "ends"), d.ctx.ints(range(len(pw))))


@_vjp("getitem", 0)
def _getitem(d: _Grad) -> str:
    # Basic indexes only (ints, slices of step 1, None, ...): the gradient is g
    # put back in place, i.e. padded with zeros (Squeeze the new axes,
    # Unsqueeze the ones an int dropped, Pad the sliced ones).
    index = d.attrs["index"]
    index = index if isinstance(index, tuple) else (index,)
    shape = d.vals[0].shape
    nd = len(shape)
    used = sum(0 if k is None or k is Ellipsis else 1 for k in index)
    full: list[Any] = []
    for k in index:
        full += [slice(None)] * (nd - used) if k is Ellipsis else [k]
    if not any(k is Ellipsis for k in index):
        full += [slice(None)] * (nd - used)
    if any(not (k is None or isinstance(k, slice) or _is_int(k)) for k in full):
        return _getitem_array(d, full)
    news, pos = [], 0
    for k in full:               # positions of the None axes in the result
        if k is None:
            news.append(pos)
        if k is None or isinstance(k, slice):
            pos += 1
    g = d.g
    if news:
        g = d.op("Squeeze", g, d.ctx.ints(news))
    picks = [a for a, k in enumerate(k for k in full if k is not None) if _is_int(k)]
    if picks:
        g = d.op("Unsqueeze", g, d.ctx.ints(picks))
    before, after = [], []
    for a, k in enumerate(k for k in full if k is not None):
        n = shape[a]
        if isinstance(k, slice) and k == slice(None):
            before.append(0)
            after.append(0)
            continue
        if n is None:
            raise Unsupported(f"the gradient of index {index} along an open (batch) axis needs "
                              f"its size")
        if isinstance(k, slice):
            lo, hi, step = k.indices(n)
            if step != 1:
                raise Unsupported(f"the gradient of a slice with step {step} is not exported "
                                  f"(steps of 1 only)")
            hi = max(hi, lo)
        else:
            lo = int(k) % n
            hi = lo + 1
        before.append(lo)
        after.append(n - hi)
    if any(before) or any(after):
        g = d.op("Pad", g, d.ctx.ints(before + after, "pads"), mode="constant")
    return g


@_vjp("cross", 0, 1)
def _cross(d: _Grad) -> str:
    # L = g·(a × b) = a·(b × g) = b·(g × a)
    return cross_of(d.ctx, d.x(1), d.g) if d.i == 0 else cross_of(d.ctx, d.g, d.x(0))


@_vjp("diag", 0)
def _diag(d: _Grad) -> str:
    # a vector's gradient is g's k-th diagonal; a matrix's is not written
    if d.nd() != 1:
        raise Unsupported("the gradient of the diagonal of a matrix (a scatter into zeros) is "
                          "not written as ONNX yet")
    return diagonal_of(d.ctx, d.g, d.node.inputs[0].shape, int(d.attrs.get("k", 0)), 0, 1)


@_vjp("repeat", 0)
def _repeat(d: _Grad) -> str:
    # repeat is a gather of positions 0,0,1,1,...: its gradient the scatter-add
    axis = d.attrs.get("axis")
    if axis is None:
        raise Unsupported("the gradient of a repeat of the flattened input is not written as "
                          "ONNX yet (give the axis)")
    n = d.vals[0].shape[int(axis)]
    if n is None:
        raise Unsupported("the gradient of a repeat along an open (batch) axis needs its size")
    idx = np.repeat(np.arange(n), d.attrs["repeats"])
    return _getitem_array(d, [slice(None)] * int(axis) + [idx] +
                          [slice(None)] * (d.nd() - int(axis) - 1))


@_vjp("tile", 0)
def _tile(d: _Grad) -> str:
    # out's axes are laid out as (r_0, s_0, r_1, s_1, ...): sum over the r_i
    reps = [int(r) for r in d.attrs["reps"]]
    shape = [1] * (len(reps) - d.nd()) + list(d.vals[0].shape)
    if sum(s is None for s in shape) > 1 or any(s is None and r != 1 for r, s in zip(reps, shape)):
        raise Unsupported("the gradient of a tile needs the sizes of the tiled axes")
    split = [v for r, s in zip(reps, shape) for v in (r, -1 if s is None else s)]
    g = d.op("Reshape", d.g, d.ctx.ints(split, "shape"))
    g = d.op("ReduceSum", g, d.ctx.ints(range(0, 2 * len(reps), 2)), keepdims=0)
    return d.op("Reshape", g, d.shape())


@_vjp("roll", 0)
def _roll(d: _Grad) -> str:
    # roll back by the same shift
    shift = d.attrs["shift"]
    neg = -int(shift) if np.ndim(shift) == 0 else tuple(-int(v) for v in shift)
    back = _Node({"shift": neg, "axis": d.attrs.get("axis")}, [_Shaped(d.vals[0].shape)])
    return RULES["roll"](d.ctx, back, [d.g])


class _Shaped:
    def __init__(self, shape: tuple[Any, ...]) -> None:
        self.shape = shape


class _Node:
    """What a forward rule reads of a node (attrs, input shapes), to write a
    VJP that is the op itself with other attributes (roll back)."""

    def __init__(self, attrs: dict[str, Any], inputs: list[Any]) -> None:
        self.attrs, self.inputs = attrs, inputs


@_vjp("diagonal", 0)
def _diagonal(d: _Grad) -> str:
    # g put on the diagonal of zeros: ScatterND with the two axes first
    nd = d.nd()
    a1, a2 = int(d.attrs["axis1"]) % nd, int(d.attrs["axis2"]) % nd
    offset = int(d.attrs.get("offset", 0))
    n, m = d.vals[0].shape[a1], d.vals[0].shape[a2]
    if n is None or m is None:
        raise Unsupported("the gradient of a diagonal needs the sizes of its two axes")
    first = [a1, a2] + [a for a in range(nd) if a not in (a1, a2)]
    shape = d.op("Gather", d.shape(), d.ctx.ints(first, "perm"), axis=0)
    zeros = d.op("ConstantOfShape", shape,
                 value=d.ctx.onnx.numpy_helper.from_array(np.zeros(1, d.dt)))
    k = max(0, min(n + min(offset, 0), m - max(offset, 0)))
    i = np.arange(k) + max(-offset, 0)
    index = d.ctx.const(np.stack([i, i + offset], axis=-1).astype(np.int64), "index")
    g = d.op("Transpose", d.g, perm=[nd - 2] + list(range(nd - 2)))     # the diagonal first
    out = d.op("ScatterND", zeros, index, g)
    return d.op("Transpose", out, perm=[int(p) for p in np.argsort(first)])


@_vjp("einsum")
def _einsum(d: _Grad) -> str:
    # einsum of g with the other operands -> x_i's subscripts; a letter only
    # x_i has is broadcast back (a ones vector), a repeated one (a diagonal)
    # gets a fresh letter tied to it by an identity matrix: as the op's VJP.
    ins, out_sub = str(d.attrs["subscripts"]).split("->")
    terms = ins.split(",")
    term, i = terms[d.i], d.i
    if "." in term or "." in out_sub:
        raise Unsupported("the gradient of an einsum with '...' is not written as ONNX yet")
    others = [(t, d.x(j)) for j, t in enumerate(terms) if j != i]
    present = set(out_sub).union(*[set(t) for t, _ in others])
    free = iter(c for c in string.ascii_letters if c not in d.attrs["subscripts"])
    subs, operands = [out_sub] + [t for t, _ in others], [d.g] + [v for _, v in others]
    target, seen = [], set()
    for pos, c in enumerate(term):
        n = d.vals[i].shape[pos]
        if (c in seen or c not in present) and n is None:
            raise Unsupported("the gradient of this einsum needs the size of its axis "
                              f"{pos} ({c!r}) of operand {i}")
        if c in seen:
            new = next(free)
            subs.append(c + new)
            operands.append(d.ctx.const(np.eye(n, dtype=d.dt), "eye"))
            target.append(new)
            continue
        seen.add(c)
        if c not in present:
            subs.append(c)
            operands.append(d.ctx.const(np.ones(n, dtype=d.dt), "ones"))
        target.append(c)
    gx = d.op("Einsum", *operands, equation=",".join(subs) + "->" + "".join(target))
    return d.op("Expand", gx, d.shape(i))      # a letter of size 1 elsewhere: stretched back


def _getitem_array(d: _Grad, full: list[Any]) -> str:
    # One integer array among full slices (an embedding lookup, W[ids]): the
    # gradient scatter-adds g's rows back (repeated ids add up), ScatterND with
    # reduction "add" on zeros of x's shape with the indexed axis first.
    arrays = [a for a, k in enumerate(full) if isinstance(k, np.ndarray) and k.ndim > 0]
    if len(arrays) != 1 or any(k != slice(None) for k in full if not isinstance(k, np.ndarray)) \
            or full[arrays[0]].dtype.kind not in "iu":
        raise Unsupported("the gradient of indexing with arrays is exported for one integer "
                          "array among full slices (x[ids], x[:, ids]) only")
    (a,) = arrays
    k = full[a]
    nd, n = d.nd(), d.vals[0].shape[a]
    if (k < 0).any():
        if n is None:
            raise Unsupported("negative indices along an open (batch) axis need its size")
        k = k % n
    first = [a] + [i for i in range(nd) if i != a]          # x with the indexed axis first
    kn = k.ndim                                             # g: x[:a] + k's axes + x[a+1:]
    g = d.op("Transpose", d.g, perm=list(range(a, a + kn)) + list(range(a)) +
             list(range(a + kn, nd + kn - 1)))
    shape = d.op("Gather", d.shape(), d.ctx.ints(first, "perm"), axis=0)
    zeros = d.op("ConstantOfShape", shape,
                 value=d.ctx.onnx.numpy_helper.from_array(np.zeros(1, d.dt)))
    index = d.ctx.const(k.astype(np.int64)[..., None], "index")
    out = d.op("ScatterND", zeros, index, g, reduction="add")
    return d.op("Transpose", out, perm=[int(p) for p in np.argsort(first)])


def _is_int(k: Any) -> bool:
    return (isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))) or \
        (isinstance(k, np.ndarray) and k.ndim == 0 and k.dtype.kind in "iu")


# ---------------------------------------------------------------------------
# The gradient ops without a rule, refused by name with the reason (every
# other VJP has a rule above; the replay, tg.capture, runs all of them).

for _key, _why in {
    "prod_vjp0": "its gradient is the product of the other elements of each row (exact with "
                 "zeros: a prefix and suffix cumulative product), and ONNX has no cumulative "
                 "product",
    "cumprod_vjp0": "cumprod itself has no ONNX export (ONNX has CumProd only from opset 26)",
    "sort_vjp0": "its gradient scatters g back by the sort's permutation, which ONNX's TopK "
                 "does not promise for ties (as argsort)",
    "svdvals_vjp0": "ONNX has no singular value decomposition",
    "arctan2_vjp0": "arctan2 itself has no ONNX export (ONNX has no atan2)",
    "arctan2_vjp1": "arctan2 itself has no ONNX export (ONNX has no atan2)",
    "index_add_vjp0": "index_add is itself the gradient of indexing; a second-order step is "
                      "not exported",
}.items():
    REFUSED[_key] = _why
