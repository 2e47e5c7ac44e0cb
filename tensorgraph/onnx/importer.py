"""ONNX model file -> Graph, for models built from the ops tensorgraph has
(one exported here, or an MLP exported by `torch.onnx.export`).

Each ONNX node becomes tensorgraph op nodes (`CONVERTERS`, by ONNX op type);
float initializers become parameters (Parameters under the initializer's
name, so a training loop can update them), others constants. Shape inputs
(Reshape's shape, axes) must be constants: they become attributes. Sizes are
found by running the converted ops on two example batches: a size that
differs is the open batch (None), as `tg.capture` does.
"""
from __future__ import annotations

import ast
import os
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ..graph import Graph, GraphNode, Value
from ..nn.module import Parameter
from ..ops import all_ops
from ._optional import require

__all__ = ["load", "OnnxLoadError", "CONVERTERS"]

PathLike = Union[str, "os.PathLike[str]"]
_BATCHES = (2, 3)       # the two example sizes of an open axis


class OnnxLoadError(ValueError):
    """The file is not a usable ONNX model (truncated, not ONNX, unknown ops)."""


class _Builder:
    """Values by ONNX name, with their example arrays at the two batch sizes."""

    def __init__(self, onnx: Any) -> None:
        self.onnx = onnx
        self.values: dict[str, Value] = {}
        # each Value's example arrays at the two batch sizes
        self._by_value: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.nodes: list[GraphNode] = []
        self.names: set[str] = set()
        self.scope: tuple[str, ...] = ()
        self.used: set[str] = set()      # names some node or the graph's outputs read
        self.where = ""
        self.shape_of: dict[int, Value] = {}   # a Shape node's Value -> the Value measured

    def fresh(self, base: str) -> str:
        base = base or "value"
        name, k = base, 1
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

    def const(self, onnx_name: str) -> np.ndarray:
        """The value of an input that must be known when loading (shapes, axes)."""
        v = self.values[onnx_name]
        if v.kind == "constant" and v.value is not None:
            return np.asarray(v.value)
        if v.kind == "parameter" and v.tensor is not None:
            return np.asarray(v.tensor.data)
        raise OnnxLoadError(f"load: {self.where}: input {onnx_name!r} must be a constant "
                            f"(an initializer or a Constant node), but it is computed")

    def op(self, opname: str, ins: list[Value], base: str, **attrs: Any) -> Value:
        """Append a node of tensorgraph op `opname`; its output's shape comes
        from the forward on both example batches (differing sizes: None)."""
        op = all_ops()[opname]
        runs = []
        for k in (0, 1):
            with np.errstate(all="ignore"):     # example values, not the user's
                out = op.forward(*[self._example(v, k) for v in ins], **attrs)
            runs.append(np.asarray(out[0] if op.saves else out))
        a, b = runs
        shape = tuple(None if da != db else da for da, db in zip(a.shape, b.shape)) \
            if a.ndim == b.ndim else a.shape
        name = self.fresh(base)
        v = Value(name, shape, a.dtype, "op")
        v.node = GraphNode(name, op, ins, attrs, v, self.scope)
        self.nodes.append(v.node)
        self._by_value[id(v)] = (a, b)
        return v

    def _example(self, v: Value, k: int) -> np.ndarray:
        return self._by_value[id(v)][k]


def load(path: PathLike) -> Graph:
    """Read the ONNX model file `path` into a `tg.Graph` that replays and draws.

    Raises `OnnxLoadError` naming the file when it is truncated or not ONNX,
    and naming every ONNX op type that has no converter."""
    onnx = require("onnx", "tensorgraph.onnx.load")
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:    # protobuf's DecodeError: truncated or not a protobuf at all
        raise OnnxLoadError(f"load: {path}: not an ONNX model, or truncated ({len(data)} bytes "
                            f"could not be parsed: {e})") from None
    _load_external_data(onnx, model, path)
    try:
        onnx.checker.check_model(model)
    except Exception as e:    # parsed as bytes, but not a valid model (an empty file, a cut graph)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise OnnxLoadError(f"load: {path}: not a valid ONNX model, or truncated "
                            f"(onnx.checker: {first})") from None
    return from_model(model, onnx, path)


def _load_external_data(onnx: Any, model: Any, path: str) -> None:
    """Weights kept beside the model (PyTorch's dynamo exporter writes
    `model.onnx.data`), read into the model's initializers."""
    helper = onnx.external_data_helper
    if not any(helper.uses_external_data(t) for t in model.graph.initializer):
        return
    try:
        helper.load_external_data_for_model(model, os.path.dirname(os.path.abspath(path)))
    except (OSError, ValueError) as e:
        raise OnnxLoadError(f"load: {path}: its weights are kept in a file beside it that cannot "
                            f"be read ({e})") from None


def from_model(model: Any, onnx: Any, where: str = "model") -> Graph:
    """The Graph of a checked `onnx.ModelProto`."""
    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    unknown = sorted({(n.domain + "." if n.domain not in ("", "ai.onnx") else "") + n.op_type
                      for n in g.node
                      if n.domain not in ("", "ai.onnx") or n.op_type not in CONVERTERS})
    if unknown:
        raise OnnxLoadError(f"load: {where}: ONNX op(s) {', '.join(unknown)} have no tensorgraph "
                            f"equivalent (tensorgraph.onnx.CONVERTERS lists the {len(CONVERTERS)} "
                            f"ONNX ops it reads)")
    b = _Builder(onnx)
    b.used = {x for n in g.node for x in n.input} | {o.name for o in g.output}
    b.where = where
    ours = model.producer_name == "tensorgraph"
    np_dtype = onnx.helper.tensor_dtype_to_np_dtype
    inits = {t.name for t in g.initializer}
    for t in g.initializer:
        arr = onnx.numpy_helper.to_array(t)
        name = b.fresh(t.name)
        if arr.dtype.kind == "f":
            v = Value(name, arr.shape, arr.dtype, "parameter", tensor=Parameter(arr.copy(), name=name))
        else:
            v = Value(name, arr.shape, arr.dtype, "constant", value=arr)
        b.values[t.name] = v
        b._by_value[id(v)] = (arr, arr)
    inputs = []
    for i in g.input:
        if i.name in inits:              # old models list initializers as inputs too
            continue
        tt = i.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
        dtype = np_dtype(tt.elem_type)
        v = Value(b.fresh(i.name), shape, dtype, "input")
        b.values[i.name] = v
        ex = [np.ones(tuple(_BATCHES[k] if d is None else d for d in shape), dtype) for k in (0, 1)]
        b._by_value[id(v)] = (ex[0], ex[1])
        inputs.append(v)
    for n in g.node:
        b.where = f"{where}: node {n.name or n.op_type!r} ({n.op_type})"
        # "/fc1/Gemm" (PyTorch) or "layers/0/matmul/MatMul" (tensorgraph: the
        # scope, the node, the ONNX op): the scope is what comes before.
        b.scope = _scope(n, ours)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        ins = [b.values[x] if x else None for x in n.input]
        out = CONVERTERS[n.op_type](b, n, ins, attrs, opset)
        b.values[n.output[0]] = out
    outputs = [b.values[o.name] for o in g.output]
    return Graph(inputs, outputs, _needed(b.nodes, outputs), name=g.name or "graph")


def _scope(n: Any, ours: bool) -> tuple[str, ...]:
    """A node's scope: the module path PyTorch's dynamo exporter writes in
    its metadata (`pkg.torch.onnx.name_scopes`: ['', 'fc1', 'linear']);
    else from the node's name, "/fc1/Gemm" (PyTorch's TorchScript exporter)
    or "layers/0/matmul/MatMul" (tensorgraph: the scope, the node, the ONNX
    op): what comes before."""
    for p in n.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                names = ast.literal_eval(p.value)
            except (ValueError, SyntaxError):
                break
            if isinstance(names, list):
                return tuple(str(x) for x in names[:-1] if x)
    parts = [p for p in n.name.split("/") if p]
    return tuple(parts[:-2] if ours else parts[:-1])


def _needed(nodes: list[GraphNode], outputs: list[Value]) -> list[GraphNode]:
    """The nodes the outputs need (a Shape read only for a Reshape's target
    leaves nodes that nothing uses once the target is an attribute)."""
    want = {id(v) for v in outputs}
    keep = []
    for node in reversed(nodes):
        if id(node.output) in want:
            keep.append(node)
            want.update(id(v) for v in node.inputs)
    return keep[::-1]


# ---------------------------------------------------------------------------
# Converters: (builder, node, input Values, attributes, opset) -> output Value

Converter = Callable[[_Builder, Any, list[Any], dict[str, Any], int], Value]
CONVERTERS: dict[str, Converter] = {}

_SAME = {"Add": "add", "Sub": "sub", "Mul": "mul", "Pow": "pow",
         "Neg": "neg", "Abs": "abs", "Exp": "exp", "Log": "log", "Sqrt": "sqrt",
         "Tanh": "tanh", "Sigmoid": "sigmoid", "Relu": "relu", "Softplus": "softplus",
         "Sin": "sin", "Cos": "cos", "Tan": "tan", "Asin": "arcsin", "Acos": "arccos",
         "Atan": "arctan", "Sinh": "sinh", "Cosh": "cosh", "Asinh": "arcsinh",
         "Acosh": "arccosh", "Atanh": "arctanh", "Floor": "floor", "Ceil": "ceil",
         "Sign": "sign", "Reciprocal": "reciprocal", "MatMul": "matmul",
         "Less": "less", "LessOrEqual": "less_equal", "Greater": "greater",
         "GreaterOrEqual": "greater_equal", "Equal": "equal", "And": "logical_and",
         "Or": "logical_or", "Not": "logical_not", "Where": "where"}


def _same(opname: str) -> Converter:
    return lambda b, n, ins, attrs, opset: b.op(opname, ins, opname)


for _type, _name in _SAME.items():
    CONVERTERS[_type] = _same(_name)


def converter(*types: str) -> Callable[[Converter], Converter]:
    def register(f: Converter) -> Converter:
        for t in types:
            CONVERTERS[t] = f
        return f
    return register


@converter("Identity")
def _identity(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    return ins[0]          # a name for the same value: no node


@converter("Max", "Min")
def _max_min(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    opname = "maximum" if n.op_type == "Max" else "minimum"
    out = ins[0]
    for v in ins[1:]:                    # ONNX's are variadic
        out = b.op(opname, [out, v], opname)
    return out if len(ins) > 1 else b.op("clone", [out], "clone")


@converter("Div")
def _div(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    if ins[0].dtype.kind not in "iu":
        return b.op("div", ins, "div")
    # ONNX divides integers truncating toward zero; floor_divide floors: add 1
    # where the division is inexact and the signs differ.
    q = b.op("floor_divide", ins, "floor_divide")
    zero = _scalar(b, 0, ins[0].dtype)
    inexact = b.op("not_equal", [b.op("mod", ins, "mod"), zero], "not_equal")
    signs = b.op("not_equal", [b.op("less", [ins[0], zero], "less"),
                               b.op("less", [ins[1], zero], "less")], "not_equal")
    up = b.op("logical_and", [inexact, signs], "logical_and")
    return b.op("where", [up, b.op("add", [q, _scalar(b, 1, q.dtype)], "add"), q], "where")


@converter("LeakyRelu")
def _leaky_relu(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    return b.op("leaky_relu", ins, "leaky_relu", negative_slope=float(attrs.get("alpha", 0.01)))


@converter("Clip")
def _clip(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    lo, hi = attrs.get("min"), attrs.get("max")          # opset < 11: attributes
    if len(ins) > 1 and ins[1] is not None:
        lo = b.const(n.input[1]).item()
    if len(ins) > 2 and ins[2] is not None:
        hi = b.const(n.input[2]).item()
    return b.op("clip", ins[:1], "clip", lo=lo, hi=hi)


@converter("Gemm")
def _gemm(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    # alpha·A'·B' + beta·C: PyTorch writes nn.Linear as Gemm with transB = 1.
    a, w = ins[0], ins[1]
    if attrs.get("transA", 0):
        a = b.op("transpose", [a], "transpose", axes=(1, 0))
    if attrs.get("transB", 0):
        w = b.op("transpose", [w], "transpose", axes=(1, 0))
    out = b.op("matmul", [a, w], "matmul")
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    if alpha != 1.0:
        out = b.op("mul", [out, _scalar(b, alpha, out.dtype)], "mul")
    if len(ins) > 2 and ins[2] is not None:
        c = ins[2] if beta == 1.0 else b.op("mul", [ins[2], _scalar(b, beta, out.dtype)], "mul")
        out = b.op("add", [out, c], "add")
    return out


def _scalar(b: _Builder, x: float, dtype: Any) -> Value:
    return _const(b, np.asarray(x, dtype=dtype))


def _axes_of(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any]) -> Optional[tuple[int, ...]]:
    if "axes" in attrs:                  # older opsets: an attribute
        return tuple(int(a) for a in attrs["axes"])
    if len(ins) > 1 and ins[1] is not None:
        return tuple(int(a) for a in b.const(n.input[1]).reshape(-1))
    return None


@converter("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceLogSumExp")
def _reduce(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    opname = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
              "ReduceProd": "prod", "ReduceLogSumExp": "logsumexp"}[n.op_type]
    axes = _axes_of(b, n, ins, attrs)
    if axes == () and attrs.get("noop_with_empty_axes", 0):
        return b.op("clone", ins[:1], "clone")
    return b.op(opname, ins[:1], opname, axis=None if not axes else axes,
                keepdims=bool(attrs.get("keepdims", 1)))


@converter("Softmax", "LogSoftmax")
def _softmax(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    if opset < 13 and len(ins[0].shape) > 2:
        raise OnnxLoadError(f"load: {b.where}: before opset 13 {n.op_type} flattens the axes "
                            f"after `axis`, which tensorgraph does not; re-export at opset >= 13")
    opname = "softmax" if n.op_type == "Softmax" else "log_softmax"
    return b.op(opname, ins[:1], opname, axis=int(attrs.get("axis", -1 if opset >= 13 else 1)))


def _reshaped(b: _Builder, n: Any, x: Value, shapes: Sequence[tuple[int, ...]]) -> Value:
    """reshape to the per-batch target shapes: the one size that follows the batch is -1."""
    sa, sb = shapes
    varying = [i for i, (p, q) in enumerate(zip(sa, sb)) if p != q]
    if len(varying) > 1:
        raise OnnxLoadError(f"load: {b.where}: a reshape whose sizes {sa} depend on the batch "
                            f"in more than one place")
    shape = tuple(-1 if i in varying else s for i, s in enumerate(sa))
    return b.op("reshape", [x], "reshape", shape=shape)


@converter("Reshape")
def _reshape(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    x = ins[0]
    shapes = []
    for k in (0, 1):
        # A target computed from the input's shape (x.view(x.size(0), -1))
        # differs between the two examples: the size that follows the batch.
        target = [int(s) for s in (b.const(n.input[1]) if ins[1].kind != "op"
                                   else b._example(ins[1], k))]
        have = b._example(x, k).shape
        s = [have[i] if d == 0 and not attrs.get("allowzero", 0) else d for i, d in enumerate(target)]
        shapes.append(np.empty(have, dtype=np.bool_).reshape(s).shape)
    return _reshaped(b, n, x, shapes)


@converter("Flatten")
def _flatten(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    axis, x = int(attrs.get("axis", 1)), ins[0]
    shapes = []
    for k in (0, 1):
        have = b._example(x, k).shape
        ax = axis % len(have) if have else 0
        shapes.append((int(np.prod(have[:ax])), int(np.prod(have[ax:]))))
    return _reshaped(b, n, x, shapes)


@converter("Transpose")
def _transpose(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    perm = attrs.get("perm")
    return b.op("transpose", ins[:1], "transpose",
                axes=None if perm is None else tuple(int(p) for p in perm))


@converter("Unsqueeze", "Squeeze")
def _unsqueeze(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    axes = _axes_of(b, n, ins, attrs)
    if n.op_type == "Unsqueeze":
        return b.op("expand_dims", ins[:1], "expand_dims", axis=axes)
    if axes is None:                     # every size-1 axis, as at load
        axes = tuple(i for i, d in enumerate(ins[0].shape) if d == 1)
    return b.op("squeeze", ins[:1], "squeeze", axis=axes)


@converter("Concat")
def _concat(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    return b.op("concat", ins, "concat", axis=int(attrs["axis"]))


@converter("Cast")
def _cast(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    dtype = np.dtype(b.onnx.helper.tensor_dtype_to_np_dtype(attrs["to"]))
    return b.op("astype", ins[:1], "astype", dtype=dtype)


@converter("Gather")
def _gather(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    idx = b.const(n.input[1])
    axis = int(attrs.get("axis", 0)) % max(len(ins[0].shape), 1)
    return b.op("getitem", ins[:1], "getitem", index=(slice(None),) * axis + (idx,))


@converter("Slice")
def _slice(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    nd = len(ins[0].shape)
    starts, ends = (b.const(n.input[i]).reshape(-1) for i in (1, 2))
    axes = b.const(n.input[3]).reshape(-1) if len(n.input) > 3 and n.input[3] \
        else np.arange(len(starts))
    steps = b.const(n.input[4]).reshape(-1) if len(n.input) > 4 and n.input[4] \
        else np.ones(len(starts), np.int64)
    big = np.iinfo(np.int64)
    index: list[Any] = [slice(None)] * nd
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        # ONNX clamps like Python slices; its "to the end" is an extreme int64.
        index[int(ax) % nd] = slice(None if abs(int(st)) >= big.max else int(st),
                                    None if abs(int(en)) >= big.max else int(en), int(sp))
    return b.op("getitem", ins[:1], "getitem", index=tuple(index))


@converter("Constant")
def _constant(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    if "value" not in attrs:
        raise OnnxLoadError(f"load: {b.where}: only Constant nodes with a tensor `value` are read")
    arr = b.onnx.numpy_helper.to_array(attrs["value"])
    v = Value(b.fresh(n.output[0]), arr.shape, arr.dtype, "constant", value=arr)
    b._by_value[id(v)] = (arr, arr)
    return v


@converter("Round")
def _round(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    return b.op("round", ins[:1], "round", decimals=0)


@converter("Mod")
def _mod(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    if attrs.get("fmod", 0):
        raise OnnxLoadError(f"load: {b.where}: Mod with fmod=1 (C's fmod, the dividend's sign) "
                            f"has no tensorgraph op; tensorgraph's mod takes the divisor's sign")
    return b.op("mod", ins, "mod")


@converter("Xor")
def _xor(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    return b.op("not_equal", ins, "not_equal")      # on booleans, xor is !=


@converter("ReduceL2")
def _reduce_l2(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    axes = _axes_of(b, n, ins, attrs)
    return b.op("norm", ins[:1], "norm", axis=axes or None, keepdims=bool(attrs.get("keepdims", 1)))


@converter("ArgMax", "ArgMin")
def _argmax(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    if attrs.get("select_last_index", 0):
        raise OnnxLoadError(f"load: {b.where}: select_last_index=1 (numpy takes the first)")
    opname = "argmax" if n.op_type == "ArgMax" else "argmin"
    return b.op(opname, ins[:1], opname, axis=int(attrs.get("axis", 0)),
                keepdims=bool(attrs.get("keepdims", 1)))


@converter("CumSum")
def _cumsum(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    if attrs.get("exclusive", 0) or attrs.get("reverse", 0):
        raise OnnxLoadError(f"load: {b.where}: only the plain CumSum (not exclusive or reverse) "
                            f"is tensorgraph's cumsum")
    return b.op("cumsum", ins[:1], "cumsum", axis=int(b.const(n.input[1]).reshape(())))


@converter("Tile")
def _tile(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    return b.op("tile", ins[:1], "tile", reps=tuple(int(r) for r in b.const(n.input[1])))


@converter("Pad")
def _pad(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    mode = attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant" or (len(n.input) > 3 and n.input[3]):
        raise OnnxLoadError(f"load: {b.where}: only constant padding of every axis is read "
                            f"(mode {mode!r})")
    pads = [int(p) for p in b.const(n.input[1])]
    if min(pads, default=0) < 0:
        raise OnnxLoadError(f"load: {b.where}: negative pads (cropping) are not read")
    nd = len(pads) // 2
    value = b.const(n.input[2]).item() if len(n.input) > 2 and n.input[2] else 0
    return b.op("pad", ins[:1], "pad", pad_width=[[pads[i], pads[i + nd]] for i in range(nd)],
                constant_values=value)


@converter("Expand")
def _expand(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    target = tuple(int(s) for s in b.const(n.input[1]))
    shapes = [np.broadcast_shapes(b._example(ins[0], k).shape, target) for k in (0, 1)]
    if shapes[0] != shapes[1]:
        raise OnnxLoadError(f"load: {b.where}: an Expand over the open batch axis")
    return b.op("broadcast_to", ins[:1], "broadcast_to", shape=shapes[0])


@converter("Einsum")
def _einsum(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    eq = attrs["equation"]
    return b.op("einsum", ins, "einsum", subscripts=eq.decode() if isinstance(eq, bytes) else eq)


@converter("TopK")
def _topk(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    # Read only as tensorgraph writes sort: all elements, smallest first, values only.
    axis = int(attrs.get("axis", -1))
    k = int(b.const(n.input[1]).reshape(-1)[0])
    size = ins[0].shape[axis]
    if attrs.get("largest", 1) or not attrs.get("sorted", 1) or k != size \
            or any(o in b.used for o in list(n.output)[1:]):
        raise OnnxLoadError(f"load: {b.where}: only a TopK that sorts a whole axis ascending, "
                            f"values only, is read (tensorgraph's sort)")
    return b.op("sort", ins[:1], "sort", axis=axis)


@converter("Shape")
def _shape(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    # tensorgraph has no op that returns a shape: a known size is a constant,
    # an open one is counted at run time (the ones along that axis, summed).
    x = ins[0]
    nd = len(x.shape)
    dims = list(range(nd))[slice(attrs.get("start", 0), attrs.get("end", nd))]
    if all(x.shape[d] is not None for d in dims):
        return _const(b, np.asarray([x.shape[d] for d in dims], np.int64))
    sizes = []
    for d in dims:
        if x.shape[d] is not None:
            sizes.append(_const(b, np.asarray(x.shape[d], np.int64)))
            continue
        line = b.op("getitem", [x], "getitem", index=(0,) * d + (slice(None),) + (0,) * (nd - d - 1))
        ones = b.op("logical_or", [b.op("equal", [line, line], "equal"),
                                   b.op("not_equal", [line, line], "not_equal")], "logical_or")
        count = b.op("astype", [ones], "astype", dtype=np.dtype(np.int64))
        sizes.append(b.op("sum", [count], "sum", axis=None, keepdims=False))
    out = b.op("stack", sizes, "shape", axis=0)
    if dims == list(range(nd)):
        b.shape_of[id(out)] = x
    return out


@converter("ConstantOfShape")
def _constant_of_shape(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any],
                       opset: int) -> Value:
    value = b.onnx.numpy_helper.to_array(attrs["value"]).reshape(()) if "value" in attrs \
        else np.zeros((), np.float32)
    if ins[0].kind != "op":
        return _const(b, np.full(tuple(int(d) for d in b.const(n.input[0])), value))
    x = b.shape_of.get(id(ins[0]))
    if x is None:
        raise OnnxLoadError(f"load: {b.where}: ConstantOfShape is read for a constant shape or "
                            f"the whole Shape of a value (zeros_like), not a computed shape")
    fill = _const(b, value)             # x's shape, `value` everywhere (NaNs in x too)
    return b.op("where", [b.op("equal", [x, x], "equal"), fill, fill], "full_like")


def _const(b: _Builder, arr: np.ndarray) -> Value:
    v = Value(b.fresh("const"), arr.shape, arr.dtype, "constant", value=arr)
    b._by_value[id(v)] = (arr, arr)
    return v


@converter("IsNaN")
def _isnan(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    return b.op("not_equal", [ins[0], ins[0]], "isnan")      # NaN alone differs from itself


@converter("Dropout")
def _dropout(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any], opset: int) -> Value:
    training = len(ins) > 2 and ins[2] is not None and bool(b.const(n.input[2]).reshape(()))
    if training or any(o in b.used for o in list(n.output)[1:]):
        raise OnnxLoadError(f"load: {b.where}: Dropout in training mode (or its mask) is not "
                            f"read; export the model in eval mode, where it is the identity")
    return ins[0]


@converter("GatherElements")
def _gather_elements(b: _Builder, n: Any, ins: list[Any], attrs: dict[str, Any],
                     opset: int) -> Value:
    # out[..., j, ...] = data[..., idx[..., j, ...], ...] along `axis`, with
    # indices computed at run time (a cross-entropy's targets): Σ_c over the
    # axis of data where idx == c, 0 elsewhere (exact: only zeros are added).
    data, idx = ins[0], ins[1]
    nd = len(data.shape)
    a = int(attrs.get("axis", 0)) % max(nd, 1)
    C = data.shape[a]
    if C is None or len(idx.shape) != nd or any(
            d != a and p != q for d, (p, q) in enumerate(zip(data.shape, idx.shape))):
        raise OnnxLoadError(f"load: {b.where}: GatherElements is read along an axis of known "
                            f"size, with indices of the data's sizes elsewhere (data "
                            f"{data.shape}, indices {idx.shape}, axis {a})")
    pos = b.op("mod", [idx, _const(b, np.asarray(C, idx.dtype))], "mod")    # -1: the last
    classes = _const(b, np.arange(C, dtype=idx.dtype).reshape((C,) + (1,) * (nd - a)))
    hit = b.op("equal", [b.op("expand_dims", [pos], "expand_dims", axis=a), classes], "equal")
    picked = b.op("where", [hit, b.op("expand_dims", [data], "expand_dims", axis=a + 1),
                            _const(b, np.zeros((), data.dtype))], "where")
    out = b.op("sum", [picked], "sum", axis=a, keepdims=False)
    if out.dtype != data.dtype:          # numpy sums small ints wider
        out = b.op("astype", [out], "astype", dtype=np.dtype(data.dtype))
    return out
