"""Exploration, observation checks and evaluation."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..tensor import no_grad


class LinearSchedule:
    """value(step) = start + (end - start) · min(step / steps, 1): ε decays
    linearly from `start` to `end` over `steps` steps, then stays at `end`."""

    def __init__(self, start: float, end: float, steps: int) -> None:
        if int(steps) != steps or steps < 1:
            raise ValueError(f"LinearSchedule: steps must be a positive integer, got {steps!r}")
        self.start, self.end, self.steps = float(start), float(end), int(steps)

    def __call__(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"LinearSchedule: step must be >= 0, got {step}")
        return self.start + (self.end - self.start) * min(step / self.steps, 1.0)

    def __repr__(self) -> str:
        return f"LinearSchedule(start={self.start}, end={self.end}, steps={self.steps})"


def epsilon_greedy(q_values: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    """With probability ε a uniformly random action, else argmax_a Q(s, a)
    (the first on ties). `q_values` is one state's (A,) array."""
    q = np.asarray(q_values)
    if q.ndim != 1 or q.size == 0:
        raise ValueError(f"epsilon_greedy: q_values must have shape (A,) with A >= 1 actions, "
                         f"got shape {q.shape}")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon_greedy: epsilon must be in [0, 1], got {epsilon}")
    if rng.random() < epsilon:
        return int(rng.integers(q.size))
    return int(np.argmax(q))


def td_target(q_next: Any, rewards: Any, terminated: Any, gamma: float) -> np.ndarray:
    """The Q-learning target (the Bellman backup of chapter 9's DQN)

        y = r + γ (1 − terminated) max_a′ Q_target(s′, a′)

    from the target network's values `q_next` (..., A) of the next states,
    the rewards and terminated flags (...): a constant (not differentiated),
    of q_next's float dtype. Only a terminal state stops the bootstrap: a
    truncated episode (a time limit) still bootstraps, its state had value."""
    q = np.asarray(q_next)
    r, done = np.asarray(rewards), np.asarray(terminated)
    if q.ndim < 1 or q.shape[:-1] != r.shape or done.shape != r.shape:
        raise ValueError(f"td_target: q_next must be (..., actions) over the rewards' shape, and "
                         f"terminated the rewards' shape; got q_next {q.shape}, rewards "
                         f"{r.shape}, terminated {done.shape}")
    dt = q.dtype if q.dtype.kind == "f" else np.dtype(np.float64)
    return (r + gamma * (1.0 - done.astype(dt)) * q.max(axis=-1)).astype(dt, copy=False)


def check_observation(obs: Any, expected_shape: Sequence[int], who: str) -> None:
    """Raise a ValueError naming `who` when an observation's shape is not the
    one the network was built for."""
    shape, expected = np.shape(obs), tuple(expected_shape)
    if shape != expected:
        raise ValueError(f"{who}: observation of shape {shape} but the network expects "
                         f"{expected}")


def evaluate(policy: Callable[[np.ndarray], Any], env: Any, episodes: int = 100,
             seed: int = 0) -> np.ndarray:
    """The undiscounted return Σ_t r_t of `episodes` episodes of `policy`
    (obs -> action, no exploration) in `env`, episode i started with
    `reset(seed=seed + i)` (reproducible, and each episode its own start).
    A policy with a `reset()` method (a recurrent one, holding its state) is
    reset after every `env.reset()`. Runs without recording a graph.
    Returns a float64 array of returns."""
    if episodes < 1:
        raise ValueError(f"evaluate: episodes must be >= 1, got {episodes}")
    returns = np.zeros(episodes)
    with no_grad():
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            reset = getattr(policy, "reset", None)
            if callable(reset):
                reset()
            done = False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(policy(obs))
                returns[i] += float(reward)
                done = terminated or truncated
    return returns
