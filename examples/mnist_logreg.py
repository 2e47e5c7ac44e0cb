"""Logistic regression on MNIST: Fundamentals of Deep Learning, chapter 3
("Logistic Regression in TensorFlow").

One softmax layer maps an image's 784 pixels x to the probabilities of the
ten digits,

    y = softmax(x W + b),   W of shape 784x10, b of 10,

trained by minibatch gradient descent on the cross-entropy
E = -Σ_c t_c log y_c (computed from the logits x W + b in one stable op).

Like the book: weights and biases start at zero, plain SGD, and the data is
split 55,000 training / 5,000 validation (the first 5,000 training images, as
TensorFlow's `input_data` did) / 10,000 test. The book runs 60 epochs with a
learning rate of 0.01 and batches of 100; here a larger step (0.2, batches of
128) gets there in 20 epochs.

Writes network.svg (the layer as the book draws it), graph.svg (the op graph
of one batch's loss), curves.svg (loss and accuracy per epoch) and
weights.svg (each digit's 784 weights as an image), and results.json.

    python examples/mnist_logreg.py [--data DIR] [--out DIR] [--quick] [--epochs N]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
from matplotlib.figure import Figure

import tensorgraph as tg
from _common import Example, epochs_main, log_epoch, svg_text

NAME = "mnist_logreg"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 3: logistic regression on MNIST "
              "(784 -> 10 softmax)")
LR, BATCH, EPOCHS, QUICK_EPOCHS = 0.2, 128, 20, 2


def weights_figure(W: np.ndarray, title: str) -> str:
    """Column k of W as a 28x28 image: the template digit k is scored against
    (blue: ink there raises the score, red: lowers it; the colours of tg.draw)."""
    lim = float(np.percentile(np.abs(W), 99)) or 1.0  # a few extreme weights saturate
    fig = Figure(figsize=(12, 2.3), layout="constrained")
    axes = fig.subplots(1, W.shape[1])
    for k, ax in enumerate(axes):
        im = ax.imshow(W[:, k].reshape(28, 28), cmap="RdBu", vmin=-lim, vmax=lim,
                       interpolation="none")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(str(k), fontsize=13)
    cbar = fig.colorbar(im, ax=axes, orientation="horizontal", fraction=0.08, aspect=60,
                        extend="both")
    cbar.set_label(f"weight (the colours saturate beyond ±{lim:.2g}): ink on blue pixels "
                   "raises the score of the digit, on red ones lowers it")
    fig.suptitle(title, fontweight="bold")
    return svg_text(fig)


def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        epochs: Optional[int] = None) -> dict[str, Any]:
    """Train and draw; returns {"figures": [...], "results": {...}, "reproduces": ...}."""
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    mnist = ex.mnist()

    model = tg.nn.FeedForward([784, 10], output="softmax", init="zeros", name="logreg")
    opt = tg.optim.SGD(model.parameters(), lr=LR)
    print(f"model: {model}\noptimizer: plain SGD lr={LR}, batch {BATCH}, {epochs} epochs")

    # Training uses the logits: cross_entropy applies the softmax itself (stably).
    t0 = time.perf_counter()
    history = tg.train.fit(model.logits, tg.losses.cross_entropy, opt, mnist.train, epochs,
                           val=mnist.val, batch_size=BATCH, seed=0, progress=not ex.quick,
                           callbacks=[log_epoch])
    train_seconds = time.perf_counter() - t0
    test = tg.train.evaluate(model.logits, tg.losses.cross_entropy, mnist.test)
    print(f"test accuracy {test['accuracy']:.4f} (test loss {test['loss']:.4f}) after "
          f"{epochs} epochs; training took {train_seconds:.1f} s")

    ex.results.update(test_accuracy=test["accuracy"], test_loss=test["loss"],
                      val_accuracy=history["val_accuracy"][-1], epochs=epochs, batch_size=BATCH,
                      optimizer=f"SGD(lr={LR})", train_seconds=round(train_seconds, 2),
                      n_train=len(mnist.train[0]), n_val=len(mnist.val[0]),
                      n_test=len(mnist.test[0]))

    ex.figure(tg.draw(model, view="network", title="Logistic regression: 784 inputs -> 10 "
                      "softmax outputs"), "network.svg",
              "The model as the book draws it: every pixel feeds every output neuron.")
    Xb, yb = mnist.test[0][:BATCH], mnist.test[1][:BATCH]
    loss = tg.losses.cross_entropy(model.logits(tg.tensor(Xb, name="x")),
                                   tg.tensor(yb, name="labels"))
    ex.figure(tg.draw(loss, view="ops", module=model, title="The recorded graph of one "
                      "batch's loss"), "graph.svg",
              "What tensorgraph records for one batch: x @ W + b, then the fused "
              "softmax cross-entropy.")
    ex.figure(tg.draw_history(history, title=f"Logistic regression on MNIST "
                              f"(test accuracy {test['accuracy']:.2%})"), "curves.svg",
              "Training (solid) and validation (dashed) loss and accuracy per epoch.")
    ex.figure(weights_figure(model.layers[0].weight.numpy(), "What each digit's weights look for"),
              "weights.svg", "Each column of W as an image: logistic regression learns one "
              "template per digit.")
    return ex.finish()


def main() -> None:
    epochs_main(__doc__, run, EPOCHS, QUICK_EPOCHS)


if __name__ == "__main__":
    main()
