"""tg.nn.utils.clip_grad_norm_ / clip_grad_value_ against a formula written
here and against torch.nn.utils."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require_module

clip_grad_norm_ = tg.nn.utils.clip_grad_norm_
clip_grad_value_ = tg.nn.utils.clip_grad_value_


def _params(grads: list[np.ndarray]) -> list[tg.nn.Parameter]:
    ps = [tg.nn.Parameter(np.zeros_like(g)) for g in grads]
    for p, g in zip(ps, grads):
        p.grad = tg.tensor(g.copy())
    return ps


GRADS = [np.array([[3.0, -4.0], [0.0, 12.0]]), np.array([1.0, -2.0, 2.0])]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_formula(norm_type: float, max_norm: float) -> None:
    flat = np.concatenate([g.ravel() for g in GRADS])
    want = np.abs(flat).max() if norm_type == float("inf") else \
        (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    ps = _params(GRADS)
    total = clip_grad_norm_(ps, max_norm, norm_type)
    assert isinstance(total, tg.Tensor) and total.shape == ()
    np.testing.assert_allclose(total.item(), want, rtol=1e-12)
    coef = min(1.0, max_norm / (want + 1e-6))
    for p, g in zip(ps, GRADS):
        np.testing.assert_allclose(p.grad.data, g * coef, rtol=1e-12)


def test_clip_grad_norm_skips_missing_grads_and_takes_one_tensor() -> None:
    a, b = _params(GRADS)
    b.grad = None
    np.testing.assert_allclose(clip_grad_norm_([a, b], 1.0).item(), 13.0)
    assert b.grad is None
    np.testing.assert_allclose(np.linalg.norm(a.grad.data), 1.0, rtol=1e-6)
    (c,) = _params([GRADS[1]])
    np.testing.assert_allclose(clip_grad_norm_(c, 10.0).item(), 3.0)
    np.testing.assert_array_equal(c.grad.data, GRADS[1])        # under the limit: unchanged
    assert clip_grad_norm_([b], 1.0).item() == 0.0


def test_clip_grad_norm_nonfinite() -> None:
    ps = _params([np.array([1.0, np.inf])])
    with pytest.raises(RuntimeError, match=r"clip_grad_norm_: the total norm of order 2.0.*"
                                           r"non-finite \(inf\)"):
        clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    with np.errstate(invalid="ignore"):
        total = clip_grad_norm_(ps, 1.0)
    assert np.isinf(total.item())                 # coefficient 0, as PyTorch: inf · 0 = nan
    np.testing.assert_array_equal(ps[0].grad.data, [0.0, np.nan])
    with pytest.raises(ValueError, match="clip_grad_norm_: norm_type must be positive"):
        clip_grad_norm_(ps, 1.0, norm_type=0)


def test_clip_grad_value_formula() -> None:
    ps = _params(GRADS)
    assert clip_grad_value_(ps, 2.5) is None
    for p, g in zip(ps, GRADS):
        np.testing.assert_array_equal(p.grad.data, np.minimum(np.maximum(g, -2.5), 2.5))
    with pytest.raises(ValueError, match="clip_grad_value_: clip_value must be >= 0"):
        clip_grad_value_(ps, -1.0)


@pytest.mark.parametrize("norm_type", [2.0, 1.5, float("inf")])
def test_clip_grad_matches_torch_after_an_lstm_backward(norm_type: float) -> None:
    torch = require_module("torch")
    tm = torch.nn.LSTM(3, 5).double()
    ours = tg.nn.LSTM(3, 5, dtype=np.float64)
    ours.load_state_dict(tm.state_dict())
    x = np.random.default_rng(0).standard_normal((7, 2, 3)) * 3

    def run(m: Any, x: Any, lib: Any) -> None:
        out, _ = m(x)
        (out * out).sum().backward()

    run(tm, torch.tensor(x), torch)
    run(ours, tg.tensor(x), tg)
    want = torch.nn.utils.clip_grad_norm_(tm.parameters(), 0.3, norm_type)
    got = clip_grad_norm_(ours.parameters(), 0.3, norm_type)
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-10)
    for tp, p in zip(tm.parameters(), ours.parameters()):
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-10, atol=1e-14)
    torch.nn.utils.clip_grad_value_(tm.parameters(), 1e-3)
    clip_grad_value_(ours.parameters(), 1e-3)
    for tp, p in zip(tm.parameters(), ours.parameters()):   # the inputs differ in the last ulp
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-12, atol=1e-15)
        assert np.abs(p.grad.data).max() <= 1e-3
    assert sum((np.abs(p.grad.data) == 1e-3).sum() for p in ours.parameters()) > 10


def test_clip_grad_norm_in_a_captured_training_step_replays() -> None:
    net = tg.nn.Linear(3, 2, seed=0)
    opt = tg.optim.SGD(net.parameters(), lr=0.1)

    def step(x: tg.Tensor) -> tg.Tensor:
        opt.zero_grad()
        loss = tg.sum(net(x) ** 2)
        loss.backward()
        clip_grad_norm_(net.parameters(), 0.5)
        opt.step()
        return loss

    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32) * 5
    g = tg.capture(step, tg.placeholder((None, 3)))
    for batch in (x, x[:2] * 3):
        w0, b0 = net.weight.data.astype(np.float64), net.bias.data.astype(np.float64)
        g(batch)
        # the formula: loss = Σ y², y = x Wᵀ + b; dW = 2 yᵀ x, db = 2 Σ y; clipped to norm 0.5
        y = batch @ w0.T + b0
        dw, db = 2 * y.T @ batch, 2 * y.sum(0)
        norm = np.sqrt((dw ** 2).sum() + (db ** 2).sum())
        assert norm > 0.5
        coef = 0.5 / (norm + 1e-6)
        np.testing.assert_allclose(net.weight.data, w0 - 0.1 * coef * dw, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(net.bias.data, b0 - 0.1 * coef * db, rtol=1e-5, atol=1e-6)
