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
the ONNX exporter and the renderer build on; docs/graphs.md is the how-to.
"""
from __future__ import annotations

import inspect
import keyword
import os
import sys
import warnings
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .tensor import Tensor, _default_array, _new, bump_version, mark_written

# The module itself (`tensorgraph.tensor` the attribute is the function tg.tensor):
# its globals `_capture` and `_scope` are read and set here.
_tensor_mod: Any = sys.modules[Tensor.__module__]

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
        self._plan: Optional[Callable[..., Any]] = None     # the replay, made at the first call

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
        rows: list[tuple[str, str, str, str, str]] = []   # name, call, shape, dtype, scope
        for v in self.parameters.values():
            rows.append((v.name, "parameter", _fmt_shape(v.shape), str(v.dtype), ""))
        for v in self.constants:
            rows.append((v.name, f"constant {_fmt_const(v.value)}", _fmt_shape(v.shape),
                         str(v.dtype), ""))
        for n in self.nodes:
            call = f"{n.op.name}({', '.join(v.name for v in n.inputs)})"
            if n.attrs:
                call += " [" + ", ".join(f"{k}={_fmt_attr(a)}" for k, a in n.attrs.items()) + "]"
            if _is_effect(n):    # an assignment: say what it writes
                call += f" -> writes {_written(n).name}"
            rows.append((n.output.name, call, _fmt_shape(n.output.shape),
                         str(n.output.dtype), "/".join(n.scope)))
        w = [max((len(r[i]) for r in rows), default=0) for i in range(4)]
        for name, call, shape, dtype, scope in rows:
            lines.append(f"  {name.ljust(w[0])} = {call.ljust(w[1])}  {shape.ljust(w[2])}  "
                         f"{dtype.ljust(w[3])}  {scope}")
        lines.append(f"  return {_fmt_structure(self.structure, self.outputs)}")
        return "\n".join(line.rstrip() for line in lines)

    def __repr__(self) -> str:
        return (f"<Graph {self.name}: {len(self.inputs)} inputs, {len(self.parameters)} "
                f"parameters, {len(self.constants)} constants, {len(self.nodes)} nodes, "
                f"{len(self.outputs)} outputs>")

    # -- replay ---------------------------------------------------------------
    def _compile(self) -> Callable[..., Any]:
        """The replay as one generated Python function: straight-line code, one
        local variable per value, each node a direct call with its attributes
        bound as keywords (no per-call dict or plan to interpret), `del` after
        a value's last use. VJP ops call their op's VJP directly; unbroadcast
        runs only when the VJP's result does not already have the input's
        shape, with the summed axes remembered per shape."""
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
        # A VJP op of a saving op (cross_entropy_vjp0) whose `out` that op computes
        # here gets the array its forward saved (the softmax), as eager backward does,
        # in a slot of its own: `saved_slot[forward node]`, freed after its last VJP.
        saved_slot: dict[int, int] = {}
        vjp_saved: dict[int, int] = {}
        for k, n in enumerate(self.nodes):
            of = getattr(n.op.forward, "vjp_of", None)
            src = n.inputs[1].node if of is not None and len(n.inputs) > 1 else None
            if src is not None and src.op is of and of.saves and "saved" not in n.attrs:
                if id(src) not in saved_slot:
                    saved_slot[id(src)] = len(slot) + len(saved_slot)
                vjp_saved[k] = saved_slot[id(src)]
                last[vjp_saved[k]] = k
        keep = {slot[id(v)] for v in self.outputs} | set(in_slots) | \
            {i for i, _ in param_slots} | {i for i, _ in const_slots}
        frees: list[list[int]] = [[] for _ in self.nodes]
        for i, k in last.items():
            if i not in keep:
                frees[k].append(i)
        return _Codegen(self).build(slot, in_slots, param_slots, const_slots, saved_slot,
                                    vjp_saved, frees)

    def __call__(self, *inputs: Any) -> Any:
        """Replay on new inputs (arrays, Tensors, numbers); returns fn's structure
        with plain Tensors (no recorded graph: a replay is not differentiated)."""
        if len(inputs) != len(self.inputs):
            names = ", ".join(v.name for v in self.inputs)
            raise TypeError(f"{self.name}: expected {len(self.inputs)} input"
                            f"{'s' if len(self.inputs) != 1 else ''} ({names}), "
                            f"got {len(inputs)}")
        run = self._plan
        if run is None:
            run = self._plan = self._compile()
        return run(*inputs)


class _Codegen:
    """Writes a Graph's replay function (`Graph._compile`). Objects the code
    calls or reads (forwards, VJPs, attributes, constants, parameters) are
    bound by name in the function's globals."""

    def __init__(self, g: Graph) -> None:
        self.g = g
        self.ns: dict[str, Any] = {"ndarray": np.ndarray, "asarray": np.asarray, "T": _new,
                                   "check": _check_input, "gname": g.name, "U": _unflatten,
                                   "getrefcount": sys.getrefcount,
                                   "bump_version": bump_version, "mark_written": mark_written}
        self.bound: dict[int, str] = {}

    def bind(self, obj: Any, prefix: str) -> str:
        name = self.bound.get(id(obj))
        if name is None:
            name = self.bound[id(obj)] = f"{prefix}{len(self.ns)}"
            self.ns[name] = obj
        return name

    def kwargs(self, attrs: dict[str, Any]) -> list[str]:
        if all(k.isidentifier() and not keyword.iskeyword(k) for k in attrs):
            return [f"{k}={self.bind(a, 'a')}" for k, a in attrs.items()]
        return [f"**{self.bind(dict(attrs), 'a')}"]

    def build(self, slot: dict[int, int], in_slots: list[int], param_slots: list[tuple[int, Value]],
              const_slots: list[tuple[int, Any]], saved_slot: dict[int, int],
              vjp_saved: dict[int, int], frees: list[list[int]]) -> Callable[..., Any]:
        g = self.g
        var: dict[int, str] = {i: f"v{i}" for i in range(len(slot) + len(saved_slot))}
        for i, val in const_slots:
            var[i] = self.bind(val, "c")
        body: list[str] = []
        for i, v in zip(in_slots, g.inputs):
            body.append(self.input_check(var[i], v))
        for i, v in param_slots:       # by reference at each call: updates take effect
            body.append(f"{var[i]} = {self.bind(v.tensor, 'p')}._data")
        vjp_index = _vjp_index()
        # Values read only by plain ufunc calls, and not returned, stay as the ufunc
        # gave them: a numpy scalar from 0-d operands computes the same in the next
        # ufunc (NEP 50), and wrapping each one in an array would double a
        # scalar chain's time.
        outputs = {id(v) for v in g.outputs}
        wrap = {id(n.output) for n in g.nodes if id(n.output) in outputs}
        for n in g.nodes:
            if not _plain_ufunc(n):
                wrap.update(id(v) for v in n.inputs)
        for k, n in enumerate(g.nodes):
            args = [var[slot[id(v)]] for v in n.inputs]
            out = var[slot[id(n.output)]]
            key = vjp_index.get(id(n.op))
            if key is not None:
                saved = var[vjp_saved[k]] if k in vjp_saved else None
                body += self.vjp_call(n, key[0], key[1], args, out, saved)
            else:
                call = f"{self.bind(n.op.forward, 'f')}({', '.join(args + self.kwargs(n.attrs))})"
                if not n.op.saves:
                    body += self.in_place(n, args, out, call, {var[i] for i in frees[k]})
                elif id(n) in saved_slot:
                    body.append(f"_r = {call}; {out} = _r[0]; {var[saved_slot[id(n)]]} = _r[1]")
                else:
                    body.append(f"{out} = {call}[0]")
            if key is not None or id(n.output) in wrap:
                # a ufunc on 0-d arrays gives a numpy scalar: eager mode wraps it too
                body.append(f"if type({out}) is not ndarray: {out} = asarray({out})")
            if frees[k]:
                body.append("del " + ", ".join(var[i] for i in frees[k]))
        # Parameters the effect nodes wrote get a new version, as an eager in-place
        # update does: backward through an eager graph recorded before this replay,
        # which saved their old values, then raises instead of using the new ones.
        written: dict[int, Any] = {}
        for n in g.nodes:
            t = _written(n).tensor if _is_effect(n) else None
            if t is not None:
                written.setdefault(id(t), t)
        for t in written.values():
            p = self.bind(t, "p")
            body.append(f"bump_version({p}); mark_written({p}._data)")
        body.append("return " + self.structure(g.structure, [
            var[slot[id(v)]] + (".copy()" if v.kind in ("constant", "parameter") or
                                _is_effect(v.node) else "")
            for v in g.outputs]))
        # outputs that are a constant, a parameter or an update of one (an effect op's
        # result is the parameter's own array) are handed out as copies (above): a
        # caller writing into a result must not reach the graph's arrays
        params = ", ".join(var[i] for i in in_slots)
        src = f"def replay({params}):\n" + "".join(f"    {line}\n" for line in body)
        code = compile(src, f"<replay of graph {g.name}>", "exec")
        exec(code, self.ns)
        run: Callable[..., Any] = self.ns["replay"]
        run.source = src  # type: ignore[attr-defined]   # for debugging: print(g._plan.source)
        return run

    def in_place(self, n: GraphNode, args: list[str], out: str, call: str,
                 freed: set[str]) -> list[str]:
        """`out = call`, or, for a plain ufunc, the ufunc written into an operand
        at its last use with the result's shape and dtype (`out=`), when at run
        time nothing else refers to that array: two references (the local and
        getrefcount's argument) and no base, so it is no view and nothing is a
        view of it (a view holds its base). A shape the operand cannot take
        after all (open sizes broadcast otherwise) raises before any write."""
        if not _plain_ufunc(n) or not n.output.shape:
            return [f"{out} = {call}"]
        for a, v in zip(args, n.inputs):
            if a in freed and v.kind == "op" and args.count(a) == 1 and \
                    v.shape == n.output.shape and v.dtype == n.output.dtype:
                f = self.bind(n.op.forward, "f")
                return [f"if type({a}) is ndarray and getrefcount({a}) == 2 and {a}.base is None:",
                        f"    try: {out} = {f}({', '.join(args)}, out={a})",
                        f"    except ValueError: {out} = {call}",
                        f"else: {out} = {call}"]
        return [f"{out} = {call}"]

    def input_check(self, name: str, v: Value) -> str:
        """Accept an ndarray of the placeholder's dtype and fixed sizes at once;
        anything else goes through `_check_input` (conversion or the error)."""
        cond = [f"type({name}) is not ndarray", f"{name}.dtype is not {self.bind(v.dtype, 'd')}",
                f"{name}.ndim != {len(v.shape)}"]
        cond += [f"{name}.shape[{k}] != {n}" for k, n in enumerate(v.shape) if n is not None]
        return (f"if {' or '.join(cond)}: "
                f"{name} = check(gname, {self.bind(v, 'V')}, {name})")

    def vjp_call(self, n: GraphNode, op: Any, i: int, args: list[str], out: str,
                 saved: Optional[str]) -> list[str]:
        """`vjp_op(op, i)`'s forward written out: the VJP, then unbroadcast and
        cast to input i's shape and dtype only when they differ."""
        vjp = op.vjps[0] if op.variadic else op.vjps[i]
        call = ([str(i)] if op.variadic else []) + args + self.kwargs(n.attrs)
        if op.saves and "saved" not in n.attrs:
            call.append(f"saved={saved if saved is not None else 'None'}")
        x, y = args[2 + i], args[1]
        ub = self.bind(_Unbroadcast(f"backward of op '{op.name}', input {i}"), "u")
        return [f"{out} = {self.bind(vjp, 'j')}({', '.join(call)})",
                f"if {out}.shape != {x}.shape: {out} = {ub}({out}, {x}.shape, {y}.shape)",
                f"if {out}.dtype != {x}.dtype: {out} = {out}.astype({x}.dtype)"]

    def structure(self, spec: Any, outs: list[str]) -> str:
        """fn's return structure as an expression building it from the outputs."""
        if type(spec) is _Slot:
            return f"T({outs[spec.i]})"
        if type(spec) is tuple:
            return "(" + "".join(self.structure(v, outs) + ", " for v in spec) + ")"
        if type(spec) is list:
            return "[" + ", ".join(self.structure(v, outs) for v in spec) + "]"
        if isinstance(spec, (tuple, list, dict)):     # namedtuple, dict and subclasses
            return f"U({self.bind(spec, 's')}, [{', '.join(outs)}])"
        return self.bind(spec, "k")


def _is_effect(n: Optional[GraphNode]) -> bool:
    """Whether node n runs an effect op (declared `effect=True`: it writes state)."""
    return n is not None and getattr(n.op, "effect", False)


def _written(n: GraphNode) -> Value:
    """The parameter (or state) an effect node writes, through earlier updates of it."""
    v = n.inputs[0]
    while _is_effect(v.node):
        v = v.node.inputs[0]
    return v


def _plain_ufunc(n: GraphNode) -> bool:
    """The node's forward is a numpy ufunc called on its inputs alone (np.add)."""
    f = n.op.forward
    return type(f) is np.ufunc and not n.attrs and not n.op.saves and f.nout == 1 and \
        f.nin == len(n.inputs)


def _vjp_index() -> dict[int, tuple[Any, int]]:
    """id(VJP op) -> (op, input index), for the VJP ops made so far."""
    from .autograd import _VJP_OPS
    return {id(vop): key for key, vop in _VJP_OPS.items()}


class _Unbroadcast:
    """`unbroadcast` for one VJP node of a replay: the first time for a given
    (gradient shape, input shape, output shape) it runs the checked
    `autograd.unbroadcast`; after that the same sum and reshape directly."""

    __slots__ = ("what", "memo")

    def __init__(self, what: str) -> None:
        self.what = what
        self.memo: dict[tuple[Any, ...], tuple[tuple[int, ...], bool]] = {}

    def __call__(self, g: Any, shape: tuple[int, ...], out_shape: tuple[int, ...]) -> Any:
        key = (g.shape, shape, out_shape)
        plan = self.memo.get(key)
        if plan is None:
            from .autograd import unbroadcast
            r = unbroadcast(g, shape, self.what, out_shape)     # checks, or raises
            lead = g.ndim - len(shape)
            axes = tuple(range(lead)) + tuple(
                lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
            summed = g.shape if not axes else tuple(
                n for k, n in enumerate(g.shape) if k not in axes)
            if len(self.memo) > 64:     # open sizes seen in turn: keep it small
                self.memo.clear()
            self.memo[key] = (axes, summed != shape)
            return r
        axes, reshape = plan
        if axes:
            g = g.sum(axis=axes)
        return g.reshape(shape) if reshape else g


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
        return np.array2string(np.asarray(a), separator=", ", precision=4, max_line_width=10**6)
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


# ---------------------------------------------------------------------------
# Capture

_OPEN_SIZE = 2       # an open size (None) is 2 while fn runs once ...
_ALT_SIZE = 3        # ... and 3 in a second, shape-only run that tells which sizes follow it


class _Recorder:
    """What `record` hands each op to during a capture (`tensor._capture`).

    Tensors are known by id; the recorder holds each one (so ids are not
    reused) with the array and in-place version it had, to notice in-place
    changes. A tensor wrapping exactly the array of a known value (`detach()`,
    the old value an in-place op reads) is that value."""

    def __init__(self, param_names: dict[int, str]) -> None:
        self.known: dict[int, tuple[Tensor, np.ndarray, int, Value]] = {}
        self.by_array: dict[int, tuple[np.ndarray, Value]] = {}
        self.nodes: list[GraphNode] = []
        self.parameters: dict[str, Value] = {}
        self.constants: list[Value] = []
        self.param_names = param_names
        self.taken: set[str] = set(param_names.values())
        self.grads_before: dict[int, tuple[Tensor, Any]] = {}

    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def register(self, t: Tensor, v: Value) -> Value:
        self.known[id(t)] = (t, t._data, getattr(t, "_version", 0), v)
        self.by_array[id(t._data)] = (t._data, v)
        return v

    def value_of(self, t: Tensor) -> Value:
        e = self.known.get(id(t))
        if e is not None:
            _, arr, version, v = e
            if t._data is arr and getattr(t, "_version", 0) == version:
                return v
            hit = self.by_array.get(id(t._data))
            if t._data is not arr and hit is not None and hit[0] is t._data:
                return self.register(t, hit[1])       # a recorded in-place op: t is its result
            raise CaptureError(
                f"capture: {v.kind} {v.name!r} (shape {t.shape}) was changed in place without "
                f"a recorded op (under no_grad, or an assignment to .data) at {_user_line()}; "
                "a replay would not repeat the change. Compute a new tensor instead (x = x + y)")
        hit = self.by_array.get(id(t._data))
        if hit is not None and hit[0] is t._data:
            return self.register(t, hit[1])
        return self.register(t, self.leaf(t))

    def leaf(self, t: Tensor) -> Value:
        """A tensor made outside the recorded ops: a parameter or a constant."""
        kind = getattr(t, "_graph_kind", None)
        if kind is None:
            kind = "parameter" if t.requires_grad and t.node is None else "constant"
        if kind == "parameter":
            name = self.param_names.get(id(t))
            if name is None or name in self.parameters:     # unnamed, or a name taken by another
                name = self.fresh(name or t.name or "param")
            v = Value(name, t.shape, t.dtype, "parameter", tensor=t)
            self.parameters[name] = v
        else:
            v = Value(self.fresh(t.name or "const"), t.shape, t.dtype, "constant",
                      value=t._data.copy())
            self.constants.append(v)
        return v

    # -- the hooks in tensor.py ------------------------------------------------
    def add(self, op: Any, args: tuple[Tensor, ...], attrs: dict[str, Any], out: Tensor) -> None:
        ins = [self.value_of(a) for a in args]
        if attrs:
            self.check_attrs(op, attrs)
        name = self.fresh(op.name)
        v = Value(name, out._data.shape, out._data.dtype, "op")
        v.node = node = GraphNode(name, op, ins, attrs, v, _tensor_mod._scope)
        self.nodes.append(node)
        self.register(out, v)

    # -- effects: assignments and optimizer updates ------------------------------
    def effect(self, op: Any, target: Tensor, args: Sequence[Tensor],
               attrs: dict[str, Any]) -> Value:
        """Record the effect op `op(*args, **attrs)`, which writes `target`
        (args[0]) in place, without running it: capture leaves parameters and
        optimizer state as they were, each replay performs the update. From
        here on `target` names the op's output (the new value), so a later
        read is ordered after the write and never merged with an earlier one."""
        ins = [self.value_of(a) for a in args]
        cur = ins[0]
        if cur.kind != "parameter" and not _is_effect(cur.node):
            raise CaptureError(
                f"capture: {op.name} writes {cur.kind} {cur.name!r} (shape {target.shape}) at "
                f"{_user_line()}; only parameters (leaves that require grad) can be updated "
                "in a captured graph")
        name = self.fresh(op.name)
        v = Value(name, cur.shape, cur.dtype, "op")
        v.node = GraphNode(name, op, ins, attrs, v, _tensor_mod._scope)
        self.nodes.append(v.node)
        self.register(target, v)
        return v

    def assign(self, op: Any, target: Tensor, new: Tensor) -> bool:
        """An unrecorded in-place change of `target` to `new`'s value (under
        no_grad): recorded as `op` (assign) when target is a parameter (or its
        updated value), and True; else False (the caller writes eagerly)."""
        e = self.known.get(id(target))
        if e is None:
            cur = self.value_of(target)          # not read before: a leaf
        elif target._data is e[1]:
            cur = e[3]
        else:
            return False                         # value_of names the problem later
        if not (cur.kind == "parameter" or _is_effect(cur.node)):
            return False
        self.effect(op, target, (target, new), {})
        return True

    def rebind(self, t: Tensor, new: Tensor) -> None:
        """`t` was changed in place to `new`'s value by an unrecorded write:
        an op value or a constant made inside fn names the new value from
        here on (the out-of-place op); an input is left to `value_of`'s error."""
        e = self.known.get(id(t))
        if e is None or e[3].kind in ("op", "constant"):
            self.register(t, self.value_of(new))

    def touch_grad(self, p: Tensor) -> None:
        """Remember `p.grad` before fn changes it (zero_grad, backward), to
        put it back after the capture: capture leaves `.grad` as it was."""
        if id(p) not in self.grads_before:
            self.grads_before[id(p)] = (p, p.grad)

    def stale_grad(self, p: Tensor) -> None:
        """backward adds to a `.grad` that holds a gradient from before the
        capture: frozen as a constant, added at every replay."""
        if self.traced(p.grad) is not None:
            return                                   # computed in fn: recorded
        v = self.value_of(p)
        self.warn(f"backward at {{where}} adds to the .grad of {v.kind} {v.name!r}, which holds "
                  "a gradient from before the capture: it is frozen into the graph as a "
                  "constant and added at every replay; call opt.zero_grad() (or set .grad = "
                  "None) inside the captured step")

    def captured(self, t: Tensor) -> bool:
        """Whether `t` is a value the graph computes or reads at each replay
        (an input, an op's result, a parameter), not a frozen constant."""
        e = self.known.get(id(t))
        if e is not None:
            return e[3].kind != "constant"
        kind = getattr(t, "_graph_kind", None)
        return kind == "parameter" or kind is None and t.requires_grad and t.node is None

    def reads(self, t: Tensor, what: str) -> None:
        """Warn: user code read a captured value's array (`.data`, `numpy()`,
        `np.asarray(t)`); what it computes from it is frozen into the graph."""
        v = self.traced(t)
        if v is not None:
            self.warn(f"{what} of {v.kind} {v.name!r} read at {{where}} is its value at capture: "
                      "whatever is computed from it is frozen into the graph as a constant, and "
                      "a replay will not read the new value; compute with the Tensor instead")

    def decides(self, t: Tensor, what: str) -> None:
        v = self.traced(t)
        if v is not None:
            self.warn(f"{what} of {v.name} ({v.kind}) decides Python control flow at {{where}}; "
                      "the replay follows the path taken now and will not re-decide it")

    def traced(self, t: Tensor) -> Optional[Value]:
        """The Value of `t` when the graph computes it (not a constant), else None."""
        e = self.known.get(id(t))
        return None if e is None or e[3].kind == "constant" else e[3]

    def warn(self, message: str) -> None:
        """A CaptureWarning at the user's line, which `{where}` in `message`
        names (else it is added at the end)."""
        filename, lineno = _user_frame()
        where = f"{filename}:{lineno}"
        text = message.replace("{where}", where) if "{where}" in message else \
            f"{message} (at {where})"
        warnings.warn_explicit(f"capture: {text}", CaptureWarning, filename, lineno)

    def check_attrs(self, op: Any, attrs: dict[str, Any]) -> None:
        """Warn when an attribute is the array of a captured input or op value
        (a Tensor index `x[idx]`): attributes are frozen into the graph."""
        for k, a in attrs.items():
            for arr in (a if isinstance(a, tuple) else (a,)):
                if type(arr) is not np.ndarray:
                    continue
                hit = self.by_array.get(id(arr))
                if hit is not None and hit[0] is arr and hit[1].kind in ("input", "op"):
                    self.warn(f"attribute {k!r} of op {op.name} at {{where}} is the value of "
                              f"{hit[1].kind} {hit[1].name!r}, frozen into the graph: the "
                              "replay will use its value at capture, not the new one")


def _user_frame() -> tuple[str, int]:
    """(file, line) of the innermost caller outside the tensorgraph package."""
    pkg = _tensor_mod._PACKAGE_DIR
    f: Any = sys._getframe(1)
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(pkg):
        f = f.f_back
    if f is None:
        return "<unknown>", 0
    return f.f_code.co_filename, f.f_lineno


def _user_line() -> str:
    return "%s:%d" % _user_frame()


def _module_of(fn: Any) -> Any:
    """The module fn is or is a bound method of (asked by duck typing: the core
    does not import nn), or None."""
    for obj in (fn, getattr(fn, "__self__", None)):
        if obj is not None and callable(getattr(obj, "named_parameters", None)):
            return obj
    return None


def _parameter_names(fn: Any, mod: Any) -> dict[int, str]:
    """id(parameter) -> its state_dict name, for the module fn is (or is bound
    to), else for the modules fn's closure or globals refer to (a lambda or a
    function calling a model): the first module that names a parameter wins.
    A function calling several models (by variable) prefixes each model's names
    with its variable's name: "enc.weight", "dec.weight"."""
    mods = [mod] if mod is not None else []
    if mod is None:
        code = getattr(fn, "__code__", None)
        free = code.co_freevars if code is not None else ()
        cells = [(n, c.cell_contents) for n, c in zip(free, getattr(fn, "__closure__", None) or ())
                 if _filled(c)]
        glob = getattr(fn, "__globals__", {})
        names = code.co_names if code is not None else ()
        named = cells + [(n, glob[n]) for n in names if n in glob]
        named = [(n, o) for n, o in named if not isinstance(o, type) and _module_of(o) is o]
        if len({id(o) for _, o in named}) > 1:
            # several models (encoder(x) then decoder(h)): their state_dict names
            # would collide ("weight"), so each is prefixed with its variable's name
            out: dict[int, str] = {}
            for var, m in named:
                for n, p in m.named_parameters():
                    out.setdefault(id(p), f"{var}.{n}")
            return out
        mods = [o for _, o in named]
    out = {}
    for m in mods:
        for n, p in m.named_parameters():
            out.setdefault(id(p), n)
    return out


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:          # a closure variable not yet assigned
        return False
    return True


def _input_names(fn: Any, n: int) -> list[str]:
    target = fn
    mod = _module_of(fn)
    if mod is fn and hasattr(fn, "forward"):
        target = fn.forward
    try:
        params = [p for p in inspect.signature(target).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params[:n]]
    return names + [f"input_{i}" for i in range(len(names), n)]


def _example_array(p: Placeholder, size: int) -> np.ndarray:
    shape = tuple(size if s is None else s for s in p.shape)
    if p.dtype.kind in "fc":
        return np.random.default_rng(0).standard_normal(shape).astype(p.dtype)
    return np.zeros(shape, dtype=p.dtype)


def capture(fn: Callable[..., Any], *example_inputs: Any) -> Graph:
    """Run `fn(*example_inputs)` once, recording every op, and return the Graph.

    Example inputs are arrays, Tensors (their shapes are fixed) or
    `placeholder(shape, dtype, name)` (None in the shape leaves a size open;
    fn then runs on a standard-normal example, zeros for integer dtypes).
    Leaves that require grad (Parameters) become parameters, read at each
    replay; other leaves (Python scalars, arrays made inside fn) constants.
    Parameters are named as in `state_dict` when fn is a Module or a Module's
    bound method."""
    if not callable(fn):
        raise TypeError(f"capture: fn must be callable, got {type(fn).__name__}")
    if _tensor_mod._capture is not None:
        raise CaptureError("capture: already capturing (capture inside capture is not supported)")
    mod = _module_of(fn)
    rec = _Recorder(_parameter_names(fn, mod))
    names = _input_names(fn, len(example_inputs))
    inputs: list[Value] = []
    args: list[Tensor] = []
    placeholders: list[Optional[Placeholder]] = []
    for i, ex in enumerate(example_inputs):
        if isinstance(ex, Placeholder):
            t = _new(_example_array(ex, _OPEN_SIZE))
            shape: Shape = ex.shape
            name = ex.name or names[i]
        elif isinstance(ex, Tensor):
            t, shape, name = ex, ex.shape, ex.name or names[i]
        else:
            try:
                t = _new(_default_array(ex))
            except TypeError as e:
                raise TypeError(f"capture: example input {i} ({names[i]}): {e}") from None
            shape, name = t.shape, names[i]
        if id(t) in rec.known:
            t = _new(t._data)            # the same Tensor given twice: two inputs
        v = Value(rec.fresh(name), shape, t.dtype, "input")
        rec.register(t, v)
        inputs.append(v)
        args.append(t)
        placeholders.append(ex if isinstance(ex, Placeholder) else None)
    _tensor_mod._capture = rec
    try:
        result = fn(*args)
    finally:
        _tensor_mod._capture = None
        for p, before in rec.grads_before.values():
            p.grad = before
    leaves: list[Tensor] = []
    structure = _flatten(result, leaves)
    outputs = [rec.value_of(t) for t in leaves]
    name = getattr(fn, "__name__", None) or type(mod if mod is not None else fn).__name__
    g = Graph(inputs, outputs, rec.nodes, parameters=rec.parameters, constants=rec.constants,
              structure=structure, name=name if name.isidentifier() else "graph")
    if any(p is not None and None in p.shape for p in placeholders):
        _open_sizes(g, placeholders)
    return g


def _open_sizes(g: Graph, placeholders: Sequence[Optional[Placeholder]]) -> None:
    """Mark as None the sizes of op values that follow an open input size:
    the ones that change when the graph runs again with open sizes 3, not 2."""
    env: dict[int, np.ndarray] = {}
    for v, p in zip(g.inputs, placeholders):
        env[id(v)] = _example_array(p, _ALT_SIZE) if p is not None else np.zeros(
            v.shape, v.dtype)  # type: ignore[arg-type]
    for v in g.parameters.values():
        env[id(v)] = v.tensor._data  # type: ignore[union-attr]
    for v in g.constants:
        env[id(v)] = v.value  # type: ignore[assignment]
    try:
        with np.errstate(all="ignore"):
            for n in g.nodes:
                if _is_effect(n):     # shapes only: the state is not written
                    env[id(n.output)] = env[id(n.inputs[0])]
                    continue
                r = n.op.forward(*[env[id(v)] for v in n.inputs], **n.attrs)
                env[id(n.output)] = np.asarray(r[0] if n.op.saves else r)
    except Exception as e:  # noqa: BLE001 - any failure means the same thing here
        warnings.warn(f"capture: {g.name} does not run with other open sizes (node {n.name!r}, "
                      f"op {n.op.name}: {e}); a replay works only with the example's sizes "
                      "where the graph fixed them", CaptureWarning, stacklevel=3)
        return
    for n in g.nodes:
        v, alt = n.output, env[id(n.output)].shape
        if len(alt) == len(v.shape):
            v.shape = tuple(None if a != b else b for a, b in zip(v.shape, alt))
