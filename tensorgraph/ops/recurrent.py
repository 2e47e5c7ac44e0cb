"""Fused recurrent cells: the gate math of one LSTM or GRU time step as ONE op
(chapter 7; used by tensorgraph/nn/recurrent.py).

A step recorded op by op costs ~15 small ops (slices, two sigmoids, tanh,
products, sums), each a Python call forward and backward. Here the matrix
products stay ordinary `matmul`s (BLAS) and everything elementwise after them
is one op with a hand-written VJP:

- `lstm_cell(gates, hc)`: gates = the preactivations W_ih x + b_ih + W_hh h + b_hh
  (..., 4H) in PyTorch's order i, f, g, o; hc = [h, c] (..., 2H), the previous
  state side by side (only c is read). Returns [h', c'] (..., 2H):

      i, f, o = σ(gates_i), σ(gates_f), σ(gates_o)     g = tanh(gates_g)
      c' = f ⊙ c + i ⊙ g                               h' = o ⊙ tanh(c')

  Gradients (G = [G_h, G_c] the gradient of [h', c']):
      ∂c' = G_c + G_h ⊙ o ⊙ (1 - tanh²c')
      ∂gates = [∂c' ⊙ g ⊙ i(1-i), ∂c' ⊙ c ⊙ f(1-f), ∂c' ⊙ i ⊙ (1-g²), G_h ⊙ tanh c' ⊙ o(1-o)]
      ∂hc = [0, ∂c' ⊙ f]

- `gru_cell(xp, hp, h)`: xp = W_ih x + b_ih (..., 3H), hp = W_hh h + b_hh (..., 3H),
  both in PyTorch's order r, z, n; h the previous state (..., H). Returns h':

      r = σ(xp_r + hp_r)    z = σ(xp_z + hp_z)    n = tanh(xp_n + r ⊙ hp_n)
      h' = (1 - z) ⊙ n + z ⊙ h

  Gradients (G the gradient of h'): ∂n_pre = G ⊙ (1-z) ⊙ (1-n²),
      ∂[r, z]_pre = [∂n_pre ⊙ hp_n ⊙ r(1-r), G ⊙ (h - n) ⊙ z(1-z)]
      ∂xp = [∂[r, z]_pre, ∂n_pre]    ∂hp = [∂[r, z]_pre, ∂n_pre ⊙ r]    ∂h = G ⊙ z

σ(a) is computed as (1 + tanh(a/2))/2: equal to 1/(1 + e^-a), and no overflow.
The forwards keep (σ, tanh) values for the VJPs (`saves`); the VJPs are
written with numpy functions and operators that Tensors also take, so on
Tensors (create_graph) they recompute those values as recorded ops and are
differentiated again. Inputs broadcast against each other (a zero initial
state may be given as one row).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import ArrayLike, Tensor, record
from .registry import OPS, as_tensor

defop, public = OPS.defop, OPS.public

__all__ = ["lstm_cell", "gru_cell"]


def _sigmoid(a: Any) -> Any:
    return 0.5 * np.tanh(0.5 * a) + 0.5


def _zeros_like(x: Any) -> Any:
    return np.zeros_like(x) if isinstance(x, np.ndarray) else x * 0


# ---------------------------------------------------------------------------
# LSTM

def _lstm_parts(a: Any, hc: Any) -> tuple[Any, Any, Any, Any]:
    """(σ(gates), tanh(g), c', tanh(c'))."""
    H = a.shape[-1] // 4
    s = _sigmoid(a)
    g = np.tanh(a[..., 2 * H:3 * H])
    c = s[..., H:2 * H] * hc[..., H:] + s[..., :H] * g
    return s, g, c, np.tanh(c)


def _lstm_cell(a: np.ndarray, hc: np.ndarray) -> tuple[np.ndarray, Any]:
    # The same as _lstm_parts, with fewer temporaries (forward runs on arrays only).
    H = a.shape[-1] // 4
    s = np.multiply(a, 0.5)
    np.tanh(s, out=s)
    s *= 0.5
    s += 0.5
    g = np.tanh(a[..., 2 * H:3 * H])
    c = s[..., H:2 * H] * hc[..., H:]
    c += s[..., :H] * g
    tc = np.tanh(c)
    out = np.empty(c.shape[:-1] + (2 * H,), c.dtype)
    np.multiply(s[..., 3 * H:], tc, out=out[..., :H])
    out[..., H:] = c
    # the last slot keeps ∂c' between the two VJPs of one backward (see _lstm_dc)
    return out, [s, g, tc, None]


def _lstm_saved(a: Any, hc: Any, saved: Any) -> tuple[Any, Any, Any]:
    """What forward saved, (σ(gates), tanh(g), tanh(c')), or recomputed (on Tensors)."""
    if saved is not None:
        return saved[0], saved[1], saved[2]
    s, g, _, tc = _lstm_parts(a, hc)
    return s, g, tc


def _lstm_dc(g: Any, s: Any, tc: Any, H: int, saved: Any) -> Any:
    """∂c' = G_c + G_h ⊙ o ⊙ (1 - tanh²c'), computed once per backward: the VJPs
    for the gates and for hc both need it."""
    if saved is None:
        return g[..., H:] + g[..., :H] * s[..., 3 * H:] * (1 - tc * tc)
    if saved[3] is not None and saved[3][0] is g:
        return saved[3][1]
    dc = tc * tc
    np.subtract(1, dc, out=dc)
    dc *= g[..., :H]
    dc *= s[..., 3 * H:]
    dc += g[..., H:]
    saved[3] = (g, dc)
    return dc


def _lstm_vjp_gates(g: Any, out: Any, a: Any, hc: Any, saved: Any = None) -> Any:
    H = a.shape[-1] // 4
    s, gg, tc = _lstm_saved(a, hc, saved)
    dc = _lstm_dc(g, s, tc, H, saved)
    i, f, o = s[..., :H], s[..., H:2 * H], s[..., 3 * H:]
    if saved is None:      # on Tensors (create_graph): recorded ops
        return np.concatenate([dc * gg * i * (1 - i), dc * hc[..., H:] * f * (1 - f),
                               dc * i * (1 - gg * gg), g[..., :H] * tc * o * (1 - o)], axis=-1)
    ds = s * (1 - s)                                    # σ' of every gate (g's unused)
    da = np.empty(dc.shape[:-1] + (4 * H,), dc.dtype)
    np.multiply(dc, gg, out=da[..., :H])
    np.multiply(dc, hc[..., H:], out=da[..., H:2 * H])
    np.multiply(dc, i, out=da[..., 2 * H:3 * H])
    np.multiply(g[..., :H], tc, out=da[..., 3 * H:])
    da[..., :H] *= ds[..., :H]
    da[..., H:2 * H] *= ds[..., H:2 * H]
    da[..., 2 * H:3 * H] *= 1 - gg * gg
    da[..., 3 * H:] *= ds[..., 3 * H:]
    return da


def _lstm_vjp_hc(g: Any, out: Any, a: Any, hc: Any, saved: Any = None) -> Any:
    H = a.shape[-1] // 4
    s, _, tc = _lstm_saved(a, hc, saved)
    dc = _lstm_dc(g, s, tc, H, saved) * s[..., H:2 * H]
    return np.concatenate([_zeros_like(dc), dc], axis=-1)


LSTM_CELL = defop("lstm_cell", _lstm_cell, _lstm_vjp_gates, _lstm_vjp_hc, saves=True)


def _check_last(fname: str, what: str, x: Tensor, size: int, meaning: str) -> None:
    if x.ndim == 0 or x.shape[-1] != size:
        raise ValueError(f"{fname}: {what} must have last axis {size} ({meaning}), got shape "
                         f"{x.shape}")


@public(LSTM_CELL)
def lstm_cell(gates: ArrayLike, hc: ArrayLike) -> Tensor:
    """One LSTM step after its matrix products: gates (..., 4H) are the
    preactivations in PyTorch's order i, f, g, o, hc (..., 2H) the previous
    [h, c]; returns [h', c'] (..., 2H) with c' = σ(f)⊙c + σ(i)⊙tanh(g),
    h' = σ(o)⊙tanh(c'). See the module docstring for the gradients."""
    a = as_tensor(gates, "lstm_cell", 0)
    s = as_tensor(hc, "lstm_cell", 1)
    if a.ndim == 0 or a.shape[-1] % 4:
        raise ValueError(f"lstm_cell: gates must have a last axis of 4·hidden_size (i, f, g, o), "
                         f"got shape {a.shape}")
    _check_last("lstm_cell", "hc", s, a.shape[-1] // 2, f"[h, c], 2·hidden_size for gates of "
                f"shape {a.shape}")
    return record(LSTM_CELL, (a, s.astype(a.dtype) if s.dtype != a.dtype else s), {})


# ---------------------------------------------------------------------------
# GRU

def _gru_parts(xp: Any, hp: Any) -> tuple[Any, Any]:
    """(σ([r, z] preactivations), n)."""
    H = xp.shape[-1] // 3
    rz = _sigmoid(xp[..., :2 * H] + hp[..., :2 * H])
    n = np.tanh(xp[..., 2 * H:] + rz[..., :H] * hp[..., 2 * H:])
    return rz, n


def _gru_cell(xp: np.ndarray, hp: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, Any]:
    rz, n = _gru_parts(xp, hp)
    H = xp.shape[-1] // 3
    return n + rz[..., H:] * (h - n), (rz, n)


def _gru_grads(g: Any, xp: Any, hp: Any, h: Any, saved: Any) -> tuple[Any, Any, Any]:
    """(∂[r, z] preactivations, ∂n preactivation, r)."""
    H = xp.shape[-1] // 3
    rz, n = saved if saved is not None else _gru_parts(xp, hp)
    r, z = rz[..., :H], rz[..., H:]
    dn = g * (1 - z) * (1 - n * n)
    drz = np.concatenate([dn * hp[..., 2 * H:] * r * (1 - r), g * (h - n) * z * (1 - z)],
                         axis=-1)
    return drz, dn, r


def _gru_vjp_xp(g: Any, out: Any, xp: Any, hp: Any, h: Any, saved: Any = None) -> Any:
    drz, dn, _ = _gru_grads(g, xp, hp, h, saved)
    return np.concatenate([drz, dn], axis=-1)


def _gru_vjp_hp(g: Any, out: Any, xp: Any, hp: Any, h: Any, saved: Any = None) -> Any:
    drz, dn, r = _gru_grads(g, xp, hp, h, saved)
    return np.concatenate([drz, dn * r], axis=-1)


def _gru_vjp_h(g: Any, out: Any, xp: Any, hp: Any, h: Any, saved: Any = None) -> Any:
    H = xp.shape[-1] // 3
    rz = saved[0] if saved is not None else _gru_parts(xp, hp)[0]
    return g * rz[..., H:]


GRU_CELL = defop("gru_cell", _gru_cell, _gru_vjp_xp, _gru_vjp_hp, _gru_vjp_h, saves=True)


@public(GRU_CELL)
def gru_cell(xp: ArrayLike, hp: ArrayLike, h: ArrayLike) -> Tensor:
    """One GRU step after its matrix products: xp = W_ih x + b_ih and hp =
    W_hh h + b_hh (..., 3H) in PyTorch's order r, z, n, h (..., H) the previous
    state; returns h' = (1 - z)⊙n + z⊙h with r, z = σ(xp + hp) and
    n = tanh(xp_n + r⊙hp_n). See the module docstring for the gradients."""
    x = as_tensor(xp, "gru_cell", 0)
    p = as_tensor(hp, "gru_cell", 1)
    s = as_tensor(h, "gru_cell", 2)
    if x.ndim == 0 or x.shape[-1] % 3:
        raise ValueError(f"gru_cell: xp must have a last axis of 3·hidden_size (r, z, n), got "
                         f"shape {x.shape}")
    _check_last("gru_cell", "hp", p, x.shape[-1], f"3·hidden_size, as xp {x.shape}")
    _check_last("gru_cell", "h", s, x.shape[-1] // 3, f"hidden_size for xp of shape {x.shape}")
    args = tuple(t.astype(x.dtype) if t.dtype != x.dtype else t for t in (x, p, s))
    return record(GRU_CELL, args, {})
