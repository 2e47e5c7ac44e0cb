"""Gradients as graph (issue 9): `tg.grad` inside `tg.capture` records the
backward pass into the captured graph, one op per VJP, as `tf.gradients`
does. A replayed training step gives the gradients that the backprop formula
written out in numpy gives, and eager `tg.grad` gives, at any batch size and
for new targets; a replayed training loop follows the eager loop."""
from __future__ import annotations

import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph import nn
from tensorgraph.losses import cross_entropy


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 8, seed=1), nn.ReLU(), nn.Linear(8, 8, seed=2), nn.ReLU(),
                         nn.Linear(8, 4, seed=3))


def _step_fn(net: nn.Module):
    params = list(net.parameters())

    def step(x, y):
        loss = cross_entropy(net(x), y)
        return loss, tg.grad(loss, params)
    return step


def _numpy_step(net: nn.Module, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """The backprop of a ReLU MLP with softmax cross-entropy, written out
    (dL/dz = (softmax(z) - onehot(y)) / n; Linear: z = h @ W.T + b)."""
    lins = [m for m in net.layers if isinstance(m, nn.Linear)]
    hs, zs = [x], []
    for k, lin in enumerate(lins):
        z = hs[-1] @ lin.weight.data.T + lin.bias.data
        zs.append(z)
        hs.append(np.maximum(z, 0) if k < len(lins) - 1 else z)
    z = zs[-1]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    n = len(y)
    loss = -np.log(p[np.arange(n), y]).mean()
    d = p.copy()
    d[np.arange(n), y] -= 1
    d /= n
    grads: list[np.ndarray] = []
    for k in reversed(range(len(lins))):
        grads[:0] = [d.T @ hs[k], d.sum(axis=0)]
        if k:
            d = (d @ lins[k].weight.data) * (zs[k - 1] > 0)
    return float(loss), grads


def _batch(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6)).astype(np.float32), rng.integers(0, 4, n)


def _capture(net: nn.Module) -> tg.Graph:
    return tg.capture(_step_fn(net), tg.placeholder((None, 6), name="x"),
                      tg.placeholder((None,), "int64", name="y"))


@pytest.mark.parametrize("n", [5, 13])
def test_replayed_gradients_equal_numpy_backprop_and_eager_grad(n: int) -> None:
    net = _net()
    g = _capture(net)
    x, y = _batch(n, seed=n)             # a batch size and targets the capture never saw
    loss, grads = g(x, y)
    want_loss, want = _numpy_step(net, x, y)
    assert loss.data == pytest.approx(want_loss, rel=1e-5)
    assert len(grads) == len(want) == 6
    for got, w in zip(grads, want):
        assert got.shape == w.shape and got.dtype == np.float32
        np.testing.assert_allclose(got.data, w, rtol=1e-5, atol=1e-6)
    eager_loss, eager = _step_fn(net)(tg.tensor(x), y)
    assert loss.data == eager_loss.data
    for got, e in zip(grads, eager):
        # bit for bit: the same VJPs on the same arrays; the replay hands
        # cross_entropy's VJP the softmax its forward saved, as eager backward does
        assert got.data.tobytes() == e.data.tobytes()


def test_backward_is_in_the_graph_as_vjp_ops_and_parameters_stay_parameters() -> None:
    net = _net()
    g = _capture(net)
    ops = [node.op.name for node in g.nodes]
    # one VJP op per edge a gradient flows along: 3 matmuls (x needs none), 3 transposes
    # of the weights, 3 bias adds (both sides), 2 ReLUs, the loss (logits only)
    assert ops.count("matmul_vjp1") == 3 and ops.count("matmul_vjp0") == 2
    assert ops.count("relu_vjp0") == 2 and ops.count("cross_entropy_vjp0") == 1
    assert "cross_entropy_vjp1" not in ops            # integer targets get no gradient
    assert all(v.kind == "op" for v in g.outputs)     # computed at each replay, not frozen
    assert sorted(g.parameters) == sorted(net.state_dict())
    backward = [node for node in g.nodes if node.op.name.endswith(tuple(f"_vjp{i}" for i in "01"))]
    assert all(node.scope[0] == "gradients" for node in backward)
    # read by reference: changing a parameter changes the replayed gradients
    x, y = _batch(4, seed=0)
    before = g(x, y)[1][0].data.copy()
    with tg.no_grad():
        net.layers[0].weight.data[...] *= 2
    after = g(x, y)[1][0].data
    np.testing.assert_allclose(after, _numpy_step(net, x, y)[1][0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(before, after)


def test_replayed_training_loop_follows_the_eager_loop() -> None:
    eager_net, replay_net = _net(), _net()
    lr = 0.5
    g = _capture(replay_net)
    step = _step_fn(eager_net)
    eager_losses, replay_losses = [], []
    for k in range(6):
        x, y = _batch(9 + k % 2, seed=100 + k)           # batch sizes 9 and 10 alternate
        loss, grads = step(tg.tensor(x), y)
        with tg.no_grad():
            for p, gr in zip(eager_net.parameters(), grads):
                p -= lr * gr
        eager_losses.append(float(loss.data))
        loss, grads = g(x, y)
        with tg.no_grad():
            for p, gr in zip(replay_net.parameters(), grads):
                p -= lr * gr
        replay_losses.append(float(loss.data))
    np.testing.assert_allclose(replay_losses, eager_losses, rtol=1e-5)
    assert replay_losses[-1] < replay_losses[0]       # it trains: the updates took effect
    for a, b in zip(replay_net.parameters(), eager_net.parameters()):
        np.testing.assert_allclose(a.data, b.data, atol=1e-5)


def test_passes_keep_the_replayed_step_bit_for_bit() -> None:
    net = _net()
    g = _capture(net)
    small = tg.passes.optimize(g)
    x, y = _batch(7, seed=3)
    (l1, g1), (l2, g2) = g(x, y), small(x, y)
    assert l1.data.tobytes() == l2.data.tobytes()
    for a, b in zip(g1, g2):
        assert a.data.tobytes() == b.data.tobytes()


def test_gradient_of_a_broadcast_and_a_shared_value_sums_paths() -> None:
    # w used twice (two paths meet: an add op), b broadcast over the batch (unbroadcast
    # inside its VJP op, at the replay's batch size): d/dw sum((x*w + b) * w) = sum(2xw + b)
    w = tg.tensor(np.float32(1.5), requires_grad=True)
    b = tg.tensor(np.array([0.5, -1.0], np.float32), requires_grad=True)

    def f(x):
        return tg.grad(((x * w + b) * w).sum(), [w, b])
    g = tg.capture(f, tg.placeholder((None, 2)))
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    gw, gb = g(x)
    assert gw.data == pytest.approx(float((2 * x * 1.5 + b.data).sum()), rel=1e-6)
    np.testing.assert_allclose(gb.data, [5 * 1.5, 5 * 1.5])


def test_backward_inside_capture_records_the_vjps_as_tg_grad_does() -> None:
    # loss.backward() in fn records the same VJP ops; each .grad is the recorded
    # gradient during fn (returned here), and .grad is as it was after the capture
    net = _net()
    params = list(net.parameters())

    def step(x, y):
        loss = cross_entropy(net(x), y)
        loss.backward()
        return loss, [p.grad for p in params]
    g = tg.capture(step, tg.placeholder((None, 6)), tg.placeholder((None,), "int64"))
    assert all(p.grad is None for p in params)
    x, y = _batch(5, seed=4)
    loss, grads = g(x, y)
    ref_loss, ref = _numpy_step(net, x, y)
    assert float(loss) == pytest.approx(ref_loss, rel=1e-6)
    for gr, r in zip(grads, ref):
        np.testing.assert_allclose(gr.data, r, rtol=1e-5, atol=1e-6)
    assert sum(n.op.name.endswith("_vjp0") or n.op.name.endswith("_vjp1") for n in g.nodes) > 0
    # and capture is off again: eager backward works afterwards
    out = cross_entropy(net(tg.tensor(x)), y)
    out.backward()
    assert net.layers[0].weight.grad is not None


def test_create_graph_inside_capture_records_a_differentiable_backward() -> None:
    # second order: d2/dw2 of w**3 * x is 6 w x, recorded through the Tensor VJPs
    w = tg.tensor(np.float32(2.0), requires_grad=True)

    def f(x):
        (gw,) = tg.grad((w ** 3 * x).sum(), [w], create_graph=True)
        return tg.grad(gw, [w])[0]
    g = tg.capture(f, np.ones(3, np.float32))
    x = np.array([1.0, 2.0, 3.0], np.float32)
    assert g(x).data == pytest.approx(6 * 2.0 * 6.0)


def test_onnx_export_of_a_training_step_refuses_a_vjp_without_rule_by_name(tmp_path) -> None:
    # The book's training steps export (tests/test_onnx_grad.py); a VJP that has
    # no ONNX rule (sort's) is refused by name, scope and reason.
    pytest.importorskip("onnx")
    w = tg.tensor(np.ones(3, np.float32), requires_grad=True)
    g = tg.capture(lambda x: tg.grad((tg.sort(x * w) ** 2).sum(), [w])[0],
                   np.arange(3, dtype=np.float32))
    path = tmp_path / "step.onnx"
    with pytest.raises(tg.onnx.ExportError,
                       match=r"sort_vjp0.*scope gradients.*no ONNX export rule: its gradient"):
        tg.onnx.export(g, path=str(path))
    assert not path.exists()                          # nothing half-written


_A = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
_B = np.random.default_rng(6).standard_normal(4).astype(np.float32)
_LOSSES = {   # variadic VJPs, index attrs, a non-differentiable condition, a reduction's argmax
    "concat": lambda x, a, b: tg.concat([x * a, a + b], axis=0).sum(),
    "stack": lambda x, a, b: (tg.stack([x, a]) ** 2).sum(),
    "index": lambda x, a, b: (x * a)[np.array([0, 2, 2])].sum(),
    "where": lambda x, a, b: tg.where(x > 0, a, b).sum(),
    "max": lambda x, a, b: (x * a).max(axis=1).sum(),
    "log_softmax": lambda x, a, b: tg.log_softmax(x * a + b, axis=-1)[:, 0].sum(),
}


@pytest.mark.parametrize("name", sorted(_LOSSES))
def test_replayed_gradients_of_assorted_ops_equal_eager_grad(name: str) -> None:
    a = tg.tensor(_A.copy(), requires_grad=True)
    b = tg.tensor(_B.copy(), requires_grad=True)

    def fn(x):
        return tg.grad(_LOSSES[name](x, a, b), [a, b], allow_unused=True)
    g = tg.capture(fn, np.zeros((3, 4), np.float32))
    x = np.random.default_rng(7).standard_normal((3, 4)).astype(np.float32)
    for got, want in zip(g(x), fn(tg.tensor(x))):
        assert (got is None) == (want is None)
        if want is not None:
            assert got.data.tobytes() == want.data.tobytes()
