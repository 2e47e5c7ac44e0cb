"""The chapter-6 examples' pieces, checked against formulas written here:
PCA's reconstruction, the sparsity penalty, masking noise, and word2vec's
pair generation, noise distribution, subsampling, loss, gradient and
neighbours. (Their --quick runs are checked from the gallery build in
tests/test_examples.py and tests/test_gallery.py.)"""
from __future__ import annotations

import numpy as np
import pytest

import tensorgraph as tg
from conftest import load_example


@pytest.fixture(scope="module")
def pa():
    return load_example("pca_autoencoder")


@pytest.fixture(scope="module")
def ds():
    return load_example("denoising_sparse")


@pytest.fixture(scope="module")
def w2v():
    return load_example("word2vec")


# ---------------------------------------------------------------------------
# PCA and the autoencoders

def test_pca_is_the_best_rank_k_fit(pa) -> None:
    """Codes and reconstruction agree with the eigenvectors of the covariance
    (computed here by eigh, not SVD), and the error equals the discarded variance."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6)) + 3.0
    pca = pa.PCA(X, 2)
    C = np.cov(X, rowvar=False, bias=True)
    w, V = np.linalg.eigh(C)
    top = V[:, ::-1][:, :2]
    assert np.allclose(np.abs(pca.components @ top), np.eye(2), atol=1e-8)
    rec = pca.decode(pca.encode(X))
    assert pa.mse(rec, X) == pytest.approx(w[::-1][2:].sum() / X.shape[1], rel=1e-9)
    assert pca.explained_variance_ratio == pytest.approx(w[::-1][:2].sum() / w.sum())


def test_autoencoder_shape_and_code(pa) -> None:
    model = pa.Autoencoder((20, 10), code=2, seed=1)
    x = np.random.default_rng(0).random((5, 784)).astype(np.float32)
    code = model.encode(x)
    y = model(x)
    assert code.shape == (5, 2) and y.shape == (5, 784)
    assert 0.0 < float(y.data.min()) and float(y.data.max()) < 1.0   # sigmoid output
    sizes = [p.shape for p in model.parameters()]
    assert (784, 20) in sizes and (2, 10) in sizes and (20, 784) in sizes


def test_masking_noise_zeroes_the_stated_fraction(ds) -> None:
    x = np.ones((200, 784), np.float32)
    y = ds.masking_noise(0.5, seed=3)(x)
    assert set(np.unique(y)) == {0.0, 1.0}
    assert abs((y == 0).mean() - 0.5) < 0.01
    z = ds.masking_noise(0.5, seed=3)(x)
    assert np.array_equal(y, z)                       # seeded
    assert not np.array_equal(y, ds.masking_noise(0.5, seed=4)(x))   # another seed, another mask


def test_kl_penalty_value_and_gradient(ds) -> None:
    """β Σ_j KL(ρ‖ρ̂_j)/784 as written in the docstring, and its gradient
    against central differences."""
    rng = np.random.default_rng(0)
    a = 1 / (1 + np.exp(-rng.normal(size=(7, 5))))
    rho, beta = 0.05, 3.0
    r = a.mean(axis=0)
    expected = beta / 784 * np.sum(rho * np.log(rho / r) + (1 - rho) * np.log((1 - rho) / (1 - r)))

    class Holder:
        code = tg.tensor(a)
    assert float(ds.kl_penalty(Holder, rho, beta)(None).item()) == pytest.approx(expected,
                                                                                 rel=1e-10)

    def f(code: tg.Tensor) -> tg.Tensor:
        Holder.code = code
        return ds.kl_penalty(Holder, rho, beta)(None)
    assert tg.gradcheck(f, tg.tensor(a, requires_grad=True))


# ---------------------------------------------------------------------------
# word2vec

def test_skipgram_pairs_match_a_loop(w2v) -> None:
    """The vectorised pairs equal a plain loop over each sentence with the
    same window draws (no subsampling: keep = 1)."""
    sentences = [np.array([0, 1, 2, 3, 4]), np.array([5, 6]), np.array([7]),
                 np.array([1, 2, 3, 4, 5, 6, 7, 0])]
    keep = np.ones(8)
    centers, contexts, n = w2v.skipgram_pairs(sentences, keep, 3, np.random.default_rng(4))
    rng = np.random.default_rng(4)
    flat = np.concatenate(sentences)
    rng.random(len(flat))                              # the subsampling draw
    b = rng.integers(1, 4, size=len(flat))
    expected, i = [], 0
    for s in sentences:
        for p in range(len(s)):
            for q in range(max(0, p - b[i + p]), min(len(s), p + b[i + p] + 1)):
                if q != p:
                    expected.append((s[p], s[q]))
        i += len(s)
    assert n == len(flat)
    assert sorted(zip(centers.tolist(), contexts.tolist())) == sorted(
        (int(c), int(o)) for c, o in expected)


def test_subsampling_and_noise_distribution(w2v) -> None:
    counts = np.array([1000, 100, 10, 1])
    f = counts / counts.sum()
    assert np.allclose(w2v.keep_probability(counts, 1e-3), np.minimum(1, np.sqrt(1e-3 / f)))
    p = w2v.noise_distribution(counts)
    assert p.sum() == pytest.approx(1.0)
    assert np.allclose(p, counts ** 0.75 / (counts ** 0.75).sum())
    # subsampling drops frequent words, keeps rare ones
    sentences = [np.array([0] * 1000 + [3])]
    keep = w2v.keep_probability(np.array([1000, 1, 1, 1]), 1e-3)
    _, _, n = w2v.skipgram_pairs(sentences, keep, 2, np.random.default_rng(0))
    assert n < 200


def test_sgns_loss_and_gradient_against_the_formula(w2v) -> None:
    """The loss is mean_b [-log σ(u_o·v_c) - Σ_k log σ(-u_k·v_c)]; its
    gradient with respect to v_c is mean-scaled Σ_j (σ(s_j) - t_j) u_j, and
    repeated ids accumulate."""
    rng = np.random.default_rng(1)
    V, D = 9, 4
    model = w2v.SkipGram(V, D, seed=0)
    Vin, Uout = rng.normal(size=(V, D)), rng.normal(size=(V, D))
    model.inputs.weight.data[...] = Vin
    model.outputs.weight.data[...] = Uout
    centers = np.array([2, 5, 2])
    targets = np.array([[1, 3, 4], [0, 2, 2], [6, 7, 8]])
    loss = w2v.sgns_loss(model(centers, targets))
    s = np.einsum("bkd,bd->bk", Uout[targets], Vin[centers])
    sig = 1 / (1 + np.exp(-s))
    expected = np.mean(-np.log(sig[:, 0]) - np.log(1 - sig[:, 1:]).sum(axis=1))
    assert float(loss.item()) == pytest.approx(expected, rel=1e-5)
    loss.backward()
    t = np.zeros_like(s)
    t[:, 0] = 1
    g = (sig - t) / len(centers)                      # dloss/ds
    gv = np.zeros((V, D))
    np.add.at(gv, centers, np.einsum("bk,bkd->bd", g, Uout[targets]))
    gu = np.zeros((V, D))
    np.add.at(gu, targets.ravel(), (g[:, :, None] * Vin[centers][:, None, :]).reshape(-1, D))
    assert np.allclose(model.inputs.weight.grad, gv, atol=1e-5)
    assert np.allclose(model.outputs.weight.grad, gu, atol=1e-5)


def test_neighbours_by_cosine(w2v) -> None:
    E = np.array([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0], [-1.0, 0.1]])
    found = w2v.neighbours(E, ["a", "b", "c", "d"], ("a", "zzz"), k=2)
    assert list(found) == ["a"]                       # unknown words are skipped
    assert [w for w, _ in found["a"]] == ["b", "c"]
    assert found["a"][0][1] == pytest.approx(10 / np.sqrt(101), abs=1e-3)


def test_word2vec_names_a_missing_corpus(w2v, tmp_path) -> None:
    with pytest.raises(SystemExit, match="does not exist"):
        w2v.run(tmp_path / "out", quick=False, data=tmp_path / "nowhere")
