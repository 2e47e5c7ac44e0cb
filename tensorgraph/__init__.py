"""tensorgraph: an autograd engine on numpy that records every computation as a
graph you can differentiate and draw.

Read the package in this order: `tensor` (the Tensor and the recorded Node),
`autograd` (the backward walk), `ops/` (`registry`: how an op is declared once,
forward beside VJP; then the ops by kind), `gradcheck`, then `graph` (capture and
replay) and `passes` (graph to graph). `_tensor_api` is
generated from the op declarations (`python -m tensorgraph.ops.codegen`).
"""
from typing import TYPE_CHECKING

from .tensor import (AnomalyError, Node, Tensor, current_scope, enable_grad, is_grad_enabled,
                     name_scope, no_grad, set_grad_enabled, tensor)
from .autograd import backward, detect_anomaly, grad, unbroadcast, walk
from .ops import OPS, Op, all_ops, defop
from .ops._exports import *  # noqa: F401,F403 - every public op function (generated list)
from .gradcheck import GradcheckError, gradcheck
from .graph import CaptureError, CaptureWarning, Graph, capture, placeholder
from . import passes
from . import data, io, optim, text, train
from .io import load, save
from . import nn, losses
from . import onnx, tensorboard   # the onnx and tensorboard packages are imported when used
from .draw import draw_attention, draw_memory, draw_history, draw_filters, draw_feature_maps, Drawing
if TYPE_CHECKING:
    from .draw.api import draw   # for type checkers: tg.draw(...) is draw()
else:
    from . import draw           # at run time the package, callable as draw()

float32 = "float32"
float64 = "float64"

__version__ = "0.1.0"
