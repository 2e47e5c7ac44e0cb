"""onnx and onnxruntime are an optional extra (`pip install tensorgraph[onnx]`):
imported when a model is exported or loaded, never at `import tensorgraph`."""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingPackageError", "require", "INSTALL_HINT"]

INSTALL_HINT = "pip install onnx onnxruntime"


class MissingPackageError(ImportError):
    """The optional package that ONNX export or loading needs is not installed."""


def require(name: str, purpose: str) -> ModuleType:
    """Import `name` or raise `MissingPackageError` naming what needs it and
    the pip command that installs the extra."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingPackageError(
            f"{purpose} needs the Python package {name!r}, which is not installed: "
            f"{INSTALL_HINT}", name=name) from exc
