"""Batch normalisation layers (chapter 5; Ioffe & Szegedy 2015): PyTorch's
`BatchNorm1d` and `BatchNorm2d` around `tg.batch_norm`
(tensorgraph/ops/normalization.py), with PyTorch's parameters (`weight`,
`bias`) and buffers (`running_mean`, `running_var`, `num_batches_tracked`),
so a PyTorch state_dict loads and gives the same outputs."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import ops
from ..ops.normalization import RunningStat
from ..tensor import ArrayLike, Tensor, no_grad
from .module import DiagramPart, DType, FeatureMaps, Module, Parameter, _as_input, _float_dtype

__all__ = ["BatchNorm1d", "BatchNorm2d", "RunningStat"]


class _BatchNorm(Module):
    """y = (x - μ)/sqrt(σ² + eps) · weight + bias per channel (axis 1).

    Training (`net.train()`, the default): μ, σ² are the batch's (biased)
    statistics, and with track_running_stats the running ones are updated:
    running ← (1 - momentum)·running + momentum·batch (unbiased variance),
    `num_batches_tracked` += 1; momentum=None gives the cumulative average
    (factor 1/num_batches_tracked). Evaluation (`net.eval()`): the running
    statistics (or, without track_running_stats, the batch's)."""
    _ranks: tuple[int, ...] = ()
    _layout = ""
    weight: Optional[Parameter]
    bias: Optional[Parameter]
    running_mean: Optional[Tensor]
    running_var: Optional[Tensor]
    num_batches_tracked: Optional[Tensor]

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *,
                 name: Optional[str] = None, dtype: DType = np.float32) -> None:
        super().__init__(name=name)
        cls = type(self).__name__
        if not isinstance(num_features, (int, np.integer)) or isinstance(num_features, bool) \
                or num_features < 1:
            raise ValueError(f"{cls}: num_features must be a positive int, got {num_features!r}")
        if momentum is not None and not 0 <= momentum <= 1:
            raise ValueError(f"{cls}: momentum must be in [0, 1] or None, got {momentum!r}")
        dt = _float_dtype(dtype, cls)
        c = self.num_features = int(num_features)
        self.eps, self.momentum = float(eps), None if momentum is None else float(momentum)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        self.weight = Parameter(np.ones(c, dt)) if affine else None
        self.bias = Parameter(np.zeros(c, dt)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", RunningStat(np.zeros(c, dt), name="running_mean"))
            self.register_buffer("running_var", RunningStat(np.ones(c, dt), name="running_var"))
            self.register_buffer("num_batches_tracked",
                                 RunningStat(np.array(0, np.int64), name="num_batches_tracked"))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """running_mean ← 0, running_var ← 1, num_batches_tracked ← 0 (in place)."""
        with no_grad():
            for buf, value in ((self.running_mean, 0), (self.running_var, 1),
                               (self.num_batches_tracked, 0)):
                if buf is not None:
                    buf.fill_(value)

    def forward(self, x: ArrayLike) -> Tensor:
        dt = self.weight.dtype if self.weight is not None else (
            self.running_mean.dtype if self.running_mean is not None else None)
        t = _as_input(x, dt)
        cls = type(self).__name__
        if t.ndim not in self._ranks:
            raise ValueError(f"{cls} {self.scope_name!r}: expected a {self._layout} input, got "
                             f"shape {t.shape}")
        if t.shape[1] != self.num_features:
            raise ValueError(f"{cls} {self.scope_name!r}: expected {self.num_features} channels "
                             f"(num_features) on axis 1, got input shape {t.shape}")
        if self.training and t.size // t.shape[1] <= 1:
            raise ValueError(f"{cls} {self.scope_name!r}: expected more than 1 value per channel "
                             f"when training, got input shape {t.shape} (use net.eval() for "
                             "single examples)")
        factor: Any = 0.0 if self.momentum is None else self.momentum
        nbt = self.num_batches_tracked if self.training and self.track_running_stats else None
        if nbt is not None and self.momentum is None:
            # the cumulative average 1/(batches so far), as an op: a captured step reads
            # the count at each replay
            factor = 1.0 / (nbt.astype(np.float64) + 1)
        batch_stats = self.training or self.running_mean is None
        use_running = not self.training or self.track_running_stats
        y = ops.batch_norm(t, self.running_mean if use_running else None,
                           self.running_var if use_running else None, self.weight, self.bias,
                           batch_stats, factor, self.eps)
        if nbt is not None:
            # after batch_norm, which refuses an update a captured graph would lose
            nbt.add_(1)
        return y

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of `self(x)`: the input's, once it has the channels on axis 1."""
        shape = tuple(int(n) for n in input_shape)
        cls = type(self).__name__
        if len(shape) not in self._ranks:
            raise ValueError(f"{cls} {self.scope_name!r}: expected a {self._layout} input, got "
                             f"shape {shape}")
        if shape[1] != self.num_features:
            raise ValueError(f"{cls} {self.scope_name!r}: expected {self.num_features} channels "
                             f"(num_features) on axis 1, got input shape {shape}")
        return shape

    def diagram(self, name: str = "") -> list[DiagramPart]:
        """Each channel normalised: annotates the stage (or layer) before it."""
        return [FeatureMaps(name or self.scope_name, "norm", "batch norm",
                            in_channels=self.num_features, output_shape=self.output_shape)]

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) or (N, C, L), as torch.nn.BatchNorm1d."""
    _ranks = (2, 3)
    _layout = "2-D (N, C) or 3-D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, C, H, W), as torch.nn.BatchNorm2d."""
    _ranks = (4,)
    _layout = "4-D (N, C, H, W)"
