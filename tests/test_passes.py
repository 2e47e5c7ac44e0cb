"""Graph passes (tensorgraph.passes): dead code, common subexpressions and
constant folding. Each pass is checked three ways: the node count it should
leave (counted by hand), the replay after it equal bit for bit to the replay
before (and to the same formula in plain numpy), and the input graph left as
it was."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph.graph import Graph, GraphNode, Value
from tensorgraph.ops import defop
from tensorgraph.passes import (attr_key, eliminate_common_subexpressions,
                                eliminate_dead_code, fold_constants, is_pure, optimize)

OPS = tg.OPS
RNG = np.random.default_rng(9)


class Builder:
    """Graphs by hand: each value carries an example array, from which an op's
    output shape and dtype are taken (by the op's own forward)."""

    def __init__(self) -> None:
        self.inputs: list[Value] = []
        self.nodes: list[GraphNode] = []
        self.example: dict[int, np.ndarray] = {}
        self.count = 0

    def _leaf(self, v: Value, a: np.ndarray) -> Value:
        self.example[id(v)] = a
        return v

    def input(self, name: str, shape: tuple[int, ...], dtype: str = "float32") -> Value:
        v = Value(name, shape, dtype, "input")
        self.inputs.append(v)
        return self._leaf(v, np.zeros(shape, dtype))

    def param(self, name: str, a: np.ndarray) -> Value:
        t = tg.tensor(a, requires_grad=True)
        return self._leaf(Value(name, a.shape, a.dtype, "parameter", tensor=t), a)

    def const(self, a: Any, dtype: str = "float32") -> Value:
        a = np.asarray(a, dtype)
        self.count += 1
        return self._leaf(Value(f"c{self.count}", a.shape, a.dtype, "constant", value=a), a)

    def __call__(self, opname: Any, *inputs: Value, scope: tuple[str, ...] = (),
                 **attrs: Any) -> Value:
        op = OPS[opname] if isinstance(opname, str) else opname
        with np.errstate(all="ignore"):   # examples of zeros: 0 / 0 is fine here
            out = op.forward(*[self.example[id(v)] for v in inputs], **attrs)
        out = np.asarray(out[0] if op.saves else out)
        self.count += 1
        name = f"{op.name}_{self.count}"
        v = Value(name, out.shape, out.dtype, "op")
        v.node = GraphNode(name, op, list(inputs), attrs, v, scope)
        self.nodes.append(v.node)
        self.example[id(v)] = out
        return v

    def graph(self, *outputs: Value) -> Graph:
        return Graph(self.inputs, list(outputs), self.nodes)


def outputs(g: Graph, *args: Any) -> list[np.ndarray]:
    r = g(*args)
    return [np.asarray(t.data) for t in (r if isinstance(r, tuple) else (r,))]


def assert_bitwise(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def snapshot(g: Graph) -> Any:
    """Everything a pass could change in place."""
    return (str(g), [(id(n), id(n.output), [id(v) for v in n.inputs], dict(n.attrs))
                     for n in g.nodes], [id(v) for v in g.outputs],
            [id(v) for v in g.constants])


def same_results(before: Graph, after: Graph, *args: Any) -> list[np.ndarray]:
    want = outputs(before, *args)
    got = outputs(after, *args)
    assert len(want) == len(got)
    for a, b in zip(want, got):
        assert_bitwise(a, b)
    return got


def ops_of(g: Graph) -> list[str]:
    return [n.op.name for n in g.nodes]


# ---------------------------------------------------------------------------
# Dead code

def test_dead_code_drops_the_branch_no_output_needs() -> None:
    b = Builder()
    x = b.input("x", (4, 3))
    w = b.param("w", RNG.standard_normal((3, 2)).astype("float32"))
    h = b("matmul", x, w)
    dead = b("exp", h)                        # computed, never returned
    b("sum", b("mul", dead, b.const(3.0)), axis=None, keepdims=False)
    y = b("tanh", h)
    g = b.graph(y)
    before = snapshot(g)
    d = eliminate_dead_code(g)
    assert ops_of(g) == ["matmul", "exp", "mul", "sum", "tanh"]
    assert ops_of(d) == ["matmul", "tanh"]
    assert d.constants == [] and len(g.constants) == 1     # the 3.0 only fed dead code
    assert list(d.parameters) == ["w"] and d.inputs == g.inputs
    assert snapshot(g) == before                           # the input graph is unchanged
    xv = RNG.standard_normal((4, 3)).astype("float32")
    got = same_results(g, d, xv)
    assert_bitwise(got[0], np.tanh(xv @ w.tensor.data))


def test_dead_code_drops_parameters_only_dead_code_read() -> None:
    w = tg.tensor(np.full(3, 2.0, "float32"), requires_grad=True)
    unused = tg.tensor(np.ones(3, "float32"), requires_grad=True)

    def f(x: Any) -> Any:
        _ = (x * unused).sum()          # a dead branch with its own parameter
        return x * w
    g = tg.capture(f, tg.placeholder((3,)))
    d = eliminate_dead_code(g)
    assert len(g.parameters) == 2 and len(d.parameters) == 1
    (name,) = d.parameters
    assert d.parameters[name].tensor is w
    dropped = next(k for k, v in g.parameters.items() if v.tensor is unused)
    listed = [line.split()[0] for line in str(d).splitlines() if "= parameter" in line]
    assert listed == [name] and dropped in str(g)
    x = RNG.standard_normal(3).astype("float32")
    assert_bitwise(outputs(d, x)[0], x * np.float32(2.0))


def test_dead_code_keeps_what_any_of_several_outputs_needs() -> None:
    b = Builder()
    x = b.input("x", (3,))
    a = b("neg", x)
    c = b("exp", a)
    b("log", c)                               # dead
    g = b.graph(c, a, a)
    d = eliminate_dead_code(g)
    assert ops_of(d) == ["neg", "exp"]
    assert d.outputs[1] is d.outputs[2] is d.nodes[0].output
    same_results(g, d, RNG.standard_normal(3).astype("float32"))


def test_dead_code_keeps_impure_ops_and_what_they_read() -> None:
    # An op that changes state matters though no output reads it.
    b = Builder()
    x = b.input("x", (3,))
    assign = defop("store", lambda a: a, differentiable=False, effect=True)
    b(assign, b("exp", x))
    y = b("neg", x)
    d = eliminate_dead_code(b.graph(y))
    assert ops_of(d) == ["exp", "store", "neg"]


# ---------------------------------------------------------------------------
# Common subexpressions

def test_cse_computes_a_repeated_expression_once() -> None:
    # (x @ w) * 2 + (x @ w) * 2: capture makes two 2.0 constants, two matmuls
    # and two products; after CSE one of each remains.
    b = Builder()
    x = b.input("x", (5, 3))
    w = b.param("w", RNG.standard_normal((3, 4)).astype("float32"))
    m1 = b("mul", b("matmul", x, w), b.const(2.0))
    m2 = b("mul", b("matmul", x, w), b.const(2.0))
    y = b("add", m1, m2)
    g = b.graph(y)
    before = snapshot(g)
    c = eliminate_common_subexpressions(g)
    assert ops_of(g) == ["matmul", "mul", "matmul", "mul", "add"]
    assert ops_of(c) == ["matmul", "mul", "add"]
    assert c.nodes[2].inputs[0] is c.nodes[2].inputs[1]   # add(m, m): two edges, one value
    assert len(g.constants) == 2 and len(c.constants) == 1
    assert snapshot(g) == before
    xv = RNG.standard_normal((5, 3)).astype("float32")
    got = same_results(g, c, xv)
    m = (xv @ w.tensor.data) * np.float32(2.0)
    assert_bitwise(got[0], m + m)


def test_cse_merges_chains_of_duplicates_in_one_pass() -> None:
    b = Builder()
    x = b.input("x", (3,))
    t1 = b("tanh", b("exp", x))
    t2 = b("tanh", b("exp", x))
    g = b.graph(b("sub", t1, t2))
    c = eliminate_common_subexpressions(g)
    assert ops_of(c) == ["exp", "tanh", "sub"]
    got = same_results(g, c, RNG.standard_normal(3).astype("float32"))
    assert not got[0].any()


def test_cse_keeps_operand_order_and_different_attributes_apart() -> None:
    b = Builder()
    x = b.input("x", (2, 3))
    y = b.input("y", (2, 3))
    outs = [b("sub", x, y), b("sub", y, x),                          # order matters
            b("sum", x, axis=0, keepdims=False), b("sum", x, axis=1, keepdims=False),
            b("sum", x, axis=0, keepdims=True)]
    g = b.graph(*outs)
    assert len(eliminate_common_subexpressions(g).nodes) == 5


@pytest.mark.parametrize("first, second, merged", [
    ((slice(0, 2),), (slice(0, 2),), True),
    ((slice(0, 2),), (slice(0, 2, 1),), False),   # equal effect, different attribute
    ((slice(0, 2),), (slice(0, 3),), False),
    ((1,), (1,), True),
    ((1,), (True,), False),                       # x[True] adds an axis; 1 == True in Python
    ((np.array([0, 2]),), (np.array([0, 2]),), True),     # equal arrays, two objects
    ((np.array([0, 2]),), (np.array([0, 1]),), False),
    ((np.array([True, False, True]),), (np.array([1, 0, 1]),), False),   # mask vs indices
    ((Ellipsis, None), (Ellipsis, None), True),
    ((Ellipsis, None), (None, Ellipsis), False),
])
def test_cse_compares_getitem_indices_by_type_and_value(first: Any, second: Any,
                                                        merged: bool) -> None:
    b = Builder()
    x = b.input("x", (3, 4))
    g = b.graph(b("getitem", x, index=first), b("getitem", x, index=second))
    c = eliminate_common_subexpressions(g)
    assert len(c.nodes) == (1 if merged else 2)
    same_results(g, c, RNG.standard_normal((3, 4)).astype("float32"))


def test_attr_key_tells_apart_what_equality_confuses() -> None:
    assert attr_key(0.0) != attr_key(-0.0)                    # 0.0 == -0.0
    assert attr_key(float("nan")) == attr_key(float("nan"))   # nan != nan
    assert len({attr_key(1), attr_key(1.0), attr_key(True), attr_key(np.int64(1))}) == 4
    assert attr_key(np.array([1, 2], "int32")) != attr_key(np.array([1, 2], "int64"))
    assert attr_key(np.zeros((2, 1))) != attr_key(np.zeros((1, 2)))
    assert attr_key((1, 2)) != attr_key([1, 2])
    assert attr_key({"a": 1, "b": (2,)}) == attr_key({"b": (2,), "a": 1})
    assert attr_key(np.dtype("float32")) == attr_key(np.dtype(np.float32))
    f = np.sin
    assert attr_key(f) == attr_key(f) and attr_key(f) != attr_key(np.cos)


def test_cse_merges_equal_constants_only_when_bitwise_equal() -> None:
    b = Builder()
    x = b.input("x", (3,))
    outs = [b("mul", x, b.const(0.0)), b("mul", x, b.const(0.0)),    # merged
            b("mul", x, b.const(-0.0)),                               # -0.0 is not 0.0
            b("mul", x, b.const(0.0, "float64")),                     # nor is float64
            b("mul", x, b.const([0.0])),                              # nor shape (1,)
            b("mul", x, b.const([0.0, 0.0, 0.0]))]
    g = b.graph(*outs)
    c = eliminate_common_subexpressions(g)
    assert len(c.nodes) == 5 and len(c.constants) == 5
    got = same_results(g, c, np.array([1.0, -2.0, 3.0], "float32"))
    assert np.signbit(got[2][0]) and not np.signbit(got[0][0])


# ---------------------------------------------------------------------------
# Constant folding

def test_fold_computes_a_constant_subgraph_once() -> None:
    # x * (sqrt(2) * 3 + 1): three ops on constants, one on the input.
    b = Builder()
    x = b.input("x", (4,))
    k = b("add", b("mul", b("sqrt", b.const(2.0)), b.const(3.0)), b.const(1.0))
    g = b.graph(b("mul", x, k))
    before = snapshot(g)
    f = fold_constants(g)
    assert ops_of(f) == ["mul"]
    (c,) = f.constants
    assert c.kind == "constant" and c.name == k.name
    two, three, one = (np.float32(v) for v in (2, 3, 1))
    assert_bitwise(c.value, np.asarray(np.sqrt(two) * three + one))
    assert not c.value.flags.writeable
    assert snapshot(g) == before and len(g.constants) == 3
    same_results(g, f, RNG.standard_normal(4).astype("float32"))


def test_fold_handles_reductions_saved_forwards_and_integer_ops() -> None:
    b = Builder()
    x = b.input("x", (2, 3))
    m = b.const(RNG.standard_normal((2, 3)))
    s = b("sum", m, axis=None, keepdims=False)               # a numpy scalar: asarray'd
    srt = b("sort", m, axis=-1)                              # saves=True: (out, saved)
    idx = b("argmax", m, axis=1, keepdims=False)             # an integer result
    g = b.graph(b("mul", x, s), b("add", x, srt), idx)
    f = fold_constants(g)
    assert ops_of(f) == ["mul", "add"]
    assert [c.value.dtype for c in f.constants] == [np.float32, np.float32, np.int64]
    same_results(g, f, RNG.standard_normal((2, 3)).astype("float32"))


def test_a_folded_output_cannot_be_changed_through_a_replay_result() -> None:
    g = tg.capture(lambda x: (x + 1.0, tg.exp(tg.tensor(np.float32(2.0)))),
                   tg.placeholder((2,)))
    f = fold_constants(g)
    assert ops_of(f) == ["add"] and f.outputs[1].kind == "constant"
    _, e = f(np.zeros(2, "float32"))
    e += 1.0                                   # the user's tensor changes, not the graph
    assert_bitwise(outputs(f, np.zeros(2, "float32"))[1],
                   np.asarray(np.exp(np.float32(2.0))))


def test_fold_leaves_parameters_and_inputs_alone() -> None:
    # A parameter changes with training: an op on it and a constant is no constant.
    b = Builder()
    x = b.input("x", (2,))
    w = b.param("w", np.ones(2, "float32"))
    g = b.graph(b("add", b("mul", w, b.const(2.0)), x))
    f = fold_constants(g)
    assert ops_of(f) == ["mul", "add"]
    w.tensor.data[...] = 5.0      # as an optimiser step would: the replay reads it
    assert_bitwise(outputs(f, np.zeros(2, "float32"))[0], np.full(2, 10.0, "float32"))


def test_fold_leaves_an_op_that_fails_to_fail_at_replay() -> None:
    b = Builder()
    x = b.input("x", (2,))
    bad = b("matmul", b.const(np.ones((2, 2))), b.const(np.ones((2, 2))))
    bad.node.inputs[1] = b.const(np.ones((3, 3)))         # a mismatch the replay meets
    g = b.graph(b("add", x, b.const(1.0)), bad)
    f = fold_constants(g)
    assert ops_of(f) == ["matmul", "add"]
    with pytest.raises(ValueError, match="matmul"):
        f(np.zeros(2, "float32"))


def test_fold_respects_max_elements() -> None:
    b = Builder()
    x = b.input("x", (100,))
    big = b("broadcast_to", b.const(1.0), shape=(100,))
    g = b.graph(b("mul", x, big))
    assert ops_of(fold_constants(g, max_elements=99)) == ["broadcast_to", "mul"]
    assert ops_of(fold_constants(g, max_elements=100)) == ["mul"]
    assert ops_of(fold_constants(g, max_elements=None)) == ["mul"]


# ---------------------------------------------------------------------------
# Random and stateful ops are never merged, folded or dropped

def _noise(random: bool = True) -> Op:
    return defop("bernoulli", lambda p: (np.random.default_rng().random(p.shape) < p)
                 .astype(p.dtype), differentiable=False, random=random)


class _RandomOp:
    """An op-like object (not a registry `Op`) that says it is random."""
    name = "draw"
    saves = False
    random = True

    def forward(self, p: np.ndarray) -> np.ndarray:
        return np.random.default_rng().random(p.shape).astype(p.dtype)


def test_random_ops_by_declaration_are_neither_merged_folded_nor_dropped() -> None:
    noise = _noise()
    assert not is_pure(noise)
    b = Builder()
    x = b.input("x", (1000,))
    p = b.const(np.full(1000, 0.5))
    m1, m2 = b(noise, p), b(noise, p)              # two masks, not one
    b(noise, p)                                    # unused, but it draws
    g = b.graph(b("mul", x, m1), b("mul", x, m2))
    o = optimize(g)
    assert ops_of(o) == ["bernoulli", "bernoulli", "bernoulli", "mul", "mul"]
    a, c = outputs(o, np.ones(1000, "float32"))
    assert not np.array_equal(a, c)                # fresh draws: 2^-1000 to fail


def test_names_decide_nothing_the_declaration_does() -> None:
    # an op named like a sampler but declared without a flag is pure (no name list)
    assert is_pure(_noise(random=False))
    assert not is_pure(defop("plain", lambda x: x, differentiable=False, effect=True))


def test_random_ops_by_flag() -> None:
    rop = _RandomOp()
    assert not is_pure(rop) and is_pure(OPS["exp"])
    b = Builder()
    x = b.input("x", (3,))
    p = b.const(np.zeros(3))
    g = b.graph(b("add", x, b(rop, p)), b("add", x, b(rop, p)))
    assert ops_of(optimize(g)) == ["draw", "add", "draw", "add"]


# ---------------------------------------------------------------------------
# All three

def _messy() -> tuple[Builder, Graph]:
    """A dead branch, duplicate subexpressions and a constant subgraph."""
    b = Builder()
    x = b.input("x", (8, 3))
    w = b.param("w", RNG.standard_normal((3, 4)).astype("float32"))
    bias = b.param("b", RNG.standard_normal(4).astype("float32"))
    scale = b("div", b.const(1.0), b("sqrt", b.const(4.0)))     # folds to 0.5
    h1 = b("tanh", b("add", b("matmul", x, w), bias))
    h2 = b("tanh", b("add", b("matmul", x, w), bias))           # duplicate of h1
    b("exp", b("neg", h1))                                      # dead
    scale2 = b("div", b.const(1.0), b("sqrt", b.const(4.0)))    # folds to an equal 0.5
    y = b("add", b("mul", h1, scale), b("mul", h2, scale2))
    loss = b("mean", b("square", y), axis=None, keepdims=False)
    return b, b.graph(y, loss)


def test_optimize_runs_all_three_and_replays_bit_for_bit() -> None:
    b, g = _messy()
    before = snapshot(g)
    o = optimize(g)
    assert len(g.nodes) == 17
    assert ops_of(o) == ["matmul", "add", "tanh", "mul", "add", "square", "mean"]
    (half,) = o.constants
    assert_bitwise(half.value, np.asarray(np.float32(1) / np.sqrt(np.float32(4))))
    assert snapshot(g) == before
    xv = RNG.standard_normal((8, 3)).astype("float32")
    y, loss = same_results(g, o, xv)
    w, bias = g.parameters["w"].tensor.data, g.parameters["b"].tensor.data
    h = np.tanh(xv @ w + bias) * np.float32(0.5)
    assert_bitwise(y, h + h)
    # Nothing left for a second round.
    assert snapshot(optimize(o))[0] == snapshot(o)[0]
    for p in (eliminate_dead_code, eliminate_common_subexpressions, fold_constants):
        assert len(p(o).nodes) == len(o.nodes)


def test_the_listing_shows_the_difference() -> None:
    _, g = _messy()
    o = optimize(g)
    text = str(o)
    assert "exp" not in text and text.count("matmul(") == 1
    assert str(g).count("matmul(") == 2


@pytest.mark.parametrize("p", [eliminate_dead_code, eliminate_common_subexpressions,
                               fold_constants, optimize])
def test_a_pass_names_what_it_was_given(p: Any) -> None:
    with pytest.raises(TypeError, match=rf"{p.__name__}: expected a tg.Graph .* got Tensor"):
        p(tg.tensor([1.0]))


def test_passes_is_core_and_imports_only_core() -> None:
    from tests.test_architecture import OUTER, PACKAGE, _imported
    for name in _imported(PACKAGE / "passes.py"):
        parts = name.split(".")
        if parts[0] == "tensorgraph" and len(parts) > 1:
            assert parts[1] not in OUTER and not parts[1].startswith("draw"), name


# ---------------------------------------------------------------------------
# On captured functions

def test_optimize_a_captured_mlp_replays_bit_for_bit_at_two_batch_sizes() -> None:
    from tensorgraph import nn
    net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))

    def f(x: Any, labels: Any) -> Any:
        logits = net(x)
        again = net(x)                                  # CSE: the network once
        probs = tg.softmax(logits, axis=-1)
        _ = tg.log(probs).mean()                        # dead
        eps = tg.tensor(np.float32(1e-3)) * tg.exp(tg.tensor(np.float32(0.0)))  # folds
        hits = (logits.argmax(axis=1) == labels)        # an integer/boolean path
        return {"probs": probs + eps, "diff": logits - again, "hits": hits}
    g = tg.capture(f, tg.placeholder((None, 6)), tg.placeholder((None,), "int64"))
    o = optimize(g)
    assert len(o.nodes) < len(g.nodes) - 8
    assert sum(n.op.name == "matmul" for n in o.nodes) == 2
    assert not any(n.op.name in ("log", "mean") for n in o.nodes)
    for batch in (1, 7):
        x = RNG.standard_normal((batch, 6)).astype("float32")
        lab = RNG.integers(0, 3, batch)
        before, after = g(x, lab), o(x, lab)
        assert list(after) == ["probs", "diff", "hits"]
        for k in before:
            assert np.array_equal(before[k].data, after[k].data)
            assert before[k].dtype == after[k].dtype
        assert not after["diff"].data.any()


def test_an_optimized_graph_reads_parameters_at_each_call() -> None:
    w = tg.tensor(np.ones((2, 2), "float32"), requires_grad=True)
    g = optimize(tg.capture(lambda x: (x @ w) + (x @ w) * (2.0 * 3.0), tg.placeholder((1, 2))))
    x = np.array([[1.0, 2.0]], "float32")
    assert np.array_equal(g(x).data, (x @ w.data) * 7)
    with tg.no_grad():
        w -= 1.0                                        # an optimiser step
    assert not g(x).data.any()


def test_captured_duplicate_indexing_with_arrays_is_merged() -> None:
    idx = np.array([2, 0, 2])

    def f(x: Any) -> Any:
        return x[idx] + x[np.array([2, 0, 2])] + x[idx.astype(np.int32)] + x[1:3].sum()
    g = tg.capture(f, tg.placeholder((4,)))
    o = eliminate_common_subexpressions(g)
    names = [n.op.name for n in o.nodes]
    assert names.count("getitem") == 3         # equal int64 arrays merge; int32 does not
    x = RNG.standard_normal(4).astype("float32")
    assert np.array_equal(g(x).data, o(x).data)


# A random program: ops over inputs, one parameter and a few small constants
# (shared, so that duplicates and constant subgraphs are common), and outputs
# drawn from all values (so that some are dead).
_UNARY = ["neg", "exp", "tanh", "square", "abs", "sin"]
_BINARY = ["add", "mul", "sub", "maximum", "div"]


def _random_graph(data: Any) -> tuple[Graph, list[np.ndarray]]:
    from hypothesis import strategies as st
    b = Builder()
    pool = [b.input("x", (3,)), b.input("y", (3,)),
            b.param("w", np.array([0.5, -1.0, 2.0], "float32"))]
    consts = [np.float32(v) for v in (1.0, 2.0, 0.5)]
    for _ in range(data.draw(st.integers(3, 14), "ops")):
        if data.draw(st.booleans(), "constant operand"):
            pool.append(b.const(consts[data.draw(st.integers(0, 2))]))
        pick = st.integers(0, len(pool) - 1)
        if data.draw(st.booleans(), "unary"):
            pool.append(b(data.draw(st.sampled_from(_UNARY)), pool[data.draw(pick)]))
        else:
            pool.append(b(data.draw(st.sampled_from(_BINARY)), pool[data.draw(pick)],
                          pool[data.draw(pick)]))
    outs = data.draw(st.lists(st.integers(3, len(pool) - 1), min_size=1, max_size=3))
    g = b.graph(*[pool[i] for i in outs])
    args = [RNG.standard_normal(3).astype("float32") for _ in range(2)]
    return g, args


def test_random_programs_replay_bit_for_bit_after_every_pass() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=60, deadline=None, database=None)
    @given(st.data())
    def check(data: Any) -> None:
        g, args = _random_graph(data)
        before = snapshot(g)
        with np.errstate(all="ignore"):
            for p in (eliminate_dead_code, eliminate_common_subexpressions, fold_constants,
                      optimize):
                after = p(g)
                assert len(after.nodes) <= len(g.nodes)
                same_results(g, after, *args)
            o = optimize(g)
            assert [n.op.name for n in optimize(o).nodes] == ops_of(o)
        assert snapshot(g) == before
    check()
