"""ONNX rules and converters for the convolution ops (tensorgraph/ops/conv.py).

Export: conv1d/conv2d -> Conv, conv_transpose1d/2d -> ConvTranspose (the
weight layouts are ONNX's: (M, C/group, k...) and (C, M/group, k...)), flatten
-> Flatten (start_dim 1 through the last axis) or Reshape (0 copies the batch).
The ops' `padding` attribute is one (before, after) pair per axis: ONNX's
`pads` lists the befores, then the afters. The weight-gradient ops
(conv1d_weight, conv2d_weight) appear in backward graphs only, which export
refuses anyway (the `*_vjp*` ops); they have no rule.

Loading: Conv and ConvTranspose become these ops (with auto_pad resolved
against the input's spatial size); ONNX's Flatten is read by the importer's
own converter.
"""
from __future__ import annotations

from typing import Any

from .importer import CONVERTERS, OnnxLoadError, _Builder
from .rules import REFUSED, Context, Unsupported, rule
from ..graph import Value

__all__: list[str] = []

REFUSED.update(dict.fromkeys(
    ("conv1d_weight", "conv2d_weight"),
    "it is a convolution's weight gradient (a backward op, recorded with create_graph=True); "
    "ONNX has no such op: export the forward pass"))
REFUSED.update(dict.fromkeys(
    ("conv1d_vjp", "conv2d_vjp", "conv_transpose1d_vjp", "conv_transpose2d_vjp",
     "conv1d_weight_vjp", "conv2d_weight_vjp"),
    "no export rule is written yet for a convolution's gradient (a captured training step "
    "of a conv net); export the forward pass"))


def _pads(padding: Any) -> list[int]:
    if any(lo < 0 or hi < 0 for lo, hi in padding):
        raise Unsupported(f"negative padding {padding} (a convolution in a backward graph); "
                          "export the forward pass")
    return [int(lo) for lo, _ in padding] + [int(hi) for _, hi in padding]


def _conv_attrs(node: Any) -> dict[str, Any]:
    a = node.attrs
    return dict(strides=list(a["stride"]), dilations=list(a["dilation"]), group=int(a["groups"]),
                kernel_shape=[int(k) for k in node.inputs[1].shape[2:]])


def _same_dtype(ctx: Context, node: Any, xs: list[str]) -> list[str]:
    want = node.output.dtype
    return [ctx.cast(x, v.dtype, want) for x, v in zip(xs, node.inputs)]


@rule("conv1d", "conv2d")
def _conv(ctx: Context, node: Any, xs: list[str]) -> str:
    return ctx.op("Conv", *_same_dtype(ctx, node, xs), pads=_pads(node.attrs["padding"]),
                  **_conv_attrs(node))


@rule("conv_transpose1d", "conv_transpose2d")
def _conv_transpose(ctx: Context, node: Any, xs: list[str]) -> str:
    # Ours crops `after` then adds output_padding zeros at the end; ONNX adds
    # output_padding and crops pads: the same where after >= 0. A negative
    # `after` (backward graphs) is more output padding.
    padding, outpad = node.attrs["padding"], node.attrs["output_padding"]
    pads = [(lo, max(hi, 0)) for lo, hi in padding]
    outpad = [int(o) + max(-hi, 0) for o, (_, hi) in zip(outpad, padding)]
    return ctx.op("ConvTranspose", *_same_dtype(ctx, node, xs), pads=_pads(pads),
                  output_padding=outpad, **_conv_attrs(node))


@rule("flatten")
def _flatten(ctx: Context, node: Any, xs: list[str]) -> str:
    s, e = node.attrs["start_dim"], node.attrs["end_dim"]
    shape = node.inputs[0].shape
    if e == len(shape) - 1 and s == 1:
        return ctx.op("Flatten", xs[0], axis=1)
    if None in shape[e + 1:]:
        raise Unsupported(f"flatten before an open axis (input shape {shape}, end_dim {e})")
    # 0 copies the axes before start_dim (the batch stays open), -1 takes the merged size
    rest = [int(d) for d in shape[e + 1:]]
    return ctx.op("Reshape", xs[0], ctx.ints([0] * s + [-1] + rest, "shape"))


# ---------------------------------------------------------------------------
# Loading

def _ints(v: Any) -> tuple[int, ...]:
    return tuple(int(a) for a in v)


def _loaded_pads(b: _Builder, n: Any, x: Value, ks: tuple[int, ...], strides: tuple[int, ...],
                 dil: tuple[int, ...], attrs: dict[str, Any]) -> tuple[tuple[int, int], ...]:
    nd = len(ks)
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto in ("NOTSET", ""):
        p = _ints(attrs.get("pads", [0] * 2 * nd))
        return tuple((p[i], p[i + nd]) for i in range(nd))
    if auto == "VALID":
        return ((0, 0),) * nd
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise OnnxLoadError(f"load: {b.where}: unknown auto_pad {auto!r}")
    sizes = b._example(x, 0).shape[2:]
    out = []
    for n_, k, s, d in zip(sizes, ks, strides, dil):
        total = max(0, (-(-n_ // s) - 1) * s + d * (k - 1) + 1 - n_)
        small = total // 2
        out.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
    return tuple(out)


def _common(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any]) -> tuple[Any, ...]:
    x, w = ins[0], ins[1]
    nd = len(w.shape) - 2
    if nd not in (1, 2):
        raise OnnxLoadError(f"load: {b.where}: {n.op_type} over {nd} spatial axes; tensorgraph "
                            f"has 1-D and 2-D convolutions")
    ks = _ints(attrs.get("kernel_shape", w.shape[2:]))
    strides = _ints(attrs.get("strides", [1] * nd))
    dil = _ints(attrs.get("dilations", [1] * nd))
    return x, w, nd, ks, strides, dil, int(attrs.get("group", 1))


def _with_bias(ins: list[Any], x: Value, w: Value) -> list[Value]:
    return [x, w] + ([ins[2]] if len(ins) > 2 and ins[2] is not None else [])


def _load_conv(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    x, w, nd, ks, strides, dil, groups = _common(b, n, ins, attrs)
    pads = _loaded_pads(b, n, x, ks, strides, dil, attrs)
    return b.op(f"conv{nd}d", _with_bias(ins, x, w), f"conv{nd}d", stride=strides,
                padding=pads, dilation=dil, groups=groups)


def _load_conv_transpose(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any],
                         opset: int) -> Value:
    x, w, nd, ks, strides, dil, groups = _common(b, n, ins, attrs)
    if "output_shape" in attrs or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise OnnxLoadError(f"load: {b.where}: ConvTranspose with output_shape or auto_pad is "
                            f"not read; export it with explicit pads")
    p = _ints(attrs.get("pads", [0] * 2 * nd))
    outpad = _ints(attrs.get("output_padding", [0] * nd))
    return b.op(f"conv_transpose{nd}d", _with_bias(ins, x, w), f"conv_transpose{nd}d",
                stride=strides, padding=tuple((p[i], p[i + nd]) for i in range(nd)),
                output_padding=outpad, dilation=dil, groups=groups)


CONVERTERS["Conv"] = _load_conv
CONVERTERS["ConvTranspose"] = _load_conv_transpose
