"""examples/dqn_breakout.py: its pieces against independent oracles (the
Huber loss and the Q-learning loss's gradient against PyTorch, the Nature-DQN
network against the same network built in PyTorch with the same weights, the
TD target against its formula), the uint8 replay's memory, and (slow) the
quick run's numbers and a Ctrl-C in training that keeps the best checkpoint.
The quick run's figures are checked by tests/test_examples.py."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tensorgraph as tg
from conftest import call_captured, interrupt_at, load_example, require_module
from tensorgraph import rl


@pytest.fixture(scope="module")
def dqn() -> Any:
    return load_example("dqn_breakout")


def _torch_qnet(torch: Any, net: Any) -> Any:
    """The same architecture in PyTorch, with `net`'s weights."""
    tn = torch.nn
    model = tn.Sequential(tn.Conv2d(4, 32, 8, stride=4), tn.ReLU(), tn.Conv2d(32, 64, 4, stride=2),
                          tn.ReLU(), tn.Conv2d(64, 64, 3, stride=1), tn.ReLU(), tn.Flatten(),
                          tn.Linear(3136, 512), tn.ReLU(), tn.Linear(512, 4)).double()
    ours = [p.data for p in net.parameters()]
    theirs = list(model.parameters())
    assert [tuple(p.shape) for p in theirs] == [a.shape for a in ours]
    with torch.no_grad():
        for p, a in zip(theirs, ours):
            p.copy_(torch.from_numpy(a.astype(np.float64)))
    return model


def test_q_network_is_the_nature_dqn(dqn: Any) -> None:
    torch = require_module("torch")
    net = dqn.QNetwork(4, seed=0)
    # 4·32·64+32 + 32·64·16+64 + 64·64·9+64 + 3136·512+512 + 512·4+4
    assert net.num_parameters() == 1_686_180
    frames = np.random.default_rng(0).integers(0, 256, size=(3, 4, 84, 84), dtype=np.uint8)
    q = net(frames)
    assert q.shape == (3, 4) and q.dtype == np.float32
    want = _torch_qnet(torch, net)(torch.from_numpy(frames.astype(np.float64) / 255)).detach().numpy()
    np.testing.assert_allclose(q.data, want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"QNetwork: expected frames of shape \(N, 4, 84, 84\), "
                                         r"got \(4, 84, 84\)"):
        net(frames[0])


def _batch(n: int = 5, seed: int = 0) -> rl.Batch:
    rng = np.random.default_rng(seed)
    obs = rng.integers(0, 256, size=(n, 4, 84, 84), dtype=np.uint8)
    nxt = rng.integers(0, 256, size=(n, 4, 84, 84), dtype=np.uint8)
    return rl.Batch(obs, rng.integers(0, 4, n), np.array([0, 1, 4, 7, 0], np.float32)[:n], nxt,
                    np.array([False, True, False, False, True])[:n])


def test_td_targets_are_the_formula(dqn: Any) -> None:
    net = dqn.QNetwork(4, seed=1)
    batch = _batch()
    y = dqn.td_targets(net, batch, 0.9)
    q_next = net(batch.next_obs).data
    for i in range(5):   # rewards clipped to their sign; no bootstrap past a terminal step
        want = np.sign(batch.rewards[i]) + (0.0 if batch.terminated[i] else 0.9 * q_next[i].max())
        assert y[i] == pytest.approx(want, rel=1e-6)


def test_q_loss_gradient_against_torch(dqn: Any) -> None:
    """∂/∂θ mean huber(Q(s, a) - y) for the last layer, and the first conv's
    weights, against the same loss in PyTorch (float64)."""
    torch = require_module("torch")
    net = dqn.QNetwork(4, seed=2)
    batch = _batch(seed=3)
    y = np.array([0.3, -2.0, 1.0, 5.0, 0.0], np.float32)
    loss = dqn.q_loss(net, batch, y)
    loss.backward()
    model = _torch_qnet(torch, net)
    q = model(torch.from_numpy(batch.obs.astype(np.float64) / 255))
    chosen = q.gather(1, torch.from_numpy(batch.actions)[:, None])[:, 0]
    want = torch.nn.functional.huber_loss(chosen, torch.from_numpy(y.astype(np.float64)))
    want.backward()
    assert loss.item() == pytest.approx(want.item(), rel=1e-4)
    np.testing.assert_allclose(net.out.weight.grad, model[-1].weight.grad.numpy(),
                               rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(net.features[0].weight.grad, model[0].weight.grad.numpy(),
                               rtol=1e-3, atol=1e-6)


def test_uint8_replay_keeps_a_frame_stack_once() -> None:
    """The replay's memory is about capacity × one uint8 observation (28 KiB),
    not two float32 ones (225 KiB)."""
    buf = rl.ReplayBuffer(1000, (4, 84, 84), obs_dtype=np.uint8, seed=0)
    per_obs = 4 * 84 * 84
    assert buf.nbytes < 1000 * (per_obs + 32)
    assert buf.nbytes > 1000 * per_obs
    o = np.zeros((4, 84, 84), np.uint8)
    buf.add(o, 1, 1.0, o + 1, False)
    assert buf.sample(1).obs.dtype == np.uint8


def test_moving_average(dqn: Any) -> None:
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    assert dqn.moving_average(x, 2) == pytest.approx([3.0, 2.0, 2.5, 2.5, 3.0])


@pytest.mark.slow
def test_quick_run_numbers_fit_together(dqn: Any, tmp_path: Path) -> None:
    for name in ("gymnasium", "ale_py", "cv2", "matplotlib"):
        require_module(name)
    run = call_captured(tmp_path, dqn.run, tmp_path, quick=True)
    run.check("dqn_breakout --quick")
    info = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    r = info["results"]
    assert info["figures"] == ["scores.svg", "observation.svg"]
    assert r["frames"] == 4 * r["env_steps"] and r["env_steps"] > 0
    assert r["eval_games"] == 2 and r["interrupted"] is False
    for key in ("eval_return_mean", "random_return_mean", "final_eval_return_mean"):
        assert 0 <= r[key] <= 864        # Breakout's highest score
    assert r["replay_mib"] == pytest.approx(1000 * 4 * 84 * 84 / 2**20, rel=0.02)
    state = tg.load(tmp_path / "qnet.npz")
    assert len(state) == 10 and state["out.weight"].shape == (4, 512)


@pytest.mark.slow
def test_ctrl_c_keeps_the_best_checkpoint(dqn: Any, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A KeyboardInterrupt in the 30th update (as Ctrl-C would): training stops
    cleanly, the run is evaluated from the best checkpoint, saved when a game
    ended after learning started."""
    for name in ("gymnasium", "ale_py", "cv2", "matplotlib"):
        require_module(name)
    interrupted, calls = interrupt_at(dqn.q_loss, 30)
    monkeypatch.setattr(dqn, "q_loss", interrupted)
    monkeypatch.setattr(dqn, "WINDOW", 1)          # a checkpoint at each game's end
    run = call_captured(tmp_path, dqn.run, tmp_path, quick=True, minutes=2.0)
    run.check("dqn_breakout interrupted")
    r = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["results"]
    assert r["interrupted"] is True and len(calls) == 30 and r["updates"] == 29
    assert "interrupted (Ctrl-C) after" in run.stdout
    assert r["eval_policy"].startswith("best checkpoint") and r["minutes"] < 2.0
    assert r["env_steps"] == 48 + 4 * 30            # updates at steps 52, 56, ... (learn_start 50)
    assert tg.load(tmp_path / "qnet.npz").keys() == dqn.QNetwork(4).state_dict().keys()
