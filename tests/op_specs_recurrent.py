"""Specs for the fused recurrent cells (tensorgraph/ops/recurrent.py), in the
form tests/test_op_specs.py runs: a builder drawing (fn on Tensors, float64
input arrays, numpy reference). The references are the cells' equations
written out gate by gate with 1/(1 + e^-x) (not the ops' tanh form); the
layers built on them are tested against PyTorch in tests/test_recurrent.py.
Shapes include broadcasting (a state given as one row for the whole batch)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from hypothesis import strategies as st

import strategies as S
import tensorgraph as tg

Spec = tuple[Callable[..., Any], list[np.ndarray], Callable[..., Any]]
RECURRENT_SPECS: dict[str, Callable[[st.DataObject], Spec]] = {}


def _sig(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def lstm_ref(a: np.ndarray, hc: np.ndarray) -> np.ndarray:
    """[h', c'] from the preactivations (i, f, g, o) and [h, c]."""
    i, f, g, o = np.split(a, 4, axis=-1)
    c = _sig(f) * np.split(hc, 2, axis=-1)[1] + _sig(i) * np.tanh(g)
    h = _sig(o) * np.tanh(c)
    return np.concatenate(np.broadcast_arrays(h, c), axis=-1)


def gru_ref(xp: np.ndarray, hp: np.ndarray, h: np.ndarray) -> np.ndarray:
    xr, xz, xn = np.split(xp, 3, axis=-1)
    hr, hz, hn = np.split(hp, 3, axis=-1)
    r, z = _sig(xr + hr), _sig(xz + hz)
    n = np.tanh(xn + r * hn)
    return (1 - z) * n + z * h


def _shapes(data: st.DataObject, n: int) -> tuple[list[tuple[int, ...]], int]:
    """n leading shapes that broadcast together (some may be a single row), and H."""
    H = data.draw(st.integers(1, 3), label="hidden")
    batch = data.draw(st.sampled_from([(), (1,), (2,), (3,), (2, 2)]), label="batch")
    lead = [batch if data.draw(st.booleans(), label=f"full{i}") or i == 0 else ()
            for i in range(n)]
    return lead, H


def _lstm(data: st.DataObject) -> Spec:
    (la, lh), H = _shapes(data, 2)
    a = data.draw(S.arrays(la + (4 * H,), -3, 3), label="gates")
    hc = data.draw(S.arrays(lh + (2 * H,)), label="hc")
    return (lambda a, hc: tg.lstm_cell(a, hc), [a, hc], lstm_ref)


def _gru(data: st.DataObject) -> Spec:
    (lx, lp, lh), H = _shapes(data, 3)
    xp = data.draw(S.arrays(lx + (3 * H,), -3, 3), label="xp")
    hp = data.draw(S.arrays(lp + (3 * H,), -3, 3), label="hp")
    h = data.draw(S.arrays(lh + (H,)), label="h")
    return (lambda xp, hp, h: tg.gru_cell(xp, hp, h), [xp, hp, h], gru_ref)


def lstm_sequence_ref(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_ih: np.ndarray,
                      w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray) -> np.ndarray:
    """[h_t, c_t] of every step, by lstm_ref one step at a time."""
    H = w_hh.shape[1]
    hc = np.concatenate([h0, c0], axis=-1)
    outs = []
    for xt in x:
        hc = lstm_ref(xt @ w_ih.T + b_ih + hc[:, :H] @ w_hh.T + b_hh, hc)
        outs.append(hc)
    return np.stack(outs)


def _lstm_sequence(data: st.DataObject) -> Spec:
    T, B, I, H = (data.draw(st.integers(1, n), label=k) for k, n in
                  (("T", 4), ("B", 3), ("I", 3), ("H", 3)))
    shapes = [(T, B, I), (B, H), (B, H), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,)]
    arrays = [data.draw(S.arrays(s, -1.5, 1.5), label=f"x{k}") for k, s in enumerate(shapes)]
    return (lambda *xs: tg.lstm_sequence(*xs), arrays, lstm_sequence_ref)


RECURRENT_SPECS["lstm_cell"] = _lstm
RECURRENT_SPECS["gru_cell"] = _gru
RECURRENT_SPECS["lstm_sequence"] = _lstm_sequence
