"""Replay of a captured graph (issue 9): `g = tg.capture(fn, ...)`, then `g(x)`.

A replay runs the captured op list on numpy arrays, each op's `forward`
straight from the registry, with no Tensor and no Node per op. Two
benchmarks, forward only:

- `replay_chain`: the chain of bench_chain.py, x = tanh(x * w + b), STEPS
  steps = 3 * STEPS ops on 0-d float32, forward only, so the time is each
  engine's per-op dispatch. PyTorch eager runs the same forward twice: as the
  chain benchmark writes it (w, b require grad, so autograd records a graph)
  and under `torch.no_grad()` (no recording: its bare dispatch).
- `replay_mlp`: the forward of the 784-256-256-10 ReLU MLP of bench_mlp.py
  (batch 128, float32) to the logits, where the time is the three matmuls and
  the replay's overhead is what is left over the hand-written numpy forward.

`ReplayMLP` is the whole training step replayed (gradients as graph: the
captured function calls `tg.grad`, so the backward pass is in the graph), a
trainer with bench_mlp's interface (`step(X, y) -> loss`, `arrays()`), to time
against `NumpyMLP.step`.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from bench_chain import B0, STEPS, W0, X0
from bench_mlp import BATCH, SIZES, random_batches


# -- chain, forward only ------------------------------------------------------

def tensorgraph_replay_chain(steps: int = STEPS) -> Callable[[], float]:
    """Capture the chain once (w, b parameters, x a 0-d input), replay it."""
    import tensorgraph as tg
    w = tg.tensor(W0, requires_grad=True)
    b = tg.tensor(B0, requires_grad=True)

    def chain(x: Any) -> Any:
        for _ in range(steps):
            x = tg.tanh(x * w + b)
        return x
    x0 = np.asarray(X0, dtype=np.float32)
    g = tg.capture(chain, x0)
    if len(g.nodes) != 3 * steps:   # the per-op figure divides by this
        raise AssertionError(f"replay_chain: captured {len(g.nodes)} nodes, expected {3 * steps}")
    return lambda: float(g(x0).data)


def numpy_chain_forward(steps: int = STEPS) -> Callable[[], float]:
    """The same forward in numpy on 0-d arrays (the floor: one ufunc call per op)."""
    w = np.asarray(W0, dtype=np.float32)
    b = np.asarray(B0, dtype=np.float32)
    x0 = np.asarray(X0, dtype=np.float32)

    def run() -> float:
        x = x0
        for _ in range(steps):
            x = np.tanh(x * w + b)
        return float(x)
    return run


def torch_chain_forward(torch: Any, no_grad: bool = False,
                        steps: int = STEPS) -> Callable[[], float]:
    """PyTorch eager forward: w, b require grad (autograd records the chain,
    as in bench_chain.py), or the same under torch.no_grad()."""
    w = torch.tensor(W0, requires_grad=True)
    b = torch.tensor(B0, requires_grad=True)
    x0 = torch.tensor(X0)

    def forward() -> float:
        x = x0
        for _ in range(steps):
            x = torch.tanh(x * w + b)
        return float(x.detach())   # one op more in 3,000; float(x) warns when x requires grad
    if not no_grad:
        return forward

    def run() -> float:
        with torch.no_grad():
            return forward()
    return run


def check_chain(results: dict[str, float]) -> None:
    """Every forward ends at the same x (float32 rounding over 3,000 ops)."""
    ref_name, ref = next(iter(results.items()))
    for name, got in results.items():
        if not np.isclose(got, ref, rtol=1e-5, atol=1e-6):
            raise AssertionError(f"replay_chain: {name} ends at x = {got}, {ref_name} at {ref}")


# -- MLP forward ---------------------------------------------------------------

def _relu_mlp_numpy(p: list[np.ndarray], X: np.ndarray) -> np.ndarray:
    W1, b1, W2, b2, W3, b3 = p
    h = np.maximum(X @ W1 + b1, 0)
    h = np.maximum(h @ W2 + b2, 0)
    return h @ W3 + b3


class MLPForward:
    """One forward to the logits per call, cycling over a few random batches;
    `logits(X)` for the agreement check. `make(impl, params, torch)` builds
    the implementation: "tg_replay", "tg" (eager, no_grad), "numpy", "torch"."""

    def __init__(self, impl: str, params: list[np.ndarray], torch: Any = None,
                 seed: int = 1) -> None:
        self.batches = [X for X, _ in random_batches(seed)]
        self.i = 0
        p = [a.copy() for a in params]
        if impl == "numpy":
            self.logits = lambda X: _relu_mlp_numpy(p, X)
        elif impl in ("tg_replay", "tg"):
            import tensorgraph as tg
            tp = [tg.tensor(a, requires_grad=True) for a in p]

            def net(x: Any) -> Any:
                W1, b1, W2, b2, W3, b3 = tp
                h = tg.relu(x @ W1 + b1)
                h = tg.relu(h @ W2 + b2)
                return h @ W3 + b3
            if impl == "tg_replay":
                g = tg.capture(net, tg.placeholder((None, SIZES[0]), name="x"))
                self.logits = lambda X: g(X).data
            else:
                def eager(X: np.ndarray) -> np.ndarray:
                    with tg.no_grad():
                        return net(tg.tensor(X)).data
                self.logits = eager
        elif impl == "torch":
            tp = [torch.from_numpy(a) for a in p]
            F = torch.nn.functional

            def torch_logits(X: np.ndarray) -> np.ndarray:
                W1, b1, W2, b2, W3, b3 = tp
                with torch.no_grad():
                    h = F.relu(torch.from_numpy(X) @ W1 + b1)
                    h = F.relu(h @ W2 + b2)
                    return (h @ W3 + b3).numpy()
            self.logits = torch_logits
        else:
            raise ValueError(f"replay_mlp: unknown implementation {impl!r}")

    def step(self) -> None:
        X = self.batches[self.i % len(self.batches)]
        self.i += 1
        self.logits(X)

    def check(self) -> np.ndarray:
        return np.asarray(self.logits(self.batches[0]))


def check_mlp(results: dict[str, np.ndarray]) -> None:
    """Same weights, same batch: the same logits (to float32 / BLAS rounding)."""
    ref_name, ref = next(iter(results.items()))
    for name, got in results.items():
        if got.shape != (BATCH, SIZES[-1]) or not np.allclose(got, ref, rtol=1e-4, atol=1e-4):
            raise AssertionError(f"replay_mlp: {name}'s logits differ from {ref_name}'s "
                                 f"by {np.abs(got - ref).max():.3g}")


# -- MLP training step ---------------------------------------------------------

class ReplayMLP:
    """The training step of bench_mlp.py captured once, forward, loss and
    gradients (`tg.grad` inside the capture), and replayed at each step; the
    SGD update is applied to the returned gradients, on the arrays as
    `TensorgraphMLP` does. The interface of bench_mlp's trainers."""

    name = "tensorgraph replay (tg.capture)"

    def __init__(self, params: list[np.ndarray], lr: float = 0.1) -> None:
        import tensorgraph as tg
        from tensorgraph.losses import cross_entropy
        self.p = [tg.tensor(a.copy(), requires_grad=True) for a in params]
        self.lr = np.float32(lr)

        def step(x: Any, y: Any) -> Any:
            W1, b1, W2, b2, W3, b3 = self.p
            h = tg.relu(x @ W1 + b1)
            h = tg.relu(h @ W2 + b2)
            loss = cross_entropy(h @ W3 + b3, y)
            return loss, tg.grad(loss, self.p)
        self.graph = tg.capture(step, tg.placeholder((None, SIZES[0]), name="x"),
                                tg.placeholder((None,), "int64", name="y"))

    def step(self, X: np.ndarray, y: np.ndarray) -> float:
        loss, grads = self.graph(X, y)
        lr = self.lr
        for p, g in zip(self.p, grads):
            p.data -= lr * g.data
        return float(loss.data)

    def arrays(self) -> list[np.ndarray]:
        return [p.data for p in self.p]
