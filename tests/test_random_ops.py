"""Random ops (tensorgraph/ops/random.py): a captured graph draws fresh
randomness at each replay from the op's own seedable generator; train()/eval()
decide at capture whether the random op is in the graph; graph passes never
merge, fold or drop it. References: numpy Generators seeded alike, and the
binomial standard deviation for keep rates."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph import nn
from tensorgraph.ops.random import dropout_mask
from tensorgraph.passes import (eliminate_common_subexpressions, eliminate_dead_code,
                                fold_constants, is_pure, optimize)


def _net(p: float = 0.25) -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 4, seed=0), nn.Dropout(p, seed=1))


def _ops(g: tg.Graph) -> list[str]:
    return [n.op.name for n in g.nodes]


def _keep_rate_ok(kept: np.ndarray, p: float) -> bool:
    # within 5 binomial standard deviations of 1 - p
    n = kept.size
    return abs(kept.mean() - (1 - p)) <= 5 * math.sqrt(p * (1 - p) / n)


def test_the_op_says_it_is_random() -> None:
    op = tg.OPS["dropout_mask"]
    assert op.random and not op.differentiable and not is_pure(op)
    assert not tg.OPS["mul"].random and is_pure(tg.OPS["mul"])
    assert tg.defop("throwaway_rand", lambda x: x, differentiable=False, random=True).random
    assert not tg.defop("throwaway_id", lambda x: x, differentiable=False).random


def test_a_replay_draws_a_fresh_mask_with_the_right_rate_and_scale() -> None:
    p = 0.25
    g = tg.capture(lambda x: tg.dropout(x, p, generator=tg.Generator(0)),
                   tg.placeholder((None, 100)))
    assert _ops(g) == ["dropout_mask", "mul"]
    x = np.full((200, 100), 3.0, np.float32)
    a, b = g(x).data, g(x).data
    assert a.dtype == np.float32 and a.shape == (200, 100)
    assert not np.array_equal(a, b)                                  # two replays differ
    for y in (a, b):
        kept = y != 0
        assert _keep_rate_ok(kept, p)
        np.testing.assert_allclose(y[kept], 3.0 / (1 - p), rtol=1e-6)   # scaled by 1/(1 - p)
    assert g(np.ones((7, 100), np.float32)).shape == (7, 100)       # the replay's batch size


def test_reseeding_reproduces_eager_calls_and_replays_alike() -> None:
    net = _net()
    g = tg.capture(net, tg.placeholder((None, 4)))
    x = np.random.default_rng(5).standard_normal((50, 4)).astype(np.float32)
    gen = net[1].generator
    gen.manual_seed(3)
    first = g(x).data
    gen.manual_seed(3)
    np.testing.assert_array_equal(g(x).data, first)                 # replay, reseeded
    gen.manual_seed(3)
    np.testing.assert_array_equal(net(x).data, first)               # eager, same stream
    # the formula: Linear's output times numpy's mask from the same seed
    mask = (np.random.default_rng(3).random((50, 4)) >= 0.25) / 0.75
    np.testing.assert_allclose(first, net[0](x).data * mask.astype(np.float32), rtol=1e-6)
    # Dropout's `rng` is the generator's state: replacing it reaches the graph too
    net[1].rng = np.random.default_rng(3)
    np.testing.assert_array_equal(g(x).data, first)


def test_eval_at_capture_leaves_the_random_op_out() -> None:
    net = _net()
    x = np.ones((3, 4), np.float32)
    evaluated = tg.capture(net.eval(), x)
    assert "dropout_mask" not in _ops(evaluated)
    np.testing.assert_array_equal(evaluated(x).data, net[0](x).data)
    trained = tg.capture(net.train(), x)
    assert _ops(trained)[-2:] == ["dropout_mask", "mul"]
    assert [n.scope for n in trained.nodes][-1] == ("sequential", "layers", "1")
    # the graph keeps the mode it was captured in, whatever the module's mode now
    net.eval()
    net[1].generator.manual_seed(2)
    mask = (np.random.default_rng(2).random((3, 4)) >= 0.25) / 0.75
    np.testing.assert_allclose(trained(x).data, net(x).data * mask.astype(np.float32), rtol=1e-6)


def test_passes_never_merge_fold_or_drop_a_random_op() -> None:
    gen = tg.Generator(0)

    def f(x: tg.Tensor) -> tg.Tensor:
        tg.dropout(x, 0.5, generator=gen)                   # unused, but it advances gen
        noise = tg.dropout(tg.ones(2, 3), 0.5, generator=gen)   # on a constant: not foldable
        return tg.dropout(x, 0.5, generator=gen) + tg.dropout(x, 0.5, generator=gen) + noise

    g = tg.capture(f, np.ones((2, 3), np.float32))
    assert _ops(g).count("dropout_mask") == 4
    for p in (eliminate_dead_code, eliminate_common_subexpressions, fold_constants, optimize):
        small = p(g)
        assert _ops(small).count("dropout_mask") == 4, p.__name__
    small = optimize(g)
    x = np.ones((2, 3), np.float32)
    gen.manual_seed(11)
    before = g(x).data
    gen.manual_seed(11)
    np.testing.assert_array_equal(small(x).data, before)   # same draws in the same order
    assert not np.array_equal(small(x).data, small(x).data)       # and fresh ones each call


def test_dropout_gradient_with_a_fixed_mask() -> None:
    # gradcheck calls f many times: reseeding makes every call draw the same mask
    gen = tg.Generator()
    x = tg.tensor(np.random.default_rng(0).standard_normal((3, 5)), requires_grad=True)

    def f(x: tg.Tensor) -> tg.Tensor:
        gen.manual_seed(4)
        return tg.dropout(x, 0.4, generator=gen)
    assert tg.gradcheck(f, [x])
    (g,) = tg.grad(f(x).sum(), [x])
    mask = (np.random.default_rng(4).random((3, 5)) >= 0.4) / 0.6
    np.testing.assert_allclose(g.data, mask)                        # d/dx = mask/(1 - p)
    # second order: d²/dx² sum(dropout(x)²) = 2 mask², through mul's VJP
    (g1,) = tg.grad((f(x) ** 2).sum(), [x], create_graph=True)
    (g2,) = tg.grad(g1.sum(), [x])
    np.testing.assert_allclose(g2.data, 2 * mask ** 2)


def test_not_training_or_p_zero_is_the_identity() -> None:
    x = tg.tensor(np.ones(4))
    assert tg.dropout(x, 0.5, training=False) is x
    assert tg.dropout(x, 0.0) is x


def test_bad_arguments_are_named() -> None:
    x = tg.tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\), got 1.5"):
        tg.dropout(x, 1.5)
    with pytest.raises(ValueError, match=r"dropout_mask: p must be in \[0, 1\), got -0.1"):
        dropout_mask(x, -0.1)
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\), got True"):
        tg.dropout(x, True)
    with pytest.raises(TypeError, match="dropout: generator must be a tg.Generator, got int"):
        tg.dropout(x, 0.5, generator=3)
    with pytest.raises(TypeError, match="Generator: seed must be None, an int or a numpy "
                                        "Generator, got str"):
        tg.Generator("7")
