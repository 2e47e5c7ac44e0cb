"""Drawing convolutional networks (chapter 5): the network view's stacks of
feature maps (sizes from the modules' own `output_shape`, checked against
real forward passes), `tg.draw_filters`, `tg.draw_feature_maps`, and the
forward hooks that collect the activations.

DOT is read back as data (test_draw's parse); the matplotlib figures are read
back from their axes (`Chart.figure`): the arrays drawn are compared with
the weights and with activations computed here by calling the layers.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tensorgraph as tg
from conftest import require, require_module
from tensorgraph import nn
from tensorgraph.draw import conv as draw_conv
from tensorgraph.draw.filters import normalise
from test_draw import BACKENDS, need, parse, svg_root, SVG

try:
    import graphviz
except ImportError:
    graphviz = None

SIZE = re.compile(r"^(\d+(?:×\d+)*)×(\d+)$")   # a stack's size line: 28×28×32


def needs_graphviz() -> None:
    require(graphviz is not None, "the graphviz package is not installed "
                                  "(pip install 'tensorgraph[draw]')")


def book_net(seed: int = 0) -> nn.Sequential:
    """The book's MNIST network: conv 5×5×32 same, max pool 2×2, conv 5×5×64
    same, max pool 2×2, dense 1024 with dropout, dense 10 with softmax."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2, seed=seed), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2, seed=seed + 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(7 * 7 * 64, 1024, seed=seed + 2), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(1024, 10, seed=seed + 3), nn.Softmax(), name="mnist_cnn")


def pos(attrs: dict[str, str]) -> tuple[float, float]:
    x, y = attrs["pos"].rstrip("!").split(",")
    return float(x), float(y)


def stack_labels(source: str) -> list[tuple[str, str]]:
    """(size, module name) of each stack's label, left to right."""
    nodes, _ = parse(source)
    found = []
    for a in nodes.values():
        lines = a.get("label", "").split("\n")
        if a.get("shape") == "plaintext" and (SIZE.match(lines[0]) or
                                              re.fullmatch(r"\d+ maps?", lines[0])):
            found.append((pos(a)[0], lines[0], lines[1] if len(lines) > 1 else ""))
    return [(size, name) for _, size, name in sorted(found)]


def texts_left_to_right(source: str) -> list[str]:
    nodes, _ = parse(source)
    placed = [(pos(a)[0], a.get("label", "")) for a in nodes.values()
              if a.get("shape") == "plaintext" and "pos" in a]
    return [lab for _, lab in sorted(placed)]


def real_shapes(net: nn.Module, x: np.ndarray) -> dict[int, tuple[int, ...]]:
    """id(module) -> the shape of one example of its output, from a forward
    pass with hooks (the first call of each module)."""
    shapes: dict[int, tuple[int, ...]] = {}

    def hook(m: nn.Module, args: tuple, out: tg.Tensor) -> None:   # returns None: output kept
        shapes.setdefault(id(m), tuple(out.shape[1:]))

    handles = [m.register_forward_hook(hook) for _, m in net.named_modules()]
    try:
        net.eval()
        with tg.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return shapes


# ---------------------------------------------------------------------------
# The network view of the book's network

def test_the_book_network_shows_each_stage_size_in_order_and_the_kernels() -> None:
    needs_graphviz()
    d = tg.draw(book_net(), input_shape=(1, 28, 28))
    src = d.source
    assert 'layout=neato' in src
    assert stack_labels(src) == [("28×28×1", "input"), ("28×28×32", "layers.0"),
                                 ("14×14×32", "layers.2"), ("14×14×64", "layers.3"),
                                 ("7×7×64", "layers.5")]
    assert "28×28×1 → 28×28×32 → 14×14×32 → 14×14×64 → 7×7×64 → 3136 → 1024 → 10" \
        in src.replace("\\n", " ")
    # What makes each stack, on the arrow into it, left to right.
    ops = [t for t in texts_left_to_right(src)
           if t.startswith(("conv", "max pool", "flatten"))]
    assert ops == ["conv 5×5\n32 filters\npad 2\n+ ReLU", "max pool 2×2",
                   "conv 5×5\n64 filters\npad 2\n+ ReLU", "max pool 2×2", "flatten"]
    # Then the dense part as the network view draws it.
    heads = [t for t in texts_left_to_right(src)]
    nodes, edges = parse(src)
    boxes = [a["label"] for a in nodes.values() if a.get("shape") == "box" and "label" in a
             and a["label"]]
    assert "flatten (3136)" in boxes
    assert "hidden 1 (1024)\nrelu\ndropout p=0.5" in boxes
    assert "output (10)\nlinear → softmax" in boxes
    assert sorted(t for t in heads if t.startswith("p")) == sorted(
        f"p{tg.draw.labels.subscript(j)}" for j in range(1, 11))
    # The flattened vector and the hidden layer show their first and last units.
    every = [a.get("label") for a in nodes.values()]
    assert "⋮ 3127 more" in every and "⋮ 1015 more" in every
    assert d.notes == ()


def test_the_kernel_and_the_pooling_window_are_squares_to_scale() -> None:
    needs_graphviz()
    src = tg.draw(book_net(), input_shape=(1, 28, 28)).source
    nodes, _ = parse(src)
    windows = [a for a in nodes.values() if a.get("tooltip", "").startswith("window")]
    assert [a["tooltip"] for a in windows] == ["window 5×5", "window 2×2", "window 5×5",
                                               "window 2×2"]
    # to scale: the 5×5 kernel is 5/28 of the 28×28 input map's width
    maps = {a["tooltip"]: float(a["width"]) for a in nodes.values()
            if a.get("tooltip", "").startswith("input:")}
    assert float(windows[0]["width"]) == pytest.approx(maps["input: 28×28×1"] * 5 / 28,
                                                       abs=2e-3)

    def inside(point: tuple[float, float], box: dict[str, str]) -> bool:
        (x, y), (bx, by) = point, pos(box)
        return abs(x - bx) < float(box["width"]) / 2 and abs(y - by) < float(box["height"]) / 2

    # the kernel sits in the input map, and its lines meet at one point of the front map
    # of layers.0 (the front map is the last drawn of its stack: it is on top)
    front = {}
    for nid, a in nodes.items():
        if a.get("shape") == "box" and ":" in a.get("tooltip", ""):
            front[a["tooltip"].split(":")[0]] = a
    assert inside(pos(windows[0]), front["input"])
    _, edges = parse(src)
    dashed = [(t, h) for t, h, e in edges if e.get("style") == "dashed"]
    heads = {h for t, h in dashed}
    assert len(dashed) == 2 * 4 and len(heads) == 4     # two lines per window, one point each
    first = [h for t, h in dashed][0]
    assert inside(pos(nodes[first]), front["layers.0"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_book_network_renders_left_to_right(backend: str) -> None:
    needs_graphviz()
    need(backend)
    svg = tg.draw(book_net(), input_shape=(1, 28, 28)).svg(backend)
    root = svg_root(svg)
    texts = [(float(t.get("x")), t.text) for t in root.iter(SVG + "text")]
    sizes = [s for _, s in sorted(texts) if s and SIZE.match(s)]
    assert sizes == ["28×28×1", "28×28×32", "14×14×32", "14×14×64", "7×7×64"]
    # readable at 1366 pixels wide: the picture is at most ~1000 points wide
    width = float(root.get("width").removesuffix("pt"))
    assert 600 < width <= 1024


# ---------------------------------------------------------------------------
# Sizes: the modules' arithmetic against real forward passes

SHAPE_CASES = [
    # (layers, input shape of one example)
    ([nn.Conv2d(3, 8, 3, seed=0)], (3, 9, 11)),
    ([nn.Conv2d(3, 8, (3, 5), stride=2, padding=1, seed=0)], (3, 10, 13)),
    ([nn.Conv2d(2, 4, 3, padding="same", dilation=2, seed=0)], (2, 7, 8)),
    ([nn.Conv2d(4, 6, (2, 3), stride=(3, 2), padding=(0, 2), dilation=(2, 1), groups=2,
                seed=0)], (4, 13, 9)),
    ([nn.Conv2d(1, 4, 5, padding="valid", seed=0), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2,
                                                                         seed=1)], (1, 17, 17)),
    ([nn.Conv1d(5, 7, 3, stride=2, padding=1, seed=0), nn.Tanh(),
      nn.Conv1d(7, 3, 4, dilation=2, seed=1)], (5, 31)),
    ([nn.Conv2d(1, 2, 3, seed=0), nn.Flatten(), nn.Linear(2 * 6 * 5, 3, seed=1)], (1, 8, 7)),
]


@pytest.mark.parametrize("case", range(len(SHAPE_CASES)))
def test_stage_sizes_are_those_of_a_forward_pass(case: int) -> None:
    layers, shape = SHAPE_CASES[case]
    net = nn.Sequential(*layers)
    x = np.random.default_rng(case).normal(size=(2,) + shape).astype(np.float32)
    real = real_shapes(net, x)
    drawn = draw_conv.stage_shapes(net, shape)
    assert drawn[0] == ("input", shape)
    staged = [m for m in layers if not isinstance(m.diagram()[0], nn.Activation)]
    expected = [real[id(m)] for m in staged]
    assert [s for _, s in drawn[1:]] == expected
    # and each module's output_shape agrees with its own forward, batch included
    h = x
    for m in layers:
        out = m(h)
        if hasattr(m, "output_shape"):
            assert m.output_shape(h.shape) == out.shape
        h = out


@settings(max_examples=25)
@given(st.data())
def test_random_conv_and_pool_stacks_size_as_their_forward_pass(data: st.DataObject) -> None:
    """Random kernels, strides, paddings and dilations: the drawn sizes are
    those of a real forward pass, stage by stage."""
    nd = data.draw(st.sampled_from([1, 2]), label="spatial dims")
    size = tuple(data.draw(st.integers(6, 14), label="size") for _ in range(nd))
    c = data.draw(st.integers(1, 3), label="channels")
    layers = []
    shape = (c,) + size
    for k in range(data.draw(st.integers(1, 3), label="stages")):
        ks = data.draw(st.integers(1, 3))
        if data.draw(st.booleans(), label="pool"):
            stride = data.draw(st.integers(1, 2))
            pad = data.draw(st.integers(0, ks // 2))
            pool = (nn.MaxPool1d if nd == 1 else nn.MaxPool2d)(ks, stride=stride, padding=pad)
            layers.append(pool)
        else:
            out = data.draw(st.integers(1, 4))
            conv = (nn.Conv1d if nd == 1 else nn.Conv2d)
            layers.append(conv(shape[0], out, ks, stride=data.draw(st.integers(1, 2)),
                               padding=data.draw(st.integers(0, 2)),
                               dilation=data.draw(st.integers(1, 2)), seed=k))
        x = np.zeros((1,) + shape, np.float32)
        try:
            shape = tuple(layers[-1](x).shape[1:])
        except ValueError:     # the window no longer fits: stop before this stage
            layers.pop()
            break
    assume(layers)
    net = nn.Sequential(*layers)
    x = np.random.default_rng(0).normal(size=(2, c) + size).astype(np.float32)
    real = real_shapes(net, x)
    drawn = draw_conv.stage_shapes(net, (c,) + size)
    assert [s for _, s in drawn[1:]] == [real[id(m)] for m in layers]


def test_pool_sizes_are_those_of_a_forward_pass() -> None:
    cases = [(nn.MaxPool2d(2), (3, 9, 9)), (nn.MaxPool2d(3, stride=2, padding=1), (2, 10, 7)),
             (nn.AvgPool2d((2, 3), stride=(1, 2)), (1, 6, 9)),
             (nn.MaxPool1d(3, stride=2), (4, 15))]
    for pool, shape in cases:
        x = np.random.default_rng(0).normal(size=(2,) + shape).astype(np.float32)
        assert pool.output_shape(x.shape) == pool(x).shape, pool
        drawn = draw_conv.stage_shapes(nn.Sequential(pool), shape)
        assert drawn[-1][1] == pool(x).shape[1:], pool


def test_the_book_network_sizes_match_its_forward_pass() -> None:
    net = book_net()
    x = np.zeros((2, 1, 28, 28), np.float32)
    real = real_shapes(net, x)
    want = [("input", (1, 28, 28))] + [
        (f"layers.{k}", real[id(net[k])]) for k in (0, 2, 3, 5, 6, 7, 10)]
    assert draw_conv.stage_shapes(net, (1, 28, 28)) == want


def test_an_example_batch_gives_the_sizes_too() -> None:
    needs_graphviz()
    net = book_net()
    by_shape = tg.draw(net, input_shape=(1, 28, 28)).source
    assert tg.draw(net, input=np.zeros((3, 1, 28, 28), np.float32)).source == by_shape


# ---------------------------------------------------------------------------
# Awkward networks

def test_without_an_input_shape_the_stacks_show_their_depth_and_the_heading_says_why() -> None:
    needs_graphviz()
    d = tg.draw(book_net())
    assert [s for s, _ in stack_labels(d.source)] == ["1 map", "32 maps", "32 maps",
                                                      "64 maps", "64 maps"]
    assert len(d.notes) == 1 and "input_shape=(C, H, W)" in d.notes[0]
    assert "input_shape=(C, H, W)" in d.source
    # the dense part still knows its sizes, from the layers' weights
    assert "flatten (3136)" in d.source


def test_a_module_used_twice_is_drawn_at_each_use() -> None:
    needs_graphviz()
    shared = nn.Conv2d(4, 4, 3, padding=1, seed=0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, seed=1), shared, nn.ReLU(), shared,
                        nn.MaxPool2d(2))
    x = np.zeros((1, 1, 10, 10), np.float32)
    assert net(x).shape == (1, 4, 4, 4)
    labels = stack_labels(tg.draw(net, input_shape=(1, 10, 10)).source)
    assert labels == [("10×10×1", "input"), ("8×8×4", "layers.0"), ("8×8×4", "layers.1"),
                      ("8×8×4", "layers.3"), ("4×4×4", "layers.4")]


def test_a_1d_convolutional_network_draws_sequences() -> None:
    needs_graphviz()
    net = nn.Sequential(nn.Conv1d(8, 16, 3, padding=1, seed=0), nn.ReLU(), nn.MaxPool1d(2),
                        nn.Conv1d(16, 4, 5, seed=1), nn.Flatten(), nn.Linear(4 * 46, 2, seed=2))
    src = tg.draw(net, input_shape=(8, 100)).source
    assert [s for s, _ in stack_labels(src)] == ["100×8", "100×16", "50×16", "46×4"]
    nodes, _ = parse(src)
    maps = [a for a in nodes.values() if a.get("tooltip", "").startswith("layers.0:")]
    assert maps and all(float(a["height"]) == pytest.approx(draw_conv.BAR / 72, abs=1e-3)
                        for a in maps)
    assert "conv 3\n16 filters\npad 1\n+ ReLU" in texts_left_to_right(src)
    assert "input_shape=(C, L)" in tg.draw(net).source


def test_a_wide_stack_draws_a_few_maps_and_dots() -> None:
    needs_graphviz()
    net = nn.Sequential(nn.Conv2d(3, 512, 3, padding=1, seed=0), nn.Conv2d(512, 2, 1, seed=1))
    src = tg.draw(net, input_shape=(3, 8, 8)).source
    nodes, _ = parse(src)
    wide = [a for a in nodes.values() if a.get("tooltip") == "layers.0: 8×8×512"]
    assert len(wide) == draw_conv.MAX_MAPS
    dots = [a for a in nodes.values() if a.get("shape") == "point" and a.get("style") != "invis"
            and a.get("color") == draw_conv.COLOURS["conv"][1]]
    assert len(dots) >= 3
    narrow = [a for a in nodes.values() if a.get("tooltip") == "layers.1: 8×8×2"]
    assert len(narrow) == 2


def test_a_deep_stack_keeps_every_stage_in_order() -> None:
    needs_graphviz()
    layers = [nn.Conv2d(3, 8, 3, padding=1, seed=0)]
    for k in range(11):
        layers += [nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, seed=k + 1)]
    net = nn.Sequential(*layers)
    src = tg.draw(net, input_shape=(3, 16, 16), max_nodes=None).source
    assert [s for s, _ in stack_labels(src)] == ["16×16×3"] + ["16×16×8"] * 12
    # By default the picture stays readable: the middle stages become one node, with a
    # warning, and the heading still lists every size.
    with pytest.warns(tg.draw.DrawWarning, match=r"12 stages are too many .* the first 2 "
                                                 r"and the last \d+ are drawn"):
        d = tg.draw(net, input_shape=(3, 16, 16))
    labels = stack_labels(d.source)
    assert labels[:3] == [("16×16×3", "input"), ("16×16×8", "layers.0"),
                          ("16×16×8", "layers.2")] and labels[-1] == ("16×16×8", "layers.22")
    assert 4 <= len(labels) < 13
    assert f"⋯ {13 - len(labels)} more stages" in d.source
    assert " → ".join(["16×16×3"] + ["16×16×8"] * 6) in d.source.replace("\\n", " ")
    need("dot")
    width = float(svg_root(d.svg("dot")).get("width").removesuffix("pt"))
    assert width <= draw_conv.MAX_WIDTH + 20


def test_batch_norm_annotates_the_stage_it_follows() -> None:
    needs_graphviz()
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, seed=0), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Flatten(), nn.Linear(4 * 6 * 6, 5, seed=1), nn.BatchNorm1d(5),
                        nn.ReLU(), nn.Linear(5, 2, seed=2))
    src = tg.draw(net, input_shape=(1, 6, 6)).source
    assert "conv 3×3\n4 filters\npad 1\n+ batch norm\n+ ReLU" in texts_left_to_right(src)
    nodes, _ = parse(src)
    assert "hidden 1 (5)\nbatch norm\nrelu" in [a.get("label") for a in nodes.values()]
    after = nn.Sequential(nn.Conv2d(1, 4, 3, seed=0), nn.Flatten(), nn.Linear(4, 3, seed=1),
                          nn.ReLU(), nn.BatchNorm1d(3), nn.Linear(3, 2, seed=2))
    labels = [a.get("label") for a in parse(tg.draw(after, input_shape=(1, 3, 3)).source)[0]
              .values()]
    assert "hidden 1 (3)\nrelu\nbatch norm" in labels


def test_a_dense_network_with_batch_norm_draws_columns_only() -> None:
    needs_graphviz()
    net = nn.Sequential(nn.Linear(4, 3, seed=0), nn.BatchNorm1d(3), nn.ReLU(),
                        nn.Linear(3, 2, seed=1))
    for shape in (None, (4,)):
        src = tg.draw(net, input_shape=shape).source
        nodes, _ = parse(src)
        labels = [a.get("label") for a in nodes.values()]
        assert stack_labels(src) == [] and "input (4)" in labels
        assert "hidden 1 (3)\nbatch norm\nrelu" in labels
    with pytest.raises(ValueError, match=r"layers\.1 \(batch norm\) takes 3 features but "
                                         r"layer 'layers\.0' gives 2"):
        tg.draw(nn.Sequential(nn.Linear(4, 2), nn.BatchNorm1d(3)))


def test_a_module_the_view_cannot_open_turns_the_picture_into_boxes() -> None:
    needs_graphviz()

    class Odd(nn.Module):
        def forward(self, x):
            return x

    src = tg.draw(nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, seed=0), Odd()),
                  input_shape=(1, 8, 8)).source
    labels = [a.get("label") for a in parse(src)[0].values()]
    assert "layers.0: conv 3×3, 2 filters, stride 2" in labels
    assert "layers.1: Odd" in labels


# ---------------------------------------------------------------------------
# Errors

def test_sizes_that_do_not_fit_are_refused_by_name() -> None:
    needs_graphviz()
    with pytest.raises(ValueError, match=r"layers\.3 takes 3000 inputs but layers\.2 gives "
                                         r"7×7×64 = 3136 numbers"):
        tg.draw(nn.Sequential(nn.Conv2d(1, 64, 4, stride=4, seed=0), nn.ReLU(), nn.Flatten(),
                              nn.Linear(3000, 10, seed=1)), input_shape=(1, 28, 28))
    with pytest.raises(ValueError, match=r"layers\.0 \(conv\) takes 1 channel but input "
                                         r"gives 3 \(28×28×3\)"):
        tg.draw(book_net(), input_shape=(3, 28, 28))
    with pytest.raises(ValueError, match=r"Conv2d '0'.* C = in_channels = 1, got shape "
                                         r"\(1, 1, 28\)"):
        tg.draw(book_net(), input_shape=(1, 28))
    with pytest.raises(ValueError, match=r"layers\.1 \(batch norm\) takes 5 channels but "
                                         r"layers\.0 gives 4 \(6×6×4\)"):
        tg.draw(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(5)), input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match=r"BatchNorm2d 'batchnorm2d': expected 5 channels "
                                         r"\(num_features\) on axis 1, got input shape "
                                         r"\(1, 4, 8, 8\)"):
        nn.BatchNorm2d(5).output_shape((1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"MaxPool2d 'maxpool2d'.*larger than the padded input"):
        nn.MaxPool2d(5).output_shape((1, 4, 3, 3))
    with pytest.raises(ValueError, match=r"layers\.1 \(conv\) takes 5 channels but layers\.0 "
                                         r"gives 4 \(4 maps\)"):
        tg.draw(nn.Sequential(nn.Conv2d(1, 4, 3, seed=0), nn.Conv2d(5, 2, 3, seed=1)))
    with pytest.raises(TypeError, match=r"layers\.1 \(a dense layer\) comes straight after "
                                        r"the feature maps of layers\.0; the network view "
                                        r"needs a flatten"):
        tg.draw(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(4, 2)), input_shape=(1, 6, 6))
    with pytest.raises(ValueError, match=r"input_shape must be the shape of one example"):
        tg.draw(book_net(), input_shape=(1, 0, 28))
    with pytest.raises(ValueError, match=r"kernel \(5, 5\).* larger than the padded input"):
        tg.draw(nn.Sequential(nn.Conv2d(1, 2, 5, seed=0)), input_shape=(1, 3, 3))


# ---------------------------------------------------------------------------
# draw_filters

def test_draw_filters_draws_one_normalised_image_per_filter() -> None:
    require_module("matplotlib")
    conv = nn.Conv2d(1, 6, (3, 4), seed=3)
    chart = tg.draw_filters(conv)
    (ax,) = chart.figure.axes
    images = [im.get_array() for im in ax.images]
    assert len(images) == 6
    w = conv.weight.data.astype(np.float64)
    for o, img in enumerate(images):
        want = (w[o, 0] - w[o, 0].min()) / (w[o, 0].max() - w[o, 0].min())
        np.testing.assert_allclose(np.asarray(img), want, rtol=1e-12, atol=1e-12)
        assert img.min() == 0.0 and img.max() == 1.0
    assert [t.get_text() for t in ax.texts] == [str(o) for o in range(6)]
    # 6 images in a grid of 6 columns, left to right
    lefts = [im.get_extent()[0] for im in ax.images]
    assert lefts == sorted(lefts) and len(set(lefts)) == 6
    svg = chart.svg()
    assert svg.startswith("<?xml") and 'id="filter-5"' in svg and 'id="filter-6"' not in svg


def test_draw_filters_of_many_input_channels_mean_or_one_channel() -> None:
    require_module("matplotlib")
    conv = nn.Conv2d(3, 4, 3, seed=5)
    w = conv.weight.data.astype(np.float64)
    mean = [np.asarray(im.get_array()) for im in tg.draw_filters(conv).figure.axes[0].images]
    for o in range(4):
        np.testing.assert_allclose(mean[o], normalise(w[o].mean(axis=0)), atol=1e-12)
    second = tg.draw_filters(conv, channel=2, scale="layer")
    imgs = [np.asarray(im.get_array()) for im in second.figure.axes[0].images]
    lo, hi = w[:, 2].min(), w[:, 2].max()
    for o in range(4):
        np.testing.assert_allclose(imgs[o], (w[o, 2] - lo) / (hi - lo), atol=1e-12)
    assert "input channel 2" in second.figure._suptitle.get_text()
    # 1-D kernels are strips
    strips = tg.draw_filters(nn.Conv1d(2, 3, 5, seed=0)).images
    assert [s.shape for s in strips] == [(1, 5)] * 3


def test_draw_filters_refuses_what_is_not_a_convolution() -> None:
    with pytest.raises(TypeError, match=r"draw_filters: Linear 'linear' is not a convolution: "
                                        r"it needs a module whose diagram\(\) is one "
                                        r"FeatureMaps of kind 'conv'"):
        tg.draw_filters(nn.Linear(3, 2))
    with pytest.raises(TypeError, match=r"MaxPool2d .* is not a convolution"):
        tg.draw_filters(nn.MaxPool2d(2))
    with pytest.raises(ValueError, match=r"channel 3 is out of range; the kernels have 3 "
                                         r"input channel\(s\), 0 to 2"):
        tg.draw_filters(nn.Conv2d(3, 2, 3), channel=3)
    with pytest.raises(ValueError, match=r"scale must be 'filter' or 'layer'"):
        tg.draw_filters(nn.Conv2d(3, 2, 3), scale="global")
    with pytest.raises(ValueError, match=r"a weight of shape \(2, 3\)"):
        tg.draw_filters(np.zeros((2, 3)))


# ---------------------------------------------------------------------------
# draw_feature_maps

def small_net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, seed=0), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(3, 5, 3, seed=1), nn.ReLU(), nn.Dropout(0.5),
                         nn.Flatten(), nn.Linear(5 * 2 * 2, 2, seed=2), name="small")


def test_draw_feature_maps_shows_each_stages_real_activations() -> None:
    require_module("matplotlib")
    net = small_net()
    image = np.random.default_rng(1).normal(size=(8, 8)).astype(np.float32)
    chart = tg.draw_feature_maps(net, image)
    # computed here by calling the layers one by one
    x = image[None, None]
    a0 = net[0](x).data
    a2 = net[2](net[1](net[0](x))).data
    a3 = net[3](a2).data
    titles = [t for t, _ in chart.images]
    assert titles == ["input  8×8×1", "layers.0: conv 3×3  →  8×8×3",
                      "layers.2: max pool 2×2  →  4×4×3", "layers.3: conv 3×3  →  2×2×5"]
    for (title, maps), want in zip(chart.images, [x[0], a0[0], a2[0], a3[0]]):
        assert len(maps) == want.shape[0]
        lo, hi = want.min(), want.max()
        for m, w in zip(maps, want):
            np.testing.assert_allclose(m, (w - lo) / (hi - lo), rtol=1e-6, atol=1e-6)
    # and the figure shows those arrays, one axes per map
    axes = chart.figure.axes
    assert [len(ax.images) for ax in axes] == [1, 3, 3, 5]
    for ax, (_, maps) in zip(axes, chart.images):
        for im, m in zip(ax.images, maps):
            np.testing.assert_array_equal(np.asarray(im.get_array()), m)
    assert [ax.get_title(loc="left") for ax in axes] == titles


def test_draw_feature_maps_leaves_the_network_as_it_was() -> None:
    require_module("matplotlib")
    net = small_net()
    net.train()
    tg.draw_feature_maps(net, np.ones((1, 8, 8), np.float32), max_maps=2, scale="map")
    assert all(m.training for m in net.modules())
    assert all(not m._forward_hooks for m in net.modules())


def test_draw_feature_maps_runs_batch_norm_with_its_running_statistics() -> None:
    require_module("matplotlib")
    net = nn.Sequential(nn.Conv2d(1, 2, 3, seed=0), nn.BatchNorm2d(2), nn.ReLU(),
                        nn.MaxPool2d(2))
    net.layers[1].running_mean.data[:] = [0.5, -0.5]
    net.layers[1].running_var.data[:] = [4.0, 0.25]
    image = np.random.default_rng(3).normal(size=(1, 6, 6)).astype(np.float32)
    chart = tg.draw_feature_maps(net, image)     # a batch of one: training mode would refuse
    assert net.training and net.layers[1].training
    conv = net[0](image[None]).data[0]
    bn = (conv - np.array([0.5, -0.5])[:, None, None]) / np.sqrt(
        np.array([4.0, 0.25])[:, None, None] + 1e-5)
    pooled = np.maximum(bn, 0).reshape(2, 2, 2, 2, 2).max(axis=(2, 4))
    got = chart.images[-1][1]
    lo, hi = pooled.min(), pooled.max()
    for m, w in zip(got, pooled):
        np.testing.assert_allclose(m, (w - lo) / (hi - lo), atol=1e-5)


def test_draw_feature_maps_of_a_shared_module_shows_each_call() -> None:
    require_module("matplotlib")
    shared = nn.Conv2d(2, 2, 3, padding=1, seed=0)
    net = nn.Sequential(shared, nn.ReLU(), shared)
    chart = tg.draw_feature_maps(net, np.ones((2, 5, 5), np.float32))
    assert [t for t, _ in chart.images] == ["input  5×5×2", "layers.0: conv 3×3  →  5×5×2",
                                            "layers.0 (call 2): conv 3×3  →  5×5×2"]


def test_draw_feature_maps_of_chosen_layers_and_1d_networks() -> None:
    require_module("matplotlib")
    net = small_net()
    image = np.random.default_rng(2).normal(size=(1, 1, 8, 8)).astype(np.float32)
    chart = tg.draw_feature_maps(net, image, layers=["layers.1"])
    relu = np.maximum(net[0](image).data, 0)[0]
    assert [t for t, _ in chart.images][1] == "layers.1  8×8×3"
    lo, hi = relu.min(), relu.max()
    np.testing.assert_allclose(chart.images[1][1][2], (relu[2] - lo) / (hi - lo), atol=1e-6)
    seq = nn.Sequential(nn.Conv1d(3, 4, 3, seed=0), nn.MaxPool1d(2))
    chart = tg.draw_feature_maps(seq, np.ones((3, 12), np.float32))
    assert [m[0].shape for _, m in chart.images] == [(3, 12), (4, 10), (4, 5)]


def test_draw_feature_maps_refuses_bad_input_by_name() -> None:
    with pytest.raises(TypeError, match=r"draw_feature_maps: Sequential 'dense' has no "
                                        r"convolution or pooling stage"):
        tg.draw_feature_maps(nn.Sequential(nn.Linear(2, 2), name="dense"), np.ones(2))
    with pytest.raises(ValueError, match=r"one example \(C, H, W\) or a batch of one, for "
                                         r"Sequential 'small'; got shape \(2, 1, 8, 8\)"):
        tg.draw_feature_maps(small_net(), np.ones((2, 1, 8, 8)))
    with pytest.raises(KeyError, match=r"no sub-module 'layers.9'"):
        tg.draw_feature_maps(small_net(), np.ones((8, 8)), layers=["layers.9"])


# ---------------------------------------------------------------------------
# Forward hooks

def test_forward_hooks_see_inputs_and_outputs_in_order_and_can_be_removed() -> None:
    layer = nn.Linear(2, 3, seed=0)
    seen = []
    h1 = layer.register_forward_hook(lambda m, args, out: seen.append(("a", m, args, out)))
    h2 = layer.register_forward_hook(lambda m, args, out: seen.append(("b", m, args, out)))
    x = tg.tensor([[1.0, 2.0]])
    y = layer(x)
    assert [s[0] for s in seen] == ["a", "b"]
    assert seen[0][1] is layer and seen[0][2] == (x,) and seen[0][3] is y
    h1.remove()
    h1.remove()                     # a second remove does nothing
    layer(x)
    assert [s[0] for s in seen] == ["a", "b", "b"]
    h2.remove()
    layer(x)
    assert len(seen) == 3


def test_forward_hooks_may_replace_the_output_and_pre_hooks_the_input() -> None:
    layer = nn.Linear(2, 2, seed=0)
    x = tg.tensor([[1.0, -1.0]])
    plain = layer(x).data
    with layer.register_forward_hook(lambda m, args, out: out * 2):
        np.testing.assert_allclose(layer(x).data, 2 * plain)
    np.testing.assert_allclose(layer(x).data, plain)     # removed on leaving the block
    with layer.register_forward_pre_hook(lambda m, args: (args[0] * 0,)):
        np.testing.assert_allclose(layer(x).data, layer.bias.data[None])
    doubled = layer(x * 2).data
    with layer.register_forward_pre_hook(lambda m, args: args[0] * 2):   # one input, no tuple
        np.testing.assert_allclose(layer(x).data, doubled)


def test_forward_hooks_run_inside_the_module_scope_and_for_each_call() -> None:
    shared = nn.Linear(2, 2, seed=0)
    net = nn.Sequential(shared, nn.ReLU(), shared, name="net")
    scopes = []
    with shared.register_forward_hook(lambda m, args, out: scopes.append(tg.current_scope())):
        net(tg.tensor([[1.0, 2.0]]))
    assert scopes == [("net", "layers", "0"), ("net", "layers", "0")]
    with pytest.raises(TypeError, match=r"register_forward_hook: the hook must be callable"):
        shared.register_forward_hook("not a function")


def test_any_module_that_says_it_is_a_stage_of_feature_maps_is_drawn_as_one() -> None:
    needs_graphviz()

    class EveryOther(nn.Module):
        """Keeps every other row and column: a pooling stage by what it says."""

        def forward(self, x):
            return x[:, :, ::2, ::2]

        def output_shape(self, shape):
            n, c, h, w = shape
            return (n, c, (h + 1) // 2, (w + 1) // 2)

        def diagram(self, name=""):
            return [nn.FeatureMaps(name or self.scope_name, "pool", "subsample", None, None,
                                   (1, 1), (2, 2), output_shape=self.output_shape)]

    net = nn.Sequential(nn.Conv2d(1, 2, 3, seed=0), EveryOther())
    src = tg.draw(net, input_shape=(1, 9, 9)).source
    assert [s for s, _ in stack_labels(src)] == ["9×9×1", "7×7×2", "4×4×2"]
    assert "subsample 1×1\nstride 2" in texts_left_to_right(src)
    x = np.random.default_rng(0).normal(size=(1, 1, 9, 9)).astype(np.float32)
    require_module("matplotlib")
    chart = tg.draw_feature_maps(net, x[0])
    assert chart.images[-1][0] == "layers.1: subsample 1×1  →  4×4×2"
    want = net(x).data[0]
    lo, hi = want.min(), want.max()
    np.testing.assert_allclose(chart.images[-1][1][1], (want[1] - lo) / (hi - lo), atol=1e-6)


def test_the_dense_part_takes_the_network_views_options() -> None:
    needs_graphviz()
    net = nn.Sequential(nn.Conv2d(1, 2, 3, seed=0), nn.Flatten(), nn.Linear(8, 3, seed=1),
                        nn.Tanh(), nn.Linear(3, 2, seed=2))
    nodes, edges = parse(tg.draw(net, input_shape=(1, 4, 4), cap=4).source)
    circles = [a for a in nodes.values() if a.get("shape") == "circle"]
    assert len(circles) == 3 + 3 + 2        # 8 inputs capped to 3 and "5 more"
    assert "⋮ 5 more" in [a.get("label") for a in nodes.values()]
    weighted = [e for _, _, e in edges if "penwidth" in e and "tooltip" in e]
    assert len(weighted) == 3 * 3 + 3 * 2 and not any("label" in e for e in weighted)
    w = net[2].weight.data.T            # (in, out), the book's layout
    _, edges = parse(tg.draw(net, input_shape=(1, 4, 4), weights=True).source)
    written = [e["label"] for _, _, e in edges if e.get("tooltip", "").startswith("w =")]
    assert written[:3] == [tg.draw.labels.fmt_number(v) for v in w[0, :3]]
