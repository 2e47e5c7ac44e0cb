"""What a capture would freeze (issue 9): each case is recorded, or warned
with a `tg.CaptureWarning` naming the user's line. References: the numpy
expression of what fn computes, on each replay's inputs."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph import nn
from tensorgraph.graph import CaptureWarning
from test_graph_train_step import _torch_step

HERE = r"\S*test_graph_frozen\.py:\d+"


def _ops(g: tg.Graph) -> list[str]:
    return [n.op.name for n in g.nodes]


def test_tg_tensor_of_a_captured_value_is_a_recorded_copy() -> None:
    def f(x: tg.Tensor):
        return tg.tensor(x) * 2.0, tg.tensor(x, dtype="float64")
    g = tg.capture(f, tg.placeholder((None, 2)))
    assert _ops(g) == ["clone", "mul", "astype"]
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    doubled, wide = g(x)
    np.testing.assert_array_equal(doubled.data, x * 2)
    assert wide.dtype == np.float64 and np.array_equal(wide.data, x)


def test_tg_tensor_of_a_parameter_copies_its_value_at_each_replay() -> None:
    w = tg.tensor(np.ones(2, np.float32), requires_grad=True, name="w")
    with pytest.warns(UserWarning, match="copying a Tensor that requires grad"):
        g = tg.capture(lambda x: x + tg.tensor(w), np.zeros(2, np.float32))
    assert [v.name for v in g.parameters.values()] == ["w"]
    with tg.no_grad():
        w += 4.0
    np.testing.assert_array_equal(g(np.zeros(2, np.float32)).data, [5.0, 5.0])


def test_tg_tensor_of_a_constant_stays_a_constant() -> None:
    c = tg.tensor(np.full(2, 3.0, np.float32))                 # made before: a constant
    g = tg.capture(lambda x: x + tg.tensor(c), np.zeros(2, np.float32))
    assert _ops(g) == ["add"] and len(g.constants) == 1


def test_one_hot_of_the_targets_encodes_each_replays_targets() -> None:
    g = tg.capture(lambda y: tg.one_hot(y, 4), tg.placeholder((None,), "int64"))
    assert _ops(g) == ["one_hot"]
    y = np.array([3, 0, 2, 2, 1])
    np.testing.assert_array_equal(g(y).data, np.eye(4, dtype=np.float32)[y])
    with pytest.raises(ValueError, match=r"one_hot: indices must lie in \[0, 4\), got min 0 "
                                         r"and max 7"):
        g(np.array([0, 7]))                                    # checked at replay too


def test_one_hot_without_num_classes_warns_that_it_is_frozen() -> None:
    with pytest.warns(CaptureWarning, match=r"one_hot's num_classes is inferred from the "
                                            rf"indices at capture \(3\).*{HERE}"):
        tg.capture(lambda y: tg.one_hot(y), np.array([0, 2, 1]))


def test_tensor_indices_of_take_and_getitem_warn_naming_the_line() -> None:
    def f(x: tg.Tensor, i: tg.Tensor):
        return tg.take(x, i)
    with pytest.warns(CaptureWarning, match=rf"attribute 'index' of op getitem at {HERE} is "
                                            r"the value of input 'i'"):
        tg.capture(f, np.arange(4.0, dtype=np.float32), np.array([1, 3]))
    with pytest.warns(CaptureWarning, match=rf"at {HERE} is the value of input 'i'"):
        tg.capture(lambda x, i: x[i], np.arange(4.0, dtype=np.float32), np.array([1, 3]))


@pytest.mark.parametrize("read", [lambda t: t.data, lambda t: t.numpy(), np.asarray,
                                  lambda t: t.tolist()])
def test_reading_a_captured_array_warns_naming_the_line(read) -> None:
    def f(x: tg.Tensor) -> tg.Tensor:
        h = x * 2.0
        return tg.tensor(np.asarray(read(h)) + 1.0)            # frozen: the capture's value
    with pytest.warns(CaptureWarning, match=rf"of op 'mul' read at {HERE} is its value at "
                                            "capture: whatever is computed from it is frozen"):
        tg.capture(f, np.zeros(2, np.float32))


def test_reading_a_parameters_data_warns_and_constants_do_not() -> None:
    w = tg.tensor(np.ones(2, np.float32), requires_grad=True, name="w")
    c = tg.tensor(np.ones(2, np.float32))

    def f(x: tg.Tensor) -> tg.Tensor:
        y = x * w
        return y + float(c.data.sum()) + w.data.sum()
    with pytest.warns(CaptureWarning, match=rf"\.data of parameter 'w' read at {HERE}") as rec:
        tg.capture(f, np.zeros(2, np.float32))
    assert [str(r.message).split(" read")[0] for r in rec] == ["capture: .data of parameter 'w'"]


def test_a_whole_training_step_reads_nothing_it_would_freeze() -> None:
    # tensorgraph's own reads (the optimizer's, the loss's) are not the user's: no warning
    net = nn.Sequential(nn.Linear(3, 4, seed=0), nn.ReLU(), nn.Linear(4, 2, seed=1))
    step = _torch_step(net, tg.optim.Adam(net.parameters(), lr=0.01))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CaptureWarning)
        tg.capture(step, tg.placeholder((None, 3)), tg.placeholder((None,), "int64"))
