"""Shape ops: the same elements rearranged, joined or split. Their VJPs
rearrange the gradient back (reshape, transpose by the inverse permutation,
slices of the joined gradient)."""
from __future__ import annotations

import builtins
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..tensor import ArrayLike, Tensor, record
from .indexing import GETITEM
from .registry import (OPS, Axis, as_operands, as_tensor, axes, constant, dim_alias, norm_axis,
                       shape_arg, torch_alias, unary)

defop, public = OPS.defop, OPS.public

RESHAPE = defop("reshape", lambda x, shape: np.reshape(x, shape),
                lambda g, out, x, shape: g.reshape(x.shape))


def _np_reshape(a: Any, shape: Any = None, order: str = "C", *, newshape: Any = None,
                copy: Any = None) -> Tensor:
    if order != "C":
        raise ValueError(f"reshape: only order='C' is supported, got {order!r}")
    return reshape(a, shape if shape is not None else newshape)


@public(RESHAPE, numpy={np.reshape: _np_reshape})
def reshape(x: ArrayLike, shape: Union[int, Sequence[int]]) -> Tensor:
    """The same elements in a new shape (one entry may be -1)."""
    return unary(RESHAPE, x, shape=(int(shape),) if isinstance(shape, (int, np.integer))
                 else shape_arg(tuple(shape)))


@public(None, method="reshape")
def _reshape_method(self: Tensor, *shape: Union[int, Sequence[int]]) -> Tensor:
    """The same elements in a new shape: `x.reshape(2, 3)` or `x.reshape((2, 3))`."""
    return reshape(self, shape_arg(shape))


@public(None, method=("ravel", "flatten"), numpy=np.ravel)
def ravel(x: ArrayLike) -> Tensor:
    """The elements as a 1-D tensor, in row-major order."""
    return reshape(x, (-1,))


TRANSPOSE = defop("transpose", lambda x, axes: np.transpose(x, axes),
                  # axes may be negative (numpy allows it): the inverse permutation
                  # is the argsort of the non-negative ones.
                  lambda g, out, x, axes: g.transpose(
                      None if axes is None else tuple(np.argsort([a % x.ndim for a in axes]))))


@public(TRANSPOSE, method=True, numpy={np.transpose: lambda a, axes=None: transpose(a, axes)})
def transpose(x: ArrayLike, *axes: Any) -> Tensor:
    """Permute the axes (reverse them when none are given), as numpy; the
    axes as separate arguments or one sequence. (PyTorch's transpose(d0, d1)
    swaps two axes: that is `swapaxes` here.)"""
    ax = shape_arg(axes) if axes and axes != (None,) else None
    return unary(TRANSPOSE, x, axes=ax)


@public(None, property="T")
def _T(self: Tensor) -> Tensor:
    """The axes reversed (numpy's .T)."""
    return transpose(self)


@public(None, method=True, numpy=np.swapaxes)
def swapaxes(x: ArrayLike, axis1: int, axis2: int) -> Tensor:
    """Exchange two axes."""
    x = as_tensor(x, "swapaxes", 0)
    a1, a2 = axes((axis1, axis2), x.ndim, f"swapaxes (input shape {x.shape})")
    perm = list(range(x.ndim))
    perm[a1], perm[a2] = perm[a2], perm[a1]
    return unary(TRANSPOSE, x, axes=tuple(perm))


@public(None, property="mT")
def _mT(self: Tensor) -> Tensor:
    """The last two axes exchanged (a batch of matrices transposed)."""
    return swapaxes(self, -1, -2)


EXPAND_DIMS = defop("expand_dims", lambda x, axis: np.expand_dims(x, axis),
                    lambda g, out, x, axis: g.reshape(x.shape))


@public(EXPAND_DIMS, method=("expand_dims", "unsqueeze"), numpy=np.expand_dims)
def expand_dims(x: ArrayLike, axis: Union[int, Sequence[int]]) -> Tensor:
    """Insert axes of size 1 at `axis`."""
    return unary(EXPAND_DIMS, x, axis=norm_axis(axis))


SQUEEZE = defop("squeeze", lambda x, axis: np.squeeze(x, axis),
                lambda g, out, x, axis: g.reshape(x.shape))


@public(SQUEEZE, method=True, numpy=np.squeeze)
def squeeze(x: ArrayLike, axis: Axis = None, *, dim: Axis = None) -> Tensor:
    """Remove axes of size 1 (all of them, or those in `axis`; dim= is axis=)."""
    axis, _ = torch_alias("squeeze", axis, False, dim, None)
    return unary(SQUEEZE, x, axis=norm_axis(axis))


# Its VJP is the identity: the engine's unbroadcast sums the stretched axes.
BROADCAST_TO = defop("broadcast_to", lambda x, shape: np.broadcast_to(x, shape),
                     lambda g, out, x, shape: g)


@public(BROADCAST_TO, method=True, numpy=np.broadcast_to)
def broadcast_to(x: ArrayLike, shape: Sequence[int]) -> Tensor:
    """x broadcast to `shape` (a read-only view); the gradient sums back."""
    return unary(BROADCAST_TO, x, shape=shape_arg(tuple(shape)))


FLIP = defop("flip", lambda x, axis: np.flip(x, axis), lambda g, out, x, axis: FLIP(g, axis=axis))


@public(FLIP, method=True, numpy=np.flip)
def flip(x: ArrayLike, axis: Axis = None, *, dims: Axis = None) -> Tensor:
    """Reverse the order of elements along `axis` (all axes when None;
    PyTorch's dims= is axis=)."""
    axis, _ = torch_alias("flip", axis, False, dims, None)
    return unary(FLIP, x, axis=norm_axis(axis))


def _concat_vjp(i: int, g: Any, out: Any, *xs: Any, axis: int) -> Any:
    ax = axis % out.ndim
    start = builtins.sum(x.shape[ax] for x in xs[:i])
    return GETITEM(g, index=(slice(None),) * ax + (slice(start, start + xs[i].shape[ax]),))


def _stack_vjp(i: int, g: Any, out: Any, *xs: Any, axis: int) -> Any:
    return GETITEM(g, index=(slice(None),) * (axis % out.ndim) + (i,))


CONCAT = defop("concat", lambda *xs, axis: np.concatenate(xs, axis=axis), _concat_vjp, variadic=True)
STACK = defop("stack", lambda *xs, axis: np.stack(xs, axis=axis), _stack_vjp, variadic=True)


def _tensors(xs: Sequence[ArrayLike], opname: str) -> tuple[Tensor, ...]:
    if isinstance(xs, (Tensor, np.ndarray)):
        raise TypeError(f"{opname}: expects a sequence of tensors, got a single {type(xs).__name__}")
    ts = as_operands(list(xs), opname)
    if not ts:
        raise ValueError(f"{opname}: needs at least one tensor")
    return ts


@public(CONCAT, numpy=np.concatenate)
def concat(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (numpy.concatenate). Items may be
    nested lists holding Tensors; they are stacked first, recorded."""
    return record(CONCAT, _tensors(tensors, "concat"), {"axis": int(axis)})


@public(None)
def cat(tensors: Sequence[ArrayLike], axis: int = 0, *, dim: Union[int, None] = None) -> Tensor:
    """PyTorch's spelling of `concat` (dim= is axis=)."""
    return concat(tensors, dim_alias("cat", axis, dim, 0))


@public(STACK, numpy=np.stack)
def stack(tensors: Sequence[ArrayLike], axis: int = 0, *, dim: Optional[int] = None) -> Tensor:
    """Join tensors along a new axis (dim= is axis=)."""
    axis = dim_alias("stack", axis, dim, 0)
    return record(STACK, _tensors(tensors, "stack"), {"axis": int(axis)})


@public(None, numpy=np.split)
def split(x: ArrayLike, indices_or_sections: Union[int, Sequence[int]], axis: int = 0) -> list[Tensor]:
    """Split into pieces along `axis`, as numpy.split: a number of equal
    sections, or the indices where to cut. Each piece is a slice of x."""
    x = as_tensor(x, "split", 0)
    (ax,) = axes(axis, x.ndim, f"split (input shape {x.shape})")
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


def _pad_vjp(g: Any, out: Any, x: Any, pad_width: Any, constant_values: float) -> Any:
    # `pad` records pad_width as one (before, after) pair per axis.
    return GETITEM(g, index=tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, x.shape)))


PAD = defop("pad", lambda x, pad_width, constant_values:
            np.pad(x, pad_width, mode="constant", constant_values=constant_values), _pad_vjp)


def _np_pad(x: Any, pad_width: Any, mode: str = "constant", constant_values: float = 0) -> Tensor:
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    return pad(x, pad_width, constant_values)


@public(PAD, numpy={np.pad: _np_pad})
def pad(x: ArrayLike, pad_width: Any, constant_values: float = 0) -> Tensor:
    """Pad with a constant (numpy.pad, mode="constant"); pad_width as numpy."""
    x = as_tensor(x, "pad", 0)
    pw = np.asarray(pad_width)
    if pw.dtype.kind not in "iu" or (pw < 0).any():
        raise ValueError(f"pad: pad_width must be non-negative integers, got {pad_width!r}")
    try:  # numpy's forms (p, (p,), (lo, hi), one pair per axis) as one pair per axis
        pw = np.broadcast_to(pw, (x.ndim, 2))
    except ValueError:
        raise ValueError(f"pad: pad_width {pad_width!r} does not fit an input of shape "
                         f"{x.shape}") from None
    constant_values = constant(constant_values, "pad", "constant_values")
    return unary(PAD, x, pad_width=pw.tolist(), constant_values=constant_values)
