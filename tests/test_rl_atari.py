"""rl.make_atari with the real ALE Breakout: the observation the DQN paper
used ((4, 84, 84) uint8, frames shifting through the stack), the emulator
frames each step costs (the ALE's own frame counter), FIRE pressed after a
reset and a lost life, seeded games reproducible, and clear errors for a
wrong id, wrong arguments and a missing cv2."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from conftest import require_module
from tensorgraph import rl

BREAKOUT = "ALE/Breakout-v5"


@pytest.fixture(autouse=True)
def _ale() -> None:
    require_module("gymnasium")
    require_module("ale_py")
    require_module("cv2")


def test_observation_is_four_stacked_84x84_uint8_frames() -> None:
    env = rl.make_atari(BREAKOUT, seed=0)
    assert env.observation_space.shape == (4, 84, 84)
    assert env.observation_space.dtype == np.uint8
    obs, info = env.reset(seed=1)
    obs = np.asarray(obs)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert info["lives"] == 5 and obs.max() > 0            # the walls and bricks are drawn
    prev = obs
    for _ in range(6):
        obs = np.asarray(env.step(3)[0])                    # LEFT
        # the stack shifts by one frame a step: the newest frame joins at the end
        assert np.array_equal(obs[:-1], prev[1:])
        prev = obs
    assert not np.array_equal(obs[-1], obs[0])              # the paddle and ball moved


def test_frames_counted_by_the_emulator() -> None:
    """Each agent step is frame_skip emulator frames (the ALE's own
    episode_frame_number), before the ball can reach the paddle."""
    for skip in (4, 2):
        env = rl.make_atari(BREAKOUT, seed=3, frame_skip=skip)
        _, info = env.reset(seed=3)
        start = info["episode_frame_number"]
        for _ in range(10):
            _, _, terminated, truncated, info = env.step(0)
            assert not (terminated or truncated)
        assert info["episode_frame_number"] - start == 10 * skip


def test_fire_is_pressed_after_reset_and_after_a_lost_life() -> None:
    env = rl.make_atari(BREAKOUT, seed=0)
    fires = env.get_wrapper_attr("fire_steps")
    env.reset(seed=0)
    assert env.get_wrapper_attr("fire_steps") == fires + 1
    # Doing nothing, the served ball falls past the paddle: a life is lost, FIRE is
    # pressed again, and the game goes on (whole games are episodes by default).
    lives, steps = 5, 0
    while lives == 5 and steps < 2000:
        _, _, terminated, truncated, info = env.step(0)
        lives, steps = info["lives"], steps + 1
        assert not (terminated or truncated)
    assert lives == 4 and env.get_wrapper_attr("fire_steps") == fires + 2
    # Without FireOnReset, NOOPs never start the game: no life is ever lost.
    idle = rl.make_atari(BREAKOUT, seed=0, fire_on_reset=False)
    idle.reset(seed=0)
    for _ in range(steps + 50):
        _, _, _, _, info = idle.step(0)
    assert info["lives"] == 5


def test_terminal_on_life_loss_ends_the_episode() -> None:
    env = rl.make_atari(BREAKOUT, seed=0, terminal_on_life_loss=True)
    env.reset(seed=0)
    for _ in range(2000):
        _, _, terminated, truncated, info = env.step(0)
        if terminated or truncated:
            break
    assert terminated and info["lives"] == 4


def _play(seed: int, actions: np.ndarray) -> tuple[np.ndarray, list[float]]:
    env = rl.make_atari(BREAKOUT, seed=seed)
    frames, rewards = [np.asarray(env.reset(seed=seed)[0])], []
    for a in actions:
        obs, r, terminated, truncated, _ = env.step(int(a))
        frames.append(np.asarray(obs))
        rewards.append(float(r))
        if terminated or truncated:
            frames.append(np.asarray(env.reset()[0]))
    return np.stack(frames), rewards


def test_seeded_games_are_reproducible() -> None:
    actions = np.random.default_rng(0).integers(0, 4, size=150)
    a, ra = _play(5, actions)
    b, rb = _play(5, actions)
    assert np.array_equal(a, b) and ra == rb
    c, _ = _play(6, actions)     # another seed: other no-ops and sticky actions
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_wrong_id_names_close_matches() -> None:
    with pytest.raises(rl.EnvNotFoundError, match=r"'ALE/Breakot-v5'.*ALE/Breakout-v5"):
        rl.make_atari("ALE/Breakot-v5")
    with pytest.raises(ValueError, match=r"make_atari: env_id must be an Atari id "
                                         r"'ALE/<Game>-v5'.*got 'CartPole-v1'.*rl.make_env"):
        rl.make_atari("CartPole-v1")


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match=r"make_atari: frame_skip must be an int >= 1, got 0"):
        rl.make_atari(BREAKOUT, frame_skip=0)
    with pytest.raises(ValueError, match=r"make_atari: stack must be an int >= 1, got 2.5"):
        rl.make_atari(BREAKOUT, stack=2.5)   # type: ignore[arg-type]
    # Freeway's actions are NOOP, UP, DOWN: no FIRE to press
    with pytest.raises(ValueError, match=r"FireOnReset: the game's action 1 must be FIRE, got "
                                         r"actions \['NOOP', 'UP', 'DOWN'\]"):
        rl.make_atari("ALE/Freeway-v5", fire_on_reset=True)
    env = rl.make_atari("ALE/Freeway-v5")                    # None: only where FIRE exists
    assert np.asarray(env.reset(seed=0)[0]).shape == (4, 84, 84)


def test_missing_cv2_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)            # as if not installed
    with pytest.raises(ImportError, match=r"make_atari needs cv2.*opencv-python-headless"):
        rl.make_atari(BREAKOUT)
