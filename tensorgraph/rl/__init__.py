"""Deep reinforcement learning (Fundamentals of Deep Learning, chapter 9).

An agent observes a state s_t, picks an action a_t, and receives a reward
r_t and the next state; it learns a policy that maximises the expected
return G_t = Σ_k γ^k r_{t+k}. This package holds the pieces that are not
networks: environments (gymnasium, imported only when an environment is
made), an experience replay buffer, ε-greedy exploration with its schedule,
evaluation, a progress bar that turns Ctrl-C into a clean stop, and a
checkpoint that keeps the best policy so far.

`import tensorgraph` does not import this package, and `import
tensorgraph.rl` works without gymnasium: `make_env` asks for it, with the
hint ``pip install 'tensorgraph[rl]'`` (gymnasium and ale-py).

    env = rl.make_env("CartPole-v1", seed=0)
    buf = rl.ReplayBuffer(10_000, env.observation_space.shape, seed=0)
    eps = rl.LinearSchedule(1.0, 0.05, steps=5_000)
    a = rl.epsilon_greedy(q_values, eps(step), rng)
    buf.add(obs, a, r, next_obs, terminated)
    batch = buf.sample(64)                   # rl.Batch of numpy arrays
    returns = rl.evaluate(greedy_policy, env, episodes=100)
"""
from __future__ import annotations

from typing import Any

from .envs import EnvNotFoundError, make_env
from .policy import LinearSchedule, check_observation, epsilon_greedy, evaluate, td_target
from .progress import BestCheckpoint, Progress
from .replay import Batch, ReplayBuffer

__all__ = ["make_env", "EnvNotFoundError", "HideVelocity", "make_atari", "ReplayBuffer", "Batch",
           "LinearSchedule", "epsilon_greedy", "td_target", "check_observation", "evaluate",
           "Progress", "BestCheckpoint"]


def __getattr__(name: str) -> Any:
    # HideVelocity is a gymnasium wrapper: defining it imports gymnasium, so
    # only when it is asked for.
    if name == "HideVelocity":
        from .envs import gymnasium
        gymnasium()  # the install hint if it is missing
        from .wrappers import HideVelocity
        return HideVelocity
    if name == "make_atari":   # imports gymnasium too (Atari pipeline, rl/atari.py)
        from .envs import gymnasium as _gym
        _gym()
        from .atari import make_atari
        return make_atari
    raise AttributeError(f"module 'tensorgraph.rl' has no attribute {name!r}")
