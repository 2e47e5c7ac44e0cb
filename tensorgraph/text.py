"""Text data (chapters 6 and 7): the sentence-polarity corpus, a vocabulary,
padded batches of token ids, and a seeded train/test split.

Plain Python and numpy, like `data.py`: sentences in, int64 arrays out; a
model embeds them with `nn.Embedding` (id 0 is `<pad>`, so
`nn.Embedding(len(vocab), d, padding_idx=vocab.pad_id)` keeps padding at 0).

The corpus (Pang and Lee 2005, "sentence polarity dataset v1.0"): one
lower-cased, tokenised sentence a line, positive ones in `rt-polarity.pos`,
negative ones in `rt-polarity.neg`, Latin-1 encoded with a few bytes that are
not valid UTF-8. `load_polarity()` with no path reads the 2,000-sentence
slice shipped in the package (tensorgraph/datasets/rt_polarity_small/, see its
SOURCE.md); give the directory of the full corpus for all 10,662.
"""
from __future__ import annotations

import codecs
import gzip
import os
from collections import Counter
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from .data import Seed, _count, _rng

__all__ = ["load_polarity", "POLARITY_SMALL", "tokenize", "Vocab", "pad_batch",
           "train_test_split"]

#: the slice of the corpus shipped in the package (first 1,000 sentences of each class)
POLARITY_SMALL = os.path.join(os.path.dirname(__file__), "datasets", "rt_polarity_small")

PathLike = Union[str, "os.PathLike[str]"]


def _read_lines(path: str, encoding: str, errors: str) -> list[str]:
    with open(path, "rb") as f:
        raw = f.read()
    if path.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"load_polarity: {path} is not a readable gzip file ({e})") from None
    try:
        text = raw.decode(encoding, errors)
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ValueError(f"load_polarity: {path}, line {line}: byte {raw[e.start]:#04x} is not "
                         f"valid {encoding} (errors={errors!r}; the corpus is Latin-1: use "
                         f"encoding='latin-1', or errors='replace')") from None
    # lines end at "\n" only: str.splitlines would also split at U+0085 and
    # U+001C-1E, which Latin-1 reads from bytes 0x85, 0x1c-0x1e inside sentences
    return text.split("\n")


def _find(directory: str, stem: str) -> str:
    for name in (stem, stem + ".gz"):
        p = os.path.join(directory, name)
        if os.path.isfile(p):
            return p
    raise FileNotFoundError(f"load_polarity: no {stem} (or {stem}.gz) in {directory!r}; give "
                            "the directory holding rt-polarity.pos and rt-polarity.neg, or no "
                            "path for the slice shipped with tensorgraph")


def load_polarity(path: Optional[PathLike] = None, encoding: str = "latin-1",
                  errors: str = "replace") -> tuple[list[str], np.ndarray]:
    """Read the sentence-polarity corpus: (sentences, labels), the positive
    sentences first (label 1), then the negative ones (label 0), each in file
    order, stripped of surrounding whitespace; empty lines are skipped.

    path: the directory holding `rt-polarity.pos` and `rt-polarity.neg`
    (either may be gzip-compressed, `.gz`); None reads the slice shipped in
    the package (`POLARITY_SMALL`). Bytes are decoded with `encoding`
    (Latin-1 by default, the corpus's encoding: every byte is a character, so
    nothing fails) and `errors` (Python's codec error handler, used when the
    encoding cannot decode a byte, e.g. encoding="utf-8": "replace" gives
    U+FFFD, "ignore" drops the byte, "strict" raises a ValueError naming the
    file and line)."""
    directory = POLARITY_SMALL if path is None else os.fspath(path)
    try:
        codecs.lookup(encoding)
        codecs.lookup_error(errors)
    except LookupError as e:
        raise ValueError(f"load_polarity: {e}") from None
    if not os.path.isdir(directory):
        what = "is a file, not a directory" if os.path.exists(directory) else "does not exist"
        raise FileNotFoundError(f"load_polarity: {directory!r} {what}; give the directory "
                                "holding rt-polarity.pos and rt-polarity.neg")
    sentences: list[str] = []
    labels: list[int] = []
    for stem, label in (("rt-polarity.pos", 1), ("rt-polarity.neg", 0)):
        for line in _read_lines(_find(directory, stem), encoding, errors):
            s = line.strip()
            if s:
                sentences.append(s)
                labels.append(label)
    return sentences, np.asarray(labels, dtype=np.int64)


def tokenize(sentence: str, lower: bool = True) -> list[str]:
    """Whitespace tokens (the corpus is tokenised already: punctuation is
    split off by spaces), lower-cased unless lower=False."""
    return (sentence.lower() if lower else sentence).split()


class Vocab:
    """A token <-> id map. Ids 0.. go to `specials` (default "<pad>" = 0,
    "<unk>" = 1), then to the tokens by decreasing count (ties: first seen
    first), keeping tokens seen at least `min_freq` times, at most `max_size`
    ids in all (specials included). Unknown tokens encode to `<unk>`."""

    def __init__(self, itos: Sequence[str], unk: Optional[str] = "<unk>",
                 pad: Optional[str] = "<pad>") -> None:
        self.itos = list(itos)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("Vocab: tokens must be distinct")
        for name, tok in (("unk", unk), ("pad", pad)):
            if tok is not None and tok not in self.stoi:
                raise ValueError(f"Vocab: the {name} token {tok!r} is not in the vocabulary")
        self.unk, self.pad = unk, pad

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_freq: int = 1,
              max_size: Optional[int] = None,
              specials: Sequence[str] = ("<pad>", "<unk>")) -> "Vocab":
        """From tokenised sentences (lists of tokens)."""
        if isinstance(sentences, str):
            raise TypeError("Vocab.build: give tokenised sentences (lists of tokens), not a str")
        if min_freq < 1:
            raise ValueError(f"Vocab.build: min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < len(specials):
            raise ValueError(f"Vocab.build: max_size={max_size} leaves no room for the "
                             f"{len(specials)} specials {tuple(specials)}")
        counts: Counter[str] = Counter()
        for s in sentences:
            if isinstance(s, str):
                raise TypeError("Vocab.build: each sentence must be a list of tokens, got a str "
                                f"({s[:30]!r}...); tokenize it first (tg.text.tokenize)")
            counts.update(s)
        spec = set(specials)
        # Counter keeps first-seen order; sorted is stable: ties stay first seen first
        words = [t for t, c in sorted(counts.items(), key=lambda kv: -kv[1])
                 if c >= min_freq and t not in spec]
        if max_size is not None:
            words = words[:max_size - len(specials)]
        specials = list(specials)
        return cls(specials + words, unk="<unk>" if "<unk>" in specials else None,
                   pad="<pad>" if "<pad>" in specials else None)

    @property
    def pad_id(self) -> Optional[int]:
        return None if self.pad is None else self.stoi[self.pad]

    @property
    def unk_id(self) -> Optional[int]:
        return None if self.unk is None else self.stoi[self.unk]

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        """The id of `token` (`<unk>`'s for an unknown one)."""
        i = self.stoi.get(token)
        if i is None:
            if self.unk is None:
                raise KeyError(f"Vocab: token {token!r} is not in the vocabulary (and it has no "
                               "<unk>)")
            return self.stoi[self.unk]
        return i

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Token ids; unknown tokens give `<unk>`'s id."""
        if isinstance(tokens, str):
            raise TypeError("Vocab.encode: give a list of tokens, not a str (tokenize it first)")
        return [self[t] for t in tokens]

    def decode(self, ids: Iterable[int], skip_pad: bool = True) -> list[str]:
        """Tokens of `ids` (an int array or list); `<pad>` left out unless
        skip_pad=False."""
        out = []
        for i in np.asarray(ids).reshape(-1).tolist():
            if not 0 <= i < len(self.itos):
                raise IndexError(f"Vocab.decode: id {i} is out of range for a vocabulary of "
                                 f"{len(self.itos)} tokens")
            if skip_pad and i == self.pad_id:
                continue
            out.append(self.itos[i])
        return out

    def __repr__(self) -> str:
        return f"<Vocab of {len(self)} tokens: {self.itos[:6]}{'...' if len(self) > 6 else ''}>"


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int = 0,
              max_len: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """Id sequences as one (batch, T) int64 array, padded at the end with
    `pad_id`, and their lengths (batch,) int64. T is the longest length, or
    `max_len` (longer sequences are cut to max_len; their length says so)."""
    seqs = [np.asarray(s, dtype=np.int64).reshape(-1) for s in sequences]
    if max_len is not None and max_len < 0:
        raise ValueError(f"pad_batch: max_len must be >= 0, got {max_len}")
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    if max_len is not None:
        lengths = np.minimum(lengths, max_len)
    T = int(lengths.max()) if len(seqs) and max_len is None else (max_len or 0)
    out = np.full((len(seqs), T), pad_id, dtype=np.int64)
    for i, (s, n) in enumerate(zip(seqs, lengths)):
        out[i, :n] = s[:n]
    return out, lengths


def train_test_split(sentences: Sequence[str], labels: np.ndarray, test: Union[float, int] = 0.1,
                     seed: Seed = 0) -> tuple[tuple[list[str], np.ndarray],
                                              tuple[list[str], np.ndarray]]:
    """A seeded random split: `test` a fraction (rounded) or a count of the
    examples; the rest for training. The same seed gives the same split (the
    permutation is numpy's default_rng(seed).permutation(n)). Returns
    ((train_sentences, train_labels), (test_sentences, test_labels))."""
    labels = np.asarray(labels)
    n = len(sentences)
    if labels.shape[:1] != (n,):
        raise ValueError(f"train_test_split: {n} sentences but labels of shape {labels.shape}")
    k = _count(test, n, "test")
    perm = _rng(seed).permutation(n)
    tr, te = perm[k:], perm[:k]
    return ([sentences[i] for i in tr], labels[tr]), ([sentences[i] for i in te], labels[te])
