"""Learning curves: training and validation loss and accuracy per epoch.

Chapter 3 of the book watches training with TensorBoard; `draw_history`
draws the same picture with matplotlib's SVG backend: one panel per quantity
("loss", "accuracy", any other metric), the training curve solid and the
validation curve ("val_" + name) dashed. The SVG is deterministic (a fixed
hash salt for its ids, no date in its metadata, matplotlib's default style
whatever the user's rcParams say), so the same history gives the same bytes.
Text stays text (`svg.fonttype="none"`), escaped by matplotlib's XML writer;
metric names are never read as mathtext. matplotlib is imported when a chart
is drawn, and pyplot never: the user's figures and backend are left alone.
"""
from __future__ import annotations

import io
import math
import os
import pathlib
import re
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from ._optional import require
from .labels import XML_FORBIDDEN

__all__ = ["draw_history", "Chart"]

PANEL_W, PANEL_H = 4.2, 2.9          # inches per panel (at 100 dpi: 420 x 290 px)
TRAIN, VAL = "#2563eb", "#ea580c"
SKIP = ("lr", "epoch", "epochs", "time")   # bookkeeping, not learning curves
MARKERS_UP_TO = 40                   # epochs drawn as dots on short curves
_INVALID_XML = re.compile(f"[{XML_FORBIDDEN}]")
# What makes the SVG bytes reproducible and its text searchable.
_RC = {"svg.hashsalt": "tensorgraph", "svg.fonttype": "none", "svg.image_inline": True,
       "figure.dpi": 100, "savefig.dpi": 100, "font.size": 10, "axes.grid": True,
       "grid.color": "#e5e7eb", "axes.axisbelow": True,
       "image.composite_image": False}    # each image its own SVG element (with its gid)


#: What `Chart.save` writes, by extension (matplotlib renders them all).
CHART_FORMATS = ("svg", "png", "pdf")


class Chart:
    """An SVG picture with the interface of `Drawing`: `.svg()`, `.save(path)`
    (.svg, or .png/.pdf drawn by matplotlib) and notebook display. `.metrics`
    names the panels in order (the SVG groups "panel-0", "panel-1", ...;
    curves "train-k", "val-k"); `.figure` is the matplotlib Figure, for
    reading back what was drawn. `svg` may be None when `render` can make
    it: it is then made on first use (a figure saved only as PNG is never
    drawn as SVG)."""

    def __init__(self, svg: Optional[str], metrics: Sequence[str] = (),
                 render: Optional[Callable[[str], bytes]] = None, figure: Any = None) -> None:
        if svg is None and render is None:
            raise ValueError("Chart: give the SVG text or a render function that makes it")
        self._text = svg
        self.metrics: tuple[str, ...] = tuple(metrics)
        self._render = render     # format -> bytes, for the formats other than SVG
        self.figure = figure      # the matplotlib Figure it was drawn from (not pyplot's)
        self.images: list[Any] = []   # what draw_filters / draw_feature_maps drew

    @property
    def _svg(self) -> str:
        if self._text is None:
            assert self._render is not None
            self._text = self._render("svg").decode("utf-8")
        return self._text

    def svg(self, backend: Optional[str] = None) -> str:
        """The SVG text (`backend` is accepted for symmetry with Drawing and ignored)."""
        return self._svg

    def pipe(self, format: str = "svg") -> bytes:
        """The chart as bytes in `format` ("svg", "png" or "pdf")."""
        if format == "svg":
            return self._svg.encode("utf-8")
        if format not in CHART_FORMATS or self._render is None:
            raise ValueError(f"Chart: cannot write format {format!r}; use one of "
                             + ", ".join(CHART_FORMATS[:1 if self._render is None else None]))
        return self._render(format)

    def save(self, path: Union[str, os.PathLike], backend: Optional[str] = None
             ) -> pathlib.Path:
        """Write the chart; the format follows the extension: .svg, .png or
        .pdf (`backend` is accepted for symmetry with Drawing and ignored)."""
        path = pathlib.Path(path)
        ext = path.suffix.lower().lstrip(".")
        if ext not in CHART_FORMATS:
            raise ValueError(f"Chart.save: cannot tell the format from {path.name!r}; use a "
                             ".svg, .png or .pdf extension")
        path.write_bytes(self.pipe(ext))
        return path

    def _repr_svg_(self) -> str:
        return self._svg

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"image/svg+xml": self._svg, "text/plain": repr(self)}

    def __repr__(self) -> str:
        return f"<Chart {', '.join(self.metrics)}: {len(self._svg)} characters of SVG>"


def _series(history: Any) -> tuple[dict[str, list[float]], Optional[list[int]]]:
    """name -> per-epoch values, from a dict of lists, an object with a
    `.history` dict (train.History), or a list of per-epoch dicts."""
    epochs = None
    if hasattr(history, "history") and isinstance(history.history, Mapping):
        epochs = list(getattr(history, "epochs", []) or []) or None
        history = history.history
    if isinstance(history, Sequence) and not isinstance(history, (str, bytes)) and history \
            and all(isinstance(h, Mapping) for h in history):
        merged: dict[str, list[float]] = {}
        for h in history:
            for k in h:
                merged.setdefault(k, [])
        for h in history:
            for k in merged:
                merged[k].append(h.get(k, float("nan")))
        history = merged
    if not isinstance(history, Mapping):
        raise TypeError("draw_history: expected a dict of per-epoch lists (e.g. {'loss': [...], "
                        "'val_loss': [...]}), a History with .history, or a list of per-epoch "
                        f"dicts; got {type(history).__name__}")
    out: dict[str, list[float]] = {}
    for k, v in history.items():
        try:
            vals = [float(x) for x in v]
        except (TypeError, ValueError):
            raise TypeError(f"draw_history: values of {k!r} must be numbers, got "
                            f"{type(v).__name__}") from None
        out[str(k)] = vals
    return out, epochs


def _panels(series: dict[str, list[float]],
            metrics: Optional[Sequence[str]]) -> list[tuple[str, Optional[list[float]],
                                                             Optional[list[float]]]]:
    bases: list[str] = []
    for k in series:
        base = k[4:] if k.startswith("val_") else k
        if base not in bases:
            bases.append(base)
    if metrics is not None:
        if isinstance(metrics, str):
            metrics = [metrics]  # metrics="loss", not the letters of "loss"
        missing = [m for m in metrics if m not in bases]
        if missing:
            raise KeyError(f"draw_history: no series for {missing}; the history has "
                           f"{sorted(series)}")
        bases = list(metrics)
    else:
        bases = [b for b in bases if b.lower() not in SKIP]
        bases = [b for b in bases if b == "loss"] + [b for b in bases if b != "loss"]
    return [(b, series.get(b), series.get("val_" + b)) for b in bases]


def _text(x: Any) -> str:
    # Characters XML forbids (controls, lone surrogates) become U+FFFD, so any
    # metric name or title still gives well-formed SVG.
    return _INVALID_XML.sub("\ufffd", str(x))


def _limits(values: list[float]) -> Optional[tuple[float, float]]:
    """y limits with a 5% margin; None when the span overflows (1e308 and
    -1e308), for which the panel switches to a symmetric log scale."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    span = hi - lo
    if not math.isfinite(span * 1.5):
        return None
    if span == 0:
        pad = abs(hi) * 0.1 or 0.5
        return lo - pad, hi + pad
    return lo - 0.05 * span, hi + 0.05 * span


def draw_history(history: Any, title: Optional[str] = None,
                 metrics: Optional[Sequence[str]] = None) -> Chart:
    """Learning curves as SVG, drawn by matplotlib: a panel per quantity
    (loss first, then accuracy and any other metric), training solid,
    validation dashed.

    `history` is a dict of per-epoch lists such as ``{"loss": [...],
    "val_loss": [...], "accuracy": [...], "val_accuracy": [...]}``, an object
    with such a `.history` dict (`tg.train.fit`'s History), or a list of
    per-epoch dicts. `metrics` picks the panels (default: all but "lr").
    Needs matplotlib (``pip install matplotlib``).
    """
    series, epochs = _series(history)
    panels = _panels(series, metrics)
    panels = [p for p in panels if p[1] or p[2]]
    if not panels:
        raise ValueError("draw_history: the history has no per-epoch values to draw "
                         f"(keys: {sorted(series)})")
    mpl = require("matplotlib", "drawing learning curves (tg.draw_history)")
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    with _style(mpl):
        fig = Figure(figsize=(PANEL_W * len(panels), PANEL_H + (0.35 if title else 0.0)),
                     layout="constrained")
        FigureCanvasSVG(fig)      # a canvas of our own: pyplot is never involved
        if title:
            fig.suptitle(_text(title), fontsize=13, fontweight="bold", parse_math=False)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for k, (ax, (name, train, val)) in enumerate(zip(axes, panels)):
            ax.set_gid(f"panel-{k}")
            ax.set_title(_text(name), fontsize=12, fontweight="bold", parse_math=False)
            ax.set_xlabel("epoch")
            limits = _limits([v for s in (train, val) if s for v in s])
            if limits is None:   # fixed before plotting: autoscaling would overflow
                finite = [v for s in (train, val) if s for v in s if math.isfinite(v)]
                ax.set_yscale("symlog")
                limits = (min(finite), max(finite))
            ax.set_autoscaley_on(False)
            ax.set_ylim(*limits)
            n = max(len(train or []), len(val or []))
            xs = [e + 1 for e in epochs[:n]] if epochs and len(epochs) >= n \
                else list(range(1, n + 1))
            for kind, ys, colour, style, label in (("train", train, TRAIN, "-", "training"),
                                                   ("val", val, VAL, "--", "validation")):
                if not ys:
                    continue
                (line,) = ax.plot(xs[:len(ys)], ys, color=colour, linestyle=style,
                                  linewidth=2, label=label,
                                  marker="o" if len(ys) <= MARKERS_UP_TO else None,
                                  markersize=3.5)
                line.set_gid(f"{kind}-{k}")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if n == 1:
                ax.set_xlim(xs[0] - 1, xs[0] + 1)
            ax.legend(loc="best", fontsize=9, frameon=False)
    return chart(mpl, fig, [name for name, _, _ in panels])


def chart(mpl: Any, fig: Any, metrics: Sequence[str], lazy: bool = False) -> Chart:
    """A `Chart` of a matplotlib Figure drawn under `_style`: its SVG now,
    other formats when asked. No date in the metadata: the same figure gives
    the same bytes. With `lazy`, the SVG is made when first asked for."""

    def render(format: str) -> bytes:
        buf = io.BytesIO()
        with _style(mpl):
            meta = {"Date": None} if format == "svg" else \
                {"CreationDate": None} if format == "pdf" else {}
            fig.savefig(buf, format=format, metadata=meta)
        return buf.getvalue()

    svg = None if lazy else render("svg").decode("utf-8")
    return Chart(svg, metrics, render, figure=fig)


def _style(mpl: Any) -> Any:
    """matplotlib's defaults plus `_RC`, for this chart only: the same picture
    whatever the user's style, and the user's rcParams left alone."""
    import contextlib

    @contextlib.contextmanager
    def context() -> Any:
        with mpl.rc_context():
            mpl.rcdefaults()
            mpl.rcParams.update(_RC)
            yield
    return context()
