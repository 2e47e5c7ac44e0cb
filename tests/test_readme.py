"""The README's Python blocks run as written (in a scratch directory)."""
import re
from pathlib import Path

import numpy as np

import tensorgraph as tg

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(_blocks()) >= 2


def test_readme_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in _blocks():
        if "load_mnist" in block:   # needs the real data set, which tests must not read
            continue
        exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    assert "converged after" in out
    assert "True\nTrue" in out                      # second derivative and gradcheck
    assert (tmp_path / "xor_network.svg").read_text().lstrip().startswith(("<?xml", "<svg"))

    # Step 4 draws the gradient of one loss: each parameter's .grad must be that
    # gradient alone, not added to what the training loop's last step left there.
    net, X, t, losses = (namespace[k] for k in ("net", "X", "t", "losses"))
    params = list(net.parameters())
    loss = losses.binary_cross_entropy(net.logits(X), t.reshape(-1, 1))
    fresh = tg.grad(loss, params)
    for p, g in zip(params, fresh):
        np.testing.assert_allclose(p.grad.numpy(), g.numpy(), rtol=1e-6, atol=1e-9)
