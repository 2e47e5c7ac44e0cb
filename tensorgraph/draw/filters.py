"""What a convolutional network learned (chapter 5, "Visualizing Learning in
Convolutional Networks"): its filters and its feature maps, drawn with
matplotlib as grids of small grayscale images.

- `draw_filters(conv)`: one image per output channel of a convolution, its
  kernel `weight[o]` (kH×kW; a 1-D kernel is a 1×k strip). A kernel has one
  slice per input channel: `channel="mean"` (the default) draws their mean,
  an int draws that input channel alone (a one-channel input has only 0).
- `draw_feature_maps(net, image)`: the input, then the output of every
  convolution and pooling stage of `net` for one example, a grid of maps
  per stage titled with the stage's name and shape. The outputs are
  collected with forward hooks (`Module.register_forward_hook`), which are
  removed afterwards; the net runs in eval mode (dropout off, batch norm
  with its running statistics) and is left in the mode it was in. A
  convolution's output is drawn before its activation (nn.ReLU is a module
  of its own: name it in `layers=` to see the maps after it).

Grayscale: black is the smallest value, white the largest. `scale` says
over what the range is taken: "filter" / "map" (each image stretched to its
own range: the pattern reads best) or "layer" (one range for the whole grid:
strong and weak filters compare). A constant image is drawn mid-grey.

Which modules are convolutions or poolings is asked, not guessed: those
whose `diagram()` is one `FeatureMaps` part of kind "conv" (or "pool").
Both return a `Chart` (the interface of `Drawing`: `.svg()`, `.save(path)`
to .svg/.png/.pdf, notebook display); `.figure` is the matplotlib Figure,
`.images` the arrays drawn, in order.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..nn import FeatureMaps
from ..tensor import Tensor, no_grad
from ._optional import require
from .history import Chart, _style, _text, chart

__all__ = ["draw_filters", "draw_feature_maps", "filter_images", "normalise"]

CELL = 0.62          # inches per filter image
MAP_CELL = 0.9       # inches per feature map
MAX_COLUMNS = 8      # images per row in a grid


def normalise(a: np.ndarray) -> np.ndarray:
    """`a` stretched linearly onto [0, 1] (min -> 0, max -> 1); a constant
    array becomes 0.5."""
    a = np.asarray(a, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    if not hi > lo:
        return np.full(a.shape, 0.5)
    return (a - lo) / (hi - lo)


def _scaled(images: list[np.ndarray], scale: str, each: str, what: str) -> list[np.ndarray]:
    if scale == each:
        return [normalise(a) for a in images]
    if scale == "layer":
        stacked = normalise(np.stack(images))
        return list(stacked)
    raise ValueError(f"{what}: scale must be {each!r} or 'layer', got {scale!r}")


def _describe(m: Any) -> str:
    name = getattr(m, "scope_name", None)
    return f"{type(m).__name__}" + (f" {name!r}" if name else "")


def _one_part(m: Any, kinds: Sequence[str]) -> Optional[FeatureMaps]:
    """The module's FeatureMaps part when its diagram is one of `kinds`."""
    diagram = getattr(m, "diagram", None)
    if diagram is None:
        return None
    parts = diagram()
    if len(parts) == 1 and isinstance(parts[0], FeatureMaps) and parts[0].kind in kinds:
        return parts[0]
    return None


def filter_images(conv: Any, channel: Union[str, int] = "mean",
                  scale: str = "filter") -> list[np.ndarray]:
    """The images `draw_filters` draws: for each output channel o, the 2-D
    array (kH, kW) (or (1, k) for a 1-D kernel) of `weight[o]` (the mean over
    input channels or one of them, see `channel`), normalised by `scale`."""
    what = "draw_filters"
    if isinstance(conv, (np.ndarray, Tensor)):
        w = np.asarray(conv.data if isinstance(conv, Tensor) else conv, dtype=np.float64)
        who = f"a weight of shape {w.shape}"
    else:
        part = _one_part(conv, ("conv",))
        weight = getattr(conv, "weight", None)
        if part is None or weight is None:
            raise TypeError(f"{what}: {_describe(conv)} is not a convolution: it needs a module "
                            "whose diagram() is one FeatureMaps of kind 'conv' (nn.Conv2d, "
                            "nn.Conv1d) with a .weight of shape (out_channels, "
                            "in_channels/groups, kH, kW), or such a weight array")
        w = np.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=np.float64)
        who = f"{_describe(conv)} (weight {w.shape})"
    if w.ndim not in (3, 4) or 0 in w.shape:
        raise ValueError(f"{what}: {who}: a convolution's weight has shape (out_channels, "
                         "in_channels/groups, kH, kW) or (out_channels, in_channels/groups, k)")
    if isinstance(channel, str):
        if channel != "mean":
            raise ValueError(f"{what}: channel must be 'mean' or an input channel index, "
                             f"got {channel!r}")
        k = w.mean(axis=1)
    elif isinstance(channel, (int, np.integer)) and not isinstance(channel, bool):
        if not 0 <= channel < w.shape[1]:
            raise ValueError(f"{what}: {who}: channel {channel} is out of range; the kernels "
                             f"have {w.shape[1]} input channel(s), 0 to {w.shape[1] - 1}")
        k = w[:, channel]
    else:
        raise TypeError(f"{what}: channel must be 'mean' or an int, got {channel!r}")
    images = [a if a.ndim == 2 else a.reshape(1, -1) for a in k]
    return _scaled(images, scale, "filter", what)


def _grid(n: int, columns: Optional[int]) -> tuple[int, int]:
    cols = columns if columns is not None else min(n, MAX_COLUMNS if n <= 64 else
                                                   math.ceil(math.sqrt(n)))
    if not isinstance(cols, int) or cols < 1:
        raise ValueError(f"columns must be a positive int, got {columns!r}")
    return math.ceil(n / cols), cols


def _tile(ax: Any, images: Sequence[np.ndarray], cols: int, gid: str,
          numbers: bool) -> None:
    """The images in a grid of `cols` columns inside one axes, each its own
    AxesImage (gid "<gid>-k") placed by its extent: one axes per grid keeps
    a 64-filter figure fast (an axes each costs ~30 ms to make)."""
    h = max(a.shape[0] for a in images)
    w = max(a.shape[1] for a in images)
    gap_x = max(1.0, 0.25 * w)
    gap_y = max(1.0, 0.25 * h) + (0.45 * h + 1.0 if numbers else 0.0)
    rows = math.ceil(len(images) / cols)
    for k, img in enumerate(images):
        r, c = divmod(k, cols)
        x0, y0 = c * (w + gap_x), r * (h + gap_y) + (gap_y - max(1.0, 0.25 * h))
        # extent: (left, right, bottom, top) with y pointing down (ylim inverted below)
        im = ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest",
                       extent=(x0, x0 + img.shape[1], y0 + img.shape[0], y0))
        im.set_gid(f"{gid}-{k}")
        ax.add_patch(_frame(x0, y0, img.shape[1], img.shape[0]))
        if numbers:
            ax.text(x0 + img.shape[1] / 2, y0 - 0.15 * h, str(k), ha="center", va="bottom",
                    fontsize=7, parse_math=False)
    ax.set_xlim(-0.5, cols * (w + gap_x) - gap_x + 0.5)
    ax.set_ylim(rows * (h + gap_y) - max(1.0, 0.25 * h) + 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_gid(gid)


def _frame(x: float, y: float, w: float, h: float) -> Any:
    from matplotlib.patches import Rectangle
    return Rectangle((x, y), w, h, fill=False, edgecolor="#6b7280", linewidth=0.6)


def draw_filters(conv: Any, *, channel: Union[str, int] = "mean", scale: str = "filter",
                 columns: Optional[int] = None, title: Optional[str] = None) -> Chart:
    """The learned kernels of a convolution as a grid of small grayscale
    images, one per output channel (filter o: `conv.weight[o]`), numbered.

    conv     an `nn.Conv2d` / `nn.Conv1d` (any module whose diagram() is one
             FeatureMaps of kind "conv"), or a weight array (out, in, kH, kW).
    channel  "mean": each image is the kernel's mean over its input
             channels (one input channel: that channel); an int: that input
             channel only.
    scale    "filter": each image stretched to its own range; "layer": one
             range for all (black = the layer's most negative weight).
    columns  images per row (default up to 8).

    >>> tg.draw_filters(net.layers[0]).save("filters.png")
    """
    images = filter_images(conv, channel, scale)
    mpl = require("matplotlib", "drawing filters (tg.draw_filters)")
    from matplotlib.figure import Figure

    rows, cols = _grid(len(images), columns)
    if title is None:
        w_shape = np.shape(conv.data if isinstance(conv, Tensor) else
                           conv if isinstance(conv, np.ndarray) else conv.weight)
        title = f"{len(images)} filters {'×'.join(str(n) for n in w_shape[2:])}"
        if not isinstance(conv, (np.ndarray, Tensor)):
            title = f"{type(conv).__name__}: {title}"
        if channel == "mean" and w_shape[1] > 1:
            title += f", mean over {w_shape[1]} input channels"
        elif channel != "mean":
            title += f", input channel {channel}"
    name = title
    with _style(mpl):
        h, w = images[0].shape
        cell_h = CELL * max(0.2, h / w)
        fig = Figure(figsize=(max(2.5, cols * CELL * 1.25 + 0.3),
                              rows * (cell_h * 1.25 + 0.15) + 0.6), layout="constrained")
        fig.suptitle(_text(name), fontsize=11, fontweight="bold", parse_math=False)
        _tile(fig.add_subplot(), images, cols, "filter", numbers=True)
    out = chart(mpl, fig, ["filters"], lazy=True)
    out.images = images
    return out


def _as_example(module: Any, image: Any, first: Optional[FeatureMaps]) -> np.ndarray:
    """One example as a batch of one: (1, C, H, W) (or (1, C, L))."""
    x = np.asarray(image.data if isinstance(image, Tensor) else image)
    if x.dtype.kind not in "fiub":
        raise TypeError(f"draw_feature_maps: the image must be numbers, got dtype {x.dtype}")
    rank = len(first.kernel_size) if first is not None and first.kernel_size else 2
    in_channels = first.in_channels if first is not None else None
    if x.ndim == rank and in_channels in (None, 1):
        x = x[None]                     # (H, W) of a one-channel net
    if x.ndim == rank + 1:
        x = x[None]
    if x.ndim != rank + 2 or x.shape[0] != 1:
        want = "(C, L)" if rank == 1 else "(C, H, W)"
        raise ValueError(f"draw_feature_maps: the image must be one example {want} or a batch "
                         f"of one, for {_describe(module)}; got shape {np.shape(image)}")
    return x


def _dtype(module: Any) -> Any:
    params = module.parameters() if hasattr(module, "parameters") else []
    return params[0].dtype if params else np.float32


def _stage_title(name: str, part: Optional[FeatureMaps], shape: tuple[int, ...]) -> str:
    size = "×".join(str(n) for n in shape[1:]) + f"×{shape[0]}"
    if part is None:
        return f"{name}  {size}"
    from .conv import describe
    return f"{name}: {describe(part)[0]}  →  {size}"


def draw_feature_maps(module: Any, image: Any, *, layers: Optional[Sequence[str]] = None,
                      max_maps: int = 16, scale: str = "layer", columns: Optional[int] = None,
                      title: Optional[str] = None) -> Chart:
    """The activations of a convolutional network for one input: the input,
    then the output of each convolution and pooling stage (a grid of its
    feature maps, the first `max_maps` channels, titled with the stage's
    name, what it does and its shape height×width×channels). A 1-D stage is
    one image, its channels as rows.

    module   the network (any Module); its conv and pool stages are the
             modules whose diagram() is a FeatureMaps of kind "conv" or
             "pool", found in `named_modules()` order; `layers=` names other
             modules instead (e.g. the ReLU after a convolution).
             A module called twice (shared) gives a grid per call.
    image    one example (C, H, W), or (H, W) for a one-channel network, or
             a batch of one.
    scale    "layer" (default: one range per stage, so maps compare) or "map".

    The net runs once, under no_grad, in eval mode, with forward hooks that
    are removed afterwards. `.images` holds [(title, maps)] as drawn.
    """
    if not isinstance(max_maps, int) or max_maps < 1:
        raise ValueError(f"draw_feature_maps: max_maps must be a positive int, got {max_maps!r}")
    if not callable(module) or not hasattr(module, "named_modules"):
        raise TypeError(f"draw_feature_maps: expected a Module, got {type(module).__name__}")
    named = list(module.named_modules())
    parts = {n: _one_part(m, ("conv", "pool")) for n, m in named}
    if layers is None:
        chosen = [(n, m) for n, m in named if parts[n] is not None]
        if not chosen:
            raise TypeError(f"draw_feature_maps: {_describe(module)} has no convolution or "
                            "pooling stage (a module whose diagram() is a FeatureMaps of kind "
                            "'conv' or 'pool'); pass layers=[dotted names] to draw others")
    else:
        table = dict(named)
        missing = [n for n in layers if n not in table]
        if missing:
            raise KeyError(f"draw_feature_maps: {_describe(module)} has no sub-module "
                           f"{', '.join(repr(n) for n in missing)}; its modules are "
                           f"{', '.join(repr(n) for n, _ in named if n)}")
        chosen = [(n, table[n]) for n in layers]
    first = next((p for p in parts.values() if p is not None and p.kind == "conv"), None)
    x = _as_example(module, image, first)

    # (title, the module's part, its output), in the order the forward ran them
    captured: list[tuple[str, Optional[FeatureMaps], np.ndarray]] = []
    calls: dict[str, int] = {}

    def hook_for(name: str) -> Any:
        def hook(m: Any, args: Any, out: Any) -> None:   # returns None: output kept
            calls[name] = calls.get(name, 0) + 1
            label = name if calls[name] == 1 else f"{name} (call {calls[name]})"
            captured.append((label, parts[name],
                             np.array(out.data if isinstance(out, Tensor) else out)))
        return hook

    modes = [(m, m.training) for _, m in named]
    handles = [m.register_forward_hook(hook_for(n)) for n, m in chosen]
    try:
        module.eval()
        with no_grad():
            module(Tensor(x.astype(_dtype(module), copy=False)))
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            m.__dict__["training"] = mode
    if not captured:
        raise RuntimeError(f"draw_feature_maps: none of {', '.join(n for n, _ in chosen)} ran "
                           f"in {_describe(module)}'s forward")

    panels: list[tuple[str, list[np.ndarray]]] = []
    sequences: list[bool] = []     # a 1-D stage: one image, channels × length
    stages = [("input", None, x[0])] + [(lbl, part, out[0]) for lbl, part, out in captured]
    for lbl, part, out in stages:
        shape = tuple(out.shape)
        if out.ndim == 2:     # a 1-D stage: all its channels as rows of one image
            maps = _scaled([out], "map", "map", "draw_feature_maps")
        elif out.ndim == 3:
            maps = _scaled(list(out[:max_maps]), scale, "map", "draw_feature_maps")
        else:
            raise ValueError(f"draw_feature_maps: {lbl} gives shape {out.shape} per example, "
                             "not feature maps (C, H, W) or (C, L)")
        more = "" if out.ndim == 2 or shape[0] <= max_maps else f"  (first {max_maps})"
        panels.append((_stage_title(lbl, part, shape) + more, maps))
        sequences.append(out.ndim == 2)

    mpl = require("matplotlib", "drawing feature maps (tg.draw_feature_maps)")
    from matplotlib.figure import Figure

    grids = [_grid(len(maps), columns) for _, maps in panels]
    width = max(c for _, c in grids)
    heights = [rows * MAP_CELL * 1.25 + 0.3 for rows, _ in grids]
    with _style(mpl):
        fig = Figure(figsize=(max(4.0, width * MAP_CELL * 1.25 + 0.4), sum(heights) + 0.5),
                     layout="constrained")
        fig.suptitle(_text(title or f"Feature maps of {_describe(module)}"), fontsize=12,
                     fontweight="bold", parse_math=False)
        axes = fig.subplots(len(panels), 1, squeeze=False, height_ratios=heights)[:, 0]
        for s, (ax, (name, maps), (rows, cols), seq) in enumerate(zip(axes, panels, grids,
                                                                       sequences)):
            _tile(ax, maps, cols, f"stage-{s}", numbers=False)
            if seq:      # channels × length, stretched to the panel
                ax.set_aspect("auto")
            ax.set_anchor("W")
            ax.set_title(_text(name), fontsize=9, loc="left", parse_math=False)
    out = chart(mpl, fig, [name for name, _ in panels], lazy=True)
    out.images = panels
    return out
