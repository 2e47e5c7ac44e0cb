"""Optimizers and schedules against their update rules written out in numpy.

The references below are written from the formulas (the book's chapter 4 and
PyTorch's documentation), independently of tensorgraph/optim.py; gradients
are fed in as fixed random arrays so that only the update rule is tested,
and in float64 so that the comparison is exact up to rounding.
"""
import math
import re

import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph import optim

RTOL, ATOL = 1e-10, 1e-13
SHAPES = [(3, 4), (5,)]


def make_params(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [tg.tensor(rng.normal(size=s).astype(dtype), requires_grad=True) for s in SHAPES]


def grad_sequence(steps, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=s) for s in SHAPES] for _ in range(steps)]


def run(opt, params, grads):
    """Feed each step's gradients to the optimizer; return the parameter
    values after every step."""
    history = []
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = tg.tensor(g.astype(p.dtype))
        opt.step()
        history.append([p.data.copy() for p in params])
    return history


# -- references, one per rule ------------------------------------------------

def ref_sgd(theta, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    theta, buf, out = theta.copy(), None, []
    for g in grads:
        d = g + weight_decay * theta
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        theta = theta - lr * d
        out.append(theta)
    return out


def ref_adagrad(theta, grads, lr, lr_decay=0.0, weight_decay=0.0, init=0.0, eps=1e-10):
    theta, r, out = theta.copy(), np.full_like(theta, init), []
    for i, g in enumerate(grads, start=1):
        g = g + weight_decay * theta
        r = r + g * g                                     # r_i = r_{i-1} + g ⊙ g
        theta = theta - lr / (1 + (i - 1) * lr_decay) / (eps + np.sqrt(r)) * g
        out.append(theta)
    return out


def ref_rmsprop(theta, grads, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                centered=False):
    theta, r, gbar, buf, out = theta.copy(), 0.0, 0.0, 0.0, []
    for g in grads:
        g = g + weight_decay * theta
        r = alpha * r + (1 - alpha) * g * g               # r_i = ρ r_{i-1} + (1 - ρ) g ⊙ g
        if centered:
            gbar = alpha * gbar + (1 - alpha) * g
            denom = np.sqrt(r - gbar ** 2) + eps
        else:
            denom = np.sqrt(r) + eps
        if momentum:
            buf = momentum * buf + g / denom
            theta = theta - lr * buf
        else:
            theta = theta - lr * g / denom
        out.append(theta)
    return out


def ref_adam(theta, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
    b1, b2 = betas
    theta, m, v, vmax, out = theta.copy(), 0.0, 0.0, 0.0, []
    for i, g in enumerate(grads, start=1):
        g = g + weight_decay * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if amsgrad:
            vmax = np.maximum(vmax, v)
        m_hat = m / (1 - b1 ** i)
        v_hat = (vmax if amsgrad else v) / (1 - b2 ** i)
        theta = theta - lr * m_hat / (eps + np.sqrt(v_hat))
        out.append(theta)
    return out


CASES = [
    (optim.SGD, ref_sgd, dict(lr=0.1)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.9)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.9, dampening=0.3)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.8, nesterov=True)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (optim.SGD, ref_sgd, dict(lr=0.1, weight_decay=0.1)),
    (optim.AdaGrad, ref_adagrad, dict(lr=0.1)),
    (optim.AdaGrad, ref_adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.01, eps=1e-6)),
    (optim.RMSProp, ref_rmsprop, dict(lr=0.01)),
    (optim.RMSProp, ref_rmsprop, dict(lr=0.01, alpha=0.9, centered=True)),
    (optim.RMSProp, ref_rmsprop, dict(lr=0.01, momentum=0.9, weight_decay=0.01)),
    (optim.RMSProp, ref_rmsprop, dict(lr=0.01, momentum=0.5, centered=True, eps=1e-6)),
    (optim.Adam, ref_adam, dict(lr=0.01)),
    (optim.Adam, ref_adam, dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    (optim.Adam, ref_adam, dict(lr=0.01, amsgrad=True)),
]
IDS = [f"{c.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for c, _, kw in CASES]


@pytest.mark.parametrize("cls,ref,kw", CASES, ids=IDS)
def test_update_rule_matches_reference(cls, ref, kw):
    params = make_params()
    start = [p.data.copy() for p in params]
    grads = grad_sequence(5)
    got = run(cls(params, **kw), params, grads)
    for j in range(len(params)):
        want = ref(start[j], [gs[j] for gs in grads], **kw)
        for step in range(len(grads)):
            np.testing.assert_allclose(got[step][j], want[step], rtol=RTOL, atol=ATOL,
                                       err_msg=f"param {j}, step {step + 1}")


def test_sgd_first_steps_by_hand():
    # θ = 1, g = 2 then 4, lr 0.1, momentum 0.5: b = 2, θ = 0.8; b = 0.5·2 + 4 = 5, θ = 0.3.
    p = tg.tensor(np.array([1.0]), requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.5)
    p.grad = tg.tensor(np.array([2.0]))
    opt.step()
    np.testing.assert_allclose(p.data, [0.8], rtol=1e-15)
    p.grad = tg.tensor(np.array([4.0]))
    opt.step()
    np.testing.assert_allclose(p.data, [0.3], rtol=1e-14)


def test_adam_first_step_is_lr_times_sign():
    # After one step m̃ = g and ṽ = g², so θ moves by lr·g/(|g| + δ) ≈ lr·sign(g).
    p = tg.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    opt = optim.Adam([p], lr=0.1, eps=0.0)
    p.grad = tg.tensor(np.array([0.3, -5.0, 1e-3]))
    opt.step()
    np.testing.assert_allclose(p.data, [0.9, -1.9, 2.9], rtol=1e-14)


def quadratic(theta, a, b):
    """f(θ) = ½ Σ a θ² + Σ b θ, whose gradient a θ + b is known in closed form."""
    return 0.5 * (a * theta * theta).sum() + (b * theta).sum()


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_matches_the_books_velocity_form(nesterov):
    """Chapter 4: v_i = m v_{i-1} - ε ∇f(θ_{i-1} [+ m v_{i-1} for Nesterov]);
    θ_i = θ_{i-1} + v_i, with true gradients from backward. PyTorch's Nesterov
    form tracks the look-ahead point θ + m v, so that is what the parameter
    must equal."""
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.5, 2.0, size=4), rng.normal(size=4)
    theta0 = rng.normal(size=4)
    lr, m = 0.1, 0.9
    p = tg.tensor(theta0.copy(), requires_grad=True)
    opt = optim.SGD([p], lr=lr, momentum=m, nesterov=nesterov)
    theta, v = theta0.copy(), np.zeros(4)
    for _ in range(6):
        opt.zero_grad()
        quadratic(p, a, b).backward()
        opt.step()
        look = theta + m * v if nesterov else theta
        v = m * v - lr * (a * look + b)
        theta = theta + v
        np.testing.assert_allclose(p.data, theta + m * v if nesterov else theta, rtol=1e-12)


@pytest.mark.parametrize("cls,kw", [(optim.SGD, dict(lr=0.1, momentum=0.9)), (optim.AdaGrad, {}),
                                    (optim.RMSProp, dict(centered=True)), (optim.Adam, {})])
def test_updates_in_place_without_a_graph(cls, kw):
    params = make_params(dtype=np.float32)
    arrays = [p.data for p in params]
    opt = cls(params, **kw)
    for _ in range(2):
        opt.zero_grad()
        loss = sum(((p * p).sum() for p in params), tg.tensor(np.float32(0)))
        loss.backward()
        opt.step()
    for p, arr in zip(params, arrays):
        assert p.data is arr                   # the same array, updated in place
        assert p.dtype == np.float32           # Python-float hyperparameters keep float32
        assert p.node is None and p.requires_grad
    for buffers in opt.state.values():
        for v in buffers.values():
            if isinstance(v, np.ndarray):
                assert v.dtype == np.float32


def test_params_without_grad_are_skipped():
    params = make_params()
    before = params[1].data.copy()
    opt = optim.Adam(params, lr=0.1)
    params[0].grad = tg.tensor(np.ones(SHAPES[0]))
    opt.step()
    np.testing.assert_array_equal(params[1].data, before)
    assert params[1] not in opt.state or not opt.state[params[1]]
    assert opt.state[params[0]]["step"] == 1


def test_zero_grad():
    params = make_params()
    opt = optim.SGD(params, lr=0.1)
    for p in params:
        p.grad = tg.tensor(np.ones(p.shape))
    opt.zero_grad(set_to_none=False)
    assert all(np.array_equal(p.grad.data, np.zeros(p.shape)) for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_accepts_a_module_like_object_and_param_groups():
    params = make_params()

    class Model:
        def parameters(self):
            return params

    opt = optim.SGD(Model(), lr=0.5)
    assert opt.param_groups[0]["params"] == params
    opt = optim.SGD([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.1}], lr=1.0)
    start = [p.data.copy() for p in params]
    for p in params:
        p.grad = tg.tensor(np.ones(p.shape))
    opt.step()
    np.testing.assert_allclose(params[0].data, start[0] - 1.0)
    np.testing.assert_allclose(params[1].data, start[1] - 0.1)


def test_closure_is_called_with_recording_on():
    p = tg.tensor(np.array([2.0]), requires_grad=True)
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with tg.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 4.0
    np.testing.assert_array_equal(p.data, [1.0])  # 2 - 0.25 · 4


def continuation(cls, kw, through_file=None):
    """Train 3 steps, checkpoint, then continue 3 more both in the original
    optimizer and in a fresh one restored from the checkpoint."""
    grads = grad_sequence(6, seed=7)
    params = make_params()
    opt = cls(params, **kw)
    run(opt, params, grads[:3])
    sd = opt.state_dict()
    if through_file is not None:
        tg.save({"optimizer": sd}, through_file)
        sd = tg.load(through_file)["optimizer"]
    copies = [tg.tensor(p.data.copy(), requires_grad=True) for p in params]
    fresh = cls(copies, lr=123.0)  # hyperparameters come back from the state too
    fresh.load_state_dict(sd)
    return run(opt, params, grads[3:]), run(fresh, copies, grads[3:])


@pytest.mark.parametrize("cls,ref,kw", CASES, ids=IDS)
def test_state_dict_round_trip_continues_identically(cls, ref, kw):
    a, b = continuation(cls, kw)
    for sa, sb in zip(a, b):
        for x, y in zip(sa, sb):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("cls,kw", [(optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
                                    (optim.Adam, dict(lr=0.01, amsgrad=True))])
def test_state_dict_round_trip_through_a_file(cls, kw, tmp_path):
    a, b = continuation(cls, kw, through_file=tmp_path / "opt.npz")
    for sa, sb in zip(a, b):
        for x, y in zip(sa, sb):
            np.testing.assert_array_equal(x, y)


def test_state_dict_is_a_copy_and_has_pytorch_layout():
    params = make_params()
    opt = optim.Adam(params, lr=0.01)
    run(opt, params, grad_sequence(1))
    sd = opt.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert sd["param_groups"][0]["params"] == [0, 1]
    assert sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sorted(sd["state"][0]) == ["exp_avg", "exp_avg_sq", "step"]
    saved = sd["state"][0]["exp_avg"].copy()
    run(opt, params, grad_sequence(1, seed=9))
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], saved)


def test_load_state_dict_errors():
    params = make_params()
    opt = optim.Adam(params)
    run(opt, params, grad_sequence(1))
    sd = opt.state_dict()
    with pytest.raises(ValueError, match=r"group 0 has 2 parameter\(s\) in the state and 1"):
        optim.Adam([make_params()[0]]).load_state_dict(sd)
    wrong = [tg.tensor(np.zeros((4, 3)), requires_grad=True), make_params()[1]]
    with pytest.raises(ValueError, match=r"buffer 'exp_avg' of parameter 0 has shape \(3, 4\), "
                                         r"the parameter \(4, 3\)"):
        optim.Adam(wrong).load_state_dict(sd)
    with pytest.raises(ValueError, match="expected a dict with 'state' and 'param_groups'"):
        opt.load_state_dict({"weights": 1})


def test_constructor_errors():
    p = tg.tensor(np.zeros(3), requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="appears more than once"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="not a leaf .* op 'mul'"):
        optim.SGD([p * 2.0], lr=0.1)
    with pytest.raises(TypeError, match="parameter 0 is a ndarray, not a Tensor"):
        optim.SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor of shape \\(3,\\); wrap it in a list"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="lr must be >= 0, got -1"):
        optim.Adam([p], lr=-1)
    with pytest.raises(ValueError, match="nesterov momentum needs momentum > 0"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas must be two numbers in"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(TypeError, match=r"unknown hyperparameter\(s\) \['momentum'\]"):
        optim.Adam([{"params": [p], "momentum": 0.9}])


def test_step_rejects_a_gradient_of_the_wrong_shape():
    p = tg.tensor(np.zeros(3), requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    p.grad = tg.tensor(np.zeros(4))
    with pytest.raises(RuntimeError, match=r"gradient of shape \(4,\) for a parameter of shape \(3,\)"):
        opt.step()


# -- schedules ------------------------------------------------------------------

def test_step_lr():
    opt = optim.SGD(make_params(), lr=1.0)
    sched = optim.StepLR(opt, step_size=3, gamma=0.1)
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    np.testing.assert_allclose(lrs, [1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01], rtol=1e-12)
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]


def test_exponential_lr_with_two_groups_and_state_dict():
    p, q = make_params()
    opt = optim.SGD([{"params": [p]}, {"params": [q], "lr": 0.5}], lr=2.0)
    sched = optim.ExponentialLR(opt, gamma=0.9)
    for _ in range(4):
        sched.step()
    np.testing.assert_allclose(sched.get_last_lr(), [2.0 * 0.9 ** 4, 0.5 * 0.9 ** 4], rtol=1e-12)
    # Resume into a fresh optimizer and schedule: the same learning rates follow.
    opt2 = optim.SGD([{"params": [p]}, {"params": [q], "lr": 0.5}], lr=2.0)
    sched2 = optim.ExponentialLR(opt2, gamma=0.9)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    sched.step()
    sched2.step()
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert sched2.last_epoch == 5


def test_step_lr_rejects_bad_step_size():
    with pytest.raises(ValueError, match="step_size must be a positive integer, got 0"):
        optim.StepLR(optim.SGD(make_params(), lr=1.0), step_size=0)


def test_optimizer_repr_names_hyperparameters():
    r = repr(optim.SGD(make_params(), lr=0.1, momentum=0.9))
    assert r.startswith("SGD (") and "lr=0.1" in r and "momentum=0.9" in r
    assert optim.Adagrad is optim.AdaGrad and optim.RMSprop is optim.RMSProp
    assert math.isclose(optim.Adam(make_params()).defaults["lr"], 1e-3)


# first step: SGD θ − lr·g = 1 − 0.5·2; Adam moves by lr·m̃/√ṽ = lr·sign(g): 1 − 0.5
@pytest.mark.parametrize("make, expected", [(lambda ps: optim.SGD(ps, lr=0.5), 0.0),
                                            (lambda ps: optim.Adam(ps, lr=0.5), 0.5)])
def test_step_updates_a_read_only_parameter_array(make, expected):
    # e.g. a parameter made from np.broadcast_to or a read-only buffer: numpy's
    # "output array is read-only" named nothing; the step now updates a copy.
    base = np.ones(3, dtype=np.float32)
    base.flags.writeable = False
    p = tg.nn.Parameter(base)
    (p * 2.0).sum().backward()
    make([p]).step()
    assert p.data.flags.writeable and not np.shares_memory(p.data, base)
    np.testing.assert_allclose(p.data, np.full(3, expected), atol=1e-6)
    np.testing.assert_array_equal(base, np.ones(3))


# ---------------------------------------------------------------------------
# load_state_dict refuses a state that does not fit (finding 5)

def _stepped(opt, params):
    for p in params:
        p.grad = tg.tensor(np.ones(p.shape))
    opt.step()
    return opt


def test_load_state_dict_refuses_another_optimizers_state():
    params = make_params()
    adam = _stepped(optim.Adam(params), params)
    sgd = optim.SGD(params, lr=0.1, momentum=0.9)
    before = [dict(g) for g in sgd.param_groups]
    with pytest.raises(ValueError, match=re.escape(
            "SGD.load_state_dict: the state comes from another optimizer (it looks like the "
            "state of Adam): group 0 has hyperparameters ['amsgrad', 'betas', 'eps'] that SGD "
            "has not, and lacks ['dampening', 'momentum', 'nesterov']")):
        sgd.load_state_dict(adam.state_dict())
    assert sgd.param_groups == before and sgd.state == {}        # nothing changed
    sgd_state = _stepped(optim.SGD(params, lr=0.1, momentum=0.9), params).state_dict()
    with pytest.raises(ValueError, match=r"RMSProp.load_state_dict: the state comes from another "
                                         r"optimizer \(it looks like the state of SGD\)"):
        optim.RMSProp(params).load_state_dict(sgd_state)
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: the state comes from another "
                                         r"optimizer \(it looks like the state of AdaGrad\)"):
        optim.Adam(params).load_state_dict(_stepped(optim.AdaGrad(params), params).state_dict())
    # An unknown set of hyperparameters is refused without a guess.
    odd = {"state": {}, "param_groups": [{"lr": 0.1, "rho": 0.9, "params": [0, 1]}]}
    with pytest.raises(ValueError, match=r"another optimizer: group 0 has hyperparameters "
                                         r"\['rho'\] that SGD has not"):
        optim.SGD(params, lr=0.1).load_state_dict(odd)
    # The same hyperparameter names with foreign buffers (e.g. edited by hand).
    bad = optim.SGD(params, lr=0.1, momentum=0.9).state_dict()
    bad["state"] = {0: {"exp_avg": np.zeros((3, 4))}}
    with pytest.raises(ValueError, match=r"the state of parameter 0 has buffers \['exp_avg'\] "
                                         r"that SGD does not keep"):
        optim.SGD(params, lr=0.1, momentum=0.9).load_state_dict(bad)


def test_load_state_dict_refuses_other_parameter_counts_and_shapes():
    params = make_params()
    state = _stepped(optim.SGD(params, lr=0.1, momentum=0.9), params).state_dict()
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: group 0 has 2 parameter\(s\) "
                                         r"in the state and 3 in the optimizer"):
        optim.SGD(make_params() + [tg.tensor(np.zeros(2), requires_grad=True)], lr=0.1,
                  momentum=0.9).load_state_dict(state)
    other = [tg.tensor(np.zeros(p.shape[::-1] if p.ndim == 2 else (7,)), requires_grad=True)
             for p in make_params()]
    fresh = optim.SGD(other, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: buffer 'momentum_buffer' of "
                                         r"parameter 0 has shape \(3, 4\), the parameter \(4, 3\)"):
        fresh.load_state_dict(state)
    assert fresh.state == {}
    two = optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.2}], lr=0.1,
                    momentum=0.9)
    with pytest.raises(ValueError, match=r"the state has 1 parameter group\(s\), the optimizer 2"):
        two.load_state_dict(state)
    # and the matching state loads and continues
    same = optim.SGD(params, lr=0.1, momentum=0.9)
    same.load_state_dict(state)
    np.testing.assert_array_equal(same.state[params[0]]["momentum_buffer"],
                                  state["state"][0]["momentum_buffer"])
