"""Batch, stochastic and minibatch gradient descent: Fundamentals of Deep
Learning, chapter 2 ("Gradient Descent", "Stochastic and Minibatch Gradient
Descent").

The problem is the fast-food problem cut down to two items, so that the
weight space is a plane we can draw: a meal of x_1 burgers and x_2 portions
of fries costs t = 3.20 x_1 + 1.70 x_2 plus some noise (a discount here, a
surcharge there), and a linear neuron y = w_1 x_1 + w_2 x_2 learns the prices
from 64 meals by minimizing the mean squared error

    E(w) = 1/2 mean_i (t^(i) - y^(i))^2,

a quadratic bowl whose contours are ellipses, stretched because burgers and
fries are bought together. The three methods differ only in how many
examples each step looks at (every one: learning rate epsilon = 0.02):

    batch       the whole dataset per step: the true gradient, one step per epoch;
    stochastic  one example per step: a noisy estimate of it, 64 steps per epoch;
    minibatch   8 examples per step: a less noisy estimate, 8 steps per epoch.

As the book says, batch gradient descent walks straight down the surface but
needs a pass over all the data for every step; stochastic gradient descent
takes many cheap, noisy steps, gets close within an epoch or two, and then
jitters around the minimum (the error of a single example is a different
surface from the error of the dataset); minibatches sit in between. Per
update, batch descent makes the most progress; per epoch (per example seen,
i.e. per unit of computation), the stochastic methods do.

Writes gd_paths.svg (the three paths over the contours of E), gd_curves.svg
(the error per update and per epoch) and results.json.

    python examples/gradient_descent.py [--out DIR] [--quick]
"""
from __future__ import annotations

import os

# Small matrices: BLAS threads only add overhead (and thrash on a busy 2-core
# machine). Effective only if numpy is not imported yet, i.e. when run as a script.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import NamedTuple, Optional  # noqa: E402

import numpy as np  # noqa: E402

import tensorgraph as tg  # noqa: E402
from _common import Example, parser, svg_text  # noqa: E402

NAME = "gradient_descent"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 2: batch vs stochastic vs minibatch gradient "
              "descent on one error surface (paths over its contours, error per update and "
              "per epoch)")
N_MEALS, PRICES, NOISE = 64, (3.2, 1.7), 1.0
LR, START = 0.02, (0.5, 5.5)
EPOCHS, QUICK_EPOCHS = 60, 15
METHODS = (("batch", N_MEALS, "#1f77b4"), ("minibatch (8)", 8, "#2ca02c"),
           ("stochastic", 1, "#d62728"))



def meals(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n meals of 0-5 burgers and 0-5 fries, and their noisy totals."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 6, size=(n, 2)).astype(np.float32)
    t = X @ np.array(PRICES, np.float32) + rng.normal(0.0, NOISE, n).astype(np.float32)
    return X, t.astype(np.float32)


def error(W: np.ndarray, X: np.ndarray, t: np.ndarray) -> np.ndarray:
    """E(w) = 1/2 mean (t - X w)^2 over the whole dataset, for one weight
    vector (2,) or many (..., 2) at once (float64, no graph: for plotting)."""
    W = np.asarray(W, np.float64)
    X64, t64 = X.astype(np.float64), t.astype(np.float64)
    r = t64 - W @ X64.T                                      # (..., n)
    return 0.5 * np.mean(r * r, axis=-1)


class Run(NamedTuple):
    path: np.ndarray          # (updates + 1, 2): w after each update, row 0 the start
    per_update: np.ndarray    # E over the whole dataset after each update (row 0: start)
    per_epoch: np.ndarray     # E after each epoch (row 0: start)
    updates_per_epoch: int


def descend(X: np.ndarray, t: np.ndarray, batch_size: int, epochs: int, seed: int = 0) -> Run:
    """Gradient descent on the mean squared error of minibatches of
    `batch_size` examples (reshuffled each epoch), from START."""
    w = tg.tensor(np.array(START, np.float32), requires_grad=True, name="w")
    opt = tg.optim.SGD([w], lr=LR)
    loader = tg.data.DataLoader(X, t, batch_size=batch_size, shuffle=True, seed=seed)
    path = [w.data.copy()]
    ends = [0]
    for _ in range(epochs):
        for xb, tb in loader:
            opt.zero_grad()
            y = tg.tensor(xb) @ w                            # the linear neuron, no bias
            loss = 0.5 * tg.losses.mse(y, tb)                # 1/2 mean (t - y)^2 of the batch
            loss.backward()
            opt.step()
            path.append(w.data.copy())
        ends.append(len(path) - 1)
    p = np.array(path, dtype=np.float64)
    per_update = error(p, X, t)
    return Run(p, per_update, per_update[ends], len(loader))


def paths_figure(X: np.ndarray, t: np.ndarray, w_star: np.ndarray,
                 runs: dict[str, Run], epochs: int) -> str:
    from matplotlib.figure import Figure
    pts = np.concatenate([r.path for r in runs.values()] + [w_star[None]])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = 0.15 * (hi - lo) + 0.2
    g1 = np.linspace(lo[0] - pad[0], hi[0] + pad[0], 150)
    g2 = np.linspace(lo[1] - pad[1], hi[1] + pad[1], 150)
    G1, G2 = np.meshgrid(g1, g2)
    Z = error(np.stack([G1, G2], axis=-1), X, t)
    e_star = float(error(w_star, X, t))
    levels = e_star + np.geomspace(0.02, Z.max() - e_star, 14)
    fig = Figure(figsize=(11.5, 5.2), layout="constrained")
    axes = fig.subplots(1, 3, sharex=True, sharey=True)
    for ax, (label, batch, color) in zip(axes, METHODS):
        r = runs[label]
        ax.contour(G1, G2, Z, levels=levels, colors="#9ca3af", linewidths=0.7)
        lw = 1.6 if batch == N_MEALS else (1.0 if batch > 1 else 0.6)
        ax.plot(r.path[:, 0], r.path[:, 1], "-", color=color, lw=lw, alpha=0.9)
        if batch > 1:  # the 3,840 single-example steps read better as a line alone
            ax.plot(r.path[:, 0], r.path[:, 1], ".", color=color, ms=3)
        ax.plot(*r.path[0], "o", color="black", ms=6, label=f"start w = {START}")
        ax.plot(*w_star, "*", color="gold", mec="black", ms=15,
                label=f"minimum w* = ({w_star[0]:.2f}, {w_star[1]:.2f})")
        n_up = len(r.path) - 1
        per = r.updates_per_epoch
        ax.set_title(f"{label}: {per} update{'s' if per > 1 else ''} per epoch,\n"
                     f"{n_up} in {epochs} epochs", fontsize=11)
        ax.set_xlabel("w\u2081 (price of a burger)")
        ax.set_aspect("equal")
    axes[0].set_ylabel("w\u2082 (price of fries)")
    axes[0].legend(loc="upper right", fontsize=8.5)
    fig.suptitle("Batch, minibatch and stochastic gradient descent over the contours of the "
                 "error surface\nE(w) = \u00bd mean (t \u2212 x\u00b7w)\u00b2 "
                 f"(learning rate \u03b5 = {LR:g})")
    return svg_text(fig)


def curves_figure(runs: dict[str, Run], e_star: float) -> str:
    from matplotlib.figure import Figure
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    # Batch last, so that its short smooth curve is drawn over the noisy ones.
    for label, batch, color in METHODS[::-1]:
        r = runs[label]
        excess = np.maximum(r.per_update - e_star, 1e-12)
        ax1.loglog(np.arange(1, len(excess) + 1), excess, color=color,
                   lw=2.4 if batch == N_MEALS else 1.0, label=label)
    for label, _, color in METHODS:
        ep = np.maximum(runs[label].per_epoch - e_star, 1e-12)
        ax2.semilogy(np.arange(len(ep)), ep, "-o", color=color, ms=3, lw=1.6, label=label)
    ax1.set(xlabel="updates (log scale; the first point is the start)",
            ylabel="E(w) \u2212 E(w*) over the whole dataset (log)",
            title="Per update: true gradient steps (blue) vs noisy ones")
    ax2.set(xlabel="epochs (passes over the 64 meals)",
            title="Per epoch: the stochastic methods get there sooner")
    for ax in (ax1, ax2):
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle("How far above the minimum the error is, for each method (same \u03b5 = "
                 f"{LR:g}, same data)")
    return svg_text(fig)


def run(out: Path, quick: bool = False, data: Optional[Path] = None) -> dict:
    """Run the three methods, print, write the figures and results.json into
    `out`; returns {"figures": [{"file", "caption"}...], "results": {...}}.
    `data` is unused (the meals are generated); `quick` runs fewer epochs."""
    ex = Example(NAME, REPRODUCES, doc=__doc__,
                 args=argparse.Namespace(out=out, quick=quick, data=data))
    epochs = QUICK_EPOCHS if quick else EPOCHS
    X, t = meals(N_MEALS)
    ex.data_source = (f"generated: {N_MEALS} meals of burgers and fries, prices {PRICES}, "
                      f"noise sd {NOISE}")
    w_star = np.linalg.lstsq(X.astype(np.float64), t.astype(np.float64), rcond=None)[0]
    e_star = float(error(w_star, X, t))
    print(f"data: {N_MEALS} meals; least-squares minimum w* = ({w_star[0]:.4f}, "
          f"{w_star[1]:.4f}), E(w*) = {e_star:.4f} (the noise; the hidden prices are {PRICES})")
    print(f"start w = {START}, E = {float(error(np.array(START), X, t)):.3f}; learning rate "
          f"{LR}; {epochs} epochs\n")
    runs: dict[str, Run] = {}
    print(f"{'method':14s} {'updates':>8s} {'E - E* after 1 epoch':>21s} {'after the last':>15s} "
          f"{'|w - w*|':>9s} {'seconds':>8s}")
    for label, batch, _ in METHODS:
        t0 = time.perf_counter()
        r = runs[label] = descend(X, t, batch, epochs)
        secs = time.perf_counter() - t0
        dist = float(np.linalg.norm(r.path[-1] - w_star))
        print(f"{label:14s} {len(r.path) - 1:8d} {r.per_epoch[1] - e_star:21.4f} "
              f"{r.per_epoch[-1] - e_star:15.5f} {dist:9.4f} {secs:8.2f}")
        # Epochs until E is within 0.05 of the minimum (None if never).
        close = np.flatnonzero(r.per_epoch - e_star < 0.05)
        ex.results[label.split(" ")[0]] = {
            "batch_size": batch, "updates": len(r.path) - 1,
            "excess_error_after_1_epoch": float(r.per_epoch[1] - e_star),
            "excess_error_final": float(r.per_epoch[-1] - e_star),
            "distance_to_minimum": dist, "w_final": r.path[-1].round(4).tolist(),
            "first_epoch_within_0.05": int(close[0]) if close.size else None,
            "seconds": round(secs, 3)}
    ex.results.update(w_star=w_star.round(4).tolist(), error_at_minimum=e_star, lr=LR,
                      epochs=epochs)
    print("\nbatch descent converges smoothly but slowly per epoch; stochastic descent is "
          "close after one epoch, then jitters around w* (constant \u03b5); minibatches jitter "
          "less.")

    ex.figure(paths_figure(X, t, w_star, runs, epochs), "gd_paths.svg",
              f"The error surface of a two-weight linear neuron (the fast-food problem with "
              f"burgers and fries only, {N_MEALS} noisy meals) as contours, and the path of the "
              f"weights from {START} under three versions of gradient descent with the same "
              f"learning rate \u03b5 = {LR}. Batch descent (left) follows the true gradient, "
              f"perpendicular to the contours, down the long narrow valley: one step per "
              f"epoch. Minibatches of 8 (middle) and single examples (right) step along noisy "
              f"estimates of the gradient: many more steps, and once near the minimum (the "
              f"star) they keep jittering around it, more so with one example per step.")
    b, m, s = (ex.results[k] for k in ("batch", "minibatch", "stochastic"))
    ex.figure(curves_figure(runs, e_star), "gd_curves.svg",
              f"The error over the whole dataset above its minimum, E(w) \u2212 E(w*), for the "
              f"three methods. Per update (left) they start alike, since a noisy gradient still "
              f"points downhill on average, but only batch descent's curve stays smooth: the "
              f"others jump with every example. Per epoch (right), i.e. per example processed, "
              f"the stochastic methods win by far: after one epoch the excess error is "
              f"{b['excess_error_after_1_epoch']:.2f} "
              f"(batch), {m['excess_error_after_1_epoch']:.3f} (minibatch) and "
              f"{s['excess_error_after_1_epoch']:.3f} (stochastic). With a constant learning "
              f"rate the stochastic ones then level off at a noise floor, while batch descent "
              f"keeps improving (after {epochs} epochs: {b['excess_error_final']:.4f}, "
              f"{m['excess_error_final']:.4f}, {s['excess_error_final']:.4f}).")
    return ex.finish()


def main() -> None:
    args = parser(__doc__).parse_args()
    run(args.out or Path("out") / NAME, args.quick, args.data)


if __name__ == "__main__":
    main()
