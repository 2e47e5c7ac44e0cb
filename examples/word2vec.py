"""Word2vec, skip-gram with negative sampling: Fundamentals of Deep Learning,
chapter 6 ("The Word2Vec Framework", "Implementing the Skip-Gram Architecture").

Every word w of a sentence predicts the words around it. Each word has two
vectors, v_w (the input embedding, the one kept) and u_w (the output
embedding), both `tg.nn.Embedding` tables. For a (center c, context o) pair
and K = 5 "noise" words n_1..n_K drawn from the unigram distribution raised
to the power 3/4 (Mikolov et al. 2013, "Distributed Representations of Words
and Phrases"), the loss is

    -log σ(u_o · v_c) - Σ_k log σ(-u_{n_k} · v_c)

(written with softplus: -log σ(z) = softplus(-z)). As in the paper and
word2vec's C tool: the window size is drawn uniformly from 1..5 for each
center word; frequent words are subsampled, each occurrence of w kept with
probability min(1, sqrt(t / f(w))) (f its frequency in the corpus, t = 1e-3,
the C tool's default; a new draw every epoch); words seen fewer than
min_count times are dropped first; v starts uniform in ±0.5/D and u at zero.

One deviation: the C tool updates after every pair with SGD (learning rate
0.025 decaying linearly). Here a step takes a batch of 512 pairs and their
512 x 5 noise words at once, vectorised, and Adam (lr 0.01) minimises the
batch's mean loss. Plain SGD on the batch's summed loss at 0.025 sent every
vector to one direction (all cosine similarities 1.00: a frequent word's 100
updates per batch add up), and at 0.0025 it had not moved off the starting
loss after 6 epochs on the slice. The training speed is reported in words
(center tokens after subsampling) per second.

Data: the sentence-polarity corpus (Pang and Lee 2005, 10,662 movie-review
sentences, ../shared/data/rt-polarity, see its SOURCE.md) with --data, or
the 2,000-sentence slice shipped in the package (tg.text.load_polarity()) in
--quick mode and in the gallery. A small corpus (224,048 tokens) by word2vec's
standards: the neighbours are noisy, and they are reported as they came out.

Writes loss.svg (the loss per pair during training), map.svg (a 2-D t-SNE
of the 300 most frequent words' vectors, PCA where scikit-learn is missing),
neighbours.md and results.json (the nearest neighbours of a dozen words by
cosine similarity, the speed, the settings).

    python examples/word2vec.py [--data DIR] [--out DIR] [--quick] [--epochs N]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

import tensorgraph as tg
from _common import Example, parser, svg_text
from mnist_cnn import machine

NAME = "word2vec"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 6: word2vec's skip-gram with negative "
              "sampling, on the sentence-polarity corpus")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/rt-polarity"
DIM, WINDOW, NEGATIVES, SAMPLE = 100, 5, 5, 1e-3
LR, BATCH, SEED = 0.01, 512, 0
MIN_COUNT = {"full": 5, "subset": 3}
EPOCHS = {"full": 10, "subset": 3, "quick": 1}
QUERIES = ("good", "bad", "funny", "boring", "film", "comedy", "love", "great", "worst",
           "director", "story", "characters")
N_NEIGHBOURS, MAP_WORDS = 8, 300


# ---------------------------------------------------------------------------
# Data

def corpus(sentences: list[str], min_count: int) -> tuple[list[str], np.ndarray, list[np.ndarray]]:
    """(vocabulary by decreasing count, counts, each sentence as an array of
    word ids with the rare words dropped)."""
    tokens = [tg.text.tokenize(s) for s in sentences]
    vocab = tg.text.Vocab.build(tokens, min_freq=min_count, specials=())
    counts = np.zeros(len(vocab.itos), dtype=np.int64)
    ids = []
    for t in tokens:
        a = np.array([vocab.stoi[w] for w in t if w in vocab.stoi], dtype=np.int64)
        np.add.at(counts, a, 1)
        ids.append(a)
    return vocab.itos, counts, ids


def keep_probability(counts: np.ndarray, t: float = SAMPLE) -> np.ndarray:
    """Mikolov et al.'s subsampling: keep each occurrence of w with
    probability min(1, sqrt(t / f(w)))."""
    f = counts / counts.sum()
    return np.minimum(1.0, np.sqrt(t / f))


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """The unigram distribution raised to 3/4, normalised (the noise words' distribution)."""
    p = counts.astype(np.float64) ** power
    return p / p.sum()


def skipgram_pairs(sentences: list[np.ndarray], keep: np.ndarray, window: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """One epoch's (centers, contexts) and the number of center words, vectorised:
    subsample the tokens, draw each center's window b in 1..window, and pair
    it with the tokens at offsets ±1..±b in its own sentence."""
    flat = np.concatenate(sentences)
    sent = np.repeat(np.arange(len(sentences)), [len(s) for s in sentences])
    kept = rng.random(len(flat)) < keep[flat]
    flat, sent = flat[kept], sent[kept]
    b = rng.integers(1, window + 1, size=len(flat))
    centers, contexts = [], []
    for d in range(1, window + 1):
        same = sent[:-d] == sent[d:]           # positions i and i+d in one sentence
        right = same & (d <= b[:-d])           # center i, context i+d
        left = same & (d <= b[d:])             # center i+d, context i
        centers += [flat[:-d][right], flat[d:][left]]
        contexts += [flat[d:][right], flat[:-d][left]]
    return np.concatenate(centers), np.concatenate(contexts), len(flat)


# ---------------------------------------------------------------------------
# The model

class SkipGram(tg.nn.Module):
    """Input and output embeddings; forward(centers (B,), targets (B, 1+K))
    gives the scores u_target · v_center, (B, 1+K)."""

    def __init__(self, vocab_size: int, dim: int = DIM, seed: int = SEED) -> None:
        super().__init__(name="skipgram")
        rng = np.random.default_rng(seed)
        v = rng.uniform(-0.5 / dim, 0.5 / dim, size=(vocab_size, dim)).astype(np.float32)
        self.inputs = tg.nn.Embedding.from_pretrained(v, freeze=False, name="v")
        self.outputs = tg.nn.Embedding.from_pretrained(
            np.zeros((vocab_size, dim), np.float32), freeze=False, name="u")

    def forward(self, centers: Any, targets: Any) -> tg.Tensor:
        v = self.inputs(centers)                      # (B, D)
        u = self.outputs(targets)                     # (B, 1+K, D)
        return (u @ v[:, :, None])[:, :, 0]           # (B, 1+K)


def sgns_loss(scores: tg.Tensor) -> tg.Tensor:
    """Column 0 holds the true context's score, the others the noise words':
    mean over the batch of softplus(-s_0) + Σ_k softplus(s_k)."""
    sign = np.ones(scores.shape[1], np.float32)
    sign[0] = -1.0
    return tg.softplus(scores * sign).sum() / scores.shape[0]


def train(model: SkipGram, sentences: list[np.ndarray], counts: np.ndarray, epochs: int,
          seed: int = SEED) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    keep = keep_probability(counts)
    cdf = np.cumsum(noise_distribution(counts))
    opt = tg.optim.Adam(model.parameters(), lr=LR)
    step, words, seconds = 0, 0, 0.0
    curve_words, curve_loss, epoch_loss = [], [], []
    for epoch in range(epochs):
        centers, contexts, n_words = skipgram_pairs(sentences, keep, WINDOW, rng)
        order = rng.permutation(len(centers))
        centers, contexts = centers[order], contexts[order]
        n_batches = -(-len(centers) // BATCH)
        every = max(1, n_batches // 10)
        t0 = time.perf_counter()
        total, acc, acc_n = 0.0, 0.0, 0
        for k in range(n_batches):
            c = centers[k * BATCH:(k + 1) * BATCH]
            noise = np.searchsorted(cdf, rng.random((len(c), NEGATIVES)), side="right")
            targets = np.concatenate([contexts[k * BATCH:(k + 1) * BATCH, None],
                                      np.minimum(noise, len(cdf) - 1)], axis=1)
            opt.zero_grad()
            loss = sgns_loss(model(c, targets))
            loss.backward()
            opt.step()
            step += 1
            value = float(loss.item()) * len(c)
            total += value
            acc += value
            acc_n += len(c)
            if (k + 1) % every == 0 or k == n_batches - 1:
                curve_words.append(words + n_words * (k + 1) / n_batches)
                curve_loss.append(acc / acc_n)
                acc, acc_n = 0.0, 0
        seconds += time.perf_counter() - t0
        words += n_words
        epoch_loss.append(total / len(centers))
        print(f"epoch {epoch + 1:2d}: loss per pair {epoch_loss[-1]:.4f}, {len(centers):,} "
              f"pairs from {n_words:,} words, {n_words / (time.perf_counter() - t0):,.0f} "
              "words/s", flush=True)
    return {"loss_per_epoch": epoch_loss, "curve_words": curve_words, "curve_loss": curve_loss,
            "steps": step, "words": words, "train_seconds": seconds,
            "words_per_second": words / seconds if seconds else float("nan"),
            "pairs_per_second": step * BATCH / seconds if seconds else float("nan")}


def neighbours(E: np.ndarray, itos: list[str], words: tuple[str, ...], k: int = N_NEIGHBOURS
               ) -> dict[str, list[tuple[str, float]]]:
    """The k nearest words to each query by cosine similarity (itself excluded)."""
    stoi = {w: i for i, w in enumerate(itos)}
    U = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    found: dict[str, list[tuple[str, float]]] = {}
    for w in words:
        if w not in stoi:
            continue
        sim = U @ U[stoi[w]]
        sim[stoi[w]] = -np.inf
        top = np.argsort(-sim)[:k]
        found[w] = [(itos[j], round(float(sim[j]), 3)) for j in top]
    return found


# ---------------------------------------------------------------------------
# Figures

def loss_figure(r: dict[str, Any], title: str) -> str:
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.plot(r["curve_words"], r["curve_loss"], color="#4338ca", linewidth=1.2)
    ax.set_xlabel("words trained on (center tokens after subsampling)")
    ax.set_ylabel(f"loss per pair (1 + {NEGATIVES} noise words)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return svg_text(fig)


def word_map(E: np.ndarray, words: list[str]) -> tuple[np.ndarray, str]:
    """2-D coordinates of the rows of E: t-SNE (scikit-learn) if installed, else PCA."""
    U = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        U = U - U.mean(axis=0)
        _, _, vt = np.linalg.svd(U, full_matrices=False)
        return U @ vt[:2].T, "PCA (scikit-learn is not installed, so no t-SNE)"
    from cnn_visualized import one_openmp_thread
    with one_openmp_thread():   # spinning OpenMP threads: 60 s instead of 3 on a busy machine
        P = TSNE(n_components=2, perplexity=min(30.0, (len(U) - 1) / 3), init="pca",
                 metric="cosine", random_state=SEED).fit_transform(U.astype(np.float64))
    return P, "t-SNE (scikit-learn, cosine distance, perplexity 30)"


def map_figure(P: np.ndarray, words: list[str], title: str) -> str:
    from matplotlib.figure import Figure
    fig = Figure(figsize=(11, 9), layout="constrained")
    ax = fig.subplots()
    ax.scatter(P[:, 0], P[:, 1], s=4, color="#9ca3af")
    for (x, y), w in zip(P, words):
        ax.annotate(w, (x, y), fontsize=7, ha="center", va="bottom")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=11)
    return svg_text(fig)


def neighbours_markdown(found: dict[str, list[tuple[str, float]]]) -> str:
    lines = ["| word | nearest words by cosine similarity |", "|---|---|"]
    for w, ns in found.items():
        lines.append(f"| {w} | " + ", ".join(f"{n} ({s:.2f})" for n, s in ns) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------

def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        epochs: Optional[int] = None) -> dict[str, Any]:
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
    full = data is not None and Path(data).is_dir() and not quick
    if data is not None and not full and not quick:
        raise SystemExit(f"{NAME}: the corpus directory {data} does not exist. Pass --data DIR "
                         "(holding rt-polarity.pos and rt-polarity.neg), or --quick to use "
                         "the slice shipped in the package.")
    sentences, _ = tg.text.load_polarity(data if full else None)
    if quick:
        sentences = sentences[::4]      # a smoke test: every fourth sentence of the slice
    mode = "full" if full else "subset"
    min_count = MIN_COUNT[mode]
    epochs = epochs or EPOCHS["quick" if quick else mode]
    itos, counts, ids = corpus(sentences, min_count)
    ex.data_source = (f"the sentence-polarity corpus from {data}: {len(sentences):,} sentences"
                      if full else f"{len(sentences):,} sentences of the slice of the sentence-"
                      "polarity corpus shipped in the package (tg.text.load_polarity()"
                      + (", every fourth)" if quick else ")"))
    print(f"data: {ex.data_source}; {int(counts.sum()):,} tokens of the {len(itos):,} words "
          f"seen at least {min_count} times", flush=True)

    model = SkipGram(len(itos), DIM, SEED)
    r = train(model, ids, counts, epochs)
    E = np.asarray(model.inputs.weight.data)
    found = neighbours(E, itos, QUERIES)
    n_map = min(MAP_WORDS, len(itos))
    P, method = word_map(E[:n_map], itos[:n_map])
    print(f"trained {r['steps']:,} steps in {r['train_seconds']:.1f} s: "
          f"{r['words_per_second']:,.0f} words/s, {r['pairs_per_second']:,.0f} pairs/s")
    for w, ns in found.items():
        print(f"  {w:>10}: " + ", ".join(f"{n} ({s:.2f})" for n, s in ns))
    (ex.out / "neighbours.md").write_text(neighbours_markdown(found), encoding="utf-8")

    ex.results.update(
        corpus_sentences=len(sentences), tokens=int(counts.sum()), vocabulary=len(itos),
        min_count=min_count, embedding_dim=DIM, window=WINDOW, negatives=NEGATIVES,
        subsample_t=SAMPLE, noise="unigram^0.75", batch_pairs=BATCH,
        optimizer=f"Adam(lr={LR}) on the batch's mean loss", epochs=epochs,
        loss_per_epoch=[round(v, 5) for v in r["loss_per_epoch"]],
        steps=r["steps"], words_trained=r["words"],
        train_seconds=round(r["train_seconds"], 2),
        words_per_second=round(r["words_per_second"]),
        pairs_per_second=round(r["pairs_per_second"]),
        neighbours={w: [f"{n} {s:.3f}" for n, s in ns] for w, ns in found.items()},
        queries_missing=[w for w in QUERIES if w not in found],
        map_method=method, map_words=n_map, embedded_data=not full, machine=machine())
    ex.figure(loss_figure(r, f"skip-gram with negative sampling: {r['words']:,} words, "
                             f"{epochs} epoch{'s' if epochs > 1 else ''}"), "loss.svg",
              "The training loss per (center, context) pair, -log σ(u_o·v_c) - Σ_k "
              "log σ(-u_k·v_c) over the true context and five noise words, averaged over "
              "tenths of an epoch; it starts at 6 log 2 ≈ 4.16 (every score zero).")
    ex.figure(map_figure(P, itos[:n_map], f"The {n_map} most frequent words: {method}"),
              "map.svg",
              f"The input vectors of the {n_map} most frequent words of the corpus laid out "
              f"in two dimensions by {method.split(' (')[0]}, each labelled: words whose "
              "vectors point the same way (used in similar contexts) are placed near each "
              "other.")
    return ex.finish()


def main() -> None:
    p = parser(__doc__)
    p.set_defaults(data=DEFAULT_DATA)
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs (default {EPOCHS['full']} on the corpus, {EPOCHS['quick']} "
                        "with --quick)")
    args = p.parse_args()
    run(args.out, args.quick, args.data, args.epochs)


if __name__ == "__main__":
    main()
