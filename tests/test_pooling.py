"""Pooling: max_pool1d/2d, avg_pool1d/2d and the modules MaxPool2d, MaxPool1d,
AvgPool2d, AvgPool1d. Forward and gradients against the naive loops of
tests/op_specs_pool.py (PyTorch's documented rules written out) and against
PyTorch (slow: importing torch takes seconds), gradcheck in float64, ties,
second derivatives, error messages, capture and replay."""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require_module
from op_specs_pool import (naive_avg_pool, naive_avg_pool_grad, naive_max_pool,
                           naive_max_pool_grad)
from tensorgraph import nn


def distinct(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Values at least 0.1 apart: no ties, so each window has one maximum."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) * 0.1 - n * 0.05).reshape(shape)


def grad_of(f: Any, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    t = tg.tensor(x, requires_grad=True)
    (gx,) = tg.grad(f(t), [t], g)
    return gx.data


# (kernel, stride, padding, dilation, ceil_mode) covering odd sizes and ceil windows
CASES_2D = [(2, None, 0, 1, False), (3, 2, 1, 1, False), (3, 2, 1, 1, True), (2, 1, 1, 1, True),
            ((3, 2), (1, 2), (1, 0), 1, False), (2, 2, 1, 2, True), (3, 3, 0, 1, True),
            (1, 2, 0, 1, False)]
SHAPES_2D = [(2, 3, 7, 5), (1, 1, 4, 6), (3, 5, 5)]


@pytest.mark.parametrize("k,s,p,d,ceil", CASES_2D)
@pytest.mark.parametrize("shape", SHAPES_2D)
def test_max_pool2d_against_the_naive_loops(shape: tuple[int, ...], k: Any, s: Any, p: Any,
                                            d: Any, ceil: bool) -> None:
    x = distinct(shape)
    pair = lambda v, default=None: (v, v) if isinstance(v, int) else (v or default)  # noqa: E731
    args = (pair(k), pair(s, pair(k)), pair(p), pair(d), ceil)
    y = tg.max_pool2d(x, k, s, p, d, ceil)
    ref, _ = naive_max_pool(x, 2, *args)
    np.testing.assert_array_equal(y.data, ref)
    g = np.random.default_rng(1).standard_normal(ref.shape)
    np.testing.assert_allclose(grad_of(lambda t: tg.max_pool2d(t, k, s, p, d, ceil), x, g),
                               naive_max_pool_grad(x, g, 2, *args), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k,s,p,ceil", [(2, None, 0, False), (3, 2, 1, True), (3, 1, 1, False),
                                        ((2, 3), (2, 1), (1, 1), True)])
@pytest.mark.parametrize("cip", [True, False])
@pytest.mark.parametrize("shape", SHAPES_2D)
def test_avg_pool2d_against_the_naive_loops(shape: tuple[int, ...], k: Any, s: Any, p: Any,
                                            ceil: bool, cip: bool) -> None:
    x = np.random.default_rng(0).standard_normal(shape)
    pair = lambda v, default=None: (v, v) if isinstance(v, int) else (v or default)  # noqa: E731
    args = (pair(k), pair(s, pair(k)), pair(p), ceil, cip)
    y = tg.avg_pool2d(x, k, s, p, ceil, cip)
    ref = naive_avg_pool(x, 2, *args)
    np.testing.assert_allclose(y.data, ref, rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(1).standard_normal(ref.shape)
    np.testing.assert_allclose(grad_of(lambda t: tg.avg_pool2d(t, k, s, p, ceil, cip), x, g),
                               naive_avg_pool_grad(x.shape, g, 2, *args), rtol=1e-12, atol=1e-12)


def test_avg_pool2d_divisor_override() -> None:
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    y = tg.avg_pool2d(x, 2, divisor_override=3)
    np.testing.assert_allclose(y.data, x.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3)
                               .reshape(1, 1, 2, 2, 4).sum(-1) / 3)


@pytest.mark.parametrize("k,s,p,d,ceil", [(2, None, 0, 1, False), (3, 2, 1, 1, True),
                                          (2, 1, 1, 2, False), (4, 3, 2, 1, True)])
@pytest.mark.parametrize("shape", [(2, 3, 9), (1, 1, 5), (3, 8)])
def test_pool1d_against_the_naive_loops(shape: tuple[int, ...], k: int, s: Any, p: int, d: int,
                                        ceil: bool) -> None:
    x = distinct(shape)
    args = ((k,), (s or k,), (p,), (d,), ceil)
    np.testing.assert_array_equal(tg.max_pool1d(x, k, s, p, d, ceil).data,
                                  naive_max_pool(x, 1, *args)[0])
    ref = naive_max_pool(x, 1, *args)[0]
    g = np.random.default_rng(1).standard_normal(ref.shape)
    np.testing.assert_allclose(grad_of(lambda t: tg.max_pool1d(t, k, s, p, d, ceil), x, g),
                               naive_max_pool_grad(x, g, 1, *args))
    if d == 1:
        np.testing.assert_allclose(tg.avg_pool1d(x, k, s, p, ceil).data,
                                   naive_avg_pool(x, 1, (k,), (s or k,), (p,), ceil))


def test_float32_stays_float32() -> None:
    x = tg.tensor(distinct((2, 2, 4, 4)).astype(np.float32), requires_grad=True)
    for f in (lambda t: tg.max_pool2d(t, 2), lambda t: tg.avg_pool2d(t, 3, 1, 1)):
        y = f(x)
        (g,) = tg.grad(y.sum(), [x])
        assert y.dtype == np.float32 and g.dtype == np.float32


# ---------------------------------------------------------------------------
# Gradients: central differences, ties, second order

@pytest.mark.parametrize("f", [
    lambda t: tg.max_pool2d(t, 2),
    lambda t: tg.max_pool2d(t, 3, 2, 1, ceil_mode=True),
    lambda t: tg.max_pool2d(t, 2, 1, dilation=2),
    lambda t: tg.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False),
    lambda t: tg.max_pool1d(t.reshape(2, 3, 20), 3, 2, 1),
    lambda t: tg.avg_pool1d(t.reshape(2, 3, 20), 3, 2, 1, True),
])
def test_gradcheck(f: Any) -> None:
    x = tg.tensor(distinct((2, 3, 4, 5)), requires_grad=True)
    assert tg.gradcheck(f, [x])


@pytest.mark.slow
@pytest.mark.parametrize("k,s,p,d,ceil", [c for c in itertools.product(
    [1, 2, 3], [1, 2, 3], [0, 1], [1, 2], [False, True]) if c[2] <= c[0] // 2])
def test_gradcheck_wide_sweep(k: int, s: int, p: int, d: int, ceil: bool) -> None:
    x = tg.tensor(distinct((2, 2, 7, 6), seed=k * 7 + s), requires_grad=True)
    assert tg.gradcheck(lambda t: tg.max_pool2d(t, k, s, p, d, ceil), [x])
    if d == 1:
        for cip in (True, False):
            assert tg.gradcheck(lambda t: tg.avg_pool2d(t, k, s, p, ceil, cip), [x])
    x1 = tg.tensor(distinct((2, 2, 9), seed=k), requires_grad=True)
    assert tg.gradcheck(lambda t: tg.max_pool1d(t, k, s, p, d, ceil), [x1])


def test_ties_send_the_gradient_to_the_first_maximum_of_each_window() -> None:
    # All equal: each 2x2 window's gradient goes to its top-left element only.
    x = tg.tensor(np.ones((1, 1, 4, 4)), requires_grad=True)
    tg.max_pool2d(x, 2).sum().backward()
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1
    np.testing.assert_array_equal(x.grad.data[0, 0], expected)
    # Overlapping windows (stride 1): windows [3, 3], [3, 3], [3, 1] each add 1 to
    # their first maximum (elements 0, 1, 1), the last [1, 3] to element 3.
    x = tg.tensor(np.array([[[3.0, 3.0, 3.0, 1.0, 3.0]]]), requires_grad=True)
    tg.max_pool1d(x, 2, 1).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[[1.0, 1.0, 1.0, 0.0, 1.0]]])
    x = tg.tensor(np.array([[[3.0, 3.0, 3.0, 1.0, 3.0]]]), requires_grad=True)
    tg.max_pool1d(x, 3, 1).sum().backward()      # windows 0..2 all pick their first element
    np.testing.assert_array_equal(x.grad.data, [[[1.0, 1.0, 1.0, 0.0, 0.0]]])


def test_a_window_of_minus_inf_with_padding_picks_its_first_element_inside_the_input() -> None:
    # PyTorch's rule: padding never wins; an all -inf window keeps its first in-bounds element.
    x = tg.tensor(np.full((1, 1, 3, 3), -np.inf), requires_grad=True)
    y = tg.max_pool2d(x, 3, 1, 1)
    assert np.all(y.data == -np.inf)
    y.backward(np.ones(y.shape))
    expected = np.zeros((3, 3))
    expected[0, 0], expected[0, 1], expected[1, 0], expected[1, 1] = 4, 2, 2, 1
    np.testing.assert_array_equal(x.grad.data[0, 0], expected)


def test_a_window_that_dilation_steps_over_the_input_is_minus_inf_without_gradient() -> None:
    # H = 1, kernel 2, dilation 2, padding 1: the window reads rows -1 and 1, both padding.
    x = tg.tensor(np.array([[[[1.0, 2.0]]]]), requires_grad=True)
    v = tg.tensor(np.array([[[[5.0, 7.0]]]]), requires_grad=True)
    y = tg.max_pool2d(x, (2, 1), 1, (1, 0), (2, 1))
    np.testing.assert_array_equal(y.data, np.full((1, 1, 1, 2), -np.inf))
    gy = tg.tensor(np.ones(y.shape), requires_grad=True)
    (gx,) = tg.grad(y, [x], gy, create_graph=True)
    np.testing.assert_array_equal(gx.data, np.zeros((1, 1, 1, 2)))
    (ggy,) = tg.grad((gx * v).sum(), [gy])          # the gather reads 0 there
    np.testing.assert_array_equal(ggy.data, np.zeros(y.shape))


def test_nan_propagates_and_takes_the_gradient_like_pytorch() -> None:
    # PyTorch's CPU kernel: a NaN wins its window; of several, the last in scan order.
    x = np.arange(8.0).reshape(1, 1, 8)
    x[0, 0, 1] = x[0, 0, 2] = np.nan
    t = tg.tensor(x, requires_grad=True)
    y = tg.max_pool1d(t, 4)
    assert np.isnan(y.data[0, 0, 0]) and y.data[0, 0, 1] == 7
    y.backward(np.array([[[10.0, 20.0]]]))
    np.testing.assert_array_equal(t.grad.data, [[[0, 0, 10, 0, 0, 0, 0, 20]]])


@pytest.mark.parametrize("f", [
    lambda t: tg.max_pool2d(t, 2, 1),
    lambda t: tg.max_pool2d(t, 3, 2, 1, ceil_mode=True),
    lambda t: tg.avg_pool2d(t, 3, 2, 1, ceil_mode=True),
    lambda t: tg.avg_pool2d(t, 2, 1, count_include_pad=False),
    lambda t: tg.max_pool1d(t.reshape(1, 4, 5), 2, 1),
])
def test_second_derivatives(f: Any) -> None:
    # gradcheck of the gradient itself: d/dx of dL/dx with L = Σ y³ (not linear in y)
    x = tg.tensor(distinct((1, 1, 4, 5)), requires_grad=True)

    def grad_fn(t: tg.Tensor) -> tg.Tensor:
        (g,) = tg.grad((f(t) ** 3).sum(), [t], create_graph=True)
        return g
    assert tg.gradcheck(grad_fn, [x])


def test_the_vjps_are_ops_and_their_vjps_are_ops() -> None:
    x = tg.tensor(distinct((1, 1, 4, 4)), requires_grad=True)
    v = tg.tensor(np.random.default_rng(0).standard_normal((1, 1, 4, 4)), requires_grad=True)
    gy = tg.tensor(np.ones((1, 1, 3, 3)), requires_grad=True)
    y = tg.max_pool2d(x, 2, 1)
    (gx,) = tg.grad(y, [x], gy, create_graph=True)
    assert gx.node.op.name == "max_pool_scatter"
    (ggy,) = tg.grad((gx * v).sum(), [gy])
    # d<scatter(gy), v>/dgy = v gathered at the maxima
    idx = naive_max_pool(x.data, 2, (2, 2), (1, 1), (0, 0), (1, 1), False)[1]
    np.testing.assert_allclose(ggy.data, np.array(
        [v.data[idx[(0, 0, i, j)]] for i in range(3) for j in range(3)]).reshape(1, 1, 3, 3))
    gy = tg.tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    (ga,) = tg.grad(tg.avg_pool2d(x, 2), [x], gy, create_graph=True)
    assert ga.node.op.name == "avg_pool_backward"
    (gga,) = tg.grad((ga * v).sum(), [gy], create_graph=True)
    assert gga.node.op.name == "avg_pool2d"
    np.testing.assert_allclose(gga.data, tg.avg_pool2d(v, 2).data)


# ---------------------------------------------------------------------------
# Bad input

@pytest.mark.parametrize("call,match", [
    (lambda: tg.max_pool2d(np.zeros((4, 4)), 2), r"max_pool2d: expected a 3-D \(C, H, W\) or "
                                                  r"4-D \(N, C, H, W\) input, got shape \(4, 4\)"),
    (lambda: tg.max_pool1d(np.zeros((1, 2, 3, 4)), 2), r"max_pool1d: expected a 2-D.*got shape "
                                                        r"\(1, 2, 3, 4\)"),
    (lambda: tg.max_pool2d(np.zeros((1, 1, 4, 4)), 2, 0), r"max_pool2d: stride must be positive, "
                                                          r"got \(0, 0\)"),
    (lambda: tg.max_pool2d(np.zeros((1, 1, 4, 4)), 0), r"kernel_size must be positive"),
    (lambda: tg.max_pool2d(np.zeros((1, 1, 4, 4)), 2, padding=2),
     r"max_pool2d: padding should be at most half of kernel_size, got padding \(2, 2\) and "
     r"kernel_size \(2, 2\)"),
    (lambda: tg.avg_pool2d(np.zeros((1, 1, 2, 2)), 3, padding=0),
     r"avg_pool2d: the window .* is larger than the padded input: input shape \(1, 1, 2, 2\)"),
    (lambda: tg.max_pool2d(np.zeros((1, 1, 5, 5)), 2, dilation=5),
     r"max_pool2d: the window \(kernel_size \(2, 2\), dilation \(5, 5\)\) is larger"),
    (lambda: tg.avg_pool2d(np.zeros((1, 1, 4, 4)), 2, divisor_override=0),
     r"avg_pool2d: divisor_override must be a positive int"),
])
def test_bad_arguments_name_the_op_and_the_shapes(call: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_types() -> None:
    with pytest.raises(TypeError, match=r"max_pool2d: kernel_size must be an int or a sequence "
                                        r"of 2 ints, got \(2, 2, 2\)"):
        tg.max_pool2d(np.zeros((1, 1, 4, 4)), (2, 2, 2))
    with pytest.raises(TypeError, match=r"max_pool2d: expects a floating-point input, got "
                                        r"dtype int64"):
        tg.max_pool2d(np.zeros((1, 1, 4, 4), np.int64), 2)
    with pytest.raises(NotImplementedError, match="return_indices"):
        tg.max_pool2d(np.zeros((1, 1, 4, 4)), 2, return_indices=True)


# ---------------------------------------------------------------------------
# Modules

def test_modules_call_the_ops_with_their_arguments() -> None:
    x = distinct((2, 3, 7, 6))
    np.testing.assert_array_equal(nn.MaxPool2d(3, 2, 1, ceil_mode=True)(x).data,
                                  tg.max_pool2d(x, 3, 2, 1, ceil_mode=True).data)
    np.testing.assert_array_equal(nn.AvgPool2d(2, 1, 1, count_include_pad=False)(x).data,
                                  tg.avg_pool2d(x, 2, 1, 1, count_include_pad=False).data)
    x1 = x.reshape(2, 3, 42)
    np.testing.assert_array_equal(nn.MaxPool1d(4, 3, 2)(x1).data, tg.max_pool1d(x1, 4, 3, 2).data)
    np.testing.assert_array_equal(nn.AvgPool1d(4, 3, 2)(x1).data, tg.avg_pool1d(x1, 4, 3, 2).data)
    m = nn.MaxPool2d(2)
    assert m.stride == 2 and repr(m) == ("MaxPool2d(kernel_size=2, stride=2, padding=0, "
                                         "dilation=1, ceil_mode=False)")
    assert m.state_dict() == {} and m.parameters() == []


def test_modules_name_themselves_in_shape_errors() -> None:
    net = nn.Sequential(nn.MaxPool2d(2))
    with pytest.raises(ValueError, match=r"MaxPool2d '0': expected a 3-D or 4-D input \(C, H, W\) "
                                         r"or \(N, C, H, W\), got shape \(8, 8\)"):
        net(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match=r"AvgPool1d 'avgpool1d': expected a 2-D or 3-D input "
                                         r"\(C, L\) or \(N, C, L\), got shape \(1, 2, 3, 4\)"):
        nn.AvgPool1d(2)(np.zeros((1, 2, 3, 4)))


# ---------------------------------------------------------------------------
# Capture

def test_a_captured_pooling_net_replays_and_its_gradient_too() -> None:
    rng = np.random.default_rng(0)
    w = tg.tensor(rng.standard_normal((3, 1, 1)), requires_grad=True)

    def step(x: tg.Tensor) -> Any:
        y = tg.avg_pool2d(tg.max_pool2d(x * w, 2, 1, 1, ceil_mode=True), 2, count_include_pad=False)
        loss = (y * y).sum()
        return loss, tg.grad(loss, [w])[0]
    g = tg.capture(step, tg.placeholder((None, 3, 6, 5), "float64"))
    assert {"max_pool2d", "avg_pool2d", "max_pool2d_vjp0", "avg_pool2d_vjp0"} <= \
        {n.op.name for n in g.nodes}
    for batch in (1, 4):
        x = rng.standard_normal((batch, 3, 6, 5))
        loss, gw = g(x)
        eloss, egw = step(tg.tensor(x))
        np.testing.assert_array_equal(loss.data, eloss.data)
        np.testing.assert_array_equal(gw.data, egw.data)


# ---------------------------------------------------------------------------
# PyTorch as the oracle (slow: importing torch takes seconds)

@pytest.mark.slow
def test_against_pytorch_forward_and_backward() -> None:
    torch = require_module("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    checked = 0
    for shape, k, s, p, d, ceil in itertools.product(
            [(2, 3, 7, 7), (1, 1, 6, 9), (3, 5, 4)], [1, 2, 3], [None, 1, 2, 3], [0, 1], [1, 2],
            [False, True]):
        if p > k // 2:
            continue
        x = rng.standard_normal(shape)
        try:
            ref = F.max_pool2d(torch.tensor(x), k, s, p, d, ceil)
        except RuntimeError:     # output too small: tensorgraph refuses too
            with pytest.raises(ValueError, match="larger than the padded input"):
                tg.max_pool2d(x, k, s, p, d, ceil)
            continue
        np.testing.assert_array_equal(tg.max_pool2d(x, k, s, p, d, ceil).data, ref.numpy())
        g = rng.standard_normal(ref.shape)
        xt = torch.tensor(x, requires_grad=True)
        F.max_pool2d(xt, k, s, p, d, ceil).backward(torch.tensor(g))
        np.testing.assert_allclose(grad_of(lambda t: tg.max_pool2d(t, k, s, p, d, ceil), x, g),
                                   xt.grad.numpy(), rtol=1e-12, atol=1e-12)
        if d == 1:
            for cip in (True, False):
                xt = torch.tensor(x, requires_grad=True)
                ref = F.avg_pool2d(xt, k, s, p, ceil, cip)
                ref.backward(torch.tensor(g))
                np.testing.assert_allclose(tg.avg_pool2d(x, k, s, p, ceil, cip).data,
                                           ref.detach().numpy(), rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(
                    grad_of(lambda t: tg.avg_pool2d(t, k, s, p, ceil, cip), x, g),
                    xt.grad.numpy(), rtol=1e-12, atol=1e-12)
        x1 = x.reshape(shape[0], -1, shape[-1])
        np.testing.assert_array_equal(tg.max_pool1d(x1, k, s, p, d, ceil).data,
                                      F.max_pool1d(torch.tensor(x1), k, s, p, d, ceil).numpy())
        checked += 1
    assert checked > 100


@pytest.mark.slow
@pytest.mark.parametrize("x", [
    np.zeros((1, 1, 4, 4)),                                      # all tied
    np.array([[[[1.0, 2, 2, 1], [2, 2, 1, 2], [0, 2, 2, 2], [2, 1, 2, 0]]]]),
    np.round(np.random.default_rng(3).standard_normal((2, 3, 7, 6))),   # many ties
    np.full((1, 2, 5, 5), -np.inf),
    np.where(np.random.default_rng(4).random((1, 2, 6, 6)) < 0.15, np.nan,
             np.random.default_rng(5).standard_normal((1, 2, 6, 6))),     # NaNs win
])
@pytest.mark.parametrize("k,s,p,d", [(2, 2, 0, 1), (3, 1, 1, 1), (2, 1, 1, 2), (3, 2, 1, 1)])
def test_ties_go_where_pytorch_sends_them(x: np.ndarray, k: int, s: int, p: int, d: int) -> None:
    torch = require_module("torch")
    xt = torch.tensor(x, requires_grad=True)
    y = torch.nn.functional.max_pool2d(xt, k, s, p, d)
    g = np.arange(1.0, y.numel() + 1).reshape(y.shape)      # each window's share is visible
    y.backward(torch.tensor(g))
    np.testing.assert_array_equal(grad_of(lambda t: tg.max_pool2d(t, k, s, p, d), x, g),
                                  xt.grad.numpy())
    np.testing.assert_array_equal(tg.max_pool2d(x, k, s, p, d).data, y.detach().numpy())


@pytest.mark.slow
def test_modules_match_pytorch_modules() -> None:
    torch = require_module("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 8)).astype(np.float32)
    pairs = [(nn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
             (nn.AvgPool2d(3, 2, 1, count_include_pad=False),
              torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False)),
             (nn.AvgPool2d(2, divisor_override=3), torch.nn.AvgPool2d(2, divisor_override=3))]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).numpy(), rtol=1e-6)
    x1 = x.reshape(2, 3, 72)
    for ours, theirs in [(nn.MaxPool1d(4, 3, 2), torch.nn.MaxPool1d(4, 3, 2)),
                         (nn.AvgPool1d(4, 3, 2), torch.nn.AvgPool1d(4, 3, 2))]:
        np.testing.assert_allclose(ours(x1).data, theirs(torch.tensor(x1)).numpy(), rtol=1e-6)
