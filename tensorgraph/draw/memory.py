"""The memory at work (chapter 8, "Visualizing the DNC in action"): heatmaps
over time of what a memory-augmented network wrote, read and kept.

`draw_memory(trace)` takes the `trace` dict that `nn.DNC` and `nn.NTM`
return with ``trace=True`` (numpy arrays, each (T, B, ...)) and draws, for
one sequence of the batch, one panel per quantity stacked on a shared time
axis: the write weighting w^w_t (memory rows x time), each read head's
weighting w^{r,i}_t, and (DNC) the usage u_t; optionally the network's input,
output and target (channels x time) above and below them, as in Graves et
al. 2016, figure 3. Column t of every panel is step t: a write at row 5 in
column 3 and a read of row 5 in column 14 show the network recalling at step
14 what it stored at step 3. White is 0, dark is 1 (weightings and usage lie
in [0, 1]). matplotlib's SVG backend and the deterministic style of
`draw_history`; pyplot is never imported. Returns a `Chart`: `.metrics`
names the panels top to bottom, `.images` holds the arrays drawn (each
rows x time), and each panel's axes has the panel's name as its gid.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from ._optional import require
from .history import Chart, _style, _text, chart

__all__ = ["draw_memory"]

ROW_H = 0.11          # inches per drawn row (memory row or channel)
MAX_STEPS = 500       # beyond it the columns are thinner than a pixel


def _array(x: Any, what: str) -> np.ndarray:
    a = np.asarray(getattr(x, "data", x), dtype=np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"draw_memory: {what} holds NaN or infinite values")
    return a


def _sequence(x: Any, what: str, T: int) -> np.ndarray:
    """An input/output/target of one sequence, (T, channels) -> (channels, T)."""
    a = _array(x, what)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] != T:
        raise ValueError(f"draw_memory: {what} must be (time, channels) with time = {T} (the "
                         f"trace's steps), got shape {a.shape}")
    return a.T


def draw_memory(trace: Mapping[str, Any], batch: int = 0, inputs: Any = None,
                outputs: Any = None, targets: Any = None, title: Optional[str] = None) -> Chart:
    """Heatmaps of the memory's weightings over time for sequence `batch`.

    trace: the dict of `nn.DNC(..., trace=True)` / `nn.NTM` with at least
    "write_weights" (T, B, N) and "read_weights" (T, B, R, N); "usage"
    (T, B, N) is drawn when present. inputs, outputs, targets: optional
    (T, channels) arrays of that sequence (e.g. x[:, b] and σ(y[:, b])),
    drawn above (input) and below (output, target) the memory panels.
    Panels, top to bottom: "input", "write_weights", "read_weights_0", ...,
    "usage", "output", "target" (those given). Needs matplotlib."""
    if not isinstance(trace, Mapping):
        raise TypeError(f"draw_memory: trace must be the dict a DNC or NTM returns with "
                        f"trace=True, got {type(trace).__name__}")
    missing = [k for k in ("write_weights", "read_weights") if k not in trace]
    if missing:
        raise ValueError(f"draw_memory: trace lacks {', '.join(repr(k) for k in missing)} (has "
                         f"{sorted(trace)}); pass the dict of dnc(x, trace=True)")
    ww = _array(trace["write_weights"], "trace['write_weights']")
    rw = _array(trace["read_weights"], "trace['read_weights']")
    if ww.ndim != 3:
        raise ValueError(f"draw_memory: trace['write_weights'] must be (time, batch, rows), "
                         f"got shape {ww.shape}")
    T, B, N = ww.shape
    if rw.ndim != 4 or rw.shape[:2] != (T, B) or rw.shape[3] != N:
        raise ValueError(f"draw_memory: trace['read_weights'] must be (time, batch, heads, "
                         f"rows) = ({T}, {B}, R, {N}) to match write_weights {ww.shape}, got "
                         f"shape {rw.shape}")
    if T == 0 or T > MAX_STEPS:
        raise ValueError(f"draw_memory: need 1 to {MAX_STEPS} time steps, got {T}")
    if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) \
            or not -B <= batch < B:
        raise ValueError(f"draw_memory: batch must be an index into the trace's batch of {B}, "
                         f"got {batch!r}")
    panels: list[tuple[str, str, np.ndarray, str]] = []     # (gid, title, rows x T, y label)
    if inputs is not None:
        panels.append(("input", "input", _sequence(inputs, "inputs", T), "channel"))
    panels.append(("write_weights", "write weighting", ww[:, batch].T, "memory row"))
    R = rw.shape[2]
    for i in range(R):
        name = "read weighting" + (f" (head {i})" if R > 1 else "")
        panels.append((f"read_weights_{i}", name, rw[:, batch, i].T, "memory row"))
    if "usage" in trace:
        usage = _array(trace["usage"], "trace['usage']")
        if usage.shape != (T, B, N):
            raise ValueError(f"draw_memory: trace['usage'] must be (time, batch, rows) = "
                             f"{(T, B, N)}, got shape {usage.shape}")
        panels.append(("usage", "usage", usage[:, batch].T, "memory row"))
    if outputs is not None:
        panels.append(("output", "output", _sequence(outputs, "outputs", T), "channel"))
    if targets is not None:
        panels.append(("target", "target", _sequence(targets, "targets", T), "channel"))

    mpl = require("matplotlib", "drawing memory heatmaps (tg.draw_memory)")
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    heights = [max(a.shape[0], 3) for _, _, a, _ in panels]
    with _style(mpl):
        # wide enough for the time axis, and for the title (~0.09 in a character at 11 pt bold)
        fig = Figure(figsize=(max(4.0, 1.6 + 0.16 * T, 0.5 + 0.09 * len(title or "")),
                              0.55 * len(panels) + ROW_H * sum(heights) + (0.4 if title else 0)),
                     layout="constrained")
        FigureCanvasSVG(fig)      # a canvas of our own: pyplot is never involved
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False,
                            gridspec_kw={"height_ratios": heights})[:, 0]
        for ax, (gid, name, a, ylabel) in zip(axes, panels):
            ax.set_gid(gid)
            im = ax.imshow(a, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto",
                           interpolation="nearest")
            im.set_gid(gid)
            ax.grid(False)
            ax.set_title(name, fontsize=9, loc="left")
            ax.set_ylabel(ylabel, fontsize=8)
            ax.tick_params(labelsize=7)
        axes[-1].set_xlabel("time step")
        if title:
            fig.suptitle(_text(title), fontsize=11, fontweight="bold")
    out = chart(mpl, fig, [gid for gid, _, _, _ in panels], lazy=True)   # SVG when asked
    out.images = [a for _, _, a, _ in panels]
    return out
