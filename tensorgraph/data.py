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
           "read_idx", "load_mnist", "load_mnist_subset", "Transform", "RandomCrop",
           "RandomShift", "RandomHorizontalFlip", "Standardize", "Compose"]

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

    `transform` (e.g. `Compose([RandomShift(2), Standardize()])`) is applied
    to each batch of X as it is handed out, so every epoch sees new random
    versions of the images (data augmentation) while X itself is never
    changed. Its randomness comes from a second generator spawned from the
    loader's (`Generator.spawn`), so the same `seed` gives the same batches
    bit for bit, and adding a transform does not change the shuffling.
    """

    def __init__(self, X: Any, y: Any, batch_size: int = 32, shuffle: bool = True,
                 seed: Seed = None, drop_last: bool = False,
                 transform: Optional[Any] = None) -> None:
        self.X, self.y = _pair(X, y, "DataLoader")
        if not _whole(batch_size) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable (a tg.data transform), got "
                            f"{type(transform).__name__}")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.transform = transform
        rng = _rng(seed) if shuffle or transform is not None else None
        self.rng = rng if shuffle else None
        self.transform_rng = rng.spawn(1)[0] if transform is not None and rng is not None \
            else None

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
                xb, yb = self.X[sl], self.y[sl]
            else:
                i = order[start:start + self.batch_size]
                xb, yb = self.X[i], self.y[i]
            if self.transform is not None:
                xb = self._transformed(xb)
            yield xb, yb

    def _transformed(self, xb: np.ndarray) -> np.ndarray:
        t: Any = self.transform
        return t(xb, self.transform_rng) if isinstance(t, Transform) else t(xb)


def batches(X: Any, y: Any, batch_size: int, shuffle: bool = True, seed: Seed = None,
            drop_last: bool = False, transform: Optional[Any] = None
            ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of minibatches `(X_batch, y_batch)` (see `DataLoader`)."""
    return iter(DataLoader(X, y, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last,
                           transform=transform))


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
# Image transforms (chapter 5: preprocessing pipelines)
#
# Each transform maps an image batch (N, C, H, W) to a batch, drawing its
# randomness for the whole batch at once (one vectorised draw, no loop per
# image) from a numpy Generator: the one passed to the call (`t(x, rng)`, as
# the DataLoader does), else the transform's own, made from its `seed`.
# The same generator state gives the same output bit for bit. The input is
# never modified.

def _image_batch(x: Any, who: str) -> np.ndarray:
    a = _array(x, f"{who}: images")
    if a.ndim != 4:
        raise ValueError(f"{who}: expected an image batch of shape (N, C, H, W), got shape "
                         f"{a.shape}" + (" (reshape flat MNIST rows with "
                                         "X.reshape(-1, 1, 28, 28))" if a.ndim == 2 else ""))
    return a


def _size_pair(value: Any, what: str, who: str, minimum: int) -> tuple[int, int]:
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(_whole(v) and v >= minimum for v in pair):
        raise ValueError(f"{who}: {what} must be an integer >= {minimum} or a pair of them, "
                         f"got {value!r}")
    return int(pair[0]), int(pair[1])


class Transform:
    """Base of the image transforms: `t(x, rng=None)` maps an (N, C, H, W)
    batch to a new array. Subclasses implement `apply(x, rng)`."""

    def __init__(self, seed: Seed = None) -> None:
        self.rng = _rng(seed)

    def __call__(self, x: Any, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        return self.apply(_image_batch(x, type(self).__name__), self.rng if rng is None else rng)

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self) -> str:
        return ""


class RandomCrop(Transform):
    """Pad each image with `padding` zeros on every side, then cut out a
    `size` (h, w) window at a position drawn uniformly per image
    (torchvision's `RandomCrop(size, padding)`):

        out[n, c, i, j] = pad(x)[n, c, top_n + i, left_n + j],
        top_n ~ U{0, ..., H + 2p - h},  left_n ~ U{0, ..., W + 2p - w}.

    With `size` equal to the input's (H, W) this is a random shift of up to
    `padding` pixels each way with zeros filling in (see `RandomShift`).
    """

    def __init__(self, size: Union[int, tuple[int, int]], padding: Union[int, tuple[int, int]] = 0,
                 seed: Seed = None) -> None:
        super().__init__(seed)
        self.size = _size_pair(size, "size", "RandomCrop", 1)
        self.padding = _size_pair(padding, "padding", "RandomCrop", 0)

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _crop(x, rng, self.size, self.padding, type(self).__name__)

    def extra_repr(self) -> str:
        return f"size={self.size}, padding={self.padding}"


def _crop(x: np.ndarray, rng: np.random.Generator, size: tuple[int, int],
          padding: tuple[int, int], who: str) -> np.ndarray:
    (h, w), (ph, pw) = size, padding
    n, c, H, W = x.shape
    if h > H + 2 * ph or w > W + 2 * pw:
        raise ValueError(f"{who}: crop size {(h, w)} is larger than the padded image "
                         f"{(H + 2 * ph, W + 2 * pw)} (input shape {x.shape}, padding "
                         f"{(ph, pw)})")
    top = rng.integers(0, H + 2 * ph - h + 1, size=n)
    left = rng.integers(0, W + 2 * pw - w + 1, size=n)
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    # One gather for the whole batch: rows (n, h) and columns (n, w) per image.
    rows = (top[:, None] + np.arange(h))[:, None, :, None]
    cols = (left[:, None] + np.arange(w))[:, None, None, :]
    return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], rows, cols]


class RandomShift(Transform):
    """Move each image by a whole number of pixels drawn uniformly per image,
    dy, dx in {-max_shift, ..., max_shift}, filling the uncovered border with
    zeros and keeping the size:

        out[n, c, i, j] = x[n, c, i - dy_n, j - dx_n]  (0 outside the image).

    It is exactly `RandomCrop((H, W), padding=max_shift)` (a crop at offset
    p + dy of the zero-padded image is a shift by -dy), so the two give the
    same output from the same generator; this name says what it does to a
    digit. `max_shift` is an int or a pair (rows, columns).
    """

    def __init__(self, max_shift: Union[int, tuple[int, int]], seed: Seed = None) -> None:
        super().__init__(seed)
        self.max_shift = _size_pair(max_shift, "max_shift", "RandomShift", 0)

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _crop(x, rng, x.shape[2:], self.max_shift, type(self).__name__)

    def extra_repr(self) -> str:
        return f"max_shift={self.max_shift}"


class RandomHorizontalFlip(Transform):
    """Mirror each image left to right with probability `p` (drawn per image):
    out[n, c, i, j] = x[n, c, i, W - 1 - j] where flipped.

    Right for photographs (a mirrored cat is a cat), wrong for digits and
    text: a mirrored 2, 3, 4, 7 or 9 is no digit at all, and the network
    would be taught that such shapes carry the label. MNIST is augmented with
    shifts (and small rotations), not flips.
    """

    def __init__(self, p: float = 0.5, seed: Seed = None) -> None:
        super().__init__(seed)
        if not isinstance(p, (int, float, np.integer, np.floating)) or isinstance(p, bool) \
                or not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        flip = rng.random(len(x)) < self.p
        out = x.copy()
        out[flip] = x[flip, :, :, ::-1]
        return out

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Standardize(Transform):
    """Per-image standardisation: each image (all its channels and pixels)
    minus its mean, divided by its standard deviation,

        out = (x - mean(x)) / max(std(x), 1 / sqrt(C·H·W)),

    so that every image has mean 0 and variance 1, whatever its brightness or
    contrast (TensorFlow's `per_image_standardization`, the book's
    `tf.image.per_image_whitening`). The floor on the deviation keeps a
    constant image finite: it becomes all zeros. Deterministic; integer
    images (uint8) come out float32, float images keep their dtype.
    """

    def __init__(self) -> None:
        super().__init__(0)

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        a = x.astype(np.float64)
        mean = a.mean(axis=(1, 2, 3), keepdims=True)
        std = a.std(axis=(1, 2, 3), keepdims=True)
        floor = 1.0 / math.sqrt(max(math.prod(x.shape[1:]), 1))
        return ((a - mean) / np.maximum(std, floor)).astype(dtype)


class Compose(Transform):
    """Transforms applied in order, `Compose([t1, t2])(x) = t2(t1(x))`, all
    drawing from the same generator (the one passed to the call, else each
    transform's own)."""

    def __init__(self, transforms: Any) -> None:
        super().__init__(None)
        self.transforms = list(transforms)
        for i, t in enumerate(self.transforms):
            if not callable(t):
                raise TypeError(f"Compose: transform {i} is a {type(t).__name__}, not callable")

    def __call__(self, x: Any, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        x = _image_batch(x, "Compose")
        for t in self.transforms:
            x = t(x, rng) if isinstance(t, Transform) else t(x)
        return x

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"

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


def _find(directory: str, stem: str, fn: str = "load_mnist") -> str:
    # Also the dotted names some mirrors use ("train-images.idx3-ubyte").
    dotted = stem.replace("-idx", ".idx")
    names = [stem + ".gz", stem, dotted + ".gz", dotted]
    for name in names:
        p = os.path.join(directory, name)
        if os.path.isfile(p):
            return p
    raise FileNotFoundError(f"{fn}: {os.path.join(directory, stem)}(.gz) not found "
                            f"(looked for {', '.join(names)} in {directory})")


def _mnist_file(directory: str, stem: str, verify: bool, table: dict[str, tuple[Any, ...]],
                fn: str) -> np.ndarray:
    path = _find(directory, stem, fn)
    magic, count, sha_gz, sha_raw = table[stem]
    with open(path, "rb") as f:
        raw = f.read()
    buf = _gunzip(raw, path)
    what = "standard MNIST" if table is _MNIST else "shipped MNIST subset"
    if verify and hashlib.sha256(raw).hexdigest() != sha_gz \
            and hashlib.sha256(buf).hexdigest() != sha_raw:
        raise ValueError(f"{fn}: {path} is not the {what} file (its sha256 "
                         f"{hashlib.sha256(raw).hexdigest()} matches neither the .gz "
                         f"{sha_gz} nor the uncompressed {sha_raw}); it may be corrupt or "
                         "modified. Pass verify=False to load it anyway.")
    if len(buf) >= 4 and int.from_bytes(buf[:4], "big") != magic:
        raise ValueError(f"{fn}: {path}: magic number {int.from_bytes(buf[:4], 'big')}, "
                         f"expected {magic} ({'images' if magic == 2051 else 'labels'})")
    a = _parse_idx(buf, path)
    if verify and len(a) != count:
        raise ValueError(f"{fn}: {path} holds {len(a)} examples, expected {count}")
    if magic == 2051 and a.shape[1:] != (28, 28):
        raise ValueError(f"{fn}: {path}: images of {a.shape[1]}x{a.shape[2]} pixels, "
                         "expected 28x28")
    if magic == 2049 and a.size and a.max() > 9:
        raise ValueError(f"{fn}: {path}: label {a.max()} out of range 0..9")
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
    return _load_mnist_files(directory, verify, _MNIST, "load_mnist")


def _load_mnist_files(directory: str, verify: bool, table: dict[str, tuple[Any, ...]],
                      fn: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    out: list[np.ndarray] = []
    for split_name in ("train", "t10k"):
        images = _mnist_file(directory, f"{split_name}-images-idx3-ubyte", verify, table, fn)
        labels = _mnist_file(directory, f"{split_name}-labels-idx1-ubyte", verify, table, fn)
        if len(images) != len(labels):
            raise ValueError(f"{fn}: {directory}: {len(images)} {split_name} images but "
                             f"{len(labels)} labels")
        x = images.reshape(len(images), 784).astype(np.float32)
        x /= np.float32(255.0)
        out += [x, labels.astype(np.int64)]
    return out[0], out[1], out[2], out[3]


# The subset shipped in tensorgraph/datasets/mnist_small/ (see its SOURCE.md
# and examples/make_mnist_subset.py): (magic, count, sha256 of the .gz as
# shipped, sha256 of its decompressed content).
MNIST_SUBSET_PER_CLASS = (200, 50)   # the first k of each digit: (training file, test file)
_MNIST_SMALL: dict[str, tuple[Any, ...]] = {
    "train-images-idx3-ubyte": (2051, 2000,
        "e2bb572615c43a329273c8a92711fb505df2ca8b91c23d9b783b90ab5b5517d9",
        "5742f398058fe36aaf1b8edb1051aa6ed96831e24fd15bf6ac80362ceb9942bc"),
    "train-labels-idx1-ubyte": (2049, 2000,
        "a13c4aa17d36294bd089bdb172e5bb1b5133698ca83db11661434ae2acbe040e",
        "5845824a1405e379f337fe3db6e4fa8614766ce3767bbb4825466b35c5ac044b"),
    "t10k-images-idx3-ubyte": (2051, 500,
        "94414a7603d86c34bb9d797264f41a33bfaecd58ba20b9500839ab53fddbd0df",
        "97ec3e530cd55441a2c634c869ee2db6ac4224e52db5b7b8f60743ac7c976ec7"),
    "t10k-labels-idx1-ubyte": (2049, 500,
        "e983fe7e54ede7098012445ffde461f8b288242f9d3115af333aa682a6c76c57",
        "ff9110acc0bd87bce7a4ef183f1e00fcd66145d7f0db2ed8cd3aee4b1f6d5b03"),
}


def load_mnist_subset(verify: bool = True
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The small MNIST subset that ships inside the package, so that the
    gallery, the tests and a first try need no download: 2,000 training images
    (the first 200 of each digit in the standard training file, in file
    order) and 500 test images (the first 50 of each digit in the standard
    test file), stored as gzipped IDX files in `tensorgraph/datasets/mnist_small`
    (found with importlib.resources, so an installed package reads them too).

    Returns `(train_images, train_labels, test_images, test_labels)` as
    `load_mnist` does: images float32 (N, 784) in [0, 1], labels int64 (N,).
    With `verify=True` each file's sha256 is checked against the shipped one.
    """
    from importlib.resources import as_file, files
    with as_file(files(__package__).joinpath("datasets", "mnist_small")) as directory:
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"load_mnist_subset: {directory} is missing from the "
                                    "installed package (reinstall tensorgraph)")
        return _load_mnist_files(os.fspath(directory), verify, _MNIST_SMALL, "load_mnist_subset")
