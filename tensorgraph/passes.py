"""Graph passes: rewrite a captured program into a smaller one that computes
the same outputs, bit for bit.

These are the passes every graph compiler starts with (TensorFlow's Grappler,
`torch.compile`'s FX passes, XLA); here each is a plain function from `Graph`
to `Graph`, small enough to read, and `tg.draw` shows the graph before and
after:

- `eliminate_dead_code`: drop the nodes no output needs (a branch computed
  and never returned, a loss computed in an inference function).
- `eliminate_common_subexpressions`: the same op on the same inputs with equal
  attributes is computed once (``x @ w`` written twice); equal constants (the
  two 2.0 of ``x * 2.0 + y * 2.0``) become one.
- `fold_constants`: an op whose inputs are all constants is computed now and
  becomes a constant (``np.sqrt(2.0) * x`` keeps one multiplication).
- `optimize`: all three, in an order that leaves nothing for another round.

>>> g = tg.capture(f, tg.placeholder((None, 784)))
>>> small = tensorgraph.passes.optimize(g)
>>> print(small)                     # the listing, shorter
>>> tg.draw(g); tg.draw(small)       # the picture before and after
>>> np.array_equal(g(x).data, small(x).data)
True

Bit for bit: a folded constant is computed by the op's own `forward`, the
function the replay would call on the same arrays, and a merged node by the
same op on the same arrays; nothing is reassociated or simplified
algebraically (``x * 1`` stays), since that could change the last bit.

What a pass never touches: an op that is not pure, i.e. that draws random
numbers or changes state (dropout's mask, an assignment). Two dropout masks
are not one, a mask is not a constant, and an update no output reads is no
dead code. `is_pure(op)` decides from the op's declaration: a registry `Op`
says `random=True` when it draws (`dropout_mask`, `randn`) and `effect=True`
when it writes state (`assign`, an optimizer's `apply_adam`). Names decide
nothing: an op called "bernoulli" declared without a flag is pure.

An effect op also orders the program: it writes its first input (a
parameter, an optimizer buffer) in place, and the reads recorded after it
take its output, not the parameter, so no pass can move a later read before
it or merge it with an earlier read of the old value. Passes keep the order
of the nodes, which is the order they were recorded in.

The input graph is left unchanged: every kept node is a new `GraphNode` with
a new output `Value` (its inputs may be rewired, and a node belongs to one
graph); inputs, parameters and constants are shared, as passes never change
a leaf.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from .graph import Graph, GraphNode, Value

__all__ = ["eliminate_dead_code", "eliminate_common_subexpressions", "fold_constants",
           "optimize", "is_pure"]


def is_pure(op: Any) -> bool:
    """Whether `op` always gives the same output for the same inputs and
    attributes and does nothing else: only then may a pass merge, fold or
    drop it. Read from the declaration's flags (`defop(..., random=True)`,
    `effect=True`); an op-like object without them is pure."""
    # a replay must draw (or change state) every time
    return not (getattr(op, "random", False) or getattr(op, "effect", False))


# ---------------------------------------------------------------------------
# Rebuilding

class _Rebuild:
    """A new graph built node by node from an old one: `use` maps each old
    value to the value that replaces it (a leaf maps to itself)."""

    def __init__(self, g: Graph) -> None:
        self.g = g
        self.map: dict[int, Value] = {}
        self.nodes: list[GraphNode] = []

    def use(self, v: Value) -> Value:
        return self.map.get(id(v), v)

    def copy(self, node: GraphNode, inputs: list[Value]) -> Value:
        """A copy of `node` on `inputs`, with a fresh output value."""
        old = node.output
        out = Value(old.name, old.shape, old.dtype, "op")
        new = GraphNode(node.name, node.op, inputs, node.attrs, out, node.scope)
        out.node = new
        self.nodes.append(new)
        self.map[id(old)] = out
        return out

    def graph(self) -> Graph:
        return self.g.copy_with(nodes=self.nodes, outputs=[self.use(v) for v in self.g.outputs])


def _check(g: Any, name: str) -> Graph:
    if not isinstance(g, Graph):
        raise TypeError(f"{name}: expected a tg.Graph (from tg.capture), got {type(g).__name__}")
    return g


# ---------------------------------------------------------------------------
# Dead-code elimination

def eliminate_dead_code(g: Graph) -> Graph:
    """Keep only the nodes some output needs, found by one walk back from the
    outputs (nodes are in topological order, so each node is seen after
    every node that uses it). Impure nodes are kept: their effect is the
    point. Constants and parameters only dead nodes used go with them;
    inputs stay (they are the graph's signature: the replay takes them)."""
    _check(g, "eliminate_dead_code")
    live = {id(v) for v in g.outputs}
    keep = []
    for node in reversed(g.nodes):
        if id(node.output) in live or not is_pure(node.op):
            keep.append(node)
            live.update(id(v) for v in node.inputs)
    r = _Rebuild(g)
    for node in reversed(keep):
        r.copy(node, [r.use(v) for v in node.inputs])
    out = r.graph()
    out.parameters = {k: v for k, v in out.parameters.items() if id(v) in live}
    return out


# ---------------------------------------------------------------------------
# Common-subexpression elimination

def attr_key(v: Any) -> Any:
    """A hashable key equal for two attribute values exactly when an op
    treats them alike. Plain `==` will not do: arrays compare elementwise,
    `1 == 1.0 == True` (but `x[1]` and `x[True]` differ), `0.0 == -0.0` and
    `nan != nan`. So the key carries each value's type, and arrays their
    dtype, shape and bytes."""
    if isinstance(v, np.ndarray):
        return ("ndarray", v.dtype.str, v.shape, np.ascontiguousarray(v).tobytes())
    if isinstance(v, np.generic):
        return ("scalar", v.dtype.str, v.tobytes())
    if isinstance(v, float):
        return ("float", v.hex())
    if isinstance(v, (tuple, list)):
        return (type(v).__name__, tuple(attr_key(x) for x in v))
    if isinstance(v, slice):
        return ("slice", attr_key(v.start), attr_key(v.stop), attr_key(v.step))
    if isinstance(v, dict):
        return ("dict", tuple(sorted((repr(k), attr_key(x)) for k, x in v.items())))
    if isinstance(v, np.dtype):
        return ("dtype", v.str)
    if v is None or v is Ellipsis or isinstance(v, (bool, int, str, complex, type)):
        return (type(v).__name__, v)
    # Anything else (a function, an object) is equal only to itself.
    return ("object", id(v))


def _const_key(v: Value) -> Any:
    a = np.asarray(v.value)
    return (a.dtype.str, a.shape, np.ascontiguousarray(a).tobytes())


def eliminate_common_subexpressions(g: Graph) -> Graph:
    """Compute each distinct (op, inputs, attributes) once. Constants with
    the same dtype, shape and bytes are merged first, so that ``x * 2.0``
    written twice (two 2.0 leaves) is one multiplication. One pass in
    topological order suffices: a node's inputs are already merged when it
    is seen, so duplicates of duplicates merge too. ``a + b`` and ``b + a``
    stay apart: given two NaNs, the hardware returns the first one's
    payload, so they may differ in their bits."""
    _check(g, "eliminate_common_subexpressions")
    r = _Rebuild(g)
    consts: dict[Any, Value] = {}
    for c in g.constants:
        r.map[id(c)] = consts.setdefault(_const_key(c), c)
    seen: dict[Any, Value] = {}
    for node in g.nodes:
        inputs = [r.use(v) for v in node.inputs]
        if not is_pure(node.op):
            r.copy(node, inputs)
            continue
        # The Op object itself (not its name): two tables may share a name.
        key = (node.op, tuple(id(v) for v in inputs), attr_key(node.attrs))
        if key in seen:
            r.map[id(node.output)] = seen[key]
        else:
            seen[key] = r.copy(node, inputs)
    return r.graph()


# ---------------------------------------------------------------------------
# Constant folding

def _forward(op: Any, arrays: list[np.ndarray], attrs: dict[str, Any]) -> np.ndarray:
    """What the replay computes for one node (same call, same post-processing)."""
    out = op.forward(*arrays, **attrs)
    if op.saves:
        out = out[0]
    return out if type(out) is np.ndarray else np.asarray(out)


def fold_constants(g: Graph, max_elements: Optional[int] = 1 << 20) -> Graph:
    """Replace each pure op whose inputs are all constants (or folded
    already) by a constant holding its output, computed now by the op's
    own forward. The constant keeps the node's name. Ops without inputs are
    left alone (a pure one is rare, and a random one must not be frozen);
    so is a result of more than `max_elements` elements (None: no limit),
    since broadcasting a scalar constant to a large shape would trade one
    cheap op for a large array in the graph. An op whose forward raises is
    left as it is, to raise at replay as it would have."""
    _check(g, "fold_constants")
    r = _Rebuild(g)
    for node in g.nodes:
        inputs = [r.use(v) for v in node.inputs]
        if inputs and is_pure(node.op) and all(v.kind == "constant" for v in inputs):
            try:
                out = _forward(node.op, [np.asarray(v.value) for v in inputs], node.attrs)
            except Exception:  # noqa: BLE001 - the replay raises it, with its message
                out = None
            if out is not None and (max_elements is None or out.size <= max_elements):
                # Read-only, so that a replay returning it cannot have it changed
                # (unless it is an input's own array, whose flags are not ours).
                if out.flags.writeable and not any(out is v.value for v in inputs):
                    out.flags.writeable = False
                old = node.output
                r.map[id(old)] = Value(old.name, out.shape, out.dtype, "constant", value=out)
                continue
        r.copy(node, inputs)
    return r.graph()


# ---------------------------------------------------------------------------

#: The passes of `optimize`, in order: dead code first (nothing is folded in
#: vain), folding before CSE (folded constants that come out equal merge),
#: and dead code last (the constants folding replaced, the copies CSE dropped).
PIPELINE: tuple[Callable[[Graph], Graph], ...] = (
    eliminate_dead_code, fold_constants, eliminate_common_subexpressions, eliminate_dead_code)


def optimize(g: Graph) -> Graph:
    """All three passes; a second round would change nothing (CSE and dead
    code elimination make no new constant inputs, and folding makes no new
    duplicates that CSE has not merged)."""
    _check(g, "optimize")
    for p in PIPELINE:
        g = p(g)
    return g
