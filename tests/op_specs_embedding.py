"""Specs for the embedding ops (tensorgraph/ops/embedding.py), one per op, in
the form tests/test_op_specs.py runs: a builder drawing (fn on Tensors,
float64 input arrays, numpy reference). The ids are drawn with repeats (the
scatter must accumulate them) and sometimes a padding row; the references are
a plain loop over the ids. tests/test_embedding.py has the detailed tests
(PyTorch, errors, the fast scatter's paths, second derivatives, nn.Embedding).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import strategies as S
import tensorgraph as tg

Spec = tuple[Callable[..., Any], list[np.ndarray], Callable[..., Any]]
EMBEDDING_SPECS: dict[str, Callable[[st.DataObject], Spec]] = {}


def lookup_ref(ids: np.ndarray, w: np.ndarray) -> np.ndarray:
    """out[p] = w[ids[p]], one position at a time."""
    out = np.zeros(ids.shape + w.shape[1:], dtype=w.dtype)
    for p in np.ndindex(*ids.shape):
        out[p] = w[ids[p]]
    return out


def scatter_ref(g: np.ndarray, ids: np.ndarray, num: int, padding_idx: Optional[int],
                scale: bool = False) -> np.ndarray:
    """z[v] = Σ_{p: ids[p] = v ≠ padding_idx} g[p] (the mean over those p with
    scale), one position at a time."""
    z = np.zeros((num, g.shape[-1]), dtype=g.dtype)
    count = np.zeros(num)
    for p in np.ndindex(*ids.shape):
        count[ids[p]] += 1
        if ids[p] != padding_idx:
            z[ids[p]] += g[p]
    if scale:
        for v in range(num):
            if count[v]:
                z[v] /= count[v]
    return z


def draw_ids(data: st.DataObject) -> tuple[np.ndarray, int, Optional[int]]:
    num = data.draw(st.integers(1, 6), label="num_embeddings")
    shape = data.draw(S.shapes(max_dims=3), label="ids shape")
    ids = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, num - 1)), label="ids")
    pad = data.draw(st.one_of(st.none(), st.integers(0, num - 1)), label="padding_idx")
    return ids, num, pad


def _embedding(data: st.DataObject) -> Spec:
    # No padding_idx here: by definition its row gets no gradient, which is not
    # the derivative central differences measure (tests/test_embedding.py checks it).
    ids, num, _ = draw_ids(data)
    dim = data.draw(st.integers(1, 4), label="dim")
    w = data.draw(S.arrays((num, dim)), label="w")
    return (lambda w: tg.embedding(ids, w), [w], lambda w: lookup_ref(ids, w))


def _embedding_backward(data: st.DataObject) -> Spec:
    ids, num, pad = draw_ids(data)
    dim = data.draw(st.integers(1, 4), label="dim")
    g = data.draw(S.arrays(ids.shape + (dim,)), label="g")
    scale = data.draw(st.booleans(), label="scale_grad_by_freq")
    return (lambda g: tg.ops.embedding_backward(g, ids, num, pad, scale), [g],
            lambda g: scatter_ref(g, ids, num, pad, scale))


EMBEDDING_SPECS["embedding"] = _embedding
EMBEDDING_SPECS["embedding_backward"] = _embedding_backward
