"""Specs for the convolution ops (tensorgraph/ops/conv.py), one per op, in the
form tests/test_op_specs.py runs: a builder drawing (fn on Tensors, float64
input arrays, numpy reference). The references are naive loops over output
positions written from the definitions (independent of im2col); the detailed
tests (PyTorch, argument sweeps, errors, second derivatives) are in
tests/test_conv.py, which imports the references from here.
"""
from __future__ import annotations

import itertools
from typing import Any, Callable, Optional, Sequence

import numpy as np
from hypothesis import strategies as st

import tensorgraph as tg
from tensorgraph.ops.conv import conv1d_weight, conv2d_weight

Spec = tuple[Callable[..., Any], list[np.ndarray], Callable[..., Any]]
CONV_SPECS: dict[str, Callable[[st.DataObject], Spec]] = {}


# ---------------------------------------------------------------------------
# Naive references, N-d (N = 1, 2): one loop iteration per output element

def pads_of(padding: Any, ksize: Sequence[int], dilation: Sequence[int]) -> list[tuple[int, int]]:
    """PyTorch's padding argument as (before, after) pairs: "same" puts the odd
    one at the end."""
    if padding == "valid":
        return [(0, 0)] * len(ksize)
    if padding == "same":
        return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(ksize, dilation)]
    return [(p, p) for p in padding]


def conv_ref(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], stride: Sequence[int],
             pads: Sequence[tuple[int, int]], dilation: Sequence[int], groups: int) -> np.ndarray:
    """out[n, o, i...] = b[o] + Σ_{c, p...} w[o, c, p...] x̂[n, g·Cg + c, i·s + p·d...]."""
    N, C = x.shape[:2]
    O, Cg = w.shape[:2]
    ks = w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in pads])
    outs = [(n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(xp.shape[2:], ks, stride, dilation)]
    out = np.zeros((N, O, *outs))
    Og = O // groups
    for n, o in itertools.product(range(N), range(O)):
        g = o // Og
        for pos in itertools.product(*[range(m) for m in outs]):
            acc = 0.0 if b is None else b[o]
            for c in range(Cg):
                for off in itertools.product(*[range(k) for k in ks]):
                    idx = tuple(i * s + p * d for i, s, p, d in zip(pos, stride, off, dilation))
                    acc += w[(o, c) + off] * xp[(n, g * Cg + c) + idx]
            out[(n, o) + pos] = acc
    return out


def conv_transpose_ref(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray],
                       stride: Sequence[int], padding: Sequence[int],
                       output_padding: Sequence[int], groups: int,
                       dilation: Sequence[int]) -> np.ndarray:
    """Each input element scatters x·w into its window: full[n, g·Cog + co, i·s + p·d] +=
    x[n, ci, i] w[ci, co, p], with `output_padding` more zeros at the end; then
    `padding` elements are cropped from both ends."""
    N, Cin = x.shape[:2]
    _, Cog = w.shape[:2]
    ks = w.shape[2:]
    full = [(m - 1) * s + d * (k - 1) + 1 for m, s, d, k in zip(x.shape[2:], stride, dilation, ks)]
    out = np.zeros((N, Cog * groups, *[f + op for f, op in zip(full, output_padding)]))
    Cig = Cin // groups
    for n, ci in itertools.product(range(N), range(Cin)):
        g = ci // Cig
        for pos in itertools.product(*[range(m) for m in x.shape[2:]]):
            for co in range(Cog):
                for off in itertools.product(*[range(k) for k in ks]):
                    idx = tuple(i * s + p * d for i, s, p, d in zip(pos, stride, off, dilation))
                    out[(n, g * Cog + co) + idx] += x[(n, ci) + pos] * w[(ci, co) + off]
    crop = tuple(slice(p, out.shape[2 + a] - p) for a, p in enumerate(padding))
    out = out[(slice(None), slice(None)) + crop]
    return out if b is None else out + b.reshape((1, -1) + (1,) * len(ks))


def conv_weight_ref(x: np.ndarray, g: np.ndarray, ksize: Sequence[int], stride: Sequence[int],
                    pads: Sequence[tuple[int, int]], dilation: Sequence[int],
                    groups: int) -> np.ndarray:
    """∂L/∂w[o, c, p...] = Σ_{n, i...} g[n, o, i...] x̂[n, group(o)·Cg + c, i·s + p·d...]."""
    N, C = x.shape[:2]
    O = g.shape[1]
    Cg, Og = C // groups, O // groups
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in pads])
    dw = np.zeros((O, Cg, *ksize))
    for o, c in itertools.product(range(O), range(Cg)):
        for off in itertools.product(*[range(k) for k in ksize]):
            acc = 0.0
            for n in range(N):
                for pos in itertools.product(*[range(m) for m in g.shape[2:]]):
                    idx = tuple(i * s + p * d for i, s, p, d in zip(pos, stride, off, dilation))
                    acc += g[(n, o) + pos] * xp[(n, (o // Og) * Cg + c) + idx]
            dw[(o, c) + off] = acc
    return dw


# ---------------------------------------------------------------------------
# Drawn cases

def _values(data: st.DataObject, shape: tuple[int, ...], label: str) -> np.ndarray:
    seed = data.draw(st.integers(0, 2 ** 32 - 1), label=f"{label} seed")
    return np.random.default_rng(seed).uniform(-1.5, 1.5, shape)


def draw_conv(data: st.DataObject, nd: int, transposed: bool = False) -> dict[str, Any]:
    """Small random convolution arguments and shapes that fit together."""
    i = st.integers
    groups = data.draw(i(1, 2), label="groups")
    cg, og = data.draw(i(1, 2), label="Cg"), data.draw(i(1, 2), label="Og")
    ks = tuple(data.draw(i(1, 3), label="k") for _ in range(nd))
    stride = tuple(data.draw(i(1, 2), label="stride") for _ in range(nd))
    dil = tuple(data.draw(i(1, 2), label="dilation") for _ in range(nd))
    if transposed:
        padding: Any = tuple(data.draw(i(0, 1), label="padding") for _ in range(nd))
        outpad = tuple(data.draw(i(0, max(s, d) - 1), label="output_padding")
                       for s, d in zip(stride, dil))
        # the output, (m-1)·s - 2p + d·(k-1) + output_padding + 1, must not be empty
        sizes = tuple(data.draw(i(1 + -(-max(0, 2 * p - d * (k - 1) - o) // s), 4), label="size")
                      for p, d, k, s, o in zip(padding, dil, ks, stride, outpad))
        return dict(groups=groups, cin=cg * groups, cout_g=og, ks=ks, stride=stride,
                    dilation=dil, padding=padding, output_padding=outpad,
                    n=data.draw(i(1, 2), label="N"), sizes=sizes)
    padding = data.draw(st.sampled_from(["int", "same", "valid"]), label="padding kind")
    if padding == "same":
        stride = (1,) * nd
    elif padding == "int":
        padding = tuple(data.draw(i(0, 2), label="padding") for _ in range(nd))
    pads = pads_of(padding, ks, dil)
    sizes = tuple(data.draw(i(max(1, d * (k - 1) + 1 - p[0] - p[1]), d * (k - 1) + 3),
                            label="size") for k, d, p in zip(ks, dil, pads))
    return dict(groups=groups, cin=cg * groups, cout=og * groups, ks=ks, stride=stride,
                dilation=dil, padding=padding, pads=pads, n=data.draw(i(1, 2), label="N"),
                sizes=sizes)


def _conv_spec(nd: int) -> Callable[[st.DataObject], Spec]:
    fn = tg.conv2d if nd == 2 else tg.conv1d

    def build(data: st.DataObject) -> Spec:
        a = draw_conv(data, nd)
        x = _values(data, (a["n"], a["cin"]) + a["sizes"], "x")
        w = _values(data, (a["cout"], a["cin"] // a["groups"]) + a["ks"], "w")
        b = _values(data, (a["cout"],), "b")
        kw = dict(stride=a["stride"], padding=a["padding"], dilation=a["dilation"],
                  groups=a["groups"])
        return (lambda x, w, b: fn(x, w, b, **kw), [x, w, b],
                lambda x, w, b: conv_ref(x, w, b, a["stride"], a["pads"], a["dilation"],
                                         a["groups"]))
    return build


def _conv_transpose_spec(nd: int) -> Callable[[st.DataObject], Spec]:
    fn = tg.conv_transpose2d if nd == 2 else tg.conv_transpose1d

    def build(data: st.DataObject) -> Spec:
        a = draw_conv(data, nd, transposed=True)
        x = _values(data, (a["n"], a["cin"]) + a["sizes"], "x")
        w = _values(data, (a["cin"], a["cout_g"]) + a["ks"], "w")
        b = _values(data, (a["cout_g"] * a["groups"],), "b")
        args = (a["stride"], a["padding"], a["output_padding"], a["groups"], a["dilation"])
        return (lambda x, w, b: fn(x, w, b, *args), [x, w, b],
                lambda x, w, b: conv_transpose_ref(x, w, b, *args))
    return build


def _conv_weight_spec(nd: int) -> Callable[[st.DataObject], Spec]:
    fn = conv2d_weight if nd == 2 else conv1d_weight

    def build(data: st.DataObject) -> Spec:
        a = draw_conv(data, nd)
        x = _values(data, (a["n"], a["cin"]) + a["sizes"], "x")
        wshape = (a["cout"], a["cin"] // a["groups"]) + a["ks"]
        outs = tuple((n + p[0] + p[1] - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in
                     zip(a["sizes"], a["pads"], a["dilation"], a["ks"], a["stride"]))
        g = _values(data, (a["n"], a["cout"]) + outs, "g")
        kw = dict(stride=a["stride"], padding=a["padding"], dilation=a["dilation"],
                  groups=a["groups"])
        return (lambda x, g: fn(x, wshape, g, **kw), [x, g],
                lambda x, g: conv_weight_ref(x, g, a["ks"], a["stride"], a["pads"],
                                             a["dilation"], a["groups"]))
    return build


def _flatten(data: st.DataObject) -> Spec:
    shape = tuple(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=4), label="shape"))
    s = data.draw(st.integers(-len(shape), len(shape) - 1), label="start_dim")
    e = data.draw(st.integers(s % len(shape), len(shape) - 1), label="end_dim")
    x = _values(data, shape, "x")
    merged = shape[:s % len(shape)] + (-1,) + shape[e + 1:]
    return (lambda x: tg.flatten(x, s, e), [x], lambda x: x.reshape(merged))


for _nd in (1, 2):
    CONV_SPECS[f"conv{_nd}d"] = _conv_spec(_nd)
    CONV_SPECS[f"conv_transpose{_nd}d"] = _conv_transpose_spec(_nd)
    CONV_SPECS[f"conv{_nd}d_weight"] = _conv_weight_spec(_nd)
CONV_SPECS["flatten"] = _flatten
