"""benchmarks/bench_dqn.py's check that every engine runs the same DQN
training (it is asserted before each timing run): it passes for the engines
as written, and it fails when one engine computes something else."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
bench_dqn = pytest.importorskip("bench_dqn")


def test_engines_train_alike_in_float64():
    kinds = ("numpy", "tg", "tg_capture")
    diffs = bench_dqn.check_same_training(kinds, steps=4)
    assert set(diffs) == set(kinds) and max(diffs.values()) < 1e-12


@pytest.mark.slow     # importing torch alone takes seconds
def test_pytorch_trains_alike():
    pytest.importorskip("torch")
    diffs = bench_dqn.check_same_training(("numpy", "torch"), steps=4)
    assert diffs["torch"] < 1e-12


def test_a_different_training_is_caught(monkeypatch):
    # the numpy engine with another discount: its parameters part from tensorgraph's
    orig = bench_dqn.NumpyAgent.train

    def train(self, b):
        monkeypatch.setattr(bench_dqn, "GAMMA", 0.9)
        try:
            orig(self, b)
        finally:
            monkeypatch.setattr(bench_dqn, "GAMMA", 0.99)
    monkeypatch.setattr(bench_dqn.NumpyAgent, "train", train)
    with pytest.raises(AssertionError, match=r"numpy \(by hand\)'s parameter \d \(shape .*\) "
                                             r"differs from tensorgraph eager's"):
        bench_dqn.check_same_training(("tg", "numpy"), steps=4)
