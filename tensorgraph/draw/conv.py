"""The network view of a convolutional network (chapter 5's picture).

Left to right: the input and each convolution or pooling stage as a stack
of feature maps, drawn to scale (a 14×14 map is half as wide as a 28×28
one) and labelled height×width×depth ("28×28×32"; length×depth for 1-D
maps); on the arrow into a stack, what made it ("conv 5×5", "pad 2",
"max pool 2×2", then "+ batch norm", "+ ReLU", "+ dropout"), and in the
stack before it a small square the size of the kernel or pooling window,
with lines to the one output value it gives. Then, after the flatten, the
dense layers as the network view draws them: a column of units per layer,
the first and last few of a wide layer and "N more", edges whose width
grows with |w| (blue positive, red negative), softmax outputs boxed.

A stack draws one map per channel up to a few, then one more per doubling
(1 channel: one map; 32: six; 64: seven), and past `MAX_MAPS` the last map
behind a gap of three dots: depth reads at a glance, the exact number is in
the label.

Sizes come from the modules: each `FeatureMaps` part carries its module's
`output_shape`, applied to the input shape given to `tg.draw`
(`input_shape=(C, H, W)` or an example `input=`). Without one the stacks
are drawn at one size, labelled with their depth only ("32 maps"), and the
heading says how to get the sizes.

Graphviz cannot overlap nodes, and a stack is overlapping rectangles: so
this picture is laid out here, every node pinned at its position (the
graph's `layout=neato` attribute keeps them there, on both backends).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from ..nn import Activation, FeatureMaps, Regularizer, Units
from ._optional import require
from .graph import Remark
from .labels import FONT, fmt_number, label, subscript
from .labels import heading as heading_label
from .network import SYMBOL, ZERO, _colour, _Column, _columns, _describe, _gap, _shown, _width

if TYPE_CHECKING:
    import graphviz
else:
    graphviz = require("graphviz", "drawing a graph (tg.draw)")

__all__ = ["conv_source", "stage_shapes"]

MAP_SIDE = 64.0       # points: the largest map's longer side
MAP_MIN = 12.0        # the smallest map drawn
MAP_UNKNOWN = 48.0    # a map whose size is not known
BAR = 12.0            # the height of a 1-D map (a sequence)
OFFSET = 5.0          # between the maps of a stack
MAX_MAPS = 7          # maps drawn per stack at most (past it: three dots and the last map)
GAP = 74.0            # between stacks: room for the operation's text
DOTS = 2.4            # offsets between a wide stack's last two maps (the dots)
ELIDED = 110.0        # the node standing for stages left out
MAX_WIDTH = 1000.0    # points: past it a deep network leaves out middle stages
LINE = 11.0           # height of a line of 9-point text
UNIT = 28.0           # a neuron's circle
UNIT_STEP = 34.0      # from one neuron to the next in a column
COLUMN_GAP = 96.0     # between dense columns
# What each stage looks like.
COLOURS = {"input": ("#dbeafe", "#1d4ed8"), "conv": ("#fef3c7", "#b45309"),
           "pool": ("#dcfce7", "#15803d")}
NAMES = {"relu": "ReLU", "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax",
         "step": "step"}


@dataclass
class _Stack:
    """A stack of feature maps as drawn: the input or a stage's output."""
    name: str
    kind: str                              # "input", "conv" or "pool"
    channels: Optional[int]
    spatial: Optional[tuple[int, ...]]     # (H, W) or (L,); None when not known
    rank: int                              # 2 for images, 1 for sequences
    into: list[str] = field(default_factory=list)   # the text on the arrow into it
    window: tuple[int, ...] = ()           # kernel or pooling window (marked in the stack before)

    def size_text(self) -> str:
        if self.spatial is None:
            if self.channels is None:
                return "maps"
            return f"{self.channels} map{'s' if self.channels != 1 else ''}"
        return "×".join(str(n) for n in self.spatial) + f"×{self.channels}"


def _pairs(v: Any) -> tuple[int, ...]:
    return tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else ()


def _times(v: Sequence[int]) -> str:
    """(5, 5) -> "5×5"; (3,) -> "3"."""
    return "×".join(str(n) for n in v)


def _uniform(v: Sequence[int]) -> str:
    """A window argument as text: one number when all entries agree."""
    return str(v[0]) if len(set(v)) == 1 else "×".join(str(n) for n in v)


def describe(part: FeatureMaps) -> list[str]:
    """What a conv or pool stage does, as short lines: the operation and its
    window ("conv 5×5", "max pool 2×2"), the output depth of a convolution
    ("32 filters") and the arguments that are not their defaults (stride
    other than 1 for a convolution or other than the window for a pool,
    padding, dilation, groups)."""
    k = _pairs(part.kernel_size)
    lines = [f"{part.operation} {_times(k)}".strip()]
    if part.kind == "conv" and part.channels is not None:
        lines.append(f"{part.channels} filters")
    stride = _pairs(part.stride)
    if stride and stride != (k if part.kind == "pool" else (1,) * len(stride)):
        lines.append(f"stride {_uniform(stride)}")
    if isinstance(part.padding, str):
        if part.padding != "valid":
            lines.append(f"pad '{part.padding}'")
    elif any(_pairs(part.padding)):
        lines.append(f"pad {_uniform(_pairs(part.padding))}")
    dilation = _pairs(part.dilation)
    if any(d != 1 for d in dilation):
        lines.append(f"dilation {_uniform(dilation)}")
    if part.groups != 1:
        lines.append(f"groups {part.groups}")
    return lines


def _check_shape(input_shape: Any) -> Optional[tuple[int, ...]]:
    if input_shape is None:
        return None
    try:
        shape = tuple(int(n) for n in input_shape)
        ok = all(int(n) == n for n in input_shape)
    except (TypeError, ValueError):
        shape, ok = (), False
    if not ok or not shape or any(n < 1 for n in shape):
        raise ValueError("draw(view='network'): input_shape must be the shape of one example "
                         f"without the batch dimension, e.g. (1, 28, 28); got {input_shape!r}")
    return shape


class _Plan:
    """What the picture shows, computed from the parts before anything is drawn."""

    def __init__(self) -> None:
        self.stacks: list[_Stack] = []
        self.flatten: Optional[str] = None     # the flatten's name, when there is one
        self.flat_size: Optional[int] = None   # the vector after the maps
        self.flat_into: list[str] = []         # the text on the arrow into the vector
        self.cols: list[_Column] = []
        self.input_dropout: Optional[float] = None
        self.notes: list[str] = []


def _plan(parts: list[Any], input_shape: Optional[tuple[int, ...]]) -> _Plan:
    """Walk the parts with the shape of one example (batch 1): feature-map
    stages while the data is a stack of maps, then, from a flatten (or the
    first dense layer), the dense columns."""
    plan = _Plan()
    maps = [p for p in parts if isinstance(p, FeatureMaps) and p.kind in ("conv", "pool")]
    rank = len(_pairs(maps[0].kernel_size)) if maps and maps[0].kernel_size else 2
    first_in = next((p.in_channels for p in parts
                     if isinstance(p, FeatureMaps) and p.in_channels is not None), None)
    shape: Optional[tuple[int, ...]] = None if input_shape is None else (1,) + input_shape
    if input_shape is not None and len(input_shape) > 1:
        rank = len(input_shape) - 1
    channels = input_shape[0] if input_shape is not None else first_in
    spatial = input_shape[1:] if input_shape is not None else None
    first = next((p for p in parts if isinstance(p, (Units, FeatureMaps))), None)
    # A dense network with batch norm (BatchNorm1d) has no maps: only columns.
    vector = (input_shape is not None and len(input_shape) == 1) or isinstance(first, Units)
    if not vector:
        plan.stacks.append(_Stack("input", "input", channels, spatial, rank))
    where = "input"
    k = 0
    while k < len(parts) and not vector:
        part = parts[k]
        if isinstance(part, Units):
            raise TypeError(f"draw(view='network'): {part.name} (a dense layer) comes straight "
                            f"after the feature maps of {where}; the network view needs a "
                            "flatten (nn.Flatten) between the maps and the dense layers")
        k += 1
        cur = plan.stacks[-1]
        if isinstance(part, FeatureMaps) and part.kind in ("conv", "pool", "norm"):
            if part.in_channels is not None and cur.channels is not None \
                    and part.in_channels != cur.channels:
                plural = "s" if part.in_channels != 1 else ""
                raise ValueError(f"draw(view='network'): {part.name} ({part.operation}) takes "
                                 f"{part.in_channels} channel{plural} but {where} gives "
                                 f"{cur.channels} ({cur.size_text()})")
            if shape is not None:
                shape = _apply(part, shape)
            if part.kind == "norm":
                cur.into.append(f"+ {part.operation}")
                continue
            out_channels = shape[1] if shape is not None else (
                part.channels if part.channels is not None else cur.channels)
            plan.stacks.append(_Stack(part.name, part.kind, out_channels,
                                      None if shape is None else tuple(shape[2:]),
                                      len(_pairs(part.kernel_size)) or cur.rank,
                                      describe(part), _pairs(part.kernel_size)))
            where = part.name
        elif isinstance(part, FeatureMaps) and part.kind == "flatten":
            plan.flatten = part.name
            if shape is not None:
                shape = _apply(part, shape)
                plan.flat_size = int(np.prod(shape[1:]))
            elif cur.spatial is not None and cur.channels is not None:
                plan.flat_size = cur.channels * int(np.prod(cur.spatial))
            plan.flat_into = [part.operation]
            vector = True
        elif isinstance(part, Activation):
            if part.function not in ("linear", "identity"):
                cur.into.append(f"+ {NAMES.get(part.function, part.function)}")
        elif isinstance(part, Regularizer):
            cur.into.append(f"+ {part.kind} p={fmt_number(part.p)}")
        else:
            raise TypeError(f"draw(view='network'): cannot draw {part!r} among feature maps")
    rest = parts[k:]
    if input_shape is not None and len(input_shape) == 1:
        plan.flat_size = input_shape[0]
    if any(isinstance(p, FeatureMaps) and p.kind != "norm" for p in rest):
        bad = next(p for p in rest if isinstance(p, FeatureMaps) and p.kind != "norm")
        raise TypeError(f"draw(view='network'): {bad.name} ({bad.operation}) comes after the "
                        "maps were flattened into a vector; the network view draws feature "
                        "maps first, then dense layers")
    plan.cols, plan.input_dropout = _columns(rest)
    if plan.cols:
        n_in = plan.cols[0].weight.shape[0]
        if plan.flat_size is None:
            plan.flat_size = n_in
        elif plan.flat_size != n_in:
            last = plan.stacks[-1] if plan.stacks else None
            gives = f"{plan.flat_size}" if last is None or last.spatial is None else \
                f"{last.size_text()} = {plan.flat_size} numbers"
            raise ValueError(f"draw(view='network'): {plan.cols[0].name} takes {n_in} inputs "
                             f"but {plan.flatten or where} gives {gives}")
    if input_shape is None and plan.stacks:
        dims = "(C, L)" if plan.stacks[0].rank == 1 else "(C, H, W)"
        plan.notes.append(Remark(f"sizes not known: pass input_shape={dims} (one example, "
                                 "no batch dimension) or input=<a batch> to tg.draw"))
    return plan


def _apply(part: FeatureMaps, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The part's output shape, from its module's own arithmetic."""
    if part.output_shape is None:
        raise TypeError(f"draw(view='network'): {part.name} ({part.operation}) does not say "
                        "its output shape (FeatureMaps.output_shape is None); draw without "
                        "input_shape")
    return tuple(int(n) for n in part.output_shape(tuple(shape)))


def stage_shapes(module: Any, input_shape: Sequence[int]
                 ) -> list[tuple[str, tuple[Optional[int], ...]]]:
    """(name, shape of one example) after each stage that the network view
    draws: the input, each conv and pool stack, the flattened vector and each
    dense layer, computed from the modules' own `output_shape` (None for a
    depth that is not known)."""
    plan = _plan(module.diagram(), _check_shape(input_shape))
    out = [(s.name, (s.channels,) + tuple(s.spatial or ())) for s in plan.stacks]
    if plan.flat_size is not None:
        out.append((plan.flatten or "input", (plan.flat_size,)))
    out += [(c.name, (c.weight.shape[1],)) for c in plan.cols]
    return out


# ---------------------------------------------------------------------------
# Drawing

def _maps_drawn(channels: Optional[int]) -> tuple[int, bool]:
    """How many maps a stack of `channels` draws, and whether the last one
    stands behind a gap of dots (more channels than `MAX_MAPS` can say)."""
    if channels is None:
        return 3, False
    if channels <= 1:
        return 1, False
    n = 1 + math.ceil(math.log2(channels))
    return min(n, MAX_MAPS), n > MAX_MAPS


class _Canvas:
    """Nodes pinned at positions given in points (y up, as Graphviz)."""

    def __init__(self, g: graphviz.Digraph) -> None:
        self.g = g
        self.count = 0
        self.at: dict[str, tuple[float, float]] = {}

    def node(self, x: float, y: float, **attrs: Any) -> str:
        self.count += 1
        nid = f"n{self.count}"
        self.at[nid] = (x, y)
        self.g.node(nid, pos=f"{x / 72:.3f},{y / 72:.3f}!", **attrs)
        return nid

    def point(self, x: float, y: float, visible: bool = False, colour: str = "#374151",
              size: float = 0.04) -> str:
        return self.node(x, y, label="", shape="point", width=f"{size:.2f}",
                         height=f"{size:.2f}", fixedsize="true", color=colour,
                         fillcolor=colour, **({} if visible else {"style": "invis"}))

    def text(self, x: float, y: float, lines: Sequence[str], **attrs: Any) -> str:
        return self.node(x, y, **{"label": label(*lines), "shape": "plaintext",
                                  "margin": "0", "width": "0", "height": "0", **attrs})

    def box(self, x: float, y: float, w: float, h: float, fill: str, border: str,
            **attrs: Any) -> str:
        return self.node(x, y, label="", shape="box", style="filled", fixedsize="true",
                         width=f"{w / 72:.3f}", height=f"{h / 72:.3f}", fillcolor=fill,
                         color=border, **attrs)


@dataclass
class _Placed:
    """A stack's geometry: the front map's centre and size, the stack's extent."""
    fx: float
    fy: float
    w: float
    h: float
    left: float
    right: float
    top: float
    bottom: float


def _map_size(stack: _Stack, scale: Optional[float]) -> tuple[float, float]:
    if stack.spatial is None or scale is None:
        return (MAP_UNKNOWN, BAR if stack.rank == 1 else MAP_UNKNOWN)
    if len(stack.spatial) == 1:
        return max(MAP_MIN, stack.spatial[0] * scale), BAR
    h, w = stack.spatial[-2], stack.spatial[-1]
    return max(MAP_MIN, w * scale), max(MAP_MIN, h * scale)


def _draw_stack(c: _Canvas, stack: _Stack, left: float, scale: Optional[float]) -> _Placed:
    n, dots = _maps_drawn(stack.channels)
    w, h = _map_size(stack, scale)
    depth = (n - 1 + (DOTS if dots else 0)) * OFFSET
    fx, fy = left + w / 2, -depth / 2
    fill, border = COLOURS.get(stack.kind, ("#f3f4f6", "#6b7280"))
    shifts = [k * OFFSET for k in range(n)]
    if dots:
        shifts[-1] += DOTS * OFFSET
    for k in reversed(range(n)):   # back to front: the front map is drawn last, on top
        d = shifts[k]
        c.box(fx + d, fy + d, w, h, fill, border, penwidth="1.2" if k == 0 else "0.8",
              tooltip=f"{stack.name}: {stack.size_text()}")
        if dots and k == n - 1:
            # The channels not drawn: dots off the lower right corners, between
            # the last two maps, where neither covers them.
            for j in (0.8, 1.5, 2.2):
                c.point(fx + w / 2 + shifts[-2] + j * OFFSET,
                        fy - h / 2 + shifts[-2] + j * OFFSET, visible=True,
                        colour=border, size=0.03)
    top = fy + h / 2 + depth
    bottom = fy - h / 2
    lines = [stack.size_text(), stack.name]
    c.text(left + (w + depth) / 2, bottom - 6 - LINE, lines, fontsize="10",
           tooltip=stack.name)
    return _Placed(fx, fy, w, h, left, left + w + depth, top, bottom)


def _mark_window(c: _Canvas, before: _Placed, after: _Placed, window: tuple[int, ...],
                 scale: Optional[float], colour: str) -> None:
    """The kernel (or pooling window) as a square in the front map of the
    stack before, with lines to the one value it gives in the stack after."""
    if not window:
        return
    if scale is None:
        side = [8.0] * len(window)
    else:
        side = [max(4.0, k * scale) for k in window]
    sw = min(side[-1], before.w * 0.6)
    sh = BAR if len(window) == 1 else min(side[0], before.h * 0.6)
    # Right of the centre and low in the map: the lines then pass under the
    # arrow, clear of the operation written above it.
    x = before.fx + before.w * 0.15
    y = before.fy - (0 if len(window) == 1 else before.h * 0.18)
    c.box(x, y, sw, sh, "#ffffff", colour, penwidth="1.2", tooltip=f"window {_times(window)}")
    tx = after.fx + after.w * 0.15
    ty = after.fy - (0 if len(window) == 1 else after.h * 0.18)
    target = c.point(tx, ty, visible=True, colour=colour, size=0.06)
    for cy in (y + sh / 2, y - sh / 2):
        corner = c.point(x + sw / 2, cy)
        c.g.edge(corner, target, color=colour, style="dashed", arrowhead="none",
                 penwidth="0.8")


def conv_source(parts: list[Any], *, input_shape: Optional[Sequence[int]] = None,
                title: Optional[str] = None, cap: int = 10, weights: Optional[bool] = None,
                max_nodes: Optional[int] = None) -> tuple[graphviz.Digraph, list[str]]:
    """The Digraph of the network view of a network with feature maps (some
    of the `parts` of its diagram are `FeatureMaps`), and its notes. A
    network too deep to draw within `MAX_WIDTH` points keeps its first and
    last stages and draws the ones between as one node (a note says so),
    unless `max_nodes` is None."""
    plan = _plan(parts, _check_shape(input_shape))
    g = graphviz.Digraph("network")
    g.attr("graph", layout="neato", splines="line", outputorder="edgesfirst", fontname=FONT,
           fontsize="13", labelloc="t", pad="0.2")
    g.attr("node", fontname=FONT, fontsize="9")
    g.attr("edge", fontname=FONT, fontsize="8", arrowsize="0.6")
    c = _Canvas(g)
    known = [s.spatial for s in plan.stacks if s.spatial is not None]
    scale = MAP_SIDE / max(max(s) for s in known) if known else None

    chain = [s.size_text() for s in plan.stacks]
    if plan.flat_size is not None:
        chain.append(str(plan.flat_size))
    chain += [str(col.weight.shape[1]) for col in plan.cols]
    if len(chain) > 14:
        chain = chain[:7] + [f"… ({len(chain)} stages) …"] + chain[-5:]
    legend = []
    if plan.stacks:
        dims = "length×channels" if plan.stacks[0].rank == 1 else "height×width×channels"
        legend = [f"stacks of feature maps: {dims}; squares: kernels and pooling windows"]
    g.attr("graph", label=heading_label(*([title] if title else []), " → ".join(chain),
                                        *legend, *[str(n) for n in plan.notes], width=110))

    notes = list(plan.notes)
    dense = GAP + UNIT + COLUMN_GAP * len(plan.cols) + 60 if plan.cols else 0.0
    head, tail = _kept_stacks([_stack_width(s, scale) for s in plan.stacks], dense,
                              None if max_nodes is None else MAX_WIDTH)
    n = len(plan.stacks)
    if head < n:
        left_out = plan.stacks[head:n - tail]
        notes.append(f"{n - 1} stages are too many for a readable picture ({MAX_WIDTH:g} "
                     f"points wide): the first {head - 1} and the last {tail} are drawn, the "
                     f"{len(left_out)} between as one node (max_nodes=None draws them all)")
    x = 0.0
    placed: list[_Placed] = []
    for k, stack in enumerate(plan.stacks):
        if head <= k < n - tail:
            continue
        if k:
            x += GAP
        if k == n - tail and head < n:
            # The stages left out, as one node: their names and sizes stay in the heading.
            names = f"{plan.stacks[head].name} … {plan.stacks[n - tail - 1].name}"
            mid = x + ELIDED / 2
            _arrow(c, placed[-1].right + 4, x, [])
            c.text(mid, 0.0, [f"⋯ {n - tail - head} more stages", names],
                   fontcolor="#6b7280", style="rounded,dashed", shape="box", color=ZERO,
                   margin="0.08,0.05", tooltip=names)
            x += ELIDED + GAP
            placed.append(_Placed(x - GAP, 0.0, 0.0, 0.0, x - GAP - 4, x - GAP - 4, 0.0, 0.0))
        p = _draw_stack(c, stack, x, scale)
        if k:
            prev = placed[-1]
            _arrow(c, prev.right + 4, p.left - 4, stack.into)
            if k != n - tail or head == n:
                _mark_window(c, prev, p, stack.window, scale, COLOURS[stack.kind][1])
        placed.append(p)
        x = p.right
    if plan.stacks and plan.stacks[0].into:   # dropout or normalisation of the input itself
        first = placed[0]
        c.text((first.left + first.right) / 2, first.top + 6 + LINE, plan.stacks[0].into,
               fontcolor="#374151")
    if plan.cols:
        _dense(c, plan, x + (GAP if placed else 0.0), placed[-1] if placed else None, cap,
               weights)
    return g, notes


def _stack_width(stack: _Stack, scale: Optional[float]) -> float:
    n, dots = _maps_drawn(stack.channels)
    return _map_size(stack, scale)[0] + (n - 1 + (DOTS if dots else 0)) * OFFSET


def _kept_stacks(widths: list[float], dense: float,
                 max_width: Optional[float]) -> tuple[int, int]:
    """(head, tail): draw stacks 0..head-1 and the last `tail`, the ones
    between as one node, so that the picture keeps to `max_width` points
    (the input, the first stage and the last are always drawn). (n, 0)
    when all fit."""
    n = len(widths)
    if max_width is None or n <= 4 or sum(widths) + GAP * (n - 1) + dense <= max_width:
        return n, 0
    head, tail = 2, 1
    used = widths[0] + widths[1] + widths[-1] + GAP * 3 + ELIDED + dense
    while head + tail < n - 1:
        # Alternate ends; when one end's next stack is too wide, try the other.
        ends = [head, n - tail - 1] if head <= tail + 1 else [n - tail - 1, head]
        fits = [k for k in ends if used + widths[k] + GAP <= max_width]
        if not fits:
            break
        used += widths[fits[0]] + GAP
        if fits[0] == head:
            head += 1
        else:
            tail += 1
    return head, tail


def _arrow(c: _Canvas, x0: float, x1: float, lines: Sequence[str]) -> None:
    a, b = c.point(x0, 0.0), c.point(x1, 0.0)
    c.g.edge(a, b, color="#374151", penwidth="1.2")
    if lines:
        c.text((x0 + x1) / 2, 5 + LINE * len(lines) / 2, lines, fontcolor="#374151")


def _dense(c: _Canvas, plan: _Plan, x: float, maps: Optional[_Placed], cap: int,
           weights: Optional[bool]) -> None:
    """The flattened vector and the dense layers: columns of units as the
    network view draws them, laid out here."""
    cols = plan.cols
    assert plan.flat_size is not None
    sizes = [plan.flat_size] + [col.weight.shape[1] for col in cols]
    shown = [_shown(n, cap) for n in sizes]

    def ys(k: int) -> list[float]:
        idx, more = shown[k]
        count = len(idx) + (1 if more else 0)
        return [(count - 1) / 2 * UNIT_STEP - i * UNIT_STEP for i in range(count)]

    if maps is not None:
        x0 = maps.right + 4
        _arrow(c, x0, x - 4, plan.flat_into)
    ids: list[dict[int, str]] = []
    for k in range(len(sizes)):
        cx = x + UNIT / 2 + k * COLUMN_GAP
        idx, more = shown[k]
        gap = _gap(idx)
        pos = ys(k)
        column: dict[int, str] = {}
        slot = 0
        if k == 0:
            head = f"{'flatten' if plan.flatten else 'input'} ({sizes[0]})"
            if plan.input_dropout is not None:
                head += f"\ndropout p={fmt_number(plan.input_dropout)}"
            marked = False
        else:
            col = cols[k - 1]
            last = k == len(cols)
            head = _describe(col, f"{'output' if last else f'hidden {k}'} ({sizes[k]})")
            marked = col.output == "softmax"
        for n, i in enumerate(idx):
            if more and n == gap:
                c.text(cx, pos[slot], [f"⋮ {more} more"], fontcolor="#6b7280",
                       style="filled", fillcolor="#ffffff", shape="box", color="#ffffff")
                slot += 1
            if k == 0:
                attrs = {"label": label(f"x{subscript(i + 1)}"), "fillcolor": "#dbeafe",
                         "color": "#1d4ed8"}
            else:
                col = cols[k - 1]
                sym = SYMBOL.get(col.activation, col.activation or "z")
                if col.output == "sigmoid" and col.activation is None:
                    sym = "σ"
                # The bias only as a tooltip: a wide layer's circles are small.
                tip = f"{col.name}[{i}]" + ("" if col.bias is None else
                                            f": b = {fmt_number(col.bias[i])}")
                attrs = {"label": label(sym), "tooltip": tip,
                         "fillcolor": "#ede9fe" if marked else
                         "#fde7c8" if k == len(cols) else "#fef3c7",
                         "color": "#7c3aed" if marked else "#b45309", "fontsize": "7"}
            column[i] = c.node(cx, pos[slot], shape="circle", style="filled", fixedsize="true",
                               width=f"{UNIT / 72:.3f}", height=f"{UNIT / 72:.3f}", **attrs)
            slot += 1
        head_lines = head.split("\n")
        head_style = {"shape": "box", "style": "rounded", "color": "#cbd5e1",
                      "fontsize": "10", "margin": "0.06,0.03"}
        if marked:
            head_style.update(style="rounded,filled", color="#7c3aed", fillcolor="#ede9fe",
                              penwidth="1.5")
        c.node(cx, pos[0] + UNIT / 2 + 10 + LINE * len(head_lines) / 2,
               label=label(*head_lines), **head_style)
        ids.append(column)
        if k:
            _weights(c, cols[k - 1], ids[k - 1], column, weights)
    # The outputs, as the network view writes them.
    k = len(sizes) - 1
    sym = "p" if cols[-1].output == "softmax" else "y"
    for j, nid in ids[k].items():
        out = c.text(x + UNIT / 2 + k * COLUMN_GAP + 48, c.at[nid][1],
                     [f"{sym}{subscript(j + 1)}"], fontsize="11")
        c.g.edge(nid, out, color="#374151")


def _weights(c: _Canvas, col: _Column, src: dict[int, str], dst: dict[int, str],
             weights: Optional[bool]) -> None:
    w = col.weight
    scale = float(np.abs(w).max()) if w.size else 0.0
    write = bool(weights)
    for i, a in src.items():
        for j, b in dst.items():
            wij = float(w[i, j])
            attrs = {"penwidth": _width(wij, scale), "color": _colour(wij),
                     "tooltip": f"w = {fmt_number(wij)}"}
            if write:
                attrs.update(label=fmt_number(wij), fontcolor=_colour(wij))
            c.g.edge(a, b, **attrs)

