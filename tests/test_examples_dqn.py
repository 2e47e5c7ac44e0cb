"""The chapter-9 DQN example (examples/dqn.py): quick runs of both parts, its
pieces checked against formulas written here and against PyTorch (the TD
target, no bootstrap from terminal states, the Huber loss and its gradient,
the recurrent loss's mask and warm-up), the target network staying put between
syncs, the players' memory (frame stack, LSTM state), a Ctrl-C keeping the
best checkpoint, and (slow) the full run solving CartPole-v1."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tensorgraph as tg
from conftest import Run, call_captured, interrupt_at, load_example, require_module


@pytest.fixture(scope="module")
def dqn() -> Any:
    require_module("gymnasium")
    return load_example("dqn")


def _random_batch(rng: np.random.Generator, shape: tuple[int, ...], n_obs: int,
                  mask: bool = False) -> Any:
    from tensorgraph import rl
    return rl.Batch(rng.normal(size=shape + (n_obs,)).astype(np.float32),
                    rng.integers(0, 2, shape), rng.normal(size=shape).astype(np.float32),
                    rng.normal(size=shape + (n_obs,)).astype(np.float32),
                    rng.random(shape) < 0.3, rng.random(shape) < 0.8 if mask else None)


def test_quick_cartpole_run_in_the_gallery(dqn: Any, gallery_build: Run) -> None:
    require_module("matplotlib")
    gallery_build.check("examples/gallery.py --quick")
    html = (gallery_build.out / "index.html").read_text(encoding="utf-8")
    assert '<section id="dqn">' in html
    out = gallery_build.out / "dqn"
    info = json.loads((out / "results.json").read_text(encoding="utf-8"))
    r = info["results"]
    assert info["quick"] is True and info["figures"] == ["returns.svg", "q_values.svg"]
    assert "CartPole-v1" in info["data"]
    assert r["env_steps"] == dqn.QUICK_STEPS and r["episodes"] >= dqn.QUICK_STEPS // 500
    # CartPole pays 1 a step: every episode lasts at least 8 steps
    assert 8 <= r["eval_return_mean"] <= 500 and r["eval_episodes"] == 3
    start, every = dqn.CONFIGS["quick"]["start"], dqn.CONFIGS["quick"]["every"]
    assert r["updates"] == len([s for s in range(start, dqn.QUICK_STEPS + 1) if s % every == 0])
    assert r["interrupted"] is False
    state = tg.load(out / "qnet.npz")
    assert set(state) == {f"{m}.{p}" for m in ("fc1", "fc2", "out") for p in ("weight", "bias")}


def test_quick_partial_run(dqn: Any, tmp_path: Path) -> None:
    require_module("matplotlib")
    run = call_captured(tmp_path, dqn.run, tmp_path, quick=True, part="partial")
    run.check("dqn --part partial --quick")
    info = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    r = info["results"]
    assert info["figures"] == ["partial.svg"] and "velocities hidden" in info["data"]
    for k in ("drqn", "ff", "stack"):
        assert r[k]["env_steps"] == dqn.QUICK_STEPS and r[k]["episodes"] >= 1
        assert 8 <= r[k]["eval_return_mean"] <= 500
        assert (tmp_path / f"{k}.npz").is_file()
    assert r["eval_return_mean"] == r["drqn"]["eval_return_mean"]
    assert tg.load(tmp_path / "drqn.npz")["lstm.weight_ih_l0"].shape == (4 * 8, 2)
    assert tg.load(tmp_path / "stack.npz")["fc1.weight"].shape == (16, 4)   # 2 frames of 2


def test_dqn_loss_and_gradient_against_torch(dqn: Any) -> None:
    """The whole loss, online and target networks copied into PyTorch: same
    value, same gradient of every parameter, and none for the target."""
    torch = require_module("torch")
    rng = np.random.default_rng(1)
    net, target = dqn.QNetwork(4, 8, 2, seed=0), dqn.QNetwork(4, 8, 2, seed=5)
    batch = _random_batch(rng, (9,), 4)

    def torch_net(m: Any) -> Any:
        t = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8),
                                torch.nn.ReLU(), torch.nn.Linear(8, 2))
        for i, name in ((0, "fc1"), (2, "fc2"), (4, "out")):
            t[i].weight.data = torch.tensor(getattr(m, name).weight.data)
            t[i].bias.data = torch.tensor(getattr(m, name).bias.data)
        return t
    tn, tt = torch_net(net), torch_net(target)
    loss = dqn.dqn_loss(net, target, batch, 0.95)
    loss.backward()
    with torch.no_grad():
        y = (torch.tensor(batch.rewards) + 0.95 * (1 - torch.tensor(batch.terminated).float())
             * tt(torch.tensor(batch.next_obs)).max(dim=1).values)
    q = tn(torch.tensor(batch.obs)).gather(1, torch.tensor(batch.actions)[:, None])[:, 0]
    want = torch.nn.functional.smooth_l1_loss(q, y)
    want.backward()
    assert float(loss.item()) == pytest.approx(want.item(), rel=1e-5)
    assert net.fc1.weight.grad.data == pytest.approx(tn[0].weight.grad.numpy(), abs=1e-5)
    assert net.out.bias.grad.data == pytest.approx(tn[4].bias.grad.numpy(), abs=1e-5)
    assert all(p.grad is None for p in target.parameters())


def test_drqn_loss_against_torch_with_mask_and_burn_in(dqn: Any) -> None:
    """The recurrent loss: an LSTM from a zero state over each window (PyTorch's
    nn.LSTM with the same weights), the steps of the warm-up and those after an
    episode ended left out of the mean."""
    torch = require_module("torch")
    rng = np.random.default_rng(2)
    net, target = dqn.DRQN(2, 5, 2, seed=0), dqn.DRQN(2, 5, 2, seed=7)
    batch = _random_batch(rng, (3, 6), 2, mask=True)

    def torch_q(m: Any, x: np.ndarray) -> Any:
        lstm, out = torch.nn.LSTM(2, 5, batch_first=True), torch.nn.Linear(5, 2)
        lstm.load_state_dict({k[5:]: torch.tensor(v) for k, v in m.state_dict().items()
                              if k.startswith("lstm.")})
        out.load_state_dict({"weight": torch.tensor(m.out.weight.data),
                             "bias": torch.tensor(m.out.bias.data)})
        return out(lstm(torch.tensor(x))[0])
    loss = dqn.drqn_loss(net, target, batch, 0.9, burn_in=2)
    with torch.no_grad():
        y = (torch.tensor(batch.rewards) + 0.9 * (1 - torch.tensor(batch.terminated).float())
             * torch_q(target, batch.next_obs).max(dim=-1).values)
    q = torch_q(net, batch.obs).gather(2, torch.tensor(batch.actions)[..., None])[..., 0]
    keep = torch.tensor(batch.mask)
    keep[:, :2] = False
    want = torch.nn.functional.smooth_l1_loss(q[keep], y[keep])
    assert float(loss.item()) == pytest.approx(want.item(), rel=1e-5)
    # what is left out cannot matter: change the rewards there
    r = batch.rewards.copy()
    r[~keep.numpy()] += 100.0
    again = dqn.drqn_loss(net, target, batch._replace(rewards=r), 0.9, burn_in=2)
    assert float(again.item()) == pytest.approx(float(loss.item()), rel=1e-6)


def test_target_network_moves_only_at_a_sync(dqn: Any) -> None:
    from tensorgraph import rl
    cfg = dict(dqn.CONFIGS["quick"], lr=1e-2)
    agent = dqn.Agent("ff", 4, 2, cfg, seed=0)
    start = agent.target.state_dict()
    assert all(np.array_equal(start[k], v) for k, v in agent.net.state_dict().items())
    buf = rl.ReplayBuffer(100, (4,), seed=0)
    rng = np.random.default_rng(0)
    for _ in range(40):
        buf.add(rng.normal(size=4), int(rng.integers(2)), 1.0, rng.normal(size=4),
                bool(rng.random() < 0.1))
    for _ in range(5):
        agent.learn(buf)
    moved = agent.net.state_dict()
    assert all(np.array_equal(start[k], v) for k, v in agent.target.state_dict().items())
    assert not np.array_equal(moved["fc1.weight"], start["fc1.weight"])
    agent.sync()
    assert all(np.array_equal(moved[k], v) for k, v in agent.target.state_dict().items())
    agent.learn(buf)                        # a copy, not the same arrays
    assert np.array_equal(agent.target.fc1.weight.data, moved["fc1.weight"])
    assert not np.array_equal(agent.net.fc1.weight.data, moved["fc1.weight"])


def test_players_remember_the_episode(dqn: Any) -> None:
    cfg = dqn.CONFIGS["quick"]
    stack = dqn.Player(dqn.Agent("ff", 2, 2, cfg, seed=0, frames=2))
    a, b, c = (np.array(v, np.float32) for v in ([1, 2], [3, 4], [5, 6]))
    assert stack.reset(a).tolist() == [0, 0, 1, 2]          # zeros before the start
    assert stack.observe(b).tolist() == [1, 2, 3, 4]
    assert stack.observe(c).tolist() == [3, 4, 5, 6]
    assert stack.reset(c).tolist() == [0, 0, 5, 6]
    # the partial part's networks see positions and angles over where episodes end
    scaled = dqn.Player(dqn.Agent("ff", 2, 2, cfg, seed=0, obs_scale=dqn.PARTIAL_SCALE))
    assert scaled.reset(np.array([1.2, -0.2095], np.float32)) == pytest.approx([0.5, -1.0])
    # the recurrent player, one step at a time, equals the LSTM over the whole episode
    agent = dqn.Agent("drqn", 2, 2, cfg, seed=0)
    player = dqn.Player(agent)
    xs = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    stepwise = [player.q_values(player.reset(xs[0]))] + [player.q_values(x) for x in xs[1:]]
    whole = agent.net(xs[None])[0].data[0]
    assert np.array(stepwise) == pytest.approx(whole, abs=1e-6)
    player.reset(xs[0])                       # a new episode starts from the zero state
    assert player.q_values(xs[0]) == pytest.approx(whole[0], abs=1e-6)


def test_bad_input_is_named(dqn: Any) -> None:
    greedy = dqn.Greedy(dqn.Agent("ff", 4, 2, dqn.CONFIGS["quick"], seed=0), "dqn qnet")
    with pytest.raises(ValueError, match=r"dqn qnet: observation of shape \(2,\) but the "
                                         r"network expects \(4,\)"):
        greedy(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match=r"part must be one of \('cartpole', 'partial'\), "
                                         r"got 'breakout'"):
        dqn.run(None, quick=True, part="breakout")


def test_ctrl_c_keeps_the_best_checkpoint(dqn: Any, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A KeyboardInterrupt in the 60th update (as Ctrl-C would), after a few
    checks: training stops cleanly, the best-checked network is kept and
    evaluated, and the results say so."""
    require_module("matplotlib")
    interrupted, calls = interrupt_at(dqn.Agent.learn, 60)
    monkeypatch.setattr(dqn.Agent, "learn", interrupted)
    run = call_captured(tmp_path, dqn.run, tmp_path, quick=True, steps=1000)
    run.check("dqn interrupted")
    r = run.value["results"]
    start, every = dqn.CONFIGS["quick"]["start"], dqn.CONFIGS["quick"]["every"]
    assert start % every == 0
    # the 60th update came after step start + 59 · every, which was counted
    assert r["interrupted"] is True and r["env_steps"] == start + 59 * every
    assert f"interrupted (Ctrl-C) after {start + 59 * every} steps" in run.stdout
    checks = range(100, start + 59 * every, 100)
    assert r["best_check_step"] in checks and r["best_check_return"] is not None
    net = dqn.QNetwork(4, 16, 2, seed=99)
    net.load_state_dict(tg.load(tmp_path / "qnet.npz"))
    assert (tmp_path / "returns.svg").is_file() and r["eval_episodes"] == 3


@pytest.mark.slow
def test_full_run_solves_cartpole(dqn: Any, tmp_path: Path) -> None:
    """The command line's run: the kept network averages at least 475 over
    100 greedy episodes on seeds never trained on."""
    run = call_captured(tmp_path, dqn.run, tmp_path, steps=dqn.STEPS["cartpole"])
    run.check("dqn (full run)")
    r = run.value["results"]
    assert r["eval_episodes"] == 100 and r["eval_return_mean"] >= 475.0
