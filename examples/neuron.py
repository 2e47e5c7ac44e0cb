"""The neuron: Fundamentals of Deep Learning, chapter 1 ("The Neuron").

The book's artificial neuron takes inputs x_1..x_n, multiplies each by a
weight w_i, adds a bias b, and passes the sum (the logit z) through an
activation function f:

    y = f(z),   z = Σ_i w_i x_i + b = w·x + b

This example builds one sigmoid neuron, f(z) = 1/(1 + e^-z), with three
inputs and hand-picked weights, and draws it twice, side by side:

- network.svg: the book's diagram of the neuron (inputs, weighted edges, the
  sum with the bias, the activation, the output);
- graph.svg: what tensorgraph actually recorded when the neuron ran: the ops
  matmul, add and sigmoid with their values and, after `y.backward()`, the
  gradients dy/dw = σ(z)(1 - σ(z)) x and dy/db = σ(z)(1 - σ(z)).

The printed output checks both against the formulas written out by hand.

    python examples/neuron.py [--out DIR] [--quick]
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np

import tensorgraph as tg
from _common import Example, parser

NAME = "neuron"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 1: the neuron, y = f(w·x + b), as the "
              "book draws it and as the recorded graph of its ops")
WEIGHTS, BIAS, INPUT = (0.8, -0.5, 0.3), 0.1, (1.0, 2.0, -1.0)


def run(out: Path, quick: bool = False, data: Optional[Path] = None) -> dict[str, Any]:
    """Build, run and draw the neuron; returns {"figures": [...], "results": {...}}.
    (`quick` and `data` change nothing: the example is tiny and has no data.)"""
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=Path(out), quick=quick, data=data))

    neuron = tg.nn.Neuron(3, activation="sigmoid", name="neuron")
    with tg.no_grad():
        neuron.weight.data[...] = WEIGHTS
        neuron.bias.data[...] = BIAS
    x = tg.tensor(INPUT, name="x")
    y = neuron(x)
    y.backward(retain_graph=True)   # keep the edge gradients for the drawing

    # The same numbers by hand, in float64.
    w, xs = np.array(WEIGHTS), np.array(INPUT)
    z = float(w @ xs + BIAS)
    y_hand = 1.0 / (1.0 + math.exp(-z))
    dydz = y_hand * (1.0 - y_hand)
    grad_w, grad_b = neuron.weight.grad.numpy(), float(neuron.bias.grad.item())
    print(f"z = w·x + b = {' + '.join(f'{a:g}·{b:g}' for a, b in zip(WEIGHTS, INPUT))} "
          f"+ {BIAS:g} = {z:.4f}")
    print(f"y = sigmoid(z): tensorgraph {y.item():.6f}, by hand {y_hand:.6f}")
    print(f"dy/dw: backward {np.round(grad_w, 6)}, by hand σ(z)(1-σ(z))·x "
          f"{np.round(dydz * xs, 6)}")
    print(f"dy/db: backward {grad_b:.6f}, by hand σ(z)(1-σ(z)) {dydz:.6f}")
    ops = [t.node.op.name for t in tg.walk(y) if t.node is not None]
    print(f"recorded ops: {ops}, scope {y.node.scope}")

    ex.results.update(
        z=round(z, 6), y=round(y.item(), 6), y_by_hand=round(y_hand, 6),
        max_abs_error_y=float(abs(y.item() - y_hand)),
        max_abs_error_grad_w=float(np.abs(grad_w - dydz * xs).max()),
        abs_error_grad_b=float(abs(grad_b - dydz)), recorded_ops=ops)

    ex.figure(tg.draw(neuron, title="The neuron as the book draws it"), "network.svg",
              f"A sigmoid neuron drawn as in chapter 1: inputs x₁..x₃ reach the sum Σ along "
              f"edges weighted w = {list(WEIGHTS)} (width grows with |w|, blue positive, red "
              f"negative); the sum adds the bias b = {BIAS:g} to give the logit z, and the "
              f"activation f = sigmoid turns z into the output y = f(w·x + b).")
    ex.figure(tg.draw(y, view="ops", module=neuron, values=True, grads=True,
                      title="The same neuron as recorded ops (values and gradients)"),
              "graph.svg",
              f"What tensorgraph recorded when the neuron ran on x = {list(INPUT)}: the dot "
              f"product w·x (matmul), the bias (add) and the sigmoid, each op labelled with "
              f"its output shape, value and gradient after y.backward(). The output is "
              f"y = σ({z:.2f}) = {y.item():.4f}, and the gradients reaching the weights are "
              f"σ(z)(1 − σ(z))·x, as the chain rule says.")
    return ex.finish()


def main() -> None:
    args = parser(__doc__).parse_args()
    run(args.out or Path("out") / NAME, quick=args.quick, data=args.data)


if __name__ == "__main__":
    main()
