"""The core (tensor, autograd, ops, gradcheck, graph) stands alone: it imports
nothing from the outer layers (nn, draw, train, io, ...), read from each core
file's import statements."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tensorgraph"
OUTER = ("nn", "draw", "train", "io", "losses", "optim", "data", "text", "backends", "onnx",
         "tensorboard", "rl")


def core_files() -> list[Path]:
    files = [PACKAGE / f for f in ("tensor.py", "autograd.py", "gradcheck.py", "_tensor_api.py",
                                    "graph.py", "passes.py")]
    return files + sorted((PACKAGE / "ops").glob("*.py"))


def _imported(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """Absolute dotted names of everything `path` imports (relative imports resolved)."""
    rel = path.relative_to(root).with_suffix("")
    package = list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out += [f"{mod}.{a.name}" for a in node.names] + [mod]
    return out


def test_core_imports_nothing_from_the_outer_layers() -> None:
    files = core_files()
    assert len(files) > 8 and all(f.exists() for f in files)
    for f in files:
        for name in _imported(f):
            parts = name.split(".")
            if parts[0] == "tensorgraph" and len(parts) > 1:
                assert parts[1] not in OUTER and not parts[1].startswith("draw"), \
                    f"{f.relative_to(PACKAGE.parent)} imports {name}"
            assert parts[0] not in ("graphviz", "matplotlib", "wasmtime"), f"{f} imports {name}"


def test_the_check_sees_relative_imports(tmp_path: Path) -> None:
    # The checker itself: `from ..nn import x` inside tensorgraph/ops must resolve.
    f = tmp_path / "tensorgraph" / "ops" / "bad.py"
    f.parent.mkdir(parents=True)
    f.write_text("from ..nn import Layer\nfrom . import registry\nimport tensorgraph.draw\n")
    names = _imported(f, tmp_path)
    assert {"tensorgraph.nn.Layer", "tensorgraph.ops.registry", "tensorgraph.draw"} <= set(names)


def test_import_tensorgraph_leaves_rl_and_gymnasium_out() -> None:
    # tensorgraph.rl is imported by name only; gymnasium only when an environment is made.
    code = ("import sys, tensorgraph\n"
            "print(sorted(m for m in ('tensorgraph.rl', 'gymnasium', 'ale_py') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=PACKAGE.parent, env={"PYTHONPATH": str(PACKAGE.parent), "PATH": ""},
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
