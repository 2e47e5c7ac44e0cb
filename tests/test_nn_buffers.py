"""Buffers (non-trained state in the module machinery) and train/eval modes."""
import copy

import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph import nn


class Running(nn.Module):
    """A module with a running mean (as chapter 5's batch norm will have)."""

    def __init__(self, n=3, name=None):
        super().__init__(name=name)
        self.weight = nn.Parameter(np.ones(n, dtype=np.float32))
        self.register_buffer("running_mean", np.zeros(n, dtype=np.float32))
        self.register_buffer("steps", np.array(0, dtype=np.int64))
        self.register_buffer("scratch", np.zeros(2, dtype=np.float32), persistent=False)

    def forward(self, x):
        x = tg.tensor(x) if not isinstance(x, tg.Tensor) else x
        if self.training:
            self.running_mean.data[...] = 0.9 * self.running_mean.data + 0.1 * x.data.mean(0)
            self.steps.data[...] += 1
        return (x - self.running_mean) * self.weight


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = Running(name="body")
        self.head = nn.Layer(3, 1, seed=0)
        self.register_buffer("calls", np.zeros((), dtype=np.int64))

    def forward(self, x):
        return self.head(self.body(x))


def test_register_buffer_and_listing():
    m = Running()
    assert isinstance(m.running_mean, tg.Tensor) and not m.running_mean.requires_grad
    assert m.running_mean.dtype == np.float32 and m.steps.dtype == np.int64
    assert [n for n, _ in m.named_buffers()] == ["running_mean", "steps", "scratch"]
    assert m.buffers() == [b for _, b in m.named_buffers()]
    assert [n for n, _ in m.named_parameters()] == ["weight"]           # not parameters
    net = Net()
    assert [n for n, _ in net.named_buffers()] == [
        "calls", "body.running_mean", "body.steps", "body.scratch"]
    # A Tensor is kept as it is; lists follow tg.tensor's dtype rule.
    t = tg.tensor(np.arange(3.0))
    m.register_buffer("extra", t)
    assert m.extra is t and m.buffers()[-1] is t
    m.register_buffer("ones", [1.0, 1.0])
    assert m.ones.dtype == np.float32
    # None is allowed and listed nowhere.
    m.register_buffer("nothing", None)
    assert m.nothing is None and "nothing" not in dict(m.named_buffers())


def test_assigning_to_a_buffer_name_replaces_the_buffer():
    m = Running()
    m.running_mean = np.full(3, 2.0, dtype=np.float32)
    assert isinstance(m.running_mean, tg.Tensor) and dict(m.named_buffers())["running_mean"] is m.running_mean
    np.testing.assert_array_equal(m.state_dict()["running_mean"], [2, 2, 2])
    m.running_mean = None
    assert "running_mean" not in m.state_dict()
    del m.steps
    assert "steps" not in dict(m.named_buffers())
    with pytest.raises(AttributeError):
        m.steps


def test_register_buffer_errors():
    m = Running()
    with pytest.raises(KeyError, match="'weight' is already a parameter"):
        m.register_buffer("weight", np.zeros(3))
    with pytest.raises(KeyError, match="without '.'"):
        m.register_buffer("a.b", np.zeros(3))
    with pytest.raises(KeyError, match="attribute 'forward' already exists"):
        m.register_buffer("forward", np.zeros(3))
    with pytest.raises(TypeError, match=r"register_buffer\('w'\): a buffer must not require grad"):
        m.register_buffer("w", tg.tensor([1.0], requires_grad=True))
    with pytest.raises(TypeError, match=r"Running.running_mean: a buffer must be a Tensor, an "
                                        r"array or None, got str"):
        m.running_mean = "zeros"

    class Early(nn.Module):
        def __init__(self):
            self.register_buffer("b", np.zeros(1))

    with pytest.raises(RuntimeError, match=r"call super\(\).__init__\(\) before registering buffers"):
        Early()


def test_state_dict_saves_persistent_buffers_after_each_modules_parameters():
    net = Net()
    sd = net.state_dict()
    assert list(sd) == ["calls", "body.weight", "body.running_mean", "body.steps",
                        "head.weight", "head.bias"]
    assert sd["body.steps"].dtype == np.int64
    sd["body.running_mean"][0] = 5.0                         # a copy
    assert net.body.running_mean.data[0] == 0.0


def test_load_state_dict_loads_buffers_and_names_problems():
    a, b = Net(), Net()
    a.train()
    a(np.ones((4, 3), dtype=np.float32))
    a(np.ones((4, 3), dtype=np.float32))
    assert a.body.steps.item() == 2
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.body.running_mean.data, a.body.running_mean.data)
    assert b.body.steps.item() == 2 and b.body.steps.dtype == np.int64
    assert b.body.running_mean.data is not a.body.running_mean.data
    sd = a.state_dict()
    del sd["body.steps"]
    sd["extra"] = np.zeros(1)
    with pytest.raises(RuntimeError, match=r"missing keys: 'body.steps'; unexpected keys: 'extra'"):
        b.load_state_dict(sd)
    bad = a.state_dict()
    bad["body.running_mean"] = np.zeros(4)
    with pytest.raises(RuntimeError, match=r"shape mismatch for 'body.running_mean': the state "
                                           r"has shape \(4,\), the model has \(3,\)"):
        b.load_state_dict(bad)
    assert b.body.steps.item() == 2                           # nothing changed
    keys = b.load_state_dict({"body.steps": np.array(7)}, strict=False)
    assert b.body.steps.item() == 7 and "body.running_mean" in keys.missing_keys


def test_buffers_move_and_copy_with_the_module():
    net = Net()
    net.to(np.float64)
    assert net.body.running_mean.dtype == np.float64 and net.body.weight.dtype == np.float64
    assert net.body.steps.dtype == np.int64                  # integer buffers stay integers
    c = copy.deepcopy(net)
    assert c.body.running_mean is not net.body.running_mean
    assert dict(c.named_buffers())["body.running_mean"] is c.body.running_mean
    c.body.running_mean.data[0] = 3.0
    assert net.body.running_mean.data[0] == 0.0


def test_buffers_round_trip_through_tg_save(tmp_path):
    a = Net()
    a(np.full((2, 3), 2.0, dtype=np.float32))
    tg.save({"model": a.state_dict()}, tmp_path / "ckpt.npz")
    b = Net()
    b.load_state_dict(tg.load(tmp_path / "ckpt.npz")["model"])
    for (n, x), (_, y) in zip(a.named_buffers(), b.named_buffers()):
        if n != "body.scratch":
            np.testing.assert_array_equal(x.data, y.data)
            assert x.dtype == y.dtype, n
    assert b.body.steps.item() == 1


def test_train_and_eval_are_recursive_and_drive_dropout():
    net = nn.Sequential(nn.Layer(4, 4, seed=0), nn.Dropout(0.5, seed=1),
                        nn.Sequential(nn.Dropout(0.5, seed=2)))
    assert net.training and all(m.training for m in net.modules())
    assert net.eval() is net and not any(m.training for m in net.modules())
    x = np.ones((3, 4), dtype=np.float32)
    np.testing.assert_array_equal(net(x).data, net[0](x).data)    # dropout is the identity
    net[2].train()
    assert net[2][0].training and not net.training and not net[1].training
    net.train(False)
    assert not net[2][0].training
    net.train()
    y = net(x).data
    assert (y == 0).any()                                          # dropout drops again
