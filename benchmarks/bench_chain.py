"""Per-op overhead: a scalar chain x = tanh(x * w + b), forward plus backward.

STEPS steps of 3 ops each (mul, add, tanh), with the same scalars w and b
used at every step, so their gradients sum STEPS contributions. Everything is
0-d float32, so the arithmetic costs nothing and the time is the engine's
bookkeeping: recording a node per op, walking the graph, calling the VJPs.
The result is quoted in microseconds per op (time / (3 * STEPS)).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

STEPS = 1000
OPS_PER_STEP = 3
X0, W0, B0 = 0.5, 0.9, 0.1


def tensorgraph_chain(steps: int = STEPS) -> Callable[[], tuple[float, float]]:
    import tensorgraph as tg
    w = tg.tensor(W0, requires_grad=True)
    b = tg.tensor(B0, requires_grad=True)
    x0 = tg.tensor(X0)

    def run() -> tuple[float, float]:
        w.grad = None
        b.grad = None
        x = x0
        for _ in range(steps):
            x = tg.tanh(x * w + b)
        x.backward()
        return float(w.grad.data), float(b.grad.data)
    return run


def numpy_chain(steps: int = STEPS) -> Callable[[], tuple[float, float]]:
    """The same computation by hand: a forward that stores what the backward
    needs (each step's input x and output y), then a backward loop:
    dy -> dz = dy (1 - y^2) -> dw += dz x, db += dz, dx = dz w."""
    w = np.asarray(W0, dtype=np.float32)
    b = np.asarray(B0, dtype=np.float32)
    x0 = np.asarray(X0, dtype=np.float32)
    one = np.float32(1)

    def run() -> tuple[float, float]:
        xs = []
        ys = []
        x = x0
        for _ in range(steps):
            xs.append(x)
            x = np.tanh(x * w + b)
            ys.append(x)
        dx = one
        dw = np.float32(0)
        db = np.float32(0)
        for i in range(steps - 1, -1, -1):
            y = ys[i]
            dz = dx * (one - y * y)
            dw = dw + dz * xs[i]
            db = db + dz
            dx = dz * w
        return float(dw), float(db)
    return run


def torch_chain(torch: Any, steps: int = STEPS) -> Callable[[], tuple[float, float]]:
    w = torch.tensor(W0, requires_grad=True)
    b = torch.tensor(B0, requires_grad=True)
    x0 = torch.tensor(X0)

    def run() -> tuple[float, float]:
        w.grad = None
        b.grad = None
        x = x0
        for _ in range(steps):
            x = torch.tanh(x * w + b)
        x.backward()
        return float(w.grad), float(b.grad)
    return run


def check_agree(results: dict[str, tuple[float, float]]) -> None:
    """All implementations must compute the same gradients (float32 sums of
    1000 terms: agree to 1e-4 relative)."""
    ref_name, ref = next(iter(results.items()))
    for name, got in results.items():
        if not np.allclose(got, ref, rtol=1e-4, atol=1e-6):
            raise AssertionError(f"chain: {name} gives (dw, db) = {got}, {ref_name} gives {ref}")
