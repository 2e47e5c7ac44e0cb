"""How modules appear in the book's diagrams: `Module.diagram()` (contract B)
and the network view that asks it instead of guessing from class names."""
import numpy as np
import pytest

import tensorgraph as tg
from conftest import require
from tensorgraph import nn
from tensorgraph.nn import Activation, Box, Regularizer, Units

try:
    import graphviz
except ImportError:  # the drawing tests need it; diagram() itself does not
    graphviz = None


def source(m, **kw):
    require(graphviz is not None, "the graphviz package is not installed "
                                  "(pip install 'tensorgraph[draw]')")
    return tg.draw(m, view="network", **kw).source


class Pair(nn.Module):
    """A user-defined module with its own forward (and layers inside)."""

    def __init__(self, name=None):
        super().__init__(name=name)
        self.scale = nn.Parameter(np.ones((), dtype=np.float32))
        self.a = nn.Layer(3, 4, activation="tanh", seed=0)
        self.b = nn.Layer(4, 2, seed=1)

    def forward(self, x):
        return self.b(self.a(x)) * self.scale


class ScaledLayer(nn.Layer):
    """A subclass of Layer with its own forward: still a layer in the pictures."""

    def forward(self, x):
        return super().forward(x) * 2.0


def test_layer_units_are_the_books_layout_in_float64():
    layer = nn.Layer(3, 2, activation="relu", seed=0, name="hidden")
    (u,) = layer.diagram()
    assert isinstance(u, Units) and u.kind == "layer" and u.name == "hidden"
    assert u.weight.dtype == np.float64 and u.weight.shape == (3, 2)
    np.testing.assert_array_equal(u.weight, layer.weight.data.astype(np.float64))
    np.testing.assert_array_equal(u.bias, layer.bias.data.astype(np.float64))
    assert u.activation == "relu"
    assert nn.Layer(2, 2, bias=False).diagram()[0].bias is None
    assert layer.diagram("layers.3")[0].name == "layers.3"


def test_containers_concatenate_their_childrens_parts_with_dotted_names():
    seq = nn.Sequential(nn.Layer(2, 3, seed=0), nn.Tanh(), nn.Dropout(0.2),
                        nn.FeedForward([3, 2], output="softmax", seed=1), nn.Softmax())
    parts = seq.diagram()
    assert [type(p).__name__ for p in parts] == ["Units", "Activation", "Regularizer", "Units",
                                                  "Activation", "Activation"]
    assert [p.name for p in parts] == ["layers.0", "layers.1", "layers.2", "layers.3.layers.0",
                                       "layers.3", "layers.4"]
    assert parts[1] == Activation("layers.1", "tanh")
    assert parts[2] == Regularizer("layers.2", "dropout", 0.2)
    assert parts[4].function == "softmax"
    ff = nn.FeedForward([2, 3, 1], activation="sigmoid", output="sigmoid", seed=0)
    assert [p.name for p in ff.diagram()] == ["layers.0", "layers.1", ""]
    assert ff.diagram()[-1] == Activation("", "sigmoid")
    assert nn.FeedForward([2, 1]).diagram()[-1].name == "layers.0"      # no output: no part
    assert nn.Sequential().diagram() == []
    ml = nn.ModuleList([nn.Identity(), nn.ReLU()])
    assert ml.diagram("blocks") == [Activation("blocks.0", "linear"), Activation("blocks.1", "relu")]


def test_neuron_and_perceptron_say_their_kind():
    n = nn.Neuron(3, activation="tanh", seed=0)
    (u,) = n.diagram()
    assert (u.kind, u.activation, u.weight.shape, u.bias.shape) == ("neuron", "tanh", (3, 1), (1,))
    (p,) = nn.LinearPerceptron(2).diagram()
    assert (p.kind, p.activation, p.weight.shape) == ("perceptron", "step", (2, 1))


def test_a_subclass_of_layer_draws_as_a_layer():
    sub, plain = ScaledLayer(2, 3, activation="sigmoid", seed=0), nn.Layer(2, 3, activation="sigmoid", seed=0)
    assert isinstance(sub.diagram()[0], Units)
    assert source(sub) == source(plain)
    # ... also inside a container, where class-name dispatch used to drop it.
    a = nn.Sequential(ScaledLayer(2, 3, seed=0), nn.Tanh(), nn.Layer(3, 1, seed=1))
    b = nn.Sequential(nn.Layer(2, 3, seed=0), nn.Tanh(), nn.Layer(3, 1, seed=1))
    assert source(a) == source(b)
    assert "hidden 1 (3)\\ntanh" in source(a)


def test_a_user_module_with_a_custom_forward_draws_as_a_box():
    m = Pair(name="pair")
    assert m.diagram() == [Box("pair", "Pair", (("scale", ()), ("a.weight", (3, 4)),
                                                ("a.bias", (4,)), ("b.weight", (4, 2)),
                                                ("b.bias", (2,))))]
    src = source(m)
    assert 'label="pair: Pair\\nscale ()\\na.weight (3, 4)\\na.bias (4,)\\nb.weight (4, 2)' \
           '\\nb.bias (2,)"' in src
    assert "shape=box" in src and "->" not in src
    # A box inside a sequence: every part becomes a box, in order, chained.
    src = source(nn.Sequential(nn.Layer(2, 3, seed=0), Pair(), nn.ReLU(), nn.Dropout(0.1)))
    assert 'b0 [label="layers.0: 2 → 3\\nlinear"' in src
    assert 'b1 [label="layers.1: Pair\\nscale ()' in src
    assert 'b2 [label="layers.2: relu"' in src and 'b3 [label="layers.3: dropout p=0.1"' in src
    assert "b0 -> b1" in src and "b1 -> b2" in src and "b2 -> b3" in src

    class NoParams(nn.Module):
        def forward(self, x):
            return x

    assert NoParams().diagram() == [Box("noparams", "NoParams", ())]
    assert 'label="noparams: NoParams"' in source(NoParams())


def test_linear_draws_like_a_layer_of_the_transposed_weight():
    lin = nn.Linear(3, 2, seed=0)
    (u,) = lin.diagram()
    np.testing.assert_array_equal(u.weight, lin.weight.data.T.astype(np.float64))
    layer = nn.Layer(3, 2)
    layer.weight.data[...] = lin.weight.data.T
    layer.bias.data[...] = lin.bias.data
    assert source(lin) == source(layer)
    seq_lin = nn.Sequential(nn.Linear(4, 3, seed=1), nn.ReLU(), nn.Linear(3, 2, seed=2))
    seq_layer = nn.Sequential(nn.Layer(4, 3), nn.ReLU(), nn.Layer(3, 2))
    for i in (0, 2):
        seq_layer[i].weight.data[...] = seq_lin[i].weight.data.T
        seq_layer[i].bias.data[...] = seq_lin[i].bias.data
    assert source(seq_lin) == source(seq_layer)


def test_an_activation_before_any_layer_is_refused():
    with pytest.raises(ValueError, match="activation 'relu' at 'layers.0' comes before any layer"):
        source(nn.Sequential(nn.ReLU(), nn.Layer(2, 2)))


def test_the_view_asks_and_never_reads_class_names():
    class Custom(nn.Module):
        """Draws itself as a sigmoid layer without being one."""

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(np.eye(2, dtype=np.float32))

        def forward(self, x):
            return tg.sigmoid(x @ self.w)

        def diagram(self, name=""):
            return [Units(name or self.scope_name, self.w.data.astype(np.float64), None,
                          "sigmoid")]

    src = source(Custom())
    assert "output (2)\\nsigmoid" in src and "shape=circle" in src


def test_diagram_arrays_are_copies():
    layer = nn.Layer(2, 2, seed=0, dtype=np.float64)
    before = float(layer.weight.data[0, 0])
    (u,) = layer.diagram()
    layer.weight.data[0, 0] += 1.0
    assert u.weight[0, 0] == before and layer.weight.data[0, 0] != before


def test_boxes_render_with_a_backend():
    source(nn.Layer(1, 1))                   # graphviz present (or skip)
    from tensorgraph import backends
    require(bool(backends.available_backends()), "no Graphviz backend installed")
    svg = tg.draw(nn.Sequential(nn.Linear(2, 3, seed=0), Pair(name="pair"), nn.ReLU())).svg()
    assert "layers.1: Pair" in svg and "a.weight (3, 4)" in svg


def test_dropout_on_the_inputs_is_drawn_not_dropped():
    # A Regularizer before any Units (dropout on the inputs, as in Hinton et
    # al.'s nets) vanished from the picture without a word.
    src = source(nn.Sequential(nn.Dropout(0.2), nn.Layer(3, 2, seed=0)))
    assert 'label="input (3)\\ndropout p=0.2"' in src
    assert "dropout" not in source(nn.Sequential(nn.Layer(3, 2, seed=0)))


def test_an_identity_before_any_layer_changes_nothing():
    # nn.Identity() first (a placeholder, as PyTorch code uses it) made the
    # network view refuse the whole network: "activation 'linear' ... comes
    # before any layer". The identity acts on nothing; the picture is the layer's.
    with_id = source(nn.Sequential(nn.Identity(), nn.Layer(3, 2, seed=0)))
    plain = source(nn.Sequential(nn.Layer(3, 2, seed=0)))
    assert with_id.replace("layers.1", "layers.0") == plain
    with pytest.raises(ValueError, match="activation 'tanh' at 'layers.0' comes before any"):
        source(nn.Sequential(nn.Tanh(), nn.Layer(3, 2, seed=0)))


def test_a_layer_used_twice_in_a_sequential_is_drawn_twice():
    # Sequential(lin, ReLU(), lin) applies lin twice, but the diagram listed
    # children once each (named_children skips repeats), so the picture showed
    # a 3 -> 3 network with one layer: not what the forward computes.
    lin = nn.Linear(3, 3, seed=0)
    net = nn.Sequential(lin, nn.ReLU(), lin)
    parts = net.diagram()
    assert [type(p).__name__ for p in parts] == ["Units", "Activation", "Units"]
    assert [p.name for p in parts] == ["layers.0", "layers.1", "layers.2"]
    np.testing.assert_array_equal(parts[0].weight, parts[2].weight)
    assert "3 → 3 → 3" in source(net)


def test_a_box_with_many_parameters_lists_the_first_few_and_a_count():
    # A user module with dozens of parameters became a box dozens of lines tall.
    class Big(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = [nn.Linear(2, 2) for _ in range(20)]    # 40 parameters

        def forward(self, x):
            for b in self.blocks:
                x = b(x)
            return x

    src = source(nn.Sequential(nn.Linear(2, 2), Big()))
    box = next(line for line in src.splitlines() if "Big" in line)
    label = box.split('label="', 1)[1].split('"', 1)[0].split("\\n")
    assert label[0] == "layers.1: Big"
    assert label[1:4] == ["blocks.0.weight (2, 2)", "blocks.0.bias (2,)", "blocks.1.weight (2, 2)"]
    assert len(label) == 1 + 8 + 1 and label[-1] == "… 32 more parameters (120 numbers in all)"
