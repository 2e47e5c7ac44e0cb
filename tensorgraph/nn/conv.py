"""Convolutional layers (chapter 5): `Conv2d`, `Conv1d`, and `Flatten` between
the feature maps and the dense layers.

PyTorch's constructor arguments, parameter names and layouts: weight
(out_channels, in_channels/groups, *kernel_size), bias (out_channels,), input
(N, C, H, W) or (N, C, L), so a PyTorch state_dict of the same architecture
loads unchanged. The ops are `tg.conv2d` / `tg.conv1d` (tensorgraph/ops/conv.py).
"""
from __future__ import annotations

import math
from typing import Any, Optional, Union

import numpy as np

from .. import ops
from ..tensor import ArrayLike, Tensor
from . import init as _init
from .init import Seed, _rng
from ..ops.conv import _out_size, _same_padding
from .module import DiagramPart, DType, FeatureMaps, Module, Parameter, _as_input, _float_dtype

__all__ = ["Conv1d", "Conv2d", "Flatten"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ints(v: Any, nd: int, what: str, least: int) -> tuple[int, ...]:
    vals = (v,) * nd if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v
    try:
        vals = tuple(vals)
    except TypeError:
        vals = ()
    if (len(vals) != nd or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                                   for a in vals) or any(a < least for a in vals)):
        raise ValueError(f"{what} must be an int >= {least} or {nd} of them, got {v!r}")
    return tuple(int(a) for a in vals)


class _ConvNd(Module):
    """The shared part of Conv1d and Conv2d (`nd` spatial axes)."""

    nd = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, tuple[int, ...]],
                 stride: Union[int, tuple[int, ...]] = 1,
                 padding: Union[str, int, tuple[int, ...]] = 0,
                 dilation: Union[int, tuple[int, ...]] = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", *, seed: Seed = None, name: Optional[str] = None,
                 dtype: DType = np.float32) -> None:
        super().__init__(name=name)
        what = type(self).__name__
        for arg, n in (("in_channels", in_channels), ("out_channels", out_channels),
                       ("groups", groups)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise ValueError(f"{what}: {arg} must be a positive int, got {n!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{what}: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        nd = self.nd
        self.in_channels, self.out_channels, self.groups = (int(in_channels), int(out_channels),
                                                            int(groups))
        self.kernel_size = _ints(kernel_size, nd, f"{what}: kernel_size", 1)
        self.stride = _ints(stride, nd, f"{what}: stride", 1)
        self.dilation = _ints(dilation, nd, f"{what}: dilation", 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{what}: padding must be an int, {nd} ints, 'same' or 'valid', "
                                 f"got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{what}: padding='same' is not supported for strided "
                                 f"convolutions (stride={self.stride})")
            self.padding: Union[str, tuple[int, ...]] = padding
        else:
            self.padding = _ints(padding, nd, f"{what}: padding", 0)
        if padding_mode != "zeros":
            if padding_mode in _PADDING_MODES:
                raise NotImplementedError(f"{what}: padding_mode={padding_mode!r} is not "
                                          "implemented; only 'zeros' is")
            raise ValueError(f"{what}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        self.padding_mode = padding_mode
        dt = _float_dtype(dtype, what)
        rng = _rng(seed, what)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        # PyTorch's reset_parameters: kaiming_uniform(a=√5) = U(±1/√fan_in), and the
        # bias U(±1/√fan_in), fan_in = in_channels/groups · kH·kW (the receptive field).
        self.weight = Parameter(_init.kaiming_uniform(shape, rng, a=math.sqrt(5)).astype(dt))
        fan_in, _ = _init.fans(shape)
        bound = 1.0 / math.sqrt(fan_in)
        self.bias = Parameter(rng.uniform(-bound, bound, self.out_channels).astype(dt)) \
            if bias else None

    def forward(self, x: ArrayLike) -> Tensor:
        x = _as_input(x, self.weight.dtype)
        self._check(x)
        conv = ops.conv2d if self.nd == 2 else ops.conv1d
        return conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                    self.groups)

    def _check(self, x: Tensor) -> None:
        if x.ndim != self.nd + 2 or x.shape[1] != self.in_channels:
            layout = "(N, C, H, W)" if self.nd == 2 else "(N, C, L)"
            raise ValueError(f"{type(self).__name__} {self.scope_name!r}: expected a "
                             f"{self.nd + 2}-D input {layout} with C = in_channels = "
                             f"{self.in_channels}, got shape {x.shape}")

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
            f"stride={self.stride}"
        if self.padding != (0,) * self.nd:
            s += f", padding={self.padding!r}"
        if self.dilation != (1,) * self.nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of `self(x)` for an x of shape `input_shape` (N, C, H, W)
        (or (N, C, L)), by the op's own arithmetic, without computing it:
        H' = ⌊(H + p_top + p_bottom - d·(kH-1) - 1)/s⌋ + 1 per spatial axis."""
        what = f"{type(self).__name__} {self.scope_name!r}"
        shape = tuple(int(n) for n in input_shape)
        if len(shape) != self.nd + 2 or shape[1] != self.in_channels:
            layout = "(N, C, H, W)" if self.nd == 2 else "(N, C, L)"
            raise ValueError(f"{what}: expected a {self.nd + 2}-D input {layout} with C = "
                             f"in_channels = {self.in_channels}, got shape {shape}")
        pads = _same_padding(what, self.kernel_size, self.stride, self.dilation, self.padding)
        sizes = tuple(_out_size(n, k, s, p, d) for n, k, s, p, d in
                      zip(shape[2:], self.kernel_size, self.stride, pads, self.dilation))
        if any(n < 1 for n in sizes):
            raise ValueError(f"{what}: kernel {self.kernel_size} (dilation {self.dilation}) is "
                             f"larger than the padded input {shape[2:]} (padding "
                             f"{self.padding!r})")
        return shape[:1] + (self.out_channels,) + sizes

    def diagram(self, name: str = "") -> list[DiagramPart]:
        """A stage of feature maps: out_channels maps made by a kernel."""
        return [FeatureMaps(name or self.scope_name, "conv", "conv", self.out_channels,
                            self.in_channels, self.kernel_size, self.stride, self.padding,
                            self.dilation, self.groups, self.output_shape)]


class Conv2d(_ConvNd):
    """A 2-D convolutional layer (PyTorch's nn.Conv2d): out_channels filters
    of shape (in_channels/groups, kH, kW) slide over the input (N, C, H, W):

        out[n, o] = b[o] + Σ_c w[o, c] ⋆ x[n, c]      (⋆: cross-correlation)

    giving (N, out_channels, H', W'), H' = ⌊(H + 2p - d·(kH-1) - 1)/s⌋ + 1.
    Initialised as PyTorch does: weight and bias ~ U(±1/√fan_in), fan_in =
    in_channels/groups · kH · kW; `seed` makes it reproducible (numpy's
    generator, so not PyTorch's numbers). padding_mode: "zeros" only."""

    nd = 2


class Conv1d(_ConvNd):
    """A 1-D convolutional layer (PyTorch's nn.Conv1d) over (N, C, L) inputs,
    e.g. a sentence as C embedding channels by L words (chapter 7); weight
    (out_channels, in_channels/groups, k). As Conv2d otherwise."""

    nd = 1


class Flatten(Module):
    """Merge axes start_dim..end_dim into one (PyTorch's nn.Flatten):
    (N, C, H, W) -> (N, C·H·W), between conv layers and dense ones."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1, name: Optional[str] = None) -> None:
        super().__init__(name=name)
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: ArrayLike) -> Tensor:
        return ops.flatten(_as_input(x, None), self.start_dim, self.end_dim)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of `self(x)` for an x of shape `input_shape`."""
        shape = tuple(int(n) for n in input_shape)
        start, end = (d % len(shape) if shape else d for d in (self.start_dim, self.end_dim))
        if not shape or start > end:
            raise ValueError(f"Flatten {self.scope_name!r}: cannot flatten dims {self.start_dim}"
                             f"..{self.end_dim} of shape {shape}")
        return shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:]

    def diagram(self, name: str = "") -> list[DiagramPart]:
        """The feature maps become one vector, for the dense layers after them."""
        return [FeatureMaps(name or self.scope_name, "flatten", "flatten",
                            output_shape=self.output_shape)]

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
