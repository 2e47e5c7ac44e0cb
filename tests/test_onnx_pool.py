"""ONNX export of pooling and batch normalisation (tensorgraph/onnx/rules_pool.py):
MaxPool, AveragePool, BatchNormalization checked by onnxruntime against the
replay to 1e-5 at two batch sizes; training-mode batch norm and the backward
ops refused with the reason and the fix; the models read back by `load`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require_module
from tensorgraph import nn

RNG = np.random.default_rng(0)

# the rules this file tests (tests/test_onnx.py checks every rule is tested somewhere)
POOL_TESTED = {"max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "batch_norm"}


def rand(*shape: int) -> np.ndarray:
    return RNG.uniform(-2, 2, shape).astype(np.float32)


def run_onnx(path: Path, *args: np.ndarray) -> list[np.ndarray]:
    ort = require_module("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, dict(zip(names, args)))


def check(fn: Any, shape: tuple[int, ...], tmp_path: Path, batches: tuple[int, ...] = (1, 5),
          unbatched: bool = False) -> Any:
    """Export fn captured with an open batch (or a fixed unbatched shape); onnxruntime
    agrees with tensorgraph at two batch sizes, and the model passes onnx.checker."""
    onnx = require_module("onnx")
    from tensorgraph.onnx import export
    path = tmp_path / "m.onnx"
    example = tg.placeholder(shape if unbatched else (None,) + shape)
    export(fn, example, path=path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    for b in (None,) if unbatched else batches:
        x = rand(*(shape if b is None else (b,) + shape))
        (got,) = run_onnx(path, x)
        want = fn(tg.tensor(x)).data
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    return path


POOLS = [
    ("max 2x2", lambda x: tg.max_pool2d(x, 2), (3, 8, 8)),
    ("max padded ceil", lambda x: tg.max_pool2d(x, 3, 2, 1, ceil_mode=True), (2, 7, 6)),
    ("max dilated", lambda x: tg.max_pool2d(x, (2, 3), (1, 2), (1, 1), (2, 1)), (2, 7, 9)),
    ("max ceil no pad", lambda x: tg.max_pool2d(x, 3, 2, ceil_mode=True), (1, 6, 8)),
    ("avg 2x2", lambda x: tg.avg_pool2d(x, 2), (3, 8, 8)),
    ("avg padded", lambda x: tg.avg_pool2d(x, 3, 2, 1), (2, 7, 6)),
    ("avg padded ceil", lambda x: tg.avg_pool2d(x, 3, 2, 1, ceil_mode=True), (2, 6, 6)),
    ("avg no pad count", lambda x: tg.avg_pool2d(x, 3, 2, 1, True, False), (2, 6, 7)),
    ("avg divisor", lambda x: tg.avg_pool2d(x, 2, 1, divisor_override=3), (1, 5, 5)),
    ("max1d", lambda x: tg.max_pool1d(x, 3, 2, 1, ceil_mode=True), (3, 10)),
    ("avg1d", lambda x: tg.avg_pool1d(x, 4, 3, 2, ceil_mode=True), (3, 11)),
]


@pytest.mark.parametrize("name,fn,shape", POOLS, ids=[p[0] for p in POOLS])
def test_pooling_agrees_with_onnxruntime(name: str, fn: Any, shape: tuple[int, ...],
                                         tmp_path: Path) -> None:
    check(fn, shape, tmp_path)


def test_unbatched_pooling_exports(tmp_path: Path) -> None:
    check(lambda x: tg.max_pool2d(x, 3, 2, 1), (2, 7, 7), tmp_path, unbatched=True)
    check(lambda x: tg.avg_pool1d(x, 3, 2, 1, True), (2, 9), tmp_path, unbatched=True)


@pytest.mark.parametrize("shape", [(3,), (3, 5), (3, 4, 4)])
def test_batch_norm_in_evaluation_mode_agrees_with_onnxruntime(shape: tuple[int, ...],
                                                                tmp_path: Path) -> None:
    bn = (nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d)(3)
    for _ in range(2):
        bn(rand(6, *shape) * 3 + 1)                  # running statistics away from 0 and 1
    with tg.no_grad():
        bn.weight.data[...] = rand(3)
        bn.bias.data[...] = rand(3)
    bn.eval()
    path = check(bn, shape, tmp_path, batches=(2, 7))
    onnx = require_module("onnx")
    assert [n.op_type for n in onnx.load(str(path)).graph.node] == ["BatchNormalization"]


def test_a_small_conv_free_net_exports_and_reads_back(tmp_path: Path) -> None:
    net = nn.Sequential(nn.BatchNorm2d(2), nn.MaxPool2d(2), nn.AvgPool2d(3, 1, 1),
                        nn.MaxPool2d(3, 2, 1, ceil_mode=True),
                        nn.AvgPool2d(3, 2, 1, ceil_mode=True))     # a divisor correction
    net(rand(4, 2, 9, 9))
    net.eval()
    path = check(net, (2, 9, 9), tmp_path)
    from tensorgraph.onnx import load
    g = load(path)
    assert {n.op.name for n in g.nodes} >= {"batch_norm", "max_pool2d", "avg_pool2d"}
    x = rand(3, 2, 9, 9)
    np.testing.assert_allclose(g(x).data, net(x).data, rtol=1e-6, atol=1e-6)


def test_training_mode_is_refused_with_the_fix(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import ExportError, export
    for bn in (nn.BatchNorm2d(2), nn.BatchNorm2d(2, track_running_stats=False)):
        with pytest.raises(ExportError, match=r"op 'batch_norm_train' .* batch normalisation in "
                                              r"training mode .* call .eval\(\) on the model"):
            export(bn, tg.placeholder((None, 2, 3, 3)), path=tmp_path / "m.onnx")
    assert int(bn.num_batches_tracked.data) == 0 if bn.track_running_stats else True


def test_the_backward_ops_are_refused(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import ExportError, export
    w = tg.tensor(rand(1, 2, 1, 1), requires_grad=True)

    def step(x: tg.Tensor) -> Any:
        return tg.grad(tg.max_pool2d(x * w, 2, 1).sum(), [w], create_graph=True)[0]
    with pytest.raises(ExportError, match=r"op 'max_pool_scatter' .* it is the backward of max "
                                          r"pooling; export the forward pass"):
        export(step, rand(2, 2, 4, 4), path=tmp_path / "m.onnx")


@pytest.mark.slow   # importing torch and its exporter: seconds
def test_load_a_pytorch_model_with_pooling_and_batch_norm(tmp_path: Path) -> None:
    require_module("onnx")
    torch = require_module("torch")
    from tensorgraph.onnx import load
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.BatchNorm2d(3), torch.nn.MaxPool2d(2),
                              torch.nn.AvgPool2d(3, 1, 1), torch.nn.MaxPool2d(3, 2, 1))
    net(torch.randn(8, 3, 12, 12) * 2 + 1)
    net.eval()
    path = tmp_path / "torch.onnx"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.randn(2, 3, 12, 12),), str(path), dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    g = load(path)
    for batch in (1, 6):
        x = torch.randn(batch, 3, 12, 12)
        np.testing.assert_allclose(g(x.numpy()).data, net(x).detach().numpy(),
                                   rtol=1e-5, atol=1e-5)
