"""ONNX rules for the fused recurrent cells (tensorgraph/ops/recurrent.py).

Each cell is written out as the ONNX ops of its equations (Slice on the last
axis, Sigmoid, Tanh, Mul, Add, Sub, Concat), so an exported recurrent layer is
its unrolled steps: per step the `matmul` with W_hh (MatMul) and one cell.
ONNX's own LSTM/GRU ops are not used: they take whole sequences, while a
captured graph holds the steps one by one (with their own scopes and, for
padded batches, their `where` masks).

`lstm_sequence` (a whole one-direction LSTM layer as one op, nn.LSTM's eager
path) is written unrolled the same way: the input projection of every step as
one MatMul, then per step a Gather of its row, the MatMul with W_hhᵀ and the
cell's ops; its output [h_t, c_t] of every step is their Concat. ONNX's LSTM
op gives only the last c, not c_t of every step, so it is not used here
either. Its seven VJPs (backpropagation through time in numpy) are refused by
name: a captured tg.grad of nn.LSTM records the steps instead (nn.LSTM
records its steps under tg.capture), and exports.

The cells' gradients (`lstm_cell_vjp0/1`, `gru_cell_vjp0/1/2`, what a captured
`tg.grad` of a recurrent network records) are written the same way, with the
formulas of the VJPs in tensorgraph/ops/recurrent.py; σ and tanh are recomputed
from the op's inputs (and tanh c' from its output), as the VJPs do on Tensors.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .rules import REFUSED, Context, Unsupported, rule
from .rules_grad import _Grad, _vjp

__all__: list[str] = []


def _cast(ctx: Context, node: Any, xs: list[str]) -> list[str]:
    want = node.output.dtype
    return [ctx.cast(x, v.dtype, want) for x, v in zip(xs, node.inputs)]


def _part(ctx: Context, x: str, lo: int, hi: int) -> str:
    """x[..., lo:hi]."""
    return ctx.op("Slice", x, ctx.ints([lo], "starts"), ctx.ints([hi], "ends"), ctx.ints([-1]))


def _lstm_step(ctx: Context, a: str, c_prev: str, H: int) -> tuple[str, str]:
    """(h', c') of one LSTM step from its preactivations a (..., 4H)."""
    s = ctx.op("Sigmoid", a)
    i, f, o = _part(ctx, s, 0, H), _part(ctx, s, H, 2 * H), _part(ctx, s, 3 * H, 4 * H)
    g = ctx.op("Tanh", _part(ctx, a, 2 * H, 3 * H))
    c = ctx.op("Add", ctx.op("Mul", f, c_prev), ctx.op("Mul", i, g))
    return ctx.op("Mul", o, ctx.op("Tanh", c)), c


@rule("lstm_cell")
def _lstm_cell(ctx: Context, node: Any, xs: list[str]) -> str:
    a, hc = _cast(ctx, node, xs)
    H = node.inputs[0].shape[-1] // 4
    h, c = _lstm_step(ctx, a, _part(ctx, hc, H, 2 * H), H)
    return ctx.op("Concat", h, c, axis=-1)


@rule("lstm_sequence")
def _lstm_sequence(ctx: Context, node: Any, xs: list[str]) -> str:
    x, h, c, w_ih, w_hh, b_ih, b_hh = _cast(ctx, node, xs)
    T = node.inputs[0].shape[0]
    if T is None:
        raise Unsupported("it is unrolled over the time steps, so the sequence length (axis 0 "
                          "of x) must be known; give the placeholder a fixed length")
    H = node.inputs[4].shape[1]
    xp = ctx.op("Add", ctx.op("Add", ctx.op("MatMul", x, ctx.op("Transpose", w_ih)), b_ih), b_hh)
    whh_t = ctx.op("Transpose", w_hh)
    zero = ctx.ints([0])
    steps = []
    for t in range(T):
        xt = ctx.op("Gather", xp, ctx.const(np.int64(t), "t"), axis=0)
        h, c = _lstm_step(ctx, ctx.op("Add", xt, ctx.op("MatMul", h, whh_t)), c, H)
        steps.append(ctx.op("Unsqueeze", ctx.op("Concat", h, c, axis=-1), zero))
    return ctx.op("Concat", *steps, axis=0)


REFUSED.update(dict.fromkeys(
    (f"lstm_sequence_vjp{i}" for i in range(7)),
    "it is backpropagation through a whole LSTM layer, for which no ONNX rule is written; "
    "nn.LSTM records its steps under tg.capture, whose gradients export (or record them "
    "yourself inside tg.nn.record_steps())"))


@rule("gru_cell")
def _gru_cell(ctx: Context, node: Any, xs: list[str]) -> str:
    xp, hp, h = _cast(ctx, node, xs)
    H = node.inputs[0].shape[-1] // 3
    rz = ctx.op("Sigmoid", ctx.op("Add", _part(ctx, xp, 0, 2 * H), _part(ctx, hp, 0, 2 * H)))
    r, z = _part(ctx, rz, 0, H), _part(ctx, rz, H, 2 * H)
    n = ctx.op("Tanh", ctx.op("Add", _part(ctx, xp, 2 * H, 3 * H),
                              ctx.op("Mul", r, _part(ctx, hp, 2 * H, 3 * H))))
    return ctx.op("Add", n, ctx.op("Mul", z, ctx.op("Sub", h, n)))    # (1 - z) n + z h


# ---------------------------------------------------------------------------
# Gradients

def _slice(d: _Grad, x: str, lo: int, hi: int) -> str:
    return _part(d.ctx, x, lo, hi)


def _dsigmoid(d: _Grad, s: str, one: str) -> str:
    return d.op("Mul", s, d.op("Sub", one, s))


def _lstm_dc(d: _Grad) -> tuple[int, dict[str, str]]:
    """H and the named pieces: σ's of i, f, o, tanh g, tanh c', G_h, ∂c'."""
    H = d.vals[0].shape[-1] // 4
    a = d.x(0)
    one = d.c(1, "one")
    s = d.op("Sigmoid", a)
    p = {"one": one, "i": _slice(d, s, 0, H), "f": _slice(d, s, H, 2 * H),
         "o": _slice(d, s, 3 * H, 4 * H), "g": d.op("Tanh", _slice(d, a, 2 * H, 3 * H)),
         "tc": d.op("Tanh", _slice(d, d.out, H, 2 * H)), "gh": _slice(d, d.g, 0, H)}
    decay = d.op("Sub", one, d.op("Mul", p["tc"], p["tc"]))
    p["dc"] = d.op("Add", _slice(d, d.g, H, 2 * H),
                   d.op("Mul", d.op("Mul", p["gh"], p["o"]), decay))
    return H, p


@_vjp("lstm_cell", 0)
def _lstm_cell_gates(d: _Grad) -> str:
    H, p = _lstm_dc(d)
    dc, one = p["dc"], p["one"]
    c_prev = _slice(d, d.x(1), H, 2 * H)
    di = d.op("Mul", d.op("Mul", dc, p["g"]), _dsigmoid(d, p["i"], one))
    df = d.op("Mul", d.op("Mul", dc, c_prev), _dsigmoid(d, p["f"], one))
    dg = d.op("Mul", d.op("Mul", dc, p["i"]), d.op("Sub", one, d.op("Mul", p["g"], p["g"])))
    do = d.op("Mul", d.op("Mul", p["gh"], p["tc"]), _dsigmoid(d, p["o"], one))
    return d.op("Concat", di, df, dg, do, axis=-1)


@_vjp("lstm_cell", 1)
def _lstm_cell_state(d: _Grad) -> str:
    _, p = _lstm_dc(d)
    dc = d.op("Mul", p["dc"], p["f"])
    zero = d.ctx.onnx.numpy_helper.from_array(np.zeros(1, d.dt))
    return d.op("Concat", d.op("ConstantOfShape", d.op("Shape", dc), value=zero), dc, axis=-1)


def _gru_parts(d: _Grad) -> dict[str, str]:
    H = d.vals[0].shape[-1] // 3
    xp, hp = d.x(0), d.x(1)
    one = d.c(1, "one")
    rz = d.op("Sigmoid", d.op("Add", _slice(d, xp, 0, 2 * H), _slice(d, hp, 0, 2 * H)))
    r, z = _slice(d, rz, 0, H), _slice(d, rz, H, 2 * H)
    hpn = _slice(d, hp, 2 * H, 3 * H)
    n = d.op("Tanh", d.op("Add", _slice(d, xp, 2 * H, 3 * H), d.op("Mul", r, hpn)))
    dn = d.op("Mul", d.op("Mul", d.g, d.op("Sub", one, z)),
              d.op("Sub", one, d.op("Mul", n, n)))
    drz = d.op("Concat", d.op("Mul", d.op("Mul", dn, hpn), _dsigmoid(d, r, one)),
               d.op("Mul", d.op("Mul", d.g, d.op("Sub", d.x(2), n)), _dsigmoid(d, z, one)),
               axis=-1)
    return {"r": r, "z": z, "dn": dn, "drz": drz}


@_vjp("gru_cell", 0)
def _gru_cell_xp(d: _Grad) -> str:
    p = _gru_parts(d)
    return d.op("Concat", p["drz"], p["dn"], axis=-1)


@_vjp("gru_cell", 1)
def _gru_cell_hp(d: _Grad) -> str:
    p = _gru_parts(d)
    return d.op("Concat", p["drz"], d.op("Mul", p["dn"], p["r"]), axis=-1)


@_vjp("gru_cell", 2)
def _gru_cell_h(d: _Grad) -> str:
    H = d.vals[0].shape[-1] // 3
    z = d.op("Sigmoid", d.op("Add", _slice(d, d.x(0), H, 2 * H), _slice(d, d.x(1), H, 2 * H)))
    return d.op("Mul", d.g, z)
