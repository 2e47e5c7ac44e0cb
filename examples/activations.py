"""Linear, sigmoid, tanh and ReLU neurons: Fundamentals of Deep Learning,
chapter 1 ("Sigmoid, Tanh, and ReLU Neurons").

The book's four kinds of neuron differ only in the activation f applied to
the logit z = w·x + b:

    linear    f(z) = z                    f'(z) = 1
    sigmoid   f(z) = 1 / (1 + e^-z)        f'(z) = f(z) (1 - f(z))
    tanh      f(z) = tanh z                f'(z) = 1 - f(z)²
    ReLU      f(z) = max(0, z)             f'(z) = 1 if z > 0 else 0

Here each is a real `tg.nn.Neuron(1, activation=...)` with w = 1 and b = 0,
so its output is f(z) at z = x. Both curves in the figure come from
tensorgraph: f from the forward pass over a batch of inputs x, and f' from
`backward()` (the gradient of Σ y with respect to the input batch, which is
f'(x) for each x because the examples do not interact). The closed forms above
are used only to check them.

Writes activations.svg (each activation and its derivative) and results.json.

    python examples/activations.py [--out DIR] [--quick]
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from matplotlib.figure import Figure

import tensorgraph as tg
from _common import Example, parser, svg_text

NAME = "activations"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 1: linear, sigmoid, tanh and ReLU neurons, "
              "each activation and its derivative (both computed by tensorgraph)")
POINTS, QUICK_POINTS = 401, 41
D0, D4 = "f'(0)", "f'(4)"   # result keys: the derivative at z = 0 and z = 4


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# name: (title, formula of f, closed-form f', written out independently of tensorgraph)
NEURONS: dict[str, tuple[str, str, Callable[[np.ndarray], np.ndarray]]] = {
    "linear": ("linear", "$f(z) = z$", lambda z: np.ones_like(z)),
    "sigmoid": ("sigmoid", r"$f(z) = 1/(1+e^{-z})$", lambda z: _sigmoid(z) * (1 - _sigmoid(z))),
    "tanh": ("tanh", r"$f(z) = \tanh z$", lambda z: 1 - np.tanh(z) ** 2),
    "relu": ("ReLU", r"$f(z) = \max(0, z)$", lambda z: (z > 0).astype(z.dtype)),
}
CLOSED_FORM_F: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda z: z, "sigmoid": _sigmoid, "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0)}



def neuron_curves(activation: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f(z) and f'(z) from a tensorgraph neuron: forward, then backward to the input."""
    neuron = tg.nn.Neuron(1, activation=activation, dtype=np.float64, name=activation)
    with tg.no_grad():
        neuron.weight.data[...] = 1.0
        neuron.bias.data[...] = 0.0
    x = tg.tensor(z[:, None], requires_grad=True, name="x")   # a batch of one-input examples
    y = neuron(x)                                            # (n,)
    y.sum().backward()                                       # ∂Σy/∂x_k = f'(z_k) · w
    return y.numpy(), x.grad.numpy()[:, 0]


def run(out: Path, quick: bool = False, data: Optional[Path] = None) -> dict[str, Any]:
    """Compute and plot the four activations and their derivatives; returns
    {"figures": [...], "results": {...}}. `quick` uses fewer points; `data` is unused."""
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=Path(out), quick=quick, data=data))
    z = np.linspace(-4.0, 4.0, QUICK_POINTS if quick else POINTS)

    fig = Figure(figsize=(13, 3.6))
    axes = fig.subplots(1, 4, sharey=True)
    for ax, (name, (title, formula, closed_grad)) in zip(axes, NEURONS.items()):
        f, df = neuron_curves(name, z)
        err_f = float(np.abs(f - CLOSED_FORM_F[name](z)).max())
        err_df = float(np.abs(df - closed_grad(z)).max())
        ex.results[name] = {"f(0)": float(f[len(z) // 2]), D0: float(df[len(z) // 2]),
                            "f(4)": float(f[-1]), D4: float(df[-1]),
                            "max_abs_error_f": err_f, "max_abs_error_df": err_df}
        print(f"{title:8s} f(0) = {f[len(z) // 2]:.4f}  f'(0) = {df[len(z) // 2]:.4f}  "
              f"f'(4) = {df[-1]:.4f}   max |error| vs closed form: f {err_f:.1e}, "
              f"f' {err_df:.1e}")
        ax.axhline(0, color="#9ca3af", lw=0.8)
        ax.axvline(0, color="#9ca3af", lw=0.8)
        ax.plot(z, f, color="#2563eb", lw=2.2, label="$f(z)$ (forward)")
        ax.plot(z, df, color="#ea580c", lw=2, ls="--", label="$f'(z)$ (backward)")
        ax.set(title=f"{title} neuron\n{formula}", xlabel="$z = w \\cdot x + b$",
               xlim=(-4, 4), ylim=(-1.6, 2.2))
        ax.grid(color="#e5e7eb", lw=0.6)
    axes[0].legend(loc="upper left", fontsize=9)
    fig.tight_layout()
    ex.results["points"] = len(z)

    sig, tanh = ex.results["sigmoid"], ex.results["tanh"]
    worst = max(ex.results[k]["max_abs_error_df"] for k in NEURONS)
    ex.figure(svg_text(fig), "activations.svg",
              f"The four neurons of chapter 1, each a tensorgraph Neuron with w = 1 and b = 0 "
              f"evaluated at {len(z)} points z in [−4, 4]: the activation f (solid, from the "
              f"forward pass) and its derivative f′ (dashed, from backward()). The linear "
              f"neuron passes gradients unchanged (f′ = 1); the sigmoid's slope peaks at "
              f"f′(0) = {sig[D0]:.2f} and tanh's at {tanh[D0]:.2f}, and both vanish for large "
              f"|z| (f′(4) = {sig[D4]:.3f} and {tanh[D4]:.4f}); ReLU's derivative is a step, "
              f"0 for z < 0 and 1 for z > 0. Every point matches the closed forms to within "
              f"{worst:.0e}.")
    return ex.finish()


def main() -> None:
    args = parser(__doc__).parse_args()
    run(args.out or Path("out") / NAME, quick=args.quick, data=args.data)


if __name__ == "__main__":
    main()
