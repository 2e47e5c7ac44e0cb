"""Linear algebra beyond matmul: einsum, inner, cross, trace, norm.

`einsum` is the general contraction; its gradient with respect to one operand
is again an einsum (of g with the other operands), so it has derivatives of
every order. `inner` is written as an einsum and `trace` as diagonal + sum.
"""
from __future__ import annotations

import builtins
import math
import string
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..tensor import ArrayLike, Tensor, record
from .arrays import diagonal
from .elementwise import abs as _abs
from .elementwise import multiply
from .reductions import max, min, sum
from .registry import (OPS, Axis, Op, as_operands, as_tensor, axes, constant, keep, norm_axis,
                       torch_alias)
from .shape import _tensors, expand_dims, squeeze, transpose

defop, public = OPS.defop, OPS.public

__all__ = ['EINSUM', 'CROSS', 'NORM', 'SVDVALS', 'einsum', 'inner', 'cross', 'trace', 'svdvals',
           'norm']

# ---------------------------------------------------------------------------
# einsum


def _einsum_explicit(subscripts: str, shapes: Sequence[tuple[int, ...]]) -> str:
    """Rewrite numpy subscripts in explicit form with letters only: each
    '...' becomes letters of its own, and an implicit output (no '->') becomes
    the ellipsis axes followed by the letters used once, sorted (numpy's rule)."""
    s = subscripts.replace(" ", "")
    ins, arrow, out = s.partition("->")
    terms = ins.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: subscripts {subscripts!r} name {len(terms)} operand(s), "
                         f"but {len(shapes)} were given")
    for c in s.replace("...", "").replace(",", "").replace("->", ""):
        if c not in string.ascii_letters:
            raise ValueError(f"einsum: invalid character {c!r} in subscripts {subscripts!r}")
    free = [c for c in string.ascii_letters if c not in s]
    n_ell = 0
    for t, shape in zip(terms, shapes):
        if "..." in t:
            n_ell = builtins.max(n_ell, len(shape) - (len(t) - 3))
    ell = "".join(free[:n_ell])
    explicit = []
    for t, shape in zip(terms, shapes):
        if "..." in t:
            k = len(shape) - (len(t) - 3)
            if k < 0:
                raise ValueError(f"einsum: operand of shape {shape} has fewer axes than "
                                 f"subscripts {t!r}")
            t = t.replace("...", ell[n_ell - k:])
        if len(t) != len(shape):
            raise ValueError(f"einsum: subscripts {t!r} give {len(t)} axes for an operand of "
                             f"shape {shape}")
        explicit.append(t)
    if arrow:
        out = out.replace("...", ell)
    else:
        letters = "".join(explicit)
        out = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1
                                   and c not in ell))
    return ",".join(explicit) + "->" + out


def _einsum_vjp(i: int, g: Any, out: Any, *xs: Any, subscripts: str) -> Any:
    # dL/dx_i = einsum(g with the other operands -> x_i's subscripts). A letter
    # only x_i has is summed in forward, so it is broadcast back (a ones
    # vector); a letter x_i repeats (a diagonal, "ii") gets a fresh letter
    # tied to it by an identity matrix.
    ins, out_sub = subscripts.split("->")
    terms = ins.split(",")
    x, term = xs[i], terms[i]
    others = [(t, v) for j, (t, v) in enumerate(zip(terms, xs)) if j != i]
    present = set(out_sub).union(*[set(t) for t, _ in others])
    free = iter(c for c in string.ascii_letters if c not in subscripts)
    sub_terms = [out_sub] + [t for t, _ in others]
    operands = [g] + [v for _, v in others]
    target, seen = [], set()
    for pos, c in enumerate(term):
        n = x.shape[pos]
        if c in seen:
            new = next(free)
            sub_terms.append(c + new)
            operands.append(np.eye(n, dtype=g.dtype))
            target.append(new)
            continue
        seen.add(c)
        if c not in present:
            sub_terms.append(c)
            operands.append(np.ones(n, dtype=g.dtype))
        target.append(c)
    gx = EINSUM(*operands, subscripts=",".join(sub_terms) + "->" + "".join(target))
    # A letter of size n in x_i and 1 elsewhere (einsum broadcasts it) comes
    # out of size 1: stretch it back (the engine sums the other way round).
    if gx.shape != x.shape:
        gx = np.broadcast_to(gx, np.broadcast_shapes(gx.shape, x.shape))
    return gx


EINSUM: Op = defop("einsum", lambda *xs, subscripts:
                   np.einsum(subscripts, *xs, optimize=len(xs) > 2),
               _einsum_vjp, variadic=True)


@public(EINSUM, numpy=np.einsum)
def einsum(subscripts: str, *operands: ArrayLike, optimize: Any = False) -> Tensor:
    """Einstein summation, as numpy.einsum: "ij,jk->ik" is a matrix product,
    "ii" a trace, "ij->ji" a transpose, "...ij,...jk" a batched product.
    Without '->' the output is the letters used once, in alphabetical order.
    Letters that appear in the inputs and not in the output are summed over.
    The gradient for one operand is the einsum of g with the others.
    (`optimize`, numpy's contraction-order option, is accepted; with three or
    more operands the order is always optimised.)"""
    if not isinstance(subscripts, str):
        raise TypeError("einsum: give the subscripts as a string first (numpy's sublist "
                        "form is not supported)")
    xs = _tensors(operands, "einsum")
    explicit = _einsum_explicit(subscripts, [x.shape for x in xs])
    return record(EINSUM, xs, {"subscripts": explicit})


@public(None, method=True, numpy=np.inner)
def inner(a: ArrayLike, b: ArrayLike) -> Tensor:
    """numpy.inner: Σ_k a[..., k] b[..., k] over the last axes; the result has
    shape a.shape[:-1] + b.shape[:-1] (a scalar operand multiplies)."""
    a, b = as_operands((a, b), "inner")
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"inner: the last axes must match, got shapes {a.shape} and {b.shape}")
    la = string.ascii_letters[:a.ndim - 1]
    lb = string.ascii_letters[a.ndim - 1:a.ndim + b.ndim - 2]
    return einsum(f"{la}z,{lb}z->{la}{lb}", a, b)


# ---------------------------------------------------------------------------
# cross, trace


# L = g·(a × b) = a·(b × g) = b·(g × a)
CROSS: Op = defop("cross", lambda a, b: np.cross(a, b),
              lambda g, out, a, b: CROSS(b, g),
              lambda g, out, a, b: CROSS(g, a))


def _move_last(x: Tensor, axis: int) -> Tensor:
    (ax,) = axes(axis, x.ndim, f"cross (input shape {x.shape})")
    if ax == x.ndim - 1:
        return x
    return transpose(x, [a for a in range(x.ndim) if a != ax] + [ax])


@public(CROSS, method=True, numpy=np.cross)
def cross(a: ArrayLike, b: ArrayLike, axisa: int = -1, axisb: int = -1, axisc: int = -1,
          axis: Optional[int] = None) -> Tensor:
    """The cross product of 3-vectors along the given axes (the last by
    default; `axis` sets all three), broadcasting the other axes, as
    numpy.cross. ∂/∂a = b × g, ∂/∂b = g × a."""
    a, b = as_operands((a, b), "cross")
    if axis is not None:
        axisa = axisb = axisc = axis
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"cross: needs vectors, got shapes {a.shape} and {b.shape}")
    shapes = f"(input shapes {a.shape} and {b.shape})"
    a, b = _move_last(a, axisa), _move_last(b, axisb)
    if a.shape[-1] != 3 or b.shape[-1] != 3:
        raise ValueError(f"cross: only 3-vectors are supported, got vectors of sizes "
                         f"{a.shape[-1]} and {b.shape[-1]} {shapes}")
    out = record(CROSS, (a, b), {})
    (c,) = axes(axisc, out.ndim, f"cross (output shape {out.shape})")
    if c != out.ndim - 1:
        perm = list(range(out.ndim - 1))
        perm.insert(c, out.ndim - 1)
        out = transpose(out, perm)
    return out


@public(None, method=True, numpy=np.trace)
def trace(x: ArrayLike, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """Σ_i x[i, i + offset] over the axes (axis1, axis2), as numpy.trace:
    the sum of `diagonal`."""
    x = as_tensor(x, "trace")
    if x.ndim < 2:
        raise ValueError(f"trace: needs at least 2 dimensions, got shape {x.shape}")
    return sum(diagonal(x, offset, axis1, axis2), axis=-1)


# ---------------------------------------------------------------------------
# norm

def _norm_vjp(g: Any, out: Any, x: Any, axis: Axis, keepdims: bool) -> Any:
    # ∂‖x‖/∂x = x/‖x‖; at x = 0 the subgradient 0 (as PyTorch).
    o = keep(out, x.shape, axis, keepdims)
    return keep(g, x.shape, axis, keepdims) * np.where(o == 0, 0, x / np.where(o == 0, 1, o))


NORM = defop("norm", lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims)),
             _norm_vjp)


def _svdvals_vjp(g: Any, out: Any, x: Any) -> Any:
    # dσ_k = u_kᵀ dX v_k, so dL/dX = U diag(g) Vᵀ (for distinct singular values).
    if isinstance(x, Tensor):
        raise NotImplementedError("svdvals (matrix norms ord=2, -2, 'nuc'): second derivatives "
                                  "(create_graph=True) are not implemented")
    u, _, vh = np.linalg.svd(x, full_matrices=False)
    return (u * g[..., None, :]) @ vh


SVDVALS = defop("svdvals", lambda x: np.linalg.svd(x, compute_uv=False), _svdvals_vjp)


@public(SVDVALS)
def svdvals(x: ArrayLike) -> Tensor:
    """The singular values of the matrices in the last two axes, descending
    (numpy.linalg.svd(x, compute_uv=False)). dL/dX = U diag(g) Vᵀ, correct
    where the singular values are distinct; first derivatives only."""
    x = as_tensor(x, "svdvals")
    if x.ndim < 2:
        raise ValueError(f"svdvals: needs a matrix (at least 2 dimensions), got shape {x.shape}")
    return record(SVDVALS, (x,), {})


_VECTOR_ORDS = "None, 2, 1, inf, -inf, 0 or any other number"
_MATRIX_ORDS = "None, 'fro', 'nuc', 1, -1, 2, -2, inf, -inf"


@public(NORM, method=True, numpy=np.linalg.norm)
def norm(x: ArrayLike, ord: Union[None, int, float, str] = None, axis: Axis = None,
         keepdims: bool = False, *, dim: Axis = None, keepdim: Optional[bool] = None) -> Tensor:
    """numpy.linalg.norm. Over one axis (or a 1-D x) a vector norm:
    ord None/2 → √Σx², 1 → Σ|x|, inf → max|x|, -inf → min|x|, 0 → the count
    of nonzeros, p → (Σ|x|^p)^(1/p). Over two axes (or a 2-D x) a matrix
    norm: None/'fro' → √Σx², 'nuc' → Σσ, 1/-1 → max/min column sum of |x|,
    inf/-inf → max/min row sum, 2/-2 → largest/smallest singular value σ.
    With axis=None and ord=None, the 2-norm of all elements whatever the ndim.
    The gradient of √Σx² is x/‖x‖ (0 at x = 0). PyTorch's dim=/keepdim= work too."""
    axis, keepdims = torch_alias("norm", axis, keepdims, dim, keepdim)
    axis = norm_axis(axis)
    ord = constant(ord, "norm", "ord")   # noqa: A001 - numpy's name
    x = as_tensor(x, "norm")
    if axis is None:
        if ord is None:
            return record(NORM, (x,), {"axis": None, "keepdims": keepdims}) if not keepdims \
                else record(NORM, (x,), {"axis": tuple(range(x.ndim)), "keepdims": True})
        if x.ndim not in (1, 2):
            raise ValueError(f"norm: with ord={ord!r} and axis=None the input must be 1-D or "
                             f"2-D, got shape {x.shape}")
        ax = tuple(range(x.ndim))
    else:
        ax = axes(axis, x.ndim, f"norm (input shape {x.shape})")
        if len(set(ax)) != len(ax):
            raise ValueError(f"norm: duplicate axes {axis!r}")
    if len(ax) == 1:
        res = _vector_norm(x, ord, ax[0])
    elif len(ax) == 2:
        res = _matrix_norm(x, ord, ax[0], ax[1])
    else:
        raise ValueError(f"norm: axis must be an int or a pair of ints, got {axis!r}")
    return res if keepdims else squeeze(res, axis=ax)


def _vector_norm(x: Tensor, ord: Any, ax: int) -> Tensor:
    """The vector norm along `ax`, with keepdims=True."""
    if ord is None or (not isinstance(ord, str) and ord == 2):
        return record(NORM, (x,), {"axis": (ax,), "keepdims": True})
    if isinstance(ord, str):
        raise ValueError(f"norm: invalid ord {ord!r} for a vector norm (one of {_VECTOR_ORDS})")
    ax_abs = _abs(x)
    if ord == math.inf:
        return max(ax_abs, axis=ax, keepdims=True)
    if ord == -math.inf:
        return min(ax_abs, axis=ax, keepdims=True)
    if ord == 0:            # a count: not differentiable
        return sum((x != 0).astype(x.dtype), axis=ax, keepdims=True)
    if ord == 1:
        return sum(ax_abs, axis=ax, keepdims=True)
    p = float(ord)
    return sum(ax_abs ** p, axis=ax, keepdims=True) ** (1.0 / p)


def _matrix_norm(x: Tensor, ord: Any, row: int, col: int) -> Tensor:
    """The matrix norm over the axes (row, col), with keepdims=True."""
    if ord is None or ord == "fro":
        return record(NORM, (x,), {"axis": (row, col), "keepdims": True})
    if ord in ("nuc", 2, -2):
        rest = [a for a in range(x.ndim) if a not in (row, col)]
        s = svdvals(transpose(x, rest + [row, col]))          # (..., k), descending
        s = sum(s, axis=-1) if ord == "nuc" else s[..., 0] if ord == 2 else s[..., -1]
        return expand_dims(s, tuple(sorted((row, col))))
    if ord in (1, -1, math.inf, -math.inf):
        # 1: sum over rows (down each column), then max over columns; inf: the other way.
        inner_ax, outer_ax = (row, col) if ord in (1, -1) else (col, row)
        sums = sum(_abs(x), axis=inner_ax, keepdims=True)
        return max(sums, axis=outer_ax, keepdims=True) if ord in (1, math.inf) \
            else min(sums, axis=outer_ax, keepdims=True)
    raise ValueError(f"norm: invalid ord {ord!r} for a matrix norm (one of {_MATRIX_ORDS})")


