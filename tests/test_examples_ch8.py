"""The chapter-8 example (examples/dnc.py): its task generators produce the
layout its docstring documents (checked position by position here), the
bit-error count is the one defined there, and a --quick run writes its
figures and results keys."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import Run, load_example, require_module


@pytest.fixture(scope="module")
def dnc():
    return load_example("dnc")


def test_copy_layout(dnc) -> None:
    """Vectors, then the delimiter (last channel) alone at t = L, then blank
    inputs; the target is zero until the delimiter and then the input vectors."""
    L, bits, B = 5, 6, 7
    x, target, answer = dnc.copy_batch(np.random.default_rng(0), B, L, bits)
    assert x.shape == (2 * L + 1, B, bits + 1) and target.shape == (2 * L + 1, B, bits)
    assert set(np.unique(x)) <= {0.0, 1.0}
    assert np.all(x[:L, :, bits] == 0) and np.all(x[L, :, bits] == 1)
    assert np.all(x[L, :, :bits] == 0) and np.all(x[L + 1:] == 0)
    assert np.all(target[:L + 1] == 0)
    np.testing.assert_array_equal(target[L + 1:], x[:L, :, :bits])
    assert answer.tolist() == [False] * (L + 1) + [True] * L
    assert x[:L, :, :bits].std() > 0.3                     # random bits, not constant
    again, _, _ = dnc.copy_batch(np.random.default_rng(0), B, L, bits)
    np.testing.assert_array_equal(x, again)                # seeded


def test_recall_layout(dnc) -> None:
    """Item delimiters every item_len + 1 steps, the queried item between two
    query delimiters, and the target the item that followed it."""
    n, ln, bits, B = 4, 3, 6, 50
    x, target, answer, q = dnc.recall_batch(np.random.default_rng(1), B, n, ln, bits)
    T = n * (ln + 1) + 2 * ln + 2
    assert x.shape == (T, B, bits + 2) and target.shape == (T, B, bits) and answer.shape == (T,)
    assert set(q.tolist()) <= set(range(n - 1)) and len(set(q.tolist())) == n - 1
    for b in range(B):
        items = [x[i * (ln + 1) + 1:(i + 1) * (ln + 1), b, :bits] for i in range(n)]
        for i in range(n):
            assert x[i * (ln + 1), b, bits] == 1 and not x[i * (ln + 1), b, :bits].any()
        t0 = n * (ln + 1)
        assert x[t0, b, bits + 1] == 1 and x[t0 + ln + 1, b, bits + 1] == 1
        np.testing.assert_array_equal(x[t0 + 1:t0 + 1 + ln, b, :bits], items[q[b]])
        assert not x[T - ln:, b].any()                      # the answer steps are blank
        np.testing.assert_array_equal(target[T - ln:, b], items[q[b] + 1])
        assert not target[:T - ln, b].any()
    assert x[:, :, bits].sum() == n * B and x[:, :, bits + 1].sum() == 2 * B
    assert answer.tolist() == [False] * (T - ln) + [True] * ln
    with pytest.raises(ValueError, match="recall_batch: need at least 2 items"):
        dnc.recall_batch(np.random.default_rng(0), 2, 1, ln, bits)


def test_bit_errors_counts_wrong_signs_on_answer_steps(dnc) -> None:
    target = np.zeros((3, 2, 2), np.float32)
    target[2] = [[1, 0], [1, 1]]
    answer = np.array([False, False, True])
    logits = np.full((3, 2, 2), 5.0, np.float32)           # outside the answer: ignored
    logits[2] = [[3.0, -1.0], [-2.0, 0.0]]                   # seq 0 right; seq 1: two wrong
    np.testing.assert_array_equal(dnc.bit_errors(logits, target, answer), [0, 2])


def test_lstm_baseline_matches_the_parameter_count(dnc) -> None:
    cfg = dnc.CONFIGS["full"]
    model = dnc.DNCNet(7, 6, cfg, seed=0)
    h = dnc.lstm_hidden_for(model.num_parameters(), 7, 6)
    lstm = dnc.LSTMNet(7, 6, h, seed=0)
    assert abs(lstm.num_parameters() - model.num_parameters()) < 0.02 * model.num_parameters()
    assert 4 * h * (7 + h) + 8 * h + 6 * h + 6 == lstm.num_parameters()   # the docstring's count


def test_quick_run_in_the_gallery(dnc, gallery_build: Run) -> None:
    """The gallery's --quick build ran the example: its figures and results keys."""
    require_module("matplotlib")
    gallery_build.check("examples/gallery.py --quick")
    out = gallery_build.out / "dnc"
    manifest = json.loads((out / "results.json").read_text())
    assert set(manifest["figures"]) == {"dnc_in_action.svg", "errors.svg"}
    for f in manifest["figures"]:
        assert (out / f).read_text().lstrip().startswith("<")
    res = manifest["results"]
    cfg = dnc.CONFIGS["quick"]
    for task, key in (("copy", "copy_eval"), ("recall", "recall_eval")):
        assert res[f"{task}_eval"] == list(cfg[key])
        for kind in ("dnc", "lstm"):
            errs = res[f"{task}_{kind}_bit_errors"]
            assert len(errs) == len(cfg[key]) and all(e >= 0 for e in errs)
    # 3 training steps: about half of the answer bits are still wrong
    assert 0 < res["copy_dnc_bit_errors"][-1] <= cfg["copy_eval"][-1] * cfg["bits"]
    assert res["shown_length"] == cfg["shown"]
    svg = (out / "dnc_in_action.svg").read_text()
    for text in ("write weighting", "read weighting", "usage", "time step"):
        assert text in svg


@pytest.mark.slow
def test_gallery_run_learns_to_copy(dnc, tmp_path: Path) -> None:
    """The gallery's run (about 15 s CPU): the DNC copies the trained lengths
    almost without error and makes fewer errors than the LSTM at every length."""
    require_module("matplotlib")
    res = dnc.run(tmp_path)["results"]
    errs = dict(zip(res["copy_eval"], res["copy_dnc_bit_errors"]))
    assert errs[3] <= 0.1 and errs[5] <= 0.5
    assert all(d < s for d, s in zip(res["copy_dnc_bit_errors"], res["copy_lstm_bit_errors"]))


def test_unknown_task_is_refused(dnc, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dnc.run: task must be 'both', 'copy' or 'recall', "
                                         "got 'sort'"):
        dnc.run(tmp_path, quick=True, task="sort")
