"""One LSTM training step (issue 11): a sentiment-style classifier over word
embeddings, batch 32, 35 time steps, 256 hidden units, float32:

    tokens (35, 32) ints in [0, 10,000)  ->  embedding lookup (10,000 x 256 table)
    ->  LSTM(256, 256)  ->  h_n (32, 256)  ->  Linear(256, 2)  ->  cross-entropy (mean)
    ->  backward  ->  SGD (lr 0.1) on every parameter, the embedding table included
        (a dense gradient, as PyTorch's nn.Embedding gives by default)

Implementations (`make(impl, torch, seed)` returns (fn, check)):
- tensorgraph: `nn.Embedding` when the package has it (else the table's rows
  gathered by `weight[tokens]`), `nn.LSTM`, `nn.Linear`, `losses.cross_entropy`,
  `optim.SGD`, as a user writes it;
- numpy (by hand): the same forward and a hand-written backward through time
  (the floor for an engine on numpy; one matmul per step each way, the input
  projection of all steps as one matmul, np.add.at for the table's rows);
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
    """Forward and backward through time by hand."""

    def __init__(self, d: dict[str, np.ndarray]) -> None:
        self.p = {n: d[n].copy() for n in NAMES}
        self.tokens, self.labels = d["tokens"], d["labels"]

    def step(self) -> float:
        p, H, T, B = self.p, HIDDEN, STEPS, BATCH
        E, Wih, Whh = p["embed.weight"], p["lstm.weight_ih_l0"], p["lstm.weight_hh_l0"]
        x = E[self.tokens]                                          # (T, B, 256)
        xp = x @ Wih.T + (p["lstm.bias_ih_l0"] + p["lstm.bias_hh_l0"])
        WhhT = Whh.T
        h = np.zeros((B, H), np.float32)
        c = np.zeros((B, H), np.float32)
        hs, cs, gates = [h], [c], []
        for t in range(T):
            a = xp[t] + h @ WhhT
            s = _sigmoid(a)
            g = np.tanh(a[:, 2 * H:3 * H])
            c = s[:, H:2 * H] * c + s[:, :H] * g
            tc = np.tanh(c)
            h = s[:, 3 * H:] * tc
            gates.append((s, g, tc))
            hs.append(h)
            cs.append(c)
        logits = h @ p["head.weight"].T + p["head.bias"]
        m = logits.max(1, keepdims=True)
        e = np.exp(logits - m)
        prob = e / e.sum(1, keepdims=True)
        loss = float(-np.log(prob[np.arange(B), self.labels]).mean())
        dlog = prob
        dlog[np.arange(B), self.labels] -= 1
        dlog /= B
        grads = {"head.weight": dlog.T @ h, "head.bias": dlog.sum(0)}
        dh = dlog @ p["head.weight"]
        dc = np.zeros_like(c)
        da = np.empty((T, B, 4 * H), np.float32)
        for t in range(T - 1, -1, -1):
            s, g, tc = gates[t]
            i, f, o = s[:, :H], s[:, H:2 * H], s[:, 3 * H:]
            dc = dc + dh * o * (1 - tc * tc)
            dat = da[t]
            dat[:, :H] = dc * g * i * (1 - i)
            dat[:, H:2 * H] = dc * cs[t] * f * (1 - f)
            dat[:, 2 * H:3 * H] = dc * i * (1 - g * g)
            dat[:, 3 * H:] = dh * tc * o * (1 - o)
            dc = dc * f
            dh = dat @ Whh
        da2 = da.reshape(T * B, 4 * H)
        grads["lstm.weight_hh_l0"] = da2.T @ np.stack(hs[:-1]).reshape(T * B, H)
        grads["lstm.weight_ih_l0"] = da2.T @ x.reshape(T * B, EMBED)
        grads["lstm.bias_ih_l0"] = grads["lstm.bias_hh_l0"] = da2.sum(0)
        dE = np.zeros_like(E)
        np.add.at(dE, self.tokens.ravel(), da2 @ Wih)
        grads["embed.weight"] = dE
        for n in NAMES:
            p[n] -= LR * grads[n]
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
