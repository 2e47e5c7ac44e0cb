"""Drawing a captured `tg.Graph` in the "ops" and "modules" views.

A captured graph says what each leaf is, so nothing is guessed: inputs
(placeholders, blue), parameters (orange, named as in `state_dict`) and
constants (grey, with their value) come from `Value.kind`, and an inference
pass draws whether or not anything required grad.

The views are those of `tensorgraph.draw.graph`: this module only presents
the graph's values the way that renderer reads a recorded DAG (`_Analysis`:
the values in topological order, each with its parents, kind, name and
scope), so boxes by scope, `depth=`, "×N" chains and the node budget work
alike. A size left open (the batch) is shown as "?", as TensorBoard does.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..graph import Graph, Value
from .graph import Remark, _Analysis, _Builder, _shape_line, analysis_source
from .labels import fmt_array, fmt_constant

__all__ = ["captured_source", "CONSTANT_FILL"]

#: Constants are grey: frozen values, neither fed (inputs) nor trained (parameters).
CONSTANT_FILL = "#e5e7eb"

_KIND = {"input": "input", "parameter": "param", "constant": "const", "op": "op"}


class _Node:
    """A GraphNode as the renderer reads a recorded Node."""
    __slots__ = ("op", "attrs", "scope", "parents", "edge_grads")

    def __init__(self, op: Any, attrs: dict[str, Any], scope: tuple[str, ...],
                 parents: list["_Drawn"]) -> None:
        self.op = op
        self.attrs = attrs
        self.scope = scope
        self.parents = parents
        self.edge_grads = None      # a captured graph has run no backward pass


class _Drawn:
    """A Value as the renderer reads a Tensor: shape, dtype, name, and the
    data it has (a parameter's current value, a constant's), else None."""
    __slots__ = ("node", "shape", "dtype", "name", "data", "grad", "ndim", "requires_grad")

    def __init__(self, v: Value, node: Optional[_Node]) -> None:
        self.node = node
        self.shape = tuple("?" if s is None else s for s in v.shape)
        self.dtype = v.dtype
        self.name = v.name
        self.ndim = len(v.shape)
        self.requires_grad = v.kind == "parameter"
        self.data: Optional[np.ndarray] = None
        self.grad: Any = None
        if v.kind == "constant":
            self.data = np.asarray(v.value)
        elif v.kind == "parameter" and v.tensor is not None:
            self.data = v.tensor.data
            self.grad = v.tensor.grad


class _CapturedAnalysis(_Analysis):
    """`_Analysis` of a Graph: its values in topological order (each leaf just
    before its first use; inputs first, in signature order), kinds from
    `Value.kind`."""

    def __init__(self, g: Graph, classes: dict[tuple[str, ...], str]) -> None:
        values: list[Value] = []
        index: dict[int, int] = {}

        def add(v: Value) -> None:
            if id(v) not in index:
                index[id(v)] = len(values)
                values.append(v)
        for v in g.inputs:
            add(v)
        for node in g.nodes:
            for v in node.inputs:
                add(v)
            add(node.output)
        for v in g.outputs:
            add(v)
        self.order: list[Any] = []
        for v in values:
            drawn_node = None
            if v.node is not None:
                drawn_node = _Node(v.node.op, v.node.attrs, tuple(v.node.scope),
                             [self.order[index[id(p)]] for p in v.node.inputs])
            self.order.append(_Drawn(v, drawn_node))
        self.index = {id(t): i for i, t in enumerate(self.order)}
        self.roots = list(dict.fromkeys(index[id(v)] for v in g.outputs))
        n = len(self.order)
        self.consumers: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        self.parents: list[list[int]] = [[] for _ in range(n)]
        for i, v in enumerate(values):
            if v.node is not None:
                for k, p in enumerate(v.node.inputs):
                    j = index[id(p)]
                    self.parents[i].append(j)
                    self.consumers[j].append((i, k))
        self.kind = [_KIND[v.kind] for v in values]
        self.names = [v.name for v in values]
        # Dotted parameter names lose their module prefix inside the module's box.
        self.param_names = {i for i, v in enumerate(values) if v.kind == "parameter"}
        self.classes = classes
        self.scope = []
        for i, t in enumerate(self.order):
            self.scope.append(self._scope(i, t, None))


class _CapturedBuilder(_Builder):
    """Constants grey with their value (arrays summarised, with their shape);
    values shown only where the graph has them (constants, parameters)."""

    def _make_items(self) -> None:
        super()._make_items()
        for item in self.items.values():
            if item.kind == "const":
                item.attrs["fillcolor"] = CONSTANT_FILL

    def _tensor_lines(self, i: int) -> list[str]:
        t = self.a.order[i]
        kind = self.a.kind[i]
        if kind == "const":
            if t.data.size == 1:
                return [fmt_constant(t.data.reshape(()))] + (
                    [] if t.data.ndim == 0 else [_shape_line(t.shape, t.dtype)])
            return fmt_array(t.data, small=4) + [_shape_line(t.shape, t.dtype)]
        values = self.values
        self.values = values and t.data is not None   # inputs and ops have no value here
        try:
            return super()._tensor_lines(i)
        finally:
            self.values = values


def captured_source(g: Graph, view: str, *, values: bool = False, grads: bool = False,
                    depth: Optional[int] = None, max_nodes: Optional[int] = 400,
                    rankdir: str = "TB", title: Optional[str] = None,
                    classes: Optional[dict[tuple[str, ...], str]] = None,
                    repeat: bool = True) -> tuple[Any, list[str]]:
    """The Digraph of a captured graph in view "ops" or "modules", and its notes."""
    if view not in ("ops", "modules"):
        raise ValueError(f"draw(view={view!r}) of a captured Graph: use view='ops' or "
                         "view='modules' (a Graph has no backward pass recorded and no "
                         "module to draw as a network)")
    a = _CapturedAnalysis(g, classes or {})
    notes: list[str] = []
    if not g.nodes:
        notes.append(Remark("the graph has no ops: its outputs are its inputs, parameters "
                            "or constants"))
    return analysis_source(a, view, notes, values=values, grads=grads, depth=depth,
                           max_nodes=max_nodes, rankdir=rankdir, title=title, repeat=repeat,
                           builder=_CapturedBuilder)
