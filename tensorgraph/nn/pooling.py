"""Pooling layers (chapter 5): PyTorch's `MaxPool2d`, `MaxPool1d`,
`AvgPool2d`, `AvgPool1d`, modules around the ops of tensorgraph/ops/pooling.py
(no parameters, no buffers)."""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from .. import ops
from ..ops.pooling import _geometry, _ints, _out_size
from ..tensor import ArrayLike, Tensor
from .module import DiagramPart, FeatureMaps, Module, _as_input

__all__ = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d"]

IntOrPair = Union[int, Sequence[int]]


def _arg(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


class _Pool(Module):
    """Shared by the pooling modules: the input check names the module."""
    _dims = 2

    def _check(self, x: ArrayLike) -> Tensor:
        t = _as_input(x, None)
        nd = self._dims
        if t.ndim not in (nd + 1, nd + 2):
            layout = "(C, L) or (N, C, L)" if nd == 1 else "(C, H, W) or (N, C, H, W)"
            raise ValueError(f"{type(self).__name__} {self.scope_name!r}: expected a "
                             f"{nd + 1}-D or {nd + 2}-D input {layout}, got shape {t.shape}")
        return t

    # How the picture names the pooling ("max pool", "avg pool").
    _operation = "max pool"
    kernel_size: Any
    stride: Any
    padding: Any
    ceil_mode: bool

    def _window(self) -> dict[str, tuple[int, ...]]:
        what = f"{type(self).__name__} {self.scope_name!r}"
        nd = self._dims
        k = _ints(self.kernel_size, nd, what, "kernel_size")
        return {"kernel_size": k,
                "stride": k if self.stride is None else _ints(self.stride, nd, what, "stride"),
                "padding": _ints(self.padding, nd, what, "padding"),
                "dilation": _ints(getattr(self, "dilation", 1), nd, what, "dilation")}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of `self(x)` for an x of shape `input_shape` ((N,) C, H, W),
        by the op's own arithmetic: ⌊(H + 2p - d·(k-1) - 1)/s⌋ + 1 per
        spatial axis (rounded up with ceil_mode); the channels are kept."""
        shape = tuple(int(n) for n in input_shape)
        w = self._window()
        geometry = _geometry(f"{type(self).__name__} {self.scope_name!r}", shape, self._dims,
                             w["kernel_size"], w["stride"], w["padding"], w["dilation"],
                             self.ceil_mode)
        sizes = tuple(_out_size(n, k, s, p, d, self.ceil_mode) for n, k, s, p, d in zip(
            shape[-self._dims:], *(geometry[a] for a in ("kernel_size", "stride", "padding",
                                                         "dilation"))))
        return shape[:-self._dims] + sizes

    def diagram(self, name: str = "") -> list[DiagramPart]:
        """A stage of feature maps: a window slides over each map, the depth is kept."""
        w = self._window()
        return [FeatureMaps(name or self.scope_name, "pool", self._operation,
                            kernel_size=w["kernel_size"], stride=w["stride"],
                            padding=w["padding"], dilation=w["dilation"],
                            output_shape=self.output_shape)]


class MaxPool2d(_Pool):
    """y = max over each kH x kW window (stride defaults to kernel_size;
    padding reads -inf), as torch.nn.MaxPool2d; see `tg.max_pool2d`."""

    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                 padding: IntOrPair = 0, dilation: IntOrPair = 1, return_indices: bool = False,
                 ceil_mode: bool = False, name: Optional[str] = None) -> None:
        super().__init__(name=name)
        if return_indices:
            raise NotImplementedError(f"{type(self).__name__}: return_indices=True is not "
                                      "supported")
        self.kernel_size, self.stride = _arg(kernel_size), _arg(kernel_size if stride is None
                                                                  else stride)
        self.padding, self.dilation, self.ceil_mode = _arg(padding), _arg(dilation), bool(ceil_mode)

    def forward(self, x: ArrayLike) -> Tensor:
        return ops.max_pool2d(self._check(x), self.kernel_size, self.stride, self.padding,
                              self.dilation, self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(MaxPool2d):
    """y = max over each window of k along the last axis, as torch.nn.MaxPool1d."""
    _dims = 1

    def forward(self, x: ArrayLike) -> Tensor:
        return ops.max_pool1d(self._check(x), self.kernel_size, self.stride, self.padding,
                              self.dilation, self.ceil_mode)


class AvgPool2d(_Pool):
    """y = the mean of each kH x kW window, as torch.nn.AvgPool2d; see `tg.avg_pool2d`."""
    _operation = "avg pool"

    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                 padding: IntOrPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: Optional[int] = None, name: Optional[str] = None) -> None:
        super().__init__(name=name)
        self.kernel_size, self.stride = _arg(kernel_size), _arg(kernel_size if stride is None
                                                                  else stride)
        self.padding, self.ceil_mode = _arg(padding), bool(ceil_mode)
        self.count_include_pad, self.divisor_override = bool(count_include_pad), divisor_override

    def forward(self, x: ArrayLike) -> Tensor:
        return ops.avg_pool2d(self._check(x), self.kernel_size, self.stride, self.padding,
                              self.ceil_mode, self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}")


class AvgPool1d(_Pool):
    """y = the mean of each window of k along the last axis, as torch.nn.AvgPool1d."""
    _dims = 1
    _operation = "avg pool"

    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                 padding: IntOrPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                 name: Optional[str] = None) -> None:
        super().__init__(name=name)
        self.kernel_size, self.stride = _arg(kernel_size), _arg(kernel_size if stride is None
                                                                  else stride)
        self.padding, self.ceil_mode = _arg(padding), bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x: ArrayLike) -> Tensor:
        return ops.avg_pool1d(self._check(x), self.kernel_size, self.stride, self.padding,
                              self.ceil_mode, self.count_include_pad)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}")
