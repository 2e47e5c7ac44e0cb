"""The "network" view of a recurrent cell or layer: the book's cell diagram.

What one time step computes, from what the module says of itself (a `Cell`
part of `Module.diagram()`: kind and sizes), drawn bottom to top:

- the inputs x⟨t⟩ and h⟨t−1⟩ at the bottom, joined into [h⟨t−1⟩, x⟨t⟩];
- the gates above them, each a layer of `hidden_size` units with its own
  weights: σ (sigmoid) gates in yellow, tanh layers in orange;
- pointwise operations as small pink circles: ×, +, tanh, 1−;
- the state carried to the next step along the top: an LSTM's cell state
  c⟨t−1⟩ → × (forget gate) → + (input gate × candidate) → c⟨t⟩, drawn thick;
  a GRU's h⟨t−1⟩ up the left side, → × (update gate) → + → h⟨t⟩;
- the output h⟨t⟩ on the right.

The equations are written in the heading, with the sizes of the weights.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ..nn import Cell
from ._optional import require
from .labels import FONT, label
from .labels import heading as heading_label

if TYPE_CHECKING:
    import graphviz
else:  # imported when a drawing is made, with an install hint when missing
    graphviz = require("graphviz", "drawing a graph (tg.draw)")

__all__ = ["cell_source", "describe_cell"]

NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
SIGMOID = {"fillcolor": "#fef3c7", "color": "#b45309"}      # gates
TANH = {"fillcolor": "#fed7aa", "color": "#c2410c"}         # tanh layers
POINT = {"shape": "circle", "style": "filled", "fillcolor": "#fce7f3", "color": "#be185d",
         "width": "0.42", "fixedsize": "true", "fontsize": "13"}
STATE = {"penwidth": "2.6", "color": "#111827"}             # the state carried along the top
INPUT = {"shape": "box", "style": "rounded,filled", "fillcolor": "#dbeafe",
         "color": "#1d4ed8"}
OUTPUT = {"shape": "box", "style": "rounded,filled", "fillcolor": "#dcfce7",
          "color": "#15803d"}
HINT = "#6b7280"
TM1, T = "⟨t−1⟩", "⟨t⟩"


def describe_cell(p: Cell) -> list[str]:
    """A cell in a few lines, for a box in a bigger picture."""
    kind = NAMES.get(p.kind, p.kind)
    lines = [f"{p.name}: {kind}" + ("" if p.sequence else " cell"),
             f"input {p.input_size} → hidden {p.hidden_size}"]
    lines.append({"lstm": "gates f, i, o (σ), candidate g (tanh), cell state c",
                  "gru": "gates r, z (σ), candidate n (tanh)",
                  "rnn": f"h{T} = {p.nonlinearity}(W [h{TM1}, x{T}] + b)"}.get(p.kind, ""))
    if p.sequence and (p.num_layers > 1 or p.bidirectional):
        lines.append(f"{p.num_layers} layer{'s' if p.num_layers > 1 else ''}"
                     + (", both directions" if p.bidirectional else ""))
    if p.sequence:
        lines.append("the cell runs once per time step")
    return lines


def _base(title: Optional[str], lines: list[str]) -> graphviz.Digraph:
    g = graphviz.Digraph("cell")
    g.attr("graph", rankdir="BT", fontname=FONT, fontsize="12", nodesep="0.45",
           ranksep="0.45", newrank="true", splines="spline")
    g.attr("node", fontname=FONT, fontsize="10", shape="box", style="rounded,filled")
    g.attr("edge", fontname=FONT, fontsize="9", arrowsize="0.6", color="#4b5563",
           fontcolor=HINT)
    text = ([title] if title else []) + lines
    g.attr("graph", label=heading_label(*text, width=78), labelloc="t", fontsize="12")
    return g


def _row(g: graphviz.Digraph, ids: list[str]) -> None:
    """Put `ids` in one row, left to right (invisible edges keep the order)."""
    with g.subgraph() as s:
        s.attr(rank="same")
        for a, b in zip(ids, ids[1:]):
            s.edge(a, b, style="invis")
        for a in ids:
            s.node(a)


def _layer(g: graphviz.Digraph, id_: str, fn: str, name: str, units: int) -> None:
    style = SIGMOID if fn == "σ" else TANH
    g.node(id_, label=label(f"{fn}  {name}", f"{units} units"), **style)


def _sizes(p: Cell) -> str:
    H, D = p.hidden_size, p.input_size
    return (f"each gate: W ({H}, {H} + {D}) on [h{TM1}, x{T}]"
            + (f" and a bias ({H})" if p.bias else ", no bias"))


def _layers_line(p: Cell) -> list[str]:
    if not p.sequence:
        return ["one step; loop over a sequence by calling it once per step"]
    line = "the layer runs this cell at every time step"
    if p.num_layers > 1 or p.bidirectional:
        D = 2 if p.bidirectional else 1
        line += (f"; {p.num_layers} layer{'s' if p.num_layers > 1 else ''}"
                 + (" × 2 directions" if p.bidirectional else "")
                 + (f" (layers above the first take {D * p.hidden_size} inputs)"
                    if p.num_layers > 1 else ""))
    return [line]


def _inputs(g: graphviz.Digraph, p: Cell, h_prev: bool = True) -> None:
    """x⟨t⟩ (and h⟨t−1⟩) at the bottom, joined into [h⟨t−1⟩, x⟨t⟩]."""
    g.node("x", label=label(f"x{T}  input", f"({p.input_size})"), **INPUT)
    g.node("hx", label=label(f"[h{TM1}, x{T}]", f"({p.hidden_size} + {p.input_size})"),
           shape="box", style="rounded,filled", fillcolor="#f3f4f6", color="#6b7280")
    g.edge("x", "hx")
    if h_prev:
        g.node("h_prev", label=label(f"h{TM1}  hidden state", f"({p.hidden_size})"), **INPUT)
        g.edge("h_prev", "hx")
        _row(g, ["h_prev", "x"])


def _lstm(g: graphviz.Digraph, p: Cell) -> None:
    H = p.hidden_size
    _inputs(g, p)
    _layer(g, "f", "σ", "forget gate f", H)
    _layer(g, "i", "σ", "input gate i", H)
    _layer(g, "g", "tanh", "candidate g", H)
    _layer(g, "o", "σ", "output gate o", H)
    _row(g, ["f", "i", "g", "o"])
    for k in ("f", "i", "g", "o"):
        g.edge("hx", k)
    g.node("c_prev", label=label(f"c{TM1}  cell state", f"({H})"), **INPUT)
    g.node("mul_f", label="×", **POINT)
    g.node("add", label="+", **POINT)
    g.node("c", label=label(f"c{T}  cell state", f"({H})"), **OUTPUT)
    _row(g, ["c_prev", "mul_f", "add", "c"])
    g.node("mul_i", label="×", **POINT)
    g.node("tanh_c", label="tanh", **{**POINT, "fontsize": "9"})
    g.node("mul_o", label="×", **POINT)
    g.node("h", label=label(f"h{T}  output", "and next hidden state", f"({H})"), **OUTPUT)
    _row(g, ["mul_i", "mul_o", "h"])
    # the cell state's path along the top
    g.edge("c_prev", "mul_f", **STATE)
    g.edge("mul_f", "add", label=label(f"f ⊙ c{TM1}"), **STATE)
    g.edge("add", "c", label=label(f"c{T} = f ⊙ c{TM1} + i ⊙ g"), **STATE)
    g.edge("f", "mul_f", label=label("f: what to keep"))
    g.edge("i", "mul_i", label="i")
    g.edge("g", "mul_i", label="g")
    g.edge("mul_i", "add", label=label("i ⊙ g: what to write"))
    # h⟨t⟩ = o ⊙ tanh(c⟨t⟩): down from the top row
    g.edge("mul_o", "tanh_c", style="invis")
    g.edge("tanh_c", "add", style="invis")
    g.edge("c", "tanh_c", constraint="false", color="#111827")
    g.edge("tanh_c", "mul_o", constraint="false")
    g.edge("o", "mul_o", label=label("o: what to show"))
    g.edge("mul_o", "h", label=label(f"h{T} = o ⊙ tanh(c{T})"), penwidth="1.6")


def _gru(g: graphviz.Digraph, p: Cell) -> None:
    H = p.hidden_size
    _inputs(g, p)
    _layer(g, "r", "σ", "reset gate r", H)
    _layer(g, "z", "σ", "update gate z", H)
    _row(g, ["r", "z"])
    g.edge("hx", "r")
    g.edge("hx", "z")
    g.node("mul_r", label="×", **POINT)
    g.node("one_minus", label="1−", **POINT)
    _row(g, ["mul_r", "one_minus"])
    _layer(g, "n", "tanh", "candidate n", H)
    g.node("mul_n", label="×", **POINT)
    g.node("mul_z", label="×", **POINT)
    g.node("add", label="+", **POINT)
    g.node("h", label=label(f"h{T}  output", "and next hidden state", f"({H})"), **OUTPUT)
    _row(g, ["mul_z", "add", "h"])
    g.edge("r", "mul_r", label="r")
    g.edge("h_prev", "mul_r", label=label(f"W_hn h{TM1} + b_hn"))
    g.edge("mul_r", "n", label=label("r ⊙ (W_hn h + b)"))
    g.edge("x", "n", label=label(f"W_in x{T} + b_in"))
    g.edge("z", "one_minus", label="z")
    g.edge("one_minus", "mul_n", label="1 − z")
    g.edge("n", "mul_n", label="n")
    g.edge("z", "mul_z", label=label("z: how much to keep"))
    g.edge("mul_n", "add", label=label("(1 − z) ⊙ n: what to write"))
    # the hidden state's path: up the left side, then along the top
    g.edge("h_prev", "mul_z", label=label(f"h{TM1}"), **STATE)
    g.edge("mul_z", "add", label=label(f"z ⊙ h{TM1}"), **STATE)
    g.edge("add", "h", label=label(f"h{T} = (1 − z) ⊙ n + z ⊙ h{TM1}"), **STATE)


def _rnn(g: graphviz.Digraph, p: Cell) -> None:
    H = p.hidden_size
    _inputs(g, p)
    _layer(g, "a", p.nonlinearity, "hidden layer", H)
    g.edge("hx", "a", label=label(f"W [h{TM1}, x{T}]" + (" + b" if p.bias else "")))
    g.node("h", label=label(f"h{T}  output", "and next hidden state", f"({H})"), **OUTPUT)
    g.edge("a", "h", penwidth="1.6")
    g.edge("h", "h_prev", label=label("next step"), style="dashed", color="#2563eb",
           fontcolor="#2563eb", constraint="false")


EQUATIONS = {
    "lstm": [f"f = σ(W_f [h{TM1}, x{T}] + b_f)   i = σ(W_i [h{TM1}, x{T}] + b_i)",
             f"g = tanh(W_g [h{TM1}, x{T}] + b_g)   o = σ(W_o [h{TM1}, x{T}] + b_o)",
             f"c{T} = f ⊙ c{TM1} + i ⊙ g      h{T} = o ⊙ tanh(c{T})      (⊙: elementwise ×)"],
    "gru": [f"r = σ(W_r [h{TM1}, x{T}] + b_r)   z = σ(W_z [h{TM1}, x{T}] + b_z)",
            f"n = tanh(W_in x{T} + b_in + r ⊙ (W_hn h{TM1} + b_hn))",
            f"h{T} = (1 − z) ⊙ n + z ⊙ h{TM1}      (⊙: elementwise ×)"],
}


def cell_source(p: Cell, title: Optional[str] = None) -> graphviz.Digraph:
    """The Digraph of the book's diagram of cell `p`."""
    if p.kind not in NAMES:
        raise ValueError(f"draw(view='network'): unknown recurrent cell kind {p.kind!r} at "
                         f"{p.name!r}; expected 'rnn', 'lstm' or 'gru'")
    kind = NAMES[p.kind]
    head = f"{p.name}: {kind} {'layer' if p.sequence else 'cell'}, input {p.input_size}, " \
           f"hidden {p.hidden_size}"
    if p.kind == "rnn":
        eq = [f"h{T} = {p.nonlinearity}(W [h{TM1}, x{T}] + b),  W ({p.hidden_size}, "
              f"{p.hidden_size} + {p.input_size})"]
    else:
        eq = EQUATIONS[p.kind] + [_sizes(p)]
    g = _base(title, [head] + eq + _layers_line(p))
    {"lstm": _lstm, "gru": _gru, "rnn": _rnn}[p.kind](g, p)
    return g

