"""Word embeddings (chapters 6 and 7): `Embedding`, a trainable lookup table.

PyTorch's nn.Embedding: constructor arguments, the parameter name `weight`
(num_embeddings, embedding_dim) and its N(0, 1) initialisation with the
padding row zeroed, so a PyTorch state_dict loads unchanged. The op is
`tg.embedding` (tensorgraph/ops/embedding.py).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import ops
from ..tensor import ArrayLike, Tensor
from .init import Seed, _rng
from .module import DType, Module, Parameter, _as_input, _float_dtype

__all__ = ["Embedding"]


class Embedding(Module):
    """A lookup table of `num_embeddings` vectors of size `embedding_dim`
    (PyTorch's nn.Embedding). Integer ids of any shape (...) give (..., D):

        out[..., :] = weight[ids[...], :]

    The weight gradient scatter-adds: an id occurring k times in a batch gets
    the sum of its k output gradients. `padding_idx`: that row starts at zero
    and gets no gradient (so it stays zero: padded positions of a batch embed
    to 0 and do not train). `max_norm`: before each lookup, the rows looked up
    whose `norm_type`-norm exceeds max_norm are rescaled in place to norm
    max_norm (as PyTorch: this changes the weight, outside the graph).
    `weight` ~ N(0, 1), as PyTorch; `seed` makes it reproducible (numpy's
    generator, so not PyTorch's numbers).

    `scale_grad_by_freq`: each row's gradient is divided by the number of
    times its id occurs in the batch. Ids stay integers: arrays and lists are
    not cast to the weight's dtype (float ids are refused, naming the dtype).
    `sparse` gradients are not implemented and refused."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None,
                 max_norm: Optional[float] = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False,
                 _weight: Optional[ArrayLike] = None, _freeze: bool = False, *,
                 seed: Seed = None, name: Optional[str] = None,
                 dtype: DType = np.float32) -> None:
        super().__init__(name=name)
        for arg, n in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise ValueError(f"Embedding: {arg} must be a positive int, got {n!r}")
        if sparse:
            raise NotImplementedError("Embedding: sparse=True (sparse gradients) is not "
                                      "implemented; the weight gradient is a dense "
                                      "(num_embeddings, embedding_dim) array")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        if padding_idx is not None:
            if not isinstance(padding_idx, (int, np.integer)) or isinstance(padding_idx, bool) \
                    or not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be an int in "
                                 f"[-{self.num_embeddings}, {self.num_embeddings}), got "
                                 f"{padding_idx!r}")
            padding_idx = int(padding_idx) % self.num_embeddings
        self.padding_idx = padding_idx
        if max_norm is not None and not max_norm > 0:
            raise ValueError(f"Embedding: max_norm must be positive, got {max_norm!r}")
        self.max_norm = None if max_norm is None else float(max_norm)
        self.norm_type = float(norm_type)
        self.scale_grad_by_freq, self.sparse = bool(scale_grad_by_freq), False
        dt = _float_dtype(dtype, "Embedding")
        shape = (self.num_embeddings, self.embedding_dim)
        if _weight is None:
            w = _rng(seed, "Embedding").standard_normal(shape).astype(dt)
            if padding_idx is not None:
                w[padding_idx] = 0
        else:
            w = np.array(_weight.data if isinstance(_weight, Tensor) else _weight, dtype=dt)
            if w.shape != shape:
                raise ValueError(f"Embedding: _weight has shape {w.shape}, expected {shape}")
        self.weight = Parameter(w)
        if _freeze:
            self.weight.requires_grad_(False)

    @classmethod
    def from_pretrained(cls, embeddings: ArrayLike, freeze: bool = True,
                        padding_idx: Optional[int] = None, max_norm: Optional[float] = None,
                        norm_type: float = 2.0, **kw: Any) -> "Embedding":
        """An Embedding holding a copy of `embeddings` (V, D) (PyTorch's
        from_pretrained); freeze=True: the weight does not require grad."""
        arr = np.asarray(embeddings.data if isinstance(embeddings, Tensor) else embeddings)
        if arr.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape "
                             f"{arr.shape}")
        if arr.dtype.kind != "f":
            arr = arr.astype(np.float32)
        return cls(arr.shape[0], arr.shape[1], padding_idx, max_norm, norm_type,
                   _weight=arr, _freeze=freeze, dtype=arr.dtype, **kw)

    def forward(self, input: ArrayLike) -> Tensor:  # noqa: A002
        ids = _as_input(input, None)    # never cast: ids stay integers
        if ids.dtype.kind not in "iu":
            raise TypeError(f"Embedding {self.scope_name!r}: input must hold integer ids, got "
                            f"dtype {ids.dtype} (shape {ids.shape})")
        if self.max_norm is not None:
            self._renorm(ids.data)
        return ops.embedding(ids, self.weight, self.padding_idx, self.scale_grad_by_freq)

    def _renorm(self, ids: np.ndarray) -> None:
        # PyTorch's embedding_renorm_: in place, not recorded
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            ops.embedding(ids, self.weight)          # raises the op's error
        w = self.weight._data
        rows = np.unique(ids)
        norms = np.linalg.norm(w[rows], ord=self.norm_type, axis=1)
        big = norms > self.max_norm
        if big.any():
            w[rows[big]] *= (self.max_norm / (norms[big] + 1e-7))[:, None].astype(w.dtype)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        return s
