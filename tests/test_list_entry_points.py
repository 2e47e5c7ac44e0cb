"""No entry point drops a graph without a word (issue 8): a list holding
Tensors that require grad, given where an array is expected, is either
stacked by recorded ops (the gradient flows) or refused with a TypeError
naming the function."""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph.ops import _exports

# Results that never carry a gradient by their nature (not a dropped graph):
# comparisons, logical ops, argmax-like ops, and constructors that use only
# an argument's shape.
NO_GRADIENT_BY_NATURE = {
    "less", "less_equal", "greater", "greater_equal", "equal", "not_equal",
    "logical_and", "logical_or", "logical_not", "argmax", "argmin", "argsort", "any", "all",
    "zeros_like", "ones_like", "full_like", "rand_like", "randn_like", "bernoulli",
}


def leaf() -> tg.Tensor:
    return tg.tensor(np.array([0.3, 0.5, 0.7]), requires_grad=True)


def _required_positionals(fn: Any) -> int:
    params = inspect.signature(fn).parameters.values()
    return max(1, sum(1 for p in params if p.default is inspect.Parameter.empty
                      and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)))


CASES = [(name, pos) for name in _exports.__all__
         for pos in range(_required_positionals(getattr(tg, name)))]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # log of the template values
@pytest.mark.parametrize("name, pos", CASES)
def test_a_list_of_tensors_is_recorded_or_refused(name: str, pos: int) -> None:
    fn = getattr(tg, name)
    x = leaf()
    other = tg.tensor(np.array([[0.2, 0.4, 0.6], [0.1, 0.2, 0.3]]))
    args = [[x, x * 2.0] if i == pos else other
            for i in range(_required_positionals(fn))]
    try:
        out = fn(*args)
    except (TypeError, ValueError, IndexError):
        return          # refused (these argument templates do not fit every op)
    outs = [o for o in (out if isinstance(out, (list, tuple)) else [out])
            if isinstance(o, tg.Tensor)]
    assert outs, f"{name}: returned {type(out).__name__}"
    if name in NO_GRADIENT_BY_NATURE:
        return
    assert any(o.requires_grad for o in outs), f"{name}: the graph of position {pos} was dropped"
    sum(o.astype("float64").sum() for o in outs if o.requires_grad).backward()
    assert x.grad is not None, f"{name}: no gradient reached the Tensor in the list"


def test_setitem_with_a_list_of_tensors_records() -> None:
    x = leaf()
    t = tg.tensor(np.zeros((2, 3)))
    t[0] = [x[0], 2.0 * x[1], x[2]]
    assert t.requires_grad
    (t * np.arange(6.0).reshape(2, 3)).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 2.0, 2.0])
    # a plain list still writes values, under no_grad or not
    u = tg.tensor(np.zeros(3))
    u[1:] = [4.0, 0.1]
    np.testing.assert_array_equal(u.data, [0.0, 4.0, 0.1])     # float64's 0.1, not float32's


@pytest.mark.parametrize("loss", ["mse", "squared_error", "binary_cross_entropy"])
def test_loss_targets_given_as_a_list_of_tensors_keep_their_graph(loss: str) -> None:
    fn = getattr(tg.losses, loss)
    y = tg.tensor(np.array([[0.1, 0.2], [0.3, 0.4]]))
    a = tg.tensor(np.array(0.5), requires_grad=True)
    fn(y, [[a, a], [a, 1.0 - a]]).backward()
    # mse: mean of (y - t)² → dL/da = Σ -2(y - t)·dt/da / 4
    t = np.array([[0.5, 0.5], [0.5, 0.5]])
    d = np.array([[1.0, 1.0], [1.0, -1.0]])
    if loss == "mse":
        expected = (-2 * (y.data - t) * d).sum() / 4
    elif loss == "squared_error":
        expected = (-(y.data - t) * d).sum()
    else:                                  # softplus(z) - t·z: dL/dt = -z, mean over 4
        expected = (-y.data * d).sum() / 4
    assert a.grad is not None, f"{loss}: the targets' graph was dropped"
    np.testing.assert_allclose(a.grad.item(), expected, rtol=1e-12)


def test_cross_entropy_probability_targets_as_a_list_of_tensors() -> None:
    z = tg.tensor(np.array([[1.0, 2.0, 0.5]]))
    p = tg.tensor(np.array(0.25), requires_grad=True)
    tg.losses.cross_entropy(z, [[p, 0.5, 0.5 - p]]).backward()
    logp = z.data - np.log(np.exp(z.data).sum())
    # loss = -Σ t_c log p_c: dL/dp = -(log p_0 - log p_2)
    np.testing.assert_allclose(p.grad.item(), -(logp[0, 0] - logp[0, 2]), rtol=1e-12)


def test_loss_predictions_given_as_a_list_of_tensors_are_stacked() -> None:
    a = tg.tensor(np.array([0.2, 0.4]), requires_grad=True)
    tg.losses.mse([a, 2.0 * a], np.zeros((2, 2))).backward()
    # mean of a² and 4a² over 4 elements: d/da = (2a + 8a)/4
    np.testing.assert_allclose(a.grad.data, 10 * a.data / 4, rtol=1e-12)


@pytest.mark.parametrize("call", [lambda s: tg.arange(s), lambda s: tg.arange(0.0, s),
                                  lambda s: tg.linspace(s, 1.0, 3),
                                  lambda s: tg.linspace(0.0, s, 3)])
def test_constructors_refuse_a_tensor_that_requires_grad(call: Any) -> None:
    s = tg.tensor(np.array(2.0), requires_grad=True)
    with pytest.raises(TypeError, match=r"(arange|linspace): (start|stop) is a Tensor that "
                                        r"requires grad"):
        call(s)
    assert call(s.detach()).shape[0] >= 2       # a plain Tensor is fine


def test_like_constructors_take_a_list_of_tensors_for_its_shape() -> None:
    x = leaf()
    assert tg.zeros_like([x, x]).shape == (2, 3)
    assert tg.ones_like([x, x]).dtype == np.float64
    assert not x._saves                          # nothing recorded on x


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", sorted(tg.all_ops()))
def test_an_op_called_on_a_list_of_tensors_records_or_refuses(name: str) -> None:
    # Ops compute plain numpy on arrays; a list holding Tensors that require
    # grad is not an array: it is stacked, recorded, as everywhere else.
    op = tg.all_ops()[name]
    x = leaf()
    try:
        out = op([x, x * 2.0])
    except (TypeError, ValueError, IndexError):
        return          # needs other arguments
    assert isinstance(out, (tg.Tensor, tuple)), f"{name}: returned {type(out).__name__}"
    outs = out if isinstance(out, tuple) else (out,)
    if op.differentiable and outs[0].dtype.kind == "f":
        assert outs[0].requires_grad, f"{name}: the graph was dropped"


def test_a_user_op_called_on_a_list_of_tensors_keeps_the_graph() -> None:
    double = tg.defop("double", lambda a: np.multiply(a, 2), lambda g, out, a: 2 * g)
    x = leaf()
    double([x, 3.0 * x]).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [8.0, 8.0, 8.0])
    np.testing.assert_array_equal(double([1.0, 2.0]), [2.0, 4.0])   # plain numpy still


def test_backward_gradient_given_as_a_list_of_tensors_keeps_its_graph() -> None:
    # With create_graph=True the gradient's own graph is differentiated too.
    x = leaf()
    s = tg.tensor(np.array(2.0), requires_grad=True)
    y = x * x
    y.backward([s, 3.0 * s, s * s], create_graph=True)     # x.grad = 2x·[s, 3s, s²]
    x.grad.sum().backward()
    # d/ds Σ 2x_i v_i(s) = 2(x0 + 3 x1 + 2 s x2)
    np.testing.assert_allclose(s.grad.item(), 2 * (0.3 + 3 * 0.5 + 2 * 2.0 * 0.7), rtol=1e-12)


@pytest.mark.parametrize("fname, argname, call", [
    ("leaky_relu", "negative_slope", lambda x, s: tg.leaky_relu(x, s)),
    ("pad", "constant_values", lambda x, s: tg.pad(x, 1, constant_values=s)),
    ("round", "decimals", lambda x, s: tg.round(x, s)),
    ("std", "ddof", lambda x, s: tg.std(x, ddof=s)),
    ("var", "ddof", lambda x, s: x.var(ddof=s)),
    ("norm", "ord", lambda x, s: tg.norm(x, ord=s)),
])
def test_a_tensor_that_requires_grad_as_a_constant_argument_is_refused(fname, argname,
                                                                       call) -> None:
    # these arguments are not differentiated: a gradient would be lost silently
    x = leaf()
    s = tg.tensor(np.array(1.0), requires_grad=True)
    with pytest.raises(TypeError, match=rf"^{fname}: {argname} is a Tensor that requires grad, "
                                        rf"but {fname} does not differentiate {argname}"):
        call(x, s)
    out = call(x, s.detach())                  # its value, on purpose
    ref = call(x, 1.0 if argname != "decimals" else 1)
    np.testing.assert_array_equal(out.data, ref.data)
