"""ONNX export, checked by onnxruntime: for each exportable op, the model
onnxruntime runs gives what the op's numpy forward gives (1e-5, float32);
networks at two batch sizes; refusals name the op, its scope and the reason;
a failed export leaves no file behind."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgraph as tg
from tensorgraph.graph import Graph, GraphNode, Value
from tensorgraph.ops import all_ops

from conftest import require_module
from strategies import broadcast_shapes, reduction_args, shapes

RNG = np.random.default_rng(0)


def one_op(opname: str, args: list[np.ndarray], attrs: Optional[dict[str, Any]] = None,
           scope: tuple[str, ...] = ()) -> Graph:
    """A graph of one node: `opname` on inputs x0, x1, ... (hand-built, as docs/graphs.md shows)."""
    op = all_ops()[opname]
    attrs = attrs or {}
    ins = [Value(f"x{i}", a.shape, a.dtype, "input") for i, a in enumerate(args)]
    out = op.forward(*args, **attrs)
    out = np.asarray(out[0] if op.saves else out)
    v = Value(opname, out.shape, out.dtype, "op")
    v.node = GraphNode(opname, op, ins, attrs, v, scope=scope)
    return Graph(ins, [v], [v.node])


def run_onnx(path: Path, *args: np.ndarray) -> list[np.ndarray]:
    ort = require_module("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, dict(zip(names, args)))


def check(g: Graph, tmp_path: Path, *args: np.ndarray, **kw: Any) -> None:
    """Export g; onnxruntime's outputs equal the replay's (same dtype, 1e-5)."""
    require_module("onnx")
    from tensorgraph.onnx import export
    path = tmp_path / "m.onnx"
    export(g, path=path, **kw)
    got = run_onnx(path, *args)
    want = g(*args)
    want = [want] if not isinstance(want, (tuple, list)) else list(want)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        b = np.asarray(b.data if isinstance(b, tg.Tensor) else b)
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def rand(*shape: int, lo: float = -2.0, hi: float = 2.0) -> np.ndarray:
    return RNG.uniform(lo, hi, shape).astype(np.float32)


# ---------------------------------------------------------------------------
# Every exportable op, one node each

UNARY = ["neg", "abs", "exp", "tanh", "sigmoid", "relu", "softplus", "square", "sign",
         "sin", "cos", "tan", "arctan", "sinh", "cosh", "arcsinh", "floor", "ceil", "clone"]
POSITIVE = ["log", "sqrt", "reciprocal"]
DOMAIN = {"arcsin": (-0.9, 0.9), "arccos": (-0.9, 0.9), "arctanh": (-0.9, 0.9),
          "arccosh": (1.1, 3.0), "tan": (-1.2, 1.2)}


@pytest.mark.parametrize("name", UNARY + POSITIVE + sorted(DOMAIN))
def test_unary(name: str, tmp_path: Path) -> None:
    lo, hi = DOMAIN.get(name, (0.2, 2.0) if name in POSITIVE else (-2.0, 2.0))
    x = rand(3, 4, lo=lo, hi=hi)
    check(one_op(name, [x]), tmp_path, x)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow", "maximum", "minimum"])
def test_binary_broadcasting(name: str, tmp_path: Path) -> None:
    a = rand(2, 3, 4, lo=0.5) if name == "pow" else rand(2, 3, 4)
    b = rand(3, 1, lo=0.5)
    check(one_op(name, [a, b]), tmp_path, a, b)


@pytest.mark.parametrize("name", ["less", "less_equal", "greater", "greater_equal",
                                  "equal", "not_equal"])
def test_comparisons(name: str, tmp_path: Path) -> None:
    a = RNG.integers(-2, 3, (4, 5)).astype(np.float32)     # ties on purpose
    b = RNG.integers(-2, 3, (5,)).astype(np.float32)
    check(one_op(name, [a, b]), tmp_path, a, b)


def test_logic_and_where(tmp_path: Path) -> None:
    c, d = RNG.random((3, 4)) > 0.5, RNG.random((3, 4)) > 0.5
    for name in ("logical_and", "logical_or"):
        check(one_op(name, [c, d]), tmp_path, c, d)
    check(one_op("logical_not", [c]), tmp_path, c)
    a, b = rand(3, 4), rand(4)
    check(one_op("where", [c, a, b]), tmp_path, c, a, b)


def test_mixed_dtypes_are_cast_as_numpy_promotes(tmp_path: Path) -> None:
    a, i = rand(3, 4), RNG.integers(1, 4, (4,)).astype(np.int32)
    check(one_op("add", [a, i]), tmp_path, a, i)     # float32 + int32 -> float64, as numpy
    check(one_op("div", [i, i]), tmp_path, i, i)     # true division of ints: float64
    check(one_op("sum", [i], {"axis": None, "keepdims": False}), tmp_path, i)   # int64 sum


@pytest.mark.parametrize("attrs", [{"negative_slope": 0.1}])
def test_leaky_relu(attrs: dict[str, Any], tmp_path: Path) -> None:
    x = rand(4, 5)
    check(one_op("leaky_relu", [x], attrs), tmp_path, x)


@pytest.mark.parametrize("lo,hi", [(-0.5, 0.5), (None, 0.3), (-0.2, None),
                                   (np.linspace(-1, 0, 5).astype(np.float32), 0.5)])
def test_clip(lo: Any, hi: Any, tmp_path: Path) -> None:
    x = rand(4, 5)
    check(one_op("clip", [x], {"lo": lo, "hi": hi}), tmp_path, x)


@pytest.mark.parametrize("a,b", [((4, 3), (3, 2)), ((2, 4, 3), (3, 5)), ((3,), (3, 2)),
                                 ((4, 3), (3,)), ((2, 1, 4, 3), (5, 3, 2))])
def test_matmul(a: tuple[int, ...], b: tuple[int, ...], tmp_path: Path) -> None:
    x, y = rand(*a), rand(*b)
    check(one_op("matmul", [x, y]), tmp_path, x, y)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod", "logsumexp"])
@pytest.mark.parametrize("axis,keepdims", [(None, False), (1, True), ((0, 2), False), (-1, False)])
def test_reductions(name: str, axis: Any, keepdims: bool, tmp_path: Path) -> None:
    x = rand(2, 3, 4)
    check(one_op(name, [x], {"axis": axis, "keepdims": keepdims}), tmp_path, x)


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_reductions_hypothesis(data: Any, tmp_path_factory: Any) -> None:
    shape = data.draw(shapes(min_dims=1))
    axis, keepdims = data.draw(reduction_args(len(shape)))
    name = data.draw(st.sampled_from(["sum", "mean", "max"]))
    x = rand(*shape)
    check(one_op(name, [x], {"axis": axis, "keepdims": keepdims}),
          tmp_path_factory.mktemp("h"), x)


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_binary_hypothesis(data: Any, tmp_path_factory: Any) -> None:
    (sa, sb), _ = data.draw(broadcast_shapes())
    name = data.draw(st.sampled_from(["add", "sub", "mul", "maximum"]))
    a, b = rand(*sa), rand(*sb)
    check(one_op(name, [a, b]), tmp_path_factory.mktemp("h"), a, b)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax(name: str, axis: int, tmp_path: Path) -> None:
    x = rand(3, 5, lo=-10, hi=10)
    check(one_op(name, [x], {"axis": axis}), tmp_path, x)


SHAPE_CASES: list[tuple[str, tuple[int, ...], dict[str, Any]]] = [
    ("reshape", (4, 6), {"shape": (4, 3, 2)}),
    ("reshape", (4, 6), {"shape": (-1,)}),
    ("reshape", (4, 6), {"shape": (2, -1)}),
    ("transpose", (2, 3, 4), {"axes": None}),
    ("transpose", (2, 3, 4), {"axes": (1, -1, 0)}),
    ("expand_dims", (2, 3), {"axis": 1}),
    ("expand_dims", (2, 3), {"axis": (0, -1)}),
    ("squeeze", (2, 1, 3, 1), {"axis": None}),
    ("squeeze", (2, 1, 3, 1), {"axis": (-1,)}),
    ("broadcast_to", (3, 1), {"shape": (2, 3, 4)}),
    ("flip", (2, 3, 4), {"axis": (0, 2)}),
    ("flip", (2, 3), {"axis": None}),
    ("astype", (2, 3), {"dtype": np.dtype(np.int32)}),
]


@pytest.mark.parametrize("name,shape,attrs", SHAPE_CASES)
def test_shape_ops(name: str, shape: tuple[int, ...], attrs: dict[str, Any],
                   tmp_path: Path) -> None:
    x = rand(*shape)
    check(one_op(name, [x], attrs), tmp_path, x)


@pytest.mark.parametrize("name", ["concat", "stack"])
def test_joins(name: str, tmp_path: Path) -> None:
    a, b, c = rand(2, 3), rand(2, 3), rand(2, 3)
    check(one_op(name, [a, b, c], {"axis": 1}), tmp_path, a, b, c)


INDEXES: list[tuple[Any, ...]] = [
    (1,), (-1,), (slice(1, 3),), (slice(None), slice(None, None, -1)), (Ellipsis, 0),
    (None, slice(0, 2), Ellipsis, None), (slice(None), -2, slice(3, None, 2)),
    (np.array([0, 2, 2]),), (slice(None), np.array([[3, 0], [1, 1]])),
    (Ellipsis, np.array(-1)), (slice(-3, -1), 1, None),
]


@pytest.mark.parametrize("index", INDEXES)
def test_getitem(index: tuple[Any, ...], tmp_path: Path) -> None:
    x = rand(3, 4, 5)
    check(one_op("getitem", [x], {"index": index}), tmp_path, x)


def test_getitem_refuses_masks_and_mixed_arrays(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import ExportError, export
    x = rand(3, 4)
    with pytest.raises(ExportError, match=r"op 'getitem' \(node getitem, scope \(top level\)\) "
                                          r"cannot be written as ONNX: a boolean mask index"):
        export(one_op("getitem", [x], {"index": (x[:, 0] > 0,)}), path=tmp_path / "m.onnx")
    with pytest.raises(ExportError, match="only one integer array among slices"):
        export(one_op("getitem", [x], {"index": (np.array([0, 1]), np.array([1, 2]))}),
               path=tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []


def test_step(tmp_path: Path) -> None:
    x = rand(3, 4)
    check(one_op("step", [x]), tmp_path, x)


@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_one_hot(dtype: str, tmp_path: Path) -> None:
    i = np.array([[2, 0, 4], [1, 1, 3]])
    check(one_op("one_hot", [i], {"num_classes": 5, "dtype": np.dtype(dtype)}), tmp_path, i)


def test_samplers_are_refused_with_the_reason(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import ExportError, export
    x = rand(2, 3)
    g = tg.capture(lambda x: x + tg.randn_like(x), tg.placeholder((None, 3)))
    with pytest.raises(ExportError, match=r"randn_like.*cannot reproduce"):
        export(g, path=tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == [] and x.shape == (2, 3)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("targets", ["indices", "probabilities"])
def test_cross_entropy(reduction: str, targets: str, tmp_path: Path) -> None:
    z = rand(6, 4, lo=-5, hi=5)
    if targets == "indices":
        t = RNG.integers(0, 4, 6)
    else:
        t = RNG.random((6, 4)).astype(np.float32)
        t /= t.sum(-1, keepdims=True)
    check(one_op("cross_entropy", [z, t], {"reduction": reduction}), tmp_path, z, t)


# ---------------------------------------------------------------------------
# Networks, hand-built from their ops, at two batch sizes

def chain(x: Value, steps: list[tuple[str, list[Value], dict[str, Any], tuple[str, ...]]]) -> Graph:
    """Nodes in order; each step's first input `None` means the previous output."""
    nodes, prev = [], x
    for k, (name, others, attrs, scope) in enumerate(steps):
        ins = [prev] + others
        out = Value(f"{name}_{k}", (None,), np.float32, "op")
        out.node = GraphNode(f"{name}_{k}", all_ops()[name], ins, attrs, out, scope)
        nodes.append(out.node)
        prev = out
    return Graph([x], [prev], nodes)


def param(name: str, *shape: int) -> Value:
    return Value(name, shape, np.float32, "parameter",
                 tensor=tg.tensor(RNG.normal(0, shape[0] ** -0.5, shape).astype(np.float32),
                               requires_grad=True))   # as a layer's init: logits of order 1


def mlp(sizes: list[int]) -> Graph:
    x = Value("x", (None, sizes[0]), np.float32, "input")
    steps: list[Any] = []
    for i, (m, n) in enumerate(zip(sizes, sizes[1:])):
        s = (f"layers.{i}",)
        steps += [("matmul", [param(f"layers.{i}.weight", m, n)], {}, s),
                  ("add", [param(f"layers.{i}.bias", n)], {}, s)]
        if i < len(sizes) - 2:
            steps.append(("relu", [], {}, s))
    steps.append(("log_softmax", [], {"axis": -1}, ()))
    return chain(x, steps)


@pytest.mark.parametrize("batch", [1, 37])
def test_xor_net_at_two_batch_sizes(batch: int, tmp_path: Path) -> None:
    x = Value("x", (None, 2), np.float32, "input")
    g = chain(x, [("matmul", [param("hidden.weight", 2, 2)], {}, ("hidden",)),
                  ("add", [param("hidden.bias", 2)], {}, ("hidden",)),
                  ("tanh", [], {}, ("hidden",)),
                  ("matmul", [param("out.weight", 2, 1)], {}, ("out",)),
                  ("add", [param("out.bias", 1)], {}, ("out",)),
                  ("sigmoid", [], {}, ("out",))])
    check(g, tmp_path, rand(batch, 2))


def test_mnist_mlp_at_two_batch_sizes(tmp_path: Path) -> None:
    g = mlp([784, 64, 32, 10])
    require_module("onnx")
    from tensorgraph.onnx import export
    model = export(g, path=tmp_path / "mlp.onnx")
    assert {i.name for i in model.graph.initializer} >= {"layers.0.weight", "layers.2.bias"}
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "batch"
    for batch in (3, 128):
        x = rand(batch, 784)
        (got,) = run_onnx(tmp_path / "mlp.onnx", x)
        np.testing.assert_allclose(got, g(x).data, rtol=1e-5, atol=1e-5)


def test_reshape_keeps_the_batch_open(tmp_path: Path) -> None:
    # x.reshape(x.shape[0], -1) captured at batch 4 runs at batch 9.
    x = rand(4, 2, 3)
    g = one_op("reshape", [x], {"shape": (4, -1)})
    check(g, tmp_path, x)
    (got,) = run_onnx(tmp_path / "m.onnx", rand(9, 2, 3))
    assert got.shape == (9, 6)


def test_fixed_batch_when_asked(tmp_path: Path) -> None:
    x = rand(4, 3)
    g = one_op("tanh", [x])
    require_module("onnx")
    from tensorgraph.onnx import export
    model = export(g, path=tmp_path / "m.onnx", dynamic_batch=False, input_names=["features"],
                   output_names=["y"])
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [4, 3]
    assert model.graph.input[0].name == "features" and model.graph.output[0].name == "y"


# ---------------------------------------------------------------------------
# Bad input

def test_op_without_rule_is_refused_naming_op_scope_and_reason(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import ExportError, export
    x = rand(3, 4)
    g = one_op("svdvals", [x], scope=("encoder", "layers.1"))
    with pytest.raises(ExportError, match=r"op 'svdvals' \(node svdvals, scope encoder/layers.1\)"
                                          r" has no ONNX export rule: ONNX has no singular value"):
        export(g, path=tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []


def test_an_op_with_neither_rule_nor_refusal_is_refused_as_not_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_module("onnx")
    from tensorgraph.onnx import ExportError, RULES, export
    monkeypatch.delitem(RULES, "diagonal")     # as an op added later without a rule
    g = one_op("diagonal", [rand(3, 4)], {"offset": 0, "axis1": 0, "axis2": 1})
    with pytest.raises(ExportError, match=r"op 'diagonal' \(node diagonal, scope \(top level\)\) "
                                          r"has no ONNX export rule: no rule is written for it yet"):
        export(g, path=tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []


def test_every_op_has_a_rule_or_a_refusal() -> None:
    # A new op must decide: an export rule (tensorgraph/onnx/rules*.py) or a
    # REFUSED entry with the reason.
    from tensorgraph.onnx.rules import REFUSED, RULES
    assert [n for n in tg.all_ops() if n not in RULES and n not in REFUSED] == []
    assert set(RULES) & set(REFUSED) == set()


def test_open_sizes_where_a_rule_needs_them_are_refused(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import ExportError, export
    with pytest.raises(ExportError, match=r"op 'diagonal' .*needs their sizes"):
        export(lambda x: tg.diagonal(x), tg.placeholder((None, 3)), path=tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []


def test_failed_export_leaves_the_old_file_and_no_temp(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    require_module("onnx")
    from tensorgraph.onnx import ExportError, export
    path = tmp_path / "m.onnx"
    x = rand(3, 4)
    export(one_op("tanh", [x]), path=path)
    before = path.read_bytes()
    with pytest.raises(ExportError):
        export(one_op("svdvals", [x]), path=path)

    def crash(*a: Any) -> None:
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", crash)       # fails after the temp file is written
    with pytest.raises(OSError, match="disk full"):
        export(one_op("exp", [x]), path=path)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.onnx"]


def test_bad_names_and_opset(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import ExportError, export
    g = one_op("add", [rand(2), rand(2)])
    with pytest.raises(ExportError, match=r"1 input names given \(\['a'\]\) for a graph with 2"):
        export(g, path=tmp_path / "m.onnx", input_names=["a"])
    with pytest.raises(ExportError, match=r"repeated: \['a'\]"):
        export(g, path=tmp_path / "m.onnx", input_names=["a", "a"])
    with pytest.raises(ExportError, match="opset 9 is not supported"):
        export(g, path=tmp_path / "m.onnx", opset=9)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export(g, path=tmp_path / "no" / "m.onnx")
    with pytest.raises(TypeError, match="only a Module or function needs"):
        export(g, rand(2), path=tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []


def test_missing_onnx_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    import sys
    from tensorgraph.onnx import MissingPackageError, export
    monkeypatch.setitem(sys.modules, "onnx", None)     # import onnx now fails
    with pytest.raises(MissingPackageError, match=r"pip install onnx onnxruntime"):
        export(one_op("tanh", [rand(2)]), path=tmp_path / "m.onnx")


# ---------------------------------------------------------------------------
# Captured with tg.capture: Modules and functions, against eager

def export_and_run(target: Any, examples: list[Any], feeds: list[list[np.ndarray]],
                   tmp_path: Path) -> None:
    """Export target captured on `examples`; for each feed, onnxruntime equals eager."""
    require_module("onnx")
    from tensorgraph.onnx import export
    path = tmp_path / "m.onnx"
    export(target, *examples, path=path)
    for args in feeds:
        got = run_onnx(path, *args)
        want = target(*[tg.tensor(a) for a in args])
        want = list(want) if isinstance(want, (tuple, list)) else [want]
        for a, b in zip(got, want):
            b = b.data if isinstance(b, tg.Tensor) else np.asarray(b)
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_captured_xor_net_at_two_batch_sizes(tmp_path: Path) -> None:
    net = tg.nn.FeedForward([2, 2, 1], activation="sigmoid", output="sigmoid", init="xavier",
                            seed=0)
    xor = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    export_and_run(net, [tg.placeholder((None, 2))], [[xor], [rand(11, 2)]], tmp_path)


def test_captured_mnist_mlp_and_its_loss_at_two_batch_sizes(tmp_path: Path) -> None:
    net = tg.nn.FeedForward([784, 64, 32, 10], activation="relu", output="softmax", init="he",
                            seed=0)
    feeds = [[rand(b, 784, lo=0, hi=1)] for b in (1, 64)]
    export_and_run(net, [tg.placeholder((None, 784))], feeds, tmp_path)

    def loss(x: tg.Tensor, t: tg.Tensor) -> tg.Tensor:
        return tg.losses.cross_entropy(net.logits(x), t)
    feeds = [[rand(b, 784, lo=0, hi=1), RNG.integers(0, 10, b)] for b in (3, 50)]
    export_and_run(loss, [tg.placeholder((None, 784)), tg.placeholder((None,), "int64")],
                   feeds, tmp_path)


CAPTURED = {
    "flatten_keeps_batch": lambda x: tg.tanh(x.reshape(x.shape[0], -1)),
    "sum_axis": lambda x: tg.sum(x * 2.0, axis=(1, 2)),
    "mean_keepdims": lambda x: x - x.mean(axis=-1, keepdims=True),
    "max_min": lambda x: x.max(axis=1) - x.min(axis=1),
    "softmax_dim": lambda x: tg.softmax(x, dim=1) + tg.log_softmax(x, axis=-1),
    "transpose_swap": lambda x: x.transpose(0, 2, 1).mT,
    "unsqueeze_squeeze": lambda x: x.unsqueeze(1).squeeze(1),
    "concat_where": lambda x: tg.where(x > 0, tg.concat([x, x], axis=1)[:, :3], 0.5),
    "clip_leaky": lambda x: tg.leaky_relu(x.clip(-1.0, 1.0), 0.2),
    "pow_sqrt": lambda x: tg.sqrt(x * x + 1.0) ** 1.5,
}


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_captured_functions_at_two_batch_sizes(name: str, tmp_path: Path) -> None:
    fn = CAPTURED[name]
    export_and_run(fn, [rand(4, 3, 5)], [[rand(4, 3, 5)], [rand(7, 3, 5)]], tmp_path)


# ---------------------------------------------------------------------------
# Loading ONNX back into a Graph

def test_load_round_trip_replays_like_the_module_and_onnxruntime(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import export, load
    net = tg.nn.FeedForward([20, 16, 5], activation="tanh", output="softmax", init="xavier",
                            seed=0)
    path = tmp_path / "m.onnx"
    export(net, tg.placeholder((None, 20)), path=path)
    g = load(path)
    assert isinstance(g, Graph) and g.inputs[0].shape == (None, 20)
    assert set(g.parameters) == {n for n, _ in net.named_parameters()}
    assert [n.op.name for n in g.nodes] == ["matmul", "add", "tanh", "matmul", "add", "softmax"]
    assert g.nodes[0].scope == ("feedforward", "layers", "0")
    for batch in (1, 33):
        x = rand(batch, 20)
        np.testing.assert_allclose(g(x).data, net(x).data, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(g(x).data, run_onnx(path, x)[0], rtol=1e-5, atol=1e-5)


def test_load_round_trip_of_shape_and_index_ops(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import export, load

    def f(x: tg.Tensor) -> tg.Tensor:
        y = tg.tanh(x.reshape(x.shape[0], -1))[:, 1:4].sum(axis=1, keepdims=True)
        return y + x[:, ::-1, 0].mean() - x.transpose(0, 2, 1).max(axis=(1, 2)).unsqueeze(-1)
    export(f, rand(4, 2, 3), path=tmp_path / "m.onnx")
    g = load(tmp_path / "m.onnx")
    x = rand(9, 2, 3)
    np.testing.assert_allclose(g(x).data, f(tg.tensor(x)).data, rtol=1e-6, atol=1e-6)


# PyTorch's exporters' models: tests/test_onnx_torch.py


def test_load_refuses_truncated_and_foreign_files(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import OnnxLoadError, export, load
    path = tmp_path / "m.onnx"
    export(mlp([8, 4, 3]), path=path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 3, 10):
        (tmp_path / "cut.onnx").write_bytes(data[:cut])
        with pytest.raises(OnnxLoadError, match=r"cut.onnx: not (an|a valid) ONNX model"):
            load(tmp_path / "cut.onnx")
    (tmp_path / "text.onnx").write_text("hello, I am not a model\n")
    with pytest.raises(OnnxLoadError, match=r"text.onnx: not (an|a valid) ONNX model"):
        load(tmp_path / "text.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(OnnxLoadError, match=r"empty.onnx: not a valid ONNX model"):
        load(tmp_path / "empty.onnx")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.onnx")


def test_load_names_unknown_ops(tmp_path: Path) -> None:
    onnx = require_module("onnx")
    from tensorgraph.onnx import OnnxLoadError, load
    h = onnx.helper
    x = h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 4, 4])
    y = h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 1, 4, 4])
    nodes = [h.make_node("Erf", ["x"], ["e"]), h.make_node("HardSwish", ["e"], ["y"])]
    model = h.make_model(h.make_graph(nodes, "g", [x], [y]),
                         opset_imports=[h.make_opsetid("", 18)])
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(OnnxLoadError, match=r"ONNX op\(s\) Erf, HardSwish have no tensorgraph "
                                            r"equivalent"):
        load(tmp_path / "m.onnx")


# ---------------------------------------------------------------------------
# The other ops with rules, one line each: (op, input arrays, attributes)

def _ints(*shape: int) -> np.ndarray:
    return RNG.integers(-5, 6, shape).astype(np.int64)


MORE: list[tuple[str, list[np.ndarray], dict[str, Any]]] = [
    ("log2", [rand(3, 4, lo=0.1)], {}),
    ("log10", [rand(3, 4, lo=0.1)], {}),
    ("log1p", [rand(3, 4, lo=-0.5)], {}),
    ("expm1", [rand(3, 4)], {}),
    ("exp2", [rand(3, 4)], {}),
    ("logaddexp", [rand(3, 4, lo=-50, hi=50), rand(4)], {}),
    ("hypot", [rand(3, 4), rand(3, 1)], {}),
    ("round", [rand(3, 4, lo=-5, hi=5)], {"decimals": 0}),
    ("round", [rand(3, 4)], {"decimals": 2}),
    ("mod", [rand(3, 4, lo=-5, hi=5), rand(4, lo=0.5, hi=2) * np.array([1, -1, 1, -1], np.float32)], {}),
    ("mod", [_ints(3, 4), np.array([3, -3, 2, -2])], {}),
    ("floor_divide", [rand(3, 4, lo=-5, hi=5), rand(4, lo=0.5, hi=2)], {}),
    ("floor_divide", [_ints(3, 4), np.array([3, -3, 2, -2])], {}),
    ("div", [_ints(3, 4), np.array([3, -3, 2, -2])], {}),   # ONNX Div on ints truncates: cast
    ("var", [rand(3, 4, 5)], {"axis": (0, 2), "ddof": 1, "keepdims": False}),
    ("var", [rand(3, 4)], {"axis": None, "ddof": 0, "keepdims": True}),
    ("std", [rand(3, 4)], {"axis": 1, "ddof": 0, "keepdims": False}),
    ("norm", [rand(3, 4)], {"axis": None, "keepdims": False}),
    ("norm", [rand(3, 4)], {"axis": (1,), "keepdims": True}),
    ("argmax", [rand(3, 4)], {"axis": None, "keepdims": False}),
    ("argmax", [rand(3, 4)], {"axis": None, "keepdims": True}),
    ("argmin", [rand(3, 4)], {"axis": 1, "keepdims": False}),
    ("any", [rand(3, 4) > 1], {"axis": 0, "keepdims": False}),
    ("all", [rand(3, 4) > -1.5], {"axis": None, "keepdims": True}),
    ("any", [rand(3, 4)], {"axis": 1, "keepdims": False}),
    ("cumsum", [rand(3, 4)], {"axis": 1}),
    ("cumsum", [rand(3, 4)], {"axis": None}),
    ("tile", [rand(2, 3)], {"reps": (2, 1)}),
    ("tile", [rand(2, 3)], {"reps": (2,)}),
    ("tile", [rand(3)], {"reps": (2, 2)}),
    ("pad", [rand(2, 3)], {"pad_width": [[1, 0], [2, 3]], "constant_values": 0.5}),
    ("einsum", [rand(2, 3), rand(3, 4)], {"subscripts": "ij,jk->ik"}),
    ("einsum", [rand(5, 2, 3), rand(5, 3, 4)], {"subscripts": "...ij,...jk"}),
    ("einsum", [rand(3, 3)], {"subscripts": "ii"}),
    ("fmax", [np.array([1, np.nan, 3, np.nan], np.float32), np.array([2, 1, np.nan, np.nan], np.float32)], {}),
    ("fmin", [rand(3, 4), rand(4)], {}),
    ("sinc", [np.array([0, 0.5, -1.5, 2], np.float32)], {}),
    ("repeat", [rand(2, 3)], {"repeats": 2, "axis": 1}),
    ("repeat", [rand(2, 3)], {"repeats": [1, 0, 3], "axis": 1}),
    ("repeat", [rand(2, 3)], {"repeats": 2, "axis": None}),
    ("roll", [rand(3, 4)], {"shift": 1, "axis": 1}),
    ("roll", [rand(3, 4)], {"shift": (-1, 5), "axis": (0, 1)}),
    ("roll", [rand(3, 4)], {"shift": 5, "axis": None}),
    ("sort", [rand(3, 5)], {"axis": -1}),
    ("sort", [rand(3, 5)], {"axis": 0}),
    ("sort", [rand(3, 5)], {"axis": None}),
    ("diagonal", [rand(3, 4)], {"offset": 0, "axis1": 0, "axis2": 1}),
    ("diagonal", [rand(3, 4)], {"offset": 2, "axis1": 0, "axis2": 1}),
    ("diagonal", [rand(3, 4)], {"offset": -1, "axis1": 1, "axis2": 0}),
    ("diagonal", [rand(2, 3, 4, 5)], {"offset": 1, "axis1": 1, "axis2": 3}),
    ("diagonal", [rand(3, 4)], {"offset": 7, "axis1": 0, "axis2": 1}),     # empty
    ("diag", [rand(4)], {"k": 0}),
    ("diag", [rand(3)], {"k": 2}),
    ("diag", [rand(3)], {"k": -1}),
    ("diag", [rand(3, 4)], {"k": 1}),
    ("cross", [rand(4, 3), rand(3)], {}),
    ("cross", [rand(2, 1, 3), rand(5, 3)], {}),
]


@pytest.mark.parametrize("name,args,attrs", MORE, ids=[m[0] for m in MORE])
def test_more_ops(name: str, args: list[np.ndarray], attrs: dict[str, Any],
                  tmp_path: Path) -> None:
    check(one_op(name, args, attrs), tmp_path, *args)


TESTED = set(UNARY + POSITIVE) | set(DOMAIN) | {m[0] for m in MORE} | {
    "add", "sub", "mul", "div", "pow", "maximum", "minimum", "less", "less_equal", "greater",
    "greater_equal", "equal", "not_equal", "logical_and", "logical_or", "logical_not",
    "where", "leaky_relu", "clip", "matmul", "sum", "mean", "max", "min", "prod",
    "logsumexp", "softmax", "log_softmax", "reshape", "transpose", "expand_dims", "squeeze",
    "broadcast_to", "flip", "astype", "concat", "stack", "step", "cross_entropy", "getitem",
    "one_hot"}


def test_every_rule_is_tested() -> None:
    from tensorgraph.onnx import RULES
    forward = {k for k in RULES if "_vjp" not in k}     # the VJPs: tests/test_onnx_grad.py
    # rules in files of their own are tested in test files of their own
    from test_onnx_conv import TESTED_CONV
    from test_onnx_pool import POOL_TESTED      # pooling and batch norm
    tested = TESTED | TESTED_CONV | POOL_TESTED
    assert forward - tested == set()
    assert tested - forward == set()


def test_outputs_named_by_the_dict_fn_returns(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import export

    def f(x: tg.Tensor) -> dict[str, tg.Tensor]:
        return {"probs": tg.softmax(x), "logp": tg.log_softmax(x), "x": x}
    x = rand(3, 4)
    model = export(f, x, path=tmp_path / "m.onnx")
    assert [o.name for o in model.graph.output] == ["probs", "logp", "x_output"]  # x: the input
    got = run_onnx(tmp_path / "m.onnx", x)
    want = f(tg.tensor(x))
    for a, k in zip(got, ["probs", "logp", "x"]):
        np.testing.assert_allclose(a, want[k].data, rtol=1e-5, atol=1e-5)


def test_load_without_onnx_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    import sys
    from tensorgraph.onnx import MissingPackageError, load
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingPackageError, match=r"tensorgraph.onnx.load needs the Python "
                                                  r"package 'onnx'.*pip install onnx onnxruntime"):
        load(tmp_path / "m.onnx")



# ---------------------------------------------------------------------------
# Every single-op case, exported and loaded back: the loaded graph replays as
# the original does, or the load names the ONNX op it cannot read.

def all_cases() -> list[tuple[str, list[np.ndarray], dict[str, Any]]]:
    cases: list[tuple[str, list[np.ndarray], dict[str, Any]]] = []
    for name in UNARY + POSITIVE + sorted(DOMAIN):
        lo, hi = DOMAIN.get(name, (0.2, 2.0) if name in POSITIVE else (-2.0, 2.0))
        cases.append((name, [rand(3, 4, lo=lo, hi=hi)], {}))
    for name in ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "less", "less_equal",
                 "greater", "greater_equal", "equal", "not_equal"]:
        cases.append((name, [rand(2, 3, lo=0.5), rand(3, lo=0.5)], {}))
    c, d = RNG.random((3, 4)) > 0.5, RNG.random((3, 4)) > 0.5
    cases += [("logical_and", [c, d], {}), ("logical_or", [c, d], {}), ("logical_not", [c], {}),
              ("where", [c, rand(3, 4), rand(4)], {}), ("leaky_relu", [rand(3, 4)], {"negative_slope": 0.2}),
              ("clip", [rand(3, 4)], {"lo": -0.5, "hi": 0.5}), ("clip", [rand(3, 4)], {"lo": None, "hi": 0.5}),
              ("matmul", [rand(2, 4, 3), rand(3, 5)], {}), ("step", [rand(3, 4)], {}),
              ("softmax", [rand(3, 4)], {"axis": 0}), ("log_softmax", [rand(3, 4)], {"axis": -1}),
              ("concat", [rand(2, 3), rand(2, 1)], {"axis": 1}), ("stack", [rand(2, 3), rand(2, 3)], {"axis": 0}),
              ("cross_entropy", [rand(4, 3), RNG.integers(0, 3, 4)], {"reduction": "mean"})]
    for name in ["sum", "mean", "max", "min", "prod", "logsumexp"]:
        cases += [(name, [rand(2, 3, 4)], {"axis": None, "keepdims": False}),
                  (name, [rand(2, 3, 4)], {"axis": (0, 2), "keepdims": True})]
    cases += [(name, [rand(*shape)], attrs) for name, shape, attrs in SHAPE_CASES]
    cases += [("getitem", [rand(3, 4, 5)], {"index": index}) for index in INDEXES]
    return cases + MORE


CASES = all_cases()


def _not_loadable(name: str, attrs: dict[str, Any], args: list[np.ndarray]) -> Optional[str]:
    """What the ONNX form of an op uses that tensorgraph has no op for."""
    if name == "mod" and args[0].dtype.kind == "f":
        return "Mod with fmod=1"
    return None


@pytest.mark.parametrize("k", range(len(CASES)), ids=[c[0] for c in CASES])
def test_export_then_load_replays_the_same(k: int, tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import OnnxLoadError, export, load
    name, args, attrs = CASES[k]
    g = one_op(name, args, attrs)
    # Fixed sizes: some cases index, sort or broadcast along axis 0, which a
    # batch axis would leave open (the networks' round trips keep it open).
    export(g, path=tmp_path / "m.onnx", dynamic_batch=False)
    missing = _not_loadable(name, attrs, args)
    if missing is not None:
        with pytest.raises(OnnxLoadError, match=missing):
            load(tmp_path / "m.onnx")
        return
    back = load(tmp_path / "m.onnx")
    want, got = g(*args).data, back(*args).data
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_load_integer_div_truncates_as_onnx(tmp_path: Path) -> None:
    onnx = require_module("onnx")
    from tensorgraph.onnx import load
    h = onnx.helper
    a = h.make_tensor_value_info("a", onnx.TensorProto.INT64, [8])
    b = h.make_tensor_value_info("b", onnx.TensorProto.INT64, [8])
    y = h.make_tensor_value_info("y", onnx.TensorProto.INT64, [8])
    model = h.make_model(h.make_graph([h.make_node("Div", ["a", "b"], ["y"])], "g", [a, b], [y]),
                         opset_imports=[h.make_opsetid("", 18)])
    onnx.save(model, tmp_path / "m.onnx")
    x = np.array([7, -7, 7, -7, 6, -6, 0, 1])
    d = np.array([2, 2, -2, -2, 3, 3, 5, -1])
    got = load(tmp_path / "m.onnx")(x, d).data
    np.testing.assert_array_equal(got, run_onnx(tmp_path / "m.onnx", x, d)[0])
    np.testing.assert_array_equal(got, [3, -3, -3, 3, 2, -2, 0, -1])   # C's truncation


def test_outputs_that_are_inputs_parameters_or_repeated(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import export, load
    lin = tg.nn.Linear(3, 2)

    def f(x: tg.Tensor) -> tuple[tg.Tensor, ...]:
        y = lin(x)
        return x, y, y, lin.weight
    x = rand(4, 3)
    model = export(f, x, path=tmp_path / "m.onnx")
    assert [o.name for o in model.graph.output] == [f"output_{i}" for i in range(4)]
    want = [t.data for t in f(tg.tensor(x))]
    back = load(tmp_path / "m.onnx")
    for got in (run_onnx(tmp_path / "m.onnx", x), [t.data for t in back(x)]):
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert [n.op.name for n in back.nodes] == ["transpose", "matmul", "add"]   # no Identity copies


def test_a_frozen_batch_sized_constant_is_warned_about(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import export
    mask = np.ones((5, 8), np.float32)     # computed from the example: tied to its batch
    fixed = tg.nn.Linear(4, 8)
    with pytest.warns(UserWarning, match=r"export: constant '.*' of shape \(5, 8\) .*captured "
                                         r"batch size 5"):
        export(lambda x: fixed(x) * tg.tensor(mask), rand(5, 4), path=tmp_path / "c.onnx")
    # dropout's mask is a random op now: in training mode it is refused with the fix
    net = tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.Dropout(0.5), tg.nn.Linear(8, 2))
    net.train()
    with pytest.raises(Exception, match=r"op 'dropout_mask' .*random mask.*\.eval\(\)"):
        export(net, rand(5, 4), path=tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    net.eval()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        export(net, rand(5, 4), path=tmp_path / "m.onnx")
    for batch in (1, 9):
        x = rand(batch, 4)
        np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", x)[0], net(x).data,
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_load_gather_elements_with_indices_fed_at_run_time(axis: int, tmp_path: Path) -> None:
    # Indices computed or fed at run time (negative ones count from the end),
    # as onnxruntime reads them; the batch axis open.
    onnx = require_module("onnx")
    from tensorgraph.onnx import OnnxLoadError, load
    h = onnx.helper
    x = h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 4])
    i = h.make_tensor_value_info("i", onnx.TensorProto.INT64, ["batch", 4])
    y = h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 4])
    node = h.make_node("GatherElements", ["x", "i"], ["y"], axis=axis)
    model = h.make_model(h.make_graph([node], "g", [x, i], [y]),
                         opset_imports=[h.make_opsetid("", 18)])
    onnx.save(model, tmp_path / "m.onnx")
    if axis == 0:             # along the open batch: the number of positions is unknown
        with pytest.raises(OnnxLoadError, match=r"GatherElements is read along an axis of "
                                                r"known size.*data \(None, 4\).*axis 0"):
            load(tmp_path / "m.onnx")
        return
    g = load(tmp_path / "m.onnx")
    for n in (4, 6):
        xs = rand(n, 4)
        xs[0, 1] = np.inf
        idx = RNG.integers(-4, 4, (n, 4))
        want = run_onnx(tmp_path / "m.onnx", xs, idx)[0]
        np.testing.assert_array_equal(g(xs, idx).data, want)
