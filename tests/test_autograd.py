"""The recorded graph and the backward engine: graph shapes (diamonds, reuse,
`a + a`), gradients of gradients, tg.grad, no_grad/detach/hooks, what a node
records, memory (freeing, no reference cycles, a million-op chain),
detect_anomaly and gradcheck itself.

Every gradient is compared with something independent: a derivative written
out in the test, or float64 central differences (tg.gradcheck).
"""
import gc
import re
import sys
import time
import weakref

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgraph as tg


def f64(a, requires_grad=True, name=None):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad, name=name)


def small_arrays(min_dims=1, max_dims=2, max_side=4):
    return hnp.arrays(np.float64, hnp.array_shapes(min_dims=min_dims, max_dims=max_dims,
                                                   min_side=1, max_side=max_side),
                      elements=st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False))


class gc_disabled:
    """With the cyclic collector off, only reference counting frees memory:
    anything still alive afterwards is held by a cycle or a real reference."""

    def __enter__(self):
        self.was = gc.isenabled()
        gc.collect()
        gc.disable()

    def __exit__(self, *exc):
        if self.was:
            gc.enable()


# ---------------------------------------------------------------------------
# Graph shapes

def test_diamond():
    # y = tanh(x) * exp(x): x reaches y along two paths.
    x = f64([0.3, -1.2, 2.0])
    y = tg.tanh(x) * tg.exp(x)
    y.sum().backward()
    t, e = np.tanh(x.data), np.exp(x.data)
    np.testing.assert_allclose(x.grad.data, (1 - t ** 2) * e + t * e, rtol=1e-12)


def test_reused_leaf_and_reused_intermediate():
    x = f64([0.5, -2.0])
    (x * x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * x.data ** 2)
    # h is used three times; its gradient must be complete before it flows on.
    x.grad = None
    h = x * 2.0
    y = h * h + tg.tanh(h)
    y.sum().backward()
    hv = 2 * x.data
    np.testing.assert_allclose(x.grad.data, (2 * hv + 1 - np.tanh(hv) ** 2) * 2, rtol=1e-12)


def test_a_plus_a_has_two_edges():
    a = f64(3.0)
    y = a + a
    assert len(y.node.parents) == 2 and y.node.parents[0] is a and y.node.parents[1] is a
    y.backward(retain_graph=True)
    assert a.grad.item() == 2.0
    assert y.node.edge_grads == (1.0, 1.0)   # one gradient per edge
    b = f64(3.0)
    (b * b).backward()
    assert b.grad.item() == 6.0


def test_accumulation_within_one_graph_and_over_calls():
    x = f64([1.0, 2.0])
    y = (x * 3.0).sum() + (x * x).sum()
    y.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad.data, 3 + 2 * x.data)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * (3 + 2 * x.data))


def test_backward_with_gradient_for_non_scalar():
    x = f64([[1.0, 2.0], [3.0, 4.0]])
    y = x * x
    v = np.array([[1.0, -1.0], [0.5, 2.0]])
    y.backward(gradient=v)
    np.testing.assert_allclose(x.grad.data, 2 * x.data * v)


def test_broadcast_gradient_is_reduced():
    x = f64(np.ones((3, 1)))
    b = f64(np.arange(4.0))
    (x * b).sum().backward()
    np.testing.assert_allclose(x.grad.data, np.full((3, 1), 6.0))
    np.testing.assert_allclose(b.grad.data, np.full(4, 3.0))


def test_edge_grads_are_none_where_no_gradient_is_needed():
    x = f64([1.0, 2.0])
    c = f64([5.0, 7.0], requires_grad=False)
    y = x * c
    assert y.node.edge_grads is None
    y.sum().backward(retain_graph=True)
    g_x, g_c = y.node.edge_grads
    np.testing.assert_allclose(g_x, c.data)
    assert g_c is None


# ---------------------------------------------------------------------------
# Gradients of gradients (create_graph=True)

def first_derivative(f):
    """x -> df/dx for an elementwise f, as a recorded (differentiable) tensor."""
    return lambda x: tg.grad(f(x).sum(), x, create_graph=True)[0]


@settings(max_examples=15)
@given(small_arrays())
def test_second_derivative_tanh_gradcheck(a):
    assert tg.gradcheck(first_derivative(tg.tanh), [f64(a)])


@settings(max_examples=15)
@given(small_arrays())
def test_second_derivative_sigmoid_gradcheck(a):
    assert tg.gradcheck(first_derivative(tg.sigmoid), [f64(a)])


@settings(max_examples=15)
@given(small_arrays(), st.integers(0, 2**31 - 1))
def test_second_derivative_softmax_gradcheck(a, seed):
    # Σ softmax = 1 has zero gradient, so weight the outputs with a fixed w.
    w = np.random.default_rng(seed).standard_normal(a.shape)

    def vjp(x):
        return tg.grad(tg.softmax(x, axis=-1), x, grad_outputs=w, create_graph=True)[0]

    assert tg.gradcheck(vjp, [f64(a)])


@settings(max_examples=10)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
       st.integers(0, 2**31 - 1))
def test_second_derivative_matmul_chain_gradcheck(n, k, m, p, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, k))

    def grads(A, B):
        loss = ((tg.tensor(X) @ A @ B) ** 2.0).sum()
        return tg.grad(loss, [A, B], create_graph=True)

    assert tg.gradcheck(grads, [f64(rng.standard_normal((k, m))), f64(rng.standard_normal((m, p)))])


def test_second_and_third_derivatives_against_formulas():
    x = f64(np.linspace(-2, 2, 7))
    t = np.tanh(x.data)
    (d1,) = tg.grad(tg.tanh(x).sum(), x, create_graph=True)
    (d2,) = tg.grad(d1.sum(), x, create_graph=True)
    (d3,) = tg.grad(d2.sum(), x)
    np.testing.assert_allclose(d1.data, 1 - t ** 2, rtol=1e-12)
    np.testing.assert_allclose(d2.data, -2 * t * (1 - t ** 2), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(d3.data, -2 * (1 - t ** 2) * (1 - 3 * t ** 2), rtol=1e-12, atol=1e-15)

    s = 1 / (1 + np.exp(-x.data))
    (g1,) = tg.grad(tg.sigmoid(x).sum(), x, create_graph=True)
    (g2,) = tg.grad(g1.sum(), x)
    np.testing.assert_allclose(g2.data, s * (1 - s) * (1 - 2 * s), rtol=1e-10, atol=1e-15)


def test_hessian_vector_product_against_formula():
    # f(x) = Σ tanh(Wx);  ∇f = Wᵀ(1 - t²);  H v = Wᵀ(-2t(1 - t²) ⊙ Wv), t = tanh(Wx)
    rng = np.random.default_rng(1)
    W = rng.standard_normal((4, 3))
    x = f64(rng.standard_normal(3))
    v = rng.standard_normal(3)
    f = tg.tanh(tg.tensor(W) @ x).sum()
    (g,) = tg.grad(f, x, create_graph=True)
    assert g.requires_grad and g.node is not None
    (hv,) = tg.grad((g * v).sum(), x)
    t = np.tanh(W @ x.data)
    np.testing.assert_allclose(g.data, W.T @ (1 - t ** 2), rtol=1e-12)
    np.testing.assert_allclose(hv.data, W.T @ (-2 * t * (1 - t ** 2) * (W @ v)), rtol=1e-10)


def test_backward_create_graph_records_grad():
    x = f64([0.5, 1.5])
    (x ** 3.0).sum().backward(create_graph=True)
    gx = x.grad                        # 3x², itself differentiable
    assert gx.node is not None
    x.grad = None
    gx.sum().backward()
    np.testing.assert_allclose(x.grad.data, 6 * x.data)


# ---------------------------------------------------------------------------
# tg.grad

def test_grad_returns_tuple_and_leaves_grad_alone():
    x = f64([1.0, 2.0])
    w = f64([3.0, -1.0])
    r = tg.grad((x * w).sum(), [x, w])
    assert isinstance(r, tuple) and len(r) == 2 and all(isinstance(g, tg.Tensor) for g in r)
    np.testing.assert_allclose(r[0].data, w.data)
    np.testing.assert_allclose(r[1].data, x.data)
    assert x.grad is None and w.grad is None
    (gx,) = tg.grad((x * x).sum(), x)     # a single input still gives a tuple
    np.testing.assert_allclose(gx.data, 2 * x.data)
    assert not gx.requires_grad


def test_grad_with_respect_to_an_intermediate():
    x = f64([1.0, 2.0])
    h = x * 2.0
    (gh,) = tg.grad((h * h).sum(), h)
    np.testing.assert_allclose(gh.data, 2 * h.data)


def test_grad_allow_unused():
    x, z = f64([1.0]), f64([2.0])
    with pytest.raises(RuntimeError, match=r"grad: input 1 \(shape \(1,\)\) was not used.*allow_unused=True"):
        tg.grad((x * 2.0).sum(), [x, z])
    gx, gz = tg.grad((x * 2.0).sum(), [x, z], allow_unused=True)
    assert gx.item() == 2.0 and gz is None


def test_grad_outputs():
    x = f64([1.0, 2.0, 3.0])
    v = np.array([0.5, -1.0, 2.0])
    (g,) = tg.grad(x * x, x, grad_outputs=v)
    np.testing.assert_allclose(g.data, 2 * x.data * v)
    # several outputs: the vector-Jacobian products add up
    y1, y2 = tg.exp(x), x * 3.0
    (g,) = tg.grad([y1, y2], x, grad_outputs=[v, np.ones(3)])
    np.testing.assert_allclose(g.data, np.exp(x.data) * v + 3.0)
    with pytest.raises(RuntimeError, match=r"scalar outputs.*shape \(3,\)"):
        tg.grad(x * x, x)


def test_grad_frees_the_graph_unless_retained():
    x = f64([1.0])
    y = tg.exp(x).sum()
    tg.grad(y, x, retain_graph=True)
    (g,) = tg.grad(y, x)
    np.testing.assert_allclose(g.data, np.exp(1.0))
    with pytest.raises(RuntimeError, match="second time"):
        tg.grad(y, x)


# ---------------------------------------------------------------------------
# no_grad, detach, requires_grad_

def test_no_grad_records_nothing():
    x = f64([1.0, 2.0])
    assert tg.is_grad_enabled()
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = tg.tanh(x * 2.0)
        with tg.enable_grad():
            z = x * 2.0
    assert tg.is_grad_enabled()
    assert y.node is None and not y.requires_grad
    np.testing.assert_allclose(y.data, np.tanh(2 * x.data))
    assert z.node is not None and z.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_no_grad_as_decorator_and_restored_on_error():
    @tg.no_grad()
    def f(x):
        return x * 2.0

    x = f64([1.0])
    assert f(x).node is None
    with pytest.raises(ZeroDivisionError):
        with tg.no_grad():
            1 / 0
    assert tg.is_grad_enabled()


def test_detach():
    x = f64([1.0, 2.0])
    y = x * x
    d = y.detach()
    assert d.node is None and not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.data, y.data)
    (d * x).sum().backward()        # no gradient flows through d: d/dx (d·x) = d = x²
    np.testing.assert_allclose(x.grad.data, x.data ** 2)


def test_requires_grad_():
    x = tg.tensor(np.array([1.0, 2.0]))
    assert x.requires_grad_() is x and x.requires_grad
    y = x * 2.0
    assert y.requires_grad
    x.requires_grad_(False)
    assert (x * 2.0).node is None
    with pytest.raises(RuntimeError, match="requires_grad_: can only change a leaf"):
        y.requires_grad_(False)


# ---------------------------------------------------------------------------
# Hooks and retain_grad

def test_hook_sees_gradient():
    x = f64([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.data.copy()))
    (x * x).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], 2 * x.data)
    np.testing.assert_allclose(x.grad.data, 2 * x.data)


def test_hook_replaces_gradient_and_remove():
    x = f64([1.0, 2.0])
    h = x * 3.0
    seen = []

    def hook(g):
        seen.append(g.data.copy())
        return g * 0.0

    handle = h.register_hook(hook)
    y = (h * h).sum() + h.sum()        # h used twice: the hook sees the summed gradient once
    y.backward(retain_graph=True)
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], 2 * h.data + 1)
    np.testing.assert_allclose(x.grad.data, [0.0, 0.0])   # replaced before flowing to x
    handle.remove()
    x.grad = None
    y.backward()
    assert len(seen) == 1
    np.testing.assert_allclose(x.grad.data, 3 * (2 * h.data + 1))


def test_hook_on_leaf_replaces_stored_grad():
    x = f64([1.0, 2.0])
    x.register_hook(lambda g: g * 10.0)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 20 * x.data)


def test_hook_errors():
    with pytest.raises(RuntimeError, match="register_hook: .*does not require grad"):
        tg.tensor([1.0]).register_hook(lambda g: g)
    x = f64([1.0, 2.0])
    x.register_hook(lambda g: tg.tensor(np.zeros(3)))
    with pytest.raises(RuntimeError, match=r"returned a gradient of shape \(3,\) for a tensor of shape \(2,\)"):
        (x * x).sum().backward()


def test_retain_grad():
    x = f64([1.0, 2.0])
    h = x * 2.0
    k = h + 1.0
    h.retain_grad()
    (h * k).sum().backward()
    np.testing.assert_allclose(h.grad.data, k.data + h.data)
    assert k.grad is None


# ---------------------------------------------------------------------------
# What a node records

def test_node_records_op_attrs_parents_shape_dtype():
    x = tg.tensor(np.ones((2, 3), np.float32), requires_grad=True, name="x")
    y = tg.sum(x, axis=1, keepdims=True)
    n = y.node
    assert n.op.name == "sum" and n.name == "sum" and n.op is tg.OPS["sum"]
    assert n.attrs == {"axis": 1, "keepdims": True}
    assert n.parents == (x,) and n.shape == (2, 1) and n.dtype == np.float32
    assert n.scope == () and not n.freed

    a, b = f64([1.0]), f64([2.0])
    assert (a - b).node.parents[0] is a and (a - b).node.parents[1] is b
    assert (b - a).node.parents[0] is b
    c = tg.concat([a, b, a], axis=0)
    assert c.node.op.name == "concat" and c.node.attrs == {"axis": 0}
    assert [p is q for p, q in zip(c.node.parents, (a, b, a))] == [True] * 3
    s = x * 2.0                      # the scalar becomes a weak 0-d constant
    k = s.node.parents[1]
    assert k.shape == () and k.dtype == np.float32 and not k.requires_grad and k.node is None
    assert x.node is None and x.name == "x"
    assert "sum" in repr(n)


def test_name_scope_recorded_and_nested():
    x = f64([1.0])
    with tg.name_scope("outer") as sc:
        assert sc == ("outer",) and tg.current_scope() == ("outer",)
        a = x * 2.0
        with tg.name_scope("inner"):
            b = a + 1.0
        c = b * 3.0
    d = c - 1.0
    assert a.node.scope == ("outer",)
    assert b.node.scope == ("outer", "inner")
    assert c.node.scope == ("outer",)
    assert d.node.scope == () and tg.current_scope() == ()
    with pytest.raises(KeyError):
        with tg.name_scope("broken"):
            raise KeyError
    assert tg.current_scope() == ()
    with pytest.raises(ValueError, match="name_scope: name must be a non-empty string"):
        with tg.name_scope(""):
            pass


def test_walk_is_topological_and_deterministic():
    x, w = f64([1.0, 2.0], name="x"), f64([0.5, 0.5], name="w")
    a = x * w
    b = tg.tanh(a)
    c = a + b
    y = c.sum()
    order = tg.walk(y)
    assert [id(t) for t in order] == [id(t) for t in (x, w, a, b, c, y)]
    assert [id(t) for t in tg.walk(y)] == [id(t) for t in order]
    pos = {id(t): i for i, t in enumerate(order)}
    for t in order:
        for p in (t.node.parents if t.node else ()):
            assert pos[id(p)] < pos[id(t)]
    assert [id(t) for t in tg.walk([b, c])] == [id(t) for t in (x, w, a, b, c)]
    assert tg.walk(x) == [x]


# ---------------------------------------------------------------------------
# Memory

def test_second_backward_through_freed_graph_names_the_op():
    x = f64([1.0, 2.0])
    with tg.name_scope("layer1"):
        h = tg.tanh(x)
    y = h.sum()
    y.backward()
    assert h.node.freed and y.node.freed
    with pytest.raises(RuntimeError, match=r"a second time \(op 'sum'.*retain_graph=True"):
        y.backward()
    # A new output on top of the freed part reaches the freed tanh node.
    with pytest.raises(RuntimeError, match=r"a second time \(op 'tanh' in scope 'layer1'"):
        (h * 2.0).sum().backward()


def test_retain_graph_allows_two_backwards():
    x = f64([1.0, 2.0])
    y = tg.exp(x).sum()
    y.backward(retain_graph=True)
    assert not y.node.freed
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * np.exp(x.data))


def _graph_with_weakrefs():
    x = f64(np.arange(6.0).reshape(2, 3))
    w = f64(np.ones((3, 2)))
    h = tg.tanh(x @ w)
    y = (h * h).sum()
    refs = [weakref.ref(t) for t in tg.walk(y) if t is not x and t is not w]
    return x, w, y, refs


@pytest.mark.parametrize("how", ["no backward", "backward", "retain_graph", "grad create_graph"])
def test_graph_freed_when_output_dropped_without_gc(how):
    with gc_disabled():
        x, w, y, refs = _graph_with_weakrefs()
        assert len(refs) == 4 and all(r() is not None for r in refs)
        g = None
        if how == "backward":
            y.backward()
        elif how == "retain_graph":
            y.backward(retain_graph=True)
        elif how == "grad create_graph":
            g = tg.grad(y, [x, w], create_graph=True)
            del g
        del y
        alive = [r() for r in refs if r() is not None]
        assert alive == [], f"kept alive by a cycle or a stray reference: {alive}"
        assert x.grad is None or x.grad.node is None


def test_create_graph_backward_frees_once_grad_is_reset():
    # As in PyTorch, x.grad made with create_graph refers to x's graph (and so
    # to x); resetting x.grad releases it, with no cycle left behind.
    with gc_disabled():
        x, w, y, refs = _graph_with_weakrefs()
        y.backward(create_graph=True)
        del y
        x.grad = None
        w.grad = None
        assert [r() for r in refs if r() is not None] == []


@pytest.mark.slow
def test_million_op_chain_backpropagates():
    # A recursive walk would hit RecursionError near 1,000 nodes. The collector
    # is off only for speed: freeing relies on reference counting anyway.
    n = 1_000_000
    c = tg.tensor(np.float64(1.0000001))
    x = f64(2.0)
    with gc_disabled():
        t0 = time.perf_counter()
        y = x
        for _ in range(n):
            y = y * c
        y.backward()
        assert x.grad.item() == pytest.approx(1.0000001 ** n, rel=1e-9)
        assert y.item() == pytest.approx(2.0 * 1.0000001 ** n, rel=1e-9)
        order = tg.walk(y)
        assert len(order) == n + 2 and order[0] is x and order[-1] is y
        first = weakref.ref(order[2])       # the first product x * c
        del order
        del y                               # a 1M-deep chain is deallocated without recursion
        assert first() is None
        elapsed = time.perf_counter() - t0
    print(f"\n1,000,000-op chain: forward + backward + walk + free in {elapsed:.1f} s", file=sys.stderr)


# ---------------------------------------------------------------------------
# detect_anomaly

def _line_of(marker):
    """file:line of the line of this file that contains `marker`."""
    with open(__file__) as f:
        for i, line in enumerate(f, 1):
            if marker in line and "_line_of" not in line:
                return f"{__file__}:{i}"
    raise AssertionError(marker)


def test_anomaly_in_forward_names_op_scope_and_line():
    x = f64([1.0, -1.0, 2.0])
    y = tg.exp(x)
    with np.errstate(all="ignore"), tg.detect_anomaly():
        assert tg.sqrt(y).node.trace is not None        # finite: recorded, no error
        with tg.name_scope("stats"):
            with pytest.raises(tg.AnomalyError) as info:
                tg.log(x)                                # ANOMALY-FWD: log(-1) is nan
    msg = str(info.value)
    where = _line_of("ANOMALY-FWD")
    assert re.search(r"forward of op 'log' in scope 'stats', created at " + re.escape(where)
                     + r": tg\.log\(x\) .* produced nan", msg), msg
    assert isinstance(info.value, RuntimeError)


def test_anomaly_in_backward_names_op_scope_and_line():
    w = f64([0.0, 4.0])
    with np.errstate(all="ignore"), tg.detect_anomaly():
        with tg.name_scope("net"):
            with tg.name_scope("norm"):
                s = tg.sqrt(w)                           # ANOMALY-BWD: 1/(2·sqrt 0) = inf
        loss = s.sum()
        with pytest.raises(tg.AnomalyError) as info:
            loss.backward()
    msg = str(info.value)
    where = _line_of("ANOMALY-BWD")
    assert re.search(r"backward of op 'sqrt' in scope 'net/norm', created at " + re.escape(where)
                     + r": s = tg\.sqrt\(w\).* produced inf in the gradient for its input 0", msg), msg


def test_anomaly_mode_is_scoped():
    x = f64([-1.0])
    with pytest.raises(tg.AnomalyError):
        with np.errstate(all="ignore"), tg.detect_anomaly():
            tg.log(x)
    with np.errstate(all="ignore"):
        y = tg.log(x)                                    # outside: nan passes silently
    assert np.isnan(y.item())


def test_anomaly_reports_the_first_non_finite_op():
    x = f64([1000.0])
    with np.errstate(all="ignore"), tg.detect_anomaly():
        with pytest.raises(tg.AnomalyError, match="forward of op 'exp'.* produced inf"):
            tg.exp(x) - tg.exp(x)                        # exp overflows before sub makes nan


# ---------------------------------------------------------------------------
# gradcheck itself

WRONG = "test_autograd.square_with_wrong_vjp"


@pytest.fixture
def wrong_square():
    """x², with a VJP that is right everywhere except at flat element 4."""
    def vjp(g, out, x):
        bump = np.zeros(x.shape)
        bump.reshape(-1)[4] = 1.0
        return 2 * g * x + bump

    # A bare defop registers nowhere: nothing to undo after the test.
    op = tg.defop(WRONG, np.square, vjp)
    assert WRONG not in tg.OPS and WRONG not in tg.all_ops()
    return op


def test_gradcheck_passes_on_correct_ops():
    rng = np.random.default_rng(2)
    a, b = f64(rng.standard_normal((2, 3))), f64(rng.standard_normal((3, 2)))
    assert tg.gradcheck(lambda a, b: tg.tanh(a @ b), [a, b]) is True
    # an input that does not require grad is left alone
    assert tg.gradcheck(lambda a, b: a * b, [a, f64(np.ones((2, 3)), requires_grad=False)])


def test_gradcheck_catches_a_wrong_vjp(wrong_square):
    rng = np.random.default_rng(3)
    a = f64(rng.standard_normal((2, 3)), name="a")
    b = f64(rng.standard_normal((2, 3)), name="b")
    fn = lambda a, b: tg.exp(a) * wrong_square(b)  # noqa: E731
    # the analytical gradient really is off by exp(a) at b[1, 1], nowhere else
    out = fn(a, b)
    assert out.node.parents[1].node.op.name == WRONG
    with pytest.raises(tg.GradcheckError,
                       match=r"input 1 \('b'\) of shape \(2, 3\): gradients differ, worst at element \(1, 1\)"):
        tg.gradcheck(fn, [a, b])
    assert tg.gradcheck(fn, [a, b], raise_exception=False) is False
    # only b is wrong: checking a alone passes
    assert tg.gradcheck(fn, [a, f64(b.data, requires_grad=False)])


def test_gradcheck_rejects_float32():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="gradcheck: input 0 has dtype float32; use float64"):
        tg.gradcheck(tg.tanh, [x])
    with pytest.raises(ValueError, match="no input requires grad"):
        tg.gradcheck(tg.tanh, [f64([1.0], requires_grad=False)])


def test_plain_backward_keeps_no_edge_gradients():
    # A training loop must not hold a second copy of every activation's gradient.
    x = f64([1.0, 2.0])
    y = (x * 3.0).tanh()
    y.sum().backward(retain_graph=True)
    assert y.node.edge_grads is not None
    y.sum().backward()
    assert y.node.edge_grads is None and y.node.parents[0].node.edge_grads is None
    assert y.node.freed


def test_leaf_gradients_never_share_memory():
    # `a + b` sends one gradient array to both parents, and a reshape sends a
    # view of it; stored as is, `a.grad.data *= 0.5` (an in-place clip) would
    # change b.grad too. Each .grad must own its array, and not alias the
    # caller's `gradient` either.
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([3.0, 4.0], requires_grad=True)
    c = tg.tensor([[5.0, 6.0]], requires_grad=True)
    y = (a + b + c.reshape(2)) * 2.0
    y.sum().backward()
    grads = [a.grad.data, b.grad.data, c.grad.data]
    assert not any(np.shares_memory(p, q) for i, p in enumerate(grads) for q in grads[i + 1:])
    a.grad.data *= 0.5
    np.testing.assert_array_equal(b.grad.data, [2.0, 2.0])
    np.testing.assert_array_equal(c.grad.data, [[2.0, 2.0]])
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    v = np.array([3.0, 4.0], dtype=np.float32)
    (x + 0.0).backward(v)
    x.grad.data[0] = 0.0
    np.testing.assert_array_equal(v, [3.0, 4.0])


def test_hook_result_is_cast_to_the_tensor_dtype():
    # "Grad dtype always equals the tensor's dtype", also when a hook returns float64.
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g.data.astype(np.float64) * 2)
    (x * 3.0).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, [6.0, 6.0])


def test_gradcheck_fails_where_the_numerical_gradient_is_nan():
    # A nan output makes every central difference nan, and `nan > tol` is False:
    # gradcheck used to pass any analytical gradient there (here 5 instead of 1).
    name = "test_autograd.nan_output_with_wrong_vjp"
    bad = tg.defop(name, lambda x: np.where(x > 1.5, np.nan, x), lambda g, out, x: g * 5)
    x = f64([1.0, 2.0])
    with np.errstate(invalid="ignore"):
        assert tg.gradcheck(lambda x: bad(x), [x], raise_exception=False) is False
        with pytest.raises(tg.GradcheckError, match=r"analytical .* vs numerical nan"):
            tg.gradcheck(tg.log, [f64([-1.0, 2.0])])


# ---------------------------------------------------------------------------
# Issue 8: the engine's checks

@pytest.mark.parametrize("in_shape, wrong", [((3, 2), (2, 3)), ((3,), (5, 3)), ((2, 1), (2, 4, 1)),
                                             ((4,), (4, 2))])
def test_a_vjp_returning_a_wrong_shape_is_an_error(in_shape, wrong) -> None:
    # A gradient that the input could not have been broadcast to used to be
    # silently reshaped or summed into place.
    bad = tg.defop("wrong_shape", lambda x: x * 2, lambda g, out, x: np.ones(wrong))
    x = f64(np.ones(in_shape))
    with pytest.raises(RuntimeError, match=rf"backward of op 'wrong_shape', input 0: gradient of "
                                           rf"shape {re.escape(str(wrong))} does not match the "
                                           rf"input's shape {re.escape(str(in_shape))}"):
        bad(x).backward(np.ones(in_shape))


def test_a_vjp_names_the_input_position() -> None:
    bad = tg.defop("wrong_second", np.add, lambda g, out, a, b: g, lambda g, out, a, b: np.ones((5, 3)))
    with pytest.raises(RuntimeError, match=r"op 'wrong_second', input 1: gradient of shape \(5, 3\) "
                                           r"does not match the input's shape \(3,\)"):
        bad(f64(np.ones(3)), f64(np.ones(3))).sum().backward()


def test_unbroadcast_still_sums_broadcast_axes() -> None:
    g = np.arange(12.0).reshape(2, 3, 2)
    np.testing.assert_array_equal(tg.unbroadcast(g, (3, 1)), g.sum(axis=(0, 2)).reshape(3, 1))
    np.testing.assert_array_equal(tg.unbroadcast(g, ()), g.sum())


def test_create_graph_gives_each_leaf_its_own_grad() -> None:
    a, b = f64([1.0, 2.0]), f64([3.0, 4.0])
    (a + b).sum().backward(create_graph=True)
    assert a.grad is not b.grad
    np.testing.assert_array_equal(a.grad.data, [1.0, 1.0])
    np.testing.assert_array_equal(b.grad.data, [1.0, 1.0])
    # still differentiable: d(sum(a.grad * a))/da = a.grad
    a2 = f64([1.0, 2.0])
    b2 = f64([3.0, 4.0])
    (a2 * b2 + b2).sum().backward(create_graph=True)
    (ga,) = tg.grad((a2.grad * a2).sum(), [b2])
    np.testing.assert_array_equal(ga.data, [1.0, 2.0])


def test_backward_of_a_non_differentiable_result_says_so() -> None:
    x = f64([1.0, 3.0, 2.0])
    with pytest.raises(RuntimeError, match=r"made by op 'argmax', which is not differentiable"):
        tg.argmax(x).backward()
    with pytest.raises(RuntimeError, match=r"op 'greater', which is not differentiable"):
        (x > 1).backward(np.ones(3))
    # and through the integer ops that follow (a count, an accuracy)
    with pytest.raises(RuntimeError, match=r"made by op 'argmax', which is not differentiable"):
        x.reshape(1, 3).argmax(axis=1).sum().backward()
    with pytest.raises(RuntimeError, match=r"op 'greater', which is not differentiable"):
        ((x > 1).sum() * 2).backward()
    with tg.no_grad():
        y = x * 2
    with pytest.raises(RuntimeError, match="did you make it under no_grad"):
        y.sum().backward()


def test_power_second_derivative_at_zero_is_zero() -> None:
    # d²(x^0)/dx² = 0 everywhere; the guarded first derivative used to give 0·inf = nan at 0.
    x = f64([0.0, 1.5])

    def dfdx(x: tg.Tensor) -> tg.Tensor:
        (g,) = tg.grad(tg.power(x, 0.0).sum(), [x], create_graph=True)
        return g
    (h,) = tg.grad(dfdx(x).sum(), [x])
    np.testing.assert_array_equal(h.data, [0.0, 0.0])
    # and x² keeps its derivatives at 0: 2x, then 2
    x2 = f64([0.0, 1.5])
    (g2,) = tg.grad(tg.power(x2, 2.0).sum(), [x2], create_graph=True)
    (h2,) = tg.grad(g2.sum(), [x2])
    np.testing.assert_array_equal(g2.data, [0.0, 3.0])
    np.testing.assert_array_equal(h2.data, [2.0, 2.0])
