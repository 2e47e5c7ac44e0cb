"""Memory-augmented networks (chapter 8, tensorgraph/nn/memory.py): each
addressing and memory function against its equation written out in numpy
(loops over the indices, as the papers state them) and against float64
central differences over random sizes; the weightings' properties; nn.NTM and
nn.DNC against a plain-numpy DNC, their gradients, trace, state, errors,
state_dict and drawing."""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import tensorgraph as tg
from checks import check_grads, leaf
from conftest import require
from tensorgraph import nn

FEW = settings(max_examples=8, deadline=None)
RNG = np.random.default_rng(0)


def softmax(a: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-a))


def distribution(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Random weightings: positive, summing to less than 1 over the last axis."""
    w = rng.uniform(0.05, 1.0, shape)
    return 0.9 * w / w.sum(axis=-1, keepdims=True)


sizes = st.integers(1, 4)


# ---------------------------------------------------------------------------
# The functions, written out as the papers state them

def content_ref(M: np.ndarray, k: np.ndarray, beta: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    B, N, _ = M.shape
    H = k.shape[1]
    out = np.zeros((B, H, N))
    for b in range(B):
        for h in range(H):
            D = [k[b, h] @ M[b, i] / (np.sqrt(k[b, h] @ k[b, h] + eps) *
                                      np.sqrt(M[b, i] @ M[b, i] + eps)) for i in range(N)]
            e = np.exp(beta[b, h] * np.array(D))
            out[b, h] = e / e.sum()
    return out


@FEW
@given(B=sizes, N=sizes, W=sizes, H=sizes, seed=st.integers(0, 99))
def test_content_weights(B: int, N: int, W: int, H: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    M, k, beta = rng.normal(size=(B, N, W)), rng.normal(size=(B, H, W)), rng.uniform(0, 5, (B, H))
    w = nn.content_weights(tg.tensor(M), tg.tensor(k), tg.tensor(beta))
    np.testing.assert_allclose(w.data, content_ref(M, k, beta), rtol=1e-10)
    assert w.dtype == np.float64
    check_grads(nn.content_weights, M, k, beta)


def test_content_weights_at_a_zero_memory_are_uniform_with_finite_gradients() -> None:
    # the memory starts at zeros: D = 0 for every row
    M, k, beta = leaf(np.zeros((1, 4, 3))), leaf(RNG.normal(size=(1, 2, 3))), leaf([[2.0, 1.0]])
    w = nn.content_weights(M, k, beta)
    np.testing.assert_allclose(w.data, 0.25)
    (w * leaf(RNG.normal(size=w.shape))).sum().backward()
    assert all(np.isfinite(t.grad.data).all() for t in (M, k, beta))
    check_grads(nn.content_weights, np.zeros((1, 4, 3)), k.data, beta.data)


def ntm_address_ref(prev, content, g, s, gamma):
    B, H, N = prev.shape
    r = s.shape[-1] // 2
    out = np.zeros_like(prev)
    for b in range(B):
        for h in range(H):
            wg = g[b, h] * content[b, h] + (1 - g[b, h]) * prev[b, h]
            # w̃[i] = Σ_j w^g[j] s[i - j] with the offset i - j taken mod N in -r..r
            shifted = np.array([sum(wg[j] * s[b, h, k] for j in range(N)
                                    for k in range(2 * r + 1) if (j + k - r) % N == i)
                                for i in range(N)])
            p = shifted ** gamma[b, h]
            out[b, h] = p / p.sum()
    return out


@FEW
@given(B=sizes, H=sizes, N=st.integers(3, 6), r=st.integers(0, 1), seed=st.integers(0, 99))
def test_ntm_address(B: int, H: int, N: int, r: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    args = (distribution(rng, B, H, N), softmax(rng.normal(size=(B, H, N))),
            rng.uniform(0.1, 0.9, (B, H)), softmax(rng.normal(size=(B, H, 2 * r + 1))),
            rng.uniform(1.0, 3.0, (B, H)))
    w = nn.ntm_address(*map(tg.tensor, args))
    np.testing.assert_allclose(w.data, ntm_address_ref(*args), rtol=1e-10)
    np.testing.assert_allclose(w.data.sum(-1), 1.0)
    check_grads(nn.ntm_address, *args)


def test_ntm_shift_moves_the_focus_one_row_on_circularly() -> None:
    # a head on row 3 of 4 with the shift all on offset +1 and g = 1 lands on row 0
    content = np.array([[[0.0, 0.0, 0.0, 1.0]]])
    w = nn.ntm_address(np.zeros((1, 1, 4)), content, [[1.0]], [[[0.0, 0.0, 1.0]]], [[1.0]])
    np.testing.assert_array_equal(w.data, [[[1.0, 0.0, 0.0, 0.0]]])


def usage_ref(u, ww, rw, f):
    B, N = u.shape
    out = np.zeros_like(u)
    for b in range(B):
        for i in range(N):
            psi = np.prod([1 - f[b, r] * rw[b, r, i] for r in range(rw.shape[1])])
            out[b, i] = (u[b, i] + ww[b, i] - u[b, i] * ww[b, i]) * psi
    return out


@FEW
@given(B=sizes, N=sizes, R=sizes, seed=st.integers(0, 99))
def test_dnc_usage(B: int, N: int, R: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    args = (rng.uniform(0, 1, (B, N)), distribution(rng, B, N), distribution(rng, B, R, N),
            rng.uniform(0, 1, (B, R)))
    u = nn.dnc_usage(*map(tg.tensor, args))
    np.testing.assert_allclose(u.data, usage_ref(*args), rtol=1e-12)
    assert ((0 <= u.data) & (u.data <= 1)).all()
    check_grads(nn.dnc_usage, *args)


def allocation_ref(u: np.ndarray) -> np.ndarray:
    # a[φ_j] = (1 - u[φ_j]) Π_{i<j} u[φ_i], φ the rows by ascending usage
    out = np.zeros_like(u)
    for b in range(u.shape[0]):
        phi = np.argsort(u[b], kind="stable")
        for j in range(len(phi)):
            out[b, phi[j]] = (1 - u[b, phi[j]]) * np.prod([u[b, phi[i]] for i in range(j)])
    return out


def test_dnc_allocation_by_hand() -> None:
    # φ = (2, 0, 3, 1): a[2] = 0.8, a[0] = 0.6·0.2, a[3] = 0.3·0.2·0.4, a[1] = 0 (full)
    a = nn.dnc_allocation(np.array([[0.4, 1.0, 0.2, 0.7]]))
    np.testing.assert_allclose(a.data, [[0.12, 0.0, 0.8, 0.024]], rtol=1e-12)
    # an unused row takes all the weight: the first of equal ones (a stable sort)
    a = nn.dnc_allocation(np.array([[0.5, 0.0, 0.0]]))
    np.testing.assert_array_equal(a.data, [[0.0, 1.0, 0.0]])


@FEW
@given(B=sizes, N=st.integers(1, 6), seed=st.integers(0, 99))
def test_dnc_allocation(B: int, N: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    # distinct usages (no ties within ± the differences' step), some exactly 0 and 1
    u = rng.permutation(np.linspace(0, 1, N + 2)[1:-1] if N > 2 else [0.3, 0.6][:N])
    u = np.tile(u, (B, 1))
    u[0, 0] = 0.0 if N > 1 else u[0, 0]
    if N > 2:
        u[-1, -1] = 1.0
    a = nn.dnc_allocation(tg.tensor(u))
    np.testing.assert_allclose(a.data, allocation_ref(u), rtol=1e-12)
    assert (a.data >= 0).all() and (a.data.sum(-1) <= 1 + 1e-12).all()
    check_grads(nn.dnc_allocation, u)


def test_dnc_allocation_gradient_where_usage_is_exactly_zero_and_one() -> None:
    # the products then hold exact zeros (cumprod's gradient divides by nothing)
    for u in ([[0.0, 0.5, 1.0, 0.25]], [[0.3, 1.0, 0.0, 0.9]], [[1.0, 0.2, 0.0, 0.6]]):
        check_grads(nn.dnc_allocation, np.array(u))


def test_dnc_allocation_gradient_holds_the_sort_order_fixed_at_ties() -> None:
    # Equal usages (two unused rows, two full ones): central differences of the
    # allocation with φ frozen at the stable order, written out as in the paper.
    for u0 in ([0.0, 0.0, 0.3, 0.9], [1.0, 1.0, 0.0, 0.6], [0.5, 0.5, 0.5, 0.5]):
        u0 = np.array(u0)
        phi = np.argsort(u0, kind="stable")

        def fixed(u: np.ndarray) -> np.ndarray:
            a = np.zeros_like(u)
            for j in range(len(phi)):
                a[phi[j]] = (1 - u[phi[j]]) * np.prod(u[phi[:j]])
            return a
        v = RNG.normal(size=4)
        x = leaf(u0[None])
        (nn.dnc_allocation(x)[0] * v).sum().backward()
        numeric = [((fixed(u0 + 1e-6 * e) - fixed(u0 - 1e-6 * e)) @ v) / 2e-6 for e in np.eye(4)]
        np.testing.assert_allclose(x.grad.data[0], numeric, rtol=1e-6, atol=1e-9)


@FEW
@given(B=sizes, N=sizes, seed=st.integers(0, 99))
def test_dnc_write_weights(B: int, N: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, c = distribution(rng, B, N), softmax(rng.normal(size=(B, N)))
    ga, gw = rng.uniform(0, 1, B), rng.uniform(0, 1, B)
    w = nn.dnc_write_weights(*map(tg.tensor, (a, c, ga, gw)))
    want = np.array([gw[b] * (ga[b] * a[b] + (1 - ga[b]) * c[b]) for b in range(B)])
    np.testing.assert_allclose(w.data, want, rtol=1e-12)
    assert (w.data >= 0).all() and (w.data.sum(-1) <= 1 + 1e-12).all()
    check_grads(nn.dnc_write_weights, a, c, ga, gw)


@FEW
@given(B=sizes, N=sizes, W=sizes, seed=st.integers(0, 99))
def test_dnc_write(B: int, N: int, W: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    M, w = rng.normal(size=(B, N, W)), distribution(rng, B, N)
    e, v = rng.uniform(0, 1, (B, W)), rng.normal(size=(B, W))
    out = nn.dnc_write(*map(tg.tensor, (M, w, e, v)))
    want = np.array([[[M[b, i, k] * (1 - w[b, i] * e[b, k]) + w[b, i] * v[b, k]
                       for k in range(W)] for i in range(N)] for b in range(B)])
    np.testing.assert_allclose(out.data, want, rtol=1e-12)
    check_grads(nn.dnc_write, M, w, e, v)


def link_ref(L, p, w):
    B, N = w.shape
    out = np.zeros_like(L)
    for b in range(B):
        for i in range(N):
            for j in range(N):
                if i != j:
                    out[b, i, j] = (1 - w[b, i] - w[b, j]) * L[b, i, j] + w[b, i] * p[b, j]
    return out, np.array([(1 - w[b].sum()) * p[b] + w[b] for b in range(B)])


@FEW
@given(B=sizes, N=sizes, seed=st.integers(0, 99))
def test_dnc_link(B: int, N: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    L = rng.uniform(0, 1, (B, N, N)) / N * (1 - np.eye(N))
    p, w = distribution(rng, B, N), distribution(rng, B, N)
    link, prec = nn.dnc_link(*map(tg.tensor, (L, p, w)))
    want_link, want_prec = link_ref(L, p, w)
    np.testing.assert_allclose(link.data, want_link, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(prec.data, want_prec, rtol=1e-12)
    assert (np.diagonal(link.data, axis1=1, axis2=2) == 0).all()
    assert (prec.data >= 0).all() and (prec.data.sum(-1) <= 1 + 1e-12).all()
    check_grads(nn.dnc_link, L, p, w)


def test_dnc_link_records_the_order_of_writes() -> None:
    # write row 2, then row 0: L[0, 2] = 1 (0 was written right after 2)
    L, p = np.zeros((1, 3, 3)), np.zeros((1, 3))
    for row in (2, 0):
        w = np.eye(3)[row][None]
        L, p = (t.data for t in nn.dnc_link(L, p, w))
    np.testing.assert_array_equal(L[0], [[0, 0, 1], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(p[0], [1, 0, 0])


@FEW
@given(B=sizes, N=sizes, R=sizes, seed=st.integers(0, 99))
def test_dnc_read_weights(B: int, N: int, R: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    L = rng.uniform(0, 1, (B, N, N)) / N * (1 - np.eye(N))
    prev, c = distribution(rng, B, R, N), softmax(rng.normal(size=(B, R, N)))
    pi = softmax(rng.normal(size=(B, R, 3)))
    w = nn.dnc_read_weights(*map(tg.tensor, (L, prev, c, pi)))
    want = np.zeros((B, R, N))
    for b in range(B):
        for r in range(R):
            f, bw = L[b] @ prev[b, r], L[b].T @ prev[b, r]
            want[b, r] = pi[b, r, 0] * bw + pi[b, r, 1] * c[b, r] + pi[b, r, 2] * f
    np.testing.assert_allclose(w.data, want, rtol=1e-12)
    assert (w.data >= 0).all() and (w.data.sum(-1) <= 1 + 1e-12).all()
    check_grads(nn.dnc_read_weights, L, prev, c, pi)


@pytest.mark.parametrize("call, match", [
    (lambda: nn.content_weights(np.zeros((2, 4, 3)), np.zeros((2, 1, 5)), np.ones((2, 1))),
     r"content_weights: keys must have shape \(B,H,W\).*memory \(2, 4, 3\), keys \(2, 1, 5\)"),
    (lambda: nn.dnc_allocation(np.zeros(4)), r"dnc_allocation: usage must have shape \(B,N\)"),
    (lambda: nn.dnc_read_weights(np.zeros((1, 3, 3)), np.zeros((1, 2, 3)), np.zeros((1, 2, 3)),
                                 np.zeros((1, 2, 2))),
     r"dnc_read_weights: modes must have shape \(B,R,3\).*got .*modes \(1, 2, 2\)"),
    (lambda: nn.dnc_link(np.zeros((1, 3, 3)), np.zeros((2, 3)), np.zeros((1, 3))),
     r"dnc_link: prev_precedence must have shape \(B,N\)"),
    (lambda: nn.ntm_address(np.zeros((1, 1, 4)), np.zeros((1, 1, 4)), np.zeros((1, 1)),
                            np.zeros((1, 1, 2)), np.ones((1, 1))),
     r"ntm_address: shift must hold an odd number 2r \+ 1 of offsets.*\(1, 1, 2\)"),
])
def test_functions_name_themselves_and_the_shapes(call: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------
# nn.DNC against the same network written in numpy

def dnc_ref(m: nn.DNC, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The DNC of Graves et al. 2016 in plain numpy, step by step, with m's weights."""
    P = {k: np.asarray(v, np.float64) for k, v in m.state_dict().items()}
    T, B, _ = x.shape
    N, W, R, H = m.memory_size, m.word_size, m.num_reads, m.hidden_size
    h, c = np.zeros((B, H)), np.zeros((B, H))
    M, reads = np.zeros((B, N, W)), np.zeros((B, R, W))
    rw, ww, u = np.zeros((B, R, N)), np.zeros((B, N)), np.zeros((B, N))
    L, p = np.zeros((B, N, N)), np.zeros((B, N))
    ys, usages = [], []
    for t in range(T):
        z = np.concatenate([x[t], reads.reshape(B, -1)], -1)
        a = (z @ P["controller.weight_ih"].T + P["controller.bias_ih"]
             + h @ P["controller.weight_hh"].T + P["controller.bias_hh"])
        i, f, g, o = np.split(a, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        xi = h @ P["interface.weight"].T + P["interface.bias"]
        cut = np.cumsum([R * W, R, W, 1, W, W, R, 1, 1])
        kr, br, kw, bw, e, v, fg, ga, gw, pi = np.split(xi, cut, axis=-1)
        oneplus = lambda q: 1 + np.log1p(np.exp(q))          # noqa: E731
        fg, ga, gw = sigmoid(fg), sigmoid(ga)[:, 0], sigmoid(gw)[:, 0]
        u = usage_ref(u, ww, rw, fg)
        cw = content_ref(M, kw[:, None, :], oneplus(bw))[:, 0]
        ww = gw[:, None] * (ga[:, None] * allocation_ref(u) + (1 - ga[:, None]) * cw)
        M = M * (1 - ww[:, :, None] * sigmoid(e)[:, None, :]) + ww[:, :, None] * v[:, None, :]
        L, p = link_ref(L, p, ww)
        cr = content_ref(M, kr.reshape(B, R, W), oneplus(br))
        pi = softmax(pi.reshape(B, R, 3))
        rw = (pi[..., :1] * np.einsum("bji,brj->bri", L, rw) + pi[..., 1:2] * cr
              + pi[..., 2:] * np.einsum("bij,brj->bri", L, rw))
        reads = np.einsum("brn,bnw->brw", rw, M)
        ys.append(np.concatenate([h, reads.reshape(B, -1)], -1) @ P["output.weight"].T
                  + P["output.bias"])
        usages.append(u)
    return np.stack(ys), {"usage": np.stack(usages), "memory": M, "link": L}


def test_dnc_matches_the_paper_written_in_numpy() -> None:
    m = nn.DNC(3, 2, hidden_size=6, memory_size=5, word_size=4, num_reads=2, seed=3,
               dtype=np.float64)
    x = RNG.normal(size=(4, 3, 3))
    y, state, trace = m(x, trace=True)
    want, ref = dnc_ref(m, x)
    np.testing.assert_allclose(y.data, want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(trace["usage"], ref["usage"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(state.memory.data, ref["memory"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(state.link.data, ref["link"], rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------
# Gradients of the modules

def module_gradcheck(m: nn.Module, x: np.ndarray, state: Any, seed: int = 0) -> None:
    """Central differences: element by element for the input; for the
    state and the parameters together, along three random directions
    (Richardson-extrapolated)."""
    tg.gradcheck(lambda x: m(x, state)[0], [leaf(x)])
    leaves = [leaf(s.data) for s in state] + list(m.parameters())
    state = type(state)(*leaves[:len(state)])
    rng = np.random.default_rng(seed)
    v = rng.normal(size=m(x, state)[0].shape)
    m.zero_grad()
    (m(x, state)[0] * v).sum().backward()
    grads = [q.grad.data for q in leaves]
    saved = [q.data.copy() for q in leaves]

    def at(d: list[np.ndarray], step: float) -> float:
        for q, s0, dq in zip(leaves, saved, d):
            q.data[...] = s0 + step * dq
        return float((m(x, state)[0].data * v).sum())

    def central(d: list[np.ndarray], h: float) -> float:
        return (at(d, h) - at(d, -h)) / (2 * h)
    for _ in range(3):
        d = [rng.normal(size=q.shape) for q in leaves]
        # Richardson extrapolation: the central difference's error is c·h² +
        # O(h⁴), and the softmaxes of sharp strengths make c large (a plain
        # difference at h = 1e-6 was off by 6e-6 relative on a correct
        # gradient: the error fell 100x per 10x smaller h); (4·D(h/2) - D(h))/3
        # cancels the h² term (0 failures in 576 DNC cases against 1 before).
        numeric = (4 * central(d, 5e-6) - central(d, 1e-5)) / 3
        at(d, 0.0)
        analytic = sum((g * dq).sum() for g, dq in zip(grads, d))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def random_state(m: Any, B: int, rng: np.random.Generator) -> Any:
    """A state as a run could leave it (weightings summing to less than 1,
    usage in (0, 1), distinct usages, a link matrix with a zero diagonal)."""
    N = m.memory_size
    s = m.initial_state(B)
    vals = {"h": rng.normal(0, 0.5, s.h.shape), "c": rng.normal(0, 0.5, s.c.shape),
            "memory": rng.normal(size=s.memory.shape),
            "read_weights": distribution(rng, *s.read_weights.shape),
            "write_weights": distribution(rng, *s.write_weights.shape)}
    if isinstance(s, nn.DNCState):
        vals.update(read_vectors=rng.normal(size=s.read_vectors.shape),
                    usage=np.stack([rng.permutation(np.linspace(0.1, 0.9, N)) for _ in range(B)]),
                    link=rng.uniform(0, 1 / N, (B, N, N)) * (1 - np.eye(N)),
                    precedence=distribution(rng, B, N))
    else:
        vals.update(read_vector=rng.normal(size=s.read_vector.shape))
    return type(s)(**{k: tg.tensor(v) for k, v in vals.items()})


@settings(max_examples=3, deadline=None)
@given(I=st.integers(1, 2), N=st.integers(2, 4), W=st.integers(1, 3), R=st.integers(1, 2),
       T=st.integers(1, 3), seed=st.integers(0, 99))
@example(I=2, N=3, W=1, R=1, T=2, seed=12)   # a large third derivative: failed a plain difference
def test_dnc_gradients(I: int, N: int, W: int, R: int, T: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = nn.DNC(I, 2, hidden_size=3, memory_size=N, word_size=W, num_reads=R, seed=seed,
               dtype=np.float64)
    module_gradcheck(m, rng.normal(size=(T, 2, I)), random_state(m, 2, rng), seed)


@settings(max_examples=3, deadline=None)
@given(I=st.integers(1, 2), N=st.integers(3, 5), W=st.integers(1, 3), T=st.integers(1, 3),
       seed=st.integers(0, 99))
def test_ntm_gradients(I: int, N: int, W: int, T: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = nn.NTM(I, 2, hidden_size=3, memory_size=N, word_size=W, seed=seed, dtype=np.float64)
    module_gradcheck(m, rng.normal(size=(T, 2, I)), random_state(m, 2, rng), seed)


@pytest.mark.slow
@pytest.mark.parametrize("cls", [nn.DNC, nn.NTM])
def test_module_gradients_element_by_element_from_the_zero_state(cls: Any) -> None:
    m = cls(2, 2, hidden_size=3, memory_size=4, word_size=2, seed=0, dtype=np.float64)
    x = leaf(RNG.normal(size=(3, 2, 2)))
    assert tg.gradcheck(lambda x, *p: m(x)[0], [x] + list(m.parameters()))


# ---------------------------------------------------------------------------
# Trace, properties, state

def test_dnc_trace_keys_shapes_and_properties() -> None:
    T, B, N, W, R = 6, 3, 5, 4, 2
    m = nn.DNC(3, 2, hidden_size=8, memory_size=N, word_size=W, num_reads=R, seed=1)
    y, state, trace = m(RNG.normal(size=(T, B, 3)), trace=True)
    assert y.shape == (T, B, 2) and y.dtype == np.float32
    shapes = {"write_weights": (T, B, N), "read_weights": (T, B, R, N), "usage": (T, B, N),
              "allocation": (T, B, N), "free_gates": (T, B, R), "read_modes": (T, B, R, 3),
              "write_gate": (T, B), "allocation_gate": (T, B), "link": (T, B, N, N),
              "memory": (T, B, N, W)}
    assert {k: v.shape for k, v in trace.items()} == shapes
    assert all(isinstance(v, np.ndarray) for v in trace.values())
    for k in ("write_weights", "read_weights", "allocation"):
        assert (trace[k] >= 0).all() and (trace[k].sum(-1) <= 1 + 1e-5).all(), k
    assert ((trace["usage"] >= 0) & (trace["usage"] <= 1)).all()
    assert (np.diagonal(trace["link"], axis1=-2, axis2=-1) == 0).all()
    np.testing.assert_allclose(trace["read_modes"].sum(-1), 1, rtol=1e-5)
    # the first step allocates the first row (all unused, a stable sort)
    np.testing.assert_array_equal(trace["allocation"][0], np.eye(N)[[0] * B])
    np.testing.assert_array_equal(trace["read_weights"][-1], state.read_weights.data)
    assert set(nn.DNCState._fields) == {"h", "c", "memory", "read_vectors", "read_weights",
                                        "write_weights", "usage", "link", "precedence"}


def test_ntm_trace_keys_shapes_and_properties() -> None:
    T, B, N, W = 5, 2, 6, 3
    m = nn.NTM(3, 2, hidden_size=8, memory_size=N, word_size=W, shift_range=1, seed=1)
    y, state, trace = m(RNG.normal(size=(T, B, 3)), trace=True)
    shapes = {"write_weights": (T, B, N), "read_weights": (T, B, 1, N), "memory": (T, B, N, W),
              "write_shift": (T, B, 3), "read_shift": (T, B, 3), "write_sharpen": (T, B),
              "read_sharpen": (T, B)}
    assert {k: v.shape for k, v in trace.items()} == shapes
    for k in ("write_weights", "read_weights"):
        assert (trace[k] >= 0).all()
        np.testing.assert_allclose(trace[k].sum(-1), 1, rtol=1e-5)
    assert (trace["read_sharpen"] >= 1).all()
    np.testing.assert_array_equal(m.initial_state(2).write_weights.data, np.eye(N)[[0, 0]])


@pytest.mark.parametrize("cls", [nn.DNC, nn.NTM])
def test_a_run_split_in_two_continues_from_the_state(cls: Any) -> None:
    m = cls(3, 2, hidden_size=5, memory_size=4, word_size=3, seed=2, dtype=np.float64)
    x = RNG.normal(size=(5, 2, 3))
    y, s = m(x)
    y1, s1 = m(x[:2])
    y2, s2 = m(x[2:], s1)
    np.testing.assert_allclose(np.concatenate([y1.data, y2.data]), y.data, rtol=1e-12)
    for a, b in zip(s, s2):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-15)
    # the zero state given explicitly is the default
    np.testing.assert_allclose(m(x, m.initial_state(2))[0].data, y.data, rtol=1e-12)


@pytest.mark.parametrize("cls", [nn.DNC, nn.NTM])
def test_batch_first(cls: Any) -> None:
    a = cls(3, 2, hidden_size=4, memory_size=4, word_size=2, seed=0)
    b = cls(3, 2, hidden_size=4, memory_size=4, word_size=2, seed=0, batch_first=True)
    x = RNG.normal(size=(4, 2, 3)).astype(np.float32)
    (ya, _, ta), (yb, _, tb) = a(x, trace=True), b(x.swapaxes(0, 1), trace=True)
    assert yb.shape == (2, 4, 2)
    np.testing.assert_allclose(yb.data, ya.data.swapaxes(0, 1), rtol=1e-6)
    np.testing.assert_allclose(tb["write_weights"], ta["write_weights"], rtol=1e-6)  # (T, B, N)


@pytest.mark.parametrize("cls", [nn.DNC, nn.NTM])
def test_state_dict_round_trip(cls: Any) -> None:
    a = cls(3, 2, hidden_size=4, memory_size=4, word_size=2, seed=0)
    b = cls(3, 2, hidden_size=4, memory_size=4, word_size=2, seed=1)
    x = RNG.normal(size=(3, 2, 3))
    assert not np.allclose(a(x)[0].data, b(x)[0].data)
    sd = a.state_dict()
    assert list(sd) == ["controller.weight_ih", "controller.weight_hh", "controller.bias_ih",
                        "controller.bias_hh", "interface.weight", "interface.bias",
                        "output.weight", "output.bias"]
    b.load_state_dict(sd)
    np.testing.assert_array_equal(a(x)[0].data, b(x)[0].data)


def test_sizes_of_the_parameters() -> None:
    m = nn.DNC(3, 2, hidden_size=5, memory_size=4, word_size=6, num_reads=2)
    R, W = 2, 6
    assert m.controller.weight_ih.shape == (20, 3 + R * W)
    assert m.interface.weight.shape == (R * W + 3 * W + 5 * R + 3, 5)
    assert m.output.weight.shape == (2, 5 + R * W)
    n = nn.NTM(3, 2, hidden_size=5, memory_size=4, word_size=6, shift_range=1)
    assert n.interface.weight.shape == (2 * (6 + 1 + 1 + 3 + 1) + 2 * 6, 5)


# ---------------------------------------------------------------------------
# Errors

@pytest.mark.parametrize("cls", [nn.DNC, nn.NTM])
def test_errors_name_the_module_and_the_shapes(cls: Any) -> None:
    m = cls(3, 2, hidden_size=4, memory_size=5, word_size=2, name="mem")
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name} 'mem': expected a 3-D input \(seq, batch, "
                                         rf"feature\) with feature = input_size = 3, got shape "
                                         rf"\(4, 3\)"):
        m(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=rf"{name} 'mem': .*input_size = 3, got shape \(4, 2, 7\)"):
        m(np.zeros((4, 2, 7)))
    with pytest.raises(ValueError, match=rf"{name} 'mem': the input has no time steps"):
        m(np.zeros((0, 2, 3)))
    s = m.initial_state(2)
    bad = s._replace(memory=tg.tensor(np.zeros((2, 5, 3), np.float32)))
    with pytest.raises(ValueError, match=rf"{name} 'mem': state.memory must have shape "
                                         rf"\(2, 5, 2\) for a batch of 2.*got \(2, 5, 3\)"):
        m(np.zeros((4, 2, 3)), bad)
    with pytest.raises(ValueError, match=rf"{name} 'mem': state.h must have shape \(3, 4\)"):
        m(np.zeros((4, 3, 3)), s)                      # a state for another batch size
    with pytest.raises(TypeError, match=rf"{name} 'mem': state must be a {name}State"):
        m(np.zeros((4, 2, 3)), (s.h, s.c))


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match="DNC: num_reads must be a positive int, got 0"):
        nn.DNC(3, 2, num_reads=0)
    with pytest.raises(ValueError, match="DNC: memory_size must be a positive int"):
        nn.DNC(3, 2, memory_size=-1)
    with pytest.raises(ValueError, match=r"NTM: the 2·shift_range \+ 1 = 5 shift offsets must "
                                         r"fit in memory_size = 4"):
        nn.NTM(3, 2, memory_size=4, shift_range=2)


# ---------------------------------------------------------------------------
# Scopes and drawing

def test_each_step_records_under_its_own_scope() -> None:
    m = nn.DNC(3, 2, hidden_size=4, memory_size=4, word_size=2, name="dnc")
    y, _ = m(RNG.normal(size=(3, 2, 3)))
    scopes = set()
    stack, seen = [y], set()
    while stack:
        t = stack.pop()
        if t.node is None or id(t) in seen:
            continue
        seen.add(id(t))
        scopes.add(t.node.scope)
        stack.extend(t.node.parents)
    steps = {s[1] for s in scopes if len(s) > 1 and s[1].startswith("t")}
    assert steps == {"t0", "t1", "t2"}
    assert ("dnc", "t1", "write") in scopes and ("dnc", "t1", "read") in scopes
    assert ("dnc", "controller") in scopes and ("dnc", "output") in scopes


def test_drawing_a_dnc_folds_its_steps() -> None:
    pytest.importorskip("graphviz")
    m = nn.DNC(3, 2, hidden_size=4, memory_size=4, word_size=2, name="dnc", seed=0)
    y, _ = m(RNG.normal(size=(3, 2, 3)).astype(np.float32))
    d = tg.draw(y, view="modules", module=m)
    # the DOT source, read as tests/test_draw_recurrent.py reads it
    clusters = re.findall(r'label="([^"]*)" labeljust=l', d.source)
    assert "one time step of 3 (t0 … t2), drawn once" in clusters
    loops = [line for line in d.source.splitlines()
             if 'tooltip="the state carried to the next time step"' in line]
    assert sum('label=" next step ×3 "' in line for line in loops) == 1
    assert len(re.findall(r'\[label="cumprod\\n', d.source)) == 1   # the drawn step's allocation
    assert len(re.findall(r'\[label="lstm_cell\\n', d.source)) == 1
    require(tg.draw.backend_info() is not None, "no Graphviz layout engine")
    assert d.svg().lstrip().startswith(("<?xml", "<svg"))


def test_float32_inputs_give_float32() -> None:
    f = np.float32
    M, w = RNG.normal(size=(2, 4, 3)).astype(f), distribution(RNG, 2, 4).astype(f)
    rw, L = distribution(RNG, 2, 1, 4).astype(f), np.zeros((2, 4, 4), f)
    outs = [nn.content_weights(M, M[:, :2], np.ones((2, 2), f)),
            nn.ntm_address(rw, rw, np.full((2, 1), 0.5, f), np.full((2, 1, 3), 1 / 3, f),
                           np.ones((2, 1), f)),
            nn.dnc_usage(w, w, rw, np.full((2, 1), 0.5, f)), nn.dnc_allocation(w),
            nn.dnc_write_weights(w, w, np.ones(2, f), np.ones(2, f)),
            nn.dnc_write(M, w, M[:, 0], M[:, 1]), *nn.dnc_link(L, w, w),
            nn.dnc_read_weights(L, rw, rw, np.full((2, 1, 3), 1 / 3, f))]
    assert [o.dtype for o in outs] == [np.float32] * len(outs)


def test_a_captured_dnc_replays_like_the_eager_one_on_new_inputs() -> None:
    # the allocation's sort is recorded (sort, argsort, one_hot), so a replay
    # sorts each call's usage afresh instead of reusing the capture's order
    m = nn.DNC(3, 2, hidden_size=4, memory_size=5, word_size=2, seed=0)
    x0, x1 = (RNG.normal(size=(4, 2, 3)).astype(np.float32) for _ in range(2))
    g = tg.capture(lambda x: m(x)[0], x0)
    with tg.no_grad():
        want, trace = m(x1, trace=True)[0::2]
    assert not (np.argsort(trace["usage"][-1], axis=-1) ==
                np.argsort(m(x0, trace=True)[2]["usage"][-1], axis=-1)).all()
    np.testing.assert_allclose(g(x1).numpy(), want.data, rtol=1e-5, atol=1e-6)
