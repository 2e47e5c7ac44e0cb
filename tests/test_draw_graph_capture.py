"""Drawing a captured tg.Graph (tensorgraph.draw.captured): the ops and
modules views with inputs, parameters and constants styled apart, scopes
boxed, and the difference the graph passes make visible in the DOT text.

The DOT is read back as data with the helpers of test_draw; what a drawing
should hold is counted from the Graph itself (its nodes and the leaves they
use), not from the renderer."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph import nn
from tensorgraph.draw import DrawWarning, draw
from tensorgraph.draw.captured import CONSTANT_FILL
from tensorgraph.graph import Graph
from tensorgraph.passes import (eliminate_common_subexpressions, eliminate_dead_code,
                                fold_constants, optimize)
from test_draw import any_backend, cluster_tree, labels, node_with, parse, svg_texts

RNG = np.random.default_rng(3)


def drawn_values(g: Graph) -> int:
    """What the ops view should draw: one box per node and per distinct leaf used."""
    leaves = {id(v) for n in g.nodes for v in n.inputs if v.kind != "op"}
    leaves |= {id(v) for v in g.outputs if v.kind != "op"} | {id(v) for v in g.inputs}
    return len(g.nodes) + len(leaves)


def net_fn() -> tuple[Any, Any]:
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))

    def f(x: Any) -> Any:
        a = net(x)
        b = net(x)                       # the same network twice: CSE merges it
        _ = (a * 3.0).exp()              # dead
        scale = np.float32(2.0) * tg.sqrt(tg.tensor(np.float32(4.0)))   # folds to 4.0
        return a + b * scale
    return net, f


def test_inputs_parameters_and_constants_are_styled_apart() -> None:
    x = tg.tensor(np.ones((2, 3), "float32"))
    w = tg.tensor(np.ones((3, 2), "float32"), requires_grad=True)
    g = tg.capture(lambda x: (x @ w) * 0.5 + np.arange(2, dtype="float32"), x)
    src = draw(g).source
    nodes, edges = parse(src)
    assert len(nodes) == drawn_values(g) == 7      # x, w, 0.5, [0, 1] and three ops
    fills = {k: a["fillcolor"] for k, a in nodes.items()}
    assert fills[node_with(src, "x")] == "#dbeafe"            # input: blue
    (w_name,) = g.parameters
    assert fills[node_with(src, w_name)] == "#fde7c8"         # parameter: orange
    half = node_with(src, "0.5")                               # constant: grey, its value
    assert fills[half] == CONSTANT_FILL
    arange = node_with(src, "[0, 1]")                          # an array: value and shape
    assert labels(src)[arange] == "[0, 1]\n(2,)" and fills[arange] == CONSTANT_FILL
    assert sorted(a.get("penwidth") for k, a in nodes.items() if "penwidth" in a) == \
        ["1.4", "2.2"]                                         # the parameter, the output
    assert len(edges) == sum(len(n.inputs) for n in g.nodes)


def test_an_inference_pass_draws_without_requires_grad() -> None:
    # Eager drawing shows nothing here (no op is recorded under no_grad);
    # a captured graph has every op.
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())

    def infer(x: Any) -> Any:
        with tg.no_grad():
            return net(x).argmax(axis=1)
    g = tg.capture(infer, tg.placeholder((None, 3)))
    src = draw(g).source
    ops = [lab.split("\n")[0] for lab in labels(src).values()]
    assert [n.op.name for n in g.nodes] == [o for o in ops if o in tg.OPS]
    assert "argmax" in ops and "x\n(?, 3)" in labels(src).values()     # the open batch


def test_modules_view_boxes_scopes_and_names_parameters_by_state_dict() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    g = tg.capture(net, tg.placeholder((None, 3)))
    assert {"layers.0.weight", "layers.2.bias"} <= set(g.parameters)
    src = draw(g, view="modules", module=net).source
    labs = labels(src)
    tree = {box: (parent, [labs[i].split("\n")[0] for i in ids])
            for box, (parent, ids) in cluster_tree(src).items()}
    scope = g.nodes[0].scope                    # the first Linear's, e.g. (..., "layers", "0")
    assert tree[f"{scope[-1]}: Linear"] == (f"{scope[-2]}: ModuleList",
                                            ["weight", "transpose", "matmul", "bias", "add"])
    tanh = next(n.scope for n in g.nodes if n.op.name == "tanh")
    assert tree[f"{tanh[-1]}: Tanh"] == (f"{tanh[-2]}: ModuleList", ["tanh"])
    assert tree["<root>"] == ("", ["x"])
    # Without module= the boxes are named by scope alone; the ops view has no boxes
    # and names parameters in full.
    assert f"{scope[-1]}" in cluster_tree(draw(g, view="modules").source)
    assert "subgraph" not in draw(g).source
    assert "layers.0.weight\n(4, 3)" in labels(draw(g).source).values()


def test_depth_collapses_scopes_of_a_captured_graph() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    g = tg.capture(net, tg.placeholder((None, 3)))
    nodes, _ = parse(draw(g, view="modules", depth=0).source)
    assert len(nodes) == 2                      # the input and one block for the net
    (block,) = [a for a in nodes.values() if a.get("shape") == "box3d"]
    assert f"{len(g.nodes)} ops, 4 parameters" in block["label"]


def test_drawing_before_and_after_each_pass_shows_the_difference() -> None:
    _, f = net_fn()
    g = tg.capture(f, tg.placeholder((None, 3)))
    counts = {}
    for name, p in [("dce", eliminate_dead_code), ("cse", eliminate_common_subexpressions),
                    ("fold", fold_constants), ("all", optimize)]:
        after = p(g)
        assert len(after.nodes) < len(g.nodes), name
        nodes, edges = parse(draw(after).source)
        assert len(nodes) == drawn_values(after), name
        assert len(edges) == sum(len(n.inputs) for n in after.nodes), name
        counts[name] = len(nodes)
    nodes, _ = parse(draw(g).source)
    assert len(nodes) == drawn_values(g)
    assert counts["all"] < min(counts["dce"], counts["cse"], counts["fold"]) < len(nodes)
    # What went: the exp branch, the second network, the sqrt of a constant.
    before = [lab.split("\n")[0] for lab in labels(draw(g).source).values()]
    after = [lab.split("\n")[0] for lab in labels(draw(optimize(g)).source).values()]
    assert before.count("exp") == 1 and "exp" not in after
    assert before.count("matmul") == 4 and after.count("matmul") == 2
    assert "sqrt" in before and "sqrt" not in after and "4" in after     # folded, shown
    x = RNG.standard_normal((6, 3)).astype("float32")
    assert np.array_equal(g(x).data, optimize(g)(x).data)


def test_the_drawing_is_deterministic() -> None:
    _, f = net_fn()
    g = tg.capture(f, tg.placeholder((None, 3)))
    assert draw(g, view="modules").source == draw(g, view="modules").source
    assert draw(optimize(g)).source == draw(optimize(g)).source


def test_values_show_what_a_graph_holds() -> None:
    w = tg.tensor(np.array([1.5, -2.0], "float32"), requires_grad=True)
    g = tg.capture(lambda x: x * w, tg.placeholder((2,)))
    labs = labels(draw(g, values=True).source)
    (w_name,) = g.parameters
    assert labs[node_with(draw(g, values=True).source, w_name)] == f"{w_name}\n(2,)\ndata [1.5, -2]"
    assert all("data" not in lab for k, lab in labs.items() if not lab.startswith(w_name))


def test_views_a_graph_has_not_and_bad_targets() -> None:
    g = tg.capture(lambda x: x + 1.0, tg.placeholder((2,)))
    with pytest.raises(ValueError, match=r"view='backward'.* captured Graph: use view='ops'"):
        draw(g, view="backward")
    with pytest.raises(TypeError, match=r"view='network'.*got Graph"):
        draw(g, view="network")
    with pytest.raises(TypeError, match=r"a Tensor, a list of Tensors, a Graph or a Module, "
                                        r"got str"):
        draw("graph")


def test_a_graph_without_ops_draws_and_says_so() -> None:
    g = tg.capture(lambda x: x, tg.placeholder((2,)))
    d = draw(g)
    assert len(parse(d.source)[0]) == 1
    assert "the graph has no ops" in d.notes[0]


def test_renders_to_svg() -> None:
    backend = any_backend()
    _, f = net_fn()
    g = optimize(tg.capture(f, tg.placeholder((None, 3))))
    texts = svg_texts(draw(g, view="modules").svg(backend))
    assert "matmul" in texts and "(?, 3)" in texts


def test_a_large_captured_graph_keeps_to_the_node_budget_and_shared_constants_split() -> None:
    def chain(x: Any) -> Any:
        for _ in range(60):
            x = tg.tanh(x * 1.5 + 0.25)
        return x
    g = tg.capture(chain, tg.placeholder((2,)))
    with pytest.warns(DrawWarning, match=r"exceed the node budget \(max_nodes=50\)"):
        nodes, _ = parse(draw(g, max_nodes=50).source)
    assert len(nodes) == 50
    # After CSE the 60 copies of 1.5 are one constant with 60 uses: drawn once in
    # full, then as a dashed copy per further use, which the heading explains.
    o = optimize(g)
    assert len(o.constants) == 2
    d = draw(o, max_nodes=None)
    labs = list(labels(d.source).values())
    assert labs.count("1.5\nused 60× (dashed copies)") == 1
    assert sum(lab.startswith("1.5\nuse ") for lab in labs) == 59
    assert any("drawn once, then as a dashed copy" in n for n in d.notes)
