"""ONNX rules and converters for pooling and batch normalisation (chapter 5):
MaxPool, AveragePool, BatchNormalization (inference form), and the refusals
of what has no inference meaning (training-mode batch norm, the backward ops).

Imported at the bottom of rules.py, so that `RULES` and `CONVERTERS` hold
these entries whenever the package is.

Windows: the rules write PyTorch's windows with explicit pads, never ONNX's
ceil_mode, so no runtime's reading of a ceil window that starts in the
padding matters: ceil_mode's extra last window becomes extra padding at the
end (-inf for MaxPool; for AveragePool the divisor is corrected where it
differs from ONNX's count).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..graph import Value
from .importer import CONVERTERS, OnnxLoadError, _Builder
from .rules import REFUSED, Context, Unsupported, rule
from .rules_grad import _Grad, _vjp

REFUSED.update({
    "batch_norm_train": "batch normalisation in training mode normalises with each batch's own "
                        "statistics and updates the running ones; call .eval() on the model "
                        "before exporting, where it uses the running statistics "
                        "(ONNX BatchNormalization)",
    "batch_norm_stats": "it feeds the running statistics' update of batch norm in training mode; "
                        "call .eval() on the model before exporting",
    "max_pool_scatter": "it is the backward of max pooling; export the forward pass",
    "max_pool_gather": "it is the backward of max pooling's backward; export the forward pass",
    "avg_pool_backward": "it is the backward of average pooling; export the forward pass",
})


# Their gradients in a captured training step (`{op}_vjp{i}`) have rules below
# (section "Gradients"), except where the forward itself is refused, and the
# second derivatives.
REFUSED.update(dict.fromkeys(
    ("batch_norm_train_vjp0", "batch_norm_train_vjp1", "batch_norm_train_vjp2"),
    "it is the gradient of batch norm in training mode, whose forward (batch_norm_train) is "
    "not exported; call .eval() on the model before exporting"))
REFUSED.update(dict.fromkeys(
    ("max_pool_scatter_vjp0", "max_pool_gather_vjp0", "avg_pool_backward_vjp0"),
    "it is a second derivative of pooling (a backward op differentiated again); export the "
    "forward pass"))


def _geometry(node: Any) -> tuple[int, tuple[int, ...], list[int], list[int]]:
    """(nd, spatial sizes, pads at the start, pads at the end incl. ceil_mode's extra)."""
    return _geometry_of(node.attrs, node.inputs[0].shape, node.output.shape)


def _geometry_of(a: dict[str, Any], in_shape: Any, out_shape: Any
                 ) -> tuple[int, tuple[int, ...], list[int], list[int]]:
    k, s, p = a["kernel_size"], a["stride"], a["padding"]
    d = a.get("dilation", (1,) * len(k))
    nd = len(k)
    spatial = tuple(in_shape[-nd:])
    if None in spatial:
        raise Unsupported("pooling over an open (None) spatial size: capture with fixed "
                          "image sizes (only the batch may be open)")
    out = tuple(out_shape[-nd:])
    end = [max(pi, (o - 1) * si + di * (ki - 1) + 1 - n - pi)
           for n, o, ki, si, pi, di in zip(spatial, out, k, s, p, d)]
    return nd, spatial, list(p), end


def _divisors(a: dict[str, Any], spatial: tuple[int, ...], out: tuple[int, ...],
              end: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """What each window's sum is divided by (shape out): by ONNX's AveragePool
    with these explicit pads, and by PyTorch (the window clipped to the input
    padded by p, not ceil_mode's extra; its elements of x; or divisor_override)."""
    k, s, p = a["kernel_size"], a["stride"], a["padding"]
    cip, override = a["count_include_pad"], a.get("divisor_override")
    nd = len(k)
    onnx_div, torch_div = np.ones(out), np.ones(out)
    for ax, (n, o, ki, si, pi, e) in enumerate(zip(spatial, out, k, s, p, end)):
        start = np.arange(o) * si - pi
        shape = [1] * nd
        shape[ax] = o
        inside = np.minimum(start + ki, n) - np.maximum(start, 0)
        padded = np.minimum(start + ki, n + e) - start if cip else inside
        clipped = np.minimum(start + ki, n + pi) - start if cip else inside
        onnx_div = onnx_div * padded.reshape(shape)
        torch_div = torch_div * clipped.reshape(shape)
    if override is not None:
        torch_div = np.full(out, float(override))
    return onnx_div, torch_div


def _batched(ctx: Context, node: Any, x: str, nd: int) -> tuple[str, bool]:
    """ONNX pools need (N, C, ...): an unbatched (C, ...) input gets N = 1."""
    if len(node.inputs[0].shape) == nd + 1:
        return ctx.op("Unsqueeze", x, ctx.ints([0])), True
    return x, False


def _unbatched(ctx: Context, y: str, squeeze: bool) -> str:
    return ctx.op("Squeeze", y, ctx.ints([0])) if squeeze else y


@rule("max_pool1d", "max_pool2d")
def _max_pool(ctx: Context, node: Any, xs: list[str]) -> str:
    nd, _, begin, end = _geometry(node)
    a = node.attrs
    x, squeeze = _batched(ctx, node, xs[0], nd)
    y = ctx.op("MaxPool", x, kernel_shape=list(a["kernel_size"]), strides=list(a["stride"]),
               pads=begin + end, dilations=list(a["dilation"]), ceil_mode=0)
    return _unbatched(ctx, y, squeeze)


@rule("avg_pool1d", "avg_pool2d")
def _avg_pool(ctx: Context, node: Any, xs: list[str]) -> str:
    nd, spatial, begin, end = _geometry(node)
    a = node.attrs
    k, s = a["kernel_size"], a["stride"]
    out = tuple(node.output.shape[-nd:])
    x, squeeze = _batched(ctx, node, xs[0], nd)
    cip = a["count_include_pad"]
    onnx_div, torch_div = _divisors(a, spatial, out, end)
    y = ctx.op("AveragePool", x, kernel_shape=list(k), strides=list(s), pads=begin + end,
               count_include_pad=int(cip), ceil_mode=0)
    if not np.array_equal(onnx_div, torch_div):
        dtype = node.output.dtype
        y = ctx.op("Mul", y, ctx.const((onnx_div / torch_div).astype(dtype), "divisor"))
    return _unbatched(ctx, y, squeeze)


@rule("batch_norm")
def _batch_norm(ctx: Context, node: Any, xs: list[str]) -> str:
    # Inputs in ONNX's order: X, scale, B, mean, var (ours: x, mean, var, weight, bias).
    x, mean, var, weight, bias = xs
    dtype = node.output.dtype
    ins = [ctx.cast(n, v.dtype, dtype) for n, v in zip((x, weight, bias, mean, var),
                                                       [node.inputs[i] for i in (0, 3, 4, 1, 2)])]
    return ctx.op("BatchNormalization", *ins, epsilon=float(node.attrs["eps"]), training_mode=0)


# ---------------------------------------------------------------------------
# Gradients (`{op}_vjp{i}` of a captured tg.grad / loss.backward(); see rules_grad.py):
# the formulas of the VJPs in tensorgraph/ops/pooling.py and normalization.py.

def _to_batched(d: _Grad, name: str, nd: int) -> str:
    return d.op("Unsqueeze", name, d.ctx.ints([0])) if d.nd(0) == nd + 1 else name


def _from_batched(d: _Grad, name: str, nd: int) -> str:
    return d.op("Squeeze", name, d.ctx.ints([0])) if d.nd(0) == nd + 1 else name


@_vjp("max_pool1d", 0)
@_vjp("max_pool2d", 0)
def _max_pool_grad(d: _Grad) -> str:
    # g added at the positions MaxPool's Indices name (flat over the whole input,
    # padding not counted): ScatterElements with reduction "add" into zeros.
    a = d.attrs
    nd, _, begin, end = _geometry_of(a, d.vals[0].shape, d.node.inputs[1].shape)
    x = _to_batched(d, d.x(0), nd)
    g = _to_batched(d, d.g, nd)
    y = d.ctx.fresh(f"{d.ctx.prefix}/MaxPool")
    idx = d.ctx.fresh(f"{d.ctx.prefix}/MaxPool_indices")
    d.ctx.nodes.append(d.ctx.onnx.helper.make_node(
        "MaxPool", [x], [y, idx], name=y, kernel_shape=list(a["kernel_size"]),
        strides=list(a["stride"]), pads=begin + end, dilations=list(a["dilation"]), ceil_mode=0))
    flat = d.ctx.ints([-1], "shape")
    shape = d.op("Shape", x)
    zero = d.ctx.onnx.numpy_helper.from_array(np.zeros(1, d.dt))
    zeros = d.op("Reshape", d.op("ConstantOfShape", shape, value=zero), flat)
    dx = d.op("ScatterElements", zeros, d.op("Reshape", idx, flat), d.op("Reshape", g, flat),
              axis=0, reduction="add")
    return _from_batched(d, d.op("Reshape", dx, shape), nd)


@_vjp("avg_pool1d", 0)
@_vjp("avg_pool2d", 0)
def _avg_pool_grad(d: _Grad) -> str:
    # g / divisor spread over each window: a grouped ConvTranspose with a kernel of ones.
    a = d.attrs
    nd, spatial, begin, end = _geometry_of(a, d.vals[0].shape, d.node.inputs[1].shape)
    k, s = a["kernel_size"], a["stride"]
    out = tuple(d.node.inputs[1].shape[-nd:])
    c = d.vals[0].shape[-nd - 1]
    if c is None:
        raise Unsupported("the gradient of average pooling needs the number of channels")
    _, torch_div = _divisors(a, spatial, out, end)
    g = d.op("Div", _to_batched(d, d.g, nd), d.ctx.const(torch_div.astype(d.dt), "divisor"))
    extra = [n - ((o - 1) * si + ki - b - e)
             for n, o, si, ki, b, e in zip(spatial, out, s, k, begin, end)]
    ones = d.ctx.const(np.ones((c, 1) + tuple(k), d.dt), "ones")
    dx = d.op("ConvTranspose", g, ones, strides=list(s), pads=begin + end, group=int(c),
              output_padding=extra)
    return _from_batched(d, dx, nd)


def _bn_axes(d: _Grad) -> list[int]:
    return [0] + list(range(2, d.nd(0)))


def _per_channel_view(d: _Grad, name: str) -> str:
    """A (C,) value shaped to broadcast against (N, C, ...)."""
    nd = d.nd(0)
    return d.op("Unsqueeze", name, d.ctx.ints(list(range(1, nd - 1)))) if nd > 2 else name


def _csum(d: _Grad, name: str) -> str:
    return d.op("ReduceSum", name, d.ctx.ints(_bn_axes(d)), keepdims=0)


def _inv_std(d: _Grad, var: str) -> str:
    return d.op("Reciprocal", d.op("Sqrt", d.op("Add", var, d.c(float(d.attrs["eps"])))))


# batch_norm (evaluation): inputs x, mean, var, weight, bias
@_vjp("batch_norm", 0)
def _bn_dx(d: _Grad) -> str:
    return d.op("Mul", d.g, _per_channel_view(d, d.op("Mul", d.x(3), _inv_std(d, d.x(2)))))


@_vjp("batch_norm", 1)
def _bn_dmean(d: _Grad) -> str:
    return d.op("Neg", d.op("Mul", _csum(d, d.g), d.op("Mul", d.x(3), _inv_std(d, d.x(2)))))


def _g_centered(d: _Grad) -> str:
    """Σ g·(x - mean) per channel."""
    return _csum(d, d.op("Mul", d.g, d.op("Sub", d.x(0), _per_channel_view(d, d.x(1)))))


@_vjp("batch_norm", 2)
def _bn_dvar(d: _Grad) -> str:
    inv = _inv_std(d, d.x(2))
    cube = d.op("Mul", inv, d.op("Mul", inv, inv))
    return d.op("Mul", d.op("Mul", _g_centered(d), d.x(3)), d.op("Mul", d.c(-0.5), cube))


@_vjp("batch_norm", 3)
def _bn_dweight(d: _Grad) -> str:
    return d.op("Mul", _g_centered(d), _inv_std(d, d.x(2)))


@_vjp("batch_norm", 4)
def _bn_dbias(d: _Grad) -> str:
    return _csum(d, d.g)


# ---------------------------------------------------------------------------
# Reading them back (importer.CONVERTERS)

def _pool_attrs(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any]
                ) -> tuple[Value, dict[str, Any], bool]:
    """(input, attrs, explicit): PyTorch's symmetric padding (at most half the
    kernel) is read as `padding`; other pads (ours, ceil_mode's extra) become
    an explicit `pad` op before a pool without padding (explicit=True)."""
    k = tuple(int(v) for v in attrs["kernel_shape"])
    nd = len(k)
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise OnnxLoadError(f"load: {b.where}: auto_pad is not read; write explicit pads")
    pads = [int(v) for v in attrs.get("pads", [0] * 2 * nd)]
    a = {"kernel_size": k, "stride": tuple(int(v) for v in attrs.get("strides", [1] * nd)),
         "padding": tuple(pads[:nd]), "ceil_mode": bool(attrs.get("ceil_mode", 0))}
    x = ins[0]
    if pads[:nd] == pads[nd:] and all(2 * p <= ki for p, ki in zip(pads, k)):
        return x, a, False
    if a["ceil_mode"]:
        raise OnnxLoadError(f"load: {b.where}: ceil_mode with pads {pads} is not read")
    if n.op_type == "AveragePool" and not attrs.get("count_include_pad", 0):
        raise OnnxLoadError(f"load: {b.where}: AveragePool with pads {pads} and "
                            "count_include_pad=0 is not read")
    value = -np.inf if n.op_type == "MaxPool" else 0.0
    width = ((0, 0),) * (len(x.shape) - nd) + tuple(zip(pads[:nd], pads[nd:]))
    x = b.op("pad", [x], "pad", pad_width=width, constant_values=value)
    a["padding"] = (0,) * nd
    return x, a, True


def _read_max_pool(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    if len(n.output) > 1 and any(o in b.used for o in list(n.output)[1:]):
        raise OnnxLoadError(f"load: {b.where}: MaxPool's Indices output is not read")
    x, a, _ = _pool_attrs(b, n, ins, attrs)
    a["dilation"] = tuple(int(v) for v in attrs.get("dilations", [1] * len(a["kernel_size"])))
    name = "max_pool1d" if len(a["kernel_size"]) == 1 else "max_pool2d"
    return b.op(name, [x], name, **a)


def _read_avg_pool(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    x, a, explicit = _pool_attrs(b, n, ins, attrs)
    name = "avg_pool1d" if len(a["kernel_size"]) == 1 else "avg_pool2d"
    cip = explicit or bool(attrs.get("count_include_pad", 0))
    return b.op(name, [x], name, **a, count_include_pad=cip, divisor_override=None)


def _read_batch_norm(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any],
                     opset: int) -> Value:
    if attrs.get("training_mode", 0):
        raise OnnxLoadError(f"load: {b.where}: BatchNormalization in training mode is not read")
    x, scale, bias, mean, var = ins[:5]
    return b.op("batch_norm", [x, mean, var, scale, bias], "batch_norm",
                eps=float(attrs.get("epsilon", 1e-5)))


CONVERTERS["MaxPool"] = _read_max_pool
CONVERTERS["AveragePool"] = _read_avg_pool
CONVERTERS["BatchNormalization"] = _read_batch_norm
