"""Folding an unrolled recurrent network in the "modules" view.

A recurrent layer records each time step under its own scope element: step 3
of layer 0 of an `LSTM` registered as `net.encoder` carries ("net",
"encoder", "l0", "t3"), and a hand-written loop over a cell may add
``tg.name_scope(f"t{t}")`` itself (see `tensorgraph.nn.recurrent`). So the
steps of one loop are the scopes P + ("t0",), P + ("t1",), ... under one
parent P. A scope element "t<k>" that is the scope of a module (asked of the
module tree, never guessed from class names) is not a step.

Folded (the default): each loop is drawn as ONE step, the most common one
(the first step of an LSTM from a zero state skips the h_{t-1} product, so
it differs), its cluster labelled with the count, and the edges that carried
the state from one step to the next drawn as a loop back into it, "×T".
Every other step's values are drawn as the matching value of that step: its
op in the same position when the steps are alike, else the op with the same
name (else the step's output). The ops outside the steps that fed only the
steps not drawn (the slices of the projected input for the other steps) are
left out, so a 1,000-step loop draws as small as a 3-step one.

``unroll=k``: the first k steps are drawn as they are (clusters "t0", "t1",
...), and all the later ones as one "… N more steps" block.

The fold happens on the analysis of the recorded graph, before the node
budget is applied: an `_Analysis` restricted to the values drawn.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any, Optional, Union

from .graph import Remark, _Analysis, _Builder, _choose_depth, _Item, _signature

__all__ = ["fold_steps", "step_runs"]

_STEP = re.compile(r"t(\d+)")


class _Run:
    """The steps of one loop: scope `parent` + ("t<k>",) for each step k."""

    def __init__(self, parent: tuple[str, ...]) -> None:
        self.parent = parent
        self.steps: dict[int, list[int]] = {}     # step number -> tensor indices, walk order

    @property
    def count(self) -> int:
        return len(self.steps)

    def span(self, numbers: Any = None) -> str:
        ks = sorted(self.steps if numbers is None else numbers)
        return f"t{ks[0]}" if len(ks) == 1 else f"t{ks[0]} … t{ks[-1]}"


def step_runs(a: _Analysis) -> list[_Run]:
    """The loops of the recorded graph, outermost first: for each parent
    scope with at least two step children, the tensors of each step (a step
    holds everything recorded under its scope, nested modules included)."""
    runs: dict[tuple[str, ...], _Run] = {}
    for i, scope in enumerate(a.scope):
        for k, element in enumerate(scope):
            m = _STEP.fullmatch(element)
            if m is None or scope[:k + 1] in a.classes:   # a module named "t1" is no step
                continue
            run = runs.get(scope[:k])
            if run is None:
                run = runs[scope[:k]] = _Run(scope[:k])
            run.steps.setdefault(int(m.group(1)), []).append(i)
    return sorted((r for r in runs.values() if r.count >= 2), key=lambda r: len(r.parent))


def _match(a: _Analysis, step: list[int], rep: list[int], same: bool) -> dict[int, int]:
    """Each tensor of `step` -> the tensor of `rep` it is drawn as."""
    if same:
        return dict(zip(step, rep))
    ops = [m for m in rep if a.kind[m] == "op"]
    by_name: dict[Any, list[int]] = {}
    for m in ops:
        by_name.setdefault(_op_name(a, m), []).append(m)
    seen: Counter = Counter()
    out: dict[int, int] = {}
    for m in step:
        if a.kind[m] != "op":
            continue          # a constant of that step: not drawn
        name = _op_name(a, m)
        same_name = by_name.get(name, [])
        if same_name:
            out[m] = same_name[min(seen[name], len(same_name) - 1)]
            seen[name] += 1
        elif ops:
            out[m] = ops[-1]  # the step's output stands for what it has no match for
    return out


def _op_name(a: _Analysis, m: int) -> str:
    node = a.order[m].node
    assert node is not None     # an op
    return str(node.op.name)


def fold_steps(a: _Analysis, unroll: Union[None, bool, int], notes: list[str],
               depth: Optional[int] = None,
               max_nodes: Optional[int] = None) -> tuple[_Analysis, Any]:
    """The analysis restricted to the values drawn, and the builder that draws
    it (loop edges, the "… more steps" block). `unroll` None/False folds each
    loop to one step; k >= 1 draws the first k steps; True draws every step.
    A loop inside a scope that `depth` collapses is left as it is, so that its
    block counts all its ops; so is one that the node budget `max_nodes`
    would collapse even folded."""
    said: list[str] = []
    folded, builder = _fold(a, unroll, said, depth)
    if max_nodes is not None and builder is not None:
        chosen = _choose_depth(folded, depth, max_nodes, [])
        if chosen != depth:      # the budget collapses scopes: fold only what stays open
            said = []
            folded, builder = _fold(a, unroll, said, depth, open_to=chosen)
    notes.extend(said)
    return folded, builder


def _fold(a: _Analysis, unroll: Union[None, bool, int], notes: list[str],
          depth: Optional[int], open_to: Optional[int] = None) -> tuple[_Analysis, Any]:
    if unroll is True:
        return a, None
    runs = step_runs(a)
    if not runs:
        return a, None
    drawn_as: dict[int, Optional[int]] = {}       # hidden tensor -> the tensor drawn for it
    relabel: dict[tuple[str, ...], str] = {}      # step scope -> the cluster's new name
    remainders: list[tuple[str, ...]] = []        # unroll: the "… more steps" scopes
    counts: dict[int, int] = {}                   # folded run -> its number of steps
    folded_steps: dict[str, int] = {}             # the drawn step's scope name -> steps
    step_of: dict[int, tuple[int, int]] = {}      # tensor -> (run number, step number)
    for r, run in enumerate(runs):
        if any(m in drawn_as for ms in run.steps.values() for m in ms[:1]):
            continue     # a loop inside a step not drawn
        if depth is not None and depth < len(run.parent):
            continue     # inside a collapsed block
        collapsed = open_to is not None and open_to < len(run.parent)
        for k, ms in run.steps.items():
            for m in ms:
                step_of[m] = (r, k)
        numbers = sorted(run.steps)
        sigs = {k: _signature(a, run.steps[k]) for k in numbers}
        if unroll:
            kept = numbers[:unroll]
            rest = numbers[unroll:]
            if not rest:
                continue
            rep_k = rest[0]
            relabel[run.parent + (f"t{rep_k}",)] = f"… {len(rest)} more steps ({run.span(rest)})"
            remainders.append(run.parent + (f"t{rep_k}",))
            folded_steps[relabel[run.parent + (f"t{rep_k}",)]] = len(rest)
            for k in kept:
                relabel[run.parent + (f"t{k}",)] = f"t{k} (step {numbers.index(k) + 1} " \
                                                   f"of {run.count})"
            hidden = rest[1:]
        else:
            common = Counter(sigs.values()).most_common(1)[0][0]
            rep_k = next(k for k in numbers if sigs[k] == common)
            relabel[run.parent + (f"t{rep_k}",)] = \
                f"one time step of {run.count} ({run.span()}), drawn once"
            hidden = [k for k in numbers if k != rep_k]
            folded_steps[relabel[run.parent + (f"t{rep_k}",)]] = run.count
        rep = run.steps[rep_k]
        for k in hidden:
            match = _match(a, run.steps[k], rep, sigs[k] == sigs[rep_k])
            for m in run.steps[k]:
                drawn_as[m] = match.get(m)
        where = "/".join(run.parent) or "the graph"
        if collapsed:
            pass         # inside a block the budget collapses: its lines say it
        elif unroll:
            notes.append(Remark(f"{where}: {run.count} time steps, the first "
                                f"{len(numbers) - len(rest)} drawn and the other {len(rest)} "
                                f"as one block"))
        else:
            notes.append(Remark(f"{where}: {run.count} time steps ({run.span()}) drawn as one, "
                                f"the state carried to the next step as a loop ×{run.count} "
                                f"(unroll=k draws the first k)"))
            counts[r] = run.count
    if not drawn_as:
        return a, None
    # Values outside the steps that feed only values not drawn (the input
    # slices of the other steps) are left out too, never an output; with
    # unroll=k those that feed only the "… more steps" block join it.
    block = {m for s in remainders for m in _in_scope(a, s)}
    roots = set(a.roots)
    for i in range(len(a.order) - 1, -1, -1):
        if i in drawn_as or i in roots or i in step_of:
            continue
        users = a.consumers[i]
        if users and all(c in drawn_as for c, _ in users):
            targets = {drawn_as[c] for c, _ in users}
            drawn_as[i] = next(iter(targets)) if targets <= block else None
    folded = _restrict(a, drawn_as, relabel)
    folded.folded_steps = folded_steps
    # The edges that carried the state from one step to the next: each drawn
    # once as a loop into the drawn step, the first of a loop labelled ×T.
    labelled: set[int] = set()
    seen: set[tuple[int, int]] = set()
    for i in range(len(a.order)):
        if i not in step_of or step_of[i][0] not in counts:
            continue
        r = step_of[i][0]
        for p in a.parents[i]:
            if step_of.get(p, (None, step_of[i][1]))[0] != r or step_of[p][1] == step_of[i][1]:
                continue
            src, dst = _drawn(p, drawn_as), _drawn(i, drawn_as)
            if src is None or dst is None or (src, dst) in seen:
                continue
            seen.add((src, dst))
            folded.loops.append((folded.new[src], folded.new[dst],
                                 "" if r in labelled else f"×{counts[r]}"))
            labelled.add(r)
    # the relabelled scope of each "… more steps" block
    remainder_scopes = [s[:-1] + (relabel[s],) for s in remainders]

    def builder(*args: Any) -> _Builder:
        return _StepBuilder(remainder_scopes, *args)
    return folded, builder


def _in_scope(a: _Analysis, scope: tuple[str, ...]) -> list[int]:
    n = len(scope)
    return [i for i, s in enumerate(a.scope) if s[:n] == scope]


def _drawn(i: int, drawn_as: dict[int, Optional[int]]) -> Optional[int]:
    return drawn_as[i] if i in drawn_as else i


class _Folded(_Analysis):
    """An `_Analysis` of the values drawn: indices renumbered in walk order,
    each parent that is not drawn replaced by the value drawn for it (each
    once), and `loops`: the (source, consumer, label) edges to the next step."""

    new: dict[int, int]
    loops: list[tuple[int, int, str]]
    folded_steps: dict[str, int]

    def __init__(self) -> None:   # made by _restrict only
        pass


def _restrict(a: _Analysis, drawn_as: dict[int, Optional[int]],
              relabel: dict[tuple[str, ...], str]) -> _Folded:
    keep = [i for i in range(len(a.order)) if i not in drawn_as]
    new = {old: k for k, old in enumerate(keep)}
    f = _Folded()
    n = len(a.order)
    # Per-value lists are copied for the values kept, whatever else the
    # analysis holds; the graph structure is rebuilt below.
    for key, value in vars(a).items():
        if isinstance(value, list) and len(value) == n and key not in ("parents", "consumers"):
            setattr(f, key, [value[i] for i in keep])
        else:
            setattr(f, key, value)
    f.index = {id(t): k for k, t in enumerate(f.order)}
    # an output inside a step not drawn is drawn as the drawn step's value
    f.roots = list(dict.fromkeys(new[q] for q in (_drawn(r, drawn_as) for r in a.roots)
                                 if q is not None))
    f.param_names = {new[i] for i in a.param_names if i in new}
    f.parents = []
    f.consumers = [[] for _ in keep]
    for k, old in enumerate(keep):
        ps: list[int] = []
        for p in a.parents[old]:
            q = _drawn(p, drawn_as)
            if q is not None and new[q] not in ps and q < old:   # later: a loop, drawn apart
                ps.append(new[q])
        f.parents.append(ps)
        for c, pos in a.consumers[old]:
            if c in new:
                f.consumers[k].append((new[c], pos))
    # the drawn step's clusters say what they stand for
    scopes = []
    for s in f.scope:
        scopes.append(tuple(relabel.get(s[:j + 1], x) for j, x in enumerate(s)))
    f.scope = scopes
    f.new = new
    f.loops = []
    return f


class _StepBuilder(_Builder):
    """The modules view of a folded graph: each "… more steps" scope drawn as
    one block; the loop edges back into the drawn step (`extra_edges`)."""

    def __init__(self, remainders: list[tuple[str, ...]], a: _Folded, *args: Any) -> None:
        self.remainders = remainders
        super().__init__(a, *args)
        self.extra_edges: list[tuple[str, str, dict[str, str]]] = []
        for src, dst, text in a.loops:
            attrs = {"color": "#2563eb", "fontcolor": "#2563eb", "penwidth": "1.6",
                     "constraint": "false", "style": "bold",
                     "tooltip": "the state carried to the next time step"}
            if text:
                attrs["label"] = f" next step {text} "
            pair = (self.drawn[src], self.drawn[dst])
            if all(pair != (s, d) for s, d, _ in self.extra_edges):
                self.extra_edges.append((*pair, attrs))

    def _group_lines(self, key: tuple[str, ...], members: list[int]) -> list[str]:
        """A block that holds a folded loop (collapsed by depth= or the node
        budget) counts the ops of the one step drawn: it says so."""
        lines = super()._group_lines(key, members)
        folded = getattr(self.a, "folded_steps", {})
        loops = {self.a.scope[m][:j + 1]: folded[x] for m in members
                 for j, x in enumerate(self.a.scope[m]) if x in folded and j >= len(key)}
        if loops:
            counts = ", ".join(f"×{n}" for n in loops.values())
            lines.append(f"time steps folded to one ({counts})")
        return lines

    def _make_items(self) -> None:
        super()._make_items()
        a = self.a
        for scope in self.remainders:
            n = len(scope)
            members = [i for i, s in enumerate(a.scope) if s[:n] == scope]
            if not members:
                continue
            ids = {self.drawn[m] for m in members}
            if any(a.scope[m][:n] != scope for i in ids for m in self.items[i].members):
                continue      # collapsed into a bigger block by depth=: nothing to do
            block_members = sorted({m for i in ids for m in self.items[i].members})
            block = _Item(f"g{block_members[0]}", "group", [], scope[:-1], block_members)
            lines = self._group_lines(scope, block_members)
            # "… 32 more steps": the shapes of one step, its op count per step
            block.lines = [scope[-1]] + lines[1:-1] + ["each step: " + lines[-1]]
            block.attrs = {"style": "rounded,filled,dashed"}
            for i in ids:
                del self.items[i]
                self.group_keys.pop(i, None)
            self.items[block.id] = block
            self.items = dict(sorted(self.items.items(), key=lambda kv: min(kv[1].members)))
            for m in block_members:
                self.drawn[m] = block.id
