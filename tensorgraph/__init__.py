"""tensorgraph: an autograd engine on numpy that records every computation as a
graph you can differentiate and draw.

Read the package in this order: `tensor` (the Tensor and the recorded Node),
`autograd` (the backward walk), `ops` (the op table: forward beside VJP),
`gradcheck`.
"""
from .tensor import (AnomalyError, Node, Tensor, current_scope, enable_grad, is_grad_enabled,
                     name_scope, no_grad, set_grad_enabled, tensor)
from .autograd import backward, detect_anomaly, grad, unbroadcast, walk
from .ops import (OPS, Op, abs, add, argmax, argmin, astype, broadcast_to, clip, concat, defop,
                  divide, dot, equal, exp, expand_dims, flip, getitem, greater, greater_equal,
                  leaky_relu, less, less_equal, log, log_softmax, logsumexp, matmul, max, maximum,
                  mean, min, minimum, multiply, negative, not_equal, one_hot, outer, pad, power,
                  relu, reshape, sigmoid, sign, softmax, softplus, split, sqrt, squeeze, stack,
                  subtract, sum, swapaxes, take, tanh, transpose, var, where)
from .ops_math import (arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh, around, ceil,
                       cos, cosh, cumsum, exp2, expm1, floor, floor_divide, fmax, fmin, hypot,
                       log1p, log2, log10, logaddexp, mod, prod, reciprocal, remainder, round, sin,
                       sinc, sinh, square, std, tan)
from .ops_arrays import diag, diagonal, repeat, roll, sort, tile
from .ops_linalg import cross, einsum, inner, norm, svdvals, trace
from .creation import (arange, eye, full, full_like, linspace, manual_seed, ones, ones_like, rand,
                       randn, zeros, zeros_like)
from . import ops_numpy as _ops_numpy  # noqa: F401 - installs methods and numpy dispatch
from .gradcheck import GradcheckError, gradcheck
from . import data, io, optim, train
from .io import load, save
from . import nn, losses
from .draw import draw, draw_history, Drawing

float32 = "float32"
float64 = "float64"

__version__ = "0.1.0"
