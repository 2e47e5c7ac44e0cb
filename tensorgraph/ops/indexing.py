"""Indexing. The backward of a gather is a scatter-add, so repeated indices
accumulate; `index_add` is that scatter, and its own VJP is the gather."""
from __future__ import annotations

import builtins
import sys
from typing import Any, Optional

import numpy as np

from ..tensor import ArrayLike, Tensor
from .registry import OPS, axes, as_tensor, unary

defop, public = OPS.defop, OPS.public
# The module, whose `_capture` (the recorder of tg.capture, or None) is read live.
_tensor_mod: Any = sys.modules[Tensor.__module__]


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


def index_key(key: Any) -> tuple[Any, ...]:
    """A numpy index tuple from a key that may hold Tensors and lists."""
    key = key if isinstance(key, tuple) else (key,)
    out = []
    for k in key:
        if isinstance(k, Tensor):
            k = k._data
        elif isinstance(k, list):
            k = np.asarray(k)
        out.append(k)
    return tuple(out)


@public(GETITEM, method="__getitem__")
def getitem(x: ArrayLike, key: Any) -> Tensor:
    """x[key] with ints, slices, None, Ellipsis, boolean masks and integer
    arrays, as numpy. The backward scatter-adds, so repeated indices accumulate."""
    return unary(GETITEM, x, index=index_key(key))


@public(None, method=True, numpy=np.take)
def take(x: ArrayLike, indices: ArrayLike, axis: Optional[int] = None) -> Tensor:
    """Elements at `indices` along `axis` (of the flattened x when None)."""
    x = as_tensor(x, "take", 0)
    idx = np.asarray(indices._data if isinstance(indices, Tensor) else indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"take: indices must be integers, got dtype {idx.dtype}")
    ax = None if axis is None else axes(axis, x.ndim, f"take (input shape {x.shape})")[0]
    n = x.size if ax is None else x.shape[ax]
    if idx.size and (idx.max() >= n or idx.min() < -n):
        bad = idx.max() if idx.max() >= n else idx.min()
        where = "the flattened input" if ax is None else f"axis {ax}"
        raise IndexError(f"take: index {int(bad)} is out of bounds for {where} with size {n} "
                         f"(input shape {x.shape})")
    if ax is None:
        return getitem(x.reshape(-1), (idx,))
    return getitem(x, (slice(None),) * ax + (idx,))


def _one_hot(idx: np.ndarray, *, num_classes: int, dtype: np.dtype) -> np.ndarray:
    # checked here, so that a replay checks its own indices too
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise ValueError(f"one_hot: indices must lie in [0, {num_classes}), got min {idx.min()} "
                         f"and max {idx.max()}")
    return np.eye(num_classes, dtype=dtype)[idx]


# An op (not a leaf made from the indices' values), so that a captured graph
# encodes each replay's targets.
ONE_HOT = defop("one_hot", _one_hot, differentiable=False)


@public(ONE_HOT)
def one_hot(indices: ArrayLike, num_classes: Optional[int] = None, dtype: Any = "float32") -> Tensor:
    """Rows of the identity: one_hot([2, 0], 3) = [[0,0,1],[1,0,0]]. Not differentiable.
    Without num_classes it is max(indices) + 1 (inside tg.capture: of the
    capture's indices, frozen into the graph; a CaptureWarning says so)."""
    t = indices if isinstance(indices, Tensor) else Tensor(np.asarray(indices))
    idx = t._data
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got dtype {idx.dtype}")
    if num_classes is None:
        n = int(idx.max()) + 1 if idx.size else 0
        rec = _tensor_mod._capture
        if rec is not None and rec.captured(t):
            rec.warn(f"one_hot's num_classes is inferred from the indices at capture "
                     f"({n}) and frozen into the graph; pass num_classes=")
    else:
        n = int(num_classes)
    return unary(ONE_HOT, t, num_classes=n, dtype=np.dtype(dtype))
