"""Labels for the renderer: escaping user text for DOT, formatting values.

Why quoted labels and not HTML-like ones: the WebAssembly Graphviz build that
backs ``backend="wasm"`` has no HTML-label parser (it silently draws the node
id instead), so every label here is a plain quoted DOT string. User text is
made inert in three layers, each tested on the SVG text:

1. DOT syntax: ``\\`` and ``"`` are backslash-escaped, so a name such as
   ``"]; x -> y [`` stays inside its string.
2. Graphviz escapes: ``\\N``, ``\\G``, ``\\l`` ... would be expanded by Graphviz;
   the doubled backslash keeps them literal. A newline becomes a ``\\n`` line
   break; other control characters (invalid in XML) become U+FFFD.
3. Entities: Graphviz decodes ``&amp;`` style entities in labels, so ``&`` is
   written as ``&amp;`` and the user's text comes out as typed. Graphviz
   escapes ``<``, ``>``, ``&`` and quotes when it writes SVG text, so a name
   like ``<script>`` is text in the SVG, never an element.

The label is wrapped in ``graphviz.nohtml`` so that the graphviz package never
takes a label that happens to start with ``<`` and end with ``>`` for HTML.
"""
from __future__ import annotations

import re
import textwrap
from typing import Any, Optional

import numpy as np

from ._optional import require

__all__ = ["escape", "label", "fmt_number", "fmt_constant", "fmt_shape", "fmt_array", "fmt_attr",
           "FONT", "STYLE", "subscript"]

# Sans-serif reads better than Graphviz's default Times at small sizes.
FONT = "Helvetica,Arial,sans-serif"
MAX_TEXT = 60          # longest single line of user text before it is cut
SMALL_TENSOR = 8       # tensors with at most this many elements are shown in full

# Control characters, lone surrogates (not encodable as UTF-8) and U+FFFE/U+FFFF:
# none may appear in the XML of an SVG (the learning curves use the same set).
XML_FORBIDDEN = "\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
# Labels also replace DEL, a control character with no glyph.
_CONTROL = re.compile(f"[{XML_FORBIDDEN}\x7f]")
_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _graphviz() -> Any:
    # Imported on first use: `import tensorgraph` must work without it.
    return require("graphviz", "drawing a graph (tg.draw)")


def subscript(i: int) -> str:
    """``subscript(12) == "₁₂"`` (Unicode digits: no markup needed)."""
    return str(i).translate(_SUBSCRIPTS)


def _clip(line: str, limit: int = MAX_TEXT) -> str:
    return line if len(line) <= limit else line[:limit - 1] + "…"


def escape(text: Any, limit: int = MAX_TEXT) -> str:
    """Make arbitrary text literal inside a quoted DOT label (see module doc).
    Newlines become Graphviz line breaks; each line is clipped to `limit`."""
    s = str(text).replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    s = _CONTROL.sub("\ufffd", s)
    lines = [_clip(line, limit) for line in s.split("\n")]
    out = []
    for line in lines:
        line = line.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")
        out.append(line)
    return "\\n".join(out)


def label(*lines: Optional[str], limit: int = MAX_TEXT) -> Any:
    """A multi-line label from plain-text lines (None and "" are skipped),
    each escaped and clipped to `limit` characters."""
    return _graphviz().nohtml("\\n".join(escape(x, limit) for x in lines if x))


def heading(*lines: Optional[str], width: int = 64, limit: int = 200) -> Any:
    """A drawing's title and notes as a label, each line clipped to `limit` and
    wrapped at `width` characters: Graphviz does not wrap, and a title wider
    than the graph is cut off in the SVG (the WebAssembly build, which has no
    font files, underestimates text widths)."""
    wrapped: list[str] = []
    for x in lines:
        if x:
            x = str(x)  # a title may be any object (draw_history accepts them too)
            wrapped += textwrap.wrap(x[:limit], width) or [x[:limit]]
    return label(*wrapped, limit=limit)


# ---------------------------------------------------------------------------
# Numbers, shapes, arrays, attributes

def fmt_number(x: Any) -> str:
    """Four significant digits; integers and booleans as they are."""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    if x == 0.0:
        return "0"  # also for -0.0: a sign on zero only confuses a learner
    return f"{x:.4g}"


def fmt_constant(x: Any) -> str:
    """A constant in full (the shortest text that reads back to the same
    value: 1.0001 stays 1.0001, where `fmt_number` would round it to 1)."""
    x = np.asarray(x)[()]
    if isinstance(x, np.floating):
        s = np.format_float_positional(x, unique=True, trim="-")
        return s if len(s) <= 12 else np.format_float_scientific(x, unique=True, trim="-")
    return fmt_number(x)


def fmt_shape(shape: tuple[int, ...]) -> str:
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(n) for n in shape) + ")"


def fmt_array(a: Any, small: int = SMALL_TENSOR) -> list[str]:
    """A value as label lines: small arrays in full (one line per row of a
    matrix), larger ones summarized as ``mean, min, max`` (the shape is on the
    node already)."""
    a = np.asarray(a)
    if a.ndim == 0:
        return [fmt_number(a.item())]
    if a.size == 0:
        return ["[]"]
    if a.size <= small and a.ndim <= 2:
        if a.ndim == 1:
            return ["[" + ", ".join(fmt_number(v) for v in a.tolist()) + "]"]
        return ["[" + ", ".join(fmt_number(v) for v in row) + "]" for row in a.tolist()]
    if a.dtype.kind == "b":
        return [f"{int(a.sum())} of {a.size} true"]
    with np.errstate(all="ignore"):
        af = a.astype(np.float64)
        return [f"mean {fmt_number(af.mean())}",
                f"min {fmt_number(af.min())}  max {fmt_number(af.max())}"]


def fmt_attr(v: Any, depth: int = 0) -> str:
    """An op attribute in Python-ish notation: slices as ``1:3``, arrays by
    shape unless tiny, anything unknown by its (clipped) repr."""
    if depth > 3:
        return "…"
    if v is None:
        return "None"
    if v is Ellipsis:
        return "..."
    if isinstance(v, slice):
        parts = ["" if p is None else str(p) for p in (v.start, v.stop, v.step)]
        return ":".join(parts[:2]) + (f":{parts[2]}" if v.step is not None else "")
    if isinstance(v, (bool, np.bool_, int, np.integer, float, np.floating)):
        return fmt_number(v)
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
        return str(np.dtype(v))
    if isinstance(v, np.ndarray):
        if v.size <= 4 and v.ndim <= 1:
            return "[" + ", ".join(fmt_number(x) for x in v.tolist()) + "]"
        return f"array{fmt_shape(v.shape)}"
    if isinstance(v, (tuple, list)):
        inner = ", ".join(fmt_attr(x, depth + 1) for x in v)
        if isinstance(v, tuple):
            return f"({inner},)" if len(v) == 1 else f"({inner})"
        return f"[{inner}]"
    return _clip(repr(v), 40)


# ---------------------------------------------------------------------------
# Node styles by kind: parameters, inputs and constants differ at a glance
# (colour and outline), and the legend is in the docs of `draw`.

STYLE: dict[str, dict[str, str]] = {
    "op": {"shape": "box", "style": "rounded,filled", "fillcolor": "#f3f4f6",
           "color": "#4b5563"},
    "param": {"shape": "box", "style": "filled", "fillcolor": "#fde7c8",
              "color": "#c2410c", "penwidth": "1.4"},
    "input": {"shape": "box", "style": "filled", "fillcolor": "#dbeafe",
              "color": "#1d4ed8"},
    "const": {"shape": "box", "style": "rounded,dashed,filled", "fillcolor": "#ffffff",
              "color": "#6b7280", "fontcolor": "#374151", "fontsize": "9"},
    "group": {"shape": "box3d", "style": "filled", "fillcolor": "#dcfce7",
              "color": "#15803d"},
    "more": {"shape": "box", "style": "dashed", "color": "#9ca3af",
             "fontcolor": "#6b7280"},
}
