"""Graph -> ONNX model file.

Each node of the (captured) Graph is written by the rule of its op name
(`rules.RULES`); parameters and constants become initializers (parameters
keep their `state_dict` names); the inputs become graph inputs whose first
axis is the symbolic "batch" when `dynamic_batch` (and every size a
placeholder left open is symbolic anyway). ONNX's own shape inference gives
the outputs their types, `onnx.checker.check_model` must accept the result,
and the file is written atomically: a failed export leaves no file behind.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..graph import Graph, Value
from ..io import write_atomically
from ._optional import require
from .rules import REFUSED, RULES, Context, Unsupported

__all__ = ["export", "ExportError", "DEFAULT_OPSET", "MIN_OPSET"]

PathLike = Union[str, "os.PathLike[str]"]
DEFAULT_OPSET = 18
MIN_OPSET = 18        # reductions take their axes as an input from opset 18 on


class ExportError(ValueError):
    """The graph cannot be written as ONNX (an op without a rule, bad names)."""


def export(target: Any, *example_inputs: Any, path: PathLike,
           input_names: Optional[Sequence[str]] = None,
           output_names: Optional[Sequence[str]] = None,
           dynamic_batch: bool = True, opset: Optional[int] = None) -> Any:
    """Write `target` (a `tg.Graph`, or a Module or function captured first
    on `example_inputs` with `tg.capture`) to the ONNX file `path` and return
    the `onnx.ModelProto`.

    input_names / output_names  names of the model's inputs and outputs
        (default: the Graph's input names; the keys of a dict that fn
        returned, else "output" or "output_0", "output_1", ...).
    dynamic_batch  the first axis of the first input is the symbolic
        "batch", and so is that of every other input with the same size at
        capture (targets beside examples), so that the model runs at any
        batch size. Sizes a placeholder left open are symbolic anyway.
    opset  the ONNX opset (default 18; 18 and later are supported).
    """
    onnx = require("onnx", "tensorgraph.onnx.export")
    graph = _as_graph(target, example_inputs)
    opset = DEFAULT_OPSET if opset is None else opset
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ExportError(f"export: opset {opset!r} is not supported: give an int from "
                          f"{MIN_OPSET} to {newest} (the newest the installed onnx knows)")
    model = to_model(graph, onnx, opset, input_names, output_names, dynamic_batch)
    data = model.SerializeToString()
    write_atomically(os.fspath(path), lambda f: f.write(data), "export")
    return model


def _as_graph(target: Any, example_inputs: tuple[Any, ...]) -> Graph:
    if isinstance(target, Graph):
        if example_inputs:
            raise TypeError(f"export: a Graph is exported as it is; got {len(example_inputs)} "
                            f"example input(s), which only a Module or function needs")
        return target
    if not callable(target):
        raise TypeError(f"export: target must be a tg.Graph, a Module or a function, "
                        f"got {type(target).__name__}")
    import tensorgraph
    capture = getattr(tensorgraph, "capture", None)
    if capture is None:
        raise TypeError("export: this tensorgraph has no tg.capture yet; pass a tg.Graph")
    return capture(target, *example_inputs)


def _names(given: Optional[Sequence[str]], default: list[str], what: str) -> list[str]:
    if given is None:
        return default
    names = [given] if isinstance(given, str) else list(given)
    if len(names) != len(default):
        raise ExportError(f"export: {len(names)} {what} names given ({names}) for a graph with "
                          f"{len(default)} {what}s")
    for n in names:
        if not isinstance(n, str) or not n:
            raise ExportError(f"export: {what} names must be non-empty strings, got {n!r}")
    return names


def to_model(graph: Graph, onnx: Any, opset: int = DEFAULT_OPSET,
             input_names: Optional[Sequence[str]] = None,
             output_names: Optional[Sequence[str]] = None, dynamic_batch: bool = True) -> Any:
    """The `onnx.ModelProto` of `graph` (what `export` writes), checked."""
    helper = onnx.helper
    ins = _names(input_names, [v.name for v in graph.inputs], "input")
    outs = _names(output_names, [n + "_output" if n in ins else n
                                 for n in _default_output_names(graph)], "output")
    dup = sorted({n for n in ins + outs if (ins + outs).count(n) > 1})
    if dup:
        raise ExportError(f"export: input and output names must be distinct; repeated: {dup}")

    ctx = Context(onnx, set(ins) | set(outs))
    name_of: dict[int, str] = {id(v): n for v, n in zip(graph.inputs, ins)}
    for v in _leaves(graph):
        # A parameter's value now (training updates included), a constant's frozen one.
        arr = np.asarray(v.tensor.data if v.tensor is not None else v.value)
        name = ctx.fresh(v.name)
        ctx.initializers.append(onnx.numpy_helper.from_array(np.array(arr, order="C"), name))
        name_of[id(v)] = name

    for node in graph.nodes:
        where = "/".join(node.scope) or "(top level)"
        key = rule_key(node.op)
        write = RULES.get(key)
        if write is None:
            why = REFUSED.get(key, "no rule is written for it yet "
                                   "(tensorgraph.onnx.rules.RULES)")
            raise ExportError(f"export: op {node.op.name!r} (node {node.name}, scope {where}) "
                              f"has no ONNX export rule: {why}")
        ctx.prefix = "/".join(node.scope + (node.name,))
        start = len(ctx.nodes)
        try:
            result = write(ctx, node, [name_of[id(v)] for v in node.inputs])
        except Unsupported as e:
            raise ExportError(f"export: op {node.op.name!r} (node {node.name}, scope {where}) "
                              f"cannot be written as ONNX: {e}") from None
        name_of[id(node.output)] = _rename(ctx, start, result, ctx.fresh(node.output.name))

    # Outputs: the producing node writes the output name directly when it can.
    renamed: set[int] = set()
    for v, out in zip(graph.outputs, outs):
        have = name_of[id(v)]
        if v.kind == "op" and id(v) not in renamed and any(have in n.output for n in ctx.nodes):
            renamed.add(id(v))
            for n in ctx.nodes:
                n.input[:] = [out if i == have else i for i in n.input]
                n.output[:] = [out if o == have else o for o in n.output]
            name_of[id(v)] = out
        else:
            ctx.nodes.append(helper.make_node("Identity", [have], [out], name=out))

    batch = _batch_size(graph) if dynamic_batch else None
    _warn_batch_constants(graph, batch)
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype),
                                            _dims(v, n, batch))
              for v, n in zip(graph.inputs, ins)]
    outputs = [helper.make_tensor_value_info(
        n, helper.np_dtype_to_tensor_dtype(v.dtype), None) for v, n in zip(graph.outputs, outs)]
    g = helper.make_graph(ctx.nodes, getattr(graph, "name", "graph") or "graph", inputs, outputs,
                          initializer=ctx.initializers)
    import tensorgraph
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="tensorgraph", producer_version=tensorgraph.__version__)
    try:
        # Shape inference gives the outputs their types (the checker wants them).
        model = _infer_shapes(onnx, model)
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:   # a rule wrote something ONNX rejects: a bug here, said plainly
        raise ExportError(f"export: the ONNX model built from graph {getattr(graph, 'name', '')!r} "
                          f"fails onnx's checker (a bug in an export rule): {e}") from e
    return model


def _infer_shapes(onnx: Any, model: Any) -> Any:
    """onnx's shape inference, with data propagation (sizes read by Shape
    flow into Reshape) when it can: onnx's data propagation also runs on
    small 1-D float tensors and then misreads their broadcasting (a (2, 1)
    times (1, 3) Mul of unsqueezed vectors in a gradient), so without it
    when it fails."""
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def rule_key(op: Any) -> str:
    """The RULES / REFUSED key of an op: its name; for the VJP of a variadic
    op (`concat_vjp3`), `{op}_vjp`, one rule for every input."""
    of = getattr(op.forward, "vjp_of", None)
    if of is not None and of.variadic:
        return f"{of.name}_vjp"
    return op.name


def _default_output_names(graph: Graph) -> list[str]:
    """fn's dict keys when it returned a dict of Tensors; else "output", or
    "output_0", "output_1", ... for several."""
    n = len(graph.outputs)
    spec = getattr(graph, "structure", None)
    if isinstance(spec, dict) and len(spec) == n:
        slots = {getattr(v, "i", None): str(k) for k, v in spec.items()}
        if set(slots) == set(range(n)) and len(set(slots.values())) == n:
            return [slots[i] for i in range(n)]
    return ["output"] if n == 1 else [f"output_{i}" for i in range(n)]


def _leaves(graph: Graph) -> list[Value]:
    """Parameters and constants that the nodes or the outputs use, once each."""
    seen: dict[int, Value] = {}
    for n in graph.nodes:
        for v in n.inputs:
            if v.kind in ("parameter", "constant"):
                seen.setdefault(id(v), v)
    for v in graph.outputs:
        if v.kind in ("parameter", "constant"):
            seen.setdefault(id(v), v)
    return list(seen.values())


def _rename(ctx: Context, start: int, result: str, name: str) -> str:
    """Give the node's result the Graph value's name when a node of this rule
    produced it (and nothing in the rule reads it); else keep `result`."""
    mine = ctx.nodes[start:]
    for n in mine:
        if result in n.input:
            return result
    for n in mine:
        if list(n.output) == [result]:
            n.output[:] = [name]
            return name
    return result            # the rule passed an input through


def _batch_size(graph: Graph) -> Optional[int]:
    """The batch at capture: the first input's first size (None when a
    placeholder left it open, or no input has an axis)."""
    first = next((v for v in graph.inputs if v.shape), None)
    return None if first is None else first.shape[0]


def _warn_batch_constants(graph: Graph, batch: Optional[int]) -> None:
    # A constant as long as the batch along its first axis was most likely
    # computed from the example (a dropout mask in train mode): frozen, it
    # ties the model to the captured batch size.
    if batch is None or batch <= 1:
        return
    for v in _leaves(graph):
        if v.kind == "constant" and len(v.shape) >= 2 and v.shape[0] == batch:
            users = [n.name for n in graph.nodes if any(i is v for i in n.inputs)]
            warnings.warn(f"export: constant {v.name!r} of shape {v.shape} (used by "
                          f"{', '.join(users) or 'the outputs'}) has the captured batch size "
                          f"{batch} as its first axis, frozen into the model: with a symbolic "
                          f"batch the model runs only at batch {batch} (a dropout mask? capture "
                          f"in eval() mode, or pass dynamic_batch=False)", stacklevel=3)


def _dims(v: Value, name: str, batch: Optional[int]) -> list[Union[int, str]]:
    """An input's sizes for ONNX: "batch" for an open first size, and for a
    first size equal to the captured batch when `dynamic_batch`; other open
    sizes get names of their own."""
    dims: list[Union[int, str]] = []
    for i, d in enumerate(v.shape):
        if i == 0 and (d is None or (batch is not None and d == batch)):
            dims.append("batch")
        else:
            dims.append(f"{name}_dim{i}" if d is None else int(d))
    return dims
