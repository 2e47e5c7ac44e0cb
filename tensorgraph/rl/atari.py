"""Atari games as the DQN paper saw them (Mnih et al., Nature 2015; the book's
Breakout, chapter 9): gymnasium's own wrappers, put together in one call.

    env = rl.make_atari("ALE/Breakout-v5", seed=0)
    obs, info = env.reset()          # obs: (4, 84, 84) uint8, the last 4 frames

The pipeline, from the emulator out:

1. The ALE game with ``frameskip=1``: AtariPreprocessing does the skipping
   (a base env that skipped too would skip 4 × 4 frames).
2. `gymnasium.wrappers.AtariPreprocessing`: up to `noop_max` random no-ops
   after each reset (different starting states), the action repeated for
   `frame_skip` frames with the rewards summed, the max of the last two frames
   (Atari sprites flicker: some are drawn only every other frame), grayscale,
   and a resize to `screen_size` × `screen_size` (cv2.INTER_AREA; it needs
   opencv-python-headless).
3. `FireOnReset` (here): in Breakout nothing moves until the player presses
   FIRE, after the reset and after every lost life. An agent that has not yet
   learned to press it wastes its budget watching an empty screen, so the
   wrapper presses it (only in games whose action 1 is FIRE).
4. `gymnasium.wrappers.FrameStackObservation`: the last `stack` frames, so
   that one observation shows which way the ball moves; the first observation
   of an episode repeats its frame (padding "reset").

Observations stay uint8 (0..255): a replay buffer of a million of them is
7 GB as uint8, 28 GB as float32. Scale them to [0, 1] in the network.
"""
from __future__ import annotations

from typing import Any, Optional

import gymnasium
import numpy as np

from .envs import make_env

CV2_HINT = ("pip install opencv-python-headless  (or pip install 'tensorgraph[rl]'): "
            "gymnasium's AtariPreprocessing resizes frames with cv2")


class FireOnReset(gymnasium.Wrapper):
    """Press FIRE (action 1) after every reset and, with `on_life_loss`,
    after every lost life that does not end the game, in games that need it
    to serve the ball (Breakout). The FIRE step is one more environment step
    the agent does not choose: after a reset its reward is added to nothing
    (it is 0 in Breakout), after a lost life it is added to the step that
    lost the life, whose observation becomes the one after FIRE.

    `info["lives"]` is passed on unchanged, so a learner can still see the
    lost life (and store that transition as terminal, as the DQN paper did).
    `fire_steps` counts the steps pressed here."""

    def __init__(self, env: Any, on_life_loss: bool = True) -> None:
        super().__init__(env)
        self._ale: Any = env.unwrapped.ale            # the emulator (AtariEnv), for lives()
        meanings = env.unwrapped.get_action_meanings()
        if len(meanings) < 2 or meanings[1] != "FIRE":
            raise ValueError(f"FireOnReset: the game's action 1 must be FIRE, got actions "
                             f"{meanings}")
        self.on_life_loss = on_life_loss
        self.fire_steps = 0
        self._lives = 0

    def reset(self, **kwargs: Any) -> Any:
        obs, info = self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self._fire()
        if terminated or truncated:           # (cannot happen in Breakout) start over
            obs, info = self.env.reset()
        return obs, info

    def _fire(self) -> Any:
        out = self.env.step(1)
        self.fire_steps += 1
        self._lives = int(self._ale.lives())
        return out

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        lives = int(self._ale.lives())
        if self.on_life_loss and lives < self._lives and not (terminated or truncated):
            obs, r, terminated, truncated, _ = self._fire()
            reward += r
        self._lives = lives
        return obs, reward, terminated, truncated, info


def make_atari(env_id: str = "ALE/Breakout-v5", seed: Optional[int] = None, *,
               frame_skip: int = 4, screen_size: int = 84, stack: int = 4,
               terminal_on_life_loss: bool = False, noop_max: int = 30,
               fire_on_reset: Optional[bool] = None, repeat_action_probability: float = 0.25,
               render_mode: Optional[str] = None, **kwargs: Any) -> Any:
    """An Atari game preprocessed as in the DQN paper: observations of shape
    (stack, screen_size, screen_size), uint8 grayscale, each agent step
    `frame_skip` emulator frames (see the module docstring for the pipeline).

    env_id            an "ALE/<Game>-v5" id (ale-py ships the ROMs)
    seed              seeds the game's random stream (sticky actions, the
                      random no-ops) and the action space's sampler
    terminal_on_life_loss
                      end the episode (terminated) when a life is lost; the
                      next reset then starts a new game. False keeps whole
                      games as episodes; a learner can read info["lives"]
    fire_on_reset     press FIRE after resets and lost lives (`FireOnReset`);
                      None: when the game's action 1 is FIRE
    repeat_action_probability
                      sticky actions: the probability that the emulator
                      repeats the previous action instead (v5's default 0.25
                      makes the game stochastic; 0 makes it deterministic
                      given the seed)
    kwargs            passed to `gymnasium.make` (e.g. max_episode_steps)

    A wrong id raises `rl.EnvNotFoundError` naming close matches; a missing
    cv2 an ImportError saying what to install.
    """
    if not env_id.startswith("ALE/"):
        raise ValueError(f"make_atari: env_id must be an Atari id 'ALE/<Game>-v5' (e.g. "
                         f"'ALE/Breakout-v5'), got {env_id!r}; use rl.make_env for other "
                         "environments")
    for arg, n, low in (("frame_skip", frame_skip, 1), ("screen_size", screen_size, 1),
                        ("stack", stack, 1), ("noop_max", noop_max, 0)):
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < low:
            raise ValueError(f"make_atari: {arg} must be an int >= {low}, got {n!r}")
    try:
        import cv2  # noqa: F401  (AtariPreprocessing imports it in __init__)
    except ImportError as e:
        raise ImportError(f"make_atari needs cv2 for resizing frames: {CV2_HINT}") from e
    env = make_env(env_id, render_mode=render_mode, frameskip=1,
                   repeat_action_probability=repeat_action_probability, **kwargs)
    env = gymnasium.wrappers.AtariPreprocessing(
        env, noop_max=noop_max, frame_skip=frame_skip, screen_size=screen_size,
        terminal_on_life_loss=terminal_on_life_loss, grayscale_obs=True, scale_obs=False)
    atari: Any = env.unwrapped                         # ale_py's AtariEnv
    meanings = atari.get_action_meanings()
    if fire_on_reset is None:
        fire_on_reset = len(meanings) > 1 and meanings[1] == "FIRE"
    if fire_on_reset:
        env = FireOnReset(env, on_life_loss=not terminal_on_life_loss)
    env = gymnasium.wrappers.FrameStackObservation(env, stack)
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
        env.observation_space.seed(seed)
    return env


__all__ = ["make_atari", "FireOnReset"]
