"""conv2d forward + backward on the book's two conv layers (chapter 5's MNIST
network), batch 64, float32, 5x5 kernels, padding 'same' (= 2):

    conv1: 1 -> 32 channels on 28x28 (the input image: no input gradient)
    conv2: 32 -> 64 channels on 14x14 (a hidden activation: input gradient too)

One call = the forward y = conv2d(x, W, b) and the backward for a fixed
upstream gradient G = ∂L/∂y: ∂L/∂W, ∂L/∂b and, for conv2, ∂L/∂x.

Implementations (`make(impl, layer, torch, seed)` returns (fn, check)):
- tensorgraph: `tg.conv2d` on leaves that require grad, `y.backward(G)`;
- numpy (by hand): im2col written out (a strided view copied once, kept for
  the weight gradient), one matmul each for y, ∂L/∂W and the input columns,
  col2im by one strided add per kernel offset: the floor for a numpy engine;
- pytorch eager: `F.conv2d`, `y.backward(G)` (oneDNN/MKL on CPU).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided

BATCH = 64
K = 5
PAD = 2
#: name -> (in channels, out channels, spatial side, input needs a gradient)
LAYERS = {"conv1": (1, 32, 28, False), "conv2": (32, 64, 14, True)}


def data(layer: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x, W, b and the upstream gradient G, float32."""
    cin, cout, side, _ = LAYERS[layer]
    rng = np.random.default_rng(seed)
    x = rng.random((BATCH, cin, side, side), dtype=np.float32)
    bound = 1 / np.sqrt(cin * K * K)
    w = rng.uniform(-bound, bound, (cout, cin, K, K)).astype(np.float32)
    b = rng.uniform(-bound, bound, cout).astype(np.float32)
    g = rng.standard_normal((BATCH, cout, side, side)).astype(np.float32)
    return x, w, b, g


class NumpyConv:
    """conv2d (stride 1, symmetric padding) forward and backward by hand."""

    def __init__(self, x: np.ndarray, w: np.ndarray, b: np.ndarray, g: np.ndarray,
                 input_grad: bool) -> None:
        self.x, self.w, self.b, self.g, self.input_grad = x, w, b, g, input_grad

    def step(self) -> list[np.ndarray]:
        x, w, b, g = self.x, self.w, self.b, self.g
        N, C, H, W = x.shape
        O, _, kh, kw = w.shape
        xp = np.zeros((N, C, H + 2 * PAD, W + 2 * PAD), x.dtype)
        xp[:, :, PAD:PAD + H, PAD:PAD + W] = x
        OH, OW = H + 2 * PAD - kh + 1, W + 2 * PAD - kw + 1
        sN, sC, sH, sW = xp.strides
        # columns (C·kh·kw, N·OH·OW): one contiguous copy of the windows
        cols = np.ascontiguousarray(as_strided(xp, (C, kh, kw, N, OH, OW),
                                               (sC, sH, sW, sN, sH, sW))).reshape(C * kh * kw, -1)
        wm = w.reshape(O, -1)
        y = (wm @ cols).reshape(O, N, OH, OW).transpose(1, 0, 2, 3) + b[:, None, None]
        y = np.ascontiguousarray(y)
        gm = np.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(O, -1)
        dw = (gm @ cols.T).reshape(w.shape)
        db = g.sum(axis=(0, 2, 3))
        out = [y, dw, db]
        if self.input_grad:
            dcols = (wm.T @ gm).reshape(C, kh, kw, N, OH, OW)
            dxp = np.zeros((C, N, H + 2 * PAD, W + 2 * PAD), x.dtype)
            for i in range(kh):
                for j in range(kw):
                    dxp[:, :, i:i + OH, j:j + OW] += dcols[:, i, j]
            out.append(np.ascontiguousarray(dxp[:, :, PAD:PAD + H, PAD:PAD + W].transpose(1, 0, 2, 3)))
        return out


def make(impl: str, layer: str, torch: Any = None, seed: int = 0) -> tuple[Callable[[], Any],
                                                                           Callable[[], Any]]:
    """(fn: one timed forward + backward, check: the results as numpy arrays
    [y, dW, db(, dx)])."""
    x, w, b, g = data(layer, seed)
    input_grad = LAYERS[layer][3]
    if impl == "numpy":
        conv = NumpyConv(x, w, b, g, input_grad)
        return conv.step, conv.step
    if impl == "tg":
        import tensorgraph as tg
        X = tg.tensor(x, requires_grad=input_grad)
        Wt, Bt = tg.tensor(w, requires_grad=True), tg.tensor(b, requires_grad=True)
        leaves = [Wt, Bt] + ([X] if input_grad else [])

        def step() -> Any:
            y = tg.conv2d(X, Wt, Bt, padding="same")
            y.backward(g)
            for p in leaves:
                p.grad = None
            return y

        def check() -> list[np.ndarray]:
            y = tg.conv2d(X, Wt, Bt, padding="same")
            y.backward(g)
            out = [y.data] + [np.array(p.grad.data) for p in leaves]
            for p in leaves:
                p.grad = None
            return out
        return step, check
    if impl == "torch":
        F = torch.nn.functional
        X = torch.from_numpy(x).requires_grad_(input_grad)
        Wt, Bt = torch.from_numpy(w).requires_grad_(), torch.from_numpy(b).requires_grad_()
        G = torch.from_numpy(g)
        leaves = [Wt, Bt] + ([X] if input_grad else [])

        def tstep() -> Any:
            y = F.conv2d(X, Wt, Bt, padding=PAD)
            y.backward(G)
            for p in leaves:
                p.grad = None
            return y

        def tcheck() -> list[np.ndarray]:
            y = F.conv2d(X, Wt, Bt, padding=PAD)
            y.backward(G)
            out = [y.detach().numpy()] + [p.grad.numpy().copy() for p in leaves]
            for p in leaves:
                p.grad = None
            return out
        return tstep, tcheck
    raise ValueError(f"bench_conv: unknown implementation {impl!r}")


def check_agree(results: dict[str, list[np.ndarray]]) -> None:
    """Every implementation computes the same y and gradients (float32 rounding)."""
    names = list(results)
    ref = results[names[0]]
    for name in names[1:]:
        got = results[name]
        assert len(got) == len(ref), (name, len(got), len(ref))
        for k, (a, r) in enumerate(zip(got, ref)):
            scale = float(np.abs(r).max()) or 1.0
            err = float(np.abs(np.asarray(a) - r).max()) / scale
            if err > 1e-4:
                raise AssertionError(f"bench_conv: {name} differs from {names[0]} in output {k} "
                                     f"(max relative error {err:.2e})")
