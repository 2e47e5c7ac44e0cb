"""The recurrent layers (tensorgraph/nn/recurrent.py) against PyTorch as the
oracle: a state_dict of the same-shaped torch module loads and gives the same
outputs and gradients (cells, layers of every kind and configuration,
unbatched inputs, padded batches against pack_padded_sequence); gradcheck of
the cells over random sizes; errors; scopes per time step; long sequences."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgraph as tg
from conftest import require_module

nn = tg.nn
F64 = np.float64


def _torch() -> Any:
    return require_module("torch")


def _pair(kind: str, *args: Any, **kw: Any) -> tuple[Any, Any]:
    """(ours, torch's) of the same shape, ours loaded from torch's state_dict, both float64."""
    torch = _torch()
    tm = getattr(torch.nn, kind)(*args, **kw).double()
    ours = getattr(nn, kind)(*args, **kw, dtype=F64, seed=0)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert ours.load_state_dict(tm.state_dict()) == ([], [])
    return ours, tm


def _flat(out: Any) -> list[Any]:
    if isinstance(out, (tuple, list)):
        return [v for o in out for v in _flat(o)]
    return [out]


def _compare(ours: Any, tm: Any, args: list[np.ndarray], call: Any = None,
             tol: float = 1e-10) -> None:
    """Forward values, and gradients of the parameters and of every argument
    for a random upstream gradient of each output."""
    torch = _torch()
    call = call or (lambda m, *a: m(*a))
    ta = [torch.tensor(a, requires_grad=True) for a in args]
    ga = [tg.tensor(a, requires_grad=True) for a in args]
    tout = _flat(call(tm, *ta))
    gout = _flat(call(ours, *ga))
    assert len(tout) == len(gout)
    rng = np.random.default_rng(1)
    seeds = [rng.standard_normal(o.shape) for o in tout]
    for t, g in zip(tout, gout):
        assert tuple(t.shape) == g.shape
        np.testing.assert_allclose(g.data, t.detach().numpy(), rtol=tol, atol=tol)
    torch.autograd.backward(tout, [torch.tensor(s) for s in seeds])
    loss = sum(tg.sum(g * s) for g, s in zip(gout, seeds))
    loss.backward()
    for (n, tp), (m, p) in zip(tm.named_parameters(), ours.named_parameters()):
        assert n == m
        np.testing.assert_allclose(p.grad.data if isinstance(p.grad, tg.Tensor) else p.grad,
                                   tp.grad.numpy(), rtol=tol, atol=tol, err_msg=n)
    for t, g in zip(ta, ga):
        np.testing.assert_allclose(g.grad.data, t.grad.numpy(), rtol=tol, atol=tol)


# ---------------------------------------------------------------------------
# Cells

@pytest.mark.parametrize("kind,kw", [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}),
                                     ("LSTMCell", {}), ("GRUCell", {}),
                                     ("GRUCell", {"bias": False})])
def test_cell_matches_torch(kind: str, kw: dict[str, Any]) -> None:
    ours, tm = _pair(kind, 3, 5, **kw)
    rng = np.random.default_rng(0)
    x, h = rng.standard_normal((4, 3)), rng.standard_normal((4, 5))
    if kind == "LSTMCell":
        c = rng.standard_normal((4, 5))
        _compare(ours, tm, [x, h, c], lambda m, x, h, c: m(x, (h, c)))
        _compare(ours, tm, [x[0], h[0], c[0]], lambda m, x, h, c: m(x, (h, c)))   # unbatched
        _compare(ours, tm, [x], lambda m, x: m(x))                               # zero state
    else:
        _compare(ours, tm, [x, h])
        _compare(ours, tm, [x[0], h[0]])
        _compare(ours, tm, [x])


def test_cell_init_is_uniform_within_one_over_sqrt_hidden() -> None:
    for cell in (nn.LSTMCell(7, 16, seed=0), nn.GRU(7, 16, num_layers=2, seed=0)):
        values = np.concatenate([p.data.ravel() for p in cell.parameters()])
        k = 1 / math.sqrt(16)
        assert np.abs(values).max() <= k
        assert np.abs(values).max() > 0.95 * k and abs(values.mean()) < 0.02
    assert nn.LSTMCell(7, 16).weight_ih.shape == (64, 7)
    assert nn.GRUCell(7, 16).weight_hh.shape == (48, 16)


@settings(max_examples=8, deadline=None)
@given(kind=st.sampled_from(["RNNCell", "LSTMCell", "GRUCell"]), b=st.integers(1, 3),
       n_in=st.integers(1, 4), hidden=st.integers(1, 4), seed=st.integers(0, 100))
def test_cell_gradcheck(kind: str, b: int, n_in: int, hidden: int, seed: int) -> None:
    cell = getattr(nn, kind)(n_in, hidden, seed=seed, dtype=F64)
    rng = np.random.default_rng(seed)
    x = tg.tensor(rng.standard_normal((b, n_in)), requires_grad=True)
    h = tg.tensor(rng.standard_normal((b, hidden)), requires_grad=True)
    c = tg.tensor(rng.standard_normal((b, hidden)), requires_grad=True)
    ps = cell.parameters()
    if kind == "LSTMCell":
        def f(x: Any, h: Any, c: Any, *_: Any) -> Any:
            h2, c2 = cell(x, (h, c))
            return h2 * 2 + c2
        assert tg.gradcheck(f, [x, h, c, *ps])
    else:
        assert tg.gradcheck(lambda x, h, *_: cell(x, h), [x, h, *ps])


# ---------------------------------------------------------------------------
# Layers

CONFIGS = [
    ("RNN", {}), ("RNN", {"nonlinearity": "relu", "num_layers": 2}),
    ("LSTM", {}), ("LSTM", {"num_layers": 2, "bidirectional": True}),
    ("LSTM", {"batch_first": True, "bias": False}),
    ("GRU", {}), ("GRU", {"num_layers": 2, "bidirectional": True, "batch_first": True}),
    ("RNN", {"bidirectional": True}),
]


@pytest.mark.parametrize("kind,kw", CONFIGS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CONFIGS)])
def test_layer_matches_torch(kind: str, kw: dict[str, Any]) -> None:
    ours, tm = _pair(kind, 3, 4, **kw)
    L, D = kw.get("num_layers", 1), 2 if kw.get("bidirectional") else 1
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5, 3) if kw.get("batch_first") else (5, 2, 3))
    h0, c0 = rng.standard_normal((L * D, 2, 4)), rng.standard_normal((L * D, 2, 4))
    _compare(ours, tm, [x])                                          # zero initial state
    if kind == "LSTM":
        _compare(ours, tm, [x, h0, c0], lambda m, x, h, c: m(x, (h, c)))
        _compare(ours, tm, [x[0] if kw.get("batch_first") else x[:, 0], h0[:, 0], c0[:, 0]],
                 lambda m, x, h, c: m(x, (h, c)))                    # unbatched
    else:
        _compare(ours, tm, [x, h0])
        _compare(ours, tm, [x[0] if kw.get("batch_first") else x[:, 0], h0[:, 0]])
        _compare(ours, tm, [x[:, 0] if not kw.get("batch_first") else x[0]])


def test_layer_float32_matches_torch_and_keeps_dtype() -> None:
    torch = _torch()
    tm = torch.nn.LSTM(3, 4)
    ours = nn.LSTM(3, 4)
    ours.load_state_dict(tm.state_dict())
    x = np.random.default_rng(0).standard_normal((6, 2, 3)).astype(np.float32)
    out, (h, c) = ours(x)
    tout, (th, tc) = tm(torch.tensor(x))
    assert out.dtype == np.float32 and h.dtype == np.float32
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.data, tc.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("kw", [{}, {"bidirectional": True, "num_layers": 2},
                                {"batch_first": True}])
def test_lengths_match_pack_padded_sequence(kind: str, kw: dict[str, Any]) -> None:
    torch = _torch()
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    ours, tm = _pair(kind, 3, 4, **kw)
    bf = kw.get("batch_first", False)
    lengths = [3, 6, 1, 4]                   # unsorted: enforce_sorted=False
    T = 6
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, T, 3) if bf else (T, 4, 3))

    def torch_call(m: Any, x: Any) -> Any:
        packed = pack_padded_sequence(x, lengths, batch_first=bf, enforce_sorted=False)
        out, state = m(packed)
        out, _ = pad_packed_sequence(out, batch_first=bf, total_length=T)
        return out, state

    _compare(ours, tm, [x], lambda m, x: torch_call(m, x) if m is tm else m(x, lengths=lengths))
    # padded rows of the output are zeros; padded input steps get no gradient
    xt = tg.tensor(x, requires_grad=True)
    out, state = ours(xt, lengths=np.array(lengths))
    loss = tg.sum(out * out) + tg.sum(_flat(state)[0])
    loss.backward()
    for b, n in enumerate(lengths):
        pad_out = out.data[b, n:] if bf else out.data[n:, b]
        pad_grad = xt.grad.data[b, n:] if bf else xt.grad.data[n:, b]
        assert (pad_out == 0).all() and (pad_grad == 0).all()
        assert np.abs(xt.grad.data[b, :n] if bf else xt.grad.data[:n, b]).min() > 0


def test_full_lengths_equal_no_lengths() -> None:
    m = nn.GRU(2, 3, bidirectional=True, seed=0, dtype=F64)
    x = np.random.default_rng(0).standard_normal((4, 3, 2))
    a, ha = m(x)
    b, hb = m(x, lengths=[4, 4, 4])
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(ha.data, hb.data)


def test_dropout_between_layers_in_training_only() -> None:
    torch = _torch()
    ours, tm = _pair("LSTM", 3, 4, num_layers=3, dropout=0.5)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    ours.eval()
    tm.eval()
    np.testing.assert_allclose(ours(x)[0].data, tm(torch.tensor(x))[0].detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    ours.train()
    a, b = ours(x)[0].data, ours(x)[0].data
    assert not np.allclose(a, b)                          # fresh masks each call
    g = tg.capture(lambda x: ours(x)[0], x)
    assert sum(n.op.name == "dropout_mask" for n in g.nodes) == 2     # between 3 layers
    one = nn.LSTM(3, 4, dropout=0.5, seed=0)              # one layer: nothing to drop
    np.testing.assert_array_equal(one(x)[0].data, one.eval()(x)[0].data)


@settings(max_examples=6, deadline=None)
@given(kind=st.sampled_from(["RNN", "LSTM", "GRU"]), T=st.integers(1, 3), b=st.integers(1, 3),
       hidden=st.integers(1, 3), bidirectional=st.booleans(), padded=st.booleans(),
       seed=st.integers(0, 100))
def test_layer_gradcheck(kind: str, T: int, b: int, hidden: int, bidirectional: bool,
                         padded: bool, seed: int) -> None:
    # float64 central differences through the whole layer (input, h_0, every weight)
    m = getattr(nn, kind)(2, hidden, bidirectional=bidirectional, seed=seed, dtype=F64)
    rng = np.random.default_rng(seed)
    D = 2 if bidirectional else 1
    x = tg.tensor(rng.standard_normal((T, b, 2)), requires_grad=True)
    h0 = tg.tensor(rng.standard_normal((D, b, hidden)), requires_grad=True)
    lengths = rng.integers(1, T + 1, b) if padded else None

    def f(x: Any, h0: Any, *_: Any) -> Any:
        out, state = m(x, (h0, h0 * 0.5) if kind == "LSTM" else h0, lengths=lengths)
        return out, _flat(state)[0]
    assert tg.gradcheck(f, [x, h0, *m.parameters()])


# ---------------------------------------------------------------------------
# Errors

def test_errors_name_the_module_and_the_shapes() -> None:
    m = nn.LSTM(3, 4, num_layers=2, name="enc")
    x = np.zeros((5, 2, 3), np.float32)
    with pytest.raises(ValueError, match=r"LSTM 'enc'.*feature = input_size = 3.*\(5, 2, 7\)"):
        m(np.zeros((5, 2, 7)))
    with pytest.raises(ValueError, match=r"LSTM 'enc'.*3-D input.*\(5,\)"):
        m(np.zeros(5))
    with pytest.raises(ValueError, match=r"LSTM 'enc'.*lengths must be in 1..5.*got 6"):
        m(x, lengths=[6, 2])
    with pytest.raises(ValueError, match=r"LSTM 'enc'.*lengths has 3 entries but the batch has 2"):
        m(x, lengths=[1, 2, 3])
    with pytest.raises(TypeError, match=r"LSTM 'enc'.*lengths must be a sequence of ints"):
        m(x, lengths=[1.5, 2])
    with pytest.raises(ValueError, match=r"LSTM 'enc'.*h_0 must have shape \(2, 2, 4\).*\(1, 2, 4\)"):
        m(x, (np.zeros((1, 2, 4)), np.zeros((2, 2, 4))))
    with pytest.raises(ValueError, match=r"LSTM 'enc'.*c_0 must have shape \(2, 2, 4\).*\(2, 3, 4\)"):
        m(x, (np.zeros((2, 2, 4)), np.zeros((2, 3, 4))))
    with pytest.raises(TypeError, match=r"LSTM 'enc'.*hx must be a pair"):
        m(x, np.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match=r"GRU 'gru'.*h_0 must have shape \(2, 4\).*unbatched"):
        nn.GRU(3, 4, bidirectional=True)(np.zeros((5, 3)), np.zeros((2, 1, 4)))
    with pytest.raises(ValueError, match=r"RNN 'rnn'.*no time steps \(shape \(2, 0, 3\)\)"):
        nn.RNN(3, 4, batch_first=True)(np.zeros((2, 0, 3)))
    with pytest.raises(ValueError, match=r"GRU 'gru'.*lengths needs a batched \(3-D\) input.*"
                                         r"\(5, 3\)"):
        nn.GRU(3, 4)(np.zeros((5, 3)), lengths=[5])
    with pytest.raises(ValueError, match=r"GRUCell 'grucell'.*\(batch, 3\).*\(2, 4\)"):
        nn.GRUCell(3, 4)(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"RNNCell 'rnncell'.*hx must have shape \(2, 4\).*\(2, 5\)"):
        nn.RNNCell(3, 4)(np.zeros((2, 3)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"RNN: nonlinearity must be 'tanh' or 'relu'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"LSTM: dropout must be a number in \[0, 1\)"):
        nn.LSTM(3, 4, dropout=1.0)
    with pytest.raises(ValueError, match=r"GRU: hidden_size must be a positive int"):
        nn.GRU(3, 0)


# ---------------------------------------------------------------------------
# Scopes, long sequences

def test_each_time_step_records_its_own_scope() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__(name="net")
            self.encoder = nn.LSTM(2, 3, bidirectional=True, seed=0)

        def forward(self, x: Any) -> Any:
            return self.encoder(x)[0]

    net = Net()
    out = net(np.zeros((4, 1, 2), np.float32))
    scopes = {n.node.scope for n in _nodes(out)}
    for t in range(4):
        assert ("net", "encoder", "l0", f"t{t}") in scopes
        assert ("net", "encoder", "l0_reverse", f"t{t}") in scopes
    assert ("net", "encoder", "l0") in scopes           # the input projection
    # the ops of one step: its own product with W_hh and its gate math (one fused op)
    step = [n.node.op.name for n in _nodes(out) if n.node.scope == ("net", "encoder", "l0", "t2")]
    assert sorted(step) == ["add", "getitem", "lstm_cell", "matmul"]


def _nodes(out: tg.Tensor) -> list[tg.Tensor]:
    seen, stack, found = set(), [out], []
    while stack:
        t = stack.pop()
        if id(t) in seen or t.node is None:
            continue
        seen.add(id(t))
        found.append(t)
        stack.extend(t.node.parents)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_thousand_steps_backpropagate(kind: str) -> None:
    import tracemalloc
    m = getattr(nn, kind)(4, 8, seed=0)
    x = tg.tensor(np.random.default_rng(0).standard_normal((1000, 2, 4)).astype(np.float32),
                  requires_grad=True)
    tracemalloc.start()
    out, _ = m(x)
    tg.sum(out[-1]).backward()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 200e6, peak
    g = x.grad.data
    assert np.isfinite(g).all() and np.abs(g[-1]).sum() > 0
    assert all(p.grad is not None for p in m.parameters())


# ---------------------------------------------------------------------------
# The fused cells (tensorgraph/ops/recurrent.py): second derivatives, errors

@settings(max_examples=6, deadline=None)
@given(kind=st.sampled_from(["lstm_cell", "gru_cell"]), b=st.integers(1, 3),
       hidden=st.integers(1, 3), seed=st.integers(0, 100))
def test_fused_cell_gradients_differentiate_again(kind: str, b: int, hidden: int,
                                                  seed: int) -> None:
    # create_graph: the VJPs run on Tensors (recomputing what forward saved), so
    # the gradient is itself differentiable; checked by finite differences.
    rng = np.random.default_rng(seed)
    G = 4 if kind == "lstm_cell" else 3
    shapes = [(b, G * hidden), (b, 2 * hidden)] if G == 4 else \
        [(b, 3 * hidden), (b, 3 * hidden), (b, hidden)]
    xs = [tg.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]
    v = rng.standard_normal((b, (2 if G == 4 else 1) * hidden))
    fn = getattr(tg, kind)

    def grads(*xs: Any) -> Any:
        return list(tg.grad(tg.sum(fn(*xs) * v), list(xs), create_graph=True))
    assert tg.gradcheck(grads, xs)


def test_fused_cell_errors_name_the_op_and_shapes() -> None:
    with pytest.raises(ValueError, match=r"lstm_cell: gates must have a last axis of 4·hidden_size"
                                         r".*\(2, 7\)"):
        tg.lstm_cell(np.zeros((2, 7)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"lstm_cell: hc must have last axis 4.*\(2, 3\)"):
        tg.lstm_cell(np.zeros((2, 8)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"gru_cell: h must have last axis 2.*\(2, 3\)"):
        tg.gru_cell(np.zeros((2, 6)), np.zeros((2, 6)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"gru_cell: hp must have last axis 6.*\(2, 5\)"):
        tg.gru_cell(np.zeros((2, 6)), np.zeros((2, 5)), np.zeros((2, 2)))


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_captured_training_step_replays_as_eager(kind: str) -> None:
    # The replay runs the cells' VJPs as ops, handing them what the forward saved.
    def build() -> tuple[Any, Any, Any]:
        rnn = getattr(nn, kind)(3, 4, bidirectional=True, seed=0, dtype=F64)
        head = nn.Linear(8, 2, seed=1, dtype=F64)
        params = rnn.parameters() + head.parameters()
        opt = tg.optim.SGD(params, lr=0.5)

        def step(x: tg.Tensor, y: tg.Tensor) -> tg.Tensor:
            opt.zero_grad()
            out, _ = rnn(x, lengths=[5, 3])
            loss = tg.losses.cross_entropy(head(out[-1] + out[0]), y)
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            return loss
        return step, params, opt
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((5, 2, 3)) for _ in range(3)]
    y = np.array([0, 1])
    eager, p_eager, _ = build()
    captured, p_capt, _ = build()
    g = tg.capture(captured, tg.placeholder((5, 2, 3), "float64"), tg.placeholder((2,), "int64"))
    for x in xs:
        a = eager(tg.tensor(x), y).item()
        b = g(x, y)
        np.testing.assert_allclose(np.asarray(b.data if isinstance(b, tg.Tensor) else b), a,
                                   rtol=1e-12)
    for p, q in zip(p_eager, p_capt):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-12, atol=1e-14)
    assert any(n.op.name.startswith(kind.lower() + "_cell_vjp") for n in g.nodes)
