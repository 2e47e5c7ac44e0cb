"""Convolution: conv1d/conv2d, their transposes, the weight gradient, flatten.

PyTorch's layouts and argument order: input (N, C, H, W) or (N, C, L), weight
(O, C/groups, kH, kW) or (O, C/groups, k); conv_transpose weights are
(C_in, C_out/groups, ...). A convolution (PyTorch's: a cross-correlation) is

    out[n, o, i, j] = b[o] + Σ_{c, p, q} w[o, c, p, q] · x̂[n, g·Cg + c, i·s + p·d, j·s + q·d]

with x̂ the zero-padded input, g = o // (O/groups) the group of o and Cg = C/groups.

How it is computed (Chellapilla et al. 2006, "im2col"): a strided view of x̂
gathers every receptive field into one contiguous matrix `cols` of shape
(groups, Cg·kH·kW, N·OH·OW), so the convolution is ONE batched matrix product
W (groups, Og, Cg·kH·kW) @ cols, done by BLAS; no Python loop over positions.

The VJPs are ops of this file, so they differentiate again (create_graph,
second derivatives) and the backward view draws them:
- input:  conv_transpose(g, w): the adjoint of x ↦ conv(x, w). Computed as
  Wᵀ @ g (one matmul) then "col2im", a scatter-add of the columns back into the
  image: one strided add per kernel offset (kH·kW of them, not per position).
- weight: conv_weight(x, g) (PyTorch's torch.nn.grad.conv2d_weight):
  ∂L/∂w = g @ colsᵀ, one matmul per call.
- bias:   Σ_{n, i, j} g.
Each of these is linear in each argument, and its adjoints are the others:
<conv(x, w), g> = <x, conv_transpose(g, w)> = <w, conv_weight(x, g)>.

The ops are N-d for N = 1, 2 (conv1d runs as conv2d with H = 1). Their
`padding` attribute is one (before, after) pair per spatial axis: "same" with
an even kernel pads one more at the end (PyTorch's rule), and the VJPs of
transposed convolutions may need a negative `after` (trailing elements that
no output reads are cropped).
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Union

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..tensor import ArrayLike, Tensor, record
from .registry import OPS, as_tensor, constant

defop, public = OPS.defop, OPS.public

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "flatten"]

Pair = Union[int, Sequence[int]]
Pads = tuple[tuple[int, int], ...]


# ---------------------------------------------------------------------------
# numpy kernels, on 2 spatial axes (1-D arrays get H = 1 first)

def _as2d(x: np.ndarray, nd: int) -> np.ndarray:
    return x if nd == 2 else x[..., None, :]


def _lift(nd: int, v: tuple[Any, ...], neutral: Any) -> tuple[Any, ...]:
    """A 1-D attribute with the H axis's neutral value in front."""
    return v if nd == 2 else (neutral,) + tuple(v)


def _pad(x: np.ndarray, padding: Pads) -> np.ndarray:
    """Zero-pad (or crop, for negative amounts) the last two axes."""
    (top, bottom), (left, right) = padding
    if min(top, bottom, left, right) < 0:
        H, W = x.shape[-2:]
        x = x[..., max(-top, 0):H - max(-bottom, 0), max(-left, 0):W - max(-right, 0)]
        top, bottom, left, right = max(top, 0), max(bottom, 0), max(left, 0), max(right, 0)
    if not (top or bottom or left or right):
        return x
    N, C, H, W = x.shape
    out = np.zeros((N, C, H + top + bottom, W + left + right), dtype=x.dtype)
    out[:, :, top:top + H, left:left + W] = x
    return out


def _out_size(n: int, k: int, s: int, p: tuple[int, int], d: int) -> int:
    return (n + p[0] + p[1] - d * (k - 1) - 1) // s + 1


def _im2col(x: np.ndarray, ksize: tuple[int, int], stride: tuple[int, int], padding: Pads,
            dilation: tuple[int, int], groups: int) -> tuple[np.ndarray, int, int]:
    """The receptive fields of x as one contiguous (groups, Cg·kH·kW, N·OH·OW)
    matrix (a strided view of the padded input, copied once)."""
    xp = _pad(x, padding)
    N, C, Hp, Wp = xp.shape
    kH, kW = ksize
    (sh, sw), (dh, dw) = stride, dilation
    OH, OW = (Hp - dh * (kH - 1) - 1) // sh + 1, (Wp - dw * (kW - 1) - 1) // sw + 1
    Cg = C // groups
    bN, bC, bH, bW = xp.strides
    view = as_strided(xp, (groups, Cg, kH, kW, N, OH, OW),
                      (Cg * bC, bC, dh * bH, dw * bW, bN, sh * bH, sw * bW), writeable=False)
    cols = np.ascontiguousarray(view).reshape(groups, Cg * kH * kW, N * OH * OW)
    return cols, OH, OW


def _by_group(g: np.ndarray, groups: int) -> np.ndarray:
    """(N, O, OH, OW) -> (groups, O/groups, N·OH·OW), contiguous."""
    N, O, OH, OW = g.shape
    return np.ascontiguousarray(
        g.reshape(N, groups, O // groups, OH * OW).transpose(1, 2, 0, 3)).reshape(
            groups, O // groups, N * OH * OW)


def _conv2d(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], padding: Pads,
            dilation: tuple[int, int], groups: int) -> tuple[np.ndarray, np.ndarray]:
    """The convolution and its im2col matrix (which the weight gradient reuses)."""
    N = x.shape[0]
    O, Cg, kH, kW = w.shape
    cols, OH, OW = _im2col(x, (kH, kW), stride, padding, dilation, groups)
    out = np.matmul(w.reshape(groups, O // groups, Cg * kH * kW), cols)   # (G, Og, N·P)
    return np.ascontiguousarray(out.reshape(O, N, OH, OW).transpose(1, 0, 2, 3)), cols


def _conv2d_weight(x: np.ndarray, g: np.ndarray, kernel_size: tuple[int, int],
                   stride: tuple[int, int], padding: Pads, dilation: tuple[int, int],
                   groups: int) -> np.ndarray:
    cols, OH, OW = _im2col(x, kernel_size, stride, padding, dilation, groups)
    if (OH, OW) != g.shape[2:]:
        raise ValueError(f"the gradient's spatial shape {g.shape[2:]} is not the "
                         f"convolution's output shape {(OH, OW)}")
    O = g.shape[1]
    dw = np.matmul(_by_group(g, groups), cols.transpose(0, 2, 1))        # (G, Og, Cg·kH·kW)
    return dw.reshape((O, x.shape[1] // groups) + tuple(kernel_size))


def _conv_transpose2d(g: np.ndarray, w: np.ndarray, stride: tuple[int, int], padding: Pads,
                      output_padding: tuple[int, int], dilation: tuple[int, int],
                      groups: int) -> np.ndarray:
    N, O, OH, OW = g.shape
    _, Cg, kH, kW = w.shape
    C = Cg * groups
    (sh, sw), (dh, dw) = stride, dilation
    wm = w.reshape(groups, O // groups, Cg * kH * kW)
    dcols = np.matmul(wm.transpose(0, 2, 1), _by_group(g, groups))       # (G, Cg·kH·kW, N·P)
    dcols = dcols.reshape(groups, Cg, kH, kW, N, OH, OW)
    # col2im: each kernel offset adds its (N·OH·OW) block to a strided slice of
    # the full output, (OH-1)·s + d·(k-1) + 1 long, laid out (G, Cg, N, H, W)
    # like the columns so that the adds run along contiguous rows.
    (top, bottom), (left, right) = padding
    oph, opw = output_padding
    Hf, Wf = (OH - 1) * sh + dh * (kH - 1) + 1, (OW - 1) * sw + dw * (kW - 1) + 1
    H, W = Hf - top - bottom + oph, Wf - left - right + opw
    buf = np.zeros((groups, Cg, N, max(Hf, top + H), max(Wf, left + W)),
                   dtype=np.result_type(g.dtype, w.dtype))
    for p in range(kH):
        rows = slice(p * dh, p * dh + (OH - 1) * sh + 1, sh)
        for q in range(kW):
            buf[:, :, :, rows, q * dw:q * dw + (OW - 1) * sw + 1:sw] += dcols[:, :, p, q]
    out = buf[:, :, :, top:top + H, left:left + W]
    return np.ascontiguousarray(out.transpose(2, 0, 1, 3, 4)).reshape(N, C, H, W)


def _with_bias(nd: int, out: np.ndarray, b: Optional[np.ndarray]) -> np.ndarray:
    """The kernel's fresh output, the bias added in place (one pass and one
    large array fewer) unless numpy would promote the sum to a wider dtype."""
    out = out if nd == 2 else out[..., 0, :]
    if b is None:
        return out
    b = b.reshape((1, -1) + (1,) * nd)
    if np.result_type(out, b) != out.dtype:
        return out + b
    out += b
    return out


def _conv_fwd(nd: int) -> Any:
    def forward(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray] = None, *, stride: Any,
                padding: Pads, dilation: Any, groups: int) -> tuple[np.ndarray, np.ndarray]:
        out, cols = _conv2d(_as2d(x, nd), _as2d(w, nd), _lift(nd, stride, 1),
                            _lift(nd, padding, (0, 0)), _lift(nd, dilation, 1), groups)
        return _with_bias(nd, out, b), cols
    return forward


def _conv_transpose_fwd(nd: int) -> Any:
    def forward(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray] = None, *, stride: Any,
                padding: Pads, output_padding: Any, dilation: Any, groups: int) -> np.ndarray:
        out = _conv_transpose2d(_as2d(x, nd), _as2d(w, nd), _lift(nd, stride, 1),
                                _lift(nd, padding, (0, 0)), _lift(nd, output_padding, 0),
                                _lift(nd, dilation, 1), groups)
        return _with_bias(nd, out, b)
    return forward


def _output_padding(x_shape: Sequence[int], g_shape: Sequence[int], ksize: Sequence[int],
                    stride: Sequence[int], padding: Pads, dilation: Sequence[int]) -> tuple[int, ...]:
    """The trailing input elements a strided convolution never read: what its
    transpose must add back so that the gradient has the input's shape."""
    return tuple(n + p[0] + p[1] - ((m - 1) * s + d * (k - 1) + 1)
                 for n, m, k, s, p, d in zip(x_shape[2:], g_shape[2:], ksize, stride, padding,
                                             dilation))


def _conv_vjp(nd: int) -> Any:
    def vjp(i: int, g: Any, out: Any, x: Any, w: Any, b: Any = None, *, stride: Any,
            padding: Pads, dilation: Any, groups: int, saved: Optional[np.ndarray] = None) -> Any:
        if i == 0:
            op = _output_padding(x.shape, g.shape, w.shape[2:], stride, padding, dilation)
            return CONV_TRANSPOSE[nd](g, w, stride=stride, padding=padding, output_padding=op,
                                      dilation=dilation, groups=groups)
        if i == 1:
            if saved is not None:
                # conv_weight's forward on the im2col matrix the forward made (saved)
                dw = np.matmul(_by_group(_as2d(g, nd), groups), saved.transpose(0, 2, 1))
                return dw.reshape(w.shape)
            return CONV_WEIGHT[nd](x, g, kernel_size=tuple(w.shape[2:]), stride=stride,
                                   padding=padding, dilation=dilation, groups=groups)
        return g.sum(axis=(0,) + tuple(range(2, 2 + nd)))
    return vjp


def _conv_transpose_vjp(nd: int) -> Any:
    def vjp(i: int, g: Any, out: Any, x: Any, w: Any, b: Any = None, *, stride: Any,
            padding: Pads, output_padding: Any, dilation: Any, groups: int) -> Any:
        # y = conv_transpose(x, w) is the adjoint of conv(·, w) with padding
        # (before, after - output_padding): <y, g> = <x, conv(g, w)> = <w, conv_weight(g, x)>.
        pads = tuple((lo, hi - op) for (lo, hi), op in zip(padding, output_padding))
        if i == 0:
            return CONV[nd](g, w, stride=stride, padding=pads, dilation=dilation, groups=groups)
        if i == 1:
            return CONV_WEIGHT[nd](g, x, kernel_size=tuple(w.shape[2:]), stride=stride,
                                   padding=pads, dilation=dilation, groups=groups)
        return g.sum(axis=(0,) + tuple(range(2, 2 + nd)))
    return vjp


def _conv_weight_fwd(nd: int) -> Any:
    def forward(x: np.ndarray, g: np.ndarray, *, kernel_size: Any, stride: Any, padding: Pads,
                dilation: Any, groups: int) -> np.ndarray:
        dw = _conv2d_weight(_as2d(x, nd), _as2d(g, nd), _lift(nd, kernel_size, 1),
                            _lift(nd, stride, 1), _lift(nd, padding, (0, 0)),
                            _lift(nd, dilation, 1), groups)
        return dw if nd == 2 else dw[..., 0, :]
    return forward


def _conv_weight_vjp(nd: int) -> Any:
    def vjp(i: int, v: Any, out: Any, x: Any, g: Any, *, kernel_size: Any, stride: Any,
            padding: Pads, dilation: Any, groups: int) -> Any:
        # dw = conv_weight(x, g) is linear in x and in g; with v = ∂L/∂dw,
        # <dw, v> = <conv(x, v), g> = <x, conv_transpose(g, v)>.
        if i == 0:
            op = _output_padding(x.shape, g.shape, kernel_size, stride, padding, dilation)
            return CONV_TRANSPOSE[nd](g, v, stride=stride, padding=padding, output_padding=op,
                                      dilation=dilation, groups=groups)
        return CONV[nd](x, v, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return vjp


# They save their im2col matrix for the weight gradient (one copy of the input's
# windows fewer per backward; on Tensors, under create_graph, conv_weight recomputes it).
CONV1D = defop("conv1d", _conv_fwd(1), _conv_vjp(1), variadic=True, saves=True)
CONV2D = defop("conv2d", _conv_fwd(2), _conv_vjp(2), variadic=True, saves=True)
CONV_TRANSPOSE1D = defop("conv_transpose1d", _conv_transpose_fwd(1), _conv_transpose_vjp(1),
                         variadic=True)
CONV_TRANSPOSE2D = defop("conv_transpose2d", _conv_transpose_fwd(2), _conv_transpose_vjp(2),
                         variadic=True)
CONV1D_WEIGHT = defop("conv1d_weight", _conv_weight_fwd(1), _conv_weight_vjp(1), variadic=True)
CONV2D_WEIGHT = defop("conv2d_weight", _conv_weight_fwd(2), _conv_weight_vjp(2), variadic=True)
CONV = {1: CONV1D, 2: CONV2D}
CONV_TRANSPOSE = {1: CONV_TRANSPOSE1D, 2: CONV_TRANSPOSE2D}
CONV_WEIGHT = {1: CONV1D_WEIGHT, 2: CONV2D_WEIGHT}


# ---------------------------------------------------------------------------
# Argument checks (PyTorch's rules), shared by the public functions

_LAYOUT = {1: "(N, C, L)", 2: "(N, C, H, W)"}


def _tuple(v: Any, nd: int, fname: str, arg: str, least: int) -> tuple[int, ...]:
    """An int or an nd-sequence of ints, each >= least."""
    if isinstance(v, Tensor):
        v = constant(v, fname, arg)
    vals = (v,) * nd if isinstance(v, (int, np.integer)) else tuple(v)
    if len(vals) != nd or not all(isinstance(a, (int, np.integer)) for a in vals):
        raise ValueError(f"{fname}: {arg} must be an int or {nd} ints, got {v!r}")
    if any(a < least for a in vals):
        raise ValueError(f"{fname}: {arg} must be >= {least}, got {v!r}")
    return tuple(int(a) for a in vals)


def _operands(fname: str, nd: int, x: Any, w: Any, b: Any, groups: Any,
              transposed: bool) -> tuple[Tensor, Tensor, Optional[Tensor], int]:
    x, w = as_tensor(x, fname, 0), as_tensor(w, fname, 1)
    if x.ndim != nd + 2:
        raise ValueError(f"{fname}: expects a {nd + 2}-D input {_LAYOUT[nd]}, got shape "
                         f"{x.shape}" + (" (for one sample, add the batch axis: x[None])"
                                         if x.ndim == nd + 1 else ""))
    if w.ndim != nd + 2:
        raise ValueError(f"{fname}: expects a {nd + 2}-D weight, got shape {w.shape}")
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{fname}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    C = x.shape[1]
    if transposed:
        if w.shape[0] != C:
            raise ValueError(f"{fname}: input has {C} channels but weight of shape {w.shape} "
                             f"expects {w.shape[0]} (weight is (in, out/groups, ...); input "
                             f"shape {x.shape})")
        if C % groups:
            raise ValueError(f"{fname}: groups={groups} does not divide the {C} input channels "
                             f"(input shape {x.shape}, weight shape {w.shape})")
        outc = w.shape[1] * groups
    else:
        if C % groups or w.shape[0] % groups:
            raise ValueError(f"{fname}: groups={groups} must divide both the {C} input channels "
                             f"and the {w.shape[0]} output channels (input shape {x.shape}, "
                             f"weight shape {w.shape})")
        if w.shape[1] * groups != C:
            raise ValueError(f"{fname}: input has {C} channels but weight of shape {w.shape} "
                             f"expects {w.shape[1] * groups} (= weight.shape[1] * groups={groups}); "
                             f"input shape {x.shape}")
        outc = w.shape[0]
    if b is not None:
        b = as_tensor(b, fname, 2)
        if b.shape != (outc,):
            raise ValueError(f"{fname}: bias must have shape ({outc},) (one per output channel), "
                             f"got {b.shape} (weight shape {w.shape})")
    return x, w, b, groups


def _same_padding(fname: str, ksize: Sequence[int], stride: Sequence[int],
                  dilation: Sequence[int], padding: Any) -> Pads:
    if isinstance(padding, str):
        if padding == "valid":
            return tuple((0, 0) for _ in ksize)
        if padding != "same":
            raise ValueError(f"{fname}: padding must be an int, a tuple of ints, 'same' or "
                             f"'valid', got {padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError(f"{fname}: padding='same' is not supported for strided "
                             f"convolutions (stride={tuple(stride)})")
        # d·(k-1) in all; an odd total puts the extra one at the end, as PyTorch.
        return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                     for k, d in zip(ksize, dilation))
    return tuple((p, p) for p in _tuple(padding, len(ksize), fname, "padding", 0))


def _call(op: Any, x: Tensor, w: Tensor, b: Optional[Tensor], attrs: dict[str, Any]) -> Tensor:
    return record(op, (x, w) if b is None else (x, w, b), attrs)


def _conv(fname: str, nd: int, x: Any, w: Any, b: Any, stride: Any, padding: Any,
          dilation: Any, groups: Any) -> Tensor:
    x, w, b, groups = _operands(fname, nd, x, w, b, groups, transposed=False)
    st = _tuple(stride, nd, fname, "stride", 1)
    dl = _tuple(dilation, nd, fname, "dilation", 1)
    ks = w.shape[2:]
    pads = _same_padding(fname, ks, st, dl, padding)
    for n, k, p, d in zip(x.shape[2:], ks, pads, dl):
        if d * (k - 1) + 1 > n + p[0] + p[1]:
            padded = tuple(m + a + c for m, (a, c) in zip(x.shape[2:], pads))
            raise ValueError(f"{fname}: kernel of size {tuple(ks)} (dilation {dl}) is larger "
                             f"than the padded input {padded} (input shape {x.shape}, weight "
                             f"shape {w.shape}, padding {padding!r})")
    return _call(CONV[nd], x, w, b, {"stride": st, "padding": pads, "dilation": dl,
                                     "groups": groups})


def _conv_transpose(fname: str, nd: int, x: Any, w: Any, b: Any, stride: Any, padding: Any,
                    output_padding: Any, groups: Any, dilation: Any) -> Tensor:
    x, w, b, groups = _operands(fname, nd, x, w, b, groups, transposed=True)
    st = _tuple(stride, nd, fname, "stride", 1)
    dl = _tuple(dilation, nd, fname, "dilation", 1)
    if isinstance(padding, str):
        raise ValueError(f"{fname}: padding must be an int or a tuple of ints, got {padding!r}")
    pd = _tuple(padding, nd, fname, "padding", 0)
    op = _tuple(output_padding, nd, fname, "output_padding", 0)
    for o, s, d in zip(op, st, dl):
        if o >= max(s, d):
            raise ValueError(f"{fname}: output_padding {op} must be smaller than stride {st} or "
                             f"dilation {dl}")
    size = tuple((m - 1) * s - 2 * p + d * (k - 1) + o + 1
                 for m, s, p, d, k, o in zip(x.shape[2:], st, pd, dl, w.shape[2:], op))
    if any(n < 1 for n in size):
        raise ValueError(f"{fname}: the output would have size {size} (input shape {x.shape}, "
                         f"weight shape {w.shape}, padding {pd}): too much padding")
    return _call(CONV_TRANSPOSE[nd], x, w, b, {"stride": st, "padding": tuple((p, p) for p in pd),
                                               "output_padding": op, "dilation": dl,
                                               "groups": groups})


# ---------------------------------------------------------------------------
# Public functions

@public(CONV2D)
def conv2d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,  # noqa: A002
           stride: Pair = 1, padding: Union[str, Pair] = 0, dilation: Pair = 1,
           groups: int = 1) -> Tensor:
    """2-D convolution (PyTorch's torch.nn.functional.conv2d): input
    (N, C, H, W), weight (O, C/groups, kH, kW), bias (O,):

        out[n, o, i, j] = b[o] + Σ_{c,p,q} w[o, c, p, q] x̂[n, g·Cg + c, i·sₕ + p·dₕ, j·s_w + q·d_w]

    (g = the group of o, Cg = C/groups)

    x̂ zero-padded by `padding` (an int, a pair, "valid" = 0, or "same": the
    output keeps H×W, stride 1 only, an odd total d·(k-1) padding one more at
    the end). Output size ⌊(H + 2p - d·(k-1) - 1)/s⌋ + 1. `groups` splits the
    channels into independent convolutions. Gradients: conv_transpose2d for
    the input, conv2d_weight for the weight, Σ g for the bias."""
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


@public(CONV1D)
def conv1d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,  # noqa: A002
           stride: Pair = 1, padding: Union[str, Pair] = 0, dilation: Pair = 1,
           groups: int = 1) -> Tensor:
    """1-D convolution (torch.nn.functional.conv1d): input (N, C, L), weight
    (O, C/groups, k), bias (O,); out[n, o, i] = b[o] + Σ_{c,p} w[o, c, p] x̂[n, ·, i·s + p·d].
    Arguments as conv2d (single ints or 1-tuples)."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


@public(CONV_TRANSPOSE2D)
def conv_transpose2d(input: ArrayLike, weight: ArrayLike,  # noqa: A002
                     bias: Optional[ArrayLike] = None, stride: Pair = 1, padding: Pair = 0,
                     output_padding: Pair = 0, groups: int = 1, dilation: Pair = 1) -> Tensor:
    """Transposed 2-D convolution (torch.nn.functional.conv_transpose2d,
    same argument order): the adjoint of conv2d, i.e. the gradient of
    conv2d with respect to its input. Input (N, C_in, H, W), weight
    (C_in, C_out/groups, kH, kW): each input element scatters w·x into a
    kH×kW window at stride s; the result, (H-1)·s - 2p + d·(k-1) + output_padding + 1
    long, is cropped by `padding` at both ends."""
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


@public(CONV_TRANSPOSE1D)
def conv_transpose1d(input: ArrayLike, weight: ArrayLike,  # noqa: A002
                     bias: Optional[ArrayLike] = None, stride: Pair = 1, padding: Pair = 0,
                     output_padding: Pair = 0, groups: int = 1, dilation: Pair = 1) -> Tensor:
    """Transposed 1-D convolution (torch.nn.functional.conv_transpose1d):
    input (N, C_in, L), weight (C_in, C_out/groups, k); as conv_transpose2d."""
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def _conv_weight(fname: str, nd: int, input: Any, weight_size: Sequence[int], grad_output: Any,
                 stride: Any, padding: Any, dilation: Any, groups: Any) -> Tensor:
    x, g = as_tensor(input, fname, 0), as_tensor(grad_output, fname, 2)
    if len(weight_size) != nd + 2:
        raise ValueError(f"{fname}: weight_size must have {nd + 2} entries, got {weight_size}")
    w = np.empty(tuple(int(n) for n in weight_size), dtype=x.dtype)
    x, _, _, groups = _operands(fname, nd, x, w, None, groups, transposed=False)
    st = _tuple(stride, nd, fname, "stride", 1)
    dl = _tuple(dilation, nd, fname, "dilation", 1)
    pads = _same_padding(fname, w.shape[2:], st, dl, padding)
    expect = (x.shape[0], w.shape[0]) + tuple(
        _out_size(n, k, s, p, d) for n, k, s, p, d in zip(x.shape[2:], w.shape[2:], st, pads, dl))
    if g.shape != expect:
        raise ValueError(f"{fname}: grad_output has shape {g.shape}, but the convolution of an "
                         f"input {x.shape} with a weight {w.shape} gives {expect}")
    return record(CONV_WEIGHT[nd], (x, g), {"kernel_size": tuple(w.shape[2:]), "stride": st,
                                             "padding": pads, "dilation": dl, "groups": groups})


@public(CONV2D_WEIGHT, export=False)
def conv2d_weight(input: ArrayLike, weight_size: Sequence[int],  # noqa: A002
                  grad_output: ArrayLike, stride: Pair = 1, padding: Union[str, Pair] = 0,
                  dilation: Pair = 1, groups: int = 1) -> Tensor:
    """∂L/∂w of conv2d given input x and grad_output g = ∂L/∂out (PyTorch's
    torch.nn.grad.conv2d_weight):

        ∂L/∂w[o, c, p, q] = Σ_{n,i,j} g[n, o, i, j] x̂[n, ·, i·s + p·d, j·s + q·d]"""
    return _conv_weight("conv2d_weight", 2, input, weight_size, grad_output, stride, padding,
                        dilation, groups)


@public(CONV1D_WEIGHT, export=False)
def conv1d_weight(input: ArrayLike, weight_size: Sequence[int],  # noqa: A002
                  grad_output: ArrayLike, stride: Pair = 1, padding: Union[str, Pair] = 0,
                  dilation: Pair = 1, groups: int = 1) -> Tensor:
    """∂L/∂w of conv1d (torch.nn.grad.conv1d_weight)."""
    return _conv_weight("conv1d_weight", 1, input, weight_size, grad_output, stride, padding,
                        dilation, groups)


# ---------------------------------------------------------------------------
# flatten

FLATTEN = defop("flatten", lambda x, start_dim, end_dim: x.reshape(
    x.shape[:start_dim] + (math.prod(x.shape[start_dim:end_dim + 1]),) + x.shape[end_dim + 1:]),
    lambda g, out, x, start_dim, end_dim: g.reshape(x.shape))


@public(FLATTEN)
def flatten(x: ArrayLike, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    """Axes start_dim..end_dim merged into one, in row-major order (PyTorch's
    flatten; start_dim defaults to 1, as nn.Flatten, keeping the batch axis).
    (N, C, H, W) -> (N, C·H·W). Tensor.flatten() keeps numpy's meaning (all axes)."""
    x = as_tensor(x, "flatten", 0)
    nd = max(x.ndim, 1)
    for name, d in (("start_dim", start_dim), ("end_dim", end_dim)):
        if not -nd <= d < nd:
            raise ValueError(f"flatten: {name}={d} is out of range for an input of shape {x.shape}")
    s, e = start_dim % nd, end_dim % nd
    if s > e:
        raise ValueError(f"flatten: start_dim={start_dim} comes after end_dim={end_dim} "
                         f"(input shape {x.shape})")
    if x.ndim == 0:
        return x.reshape((1,))
    return record(FLATTEN, (x,), {"start_dim": s, "end_dim": e})
