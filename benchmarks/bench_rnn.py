"""One LSTM training step (issue 11): a sentiment-style classifier over word
embeddings, batch 32, 35 time steps, 256 hidden units, float32:

    tokens (35, 32) ints in [0, 10,000)  ->  embedding lookup (10,000 x 256 table)
    ->  LSTM(256, 256)  ->  h_n (32, 256)  ->  Linear(256, 2)  ->  cross-entropy (mean)
    ->  backward  ->  SGD (lr 0.1) on every parameter, the embedding table included
        (a dense gradient, as PyTorch's nn.Embedding gives by default)

Implementations (`make(impl, torch, seed)` returns (fn, check)):
- tensorgraph: `nn.Embedding` when the package has it (else the table's rows
  gathered by `weight[tokens]`), `nn.LSTM` (one `lstm_sequence` op: the layer's
  forward in numpy, its VJP backpropagation through time), `nn.Linear`,
  `losses.cross_entropy`, `optim.SGD`, as a user writes it;
- numpy (by hand): the same forward and a hand-written backward through time,
  written for speed (the floor for an engine on numpy; see `NumpyLSTM`): one
  matmul per step each way, the input projection of all steps and each
  weight's gradient as one matmul, the gate math in place, the table's rows
  summed by a sort and np.add.reduceat, SGD in place;
- pytorch eager: nn.Embedding, nn.LSTM (its fused CPU kernel), nn.Linear,
  F.cross_entropy, torch.optim.SGD.

All start from the same weights and batch; `check` returns the loss and the
parameters after two steps, which must agree.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

VOCAB, EMBED, HIDDEN, BATCH, STEPS, CLASSES, LR = 10_000, 256, 256, 32, 35, 2, 0.1


def init(seed: int = 0) -> dict[str, np.ndarray]:
    """Weights in PyTorch's layout and names, the batch and its labels."""
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(HIDDEN)
    u = lambda *s: rng.uniform(-k, k, s).astype(np.float32)   # noqa: E731
    return {
        "embed.weight": rng.standard_normal((VOCAB, EMBED)).astype(np.float32),
        "lstm.weight_ih_l0": u(4 * HIDDEN, EMBED), "lstm.weight_hh_l0": u(4 * HIDDEN, HIDDEN),
        "lstm.bias_ih_l0": u(4 * HIDDEN), "lstm.bias_hh_l0": u(4 * HIDDEN),
        "head.weight": u(CLASSES, HIDDEN), "head.bias": u(CLASSES),
        "tokens": rng.integers(0, VOCAB, (STEPS, BATCH)),
        "labels": rng.integers(0, CLASSES, BATCH),
    }


NAMES = ["embed.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0",
         "lstm.bias_hh_l0", "head.weight", "head.bias"]


# ---------------------------------------------------------------------------

def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * a) + 1)


class NumpyLSTM:
    """Forward and backward through time by hand, as a careful numpy programmer
    writes them (the floor for an engine on numpy): the input projection of
    all steps as one matmul, W_hh's transpose made contiguous once, the gate
    math in place in preallocated buffers (σ as 0.5·tanh(0.5·a) + 0.5 for all
    four gates at once, with per-column scales), each weight's gradient as one
    matmul over all steps, the embedding's rows summed by one sort and
    np.add.reduceat (np.add.at is ~4x slower), and SGD in place (no temporary
    per parameter)."""

    def __init__(self, d: dict[str, np.ndarray]) -> None:
        self.p = {n: d[n].copy() for n in NAMES}
        self.tokens, self.labels = d["tokens"], d["labels"]
        H = HIDDEN
        # a·k, tanh, ·k, +m: σ for the gates i, f, o, tanh for g
        self.k = np.full(4 * H, 0.5, np.float32)
        self.k[2 * H:3 * H] = 1
        self.m = self.k.copy()
        self.m[2 * H:3 * H] = 0

    def step(self) -> float:
        p, H, T, B = self.p, HIDDEN, STEPS, BATCH
        k, m = self.k, self.m
        E, Wih, Whh = p["embed.weight"], p["lstm.weight_ih_l0"], p["lstm.weight_hh_l0"]
        x = E[self.tokens].reshape(T * B, EMBED)                       # (T·B, 256)
        act = x @ Wih.T
        act += p["lstm.bias_ih_l0"]
        act += p["lstm.bias_hh_l0"]
        act = act.reshape(T, B, 4 * H)                 # preactivations, then activations
        WhhT = np.ascontiguousarray(Whh.T)
        hs = np.zeros((T + 1, B, H), np.float32)       # h_{-1} = 0, h_0 ... h_{T-1}
        cs = np.zeros((T + 1, B, H), np.float32)
        tcs = np.empty((T, B, H), np.float32)
        ig = np.empty((B, H), np.float32)
        for t in range(T):
            s = act[t]
            if t:
                s += hs[t] @ WhhT
            s *= k
            np.tanh(s, out=s)
            s *= k
            s += m
            c = cs[t + 1]
            np.multiply(s[:, H:2 * H], cs[t], out=c)
            np.multiply(s[:, :H], s[:, 2 * H:3 * H], out=ig)
            c += ig
            np.tanh(c, out=tcs[t])
            np.multiply(s[:, 3 * H:], tcs[t], out=hs[t + 1])
        h = hs[T]
        logits = h @ p["head.weight"].T + p["head.bias"]
        logits -= logits.max(1, keepdims=True)
        prob = np.exp(logits)
        prob /= prob.sum(1, keepdims=True)
        loss = float(-np.log(prob[np.arange(B), self.labels]).mean())
        dlog = prob
        dlog[np.arange(B), self.labels] -= 1
        dlog /= B
        grads = {"head.weight": dlog.T @ h, "head.bias": dlog.sum(0)}
        dh = dlog @ p["head.weight"]                   # only h_{T-1} reaches the loss
        dc = np.zeros((B, H), np.float32)
        tmp = np.empty((B, H), np.float32)
        dsig = np.empty((B, 4 * H), np.float32)
        da = np.empty((T, B, 4 * H), np.float32)
        for t in range(T - 1, -1, -1):
            s, tc, dat = act[t], tcs[t], da[t]
            np.multiply(tc, tc, out=tmp)               # ∂c += ∂h ⊙ o ⊙ (1 - tanh²c)
            np.subtract(1, tmp, out=tmp)
            tmp *= s[:, 3 * H:]
            tmp *= dh
            dc += tmp
            np.multiply(dc, s[:, 2 * H:3 * H], out=dat[:, :H])
            np.multiply(dc, cs[t], out=dat[:, H:2 * H])
            np.multiply(dc, s[:, :H], out=dat[:, 2 * H:3 * H])
            np.multiply(dh, tc, out=dat[:, 3 * H:])
            np.subtract(1, s, out=dsig)                # σ(1-σ); 1 - tanh² for g
            dsig *= s
            g = dsig[:, 2 * H:3 * H]
            np.multiply(s[:, 2 * H:3 * H], s[:, 2 * H:3 * H], out=g)
            np.subtract(1, g, out=g)
            dat *= dsig
            dc *= s[:, H:2 * H]
            if t:
                dh = dat @ Whh
        da2 = da.reshape(T * B, 4 * H)
        grads["lstm.weight_hh_l0"] = da2.T @ hs[:T].reshape(T * B, H)
        grads["lstm.weight_ih_l0"] = da2.T @ x
        db = da2.sum(0)
        grads["lstm.bias_ih_l0"], grads["lstm.bias_hh_l0"] = db, db.copy()
        dx = da2 @ Wih
        ids = self.tokens.ravel()                      # each id's rows summed: sorted, then
        order = np.argsort(ids, kind="stable")         # one segment sum per distinct id
        sorted_ids = ids[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
        dE = np.zeros_like(E)                          # dense, as PyTorch's default
        dE[sorted_ids[starts]] = np.add.reduceat(dx[order], starts, axis=0)
        grads["embed.weight"] = dE
        for n in NAMES:                                # in place: no temporary per parameter
            g = grads[n]
            g *= LR
            p[n] -= g
        return loss

    def arrays(self) -> list[np.ndarray]:
        return [self.p[n] for n in NAMES]


class TensorgraphLSTM:
    def __init__(self, d: dict[str, np.ndarray]) -> None:
        import tensorgraph as tg
        from tensorgraph import losses, nn, optim
        self.tg, self.losses = tg, losses
        if hasattr(nn, "Embedding"):
            self.embed: Any = nn.Embedding(VOCAB, EMBED)
            self.lookup = self.embed
        else:                          # before nn.Embedding: gather the table's rows
            self.embed = nn.Parameter(d["embed.weight"].copy())
            self.lookup = lambda tok: self.embed[tok]
        self.lstm = nn.LSTM(EMBED, HIDDEN)
        self.head = nn.Linear(HIDDEN, CLASSES)
        self.params = [self.embed.weight if isinstance(self.embed, nn.Module) else self.embed,
                       *self.lstm.parameters(), *self.head.parameters()]
        for p, n in zip(self.params, NAMES):
            p.data[...] = d[n]
        self.opt = optim.SGD(self.params, lr=LR)
        self.tokens, self.labels = d["tokens"], d["labels"]

    def step(self) -> float:
        self.opt.zero_grad()
        _, (h, _) = self.lstm(self.lookup(self.tokens))
        loss = self.losses.cross_entropy(self.head(h[0]), self.labels)
        loss.backward()
        self.opt.step()
        return loss.item()

    def arrays(self) -> list[np.ndarray]:
        return [p.data for p in self.params]


class TorchLSTM:
    def __init__(self, torch: Any, d: dict[str, np.ndarray]) -> None:
        self.torch = torch
        nn = torch.nn
        self.model = nn.ModuleDict({"embed": nn.Embedding(VOCAB, EMBED),
                                    "lstm": nn.LSTM(EMBED, HIDDEN),
                                    "head": nn.Linear(HIDDEN, CLASSES)})
        self.model.load_state_dict({n: torch.from_numpy(d[n].copy()) for n in NAMES})
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.tokens = torch.from_numpy(d["tokens"])
        self.labels = torch.from_numpy(d["labels"])

    def step(self) -> float:
        m = self.model
        self.opt.zero_grad(set_to_none=True)
        _, (h, _) = m["lstm"](m["embed"](self.tokens))
        loss = self.torch.nn.functional.cross_entropy(m["head"](h[0]), self.labels)
        loss.backward()
        self.opt.step()
        return loss.item()

    def arrays(self) -> list[np.ndarray]:
        sd = self.model.state_dict()
        return [sd[n].numpy() for n in NAMES]


def make(impl: str, torch: Any = None, seed: int = 0) -> tuple[Callable[[], Any],
                                                                Callable[[], Any]]:
    """(fn: one timed training step, check: losses and parameters after two
    steps from a fresh copy of the weights)."""
    d = init(seed)
    build: Callable[[], Any] = {"tg": lambda: TensorgraphLSTM(d), "numpy": lambda: NumpyLSTM(d),
                                "torch": lambda: TorchLSTM(torch, d)}[impl]
    model = build()

    def check() -> tuple[list[float], list[np.ndarray]]:
        m = build()
        losses = [m.step(), m.step()]
        return losses, [np.array(a) for a in m.arrays()]
    return model.step, check


def check_agree(results: dict[str, tuple[list[float], list[np.ndarray]]]) -> None:
    """The same losses and parameters after two steps (float32 rounding)."""
    names = list(results)
    ref_loss, ref = results[names[0]]
    for name in names[1:]:
        loss, arrays = results[name]
        if not np.allclose(loss, ref_loss, rtol=1e-4):
            raise AssertionError(f"bench_rnn: {name}'s losses {loss} differ from {names[0]}'s "
                                 f"{ref_loss}")
        for n, a, r in zip(NAMES, arrays, ref):
            err = float(np.abs(a - r).max()) / (float(np.abs(r).max()) or 1.0)
            if err > 1e-4:
                raise AssertionError(f"bench_rnn: {name} differs from {names[0]} in {n} after two "
                                     f"steps (max relative error {err:.2e})")
