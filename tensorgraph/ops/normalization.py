"""Batch normalisation (chapter 5; Ioffe & Szegedy 2015), as
torch.nn.functional.batch_norm, over (N, C), (N, C, L) or (N, C, H, W): the
statistics are per channel (axis 1), over every other axis.

    y = (x - μ) / sqrt(σ² + eps) · weight + bias

Two ops, each fused (one node to draw, one ONNX node to export), with VJPs
written with ops so that create_graph and second derivatives work:

- `batch_norm` (evaluation): μ, σ² are given (the running statistics); y
  is affine in x, and differentiable in every input.
- `batch_norm_train` (training): μ = mean(x), σ² = mean((x - μ)²) (biased)
  over the batch; the gradient goes through them too:

      dx = weight/σ̂ · (g - mean(g) - x̂ · mean(g · x̂)),  x̂ = (x - μ)/σ̂,
      dweight = Σ g · x̂,  dbias = Σ g                      (σ̂ = sqrt(σ² + eps))

  The forward saves (μ, σ²); on Tensors (create_graph) the VJP recomputes
  them with ops, so they are differentiated as well.

`batch_norm(..., training=True)` also updates the running statistics in
place, as PyTorch: running ← (1 - momentum)·running + momentum·batch, the
variance unbiased (× n/(n - 1), n values per channel).
"""
from __future__ import annotations

import sys
from typing import Any, Optional, Union

import numpy as np

from ..tensor import ArrayLike, Tensor, _new, bump_version, mark_written, record
from .registry import OPS, as_tensor, constant

defop, public = OPS.defop, OPS.public

__all__ = ["batch_norm"]

_tensor_mod: Any = sys.modules[Tensor.__module__]


def _axes(ndim: int) -> tuple[int, ...]:
    return (0,) + tuple(range(2, ndim))


def _c(a: Any, ndim: int) -> Any:
    """A per-channel (C,) array shaped to broadcast against (N, C, ...)."""
    return a.reshape(a.shape + (1,) * (ndim - 2))


# -- evaluation: given statistics -------------------------------------------

def _bn_forward(x: np.ndarray, mean: np.ndarray, var: np.ndarray, weight: np.ndarray,
                bias: np.ndarray, eps: float) -> np.ndarray:
    n = x.ndim
    scale = (var + eps) ** -0.5 * weight
    return (x - _c(mean, n)) * _c(scale, n) + _c(bias, n)


def _bn_dx(g: Any, out: Any, x: Any, mean: Any, var: Any, weight: Any, bias: Any,
           eps: float) -> Any:
    return g * _c((var + eps) ** -0.5 * weight, x.ndim)


def _bn_dmean(g: Any, out: Any, x: Any, mean: Any, var: Any, weight: Any, bias: Any,
              eps: float) -> Any:
    return -g.sum(axis=_axes(x.ndim)) * ((var + eps) ** -0.5 * weight)


def _bn_dvar(g: Any, out: Any, x: Any, mean: Any, var: Any, weight: Any, bias: Any,
             eps: float) -> Any:
    gx = (g * (x - _c(mean, x.ndim))).sum(axis=_axes(x.ndim))
    return gx * weight * (-0.5 * (var + eps) ** -1.5)


def _bn_dweight(g: Any, out: Any, x: Any, mean: Any, var: Any, weight: Any, bias: Any,
                eps: float) -> Any:
    return (g * (x - _c(mean, x.ndim))).sum(axis=_axes(x.ndim)) * (var + eps) ** -0.5


def _bn_dbias(g: Any, out: Any, x: Any, mean: Any, var: Any, weight: Any, bias: Any,
              eps: float) -> Any:
    return g.sum(axis=_axes(x.ndim))


BATCH_NORM = defop("batch_norm", _bn_forward, _bn_dx, _bn_dmean, _bn_dvar, _bn_dweight, _bn_dbias)


# -- training: the batch's statistics ------------------------------------------

def _csum(a: np.ndarray, b: Optional[np.ndarray] = None) -> np.ndarray:
    """Σ a (or Σ a·b) per channel over every other axis, without an (N, C, ...)
    temporary: einsum over (N, C, rest), then the small (N, C) sum."""
    n, c = a.shape[:2]
    a3 = a.reshape(n, c, -1)
    if b is None:
        return np.einsum("nci->nc", a3).sum(axis=0)
    return np.einsum("nci,nci->nc", a3, b.reshape(n, c, -1)).sum(axis=0)


def _batch_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(μ, biased σ², x - μ) per channel (two passes: σ² from x - μ, not E[x²] - μ²)."""
    m = x.size // x.shape[1]
    mean = _csum(x) / m
    xc = x - _c(mean, x.ndim)
    return mean, _csum(xc, xc) / m, xc


def _stats(x: Any, eps: float, saved: Any) -> tuple[Any, Any]:
    """(μ, 1/σ̂) per channel: saved by the forward, or recomputed (with ops on Tensors)."""
    if saved is not None:
        mean, var = saved[:2]
    else:
        ax = _axes(x.ndim)
        mean = x.mean(axis=ax)
        xc = x - _c(mean, x.ndim)
        var = (xc * xc).mean(axis=ax)
    return mean, (var + eps) ** -0.5


def _bn_train_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                      eps: float) -> tuple[np.ndarray, list[Any]]:
    n = x.ndim
    mean, var, xc = _batch_stats(x)
    xc *= _c((var + eps) ** -0.5 * weight, n)
    xc += _c(bias, n)
    # saved: μ, σ², and a slot where the VJPs of one backward share Σg and Σg·(x - μ)
    return xc, [mean, var, None]


# Each VJP has two spellings of one formula: on Tensors (create_graph) with
# ops, so that it is differentiated again; on arrays (a plain backward) the
# same algebra regrouped per channel,
#
#     dx = a·(g - (x - μ)·Σ(g·(x - μ))/(m σ̂²) - Σg/m),  a = weight/σ̂,
#
# computed in place in one array, and Σg, Σg·(x - μ) (two einsum passes)
# computed once per backward for all three VJPs (kept with the saved
# statistics, next to the g they belong to).

def _sums(g: np.ndarray, x: np.ndarray, saved: Any) -> tuple[Any, Any, np.ndarray, Any]:
    """(μ, σ², x - μ (a fresh array the caller may reuse), (Σg, Σg·(x - μ))) per channel."""
    if saved is None:
        mean, var, xc = _batch_stats(x)
        return mean, var, xc, (_csum(g), _csum(g, xc))
    mean, var, cache = saved
    xc = x - _c(mean, x.ndim)
    if cache is None or cache[0] is not g:
        cache = saved[2] = (g, _csum(g), _csum(g, xc))
    return mean, var, xc, cache[1:]


def _bn_train_dx(g: Any, out: Any, x: Any, weight: Any, bias: Any, eps: float,
                 saved: Any = None) -> Any:
    n, ax = x.ndim, _axes(x.ndim)
    if isinstance(g, Tensor) or isinstance(x, Tensor):
        mean, inv = _stats(x, eps, saved)
        xhat = (x - _c(mean, n)) * _c(inv, n)
        return (g - _c(g.mean(axis=ax), n) - xhat * _c((g * xhat).mean(axis=ax), n)) \
            * _c(inv * weight, n)
    m = x.size // x.shape[1]
    mean, var, dx, (sg, sgx) = _sums(g, x, saved)
    inv2 = 1 / (var + eps)
    dx *= _c(-inv2 * sgx / m, n)
    dx += g
    dx += _c(-sg / m, n)
    dx *= _c(weight * np.sqrt(inv2), n)
    return dx


def _bn_train_dweight(g: Any, out: Any, x: Any, weight: Any, bias: Any, eps: float,
                      saved: Any = None) -> Any:
    if isinstance(g, Tensor) or isinstance(x, Tensor):
        mean, inv = _stats(x, eps, saved)
        return (g * (x - _c(mean, x.ndim))).sum(axis=_axes(x.ndim)) * inv
    if saved is not None and saved[2] is not None and saved[2][0] is g:
        return saved[2][2] * (saved[1] + eps) ** -0.5
    mean, var, _, (_, sgx) = _sums(g, x, saved)
    return sgx * (var + eps) ** -0.5


def _bn_train_dbias(g: Any, out: Any, x: Any, weight: Any, bias: Any, eps: float,
                    saved: Any = None) -> Any:
    if isinstance(g, Tensor):
        return g.sum(axis=_axes(x.ndim))
    if saved is not None and saved[2] is not None and saved[2][0] is g:
        return saved[2][1]
    return _csum(g)


def _running_update_stats(x: np.ndarray) -> np.ndarray:
    """(2, C): the batch's mean and unbiased variance, what the running statistics move to."""
    mean, var, _ = _batch_stats(x)
    count = x.size // x.shape[1]
    return np.stack([mean, var * (count / (count - 1))])


# What a captured training step feeds the running statistics' update (no gradient).
BATCH_NORM_STATS = defop("batch_norm_stats", _running_update_stats, differentiable=False)

BATCH_NORM_TRAIN = defop("batch_norm_train", _bn_train_forward, _bn_train_dx, _bn_train_dweight,
                         _bn_train_dbias, saves=True)


# -- the public function -------------------------------------------------------

def _per_channel(v: Any, c: int, x: Tensor, arg: str) -> Any:
    if v is None:
        return None
    t = v if isinstance(v, Tensor) else as_tensor(v, "batch_norm")
    if t.shape != (c,):
        raise ValueError(f"batch_norm: {arg} must have shape ({c},) (one value per channel of "
                         f"the input of shape {x.shape}), got shape {t.shape}")
    return t


def _update_running(buf: Any, batch: np.ndarray, momentum: float) -> None:
    """buf ← (1 - momentum)·buf + momentum·batch, in place (same array, as PyTorch)."""
    arr = buf._data if isinstance(buf, Tensor) else buf
    new = (1 - momentum) * arr + momentum * batch
    if isinstance(buf, Tensor):
        if not arr.flags.writeable:     # e.g. a broadcast view
            buf._data = arr = arr.copy()
        np.copyto(arr, new, casting="unsafe")
        # backward through a graph that read the old values now raises
        bump_version(buf)
        mark_written(arr)
    else:
        np.copyto(arr, new, casting="unsafe")


@public(None)
def batch_norm(x: ArrayLike, running_mean: Optional[ArrayLike],
               running_var: Optional[ArrayLike], weight: Optional[ArrayLike] = None,
               bias: Optional[ArrayLike] = None, training: bool = False,
               momentum: Union[float, Tensor] = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation over (N, C), (N, C, L) or (N, C, H, W), as
    torch.nn.functional.batch_norm; per channel c, over every other axis:

        y = (x - μ_c) / sqrt(σ²_c + eps) · weight_c + bias_c

    training=False: μ, σ² are running_mean, running_var. training=True: the
    batch's mean and biased variance (the gradient flows through them), and
    the running statistics (if given) are updated in place:
    running ← (1 - momentum)·running + momentum·batch, with the unbiased
    variance σ²·n/(n - 1). weight/bias None: 1 and 0. Inside tg.capture the
    update is recorded (running_mean/var must then be `RunningStat`s, as
    nn.BatchNorm's are, or parameters) and each replay performs it; momentum
    may then be a 0-d Tensor computed in the graph (BatchNorm's momentum=None
    average)."""
    fn = "batch_norm"
    x = as_tensor(x, fn, 0)
    if x.ndim < 2:
        raise ValueError(f"{fn}: expected an input of shape (N, C), (N, C, L) or (N, C, H, W), "
                         f"got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{fn}: expects a floating-point input, got dtype {x.dtype}")
    c = x.shape[1]
    rm = _per_channel(running_mean, c, x, "running_mean")
    rv = _per_channel(running_var, c, x, "running_var")
    w = _per_channel(weight, c, x, "weight")
    b = _per_channel(bias, c, x, "bias")
    w = np.ones(c, x.dtype) if w is None else w
    b = np.zeros(c, x.dtype) if b is None else b
    eps = float(constant(eps, fn, "eps"))
    if not training:
        if rm is None or rv is None:
            raise ValueError(f"{fn}: running_mean and running_var must be given in evaluation "
                             "mode (training=False)")
        return record(BATCH_NORM, _operands(x, rm, rv, w, b), {"eps": eps})
    count = x.size // c
    if count <= 1:
        raise ValueError(f"{fn}: expected more than 1 value per channel when training, got "
                         f"input shape {x.shape}")
    update = [(r, i) for r, i in ((rm, 0), (rv, 1)) if r is not None]
    if update and _tensor_mod._capture is not None:
        return _captured_training(x, w, b, eps, rm, rv, momentum, count)
    momentum = float(constant(momentum, fn, "momentum"))
    y = record(BATCH_NORM_TRAIN, _operands(x, w, b), {"eps": eps})
    if update:
        saved = y.node.saved if y.node is not None else None
        if saved is None:
            saved = _batch_stats(x._data)[:2]
        batch = (saved[0], saved[1] * (count / (count - 1)))
        for r, i in update:
            _update_running(r, batch[i], momentum)
    return y


def _captured_training(x: Tensor, w: Any, b: Any, eps: float, rm: Any, rv: Any, momentum: Any,
                       count: int) -> Tensor:
    """Training mode inside tg.capture: the running statistics' update is
    recorded (the batch's mean and unbiased variance by the op
    `batch_norm_stats` on x, applied
    with `mul_`/`add_` under no_grad, which a capture records as the effect op
    `assign` on a RunningStat), so each replay performs it and the capture
    itself changes nothing."""
    from ..tensor import no_grad
    for r, arg in ((rm, "running_mean"), (rv, "running_var")):
        if r is not None and getattr(r, "_graph_kind", None) != "parameter":
            from ..graph import CaptureError
            raise CaptureError(
                f"batch_norm: training mode updates {arg} in place, but a captured graph can "
                f"only update parameters or RunningStat buffers, and {arg} is a plain "
                f"{type(r).__name__} (the update would be lost at each replay); keep the "
                "statistics in RunningStat tensors (tensorgraph.ops.normalization.RunningStat, "
                "as nn.BatchNorm1d/2d do), or capture in evaluation mode (net.eval())")
    if isinstance(momentum, Tensor) and momentum.requires_grad:
        raise TypeError("batch_norm: momentum is a Tensor that requires grad; pass "
                        "momentum.detach()")
    y = record(BATCH_NORM_TRAIN, _operands(x, w, b), {"eps": eps})
    with no_grad():
        stats = record(BATCH_NORM_STATS, (x,), {})
        # in place under no_grad on a RunningStat: recorded as `assign`s, with the
        # arithmetic of the eager update, so a replay equals an eager call bit for bit
        for i, r in enumerate((rm, rv)):
            if r is not None:
                r.mul_(1 - momentum).add_(momentum * stats[i])
    return y


class RunningStat(Tensor):
    """A running statistic of batch norm (`running_mean`, `running_var`,
    `num_batches_tracked`): state that is not trained, which a captured graph
    treats as it treats parameters (`_graph_kind`): an evaluation-mode replay
    reads it at each call (statistics gathered or loaded after the capture
    count), and a training-mode replay updates it in place (the effect op
    `assign`)."""

    __slots__ = ()
    _graph_kind = "parameter"


def _operands(*xs: Any) -> tuple[Tensor, ...]:
    return tuple(t if isinstance(t, Tensor) else _new(t) for t in xs)
