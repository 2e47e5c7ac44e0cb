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


# ---------------------------------------------------------------------------
# The samplers (rand, randn, randint, rand_like, randn_like, bernoulli) are random ops

def test_a_captured_randn_draws_afresh_and_a_reseeded_generator_repeats_eager() -> None:
    gen = tg.Generator(0)

    def f(x: tg.Tensor) -> tg.Tensor:
        return x + tg.randn(2, 3, generator=gen)
    g = tg.capture(f, np.zeros((2, 3), np.float32))
    assert _ops(g) == ["randn", "add"]
    assert "randn() [shape=(2, 3), dtype=float32, generator=Generator(seed=0)]" in str(g)
    x = np.zeros((2, 3), np.float32)
    a, b = g(x).data, g(x).data
    assert not np.array_equal(a, b)                          # fresh each replay
    gen.manual_seed(5)
    first = g(x).data
    np.testing.assert_array_equal(first, np.random.default_rng(5).standard_normal((2, 3))
                                  .astype(np.float32))       # numpy's draws, seeded alike
    gen.manual_seed(5)
    np.testing.assert_array_equal(f(tg.tensor(x)).data, first)   # eager: the same stream


def test_the_shared_generator_is_reseeded_by_manual_seed_for_replays_too() -> None:
    g = tg.capture(lambda x: x * tg.rand(4), np.ones(4, np.float32))
    tg.manual_seed(21)
    first = g(np.ones(4, np.float32)).data
    assert not np.array_equal(first, g(np.ones(4, np.float32)).data)
    tg.manual_seed(21)
    np.testing.assert_array_equal(g(np.ones(4, np.float32)).data, first)
    np.testing.assert_array_equal(first, np.random.default_rng(21).random(4).astype(np.float32))


def test_an_int_seed_draws_the_same_values_at_every_replay_as_every_call() -> None:
    g = tg.capture(lambda x: x + tg.randn(3, seed=7), np.zeros(3, np.float32))
    expected = np.random.default_rng(7).standard_normal(3).astype(np.float32)
    for _ in range(2):
        np.testing.assert_array_equal(g(np.zeros(3, np.float32)).data, expected)
    np.testing.assert_array_equal(tg.randn(3, seed=7).data, expected)


def test_like_samplers_follow_the_replays_batch_and_given_shapes_are_frozen() -> None:
    gen = tg.Generator(1)

    def f(x: tg.Tensor):
        return x + tg.randn_like(x, generator=gen), tg.rand(*x.shape, generator=gen)
    g = tg.capture(f, tg.placeholder((None, 3)))
    noisy, frozen = g(np.zeros((5, 3), np.float32))
    assert noisy.shape == (5, 3)                     # follows the input
    assert frozen.shape == (2, 3)                    # the example's size: frozen (documented)
    assert [n.output.shape for n in g.nodes if n.op.name == "randn_like"] == [(None, 3)]
    gen.manual_seed(3)
    noisy, _ = g(np.zeros((4, 3), np.float32))
    np.testing.assert_array_equal(noisy.data, np.random.default_rng(3).standard_normal((4, 3))
                                  .astype(np.float32))


def test_bernoulli_and_randint_in_a_graph() -> None:
    gen = tg.Generator(0)
    p = np.full(4000, 0.3, np.float32)
    g = tg.capture(lambda p: (tg.bernoulli(p, generator=gen),
                              tg.randint(0, 10, (1000,), generator=gen)), p)
    b, r = g(p)
    assert b.shape == (4000,) and b.dtype == np.float32 and set(np.unique(b.data)) <= {0, 1}
    assert _keep_rate_ok(b.data == 1, 0.7)
    assert r.dtype == np.int64 and r.data.min() >= 0 and r.data.max() <= 9
    b2, r2 = g(p)
    assert not np.array_equal(b.data, b2.data) and not np.array_equal(r.data, r2.data)
    g2 = tg.capture(tg.bernoulli, np.array([0.2, 0.3], np.float32))
    with pytest.raises(ValueError, match=r"bernoulli: probabilities must lie in \[0, 1\], got "
                                         r"min -0.5 and max 0.3"):
        g2(np.array([-0.5, 0.3], np.float32))          # checked at replay too


def test_passes_never_merge_or_fold_samplers() -> None:
    gen = tg.Generator(0)

    def f(x: tg.Tensor) -> tg.Tensor:
        tg.rand(3, generator=gen)                      # unused, but it advances gen
        return x + tg.randn(3, generator=gen) + tg.randn(3, generator=gen)
    g = tg.capture(f, np.zeros(3, np.float32))
    small = optimize(g)
    assert _ops(small) == ["rand", "randn", "add", "randn", "add"]
    gen.manual_seed(2)
    before = g(np.zeros(3, np.float32)).data
    gen.manual_seed(2)
    np.testing.assert_array_equal(small(np.zeros(3, np.float32)).data, before)
    assert all(not is_pure(tg.all_ops()[n]) for n in
               ("rand", "randn", "randint", "rand_like", "randn_like", "bernoulli"))


def test_sampler_arguments_are_checked_by_name() -> None:
    with pytest.raises(TypeError, match="randn_like: dtype must be floating-point, got int64"):
        tg.randn_like(np.zeros(3), dtype=np.int64)
    with pytest.raises(ValueError, match="randint: low must be less than high, got low=3, "
                                         "high=3"):
        tg.randint(3, 3, (2,))
    with pytest.raises(TypeError, match="bernoulli: p must be floating-point probabilities, "
                                        "got dtype int64"):
        tg.bernoulli(np.array([0, 1]))
    with pytest.raises(TypeError, match="rand_like: give seed= or generator=, not both"):
        tg.rand_like(np.zeros(2), seed=1, generator=tg.Generator(1))
    r = tg.randn(2, 3, requires_grad=True, seed=0)
    assert r.requires_grad and r.node is None           # a leaf, as torch.randn(..., requires_grad)
    assert tg.randint(5, size=(3,), seed=0).data.max() < 5
