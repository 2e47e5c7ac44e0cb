"""PCA against an autoencoder: Fundamentals of Deep Learning, chapter 6
("Motivating the Autoencoder Architecture", "Implementing an Autoencoder in TensorFlow").

Both squeeze a 784-pixel digit into two numbers and rebuild it from them.

  - PCA (principal component analysis, numpy's SVD): centre the training
    images on their mean m, take the SVD X - m = U S Vᵀ; the code of x is
    c = (x - m) V₂ (the first two right singular vectors) and its
    reconstruction m + c V₂ᵀ, the best any *linear* two-number code can do in
    squared error.
  - The book's autoencoder: an encoder 784-1000-500-250-2 and a mirrored
    decoder 2-250-500-1000-784, so that the code is a non-linear function of
    the image. The book puts a sigmoid (after batch normalisation) on every
    layer; here the hidden layers are ReLU (He initialisation), the 2-unit
    code is linear, and the output is a sigmoid, which trains in a few epochs
    without batch normalisation. Trained with Adam (lr 1e-3, batches of 100;
    20 on the shipped subset)
    on the mean squared error per pixel, the quantity reported for both.

Writes codes.svg (the 2-D codes of the test digits coloured by digit: PCA |
autoencoder), reconstructions.svg (a digit of each class: original, PCA with
2 components, autoencoder), curves.svg (the autoencoder's loss per epoch) and
results.json with each method's test mean squared error per pixel.

    python examples/pca_autoencoder.py [--data DIR] [--out DIR] [--quick] [--epochs N]

With --data (default ../shared/data/mnist): all of MNIST (55,000 train, the
first 5,000 training images as validation, 10,000 test). With no MNIST there
(and with --quick), or from the gallery: the 2,500 digits shipped in the
package (tg.data.load_mnist_subset).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

import tensorgraph as tg
from _common import Example, Split, epochs_main, log_epoch, svg_text
from mnist_cnn import machine

NAME = "pca_autoencoder"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 6: PCA against the 784-1000-500-250-2 "
              "autoencoder on MNIST (2-D codes and reconstructions)")
BOOK = (1000, 500, 250)             # the encoder's hidden widths; the decoder mirrors them
SMALL = (256, 128, 64)              # --quick on the shipped subset: a smoke test
CODE = 2
LR, BATCH, SEED = 1e-3, 100, 0
SUBSET_BATCH = 20             # the 1,800 subset digits: more, smaller steps
#: epochs: on full MNIST, on the shipped subset (the gallery), with --quick
EPOCHS, SUBSET_EPOCHS, QUICK_EPOCHS = 5, 3, 2
#: (train, val, test) sizes taken from the shipped subset (2,000 train / 500 test images)
SUBSET_SIZES = {False: (1800, 200, 500), True: (400, 100, 200)}


# ---------------------------------------------------------------------------
# Data (denoising_sparse.py uses it too)

def load_digits(ex: Example, data: Optional[Path],
                subset_sizes: dict[bool, tuple[int, int, int]] = SUBSET_SIZES
                ) -> tuple[Split, bool]:
    """(split of flat images in [0, 1], embedded): all of MNIST from `data`
    (chapter 3's split), or the subset shipped in the package when no
    directory is given (the gallery) or --quick finds none there."""
    if data is None or (ex.quick and not Path(data).is_dir()):
        Xtr, ytr, Xte, yte = tg.data.load_mnist_subset()
        n_tr, n_va, n_te = subset_sizes[ex.quick]
        split = Split((Xtr[n_va:n_va + n_tr], ytr[n_va:n_va + n_tr]), (Xtr[:n_va], ytr[:n_va]),
                      (Xte[:n_te], yte[:n_te]),
                      f"the MNIST subset shipped in the package (tg.data.load_mnist_subset): "
                      f"{n_tr} train / {n_va} validation / {n_te} test")
        ex.data_source = split.source
        print(f"data: {split.source}", flush=True)
        return split, True
    return ex.mnist(), False


# ---------------------------------------------------------------------------
# The two methods

class PCA:
    """Principal components by numpy's SVD of the centred training data."""

    def __init__(self, X: np.ndarray, k: int) -> None:
        X = np.asarray(X, dtype=np.float64)
        self.mean = X.mean(axis=0)
        _, s, vt = np.linalg.svd(X - self.mean, full_matrices=False)
        self.components = vt[:k]                  # (k, 784), orthonormal rows
        self.explained_variance_ratio = (s[:k] ** 2).sum() / (s ** 2).sum()

    def encode(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - self.mean) @ self.components.T

    def decode(self, C: np.ndarray) -> np.ndarray:
        return C @ self.components + self.mean


class Autoencoder(tg.nn.Module):
    """encoder: 784 -> hidden... -> code (ReLU hidden, linear code);
    decoder: code -> reversed hidden... -> 784 (ReLU hidden, sigmoid output)."""

    def __init__(self, hidden: tuple[int, ...] = BOOK, code: int = CODE,
                 code_activation: Optional[str] = None, seed: int = SEED,
                 name: str = "autoencoder") -> None:
        super().__init__(name=name)
        self.encoder = tg.nn.FeedForward([784, *hidden, code], activation="relu",
                                         output=code_activation, init="he", seed=seed,
                                         name="encoder")
        self.decoder = tg.nn.FeedForward([code, *hidden[::-1], 784], activation="relu",
                                         output="sigmoid", init="he", seed=seed + 1,
                                         name="decoder")

    def encode(self, x: Any) -> tg.Tensor:
        return self.encoder(x)

    def forward(self, x: Any) -> tg.Tensor:
        return self.decoder(self.encoder(x))


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error per pixel, in float64."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(np.mean(d * d))


def batched(fn: Any, X: np.ndarray, batch: int = 1000) -> np.ndarray:
    """fn over X in batches, without recording a graph, as one numpy array."""
    with tg.no_grad():
        return np.concatenate([np.asarray(fn(X[i:i + batch]).data)
                               for i in range(0, len(X), batch)])


def train_autoencoder(model: tg.nn.Module, split: Split, epochs: int, quick: bool,
                      inputs: Any = None, lr: float = LR, batch: int = BATCH,
                      extra_loss: Any = None) -> tuple[Any, float]:
    """Adam on the mean squared error of model(inputs(x)) against x (inputs:
    a corruption, for the denoising autoencoder; extra_loss(x): a penalty
    added to the loss); returns (history, seconds)."""
    opt = tg.optim.Adam(model.parameters(), lr=lr)
    Xtr, Xva = split.train[0], split.val[0]

    def forward(x: Any) -> tg.Tensor:
        return model(inputs(x) if inputs is not None else x)

    def loss(y: tg.Tensor, t: tg.Tensor) -> tg.Tensor:
        value = tg.losses.mse(y, t)
        return value + extra_loss(t) if extra_loss is not None else value

    t0 = time.perf_counter()
    history = tg.train.fit(forward, loss, opt, (Xtr, Xtr), epochs, val=(Xva, Xva), metrics=(),
                           batch_size=batch, seed=SEED, progress=not quick,
                           callbacks=[log_epoch])
    return history, time.perf_counter() - t0


# ---------------------------------------------------------------------------
# Figures

def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), layout="constrained")


def codes_figure(panels: list[tuple[str, np.ndarray]], labels: np.ndarray, title: str) -> str:
    """The 2-D codes side by side, a colour per digit (points rasterised, so
    the SVG stays small with 10,000 of them)."""
    import matplotlib
    cmap = matplotlib.colormaps["tab10"]
    fig = _figure(5.2 * len(panels), 5.0)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, C) in zip(axes, panels):
        for d in range(10):
            sel = labels == d
            ax.scatter(C[sel, 0], C[sel, 1], s=3, color=cmap(d), alpha=0.6, linewidths=0,
                       label=str(d), rasterized=True)
            if sel.any():
                cx, cy = np.median(C[sel], axis=0)
                ax.text(cx, cy, str(d), fontsize=12, fontweight="bold", ha="center",
                        va="center", bbox={"boxstyle": "round,pad=0.15", "fc": "white",
                                           "ec": cmap(d), "alpha": 0.85})
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("code 1")
        ax.set_ylabel("code 2")
    axes[-1].legend(markerscale=4, fontsize=7, ncol=2, title="digit", title_fontsize=7,
                    loc="best")
    fig.suptitle(title, fontsize=11)
    return svg_text(fig)


def digits_figure(rows: list[tuple[str, np.ndarray]], title: str) -> str:
    """Rows of 28x28 digits, each row labelled."""
    n = rows[0][1].shape[0]
    fig = _figure(0.9 * n + 1.6, 0.95 * len(rows) + 0.5)
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (name, X) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(np.clip(X[c], 0, 1).reshape(28, 28), cmap="gray_r", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return svg_text(fig)


def one_per_class(y: np.ndarray) -> np.ndarray:
    """The index of the first test digit of each class present, in class order."""
    return np.array([int(np.flatnonzero(y == d)[0]) for d in range(10) if (y == d).any()])


# ---------------------------------------------------------------------------

def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        epochs: Optional[int] = None) -> dict[str, Any]:
    """Fit PCA, train the autoencoder, draw both; returns the gallery's dict."""
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
    split, embedded = load_digits(ex, data)
    hidden = SMALL if quick and embedded else BOOK
    epochs = epochs or (QUICK_EPOCHS if quick else SUBSET_EPOCHS if embedded else EPOCHS)
    Xtr, (Xte, yte) = split.train[0], split.test

    t0 = time.perf_counter()
    pca = PCA(Xtr, CODE)
    pca_seconds = time.perf_counter() - t0
    pca_codes = pca.encode(Xte)
    pca_rec = pca.decode(pca_codes)
    print(f"PCA: {CODE} components explain {pca.explained_variance_ratio:.1%} of the training "
          f"variance; test MSE per pixel {mse(pca_rec, Xte):.5f} ({pca_seconds:.1f} s)")

    model = Autoencoder(hidden)
    sizes = [784, *hidden, CODE, *hidden[::-1], 784]
    print(f"autoencoder {'-'.join(map(str, sizes))}: {model.num_parameters():,} parameters; "
          f"Adam(lr={LR}), batch {SUBSET_BATCH if embedded else BATCH}, {epochs} epochs")
    batch = SUBSET_BATCH if embedded else BATCH
    history, train_seconds = train_autoencoder(model, split, epochs, ex.quick, batch=batch)
    ae_codes = batched(model.encode, Xte)
    ae_rec = batched(model, Xte)
    results = {
        "pca": {"test_mse_per_pixel": mse(pca_rec, Xte),
                "train_mse_per_pixel": mse(pca.decode(pca.encode(Xtr)), Xtr),
                "explained_variance_ratio": float(pca.explained_variance_ratio),
                "seconds": round(pca_seconds, 2)},
        "autoencoder": {"test_mse_per_pixel": mse(ae_rec, Xte),
                        "train_mse_per_pixel": mse(batched(model, Xtr), Xtr),
                        "architecture": "-".join(map(str, sizes)),
                        "activations": "ReLU hidden, linear 2-unit code, sigmoid output",
                        "parameters": model.num_parameters(), "epochs": epochs,
                        "optimizer": f"Adam(lr={LR})", "batch_size": batch,
                        "loss_per_epoch": [float(v) for v in history["loss"]],
                        "val_loss_per_epoch": [float(v) for v in history["val_loss"]],
                        "train_seconds": round(train_seconds, 2),
                        "seconds_per_epoch": round(train_seconds / max(epochs, 1), 2)},
        "baseline_mean_image_test_mse_per_pixel": mse(np.broadcast_to(pca.mean, Xte.shape), Xte),
        "embedded_data": embedded, "n_train": len(Xtr), "n_val": len(split.val[0]),
        "n_test": len(Xte), "machine": machine(),
    }
    ex.results.update(results)
    print(f"test MSE per pixel: PCA {results['pca']['test_mse_per_pixel']:.5f}, autoencoder "
          f"{results['autoencoder']['test_mse_per_pixel']:.5f} (the mean image: "
          f"{results['baseline_mean_image_test_mse_per_pixel']:.5f}); training took "
          f"{train_seconds:.1f} s")

    ex.figure(codes_figure([(f"PCA (test MSE {results['pca']['test_mse_per_pixel']:.4f})",
                             pca_codes),
                            (f"autoencoder (test MSE "
                             f"{results['autoencoder']['test_mse_per_pixel']:.4f})", ae_codes)],
                           yte, f"2-D codes of {len(Xte):,} test digits"), "codes.svg",
              "The two numbers each method keeps of every test digit, coloured by the digit "
              "(its label is written at each class's median): PCA's two directions of largest "
              "variance (a linear code) beside the autoencoder's two-unit code (a non-linear "
              "one). How far apart the classes sit is what the two pictures compare.")
    idx = one_per_class(yte)
    ex.figure(digits_figure([("original", Xte[idx]), ("PCA, 2\ncomponents", pca_rec[idx]),
                             ("auto-\nencoder", ae_rec[idx])],
                            "A test digit of each class rebuilt from two numbers"),
              "reconstructions.svg",
              "Top: test digits; middle: rebuilt from their first two principal components "
              "(mean image plus two directions); bottom: rebuilt by the autoencoder's decoder "
              f"from its two-unit code. Test mean squared error per pixel: PCA "
              f"{results['pca']['test_mse_per_pixel']:.4f}, autoencoder "
              f"{results['autoencoder']['test_mse_per_pixel']:.4f}.")
    ex.figure(tg.draw_history(history, title="autoencoder: mean squared error per pixel"),
              "curves.svg", "The autoencoder's training loss (solid) and validation loss "
              "(dashed) per epoch: mean squared error per pixel of the reconstruction.")
    return ex.finish()


def main() -> None:
    epochs_main(__doc__, run, EPOCHS, QUICK_EPOCHS)


if __name__ == "__main__":
    main()
