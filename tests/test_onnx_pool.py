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
# and the VJP rules (tests/test_onnx_grad.py checks each VJP has a rule or a refusal)


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
    from test_onnx_torch import torch_export
    torch_export(net, (torch.randn(2, 3, 12, 12),), path, dynamo=False, names=["x"])
    g = load(path)
    for batch in (1, 6):
        x = torch.randn(batch, 3, 12, 12)
        np.testing.assert_allclose(g(x.numpy()).data, net(x).detach().numpy(),
                                   rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------
# A captured training step (tg.grad) through pooling and batch norm, in onnxruntime

def _step_check(net: Any, params: list[Any], x_shape: tuple[Any, ...], out_dim: int,
                tmp_path: Path) -> None:
    from test_onnx_grad import check_step
    feeds = [[rand(b, *x_shape[1:]), rand(b, out_dim)] for b in (2, 5)]
    check_step(net, params, tg.losses.mse, x_shape, tg.placeholder((None, out_dim)), feeds,
               tmp_path)


def test_a_training_step_through_pooling_exports(tmp_path: Path) -> None:
    w = tg.tensor(RNG.normal(size=(3, 1, 1)).astype(np.float32), requires_grad=True)

    def net(x: tg.Tensor) -> tg.Tensor:
        h = tg.max_pool2d(tg.tanh(x * w), 3, 2, 1, ceil_mode=True)          # 7x6 -> 4x3
        h = tg.avg_pool2d(h, 2, 1, 1, ceil_mode=True, count_include_pad=False)  # -> 5x4
        return tg.flatten(tg.avg_pool2d(h, 3, 2, 1))                        # -> 3x2
    _step_check(net, [w], (None, 3, 7, 6), 27, tmp_path)


def test_a_training_step_through_1d_pooling_exports(tmp_path: Path) -> None:
    w = tg.tensor(RNG.normal(size=(2, 1)).astype(np.float32), requires_grad=True)

    def net(x: tg.Tensor) -> tg.Tensor:
        h = tg.max_pool1d(tg.tanh(x * w), 3, 1, 1, dilation=2)              # 11 -> 9
        return tg.flatten(tg.avg_pool1d(h, 4, 3, 2, ceil_mode=True))        # -> 4
    _step_check(net, [w], (None, 2, 11), 8, tmp_path)


def test_a_training_step_through_batch_norm_in_evaluation_mode_exports(tmp_path: Path) -> None:
    # every input of batch_norm differentiated (mean and var too)
    w = tg.tensor(RNG.uniform(0.5, 1.5, (3, 1, 1)).astype(np.float32), requires_grad=True)
    mean = tg.tensor(rand(3), requires_grad=True)
    var = tg.tensor(RNG.uniform(0.5, 2, 3).astype(np.float32), requires_grad=True)
    gamma = tg.tensor(rand(3), requires_grad=True)
    beta = tg.tensor(rand(3), requires_grad=True)

    def net(x: tg.Tensor) -> tg.Tensor:
        return tg.flatten(tg.tanh(tg.batch_norm(x * w, mean, var, gamma, beta, eps=1e-3)))
    _step_check(net, [w, mean, var, gamma, beta], (None, 3, 2, 2), 12, tmp_path)
    bn = nn.BatchNorm1d(5)
    bn(rand(8, 5) * 2 + 1)
    bn.eval()                                                     # (N, C), a module
    _step_check(lambda x: bn(x) * 2.0, [bn.weight, bn.bias], (None, 5), 5, tmp_path)


POOL_VJP_CASES: list[tuple[str, int, list[np.ndarray], dict[str, Any]]] = [
    ("max_pool2d", 0, [rand(2, 3, 7, 6)], dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1),
                                               dilation=(1, 1), ceil_mode=True)),
    ("max_pool2d", 0, [rand(3, 6, 5)], dict(kernel_size=(2, 2), stride=(1, 1), padding=(0, 0),
                                            dilation=(2, 1), ceil_mode=False)),
    ("max_pool1d", 0, [rand(2, 3, 9)], dict(kernel_size=(2,), stride=(2,), padding=(1,),
                                            dilation=(1,), ceil_mode=False)),
    ("avg_pool2d", 0, [rand(2, 3, 7, 6)], dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1),
                                               ceil_mode=True, count_include_pad=True,
                                               divisor_override=None)),
    ("avg_pool2d", 0, [rand(1, 2, 7, 5)], dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 0),
                                               ceil_mode=False, count_include_pad=False,
                                               divisor_override=None)),
    ("avg_pool2d", 0, [rand(3, 5, 5)], dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0),
                                            ceil_mode=False, count_include_pad=True,
                                            divisor_override=3)),
    ("avg_pool1d", 0, [rand(2, 3, 11)], dict(kernel_size=(4,), stride=(3,), padding=(2,),
                                             ceil_mode=True, count_include_pad=True,
                                             divisor_override=None)),
] + [("batch_norm", i, [rand(4, 3, 2, 2), rand(3), RNG.uniform(0.5, 2, 3).astype(np.float32),
                        rand(3), rand(3)], {"eps": 1e-3}) for i in range(5)] + [
    ("batch_norm", i, [rand(4, 3), rand(3), RNG.uniform(0.5, 2, 3).astype(np.float32),
                       rand(3), rand(3)], {"eps": 1e-5}) for i in (0, 2)]
POOL_VJP_TESTED = {f"{c[0]}_vjp{c[1]}" for c in POOL_VJP_CASES}


@pytest.mark.parametrize("k", range(len(POOL_VJP_CASES)),
                         ids=[f"{c[0]}_vjp{c[1]}" for c in POOL_VJP_CASES])
def test_vjp_rule(k: int, tmp_path: Path) -> None:
    from test_onnx_grad import check_vjp
    name, i, args, attrs = POOL_VJP_CASES[k]
    check_vjp(name, i, args, tmp_path, attrs)
