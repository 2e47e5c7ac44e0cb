"""tg.data's image transforms (chapter 5's preprocessing pipelines), the data
loader applying them per epoch, and the MNIST subset shipped in the package.

Each transform is checked against what it promises, written out here: a crop
is a window of the zero-padded image, a shift a displaced copy, a flip a
mirror, a standardised image has mean 0 and variance 1."""
import configparser
import fnmatch
import gzip
import hashlib
import shutil
import subprocess
import sys
import zipfile
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from tensorgraph import data

ROOT = Path(__file__).resolve().parents[1]
FULL_MNIST = ROOT.parent / "shared" / "data" / "mnist"


def images(n=64, c=2, h=7, w=9, seed=0):
    """Distinct random images, so that every window and mirror is recognisable."""
    return np.random.default_rng(seed).uniform(0.1, 1.0, size=(n, c, h, w)).astype(np.float32)


def shifted(x, dy, dx):
    """x moved down dy and right dx pixels, zeros where nothing moved in."""
    out = np.zeros_like(x)
    H, W = x.shape[-2:]
    out[..., max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
        x[..., max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
    return out


# -- the transforms, one by one ------------------------------------------------------

def test_random_crop_takes_a_window_of_the_padded_image():
    x = images()
    out = data.RandomCrop((5, 6), padding=1, seed=0)(x)
    assert out.shape == (64, 2, 5, 6) and out.dtype == x.dtype
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    used = set()
    for n in range(len(x)):
        hits = [(t, l) for t in range(9 - 5 + 1) for l in range(11 - 6 + 1)
                if np.array_equal(out[n], padded[n, :, t:t + 5, l:l + 6])]
        assert len(hits) == 1, n
        used.add(hits[0])
    assert len(used) > 10   # positions drawn per image, not one for the batch


def test_random_shift_moves_each_image_within_max_shift():
    x = images(n=200, c=1)
    out = data.RandomShift(2, seed=1)(x)
    assert out.shape == x.shape
    moves = []
    for n in range(len(x)):
        hits = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                if np.array_equal(out[n], shifted(x[n], dy, dx))]
        assert len(hits) == 1, n
        moves.append(hits[0])
    assert set(moves) == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}
    # As documented: a shift is the crop of the input's size after zero padding.
    np.testing.assert_array_equal(
        data.RandomShift((2, 2), seed=5)(x), data.RandomCrop(x.shape[2:], padding=2, seed=5)(x))
    np.testing.assert_array_equal(data.RandomShift(0, seed=0)(x), x)


def test_random_horizontal_flip_mirrors_with_probability_p():
    x = images(n=2000, c=1, h=3, w=4)
    out = data.RandomHorizontalFlip(0.3, seed=0)(x)
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[..., ::-1], axis=(1, 2, 3))
    assert np.all(same ^ mirrored)                         # each one or the other
    assert abs(mirrored.mean() - 0.3) < 0.05               # binomial sd ~0.01
    np.testing.assert_array_equal(data.RandomHorizontalFlip(0.0)(x), x)
    np.testing.assert_array_equal(data.RandomHorizontalFlip(1.0)(x), x[..., ::-1])
    assert "digit" in data.RandomHorizontalFlip.__doc__    # why not for MNIST


def test_standardize_gives_each_image_mean_0_and_variance_1():
    x = images(n=10).astype(np.float64) * np.arange(1, 11)[:, None, None, None] + 3
    out = data.Standardize()(x)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(1, 2, 3)), 1, rtol=1e-12)
    np.testing.assert_allclose(out[4], (x[4] - x[4].mean()) / x[4].std(), rtol=1e-12)
    # A constant image (a blank one) is safe: zeros, not NaN.
    flat = np.full((2, 1, 4, 4), 7, dtype=np.uint8)
    z = data.Standardize()(flat)
    assert z.dtype == np.float32 and np.all(z == 0)
    # A nearly constant one is divided by the floor 1/sqrt(C*H*W), not by its tiny deviation.
    tiny = np.zeros((1, 1, 4, 4))
    tiny[0, 0, 0, 0] = 1e-6
    np.testing.assert_allclose(data.Standardize()(tiny), (tiny - tiny.mean()) * 4, rtol=1e-12)


def test_compose_applies_in_order_with_one_generator():
    x = images()
    crop, flip = data.RandomCrop(6, padding=2), data.RandomHorizontalFlip()
    both = data.Compose([crop, flip, data.Standardize()])
    got = both(x, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    expected = data.Standardize()(flip(crop(x, rng), rng))
    np.testing.assert_array_equal(got, expected)
    assert "RandomCrop(size=(6, 6), padding=(2, 2))" in repr(both)
    # A plain function fits in too.
    np.testing.assert_array_equal(data.Compose([lambda a: a * 2])(x), x * 2)


def test_seeds_reproduce_and_the_input_is_untouched():
    x = images()
    before = x.copy()
    for make in (lambda s: data.RandomCrop(7, padding=3, seed=s),
                 lambda s: data.RandomShift(3, seed=s),
                 lambda s: data.RandomHorizontalFlip(seed=s)):
        a, b, c = make(4)(x), make(4)(x), make(5)(x)
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
        t = make(4)
        assert not np.array_equal(t(x), t(x))   # its generator moves on
    np.testing.assert_array_equal(x, before)
    # A generator passed to the call wins over the transform's own seed.
    t1, t2 = data.RandomShift(2, seed=0), data.RandomShift(2, seed=99)
    np.testing.assert_array_equal(t1(x, np.random.default_rng(8)), t2(x, np.random.default_rng(8)))


# -- the data loader -------------------------------------------------------------------

def augmenting_loader(seed, **kw):
    X = images(n=40, c=1, h=8, w=8)
    y = np.arange(40)
    t = data.Compose([data.RandomShift(2), data.RandomHorizontalFlip()])
    return data.DataLoader(X, y, batch_size=16, seed=seed, transform=t, **kw), X


def test_loader_same_seed_same_batches_exactly():
    a, _ = augmenting_loader(7)
    b, _ = augmenting_loader(7)
    for _ in range(3):   # epochs
        for (xa, ya), (xb, yb) in zip(a, b):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    c, _ = augmenting_loader(8)
    a2, _ = augmenting_loader(7)
    assert not np.array_equal(next(iter(c))[0], next(iter(a2))[0])


def test_loader_augments_afresh_each_epoch_and_keeps_the_data():
    loader, X = augmenting_loader(0, shuffle=False)
    before = X.copy()
    first = np.concatenate([xb for xb, _ in loader])
    second = np.concatenate([xb for xb, _ in loader])
    assert first.shape == X.shape
    changed = np.any(first != second, axis=(1, 2, 3))
    assert changed.mean() > 0.5          # most images got another shift or flip
    np.testing.assert_array_equal(loader.X, before)
    # Each batch row is an augmented version of the same example: a shift, maybe mirrored.
    for n in range(len(X)):
        assert any(np.array_equal(first[n], shifted(v, dy, dx)) for v in (X[n], X[n, ..., ::-1])
                   for dy in range(-2, 3) for dx in range(-2, 3))


def test_loader_transform_leaves_the_shuffling_alone():
    X, y = images(n=30, c=1, h=4, w=4), np.arange(30)
    plain = data.DataLoader(X, y, 8, seed=3)
    aug = data.DataLoader(X, y, 8, seed=3, transform=data.RandomHorizontalFlip())
    for _ in range(2):
        np.testing.assert_array_equal(np.concatenate([b for _, b in plain]),
                                      np.concatenate([b for _, b in aug]))


# -- bad input -------------------------------------------------------------------------

def test_errors_name_the_transform_and_the_shape():
    flat = np.zeros((5, 784), np.float32)
    for t in (data.RandomCrop(28), data.RandomShift(2), data.RandomHorizontalFlip(),
              data.Standardize()):
        name = type(t).__name__
        with pytest.raises(ValueError, match=rf"{name}: expected an image batch of shape "
                                             r"\(N, C, H, W\), got shape \(5, 784\) \(reshape"):
            t(flat)
    with pytest.raises(ValueError, match=r"RandomCrop: crop size \(32, 32\) is larger than the "
                                         r"padded image \(30, 30\) \(input shape "
                                         r"\(2, 1, 28, 28\), padding \(1, 1\)\)"):
        data.RandomCrop(32, padding=1)(np.zeros((2, 1, 28, 28)))
    with pytest.raises(ValueError, match=r"RandomCrop: size must be an integer >= 1 or a pair"):
        data.RandomCrop(0)
    with pytest.raises(ValueError, match=r"RandomShift: max_shift must be an integer >= 0"):
        data.RandomShift(-1)
    with pytest.raises(ValueError, match=r"RandomHorizontalFlip: p must be a probability in "
                                         r"\[0, 1\], got 1.5"):
        data.RandomHorizontalFlip(1.5)
    with pytest.raises(TypeError, match="Compose: transform 1 is a int, not callable"):
        data.Compose([data.Standardize(), 3])
    with pytest.raises(TypeError, match="DataLoader: transform must be callable"):
        data.DataLoader(flat, np.zeros(5), transform="flip")
    # Through the loader, the transform's own message reaches the user.
    loader = data.DataLoader(flat, np.zeros(5), transform=data.RandomShift(1))
    with pytest.raises(ValueError, match=r"RandomShift: expected an image batch .* got shape "
                                         r"\(5, 784\)"):
        next(iter(loader))


# -- the shipped subset -------------------------------------------------------------------

SUBSET_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_subset_ships_in_the_package_and_loads():
    folder = files("tensorgraph").joinpath("datasets", "mnist_small")
    sizes = {name: len(folder.joinpath(name).read_bytes()) for name in SUBSET_FILES}
    assert sum(sizes.values()) < 600_000, sizes          # well under 1 MB
    assert "Selection rule" in folder.joinpath("SOURCE.md").read_text(encoding="utf-8")
    Xtr, ytr, Xte, yte = data.load_mnist_subset()
    assert Xtr.shape == (2000, 784) and Xte.shape == (500, 784)
    assert Xtr.dtype == np.float32 and ytr.dtype == np.int64 and 0 <= Xtr.min() < Xtr.max() <= 1
    assert np.bincount(ytr).tolist() == [200] * 10 and np.bincount(yte).tolist() == [50] * 10
    # The same files read as a standard MNIST folder give the same arrays.
    same = data.load_mnist(str(folder), verify=False)
    for a, b in zip(same, (Xtr, ytr, Xte, yte)):
        np.testing.assert_array_equal(a, b)


def test_package_data_lists_the_subset():
    """setup.cfg's package_data must match every shipped file, or a
    non-editable install leaves them out (the slow test below builds a wheel)."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    patterns = [p.strip() for p in cfg["options.package_data"]["tensorgraph"].split(",")]
    for name in SUBSET_FILES + ["SOURCE.md"]:
        rel = f"datasets/mnist_small/{name}"
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), (rel, patterns)
    assert "scikit-learn" in cfg["options.extras_require"]["examples"]


def test_subset_checksums_are_verified(monkeypatch):
    table = dict(data._MNIST_SMALL)
    magic, count, _, _ = table["t10k-labels-idx1-ubyte"]
    table["t10k-labels-idx1-ubyte"] = (magic, count, "0" * 64, "1" * 64)
    monkeypatch.setattr(data, "_MNIST_SMALL", table)
    with pytest.raises(ValueError, match="load_mnist_subset: .*t10k-labels-idx1-ubyte.gz is not "
                                         "the shipped MNIST subset file"):
        data.load_mnist_subset()
    assert data.load_mnist_subset(verify=False)[3].shape == (500,)


@pytest.mark.slow
@pytest.mark.optional   # the full MNIST files are not in CI
def test_selection_rule_reproduces_the_subset_from_the_full_files():
    if not FULL_MNIST.is_dir():
        pytest.skip(f"{FULL_MNIST} not found")
    Xtr, ytr, Xte, yte = data.load_mnist(FULL_MNIST)
    sub = data.load_mnist_subset()
    for (X, y), (Xs, ys), k in (((Xtr, ytr), sub[:2], 200), ((Xte, yte), sub[2:], 50)):
        keep = []
        counts = [0] * 10
        for i, label in enumerate(y):         # the rule, as a loop: first k of each digit
            if counts[label] < k:
                counts[label] += 1
                keep.append(i)
        np.testing.assert_array_equal(Xs, X[keep])
        np.testing.assert_array_equal(ys, y[keep])


@pytest.mark.slow
def test_a_built_wheel_contains_the_subset(tmp_path):
    """A non-editable install gets the files: build a wheel from a copy of the
    source and look inside."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "tensorgraph", src / "tensorgraph",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel, = (tmp_path / "dist").glob("tensorgraph-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for name in SUBSET_FILES + ["SOURCE.md"]:
            assert f"tensorgraph/datasets/mnist_small/{name}" in names
        raw = z.read("tensorgraph/datasets/mnist_small/t10k-labels-idx1-ubyte.gz")
    assert hashlib.sha256(gzip.decompress(raw)).hexdigest() == \
        data._MNIST_SMALL["t10k-labels-idx1-ubyte"][3]
