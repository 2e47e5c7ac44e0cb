"""The op table and the declaration machinery.

An op is declared once, in the file of its kind (elementwise, reductions, ...):

    EXP = defop("exp", np.exp, lambda g, out, x: g * out)     # forward beside its VJP

    @public(EXP, method=True, numpy=np.exp)
    def exp(x: ArrayLike) -> Tensor:
        \"\"\"e^x. d/dx = e^x.\"\"\"
        return unary(EXP, x)

`defop` makes the primitive (`Op`): a pure numpy forward and one VJP per input.
`@public` makes the typed public function `tg.exp` and says what else it
gives: a Tensor method (`method=`), operators (`operator=`), numpy dispatch
(`numpy=`: `np.exp(t)` records `exp`). From those declarations
`tensorgraph.ops.codegen` writes `tensorgraph/_tensor_api.py` (the typed
Tensor methods and operators, so type checkers and IDEs see them) and
`tensorgraph/ops/_exports.py` (the names `tg.*` exports); the numpy dispatch
tables are built at import time. Nothing else lists ops.

VJP convention: `vjps[i](g, out, *inputs, **attrs)` returns dL/d(input i)
given g = dL/d(out). It may return a gradient of the *broadcast* shape: the
engine reduces it to the input's shape in one place (`autograd.unbroadcast`).
VJPs are written with operators, methods shared by ndarray and Tensor, numpy
functions and `Op` objects, so one VJP serves a plain backward (arrays) and
`create_graph=True` (Tensors).

Tables: the core ops live in `OPS` (a `dict` name -> Op; `tg.OPS`). A module
outside the core that defines ops (nn's `step`, losses' fused
`cross_entropy`) makes its own `OpTable("nn")` and passes `table=`; a bare
`defop(...)` (table=None) gives an op registered nowhere, so a test that
defines throwaway ops has nothing to undo. `all_ops()` lists every table.
"""
from __future__ import annotations

import builtins
import inspect
import math
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, TypeVar, Union

import numpy as np

from ..tensor import ArrayLike, Tensor, _new, record

__all__ = ["Op", "OpTable", "OPS", "defop", "public", "all_ops", "Decl", "Axis"]

_AxisError = np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError  # type: ignore[attr-defined]
Axis = Union[None, int, Sequence[int]]
F = TypeVar("F", bound=Callable[..., Any])


class Op:
    """One primitive of an op table. Calling it records on Tensors and
    computes plain numpy on arrays, which is what lets VJPs serve both modes."""

    __slots__ = ("name", "forward", "vjps", "differentiable", "variadic", "saves", "random",
                 "effect", "table", "__weakref__")

    def __init__(self, name: str, forward: Callable[..., Any], vjps: tuple[Any, ...],
                 differentiable: bool, variadic: bool, saves: bool = False,
                 table: Optional["OpTable"] = None, random: bool = False,
                 effect: bool = False) -> None:
        self.name = name
        self.forward = forward
        self.vjps = vjps
        self.differentiable = differentiable
        self.variadic = variadic
        self.saves = saves
        self.random = random
        self.effect = effect
        self.table = table

    def __call__(self, *args: Any, **attrs: Any) -> Any:
        for a in args:
            if isinstance(a, Tensor):
                like = a
                break
        else:
            for a in args:
                if type(a) is list or type(a) is tuple:
                    return self._with_lists(args, attrs)
            out = self.forward(*args, **attrs)
            return out[0] if self.saves else out
        return record(self, tuple(operand(x, like, self.name) for x in args), attrs)

    def _with_lists(self, args: tuple[Any, ...], attrs: dict[str, Any]) -> Any:
        # A list holding Tensors is stacked, recorded (numpy would turn it into
        # a plain array and drop their graph); otherwise plain numpy as usual.
        if not builtins.any(_holds_tensor(a) for a in args):
            out = self.forward(*args, **attrs)
            return out[0] if self.saves else out
        ts = [as_tensor(a, self.name, i) if _holds_tensor(a) else a for i, a in enumerate(args)]
        like = next(t for t in ts if isinstance(t, Tensor))
        return record(self, tuple(operand(x, like, self.name) for x in ts), attrs)

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


@dataclass
class Decl:
    """What one `@public` declaration gives besides the function itself."""
    function: Callable[..., Any]
    op: Optional[Op]
    methods: tuple[str, ...]
    properties: tuple[str, ...]
    operators: tuple[str, ...]
    numpy: dict[Any, Callable[..., Any]]
    export: bool


# Weak: a table made in a test or a notebook and then dropped leaves `all_ops()`
# (nothing to undo). The package's tables live as module globals.
_TABLES: list["weakref.ref[OpTable]"] = []


class OpTable(dict):  # type: ignore[type-arg]
    """A mapping name -> Op, plus the public declarations of its module(s).
    Each defining module owns one; `all_ops()` walks them all."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.decls: list[Decl] = []
        _TABLES.append(weakref.ref(self))

    def defop(self, name: str, forward: Callable[..., Any], *vjps: Optional[Callable[..., Any]],
              differentiable: bool = True, variadic: bool = False, saves: bool = False,
              random: bool = False, effect: bool = False) -> Op:
        """`defop(..., table=self)`."""
        return defop(name, forward, *vjps, differentiable=differentiable, variadic=variadic,
                     saves=saves, random=random, effect=effect, table=self)

    def public(self, op: Optional[Op] = None, **kw: Any) -> Callable[[F], F]:
        """`public(..., table=self)`."""
        return public(op, table=self, **kw)

    def __repr__(self) -> str:
        return f"<OpTable {self.name}: {len(self)} ops>"


OPS = OpTable("core")


def defop(name: str, forward: Callable[..., Any], *vjps: Optional[Callable[..., Any]],
          differentiable: bool = True, variadic: bool = False, saves: bool = False,
          random: bool = False, effect: bool = False, table: Optional[OpTable] = None) -> Op:
    """Make an op: `forward(*arrays, **attrs)` in pure numpy and one VJP per
    input (None for inputs that can never require grad), or, with
    `variadic=True`, one VJP taking the input index first.

    With `saves=True` the forward returns `(out, saved)`: an array computed on
    the way that the VJPs reuse (they get it as `saved=`; None when the VJPs
    run on Tensors for create_graph, where they must recompute it so that it
    is differentiated too). It is freed by a backward that does not retain
    the graph.

    With `random=True` the forward draws random numbers (from a generator
    object among its attrs, whose state it advances), so two calls on the
    same inputs differ: a graph replay draws afresh, and graph passes never
    merge, fold or drop it (`passes.is_pure`).

    With `effect=True` the op changes state (an assignment, an optimizer's
    update, as TensorFlow's `assign` and `ApplyAdam`): its forward writes its
    first input in place and returns that same array (the new value), so
    later reads take the op's output. It must not be differentiable; a graph
    runs it where it was recorded (after every read of the old value), and
    graph passes keep it even when no output needs it, and never merge or
    fold it.

    `table`: the `OpTable` to register in (names are unique per table);
    None gives an op registered nowhere."""
    if table is not None and name in table:
        raise ValueError(f"defop: op {name!r} is already registered in table {table.name!r}")
    if differentiable and not vjps:
        raise ValueError(f"defop: differentiable op {name!r} needs VJPs")
    if effect and differentiable:
        raise ValueError(f"defop: effect op {name!r} changes state in place and cannot be "
                         "differentiable (pass differentiable=False)")
    op = Op(name, forward, tuple(vjps), differentiable, variadic, saves, table, random, effect)
    if table is not None:
        table[name] = op
    return op


def _names(v: Union[None, bool, str, Sequence[str]], default: str) -> tuple[str, ...]:
    if v is None or v is False:
        return ()
    if v is True:
        return (default,)
    return (v,) if isinstance(v, str) else tuple(v)


def public(op: Optional[Op] = None, *, method: Union[None, bool, str, Sequence[str]] = None,
           property: Union[None, str, Sequence[str]] = None,  # noqa: A002 - the keyword reads best
           operator: Union[None, str, Sequence[str]] = None,
           numpy: Any = None, export: Optional[bool] = None,
           table: Optional[OpTable] = None) -> Callable[[F], F]:
    """Declare a public function (the decorated one) and what it gives:

    method    True: a Tensor method of the same name (`x.exp()`); a name or
              names: methods under those names (dunders too: "__getitem__").
              The method's signature is the function's without its first
              parameter.
    property  Tensor properties computed by the function (`T`, `mT`).
    operator  fast operator dunders recording `op` directly: binary ones
              ("__mul__", reflected "__rmul__", comparisons "__lt__"),
              "__eq__"/"__ne__", unary ones ("__neg__", "__abs__", "__invert__").
    numpy     numpy callables (ufuncs or functions) that dispatch to the
              function when given a Tensor; a dict {np_fn: adapter} where the
              argument names differ (np.clip's a_min/a_max).
    export    whether `tg.<name>` exports it (default: yes, unless the
              function's first parameter is `self`, i.e. a method only).

    Methods, properties, operators and numpy entries exist for the core table
    only (they are generated into the Tensor class; see `codegen`)."""
    def deco(fn: F) -> F:
        tbl = OPS if table is None else table
        methods = _names(method, fn.__name__)
        props = _names(property, fn.__name__)
        opers = _names(operator, "")
        if tbl is not OPS and (methods or props or opers or numpy):
            raise ValueError(f"public: {fn.__name__!r}: methods, operators and numpy entries "
                             "are declared in the core table only")
        if opers and op is None:
            raise ValueError(f"public: {fn.__name__!r}: operators need the op they record")
        if numpy is None:
            np_map: dict[Any, Callable[..., Any]] = {}
        elif isinstance(numpy, dict):
            np_map = {k: (fn if v is None else v) for k, v in numpy.items()}
        elif isinstance(numpy, (tuple, list)):
            np_map = {k: fn for k in numpy}
        else:
            np_map = {numpy: fn}
        params = list(inspect.signature(fn).parameters)
        exp = (not params or params[0] != "self") if export is None else export
        tbl.decls.append(Decl(fn, op, methods, props, opers, np_map, exp))
        return fn
    return deco


def all_ops() -> dict[str, Op]:
    """Every op of every table (core first), by name; an extension op whose
    name is taken by an earlier table is listed as "table.name"."""
    out: dict[str, Op] = {}
    _TABLES[:] = [r for r in _TABLES if r() is not None]
    for r in _TABLES:
        t = r()
        if t is None:
            continue
        for name, op in t.items():
            out[name if name not in out else f"{t.name}.{name}"] = op
    return out


# ---------------------------------------------------------------------------
# Turning arguments into tensors

SCALARS = (bool, int, float, np.generic)


def scalar_dtype(v: Any, like: np.dtype) -> np.dtype:
    """Python and numpy scalars are weak: they take the other operand's dtype
    when it is of the same kind or wider (so float32 * 2.0 stays float32).
    A float scalar with an integer or boolean tensor gives the default float
    dtype, float32 (PyTorch's rule, not numpy's float64)."""
    k = like.kind
    if isinstance(v, (bool, np.bool_)):
        return like
    if isinstance(v, (int, np.integer)):
        return like if k in "iuf" else np.dtype(np.int64)
    if isinstance(v, (float, np.floating)):
        return like if k == "f" else np.dtype(np.float32)
    raise TypeError(f"unsupported scalar {v!r} of type {type(v).__name__}")


def operand(x: Any, like: Tensor, opname: str) -> Tensor:
    """Coerce an op argument to a Tensor; scalars follow `like`'s dtype."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return _new(x)
    if isinstance(x, SCALARS):
        return _new(np.asarray(x, dtype=scalar_dtype(x, like._data.dtype)))
    if isinstance(x, (list, tuple)):
        if _holds_tensor(x):
            return as_tensor(x, opname)
        return _weak_list(x, like, opname)
    raise TypeError(f"{opname}: unsupported operand of type {type(x).__name__} "
                    f"(with a Tensor of shape {like.shape} and dtype {like.dtype})")


def constant(v: Any, fname: str, argname: str) -> Any:
    """An op's non-differentiated argument (a slope, a ddof, a padding value):
    a Tensor that requires grad there would lose its gradient without a
    word, so it is refused; other Tensors give their value."""
    if isinstance(v, Tensor):
        if v.requires_grad:
            raise TypeError(f"{fname}: {argname} is a Tensor that requires grad, but {fname} "
                            f"does not differentiate {argname}: its gradient would be lost "
                            f"(pass {argname}.detach() to use its value)")
        return v._data[()] if v._data.ndim == 0 else v._data
    return v


def as_operands(xs: Sequence[Any], opname: str) -> tuple[Tensor, ...]:
    """The operands of a many-input function (concat, stack, dot, inner...)
    as Tensors: lists holding Tensors stacked, recorded; lists of numbers and
    scalars weak beside the first Tensor (so float64 with [0.1] stays exact)."""
    ts: list[Any] = [as_tensor(x, opname, i) if isinstance(x, (list, tuple)) and _holds_tensor(x)
                     else x for i, x in enumerate(xs)]
    like = next((t for t in ts if isinstance(t, Tensor)), None)
    return tuple(t if isinstance(t, Tensor) else
                 operand(t, like, opname) if like is not None and isinstance(t, (list, tuple) + SCALARS)
                 else as_tensor(t, opname, i) for i, t in enumerate(ts))


def _weak_list(x: Any, like: Tensor, opname: str) -> Tensor:
    """A list of Python numbers beside a Tensor is weak, as each number would
    be: it takes the Tensor's dtype when of the same kind or wider, so
    `float64 + [0.1]` is exact (not rounded through float32) and
    `float32 + [0.1]` stays float32; floats with an integer Tensor give float32."""
    a = np.asarray(x)
    k, lk = a.dtype.kind, like._data.dtype.kind
    if k == "f":
        dt = like._data.dtype if lk == "f" else np.dtype(np.float32)
    elif k in "iu":
        dt = like._data.dtype if lk in "iuf" else np.dtype(np.int64)
    elif k == "b":
        dt = like._data.dtype
    else:
        return as_tensor(x, opname)        # not numbers: its error
    return _new(a.astype(dt, copy=False))


def as_tensor(x: Any, opname: str = "tensor", position: Optional[int] = None) -> Tensor:
    """x as a Tensor. A (nested) list holding Tensors is stacked by recorded
    ops, so a gradient still flows to them (`tg.mean([x, x + 2])`)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (list, tuple)):
        if _holds_tensor(x):
            return _stack_nested(x, opname)
        return Tensor(x)
    if isinstance(x, (np.ndarray,) + SCALARS):
        return Tensor(x)
    where = "" if position is None else f" at position {position}"
    raise TypeError(f"{opname}: unsupported argument of type {type(x).__name__}{where}")


def _holds_tensor(x: Any) -> bool:
    if isinstance(x, Tensor):
        return True
    if isinstance(x, (list, tuple)):
        return builtins.any(_holds_tensor(v) for v in x)
    return False


holds_tensor = _holds_tensor   # for entry points outside ops (losses) that take lists


def _stack_nested(x: Any, opname: str) -> Tensor:
    """Stack a nested list of Tensors and numbers into one recorded Tensor.
    The dtype is the promotion of the Tensors' dtypes; numbers are weak."""
    from .shape import STACK   # the one place that stacks; shape imports this module
    leaves: list[Tensor] = []

    def collect(v: Any) -> None:
        if isinstance(v, Tensor):
            leaves.append(v)
        elif isinstance(v, (list, tuple)):
            for u in v:
                collect(u)
    collect(x)
    dtype = np.result_type(*[t.dtype for t in leaves])

    def build(v: Any) -> Tensor:
        if isinstance(v, Tensor):
            return v if v.dtype == dtype else astype_op(v, dtype)
        if isinstance(v, (list, tuple)):
            if not v:
                raise ValueError(f"{opname}: an empty list beside Tensors has no shape to stack")
            parts = [build(u) for u in v]
            shapes = {p.shape for p in parts}
            if len(shapes) > 1:
                raise ValueError(f"{opname}: cannot stack a list of Tensors with different "
                                 f"shapes {sorted(shapes)}")
            return record(STACK, tuple(parts), {"axis": 0})
        if isinstance(v, SCALARS):
            return _new(np.asarray(v, dtype=scalar_dtype(v, dtype)))
        if isinstance(v, np.ndarray):
            return _new(v.astype(dtype, copy=False))
        raise TypeError(f"{opname}: unsupported element of type {type(v).__name__} in a list "
                        "of Tensors")
    return build(x)


def astype_op(t: Tensor, dtype: Any) -> Tensor:
    from .elementwise import CAST
    return record(CAST, (t,), {"dtype": np.dtype(dtype)})


def binary(op: Op, a: Any, b: Any) -> Tensor:
    """Record a two-input op; Python scalars take the Tensor operand's dtype."""
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            return record(op, (a, b), {})
        return record(op, with_scalar(op, a, b, False), {})
    if isinstance(b, Tensor):
        return record(op, with_scalar(op, b, a, True), {})
    a = as_tensor(a, op.name, 0)
    return record(op, with_scalar(op, a, b, False), {})


def with_scalar(op: Op, t: Tensor, other: Any, reflected: bool) -> tuple[Tensor, Tensor]:
    """The operands of `t <op> other` (`other <op> t` when reflected) where
    `other` is not a Tensor. The operator fast paths call this for anything
    but a Tensor, so the dtype rules live here once:
    - scalars are weak (float32 * 2.0 is float32);
    - an integer or boolean Tensor with a Python float gives float32, the
      default float dtype (PyTorch's rule; numpy would give float64); so
      does its true division by a Python int (`t / 2`, as `t / 2.0`); a
      list of Python numbers counts as those numbers (`t + [0.5]`). (Two
      integer Tensors divide to numpy's float64: a check in div's forward
      would cost every division.)"""
    o = operand(other, t, op.name)
    if (op.differentiable and t._data.dtype.kind in "iub" and not t.requires_grad
            and (isinstance(other, (float, np.floating))
                 or isinstance(other, (list, tuple)) and o._data.dtype.kind == "f"
                 or op.name == "div" and isinstance(other, (int, np.integer, list, tuple)))):
        t = _new(t._data.astype(np.float32))
        if o._data.dtype.kind != "f":
            o = _new(o._data.astype(np.float32))
    return (o, t) if reflected else (t, o)


def unary(op: Op, x: Any, **attrs: Any) -> Tensor:
    """Record a one-input op with its attributes."""
    return record(op, (x if isinstance(x, Tensor) else as_tensor(x, op.name, 0),), attrs)


# ---------------------------------------------------------------------------
# Axis helpers shared by reductions and shape ops

def axes(axis: Axis, ndim: int, what: str = "") -> tuple[int, ...]:
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


def keep(g: Any, shape: tuple[int, ...], axis: Axis, keepdims: bool) -> Any:
    """Reshape a reduction's output (or its gradient) so that it broadcasts
    against the input again, i.e. as if keepdims=True."""
    if keepdims:
        return g
    ax = axes(axis, len(shape))
    return g.reshape(tuple(1 if i in ax else n for i, n in enumerate(shape)))


def count(shape: tuple[int, ...], axis: Axis) -> int:
    return math.prod(shape[a] for a in axes(axis, len(shape)))


def norm_axis(axis: Axis) -> Axis:
    """A list of axes as a tuple (attrs are compared and printed)."""
    return tuple(axis) if isinstance(axis, list) else axis


def shape_arg(shape: tuple[Any, ...]) -> tuple[int, ...]:
    """`f(2, 3)` and `f((2, 3))` alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def dim_alias(fname: str, axis: Any, dim: Any, default: Any) -> Any:
    """PyTorch's dim= for a function whose axis has a default other than None
    (softmax's -1, cat's 0): giving both is an error."""
    if dim is None:
        return axis
    if axis != default:
        raise TypeError(f"{fname}: give axis= or dim=, not both")
    return dim


def torch_alias(fname: str, axis: Any, keepdims: Any, dim: Any, keepdim: Any) -> tuple[Any, Any]:
    """Accept PyTorch's `dim=`/`keepdim=` as aliases of `axis=`/`keepdims=`."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{fname}: give axis= or dim=, not both")
        axis = dim
    if keepdim is not None:
        if keepdims:
            raise TypeError(f"{fname}: give keepdims= or keepdim=, not both")
        keepdims = keepdim
    return axis, bool(keepdims)
