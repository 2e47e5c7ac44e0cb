"""numpy's array-rearranging functions: repeat, tile, roll, diagonal, diag, sort.

Each moves elements without changing them, so each gradient moves g back:
a sum over the copies (repeat, tile), the opposite shift (roll), a scatter
into zeros (diagonal, diag, sort). The VJPs use Op objects, so they record
too (create_graph=True).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np

from ..tensor import ArrayLike, Tensor
from .indexing import INDEX_ADD
from .registry import OPS, as_tensor, axes, dim_alias, torch_alias, unary
from .shape import TRANSPOSE

defop, public = OPS.defop, OPS.public

__all__ = ['REPEAT', 'TILE', 'ROLL', 'DIAGONAL', 'DIAG', 'SORT', 'ARGSORT', 'repeat', 'tile',
           'roll', 'diagonal', 'diag', 'sort', 'argsort']


def _repeat_index(x_shape: tuple[int, ...], repeats: Any, axis: Optional[int]) -> tuple[Any, ...]:
    """The gather that `repeat` is: x.reshape(-1)[idx] or x[..., idx, ...]."""
    n = int(np.prod(x_shape)) if axis is None else x_shape[axis]
    idx = np.repeat(np.arange(n), repeats)
    return (idx,) if axis is None else (slice(None),) * axis + (idx,)


def _repeat_vjp(g: Any, out: Any, x: Any, repeats: Any, axis: Optional[int]) -> Any:
    # The backward of a gather is a scatter-add: each copy adds its g.
    index = _repeat_index(x.shape, repeats, axis)
    if axis is None:
        return INDEX_ADD(g, shape=(x.size,), index=index).reshape(x.shape)
    return INDEX_ADD(g, shape=x.shape, index=index)


REPEAT = defop("repeat", lambda x, repeats, axis: np.repeat(x, repeats, axis), _repeat_vjp)


@public(REPEAT, method=True, numpy=np.repeat)
def repeat(x: ArrayLike, repeats: Union[int, Sequence[int]], axis: Optional[int] = None) -> Tensor:
    """Repeat each element `repeats` times along `axis` (of the flattened x
    when None), as numpy.repeat: repeat([1, 2], 2) = [1, 1, 2, 2]. (PyTorch's
    Tensor.repeat is numpy's tile; use tg.tile for that.) The gradient sums
    the copies of each element."""
    x = as_tensor(x, "repeat")
    if axis is not None:
        (axis,) = axes(axis, x.ndim, f"repeat (input shape {x.shape})")
    r = np.asarray(repeats._data if isinstance(repeats, Tensor) else repeats)
    if r.size == 0:
        r = r.astype(np.int64)       # [] is float64 to numpy
    if r.dtype.kind not in "iu" or (r < 0).any() or r.ndim > 1:
        raise ValueError(f"repeat: repeats must be a non-negative int or 1-D sequence of them, "
                         f"got {repeats!r}")
    n = x.size if axis is None else x.shape[axis]
    if r.ndim == 1 and r.size not in (1, n):
        raise ValueError(f"repeat: {r.size} repeats for {n} elements along axis {axis} "
                         f"(input shape {x.shape})")
    return unary(REPEAT, x, repeats=int(r) if r.ndim == 0 else tuple(int(v) for v in r), axis=axis)


def _tile_vjp(g: Any, out: Any, x: Any, reps: tuple[int, ...]) -> Any:
    # out has shape r_i·s_i per axis, laid out as (r_0, s_0, r_1, s_1, ...):
    # sum over the r_i. x may have fewer axes than reps (numpy prepends 1s).
    shape = (1,) * (len(reps) - x.ndim) + tuple(x.shape)
    split = tuple(v for r, s in zip(reps, shape) for v in (r, s))
    return g.reshape(split).sum(axis=tuple(range(0, 2 * len(reps), 2))).reshape(x.shape)


TILE = defop("tile", lambda x, reps: np.tile(x, reps), _tile_vjp)


@public(TILE, method=True, numpy=np.tile)
def tile(x: ArrayLike, reps: Union[int, Sequence[int]]) -> Tensor:
    """x repeated `reps` times along each axis, as numpy.tile (PyTorch's
    Tensor.repeat): tile([1, 2], 2) = [1, 2, 1, 2]. The gradient sums the tiles."""
    x = as_tensor(x, "tile")
    r = (int(reps),) if isinstance(reps, (int, np.integer)) else tuple(int(v) for v in reps)
    if any(v < 0 for v in r):
        raise ValueError(f"tile: reps must be non-negative, got {reps!r}")
    r = (1,) * (x.ndim - len(r)) + r          # numpy: fewer reps than axes count from the right
    return unary(TILE, x, reps=r)


def _roll_vjp(g: Any, out: Any, x: Any, shift: Any, axis: Any) -> Any:
    neg = -shift if isinstance(shift, int) else tuple(-s for s in shift)
    return ROLL(g, shift=neg, axis=axis)


ROLL = defop("roll", lambda x, shift, axis: np.roll(x, shift, axis), _roll_vjp)


@public(ROLL, method=True, numpy=np.roll)
def roll(x: ArrayLike, shift: Union[int, Sequence[int]], axis: Any = None, *,
         dims: Any = None) -> Tensor:
    """Shift elements cyclically by `shift` along `axis` (of the flattened x
    when None), as numpy.roll; shift and axis may be tuples (each shift on its
    axis). The gradient rolls back by -shift. PyTorch's dims= is axis=."""
    axis, _ = torch_alias("roll", axis, False, dims, None)
    x = as_tensor(x, "roll")
    s = int(shift) if isinstance(shift, (int, np.integer)) else tuple(int(v) for v in shift)
    ax = axis
    if axis is not None:
        ax = axes(axis, x.ndim, f"roll (input shape {x.shape})")
        if isinstance(axis, (int, np.integer)):
            ax = ax[0]
        if isinstance(s, tuple) and isinstance(ax, tuple) and len(s) != len(ax) and len(s) != 1 \
                and len(ax) != 1:
            raise ValueError(f"roll: {len(s)} shifts for {len(ax)} axes (input shape {x.shape})")
    elif isinstance(s, tuple):
        s = sum(s)        # numpy: every shift applies to the flattened x
    return unary(ROLL, x, shift=s, axis=ax)


def _diagonal_index(shape: tuple[int, ...], offset: int) -> tuple[Any, ...]:
    """Index of the diagonal of the last two axes of `shape`."""
    n, m = shape[-2], shape[-1]
    k = max(0, min(n + min(offset, 0), m - max(offset, 0)))
    i = np.arange(k) + max(-offset, 0)
    return (Ellipsis, i, i + offset)


def _diagonal_vjp(g: Any, out: Any, x: Any, offset: int, axis1: int, axis2: int) -> Any:
    # diagonal = (move axis1, axis2 last) then x[..., i, i + offset]: scatter
    # g into zeros at those places and move the axes back.
    perm = [a for a in range(x.ndim) if a not in (axis1, axis2)] + [axis1, axis2]
    shape = tuple(x.shape[a] for a in perm)
    z = INDEX_ADD(g, shape=shape, index=_diagonal_index(shape, offset))
    return TRANSPOSE(z, axes=tuple(int(a) for a in np.argsort(perm)))


DIAGONAL = defop("diagonal", lambda x, offset, axis1, axis2:
                 np.diagonal(x, offset, axis1, axis2).copy(), _diagonal_vjp)


@public(DIAGONAL, method=True, numpy=np.diagonal)
def diagonal(x: ArrayLike, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The diagonal x[i, i + offset] of the axes (axis1, axis2), appended as
    the last axis, as numpy.diagonal (a copy here, not a read-only view).
    The gradient is g on that diagonal and 0 elsewhere."""
    x = as_tensor(x, "diagonal")
    if x.ndim < 2:
        raise ValueError(f"diagonal: needs at least 2 dimensions, got shape {x.shape}")
    a1, a2 = axes((axis1, axis2), x.ndim, f"diagonal (input shape {x.shape})")
    if a1 == a2:
        raise ValueError(f"diagonal: axis1 and axis2 cannot be the same axis ({axis1}, {axis2})")
    return unary(DIAGONAL, x, offset=int(offset), axis1=a1, axis2=a2)


DIAG = defop("diag", lambda v, k: np.diag(v, k),
             lambda g, out, v, k: DIAGONAL(g, offset=k, axis1=0, axis2=1))


@public(DIAG, method=True, numpy=np.diag)
def diag(v: ArrayLike, k: int = 0) -> Tensor:
    """numpy.diag: for a vector, the square matrix with v on its k-th
    diagonal; for a matrix, its k-th diagonal (as diagonal(v, k))."""
    v = as_tensor(v, "diag")
    if v.ndim == 1:
        return unary(DIAG, v, k=int(k))
    if v.ndim == 2:
        return diagonal(v, offset=k)
    raise ValueError(f"diag: input must be 1-D or 2-D, got shape {v.shape}")


def _sort(x: np.ndarray, axis: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
    if axis is None:
        x = x.reshape(-1)
    idx = np.argsort(x, axis=-1 if axis is None else axis, kind="stable")
    return np.take_along_axis(x, idx, axis=-1 if axis is None else axis), idx


def _sort_vjp(g: Any, out: Any, x: Any, axis: Optional[int], saved: Any = None) -> Any:
    # sort is a permutation: out[..., j] = x[..., idx[j]]; send g[j] back to idx[j].
    idx = saved if saved is not None else _sort(np.asarray(x), axis)[1]
    if axis is None:
        return INDEX_ADD(g, shape=(x.size,), index=(idx,)).reshape(x.shape)
    grids = np.ogrid[tuple(slice(n) for n in x.shape)]
    index = tuple(idx if a == axis else grids[a] for a in range(x.ndim))
    return INDEX_ADD(g, shape=x.shape, index=index)


SORT = defop("sort", _sort, _sort_vjp, saves=True)


@public(SORT, method=True, numpy=np.sort)
def sort(x: ArrayLike, axis: Optional[int] = -1, kind: Optional[str] = None, *,
         dim: Optional[int] = None) -> Tensor:
    """The values sorted ascending along `axis` (of the flattened x when None),
    as numpy.sort, with a stable order: equal values keep their order. The
    gradient goes back to where each value came from (with ties, to the
    element the stable order put there). `kind` (numpy's choice of
    algorithm) is accepted and changes nothing: every kind sorts to the same
    values. PyTorch's dim= is axis= (its values; the indices are `argsort`)."""
    axis = dim_alias("sort", axis, dim, -1)
    if kind not in (None, "quicksort", "mergesort", "heapsort", "stable"):
        raise ValueError(f"sort: unknown kind {kind!r}")
    x = as_tensor(x, "sort")
    if axis is not None:
        if x.ndim == 0:
            raise _axis_error(f"sort: axis {axis} is out of bounds for a 0-d tensor")
        (axis,) = axes(axis, x.ndim, f"sort (input shape {x.shape})")
    return unary(SORT, x, axis=axis)


ARGSORT = defop("argsort", lambda x, axis: np.argsort(x, axis=axis, kind="stable"),
                differentiable=False)


@public(ARGSORT, method=True, numpy=np.argsort)
def argsort(x: ArrayLike, axis: Optional[int] = -1, kind: Optional[str] = None, *,
            dim: Optional[int] = None) -> Tensor:
    """The indices that sort x along `axis` (the flattened x when None), as
    numpy.argsort, in the same stable order as `sort` (int64; not
    differentiable). PyTorch's `sort` returns (values, indices): here they
    are `sort(x)` and `argsort(x)`. dim= is axis=."""
    axis = dim_alias("argsort", axis, dim, -1)
    if kind not in (None, "quicksort", "mergesort", "heapsort", "stable"):
        raise ValueError(f"argsort: unknown kind {kind!r}")
    x = as_tensor(x, "argsort")
    if axis is not None:
        if x.ndim == 0:
            raise _axis_error(f"argsort: axis {axis} is out of bounds for a 0-d tensor")
        (axis,) = axes(axis, x.ndim, f"argsort (input shape {x.shape})")
    return unary(ARGSORT, x, axis=axis)


def _axis_error(msg: str) -> Exception:
    err = np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError  # type: ignore[attr-defined]
    return err(msg)


