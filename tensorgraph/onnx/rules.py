"""Export rules: one per tensorgraph op name, each writing that op as ONNX nodes.

A rule is `rule(ctx, node, xs) -> name`: `node` is the Graph's node (its
`op.name`, `attrs`, `inputs` Values with shapes and dtypes, `output` Value),
`xs` the ONNX names of its inputs in argument order; the rule emits nodes
with `ctx.op(...)` and returns the ONNX name holding the result. A rule that
cannot write some form of its op raises `Unsupported(reason)`; the exporter
adds the op, its scope and its node to the message. An op with no entry in
`RULES` is refused the same way.

The targets are ONNX opset 18 and later (reductions take their axes as an
input from opset 18 on). numpy promotes dtypes where ONNX does not, so the
arithmetic rules cast an input whose dtype differs from the result's first.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

__all__ = ["RULES", "REFUSED", "Context", "Unsupported", "rule"]


class Unsupported(Exception):
    """Raised by a rule for a form of its op that ONNX export cannot write."""


class Context:
    """What a rule writes into: ONNX nodes and constant initializers with
    fresh, unique names. `onnx` is the imported onnx package."""

    def __init__(self, onnx: Any, taken: set[str]) -> None:
        self.onnx = onnx
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.taken = taken
        self.prefix = ""          # the node's scoped name, for the names of its ONNX nodes

    def fresh(self, base: str) -> str:
        """A name not used yet in the model, from `base`."""
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        """Emit one ONNX node; return the name of its (single) output."""
        out = self.fresh(f"{self.prefix}/{op_type}")
        self.nodes.append(self.onnx.helper.make_node(
            op_type, list(inputs), [out], name=out,
            **{k: v for k, v in attrs.items() if v is not None}))
        return out

    def const(self, value: Any, base: str = "const", dtype: Any = None) -> str:
        """A constant as an initializer."""
        arr = np.asarray(value, dtype=dtype)
        name = self.fresh(f"{self.prefix}/{base}")
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def ints(self, values: Sequence[int], base: str = "axes") -> str:
        """A 1-D int64 constant (the axes, shapes, pads ONNX takes as inputs)."""
        return self.const(np.asarray(list(values), dtype=np.int64).reshape(-1), base)

    def cast(self, x: str, have: Any, want: Any) -> str:
        """x converted to dtype `want` when its dtype `have` differs."""
        if np.dtype(have) == np.dtype(want):
            return x
        return self.op("Cast", x, to=self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(want)))


Rule = Callable[[Context, Any, list[str]], str]
RULES: dict[str, Rule] = {}

#: Ops refused on purpose, with the reason the error gives. Any other op
#: without a rule is refused as "no rule written yet".
REFUSED: dict[str, str] = {
    "svdvals": "ONNX has no singular value decomposition",
    "argsort": "ONNX's TopK does not promise numpy's stable order of equal elements",
    "index_add": "it is the backward of indexing (a scatter-add); export the forward pass",
    "arctan2": "ONNX has no atan2, and a composition of Atan loses the quadrant at x = 0",
    "cumprod": "ONNX has a CumProd op only from opset 26 on (and exp(cumsum(log x)) fails "
               "at zeros and negative values); no rule is written for it yet",
    "dropout_mask": "it draws a random mask (dropout in training mode); call .eval() on the "
                    "model before exporting, where dropout is the identity",
}
# The samplers (tensorgraph.ops.random): ONNX's RandomNormal/RandomUniform draw from the
# runtime's own generator, so the model could not reproduce tensorgraph's draws.
REFUSED.update(dict.fromkeys(
    ("rand", "randn", "randint", "rand_like", "randn_like", "bernoulli"),
    "it draws random numbers, which ONNX's random ops cannot reproduce (they use the "
    "runtime's generator); export the inference function, or feed the draws as an input"))
# The effect ops (tensorgraph.ops.inplace, tensorgraph.optim): a captured training step.
REFUSED.update(dict.fromkeys(
    ("assign", "apply_update", "apply_sgd", "apply_adagrad", "apply_rmsprop", "apply_adam"),
    "it writes a parameter or optimizer state in place (a captured training step's update); "
    "an ONNX model is a pure function: export the inference function (the model) instead"))


def rule(*names: str) -> Callable[[Rule], Rule]:
    """Register the decorated function as the rule of the op(s) `names`."""
    def register(f: Rule) -> Rule:
        for n in names:
            RULES[n] = f
        return f
    return register


def _as_out(ctx: Context, node: Any, xs: list[str]) -> list[str]:
    """The inputs cast to the result's dtype (numpy promoted them; ONNX does not)."""
    want = node.output.dtype
    return [ctx.cast(x, v.dtype, want) for x, v in zip(xs, node.inputs)]


def _as_common(ctx: Context, node: Any, xs: list[str]) -> list[str]:
    """The inputs cast to their common dtype (comparisons, whose result is bool)."""
    want = np.result_type(*[v.dtype for v in node.inputs])
    return [ctx.cast(x, v.dtype, want) for x, v in zip(xs, node.inputs)]


def _axes(axis: Any) -> Optional[list[int]]:
    if axis is None:
        return None
    return [int(axis)] if isinstance(axis, (int, np.integer)) else [int(a) for a in axis]


# ---------------------------------------------------------------------------
# Elementwise

_UNARY = {"neg": "Neg", "abs": "Abs", "exp": "Exp", "log": "Log", "sqrt": "Sqrt",
          "tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "softplus": "Softplus",
          "sin": "Sin", "cos": "Cos", "tan": "Tan", "arcsin": "Asin", "arccos": "Acos",
          "arctan": "Atan", "sinh": "Sinh", "cosh": "Cosh", "arcsinh": "Asinh",
          "arccosh": "Acosh", "arctanh": "Atanh", "floor": "Floor", "ceil": "Ceil",
          "sign": "Sign", "reciprocal": "Reciprocal", "clone": "Identity"}
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div",
           "maximum": "Max", "minimum": "Min"}
_COMPARE = {"less": "Less", "less_equal": "LessOrEqual", "greater": "Greater",
            "greater_equal": "GreaterOrEqual", "equal": "Equal"}
_LOGIC = {"logical_and": "And", "logical_or": "Or"}


def _unary(op_type: str) -> Rule:
    return lambda ctx, node, xs: ctx.op(op_type, *_as_out(ctx, node, xs))


def _binary(op_type: str) -> Rule:
    return lambda ctx, node, xs: ctx.op(op_type, *_as_out(ctx, node, xs))


def _compare(op_type: str) -> Rule:
    return lambda ctx, node, xs: ctx.op(op_type, *_as_common(ctx, node, xs))


for _name, _type in _UNARY.items():
    RULES[_name] = _unary(_type)
for _name, _type in _BINARY.items():
    RULES[_name] = _binary(_type)
for _name, _type in _COMPARE.items():
    RULES[_name] = _compare(_type)
for _name, _type in _LOGIC.items():
    RULES[_name] = _binary(_type)


@rule("pow")
def _pow(ctx: Context, node: Any, xs: list[str]) -> str:
    # ONNX Pow allows a different exponent type; the base must have the result's.
    base = ctx.cast(xs[0], node.inputs[0].dtype, node.output.dtype)
    return ctx.op("Pow", base, xs[1])


@rule("not_equal")
def _not_equal(ctx: Context, node: Any, xs: list[str]) -> str:
    return ctx.op("Not", ctx.op("Equal", *_as_common(ctx, node, xs)))


@rule("logical_not")
def _logical_not(ctx: Context, node: Any, xs: list[str]) -> str:
    return ctx.op("Not", ctx.cast(xs[0], node.inputs[0].dtype, np.bool_))


@rule("square")
def _square(ctx: Context, node: Any, xs: list[str]) -> str:
    return ctx.op("Mul", xs[0], xs[0])


@rule("leaky_relu")
def _leaky_relu(ctx: Context, node: Any, xs: list[str]) -> str:
    return ctx.op("LeakyRelu", xs[0], alpha=float(node.attrs["negative_slope"]))


@rule("clip")
def _clip(ctx: Context, node: Any, xs: list[str]) -> str:
    dt = node.output.dtype
    lo, hi = node.attrs.get("lo"), node.attrs.get("hi")
    if all(v is None or np.ndim(v) == 0 for v in (lo, hi)):
        # ONNX Clip takes scalar bounds of x's dtype ("" leaves one out).
        bounds = ["" if v is None else ctx.const(np.asarray(v, dtype=dt), "bound") for v in (lo, hi)]
        while bounds and bounds[-1] == "":
            bounds.pop()
        return ctx.op("Clip", xs[0], *bounds)
    out = xs[0]                     # array bounds: np.clip is min(max(x, lo), hi)
    if lo is not None:
        out = ctx.op("Max", out, ctx.const(np.asarray(lo, dtype=dt), "lo"))
    if hi is not None:
        out = ctx.op("Min", out, ctx.const(np.asarray(hi, dtype=dt), "hi"))
    return out


@rule("where")
def _where(ctx: Context, node: Any, xs: list[str]) -> str:
    want = node.output.dtype
    a, b = (ctx.cast(x, v.dtype, want) for x, v in zip(xs[1:], node.inputs[1:]))
    return ctx.op("Where", ctx.cast(xs[0], node.inputs[0].dtype, np.bool_), a, b)


@rule("astype")
def _astype(ctx: Context, node: Any, xs: list[str]) -> str:
    return ctx.op("Cast", xs[0], to=ctx.onnx.helper.np_dtype_to_tensor_dtype(node.output.dtype))


@rule("step")
def _step(ctx: Context, node: Any, xs: list[str]) -> str:
    # nn's threshold neuron: -1 where z < 0, else 1.
    dt = node.output.dtype
    neg = ctx.op("Less", xs[0], ctx.const(np.zeros((), dt), "zero"))
    return ctx.op("Where", neg, ctx.const(np.asarray(-1, dt), "minus_one"),
                  ctx.const(np.asarray(1, dt), "one"))


@rule("one_hot")
def _one_hot(ctx: Context, node: Any, xs: list[str]) -> str:
    # OneHot(indices, depth, [off, on]) along a new last axis; the replay checks the range,
    # ONNX would wrap negative indices, so the two agree on valid input only.
    n, dt = node.attrs["num_classes"], node.output.dtype
    return ctx.op("OneHot", xs[0], ctx.ints([n], "depth"),
                  ctx.const(np.asarray([0, 1], dt), "off_on"), axis=-1)


# ---------------------------------------------------------------------------
# Linear algebra, reductions, softmax

@rule("matmul")
def _matmul(ctx: Context, node: Any, xs: list[str]) -> str:
    return ctx.op("MatMul", *_as_out(ctx, node, xs))


def _reduce(op_type: str) -> Rule:
    def write(ctx: Context, node: Any, xs: list[str]) -> str:
        # numpy sums bools and small ints in a wider type: cast first.
        x = ctx.cast(xs[0], node.inputs[0].dtype, node.output.dtype)
        axes = _axes(node.attrs.get("axis"))
        keep = int(bool(node.attrs.get("keepdims", False)))
        if axes is None:            # no axes input: every axis
            return ctx.op(op_type, x, keepdims=keep)
        if not axes:                # numpy's axis=(): nothing reduced
            return ctx.op("Identity", x)
        return ctx.op(op_type, x, ctx.ints(axes), keepdims=keep)
    return write


for _name, _type in {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax",
                     "min": "ReduceMin", "prod": "ReduceProd",
                     "logsumexp": "ReduceLogSumExp"}.items():
    RULES[_name] = _reduce(_type)


@rule("softmax", "log_softmax")
def _softmax(ctx: Context, node: Any, xs: list[str]) -> str:
    op_type = "Softmax" if node.op.name == "softmax" else "LogSoftmax"
    return ctx.op(op_type, xs[0], axis=int(node.attrs["axis"]))


@rule("cross_entropy")
def _cross_entropy(ctx: Context, node: Any, xs: list[str]) -> str:
    # loss = -Σ_c t_c log softmax(z)_c: for class indices, -log softmax(z) at the target.
    z, t = node.inputs
    logp = ctx.op("LogSoftmax", xs[0], axis=-1)
    if t.dtype.kind in "iu":
        idx = ctx.op("Unsqueeze", ctx.cast(xs[1], t.dtype, np.int64), ctx.ints([-1]))
        picked = ctx.op("Squeeze", ctx.op("GatherElements", logp, idx, axis=-1), ctx.ints([-1]))
    else:
        tt = ctx.cast(xs[1], t.dtype, z.dtype)
        picked = ctx.op("ReduceSum", ctx.op("Mul", tt, logp), ctx.ints([-1]), keepdims=0)
    loss = ctx.op("Neg", picked)
    reduction = node.attrs.get("reduction", "mean")
    if reduction == "mean":
        return ctx.op("ReduceMean", loss, keepdims=0)
    if reduction == "sum":
        return ctx.op("ReduceSum", loss, keepdims=0)
    return loss


# ---------------------------------------------------------------------------
# Shapes

@rule("reshape")
def _reshape(ctx: Context, node: Any, xs: list[str]) -> str:
    shape = [int(s) for s in node.attrs["shape"]]
    x = node.inputs[0]
    if 0 in shape:                  # a real empty axis: ONNX must not read 0 as "copy"
        return ctx.op("Reshape", xs[0], ctx.ints(shape, "shape"), allowzero=1)
    # A leading size equal to the input's is the batch carried through
    # (x.reshape(x.shape[0], -1)): ONNX's 0 copies it, so the batch stays open.
    # An open input axis is copied only when the output's is open too: a fixed
    # leading size (x.reshape(T, -1, n) of T·B rows) is kept as it is.
    if shape and x.shape and shape[0] != -1 and (
            shape[0] == x.shape[0] or x.shape[0] is None and node.output.shape[0] is None):
        shape[0] = 0
    return ctx.op("Reshape", xs[0], ctx.ints(shape, "shape"))


@rule("transpose")
def _transpose(ctx: Context, node: Any, xs: list[str]) -> str:
    nd = len(node.inputs[0].shape)
    axes = node.attrs.get("axes")
    perm = list(range(nd))[::-1] if axes is None else [int(a) % nd for a in axes]
    return ctx.op("Transpose", xs[0], perm=perm)


@rule("expand_dims")
def _expand_dims(ctx: Context, node: Any, xs: list[str]) -> str:
    return ctx.op("Unsqueeze", xs[0], ctx.ints(_axes(node.attrs["axis"]) or []))


@rule("squeeze")
def _squeeze(ctx: Context, node: Any, xs: list[str]) -> str:
    axes = _axes(node.attrs.get("axis"))
    if axes is None:
        # The axes of size 1 at capture, named: ONNX's "all of them" would
        # also drop an open batch axis that happens to be 1 at run time.
        axes = [i for i, d in enumerate(node.inputs[0].shape) if d == 1]
    if not axes:
        return ctx.op("Identity", xs[0])
    return ctx.op("Squeeze", xs[0], ctx.ints(axes))


@rule("broadcast_to")
def _broadcast_to(ctx: Context, node: Any, xs: list[str]) -> str:
    # Expand broadcasts both ways: a 1 where the input already has the size
    # keeps that size open (an open batch axis stays open).
    shape = [int(s) for s in node.attrs["shape"]]
    have = list(node.inputs[0].shape)
    off = len(shape) - len(have)
    for i, d in enumerate(have):
        if d is None or d == shape[off + i]:
            shape[off + i] = 1
    return ctx.op("Expand", xs[0], ctx.ints(shape, "shape"))


@rule("concat")
def _concat(ctx: Context, node: Any, xs: list[str]) -> str:
    return ctx.op("Concat", *_as_out(ctx, node, xs), axis=int(node.attrs["axis"]))


@rule("stack")
def _stack(ctx: Context, node: Any, xs: list[str]) -> str:
    axis = int(node.attrs["axis"])
    one = ctx.ints([axis])
    return ctx.op("Concat", *[ctx.op("Unsqueeze", x, one) for x in _as_out(ctx, node, xs)],
                  axis=axis)


@rule("flip")
def _flip(ctx: Context, node: Any, xs: list[str]) -> str:
    nd = len(node.inputs[0].shape)
    axes = _axes(node.attrs.get("axis"))
    axes = list(range(nd)) if axes is None else [a % nd for a in axes]
    big = np.iinfo(np.int64)
    return ctx.op("Slice", xs[0], ctx.ints([-1] * len(axes), "starts"),
                  ctx.ints([big.min] * len(axes), "ends"), ctx.ints(axes),
                  ctx.ints([-1] * len(axes), "steps"))


# ---------------------------------------------------------------------------
# Indexing: basic indexes as Slice, Gather (an int drops its axis), Unsqueeze
# (None); one integer array among full slices as Gather, which puts the
# index's shape in place of the axis, as numpy does.

_BIG = np.iinfo(np.int64)


@rule("getitem")
def _getitem(ctx: Context, node: Any, xs: list[str]) -> str:
    index = node.attrs["index"]
    index = index if isinstance(index, tuple) else (index,)
    nd = len(node.inputs[0].shape)
    arrays = [k for k in index if isinstance(k, np.ndarray) and k.ndim > 0]
    for k in index:
        if isinstance(k, np.ndarray) and k.dtype == np.bool_:
            raise Unsupported("a boolean mask index selects a data-dependent number of "
                              "elements; index with integer positions instead")
    used = sum(0 if k is None or k is Ellipsis else 1 for k in index)
    if used > nd:
        raise Unsupported(f"index {index} has more entries than the input's {nd} axes")
    full: list[Any] = []
    for k in index:                  # Ellipsis -> the full slices it stands for
        full += [slice(None)] * (nd - used) if k is Ellipsis else [k]
    if not any(k is Ellipsis for k in index):
        full += [slice(None)] * (nd - used)
    if arrays and (len(arrays) > 1 or any(k is None or _is_int(k) for k in full)):
        raise Unsupported(f"index {index}: only one integer array among slices is exported "
                          "(numpy moves mixed advanced indexes, which ONNX Gather does not)")
    x, axis = xs[0], 0
    starts, ends, steps, sl_axes = [], [], [], []
    for k in full:                   # slices first: they keep every axis
        if isinstance(k, slice) and k != slice(None):
            step = 1 if k.step is None else int(k.step)
            lo, hi = (_BIG.min, _BIG.max) if step > 0 else (_BIG.max, _BIG.min)
            starts.append(lo if k.start is None else int(k.start))
            ends.append(hi if k.stop is None else int(k.stop))
            steps.append(step)
            sl_axes.append(axis)
        if k is not None:
            axis += 1
    if sl_axes:
        x = ctx.op("Slice", x, ctx.ints(starts, "starts"), ctx.ints(ends, "ends"),
                   ctx.ints(sl_axes), ctx.ints(steps, "steps"))
    in_axes = [i for i, k in enumerate(k for k in full if k is not None)]
    taken = [(a, k) for a, k in zip(in_axes, [k for k in full if k is not None])
             if _is_int(k) or isinstance(k, np.ndarray)]
    for a, k in reversed(taken):     # from the last axis, so earlier numbers stay valid
        x = ctx.op("Gather", x, ctx.const(np.asarray(k, dtype=np.int64), "index"), axis=a)
    news, pos = [], 0
    for k in full:                   # None: a new axis at its place in the result
        if k is None:
            news.append(pos)
            pos += 1
        elif isinstance(k, slice):
            pos += 1
        elif isinstance(k, np.ndarray):
            pos += k.ndim
    if news:
        x = ctx.op("Unsqueeze", x, ctx.ints(news))
    return x if x != xs[0] else ctx.op("Identity", x)


def _is_int(k: Any) -> bool:
    return isinstance(k, (int, np.integer)) or isinstance(k, np.ndarray) and k.ndim == 0 \
        and k.dtype.kind in "iu"


# ---------------------------------------------------------------------------
# More math, written with ONNX's primitives where it has no single op

def _scalar(ctx: Context, value: float, dtype: Any, base: str = "const") -> str:
    return ctx.const(np.asarray(value, dtype=dtype), base)


@rule("log2", "log10")
def _log_base(ctx: Context, node: Any, xs: list[str]) -> str:
    dt = node.output.dtype
    ln = np.log(2.0) if node.op.name == "log2" else np.log(10.0)
    return ctx.op("Div", ctx.op("Log", *_as_out(ctx, node, xs)), _scalar(ctx, ln, dt, "ln_base"))


@rule("log1p")
def _log1p(ctx: Context, node: Any, xs: list[str]) -> str:
    x, = _as_out(ctx, node, xs)
    return ctx.op("Log", ctx.op("Add", x, _scalar(ctx, 1, node.output.dtype, "one")))


@rule("expm1")
def _expm1(ctx: Context, node: Any, xs: list[str]) -> str:
    x, = _as_out(ctx, node, xs)
    return ctx.op("Sub", ctx.op("Exp", x), _scalar(ctx, 1, node.output.dtype, "one"))


@rule("exp2")
def _exp2(ctx: Context, node: Any, xs: list[str]) -> str:
    x, = _as_out(ctx, node, xs)
    return ctx.op("Pow", _scalar(ctx, 2, node.output.dtype, "two"), x)


@rule("logaddexp")
def _logaddexp(ctx: Context, node: Any, xs: list[str]) -> str:
    # log(e^a + e^b) = max(a, b) + softplus(-|a - b|): no overflow.
    a, b = _as_out(ctx, node, xs)
    gap = ctx.op("Neg", ctx.op("Abs", ctx.op("Sub", a, b)))
    return ctx.op("Add", ctx.op("Max", a, b), ctx.op("Softplus", gap))


@rule("hypot")
def _hypot(ctx: Context, node: Any, xs: list[str]) -> str:
    a, b = _as_out(ctx, node, xs)
    return ctx.op("Sqrt", ctx.op("Add", ctx.op("Mul", a, a), ctx.op("Mul", b, b)))


@rule("round")
def _round(ctx: Context, node: Any, xs: list[str]) -> str:
    # ONNX Round, like numpy, rounds halves to even; decimals by scaling, as numpy does.
    d = int(node.attrs.get("decimals", 0))
    if d == 0:
        return ctx.op("Round", xs[0])
    scale = _scalar(ctx, 10.0 ** d, node.output.dtype, "scale")
    return ctx.op("Div", ctx.op("Round", ctx.op("Mul", xs[0], scale)), scale)


@rule("mod")
def _mod(ctx: Context, node: Any, xs: list[str]) -> str:
    a, b = _as_out(ctx, node, xs)
    if node.output.dtype.kind in "iu":
        return ctx.op("Mod", a, b, fmod=0)      # integer Mod takes the divisor's sign, as numpy
    # Floats: C's fmod takes the dividend's sign; numpy's result has the divisor's.
    r = ctx.op("Mod", a, b, fmod=1)
    zero = _scalar(ctx, 0, node.output.dtype, "zero")
    fix = ctx.op("And", ctx.op("Not", ctx.op("Equal", r, zero)),
                 ctx.op("Xor", ctx.op("Less", r, zero), ctx.op("Less", b, zero)))
    return ctx.op("Where", fix, ctx.op("Add", r, b), r)


@rule("floor_divide")
def _floor_divide(ctx: Context, node: Any, xs: list[str]) -> str:
    a, b = _as_out(ctx, node, xs)
    if node.output.dtype.kind in "iu":
        # ONNX's integer Div truncates; (a - a mod b) / b is exact and floors.
        return ctx.op("Div", ctx.op("Sub", a, ctx.op("Mod", a, b, fmod=0)), b)
    return ctx.op("Floor", ctx.op("Div", a, b))


def _axes_input(ctx: Context, node: Any) -> list[str]:
    axes = _axes(node.attrs.get("axis"))
    return [] if axes is None else [ctx.ints(axes)]


@rule("var", "std")
def _var(ctx: Context, node: Any, xs: list[str]) -> str:
    # mean((x - mean x)²) · n / (n - ddof); n read from the shape at run time,
    # so that a variance over an open batch stays right at any batch size.
    x = ctx.cast(xs[0], node.inputs[0].dtype, node.output.dtype)
    axes = _axes(node.attrs.get("axis"))
    if axes == []:
        raise Unsupported("a variance over no axes (axis=())")
    keep = int(bool(node.attrs.get("keepdims", False)))
    ax = _axes_input(ctx, node)
    d = ctx.op("Sub", x, ctx.op("ReduceMean", x, *ax, keepdims=1))
    out = ctx.op("ReduceMean", ctx.op("Mul", d, d), *ax, keepdims=keep)
    ddof = node.attrs.get("ddof", 0)
    if ddof:
        shape = ctx.op("Shape", x)
        sizes = shape if axes is None else ctx.op("Gather", shape, ctx.ints(axes), axis=0)
        n = ctx.op("Cast", ctx.op("ReduceProd", sizes, keepdims=0),
                   to=ctx.onnx.helper.np_dtype_to_tensor_dtype(node.output.dtype))
        dof = ctx.op("Sub", n, _scalar(ctx, ddof, node.output.dtype, "ddof"))
        out = ctx.op("Div", ctx.op("Mul", out, n), dof)
    return ctx.op("Sqrt", out) if node.op.name == "std" else out


@rule("norm")
def _norm(ctx: Context, node: Any, xs: list[str]) -> str:
    # The op is √Σx² (other ords are composed of other ops by tg.norm).
    keep = int(bool(node.attrs.get("keepdims", False)))
    if _axes(node.attrs.get("axis")) == []:
        return ctx.op("Abs", xs[0])
    return ctx.op("ReduceL2", xs[0], *_axes_input(ctx, node), keepdims=keep)


@rule("argmax", "argmin")
def _argmax(ctx: Context, node: Any, xs: list[str]) -> str:
    op_type = "ArgMax" if node.op.name == "argmax" else "ArgMin"
    axis = node.attrs.get("axis")
    keep = int(bool(node.attrs.get("keepdims", False)))
    nd = len(node.inputs[0].shape)
    if axis is None:                 # numpy: the position in the flattened array
        flat = ctx.op(op_type, ctx.op("Reshape", xs[0], ctx.ints([-1], "shape")), axis=0,
                      keepdims=0)
        out = ctx.op("Reshape", flat, ctx.ints([1] * nd, "shape")) if keep else flat
    else:
        out = ctx.op(op_type, xs[0], axis=int(axis), keepdims=keep)
    return ctx.cast(out, np.int64, node.output.dtype)


@rule("any", "all")
def _any(ctx: Context, node: Any, xs: list[str]) -> str:
    # ONNX has no boolean reduction: reduce 0/1 as uint8 with Max (any) or Min (all).
    u8 = ctx.onnx.TensorProto.UINT8
    x = ctx.op("Cast", ctx.op("Cast", xs[0], to=ctx.onnx.TensorProto.BOOL), to=u8)
    keep = int(bool(node.attrs.get("keepdims", False)))
    op_type = "ReduceMax" if node.op.name == "any" else "ReduceMin"
    if _axes(node.attrs.get("axis")) == []:
        out = x
    else:
        out = ctx.op(op_type, x, *_axes_input(ctx, node), keepdims=keep)
    return ctx.op("Cast", out, to=ctx.onnx.TensorProto.BOOL)


@rule("cumsum")
def _cumsum(ctx: Context, node: Any, xs: list[str]) -> str:
    x = ctx.cast(xs[0], node.inputs[0].dtype, node.output.dtype)
    axis = node.attrs.get("axis")
    if axis is None:
        x, axis = ctx.op("Reshape", x, ctx.ints([-1], "shape")), 0
    return ctx.op("CumSum", x, ctx.const(np.asarray(int(axis), np.int64), "axis"))


@rule("tile")
def _tile(ctx: Context, node: Any, xs: list[str]) -> str:
    reps = _axes(node.attrs["reps"]) or []
    nd = len(node.inputs[0].shape)
    x = xs[0]
    if len(reps) > nd:               # numpy prepends axes to x, then tiles
        x = ctx.op("Unsqueeze", x, ctx.ints(list(range(len(reps) - nd))))
    reps = [1] * (nd - len(reps)) + list(reps)
    return ctx.op("Tile", x, ctx.ints(reps, "repeats"))


@rule("pad")
def _pad(ctx: Context, node: Any, xs: list[str]) -> str:
    pw = np.asarray(node.attrs["pad_width"], dtype=np.int64).reshape(-1, 2)
    value = _scalar(ctx, node.attrs.get("constant_values", 0), node.output.dtype, "value")
    return ctx.op("Pad", xs[0], ctx.ints(list(pw[:, 0]) + list(pw[:, 1]), "pads"), value,
                  mode="constant")


# ---------------------------------------------------------------------------
# Arrays

@rule("einsum")
def _einsum(ctx: Context, node: Any, xs: list[str]) -> str:
    # ONNX Einsum reads numpy's subscripts (letters, "...", "->", implicit output).
    return ctx.op("Einsum", *_as_out(ctx, node, xs), equation=str(node.attrs["subscripts"]))


@rule("fmax", "fmin")
def _fmax(ctx: Context, node: Any, xs: list[str]) -> str:
    # numpy's fmax/fmin ignore a NaN when the other side is a number.
    a, b = _as_out(ctx, node, xs)
    m = ctx.op("Max" if node.op.name == "fmax" else "Min", a, b)
    if node.output.dtype.kind != "f":
        return m
    return ctx.op("Where", ctx.op("IsNaN", a), b, ctx.op("Where", ctx.op("IsNaN", b), a, m))


@rule("sinc")
def _sinc(ctx: Context, node: Any, xs: list[str]) -> str:
    # sin(πx)/(πx), 1 at x = 0 (the division's 0/0 is replaced).
    dt = node.output.dtype
    x, = _as_out(ctx, node, xs)
    px = ctx.op("Mul", x, _scalar(ctx, np.pi, dt, "pi"))
    zero = ctx.op("Equal", x, _scalar(ctx, 0, dt, "zero"))
    safe = ctx.op("Where", zero, _scalar(ctx, 1, dt, "one"), px)
    return ctx.op("Where", zero, _scalar(ctx, 1, dt, "one"), ctx.op("Div", ctx.op("Sin", safe), safe))


@rule("repeat")
def _repeat(ctx: Context, node: Any, xs: list[str]) -> str:
    # repeat is a gather: positions 0,0,1,1,... along the axis (of the flattened x).
    axis = node.attrs.get("axis")
    shape = node.inputs[0].shape
    x = xs[0]
    if axis is None:
        x, axis, shape = ctx.op("Reshape", x, ctx.ints([-1], "shape")), 0, \
            (int(np.prod(shape)) if None not in shape else None,)
    n = shape[int(axis)]
    if n is None:
        raise Unsupported("repeat along an open (batch) axis needs its size when exporting")
    idx = np.repeat(np.arange(n), node.attrs["repeats"])
    return ctx.op("Gather", x, ctx.const(idx.astype(np.int64), "index"), axis=int(axis))


@rule("roll")
def _roll(ctx: Context, node: Any, xs: list[str]) -> str:
    # Each rolled axis: the last `shift` elements, then the rest (Slice + Concat).
    shift, axis = node.attrs["shift"], node.attrs.get("axis")
    x, shape = xs[0], tuple(node.inputs[0].shape)
    if axis is None:
        if None in shape:
            raise Unsupported("roll of the flattened input needs every size when exporting")
        x, shape = ctx.op("Reshape", x, ctx.ints([-1], "shape")), (int(np.prod(shape)),)
        axis = 0
    shifts = [int(shift)] if np.ndim(shift) == 0 else [int(s) for s in shift]
    axes = [int(axis)] if np.ndim(axis) == 0 else [int(a) for a in axis]
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    for s, a in zip(shifts, axes):
        n = shape[a]
        if n is None:
            raise Unsupported("roll along an open (batch) axis needs its size when exporting")
        if n == 0 or s % n == 0:
            continue
        k = s % n
        tail = ctx.op("Slice", x, ctx.ints([n - k], "starts"), ctx.ints([n], "ends"), ctx.ints([a]))
        head = ctx.op("Slice", x, ctx.ints([0], "starts"), ctx.ints([n - k], "ends"), ctx.ints([a]))
        x = ctx.op("Concat", tail, head, axis=a)
    if node.attrs.get("axis") is None:     # back to the input's shape
        x = ctx.op("Reshape", x, ctx.op("Shape", xs[0]))
    return x if x != xs[0] else ctx.op("Identity", x)


@rule("sort")
def _sort(ctx: Context, node: Any, xs: list[str]) -> str:
    # All k = n smallest, in order: TopK's values are the sorted array (ties
    # are equal values, so their order does not show; argsort is not exported
    # for that reason: numpy's stable order of ties is not TopK's promise).
    axis = node.attrs.get("axis")
    x, shape = xs[0], tuple(node.inputs[0].shape)
    if axis is None:
        x, shape, axis = ctx.op("Reshape", x, ctx.ints([-1], "shape")), \
            (int(np.prod(shape)) if None not in shape else None,), 0
    n = shape[int(axis)]
    if n is None:
        raise Unsupported("sort along an open (batch) axis needs its size when exporting")
    values = ctx.fresh(f"{ctx.prefix}/TopK")
    indices = ctx.fresh(f"{ctx.prefix}/TopK_indices")
    ctx.nodes.append(ctx.onnx.helper.make_node("TopK", [x, ctx.ints([n], "k")], [values, indices],
                                               name=values, axis=int(axis), largest=0, sorted=1))
    return values


# ---------------------------------------------------------------------------
# Diagonals and the cross product (Gather with positions known at export)

def diagonal_of(ctx: Context, x: str, shape: Sequence[Optional[int]], offset: int,
                axis1: int, axis2: int) -> str:
    """numpy.diagonal(x, offset, axis1, axis2): the two axes moved last,
    flattened into one, and the positions i·m + i + offset gathered (the
    diagonal's axis last, as numpy). The two axes' sizes must be known."""
    nd = len(shape)
    a1, a2 = axis1 % nd, axis2 % nd
    n, m = shape[a1], shape[a2]
    if n is None or m is None:
        raise Unsupported(f"the diagonal of axes {a1} and {a2} needs their sizes; axis sizes "
                          f"{tuple(shape)} have an open one there")
    perm = [a for a in range(nd) if a not in (a1, a2)] + [a1, a2]
    if perm != list(range(nd)):
        x = ctx.op("Transpose", x, perm=perm)
    k = max(0, min(n + min(offset, 0), m - max(offset, 0)))
    i = np.arange(k) + max(-offset, 0)
    flat = ctx.op("Reshape", x, ctx.ints([0] * (nd - 2) + [-1], "shape"))
    return ctx.op("Gather", flat, ctx.const((i * m + i + offset).astype(np.int64), "index"),
                  axis=nd - 2)


@rule("diagonal")
def _diagonal(ctx: Context, node: Any, xs: list[str]) -> str:
    a = node.attrs
    return diagonal_of(ctx, xs[0], node.inputs[0].shape, int(a.get("offset", 0)),
                       int(a.get("axis1", 0)), int(a.get("axis2", 1)))


@rule("diag")
def _diag(ctx: Context, node: Any, xs: list[str]) -> str:
    k = int(node.attrs.get("k", 0))
    shape = node.inputs[0].shape
    if len(shape) == 2:              # a matrix: its k-th diagonal
        return diagonal_of(ctx, xs[0], shape, k, 0, 1)
    (n,) = shape
    if n is None:
        raise Unsupported("the matrix of a vector of open size: its size is needed")
    # A vector: the (n+|k|)² matrix with v on diagonal k, gathered from
    # v followed by one zero (position n) at every other place.
    size = n + abs(k)
    idx = np.full((size, size), n, dtype=np.int64)
    r = np.arange(n) + max(-k, 0)
    idx[r, r + k] = np.arange(n)
    zero = ctx.const(np.zeros(1, node.output.dtype), "zero")
    return ctx.op("Gather", ctx.op("Concat", xs[0], zero, axis=0), ctx.const(idx, "index"), axis=0)


def cross_of(ctx: Context, a: str, b: str) -> str:
    """a × b of 3-vectors on the last axis: a[[1,2,0]]·b[[2,0,1]] − a[[2,0,1]]·b[[1,2,0]]."""
    def pick(x: str, order: list[int]) -> str:
        return ctx.op("Gather", x, ctx.ints(order, "index"), axis=-1)
    return ctx.op("Sub", ctx.op("Mul", pick(a, [1, 2, 0]), pick(b, [2, 0, 1])),
                  ctx.op("Mul", pick(a, [2, 0, 1]), pick(b, [1, 2, 0])))


@rule("cross")
def _cross(ctx: Context, node: Any, xs: list[str]) -> str:
    return cross_of(ctx, *_as_out(ctx, node, xs))

# ---------------------------------------------------------------------------
# More rules, in files of their own (they import RULES, REFUSED and `rule` from here)

from . import rules_grad  # noqa: E402,F401  (the gradient ops of a captured tg.grad)
from . import rules_conv  # noqa: E402,F401  (the convolution ops' rules and converters)
from . import rules_text  # noqa: E402,F401  (the embedding ops' rules)
from . import rules_pool  # noqa: E402,F401  (MaxPool, AveragePool, BatchNormalization)
from . import rules_recurrent  # noqa: E402,F401  (the fused recurrent cells)
