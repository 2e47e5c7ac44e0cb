"""Loss functions and regularization (chapter 2 of *Fundamentals of Deep Learning*).

Training minimizes an error function of the network's outputs y and the
targets t. The book starts from the squared error E = ½ Σ_i (t^(i) − y^(i))²
(whose gradient gives the delta rule), and classifies with a softmax output
layer and the cross-entropy −Σ_c t_c log y_c.

Each loss takes `reduction`: "mean" (the default: the average over examples),
"sum", or "none" (one value per example, or per element for elementwise
losses). Predictions and targets must have matching shapes: broadcasting a
(n, 1) prediction against (n,) targets is a classic silent bug, so it is an
error here.

Regularization (the book's cures for overfitting): `l1_penalty` and
`l2_penalty` add λ Σ |w| and ½ λ Σ w² to the loss; `max_norm_` constrains
each neuron's incoming weight vector after an update.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Union

import numpy as np

from . import ops
from .ops import LOG_SOFTMAX, SOFTMAX, OpTable, defop
from .ops.registry import as_tensor, holds_tensor
from .tensor import ArrayLike, Tensor, no_grad

__all__ = ["mse", "squared_error", "huber_loss", "smooth_l1_loss", "cross_entropy", "binary_cross_entropy", "hinge",
           "l1_penalty", "l2_penalty", "max_norm_", "REDUCTIONS"]

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, fn: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _prediction(y: Any, fn: str, what: str = "predictions") -> Tensor:
    # as_tensor: a list holding Tensors is stacked by recorded ops (never dropped).
    t = y if isinstance(y, Tensor) else as_tensor(y, fn, 0)
    if t.dtype.kind != "f":
        raise TypeError(f"{fn}: {what} must be floating point, got dtype {t.dtype}")
    return t


def _target(t: Any, like: Tensor, fn: str) -> Tensor:
    """Targets as a Tensor of the predictions' dtype (Tensors that require
    grad are cast with a recorded op, so their gradient still flows)."""
    if isinstance(t, (list, tuple)) and holds_tensor(t):
        t = as_tensor(t, fn, 1)      # stacked by recorded ops: np.asarray would drop the graph
    if isinstance(t, Tensor):
        return t if t.dtype == like.dtype else ops.astype(t, like.dtype)
    a = np.asarray(t)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{fn}: targets must be numbers, got dtype {a.dtype}")
    return Tensor(a.astype(like.dtype, copy=False))


def _same_shape(y: Tensor, t: Tensor, fn: str, what: str = "predictions") -> None:
    if y.shape != t.shape:
        raise ValueError(f"{fn}: targets of shape {t.shape} do not match {what} of shape "
                         f"{y.shape} (no broadcasting: reshape one of them)")


# ---------------------------------------------------------------------------
# Regression

def mse(y: ArrayLike, t: ArrayLike, reduction: str = "mean") -> Tensor:
    """Mean squared error: (1/N) Σ_i (y_i − t_i)² over all elements
    ("sum": Σ (y − t)², "none": (y − t)² elementwise)."""
    _check_reduction(reduction, "mse")
    y = _prediction(y, "mse")
    t = _target(t, y, "mse")
    _same_shape(y, t, "mse")
    d = y - t
    return _reduce(d * d, reduction)


def huber_loss(y: ArrayLike, t: ArrayLike, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """The Huber loss of d = y − t, elementwise then reduced (PyTorch's
    `huber_loss`): quadratic near zero, linear beyond δ, so one large error
    cannot dominate the gradient (the DQN's "error clipping", ch. 9):

        ½ d²            for |d| ≤ δ
        δ (|d| − ½ δ)   otherwise

    computed as ½ m² + δ (|d| − m) with m = min(|d|, δ), both cases at once;
    its gradient is d inside and δ sign(d) outside."""
    _check_reduction(reduction, "huber_loss")
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta!r}")
    y = _prediction(y, "huber_loss")
    t = _target(t, y, "huber_loss")
    _same_shape(y, t, "huber_loss")
    a = ops.abs(y - t)
    m = ops.minimum(a, delta)
    linear = a - m if delta == 1.0 else delta * (a - m)     # δ = 1 (the usual): one op fewer
    return _reduce(0.5 * m * m + linear, reduction)


def smooth_l1_loss(y: ArrayLike, t: ArrayLike, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """PyTorch's `smooth_l1_loss`: ½ d²/β for |d| < β, |d| − ½ β otherwise,
    d = y − t; the Huber loss with δ = β divided by β (the same for β = 1)."""
    _check_reduction(reduction, "smooth_l1_loss")
    if not beta > 0:
        raise ValueError(f"smooth_l1_loss: beta must be positive, got {beta!r}")
    loss = huber_loss(y, t, "none", beta)
    return _reduce(loss if beta == 1.0 else loss * (1.0 / beta), reduction)


def squared_error(y: ArrayLike, t: ArrayLike) -> Tensor:
    """The book's error function E = ½ Σ_i (t^(i) − y^(i))², summed over all
    examples and outputs. Its gradient ∂E/∂y = y − t gives the delta rule
    Δw_k = ε Σ_i x_k^(i) (t^(i) − y^(i)) for a linear neuron."""
    y = _prediction(y, "squared_error")
    t = _target(t, y, "squared_error")
    _same_shape(y, t, "squared_error")
    d = t - y
    return (d * d).sum() * 0.5


# ---------------------------------------------------------------------------
# Softmax cross-entropy: one fused op, so that the forward never takes the log
# of an underflowed probability and the backward is the simple softmax − t.

def _ce_forward(z: np.ndarray, t: np.ndarray, reduction: str) -> tuple[np.ndarray, np.ndarray]:
    # One pass of exponentials serves the loss (via logsumexp) and, saved, the
    # gradient (softmax), as a hand-written training loop would do.
    m = z.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)           # rows of -inf/inf: no nan from inf - inf
    e = np.exp(z - m)
    s = e.sum(axis=-1, keepdims=True)
    lse = (np.log(s) + m)[..., 0]
    probs = e / s
    if t.dtype.kind in "iu":
        C = z.shape[-1]
        picked = z.reshape(-1, C)[np.arange(t.size), t.reshape(-1)].reshape(t.shape)
        loss = lse - picked
    else:
        # −Σ_c t_c log softmax(z)_c = lse·Σ_c t_c − Σ_c t_c z_c (= lse − t·z for one-hot rows)
        loss = lse * t.sum(axis=-1) - (t * z).sum(axis=-1)
    if reduction == "mean":
        loss = loss.sum() / loss.size if loss.size else loss.mean()   # empty: nan, as numpy
    elif reduction == "sum":
        loss = loss.sum()
    return loss, probs


def _ce_scale(g: Any, z: Any, reduction: str) -> Any:
    """The incoming gradient, shaped to broadcast against the logits (..., C)."""
    if reduction == "none":
        return g.reshape(tuple(g.shape) + (1,))
    if reduction == "mean":
        return g / max(math.prod(z.shape[:-1]), 1)
    return g


def _ce_vjp_logits(g: Any, out: Any, z: Any, t: Any, reduction: str, saved: Any) -> Any:
    # ∂loss/∂z = softmax(z)·Σ_c t_c − t: softmax(z) − onehot(t) for class indices.
    if saved is not None and t.dtype.kind in "iu":
        # Plain backward: the softmax saved by forward, minus 1 at each target.
        d = saved.copy()
        C = d.shape[-1]
        d.reshape(-1, C)[np.arange(t.size), t.reshape(-1)] -= 1
        d *= _ce_scale(g, z, reduction)
        return d
    # Otherwise written with ops and operators only, so it also runs on Tensors
    # (create_graph, where softmax must be recomputed to be differentiated).
    p = SOFTMAX(z, axis=-1) if saved is None else saved
    if t.dtype.kind in "iu":
        d = p - np.eye(z.shape[-1], dtype=z.dtype)[np.asarray(t)]
    else:
        d = p * t.sum(axis=-1, keepdims=True) - t
    return _ce_scale(g, z, reduction) * d


def _ce_vjp_targets(g: Any, out: Any, z: Any, t: Any, reduction: str, saved: Any) -> Any:
    # ∂loss/∂t_c = lse − z_c = −log softmax(z)_c (probability targets only).
    return -_ce_scale(g, z, reduction) * LOG_SOFTMAX(z, axis=-1)


# The fused loss ops live in their own table (tg.all_ops() lists it beside the core's).
LOSS_OPS = OpTable("losses")
CROSS_ENTROPY = defop("cross_entropy", _ce_forward, _ce_vjp_logits, _ce_vjp_targets, saves=True,
                      table=LOSS_OPS)


def cross_entropy(logits: ArrayLike, targets: ArrayLike, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy from logits z (shape (..., C), classes on the last axis):

        loss = −Σ_c t_c log softmax(z)_c = logsumexp(z) − z_target

    one fused op (forward from logsumexp, so logits of ±1000 are fine;
    gradient softmax(z) − onehot(t)). `targets` are class indices (integers
    of shape (...), in [0, C)) or one-hot/probability rows (floats of shape
    (..., C), rows summing to 1), as numpy arrays or Tensors. "mean" averages
    over examples.
    """
    fn = "cross_entropy"
    _check_reduction(reduction, fn)
    z = _prediction(logits, fn, "logits")
    if z.ndim == 0:
        raise ValueError(f"{fn}: logits must have a class axis (shape (..., C)), got a scalar")
    C = z.shape[-1]
    if isinstance(targets, Tensor):
        t = targets
    elif isinstance(targets, (list, tuple)) and holds_tensor(targets):
        t = as_tensor(targets, fn, 1)   # recorded: np.asarray would drop the graph
    else:
        t = Tensor(np.asarray(targets))
    kind = t.dtype.kind
    if kind in "iu":
        if t.shape != z.shape[:-1]:
            raise ValueError(f"{fn}: class-index targets of shape {t.shape} do not match logits "
                             f"of shape {z.shape}: expected shape {z.shape[:-1]} (or one-hot "
                             f"rows of shape {z.shape})")
        idx = t.data
        if idx.size and (idx.min() < 0 or idx.max() >= C):
            bad = idx.min() if idx.min() < 0 else idx.max()
            raise ValueError(f"{fn}: class index {int(bad)} out of range [0, {C}) for logits of "
                             f"shape {z.shape}")
        if kind == "u":
            t = Tensor(idx.astype(np.int64))
    elif kind == "f":
        if t.shape != z.shape:
            hint = (" (class indices must be integers: use targets.astype(int))"
                    if t.shape == z.shape[:-1] else "")
            raise ValueError(f"{fn}: one-hot targets of shape {t.shape} do not match logits of "
                             f"shape {z.shape}: expected {z.shape} or class indices of shape "
                             f"{z.shape[:-1]}{hint}")
        td = t.data
        if td.size and (td.min() < 0 or np.abs(td.sum(axis=-1) - 1).max() > 1e-3):
            raise ValueError(f"{fn}: one-hot/probability targets of shape {t.shape} must be "
                             f"non-negative with rows summing to 1 (found min {td.min():.4g}, "
                             f"row sums from {td.sum(axis=-1).min():.4g} to "
                             f"{td.sum(axis=-1).max():.4g})")
        if t.dtype != z.dtype:
            t = ops.astype(t, z.dtype) if t.requires_grad else Tensor(td.astype(z.dtype))
    else:
        raise TypeError(f"{fn}: targets must be integer class indices or float one-hot rows, "
                        f"got dtype {t.dtype} (shape {t.shape})")
    return CROSS_ENTROPY(z, t, reduction=reduction)


def binary_cross_entropy(logits: ArrayLike, targets: ArrayLike, reduction: str = "mean") -> Tensor:
    """Cross-entropy of a sigmoid output y = σ(z) from its logit z, elementwise:

        −t log σ(z) − (1 − t) log(1 − σ(z)) = softplus(z) − t·z

    computed as softplus (stable for |z| in the thousands); the gradient is
    σ(z) − t. Targets in [0, 1], same shape as the logits."""
    fn = "binary_cross_entropy"
    _check_reduction(reduction, fn)
    z = _prediction(logits, fn, "logits")
    t = _target(targets, z, fn)
    _same_shape(z, t, fn, "logits")
    td = t.data
    if td.size and (td.min() < 0 or td.max() > 1):
        raise ValueError(f"{fn}: targets must lie in [0, 1], got min {td.min():.4g} and max "
                         f"{td.max():.4g}")
    return _reduce(ops.softplus(z) - t * z, reduction)


def hinge(scores: ArrayLike, targets: ArrayLike, reduction: str = "mean") -> Tensor:
    """The hinge loss of a linear classifier's scores s with labels t = ±1:
    max(0, 1 − t·s), elementwise. Zero once an example is on the right side
    with margin 1; its (sub)gradient is −t where t·s < 1, else 0."""
    fn = "hinge"
    _check_reduction(reduction, fn)
    s = _prediction(scores, fn, "scores")
    t = _target(targets, s, fn)
    _same_shape(s, t, fn, "scores")
    if t.size and not (np.abs(t.data) == 1).all():
        raise ValueError(f"{fn}: targets must be -1 or +1, got values "
                         f"{np.unique(t.data)[:5].tolist()}")
    return _reduce(ops.relu(1 - t * s), reduction)


# ---------------------------------------------------------------------------
# Regularization

Params = Union[Any, Iterable[Tensor]]


def _param_list(params: Params, fn: str) -> list[Tensor]:
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    if isinstance(params, Tensor):
        params = [params]
    out = list(params)
    if not out:
        raise ValueError(f"{fn}: no parameters given")
    for i, p in enumerate(out):
        if not isinstance(p, Tensor):
            raise TypeError(f"{fn}: item {i} is a {type(p).__name__}, not a Tensor")
    return out


def l1_penalty(params: Params, lam: float) -> Tensor:
    """λ Σ_w |w| over every element of `params` (a Module, or an iterable of
    tensors). Added to the loss, it pushes weights to exactly zero (sparse
    weights). Pass only the weights (e.g. `[l.weight for l in net.layers]`)
    to leave the biases unpenalized; a Module contributes all its parameters."""
    ps = _param_list(params, "l1_penalty")
    total = ops.abs(ps[0]).sum()
    for p in ps[1:]:
        total = total + ops.abs(p).sum()
    return total * lam


def l2_penalty(params: Params, lam: float) -> Tensor:
    """½ λ Σ_w w², as in the book (the ½ makes the gradient λw: weight decay).
    `params` is a Module (all its parameters) or an iterable of tensors; pass
    only the weights to leave the biases unpenalized."""
    ps = _param_list(params, "l2_penalty")
    total = (ps[0] * ps[0]).sum()
    for p in ps[1:]:
        total = total + (p * p).sum()
    return total * (0.5 * lam)


def max_norm_(params_or_layer: Params, c: float) -> int:
    """The max-norm constraint: rescale each neuron's incoming weight vector w
    so that ‖w‖₂ ≤ c (w ← w·c/‖w‖ where ‖w‖ > c), in place and without
    recording, after each update. Biases are not part of the vector.

    Given a Module, applies to every `Layer` (each column of its (n_in, n_out)
    weight), `Neuron` (its weight vector) and convolution (`Conv1d`, `Conv2d`:
    each output filter, the norm taken over all its other axes, as
    `torch.renorm(w, 2, 0, c)`) inside it. Given tensors, a 1-D tensor is one
    neuron's weights, a 2-D one a layer weight (one neuron per column), and a
    tensor of 3 or more axes a convolution kernel (out, in, k...) (one filter
    per index of axis 0). Returns how many vectors were rescaled."""
    if not c > 0:
        raise ValueError(f"max_norm_: c must be positive, got {c!r}")
    from .nn import Conv1d, Conv2d, Layer, Module, Neuron
    if isinstance(params_or_layer, Module):
        weights: list[Tensor] = [m.weight for _, m in params_or_layer.named_modules()
                   if isinstance(m, (Layer, Neuron, Conv1d, Conv2d))]
    else:
        weights = _param_list(params_or_layer, "max_norm_")
    clipped = 0
    with no_grad():
        for w in weights:
            a = w.data
            if a.ndim == 0:
                raise ValueError(f"max_norm_: weights must be 1-D (a neuron), 2-D (n_in, n_out) "
                                 f"or a convolution kernel (out, in, k...), got shape {a.shape}")
            # the axes that make up one neuron's (one filter's) incoming weights
            axes = 0 if a.ndim <= 2 else tuple(range(1, a.ndim))
            keep = (1,) * (a.ndim - 1) if a.ndim > 2 else ()
            norms = np.sqrt((a.astype(np.float64) ** 2).sum(axis=axes))
            over = norms > c
            if not over.any():
                continue
            scale = np.where(over, c / np.where(over, norms, 1.0), 1.0).astype(a.dtype)
            scale = scale.reshape(scale.shape + keep)
            if a.flags.writeable:
                a *= scale
            else:
                w.data = a * scale
            clipped += int(over.sum())
    return clipped
