"""In-place ops, as PyTorch has them: `+=`, `-=`, `*=`, `/=`, `t[idx] = v`,
`add_`, `sub_`, `mul_`, `div_`, `zero_`, `fill_`, `copy_`, `clamp_`.

The tensor stays the same object (a Parameter stays a Parameter, and anything
holding it sees the change). Three cases:

- nothing to record (under `no_grad`, or no operand requires grad): the values
  are written into the tensor's array, which keeps its identity. This is the
  optimizer step: `with tg.no_grad(): p -= lr * p.grad`.
- a leaf that requires grad, with recording on: an error naming the tensor
  (its gradient would be lost), as PyTorch.
- otherwise (a non-leaf, or an operand that requires grad): the op is recorded
  out of place on the old value, and the tensor takes the result's value and
  node, so gradients flow through the change.

Every in-place change stamps the tensor's version (`tensor.bump_version`):
backward through a node recorded before, that needs the old values, raises
naming the op and the tensor instead of using the new ones.

Inside `tg.capture`, an unrecorded change of a parameter (the optimizer step
`p -= lr * g` under no_grad) is recorded as the effect op `assign(p, value)`
(TensorFlow's `tf.assign`): the replay writes the new value into the
parameter's array, and capture itself leaves the parameter as it was. A
change of an op's value (or of a constant made inside fn) is captured as the
out-of-place op: the tensor names the new value from then on.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Optional

import numpy as np

from ..tensor import ArrayLike, Tensor, _new, bump_version, is_grad_enabled, mark_written
from .elementwise import CAST, WHERE, add, clip, divide, multiply, subtract
from .indexing import INDEX_ADD, index_key
from .registry import OPS, as_tensor, holds_tensor, operand
from .shape import broadcast_to

public = OPS.public
defop = OPS.defop

# The module, whose `_capture` (the recorder of tg.capture, or None) is read live.
_tensor_mod: Any = sys.modules[Tensor.__module__]


def _assign_forward(target: np.ndarray, value: np.ndarray) -> np.ndarray:
    # In place: the parameter's own array (others holding it see the change).
    np.copyto(target, value, casting="same_kind")
    return target


#: `assign(ref, value)`: write value into ref's array, return it (tf.assign).
ASSIGN = defop("assign", _assign_forward, differentiable=False, effect=True)


def _label(t: Tensor) -> str:
    return f"tensor {t.name!r} (shape {t.shape})" if t.name else f"the tensor of shape {t.shape}"


def _apply(self: Tensor, name: str, compute: Callable[[Tensor], Tensor]) -> Tensor:
    """Make `compute(self)` (an out-of-place result) the new value of self."""
    recording = is_grad_enabled()
    if recording and self.requires_grad and self.node is None:
        raise RuntimeError(
            f"{name}: {_label(self)} is a leaf that requires grad; changing it in place while "
            "recording would lose its gradient. Update it under `with tg.no_grad():` (as an "
            "optimizer step does), or use an out-of-place op (x = x + y).")
    if recording and self.requires_grad:
        old = _detached_identity(self)
        new = compute(old)
    else:
        new = compute(self)
    if new.shape != self.shape:
        raise RuntimeError(f"{name}: the result has shape {new.shape}, but an in-place op "
                           f"must keep the shape of {_label(self)}")
    if new.node is None:
        rec = _tensor_mod._capture
        if rec is not None and rec.assign(ASSIGN, self, new):
            return self     # recorded as an assignment, done by each replay
        # Nothing recorded: write into the array itself (same object, so views
        # and other holders see it).
        if not self._data.flags.writeable:   # e.g. a broadcast view
            self._data = self._data.copy()
        try:
            np.copyto(self._data, new._data, casting="same_kind")
        except TypeError:
            raise TypeError(f"{name}: the result has dtype {new.dtype}, which cannot be stored "
                            f"in {_label(self)} of dtype {self.dtype}") from None
    else:
        if new.dtype != self.dtype:
            if self.dtype.kind != "f":
                raise TypeError(f"{name}: the result has dtype {new.dtype}, which cannot be "
                                f"stored in {_label(self)} of dtype {self.dtype}")
            new = CAST(new, dtype=self.dtype)
        # Take over the result's value and node: self is now the new step.
        self._data = new._data
        self.node = new.node
        self.requires_grad = True
        # the node that made the new value is not "before" the change
        self.node.epoch = bump_version(self)   # type: ignore[union-attr]
        return self
    bump_version(self)
    mark_written(self._data)   # tensors sharing this memory changed too
    if rec is not None:
        rec.rebind(self, new)   # captured: self names the new value from here on
    return self


def _detached_identity(self: Tensor) -> Tensor:
    """A tensor that takes over self's current value and node (its place in
    the graph), so that self can become the result of the in-place op."""
    old = _new(self._data)
    old.node = self.node
    old.requires_grad = self.requires_grad
    old._saves = 0
    old.name = self.name
    return old


@public(None, method=("__iadd__",))
def _iadd(self: Tensor, other: ArrayLike) -> Tensor:
    """self += other, in place (see tensorgraph/ops/inplace.py)."""
    return _apply(self, "__iadd__", lambda x: add(x, other))


@public(None, method=("__isub__",))
def _isub(self: Tensor, other: ArrayLike) -> Tensor:
    """self -= other, in place."""
    return _apply(self, "__isub__", lambda x: subtract(x, other))


@public(None, method=("__imul__",))
def _imul(self: Tensor, other: ArrayLike) -> Tensor:
    """self *= other, in place."""
    return _apply(self, "__imul__", lambda x: multiply(x, other))


@public(None, method=("__itruediv__",))
def _itruediv(self: Tensor, other: ArrayLike) -> Tensor:
    """self /= other, in place."""
    return _apply(self, "__itruediv__", lambda x: divide(x, other))


@public(None, method="add_")
def _add_(self: Tensor, other: ArrayLike, *, alpha: float = 1) -> Tensor:
    """self += alpha * other, in place; returns self (PyTorch's add_)."""
    return _apply(self, "add_", lambda x: add(x, other if alpha == 1 else multiply(other, alpha)
                                              if isinstance(other, Tensor) else
                                              np.multiply(other, alpha)))


@public(None, method="sub_")
def _sub_(self: Tensor, other: ArrayLike, *, alpha: float = 1) -> Tensor:
    """self -= alpha * other, in place; returns self."""
    return _apply(self, "sub_", lambda x: subtract(x, other if alpha == 1 else
                                                   multiply(other, alpha)
                                                   if isinstance(other, Tensor) else
                                                   np.multiply(other, alpha)))


@public(None, method="mul_")
def _mul_(self: Tensor, other: ArrayLike) -> Tensor:
    """self *= other, in place; returns self."""
    return _apply(self, "mul_", lambda x: multiply(x, other))


@public(None, method="div_")
def _div_(self: Tensor, other: ArrayLike) -> Tensor:
    """self /= other, in place; returns self."""
    return _apply(self, "div_", lambda x: divide(x, other))


@public(None, method="clamp_")
def _clamp_(self: Tensor, min: Optional[ArrayLike] = None,  # noqa: A002 - PyTorch's names
            max: Optional[ArrayLike] = None) -> Tensor:  # noqa: A002
    """Limit self to [min, max], in place; returns self."""
    return _apply(self, "clamp_", lambda x: clip(x, min, max))


def _everywhere(x: Tensor, value: Any, name: str) -> Tensor:
    """`value` broadcast to x's shape and dtype, recorded where it requires
    grad (the gradient to x's old value is 0)."""
    v = value if isinstance(value, Tensor) else operand(value, x, name)
    if isinstance(value, Tensor) and v.dtype != x.dtype:
        v = CAST(v, dtype=x.dtype) if v.requires_grad else _new(v._data.astype(x.dtype))
    try:
        vb = broadcast_to(v, x.shape)
    except ValueError:
        raise ValueError(f"{name}: a value of shape {v.shape} does not broadcast to "
                         f"{_label(x)}") from None
    if not vb.requires_grad:
        return _new(np.array(vb._data, dtype=x.dtype))
    return WHERE(np.ones(x.shape, dtype=bool), vb, x)


@public(None, method="fill_")
def _fill_(self: Tensor, value: ArrayLike) -> Tensor:
    """Set every element to `value`, in place; returns self."""
    return _apply(self, "fill_", lambda x: _everywhere(x, value, "fill_"))


@public(None, method="zero_")
def _zero_(self: Tensor) -> Tensor:
    """Set every element to 0, in place; returns self."""
    return _apply(self, "zero_", lambda x: _everywhere(x, 0, "zero_"))


@public(None, method="copy_")
def _copy_(self: Tensor, src: ArrayLike) -> Tensor:
    """Copy `src` (broadcast to self's shape, converted to self's dtype) into
    self, in place; returns self. The gradient flows to src."""
    # operand: a list of numbers is taken at self's precision (not via float32)
    s = src if isinstance(src, Tensor) else operand(src, self, "copy_")
    return _apply(self, "copy_", lambda x: _everywhere(x, s, "copy_"))


@public(None, method="__setitem__")
def _setitem(self: Tensor, key: Any, value: ArrayLike) -> None:
    """self[key] = value, in place (numpy's indexing; see `getitem`)."""
    index = index_key(key)
    if isinstance(value, (list, tuple)) and holds_tensor(value):
        # Stacked by recorded ops (numpy would copy the Tensors' values and drop
        # the graph). A list of numbers stays as it is: written at the tensor's
        # own precision, not through float32.
        value = as_tensor(value, "__setitem__", 1)
    recording = is_grad_enabled() and (self.requires_grad or
                                       isinstance(value, Tensor) and value.requires_grad)
    # captured: the write is recorded ops, whatever the gradient mode
    if not recording and _tensor_mod._capture is None:
        v = value._data if isinstance(value, Tensor) else value
        _apply(self, "__setitem__", lambda x: _put_values(x, index, v))
        return
    _apply(self, "__setitem__", lambda x: _put_recorded(x, index, value))


def _put_values(x: Tensor, index: tuple[Any, ...], v: Any) -> Tensor:
    # Not recorded: write straight into x's array (the caller bumps the version).
    arr = x._data if x._data.flags.writeable else x._data.copy()
    try:
        arr[index] = v
    except (ValueError, IndexError, TypeError) as e:
        raise type(e)(f"__setitem__: {e} (tensor shape {x.shape})") from None
    return x if arr is x._data else _new(arr)


def _put_recorded(x: Tensor, index: tuple[Any, ...], value: Any) -> Tensor:
    # x with value at index: where(mask, scatter(value), x); differentiable in
    # both (the scatter's VJP gathers). A repeated position would be summed by
    # the scatter where numpy keeps the last write: refused.
    counts = np.zeros(x.shape, dtype=np.int64)
    np.add.at(counts, index, 1)
    if counts.max(initial=0) > 1:
        raise ValueError("__setitem__: an index that repeats a position cannot be recorded "
                         f"(tensor shape {x.shape}); assign under tg.no_grad() or use unique "
                         "indices")
    sub_shape = np.empty(x.shape, dtype=bool)[index].shape
    v = value if isinstance(value, Tensor) else operand(value, x, "__setitem__")
    if v.dtype != x.dtype:
        v = CAST(v, dtype=x.dtype)
    placed = INDEX_ADD(broadcast_to(v, sub_shape), shape=x.shape, index=index)
    return WHERE(counts.astype(bool), placed, x)
