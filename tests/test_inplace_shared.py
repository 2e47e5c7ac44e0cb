"""In-place changes made through a tensor that shares memory with one a graph
saved (a view made under no_grad, `.detach()`, or a tensor made from the same
numpy array) are caught by backward, as PyTorch's shared version counters do,
instead of silently changing the gradient."""
from __future__ import annotations

import gc
from typing import Any, Callable

import numpy as np
import pytest

import tensorgraph as tg


def _detach_iadd(x: tg.Tensor) -> None:
    d = x.detach()
    d += 1.0


def _view_iadd(x: tg.Tensor) -> None:
    with tg.no_grad():
        v = x.reshape(-1)
        v += 1.0


def _slice_mul_(x: tg.Tensor) -> None:
    with tg.no_grad():
        x[0:1].mul_(3.0)


def _transpose_setitem(x: tg.Tensor) -> None:
    with tg.no_grad():
        v = x.T
        v[0] = 7.0


def _detach_setitem(x: tg.Tensor) -> None:
    x.detach()[0, 1] = 7.0


def _same_array(x: tg.Tensor) -> None:
    other = tg.tensor(x.detach().numpy())     # a second Tensor over the same memory
    other.fill_(0.5)


@pytest.mark.parametrize("mutate", [_detach_iadd, _view_iadd, _slice_mul_, _transpose_setitem,
                                    _detach_setitem, _same_array])
def test_change_through_shared_memory_makes_backward_raise(mutate: Callable[[Any], None]) -> None:
    x = tg.tensor(np.array([[1.0, 2.0]]), requires_grad=True, name="x")
    y = (x * x).sum()                    # mul saved x
    mutate(x)
    with pytest.raises(RuntimeError, match=r"tensor 'x' \(shape \(1, 2\), its input 0 of op 'mul'"
                                           r".*modified in place through another tensor that "
                                           r"shares its memory"):
        y.backward()


def test_output_changed_through_a_view_makes_backward_raise() -> None:
    x = tg.tensor(np.array([0.5, 1.0]), requires_grad=True)
    y = tg.exp(x)                        # its VJP uses its output
    y.detach().mul_(2.0)
    with pytest.raises(RuntimeError, match=r"its output of op 'exp'.*shares its memory"):
        y.sum().backward()


def test_graphs_recorded_after_the_change_are_fine() -> None:
    x = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    d = x.detach()
    d += 1.0                             # x is now [2, 3]
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [4.0, 6.0])


def test_unrelated_in_place_changes_do_not_raise() -> None:
    x = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    buf = tg.tensor(np.zeros(2))
    buf += 1.0
    x.detach().clone().mul_(5.0)        # a copy: x's memory untouched
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0])


def test_the_record_of_a_write_goes_with_its_array() -> None:
    import sys
    tensor_module = sys.modules["tensorgraph.tensor"]   # tg.tensor is the function
    t = tg.tensor(np.zeros(3))
    t += 1.0
    key = id(tensor_module._owner(t._data))
    assert key in tensor_module._written
    del t
    gc.collect()
    assert key not in tensor_module._written


def test_an_in_place_op_that_would_change_the_shape_names_both_shapes() -> None:
    t = tg.tensor(np.zeros((2, 3)), name="buf")
    with pytest.raises(RuntimeError, match=r"^__iadd__: the result has shape \(4, 2, 3\), but an "
                                           r"in-place op must keep the shape of tensor 'buf' "
                                           r"\(shape \(2, 3\)\)$"):
        t += np.ones((4, 2, 3))
    np.testing.assert_array_equal(t.data, np.zeros((2, 3)))    # unchanged
