"""PyTorch's dim=/keepdim=/dims= spellings, accepted wherever they do not
collide with numpy's (issue 8, finding 3), on the functions and the methods;
giving both spellings is an error naming the function."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

import tensorgraph as tg

A = np.random.default_rng(0).standard_normal((2, 3, 4))


def x() -> tg.Tensor:
    return tg.tensor(A.copy(), requires_grad=True)


CASES: list[tuple[str, Callable[[tg.Tensor], Any], Callable[[tg.Tensor], Any]]] = [
    ("norm", lambda t: tg.norm(t, dim=1), lambda t: tg.norm(t, axis=1)),
    ("norm keepdim", lambda t: t.norm(dim=(0, 2), keepdim=True),
     lambda t: tg.norm(t, axis=(0, 2), keepdims=True)),
    ("sort", lambda t: tg.sort(t, dim=1), lambda t: tg.sort(t, axis=1)),
    ("sort method", lambda t: t.sort(dim=0), lambda t: tg.sort(t, axis=0)),
    ("argsort", lambda t: tg.argsort(t, dim=1), lambda t: tg.argsort(t, axis=1)),
    ("stack", lambda t: tg.stack([t, t * 2], dim=2), lambda t: tg.stack([t, t * 2], axis=2)),
    ("squeeze", lambda t: tg.squeeze(t[:, :1], dim=1), lambda t: tg.squeeze(t[:, :1], axis=1)),
    ("squeeze method", lambda t: t[:1].squeeze(dim=0), lambda t: tg.squeeze(t[:1], axis=0)),
    ("flip", lambda t: tg.flip(t, dims=(0, 2)), lambda t: tg.flip(t, axis=(0, 2))),
    ("roll", lambda t: tg.roll(t, 1, dims=1), lambda t: tg.roll(t, 1, axis=1)),
    ("cumsum", lambda t: t.cumsum(dim=2), lambda t: tg.cumsum(t, axis=2)),
    ("cat", lambda t: tg.cat([t, t], dim=1), lambda t: tg.concat([t, t], axis=1)),
    ("softmax", lambda t: t.softmax(dim=0), lambda t: tg.softmax(t, axis=0)),
    ("log_softmax", lambda t: tg.log_softmax(t, dim=1), lambda t: tg.log_softmax(t, axis=1)),
]


@pytest.mark.parametrize("name, torch_style, numpy_style", CASES, ids=[c[0] for c in CASES])
def test_pytorch_spelling_gives_the_numpy_result(name: str, torch_style: Any,
                                                 numpy_style: Any) -> None:
    a, b = x(), x()
    got, want = torch_style(a), numpy_style(b)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got.data, want.data)
    if got.requires_grad:
        w = np.cos(np.arange(got.size)).reshape(got.shape)
        (got * w).sum().backward()
        (want * w).sum().backward()
        np.testing.assert_array_equal(a.grad.data, b.grad.data)


@pytest.mark.parametrize("call", [lambda t: tg.norm(t, axis=1, dim=1),
                                  lambda t: tg.sort(t, axis=0, dim=1),
                                  lambda t: tg.argsort(t, axis=0, dim=1),
                                  lambda t: tg.stack([t], axis=1, dim=1),
                                  lambda t: tg.squeeze(t, axis=0, dim=0),
                                  lambda t: tg.flip(t, axis=0, dims=0),
                                  lambda t: tg.roll(t, 1, axis=0, dims=0),
                                  lambda t: tg.softmax(t, axis=0, dim=1),
                                  lambda t: tg.log_softmax(t, axis=0, dim=1),
                                  lambda t: tg.cat([t], axis=1, dim=1)])
def test_both_spellings_are_refused(call: Any) -> None:
    with pytest.raises(TypeError, match=r"^\w+: give (axis= or dim=|keepdims= or keepdim=), "
                                        r"not both"):
        call(x())
