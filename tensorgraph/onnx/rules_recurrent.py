"""ONNX rules for the fused recurrent cells (tensorgraph/ops/recurrent.py).

Each cell is written out as the ONNX ops of its equations (Slice on the last
axis, Sigmoid, Tanh, Mul, Add, Sub, Concat), so an exported recurrent layer is
its unrolled steps: per step the `matmul` with W_hh (MatMul) and one cell.
ONNX's own LSTM/GRU ops are not used: they take whole sequences, while a
captured graph holds the steps one by one (with their own scopes and, for
padded batches, their `where` masks).

The cells' gradients (`lstm_cell_vjp0/1`, `gru_cell_vjp0/1/2`, in a captured
training step) are refused by name for now.
"""
from __future__ import annotations

from typing import Any

from .rules import REFUSED, Context, rule

__all__: list[str] = []

REFUSED.update(dict.fromkeys(
    ("lstm_cell_vjp0", "lstm_cell_vjp1", "gru_cell_vjp0", "gru_cell_vjp1", "gru_cell_vjp2"),
    "no export rule is written yet for a fused recurrent cell's gradient (a captured "
    "training step of an LSTM or GRU); export the forward pass"))


def _cast(ctx: Context, node: Any, xs: list[str]) -> list[str]:
    want = node.output.dtype
    return [ctx.cast(x, v.dtype, want) for x, v in zip(xs, node.inputs)]


def _part(ctx: Context, x: str, lo: int, hi: int) -> str:
    """x[..., lo:hi]."""
    return ctx.op("Slice", x, ctx.ints([lo], "starts"), ctx.ints([hi], "ends"), ctx.ints([-1]))


@rule("lstm_cell")
def _lstm_cell(ctx: Context, node: Any, xs: list[str]) -> str:
    a, hc = _cast(ctx, node, xs)
    H = node.inputs[0].shape[-1] // 4
    s = ctx.op("Sigmoid", a)
    i, f, o = _part(ctx, s, 0, H), _part(ctx, s, H, 2 * H), _part(ctx, s, 3 * H, 4 * H)
    g = ctx.op("Tanh", _part(ctx, a, 2 * H, 3 * H))
    c = ctx.op("Add", ctx.op("Mul", f, _part(ctx, hc, H, 2 * H)), ctx.op("Mul", i, g))
    h = ctx.op("Mul", o, ctx.op("Tanh", c))
    return ctx.op("Concat", h, c, axis=-1)


@rule("gru_cell")
def _gru_cell(ctx: Context, node: Any, xs: list[str]) -> str:
    xp, hp, h = _cast(ctx, node, xs)
    H = node.inputs[0].shape[-1] // 3
    rz = ctx.op("Sigmoid", ctx.op("Add", _part(ctx, xp, 0, 2 * H), _part(ctx, hp, 0, 2 * H)))
    r, z = _part(ctx, rz, 0, H), _part(ctx, rz, H, 2 * H)
    n = ctx.op("Tanh", ctx.op("Add", _part(ctx, xp, 2 * H, 3 * H),
                              ctx.op("Mul", r, _part(ctx, hp, 2 * H, 3 * H))))
    return ctx.op("Add", n, ctx.op("Mul", z, ctx.op("Sub", h, n)))    # (1 - z) n + z h
