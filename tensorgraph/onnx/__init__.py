"""ONNX export (and loading back): a captured `tg.Graph` as an ONNX model that
onnxruntime, Netron or another framework can run.

`export(target, *example_inputs, path=...)` writes a Graph (or a Module or
function, captured first) op by op, each op by its rule in `rules.RULES`;
an op without a rule is refused with its name, scope and the reason.
`load(path)` reads an ONNX model made of the same ops (one exported here, or
an MLP from `torch.onnx.export`) back into a Graph that replays and draws;
each ONNX op type is read by its converter in `importer.CONVERTERS`.

onnx and onnxruntime are an optional extra (`pip install tensorgraph[onnx]`):
nothing here imports them until a model is exported or loaded. The core
(tensor, autograd, ops, graph) never imports this package.
"""
from __future__ import annotations

from ._optional import INSTALL_HINT, MissingPackageError
from .exporter import ExportError, export
from .importer import CONVERTERS, OnnxLoadError, load
from .rules import RULES, Unsupported

__all__ = ["export", "ExportError", "RULES", "Unsupported", "load", "OnnxLoadError",
           "CONVERTERS", "MissingPackageError", "INSTALL_HINT"]
