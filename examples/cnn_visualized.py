"""What the conv net learned: Fundamentals of Deep Learning, chapter 5 ("Visualizing Learning in
Convolutional Networks").

Three pictures of the MNIST conv net of examples/mnist_cnn.py:

  - the first layer's 5x5 filters before training (random noise) and after
    (strokes and edge detectors), drawn by `tg.draw_filters`;
  - the feature maps of one test digit, conv layer by conv layer, drawn by
    `tg.draw_feature_maps`;
  - a 2-D t-SNE (van der Maaten and Hinton; scikit-learn's `TSNE` after a PCA
    to 50 dimensions) of the last hidden layer's activations (the dense
    layer's ReLU outputs, in eval mode) on 2,000 test digits, coloured by
    digit: the book's picture of classes that the network has pulled apart.

The trained weights come from mnist_cnn.py's model.npz (--weights; by
default mnist_cnn's output folder beside this one's, <out>/../mnist_cnn/,
which is where the gallery and the default --out put it); when there are
none, or they are for another width, the network is trained here for
--epochs epochs first. On MNIST (--data) it is the book's network; without a
data directory (the gallery), or with --quick and no MNIST, the narrower one
on the shipped subset (tg.data.load_mnist_subset), and the t-SNE uses the
subset's 500 test digits (128 with --quick).

Writes filters_before.svg, filters_after.svg, feature_maps.svg, tsne.svg and
results.json. Needs scikit-learn (the examples extra).

    python examples/cnn_visualized.py [--data DIR] [--out DIR] [--quick] [--weights FILE]
                                      [--epochs N]
"""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

import tensorgraph as tg
from _common import Example, parser, svg_text
from mnist_cnn import (SEED, SUBSET_EPOCHS, book_cnn, load_split, pipeline, recipe,
                       test_accuracy, train)

NAME = "cnn_visualized"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 5: visualizing learning in convolutional "
              "networks (filters, feature maps, t-SNE of the learned representation)")
TSNE_POINTS = 2000
EPOCHS = 2


def load_weights(model: tg.nn.Module, path: Path) -> bool:
    """Load mnist_cnn.py's checkpoint into `model`; False if there is none or
    it belongs to a network of other widths (then nothing is changed)."""
    if not path.is_file():
        return False
    state = tg.load(path)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, ValueError) as e:
        print(f"{path}: not these weights ({e})", flush=True)
        return False
    print(f"weights: {path} (epoch {state.get('epoch')})", flush=True)
    return True


def hidden(model: tg.nn.Sequential, X: np.ndarray, batch: int = 250) -> np.ndarray:
    """The last hidden layer's activations (every layer but the dropout and
    the output layer), in eval mode, without recording a graph."""
    layers = model.layers[:-2]
    model.eval()
    outs = []
    with tg.no_grad():
        for start in range(0, len(X), batch):
            h = tg.tensor(X[start:start + batch])
            for m in layers:
                h = m(h)
            outs.append(h.numpy())
    return np.concatenate(outs)


@contextlib.contextmanager
def one_openmp_thread() -> Iterator[None]:
    """scikit-learn's t-SNE at one OpenMP thread: on a busy two-core machine
    its spinning threads made 128 points take 8.5 s instead of 0.6 s."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1):
        yield


def tsne_figure(points: np.ndarray, labels: np.ndarray, title: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    cmap = plt.get_cmap("tab10")
    for d in range(10):
        sel = labels == d
        ax.scatter(points[sel, 0], points[sel, 1], s=6, color=cmap(d), label=str(d), alpha=0.8,
                   linewidths=0)
        if sel.any():   # the digit written at its cluster's median
            cx, cy = np.median(points[sel], axis=0)
            ax.text(cx, cy, str(d), fontsize=13, fontweight="bold", ha="center", va="center",
                    color="black", bbox={"boxstyle": "round,pad=0.15", "fc": "white",
                                         "ec": cmap(d), "alpha": 0.85})
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=3, fontsize=8, ncol=2, loc="best", title="digit", title_fontsize=8)
    ax.set_title(title, fontsize=10)
    text = svg_text(fig)
    plt.close(fig)
    return text


def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        weights: Optional[Path] = None, epochs: Optional[int] = None) -> dict[str, Any]:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
    split, embedded, widths = load_split(ex, data)
    model = book_cnn(widths, seed=SEED)
    conv1 = model.layers[0]
    ex.figure(tg.draw_filters(conv1, title="First-layer filters before training"),
              "filters_before.svg",
              f"The {widths[0]} 5x5 filters of the first conv layer as initialised: random "
              "numbers, no structure (each filter scaled to its own range).")
    weights = Path(weights) if weights is not None else ex.out.parent / "mnist_cnn" / "model.npz"
    if load_weights(model, weights):
        ex.results["weights_from"] = str(weights)
    else:
        n = epochs or (SUBSET_EPOCHS[quick] if embedded else EPOCHS)
        print(f"no usable weights at {weights}: training for {n} epochs here", flush=True)
        lr, batch = recipe(ex, embedded)
        _, facts = train(model, split, n, lr=lr, batch=batch)
        ex.results.update(weights_from="trained here", epochs=facts["epochs_run"],
                          train_seconds=facts["train_seconds"])
    ex.results["test_accuracy"] = test_accuracy(model, split)["accuracy"]
    ex.figure(tg.draw_filters(conv1, title="First-layer filters after training"),
              "filters_after.svg",
              "The same filters after training: oriented strokes, edges and blobs, the "
              "detectors the network learned for the pieces digits are made of.")

    _, eval_tf = pipeline(False)
    X, y = eval_tf(split.test[0]), split.test[1]
    digit = X[:1]
    ex.figure(tg.draw_feature_maps(model, digit), "feature_maps.svg",
              f"The feature maps of one test digit (a {int(y[0])}), layer by layer: each conv "
              "filter's response across the image; the second layer's maps, at half the "
              "size, combine the first layer's strokes into larger parts.")

    n = min(len(X), TSNE_POINTS)
    H = hidden(model, X[:n])
    Z = PCA(n_components=min(50, H.shape[1], n), random_state=0).fit_transform(H)
    with one_openmp_thread():
        P = TSNE(n_components=2, init="pca", random_state=0, perplexity=min(30.0, n / 4),
                 max_iter=400 if quick else (500 if embedded else 1000)).fit_transform(Z)
    # How well the classes separate in the picture: a 5-nearest-neighbour vote in 2-D.
    d2 = ((P[:, None, :] - P[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    nn5 = np.argsort(d2, axis=1)[:, :5]
    knn = float((np.array([np.bincount(y[:n][r], minlength=10).argmax() for r in nn5])
                 == y[:n]).mean())
    ex.results.update(tsne_points=n, hidden_units=int(H.shape[1]), tsne_5nn_accuracy=knn,
                      widths=list(widths), embedded_data=embedded)
    ex.figure(tsne_figure(P, y[:n], f"t-SNE of the last hidden layer ({H.shape[1]} units) on "
                          f"{n} test digits"), "tsne.svg",
              f"Each of {n} test digits placed by t-SNE from the {H.shape[1]} activations of "
              "the last hidden layer, coloured by its true digit: the network has pulled the "
              f"classes apart (a 5-nearest-neighbour vote in the picture gets {knn:.1%} right).")
    return ex.finish()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--weights", type=Path, default=None,
                   help="trained weights from mnist_cnn.py (default: <out>/../mnist_cnn/model.npz)")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs to train when there are no weights (default {EPOCHS})")
    args = p.parse_args()
    run(args.out, args.quick, args.data, args.weights, args.epochs)


if __name__ == "__main__":
    main()
