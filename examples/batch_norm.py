"""Batch normalisation: Fundamentals of Deep Learning, chapter 5 ("Accelerating Training with
Batch Normalization").

The book's MNIST conv net (examples/mnist_cnn.py) trained twice from the same
seeds, data order and augmentation: as it is, and with a batch normalisation
after each conv layer and after the dense layer, before the ReLU,

    y = γ (x - μ_B) / sqrt(σ²_B + ε) + β,

with μ_B and σ²_B the mean and (biased) variance of each channel over the
minibatch (and, for a conv layer, over every position of its feature map),
and running averages of them used at test time (`net.eval()`). The book's
claim: normalised layer inputs let the network train in fewer steps.
Measured here: the epochs and the wall time until the validation accuracy
first reaches 99% (scored four times an epoch), for each network, and the
learning curves side by side.

On MNIST (--data) the target is 99% validation accuracy and each network
trains until it gets there or for at most --epochs epochs. Without a data
directory (the gallery), or with --quick and no MNIST, both narrower
networks train on the shipped subset (tg.data.load_mnist_subset) towards a
lower target (93%; 30% with --quick), a demonstration in seconds.

--budget-minutes M gives each network half of M minutes (it stops before an
epoch that would end later; the target may then be missed, which results.json
says). Writes curves.svg (validation accuracy against epochs and against seconds,
training loss against epochs, both networks) and results.json.

    python examples/batch_norm.py [--data DIR] [--out DIR] [--quick] [--epochs N]
                                  [--budget-minutes M]
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional

import numpy as np

from _common import Example, parser, svg_text
from mnist_cnn import (DECAY, SEED, SUBSET_EPOCHS, book_cnn, load_split, machine, recipe,
                       test_accuracy, train)

NAME = "batch_norm"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 5: batch normalisation accelerates training "
              "(the MNIST conv net with and without it: epochs and time to 99% validation "
              "accuracy)")
TARGET = 0.99
SUBSET_TARGET = {False: 0.93, True: 0.3}
EPOCHS, QUICK_EPOCHS = 6, 1
EVALS_PER_EPOCH = 4


def curves_figure(runs: dict[str, dict[str, Any]], target: float) -> str:
    """Validation accuracy against epochs and seconds, training loss against
    epochs: the two networks side by side in each panel."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    colours = {"without": "#6b7280", "with": "#4338ca"}
    for key, r in runs.items():
        label = f"{key} batch norm"
        ep = [p["epoch"] for p in r["trace"]]
        acc = [p["val_accuracy"] for p in r["trace"]]
        sec = [p["seconds"] for p in r["trace"]]
        axes[0].plot(ep, acc, "o-", ms=3, color=colours[key], label=label)
        axes[1].plot(sec, acc, "o-", ms=3, color=colours[key], label=label)
        axes[2].plot(np.arange(1, len(r["loss"]) + 1), r["loss"], "o-", ms=3,
                     color=colours[key], label=label)
        if r["reached"]:
            axes[0].axvline(r["reached"]["epoch"], color=colours[key], lw=0.8, ls=":")
            axes[1].axvline(r["reached"]["seconds"], color=colours[key], lw=0.8, ls=":")
    for ax in axes[:2]:
        ax.axhline(target, color="#dc2626", lw=0.8, ls="--")
        ax.set_ylabel("validation accuracy")
        lo = min(min(p["val_accuracy"] for p in r["trace"]) for r in runs.values())
        ax.set_ylim(max(lo - 0.01, 0.0), 1.0)
    axes[0].set_xlabel("epochs")
    axes[1].set_xlabel("seconds (wall time, validation included)")
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("training loss (epoch mean)")
    axes[2].set_yscale("log")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"The MNIST conv net with and without batch normalisation (target: "
                 f"{target:.0%} validation accuracy, dashed)", fontsize=11)
    fig.tight_layout()
    text = svg_text(fig)
    plt.close(fig)
    return text


def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        epochs: Optional[int] = None, budget_minutes: Optional[float] = None) -> dict[str, Any]:
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
    split, embedded, widths = load_split(ex, data)
    target = SUBSET_TARGET[quick] if embedded else TARGET
    epochs = epochs or (SUBSET_EPOCHS[quick] if embedded else (QUICK_EPOCHS if quick else EPOCHS))
    lr, batch = recipe(ex, embedded)
    budget = budget_minutes * 60 / 2 if budget_minutes else None   # half for each network
    runs: dict[str, dict[str, Any]] = {}
    for key, bn in (("without", False), ("with", True)):
        model = book_cnn(widths, batch_norm=bn, seed=SEED)
        print(f"\n--- {key} batch normalisation: {model.num_parameters():,} parameters ---",
              flush=True)
        history, facts = train(model, split, epochs, lr=lr, batch=batch, target_val=target,
                               evals_per_epoch=EVALS_PER_EPOCH, budget=budget,
                               checkpoint=ex.out / f"model_{key}_bn.npz",
                               progress_every=0 if (quick or embedded) else 200)
        test = test_accuracy(model, split)
        runs[key] = {"trace": facts["trace"], "loss": history["loss"],
                     "reached": facts["reached_target"], "facts": facts, "test": test}
        ex.results[f"{key}_batch_norm"] = {
            "epochs_to_target": facts["reached_target"]["epoch"] if facts["reached_target"]
            else None,
            "seconds_to_target": facts["reached_target"]["seconds"] if facts["reached_target"]
            else None,
            "best_val_accuracy": facts["best_val_accuracy"], "epochs_run": facts["epochs_run"],
            "train_seconds": facts["train_seconds"],
            "test_accuracy": test["accuracy"], "parameters": model.num_parameters()}
    ex.results.update(target_val_accuracy=target, widths=list(widths),
                      optimizer=f"Adam(lr={lr}), ExponentialLR(gamma={DECAY})", batch_size=batch,
                      max_epochs=epochs, budget_minutes_each=budget / 60 if budget else None,
                      evals_per_epoch=EVALS_PER_EPOCH, seed=SEED,
                      embedded_data=embedded, machine=machine())
    a, b = runs["without"]["reached"], runs["with"]["reached"]
    if a and b:
        ex.results["speedup_in_epochs"] = round(a["epoch"] / b["epoch"], 2)
        ex.results["speedup_in_seconds"] = round(a["seconds"] / b["seconds"], 2)
    print("\n" + "\n".join(f"{k} batch norm: " + ", ".join(
        f"{n} {v}" for n, v in ex.results[f"{k}_batch_norm"].items()) for k in runs))
    ex.figure(curves_figure(runs, target), "curves.svg",
              "The same conv net trained from the same seeds with (blue) and without (grey) "
              "batch normalisation: validation accuracy (scored four times an epoch) against "
              "epochs and against wall time, and the training loss per epoch. Dotted lines "
              f"mark where each first reached the target of {target:.0%} (dashed).")
    return ex.finish()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--epochs", type=int, default=None,
                   help=f"at most this many epochs per network (default {EPOCHS}, "
                        f"{QUICK_EPOCHS} with --quick)")
    p.add_argument("--budget-minutes", type=float, default=None,
                   help="in all: each network stops before an epoch that would end after "
                        "half of it")
    args = p.parse_args()
    run(args.out, args.quick, args.data, args.epochs, args.budget_minutes)


if __name__ == "__main__":
    main()
