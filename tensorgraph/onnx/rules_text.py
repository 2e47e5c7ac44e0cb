"""ONNX rules for the embedding ops (tensorgraph/ops/embedding.py).

Export: embedding -> Gather(weight, ids, axis=0). Its weight gradient, the
scatter `embedding_backward` (and the VJP node `embedding_vjp1` a captured
tg.grad records), -> ScatterND with reduction "add" into zeros of shape
(num_weights, D), the rows of padding ids multiplied by 0 first (repeated ids
add up, as ours); with scale_grad_by_freq each row is then divided by its
id's count (a ScatterND of ones). The scatter's own VJP
(`embedding_backward_vjp0`, a second derivative) is again a Gather, of the
table with the padding row zeroed (and divided by the counts).

Ids are not range-checked by ONNX runtimes as by tensorgraph (onnxruntime
refuses out-of-range Gather indices with its own error).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .rules import Context, rule

__all__: list[str] = []


def _counts(ctx: Context, ids64: str, dtype: Any, num: int) -> str:
    """(num, 1): max(1, the number of times each id occurs)."""
    dt = np.dtype(dtype)
    ones = ctx.op("ConstantOfShape", ctx.op("Shape", ids64),
                  value=ctx.onnx.numpy_helper.from_array(np.ones(1, dt)))
    zeros = ctx.const(np.zeros(num, dt), "zeros")
    c = ctx.op("ScatterND", zeros, ctx.op("Unsqueeze", ids64, ctx.ints([-1])), ones,
               reduction="add")
    return ctx.op("Unsqueeze", ctx.op("Max", c, ctx.const(np.ones((), dt), "one")),
                  ctx.ints([-1]))


def _scatter(ctx: Context, g: str, ids: str, ids_dtype: Any, dtype: Any, num: int,
             padding_idx: Optional[int], scale: bool) -> str:
    """Z (num, D), Z[v] = Σ_{p: ids[p] = v ≠ padding_idx} g[p] (/ c_v with scale)."""
    ids64 = ctx.cast(ids, ids_dtype, np.int64)
    if padding_idx is not None:
        keep = ctx.op("Not", ctx.op("Equal", ids64, ctx.const(np.int64(padding_idx), "pad")))
        keep = ctx.op("Cast", ctx.op("Unsqueeze", keep, ctx.ints([-1])),
                      to=ctx.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
        g = ctx.op("Mul", g, keep)
    d = ctx.op("Slice", ctx.op("Shape", g), ctx.ints([-1], "starts"),
               ctx.ints([np.iinfo(np.int64).max], "ends"))
    shape = ctx.op("Concat", ctx.ints([num], "rows"), d, axis=0)
    zeros = ctx.op("ConstantOfShape", shape,
                   value=ctx.onnx.numpy_helper.from_array(np.zeros(1, np.dtype(dtype))))
    z = ctx.op("ScatterND", zeros, ctx.op("Unsqueeze", ids64, ctx.ints([-1])), g,
               reduction="add")
    return ctx.op("Div", z, _counts(ctx, ids64, dtype, num)) if scale else z


def _gather(ctx: Context, table: str, ids: str, ids_dtype: Any, dtype: Any, num: int,
            padding_idx: Optional[int], scale: bool) -> str:
    """table[ids], the padding row read as zeros (rows / c_v with scale)."""
    if padding_idx is not None:
        mask = np.ones((num, 1), dtype=np.dtype(dtype))
        mask[padding_idx] = 0
        table = ctx.op("Mul", table, ctx.const(mask, "row_mask"))
    if scale:
        table = ctx.op("Div", table, _counts(ctx, ctx.cast(ids, ids_dtype, np.int64), dtype, num))
    return ctx.op("Gather", table, ids, axis=0)


@rule("embedding")
def _embedding(ctx: Context, node: Any, xs: list[str]) -> str:
    return ctx.op("Gather", xs[1], xs[0], axis=0)


@rule("embedding_backward")
def _embedding_backward(ctx: Context, node: Any, xs: list[str]) -> str:
    a = node.attrs
    return _scatter(ctx, xs[0], xs[1], node.inputs[1].dtype, node.inputs[0].dtype,
                    a["num_weights"], a["padding_idx"], a.get("scale_grad_by_freq", False))


@rule("embedding_vjp1")
def _embedding_vjp1(ctx: Context, node: Any, xs: list[str]) -> str:
    # inputs (g, out, ids, weight)
    ids, w = node.inputs[2], node.inputs[3]
    return _scatter(ctx, xs[0], xs[2], ids.dtype, node.inputs[0].dtype, w.shape[0],
                    node.attrs["padding_idx"], node.attrs.get("scale_grad_by_freq", False))


@rule("embedding_backward_vjp0")
def _embedding_backward_vjp0(ctx: Context, node: Any, xs: list[str]) -> str:
    # inputs (G, out, g, ids): G gathered at ids, the padding row as zeros
    a = node.attrs
    return _gather(ctx, xs[0], xs[3], node.inputs[3].dtype, node.inputs[0].dtype,
                   a["num_weights"], a["padding_idx"], a.get("scale_grad_by_freq", False))
