"""Learning curves: training and validation loss and accuracy per epoch.

Chapter 3 of the book watches training with TensorBoard; `draw_history`
writes the same picture as a self-contained SVG, with no plotting library:
one panel per quantity ("loss", "accuracy", any other metric), the training
curve solid and the validation curve ("val_" + name) dashed, with axes, ticks,
a grid and a legend. Every piece of text is XML-escaped, so metric names and
titles cannot put markup into the SVG.
"""
from __future__ import annotations

import html
import math
import os
import pathlib
import re
from typing import Any, Mapping, Optional, Sequence, Union

from .labels import XML_FORBIDDEN

__all__ = ["draw_history", "Chart"]

PANEL_W, PANEL_H = 420, 290
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 58, 16, 34, 44
TRAIN, VAL = "#2563eb", "#ea580c"
FONT = "Helvetica, Arial, sans-serif"
SKIP = ("lr", "epoch", "epochs", "time")   # bookkeeping, not learning curves
_INVALID_XML = re.compile(f"[{XML_FORBIDDEN}]")


class Chart:
    """An SVG picture with the interface of `Drawing`: `.svg()`, `.save(path)`
    (.svg only) and notebook display."""

    def __init__(self, svg: str) -> None:
        self._svg = svg

    def svg(self, backend: Optional[str] = None) -> str:
        """The SVG text (`backend` is accepted for symmetry with Drawing and ignored)."""
        return self._svg

    def save(self, path: Union[str, os.PathLike]) -> pathlib.Path:
        path = pathlib.Path(path)
        if path.suffix.lower() != ".svg":
            raise ValueError(f"Chart.save: a learning-curve chart is written as SVG; use a .svg "
                             f"extension (got {path.name!r})")
        path.write_text(self._svg, encoding="utf-8")
        return path

    def _repr_svg_(self) -> str:
        return self._svg

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"image/svg+xml": self._svg, "text/plain": repr(self)}

    def __repr__(self) -> str:
        return f"<Chart: {len(self._svg)} characters of SVG>"


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


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round numbers (1, 2, 2.5, 5 × 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi) and math.isfinite(hi - lo)):
        return [0.0, 1.0]
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        pad = abs(hi) * 0.1 or 0.5
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = mag
    for m in (1, 2, 2.5, 5, 10):
        step = m * mag
        if (hi - lo) / step <= n:
            break
    start = math.floor(lo / step + 1e-9) * step
    stop = math.ceil(hi / step - 1e-9) * step
    k = int(round((stop - start) / step))
    return [start + i * step for i in range(k + 1)]


def _fmt(v: float, step: float) -> str:
    """A tick value with as many decimals as the step needs (0.25 -> 2)."""
    decimals = 0
    while decimals < 6 and abs(step * 10 ** decimals - round(step * 10 ** decimals)) > 1e-6:
        decimals += 1
    if abs(v) < abs(step) * 1e-6:
        v = 0.0  # no "-0.0"
    return f"{v:.{decimals}f}"


def _esc(text: Any) -> str:
    # Characters XML forbids (controls, lone surrogates) become U+FFFD, so any
    # metric name or title still gives well-formed SVG.
    return html.escape(_INVALID_XML.sub("\ufffd", str(text)), quote=True)


def _panel(x0: float, name: str, train: Optional[list[float]], val: Optional[list[float]],
           epochs: Optional[list[int]]) -> list[str]:
    w = PANEL_W - MARGIN_L - MARGIN_R
    h = PANEL_H - MARGIN_T - MARGIN_B
    left, top = x0 + MARGIN_L, MARGIN_T
    n = max(len(train or []), len(val or []))
    xs = [e + 1 for e in epochs[:n]] if epochs and len(epochs) >= n else list(range(1, n + 1))
    values = [v for s in (train, val) if s for v in s if math.isfinite(v)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    yt = _ticks(lo, hi)
    xt = _ticks(xs[0], xs[-1], 6) if n > 1 else [xs[0] - 1, xs[0], xs[0] + 1] if n else [0, 1]
    xt = [t for t in xt if float(t).is_integer()] or xt
    xlo, xhi = xt[0], xt[-1]
    ylo, yhi = yt[0], yt[-1]

    def px(x: float) -> float:
        return left + (x - xlo) / (xhi - xlo) * w

    def py(y: float) -> float:
        return top + h - (y - ylo) / (yhi - ylo) * h

    out = [f'<g class="panel" data-metric="{_esc(name)}">',
           f'<text x="{left + w / 2:.2f}" y="{top - 14:.2f}" text-anchor="middle" '
           f'font-size="14" font-weight="bold">{_esc(name)}</text>']
    ystep = yt[1] - yt[0] if len(yt) > 1 else 1.0
    for t in yt:
        y = py(t)
        out.append(f'<line x1="{left:.2f}" y1="{y:.2f}" x2="{left + w:.2f}" y2="{y:.2f}" '
                   'stroke="#e5e7eb" stroke-width="1"/>')
        out.append(f'<text x="{left - 6:.2f}" y="{y + 4:.2f}" text-anchor="end" '
                   f'font-size="11" fill="#374151">{_esc(_fmt(t, ystep))}</text>')
    for t in xt:
        x = px(t)
        out.append(f'<line x1="{x:.2f}" y1="{top + h:.2f}" x2="{x:.2f}" y2="{top + h + 4:.2f}" '
                   'stroke="#374151" stroke-width="1"/>')
        out.append(f'<text x="{x:.2f}" y="{top + h + 17:.2f}" text-anchor="middle" '
                   f'font-size="11" fill="#374151">{_esc(_fmt(t, 1.0))}</text>')
    out.append(f'<rect x="{left:.2f}" y="{top:.2f}" width="{w:.2f}" height="{h:.2f}" '
               'fill="none" stroke="#374151" stroke-width="1"/>')
    out.append(f'<text x="{left:.2f}" y="{top + h + 36:.2f}" text-anchor="start" '
               'font-size="12" fill="#111827">epoch</text>')
    legend = []
    for label, s, colour, dash in (("training", train, TRAIN, ""),
                                   ("validation", val, VAL, ' stroke-dasharray="6 4"')):
        if not s:
            continue
        legend.append((label, colour, dash))
        segment: list[str] = []
        segments = []
        for x, v in zip(xs, s):
            if math.isfinite(v):
                segment.append(f"{px(x):.2f},{py(v):.2f}")
            elif segment:
                segments.append(segment)
                segment = []
        if segment:
            segments.append(segment)
        for seg in segments:
            if len(seg) > 1:
                out.append(f'<polyline class="curve" points="{" ".join(seg)}" fill="none" '
                           f'stroke="{colour}" stroke-width="2"{dash}/>')
        if len(s) <= 40:
            for x, v in zip(xs, s):
                if math.isfinite(v):
                    out.append(f'<circle cx="{px(x):.2f}" cy="{py(v):.2f}" r="2.5" '
                               f'fill="{colour}"/>')
    for k, (label, colour, dash) in enumerate(legend):
        # Below the plot, right-aligned: never on top of a curve.
        ly = top + h + 36
        lx = left + w - 190 + 98 * k
        out.append(f'<line x1="{lx:.2f}" y1="{ly - 4:.2f}" x2="{lx + 22:.2f}" y2="{ly - 4:.2f}" '
                   f'stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{lx + 28:.2f}" y="{ly:.2f}" font-size="11" '
                   f'fill="#111827">{label}</text>')
    out.append("</g>")
    return out


def draw_history(history: Any, title: Optional[str] = None,
                 metrics: Optional[Sequence[str]] = None) -> Chart:
    """Learning curves as SVG: a panel per quantity (loss first, then
    accuracy and any other metric), training solid, validation dashed.

    `history` is a dict of per-epoch lists such as ``{"loss": [...],
    "val_loss": [...], "accuracy": [...], "val_accuracy": [...]}``, an object
    with such a `.history` dict (`tg.train.fit`'s History), or a list of
    per-epoch dicts. `metrics` picks the panels (default: all but "lr").
    """
    series, epochs = _series(history)
    panels = _panels(series, metrics)
    panels = [p for p in panels if p[1] or p[2]]
    if not panels:
        raise ValueError("draw_history: the history has no per-epoch values to draw "
                         f"(keys: {sorted(series)})")
    width = PANEL_W * len(panels)
    height = PANEL_H + (28 if title else 0)
    shift = 28 if title else 0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="{FONT}">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>']
    if title:
        parts.append(f'<text x="{width / 2:.2f}" y="22" text-anchor="middle" font-size="16" '
                     f'font-weight="bold">{_esc(title)}</text>')
    parts.append(f'<g transform="translate(0,{shift})">')
    for k, (name, train, val) in enumerate(panels):
        parts.extend(_panel(k * PANEL_W, name, train, val, epochs))
    parts.append("</g></svg>")
    return Chart("\n".join(parts) + "\n")
