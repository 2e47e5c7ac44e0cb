"""Policy gradients on the pole-cart: Fundamentals of Deep Learning, chapter 9
("Deep Reinforcement Learning", "Policy Learning via Policy Gradients",
"Pole-Cart with Policy Gradients").

The agent balances a pole on a cart (gymnasium's `CartPole-v1`): it observes
s = (cart position, cart velocity, pole angle, pole angular velocity), pushes
the cart left or right, and receives a reward of 1 for every step the pole
stays up; an episode ends when the pole falls past 12° or the cart leaves the
track, or after 500 steps. CartPole-v1 counts as solved at an average return
of 475.

The policy π_θ(a | s) is a small network (4 → 64 tanh → 2, a log_softmax over
the two actions). REINFORCE (Williams 1992) with a baseline: play a batch of
episodes with actions sampled from π_θ, compute each step's discounted return
G_t = Σ_k γ^k r_{t+k} (γ = 0.99), and follow

    ∇_θ J ≈ mean_t ∇_θ log π_θ(a_t | s_t) · A_t,   A_t = G_t - V_φ(s_t),

where the baseline V_φ is a second network (4 → 64 tanh → 1) fitted to G_t by
mean squared error: subtracting it does not bias the gradient and lowers its
variance. The advantages A_t are normalised to mean 0 and standard deviation 1
within each batch (the book normalises the discounted returns the same way).
Both networks are trained by Adam. Training stops when the last 100 training
episodes average at least 475, or after a fixed number of episodes.

The policy kept is the best checkpoint (`rl.BestCheckpoint`: the highest
100-episode training average so far, saved with `tg.save`); it is evaluated on
100 new episodes (`rl.evaluate`, each from its own seeded start), acting
greedily (the more probable action), and, for comparison, sampling its actions.
A progress bar (on a terminal) shows the running return; Ctrl-C stops training
cleanly, keeping and evaluating the best checkpoint.

Writes returns.svg (training returns with their 100-episode moving average,
and the evaluation returns), policy.npz (the best checkpoint) and results.json.

    python examples/policy_gradient.py [--out DIR] [--quick] [--episodes N] [--seed S]

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

NAME = "policy_gradient"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 9: policy gradients (REINFORCE with a "
              "learned baseline) balancing the pole-cart")
ENV_ID, SOLVED, SEED = "CartPole-v1", 475.0, 0
EVAL_SEED = 10_000                      # evaluation episodes start from states never trained on
# episodes played per update, the most training episodes, learning rates, hidden units,
# evaluation episodes
CONFIGS = {"full": dict(batch=10, episodes=2000, lr=1e-2, value_lr=1e-2, hidden=64, evals=100),
           "quick": dict(batch=4, episodes=12, lr=1e-2, value_lr=1e-2, hidden=8, evals=5)}
GAMMA = 0.99
WINDOW = 100                            # episodes in the running mean (the solve criterion's)


class MLP(tg.nn.Module):
    """in → hidden tanh → out."""

    def __init__(self, n_in: int, hidden: int, n_out: int, seed: int) -> None:
        super().__init__()
        self.hidden = tg.nn.Linear(n_in, hidden, seed=seed)
        self.out = tg.nn.Linear(hidden, n_out, seed=seed + 1)

    def forward(self, x: Any) -> tg.Tensor:
        return self.out(tg.tanh(self.hidden(x)))


def log_policy(policy: MLP, obs: Any) -> tg.Tensor:
    """log π(a | s) for both actions, (N, 2)."""
    return tg.log_softmax(policy(obs), axis=-1)


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = r_t + γ G_{t+1} of one episode, back to front."""
    out = np.zeros(len(rewards), np.float32)
    g = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        g = rewards[t] + gamma * g
        out[t] = g
    return out


def play(policy: MLP, envs: list[Any], rng: np.random.Generator
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float]]:
    """One episode in each env, in lockstep (one forward pass for all the
    running episodes per step), actions sampled from π. Returns the states
    (N, 4), actions (N,) and discounted returns G_t (N,) of all steps, and
    each episode's return Σ_t r_t."""
    obs = [env.reset()[0] for env in envs]
    states: list[list[np.ndarray]] = [[] for _ in envs]
    actions: list[list[int]] = [[] for _ in envs]
    rewards: list[list[float]] = [[] for _ in envs]
    running = list(range(len(envs)))
    while running:
        x = np.stack([obs[i] for i in running])
        with tg.no_grad():
            p = np.exp(log_policy(policy, x).data)
        chosen = (rng.random(len(running)) > p[:, 0]).astype(np.int64)   # 1 with prob p[:, 1]
        still = []
        for i, a in zip(running, chosen):
            states[i].append(obs[i])
            actions[i].append(int(a))
            obs[i], r, terminated, truncated, _ = envs[i].step(int(a))
            rewards[i].append(float(r))
            if not (terminated or truncated):
                still.append(i)
        running = still
    G = np.concatenate([discounted_returns(np.array(r), GAMMA) for r in rewards])
    return (np.concatenate([np.array(s, np.float32) for s in states]),
            np.concatenate([np.array(a, np.int64) for a in actions]), G,
            [float(sum(r)) for r in rewards])


def policy_loss(policy: MLP, states: np.ndarray, actions: np.ndarray,
                advantages: np.ndarray) -> tg.Tensor:
    """-mean_t log π(a_t | s_t) A_t: its gradient is minus the REINFORCE
    estimate of ∇_θ J (the advantages are constants, not differentiated)."""
    chosen = np.eye(2, dtype=np.float32)[actions]               # one-hot a_t
    logp = (log_policy(policy, states) * chosen).sum(axis=1)     # log π(a_t | s_t)
    return -(logp * advantages.astype(np.float32)).mean()


def update(policy: MLP, value: MLP, opt: Any, value_opt: Any, states: np.ndarray,
           actions: np.ndarray, G: np.ndarray) -> tuple[float, float]:
    """One REINFORCE step with the learned baseline, and one value step.
    The value network predicts G_t (1 - γ), returns in units of their largest
    possible value 1 / (1 - γ), so that its targets are at most 1."""
    scale = 1.0 - GAMMA
    v = value(states)[:, 0]
    advantages = G - v.data / scale
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    loss = policy_loss(policy, states, actions, advantages)
    opt.zero_grad()
    loss.backward()
    opt.step()
    value_loss = tg.losses.mse(v, G * scale)
    value_opt.zero_grad()
    value_loss.backward()
    value_opt.step()
    return float(loss.item()), float(value_loss.item())


def returns_figure(train: list[float], greedy: np.ndarray, sampled: np.ndarray,
                   title: str) -> str:
    """Left: each training episode's return and the 100-episode moving average,
    with the 475 line. Right: the evaluation episodes' returns."""
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 3.8), layout="constrained")
    FigureCanvasSVG(fig)
    ax, ax_eval = fig.subplots(1, 2, width_ratios=[2.4, 1])
    ep = np.arange(1, len(train) + 1)
    ax.plot(ep, train, color="#93c5fd", lw=0.7, label="return of each training episode")
    ax.plot(ep, moving_average(np.array(train), WINDOW), color="#1d4ed8", lw=2.0,
            label=f"mean of the last {WINDOW} episodes")
    ax.axhline(SOLVED, color="#dc2626", ls="--", lw=1.2, label=f"solved: {WINDOW}-episode mean ≥ {SOLVED:.0f}")
    ax.set(xlabel="training episode", ylabel="return (steps the pole stayed up)",
           ylim=(0, 520), title="training (actions sampled from the policy)")
    ax.legend(loc="upper left", fontsize=8)
    jitter = np.random.default_rng(0).uniform(-0.18, 0.18, size=len(greedy))
    for x, (r, colour) in enumerate([(greedy, "#1d4ed8"), (sampled, "#9333ea")]):
        ax_eval.plot(x + jitter[:len(r)], r, "o", ms=3, alpha=0.5, color=colour)
        ax_eval.plot([x - 0.3, x + 0.3], [r.mean()] * 2, color="black", lw=2)
    ax_eval.axhline(SOLVED, color="#dc2626", ls="--", lw=1.2)
    ax_eval.set(xticks=[0, 1], xticklabels=[f"greedy\nmean {greedy.mean():.1f}",
                                            f"sampled\nmean {sampled.mean():.1f}"],
                xlim=(-0.6, 1.6), ylabel="return of each evaluation episode", ylim=(0, 520),
                title=f"{len(greedy)} evaluation episodes")
    for a in (ax, ax_eval):
        a.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    return svg_text(fig)


def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        episodes: Optional[int] = None, seed: int = SEED) -> dict[str, Any]:
    """Train, evaluate and draw; returns {"figures", "results", "reproduces"}.
    `data` is ignored (the environment makes the data); `seed` seeds the
    networks, the training environments and the sampled actions."""
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
    cfg = CONFIGS["quick" if quick else "full"]
    max_episodes = cfg["episodes"] if episodes is None else episodes
    envs = [rl.make_env(ENV_ID, seed=seed * 1000 + i) for i in range(cfg["batch"])]
    obs_shape = envs[0].observation_space.shape
    ex.data_source = (f"gymnasium {ENV_ID} (episodes made by the agent; training envs seeded "
                      f"{seed * 1000}..{seed * 1000 + cfg['batch'] - 1}, evaluation episodes seeded from "
                      f"{EVAL_SEED})")
    print(f"data: {ex.data_source}", flush=True)
    policy = MLP(obs_shape[0], cfg["hidden"], 2, seed=seed)
    value = MLP(obs_shape[0], cfg["hidden"], 1, seed=seed + 10)
    opt = tg.optim.Adam(policy.parameters(), lr=cfg["lr"])
    value_opt = tg.optim.Adam(value.parameters(), lr=cfg["value_lr"])
    rng = np.random.default_rng(seed)
    best = rl.BestCheckpoint(ex.out / "policy.npz")
    print(f"policy {policy.num_parameters()} parameters, baseline {value.num_parameters()}; "
          f"{cfg['batch']} episodes per update, at most {max_episodes} episodes", flush=True)

    env_steps, updates, solved_at = 0, 0, None
    t0 = time.perf_counter()
    with rl.Progress(max_episodes, "REINFORCE", window=WINDOW) as bar:
        while len(bar.returns) < max_episodes:
            states, actions, G, rets = play(policy, envs, rng)
            update(policy, value, opt, value_opt, states, actions, G)
            env_steps += len(states)
            updates += 1
            for r in rets:
                bar.update(ret=r)
            if len(bar.returns) >= min(WINDOW, max_episodes):
                best.update(bar.running_return, policy.state_dict())
            if updates % 10 == 0:
                print(f"episode {len(bar.returns)}: mean return of the last {WINDOW} "
                      f"{bar.running_return:.1f} ({time.perf_counter() - t0:.1f} s)", flush=True)
            if len(bar.returns) >= WINDOW and bar.running_return >= SOLVED:
                solved_at = len(bar.returns)
                print(f"solved after {solved_at} episodes: the last {WINDOW} average "
                      f"{bar.running_return:.1f}", flush=True)
                break
    train_seconds = time.perf_counter() - t0
    if best.saves:                           # else (a short run) the final policy is kept
        policy.load_state_dict(best.load())
    else:
        best.update(bar.running_return, policy.state_dict())

    def greedy(obs: np.ndarray) -> int:
        rl.check_observation(obs, obs_shape, "policy_gradient")
        return int(np.argmax(policy(obs[None]).data[0]))

    def sampled(obs: np.ndarray) -> int:
        p = np.exp(log_policy(policy, obs[None]).data[0])
        return int(rng.random() > p[0])

    t1 = time.perf_counter()
    eval_env = rl.make_env(ENV_ID)
    greedy_returns = rl.evaluate(greedy, eval_env, cfg["evals"], seed=EVAL_SEED)
    sampled_returns = rl.evaluate(sampled, eval_env, cfg["evals"], seed=EVAL_SEED)
    eval_seconds = time.perf_counter() - t1
    print(f"evaluation over {cfg['evals']} episodes: greedy {greedy_returns.mean():.1f} ± "
          f"{greedy_returns.std():.1f}, sampled {sampled_returns.mean():.1f} ± "
          f"{sampled_returns.std():.1f}", flush=True)

    ex.results.update(
        eval_return_mean=float(greedy_returns.mean()), eval_return_std=float(greedy_returns.std()),
        eval_episodes=cfg["evals"], eval_policy="greedy (argmax of π) on the best checkpoint",
        eval_sampled_return_mean=float(sampled_returns.mean()),
        eval_sampled_return_std=float(sampled_returns.std()),
        eval_solved=bool(greedy_returns.mean() >= SOLVED),
        train_episodes=len(bar.returns), env_steps=env_steps, updates=updates,
        solved_at_episode=solved_at, interrupted=bar.interrupted,
        best_train_return_mean_100=best.score, final_train_return_mean_100=bar.running_return,
        seed=seed, episodes_per_update=cfg["batch"], gamma=GAMMA, hidden_units=cfg["hidden"],
        optimizer=f"Adam(lr={cfg['lr']}) for the policy, Adam(lr={cfg['value_lr']}) for the "
                  "baseline",
        baseline="learned value network V(s), MSE to G_t; advantages normalised per batch",
        train_seconds=round(train_seconds, 2), eval_seconds=round(eval_seconds, 2),
        blas_threads=os.environ.get("OPENBLAS_NUM_THREADS", "unset"), cpus=os.cpu_count())
    stop = (f"solved after {solved_at} episodes" if solved_at else
            "interrupted" if bar.interrupted else f"stopped after {len(bar.returns)} episodes")
    ex.figure(returns_figure(bar.returns, greedy_returns, sampled_returns,
                             f"REINFORCE on {ENV_ID}: {stop}; greedy evaluation "
                             f"{greedy_returns.mean():.1f} over {cfg['evals']} episodes"),
              "returns.svg",
              "Left: the return (number of steps the pole stayed up, at most 500) of every "
              "training episode, its mean over the last 100 episodes, and the threshold of 475 "
              "at which CartPole-v1 counts as solved; training stops when the mean reaches it. "
              "Right: the kept policy (the best 100-episode mean) on new episodes, one dot an "
              "episode, the black bar their mean: choosing the more probable action (greedy, the "
              "reported eval_return_mean) or sampling its action as in training.")
    return ex.finish()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--episodes", type=int, default=None,
                   help=f"most training episodes (default {CONFIGS['full']['episodes']}, "
                        f"{CONFIGS['quick']['episodes']} with --quick)")
    p.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    args = p.parse_args()
    run(args.out, args.quick, None, args.episodes, args.seed)


if __name__ == "__main__":
    main()
