"""Losses and regularization: values against formulas written out here and hand
computations, gradients against float64 central differences."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgraph as tg
from tensorgraph import losses, nn

F64 = np.float64
REDUCTIONS = ["mean", "sum", "none"]


def t64(a, requires_grad=True):
    return tg.tensor(np.asarray(a, dtype=F64), requires_grad=requires_grad)


def reduce_ref(v, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](v)


def softmax_ref(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def ce_ref(z, t_idx):
    """−log(e^{z_t} / Σ_c e^{z_c}) per example, written out."""
    return np.array([-math.log(math.exp(row[k]) / sum(math.exp(v) for v in row))
                     for row, k in zip(z, t_idx)])


# ---------------------------------------------------------------------------
# Hand computations

def test_hand_values():
    y, t = [1.0, 2.0, 3.0], [0.0, 4.0, 3.0]          # errors 1, -2, 0
    assert losses.mse(t64(y), t).item() == pytest.approx(5 / 3)
    assert losses.mse(t64(y), t, reduction="sum").item() == pytest.approx(5.0)
    np.testing.assert_allclose(losses.mse(t64(y), t, reduction="none").data, [1, 4, 0])
    assert losses.squared_error(t64(y), t).item() == pytest.approx(2.5)   # ½ (1 + 4)
    # softmax([0, ln 3]) = [1/4, 3/4]
    z = t64([[0.0, math.log(3)], [0.0, math.log(3)]])
    np.testing.assert_allclose(losses.cross_entropy(z, [1, 0], reduction="none").data,
                               [math.log(4 / 3), math.log(4)])
    assert losses.cross_entropy(z, [1, 0]).item() == pytest.approx((math.log(4 / 3) + math.log(4)) / 2)
    assert losses.cross_entropy(t64([0.0, 0.0]), np.array(0)).item() == pytest.approx(math.log(2))
    assert losses.binary_cross_entropy(t64([0.0]), [1.0]).item() == pytest.approx(math.log(2))
    # σ(ln 3) = 3/4: −log(3/4) for t = 1, −log(1/4) for t = 0
    np.testing.assert_allclose(
        losses.binary_cross_entropy(t64([math.log(3)] * 2), [1.0, 0.0], reduction="none").data,
        [math.log(4 / 3), math.log(4)])
    s = t64([2.0, 0.5, -1.0, -3.0])
    np.testing.assert_allclose(losses.hinge(s, [1, 1, 1, -1], reduction="none").data,
                               [0.0, 0.5, 2.0, 0.0])
    assert losses.hinge(s, [1, 1, 1, -1]).item() == pytest.approx(2.5 / 4)


def test_hand_gradients():
    # ∂/∂y of ½ Σ (t − y)² is y − t: the delta rule's error term.
    y = t64([1.0, 2.0, 3.0])
    losses.squared_error(y, [0.0, 4.0, 3.0]).backward()
    np.testing.assert_allclose(y.grad.data, [1.0, -2.0, 0.0])
    # ∂/∂z of the mean cross-entropy: (softmax(z) − onehot) / N
    z = t64([[0.0, math.log(3)], [0.0, math.log(3)]])
    losses.cross_entropy(z, [1, 0]).backward()
    np.testing.assert_allclose(z.grad.data, [[0.25 / 2, -0.25 / 2], [-0.75 / 2, 0.75 / 2]])
    # hinge: −t where t·s < 1, else 0
    s = t64([2.0, 0.5, -1.0, -3.0])
    losses.hinge(s, [1, 1, 1, -1], reduction="sum").backward()
    np.testing.assert_allclose(s.grad.data, [0.0, -1.0, -1.0, 0.0])


# ---------------------------------------------------------------------------
# Formulas and gradients over random shapes

shapes = st.tuples(st.integers(1, 4), st.integers(1, 4))
seeds = st.integers(0, 2**32 - 1)


@settings(max_examples=40)
@given(shape=shapes, reduction=st.sampled_from(REDUCTIONS), seed=seeds)
def test_mse_and_squared_error(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    y, t = t64(rng.standard_normal(shape)), t64(rng.standard_normal(shape))
    np.testing.assert_allclose(losses.mse(y, t, reduction).data,
                               reduce_ref((y.data - t.data) ** 2, reduction), rtol=1e-12)
    assert losses.squared_error(y, t).item() == pytest.approx(
        0.5 * sum((a - b) ** 2 for a, b in zip(t.data.ravel(), y.data.ravel())), rel=1e-12)
    assert tg.gradcheck(lambda y, t: losses.mse(y, t, reduction), [y, t])
    assert tg.gradcheck(losses.squared_error, [y, t])



def huber_ref(d, delta):
    """Huber written out by cases: ½ d² inside [-δ, δ], δ (|d| − ½ δ) outside."""
    return np.where(np.abs(d) <= delta, 0.5 * d * d, delta * (np.abs(d) - 0.5 * delta))


@settings(max_examples=40)
@given(shape=shapes, reduction=st.sampled_from(REDUCTIONS), seed=seeds,
       delta=st.sampled_from([0.3, 1.0, 2.5]))
def test_huber_and_smooth_l1(shape, reduction, seed, delta):
    rng = np.random.default_rng(seed)
    y = t64(2 * delta * rng.standard_normal(shape))   # errors on both sides of ±δ
    t = t64(rng.standard_normal(shape))
    d = y.data - t.data
    np.testing.assert_allclose(losses.huber_loss(y, t, reduction, delta).data,
                               reduce_ref(huber_ref(d, delta), reduction), rtol=1e-12)
    np.testing.assert_allclose(losses.smooth_l1_loss(y, t, reduction, beta=delta).data,
                               reduce_ref(huber_ref(d, delta) / delta, reduction), rtol=1e-12)
    if np.min(np.abs(np.abs(d) - delta)) > 1e-4:      # central differences away from the kink
        assert tg.gradcheck(lambda y, t: losses.huber_loss(y, t, reduction, delta), [y, t])
        assert tg.gradcheck(lambda y, t: losses.smooth_l1_loss(y, t, reduction, delta), [y, t])


def test_huber_gradient_is_the_clipped_error():
    """The DQN paper's error clipping: ∂/∂y is d inside [-δ, δ], δ sign(d) outside."""
    y = t64([-3.0, -0.5, 0.2, 4.0])
    losses.huber_loss(y, np.zeros(4), "sum", delta=1.0).backward()
    np.testing.assert_allclose(y.grad.data, [-1.0, -0.5, 0.2, 1.0], rtol=1e-15)


def test_huber_and_smooth_l1_against_torch():
    from conftest import require_module
    torch = require_module("torch")
    rng = np.random.default_rng(0)
    y, t = rng.standard_normal((5, 3)) * 3, rng.standard_normal((5, 3))
    for reduction in REDUCTIONS:
        for k in (0.5, 1.0, 2.0):
            for ours, theirs, kw in ((losses.huber_loss, torch.nn.functional.huber_loss, "delta"),
                                     (losses.smooth_l1_loss, torch.nn.functional.smooth_l1_loss,
                                      "beta")):
                yt = torch.tensor(y, requires_grad=True)
                want = theirs(yt, torch.tensor(t), reduction=reduction, **{kw: k})
                want.backward(torch.ones_like(want))
                yg = t64(y)
                got = ours(yg, t, reduction, k)
                got.backward(np.ones(got.shape))
                np.testing.assert_allclose(got.data, want.detach().numpy(), rtol=1e-12)
                np.testing.assert_allclose(yg.grad.data, yt.grad.numpy(), rtol=1e-12)


def test_huber_errors_name_the_function():
    with pytest.raises(ValueError, match=r"huber_loss: delta must be positive, got 0"):
        losses.huber_loss(np.zeros(2), np.zeros(2), delta=0)
    with pytest.raises(ValueError, match=r"smooth_l1_loss: beta must be positive"):
        losses.smooth_l1_loss(np.zeros(2), np.zeros(2), beta=-1.0)
    with pytest.raises(ValueError, match=r"huber_loss: targets of shape \(3,\) do not match "
                                         r"predictions of shape \(2,\)"):
        losses.huber_loss(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match=r"huber_loss: reduction must be"):
        losses.huber_loss(np.zeros(2), np.zeros(2), reduction="avg")

@st.composite
def ce_case(draw):
    batch = draw(st.sampled_from([None, 1, 2, 5]))
    C = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(seeds))
    lead = () if batch is None else (batch,)
    z = rng.standard_normal(lead + (C,)) * 3
    idx = rng.integers(0, C, size=lead)
    return z, idx, rng


@settings(max_examples=40)
@given(case=ce_case(), reduction=st.sampled_from(REDUCTIONS), form=st.sampled_from(
    ["indices", "indices_tensor", "onehot", "onehot_tensor"]))
def test_cross_entropy_formula_and_gradients(case, reduction, form):
    z_arr, idx, _ = case
    C = z_arr.shape[-1]
    onehot = np.eye(C)[idx]
    targets = {"indices": idx, "indices_tensor": tg.tensor(idx),
               "onehot": onehot, "onehot_tensor": tg.tensor(onehot)}[form]
    z = t64(z_arr)
    loss = losses.cross_entropy(z, targets, reduction)
    assert [n.node.op.name for n in tg.walk(loss) if n.node] == ["cross_entropy"]   # one fused op
    per = ce_ref(np.atleast_2d(z_arr), np.atleast_1d(idx))
    expect = reduce_ref(per if z_arr.ndim == 2 else per[0], reduction)
    np.testing.assert_allclose(loss.data, expect, rtol=1e-10, atol=1e-12)
    assert tg.gradcheck(lambda z: losses.cross_entropy(z, targets, reduction), [z])
    # The VJP is softmax(z) − onehot, scaled by the reduction.
    g = tg.grad(loss.sum(), z)[0].data
    n = 1 if reduction != "mean" else max(per.size, 1)
    np.testing.assert_allclose(g, (softmax_ref(z_arr) - onehot) / n, rtol=1e-10, atol=1e-12)


@settings(max_examples=40)
@given(case=ce_case(), reduction=st.sampled_from(REDUCTIONS))
def test_cross_entropy_soft_targets_and_second_order(case, reduction):
    z_arr, idx, rng = case
    p = rng.uniform(0.1, 1.0, z_arr.shape)
    p /= p.sum(axis=-1, keepdims=True)
    z, t = t64(z_arr), t64(p)
    per = -(p * np.log(softmax_ref(z_arr))).sum(axis=-1)
    np.testing.assert_allclose(losses.cross_entropy(z, t, reduction).data,
                               reduce_ref(per, reduction), rtol=1e-10, atol=1e-12)
    # gradients for the logits and for probability targets
    assert tg.gradcheck(lambda z, t: losses.cross_entropy(z, t, reduction), [z, t], atol=1e-4)
    # create_graph: the VJP itself runs on Tensors and is differentiable
    for targets in (idx, t.detach()):
        def dloss(z, targets=targets):
            return tg.grad(losses.cross_entropy(z, targets, reduction).sum(), z,
                           create_graph=True)[0]
        assert tg.gradcheck(dloss, [z])


def test_cross_entropy_is_stable_at_extreme_logits():
    z = tg.tensor(np.array([[1000.0, -1000.0], [-1000.0, 1000.0], [1000.0, 1000.0]]),
                  requires_grad=True)
    loss = losses.cross_entropy(z, np.array([0, 0, 1]), reduction="none")
    np.testing.assert_allclose(loss.data, [0.0, 2000.0, math.log(2)])
    loss.sum().backward()
    np.testing.assert_allclose(z.grad.data, [[0, 0], [-1, 1], [0.5, -0.5]])
    # float32 too, and one-hot targets
    z32 = tg.tensor(np.array([[1000.0, -1000.0]], dtype=np.float32), requires_grad=True)
    l32 = losses.cross_entropy(z32, np.array([[0.0, 1.0]]))
    assert l32.dtype == np.float32 and l32.item() == 2000.0
    l32.backward()
    assert z32.grad.dtype == np.float32 and np.isfinite(z32.grad.data).all()
    b = tg.tensor(np.array([1000.0, -1000.0, 1000.0]), requires_grad=True)
    bl = losses.binary_cross_entropy(b, [0.0, 1.0, 1.0], reduction="none")
    np.testing.assert_allclose(bl.data, [1000.0, 1000.0, 0.0])
    bl.sum().backward()
    np.testing.assert_allclose(b.grad.data, [1.0, -1.0, 0.0])


def test_cross_entropy_target_errors():
    z = t64(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"class-index targets of shape \(2,\) do not match "
                                         r"logits of shape \(3, 4\): expected shape \(3,\)"):
        losses.cross_entropy(z, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"class index 4 out of range \[0, 4\) for logits of "
                                         r"shape \(3, 4\)"):
        losses.cross_entropy(z, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"class index -1 out of range"):
        losses.cross_entropy(z, tg.tensor(np.array([0, -1, 1])))
    with pytest.raises(ValueError, match=r"one-hot targets of shape \(3, 3\) do not match logits "
                                         r"of shape \(3, 4\)"):
        losses.cross_entropy(z, np.eye(3))
    with pytest.raises(ValueError, match=r"class indices must be integers"):
        losses.cross_entropy(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"rows summing to 1"):
        losses.cross_entropy(z, np.ones((3, 4)))
    with pytest.raises(TypeError, match=r"targets must be integer class indices or float one-hot "
                                        r"rows, got dtype bool"):
        losses.cross_entropy(z, np.ones((3, 4), dtype=bool))
    with pytest.raises(ValueError, match="logits must have a class axis"):
        losses.cross_entropy(t64(1.0), np.array(0))
    with pytest.raises(ValueError, match=r"cross_entropy: reduction must be 'mean', 'sum' or "
                                         r"'none', got 'avg'"):
        losses.cross_entropy(z, np.zeros(3, dtype=int), reduction="avg")


@settings(max_examples=40)
@given(shape=shapes, reduction=st.sampled_from(REDUCTIONS), seed=seeds)
def test_binary_cross_entropy(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    z, t = t64(rng.standard_normal(shape) * 3), t64(rng.uniform(0, 1, shape))
    sig = 1 / (1 + np.exp(-z.data))
    per = -t.data * np.log(sig) - (1 - t.data) * np.log(1 - sig)
    np.testing.assert_allclose(losses.binary_cross_entropy(z, t, reduction).data,
                               reduce_ref(per, reduction), rtol=1e-9, atol=1e-12)
    assert tg.gradcheck(lambda z, t: losses.binary_cross_entropy(z, t, reduction), [z, t])
    z.grad = None
    losses.binary_cross_entropy(z, t.detach(), "sum").backward()
    np.testing.assert_allclose(z.grad.data, sig - t.data, rtol=1e-10, atol=1e-12)


@settings(max_examples=40)
@given(shape=shapes, reduction=st.sampled_from(REDUCTIONS), seed=seeds)
def test_hinge(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    t = rng.choice([-1.0, 1.0], size=shape)
    # scores with t·s at least 0.05 away from the kink at 1
    margin = rng.uniform(0.05, 2, shape) * rng.choice([-1, 1], size=shape) + 1
    s = t64(margin * t)
    per = np.maximum(0, 1 - t * s.data)
    np.testing.assert_allclose(losses.hinge(s, t, reduction).data, reduce_ref(per, reduction))
    assert tg.gradcheck(lambda s: losses.hinge(s, t, reduction), [s])


def test_shape_and_target_errors():
    y = t64(np.zeros((4, 1)))
    with pytest.raises(ValueError, match=r"mse: targets of shape \(4,\) do not match predictions "
                                         r"of shape \(4, 1\)"):
        losses.mse(y, np.zeros(4))
    with pytest.raises(ValueError, match=r"squared_error: targets of shape \(3, 1\)"):
        losses.squared_error(y, np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: targets must lie in \[0, 1\]"):
        losses.binary_cross_entropy(y, np.full((4, 1), 2.0))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: targets of shape \(4,\) do not "
                                         r"match logits of shape \(4, 1\)"):
        losses.binary_cross_entropy(y, np.zeros(4))
    with pytest.raises(ValueError, match=r"hinge: targets must be -1 or \+1, got values \[0.0, 1.0\]"):
        losses.hinge(y, np.array([[0.0], [1.0], [1.0], [1.0]]))
    for fn in (losses.mse, losses.binary_cross_entropy, losses.hinge):
        with pytest.raises(ValueError, match=rf"{fn.__name__}: reduction must be 'mean', 'sum' or "
                                             r"'none', got 'total'"):
            fn(y, np.ones((4, 1)), reduction="total")
    with pytest.raises(TypeError, match="mse: predictions must be floating point, got dtype int64"):
        losses.mse(tg.tensor(np.zeros(2, dtype=np.int64)), np.zeros(2))


def test_targets_take_the_prediction_dtype():
    y = tg.tensor(np.zeros(3, dtype=np.float32), requires_grad=True)
    for fn in (losses.mse, losses.squared_error, losses.binary_cross_entropy):
        out = fn(y, np.array([1.0, 0.0, 1.0]))          # float64 targets
        assert out.dtype == np.float32, fn.__name__
    z = tg.tensor(np.zeros((2, 3), dtype=np.float32), requires_grad=True)
    assert losses.cross_entropy(z, np.eye(3)[[0, 2]]).dtype == np.float32
    assert losses.cross_entropy(z, np.array([0, 2], dtype=np.uint8)).dtype == np.float32


# ---------------------------------------------------------------------------
# Regularization

def test_penalties_by_hand():
    w = t64([[1.0, -2.0], [0.5, 0.0]])
    b = t64([3.0])
    assert losses.l1_penalty([w, b], 0.1).item() == pytest.approx(0.1 * (1 + 2 + 0.5 + 0 + 3))
    assert losses.l2_penalty([w, b], 0.1).item() == pytest.approx(0.5 * 0.1 * (1 + 4 + 0.25 + 9))
    losses.l2_penalty([w], 0.1).backward()
    np.testing.assert_allclose(w.grad.data, 0.1 * w.data)          # weight decay λw
    net = nn.FeedForward([2, 3, 1], seed=0, dtype=F64)
    expect = 0.5 * 0.01 * sum((p.data ** 2).sum() for p in net.parameters())
    assert losses.l2_penalty(net, 0.01).item() == pytest.approx(expect)
    only_w = [layer.weight for layer in net.layers]
    assert losses.l1_penalty(only_w, 1.0).item() == pytest.approx(
        sum(np.abs(w.data).sum() for w in only_w))
    with pytest.raises(ValueError, match="l2_penalty: no parameters given"):
        losses.l2_penalty([], 0.1)
    with pytest.raises(TypeError, match="l1_penalty: item 1 is a list, not a Tensor"):
        losses.l1_penalty([w, [1.0]], 0.1)


@settings(max_examples=40)
@given(shape=shapes, lam=st.floats(0.01, 2.0), seed=seeds)
def test_penalty_gradients(shape, lam, seed):
    rng = np.random.default_rng(seed)
    # |w| >= 0.05, away from the kink of |w| at 0
    w = t64(rng.uniform(0.05, 2, shape) * rng.choice([-1, 1], size=shape))
    v = t64(rng.standard_normal(3))
    assert tg.gradcheck(lambda w, v: losses.l1_penalty([w, v * 0 + 1.5], lam), [w, v])
    assert tg.gradcheck(lambda w, v: losses.l2_penalty([w, v], lam), [w, v])


def test_max_norm_constraint():
    layer = nn.Layer(3, 4, dtype=F64, seed=0)
    w = np.array([[3.0, 0.1, 0.0, 1.0], [4.0, 0.1, 0.0, 1.0], [0.0, 0.1, 2.0, 1.0]])
    layer.weight.data[...] = w
    layer.bias.data[...] = 100.0                      # biases are not constrained
    arr = layer.weight.data
    assert losses.max_norm_(layer, 2.0) == 1          # column norms: 5, 0.17, 2, 1.73
    assert layer.weight.data is arr                   # in place
    np.testing.assert_allclose(layer.weight.data[:, 0], [1.2, 1.6, 0.0])
    np.testing.assert_array_equal(layer.weight.data[:, 1:], w[:, 1:])
    np.testing.assert_array_equal(layer.bias.data, 100.0)
    assert np.linalg.norm(layer.weight.data, axis=0).max() <= 2.0 + 1e-12
    # A whole network, a neuron, and raw tensors (2-D: per column; 1-D: one vector).
    net = nn.FeedForward([5, 6, 3], init=lambda shape, rng: np.full(shape, 1.0), dtype=F64)
    assert losses.max_norm_(net, 1.0) == 6 + 3
    for l in net.layers:
        np.testing.assert_allclose(np.linalg.norm(l.weight.data, axis=0), 1.0)
    n = nn.Neuron(2, dtype=F64)
    n.weight.data[...] = [3.0, 4.0]
    assert losses.max_norm_(n, 1.0) == 1
    np.testing.assert_allclose(n.weight.data, [0.6, 0.8])
    v = t64([6.0, 8.0])
    losses.max_norm_([v], 5.0)
    np.testing.assert_allclose(v.data, [3.0, 4.0])
    assert v.grad is None and v.node is None
    with pytest.raises(ValueError, match="max_norm_: c must be positive, got 0"):
        losses.max_norm_(layer, 0)
    # (3-D and larger: convolution kernels, one filter per index of axis 0: tests/test_conv.py)
    with pytest.raises(ValueError, match=r"weights must be 1-D \(a neuron\), 2-D .* or a "
                                         r"convolution kernel .* got shape \(\)"):
        losses.max_norm_([t64(2.0)], 1.0)


def test_cross_entropy_saves_its_softmax_for_backward_and_frees_it():
    # forward saves softmax(z) for the VJP; a plain backward frees it (weakref),
    # a retained graph keeps it intact for a second, identical backward.
    import gc
    import weakref

    z = tg.tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    t = np.array([0, 2, 1, 2])
    loss = tg.losses.cross_entropy(z, t)
    saved = loss.node.saved
    e = np.exp(z.data - z.data.max(axis=1, keepdims=True))
    np.testing.assert_allclose(saved, e / e.sum(axis=1, keepdims=True))
    expected = (saved - np.eye(3)[t]) / 4
    loss.backward(retain_graph=True)
    loss.backward(retain_graph=True)
    np.testing.assert_allclose(z.grad.data, 2 * expected, rtol=1e-12)
    np.testing.assert_allclose(loss.node.saved, e / e.sum(axis=1, keepdims=True))
    ref = weakref.ref(saved)
    del saved
    loss.backward()
    gc.collect()
    assert loss.node.saved is None and ref() is None
    np.testing.assert_allclose(z.grad.data, 3 * expected, rtol=1e-12)
