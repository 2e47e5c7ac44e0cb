"""Fused recurrent ops: the gate math of one LSTM or GRU time step as ONE op,
and a whole LSTM layer as one op (chapter 7; used by tensorgraph/nn/recurrent.py).

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

- `lstm_sequence(x, h0, c0, W_ih, W_hh, b_ih, b_hh)`: a whole one-direction LSTM
  layer over T steps as ONE op (nn.LSTM's default path; PyTorch's and cuDNN's
  fused layer do the same). x (T, B, I), h0 and c0 (B, H) or (1, H). Returns the states
  of every step side by side, [h_t, c_t] (T, B, 2H), as `lstm_cell` does per step:

      a_t = W_ih x_t + b_ih + b_hh + W_hh h_{t-1}        (the x part for all t: one matmul)
      [h_t, c_t] = lstm_cell(a_t, [h_{t-1}, c_{t-1}])

  Its VJP is backpropagation through time, in numpy, from the gradient
  G = [G_h, G_c] of every step's output (gate derivatives as for lstm_cell):
      for t = T-1 ... 0:
          ∂h_t = G_h[t] + W_hhᵀ-product carried from t+1 (∂a_{t+1} W_hh)
          ∂c_t = G_c[t] + ∂c_{t+1} ⊙ f_{t+1} + ∂h_t ⊙ o_t ⊙ (1 - tanh²c_t)
          ∂a_t = [∂c_t ⊙ g ⊙ i(1-i), ∂c_t ⊙ c_{t-1} ⊙ f(1-f), ∂c_t ⊙ i ⊙ (1-g²),
                  ∂h_t ⊙ tanh c_t ⊙ o(1-o)]
      ∂x = ∂A W_ih    ∂W_ih = ∂Aᵀ X    ∂W_hh = ∂Aᵀ [h_{-1}, h_0 ... h_{T-2}]
      ∂b_ih = ∂b_hh = Σ_t ∂a_t         ∂h0 = ∂a_0 W_hh    ∂c0 = ∂c_0 ⊙ f_0
  with ∂A, X the (T·B, ·) stacks of every step's ∂a_t, x_t: each weight's
  gradient is one matmul over all steps. The seven VJPs share one BPTT per
  backward (its ∂A kept in what forward saved); each then does only its own
  product. On Tensors (create_graph) a VJP records the layer again step by
  step (matmul, lstm_cell) and differentiates that with create_graph, so
  second derivatives are those of the per-step path.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..tensor import ArrayLike, Tensor, record
from .registry import OPS, as_tensor

defop, public = OPS.defop, OPS.public

__all__ = ["lstm_cell", "gru_cell", "lstm_sequence"]


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


# ---------------------------------------------------------------------------
# A whole LSTM layer (one direction)

# sigmoid(a) = 0.5·tanh(0.5·a) + 0.5 for the gates i, f, o and tanh(a) for g, as one
# pass each over all 4H columns: a·k, tanh, ·k, +m with k = [½ ½ 1 ½], m = [½ ½ 0 ½]
# (the same roundings as _sigmoid: the halvings are exact).
def _gate_scales(H: int, dt: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    k = np.full(4 * H, 0.5, dt)
    k[2 * H:3 * H] = 1
    m = k.copy()
    m[2 * H:3 * H] = 0
    return k, m


def _lstm_sequence(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_ih: np.ndarray,
                   w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray) -> tuple[np.ndarray, Any]:
    T, B, I = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    # the x part of every step's preactivation: one (T·B, I) @ (I, 4H) product; the
    # buffer then holds the gates' activations (saved for the VJP)
    a = x.reshape(T * B, I) @ w_ih.T
    a += b_ih               # (x W_ihᵀ + b_ih) + b_hh: nn.LSTM's per-step path adds them so
    a += b_hh
    act = a.reshape(T, B, 4 * H)
    whh_t = np.ascontiguousarray(w_hh.T)   # a contiguous right operand: the faster product
    k, m = _gate_scales(H, dt)
    out = np.empty((T, B, 2 * H), dt)
    tc = np.empty((T, B, H), dt)
    ig = np.empty((B, H), dt)
    h, c = h0, c0
    for t in range(T):
        s = act[t]
        s += h @ whh_t
        s *= k
        np.tanh(s, out=s)
        s *= k
        s += m
        cn = out[t, :, H:]
        np.multiply(s[:, H:2 * H], c, out=cn)           # c' = f ⊙ c + i ⊙ g
        np.multiply(s[:, :H], s[:, 2 * H:3 * H], out=ig)
        cn += ig
        np.tanh(cn, out=tc[t])
        hn = out[t, :, :H]
        np.multiply(s[:, 3 * H:], tc[t], out=hn)        # h' = o ⊙ tanh c'
        h, c = hn, cn
    # the last slot keeps one backward's BPTT for the seven VJPs (see _lstm_bptt)
    return out, [act, tc, None]


def _lstm_bptt(g: np.ndarray, out: np.ndarray, h0: np.ndarray, c0: np.ndarray,
               w_hh: np.ndarray, saved: list[Any]) -> dict[str, Any]:
    """Backpropagation through time, once per backward: {"da": ∂A (T, B, 4H),
    "c0": ∂c0}, kept in saved[2] with the g it was computed for."""
    if saved[2] is not None and saved[2][0] is g:
        return saved[2][1]
    act, tc = saved[0], saved[1]
    T, B, H4 = act.shape
    H = H4 // 4
    dt = act.dtype
    da = np.empty((T, B, H4), dt)
    dh = np.empty((B, H), dt)
    dc = np.empty((B, H), dt)
    tmp = np.empty((B, H), dt)
    dsig = np.empty((B, H4), dt)
    gh, gc = g[..., :H], g[..., H:]
    dh_next: Any = None
    dc_next: Any = None
    for t in range(T - 1, -1, -1):
        s, tct, dat = act[t], tc[t], da[t]
        i, f, gg, o = s[:, :H], s[:, H:2 * H], s[:, 2 * H:3 * H], s[:, 3 * H:]
        if dh_next is None:
            dh[...] = gh[t]
        else:
            np.add(gh[t], dh_next, out=dh)
        # ∂c = G_c + ∂c_{t+1} ⊙ f_{t+1} + ∂h ⊙ o ⊙ (1 - tanh²c)
        np.multiply(tct, tct, out=tmp)
        np.subtract(1, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        np.add(gc[t], tmp, out=dc)
        if dc_next is not None:
            dc += dc_next
        c_prev = out[t - 1, :, H:] if t else c0
        np.multiply(dc, gg, out=dat[:, :H])
        np.multiply(dc, c_prev, out=dat[:, H:2 * H])
        np.multiply(dc, i, out=dat[:, 2 * H:3 * H])
        np.multiply(dh, tct, out=dat[:, 3 * H:])
        # the gates' derivatives: σ(1-σ) for i, f, o; 1 - tanh² for g
        np.subtract(1, s, out=dsig)
        dsig *= s
        np.multiply(gg, gg, out=dsig[:, 2 * H:3 * H])
        np.subtract(1, dsig[:, 2 * H:3 * H], out=dsig[:, 2 * H:3 * H])
        dat *= dsig
        dc_next = dc * f
        if t:               # ∂h0 = ∂a_0 W_hh only if h0's VJP asks (a zero state does not)
            dh_next = dat @ w_hh
    grads = {"da": da, "c0": dc_next}
    saved[2] = (g, grads)
    return grads


def _lstm_sequence_recorded(x: Any, h0: Any, c0: Any, w_ih: Any, w_hh: Any, b_ih: Any,
                            b_hh: Any) -> Any:
    """The op's output recorded step by step (matmul, lstm_cell), from Tensors:
    what a VJP differentiates when asked for a graph (create_graph)."""
    from .shape import concat, stack
    T = x.shape[0]
    H = w_hh.shape[1]
    xp = (x @ w_ih.T + b_ih) + b_hh
    whh_t = w_hh.T
    hc = concat([h0, c0], axis=-1)
    outs = []
    for t in range(T):
        hc = lstm_cell(xp[t] + hc[..., :H] @ whh_t, hc)
        outs.append(hc)
    return stack(outs, axis=0)


def _lstm_sequence_vjp(k: int) -> Any:
    def vjp(g: Any, out: Any, x: Any, h0: Any, c0: Any, w_ih: Any, w_hh: Any, b_ih: Any,
            b_hh: Any, saved: Any = None) -> Any:
        xs = (x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        if isinstance(g, Tensor):      # create_graph: differentiate the recorded steps
            from ..autograd import grad
            again = _lstm_sequence_recorded(*xs)
            return grad(again, [xs[k]], g, create_graph=True)[0]
        if saved is None:              # a replayed VJP without its forward's values
            saved = _lstm_sequence(*xs)[1]
        d = _lstm_bptt(g, out, h0, c0, w_hh, saved)
        if k == 1:
            return d["da"][0] @ w_hh
        if k == 2:
            return d["c0"]
        T, B, H4 = d["da"].shape
        da = d["da"].reshape(T * B, H4)
        if k == 0:
            return (da @ w_ih).reshape(x.shape)
        if k == 3:
            return da.T @ x.reshape(T * B, -1)
        if k == 4:
            H = H4 // 4
            hprev = np.empty((T, B, H), da.dtype)
            hprev[0] = h0
            hprev[1:] = out[:-1, :, :H]
            return da.T @ hprev.reshape(T * B, H)
        if "b" not in d:               # the same sum for both biases
            d["b"] = da.sum(axis=0)
        return d["b"]
    vjp.__name__ = f"_lstm_sequence_vjp{k}"
    return vjp


LSTM_SEQUENCE = defop("lstm_sequence", _lstm_sequence, *[_lstm_sequence_vjp(k) for k in range(7)],
                      saves=True)


@public(LSTM_SEQUENCE)
def lstm_sequence(x: ArrayLike, h0: Optional[ArrayLike], c0: Optional[ArrayLike],
                  weight_ih: ArrayLike, weight_hh: ArrayLike, bias_ih: Optional[ArrayLike] = None,
                  bias_hh: Optional[ArrayLike] = None) -> Tensor:
    """A one-direction LSTM layer over a whole sequence as one op: x (T, B, I),
    h0 and c0 (B, H) or one row (1, H) (None: zeros), weight_ih (4H, I), weight_hh (4H, H),
    biases (4H,) (None: none), gates in PyTorch's order i, f, g, o. Returns
    [h_t, c_t] for every step, (T, B, 2H): the outputs are [..., :H], the
    final state [-1]. The same values as `lstm_cell` step by step; the VJP is
    backpropagation through time (see the module docstring)."""
    fn = "lstm_sequence"
    xt = as_tensor(x, fn, 0)
    wi = as_tensor(weight_ih, fn, 3)
    wh = as_tensor(weight_hh, fn, 4)
    if xt.ndim != 3 or xt.shape[0] == 0:
        raise ValueError(f"{fn}: x must be (T, B, input_size) with T ≥ 1, got shape {xt.shape}")
    T, B, I = xt.shape
    if wh.ndim != 2 or wh.shape[0] != 4 * wh.shape[1] or wh.shape[1] == 0:
        raise ValueError(f"{fn}: weight_hh must be (4·hidden_size, hidden_size), got shape "
                         f"{wh.shape}")
    H = wh.shape[1]
    if wi.shape != (4 * H, I):
        raise ValueError(f"{fn}: weight_ih must be (4·hidden_size, input_size) = {(4 * H, I)} "
                         f"for x of shape {xt.shape} and weight_hh of shape {wh.shape}, got "
                         f"shape {wi.shape}")
    dt = xt.dtype if xt.dtype.kind == "f" else np.dtype(np.float32)
    args: list[Tensor] = [xt]
    for pos, (name, v) in enumerate((("h0", h0), ("c0", c0)), start=1):
        # None: one zero row for the whole batch (a captured graph's batch size is open)
        t = Tensor(np.zeros((1, H), dt)) if v is None else as_tensor(v, fn, pos)
        if t.shape not in ((B, H), (1, H)):
            raise ValueError(f"{fn}: {name} must be (batch, hidden_size) = {(B, H)} (or one row "
                             f"{(1, H)} for every sequence) for x of shape {xt.shape} and "
                             f"weight_hh of shape {wh.shape}, got shape {t.shape}")
        args.append(t)
    args += [wi, wh]
    for pos, (name, v) in enumerate((("bias_ih", bias_ih), ("bias_hh", bias_hh)), start=5):
        t = Tensor(np.zeros(4 * H, dt)) if v is None else as_tensor(v, fn, pos)
        if t.shape != (4 * H,):
            raise ValueError(f"{fn}: {name} must be (4·hidden_size,) = {(4 * H,)}, got shape "
                             f"{t.shape}")
        args.append(t)
    return record(LSTM_SEQUENCE, tuple(a.astype(dt) if a.dtype != dt else a for a in args), {})
