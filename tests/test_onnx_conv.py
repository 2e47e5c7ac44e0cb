"""ONNX export and loading of the convolution ops (tensorgraph/onnx/rules_conv.py):
onnxruntime agrees with the replay to 1e-5, conv nets at two batch sizes, and
models read back (ours and PyTorch's) replay like onnxruntime."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require_module
from test_onnx import check, one_op, rand, run_onnx

#: the rules tested here (tests/test_onnx.py's test_every_rule_is_tested reads it)
TESTED_CONV = {"conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "flatten"}

P0 = ((0, 0), (0, 0))

ONE_OP = [
    ("conv2d", [(2, 3, 7, 6), (4, 3, 3, 3), (4,)], dict(stride=(1, 1), padding=P0,
                                                       dilation=(1, 1), groups=1)),
    ("conv2d", [(1, 4, 8, 5), (6, 2, 2, 3)], dict(stride=(2, 1), padding=((1, 2), (0, 1)),
                                                 dilation=(1, 2), groups=2)),
    ("conv1d", [(2, 2, 9), (3, 2, 4), (3,)], dict(stride=(2,), padding=((1, 2),),
                                                 dilation=(2,), groups=1)),
    ("conv_transpose2d", [(2, 4, 3, 4), (4, 3, 3, 2), (6,)],
     dict(stride=(2, 3), padding=((1, 1), (0, 0)), output_padding=(1, 2), dilation=(1, 1),
          groups=2)),
    ("conv_transpose1d", [(1, 2, 5), (2, 3, 3)],
     dict(stride=(2,), padding=((1, 1),), output_padding=(0,), dilation=(2,), groups=1)),
    ("flatten", [(2, 3, 4, 5)], dict(start_dim=1, end_dim=3)),
    ("flatten", [(2, 3, 4, 5)], dict(start_dim=1, end_dim=2)),
    ("flatten", [(2, 3, 4, 5)], dict(start_dim=0, end_dim=3)),
    ("flatten", [(2, 3, 4, 5)], dict(start_dim=2, end_dim=3)),
]


@pytest.mark.parametrize("name,shapes,attrs", ONE_OP, ids=[f"{c[0]}-{i}" for i, c in
                                                           enumerate(ONE_OP)])
def test_one_op(name: str, shapes: list[tuple[int, ...]], attrs: dict[str, Any],
                tmp_path: Path) -> None:
    args = [rand(*s) for s in shapes]
    check(one_op(name, args, attrs), tmp_path, *args)


def _net() -> tg.nn.Module:
    nn = tg.nn
    return nn.Sequential(nn.Conv2d(1, 4, 5, padding="same", seed=0), nn.ReLU(),
                         nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, groups=2, seed=1),
                         nn.Tanh(), nn.Conv2d(6, 6, 2, padding="same", dilation=2, seed=2),
                         nn.Flatten(), nn.Linear(6 * 6 * 5, 10, seed=3), nn.Softmax())


def test_conv_net_exports_checks_and_agrees_at_two_batch_sizes(tmp_path: Path) -> None:
    onnx = require_module("onnx")
    from tensorgraph.onnx import export, load
    net = _net()
    path = tmp_path / "cnn.onnx"
    model = export(net, tg.placeholder((None, 1, 11, 9), name="x"), path=path)
    onnx.checker.check_model(model)
    types = [n.op_type for n in model.graph.node]
    assert types.count("Conv") == 3 and "Flatten" in types
    assert {i.name for i in model.graph.initializer} >= {"layers.0.weight", "layers.2.bias"}
    g = load(path)
    assert [n.op.name for n in g.nodes if n.op.name.startswith("conv")] == ["conv2d"] * 3
    for batch in (1, 17):
        x = rand(batch, 1, 11, 9)
        want = net(x).data
        (got,) = run_onnx(path, x)
        assert got.shape == (batch, 10)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(g(x).data, want, rtol=1e-6, atol=1e-6)


def test_conv1d_and_transposed_net_at_two_batch_sizes(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import export
    w1 = tg.tensor(rand(4, 3, 3), requires_grad=True)
    w2 = tg.tensor(rand(4, 2, 4), requires_grad=True)

    def f(x: tg.Tensor) -> tg.Tensor:
        h = tg.relu(tg.conv1d(x, w1, padding="same"))
        return tg.flatten(tg.conv_transpose1d(h, w2, stride=2, padding=1, output_padding=1))
    path = tmp_path / "m.onnx"
    export(f, tg.placeholder((None, 3, 7)), path=path)
    for batch in (2, 5):
        x = rand(batch, 3, 7)
        np.testing.assert_allclose(run_onnx(path, x)[0], f(tg.tensor(x)).data, rtol=1e-5,
                                   atol=1e-5)


def test_negative_padding_of_a_backward_conv_is_refused(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import ExportError, export
    x, w = rand(1, 1, 6, 6), rand(1, 1, 2, 2)
    g = one_op("conv2d", [x, w], dict(stride=(1, 1), padding=((0, -1), (0, 0)), dilation=(1, 1),
                                      groups=1))
    with pytest.raises(ExportError, match=r"op 'conv2d'.*negative padding"):
        export(g, path=tmp_path / "m.onnx")


def _conv_model(onnx: Any, op_type: str, x_shape: tuple[int, ...], w: np.ndarray,
                **attrs: Any) -> Any:
    h = onnx.helper
    node = h.make_node(op_type, ["x", "w"], ["y"], **attrs)
    graph = h.make_graph([node], "g", [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                                                ["batch", *x_shape[1:]])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", "c", "h", "w"])],
                         [onnx.numpy_helper.from_array(w, "w")])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("attrs", [dict(auto_pad="SAME_UPPER", strides=[2, 2]),
                                   dict(auto_pad="SAME_LOWER", strides=[1, 2]),
                                   dict(auto_pad="VALID", dilations=[2, 1]),
                                   dict(pads=[0, 1, 2, 1], strides=[3, 1])],
                         ids=["same_upper", "same_lower", "valid", "pads"])
def test_load_conv_with_onnx_padding_rules(attrs: dict[str, Any], tmp_path: Path) -> None:
    onnx = require_module("onnx")
    from tensorgraph.onnx import load
    path = tmp_path / "m.onnx"
    onnx.save(_conv_model(onnx, "Conv", (1, 2, 7, 8), rand(3, 2, 3, 2), **attrs), str(path))
    g = load(path)
    for batch in (1, 4):
        x = rand(batch, 2, 7, 8)
        np.testing.assert_allclose(g(x).data, run_onnx(path, x)[0], rtol=1e-5, atol=1e-5)


def test_load_conv_transpose(tmp_path: Path) -> None:
    onnx = require_module("onnx")
    from tensorgraph.onnx import OnnxLoadError, load
    path = tmp_path / "m.onnx"
    onnx.save(_conv_model(onnx, "ConvTranspose", (1, 4, 3, 5), rand(4, 1, 3, 2), group=2,
                          strides=[2, 2], pads=[1, 0, 0, 1], output_padding=[1, 0]), str(path))
    g = load(path)
    assert g.nodes[0].op.name == "conv_transpose2d"
    x = rand(3, 4, 3, 5)
    np.testing.assert_allclose(g(x).data, run_onnx(path, x)[0], rtol=1e-5, atol=1e-5)
    onnx.save(_conv_model(onnx, "ConvTranspose", (1, 4, 3, 5), rand(4, 1, 3, 2),
                          output_shape=[6, 10]), str(path))
    with pytest.raises(OnnxLoadError, match="ConvTranspose with output_shape"):
        load(path)


@pytest.mark.slow   # importing torch and its exporter
def test_load_a_pytorch_conv_net(tmp_path: Path) -> None:
    require_module("onnx")
    torch = require_module("torch")
    from tensorgraph.onnx import load
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 5, padding=2), torch.nn.ReLU(),
                              torch.nn.Conv2d(4, 8, 3, stride=2, groups=2), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 6 * 6, 10))
    path = tmp_path / "torch_cnn.onnx"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.randn(2, 1, 14, 14),), str(path), dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    g = load(path)
    assert [n.op.name for n in g.nodes].count("conv2d") == 2
    for batch in (1, 6):
        x = torch.randn(batch, 1, 14, 14)
        np.testing.assert_allclose(g(x.numpy()).data, net(x).detach().numpy(),
                                   rtol=1e-5, atol=1e-5)
