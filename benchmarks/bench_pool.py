"""Pooling and batch normalisation, forward + backward, on the book's MNIST
conv net shapes (batch 64): the activations after the first conv layer
(32 x 28 x 28) and after the second (64 x 14 x 14), float32.

- `maxpool`: y = max_pool2d(x, 2) (2x2 windows, stride 2), then dL/dx for a
  given dL/dy.
- `batchnorm`: y = batch_norm(x) in training mode (batch statistics, running
  statistics updated, affine weight and bias), then dL/dx, dL/dweight, dL/dbias.

Implementations (each `fn()` does one forward + backward on the same arrays):

- tensorgraph: `tg.max_pool2d` / `tg.batch_norm` on a leaf that requires grad,
  `y.backward(g)`;
- numpy (by hand): the same computation written out for this case, as a numpy
  user would: max pooling as the maximum of the four strided slices and the
  gradient sent to the first maximum of each window through masks; batch
  norm with `mean`/`var` over (0, 2, 3) and the textbook backward;
- pytorch eager: `F.max_pool2d` / `F.batch_norm(training=True)` and `.backward(g)`.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

SHAPES = ((64, 32, 28, 28), (64, 64, 14, 14))
EPS, MOMENTUM = 1e-5, 0.1


def data(shape: tuple[int, ...], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, c, h, w = shape
    return {"x": rng.standard_normal(shape, dtype=np.float32),
            "gpool": rng.standard_normal((n, c, h // 2, w // 2), dtype=np.float32),
            "gbn": rng.standard_normal(shape, dtype=np.float32),
            "weight": rng.uniform(0.5, 1.5, c).astype(np.float32),
            "bias": rng.uniform(-0.5, 0.5, c).astype(np.float32)}


# -- max pooling ----------------------------------------------------------------

def numpy_maxpool(d: dict[str, np.ndarray]) -> Callable[[], np.ndarray]:
    x, g = d["x"], d["gpool"]
    quads = [(0, 0), (0, 1), (1, 0), (1, 1)]

    def run() -> np.ndarray:
        parts = [x[:, :, a::2, b::2] for a, b in quads]
        y = np.maximum(np.maximum(parts[0], parts[1]), np.maximum(parts[2], parts[3]))
        gx = np.empty_like(x)
        taken = np.zeros(y.shape, bool)      # the first maximum of each window takes g
        for (a, b), p in zip(quads, parts):
            hit = (p == y) & ~taken
            taken |= hit
            gx[:, :, a::2, b::2] = g * hit
        return gx
    return run


def tensorgraph_maxpool(d: dict[str, np.ndarray]) -> Callable[[], np.ndarray]:
    import tensorgraph as tg
    x = tg.tensor(d["x"], requires_grad=True)
    g = d["gpool"]

    def run() -> np.ndarray:
        tg.max_pool2d(x, 2).backward(g)
        gx = x.grad.data
        x.grad = None
        return gx
    return run


def torch_maxpool(d: dict[str, np.ndarray], torch: Any) -> Callable[[], np.ndarray]:
    x = torch.tensor(d["x"], requires_grad=True)
    g = torch.tensor(d["gpool"])
    F = torch.nn.functional

    def run() -> np.ndarray:
        F.max_pool2d(x, 2).backward(g)
        gx = x.grad.numpy()
        x.grad = None
        return gx
    return run


# -- batch norm -------------------------------------------------------------------

def numpy_batchnorm(d: dict[str, np.ndarray]) -> Callable[[], tuple[np.ndarray, ...]]:
    x, g, w, b = d["x"], d["gbn"], d["weight"], d["bias"]
    c = x.shape[1]
    running = [np.zeros(c, np.float32), np.ones(c, np.float32)]
    m = x.size // c
    ax = (0, 2, 3)

    def run() -> tuple[np.ndarray, ...]:
        mean = x.mean(axis=ax)
        var = x.var(axis=ax)
        inv = 1.0 / np.sqrt(var + EPS)
        xhat = (x - mean[:, None, None]) * inv[:, None, None]
        y = xhat * w[:, None, None] + b[:, None, None]
        running[0] = (1 - MOMENTUM) * running[0] + MOMENTUM * mean
        running[1] = (1 - MOMENTUM) * running[1] + MOMENTUM * var * (m / (m - 1))
        dbias = g.sum(axis=ax)
        dweight = (g * xhat).sum(axis=ax)
        dx = (w * inv)[:, None, None] / m * (m * g - dbias[:, None, None]
                                             - xhat * dweight[:, None, None])
        del y
        return dx, dweight, dbias
    return run


def tensorgraph_batchnorm(d: dict[str, np.ndarray]) -> Callable[[], tuple[np.ndarray, ...]]:
    import tensorgraph as tg
    x = tg.tensor(d["x"], requires_grad=True)
    w = tg.tensor(d["weight"], requires_grad=True)
    b = tg.tensor(d["bias"], requires_grad=True)
    c = x.shape[1]
    rm, rv = tg.tensor(np.zeros(c, np.float32)), tg.tensor(np.ones(c, np.float32))
    g = d["gbn"]

    def run() -> tuple[np.ndarray, ...]:
        tg.batch_norm(x, rm, rv, w, b, training=True, momentum=MOMENTUM, eps=EPS).backward(g)
        out = (x.grad.data, w.grad.data, b.grad.data)
        x.grad = w.grad = b.grad = None
        return out
    return run


def torch_batchnorm(d: dict[str, np.ndarray], torch: Any) -> Callable[[], tuple[np.ndarray, ...]]:
    x = torch.tensor(d["x"], requires_grad=True)
    w = torch.tensor(d["weight"], requires_grad=True)
    b = torch.tensor(d["bias"], requires_grad=True)
    c = x.shape[1]
    rm, rv = torch.zeros(c), torch.ones(c)
    g = torch.tensor(d["gbn"])
    F = torch.nn.functional

    def run() -> tuple[np.ndarray, ...]:
        F.batch_norm(x, rm, rv, w, b, training=True, momentum=MOMENTUM, eps=EPS).backward(g)
        out = (x.grad.numpy(), w.grad.numpy(), b.grad.numpy())
        x.grad = w.grad = b.grad = None
        return out
    return run


def build(spec: dict[str, Any], torch: Any) -> dict[str, Any]:
    """The worker's callables: bench "maxpool_<i>" / "batchnorm_<i>" (i: SHAPES index)."""
    kind, i = spec["bench"].rsplit("_", 1)
    d = data(SHAPES[int(i)], spec["seed"])
    impl = spec["impl"]
    table: dict[str, Any] = {
        "maxpool": {"numpy": numpy_maxpool, "tg": tensorgraph_maxpool,
                    "torch": lambda d: torch_maxpool(d, torch)},
        "batchnorm": {"numpy": numpy_batchnorm, "tg": tensorgraph_batchnorm,
                      "torch": lambda d: torch_batchnorm(d, torch)}}
    fn = table[kind][impl](d)

    def check() -> list[np.ndarray]:
        out = fn()
        return [np.array(a) for a in (out if isinstance(out, tuple) else (out,))]
    return {"fn": fn, "check": check}


def check_agree(results: dict[str, list[np.ndarray]]) -> None:
    """Every implementation computes the same gradients (float32 rounding)."""
    names = list(results)
    ref = results[names[0]]
    for name in names[1:]:
        for a, b in zip(ref, results[name]):
            if not np.allclose(a, b, rtol=1e-3, atol=1e-4):
                raise AssertionError(f"{name} disagrees with {names[0]}: max |diff| "
                                     f"{np.max(np.abs(a - b)):.3g}")
