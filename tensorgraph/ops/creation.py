"""Constructors: zeros, ones, full, eye, arange, linspace, *_like.

They make leaf tensors. Names and arguments follow numpy (`shape`, `dtype`,
`N, M, k`, `start, stop, num`); the dtype default follows PyTorch: float32
for floating-point values, int64 for integers (numpy would give float64).
Every constructor takes `requires_grad=` (floating-point dtypes only).

The random constructors (`rand`, `randn`, `randint`, their `*_like`,
`bernoulli`, `manual_seed`) are random ops: tensorgraph/ops/random.py.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np

from ..tensor import ArrayLike, Tensor, set_grad_enabled
from .registry import OPS, as_tensor

public = OPS.public

__all__ = ['zeros', 'ones', 'full', 'eye', 'arange', 'linspace',
           'zeros_like', 'ones_like', 'full_like']

ShapeArg = Union[int, Sequence[int]]

def _shape(shape: tuple[Any, ...], fn: str) -> tuple[int, ...]:
    """numpy's `zeros((2, 3))` and PyTorch's `zeros(2, 3)` both work."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    out = []
    for s in shape:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"{fn}: shape entries must be ints, got {s!r} in {shape!r}")
        if s < 0:
            raise ValueError(f"{fn}: negative dimension {s} in shape {shape!r}")
        out.append(int(s))
    return tuple(out)


def _leaf(arr: np.ndarray, requires_grad: bool) -> Tensor:
    return Tensor(arr, requires_grad=requires_grad)


def _dtype(dtype: Any, default: Any = np.float32) -> np.dtype:
    return np.dtype(default if dtype is None else dtype)


@public(None)
def zeros(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros: zeros(2, 3) or zeros((2, 3)); float32 by default."""
    return _leaf(np.zeros(_shape(shape, "zeros"), _dtype(dtype)), requires_grad)


@public(None)
def ones(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones: ones(2, 3) or ones((2, 3)); float32 by default."""
    return _leaf(np.ones(_shape(shape, "ones"), _dtype(dtype)), requires_grad)


def _value_dtype(v: Any) -> np.dtype:
    """PyTorch's rule for a fill value: bool → bool, int → int64, float → float32."""
    if isinstance(v, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(v, (int, np.integer)):
        return np.dtype(np.int64)
    if isinstance(v, np.floating):
        return v.dtype
    return np.dtype(np.float32)


@public(None)
def full(shape: ShapeArg, fill_value: Any, dtype: Any = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor of `shape` filled with `fill_value`; the dtype follows the
    value (float → float32, int → int64, bool → bool) unless given."""
    if isinstance(fill_value, Tensor):
        if fill_value.requires_grad:
            raise TypeError("full: fill_value is a Tensor that requires grad; its gradient would "
                            "be lost (use tg.broadcast_to(value, shape) to keep it)")
        fill_value = fill_value.data
    if isinstance(fill_value, np.ndarray) and fill_value.ndim == 0:
        fill_value = fill_value[()]
    if not isinstance(fill_value, (bool, int, float, np.generic)):
        raise TypeError(f"full: fill_value must be a scalar, got {type(fill_value).__name__}")
    shp = _shape((shape,) if isinstance(shape, (int, np.integer)) else (tuple(shape),), "full")
    dt = _value_dtype(fill_value) if dtype is None else np.dtype(dtype)
    return _leaf(np.full(shp, fill_value, dt), requires_grad)


@public(None)
def eye(N: int, M: Optional[int] = None, k: int = 0, dtype: Any = None,
        requires_grad: bool = False) -> Tensor:
    """The N×M matrix (M = N by default) with ones on the k-th diagonal."""
    arr = np.eye(int(N), None if M is None else int(M), int(k), _dtype(dtype))
    return _leaf(arr, requires_grad)


@public(None)
def arange(start: Union[int, float], stop: Union[None, int, float] = None,
           step: Union[int, float] = 1, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Evenly spaced values in [start, stop) with `step` (arange(n) is 0..n-1),
    as numpy.arange; int64 if every argument is an int, else float32."""
    _no_graph("arange", start=start, stop=stop, step=step)
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("arange: step must not be zero")
    ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
               for v in (start, stop, step))
    dt = _dtype(dtype, np.int64 if ints else np.float32)
    # Computed in float64 and then cast, so float32 does not drift.
    arr = np.arange(start, stop, step, dtype=None if ints else np.float64)
    return _leaf(arr.astype(dt), requires_grad)


@public(None)
def linspace(start: float, stop: float, num: int = 50, endpoint: bool = True, dtype: Any = None,
             requires_grad: bool = False) -> Tensor:
    """`num` evenly spaced values from start to stop (stop included unless
    endpoint=False), as numpy.linspace; float32 by default."""
    _no_graph("linspace", start=start, stop=stop)
    if int(num) < 0:
        raise ValueError(f"linspace: num must be non-negative, got {num}")
    arr = np.linspace(float(start), float(stop), int(num), endpoint=endpoint)
    return _leaf(arr.astype(_dtype(dtype)), requires_grad)


def _no_graph(fn: str, **values: Any) -> None:
    """Constructors make leaves: a Tensor argument that requires grad would
    have its gradient dropped without a word, so it is refused."""
    for name, v in values.items():
        if isinstance(v, Tensor) and v.requires_grad:
            raise TypeError(f"{fn}: {name} is a Tensor that requires grad; {fn} makes a new "
                            f"leaf, so its gradient would be lost (pass {name}.item(), or build "
                            "the values from it with recorded ops)")


def _like(x: Any, fn: str) -> tuple[tuple[int, ...], np.dtype]:
    if isinstance(x, (Tensor, np.ndarray)):
        return x.shape, x.dtype
    if isinstance(x, (list, tuple)):
        with set_grad_enabled(False):   # only its shape and dtype are used
            t = as_tensor(x, fn, 0)
        return t.shape, t.dtype
    a = Tensor(x)       # the same dtype policy as tg.tensor: Python floats → float32
    return a.shape, a.dtype


@public(None)
def zeros_like(x: ArrayLike, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros with x's shape and (unless given) dtype."""
    shape, dt = _like(x, "zeros_like")
    return _leaf(np.zeros(shape, dt if dtype is None else np.dtype(dtype)), requires_grad)


@public(None)
def ones_like(x: ArrayLike, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones with x's shape and (unless given) dtype."""
    shape, dt = _like(x, "ones_like")
    return _leaf(np.ones(shape, dt if dtype is None else np.dtype(dtype)), requires_grad)


@public(None)
def full_like(x: ArrayLike, fill_value: Any, dtype: Any = None,
              requires_grad: bool = False) -> Tensor:
    """`fill_value` with x's shape and (unless given) dtype."""
    shape, dt = _like(x, "full_like")
    return full(shape, fill_value, dt if dtype is None else dtype, requires_grad)


