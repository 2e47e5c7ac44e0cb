"""TensorBoard event files: scalars, histograms and the recorded graph.

The book follows training in TensorBoard: the loss curves, the weights'
distributions and the graph with its name scopes. This module writes the
files TensorBoard reads, through the `tensorboard` package's own protobufs and
event-file writer (no TensorFlow needed; nothing here hand-rolls the format):

    with tg.tensorboard.SummaryWriter("runs/xor") as w:
        for step in range(100):
            ...
            w.add_scalar("loss", loss.item(), step)
            w.add_histogram("weight", net.layers[0].weight, step)
        w.add_graph(loss, model=net)       # the recorded DAG as a GraphDef

    $ tensorboard --logdir runs

`graph_def(target)` turns the graph recorded behind a Tensor into the GraphDef
that TensorBoard's graph dashboard reads. Node names are the name scopes
joined by "/" (TensorFlow's convention) followed by the op and its number in
the graph, e.g. "net/layers/0/matmul_3", so the dashboard folds each module
into a box. Leaves take TensorFlow's op names, as chapter 3 calls them:
"Placeholder" (an input), "Variable" (a parameter), "Const" (a number).

`tg.train.fit(..., log_dir=DIR)` uses the same writer (see `FitLogger`).

tensorboard is an optional extra: `pip install tensorboard`; without it every
entry point raises ModuleNotFoundError with that hint.
"""
from __future__ import annotations

import functools
import math
import os
import time
import types
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from .autograd import walk
from .graph import Graph, Value
from .tensor import Tensor

__all__ = ["SummaryWriter", "graph_def", "INSTALL_HINT"]

INSTALL_HINT = "pip install tensorboard (or pip install -e '.[tensorboard]')"


@functools.lru_cache(maxsize=None)
def _tb() -> types.SimpleNamespace:
    """The tensorboard pieces used here, imported on first use (it is optional)."""
    try:
        from tensorboard.compat.proto import (attr_value_pb2, event_pb2, graph_pb2,
                                              node_def_pb2, summary_pb2, tensor_shape_pb2,
                                              types_pb2, versions_pb2)
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as e:
        raise ModuleNotFoundError(f"tensorgraph.tensorboard needs the tensorboard package "
                                  f"({e}): {INSTALL_HINT}", name="tensorboard") from e
    return types.SimpleNamespace(
        attr=attr_value_pb2, event=event_pb2, graph=graph_pb2, node=node_def_pb2,
        summary=summary_pb2, shape=tensor_shape_pb2, types=types_pb2, versions=versions_pb2,
        EventFileWriter=EventFileWriter)


# ---------------------------------------------------------------------------
# The writer

class SummaryWriter:
    """Writes one TensorBoard run: an event file in `log_dir` (created if
    needed). A `log_dir` that cannot be written raises OSError naming it, at
    once. Use it as a context manager, or call `close()`; `flush()` makes what
    was added visible to a running TensorBoard (it also flushes every
    `flush_secs` seconds by itself)."""

    def __init__(self, log_dir: Union[str, "os.PathLike[str]"], flush_secs: float = 10.0) -> None:
        tb = _tb()
        self.log_dir = _writable_dir(log_dir, "SummaryWriter")
        try:
            self._writer = tb.EventFileWriter(self.log_dir, flush_secs=flush_secs)
        except OSError as e:
            raise _log_dir_error(e, self.log_dir, "SummaryWriter") from e
        self._closed = False

    # -- what can be logged ---------------------------------------------------

    def add_scalar(self, tag: str, value: Any, step: int) -> None:
        """One point of the curve `tag`: `value` (a number or one-element
        Tensor/array) at `step` (an integer >= 0, e.g. the epoch)."""
        _check_tag(tag, "add_scalar")
        v = _number(value, tag)
        tb = _tb()
        summary = tb.summary.Summary(value=[tb.summary.Summary.Value(tag=tag, simple_value=v)])
        self._add(tb.event.Event(wall_time=time.time(), step=_step(step, tag, "add_scalar"),
                                 summary=summary))

    def add_histogram(self, tag: str, values: Any, step: int, bins: int = 30) -> None:
        """The distribution of `values` (a Tensor or array of any shape, e.g. a
        parameter) at `step`, as a HistogramProto: count, min, max, sum, sum of
        squares and `bins` equal-width buckets. Values must be finite."""
        _check_tag(tag, "add_histogram")
        if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
            raise ValueError(f"add_histogram: bins must be an integer >= 1, got {bins!r}")
        step = _step(step, tag, "add_histogram")
        tb = _tb()
        histo = _histogram(tb, values, tag, bins)
        summary = tb.summary.Summary(value=[tb.summary.Summary.Value(tag=tag, histo=histo)])
        self._add(tb.event.Event(wall_time=time.time(), step=step, summary=summary))

    def add_graph(self, target: Any, model: Any = None,
                  names: Optional[Mapping[Tensor, str]] = None) -> None:
        """The graph for TensorBoard's graph dashboard: a GraphDef (from
        `graph_def`), or what `graph_def` accepts (then `model` and `names`
        are passed on)."""
        tb = _tb()
        gd = target if isinstance(target, tb.graph.GraphDef) else graph_def(target, model, names)
        self._add(tb.event.Event(wall_time=time.time(), graph_def=gd.SerializeToString()))

    # -- the file -------------------------------------------------------------

    def flush(self) -> None:
        """Write everything added so far to the event file."""
        self._check_open("flush")
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the file; closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self._writer.close()

    def __enter__(self) -> "SummaryWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SummaryWriter {self.log_dir!r}{' closed' if self._closed else ''}>"

    def _add(self, event: Any) -> None:
        self._check_open("add")
        self._writer.add_event(event)

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise ValueError(f"SummaryWriter.{what}: the writer for {self.log_dir!r} is closed")


def _writable_dir(log_dir: Any, who: str) -> str:
    """`log_dir` as a string, created if missing; OSError naming it if it cannot be."""
    if not isinstance(log_dir, (str, os.PathLike)):
        raise TypeError(f"{who}: log_dir must be a path, got {type(log_dir).__name__}")
    path = os.fspath(log_dir)
    try:
        os.makedirs(path, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(13, "permission denied")
    except OSError as e:
        raise _log_dir_error(e, path, who) from e
    return path


def _log_dir_error(e: OSError, path: str, who: str) -> OSError:
    # Same class (FileExistsError, PermissionError, ...), so callers can still tell.
    return type(e)(f"{who}: cannot write TensorBoard logs to log_dir {path!r}: "
                   f"{e.strerror or e}")


def _check_tag(tag: Any, who: str) -> None:
    if not isinstance(tag, str) or not tag:
        raise ValueError(f"{who}: tag must be a non-empty string, got {tag!r}")


def _step(step: Any, tag: str, who: str) -> int:
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"{who}({tag!r}): step must be an integer >= 0, got {step!r}")
    return int(step)


def _number(value: Any, tag: str) -> float:
    arr = value.data if isinstance(value, Tensor) else value
    if isinstance(arr, (str, bytes)) or np.asarray(arr).size != 1 \
            or np.asarray(arr).dtype.kind not in "biuf":
        raise TypeError(f"add_scalar({tag!r}): value must be a real number or a one-element "
                        f"tensor, got {type(value).__name__} {np.shape(arr)}")
    return float(np.asarray(arr).reshape(()))


def _histogram(tb: Any, values: Any, tag: str, bins: int) -> Any:
    arr = values.data if isinstance(values, Tensor) else values
    try:
        x = np.asarray(arr, dtype=np.float64).ravel()
    except (TypeError, ValueError) as e:
        raise TypeError(f"add_histogram({tag!r}): values must be numeric, got "
                        f"{type(values).__name__}") from e
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise ValueError(f"add_histogram({tag!r}): {bad} of {x.size} values are NaN or "
                         "infinite; TensorBoard's histograms need finite values")
    if x.size == 0:
        return tb.summary.HistogramProto()
    counts, edges = np.histogram(x, bins=bins)
    # Bucket i counts the values in (bucket_limit[i-1], bucket_limit[i]]; the
    # first bucket starts at `min` (TensorBoard's reading of the legacy proto).
    return tb.summary.HistogramProto(min=float(x.min()), max=float(x.max()), num=float(x.size),
                                     sum=float(x.sum()), sum_squares=float(np.dot(x, x)),
                                     bucket_limit=edges[1:].tolist(),
                                     bucket=counts.astype(np.float64).tolist())


# ---------------------------------------------------------------------------
# The recorded graph as a GraphDef

def graph_def(target: Union[Tensor, Sequence[Tensor], Graph], model: Any = None,
              names: Optional[Mapping[Tensor, str]] = None) -> Any:
    """The graph recorded behind `target` (a Tensor, or several), or a captured
    `tg.Graph`, as a TensorBoard GraphDef: one NodeDef per tensor of
    `tg.walk(target)` (per leaf and node of the Graph), parents first, with its
    inputs in argument order.

    Names: an op is "<scope>/<op>", "<scope>/<op>_1", ... (numbered in
    topological order so that names are unique without their scopes, as
    `tg.capture` names them); a parameter of `model` (a `tg.nn.Module`) is
    "<scope of its module>/<local name>", e.g. "net/layers/0/weight"; other
    leaves take `names[t]`, else `t.name`, else "input"/"param"/"const" (numbered),
    and a parameter without a module sits in the innermost scope of its uses.
    Each node carries its shape ("_output_shapes", drawn on the edges; -1 for
    a size left open), its dtype and the op's attributes.

    A Graph keeps its own unique names ("matmul_3", "layers.0.weight"), each
    op under its scope; a parameter goes to the innermost scope of its uses,
    shortened to its local name when that scope is its module's
    ("net/layers/0/weight"), unless `model` names it. (`names` is for Tensor
    targets only.)
    """
    tb = _tb()
    if isinstance(target, Graph):
        if names:
            raise TypeError("graph_def: names is for Tensor targets; a Graph's values already "
                            "have names (tg.placeholder(..., name=...) names an input)")
        return _captured_graph_def(tb, target, model)
    roots = [target] if isinstance(target, Tensor) else list(target)
    if not roots or not all(isinstance(t, Tensor) for t in roots):
        raise TypeError(f"graph_def: target must be a Tensor or a sequence of Tensors, got "
                        f"{type(target).__name__}")
    order = walk(roots)
    consumers: dict[int, list[tuple[str, ...]]] = {}
    for t in order:
        if t.node is not None:
            for p in t.node.parents:
                consumers.setdefault(id(p), []).append(tuple(t.node.scope))
    param_names = _param_scopes(model)
    given = {id(t): n for t, n in (names or {}).items()}
    flat: set[str] = set()     # names without scopes, unique as in a captured Graph
    taken: set[str] = set()
    node_name: dict[int, str] = {}
    nodes = []
    for t in order:
        attrs: dict[str, Any] = {}
        if t.node is not None:
            op = t.node.op.name
            full = "/".join(tuple(t.node.scope) + (_unique(op, flat),))
            inputs = [node_name[id(p)] for p in t.node.parents]
            attrs = dict(t.node.attrs)
        else:
            op, full = _leaf(t, param_names, given, consumers.get(id(t), []), flat)
            inputs = []
            if op == "Const":
                attrs["value"] = np.array2string(t.data, threshold=10, precision=6)
        full = _unique(full, taken)
        node_name[id(t)] = full
        nodes.append(_node_def(tb, full, op, inputs, t.shape, t.dtype, attrs))
    return tb.graph.GraphDef(node=nodes, versions=tb.versions.VersionDef(producer=22))


def _param_scopes(model: Any) -> dict[int, str]:
    """id(parameter) -> its GraphDef name, from the model's named_parameters."""
    named = getattr(model, "named_parameters", None)
    if not callable(named):
        return {}
    scope_path = getattr(model, "scope_path", None)
    out = {}
    for name, p in named():
        owner, _, local = name.rpartition(".")
        scope = scope_path(owner) if callable(scope_path) else tuple(owner.split(".") if owner
                                                                      else ())
        out[id(p)] = "/".join(tuple(scope) + (local,))
    return out


def _leaf(t: Tensor, param_names: dict[int, str], given: dict[int, str],
          uses: list[tuple[str, ...]], flat: set[str]) -> tuple[str, str]:
    """(TensorFlow op name, full node name) of a leaf."""
    if t.requires_grad:
        op, kind = "Variable", "param"
    elif t.ndim == 0 and t.name is None and id(t) not in given:
        op, kind = "Const", "const"     # what coercion makes of the 2.0 in x * 2.0
    else:
        op, kind = "Placeholder", "input"
    if id(t) in param_names:
        return op, param_names[id(t)]
    name = _unique(given.get(id(t)) or t.name or kind, flat)
    if kind == "input" or not uses:
        return op, name
    # A parameter sits in the innermost scope holding all its uses; a constant in its first use's.
    prefix = _common_prefix(uses) if kind == "param" else uses[0]
    return op, "/".join(prefix + (name,))


def _unique(name: str, taken: set[str]) -> str:
    out, k = name, 1
    while out in taken:
        out, k = f"{name}_{k}", k + 1
    taken.add(out)
    return out


def _captured_graph_def(tb: Any, g: Graph, model: Any) -> Any:
    """`graph_def` of a captured Graph (see there)."""
    uses: dict[int, list[tuple[str, ...]]] = {}
    for n in g.nodes:
        for v in n.inputs:
            uses.setdefault(id(v), []).append(tuple(n.scope))
    param_names = _param_scopes(model)
    taken: set[str] = set()
    full: dict[int, str] = {}
    nodes = []

    def leaf(v: Value) -> None:
        if id(v) in full:
            return
        scopes = uses.get(id(v), [])
        attrs: dict[str, Any] = {}
        if v.kind == "parameter":
            op = "Variable"
            if v.tensor is not None and id(v.tensor) in param_names:
                name = param_names[id(v.tensor)]
            else:
                scope = _common_prefix(scopes)
                owner, _, local = v.name.rpartition(".")
                mine = bool(owner) and scope[len(scope) - len(owner.split(".")):] \
                    == tuple(owner.split("."))
                name = "/".join(scope + ((local if mine else v.name),))
        elif v.kind == "constant":
            op = "Const"
            name = "/".join((scopes[0] if scopes else ()) + (v.name,))
            attrs["value"] = np.array2string(np.asarray(v.value), threshold=10, precision=6)
        else:
            op, name = "Placeholder", v.name
        full[id(v)] = _unique(name, taken)
        nodes.append(_node_def(tb, full[id(v)], op, [], v.shape, v.dtype, attrs))

    for v in g.inputs:
        leaf(v)
    for n in g.nodes:
        for v in n.inputs:
            if v.kind != "op":
                leaf(v)
        full[id(n.output)] = _unique("/".join(tuple(n.scope) + (n.name,)), taken)
        nodes.append(_node_def(tb, full[id(n.output)], n.op.name, [full[id(v)] for v in n.inputs],
                               n.output.shape, n.output.dtype, dict(n.attrs)))
    for v in g.outputs:
        if v.kind != "op":
            leaf(v)
    return tb.graph.GraphDef(node=nodes, versions=tb.versions.VersionDef(producer=22))


def _common_prefix(scopes: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    """The innermost scope that holds all of `scopes` (() for none)."""
    if not scopes:
        return ()
    prefix = scopes[0]
    for s in scopes[1:]:
        n = 0
        while n < min(len(prefix), len(s)) and prefix[n] == s[n]:
            n += 1
        prefix = prefix[:n]
    return prefix


def _node_def(tb: Any, name: str, op: str, inputs: list[str], shape: Sequence[Optional[int]],
              dtype: Any, attrs: dict[str, Any]) -> Any:
    A = tb.attr.AttrValue
    dims = tb.shape.TensorShapeProto(dim=[tb.shape.TensorShapeProto.Dim(
        size=-1 if d is None else int(d)) for d in shape])   # -1: TensorFlow's unknown size
    attr = {"_output_shapes": A(list=A.ListValue(shape=[dims])),
            "dtype": A(type=_dtype_enum(tb, dtype))}
    for k, v in attrs.items():
        attr[str(k)] = _attr_value(A, v)
    return tb.node.NodeDef(name=name, op=op, input=inputs, attr=attr)


def _dtype_enum(tb: Any, dtype: np.dtype) -> int:
    key = {"float16": "DT_HALF", "float32": "DT_FLOAT", "float64": "DT_DOUBLE", "bool": "DT_BOOL",
           "int8": "DT_INT8", "int16": "DT_INT16", "int32": "DT_INT32", "int64": "DT_INT64",
           "uint8": "DT_UINT8"}.get(np.dtype(dtype).name, "DT_INVALID")
    return int(tb.types.DataType.Value(key))


def _attr_value(A: Any, v: Any) -> Any:
    """An op attribute as an AttrValue: ints, floats, bools, strings and tuples
    of ints keep their type; anything else is shown as its repr."""
    if isinstance(v, (bool, np.bool_)):
        return A(b=bool(v))
    if isinstance(v, (int, np.integer)):
        return A(i=int(v))
    if isinstance(v, (float, np.floating)) and math.isfinite(v):
        return A(f=float(v))
    if isinstance(v, str):
        return A(s=v.encode())
    if isinstance(v, (tuple, list)) and v and all(isinstance(e, (int, np.integer))
                                                  and not isinstance(e, bool) for e in v):
        return A(list=A.ListValue(i=[int(e) for e in v]))
    return A(s=repr(v).encode())


# ---------------------------------------------------------------------------
# What `tg.train.fit(..., log_dir=DIR)` writes

class FitLogger:
    """The TensorBoard logs of a `fit` run, as Keras lays them out: the run
    "DIR/train" gets the history's training entries ("loss", each metric,
    "lr"), once the model's graph (from the first batch's loss) and each
    epoch a histogram of every parameter (tag: its `named_parameters` name);
    the run "DIR/validation" gets the "val_" entries under the same tags
    ("val_loss" is "loss" there), so TensorBoard draws both curves in one
    chart. The step is the epoch (0-based, as `History.epochs`). Both
    directories are created at once, so an unwritable `log_dir` fails before
    training starts."""

    def __init__(self, log_dir: Any, validation: bool) -> None:
        root = _writable_dir(log_dir, "fit")
        self.train = SummaryWriter(os.path.join(root, "train"))
        self.validation: Optional[SummaryWriter] = None
        if validation:
            try:
                self.validation = SummaryWriter(os.path.join(root, "validation"))
            except BaseException:
                self.train.close()
                raise
        self.graph_written = False

    def graph(self, loss: Tensor, model: Any, x: Tensor, y: Tensor) -> None:
        """The model's graph, from a batch's loss (before its backward)."""
        self.graph_written = True
        self.train.add_graph(loss, model=model, names={x: "x", y: "targets"})

    def epoch(self, epoch: int, logs: Mapping[str, float], model: Any) -> None:
        for key, value in logs.items():
            if key.startswith("val_") and self.validation is not None:
                self.validation.add_scalar(key[4:], value, epoch)
            else:
                self.train.add_scalar(key, value, epoch)
        for name, p in _named_parameters(model):
            # A diverged parameter (fit's on_nonfinite="ignore") has no histogram;
            # logging must not stop the training the user asked to go on.
            if np.isfinite(p.data).all():
                self.train.add_histogram(name, p, epoch)
        self.train.flush()
        if self.validation is not None:
            self.validation.flush()

    def close(self) -> None:
        self.train.close()
        if self.validation is not None:
            self.validation.close()


def _named_parameters(model: Any) -> list[tuple[str, Tensor]]:
    named = getattr(model, "named_parameters", None)
    if callable(named):
        return list(named())
    ps = getattr(model, "parameters", None)
    return [(f"parameter_{i}", p) for i, p in enumerate(ps())] if callable(ps) else []
