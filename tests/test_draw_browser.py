"""A real browser looks at the drawings: headless Chromium loads a local page
holding several SVGs (inline, and as <img> files, which go through the strict
XML parser), a script writes their rendered sizes and any errors into the
DOM, and a screenshot at 1366x768 is saved.

Needs Chromium (`apt-get install chromium`) and a Graphviz backend; skips
locally without them and fails in CI (TENSORGRAPH_REQUIRE_ALL=1).
"""
from __future__ import annotations

import html
import json
import os
import pathlib
import re
import shutil
import subprocess

import numpy as np

import tensorgraph as tg
from conftest import require
from tensorgraph import backends, nn
from tensorgraph.draw import draw, draw_history

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]

SCRIPT = """
<script>
  window.__errors = [];
  window.addEventListener('error', e => window.__errors.push(String(e.message || e.type)), true);
  window.addEventListener('load', () => {
    const out = {figures: [], images: [], errors: window.__errors,
                 scripts: document.querySelectorAll('script').length};
    for (const fig of document.querySelectorAll('figure.inline')) {
      const svg = fig.querySelector('svg');
      const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
      out.figures.push({id: fig.id, width: r.width, height: r.height,
                        nodes: svg ? svg.querySelectorAll('g.node').length : -1,
                        text: svg ? svg.textContent : ''});
    }
    for (const img of document.querySelectorAll('img')) {
      out.images.push({src: img.getAttribute('src'), width: img.naturalWidth,
                       height: img.naturalHeight, complete: img.complete});
    }
    document.getElementById('result').textContent = JSON.stringify(out);
  });
</script>
"""


def inline(svg: str) -> str:
    """An SVG document as an element to put in HTML (no XML prolog/doctype)."""
    return svg[svg.index("<svg"):]


def drawings(backend: str) -> dict[str, tuple[str, int]]:
    """name -> (SVG text, expected number of Graphviz nodes; -1 for charts)."""
    x = tg.tensor([1.0, 2.0], name="x")
    w = tg.tensor([0.5, -1.0], requires_grad=True, name="<script>alert(1)</script>")
    a = x * w
    y = ((a + a) * 2.0).sum()
    y.backward(retain_graph=True)
    net = nn.FeedForward([3, 4, 2], activation="relu", output="softmax", seed=0, name="net")
    X = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    perceptron = nn.LinearPerceptron(2)
    perceptron.weight.data[:] = [0.5, -1.0]
    out = {}
    for name, d in [
        ("network", draw(net, backend=backend, title="FeedForward([3, 4, 2], softmax)")),
        ("neuron", draw(nn.Neuron(3, seed=1), backend=backend)),
        ("perceptron", draw(perceptron, backend=backend)),
        ("ops", draw(y, values=True, grads=True, backend=backend, title="ops view")),
        ("backward", draw(y, view="backward", backend=backend)),
        ("modules", draw(net, view="modules", input=X, backend=backend, rankdir="LR")),
    ]:
        out[name] = (d.svg(), len(re.findall(r'^\s*\w+ \[label=', d.source, re.M)))
    hist = {"loss": [1.0, 0.6, 0.45, 0.4], "val_loss": [1.1, 0.7, 0.6, 0.62],
            "accuracy": [0.5, 0.75, 0.85, 0.9], "val_accuracy": [0.45, 0.7, 0.78, 0.8]}
    out["history"] = (draw_history(hist, title="learning curves").svg(), -1)
    return out


def page(tmp: pathlib.Path, figs: dict[str, tuple[str, int]]) -> pathlib.Path:
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>tensorgraph</title>",
             "<style>body{font-family:sans-serif;margin:8px;background:#fff}"
             ".grid{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}"
             "figure{margin:0;border:1px solid #ddd;padding:4px}"
             "figure svg{display:block;max-width:440px;max-height:340px;width:auto;height:auto}"
             "figure.wide svg{max-width:880px}"
             "img{max-width:200px;max-height:120px}</style></head><body>",
             "<div class='grid'>"]
    for name, (svg, _) in figs.items():
        (tmp / f"{name}.svg").write_text(svg, encoding="utf-8")
        wide = " wide" if name == "history" else ""
        parts.append(f"<figure class='inline{wide}' id='{name}'>{inline(svg)}"
                     f"<figcaption>{html.escape(name)}</figcaption></figure>")
    parts.append("</div><div class='grid'>")
    parts.extend(f"<img alt='{n}' src='{n}.svg'>" for n in figs)
    parts.append("</div><pre id='result'>pending</pre>")
    parts.append(SCRIPT)
    parts.append("</body></html>")
    path = tmp / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def chromium(tmp: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_browser_renders_the_drawings(tmp_path: pathlib.Path) -> None:
    require(CHROMIUM is not None, "Chromium not installed (apt-get install chromium)")
    available = backends.available_backends()
    require(bool(available), "no Graphviz backend installed")
    figs = drawings(available[0])
    url = page(tmp_path, figs).as_uri()

    dom = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    m = re.search(r"<pre id=\"result\">(.*?)</pre>", dom.stdout, re.S)
    assert m, dom.stdout[-2000:]
    result = json.loads(html.unescape(m.group(1)))
    assert result["errors"] == []
    assert result["scripts"] == 1                      # only ours: no label became a script
    assert [f["id"] for f in result["figures"]] == list(figs)
    for f in result["figures"]:
        assert f["width"] > 50 and f["height"] > 30, f["id"]
        expected = figs[f["id"]][1]
        if expected >= 0:
            assert f["nodes"] == expected, f["id"]
    ops_text = next(f["text"] for f in result["figures"] if f["id"] == "ops")
    assert "<script>alert(1)</script>" in ops_text     # shown as text
    for img in result["images"]:                       # the strict XML parser accepted each file
        assert img["complete"] and img["width"] > 0 and img["height"] > 0, img["src"]
    assert len(result["images"]) == len(figs)

    shot = tmp_path / "drawings.png"
    run = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1366,768",
                   "--virtual-time-budget=5000", url)
    assert run.returncode == 0, run.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1366, 768)
    keep = os.environ.get("TENSORGRAPH_SCREENSHOT_DIR")
    if keep:  # for a person to look at
        pathlib.Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, pathlib.Path(keep) / shot.name)
    print(f"\nscreenshot: {shot}")
