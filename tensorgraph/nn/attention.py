"""Attention for sequence-to-sequence models (chapter 7).

A decoder state q (the query, batch x Hq) reads a source sequence of keys
k_1..k_S and values v_1..v_S (batch x S x H): each source position gets a
score e_s = score(q, k_s), the scores become weights by a softmax over the
(unmasked) positions, and the context is the weighted sum of the values:

    a_s = exp(e_s) / Σ_{s' unmasked} exp(e_s')   (s unmasked),   a_s = 0   (s masked)
    c   = Σ_s a_s v_s

Two families of score:

- additive (Bahdanau, Cho and Bengio 2015), `AdditiveAttention`:
      e_s = vᵀ tanh(W_q q + W_k k_s + b)
- multiplicative (Luong, Pham and Manning 2015), `LuongAttention`:
      "dot":     e_s = qᵀ k_s                      (Hq = Hk)
      "general": e_s = qᵀ W_a k_s
      "concat":  e_s = vᵀ tanh(W_a [q; k_s] + b)
  with `scale=True` dividing by √Hk (the Transformer's scaled dot product).

Masks: `mask` (batch, S), True where a position is real, or `lengths`
(batch,) giving the first lengths[b] positions of row b as real (padded
batches). Masked positions get weight exactly 0 and no gradient. A row with
every position masked (length 0) gets all-zero weights and a zero context
(no NaN, and zero gradient to its scores): `masked_softmax` documents it.

Each module returns (context (batch, Hv), weights (batch, S)); the weights are
what `tg.draw_attention` draws.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Union

import numpy as np

from .. import ops
from ..tensor import ArrayLike, Tensor
from .dense import Linear
from .init import Seed, _rng
from .module import DType, Module, Parameter, _as_input, _float_dtype

__all__ = ["masked_softmax", "source_mask", "AdditiveAttention", "BahdanauAttention",
           "LuongAttention"]


def source_mask(batch: int, src_len: int, mask: Optional[ArrayLike] = None,
                lengths: Optional[ArrayLike] = None,
                what: str = "attention") -> Union[None, np.ndarray, Tensor]:
    """The (batch, src_len) boolean mask (True: a real position) from `mask` or
    `lengths` (at most one of them), or None when neither is given. Given as
    a Tensor (e.g. a `tg.capture` placeholder), the mask is built by recorded
    ops, so a replay reads each call's lengths; arrays give an array."""
    if mask is not None and lengths is not None:
        raise ValueError(f"{what}: give mask or lengths, not both")
    if lengths is not None:
        n = np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths)
        if n.shape != (batch,) or n.dtype.kind not in "iu":
            raise ValueError(f"{what}: lengths must be {batch} integers (one per example), got "
                             f"shape {n.shape} and dtype {n.dtype}")
        if n.size and (n.min() < 0 or n.max() > src_len):
            raise ValueError(f"{what}: lengths must lie in [0, {src_len}] (the padded source "
                             f"length), got min {n.min()} and max {n.max()}")
        if isinstance(lengths, Tensor):
            return ops.less(np.arange(src_len)[None, :], ops.expand_dims(lengths, 1))
        return np.arange(src_len)[None, :] < n[:, None]
    if mask is not None:
        m = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
        if m.shape != (batch, src_len):
            raise ValueError(f"{what}: mask must have shape (batch, src_len) = "
                             f"{(batch, src_len)}, got {m.shape}")
        if m.dtype != np.bool_:
            if m.dtype.kind not in "iu" or not np.isin(m, (0, 1)).all():
                raise ValueError(f"{what}: mask must be boolean (True: a real position), got "
                                 f"dtype {m.dtype}")
            m = m.astype(bool)
            if isinstance(mask, Tensor):
                return ops.astype(mask, np.bool_)
        return mask if isinstance(mask, Tensor) else m
    return None


def masked_softmax(scores: ArrayLike, mask: Optional[ArrayLike] = None, axis: int = -1) -> Tensor:
    """Softmax of `scores` along `axis` over the positions where `mask` is True:

        a_s = m_s exp(e_s - μ) / Σ_s' m_s' exp(e_s' - μ),   μ = max_{s: m_s} e_s

    Masked positions get exactly 0 (and no gradient). A slice with no
    unmasked position gets all zeros (the denominator is 0 there and is
    replaced by 1): not a distribution, but no NaN; its gradient is 0.
    Without a mask: the plain softmax."""
    e = scores if isinstance(scores, Tensor) else Tensor(np.asarray(scores))
    if mask is None:
        return ops.softmax(e, axis=axis)
    m = mask if isinstance(mask, Tensor) else np.asarray(mask, dtype=bool)   # where broadcasts
    fill = np.asarray(np.finfo(e.dtype).min / 4 if e.dtype.kind == "f" else -1e30, dtype=e.dtype)
    masked = ops.where(m, e, fill)
    mu = ops.max(masked, axis=axis, keepdims=True).detach()     # softmax is shift-invariant
    ex = ops.where(m, ops.exp(masked - mu), np.zeros((), e.dtype))
    den = ops.sum(ex, axis=axis, keepdims=True)
    den = ops.where(den > 0, den, np.ones((), e.dtype))
    return ex / den


def _check(what: str, query: Tensor, keys: Tensor, values: Tensor, hq: Optional[int],
           hk: Optional[int]) -> None:
    if query.ndim != 2 or keys.ndim != 3 or values.ndim != 3:
        raise ValueError(f"{what}: expected query (batch, Hq), keys and values (batch, src_len, "
                         f"H), got shapes {query.shape}, {keys.shape}, {values.shape}")
    if not (query.shape[0] == keys.shape[0] == values.shape[0]) or keys.shape[1] != values.shape[1]:
        raise ValueError(f"{what}: batch and src_len must agree: query {query.shape}, keys "
                         f"{keys.shape}, values {values.shape}")
    if hq is not None and query.shape[1] != hq:
        raise ValueError(f"{what}: query has {query.shape[1]} features, expected {hq} "
                         f"(shape {query.shape})")
    if hk is not None and keys.shape[2] != hk:
        raise ValueError(f"{what}: keys have {keys.shape[2]} features, expected {hk} "
                         f"(shape {keys.shape})")


class _Attention(Module):
    """The shared part: inputs, mask, softmax, context."""

    query_size: int
    key_size: int

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, query: ArrayLike, keys: ArrayLike, values: Optional[ArrayLike] = None,
                mask: Optional[ArrayLike] = None,
                lengths: Optional[ArrayLike] = None) -> tuple[Tensor, Tensor]:
        """(context (batch, Hv), weights (batch, src_len)); values default to the keys."""
        dt = self._dtype()
        q, k = _as_input(query, dt), _as_input(keys, dt)
        v = k if values is None else _as_input(values, dt)
        what = f"{type(self).__name__} {self.scope_name!r}"
        _check(what, q, k, v, self.query_size, self.key_size)
        m = source_mask(k.shape[0], k.shape[1], mask, lengths, what)
        a = masked_softmax(self.scores(q, k), m, axis=-1)                    # (B, S)
        context = ops.squeeze(ops.expand_dims(a, 1) @ v, axis=1)             # (B, Hv)
        return context, a

    def _dtype(self) -> Any:
        return next(iter(self.parameters())).dtype if list(self.parameters()) else None


class AdditiveAttention(_Attention):
    """Bahdanau's additive attention:

        e_s = vᵀ tanh(W_q q + W_k k_s + b),   a = masked softmax(e),   c = Σ_s a_s v_s

    query (batch, query_size), keys (batch, S, key_size), values (batch, S, Hv)
    (default: the keys). Parameters: `query_proj` (Linear query_size ->
    hidden_size, no bias), `key_proj` (Linear key_size -> hidden_size, bias b),
    `v` (hidden_size,). Returns (context, weights)."""

    def __init__(self, query_size: int, key_size: int, hidden_size: int, *, seed: Seed = None,
                 name: Optional[str] = None, dtype: DType = np.float32) -> None:
        super().__init__(name=name)
        rng = _rng(seed, "AdditiveAttention")
        dt = _float_dtype(dtype, "AdditiveAttention")
        self.query_size, self.key_size, self.hidden_size = int(query_size), int(key_size), \
            int(hidden_size)
        self.query_proj = Linear(query_size, hidden_size, bias=False, seed=rng, dtype=dt)
        self.key_proj = Linear(key_size, hidden_size, seed=rng, dtype=dt)
        bound = 1.0 / math.sqrt(hidden_size)
        self.v = Parameter(rng.uniform(-bound, bound, hidden_size).astype(dt))

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        h = ops.tanh(ops.expand_dims(self.query_proj(query), 1) + self.key_proj(keys))  # (B,S,H)
        return h @ self.v                                                              # (B,S)

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}, " \
               f"hidden_size={self.hidden_size}"


BahdanauAttention = AdditiveAttention


class LuongAttention(_Attention):
    """Luong's multiplicative attention, score one of

        "dot":     e_s = qᵀ k_s                   (query_size = key_size; no parameters)
        "general": e_s = qᵀ W_a k_s               (`weight` (query_size, key_size))
        "concat":  e_s = vᵀ tanh(W_a [q; k_s] + b)  (`concat_proj` Linear, `v`)

    then a = masked softmax(e / √key_size if scale else e), c = Σ_s a_s v_s.
    query (batch, query_size), keys (batch, S, key_size), values (batch, S,
    Hv) (default: the keys). Returns (context, weights)."""

    SCORES = ("dot", "general", "concat")

    def __init__(self, query_size: int, key_size: Optional[int] = None, score: str = "dot",
                 hidden_size: Optional[int] = None, scale: bool = False, *, seed: Seed = None,
                 name: Optional[str] = None, dtype: DType = np.float32) -> None:
        super().__init__(name=name)
        if score not in self.SCORES:
            raise ValueError(f"LuongAttention: score must be one of {self.SCORES}, got {score!r}")
        self.query_size = int(query_size)
        self.key_size = self.query_size if key_size is None else int(key_size)
        if score == "dot" and self.key_size != self.query_size:
            raise ValueError(f"LuongAttention: score='dot' needs query_size = key_size, got "
                             f"{self.query_size} and {self.key_size} (use 'general')")
        self.score, self.scale = score, bool(scale)
        self._dt = _float_dtype(dtype, "LuongAttention")
        rng = _rng(seed, "LuongAttention")
        if score == "general":
            bound = 1.0 / math.sqrt(self.key_size)
            self.weight = Parameter(rng.uniform(-bound, bound, (self.query_size, self.key_size))
                                    .astype(self._dt))
        elif score == "concat":
            hidden = self.query_size if hidden_size is None else int(hidden_size)
            self.hidden_size = hidden
            self.concat_proj = Linear(self.query_size + self.key_size, hidden, seed=rng,
                                      dtype=self._dt)
            bound = 1.0 / math.sqrt(hidden)
            self.v = Parameter(rng.uniform(-bound, bound, hidden).astype(self._dt))

    def _dtype(self) -> Any:
        return self._dt

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        if self.score == "concat":
            s = keys.shape[1]
            qs = ops.broadcast_to(ops.expand_dims(query, 1), (query.shape[0], s, query.shape[1]))
            e = ops.tanh(self.concat_proj(ops.concat([qs, keys], axis=-1))) @ self.v
        else:
            q = query @ self.weight if self.score == "general" else query      # (B, Hk)
            e = ops.squeeze(keys @ ops.expand_dims(q, -1), axis=-1)             # (B, S)
        return e / math.sqrt(self.key_size) if self.scale else e

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}, " \
               f"score={self.score!r}" + (", scale=True" if self.scale else "")
