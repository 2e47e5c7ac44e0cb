"""A feed-forward network learns XOR: Fundamentals of Deep Learning, chapter 1
("Feed-Forward Neural Networks").

A single neuron draws one line through its input space, and no line separates
XOR's classes ([0,1] and [1,0] from [0,0] and [1,1]). The book's answer is to
connect neurons in layers: each hidden layer computes new features of the
input, and the output layer combines them,

    h = tanh(x W_1 + b_1),   z = h W_2 + b_2,   p = softmax(z)

This example trains the 2-3-2 network `FeedForward([2, 3, 2], activation="tanh")`
on the four XOR examples by gradient descent on the cross-entropy (chapter 2;
`tg.train.fit`), and the same training without the hidden layer for contrast.

Writes network.svg (the trained network as the book draws it, weights on the
edges), modules.svg (the recorded op graph boxed by layer), regions.svg (the
probability of class 1 over the input plane, with and without a hidden layer),
curves.svg (loss and accuracy per epoch) and results.json.

    python examples/feedforward.py [--out DIR] [--quick]
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional

import numpy as np
from matplotlib.figure import Figure

import tensorgraph as tg
from _common import Example, parser, svg_text

NAME = "feedforward"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 1: a feed-forward network (2-3-2, tanh "
              "hidden layer, softmax output) that computes XOR, which no single neuron can")
EPOCHS, QUICK_EPOCHS, LR, SEED = 500, 150, 0.5, 0



def train(sizes: list[int], X: np.ndarray, y: np.ndarray, epochs: int
          ) -> tuple[tg.nn.FeedForward, tg.train.History]:
    net = tg.nn.FeedForward(sizes, activation="tanh", output="softmax", init="xavier",
                            seed=SEED, name="net")
    opt = tg.optim.SGD(net.parameters(), lr=LR)
    # The fused cross-entropy wants logits: train `net.logits`, the net without its softmax.
    history = tg.train.fit(net.logits, tg.losses.cross_entropy, opt, (X, y), epochs=epochs,
                           batch_size=len(X), seed=SEED, progress=False)
    return net, history


def regions_figure(nets: list[tuple[str, tg.nn.FeedForward]], X: np.ndarray,
                   y: np.ndarray) -> str:
    g = np.linspace(-0.5, 1.5, 121)
    gx, gy = np.meshgrid(g, g)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    fig = Figure(figsize=(9.4, 4.2))
    axes = fig.subplots(1, len(nets))
    for ax, (title, net) in zip(axes, nets):
        with tg.no_grad():
            p1 = net(grid).numpy()[:, 1].reshape(gx.shape)
        im = ax.contourf(gx, gy, p1, levels=np.linspace(0, 1, 11), cmap="RdBu_r", vmin=0, vmax=1)
        if np.ptp(p1) > 0.05:   # a flat 0.5 has no boundary to draw, only rounding noise
            ax.contour(gx, gy, p1, levels=[0.5], colors="#111827", linewidths=1.5)
        for cls, marker, colour in ((0, "o", "#1d4ed8"), (1, "s", "#b91c1c")):
            pts = X[y == cls]
            ax.scatter(pts[:, 0], pts[:, 1], marker=marker, s=90, c=colour, edgecolors="white",
                       linewidths=1.5, label=f"XOR = {cls}", zorder=3)
        ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$", xticks=[0, 1], yticks=[0, 1])
        ax.set_aspect("equal")
    axes[0].legend(loc="upper center", bbox_to_anchor=(1.1, -0.14), ncol=2, fontsize=9)
    fig.colorbar(im, ax=list(axes), label="P(class 1)", shrink=0.85)
    return svg_text(fig)


def run(out: Path, quick: bool = False, data: Optional[Path] = None) -> dict[str, Any]:
    """Train the XOR networks and draw them; returns {"figures": [...], "results": {...}}.
    `quick` trains fewer epochs; `data` is unused (XOR is four points)."""
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=Path(out), quick=quick, data=data))
    epochs = QUICK_EPOCHS if quick else EPOCHS
    X, y = tg.data.xor()

    net, history = train([2, 3, 2], X, y, epochs)
    flat, flat_history = train([2, 2], X, y, epochs)   # no hidden layer: one "line"
    with tg.no_grad():
        probs = net(X).numpy()
        flat_dev = float(np.abs(flat(X).numpy()[:, 1] - 0.5).max())
    acc, flat_acc = history["accuracy"][-1], flat_history["accuracy"][-1]
    print(f"2-3-2 network, {epochs} epochs of full-batch gradient descent (lr {LR}):")
    for xi, yi, pi in zip(X, y, probs):
        print(f"  x = {xi.astype(int).tolist()}  XOR = {yi}  P(class 1) = {pi[1]:.4f}")
    print(f"  final loss {history['loss'][-1]:.4f}, accuracy {acc:.0%}")
    print(f"without a hidden layer (2-2): final loss {flat_history['loss'][-1]:.4f} "
          f"(ln 2 = {np.log(2):.4f}), accuracy {flat_acc:.0%}, P(class 1) within "
          f"{flat_dev:.2g} of 0.5 at all four points")

    ex.results.update(
        sizes=net.sizes, epochs=epochs, learning_rate=LR, final_loss=history["loss"][-1],
        accuracy=acc, p_class1=[round(float(p), 4) for p in probs[:, 1]],
        no_hidden_layer_loss=flat_history["loss"][-1], no_hidden_layer_accuracy=flat_acc,
        no_hidden_layer_max_abs_p_minus_half=flat_dev)

    ex.figure(tg.draw(net, title="A 2-3-2 feed-forward network trained on XOR"), "network.svg",
              f"The trained network as the book draws feed-forward networks: the two inputs, "
              f"a hidden layer of three tanh neurons and a softmax output layer of two, every "
              f"unit connected to every unit of the next layer. Each edge carries its learned "
              f"weight (width grows with |w|, blue positive, red negative) and each neuron its "
              f"bias. After {epochs} epochs it gives the right class for all four XOR inputs.")
    ex.figure(tg.draw(net, view="modules", input=tg.tensor(X, name="x"), rankdir="LR",
                      title="The same network as recorded ops, boxed by module"),
              "modules.svg",
              "What one forward pass of the four XOR inputs records: each Layer's matmul, "
              "bias add and activation inside the box of its module (net.layers.0, "
              "net.layers.1), the weights and biases as parameters, and the softmax output "
              "at the end. The module boxes come from the name scopes that modules push "
              "while they run.")
    ex.figure(regions_figure([("2-3-2 network (hidden layer)", net),
                              ("2-2 network (no hidden layer)", flat)], X, y),
              "regions.svg",
              f"The probability of class 1 over the input plane (the 0.5 contour in black). "
              f"With a hidden layer the network carves out a band around the diagonal and "
              f"classifies all four points ({acc:.0%}). Without one, its boundary could only "
              f"be a straight line, which gets at most three of the four points right, and "
              f"gradient descent on the cross-entropy drives it to hedge instead: after "
              f"{epochs} epochs P(class 1) is within {flat_dev:.2g} of 0.5 at all four points "
              f"and the loss is {flat_history['loss'][-1]:.3f} (ln 2 ≈ 0.693 is the loss of "
              f"a coin toss).")
    ex.figure(tg.draw_history(history, title="Training the 2-3-2 network on XOR"), "curves.svg",
              f"Cross-entropy loss and accuracy on the four XOR examples per epoch of "
              f"full-batch gradient descent (learning rate {LR}): the loss falls to "
              f"{history['loss'][-1]:.3f} and the accuracy reaches {acc:.0%}.")
    return ex.finish()


def main() -> None:
    args = parser(__doc__).parse_args()
    run(args.out or Path("out") / NAME, quick=args.quick, data=args.data)


if __name__ == "__main__":
    main()
