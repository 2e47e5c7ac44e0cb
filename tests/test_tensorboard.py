"""TensorBoard logs (tg.tensorboard, fit's log_dir), read back with TensorBoard's
own EventAccumulator: what it reads is what the dashboards show."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph import data, losses, nn, optim, train
from tensorgraph import tensorboard as tgtb

from conftest import require_module


@pytest.fixture(autouse=True)
def tensorboard_installed(request):
    """Skip (a failure in CI) without tensorboard; the install-hint test runs anyway."""
    if request.node.name != "test_without_tensorboard_the_install_hint":
        require_module("tensorboard")


@pytest.fixture
def accumulator():
    """read(path) -> a loaded EventAccumulator keeping every event."""
    ea = require_module("tensorboard.backend.event_processing.event_accumulator")

    def read(path: Path):
        acc = ea.EventAccumulator(str(path), size_guidance={"scalars": 0, "histograms": 0})
        acc.Reload()
        return acc
    return read


def attrs(node) -> dict:
    return {k: v for k, v in node.attr.items()}


# -- the writer ---------------------------------------------------------------------

def test_scalars_read_back_with_their_steps(tmp_path, accumulator):
    values = [0.5, 0.25, np.float64(0.125), tg.tensor(2.0), np.array([3.5])]
    with tgtb.SummaryWriter(tmp_path) as w:
        for step, v in zip([0, 1, 2, 5, 10], values):
            w.add_scalar("loss", v, step)
        w.add_scalar("other/curve", 7, 3)
    acc = accumulator(tmp_path)
    assert sorted(acc.Tags()["scalars"]) == ["loss", "other/curve"]
    events = acc.Scalars("loss")
    assert [e.step for e in events] == [0, 1, 2, 5, 10]
    # simple_value is a float32 in the proto
    assert [e.value for e in events] == [0.5, 0.25, 0.125, 2.0, 3.5]
    assert [(e.step, e.value) for e in acc.Scalars("other/curve")] == [(3, 7.0)]


def test_histogram_is_numpys_with_count_min_max_sum(tmp_path, accumulator):
    values = np.random.default_rng(0).normal(size=(20, 10)).astype(np.float32)
    with tgtb.SummaryWriter(tmp_path) as w:
        w.add_histogram("weight", nn.Parameter(values), 4, bins=7)
        w.add_histogram("weight", values * 2, 5)
    events = accumulator(tmp_path).Histograms("weight")
    assert [e.step for e in events] == [4, 5]
    h = events[0].histogram_value
    x = values.astype(np.float64).ravel()
    counts, edges = np.histogram(x, bins=7)
    assert (h.num, h.min, h.max) == (200, x.min(), x.max())
    assert h.sum == pytest.approx(x.sum()) and h.sum_squares == pytest.approx((x * x).sum())
    assert list(h.bucket) == counts.tolist() and list(h.bucket_limit) == edges[1:].tolist()
    assert len(events[1].histogram_value.bucket) == 30       # the default bins
    assert events[1].histogram_value.max == pytest.approx(2 * x.max())


def test_writer_bad_input_names_the_culprit(tmp_path):
    w = tgtb.SummaryWriter(tmp_path)
    with pytest.raises(TypeError,
                       match=r"add_scalar\('acc'\): value must be a real number.*\(3,\)"):
        w.add_scalar("acc", np.ones(3), 0)
    with pytest.raises(ValueError,
                       match=r"add_scalar\('acc'\): step must be an integer >= 0, got -1"):
        w.add_scalar("acc", 1.0, -1)
    with pytest.raises(ValueError, match="tag must be a non-empty string"):
        w.add_scalar("", 1.0, 0)
    with pytest.raises(ValueError,
                       match=r"add_histogram\('w'\): 2 of 3 values are NaN or infinite"):
        w.add_histogram("w", [1.0, np.nan, np.inf], 0)
    w.close()
    w.close()   # harmless
    with pytest.raises(ValueError, match="is closed"):
        w.add_scalar("acc", 1.0, 0)


@pytest.mark.parametrize("make", ["file", "under_a_file"])
def test_unwritable_log_dir_is_named(tmp_path, make):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    log_dir = blocker if make == "file" else blocker / "runs"
    with pytest.raises(OSError, match=rf"SummaryWriter: cannot write TensorBoard logs to log_dir "
                                      rf"'{log_dir}'"):
        tgtb.SummaryWriter(log_dir)


def test_without_tensorboard_the_install_hint(monkeypatch):
    tgtb._tb.cache_clear()
    for name in [m for m in sys.modules if m == "tensorboard" or m.startswith("tensorboard.")]:
        monkeypatch.setitem(sys.modules, name, None)
    try:
        with pytest.raises(ModuleNotFoundError, match="pip install tensorboard"):
            tgtb.SummaryWriter("never-created")
    finally:
        monkeypatch.undo()
        tgtb._tb.cache_clear()
    assert not Path("never-created").exists()


# -- the graph ----------------------------------------------------------------------

#: The GraphDef of FeedForward([3, 4, 2], name="net") on x, times 2.0: {name: (op, inputs)}
SCOPED = {
    "x": ("Placeholder", []),
    "net/layers/0/weight": ("Variable", []),
    "net/layers/0/matmul": ("matmul", ["x", "net/layers/0/weight"]),
    "net/layers/0/bias": ("Variable", []),
    "net/layers/0/add": ("add", ["net/layers/0/matmul", "net/layers/0/bias"]),
    "net/layers/0/tanh": ("tanh", ["net/layers/0/add"]),
    "net/layers/1/weight": ("Variable", []),
    "net/layers/1/matmul_1": ("matmul", ["net/layers/0/tanh", "net/layers/1/weight"]),
    "net/layers/1/bias": ("Variable", []),
    "net/layers/1/add_1": ("add", ["net/layers/1/matmul_1", "net/layers/1/bias"]),
    "const": ("Const", []),
    "mul": ("mul", ["net/layers/1/add_1", "const"]),
}


def test_graph_names_are_the_scopes(tmp_path, accumulator):
    net = nn.FeedForward([3, 4, 2], activation="tanh", seed=0, name="net")
    x = tg.tensor(np.ones((5, 3), np.float32))
    y = net(x) * 2.0
    with tgtb.SummaryWriter(tmp_path) as w:
        w.add_graph(y, model=net, names={x: "x"})
    gd = accumulator(tmp_path).Graph()
    assert {n.name: (n.op, list(n.input)) for n in gd.node} == SCOPED
    by_name = {n.name: n for n in gd.node}
    shape = attrs(by_name["net/layers/0/matmul"])["_output_shapes"].list.shape[0]
    assert [d.size for d in shape.dim] == [5, 4]
    assert attrs(by_name["const"])["value"].s == b"2."


def test_a_captured_graph_has_the_same_scoped_names(tmp_path, accumulator):
    net = nn.FeedForward([3, 4, 2], activation="tanh", seed=0, name="net")
    g = tg.capture(lambda x: net(x) * 2.0, tg.placeholder((None, 3), name="x"))
    with tgtb.SummaryWriter(tmp_path) as w:
        w.add_graph(g, model=net)    # a lambda: the model names the parameters
    gd = accumulator(tmp_path).Graph()
    assert {n.name: (n.op, list(n.input)) for n in gd.node} == SCOPED
    by_name = {n.name: n for n in gd.node}
    shape = attrs(by_name["net/layers/0/tanh"])["_output_shapes"].list.shape[0]
    assert [d.size for d in shape.dim] == [-1, 4]      # the open batch size
    assert attrs(by_name["const"])["value"].s == b"2."
    # captured from the module itself, the Graph's "layers.0.weight" names suffice
    g = tg.capture(net, tg.placeholder((None, 3), name="x"))
    assert {n.name: (n.op, list(n.input)) for n in tgtb.graph_def(g).node} == \
        {k: v for k, v in SCOPED.items() if k not in ("const", "mul")}
    with pytest.raises(TypeError, match="graph_def: names is for Tensor targets"):
        tgtb.graph_def(g, names={tg.tensor(1.0): "x"})


def test_graph_without_a_model_places_parameters_in_their_scope():
    w = tg.tensor(np.ones((2, 2)), requires_grad=True)
    x = tg.tensor(np.ones((1, 2)), name="features")
    with tg.name_scope("block"):
        with tg.name_scope("a"):
            h = x @ w
        with tg.name_scope("b"):
            out = (h @ w).sum(axis=1)
    gd = tgtb.graph_def(out)
    nodes = [(n.name, n.op, list(n.input)) for n in gd.node]
    assert nodes == [("features", "Placeholder", []), ("block/param", "Variable", []),
                     ("block/a/matmul", "matmul", ["features", "block/param"]),
                     ("block/b/matmul_1", "matmul", ["block/a/matmul", "block/param"]),
                     ("block/b/sum", "sum", ["block/b/matmul_1"])]
    assert attrs(gd.node[-1])["axis"].i == 1
    assert attrs(gd.node[1])["dtype"].type == 2   # DT_DOUBLE, TensorFlow's number for float64
    with pytest.raises(TypeError, match="graph_def: target must be a Tensor"):
        tgtb.graph_def("loss")


# -- fit(log_dir=...) -----------------------------------------------------------------

def test_fit_logs_history_graph_and_parameters(tmp_path, accumulator):
    X, y = data.xor()
    net = nn.FeedForward([2, 4, 2], activation="tanh", seed=0, name="net")
    hist = train.fit(net, losses.cross_entropy, optim.SGD(net.parameters(), lr=0.1), (X, y),
                     epochs=3, val=(X, y), batch_size=2, seed=0, progress=False,
                     log_dir=tmp_path / "run")
    tr, va = accumulator(tmp_path / "run" / "train"), accumulator(tmp_path / "run" / "validation")
    assert sorted(tr.Tags()["scalars"]) == ["accuracy", "loss", "lr"]
    assert sorted(va.Tags()["scalars"]) == ["accuracy", "loss"]
    for key, values in hist.history.items():
        acc, tag = (va, key[4:]) if key.startswith("val_") else (tr, key)
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [0, 1, 2]
        np.testing.assert_array_equal([e.value for e in events], np.float32(values))
    names = [n for n, _ in net.named_parameters()]
    assert sorted(tr.Tags()["histograms"]) == sorted(names)
    for name, p in net.named_parameters():
        events = tr.Histograms(name)
        last = events[-1].histogram_value
        assert [e.step for e in events] == [0, 1, 2]
        assert (last.num, last.min, last.max) == (p.size, p.data.min(), p.data.max())
    graph = {n.name: n for n in tr.Graph().node}
    assert graph["cross_entropy"].input == ["net/layers/1/add_1", "targets"]
    assert graph["net/layers/0/matmul"].input == ["x", "net/layers/0/weight"]
    assert not va.Tags()["graph"]


def test_fit_unwritable_log_dir_fails_before_training(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    X, y = data.xor()
    net = nn.FeedForward([2, 2], seed=0)
    before = {k: v.copy() for k, v in net.state_dict().items()}
    began = []
    with pytest.raises(OSError, match=rf"fit: cannot write TensorBoard logs to log_dir "
                                      rf"'{blocker / 'logs'}'"):
        train.fit(net, losses.cross_entropy, optim.SGD(net.parameters(), lr=0.1), (X, y),
                  epochs=2, progress=False, log_dir=blocker / "logs",
                  callbacks=[lambda e, logs: began.append(e)])
    assert began == []
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_fit_on_nonfinite_ignore_logs_the_nan_loss_and_skips_diverged_parameters(tmp_path,
                                                                                  accumulator):
    X, y = data.xor()
    X = X.astype(np.float32)
    X[0, 0] = np.nan           # the first step makes every weight it reaches NaN
    net = nn.FeedForward([2, 2], seed=0, name="net")
    train.fit(net, losses.cross_entropy, optim.SGD(net.parameters(), lr=0.1), (X, y), epochs=2,
              batch_size=4, shuffle=False, progress=False, on_nonfinite="ignore",
              log_dir=tmp_path)
    tr = accumulator(tmp_path / "train")
    assert [np.isnan(e.value) for e in tr.Scalars("loss")] == [True, True]
    assert not np.isfinite(net.layers[0].weight.data).all()
    assert "layers.0.weight" not in tr.Tags()["histograms"]
