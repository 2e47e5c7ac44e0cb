"""The eager optimizer step written in place (one pass per parameter group,
Adam and SGD into reusable work arrays) and the other shortcuts made for the
DQN loop (benchmarks/bench_dqn.py): Linear without recording, one version
epoch per step. Each must behave exactly as before.

Oracles: torch.optim over several steps (float64, two groups, a parameter
left without a gradient), the update formulas written out with temporaries
(same bits in float32), the recorded Linear path, and tracemalloc for the
"no temporaries" claim.
"""
import math
import tracemalloc

import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph import nn, optim

SHAPES = [(4, 3), (3,), (4, 3), (2, 4)]   # two of the same shape: they share work arrays


def _params(rng, dtype=np.float64):
    return [rng.normal(size=s).astype(dtype) for s in SHAPES]


TORCH_CASES = [
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1)),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, amsgrad=True, weight_decay=0.05)),
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
]


@pytest.mark.parametrize("name,kw", TORCH_CASES)
def test_steps_equal_torch_optim(name, kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    init = _params(rng)
    ours = [tg.tensor(a.copy(), requires_grad=True) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    # two groups, the second with its own lr
    opt = getattr(optim, name)([{"params": ours[:2]}, {"params": ours[2:], "lr": 0.03}], **kw)
    topt = getattr(torch.optim, name)([{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.03}],
                                      **kw)
    for step in range(6):
        grads = [rng.normal(size=s) for s in SHAPES]
        for i, (p, t, g) in enumerate(zip(ours, theirs, grads)):
            skip = i == 3 and step in (1, 2)        # no gradient: left alone by both
            p.grad = None if skip else tg.tensor(g)
            t.grad = None if skip else torch.from_numpy(g.copy())
        before = ours[3].data.copy()
        opt.step()
        topt.step()
        if step in (1, 2):
            np.testing.assert_array_equal(ours[3].data, before)
        for i, (p, t) in enumerate(zip(ours, theirs)):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12, atol=1e-14,
                                       err_msg=f"{name} {kw}: parameter {i} after step {step + 1}")
    saved = opt.state_dict()["state"]
    for i, t in enumerate(theirs):     # the buffers too, in PyTorch's layout
        for k, v in topt.state[t].items():
            if k != "step":
                np.testing.assert_allclose(saved[i][k], v.numpy(), rtol=1e-12, atol=1e-14,
                                           err_msg=f"{name} {kw}: buffer {k} of parameter {i}")


def _adam_with_temporaries(theta, grads, lr, b1, b2, eps, wd):
    """Adam as the formula reads, a temporary per operation (the old code)."""
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, 1):
        if wd:
            g = g + wd * theta
        m = b1 * m + (1.0 - b1) * g
        v = b2 * v + (1.0 - b2) * (g * g)
        denom = np.sqrt(v) / math.sqrt(1.0 - b2 ** t) + eps
        theta = theta - (lr / (1.0 - b1 ** t)) * (m / denom)
    return theta


def _sgd_with_temporaries(theta, grads, lr, mu, damp, wd, nesterov):
    buf = None
    for g in grads:
        if wd:
            g = g + wd * theta
        if mu:
            buf = g.copy() if buf is None else mu * buf + (1.0 - damp) * g
            g = g + mu * buf if nesterov else buf
        theta = theta - lr * g
    return theta


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_in_place_adam_has_the_bits_of_the_formula_with_temporaries(wd):
    rng = np.random.default_rng(1)
    init = _params(rng, np.float32)
    grads = [[rng.normal(size=s).astype(np.float32) for s in SHAPES] for _ in range(5)]
    ps = [tg.tensor(a.copy(), requires_grad=True) for a in init]
    opt = optim.Adam(ps, lr=1e-2, weight_decay=wd)
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = tg.tensor(g)
        opt.step()
    for i, p in enumerate(ps):
        ref = _adam_with_temporaries(init[i], [gs[i] for gs in grads], 1e-2, 0.9, 0.999, 1e-8, wd)
        assert p.dtype == np.float32
        np.testing.assert_array_equal(p.data, ref, err_msg=f"parameter {i}")


@pytest.mark.parametrize("kw", [dict(), dict(momentum=0.9, dampening=0.1, weight_decay=0.01),
                                dict(momentum=0.9, nesterov=True)])
def test_in_place_sgd_has_the_bits_of_the_formula_with_temporaries(kw):
    rng = np.random.default_rng(2)
    init = _params(rng, np.float32)
    grads = [[rng.normal(size=s).astype(np.float32) for s in SHAPES] for _ in range(4)]
    ps = [tg.tensor(a.copy(), requires_grad=True) for a in init]
    opt = optim.SGD(ps, lr=0.1, **kw)
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = tg.tensor(g)
        opt.step()
    for i, p in enumerate(ps):
        ref = _sgd_with_temporaries(init[i], [gs[i] for gs in grads], 0.1, kw.get("momentum", 0.0),
                                    kw.get("dampening", 0.0), kw.get("weight_decay", 0.0),
                                    kw.get("nesterov", False))
        np.testing.assert_array_equal(p.data, ref, err_msg=f"parameter {i}")


@pytest.mark.parametrize("make", [lambda ps: optim.Adam(ps, lr=1e-3, weight_decay=0.1),
                                  lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True)])
def test_a_step_makes_no_temporaries_the_size_of_a_parameter(make):
    p = tg.tensor(np.ones((500, 500)), requires_grad=True)     # 2 MB
    opt = make([p])
    p.grad = tg.tensor(np.full((500, 500), 0.5))
    opt.step()                          # the first step allocates the state and work arrays
    tracemalloc.start()
    try:
        opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000, f"the step allocated {peak} bytes at its peak"


def test_work_arrays_are_not_in_the_state():
    ps = [tg.tensor(np.ones((2, 3)), requires_grad=True)]
    opt = optim.Adam(ps, weight_decay=0.1)
    ps[0].grad = tg.tensor(np.ones((2, 3)))
    opt.step()
    assert set(opt.state_dict()["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}


def test_a_detached_copy_sees_two_steps_as_a_change():
    # a target network that shares memory with the online one: a graph that
    # saved it raises after the optimizer wrote the memory, also after the
    # second step (which reuses the first step's bookkeeping)
    p = tg.tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    x = tg.tensor(np.ones(3), requires_grad=True)
    for _ in range(2):
        d = p.detach()
        y = (x * d).sum()
        p.grad = tg.tensor(np.ones(3))
        opt.step()
        with pytest.raises(RuntimeError, match="modified in place through another tensor that shares its memory"):
            y.backward()


# -- Linear without recording ------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 4), (4,), (2, 3, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_under_no_grad_has_the_bits_of_the_recorded_path(shape, bias):
    layer = nn.Linear(4, 3, bias=bias, seed=0)
    x = tg.tensor(np.random.default_rng(0).normal(size=shape).astype(np.float32))
    recorded = layer(x)
    assert recorded.node is not None
    with tg.no_grad():
        fast = layer(x)
    assert isinstance(fast, tg.Tensor) and fast.node is None and not fast.requires_grad
    assert fast.dtype == recorded.dtype and fast.shape == recorded.shape
    np.testing.assert_array_equal(fast.data, recorded.data)


def test_linear_under_no_grad_with_other_dtypes_and_bad_shapes():
    layer = nn.Linear(4, 3, seed=0)
    x64 = tg.tensor(np.random.default_rng(0).normal(size=(2, 4)))
    recorded = layer(x64)          # a float64 Tensor meets float32 weights: promoted
    with tg.no_grad():
        out = layer(x64)
        assert out.dtype == recorded.dtype == np.float64
        np.testing.assert_array_equal(out.data, recorded.data)
        assert layer(x64.data).dtype == np.float32     # arrays take the layer's dtype
        with pytest.raises(ValueError, match=r"in_features=4, got shape \(2, 5\)"):
            layer(np.ones((2, 5), np.float32))


def test_linear_under_no_grad_still_checks_anomalies():
    layer = nn.Linear(2, 1, seed=0)
    layer.weight.data = np.array([[np.inf, 0.0]], np.float32)
    with tg.autograd.detect_anomaly(), tg.no_grad():
        with pytest.raises(tg.AnomalyError):
            layer(np.ones((1, 2), np.float32))


def test_adam_group_steps_mix_with_replays_and_a_reload_bit_for_bit():
    # eager steps update a group's flat buffers at once, a captured replay one
    # parameter at a time through the same state, load_state_dict brings in
    # new arrays: whatever the mix, the same bits as eager steps only
    def make():
        return nn.Sequential(nn.Linear(3, 4, seed=1), nn.ReLU(), nn.Linear(4, 2, seed=2))
    net, ref = make(), make()
    opt = optim.Adam(net.parameters(), lr=1e-2, weight_decay=0.01)
    ref_opt = optim.Adam(ref.parameters(), lr=1e-2, weight_decay=0.01)

    def step(model, o, x, t):
        o.zero_grad()
        loss = ((model(x) - t) ** 2).mean()
        loss.backward()
        o.step()
        return loss
    g = tg.capture(lambda x, t: step(net, opt, x, t), tg.placeholder((5, 3)),
                   tg.placeholder((5, 2)))
    rng = np.random.default_rng(3)
    for how in ["eager", "eager", "replay", "replay", "reload", "eager", "replay", "eager"]:
        x = rng.normal(size=(5, 3)).astype(np.float32)
        t = rng.normal(size=(5, 2)).astype(np.float32)
        if how == "reload":
            opt.load_state_dict(opt.state_dict())
            how = "eager"
        if how == "eager":
            step(net, opt, tg.tensor(x), tg.tensor(t))
        else:
            g(x, t)
        step(ref, ref_opt, tg.tensor(x), tg.tensor(t))
        for p, q in zip(net.parameters(), ref.parameters()):
            np.testing.assert_array_equal(p.data, q.data)
    assert opt._flat, "the eager steps did not take the grouped path"
    for a, b in zip(opt.state_dict()["state"].values(), ref_opt.state_dict()["state"].values()):
        assert a["step"] == b["step"] == 8
        np.testing.assert_array_equal(a["exp_avg_sq"], b["exp_avg_sq"])


def test_a_deep_copy_of_adam_steps_on_its_own():
    import copy
    rng = np.random.default_rng(4)
    ps = [tg.tensor(a, requires_grad=True) for a in _params(rng)]
    opt = optim.Adam(ps, lr=1e-2)
    grads = [[rng.normal(size=s) for s in SHAPES] for _ in range(4)]

    def step(o, params, gs):
        for p, g in zip(params, gs):
            p.grad = tg.tensor(g)
        o.step()
    step(opt, ps, grads[0])
    twin = copy.deepcopy({"params": ps, "opt": opt})     # parameters and optimizer together
    for gs in grads[1:]:
        step(opt, ps, gs)
        step(twin["opt"], twin["params"], gs)
    for p, q in zip(ps, twin["params"]):
        np.testing.assert_array_equal(p.data, q.data)
    for st, tw in zip(opt.state_dict()["state"].values(), twin["opt"].state_dict()["state"].values()):
        np.testing.assert_array_equal(st["exp_avg"], tw["exp_avg"])
        np.testing.assert_array_equal(st["exp_avg_sq"], tw["exp_avg_sq"])
