"""The "network" view: the book's pictures of neurons and networks.

- A network (`FeedForward`, `Sequential`, a `Layer`, or any module whose
  children are layers): a column of input units x₁..xₙ, then one column of
  neurons (circles labelled by their activation and bias) per layer, and
  every weight as an edge whose width grows with |w| and whose colour gives
  its sign (blue positive, red negative). A softmax (or sigmoid) output
  layer is boxed and named. A layer wider than `cap` shows its first and
  last few neurons and "N more".
- A `Neuron`: inputs x_i, weights w_i on the edges, a sum node with the bias
  b, the activation f and the output y = f(Σ w_i x_i + b) (chapter 1).
- A `LinearPerceptron`: the same with the step function
  h(x, θ) = -1 if x·θ + θ₀ < 0, else 1.

A network with feature maps (a `FeatureMaps` part: Conv2d, pooling, batch
norm, Flatten) is drawn by `tensorgraph.draw.conv`: stacks of maps, then
these columns.
A recurrent cell or layer (a `Cell` part) is drawn by
`tensorgraph.draw.recurrent` as the book's cell diagram, a memory network (a
`MemoryNetwork` part: NTM, DNC) by `tensorgraph.draw.memory_diagram` as the
book's architecture figure.

The view asks, it does not guess: it reads only what `Module.diagram()`
returns (Units, Activation, Regularizer, Box, ...; see `tg.nn.Module.diagram`), so
a subclass draws as its base class does and an unknown module is one box.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

# What Module.diagram() returns.
from ..nn import Activation, Box, Cell, FeatureMaps, MemoryNetwork, Regularizer, Units
from ._optional import require
from .graph import Remark
from .labels import FONT, fmt_number, label, subscript
from .labels import heading as heading_label

if TYPE_CHECKING:
    import graphviz
else:  # imported when a drawing is made, with an install hint when missing
    graphviz = require("graphviz", "drawing a graph (tg.draw)")

__all__ = ["network_source"]

# How each activation is written inside a neuron's circle.
SYMBOL = {None: "z", "linear": "z", "identity": "z", "sigmoid": "σ", "tanh": "tanh",
          "relu": "ReLU", "softmax": "z", "step": "step"}
POSITIVE, NEGATIVE, ZERO = "#2563eb", "#dc2626", "#9ca3af"
EDGE_LABELS_UP_TO = 6   # weights are written on the edges of small layer pairs
BOX_PARAMETERS = 8      # a module drawn as a box lists this many parameters, then a count


class _Column:
    """One layer of neurons as drawn: sizes, weights into it, activation."""

    def __init__(self, name: str, weight: np.ndarray, bias: Optional[np.ndarray],
                 activation: Optional[str]) -> None:
        self.name = name
        self.weight = weight          # (n_in, n_out)
        self.bias = bias              # (n_out,) or None
        self.activation = activation
        self.output: Optional[str] = None   # "softmax"/"sigmoid"/... applied after the layer
        self.dropout: Optional[float] = None
        self.norm: Optional[str] = None     # "batch norm" applied after the layer
        self.norm_first = False             # ... and before its activation


def _arr(p: Any) -> np.ndarray:
    return np.asarray(p.data if hasattr(p, "data") else p, dtype=np.float64)


def _columns(parts: list[Any]) -> tuple[list[_Column], Optional[float]]:
    """The layers of a network, in order, from what it says of itself: the
    parts of `module.diagram()` (see `tg.nn.Module.diagram`). Units give columns; an
    Activation applies to the column before it: named after a container of
    that column (FeedForward's `output`) it is the column's output function,
    otherwise (an activation module) it is the column's activation if it had
    none; a dropout Regularizer annotates the column before it (or the
    inputs), and so does a normalisation (`FeatureMaps` of kind "norm", e.g.
    BatchNorm1d after a layer). Returns the columns and the dropout rate on
    the inputs (or None)."""
    cols: list[_Column] = []
    input_dropout: Optional[float] = None
    for part in parts:
        if isinstance(part, Units):
            bias = None if part.bias is None else _arr(part.bias).reshape(-1)
            cols.append(_Column(part.name, _arr(part.weight), bias, part.activation))
        elif isinstance(part, Regularizer):
            if part.kind == "dropout":
                if cols:
                    cols[-1].dropout = part.p
                else:
                    input_dropout = part.p
        elif isinstance(part, Activation):
            if not cols and part.function in ("linear", "identity"):
                continue    # the identity on the inputs: nothing to draw
            if not cols:
                raise ValueError(f"draw(view='network'): activation {part.function!r} at "
                                 f"{part.name!r} comes before any layer")
            last = cols[-1]
            owner = not part.name or last.name.startswith(part.name + ".")
            if not owner and last.activation in (None, "linear", "identity") \
                    and last.output is None:
                if part.function == "softmax":
                    last.output = "softmax"
                else:
                    last.activation = part.function
            else:
                last.output = part.function
        elif isinstance(part, FeatureMaps) and part.kind == "norm" and cols:
            n_out = cols[-1].weight.shape[1]
            if part.in_channels is not None and part.in_channels != n_out:
                raise ValueError(f"draw(view='network'): {part.name} ({part.operation}) takes "
                                 f"{part.in_channels} features but layer {cols[-1].name!r} "
                                 f"gives {n_out}")
            cols[-1].norm = part.operation
            # before the activation module that follows it (Linear, BatchNorm1d, ReLU)
            cols[-1].norm_first = cols[-1].activation is None
        else:
            raise TypeError(f"draw(view='network'): cannot draw {part!r} as a column")
    for a, b in zip(cols, cols[1:]):
        if a.weight.shape[1] != b.weight.shape[0]:
            raise ValueError(f"draw(view='network'): layer {a.name!r} has {a.weight.shape[1]} "
                             f"outputs but the next layer {b.name!r} takes "
                             f"{b.weight.shape[0]} inputs")
    return cols, input_dropout


def _shown(n: int, cap: int) -> tuple[list[int], int]:
    """Which of n units to draw under `cap`: all, or the first and last few
    and a count of the rest (the "N more" node takes one slot)."""
    if n <= cap:
        return list(range(n)), 0
    slots = cap - 1
    head = (slots + 1) // 2
    tail = slots - head
    return list(range(head)) + list(range(n - tail, n)), n - head - tail


def _gap(idx: list[int]) -> int:
    """Position in `idx` where the "N more" marker goes (after the head)."""
    for p, (a, b) in enumerate(zip(idx, idx[1:])):
        if b - a > 1:
            return p + 1
    return len(idx)


def _width(w: float, scale: float) -> str:
    return f"{0.4 + 3.2 * abs(w) / scale:.2f}" if scale > 0 else "0.4"


def _colour(w: float) -> str:
    return POSITIVE if w > 0 else NEGATIVE if w < 0 else ZERO


def _order(c: graphviz.Digraph, ids: list[str], more: Optional[str], gap: int) -> None:
    """Keep a column's units in index order (x₁ above x₂ ...): one rank inside
    the column's cluster, chained by invisible edges, which Graphviz keeps in
    order within a rank."""
    if more is not None:
        ids = ids[:gap] + [more] + ids[gap:]
    with c.subgraph() as s:
        s.attr(rank="same")
        for a, b in zip(ids, ids[1:]):
            s.edge(a, b, style="invis")


def _base(rankdir: str) -> graphviz.Digraph:
    g = graphviz.Digraph("network")
    g.attr("graph", rankdir=rankdir, fontname=FONT, fontsize="12", nodesep="0.12",
           ranksep="1.1", splines="line", newrank="true", ordering="out")
    g.attr("node", fontname=FONT, fontsize="10")
    g.attr("edge", fontname=FONT, fontsize="8", arrowsize="0.5")
    return g


def _heading(g: graphviz.Digraph, title: Optional[str], lines: list[str]) -> None:
    text = ([title] if title else []) + lines
    g.attr("graph", label=heading_label(*text), labelloc="t", fontsize="13")


def network_source(module: Any, *, rankdir: str = "LR", title: Optional[str] = None,
                   cap: int = 10, weights: Optional[bool] = None,
                   max_nodes: Optional[int] = None,
                   input_shape: Optional[Sequence[int]] = None
                   ) -> tuple[graphviz.Digraph, list[str]]:
    """The Digraph of the network view of `module` and its notes (a note that
    is not a `Remark` says what the node budget `max_nodes` left out).
    A network with feature maps (chapter 5) is drawn by
    `tensorgraph.draw.conv`, with sizes when `input_shape` (one example's
    shape) is given."""
    if not isinstance(cap, int) or cap < 3:
        raise ValueError(f"draw(view='network'): cap must be an int >= 3, got {cap!r}")
    parts = module.diagram()
    if len(parts) == 1 and isinstance(parts[0], Units) and parts[0].kind in ("neuron",
                                                                               "perceptron"):
        return _unit(parts[0], rankdir, title, cap, weights), []
    if len(parts) == 1 and isinstance(parts[0], Cell):
        from .recurrent import cell_source
        return cell_source(parts[0], title), []
    if len(parts) == 1 and isinstance(parts[0], MemoryNetwork):
        from .memory_diagram import memory_source
        return memory_source(parts[0], title), []
    if any(isinstance(p, (Box, Cell, MemoryNetwork)) for p in parts):
        return _boxes(parts, rankdir, title), []
    if any(isinstance(p, FeatureMaps) for p in parts):
        from .conv import conv_source
        return conv_source(parts, input_shape=input_shape, title=title, cap=cap,
                           weights=weights, max_nodes=max_nodes)
    cols, input_dropout = _columns(parts)
    if not cols:
        raise TypeError(f"draw(view='network'): {type(module).__name__} has no layers to draw")
    return _network(cols, rankdir, title, cap, weights, max_nodes, input_dropout)


def _boxes(parts: list[Any], rankdir: str, title: Optional[str]) -> graphviz.Digraph:
    """A network with a module the view cannot open (a `Box`), a recurrent
    layer (a `Cell`) or a memory network among other modules: every part as
    one labelled box, in order: name and type with parameter shapes, a
    layer's sizes and activation, a recurrent layer's kind, sizes and gates,
    a memory network's controller and memory sizes."""
    g = _base(rankdir)
    _heading(g, title, [" → ".join(p.name for p in parts)])
    for k, p in enumerate(parts):
        if isinstance(p, Box):
            lines = [f"{p.name}: {p.type_name}"] + [f"{n} {s}" for n, s in
                                                     p.parameters[:BOX_PARAMETERS]]
            if len(p.parameters) > BOX_PARAMETERS:   # a box stays a box, not a column of text
                numbers = sum(int(np.prod(s)) for _, s in p.parameters)
                lines.append(f"… {len(p.parameters) - BOX_PARAMETERS} more parameters "
                             f"({numbers} numbers in all)")
        elif isinstance(p, Units):
            lines = [f"{p.name}: {p.weight.shape[0]} → {p.weight.shape[1]}",
                     p.activation or "linear"]
        elif isinstance(p, Activation):
            lines = [f"{p.name}: {p.function}"]
        elif isinstance(p, FeatureMaps):
            from .conv import describe
            lines = [f"{p.name}: " + ", ".join(describe(p))]
        elif isinstance(p, Cell):
            from .recurrent import describe_cell
            lines = describe_cell(p)
        elif isinstance(p, MemoryNetwork):
            from .memory_diagram import describe_memory
            lines = describe_memory(p)
        else:
            lines = [f"{p.name}: {p.kind} p={fmt_number(p.p)}"]
        fill = "#f3f4f6" if isinstance(p, Box) else "#fed7aa" if isinstance(p, Cell) \
            else "#ede9fe" if isinstance(p, MemoryNetwork) else "#fef3c7"
        g.node(f"b{k}", label=label(*lines), shape="box", style="rounded,filled",
               fillcolor=fill, color="#6b7280")
        if k:
            g.edge(f"b{k - 1}", f"b{k}", color="#374151")
    return g


def _describe(col: _Column, head: str) -> str:
    """A column's header: its name and size, its activation (and the output
    function after it), batch norm (before or after the activation, as
    applied) and dropout when it has them."""
    desc = f"{head}\n{col.norm}" if col.norm is not None and col.norm_first else head
    desc += f"\n{col.activation or 'linear'}"
    if col.output is not None:
        desc += f" → {col.output}"
    if col.norm is not None and not col.norm_first:
        desc += f"\n{col.norm}"
    if col.dropout is not None:
        desc += f"\ndropout p={fmt_number(col.dropout)}"
    return desc


def _written(weights: Optional[bool], w: np.ndarray) -> bool:
    return weights if weights is not None else w.size <= EDGE_LABELS_UP_TO


def _kept_layers(cols: list[_Column], shown: list[tuple[list[int], int]],
                 weights: Optional[bool], max_nodes: Optional[int]) -> tuple[int, int]:
    """(head, tail): draw layers 1..head and the last `tail` ones, the rest as
    one "⋯ N more layers" node, so that the drawing keeps to `max_nodes`
    (the first and the output layer are always drawn). (L, 0) when all fit."""
    n_layers = len(cols)

    def nodes(k: int) -> int:   # column k: header, units, "more" marker, weight labels
        idx, more = shown[k]
        count = 1 + len(idx) + (1 if more else 0)
        if k:
            w = cols[k - 1].weight[np.ix_(shown[k - 1][0], idx)]
            count += w.size if _written(weights, w) else 0
        return count

    per = [nodes(k) for k in range(n_layers + 1)]
    fixed = per[0] + len(shown[-1][0])            # the input column and the outputs
    if max_nodes is None or fixed + sum(per[1:]) <= max_nodes:
        return n_layers, 0
    head, tail = 1, 1 if n_layers > 1 else 0
    used = fixed + 1 + per[1] + (per[n_layers] if tail else 0)   # + 1: the gap node
    while head + tail < n_layers:
        k = head + 1 if head <= tail else n_layers - tail
        if used + per[k] > max_nodes:
            break
        used += per[k]
        if head <= tail:
            head += 1
        else:
            tail += 1
    return head, tail


def _network(cols: list[_Column], rankdir: str, title: Optional[str], cap: int,
             weights: Optional[bool], max_nodes: Optional[int] = None,
             input_dropout: Optional[float] = None) -> tuple[graphviz.Digraph, list[str]]:
    g = _base(rankdir)
    notes: list[str] = []
    sizes = [cols[0].weight.shape[0]] + [c.weight.shape[1] for c in cols]
    shown = [_shown(n, cap) for n in sizes]
    head, tail = _kept_layers(cols, shown, weights, max_nodes)
    hidden = range(head + 1, len(cols) - tail + 1)    # layers not drawn (1-based)
    for k, (idx, more) in enumerate(shown):
        if more and k not in hidden:
            notes.append(Remark(f"{'input' if k == 0 else cols[k - 1].name}: {sizes[k]} "
                                f"units, {more} not drawn (cap={cap})"))
    if hidden:
        notes.append(f"{len(cols)} layers exceed the node budget (max_nodes={max_nodes}): "
                     f"the first {head} and the last {tail} are drawn, the "
                     f"{len(hidden)} between as one node")
    arrows = [str(n) for n in sizes]
    if len(arrows) > 12:   # a deep network: the sizes would fill lines and be cut mid-way
        arrows = arrows[:6] + [f"… ({len(cols)} layers) …"] + arrows[-4:]
    heading = [" → ".join(arrows),
               "edge width grows with |w|; blue w > 0, red w < 0"]
    _heading(g, title, heading)

    def unit_id(k: int, i: int) -> str:
        return f"x{i}" if k == 0 else f"l{k}_{i}"

    def column(k: int, header: str, units: list[tuple[str, dict[str, str]]], more: int,
               gap: int, marked: bool = False) -> None:
        """One column: a header, the units in index order and, after the first
        few, an "N more" marker. A plain rank=same subgraph (not a cluster:
        Graphviz does not keep the order of a rank inside a cluster)."""
        head = {"shape": "box", "style": "rounded", "color": "#cbd5e1", "fontsize": "11"}
        if marked:
            head.update(style="rounded,filled", color="#7c3aed", fillcolor="#ede9fe",
                        penwidth="2")
        ids = [f"h{k}"] if header else []
        with g.subgraph() as c:
            c.attr(rank="same")
            if header:
                c.node(f"h{k}", label=label(header), **head)
            for n, (uid, attrs) in enumerate(units):
                if more and n == gap:
                    c.node(f"m{k}", label=label(f"⋮ {more} more"), shape="plaintext",
                           fontcolor="#6b7280")
                    ids.append(f"m{k}")
                c.node(uid, **attrs)
                ids.append(uid)
            for a, b in zip(ids, ids[1:]):
                c.edge(a, b, style="invis")

    idx, more = shown[0]
    column(0, f"input ({sizes[0]})" + ("" if input_dropout is None
                                       else f"\ndropout p={fmt_number(input_dropout)}"),
           [(unit_id(0, i), {"label": label(f"x{subscript(i + 1)}"), "shape": "circle",
                             "style": "filled", "fillcolor": "#dbeafe", "color": "#1d4ed8",
                             "width": "0.45", "fixedsize": "true"}) for i in idx],
           more, _gap(idx))
    # One column per layer.
    for k, col in enumerate(cols, start=1):
        if k in hidden:
            continue
        idx, more = shown[k]
        last = k == len(cols)
        act = col.activation
        out = col.output
        desc = _describe(col, f"{'output' if last else f'hidden {k}'} ({sizes[k]})")
        marked = out == "softmax"
        units = []
        for j in idx:
            lines = [SYMBOL.get(act, act or "z")]
            if out == "sigmoid" and act is None:
                lines = ["σ"]
            if col.bias is not None:
                lines.append(f"b={fmt_number(col.bias[j])}")
            units.append((unit_id(k, j), {
                "label": label(*lines), "shape": "circle", "style": "filled",
                "fillcolor": "#ede9fe" if marked else "#fde7c8" if last else "#fef3c7",
                "color": "#7c3aed" if marked else "#b45309", "width": "0.62",
                "fixedsize": "true", "fontsize": "9"}))
        column(k, desc, units, more, _gap(idx), marked)
        if hidden and k == hidden.stop:
            # The layers left out, as one node between the columns around them.
            names = f"{cols[hidden.start - 1].name} … {cols[hidden.stop - 2].name}"
            g.node("gap", label=label(f"⋯ {len(hidden)} more layers", names,
                                      f"(max_nodes={max_nodes})"),
                   shape="box", style="rounded,dashed", color=ZERO, fontcolor="#6b7280")
            for i in shown[head][0]:
                g.edge(unit_id(head, i), "gap", style="dashed", color=ZERO, arrowhead="none")
            for j in idx:
                g.edge("gap", unit_id(k, j), style="dashed", color=ZERO)
            continue
        # Weighted edges from the previous column.
        prev_idx = shown[k - 1][0]
        w = col.weight[np.ix_(prev_idx, idx)]
        scale = float(np.abs(col.weight).max()) if col.weight.size else 0.0
        write = _written(weights, w)
        for a, i in enumerate(prev_idx):
            for b, j in enumerate(idx):
                wij = float(w[a, b])
                attrs = {"penwidth": _width(wij, scale), "color": _colour(wij),
                         "tooltip": f"w = {fmt_number(wij)}"}
                src, dst = unit_id(k - 1, i), unit_id(k, j)
                if write:
                    # The weight is a text node on its edge: Graphviz never lets
                    # two nodes overlap, where edge labels of crossing edges do.
                    wid = f"w{k}_{i}_{j}"
                    g.node(wid, label=fmt_number(wij), shape="plaintext", fontsize="8",
                           fontcolor=_colour(wij), width="0", height="0", margin="0.02",
                           tooltip=f"w = {fmt_number(wij)}")
                    g.edge(src, wid, arrowhead="none", **attrs)
                    g.edge(wid, dst, **attrs)
                else:
                    g.edge(src, dst, **attrs)
    # Outputs.
    k = len(cols)
    idx, more = shown[k]
    sym = "p" if cols[-1].output == "softmax" else "y"
    column(k + 1, "", [(f"y{j}", {"label": label(f"{sym}{subscript(j + 1)}"),
                                  "shape": "plaintext", "fontsize": "12"}) for j in idx],
           0, len(idx))
    for j in idx:
        g.edge(unit_id(k, j), f"y{j}", color="#374151")
    return g, notes


def _unit(m: Units, rankdir: str, title: Optional[str], cap: int,
          weights: Optional[bool]) -> graphviz.Digraph:
    """The book's diagram of one neuron or one linear perceptron."""
    g = _base(rankdir)
    g.attr("graph", ranksep="1.6", nodesep="0.3", splines="line")
    w = _arr(m.weight).reshape(-1)
    b = 0.0 if m.bias is None else float(_arr(m.bias).reshape(-1)[0])
    perceptron = m.kind == "perceptron"
    wname = "θ" if perceptron else "w"
    if perceptron:
        formula = "h(x, θ) = −1 if x·θ + θ₀ < 0, else +1"
    else:
        formula = f"y = f(Σᵢ wᵢxᵢ + b),  f = {m.activation}"
    _heading(g, title, [f"{'linear perceptron' if perceptron else 'neuron'}: {formula}"])
    idx, more = _shown(len(w), cap)
    scale = float(np.abs(w).max()) if w.size else 0.0
    write = True if weights is None else weights
    bias_name = "θ₀" if perceptron else "b"
    with g.subgraph() as c:
        c.attr(rank="same")   # the inputs in order, then the bias, in one column
        ids = []
        for n, i in enumerate(idx):
            if more and n == _gap(idx):
                c.node("x_more", label=label(f"⋮ {more} more"), shape="plaintext",
                       fontcolor="#6b7280")
                ids.append("x_more")
            c.node(f"x{i}", label=label(f"x{subscript(i + 1)}"), shape="circle",
                   style="filled", fillcolor="#dbeafe", color="#1d4ed8", width="0.45",
                   fixedsize="true")
            ids.append(f"x{i}")
        c.node("bias", label=label(f"bias {bias_name} = {fmt_number(b)}"), shape="box",
               style="rounded,filled", fillcolor="#fde7c8", color="#c2410c")
        ids.append("bias")
        for a, b_ in zip(ids, ids[1:]):
            c.edge(a, b_, style="invis")
    g.node("sum", label=label("Σ"), shape="circle", style="filled", fillcolor="#fef3c7",
           color="#b45309", width="0.55", fixedsize="true", fontsize="16")
    for i in idx:
        wi = float(w[i])
        attrs = {"penwidth": _width(wi, scale), "color": _colour(wi)}
        if write:
            # Next to the input, as in the book's figure, clear of the other edges.
            attrs["taillabel"] = f"{wname}{subscript(i + 1)} = {fmt_number(wi)}"
            attrs["labeldistance"] = "5.5"
            attrs["labelangle"] = "-12"
            attrs["fontcolor"] = _colour(wi)
            attrs["fontsize"] = "10"
        g.edge(f"x{i}", "sum", **attrs)
    if more:
        g.edge("x_more", "sum", style="dashed", color=ZERO)
    g.edge("bias", "sum", color="#c2410c")
    if perceptron:
        g.node("f", label=label("step", "−1 if z < 0", "+1 otherwise"), shape="box",
               style="rounded,filled", fillcolor="#ede9fe", color="#6d28d9")
        g.node("y", label=label("h(x, θ)"), shape="plaintext")
    else:
        g.node("f", label=label(f"f = {m.activation}"), shape="box", style="rounded,filled",
               fillcolor="#ede9fe", color="#6d28d9")
        g.node("y", label=label("y"), shape="plaintext", fontsize="12")
    g.edge("sum", "f", label=label("z"))
    g.edge("f", "y")
    return g
