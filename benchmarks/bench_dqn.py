"""The DQN training loop on CartPole (issue 12, Speed): environment steps per
second, tensorgraph against the same loop in PyTorch, in the same process.

The loop (chapter 9's deep Q-network), identical for every engine:

- CartPole-v1 (`tensorgraph.rl.make_env`, gymnasium), ε-greedy actions with
  ε decaying linearly from 1 to 0.05 over EPS_DECAY steps (timed after that), each transition
  into a `tensorgraph.rl.ReplayBuffer` (numpy arrays out, for every engine);
- after WARMUP transitions, one gradient step per environment step on a
  minibatch of BATCH: Q-network 4-128-128-2 (ReLU), Huber loss (smooth L1,
  β = 1) on Q(s, a) against y = r + γ (1 - terminated) max_a' Q_target(s', a'),
  Adam (lr 1e-3); the target network copies the online one every SYNC
  gradient steps.

Per step the network work is one forward of a single observation (the greedy
action, under no_grad) and one training step of batch 64 (two forwards, one
backward, Adam on 6 parameters): a few dozen small ops, so the per-op
overhead of the engine is what is measured, not the matmuls.

Engines (`make_agent(kind, params, dtype)`):
  tg          tensorgraph eager: nn.Sequential of nn.Linear/nn.ReLU, optim.Adam
  tg_capture  the training step captured once with `tg.capture` (forward,
              target, loss, backward, Adam: one graph) and replayed each step;
              the greedy action's forward likewise
  torch       PyTorch eager, torch.nn and torch.optim.Adam, F.smooth_l1_loss
  numpy       forward, backward and Adam written out by hand: the floor

`check_same_training` runs a few training steps of every engine in float64
from the same weights on the same minibatches (target sync included) and
asserts the same parameters: the timed loops compute the same thing.

Timing: each engine keeps its own loop (env, buffer, network, all seeded
alike); a sample runs `--steps` (300) env steps of one loop; samples alternate
between the engines, round robin, in one process, at one thread (threadpoolctl
and torch.set_num_threads(1)); we quote medians over repeats and the median of
per-repeat ratios. The time spent inside `env.step`/`env.reset` is measured
apart, so "per step without env" is the engine's share (network, optimizer,
replay buffer, Python of the loop). The thread's CPU time per step is kept
too: on a shared, oversubscribed machine it is steadier than wall time.

    python benchmarks/bench_dqn.py [--repeats 9] [--steps 300] [--quick]
    python benchmarks/bench_dqn.py --profile tg     # cProfile of one engine's loop
    python benchmarks/bench_dqn.py --parts          # training step and action apart
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from typing import Any, Callable, Optional

import numpy as np

from bench_common import Timed

SIZES = (4, 128, 128, 2)
GAMMA = 0.99
LR = 1e-3
BATCH = 64
SYNC = 500
WARMUP = 1000
CAPACITY = 50_000
EPS_START, EPS_END, EPS_DECAY = 1.0, 0.05, 2_000
ENV_ID = "CartPole-v1"
KINDS = ("tg", "tg_capture", "torch", "numpy")
NAMES = {"tg": "tensorgraph eager", "tg_capture": "tensorgraph captured (tg.capture)",
         "torch": "pytorch eager", "numpy": "numpy (by hand)"}


def init_params(seed: int = 0, dtype: Any = np.float32) -> list[np.ndarray]:
    """PyTorch's nn.Linear initialisation drawn with numpy: W (out, in) and b
    ~ U(±1/√in). W1, b1, W2, b2, W3, b3."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1.0 / math.sqrt(n_in)
        out.append(rng.uniform(-bound, bound, (n_out, n_in)).astype(dtype))
        out.append(rng.uniform(-bound, bound, n_out).astype(dtype))
    return out


# -- the engines ----------------------------------------------------------------
# Each agent: act(obs) -> int (greedy action), train(batch) -> None, sync()
# (target <- online), arrays() -> the online network's parameters (numpy).

class NumpyAgent:
    """Forward, backward and Adam by hand (PyTorch's Adam formula)."""

    def __init__(self, params: list[np.ndarray], dtype: Any = np.float32) -> None:
        self.p = [a.astype(dtype, copy=True) for a in params]
        self.t = [a.copy() for a in self.p]
        self.m = [np.zeros_like(a) for a in self.p]
        self.v = [np.zeros_like(a) for a in self.p]
        self.k = 0
        self.dtype = np.dtype(dtype)

    @staticmethod
    def _forward(p: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, ...]:
        W1, b1, W2, b2, W3, b3 = p
        h1 = np.maximum(x @ W1.T + b1, 0)
        h2 = np.maximum(h1 @ W2.T + b2, 0)
        return h1, h2, h2 @ W3.T + b3

    def act(self, obs: np.ndarray) -> int:
        return int(self._forward(self.p, obs[None].astype(self.dtype, copy=False))[2].argmax())

    def train(self, b: Any) -> None:
        x = b.obs.astype(self.dtype, copy=False)
        q_next = self._forward(self.t, b.next_obs.astype(self.dtype, copy=False))[2].max(1)
        y = b.rewards + GAMMA * (1.0 - b.terminated.astype(self.dtype)) * q_next
        h1, h2, q = self._forward(self.p, x)
        rows = np.arange(len(x))
        d = q[rows, b.actions] - y.astype(self.dtype, copy=False)
        gq = np.zeros_like(q)
        gq[rows, b.actions] = np.clip(d, -1.0, 1.0) / len(x)    # d huber / d q(s, a), mean
        W1, b1, W2, b2, W3, b3 = self.p
        g3 = gq.T @ h2
        gh2 = gq @ W3
        gh2 *= h2 > 0
        g2 = gh2.T @ h1
        gh1 = gh2 @ W2
        gh1 *= h1 > 0
        g1 = gh1.T @ x
        grads = [g1, gh1.sum(0), g2, gh2.sum(0), g3, gq.sum(0)]
        self.k += 1
        b1c, b2c = 1.0 - 0.9 ** self.k, 1.0 - 0.999 ** self.k
        for p, g, m, v in zip(self.p, grads, self.m, self.v):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * (g * g)
            p -= (LR / b1c) * (m / (np.sqrt(v) / math.sqrt(b2c) + 1e-8))

    def sync(self) -> None:
        for t, p in zip(self.t, self.p):
            t[...] = p

    def arrays(self) -> list[np.ndarray]:
        return self.p


class TorchAgent:
    """PyTorch eager, written as a PyTorch user writes DQN."""

    def __init__(self, params: list[np.ndarray], dtype: Any = np.float32) -> None:
        import torch
        from torch import nn
        self.torch = torch
        self.F = torch.nn.functional
        tdtype = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
        self.dtype = tdtype

        def mlp() -> Any:
            return nn.Sequential(nn.Linear(4, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                                 nn.Linear(128, 2)).to(tdtype)
        self.net, self.target = mlp(), mlp()
        with torch.no_grad():
            for p, a in zip(self.net.parameters(), params):
                p.copy_(torch.from_numpy(np.asarray(a, dtype=dtype)))
        self.sync()
        self.opt = torch.optim.Adam(self.net.parameters(), lr=LR)

    def act(self, obs: np.ndarray) -> int:
        torch = self.torch
        with torch.no_grad():
            return int(self.net(torch.from_numpy(obs).to(self.dtype)[None]).argmax())

    def train(self, b: Any) -> None:
        torch = self.torch
        obs = torch.from_numpy(b.obs).to(self.dtype)
        nxt = torch.from_numpy(b.next_obs).to(self.dtype)
        with torch.no_grad():
            q_next = self.target(nxt).max(1).values
            notdone = 1.0 - torch.from_numpy(b.terminated).to(self.dtype)
            y = torch.from_numpy(b.rewards).to(self.dtype) + GAMMA * notdone * q_next
        q = self.net(obs).gather(1, torch.from_numpy(b.actions)[:, None]).squeeze(1)
        loss = self.F.smooth_l1_loss(q, y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def sync(self) -> None:
        self.target.load_state_dict(self.net.state_dict())

    def arrays(self) -> list[np.ndarray]:
        return [p.detach().numpy() for p in self.net.parameters()]


class TgAgent:
    """tensorgraph eager, written as a user of the library writes DQN
    (PyTorch's habits); with `capture=True` the training step is captured
    once by `tg.capture` and replayed at each step."""

    def __init__(self, params: list[np.ndarray], dtype: Any = np.float32,
                 capture: bool = False) -> None:
        import tensorgraph as tg
        from tensorgraph import nn, optim
        self.tg = tg
        self.dtype = np.dtype(dtype)

        def mlp() -> Any:
            return nn.Sequential(nn.Linear(4, 128, dtype=dtype), nn.ReLU(),
                                 nn.Linear(128, 128, dtype=dtype), nn.ReLU(),
                                 nn.Linear(128, 2, dtype=dtype))
        self.net, self.target = mlp(), mlp()
        for p, a in zip(self.net.parameters(), params):
            p.data = np.array(a, dtype=dtype)
        self.sync()
        self.opt = optim.Adam(self.net.parameters(), lr=LR)
        self.graph: Optional[Any] = None
        self.act_graph: Optional[Any] = None
        if capture:
            # the greedy action's forward too (parameters are read at each replay)
            self.act_graph = tg.capture(self.net, tg.placeholder((1, 4), self.dtype, name="obs"))
            n = BATCH
            self.graph = tg.capture(self._step, tg.placeholder((n, 4), self.dtype, name="obs"),
                                    tg.placeholder((n,), "int64", name="actions"),
                                    tg.placeholder((n,), self.dtype, name="rewards"),
                                    tg.placeholder((n, 4), self.dtype, name="next_obs"),
                                    tg.placeholder((n,), self.dtype, name="notdone"))

    def _step(self, obs: Any, actions: Any, rewards: Any, next_obs: Any, notdone: Any) -> Any:
        tg = self.tg
        with tg.no_grad():
            y = rewards + GAMMA * notdone * self.target(next_obs).max(1)
        q = self.net(obs)
        # Q(s, a) through a one-hot mask: an index made of `actions` would be
        # frozen into a captured graph (an op attribute), the mask is an input
        q_sa = (q * tg.one_hot(actions, 2, dtype=q.dtype)).sum(1)
        loss = tg.losses.smooth_l1_loss(q_sa, y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss

    def act(self, obs: np.ndarray) -> int:
        x = obs[None].astype(self.dtype, copy=False)
        if self.act_graph is not None:
            return int(self.act_graph(x).data.argmax())
        tg = self.tg
        with tg.no_grad():
            return int(self.net(tg.tensor(x)).data.argmax())

    def train(self, b: Any) -> None:
        dt = self.dtype
        args = (b.obs.astype(dt, copy=False), b.actions, b.rewards.astype(dt, copy=False),
                b.next_obs.astype(dt, copy=False), 1.0 - b.terminated.astype(dt))
        if self.graph is not None:
            self.graph(*args)
        else:
            tg = self.tg
            self._step(*(tg.tensor(a) for a in args))

    def sync(self) -> None:
        self.target.load_state_dict(self.net.state_dict())

    def arrays(self) -> list[np.ndarray]:
        return [p.data for p in self.net.parameters()]


def make_agent(kind: str, params: list[np.ndarray], dtype: Any = np.float32) -> Any:
    if kind == "numpy":
        return NumpyAgent(params, dtype)
    if kind == "torch":
        return TorchAgent(params, dtype)
    if kind in ("tg", "tg_capture"):
        return TgAgent(params, dtype, capture=kind == "tg_capture")
    raise ValueError(f"bench_dqn: unknown engine {kind!r} (choose from {', '.join(KINDS)})")


# -- the loop -------------------------------------------------------------------

class Loop:
    """One engine's DQN loop: its own env, replay buffer and ε stream, all
    seeded alike, so every engine sees the same kind of work. `run(n)` runs n
    environment steps and returns (seconds, seconds inside the env); the
    thread's CPU seconds of the last run are in `cpu`."""

    def __init__(self, agent: Any, seed: int = 0) -> None:
        from tensorgraph.rl import ReplayBuffer, make_env
        self.agent = agent
        self.env = make_env(ENV_ID, seed=seed)
        self.obs, _ = self.env.reset(seed=seed)
        self.buffer = ReplayBuffer(CAPACITY, self.env.observation_space.shape, seed=seed)
        self.rng = np.random.default_rng(seed)
        self.steps = 0          # environment steps so far
        self.updates = 0        # gradient steps so far
        self.episodes = 0
        self.cpu = 0.0

    def run(self, n: int) -> tuple[float, float]:
        env, agent, buf, rng = self.env, self.agent, self.buffer, self.rng
        clock = time.perf_counter
        env_time = 0.0
        cpu0 = time.thread_time()
        start = clock()
        for _ in range(n):
            eps = max(EPS_END, EPS_START - (EPS_START - EPS_END) * self.steps / EPS_DECAY)
            if rng.random() < eps:
                action = int(rng.integers(2))
            else:
                action = agent.act(self.obs)
            t0 = clock()
            nxt, reward, terminated, truncated, _ = env.step(action)
            env_time += clock() - t0
            buf.add(self.obs, action, reward, nxt, terminated, truncated)
            if terminated or truncated:
                t0 = clock()
                nxt, _ = env.reset()
                env_time += clock() - t0
                self.episodes += 1
            self.obs = nxt
            self.steps += 1
            if len(buf) >= WARMUP:
                agent.train(buf.sample(BATCH))
                self.updates += 1
                if self.updates % SYNC == 0:
                    agent.sync()
        elapsed = clock() - start
        self.cpu = time.thread_time() - cpu0
        return elapsed, env_time


# -- the same computation ---------------------------------------------------------

def check_same_training(kinds: tuple[str, ...] = KINDS, steps: int = 6, seed: int = 0,
                        rtol: float = 1e-9, atol: float = 1e-11) -> dict[str, float]:
    """Every engine, in float64, from the same weights, on the same
    minibatches (a target sync after step 3): the same parameters after
    `steps` training steps and the same greedy actions. Returns each engine's
    largest difference from the first engine's parameters; raises
    AssertionError naming the engine and parameter that differ."""
    from tensorgraph.rl import ReplayBuffer
    rng = np.random.default_rng(seed + 1)
    buf = ReplayBuffer(1000, (4,), seed=seed)
    obs = rng.normal(0, 1, 4).astype(np.float32)
    for i in range(300):                        # random transitions, some terminal
        nxt = rng.normal(0, 1, 4).astype(np.float32)
        buf.add(obs, int(rng.integers(2)), 1.0, nxt, bool(i % 17 == 16))
        obs = nxt
    batches = [buf.sample(BATCH) for _ in range(steps)]
    params = init_params(seed, np.float64)
    results: dict[str, list[np.ndarray]] = {}
    actions: dict[str, list[int]] = {}
    for kind in kinds:
        agent = make_agent(kind, params, np.float64)
        for k, b in enumerate(batches):
            agent.train(b)
            if k == 2:
                agent.sync()
        results[kind] = [np.array(a, dtype=np.float64) for a in agent.arrays()]
        actions[kind] = [agent.act(b.obs[i]) for b in batches[:2] for i in range(8)]
    ref_kind = kinds[0]
    ref = results[ref_kind]
    moved = max(float(np.abs(a - p).max()) for a, p in zip(ref, params))
    if not moved > 1e-4:
        raise AssertionError(f"check_same_training: {ref_kind}'s parameters moved by only "
                             f"{moved:.3g} in {steps} steps; the check would prove nothing")
    diffs = {}
    for kind, arrays in results.items():
        worst = 0.0
        for i, (a, r) in enumerate(zip(arrays, ref)):
            if a.shape != r.shape or not np.allclose(a, r, rtol=rtol, atol=atol):
                err = np.abs(a - r).max() if a.shape == r.shape else float("nan")
                raise AssertionError(f"check_same_training: {NAMES[kind]}'s parameter {i} "
                                     f"(shape {a.shape}) differs from {NAMES[ref_kind]}'s by "
                                     f"{err:.3g} after {steps} float64 training steps")
            worst = max(worst, float(np.abs(a - r).max()))
        if actions[kind] != actions[ref_kind]:
            raise AssertionError(f"check_same_training: {NAMES[kind]} picks actions "
                                 f"{actions[kind]}, {NAMES[ref_kind]} {actions[ref_kind]}")
        diffs[kind] = worst
    return diffs


# -- timing -------------------------------------------------------------------------

def limit_threads(n: int = 1) -> Any:
    """numpy's BLAS (threadpoolctl) and torch to n threads; returns the
    threadpoolctl limiter (keep it alive)."""
    from threadpoolctl import threadpool_limits
    limiter = threadpool_limits(n)
    try:
        import torch
        torch.set_num_threads(n)
    except ImportError:
        pass
    return limiter


class Timings(Timed):
    """One engine's samples (seconds per env step, with and without the env)
    with the interface of bench_common.Worker that run.py's Report reads."""

    def __init__(self, name: str, loop: Loop) -> None:
        self.name = name
        self.loop = loop
        self.times: list[float] = []
        self.no_env: list[float] = []
        self.cpu: list[float] = []      # the thread's CPU time per step (steadier under load)
        self.faults: list[float] = []
        self.info: dict[str, Any] = {"pid": os.getpid()}



def measure(kinds: tuple[str, ...] = KINDS, repeats: int = 9, sample_steps: int = 300,
            seed: int = 0, progress: Callable[[str], None] = print) -> list[Timings]:
    """Warm every loop up (WARMUP steps of filling, then training until ε
    reaches its floor, where a DQN run spends most of its steps: the greedy
    action is then computed at 95% of the steps), then `repeats` rounds; in each, every engine runs `sample_steps` env steps,
    one engine after the other, the order turned each round."""
    params = init_params(seed)
    timings = []
    for kind in kinds:
        loop = Loop(make_agent(kind, params), seed)
        loop.run(max(EPS_DECAY, WARMUP + 200))
        timings.append(Timings(NAMES[kind], loop))
    for r in range(repeats):
        order = timings[r % len(timings):] + timings[:r % len(timings)]
        for t in order:
            secs, env_secs = t.loop.run(sample_steps)
            t.times.append(secs / sample_steps)
            t.no_env.append((secs - env_secs) / sample_steps)
            t.cpu.append(t.loop.cpu / sample_steps)
            t.faults.append(0.0)
        progress(f"  repeat {r + 1}/{repeats}: " + ", ".join(
            f"{t.name} {1 / t.times[-1]:.0f} steps/s" for t in timings))
    return timings


def paired(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b))


def table(timings: list[Timings], ref: str = NAMES["torch"]) -> str:
    by = {t.name: t for t in timings}
    lines = ["| implementation | env steps/s (median) | per step, all | per step, without env "
             "| CPU per step | time vs PyTorch: all (without env; CPU) |",
             "|---|---:|---:|---:|---:|---:|"]
    for t in timings:
        vs = (f"{paired(t.times, by[ref].times):.2f}x ({paired(t.no_env, by[ref].no_env):.2f}x; "
              f"{paired(t.cpu, by[ref].cpu):.2f}x)" if ref in by else "-")
        lines.append(f"| {t.name} | {1 / t.median:.0f} | {t.median * 1e6:.0f} us | "
                     f"{statistics.median(t.no_env) * 1e6:.0f} us | "
                     f"{statistics.median(t.cpu) * 1e6:.0f} us | {vs} |")
    return "\n".join(lines)


def profile(kind: str, top: int = 25, seed: int = 0, steps: int = 1000) -> int:
    """Where one engine's loop spends its time: cProfile over `steps` env
    steps at the ε floor, functions by their own time, per env step."""
    import cProfile
    import pstats
    _limiter = limit_threads(1)
    loop = Loop(make_agent(kind, init_params(seed)), seed)
    loop.run(max(EPS_DECAY, WARMUP + 200))
    prof = cProfile.Profile()
    prof.enable()
    loop.run(steps)
    prof.disable()
    st = pstats.Stats(prof)
    total = st.total_tt  # type: ignore[attr-defined]
    print(f"== {NAMES[kind]}: {steps} env steps, {total / steps * 1e6:.0f} us per step under "
          "cProfile (profiling inflates small functions); us per step = tottime / "
          f"{steps} * 1e6")
    st.sort_stats("tottime").print_stats(top)
    del _limiter
    return 0


def parts(kinds: tuple[str, ...] = KINDS, repeats: int = 7, seed: int = 0) -> str:
    """The loop's two network parts apart, without env or buffer: a training
    step on fixed minibatches and a greedy action, thread CPU time, engines
    alternating; a table of medians in us."""
    from tensorgraph.rl import ReplayBuffer
    rng = np.random.default_rng(seed)
    buf = ReplayBuffer(1000, (4,), seed=seed)
    obs = rng.normal(size=4).astype(np.float32)
    for i in range(500):
        nxt = rng.normal(size=4).astype(np.float32)
        buf.add(obs, int(rng.integers(2)), 1.0, nxt, i % 20 == 19)
        obs = nxt
    batches = [buf.sample(BATCH) for _ in range(20)]
    agents = {k: make_agent(k, init_params(seed)) for k in kinds}
    res: dict[str, dict[str, list[float]]] = {k: {"train": [], "act": []} for k in kinds}
    for _ in range(repeats):
        for k, a in agents.items():
            t0 = time.thread_time()
            for i in range(100):
                a.train(batches[i % 20])
            res[k]["train"].append((time.thread_time() - t0) / 100)
            t0 = time.thread_time()
            for i in range(300):
                a.act(batches[i % 20].obs[i % BATCH])
            res[k]["act"].append((time.thread_time() - t0) / 300)
    lines = ["| implementation | training step (CPU) | greedy action (CPU) |", "|---|---:|---:|"]
    for k in kinds:
        lines.append(f"| {NAMES[k]} | {statistics.median(res[k]['train']) * 1e6:.0f} us | "
                     f"{statistics.median(res[k]['act']) * 1e6:.1f} us |")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--steps", type=int, default=300, help="env steps per sample")
    ap.add_argument("--quick", action="store_true", help="3 repeats of 100 steps")
    ap.add_argument("--only", default=",".join(KINDS), help="engines, comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", metavar="ENGINE", choices=KINDS,
                    help="instead: cProfile 1,000 steps of one engine's loop (after the warm-up)")
    ap.add_argument("--top", type=int, default=25, help="rows of the --profile table")
    ap.add_argument("--parts", action="store_true",
                    help="instead: a training step and a greedy action apart (CPU time)")
    args = ap.parse_args(argv)
    if args.parts:
        _limiter = limit_threads(1)
        print(parts(tuple(k.strip() for k in args.only.split(",") if k.strip())))
        return 0
    if args.profile:
        return profile(args.profile, args.top, args.seed)
    if args.quick:
        args.repeats, args.steps = 3, 100
    kinds = tuple(k.strip() for k in args.only.split(",") if k.strip())
    _limiter = limit_threads(1)
    diffs = check_same_training(kinds)
    print("same training (float64, 6 steps): largest parameter difference from "
          f"{NAMES[kinds[0]]}: " + ", ".join(f"{NAMES[k]} {d:.2g}" for k, d in diffs.items()))
    timings = measure(kinds, args.repeats, args.steps, args.seed)
    print(table(timings))
    print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    del _limiter
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sys.exit(main())
