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
- the samplers, PyTorch's: `rand`, `randn` (uniform [0, 1), standard
  normal), `randint(low, high, size)`, `rand_like(x)`, `randn_like(x)`,
  `bernoulli(p)` (1 with probability p, else 0). Each is a random op, so
  `tg.randn(3)` inside `tg.capture` is a node that draws afresh at each
  replay, not a frozen constant.

Generators. `generator=` (or `seed=`, the same slot) takes a `tg.Generator`
(drawn from and advanced: reseed it to repeat a replay), a numpy Generator
(wrapped, drawn from), or an int seed: every call, and every replay, then
draws from a fresh `numpy.random.default_rng(seed)`, the same values each
time, as calling the function again would. Given none, the samplers share
one generator that `tg.manual_seed(n)` reseeds.

Shapes. `rand_like(x)`, `randn_like(x)` and `bernoulli(p)` take their shape
from an input, so in a captured graph it follows the batch size of each
replay. `tg.randn(n, 3)` is given ints: its shape is frozen into the graph,
even when `n` was read from an input (`tg.randn(*x.shape)`, which Python
evaluates before tensorgraph sees it); write `tg.randn_like(x)` instead.
"""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from ..tensor import ArrayLike, Tensor, _check_can_require_grad, record
from .creation import _dtype, _shape
from .registry import OPS, as_tensor, unary

defop = OPS.defop
public = OPS.public

__all__ = ["Generator", "dropout", "dropout_mask", "manual_seed", "rand", "randn", "randint",
           "rand_like", "randn_like", "bernoulli"]


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


# ---------------------------------------------------------------------------
# Samplers

Seed = Union[None, int, np.random.Generator, Generator]

# What the samplers draw from when given no generator (tg.manual_seed reseeds it).
_shared = Generator()


@public(None)
def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the generator that `rand`, `randn`, `randint`, `*_like` and
    `bernoulli` share when given no generator (captured graphs included);
    returns its numpy Generator. The same seed gives the same draws."""
    return _shared.manual_seed(seed).numpy


def _generator(seed: Seed, generator: Seed, fn: str) -> Union[int, Generator]:
    """The op's `generator` attribute: a tg.Generator (drawn from by
    reference) or an int seed (a fresh numpy generator at every draw)."""
    if seed is not None and generator is not None:
        raise TypeError(f"{fn}: give seed= or generator=, not both")
    s = seed if seed is not None else generator
    if s is None:
        return _shared
    if isinstance(s, Generator):
        return s
    if isinstance(s, np.random.Generator):
        return Generator(s)
    if isinstance(s, (int, np.integer)) and not isinstance(s, bool):
        return int(s)
    raise TypeError(f"{fn}: seed must be an int or a numpy.random.Generator (or a "
                    f"tg.Generator), got {type(s).__name__}")


def _draw(generator: Union[int, Generator]) -> np.random.Generator:
    return np.random.default_rng(generator) if isinstance(generator, int) else generator.numpy


def _float_dtype(dtype: Any, fn: str, default: Any = np.float32) -> np.dtype:
    dt = _dtype(dtype, default)
    if dt.kind != "f":
        raise TypeError(f"{fn}: dtype must be floating-point, got {dt}")
    return dt


def _check_probabilities(p: np.ndarray) -> np.ndarray:
    # in the forward, so that a replay checks its own probabilities too
    if p.size and not (np.min(p) >= 0 and np.max(p) <= 1):      # NaN fails both
        raise ValueError(f"bernoulli: probabilities must lie in [0, 1], got min {np.min(p)} "
                         f"and max {np.max(p)} (shape {p.shape})")
    return p


def _sampled(op: Any, args: tuple[Tensor, ...], requires_grad: bool, fn: str,
             **attrs: Any) -> Tensor:
    t = record(op, args, attrs)
    if requires_grad:          # a new leaf, as PyTorch's rand(..., requires_grad=True)
        _check_can_require_grad(t.dtype, fn)
        t.requires_grad = True
    return t


# The draws are numpy's own (the values eager calls gave before these were ops).
RAND = defop("rand", lambda *, shape, dtype, generator:
             _draw(generator).random(shape).astype(dtype), differentiable=False, random=True)
RANDN = defop("randn", lambda *, shape, dtype, generator:
              _draw(generator).standard_normal(shape).astype(dtype),
              differentiable=False, random=True)
RANDINT = defop("randint", lambda *, low, high, shape, dtype, generator:
                _draw(generator).integers(low, high, shape).astype(dtype),
                differentiable=False, random=True)
# x (p) gives the shape, so a replay's batch size: its values are not read (are the probabilities)
RAND_LIKE = defop("rand_like", lambda x, *, dtype, generator:
                  _draw(generator).random(x.shape).astype(dtype), differentiable=False,
                  random=True)
RANDN_LIKE = defop("randn_like", lambda x, *, dtype, generator:
                   _draw(generator).standard_normal(x.shape).astype(dtype),
                   differentiable=False, random=True)
BERNOULLI = defop("bernoulli", lambda p, *, generator:
                  (_draw(generator).random(p.shape) < _check_probabilities(p)).astype(p.dtype),
                  differentiable=False, random=True)


@public(RAND)
def rand(*shape: Any, dtype: Any = None, requires_grad: bool = False, seed: Seed = None,
         generator: Seed = None) -> Tensor:
    """Uniform samples from [0, 1): rand(2, 3) or rand((2, 3)); float32 by
    default. `seed`/`generator`: see the module (an int seed draws the same
    values at every call; a Generator is advanced)."""
    return _sampled(RAND, (), requires_grad, "rand", shape=_shape(shape, "rand"),
                    dtype=_float_dtype(dtype, "rand"),
                    generator=_generator(seed, generator, "rand"))


@public(RANDN)
def randn(*shape: Any, dtype: Any = None, requires_grad: bool = False, seed: Seed = None,
          generator: Seed = None) -> Tensor:
    """Standard normal samples N(0, 1): randn(2, 3) or randn((2, 3)); float32
    by default. `seed` as for `rand`."""
    return _sampled(RANDN, (), requires_grad, "randn", shape=_shape(shape, "randn"),
                    dtype=_float_dtype(dtype, "randn"),
                    generator=_generator(seed, generator, "randn"))


@public(RANDINT)
def randint(low: int, high: Optional[int] = None, size: Any = (), *, dtype: Any = None,
            seed: Seed = None, generator: Seed = None) -> Tensor:
    """Integers drawn uniformly from [low, high) (PyTorch's order:
    randint(high, size) or randint(low, high, size)); int64 by default."""
    if high is None:
        low, high = 0, low
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (low, high)):
        raise TypeError(f"randint: low and high must be ints, got {low!r} and {high!r}")
    if not low < high:
        raise ValueError(f"randint: low must be less than high, got low={low}, high={high}")
    size = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
    dt = _dtype(dtype, np.int64)
    if dt.kind not in "iu":
        raise TypeError(f"randint: dtype must be an integer dtype, got {dt}")
    return _sampled(RANDINT, (), False, "randint", low=int(low), high=int(high),
                    shape=_shape(size, "randint"), dtype=dt,
                    generator=_generator(seed, generator, "randint"))


def _like(op: Any, fn: str, x: Any, dtype: Any, requires_grad: bool, seed: Seed,
          generator: Seed) -> Tensor:
    t = as_tensor(x, fn, 0)
    dt = _float_dtype(dtype, fn, t.dtype if t.dtype.kind == "f" else np.float32)
    return _sampled(op, (t,), requires_grad, fn, dtype=dt,
                    generator=_generator(seed, generator, fn))


@public(RAND_LIKE)
def rand_like(x: ArrayLike, dtype: Any = None, requires_grad: bool = False, seed: Seed = None,
              generator: Seed = None) -> Tensor:
    """`rand` in x's shape and (if floating, unless given) dtype. Captured,
    the shape follows x at each replay (its batch size)."""
    return _like(RAND_LIKE, "rand_like", x, dtype, requires_grad, seed, generator)


@public(RANDN_LIKE)
def randn_like(x: ArrayLike, dtype: Any = None, requires_grad: bool = False, seed: Seed = None,
               generator: Seed = None) -> Tensor:
    """`randn` in x's shape and (if floating, unless given) dtype. Captured,
    the shape follows x at each replay (its batch size)."""
    return _like(RANDN_LIKE, "randn_like", x, dtype, requires_grad, seed, generator)


@public(BERNOULLI)
def bernoulli(p: ArrayLike, seed: Seed = None, generator: Seed = None) -> Tensor:
    """1 with probability p, else 0, elementwise, in p's shape and dtype
    (PyTorch's `torch.bernoulli(input)`); E = p. Not differentiable."""
    t = as_tensor(p, "bernoulli", 0)
    if t.dtype.kind != "f":
        raise TypeError(f"bernoulli: p must be floating-point probabilities, got dtype {t.dtype}")
    return _sampled(BERNOULLI, (t,), False, "bernoulli",
                    generator=_generator(seed, generator, "bernoulli"))
