"""Smoke test of the examples: each `examples/*.py` (not `_*.py`) runs in its
`--quick` mode and must finish, state what it reproduces, and write the
figures its manifest (`results.json`, see examples/_common.py) promises; every
SVG must parse as XML. New examples are picked up automatically.

The examples run in the test process (conftest's `run_example`, BLAS at one
thread), not one subprocess each. Those that the gallery shows are not run
twice: their check reads what the session's one gallery build
(conftest's `gallery_build`) wrote into <site>/<name>/. The others get a
`--data` directory that does not exist, so the MNIST examples use their
synthetic stand-in (tests never read ../shared/data). One example also runs
as a script, to keep the command line honest.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

from conftest import ROOT, Run, load_example, require, run_example

EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))
TIMEOUT = 180  # seconds for the one example run as a script; --quick needs about one


def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 3, [p.name for p in EXAMPLES]


def _gallery_section(stdout: str, name: str) -> str:
    """What the gallery printed while it ran `name` (between its === lines)."""
    start = stdout.find(f"=== gallery: {name} (chapter")
    end = stdout.find(f"=== gallery: {name} done", start)
    return stdout[start:end] if start >= 0 else ""


def _quick_run(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Run, str]:
    """The example's --quick run and what it printed: from the shared gallery
    build if the gallery runs it, else run here."""
    if name == "gallery":
        run = request.getfixturevalue("gallery_build")
        return run, run.stdout
    gallery_names = [n for _, n in load_example("gallery").EXAMPLES]
    if name in gallery_names:
        build = request.getfixturevalue("gallery_build")
        failures = build.extra["failures"]
        run = Run(out=build.out / name, stdout=build.stdout, stderr=build.stderr,
                  error=failures.get(name))
        if build.error is not None and not failures:   # the gallery itself broke
            run.error = build.error
        return run, _gallery_section(build.stdout, name)
    run = run_example(name, tmp_path / name, quick=True, data=tmp_path / "no-mnist-here")
    return run, run.stdout


# Quick runs too long for `make test`'s minute (the Atari emulator and a
# 1.7M-parameter conv Q-network: 3-6 s): CI runs them with the slow marker.
SLOW_QUICK = {"dqn_breakout"}


@pytest.mark.parametrize("script", [
    pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW_QUICK else p for p in EXAMPLES],
    ids=[p.stem for p in EXAMPLES])
def test_example_quick(script: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    run, printed = _quick_run(script.stem, tmp_path, request)
    run.check(f"{script.name} --quick")
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    assert doc and len(doc) > 40, f"{script.name}: the module docstring must say what it reproduces"

    out = run.out
    manifest = out / "results.json"
    assert manifest.is_file(), (f"{script.name} wrote no {manifest.name} in --out: use "
                                "examples/_common.py's Example(...).finish()")
    info = json.loads(manifest.read_text(encoding="utf-8"))
    assert info["example"] and info["quick"] is True
    assert info["reproduces"] and info["reproduces"] in printed, \
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


def test_examples_run_as_scripts(tmp_path: Path) -> None:
    """Every example ends with the `main()` guard; one runs as a script
    (the others' run() is the same code, called in-process above)."""
    for script in EXAMPLES:
        tree = ast.parse(script.read_text(encoding="utf-8"))
        guards = [node for node in tree.body if isinstance(node, ast.If)
                  and "__main__" in ast.unparse(node.test)]
        assert guards, f"{script.name} has no `if __name__ == \"__main__\":` block"
    out = tmp_path / "neuron"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "neuron.py"), "--quick",
                           "--out", str(out)], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert info["example"] == "neuron" and info["quick"] is True
    assert f"wrote {len(info['figures'])} figures and results.json to" in proc.stdout


def test_one_figure_is_one_figure(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import argparse
    common = load_example("_common")
    ex = common.Example("one", "a test", args=argparse.Namespace(out=tmp_path, quick=True,
                                                                  data=None))
    ex.figure('<svg xmlns="http://www.w3.org/2000/svg"/>', "a.svg", "A caption.")
    ex.finish()
    assert "wrote 1 figure and results.json" in capsys.readouterr().out


def test_missing_data_without_quick_names_the_directory(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere" / "mnist"
    module = load_example("mnist_logreg")
    monkeypatch.setattr(sys, "argv", ["mnist_logreg.py", "--data", str(missing),
                                      "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exc:
        module.main()
    message = exc.value.code   # sys.exit(text): Python prints it and exits with status 1
    assert isinstance(message, str), message
    assert str(missing) in message and "--quick" in message, message
    assert not (tmp_path / "out" / "results.json").exists()


def test_synthetic_mnist_is_mnist_shaped_and_learnable() -> None:
    synthetic_mnist = load_example("_common").synthetic_mnist
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


def test_cnn_examples_fall_back_to_the_shipped_subset(tmp_path: Path) -> None:
    """With --quick and no MNIST at --data, the chapter-5 examples train on the
    subset shipped in the package (not the synthetic blobs); without --quick
    a missing directory still ends the run with a message naming it."""
    import argparse
    common, cnn = load_example("_common"), load_example("mnist_cnn")
    missing = tmp_path / "no-mnist-here"
    ex = common.Example("t", "a test", args=argparse.Namespace(out=tmp_path / "q", quick=True,
                                                               data=missing))
    split, embedded, widths = cnn.load_split(ex, missing)
    assert embedded and "shipped in the package" in split.source and widths == cnn.TINY
    n_train, n_val, n_test = cnn.SUBSET_SIZES[True]
    assert split.train[0].shape == (n_train, 1, 28, 28) and split.test[1].shape == (n_test,)
    assert split.val[0].shape[0] == n_val
    full = common.Example("t", "a test", args=argparse.Namespace(out=tmp_path / "f", quick=False,
                                                                 data=missing))
    with pytest.raises(SystemExit, match=str(missing)):
        cnn.load_split(full, missing)


def test_sentiment_models_ignore_padding() -> None:
    """Both sentiment classifiers give a sentence the same logits however far
    its batch is padded: the LSTM reads `lengths`, the CNN's max over time
    leaves out the windows that reach past the sentence's end."""
    import tensorgraph as tg
    sentiment = load_example("sentiment")
    rng = np.random.default_rng(0)
    ids = [rng.integers(2, 50, n).tolist() for n in (2, 6, 9)]   # one shorter than a filter
    for model in (sentiment.LSTMClassifier(50, 8, 6), sentiment.ConvClassifier(50, 8, 4)):
        model.eval()
        with tg.no_grad():
            X, lens = tg.text.pad_batch(ids)
            tight = model(X, lens).data
            wide = model(np.pad(X, ((0, 0), (0, 7))), lens).data
            alone = np.concatenate([model(np.asarray([s + [0] * max(0, 5 - len(s))]),
                                          np.asarray([len(s)])).data for s in ids])
        np.testing.assert_allclose(wide, tight, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(alone, tight, rtol=1e-5, atol=1e-6)


def test_sentiment_batches_cover_the_data_once() -> None:
    sentiment = load_example("sentiment")
    rng = np.random.default_rng(1)
    ids = [rng.integers(2, 30, rng.integers(1, 40)).tolist() for _ in range(123)]
    labels = np.arange(123) % 2
    got = sentiment.batches(ids, labels, np.random.default_rng(2))
    assert sum(len(y) for _, _, y in got) == 123
    assert all(X.shape[1] >= max(sentiment.WIDTHS) and X.shape[1] == max(max(lens), 5)
               for X, lens, _ in got)
    rows = sorted(tuple(X[i, :n]) for X, lens, _ in got for i, n in enumerate(lens))
    assert rows == sorted(tuple(s) for s in ids)


def test_vanishing_gradients_task_and_forget_bias() -> None:
    vg = load_example("vanishing_gradients")
    x, y = vg.sequences(64, 10, np.random.default_rng(0))
    assert x.shape == (64, 10, 2) and x.dtype == np.float32
    assert np.array_equal(x[:, 0, 0], 2.0 * y - 1.0) and (x[:, 0, 1] == 1).all()
    assert (x[:, 1:, 1] == 0).all()
    lstm = vg.Reader("LSTM").rnn
    H = vg.HIDDEN
    b = lstm.bias_ih_l0.data
    assert b[H:2 * H].min() > vg.FORGET_BIAS - 1.0 / np.sqrt(H) - 1e-6
    assert np.abs(b[:H]).max() <= 1.0 / np.sqrt(H) + 1e-6   # the other gates: PyTorch's init
