"""Embedding lookup: rows of a table picked by integer ids, and its gradient.

    embedding(ids, W)[..., :] = W[ids[...], :]          ids (...), W (V, D) -> (..., D)

The gradient with respect to W scatter-adds the incoming rows back into a
(V, D) table, so an id that occurs k times receives the sum of its k rows:

    ∂L/∂W[v] = Σ_{positions p with ids[p] = v, v ≠ padding_idx} g[p]

(PyTorch's F.embedding: the row `padding_idx` gets no gradient; its forward
value is whatever the table holds there, zero as nn.Embedding initialises it).
With `scale_grad_by_freq` (PyTorch's too) row v's gradient is divided by
c_v, the number of times v occurs in the ids: the mean instead of the sum
(frequent words then take no larger steps than rare ones). The scatter's
VJP is its exact adjoint, gather of G / c (PyTorch's double backward leaves
the 1/c out, so second derivatives with scale_grad_by_freq differ from its).
That scatter is the op `embedding_backward`, whose own VJP is again a lookup,
so create_graph differentiates through it. The ids get no gradient.

How the scatter is computed: `np.add.at` is unbuffered and slow (about 4x the
time of a plain fancy assignment here). Instead the ids are sorted (stable),
each occurrence gets its rank among the equal ids, and the rows are written
level by level: rank 0 by one fancy assignment (distinct ids), then each
further rank by one fancy `+=` (distinct again within a rank). Realistic
batches repeat an id a few times, so that is a handful of vectorised
writes; a batch repeating one id very often (word2vec's noise words: "the"
drawn hundreds of times) sums the sorted rows by segments with
`np.add.reduceat` instead.
benchmarks/bench_embedding.py measures it.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..tensor import ArrayLike, Tensor, record
from .registry import OPS, as_tensor

defop, public = OPS.defop, OPS.public

# More rank levels than this: one np.add.reduceat is quicker than that many passes.
_MAX_LEVELS = 16


def _check_ids(fname: str, ids: np.ndarray, num: int) -> None:
    # in the forwards, so that a replayed graph checks its own ids too
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{fname}: indices must be integers, got dtype {ids.dtype} "
                        f"(cast them with .astype('int64'))")
    if ids.size:
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= num:
            bad = lo if lo < 0 else hi
            raise IndexError(f"{fname}: index {bad} is out of range for a table of "
                             f"{num} rows (valid ids: 0..{num - 1}; ids shape {ids.shape})")


def _embedding(ids: np.ndarray, weight: np.ndarray, padding_idx: Optional[int],
               scale_grad_by_freq: bool = False) -> np.ndarray:
    _check_ids("embedding", ids, weight.shape[0])
    return np.take(weight, ids, axis=0)


def scatter_rows(g: np.ndarray, ids: np.ndarray, num: int,
                 padding_idx: Optional[int] = None) -> np.ndarray:
    """Z (num, D) with Z[v] = Σ_{p: ids[p] = v} g[p] (row padding_idx left 0):
    the embedding's weight gradient, in numpy. `g` is (*ids.shape, D)."""
    d = g.shape[-1]
    flat = ids.reshape(-1)
    rows = g.reshape(flat.size, d)
    z = np.zeros((num, d), dtype=g.dtype)
    if padding_idx is not None:
        keep = flat != padding_idx
        flat, rows = flat[keep], rows[keep]
    if not flat.size:
        return z
    order = np.argsort(flat, kind="stable")
    s = flat[order]
    new = np.empty(s.size, dtype=bool)
    new[0] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    # rank of each sorted occurrence among the equal ids
    rank = np.arange(s.size) - np.repeat(starts, np.diff(np.append(starts, s.size)))
    levels = int(rank.max())
    if levels >= _MAX_LEVELS:
        # one segment sum over the sorted rows (np.add.at is ~10x slower here)
        z[s[starts]] = np.add.reduceat(rows[order], starts, axis=0)
        return z
    first = rank == 0
    z[s[first]] = rows[order[first]]
    for r in range(1, levels + 1):
        m = rank == r
        z[s[m]] += rows[order[m]]
    return z


def _counts(ids: Any, num: int, dtype: Any) -> np.ndarray:
    """(num, 1): how often each id occurs (at least 1: rows never seen get no gradient anyway).
    Read from the ids' values (a constant of the graph: the ids are not differentiated)."""
    flat = np.asarray(getattr(ids, "data", ids)).reshape(-1)
    return np.maximum(np.bincount(flat, minlength=num), 1).astype(dtype)[:, None]


def _embedding_backward(g: np.ndarray, ids: np.ndarray, num_weights: int,
                        padding_idx: Optional[int], scale_grad_by_freq: bool = False
                        ) -> np.ndarray:
    _check_ids("embedding_backward", ids, num_weights)
    z = scatter_rows(g, ids, num_weights, padding_idx)
    if scale_grad_by_freq:
        z /= _counts(ids, num_weights, z.dtype)
    return z


def _row_mask(num: int, padding_idx: Optional[int], dtype: Any) -> Any:
    m = np.ones((num, 1), dtype=dtype)
    if padding_idx is not None:
        m[padding_idx] = 0
    return m


def _embedding_vjp(g: Any, out: Any, ids: Any, weight: Any, padding_idx: Optional[int],
                   scale_grad_by_freq: bool = False) -> Any:
    return EMBEDDING_BACKWARD(g, ids, num_weights=weight.shape[0], padding_idx=padding_idx,
                              scale_grad_by_freq=scale_grad_by_freq)


def _embedding_backward_vjp(gg: Any, out: Any, g: Any, ids: Any, num_weights: int,
                            padding_idx: Optional[int], scale_grad_by_freq: bool = False) -> Any:
    # <scatter(g) / c, G> = <g, gather(G / c with the padding row zeroed)>
    if padding_idx is not None:
        gg = gg * _row_mask(num_weights, padding_idx, gg.dtype)
    if scale_grad_by_freq:
        gg = gg / _counts(ids, num_weights, gg.dtype)
    return EMBEDDING(ids, gg, padding_idx=None, scale_grad_by_freq=False)


EMBEDDING = defop("embedding", _embedding, None, _embedding_vjp)
EMBEDDING_BACKWARD = defop("embedding_backward", _embedding_backward, _embedding_backward_vjp,
                           None)


def _ids(fname: str, input: Any) -> Tensor:  # noqa: A002
    t = input if isinstance(input, Tensor) else Tensor(np.asarray(input))
    if t.dtype.kind not in "iu":
        raise TypeError(f"{fname}: indices must be integers, got dtype {t.dtype} "
                        f"(cast them with .astype('int64'))")
    return t


def _padding_idx(fname: str, padding_idx: Optional[int], num: int) -> Optional[int]:
    if padding_idx is None:
        return None
    if not isinstance(padding_idx, (int, np.integer)) or isinstance(padding_idx, bool) \
            or not -num <= padding_idx < num:
        raise ValueError(f"{fname}: padding_idx must be an int in [-{num}, {num}) for a table "
                         f"of {num} rows, got {padding_idx!r}")
    return int(padding_idx) % num


@public(EMBEDDING)
def embedding(input: ArrayLike, weight: ArrayLike,  # noqa: A002
              padding_idx: Optional[int] = None, scale_grad_by_freq: bool = False) -> Tensor:
    """Look up rows: out[..., :] = weight[input[...], :] (PyTorch's F.embedding).
    input: integer ids of any shape, each in [0, V); weight (V, D); out
    (*input.shape, D). The gradient scatter-adds into the rows (an id that
    occurs k times gets the sum of its k rows, divided by k with
    scale_grad_by_freq); the row `padding_idx` (if given; negative counts
    from the end) gets none."""
    ids = _ids("embedding", input)
    w = as_tensor(weight, "embedding", 1)
    if w.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
                         f"shape {w.shape}")
    return record(EMBEDDING, (ids, w), {
        "padding_idx": _padding_idx("embedding", padding_idx, w.shape[0]),
        "scale_grad_by_freq": bool(scale_grad_by_freq)})


@public(EMBEDDING_BACKWARD, export=False)
def embedding_backward(grad_output: ArrayLike, input: ArrayLike,  # noqa: A002
                       num_weights: int, padding_idx: Optional[int] = None,
                       scale_grad_by_freq: bool = False) -> Tensor:
    """The embedding's weight gradient (PyTorch's embedding_backward):
    Z[v] = Σ_{p: input[p] = v, v ≠ padding_idx} grad_output[p] (/ c_v, the count
    of v in input, with scale_grad_by_freq), Z (num_weights, D)."""
    ids = _ids("embedding_backward", input)
    g = as_tensor(grad_output, "embedding_backward", 0)
    if g.shape[:-1] != ids.shape or g.ndim != ids.ndim + 1:
        raise ValueError(f"embedding_backward: grad_output must have shape (*ids.shape, D) = "
                         f"{ids.shape + ('D',)}, got {g.shape}")
    num = int(num_weights)
    return record(EMBEDDING_BACKWARD, (g, ids), {
        "num_weights": num, "padding_idx": _padding_idx("embedding_backward", padding_idx, num),
        "scale_grad_by_freq": bool(scale_grad_by_freq)})
