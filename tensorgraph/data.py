"""Data: splits, minibatches, the book's toy problems, and MNIST.

Everything here is plain numpy (arrays in, arrays out); models turn a batch
into a Tensor with `tg.tensor(X)`. Everything random takes a `seed` (or a
`numpy.random.Generator`), so the same seed gives the same data, split and
batch order bit for bit.

Chapter 2 of the book splits data into a training set (to fit the weights), a
validation set (to choose hyperparameters and to stop early) and a test set
(touched once, to report), and trains on minibatches: small random subsets
whose gradient estimates the full gradient at a fraction of its cost.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib
from typing import Any, Iterator, Optional, Union

import numpy as np

from .tensor import Tensor

__all__ = ["split", "batches", "DataLoader", "one_hot", "exam_data", "fast_food", "xor",
           "read_idx", "load_mnist"]

Seed = Union[None, int, np.random.Generator]


def _array(x: Any, what: str) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.data
    if x is None:
        raise TypeError(f"{what} is None")
    return np.asarray(x)


def _whole(x: Any) -> bool:
    """A whole number (3 or 3.0; not True, None, "3", inf or nan), so that a
    bad argument gets the caller's message naming it, not int()'s."""
    return (isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
            and float(x).is_integer())


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _pair(X: Any, y: Any, fn: str) -> tuple[np.ndarray, np.ndarray]:
    X, y = _array(X, f"{fn}: X"), _array(y, f"{fn}: y")
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(f"{fn}: X and y need a leading example axis, got shapes {X.shape} "
                         f"and {y.shape}")
    if len(X) != len(y):
        raise ValueError(f"{fn}: X and y have different numbers of examples: X has shape "
                         f"{X.shape}, y has shape {y.shape}")
    return X, y


# ---------------------------------------------------------------------------
# Splits and minibatches

def _count(frac: Union[float, int], n: int, what: str) -> int:
    """A fraction in [0, 1) of n examples, or an absolute count (int)."""
    if isinstance(frac, (bool, np.bool_)):
        raise TypeError(f"split: {what} must be a fraction or a count, got {frac!r}")
    if isinstance(frac, (int, np.integer)):
        k = int(frac)
    elif isinstance(frac, (float, np.floating)) and 0 <= frac < 1:
        k = int(round(float(frac) * n))  # round, not floor: 0.29 * 100 is 28.999...
    else:
        raise ValueError(f"split: {what} must be a fraction in [0, 1) or a count, got {frac!r}")
    if not 0 <= k <= n:
        raise ValueError(f"split: {what}={frac!r} asks for {k} of {n} examples")
    return k


def split(X: Any, y: Any, val: Union[float, int] = 0.1, test: Union[float, int] = 0.1,
          seed: Seed = 0, shuffle: bool = True
          ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray],
                     tuple[np.ndarray, np.ndarray]]:
    """Split examples into training, validation and test sets.

    `val` and `test` are fractions of the examples (rounded to whole
    examples) or counts. The examples are shuffled with `seed` first (unless
    `shuffle=False`, which keeps the order: train, then val, then test).
    Returns `((X_train, y_train), (X_val, y_val), (X_test, y_test))`.
    """
    X, y = _pair(X, y, "split")
    n = len(X)
    n_val, n_test = _count(val, n, "val"), _count(test, n, "test")
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ValueError(f"split: val={val!r} and test={test!r} leave no training examples "
                         f"out of {n}")
    idx = _rng(seed).permutation(n) if shuffle else np.arange(n)
    parts = np.split(idx, [n_train, n_train + n_val])
    return tuple((X[p], y[p]) for p in parts)  # type: ignore[return-value]


class DataLoader:
    """Minibatches of `(X, y)`, an epoch per iteration.

    Each `iter()` is one epoch: with `shuffle=True` a new permutation is drawn
    from a generator made once from `seed`, so epoch after epoch the order
    changes, and two loaders with the same seed give the same sequence of
    epochs. The last batch is smaller when `batch_size` does not divide the
    data, unless `drop_last=True` drops it.
    """

    def __init__(self, X: Any, y: Any, batch_size: int = 32, shuffle: bool = True,
                 seed: Seed = None, drop_last: bool = False) -> None:
        self.X, self.y = _pair(X, y, "DataLoader")
        if not _whole(batch_size) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rng = _rng(seed) if shuffle else None

    def __len__(self) -> int:
        """The number of batches in an epoch."""
        n = len(self.X)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n = len(self.X)
        order = self.rng.permutation(n) if self.rng is not None else None
        stop = len(self) * self.batch_size
        for start in range(0, min(stop, n), self.batch_size):
            if order is None:
                sl = slice(start, start + self.batch_size)
                yield self.X[sl], self.y[sl]
            else:
                i = order[start:start + self.batch_size]
                yield self.X[i], self.y[i]


def batches(X: Any, y: Any, batch_size: int, shuffle: bool = True, seed: Seed = None,
            drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of minibatches `(X_batch, y_batch)` (see `DataLoader`)."""
    return iter(DataLoader(X, y, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last))


def one_hot(labels: Any, num_classes: Optional[int] = None, dtype: Any = np.float32) -> np.ndarray:
    """Class indices -> one-hot rows: `one_hot([2, 0], 3)` is
    `[[0, 0, 1], [1, 0, 0]]`. `num_classes` defaults to max(labels) + 1."""
    a = _array(labels, "one_hot: labels")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ValueError("one_hot: labels must be whole numbers (class indices)")
        a = a.astype(np.int64)
    elif a.dtype.kind not in "iub":
        raise TypeError(f"one_hot: labels must be integers (class indices), got dtype {a.dtype}")
    if num_classes is None:
        num_classes = int(a.max()) + 1 if a.size else 0
    if a.size and (a.min() < 0 or a.max() >= num_classes):
        raise ValueError(f"one_hot: labels must be in [0, {num_classes}), got values from "
                         f"{a.min()} to {a.max()}")
    out = np.zeros(a.shape + (int(num_classes),), dtype=dtype)
    np.put_along_axis(out, a[..., None].astype(np.intp), 1, axis=-1)
    return out


# ---------------------------------------------------------------------------
# The book's toy problems

def exam_data(n: int = 100, seed: Seed = 0, signed: bool = True, margin: float = 0.25
              ) -> tuple[np.ndarray, np.ndarray]:
    """The exam data of the book's Figure 1-4: for each student, hours of
    sleep and hours of study the night before (both in [0, 10]), and whether
    the exam score came out above the class average.

    The hidden score is 0.4·sleep + 0.6·study; "the class average" is its
    expected value, 5. Points within `margin` hours of that line are redrawn,
    so the two classes are linearly separable with a margin and the perceptron
    learning rule converges. The classes are balanced (n // 2 above).

    Returns `X` (n, 2) float32 with columns [sleep, study] and labels `t` (n,)
    int64: +1 above and -1 below the average (the linear perceptron's outputs),
    or 1 and 0 with `signed=False`.
    """
    if int(n) != n or n < 2:
        raise ValueError(f"exam_data: n must be an integer >= 2, got {n!r}")
    n = int(n)
    rng = _rng(seed)
    w, avg = np.array([0.4, 0.6]), 5.0
    want = {True: n // 2, False: n - n // 2}
    got: dict[bool, list[np.ndarray]] = {True: [], False: []}
    while any(len(got[k]) < want[k] for k in got):
        cand = rng.uniform(0.0, 10.0, size=(2 * n, 2))
        s = cand @ w - avg
        for above in (True, False):
            keep = cand[(s >= margin) if above else (s <= -margin)]
            got[above].extend(keep[: want[above] - len(got[above])])
    X = np.array(got[True] + got[False], dtype=np.float64)
    labels = np.array([1] * want[True] + [-1 if signed else 0] * want[False], dtype=np.int64)
    order = rng.permutation(n)
    return X[order].astype(np.float32), labels[order]


FAST_FOOD_PRICES = (3.2, 1.7, 1.1)


def fast_food(n: int = 100, seed: Seed = 0, prices: tuple[float, float, float] = FAST_FOOD_PRICES,
              max_count: int = 5, noise: float = 0.0, dtype: Any = np.float32
              ) -> tuple[np.ndarray, np.ndarray]:
    """Chapter 2's fast-food problem: each day's meal has some number of
    burgers, fries and sodas (0 to `max_count` of each, at least one item),
    and we only see its total price t = x·prices (+ Gaussian `noise` with that
    standard deviation, 0 by default). The prices are hidden from the learner:
    a linear neuron trained with the delta rule, Δw = ε Σ x (t − y),
    recovers them.

    Returns counts `X` (n, 3) and totals `t` (n,), both of `dtype`.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"fast_food: n must be a positive integer, got {n!r}")
    p = np.asarray(prices, dtype=np.float64)
    if p.shape != (3,):
        raise ValueError(f"fast_food: prices must be 3 numbers (burger, fries, soda), got "
                         f"shape {p.shape}")
    rng = _rng(seed)
    X = rng.integers(0, max_count + 1, size=(int(n), 3))
    empty = X.sum(axis=1) == 0
    while empty.any():  # a meal with nothing in it teaches nothing
        X[empty] = rng.integers(0, max_count + 1, size=(int(empty.sum()), 3))
        empty = X.sum(axis=1) == 0
    t = X @ p
    if noise:
        t = t + rng.normal(0.0, noise, size=t.shape)
    return X.astype(dtype), t.astype(dtype)


def xor(dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """The four XOR examples: `X` [[0,0],[0,1],[1,0],[1,1]] and labels
    `t` [0, 1, 1, 0] (int64). No single neuron separates them; one hidden
    layer does."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    return X, np.array([0, 1, 1, 0], dtype=np.int64)


# ---------------------------------------------------------------------------
# IDX files and MNIST

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: str) -> bytes:
    """The file's bytes, gunzipped if it is gzip (sniffed from the magic
    bytes, not the name). Errors name the file."""
    with open(path, "rb") as f:
        return _gunzip(f.read(), path)


def _gunzip(raw: bytes, path: str) -> bytes:
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({e})") from None


def _parse_idx(buf: bytes, path: str) -> np.ndarray:
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number {buf[:4].hex() or 'empty'})")
    code, ndim = buf[2], buf[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (unknown type code 0x{code:02x})")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(buf)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(buf, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = header + math.prod(dims) * dtype.itemsize
    if len(buf) != expected:
        raise ValueError(f"{path}: the header says shape {dims} ({expected} bytes with the "
                         f"header), but the file holds {len(buf)} bytes "
                         f"({'truncated' if len(buf) < expected else 'trailing data'})")
    return np.frombuffer(buf, dtype, offset=header).reshape(dims)


def read_idx(path: Union[str, os.PathLike]) -> np.ndarray:
    """Read an IDX file (the format MNIST ships in), gzipped or not, into an
    array of its own type and shape (read-only, big-endian types kept)."""
    path = os.fspath(path)
    return _parse_idx(_read_bytes(path), path)


# The standard files: (magic, count), and the sha256 of the .gz files as
# distributed (from SOURCE.md) and of their decompressed contents, so a raw
# or re-compressed copy verifies too.
_MNIST = {
    "train-images-idx3-ubyte": (2051, 60000,
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte": (2049, 60000,
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte": (2051, 10000,
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte": (2049, 10000,
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}


def _find(directory: str, stem: str) -> str:
    # Also the dotted names some mirrors use ("train-images.idx3-ubyte").
    dotted = stem.replace("-idx", ".idx")
    names = [stem + ".gz", stem, dotted + ".gz", dotted]
    for name in names:
        p = os.path.join(directory, name)
        if os.path.isfile(p):
            return p
    raise FileNotFoundError(f"load_mnist: {os.path.join(directory, stem)}(.gz) not found "
                            f"(looked for {', '.join(names)} in {directory})")


def _mnist_file(directory: str, stem: str, verify: bool) -> np.ndarray:
    path = _find(directory, stem)
    magic, count, sha_gz, sha_raw = _MNIST[stem]
    with open(path, "rb") as f:
        raw = f.read()
    buf = _gunzip(raw, path)
    if verify and hashlib.sha256(raw).hexdigest() != sha_gz \
            and hashlib.sha256(buf).hexdigest() != sha_raw:
        raise ValueError(f"load_mnist: {path} is not the standard MNIST file (its sha256 "
                         f"{hashlib.sha256(raw).hexdigest()} matches neither the .gz "
                         f"{sha_gz} nor the uncompressed {sha_raw}); it may be corrupt or "
                         "modified. Pass verify=False to load it anyway.")
    if len(buf) >= 4 and int.from_bytes(buf[:4], "big") != magic:
        raise ValueError(f"load_mnist: {path}: magic number {int.from_bytes(buf[:4], 'big')}, "
                         f"expected {magic} ({'images' if magic == 2051 else 'labels'})")
    a = _parse_idx(buf, path)
    if verify and len(a) != count:
        raise ValueError(f"load_mnist: {path} holds {len(a)} examples, expected {count}")
    if magic == 2051 and a.shape[1:] != (28, 28):
        raise ValueError(f"load_mnist: {path}: images of {a.shape[1]}x{a.shape[2]} pixels, "
                         "expected 28x28")
    if magic == 2049 and a.size and a.max() > 9:
        raise ValueError(f"load_mnist: {path}: label {a.max()} out of range 0..9")
    return a


def load_mnist(path: Union[str, os.PathLike], verify: bool = True
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read MNIST from the four standard IDX files in directory `path`
    (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
    `t10k-labels-idx1-ubyte`, each gzipped (`.gz`) or not).

    Always checked: the magic numbers (2051 images, 2049 labels), the byte
    counts against the header, 28x28 images, labels 0..9, and as many labels
    as images. With `verify=True` (the default) each file's sha256 must also
    match the standard file's (as distributed, or decompressed), and the
    counts must be 60000 and 10000; `verify=False` loads any well-formed
    copy (a subset, a modified file). Errors name the file.

    Returns `(train_images, train_labels, test_images, test_labels)`: images
    float32 of shape (N, 784) scaled to [0, 1], labels int64 of shape (N,).
    """
    directory = os.fspath(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"load_mnist: {directory} is not a directory (it should hold "
                                "the four MNIST IDX files)")
    out: list[np.ndarray] = []
    for split_name in ("train", "t10k"):
        images = _mnist_file(directory, f"{split_name}-images-idx3-ubyte", verify)
        labels = _mnist_file(directory, f"{split_name}-labels-idx1-ubyte", verify)
        if len(images) != len(labels):
            raise ValueError(f"load_mnist: {directory}: {len(images)} {split_name} images but "
                             f"{len(labels)} labels")
        x = images.reshape(len(images), 784).astype(np.float32)
        x /= np.float32(255.0)
        out += [x, labels.astype(np.int64)]
    return out[0], out[1], out[2], out[3]
