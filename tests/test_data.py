"""tg.data: splits, minibatches, one-hot, the book's toy problems and MNIST
(IDX files written here; the real data set is never read by tests)."""
import gzip
import hashlib
import os

import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph import data


def rows(n, d=3):
    """X whose row i is all i, so a row tells where it came from; y = i."""
    return np.repeat(np.arange(n, dtype=np.float32)[:, None], d, axis=1), np.arange(n)


# -- split ---------------------------------------------------------------------------

def test_split_sizes_partition_and_alignment():
    X, y = rows(100)
    (Xtr, ytr), (Xv, yv), (Xte, yte) = data.split(X, y, val=0.1, test=0.2, seed=0)
    assert (len(Xtr), len(Xv), len(Xte)) == (70, 10, 20)
    assert sorted(np.concatenate([ytr, yv, yte]).tolist()) == list(range(100))
    for Xs, ys in ((Xtr, ytr), (Xv, yv), (Xte, yte)):
        np.testing.assert_array_equal(Xs[:, 0], ys)   # rows still match their labels
    assert not np.array_equal(ytr, np.sort(ytr))      # it shuffled


def test_split_is_seeded():
    X, y = rows(50)
    a = data.split(X, y, seed=3)
    b = data.split(X, y, seed=3)
    c = data.split(X, y, seed=4)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][1], c[0][1])


def test_split_counts_rounding_and_order():
    X, y = rows(100)
    # 0.29 · 100 is 28.999... in floating point: still 29 examples.
    (_, ytr), (_, yv), (_, yte) = data.split(X, y, val=0.29, test=5, shuffle=False)
    assert len(yv) == 29 and len(yte) == 5
    np.testing.assert_array_equal(np.concatenate([ytr, yv, yte]), np.arange(100))
    (_, ytr), (_, yv), (_, yte) = data.split(X, y, val=0, test=0)
    assert len(ytr) == 100 and len(yv) == len(yte) == 0


def test_split_errors():
    X, y = rows(10)
    with pytest.raises(ValueError, match=r"different numbers of examples: X has shape \(10, 3\), "
                                         r"y has shape \(9,\)"):
        data.split(X, y[:9])
    with pytest.raises(ValueError, match="val=0.5 and test=0.5 leave no training examples out of 10"):
        data.split(X, y, val=0.5, test=0.5)
    with pytest.raises(ValueError, match=r"val must be a fraction in \[0, 1\) or a count, got 1.5"):
        data.split(X, y, val=1.5)
    with pytest.raises(ValueError, match="test=11 asks for 11 of 10 examples"):
        data.split(X, y, test=11)


# -- minibatches -------------------------------------------------------------------------

def test_batches_cover_each_example_once():
    X, y = rows(10)
    got = list(data.batches(X, y, 4, seed=0))
    assert [len(b[0]) for b in got] == [4, 4, 2]
    ys = np.concatenate([b[1] for b in got])
    assert sorted(ys.tolist()) == list(range(10)) and ys.tolist() != list(range(10))
    for xb, yb in got:
        np.testing.assert_array_equal(xb[:, 0], yb)


def test_batches_drop_last_and_no_shuffle():
    X, y = rows(10)
    got = [yb.tolist() for _, yb in data.batches(X, y, 4, shuffle=False, drop_last=True)]
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(data.DataLoader(X, y, 4, drop_last=True)) == 2
    assert len(data.DataLoader(X, y, 4)) == 3
    assert [len(b) for _, b in data.batches(X, y, 20)] == [10]


def test_loader_reshuffles_each_epoch_reproducibly():
    X, y = rows(20)
    a, b = data.DataLoader(X, y, 5, seed=7), data.DataLoader(X, y, 5, seed=7)
    epochs_a = [np.concatenate([yb for _, yb in a]) for _ in range(3)]
    epochs_b = [np.concatenate([yb for _, yb in b]) for _ in range(3)]
    for ea, eb in zip(epochs_a, epochs_b):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(epochs_a[0], epochs_a[1])
    c = data.DataLoader(X, y, 5, seed=8)
    assert not np.array_equal(np.concatenate([yb for _, yb in c]), epochs_a[0])


def test_loader_accepts_tensors_and_rejects_bad_batch_size():
    X, y = rows(6)
    (xb, yb), = list(data.batches(tg.tensor(X), tg.tensor(y), 6, shuffle=False))
    np.testing.assert_array_equal(xb, X)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        data.DataLoader(X, y, 0)


# -- one_hot --------------------------------------------------------------------------------

def test_one_hot():
    np.testing.assert_array_equal(data.one_hot([2, 0, 1]),
                                  [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    h = data.one_hot(np.array([[1], [3]]), 5, dtype=np.float64)
    assert h.shape == (2, 1, 5) and h.dtype == np.float64 and h[1, 0, 3] == 1 and h.sum() == 2
    assert data.one_hot([1.0, 0.0]).dtype == np.float32
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got values from 0 to 3"):
        data.one_hot([0, 3], 3)
    with pytest.raises(ValueError, match="labels must be whole numbers"):
        data.one_hot([0.5])


# -- toy problems --------------------------------------------------------------------------

def test_exam_data_is_balanced_separable_and_seeded():
    X, t = data.exam_data(101, seed=0)
    assert X.shape == (101, 2) and X.dtype == np.float32 and t.dtype == np.int64
    assert (X >= 0).all() and (X <= 10).all()
    assert sorted(set(t.tolist())) == [-1, 1] and (t == 1).sum() == 50
    score = 0.4 * X[:, 0].astype(np.float64) + 0.6 * X[:, 1] - 5.0  # the hidden rule
    assert (np.sign(score) == t).all() and np.abs(score).min() >= 0.25 - 1e-6
    X2, t2 = data.exam_data(101, seed=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(t, t2)
    assert not np.array_equal(X, data.exam_data(101, seed=1)[0])
    _, t01 = data.exam_data(101, seed=0, signed=False)
    np.testing.assert_array_equal(t01, (t > 0).astype(np.int64))


def test_exam_data_perceptron_rule_converges():
    """Rosenblatt's rule written out in numpy: θ ← θ + t x on each mistake
    (with x augmented by a 1 for the bias) stops making mistakes."""
    X, t = data.exam_data(60, seed=2)
    Xa = np.hstack([np.ones((len(X), 1)), X.astype(np.float64)])
    theta = np.zeros(3)
    for _ in range(1000):
        mistakes = 0
        for x, ti in zip(Xa, t):
            if (1 if x @ theta >= 0 else -1) != ti:
                theta += ti * x
                mistakes += 1
        if mistakes == 0:
            break
    assert mistakes == 0


def test_fast_food_totals_are_the_hidden_prices():
    X, t = data.fast_food(200, seed=0, prices=(2.5, 1.25, 0.75), dtype=np.float64)
    assert X.shape == (200, 3) and t.shape == (200,)
    assert (X == np.round(X)).all() and X.min() >= 0 and X.max() <= 5
    assert (X.sum(axis=1) > 0).all()
    np.testing.assert_allclose(t, X @ np.array([2.5, 1.25, 0.75]), rtol=0, atol=1e-12)
    X2, t2 = data.fast_food(200, seed=0, prices=(2.5, 1.25, 0.75), dtype=np.float64)
    np.testing.assert_array_equal(t, t2)
    _, tn = data.fast_food(200, seed=0, prices=(2.5, 1.25, 0.75), noise=0.1, dtype=np.float64)
    assert 0.05 < np.std(tn - t) < 0.2
    assert data.fast_food(5)[0].dtype == np.float32
    with pytest.raises(ValueError, match="prices must be 3 numbers"):
        data.fast_food(5, prices=(1, 2))


def test_xor():
    X, t = data.xor()
    np.testing.assert_array_equal(X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(t, [0, 1, 1, 0])
    assert X.dtype == np.float32 and t.dtype == np.int64


# -- IDX and MNIST ----------------------------------------------------------------------------

def idx_bytes(a, magic=None):
    """An IDX file written from the spec: 0, 0, type code, ndim, big-endian dims, data."""
    header = bytes([0, 0, 0x08, a.ndim]) if magic is None else int(magic).to_bytes(4, "big")
    return header + b"".join(int(d).to_bytes(4, "big") for d in a.shape) + a.astype(np.uint8).tobytes()


STEMS = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def fake_mnist(directory, gz=True, n_train=6, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {"train_images": rng.integers(0, 256, size=(n_train, 28, 28)),
              "train_labels": rng.integers(0, 10, size=n_train),
              "test_images": rng.integers(0, 256, size=(n_test, 28, 28)),
              "test_labels": rng.integers(0, 10, size=n_test)}
    arrays["train_images"][0, 0, :2] = [0, 255]
    for key, stem in STEMS.items():
        raw = idx_bytes(arrays[key])
        name = stem + (".gz" if gz else "")
        with open(os.path.join(directory, name), "wb") as f:
            f.write(gzip.compress(raw) if gz else raw)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_reads_idx_files(tmp_path, gz):
    arrays = fake_mnist(tmp_path, gz=gz)
    Xtr, ytr, Xte, yte = data.load_mnist(tmp_path, verify=False)
    assert Xtr.shape == (6, 784) and Xte.shape == (4, 784)
    assert Xtr.dtype == np.float32 and ytr.dtype == np.int64 and yte.dtype == np.int64
    np.testing.assert_array_equal(Xtr, arrays["train_images"].reshape(6, 784).astype(np.float32) / np.float32(255))
    assert Xtr[0, 0] == 0.0 and Xtr[0, 1] == 1.0
    np.testing.assert_array_equal(ytr, arrays["train_labels"])
    np.testing.assert_array_equal(yte, arrays["test_labels"])


def test_read_idx_and_dotted_names(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "x.idx").write_bytes(idx_bytes(a))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "x.idx"), a)
    arrays = fake_mnist(tmp_path, gz=False)
    for stem in STEMS.values():  # the names some mirrors use
        os.rename(tmp_path / stem, tmp_path / stem.replace("-idx", ".idx"))
    np.testing.assert_array_equal(data.load_mnist(tmp_path, verify=False)[3],
                                  arrays["test_labels"])


def test_load_mnist_verifies_sha256(tmp_path, monkeypatch):
    fake_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with pytest.raises(ValueError, match=f"{path} is not the standard MNIST file .*verify=False"):
        data.load_mnist(tmp_path)
    # Pretend our files are the standard ones: then verify=True accepts them
    # (by the .gz hash, or by the hash of the decompressed content)...
    table = {}
    for stem in STEMS.values():
        raw = (tmp_path / (stem + ".gz")).read_bytes()
        magic = 2051 if "images" in stem else 2049
        n = 6 if stem.startswith("train") else 4
        table[stem] = (magic, n, hashlib.sha256(raw).hexdigest(),
                       hashlib.sha256(gzip.decompress(raw)).hexdigest())
    monkeypatch.setattr(data, "_MNIST", table)
    assert data.load_mnist(tmp_path)[0].shape == (6, 784)
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw, compresslevel=1))  # re-compressed: other bytes, same data
    assert data.load_mnist(tmp_path)[0].shape == (6, 784)
    # ... and one changed pixel is caught.
    changed = bytearray(raw)
    changed[500] ^= 1
    path.write_bytes(gzip.compress(bytes(changed)))
    with pytest.raises(ValueError, match=f"{path} is not the standard MNIST file"):
        data.load_mnist(tmp_path)
    assert data.load_mnist(tmp_path, verify=False)[0].shape == (6, 784)


def test_load_mnist_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere is not a directory"):
        data.load_mnist(tmp_path / "nowhere")
    fake_mnist(tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    good = labels.read_bytes()
    labels.unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte\\(.gz\\) not found"):
        data.load_mnist(tmp_path, verify=False)
    labels.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=f"{labels}: corrupt or truncated gzip data"):
        data.load_mnist(tmp_path, verify=False)
    labels.write_bytes(gzip.compress(gzip.decompress(good)[:-1]))
    with pytest.raises(ValueError, match=f"{labels}: the header says shape \\(4,\\) .*truncated"):
        data.load_mnist(tmp_path, verify=False)
    labels.write_bytes(gzip.compress(idx_bytes(np.array([1, 2, 3, 4]), magic=2051)))
    with pytest.raises(ValueError, match=f"{labels}: magic number 2051, expected 2049"):
        data.load_mnist(tmp_path, verify=False)
    labels.write_bytes(gzip.compress(idx_bytes(np.array([1, 2, 3, 12]))))
    with pytest.raises(ValueError, match=f"{labels}: label 12 out of range 0..9"):
        data.load_mnist(tmp_path, verify=False)
    labels.write_bytes(gzip.compress(idx_bytes(np.array([1, 2, 3]))))
    with pytest.raises(ValueError, match="4 t10k images but 3 labels"):
        data.load_mnist(tmp_path, verify=False)
    images = tmp_path / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(idx_bytes(np.zeros((3, 27, 28)))))
    with pytest.raises(ValueError, match=f"{images}: images of 27x28 pixels, expected 28x28"):
        data.load_mnist(tmp_path, verify=False)
    images.write_bytes(b"\x00\x00\x08")
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz: not an IDX file"):
        data.load_mnist(tmp_path, verify=False)


# -- regressions from the review ------------------------------------------------------

@pytest.mark.parametrize("bad", [None, "4", float("inf"), float("nan"), 2.5, True, 0])
def test_dataloader_bad_batch_size_names_the_argument(bad):
    X, y = rows(5)
    with pytest.raises(ValueError, match=f"DataLoader: batch_size must be a positive integer, "
                                         f"got {bad!r}"):
        data.DataLoader(X, y, batch_size=bad)
    assert data.DataLoader(X, y, batch_size=4.0).batch_size == 4
