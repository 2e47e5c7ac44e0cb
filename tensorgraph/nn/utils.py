"""Gradient clipping (chapter 7: recurrent networks' exploding gradients), as
PyTorch's torch.nn.utils: `clip_grad_norm_` and `clip_grad_value_`.

Both change the parameters' `.grad` (set by backward) and are written with
ops under `tg.no_grad`, so a captured training step (`tg.capture`) records
the clipping too and replays it on each step's gradients.
"""
from __future__ import annotations

import math
import sys
from typing import Any, Iterable, Union

import numpy as np

from .. import ops
from ..tensor import Tensor, no_grad

__all__ = ["clip_grad_norm_", "clip_grad_value_"]

Parameters = Union[Tensor, Iterable[Tensor]]
_tensor_mod: Any = sys.modules[Tensor.__module__]   # its _capture changes: read it at call time


def _with_grads(parameters: Parameters) -> list[Tensor]:
    ps = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in ps:
        if not isinstance(p, Tensor):
            raise TypeError(f"clip_grad: parameters must be Tensors, got {type(p).__name__}")
    return [p for p in ps if p.grad is not None]


def _set_grad(p: Tensor, g: Tensor) -> None:
    rec = _tensor_mod._capture
    if rec is not None:
        rec.touch_grad(p)
    p.grad = g


def clip_grad_norm_(parameters: Parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale the gradients so that their total norm is at most `max_norm`:

        total = ‖(‖g_1‖_p, ..., ‖g_n‖_p)‖_p     (the p-norm of all gradients as one vector;
                                                  p = inf: max |g|)
        g_i ← g_i · min(1, max_norm / (total + 1e-6))

    Parameters without a gradient are skipped. Returns `total` (a 0-d Tensor,
    the norm before clipping; 0 when no parameter has a gradient). With
    `error_if_nonfinite`, a total that is nan or inf raises RuntimeError
    (otherwise the gradients become nan, as in PyTorch)."""
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be positive (or inf), got {norm_type}")
    ps = _with_grads(parameters)
    if not ps:
        return Tensor(np.float32(0.0))
    with no_grad():
        grads = [p.grad if isinstance(p.grad, Tensor) else Tensor(np.asarray(p.grad))
                 for p in ps]
        if math.isinf(norm_type):
            norms = [ops.max(ops.abs(g)) for g in grads]
            total = norms[0] if len(norms) == 1 else ops.max(ops.stack(norms))
        else:
            norms = [ops.sum(ops.abs(g) ** norm_type) ** (1.0 / norm_type) for g in grads]
            total = ops.sum(ops.stack(norms) ** norm_type) ** (1.0 / norm_type)
        if error_if_nonfinite and not np.isfinite(total.item()):
            raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                               f"gradients of {len(ps)} parameters is non-finite ({total.item()}), "
                               "so they cannot be clipped; pass error_if_nonfinite=False to "
                               "clip anyway")
        coef = ops.minimum(max_norm / (total + 1e-6), 1.0)
        for p, g in zip(ps, grads):
            _set_grad(p, g * coef.astype(g.dtype))
    return total


def clip_grad_value_(parameters: Parameters, clip_value: float) -> None:
    """Clamp every gradient element to [-clip_value, clip_value]:
    g ← min(max(g, -clip_value), clip_value). Parameters without a gradient
    are skipped."""
    c = float(clip_value)
    if not c >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value!r}")
    with no_grad():
        for p in _with_grads(parameters):
            g = p.grad if isinstance(p.grad, Tensor) else Tensor(np.asarray(p.grad))
            _set_grad(p, ops.clip(g, -c, c))
