"""A softmax output layer: Fundamentals of Deep Learning, chapter 1
("Softmax Output Layers").

To classify an input into one of k classes, the book gives the last layer k
neurons and turns their logits z_1..z_k into a probability distribution:

    p_i = e^{z_i} / Σ_j e^{z_j}

so every p_i is in (0, 1), they sum to 1, and the largest logit gets the
largest probability. Adding the same constant to every logit changes nothing.

This example trains one softmax layer of three neurons (2 inputs -> 3
classes, `FeedForward([2, 3], output="softmax")`) on three seeded clusters
of points in the plane, by gradient descent on the cross-entropy
-Σ_c t_c log p_c (chapter 2), and follows one input from its logits to its
probabilities.

Writes network.svg (the layer, softmax marked), graph.svg (the recorded ops of
one input, with values: logits, then softmax), probabilities.svg (logits and
probabilities of that input, and the classes over the plane) and results.json.

    python examples/softmax_output.py [--out DIR] [--quick]
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional

import matplotlib.colors
import numpy as np
from matplotlib.figure import Figure

import tensorgraph as tg
from _common import Example, parser, svg_text

NAME = "softmax_output"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 1: a softmax output layer turning logits "
              "into class probabilities p_i = e^{z_i} / Σ_j e^{z_j}")
CENTRES = np.array([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.2]])
COLOURS = ("#2563eb", "#ea580c", "#16a34a")
EPOCHS, QUICK_EPOCHS, LR, SEED = 60, 10, 0.1, 0
EXAMPLE_INPUT = (0.6, 0.9)   # between the clusters, so all three classes get some probability



def clusters(n_per_class: int = 60, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian clusters (sd 0.9) around CENTRES: points (3n, 2) float32, labels 0..2."""
    rng = np.random.default_rng(seed)
    X = np.concatenate([c + rng.normal(0.0, 0.9, size=(n_per_class, 2)) for c in CENTRES])
    y = np.repeat(np.arange(3), n_per_class)
    order = rng.permutation(len(X))
    return X[order].astype(np.float32), y[order]


def probabilities_figure(net: tg.nn.FeedForward, X: np.ndarray, y: np.ndarray,
                         logits: np.ndarray, probs: np.ndarray) -> str:
    fig = Figure(figsize=(12, 4.2))
    ax_z, ax_p, ax_map = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.25]})
    classes = [f"class {i + 1}" for i in range(3)]
    for ax, values, title, fmt in ((ax_z, logits, "logits $z_i$: any real numbers", "{:+.2f}"),
                                   (ax_p, probs, r"softmax $p_i = e^{z_i} / \Sigma_j\, e^{z_j}$",
                                    "{:.3f}")):
        bars = ax.bar(classes, values, color=COLOURS)
        ax.bar_label(bars, labels=[fmt.format(v) for v in values], fontsize=9)
        ax.axhline(0, color="#6b7280", lw=0.8)
        ax.set_title(title)
    ax_z.set_xlabel(f"for the input x = {list(EXAMPLE_INPUT)} (the star)")
    ax_p.set_xlabel("positive, summing to 1, in the same order")
    ax_p.set_ylim(0, 1.08)
    ax_p.text(0.98, 0.97, f"Σ p = {probs.sum():.4f}", transform=ax_p.transAxes, ha="right",
              va="top", fontsize=9)
    lo, hi = X.min(axis=0) - 0.5, X.max(axis=0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 150), np.linspace(lo[1], hi[1], 150))
    with tg.no_grad():
        p = net(np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)).numpy()
    winner, confidence = p.argmax(axis=1).reshape(gx.shape), p.max(axis=1).reshape(gx.shape)
    rgb = np.array([matplotlib.colors.to_rgb(c) for c in COLOURS])[winner]
    shade = 0.25 + 0.45 * (confidence[..., None] - 1 / 3) / (2 / 3)   # paler where unsure
    ax_map.imshow(1 - shade * (1 - rgb), origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]),
                  aspect="auto", interpolation="bilinear")
    for k in range(3):
        pts = X[y == k]
        ax_map.scatter(pts[:, 0], pts[:, 1], s=12, c=COLOURS[k], edgecolors="white",
                       linewidths=0.4, label=classes[k])
    ax_map.scatter(*EXAMPLE_INPUT, marker="*", s=220, c="black", edgecolors="white",
                   label="the input on the left", zorder=3)
    ax_map.set(title="argmax p over the plane (paler: less sure)", xlabel="$x_1$",
               ylabel="$x_2$")
    ax_map.legend(loc="lower right", fontsize=7.5, framealpha=0.85)
    fig.tight_layout()
    return svg_text(fig)


def run(out: Path, quick: bool = False, data: Optional[Path] = None) -> dict[str, Any]:
    """Train the softmax layer and draw logits to probabilities; returns
    {"figures": [...], "results": {...}}. `quick` trains fewer epochs; `data` is unused."""
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=Path(out), quick=quick, data=data))
    epochs = QUICK_EPOCHS if quick else EPOCHS
    X, y = clusters()

    net = tg.nn.FeedForward([2, 3], output="softmax", init="zeros", name="softmax_layer")
    opt = tg.optim.SGD(net.parameters(), lr=LR)
    # The fused cross-entropy wants logits: train `net.logits`, the layer without its softmax.
    history = tg.train.fit(net.logits, tg.losses.cross_entropy, opt, (X, y), epochs=epochs,
                           batch_size=16, seed=SEED, progress=False)
    with tg.no_grad():
        accuracy = float(np.mean(net(X).numpy().argmax(axis=1) == y))

    x = tg.tensor(EXAMPLE_INPUT, name="x")
    p = net(x)
    with tg.no_grad():
        z = net.logits(x).numpy().astype(np.float64)
        shifted = tg.softmax(tg.tensor(z + 100.0)).numpy()
    probs = p.numpy().astype(np.float64)
    by_hand = np.exp(z) / np.exp(z).sum()
    print(f"trained {epochs} epochs on {len(X)} points in 3 clusters: final loss "
          f"{history['loss'][-1]:.4f}, accuracy {accuracy:.1%}")
    print(f"input x = {list(EXAMPLE_INPUT)}")
    print(f"  logits        z = {np.round(z, 4).tolist()}")
    print(f"  softmax       p = {np.round(probs, 4).tolist()}  (sum {probs.sum():.6f})")
    print(f"  by hand e^z/Σe^z = {np.round(by_hand, 4).tolist()}")
    print(f"  softmax(z + 100) = {np.round(shifted, 4).tolist()}  (the same: shift invariance)")

    ex.results.update(
        epochs=epochs, final_loss=history["loss"][-1], train_accuracy=accuracy,
        example_input=list(EXAMPLE_INPUT), logits=[round(float(v), 4) for v in z],
        probabilities=[round(float(v), 4) for v in probs], probability_sum=float(probs.sum()),
        max_abs_error_vs_formula=float(np.abs(probs - by_hand).max()),
        max_abs_change_when_logits_shift_by_100=float(np.abs(shifted - probs).max()))

    ex.figure(tg.draw(net, title="A softmax output layer: 2 inputs → 3 classes"), "network.svg",
              "The trained layer as the book draws it: three output neurons, each computing a "
              "logit z_i = w_i·x + b_i from the two inputs (edge width grows with |w|, blue "
              "positive, red negative), and the softmax (the purple box) that turns the "
              "three logits together into the probabilities p₁, p₂, p₃.")
    ex.figure(tg.draw(p, view="ops", module=net, values=True,
                      title=f"One input through the layer: x = {list(EXAMPLE_INPUT)}"),
              "graph.svg",
              f"The ops recorded for one input, with their values: x·W + b gives the logits "
              f"{np.round(z, 2).tolist()}, and the softmax op turns them into probabilities "
              f"{np.round(probs, 3).tolist()}, which sum to 1.")
    ex.figure(probabilities_figure(net, X, y, z, probs), "probabilities.svg",
              f"Left: the logits of the input x = {list(EXAMPLE_INPUT)} (the star on the "
              f"right) can be any real numbers; the softmax exponentiates and normalizes "
              f"them into probabilities that are positive and sum to 1, keeping their order. "
              f"Adding 100 to every logit changes the probabilities by at most "
              f"{ex.results['max_abs_change_when_logits_shift_by_100']:.0e}. Right: the class "
              f"with the largest probability over the plane after {epochs} epochs of "
              f"gradient descent on the cross-entropy ({accuracy:.0%} of the {len(X)} points "
              f"classified correctly); the boundaries between classes are straight lines, "
              f"where two logits are equal.")
    return ex.finish()


def main() -> None:
    args = parser(__doc__).parse_args()
    run(args.out or Path("out") / NAME, quick=args.quick, data=args.data)


if __name__ == "__main__":
    main()
