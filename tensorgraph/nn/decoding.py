"""Decoding a sequence model (chapter 7): `greedy_decode` and `beam_search`.

Both drive a *step function* and know nothing else about the model:

    step(state, prev) -> (log_probs, new_state)

`prev` is an int64 array (N,) of the previous tokens (bos at the first step),
`log_probs` (N, V) the model's log-probabilities of the next token (a Tensor
or an array; e.g. `tg.log_softmax(logits, axis=-1)`), and `state` anything
the model carries between steps (a Tensor or array with N rows, or a
tuple/list/dict of them, or None): beam search reorders it along its first
axis when beams are kept or dropped, so every leaf must have one row per
hypothesis. Call them under `tg.no_grad()` to record nothing.

A hypothesis y = (y_1, ..., y_T) (ending with eos unless cut at max_len) has
the score log p(y | x) = Σ_t log p(y_t | y_<t, x), which is what `scores`
returns. Beam search ranks finished hypotheses by the length-normalised score
of Wu et al. 2016 (GNMT), as common NMT toolkits do:

    score(y) / lp(y),   lp(y) = ((5 + |y|) / 6)^α       (|y| counts eos)

α = 0 ranks by the raw score (which favours short outputs: every token adds
a negative log-probability); α ≈ 0.6-1 is common practice.

Beam search (batched over the examples, as in fairseq): each example keeps
beam_width live hypotheses. At every step the beam_width·V extensions are
ranked by raw score; of the best 2·beam_width, those ending in eos among the
first beam_width are finished, and the best beam_width that do not end in eos
stay live. An example stops when it has beam_width finished hypotheses, all
stop at max_len (live hypotheses then count as finished, cut). The result is
each example's best finished hypothesis by normalised score. With
beam_width=1 this is exactly greedy decoding.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from ..tensor import Tensor

__all__ = ["Decoded", "greedy_decode", "beam_search", "length_penalty"]

Step = Callable[[Any, np.ndarray], tuple[Any, Any]]


class Decoded(NamedTuple):
    """What the decoders return, per example: `tokens` (the generated ids,
    without bos, with the eos that ended it if any), `scores` (B,) the summed
    log-probabilities log p(tokens), `normalized` (B,) score / lp(length)."""
    tokens: list[list[int]]
    scores: np.ndarray
    normalized: np.ndarray


def length_penalty(length: Any, alpha: float) -> Any:
    """GNMT's lp(y) = ((5 + |y|) / 6)^α (1 for α = 0)."""
    return ((5.0 + np.asarray(length, dtype=np.float64)) / 6.0) ** alpha


def _take_rows(state: Any, rows: np.ndarray) -> Any:
    """Every leaf of `state` with its first axis indexed by `rows`."""
    if state is None:
        return None
    if isinstance(state, (Tensor, np.ndarray)):
        return state[rows]
    if isinstance(state, tuple):
        return type(state)(*[_take_rows(s, rows) for s in state]) if hasattr(state, "_fields") \
            else tuple(_take_rows(s, rows) for s in state)
    if isinstance(state, list):
        return [_take_rows(s, rows) for s in state]
    if isinstance(state, dict):
        return {k: _take_rows(v, rows) for k, v in state.items()}
    raise TypeError(f"beam_search: a decoder state must be a Tensor, an array, None or a "
                    f"tuple/list/dict of them, got {type(state).__name__}")


def _log_probs(fname: str, out: Any, n: int) -> np.ndarray:
    lp = np.asarray(out.data if isinstance(out, Tensor) else out, dtype=np.float64)
    if lp.ndim != 2 or lp.shape[0] != n:
        raise ValueError(f"{fname}: the step function must return log-probabilities of shape "
                         f"(N, vocab) with N = {n} rows (one per hypothesis), got {lp.shape}")
    return lp


def _check_args(fname: str, batch_size: int, max_len: int) -> None:
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{fname}: batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(max_len, (int, np.integer)) or max_len < 1:
        raise ValueError(f"{fname}: max_len must be a positive int, got {max_len!r}")


def greedy_decode(step: Step, state: Any, batch_size: int, bos_id: int,
                  eos_id: Optional[int], max_len: int, alpha: float = 0.0) -> Decoded:
    """Pick the most probable next token at every step, for `batch_size`
    examples at once (state has batch_size rows): y_t = argmax_v log p(v | y_<t).
    An example stops at eos (kept in its tokens) or after max_len tokens."""
    _check_args("greedy_decode", batch_size, max_len)
    prev = np.full(batch_size, bos_id, dtype=np.int64)
    tokens = np.zeros((batch_size, max_len), dtype=np.int64)
    scores = np.zeros(batch_size)
    lengths = np.zeros(batch_size, dtype=np.int64)
    done = np.zeros(batch_size, dtype=bool)
    for t in range(max_len):
        out, state = step(state, prev)
        lp = _log_probs("greedy_decode", out, batch_size)
        tok = lp.argmax(axis=1)
        live = ~done
        scores[live] += lp[live, tok[live]]
        tokens[live, t] = tok[live]
        lengths[live] += 1
        if eos_id is not None:
            done |= live & (tok == eos_id)
        prev = np.where(done, eos_id if eos_id is not None else 0, tok).astype(np.int64)
        if done.all():
            break
    toks = [tokens[b, :lengths[b]].tolist() for b in range(batch_size)]
    return Decoded(toks, scores, scores / length_penalty(lengths, alpha))


def beam_search(step: Step, state: Any, batch_size: int, bos_id: int, eos_id: Optional[int],
                max_len: int, beam_width: int = 4, alpha: float = 0.0) -> Decoded:
    """Beam search (see the module's docstring for the algorithm and the
    normalisation ((5 + |y|)/6)^alpha). `state` has batch_size rows; the step
    function then sees batch_size·beam_width rows (example b's beams are rows
    b·beam_width ... b·beam_width + beam_width - 1)."""
    _check_args("beam_search", batch_size, max_len)
    if not isinstance(beam_width, (int, np.integer)) or beam_width < 1:
        raise ValueError(f"beam_search: beam_width must be a positive int, got {beam_width!r}")
    B, K = int(batch_size), int(beam_width)
    state = _take_rows(state, np.repeat(np.arange(B), K))
    prev = np.full(B * K, bos_id, dtype=np.int64)
    live = np.full((B, K), -np.inf)
    live[:, 0] = 0.0                               # one live hypothesis at first: bos
    seqs: list[list[list[int]]] = [[[] for _ in range(K)] for _ in range(B)]
    finished: list[list[tuple[float, float, list[int]]]] = [[] for _ in range(B)]
    done = np.zeros(B, dtype=bool)
    for t in range(max_len):
        out, state = step(state, prev)
        lp = _log_probs("beam_search", out, B * K)
        V = lp.shape[1]
        cand = (live.reshape(B * K, 1) + lp).reshape(B, K * V)
        n = min(2 * K, K * V)
        top = np.argpartition(-cand, n - 1, axis=1)[:, :n]
        order = np.argsort(-np.take_along_axis(cand, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)                          # (B, n) best first
        rows = np.repeat(np.arange(B) * K, K)           # default: keep row 0 (dead beams)
        new_live = np.full((B, K), -np.inf)
        new_prev = np.full(B * K, eos_id if eos_id is not None else 0, dtype=np.int64)
        new_seqs: list[list[list[int]]] = [[[] for _ in range(K)] for _ in range(B)]
        last = t == max_len - 1
        for b in range(B):
            if done[b]:
                continue
            k_live = 0
            for rank, c in enumerate(top[b]):
                s = cand[b, c]
                if not np.isfinite(s):
                    break
                k, v = divmod(int(c), V)
                seq = seqs[b][k] + [v]
                if eos_id is not None and v == eos_id:
                    if rank < K:
                        finished[b].append((s / float(length_penalty(len(seq), alpha)), s, seq))
                    continue
                if k_live < K:
                    rows[b * K + k_live] = b * K + k
                    new_live[b, k_live] = s
                    new_prev[b * K + k_live] = v
                    new_seqs[b][k_live] = seq
                    k_live += 1
            if last:    # cut at max_len: the live hypotheses count as finished
                finished[b] += [(s / float(length_penalty(len(q), alpha)), s, q)
                                for s, q in zip(new_live[b], new_seqs[b]) if np.isfinite(s)]
            if len(finished[b]) >= K or k_live == 0:
                done[b] = True
                new_live[b] = -np.inf
        if done.all():
            break
        live, prev, seqs = new_live, new_prev, new_seqs
        state = _take_rows(state, rows)
    toks, scores, normalized = [], np.zeros(B), np.zeros(B)
    for b in range(B):
        if not finished[b]:      # every continuation had probability 0
            finished[b].append((-np.inf, -np.inf, []))
        best = max(finished[b], key=lambda h: h[0])     # first of equals: the earliest found
        normalized[b], scores[b] = best[0], best[1]
        toks.append(best[2])
    return Decoded(toks, scores, normalized)
