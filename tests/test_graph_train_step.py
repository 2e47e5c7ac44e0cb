"""A whole training step in the graph (issue 9): the optimizer's update as
effect ops, as TensorFlow's `apply_gradients` / `tf.assign`.

`opt.zero_grad(); loss.backward(); opt.step()` or `p -= lr * g` under no_grad,
captured once and replayed like `sess.run(train_op)`: N replays equal N eager
steps bit for bit, in the parameters and in the optimizer's state, at two
batch sizes, and after the graph passes. The reference is the eager loop
(the same optimizer class run on a copy of the model), and for plain SGD the
update formula written out in numpy."""
from __future__ import annotations

import re
import warnings
from typing import Any, Callable

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require_module
from tensorgraph import nn
from tensorgraph.graph import CaptureError, CaptureWarning
from tensorgraph.losses import cross_entropy
from tensorgraph.passes import (eliminate_common_subexpressions, eliminate_dead_code,
                                fold_constants, is_pure, optimize)


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(5, 7, seed=1), nn.Tanh(), nn.Linear(7, 3, seed=2))


def _batches(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        b = (4, 9)[i % 2]                                  # two batch sizes, alternating
        yield rng.standard_normal((b, 5)).astype(np.float32), rng.integers(0, 3, b)


OPTIMIZERS: dict[str, Callable[[Any], tg.optim.Optimizer]] = {
    "sgd": lambda ps: tg.optim.SGD(ps, lr=0.1),
    "momentum": lambda ps: tg.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "nesterov": lambda ps: tg.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda ps: tg.optim.Adam(ps, lr=0.01),
    "amsgrad": lambda ps: tg.optim.Adam(ps, lr=0.01, amsgrad=True, weight_decay=1e-2),
    "adagrad": lambda ps: tg.optim.Adagrad(ps, lr=0.1, lr_decay=0.01),
    "rmsprop": lambda ps: tg.optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
}


def _torch_step(net: nn.Module, opt: tg.optim.Optimizer):
    def step(x, y):
        opt.zero_grad()
        loss = cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def _eager(net: nn.Module, opt: tg.optim.Optimizer, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    opt.zero_grad()
    loss = cross_entropy(net(tg.tensor(x)), y)
    loss.backward()
    opt.step()
    return loss.data


def _same_state(a: tg.optim.Optimizer, b: tg.optim.Optimizer) -> None:
    sa, sb = a.state_dict()["state"], b.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        assert sa[i].keys() == sb[i].keys()
        for k in sa[i]:
            if isinstance(sa[i][k], np.ndarray):
                assert np.array_equal(sa[i][k], sb[i][k]), (i, k)
            else:
                assert sa[i][k] == sb[i][k], (i, k)


def _same_params(a: nn.Module, b: nn.Module) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert np.array_equal(p.data, q.data), name


@pytest.mark.parametrize("passes", [False, True])
@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_n_replays_equal_n_eager_steps_bit_for_bit(kind: str, passes: bool) -> None:
    net, ref = _net(), _net()
    opt, ref_opt = OPTIMIZERS[kind](net.parameters()), OPTIMIZERS[kind](ref.parameters())
    g = tg.capture(_torch_step(net, opt), tg.placeholder((None, 5)),
                   tg.placeholder((None,), "int64"))
    if passes:
        g = optimize(g)
    _same_params(net, ref)                        # the capture made no step
    assert opt.state == {}
    for x, y in _batches(6):
        loss = g(x, y)
        assert np.array_equal(loss.data, _eager(ref, ref_opt, x, y))
        _same_params(net, ref)
        _same_state(opt, ref_opt)
    changed = [not np.array_equal(p.data, q.data) for p, q in zip(net.parameters(),
                                                                   _net().parameters())]
    assert all(changed)                           # the replays did train
    assert kind == "sgd" or opt.state_dict()["state"]   # and kept state


def test_sgd_replay_equals_the_update_formula_written_in_numpy() -> None:
    # theta <- theta - lr * dL/dtheta, the gradient of 0.5 * mean((x @ w - t)^2) written out
    w = tg.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2), requires_grad=True,
                  name="w")
    opt = tg.optim.SGD([w], lr=0.1)

    def step(x, t):
        opt.zero_grad()
        loss = 0.5 * ((x @ w - t) ** 2).mean()
        loss.backward()
        opt.step()
        return loss
    g = tg.capture(step, tg.placeholder((None, 3)), tg.placeholder((None, 2)))
    theta = w.data.astype(np.float64)
    rng = np.random.default_rng(1)
    for n in (4, 6, 4):
        x = rng.standard_normal((n, 3)).astype(np.float32)
        t = rng.standard_normal((n, 2)).astype(np.float32)
        g(x, t)
        theta = theta - 0.1 * (x.T @ (x @ theta - t)) / (n * 2)
        np.testing.assert_allclose(w.data, theta, rtol=1e-5, atol=1e-6)


def test_the_listing_shows_the_updates_and_what_they_write() -> None:
    net = _net()
    opt = tg.optim.Adam(net.parameters(), lr=0.01, betas=(0.8, 0.99))
    g = tg.capture(_torch_step(net, opt), tg.placeholder((None, 5)),
                   tg.placeholder((None,), "int64"))
    text = str(g)
    names = [n for n, _ in net.named_parameters()]
    for k, name in enumerate(names):
        line = next(li for li in text.splitlines() if f"-> writes {name} " in li + " ")
        assert re.match(rf"\s*apply_adam{'' if k == 0 else f'_{k}'}\s+= apply_adam\({name}, ",
                        line), line
        assert "update=Adam(lr=0.01, betas=(0.8, 0.99))" in line
    assert [n.op.name for n in g.nodes[-4:]] == ["apply_adam"] * 4
    assert all(n.op.effect and not is_pure(n.op) for n in g.nodes[-4:])


def test_a_manual_update_under_no_grad_is_an_assignment() -> None:
    w = tg.tensor(np.ones((3, 2), np.float32), requires_grad=True, name="w")
    b = tg.tensor(np.zeros(2, np.float32), requires_grad=True, name="b")

    params = [w, b]

    def step(x):
        loss = ((x @ w + b) ** 2).mean()
        gw, gb = tg.grad(loss, params)
        with tg.no_grad():
            p = params[0]
            p -= 0.1 * gw                   # PyTorch's manual step
            params[1].sub_(gb, alpha=0.5)
        return loss
    g = tg.capture(step, tg.placeholder((None, 3)))
    assert np.array_equal(w.data, np.ones((3, 2))) and np.array_equal(b.data, [0, 0])
    ops = [n.op.name for n in g.nodes]
    assert ops.count("assign") == 2 and ops[-1] == "assign"
    text = str(g)
    assert "assign(w, sub) -> writes w" in text and "-> writes b" in text
    # eager reference: the same update by hand
    we, be = w.data.copy(), b.data.copy()
    for x in (np.full((2, 3), 0.5, np.float32), np.full((5, 3), -0.25, np.float32)):
        g(x)
        z = x @ we + be
        n = z.size
        dz = 2 * z / n
        we = we - np.float32(0.1) * (x.T @ dz)
        be = be - np.float32(0.5) * dz.sum(axis=0)
        np.testing.assert_allclose(w.data, we, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b.data, be, rtol=1e-5, atol=1e-6)


def test_reads_after_an_assignment_see_the_new_value_and_are_never_merged() -> None:
    # (w * 2).sum() before and after w -= 1: the same op on "w", but not the same value
    w = tg.tensor(np.ones(3, np.float32), requires_grad=True, name="w")

    def fn(x):
        before = (w * 2.0).sum() + x
        with tg.no_grad():
            w.sub_(1.0)
        after = (w * 2.0).sum() + x
        return before, after
    g = tg.capture(fn, np.zeros((), np.float32))
    for graph in (g, optimize(g), eliminate_common_subexpressions(g)):
        w.data[...] = 1.0
        b, a = graph(np.float32(0))
        assert (float(b), float(a)) == (6.0, 0.0)
        assert np.array_equal(w.data, [0, 0, 0])


def test_passes_keep_updates_no_output_needs_and_never_fold_them() -> None:
    w = tg.tensor(np.full(2, 3.0, np.float32), requires_grad=True, name="w")

    def fn(x):
        with tg.no_grad():
            w.sub_(1.0)                     # a constant update: all inputs constant but w
        return x * 2.0
    g = tg.capture(fn, np.zeros(2, np.float32))
    for p in (eliminate_dead_code, fold_constants, eliminate_common_subexpressions, optimize):
        o = p(g)
        assert [n.op.name for n in o.nodes].count("assign") == 1, p.__name__
    o = optimize(g)
    o(np.zeros(2, np.float32))
    o(np.zeros(2, np.float32))
    assert np.array_equal(w.data, [1.0, 1.0])


def test_the_optimizer_state_and_learning_rate_are_read_by_reference() -> None:
    net, ref = _net(), _net()
    opt = tg.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    ref_opt = tg.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    g = tg.capture(_torch_step(net, opt), tg.placeholder((None, 5)),
                   tg.placeholder((None,), "int64"))
    sched, ref_sched = tg.optim.StepLR(opt, 1, gamma=0.5), tg.optim.StepLR(ref_opt, 1, gamma=0.5)
    batches = list(_batches(4, seed=3))
    for x, y in batches[:2]:
        g(x, y)
        _eager(ref, ref_opt, x, y)
        sched.step()
        ref_sched.step()
    saved = ref_opt.state_dict()
    opt.load_state_dict(saved)                   # new state dicts: the graph follows
    for x, y in batches[2:]:
        g(x, y)
        _eager(ref, ref_opt, x, y)
    _same_params(net, ref)
    _same_state(opt, ref_opt)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.025)


def test_capture_changes_neither_parameters_state_nor_grad() -> None:
    net = _net()
    opt = tg.optim.Adam(net.parameters(), lr=0.01)
    x, y = next(_batches(1))
    _eager(net, opt, x, y)                        # a state and .grad exist before
    before = [p.data.copy() for p in net.parameters()]
    grads = [p.grad for p in net.parameters()]
    state = opt.state_dict()
    tg.capture(_torch_step(net, opt), tg.placeholder((None, 5)), tg.placeholder((None,), "int64"))
    assert all(np.array_equal(p.data, b) for p, b in zip(net.parameters(), before))
    assert all(p.grad is gr for p, gr in zip(net.parameters(), grads))
    assert opt.state_dict()["state"][0]["step"] == state["state"][0]["step"] == 1


def test_a_stale_grad_added_to_by_backward_warns_naming_the_line() -> None:
    net = _net()
    opt = tg.optim.SGD(net.parameters(), lr=0.1)
    x, y = next(_batches(1))
    cross_entropy(net(tg.tensor(x)), y).backward()      # .grad set, never zeroed

    def step(x, y):
        loss = cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tg.capture(step, tg.placeholder((None, 5)), tg.placeholder((None,), "int64"))
    messages = [str(w.message) for w in caught if w.category is CaptureWarning]
    assert len(messages) == 4                     # one per parameter, each named
    for name, _ in net.named_parameters():
        assert any(re.search(rf"backward at \S*test_graph_train_step\.py:\d+ adds to the \.grad "
                             rf"of parameter '{re.escape(name)}'.*zero_grad", m)
                   for m in messages), name


def test_updating_an_input_or_a_constant_parameter_is_a_clear_error() -> None:
    def to_input(x):
        with tg.no_grad():
            x -= 1.0
        return x * 2.0
    with pytest.raises(CaptureError, match=r"input 'x' .*changed in place.*"
                                           r"test_graph_train_step\.py"):
        tg.capture(to_input, np.zeros(2, np.float32))

    class Frozen(tg.Tensor):
        _graph_kind = "constant"                  # a leaf that asks to be a constant
    c = Frozen(np.ones(2, np.float32), requires_grad=True)
    opt = tg.optim.SGD([c], lr=0.1)

    def step(x):
        opt.zero_grad()
        (c * x).sum().backward()
        opt.step()
        return x
    with pytest.raises(CaptureError, match=r"apply_sgd writes constant 'const' \(shape \(2,\)\) "
                                           r"at .*test_graph_train_step\.py:\d+; only parameters"):
        tg.capture(step, np.ones(2, np.float32))


def test_an_op_value_changed_in_place_is_captured_out_of_place() -> None:
    def fn(x):
        h = x * 2.0
        with tg.no_grad():
            h += 1.0                        # an intermediate: h names the add from here on
            h[0] = 7.0
        return h * 3.0
    g = tg.capture(fn, np.zeros(4, np.float32))
    assert "assign" not in [n.op.name for n in g.nodes]
    np.testing.assert_array_equal(g(np.arange(4, dtype=np.float32)).data, [21, 9, 15, 21])


def test_effect_ops_are_declared_not_named() -> None:
    assert tg.OPS["assign"].effect and not tg.OPS["assign"].differentiable
    apply_ops = [op for name, op in tg.all_ops().items() if name.startswith("apply_")]
    assert {op.name for op in apply_ops} >= {"apply_sgd", "apply_adam", "apply_adagrad",
                                             "apply_rmsprop"}
    assert all(op.effect and not is_pure(op) for op in apply_ops)
    assert not tg.OPS["sub"].effect and is_pure(tg.OPS["sub"])
    with pytest.raises(ValueError, match=r"effect op 'bad' .*cannot be differentiable"):
        tg.defop("bad", lambda x: x, lambda g, out, x: g, effect=True)


def test_onnx_refuses_the_updates_by_name_with_the_reason(tmp_path) -> None:
    require_module("onnx")
    w = tg.tensor(np.ones((3, 2), np.float32), requires_grad=True, name="w")

    def fn(x):
        with tg.no_grad():
            w.sub_(0.5)
        return x @ w
    g = tg.capture(fn, tg.placeholder((None, 3)))
    with pytest.raises(tg.onnx.ExportError, match=r"op 'assign' .*writes a parameter or "
                                                  r"optimizer state in place.*inference function"):
        tg.onnx.export(g, path=str(tmp_path / "step.onnx"))
    assert not (tmp_path / "step.onnx").exists()


def test_a_replayed_update_invalidates_eager_graphs_that_saved_the_old_values() -> None:
    # as an eager opt.step() does: the replay's in-place update bumps the parameters'
    # versions, so backward through a graph recorded before it raises, naming the tensor
    net = tg.nn.Linear(3, 2)
    opt = tg.optim.SGD(net.parameters(), lr=0.1)

    def step(x: tg.Tensor, y: tg.Tensor) -> tg.Tensor:
        opt.zero_grad()
        loss = ((net(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss
    g = tg.capture(step, tg.placeholder((None, 3)), tg.placeholder((None, 2)))
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    before = (net(tg.tensor(x)) ** 2).sum()          # records W and b as they are now
    g(x, y)
    with pytest.raises(RuntimeError, match=r"modified in place after the op saved it"):
        before.backward()
    after = (net(tg.tensor(x)) ** 2).sum()           # a graph recorded after the replay is fine
    after.backward()
    assert net.weight.grad is not None
