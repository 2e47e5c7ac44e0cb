"""Shared plumbing for the examples: arguments, data, figures and the manifest.

Every example runs as

    python examples/<name>.py [--data DIR] [--out DIR] [--quick]

    --data DIR  the MNIST directory (default: ../shared/data/mnist next to the repo)
    --out DIR   where figures and results go (default: out/<name>)
    --quick     small data and few steps, to finish in seconds (the smoke test)

and ends by writing its manifest, `<out>/results.json`:

    {"example": "mnist_mlp",
     "reproduces": "Fundamentals of Deep Learning, ch. 3: ...",
     "quick": false, "data": "MNIST from ...", "seconds": 41.2, "load_average": [...],
     "results": {"test_accuracy": 0.9812, ...},
     "figures": ["network.svg", "curves.svg"],      # files written, relative to <out>
     "captions": {"network.svg": "..."},
     "unrendered": {}}    # figure -> reason, where a drawing fell back to .dot

tests/test_examples.py runs every `examples/*.py` (not `_*.py`) with `--quick`
and checks that each file in "figures" exists and that each SVG parses as XML.

An example has one shape, so that examples/gallery.py can import and run it:

    def run(out, quick=False, data=None) -> dict:
        ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
        ...
        ex.figure(tg.draw(model), "network.svg", "The network.")   # or an SVG string
        ex.results["accuracy"] = acc
        return ex.finish()   # {"figures": [{"file", "caption"}], "results", "reproduces"}

    def main():
        args = parser(__doc__).parse_args()
        run(args.out, args.quick, args.data)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Optional, Sequence

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/mnist"
MANIFEST = "results.json"


def parser(doc: Optional[str] = None) -> argparse.ArgumentParser:
    """The common command line; add an example's own options to it, then pass
    `parser.parse_args()` to `Example(..., args=...)`."""
    p = argparse.ArgumentParser(description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help=f"directory of the four MNIST IDX files (default: {DEFAULT_DATA})")
    p.add_argument("--out", type=Path, default=None,
                   help="output directory for figures and results.json (default: out/<example>)")
    p.add_argument("--quick", action="store_true",
                   help="small data and few steps, done in seconds (a smoke test, not a result)")
    return p


def epochs_main(doc: Optional[str], run: Any, default: int, quick: int,
                what: str = "epochs") -> None:
    """The command line of an example that trains for a number of epochs:
    the common options plus `--epochs`, then `run(out, quick, data, epochs)`."""
    p = parser(doc)
    p.add_argument("--epochs", type=int, default=None,
                   help=f"{what} (default {default}, {quick} with --quick)")
    args = p.parse_args()
    run(args.out, args.quick, args.data, args.epochs)


class Split(NamedTuple):
    """Training, validation and test data, each an (X, y) pair, and where they came from."""
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    source: str


class Example:
    """One run of an example: parsed arguments, the output directory, a
    clock, and what the run produced (`results`, figures). `finish()` writes
    the manifest and prints where everything went."""

    def __init__(self, name: str, reproduces: str, doc: Optional[str] = None,
                 args: Optional[argparse.Namespace] = None,
                 argv: Optional[Sequence[str]] = None) -> None:
        self.args = args if args is not None else parser(doc).parse_args(argv)
        self.name = name
        self.reproduces = reproduces
        self.quick: bool = bool(getattr(self.args, "quick", False))
        out = getattr(self.args, "out", None)
        self.out: Path = Path(out) if out is not None else Path("out") / name
        self.out.mkdir(parents=True, exist_ok=True)
        self.results: dict[str, Any] = {}
        self.figures: list[str] = []
        self.captions: dict[str, str] = {}
        self.unrendered: dict[str, str] = {}
        self.data_source = "embedded"
        self.started = time.perf_counter()
        self.load_average = _loadavg()
        print(f"{name}: reproduces {reproduces}" + ("  [--quick: a smoke test, not a result]"
                                                    if self.quick else ""), flush=True)

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.started

    # -- data -------------------------------------------------------------
    def mnist(self, n_val: int = 5000, quick_sizes: tuple[int, int, int] = (2000, 500, 500)
              ) -> Split:
        """MNIST split as in the book (ch. 3, via TensorFlow's `input_data`): the
        first `n_val` of the 60,000 training images are the validation set, the
        other 55,000 the training set; the 10,000 test images are the test set.

        With --quick: the first `quick_sizes` = (train, val, test) examples of
        that split, or, when the --data directory does not exist (as in CI),
        a synthetic stand-in of the same shape (`synthetic_mnist`). Without
        --quick a missing directory ends the run with a message naming it.
        """
        path = Path(getattr(self.args, "data", None) or DEFAULT_DATA)
        if not path.is_dir():
            if not self.quick:
                sys.exit(f"{self.name}: MNIST not found: {path} does not exist. Pass --data DIR "
                         "(a directory holding the four IDX files train-images-idx3-ubyte.gz, "
                         "...), or --quick to run on a small synthetic stand-in.")
            n_tr, n_va, n_te = quick_sizes
            X, y = synthetic_mnist(n_tr + n_va + n_te, seed=0)
            self.data_source = f"synthetic MNIST-shaped blobs ({path} not found)"
            print(f"data: {self.data_source}", flush=True)
            a, b = n_tr, n_tr + n_va
            return Split((X[:a], y[:a]), (X[a:b], y[a:b]), (X[b:], y[b:]), self.data_source)
        import tensorgraph as tg
        try:
            Xtr, ytr, Xte, yte = tg.data.load_mnist(path)
        except (OSError, ValueError) as e:
            sys.exit(f"{self.name}: cannot read MNIST from {path}: {e}")
        train, val, test = (Xtr[n_val:], ytr[n_val:]), (Xtr[:n_val], ytr[:n_val]), (Xte, yte)
        if self.quick:
            train, val, test = ((x[:n], t[:n]) for (x, t), n in zip((train, val, test),
                                                                    quick_sizes))
        self.data_source = (f"MNIST from {path}: {len(train[0])} train / {len(val[0])} "
                            f"validation / {len(test[0])} test")
        print(f"data: {self.data_source}", flush=True)
        return Split(train, val, test, self.data_source)

    def mnist_subset(self, sizes: tuple[int, int, int] = (1700, 300, 500)) -> Split:
        """The MNIST subset shipped in the package (`tg.data.load_mnist_subset`:
        2,000 training and 500 test digits, no download), split as the book
        splits MNIST: the first `sizes[1]` training images validate, the next
        `sizes[0]` train, the first `sizes[2]` test images test. Flat rows."""
        import tensorgraph as tg
        Xtr, ytr, Xte, yte = tg.data.load_mnist_subset()
        n_tr, n_va, n_te = sizes
        train = (Xtr[n_va:n_va + n_tr], ytr[n_va:n_va + n_tr])
        val, test = (Xtr[:n_va], ytr[:n_va]), (Xte[:n_te], yte[:n_te])
        self.data_source = (f"the MNIST subset shipped in the package (tg.data.load_mnist_subset): "
                            f"{n_tr} train / {n_va} validation / {n_te} test")
        print(f"data: {self.data_source}", flush=True)
        return Split(train, val, test, self.data_source)

    # -- output -----------------------------------------------------------
    def figure(self, fig: Any, filename: str, caption: str = "") -> Path:
        """Write a figure into the output directory and list it in the manifest.

        `fig` is SVG text, or anything with `.save(path)` (a `tg.draw`
        Drawing, a `tg.draw_history` Chart). A Drawing that cannot be laid out
        because no Graphviz backend is installed is saved as DOT text instead
        (`<name>.dot`), and the reason goes to "unrendered".
        """
        path = self.out / filename
        if isinstance(fig, str):
            path.write_text(fig, encoding="utf-8")
        else:
            from tensorgraph.backends import BackendError
            try:
                fig.save(path)
            except BackendError as e:
                path = fig.save(path.with_suffix(".dot"))
                self.unrendered[path.name] = str(e)
                print(f"warning: {filename}: no Graphviz backend, wrote {path.name} "
                      f"instead ({e})", file=sys.stderr)
        self.figures.append(path.name)
        if caption:
            self.captions[path.name] = caption
        return path

    def finish(self) -> dict[str, Any]:
        """Write results.json and print a summary. Returns what the gallery
        (examples/gallery.py) wants back from an example's `run()`:
        {"figures": [{"file", "caption"}, ...], "results": {...}, "reproduces": "..."}."""
        seconds = self.elapsed()
        manifest = {
            "example": self.name, "reproduces": self.reproduces, "quick": self.quick,
            "data": self.data_source, "seconds": round(seconds, 2),
            "load_average": self.load_average, "results": self.results,
            "figures": self.figures, "captions": self.captions, "unrendered": self.unrendered,
        }
        path = self.out / MANIFEST
        path.write_text(json.dumps(manifest, indent=2, default=_jsonable) + "\n", encoding="utf-8")
        print(f"wall time {seconds:.1f} s (load average at start {self.load_average})")
        n = len(self.figures)
        print(f"wrote {n} figure{'' if n == 1 else 's'} and {MANIFEST} to {self.out.resolve()}")
        return {"figures": [{"file": f, "caption": self.captions.get(f, "")}
                            for f in self.figures],
                "results": self.results, "reproduces": self.reproduces}


def log_epoch(epoch: int, logs: Mapping[str, float]) -> None:
    """A `tg.train.fit` callback printing one line per epoch as it ends
    (the progress bar shows only on a terminal)."""
    print(f"epoch {epoch + 1:3d}: " + "  ".join(f"{k} {v:.4g}" for k, v in logs.items()),
          flush=True)


def _loadavg() -> Optional[list[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # not on every platform
        return None


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"results.json: cannot store {type(x).__name__}")


# ---------------------------------------------------------------------------
# Data

def synthetic_mnist(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in for MNIST when the real files are absent: `n` 28x28 images
    (flattened to 784 float32 values in [0, 1]) and labels 0..9 (int64).

    Each class has three fixed Gaussian blobs; an image draws them shifted by
    a random offset (sd 1.5 px), with random brightness and background noise,
    so the classes overlap a little and a classifier has something to learn.
    """
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(1234).uniform(6.0, 22.0, size=(10, 3, 2))  # same for all seeds
    y = rng.integers(0, 10, size=n)
    c = centres[y] + rng.normal(0.0, 1.5, size=(n, 1, 2))            # (n, 3, 2)
    grid = np.arange(28.0)
    # A Gaussian blob is separable: exp(-(dr² + dc²)/8) = exp(-dr²/8) exp(-dc²/8).
    gr = np.exp(-(grid - c[..., 0, None]) ** 2 / 8.0)                 # (n, 3, 28)
    gc = np.exp(-(grid - c[..., 1, None]) ** 2 / 8.0)
    amp = rng.uniform(0.6, 1.0, size=(n, 3, 1))                       # brightness
    img = np.matmul((amp * gr).transpose(0, 2, 1), gc)                # (n, 28, 28)
    img += rng.uniform(0.0, 0.3, size=img.shape)
    return np.clip(img, 0.0, 1.0).reshape(n, 784).astype(np.float32), y.astype(np.int64)


# ---------------------------------------------------------------------------
# Figures

def svg_text(fig: Any) -> str:
    """A matplotlib Figure as SVG text, byte-identical from run to run (fixed
    hash salt for element ids, text kept as text, no date, tight bounding box)."""
    import io

    import matplotlib
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "tensorgraph", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return buf.getvalue()


def moving_average(x: Any, n: int) -> np.ndarray:
    """Mean of the last (up to) n values at each point: the running return
    the chapter-9 examples plot beside each episode's."""
    c = np.cumsum(np.insert(np.asarray(x, float), 0, 0.0))
    k = np.arange(1, len(c))
    lo = np.maximum(k - n, 0)
    return (c[k] - c[lo]) / (k - lo)
