"""Methods, operators and numpy dispatch for the ops of ops_math, ops_arrays
and ops_linalg (interim: the one-declaration op API will generate these)."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import ops as _ops
from .creation import ones_like, zeros_like
from .ops_arrays import diag, diagonal, repeat, roll, sort, tile
from .ops_linalg import cross, einsum, inner, norm, trace
from .ops_math import (arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh, ceil, cos, cosh,
                       cumsum, exp2, expm1, floor, floor_divide, fmax, fmin, hypot, log1p, log2,
                       log10, logaddexp, mod, prod, reciprocal, round, sin, sinc, sinh, square, std,
                       tan)
from .tensor import Tensor

_UFUNCS = {
    np.sin: sin, np.cos: cos, np.tan: tan, np.sinh: sinh, np.cosh: cosh, np.arcsin: arcsin,
    np.arccos: arccos, np.arctan: arctan, np.arctan2: arctan2, np.arcsinh: arcsinh,
    np.arccosh: arccosh, np.arctanh: arctanh, np.log2: log2, np.log10: log10, np.log1p: log1p,
    np.exp2: exp2, np.expm1: expm1, np.square: square, np.reciprocal: reciprocal,
    np.hypot: hypot, np.logaddexp: logaddexp, np.remainder: mod, np.fmax: fmax, np.fmin: fmin,
    np.floor: floor, np.ceil: ceil, np.floor_divide: floor_divide,
}
_FUNCTIONS = {
    np.sinc: sinc, np.round: round, np.around: round, np.repeat: repeat, np.tile: tile,
    np.roll: roll, np.trace: trace, np.diag: diag, np.diagonal: diagonal, np.inner: inner,
    np.cross: cross, np.sort: sort, np.std: std, np.prod: prod, np.cumsum: cumsum,
    np.einsum: einsum, np.linalg.norm: norm, np.zeros_like: zeros_like, np.ones_like: ones_like,
}


def _install() -> None:
    _ops._UFUNCS.update(_UFUNCS)
    _ops._FUNCTIONS.update(_FUNCTIONS)
    T: Any = Tensor
    for fn in (sin, cos, tan, sinh, cosh, arcsin, arccos, arctan, arcsinh, arccosh, arctanh,
               log2, log10, log1p, exp2, expm1, square, reciprocal, floor, ceil, round, std,
               prod, cumsum, repeat, tile, roll, trace, diagonal, diag, sort, sinc, inner, cross,
               norm):
        setattr(T, fn.__name__, fn)
    T.__mod__ = lambda self, o: _ops._binary(_math.MOD, self, o)
    T.__rmod__ = lambda self, o: _ops._binary(_math.MOD, o, self)
    T.__floordiv__ = lambda self, o: _ops._binary(_math.FLOOR_DIVIDE, self, o)
    T.__rfloordiv__ = lambda self, o: _ops._binary(_math.FLOOR_DIVIDE, o, self)
    T.__round__ = lambda self, ndigits=None: round(self, 0 if ndigits is None else ndigits)


from . import ops_math as _math  # noqa: E402

_install()
