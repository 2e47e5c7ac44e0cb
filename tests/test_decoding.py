"""greedy_decode and beam_search (tensorgraph/nn/decoding.py) on hand-built
step functions whose sequence probabilities are known: beam search finds the
best sequence where greedy provably does not, agrees with an exhaustive
search, beam_width=1 is greedy, scores are the summed log-probabilities,
eos and max_len are handled, length normalisation changes the winner as its
formula says, and a model's Tensor state is reordered with the beams."""
from __future__ import annotations

import itertools
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgraph as tg
from tensorgraph.nn import beam_search, greedy_decode, length_penalty

BOS, EOS, A, B = 0, 1, 2, 3


def table_step(tables: list[Callable[[tuple[int, ...]], np.ndarray]], max_len: int) -> tuple[Any, Any]:
    """A step function reading p(next | prefix) from tables[example](prefix);
    the state is (example ids (N,), prefixes (N, max_len) padded with -1)."""
    def step(state: Any, prev: np.ndarray) -> tuple[np.ndarray, Any]:
        ex, pre = state
        pre = pre.copy()
        lengths = (pre >= 0).sum(axis=1)
        first = (prev == BOS) & (lengths == 0)
        for i in np.flatnonzero(~first):      # append the previous token (not bos)
            pre[i, lengths[i]] = prev[i]
        rows = [tables[e](tuple(int(x) for x in p[p >= 0])) for e, p in zip(ex, pre)]
        with np.errstate(divide="ignore"):
            return np.log(np.array(rows)), (ex, pre)
    state = (np.arange(len(tables)), np.full((len(tables), max_len + 1), -1))
    return step, state


def trap(prefix: tuple[int, ...]) -> np.ndarray:
    """p(a) = .6 > p(b) = .4 first, but a is followed by eos at .5 and b by eos
    at .9: greedy takes "a eos" (.30), the best is "b eos" (.36)."""
    if prefix == ():
        return np.array([0, 0, .6, .4])
    if prefix == (A,):
        return np.array([0, .5, .25, .25])
    if prefix == (B,):
        return np.array([0, .9, .05, .05])
    return np.array([0, .7, .15, .15])


def seq_logp(table: Callable[[tuple[int, ...]], np.ndarray], seq: list[int]) -> float:
    return float(sum(np.log(table(tuple(seq[:i]))[v]) for i, v in enumerate(seq)))


def exhaustive(table: Callable[[tuple[int, ...]], np.ndarray], vocab: int, max_len: int,
               alpha: float) -> tuple[float, list[int]]:
    best: tuple[float, list[int]] = (-np.inf, [])
    for n in range(1, max_len + 1):
        for seq in itertools.product(range(vocab), repeat=n):
            if EOS in seq[:-1] or (seq[-1] != EOS and n < max_len):
                continue
            with np.errstate(divide="ignore"):
                s = seq_logp(table, list(seq)) / length_penalty(n, alpha)
            if s > best[0]:
                best = (s, list(seq))
    return best


def test_beam_finds_what_greedy_misses() -> None:
    step, state = table_step([trap], 5)
    g = greedy_decode(step, state, 1, BOS, EOS, 5)
    assert g.tokens == [[A, EOS]]
    np.testing.assert_allclose(g.scores, [np.log(.6 * .5)])
    bm = beam_search(step, state, 1, BOS, EOS, 5, beam_width=2)
    assert bm.tokens == [[B, EOS]]
    np.testing.assert_allclose(bm.scores, [np.log(.4 * .9)])
    assert bm.scores[0] > g.scores[0]
    assert exhaustive(trap, 4, 5, 0.0)[1] == [B, EOS]
    # width 1 is greedy, also here
    b1 = beam_search(step, state, 1, BOS, EOS, 5, beam_width=1)
    assert b1.tokens == g.tokens and np.allclose(b1.scores, g.scores)


def _random_table(seed: int, vocab: int, eos_bias: float) -> Callable[[tuple[int, ...]], np.ndarray]:
    cache: dict[tuple[int, ...], np.ndarray] = {}

    def table(prefix: tuple[int, ...]) -> np.ndarray:
        if prefix not in cache:
            rng = np.random.default_rng([seed, len(prefix), *prefix])
            p = rng.dirichlet(np.ones(vocab))
            p[EOS] += eos_bias
            p[BOS] = 0                        # never generated
            cache[prefix] = p / p.sum()
        return cache[prefix]
    return table


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2 ** 16), batch=st.integers(1, 3), vocab=st.integers(3, 4),
       max_len=st.integers(1, 4), alpha=st.sampled_from([0.0, 0.6, 1.0]))
def test_against_exhaustive_search_and_greedy(seed: int, batch: int, vocab: int, max_len: int,
                                               alpha: float) -> None:
    tables = [_random_table(seed + i, vocab, 0.3) for i in range(batch)]
    step, state = table_step(tables, max_len)
    # a beam as wide as every hypothesis is the exhaustive search
    wide = beam_search(step, state, batch, BOS, EOS, max_len, beam_width=vocab ** max_len,
                       alpha=alpha)
    g = greedy_decode(step, state, batch, BOS, EOS, max_len, alpha=alpha)
    b1 = beam_search(step, state, batch, BOS, EOS, max_len, beam_width=1, alpha=alpha)
    assert b1.tokens == g.tokens
    np.testing.assert_allclose(b1.scores, g.scores, rtol=1e-12)
    np.testing.assert_allclose(b1.normalized, g.normalized, rtol=1e-12)
    for i, table in enumerate(tables):
        best, seq = exhaustive(table, vocab, max_len, alpha)
        np.testing.assert_allclose(wide.normalized[i], best, rtol=1e-9)
        for dec in (wide, g, b1):
            toks = dec.tokens[i]
            assert 1 <= len(toks) <= max_len and EOS not in toks[:-1]
            assert toks[-1] == EOS or len(toks) == max_len
            np.testing.assert_allclose(dec.scores[i], seq_logp(table, toks), rtol=1e-9)
            np.testing.assert_allclose(dec.normalized[i],
                                       dec.scores[i] / length_penalty(len(toks), alpha))
        assert wide.normalized[i] >= g.normalized[i] - 1e-12
        for width in (2, 3):
            bw = beam_search(step, state, batch, BOS, EOS, max_len, beam_width=width, alpha=alpha)
            np.testing.assert_allclose(bw.scores[i], seq_logp(table, bw.tokens[i]), rtol=1e-9)


def test_length_normalisation_changes_the_winner_as_its_formula_says() -> None:
    # "eos" alone: log p = -1 (|y| = 1, lp = 1); "a eos": -0.6 - 0.55 (|y| = 2, lp = 7/6 at
    # α = 1); the rest of each row's mass on b, whose continuations are worse
    def full(prefix: tuple[int, ...]) -> np.ndarray:
        if prefix == ():
            p = np.array([0, np.exp(-1), np.exp(-0.6), 0])
        elif prefix == (A,):
            p = np.array([0, np.exp(-0.55), 0, 0])
        else:
            p = np.array([0, 0.5, 0, 0])
        p[B] = 1 - p.sum()
        return p
    step, state = table_step([full], 4)
    raw = beam_search(step, state, 1, BOS, EOS, 4, beam_width=3, alpha=0.0)
    norm = beam_search(step, state, 1, BOS, EOS, 4, beam_width=3, alpha=1.0)
    s_short, s_long = np.log(full(())[EOS]), np.log(full(())[A]) + np.log(full((A,))[EOS])
    assert s_short > s_long and s_short / 1.0 < s_long / (7 / 6)
    assert raw.tokens == [[EOS]] and norm.tokens == [[A, EOS]]
    np.testing.assert_allclose(norm.normalized, [s_long / (7 / 6)])


def test_eos_first_and_no_eos() -> None:
    def eos_first(prefix: tuple[int, ...]) -> np.ndarray:
        return np.array([0, .9, .05, .05])
    step, state = table_step([eos_first, trap], 3)
    for dec in (greedy_decode(step, state, 2, BOS, EOS, 3),
                beam_search(step, state, 2, BOS, EOS, 3, beam_width=2)):
        assert dec.tokens[0] == [EOS]
        np.testing.assert_allclose(dec.scores[0], np.log(.9))
    # eos_id=None: every sequence runs to max_len
    step, state = table_step([trap], 3)
    for dec in (greedy_decode(step, state, 1, BOS, None, 3),
                beam_search(step, state, 1, BOS, None, 3, beam_width=2)):
        assert len(dec.tokens[0]) == 3


def test_a_model_state_of_tensors_is_reordered_with_the_beams() -> None:
    # a tiny recurrent decoder h' = tanh(E[y] + h W), log p = log_softmax(h' U):
    # beam_width=1 equals greedy, and every score is the model's own log p(y)
    rng = np.random.default_rng(3)
    V, H = 6, 5
    emb = tg.nn.Embedding(V, H, seed=0)
    W, U = tg.tensor(rng.standard_normal((H, H))), tg.tensor(2 * rng.standard_normal((H, V)))

    def step(state: Any, prev: np.ndarray) -> tuple[tg.Tensor, Any]:
        h = tg.tanh(emb(prev) + state["h"] @ W)
        return tg.log_softmax(h @ U, axis=-1), {"h": h}
    h0 = {"h": tg.tensor(rng.standard_normal((3, H)))}
    with tg.no_grad():
        g = greedy_decode(step, h0, 3, BOS, EOS, 6)
        b1 = beam_search(step, h0, 3, BOS, EOS, 6, beam_width=1)
        b4 = beam_search(step, h0, 3, BOS, EOS, 6, beam_width=4)
    assert b1.tokens == g.tokens
    for i in range(3):        # rescore each output with the model, one example alone
        h, prev, total = h0["h"][i:i + 1], np.array([BOS]), 0.0
        with tg.no_grad():
            for v in b4.tokens[i]:
                lp, st_ = step({"h": h}, prev)
                total += float(lp.data[0, v])
                h, prev = st_["h"], np.array([v])
        np.testing.assert_allclose(b4.scores[i], total, rtol=1e-5)


def test_errors() -> None:
    step, state = table_step([trap], 3)
    with pytest.raises(ValueError, match="beam_width must be a positive int, got 0"):
        beam_search(step, state, 1, BOS, EOS, 3, beam_width=0)
    with pytest.raises(ValueError, match="max_len must be a positive int, got 0"):
        greedy_decode(step, state, 1, BOS, EOS, 0)
    with pytest.raises(ValueError, match=r"log-probabilities of shape \(N, vocab\) with N = 2 "
                                         r"rows .* got \(4,\)"):
        beam_search(lambda s, p: (np.zeros(4), s), None, 1, BOS, EOS, 3, beam_width=2)
    with pytest.raises(TypeError, match="a decoder state must be a Tensor, an array, None"):
        beam_search(step, "state", 1, BOS, EOS, 3)
