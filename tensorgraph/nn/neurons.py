"""Chapter 1: the neuron, its activations, and the linear perceptron.

Chapter 1 of *Fundamentals of Deep Learning* (Buduma, 2017) builds networks from
one unit, the neuron: inputs x_1..x_n, weights w_1..w_n, a bias b, and an
output

    y = f(w·x + b) = f(Σ_i w_i x_i + b)

with f the activation: linear (identity), sigmoid 1/(1 + e^-z), tanh, or the
rectified linear max(0, z); a softmax output layer turns a layer's logits z
into class probabilities e^{z_i} / Σ_j e^{z_j}. Before it, the linear
perceptron classifies with a step: h(x, θ) = -1 if x·θ + θ_0 < 0 else 1.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from .. import ops
from ..ops import OpTable, defop
from ..tensor import ArrayLike, Tensor, no_grad
from .init import Init, Seed, _init_weight, _rng
from .module import (Activation, DiagramPart, DType, Module, Parameter, Units, _as_input,
                     _f64, _float_dtype)

__all__ = ["identity", "sigmoid", "tanh", "relu", "softmax", "get_activation", "ACTIVATIONS",
           "Identity", "Sigmoid", "Tanh", "ReLU", "Softmax", "Neuron", "LinearPerceptron"]


# ---------------------------------------------------------------------------
# Activations: functions and a registry of names

def identity(x: ArrayLike) -> Tensor:
    """The linear neuron's activation, f(z) = z. Records no op."""
    return x if isinstance(x, Tensor) else Tensor(x)


sigmoid = ops.sigmoid
tanh = ops.tanh
relu = ops.relu
softmax = ops.softmax

#: Activation names accepted by `get_activation`, `Neuron`, `Layer` and `FeedForward`.
ACTIVATIONS: dict[str, Callable[..., Tensor]] = {
    "linear": identity, "identity": identity, "sigmoid": sigmoid, "tanh": tanh,
    "relu": relu, "softmax": softmax,
}


def _activation_name(name: Optional[str], what: str, allow_none: bool = True) -> Optional[str]:
    if name is None and allow_none:
        return None
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        raise ValueError(f"{what}: unknown activation {name!r}; expected one of "
                         f"{', '.join(repr(k) for k in ACTIVATIONS)}"
                         + (" or None" if allow_none else ""))
    return name.lower()


def get_activation(name: Optional[str]) -> Callable[..., Tensor]:
    """The activation function for a name: "linear"/"identity", "sigmoid",
    "tanh", "relu", "softmax" (case-insensitive); None means identity."""
    n = _activation_name(name, "get_activation")
    return identity if n is None else ACTIVATIONS[n]


# ---------------------------------------------------------------------------
# Activation modules

class _ActivationModule(Module):
    activation: str = "linear"

    def forward(self, x: ArrayLike) -> Tensor:
        return ACTIVATIONS[self.activation](_as_input(x, None))

    def diagram(self, name: str = "") -> list[DiagramPart]:
        return [Activation(name or self.scope_name, self.activation)]


class Identity(_ActivationModule):
    """f(z) = z, the linear neuron's activation. (Named Identity rather than
    Linear because PyTorch's Linear is a dense layer.)"""
    activation = "linear"


class Sigmoid(_ActivationModule):
    """f(z) = 1/(1 + e^-z), in (0, 1); f' = f(1 - f)."""
    activation = "sigmoid"


class Tanh(_ActivationModule):
    """f(z) = tanh z, in (-1, 1); f' = 1 - f²."""
    activation = "tanh"


class ReLU(_ActivationModule):
    """f(z) = max(0, z), the rectified linear neuron."""
    activation = "relu"


class Softmax(_ActivationModule):
    """y_i = e^{z_i} / Σ_j e^{z_j} along `axis`: the softmax output layer."""
    activation = "softmax"

    def __init__(self, axis: int = -1, name: Optional[str] = None) -> None:
        super().__init__(name=name)
        self.axis = int(axis)

    def forward(self, x: ArrayLike) -> Tensor:
        return softmax(_as_input(x, None), axis=self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


def _unit_input(x: Any, unit: Any, who: str) -> Tensor:
    """The input of a single unit (Neuron, LinearPerceptron): one example of
    shape (n_inputs,) or a batch (batch, n_inputs), in the unit's dtype."""
    x = _as_input(x, unit.weight.dtype)
    n = unit.n_inputs
    if x.ndim not in (1, 2) or x.shape[-1] != n:
        raise ValueError(f"{who}: expected input of shape ({n},) or (batch, {n}), got {x.shape}")
    return x


# ---------------------------------------------------------------------------
# The neuron and the perceptron

class Neuron(Module):
    """The book's neuron: y = f(w·x + b) = f(Σ_i w_i x_i + b).

    `weight` has shape (n_inputs,), `bias` shape (); `activation` is a name
    ("linear"/"identity", "sigmoid", "tanh", "relu"). An input of shape
    (n_inputs,) gives a scalar; a batch (batch, n_inputs) gives (batch,).
    """

    def __init__(self, n_inputs: int, activation: str = "sigmoid", init: Init = "he",
                 seed: Seed = None, name: Optional[str] = None, dtype: DType = np.float32) -> None:
        super().__init__(name=name)
        if not isinstance(n_inputs, (int, np.integer)) or n_inputs < 1:
            raise ValueError(f"Neuron: n_inputs must be a positive int, got {n_inputs!r}")
        dt = _float_dtype(dtype, "Neuron")
        self.n_inputs = int(n_inputs)
        self.activation = _activation_name(activation, "Neuron", allow_none=False)
        if self.activation == "softmax":
            raise ValueError("Neuron: softmax needs a layer of neurons; use Layer(..., "
                             "activation='softmax')")
        rng = _rng(seed, "Neuron")
        self.weight = Parameter(_init_weight(init, (self.n_inputs,), rng, dt, "Neuron"))
        self.bias = Parameter(np.zeros((), dtype=dt))

    def forward(self, x: ArrayLike) -> Tensor:
        x = _unit_input(x, self, f"Neuron {self.scope_name!r}")
        return ACTIVATIONS[self.activation](x @ self.weight + self.bias)

    def diagram(self, name: str = "") -> list[DiagramPart]:
        """One unit: weights as a column (n_inputs, 1), drawn as the book's neuron."""
        return [Units(name or self.scope_name, _f64(self.weight).reshape(-1, 1),
                      _f64(self.bias).reshape(1), self.activation, kind="neuron")]

    def extra_repr(self) -> str:
        return f"n_inputs={self.n_inputs}, activation={self.activation!r}"


def _step_vjp(g: Any, out: Any, z: Any) -> Any:
    return g * 0  # the step is flat wherever it is differentiable


NN_OPS = OpTable("nn")   # nn's own ops; the core table is never touched from here
STEP = defop("step", lambda z: np.where(z < 0, -1, 1).astype(z.dtype), _step_vjp, table=NN_OPS)


class LinearPerceptron(Module):
    """The linear perceptron (Rosenblatt 1958), the book's first classifier:

        h(x, θ) = -1 if x·[θ_1..θ_n] + θ_0 < 0 else 1

    `weight` holds θ_1..θ_n (shape (n_inputs,)), `bias` holds θ_0. Both start
    at zero. The step has no useful gradient (its derivative is 0 wherever it
    exists, so backward sends zeros): gradient descent cannot train it; `fit`
    uses the perceptron learning rule instead. (`activation` is "step", for
    drawing.)
    """

    activation = "step"

    def __init__(self, n_inputs: int, name: Optional[str] = None,
                 dtype: DType = np.float32) -> None:
        super().__init__(name=name)
        if not isinstance(n_inputs, (int, np.integer)) or n_inputs < 1:
            raise ValueError(f"LinearPerceptron: n_inputs must be a positive int, got {n_inputs!r}")
        dt = _float_dtype(dtype, "LinearPerceptron")
        self.n_inputs = int(n_inputs)
        self.weight = Parameter(np.zeros(self.n_inputs, dtype=dt))
        self.bias = Parameter(np.zeros((), dtype=dt))

    def forward(self, x: ArrayLike) -> Tensor:
        x = _unit_input(x, self, "LinearPerceptron")
        return STEP(x @ self.weight + self.bias)

    def fit(self, X: ArrayLike, t: ArrayLike, epochs: int = 100, lr: float = 1.0,
            shuffle: bool = False, seed: Seed = None) -> list[int]:
        """Train with the perceptron learning rule: for each example x with
        label t in {-1, +1} that h misclassifies, θ ← θ + lr·t·x and
        θ_0 ← θ_0 + lr·t. Returns the number of mistakes in each epoch and
        stops after the first epoch without one (on linearly separable data
        the rule converges: Novikoff's theorem bounds the total number of
        mistakes by (R/γ)²)."""
        Xa = np.asarray(X.data if isinstance(X, Tensor) else X, dtype=np.float64)
        ta = np.asarray(t.data if isinstance(t, Tensor) else t)
        if Xa.ndim != 2 or Xa.shape[1] != self.n_inputs:
            raise ValueError(f"LinearPerceptron.fit: X must have shape (n, {self.n_inputs}), "
                             f"got {Xa.shape}")
        if ta.shape != (Xa.shape[0],):
            raise ValueError(f"LinearPerceptron.fit: t must have shape ({Xa.shape[0]},) to match "
                             f"X of shape {Xa.shape}, got {ta.shape}")
        if not np.isin(ta, (-1, 1)).all():
            raise ValueError(f"LinearPerceptron.fit: labels t must be -1 or +1, got values "
                             f"{np.unique(ta)[:5].tolist()}")
        rng = _rng(seed, "LinearPerceptron.fit")
        w = self.weight.data.astype(np.float64)
        b = float(self.bias.data)
        history: list[int] = []
        for _ in range(int(epochs)):
            order = rng.permutation(len(Xa)) if shuffle else range(len(Xa))
            mistakes = 0
            for i in order:
                h = -1.0 if Xa[i] @ w + b < 0 else 1.0
                if h != ta[i]:
                    w += lr * ta[i] * Xa[i]
                    b += lr * ta[i]
                    mistakes += 1
            history.append(mistakes)
            if mistakes == 0:
                break
        with no_grad():   # in place, recorded as a change (a graph that saw the old values knows)
            self.weight.copy_(w)
            self.bias.copy_(b)
        return history

    def diagram(self, name: str = "") -> list[DiagramPart]:
        """One unit with the step, drawn as the book's perceptron."""
        return [Units(name or self.scope_name, _f64(self.weight).reshape(-1, 1),
                      _f64(self.bias).reshape(1), "step", kind="perceptron")]

    def extra_repr(self) -> str:
        return f"n_inputs={self.n_inputs}"


