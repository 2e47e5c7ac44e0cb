"""tensorgraph.rl: the replay buffer's contents, sampling distribution and
sequence masks (checked against a plain list of the transitions kept here),
the schedule and ε-greedy against their formulas, environments (HideVelocity,
unknown ids), evaluation, the Ctrl-C-safe progress bar and the best checkpoint."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require_module
from tensorgraph import rl

REPO = Path(__file__).resolve().parent.parent


def fill(buf: rl.ReplayBuffer, episodes: list[int], start: int = 0,
         truncate_last: bool = False) -> list[tuple]:
    """Add episodes of the given lengths to `buf`; observation k is [k, -k]
    (so every transition is recognisable) and reward k. Returns the list of
    (obs, action, reward, next_obs, terminated) added, in order."""
    added, k = [], start
    for n_ep, length in enumerate(episodes):
        for t in range(length):
            last = t == length - 1
            terminated = last and not (truncate_last and n_ep == len(episodes) - 1)
            obs, nxt = np.array([k, -k], np.float32), np.array([k + 1, -k - 1], np.float32)
            buf.add(obs, k % 3, float(k), nxt, terminated,
                    truncated=last and not terminated)
            added.append((obs, k % 3, float(k), nxt, terminated))
            k += 1
        k += 1000                                       # a new episode starts elsewhere
    return added


# ---------------------------------------------------------------------------
# ReplayBuffer

def test_sample_returns_exactly_the_stored_transitions() -> None:
    buf = rl.ReplayBuffer(100, (2,), seed=0)
    added = fill(buf, [5, 3, 7])
    b = buf.sample(len(added))
    assert len(buf) == 15
    assert b.obs.shape == (15, 2) and b.obs.dtype == np.float32 and b.mask is None
    assert b.actions.dtype == np.int64 and b.rewards.dtype == np.float32
    assert b.terminated.dtype == bool
    got = sorted(zip(b.obs[:, 0].tolist(), b.actions.tolist(), b.rewards.tolist(),
                     b.next_obs[:, 0].tolist(), b.next_obs[:, 1].tolist(),
                     b.terminated.tolist()))
    want = sorted((o[0], a, r, n[0], n[1], d) for o, a, r, n, d in added)
    assert got == want                                  # distinct, and all of them
    assert b.terminated.sum() == 3


def test_ring_keeps_the_newest_and_next_obs_at_episode_ends() -> None:
    """Capacity 4 after 10 transitions in three episodes: the last four, with
    each next observation right, including across the overwritten slots."""
    buf = rl.ReplayBuffer(4, (2,), seed=1)
    added = fill(buf, [3, 4, 3], truncate_last=True)
    assert len(buf) == 4
    b = buf.sample(4)
    got = {int(o): (int(n), bool(d)) for o, n, d in zip(b.obs[:, 0], b.next_obs[:, 0],
                                                       b.terminated)}
    want = {int(o[0]): (int(n[0]), d) for o, _, _, n, d in added[-4:]}
    assert got == want
    assert list(want.values())[-1] == (added[-1][3][0], False)   # truncated, not terminated


def test_new_episode_without_flags_still_breaks_the_chain() -> None:
    """A next obs that is not the next transition's obs (a reset the caller
    did not flag) is kept apart, so both next observations come back right."""
    buf = rl.ReplayBuffer(10, (1,), seed=0)
    buf.add([0.0], 0, 0.0, [1.0], False)
    buf.add([5.0], 1, 0.0, [6.0], False)                # not [1.0]: a new start
    buf.add([6.0], 1, 0.0, [7.0], False)
    b = buf.sample(3)
    assert dict(zip(b.obs[:, 0].tolist(), b.next_obs[:, 0].tolist())) == {0: 1, 5: 6, 6: 7}
    s = buf.sample_sequences(20, 3)
    assert np.array_equal(s.mask, np.tile([True, False, False], (20, 1)))


def test_float64_observations_chain_in_a_float32_buffer() -> None:
    """gymnasium may hand out float64 arrays: stored as float32, the next
    transition's obs still continues the episode (no mask break)."""
    buf = rl.ReplayBuffer(10, (2,), seed=0)
    x = np.array([0.1, 1 / 3])                          # not exact in float32
    for k in range(4):
        buf.add(x + k, 0, 1.0, x + k + 1, False)
    s = buf.sample_sequences(5, 4)
    assert s.mask.all() and s.obs.dtype == np.float32
    assert np.array_equal(s.next_obs[0, :, 0], (x[0] + np.arange(1, 5)).astype(np.float32))


def test_sampling_is_uniform_and_seeded() -> None:
    buf = rl.ReplayBuffer(50, (1,), seed=3)
    for k in range(20):
        buf.add([k], 0, 0.0, [k + 1], False)
    counts = np.zeros(20)
    for _ in range(2000):
        counts[buf.sample(5).obs[:, 0].astype(int)] += 1
    expected = 2000 * 5 / 20                            # 500 each
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 43.8                                  # chi-square, 19 d.o.f., p = 0.001
    draws = []
    for seed in (3, 3, 4):                              # same seed, same draws
        again = rl.ReplayBuffer(50, (1,), seed=seed)
        for k in range(20):
            again.add([k], 0, 0.0, [k + 1], False)
        draws.append(np.concatenate([again.sample(5).obs for _ in range(3)]))
    assert np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[0], draws[2])


def test_sequences_are_consecutive_and_masked_after_episode_ends() -> None:
    buf = rl.ReplayBuffer(100, (2,), seed=0)
    added = fill(buf, [3, 2, 6])
    ends = np.array([d for *_, d in added])
    s = buf.sample_sequences(200, 4)
    assert s.obs.shape == (200, 4, 2) and s.mask.shape == (200, 4)
    order = [int(o[0]) for o, *_ in added]
    for obs, nxt, term, mask in zip(s.obs[:, :, 0], s.next_obs[:, :, 0], s.terminated, s.mask):
        i = order.index(int(obs[0]))
        assert obs.astype(int).tolist() == order[i:i + 4]           # consecutive
        assert nxt.astype(int).tolist() == [int(n[0]) for _, _, _, n, _ in added[i:i + 4]]
        assert term.tolist() == ends[i:i + 4].tolist()
        first_end = next((t for t in range(4) if ends[i + t]), 4)
        assert mask.tolist() == [t <= first_end for t in range(4)]
    assert not s.mask.all() and s.mask[:, 0].all()      # some windows cross an end


def test_sequences_after_wrap_around_stay_in_order() -> None:
    buf = rl.ReplayBuffer(5, (1,), seed=0)
    for k in range(12):
        buf.add([k], 0, 0.0, [k + 1], False)
    s = buf.sample_sequences(50, 5)
    assert np.array_equal(s.obs[:, :, 0], np.tile(np.arange(7, 12), (50, 1)))
    assert np.array_equal(s.next_obs[:, :, 0], np.tile(np.arange(8, 13), (50, 1)))
    assert s.mask.all()


def test_uint8_frames_stay_uint8_and_are_stored_once() -> None:
    buf = rl.ReplayBuffer(1000, (4, 84, 84), obs_dtype=np.uint8, seed=0)
    frames = np.random.default_rng(0).integers(0, 256, (301, 4, 84, 84), dtype=np.uint8)
    for t in range(300):
        buf.add(frames[t], 1, 1.0, frames[t + 1], t == 299)
    b = buf.sample(32)
    assert b.obs.dtype == np.uint8 and b.next_obs.dtype == np.uint8
    i = [int(np.flatnonzero((frames[:300] == o).all(axis=(1, 2, 3)))[0]) for o in b.obs]
    assert np.array_equal(b.next_obs, frames[np.array(i) + 1])
    one = 4 * 84 * 84
    assert buf.nbytes < 1000 * one + 3 * one + 1000 * 32     # one copy per slot, not two


def test_add_and_sample_errors_name_the_shapes() -> None:
    buf = rl.ReplayBuffer(10, (4,), seed=0)
    with pytest.raises(ValueError, match=r"ReplayBuffer.add: obs of shape \(2,\) but the buffer "
                                         r"holds observations of shape \(4,\)"):
        buf.add(np.zeros(2), 0, 0.0, np.zeros(4), False)
    with pytest.raises(ValueError, match=r"next_obs of shape \(4, 1\)"):
        buf.add(np.zeros(4), 0, 0.0, np.zeros((4, 1)), False)
    with pytest.raises(ValueError, match=r"action and reward must be scalars.*\(2,\)"):
        buf.add(np.zeros(4), [0, 1], 0.0, np.zeros(4), False)
    frames = rl.ReplayBuffer(10, (2,), obs_dtype=np.uint8)
    with pytest.raises(TypeError, match="obs of dtype float64 cannot be stored as uint8"):
        frames.add(np.zeros(2), 0, 0.0, np.zeros(2), False)
    for _ in range(3):
        buf.add(np.zeros(4), 0, 0.0, np.zeros(4), False)
    with pytest.raises(ValueError, match="ReplayBuffer.sample: asked for 64 transitions but the "
                                         "buffer holds 3"):
        buf.sample(64)
    with pytest.raises(ValueError, match="sample_sequences: asked for windows of 5 transitions "
                                         "but the buffer holds 3"):
        buf.sample_sequences(2, 5)
    with pytest.raises(ValueError, match="capacity must be a positive integer, got 0"):
        rl.ReplayBuffer(0, (4,))


# ---------------------------------------------------------------------------
# Exploration, observation checks

def test_td_target_is_the_bellman_backup() -> None:
    rng = np.random.default_rng(0)
    q_next = rng.normal(size=(6, 3)).astype(np.float32)
    r = rng.normal(size=6).astype(np.float32)
    done = np.array([False, True, False, False, True, False])
    y = rl.td_target(q_next, r, done, 0.9)
    want = [r[i] + (0.0 if done[i] else 0.9 * max(q_next[i])) for i in range(6)]
    assert y.dtype == np.float32 and y == pytest.approx(want, rel=1e-6)
    # terminal transitions do not bootstrap, however large the next state's value
    assert rl.td_target(np.full((2, 2), 1e6, np.float32), np.array([1.0, 2.0], np.float32),
                        np.array([True, True]), 0.99) == pytest.approx([1.0, 2.0])
    # a time limit is not a terminal state: truncated transitions bootstrap (their flag is
    # not passed); float64 values stay float64; mismatched shapes name them
    assert rl.td_target(np.array([[1.0, 3.0]]), np.array([0.5]), np.array([False]),
                        0.5) == pytest.approx([2.0])
    assert rl.td_target(np.zeros((2, 2)), np.zeros(2), np.zeros(2, bool), 0.9).dtype == np.float64
    with pytest.raises(ValueError, match=r"td_target: .* got q_next \(3, 2\), rewards \(2,\), "
                                         r"terminated \(2,\)"):
        rl.td_target(np.zeros((3, 2)), np.zeros(2), np.zeros(2, bool), 0.9)


def test_linear_schedule() -> None:
    eps = rl.LinearSchedule(1.0, 0.1, steps=100)
    assert [eps(0), eps(50), eps(100), eps(10_000)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    with pytest.raises(ValueError, match="LinearSchedule: steps must be a positive integer"):
        rl.LinearSchedule(1.0, 0.1, steps=0)


def test_epsilon_greedy_frequencies() -> None:
    """P(argmax) = 1 - ε + ε/A, each other action ε/A."""
    rng = np.random.default_rng(0)
    q = np.array([0.1, 2.0, -1.0, 0.5])
    n, eps = 20_000, 0.2
    counts = np.bincount([rl.epsilon_greedy(q, eps, rng) for _ in range(n)], minlength=4) / n
    assert counts == pytest.approx([0.05, 0.85, 0.05, 0.05], abs=0.01)
    assert rl.epsilon_greedy(q, 0.0, rng) == 1
    with pytest.raises(ValueError, match=r"epsilon_greedy: q_values must have shape \(A,\).*"
                                         r"\(1, 4\)"):
        rl.epsilon_greedy(q[None], 0.1, rng)
    with pytest.raises(ValueError, match=r"epsilon must be in \[0, 1\], got 1.5"):
        rl.epsilon_greedy(q, 1.5, rng)


def test_check_observation() -> None:
    rl.check_observation(np.zeros(4), (4,), "DQN")
    with pytest.raises(ValueError, match=r"DQN: observation of shape \(2,\) but the network "
                                         r"expects \(4,\)"):
        rl.check_observation(np.zeros(2), (4,), "DQN")


# ---------------------------------------------------------------------------
# Environments and evaluation

def test_hide_velocity_keeps_position_and_angle() -> None:
    require_module("gymnasium")
    full = rl.make_env("CartPole-v1")
    part = rl.make_env("CartPole-v1", hide_velocity=True)
    assert isinstance(part, rl.HideVelocity) and part.observation_space.shape == (2,)
    o_full, _ = full.reset(seed=7)
    o_part, _ = part.reset(seed=7)
    assert np.array_equal(o_part, o_full[[0, 2]])
    for a in [0, 1, 1, 0, 1]:
        o_full = full.step(a)[0]
        o_part = part.step(a)[0]
        assert np.array_equal(o_part, o_full[[0, 2]])
    assert np.array_equal(part.observation_space.high, full.observation_space.high[[0, 2]])
    with pytest.raises(ValueError, match=r"HideVelocity: expects CartPole's Box observation "
                                         r"of shape \(4,\)"):
        rl.make_env("MountainCar-v0", hide_velocity=True)


def test_make_env_seed_makes_runs_repeat() -> None:
    require_module("gymnasium")
    a, b = rl.make_env("CartPole-v1", seed=3), rl.make_env("CartPole-v1", seed=3)
    assert np.array_equal(a.reset()[0], b.reset()[0])
    assert a.action_space.sample() == b.action_space.sample()


def test_unknown_env_id_names_it_and_close_matches() -> None:
    require_module("gymnasium")
    with pytest.raises(rl.EnvNotFoundError, match=r"no environment 'CartPol-v1' is registered"
                                                  r".*close matches: CartPole-v1") as e:
        rl.make_env("CartPol-v1")
    assert isinstance(e.value, LookupError) and "tensorgraph[rl]" in str(e.value)
    require_module("ale_py")
    with pytest.raises(rl.EnvNotFoundError, match="'ALE/Brekout-v5'.*ALE/Breakout-v5"):
        rl.make_env("ALE/Brekout-v5")


def test_evaluate_runs_whole_episodes_with_seeded_starts() -> None:
    require_module("gymnasium")
    env = rl.make_env("CartPole-v1")
    # always push left: the pole falls within a few dozen steps, reward 1 a step
    lengths = []
    for i in range(3):
        env.reset(seed=10 + i)
        n, done = 0, False
        while not done:
            _, r, term, trunc, _ = env.step(0)
            n, done = n + 1, term or trunc
        lengths.append(n)
    returns = rl.evaluate(lambda obs: 0, env, episodes=3, seed=10)
    assert returns.dtype == np.float64 and returns.tolist() == lengths

    class Recurrent:                                    # counts steps since its reset
        def __init__(self) -> None:
            self.t, self.resets, self.longest = 0, 0, 0

        def reset(self) -> None:
            self.t, self.resets = 0, self.resets + 1

        def __call__(self, obs: np.ndarray) -> int:
            self.t += 1
            self.longest = max(self.longest, self.t)
            return 0
    policy = Recurrent()
    assert rl.evaluate(policy, env, episodes=3, seed=10).tolist() == lengths
    assert policy.resets == 3 and policy.longest == max(lengths)
    with pytest.raises(ValueError, match="evaluate: episodes must be >= 1"):
        rl.evaluate(lambda obs: 0, env, episodes=0)


def test_import_tensorgraph_rl_needs_no_gymnasium() -> None:
    code = ("import sys; sys.modules['gymnasium'] = None\n"      # as if not installed
            "import tensorgraph.rl as rl\n"
            "try:\n    rl.make_env('CartPole-v1')\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": ""}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "tensorgraph.rl needs gymnasium" in out.stdout and "tensorgraph[rl]" in out.stdout


# ---------------------------------------------------------------------------
# Progress and checkpoints

def test_progress_turns_ctrl_c_into_a_clean_stop(capsys) -> None:
    done = []
    with rl.Progress(10, "test", enabled=False) as bar:
        for k in range(10):
            if k == 4:
                raise KeyboardInterrupt                 # as Ctrl-C would, mid-loop
            bar.update(ret=float(k))
            done.append(k)
    assert bar.interrupted and done == [0, 1, 2, 3]
    assert bar.returns == [0.0, 1.0, 2.0, 3.0] and bar.running_return == 1.5 and bar.n == 4
    assert "interrupted (Ctrl-C) after 4 episodes" in capsys.readouterr().out
    with rl.Progress(1000, "DQN", unit="step", enabled=False) as bar:
        bar.update(n=200)
        bar.update(n=300, ret=1.0)
        raise KeyboardInterrupt
    assert bar.n == 500 and bar.returns == [1.0]
    assert "DQN: interrupted (Ctrl-C) after 500 steps" in capsys.readouterr().out
    with rl.Progress(2, "test", enabled=False) as bar:
        bar.update(ret=1.0)
    assert not bar.interrupted
    with pytest.raises(ZeroDivisionError):              # other errors are not swallowed
        with rl.Progress(2, "test", enabled=False):
            1 / 0


def test_progress_bar_shows_the_running_return(capsys) -> None:
    require_module("tqdm")
    with rl.Progress(3, "REINFORCE", window=2, enabled=True) as bar:
        for r in (10.0, 20.0, 40.0):
            bar.update(ret=r)
    err = capsys.readouterr().err
    assert "REINFORCE" in err and "3/3" in err and "avg=30.0" in err and "episode" in err


def test_best_checkpoint_keeps_the_best(tmp_path) -> None:
    model = tg.nn.Linear(3, 2, seed=0)
    best = rl.BestCheckpoint(tmp_path / "best.npz")
    with pytest.raises(FileNotFoundError, match="nothing saved"):
        best.load()
    assert best.update(10.0, model.state_dict())
    kept = model.state_dict()
    model.weight.data += 1.0
    assert not best.update(5.0, model.state_dict())      # worse: not saved
    assert not best.update(10.0, model.state_dict())     # not better either
    for k, v in tg.load(tmp_path / "best.npz").items():
        assert np.array_equal(v, kept[k])
    assert best.update(12.0, model.state_dict())
    assert np.array_equal(best.load()["weight"], model.weight.data) and best.score == 12.0
    fresh = tg.nn.Linear(3, 2, seed=5)
    fresh.load_state_dict(best.load())
    assert np.array_equal(fresh.weight.data, model.weight.data)
    with pytest.raises(ValueError, match="BestCheckpoint.update: score is NaN"):
        best.update(float("nan"), model.state_dict())
