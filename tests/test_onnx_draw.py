"""Drawing a loaded ONNX model, `tg.draw(tg.onnx.load(path))`, in the ops
and modules views: the boxes are the loaded graph's ops and parameters, the
modules view boxes the scopes the loader read from the node names ("/fc1/Gemm",
as PyTorch writes them) or from tensorgraph's own export. Rendered to SVG
with whichever Graphviz backend is installed."""
from __future__ import annotations

from pathlib import Path

import numpy as np

import tensorgraph as tg
from conftest import require_module
from test_draw import any_backend, cluster_tree, labels, svg_texts

RNG = np.random.default_rng(5)


def torch_like_model(path: Path) -> None:
    """Linear-ReLU-Linear-Softmax written as PyTorch's TorchScript exporter
    writes it: Gemm with transB, node names "/fc1/Gemm", weights by state_dict name."""
    onnx = require_module("onnx")
    h, nh = onnx.helper, onnx.numpy_helper
    inits = [nh.from_array(RNG.normal(size=(4, 3)).astype(np.float32), "fc1.weight"),
             nh.from_array(RNG.normal(size=4).astype(np.float32), "fc1.bias"),
             nh.from_array(RNG.normal(size=(2, 4)).astype(np.float32), "fc2.weight"),
             nh.from_array(RNG.normal(size=2).astype(np.float32), "fc2.bias")]
    nodes = [h.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h"], name="/fc1/Gemm", transB=1),
             h.make_node("Relu", ["h"], ["r"], name="/act/Relu"),
             h.make_node("Gemm", ["r", "fc2.weight", "fc2.bias"], ["z"], name="/fc2/Gemm", transB=1),
             h.make_node("Softmax", ["z"], ["y"], name="/Softmax", axis=-1)]
    x = h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 3])
    y = h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 2])
    model = h.make_model(h.make_graph(nodes, "torch_like", [x], [y], initializer=inits),
                         opset_imports=[h.make_opsetid("", 18)])
    onnx.save(model, path)


def test_a_loaded_pytorch_style_model_draws_in_both_views(tmp_path: Path) -> None:
    from tensorgraph.onnx import load
    torch_like_model(tmp_path / "m.onnx")
    g = load(tmp_path / "m.onnx")
    backend = any_backend()

    ops = tg.draw(g)                                   # the ops view: no boxes
    assert "subgraph" not in ops.source
    first = [lab.split("\n")[0] for lab in labels(ops.source).values()]
    assert sorted(first) == sorted(["x", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
                                   + [n.op.name for n in g.nodes])
    texts = svg_texts(ops.svg(backend))
    for want in ("x", "fc1.weight", "matmul", "relu", "softmax", "(?, 3)", "(?, 2)"):
        assert want in texts, want

    mods = tg.draw(g, view="modules")                  # one box per "/" scope
    labs = labels(mods.source)
    tree = {box: (parent, [labs[i].split("\n")[0] for i in ids])
            for box, (parent, ids) in cluster_tree(mods.source).items()}
    assert tree["fc1"] == ("<root>", ["weight", "transpose", "matmul", "bias", "add"])
    assert tree["act"] == ("<root>", ["relu"])
    assert tree["fc2"] == ("<root>", ["weight", "transpose", "matmul", "bias", "add"])
    assert sorted(tree["<root>"][1]) == ["softmax", "x"]
    texts = svg_texts(mods.svg(backend))
    for want in ("fc1", "act", "fc2", "weight", "bias", "relu", "softmax"):
        assert want in texts, want


def test_a_round_trip_of_our_export_draws_with_its_module_scopes(tmp_path: Path) -> None:
    from tensorgraph.onnx import export, load
    net = tg.nn.FeedForward([6, 5, 3], activation="tanh", output="softmax", init="xavier",
                            seed=0)
    export(net, tg.placeholder((None, 6)), path=tmp_path / "m.onnx")
    g = load(tmp_path / "m.onnx")
    mods = tg.draw(g, view="modules")
    tree = cluster_tree(mods.source)
    scope = g.nodes[0].scope                            # ("feedforward", "layers", "0")
    assert scope[-2:] == ("layers", "0")
    assert tree["0"][0] == "layers" and tree["layers"][0] == scope[0]
    texts = svg_texts(mods.svg(any_backend()))
    for want in ("feedforward", "layers", "tanh", "softmax", "weight"):
        assert want in texts, want
