"""Regularisation (chapter 2's cures for overfitting): dropout."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..tensor import ArrayLike, Tensor
from .init import Seed, _rng
from .module import DiagramPart, Module, Regularizer, _as_input

__all__ = ["Dropout"]


class Dropout(Module):
    """Inverted dropout (Srivastava et al. 2014; chapter 2's cure for
    overfitting): in training, each input is kept with probability 1 - p and
    scaled by 1/(1 - p), so E[output] = input and nothing changes at test
    time; in eval mode it is the identity. The mask is a constant of the
    graph, so the gradient is mask/(1 - p) where kept and 0 where dropped.
    `seed` (int or Generator) makes the masks reproducible; `rng` may be reset.
    """

    def __init__(self, p: float = 0.5, seed: Seed = None, name: Optional[str] = None) -> None:
        super().__init__(name=name)
        if not isinstance(p, (int, float, np.floating)) or not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = _rng(seed, "Dropout")

    def forward(self, x: ArrayLike) -> Tensor:
        x = _as_input(x, None)
        if not self.training or self.p == 0:
            return x
        keep = self.rng.random(x.shape) >= self.p
        return x * (keep * (1.0 / (1.0 - self.p))).astype(x.dtype)

    def diagram(self, name: str = "") -> list[DiagramPart]:
        return [Regularizer(name or self.scope_name, "dropout", self.p)]

    def extra_repr(self) -> str:
        return f"p={self.p}"
