"""Capture and replay (tensorgraph/graph.py): a captured function replayed on
new inputs gives what numpy computes from the same formula and what eager
mode gives; every op is captured (no_grad, comparisons, integers); leaves are
tagged; bad input is refused naming the culprit."""
from __future__ import annotations

import sys
import warnings
import weakref

import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph import nn
from tensorgraph.graph import CaptureError, CaptureWarning, Graph, GraphNode, Value


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8, seed=1), nn.ReLU(), nn.Layer(8, 3, "softmax", seed=2))


def _mlp_numpy(net: nn.Module, x: np.ndarray) -> np.ndarray:
    lin, _, layer = net.layers
    h = _relu(x @ lin.weight.data.T + lin.bias.data)
    return _softmax(h @ layer.weight.data + layer.bias.data)


# -- capture + replay -----------------------------------------------------------
def test_mlp_replays_at_two_batch_sizes_as_numpy_and_eager() -> None:
    net = _mlp()
    g = tg.capture(net, tg.placeholder((None, 4), name="x"))
    assert isinstance(g, Graph)
    assert [v.name for v in g.inputs] == ["x"] and g.inputs[0].shape == (None, 4)
    assert list(g.parameters) == [n for n, _ in net.named_parameters()]
    assert all(v.kind == "parameter" and v.tensor is p
               for (n, p), v in zip(net.named_parameters(), g.parameters.values()))
    rng = np.random.default_rng(0)
    for batch in (1, 7):
        x = rng.standard_normal((batch, 4)).astype(np.float32)
        y = g(x)
        assert isinstance(y, tg.Tensor) and y.shape == (batch, 3) and y.dtype == np.float32
        np.testing.assert_allclose(y.data, _mlp_numpy(net, x), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(y.data, net(x).data)   # same forwards: bit for bit
    # the open batch size is open in every value that follows it
    assert g.outputs[0].shape == (None, 3)
    assert {n.output.shape for n in g.nodes if n.op.name == "matmul"} == {(None, 8), (None, 3)}


def test_nodes_are_topological_and_carry_the_module_scopes() -> None:
    net = _mlp()
    g = tg.capture(net, np.zeros((2, 4), np.float32))
    seen = {id(v) for v in g.inputs} | {id(v) for v in g.parameters.values()} | \
        {id(v) for v in g.constants}
    for n in g.nodes:
        assert all(id(v) in seen for v in n.inputs), n
        assert n.output.node is n and n.output.kind == "op"
        seen.add(id(n.output))
    scope = net.scope_name
    assert [n.scope for n in g.nodes if n.op.name == "relu"] == [(scope, "layers", "1")]
    assert g.inputs[0].shape == (2, 4)    # an array fixes the shape


def test_every_op_is_captured_under_no_grad_comparisons_where_and_integers() -> None:
    def fn(x: tg.Tensor) -> tuple[tg.Tensor, tg.Tensor]:
        with tg.no_grad():
            mask = x > 0
            count = mask.astype("int64").sum()
            y = tg.where(mask, x, 0.5 * x)
        return y, count * 2

    g = tg.capture(fn, tg.placeholder((None,)))
    ops = [n.op.name for n in g.nodes]
    for name in ("greater", "astype", "sum", "where", "mul"):
        assert name in ops
    where = next(n for n in g.nodes if n.op.name == "where")
    assert where.inputs[0].dtype == np.bool_ and where.inputs[0].node.op.name == "greater"
    x = np.array([-2.0, 1.0, 3.0, -1.0, 0.5], np.float32)
    y, c = g(x)
    np.testing.assert_array_equal(y.data, np.where(x > 0, x, np.float32(0.5) * x))
    assert c.dtype == np.int64 and c.item() == 2 * 3


def test_output_structure_is_kept() -> None:
    def fn(x: tg.Tensor) -> dict:
        return {"double": [x * 2.0, (x + 1.0, 7)], "same": x, "note": "kept"}

    g = tg.capture(fn, np.ones(3, np.float32))
    out = g(np.arange(3, dtype=np.float32))
    assert set(out) == {"double", "same", "note"} and out["note"] == "kept"
    np.testing.assert_array_equal(out["double"][0].data, [0, 2, 4])
    np.testing.assert_array_equal(out["double"][1][0].data, [1, 2, 3])
    assert out["double"][1][1] == 7 and isinstance(out["double"], list)
    np.testing.assert_array_equal(out["same"].data, [0, 1, 2])   # an input returned as is


def test_constants_are_frozen_and_parameters_read_by_reference() -> None:
    w = tg.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True, name="w")
    arr = np.array([10.0, 20.0], np.float32)
    c = tg.tensor(arr)                     # a plain tensor: a constant

    def fn(x: tg.Tensor) -> tg.Tensor:
        return x * w + c + 3.0

    g = tg.capture(fn, np.zeros(2, np.float32))
    assert list(g.parameters) == ["w"] and g.parameters["w"].tensor is w
    consts = sorted((v.value.tolist() for v in g.constants), key=str)
    assert consts == sorted([[10.0, 20.0], 3.0], key=str)
    x = np.array([1.0, 1.0], np.float32)
    np.testing.assert_array_equal(g(x).data, [14.0, 25.0])
    arr[:] = 0                              # the constant was frozen at capture
    with tg.no_grad():
        w -= 1.0                            # a training update: the replay sees it
    np.testing.assert_array_equal(g(x).data, [13.0, 24.0])


def test_a_module_bound_method_names_parameters_as_state_dict() -> None:
    net = _mlp()
    g = tg.capture(net.forward, np.zeros((1, 4), np.float32))
    assert list(g.parameters) == list(net.state_dict())


def test_in_place_ops() -> None:
    b = tg.tensor(np.ones(3, np.float32), requires_grad=True)

    def recorded(x: tg.Tensor) -> tg.Tensor:
        h = x * 2.0
        h += b                              # recorded in place: h is now the add
        return h * 3.0

    g = tg.capture(recorded, np.zeros(3, np.float32))
    np.testing.assert_array_equal(g(np.arange(3, dtype=np.float32)).data, [3, 9, 15])

    def silent(x: tg.Tensor) -> tg.Tensor:
        with tg.no_grad():
            x += 1.0                        # written into the input's array: no op recorded
        return x

    with pytest.raises(CaptureError, match=r"input 'x' .*changed in place.*test_graph.py"):
        tg.capture(silent, np.zeros(3, np.float32))
    assert tg.tensor(1.0) + 1 == 2          # the hook is gone after a failed capture


def test_intermediates_are_freed_after_their_last_use() -> None:
    refs: list = []
    dead_at_end: list = []

    def keep(x: np.ndarray) -> np.ndarray:
        out = x + 1
        refs.append(weakref.ref(out))
        return out

    def check(x: np.ndarray) -> np.ndarray:
        # freed, or its buffer reused: tanh (a ufunc at keep's last use) wrote into it
        kept = refs[-1]()
        dead_at_end.append(kept is None or kept is x)
        return x * 1

    KEEP = tg.defop("keep", keep, differentiable=False)
    CHECK = tg.defop("check", check, differentiable=False)
    g = tg.capture(lambda x: CHECK(tg.tanh(KEEP(x))), np.zeros(2, np.float32))
    refs.clear()
    dead_at_end.clear()
    g(np.zeros(2, np.float32))
    assert dead_at_end == [True]            # no array of keep's is alive beside tanh's


# -- the listing ------------------------------------------------------------------
def test_listing_shows_leaves_nodes_shapes_dtypes_and_scopes() -> None:
    w = tg.tensor(np.ones((3, 2), np.float32), requires_grad=True, name="w")

    def affine(x: tg.Tensor) -> tg.Tensor:
        with tg.name_scope("dense"):
            return tg.sum(x @ w * 2.0, axis=1)

    g = tg.capture(affine, tg.placeholder((None, 3), name="x"))
    assert str(g) == "\n".join([
        "affine(x: float32(None, 3)):",
        "  w      = parameter                          (3, 2)     float32",
        "  const  = constant 2.0                       ()         float32",
        "  matmul = matmul(x, w)                       (None, 2)  float32  dense",
        "  mul    = mul(matmul, const)                 (None, 2)  float32  dense",
        "  sum    = sum(mul) [axis=1, keepdims=False]  (None,)    float32  dense",
        "  return sum",
    ])


def test_a_graph_made_by_hand_replays_and_copy_with_keeps_inputs_and_parameters() -> None:
    x = Value("x", (None, 3), "float32", "input")
    w = Value("w", (3, 2), "float32", "parameter",
              tensor=tg.tensor(np.ones((3, 2), np.float32), requires_grad=True))
    c = Value("c", (), "float32", "constant", value=np.array(2.0, np.float32))
    mm = Value("matmul", (None, 2), "float32", "op")
    mm.node = n1 = GraphNode("matmul", tg.OPS["matmul"], [x, w], {}, mm)
    y = Value("mul", (None, 2), "float32", "op")
    y.node = n2 = GraphNode("mul", tg.OPS["mul"], [mm, c], {}, y, scope=("net",))
    g = Graph([x], [y], [n1, n2])
    assert list(g.parameters) == ["w"] and g.constants == [c]
    xs = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_array_equal(g(xs).data, xs @ np.ones((3, 2), np.float32) * 2)
    h = g.copy_with(nodes=[n1], outputs=[mm])            # what a pass returns
    assert h.inputs == g.inputs and h.parameters == g.parameters and h.constants == []
    np.testing.assert_array_equal(h(xs).data, xs @ np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match="copy_with: the graph returns 1 values, got 2"):
        g.copy_with(outputs=[mm, y])
    with pytest.raises(ValueError, match="node 'mul' uses 'matmul' before any node computes it"):
        g.copy_with(nodes=[n2, n1])(xs)


# -- warnings where a captured value decides Python control flow ------------------
def _line_of(text: str) -> int:
    src = open(__file__, encoding="utf-8").read().splitlines()
    return next(i + 1 for i, line in enumerate(src) if text in line)


@pytest.mark.parametrize("how", ["bool", "float", "item"])
def test_control_flow_on_a_captured_value_warns_naming_the_line(how: str) -> None:
    def fn(x: tg.Tensor) -> tg.Tensor:
        s = x.sum()
        if how == "bool":
            if s > 0:                              # decides: bool
                return x * 2.0
        elif how == "float":
            if float(s) > 0:                       # decides: float
                return x * 2.0
        elif s.item() > 0:                         # decides: item
            return x * 2.0
        return x

    with pytest.warns(CaptureWarning) as record:
        g = tg.capture(fn, np.ones(2, np.float32))
    assert len(record) == 1
    w = record[0]
    line = _line_of(f"# decides: {how}")
    assert w.filename == __file__ and w.lineno == line
    assert f"test_graph.py:{line}" in str(w.message) and "will not re-decide" in str(w.message)
    np.testing.assert_array_equal(g(-np.ones(2, np.float32)).data, [-2, -2])  # the path taken


def test_no_warning_for_constants_or_outside_capture() -> None:
    def fn(x: tg.Tensor) -> tg.Tensor:
        n = tg.tensor(3)
        return x * float(n)                        # a constant: nothing to re-decide

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tg.capture(fn, np.ones(2, np.float32))
        assert bool(tg.tensor(1.0) > 0)


# -- bad input ------------------------------------------------------------------------
def _graph() -> Graph:
    return tg.capture(lambda x, y: x + y.astype("float32"), tg.placeholder((None, 3), name="x"),
                      tg.placeholder((3,), "int64", name="y"))


def test_wrong_number_of_inputs() -> None:
    g = _graph()
    with pytest.raises(TypeError, match=r"graph: expected 2 inputs \(x, y\), got 1"):
        g(np.zeros((1, 3), np.float32))


@pytest.mark.parametrize("x, y, err, msg", [
    (np.zeros(3, np.float32), np.zeros(3, np.int64), ValueError,
     r"input 'x' has rank 1, expected rank 2: expected shape \(None, 3\) float32, "
     r"got shape \(3,\) float32"),
    (np.zeros((2, 4), np.float32), np.zeros(3, np.int64), ValueError,
     r"input 'x' has size 4 in dimension 1, expected 3: expected shape \(None, 3\) float32, "
     r"got shape \(2, 4\) float32"),
    (np.zeros((2, 3), np.float64), np.zeros(3, np.int64), TypeError,
     r"input 'x' has dtype float64, expected float32: .*got shape \(2, 3\) float64"),
    (np.zeros((2, 3), np.float32), np.zeros(3, np.int32), TypeError,
     r"input 'y' has dtype int32, expected int64: expected shape \(3,\) int64, "
     r"got shape \(3,\) int32"),
    (np.zeros((2, 3), np.float32), ["a", "b", "c"], TypeError, r"graph: input 'y': tensor: unsupported"),
])
def test_a_wrong_input_is_named_with_expected_and_given(x, y, err, msg) -> None:
    with pytest.raises(err, match=msg):
        _graph()(x, y)


def test_open_sizes_accept_any_size_and_lists_are_converted() -> None:
    g = _graph()
    out = g([[1.0, 2.0, 3.0]] * 5, tg.tensor([1, 2, 3]))  # Python floats are float32
    assert out.shape == (5, 3) and out.dtype == np.float32


def test_bad_capture_arguments() -> None:
    with pytest.raises(TypeError, match="capture: fn must be callable, got int"):
        tg.capture(3)
    with pytest.raises(ValueError, match=r"placeholder: sizes must be non-negative ints or None, "
                                         r"got shape \(-1, 2\)"):
        tg.placeholder((-1, 2))
    with pytest.raises(TypeError, match=r"capture: example input 0 \(x\): tensor: unsupported"):
        tg.capture(lambda x: x, ["a"])
    with pytest.raises(CaptureError, match="capture inside capture"):
        tg.capture(lambda x: tg.capture(lambda y: y, x), np.zeros(1, np.float32))


def test_a_function_calling_a_model_names_its_parameters_as_state_dict() -> None:
    net = _mlp()
    g = tg.capture(lambda x: net(x) * 2.0, np.zeros((1, 4), np.float32))
    assert list(g.parameters) == list(net.state_dict())


def test_a_tensor_class_can_say_its_leaves_are_parameters() -> None:
    class Frozen(tg.Tensor):                  # e.g. a Parameter that is not trained
        __slots__ = ()
        _graph_kind = "parameter"

    f = Frozen(np.ones(2, np.float32), name="f")
    g = tg.capture(lambda x: x + f, np.zeros(2, np.float32))
    assert list(g.parameters) == ["f"] and g.constants == []
    f.data = np.full(2, 5.0, np.float32)      # read at each replay
    np.testing.assert_array_equal(g(np.ones(2, np.float32)).data, [6.0, 6.0])


def test_an_index_tensor_computed_from_inputs_warns_that_it_is_frozen() -> None:
    def fn(x: tg.Tensor, i: tg.Tensor) -> tg.Tensor:
        return x[i]                                # frozen index

    with pytest.warns(CaptureWarning, match=r"attribute 'index' of op getitem at .*test_graph.py:"
                                            rf"{_line_of('# frozen index')} is the value of "
                                            r"input 'i', frozen into the graph"):
        g = tg.capture(fn, np.arange(3, dtype=np.float32), np.array([2, 0]))
    # the replay uses the indices seen at capture: what the warning says
    np.testing.assert_array_equal(g(np.array([5, 6, 7], np.float32), np.array([1, 1])).data, [7, 5])


def test_train_and_eval_modes_are_respected_at_capture() -> None:
    net = nn.Sequential(nn.Linear(3, 3, seed=0), nn.Dropout(0.5, seed=0))
    x = np.ones((4, 3), np.float32)
    evaluated = tg.capture(net.eval(), x)
    assert [n.op.name for n in evaluated.nodes] == ["transpose", "matmul", "add"]
    trained = tg.capture(net.train(), x)
    # dropout's mask is a random op (ops/random.py), drawn afresh at each replay
    assert [n.op.name for n in trained.nodes][-2:] == ["dropout_mask", "mul"]
    net[1].generator.manual_seed(7)
    mask = (np.random.default_rng(7).random((4, 3)) >= 0.5) * 2.0
    np.testing.assert_array_equal(trained(x).data, evaluated(x).data * mask)


def test_a_loss_replays_with_new_labels() -> None:
    net = _mlp()

    def loss(x: tg.Tensor, y: tg.Tensor) -> tg.Tensor:
        return tg.losses.cross_entropy(net(x), y)

    g = tg.capture(loss, tg.placeholder((None, 4)), tg.placeholder((None,), "int64"))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    y = np.array([0, 2, 1, 1, 0])
    p = _softmax(_mlp_numpy(net, x))          # the net ends in softmax; the loss applies another
    expected = -np.log(p[np.arange(5), y]).mean()
    np.testing.assert_allclose(g(x, y).item(), expected, rtol=1e-5)
    assert g.outputs[0].shape == ()


def test_a_returned_constant_or_parameter_cannot_be_changed_through_a_replay() -> None:
    # the frozen array and the parameter are the graph's: a caller writing into
    # a result must not change what later replays return, nor the parameter
    k = np.array([2.0, 2.0], dtype=np.float32)
    w = tg.tensor(np.ones(2, np.float32), requires_grad=True)
    g = tg.capture(lambda x: (x * w, tg.tensor(k), w), tg.placeholder((None, 2)))
    _, first, w_out = g(np.ones((3, 2), np.float32))
    first.numpy()[...] += 1
    w_out.numpy()[...] += 1
    _, again, _ = g(np.ones((3, 2), np.float32))
    np.testing.assert_array_equal(again.numpy(), k)
    np.testing.assert_array_equal(w.numpy(), np.ones(2))


def test_a_function_calling_two_models_keeps_their_parameters_apart() -> None:
    # both models name a parameter "weight": each gets its variable's name as a
    # prefix, and none is lost or shared (the replay reads each one's own array)
    enc, dec = tg.nn.Linear(3, 4), tg.nn.Linear(4, 2)

    def f(x: tg.Tensor) -> tg.Tensor:
        return dec(tg.relu(enc(x)))
    g = tg.capture(f, tg.placeholder((None, 3)))
    assert list(g.parameters) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    assert [v.tensor for v in g.parameters.values()] == \
        [enc.weight, enc.bias, dec.weight, dec.bias]
    x = np.random.default_rng(0).random((5, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(g(x).data), f(tg.tensor(x)).data)


def test_parameters_with_one_name_get_fresh_names() -> None:
    # two parameters the lookup names alike (the same module twice under two
    # variables is one module; two tensors both called "w") stay two parameters
    w1 = tg.nn.Parameter(np.ones((2, 2), np.float32), name="w")
    w2 = tg.nn.Parameter(np.full((2, 2), 2, np.float32), name="w")
    g = tg.capture(lambda x: x @ w1 @ w2, tg.placeholder((None, 2)))
    assert len(g.parameters) == 2
    x = np.ones((1, 2), np.float32)
    np.testing.assert_array_equal(np.asarray(g(x).data), [[8, 8]])
