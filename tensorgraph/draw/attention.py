"""Attention heatmaps (chapter 7): which source tokens each output token read.

`draw_attention(weights, source_tokens, target_tokens)` draws a (T, S)
matrix of attention weights, one row per target (output) token and one
column per source (input) token, as an image: white is 0, dark blue the
largest weight (1 by default: the weights of a row sum to 1), as in the
figures of Bahdanau et al. 2015. Source tokens label the columns (on top,
rotated), target tokens the rows. With `annotate=True` each cell also shows
its weight. matplotlib's SVG backend and the deterministic style of
`draw_history` (same weights, same bytes); pyplot is never imported.
Returns a `Chart`; `.figure` is the matplotlib Figure, `.images` the array
drawn.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ._optional import require
from .history import Chart, _style, _text, chart

__all__ = ["draw_attention"]

CELL = 0.42           # inches per cell
MAX_CELLS = 200       # per axis: beyond it a heatmap is unreadable


def _tokens(tokens: Any, n: int, what: str, axis: str, shape: tuple[int, ...]) -> list[str]:
    if isinstance(tokens, str):
        raise TypeError(f"draw_attention: {what} must be a sequence of tokens, not a str "
                        f"(split it: {tokens[:20]!r}.split())")
    toks = [_text(t) for t in tokens]
    if len(toks) != n:
        raise ValueError(f"draw_attention: weights have shape {shape} (target x source), so "
                         f"{what} needs {n} tokens (the {axis}), got {len(toks)}")
    return toks


def draw_attention(weights: Any, source_tokens: Sequence[Any], target_tokens: Sequence[Any],
                   title: Optional[str] = None, annotate: bool = False,
                   vmax: Optional[float] = 1.0) -> Chart:
    """A heatmap of attention weights (T target tokens x S source tokens):
    row t shows how output token t spread its attention over the source.

    weights: a (T, S) array or Tensor (e.g. the stacked `weights` an
    attention module returns at each decoding step); a (1, T, S) batch of one
    is accepted. vmax: the weight drawn darkest (None: the largest weight).
    Needs matplotlib (``pip install matplotlib``)."""
    w = np.asarray(getattr(weights, "data", weights), dtype=np.float64)
    if w.ndim == 3 and w.shape[0] == 1:
        w = w[0]
    if w.ndim != 2:
        raise ValueError(f"draw_attention: weights must be 2-D (target tokens x source tokens), "
                         f"got shape {w.shape}")
    T, S = w.shape
    if T == 0 or S == 0 or T > MAX_CELLS or S > MAX_CELLS:
        raise ValueError(f"draw_attention: weights of shape {w.shape}: need 1 to {MAX_CELLS} "
                         "target and source tokens")
    if not np.isfinite(w).all():
        raise ValueError("draw_attention: weights hold NaN or infinite values")
    src = _tokens(source_tokens, S, "source_tokens", "columns", w.shape)
    tgt = _tokens(target_tokens, T, "target_tokens", "rows", w.shape)
    top = float(w.max()) if vmax is None else float(vmax)
    mpl = require("matplotlib", "drawing attention heatmaps (tg.draw_attention)")
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with _style(mpl):
        longest = max(len(t) for t in src + tgt)
        margin = 0.6 + 0.07 * min(longest, 30)
        fig = Figure(figsize=(max(2.5, CELL * S + margin + 1.0),
                              max(2.0, CELL * T + margin + (0.4 if title else 0.0))),
                     layout="constrained")
        FigureCanvasSVG(fig)      # a canvas of our own: pyplot is never involved
        ax = fig.add_subplot()
        ax.set_gid("attention")
        im = ax.imshow(w, cmap="Blues", vmin=0.0, vmax=top if top > 0 else 1.0,
                       aspect="equal", interpolation="nearest")
        im.set_gid("weights")
        ax.grid(False)
        ax.set_xticks(range(S), labels=src, rotation=60, ha="left", rotation_mode="anchor")
        ax.set_yticks(range(T), labels=tgt)
        ax.xaxis.tick_top()
        ax.set_xlabel("source", labelpad=6)
        ax.xaxis.set_label_position("bottom")
        ax.set_ylabel("output")
        for label in ax.get_xticklabels() + ax.get_yticklabels():
            label.set_parse_math(False)       # tokens are text, never mathtext ("$5")
        if annotate:
            for t in range(T):
                for s in range(S):
                    dark = w[t, s] > 0.6 * (top if top > 0 else 1.0)
                    ax.text(s, t, f"{w[t, s]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if dark else "#1f2937", parse_math=False)
        fig.colorbar(im, ax=ax, shrink=0.8)
        if title:
            ax.set_title(_text(title), fontsize=12, fontweight="bold", parse_math=False)

    out = chart(mpl, fig, ["attention"])
    out.images = [w]              # what was drawn, for reading back
    return out
