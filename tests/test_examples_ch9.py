"""The chapter-9 example (examples/policy_gradient.py): its quick run from
the session's gallery build, its pieces checked against formulas written here
(discounted returns, the moving average, the REINFORCE gradient), a Ctrl-C in
training that keeps the best checkpoint, and (slow) the full run solving
CartPole-v1."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tensorgraph as tg
from conftest import Run, call_captured, interrupt_at, load_example, require_module


@pytest.fixture(scope="module")
def pg() -> Any:
    require_module("gymnasium")
    return load_example("policy_gradient")


def test_quick_run_in_the_gallery(gallery_build: Run) -> None:
    require_module("gymnasium")
    require_module("matplotlib")
    gallery_build.check("examples/gallery.py --quick")
    html = (gallery_build.out / "index.html").read_text(encoding="utf-8")
    assert "Chapter 9: deep reinforcement learning (policy gradients, DQN)" in html
    assert '<section id="policy_gradient">' in html
    info = json.loads((gallery_build.out / "policy_gradient" / "results.json")
                      .read_text(encoding="utf-8"))
    r = info["results"]
    assert info["quick"] is True and info["figures"] == ["returns.svg"]
    assert "CartPole-v1" in info["data"]
    # the spec's keys, and numbers that fit together: CartPole pays 1 a step
    assert r["train_episodes"] == 12 and r["env_steps"] >= 12 * 8
    assert 8 <= r["eval_return_mean"] <= 500 and r["eval_return_std"] >= 0
    assert r["eval_episodes"] == 5 and r["interrupted"] is False
    state = tg.load(gallery_build.out / "policy_gradient" / "policy.npz")
    assert set(state) == {"hidden.weight", "hidden.bias", "out.weight", "out.bias"}


def test_discounted_returns_and_moving_average(pg: Any) -> None:
    r = np.array([1.0, 0.0, 2.0, 3.0])
    g = pg.discounted_returns(r, 0.9)
    want = [sum(0.9 ** k * r[t + k] for k in range(len(r) - t)) for t in range(len(r))]
    assert g == pytest.approx(want, rel=1e-6)
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    assert pg.moving_average(x, 2) == pytest.approx([3.0, 2.0, 2.5, 2.5, 3.0])
    assert pg.moving_average(x, 100) == pytest.approx(np.cumsum(x) / np.arange(1, 6))


def test_policy_gradient_against_the_formula(pg: Any) -> None:
    """∂/∂b of -mean_t log π(a_t|s_t) A_t for the output bias b is
    -mean_t A_t (onehot(a_t) - π(·|s_t)), the softmax's log-derivative."""
    rng = np.random.default_rng(0)
    policy = pg.MLP(4, 6, 2, seed=3)
    states = rng.normal(size=(7, 4)).astype(np.float32)
    actions = rng.integers(0, 2, 7)
    adv = rng.normal(size=7).astype(np.float32)
    loss = pg.policy_loss(policy, states, actions, adv)
    loss.backward()
    h = np.tanh(states @ policy.hidden.weight.data.T + policy.hidden.bias.data)
    z = h @ policy.out.weight.data.T + policy.out.bias.data
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    dz = -(np.eye(2)[actions] - p) * adv[:, None] / len(adv)
    assert float(loss.item()) == pytest.approx(-np.mean(np.log(p[np.arange(7), actions]) * adv),
                                               rel=1e-5)
    assert policy.out.bias.grad.data == pytest.approx(dz.sum(axis=0), abs=1e-6)
    assert policy.out.weight.grad.data == pytest.approx(dz.T @ h, abs=1e-6)


def test_play_records_whole_episodes(pg: Any) -> None:
    from tensorgraph import rl
    envs = [rl.make_env("CartPole-v1", seed=s) for s in (0, 1, 2)]
    states, actions, G, rets = pg.play(pg.MLP(4, 8, 2, seed=0), envs, np.random.default_rng(0))
    assert states.shape == (sum(rets), 4) and actions.shape == G.shape == (sum(rets),)
    assert set(np.unique(actions)) <= {0, 1}
    # reward 1 a step: each episode's first G is (1 - γ^n) / (1 - γ)
    starts = np.cumsum([0] + rets[:-1]).astype(int)
    want = [(1 - pg.GAMMA ** n) / (1 - pg.GAMMA) for n in rets]
    assert G[starts] == pytest.approx(want, rel=1e-5)


def test_ctrl_c_keeps_the_best_checkpoint(pg: Any, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A KeyboardInterrupt inside the 4th batch of episodes (as Ctrl-C would):
    training stops cleanly, the best checkpoint so far is evaluated and kept."""
    require_module("matplotlib")
    interrupted, calls = interrupt_at(pg.play, 4)
    monkeypatch.setattr(pg, "play", interrupted)
    monkeypatch.setattr(pg, "WINDOW", 4)               # checkpoint from the first batch on
    run = call_captured(tmp_path, pg.run, tmp_path, quick=True, episodes=40)
    run.check("policy_gradient interrupted")
    r = run.value["results"]
    assert r["interrupted"] is True and r["train_episodes"] == 12 and len(calls) == 4
    assert "interrupted (Ctrl-C) after 12 episodes" in run.stdout
    assert r["best_train_return_mean_100"] >= r["final_train_return_mean_100"]
    kept = tg.load(tmp_path / "policy.npz")
    model = pg.MLP(4, 8, 2, seed=99)
    model.load_state_dict(kept)
    assert (tmp_path / "returns.svg").is_file() and r["eval_episodes"] == 5


@pytest.mark.slow
def test_full_run_solves_cartpole(pg: Any, tmp_path: Path) -> None:
    """The gallery's run (quick=False): solved by the 100-episode training
    mean, and the kept policy averages at least 475 over 100 greedy episodes."""
    run = call_captured(tmp_path, pg.run, tmp_path, quick=False)
    run.check("policy_gradient (full run)")
    r = run.value["results"]
    assert r["solved_at_episode"] is not None and r["eval_episodes"] == 100
    assert r["eval_return_mean"] >= 475.0
