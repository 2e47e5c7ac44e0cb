"""The MLP training step: 784-256-256-10, ReLU, float32, softmax cross-entropy
(mean over the batch), plain SGD, one implementation per engine.

Every trainer starts from the same weights (`init_params`) and exposes
`step(X, y) -> loss` (numpy batch in, Python float out) and `arrays()` (its
current parameters as numpy arrays W1, b1, W2, b2, W3, b3), so the harness can
check that all engines train identically before it times them, and the MNIST
benchmark can reuse them unchanged.
"""
from __future__ import annotations

from typing import Any

import numpy as np

SIZES = (784, 256, 256, 10)
BATCH = 128
LR = 0.1


def init_params(seed: int = 0, sizes: tuple[int, ...] = SIZES) -> list[np.ndarray]:
    """He-normal weights (fan_in), zero biases, float32: W1, b1, W2, b2, ..."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        out.append((rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(np.float32))
        out.append(np.zeros(n_out, dtype=np.float32))
    return out


def random_batches(seed: int = 1, n: int = 4, batch: int = BATCH) -> list[tuple[np.ndarray, np.ndarray]]:
    """`n` batches of pixel-like inputs in [0, 1) and labels in 0..9."""
    rng = np.random.default_rng(seed)
    return [(rng.random((batch, SIZES[0]), dtype=np.float32),
             rng.integers(0, SIZES[-1], size=batch, dtype=np.int64)) for _ in range(n)]


def accuracy(arrays: list[np.ndarray], X: np.ndarray, y: np.ndarray) -> float:
    """Classification accuracy of the ReLU MLP with these parameters."""
    h = X
    n_layers = len(arrays) // 2
    for i in range(n_layers):
        h = h @ arrays[2 * i] + arrays[2 * i + 1]
        if i < n_layers - 1:
            h = np.maximum(h, 0)
    return float((h.argmax(axis=1) == y).mean())


class NumpyMLP:
    """Forward, backward and update written out by hand: the floor for any
    engine built on numpy. Straightforward numpy, no tricks beyond not
    computing what is not needed (no gradient for the input batch)."""

    name = "numpy (by hand)"

    def __init__(self, params: list[np.ndarray], lr: float = LR) -> None:
        self.p = [a.copy() for a in params]
        self.lr = np.float32(lr)

    def step(self, X: np.ndarray, y: np.ndarray) -> float:
        W1, b1, W2, b2, W3, b3 = self.p
        n = X.shape[0]
        rows = np.arange(n)
        z1 = X @ W1 + b1
        h1 = np.maximum(z1, 0)
        z2 = h1 @ W2 + b2
        h2 = np.maximum(z2, 0)
        logits = h2 @ W3 + b3
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        loss = -(shifted[rows, y] - np.log(s[:, 0])).mean()
        # dL/dlogits = (softmax - onehot) / n
        d3 = e / s
        d3[rows, y] -= 1
        d3 /= n
        dW3 = h2.T @ d3
        db3 = d3.sum(axis=0)
        d2 = (d3 @ W3.T) * (z2 > 0)
        dW2 = h1.T @ d2
        db2 = d2.sum(axis=0)
        d1 = (d2 @ W2.T) * (z1 > 0)
        dW1 = X.T @ d1
        db1 = d1.sum(axis=0)
        lr = self.lr
        for p, g in zip(self.p, (dW1, db1, dW2, db2, dW3, db3)):
            p -= lr * g
        return float(loss)

    def arrays(self) -> list[np.ndarray]:
        return self.p


class TensorgraphMLP:
    """tensorgraph core ops only: leaf tensors that require grad, @, +, relu,
    log_softmax, integer-array indexing of the targets, mean, backward, and an
    SGD update written on `.data`."""

    name = "tensorgraph (core ops)"

    def __init__(self, params: list[np.ndarray], lr: float = LR) -> None:
        import tensorgraph as tg
        self.tg = tg
        self.p = [tg.tensor(a.copy(), requires_grad=True) for a in params]
        self.lr = lr
        self._rows: dict[int, np.ndarray] = {}

    def step(self, X: np.ndarray, y: np.ndarray) -> float:
        tg = self.tg
        W1, b1, W2, b2, W3, b3 = self.p
        rows = self._rows.get(len(y))
        if rows is None:
            rows = self._rows[len(y)] = np.arange(len(y))
        x = tg.tensor(X)
        h = tg.relu(x @ W1 + b1)
        h = tg.relu(h @ W2 + b2)
        logits = h @ W3 + b3
        loss = -tg.log_softmax(logits, axis=-1)[rows, y].mean()
        loss.backward()
        lr = self.lr
        for p in self.p:
            p.data -= lr * p.grad.data
            p.grad = None
        return loss.item()

    def arrays(self) -> list[np.ndarray]:
        return [p.data for p in self.p]


class TensorgraphNNMLP:
    """The same network through tensorgraph.nn / losses / optim, as a user of
    issue 3's API would write it. Raises ImportError when those modules do not
    exist yet."""

    name = "tensorgraph (nn/optim)"

    def __init__(self, params: list[np.ndarray], lr: float = LR) -> None:
        import tensorgraph as tg
        from tensorgraph import losses, nn, optim
        self.tg = tg
        self.losses = losses
        self.model = nn.FeedForward(list(SIZES), activation="relu")
        self.plist = list(self.model.parameters())
        _load_weights(self.plist, params)
        self.opt = optim.SGD(self.plist, lr=lr)

    def step(self, X: np.ndarray, y: np.ndarray) -> float:
        self.opt.zero_grad()
        loss = self.losses.cross_entropy(self.model(self.tg.tensor(X)), y)
        loss.backward()
        self.opt.step()
        return loss.item()

    def arrays(self) -> list[np.ndarray]:
        return _arrays_in_our_layout(self.plist)


def _load_weights(plist: list[Any], params: list[np.ndarray]) -> None:
    """Copy our W1, b1, ... into a model's parameters, whatever order and
    layout ((in, out) or (out, in)) it uses; raise if they cannot be matched."""
    remaining = list(params)
    for p in plist:
        for k, a in enumerate(remaining):
            if a.shape == tuple(p.shape):
                p.data[...] = a
                break
            if a.ndim == 2 and a.T.shape == tuple(p.shape) and a.shape[0] != a.shape[1]:
                p.data[...] = a.T
                break
        else:
            raise ValueError(f"cannot match parameter of shape {tuple(p.shape)}")
        del remaining[k]


def _arrays_in_our_layout(plist: list[Any]) -> list[np.ndarray]:
    """Parameters back as W1 (784, 256), b1, ... (matching by shape)."""
    arrays = [np.asarray(p.data) for p in plist]
    ws = [a for a in arrays if a.ndim == 2]
    bs = [a for a in arrays if a.ndim == 1]
    out = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        w = next(a for a in ws if a.shape in ((n_in, n_out), (n_out, n_in)))
        ws = [a for a in ws if a is not w]
        out.append(w if w.shape == (n_in, n_out) else w.T)
        b = next(a for a in bs if a.shape == (n_out,))
        bs = [a for a in bs if a is not b]
        out.append(b)
    return out


class TorchMLP:
    """PyTorch CPU eager, written as a PyTorch user would: F.relu,
    F.cross_entropy (mean) and torch.optim.SGD (set_to_none zero_grad)."""

    name = "pytorch eager"

    def __init__(self, torch: Any, params: list[np.ndarray], lr: float = LR) -> None:
        self.torch = torch
        self.F = torch.nn.functional
        self.p = [torch.from_numpy(a.copy()).requires_grad_() for a in params]
        self.opt = torch.optim.SGD(self.p, lr=lr)

    def step(self, X: np.ndarray, y: np.ndarray) -> float:
        torch, F = self.torch, self.F
        W1, b1, W2, b2, W3, b3 = self.p
        self.opt.zero_grad(set_to_none=True)
        h = F.relu(torch.from_numpy(X) @ W1 + b1)
        h = F.relu(h @ W2 + b2)
        loss = F.cross_entropy(h @ W3 + b3, torch.from_numpy(y))
        loss.backward()
        self.opt.step()
        return loss.item()

    def arrays(self) -> list[np.ndarray]:
        return [p.detach().numpy() for p in self.p]


def check_agree_results(results: dict[str, tuple[list[float], list[np.ndarray]]]) -> None:
    """Trainers started from the same weights must give the same losses and
    parameters after a few steps (to float32 / BLAS rounding). `results` maps
    a name to (losses, parameter arrays)."""
    ref_name, (ref_losses, ref_arrays) = next(iter(results.items()))
    for name, (losses, arrays) in results.items():
        if not np.allclose(losses, ref_losses, rtol=1e-4):
            raise AssertionError(f"mlp: {name} losses {losses} != {ref_name} {ref_losses}")
        for k, (a, b) in enumerate(zip(arrays, ref_arrays)):
            if not np.allclose(a, b, rtol=1e-3, atol=1e-5):
                raise AssertionError(f"mlp: {name} parameter {k} differs from {ref_name} "
                                     f"by {np.abs(a - b).max():.3g} after {len(losses)} steps")
