"""The recorded graph as a program: capture a function once, replay it fast.

`tg.capture(fn, *example_inputs)` runs `fn` once while every op that goes
through `tensor.record` is also written into a `Graph` (whatever
`requires_grad` and `no_grad` say: comparisons, integer ops and the condition
of a `where` are ops too). Every leaf is tagged:

- input      an example input or `tg.placeholder`, fed at each call;
- parameter  a leaf that requires grad (a `Parameter`, the book's variable),
             read by reference at each call, so training updates take effect;
- constant   anything else (a Python scalar, an array made inside `fn`): its
             value is frozen into the graph.

`g(*inputs)` replays the op list on numpy arrays (each op's `forward`, the
same function eager mode runs), without a Tensor or Node per op, and frees
each intermediate array after its last use. Like tracing in PyTorch, capture
records the one path Python control flow took; where a captured value decides
that flow (`bool(t)`, `float(t)`, `t.item()`) a `CaptureWarning` names the line.

The types (`Value`, `GraphNode`, `Graph`) are the contract the graph passes,
the ONNX exporter and the renderer build on; GRAPH_API.md is the how-to.
"""
from __future__ import annotations

import inspect
import os
import sys
import warnings
from typing import Any, Callable, Optional, Sequence

import numpy as np

from . import tensor as _tensor_mod
from .tensor import Tensor, _default_array, _new

__all__ = ["Value", "GraphNode", "Graph", "Placeholder", "placeholder", "capture",
           "CaptureWarning", "CaptureError"]

Shape = tuple[Optional[int], ...]
KINDS = ("input", "parameter", "constant", "op")


class CaptureWarning(UserWarning):
    """A captured value decided Python control flow: the replay will not re-decide it."""


class CaptureError(RuntimeError):
    """Something `fn` did cannot be captured (e.g. an in-place write no op recorded)."""


class Value:
    """One array-valued result or leaf of a Graph.

    name    unique in the graph ("x", "layers.0.weight", "matmul_3")
    shape   None marks a size left open (the batch)
    kind    "input" | "parameter" | "constant" | "op"
    node    the GraphNode computing it (kind "op"), else None
    tensor  kind "parameter": the Parameter, read by reference at each call
    value   kind "constant": the frozen array
    """

    __slots__ = ("name", "shape", "dtype", "kind", "node", "tensor", "value")

    def __init__(self, name: str, shape: Shape, dtype: Any, kind: str,
                 node: Optional["GraphNode"] = None, tensor: Optional[Tensor] = None,
                 value: Optional[np.ndarray] = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"Value: kind must be one of {KINDS}, got {kind!r}")
        self.name = name
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.kind = kind
        self.node = node
        self.tensor = tensor
        self.value = value

    def __repr__(self) -> str:
        return f"<Value {self.name} {self.kind} {_fmt_shape(self.shape)} {self.dtype}>"


class GraphNode:
    """One op application: `output = op.forward(*inputs, **attrs)`."""

    __slots__ = ("name", "op", "inputs", "attrs", "output", "scope")

    def __init__(self, name: str, op: Any, inputs: Sequence[Value], attrs: dict[str, Any],
                 output: Value, scope: tuple[str, ...] = ()) -> None:
        self.name = name
        self.op = op
        self.inputs = list(inputs)
        self.attrs = dict(attrs)
        self.output = output
        self.scope = tuple(scope)

    def __repr__(self) -> str:
        return f"<GraphNode {self.name} = {self.op.name}({', '.join(v.name for v in self.inputs)})>"


class Placeholder:
    """An input of a captured graph: a shape (None = open size) and a dtype."""

    __slots__ = ("shape", "dtype", "name")

    def __init__(self, shape: Sequence[Optional[int]], dtype: Any = "float32",
                 name: Optional[str] = None) -> None:
        shape = tuple(shape)
        for s in shape:
            if s is not None and (not isinstance(s, (int, np.integer)) or isinstance(s, bool)
                                  or s < 0):
                raise ValueError(f"placeholder: sizes must be non-negative ints or None, "
                                 f"got shape {shape}")
        self.shape: Shape = tuple(None if s is None else int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.name = name

    def __repr__(self) -> str:
        return f"placeholder({_fmt_shape(self.shape)}, {self.dtype}" + \
            (f", name={self.name!r})" if self.name else ")")


def placeholder(shape: Sequence[Optional[int]], dtype: Any = "float32",
                name: Optional[str] = None) -> Placeholder:
    """An input fed at each replay: `tg.placeholder((None, 784))` leaves the batch open."""
    return Placeholder(shape, dtype, name)


# ---------------------------------------------------------------------------
# Output structure: fn's return value with each Tensor replaced by a slot.

class _Slot:
    __slots__ = ("i",)

    def __init__(self, i: int) -> None:
        self.i = i


def _flatten(obj: Any, leaves: list[Any]) -> Any:
    if isinstance(obj, Tensor):
        leaves.append(obj)
        return _Slot(len(leaves) - 1)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):           # namedtuple
        return type(obj)(*[_flatten(v, leaves) for v in obj])
    if isinstance(obj, (tuple, list)):
        return type(obj)(_flatten(v, leaves) for v in obj)
    if isinstance(obj, dict):
        return type(obj)((k, _flatten(v, leaves)) for k, v in obj.items())
    return obj


def _unflatten(spec: Any, arrays: Sequence[np.ndarray]) -> Any:
    if type(spec) is _Slot:
        return _new(arrays[spec.i])
    if isinstance(spec, tuple) and hasattr(spec, "_fields"):
        return type(spec)(*[_unflatten(v, arrays) for v in spec])
    if isinstance(spec, (tuple, list)):
        return type(spec)(_unflatten(v, arrays) for v in spec)
    if isinstance(spec, dict):
        return type(spec)((k, _unflatten(v, arrays)) for k, v in spec.items())
    return spec


# ---------------------------------------------------------------------------
class Graph:
    """A captured program: inputs, parameters, constants, nodes in topological
    order, outputs. Call it to replay; print it for a listing."""

    def __init__(self, inputs: Sequence[Value], outputs: Sequence[Value],
                 nodes: Sequence[GraphNode], parameters: Optional[dict[str, Value]] = None,
                 constants: Optional[Sequence[Value]] = None, structure: Any = None,
                 name: str = "graph") -> None:
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.nodes = list(nodes)
        if parameters is None:
            parameters = {v.name: v for v in self._leaves("parameter")}
        self.parameters = dict(parameters)
        self.constants = list(constants) if constants is not None else self._leaves("constant")
        # fn's return structure; default: one output alone, several as a tuple
        if structure is None:
            structure = _Slot(0) if len(self.outputs) == 1 else \
                tuple(_Slot(i) for i in range(len(self.outputs)))
        self.structure = structure
        self.name = name
        self._plan: Optional[tuple[Any, ...]] = None

    def _leaves(self, kind: str) -> list[Value]:
        """Values of `kind` used by the nodes or returned, in first-use order."""
        seen: dict[int, Value] = {}
        for n in self.nodes:
            for v in n.inputs:
                if v.kind == kind:
                    seen.setdefault(id(v), v)
        for v in self.outputs:
            if v.kind == kind:
                seen.setdefault(id(v), v)
        return list(seen.values())

    def copy_with(self, nodes: Optional[Sequence[GraphNode]] = None,
                  outputs: Optional[Sequence[Value]] = None) -> "Graph":
        """A new Graph with the same inputs, parameters and return structure
        and the given nodes (topological order) and/or outputs; constants are
        those the new nodes and outputs use. What graph passes build on."""
        outs = list(self.outputs if outputs is None else outputs)
        if len(outs) != len(self.outputs):
            raise ValueError(f"copy_with: the graph returns {len(self.outputs)} values, "
                             f"got {len(outs)} outputs")
        g = Graph(self.inputs, outs, self.nodes if nodes is None else nodes,
                  parameters=self.parameters, structure=self.structure, name=self.name)
        return g

    # -- the listing ----------------------------------------------------------
    def __str__(self) -> str:
        ins = ", ".join(f"{v.name}: {v.dtype}{_fmt_shape(v.shape)}" for v in self.inputs)
        lines = [f"{self.name}({ins}):"]
        rows: list[tuple[str, ...]] = []
        for v in self.parameters.values():
            rows.append((v.name, "parameter", "", "", _fmt_shape(v.shape), str(v.dtype), ""))
        for v in self.constants:
            rows.append((v.name, "constant", _fmt_const(v.value), "", _fmt_shape(v.shape),
                         str(v.dtype), ""))
        for n in self.nodes:
            args = ", ".join(v.name for v in n.inputs)
            attrs = ", ".join(f"{k}={_fmt_attr(a)}" for k, a in n.attrs.items())
            rows.append((n.output.name, n.op.name, attrs, f"({args})",
                         _fmt_shape(n.output.shape), str(n.output.dtype),
                         "/".join(n.scope)))
        widths = [max((len(r[i]) for r in rows), default=0) for i in range(7)]
        for name, op, attrs, args, shape, dtype, scope in rows:
            call = f"{op}{args}" + (f" [{attrs}]" if attrs else "")
            if op in ("parameter", "constant"):
                call = op + (f" = {attrs}" if attrs else "")
            lines.append(f"  {name.ljust(widths[0])} = {call.ljust(widths[1] + widths[2] + widths[3] + 3)}"
                         f"  {shape.ljust(widths[4])} {dtype.ljust(widths[5])}"
                         + (f"  {scope}" if scope else "").rstrip())
        lines.append(f"  return {_fmt_structure(self.structure, self.outputs)}")
        return "\n".join(line.rstrip() for line in lines)

    def __repr__(self) -> str:
        return (f"<Graph {self.name}: {len(self.inputs)} inputs, {len(self.parameters)} "
                f"parameters, {len(self.constants)} constants, {len(self.nodes)} nodes, "
                f"{len(self.outputs)} outputs>")

    # -- replay ---------------------------------------------------------------
    def _compile(self) -> tuple[Any, ...]:
        """The replay plan: a slot per value, each step (forward, input slots,
        attrs, output slot, saves, slots to free after it)."""
        slot: dict[int, int] = {}

        def s(v: Value) -> int:
            if id(v) not in slot:
                slot[id(v)] = len(slot)
            return slot[id(v)]
        in_slots = [s(v) for v in self.inputs]
        param_slots = [(s(v), v) for v in self.parameters.values()]
        const_slots = [(s(v), v.value) for v in self.constants]
        last: dict[int, int] = {}
        for k, n in enumerate(self.nodes):
            for v in n.inputs:
                if id(v) not in slot:
                    if v.kind == "op":
                        raise ValueError(f"Graph: node {n.name!r} uses {v.name!r} before any "
                                         "node computes it (nodes must be in topological order)")
                    raise ValueError(f"Graph: node {n.name!r} uses {v.kind} {v.name!r}, which "
                                     f"is not among the graph's {v.kind}s")
                last[slot[id(v)]] = k
            s(n.output)
            last.setdefault(slot[id(n.output)], k)
        for v in self.outputs:
            if id(v) not in slot:
                raise ValueError(f"Graph: output {v.name!r} is computed by no node and is no "
                                 "input, parameter or constant of the graph")
        keep = {slot[id(v)] for v in self.outputs} | set(in_slots) | \
            {i for i, _ in param_slots} | {i for i, _ in const_slots}
        frees: list[list[int]] = [[] for _ in self.nodes]
        for i, k in last.items():
            if i not in keep:
                frees[k].append(i)
        steps = tuple((n.op.forward, tuple(slot[id(v)] for v in n.inputs), n.attrs,
                       slot[id(n.output)], bool(n.op.saves), tuple(frees[k]))
                      for k, n in enumerate(self.nodes))
        env = [None] * len(slot)
        for i, val in const_slots:
            env[i] = val
        out_slots = tuple(slot[id(v)] for v in self.outputs)
        return env, tuple(in_slots), tuple(param_slots), steps, out_slots

    def __call__(self, *inputs: Any) -> Any:
        """Replay on new inputs (arrays, Tensors, numbers); returns fn's structure."""
        if len(inputs) != len(self.inputs):
            names = ", ".join(v.name for v in self.inputs)
            raise TypeError(f"{self.name}: expected {len(self.inputs)} input"
                            f"{'s' if len(self.inputs) != 1 else ''} ({names}), "
                            f"got {len(inputs)}")
        if self._plan is None:
            self._plan = self._compile()
        template, in_slots, param_slots, steps, out_slots = self._plan
        env = list(template)
        for i, v, x in zip(in_slots, self.inputs, inputs):
            env[i] = _check_input(self.name, v, x)
        for i, v in param_slots:
            env[i] = v.tensor._data       # by reference: updates take effect
        ndarray, asarray = np.ndarray, np.asarray
        for fwd, ins, attrs, out, saves, frees in steps:
            if len(ins) == 1:
                r = fwd(env[ins[0]], **attrs)
            elif len(ins) == 2:
                r = fwd(env[ins[0]], env[ins[1]], **attrs)
            else:
                r = fwd(*[env[i] for i in ins], **attrs)
            if saves:
                r = r[0]
            env[out] = r if type(r) is ndarray else asarray(r)
            for f in frees:
                env[f] = None
        return _unflatten(self.structure, [env[i] for i in out_slots])


def _check_input(gname: str, v: Value, x: Any) -> np.ndarray:
    """x as an array matching placeholder v, or an error naming both."""
    if isinstance(x, Tensor):
        a = x._data
    elif isinstance(x, np.ndarray):
        a = x
    else:
        try:
            a = _default_array(x)
        except TypeError as e:
            raise TypeError(f"{gname}: input {v.name!r}: {e}") from None
    expected = f"expected shape {_fmt_shape(v.shape)} {v.dtype}"
    given = f"got shape {_fmt_shape(a.shape)} {a.dtype}"
    if a.ndim != len(v.shape):
        raise ValueError(f"{gname}: input {v.name!r} has rank {a.ndim}, expected rank "
                         f"{len(v.shape)}: {expected}, {given}")
    for k, (want, have) in enumerate(zip(v.shape, a.shape)):
        if want is not None and want != have:
            raise ValueError(f"{gname}: input {v.name!r} has size {have} in dimension {k}, "
                             f"expected {want}: {expected}, {given}")
    if a.dtype != v.dtype:
        raise TypeError(f"{gname}: input {v.name!r} has dtype {a.dtype}, expected {v.dtype}: "
                        f"{expected}, {given}")
    return a


# ---------------------------------------------------------------------------
# Formatting

def _fmt_shape(shape: Sequence[Optional[int]]) -> str:
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def _fmt_const(a: Optional[np.ndarray]) -> str:
    if a is None:
        return ""
    if a.ndim == 0:
        return repr(a.item())
    if a.size <= 6:
        return np.array2string(np.asarray(a), separator=", ", precision=4)
    return f"<array {a.size} values>"


def _fmt_attr(a: Any) -> str:
    if isinstance(a, np.ndarray):
        return _fmt_const(a)
    if isinstance(a, np.dtype):
        return str(a)
    if isinstance(a, tuple):
        return "(" + ", ".join(_fmt_attr(x) for x in a) + ("," if len(a) == 1 else "") + ")"
    if isinstance(a, slice):
        parts = ["" if p is None else str(p) for p in (a.start, a.stop, a.step)]
        return ":".join(parts[:2] if a.step is None else parts)
    if a is Ellipsis:
        return "..."
    return repr(a)


def _fmt_structure(spec: Any, outputs: Sequence[Value]) -> str:
    if type(spec) is _Slot:
        return outputs[spec.i].name
    if isinstance(spec, tuple):
        inner = ", ".join(_fmt_structure(v, outputs) for v in spec)
        return f"({inner}{',' if len(spec) == 1 else ''})"
    if isinstance(spec, list):
        return "[" + ", ".join(_fmt_structure(v, outputs) for v in spec) + "]"
    if isinstance(spec, dict):
        return "{" + ", ".join(f"{k!r}: {_fmt_structure(v, outputs)}" for k, v in spec.items()) + "}"
    return repr(spec)
