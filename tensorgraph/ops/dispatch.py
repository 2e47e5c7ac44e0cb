"""numpy's own functions on Tensors (NEP 13 `__array_ufunc__`, NEP 18
`__array_function__`), dispatched through the tables the `@public(numpy=...)`
declarations build. This is what lets one VJP run on arrays and on Tensors.

A numpy function that is not an op still runs on the Tensor's values when
nothing is lost: when no input requires grad, or when its result holds no
floating-point value a gradient could flow to (`np.isfinite`, `np.allclose`,
`np.shape`, `np.ndim`, ...). Otherwise it raises: a float result computed
behind the graph's back would silently have no gradient.
"""
from __future__ import annotations

import builtins
import inspect
from typing import Any, Callable

import numpy as np

from ..tensor import Tensor
from .registry import OPS

UFUNCS: dict[Any, Callable[..., Any]] = {}
FUNCTIONS: dict[Any, Callable[..., Any]] = {}


def build() -> None:
    """Fill the tables from the core declarations (called once, by ops/__init__)."""
    UFUNCS.clear()
    FUNCTIONS.clear()
    for d in OPS.decls:
        for np_fn, impl in d.numpy.items():
            table = UFUNCS if isinstance(np_fn, np.ufunc) else FUNCTIONS
            if np_fn in table:
                raise ValueError(f"numpy.{np_fn.__name__} is claimed by two declarations")
            table[np_fn] = impl


def _to_arrays(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x._data
    if isinstance(x, (list, tuple)):
        return type(x)(_to_arrays(v) for v in x)
    return x


def _any_requires_grad(x: Any) -> bool:
    if isinstance(x, Tensor):
        return x.requires_grad
    if isinstance(x, (list, tuple)):
        return builtins.any(_any_requires_grad(v) for v in x)
    if isinstance(x, dict):
        return builtins.any(_any_requires_grad(v) for v in x.values())
    return False


def _holds_float(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "fc" or x.dtype == object
    if isinstance(x, (float, complex, np.floating, np.complexfloating)):
        return True
    if isinstance(x, (list, tuple)):
        return builtins.any(_holds_float(v) for v in x)
    return False


# Their result depends on the input's shape and dtype only, never on its
# values: nothing a gradient could flow through.
_VALUE_FREE = {np.zeros_like, np.ones_like, np.empty_like, np.full_like}


def _plain(name: str, fn: Callable[..., Any], args: Any, kwargs: dict[str, Any],
           why: str = "is not a tensorgraph op") -> Any:
    result = fn(*_to_arrays(args), **{k: _to_arrays(v) for k, v in kwargs.items()})
    if (_holds_float(result) and fn not in _VALUE_FREE
            and (_any_requires_grad(args) or _any_requires_grad(kwargs))):
        raise TypeError(f"{name} {why}, so it cannot carry a gradient; use a tg function, or "
                        ".detach().numpy() to leave the graph on purpose")
    return result


def array_ufunc(self: Tensor, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
    fn = UFUNCS.get(ufunc)
    if fn is not None and method == "__call__":
        if not kwargs:
            return fn(*inputs)
        return _plain(f"numpy.{ufunc.__name__}", ufunc, inputs, kwargs,
                      f"with {', '.join(f'{k}=' for k in kwargs)} is not a tensorgraph op "
                      "(the op takes no out=, where= or dtype=)")
    name = f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
    return _plain(name, getattr(ufunc, method), inputs, kwargs)


def array_function(self: Tensor, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
    fn = FUNCTIONS.get(func)
    if fn is not None:
        try:
            return fn(*args, **kwargs)
        except TypeError as e:
            if "unexpected keyword argument" not in str(e):
                raise
            # numpy's argument that tensorgraph's function lacks (out=, dtype=, ...)
            sig = inspect.signature(fn).replace(return_annotation=inspect.Signature.empty)
            raise TypeError(f"numpy.{func.__name__} on a Tensor runs tg.{fn.__name__}{sig}: "
                            f"{e}") from None
    return _plain(f"numpy.{func.__name__}", func, args, kwargs)
