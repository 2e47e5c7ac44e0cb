"""Dense layers and feed-forward networks (chapters 1-3).

A `Layer` is many neurons sharing their inputs, computed as one matmul, in
the book's weight layout (n_in, n_out): a batch of rows x (batch, n_in) maps
to x @ W + b (batch, n_out), and column j of W holds neuron j's incoming
weights, as in the book's TensorFlow code. `Linear` is PyTorch's dense layer,
weight (out_features, in_features), so PyTorch code and state_dicts port
unchanged. A `FeedForward` network stacks Layers.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from .. import ops
from ..tensor import ArrayLike, Tensor, _new
from . import init as _init
from .init import Init, Seed, _init_weight, _rng
from .module import (Activation, DiagramPart, DType, Module, ModuleList, Parameter, Units,
                     _as_input, _f64, _float_dtype, _join)
from .neurons import ACTIVATIONS, _activation_name

# The module (not the function tg.tensor), whose recording flags are read live.
_tensor: Any = sys.modules[Tensor.__module__]

__all__ = ["NeuronView", "Layer", "Linear", "FeedForward"]


@dataclass(frozen=True)
class NeuronView:
    """Neuron `index` of a Layer, for drawing: its incoming weights (a read-only
    view of column `index` of the layer's weight), its bias and activation."""
    index: int
    weight: np.ndarray
    bias: Optional[float]
    activation: Optional[str]


class Layer(Module):
    """A dense layer of n_out neurons sharing n_in inputs, computed as one matmul:

        y = f(x @ W + b),   W of shape (n_in, n_out), b of shape (n_out,)

    so neuron j computes f(Σ_i x_i W_ij + b_j). `activation` is a name
    ("linear", "sigmoid", "tanh", "relu", "softmax") or None (no activation,
    no op). `init` names an initializer of `init` ("he", "xavier"/"glorot",
    "uniform", ...) or is a callable (shape, rng) -> array; `seed` (int or
    Generator) makes it reproducible bit for bit.
    """

    def __init__(self, n_in: int, n_out: int, activation: Optional[str] = None,
                 init: Init = "he", bias: bool = True, seed: Seed = None,
                 name: Optional[str] = None, dtype: DType = np.float32) -> None:
        super().__init__(name=name)
        for what, n in (("n_in", n_in), ("n_out", n_out)):
            if not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"Layer: {what} must be a positive int, got {n!r}")
        dt = _float_dtype(dtype, "Layer")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.activation = _activation_name(activation, "Layer")
        rng = _rng(seed, "Layer")
        self.weight = Parameter(_init_weight(init, (self.n_in, self.n_out), rng, dt, "Layer"))
        self.bias = Parameter(np.zeros(self.n_out, dtype=dt)) if bias else None

    def forward(self, x: ArrayLike) -> Tensor:
        x = _as_input(x, self.weight.dtype)
        if x.ndim == 0 or x.shape[-1] != self.n_in:
            raise ValueError(f"Layer {self.scope_name!r}: expected input with last "
                             f"dimension n_in={self.n_in}, got shape {x.shape}")
        z = x @ self.weight
        if self.bias is not None:
            z = z + self.bias
        return z if self.activation is None else ACTIVATIONS[self.activation](z)

    def neuron(self, j: int) -> NeuronView:
        """Neuron j (negative counts from the end): weights W[:, j], bias b[j]."""
        if not isinstance(j, (int, np.integer)) or not -self.n_out <= j < self.n_out:
            raise IndexError(f"Layer.neuron: index {j!r} out of range for n_out={self.n_out}")
        j = int(j) % self.n_out
        w = self.weight.data[:, j]
        w.flags.writeable = False   # a view for reading; the layer's array stays writeable
        b = None if self.bias is None else float(self.bias.data[j])
        return NeuronView(j, w, b, self.activation)

    def diagram(self, name: str = "") -> list[DiagramPart]:
        bias = None if self.bias is None else _f64(self.bias)
        return [Units(name or self.scope_name, _f64(self.weight), bias, self.activation)]

    def extra_repr(self) -> str:
        s = f"n_in={self.n_in}, n_out={self.n_out}, activation={self.activation!r}"
        return s + ("" if self.bias is not None else ", bias=False")


class Linear(Module):
    """PyTorch's dense layer: y = x @ W.T + b, with W of shape
    (out_features, in_features) and b of shape (out_features,), PyTorch's
    names and layout, so PyTorch code ports line by line and its state_dicts
    load. (It is the book's `Layer` with weight W.T and no activation.)

    Initialised as PyTorch does: W ~ U(±1/√in_features) (kaiming_uniform with
    a = √5) and b ~ U(±1/√in_features); `seed` (int or Generator) makes it
    reproducible bit for bit (numpy's generator, so not PyTorch's numbers).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 seed: Seed = None, name: Optional[str] = None,
                 dtype: DType = np.float32) -> None:
        super().__init__(name=name)
        for what, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise ValueError(f"Linear: {what} must be a positive int, got {n!r}")
        dt = _float_dtype(dtype, "Linear")
        self.in_features, self.out_features = int(in_features), int(out_features)
        rng = _rng(seed, "Linear")
        # Drawn in the book's layout (fan_in = in_features there), stored as (out, in).
        w = _init.kaiming_uniform((self.in_features, self.out_features), rng, a=math.sqrt(5)).T
        self.weight = Parameter(np.ascontiguousarray(w, dtype=dt))
        bound = 1.0 / math.sqrt(self.in_features)
        self.bias = Parameter(rng.uniform(-bound, bound, self.out_features).astype(dt)) \
            if bias else None

    def forward(self, x: ArrayLike) -> Tensor:
        x = _as_input(x, self.weight.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear {self.scope_name!r}: expected input with last dimension "
                             f"in_features={self.in_features}, got shape {x.shape}")
        if not (_tensor._grad_enabled or _tensor._capture is not None or _tensor._anomaly):
            # Nothing to record (no_grad, e.g. acting or a target network):
            # the same numpy calls the ops make (matmul of x with the view
            # W.T, then add), without the three op dispatches.
            w = self.weight._data
            if x._data.dtype == w.dtype:
                z = np.matmul(x._data, w.T)
                if self.bias is not None:
                    np.add(z, self.bias._data, out=z)
                return _new(z)
        z = x @ ops.transpose(self.weight)
        return z if self.bias is None else z + self.bias

    def diagram(self, name: str = "") -> list[DiagramPart]:
        """A column of out_features units fed by W.T (the book's layout)."""
        bias = None if self.bias is None else _f64(self.bias)
        return [Units(name or self.scope_name, _f64(self.weight).T, bias, None)]

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class FeedForward(Module):
    """A feed-forward network: `sizes = [n_in, h_1, ..., n_out]` gives
    len(sizes) - 1 `Layer`s in `layers`. Hidden layers use `activation`; the
    last layer has none, and `output` (None, "softmax", "sigmoid", or another
    activation name) is applied after it:

        h_0 = x,  h_k = f(h_{k-1} W_k + b_k),  y = output(h_{L-1} W_L + b_L)

    `logits(x)` returns the last layer's output before `output`, the input
    that the fused losses (`losses.cross_entropy`, `binary_cross_entropy`) want.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu",
                 output: Optional[str] = None, init: Init = "he", seed: Seed = None,
                 name: Optional[str] = None, dtype: DType = np.float32) -> None:
        super().__init__(name=name)
        sizes = list(sizes)
        if len(sizes) < 2 or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in sizes):
            raise ValueError(f"FeedForward: sizes must be at least two positive ints "
                             f"[n_in, ..., n_out], got {sizes!r}")
        self.sizes = [int(n) for n in sizes]
        self.activation = _activation_name(activation, "FeedForward", allow_none=False)
        self.output = _activation_name(output, "FeedForward output")
        rng = _rng(seed, "FeedForward")
        last = len(self.sizes) - 2
        self.layers = ModuleList(
            Layer(n_in, n_out, activation=self.activation if i < last else None, init=init,
                  seed=rng, dtype=dtype)
            for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])))

    def _logits(self, x: ArrayLike) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x  # type: ignore[return-value]

    def forward(self, x: ArrayLike) -> Tensor:
        z = self._logits(x)
        return z if self.output is None else ACTIVATIONS[self.output](z)

    def logits(self, x: ArrayLike) -> Tensor:
        """The network without its `output` activation, in the network's scope."""
        with self.name_scope():
            return self._logits(x)

    def diagram(self, name: str = "") -> list[DiagramPart]:
        """The layers' Units, then the `output` function as an Activation
        named after the network itself (it belongs to the network, not to a
        module after it)."""
        parts = self.layers.diagram(_join(name, "layers"))
        return parts + ([Activation(name, self.output)] if self.output is not None else [])

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, activation={self.activation!r}, output={self.output!r}"


