"""One MNIST epoch (issue 3): 784-256-256-10 ReLU, batch 128, SGD lr 0.1 over
the 60,000 training images, the same loop for every engine.

The data pipeline is shared numpy (a seeded permutation, then X[idx] per
batch, the last batch of 96 included), so the engines differ only in the
training step. Each epoch starts from the same initial weights; the test
accuracy after it is reported as a sanity check (about 95-97% after one epoch).
"""
from __future__ import annotations

import gzip
import os
import time
from typing import Callable

import numpy as np

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _read_idx(path: str) -> np.ndarray:
    """An IDX file (gzipped or not): magic 0x0000 0x08 ndim, big-endian sizes, uint8 data."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (magic {raw[:4]!r})")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims}, found {data.size} bytes of data")
    return data.reshape(dims)


def load_mnist(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_images, train_labels, test_images, test_labels): float32 images
    in [0, 1] flattened to 784, int64 labels. Uses tensorgraph.data.load_mnist
    when it exists (issue 3), else reads the IDX files here."""
    try:
        from tensorgraph.data import load_mnist as tg_load
    except ImportError:
        tg_load = None
    if tg_load is not None:
        Xtr, ytr, Xte, yte = tg_load(path)
        return (np.asarray(Xtr, np.float32).reshape(len(Xtr), -1), np.asarray(ytr, np.int64),
                np.asarray(Xte, np.float32).reshape(len(Xte), -1), np.asarray(yte, np.int64))
    arrays = []
    for name in FILES:
        for candidate in (name + ".gz", name):
            full = os.path.join(path, candidate)
            if os.path.exists(full):
                arrays.append(_read_idx(full))
                break
        else:
            raise FileNotFoundError(f"load_mnist: {name}(.gz) not found in {path}")
    Xtr, ytr, Xte, yte = arrays
    return (Xtr.reshape(len(Xtr), -1).astype(np.float32) / 255, ytr.astype(np.int64),
            Xte.reshape(len(Xte), -1).astype(np.float32) / 255, yte.astype(np.int64))


def data_available(path: str) -> bool:
    return all(os.path.exists(os.path.join(path, n + ".gz")) or os.path.exists(os.path.join(path, n))
               for n in FILES)


def run_epoch(step: Callable[[np.ndarray, np.ndarray], float], X: np.ndarray, y: np.ndarray,
              batch: int, seed: int) -> tuple[float, float]:
    """One shuffled pass; returns (mean training loss, wall seconds)."""
    order = np.random.default_rng(seed).permutation(len(X))
    total = 0.0
    n = 0
    t0 = time.perf_counter()
    for i in range(0, len(X), batch):
        idx = order[i:i + batch]
        total += step(X[idx], y[idx]) * len(idx)
        n += len(idx)
    return total / n, time.perf_counter() - t0
