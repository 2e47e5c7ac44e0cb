"""Reductions over axes, and the softmax outputs.

Every reduction takes numpy's `axis=`/`keepdims=` and PyTorch's `dim=`/
`keepdim=` as aliases. `keep` puts the reduced axes back (size 1) so that
a gradient broadcasts against the input again.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from ..tensor import ArrayLike, Tensor
from .registry import OPS, Axis, constant, count, dim_alias, keep, norm_axis, torch_alias, unary

defop, public = OPS.defop, OPS.public


def _sum_vjp(g: Any, out: Any, x: Any, axis: Axis, keepdims: bool) -> Any:
    return np.broadcast_to(keep(g, x.shape, axis, keepdims), x.shape)


SUM = defop("sum", lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims), _sum_vjp)


@public(SUM, method=True, numpy=np.sum)
def sum(x: ArrayLike, axis: Axis = None, keepdims: bool = False, *,  # noqa: A001
        dim: Axis = None, keepdim: Optional[bool] = None) -> Tensor:
    """Σ over `axis` (an int, a tuple, or None for all)."""
    axis, keepdims = torch_alias("sum", axis, keepdims, dim, keepdim)
    return unary(SUM, x, axis=norm_axis(axis), keepdims=keepdims)


def _mean_vjp(g: Any, out: Any, x: Any, axis: Axis, keepdims: bool) -> Any:
    return np.broadcast_to(keep(g, x.shape, axis, keepdims) / count(x.shape, axis), x.shape)


MEAN = defop("mean", lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims), _mean_vjp)


@public(MEAN, method=True, numpy=np.mean)
def mean(x: ArrayLike, axis: Axis = None, keepdims: bool = False, *,
         dim: Axis = None, keepdim: Optional[bool] = None) -> Tensor:
    """The average over `axis`: Σx / N."""
    axis, keepdims = torch_alias("mean", axis, keepdims, dim, keepdim)
    return unary(MEAN, x, axis=norm_axis(axis), keepdims=keepdims)


def _extremum_vjp(g: Any, out: Any, x: Any, axis: Axis, keepdims: bool) -> Any:
    # Every element equal to the extremum shares the gradient evenly.
    hit = (x == keep(out, x.shape, axis, keepdims)).astype(x.dtype)
    return keep(g, x.shape, axis, keepdims) * hit / hit.sum(axis=axis, keepdims=True)


MAX = defop("max", lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims), _extremum_vjp)


@public(MAX, method=True, numpy=(np.max, np.amax))
def max(x: ArrayLike, axis: Axis = None, keepdims: bool = False, *,  # noqa: A001
        dim: Axis = None, keepdim: Optional[bool] = None) -> Tensor:
    """The largest element over `axis` (values only, as numpy). The gradient
    goes to the maximum; if several elements tie, it is split evenly."""
    axis, keepdims = torch_alias("max", axis, keepdims, dim, keepdim)
    return unary(MAX, x, axis=norm_axis(axis), keepdims=keepdims)


MIN = defop("min", lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims), _extremum_vjp)


@public(MIN, method=True, numpy=(np.min, np.amin))
def min(x: ArrayLike, axis: Axis = None, keepdims: bool = False, *,  # noqa: A001
        dim: Axis = None, keepdim: Optional[bool] = None) -> Tensor:
    """The smallest element over `axis`; ties split the gradient evenly."""
    axis, keepdims = torch_alias("min", axis, keepdims, dim, keepdim)
    return unary(MIN, x, axis=norm_axis(axis), keepdims=keepdims)


def _var_vjp(g: Any, out: Any, x: Any, axis: Axis, ddof: int, keepdims: bool) -> Any:
    n = count(x.shape, axis)
    # N - ddof <= 0: numpy's forward divides by 0 (inf/nan); so does the
    # gradient, instead of raising ZeroDivisionError.
    scale = 2 / (n - ddof) if n > ddof else math.inf
    return keep(g, x.shape, axis, keepdims) * (x - x.mean(axis=axis, keepdims=True)) * scale


VAR = defop("var", lambda x, axis, ddof, keepdims: np.var(x, axis=axis, ddof=ddof, keepdims=keepdims),
            _var_vjp)


@public(VAR, method=True, numpy=np.var)
def var(x: ArrayLike, axis: Axis = None, ddof: int = 0, keepdims: bool = False, *,
        dim: Axis = None, keepdim: Optional[bool] = None) -> Tensor:
    """Variance, Σ(x - mean)²/(N - ddof), as numpy (ddof=0 by default;
    PyTorch's default is the unbiased ddof=1)."""
    axis, keepdims = torch_alias("var", axis, keepdims, dim, keepdim)
    return unary(VAR, x, axis=norm_axis(axis), ddof=int(constant(ddof, "var", "ddof")),
                 keepdims=keepdims)


def _logsumexp(x: np.ndarray, axis: Axis, keepdims: bool) -> np.ndarray:
    # log Σ e^x = m + log Σ e^(x - m): no overflow; m = 0 where the max is ±inf.
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _logsumexp_vjp(g: Any, out: Any, x: Any, axis: Axis, keepdims: bool) -> Any:
    # softmax(x), from x - max(x) (exact) rather than e^(x - out): `out` is
    # rounded at the logits' magnitude, which costs float32 digits near 1000.
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return keep(g, x.shape, axis, keepdims) * (e / e.sum(axis=axis, keepdims=True))


LOGSUMEXP = defop("logsumexp", _logsumexp, _logsumexp_vjp)


@public(LOGSUMEXP, method=True)
def logsumexp(x: ArrayLike, axis: Axis = None, keepdims: bool = False, *,
              dim: Axis = None, keepdim: Optional[bool] = None) -> Tensor:
    """log Σ e^x over `axis`, computed stably; its gradient is softmax(x)."""
    axis, keepdims = torch_alias("logsumexp", axis, keepdims, dim, keepdim)
    return unary(LOGSUMEXP, x, axis=norm_axis(axis), keepdims=keepdims)


ARGMAX = defop("argmax", lambda x, axis, keepdims: np.argmax(x, axis=axis, keepdims=keepdims),
               differentiable=False)


@public(ARGMAX, method=True, numpy=np.argmax)
def argmax(x: ArrayLike, axis: Optional[int] = None, keepdims: bool = False, *,
           dim: Optional[int] = None, keepdim: Optional[bool] = None) -> Tensor:
    """Index of the largest element (int64; not differentiable)."""
    axis, keepdims = torch_alias("argmax", axis, keepdims, dim, keepdim)
    return unary(ARGMAX, x, axis=axis, keepdims=keepdims)


ARGMIN = defop("argmin", lambda x, axis, keepdims: np.argmin(x, axis=axis, keepdims=keepdims),
               differentiable=False)


@public(ARGMIN, method=True, numpy=np.argmin)
def argmin(x: ArrayLike, axis: Optional[int] = None, keepdims: bool = False, *,
           dim: Optional[int] = None, keepdim: Optional[bool] = None) -> Tensor:
    """Index of the smallest element (int64; not differentiable)."""
    axis, keepdims = torch_alias("argmin", axis, keepdims, dim, keepdim)
    return unary(ARGMIN, x, axis=axis, keepdims=keepdims)


ANY = defop("any", lambda x, axis, keepdims: np.any(x, axis=axis, keepdims=keepdims),
            differentiable=False)


@public(ANY, method=True, numpy=np.any)
def any(x: ArrayLike, axis: Axis = None, keepdims: bool = False, *,  # noqa: A001
        dim: Axis = None, keepdim: Optional[bool] = None) -> Tensor:
    """Whether any element over `axis` is true (non-zero); boolean."""
    axis, keepdims = torch_alias("any", axis, keepdims, dim, keepdim)
    return unary(ANY, x, axis=norm_axis(axis), keepdims=keepdims)


ALL = defop("all", lambda x, axis, keepdims: np.all(x, axis=axis, keepdims=keepdims),
            differentiable=False)


@public(ALL, method=True, numpy=np.all)
def all(x: ArrayLike, axis: Axis = None, keepdims: bool = False, *,  # noqa: A001
        dim: Axis = None, keepdim: Optional[bool] = None) -> Tensor:
    """Whether every element over `axis` is true (non-zero); boolean."""
    axis, keepdims = torch_alias("all", axis, keepdims, dim, keepdim)
    return unary(ALL, x, axis=norm_axis(axis), keepdims=keepdims)


# ---------------------------------------------------------------------------
# Softmax outputs

def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


SOFTMAX = defop("softmax", _softmax,
                lambda g, out, x, axis: out * (g - (g * out).sum(axis=axis, keepdims=True)))


@public(SOFTMAX, method=True)
def softmax(x: ArrayLike, axis: int = -1, *, dim: Optional[int] = None) -> Tensor:
    """The softmax output layer: y_i = e^{z_i} / Σ_j e^{z_j} along `axis`, a
    probability distribution over classes. Stable: z - max(z) is exponentiated.
    Jacobian-vector form: dz = y ⊙ (g - Σ g ⊙ y)."""
    return unary(SOFTMAX, x, axis=dim_alias("softmax", axis, dim, -1))


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    # (x - m) - log Σ e^(x - m): x - m is exact, so float32 keeps its digits
    # for large logits (x - (m + log Σ) would round at m's magnitude).
    m = np.max(x, axis=axis, keepdims=True)
    s = x - np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


LOG_SOFTMAX = defop("log_softmax", _log_softmax,
                    lambda g, out, x, axis: g - np.exp(out) * g.sum(axis=axis, keepdims=True))


@public(LOG_SOFTMAX, method=True)
def log_softmax(x: ArrayLike, axis: int = -1, *, dim: Optional[int] = None) -> Tensor:
    """log softmax(x) = x - logsumexp(x), computed stably."""
    return unary(LOG_SOFTMAX, x, axis=dim_alias("log_softmax", axis, dim, -1))
