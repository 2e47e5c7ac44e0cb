"""Smoke test of the examples: each `examples/*.py` (not `_*.py`) runs with
`--quick` in a subprocess and must exit 0, state what it reproduces, and write
the figures its manifest (`results.json`, see examples/_common.py) promises;
every SVG must parse as XML. New examples are picked up automatically.

`--data` points at a directory that does not exist, so the MNIST examples use
their synthetic stand-in (tests never read ../shared/data). The examples run
two at a time (one BLAS thread each), started once for the whole module.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

from conftest import require

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))
TIMEOUT = 180  # seconds per example; --quick should need a few


def _run(script: Path, tmp: Path) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp / script.stem
    cmd = [sys.executable, str(script), "--quick", "--out", str(out),
           "--data", str(tmp / "no-mnist-here")]
    # Two examples run at once on a 2-core box: one BLAS thread each, or OpenBLAS's
    # spinning threads fight (measured beside another busy numpy process: an MNIST
    # epoch took 0.7 s with one thread, 38 s with two).
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               MPLBACKEND="Agg")  # an example plotting with matplotlib: no window
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp,
                          env=env, stdin=subprocess.DEVNULL)
    return proc, out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    tmp = tmp_path_factory.mktemp("examples")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {p.stem: pool.submit(_run, p, tmp) for p in EXAMPLES}
        return {name: f.result() for name, f in futures.items()}


def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 3, [p.name for p in EXAMPLES]


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_quick(script: Path, runs: dict[str, tuple]) -> None:
    proc, out = runs[script.stem]
    assert proc.returncode == 0, (f"{script.name} --quick exited {proc.returncode}\n"
                                  f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    assert doc and len(doc) > 40, f"{script.name}: the module docstring must say what it reproduces"

    manifest = out / "results.json"
    assert manifest.is_file(), (f"{script.name} wrote no {manifest.name} in --out: use "
                                "examples/_common.py's Example(...).finish()")
    info = json.loads(manifest.read_text(encoding="utf-8"))
    assert info["example"] and info["quick"] is True
    assert info["reproduces"] and info["reproduces"] in proc.stdout, \
        "the printed output must state what the example reproduces"
    assert info["figures"], f"{script.name} promised no figures"
    assert len(set(info["figures"])) == len(info["figures"]), info["figures"]
    for name in info["figures"]:
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, f"{script.name}: missing {name}"
        if path.suffix == ".svg":
            root = ElementTree.parse(path).getroot()   # raises if not well-formed XML
            assert root.tag in ("svg", "{http://www.w3.org/2000/svg}svg"), (name, root.tag)
    # A drawing saved as DOT means no Graphviz backend: fine locally, not in CI.
    require(not info["unrendered"], f"{script.name}: drawings not rendered: "
                                    f"{info['unrendered']}")


def test_missing_data_without_quick_names_the_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "mnist"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "mnist_logreg.py"),
                           "--data", str(missing), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    assert str(missing) in proc.stderr and "--quick" in proc.stderr, proc.stderr
    assert not (tmp_path / "out" / "results.json").exists()


def test_synthetic_mnist_is_mnist_shaped_and_learnable() -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from _common import synthetic_mnist
    finally:
        sys.path.remove(str(ROOT / "examples"))
    X, y = synthetic_mnist(500, seed=3)
    assert X.shape == (500, 784) and X.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= X.min() and X.max() <= 1.0 and set(np.unique(y)) == set(range(10))
    X2, y2 = synthetic_mnist(500, seed=3)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    # Class means differ far more than the noise: nearest class mean beats chance by far.
    means = np.stack([X[y == c].mean(axis=0) for c in range(10)])
    Xt, yt = synthetic_mnist(300, seed=4)
    pred = np.argmin(((Xt[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert (pred == yt).mean() > 0.5
