"""Draw it: the recorded graph and the modules as Graphviz pictures.

`draw(target, view=...)` returns a `Drawing`: its `.source` is DOT text built
as data with the `graphviz` package (no layout engine needed); `.svg()` lays it
out with a backend (`tensorgraph.draw.backends`: the system `dot`, or
Graphviz compiled to WebAssembly) within a time limit; `.save(path)` writes
.svg, .dot/.gv, or .png/.pdf where the backend can; notebooks display it
through `_repr_svg_`.

One recorded graph, four zoom levels:

- ``view="ops"``: a node per op (name, attributes, output shape) and per leaf;
  edges in argument order, so ``a + a`` has two (labelled 0 and 1). Parameters
  (orange: leaves that require grad), inputs (blue) and constants (dashed: the
  2.0 of ``x * 2.0``) differ at a glance; the output has a thick border.
- ``view="modules"``: the same DAG boxed by name scope, as TensorBoard does;
  ``depth=k`` collapses every scope deeper than k into one node with its input
  and output shapes, and a chain of identical blocks is drawn once with "×N";
  a recurrent network's time steps are folded into one step with a loop edge
  "×T" (``unroll=k`` draws the first k; `tensorgraph.draw.steps`).
- ``view="network"``: the book's picture of a network, neuron or perceptron
  (see `tensorgraph.draw.network`); a convolutional network as stacks of
  feature maps to scale, given ``input_shape=`` (`tensorgraph.draw.conv`);
  an RNN, LSTM or GRU as the book's cell diagram (`tensorgraph.draw.recurrent`);
  an NTM or DNC as its architecture figure (`tensorgraph.draw.memory_diagram`).
- ``view="backward"``: after ``backward()``, each edge carries the gradient
  sent along it and each value the sum of what reached it.

A captured `tg.Graph` draws in the "ops" and "modules" views, its leaves
styled by what the graph says they are: inputs blue, parameters orange,
constants grey with their value (`tensorgraph.draw.captured`).

The modules are read only through their public structure, and nothing in the
core imports this module.
"""
from __future__ import annotations

import os
import pathlib
import sys
import types
import warnings
from typing import Any, Optional, Sequence, Union

from ..graph import Graph
from ..tensor import Tensor
from . import backends

__all__ = ["draw", "Drawing", "DrawWarning", "VIEWS"]

VIEWS = ("ops", "modules", "network", "backward")
#: Default node budget: past it a drawing collapses scopes (a few hundred nodes
#: still lay out in well under a second; 10,000 would take minutes).
MAX_NODES = 400
_RANKDIRS = {"TB": "TB", "LR": "LR", "BT": "BT", "RL": "RL", "DOWN": "TB", "RIGHT": "LR",
             "UP": "BT", "LEFT": "RL"}


class DrawWarning(UserWarning):
    """The drawing was simplified (collapsed or cut) to fit the node budget."""


class Drawing:
    """A picture as DOT text, rendered on demand.

    `.source` is the DOT text (deterministic: the same graph gives the same
    bytes). `.svg()` renders it with `backend` ("dot", "wasm", or None for
    the first available; see `tensorgraph.backends`). `.notes` lists what was
    simplified to fit the node budget.
    """

    def __init__(self, graph: Any, *, backend: Optional[str] = None, engine: str = "dot",
                 notes: Sequence[str] = (), view: str = "",
                 timeout: Optional[float] = None) -> None:
        # `graph` is a graphviz.Digraph (anything with .source) or DOT text.
        self.graph = None if isinstance(graph, str) else graph
        self.source: str = graph if isinstance(graph, str) else graph.source
        self.backend = backend
        self.engine = engine
        self.timeout = timeout
        self.notes: tuple[str, ...] = tuple(notes)
        self.view = view
        self._cache: dict[tuple[str, str], bytes] = {}

    def pipe(self, format: str = "svg", backend: Optional[str] = None) -> bytes:
        """The rendered bytes in `format` ("svg", "png", "pdf", ...); raises
        `LayoutTimeout` when the layout takes longer than `timeout` seconds."""
        name = backends.resolve_backend(backend or self.backend)
        key = (format, name)
        if key not in self._cache:
            try:
                self._cache[key] = backends.render(self.source, format=format, backend=name,
                                                   engine=self.engine, timeout=self.timeout)
            except backends.LayoutTimeout as e:
                if self.view != "network":
                    raise
                # depth= and view="modules" do not apply to this view: its own options do.
                raise backends.LayoutTimeout(str(e).replace(
                    backends.DRAW_LESS, "Draw less of it (a smaller max_nodes=... keeps the "
                    "first and last layers, a smaller cap=... fewer units per layer)")) from None
        return self._cache[key]

    def svg(self, backend: Optional[str] = None) -> str:
        """The SVG text (laid out by Graphviz)."""
        return self.pipe("svg", backend).decode("utf-8")

    def save(self, path: Union[str, os.PathLike], backend: Optional[str] = None) -> pathlib.Path:
        """Write the drawing; the format follows the extension: .svg, .dot or
        .gv (the source, no backend needed), .png or .pdf (backend "dot")."""
        path = pathlib.Path(path)
        ext = path.suffix.lower().lstrip(".")
        if ext in ("dot", "gv"):
            path.write_text(self.source, encoding="utf-8")
        elif ext in ("svg", "png", "pdf"):
            path.write_bytes(self.pipe(ext, backend))
        else:
            raise ValueError(f"Drawing.save: cannot tell the format from {path.name!r}; "
                             "use a .svg, .dot, .gv, .png or .pdf extension")
        return path

    def _repr_svg_(self) -> str:
        return self.svg()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        # A notebook must not fail to show a drawing because no backend is
        # installed: it shows the reason and the DOT text instead.
        try:
            return {"image/svg+xml": self.svg(), "text/plain": repr(self)}
        except backends.BackendError as e:
            return {"text/plain": f"{self!r}\n{e}\n\n{self.source}"}

    def __repr__(self) -> str:
        lines = self.source.count("\n")
        view = f" view={self.view!r}" if self.view else ""
        return f"<Drawing{view}: {lines} lines of DOT>"


def _caller() -> int:
    """The stacklevel of the first frame outside this package, so that a
    warning points at the user's line whether they called tg.draw(...) (the
    callable package) or tg.draw.draw(...)."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame: Optional[types.FrameType] = sys._getframe(1)
    level = 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == here:
        frame, level = frame.f_back, level + 1
    return level


def _is_module(x: Any) -> bool:
    return hasattr(x, "named_parameters") and hasattr(x, "named_modules") and callable(x)


def _module_info(module: Any) -> tuple[dict[int, tuple[str, tuple[str, ...]]],
                                      dict[tuple[str, ...], str]]:
    """From the module tree's public API: id(parameter) -> (dotted name, the
    scope of its module), and scope -> class name of the module there."""
    mods = dict(module.named_modules())
    scope_of = getattr(module, "scope_path", None)

    def scope(name: str) -> tuple[str, ...]:
        if scope_of is not None:
            return tuple(scope_of(name))
        return tuple(name.split(".")) if name else ()

    params = {id(p): (name, scope(name.rpartition(".")[0]))
              for name, p in module.named_parameters()}
    classes = {scope(name): type(m).__name__ for name, m in mods.items()}
    return params, classes


def _rankdir(rankdir: Optional[str], direction: Optional[str], default: str) -> str:
    value = rankdir if rankdir is not None else direction
    if value is None:
        return default
    key = str(value).upper()
    if key not in _RANKDIRS:
        raise ValueError(f"draw: unknown rankdir/direction {value!r}; use one of "
                         "'TB', 'LR', 'BT', 'RL' (or 'down', 'right', 'up', 'left')")
    return _RANKDIRS[key]


def draw(target: Any, view: Optional[str] = None, *, values: bool = False, grads: bool = False,
         rankdir: Optional[str] = None, direction: Optional[str] = None,
         title: Optional[str] = None, max_nodes: Optional[int] = MAX_NODES,
         depth: Optional[int] = None, repeat: bool = True, unroll: Union[None, bool, int] = None,
         module: Any = None,
         input: Any = None, input_shape: Optional[Sequence[int]] = None, cap: int = 10,
         weights: Optional[bool] = None,
         backend: Optional[str] = None, engine: str = "dot",
         timeout: Optional[float] = None) -> Drawing:
    """Draw a tensor's recorded graph or a module.

    target     a Tensor (its whole ancestry is drawn), a list of Tensors, a
               captured `tg.Graph` (views "ops" and "modules"), or a
               Module (view "network" by default; "ops" and "modules" trace
               ``module(input)``; for "backward" draw the output of your own
               backward pass with ``module=``).
    view       "ops" (default for tensors), "modules", "network" (default for
               modules) or "backward".
    values, grads  show each tensor's value and gradient: small tensors in
               full, larger ones by mean, min and max. Leaves show `.grad`;
               intermediate tensors need `backward(retain_graph=True)`, which
               keeps the gradient along each edge (the backward view needs it too).
    rankdir    graph direction "TB" (default for op views) or "LR" (default
               for networks), also "BT", "RL"; `direction` is an alias. (A
               convolutional network is always drawn left to right.)
    title      a heading above the picture.
    max_nodes  the node budget (None: no limit). Past it scopes are collapsed,
               deepest first, and if that is not enough only the nodes nearest
               the output are drawn; the drawing says so and a `DrawWarning`
               is issued. The network view keeps its first and last layers
               and draws the ones between as one node.
    depth      collapse scopes deeper than this into single nodes.
    repeat     draw a chain of identical collapsed blocks once with "×N".
    unroll     "modules" view of a recurrent network, whose layers record each
               time step under its own scope ("t0", "t1", ...): by default
               (None) each loop is drawn as one step with a loop edge "×T"
               back into it; ``unroll=k`` draws the first k steps and the
               rest as one "… N more steps" block; ``unroll=True`` every step.
    module     name parameters (and place them in their module's box) from this
               module's ``named_parameters()``.
    input      an example input for tracing a Module in the op views; in the
               network view of a convolutional network, an example batch
               whose shape gives the sizes (as `input_shape`).
    input_shape  network view of a convolutional network: the shape of one
               example without the batch dimension, e.g. (1, 28, 28) for
               MNIST, (C, L) for 1-D convolutions. Each stack of feature
               maps is then labelled height×width×depth, from the modules'
               own `output_shape`; without it (and without `input`) the
               stacks show their depth only and the heading says so.
    cap        network view: layers wider than this show their first and last
               few neurons and "N more".
    weights    network view: write each weight on its edge (default: only
               when a layer pair has at most 6 edges).
    backend    "dot" or "wasm" for `.svg()` (default: $TENSORGRAPH_BACKEND, else
               whichever is installed).
    engine     the Graphviz layout engine ("dot"; "neato", ... also work).
    timeout    seconds the layout may take (default: $TENSORGRAPH_LAYOUT_TIMEOUT,
               else 30); past it the layout is stopped and `LayoutTimeout` says
               how big the graph was and how to draw less.

    How to read the op views: rounded grey boxes are ops (name, attributes,
    output shape), orange boxes parameters (leaves that require grad), blue
    boxes inputs, dashed boxes constants, green 3-D boxes collapsed scopes;
    the output has a thick border; numbers on edges are argument positions
    (in "backward": ``[position] gradient``, drawn against the arrow). A
    value used by many ops at different depths (a shared weight, an unrolled
    recurrent network's parameters) is drawn in full once and as a small
    dashed copy with the same name ("use k of N") at each further use; the
    heading says so. A drawing whose layout would be slow (many long edges)
    keeps fewer nodes than `max_nodes`, and says so too.

    >>> y = (x @ w + b).sum()
    >>> tg.draw(y).save("graph.svg")
    >>> tg.draw(net, view="modules", input=x, depth=1)
    """
    if view is None:
        view = "network" if _is_module(target) else "ops"
    if view not in VIEWS:
        raise ValueError(f"draw: unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    if backend is not None:
        backends.resolve_backend(backend)  # validate the name now, not at render time
    backends.layout_timeout(timeout)       # and the time limit
    if max_nodes is not None and (not isinstance(max_nodes, int) or max_nodes < 2):
        raise ValueError(f"draw: max_nodes must be an int >= 2 or None, got {max_nodes!r}")
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 0):
        raise ValueError(f"draw: depth must be a non-negative int or None, got {depth!r}")
    if unroll is not None and not isinstance(unroll, bool) and \
            (not isinstance(unroll, int) or unroll < 1):
        raise ValueError(f"draw: unroll must be None (fold each loop to one step), a positive "
                         f"int k (the first k steps) or True (every step), got {unroll!r}")

    if isinstance(target, Graph):
        if view == "network":
            raise TypeError("draw(view='network') needs a Module (Neuron, LinearPerceptron, "
                            "Layer, FeedForward, Sequential), got Graph; draw a captured graph "
                            "with view='ops' or view='modules'")
        from .captured import captured_source
        classes = _module_info(module)[1] if module is not None else {}
        graph, notes = captured_source(target, view, values=values, grads=grads, depth=depth,
                                       max_nodes=max_nodes,
                                       rankdir=_rankdir(rankdir, direction, "TB"),
                                       title=title, classes=classes, repeat=repeat)
        _warn(notes)
        return Drawing(graph, backend=backend, engine=engine, notes=notes, view=view,
                       timeout=timeout)

    if view == "network":
        if not _is_module(target):
            raise TypeError(f"draw(view='network') needs a Module (Neuron, LinearPerceptron, "
                            f"Layer, FeedForward, Sequential), got {type(target).__name__}")
        from .network import network_source
        batch = getattr(input, "shape", None)
        if input_shape is None and batch is not None and len(batch) >= 2:
            input_shape = tuple(batch)[1:]      # an example batch: one example's shape
        graph, notes = network_source(target, rankdir=_rankdir(rankdir, direction, "LR"),
                                      title=title, cap=cap, weights=weights,
                                      max_nodes=max_nodes, input_shape=input_shape)
        _warn(notes)
        return Drawing(graph, backend=backend, engine=engine, notes=notes, view=view,
                       timeout=timeout)

    if _is_module(target):
        if view == "backward":
            # A trace made here has had no backward pass; the user's own has.
            raise ValueError("draw(view='backward') of a module: the gradients are those of "
                             "a backward pass, so run it and draw its output: loss = "
                             "net(x).sum(); loss.backward(retain_graph=True); "
                             "tg.draw(loss, view='backward', module=net)")
        if input is None:
            raise TypeError(f"draw(view={view!r}) of a module needs input=<an example batch> to "
                            "trace it; or draw the output tensor with module=<the module>")
        module = target if module is None else module
        from ..nn.recurrent import record_steps
        with record_steps():        # an LSTM's steps as ops, so that they fold or unroll
            target = target(input)
    from .graph import graph_source
    roots = _roots(target, view)
    params, classes = _module_info(module) if module is not None else ({}, {})
    graph, notes = graph_source(roots, view, values=values, grads=grads, depth=depth,
                                max_nodes=max_nodes,
                                rankdir=_rankdir(rankdir, direction, "TB"), title=title,
                                params=params, classes=classes, repeat=repeat, unroll=unroll)
    _warn(notes)
    return Drawing(graph, backend=backend, engine=engine, notes=notes, view=view, timeout=timeout)


def _warn(notes: Sequence[str]) -> None:
    """A `DrawWarning` for each note that says what the node budget left out
    (a `Remark` only explains the picture)."""
    from .graph import Remark
    for note in notes:
        if not isinstance(note, Remark):
            warnings.warn(f"draw: {note}", DrawWarning, stacklevel=_caller())


def _tensors(x: Any) -> list[Tensor]:
    """Every Tensor in a (nested) tuple, list or dict, in order: what a module
    returns, e.g. an LSTM's (output, (h_n, c_n)). None entries are skipped."""
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, dict):
        x = list(x.values())
    if isinstance(x, (list, tuple)):
        out = []
        for item in x:
            found = _tensors(item)
            if item is not None and not found:
                return []   # something that is not a tensor: the caller says what
            out += found
        return out
    return []


def _roots(target: Any, view: str) -> list[Tensor]:
    if isinstance(target, Tensor):
        return [target]
    found = _tensors(target) if isinstance(target, (list, tuple, dict)) else []
    if found:
        seen: set[int] = set()
        out = []
        for t in found:  # one entry per tensor, order kept (== is elementwise)
            if id(t) not in seen:
                seen.add(id(t))
                out.append(t)
        return out
    raise TypeError(f"draw(view={view!r}): target must be a Tensor, a list of Tensors, a "
                    f"Graph or a Module, got {type(target).__name__} (a nested tuple of "
                    f"Tensors, as a module returns, works too)")
