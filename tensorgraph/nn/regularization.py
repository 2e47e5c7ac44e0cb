"""Regularisation (chapter 2's cures for overfitting): dropout."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..ops.random import DROPOUT_MASK, Generator
from ..tensor import ArrayLike, Tensor
from .init import Seed, _rng
from .module import DiagramPart, Module, Regularizer, _as_input

__all__ = ["Dropout"]


class Dropout(Module):
    """Inverted dropout (Srivastava et al. 2014; chapter 2's cure for
    overfitting): in training, each input is kept with probability 1 - p and
    scaled by 1/(1 - p), so E[output] = input and nothing changes at test
    time; in eval mode it is the identity. The mask is drawn by the random op
    `dropout_mask` from the module's own `generator` (a `tg.Generator`), so a
    captured graph draws a fresh mask at each replay; the mask is a constant
    of the backward, so the gradient is 1/(1 - p) where kept and 0 where
    dropped. `seed` (int or numpy Generator) makes the masks reproducible;
    `rng` (the numpy Generator) may be replaced, which replays see too.
    """

    def __init__(self, p: float = 0.5, seed: Seed = None, name: Optional[str] = None) -> None:
        super().__init__(name=name)
        if not isinstance(p, (int, float, np.floating)) or not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.generator = Generator(_rng(seed, "Dropout"))
        if isinstance(seed, (int, np.integer)):
            self.generator.seed = seed          # shown in a graph listing

    @property
    def rng(self) -> np.random.Generator:
        """The numpy Generator the masks are drawn from."""
        return self.generator.numpy

    @rng.setter
    def rng(self, value: np.random.Generator) -> None:
        self.generator.numpy = _rng(value, "Dropout.rng")

    def forward(self, x: ArrayLike) -> Tensor:
        x = _as_input(x, None)
        if not self.training or self.p == 0:
            return x                            # eval: nothing recorded, nothing captured
        return x * DROPOUT_MASK(x, p=self.p, generator=self.generator)

    def diagram(self, name: str = "") -> list[DiagramPart]:
        return [Regularizer(name or self.scope_name, "dropout", self.p)]

    def extra_repr(self) -> str:
        return f"p={self.p}"
