"""The op-level views of the renderer: "ops", "modules" and "backward".

All three read one analysis of the recorded DAG (`_Analysis`) and differ in
what becomes a drawn item and how edges are labelled:

- ops:      one item per op and per leaf; edges in argument order.
- modules:  the same items inside nested clusters, one per name scope;
            `depth=k` collapses scopes deeper than k into one item, and a
            chain of identical collapsed blocks becomes one "×N" item.
- backward: the ops items with every edge carrying the gradient that the
            backward pass sent along it (``node.edge_grads``), and every
            value showing the sum of what reached it.

Node ids come from `tg.walk` order ("n0", "n1", ...), never from `id()`, so
the same graph always gives the same DOT text. Past `max_nodes` the drawing
first collapses scopes (deepest first) and, if that is not enough, keeps the
items nearest the output and replaces the rest by one "… more" item; either
way it says so in the graph label and in the returned notes.

Node counts alone do not bound the layout time: Graphviz's `dot` slows down
badly on long edges (it routes each through one virtual node per rank it
crosses, and then minimises their crossings). One shared weight with an edge
into every step of a 50-step chain took minutes at 203 nodes. So a value used
by many ops spread over the depth of the graph (a shared parameter, an
unrolled recurrent network's weights) is drawn once in full and once per
further use as a small dashed copy with the same name (`_split_shared`), and
the drawing is cut further when its layout cost still exceeds a budget
(`_layout_cost`, `LAYOUT_BUDGET`). The time limit in `backends` is the last
guard.
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import numpy as np

from ..autograd import walk
from ..tensor import Tensor
from ._optional import require
from .labels import FONT, STYLE, fmt_array, fmt_attr, fmt_constant, fmt_shape, label
from .labels import heading as heading_label

if TYPE_CHECKING:
    import graphviz
else:  # imported when a drawing is made, with an install hint when missing
    graphviz = require("graphviz", "drawing a graph (tg.draw)")

__all__ = ["graph_source", "analysis_source", "ParamInfo", "SHARED_USES", "LAYOUT_BUDGET", "Remark"]


class Remark(str):
    """A note that explains the picture (shared values drawn once per use)
    without having left anything out: shown in the heading, never warned."""

#: A value with at least this many uses, reaching consumers at different depths,
#: is drawn once per use (see the module doc).
SHARED_USES = 5
#: The longest group of sibling blocks that `repeat` draws once with "×N".
REPEAT_PERIOD = 4
#: Layout cost (nodes + edges + the virtual nodes of long edges) past which the
#: drawing keeps fewer nodes; about a second of `dot` on a two-core machine.
LAYOUT_BUDGET = 1500

#: id(parameter) -> (display name, the scope of the module that owns it)
ParamInfo = dict


class _Analysis:
    """Facts about the recorded graph that every view needs, by walk index."""

    def __init__(self, roots: Sequence[Tensor], params: ParamInfo,
                 classes: dict[tuple[str, ...], str]) -> None:
        self.order: list[Tensor] = walk(list(roots))
        self.index = {id(t): i for i, t in enumerate(self.order)}
        self.roots = [self.index[id(r)] for r in roots]
        n = len(self.order)
        self.consumers: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        self.parents: list[list[int]] = [[] for _ in range(n)]
        for i, t in enumerate(self.order):
            if t.node is not None:
                for k, p in enumerate(t.node.parents):
                    j = self.index[id(p)]
                    self.parents[i].append(j)
                    self.consumers[j].append((i, k))
        self.kind = [self._kind(t) for t in self.order]
        self.names: list[Optional[str]] = []
        self.param_names: set[int] = set()
        self.scope: list[tuple[str, ...]] = []
        for i, t in enumerate(self.order):
            info = params.get(id(t)) if t.node is None else None
            self.names.append(info[0] if info else t.name)
            if info:
                self.param_names.add(i)
            self.scope.append(self._scope(i, t, info))
        self.classes = classes

    @staticmethod
    def _kind(t: Tensor) -> str:
        if t.node is not None:
            return "op"
        if t.requires_grad:
            return "param"
        # A nameless 0-d leaf is what coercion makes of the 2.0 in x * 2.0.
        if t.ndim == 0 and t.name is None:
            return "const"
        return "input"

    def _scope(self, i: int, t: Tensor, info: Any) -> tuple[str, ...]:
        if t.node is not None:
            return tuple(t.node.scope)
        if info:
            return tuple(info[1])
        users = [self.order[c].node.scope for c, _ in self.consumers[i]]
        if not users:
            return ()
        if self.kind[i] == "const":
            return tuple(users[0])
        if self.kind[i] == "param":
            # A parameter sits in the innermost scope that holds all its uses.
            prefix = tuple(users[0])
            for s in users[1:]:
                k = 0
                while k < len(prefix) and k < len(s) and prefix[k] == s[k]:
                    k += 1
                prefix = prefix[:k]
            return prefix
        return ()

    # -- gradients ---------------------------------------------------------
    def contributions(self, i: int) -> list[tuple[int, int, np.ndarray]]:
        """(consumer, argument index, gradient) for each edge out of tensor i
        that carried a gradient in the last backward pass."""
        out = []
        for c, k in self.consumers[i]:
            eg = self.order[c].node.edge_grads
            if eg is not None and eg[k] is not None:
                out.append((c, k, _array(eg[k])))
        return out

    def grad(self, i: int) -> Optional[np.ndarray]:
        """The gradient that reached tensor i: the sum of its contributions
        (what backward summed), else its retained `.grad`."""
        parts = self.contributions(i)
        if parts:
            total = parts[0][2]
            for _, _, g in parts[1:]:
                total = total + g
            return total
        t = self.order[i]
        return None if t.grad is None else _array(t.grad)


def _array(g: Any) -> np.ndarray:
    return np.asarray(g.data if isinstance(g, Tensor) else g)


def _value_lines(prefix: str, a: np.ndarray) -> list[str]:
    lines = fmt_array(a)
    pad = " " * len(prefix)
    return [prefix + lines[0]] + [pad + x for x in lines[1:]]


def _attrs_line(opname: str, attrs: dict[str, Any]) -> Optional[str]:
    parts = []
    for k, v in attrs.items():
        if v is None or v is False:
            continue  # defaults such as axis=None, keepdims=False only add noise
        if k == "index" and isinstance(v, tuple):
            parts.append("[" + ", ".join(fmt_attr(x) for x in v) + "]")
        elif k == "shape" and opname == "index_add":
            parts.append(f"shape={fmt_shape(tuple(v))}")
        else:
            parts.append(f"{k}={fmt_attr(v)}")
    return ", ".join(parts) or None


def _shape_line(shape: tuple[int, ...], dtype: Any) -> str:
    dt = np.dtype(dtype)
    return fmt_shape(shape) + ("" if dt == np.float32 else f" {dt}")


# ---------------------------------------------------------------------------
# Items and edges (the drawing before it becomes DOT)

class _Item:
    __slots__ = ("id", "kind", "lines", "cluster", "attrs", "members")

    def __init__(self, id_: str, kind: str, lines: list[str], cluster: tuple[str, ...],
                 members: list[int]) -> None:
        self.id = id_
        self.kind = kind
        self.lines = lines
        self.cluster = cluster
        self.attrs: dict[str, str] = {}
        self.members = members


def _group_key(scope: tuple[str, ...], depth: Optional[int]) -> Optional[tuple[str, ...]]:
    if depth is None or len(scope) <= depth:
        return None
    return scope[:depth + 1]


def _count_items(a: _Analysis, depth: Optional[int]) -> int:
    keys = set()
    loose = 0
    for s in a.scope:
        k = _group_key(s, depth)
        if k is None:
            loose += 1
        else:
            keys.add(k)
    return loose + len(keys)


def _choose_depth(a: _Analysis, depth: Optional[int], max_nodes: Optional[int],
                  notes: list[str]) -> Optional[int]:
    """The user's depth, or a shallower one when the drawing would pass the
    node budget."""
    if max_nodes is None:
        return depth
    n = _count_items(a, depth)
    if n <= max_nodes:
        return depth
    deepest = max((len(s) for s in a.scope), default=0)
    start = deepest if depth is None else min(depth, deepest)
    for d in range(start - 1, -1, -1):
        m = _count_items(a, d)
        if m <= max_nodes:
            notes.append(f"{len(a.order)} nodes exceed the node budget (max_nodes={max_nodes}): "
                         f"scopes deeper than {d} are collapsed")
            return d
    return depth


def _signature(a: _Analysis, members: list[int]) -> tuple:
    """What makes two collapsed blocks "the same": ops, attributes, shapes and
    wiring, with inputs from outside the block described by shape only."""
    local = {m: k for k, m in enumerate(members)}
    sig = []
    for m in members:
        t = a.order[m]
        ps = tuple(("i", local[p]) if p in local else ("e", a.order[p].shape)
                   for p in a.parents[m])
        op = t.node.op.name if t.node is not None else None
        attrs = _attrs_line(op, t.node.attrs) if t.node is not None else None
        sig.append((a.kind[m], op, attrs, t.shape, str(t.dtype), ps))
    return tuple(sig)


class _Builder:
    def __init__(self, a: _Analysis, view: str, values: bool, grads: bool,
                 depth: Optional[int], clusters: bool, repeat: bool) -> None:
        self.a = a
        self.view = view
        self.values = values
        self.grads = grads or view == "backward"
        self.depth = depth
        self.clusters = clusters
        self.items: dict[str, _Item] = {}
        self.drawn: list[str] = [""] * len(a.order)   # walk index -> item id
        self._make_items()
        if repeat and depth is not None:
            self._merge_repeats()
        self.edges = self._make_edges()

    # -- items -------------------------------------------------------------
    def _make_items(self) -> None:
        a = self.a
        groups: dict[tuple[str, ...], _Item] = {}
        for i, t in enumerate(a.order):
            key = _group_key(a.scope[i], self.depth)
            if key is None:
                item = _Item(f"n{i}", a.kind[i], self._tensor_lines(i), a.scope[i], [i])
                self.items[item.id] = item
            else:
                item = groups.get(key)
                if item is None:
                    item = _Item(f"g{i}", "group", [], key[:-1], [])
                    groups[key] = item
                    self.items[item.id] = item
                item.members.append(i)
            self.drawn[i] = item.id
        for key, item in groups.items():
            item.lines = self._group_lines(key, item.members)
            item.cluster = key[:-1]
        self.group_keys = {item.id: key for key, item in groups.items()}
        self._split_calls(groups)

    def _split_calls(self, groups: dict[tuple[str, ...], _Item]) -> None:
        """A module called several times in a row (a recurrent cell at every
        step) collapses into one block that feeds the ops between the calls
        and is fed by them: a cycle, which dot can only draw as a wide row.
        Such a block is drawn once per call instead (the connected pieces of
        its ops, "call k of N"), and its parameters, shared by every call,
        as values of their own. Blocks on no cycle are left as they are."""
        if not groups:
            return
        a = self.a
        succ: dict[str, set[str]] = {}
        for i in range(len(a.order)):
            for p in a.parents[i]:
                if self.drawn[p] != self.drawn[i]:
                    succ.setdefault(self.drawn[p], set()).add(self.drawn[i])
        cyclic = _on_cycles(list(self.items), succ)
        changed = False
        for key, item in groups.items():
            if item.id not in cyclic:
                continue
            ops = [m for m in item.members if a.kind[m] == "op"]
            root = {m: m for m in ops}

            def find(m: int) -> int:
                while root[m] != m:
                    root[m] = root[root[m]]
                    m = root[m]
                return m
            for m in ops:
                for p in a.parents[m]:
                    if p in root:
                        root[find(p)] = find(m)
            calls: dict[int, list[int]] = {}
            for m in ops:
                calls.setdefault(find(m), []).append(m)
            if len(calls) < 2:
                continue
            changed = True
            del self.items[item.id]
            del self.group_keys[item.id]
            for k, members in enumerate(calls.values(), start=1):
                call = _Item(f"g{members[0]}", "group",
                             self._group_lines(key, members) + [f"call {k} of {len(calls)}"],
                             key[:-1], members)
                self.items[call.id] = call
                self.group_keys[call.id] = key
                for m in members:
                    self.drawn[m] = call.id
            for m in item.members:
                if a.kind[m] != "op":   # a parameter (or input) of the module
                    lines = self._tensor_lines(m)
                    if a.names[m]:
                        lines[0] = a.names[m]   # "cell.weight": no box names the module
                    leaf = _Item(f"n{m}", a.kind[m], lines, key[:-1], [m])
                    self.items[leaf.id] = leaf
                    self.drawn[m] = leaf.id
        if changed:   # walk order again (the layout cost relies on it)
            self.items = dict(sorted(self.items.items(), key=lambda kv: min(kv[1].members)))

    def _tensor_lines(self, i: int) -> list[str]:
        a = self.a
        t = a.order[i]
        kind = a.kind[i]
        if kind == "const":
            lines = [fmt_constant(t.data)]
        elif kind == "op":
            lines = [t.node.op.name]
            attrs = _attrs_line(t.node.op.name, t.node.attrs)
            if attrs:
                lines.append(attrs)
            lines.append(_shape_line(t.shape, t.dtype))
        else:
            name = a.names[i]
            if name and self.clusters and i in a.param_names:
                name = name.rpartition(".")[2]  # the box around it names the module
            lines = [name if name else ("parameter" if kind == "param" else "input"),
                     _shape_line(t.shape, t.dtype)]
        if self.values and kind != "const":
            lines += _value_lines("data ", t.data)
        if self.grads and kind != "const":
            lines += self._grad_lines(i)
        return lines

    def _grad_lines(self, i: int) -> list[str]:
        a = self.a
        parts = a.contributions(i)
        g = a.grad(i)
        if g is None:
            return []
        if self.view == "backward" and len(parts) > 1:
            # Where a value feeds several paths, show each contribution and the sum.
            terms = [fmt_array(p[2], small=4) for p in parts]
            if len(parts) <= 4 and all(len(x) == 1 for x in terms):
                return ["grad " + " + ".join(x[0] for x in terms)] + _value_lines("= ", g)
            return _value_lines(f"grad = sum of {len(parts)} paths: ", g)
        return _value_lines("grad ", g)

    def _group_lines(self, key: tuple[str, ...], members: list[int]) -> list[str]:
        a = self.a
        name = key[-1] if self.clusters else "/".join(key)
        cls = a.classes.get(key)
        ins, outs = self._boundary(members)
        n_ops = sum(1 for m in members if a.kind[m] == "op")
        n_par = sum(1 for m in members if a.kind[m] == "param")
        lines = [name + (f": {cls}" if cls else "")]
        if ins:
            lines.append("in " + ", ".join(fmt_shape(a.order[j].shape) for j in ins))
        if outs:
            lines.append("out " + ", ".join(fmt_shape(a.order[j].shape) for j in outs))
        lines.append(f"{n_ops} op{'s' if n_ops != 1 else ''}"
                     + (f", {n_par} parameter{'s' if n_par != 1 else ''}" if n_par else ""))
        return lines

    def _boundary(self, members: list[int]) -> tuple[list[int], list[int]]:
        """Tensors from outside that feed the members, and members used outside
        (or drawn as outputs), each once, in walk order."""
        a = self.a
        inside = set(members)
        ins: list[int] = []
        seen: set[int] = set()
        outs = []
        roots = set(a.roots)
        for m in members:
            for p in a.parents[m]:
                if p not in inside and p not in seen and a.kind[p] != "const":
                    seen.add(p)
                    ins.append(p)
            if m in roots or any(c not in inside for c, _ in a.consumers[m]):
                outs.append(m)
        return ins, outs

    def _merge_repeats(self) -> None:
        """Draw a chain of identical sibling blocks (layers.0, layers.1, ...)
        once, as "0 … 2 ×3"; also a chain of identical groups of up to
        `REPEAT_PERIOD` siblings repeated at least 3 times (PyTorch's
        Sequential(Linear, ReLU, Linear, ReLU, ...)) as "0 … 11 ×6"."""
        a = self.a
        siblings: dict[tuple[str, ...], list[str]] = {}
        for item_id, key in self.group_keys.items():
            siblings.setdefault(key[:-1], []).append(item_id)
        roots = set(a.roots)
        for ids in siblings.values():
            ids = sorted(ids, key=lambda i: min(self.items[i].members))
            sigs = [_signature(a, self.items[i].members) for i in ids]
            chained = [self._chained(p, n, roots) for p, n in zip(ids, ids[1:])]
            i = 0
            while i < len(ids):
                best_p, best_reps = 0, 0
                for p in range(1, REPEAT_PERIOD + 1):
                    if not all(chained[i:i + p - 1]) or i + p > len(ids):
                        break      # the first block itself must be a chain
                    reps = 1
                    while True:
                        lo, hi = i + reps * p, i + (reps + 1) * p
                        if hi > len(ids) or sigs[lo:hi] != sigs[i:i + p] \
                                or not all(chained[lo - 1:hi - 1]):
                            break
                        reps += 1
                    if reps >= (2 if p == 1 else 3) and reps * p > best_reps * best_p:
                        best_p, best_reps = p, reps
                if best_p:
                    self._merge(ids[i:i + best_p * best_reps], best_p)
                    i += best_p * best_reps
                else:
                    i += 1

    def _chained(self, prev: str, nxt: str, roots: set[int]) -> bool:
        a = self.a
        pm, nm = set(self.items[prev].members), set(self.items[nxt].members)
        _, outs = self._boundary(self.items[prev].members)
        if not outs:
            return False
        for o in outs:
            if o in roots or any(c not in nm and c not in pm for c, _ in a.consumers[o]):
                return False
        return True

    def _merge(self, run: list[str], period: int = 1) -> None:
        first, last = self.group_keys[run[0]], self.group_keys[run[-1]]
        members = [m for i in run for m in self.items[i].members]
        merged = _Item(run[0], "group", [], first[:-1], sorted(members))
        a = self.a
        name = f"{first[-1]} … {last[-1]}"
        if not self.clusters:
            name = "/".join(first[:-1] + (name,))
        classes = [a.classes.get(self.group_keys[i]) for i in run[:period]]
        cls = ", ".join(c for c in classes if c) if all(classes) else None
        ins0, _ = self._boundary(self.items[run[0]].members)
        _, outs1 = self._boundary(self.items[run[-1]].members)
        n_ops = sum(1 for i in run[:period] for m in self.items[i].members if a.kind[m] == "op")
        reps = len(run) // period
        merged.lines = [f"{name}  ×{reps}" + (f": {cls}" if cls else ""),
                        f"{reps} identical blocks of {n_ops} op{'s' if n_ops != 1 else ''}"]
        if ins0:
            merged.lines.append("in " + ", ".join(fmt_shape(a.order[j].shape) for j in ins0))
        if outs1:
            merged.lines.append("out " + ", ".join(fmt_shape(a.order[j].shape) for j in outs1))
        for i in run:
            del self.items[i]
        # Keep the dict in first-appearance order: re-insert at the position of run[0].
        items = {}
        for k, v in list(self.items.items()) + [(merged.id, merged)]:
            items[k] = v
        self.items = dict(sorted(items.items(), key=lambda kv: min(kv[1].members)))
        for m in members:
            self.drawn[m] = merged.id

    # -- edges -------------------------------------------------------------
    def _make_edges(self) -> list[tuple[str, str, dict[str, str]]]:
        a = self.a
        edges: list[tuple[str, str, dict[str, str]]] = []
        merged: dict[tuple[int, str], int] = {}       # (source tensor, group) -> edge index
        sums: dict[int, list[np.ndarray]] = {}
        for i, t in enumerate(a.order):
            if t.node is None:
                continue
            dst = self.drawn[i]
            eg = t.node.edge_grads
            n_in = len(a.parents[i])
            for k, p in enumerate(a.parents[i]):
                src = self.drawn[p]
                if src == dst:
                    continue
                g = None if eg is None or eg[k] is None else _array(eg[k])
                if self.items[dst].kind == "group":
                    key = (p, dst)
                    if key in merged:
                        if g is not None:
                            sums.setdefault(merged[key], []).append(g)
                        continue
                    merged[key] = len(edges)
                    if g is not None:
                        sums[len(edges)] = [g]
                    edges.append((src, dst, {}))
                    continue
                attrs: dict[str, str] = {}
                arg = str(k) if n_in > 1 else None
                if self.view == "backward":
                    attrs.update(self._grad_edge(g, arg))
                elif arg is not None:
                    attrs["label"] = arg
                    attrs["fontcolor"] = "#6b7280"
                edges.append((src, dst, attrs))
        if self.view == "backward":
            for e, (src, dst, attrs) in enumerate(edges):
                if self.items[dst].kind == "group":
                    parts = sums.get(e)
                    total = None
                    if parts:
                        total = parts[0]
                        for g in parts[1:]:
                            total = total + g
                    attrs.update(self._grad_edge(total, None))
        return edges

    @staticmethod
    def _grad_edge(g: Optional[np.ndarray], arg: Optional[str]) -> dict[str, str]:
        # Drawn child -> parent with dir=back: the layout stays that of the
        # forward graph while the arrowheads show the gradient flowing back.
        if g is None:
            return {"dir": "back", "style": "dashed", "color": "#9ca3af",
                    **({"label": arg, "fontcolor": "#6b7280"} if arg else {})}
        text = "\n".join(fmt_array(g, small=4))
        if arg is not None:
            text = f"[{arg}] {text}"
        return {"dir": "back", "color": "#b91c1c", "fontcolor": "#b91c1c",
                "label": label(text)}


# ---------------------------------------------------------------------------
# Budget: keep the items nearest the output

def _truncate(items: dict[str, _Item], edges: list, roots: list[str], max_nodes: int,
              total: int, notes: list[str], cause: Optional[int] = None
              ) -> tuple[dict[str, _Item], list]:
    """Keep the `max_nodes` - 1 items nearest the roots and one "… more" item.
    `cause`: the user's max_nodes, when `max_nodes` is a smaller number chosen
    to keep the layout fast."""
    if len(items) <= max_nodes:
        return items, edges
    into: dict[str, list[str]] = {}
    for src, dst, _ in edges:
        into.setdefault(dst, []).append(src)
    keep: dict[str, None] = {}
    queue = deque(dict.fromkeys(roots))
    while queue and len(keep) < max_nodes - 1:
        x = queue.popleft()
        if x in keep:
            continue
        keep[x] = None
        queue.extend(s for s in into.get(x, ()) if s not in keep)
    hidden = len(items) - len(keep)
    budget = f"max_nodes={max_nodes}" if cause is None else f"max_nodes={cause}"
    more = _Item("more", "more", [f"… {hidden} more nodes not drawn", f"({budget})"], (), [])
    kept = {k: v for k, v in items.items() if k in keep}
    kept[more.id] = more
    out = []
    fed: set[str] = set()
    for src, dst, attrs in edges:
        if src in keep and dst in keep:
            out.append((src, dst, attrs))
        elif dst in keep and dst not in fed:
            fed.add(dst)
            out.append((more.id, dst, {"style": "dashed", "color": "#9ca3af"}))
    if cause is None:
        notes.append(f"{total} nodes exceed the node budget (max_nodes={max_nodes}): "
                     f"only the {len(keep)} nearest the output are drawn")
    else:
        notes.append(f"{total} nodes, wired with many long edges, would take long to lay "
                     f"out: only the {len(keep)} nearest the output are drawn "
                     f"(max_nodes={cause} and a budget on layout cost)")
    return kept, out


# ---------------------------------------------------------------------------
# Layout cost: shared values drawn once per use

def _ranks(items: dict[str, _Item], edges: list) -> dict[str, int]:
    """About the ranks `dot` gives: each item as close to its consumers as it
    can be (one rank above the highest of them), as dot's edge-length
    minimisation places it. Items are in walk order (parents first), so one
    backward pass computes the distance to the output."""
    out: dict[str, list[str]] = {}
    for src, dst, _ in edges:
        out.setdefault(src, []).append(dst)
    depth: dict[str, int] = {}
    for k in reversed(list(items)):
        depth[k] = max((depth[d] + 1 for d in out.get(k, ()) if d in depth), default=0)
    return {k: -v for k, v in depth.items()}


def _layout_cost(items: dict[str, _Item], edges: list) -> int:
    """Nodes + edges + one virtual node per rank an edge crosses: what `dot`'s
    crossing minimisation works on."""
    rank = _ranks(items, edges)
    virtual = sum(max(0, rank[d] - rank[s] - 1) for s, d, _ in edges)
    return len(items) + len(edges) + virtual


def _split_shared(items: dict[str, _Item], edges: list, roots: list[str], a: _Analysis,
                  notes: list[str]) -> tuple[dict[str, _Item], list]:
    """Draw an item with `SHARED_USES` or more uses at different depths once
    for its first use and as a dashed copy (same name, "use k of N") beside
    each further use; the heading says that they are one value."""
    rank = _ranks(items, edges)
    uses: dict[str, list[int]] = {}
    for e, (src, dst, _) in enumerate(edges):
        uses.setdefault(src, []).append(e)
    split = {src: es for src, es in uses.items()
             if len(es) >= SHARED_USES and src not in roots
             and len({rank[edges[e][1]] for e in es}) > 2}
    if not split:
        return items, edges
    before: dict[str, list[_Item]] = {}     # consumer -> copies drawn just before it
    edges = list(edges)
    shared: list[tuple[str, str, int]] = []  # (name, what, uses) for the heading
    for src, es in split.items():
        item = items[src]
        n = len(es)
        head = item.lines[0]
        what = {"param": "parameter", "input": "input", "const": "constant",
                "group": "block"}.get(item.kind, "value")
        if item.kind != "more":   # the "… more" item is split silently: it is no value
            item.lines = item.lines + [f"used {n}× (dashed copies)"]
            shared.append((head, what, n))
        for k, e in enumerate(es[1:], start=2):
            _, dst, attrs = edges[e]
            lines = ["…"] if item.kind == "more" else [head, f"use {k} of {n}"]
            ref = _Item(f"{src}_use{k}", item.kind, lines, items[dst].cluster, [])
            ref.attrs = {"style": _dashed(STYLE[item.kind].get("style", "")),
                         "fontsize": "8", "height": "0.2", "margin": "0.05,0.02",
                         "tooltip": f"the same {what} as {head!r}: use {k} of {n}"}
            before.setdefault(dst, []).append(ref)
            edges[e] = (ref.id, dst, attrs)
    if len(shared) == 1:
        head, what, n = shared[0]
        notes.append(Remark(f"{head!r} is one {what} used {n} times: drawn once, then as a "
                            "dashed copy at each further use"))
    elif shared:
        listed = ", ".join(f"{h!r} ({w}, {n} uses)" for h, w, n in shared[:4])
        more = f" and {len(shared) - 4} more" if len(shared) > 4 else ""
        notes.append(Remark(f"{len(shared)} values used by many ops are drawn once, then as a "
                            f"dashed copy at each further use: {listed}{more}"))
    out: dict[str, _Item] = {}
    for key, value in items.items():
        for ref in before.get(key, []):
            out[ref.id] = ref
        out[key] = value
    return out, edges


def _on_cycles(nodes: list[str], succ: dict[str, set[str]]) -> set[str]:
    """The nodes that lie on a cycle: those in a strongly connected component
    of more than one node (Tarjan's algorithm, iterative: graphs are deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: set[str] = set()
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(succ.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(succ.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        out.update(component)
    return out


def _dashed(style: str) -> str:
    parts = [p for p in style.split(",") if p and p != "dashed"]
    return ",".join(parts + ["dashed"])


def _fit_layout(items: dict[str, _Item], edges: list, roots: list[str], total: int,
                notes: list[str], max_nodes: Optional[int], a: _Analysis
                ) -> tuple[dict[str, _Item], list]:
    """Cut to the node budget, split shared values, then, while the layout cost
    is over `LAYOUT_BUDGET`, keep fewer of the nodes nearest the output."""
    budget = len(items) if max_nodes is None else min(max_nodes, len(items))
    while True:
        tried: list[str] = []
        kept, kept_edges = items, edges
        if max_nodes is not None:
            kept, kept_edges = _truncate(items, edges, roots, budget, total, tried,
                                         cause=None if budget == max_nodes else max_nodes)
        kept, kept_edges = _split_shared(kept, kept_edges, roots, a, tried)
        if max_nodes is None or budget <= 20 or \
                _layout_cost(kept, kept_edges) <= LAYOUT_BUDGET:
            notes.extend(tried)
            return kept, kept_edges
        budget = budget * 2 // 3


# ---------------------------------------------------------------------------
# DOT

def graph_source(roots: Sequence[Tensor], view: str, *, values: bool = False,
                 grads: bool = False, depth: Optional[int] = None,
                 max_nodes: Optional[int] = 400, rankdir: str = "TB",
                 title: Optional[str] = None, params: Optional[ParamInfo] = None,
                 classes: Optional[dict[tuple[str, ...], str]] = None,
                 repeat: bool = True, unroll: Any = None) -> tuple[graphviz.Digraph, list[str]]:
    """The Digraph of an op view and the notes it carries (budget, collapse).
    The modules view folds the time steps of a recurrent network unless
    `unroll` is True (see `tensorgraph.draw.steps`)."""
    a = _Analysis(roots, params or {}, classes or {})
    notes: list[str] = []
    if view == "backward" and all(t.node is None for t in a.order):
        raise ValueError("draw(view='backward'): the graph has no ops, so no gradient flows "
                         "along any edge; draw the output of a computation (or use "
                         "view='ops', grads=True to show a leaf's .grad)")
    if view == "backward" and not any(
            t.node is not None and t.node.edge_grads is not None for t in a.order):
        raise ValueError("draw(view='backward'): no gradients are recorded on this graph; "
                         "call .backward(retain_graph=True) on the output first (a plain "
                         "backward() frees the gradient along each edge)")
    if all(t.node is None for t in a.order):
        # An output computed under no_grad is a leaf like any input: say why
        # the picture is one box instead of the computation the user expects.
        notes.append(Remark("no ops were recorded: a tensor made by an op under tg.no_grad(), "
                            "or from inputs none of which requires_grad, is a leaf with no "
                            "graph behind it"))
    builder = None
    if view == "modules":
        from .steps import fold_steps
        a, builder = fold_steps(a, unroll, notes, depth, max_nodes)
    return analysis_source(a, view, notes, values=values, grads=grads, depth=depth,
                           max_nodes=max_nodes, rankdir=rankdir, title=title, repeat=repeat,
                           builder=builder)


def analysis_source(a: _Analysis, view: str, notes: list[str], *, values: bool = False,
                    grads: bool = False, depth: Optional[int] = None,
                    max_nodes: Optional[int] = 400, rankdir: str = "TB",
                    title: Optional[str] = None, repeat: bool = True,
                    builder: Optional[Callable[..., "_Builder"]] = None
                    ) -> tuple[graphviz.Digraph, list[str]]:
    """The Digraph of an analysed graph: a recorded one (`graph_source`) or a
    captured `tg.Graph` (`tensorgraph.draw.captured`, with its own builder)."""
    clusters = view == "modules"
    depth = _choose_depth(a, depth, max_nodes, notes)
    b = (builder or _Builder)(a, view, values, grads, depth, clusters, repeat)
    root_ids = list(dict.fromkeys(b.drawn[r] for r in a.roots))
    items, edges = _fit_layout(b.items, b.edges, root_ids, len(a.order), notes, max_nodes, a)

    g = graphviz.Digraph("tensorgraph")
    g.attr("graph", rankdir=rankdir, fontname=FONT, fontsize="12", nodesep="0.25",
           ranksep="0.35", newrank="true")
    heading = ([title] if title else []) + notes
    if heading:
        g.attr("graph", label=heading_label(*heading), labelloc="t", fontsize="13")
    g.attr("node", fontname=FONT, fontsize="10", margin="0.1,0.04", height="0.3")
    g.attr("edge", fontname=FONT, fontsize="9", arrowsize="0.6", color="#6b7280")

    def node(gr: graphviz.Digraph, item: _Item) -> None:
        attrs = dict(STYLE[item.kind])
        if item.id in root_ids:
            attrs["penwidth"] = "2.2"
        attrs.update(item.attrs)
        gr.node(item.id, label=label(*item.lines), **attrs)

    if clusters:
        _emit_clusters(g, items, a, node)
    else:
        for item in items.values():
            node(g, item)
    spine = _spine(items, edges)
    for e, (src, dst, attrs) in enumerate(edges):
        if e in spine:
            attrs = {**attrs, "weight": "4"}
        g.edge(src, dst, **attrs)
    for src, dst, attrs in getattr(b, "extra_edges", ()):   # edges no layout pass sees
        if src in items and dst in items:
            g.edge(src, dst, **attrs)
    if clusters:
        for src, dst in _params_after_inputs(items, edges):
            g.edge(src, dst, style="invis", weight="0")   # a rank constraint, no pull
    return g, notes


#: Item kinds that carry the computation (the spine the layout keeps straight).
_FLOW = frozenset({"op", "group"})


def _params_after_inputs(items: dict[str, _Item], edges: list) -> list[tuple[str, str]]:
    """Invisible edges that rank a module's parameters below the op that
    feeds the module: otherwise dot ranks them as early as it can, beside
    the previous module's box, and the boxes drift sideways layer by layer.
    Each parameter (or dashed copy) in a box follows the deepest op outside
    the box that feeds it, unless that op depends on the parameter itself."""
    out: dict[str, list[str]] = {}
    for src, dst, _ in edges:
        out.setdefault(src, []).append(dst)
    depth = _depths(items, edges)
    feeds: dict[tuple[str, ...], list[str]] = {}    # box -> flow items outside it feeding it
    for src, dst, _ in edges:
        if items[src].kind not in _FLOW:
            continue
        inner, outer = items[dst].cluster, items[src].cluster
        for k in range(1, len(inner) + 1):
            if outer[:k] != inner[:k]:
                feeds.setdefault(inner[:k], []).append(src)
    extra = []
    for key, item in items.items():
        if item.kind != "param" or not item.cluster or item.cluster not in feeds:
            continue
        below: set[str] = set()
        todo = [key]
        while todo:                                    # what the parameter feeds
            for d in out.get(todo.pop(), ()):
                if d not in below:
                    below.add(d)
                    todo.append(d)
        sources = [s for s in feeds[item.cluster] if s not in below]
        if sources:
            extra.append((max(sources, key=lambda s: depth[s]), key))
    return extra


def _depths(items: dict[str, _Item], edges: list) -> dict[str, int]:
    """The longest path from a source to each item (Kahn's order: the
    "… more" item comes last in `items` but feeds the others)."""
    out: dict[str, list[str]] = {}
    missing: dict[str, int] = dict.fromkeys(items, 0)
    for src, dst, _ in edges:
        out.setdefault(src, []).append(dst)
        missing[dst] += 1
    depth = dict.fromkeys(items, 0)
    ready = [k for k, n in missing.items() if n == 0]
    while ready:
        k = ready.pop()
        for d in out.get(k, ()):
            depth[d] = max(depth[d], depth[k] + 1)
            missing[d] -= 1
            if missing[d] == 0:
                ready.append(d)
    return depth


def _spine(items: dict[str, _Item], edges: list) -> set[int]:
    """The edges to draw straight: into each op, the edge from its input op
    at the end of the longest path (the previous step, the previous layer),
    not those from side computations (a weight's transpose) or leaves. dot
    centres a node between its inputs; weighing them alike, a chain whose ops
    each take a side input drifts half a node per step into a staircase."""
    into: dict[str, list[tuple[int, str]]] = {}
    for e, (src, dst, _) in enumerate(edges):
        into.setdefault(dst, []).append((e, src))
    depth = _depths(items, edges)
    spine: set[int] = set()
    for dst, sources in into.items():
        if items[dst].kind not in _FLOW:
            continue
        flow = [(e, src) for e, src in sources if items[src].kind in _FLOW]
        if flow:
            deepest = max(depth[src] for _, src in flow)
            spine.update(e for e, src in flow if depth[src] == deepest)
    return spine


def _emit_clusters(g: graphviz.Digraph, items: dict[str, _Item], a: _Analysis, node: Any) -> None:
    """Nested clusters, one per scope prefix, in first-appearance order."""
    children: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    members: dict[tuple[str, ...], list[_Item]] = {}
    for item in items.values():
        scope = item.cluster
        members.setdefault(scope, []).append(item)
        for k in range(len(scope), 0, -1):
            parent, child = scope[:k - 1], scope[:k]
            kids = children.setdefault(parent, [])
            if child in kids:
                break
            kids.append(child)
    numbers: dict[tuple[str, ...], int] = {}

    def build(scope: tuple[str, ...]) -> graphviz.Digraph:
        numbers[scope] = len(numbers)
        c = graphviz.Digraph(name=f"cluster_{numbers[scope]}")
        cls = a.classes.get(scope)
        c.attr(label=label(scope[-1] + (f": {cls}" if cls else "")), labeljust="l",
               style="rounded,filled", color="#94a3b8",
               fillcolor="#f8fafc" if len(scope) % 2 else "#eef2ff", fontsize="11")
        for item in members.get(scope, []):
            node(c, item)
        for child in children.get(scope, []):
            c.subgraph(build(child))
        return c

    for item in members.get((), []):
        node(g, item)
    for child in children.get((), []):
        g.subgraph(build(child))
