"""Deep Q-networks on the pole-cart: Fundamentals of Deep Learning, chapter 9
("Q-Learning and Deep Q-Networks", "Experience Replay", "Target Network",
"Improving and Moving Beyond DQN": deep recurrent Q-networks).

Q-learning learns the value Q(s, a) of taking action a in state s and acting
well afterwards; the Bellman equation says it satisfies

    Q*(s, a) = E[r + γ max_a' Q*(s', a')],

so a network Q_θ is trained to move Q_θ(s, a) toward the target

    y = r + γ (1 - terminated) max_a' Q_θ⁻(s', a')

(no bootstrap from a terminal state: the pole fell, nothing follows). The
deep Q-network (Mnih et al. 2015) adds the book's two stabilisers:

- experience replay: transitions (s, a, r, s', terminated) go into a ring
  buffer (`rl.ReplayBuffer`) and each update uses a random minibatch of them,
  not the last few correlated steps;
- a target network Q_θ⁻: a copy of Q_θ that computes y and is synchronised
  (θ⁻ ← θ) only every N steps, so the target does not move with every update.

The loss is the Huber loss of Q_θ(s, a) - y (quadratic within 1, linear
beyond: one bad target does not give a huge gradient), minimised by Adam with
the gradient norm clipped (`tg.nn.utils.clip_grad_norm_`). Actions are
ε-greedy, ε decaying linearly (`rl.LinearSchedule`).

Part "cartpole" (the default): gymnasium's `CartPole-v1` (reward 1 per step
the pole stays up, at most 500; solved at an average of 475), a 4 → 128 relu →
128 relu → 2 Q-network, for at most 100,000 steps. DQN oscillates on
CartPole (a good policy is unlearnt and relearnt), so every 1,000 steps the
greedy policy plays 10 episodes on their own seeds (20,000 to 20,009) and the
best-scoring weights are kept (`rl.BestCheckpoint`); training stops early once
such a check scores the maximum 500, which no later checkpoint could beat.

Part "partial" (`--part partial`): the pole-cart with its velocities hidden
(`make_env(..., hide_velocity=True)`: the observation is the cart position and
pole angle only), where one observation does not say which way the pole is
moving. A deep recurrent Q-network (DRQN, Hausknecht and Stone 2015: an LSTM
over the observations of the episode so far, then a linear layer to Q) is
trained on windows of consecutive transitions (`ReplayBuffer.sample_sequences`,
the first steps of each window only warm the LSTM up), against the same
feed-forward DQN as above given the same two numbers, and a feed-forward DQN
given the last two observations stacked (a frame-stack baseline: with two
frames, a velocity is their difference). Each gets the same 50,000
environment steps. The networks see (x / 2.4, θ / 0.2095): each number over
the value where an episode ends.

Every reported `eval_return_mean` is the greedy policy (argmax_a Q) of the kept
checkpoint over 100 new episodes (`rl.evaluate`, seeds 10,000 to 10,099, never
trained on nor used to choose the checkpoint). A progress bar (on a terminal)
shows the running return; Ctrl-C stops training cleanly, keeping and
evaluating the best checkpoint.

Writes (cartpole) returns.svg, q_values.svg, qnet.npz; (partial) partial.svg,
drqn.npz, ff.npz, stack.npz; and results.json.

    python examples/dqn.py [--part cartpole|partial] [--out DIR] [--quick] [--steps N] [--seed S]

`run(out)` with no `steps`, as the gallery calls it, trains for a shorter
budget (GALLERY_STEPS); the command line's default is the full budget.
Needs gymnasium: pip install 'tensorgraph[rl]'.
"""
from __future__ import annotations

import os

# Tiny matrices: BLAS threads only add overhead (and thrash on a busy 2-core
# machine). Effective only if numpy is not imported yet, i.e. when run as a script.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Optional  # noqa: E402

import numpy as np  # noqa: E402

import tensorgraph as tg  # noqa: E402
from tensorgraph import rl  # noqa: E402
from _common import Example, moving_average, parser, svg_text  # noqa: E402

NAME = "dqn"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 9: a deep Q-network (experience replay, a "
              "target network, ε-greedy) on the pole-cart, and a recurrent Q-network (DRQN) on "
              "the pole-cart with its velocities hidden")
ENV_ID, SOLVED, SEED = "CartPole-v1", 475.0, 0
EVAL_SEED = 10_000       # the final evaluation's episodes: never trained on, never used to choose
CHECK_SEED = 20_000      # the periodic checks that choose the checkpoint
GAMMA = 0.99
PARTS = ("cartpole", "partial")
STEPS = {"cartpole": 100_000, "partial": 50_000}     # the command line's budget (per agent)
GALLERY_STEPS = 6_000                                # run(out) with no steps: the gallery's
# Hyperparameters. buffer: replay capacity; batch: transitions (or windows) per update;
# start: steps of random play before learning; every: env steps per update; sync: steps
# between target syncs; eps_steps: ε from 1 to eps_end over these steps; clip: the largest
# gradient norm; check/check_episodes: the periodic greedy checks; evals: final episodes.
CONFIGS = {
    "full": dict(hidden=128, buffer=50_000, batch=64, lr=5e-4, start=1_000, every=1,
                 sync=500, eps_steps=10_000, eps_end=0.05, clip=10.0, check=1_000,
                 check_episodes=10, evals=100,
                 # the recurrent agent: LSTM units, window length, warm-up steps per window
                 rec_hidden=64, rec_batch=32, window=16, burn_in=4, rec_every=2, rec_lr=1e-3),
    "quick": dict(hidden=16, buffer=400, batch=16, lr=1e-3, start=100, every=2,
                  sync=50, eps_steps=150, eps_end=0.05, clip=10.0, check=100,
                  check_episodes=2, evals=3,
                  rec_hidden=8, rec_batch=4, window=6, burn_in=2, rec_every=4, rec_lr=1e-3),
}
QUICK_STEPS = 200
WINDOW = 100             # episodes in the moving average of training returns
# The partial part divides (cart position, pole angle) by where an episode ends
# (±2.4 m, ±12° = 0.2095 rad): the angle is otherwise a hundredth of the position,
# and the velocity a network must infer is a difference of two small angles.
PARTIAL_SCALE = np.array([2.4, 0.2095], np.float32)


# -- the pieces of DQN --------------------------------------------------------
class QNetwork(tg.nn.Module):
    """Q_θ(s, ·): obs → hidden relu → hidden relu → one value per action."""

    def __init__(self, n_obs: int, hidden: int, n_actions: int, seed: int) -> None:
        super().__init__()
        self.fc1 = tg.nn.Linear(n_obs, hidden, seed=seed)
        self.fc2 = tg.nn.Linear(hidden, hidden, seed=seed + 1)
        self.out = tg.nn.Linear(hidden, n_actions, seed=seed + 2)

    def forward(self, x: Any) -> tg.Tensor:
        return self.out(tg.relu(self.fc2(tg.relu(self.fc1(x)))))


def chosen_q(q: tg.Tensor, actions: np.ndarray) -> tg.Tensor:
    """Q(s, a) of the actions taken: q (..., A) times one-hot a, summed over A."""
    return (q * np.eye(q.shape[-1], dtype=np.float32)[actions]).sum(axis=-1)


def dqn_loss(net: QNetwork, target: QNetwork, batch: rl.Batch, gamma: float) -> tg.Tensor:
    """mean over the minibatch of huber(Q_θ(s, a) - y)."""
    with tg.no_grad():
        q_next = target(batch.next_obs).data
    y = rl.td_target(q_next, batch.rewards, batch.terminated, gamma)
    return tg.losses.huber_loss(chosen_q(net(batch.obs), batch.actions), y)


def sync(target: tg.nn.Module, net: tg.nn.Module) -> None:
    """θ⁻ ← θ: the target network becomes a copy of the online network (the
    arrays are copied; later updates of θ do not reach θ⁻)."""
    target.load_state_dict(net.state_dict())


class DRQN(tg.nn.Module):
    """A recurrent Q-network: an LSTM reads the observations in order; Q(h_t, ·)
    is a linear layer of its hidden state, so Q depends on the history."""

    def __init__(self, n_obs: int, hidden: int, n_actions: int, seed: int) -> None:
        super().__init__()
        self.lstm = tg.nn.LSTM(n_obs, hidden, batch_first=True, seed=seed)
        self.out = tg.nn.Linear(hidden, n_actions, seed=seed + 1)

    def forward(self, x: Any, hx: Optional[tuple[Any, Any]] = None
                ) -> tuple[tg.Tensor, tuple[tg.Tensor, tg.Tensor]]:
        """x (B, T, n_obs) → (Q (B, T, A), the LSTM state after the last step)."""
        h, state = self.lstm(x, hx)
        return self.out(h), state


def drqn_loss(net: DRQN, target: DRQN, batch: rl.Batch, gamma: float,
              burn_in: int) -> tg.Tensor:
    """The DQN loss on windows of consecutive transitions (B, L): both networks
    start from a zero state at the window's first step; the online one reads
    s_0..s_{L-1}, the target one s'_0..s'_{L-1} (= s_1..s_L inside an episode).
    The first `burn_in` steps only warm the state up, and steps after an
    episode ended inside the window (mask False) are left out:

        mean over the kept (b, t) of huber(Q_θ(h_t, a_t) - y_t)."""
    with tg.no_grad():
        q_next = target(batch.next_obs)[0].data
    y = rl.td_target(q_next, batch.rewards, batch.terminated, gamma)
    keep = batch.mask.copy()
    keep[:, :burn_in] = False
    w = keep.astype(np.float32) / max(int(keep.sum()), 1)
    loss = tg.losses.huber_loss(chosen_q(net(batch.obs)[0], batch.actions), y, "none")
    return (loss * w).sum()


# -- agents: acting, learning, greedy policies --------------------------------
class Player:
    """One stream of play with an agent's network: what it remembers of the
    episode so far (the last `frames` observations, or the LSTM's state) and
    Q of the current step. Training and the greedy checks each have their own,
    so a check in the middle of a training episode does not disturb it."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.n = agent.n_obs
        self._stack = np.zeros(agent.n_obs * agent.frames, np.float32)
        self._state: Optional[tuple[np.ndarray, np.ndarray]] = None

    def reset(self, obs: np.ndarray) -> np.ndarray:
        """A new episode starts at obs; returns the network's input x (what
        the replay buffer stores): the frames stacked, zeros before the start."""
        self._stack[:] = 0.0
        self._state = None
        return self.observe(obs)

    def observe(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float32) / self.agent.obs_scale
        if self.agent.frames == 1:
            return obs
        self._stack = np.concatenate([self._stack[self.n:], obs])
        return self._stack.copy()

    def q_values(self, x: np.ndarray) -> np.ndarray:
        """Q(·) at input x; a recurrent network reads x as the next step of
        the episode (its state advances)."""
        with tg.no_grad():
            if not self.agent.recurrent:
                return self.agent.net(x[None]).data[0]
            q, (h, c) = self.agent.net(x[None, None], self._state)
        self._state = (h.data, c.data)
        return q.data[0, 0]


class Greedy:
    """The greedy policy obs → argmax_a Q(·) for `rl.evaluate` (reset() at
    each episode's start), checking each observation's shape."""

    def __init__(self, agent: Any, who: str) -> None:
        self.player, self.who, self.started = Player(agent), who, False
        self.n_obs = agent.n_obs

    def reset(self) -> None:
        self.started = False

    def __call__(self, obs: np.ndarray) -> int:
        rl.check_observation(obs, (self.n_obs,), self.who)
        x = self.player.observe(obs) if self.started else self.player.reset(obs)
        self.started = True
        return int(np.argmax(self.player.q_values(x)))


class Agent:
    """A Q-network, its target copy, Adam, and one learning step.

    kind "ff": DQN with `QNetwork`, on `frames` stacked observations (1: the
    observation alone); kind "drqn": `DRQN`, learning from windows. The
    networks see each observation divided by `obs_scale`."""

    def __init__(self, kind: str, n_obs: int, n_actions: int, cfg: dict[str, Any], seed: int,
                 frames: int = 1, obs_scale: Any = 1.0) -> None:
        self.kind, self.n_obs, self.cfg = kind, n_obs, cfg
        self.obs_scale = np.broadcast_to(np.asarray(obs_scale, np.float32), (n_obs,))
        self.recurrent = kind == "drqn"
        self.frames = 1 if self.recurrent else frames
        net: Any
        target: Any
        if self.recurrent:
            net = DRQN(n_obs, cfg["rec_hidden"], n_actions, seed)
            target = DRQN(n_obs, cfg["rec_hidden"], n_actions, seed + 100)
        else:
            net = QNetwork(n_obs * frames, cfg["hidden"], n_actions, seed)
            target = QNetwork(n_obs * frames, cfg["hidden"], n_actions, seed + 100)
        self.net, self.target = net, target
        sync(self.target, self.net)
        self.opt = tg.optim.Adam(self.net.parameters(),
                                 lr=cfg["rec_lr"] if self.recurrent else cfg["lr"])

    @property
    def obs_shape(self) -> tuple[int, ...]:
        """The shape of the network's input (what the replay buffer holds)."""
        return (self.n_obs * self.frames,)

    def learn(self, buf: rl.ReplayBuffer) -> float:
        """One Adam step on a minibatch from `buf`, the gradient norm clipped."""
        if self.recurrent:
            batch = buf.sample_sequences(self.cfg["rec_batch"], self.cfg["window"])
            loss = drqn_loss(self.net, self.target, batch, GAMMA, self.cfg["burn_in"])
        else:
            loss = dqn_loss(self.net, self.target, buf.sample(self.cfg["batch"]), GAMMA)
        self.opt.zero_grad()
        loss.backward()
        tg.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg["clip"])
        self.opt.step()
        return float(loss.item())

    def sync(self) -> None:
        sync(self.target, self.net)


# -- training -------------------------------------------------------------------
def train(agent: Any, env: Any, cfg: dict[str, Any], steps: int, seed: int,
          best: rl.BestCheckpoint, desc: str, who: str) -> dict[str, Any]:
    """ε-greedy play for `steps` environment steps, one update every
    cfg["every"] steps once cfg["start"] random steps are stored, the target
    synchronised every cfg["sync"] steps, and a greedy check of
    cfg["check_episodes"] episodes every cfg["check"] steps deciding the
    checkpoint. Stops early (a check scored 500, the most there is) or on
    Ctrl-C. Returns the history: episode returns and where they ended, the
    checks, the losses, mean max-Q and ε."""
    buf = rl.ReplayBuffer(cfg["buffer"], agent.obs_shape, seed=seed)
    eps = rl.LinearSchedule(1.0, cfg["eps_end"], cfg["eps_steps"])
    rng = np.random.default_rng(seed)
    check_env = rl.make_env(ENV_ID, hide_velocity=env.observation_space.shape != (4,))
    greedy = Greedy(agent, who)
    player = Player(agent)
    every = cfg["rec_every"] if agent.recurrent else cfg["every"]
    h: dict[str, Any] = dict(episode_end=[], checks=[], check_steps=[], loss=[], loss_steps=[],
                             q_max=[], updates=0, stopped_early=False)
    obs, _ = env.reset()
    x = player.reset(obs)
    ep_return, losses, qs = 0.0, [], []
    t0 = time.perf_counter()
    with rl.Progress(steps, desc, unit="step", window=WINDOW) as bar:
        for step in range(steps):
            q = player.q_values(x)
            qs.append(float(q.max()))
            a = rl.epsilon_greedy(q, eps(step), rng)
            obs, r, terminated, truncated, _ = env.step(a)
            x_next = player.observe(obs)
            buf.add(x, a, float(r), x_next, terminated, truncated)
            x = x_next
            ep_return += float(r)
            if terminated or truncated:
                h["episode_end"].append(step + 1)
                bar.update(0, ret=ep_return)
                obs, _ = env.reset()
                x = player.reset(obs)
                ep_return = 0.0
            bar.update(1)
            if step + 1 >= cfg["start"] and (step + 1) % every == 0:
                losses.append(agent.learn(buf))
                h["updates"] += 1
            if (step + 1) % cfg["sync"] == 0:
                agent.sync()
            if (step + 1) % cfg["check"] == 0:
                if losses:
                    h["loss"].append(float(np.mean(losses)))
                    h["loss_steps"].append(step + 1)
                h["q_max"].append(float(np.mean(qs)))
                losses, qs = [], []
                score = float(rl.evaluate(greedy, check_env, cfg["check_episodes"],
                                          seed=CHECK_SEED).mean())
                h["checks"].append(score)
                h["check_steps"].append(step + 1)
                saved = best.update(score, agent.net.state_dict())
                print(f"{desc}: step {step + 1}: greedy check {score:.1f} over "
                      f"{cfg['check_episodes']} episodes{' (kept)' if saved else ''}; training "
                      f"mean return {bar.running_return:.1f}, ε {eps(step):.3f} "
                      f"({time.perf_counter() - t0:.1f} s)", flush=True)
                if score >= 500.0:
                    h["stopped_early"] = True
                    break
    h.update(returns=bar.returns, env_steps=bar.n, interrupted=bar.interrupted,
             train_seconds=time.perf_counter() - t0)
    return h


def kept_policy(agent: Agent, best: rl.BestCheckpoint, last_score: float) -> None:
    """Load the best checkpoint into agent.net (a run too short for any check
    keeps its final weights, saved as its checkpoint)."""
    if best.saves:
        agent.net.load_state_dict(best.load())
    else:
        best.update(last_score, agent.net.state_dict())

# -- figures --------------------------------------------------------------------
def _figure(size: tuple[float, float], n: int) -> tuple[Any, Any]:
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasSVG(fig)
    return fig, fig.subplots(1, n)


def returns_figure(h: dict[str, Any], evals: np.ndarray, best_step: Optional[int],
                   check_episodes: int, title: str) -> str:
    """Left: the return of every training episode (at the step it ended), its
    moving average, the greedy checks and the one kept, and the 475 line.
    Right: the kept network's evaluation episodes."""
    fig, (ax, ax_eval) = _figure((10.0, 3.8), 2)
    ends, rets = np.array(h["episode_end"]), np.array(h["returns"])
    ax.plot(ends, rets, color="#93c5fd", lw=0.7,
            label="return of each training episode (ε-greedy)")
    ax.plot(ends, moving_average(rets, WINDOW), color="#1d4ed8", lw=2.0,
            label=f"mean of the last {WINDOW} training episodes")
    ax.plot(h["check_steps"], h["checks"], "o-", color="#f59e0b", ms=3, lw=0.8,
            label=f"greedy check (mean of {check_episodes} episodes)")
    if best_step is not None:
        i = h["check_steps"].index(best_step)
        ax.plot([best_step], [h["checks"][i]], "*", color="#16a34a", ms=14, zorder=5,
                label="the checkpoint kept")
    ax.axhline(SOLVED, color="#dc2626", ls="--", lw=1.2, label=f"solved: {SOLVED:.0f}")
    ax.set(xlabel="environment step", ylabel="return (steps the pole stayed up)",
           ylim=(0, 520), title="training")
    ax.legend(loc="upper left", fontsize=7)
    jitter = np.random.default_rng(0).uniform(-0.2, 0.2, size=len(evals))
    ax_eval.plot(jitter, evals, "o", ms=3, alpha=0.5, color="#1d4ed8")
    ax_eval.plot([-0.3, 0.3], [evals.mean()] * 2, color="black", lw=2)
    ax_eval.axhline(SOLVED, color="#dc2626", ls="--", lw=1.2)
    ax_eval.set(xticks=[0], xticklabels=[f"greedy\nmean {evals.mean():.1f}"], xlim=(-0.6, 0.6),
                ylabel="return of each evaluation episode", ylim=(0, 520),
                title=f"{len(evals)} new episodes, kept network")
    for a in (ax, ax_eval):
        a.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    return svg_text(fig)


def q_figure(h: dict[str, Any], eps: rl.LinearSchedule, title: str) -> str:
    """Left: the mean of max_a Q(s_t, a) over the states played, and the TD
    loss, per check interval. Right: ε over the steps."""
    fig, (ax, ax_eps) = _figure((10.0, 3.4), 2)
    ax.plot(h["check_steps"], h["q_max"], "o-", ms=3, color="#1d4ed8",
            label="mean max_a Q(s, a) over the states played")
    ax.axhline(1 / (1 - GAMMA), color="#6b7280", ls=":", lw=1.2,
               label=f"1 / (1 - γ) = {1 / (1 - GAMMA):.0f}: the pole never falls")
    ax.set(xlabel="environment step", ylabel="Q", title="value estimates and TD loss")
    ax2 = ax.twinx()
    ax2.plot(h["loss_steps"], h["loss"], "s-", ms=3, color="#dc2626", label="Huber TD loss")
    ax2.set(ylabel="Huber loss (mean per update)")
    lines = ax.get_legend_handles_labels()
    more = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=7)
    steps = np.arange(0, max(h["env_steps"], 1) + 1)
    ax_eps.plot(steps, [eps(int(s)) for s in steps], color="#9333ea")
    ax_eps.set(xlabel="environment step", ylabel="ε", ylim=(0, 1.05),
               title="exploration: ε-greedy, linear decay")
    for a in (ax, ax_eps):
        a.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    return svg_text(fig)


LABELS = {"drqn": "DRQN (LSTM over the history)", "ff": "feed-forward DQN, one observation",
          "stack": "feed-forward DQN, last 2 observations stacked"}
COLOURS = {"drqn": "#16a34a", "ff": "#dc2626", "stack": "#6b7280"}


def partial_figure(runs: dict[str, dict[str, Any]], check_episodes: int, title: str) -> str:
    """Left: each agent's training returns (moving average) and greedy checks.
    Right: each kept network's evaluation episodes."""
    fig, (ax, ax_eval) = _figure((10.5, 3.9), 2)
    for k, r in runs.items():
        h = r["history"]
        ends = np.array(h["episode_end"])
        ax.plot(ends, moving_average(h["returns"], WINDOW), color=COLOURS[k], lw=1.8,
                label=f"{LABELS[k]}: training mean")
        ax.plot(h["check_steps"], h["checks"], "o", color=COLOURS[k], ms=3, alpha=0.6)
    ax.plot([], [], "o", color="black", ms=3,
            label=f"dots: greedy checks ({check_episodes} episodes)")
    ax.set(xlabel="environment step", ylabel="return", ylim=(0, 520),
           title="velocities hidden: training")
    ax.legend(loc="upper left", fontsize=7)
    rng = np.random.default_rng(0)
    for x, (k, r) in enumerate(runs.items()):
        ev = r["evals"]
        ax_eval.plot(x + rng.uniform(-0.2, 0.2, len(ev)), ev, "o", ms=3, alpha=0.5,
                     color=COLOURS[k])
        ax_eval.plot([x - 0.3, x + 0.3], [ev.mean()] * 2, color="black", lw=2)
    ax_eval.set(xticks=range(len(runs)),
                xticklabels=[f"{k}\nmean {r['evals'].mean():.1f}" for k, r in runs.items()],
                xlim=(-0.6, len(runs) - 0.4), ylabel="return of each evaluation episode",
                ylim=(0, 520), title=f"{len(next(iter(runs.values()))['evals'])} new episodes")
    for a in (ax, ax_eval):
        a.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    return svg_text(fig)


# -- the two parts ---------------------------------------------------------------
def train_and_evaluate(label: str, kind: str, cfg: dict[str, Any], steps: int, seed: int,
                       out: Path, hide_velocity: bool, frames: int = 1) -> dict[str, Any]:
    """One agent of `kind` ("ff" or "drqn"): trained on an environment seeded
    `seed`, the best checkpoint kept in out/<label>.npz, evaluated greedily on
    100 (quick: 3) new episodes."""
    env = rl.make_env(ENV_ID, seed=seed, hide_velocity=hide_velocity)
    n_obs = env.observation_space.shape[0]
    agent = Agent(kind, n_obs, env.action_space.n, cfg, seed, frames=frames,
                  obs_scale=PARTIAL_SCALE if hide_velocity else 1.0)
    best = rl.BestCheckpoint(out / f"{label}.npz")
    n_params = agent.net.num_parameters()
    print(f"{label}: {n_params} parameters, {steps} environment steps", flush=True)
    h = train(agent, env, cfg, steps, seed, best, label, f"dqn {label}")
    kept_policy(agent, best, h["checks"][-1] if h["checks"] else 0.0)
    best_step = (h["check_steps"][int(np.argmax(h["checks"]))] if h["checks"] else None)
    t1 = time.perf_counter()
    eval_env = rl.make_env(ENV_ID, hide_velocity=hide_velocity)
    evals = rl.evaluate(Greedy(agent, f"dqn {label}"), eval_env, cfg["evals"], seed=EVAL_SEED)
    eval_seconds = time.perf_counter() - t1
    print(f"{label}: greedy evaluation over {cfg['evals']} episodes {evals.mean():.1f} ± "
          f"{evals.std():.1f}", flush=True)
    return dict(history=h, evals=evals, best=best, best_step=best_step, agent=agent,
                parameters=n_params, eval_seconds=eval_seconds)


def summary(r: dict[str, Any]) -> dict[str, Any]:
    """The results.json entries of one agent."""
    h = r["history"]
    return dict(
        eval_return_mean=float(r["evals"].mean()), eval_return_std=float(r["evals"].std()),
        episodes=len(h["returns"]), env_steps=h["env_steps"], updates=h["updates"],
        best_check_return=r["best"].score if r["best"].saves else None,
        best_check_step=r["best_step"], stopped_early=h["stopped_early"],
        interrupted=h["interrupted"], parameters=r["parameters"],
        train_seconds=round(h["train_seconds"], 2), eval_seconds=round(r["eval_seconds"], 2))


def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        part: str = "cartpole", steps: Optional[int] = None, seed: int = SEED
        ) -> dict[str, Any]:
    """Train, evaluate and draw one part ("cartpole" or "partial"); returns
    {"figures", "results", "reproduces"}. `steps` is each agent's budget of
    environment steps (None: GALLERY_STEPS, or QUICK_STEPS with quick);
    `data` is ignored (the environment makes the data); `seed` seeds the
    networks, the training environment, exploration and the replay sampling."""
    if part not in PARTS:
        raise ValueError(f"dqn.run: part must be one of {PARTS}, got {part!r}")
    ex = Example(NAME if part == "cartpole" else f"{NAME}_partial", REPRODUCES,
                 args=argparse.Namespace(out=out, quick=quick, data=data))
    cfg = CONFIGS["quick" if quick else "full"]
    n_steps = steps if steps is not None else QUICK_STEPS if quick else GALLERY_STEPS
    if n_steps < 1:
        raise ValueError(f"dqn.run: steps must be >= 1, got {n_steps}")
    hidden = " with the velocities hidden" if part == "partial" else ""
    ex.data_source = (f"gymnasium {ENV_ID}{hidden}"
                      f" (transitions made by the agent; training env seeded {seed}, greedy checks "
                      f"seeded from {CHECK_SEED}, evaluation episodes from {EVAL_SEED})")
    print(f"data: {ex.data_source}", flush=True)
    common = dict(seed=seed, gamma=GAMMA, steps_budget=n_steps, replay_capacity=cfg["buffer"],
                  epsilon=f"1.0 → {cfg['eps_end']} linearly over {cfg['eps_steps']} steps",
                  target_sync_every=cfg["sync"], learning_starts=cfg["start"],
                  optimizer=f"Adam(lr={cfg['lr']}), gradient norm clipped at {cfg['clip']}",
                  loss="Huber (δ = 1) of Q(s, a) − (r + γ (1 − terminated) "
                       "max Q_target(s′, ·))",
                  checks=f"greedy, {cfg['check_episodes']} episodes every {cfg['check']} steps",
                  eval_episodes=cfg["evals"],
                  eval_policy="greedy (argmax Q) on the best-checked checkpoint",
                  blas_threads=os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
                  cpus=os.cpu_count())
    if part == "cartpole":
        r = train_and_evaluate("qnet", "ff", cfg, n_steps, seed, ex.out, hide_velocity=False)
        h = r["history"]
        ex.results.update(summary(r))
        ex.results.update(eval_solved=bool(r["evals"].mean() >= SOLVED),
                          network=f"4 → {cfg['hidden']} relu → {cfg['hidden']} relu → 2",
                          batch=cfg["batch"], updates_every=cfg["every"], **common)
        stop = ("stopped: a check scored 500" if h["stopped_early"] else
                "interrupted" if h["interrupted"] else f"{h['env_steps']} steps")
        ex.figure(returns_figure(h, r["evals"], r["best_step"], cfg["check_episodes"],
                                 f"DQN on {ENV_ID} ({stop}): greedy evaluation "
                                 f"{r['evals'].mean():.1f} over {cfg['evals']} episodes"),
                  "returns.svg",
                  "Left: the return (steps the pole stayed up, at most 500) of every training "
                  "episode, plotted at the step where it ended, and its 100-episode mean; training "
                  "acts ε-greedily, so it explores. Orange: every so often the network plays 10 "
                  "episodes greedily (always the best-valued action); the best such check (green "
                  "star) is the network kept, since DQN often unlearns a good policy. Right: the "
                  "kept network on 100 new episodes (one dot each, black bar the mean, the "
                  "reported eval_return_mean); dashed: 475, where CartPole-v1 counts as solved.")
        ex.figure(q_figure(h, rl.LinearSchedule(1.0, cfg["eps_end"], cfg["eps_steps"]),
                           "What the Q-network believes while it learns"),
                  "q_values.svg",
                  "Left: the Q-network's estimate of the best action's value in the states it "
                  "played, averaged between checks, against 1 / (1 - γ) = 100, the discounted "
                  "value of balancing forever; and the Huber loss between Q(s, a) and its "
                  "target r + γ max Q_target(s′, ·). Right: ε, the probability of a random "
                  f"action, decaying linearly from 1 to {cfg['eps_end']} over {cfg['eps_steps']:,} "
                  "steps (a run shorter than that stops on the way).")
        return ex.finish()

    runs: dict[str, dict[str, Any]] = {}
    for kind, frames in (("drqn", 1), ("ff", 1), ("stack", 2)):
        r = train_and_evaluate(kind, "ff" if kind == "stack" else kind, cfg, n_steps, seed,
                               ex.out, hide_velocity=True, frames=frames)
        runs[kind] = r
        if r["history"]["interrupted"]:
            break                                   # Ctrl-C: evaluate what was trained
    for kind, r in runs.items():
        ex.results[kind] = summary(r)
    drqn = runs["drqn"]
    ex.results.update(
        eval_return_mean=float(drqn["evals"].mean()), eval_return_std=float(drqn["evals"].std()),
        episodes=len(drqn["history"]["returns"]), env_steps=drqn["history"]["env_steps"],
        interrupted=any(r["history"]["interrupted"] for r in runs.values()),
        observation="cart position and pole angle (velocities hidden)",
        drqn_network=f"LSTM(2 → {cfg['rec_hidden']}) → linear → 2; windows of {cfg['window']} "
                     f"steps, {cfg['rec_batch']} per update, the first {cfg['burn_in']} only "
                     f"warm the state up; an update every {cfg['rec_every']} steps; Adam(lr="
                     f"{cfg['rec_lr']})",
        ff_network=f"2 → {cfg['hidden']} relu → {cfg['hidden']} relu → 2, {cfg['batch']} "
                   f"transitions per update, an update every {cfg['every']} step",
        stack_network=f"the ff network on the last 2 observations (4 numbers)", **common)
    means = ", ".join(f"{k} {r['evals'].mean():.1f}" for k, r in runs.items())
    ex.figure(partial_figure(runs, cfg["check_episodes"],
                             f"Pole-cart without velocities, {n_steps} steps each: "
                             f"greedy evaluation {means}"),
              "partial.svg",
              "The pole-cart seen through its cart position and pole angle only: one "
              "observation does not say which way the pole is falling. Left: the 100-episode "
              "mean training return of each agent, and its greedy checks (dots). Green: a "
              "recurrent Q-network (an LSTM reading the episode so far); red: the same "
              "feed-forward DQN as on the full pole-cart, given only the current two numbers; "
              "grey: the feed-forward DQN given the last two observations (a velocity is their "
              "difference). Right: each kept network on 100 new episodes, black bars the means.")
    return ex.finish()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--part", choices=PARTS, default="cartpole",
                   help="cartpole: DQN on CartPole-v1 (default); partial: DRQN against "
                        "feed-forward DQNs with the velocities hidden")
    p.add_argument("--steps", type=int, default=None,
                   help=f"environment steps per agent (default {STEPS['cartpole']:,}; "
                        f"{QUICK_STEPS} with --quick)")
    p.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    args = p.parse_args()
    steps = args.steps if args.steps is not None else None if args.quick else STEPS[args.part]
    out = args.out if args.out is not None else (None if args.part == "cartpole"
                                                 else Path("out") / f"{NAME}_partial")
    run(out, args.quick, None, args.part, steps, args.seed)


if __name__ == "__main__":
    main()
