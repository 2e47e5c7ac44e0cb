"""Linear algebra: matmul (the one primitive), and dot/outer built on it."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import ArrayLike, Tensor
from .elementwise import multiply
from .registry import OPS, SCALARS, as_operands, as_tensor, binary

defop, public = OPS.defop, OPS.public


def _mT(x: Any) -> Any:
    return x.swapaxes(-1, -2)


def _matmul_vjp_a(g: Any, out: Any, a: Any, b: Any) -> Any:
    if b.ndim == 1:
        return g * b if a.ndim == 1 else g[..., None] * b        # (..., n, k)
    if a.ndim == 1:
        return (b @ g[..., None])[..., 0]                        # (..., k) → unbroadcast
    return g @ _mT(b)


def _matmul_vjp_b(g: Any, out: Any, a: Any, b: Any) -> Any:
    if a.ndim == 1:
        return g * a if b.ndim == 1 else a[:, None] * g[..., None, :]   # (..., k, m)
    if b.ndim == 1:
        return (_mT(a) @ g[..., None])[..., 0]                   # (..., k) → unbroadcast
    return _mT(a) @ g


MATMUL = defop("matmul", np.matmul, _matmul_vjp_a, _matmul_vjp_b)


@public(MATMUL, method=True, operator=("__matmul__", "__rmatmul__"), numpy=np.matmul)
def matmul(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Matrix product with numpy's rules: 1-D operands are vectors, leading
    dimensions are batch dimensions and broadcast. For 2-D, ∂L/∂A = G Bᵀ and
    ∂L/∂B = Aᵀ G."""
    for x in (a, b):
        if isinstance(x, SCALARS) or (hasattr(x, "ndim") and x.ndim == 0):
            raise ValueError("matmul: operands must have at least 1 dimension, got a scalar "
                             f"(shapes {np.shape(a)} and {np.shape(b)})")
    return binary(MATMUL, a, b)


@public(None, method=True, numpy=np.dot)
def dot(a: ArrayLike, b: ArrayLike) -> Tensor:
    """numpy.dot: a scalar operand multiplies (Python scalars stay weak, as in
    `a * 2.5`); 1-D·1-D is the inner product; N-D·1-D sums over the last axes;
    N-D·M-D (M >= 2) sums over a's last axis and b's second-to-last:
    dot(a, b)[i, j, k, m] = Σ_l a[i, j, l] b[k, l, m]."""
    if isinstance(a, SCALARS) or isinstance(b, SCALARS):
        return multiply(a, b)
    a, b = as_operands((a, b), "dot")
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    if b.ndim <= 2 or a.ndim == 1:
        if a.shape[-1] != b.shape[0 if b.ndim == 1 else -2]:
            raise ValueError(f"dot: shapes {a.shape} and {b.shape} not aligned: "
                             f"{a.shape[-1]} (dim {a.ndim - 1}) != "
                             f"{b.shape[0 if b.ndim == 1 else -2]} (dim {max(b.ndim - 2, 0)})")
        return matmul(a, b)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"dot: shapes {a.shape} and {b.shape} not aligned: "
                         f"{a.shape[-1]} (dim {a.ndim - 1}) != {b.shape[-2]} (dim {b.ndim - 2})")
    # b (k..., l, m) with its contracted axis moved first and the rest flattened,
    # (l, k...·m), so one matmul does it; the result has numpy's layout
    # a.shape[:-1] + b.shape[:-2] + (m,) after a reshape.
    perm = (b.ndim - 2,) + tuple(range(b.ndim - 2)) + (b.ndim - 1,)
    flat = b.transpose(perm).reshape(b.shape[-2], -1)
    return matmul(a, flat).reshape(a.shape[:-1] + b.shape[:-2] + b.shape[-1:])


@public(None, numpy=np.outer)
def outer(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Outer product of two vectors (flattened first, as numpy.outer)."""
    a, b = as_operands((a, b), "outer")
    return multiply(a.reshape(-1, 1), b.reshape(1, -1))
