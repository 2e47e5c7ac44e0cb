"""Bad input gets a clear exception naming the op (or argument) and the shapes;
nothing silently wrong."""
import re

import numpy as np
import pytest

import tensorgraph as tg

AxisError = np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError


def leaf(*shape, dtype=np.float32):
    return tg.tensor(np.ones(shape, dtype=dtype), requires_grad=True)


def shapes(*ss):
    """A regex for 'input shapes: (a, b), (c, d)'."""
    return re.escape("input shapes: " + ", ".join(str(s) for s in ss))


# ---------------------------------------------------------------------------
# Shape mismatches

@pytest.mark.parametrize("sa, sb", [
    ((2, 3), (2, 3)),          # inner dimensions 3 vs 2
    ((4, 2, 3), (5, 3, 2)),    # batch dimensions 4 vs 5 do not broadcast
    ((2, 3), (4,)),            # matrix @ vector of the wrong length
    ((5,), (4, 2)),            # vector @ matrix
])
def test_matmul_shape_mismatch(sa, sb):
    a, b = leaf(*sa), leaf(*sb)
    with pytest.raises(ValueError, match=r"^matmul: .*" + shapes(sa, sb)) as info:
        a @ b
    assert not str(info.value).startswith("matmul: matmul:")
    with pytest.raises(ValueError, match=r"^matmul: .*" + shapes(sa, sb)):
        tg.matmul(a, b)


def test_matmul_of_a_scalar():
    with pytest.raises(ValueError, match=r"matmul: operands must have at least 1 dimension.*\(\) and \(3,\)"):
        tg.matmul(tg.tensor(2.0), leaf(3))


def test_dot_of_misaligned_operands():
    # N-D operands follow numpy.dot (issue 8); misaligned ones name both shapes.
    with pytest.raises(ValueError, match=r"dot: shapes \(2, 2, 3\) and \(2,\) not aligned"):
        tg.dot(leaf(2, 2, 3), leaf(2))
    with pytest.raises(ValueError, match=r"dot: shapes \(2, 3\) and \(4, 2, 5\) not aligned"):
        tg.dot(leaf(2, 3), leaf(4, 2, 5))


@pytest.mark.parametrize("op, fn", [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b),
    ("add", tg.add),
    ("mul", tg.multiply),
    ("maximum", tg.maximum),
])
def test_broadcast_mismatch(op, fn):
    a, b = leaf(2, 3), leaf(4, 3)
    with pytest.raises(ValueError, match=rf"^{op}: .*could not be broadcast.*" + shapes((2, 3), (4, 3))):
        fn(a, b)


def test_broadcast_mismatch_with_ndarray_on_the_left():
    with pytest.raises(ValueError, match=r"^mul: .*" + shapes((4,), (2, 3))):
        np.ones(4) * leaf(2, 3)


@pytest.mark.parametrize("fn, ss", [
    (lambda a, b: tg.concat([a, b], axis=0), ((2, 3), (2, 2))),
    (lambda a, b: tg.concat([a, b], axis=1), ((2, 3), (3, 3))),
    (lambda a, b: tg.concat([a, b]), ((2, 3), (3,))),
])
def test_concat_shape_mismatch(fn, ss):
    a, b = leaf(*ss[0]), leaf(*ss[1])
    with pytest.raises(ValueError, match=r"^concat: .*" + shapes(*ss)):
        fn(a, b)


def test_stack_shape_mismatch():
    with pytest.raises(ValueError, match=r"^stack: .*" + shapes((2, 3), (3, 2))):
        tg.stack([leaf(2, 3), leaf(3, 2)])


def test_reshape_mismatch():
    with pytest.raises(ValueError, match=r"^reshape: cannot reshape array of size 6 into shape \(4, ?2\).*" + shapes((2, 3))):
        leaf(2, 3).reshape(4, 2)


def test_broadcast_to_mismatch():
    with pytest.raises(ValueError, match=r"^broadcast_to: .*" + shapes((2, 3))):
        tg.broadcast_to(leaf(2, 3), (4, 2))


def test_backward_gradient_of_wrong_shape():
    y = leaf(2, 3) * 2.0
    with pytest.raises(RuntimeError, match=r"backward: gradient has shape \(3, 2\) but the output has shape \(2, 3\)"):
        y.backward(np.ones((3, 2)))


# ---------------------------------------------------------------------------
# Axes out of range

@pytest.mark.parametrize("opname, fn", [
    ("sum", lambda x: x.sum(axis=2)),
    ("sum", lambda x: tg.sum(x, axis=-3)),
    ("mean", lambda x: x.mean(axis=(0, 5))),
    ("max", lambda x: x.max(axis=2)),
    ("var", lambda x: x.var(axis=7)),
    ("logsumexp", lambda x: tg.logsumexp(x, axis=2)),
    ("softmax", lambda x: tg.softmax(x, axis=2)),
    ("log_softmax", lambda x: tg.log_softmax(x, axis=-3)),
    ("concat", lambda x: tg.concat([x, x], axis=2)),
    ("stack", lambda x: tg.stack([x, x], axis=4)),
    ("transpose", lambda x: x.transpose(0, 2)),
    ("expand_dims", lambda x: tg.expand_dims(x, 5)),
    ("flip", lambda x: tg.flip(x, 3)),
    ("argmax", lambda x: x.argmax(axis=2)),
])
def test_axis_out_of_range_names_axis_and_op(opname, fn):
    with pytest.raises(AxisError, match=rf"^{opname}: axis -?\d+ is out of bounds for array of dimension \d"):
        fn(leaf(2, 3))


def test_axis_out_of_range_outside_the_op_table():
    with pytest.raises(AxisError, match=r"axis 2 is out of bounds for array of dimension 2"):
        tg.split(leaf(2, 4), 2, axis=2)
    with pytest.raises(AxisError, match=r"axis 3 is out of bounds for array of dimension 2"):
        tg.swapaxes(leaf(2, 4), 0, 3)


def test_axis_error_is_also_value_and_index_error():
    # so that code catching numpy's usual exceptions keeps working
    with pytest.raises(ValueError):
        leaf(2).sum(axis=1)
    with pytest.raises(IndexError):
        leaf(2).sum(axis=1)


def test_take_out_of_range_names_take_and_the_input_shape():
    # take is made of getitem on a reshaped input: the error must not speak of those
    with pytest.raises(IndexError, match=r"^take: index 9 is out of bounds for the flattened "
                                         r"input with size 6 \(input shape \(2, 3\)\)"):
        tg.take(leaf(2, 3), np.array([0, 9]))
    with pytest.raises(IndexError, match=r"^take: index -4 is out of bounds for axis 1 with "
                                         r"size 3 \(input shape \(2, 3\)\)"):
        tg.take(leaf(2, 3), np.array([-4]), axis=1)
    np.testing.assert_array_equal(tg.take(leaf(2, 3), np.array([-3, 2]), axis=1).shape, (2, 2))


def test_index_out_of_range_names_op_and_shape():
    with pytest.raises(IndexError, match=r"^getitem: index 5 is out of bounds.*" + shapes((2, 3))):
        leaf(2, 3)[:, 5]


# ---------------------------------------------------------------------------
# Backward misuse

def test_non_scalar_backward_needs_gradient():
    y = leaf(2, 3) * 2.0
    with pytest.raises(RuntimeError, match=r"backward: grad can be implicitly created only for scalar "
                                           r"outputs; the output has shape \(2, 3\), so pass `gradient`"):
        y.backward()


def test_backward_of_a_tensor_without_graph():
    with pytest.raises(RuntimeError, match="backward: the tensor does not require grad"):
        tg.tensor([1.0, 2.0]).sum().backward()


def test_backward_through_freed_graph():
    x = leaf(3)
    with tg.name_scope("block"):
        y = tg.exp(x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"backward: trying to backward through the graph a second time "
                                           r"\(op 'sum' in scope 'block'\).*retain_graph=True"):
        y.backward()


def test_grad_misuse():
    x = leaf(2)
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match="grad: input 0 does not require grad"):
        tg.grad(y, tg.tensor([1.0, 2.0]), retain_graph=True)
    with pytest.raises(RuntimeError, match="grad: output 0 does not require grad"):
        tg.grad(tg.tensor(1.0), x)
    with pytest.raises(ValueError, match="grad: got 2 grad_outputs for 1 outputs"):
        tg.grad(y, x, grad_outputs=[None, None])


# ---------------------------------------------------------------------------
# Integer tensors and gradients

@pytest.mark.parametrize("make, culprit", [
    (lambda: tg.tensor([1, 2], requires_grad=True), "tensor"),
    (lambda: tg.Tensor(np.arange(3), requires_grad=True), "tensor"),
    (lambda: tg.tensor([True, False], requires_grad=True), "tensor"),
    (lambda: tg.tensor(np.arange(3, dtype=np.uint8)).requires_grad_(), "requires_grad_"),
])
def test_integer_tensors_cannot_require_grad(make, culprit):
    with pytest.raises(TypeError, match=rf"^{culprit}: only floating-point tensors can require "
                                        r"gradients, got dtype (int64|bool|uint8) \(give float"):
        make()


def test_retain_grad_and_hooks_need_requires_grad():
    t = tg.tensor([1.0])
    with pytest.raises(RuntimeError, match="retain_grad: tensor does not require grad"):
        t.retain_grad()


# ---------------------------------------------------------------------------
# Unsupported operand types name the type

class Thing:
    pass


@pytest.mark.parametrize("opname, fn, typename", [
    ("add", lambda t: t + "abc", "str"),
    ("add", lambda t: "abc" + t, "str"),
    ("mul", lambda t: t * object(), "object"),
    ("mul", lambda t: object() * t, "object"),
    ("sub", lambda t: t - {"a": 1}, "dict"),
    ("div", lambda t: t / Thing(), "Thing"),
    ("pow", lambda t: t ** None, "NoneType"),
    ("matmul", lambda t: t @ "abc", "str"),
    ("less", lambda t: t < "abc", "str"),
    ("maximum", lambda t: tg.maximum(t, object()), "object"),
    ("add", lambda t: tg.add(t, {1, 2}), "set"),
])
def test_unsupported_operand_type_names_it(opname, fn, typename):
    t = leaf(2)
    with pytest.raises(TypeError, match=rf"^{opname}: unsupported operand of type {typename} "
                                        r"\(with a Tensor of shape \(2,\) and dtype float32\)"):
        fn(t)


@pytest.mark.parametrize("fn, pattern", [
    (lambda: tg.tanh("abc"), r"tanh: unsupported argument of type str"),
    (lambda: tg.concat([leaf(2), object()]), r"concat: unsupported argument of type object"),
    (lambda: tg.concat(leaf(2)), r"concat: expects a sequence of tensors, got a single Tensor"),
    (lambda: tg.tensor("abc"), r"tensor: unsupported data of dtype <U3 \(from str\)"),
    (lambda: tg.tensor(object()), r"tensor: unsupported data of dtype object \(from object\)"),
    (lambda: tg.where(np.array([1, 0]), leaf(2), leaf(2)), r"where: cond must be boolean, got dtype int64"),
])
def test_unsupported_arguments(fn, pattern):
    with pytest.raises(TypeError, match=pattern):
        fn()


def test_equality_with_none_is_identity_not_an_error():
    t = leaf(2)
    assert (t == None) is False  # noqa: E711 - Python falls back to identity
    assert (t != None) is True  # noqa: E711


def test_grad_outputs_must_match_the_outputs():
    x = tg.tensor(np.arange(3.0), requires_grad=True)
    a, b = x * 2.0, x * 3.0
    with pytest.raises(ValueError, match=r"grad: got one grad_output for 2 outputs"):
        tg.grad([a, b], x, grad_outputs=np.ones(3))
    with pytest.raises(ValueError, match=r"grad: got 1 grad_outputs for 2 outputs"):
        tg.grad([a, b], x, grad_outputs=[np.ones(3)])
    (g,) = tg.grad([a, b], x, grad_outputs=[np.ones(3), np.ones(3)])
    np.testing.assert_array_equal(g.numpy(), np.full(3, 5.0))


def test_axis_errors_of_shape_ops_name_the_op_and_shape():
    x = tg.tensor([1.0, 2.0])
    with pytest.raises(np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError,
                       match=re.escape("swapaxes (input shape (2,)): axis 2 is out of bounds")):
        tg.swapaxes(x, 0, 2)
    with pytest.raises(Exception, match=re.escape("swapaxes (input shape (2,)): axis -2")):
        x.mT
    with pytest.raises(Exception, match=re.escape("split (input shape (2,)): axis 1 is out")):
        tg.split(x, 2, axis=1)
    with pytest.raises(Exception, match=re.escape("take (input shape (2,)): axis 1 is out")):
        tg.take(x, [0], axis=1)
