"""The op table: every op declared once, its forward beside its VJPs.

Read `registry` first (how an op is declared and what a declaration gives),
then the ops by kind; docs/declaring-ops.md is the how-to.
"""
from __future__ import annotations

from types import SimpleNamespace

from .registry import OPS, Axis, Decl, Op, OpTable, all_ops, defop, public  # noqa: F401

# ---------------------------------------------------------------------------
# The files of ops, by kind. A new file of ops is imported here (and only
# here); its declarations register themselves in OPS when it is imported.
from .elementwise import *  # noqa: F401,F403,E402
from .reductions import *  # noqa: F401,F403,E402
from .indexing import *  # noqa: F401,F403,E402
from .linalg import *  # noqa: F401,F403,E402
from .shape import *  # noqa: F401,F403,E402
from .inplace import *  # noqa: F401,F403,E402
# >>> new op files go here, e.g. `from .trigonometric import *  # noqa: F401,F403,E402`
from .math import *  # noqa: F401,F403,E402
from .arrays import *  # noqa: F401,F403,E402
from .algebra import *  # noqa: F401,F403,E402
from .creation import *  # noqa: F401,F403,E402
from .random import *  # noqa: F401,F403,E402
from .conv import *  # noqa: F401,F403,E402
from .pooling import *  # noqa: F401,F403,E402
from .normalization import *  # noqa: F401,F403,E402
# <<<
# ---------------------------------------------------------------------------

# After the star imports: each kind file binds `defop`/`public` to the core
# table's; the package exports the generic ones (table=None by default).
from .registry import OPS, Axis, Decl, Op, OpTable, all_ops, defop, public  # noqa: E402,F401,F811
from . import dispatch as _dispatch  # noqa: E402
from .registry import with_scalar as _with_scalar  # noqa: E402
from .. import _tensor_api  # noqa: E402
from ..tensor import Tensor as _Tensor, record as _record  # noqa: E402

_dispatch.build()


def _bind() -> None:
    """Give the generated Tensor methods (tensorgraph/_tensor_api.py) what
    they call: the declared functions and the ops behind fast operators."""
    fns = {d.function.__name__: d.function for d in OPS.decls}
    names = {"_f": SimpleNamespace(**fns), "_record": _record, "_with_scalar": _with_scalar,
             "_Tensor": _Tensor, "_dispatch": _dispatch}
    for d in OPS.decls:
        if d.operators and d.op is not None:
            names[f"_op_{d.op.name}"] = d.op
    vars(_tensor_api).update(names)


_bind()
