"""tg.draw_attention (tensorgraph/draw/attention.py): the image drawn holds
the weights, the tick labels are the tokens (rows: target, columns: source),
the SVG is deterministic and carries the tokens as text, and wrong shapes
are refused naming them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require_module

SRC = ["le", "chat", "$5", "<eos>"]
TGT = ["the", "cat", "costs", "5$", "<eos>"]


def _weights(seed: int = 0) -> np.ndarray:
    w = np.random.default_rng(seed).random((5, 4))
    return w / w.sum(axis=1, keepdims=True)


def test_image_is_the_weights_and_ticks_are_the_tokens(tmp_path: Path) -> None:
    require_module("matplotlib")
    w = _weights()
    chart = tg.draw_attention(tg.tensor(w), SRC, TGT, title="fr -> en")
    assert isinstance(chart, tg.draw.Chart)
    (ax,) = [a for a in chart.figure.axes if a.get_gid() == "attention"]
    (im,) = ax.get_images()
    np.testing.assert_array_equal(np.asarray(im.get_array()), w)
    np.testing.assert_array_equal(chart.images[0], w)
    assert [t.get_text() for t in ax.get_xticklabels()] == SRC
    assert [t.get_text() for t in ax.get_yticklabels()] == TGT
    assert list(ax.get_xticks()) == [0, 1, 2, 3] and list(ax.get_yticks()) == [0, 1, 2, 3, 4]
    assert im.get_clim() == (0.0, 1.0)
    svg = chart.svg()
    for tok in ("chat", "$5", "5$", "&lt;eos&gt;", "fr -&gt; en"):
        assert tok in svg, tok           # text, escaped, never mathtext
    assert tg.draw_attention(w, SRC, TGT, title="fr -> en").svg() == svg     # deterministic
    assert chart.save(tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_batch_of_one_vmax_and_annotations() -> None:
    require_module("matplotlib")
    w = _weights(1) * 0.5
    chart = tg.draw_attention(w[None], SRC, TGT, vmax=None, annotate=True)
    (im,) = chart.figure.axes[0].get_images()
    assert im.get_clim() == (0.0, w.max())
    texts = [t.get_text() for t in chart.figure.axes[0].texts]
    assert texts == [f"{v:.2f}" for v in w.ravel()]


def test_shape_mismatches_are_refused_naming_them() -> None:
    w = _weights()
    with pytest.raises(ValueError, match=r"weights have shape \(5, 4\) \(target x source\), so "
                                         r"source_tokens needs 4 tokens \(the columns\), got 3"):
        tg.draw_attention(w, SRC[:3], TGT)
    with pytest.raises(ValueError, match=r"target_tokens needs 5 tokens \(the rows\), got 4"):
        tg.draw_attention(w, SRC, TGT[:4])
    with pytest.raises(ValueError, match=r"weights must be 2-D .* got shape \(2, 5, 4\)"):
        tg.draw_attention(np.stack([w, w]), SRC, TGT)
    with pytest.raises(TypeError, match="must be a sequence of tokens, not a str"):
        tg.draw_attention(w, "le chat $5 <eos>", TGT)
    with pytest.raises(ValueError, match="NaN or infinite"):
        tg.draw_attention(np.full((5, 4), np.nan), SRC, TGT)
