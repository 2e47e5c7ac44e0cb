"""The fast-food problem, solved by the delta rule: Fundamentals of Deep
Learning, chapter 2 ("The Fast-Food Problem", "Gradient Descent", "The Delta
Rule and Learning Rates").

Every day we buy a meal of x_1 burgers, x_2 portions of fries and x_3 sodas
and see only its total price t. The prices are hidden; a linear neuron with
no bias, y = x . w, can learn them: its weights w_i are the prices once it
predicts every total exactly. Training minimizes the squared error over the
dataset,

    E = 1/2 sum_i (t^(i) - y^(i))^2,

by gradient descent. Since dE/dw_k = -sum_i x_k^(i) (t^(i) - y^(i)), a step of
size epsilon (the learning rate) is the delta rule

    Delta w_k = -epsilon dE/dw_k = epsilon sum_i x_k^(i) (t^(i) - y^(i)).

Here tensorgraph computes dE/dw by backpropagation and `tg.optim.SGD` takes
the step; each epoch the step is checked against the delta rule written out
in numpy. The book gives no numbers for this problem; we hide the prices
(3.20, 1.70, 1.10) in 100 meals (`tg.data.fast_food`) and recover them to
better than 1e-3.

The learning rate matters: the error is a bowl whose steepest curvature is
the largest eigenvalue lambda_max of X^T X, and epsilon must stay below
2 / lambda_max, or every step overshoots more than the last (the book's
picture of a learning rate that is too large). The script prints that bound.

Writes fast_food_learning_curve.svg (the error and the three weights per
epoch), fast_food_neuron.svg (the trained neuron: its weights are the prices)
and results.json.

    python examples/fast_food.py [--out DIR] [--quick]
"""
from __future__ import annotations

import os

# Small matrices: BLAS threads only add overhead (and thrash on a busy 2-core
# machine). Effective only if numpy is not imported yet, i.e. when run as a script.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional  # noqa: E402

import numpy as np  # noqa: E402

import tensorgraph as tg  # noqa: E402
from _common import Example, parser, svg_text  # noqa: E402

NAME = "fast_food"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 2: the fast-food problem, a linear neuron "
              "trained by the delta rule recovers the hidden prices")
ITEMS = ("burger", "fries", "soda")
SUB = "\u2081\u2082\u2083"  # subscripts 1, 2, 3
N_MEALS, LR, EPOCHS = 100, 5e-4, 100



def train(X: np.ndarray, t: np.ndarray, lr: float, epochs: int
          ) -> tuple[tg.nn.Layer, list[float], np.ndarray, float]:
    """Batch gradient descent on E = 1/2 sum (t - y)^2 for a linear neuron
    without bias. Returns the neuron, E before each update, the weights after
    each epoch (row 0: the start) and the largest difference between the step
    SGD took and the delta rule computed by hand."""
    neuron = tg.nn.Layer(3, 1, bias=False, init="zeros", name="neuron")
    opt = tg.optim.SGD(neuron.parameters(), lr=lr)
    w = neuron.weight
    errors, weights, worst = [], [w.data[:, 0].copy()], 0.0
    for _ in range(epochs):
        opt.zero_grad()
        y = neuron(X)                                   # (n, 1): y = x . w
        E = tg.losses.squared_error(y, t[:, None])
        E.backward()
        before = w.data[:, 0].astype(np.float64)
        opt.step()
        delta_rule = lr * X.T.astype(np.float64) @ (t - y.data[:, 0]).astype(np.float64)
        worst = max(worst, float(np.abs((w.data[:, 0] - before) - delta_rule).max()))
        errors.append(E.item())
        weights.append(w.data[:, 0].copy())
    return neuron, errors, np.array(weights), worst


def learning_curve_figure(errors: list[float], weights: np.ndarray, prices: np.ndarray,
                          lr: float) -> str:
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    epochs = np.arange(1, len(errors) + 1)
    ax1.semilogy(epochs, errors, color="#1f77b4", lw=2)
    ax1.set(xlabel="epoch", ylabel="squared error E (log scale)",
            title=f"Error per epoch (batch gradient descent, \u03b5 = {lr:g})")
    ax1.grid(True, which="major", alpha=0.3)
    colors = ("#d62728", "#ff7f0e", "#2ca02c")
    ep = np.arange(len(weights))
    for k, (item, c) in enumerate(zip(ITEMS, colors)):
        ax2.plot(ep, weights[:, k], color=c, lw=2,
                 label=f"w{SUB[k]} {item} (hidden price {prices[k]:.2f})")
        ax2.axhline(prices[k], color=c, ls="--", lw=1)
    ax2.set(xlabel="epoch", ylabel="weight (price estimate)",
            title="The weights find the hidden prices (dashed)")
    ax2.grid(True, alpha=0.3)
    ax2.legend(loc="lower right", fontsize=9)
    fig.suptitle("The fast-food problem solved by the delta rule "
                 "\u0394w\u2096 = \u03b5 \u03a3\u1d62 x\u2096(t \u2212 y)")
    return svg_text(fig)


def run(out: Path, quick: bool = False, data: Optional[Path] = None) -> dict:
    """Train, print, write the figures and results.json into `out`; returns
    {"figures": [{"file", "caption"}...], "results": {...}}. `data` is unused
    (the meals are generated); `quick` changes nothing, this is fast already."""
    ex = Example(NAME, REPRODUCES, doc=__doc__,
                 args=argparse.Namespace(out=out, quick=quick, data=data))
    ex.data_source = f"generated: tg.data.fast_food(n={N_MEALS}, seed=0)"
    X, t = tg.data.fast_food(n=N_MEALS, seed=0)
    prices = np.array(tg.data.FAST_FOOD_PRICES)
    lam = np.linalg.eigvalsh(X.T.astype(np.float64) @ X)
    print(f"data: {N_MEALS} meals of up to 5 burgers, fries and sodas; only the totals are seen")
    print(f"learning rate \u03b5 = {LR:g}; gradient descent diverges above 2/\u03bb_max(X\u1d40X) "
          f"= {2 / lam[-1]:.2e}")

    t0 = time.perf_counter()
    neuron, errors, weights, worst = train(X, t, LR, EPOCHS)
    seconds = time.perf_counter() - t0
    learned = weights[-1].astype(np.float64)
    err = np.abs(learned - prices)
    within = np.flatnonzero(np.abs(weights - prices).max(axis=1) < 1e-3)
    first = int(within[0]) if within.size else None

    print(f"\n{'item':8s} {'hidden price':>12s} {'learned w':>10s} {'|error|':>9s}")
    for item, p, w, e in zip(ITEMS, prices, learned, err):
        print(f"{item:8s} {p:12.4f} {w:10.6f} {e:9.2e}")
    print(f"\nafter {EPOCHS} epochs: E = {errors[-1]:.3g} (epoch 1: {errors[0]:.4g}), max price "
          f"error {err.max():.2e}" + (f"; within 1e-3 from epoch {first}" if first else ""))
    print(f"each step equals the delta rule \u03b5 \u03a3 x (t - y) computed by hand to "
          f"{worst:.1e} (float32)")
    print(f"training took {seconds:.3f} s")
    if not err.max() < 1e-3:
        raise RuntimeError(f"fast_food: the prices were not recovered to 1e-3 "
                           f"(error {err.max():.2e})")

    ex.results.update(prices_true=prices.tolist(), prices_learned=learned.round(6).tolist(),
                      max_abs_error=float(err.max()), final_error=errors[-1],
                      first_error=errors[0], epochs=EPOCHS, lr=LR,
                      lr_bound=float(2 / lam[-1]), epoch_within_1e3=first,
                      delta_rule_max_diff=worst, train_seconds=round(seconds, 3))
    ex.figure(learning_curve_figure(errors, weights, prices, LR), "fast_food_learning_curve.svg",
              f"The fast-food problem (ch. 2): a linear neuron y = x\u00b7w sees only the total "
              f"price of {N_MEALS} meals and learns by the delta rule "
              f"\u0394w = \u03b5 \u03a3 x(t \u2212 y) "
              f"(\u03b5 = {LR:g}, one update per pass over the data). Left: the squared error "
              f"per epoch falls from {errors[0]:.0f} to {errors[-1]:.1e}. Right: the three "
              f"weights converge to the hidden prices (dashed); after {EPOCHS} epochs they are "
              f"{', '.join(f'{w:.4f}' for w in learned)} against "
              f"{', '.join(f'{p:.2f}' for p in prices)} (error {err.max():.1e}).")
    ex.figure(tg.draw(neuron, view="network", title="The trained linear neuron: its weights "
                      "are the prices"), "fast_food_neuron.svg",
              "The trained neuron drawn by tg.draw(view=\"network\"): inputs x\u2081, x\u2082, "
              "x\u2083 "
              "count burgers, fries and sodas; each edge carries its learned weight, which is "
              "that item's price, and the output is the meal's total.")
    return ex.finish()


def main() -> None:
    args = parser(__doc__).parse_args()
    run(args.out or Path("out") / NAME, args.quick, args.data)


if __name__ == "__main__":
    main()
