"""The linear perceptron on the exam data: Fundamentals of Deep Learning,
chapter 1 ("Expressing Linear Perceptrons as Neurons", Figure 1-4).

The book's first classifier predicts whether a student scores above the class
average from two numbers, hours of sleep x_1 and hours of study x_2 the
night before:

    h(x, θ) = -1 if x·[θ_1, θ_2] + θ_0 < 0, else +1

Its decision boundary θ_1 x_1 + θ_2 x_2 + θ_0 = 0 is a line in the plane of
Figure 1-4. Here the data come from `tg.data.exam_data` (100 students; the
hidden rule is 0.4·sleep + 0.6·study above or below 5, with a margin, so the
classes are linearly separable), and `LinearPerceptron.fit` learns θ with the
perceptron learning rule (Rosenblatt 1958): for each misclassified example,
θ ← θ + t·x and θ_0 ← θ_0 + t. On separable data it stops making mistakes
after finitely many updates (Novikoff 1962).

Writes boundary.svg (Figure 1-4: the data and the learned line, with the
mistakes per epoch), network.svg (the trained perceptron drawn as a neuron
with a step function) and results.json.

    python examples/perceptron.py [--out DIR] [--quick]
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
from matplotlib.figure import Figure

import tensorgraph as tg
from _common import Example, parser, svg_text

NAME = "perceptron"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 1, Figure 1-4: a linear perceptron "
              "separating the exam data (hours of sleep vs hours of study) with a line")
HIDDEN = (0.4, 0.6, -5.0)   # exam_data's rule: 0.4·sleep + 0.6·study - 5 (above average if > 0)



def boundary_figure(X: np.ndarray, t: np.ndarray, theta: np.ndarray, theta0: float,
                    mistakes: list[int]) -> str:
    fig = Figure(figsize=(10.5, 5.6))
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.35, 1]})
    above, below = t > 0, t < 0
    ax.scatter(X[above, 0], X[above, 1], marker="o", c="#2563eb", s=28,
               label="above the class average (+1)")
    ax.scatter(X[below, 0], X[below, 1], marker="x", c="#dc2626", s=30,
               label="below the class average (−1)")
    xs = np.array([0.0, 10.0])
    # θ_1 x_1 + θ_2 x_2 + θ_0 = 0  →  x_2 = -(θ_1 x_1 + θ_0) / θ_2
    ax.plot(xs, -(theta[0] * xs + theta0) / theta[1], c="#111827", lw=2,
            label=f"learned: {theta[0]:.2f}·sleep + {theta[1]:.2f}·study {theta0:+.2f} = 0")
    ax.plot(xs, -(HIDDEN[0] * xs + HIDDEN[2]) / HIDDEN[1], c="#6b7280", lw=1.2, ls="--",
            label="hidden rule: 0.4·sleep + 0.6·study = 5")
    ax.set(xlim=(-0.2, 10.2), ylim=(-0.2, 10.2), xlabel="hours of sleep ($x_1$)",
           ylabel="hours of study ($x_2$)",
           title="Figure 1-4: the exam data and the perceptron's line")
    ax.set_aspect("equal")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8)
    epochs = np.arange(1, len(mistakes) + 1)
    bars = ax2.bar(epochs, mistakes, color="#7c3aed")
    ax2.bar_label(bars, fontsize=8)
    ax2.set(xlabel="epoch (one pass over the 100 students)", ylabel="misclassified examples",
            title=f"Perceptron rule: no mistakes after {len(mistakes)} epochs")
    ax2.set_xticks(epochs if len(epochs) <= 15 else epochs[::max(1, len(epochs) // 10)])
    fig.tight_layout()
    return svg_text(fig)


def run(out: Path, quick: bool = False, data: Optional[Path] = None) -> dict[str, Any]:
    """Train the perceptron on the exam data and draw it; returns
    {"figures": [...], "results": {...}}. (`quick` and `data` change nothing:
    the data are generated and training takes milliseconds.)"""
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=Path(out), quick=quick, data=data))

    X, t = tg.data.exam_data(n=100, seed=0)
    perceptron = tg.nn.LinearPerceptron(2, name="perceptron")
    mistakes = perceptron.fit(X, t, epochs=1000)
    theta, theta0 = perceptron.weight.numpy().astype(np.float64), float(perceptron.bias.item())
    predictions = perceptron(X).numpy()            # the module's forward: the step of x·θ + θ_0
    accuracy = float(np.mean(predictions == t))
    converged = mistakes[-1] == 0

    # How close is the learned line to the hidden rule? The angle between their normals.
    cos = theta @ np.array(HIDDEN[:2]) / (np.linalg.norm(theta) * np.linalg.norm(HIDDEN[:2]))
    angle = math.degrees(math.acos(min(1.0, float(cos))))
    # Scaled so that θ_2 = 0.6 (a perceptron's θ is only defined up to a positive factor).
    scaled = np.array([*theta, theta0]) * (HIDDEN[1] / theta[1])

    # The step function has no useful gradient: backward through it gives zeros.
    z = perceptron(tg.tensor(X[:5]))
    z.sum().backward()
    step_grad = float(np.abs(perceptron.weight.grad.numpy()).sum())

    print(f"data: {len(X)} students, {int((t > 0).sum())} above and {int((t < 0).sum())} "
          "below the average")
    print(f"mistakes per epoch: {mistakes}")
    print(f"{'converged' if converged else 'did not converge'} after {len(mistakes)} epochs "
          f"({sum(mistakes)} updates); training accuracy {accuracy:.0%}")
    print(f"learned θ = [{theta[0]:.3f}, {theta[1]:.3f}], θ_0 = {theta0:.3f}; scaled to "
          f"θ_2 = 0.6: {np.round(scaled, 3).tolist()} (hidden rule {list(HIDDEN)}); "
          f"angle between the lines' normals {angle:.2f}°")
    print(f"gradient of the step through backward: |dE/dθ| = {step_grad} (so gradient "
          "descent cannot train it; the perceptron rule does)")

    ex.results.update(
        epochs_to_converge=len(mistakes), converged=converged, updates=int(sum(mistakes)),
        mistakes_per_epoch=mistakes, train_accuracy=accuracy,
        theta=[round(float(v), 4) for v in theta], theta0=round(theta0, 4),
        theta_scaled=[round(float(v), 4) for v in scaled],
        angle_to_hidden_rule_degrees=round(angle, 3), step_gradient_abs_sum=step_grad)

    ex.figure(boundary_figure(X, t, theta, theta0, mistakes), "boundary.svg",
              f"The book's Figure 1-4, learned rather than hand-picked: 100 students plotted "
              f"by hours of sleep and hours of study, blue if their exam score was above the "
              f"class average and red if below. The perceptron rule, started from θ = 0, "
              f"made {sum(mistakes)} updates over {len(mistakes)} epochs (right) and then "
              f"classified all {len(X)} correctly; its line (solid) lies within "
              f"{angle:.1f}° of the rule that generated the data (dashed).")
    ex.figure(tg.draw(perceptron, title="The trained linear perceptron"), "network.svg",
              f"The trained perceptron as a neuron whose activation is a step: it sums "
              f"θ₁·sleep + θ₂·study + θ₀ with θ = [{theta[0]:.2f}, {theta[1]:.2f}], "
              f"θ₀ = {theta0:.2f}, and outputs −1 below zero and +1 otherwise. The step is "
              f"flat wherever it has a derivative, so backward sends it zero gradient: it "
              f"is trained by the perceptron rule, not by gradient descent.")
    return ex.finish()


def main() -> None:
    args = parser(__doc__).parse_args()
    run(args.out or Path("out") / NAME, quick=args.quick, data=args.data)


if __name__ == "__main__":
    main()
