"""Modules: registration, scopes, saving, and each layer against formulas and
float64 central differences."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgraph as tg
from tensorgraph import nn

F64 = np.float64
ACTS = ["linear", "identity", "sigmoid", "tanh", "relu"]

# Reference activations written out independently of tensorgraph.
REF = {
    None: lambda z: z,
    "linear": lambda z: z,
    "identity": lambda z: z,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": lambda z: (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z)),
    "relu": lambda z: np.where(z > 0, z, 0.0),
    "softmax": lambda z: np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True),
}


def x64(rng, *shape, requires_grad=True):
    return tg.tensor(rng.standard_normal(shape), requires_grad=requires_grad)


# ---------------------------------------------------------------------------
# Parameter

def test_parameter_is_a_float_leaf_that_requires_grad():
    p = nn.Parameter(np.zeros(3))
    assert isinstance(p, tg.Tensor) and p.requires_grad and p.is_leaf
    assert p.dtype == np.float64                     # numpy arrays keep their dtype
    assert nn.Parameter([1.0, 2.0]).dtype == np.float32
    assert nn.Parameter([1, 2]).dtype == np.float32  # ints become float
    q = nn.Parameter(np.ones(2, dtype=np.float32), name="w")
    assert q.name == "w" and repr(q).startswith("Parameter([1., 1.]") and "name='w'" in repr(q)
    with pytest.raises(TypeError, match="numeric"):
        nn.Parameter(np.array(["a"]))
    y = (p * 2.0).sum()
    assert type(y) is tg.Tensor and y.node is not None


# ---------------------------------------------------------------------------
# Module registration

class Pair(nn.Module):
    def __init__(self, name=None):
        super().__init__(name=name)
        self.a = nn.Layer(3, 4, activation="tanh", seed=0)
        self.b = nn.Layer(4, 2, seed=1)
        self.scale = nn.Parameter(np.ones((), dtype=np.float32))
        self.note = "not registered"

    def forward(self, x):
        return self.b(self.a(x)) * self.scale


def test_registration_and_dotted_names():
    m = Pair()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "a.weight", "a.bias", "b.weight", "b.bias"]
    assert [n for n, _ in m.named_modules()] == ["", "a", "b"]
    assert [n for n, _ in m.named_children()] == ["a", "b"]
    assert list(m.children()) == [m.a, m.b]
    assert m.parameters() == [p for _, p in m.named_parameters()]
    assert m.num_parameters() == 1 + 3 * 4 + 4 + 4 * 2 + 2
    assert m.scale.name == "scale" and m.a.weight.name == "weight"
    assert m.note == "not registered"


def test_shared_parameters_are_listed_once():
    m = Pair()
    m.b.weight = nn.Parameter(np.ones((4, 2), dtype=np.float32))
    m.c = m.a                    # a shared module
    m.extra = m.a.weight         # a shared parameter
    params = list(m.named_parameters())
    assert len(params) == len({id(p) for _, p in params}) == 5
    # a module's own parameters come before its children's, so the weight is "extra"
    assert [n for n, _ in params] == ["scale", "extra", "a.bias", "b.weight", "b.bias"]
    assert [n for n, _ in m.named_modules()] == ["", "a", "b"]
    assert m.c.weight is m.extra
    assert list(m.state_dict()) == [n for n, _ in params]


def test_lists_of_modules_become_a_module_list():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = [nn.Layer(2, 2, seed=i) for i in range(3)]
            self.pair = (nn.Tanh(), nn.ReLU())

    s = Stack()
    assert isinstance(s.blocks, nn.ModuleList) and isinstance(s.pair, nn.ModuleList)
    assert len(s.blocks) == 3 and s.blocks[-1] is s.blocks[2]
    assert [n for n, _ in s.named_parameters()] == [
        f"blocks.{i}.{w}" for i in range(3) for w in ("weight", "bias")]
    assert [n for n, _ in s.named_modules()] == [
        "", "blocks", "blocks.0", "blocks.1", "blocks.2", "pair", "pair.0", "pair.1"]
    with pytest.raises(IndexError, match="index 3 out of range for length 3"):
        s.blocks[3]
    with pytest.raises(TypeError, match="not callable"):
        s.blocks(np.zeros(2))


def test_registration_errors():
    m = Pair()
    with pytest.raises(TypeError, match=r"Pair\.a: cannot assign Tensor to module 'a'"):
        m.a = tg.tensor([1.0])
    with pytest.raises(TypeError, match=r"cannot assign ndarray to parameter 'scale'"):
        m.scale = np.ones(())
    with pytest.raises(TypeError, match="only Modules"):
        m.mixed = [nn.ReLU(), 3]

    class Forgot(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(RuntimeError, match=r"call super\(\).__init__\(\) before"):
        Forgot()
    with pytest.raises(NotImplementedError, match="define forward"):
        nn.Module()(1.0)
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        nn.Layer(2, 2, name="")


def test_assigning_none_unregisters():
    m = Pair()
    m.scale = None
    m.b = None
    assert [n for n, _ in m.named_parameters()] == ["a.weight", "a.bias"]
    assert m.scale is None and m.b is None
    del m.a
    assert m.parameters() == []


def test_misspelt_attribute_raises_attribute_error():
    net = nn.FeedForward([2, 3, 1], seed=0)
    with pytest.raises(AttributeError, match="'FeedForward' object has no attribute 'layer'"):
        net.layer
    with pytest.raises(AttributeError, match="weigth"):
        net.layers[0].weigth
    assert not hasattr(net.layers[0], "weigth")


def test_zero_grad_train_eval_and_to():
    net = nn.Sequential(nn.Layer(2, 3, seed=0), nn.Dropout(0.5), nn.Layer(3, 1, seed=1))
    (net(np.ones((4, 2))).sum()).backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert all(m.training for m in net.modules())
    assert net.eval() is net and not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    w = net[0].weight
    net.to(np.float64)
    assert net[0].weight is w and all(p.dtype == F64 for p in net.parameters())
    np.testing.assert_array_equal(w.data, nn.Layer(2, 3, seed=0).weight.data.astype(F64))


# ---------------------------------------------------------------------------
# state_dict

def test_state_dict_round_trip():
    a = nn.FeedForward([3, 5, 2], seed=1)
    b = nn.FeedForward([3, 5, 2], seed=2)
    sd = a.state_dict()
    assert list(sd) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    sd["layers.0.weight"][0, 0] += 1.0          # a copy, not the parameter's array
    assert a.layers[0].weight.data[0, 0] != sd["layers.0.weight"][0, 0]
    sd = a.state_dict()
    w_before = b.layers[0].weight
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert b.layers[0].weight is w_before        # loaded in place
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_array_equal(a(x).data, b(x).data)
    # Tensors and other float dtypes are accepted (cast to the parameter's dtype).
    b.load_state_dict({k: tg.tensor(v.astype(F64) * 2) for k, v in sd.items()})
    assert b.layers[1].bias.dtype == np.float32
    np.testing.assert_array_equal(b.layers[0].weight.data, sd["layers.0.weight"] * 2)


def test_load_state_dict_errors_name_keys_and_shapes():
    net = nn.FeedForward([3, 5, 2], seed=1, name="net")
    before = net.state_dict()
    sd = net.state_dict()
    del sd["layers.1.bias"]
    sd["layers.2.weight"] = np.zeros((2, 2))
    sd["layers.0.weight"] = np.zeros((5, 3))
    with pytest.raises(RuntimeError) as e:
        net.load_state_dict(sd)
    msg = str(e.value)
    assert "load_state_dict for FeedForward 'net'" in msg
    assert "missing keys: 'layers.1.bias'" in msg
    assert "unexpected keys: 'layers.2.weight'" in msg
    assert "shape mismatch for 'layers.0.weight': the state has shape (5, 3), the model has (3, 5)" in msg
    for k, v in net.state_dict().items():           # nothing was changed
        np.testing.assert_array_equal(v, before[k])
    # Non-strict: missing/unexpected keys are reported, shapes still checked.
    sd["layers.0.weight"] = np.zeros((3, 5))
    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["layers.1.bias"] and res.unexpected_keys == ["layers.2.weight"]
    assert (net.layers[0].weight.data == 0).all()
    sd["layers.0.weight"] = np.zeros(3)
    with pytest.raises(RuntimeError, match=r"shape mismatch for 'layers.0.weight': the state "
                                           r"has shape \(3,\), the model has \(3, 5\)"):
        net.load_state_dict(sd, strict=False)
    with pytest.raises(TypeError, match="'layers.0.weight' has dtype <U1"):
        net.load_state_dict({**net.state_dict(), "layers.0.weight": np.array(["a"])})


# ---------------------------------------------------------------------------
# repr

def test_repr_is_a_tree():
    net = nn.FeedForward([2, 4, 1], activation="tanh", output="sigmoid", seed=0, name="xor")
    assert repr(net) == (
        "FeedForward(\n"
        "  name='xor', sizes=[2, 4, 1], activation='tanh', output='sigmoid'\n"
        "  (layers): ModuleList(\n"
        "    (0): Layer(n_in=2, n_out=4, activation='tanh')\n"
        "    (1): Layer(n_in=4, n_out=1, activation=None)\n"
        "  )\n"
        ")")
    seq = nn.Sequential(nn.Layer(2, 2, bias=False, seed=0), nn.Dropout(0.25), nn.Softmax())
    assert repr(seq) == (
        "Sequential(\n"
        "  (layers): ModuleList(\n"
        "    (0): Layer(n_in=2, n_out=2, activation=None, bias=False)\n"
        "    (1): Dropout(p=0.25)\n"
        "    (2): Softmax(axis=-1)\n"
        "  )\n"
        ")")
    assert repr(nn.Neuron(3, seed=0)) == "Neuron(n_inputs=3, activation='sigmoid')"


# ---------------------------------------------------------------------------
# Scopes

def _op_scopes(y):
    return [(t.node.op.name, t.node.scope) for t in tg.walk(y) if t.node is not None]


def test_scopes_of_a_feedforward():
    net = nn.FeedForward([2, 3, 2], output="softmax", seed=0, name="net")
    y = net(np.ones((1, 2)))
    L0, L1 = ("net", "layers", "0"), ("net", "layers", "1")
    assert _op_scopes(y) == [("matmul", L0), ("add", L0), ("relu", L0),
                             ("matmul", L1), ("add", L1), ("softmax", ("net",))]
    assert net.scope_name == "net" and net.layers[1].scope_name == "1"
    assert net.scope_path() == ("net",) and net.scope_path("layers.1") == L1
    assert net.module_for_scope(L0) is net.layers[0]
    assert net.module_for_scope(("net",)) is net
    assert net.module_for_scope(("other", "layers")) is None
    # Every recorded scope maps to a module whose scope_path gives it back.
    names = {id(m): n for n, m in net.named_modules()}
    for _, scope in _op_scopes(y):
        assert net.scope_path(names[id(net.module_for_scope(scope))]) == scope
    assert tg.current_scope() == ()
    z = net.logits(np.ones((1, 2)))
    assert _op_scopes(z)[-1] == ("add", L1)


def test_scopes_of_nested_custom_modules():
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = nn.FeedForward([3, 4, 2], seed=0)
            self.out = nn.Neuron(2, activation="tanh", seed=0)

        def forward(self, x):
            return self.out(self.mlp(x))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = Encoder()
            self.head = nn.Sequential(nn.Identity(), nn.Sigmoid())

        def forward(self, x):
            return self.head(self.encoder(x))

    m = Model()
    assert m.scope_name == "model" and m.encoder.mlp.scope_name == "mlp"
    y = m(np.ones((2, 3)))
    scopes = _op_scopes(y)
    assert ("matmul", ("model", "encoder", "mlp", "layers", "0")) in scopes
    assert ("matmul", ("model", "encoder", "mlp", "layers", "1")) in scopes
    assert ("tanh", ("model", "encoder", "out")) in scopes
    assert scopes[-1] == ("sigmoid", ("model", "head", "layers", "1"))
    assert m.module_for_scope(("model", "head", "layers", "1")) is m.head[1]
    assert m.scope_path("encoder.mlp.layers.0") == ("model", "encoder", "mlp", "layers", "0")
    with pytest.raises(AttributeError, match="no sub-module 'encoder.nope'"):
        m.scope_path("encoder.nope")
    # An outer scope is a prefix.
    with tg.name_scope("train"):
        y = m(np.ones((2, 3)))
    assert _op_scopes(y)[-1][1] == ("train", "model", "head", "layers", "1")


def test_default_names_and_top_level_calls():
    assert nn.Layer(2, 2).scope_name == "layer"
    assert nn.LinearPerceptron(2).scope_name == "linearperceptron"
    assert nn.FeedForward([1, 1], name="net").scope_name == "net"
    blocks = nn.ModuleList([nn.Layer(2, 2, seed=0), nn.Layer(2, 2, seed=1)])
    x = tg.tensor(np.ones(2), requires_grad=True)
    # called on its own, a module pushes just its scope name
    assert _op_scopes(blocks[1](x))[0][1] == ("1",)
    named = nn.Layer(2, 2, name="custom")
    assert _op_scopes(named(x))[0][1] == ("custom",)
    holder = nn.Module(name="h")
    holder.child = named                       # a registered child takes its attribute name
    assert named.scope_name == "child" and named.name == "custom"
    assert _op_scopes(named(x))[0][1] == ("child",)


def test_scopes_follow_the_calling_module():
    class Net(nn.Module):
        def __init__(self):
            super().__init__(name="net")
            self.body = nn.FeedForward([2, 3, 2], seed=0)
            self.tied = self.body.layers[1]          # one module under two names
            self.helper = nn.Layer(2, 2, seed=1)

        def forward(self, x):
            h = self.body.layers[0](x)               # skips a level: still body/layers/0
            h = self.tied(h)                         # the first name: body/layers/1
            other = nn.Tanh()                        # not registered: its own name
            return other(self.helper(h)) + self.logits_like(h)

        def logits_like(self, h):
            with self.name_scope():                  # already in scope: pushes nothing
                return h * 2.0

    net = Net()
    y = net(np.ones((1, 2)))
    scopes = _op_scopes(y)
    assert ("matmul", ("net", "body", "layers", "0")) in scopes
    assert ("matmul", ("net", "body", "layers", "1")) in scopes
    assert ("matmul", ("net", "helper")) in scopes
    assert ("tanh", ("net", "tanh")) in scopes
    assert ("mul", ("net",)) in scopes
    names = dict(net.named_modules())
    assert "tied" not in names and names["body.layers.1"] is net.tied
    for op, scope in scopes:
        m = net.module_for_scope(scope)
        if op != "tanh":
            assert m is not None and net.scope_path(
                next(n for n, mm in net.named_modules() if mm is m)) == scope
    # Restructuring invalidates the cached paths.
    net.body.layers[0] = nn.Layer(2, 3, seed=2)
    assert ("matmul", ("net", "body", "layers", "0")) in _op_scopes(net(np.ones((1, 2))))
    net.body = nn.FeedForward([2, 3, 2], seed=0)
    assert ("matmul", ("net", "tied")) in _op_scopes(net(np.ones((1, 2))))


def test_deepcopy_keeps_structure_and_scopes():
    import copy
    net = nn.FeedForward([2, 3, 1], seed=0, name="net")
    net(np.ones((1, 2)))                          # fills the path cache
    c = copy.deepcopy(net)
    assert c.layers[0].weight is not net.layers[0].weight
    assert isinstance(c.layers[0].weight, nn.Parameter) and c.layers[0].weight.requires_grad
    assert all(np.array_equal(a, b) for a, b in zip(c.state_dict().values(),
                                                    net.state_dict().values()))
    scopes = [s for _, s in _op_scopes(c(tg.tensor(np.ones((1, 2)))))]
    assert scopes[0] == ("net", "layers", "0") and scopes[-1] == ("net", "layers", "1")


# ---------------------------------------------------------------------------
# Activations

@pytest.mark.parametrize("name", ACTS + ["softmax"])
def test_activation_functions_and_modules_match_formulas(name, rng):
    z = rng.standard_normal((3, 4))
    f = nn.get_activation(name)
    np.testing.assert_allclose(f(tg.tensor(z)).data, REF[name](z), rtol=1e-12, atol=1e-15)
    module = {"linear": nn.Identity, "identity": nn.Identity, "sigmoid": nn.Sigmoid,
              "tanh": nn.Tanh, "relu": nn.ReLU, "softmax": nn.Softmax}[name]()
    np.testing.assert_allclose(module(z).data, REF[name](z), rtol=1e-12, atol=1e-15)
    assert module.activation in (name, "linear")


def test_get_activation_names():
    assert nn.get_activation(None) is nn.identity and nn.get_activation("ReLU") is nn.relu
    with pytest.raises(ValueError, match=r"unknown activation 'swish'; expected one of 'linear'"):
        nn.get_activation("swish")
    assert nn.Softmax(axis=0)(np.eye(2) * 3).data.sum(axis=0) == pytest.approx([1, 1])


@settings(max_examples=40)
@given(name=st.sampled_from(ACTS + ["softmax"]), batch=st.integers(1, 4), width=st.integers(1, 5),
       seed=st.integers(0, 2**32 - 1))
def test_activation_gradients(name, batch, width, seed):
    rng = np.random.default_rng(seed)
    z = x64(rng, batch, width)
    mod = {"linear": nn.Identity(), "identity": nn.Identity(), "sigmoid": nn.Sigmoid(),
           "tanh": nn.Tanh(), "relu": nn.ReLU(), "softmax": nn.Softmax()}[name]
    # times a constant so that the identity has a graph to differentiate
    assert tg.gradcheck(lambda z: mod(z * 1.5), [z])
    assert tg.gradcheck(lambda z: nn.get_activation(name)(z * 1.5), [z])


# ---------------------------------------------------------------------------
# Neuron

def test_neuron_by_hand():
    n = nn.Neuron(3, activation="sigmoid", dtype=np.float64)
    n.weight.data[...] = [1.0, -2.0, 0.5]
    n.bias.data[...] = 0.25
    x = np.array([2.0, 1.0, 2.0])                  # w·x + b = 2 - 2 + 1 + 0.25 = 1.25
    assert n(x).shape == ()
    assert n(x).item() == pytest.approx(1 / (1 + math.exp(-1.25)), rel=1e-14)
    n.activation = "relu"
    assert n(-x).item() == 0.0                      # -1.25 + 0.25 < 0
    assert n(np.stack([x, x, -x])).shape == (3,)
    with pytest.raises(ValueError, match=r"expected input of shape \(3,\) or \(batch, 3\), got \(2, 4\)"):
        n(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="unknown activation 'step'"):
        nn.Neuron(2, activation="step")
    with pytest.raises(ValueError, match="softmax needs a layer"):
        nn.Neuron(2, activation="softmax")


@settings(max_examples=40)
@given(act=st.sampled_from(ACTS), batch=st.sampled_from([None, 1, 3]), n=st.integers(1, 5),
       seed=st.integers(0, 2**32 - 1))
def test_neuron_formula_and_gradients(act, batch, n, seed):
    rng = np.random.default_rng(seed)
    neuron = nn.Neuron(n, activation=act, seed=seed, dtype=F64)
    neuron.bias.data[...] = rng.standard_normal()
    x = x64(rng, *((n,) if batch is None else (batch, n)))
    y = neuron(x)
    assert y.shape == (() if batch is None else (batch,))
    ref = REF[act](x.data @ neuron.weight.data + neuron.bias.data)
    np.testing.assert_allclose(y.data, ref, rtol=1e-12, atol=1e-14)
    assert tg.gradcheck(lambda x, w, b: neuron(x), [x, neuron.weight, neuron.bias])


# ---------------------------------------------------------------------------
# LinearPerceptron

def separable_data(rng, n=60, margin=0.3):
    """Points on both sides of the line 2 x1 - x2 + 0.5 = 0, at least `margin` away."""
    w_true, b_true = np.array([2.0, -1.0]), 0.5
    X = []
    while len(X) < n:
        p = rng.uniform(-3, 3, 2)
        if abs(p @ w_true + b_true) / np.linalg.norm(w_true) >= margin:
            X.append(p)
    X = np.array(X)
    t = np.where(X @ w_true + b_true < 0, -1, 1)
    return X, t, w_true, b_true


def test_perceptron_step_by_hand():
    p = nn.LinearPerceptron(2)
    p.weight.data[...] = [1.0, -1.0]
    p.bias.data[...] = -0.5
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.5, 1.0], [2.0, 0.0]])   # z = 0.5, -1.5, 0, 1.5
    np.testing.assert_array_equal(p(x).data, [1, -1, 1, 1])             # z = 0 gives +1
    assert p(x[1]).item() == -1
    # The step has no useful gradient: backward sends zeros.
    w = p.weight
    p(x).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [0.0, 0.0])
    assert [t.node.op.name for t in tg.walk(p(x)) if t.node] == ["matmul", "add", "step"]


def test_perceptron_converges_on_separable_data():
    rng = np.random.default_rng(5)
    X, t, w_true, b_true = separable_data(rng)
    p = nn.LinearPerceptron(2)
    mistakes = p.fit(X, t, epochs=200)
    assert mistakes[-1] == 0 and len(mistakes) < 200
    np.testing.assert_array_equal(p(X).data, t)
    # Novikoff: with inputs augmented by 1 for θ0, mistakes <= (R / γ)².
    Xa = np.hstack([X, np.ones((len(X), 1))])
    u = np.append(w_true, b_true)
    gamma = (t * (Xa @ u)).min() / np.linalg.norm(u)
    R = np.linalg.norm(Xa, axis=1).max()
    assert sum(mistakes) <= (R / gamma) ** 2
    # Shuffled, seeded training converges too and is reproducible.
    runs = []
    for _ in range(2):
        q = nn.LinearPerceptron(2)
        runs.append((q.fit(X, t, epochs=200, shuffle=True, seed=3), q.weight.data.copy()))
        np.testing.assert_array_equal(q(X).data, t)
    assert runs[0][0] == runs[1][0] and np.array_equal(runs[0][1], runs[1][1])


def test_perceptron_fit_rule_by_hand():
    p = nn.LinearPerceptron(2)
    # From θ = 0: x0 = (1, 2), t = -1, h = +1: mistake, θ = (-1, -2), θ0 = -1.
    # x1 = (1, 0), t = +1: z = -1 - 1 = -2 < 0, h = -1: mistake, θ = (0, -2), θ0 = 0.
    hist = p.fit(np.array([[1.0, 2.0], [1.0, 0.0]]), np.array([-1, 1]), epochs=1)
    assert hist == [2]
    np.testing.assert_array_equal(p.weight.data, [0.0, -2.0])
    assert p.bias.item() == 0.0
    with pytest.raises(ValueError, match=r"labels t must be -1 or \+1, got values \[0, 1\]"):
        p.fit(np.zeros((2, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"t must have shape \(2,\) to match X of shape \(2, 2\)"):
        p.fit(np.zeros((2, 2)), np.array([1, -1, 1]))


# ---------------------------------------------------------------------------
# Layer

@settings(max_examples=40)
@given(act=st.sampled_from(ACTS + ["softmax", None]), batch=st.sampled_from([None, 1, 2, 4]),
       n_in=st.integers(1, 4), n_out=st.integers(1, 4), bias=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_layer_formula_and_gradients(act, batch, n_in, n_out, bias, seed):
    rng = np.random.default_rng(seed)
    layer = nn.Layer(n_in, n_out, activation=act, bias=bias, seed=seed, dtype=F64)
    x = x64(rng, *((n_in,) if batch is None else (batch, n_in)))
    params = [layer.weight]
    if bias:
        layer.bias.data[...] = rng.standard_normal(n_out)
        params.append(layer.bias)
    y = layer(x)
    W = layer.weight.data
    z = np.array([[sum(row[i] * W[i, j] for i in range(n_in)) for j in range(n_out)]
                  for row in np.atleast_2d(x.data)])
    if bias:
        z = z + layer.bias.data
    expect = REF[act](z)
    np.testing.assert_allclose(y.data, expect[0] if batch is None else expect, rtol=1e-12, atol=1e-13)
    assert tg.gradcheck(lambda x, *ps: layer(x), [x] + params)


def test_layer_structure_and_neuron_view():
    layer = nn.Layer(3, 2, activation="tanh", seed=0)
    assert (layer.n_in, layer.n_out, layer.activation) == (3, 2, "tanh")
    assert layer.weight.shape == (3, 2) and layer.bias.shape == (2,)
    layer.bias.data[...] = [0.5, -0.5]
    v = layer.neuron(1)
    assert isinstance(v, nn.NeuronView) and v.index == 1 and v.bias == -0.5
    assert v.activation == "tanh"
    np.testing.assert_array_equal(v.weight, layer.weight.data[:, 1])
    assert np.shares_memory(v.weight, layer.weight.data) and not v.weight.flags.writeable
    assert layer.weight.data.flags.writeable
    assert layer.neuron(-2).index == 0
    with pytest.raises(IndexError, match="index 2 out of range for n_out=2"):
        layer.neuron(2)
    assert nn.Layer(3, 2, bias=False).neuron(0).bias is None
    with pytest.raises(ValueError, match=r"expected input with last dimension n_in=3, got shape \(4, 2\)"):
        layer(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="n_out must be a positive int, got 0"):
        nn.Layer(3, 0)
    # numpy inputs take the layer's dtype
    assert layer(np.zeros((1, 3))).dtype == np.float32


def test_initializers_seeds_and_statistics():
    for name in ["he", "xavier", "glorot", "uniform", "he_uniform", "xavier_normal", "zeros"]:
        a = nn.Layer(50, 40, init=name, seed=7).weight.data
        b = nn.Layer(50, 40, init=name, seed=7).weight.data
        assert a.tobytes() == b.tobytes(), name
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    assert nn.Layer(4, 4, seed=g1).weight.data.tobytes() == nn.Layer(4, 4, seed=g2).weight.data.tobytes()
    assert nn.Layer(4, 4, seed=1).weight.data.tobytes() != nn.Layer(4, 4, seed=2).weight.data.tobytes()
    # The init functions themselves are bit-reproducible and follow their formulas.
    assert nn.init.he_normal((3, 2), 5).tobytes() == nn.init.he_normal((3, 2), 5).tobytes()
    np.testing.assert_array_equal(nn.init.he_normal((3, 2), 5),
                                  np.random.default_rng(5).normal(0, math.sqrt(2 / 3), (3, 2)))
    w = nn.init.he_normal((400, 300), 0)
    assert w.std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    w = nn.init.xavier_uniform((400, 300), 0)
    bound = math.sqrt(6 / 700)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert w.std() == pytest.approx(math.sqrt(2 / 700), rel=0.02)
    assert nn.init.xavier_normal((400, 300), 0).std() == pytest.approx(math.sqrt(2 / 700), rel=0.02)
    assert nn.init.glorot_uniform is nn.init.xavier_uniform
    assert np.abs(nn.init.small_uniform((100,), 0)).max() <= 0.05
    assert nn.init.he_uniform((600, 10), 0).std() == pytest.approx(math.sqrt(2 / 600), rel=0.05)
    # Custom callables and errors.
    layer = nn.Layer(2, 3, init=lambda shape, rng: np.full(shape, 0.5))
    assert (layer.weight.data == 0.5).all() and layer.weight.dtype == np.float32
    with pytest.raises(ValueError, match=r"init returned shape \(3, 2\), expected \(2, 3\)"):
        nn.Layer(2, 3, init=lambda shape, rng: np.zeros((3, 2)))
    with pytest.raises(ValueError, match="unknown init 'kaiming'"):
        nn.Layer(2, 3, init="kaiming")
    with pytest.raises(TypeError, match="seed must be None, an int or a numpy Generator"):
        nn.Layer(2, 3, seed=1.5)
    with pytest.raises(ValueError, match=r"at least one dimension, got shape \(\)"):
        nn.init.he_normal((), 0)


def test_fans_of_weights_of_any_rank():
    assert nn.init.fans((7,)) == (7, 1)                 # one neuron
    assert nn.init.fans((3, 5)) == (3, 5)               # the book's (n_in, n_out)
    # A convolution kernel (out, in, k_1, ..., k_d), as torch.nn.init computes its fans.
    assert nn.init.fans((8, 3, 5, 5)) == (3 * 25, 8 * 25)
    assert nn.init.fans((4, 2, 3)) == (6, 12)
    assert nn.init.fans((2, 6, 1, 2, 3)) == (36, 12)
    w = nn.init.he_normal((64, 16, 3, 3), 0)
    assert w.shape == (64, 16, 3, 3) and w.std() == pytest.approx(math.sqrt(2 / 144), rel=0.02)
    bound = math.sqrt(6 / (16 * 9 + 64 * 9))
    assert np.abs(nn.init.xavier_uniform((64, 16, 3, 3), 1)).max() <= bound
    # kaiming_uniform with a = sqrt(5) is PyTorch's dense default U(+-1/sqrt(fan_in)).
    k = nn.init.kaiming_uniform((400, 30), 2, a=math.sqrt(5))
    assert np.abs(k).max() <= 1 / 20 and np.abs(k).max() > 0.99 / 20
    assert nn.init.kaiming_normal((900, 10), 3, nonlinearity="relu").std() == pytest.approx(
        math.sqrt(2 / 900), rel=0.05)
    assert nn.init.calculate_gain("tanh") == 5 / 3
    with pytest.raises(ValueError, match="unknown nonlinearity 'swish'"):
        nn.init.calculate_gain("swish")
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan'"):
        nn.init.kaiming_uniform((2, 2), 0, mode="fan")


def test_fans_match_torch_for_conv_kernels():
    torch = pytest.importorskip("torch")
    for shape in [(8, 3, 5, 5), (4, 2, 3), (2, 6, 1, 2, 3)]:
        assert nn.init.fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(
            torch.empty(shape))


# ---------------------------------------------------------------------------
# FeedForward and Sequential

def test_feedforward_structure():
    net = nn.FeedForward([4, 8, 6, 3], activation="tanh", output="softmax", seed=0)
    assert net.sizes == [4, 8, 6, 3] and net.output == "softmax"
    assert isinstance(net.layers, nn.ModuleList) and len(net.layers) == 3
    assert [(l.n_in, l.n_out, l.activation) for l in net.layers] == [
        (4, 8, "tanh"), (8, 6, "tanh"), (6, 3, None)]
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    h = x
    for layer in net.layers:
        h = layer.weight.data.T.dot(h.T).T + layer.bias.data
        h = np.tanh(h) if layer.activation else h
    np.testing.assert_allclose(net.logits(x).data, h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net(x).data, REF["softmax"](h.astype(F64)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="sizes must be at least two positive ints"):
        nn.FeedForward([3])
    with pytest.raises(ValueError, match="FeedForward output: unknown activation 'max'"):
        nn.FeedForward([3, 1], output="max")


def test_same_seed_same_network_bit_for_bit():
    a = nn.FeedForward([5, 7, 3], seed=42).state_dict()
    b = nn.FeedForward([5, 7, 3], seed=42).state_dict()
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    c = nn.FeedForward([5, 7, 3], seed=43).state_dict()
    assert a["layers.0.weight"].tobytes() != c["layers.0.weight"].tobytes()
    # the two layers draw different weights from one generator
    assert not np.array_equal(a["layers.0.weight"][:3, :3], a["layers.1.weight"][:3, :3])


@settings(max_examples=40)
@given(sizes=st.lists(st.integers(1, 3), min_size=2, max_size=4), batch=st.integers(1, 3),
       act=st.sampled_from(["sigmoid", "tanh", "relu"]),
       output=st.sampled_from([None, "softmax", "sigmoid"]), seed=st.integers(0, 2**32 - 1))
def test_feedforward_gradients(sizes, batch, act, output, seed):
    rng = np.random.default_rng(seed)
    net = nn.FeedForward(sizes, activation=act, output=output, seed=seed, dtype=F64)
    for layer in net.layers:
        layer.bias.data[...] = rng.standard_normal(layer.n_out)
    x = x64(rng, batch, sizes[0])
    assert tg.gradcheck(lambda x, *ps: net(x), [x] + net.parameters())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_feedforward_learns_xor(seed):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    t = np.array([0, 1, 1, 0], dtype=np.float32)
    net = nn.FeedForward([2, 4, 1], activation="tanh", output="sigmoid", init="xavier", seed=seed)
    lr = 0.5
    for _ in range(1000):
        z = net.logits(X).reshape(-1)
        # binary cross-entropy from logits, written out here: softplus(z) - t z
        loss = (tg.softplus(z) - z * t).mean()
        net.zero_grad()
        loss.backward()
        for p in net.parameters():
            p.data -= lr * p.grad.data
    assert loss.item() < 0.05
    np.testing.assert_array_equal(np.round(net(X).data.reshape(-1)), t)


def test_sequential():
    l1, l2 = nn.Layer(3, 4, activation="relu", seed=0), nn.Layer(4, 2, seed=1)
    seq = nn.Sequential(l1, nn.Dropout(0.5), l2, nn.Softmax(), name="seq")
    assert len(seq) == 4 and seq[0] is l1 and seq.layers[2] is l2 and list(seq)[3] is seq[3]
    assert nn.Sequential([l1, l2]).layers[1] is l2
    seq.eval()
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(seq(x).data, tg.softmax(l2(l1(x))).data, rtol=1e-6)
    assert [n for n, _ in seq.named_parameters()] == [
        "layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]
    scopes = {s for _, s in _op_scopes(seq(tg.tensor(x, requires_grad=True)))}
    assert scopes == {("seq", "layers", "0"), ("seq", "layers", "2"), ("seq", "layers", "3")}
    with pytest.raises(TypeError, match="Sequential: argument 1 is a int, not a Module"):
        nn.Sequential(l1, 3)


# ---------------------------------------------------------------------------
# Dropout

def test_dropout_train_and_eval():
    d = nn.Dropout(0.25, seed=0)
    x = tg.tensor(np.full((200, 100), 2.0), requires_grad=True)
    y = d(x)
    kept = y.data != 0
    assert abs(1 - kept.mean() - 0.25) < 0.01                     # ~p dropped
    np.testing.assert_allclose(y.data[kept], 2.0 / 0.75)            # kept values scaled 1/(1-p)
    y.backward(np.ones(y.shape))
    np.testing.assert_allclose(x.grad.data, kept / 0.75)            # the mask is a constant
    d.eval()
    assert d(x) is x
    d.train()
    assert nn.Dropout(0.0)(x) is x
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\), got 1"):
        nn.Dropout(1)


def test_dropout_preserves_the_expectation_and_is_seeded():
    x = np.linspace(-1, 1, 10)
    d = nn.Dropout(0.5, seed=1)
    mean = np.mean([d(x).data for _ in range(4000)], axis=0)
    # each element's sample mean has standard deviation |x| / sqrt(4000)
    assert np.all(np.abs(mean - x) <= 5 * np.abs(x) / math.sqrt(4000) + 1e-12)
    a = nn.Dropout(0.5, seed=9)(np.ones(50)).data
    b = nn.Dropout(0.5, seed=9)(np.ones(50)).data
    assert a.tobytes() == b.tobytes()


@settings(max_examples=40)
@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 5)), p=st.sampled_from([0.1, 0.5, 0.8]),
       seed=st.integers(0, 2**32 - 1))
def test_dropout_gradients(shape, p, seed):
    d = nn.Dropout(p)
    x = x64(np.random.default_rng(seed), *shape)

    def f(x):
        d.rng = np.random.default_rng(seed)  # the same mask on every evaluation
        return d(x)
    assert tg.gradcheck(f, [x])
