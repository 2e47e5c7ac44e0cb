"""tensorgraph/text.py: the polarity loader on files written here (Latin-1
bytes that are not UTF-8, empty lines, gzip, a missing file, the encoding
and errors arguments), the slice shipped in the package (its SOURCE.md
checksums), Vocab, pad_batch and the seeded split."""
from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph.text import POLARITY_SMALL, Vocab, load_polarity, pad_batch, tokenize, \
    train_test_split


def _corpus(tmp_path: Path, pos: bytes, neg: bytes, gz: bool = False) -> Path:
    for name, body in (("rt-polarity.pos", pos), ("rt-polarity.neg", neg)):
        if gz:
            (tmp_path / (name + ".gz")).write_bytes(gzip.compress(body))
        else:
            (tmp_path / name).write_bytes(body)
    return tmp_path


POS = b"a clich\xe9 , but fun \x85 . \n\n  good \x97 really good  \n"
NEG = b"dull .\r\nbad \xff\xfe bytes\n"


@pytest.mark.parametrize("gz", [False, True])
def test_latin1_by_default_empty_lines_skipped(tmp_path: Path, gz: bool) -> None:
    s, y = load_polarity(_corpus(tmp_path, POS, NEG, gz))
    # \x85 (U+0085 in Latin-1, a line break to str.splitlines) stays inside its line
    assert s == ["a clich\xe9 , but fun \x85 .", "good \x97 really good", "dull .", "bad \xff\xfe bytes"]
    assert y.dtype == np.int64 and y.tolist() == [1, 1, 0, 0]


def test_encoding_and_errors_arguments(tmp_path: Path) -> None:
    d = _corpus(tmp_path, POS, NEG)
    s, _ = load_polarity(d, encoding="utf-8")                 # errors="replace" by default
    assert s[0] == "a clich\ufffd , but fun \ufffd ." and s[3] == "bad \ufffd\ufffd bytes"
    s, _ = load_polarity(d, encoding="utf-8", errors="ignore")
    assert s[0] == "a clich , but fun  ."
    s, _ = load_polarity(d, encoding="cp1252")               # \x97 is a dash there
    assert s[1] == "good \u2014 really good"
    with pytest.raises(ValueError, match=r"rt-polarity.pos, line 1: byte 0xe9 is not valid "
                                         r"utf-8 \(errors='strict'"):
        load_polarity(d, encoding="utf-8", errors="strict")
    with pytest.raises(ValueError, match="unknown encoding: klingon"):
        load_polarity(d, encoding="klingon")


def test_missing_files_and_directories(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"'.*nowhere' does not exist"):
        load_polarity(tmp_path / "nowhere")
    (tmp_path / "rt-polarity.pos").write_bytes(b"ok\n")
    with pytest.raises(FileNotFoundError, match=r"no rt-polarity.neg \(or rt-polarity.neg.gz\)"):
        load_polarity(tmp_path)
    with pytest.raises(FileNotFoundError, match="is a file, not a directory"):
        load_polarity(tmp_path / "rt-polarity.pos")
    (tmp_path / "rt-polarity.neg.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="is not a readable gzip file"):
        load_polarity(tmp_path)


def test_the_shipped_slice_matches_its_source_note() -> None:
    note = (Path(POLARITY_SMALL) / "SOURCE.md").read_text(encoding="utf-8")
    for name in ("rt-polarity.pos.gz", "rt-polarity.neg.gz"):
        row = re.search(rf"\| {re.escape(name)} \| (\d+) \| (\d+) \| (\w+) \| (\d+) \| (\w+) \|",
                        note)
        assert row, name
        packed = (Path(POLARITY_SMALL) / name).read_bytes()
        raw = gzip.decompress(packed)
        assert raw.count(b"\n") == int(row[1]) and len(raw) == int(row[2])
        assert hashlib.sha256(raw).hexdigest() == row[3]
        assert len(packed) == int(row[4]) and hashlib.sha256(packed).hexdigest() == row[5]
    s, y = load_polarity()
    assert len(s) == 2000 and y.sum() == 1000 and (y[:1000] == 1).all()
    assert s[0].startswith("the rock is destined to be the 21st century's new")
    assert sum("\xe9" in x for x in s) > 5              # Latin-1 read as such


def test_vocab_build_encode_decode() -> None:
    sents = [tokenize("The cat sat ."), tokenize("the dog sat"), tokenize("a cat ! the")]
    v = Vocab.build(sents)
    assert v.itos[:2] == ["<pad>", "<unk>"] and v.pad_id == 0 and v.unk_id == 1
    assert v.itos[2:5] == ["the", "cat", "sat"]          # by count, ties first seen first
    assert len(v) == 2 + 7
    assert v.encode(["the", "zebra", "cat"]) == [2, 1, 3]
    assert v.decode([2, 3, 0, 0]) == ["the", "cat"]
    assert v.decode(np.array([2, 0]), skip_pad=False) == ["the", "<pad>"]
    small = Vocab.build(sents, min_freq=2)
    assert small.itos == ["<pad>", "<unk>", "the", "cat", "sat"]
    assert Vocab.build(sents, max_size=4).itos == ["<pad>", "<unk>", "the", "cat"]
    with pytest.raises(TypeError, match="tokenize it first"):
        Vocab.build(["the cat"])
    with pytest.raises(TypeError, match="give a list of tokens, not a str"):
        v.encode("the cat")
    with pytest.raises(IndexError, match="id 99 is out of range for a vocabulary of 9 tokens"):
        v.decode([99])
    with pytest.raises(ValueError, match="max_size=1 leaves no room"):
        Vocab.build(sents, max_size=1)


def test_pad_batch() -> None:
    ids, n = pad_batch([[5, 6, 7], [8], []])
    assert ids.dtype == np.int64 and n.dtype == np.int64
    np.testing.assert_array_equal(ids, [[5, 6, 7], [8, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(n, [3, 1, 0])
    ids, n = pad_batch([[5, 6, 7], [8]], pad_id=9, max_len=2)
    np.testing.assert_array_equal(ids, [[5, 6], [8, 9]])
    np.testing.assert_array_equal(n, [2, 1])
    # ready for an Embedding with padding_idx and attention's lengths
    emb = tg.nn.Embedding(10, 3, padding_idx=0, seed=0)
    out = emb(pad_batch([[5, 6, 7], [8]])[0])
    np.testing.assert_array_equal(out.data[1, 1:], 0)


def test_seeded_split() -> None:
    s, y = [f"s{i}" for i in range(50)], np.arange(50) % 2
    (a, ya), (b, yb) = train_test_split(s, y, test=0.1, seed=3)
    assert len(a) == 45 and len(b) == 5 and sorted(a + b) == sorted(s)
    assert [int(x[1:]) % 2 for x in b] == yb.tolist()
    (a2, _), (b2, _) = train_test_split(s, y, test=0.1, seed=3)
    assert a2 == a and b2 == b
    assert train_test_split(s, y, test=0.1, seed=4)[1][0] != b
    with pytest.raises(ValueError, match=r"50 sentences but labels of shape \(3,\)"):
        train_test_split(s, y[:3])
