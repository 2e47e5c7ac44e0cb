"""Specs for the pooling and batch-norm ops (tensorgraph/ops/pooling.py,
normalization.py), in the form tests/test_op_specs.py runs, and the naive
references they are checked against: plain loops over every output position
and every element of its window, written from PyTorch's documentation, not
from the strided code. Max-pool values are distinct (no ties, where central
differences mean nothing). tests/test_pooling.py and test_batch_norm.py use
the same references for the wide sweeps, ties, torch and error messages.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np
from hypothesis import strategies as st

import strategies as S
import tensorgraph as tg

Spec = tuple[Callable[..., Any], list[np.ndarray], Callable[..., Any]]
POOL_SPECS: dict[str, Callable[[st.DataObject], Spec]] = {}


def _spec(name: str) -> Callable[[Any], Any]:
    def deco(f: Any) -> Any:
        POOL_SPECS[name] = f
        return f
    return deco


# ---------------------------------------------------------------------------
# Naive references

def out_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's documented output size (MaxPool2d / AvgPool2d)."""
    num = n + 2 * p - d * (k - 1) - 1
    o = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (o - 1) * s >= n + p:     # a window starting in the right padding is dropped
        o -= 1
    return o


def windows(spatial: tuple[int, ...], k: tuple[int, ...], s: tuple[int, ...], p: tuple[int, ...],
            d: tuple[int, ...], ceil_mode: bool) -> tuple[tuple[int, ...], dict[Any, Any]]:
    """Output sizes and, per output position, (window start, the in-bounds
    coordinates of its elements in scan order)."""
    outs = tuple(out_size(n, *a, ceil_mode) for n, a in zip(spatial, zip(k, s, p, d)))
    table = {}
    for pos in np.ndindex(*outs):
        start = tuple(i * si - pi for i, si, pi in zip(pos, s, p))
        coords = []
        for off in np.ndindex(*k):
            c = tuple(a + o * di for a, o, di in zip(start, off, d))
            if all(0 <= ci < n for ci, n in zip(c, spatial)):
                coords.append(c)
        table[pos] = (start, coords)
    return outs, table


def naive_max_pool(x: np.ndarray, nd: int, k: Any, s: Any, p: Any, d: Any,
                   ceil_mode: bool) -> tuple[np.ndarray, dict[Any, Any]]:
    """(y, {(lead..., out pos): coordinate of the chosen element}); the first
    maximum in scan order (PyTorch's tie rule)."""
    lead, spatial = x.shape[:-nd], x.shape[-nd:]
    outs, table = windows(spatial, k, s, p, d, ceil_mode)
    y = np.empty(lead + outs)
    chosen = {}
    for li in np.ndindex(*lead):
        for pos, (_, coords) in table.items():
            vals = [x[li + c] for c in coords]
            if not vals:            # dilation stepped over the input: only padding (-inf)
                y[li + pos] = -np.inf
                continue
            j = int(np.argmax(vals))
            y[li + pos] = vals[j]
            chosen[li + pos] = li + coords[j]
    return y, chosen


def naive_max_pool_grad(x: np.ndarray, g: np.ndarray, nd: int, *args: Any) -> np.ndarray:
    _, chosen = naive_max_pool(x, nd, *args)
    out = np.zeros_like(x)
    for pos, c in chosen.items():
        out[c] += g[pos]
    return out


def divisor(spatial: tuple[int, ...], start: tuple[int, ...], coords: list[Any], k: Any, p: Any,
            count_include_pad: bool, divisor_override: Optional[int]) -> int:
    if divisor_override is not None:
        return divisor_override
    if not count_include_pad:
        return len(coords)
    # the window clipped to the padded input (ceil_mode's last window)
    return math.prod(min(a + ki, n + pi) - a for a, ki, n, pi in zip(start, k, spatial, p))


def naive_avg_pool(x: np.ndarray, nd: int, k: Any, s: Any, p: Any, ceil_mode: bool,
                   count_include_pad: bool = True, divisor_override: Optional[int] = None
                   ) -> np.ndarray:
    lead, spatial = x.shape[:-nd], x.shape[-nd:]
    outs, table = windows(spatial, k, s, p, (1,) * nd, ceil_mode)
    y = np.empty(lead + outs)
    for li in np.ndindex(*lead):
        for pos, (start, coords) in table.items():
            total = sum(x[li + c] for c in coords)
            y[li + pos] = total / divisor(spatial, start, coords, k, p, count_include_pad,
                                          divisor_override)
    return y


def naive_avg_pool_grad(shape: tuple[int, ...], g: np.ndarray, nd: int, k: Any, s: Any, p: Any,
                        ceil_mode: bool, count_include_pad: bool = True,
                        divisor_override: Optional[int] = None) -> np.ndarray:
    lead, spatial = shape[:-nd], shape[-nd:]
    _, table = windows(spatial, k, s, p, (1,) * nd, ceil_mode)
    out = np.zeros(shape)
    for li in np.ndindex(*lead):
        for pos, (start, coords) in table.items():
            dv = divisor(spatial, start, coords, k, p, count_include_pad, divisor_override)
            for c in coords:
                out[li + c] += g[li + pos] / dv
    return out


def naive_batch_norm(x: np.ndarray, mean: Optional[np.ndarray], var: Optional[np.ndarray],
                     w: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Per channel (axis 1) over the other axes; mean/var None: the batch's (biased)."""
    y = np.empty_like(x)
    for c in range(x.shape[1]):
        xc = x[:, c]
        m = xc.mean() if mean is None else mean[c]
        v = ((xc - xc.mean()) ** 2).mean() if var is None else var[c]
        y[:, c] = (xc - m) / np.sqrt(v + eps) * w[c] + b[c]
    return y


# ---------------------------------------------------------------------------
# Drawing pooling arguments

def pool_args(data: st.DataObject, nd: int, dilation: bool = True) -> dict[str, Any]:
    """kernel, stride, padding (at most half the kernel), dilation, ceil_mode
    and an input shape big enough for one window; batched or not."""
    k = tuple(data.draw(st.integers(1, 3), label="k") for _ in range(nd))
    s = tuple(data.draw(st.integers(1, 3), label="s") for _ in range(nd))
    p = tuple(data.draw(st.integers(0, ki // 2), label="p") for ki in k)
    d = tuple(data.draw(st.integers(1, 2), label="d") for _ in range(nd)) if dilation \
        else (1,) * nd
    ceil_mode = data.draw(st.booleans(), label="ceil_mode")
    # n >= d when padded: no window steps over the input entirely (an all -inf
    # output, tested in test_pooling.py, where central differences give nan)
    spatial = tuple(data.draw(st.integers(max(1, di * (ki - 1) + 1 - 2 * pi, di if pi else 1),
                                          di * (ki - 1) + 4), label="n")
                    for ki, pi, di in zip(k, p, d))
    lead = data.draw(st.sampled_from([(1, 1), (2, 1), (1, 2), (2,)]), label="lead")
    return {"k": k, "s": s, "p": p, "d": d, "ceil_mode": ceil_mode, "shape": lead + spatial}


def _max_pool_spec(nd: int) -> Callable[[st.DataObject], Spec]:
    def build(data: st.DataObject) -> Spec:
        a = pool_args(data, nd)
        x = data.draw(S.distinct_arrays(a["shape"]), label="x")
        f = tg.max_pool2d if nd == 2 else tg.max_pool1d
        return (lambda t: f(t, a["k"], a["s"], a["p"], a["d"], a["ceil_mode"]), [x],
                lambda x: naive_max_pool(x, nd, a["k"], a["s"], a["p"], a["d"], a["ceil_mode"])[0])
    return build


def _avg_pool_spec(nd: int) -> Callable[[st.DataObject], Spec]:
    def build(data: st.DataObject) -> Spec:
        a = pool_args(data, nd, dilation=False)
        x = data.draw(S.arrays(a["shape"]), label="x")
        cip = data.draw(st.booleans(), label="count_include_pad")
        k, s, p, ceil = a["k"], a["s"], a["p"], a["ceil_mode"]
        dov = data.draw(st.sampled_from([None, None, 3]), label="divisor_override") \
            if nd == 2 else None

        def fn(t: tg.Tensor) -> tg.Tensor:
            if nd == 2:
                return tg.avg_pool2d(t, k, s, p, ceil, cip, dov)
            return tg.avg_pool1d(t, k, s, p, ceil, cip)
        return fn, [x], lambda x: naive_avg_pool(x, nd, a["k"], a["s"], a["p"], a["ceil_mode"],
                                                 cip, dov)
    return build


POOL_SPECS["max_pool1d"] = _max_pool_spec(1)
POOL_SPECS["max_pool2d"] = _max_pool_spec(2)
POOL_SPECS["avg_pool1d"] = _avg_pool_spec(1)
POOL_SPECS["avg_pool2d"] = _avg_pool_spec(2)


@_spec("max_pool_scatter")
def _scatter(data: st.DataObject) -> Spec:
    # g (m,) added at flat positions idx into zeros(shape); repeated positions add.
    shape = data.draw(S.shapes(min_dims=1, max_dims=3).filter(lambda s: math.prod(s) > 0),
                      label="shape")
    size = math.prod(shape)
    overlapping = data.draw(st.booleans(), label="overlapping")
    if overlapping:
        idx = np.array(data.draw(st.lists(st.integers(0, size - 1), max_size=6), label="idx"),
                       dtype=np.intp)
    else:
        perm = data.draw(st.permutations(range(size)), label="perm")
        idx = np.array(perm[:data.draw(st.integers(0, size), label="m")], dtype=np.intp)
    g = data.draw(S.arrays(idx.shape), label="g")

    def ref(g: np.ndarray) -> np.ndarray:
        out = np.zeros(size)
        for i, v in zip(idx, g):
            out[i] += v
        return out.reshape(shape)
    return (lambda t: tg.OPS["max_pool_scatter"](t, idx, shape=shape, overlapping=overlapping),
            [g], ref)


@_spec("max_pool_gather")
def _gather(data: st.DataObject) -> Spec:
    shape = data.draw(S.shapes(min_dims=1, max_dims=3).filter(lambda s: math.prod(s) > 0),
                      label="shape")
    idx = np.array(data.draw(st.lists(st.integers(0, math.prod(shape) - 1), max_size=6),
                             label="idx"), dtype=np.intp).reshape(-1, 1)
    x = data.draw(S.arrays(shape), label="x")
    return (lambda t: tg.OPS["max_pool_gather"](t, idx, overlapping=True), [x],
            lambda x: x.ravel()[idx])


@_spec("avg_pool_backward")
def _avg_backward(data: st.DataObject) -> Spec:
    nd = data.draw(st.sampled_from([1, 2]), label="nd")
    a = pool_args(data, nd, dilation=False)
    outs = tuple(out_size(n, k, s, p, 1, a["ceil_mode"])
                 for n, k, s, p in zip(a["shape"][-nd:], a["k"], a["s"], a["p"]))
    g = data.draw(S.arrays(a["shape"][:-nd] + outs), label="g")
    cip = data.draw(st.booleans(), label="count_include_pad")
    attrs = dict(kernel_size=a["k"], stride=a["s"], padding=a["p"], ceil_mode=a["ceil_mode"],
                 count_include_pad=cip, divisor_override=None)
    return (lambda t: tg.OPS["avg_pool_backward"](t, shape=a["shape"], **attrs), [g],
            lambda g: naive_avg_pool_grad(a["shape"], g, nd, a["k"], a["s"], a["p"],
                                          a["ceil_mode"], cip))


def _bn_shape(data: st.DataObject) -> tuple[int, ...]:
    return data.draw(st.sampled_from([(3, 2), (2, 3, 2), (2, 2, 2, 3), (4, 1), (2, 1, 1, 2)]),
                     label="shape")


@_spec("batch_norm")
def _batch_norm(data: st.DataObject) -> Spec:
    shape = _bn_shape(data)
    c = shape[1]
    x = data.draw(S.arrays(shape), label="x")
    m, w, b = (data.draw(S.arrays((c,)), label=n) for n in ("mean", "weight", "bias"))
    v = data.draw(S.positive_arrays((c,)), label="var")
    return (lambda x, m, v, w, b: tg.batch_norm(x, m, v, w, b, training=False), [x, m, v, w, b],
            lambda x, m, v, w, b: naive_batch_norm(x, m, v, w, b))


@_spec("batch_norm_train")
def _batch_norm_train(data: st.DataObject) -> Spec:
    shape = _bn_shape(data)
    c = shape[1]
    x = data.draw(S.distinct_arrays(shape, spacing=0.3), label="x")   # variance well above 0
    w, b = (data.draw(S.arrays((c,)), label=n) for n in ("weight", "bias"))
    return (lambda x, w, b: tg.batch_norm(x, None, None, w, b, training=True), [x, w, b],
            lambda x, w, b: naive_batch_norm(x, None, None, w, b))


@_spec("batch_norm_stats")
def _batch_norm_stats(data: st.DataObject) -> Spec:
    # A captured training step's running-statistics update reads it (no gradient).
    shape = _bn_shape(data)
    x = data.draw(S.arrays(shape), label="x")
    ax = (0,) + tuple(range(2, len(shape)))
    return (lambda t: tg.OPS["batch_norm_stats"](t), [x],
            lambda x: np.stack([x.mean(axis=ax), x.var(axis=ax, ddof=1)]))
