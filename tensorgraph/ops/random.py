"""Random ops: ops that draw from a generator of their own.

A random op is declared with `random=True` and takes a `Generator` among its
attributes. Its forward draws from that generator's state and advances it,
so every call, eager or a replay of a captured graph, draws fresh numbers;
reseeding the generator (`g.manual_seed(n)`) makes the draws repeat. Graph
passes never merge, fold or drop a random op (`tensorgraph.passes.is_pure`).

- `dropout_mask(x; p, generator)`: inverted dropout's mask, shaped like x:
  1/(1 - p) with probability 1 - p, else 0 (Srivastava et al. 2014).
- `dropout(x, p, training, generator)`: x * dropout_mask(x), so the mask is
  a constant of the backward (gradient mask/(1 - p)) and `mul` differentiates
  it, to any order.
"""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from ..tensor import ArrayLike, Tensor
from .registry import OPS, as_tensor, unary

defop = OPS.defop
public = OPS.public

__all__ = ["Generator", "dropout", "dropout_mask"]


@public(None)
class Generator:
    """A seedable source of random numbers for random ops (PyTorch's
    `torch.Generator`): it wraps a `numpy.random.Generator` (`.numpy`). A
    captured graph keeps the Generator object, not a copy of its state, so
    the replay draws from it afresh, and `manual_seed` reseeds eager calls
    and replays alike. `seed`: None (fresh entropy), an int, or a numpy
    Generator to draw from."""

    def __init__(self, seed: Union[None, int, np.random.Generator] = None) -> None:
        self.numpy = numpy_generator(seed, "Generator")
        self.seed = seed if isinstance(seed, (int, np.integer)) else None

    def manual_seed(self, seed: int) -> "Generator":
        """Restart from `seed`: the same seed gives the same draws. Returns self."""
        self.numpy = numpy_generator(seed, "Generator.manual_seed")
        self.seed = seed
        return self

    def random(self, shape: tuple[int, ...]) -> np.ndarray:
        """Uniform [0, 1) float64 samples, advancing the state."""
        return self.numpy.random(shape)

    def __repr__(self) -> str:
        # What a graph listing prints for the attribute.
        return "Generator()" if self.seed is None else f"Generator(seed={self.seed})"


def numpy_generator(seed: Any, what: str) -> np.random.Generator:
    """A numpy Generator from a seed: None (fresh entropy), an int, or a
    Generator (used as given); anything else is a TypeError naming `what`."""
    if seed is None or isinstance(seed, np.random.Generator) or (
            isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise TypeError(f"{what}: seed must be None, an int or a numpy Generator, got "
                    f"{type(seed).__name__}")


def _mask_forward(x: np.ndarray, *, p: float, generator: Generator) -> np.ndarray:
    # One uniform per element, kept when >= p; the scale in float64, then x's dtype.
    keep = generator.random(x.shape) >= p
    return (keep * (1.0 / (1.0 - p))).astype(x.dtype)


# x gives the mask its shape (the batch size of each replay) and dtype; its
# values are not read, so the mask has no gradient.
DROPOUT_MASK = defop("dropout_mask", _mask_forward, differentiable=False, random=True)

# Draws of `dropout(x)` given no generator.
_default = Generator()


def _check_p(p: Any, fn: str) -> float:
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.floating, np.integer)) \
            or not 0 <= p < 1:
        raise ValueError(f"{fn}: p must be in [0, 1), got {p!r}")
    return float(p)


def _check_generator(generator: Any, fn: str) -> Generator:
    if generator is None:
        return _default
    if not isinstance(generator, Generator):
        raise TypeError(f"{fn}: generator must be a tg.Generator, got {type(generator).__name__}"
                        " (wrap a seed or a numpy Generator: tg.Generator(seed))")
    return generator


# Not a `tg.*` export: a building block of `dropout` (tg.ops.random.dropout_mask).
@public(DROPOUT_MASK, export=False)
def dropout_mask(x: ArrayLike, p: float = 0.5, generator: Optional[Generator] = None) -> Tensor:
    """Inverted dropout's mask for x: each element 1/(1 - p) with
    probability 1 - p, else 0, in x's shape and dtype; E[mask] = 1."""
    fn = "dropout_mask"
    return unary(DROPOUT_MASK, x, p=_check_p(p, fn), generator=_check_generator(generator, fn))


@public(None)
def dropout(x: ArrayLike, p: float = 0.5, training: bool = True,
            generator: Optional[Generator] = None) -> Tensor:
    """Inverted dropout: y = x · mask, mask = keep/(1 - p), keep ~ Bernoulli(1 - p)
    per element, so E[y] = x; dy/dx = mask. Not training (or p = 0): x itself."""
    fn = "dropout"
    p = _check_p(p, fn)
    gen = _check_generator(generator, fn)
    t = as_tensor(x, fn, 0)      # a list holding Tensors is stacked, recorded
    if not training or p == 0:
        return t
    return t * unary(DROPOUT_MASK, t, p=p, generator=gen)
