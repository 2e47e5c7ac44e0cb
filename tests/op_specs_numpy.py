"""Specs for numpy's functions as ops (tensorgraph/ops/math.py, arrays.py,
algebra.py), one per op, in the form tests/test_op_specs.py runs: a builder
drawing (fn on Tensors, float64 input arrays, numpy reference). Values stay
inside each op's domain and away from its jumps, kinks and ties, where central
differences mean nothing. tests/test_ops_numpy.py has the detailed tests
(spellings, edge cases, second derivatives, dtypes).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

import strategies as S
import tensorgraph as tg

Spec = tuple[Callable[..., Any], list[np.ndarray], Callable[..., Any]]
NUMPY_SPECS: dict[str, Callable[[st.DataObject], Spec]] = {}


def _arrays(data: st.DataObject, values: Any, n: int) -> list[np.ndarray]:
    (shapes, _) = data.draw(S.broadcast_shapes(num_shapes=n), label="shapes")
    return [data.draw(values(s), label=f"x{i}") for i, s in enumerate(shapes)]


def _interval(lo: float, hi: float) -> Any:
    return lambda s: S.arrays(s, lo, hi)


def _odd(s: S.Shape) -> Any:
    return S.lattice_arrays(s, odd=True)      # never an integer or a half


def _even(s: S.Shape) -> Any:
    return S.lattice_arrays(s, odd=False)


ELEMENTWISE: dict[str, tuple[Any, Any, Any, int]] = {
    # op: (tensorgraph, numpy, value strategy, number of operands)
    "sin": (tg.sin, np.sin, S.arrays, 1),
    "cos": (tg.cos, np.cos, S.arrays, 1),
    "tan": (tg.tan, np.tan, _interval(-1.2, 1.2), 1),
    "sinh": (tg.sinh, np.sinh, S.arrays, 1),
    "cosh": (tg.cosh, np.cosh, S.arrays, 1),
    "arcsin": (tg.arcsin, np.arcsin, _interval(-0.9, 0.9), 1),
    "arccos": (tg.arccos, np.arccos, _interval(-0.9, 0.9), 1),
    "arctan": (tg.arctan, np.arctan, S.arrays, 1),
    "arcsinh": (tg.arcsinh, np.arcsinh, S.arrays, 1),
    "arccosh": (tg.arccosh, np.arccosh, _interval(1.1, 3.0), 1),
    "arctanh": (tg.arctanh, np.arctanh, _interval(-0.9, 0.9), 1),
    "sinc": (tg.sinc, np.sinc, S.arrays, 1),
    "log2": (tg.log2, np.log2, S.positive_arrays, 1),
    "log10": (tg.log10, np.log10, S.positive_arrays, 1),
    "log1p": (tg.log1p, np.log1p, _interval(-0.8, 3.0), 1),
    "exp2": (tg.exp2, np.exp2, S.arrays, 1),
    "expm1": (tg.expm1, np.expm1, S.arrays, 1),
    "square": (tg.square, np.square, S.arrays, 1),
    "reciprocal": (tg.reciprocal, np.reciprocal, lambda s: S.nonzero_arrays(s, 0.3, 2.0), 1),
    "floor": (tg.floor, np.floor, _odd, 1),
    "ceil": (tg.ceil, np.ceil, _odd, 1),
    "round": (tg.round, np.round, _odd, 1),
    "arctan2": (tg.arctan2, np.arctan2, S.nonzero_arrays, 2),
    "hypot": (tg.hypot, np.hypot, S.nonzero_arrays, 2),
    "logaddexp": (tg.logaddexp, np.logaddexp, S.arrays, 2),
}
for _name, (_fn, _ref, _values, _n) in ELEMENTWISE.items():
    NUMPY_SPECS[_name] = lambda data, fn=_fn, ref=_ref, values=_values, n=_n: (
        fn, _arrays(data, values, n), ref)


def _fminmax(fn: Any, ref: Any) -> Callable[[st.DataObject], Spec]:
    def build(data: st.DataObject) -> Spec:
        (sa, sb), _ = data.draw(S.broadcast_shapes(), label="shapes")
        return fn, [data.draw(_odd(sa), label="a"), data.draw(_even(sb), label="b")], ref
    return build


NUMPY_SPECS["fmax"] = _fminmax(tg.fmax, np.fmax)
NUMPY_SPECS["fmin"] = _fminmax(tg.fmin, np.fmin)


def _divmod(fn: Any, ref: Any) -> Callable[[st.DataObject], Spec]:
    def build(data: st.DataObject) -> Spec:
        (sa, sb), _ = data.draw(S.broadcast_shapes(), label="shapes")
        a = data.draw(S.nonzero_arrays(sa, 0.1, 3.0), label="a")
        b = data.draw(S.nonzero_arrays(sb, 0.3, 2.0), label="b")
        q = a / b
        assume(np.all(np.abs(q - np.round(q)) > 1e-3))     # away from floor(a/b)'s jumps
        return fn, [a, b], ref
    return build


NUMPY_SPECS["mod"] = _divmod(lambda a, b: a % b, np.mod)
NUMPY_SPECS["floor_divide"] = _divmod(lambda a, b: a // b, np.floor_divide)


def _std(data: st.DataObject) -> Spec:
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    a = data.draw(S.distinct_arrays(shape), label="x")
    axis, keepdims = data.draw(S.reduction_args(len(shape)), label="axis, keepdims")
    assume(S.reduced_count(shape, axis) >= 2)        # std = 0 has no derivative
    return (lambda x: tg.std(x, axis=axis, ddof=1, keepdims=keepdims), [a],
            lambda a: np.std(a, axis=axis, ddof=1, keepdims=keepdims))


def _prod(data: st.DataObject) -> Spec:
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    a = data.draw(S.arrays(shape, -1.5, 1.5), label="x")
    axis, keepdims = data.draw(S.reduction_args(len(shape)), label="axis, keepdims")
    return (lambda x: tg.prod(x, axis=axis, keepdims=keepdims), [a],
            lambda a: np.prod(a, axis=axis, keepdims=keepdims))


def _cumsum(data: st.DataObject) -> Spec:
    shape = data.draw(S.shapes(), label="shape")
    axis = data.draw(S.axes(len(shape), allow_tuple=False), label="axis")
    return (lambda x: tg.cumsum(x, axis), [data.draw(S.arrays(shape), label="x")],
            lambda a: np.cumsum(a, axis))


def _cumprod(data: st.DataObject) -> Spec:
    shape = data.draw(S.shapes(), label="shape")
    axis = data.draw(S.axes(len(shape), allow_tuple=False), label="axis")
    return (lambda x: tg.cumprod(x, axis), [data.draw(S.arrays(shape, -1.5, 1.5), label="x")],
            lambda a: np.cumprod(a, axis))


def _repeat(data: st.DataObject) -> Spec:
    shape = data.draw(S.shapes(), label="shape")
    axis = data.draw(S.axes(len(shape), allow_tuple=False), label="axis")
    n = int(np.prod(shape)) if axis is None else shape[axis]
    reps = data.draw(st.one_of(st.integers(0, 3), st.lists(st.integers(0, 3), min_size=n,
                                                           max_size=n)), label="repeats")
    return (lambda x: tg.repeat(x, reps, axis), [data.draw(S.arrays(shape), label="x")],
            lambda a: np.repeat(a, reps, axis))


def _tile(data: st.DataObject) -> Spec:
    shape = data.draw(S.shapes(), label="shape")
    reps = tuple(data.draw(st.lists(st.integers(0, 3), max_size=4), label="reps"))
    return (lambda x: tg.tile(x, reps), [data.draw(S.arrays(shape), label="x")],
            lambda a: np.tile(a, reps))


def _roll(data: st.DataObject) -> Spec:
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    axes = tuple(data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1,
                                    max_size=3), label="axes"))
    shifts = tuple(data.draw(st.lists(st.integers(-6, 6), min_size=len(axes),
                                      max_size=len(axes)), label="shifts"))
    return (lambda x: tg.roll(x, shifts, axes), [data.draw(S.arrays(shape), label="x")],
            lambda a: np.roll(a, shifts, axes))


def _diagonal(data: st.DataObject) -> Spec:
    shape = data.draw(S.shapes(min_dims=2), label="shape")
    a1, a2 = data.draw(st.permutations(range(len(shape))), label="axes")[:2]
    k = data.draw(st.integers(-3, 3), label="offset")
    return (lambda x: tg.diagonal(x, k, a1, a2), [data.draw(S.arrays(shape), label="x")],
            lambda a: np.diagonal(a, k, a1, a2))


def _diag(data: st.DataObject) -> Spec:
    shape = data.draw(S.shapes(min_dims=1, max_dims=1), label="shape")
    k = data.draw(st.integers(-3, 3), label="k")
    return (lambda v: tg.diag(v, k), [data.draw(S.arrays(shape), label="v")],
            lambda v: np.diag(v, k))


def _sort(data: st.DataObject) -> Spec:
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)), label="axis")
    return (lambda x: tg.sort(x, axis), [data.draw(S.distinct_arrays(shape), label="x")],
            lambda a: np.sort(a, axis))


def _argsort(data: st.DataObject) -> Spec:
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)), label="axis")
    return (lambda x: tg.argsort(x, axis), [data.draw(S.small_int_arrays(shape), label="x")],
            lambda a: np.argsort(a, axis, kind="stable"))


EINSUMS = [("ij,jk->ik", [(2, 3), (3, 2)]), ("ii->i", [(3, 3)]), ("ij,ij", [(2, 3), (1, 3)]),
           ("...i,i->...", [(2, 2, 3), (3,)]), ("ij->", [(2, 3)]), ("i,j", [(2,), (3,)])]


def _einsum(data: st.DataObject) -> Spec:
    sub, shapes = data.draw(st.sampled_from(EINSUMS), label="subscripts")
    return (lambda *xs: tg.einsum(sub, *xs), [data.draw(S.arrays(s)) for s in shapes],
            lambda *a: np.einsum(sub, *a))


def _cross(data: st.DataObject) -> Spec:
    (sa, sb), _ = data.draw(S.broadcast_shapes(max_dims=2), label="batch shapes")
    return (tg.cross, [data.draw(S.arrays(sa + (3,))), data.draw(S.arrays(sb + (3,)))], np.cross)


def _norm(data: st.DataObject) -> Spec:
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    a = data.draw(S.nonzero_arrays(shape), label="x")
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)), label="axis")
    # keepdims: over one axis the op is the last node (no squeeze after it).
    return (lambda x: tg.norm(x, axis=axis, keepdims=True), [a],
            lambda a: np.linalg.norm(a, axis=axis, keepdims=True))


def _svdvals(data: st.DataObject) -> Spec:
    # X = Q1 diag(s) Q2ᵀ with distinct singular values s: differentiable there.
    m, n = data.draw(st.integers(1, 4), label="m"), data.draw(st.integers(1, 4), label="n")
    k = min(m, n)
    q1, _ = np.linalg.qr(data.draw(S.arrays((m, m)), label="Q1"))
    q2, _ = np.linalg.qr(data.draw(S.arrays((n, n)), label="Q2"))
    s = np.sort(data.draw(st.permutations(range(k)), label="s"))[::-1] * 0.5 + 0.5
    x = (q1[:, :k] * s) @ q2[:, :k].T
    return tg.svdvals, [x], lambda a: np.linalg.svd(a, compute_uv=False)


NUMPY_SPECS.update({
    "std": _std, "prod": _prod, "cumsum": _cumsum, "cumprod": _cumprod,
    "repeat": _repeat, "tile": _tile,
    "roll": _roll, "diagonal": _diagonal, "diag": _diag, "sort": _sort, "argsort": _argsort, "einsum": _einsum,
    "cross": _cross, "norm": _norm, "svdvals": _svdvals,
})
