"""Draw it: the recorded graph, the modules and the learning curves.

`tg.draw(target, view=...)` returns a `Drawing` (DOT text, laid out by
Graphviz on demand); `tg.draw_history(history)` draws learning curves,
`tg.draw_filters(conv)` and `tg.draw_feature_maps(net, image)` what a
convolutional network learned, with matplotlib. Read the package in this order:

- `api`: `draw()` and `Drawing`, the entry point and its options;
- `graph`: the op-level views "ops", "modules" and "backward";
- `steps`: the modules view of a recurrent network, its time steps folded;
- `captured`: the same "ops" and "modules" views of a captured `tg.Graph`;
- `network`: the book's pictures of neurons and networks ("network");
- `conv`: the same view of a convolutional network: stacks of feature maps;
- `recurrent`: the same view of an RNN, LSTM or GRU: the book's cell diagram;
- `memory_diagram`: the same view of an NTM or DNC: the papers' architecture figure;
- `labels`: escaping user text for DOT and formatting numbers;
- `history`: learning curves (matplotlib's SVG backend);
- `attention`: attention heatmaps (`draw_attention`, matplotlib);
- `memory`: a DNC's or NTM's weightings and usage over time (`draw_memory`, matplotlib);
- `filters`: a convolution's filters and a network's feature maps (matplotlib);
- `backends`: DOT -> SVG/PNG with the system `dot` or Graphviz in WebAssembly,
  each layout within a time limit.

The module itself is callable: ``tg.draw(y)`` is ``tg.draw.draw(y)``.
Nothing heavy is imported here: the `graphviz` package, the layout backends
and matplotlib are imported when a drawing is made (`MissingPackageError`
says which package is missing and how to install it).
"""
from __future__ import annotations

import sys
import types
from typing import Any

from . import backends
from ._optional import MissingPackageError
from .api import VIEWS, Drawing, DrawWarning, draw
from .backends import BackendError, LayoutTimeout, backend_info
from .filters import draw_feature_maps, draw_filters
from .history import Chart, draw_history
from .attention import draw_attention
from .memory import draw_memory

__all__ = ["draw", "draw_history", "draw_filters", "draw_feature_maps", "draw_attention", "draw_memory", "Drawing", "Chart", "DrawWarning", "VIEWS", "BackendError",
           "LayoutTimeout", "MissingPackageError", "backend_info", "backends"]


class _CallableModule(types.ModuleType):
    """`tensorgraph.draw` is a package that can be called like its `draw()`,
    so that ``tg.draw(y)`` keeps working beside ``tg.draw.Drawing``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Drawing:
        return draw(*args, **kwargs)

    @property
    def __signature__(self) -> Any:  # what IDEs and help() show for tg.draw(...)
        import inspect
        return inspect.signature(draw)


sys.modules[__name__].__class__ = _CallableModule
