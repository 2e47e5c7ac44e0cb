"""In-place ops and in-place modification detection (issue 8).

PyTorch's rules: in-place ops keep the tensor's identity; on a leaf that
requires grad they are allowed only without recording (`no_grad`, the
optimizer step); on anything else they are recorded. A value that a recorded
op saved must not change behind its back: `.data`/`.numpy()` are read-only
while a graph needs them, and in-place ops stamp a version that backward checks.
"""
from __future__ import annotations

import numpy as np
import pytest

import tensorgraph as tg


def f64(a, name=None) -> tg.Tensor:
    return tg.tensor(np.array(a, dtype=np.float64), requires_grad=True, name=name)


# ---------------------------------------------------------------------------
# The manual update loop (issue 8, finding 2)

def test_manual_sgd_update_under_no_grad_changes_the_parameter_itself() -> None:
    p = tg.nn.Parameter(np.array([1.0, 2.0], dtype=np.float32)) if hasattr(tg.nn, "Parameter") \
        else f64([1.0, 2.0])
    arr = p.data
    (p * p).sum().backward()
    before = id(p)
    with tg.no_grad():
        for q in [p]:
            q -= 0.5 * q.grad
    assert id(p) == before and type(p).__name__ in ("Parameter", "Tensor")
    np.testing.assert_allclose(p.data, [0.0, 0.0])          # 1 - 0.5·2, 2 - 0.5·4
    assert np.shares_memory(arr, p.data)                   # the same array, updated
    assert p.is_leaf and p.requires_grad


@pytest.mark.parametrize("stmt", ["w -= 0.1", "w += 0.1", "w *= 2.0", "w /= 2.0"])
def test_in_place_operator_on_a_leaf_that_requires_grad_is_an_error(stmt: str) -> None:
    w = f64([1.0, 2.0], name="w")
    with pytest.raises(RuntimeError, match=r"tensor 'w' \(shape \(2,\)\) is a leaf that requires "
                                           r"grad.*no_grad"):
        exec(stmt, {}, {"w": w})
    np.testing.assert_array_equal(w.data, [1.0, 2.0])       # untouched


@pytest.mark.parametrize("call, expected", [
    (lambda t: t.add_(2.0), [3.0, 4.0]),
    (lambda t: t.add_(np.array([1.0, 1.0]), alpha=3), [4.0, 5.0]),
    (lambda t: t.sub_(1.0), [0.0, 1.0]),
    (lambda t: t.mul_(3.0), [3.0, 6.0]),
    (lambda t: t.div_(2.0), [0.5, 1.0]),
    (lambda t: t.zero_(), [0.0, 0.0]),
    (lambda t: t.fill_(7.0), [7.0, 7.0]),
    (lambda t: t.copy_(np.array([5.0, 6.0])), [5.0, 6.0]),
    (lambda t: t.clamp_(1.5, None), [1.5, 2.0]),
    (lambda t: t.clamp_(max=1.5), [1.0, 1.5]),
])
def test_in_place_methods_return_self_and_keep_the_array(call, expected) -> None:
    t = tg.tensor(np.array([1.0, 2.0]))
    arr = t.data
    assert call(t) is t
    np.testing.assert_array_equal(t.data, expected)
    assert t.data is arr and t.dtype == np.float64
    # the same on a leaf that requires grad, under no_grad
    w = f64([1.0, 2.0])
    with tg.no_grad():
        assert call(w) is w
    np.testing.assert_array_equal(w.data, expected)
    assert w.is_leaf and w.requires_grad


def test_setitem_on_a_leaf_that_requires_grad() -> None:
    w = f64([1.0, 2.0, 3.0], name="w")
    with pytest.raises(RuntimeError, match=r"__setitem__: tensor 'w'.*leaf that requires grad"):
        w[0] = 5.0
    with tg.no_grad():
        w[0] = 5.0
        w[[1, 2]] = tg.tensor(np.array([8.0, 9.0]))
    np.testing.assert_array_equal(w.data, [5.0, 8.0, 9.0])


def test_in_place_dtype_and_shape_rules() -> None:
    i = tg.tensor([1, 2])
    with pytest.raises(TypeError, match=r"__iadd__: the result has dtype float32, which cannot "
                                        r"be stored in the tensor of shape \(2,\) of dtype int64"):
        i += 0.5
    i += 2
    np.testing.assert_array_equal(i.data, [3, 4])
    t = tg.tensor(np.zeros(2))
    with pytest.raises(RuntimeError, match=r"__iadd__: the result has shape \(3, 2\), but an "
                                           r"in-place op must keep the shape of the tensor of "
                                           r"shape \(2,\)"):
        t += np.ones((3, 2))


# ---------------------------------------------------------------------------
# Recorded in-place ops (non-leaves, or operands that require grad)

def test_in_place_on_a_non_leaf_is_recorded() -> None:
    x = f64([1.0, 2.0])
    y = x * 2.0
    y += x            # y = 3x
    y *= x            # y = 3x², dy/dx = 6x
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [6.0, 12.0])
    assert tg.gradcheck(lambda x: _chain(x), [f64([1.0, 2.0])])


def _chain(x: tg.Tensor) -> tg.Tensor:
    y = x * 1.0
    y -= x ** 2
    y /= 3.0
    y[0] = x[1] * 5.0
    return y


def test_setitem_records_the_gradient_of_the_value() -> None:
    x = f64([1.0, 2.0, 3.0])
    v = f64(10.0)
    y = x * 1.0
    y[1] = v * 2.0
    np.testing.assert_array_equal(y.data, [1.0, 20.0, 3.0])
    (y * np.array([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 0.0, 3.0])   # position 1 overwritten
    np.testing.assert_array_equal(v.grad.data, 4.0)
    with pytest.raises(ValueError, match=r"__setitem__: an index that repeats a position"):
        y[[0, 0]] = v


def test_tensor_not_requiring_grad_takes_a_graph_from_its_operand() -> None:
    buf = tg.tensor(np.zeros(2))
    w = f64([1.0, 2.0])
    buf += w * 3.0
    assert buf.requires_grad and not buf.is_leaf
    buf.sum().backward()
    np.testing.assert_array_equal(w.grad.data, [3.0, 3.0])


# ---------------------------------------------------------------------------
# Detection: values saved by a recorded op

def test_raw_write_into_a_saved_array_is_refused() -> None:
    w = f64([1.0, 2.0])
    x = tg.tensor(np.array([3.0, 4.0]))
    y = (w * x).sum()
    for t in (w, x):
        with pytest.raises(ValueError, match="read-only"):
            t.data[0] = 100.0
        with pytest.raises(ValueError, match="read-only"):
            t.numpy()[0] += 1
        with pytest.raises(ValueError, match="read-only"):
            np.asarray(t)[0] = 1
    y.backward()
    np.testing.assert_array_equal(w.grad.data, [3.0, 4.0])     # the values at forward time
    # the graph is freed: writes are allowed again
    x.data[0] = 100.0
    w.numpy()[1] += 1
    np.testing.assert_array_equal(x.data, [100.0, 4.0])
    np.testing.assert_array_equal(w.data, [1.0, 3.0])


def test_in_place_op_on_a_saved_tensor_makes_backward_raise() -> None:
    w = f64([1.0, 2.0], name="w")
    x = tg.tensor(np.array([3.0, 4.0]), name="x")
    y = (w * x).sum()
    x += 1.0                          # allowed (x needs no grad), but y's mul saved x
    with pytest.raises(RuntimeError, match=r"tensor 'x' \(shape \(2,\), its input 1 of op 'mul'"
                                           r".*modified in place after the op saved it"):
        y.backward()


def test_optimizer_step_while_a_retained_graph_needs_the_parameter() -> None:
    w = f64([1.0, 2.0], name="w")
    y = (w * w).sum()
    y.backward(retain_graph=True)
    with tg.no_grad():
        w -= 0.1 * w.grad             # in place, same array
    with pytest.raises(RuntimeError, match=r"tensor 'w'.*op 'mul'.*modified in place"):
        y.backward()
    # .data assignment counts as a modification too
    v = f64([1.0])
    z = (v * v).sum()
    v.data = np.array([5.0])
    with pytest.raises(RuntimeError, match=r"op 'mul'.*modified in place"):
        z.backward()


def test_modified_output_makes_backward_raise() -> None:
    x = f64([0.5, 1.0])
    y = tg.exp(x)                     # its VJP uses its output
    with pytest.raises(ValueError, match="read-only"):
        y.data[0] = 0.0
    with tg.no_grad():
        y.mul_(2.0)
    z = y.sum()                       # recorded after the change: fine; exp's is not
    with pytest.raises(RuntimeError, match=r"its output of op 'exp'"):
        z.backward()


def test_optimizers_keep_working_between_steps() -> None:
    w = tg.tensor(np.array([1.0, -2.0]), requires_grad=True)
    opt = tg.optim.SGD([w], lr=0.1)
    arr = w.data
    for _ in range(3):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
    np.testing.assert_allclose(w.data, np.array([1.0, -2.0]) * 0.8 ** 3)
    assert w.data is arr              # updated in place: no new array per step
