"""Convolutions (tensorgraph/ops/conv.py, tensorgraph/nn/conv.py): forward
values against naive loops (tests/op_specs_conv.py) and PyTorch, gradients
against float64 central differences and PyTorch, second derivatives, bad
input, the modules (PyTorch state_dicts, init), max_norm_ on kernels, capture.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgraph as tg
from conftest import require_module
from op_specs_conv import conv_ref, conv_transpose_ref, conv_weight_ref, draw_conv, pads_of
from tensorgraph import nn
from tensorgraph.ops.conv import conv1d_weight, conv2d_weight

RNG = np.random.default_rng(0)


def t64(a: Any, grad: bool = True) -> tg.Tensor:
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _torch_f() -> Any:
    return require_module("torch.nn.functional")


# ---------------------------------------------------------------------------
# Argument combinations: (nd, N, C, O, spatial size, kernel, stride, padding, dilation, groups)

FAST = [
    (2, 2, 3, 4, (6, 5), (3, 3), 1, 0, 1, 1),
    (2, 1, 1, 1, (5, 5), (2, 2), 1, "same", 1, 1),          # batch 1, one channel, even kernel
    (2, 2, 4, 6, (7, 6), (3, 2), 2, 1, 1, 2),               # groups, non-square kernel, stride
    (2, 1, 2, 2, (6, 7), (2, 3), (1, 2), (2, 0), (2, 1), 1),  # pairs everywhere
    (2, 2, 2, 4, (5, 5), (3, 3), 1, "same", 2, 2),          # dilated same
    (2, 1, 3, 2, (4, 5), (4, 5), 1, "valid", 1, 1),         # kernel = input
    (1, 2, 3, 4, (9,), (3,), 2, 1, 1, 1),
    (1, 1, 4, 4, (7,), (4,), 1, "same", 2, 4),              # depthwise, even kernel, same
]

SWEEP = [(nd, n, c, o, size, k, s, p, d, g)
         for nd in (1, 2)
         for n, c, o, g in ((1, 1, 1, 1), (2, 4, 6, 2), (1, 3, 3, 3))
         for size, k in ((((7, 5), (3, 2)) if nd == 2 else ((8,), (3,))),
                         (((4, 6), (2, 3)) if nd == 2 else ((5,), (2,))))
         for s in (1, 2, 3)
         for p in (0, 1, 2, "same", "valid")
         for d in (1, 2)
         if not (p == "same" and s > 1)
         and all(dd * (kk - 1) + 1 <= nn_ + 2 * (0 if isinstance(p, str) else p)
                 for kk, nn_, dd in zip(k, size, (d,) * nd))]


def _case(nd: int, n: int, c: int, o: int, size: tuple[int, ...], k: tuple[int, ...],
          groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = RNG.standard_normal((n, c) + size)
    w = RNG.standard_normal((o, c // groups) + k)
    b = RNG.standard_normal(o)
    return x, w, b


def _tup(v: Any, nd: int) -> tuple[int, ...]:
    return (v,) * nd if isinstance(v, int) else tuple(v)


def _check_forward(case: tuple[Any, ...], with_torch: bool) -> None:
    nd, n, c, o, size, k, s, p, d, g = case
    x, w, b = _case(nd, n, c, o, size, k, g)
    fn = tg.conv2d if nd == 2 else tg.conv1d
    out = fn(x, w, b, stride=s, padding=p, dilation=d, groups=g)
    pads = pads_of(p if isinstance(p, str) else _tup(p, nd), k, _tup(d, nd))
    ref = conv_ref(x, w, b, _tup(s, nd), pads, _tup(d, nd), g)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.data, ref, rtol=1e-10, atol=1e-12)
    if p == "same":
        assert out.shape[2:] == size
    if with_torch:
        F, torch = _torch_f(), require_module("torch")
        tfn = F.conv2d if nd == 2 else F.conv1d
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        ty = tfn(tx, tw, tb, s, p, d, g)
        np.testing.assert_allclose(out.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        gy = RNG.standard_normal(ty.shape)
        ty.backward(torch.tensor(gy))
        X, W, B = t64(x), t64(w), t64(b)
        fn(X, W, B, stride=s, padding=p, dilation=d, groups=g).backward(gy)
        for ours, theirs in ((X, tx), (W, tw), (B, tb)):
            np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-10, atol=1e-10)


def _check_gradients(case: tuple[Any, ...]) -> None:
    nd, n, c, o, size, k, s, p, d, g = case
    x, w, b = _case(nd, n, c, o, size, k, g)
    fn = tg.conv2d if nd == 2 else tg.conv1d
    assert tg.gradcheck(lambda x, w, b: fn(x, w, b, s, p, d, g), [t64(x), t64(w), t64(b)])


TORCH_SAME_WARNING = "ignore:Using padding='same' with even kernel"


@pytest.mark.filterwarnings(TORCH_SAME_WARNING)
@pytest.mark.parametrize("case", FAST, ids=str)
def test_forward_matches_loops_and_torch(case: tuple[Any, ...]) -> None:
    _check_forward(case, with_torch=False)
    _check_forward(case, with_torch=True)


@pytest.mark.parametrize("case", FAST, ids=str)
def test_gradcheck(case: tuple[Any, ...]) -> None:
    _check_gradients(case)


@pytest.mark.slow
@pytest.mark.filterwarnings(TORCH_SAME_WARNING)
def test_sweep_forward_loops_torch_and_gradcheck() -> None:
    assert len(SWEEP) > 150
    for case in SWEEP:
        _check_forward(case, with_torch=False)
        _check_forward(case, with_torch=True)
        _check_gradients(case)


def test_no_bias_and_bias_none_record_two_inputs() -> None:
    x, w = t64(RNG.standard_normal((2, 3, 5, 5))), t64(RNG.standard_normal((4, 3, 3, 3)))
    y = tg.conv2d(x, w)
    assert y.node.op.name == "conv2d" and len(y.node.parents) == 2
    assert y.node.attrs == {"stride": (1, 1), "padding": ((0, 0), (0, 0)), "dilation": (1, 1),
                            "groups": 1}
    assert tg.gradcheck(lambda x, w: tg.conv2d(x, w, padding=1), [x, w])


# ---------------------------------------------------------------------------
# Transposed convolutions and the weight gradient

TRANSPOSED = [
    # nd, N, C_in, C_out, size, kernel, stride, padding, output_padding, groups, dilation
    (2, 2, 3, 4, (3, 4), (3, 3), 1, 0, 0, 1, 1),
    (2, 1, 4, 2, (3, 3), (3, 2), 2, 1, 1, 2, 1),
    (2, 2, 2, 3, (2, 3), (2, 3), (2, 3), (0, 1), (1, 2), 1, (1, 2)),
    (2, 1, 1, 1, (4, 4), (2, 2), 3, 2, 2, 1, 2),
    (1, 2, 3, 2, (5,), (3,), 2, 1, 1, 1, 1),
    (1, 1, 4, 4, (4,), (2,), 1, 0, 1, 4, 2),
]


@pytest.mark.parametrize("case", TRANSPOSED, ids=str)
def test_conv_transpose_matches_loops_torch_and_gradcheck(case: tuple[Any, ...]) -> None:
    nd, n, cin, cout, size, k, s, p, op, g, d = case
    x = RNG.standard_normal((n, cin) + size)
    w = RNG.standard_normal((cin, cout // g) + k)
    b = RNG.standard_normal(cout)
    fn = tg.conv_transpose2d if nd == 2 else tg.conv_transpose1d
    out = fn(x, w, b, s, p, op, g, d)
    ref = conv_transpose_ref(x, w, b, _tup(s, nd), _tup(p, nd), _tup(op, nd), g, _tup(d, nd))
    np.testing.assert_allclose(out.data, ref, rtol=1e-10, atol=1e-12)
    assert tg.gradcheck(lambda x, w, b: fn(x, w, b, s, p, op, g, d), [t64(x), t64(w), t64(b)])
    F, torch = _torch_f(), require_module("torch")
    tfn = F.conv_transpose2d if nd == 2 else F.conv_transpose1d
    ty = tfn(torch.tensor(x), torch.tensor(w), torch.tensor(b), s, p, op, g, d)
    np.testing.assert_allclose(out.data, ty.numpy(), rtol=1e-10, atol=1e-12)


def test_conv_weight_matches_loops_and_torch() -> None:
    x = RNG.standard_normal((2, 4, 7, 6))
    wshape = (6, 2, 3, 2)
    gout = RNG.standard_normal((2, 6, 4, 3))
    kw = dict(stride=2, padding=1, dilation=(1, 2), groups=2)
    dw = conv2d_weight(x, wshape, gout, **kw)
    np.testing.assert_allclose(dw.data, conv_weight_ref(x, gout, (3, 2), (2, 2), [(1, 1)] * 2,
                                                        (1, 2), 2), rtol=1e-10)
    torch = require_module("torch")
    theirs = torch.nn.grad.conv2d_weight(torch.tensor(x), wshape, torch.tensor(gout), **kw)
    np.testing.assert_allclose(dw.data, theirs.numpy(), rtol=1e-10)
    x1, g1 = RNG.standard_normal((2, 3, 8)), RNG.standard_normal((2, 2, 8))
    dw1 = conv1d_weight(x1, (2, 3, 3), g1, padding="same")
    np.testing.assert_allclose(dw1.data, torch.nn.grad.conv1d_weight(
        torch.tensor(x1), (2, 3, 3), torch.tensor(g1), padding=1).numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match=r"conv2d_weight: grad_output has shape \(2, 6, 3, 3\), "
                                         r"but .* gives \(2, 6, 4, 3\)"):
        conv2d_weight(x, wshape, np.zeros((2, 6, 3, 3)), **kw)


def test_vjps_are_the_conv_ops() -> None:
    # The backward of a conv is a conv_transpose (input) and a conv_weight (weight),
    # recorded as such with create_graph, and those differentiate into each other.
    x, w, b = t64(RNG.standard_normal((2, 3, 6, 6))), t64(RNG.standard_normal((4, 3, 3, 3))), \
        t64(RNG.standard_normal(4))
    y = tg.conv2d(x, w, b, stride=2, padding="valid")
    gx, gw, gb = tg.grad((y * y).sum(), [x, w, b], create_graph=True)

    def ops_of(t: tg.Tensor) -> set[str]:
        seen, stack, names = set(), [t], set()
        while stack:
            u = stack.pop()
            if u.node is None or id(u) in seen:
                continue
            seen.add(id(u))
            names.add(u.node.op.name)
            stack.extend(u.node.parents)
        return names
    assert "conv_transpose2d" in ops_of(gx)
    assert "conv2d_weight" in ops_of(gw)
    # second order: d(sum gx²)/dw runs conv_transpose2d's VJPs, conv2d_weight's
    ggw, = tg.grad((gx * gx).sum() + (gw * gw).sum(), [w], create_graph=True)
    assert {"conv2d", "conv2d_weight"} <= ops_of(ggw) | ops_of(gx)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), nd=st.sampled_from([1, 2]))
def test_the_three_ops_are_adjoint(data: st.DataObject, nd: int) -> None:
    # <conv(x, w), g> = <x, conv_transpose(g, w)> = <w, conv_weight(x, g)>, with
    # conv_transpose given the output_padding that restores x's shape.
    a = draw_conv(data, nd)
    x = RNG.standard_normal((a["n"], a["cin"]) + a["sizes"])
    w = RNG.standard_normal((a["cout"], a["cin"] // a["groups"]) + a["ks"])
    conv, ct = (tg.conv2d, tg.conv_transpose2d) if nd == 2 else (tg.conv1d, tg.conv_transpose1d)
    y = conv(x, w, stride=a["stride"], padding=a["padding"], dilation=a["dilation"],
             groups=a["groups"])
    g = RNG.standard_normal(y.shape)
    if a["padding"] == "same" or a["padding"] == "valid" or any(
            lo != hi for lo, hi in a["pads"]):
        xt = None          # asymmetric padding: PyTorch's conv_transpose has no such argument
    else:
        outpad = tuple(n + lo + hi - ((m - 1) * s + d * (k - 1) + 1) for n, m, k, s, (lo, hi), d
                       in zip(a["sizes"], y.shape[2:], a["ks"], a["stride"], a["pads"],
                              a["dilation"]))
        xt = ct(g, w, None, a["stride"], tuple(lo for lo, _ in a["pads"]), outpad, a["groups"],
                a["dilation"])
    wfn = conv2d_weight if nd == 2 else conv1d_weight
    gw = wfn(x, w.shape, g, stride=a["stride"], padding=a["padding"], dilation=a["dilation"],
             groups=a["groups"])
    lhs = float((y.data * g).sum())
    assert float((w * gw.data).sum()) == pytest.approx(lhs, rel=1e-9, abs=1e-9)
    if xt is not None:
        assert xt.shape == x.shape
        assert float((x * xt.data).sum()) == pytest.approx(lhs, rel=1e-9, abs=1e-9)


def _grad_fn(fn: Any) -> Any:
    """x ↦ ∇(Σ v ⊙ fn(x)²), recorded (create_graph), for gradcheck of second derivatives."""
    def g(*xs: tg.Tensor) -> list[tg.Tensor]:
        y = fn(*xs)
        v = tg.tensor(np.cos(np.arange(y.size)).reshape(y.shape))
        return list(tg.grad((v * y * y).sum(), list(xs), create_graph=True))
    return g


SECOND = {
    "conv2d": (lambda x, w, b: tg.conv2d(x, w, b, stride=2, padding=(1, 0), dilation=(1, 2),
                                         groups=2), [(2, 4, 5, 6), (6, 2, 3, 2), (6,)]),
    "conv2d_same": (lambda x, w, b: tg.conv2d(x, w, b, padding="same"),
                    [(1, 2, 4, 5), (3, 2, 2, 3), (3,)]),
    "conv1d": (lambda x, w, b: tg.conv1d(x, w, b, stride=2, padding="valid", dilation=2),
               [(2, 3, 9), (2, 3, 3), (2,)]),
    "conv_transpose2d": (lambda x, w, b: tg.conv_transpose2d(x, w, b, 2, 1, 1, 2, 1),
                         [(2, 4, 3, 3), (4, 3, 3, 2), (6,)]),
    "conv2d_weight": (lambda x, g: conv2d_weight(x, (4, 3, 2, 3), g, stride=2, padding=1),
                      [(2, 3, 5, 5), (2, 4, 3, 3)]),
}


@pytest.mark.parametrize("name", sorted(SECOND))
def test_second_derivatives(name: str) -> None:
    fn, shapes = SECOND[name]
    xs = [t64(RNG.standard_normal(s)) for s in shapes]
    assert tg.gradcheck(_grad_fn(fn), xs)


def test_second_derivatives_through_a_small_conv_net() -> None:
    w1, w2 = t64(RNG.standard_normal((3, 1, 3, 3)) * 0.5), t64(RNG.standard_normal((2, 3, 2, 2)))
    x = t64(RNG.standard_normal((2, 1, 6, 6)))

    def net(x: tg.Tensor, w1: tg.Tensor, w2: tg.Tensor) -> tg.Tensor:
        h = tg.tanh(tg.conv2d(x, w1, padding="same"))
        return tg.flatten(tg.conv2d(h, w2, stride=2))
    assert tg.gradcheck(_grad_fn(net), [x, w1, w2])


# ---------------------------------------------------------------------------
# Bad input

def test_bad_input_names_the_op_and_shapes() -> None:
    x, w = np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: expects a 4-D input \(N, C, H, W\), got shape "
                                         r"\(3, 5, 5\) \(for one sample, add the batch axis"):
        tg.conv2d(x[0], w)
    with pytest.raises(ValueError, match=r"conv1d: expects a 3-D input \(N, C, L\), got shape "
                                         r"\(2, 3, 5, 5\)"):
        tg.conv1d(x, w[..., 0])
    with pytest.raises(ValueError, match=r"conv2d: expects a 4-D weight, got shape \(4, 3, 3\)"):
        tg.conv2d(x, w[..., 0])
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channels but weight of shape "
                                         r"\(4, 2, 3, 3\) expects 2 .* input shape \(2, 3, 5, 5\)"):
        tg.conv2d(x, np.zeros((4, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: groups=2 must divide both the 3 input channels "
                                         r"and the 4 output channels"):
        tg.conv2d(x, np.zeros((4, 1, 3, 3)), groups=2)
    with pytest.raises(ValueError, match=r"conv2d: groups=4 must divide both .* 4 input channels "
                                         r"and the 6 output channels"):
        tg.conv2d(np.zeros((1, 4, 5, 5)), np.zeros((6, 1, 3, 3)), groups=4)
    with pytest.raises(ValueError, match=r"conv2d: kernel of size \(7, 7\) .* is larger than the "
                                         r"padded input \(5, 7\) \(input shape \(2, 3, 5, 5\)"):
        tg.conv2d(x, np.zeros((4, 3, 7, 7)), padding=(0, 1))
    with pytest.raises(ValueError, match=r"conv1d: kernel of size \(3,\) \(dilation \(3,\)\) is "
                                         r"larger"):
        tg.conv1d(np.zeros((1, 1, 6)), np.zeros((1, 1, 3)), dilation=3)
    with pytest.raises(ValueError, match=r"conv2d: padding='same' is not supported for strided "
                                         r"convolutions \(stride=\(2, 1\)\)"):
        tg.conv2d(x, w, stride=(2, 1), padding="same")
    with pytest.raises(ValueError, match=r"conv2d: stride must be >= 1, got 0"):
        tg.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match=r"conv2d: padding must be >= 0, got -1"):
        tg.conv2d(x, w, padding=-1)
    with pytest.raises(ValueError, match=r"conv2d: padding must be an int, a tuple of ints, 'same' "
                                         r"or 'valid', got 'full'"):
        tg.conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match=r"conv2d: dilation must be an int or 2 ints, got \(1, 2, 3\)"):
        tg.conv2d(x, w, dilation=(1, 2, 3))
    with pytest.raises(ValueError, match=r"conv2d: groups must be a positive int, got 0"):
        tg.conv2d(x, w, groups=0)
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(4,\) .* got \(3,\)"):
        tg.conv2d(x, w, np.zeros(3))
    with pytest.raises(ValueError, match=r"conv_transpose2d: input has 3 channels but weight of "
                                         r"shape \(4, 3, 3, 3\) expects 4"):
        tg.conv_transpose2d(x, w)
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding \(2, 2\) must be "
                                         r"smaller than stride \(2, 2\) or dilation \(1, 1\)"):
        tg.conv_transpose2d(x, np.zeros((3, 2, 3, 3)), stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"conv_transpose1d: the output would have size \(-1,\)"):
        tg.conv_transpose1d(np.zeros((1, 1, 2)), np.zeros((1, 1, 2)), padding=2)
    with pytest.raises(ValueError, match=r"conv_transpose2d: padding must be an int or a tuple of "
                                         r"ints, got 'same'"):
        tg.conv_transpose2d(x, np.zeros((3, 2, 3, 3)), padding="same")
    with pytest.raises(TypeError, match=r"conv2d: stride is a Tensor that requires grad"):
        tg.conv2d(x, w, stride=t64(1.0))


def test_flatten() -> None:
    x = t64(RNG.standard_normal((2, 3, 4, 5)))
    assert tg.flatten(x).shape == (2, 60)
    assert tg.flatten(x, 0).shape == (120,)
    assert tg.flatten(x, 1, 2).shape == (2, 12, 5)
    assert tg.flatten(x, -2).shape == (2, 3, 20)
    np.testing.assert_array_equal(tg.flatten(x, 1, 2).data, x.data.reshape(2, 12, 5))
    assert tg.flatten(x).node.op.name == "flatten"
    assert x.flatten().shape == (120,)          # the method keeps numpy's meaning
    assert tg.gradcheck(lambda x: tg.flatten(x, 1, 2) ** 2, [x])
    with pytest.raises(ValueError, match=r"flatten: start_dim=2 comes after end_dim=1 "
                                         r"\(input shape \(2, 3, 4, 5\)\)"):
        tg.flatten(x, 2, 1)
    with pytest.raises(ValueError, match=r"flatten: start_dim=4 is out of range for an input "
                                         r"of shape \(2, 3, 4, 5\)"):
        tg.flatten(x, 4)
    f = nn.Flatten()
    assert f(x).shape == (2, 60) and repr(f) == "Flatten(start_dim=1, end_dim=-1)"
    torch = require_module("torch")
    for s, e in ((1, -1), (0, 2), (2, 3), (-3, -2)):
        assert tg.flatten(x, s, e).shape == tuple(torch.flatten(torch.tensor(x.data), s, e).shape)


def test_saved_im2col_matrix_serves_the_weight_gradient_and_is_freed() -> None:
    import gc
    import weakref
    x = t64(RNG.standard_normal((2, 3, 6, 5)))
    w, b = t64(RNG.standard_normal((4, 3, 3, 2))), t64(RNG.standard_normal(4))
    y = tg.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2))
    saved = y.node.saved
    assert saved.shape == (1, 3 * 3 * 2, 2 * 3 * 5)          # (groups, Cg·kH·kW, N·OH·OW)
    gy = RNG.standard_normal(y.shape)
    y.backward(gy, retain_graph=True)
    first = w.grad.data.copy()
    np.testing.assert_allclose(first, conv2d_weight(x.data, w.shape, gy, stride=(2, 1),
                                                    padding=1, dilation=(1, 2)).data, rtol=1e-12)
    w.grad = None
    y.backward(gy)                                            # the retained graph: the same
    np.testing.assert_array_equal(w.grad.data, first)
    ref = weakref.ref(saved)
    del saved
    gc.collect()
    assert ref() is None                                      # freed with the graph
    with tg.no_grad():
        assert tg.conv2d(x, w).node is None


def test_dtypes_promote_as_numpy() -> None:
    x = RNG.standard_normal((1, 2, 4, 4)).astype(np.float32)
    w = RNG.standard_normal((3, 2, 2, 2)).astype(np.float32)
    b = RNG.standard_normal(3)                                # float64
    y = tg.conv2d(x, w, b)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.data, conv_ref(x.astype(np.float64), w.astype(np.float64), b,
                                                (1, 1), [(0, 0)] * 2, (1, 1), 1), rtol=1e-5, atol=1e-5)
    assert tg.conv2d(x, w, b.astype(np.float32)).dtype == np.float32


def test_float32_stays_float32() -> None:
    x = tg.tensor(RNG.standard_normal((2, 3, 6, 6)).astype(np.float32), requires_grad=True)
    conv = nn.Conv2d(3, 4, 3, padding="same", seed=0)
    y = conv(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32 and conv.weight.grad.dtype == np.float32
    assert conv.bias.grad.dtype == np.float32


# ---------------------------------------------------------------------------
# Modules

def test_conv_modules_load_torch_state_dicts_and_agree() -> None:
    torch = require_module("torch")
    torch.manual_seed(0)
    tnet = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 5, padding="same"), torch.nn.ReLU(),
                               torch.nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, groups=2),
                               torch.nn.Flatten(), torch.nn.Linear(6 * 4 * 4, 3))
    ours = nn.Sequential(nn.Conv2d(1, 4, 5, padding="same"), nn.ReLU(),
                         nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, groups=2),
                         nn.Flatten(), nn.Linear(6 * 4 * 4, 3))
    assert ours.load_state_dict(tnet.state_dict()) == ([], [])
    x = RNG.standard_normal((3, 1, 8, 7)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    ty = tnet(tx)
    xo = tg.tensor(x, requires_grad=True)
    y = ours(xo)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    (ty ** 2).sum().backward()
    (y ** 2).sum().backward()
    np.testing.assert_allclose(xo.grad.data, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for (name, p), (tname, tp) in zip(ours.named_parameters(), tnet.named_parameters()):
        assert name.split(".")[-1] == tname.split(".")[-1]
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-4, atol=1e-4,
                                   err_msg=name)
    # 1-D, float64, no bias, dilation
    t1 = torch.nn.Conv1d(3, 2, 3, dilation=2, bias=False).double()
    o1 = nn.Conv1d(3, 2, 3, dilation=2, bias=False, dtype=np.float64)
    assert o1.load_state_dict(t1.state_dict()) == ([], [])
    x1 = RNG.standard_normal((2, 3, 10))
    np.testing.assert_allclose(o1(x1).data, t1(torch.tensor(x1)).detach().numpy(), rtol=1e-12)
    with pytest.raises(RuntimeError, match=r"shape mismatch for 'weight': the state has shape "
                                           r"\(2, 3, 4\), the model has \(2, 3, 3\)"):
        o1.load_state_dict({"weight": np.zeros((2, 3, 4))})


def test_conv_module_arguments_and_errors() -> None:
    c = nn.Conv2d(2, 4, (3, 5), stride=(1, 2), padding=(1, 2), dilation=1, groups=2, seed=0)
    assert c.weight.shape == (4, 1, 3, 5) and c.bias.shape == (4,)
    assert c.kernel_size == (3, 5) and c.stride == (1, 2) and c.padding == (1, 2)
    assert list(dict(c.named_parameters())) == ["weight", "bias"]
    assert repr(c) == "Conv2d(2, 4, kernel_size=(3, 5), stride=(1, 2), padding=(1, 2), groups=2)"
    assert nn.Conv1d(3, 2, 4, bias=False).bias is None
    assert c.weight.dtype == np.float32
    np.testing.assert_array_equal(nn.Conv2d(2, 4, 3, seed=7).weight.data,
                                  nn.Conv2d(2, 4, 3, seed=7).weight.data)
    with pytest.raises(ValueError, match=r"Conv2d: groups=2 must divide in_channels=3"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"Conv2d: padding='same' is not supported for strided"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"Conv1d: kernel_size must be an int >= 1 or 1 of them, "
                                         r"got \(3, 3\)"):
        nn.Conv1d(3, 4, (3, 3))
    with pytest.raises(NotImplementedError, match=r"Conv2d: padding_mode='reflect' is not "
                                                  r"implemented; only 'zeros' is"):
        nn.Conv2d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"Conv2d: padding_mode must be one of"):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match=r"Conv2d: in_channels must be a positive int, got 0"):
        nn.Conv2d(0, 4, 3)
    with pytest.raises(ValueError, match=r"Conv2d 'conv': expected a 4-D input \(N, C, H, W\) "
                                         r"with C = in_channels = 2, got shape \(1, 3, 5, 5\)"):
        nn.Conv2d(2, 4, 3, name="conv")(np.zeros((1, 3, 5, 5)))


def test_conv_default_init_has_torchs_bounds() -> None:
    torch = require_module("torch")
    torch.manual_seed(0)
    for t, ours in ((torch.nn.Conv2d(8, 64, 5), nn.Conv2d(8, 64, 5, seed=0)),
                    (torch.nn.Conv1d(12, 200, 3, groups=4), nn.Conv1d(12, 200, 3, groups=4,
                                                                      seed=0))):
        fan_in = t.weight.shape[1] * math.prod(t.weight.shape[2:])
        bound = 1 / math.sqrt(fan_in)
        for a, b in ((ours.weight.data, t.weight.detach().numpy()),
                     (ours.bias.data, t.bias.detach().numpy())):
            assert a.shape == b.shape
            assert np.abs(a).max() <= bound and np.abs(b).max() <= bound
            if a.size > 1000:
                assert np.abs(a).max() == pytest.approx(bound, rel=0.01)
                assert a.std() == pytest.approx(b.std(), rel=0.05)
                assert a.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)


def test_module_calls_are_scopes() -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding="same", seed=0), nn.ReLU(), nn.Flatten(),
                        nn.Linear(2 * 4 * 4, 3, seed=0))
    x = tg.tensor(np.zeros((1, 1, 4, 4), np.float32))
    y = net(x)
    scopes = {}
    stack = [y]
    while stack:
        u = stack.pop()
        if u.node is not None:
            scopes[u.node.op.name] = u.node.scope
            stack.extend(u.node.parents)
    assert scopes["conv2d"][-1].endswith("0") and scopes["flatten"][-1].endswith("2")


def test_max_norm_on_conv_kernels_is_torchs_renorm() -> None:
    torch = require_module("torch")
    conv = nn.Conv2d(3, 5, 3, seed=0, dtype=np.float64)
    conv.weight.data[...] *= np.arange(1, 6)[:, None, None, None] * 2
    w0 = conv.weight.data.copy()
    norms = np.sqrt((w0 ** 2).sum(axis=(1, 2, 3)))
    c = float(np.median(norms))
    net = nn.Sequential(conv, nn.Flatten())
    assert tg.losses.max_norm_(net, c) == int((norms > c).sum()) == 2
    np.testing.assert_allclose(conv.weight.data,
                               torch.renorm(torch.tensor(w0), 2, 0, c).numpy(), rtol=1e-6)
    k = t64(RNG.standard_normal((4, 2, 3)) * 3, grad=False)
    k0 = k.data.copy()
    tg.losses.max_norm_([k], 1.0)
    np.testing.assert_allclose(k.data, torch.renorm(torch.tensor(k0), 2, 0, 1.0).numpy(),
                               rtol=1e-6)


def test_captured_conv_net_replays_equal_to_eager() -> None:
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding="same", seed=0), nn.ReLU(),
                        nn.Conv2d(4, 2, 3, stride=2, seed=1), nn.Flatten(),
                        nn.Linear(2 * 3 * 3, 3, seed=2))
    g = tg.capture(net, tg.placeholder((None, 1, 7, 7), name="x"))
    for n in (1, 5):
        x = RNG.standard_normal((n, 1, 7, 7)).astype(np.float32)
        np.testing.assert_array_equal(g(x).data, net(x).data)
    params = list(net.parameters())

    def step(x: tg.Tensor) -> Any:
        loss = (net(x) ** 2).mean()
        return loss, tg.grad(loss, params)
    gs = tg.capture(step, tg.placeholder((None, 1, 7, 7), name="x"))
    x = RNG.standard_normal((3, 1, 7, 7)).astype(np.float32)
    loss, grads = gs(x)
    eloss = step(tg.tensor(x))
    np.testing.assert_array_equal(loss.data, eloss[0].data)
    for a, b in zip(grads, eloss[1]):
        np.testing.assert_array_equal(a.data, b.data)


def test_conv_is_one_matmul_on_the_im2col_matrix(monkeypatch: Any) -> None:
    # BLAS, not loops: the forward and each VJP make one matmul call per op call.
    import tensorgraph.ops.conv as conv
    calls = []
    real = np.matmul

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(np, name)

        @staticmethod
        def matmul(a: Any, b: Any) -> Any:
            calls.append((a.shape, b.shape))
            return real(a, b)
    monkeypatch.setattr(conv, "np", Counting())
    x, w = t64(RNG.standard_normal((4, 3, 9, 9))), t64(RNG.standard_normal((6, 3, 3, 3)))
    y = tg.conv2d(x, w, padding=1)
    assert calls == [((1, 6, 27), (1, 27, 4 * 81))]
    y.sum().backward()
    assert len(calls) == 3
