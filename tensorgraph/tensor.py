"""The Tensor and the graph it records.

A `Tensor` wraps a numpy array. When an op runs on tensors of which at least one
requires a gradient (and recording is on), the result points to a `Node`: the op,
its attributes, its parents in argument order, the output's shape and dtype, and
the name scope that was active. Those nodes form the DAG that `autograd` walks
backwards and that the renderer draws.

Design notes (why it looks like this):
- `__slots__` everywhere on the hot path, and no closures: a node holds plain
  references to its parents and nothing refers back from a node to its output,
  so a dropped graph is freed at once by reference counting, never by the
  cyclic garbage collector.
- Python scalars are "weak", as in PyTorch and NumPy 2 (NEP 50): `x * 2.0` keeps
  the dtype of `x`. NumPy scalars such as `np.float64(2.0)` are treated the same
  way, so float32 work stays float32. (The whole dtype policy: `_default_array`.)
- Values a recorded op needs for its backward cannot change behind its back:
  `.data`/`.numpy()` are read-only while such a graph is alive, and in-place ops
  (ops/inplace.py) stamp a version that backward checks (`bump_version`;
  `mark_written` for tensors sharing the memory). The bookkeeping is one
  counter per input and one int per node; a node gives its inputs back when
  backward frees it or when it is dropped unused (`Node.__del__`).
"""
from __future__ import annotations

import contextlib
import os
import sys
import weakref
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np

from ._tensor_api import TensorMethods

__all__ = [
    "Tensor", "Node", "tensor", "no_grad", "enable_grad", "is_grad_enabled",
    "set_grad_enabled", "name_scope", "current_scope",
]

ArrayLike = Union["Tensor", np.ndarray, np.generic, float, int, bool, Sequence[Any]]

# ---------------------------------------------------------------------------
# Global recording state. Module globals (not thread-locals) because they are
# read on every op and this is a single-threaded teaching engine.
_grad_enabled = True
_scope: tuple[str, ...] = ()
_anomaly = False
# In-place modification tracking (PyTorch's version counters, made cheap): every
# in-place change through tensorgraph (`+=`, `add_`, `t[i] = v`, `.data = a`)
# advances this epoch and stamps the tensor's `_version` with it; a node keeps the
# epoch at which it was recorded, so backward need only look at a node's inputs
# when the epoch moved since (one int comparison per node otherwise).
_epoch = 0
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# The active `graph.capture` (None outside one): `record` hands it every op, so
# a capture sees what no_grad and requires_grad would not record.
_capture: Any = None


def is_grad_enabled() -> bool:
    """Whether ops on tensors that require grad are being recorded."""
    return _grad_enabled


class set_grad_enabled(contextlib.ContextDecorator):
    """Turn recording on or off inside a `with` block (or as a decorator)."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)

    def __enter__(self) -> None:
        global _grad_enabled
        self.prev = _grad_enabled
        _grad_enabled = self.mode

    def __exit__(self, *exc: Any) -> None:
        global _grad_enabled
        _grad_enabled = self.prev


def no_grad() -> set_grad_enabled:
    """`with tg.no_grad():` records nothing; results do not require grad."""
    return set_grad_enabled(False)


def enable_grad() -> set_grad_enabled:
    """`with tg.enable_grad():` records again inside a `no_grad` block."""
    return set_grad_enabled(True)


@contextlib.contextmanager
def name_scope(name: str) -> Iterator[tuple[str, ...]]:
    """Push `name` onto the scope stack; every node made inside records it.

    >>> with tg.name_scope("layer1"):
    ...     y = x @ w          # y.node.scope == ("layer1",)
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name_scope: name must be a non-empty string, got {name!r}")
    prev = push_scope((name,))
    try:
        yield _scope
    finally:
        restore_scope(prev)


def push_scope(names: tuple[str, ...]) -> tuple[str, ...]:
    """Extend the scope by `names` and return the previous scope, to be given to
    `restore_scope`. The cheap form of `name_scope`, for modules (one call per
    forward, so it avoids a generator-based context manager)."""
    global _scope
    prev = _scope
    _scope = prev + names
    return prev


def restore_scope(prev: tuple[str, ...]) -> None:
    global _scope
    _scope = prev


def current_scope() -> tuple[str, ...]:
    """The active name scope, outermost first."""
    return _scope


def is_anomaly_enabled() -> bool:
    return _anomaly


def set_anomaly_enabled(mode: bool) -> bool:
    """Set anomaly mode; returns the previous mode (see `autograd.detect_anomaly`)."""
    global _anomaly
    prev, _anomaly = _anomaly, bool(mode)
    return prev


def _user_frame() -> Optional[str]:
    """`file:line: code` of the innermost caller outside this package."""
    f = sys._getframe(1)
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_PACKAGE_DIR):
        f = f.f_back
    if f is None:
        return None
    import linecache
    code = linecache.getline(f.f_code.co_filename, f.f_lineno).strip()
    return f"{f.f_code.co_filename}:{f.f_lineno}: {code}"


# ---------------------------------------------------------------------------
class Node:
    """What an op records about one application: everything a VJP, a renderer
    or a graph capture needs, and nothing else.

    op       the `Op` (its `.name` is the op name)
    parents  the input Tensors, in argument order (`a + a` has two entries)
    attrs    the op's non-tensor arguments (axis, shape, ...)
    shape, dtype  of the output
    scope    the name-scope stack active when it was made (outermost first)
    saved    an array the op computed in forward for its VJP (ops registered
             with saves=True only); freed by a backward that does not retain
    edge_grads  after `backward(retain_graph=True)`: the gradient sent to each
             parent (None where the parent needs none); the backward view draws it
    freed    set by a backward that did not retain the graph
    trace    `file:line: code` of the user code that made it (anomaly mode only)
    epoch    the in-place epoch when it was recorded (see `bump_version`)
    """

    __slots__ = ("op", "parents", "attrs", "shape", "dtype", "scope",
                 "edge_grads", "freed", "trace", "saved", "epoch")

    def __init__(self, op: Any, parents: tuple["Tensor", ...], attrs: dict[str, Any],
                 shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.op = op
        self.parents = parents
        self.attrs = attrs
        self.shape = shape
        self.dtype = dtype
        self.scope = _scope
        self.edge_grads: Optional[tuple[Any, ...]] = None
        self.freed = False
        self.trace: Optional[str] = None
        self.saved: Any = None
        self.epoch = _epoch

    def __del__(self) -> None:
        # A graph dropped without a backward (an evaluation pass outside
        # no_grad) no longer needs its inputs: `.data` is writable again.
        # Runs when the last reference goes (reference counting, no cycles);
        # a backward that freed the node has already done this.
        if self.freed:
            return
        if self.epoch == _epoch:
            for p in self.parents:
                if p._saves:
                    p._saves -= 1
        else:
            # A parent modified in place since this node was recorded had its
            # count restarted (bump_version): this node is no longer in it.
            for p in self.parents:
                if p._saves and getattr(p, "_version", 0) <= self.epoch:
                    p._saves -= 1

    @property
    def name(self) -> str:
        """The op's name, e.g. "matmul"."""
        return self.op.name

    def __repr__(self) -> str:
        scope = "/".join(self.scope)
        return (f"<Node {self.op.name} {self.shape} {self.dtype}"
                f"{' in ' + scope if scope else ''} parents={len(self.parents)}>")


def _default_array(data: Any, dtype: Any = None) -> np.ndarray:
    """The dtype policy (PyTorch's where it differs from numpy's):
    - numpy arrays keep their dtype; Python floats (and lists of them) become
      float32, the default float dtype; Python ints int64; bools bool;
    - in ops, Python and numpy scalars are weak: they take the Tensor
      operand's dtype when of the same kind (float32 * 2.0 is float32);
    - an integer or boolean Tensor with a Python float gives float32
      (`tg.tensor([1, 2]) * 0.5` is float32; numpy would give float64)."""
    if isinstance(data, Tensor):
        data = data._data
    elif isinstance(data, (list, tuple)):
        if _refuse_graph_in_list(data, "Tensor"):
            # Their dtypes promoted (numbers weak), as when they require grad:
            # [float64 Tensor, ...] stays float64, not the float32 of Python floats.
            from .ops.registry import as_tensor
            data = as_tensor(data, "tensor")._data
    if isinstance(data, np.ndarray):
        arr = data
    elif isinstance(data, np.generic):
        arr = np.asarray(data)
    elif dtype is not None:   # straight to the asked dtype: no float32 detour (0.4 stays 0.4)
        arr = np.asarray(data, dtype=np.dtype(dtype))
    else:
        arr = np.asarray(data)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        elif arr.dtype.kind == "i" and arr.dtype != np.int64:
            arr = arr.astype(np.int64)
    if dtype is not None:
        dtype = np.dtype(dtype)
        if arr.dtype != dtype:
            arr = arr.astype(dtype)
    if arr.dtype == object or arr.dtype.kind in "USVcM m":
        raise TypeError(f"tensor: unsupported data of dtype {arr.dtype} (from {type(data).__name__})")
    return arr


def _check_can_require_grad(dtype: np.dtype, what: str = "tensor") -> None:
    if dtype.kind != "f":
        raise TypeError(f"{what}: only floating-point tensors can require gradients, "
                        f"got dtype {dtype} (give float data or dtype='float32')")


def _refuse_graph_in_list(data: Any, fn: str, path: tuple[int, ...] = ()) -> bool:
    """A list holding a Tensor that carries a gradient cannot become a plain
    array without cutting the graph: refuse, naming where it is. Returns
    whether the list holds any Tensor."""
    found = False
    for i, v in enumerate(data):
        if isinstance(v, Tensor):
            if v.requires_grad:
                where = "".join(f"[{k}]" for k in path + (i,))
                raise TypeError(f"{fn}: the list holds a Tensor that requires grad at {where}; "
                                "a plain array would drop its gradient. Use tg.stack (or "
                                "tg.tensor, which stacks Tensors recorded)")
            found = True
        elif isinstance(v, (list, tuple)):
            found = _refuse_graph_in_list(v, fn, path + (i,)) or found
    return found


def bump_version(t: "Tensor") -> int:
    """Mark `t` as modified in place now: backward through a node recorded
    before, that needs t's values, will raise instead of using the new ones.
    Returns the new epoch.

    Those earlier nodes no longer protect t's values (their backward raises
    anyway), so t's count of them restarts at 0 and they do not decrement it
    when they go (`Node.__del__`): only graphs recorded from now on make
    `.data` read-only."""
    return bump_versions((t,))


# Arrays written in place by an in-place op, keyed by the id of the array that
# owns their memory: (weak reference to it, epoch of the write). A tensor made
# by `.detach()`, `tg.tensor(array)` or a view (reshape, slicing, `.T` under
# no_grad) can share memory with a tensor a graph saved; backward looks here
# (only when the epoch moved) so that a change made through such a tensor is
# caught too, as PyTorch's shared version counters do. Raw numpy writes into
# `.data`/`.numpy()` of the sharing tensor are not seen (nor in PyTorch).
_written: dict[int, tuple[Any, int]] = {}


def _owner(a: np.ndarray) -> np.ndarray:
    """The array that owns a's memory (a itself unless a is a view)."""
    b = a.base
    while isinstance(b, np.ndarray):
        a, b = b, b.base
    return a


def bump_versions(ts: Sequence["Tensor"]) -> int:
    """`bump_version` for several tensors changed by one update (an
    optimizer step): one new epoch stamps them all. Returns it."""
    global _epoch
    _epoch += 1
    for t in ts:
        t._version = _epoch
        t._saves = 0
    return _epoch


def mark_written(arr: np.ndarray) -> None:
    """Record that `arr`'s memory was written in place now (after bump_version)."""
    owner = arr if arr.base is None else _owner(arr)
    key = id(owner)
    rec = _written.get(key)
    if rec is not None and rec[0]() is owner:
        # written before (a parameter, every step): keep its weak reference,
        # move the epoch (making a weakref and its callback is most of the cost)
        _written[key] = (rec[0], _epoch)
        return

    def forget(r: Any, key: int = key) -> None:
        if _written.get(key, (None,))[0] is r:
            del _written[key]
    _written[key] = (weakref.ref(owner, forget), _epoch)


def written_since(a: np.ndarray, epoch: int) -> bool:
    """Whether a's memory was written by an in-place op after `epoch`."""
    if not _written:
        return False
    owner = _owner(a)
    rec = _written.get(id(owner))
    return rec is not None and rec[0]() is owner and rec[1] > epoch


class Tensor(TensorMethods):
    """An n-dimensional array that records the ops applied to it.

    `.data` is the numpy array (readable and assignable). `.grad` is a Tensor,
    None until a backward pass reaches this tensor; gradients accumulate across
    backward calls, and `t.grad = None` resets. Non-leaf tensors point to the
    `Node` that made them (`.node`); leaves have `.node is None`.
    """

    __slots__ = ("_data", "grad", "requires_grad", "node", "name", "_hooks",
                 "_retain", "_saves", "_version", "_made_by", "__weakref__")
    # Left unset until needed (reading them goes through getattr with a default),
    # so that making a tensor costs nothing more:
    # _version  the in-place epoch of the last in-place change (see bump_version)
    # _made_by  the name of the non-differentiable op that made this tensor from
    #           inputs that require grad, so that backward can say why there is no graph
    _version: int
    _made_by: str
    # numpy must defer to us: `ndarray + Tensor` calls Tensor.__array_ufunc__.
    __array_priority__ = 1000.0

    def __init__(self, data: ArrayLike, dtype: Any = None, requires_grad: bool = False,
                 name: Optional[str] = None) -> None:
        arr = _default_array(data, dtype)
        self._data = arr
        self.grad: Optional[Tensor] = None
        self.requires_grad = False
        self.node: Optional[Node] = None
        self.name = name
        self._hooks: Optional[list[Callable[[Tensor], Optional[Tensor]]]] = None
        self._retain = False
        self._saves = 0
        if requires_grad:
            _check_can_require_grad(arr.dtype, "tensor")
            self.requires_grad = True

    # -- the array --------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        """The underlying numpy array (no copy). Assigning replaces it
        without recording anything, as `p.data = ...` does in PyTorch.

        While a recorded graph may still need these values for its backward
        pass, the array is handed out read-only (numpy refuses writes):
        writing into it would silently change that graph's gradients. Once
        the graph is freed by backward, or dropped without one (its last
        reference goes), it is writable again. To change the values anyway
        while the graph is alive, use an in-place op
        (`t.copy_(v)`, `t[i] = v`, `t -= d` under no_grad) or assign `.data`:
        backward through an old graph that needs them then raises, naming the
        op and the tensor."""
        if _capture is not None and _outside(sys._getframe(1)):
            _capture.reads(self, ".data")     # the value at capture: frozen, say so
        node = self.node
        if self._saves or node is not None and not node.freed:
            view = self._data.view()
            view.flags.writeable = False
            return view
        return self._data

    @data.setter
    def data(self, value: ArrayLike) -> None:
        arr = value._data if isinstance(value, Tensor) else np.asarray(value)
        if self.requires_grad:
            _check_can_require_grad(arr.dtype, "data")
        self._data = arr
        # The old array is no longer this tensor's: graphs that saved it see a
        # version change (their backward raises), and the new one is writable
        # (bump_version restarts the count of graphs that need it).
        bump_version(self)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors not made by a recorded op."""
        return self.node is None

    def numpy(self) -> np.ndarray:
        """The data as a numpy array (shared, not copied; read-only while a
        recorded graph still needs it, see `.data`)."""
        if _capture is not None and _outside(sys._getframe(1)):
            _capture.reads(self, "numpy()")
        return self.data

    def numel(self) -> int:
        """The number of elements (PyTorch's name for `.size`)."""
        return self._data.size

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if _capture is not None:
            _capture.decides(self, "item()")
        return self._item()

    def tolist(self) -> Any:
        if _capture is not None and _outside(sys._getframe(1)):
            _capture.reads(self, "tolist()")
        return self._data.tolist()

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        if _capture is not None and _outside(sys._getframe(1)):
            _capture.reads(self, "np.asarray()")
        if dtype is not None and np.dtype(dtype) != self._data.dtype:
            return self._data.astype(dtype)
        if copy:
            return self._data.copy()
        return self.data

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self) -> Iterator["Tensor"]:
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __bool__(self) -> bool:
        if _capture is not None:
            _capture.decides(self, "bool()")
        if self._data.size != 1:
            raise ValueError(f"The truth value of a Tensor with shape {self.shape} is "
                             "ambiguous; use .any() or .all() on .data")
        return bool(self._data)

    def __float__(self) -> float:
        if _capture is not None:
            _capture.decides(self, "float()")
        return float(self._item())

    def __int__(self) -> int:
        if _capture is not None:
            _capture.decides(self, "int()")
        return int(self._item())

    def _item(self) -> Any:
        if self._data.size != 1:
            raise ValueError(f"item: only one-element tensors can be converted to a "
                             f"Python scalar, got shape {self.shape}")
        return self._data.item()

    def __index__(self) -> int:
        if _capture is not None:
            _capture.decides(self, "an index")
        if self._data.dtype.kind not in "iu" or self._data.size != 1:
            raise TypeError(f"only integer one-element tensors can be used as an index, "
                            f"got dtype {self.dtype} and shape {self.shape}")
        return int(self._data.item())

    __hash__ = object.__hash__  # identity, although == is elementwise

    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", precision=4, threshold=20,
                               edgeitems=3, prefix="tensor(")
        extras = [f"dtype={self.dtype}"]
        if self.node is not None:
            extras.append(f"op={self.node.op.name}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.name:
            extras.append(f"name={self.name!r}")
        return f"tensor({body}, {', '.join(extras)})"

    # -- autograd ---------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Mark this leaf as needing a gradient (in place); returns self."""
        if requires_grad:
            _check_can_require_grad(self._data.dtype, "requires_grad_")
        elif self.node is not None:
            raise RuntimeError("requires_grad_: can only change a leaf tensor; "
                               "use .detach() for a non-leaf")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> "Tensor":
        """A new leaf sharing the data, cut from the graph."""
        t = _new(self._data)
        t.name = self.name
        return t

    def register_hook(self, hook: Callable[["Tensor"], Optional["Tensor"]]) -> "_HookHandle":
        """Call `hook(grad)` when this tensor's gradient has been summed during
        backward; a non-None return value replaces the gradient that flows on."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that "
                               "does not require grad")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return _HookHandle(self._hooks, hook)

    def retain_grad(self) -> None:
        """Keep `.grad` on this non-leaf tensor after backward (leaves always do)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: tensor does not require grad")
        self._retain = True

    def backward(self, gradient: Optional[ArrayLike] = None, retain_graph: bool = False,
                 create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (reverse mode).

        A non-scalar tensor needs `gradient`, the vector of the vector-Jacobian
        product. The graph's saved state is freed afterwards unless `retain_graph`;
        `create_graph=True` records the backward pass so it can be differentiated.
        """
        from . import autograd
        autograd.backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph)

    # The methods, properties and operators declared with the ops come from
    # TensorMethods (tensorgraph/_tensor_api.py, generated from the declarations).

    def __pos__(self) -> "Tensor":
        return self



class _HookHandle:
    __slots__ = ("_hooks", "_hook")

    def __init__(self, hooks: list, hook: Callable) -> None:
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


_object_new = object.__new__


def _new(data: np.ndarray) -> Tensor:
    """A bare tensor around an ndarray, without the checks of __init__ (hot path)."""
    t = object.__new__(Tensor)
    t._data = data
    t.grad = None
    t.requires_grad = False
    t.node = None
    t.name = None
    t._hooks = None
    t._retain = False
    t._saves = 0
    return t


def tensor(data: ArrayLike, dtype: Any = None, requires_grad: bool = False,
           name: Optional[str] = None) -> Tensor:
    """Make a leaf tensor.

    Python floats and lists of them become float32 (as in PyTorch); a numpy
    array keeps its dtype (and is not copied). Only floating-point tensors can
    require grad.
    """
    if isinstance(data, Tensor):
        if data.requires_grad:
            import warnings
            warnings.warn("tensor: copying a Tensor that requires grad gives a new leaf without "
                          "its graph; say so with x.detach().clone(), or keep the graph with "
                          "x.clone()", UserWarning, stacklevel=2)
        if _capture is not None and _capture.captured(data):
            return _captured_copy(data, dtype, requires_grad, name)
        data = data._data.copy()
    elif isinstance(data, (list, tuple)) and _holds_grad(data):
        # Stack, recorded: tg.tensor([x, 3 * x]) keeps the gradient flowing to x.
        if requires_grad:
            raise TypeError("tensor: requires_grad=True makes a leaf, but the list holds "
                            "Tensors that require grad; the result already carries their graph")
        from .ops.registry import as_tensor
        t = as_tensor(data, "tensor")
        if dtype is not None and t.dtype != np.dtype(dtype):
            t = t.astype(dtype)
        return t
    return Tensor(data, dtype=dtype, requires_grad=requires_grad, name=name)


def _captured_copy(data: Tensor, dtype: Any, requires_grad: bool,
                   name: Optional[str]) -> Tensor:
    """tg.tensor(t) of a captured value inside tg.capture: a recorded copy (a
    new leaf for autograd), so each replay copies the replay's value."""
    from .ops.elementwise import CAST, CLONE
    global _grad_enabled
    prev, _grad_enabled = _grad_enabled, False
    try:
        if dtype is not None and np.dtype(dtype) != data.dtype:
            t = record(CAST, (data,), {"dtype": np.dtype(dtype)})
        else:
            t = record(CLONE, (data,), {})
    finally:
        _grad_enabled = prev
    if requires_grad:
        _check_can_require_grad(t.dtype, "tensor")
        t.requires_grad = True
    t.name = name
    return t


def _outside(frame: Any) -> bool:
    """Whether `frame` (a caller) is user code, not tensorgraph's own."""
    return not os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR)


def _holds_grad(data: Any) -> bool:
    for v in data:
        if isinstance(v, Tensor) and v.requires_grad:
            return True
        if isinstance(v, (list, tuple)) and _holds_grad(v):
            return True
    return False


# ---------------------------------------------------------------------------
# Recording: the one function every op goes through.

class AnomalyError(RuntimeError):
    """Raised in `detect_anomaly` mode at the first non-finite value."""


def _where(scope: tuple[str, ...], trace: Optional[str]) -> str:
    s = f" in scope '{'/'.join(scope)}'" if scope else " (no scope)"
    return s + (f", created at {trace}" if trace else "")


def record(op: Any, args: tuple[Tensor, ...], attrs: dict[str, Any]) -> Tensor:
    """Run `op.forward` on the arrays of `args`, wrap the result, and, if any
    argument requires grad and recording is on, attach a Node."""
    try:
        n = len(args)
        if n == 1:
            out = op.forward(args[0]._data, **attrs)
        elif n == 2:
            out = op.forward(args[0]._data, args[1]._data, **attrs)
        else:
            out = op.forward(*[a._data for a in args], **attrs)
    except (ValueError, IndexError, TypeError) as e:
        raise op.error(e, args, attrs) from None
    saved = None
    if op.saves:
        out, saved = out
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    # _new(out), inlined: this is the hot path of every op.
    t = _object_new(Tensor)
    t._data = out
    t.grad = None
    t.requires_grad = False
    t.node = None
    t.name = None
    t._hooks = None
    t._retain = False
    t._saves = 0
    if _grad_enabled and op.differentiable and out.dtype.kind == "f":
        for a in args:
            if a.requires_grad:
                t.requires_grad = True
                t.node = node = Node(op, args, attrs, out.shape, out.dtype)
                if saved is not None:
                    node.saved = saved
                # The node needs its inputs' values (and its output's: see
                # `data`) until backward frees it: `.data` hands them out
                # read-only meanwhile.
                if n == 2:
                    args[0]._saves += 1
                    args[1]._saves += 1
                else:
                    for a in args:
                        a._saves += 1
                break
    elif _grad_enabled:
        # An integer or boolean result (argmax, x > 0, or a sum of them) has no
        # graph: remember the op that cut it, so that backward can say so.
        for a in args:
            if a.requires_grad:
                t._made_by = op.name
                break
            cut = getattr(a, "_made_by", None)
            if cut is not None:
                t._made_by = cut
                break
    if _capture is not None:
        _capture.add(op, args, attrs, t)
    if _anomaly:
        trace = _user_frame()
        if t.node is not None:
            t.node.trace = trace
        if out.dtype.kind in "fc" and not np.isfinite(out).all():
            raise AnomalyError(f"detect_anomaly: forward of op '{op.name}'{_where(_scope, trace)} "
                               f"produced {_nonfinite(out)} (output shape {out.shape})")
    return t


def _nonfinite(a: np.ndarray) -> str:
    kinds = [k for k, bad in (("nan", np.isnan(a).any()), ("inf", np.isinf(a).any())) if bad]
    return " and ".join(kinds) or "non-finite values"
