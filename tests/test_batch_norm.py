"""Batch normalisation: tg.batch_norm and nn.BatchNorm1d/2d. Forward against
the formula written out per channel (tests/op_specs_pool.py), running
statistics against the update rule written out, gradients through the batch
statistics by float64 central differences and to second order, train/eval,
capture, error messages; PyTorch's functional and modules (state_dicts in
both directions) as oracles in the slow tests."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require_module
from op_specs_pool import naive_batch_norm
from tensorgraph import nn

SHAPES = [(6, 3), (4, 3, 5), (2, 3, 4, 5), (5, 1, 2, 2)]


def data(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    c = shape[1]
    return (rng.standard_normal(shape) * 2 + 1, rng.standard_normal(c), rng.standard_normal(c),
            rng.standard_normal(c), rng.random(c) + 0.5)


@pytest.mark.parametrize("shape", SHAPES)
def test_training_uses_the_batch_statistics_and_updates_the_running_ones(shape: Any) -> None:
    x, w, b, rm, rv = data(shape)
    run_m, run_v = tg.tensor(rm.copy()), tg.tensor(rv.copy())
    y = tg.batch_norm(x, run_m, run_v, w, b, training=True, momentum=0.3, eps=1e-3)
    np.testing.assert_allclose(y.data, naive_batch_norm(x, None, None, w, b, 1e-3), rtol=1e-12,
                               atol=1e-12)
    axes = (0,) + tuple(range(2, x.ndim))
    n = x.size // shape[1]
    np.testing.assert_allclose(run_m.data, 0.7 * rm + 0.3 * x.mean(axis=axes), rtol=1e-12)
    np.testing.assert_allclose(run_v.data, 0.7 * rv + 0.3 * x.var(axis=axes) * n / (n - 1),
                               rtol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_evaluation_uses_the_running_statistics_and_changes_nothing(shape: Any) -> None:
    x, w, b, rm, rv = data(shape)
    run_m, run_v = tg.tensor(rm.copy()), tg.tensor(rv.copy())
    y = tg.batch_norm(x, run_m, run_v, w, b)
    np.testing.assert_allclose(y.data, naive_batch_norm(x, rm, rv, w, b), rtol=1e-12)
    np.testing.assert_array_equal(run_m.data, rm)
    np.testing.assert_array_equal(run_v.data, rv)


def test_the_update_is_in_place_and_a_graph_that_read_the_old_values_refuses_backward() -> None:
    x, w, b, rm, rv = data((4, 3))
    run_m, run_v = tg.tensor(rm.copy()), tg.tensor(rv.copy())
    arr = run_v.data
    xt = tg.tensor(x, requires_grad=True)
    y = tg.batch_norm(xt, run_m, run_v, w, b)          # evaluation: its VJP reads running_var
    tg.batch_norm(x, run_m, run_v, w, b, training=True)
    assert np.shares_memory(run_v.data, arr)            # the same array, updated in place
    with pytest.raises(RuntimeError, match=r"of op 'batch_norm'.*was modified in place"):
        y.sum().backward()
    plain = rm.copy()                                   # numpy arrays are updated in place too
    tg.batch_norm(x, plain, None, training=True)
    np.testing.assert_allclose(plain, 0.9 * rm + 0.1 * x.mean(0))


def test_weight_and_bias_default_to_one_and_zero() -> None:
    x, _, _, rm, rv = data((4, 3, 2))
    np.testing.assert_allclose(tg.batch_norm(x, rm, rv).data,
                               naive_batch_norm(x, rm, rv, np.ones(3), np.zeros(3)))
    np.testing.assert_allclose(tg.batch_norm(x, None, None, training=True).data,
                               naive_batch_norm(x, None, None, np.ones(3), np.zeros(3)))


def test_float32_stays_float32() -> None:
    x, w, b, rm, rv = (a.astype(np.float32) for a in data((4, 3, 2, 2)))
    xt, wt = tg.tensor(x, requires_grad=True), tg.tensor(w, requires_grad=True)
    run_v = tg.tensor(rv)
    for training in (False, True):
        y = tg.batch_norm(xt, rm.copy(), run_v, wt, b, training=training)
        gx, gw = tg.grad(y.sum() + (y * y).sum(), [xt, wt])
        assert y.dtype == gx.dtype == gw.dtype == run_v.dtype == np.float32


# ---------------------------------------------------------------------------
# Gradients

@pytest.mark.parametrize("shape", SHAPES)
def test_gradcheck_through_the_batch_statistics(shape: Any) -> None:
    x, w, b, _, _ = data(shape)
    ts = [tg.tensor(a, requires_grad=True) for a in (x, w, b)]
    assert tg.gradcheck(lambda x, w, b: tg.batch_norm(x, None, None, w, b, training=True), ts)


@pytest.mark.parametrize("shape", SHAPES[:3])
def test_gradcheck_in_evaluation_mode_every_input(shape: Any) -> None:
    ts = [tg.tensor(a, requires_grad=True) for a in data(shape)]
    assert tg.gradcheck(lambda x, w, b, m, v: tg.batch_norm(x, m, v, w, b), ts)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 2), (3, 2, 2, 2)])
def test_second_derivatives(shape: Any, training: bool) -> None:
    x, w, b, rm, rv = data(shape)
    ts = [tg.tensor(a, requires_grad=True) for a in (x, w, b)]
    r = tg.tensor(np.random.default_rng(5).standard_normal(shape))

    def grads(x: tg.Tensor, w: tg.Tensor, b: tg.Tensor) -> Any:
        y = tg.batch_norm(x, rm, rv, w, b, training=training)
        return tg.grad((y * r).sum() + (y ** 3).sum(), [x, w, b], create_graph=True)
    assert tg.gradcheck(grads, ts)


def test_the_training_vjp_is_a_formula_of_ops() -> None:
    # dx = w/σ̂ (g - mean(g) - x̂ mean(g x̂)), written out per channel
    x, w, b, _, _ = data((5, 2, 3))
    g = np.random.default_rng(2).standard_normal(x.shape)
    xt = tg.tensor(x, requires_grad=True)
    (gx,) = tg.grad(tg.batch_norm(xt, None, None, w, b, training=True, eps=1e-5), [xt], g)
    for c in range(2):
        xc, gc = x[:, c], g[:, c]
        sd = np.sqrt(xc.var() + 1e-5)
        xhat = (xc - xc.mean()) / sd
        np.testing.assert_allclose(gx.data[:, c],
                                   w[c] / sd * (gc - gc.mean() - xhat * (gc * xhat).mean()),
                                   rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# Bad input

@pytest.mark.parametrize("call,err,match", [
    (lambda: tg.batch_norm(np.zeros(3), None, None, training=True), ValueError,
     r"batch_norm: expected an input of shape \(N, C\), \(N, C, L\) or \(N, C, H, W\), got "
     r"shape \(3,\)"),
    (lambda: tg.batch_norm(np.zeros((1, 3)), None, None, training=True), ValueError,
     r"batch_norm: expected more than 1 value per channel when training, got input shape "
     r"\(1, 3\)"),
    (lambda: tg.batch_norm(np.zeros((2, 3)), np.zeros(4), np.ones(3)), ValueError,
     r"batch_norm: running_mean must have shape \(3,\) \(one value per channel of the input of "
     r"shape \(2, 3\)\), got shape \(4,\)"),
    (lambda: tg.batch_norm(np.zeros((2, 3, 4)), None, None, np.ones(2), training=True),
     ValueError, r"batch_norm: weight must have shape \(3,\).*got shape \(2,\)"),
    (lambda: tg.batch_norm(np.zeros((2, 3)), None, None), ValueError,
     r"batch_norm: running_mean and running_var must be given in evaluation mode"),
    (lambda: tg.batch_norm(np.zeros((2, 3), np.int64), None, None, training=True), TypeError,
     r"batch_norm: expects a floating-point input, got dtype int64"),
])
def test_bad_input_names_the_op_and_the_shapes(call: Any, err: type, match: str) -> None:
    with pytest.raises(err, match=match):
        call()


@pytest.mark.parametrize("momentum", [0.3, None])
def test_a_captured_training_mode_forward_updates_the_running_stats_at_each_replay(
        momentum: Any) -> None:
    # The update is recorded (assign on the RunningStat buffers): the capture
    # changes nothing, each replay performs one update, as an eager call would.
    captured = nn.BatchNorm2d(3, momentum=momentum, dtype=np.float64)
    eager = nn.BatchNorm2d(3, momentum=momentum, dtype=np.float64)
    g = tg.capture(captured, tg.placeholder((None, 3, 2, 2), "float64"))
    # running ← running·(1 - momentum), then + momentum·batch (each an assign); the count + 1
    assert sum(n.op.name == "assign" for n in g.nodes) == 5
    assert sum(n.op.name == "batch_norm_stats" for n in g.nodes) == 1
    assert int(captured.num_batches_tracked.data) == 0
    np.testing.assert_array_equal(captured.running_mean.data, np.zeros(3))
    rng = np.random.default_rng(0)
    for batch in (4, 2, 7):
        x = rng.standard_normal((batch, 3, 2, 2)) * 2 + 1
        np.testing.assert_array_equal(g(x).data, eager(x).data)
    for name, want in eager.state_dict().items():       # bit for bit
        np.testing.assert_array_equal(captured.state_dict()[name], want, err_msg=name)
    assert int(captured.num_batches_tracked.data) == 3


def test_a_captured_training_step_with_batch_norm_equals_eager_steps_bit_for_bit() -> None:
    # forward (batch statistics, running ones updated), loss.backward(), opt.step():
    # N replays give the parameters and buffers of N eager steps exactly.
    def make() -> Any:
        net = nn.Sequential(nn.BatchNorm2d(2, dtype=np.float64), nn.MaxPool2d(2),
                            nn.BatchNorm2d(2, momentum=None, dtype=np.float64))
        with tg.no_grad():
            net.layers[0].weight[...] = np.array([0.5, 2.0])
        return net, tg.optim.SGD(net.parameters(), lr=0.1)

    def step_for(net: Any, opt: Any) -> Any:
        def step(x: tg.Tensor, t: tg.Tensor) -> tg.Tensor:
            opt.zero_grad()
            loss = ((net(x) - t) ** 2).mean()
            loss.backward()
            opt.step()
            return loss
        return step
    (a, opt_a), (b, opt_b) = make(), make()
    g = tg.capture(step_for(a, opt_a), tg.placeholder((None, 2, 4, 4), "float64"),
                   tg.placeholder((None, 2, 2, 2), "float64"))
    eager = step_for(b, opt_b)
    rng = np.random.default_rng(0)
    for batch in (3, 2, 3):
        x, t = rng.standard_normal((batch, 2, 4, 4)), rng.standard_normal((batch, 2, 2, 2))
        np.testing.assert_array_equal(g(x, t).data, eager(tg.tensor(x), tg.tensor(t)).data)
    for (name, mine), want in zip(a.state_dict().items(), b.state_dict().values()):
        np.testing.assert_array_equal(mine, want, err_msg=name)
    assert int(a.layers[2].num_batches_tracked.data) == 3


def test_capturing_an_update_of_plain_tensors_is_refused_with_the_fix() -> None:
    rm, rv = tg.tensor(np.zeros(3)), tg.tensor(np.ones(3))
    with pytest.raises(tg.CaptureError, match=r"batch_norm: training mode updates running_mean "
                                              r"in place, .* plain Tensor .*RunningStat"):
        tg.capture(lambda x: tg.batch_norm(x, rm, rv, training=True),
                   tg.placeholder((None, 3), "float64"))
    np.testing.assert_array_equal(rm.data, np.zeros(3))             # nothing half-done
    # Batch statistics without running ones have nothing to lose: captured, replayed.
    g = tg.capture(lambda x: tg.batch_norm(x, None, None, training=True),
                   tg.placeholder((None, 3), "float64"))
    x = np.random.default_rng(0).standard_normal((5, 3))
    np.testing.assert_array_equal(g(x).data, tg.batch_norm(x, None, None, training=True).data)


def test_an_eval_mode_net_captures_and_replays() -> None:
    net = nn.Sequential(nn.BatchNorm2d(3), nn.MaxPool2d(2))
    rng = np.random.default_rng(0)
    for _ in range(3):
        net(rng.standard_normal((4, 3, 4, 4)).astype(np.float32))    # training: running stats move
    net.eval()
    g = tg.capture(net, tg.placeholder((None, 3, 4, 4)))
    assert "batch_norm" in {n.op.name for n in g.nodes}
    for batch in (1, 5):
        x = rng.standard_normal((batch, 3, 4, 4)).astype(np.float32)
        np.testing.assert_array_equal(g(x).data, net(x).data)
    # The running statistics are read at each replay (not frozen at capture), as
    # parameters are: statistics loaded after the capture are used.
    assert {"running_mean", "running_var"} <= set(g.parameters)
    state = net.state_dict()
    state["layers.0.running_mean"] = state["layers.0.running_mean"] + 1
    net.load_state_dict(state)
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(g(x).data, net(x).data)


def test_a_captured_training_step_through_batch_statistics_replays_bit_for_bit() -> None:
    # No running statistics to update: the step (forward, tg.grad) is a graph;
    # the VJPs get the statistics the replayed forward saved.
    bn = nn.BatchNorm2d(3, track_running_stats=False, dtype=np.float64)
    params = bn.parameters()

    def step(x: tg.Tensor) -> Any:
        y = tg.max_pool2d(bn(x), 2)
        loss = (y * y * y).sum()
        return (loss, *tg.grad(loss, params))
    g = tg.capture(step, tg.placeholder((None, 3, 4, 4), "float64"))
    assert {"batch_norm_train", "batch_norm_train_vjp1"} <= {n.op.name for n in g.nodes}
    rng = np.random.default_rng(0)
    for batch in (2, 5):
        x = rng.standard_normal((batch, 3, 4, 4))
        for got, want in zip(g(x), step(tg.tensor(x))):
            np.testing.assert_array_equal(got.data, want.data)


# ---------------------------------------------------------------------------
# Modules

def test_module_parameters_and_buffers_have_pytorchs_names_and_dtypes() -> None:
    bn = nn.BatchNorm2d(4)
    sd = bn.state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert sd["num_batches_tracked"].dtype == np.int64 and sd["num_batches_tracked"].shape == ()
    assert sd["weight"].dtype == np.float32
    np.testing.assert_array_equal(sd["running_var"], np.ones(4))
    assert list(nn.BatchNorm1d(2, affine=False, track_running_stats=False).state_dict()) == []
    assert repr(nn.BatchNorm1d(2)) == ("BatchNorm1d(2, eps=1e-05, momentum=0.1, affine=True, "
                                       "track_running_stats=True)")


def test_train_and_eval_switch_the_statistics() -> None:
    bn = nn.BatchNorm1d(3, momentum=0.5, dtype=np.float64)
    x, *_ = data((8, 3))
    y = bn(x)
    np.testing.assert_allclose(y.data, naive_batch_norm(x, None, None, np.ones(3), np.zeros(3)))
    assert int(bn.num_batches_tracked.data) == 1
    np.testing.assert_allclose(bn.running_mean.data, 0.5 * x.mean(0))
    bn.eval()
    rm, rv = bn.running_mean.data.copy(), bn.running_var.data.copy()
    np.testing.assert_allclose(bn(x).data, naive_batch_norm(x, rm, rv, np.ones(3), np.zeros(3)))
    assert int(bn.num_batches_tracked.data) == 1
    np.testing.assert_array_equal(bn.running_mean.data, rm)


def test_reset_running_stats() -> None:
    bn = nn.BatchNorm1d(2)
    bn(np.random.default_rng(0).standard_normal((4, 2)))
    assert int(bn.num_batches_tracked.data) == 1 and bn.running_mean.data.any()
    bn.reset_running_stats()
    np.testing.assert_array_equal(bn.running_mean.data, np.zeros(2))
    np.testing.assert_array_equal(bn.running_var.data, np.ones(2))
    assert int(bn.num_batches_tracked.data) == 0


def test_momentum_none_is_the_cumulative_average() -> None:
    bn = nn.BatchNorm1d(2, momentum=None, dtype=np.float64)
    batches = [data((4, 2), seed)[0] for seed in range(3)]
    for xb in batches:
        bn(xb)
    np.testing.assert_allclose(bn.running_mean.data, np.mean([xb.mean(0) for xb in batches], 0))


def test_without_running_stats_eval_uses_the_batch() -> None:
    bn = nn.BatchNorm2d(3, track_running_stats=False, affine=False).eval()
    x = data((2, 3, 2, 2))[0].astype(np.float32)
    np.testing.assert_allclose(bn(x).data, naive_batch_norm(x, None, None, np.ones(3),
                                                           np.zeros(3)), rtol=1e-5, atol=1e-6)
    assert bn.weight is None and bn.running_mean is None


def test_module_errors_name_the_module_and_the_shapes() -> None:
    net = nn.Sequential(nn.BatchNorm2d(3))
    with pytest.raises(ValueError, match=r"BatchNorm2d '0': expected a 4-D \(N, C, H, W\) input, "
                                         r"got shape \(2, 3, 4\)"):
        net(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm2d '0': expected 3 channels \(num_features\) "
                                         r"on axis 1, got input shape \(2, 4, 5, 5\)"):
        net(np.zeros((2, 4, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm1d 'batchnorm1d': expected more than 1 value "
                                         r"per channel when training, got input shape \(1, 3\)"):
        nn.BatchNorm1d(3)(np.zeros((1, 3)))
    nn.BatchNorm1d(3).eval()(np.zeros((1, 3)))        # a single example is fine in eval mode
    with pytest.raises(ValueError, match=r"BatchNorm1d: num_features must be a positive int"):
        nn.BatchNorm1d(0)


def test_a_net_with_batch_norm_trains() -> None:
    # Gradients reach every parameter through batch norm and pooling, and SGD lowers the loss.
    rng = np.random.default_rng(0)
    net = nn.Sequential(nn.BatchNorm2d(2, dtype=np.float64), nn.MaxPool2d(2))
    x = rng.standard_normal((8, 2, 4, 4))
    target = rng.standard_normal((8, 2, 2, 2))
    losses = []
    for _ in range(20):
        loss = ((net(x) - target) ** 2).mean()
        losses.append(float(loss.data))
        net.zero_grad()
        loss.backward()
        with tg.no_grad():
            for p in net.parameters():
                p -= 0.5 * p.grad
    assert losses[-1] < 0.8 * losses[0]


# ---------------------------------------------------------------------------
# PyTorch as the oracle (slow: importing torch takes seconds)

@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES)
def test_functional_matches_pytorch(shape: Any) -> None:
    torch = require_module("torch")
    for training in (True, False):
        x, w, b, rm, rv = data(shape)
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        trm, trv = torch.tensor(rm), torch.tensor(rv)
        ref = torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training, 0.2, 1e-4)
        g = np.random.default_rng(1).standard_normal(shape)
        ref.backward(torch.tensor(g))
        gx, gw, gb = (tg.tensor(a, requires_grad=True) for a in (x, w, b))
        grm, grv = tg.tensor(rm.copy()), tg.tensor(rv.copy())
        y = tg.batch_norm(gx, grm, grv, gw, gb, training, 0.2, 1e-4)
        y.backward(g)
        for ours, theirs in [(y, ref), (grm, trm), (grv, trv), (gx.grad, tx.grad),
                             (gw.grad, tw.grad), (gb.grad, tb.grad)]:
            np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("kind,shape", [("2d", (8, 3, 5, 5)), ("1d", (8, 3)), ("1d", (6, 3, 7))])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_modules_match_pytorch_with_its_state_dict(kind: str, shape: Any, momentum: Any) -> None:
    torch = require_module("torch")
    rng = np.random.default_rng(0)
    theirs = (torch.nn.BatchNorm2d if kind == "2d" else torch.nn.BatchNorm1d)(3, momentum=momentum)
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.uniform_(-1, 1)
        theirs.running_mean.uniform_(-1, 1)
    ours = (nn.BatchNorm2d if kind == "2d" else nn.BatchNorm1d)(3, momentum=momentum)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for _ in range(3):                              # training steps: outputs and running stats
        x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
        np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).detach().numpy(),
                                   rtol=1e-4, atol=1e-5)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), rtol=1e-5, atol=1e-6)
        assert ours.state_dict()[k].dtype == v.numpy().dtype, k
    ours.eval()
    theirs.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    # and back: our state_dict loads into PyTorch
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
