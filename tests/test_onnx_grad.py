"""ONNX export of the gradient ops (`{op}_vjp{i}`, what a captured `tg.grad`
records), checked by onnxruntime against tensorgraph's replay (1e-5,
float32): each VJP rule on its own (hypothesis over shapes, broadcast pairs
included), and whole captured training steps (loss and gradients) at two
batch sizes. Every VJP either has a rule or is refused by name."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgraph as tg
from tensorgraph.autograd import vjp_op
from tensorgraph.graph import Graph, GraphNode, Value
from tensorgraph.ops import all_ops

from conftest import require_module
from strategies import broadcast_shapes, matmul_shapes, reduction_args, shapes
from test_onnx import check, rand, run_onnx

RNG = np.random.default_rng(1)


def one_vjp(opname: str, i: int, args: list[np.ndarray],
            attrs: Optional[dict[str, Any]] = None) -> tuple[Graph, list[np.ndarray]]:
    """A graph of one node `{opname}_vjp{i}` on inputs (g, out, *args), and the
    arrays to feed it (g random, out the op's forward)."""
    op = all_ops()[opname]
    attrs = attrs or {}
    out = op.forward(*args, **attrs)
    out = np.asarray(out[0] if op.saves else out)
    g = RNG.uniform(-1, 1, out.shape).astype(out.dtype)
    feeds = [g, out] + list(args)
    ins = [Value(n, a.shape, a.dtype, "input") for n, a in zip(["g", "out"] + [f"x{k}" for k in range(len(args))], feeds)]
    vop = vjp_op(op, i)
    gi = np.asarray(vop.forward(*feeds, **attrs))
    v = Value(vop.name, gi.shape, gi.dtype, "op")
    v.node = GraphNode(vop.name, vop, ins, attrs, v, scope=("gradients",))
    return Graph(ins, [v], [v.node]), feeds


def check_vjp(opname: str, i: int, args: list[np.ndarray], tmp_path: Path,
              attrs: Optional[dict[str, Any]] = None) -> None:
    g, feeds = one_vjp(opname, i, args, attrs)
    check(g, tmp_path, *feeds, dynamic_batch=False)


# ---------------------------------------------------------------------------
# Each rule, one case each (fixed shapes, broadcasting where the op does)

def _distinct(*shape: int) -> np.ndarray:
    """Values at least 0.05 apart: away from the kinks of relu, abs, max."""
    n = int(np.prod(shape))
    return (RNG.permutation(n).reshape(shape) * 0.05 - n * 0.025 + 0.0125).astype(np.float32)


CASES: list[tuple[str, int, list[np.ndarray], dict[str, Any]]] = [
    ("add", 0, [rand(2, 3, 4), rand(3, 1)], {}),
    ("add", 1, [rand(2, 3, 4), rand(3, 1)], {}),
    ("sub", 0, [rand(4, 1), rand(5)], {}),
    ("sub", 1, [rand(4, 1), rand(5)], {}),
    ("mul", 0, [rand(3, 4), rand(4)], {}),
    ("mul", 1, [rand(3, 4), rand(4)], {}),
    ("div", 0, [rand(3, 4), rand(1, 4, lo=0.5)], {}),
    ("div", 1, [rand(3, 4), rand(1, 4, lo=0.5)], {}),
    ("pow", 0, [rand(3, 4, lo=0.2), rand(4, lo=-2)], {}),
    ("pow", 1, [rand(3, 4, lo=-1), np.array([1, 2, -1, 3], np.float32)], {}),   # a <= 0: 0 there
    ("pow", 0, [np.array([0, 0, 2, -1], np.float32), np.array([0, 2, 0, 3], np.float32)], {}),
    ("pow", 0, [rand(3, 4, lo=0.2), np.array(2.0, np.float32)], {}),   # x ** 2
    ("maximum", 0, [RNG.integers(-2, 3, (3, 4)).astype(np.float32), RNG.integers(-2, 3, (4,)).astype(np.float32)], {}),
    ("maximum", 1, [RNG.integers(-2, 3, (3, 4)).astype(np.float32), RNG.integers(-2, 3, (4,)).astype(np.float32)], {}),
    ("minimum", 0, [RNG.integers(-2, 3, (3, 4)).astype(np.float32), RNG.integers(-2, 3, (4,)).astype(np.float32)], {}),
    ("minimum", 1, [RNG.integers(-2, 3, (3, 4)).astype(np.float32), RNG.integers(-2, 3, (4,)).astype(np.float32)], {}),
    ("where", 1, [RNG.random((3, 4)) > 0.5, rand(3, 4), rand(4)], {}),
    ("where", 2, [RNG.random((3, 4)) > 0.5, rand(3, 4), rand(4)], {}),
    ("neg", 0, [rand(3, 4)], {}),
    ("abs", 0, [_distinct(3, 4)], {}),
    ("exp", 0, [rand(3, 4)], {}),
    ("log", 0, [rand(3, 4, lo=0.2)], {}),
    ("sqrt", 0, [rand(3, 4, lo=0.2)], {}),
    ("tanh", 0, [rand(3, 4)], {}),
    ("sigmoid", 0, [rand(3, 4, lo=-8, hi=8)], {}),
    ("relu", 0, [_distinct(3, 4)], {}),
    ("leaky_relu", 0, [_distinct(3, 4)], {"negative_slope": 0.1}),
    ("softplus", 0, [rand(3, 4)], {}),
    ("clip", 0, [_distinct(3, 4)], {"lo": -0.2, "hi": 0.1}),
    ("clip", 0, [_distinct(3, 4)], {"lo": None, "hi": 0.1}),
    ("sign", 0, [rand(3, 4)], {}),
    ("floor", 0, [rand(3, 4)], {}),
    ("ceil", 0, [rand(3, 4)], {}),
    ("round", 0, [rand(3, 4)], {"decimals": 1}),
    ("step", 0, [rand(3, 4)], {}),
    ("clone", 0, [rand(3, 4)], {}),
    ("astype", 0, [rand(3, 4)], {"dtype": np.dtype(np.float64)}),
    ("square", 0, [rand(3, 4)], {}),
    ("reciprocal", 0, [rand(3, 4, lo=0.5)], {}),
    ("sin", 0, [rand(3, 4)], {}),
    ("cos", 0, [rand(3, 4)], {}),
    ("tan", 0, [rand(3, 4, lo=-1.2, hi=1.2)], {}),
    ("sinh", 0, [rand(3, 4)], {}),
    ("cosh", 0, [rand(3, 4)], {}),
    ("arctan", 0, [rand(3, 4)], {}),
    ("log1p", 0, [rand(3, 4, lo=-0.5)], {}),
    ("expm1", 0, [rand(3, 4)], {}),
    ("matmul", 0, [rand(4, 3), rand(3, 2)], {}),
    ("matmul", 1, [rand(4, 3), rand(3, 2)], {}),
    ("matmul", 0, [rand(2, 1, 4, 3), rand(5, 3, 2)], {}),
    ("matmul", 1, [rand(2, 1, 4, 3), rand(5, 3, 2)], {}),
    ("matmul", 0, [rand(3), rand(2, 3, 4)], {}),
    ("matmul", 1, [rand(3), rand(2, 3, 4)], {}),
    ("matmul", 0, [rand(2, 4, 3), rand(3)], {}),
    ("matmul", 1, [rand(2, 4, 3), rand(3)], {}),
    ("matmul", 0, [rand(3), rand(3)], {}),
    ("matmul", 1, [rand(3), rand(3)], {}),
    ("sum", 0, [rand(2, 3, 4)], {"axis": None, "keepdims": False}),
    ("sum", 0, [rand(2, 3, 4)], {"axis": (0, 2), "keepdims": False}),
    ("mean", 0, [rand(2, 3, 4)], {"axis": -1, "keepdims": True}),
    ("mean", 0, [rand(2, 3, 4)], {"axis": None, "keepdims": False}),
    ("max", 0, [RNG.integers(-2, 3, (3, 4)).astype(np.float32)], {"axis": 1, "keepdims": False}),
    ("min", 0, [RNG.integers(-2, 3, (3, 4)).astype(np.float32)], {"axis": None, "keepdims": False}),
    ("logsumexp", 0, [rand(3, 4, lo=-20, hi=20)], {"axis": (0, 1), "keepdims": False}),
    ("var", 0, [rand(3, 4)], {"axis": 0, "ddof": 1, "keepdims": False}),
    ("norm", 0, [np.vstack([rand(2, 4), np.zeros((1, 4), np.float32)])], {"axis": 1, "keepdims": False}),
    ("softmax", 0, [rand(3, 5, lo=-5, hi=5)], {"axis": -1}),
    ("softmax", 0, [rand(3, 5, lo=-5, hi=5)], {"axis": 0}),
    ("log_softmax", 0, [rand(3, 5, lo=-5, hi=5)], {"axis": 1}),
    ("reshape", 0, [rand(4, 6)], {"shape": (2, 3, 4)}),
    ("expand_dims", 0, [rand(4, 6)], {"axis": (0, 2)}),
    ("squeeze", 0, [rand(4, 1, 6)], {"axis": None}),
    ("transpose", 0, [rand(2, 3, 4)], {"axes": (1, -1, 0)}),
    ("transpose", 0, [rand(2, 3, 4)], {"axes": None}),
    ("broadcast_to", 0, [rand(3, 1)], {"shape": (2, 3, 4)}),
    ("flip", 0, [rand(2, 3, 4)], {"axis": (0, 2)}),
    ("pad", 0, [rand(2, 3)], {"pad_width": ((1, 0), (2, 3)), "constant_values": 0.5}),
    ("getitem", 0, [rand(3, 4, 5)], {"index": (1,)}),
    ("getitem", 0, [rand(3, 4, 5)], {"index": (slice(None), slice(1, -1), -2)}),
    ("getitem", 0, [rand(3, 4, 5)], {"index": (None, Ellipsis, slice(2, None), None)}),
    ("getitem", 0, [rand(3, 4, 5)], {"index": (slice(None), slice(7, 9))}),   # empty
    ("getitem", 0, [rand(3, 4, 5)], {"index": (np.array([0, 2, 2, -1]),)}),  # ids repeat: add
    ("getitem", 0, [rand(3, 4, 5)], {"index": (slice(None), np.array([[3, 0], [1, 1]]))}),
    ("getitem", 0, [rand(3, 4, 5)], {"index": (Ellipsis, np.array([4, 4]))}),
]
CASES += [
    ("cross", 0, [rand(4, 3), rand(3)], {}),
    ("cross", 1, [rand(4, 3), rand(3)], {}),
    ("cross", 1, [rand(2, 1, 3), rand(5, 3)], {}),
    ("diag", 0, [rand(4)], {"k": 0}),
    ("diag", 0, [rand(3)], {"k": -2}),
]
CASES += [
    ("arcsin", 0, [rand(3, 4, lo=-0.9, hi=0.9)], {}),
    ("arccos", 0, [rand(3, 4, lo=-0.9, hi=0.9)], {}),
    ("arcsinh", 0, [rand(3, 4)], {}),
    ("arccosh", 0, [rand(3, 4, lo=1.1, hi=3)], {}),
    ("arctanh", 0, [rand(3, 4, lo=-0.9, hi=0.9)], {}),
    ("log2", 0, [rand(3, 4, lo=0.2)], {}),
    ("log10", 0, [rand(3, 4, lo=0.2)], {}),
    ("exp2", 0, [rand(3, 4)], {}),
    ("sinc", 0, [np.array([0, 0.5, -1.5, 2, 0.25], np.float32)], {}),
    ("logaddexp", 0, [rand(3, 4, lo=-20, hi=20), rand(4)], {}),
    ("logaddexp", 1, [rand(3, 4, lo=-20, hi=20), rand(4)], {}),
    ("hypot", 0, [np.array([[0, 1, 3]], np.float32), np.array([[0], [4]], np.float32)], {}),
    ("hypot", 1, [np.array([[0, 1, 3]], np.float32), np.array([[0], [4]], np.float32)], {}),
    ("mod", 0, [rand(3, 4, lo=-5, hi=5), rand(4, lo=0.5)], {}),
    ("mod", 1, [rand(3, 4, lo=-5, hi=5), rand(4, lo=0.5) * np.array([1, -1, 1, -1], np.float32)], {}),
    ("floor_divide", 0, [rand(3, 4), rand(4, lo=0.5)], {}),
    ("floor_divide", 1, [rand(3, 4), rand(4, lo=0.5)], {}),
    ("fmax", 0, [np.array([1, np.nan, 3, np.nan, 2], np.float32), np.array([2, 1, np.nan, np.nan, 2], np.float32)], {}),
    ("fmax", 1, [np.array([1, np.nan, 3, np.nan, 2], np.float32), np.array([2, 1, np.nan, np.nan, 2], np.float32)], {}),
    ("fmin", 0, [rand(3, 4), rand(4)], {}),
    ("fmin", 1, [RNG.integers(-2, 3, (3, 4)).astype(np.float32), RNG.integers(-2, 3, (4,)).astype(np.float32)], {}),
    ("std", 0, [rand(3, 4)], {"axis": 1, "ddof": 1, "keepdims": False}),
    ("std", 0, [np.vstack([rand(2, 4), np.ones((1, 4), np.float32)])], {"axis": None, "ddof": 0, "keepdims": True}),
    ("std", 0, [np.vstack([rand(2, 4), np.ones((1, 4), np.float32)]).T], {"axis": 0, "ddof": 0, "keepdims": False}),
    ("cumsum", 0, [rand(3, 4)], {"axis": 1}),
    ("cumsum", 0, [rand(3, 4)], {"axis": None}),
]
CASES += [
    ("repeat", 0, [rand(2, 3)], {"repeats": 2, "axis": 1}),
    ("repeat", 0, [rand(2, 3)], {"repeats": (1, 0, 3), "axis": 1}),
    ("tile", 0, [rand(2, 3)], {"reps": (2, 1)}),
    ("tile", 0, [rand(3)], {"reps": (2, 2)}),
    ("roll", 0, [rand(3, 4)], {"shift": (-1, 5), "axis": (0, 1)}),
    ("roll", 0, [rand(3, 4)], {"shift": 5, "axis": None}),
    ("diagonal", 0, [rand(3, 4)], {"offset": 1, "axis1": 0, "axis2": 1}),
    ("diagonal", 0, [rand(2, 3, 4, 5)], {"offset": -1, "axis1": 3, "axis2": 1}),
    ("flatten", 0, [rand(2, 3, 4, 5)], {"start_dim": 1, "end_dim": 3}),
    ("flatten", 0, [rand(2, 3, 4, 5)], {"start_dim": 1, "end_dim": 2}),
]
CE_TARGETS = {"indices": RNG.integers(0, 4, 6)}
_t = RNG.random((6, 4)).astype(np.float32)
CE_TARGETS["probabilities"] = _t / _t.sum(-1, keepdims=True)
for _red in ("mean", "sum", "none"):
    for _kind, _tt in CE_TARGETS.items():
        CASES.append(("cross_entropy", 0, [rand(6, 4, lo=-5, hi=5), _tt], {"reduction": _red}))
    CASES.append(("cross_entropy", 1, [rand(6, 4, lo=-5, hi=5), CE_TARGETS["probabilities"]],
                  {"reduction": _red}))


@pytest.mark.parametrize("k", range(len(CASES)), ids=[f"{c[0]}_vjp{c[1]}" for c in CASES])
def test_vjp_rule(k: int, tmp_path: Path) -> None:
    name, i, args, attrs = CASES[k]
    check_vjp(name, i, args, tmp_path, attrs)


def test_variadic_vjps(tmp_path: Path) -> None:
    a, b, c = rand(2, 3), rand(2, 1), rand(2, 4)
    for i in range(3):
        check_vjp("concat", i, [a, b, c], tmp_path, {"axis": 1})
        check_vjp("stack", i, [a, a, a], tmp_path, {"axis": -1})


EINSUMS = [("ij,jk->ik", [(2, 3), (3, 4)]), ("ii->i", [(3, 3)]), ("ij,j->", [(2, 3), (3,)]),
           ("bij,bjk->bik", [(2, 3, 4), (1, 4, 2)])]


@pytest.mark.parametrize("subscripts,shapes,i", [(e, s, i) for e, s in EINSUMS
                                                 for i in range(len(s))])
def test_einsum_vjp(subscripts: str, shapes: list[tuple[int, ...]], i: int,
                    tmp_path: Path) -> None:
    check_vjp("einsum", i, [rand(*s) for s in shapes], tmp_path, {"subscripts": subscripts})


def test_every_vjp_rule_has_a_case() -> None:
    from tensorgraph.onnx import RULES
    vjp_rules = {k for k in RULES if "_vjp" in k}
    tested = {f"{c[0]}_vjp{c[1]}" for c in CASES} | {"concat_vjp", "stack_vjp", "einsum_vjp"}
    from test_onnx_pool import POOL_VJP_TESTED      # pooling and batch norm: test_onnx_pool.py
    tested |= POOL_VJP_TESTED
    assert vjp_rules - tested == set()


# ---------------------------------------------------------------------------
# Hypothesis over shapes: broadcast pairs, reductions, matmul operands

@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_binary_vjps_hypothesis(data: Any, tmp_path_factory: Any) -> None:
    (sa, sb), _ = data.draw(broadcast_shapes())
    name = data.draw(st.sampled_from(["add", "sub", "mul", "div", "maximum", "pow"]))
    i = data.draw(st.integers(0, 1))
    a = rand(*sa, lo=0.3) if name == "pow" else rand(*sa)
    b = rand(*sb, lo=0.5) if name in ("div", "pow") else rand(*sb)
    check_vjp(name, i, [a, b], tmp_path_factory.mktemp("h"))


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_reduction_vjps_hypothesis(data: Any, tmp_path_factory: Any) -> None:
    shape = data.draw(shapes(min_dims=1))
    axis, keepdims = data.draw(reduction_args(len(shape)))
    name = data.draw(st.sampled_from(["sum", "mean", "max", "logsumexp"]))
    check_vjp(name, 0, [rand(*shape)], tmp_path_factory.mktemp("h"),
              {"axis": axis, "keepdims": keepdims})


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_matmul_vjps_hypothesis(data: Any, tmp_path_factory: Any) -> None:
    (sa, sb), _ = data.draw(matmul_shapes(max_dims=3))
    i = data.draw(st.integers(0, 1))
    check_vjp("matmul", i, [rand(*sa), rand(*sb)], tmp_path_factory.mktemp("h"))


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_unary_vjps_hypothesis(data: Any, tmp_path_factory: Any) -> None:
    shape = data.draw(shapes())
    name = data.draw(st.sampled_from(["tanh", "sigmoid", "relu", "exp", "neg", "leaky_relu"]))
    attrs = {"negative_slope": 0.2} if name == "leaky_relu" else {}
    check_vjp(name, 0, [rand(*shape)], tmp_path_factory.mktemp("h"), attrs)


# ---------------------------------------------------------------------------
# Whole training steps: loss and gradients, at two batch sizes

def check_step(net: Any, params: list[Any], loss_fn: Any, x_shape: tuple[Any, ...],
               t_spec: Any, feeds: list[list[np.ndarray]], tmp_path: Path) -> None:
    """Capture loss and tg.grad of `params` through net, export, and for each
    feed compare onnxruntime's loss and gradients with the replay's (1e-5)."""
    require_module("onnx")
    from tensorgraph.onnx import export

    def step(x: tg.Tensor, t: tg.Tensor) -> Any:
        loss = loss_fn(net(x), t)
        return loss, tg.grad(loss, params)
    g = tg.capture(step, tg.placeholder(x_shape), t_spec)
    assert any("_vjp" in n.op.name for n in g.nodes)
    path = tmp_path / "step.onnx"
    export(g, path=path)
    for args in feeds:
        got = run_onnx(path, *args)
        loss, grads = g(*args)
        want = [loss.data] + [gr.data for gr in grads]
        assert len(got) == len(want) == len(params) + 1
        for a, b, in zip(got, want):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        # and the replay is eager tg.grad: the exported step trains as eager does
        eager = tg.grad(loss_fn(net(tg.tensor(args[0])), tg.tensor(args[1])), params)
        for a, b in zip(got[1:], eager):
            np.testing.assert_allclose(a, b.data, rtol=1e-5, atol=1e-5)


def test_xor_training_step_at_two_batch_sizes(tmp_path: Path) -> None:
    net = tg.nn.FeedForward([2, 2, 1], activation="sigmoid", output="sigmoid", init="xavier",
                            seed=0)
    xor = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    t = np.array([[0], [1], [1], [0]], np.float32)
    check_step(net, list(net.parameters()), tg.losses.mse, (None, 2), tg.placeholder((None, 1)),
               [[xor, t], [rand(11, 2), rand(11, 1, lo=0, hi=1)]], tmp_path)


def test_mnist_mlp_training_step_at_two_batch_sizes(tmp_path: Path) -> None:
    # 784-32-10 on the logits with the fused cross_entropy (its saved softmax)
    net = tg.nn.FeedForward([784, 32, 10], activation="relu", output="softmax", init="he",
                            seed=0)
    feeds = [[rand(b, 784, lo=0, hi=1), RNG.integers(0, 10, b)] for b in (3, 64)]
    check_step(net.logits, list(net.parameters()), tg.losses.cross_entropy, (None, 784),
               tg.placeholder((None,), "int64"), feeds, tmp_path)


def test_tanh_mlp_with_one_hot_targets_and_mean_reductions(tmp_path: Path) -> None:
    # one-hot (float) targets, tanh, softmax + log + mean: other VJPs of a step
    net = tg.nn.FeedForward([5, 8, 3], activation="tanh", output="softmax", init="xavier",
                            seed=1)

    def loss(y: tg.Tensor, t: tg.Tensor) -> tg.Tensor:
        return -(t * tg.log(y + 1e-7)).sum(axis=-1).mean() + 0.01 * (y ** 2).mean()
    feeds = []
    for b in (2, 9):
        t = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, b)]
        feeds.append([rand(b, 5), t])
    check_step(net, list(net.parameters()), loss, (None, 5), tg.placeholder((None, 3)), feeds, tmp_path)


def test_a_step_through_an_embedding_lookup(tmp_path: Path) -> None:
    # rows of a parameter picked by ids (repeats included): the gradient is a
    # scatter-add into the table, with the batch open
    table = tg.tensor(RNG.normal(0, 0.3, (50, 4)).astype(np.float32), requires_grad=True)
    ids = RNG.integers(0, 50, 12)
    ids[:3] = 7

    def logits(x: tg.Tensor) -> tg.Tensor:
        return tg.tanh(x @ table[ids])
    feeds = [[rand(b, 12), RNG.integers(0, 4, b)] for b in (2, 9)]
    check_step(logits, [table], tg.losses.cross_entropy, (None, 12),
               tg.placeholder((None,), "int64"), feeds, tmp_path)


# ---------------------------------------------------------------------------
# Refusals

def test_every_vjp_has_a_rule_or_a_refusal() -> None:
    from tensorgraph.onnx.rules import REFUSED, RULES
    from tensorgraph.onnx.rules_grad import vjp_key
    missing = []
    for op in tg.all_ops().values():
        for i, vjp in enumerate(op.vjps or ()):
            key = vjp_key(op, i)
            if vjp is not None and key not in RULES and key not in REFUSED:
                missing.append(key)
    assert missing == []


def test_a_vjp_without_rule_is_refused_by_name(tmp_path: Path) -> None:
    require_module("onnx")
    from tensorgraph.onnx import ExportError, export
    g, _ = one_vjp("sort", 0, [rand(3, 4)], {"axis": -1})
    with pytest.raises(ExportError, match=r"op 'sort_vjp0' \(node sort_vjp0, scope gradients\) "
                                          r"has no ONNX export rule: its gradient scatters"):
        export(g, path=tmp_path / "m.onnx")
    g, _ = one_vjp("getitem", 0, [rand(3, 4)], {"index": (np.array([0, 1]), np.array([1, 2]))})
    with pytest.raises(ExportError, match=r"getitem_vjp0.*cannot be written as ONNX: the "
                                          r"gradient of indexing with arrays is exported for one"):
        export(g, path=tmp_path / "m.onnx")
    g, _ = one_vjp("getitem", 0, [rand(3, 4)], {"index": (slice(None, None, 2),)})
    with pytest.raises(ExportError, match=r"slice with step 2 is not exported"):
        export(g, path=tmp_path / "m.onnx")
