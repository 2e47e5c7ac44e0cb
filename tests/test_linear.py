"""nn.Linear: PyTorch's dense layer, checked against the formula x @ W.T + b,
float64 central differences, and PyTorch itself when it is installed."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgraph as tg
from tensorgraph import nn


def test_layout_names_and_formula():
    lin = nn.Linear(3, 2, seed=0)
    assert lin.weight.shape == (2, 3) and lin.bias.shape == (2,)
    assert lin.weight.dtype == np.float32 and lin.weight.data.flags.c_contiguous
    assert [n for n, _ in lin.named_parameters()] == ["weight", "bias"]
    assert repr(lin) == "Linear(in_features=3, out_features=2, bias=True)"
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    W, b = lin.weight.data, lin.bias.data
    np.testing.assert_allclose(lin(x).data, x @ W.T + b, rtol=1e-6)
    # Any leading dimensions, as PyTorch.
    x3 = np.random.default_rng(2).standard_normal((2, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(lin(x3).data, np.einsum("abi,oi->abo", x3, W) + b, rtol=1e-5)
    nb = nn.Linear(3, 2, bias=False, seed=0)
    assert nb.bias is None and [n for n, _ in nb.named_parameters()] == ["weight"]
    np.testing.assert_allclose(nb(x).data, x @ nb.weight.data.T, rtol=1e-6)
    assert "bias=False" in repr(nb)


@settings(max_examples=20)
@given(batch=st.integers(1, 4), n_in=st.integers(1, 5), n_out=st.integers(1, 4),
       bias=st.booleans(), seed=st.integers(0, 2**16))
def test_gradients_against_central_differences(batch, n_in, n_out, bias, seed):
    lin = nn.Linear(n_in, n_out, bias=bias, seed=seed, dtype=np.float64)
    x = tg.tensor(np.random.default_rng(seed).standard_normal((batch, n_in)), requires_grad=True)
    assert tg.gradcheck(lambda x, *p: lin(x), [x, *lin.parameters()])
    # and the gradient by the formula: dL/dW = g.T @ x, dL/db = sum g, dL/dx = g @ W
    g = np.random.default_rng(seed + 1).standard_normal((batch, n_out))
    lin.zero_grad()
    (lin(x) * tg.tensor(g)).sum().backward()
    np.testing.assert_allclose(lin.weight.grad.data, g.T @ x.data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.grad.data, g @ lin.weight.data, rtol=1e-12, atol=1e-12)
    if bias:
        np.testing.assert_allclose(lin.bias.grad.data, g.sum(0), rtol=1e-12, atol=1e-12)


def test_pytorch_default_init_seeded():
    a, b = nn.Linear(300, 40, seed=3), nn.Linear(300, 40, seed=3)
    assert a.weight.data.tobytes() == b.weight.data.tobytes()
    assert a.bias.data.tobytes() == b.bias.data.tobytes()
    assert nn.Linear(300, 40, seed=4).weight.data.tobytes() != a.weight.data.tobytes()
    bound = 1 / math.sqrt(300)          # kaiming_uniform(a=sqrt(5)): U(+-1/sqrt(fan_in))
    w = a.weight.data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.03)
    assert np.abs(a.bias.data).max() <= bound
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    assert nn.Linear(4, 4, seed=g1).weight.data.tobytes() == nn.Linear(4, 4, seed=g2).weight.data.tobytes()
    assert nn.Linear(2, 2, dtype=np.float64).weight.dtype == np.float64


def test_errors_name_the_argument_and_shapes():
    with pytest.raises(ValueError, match="Linear: in_features must be a positive int, got 0"):
        nn.Linear(0, 2)
    with pytest.raises(ValueError, match="Linear: out_features must be a positive int, got 2.5"):
        nn.Linear(2, 2.5)
    with pytest.raises(TypeError, match="seed must be None, an int or a numpy Generator"):
        nn.Linear(2, 2, seed="x")
    with pytest.raises(ValueError, match=r"Linear 'linear': expected input with last dimension "
                                         r"in_features=3, got shape \(2, 4\)"):
        nn.Linear(3, 2)(np.zeros((2, 4)))


def test_pytorch_key_layout_loads_into_sequential():
    ours = nn.Sequential(nn.Linear(4, 3, seed=0), nn.ReLU(), nn.Linear(3, 2, seed=1))
    assert list(ours.state_dict()) == ["layers.0.weight", "layers.0.bias", "layers.2.weight",
                                       "layers.2.bias"]
    rng = np.random.default_rng(0)
    torch_keys = {"0.weight": rng.standard_normal((3, 4)), "0.bias": rng.standard_normal(3),
                  "2.weight": rng.standard_normal((2, 3)), "2.bias": rng.standard_normal(2)}
    assert ours.load_state_dict(torch_keys) == ([], [])
    np.testing.assert_allclose(ours[2].weight.data, torch_keys["2.weight"].astype(np.float32))
    with pytest.raises(RuntimeError, match=r"missing keys: 'layers.2.bias'"):
        ours.load_state_dict({k: v for k, v in torch_keys.items() if k != "2.bias"})
    with pytest.raises(RuntimeError, match=r"shape mismatch for '0.weight': the state has shape "
                                           r"\(4, 3\), the model has \(3, 4\)"):
        ours.load_state_dict({**torch_keys, "0.weight": np.zeros((4, 3))})


# ---------------------------------------------------------------------------
# Against PyTorch itself

def test_same_outputs_as_torch_linear():
    torch = pytest.importorskip("torch")
    t = torch.nn.Linear(5, 3).double()
    ours = nn.Linear(5, 3, dtype=np.float64)
    ours.load_state_dict(t.state_dict())
    x = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_allclose(ours(x).data, t(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-12, atol=1e-12)
    # and the same gradients
    xt = torch.from_numpy(x).requires_grad_()
    t(xt).pow(2).sum().backward()
    xo = tg.tensor(x, requires_grad=True)
    (ours(xo) ** 2).sum().backward()
    np.testing.assert_allclose(xo.grad.data, xt.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours.weight.grad.data, t.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours.bias.grad.data, t.bias.grad.numpy(), rtol=1e-10)


def test_torch_state_dict_of_the_same_architecture_loads():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    t = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3),
                            torch.nn.Softmax(dim=-1))
    ours = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax())
    assert ours.load_state_dict(t.state_dict()) == ([], [])
    x = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    np.testing.assert_allclose(ours(x).data, t(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)

    class TorchNet(torch.nn.Module):        # a Sequential inside a module: "body.0.weight"
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh())
            self.head = torch.nn.Linear(5, 2)

        def forward(self, x):
            return self.head(self.body(x))

    class OurNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 5), nn.Tanh())
            self.head = nn.Linear(5, 2)

        def forward(self, x):
            return self.head(self.body(x))

    tn, on = TorchNet(), OurNet()
    assert on.load_state_dict(tn.state_dict()) == ([], [])
    np.testing.assert_allclose(on(x).data, tn(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_default_init_has_torchs_distribution():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    t = torch.nn.Linear(100, 3000)
    ours = nn.Linear(100, 3000, seed=0)
    for a, b in [(ours.weight.data, t.weight.detach().numpy()),
                 (ours.bias.data, t.bias.detach().numpy())]:
        assert np.abs(a).max() <= 0.1 and np.abs(b).max() <= 0.1    # the bound 1/sqrt(100)
        assert abs(np.abs(a).max() - np.abs(b).max()) < 0.002
        assert a.std() == pytest.approx(b.std(), rel=0.05)


def test_torch_state_dict_with_tied_weights_loads():
    # PyTorch's state_dict lists a shared layer under every name it has
    # ("0.weight" and "2.weight" for Sequential(lin, ReLU(), lin)); ours lists
    # it once, and loading PyTorch's refused the second name as unexpected.
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tl = torch.nn.Linear(3, 3)
    t = torch.nn.Sequential(tl, torch.nn.ReLU(), tl)
    lin = nn.Linear(3, 3)
    ours = nn.Sequential(lin, nn.ReLU(), lin)
    assert list(t.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert ours.load_state_dict(t.state_dict()) == ([], [])
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(x).data, t(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    # our own state_dict still lists the shared tensor once, and loads back
    assert list(ours.state_dict()) == ["layers.0.weight", "layers.0.bias"]
    assert ours.load_state_dict(ours.state_dict()) == ([], [])
    # two names of one tensor with different values cannot both be loaded
    sd = {k: v.numpy().copy() for k, v in t.state_dict().items()}
    sd["2.bias"] += 1
    before = lin.bias.data.copy()
    with pytest.raises(RuntimeError, match=r"'0\.bias' and '2\.bias' name the same shared "
                                           r"tensor but hold different values"):
        ours.load_state_dict(sd)
    np.testing.assert_array_equal(lin.bias.data, before)       # nothing changed
