"""Environments: gymnasium, imported when the first environment is made."""
from __future__ import annotations

import difflib
from typing import Any, Optional

INSTALL_HINT = "pip install 'tensorgraph[rl]'  (gymnasium and ale-py)"


class EnvNotFoundError(LookupError):
    """`make_env` was given an id that no installed package registers."""


def gymnasium() -> Any:
    """The gymnasium module, or an ImportError with the install hint."""
    try:
        import gymnasium
    except ImportError as e:
        raise ImportError(f"tensorgraph.rl needs gymnasium for environments: {INSTALL_HINT}"
                          ) from e
    return gymnasium


def _register_ale(gym: Any, env_id: str) -> None:
    """Atari ids ("ALE/Breakout-v5") are registered by importing ale_py."""
    try:
        import ale_py
    except ImportError as e:
        raise EnvNotFoundError(f"make_env: {env_id!r} is an Atari environment, which needs "
                               f"ale-py: {INSTALL_HINT}") from e
    gym.register_envs(ale_py)


def make_env(env_id: str, *, seed: Optional[int] = None, hide_velocity: bool = False,
             render_mode: Optional[str] = None, **kwargs: Any) -> Any:
    """`gymnasium.make(env_id, render_mode=..., **kwargs)`, with the Atari
    ("ALE/...") ids registered.

    seed           seeds the environment's random stream (one `reset(seed=seed)`
                   here; later `reset()` calls continue that stream) and its
                   action and observation spaces' samplers
    hide_velocity  wrap in `rl.HideVelocity` (CartPole: cart position and
                   pole angle only, the partially observed pole-cart)

    An id that is not registered raises `EnvNotFoundError` naming it, the
    registered ids closest to it, and what to install.
    """
    gym = gymnasium()
    if env_id.startswith("ALE/"):
        _register_ale(gym, env_id)
    try:
        env = gym.make(env_id, render_mode=render_mode, **kwargs)
    except gym.error.UnregisteredEnv as e:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
        close = close or [k for k in gym.registry if k.lower().startswith(env_id.lower()[:4])][:3]
        near = f"; close matches: {', '.join(close)}" if close else ""
        raise EnvNotFoundError(f"make_env: no environment {env_id!r} is registered ({e}){near}. "
                               f"Atari games are 'ALE/<Game>-v5' ({INSTALL_HINT}); other "
                               "suites need their own package installed") from None
    if hide_velocity:
        from .wrappers import HideVelocity
        env = HideVelocity(env)
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
        env.observation_space.seed(seed)
    return env
