"""nn.AdditiveAttention / LuongAttention and masked_softmax
(tensorgraph/nn/attention.py): values against the equations written here in
numpy, gradients against central differences over random sizes and masks
(inputs and parameters), the mask's contract (weights sum to 1 over real
positions, exactly 0 and no gradient on padded ones, fully masked rows give
zeros and no NaN), and the errors."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgraph as tg
from tensorgraph.nn import AdditiveAttention, LuongAttention, masked_softmax

RNG = np.random.default_rng(7)
F64 = np.float64


def _softmax_ref(e: np.ndarray, m: np.ndarray) -> np.ndarray:
    out = np.zeros_like(e)
    for b in range(e.shape[0]):
        idx = np.flatnonzero(m[b])
        if idx.size:
            z = np.exp(e[b, idx] - e[b, idx].max())
            out[b, idx] = z / z.sum()
    return out


def _scores_ref(att: Any, q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """e[b, s] from the docstrings' equations, one (b, s) at a time."""
    B, S = k.shape[:2]
    e = np.zeros((B, S))
    for b in range(B):
        for s in range(S):
            if isinstance(att, AdditiveAttention):
                h = att.query_proj.weight.data @ q[b] + att.key_proj.weight.data @ k[b, s] \
                    + att.key_proj.bias.data
                e[b, s] = att.v.data @ np.tanh(h)
            elif att.score == "dot":
                e[b, s] = q[b] @ k[b, s]
            elif att.score == "general":
                e[b, s] = q[b] @ att.weight.data @ k[b, s]
            else:
                h = att.concat_proj.weight.data @ np.concatenate([q[b], k[b, s]]) \
                    + att.concat_proj.bias.data
                e[b, s] = att.v.data @ np.tanh(h)
            if getattr(att, "scale", False):
                e[b, s] /= np.sqrt(k.shape[2])
    return e


def _make(kind: str, hq: int, hk: int, seed: int) -> Any:
    if kind == "additive":
        return AdditiveAttention(hq, hk, 3, seed=seed, dtype=F64)
    if kind == "dot":
        return LuongAttention(hk, hk, "dot", dtype=F64)
    if kind == "scaled":
        return LuongAttention(hk, hk, "dot", scale=True, dtype=F64)
    return LuongAttention(hq, hk, kind, hidden_size=4, seed=seed, dtype=F64)


KINDS = ["additive", "dot", "scaled", "general", "concat"]


@pytest.mark.parametrize("kind", KINDS)
def test_values_follow_the_equations(kind: str) -> None:
    att = _make(kind, 3, 4, seed=1)
    hq = att.query_size
    q, k, v = RNG.standard_normal((3, hq)), RNG.standard_normal((3, 6, 4)), \
        RNG.standard_normal((3, 6, 2))
    lengths = np.array([6, 2, 4])
    c, a = att(q, k, v, lengths=lengths)
    m = np.arange(6)[None] < lengths[:, None]
    a_ref = _softmax_ref(_scores_ref(att, q, k), m)
    np.testing.assert_allclose(a.data, a_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c.data, np.einsum("bs,bsh->bh", a_ref, v), rtol=1e-12)
    np.testing.assert_allclose(a.data.sum(axis=1), 1, rtol=1e-12)
    assert (a.data[~m] == 0).all()
    # values default to the keys
    c2, _ = att(q, k, mask=m)
    np.testing.assert_allclose(c2.data, np.einsum("bs,bsh->bh", a_ref, k), rtol=1e-12)


@settings(max_examples=8, deadline=None)
@given(kind=st.sampled_from(KINDS), b=st.integers(1, 3), s=st.integers(1, 4),
       hq=st.integers(1, 3), hk=st.integers(1, 3), hv=st.integers(1, 3),
       seed=st.integers(0, 2 ** 16))
def test_gradcheck_over_random_sizes_and_masks(kind: str, b: int, s: int, hq: int, hk: int,
                                                hv: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    att = _make(kind, hq, hk, seed)
    q = tg.tensor(rng.standard_normal((b, att.query_size)), requires_grad=True)
    k = tg.tensor(rng.standard_normal((b, s, hk)), requires_grad=True)
    v = tg.tensor(rng.standard_normal((b, s, hv)), requires_grad=True)
    lengths = rng.integers(0, s + 1, b)          # length 0 included: a fully masked row
    params = list(att.parameters())
    assert tg.gradcheck(lambda q, k, v, *p: att(q, k, v, lengths=lengths), [q, k, v, *params])


def test_padded_positions_neither_change_the_result_nor_get_gradient() -> None:
    att = AdditiveAttention(3, 4, 5, seed=2, dtype=F64)
    q = RNG.standard_normal((2, 3))
    k = tg.tensor(RNG.standard_normal((2, 5, 4)), requires_grad=True)
    v = tg.tensor(RNG.standard_normal((2, 5, 2)), requires_grad=True)
    lengths = np.array([3, 5])
    c, a = att(q, k, v, lengths=lengths)
    k2, v2 = k.data.copy(), v.data.copy()
    k2[0, 3:], v2[0, 3:] = 1e6, -1e6       # huge (finite) junk in the padding
    c2, a2 = att(q, k2, v2, lengths=lengths)
    np.testing.assert_array_equal(a.data, a2.data)
    np.testing.assert_array_equal(c.data, c2.data)
    gk, gv = tg.grad((c * c).sum() + (a * a).sum(), [k, v])
    assert (gk.data[0, 3:] == 0).all() and (gv.data[0, 3:] == 0).all()
    assert np.abs(gk.data[1]).min() > 0


def test_fully_masked_rows_give_zeros_without_nan() -> None:
    e = tg.tensor(RNG.standard_normal((3, 4)) * 50, requires_grad=True)
    m = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], bool)
    a = masked_softmax(e, m)
    assert np.isfinite(a.data).all()
    np.testing.assert_array_equal(a.data[1], 0)
    np.testing.assert_allclose(a.data[[0, 2]].sum(axis=1), 1, rtol=1e-12)
    (g,) = tg.grad((a * tg.tensor(RNG.standard_normal((3, 4)))).sum(), [e])
    assert np.isfinite(g.data).all() and (g.data[1] == 0).all() and (g.data[0, 2:] == 0).all()
    # huge scores: shifted by the unmasked maximum, no overflow
    big = masked_softmax(np.array([[1000.0, 999.0, 5000.0]]), np.array([[1, 1, 0]], bool))
    np.testing.assert_allclose(big.data, [[1 / (1 + np.exp(-1)), 1 / (1 + np.e), 0]])
    # no mask: the plain softmax
    np.testing.assert_allclose(masked_softmax(e).data, tg.softmax(e, axis=-1).data)


def test_errors_name_the_module_and_the_shapes() -> None:
    att = AdditiveAttention(3, 4, 5, seed=0)
    q, k = np.zeros((2, 3)), np.zeros((2, 5, 4))
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, 5\] .* got min 1 and max 6"):
        att(q, k, lengths=[1, 6])
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, src_len\) = \(2, 5\), "
                                         r"got \(2, 4\)"):
        att(q, k, mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="give mask or lengths, not both"):
        att(q, k, mask=np.ones((2, 5), bool), lengths=[1, 2])
    with pytest.raises(ValueError, match=r"AdditiveAttention 'additiveattention': query has 2 "
                                         r"features, expected 3"):
        att(np.zeros((2, 2)), k)
    with pytest.raises(ValueError, match=r"expected query \(batch, Hq\).* got shapes \(3,\)"):
        att(np.zeros(3), k)
    with pytest.raises(ValueError, match=r"batch and src_len must agree"):
        att(q, k, np.zeros((2, 4, 7)))
    with pytest.raises(ValueError, match="score='dot' needs query_size = key_size, got 3 and 4"):
        LuongAttention(3, 4)
    with pytest.raises(ValueError, match="score must be one of"):
        LuongAttention(3, 4, score="bilinear")


def test_a_captured_attention_replays_with_new_lengths() -> None:
    att = LuongAttention(4, 4, "general", seed=3)
    g = tg.capture(lambda q, k, n: att(q, k, lengths=n), tg.placeholder((None, 4), name="q"),
                   tg.placeholder((None, 6, 4), name="k"),
                   tg.placeholder((None,), "int64", name="n"))
    for b in (2, 5):
        q = RNG.standard_normal((b, 4)).astype(np.float32)
        k = RNG.standard_normal((b, 6, 4)).astype(np.float32)
        n = RNG.integers(0, 7, b)
        c, a = g(q, k, n)
        c2, a2 = att(q, k, lengths=n)
        np.testing.assert_allclose(a.data, a2.data, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(c.data, c2.data, rtol=1e-6, atol=1e-7)
        assert (a.data[np.arange(6)[None] >= n[:, None]] == 0).all()
