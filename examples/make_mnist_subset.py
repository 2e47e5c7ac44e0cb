"""The shipped MNIST subset: how tensorgraph/datasets/mnist_small was made from the standard files.

The gallery and the tests train small convolutional networks for real on
embedded data (no download), so a small subset of MNIST ships inside the
package, read by `tg.data.load_mnist_subset()`. This script regenerates it
from the four standard files (--data, default ../shared/data/mnist):

  - training: the first 200 images of each digit 0..9 in the standard
    training file (train-images-idx3-ubyte), kept in file order (2,000
    images, all among the file's first 2,249);
  - test: the first 50 of each digit in the standard test file (t10k, 500).

No randomness: the rule alone fixes the subset. The images stay uint8, in
the standard IDX format, gzip level 9 with no name and mtime 0 (so the same
zlib writes the same bytes), about 400 kB in all; `tg.data.load_mnist(dir,
verify=False)` reads the folder too. The source files are checked against
their published sha256 first (`tg.data.load_mnist` does).

Writes <out>/mnist_small/ (the four .gz files and SOURCE.md with the
provenance, the rule and every checksum), digits.svg (ten of each digit) and
results.json, which says whether each file is byte-identical to the one in
the package. `--install` also copies them into tensorgraph/datasets/mnist_small/
(then update `_MNIST_SMALL` in tensorgraph/data.py from SOURCE.md's table).
Without the source files (the tests' --quick run) it draws the shipped
subset and says it could not regenerate it.

    python examples/make_mnist_subset.py [--data DIR] [--out DIR] [--install]
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import shutil
from pathlib import Path
from typing import Any, Optional

import numpy as np

import tensorgraph as tg
from _common import DEFAULT_DATA, Example, parser, svg_text

NAME = "make_mnist_subset"
REPRODUCES = ("the small MNIST subset shipped in tensorgraph/datasets/mnist_small "
              "(first 200 of each digit for training, first 50 of each for testing)")
PER_CLASS = {"train": 200, "t10k": 50}
PACKAGE_DIR = Path(tg.__file__).resolve().parent / "datasets" / "mnist_small"
SOURCE_URL = "http://yann.lecun.com/exdb/mnist/"


def select(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first `per_class` examples of each digit, in file order."""
    return np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class]
                                   for c in range(10)]))


def idx_bytes(a: np.ndarray) -> bytes:
    """uint8 array -> IDX: 0, 0, 0x08 (ubyte), ndim, big-endian dims, the data."""
    header = bytes([0, 0, 0x08, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    return header + np.ascontiguousarray(a, dtype=np.uint8).tobytes()


def gz(raw: bytes) -> bytes:
    return gzip.compress(raw, compresslevel=9, mtime=0)


def build(source: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The four subset files (name -> gzipped bytes) and what went into them."""
    # load_mnist checks each file's sha256 against the published one; its float
    # images are uint8 / 255, so rint(x * 255) gives the bytes back exactly.
    Xtr, ytr, Xte, yte = tg.data.load_mnist(source)
    files: dict[str, bytes] = {}
    info: dict[str, Any] = {}
    for split, X, y in (("train", Xtr, ytr), ("t10k", Xte, yte)):
        keep = select(y, PER_CLASS[split])
        images = np.rint(X[keep] * 255).astype(np.uint8).reshape(-1, 28, 28)
        files[f"{split}-images-idx3-ubyte.gz"] = gz(idx_bytes(images))
        files[f"{split}-labels-idx1-ubyte.gz"] = gz(idx_bytes(y[keep].astype(np.uint8)))
        info[split] = {"count": int(len(keep)), "last_index": int(keep[-1]),
                       "per_class": PER_CLASS[split]}
    return files, info


def source_md(files: dict[str, bytes], source: Path) -> str:
    """SOURCE.md: provenance, rule, and the checksums of the source and subset files."""
    rows = []
    for name in sorted(p.name for p in source.glob("*-ubyte.gz")):
        raw = (source / name).read_bytes()
        rows.append(f"| {name} | {len(raw)} | {hashlib.sha256(raw).hexdigest()} |")
    sub = []
    for name, data in sorted(files.items()):
        sub.append(f"| {name} | {len(data)} | {hashlib.sha256(data).hexdigest()} | "
                   f"{hashlib.sha256(gzip.decompress(data)).hexdigest()} |")
    return "\n".join([
        "# A small MNIST subset (2,000 training and 500 test images)",
        "",
        "Read by `tg.data.load_mnist_subset()`; made by `examples/make_mnist_subset.py`",
        "(which also wrote this file). The gallery (`make demo`) and the tests train on it, so",
        "they need no download.",
        "",
        "## Source",
        "",
        f"The four standard MNIST files as distributed at {SOURCE_URL}",
        "(LeCun, Cortes and Burges; the copies in ../shared/data/mnist, checked against the",
        "published checksums by `tg.data.load_mnist`):",
        "",
        "| source file | bytes | sha256 |",
        "|---|---|---|",
        *rows,
        "",
        "## Selection rule (deterministic, no random choice)",
        "",
        f"- training: the first {PER_CLASS['train']} images of each digit 0..9 in "
        "`train-images-idx3-ubyte` (labels from",
        "  `train-labels-idx1-ubyte`), kept in file order: 2,000 images.",
        f"- test: the first {PER_CLASS['t10k']} images of each digit in "
        "`t10k-images-idx3-ubyte`, in file order: 500 images.",
        "",
        "In numpy: `np.sort(np.concatenate([np.flatnonzero(labels == c)[:k] "
        "for c in range(10)]))`.",
        "",
        "## Files",
        "",
        "IDX format (uint8 pixels 0..255, 28x28), gzip level 9 without a file name and with",
        "mtime 0. `tg.data.load_mnist(this_directory, verify=False)` reads them as well.",
        "",
        "| file | bytes | sha256 (.gz) | sha256 (decompressed) |",
        "|---|---|---|---|",
        *sub,
        "",
        "MNIST is made available by Yann LeCun and Corinna Cortes under the terms of the",
        "Creative Commons Attribution-Share Alike 3.0 license.",
        "",
    ])


def digits_figure(X: np.ndarray, y: np.ndarray, title: str) -> str:
    """Ten examples of each digit, a row per digit, tiled into one image."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [np.hstack([X[i].reshape(28, 28) for i in np.flatnonzero(y == c)[:10]])
            for c in range(10)]
    fig, ax = plt.subplots(figsize=(5.2, 5.5))
    ax.imshow(np.vstack(rows), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks(np.arange(10) * 28 + 14, [str(c) for c in range(10)])
    ax.set_title(title, fontsize=10)
    text = svg_text(fig)
    plt.close(fig)
    return text


def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        install: bool = False) -> dict[str, Any]:
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
    source = Path(data) if data is not None else DEFAULT_DATA
    if source.is_dir():
        files, info = build(source)
        target = ex.out / "mnist_small"
        target.mkdir(exist_ok=True)
        for name, raw in files.items():
            (target / name).write_bytes(raw)
        (target / "SOURCE.md").write_text(source_md(files, source), encoding="utf-8")
        same = {name: (PACKAGE_DIR / name).is_file() and (PACKAGE_DIR / name).read_bytes() == raw
                for name, raw in files.items()}
        ex.data_source = f"MNIST from {source}"
        ex.results.update(regenerated=True, identical_to_shipped=same, **info,
                          bytes_total=sum(len(b) for b in files.values()))
        print(f"wrote {target}: {sum(len(b) for b in files.values()):,} bytes; identical to "
              f"the shipped files: {all(same.values())}")
        if install:
            PACKAGE_DIR.mkdir(parents=True, exist_ok=True)
            for p in target.iterdir():
                shutil.copyfile(p, PACKAGE_DIR / p.name)
            print(f"installed into {PACKAGE_DIR}; update _MNIST_SMALL in tensorgraph/data.py "
                  "from SOURCE.md's table")
        X, y = tg.data.read_idx(target / "train-images-idx3-ubyte.gz"), \
            tg.data.read_idx(target / "train-labels-idx1-ubyte.gz")
        X = X.reshape(len(X), 784) / 255.0
    else:
        print(f"{source} not found: cannot regenerate; drawing the shipped subset")
        X, y, _, _ = tg.data.load_mnist_subset()
        ex.data_source = "the shipped subset (tg.data.load_mnist_subset)"
        ex.results.update(regenerated=False, reason=f"{source} not found")
    ex.figure(digits_figure(X, y, "The shipped MNIST subset: the first ten of each digit"),
              "digits.svg", "Ten training images of each digit from the shipped subset (the "
              "first 200 of each digit in the standard training file), one row per digit: "
              "the data the gallery's chapter-5 networks learn from.")
    return ex.finish()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--install", action="store_true",
                   help="also copy the files into tensorgraph/datasets/mnist_small/")
    args = p.parse_args()
    run(args.out, args.quick, args.data, install=args.install)


if __name__ == "__main__":
    main()
