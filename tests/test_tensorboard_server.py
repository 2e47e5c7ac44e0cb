"""TensorBoard itself shows our logs: a real `tensorboard --logdir` server on a
loopback port reads the event files written by `tg.tensorboard.SummaryWriter`
and by `fit(log_dir=...)`, its HTTP data API serves the runs, the scalars (the
values we wrote), the histograms and the graph, and headless Chromium renders
its Time Series and Graphs dashboards.

What the browser shows is checked twice: the page's DOM (Chromium's
--dump-dom; the Time Series dashboard is Angular, its cards are in the light
DOM, and with ?forceSVG=true its charts are SVG paths) must name every run and
tag, show the last accuracy and draw one line per run through the epochs'
values; each screenshot must be TensorBoard's page (its orange toolbar) with
content, the graph's (a Polymer dashboard in shadow DOM, which --dump-dom
leaves out) with the "net" scope drawn as a filled box. The screenshots are kept
as test artifacts: in the test's tmp_path, and copied to $TENSORGRAPH_ARTIFACTS
when that is set (CI keeps them for a person to look at).

The server and Chromium run in their own process groups with time limits and
are killed (the whole group) in a `finally`; the test checks that no process
of either group survives. Slow (about 20 s: training and writing the logs,
TensorBoard's start, 2 s, and two page loads, 4-5 s each), so marked `slow`:
CI runs it, `make test` does not. Needs the tensorboard package and Chromium; skips locally
without them and fails in CI (TENSORGRAPH_REQUIRE_ALL=1).
"""
from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require, require_module
from tensorgraph import data, losses, nn, optim, train
from test_draw_browser import CHROMIUM, FLAGS

pytestmark = pytest.mark.slow

START_TIMEOUT = 90.0     # seconds for TensorBoard to listen and load the runs (a busy CI box)
BROWSER_TIMEOUT = 120.0  # seconds for one Chromium page load
WINDOW = (1366, 900)
ORANGE = (245, 124, 0)   # TensorBoard's toolbar: its app rendered, not an error page


# -- the logs ------------------------------------------------------------------------

def write_logs(root: Path) -> dict[str, Any]:
    """Two sources of runs under `root`: "own" (a user's loop with the writer:
    scalars, a histogram, the graph of a model's loss) and "fit" (fit's
    "fit/train" and "fit/validation"). Returns what was written."""
    X, y = data.xor()
    net = nn.FeedForward([2, 4, 2], activation="tanh", seed=0, name="net")
    own_loss = [1.0 / (step + 1) for step in range(5)]
    with tg.tensorboard.SummaryWriter(root / "own") as w:
        for step, v in enumerate(own_loss):
            w.add_scalar("loss", v, step)
            w.add_histogram("weight", net.layers[0].weight, step)
        loss = losses.cross_entropy(net(tg.tensor(X, name="x")), tg.tensor(y, name="targets"))
        graph = tg.tensorboard.graph_def(loss, model=net)
        w.add_graph(graph)
    # lr=1: the accuracy curves go up and down (and differ), so that the chart's
    # lines can be told apart and checked against the values
    hist = train.fit(net, losses.cross_entropy, optim.SGD(net.parameters(), lr=1.0), (X, y),
                     epochs=3, val=(X, y), batch_size=2, seed=0, progress=False,
                     log_dir=root / "fit")
    return {"own_loss": own_loss, "graph": graph, "history": hist.history,
            "parameters": [n for n, _ in net.named_parameters()]}


# -- processes -----------------------------------------------------------------------

def stop_group(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Kill `proc`'s whole process group (it leads one: start_new_session),
    politely then not, and reap it; fail if any process of the group survives."""
    pgid = proc.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:   # the leader ended: its children get the hard stop
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        break
    deadline = time.monotonic() + timeout
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not group_alive(pgid), f"processes of group {pgid} ({proc.args!r}) survived"


def group_alive(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid` (from /proc)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(int(stat.parent.name))
    return alive


@contextlib.contextmanager
def tensorboard_server(logdir: Path, log: Path, runs: set[str]) -> Iterator[str]:
    """`tensorboard --logdir` on 127.0.0.1 (a port it picks: --port 0), in its
    own process group; yields its base URL once /data/runs lists `runs`."""
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
           "--host", "127.0.0.1", "--port", "0",
           "--load_fast", "false",    # the Python reader: no Rust data server to start
           "--reload_interval", "1"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        url = None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            text = log.read_text(errors="replace")
            if proc.poll() is not None:
                pytest.fail(f"tensorboard exited with {proc.returncode}:\n{text[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"tensorboard did not serve runs {sorted(runs)} within "
                            f"{START_TIMEOUT:.0f} s:\n{text[-3000:]}")
            if url is None:
                m = re.search(r"TensorBoard \S+ at (http://127\.0\.0\.1:\d+)/", text)
                url = m.group(1) if m else None
            if url is not None:
                with contextlib.suppress(OSError, ValueError):   # not answering yet
                    if set(get_json(url, "/data/runs", timeout=5)) >= runs:
                        break
            time.sleep(0.25)
        yield url
    finally:
        stop_group(proc)


def get(url: str, path: str, timeout: float = 30.0, **query: str) -> bytes:
    q = f"?{urllib.parse.urlencode(query)}" if query else ""
    with urllib.request.urlopen(f"{url}{path}{q}", timeout=timeout) as r:
        assert r.status == 200, (path, r.status)
        return r.read()


def get_json(url: str, path: str, timeout: float = 30.0, **query: str) -> Any:
    return json.loads(get(url, path, timeout, **query))


def browse(url: str, profile: Path, shot: Path) -> str:
    """Load `url` in headless Chromium (its own process group, a time limit):
    the screenshot to `shot`, the rendered DOM returned."""
    assert CHROMIUM is not None
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
           f"--window-size={WINDOW[0]},{WINDOW[1]}",
           "--virtual-time-budget=10000",   # lets the app fetch its data and draw
           "--dump-dom", f"--screenshot={shot}", url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=BROWSER_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish {url} within {BROWSER_TIMEOUT:.0f} s")
    finally:
        stop_group(proc)
    assert proc.returncode == 0, err[-3000:]
    return out


def visible_text(dom: str) -> str:
    """The DOM's text, without scripts and styles, whitespace collapsed."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom))).strip()


def raw_lines(dom: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (x, y) points of the first chart's raw-data lines (the faint ones
    behind the smoothed curves), from forceSVG's <path d="M x,y L x,y ...">."""
    chart = dom[dom.index("<line-chart"):]
    chart = chart[:chart.index("</line-chart>")]
    lines = []
    raw = r'<path d="(M[^"]*)" style="fill: none; stroke: [^"]*opacity: 0\.25'
    for d in re.findall(raw, chart):
        xy = np.array([[float(v) for v in p.split(",")] for p in re.split(r"[ML]", d)[1:]])
        lines.append((xy[:, 0], xy[:, 1]))
    return lines


def drawn(ys: np.ndarray, values: list[float]) -> bool:
    """Whether pixel heights `ys` plot `values`: an affine map, upwards (SVG's
    y grows downwards), to a pixel."""
    v = np.asarray(values, dtype=np.float64)
    if np.ptp(v) == 0:
        return bool(np.ptp(ys) < 1)
    slope, offset = np.polyfit(v, ys, 1)
    return bool(slope < 0 and np.abs(slope * v + offset - ys).max() < 1)


def read_png(path: Path) -> np.ndarray:
    """The screenshot as an (height, width, 3) uint8 array (checked to be a PNG)."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    image = require_module("matplotlib.image").imread(path)
    return np.round(image[..., :3] * 255).astype(np.uint8)


def check_screenshot(path: Path) -> np.ndarray:
    """TensorBoard's page, not blank; returns the area below its toolbar."""
    pixels = read_png(path)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0]), pixels.shape
    toolbar = pixels[5:55].reshape(-1, 3)
    assert (toolbar == ORANGE).all(axis=1).mean() > 0.8, f"{path.name}: no TensorBoard toolbar"
    body = pixels[70:]
    colours = len(np.unique(body.reshape(-1, 3), axis=0))
    non_white = (body < 250).any(axis=2).mean()
    assert colours > 50 and non_white > 0.01, f"{path.name} looks blank: {colours} colours, " \
                                               f"{non_white:.1%} non-white"
    return body


def longest_run(mask: np.ndarray) -> np.ndarray:
    """Per row of a boolean image, the length of its longest run of True."""
    padded = np.pad(mask.astype(np.int8), ((0, 0), (1, 1)))
    runs = []
    for row in np.diff(padded, axis=1):
        starts, ends = np.flatnonzero(row == 1), np.flatnonzero(row == -1)
        runs.append(int((ends - starts).max()) if starts.size else 0)
    return np.array(runs)


def has_box(area: np.ndarray, width: int, height: int) -> bool:
    """Whether `area` holds a filled rectangle, at least `width` x `height`
    pixels, of one colour other than the background (the most common colour)
    and white: at least `height` consecutive rows each with a run of `width`
    to half the area's width of pixels of that colour. Text, lines and
    outlines are thinner; the graph's scope boxes are filled (the label splits
    its rows into two runs: `width` is less than half the box)."""
    colours, counts = np.unique(area.reshape(-1, 3), axis=0, return_counts=True)
    order = np.argsort(-counts)
    for i in order[1:9]:
        c = colours[i]
        if (c >= 250).all() or counts[i] < width * height:
            continue
        runs = longest_run((area == c).all(axis=2))
        wide = (runs >= width) & (runs <= area.shape[1] // 2)
        streak = best = 0
        for w in wide:
            streak = streak + 1 if w else 0
            best = max(best, streak)
        if best >= height:
            return True
    return False


def keep(shots: list[Path]) -> None:
    """Copy the screenshots to $TENSORGRAPH_ARTIFACTS if set (CI's artifacts)."""
    folder = os.environ.get("TENSORGRAPH_ARTIFACTS")
    if folder:
        target = Path(folder) / "tensorboard"
        target.mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, target / shot.name)
    print("\nscreenshots:", *shots, sep="\n  ")


# -- the test ------------------------------------------------------------------------

def test_tensorboard_serves_and_draws_our_logs(tmp_path: Path) -> None:
    require_module("tensorboard")
    require(CHROMIUM is not None, "Chromium not installed (apt-get install chromium)")
    graph_pb2 = require_module("tensorboard.compat.proto.graph_pb2")
    text_format = require_module("google.protobuf.text_format")

    logdir = tmp_path / "logs"
    wrote = write_logs(logdir)
    runs = {"own", "fit/train", "fit/validation"}
    hist = wrote["history"]
    expected = {("own", "loss"): wrote["own_loss"]}
    for key, values in hist.items():
        expected[("fit/validation", key[4:]) if key.startswith("val_") else ("fit/train", key)] \
            = values
    shots_dir = tmp_path / "screenshots"
    shots_dir.mkdir()
    t0 = time.monotonic()
    with tensorboard_server(logdir, tmp_path / "tensorboard.log", runs) as url:
        started = time.monotonic() - t0
        # -- the data API: what the dashboards draw --
        assert sorted(get_json(url, "/data/runs")) == sorted(runs)
        tags = get_json(url, "/data/plugin/scalars/tags")
        assert {run: sorted(t) for run, t in tags.items()} == \
            {run: sorted(tag for r, tag in expected if r == run) for run in runs}
        for (run, tag), values in expected.items():
            points = get_json(url, "/data/plugin/scalars/scalars", run=run, tag=tag)
            assert [step for _, step, _ in points] == list(range(len(values))), (run, tag)
            # simple_value is a float32 in the proto
            np.testing.assert_array_equal([v for _, _, v in points], np.float32(values),
                                          err_msg=f"{run}/{tag}")
        histograms = get_json(url, "/data/plugin/histograms/tags")
        assert sorted(histograms["own"]) == ["weight"]
        assert sorted(histograms["fit/train"]) == sorted(wrote["parameters"])
        info = get_json(url, "/data/plugin/graphs/info")
        assert sorted(run for run, i in info.items() if i["run_graph"]) == ["fit/train", "own"]
        served = text_format.Parse(get(url, "/data/plugin/graphs/graph", run="own").decode(),
                                   graph_pb2.GraphDef())
        assert served == wrote["graph"]
        fit_graph = text_format.Parse(
            get(url, "/data/plugin/graphs/graph", run="fit/train").decode(), graph_pb2.GraphDef())
        assert {n.name: list(n.input) for n in fit_graph.node}["net/layers/0/matmul"] == \
            ["x", "net/layers/0/weight"]

        # -- the dashboards in a browser --
        t1 = time.monotonic()
        series_png, graphs_png = shots_dir / "timeseries.png", shots_dir / "graphs.png"
        try:
            # forceSVG: the charts as SVG paths in the DOM (and drawn at once),
            # not WebGL in a worker, which headless Chromium may not draw in time
            series_dom = browse(f"{url}/?forceSVG=true#timeseries", tmp_path / "profile",
                                series_png)
            graphs = visible_text(browse(f"{url}/#graphs", tmp_path / "profile", graphs_png))
        finally:
            keep([p for p in (series_png, graphs_png) if p.exists()])
        browsed = time.monotonic() - t1

    # Time Series: every run in the selector, every tag a card group, the first
    # card (accuracy) with its data table (run, last smoothed and raw value, last
    # step) and a line per run through its points
    series = visible_text(series_dom)
    for run in runs:
        assert f" {run} " in f" {series} ", (run, series[:2000])
    for tag in {t for _, t in expected} | {"weight", *wrote["parameters"]}:
        assert f" {tag} " in series, (tag, series[:2000])
    last = len(hist["accuracy"]) - 1
    m = re.search(rf"fit/train (\S+) (\S+) {last} ", series)
    assert m, series[:2000]
    assert float(m.group(2)) == pytest.approx(hist["accuracy"][-1], abs=1e-3)
    lines = raw_lines(series_dom)
    assert len(lines) == 2, series_dom[series_dom.find("<line-chart"):][:3000]
    plotted = set()
    for xs, ys in lines:
        assert len(xs) == len(hist["accuracy"])
        assert np.all(np.diff(xs) > 0) and np.ptp(np.diff(xs)) < 0.5     # steps 0, 1, 2
        plotted |= {key for key in ("accuracy", "val_accuracy") if drawn(ys, hist[key])}
    assert plotted == {"accuracy", "val_accuracy"}, (lines, hist)
    check_screenshot(series_png)

    # Graphs: the Polymer dashboard lives in shadow DOM (not in --dump-dom); its
    # screenshot must show the graph: the "net" scope as a filled box
    assert "Graphs" in graphs or "graphs" in graphs
    body = check_screenshot(graphs_png)
    graph_area = body[:, 350:]                     # right of the side panel
    assert has_box(graph_area, 40, 20), f"no scope box drawn in {graphs_png}"
    print(f"tensorboard up in {started:.1f} s, two dashboards in {browsed:.1f} s")
