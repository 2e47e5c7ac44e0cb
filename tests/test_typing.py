"""The Tensor API that type checkers and IDEs see is the one that exists.

Tensor's methods and operators come from the op declarations through a
generated file (tensorgraph/_tensor_api.py); these tests fail when it is out of
date, and run mypy on a short user script."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph import Tensor
from conftest import require
from tensorgraph.ops import codegen

ROOT = Path(__file__).resolve().parent.parent


def test_generated_files_are_up_to_date() -> None:
    stale = codegen.outdated()
    assert not stale, (f"{[str(p.relative_to(ROOT)) for p in stale]} out of date with the op "
                       f"declarations: run `{codegen.COMMAND}`")


def test_every_declared_method_and_operator_exists_on_tensor() -> None:
    for d in tg.OPS.decls:
        for name in d.methods + d.properties + d.operators:
            assert name in vars(tg._tensor_api.TensorMethods), name
        for name in d.methods:
            assert getattr(tg.Tensor, name).__qualname__ == f"TensorMethods.{name}"


def test_every_exported_function_is_in_tg() -> None:
    for d in tg.OPS.decls:
        if d.export:
            assert getattr(tg, d.function.__name__) is d.function


def test_methods_call_the_declared_function() -> None:
    x = tg.tensor(np.array([[1.0, -2.0], [3.0, 4.0]]), requires_grad=True)
    assert x.sum(axis=0).node.op is tg.OPS["sum"]
    assert x.relu().node.op is tg.OPS["relu"]
    assert (x @ x).node.op is tg.OPS["matmul"]
    assert x.T.node.op is tg.OPS["transpose"]
    assert x.reshape(4).shape == (4,) and x.reshape((1, 4)).shape == (1, 4)


SCRIPT = '''
import numpy as np
import pytest
import tensorgraph as tg

x = tg.tensor(np.ones((4, 3)), requires_grad=True)
y = tg.tensor(np.ones((4, 3)))
w = tg.tensor(np.ones((3, 2)))
z: tg.Tensor = x + y
z = 2.0 * x - y / 3 + x ** 2
h: tg.Tensor = x @ w
s: tg.Tensor = x.sum(axis=0)
r: tg.Tensor = x.relu()
m = (x > 0) & (x < 1)
t: tg.Tensor = x.T.mean(dim=1, keepdim=True)
layer = tg.nn.Layer(3, 2)
out: tg.Tensor = tg.exp(x).reshape(3, 4)[0]
'''


@pytest.mark.slow   # mypy takes seconds: a developer check, run by CI (make test-slow)
def test_mypy_sees_the_tensor_api(tmp_path: Path) -> None:
    require(importlib.util.find_spec("mypy") is not None,
            "mypy is not installed (pip install mypy, or the `test` extra)")
    script = tmp_path / "user.py"
    script.write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    # follow-imports=silent: errors inside tensorgraph are not the user's, as for
    # an installed package; its types are still used to check the script.
    proc = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir",
                           str(tmp_path / "cache"), "--follow-imports=silent",
                           "--ignore-missing-imports", str(script)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # and it does check: a misspelt method is an error
    script.write_text(textwrap.dedent(SCRIPT) + "x.sume()\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir",
                           str(tmp_path / "cache"), "--follow-imports=silent",
                           "--ignore-missing-imports", str(script)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and '"Tensor" has no attribute "sume"' in proc.stdout, proc.stdout


def test_codegen_check_names_the_command_when_stale(tmp_path: Path, monkeypatch, capsys) -> None:
    assert codegen.main(["--check"]) == 0
    stale = tmp_path / "_tensor_api.py"
    stale.write_text(codegen.api_source().replace("def relu(", "def relu_old("), encoding="utf-8")
    monkeypatch.setattr(codegen, "API_FILE", stale)
    assert codegen.main(["--check"]) == 1
    assert "python -m tensorgraph.ops.codegen" in capsys.readouterr().err


def test_a_method_with_an_unknown_annotation_is_refused() -> None:
    def f(self: Tensor, n: np.ndarray) -> Tensor:
        return self
    import pytest
    with pytest.raises(ValueError, match=r"annotation 'np\.ndarray' uses 'np\.ndarray'"):
        codegen._method("f", f)
