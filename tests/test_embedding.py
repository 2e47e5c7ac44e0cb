"""tg.embedding / embedding_backward (tensorgraph/ops/embedding.py) and
nn.Embedding: PyTorch as the oracle (values, gradients, padding, max_norm, a
state_dict), the scatter's paths against np.add.at, second derivatives, ids
that stay integers through modules, and the errors."""
from __future__ import annotations

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require_module
from op_specs_embedding import scatter_ref
from tensorgraph.ops.embedding import _MAX_LEVELS, scatter_rows

rng = np.random.default_rng(0)


@pytest.mark.parametrize("ids", [
    np.array([3, 1, 3, 3, 0, 1]),                       # a few levels
    np.array([2] * (3 * _MAX_LEVELS)),                  # one id repeated: segment-sum path
    np.concatenate([np.array([5] * (2 * _MAX_LEVELS) + [1] * 3), np.arange(7)])[
        rng.permutation(2 * _MAX_LEVELS + 10)],         # many levels among distinct ids
    np.arange(7)[::-1],                                 # all distinct: one assignment
    np.zeros((0,), np.int64),                           # nothing
    rng.integers(0, 7, (4, 5)),                         # 2-D ids
])
@pytest.mark.parametrize("pad", [None, 3])
def test_scatter_rows_equals_add_at(ids: np.ndarray, pad: int) -> None:
    g = rng.standard_normal(ids.shape + (3,))
    want = np.zeros((7, 3))
    keep = ids != pad
    np.add.at(want, ids[keep], g[keep])
    np.testing.assert_allclose(scatter_rows(g, ids, 7, pad), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scatter_ref(g, ids, 7, pad), want, rtol=1e-12, atol=1e-12)


def test_embedding_matches_torch_values_and_gradients_with_padding() -> None:
    torch = require_module("torch")
    w = rng.standard_normal((6, 4))
    ids = np.array([[1, 2, 1, 0], [5, 0, 1, 1]])
    g = rng.standard_normal((2, 4, 4))
    for pad, scale in ((None, False), (0, False), (-1, False), (None, True), (1, True)):
        tw = torch.tensor(w, requires_grad=True)
        tout = torch.nn.functional.embedding(torch.tensor(ids), tw, padding_idx=pad,
                                             scale_grad_by_freq=scale)
        tout.backward(torch.tensor(g))
        x = tg.tensor(w, requires_grad=True)
        out = tg.embedding(ids, x, padding_idx=pad, scale_grad_by_freq=scale)
        (gw,) = tg.grad(out, [x], g)
        np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=0, atol=0)
        np.testing.assert_allclose(gw.data, tw.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_padding_row_gets_no_gradient_formula() -> None:
    w = tg.tensor(rng.standard_normal((4, 2)), requires_grad=True)
    ids = np.array([0, 2, 0, 2, 2])
    (gw,) = tg.grad(tg.embedding(ids, w, padding_idx=2).sum(), [w])
    np.testing.assert_array_equal(gw.data, [[2, 2], [0, 0], [0, 0], [0, 0]])


def test_second_derivatives_through_the_scatter() -> None:
    # L = Σ (W[ids])³ -> ∂L/∂W[v] = 3 c_v W[v]², and ∂/∂W of Σ (∂L/∂W)² = 36 c_v² W[v]³
    w0 = rng.standard_normal((5, 3))
    ids = np.array([[1, 4, 1], [1, 0, 4]])
    counts = np.bincount(ids.ravel(), minlength=5)[:, None]
    w = tg.tensor(w0, requires_grad=True)
    (g,) = tg.grad((tg.embedding(ids, w) ** 3).sum(), [w], create_graph=True)
    np.testing.assert_allclose(g.data, 3 * counts * w0 ** 2, rtol=1e-12)
    (h,) = tg.grad((g * g).sum(), [w])
    np.testing.assert_allclose(h.data, 36 * counts ** 2 * w0 ** 3, rtol=1e-12)
    assert tg.gradcheck(lambda w: tg.grad((tg.embedding(ids, w, padding_idx=4) ** 3).sum(),
                                          [w], create_graph=True)[0], [w])
    # scale_grad_by_freq: g = 3 W[v]² (the mean of c_v equal rows). Its derivative
    # goes through embedding_backward's exact adjoint (gather of G / c, gradchecked in
    # op_specs_embedding) and then the embedding's own scaled scatter (/ c again, by
    # definition): 36 W³ / c. PyTorch gives 36 W³ here: its double backward
    # (embedding_dense_double_backward) leaves the scaling out.
    w = tg.tensor(w0, requires_grad=True)
    (g,) = tg.grad((tg.embedding(ids, w, scale_grad_by_freq=True) ** 3).sum(), [w],
                   create_graph=True)
    np.testing.assert_allclose(g.data, 3 * (counts > 0) * w0 ** 2, rtol=1e-12)
    (h,) = tg.grad((g * g).sum(), [w])
    np.testing.assert_allclose(h.data, 36 * (counts > 0) * w0 ** 3 / np.maximum(counts, 1),
                               rtol=1e-12)


def test_errors_name_the_index_the_table_and_the_dtype() -> None:
    w = tg.tensor(np.zeros((10, 2)))
    with pytest.raises(IndexError, match=r"embedding: index 10 is out of range for a table of "
                                         r"10 rows"):
        tg.embedding(np.array([1, 10, 3]), w)
    with pytest.raises(IndexError, match=r"index -1 is out of range for a table of 10 rows"):
        tg.embedding(np.array([-1, 2]), w)
    with pytest.raises(TypeError, match=r"embedding: indices must be integers, got dtype "
                                        r"float64"):
        tg.embedding(np.array([1.0, 2.0]), w)
    with pytest.raises(ValueError, match=r"weight must be 2-D .* got shape \(10,\)"):
        tg.embedding(np.array([1]), np.zeros(10))
    with pytest.raises(ValueError, match=r"padding_idx must be an int in \[-10, 10\).*got 10"):
        tg.embedding(np.array([1]), w, padding_idx=10)
    with pytest.raises(ValueError, match=r"grad_output must have shape"):
        tg.ops.embedding_backward(np.zeros((3, 2)), np.array([1, 2]), 10)
    emb = tg.nn.Embedding(10, 2, seed=0)
    with pytest.raises(IndexError, match=r"index 12 is out of range for a table of 10 rows"):
        emb(np.array([[0, 12]]))
    with pytest.raises(TypeError, match=r"Embedding 'embedding': input must hold integer ids, "
                                        r"got dtype float32"):
        emb(np.array([1, 2], np.float32))
    with pytest.raises(NotImplementedError, match="sparse=True"):
        tg.nn.Embedding(10, 2, sparse=True)
    with pytest.raises(ValueError, match="num_embeddings must be a positive int, got 0"):
        tg.nn.Embedding(0, 2)


def test_a_replayed_graph_checks_its_own_ids() -> None:
    emb = tg.nn.Embedding(5, 3, seed=1)
    g = tg.capture(lambda ids: emb(ids), tg.placeholder((None, 4), "int64", name="ids"))
    ids = np.array([[0, 1, 4, 4]])
    np.testing.assert_array_equal(g(ids).data, emb.weight.data[ids])
    with pytest.raises(IndexError, match="index 7 is out of range for a table of 5 rows"):
        g(np.array([[0, 7, 1, 1]]))


def test_module_init_padding_and_integer_ids_stay_integers() -> None:
    emb = tg.nn.Embedding(1000, 16, padding_idx=0, seed=3)
    w = emb.weight.data
    assert w.dtype == np.float32 and w.shape == (1000, 16)
    np.testing.assert_array_equal(w[0], 0)
    assert abs(w[1:].mean()) < 0.02 and abs(w[1:].std() - 1) < 0.02     # N(0, 1)
    # a list of ids and an int64 array are looked up as integers (no float cast)
    net = tg.nn.Sequential(tg.nn.Embedding(50, 4, seed=0), tg.nn.Flatten(),
                           tg.nn.Linear(12, 2, seed=1))
    ids = [[49, 1, 2], [3, 3, 48]]
    out = net(ids)
    ref = net.layers[0].weight.data[np.array(ids)].reshape(2, 12) @ net.layers[2].weight.data.T \
        + net.layers[2].bias.data
    np.testing.assert_allclose(out.data, ref, rtol=1e-6)
    assert str(tg.nn.Embedding(7, 2, padding_idx=-1)) .endswith("(7, 2, padding_idx=6)")


def test_state_dict_from_torch_same_outputs_and_gradients() -> None:
    torch = require_module("torch")
    torch.manual_seed(0)
    t = torch.nn.Embedding(20, 5, padding_idx=3, scale_grad_by_freq=True)
    e = tg.nn.Embedding(20, 5, padding_idx=3, scale_grad_by_freq=True)
    e.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    ids = np.array([[3, 1, 1, 19], [0, 3, 7, 1]])
    g = rng.standard_normal((2, 4, 5)).astype(np.float32)
    tout = t(torch.tensor(ids))
    tout.backward(torch.tensor(g))
    out = e(ids)
    out.backward(g)
    np.testing.assert_array_equal(out.data, tout.detach().numpy())
    np.testing.assert_allclose(e.weight.grad.data, t.weight.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_max_norm_renormalises_like_torch() -> None:
    torch = require_module("torch")
    w = (3 * rng.standard_normal((6, 4))).astype(np.float32)
    ids = np.array([[0, 2, 2], [5, 1, 0]])
    t = torch.nn.Embedding.from_pretrained(torch.tensor(w), freeze=False, max_norm=1.5)
    e = tg.nn.Embedding.from_pretrained(w, freeze=False, max_norm=1.5)
    tout = t(torch.tensor(ids))
    out = e(ids)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(e.weight.data, t.weight.detach().numpy(), rtol=1e-6)
    assert np.linalg.norm(e.weight.data[[0, 1, 2, 5]], axis=1).max() <= 1.5 + 1e-5
    np.testing.assert_array_equal(e.weight.data[[3, 4]], w[[3, 4]])     # not looked up
    frozen = tg.nn.Embedding.from_pretrained(w)
    assert not frozen.weight.requires_grad
