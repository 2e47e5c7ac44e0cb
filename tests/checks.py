"""Checks shared by the op tests (tests/test_ops.py, tests/test_ops_numpy.py):
fresh float64 leaves, a forward value against numpy's, float64 gradcheck with
the gradients' shapes and dtypes, and second derivatives."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

import tensorgraph as tg


def leaf(a: Any, dtype: Any = np.float64) -> tg.Tensor:
    """A fresh leaf (copied: gradcheck perturbs its data in place)."""
    return tg.tensor(np.array(a, dtype=dtype), requires_grad=True)


def assert_forward(out: Any, expected: Any, rtol: float = 1e-12, atol: float = 0.0) -> None:
    """`out` is a Tensor equal to the numpy result, with its shape and dtype."""
    expected = np.asarray(expected)
    assert isinstance(out, tg.Tensor), f"expected a Tensor, got {type(out).__name__}"
    assert out.shape == expected.shape
    assert out.dtype == expected.dtype
    np.testing.assert_allclose(out.data, expected, rtol=rtol, atol=atol)


def check_grads(fn: Callable[..., Any], *arrays: Any, atol: float = 1e-5) -> None:
    """gradcheck `fn` at float64 leaves made from `arrays`, then check that each
    gradient has its input's shape and dtype (fn may return several tensors)."""
    xs = [leaf(a) for a in arrays]
    assert tg.gradcheck(fn, xs, atol=atol)
    out = fn(*xs)
    outs = [out] if isinstance(out, tg.Tensor) else list(out)
    assert all(o.requires_grad for o in outs)
    gs = tg.grad(outs, xs, [np.ones(o.shape) for o in outs], allow_unused=True)
    for x, g in zip(xs, gs):
        if g is not None:
            assert g.shape == x.shape and g.dtype == x.dtype


def op_name(t: tg.Tensor) -> str:
    assert t.node is not None, "the result was not recorded"
    return t.node.op.name
