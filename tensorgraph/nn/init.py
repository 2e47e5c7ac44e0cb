"""Weight initialisers: `init.NAME(shape, rng)` returns a float64 array.

`rng` is a seed (int), a `numpy.random.Generator` or None (fresh entropy); the
same seed gives bit-identical arrays. The scale of each comes from the
weight's fan-in and fan-out (`fans`):

- he_normal: N(0, 2/fan_in), for ReLU layers (He et al. 2015; the book's
  `stddev=(2/n_in)**0.5`); he_uniform: U(±√(6/fan_in)), the same variance.
- xavier_uniform (= glorot_uniform): U(±√(6/(fan_in + fan_out))), for sigmoid
  and tanh (Glorot and Bengio 2010); xavier_normal: N(0, 2/(fan_in + fan_out)).
- kaiming_uniform(a=...): U(±gain·√(3/fan_in)) with PyTorch's gain
  √(2/(1 + a²)) for leaky ReLU; with a = √5 it is PyTorch's default for a dense
  weight, U(±1/√fan_in). kaiming_normal: N(0, gain²/fan_in).
- small_uniform: U(±a), a = 0.05 by default; zeros.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence, Union

import numpy as np

from ..ops.random import numpy_generator as _rng   # seeds as the core reads them: one rule

__all__ = ["fans", "calculate_gain", "he_normal", "he_uniform", "xavier_uniform",
           "xavier_normal", "glorot_uniform", "glorot_normal", "kaiming_uniform",
           "kaiming_normal", "small_uniform", "zeros", "NAMES"]

Seed = Union[None, int, np.random.Generator]
Init = Union[str, Callable[[tuple[int, ...], np.random.Generator], Any]]


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape `shape`:

    - (n,), a single neuron's weights: (n, 1);
    - (n_in, n_out), the book's dense layout (`Layer`): (n_in, n_out);
    - (out, in, k_1, ..., k_d), a convolution kernel in PyTorch's layout:
      (in·k_1···k_d, out·k_1···k_d), as `torch.nn.init` computes them.
    """
    shape = _shape(shape)
    if len(shape) == 0:
        raise ValueError("init: fan-in and fan-out need a weight of at least one dimension, "
                         "got shape ()")
    if len(shape) == 1:
        return shape[0], 1
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, param: Union[None, float] = None) -> float:
    """PyTorch's recommended gain: 1 for linear and sigmoid, 5/3 for tanh, √2 for
    relu, √(2/(1 + a²)) for leaky_relu with slope a (`param`, default 0.01)."""
    if nonlinearity in ("linear", "identity", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + a * a))
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; expected "
                     "'linear', 'sigmoid', 'tanh', 'relu' or 'leaky_relu'")


def _shape(shape: Any) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def he_normal(shape: Sequence[int], rng: Seed = None) -> np.ndarray:
    shape = _shape(shape)
    fan_in, _ = fans(shape)
    return np.random.default_rng(rng).normal(0.0, math.sqrt(2.0 / fan_in), shape)


def he_uniform(shape: Sequence[int], rng: Seed = None) -> np.ndarray:
    shape = _shape(shape)
    fan_in, _ = fans(shape)
    a = math.sqrt(6.0 / fan_in)
    return np.random.default_rng(rng).uniform(-a, a, shape)


def xavier_uniform(shape: Sequence[int], rng: Seed = None) -> np.ndarray:
    shape = _shape(shape)
    fan_in, fan_out = fans(shape)
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return np.random.default_rng(rng).uniform(-a, a, shape)


def xavier_normal(shape: Sequence[int], rng: Seed = None) -> np.ndarray:
    shape = _shape(shape)
    fan_in, fan_out = fans(shape)
    return np.random.default_rng(rng).normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), shape)


glorot_uniform = xavier_uniform
glorot_normal = xavier_normal


def _kaiming_std(shape: tuple[int, ...], a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init.kaiming: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(shape)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def kaiming_uniform(shape: Sequence[int], rng: Seed = None, a: float = 0.0,
                    mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> np.ndarray:
    """U(±√3·gain/√fan), gain = `calculate_gain(nonlinearity, a)` (PyTorch's
    kaiming_uniform_; a = √5 gives U(±1/√fan_in), its dense-layer default)."""
    shape = _shape(shape)
    bound = math.sqrt(3.0) * _kaiming_std(shape, a, mode, nonlinearity)
    return np.random.default_rng(rng).uniform(-bound, bound, shape)


def kaiming_normal(shape: Sequence[int], rng: Seed = None, a: float = 0.0,
                   mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> np.ndarray:
    """N(0, gain²/fan), gain = `calculate_gain(nonlinearity, a)` (PyTorch's kaiming_normal_)."""
    shape = _shape(shape)
    return np.random.default_rng(rng).normal(0.0, _kaiming_std(shape, a, mode, nonlinearity),
                                             shape)


def small_uniform(shape: Sequence[int], rng: Seed = None, a: float = 0.05) -> np.ndarray:
    return np.random.default_rng(rng).uniform(-a, a, _shape(shape))


def zeros(shape: Sequence[int], rng: Seed = None) -> np.ndarray:
    return np.zeros(_shape(shape))


#: The names accepted by `init=` in Neuron, Layer and FeedForward.
NAMES = {"he": "he_normal", "he_normal": "he_normal", "he_uniform": "he_uniform",
         "xavier": "xavier_uniform", "glorot": "xavier_uniform",
         "xavier_uniform": "xavier_uniform", "glorot_uniform": "xavier_uniform",
         "xavier_normal": "xavier_normal", "glorot_normal": "xavier_normal",
         "kaiming_uniform": "kaiming_uniform", "kaiming_normal": "kaiming_normal",
         "uniform": "small_uniform", "small_uniform": "small_uniform", "zeros": "zeros"}


def _init_weight(init_: Init, shape: tuple[int, ...], rng: np.random.Generator, dtype: Any,
                 what: str) -> np.ndarray:
    """The initial weight of a layer: `init_` is a name of NAMES or a callable
    (shape, rng) -> array; the result is a fresh, writeable array of `dtype`."""
    if isinstance(init_, str):
        key = NAMES.get(init_.lower())
        if key is None:
            raise ValueError(f"{what}: unknown init {init_!r}; expected one of "
                             f"{', '.join(repr(k) for k in NAMES)} or a callable (shape, rng)")
        w = globals()[key](shape, rng)
    elif callable(init_):
        w = np.asarray(init_(shape, rng))
    else:
        raise TypeError(f"{what}: init must be a name or a callable (shape, rng), got "
                        f"{type(init_).__name__}")
    if w.shape != shape:
        raise ValueError(f"{what}: init returned shape {w.shape}, expected {shape}")
    return np.array(w, dtype=dtype)
