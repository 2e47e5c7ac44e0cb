"""An embedding lookup's forward + backward (issue 11): a 10,000 x 256 float32
table (a 10,000-word vocabulary), a batch of 32 sequences of 35 ids (the
LSTM language-model batch), ids drawn uniformly (so some repeat).

One call = the forward y = W[ids] (32, 35, 256) and the backward for a fixed
upstream gradient G = ∂L/∂y: the dense (10,000, 256) table gradient, rows of
repeated ids summed.

Implementations (`make(impl, torch, seed)` returns (fn, check)):
- tensorgraph: `tg.embedding(ids, W)` on a leaf that requires grad,
  `y.backward(G)` (its scatter writes rank by rank, tensorgraph/ops/embedding.py);
- numpy (by hand): `np.take` then `np.add.at` into zeros, what one writes;
- pytorch eager: `F.embedding`, `y.backward(G)` (dense gradient).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

VOCAB, DIM, BATCH, STEPS = 10_000, 256, 32, 35


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ids (int64), W and G (float32)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCAB, (BATCH, STEPS))
    w = rng.standard_normal((VOCAB, DIM)).astype(np.float32)
    g = rng.standard_normal((BATCH, STEPS, DIM)).astype(np.float32)
    return ids, w, g


def make(impl: str, torch: Any = None, seed: int = 0) -> tuple[Callable[[], Any],
                                                               Callable[[], Any]]:
    """(fn: one timed forward + backward, check: [y, dW] as numpy arrays)."""
    ids, w, g = data(seed)
    if impl == "numpy":
        def nstep() -> list[np.ndarray]:
            y = np.take(w, ids, axis=0)
            dw = np.zeros_like(w)
            np.add.at(dw, ids.reshape(-1), g.reshape(-1, DIM))
            return [y, dw]
        return nstep, nstep
    if impl == "tg":
        import tensorgraph as tg
        W = tg.tensor(w, requires_grad=True)
        I = tg.tensor(ids)

        def step() -> Any:
            y = tg.embedding(I, W)
            y.backward(g)
            W.grad = None
            return y

        def check() -> list[np.ndarray]:
            y = tg.embedding(I, W)
            y.backward(g)
            out = [y.data, np.array(W.grad.data)]
            W.grad = None
            return out
        return step, check
    if impl == "torch":
        F = torch.nn.functional
        W = torch.from_numpy(w).requires_grad_()
        I, G = torch.from_numpy(ids), torch.from_numpy(g)

        def tstep() -> Any:
            y = F.embedding(I, W)
            y.backward(G)
            W.grad = None
            return y

        def tcheck() -> list[np.ndarray]:
            y = F.embedding(I, W)
            y.backward(G)
            out = [y.detach().numpy(), W.grad.numpy().copy()]
            W.grad = None
            return out
        return tstep, tcheck
    raise ValueError(f"bench_embedding: unknown implementation {impl!r}")


def check_agree(results: dict[str, list[np.ndarray]]) -> None:
    """Every implementation computes the same y and dW (float32 sums in
    different orders)."""
    names = list(results)
    ref = results[names[0]]
    for name in names[1:]:
        for k, (a, r) in enumerate(zip(results[name], ref)):
            err = float(np.abs(np.asarray(a) - r).max()) / (float(np.abs(r).max()) or 1.0)
            if err > 1e-5:
                raise AssertionError(f"bench_embedding: {name} differs from {names[0]} in "
                                     f"output {k} (max relative error {err:.2e})")
