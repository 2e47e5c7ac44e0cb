"""SGD, momentum, Nesterov, AdaGrad, RMSProp and Adam compared: Fundamentals of
Deep Learning, chapter 4 ("Beyond Gradient Descent").

Chapter 4 explains why plain gradient descent struggles on error surfaces with
pathological curvature (a long narrow valley: the gradient points across it,
not along it) and the remedies, in the book's notation (ε the learning rate,
g the gradient, δ a small constant):

    momentum   v ← m v − ε g,  θ ← θ + v  (Nesterov: g taken at the look-ahead θ + m v)
    AdaGrad    r ← r + g ⊙ g,  θ ← θ − ε g / (δ + √r)
    RMSProp    r ← ρ r + (1 − ρ) g ⊙ g,  θ ← θ − ε g / (δ + √r)
    Adam       RMSProp's scale plus momentum on g, both bias-corrected

Two experiments, each optimizer from the same start:

1. A two-dimensional error surface with such a valley, Rosenbrock's
   E(x, y) = (1 − x)² + 10 (y − x²)², minimum 0 at (1, 1), starting at
   (−1.5, 2); 300 steps each; the path each optimizer takes is drawn on
   the surface.
2. The chapter-3 network (784-256-256-10 ReLU) on MNIST: the same initial
   weights and the same minibatches (128) for every optimizer, 5 epochs each.

Learning rates (surface / MNIST): 0.01 for the three SGD variants (the book's,
with momentum m = 0.9), AdaGrad 0.5 / 0.01, RMSProp 0.02 / 0.001 with ρ = 0.9,
Adam 0.1 / 0.001 with the usual β1 = 0.9, β2 = 0.999.

Writes surface.svg (all six paths on the surface), surface_panels.svg (one
panel per optimizer), surface_loss.svg (E along each path), surface_graph.svg
(the recorded graph of E), mnist_loss.svg and mnist_val_error.svg
(learning curves of the six) and results.json.

    python examples/optimizers.py [--data DIR] [--out DIR] [--quick] [--epochs N]
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

import tensorgraph as tg
from _common import Example, epochs_main, svg_text

NAME = "optimizers"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 4: SGD, momentum, Nesterov, AdaGrad, RMSProp "
              "and Adam on an error surface with a narrow valley and on the MNIST network")
EPOCHS, QUICK_EPOCHS, BATCH, STEPS = 5, 1, 128, 300
START, MINIMUM = (-1.5, 2.0), (1.0, 1.0)
XLIM, YLIM = (-2.0, 2.0), (-1.0, 3.0)

Make = Callable[[list], tg.optim.Optimizer]
# name -> (optimizer for the surface, optimizer for MNIST)
OPTIMIZERS: dict[str, tuple[Make, Make]] = {
    "SGD": (lambda p: tg.optim.SGD(p, lr=0.01),
            lambda p: tg.optim.SGD(p, lr=0.01)),
    "Momentum": (lambda p: tg.optim.SGD(p, lr=0.01, momentum=0.9),
                 lambda p: tg.optim.SGD(p, lr=0.01, momentum=0.9)),
    "Nesterov": (lambda p: tg.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True),
                 lambda p: tg.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True)),
    "AdaGrad": (lambda p: tg.optim.AdaGrad(p, lr=0.5),
                lambda p: tg.optim.AdaGrad(p, lr=0.01)),
    "RMSProp": (lambda p: tg.optim.RMSProp(p, lr=0.02, alpha=0.9),
                lambda p: tg.optim.RMSProp(p, lr=0.001, alpha=0.9)),
    "Adam": (lambda p: tg.optim.Adam(p, lr=0.1),
             lambda p: tg.optim.Adam(p, lr=0.001)),
}


def error_surface(x, y):
    """Rosenbrock's valley, E(x, y) = (1 − x)² + 10 (y − x²)²: Tensors in,
    a Tensor out (numpy arrays work too, for the picture)."""
    return (1.0 - x) ** 2 + 10.0 * (y - x * x) ** 2


# ---------------------------------------------------------------------------
# 1. The two-dimensional surface

def descend(make: Make, steps: int) -> np.ndarray:
    """The path (steps + 1, 2) of an optimizer on the surface from START."""
    theta = tg.nn.Parameter(np.array(START, dtype=np.float64), name="theta")
    opt = make([theta])
    path = [theta.data.copy()]
    for _ in range(steps):
        opt.zero_grad()
        error_surface(theta[0], theta[1]).backward()
        opt.step()
        path.append(theta.data.copy())
    return np.array(path)


NOTE = ("E(x, y) = (1 − x)² + 10 (y − x²)²; shade: log E (darker is lower), lines: "
        "E = 0.1, 1, 10, 100; ○ start, + minimum")


def draw_surface(ax: Axes, paths: dict[str, np.ndarray], colors: dict[str, str],
                 labels: Optional[dict[str, str]] = None, n: int = 160) -> None:
    """The surface on `ax` (log E as a grey shade, contours at E = 10^k), each
    path with a dot at its end, the start (○) and the minimum (+)."""
    xs, ys = np.linspace(*XLIM, n), np.linspace(*YLIM, n)
    X, Y = np.meshgrid(xs, ys)
    Z = error_surface(X, Y)
    logZ = np.log10(Z + 1e-2)
    span = logZ.max() - logZ.min()
    # Grey from 30% (the valley floor) to white: light enough for coloured paths on top.
    ax.imshow(logZ, extent=(*XLIM, *YLIM), origin="lower", cmap="gray",
              vmin=logZ.min() - 0.45 * span, vmax=logZ.max(), interpolation="none")
    contours = ax.contour(X, Y, Z, levels=[0.1, 1.0, 10.0, 100.0], colors="black",
                          alpha=0.35, linewidths=0.8)
    ax.clabel(contours, fmt="%g", fontsize=7)
    for name, path in paths.items():
        ax.plot(path[:, 0], path[:, 1], color=colors[name], lw=1.6, solid_joinstyle="round",
                label=(labels or {}).get(name))
        ax.plot(*path[-1], "o", color=colors[name], mec="white", ms=6)
    ax.plot(*START, "o", mfc="white", mec="black", ms=8)
    ax.plot(*MINIMUM, "+", color="white", mew=2.5, ms=12)
    ax.set(xlim=XLIM, ylim=YLIM, xticks=np.arange(XLIM[0], XLIM[1] + 0.5),
           yticks=np.arange(YLIM[0], YLIM[1] + 0.5))


def surface_figures(paths: dict[str, np.ndarray], summary: dict[str, tuple[str, str]]
                    ) -> tuple[str, str]:
    """All six paths on one surface with a legend, and one panel per optimizer."""
    colors = {name: f"C{i}" for i, name in enumerate(paths)}   # matplotlib's tab10
    labels = {name: f"{name}: " + "\n".join(filter(None, summary[name])) for name in paths}
    steps = len(next(iter(paths.values()))) - 1
    fig = Figure(figsize=(10, 6.6), layout="constrained")
    ax = fig.add_subplot()
    draw_surface(ax, paths, colors, labels)
    ax.set(xlabel="x", ylabel="y")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, labelspacing=1.0)
    fig.suptitle(f"Six optimizers, {steps} steps each, on a valley with pathological "
                 "curvature", fontweight="bold")
    fig.supxlabel(NOTE, fontsize=9)
    combined = svg_text(fig)

    fig = Figure(figsize=(11, 8.4), layout="constrained")
    axes = fig.subplots(2, 3, sharex=True, sharey=True)
    for ax, (name, path) in zip(axes.flat, paths.items()):
        draw_surface(ax, {name: path}, colors)
        ax.set_title("\n".join((f"{name}: {summary[name][0]}", summary[name][1])), fontsize=10)
    for ax in axes[1]:
        ax.set_xlabel("x")
    for ax in axes[:, 0]:
        ax.set_ylabel("y")
    fig.suptitle("Each optimizer's path", fontweight="bold")
    fig.supxlabel(NOTE, fontsize=9)
    return combined, svg_text(fig)


def curves_figure(series: dict[str, tuple[Sequence[float], Sequence[float]]], title: str,
                  xlabel: str, ylabel: str, width: float = 7.5) -> str:
    """Curves {name: (xs, ys)} on a log y axis with a legend; few points are marked."""
    fig = Figure(figsize=(width, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for name, (xs, ys) in series.items():
        ax.semilogy(xs, ys, marker="o" if len(xs) <= 30 else None, ms=3, lw=1.6, label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=f"{ylabel} (log scale)")
    # Tick labels as plain numbers (0.5, 2, 1e-06) rather than powers of ten; on a
    # range of less than ~1.5 decades also at the 2s and 5s between the decades.
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    lo, hi = ax.get_ylim()
    ax.yaxis.set_minor_formatter(FuncFormatter(
        lambda v, _: f"{v:g}" if hi / lo < 30 and f"{v:.0e}"[0] in "25" else ""))
    if all(float(x).is_integer() for xs, _ in series.values() for x in xs):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # steps, epochs: no 1.25
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return svg_text(fig)


# ---------------------------------------------------------------------------
# 2. The MNIST network

class BatchLosses(tg.train.Callback):
    """Keeps every minibatch's training loss."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        self.losses.append(logs["loss"])


def smooth(values: list[float], per_epoch: int, points_per_epoch: int = 10
           ) -> tuple[list[float], list[float]]:
    """Means over windows of ~1/points_per_epoch epoch, at the window's end (in epochs)."""
    k = max(1, per_epoch // points_per_epoch)
    n = len(values) // k
    means = np.asarray(values[: n * k]).reshape(n, k).mean(axis=1)
    return [(i + 1) * k / per_epoch for i in range(n)], means.tolist()


def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        epochs: Optional[int] = None) -> dict[str, Any]:
    """Both experiments; returns {"figures": [...], "results": {...}, "reproduces": ...}."""
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)

    # 1. The error surface.
    steps = 100 if quick else STEPS
    paths, summary = {}, {}
    print(f"\nthe error surface: {steps} steps from {START}")
    for name, (make, _) in OPTIMIZERS.items():
        path = descend(make, steps)
        E = error_surface(path[:, 0], path[:, 1])
        near = np.flatnonzero(np.hypot(path[:, 0] - 1, path[:, 1] - 1) < 0.05)
        reached = int(near[0]) if len(near) else None
        paths[name] = path
        summary[name] = (f"E = {E[-1]:.2g} after {steps} steps",
                         f"within 0.05 of the minimum at step {reached}"
                         if reached is not None else "")
        ex.results.setdefault("surface", {})[name] = {
            "final_E": float(E[-1]), "final_xy": path[-1].tolist(), "steps_to_0.05": reached}
        print(f"  {name:9s} ends at ({path[-1, 0]:+.3f}, {path[-1, 1]:+.3f}), "
              + ", ".join(filter(None, summary[name])))
    combined, panels = surface_figures(paths, summary)
    ex.figure(combined, "surface.svg", "The paths of the six optimizers on Rosenbrock's valley, "
              "E(x, y) = (1 − x)² + 10 (y − x²)², all from the same start (○) towards the minimum "
              "(+): plain SGD creeps along the valley floor and is still far from the minimum "
              "after 300 steps; momentum and Nesterov swing across the valley, then run along "
              "its floor; AdaGrad and RMSProp scale each coordinate's step by its past "
              "gradients; Adam does both.")
    ex.figure(panels, "surface_panels.svg", "The same paths, one panel per optimizer, on the contour lines "
              "of the valley; the minimum is the + at (1, 1), the start the ○. Each panel shows where "
              f"{steps} steps of that rule get from the same starting point.")
    ex.figure(curves_figure({n: (np.arange(len(pth)),
                                 np.maximum(error_surface(pth[:, 0], pth[:, 1]), 1e-12))
                             for n, pth in paths.items()},
                            "E along each path", "step", "E(x, y)"),
              "surface_loss.svg", "The error E at each step of each path, on a log scale: how fast "
              "each optimizer gets down the valley, and which of them keep oscillating "
              "instead of settling at the minimum.")
    x = tg.tensor(START[0], requires_grad=True, name="x")
    y = tg.tensor(START[1], requires_grad=True, name="y")
    E = error_surface(x, y)
    E.backward(retain_graph=True)   # keep the edge gradients for the drawing
    ex.figure(tg.draw(E, view="backward", title="E(x, y) = (1 − x)² + 10 (y − x²)² at the "
                      "start, and the gradients backward() sends along each edge"),
              "surface_graph.svg", "The error surface is a small graph; backward() gives "
              "∂E/∂x and ∂E/∂y, the direction every optimizer starts from.")

    # 2. The MNIST network.
    # with no --data (the gallery): the digits shipped in the package
    mnist_data = ex.mnist_subset((1000, 250, 250) if quick else (1700, 300, 500)) \
        if data is None else ex.mnist(quick_sizes=(1000, 250, 250))
    print(f"\nthe 784-256-256-10 network, {epochs} epoch(s) per optimizer, batch {BATCH}")
    loss_curves, val_curves, mnist = {}, {}, {}
    for name, (_, make) in OPTIMIZERS.items():
        model = tg.nn.FeedForward([784, 256, 256, 10], output="softmax", seed=0)  # same start
        batches = BatchLosses()
        t0 = time.perf_counter()
        history = tg.train.fit(model.logits, tg.losses.cross_entropy, make(model.parameters()),
                               mnist_data.train, epochs, val=mnist_data.val, batch_size=BATCH,
                               seed=0, progress=False, callbacks=[batches])
        seconds = time.perf_counter() - t0
        test = tg.train.evaluate(model.logits, None, mnist_data.test)["accuracy"]
        per_epoch = math.ceil(len(mnist_data.train[0]) / BATCH)
        loss_curves[f"{name} ({test:.2%})"] = smooth(batches.losses, per_epoch)
        val_curves[name] = ([e + 1 for e in history.epochs],
                            [max(1 - a, 1e-4) for a in history["val_accuracy"]])
        mnist[name] = {"train_loss": history["loss"][-1],
                       "val_accuracy": history["val_accuracy"][-1], "test_accuracy": test,
                       "seconds": round(seconds, 2)}
        print(f"  {name:9s} loss {history['loss'][-1]:.4f}  val_accuracy "
              f"{history['val_accuracy'][-1]:.4f}  test accuracy {test:.4f}  ({seconds:.1f} s)")
    ex.results["mnist"] = mnist
    ex.results.update(epochs=epochs, batch_size=BATCH, surface_steps=steps)
    best = max(mnist, key=lambda n: mnist[n]["test_accuracy"])
    print(f"best on MNIST after {epochs} epoch(s): {best}, test accuracy "
          f"{mnist[best]['test_accuracy']:.4f}")
    ex.figure(curves_figure(loss_curves, f"784-256-256-10 on MNIST: training loss "
                            f"(legend: test accuracy after {epochs} epoch{'s' * (epochs != 1)})",
                            "epoch", "training loss (per 1/10 epoch)", width=9),
              "mnist_loss.svg", "Training loss of the MNIST network under each optimizer, "
              "from the same initial weights and minibatches.")
    ex.figure(curves_figure(val_curves, "784-256-256-10 on MNIST: validation error", "epoch",
                            "validation error (1 − accuracy)"),
              "mnist_val_error.svg", f"The fraction of the {len(mnist_data.val[0]):,} "
              "validation images misclassified after each epoch, for the same network trained "
              "from the same initial weights with each optimizer (lower is better).")
    return ex.finish()


def main() -> None:
    epochs_main(__doc__, run, EPOCHS, QUICK_EPOCHS, what="MNIST epochs per optimizer")


if __name__ == "__main__":
    main()
