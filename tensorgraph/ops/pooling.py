"""Pooling (chapter 5): max and average over sliding windows of the last one
or two axes, with PyTorch's names, arguments and layouts (NCL / NCHW, or
unbatched CL / CHW).

Every window of an axis of size n, with kernel k, stride s, padding p and
dilation d, starts at i·s - p (i = 0 .. out - 1) and reads k elements d apart;

    out = floor((n + 2p - d(k - 1) - 1)/s) + 1          (ceil with ceil_mode,
                                                         dropping a last window
                                                         that starts in the padding)

The windows are strided views of the (padded) input (numpy.lib.stride_tricks):
the forward loops over the k·k offsets inside a window, each step one
vectorised operation on every window at once, never over positions.

- `max_pool1d/2d`: y = max over the window (padding reads -inf). The forward
  saves where each maximum is (its offset inside the window, a small int: on
  ties the first in scan order, of NaNs the last, as PyTorch's CPU kernel);
  the VJP turns them into flat indices into x and is the op
  `max_pool_scatter` (g added at those positions), whose VJP is the op
  `max_pool_gather` (read at those positions) and back: both linear, so
  create_graph and second derivatives work.
- `avg_pool1d/2d`: y = Σ window / divisor (the window's size, counting
  padding or not, or `divisor_override`). Linear: its VJP is the op
  `avg_pool_backward` (g/divisor spread back over each window), whose VJP is
  the average pool again.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Optional, Sequence, Union

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..tensor import ArrayLike, Tensor
from .registry import OPS, as_tensor, unary

defop, public = OPS.defop, OPS.public

__all__ = ["max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d"]

IntOrPair = Union[int, Sequence[int]]


# ---------------------------------------------------------------------------
# Geometry: the windows of each pooled axis

def _ints(v: Any, nd: int, fn: str, arg: str) -> tuple[int, ...]:
    """An int or a sequence of nd ints, as a tuple of nd ints."""
    vals = tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd
    if len(vals) == 1 and nd > 1:
        vals = vals * nd
    if len(vals) != nd or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                                  for a in vals):
        raise TypeError(f"{fn}: {arg} must be an int or a sequence of {nd} ints, got {v!r}")
    return tuple(int(a) for a in vals)


def _out_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    # PyTorch's pooling_output_shape.
    span = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = span // s + 1
    if ceil_mode and (out - 1) * s >= n + p:   # the last window would start in the padding
        out -= 1
    return out


def _geometry(fn: str, shape: tuple[int, ...], nd: int, kernel_size: Any, stride: Any,
              padding: Any, dilation: Any, ceil_mode: bool) -> dict[str, Any]:
    """Check the arguments against the input's shape; the attrs the ops record."""
    names = "(C, L)" if nd == 1 else "(C, H, W)"
    batched = "(N, C, L)" if nd == 1 else "(N, C, H, W)"
    if len(shape) not in (nd + 1, nd + 2):
        raise ValueError(f"{fn}: expected a {nd + 1}-D {names} or {nd + 2}-D {batched} input, "
                         f"got shape {shape}")
    k = _ints(kernel_size, nd, fn, "kernel_size")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else _ints(stride, nd, fn, "stride")
    p = _ints(padding, nd, fn, "padding")
    d = _ints(dilation, nd, fn, "dilation")
    for arg, v in (("kernel_size", k), ("stride", s), ("dilation", d)):
        if min(v) <= 0:
            raise ValueError(f"{fn}: {arg} must be positive, got {v if nd > 1 else v[0]}")
    if min(p) < 0:
        raise ValueError(f"{fn}: padding must be non-negative, got {p if nd > 1 else p[0]}")
    if any(pi > ki // 2 for pi, ki in zip(p, k)):
        raise ValueError(f"{fn}: padding should be at most half of kernel_size, got padding "
                         f"{p if nd > 1 else p[0]} and kernel_size {k if nd > 1 else k[0]}")
    spatial = shape[-nd:]
    out = tuple(_out_size(n, *a, ceil_mode) for n, a in zip(spatial, zip(k, s, p, d)))
    if min(out) < 1:
        raise ValueError(f"{fn}: the window (kernel_size {k}, dilation {d}) is larger than the "
                         f"padded input: input shape {shape}, padding {p}, output size {out}")
    return {"kernel_size": k, "stride": s, "padding": p, "dilation": d,
            "ceil_mode": bool(ceil_mode)}


def _pads(spatial: tuple[int, ...], kernel_size: tuple[int, ...], stride: tuple[int, ...],
          padding: tuple[int, ...], dilation: tuple[int, ...], ceil_mode: bool
          ) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """Output sizes, and the (before, after) padding per axis that makes every
    window fit (ceil_mode's last window may reach past the padding)."""
    out = tuple(_out_size(n, k, s, p, d, ceil_mode)
                for n, k, s, p, d in zip(spatial, kernel_size, stride, padding, dilation))
    pads = tuple((p, max(p, (o - 1) * s + d * (k - 1) + 1 - n - p))
                 for n, o, k, s, p, d in zip(spatial, out, kernel_size, stride, padding, dilation))
    return out, pads


def _windows(xp: np.ndarray, out: tuple[int, ...], kernel_size: tuple[int, ...],
             stride: tuple[int, ...], dilation: tuple[int, ...]) -> np.ndarray:
    """The windows as a strided view of shape (..., *out, *kernel_size)."""
    nd = len(out)
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel_size, dilation))
    w = sliding_window_view(xp, span, axis=tuple(range(-nd, 0)))
    index = (Ellipsis,) + tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(out, stride)) \
        + tuple(slice(None, None, d) for d in dilation)
    return w[index]


def _padded(x: np.ndarray, pads: tuple[tuple[int, int], ...], value: float) -> np.ndarray:
    if not any(a or b for a, b in pads):
        return x
    return np.pad(x, ((0, 0),) * (x.ndim - len(pads)) + pads, constant_values=value)


def _offsets(kernel_size: tuple[int, ...]) -> list[tuple[int, ...]]:
    return list(itertools.product(*(range(k) for k in kernel_size)))


# ---------------------------------------------------------------------------
# Max pooling

def _offset_dtype(kernel_size: tuple[int, ...]) -> Any:
    """The smallest integer type that numbers every offset inside a window."""
    k = math.prod(kernel_size)
    return np.int8 if k <= 127 else np.int16 if k <= 32767 else np.int32


def _first_inside(spatial: tuple[int, ...], out: tuple[int, ...], kernel_size: tuple[int, ...],
                  stride: tuple[int, ...], padding: tuple[int, ...], dilation: tuple[int, ...]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per window (shape out): its first offset (in scan order) inside x, and
    whether it has none (with dilation a padded window can step over x)."""
    nd = len(out)
    k0 = np.zeros(out, np.intp)
    empty = np.zeros(out, bool)
    for ax, (n, o, k, s, p, d) in enumerate(zip(spatial, out, kernel_size, stride, padding,
                                                dilation)):
        start = np.arange(o) * s - p
        a0 = np.where(start < 0, (-start + d - 1) // d, 0)
        shape = [1] * nd
        shape[ax] = o
        empty = empty | ((a0 >= k) | (start + a0 * d >= n)).reshape(shape)
        k0 = k0 * k + np.minimum(a0, k - 1).reshape(shape)
    return k0, empty


def _max_pool(x: np.ndarray, kernel_size: tuple[int, ...], stride: tuple[int, ...],
              padding: tuple[int, ...], dilation: tuple[int, ...], ceil_mode: bool
              ) -> tuple[np.ndarray, np.ndarray]:
    """(max over each window, the offset inside its window of the element
    chosen: the first maximum in scan order, or the last NaN)."""
    nd = len(kernel_size)
    spatial = x.shape[-nd:]
    out, pads = _pads(spatial, kernel_size, stride, padding, dilation, ceil_mode)
    w = _windows(_padded(x, pads, -np.inf), out, kernel_size, stride, dilation)
    offsets = _offsets(kernel_size)
    best, arg = _scan(w, x.dtype, offsets, spatial, out, kernel_size, stride, padding, dilation,
                      pads, nan=False)
    # A NaN propagates through np.maximum into its window's result: only then
    # scan again, with NaN winning (checking the output, not all of x).
    if np.isnan(best).any():
        best, arg = _scan(w, x.dtype, offsets, spatial, out, kernel_size, stride, padding,
                          dilation, pads, nan=True)
    return best, arg


def _scan(w: np.ndarray, dtype: Any, offsets: list[tuple[int, ...]], spatial: tuple[int, ...],
          out: tuple[int, ...], kernel_size: tuple[int, ...], stride: tuple[int, ...],
          padding: tuple[int, ...], dilation: tuple[int, ...],
          pads: tuple[tuple[int, int], ...], nan: bool) -> tuple[np.ndarray, np.ndarray]:
    """One pass per offset of the windows `w`: the running maximum and its offset."""
    nd = len(kernel_size)
    dt = _offset_dtype(kernel_size)
    if not any(a or b for a, b in pads):
        best = w[(Ellipsis,) + offsets[0]].copy()
        arg = np.zeros(best.shape, dt)
        first = 1
    else:
        # Start below every real element: padding (-inf) never wins, and a
        # window of -inf keeps its first element inside x (PyTorch's rule).
        best = np.full(w.shape[:-nd], -np.inf, dtype)
        arg = np.empty(best.shape, dt)
        arg[...] = _first_inside(spatial, out, kernel_size, stride, padding, dilation)[0]
        first = 0
    for j in range(first, len(offsets)):
        v = w[(Ellipsis,) + offsets[j]]
        hit = v > best
        if nan:
            hit |= np.isnan(v)      # a NaN wins (the last one, as PyTorch); maximum keeps it
        np.maximum(best, v, out=best)
        # arg = j where hit: arithmetic on the small ints beats np.where/copyto(where=)
        arg += hit.view(np.int8).astype(dt, copy=False) * (dt(j) - arg)
    return best, arg


def _flat_indices(shape: tuple[int, ...], arg: np.ndarray, kernel_size: tuple[int, ...],
                  stride: tuple[int, ...], padding: tuple[int, ...], dilation: tuple[int, ...],
                  ceil_mode: bool) -> np.ndarray:
    """The chosen offsets (`_max_pool`'s) as flat indices into x; -1 for a
    window with no element of x."""
    nd = len(kernel_size)
    spatial = tuple(shape[-nd:])
    out = arg.shape[-nd:]
    step = [math.prod(spatial[i + 1:]) for i in range(nd)]
    # the flat distance from a window's start to each offset inside it
    table = np.zeros(1, np.intp)
    for k, d, st in zip(kernel_size, dilation, step):
        table = (table[:, None] + np.arange(k) * d * st).reshape(-1)
    base = np.zeros(out, np.intp)
    for ax, (o, s, p, st) in enumerate(zip(out, stride, padding, step)):
        view = [1] * nd
        view[ax] = o
        base = base + ((np.arange(o) * s - p) * st).reshape(view)
    lead = shape[:-nd]
    base = base + (np.arange(math.prod(lead), dtype=np.intp) * math.prod(spatial)
                   ).reshape(lead + (1,) * nd)
    flat = np.take(table, arg)
    flat += base
    if any(padding) and any(d > 1 for d in dilation):
        empty = _first_inside(spatial, out, kernel_size, stride, padding, dilation)[1]
        if empty.any():
            flat[..., empty] = -1       # the scatter drops it, the gather reads 0
    return flat


def _max_pool_vjp(g: Any, out: Any, x: Any, kernel_size: tuple[int, ...],
                  stride: tuple[int, ...], padding: tuple[int, ...], dilation: tuple[int, ...],
                  ceil_mode: bool, saved: Any = None) -> Any:
    geometry = (kernel_size, stride, padding, dilation, ceil_mode)
    arg = saved if saved is not None else _max_pool(_array(x), *geometry)[1]
    idx = _flat_indices(tuple(x.shape), arg, *geometry)
    return MAX_POOL_SCATTER(g, idx, shape=tuple(x.shape),
                            overlapping=_overlapping(kernel_size, stride, dilation))


def _array(x: Any) -> np.ndarray:
    return x._data if isinstance(x, Tensor) else x


def _overlapping(kernel_size: tuple[int, ...], stride: tuple[int, ...],
                 dilation: tuple[int, ...]) -> bool:
    """Whether two windows can share an element (then a scatter must add)."""
    return any(s < d * (k - 1) + 1 for k, s, d in zip(kernel_size, stride, dilation))


def _scatter(g: np.ndarray, idx: np.ndarray, shape: tuple[int, ...],
             overlapping: bool) -> np.ndarray:
    """zeros(shape) with g[i] added at the flat position idx[i]."""
    size = math.prod(shape)
    if idx.size and idx.min() < 0:      # windows with no element of x (see _max_pool)
        keep = idx >= 0
        idx, g = idx[keep], g[keep]
    if overlapping:
        out = np.bincount(idx.ravel(), weights=g.ravel(), minlength=size)
        return out.astype(g.dtype, copy=False).reshape(shape)
    out = np.zeros(size, g.dtype)
    out[idx.ravel()] = g.ravel()      # distinct positions: no two windows share one
    return out.reshape(shape)


def _gather(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """x's elements at the flat positions idx; 0 where idx is -1 (no element)."""
    if idx.size and idx.min() < 0:
        return np.where(idx >= 0, np.take(x.reshape(-1), np.maximum(idx, 0)), 0).astype(x.dtype)
    return np.take(x.reshape(-1), idx)


# Both linear in their first input; the indices are integers (no gradient).
MAX_POOL_GATHER: Any
MAX_POOL_SCATTER = defop(
    "max_pool_scatter", lambda g, idx, shape, overlapping: _scatter(g, idx, shape, overlapping),
    lambda gg, out, g, idx, shape, overlapping: MAX_POOL_GATHER(gg, idx, overlapping=overlapping),
    None)
MAX_POOL_GATHER = defop(
    "max_pool_gather", lambda x, idx, overlapping: _gather(x, idx),
    lambda g, out, x, idx, overlapping: MAX_POOL_SCATTER(g, idx, shape=tuple(x.shape),
                                                         overlapping=overlapping),
    None)

MAX_POOL1D = defop("max_pool1d", _max_pool, _max_pool_vjp, saves=True)
MAX_POOL2D = defop("max_pool2d", _max_pool, _max_pool_vjp, saves=True)


def _float_input(x: ArrayLike, fn: str) -> Tensor:
    t = as_tensor(x, fn, 0)
    if t.dtype.kind != "f":
        raise TypeError(f"{fn}: expects a floating-point input, got dtype {t.dtype} "
                        f"(shape {t.shape})")
    return t


def _max_pool_public(op: Any, fn: str, nd: int, x: ArrayLike, kernel_size: Any, stride: Any,
                     padding: Any, dilation: Any, ceil_mode: bool, return_indices: bool) -> Tensor:
    if return_indices:
        raise NotImplementedError(f"{fn}: return_indices=True is not supported (the gradient "
                                  "already goes to the maximum of each window)")
    t = _float_input(x, fn)
    attrs = _geometry(fn, t.shape, nd, kernel_size, stride, padding, dilation, ceil_mode)
    return unary(op, t, **attrs)


@public(MAX_POOL2D)
def max_pool2d(x: ArrayLike, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
               padding: IntOrPair = 0, dilation: IntOrPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor:
    """2-D max pooling over (N, C, H, W) or (C, H, W), as torch.nn.functional.max_pool2d:

        y[n, c, i, j] = max_{a < kH, b < kW} x[n, c, i·sH - pH + a·dH, j·sW - pW + b·dW]

    with -inf outside x. `stride` defaults to `kernel_size`; `padding` at most
    half the kernel; `ceil_mode` rounds the output size up. The gradient goes
    to the maximum of each window, on ties to the first in scan order (as PyTorch)."""
    return _max_pool_public(MAX_POOL2D, "max_pool2d", 2, x, kernel_size, stride, padding,
                            dilation, ceil_mode, return_indices)


@public(MAX_POOL1D)
def max_pool1d(x: ArrayLike, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
               padding: IntOrPair = 0, dilation: IntOrPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor:
    """1-D max pooling over (N, C, L) or (C, L), as torch.nn.functional.max_pool1d:
    y[n, c, i] = max_{a < k} x[n, c, i·s - p + a·d] (-inf outside x)."""
    return _max_pool_public(MAX_POOL1D, "max_pool1d", 1, x, kernel_size, stride, padding,
                            dilation, ceil_mode, return_indices)


# ---------------------------------------------------------------------------
# Average pooling

def _divisor(spatial: tuple[int, ...], out: tuple[int, ...], kernel_size: tuple[int, ...],
             stride: tuple[int, ...], padding: tuple[int, ...], count_include_pad: bool,
             divisor_override: Optional[int]) -> Any:
    """What each window's sum is divided by, shaped (*out) (PyTorch's rule:
    the window clipped to the padded input, or to the input itself)."""
    if divisor_override is not None:
        return divisor_override
    nd = len(out)
    div: Any = 1
    for ax, (n, o, k, s, p) in enumerate(zip(spatial, out, kernel_size, stride, padding)):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, n)
        shape = [1] * nd
        shape[ax] = o
        div = div * (end - start).reshape(shape)
    return div


def _avg_pool(x: np.ndarray, kernel_size: tuple[int, ...], stride: tuple[int, ...],
              padding: tuple[int, ...], ceil_mode: bool, count_include_pad: bool,
              divisor_override: Optional[int]) -> np.ndarray:
    nd = len(kernel_size)
    ones = (1,) * nd
    out, pads = _pads(x.shape[-nd:], kernel_size, stride, padding, ones, ceil_mode)
    w = _windows(_padded(x, pads, 0), out, kernel_size, stride, ones)
    offsets = _offsets(kernel_size)
    acc = w[(Ellipsis,) + offsets[0]].copy()
    for o in offsets[1:]:
        acc += w[(Ellipsis,) + o]
    div = _divisor(x.shape[-nd:], out, kernel_size, stride, padding, count_include_pad,
                   divisor_override)
    acc /= np.asarray(div, dtype=x.dtype)
    return acc


def _avg_pool_backward(g: np.ndarray, shape: tuple[int, ...], kernel_size: tuple[int, ...],
                       stride: tuple[int, ...], padding: tuple[int, ...], ceil_mode: bool,
                       count_include_pad: bool, divisor_override: Optional[int]) -> np.ndarray:
    """The adjoint of `_avg_pool`: g/divisor added over each window, the padding cut off."""
    nd = len(kernel_size)
    ones = (1,) * nd
    spatial = tuple(shape[-nd:])
    out, pads = _pads(spatial, kernel_size, stride, padding, ones, ceil_mode)
    gd = g / np.asarray(_divisor(spatial, out, kernel_size, stride, padding, count_include_pad,
                                 divisor_override), dtype=g.dtype)
    full = np.zeros(tuple(shape[:-nd]) + tuple(n + a + b for n, (a, b) in zip(spatial, pads)),
                    g.dtype)
    for o in _offsets(kernel_size):
        # One offset's elements of all windows are distinct (stride >= 1): += is safe.
        full[(Ellipsis,) + tuple(slice(a, a + (m - 1) * s + 1, s)
                                 for a, m, s in zip(o, out, stride))] += gd
    return full[(Ellipsis,) + tuple(slice(a, a + n) for (a, _), n in zip(pads, spatial))]


def _avg_pool_vjp(g: Any, out: Any, x: Any, **attrs: Any) -> Any:
    return AVG_POOL_BACKWARD(g, shape=tuple(x.shape), **attrs)


def _avg_pool_backward_vjp(gg: Any, out: Any, g: Any, shape: tuple[int, ...], **attrs: Any) -> Any:
    return (AVG_POOL1D if len(attrs["kernel_size"]) == 1 else AVG_POOL2D)(gg, **attrs)


AVG_POOL1D = defop("avg_pool1d", _avg_pool, _avg_pool_vjp)
AVG_POOL2D = defop("avg_pool2d", _avg_pool, _avg_pool_vjp)
AVG_POOL_BACKWARD = defop("avg_pool_backward", _avg_pool_backward, _avg_pool_backward_vjp)


def _avg_pool_public(op: Any, fn: str, nd: int, x: ArrayLike, kernel_size: Any, stride: Any,
                     padding: Any, ceil_mode: bool, count_include_pad: bool,
                     divisor_override: Optional[int]) -> Tensor:
    t = _float_input(x, fn)
    attrs = _geometry(fn, t.shape, nd, kernel_size, stride, padding, 1, ceil_mode)
    del attrs["dilation"]
    if divisor_override is not None and (not isinstance(divisor_override, (int, np.integer))
                                         or isinstance(divisor_override, bool)
                                         or divisor_override <= 0):
        raise ValueError(f"{fn}: divisor_override must be a positive int or None, "
                         f"got {divisor_override!r}")
    return unary(op, t, **attrs, count_include_pad=bool(count_include_pad),
                 divisor_override=None if divisor_override is None else int(divisor_override))


@public(AVG_POOL2D)
def avg_pool2d(x: ArrayLike, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
               padding: IntOrPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
    """2-D average pooling over (N, C, H, W) or (C, H, W), as
    torch.nn.functional.avg_pool2d:

        y[n, c, i, j] = Σ_{a < kH, b < kW} x[n, c, i·sH - pH + a, j·sW - pW + b] / D[i, j]

    with 0 outside x; D is kH·kW (the window clipped to the padded input, in
    ceil_mode), or with count_include_pad=False the number of elements of x
    in the window, or `divisor_override`. Linear in x: the gradient spreads
    g/D evenly back over each window."""
    return _avg_pool_public(AVG_POOL2D, "avg_pool2d", 2, x, kernel_size, stride, padding,
                            ceil_mode, count_include_pad, divisor_override)


@public(AVG_POOL1D)
def avg_pool1d(x: ArrayLike, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
               padding: IntOrPair = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """1-D average pooling over (N, C, L) or (C, L), as torch.nn.functional.avg_pool1d:
    y[n, c, i] = Σ_{a < k} x[n, c, i·s - p + a] / D[i] (see avg_pool2d for D)."""
    return _avg_pool_public(AVG_POOL1D, "avg_pool1d", 1, x, kernel_size, stride, padding,
                            ceil_mode, count_include_pad, None)
