"""The "network" view of a memory-augmented network (chapter 8): the book's
architecture figure of the Neural Turing Machine and the Differentiable
Neural Computer, from what the module says of itself (a `MemoryNetwork` part
of `Module.diagram()`), drawn left to right:

- the inputs x⟨t⟩ and r⟨t−1⟩ (the words read at the previous step) into the
  controller, an LSTM whose h⟨t⟩ and c⟨t⟩ loop to the next step;
- the interface vector ξ⟨t⟩ = W_ξ h⟨t⟩ + b_ξ, cut into its fields (keys,
  strengths, gates, ...), each with its size and the function that squashes
  it; write-head fields in orange, read-head fields in green;
- the write head: its stages (the DNC's usage, allocation, write weighting,
  temporal link; the NTM's content, interpolation, shift and sharpening), the
  last writing the memory;
- the memory matrix M, N rows × W numbers;
- one read head's stages, for each of the R heads, ending in the read vector;
- the output layer y⟨t⟩ = W_y [h⟨t⟩; r⟨t⟩] + b_y.

What a step carries to the next (M⟨t⟩, r⟨t⟩, h⟨t⟩ and c⟨t⟩, usage, links,
the heads' weightings) is drawn as dashed blue edges labelled ⟨t−1⟩ that
run back against the flow: the loop of the recurrence.

The renderer lays out only what the module describes: which fields and
stages exist, and which feed which, come from the part (so an NTM has no
allocation or link because it does not describe one).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from ..nn.module import Field, MemoryNetwork, Stage
from ._optional import require
from .labels import FONT, label
from .labels import heading as heading_label
from .recurrent import NAMES

if TYPE_CHECKING:
    import graphviz
else:  # imported when a drawing is made, with an install hint when missing
    graphviz = require("graphviz", "drawing a graph (tg.draw)")

__all__ = ["memory_source", "describe_memory"]

T, TM1 = "⟨t⟩", "⟨t−1⟩"
HEADS = {"write": {"fillcolor": "#ffedd5", "color": "#c2410c"},
         "read": {"fillcolor": "#dcfce7", "color": "#15803d"}}
INPUT = {"shape": "box", "style": "rounded,filled", "fillcolor": "#dbeafe", "color": "#1d4ed8"}
CONTROLLER = {"shape": "box", "style": "rounded,filled", "fillcolor": "#fed7aa",
              "color": "#c2410c", "penwidth": "1.6"}
LAYER = {"shape": "box", "style": "rounded,filled", "fillcolor": "#fef3c7", "color": "#b45309"}
MEMORY = {"shape": "box3d", "style": "filled", "fillcolor": "#ede9fe", "color": "#6d28d9",
          "penwidth": "1.8", "fontsize": "11"}
LOOP = {"style": "dashed", "color": "#2563eb", "fontcolor": "#2563eb", "penwidth": "1.3"}
MEMORY_EDGE = {"color": "#6d28d9", "fontcolor": "#6d28d9", "penwidth": "1.6"}


def _dims(shape: tuple[int, ...]) -> str:
    return " × ".join(str(n) for n in shape)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def describe_memory(p: MemoryNetwork) -> list[str]:
    """A memory network in a few lines, for a box in a bigger picture."""
    kind = NAMES.get(p.controller.kind, p.controller.kind)
    return [f"{p.name}: {p.title}",
            f"{kind} controller, hidden {p.controller.hidden_size}",
            f"memory N × W = {p.memory_size} × {p.word_size}, "
            f"{_plural(p.num_reads, 'read head')}",
            f"input {p.input_size} → output {p.output_size}"]


def _check(p: MemoryNetwork) -> dict[str, str]:
    """Each field's and stage's node id; a part that contradicts itself (a
    subclass describing itself wrongly) is refused with what is wrong."""
    where = f"draw(view='network'): {p.title} {p.name!r}"
    ids: dict[str, str] = {}
    for k, f in enumerate(p.interface):
        if f.head not in HEADS:
            raise ValueError(f"{where}: interface field {f.name!r} is used by head {f.head!r}; "
                             f"expected 'write' or 'read'")
        ids.setdefault(f.name, f"xi{k}")
    stages = list(p.write_head) + list(p.read_head)
    for k, s in enumerate(stages):
        ids.setdefault(s.name, f"s{k}")
    names = [f.name for f in p.interface] + [s.name for s in stages]
    dup = next((n for k, n in enumerate(names) if n in names[:k] or n == "memory"), None)
    if dup is not None:
        raise ValueError(f"{where}: the name {dup!r} is given to more than one field or stage "
                         f"(or is 'memory', the memory's): names must be unique")
    given = sum(int(np.prod(f.shape)) for f in p.interface)
    if given != p.interface_size:
        sizes = ", ".join(f"{f.name} {_dims(f.shape)}" for f in p.interface)
        raise ValueError(f"{where}: its interface fields hold {given} numbers ({sizes}) but the "
                         f"interface layer gives {p.interface_size}")
    stage_names = {s.name for s in stages}
    for s in stages:
        for n in s.inputs:
            if n not in ids and n != "memory":
                raise ValueError(f"{where}: stage {s.name!r} uses {n!r}, which is neither an "
                                 f"interface field nor a stage")
        for n in s.previous:
            if n not in stage_names:
                raise ValueError(f"{where}: stage {s.name!r} uses {n!r} of the previous step, "
                                 f"which is not a stage (only stages carry values to the next "
                                 f"step; the memory's own loop is always drawn)")
    writers = [s.name for s in p.write_head if s.writes]
    if len(writers) != 1 or any(s.writes for s in p.read_head):
        raise ValueError(f"{where}: exactly one write-head stage must write the memory "
                         f"(writes=True), got {writers or 'none'}")
    if not p.read_head:
        raise ValueError(f"{where}: the read head has no stages (its last gives the read vector)")
    return ids


def _stage_label(s: Stage) -> object:
    return label(f"{s.symbol}{T}  {s.name}", f"({_dims(s.shape)})", s.formula, limit=72)


def _loop(g: graphviz.Digraph, later: str, earlier: str, text: object) -> None:
    """What a step carries to the next: an arrow from `later` back to
    `earlier`, written as earlier -> later with dir=back so that the layout
    ranks it with the flow (a forward-ranked back edge could pull `earlier`
    after `later`) and routes it around the nodes between, where
    constraint=false would cut straight across them."""
    if later == earlier:
        g.edge(later, later, label=text, **LOOP)
    else:
        g.edge(earlier, later, label=text, dir="back", **LOOP)


def _row(g: graphviz.Digraph, ids: list[str]) -> None:
    """`ids` in one rank, in this order (invisible edges keep it)."""
    with g.subgraph() as s:
        s.attr(rank="same")
        for a in ids:
            s.node(a)
        for a, b in zip(ids, ids[1:]):
            s.edge(a, b, style="invis")


def memory_source(p: MemoryNetwork, title: Optional[str] = None) -> graphviz.Digraph:
    """The Digraph of the book's figure of the memory network `p`."""
    ids = _check(p)
    N, W, R = p.memory_size, p.word_size, p.num_reads
    H, I, O = p.controller.hidden_size, p.input_size, p.output_size
    kind = NAMES.get(p.controller.kind, p.controller.kind)
    read_in = p.controller.input_size - I     # the read words fed back: R·W
    g = graphviz.Digraph("memory")
    g.attr("graph", rankdir="LR", fontname=FONT, fontsize="12", nodesep="0.18",
           ranksep="0.55", newrank="true", splines="spline")
    g.attr("node", fontname=FONT, fontsize="10")
    g.attr("edge", fontname=FONT, fontsize="9", arrowsize="0.6", color="#4b5563",
           fontcolor="#6b7280")
    lines = [f"{p.name}: {p.title}, memory N × W = {N} × {W} (N rows of W numbers), "
             f"{_plural(R, 'read head')}, {kind} controller with hidden {H}, "
             f"input {I}, output {O}",
             f"each step: h{T} = {kind}([x{T}; r{TM1}]),  ξ{T} = W_ξ h{T} + b_ξ cut into "
             f"the heads' fields; the write head writes M{T}, "
             + ("the read head reads it" if R == 1 else f"the {R} read heads read it"),
             "dashed blue: carried to the next time step (⟨t−1⟩ there)"]
    g.attr("graph", label=heading_label(*([title] if title else []), *lines, width=110),
           labelloc="t")

    # inputs and controller
    g.node("x", label=label(f"x{T}  input", f"({I})"), **INPUT)
    g.node("r_prev", label=label(f"r{TM1}  words read", "at the last step",
                                 f"({R} × {W})" if R > 1 else f"({W})"), **INPUT)
    _row(g, ["x", "r_prev"])
    g.node("controller", label=label(f"controller: {kind}",
                                     f"[x{T}; r{TM1}]: {I} + {read_in} → hidden {H}"),
           **CONTROLLER)
    g.edge("x", "controller")
    g.edge("r_prev", "controller")
    _loop(g, "controller", "controller", label(f"h{TM1}, c{TM1}"))

    # the interface vector, cut into its fields in order
    g.node("xi", label=label(f"interface ξ{T} = W_ξ h{T} + b_ξ", f"{H} → {p.interface_size}"),
           **LAYER)
    g.edge("controller", "xi", label=label(f"h{T}"))
    # one column in the order ξ⟨t⟩ is cut: a plain rank (Graphviz does not
    # keep the order of a rank inside a cluster), headed by its size
    column = ["xi_head"] + [ids[f.name] for f in p.interface]
    with g.subgraph() as c:
        c.attr(rank="same")
        c.node("xi_head", label=label(f"ξ{T}: {p.interface_size} numbers"), shape="plaintext",
               fontsize="11")
        for f in p.interface:
            c.node(ids[f.name], label=label(f"{f.symbol}  {f.name}",
                                            f"{_dims(f.shape)}, {f.squash}"),
                   shape="box", style="rounded,filled", fontsize="9", margin="0.06,0.02",
                   **HEADS[f.head])
        for a, b in zip(column, column[1:]):
            c.edge(a, b, style="invis")
    for f in p.interface:
        g.edge("xi", ids[f.name], arrowhead="none", color="#9ca3af")

    # the heads and the memory between them
    writer = next(s for s in p.write_head if s.writes)
    stage_head = {s.name: "write" for s in p.write_head}
    stage_head.update({s.name: "read" for s in p.read_head})
    for head, stages, text in (
            ("write", p.write_head, "write head"),
            ("read", p.read_head, f"read head i (one of {R}: each alike)" if R > 1
             else "read head")):
        with g.subgraph(name=f"cluster_{head}") as c:
            c.attr(label=label(text), labeljust="l", style="rounded", color=HEADS[head]["color"],
                   fontcolor=HEADS[head]["color"], fontsize="12")
            for s in stages:
                c.node(ids[s.name], label=_stage_label(s), shape="box",
                       style="rounded,filled", fillcolor="white", color=HEADS[head]["color"])
    g.node("memory", label=label(f"memory M{T}", f"N × W = {N} × {W}",
                                 f"{N} rows (locations)", f"of {W} numbers (words)"), **MEMORY)
    g.edge(ids[writer.name], "memory", label=label(f"write M{T}"), **MEMORY_EDGE)

    sources = {f.name: ids[f.name] for f in p.interface}
    for s in list(p.write_head) + list(p.read_head):
        for n in s.inputs:
            if n == "memory":
                if stage_head[s.name] == "write":
                    # the write head addresses the memory of the step before
                    _loop(g, "memory", ids[s.name], label(f"M{TM1}"))
                else:
                    g.edge("memory", ids[s.name], label=label(f"M{T}"), **MEMORY_EDGE)
            elif n in sources:
                g.edge(sources[n], ids[s.name], color=HEADS[stage_head[s.name]]["color"],
                       penwidth="0.8")
            else:
                g.edge(ids[n], ids[s.name])
        for n in s.previous:
            src = next(x for x in list(p.write_head) + list(p.read_head) if x.name == n)
            _loop(g, ids[n], ids[s.name], label(f"{src.symbol}{TM1}"))

    # the words read: to the output layer, and fed back at the next step
    reader = p.read_head[-1]
    words = f"{R} × {W}" if R > 1 else f"{W}"
    g.node("output", label=label(f"output layer  y{T} = W_y [h{T}; r{T}] + b_y",
                                 f"{H} + {read_in} → {O}"), **LAYER)
    g.node("y", label=label(f"y{T}  output", f"({O})"), shape="box", style="rounded,filled",
           fillcolor="#f3f4f6", color="#374151")
    g.edge(ids[reader.name], "output", label=label(f"r{T} ({words})"))
    g.edge("controller", "output", label=label(f"h{T}"))
    g.edge("output", "y")
    _loop(g, ids[reader.name], "r_prev", label(f"r{T} → r{TM1}", "next step"))
    _loop(g, "memory", "memory", label(f"M{T} → M{TM1}"))
    return g
