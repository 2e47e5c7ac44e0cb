"""Second derivatives of the new ops over random shapes and axes (hypothesis):
the gradient made with create_graph=True is itself gradchecked against
float64 central differences. Complements the fixed points of
test_ops_numpy.SECOND, which cover every op once."""
from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import strategies as S
import tensorgraph as tg

FEW = settings(max_examples=12, deadline=None)


def check_second(fn: Any, *arrays: np.ndarray) -> None:
    def first(*xs: tg.Tensor) -> Any:
        # a random-looking but fixed weighting, so that the Hessian's rows differ
        out = fn(*xs)
        w = np.cos(np.arange(out.size, dtype=np.float64)).reshape(out.shape) + 1.5
        return tg.grad((out * w).sum(), list(xs), create_graph=True)
    xs = [tg.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    assert tg.gradcheck(first, xs, atol=1e-5)


@st.composite
def array_and_reduction(draw: Any, values: Any = S.arrays, min_dims: int = 1) -> Any:
    shape = draw(S.shapes(min_dims=min_dims, max_dims=3, max_side=3))
    axis, keepdims = draw(S.reduction_args(len(shape)))
    return draw(values(shape)), axis, keepdims


@FEW
@given(array_and_reduction(), st.sampled_from([0, 1]))
def test_std_second_derivative(case: Any, ddof: int) -> None:
    a, axis, keepdims = case
    n = S.reduced_count(a.shape, axis)
    if n <= ddof + 1:
        return                                   # std of one value: not differentiable
    a = a + np.arange(a.size).reshape(a.shape) * 0.37  # no two values equal: std > 0
    check_second(lambda x: x.std(axis=axis, keepdims=keepdims, ddof=ddof), a)


@FEW
@given(array_and_reduction(S.nonzero_arrays))
def test_prod_second_derivative(case: Any) -> None:
    a, axis, keepdims = case
    check_second(lambda x: tg.prod(x, axis=axis, keepdims=keepdims), a)


@FEW
@given(array_and_reduction(S.nonzero_arrays))
def test_norm_second_derivative(case: Any) -> None:
    a, axis, keepdims = case
    if isinstance(axis, tuple) and len(axis) > 2:
        return                                   # numpy's norm takes one or two axes
    if isinstance(axis, tuple) and len(axis) == 2:
        check_second(lambda x: tg.norm(x, ord="fro", axis=axis, keepdims=keepdims), a)
    elif axis is None:
        check_second(lambda x: tg.norm(x), a)
    else:
        if isinstance(axis, tuple):
            axis = axis[0] if axis else None
        check_second(lambda x: tg.norm(x, axis=axis, keepdims=keepdims), a)


@FEW
@given(st.data())
def test_cumsum_squared_second_derivative(data: st.DataObject) -> None:
    shape = data.draw(S.shapes(min_dims=1, max_dims=3, max_side=3))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    a = data.draw(S.arrays(shape))
    check_second(lambda x: tg.cumsum(x, axis=axis) ** 2, a)


@FEW
@given(S.broadcast_shapes(max_dims=3), st.data())
def test_binary_second_derivatives_with_broadcasting(shapes: Any, data: st.DataObject) -> None:
    (sa, sb), _ = shapes
    a = data.draw(S.nonzero_arrays(sa))
    b = data.draw(S.nonzero_arrays(sb))
    fn = data.draw(st.sampled_from([tg.hypot, tg.logaddexp, tg.arctan2]))
    check_second(fn, a, b)


@FEW
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.data())
def test_einsum_second_derivative(i: int, j: int, k: int, data: st.DataObject) -> None:
    a = data.draw(S.arrays((i, j)))
    b = data.draw(S.arrays((j, k)))
    check_second(lambda x, y: tg.einsum("ij,jk->ik", x, y) ** 2, a, b)
