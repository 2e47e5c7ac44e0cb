"""tg.draw_memory (tensorgraph/draw/memory.py): one panel per quantity in
the documented order, each image the trace's (rows x time) slice of the
chosen sequence, labelled axes and sizes that follow the trace, a
deterministic SVG, and clear errors for a trace that is not one."""
from __future__ import annotations

import numpy as np
import pytest

import tensorgraph as tg
from conftest import require_module


def _trace(T: int = 7, B: int = 2, N: int = 5, R: int = 2, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"write_weights": rng.random((T, B, N)), "read_weights": rng.random((T, B, R, N)),
            "usage": rng.random((T, B, N)), "link": rng.random((T, B, N, N))}


def test_panels_images_and_labels() -> None:
    require_module("matplotlib")
    tr = _trace()
    x = np.random.default_rng(1).random((7, 3))
    y = np.random.default_rng(2).random((7, 4))
    chart = tg.draw_memory(tr, batch=1, inputs=x, outputs=y, targets=tg.tensor(y),
                           title="copy")
    assert isinstance(chart, tg.draw.Chart)
    names = ["input", "write_weights", "read_weights_0", "read_weights_1", "usage", "output",
             "target"]
    assert list(chart.metrics) == names
    expected = [x.T, tr["write_weights"][:, 1].T, tr["read_weights"][:, 1, 0].T,
                tr["read_weights"][:, 1, 1].T, tr["usage"][:, 1].T, y.T, y.T]
    axes = {ax.get_gid(): ax for ax in chart.figure.axes}
    for name, want, got in zip(names, expected, chart.images):
        np.testing.assert_allclose(got, want)
        (im,) = axes[name].get_images()
        np.testing.assert_allclose(np.asarray(im.get_array()), want)   # rows x time
        assert im.get_clim() == (0.0, 1.0)
        assert axes[name].get_ylabel() == ("channel" if name in ("input", "output", "target")
                                           else "memory row")
    assert axes["target"].get_xlabel() == "time step"
    assert axes["read_weights_1"].get_title(loc="left") == "read weighting (head 1)"
    svg = chart.svg()
    for text in ("write weighting", "read weighting (head 0)", "usage", "time step", "copy"):
        assert text in svg
    assert tg.draw_memory(tr, batch=1, inputs=x, outputs=y, targets=y, title="copy").svg() == svg


def test_one_head_no_usage_and_size_follows_time() -> None:
    """An NTM-like trace (one read head, no usage): two panels, no head number;
    a longer trace gives a wider figure."""
    require_module("matplotlib")
    tr = {k: v for k, v in _trace(R=1).items() if k != "usage"}
    chart = tg.draw_memory(tr)
    assert list(chart.metrics) == ["write_weights", "read_weights_0"]
    assert chart.figure.axes[1].get_title(loc="left") == "read weighting"
    long = {k: np.concatenate([v] * 8) for k, v in tr.items()}
    w_short = chart.figure.get_size_inches()[0]
    assert tg.draw_memory(long).figure.get_size_inches()[0] > w_short


def test_a_real_dnc_trace() -> None:
    require_module("matplotlib")
    dnc = tg.nn.DNC(3, 2, hidden_size=4, memory_size=6, word_size=3, num_reads=2, seed=0)
    x = np.random.default_rng(0).random((5, 2, 3)).astype(np.float32)
    _, _, trace = dnc(x, trace=True)
    chart = tg.draw_memory(trace, batch=-1, inputs=x[:, -1])
    assert chart.images[1].shape == (6, 5)       # memory rows x time
    np.testing.assert_allclose(chart.images[3], trace["read_weights"][:, -1, 1].T)


def test_bad_traces_are_refused_naming_them() -> None:
    tr = _trace()
    with pytest.raises(TypeError, match="draw_memory: trace must be the dict a DNC or NTM "
                                        "returns with trace=True, got ndarray"):
        tg.draw_memory(tr["write_weights"])   # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"draw_memory: trace lacks 'read_weights'"):
        tg.draw_memory({"write_weights": tr["write_weights"]})
    with pytest.raises(ValueError, match=r"trace\['write_weights'\] must be \(time, batch, "
                                         r"rows\), got shape \(7, 5\)"):
        tg.draw_memory({**tr, "write_weights": tr["write_weights"][:, 0]})
    with pytest.raises(ValueError, match=r"trace\['read_weights'\] must be \(time, batch, "
                                         r"heads, rows\) = \(7, 2, R, 5\) to match "
                                         r"write_weights \(7, 2, 5\), got shape \(7, 2, 2, 4\)"):
        tg.draw_memory({**tr, "read_weights": tr["read_weights"][..., :4]})
    with pytest.raises(ValueError, match=r"trace\['usage'\] must be \(time, batch, rows\) = "
                                         r"\(7, 2, 5\), got shape \(6, 2, 5\)"):
        tg.draw_memory({**tr, "usage": tr["usage"][:6]})
    with pytest.raises(ValueError, match="batch must be an index into the trace's batch of "
                                         "2, got 2"):
        tg.draw_memory(tr, batch=2)
    with pytest.raises(ValueError, match=r"inputs must be \(time, channels\) with time = 7 "
                                         r"\(the trace's steps\), got shape \(6, 3\)"):
        tg.draw_memory(tr, inputs=np.zeros((6, 3)))
    bad = tr["usage"].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"trace\['usage'\] holds NaN or infinite values"):
        tg.draw_memory({**tr, "usage": bad})
