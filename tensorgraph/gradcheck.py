"""Check gradients against float64 central differences.

For a function f and a random vector v of f's output shape, the engine's
vector-Jacobian product vᵀJ is compared, element by element of each input,
with (s(x + εe_j) - s(x - εe_j)) / 2ε where s(x) = Σ v ⊙ f(x). A random v tests
every column of the Jacobian at once (an error would have to be orthogonal to v).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence, Union

import numpy as np

from .autograd import grad as _grad
from .tensor import Tensor

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """The analytical and numerical gradients disagree."""


def _outputs(out: Any) -> list[Tensor]:
    outs = [out] if isinstance(out, Tensor) else list(out)
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor or a sequence of Tensors, "
                            f"got {type(o).__name__}")
    return outs


def gradcheck(fn: Callable[..., Any], inputs: Union[Tensor, Sequence[Tensor]], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0,
              raise_exception: bool = True) -> bool:
    """True if fn's gradients match central differences for every input that
    requires grad. On a mismatch raises `GradcheckError` naming the input and
    its worst element (or returns False with raise_exception=False).

    Inputs that require grad must be float64: float32 differences are too
    coarse to judge anything (PyTorch's gradcheck assumes the same).
    """
    xs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    wrt = [i for i, x in enumerate(xs) if isinstance(x, Tensor) and x.requires_grad]
    if not wrt:
        raise ValueError("gradcheck: no input requires grad")
    for i in wrt:
        if xs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} has dtype {xs[i].dtype}; use float64 "
                            "(float32 finite differences give false failures)")
    outs = _outputs(fn(*xs))
    rng = np.random.default_rng(seed)
    vs = [rng.standard_normal(o.shape).astype(o.dtype) for o in outs]
    used = [o for o in outs if o.requires_grad]
    if used:
        analytic = _grad(used, [xs[i] for i in wrt], [v for o, v in zip(outs, vs) if o.requires_grad],
                         allow_unused=True)
    else:
        analytic = tuple(None for _ in wrt)

    def s() -> float:
        # Not under no_grad: fn may itself call tg.grad(..., create_graph=True),
        # which is how second derivatives are checked.
        return float(sum(np.sum(o._data.astype(np.float64) * v) for o, v in zip(_outputs(fn(*xs)), vs)))

    for i, a in zip(wrt, analytic):
        x = xs[i]
        if not x._data.flags.writeable:
            x._data = x._data.copy()
        data = x._data
        flat = data.reshape(-1)  # a view: data is contiguous or copied below
        if not np.shares_memory(flat, data):
            x._data = data = data.copy()
            flat = data.reshape(-1)
        num = np.empty(data.size)
        for j in range(data.size):
            orig = flat[j]
            flat[j] = orig + eps
            plus = s()
            flat[j] = orig - eps
            minus = s()
            flat[j] = orig
            num[j] = (plus - minus) / (2 * eps)
        ana = np.zeros(data.size) if a is None else a._data.astype(np.float64).reshape(-1)
        err = np.abs(ana - num) - (atol + rtol * np.abs(num))
        # A nan difference (fn undefined near x, e.g. nan in some output) checks nothing: fail.
        err[np.isnan(err)] = np.inf
        if data.size and (err > 0).any() or not np.isfinite(ana).all():
            j = int(np.nanargmax(np.where(np.isfinite(ana), err, np.inf)))
            idx = np.unravel_index(j, data.shape) if data.ndim else ()
            label = f"input {i}" + (f" ({x.name!r})" if x.name else "")
            msg = (f"gradcheck: {label} of shape {data.shape}: gradients differ, worst at element "
                   f"{tuple(int(k) for k in idx)}: analytical {ana[j]:.8g} vs numerical {num[j]:.8g} "
                   f"(|diff| {abs(ana[j] - num[j]):.3g} > atol {atol} + rtol {rtol} * |numerical|)")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True
