"""The convolutional network for MNIST: Fundamentals of Deep Learning, chapter 5 ("Building a
Convolutional Network for MNIST").

The book's network, in PyTorch's vocabulary (NCHW images, 'same' padding):

    conv 5x5, 32 filters + ReLU -> max pool 2x2      28x28x1 -> 28x28x32 -> 14x14x32
    conv 5x5, 64 filters + ReLU -> max pool 2x2      -> 14x14x64 -> 7x7x64
    flatten -> dense 1024 + ReLU -> dropout 0.5      -> 3136 -> 1024
    dense 10 (softmax in the loss)                   -> 10

trained on the cross-entropy with Adam (chapter 4; lr 1e-3 decayed x0.85 an
epoch, batches of 64)
on the same split as chapter 3's examples: 55,000 training, 5,000 validation
(the first 5,000 training images) and 10,000 test images. Chapter 5's
preprocessing pipeline feeds it: every epoch each training digit is shifted
by up to 2 pixels (`tg.data.RandomShift`), then every image, training or
not, is standardised on its own (`tg.data.Standardize`: mean 0, variance 1).
The weights with the best validation accuracy are kept (model.npz) and
scored once on the test set. The book reports about 99.2% test accuracy.

Options: --epochs N, --budget-minutes M (stop before an epoch that would
end after M minutes; the full runs on a shared machine use it), --lr,
--no-augment. results.json records epochs, wall time, seconds per epoch,
seeds, BLAS threads and the load average.

Without a data directory (the gallery) or with --quick and no MNIST at
--data, it trains a narrower network of the same shape (8 and 16 filters, a
dense layer of 128) on the MNIST subset shipped in the package
(`tg.data.load_mnist_subset()`: 2,000 training and 500 test digits), in
seconds; that is a demonstration, not the book's result.

Writes network.svg (the network as the book draws it), augmented.svg (a digit
and its augmented versions), curves.svg, model.npz and results.json.

    python examples/mnist_cnn.py [--data DIR] [--out DIR] [--quick] [--epochs N]
                                 [--budget-minutes M] [--lr LR] [--no-augment]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

import tensorgraph as tg
from _common import Example, Split, parser, svg_text

NAME = "mnist_cnn"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 5: the convolutional network for MNIST "
              "(conv 5x5x32, max pool, conv 5x5x64, max pool, dense 1024 with dropout, softmax)")

#: Layer widths: (first conv filters, second conv filters, dense units).
BOOK = (32, 64, 1024)
SMALL = (8, 16, 128)        # the gallery's network on the shipped subset
TINY = (4, 8, 32)           # --quick on the subset: a smoke test
LR, BATCH, EPOCHS, SEED = 1e-3, 64, 12, 0
DECAY = 0.85               # Adam's learning rate times this after every epoch
EVAL_BATCH = 250            # conv activations of 250 images fit in memory comfortably
MAX_SHIFT = 2
#: (train, val, test) sizes taken from the shipped subset.
SUBSET_SIZES = {False: (1700, 300, 500), True: (384, 128, 128)}
SUBSET_EPOCHS = {False: 6, True: 1}
#: --quick takes bigger, smaller steps: (learning rate, batch), so one short epoch learns something.
QUICK_RECIPE = (1e-2, 32)


# ---------------------------------------------------------------------------
# Data

def images(X: np.ndarray) -> np.ndarray:
    """Flat MNIST rows (N, 784) as an image batch (N, 1, 28, 28)."""
    return X.reshape(len(X), 1, 28, 28)


def subset_split(ex: Example, quick: bool) -> Split:
    """The shipped subset, split as the book splits MNIST (the first images
    of the training file validate), as image batches."""
    s = ex.mnist_subset(SUBSET_SIZES[quick])
    return Split(*((images(X), y) for X, y in (s.train, s.val, s.test)), s.source)


def load_split(ex: Example, data: Optional[Path]) -> tuple[Split, bool, tuple[int, int, int]]:
    """(split, embedded, widths): the full MNIST from `data` (chapter 3's
    split) for the book's network, or the shipped subset, when no directory
    is given (the gallery) or --quick finds none, for a narrower one."""
    if data is None or (ex.quick and not Path(data).is_dir()):
        return subset_split(ex, ex.quick), True, (TINY if ex.quick else SMALL)
    s = ex.mnist()
    train, val, test = ((images(X), y) for X, y in (s.train, s.val, s.test))
    return Split(train, val, test, s.source), False, BOOK


def recipe(ex: Example, embedded: bool, lr: float = LR) -> tuple[float, int]:
    """(learning rate, batch size): the book's run's, or --quick's on the subset."""
    return QUICK_RECIPE if ex.quick and embedded else (lr, BATCH)


def pipeline(augment: bool, seed: int = SEED) -> tuple[Any, Any]:
    """(training transform, evaluation transform): chapter 5's preprocessing.
    Training images are shifted at random, then standardised; evaluation
    images only standardised."""
    standardize = tg.data.Standardize()
    train = tg.data.Compose([tg.data.RandomShift(MAX_SHIFT, seed=seed), standardize]) \
        if augment else standardize
    return train, standardize


# ---------------------------------------------------------------------------
# The network

def book_cnn(widths: tuple[int, int, int] = BOOK, batch_norm: bool = False, seed: int = SEED,
             dropout: float = 0.5) -> tg.nn.Sequential:
    """The book's conv net with the given widths; with `batch_norm`, a batch
    normalisation after each conv and the dense layer, before the ReLU (as
    Ioffe and Szegedy place it; the layer before it then needs no bias)."""
    c1, c2, hidden = widths
    rng = np.random.default_rng(seed)

    def s() -> int:
        return int(rng.integers(2**31))

    def bn(n: int, two_d: bool = True) -> list[tg.nn.Module]:
        if not batch_norm:
            return []
        return [tg.nn.BatchNorm2d(n) if two_d else tg.nn.BatchNorm1d(n)]

    bias = not batch_norm
    return tg.nn.Sequential(
        tg.nn.Conv2d(1, c1, 5, padding="same", bias=bias, seed=s()), *bn(c1), tg.nn.ReLU(),
        tg.nn.MaxPool2d(2),
        tg.nn.Conv2d(c1, c2, 5, padding="same", bias=bias, seed=s()), *bn(c2), tg.nn.ReLU(),
        tg.nn.MaxPool2d(2),
        tg.nn.Flatten(),
        tg.nn.Linear(c2 * 7 * 7, hidden, bias=bias, seed=s()), *bn(hidden, two_d=False),
        tg.nn.ReLU(), tg.nn.Dropout(dropout, seed=s()),
        tg.nn.Linear(hidden, 10, seed=s()),
        name="cnn_bn" if batch_norm else "cnn")


# ---------------------------------------------------------------------------
# Training

def train(model: tg.nn.Module, split: Split, epochs: int, lr: float = LR, batch: int = BATCH,
          seed: int = SEED, augment: bool = True, budget: Optional[float] = None,
          checkpoint: Optional[Path] = None, target_val: Optional[float] = None,
          evals_per_epoch: int = 1, progress_every: int = 0, decay: float = DECAY
          ) -> tuple[tg.train.History, dict[str, Any]]:
    """Adam on the cross-entropy (its learning rate times `decay` after each
    epoch) for `epochs` epochs, fewer if the next one
    would end after `budget` seconds, or once the validation accuracy reaches
    `target_val`. The validation set is scored `evals_per_epoch` times an
    epoch (the "trace": fractional epoch, seconds, accuracy); the best weights
    so scored go to `checkpoint` and are loaded back at the end. Returns the
    per-epoch history and facts about the run (wall times include the
    validation passes)."""
    train_tf, eval_tf = pipeline(augment, seed)
    val = (eval_tf(split.val[0]), split.val[1])
    loader = tg.data.DataLoader(*split.train, batch_size=batch, seed=seed, transform=train_tf)
    opt = tg.optim.Adam(model.parameters(), lr=lr)
    schedule = tg.optim.ExponentialLR(opt, gamma=decay)
    loss_fn = tg.losses.cross_entropy
    history = tg.train.History()
    trace: list[dict[str, float]] = []
    best: dict[str, Any] = {"val_accuracy": -1.0, "epoch": None}
    best_state = None
    reached: Optional[dict[str, float]] = None
    n_batches = len(loader)
    marks = {round(n_batches * k / evals_per_epoch) for k in range(1, evals_per_epoch + 1)}
    t0 = time.perf_counter()

    def score(epoch_done: float) -> dict[str, float]:
        nonlocal best, best_state, reached
        scores = tg.train.evaluate(model, loss_fn, val, batch_size=EVAL_BATCH)
        point = {"epoch": round(epoch_done, 3), "seconds": round(time.perf_counter() - t0, 2),
                 "val_accuracy": scores["accuracy"], "val_loss": scores["loss"]}
        trace.append(point)
        if scores["accuracy"] > best["val_accuracy"]:
            best = {"val_accuracy": scores["accuracy"], "epoch": point["epoch"]}
            best_state = model.state_dict()   # copies
            if checkpoint is not None:
                tg.save({"model": best_state, "epoch": point["epoch"],
                         "val_accuracy": scores["accuracy"]}, checkpoint)
        if reached is None and target_val is not None and scores["accuracy"] >= target_val:
            reached = {"epoch": point["epoch"], "seconds": point["seconds"]}
        return scores

    for epoch in range(epochs):
        t_epoch = time.perf_counter()
        model.train()
        total = correct = seen = 0.0
        scores: dict[str, float] = {}
        for i, (xb, yb) in enumerate(loader):
            opt.zero_grad()
            out = model(tg.tensor(xb))
            loss = loss_fn(out, tg.tensor(yb))
            loss.backward()
            opt.step()
            k = len(yb)
            total += float(loss.numpy()) * k
            correct += float((out.numpy().argmax(axis=1) == yb).sum())
            seen += k
            if progress_every and (i + 1) % progress_every == 0:
                dt = time.perf_counter() - t_epoch
                print(f"  epoch {epoch + 1} batch {i + 1}/{n_batches}: loss {total / seen:.4f}, "
                      f"{dt / (i + 1):.3f} s per batch, ~{dt / (i + 1) * n_batches / 60:.1f} "
                      "min per epoch", flush=True)
            if i + 1 in marks:
                scores = score(epoch + (i + 1) / n_batches)
                if reached is not None:
                    break
                model.train()
        logs = {"loss": total / seen, "accuracy": correct / seen,
                "val_loss": scores["loss"], "val_accuracy": scores["accuracy"],
                "seconds": time.perf_counter() - t0, "lr": opt.param_groups[0]["lr"]}
        history.append(epoch, logs)
        schedule.step()
        epoch_seconds = time.perf_counter() - t_epoch
        print(f"epoch {epoch + 1:3d}: " + "  ".join(f"{k} {v:.4g}" for k, v in logs.items())
              + f"  ({epoch_seconds:.1f} s)", flush=True)
        if reached is not None:
            print(f"validation accuracy {target_val:.2%} reached after {reached['epoch']} epochs, "
                  f"{reached['seconds']:.1f} s", flush=True)
            break
        if budget is not None and logs["seconds"] + epoch_seconds * 1.1 > budget \
                and epoch + 1 < epochs:
            print(f"stopping: another epoch (~{epoch_seconds:.0f} s) would pass the budget of "
                  f"{budget:.0f} s", flush=True)
            history.stopped_epoch = epoch
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    seconds = time.perf_counter() - t0
    facts = {"epochs_run": len(history), "best_epoch": best["epoch"],
             "best_val_accuracy": best["val_accuracy"], "train_seconds": round(seconds, 1),
             "seconds_per_epoch": round(seconds / max(len(history), 1), 1),
             "stopped_by_budget": history.stopped_epoch is not None, "reached_target": reached,
             "trace": trace}
    return history, facts


def test_accuracy(model: tg.nn.Module, split: Split) -> dict[str, float]:
    _, eval_tf = pipeline(False)
    return tg.train.evaluate(model, tg.losses.cross_entropy,
                             (eval_tf(split.test[0]), split.test[1]), batch_size=EVAL_BATCH)


def machine() -> dict[str, Any]:
    """The BLAS threads and the CPUs, for results.json."""
    info: dict[str, Any] = {"OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
                            "cpus": os.cpu_count()}
    try:
        from threadpoolctl import threadpool_info
        info["blas_threads"] = [p["num_threads"] for p in threadpool_info()
                                if p.get("user_api") == "blas"]
    except ImportError:
        pass
    return info


# ---------------------------------------------------------------------------
# Figures

def augmented_figure(x: np.ndarray, label: int, seed: int = SEED) -> str:
    """A digit and what chapter 5's transforms make of it: a row per
    pipeline, the original then seven seeded draws."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    batch = np.repeat(x[None], 7, axis=0)       # (7, 1, 28, 28): seven draws for one digit
    rows: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = [
        ("RandomShift(2)", tg.data.RandomShift(2, seed=seed)),
        ("RandomCrop(28, padding=4)", tg.data.RandomCrop(28, padding=4, seed=seed)),
        ("RandomHorizontalFlip()\n(wrong for digits)", tg.data.RandomHorizontalFlip(seed=seed)),
        ("Compose([RandomShift(2),\nStandardize()])",
         tg.data.Compose([tg.data.RandomShift(2, seed=seed), tg.data.Standardize()])),
    ]
    fig, axes = plt.subplots(len(rows), 1, figsize=(8.5, 1.2 * len(rows) + 0.5))
    gap = np.full((28, 4), np.nan)              # white between the images
    for ax, (name, t) in zip(axes, rows):
        out = t(batch)
        original = tg.data.Standardize()(x[None])[0, 0] if "Standardize" in name else x[0]
        strip = np.hstack([original, gap, np.full((28, 8), np.nan)]
                          + [a for k in range(7) for a in (out[k, 0], gap)][:-1])
        ax.imshow(strip, cmap="gray_r", interpolation="nearest")   # one image per row
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_xticks([14] + [28 + 12 + 32 * k + 14 for k in range(7)],
                      [f"original ({label})"] + [f"draw {k + 1}" for k in range(7)], fontsize=7)
        ax.set_yticks([])
        ax.tick_params(length=0)
    fig.suptitle(f"A digit and its augmented versions (tg.data transforms, seed {seed})",
                 fontsize=10)
    text = svg_text(fig)
    plt.close(fig)
    return text


def draw_network(model: tg.nn.Module, title: str) -> Any:
    """The network as the book draws it: feature-map stacks for the conv
    layers (with the input's shape), then the dense layers."""
    return tg.draw(model, view="network", input_shape=(1, 28, 28), title=title)


# ---------------------------------------------------------------------------

def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        epochs: Optional[int] = None, budget_minutes: Optional[float] = None,
        lr: float = LR, augment: bool = True) -> dict[str, Any]:
    """Train, evaluate and draw; returns {"figures", "results", "reproduces"}."""
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
    split, embedded, widths = load_split(ex, data)
    epochs = epochs or (SUBSET_EPOCHS[quick] if embedded else (1 if quick else EPOCHS))
    model = book_cnn(widths, seed=SEED)
    lr, batch = recipe(ex, embedded, lr)
    print(f"model: {model}\n{model.num_parameters():,} parameters; Adam(lr={lr}), batch "
          f"{batch}, up to {epochs} epochs, augmentation: "
          f"{'RandomShift(2)' if augment else 'none'} + Standardize", flush=True)
    budget = budget_minutes * 60 if budget_minutes else None
    history, facts = train(model, split, epochs, lr=lr, batch=batch, augment=augment,
                           budget=budget,
                           checkpoint=ex.out / "model.npz",
                           evals_per_epoch=1 if embedded else 2,
                           progress_every=0 if (quick or embedded) else 100)
    facts.pop("trace")
    test = test_accuracy(model, split)
    print(f"test accuracy {test['accuracy']:.4f} (loss {test['loss']:.4f}) with the weights of "
          f"epoch {facts['best_epoch']} (best validation accuracy "
          f"{facts['best_val_accuracy']:.4f}); {facts['epochs_run']} epochs in "
          f"{facts['train_seconds']:.0f} s", flush=True)
    ex.results.update(test_accuracy=test["accuracy"], test_loss=test["loss"], **facts,
                      widths=list(widths), parameters=model.num_parameters(),
                      optimizer=f"Adam(lr={lr}), ExponentialLR(gamma={DECAY})", batch_size=batch,
                      augmentation=f"RandomShift({MAX_SHIFT}) + Standardize" if augment
                      else "Standardize", seeds={"weights": SEED, "shuffle_and_augment": SEED,
                                                 "dropout": "drawn from the weights' seed"},
                      embedded_data=embedded, n_train=len(split.train[0]),
                      n_val=len(split.val[0]), n_test=len(split.test[0]),
                      val_accuracy_per_epoch=history["val_accuracy"],
                      machine=machine(), weights_file="model.npz")
    if not embedded and not quick:
        goal = 0.992
        ex.results["goal_99.2%_reached"] = bool(test["accuracy"] >= goal)

    ex.figure(draw_network(model, "The book's MNIST conv net" if widths == BOOK else
                           f"The book's conv net, narrower ({widths[0]}, {widths[1]} filters, "
                           f"{widths[2]} dense units)"), "network.svg",
              "The network as the book draws it: each conv layer a stack of feature maps "
              f"with its size and depth (28x28x1 -> 28x28x{widths[0]} -> 14x14x{widths[0]} "
              "-> ...: height x width x channels), the 5x5 kernels and 2x2 pooling windows "
              "marked as small squares, then the dense layers.")
    digit = split.test[0][0]
    ex.figure(augmented_figure(digit, int(split.test[1][0])), "augmented.svg",
              "Chapter 5's preprocessing on one test digit, seven seeded draws per row: "
              "random shifts of up to 2 pixels (the augmentation used here), random crops "
              "after 4 pixels of zero padding, horizontal flips (right for photographs, "
              "wrong for digits: a mirrored 2 is no digit), and a shift followed by "
              "per-image standardisation (mean 0, variance 1).")
    ex.figure(tg.draw_history({k: v for k, v in history.history.items()
                               if k not in ("seconds", "lr")},
                              title=f"Conv net on MNIST (test accuracy {test['accuracy']:.2%})"),
              "curves.svg", "Training (solid) and validation (dashed) loss and accuracy per "
              "epoch; the training numbers are on augmented digits with dropout on, so they "
              "can sit below the validation ones.")
    return ex.finish()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs (default {EPOCHS} on MNIST, {SUBSET_EPOCHS[False]} on the "
                        "subset, 1 with --quick)")
    p.add_argument("--budget-minutes", type=float, default=None,
                   help="stop before an epoch that would end after this many minutes")
    p.add_argument("--lr", type=float, default=LR, help=f"Adam's learning rate (default {LR})")
    p.add_argument("--no-augment", action="store_true", help="no random shifts")
    args = p.parse_args()
    run(args.out, args.quick, args.data, args.epochs, args.budget_minutes, args.lr,
        augment=not args.no_augment)


if __name__ == "__main__":
    main()
