"""ONNX export of the embedding ops (tensorgraph/onnx/rules_text.py): each
rule on one node against the replay with onnxruntime, and a captured
embedding model's forward and training step (loss and weight gradient) at two
batch sizes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require_module
from test_onnx import check, one_op, rand, run_onnx
from test_onnx_grad import check_vjp, one_vjp

#: the forward rules tested here (tests/test_onnx.py's test_every_rule_is_tested reads it)
TESTED_TEXT = {"embedding", "embedding_backward"}
#: the VJP rules tested here (tests/test_onnx_grad.py's test_every_vjp_rule_has_a_case reads it)
TESTED_TEXT_VJPS = {"embedding_vjp1", "embedding_backward_vjp0"}

RNG = np.random.default_rng(5)
IDS = np.array([[1, 4, 1, 0], [6, 1, 0, 0], [2, 2, 2, 1]])


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_embedding_is_a_gather(dtype: type, tmp_path: Path) -> None:
    args = [IDS.astype(dtype), rand(7, 5)]
    check(one_op("embedding", args, {"padding_idx": None}), tmp_path, *args)


@pytest.mark.parametrize("pad,scale", [(None, False), (0, False), (2, False), (None, True),
                                       (1, True)])
def test_embedding_backward_is_a_scatter_add(pad: int, scale: bool, tmp_path: Path) -> None:
    args = [rand(3, 4, 5), IDS]
    check(one_op("embedding_backward", args, {"num_weights": 7, "padding_idx": pad,
                                              "scale_grad_by_freq": scale}), tmp_path, *args)


@pytest.mark.parametrize("pad,scale", [(None, False), (1, False), (2, True)])
def test_vjp_rules(pad: int, scale: bool, tmp_path: Path) -> None:
    attrs = {"padding_idx": pad, "scale_grad_by_freq": scale}
    check_vjp("embedding", 1, [IDS, rand(7, 5)], tmp_path, attrs)
    check_vjp("embedding_backward", 0, [rand(3, 4, 5), IDS], tmp_path, {"num_weights": 7, **attrs})
    g, feeds = one_vjp("embedding", 1, [IDS, rand(7, 5)], attrs)
    assert g.nodes[0].op.name == "embedding_vjp1"


def test_embedding_model_and_its_training_step_at_two_batch_sizes(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import export
    class Model(tg.nn.Module):
        # a Module's method: capture names its parameters as in state_dict
        def __init__(self) -> None:
            super().__init__()
            self.emb = tg.nn.Embedding(30, 6, padding_idx=0, scale_grad_by_freq=True, seed=0)
            self.lin = tg.nn.Linear(6, 2, seed=1)

        def step(self, ids: tg.Tensor, t: tg.Tensor) -> tuple[tg.Tensor, ...]:
            loss = tg.losses.cross_entropy(self.lin(self.emb(ids).mean(axis=1)), t)
            return (loss, *tg.grad(loss, [self.emb.weight, self.lin.weight]))
    m = Model()
    step = m.step
    g = tg.capture(step, tg.placeholder((None, 5), "int64", name="ids"),
                   tg.placeholder((None,), "int64", name="t"))
    path = tmp_path / "step.onnx"
    model = export(g, path=path)
    types = {n.op_type for n in model.graph.node}
    assert {"Gather", "ScatterND"} <= types
    for b in (2, 9):
        ids, t = RNG.integers(0, 30, (b, 5)), RNG.integers(0, 2, b)
        ids[0, :2] = 0                       # padding, repeated
        got = run_onnx(path, ids, t)
        want = step(tg.tensor(ids), tg.tensor(t))
        for a, w in zip(got, want):
            np.testing.assert_allclose(a, w.data, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got[1][0], 0)      # the padding row
