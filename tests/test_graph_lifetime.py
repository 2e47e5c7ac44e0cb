"""A graph's inputs are read-only (through `.data`) only while the graph is
alive: a graph dropped without backward (an evaluation pass outside no_grad)
gives them back, and every library path that writes parameters works after
such a pass, and while one is still alive."""
from __future__ import annotations

import gc

import numpy as np
import pytest

import tensorgraph as tg


def make_model() -> tg.nn.Module:
    return tg.nn.Sequential(tg.nn.Linear(3, 4), tg.nn.Tanh(), tg.nn.Linear(4, 2))


def X() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)


def test_graph_dropped_without_backward_gives_data_back() -> None:
    w = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = tg.tanh(w * 3.0 + 1.0).sum()          # an evaluation pass outside no_grad
    assert not w.data.flags.writeable
    del y
    assert w.data.flags.writeable and w._saves == 0
    w.data[0] = 5.0
    np.copyto(w.data, [7.0, 8.0])
    np.testing.assert_array_equal(w.data, [7.0, 8.0])


def test_a_temporary_forward_pass_leaves_nothing_read_only() -> None:
    model = make_model()
    print(model(X()).sum().item())             # result never kept
    for p in model.parameters():
        assert p.data.flags.writeable, p
    model[0].weight.data[0, 0] = 1.0


def test_graph_dropped_after_partial_use_counts_each_use_once() -> None:
    w = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    a = w * w                                   # two uses by one node
    b = (w + 1.0).sum()
    b.backward()                                # frees b's graph only
    assert not w.data.flags.writeable           # a's node still needs w
    del a
    assert w.data.flags.writeable


def _live_and_dropped(model: tg.nn.Module):
    """Yield twice: with a graph over the model's parameters alive, then dropped."""
    y = model(X()).sum()
    yield
    del y
    gc.collect()
    yield


@pytest.mark.parametrize("opt", ["SGD", "AdaGrad", "RMSProp", "Adam"])
def test_optimizer_step_while_or_after_an_unused_graph(opt: str) -> None:
    model = make_model()
    optimizer = getattr(tg.optim, opt)(model.parameters(), lr=0.1)
    loss = model(X()).sum()
    loss.backward()
    for _ in _live_and_dropped(model):
        before = [p.data.copy() for p in model.parameters()]
        optimizer.step()
        for b, p in zip(before, model.parameters()):
            assert not np.array_equal(b, p.data)


def test_load_state_dict_and_io_load_while_or_after_an_unused_graph(tmp_path) -> None:
    src = make_model()
    path = tmp_path / "m.npz"
    tg.io.save(src.state_dict(), path)
    for _ in _live_and_dropped(dst := make_model()):
        dst.load_state_dict(tg.io.load(path))
        for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
            np.testing.assert_array_equal(a, b, err_msg=k)
        dst = make_model()


def test_manual_update_and_in_place_ops_while_or_after_an_unused_graph() -> None:
    model = make_model()
    model(X()).sum().backward()
    for _ in _live_and_dropped(model):
        with tg.no_grad():
            for p in model.parameters():
                p -= 0.5 * p.grad
                p.copy_(p * 2.0)
                p[0] = 0.0
        assert isinstance(model[0].weight, tg.nn.Parameter)


def test_fit_restores_best_weights_while_an_unused_graph_is_alive() -> None:
    model = make_model()
    kept = model(X()).sum()                     # noqa: F841 - alive during fit
    rng = np.random.default_rng(1)
    Xtr = rng.standard_normal((20, 3)).astype(np.float32)
    ytr = rng.standard_normal((20, 2)).astype(np.float32)
    stop = tg.train.EarlyStopping(patience=1)
    tg.train.fit(model, tg.losses.mse, tg.optim.SGD(model.parameters(), lr=50.0), (Xtr, ytr),
                 epochs=6, val=(Xtr, ytr), metrics=(), early_stopping=stop, progress=False)
    assert stop.best_epoch is not None
    np.testing.assert_array_equal(*[next(iter(d.values())) for d in (model.state_dict(),
                                    stop.best_weights[1])])


def test_a_graph_recorded_after_a_change_keeps_protecting_the_new_values() -> None:
    # An old graph dropped after the tensor changed (.data = ..., or an in-place
    # update) must not make the array writable while a newer graph needs it.
    for change in ("assign", "in_place"):
        w = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)
        old = (w * w).sum()
        if change == "assign":
            w.data = np.array([3.0, 4.0])
        else:
            with tg.no_grad():
                w -= 1.0
        assert w.data.flags.writeable            # the old graph cannot use them anyway
        new = (w * w).sum()
        del old
        assert not w.data.flags.writeable, change
        before = w.data.copy()
        new.backward()
        np.testing.assert_array_equal(w.grad.data, 2 * before)
        assert w.data.flags.writeable


def test_a_graph_dropped_after_its_input_changed_leaves_no_count_behind() -> None:
    w = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (w * w).sum()
    with tg.no_grad():
        w -= 1.0
    z = (w * 3.0).sum()
    del y, z
    assert w._saves == 0 and w.data.flags.writeable


def test_max_norm_while_or_after_an_unused_graph() -> None:
    layer = tg.nn.Layer(3, 2, seed=0)
    with tg.no_grad():
        layer.weight.mul_(10.0)
    x = np.ones((1, 3), np.float32)
    y = layer(x).sum()                          # noqa: F841 - alive
    assert tg.losses.max_norm_(layer, 1.0) == 2
    np.testing.assert_allclose(np.linalg.norm(layer.weight.data, axis=0), [1.0, 1.0], rtol=1e-6)
    del y
    with tg.no_grad():
        layer.weight.mul_(3.0)
    assert tg.losses.max_norm_(layer, 1.0) == 2
    assert layer.weight.data.flags.writeable


def test_restore_of_a_parameters_only_model_while_a_graph_is_alive() -> None:
    # a model with parameters() but no state_dict: fit's restore writes its arrays
    from tensorgraph.train import _restore, _snapshot

    class Bare:
        def __init__(self) -> None:
            self.w = tg.tensor(np.ones(3), requires_grad=True)

        def parameters(self):
            return [self.w]

    m = Bare()
    snap = _snapshot(m)
    with tg.no_grad():
        m.w -= 1.0
    alive = (m.w * 2).sum()          # a graph that still needs w
    _restore(m, snap)
    np.testing.assert_array_equal(m.w.numpy(), np.ones(3))
    with pytest.raises(RuntimeError, match="modified"):
        alive.backward()             # it saw w before the restore


def test_perceptron_fit_while_a_forward_pass_is_alive() -> None:
    X, t = tg.data.exam_data(n=40, seed=0)
    p = tg.nn.LinearPerceptron(2)
    out = p(X)                       # kept: its graph needs the weights
    p.fit(X, t, epochs=50)
    assert (np.where(X @ p.weight.numpy() + p.bias.numpy() < 0, -1, 1) == t).mean() > 0.9
    del out


def test_optimizer_step_is_seen_by_a_graph_over_shared_memory() -> None:
    # a detached copy sharing the parameter's memory (a DQN-style target network)
    w = tg.nn.Parameter(np.ones(3))
    target = w.detach()
    y = (target * tg.tensor(np.ones(3), requires_grad=True)).sum()
    w.grad = tg.tensor(np.ones(3))
    tg.optim.SGD([w], lr=0.5).step()
    np.testing.assert_array_equal(target.numpy(), np.full(3, 0.5))   # same memory
    with pytest.raises(RuntimeError, match="modified"):
        y.backward()                 # the values it saved changed under it
