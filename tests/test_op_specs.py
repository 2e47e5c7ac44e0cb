"""One spec per op of the whole op table (core and extension tables).

Each spec draws a case over random shapes: the tensorgraph call on float64
leaves, the input arrays and the plain numpy expression. The parametrised test
checks the forward value against numpy and (for differentiable ops) the
gradient against float64 central differences (`tg.gradcheck`).
`test_every_op_has_a_spec` fails for an op in `tg.all_ops()` without a spec:
adding an op means adding its line here (tests/test_ops.py has the detailed
per-op tests: ties, kinks, dtypes, error messages).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import strategies as S
import tensorgraph as tg
from tensorgraph.ops.random import dropout_mask

FEW = settings(max_examples=12)


@dataclass
class Case:
    fn: Callable[..., Any]           # on Tensors, one per array
    arrays: list[np.ndarray]         # float64 inputs (differentiated when the op is)
    ref: Callable[..., Any]          # the same computation in numpy, on the arrays


Builder = Callable[[st.DataObject], Case]
SPECS: dict[str, Builder] = {}


def spec(name: str) -> Callable[[Builder], Builder]:
    def deco(b: Builder) -> Builder:
        assert name not in SPECS, name
        SPECS[name] = b
        return b
    return deco


def draw_arrays(data: st.DataObject, values: Any = S.arrays, n: int = 1) -> list[np.ndarray]:
    (shapes, _) = data.draw(S.broadcast_shapes(num_shapes=n), label="shapes")
    return [data.draw(values(s), label=f"x{i}") for i, s in enumerate(shapes)]


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-a))


def _log_softmax(a: np.ndarray, axis: int) -> np.ndarray:
    m = a.max(axis=axis, keepdims=True)
    return a - m - np.log(np.exp(a - m).sum(axis=axis, keepdims=True))


# ---------------------------------------------------------------------------
# Elementwise

UNARY = {
    "neg": (lambda x: -x, np.negative, S.arrays),
    "abs": (tg.abs, np.abs, S.nonzero_arrays),
    "exp": (tg.exp, np.exp, S.arrays),
    "log": (tg.log, np.log, S.positive_arrays),
    "sqrt": (tg.sqrt, np.sqrt, S.positive_arrays),
    "tanh": (tg.tanh, np.tanh, S.arrays),
    "sigmoid": (tg.sigmoid, _sigmoid, S.arrays),
    "relu": (tg.relu, lambda a: np.maximum(a, 0), S.nonzero_arrays),
    "leaky_relu": (lambda x: tg.leaky_relu(x, 0.2), lambda a: np.where(a > 0, a, 0.2 * a),
                   S.nonzero_arrays),
    "softplus": (tg.softplus, lambda a: np.log1p(np.exp(a)), S.arrays),
    "sign": (tg.sign, np.sign, S.nonzero_arrays),
    "astype": (lambda x: tg.astype(x, np.float32), lambda a: a.astype(np.float32), S.arrays),
    "clone": (lambda x: x.clone(), np.copy, S.arrays),
}
for _name, (_fn, _ref, _values) in UNARY.items():
    spec(_name)(lambda data, fn=_fn, ref=_ref, values=_values:
                Case(fn, draw_arrays(data, values), ref))

BINARY = {
    "add": (lambda a, b: a + b, np.add, S.arrays),
    "sub": (lambda a, b: a - b, np.subtract, S.arrays),
    "mul": (lambda a, b: a * b, np.multiply, S.arrays),
    "div": (lambda a, b: a / b, np.divide, S.nonzero_arrays),
    "pow": (lambda a, b: a ** b, np.power, S.positive_arrays),
    "maximum": (tg.maximum, np.maximum, None),
    "minimum": (tg.minimum, np.minimum, None),
    "less": (lambda a, b: a < b, np.less, None),
    "less_equal": (lambda a, b: a <= b, np.less_equal, None),
    "greater": (lambda a, b: a > b, np.greater, None),
    "greater_equal": (lambda a, b: a >= b, np.greater_equal, None),
    "equal": (lambda a, b: a == b, np.equal, None),
    "not_equal": (lambda a, b: a != b, np.not_equal, None),
}


def _distinct_pair(data: st.DataObject) -> list[np.ndarray]:
    # Both operands from one set of distinct values: no ties (kinks of max/min).
    (sa, sb), out = data.draw(S.broadcast_shapes(num_shapes=2), label="shapes")
    v = data.draw(S.distinct_arrays((int(np.prod(sa)) + int(np.prod(sb)),)), label="values")
    return [v[:int(np.prod(sa))].reshape(sa), v[int(np.prod(sa)):].reshape(sb)]


for _name, (_fn, _ref, _values) in BINARY.items():
    spec(_name)(lambda data, fn=_fn, ref=_ref, values=_values:
                Case(fn, draw_arrays(data, values, 2) if values else _distinct_pair(data), ref))

LOGICAL = {
    "logical_and": (lambda a, b: (a > 0) & (b > 0), lambda a, b: np.logical_and(a > 0, b > 0), 2),
    "logical_or": (lambda a, b: (a > 0) | (b > 0), lambda a, b: np.logical_or(a > 0, b > 0), 2),
    "logical_not": (lambda a: ~(a > 0), lambda a: np.logical_not(a > 0), 1),
}
for _name, (_fn, _ref, _n) in LOGICAL.items():
    spec(_name)(lambda data, fn=_fn, ref=_ref, n=_n:
                Case(fn, draw_arrays(data, S.nonzero_arrays, n), ref))


@spec("clip")
def _clip(data: st.DataObject) -> Case:
    (a,) = draw_arrays(data, lambda s: S.lattice_arrays(s, odd=True))
    lo, hi = sorted(data.draw(st.lists(S.lattice_values(odd=False), min_size=2, max_size=2)))
    return Case(lambda x: tg.clip(x, lo, hi), [a], lambda a: np.clip(a, lo, hi))


@spec("where")
def _where(data: st.DataObject) -> Case:
    (sc, sa, sb), _ = data.draw(S.broadcast_shapes(num_shapes=3), label="shapes")
    c = data.draw(hnp.arrays(np.bool_, sc), label="cond")
    a, b = data.draw(S.arrays(sa)), data.draw(S.arrays(sb))
    return Case(lambda x, y: tg.where(c, x, y), [a, b], lambda a, b: np.where(c, a, b))


# ---------------------------------------------------------------------------
# Reductions

def _reduction(name: str, np_fn: Callable[..., Any], values: Any = S.arrays,
               **kw: Any) -> Builder:
    def build(data: st.DataObject) -> Case:
        shape = data.draw(S.shapes(min_dims=1), label="shape")
        a = data.draw(values(shape), label="x")
        axis, keepdims = data.draw(S.reduction_args(len(shape)), label="axis, keepdims")
        fn = getattr(tg, name)
        return Case(lambda x: fn(x, axis=axis, keepdims=keepdims, **kw), [a],
                    lambda a: np_fn(a, axis=axis, keepdims=keepdims, **kw))
    return build


spec("sum")(_reduction("sum", np.sum))
spec("mean")(_reduction("mean", np.mean))
spec("var")(_reduction("var", np.var))
spec("max")(_reduction("max", np.max, S.distinct_arrays))
spec("min")(_reduction("min", np.min, S.distinct_arrays))
spec("any")(_reduction("any", lambda a, **k: np.any(a > 0, **k)))
spec("all")(_reduction("all", lambda a, **k: np.all(a > 0, **k)))
SPECS["any"] = lambda data, b=SPECS["any"]: _on_positive(b(data), tg.any)
SPECS["all"] = lambda data, b=SPECS["all"]: _on_positive(b(data), tg.all)


def _on_positive(case: Case, fn: Any) -> Case:
    # any/all of the boolean x > 0 (the forward compares with numpy on the same mask)
    inner = case.fn
    return Case(lambda x: inner(x > 0), case.arrays, case.ref)


@spec("logsumexp")
def _logsumexp(data: st.DataObject) -> Case:
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    a = data.draw(S.arrays(shape), label="x")
    axis, keepdims = data.draw(S.reduction_args(len(shape)), label="axis, keepdims")

    def ref(a: np.ndarray) -> np.ndarray:
        return np.log(np.sum(np.exp(a), axis=axis, keepdims=keepdims))
    return Case(lambda x: tg.logsumexp(x, axis=axis, keepdims=keepdims), [a], ref)


for _name in ("argmax", "argmin"):
    @spec(_name)
    def _arg(data: st.DataObject, name: str = _name) -> Case:
        shape = data.draw(S.shapes(min_dims=1), label="shape")
        a = data.draw(S.distinct_arrays(shape), label="x")
        axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
        return Case(lambda x: getattr(tg, name)(x, axis=axis), [a],
                    lambda a: getattr(np, name)(a, axis=axis))


for _name in ("softmax", "log_softmax"):
    @spec(_name)
    def _soft(data: st.DataObject, name: str = _name) -> Case:
        shape = data.draw(S.shapes(min_dims=1), label="shape")
        a = data.draw(S.arrays(shape), label="x")
        axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
        ls = (lambda a: _log_softmax(a, axis)) if name == "log_softmax" else \
            (lambda a: np.exp(_log_softmax(a, axis)))
        return Case(lambda x: getattr(tg, name)(x, axis=axis), [a], ls)


# ---------------------------------------------------------------------------
# Linear algebra, shape, indexing

@spec("matmul")
def _matmul(data: st.DataObject) -> Case:
    (sa, sb), _ = data.draw(S.matmul_shapes(), label="shapes")
    return Case(lambda a, b: a @ b, [data.draw(S.arrays(sa)), data.draw(S.arrays(sb))], np.matmul)


@spec("reshape")
def _reshape(data: st.DataObject) -> Case:
    shape = data.draw(S.shapes(), label="shape")
    target = data.draw(S.reshape_targets(shape), label="target")
    return Case(lambda x: x.reshape(target), [data.draw(S.arrays(shape))],
                lambda a: a.reshape(target))


@spec("transpose")
def _transpose(data: st.DataObject) -> Case:
    shape = data.draw(S.shapes(), label="shape")
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    return Case(lambda x: tg.transpose(x, perm), [data.draw(S.arrays(shape))],
                lambda a: np.transpose(a, perm))


@spec("expand_dims")
def _expand_dims(data: st.DataObject) -> Case:
    shape = data.draw(S.shapes(), label="shape")
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    return Case(lambda x: tg.expand_dims(x, axis), [data.draw(S.arrays(shape))],
                lambda a: np.expand_dims(a, axis))


@spec("squeeze")
def _squeeze(data: st.DataObject) -> Case:
    shape = data.draw(S.shapes(), label="shape")
    return Case(tg.squeeze, [data.draw(S.arrays(shape))], np.squeeze)


@spec("broadcast_to")
def _broadcast_to(data: st.DataObject) -> Case:
    (s,), out = data.draw(S.broadcast_shapes(num_shapes=1), label="shapes")
    big = data.draw(hnp.broadcastable_shapes(s, min_side=1, max_side=3), label="to")
    target = np.broadcast_shapes(s, big)
    return Case(lambda x: tg.broadcast_to(x, target), [data.draw(S.arrays(s))],
                lambda a: np.broadcast_to(a, target))


@spec("flip")
def _flip(data: st.DataObject) -> Case:
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    axis = data.draw(S.axes(len(shape)), label="axis")
    return Case(lambda x: tg.flip(x, axis), [data.draw(S.arrays(shape))],
                lambda a: np.flip(a, axis))


@spec("concat")
def _concat(data: st.DataObject) -> Case:
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3), label="sizes")
    arrs = [data.draw(S.arrays(shape[:axis % len(shape)] + (n,) + shape[axis % len(shape) + 1:]))
            for n in sizes]
    return Case(lambda *xs: tg.concat(list(xs), axis), arrs,
                lambda *a: np.concatenate(a, axis))


@spec("stack")
def _stack(data: st.DataObject) -> Case:
    shape = data.draw(S.shapes(), label="shape")
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    n = data.draw(st.integers(1, 3), label="n")
    return Case(lambda *xs: tg.stack(list(xs), axis), [data.draw(S.arrays(shape)) for _ in range(n)],
                lambda *a: np.stack(a, axis))


@spec("pad")
def _pad(data: st.DataObject) -> Case:
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    pw = data.draw(S.pad_widths(len(shape)), label="pad_width")
    return Case(lambda x: tg.pad(x, pw, 1.5), [data.draw(S.arrays(shape))],
                lambda a: np.pad(a, pw, constant_values=1.5))


@spec("getitem")
def _getitem(data: st.DataObject) -> Case:
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    key = data.draw(S.index_keys(shape), label="key")
    return Case(lambda x: x[key], [data.draw(S.arrays(shape))], lambda a: a[key])


@spec("index_add")
def _index_add(data: st.DataObject) -> Case:
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    n = shape[0]
    idx = data.draw(S.int_index_arrays(n, max_dims=1), label="index")
    src = data.draw(S.arrays(idx.shape + shape[1:]), label="src")

    def ref(s: np.ndarray) -> np.ndarray:
        z = np.zeros(shape)
        np.add.at(z, (idx,), s)
        return z
    return Case(lambda s: tg.OPS["index_add"](s, shape=shape, index=(idx,)), [src], ref)


@spec("dropout_mask")
def _dropout_mask(data: st.DataObject) -> Case:
    # A random op: the reference draws from a numpy Generator seeded alike.
    # Not differentiable (x gives only the shape); tests/test_random_ops.py
    # gradchecks dropout, x * mask, with the generator reseeded per call.
    (a,) = draw_arrays(data)
    p = data.draw(st.sampled_from([0.0, 0.2, 0.5, 0.9]), label="p")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    return Case(lambda x: dropout_mask(x, p, tg.Generator(seed)), [a],
                lambda a: (np.random.default_rng(seed).random(a.shape) >= p) / (1 - p))


# The samplers: each draws from a tg.Generator seeded alike with the numpy
# reference (tests/test_random_ops.py: fresh draws at each replay, reseeding).
def _seed(data: st.DataObject) -> int:
    return data.draw(st.integers(0, 2**32 - 1), label="seed")


@spec("rand")
def _rand(data: st.DataObject) -> Case:
    shape, seed = data.draw(S.shapes(), label="shape"), _seed(data)
    return Case(lambda: tg.rand(shape, dtype=np.float64, generator=tg.Generator(seed)), [],
                lambda: np.random.default_rng(seed).random(shape))


@spec("randn")
def _randn(data: st.DataObject) -> Case:
    shape, seed = data.draw(S.shapes(), label="shape"), _seed(data)
    return Case(lambda: tg.randn(*shape, dtype=np.float64, seed=seed), [],
                lambda: np.random.default_rng(seed).standard_normal(shape))


@spec("randint")
def _randint(data: st.DataObject) -> Case:
    shape, seed = data.draw(S.shapes(), label="shape"), _seed(data)
    low = data.draw(st.integers(-5, 5), label="low")
    high = low + data.draw(st.integers(1, 9), label="width")
    return Case(lambda: tg.randint(low, high, shape, generator=np.random.default_rng(seed)), [],
                lambda: np.random.default_rng(seed).integers(low, high, shape))


@spec("rand_like")
def _rand_like(data: st.DataObject) -> Case:
    (a,) = draw_arrays(data)
    seed = _seed(data)
    return Case(lambda x: tg.rand_like(x, seed=seed), [a],
                lambda a: np.random.default_rng(seed).random(a.shape))


@spec("randn_like")
def _randn_like(data: st.DataObject) -> Case:
    (a,) = draw_arrays(data)
    seed = _seed(data)
    return Case(lambda x: tg.randn_like(x, generator=tg.Generator(seed)), [a],
                lambda a: np.random.default_rng(seed).standard_normal(a.shape))


@spec("bernoulli")
def _bernoulli(data: st.DataObject) -> Case:
    (shape,) = [data.draw(S.shapes(), label="shape")]
    p = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1)), label="p")
    seed = _seed(data)
    return Case(lambda q: tg.bernoulli(q, seed=seed), [p],
                lambda p: (np.random.default_rng(seed).random(p.shape) < p).astype(p.dtype))


@spec("one_hot")
def _one_hot(data: st.DataObject) -> Case:
    shape = data.draw(S.shapes(), label="shape")
    n = data.draw(st.integers(1, 5), label="classes")
    idx = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, n - 1)), label="idx")
    return Case(lambda: tg.one_hot(idx, n, dtype=np.float64), [],
                lambda: (idx[..., None] == np.arange(n)).astype(np.float64))


@spec("assign")
def _assign(data: st.DataObject) -> Case:
    # An effect op: writes the value (broadcast) into the target's array, returns it.
    # tests/test_graph_train_step.py checks it in captured steps.
    t, v = draw_arrays(data, n=2)
    shape = np.broadcast_shapes(t.shape, v.shape)
    t = np.broadcast_to(t, shape).copy()

    def fn(a: tg.Tensor, b: tg.Tensor) -> tg.Tensor:
        out = tg.OPS["assign"](a, b)
        assert out.data is a.data or np.shares_memory(out.data, a.data)   # in place
        return out
    return Case(fn, [t, v], lambda t, v: np.broadcast_to(v, t.shape))


# ---------------------------------------------------------------------------
# Extension tables

class _PlainDescent(tg.optim.Optimizer):
    """A user's optimizer: its captured update is the generic `apply_update`."""

    def __init__(self, params: Any, lr: float = 0.1) -> None:
        super().__init__(params, dict(lr=lr))

    def _update(self, theta: np.ndarray, g: np.ndarray, state: dict, *, lr: float) -> None:
        theta -= lr * g


# One step of each optimizer from a fresh state, written out (the first step
# of momentum takes the buffer = g; Adam's bias corrections make m̂ = g, v̂ = g²).
_FIRST_STEPS: dict[str, tuple[Callable[[Any], Any], Callable[..., Any]]] = {
    "apply_sgd": (lambda ps: tg.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
                  lambda t, g: t - 0.1 * (g + 0.01 * t)),
    "apply_adagrad": (lambda ps: tg.optim.Adagrad(ps, lr=0.1),
                      lambda t, g: t - 0.1 * g / (np.sqrt(g * g) + 1e-10)),
    "apply_rmsprop": (lambda ps: tg.optim.RMSprop(ps, lr=0.01, alpha=0.9),
                      lambda t, g: t - 0.01 * g / (np.sqrt(0.1 * g * g) + 1e-8)),
    "apply_adam": (lambda ps: tg.optim.Adam(ps, lr=0.01),
                   lambda t, g: t - 0.01 * g / (np.sqrt(0.001 * g * g) / np.sqrt(0.001) + 1e-8)),
    "apply_update": (lambda ps: _PlainDescent(ps, lr=0.5), lambda t, g: t - 0.5 * g),
}


def _first_step_spec(name: str) -> Builder:
    make, ref = _FIRST_STEPS[name]

    def build(data: st.DataObject) -> Case:
        (t,) = draw_arrays(data)
        g = data.draw(S.arrays(t.shape), label="g")

        def fn(theta: tg.Tensor, grad: tg.Tensor) -> tg.Tensor:
            opt = make([theta])
            op = tg.all_ops()[name]
            assert op is type(opt)._apply_op
            return op(theta, grad, update=tg.optim.Update(opt, opt.param_groups[0], theta))
        return Case(fn, [t, g], ref)
    return build


for _name in _FIRST_STEPS:
    spec(_name)(_first_step_spec(_name))


@spec("cross_entropy")
def _cross_entropy(data: st.DataObject) -> Case:
    lead = data.draw(S.shapes(max_dims=2), label="lead")
    c = data.draw(st.integers(1, 4), label="classes")
    z = data.draw(S.arrays(lead + (c,)), label="logits")
    if data.draw(st.booleans(), label="index targets"):
        t = data.draw(hnp.arrays(np.int64, lead, elements=st.integers(0, c - 1)), label="t")
        picked = lambda z: np.take_along_axis(_log_softmax(z, -1), t[..., None], -1)[..., 0]  # noqa: E731
        return Case(lambda x: tg.losses.cross_entropy(x, t), [z], lambda z: -np.mean(picked(z)))
    p = data.draw(S.positive_arrays(lead + (c,)), label="t")
    p = p / p.sum(axis=-1, keepdims=True)
    return Case(lambda x, y: tg.losses.cross_entropy(x, y), [z, p],
                lambda z, p: -np.mean(np.sum(p * _log_softmax(z, -1), axis=-1)))


@spec("step")
def _step(data: st.DataObject) -> Case:
    # The perceptron's step (nn): -1 below 0, 1 from 0; its derivative is 0.
    (a,) = draw_arrays(data, S.nonzero_arrays)
    return Case(lambda x: _step_op()(x), [a], lambda a: np.where(a < 0, -1.0, 1.0))


def _step_op() -> Any:
    op = tg.all_ops()["step"]
    # the very op the perceptron records
    assert tg.nn.LinearPerceptron(1)(np.zeros((1, 1))).node.op is op
    return op


# numpy's functions (tensorgraph/ops/math.py, arrays.py, algebra.py): tests/op_specs_numpy.py
from op_specs_numpy import NUMPY_SPECS  # noqa: E402

for _name, _build in NUMPY_SPECS.items():
    spec(_name)(lambda data, build=_build: Case(*build(data)))

# convolutions and flatten (tensorgraph/ops/conv.py): tests/op_specs_conv.py
from op_specs_conv import CONV_SPECS  # noqa: E402

for _name, _build in CONV_SPECS.items():
    spec(_name)(lambda data, build=_build: Case(*build(data)))

# pooling and batch norm (tensorgraph/ops/pooling.py, normalization.py): tests/op_specs_pool.py
from op_specs_pool import POOL_SPECS  # noqa: E402

for _name, _build in POOL_SPECS.items():
    spec(_name)(lambda data, build=_build: Case(*build(data)))


# Ops that exist outside every table (none: nn and losses keep their own tables).
UNLISTED: set[str] = set()


# ---------------------------------------------------------------------------

def test_every_op_has_a_spec() -> None:
    ops = set(tg.all_ops())
    missing = sorted(ops - set(SPECS))
    assert not missing, f"ops without a spec in tests/test_op_specs.py: {missing}"
    stale = sorted(set(SPECS) - ops - UNLISTED)
    assert not stale, f"specs for ops that are in no table: {stale}"


def test_a_dropped_op_table_leaves_all_ops() -> None:
    # An extension table made in a test or a notebook needs no cleanup: the
    # spec walk above must not see it once it is gone.
    import gc
    from tensorgraph.ops import OpTable
    table = OpTable("throwaway")
    op = tg.defop("throwaway_double", lambda x: 2 * x, lambda g, out, x: 2 * g, table=table)
    assert tg.all_ops()["throwaway_double"] is op
    del table, op
    gc.collect()
    assert "throwaway_double" not in tg.all_ops()
    assert {"add", "step", "cross_entropy"} <= set(tg.all_ops())   # the package's stay


def _leaf(a: np.ndarray, grad: bool) -> tg.Tensor:
    return tg.tensor(np.array(a, dtype=np.float64), requires_grad=grad)


@pytest.mark.parametrize("name", sorted(SPECS))
@FEW
@given(data=st.data())
def test_op(name: str, data: st.DataObject) -> None:
    case = SPECS[name](data)
    op = tg.all_ops().get(name) or _step_op()
    xs = [_leaf(a, op.differentiable) for a in case.arrays]
    with np.errstate(all="ignore"):
        out = case.fn(*xs)
        expected = np.asarray(case.ref(*case.arrays))
    assert isinstance(out, tg.Tensor)
    assert out.shape == expected.shape, (out.shape, expected.shape)
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
    if op.differentiable:
        assert out.node is not None and out.node.op is op, f"{name}: recorded {out.node}"
        if name != "astype":   # a float32 result: its differences are checked in test_ops
            assert tg.gradcheck(case.fn, xs)
        else:
            (g,) = tg.grad(out, xs, np.ones(out.shape, np.float32))
            np.testing.assert_array_equal(g.data, np.ones(xs[0].shape))
    else:
        assert not out.requires_grad and out.node is None
