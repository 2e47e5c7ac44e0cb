"""The Tensor API: construction, the dtype policy, the array accessors, repr,
`.grad` bookkeeping and numpy interop."""
import numpy as np
import pytest

import tensorgraph as tg


# ---------------------------------------------------------------------------
# Construction and the dtype policy

@pytest.mark.parametrize("data, dtype", [
    (1.0, np.float32),                      # Python float -> float32, as PyTorch
    ([1.0, 2.5], np.float32),
    ([[1.0], [2.0]], np.float32),
    (3, np.int64),
    ([1, 2], np.int64),
    (True, np.bool_),
    ([True, False], np.bool_),
    (np.arange(3, dtype=np.float64), np.float64),    # numpy arrays keep their dtype
    (np.arange(3, dtype=np.float16), np.float16),
    (np.arange(3, dtype=np.int32), np.int32),
    (np.float64(2.0), np.float64),          # numpy scalars too
])
def test_dtype_policy(data, dtype):
    t = tg.tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.data, np.asarray(data))
    assert tg.Tensor(data).dtype == dtype


def test_explicit_dtype_converts():
    t = tg.tensor([1, 2], dtype=tg.float64)
    assert t.dtype == np.float64
    assert tg.tensor(np.ones(2, np.float32), dtype="float64").dtype == np.float64
    assert tg.tensor(1.0, dtype=np.float16).dtype == np.float16


def test_explicit_float64_keeps_python_floats_exact():
    # Python floats asked for as float64 go straight there, not through float32
    assert tg.tensor([0.4], dtype="float64").item() == 0.4
    assert tg.tensor(0.1, dtype=tg.float64).item() == 0.1
    assert tg.tensor([[1e-10, 0.3]], dtype=np.float64).numpy().tolist() == [[1e-10, 0.3]]


def test_constructor_arguments():
    t = tg.tensor([1.0, 2.0], requires_grad=True, name="w")
    assert t.requires_grad and t.name == "w" and t.is_leaf and t.node is None and t.grad is None
    assert not tg.tensor([1.0]).requires_grad
    assert isinstance(t, tg.Tensor)


def test_numpy_array_is_shared_not_copied():
    a = np.zeros(3)
    t = tg.Tensor(a)
    assert np.shares_memory(t.data, a) and np.shares_memory(t.numpy(), a)
    # tg.tensor of a Tensor copies (a new leaf, independent of the old one)
    u = tg.tensor(t)
    assert not np.shares_memory(u.data, a)
    np.testing.assert_array_equal(u.data, a)


@pytest.mark.parametrize("data", [[1, 2], 3, True, np.arange(3), np.array([True])])
def test_int_and_bool_tensors_cannot_require_grad(data):
    with pytest.raises(TypeError, match=r"only floating-point tensors can require gradients, got dtype (int|bool)"):
        tg.tensor(data, requires_grad=True)
    t = tg.tensor(data)
    with pytest.raises(TypeError, match=r"requires_grad_: .*floating-point"):
        t.requires_grad_()
    assert not t.requires_grad


def test_int_ops_do_not_record():
    a = tg.tensor([1, 2, 3])
    b = a * 2
    assert b.dtype == np.int64 and b.node is None and not b.requires_grad
    np.testing.assert_array_equal(b.data, [2, 4, 6])


# ---------------------------------------------------------------------------
# Accessors

def test_shape_ndim_dtype_size():
    t = tg.tensor(np.zeros((2, 3, 4), dtype=np.float32))
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.dtype == np.float32 and t.size == 24
    s = tg.tensor(5.0)
    assert s.shape == () and s.ndim == 0 and s.size == 1
    e = tg.tensor(np.zeros((0, 3)))
    assert e.shape == (0, 3) and e.size == 0
    assert len(t) == 2


def test_data_read_and_assign():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    assert isinstance(w.data, np.ndarray)
    np.testing.assert_array_equal(w.data, [1.0, 2.0])
    w.data = np.array([3.0, 4.0], dtype=np.float32)   # replaces, records nothing
    np.testing.assert_array_equal(w.numpy(), [3.0, 4.0])
    assert w.node is None and w.requires_grad
    w.data = tg.tensor([5.0, 6.0])                     # a Tensor's array is taken
    np.testing.assert_array_equal(w.data, [5.0, 6.0])
    y = (w * w).sum()
    y.backward()
    np.testing.assert_allclose(w.grad.data, [10.0, 12.0])   # d(w²)/dw = 2w with the new data
    with pytest.raises(TypeError, match="data: only floating-point.*int64"):
        w.data = np.array([1, 2])


def test_numpy_item_tolist():
    t = tg.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert isinstance(t.numpy(), np.ndarray) and t.numpy() is t.data
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert tg.tensor(2.5).item() == 2.5 and isinstance(tg.tensor(2.5).item(), float)
    assert tg.tensor([7]).item() == 7 and isinstance(tg.tensor([7]).item(), int)
    assert float(tg.tensor([1.5])) == 1.5 and int(tg.tensor(3)) == 3
    with pytest.raises(ValueError, match=r"item: only one-element tensors.*shape \(2, 2\)"):
        t.item()


def test_repr_shows_values_dtype_and_op():
    x = tg.tensor([1.0, 2.0], requires_grad=True, name="x")
    r = repr(x)
    assert r.startswith("tensor([1., 2.]") and "dtype=float32" in r
    assert "requires_grad=True" in r and "name='x'" in r
    y = x * 3.0
    r = repr(y)
    assert "[3., 6.]" in r and "dtype=float32" in r and "op=mul" in r
    assert "op=" not in repr(tg.tensor([1, 2]))
    assert "dtype=int64" in repr(tg.tensor([1, 2]))
    # large tensors are summarized, not printed whole
    assert "..." in repr(tg.tensor(np.arange(1000.0)))


def test_bool_of_non_scalar_raises():
    with pytest.raises(ValueError, match=r"truth value of a Tensor with shape \(2,\) is ambiguous"):
        bool(tg.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="ambiguous"):
        if tg.tensor([1.0, 2.0]) > 0:
            pass
    assert bool(tg.tensor(1.0)) is True and bool(tg.tensor([0.0])) is False


def test_len_and_iter_of_0d_raise():
    s = tg.tensor(1.0)
    with pytest.raises(TypeError, match="0-d"):
        len(s)
    with pytest.raises(TypeError, match="0-d"):
        iter(s)


# ---------------------------------------------------------------------------
# numpy interop

def test_np_asarray():
    t = tg.tensor([[1.0, 2.0]], requires_grad=True)
    a = np.asarray(t)
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    np.testing.assert_array_equal(a, [[1.0, 2.0]])
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert np.array(t).shape == (1, 2)
    # shape queries work on a tensor that requires grad (they lose no gradient)
    assert np.shape(t) == (1, 2) and np.ndim(t) == 2 and np.size(t) == 2 and np.size(t, 1) == 2


def test_ndarray_on_the_left_defers_to_tensor():
    x = tg.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    a = np.array([2.0, -1.0, 0.5])
    y = a + x
    assert isinstance(y, tg.Tensor) and y.node.op.name == "add" and y.node.parents[1] is x
    z = a * x
    assert isinstance(z, tg.Tensor) and z.node.op.name == "mul"
    m = np.arange(6.0).reshape(2, 3) @ x
    assert isinstance(m, tg.Tensor) and m.node.op.name == "matmul"
    np.testing.assert_allclose(m.data, np.arange(6.0).reshape(2, 3) @ x.data)
    (m.sum() + z.sum()).backward()
    # d/dx Σ(Mx) = column sums of M; d/dx Σ(a ⊙ x) = a
    np.testing.assert_allclose(x.grad.data, np.arange(6.0).reshape(2, 3).sum(0) + a)


def test_numpy_function_on_tensor_records():
    x = tg.tensor(np.array([1.0, 4.0]), requires_grad=True)
    y = np.sqrt(x)
    assert isinstance(y, tg.Tensor) and y.node.op.name == "sqrt"
    np.sum(y).backward()
    np.testing.assert_allclose(x.grad.data, 0.5 / np.sqrt([1.0, 4.0]))


def test_unsupported_numpy_function_on_grad_tensor_refuses():
    x = tg.tensor(np.array([1.0, 4.0]), requires_grad=True)
    with pytest.raises(TypeError, match="numpy.cbrt is not a tensorgraph op"):
        np.cbrt(x)
    # without a gradient to lose, numpy just computes
    np.testing.assert_allclose(np.cbrt(tg.tensor(np.array([8.0]))), [2.0])


# ---------------------------------------------------------------------------
# .grad bookkeeping

def test_grad_is_none_until_computed():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    assert x.grad is None and y.grad is None
    y.backward()
    assert isinstance(x.grad, tg.Tensor)
    np.testing.assert_allclose(x.grad.data, [2.0, 4.0])
    assert y.grad is None      # non-leaves keep no .grad unless retain_grad()


def test_grad_accumulates_across_backward_calls_and_resets():
    x = tg.tensor([1.0, -2.0], requires_grad=True)
    (3.0 * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 3.0 + 2 * x.data)
    x.grad = None
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * x.data)


def test_grad_not_shared_between_tensors():
    # y = a + b gives both a and b the same incoming gradient; accumulating
    # into one must not change the other.
    a = tg.tensor([1.0], requires_grad=True)
    b = tg.tensor([1.0], requires_grad=True)
    (a + b).sum().backward()
    (a * 5.0).sum().backward()
    assert a.grad.item() == 6.0 and b.grad.item() == 1.0


@pytest.mark.parametrize("other", [np.float64(2.0), 2.0, np.arange(3), np.arange(3.0)])
def test_grad_dtype_equals_tensor_dtype(other):
    # numpy 2 promotes float32 by float64 arrays and int64 arrays; the gradient
    # must come back as float32 anyway.
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    ((x * other) + other).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, np.broadcast_to(other, (3,)))


def test_tensor_of_a_tensor_that_requires_grad_warns_that_the_graph_is_cut():
    x = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.warns(UserWarning, match=r"tensor: copying a Tensor that requires grad gives a "
                                         r"new leaf without its graph"):
        u = tg.tensor(x * 2)
    assert u.is_leaf and not u.requires_grad
    np.testing.assert_array_equal(u.data, [2.0, 4.0])


def test_numel_and_size():
    t = tg.tensor(np.zeros((2, 3)))
    assert t.numel() == t.size == 6


def test_data_is_read_only_only_while_a_graph_needs_it():
    w = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert w.data.flags.writeable
    y = (w * 3.0).sum()
    assert not w.data.flags.writeable and not w.numpy().flags.writeable
    assert not y.data.flags.writeable          # its own node still needs it
    y.backward()
    assert w.data.flags.writeable and y.data.flags.writeable
    with tg.no_grad():
        z = w * 3.0                             # nothing recorded: nothing to protect
    assert w.data.flags.writeable and z.data.flags.writeable
