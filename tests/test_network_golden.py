"""The network view's pictures do not change: the DOT source of every network
drawing made by the tests and examples, compared byte for byte with golden
files saved before the renderer learned to ask modules (`Module.diagram`).

Regenerate only for an intended change of the pictures:
TG_REGEN_GOLDEN=1 python -m pytest tests/test_network_golden.py
"""
import os
from pathlib import Path

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require
from tensorgraph import nn
from test_draw_conv import book_net

try:
    import graphviz
except ImportError:
    graphviz = None

GOLDEN = Path(__file__).parent / "golden" / "network"


def _softmax_ff():
    net = nn.FeedForward([3, 4, 2], activation="relu", output="softmax", seed=0)
    net.layers[0].bias.data[:] = [0.1, -0.2, 0.3, 0.0]
    return net


def _neuron():
    n = nn.Neuron(3, activation="sigmoid", seed=1)
    n.bias.data[...] = 0.5
    return n


def _perceptron():
    p = nn.LinearPerceptron(2, name="perceptron")
    p.weight.data[:] = [0.5, -1.0]
    p.bias.data[...] = 0.25
    return p


def _overfitting_net(dropout):
    layers = []
    sizes = [2, 64, 64, 2]
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = k == len(sizes) - 2
        layers.append(nn.Layer(n_in, n_out, activation=None if last else "relu", seed=k))
        if dropout and not last:
            layers.append(nn.Dropout(dropout, seed=100 + k))
    return nn.Sequential(*layers, name="net")


# name -> (module builder, draw keyword arguments)
CASES = {
    "xor_feedforward": (lambda: nn.FeedForward([2, 3, 2], activation="tanh", output="softmax",
                                               init="xavier", seed=0, name="net"),
                        {"title": "A 2-3-2 feed-forward network trained on XOR"}),
    "backprop_221_sigmoid": (lambda: nn.FeedForward([2, 2, 1], activation="sigmoid",
                                                    output="sigmoid", init="xavier", seed=0,
                                                    name="net"),
                             {"title": "A 2-2-1 network of sigmoid neurons"}),
    "feedforward_softmax_bias": (_softmax_ff, {}),
    "small_net_weights": (lambda: nn.FeedForward([2, 2, 1], activation="sigmoid",
                                                 output="sigmoid", seed=1), {}),
    "small_net_no_weights": (lambda: nn.FeedForward([2, 2, 1], activation="sigmoid",
                                                    output="sigmoid", seed=1),
                             {"weights": False}),
    "wide_capped": (lambda: nn.FeedForward([20, 30, 5], seed=0), {"cap": 10}),
    "wide_weights_forced": (lambda: nn.FeedForward([4, 5, 3], activation="tanh", seed=2),
                            {"weights": True, "rankdir": "TB"}),
    "mnist_mlp": (lambda: nn.FeedForward([784, 256, 256, 10], activation="relu",
                                         output="softmax", init="he", seed=0, name="mlp"),
                  {"title": "784-256-256-10: two hidden ReLU layers, softmax output"}),
    "mnist_logreg": (lambda: nn.FeedForward([784, 10], output="softmax", init="zeros",
                                            name="logreg"),
                     {"title": "Logistic regression: 784 inputs -> 10 softmax outputs"}),
    "softmax_output_layer": (lambda: nn.FeedForward([2, 3], output="softmax", init="zeros",
                                                    name="softmax_layer"),
                             {"title": "A softmax output layer: 2 inputs → 3 classes"}),
    "sequential_activations_dropout": (
        lambda: nn.Sequential(nn.Layer(2, 3, seed=0), nn.Tanh(), nn.Dropout(0.2),
                              nn.Layer(3, 2, seed=1), nn.Softmax()), {}),
    "sequential_identity_sigmoid_relu": (
        lambda: nn.Sequential(nn.Layer(3, 3, seed=4), nn.Identity(), nn.Layer(3, 2, seed=5),
                              nn.ReLU(), nn.Layer(2, 1, activation="tanh", seed=6), nn.Sigmoid(),
                              name="seq"), {}),
    "overfitting_dropout": (lambda: _overfitting_net(0.5), {}),
    "overfitting_plain": (lambda: _overfitting_net(0.0), {}),
    "nested_sequential": (lambda: nn.Sequential(nn.Sequential(), nn.Layer(2, 1, seed=0),
                                                nn.Sequential(nn.Layer(1, 2, bias=False, seed=1),
                                                              nn.Softmax())), {}),
    "sequential_of_feedforward": (lambda: nn.Sequential(
        nn.FeedForward([2, 3], activation="tanh", output="sigmoid", seed=7),
        nn.Layer(3, 2, seed=8)), {}),
    "layer_sigmoid": (lambda: nn.Layer(2, 3, activation="sigmoid", seed=0), {}),
    "layer_named_no_bias": (lambda: nn.Layer(3, 1, bias=False, init="zeros", name="neuron"),
                            {"title": "The trained linear neuron"}),
    "layer_title_escaping": (lambda: nn.Layer(2, 2, seed=0), {"title": '"]; x -> y ['}),
    "neuron": (_neuron, {}),
    "neuron_titled": (lambda: nn.Neuron(3, activation="sigmoid", name="neuron", seed=3),
                      {"title": "The neuron as the book draws it"}),
    "neuron_wide_capped": (lambda: nn.Neuron(20, activation="tanh", seed=2), {"cap": 6}),
    "neuron_no_weights": (lambda: nn.Neuron(2, activation="relu", seed=2), {"weights": False}),
    "perceptron": (_perceptron, {"title": "The trained linear perceptron"}),
    # chapter 5: the book's MNIST convolutional network, stacks of feature maps to scale
    "mnist_cnn_book": (book_net, {"input_shape": (1, 28, 28),
                                  "title": "The book's convolutional network for MNIST"}),
    "mnist_cnn_no_input_shape": (book_net, {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_network_dot_is_unchanged(case):
    require(graphviz is not None, "the graphviz package is not installed "
                                  "(pip install 'tensorgraph[draw]')")
    build, kwargs = CASES[case]
    source = tg.draw(build(), view="network", **kwargs).source
    path = GOLDEN / f"{case}.dot"
    if os.environ.get("TG_REGEN_GOLDEN"):
        path.write_text(source, encoding="utf-8")
    assert source == path.read_text(encoding="utf-8"), f"network view of {case} changed"
