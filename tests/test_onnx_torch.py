"""Loading models that PyTorch's ONNX exporters write: the loaded Graph
replays as torch computes (1e-5, float32) at two batch sizes. Both exporters:
TorchScript (`dynamo=False`: Gemm, Flatten, Shape/Gather/Concat for
`x.view(x.size(0), -1)`) and dynamo (`dynamo=True`, which needs onnxscript:
Reshape, Gemm, node scopes in its metadata). Importing torch and exporting
take seconds: slow."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import require_module

pytestmark = pytest.mark.slow


def torch_export(net: Any, example: tuple[Any, ...], path: Path, dynamo: bool,
                 names: list[str]) -> None:
    """torch.onnx.export with the first axis of every input open ("batch")."""
    torch = require_module("torch")
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # the TorchScript exporter is deprecated; it still works
        if dynamo:
            require_module("onnxscript")    # torch's dynamo exporter is written with it
            batch = torch.export.Dim("batch")
            torch.onnx.export(net, example, str(path), dynamo=True, input_names=names,
                              dynamic_shapes=tuple({0: batch} for _ in example))
        else:
            torch.onnx.export(net, example, str(path), dynamo=False, input_names=names,
                              dynamic_axes={n: {0: "batch"} for n in names})


def mlp() -> Any:
    torch = require_module("torch")
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Dropout(0.3),
                         nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 16), nn.Sigmoid(),
                         nn.Linear(16, 10), nn.LogSoftmax(-1))


def check_loaded(path: Path, net: Any, make: Any) -> Any:
    """Load path; at two batch sizes the replay equals net's output."""
    torch = require_module("torch")
    from tensorgraph.onnx import load
    g = load(path)
    for batch in (1, 7):
        args = make(batch)
        want = net(*[torch.from_numpy(a) for a in args]).detach().numpy()
        got = g(*args).data
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    return g


def images(batch: int) -> tuple[np.ndarray]:
    return (np.random.default_rng(batch).random((batch, 1, 28, 28), dtype=np.float32),)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_load_a_pytorch_mlp_of_every_activation(dynamo: bool, tmp_path: Path) -> None:
    torch = require_module("torch")
    net = mlp()
    path = tmp_path / "mlp.onnx"
    torch_export(net, (torch.randn(2, 1, 28, 28),), path, dynamo, ["x"])
    g = check_loaded(path, net, images)
    assert {"1.weight", "1.bias", "8.weight"} <= set(g.parameters)
    ops = [n.op.name for n in g.nodes]
    assert {"matmul", "relu", "tanh", "sigmoid", "log_softmax", "reshape"} <= set(ops)
    # the Linear layers' scopes are their names in the Sequential
    assert {n.scope for n in g.nodes if n.op.name == "matmul"} == {("1",), ("4",), ("6",), ("8",)}
    # drawn in the modules view, one box per Linear (and per activation)
    import tensorgraph as tg
    from test_draw import cluster_tree
    assert {"1", "2", "4", "5", "6", "7", "8"} <= set(cluster_tree(tg.draw(g, view="modules").source))


class Viewed:
    """x.view(x.size(0), -1), softmax and dropout in eval: Shape, Gather,
    Unsqueeze, Concat and a computed Reshape target in the TorchScript export."""

    @staticmethod
    def make() -> Any:
        torch = require_module("torch")

        class Net(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc1, self.fc2 = torch.nn.Linear(12, 8), torch.nn.Linear(8, 4)
                self.drop = torch.nn.Dropout(0.5)

            def forward(self, x: Any) -> Any:
                x = x.view(x.size(0), -1)
                return torch.softmax(self.fc2(self.drop(torch.relu(self.fc1(x)))), dim=-1)
        torch.manual_seed(1)
        return Net()


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_load_a_view_of_the_batch_and_softmax(dynamo: bool, tmp_path: Path) -> None:
    torch = require_module("torch")
    net = Viewed.make()
    path = tmp_path / "view.onnx"
    torch_export(net, (torch.randn(2, 3, 4),), path, dynamo, ["x"])
    g = check_loaded(path, net, lambda b: (np.random.default_rng(b).normal(size=(b, 3, 4)).astype(np.float32),))
    # the shape arithmetic became the reshape's attribute: no node left computing it
    assert [n.op.name for n in g.nodes] == ["reshape", "transpose", "matmul", "add", "relu",
                                           "transpose", "matmul", "add", "softmax"]
    assert g.nodes[0].attrs["shape"] == (-1, 12)


def test_load_gather_elements_and_isnan(tmp_path: Path) -> None:
    # torch.gather (a cross-entropy's pick of the targets' log-probabilities)
    # and torch.isnan export as GatherElements and IsNaN.
    torch = require_module("torch")

    class Net(torch.nn.Module):
        def forward(self, z: Any, t: Any) -> Any:
            z = torch.where(torch.isnan(z), torch.zeros_like(z), z)
            return -torch.log_softmax(z, -1).gather(1, t.unsqueeze(1)).squeeze(1)
    net = Net()
    path = tmp_path / "pick.onnx"
    torch_export(net, (torch.randn(2, 5), torch.tensor([1, 4])), path, False, ["z", "t"])
    import onnx
    types = {n.op_type for n in onnx.load(path).graph.node}
    assert {"GatherElements", "IsNaN"} <= types

    def make(b: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(b)
        z = rng.normal(size=(b, 5)).astype(np.float32)
        z[0, 2] = np.nan
        return z, rng.integers(0, 5, b)
    check_loaded(path, net, make)
