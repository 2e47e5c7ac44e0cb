"""A deep Q-network plays Breakout: Fundamentals of Deep Learning, chapter 9
("Deep Q-Network (DQN)", "Playing Breakout with DQN"), after Mnih et al.,
"Human-level control through deep reinforcement learning" (Nature 2015).

The agent sees the screen, not the game's state. `rl.make_atari` turns
gymnasium's "ALE/Breakout-v5" into the paper's input: every agent step is 4
emulator frames (the action repeated, rewards summed), each frame the max of
the last two (sprites flicker), grayscale, resized to 84 × 84; an observation
is the last 4 such frames (4, 84, 84) uint8, so that the ball's direction is
visible. FIRE is pressed for the agent after resets and lost lives.

The Q-network is the paper's convolutional network (chapter 5's layers):

    x/255 (4, 84, 84) → conv 32 8×8 stride 4, ReLU → conv 64 4×4 stride 2, ReLU
      → conv 64 3×3 stride 1, ReLU → flatten 3136 → 512 ReLU → Q(s, ·) (4 actions)

Q-learning with experience replay and a target network: act ε-greedily,
store (s, a, r, s', done) in a replay buffer (uint8 frames, each stored once),
and every 4 steps take a minibatch of 32 and minimise the Huber loss of the
temporal-difference error

    δ = Q(s, a) - (r + γ (1 - done) max_a' Q_target(s', a')),   γ = 0.99,

    huber(δ) = δ²/2 for |δ| ≤ 1, |δ| - 1/2 beyond (the paper's error clipping),

with Adam. Rewards are clipped to their sign (Breakout pays 1, 4 or 7 a
brick); a lost life is stored as a terminal transition (the game goes on);
Q_target is a copy of the network refreshed every 1,000 steps. ε falls
linearly from 1 to 0.1 over the first half of the wall-clock budget and the
first 5,000 steps are random: the number of steps a budget buys depends on the
machine, so the schedule follows the clock.

The paper trained for 50 million frames (about 38 days of play); this trains
for `--minutes` of wall clock on a CPU. Whatever it reaches is reported beside a
random policy on the same games: 30 games (5 lives each) of the kept network
with ε = 0.05, as the paper evaluated, and 30 games of uniformly random
actions started from the same seeds. The kept network is the best checkpoint
(the highest mean score of 20 consecutive training games, `rl.BestCheckpoint`);
the final network is evaluated too.

Writes scores.svg (training scores and the evaluation against random),
observation.svg (one preprocessed observation: the 4 stacked frames),
qnet.npz (the best checkpoint) and results.json. A progress bar (on a terminal)
shows the running score; Ctrl-C stops training cleanly, and the best checkpoint
is evaluated.

    python examples/dqn_breakout.py --minutes 40 [--out DIR] [--seed S]
    python examples/dqn_breakout.py --quick       # a smoke test of seconds

Needs gymnasium, ale-py and opencv-python-headless: pip install 'tensorgraph[rl]'.
"""
from __future__ import annotations

import os

# One BLAS thread: on a shared 2-core machine OpenBLAS's spinning threads cost more
# than they give. Effective only if numpy is not imported yet (run as a script).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Optional  # noqa: E402

import numpy as np  # noqa: E402

import tensorgraph as tg  # noqa: E402
from tensorgraph import rl  # noqa: E402
from _common import Example, moving_average, parser, svg_text  # noqa: E402

NAME = "dqn_breakout"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 9: a deep Q-network (convolutional, "
              "experience replay, target network) playing Breakout from pixels")
ENV_ID, SEED, EVAL_SEED = "ALE/Breakout-v5", 0, 10_000
FRAME_SKIP, STACK, SCREEN = 4, 4, 84
CONFIGS = {
    "full": dict(minutes=40.0, capacity=100_000, batch=32, lr=1e-4, learn_start=5_000,
                 train_every=4, target_every=1_000, eval_games=30, max_steps=27_000),
    # a smoke test: a tiny buffer and budget, 2 evaluation games cut at 100 steps
    "quick": dict(minutes=0.01, capacity=1_000, batch=8, lr=1e-4, learn_start=50,
                  train_every=4, target_every=100, eval_games=2, max_steps=100),
}
GAMMA = 0.99
EPS_START, EPS_END, EPS_FRACTION = 1.0, 0.1, 0.5   # ε over the first half of the budget
EVAL_EPSILON = 0.05
WINDOW = 20                                         # games in the running score


class QNetwork(tg.nn.Module):
    """The Nature-DQN convolutional Q-network: uint8 frames (N, 4, 84, 84)
    scaled to [0, 1], three conv layers, a 512-unit layer, one Q-value per action."""

    def __init__(self, n_actions: int, in_channels: int = STACK, seed: int = 0) -> None:
        super().__init__()
        nn = tg.nn
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 8, stride=4, seed=seed), nn.ReLU(),      # 32 × 20 × 20
            nn.Conv2d(32, 64, 4, stride=2, seed=seed + 1), nn.ReLU(),           # 64 × 9 × 9
            nn.Conv2d(64, 64, 3, stride=1, seed=seed + 2), nn.ReLU(),           # 64 × 7 × 7
            nn.Flatten())
        self.hidden = nn.Linear(64 * 7 * 7, 512, seed=seed + 3)
        self.out = nn.Linear(512, n_actions, seed=seed + 4)
        self.in_shape = (in_channels, SCREEN, SCREEN)

    def forward(self, frames: Any) -> tg.Tensor:
        x = np.asarray(frames)
        if x.ndim != 4 or x.shape[1:] != self.in_shape:
            raise ValueError(f"QNetwork: expected frames of shape (N, {', '.join(map(str, self.in_shape))}), "
                             f"got {x.shape}")
        x = x.astype(np.float32) * np.float32(1 / 255)     # scaled here: the buffer keeps uint8
        return self.out(tg.relu(self.hidden(self.features(x))))


def td_targets(target_net: QNetwork, batch: rl.Batch, gamma: float) -> np.ndarray:
    """y = r + γ (1 - done) max_a' Q_target(s', a'), rewards clipped to their sign."""
    with tg.no_grad():
        q_next = target_net(batch.next_obs).data
    return rl.td_target(q_next, np.sign(batch.rewards), batch.terminated, gamma)


def q_loss(qnet: QNetwork, batch: rl.Batch, targets: np.ndarray) -> tg.Tensor:
    """The mean Huber loss (δ = 1) of Q(s, a) - y over the minibatch (y a
    constant): its gradient is the error clipped to [-1, 1], the DQN paper's
    clipping of the error term."""
    q = qnet(batch.obs)
    chosen = np.eye(q.shape[1], dtype=np.float32)[batch.actions]          # one-hot a
    return tg.losses.huber_loss((q * chosen).sum(axis=1), targets)


def copy_into(target: tg.nn.Module, source: tg.nn.Module) -> None:
    target.load_state_dict(source.state_dict())


def scores_figure(game_steps: list[int], scores: list[float], evals: dict[str, np.ndarray],
                  title: str) -> str:
    """Left: each training game's score against the env step it ended at, with
    the moving average. Right: the evaluation games, one dot a game."""
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 3.8), layout="constrained")
    FigureCanvasSVG(fig)
    ax, ax_eval = fig.subplots(1, 2, width_ratios=[2.4, 1.2])
    ax.plot(game_steps, scores, ".", ms=3, color="#93c5fd", label="score of each training game")
    ax.plot(game_steps, moving_average(scores, WINDOW), color="#1d4ed8", lw=2.0,
            label=f"mean of the last {WINDOW} games")
    ax.set(xlabel="environment steps (4 frames each)", ylabel="game score (5 lives)",
           title="training (ε-greedy)")
    ax.legend(loc="upper left", fontsize=8)
    jitter = np.random.default_rng(0).uniform(-0.18, 0.18, size=max(len(v) for v in evals.values()))
    colours = ["#1d4ed8", "#64748b", "#9ca3af"]
    for x, ((label, r), colour) in enumerate(zip(evals.items(), colours)):
        ax_eval.plot(x + jitter[:len(r)], r, "o", ms=3, alpha=0.6, color=colour)
        ax_eval.plot([x - 0.3, x + 0.3], [r.mean()] * 2, color="black", lw=2)
    ax_eval.set(xticks=range(len(evals)),
                xticklabels=[f"{k}\n{v.mean():.1f} ± {v.std():.1f}" for k, v in evals.items()],
                xlim=(-0.6, len(evals) - 0.4), ylabel="score of each evaluation game",
                title=f"{len(next(iter(evals.values())))} games, the same seeds")
    for a in (ax, ax_eval):
        a.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    return svg_text(fig)


def observation_figure(obs: np.ndarray) -> str:
    """The 4 stacked 84 × 84 grayscale frames of one observation, oldest first."""
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 2.8), layout="constrained")
    FigureCanvasSVG(fig)
    axes = fig.subplots(1, len(obs))
    for i, (ax, frame) in enumerate(zip(axes, obs)):
        ax.imshow(frame, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"frame t{i - len(obs) + 1:+d}" if i < len(obs) - 1 else "frame t",
                     fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"one observation: {obs.shape[0]} stacked frames, {obs.shape[1]}×{obs.shape[2]} "
                 f"{obs.dtype} (each the max of 2 emulator frames, 4 emulator frames apart)",
                 fontsize=9)
    return svg_text(fig)


def sample_observation(seed: int, steps: int = 16) -> np.ndarray:
    """An observation from a few random steps into a game (the ball in play)."""
    env = rl.make_atari(ENV_ID, seed=seed)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(2, 4)))   # RIGHT/LEFT
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return np.asarray(obs)


def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        minutes: Optional[float] = None, seed: int = SEED) -> dict[str, Any]:
    """Train for `minutes` of wall clock, evaluate against random, draw;
    returns {"figures", "results", "reproduces"}. `data` is ignored."""
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
    cfg = CONFIGS["quick" if quick else "full"]
    budget = 60.0 * (cfg["minutes"] if minutes is None else minutes)
    env = rl.make_atari(ENV_ID, seed=seed, frame_skip=FRAME_SKIP, screen_size=SCREEN,
                        stack=STACK, max_episode_steps=cfg["max_steps"])
    n_actions = int(env.action_space.n)
    obs_shape = env.observation_space.shape
    ex.data_source = (f"gymnasium {ENV_ID} via ale-py (games played by the agent; training "
                      f"seeded {seed}, evaluation games seeded {EVAL_SEED}..)")
    print(f"data: {ex.data_source}", flush=True)
    qnet, target = QNetwork(n_actions, seed=seed), QNetwork(n_actions, seed=seed)
    copy_into(target, qnet)
    opt = tg.optim.Adam(qnet.parameters(), lr=cfg["lr"])
    buf = rl.ReplayBuffer(cfg["capacity"], obs_shape, obs_dtype=np.uint8, seed=seed)
    explore = rl.LinearSchedule(EPS_START, EPS_END, steps=max(1, int(EPS_FRACTION * budget * 1000)))
    rng = np.random.default_rng(seed)
    best = rl.BestCheckpoint(ex.out / "qnet.npz")
    print(f"Q-network {qnet.num_parameters():,} parameters, {n_actions} actions "
          f"{env.unwrapped.get_action_meanings()}; replay of {cfg['capacity']:,} uint8 "
          f"observations {obs_shape} (allocated {buf.nbytes / 2**20:.0f} MiB, pages touched as "
          f"filled); budget {budget / 60:.1f} min", flush=True)

    steps, updates, game_score, lives = 0, 0, 0.0, None
    game_steps: list[int] = []
    losses: list[float] = []
    load_start = os.getloadavg()
    obs, info = env.reset(seed=seed)
    obs = np.asarray(obs)
    lives = info.get("lives")
    t0 = last_print = time.perf_counter()
    with rl.Progress(None, "DQN Breakout", unit="step", window=WINDOW) as bar:   # type: ignore[arg-type]
        while time.perf_counter() - t0 < budget:
            elapsed_ms = int(1000 * (time.perf_counter() - t0))
            eps = 1.0 if steps < cfg["learn_start"] else explore(elapsed_ms)
            if rng.random() < eps:
                action = int(rng.integers(n_actions))
            else:
                with tg.no_grad():
                    action = int(np.argmax(qnet(obs[None]).data[0]))
            next_obs, reward, terminated, truncated, info = env.step(action)
            next_obs = np.asarray(next_obs)
            life_lost = lives is not None and info.get("lives", lives) < lives
            lives = info.get("lives", lives)
            # A lost life ends the value's horizon (no bootstrapping past it), as
            # in the paper; the game itself goes on.
            buf.add(obs, action, float(reward), next_obs, bool(terminated or life_lost),
                    truncated=bool(truncated))
            game_score += float(reward)
            steps += 1
            obs = next_obs
            if terminated or truncated:
                game_steps.append(steps)
                bar.update(ret=game_score)
                if steps > cfg["learn_start"] and len(bar.returns) >= WINDOW:
                    best.update(np.mean(bar.returns[-WINDOW:]), qnet.state_dict())
                game_score = 0.0
                obs, info = env.reset()
                obs = np.asarray(obs)
                lives = info.get("lives")
            else:
                bar.update()
            if steps >= cfg["learn_start"] and steps % cfg["train_every"] == 0:
                batch = buf.sample(cfg["batch"])
                loss = q_loss(qnet, batch, td_targets(target, batch, GAMMA))
                opt.zero_grad()
                loss.backward()
                opt.step()
                updates += 1
                losses.append(float(loss.item()))
            if steps % cfg["target_every"] == 0:
                copy_into(target, qnet)
            now = time.perf_counter()
            if now - last_print >= (60 if not quick else 1):
                last_print = now
                print(f"{(now - t0) / 60:5.1f} min: {steps:,} steps ({steps / (now - t0):.1f}/s), "
                      f"{len(bar.returns)} games, mean score of the last {WINDOW} "
                      f"{bar.running_return:.2f}, ε {eps:.2f}, {updates:,} updates, loss "
                      f"{np.mean(losses[-500:]) if losses else math.nan:.4f}, replay "
                      f"{len(buf):,} ({buf.nbytes / 2**20:.0f} MiB)", flush=True)
    train_seconds = time.perf_counter() - t0
    load_end = os.getloadavg()
    scores = bar.returns
    print(f"trained {train_seconds / 60:.1f} min: {steps:,} env steps = {steps * FRAME_SKIP:,} "
          f"frames, {len(scores)} games, {updates:,} updates"
          + (" (interrupted)" if bar.interrupted else ""), flush=True)

    final_state = qnet.state_dict()
    kept = "best checkpoint"
    if best.saves:
        qnet.load_state_dict(best.load())
    else:                     # too short for a 20-game mean after learning started
        tg.save(final_state, ex.out / "qnet.npz")
        kept = "final network (no checkpoint yet)"

    eval_rng = np.random.default_rng(seed + 1)

    def make_policy(net: QNetwork) -> Any:
        def policy(o: np.ndarray) -> int:
            rl.check_observation(o, obs_shape, "dqn_breakout")
            if eval_rng.random() < EVAL_EPSILON:
                return int(eval_rng.integers(n_actions))
            return int(np.argmax(net(np.asarray(o)[None]).data[0]))
        return policy

    def random_policy(o: np.ndarray) -> int:
        return int(eval_rng.integers(n_actions))

    t1 = time.perf_counter()
    eval_env = rl.make_atari(ENV_ID, frame_skip=FRAME_SKIP, screen_size=SCREEN, stack=STACK,
                             max_episode_steps=cfg["max_steps"])
    games = cfg["eval_games"]
    agent = rl.evaluate(make_policy(qnet), eval_env, games, seed=EVAL_SEED)
    rand = rl.evaluate(random_policy, eval_env, games, seed=EVAL_SEED)
    final_net = QNetwork(n_actions, seed=seed)
    final_net.load_state_dict(final_state)
    final = rl.evaluate(make_policy(final_net), eval_env, games, seed=EVAL_SEED)
    eval_seconds = time.perf_counter() - t1
    print(f"evaluation over {games} games (ε = {EVAL_EPSILON}): {kept} {agent.mean():.2f} ± "
          f"{agent.std():.2f}, final network {final.mean():.2f} ± {final.std():.2f}, random "
          f"policy {rand.mean():.2f} ± {rand.std():.2f} ({eval_seconds:.0f} s)", flush=True)

    ex.results.update(
        eval_return_mean=float(agent.mean()), eval_return_std=float(agent.std()),
        eval_policy=f"{kept}, ε-greedy with ε = {EVAL_EPSILON}",
        random_return_mean=float(rand.mean()), random_return_std=float(rand.std()),
        final_eval_return_mean=float(final.mean()), final_eval_return_std=float(final.std()),
        eval_games=games, eval_seed=EVAL_SEED, eval_epsilon=EVAL_EPSILON,
        episodes=len(scores), env_steps=steps, frames=steps * FRAME_SKIP, frame_skip=FRAME_SKIP,
        fire_steps=int(env.get_wrapper_attr("fire_steps")),   # pressed for the agent, not counted
        minutes=round(train_seconds / 60, 2), budget_minutes=round(budget / 60, 2),
        updates=updates, interrupted=bar.interrupted,
        best_train_score_mean_20=None if not best.saves or math.isinf(best.score) else best.score,
        final_train_score_mean_20=bar.running_return if scores else None,
        train_score_max=max(scores) if scores else None,
        replay_capacity=cfg["capacity"], replay_transitions=len(buf),
        replay_mib=round(buf.nbytes / 2**20, 1),
        steps_per_second=round(steps / train_seconds, 1), seed=seed, gamma=GAMMA,
        batch=cfg["batch"], optimizer=f"Adam(lr={cfg['lr']})", loss="Huber (δ = 1)",
        learn_start=cfg["learn_start"], train_every=cfg["train_every"],
        target_every=cfg["target_every"],
        epsilon=f"1 for the first {cfg['learn_start']} steps, then {EPS_START} → {EPS_END} "
                f"linearly over the first {EPS_FRACTION:.0%} of the budget",
        load_average_start=[round(x, 2) for x in load_start],
        load_average_end=[round(x, 2) for x in load_end],
        train_seconds=round(train_seconds, 1), eval_seconds=round(eval_seconds, 1),
        blas_threads=os.environ.get("OPENBLAS_NUM_THREADS", "unset"), cpus=os.cpu_count())
    ex.figure(scores_figure(game_steps, scores,
                            {"DQN (kept)": agent, "DQN (final)": final, "random": rand},
                            f"DQN on Breakout, {train_seconds / 60:.0f} min on a CPU: "
                            f"{steps:,} steps ({steps * FRAME_SKIP:,} frames), {len(scores)} games"),
              "scores.svg",
              "Left: the score of every training game (5 lives, ε-greedy exploration) against the "
              f"environment step it ended at, and the mean of the last {WINDOW} games. Right: "
              f"{games} evaluation games from the same seeds for each policy, one dot a game, the "
              f"black bar their mean: the kept network (the best {WINDOW}-game training mean) and "
              f"the final one, both with ε = {EVAL_EPSILON}, and uniformly random actions.")
    ex.figure(observation_figure(sample_observation(EVAL_SEED)), "observation.svg",
              "What the network sees: one observation, the last 4 preprocessed frames (grayscale, "
              "84×84, each the max of two consecutive emulator frames, taken 4 emulator frames "
              "apart), oldest on the left. The ball's positions across the frames show where it "
              "is going, which no single frame can.")
    return ex.finish()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--minutes", type=float, default=None,
                   help=f"wall-clock training budget (default {CONFIGS['full']['minutes']:g}, "
                        f"{CONFIGS['quick']['minutes'] * 60:g} s with --quick); evaluation "
                        "comes after it")
    p.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    args = p.parse_args()
    run(args.out, args.quick, None, args.minutes, args.seed)


if __name__ == "__main__":
    main()
