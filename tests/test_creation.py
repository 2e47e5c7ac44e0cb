"""Tests for the constructors (tensorgraph/ops/creation.py): values against
numpy, the dtype policy (float32 for floats, int64 for ints, as PyTorch),
`requires_grad=`, both shape spellings, seeding, and the error messages."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import strategies as S
import tensorgraph as tg


def check(t: Any, expected: Any, dtype: Any) -> None:
    assert isinstance(t, tg.Tensor)
    assert t.dtype == np.dtype(dtype)
    assert t.shape == np.shape(expected)
    np.testing.assert_array_equal(t.data, np.asarray(expected, dtype=dtype))
    assert t.is_leaf


@settings(max_examples=25)
@given(shape=S.shapes(allow_zero=True))
def test_zeros_ones_both_shape_spellings(shape: S.Shape) -> None:
    for fn, np_fn in ((tg.zeros, np.zeros), (tg.ones, np.ones)):
        check(fn(shape), np_fn(shape), np.float32)          # numpy's zeros((2, 3))
        check(fn(*shape), np_fn(shape), np.float32)         # PyTorch's zeros(2, 3)
        check(fn(list(shape), dtype="float64"), np_fn(shape), np.float64)
        check(fn(shape, dtype=np.int64), np_fn(shape), np.int64)


def test_zeros_like_ones_like_full_like_keep_shape_and_dtype() -> None:
    x = tg.tensor(np.arange(6, dtype=np.float64).reshape(2, 3), requires_grad=True)
    check(tg.zeros_like(x), np.zeros((2, 3)), np.float64)
    check(tg.ones_like(x), np.ones((2, 3)), np.float64)
    check(tg.full_like(x, 7), np.full((2, 3), 7), np.float64)
    check(tg.zeros_like(x, dtype=np.float32), np.zeros((2, 3)), np.float32)
    assert not tg.zeros_like(x).requires_grad         # a new leaf, not part of x's graph
    assert tg.ones_like(x, requires_grad=True).requires_grad
    check(tg.zeros_like(np.ones((2,), np.int32)), np.zeros(2), np.int32)
    check(tg.ones_like([1.5, 2.5]), np.ones(2), np.float32)   # as tg.tensor would type it


@pytest.mark.parametrize("value, dtype", [(2.5, np.float32), (3, np.int64), (True, np.bool_),
                                          (np.float64(1.5), np.float64)])
def test_full_takes_its_dtype_from_the_value(value: Any, dtype: Any) -> None:
    check(tg.full((2, 2), value), np.full((2, 2), value), dtype)
    check(tg.full(3, value, dtype=np.float64), np.full(3, value), np.float64)


def test_full_refuses_a_tensor_that_requires_grad() -> None:
    v = tg.tensor(2.0, requires_grad=True)
    with pytest.raises(TypeError, match="full: fill_value is a Tensor that requires grad"):
        tg.full((2,), v)
    check(tg.full((2,), tg.tensor(np.float64(2.0))), [2.0, 2.0], np.float64)


@pytest.mark.parametrize("args", [(3,), (2, 4), (3, 3, 1), (4, 2, -1)])
def test_eye(args: tuple[int, ...]) -> None:
    check(tg.eye(*args), np.eye(*args), np.float32)
    check(tg.eye(*args, dtype=np.float64), np.eye(*args), np.float64)


@pytest.mark.parametrize("args, dtype", [
    ((5,), np.int64), ((2, 7), np.int64), ((7, 2, -2), np.int64),
    ((0.5, 3), np.float32), ((0, 1, 0.1), np.float32), ((3.0,), np.float32),
])
def test_arange(args: tuple[Any, ...], dtype: Any) -> None:
    expected = np.arange(*args)
    t = tg.arange(*args)
    assert t.dtype == dtype
    np.testing.assert_allclose(t.data, expected, rtol=1e-7)
    assert tg.arange(*args, dtype=np.float64).dtype == np.float64


def test_arange_step_zero_is_an_error() -> None:
    with pytest.raises(ValueError, match="arange: step must not be zero"):
        tg.arange(0, 3, 0)


@pytest.mark.parametrize("args, kw", [((0, 1), {}), ((0, 1, 5), {}),
                                      ((-2, 3, 4), {"endpoint": False}), ((1, 1, 1), {}),
                                      ((0, 1, 0), {})])
def test_linspace(args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    t = tg.linspace(*args, **kw)
    assert t.dtype == np.float32
    np.testing.assert_allclose(t.data, np.linspace(*args, **kw), rtol=1e-7)
    assert tg.linspace(*args, dtype="float64", **kw).dtype == np.float64
    with pytest.raises(ValueError, match="linspace: num must be non-negative, got -1"):
        tg.linspace(0, 1, -1)


@pytest.mark.parametrize("fn, np_method", [(tg.rand, "random"), (tg.randn, "standard_normal")])
def test_rand_randn_are_seedable(fn: Any, np_method: str) -> None:
    a = fn(2, 3, seed=7)
    assert a.shape == (2, 3) and a.dtype == np.float32
    expected = getattr(np.random.default_rng(7), np_method)((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(a.data, expected)
    np.testing.assert_array_equal(fn((2, 3), seed=7).data, a.data)
    # A Generator is drawn from (as PyTorch's generator=): two calls differ.
    g = np.random.default_rng(7)
    first, second = fn(2, 3, generator=g), fn(2, 3, generator=g)
    np.testing.assert_array_equal(first.data, a.data)
    assert not np.array_equal(first.data, second.data)
    # tg.manual_seed reseeds the shared generator.
    tg.manual_seed(11)
    x1 = fn(4)
    tg.manual_seed(11)
    np.testing.assert_array_equal(fn(4).data, x1.data)
    assert fn(2, dtype=np.float64, seed=0).dtype == np.float64


def test_rand_values_are_in_range() -> None:
    r = tg.rand(1000, seed=0)
    assert 0 <= r.data.min() and r.data.max() < 1
    n = tg.randn(10000, seed=0, dtype=np.float64)
    assert abs(n.data.mean()) < 0.05 and abs(n.data.std() - 1) < 0.05


def test_random_errors_name_the_function() -> None:
    with pytest.raises(TypeError, match="rand: give seed= or generator=, not both"):
        tg.rand(2, seed=1, generator=np.random.default_rng(1))
    with pytest.raises(TypeError, match="randn: seed must be an int or a numpy.random.Generator"):
        tg.randn(2, seed="a")
    with pytest.raises(TypeError, match="rand: dtype must be floating-point, got int64"):
        tg.rand(2, dtype=np.int64)


@pytest.mark.parametrize("make", [
    lambda: tg.zeros(2, 3, requires_grad=True), lambda: tg.ones((2,), requires_grad=True),
    lambda: tg.full((2,), 1.5, requires_grad=True), lambda: tg.eye(2, requires_grad=True),
    lambda: tg.arange(0.0, 1.0, 0.25, requires_grad=True),
    lambda: tg.linspace(0, 1, 3, requires_grad=True), lambda: tg.rand(2, requires_grad=True),
    lambda: tg.randn(2, requires_grad=True),
])
def test_requires_grad_gives_a_leaf_that_collects_a_gradient(make: Any) -> None:
    t = make()
    assert t.requires_grad and t.is_leaf and t.dtype == np.float32
    (t * 3.0).sum().backward()
    np.testing.assert_array_equal(t.grad.data, np.full(t.shape, 3.0, np.float32))


def test_requires_grad_needs_a_float_dtype() -> None:
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients"):
        tg.arange(3, requires_grad=True)


@pytest.mark.parametrize("bad, err, msg", [
    ((2, -1), ValueError, r"zeros: negative dimension -1 in shape \(2, -1\)"),
    ((2.5,), TypeError, "zeros: shape entries must be ints, got 2.5"),
])
def test_bad_shapes_name_the_function(bad: tuple[Any, ...], err: type, msg: str) -> None:
    with pytest.raises(err, match=msg):
        tg.zeros(*bad)


@settings(max_examples=10)
@given(n=st.integers(0, 5))
def test_constructors_compose_with_ops(n: int) -> None:
    # A constructed tensor is an ordinary operand: the gradient flows through.
    w = tg.ones(n, requires_grad=True, dtype=np.float64)
    (tg.arange(n) * w).sum().backward()
    np.testing.assert_array_equal(w.grad.data, np.arange(n, dtype=np.float64))


def test_a_list_of_tensors_keeps_their_dtype_whether_or_not_they_require_grad() -> None:
    # [float64 Tensor, ...] is float64 (their dtypes promoted, numbers weak),
    # as it is when they require grad: not the float32 of a list of Python floats.
    a, b = tg.tensor(np.array(0.1)), tg.tensor(np.array(0.2))
    for make in (tg.tensor, tg.Tensor):
        out = make([a, b])
        assert out.dtype == np.float64 and out.is_leaf and not out.requires_grad
        np.testing.assert_array_equal(out.data, [0.1, 0.2])
        assert make([[a, 0.5]]).dtype == np.float64
    assert tg.tensor([a, b.detach().requires_grad_()]).dtype == np.float64
    assert tg.tensor([tg.tensor([1.0]), tg.tensor([2.0])]).dtype == np.float32
    assert tg.tensor([a, b], dtype="float32").dtype == np.float32
    leaf = tg.tensor([a, b], requires_grad=True)
    assert leaf.is_leaf and leaf.requires_grad and leaf.dtype == np.float64
