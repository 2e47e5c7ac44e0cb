"""Sentiment analysis: Fundamentals of Deep Learning, chapter 7 ("Solving seq2seq
Tasks with Recurrent Neural Networks": sentiment analysis with an LSTM).

Classifies the movie-review sentences of the sentence-polarity corpus (Pang
and Lee 2005: 5,331 positive, 5,331 negative) with two models over the same
kind of word embeddings, trained from random initialisation (no pre-trained
word vectors):

- an LSTM (chapter 7): the sentence's words, embedded, run through one LSTM
  layer (`lengths=` so padding changes nothing); its last state h_T, after
  dropout, feeds a linear layer to the two classes;
- a 1-D convolutional classifier (Kim 2014, "CNN-rand"): filters of widths
  3, 4 and 5 slide over the embedded sentence (`tg.nn.Conv1d`, chapter 5),
  each filter's ReLU output is max-pooled over time (windows that reach
  into the padding are left out), and the pooled features, after dropout,
  feed a linear layer.

Both are trained with Adam on the cross-entropy, in batches of sentences of
similar length (less padding), for a fixed number of epochs; the weights kept
are those of the epoch with the best validation accuracy, and the reported
test accuracy is theirs (the test set never chooses anything; its accuracy
after every epoch is drawn for the curves only). The split is a fixed,
seeded 90/10 split (`tg.text.train_test_split(test=0.1, seed=0)`); 10% of the
training part is held out again for validation (seed=1), as Kim did. The
vocabulary is built from the training sentences only (words seen at least
twice; the rest are <unk>).

Published results on this dataset (the "MR" benchmark; 10-fold cross-
validation, not this split): Kim's CNN-rand 76.1%, CNN with word2vec
vectors 81.5%; bag-of-words baselines 77-79%.

Writes curves.svg (training loss and test accuracy per epoch, both models)
and results.json.

    python examples/sentiment.py [--data DIR] [--out DIR] [--quick] [--epochs N]

--data is the directory of the full corpus (default ../shared/data/rt-polarity);
the gallery (no --data) and --quick use the 2,000-sentence slice shipped in
the package (tensorgraph/datasets/rt_polarity_small), with smaller models.
"""
from __future__ import annotations

import os

# Small matrices: BLAS threads only add overhead (and thrash on a busy 2-core
# machine). Effective only if numpy is not imported yet, i.e. when run as a script.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Optional  # noqa: E402

import numpy as np  # noqa: E402

import tensorgraph as tg  # noqa: E402
from _common import Example, parser, svg_text  # noqa: E402

NAME = "sentiment"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 7: sentiment analysis of sentences with an "
              "LSTM over word embeddings, beside a 1-D convolutional classifier (Kim 2014)")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/rt-polarity"
SEED, TEST_FRACTION, MIN_FREQ, BATCH = 0, 0.1, 2, 50
WIDTHS = (3, 4, 5)

# embedding size, LSTM hidden size, CNN filters per width, epochs, training sentences
# used (None: all), Adam's learning rate
CONFIGS: dict[str, dict[str, Any]] = {
    "full": dict(embed=128, hidden=128, filters=100, epochs=6, limit=None, lr=2e-3),
    "embedded": dict(embed=64, hidden=64, filters=50, epochs=4, limit=None, lr=3e-3),
    "quick": dict(embed=16, hidden=16, filters=8, epochs=1, limit=400, lr=3e-3)}


class LSTMClassifier(tg.nn.Module):
    """Embedding -> LSTM -> dropout(h_T) -> Linear(2)."""

    def __init__(self, vocab: int, embed: int, hidden: int, seed: int = SEED) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        # Kim's U(±0.25) for random word vectors (PyTorch's default N(0, 1) is large
        # next to the U(±1/√H) recurrent weights); the <pad> row stays zero
        w = rng.uniform(-0.25, 0.25, (vocab, embed)).astype(np.float32)
        w[0] = 0
        self.embed = tg.nn.Embedding(vocab, embed, padding_idx=0, _weight=w)
        self.lstm = tg.nn.LSTM(embed, hidden, batch_first=True, seed=seed + 1)
        self.drop = tg.nn.Dropout(0.5, seed=seed + 2)
        self.out = tg.nn.Linear(hidden, 2, seed=seed + 3)

    def forward(self, ids: np.ndarray, lengths: np.ndarray) -> tg.Tensor:
        _, (h_n, _) = self.lstm(self.embed(ids), lengths=lengths)
        return self.out(self.drop(h_n[0]))


class ConvClassifier(tg.nn.Module):
    """Embedding -> Conv1d of each width -> ReLU -> max over time -> concat
    -> dropout -> Linear(2) (Kim 2014)."""

    def __init__(self, vocab: int, embed: int, filters: int, seed: int = SEED) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        w = rng.uniform(-0.25, 0.25, (vocab, embed)).astype(np.float32)
        w[0] = 0
        self.embed = tg.nn.Embedding(vocab, embed, padding_idx=0, _weight=w)
        self.convs = tg.nn.ModuleList([tg.nn.Conv1d(embed, filters, k, seed=seed + k)
                                       for k in WIDTHS])
        self.drop = tg.nn.Dropout(0.5, seed=seed + 2)
        self.out = tg.nn.Linear(filters * len(WIDTHS), 2, seed=seed + 3)

    def forward(self, ids: np.ndarray, lengths: np.ndarray) -> tg.Tensor:
        e = self.embed(ids).swapaxes(1, 2)                       # (B, D, T)
        pooled = []
        for k, conv in zip(WIDTHS, self.convs):
            h = tg.relu(conv(e))                                 # (B, F, T - k + 1)
            # windows reaching past a sentence's end are masked (a sentence
            # shorter than k keeps its one window over the padding)
            n = h.shape[2]
            valid = np.arange(n)[None, :] < np.maximum(lengths - k + 1, 1)[:, None]
            pooled.append(tg.where(valid[:, None, :], h, 0.0).max(axis=2))   # ReLU: ≥ 0
        return self.out(self.drop(tg.concat(pooled, axis=1)))


def encode(sentences: list[str], vocab: tg.text.Vocab) -> list[list[int]]:
    return [vocab.encode(tg.text.tokenize(s)) for s in sentences]


def batches(ids: list[list[int]], labels: np.ndarray, rng: Optional[np.random.Generator]
            ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(ids (B, T), lengths, labels) batches of sentences of similar length
    (sorted by length, cut into BATCH-sized pieces); with `rng`, the sort
    breaks ties at random and the batches come in random order."""
    n = len(ids)
    lengths = np.array([max(len(s), 1) for s in ids])
    tie = rng.random(n) if rng is not None else np.arange(n)
    order = np.lexsort((tie, lengths))
    out = []
    for i in range(0, n, BATCH):
        idx = order[i:i + BATCH]
        X, lens = tg.text.pad_batch([ids[j] or [1] for j in idx])   # an empty one: <unk>
        if X.shape[1] < max(WIDTHS):                             # room for the widest filter
            X = np.pad(X, ((0, 0), (0, max(WIDTHS) - X.shape[1])))
        out.append((X, lens, labels[idx]))
    if rng is not None:
        out = [out[i] for i in rng.permutation(len(out))]
    return out


def accuracy(model: tg.nn.Module, data: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
             ) -> float:
    model.eval()
    right = total = 0
    with tg.no_grad():
        for X, lens, y in data:
            right += int((model(X, lens).data.argmax(axis=1) == y).sum())
            total += len(y)
    model.train()
    return right / total


Batches = list[tuple[np.ndarray, np.ndarray, np.ndarray]]


def train(name: str, model: tg.nn.Module, train_ids: list[list[int]], y_train: np.ndarray,
          val: Batches, test: Batches, epochs: int, lr: float) -> dict[str, Any]:
    """Train for `epochs` epochs; keep the weights of the epoch with the best
    validation accuracy (the first of equals) and report the test accuracy
    of those. The test accuracy of every epoch is recorded for the curves,
    never used to choose."""
    opt = tg.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(SEED)
    hist: dict[str, list[float]] = {"loss": [], "train_accuracy": [], "val_accuracy": [],
                                    "test_accuracy": []}
    best, best_state = -1.0, None
    t0 = time.perf_counter()
    for epoch in range(epochs):
        total = right = 0
        loss_sum = 0.0
        for X, lens, y in batches(train_ids, y_train, rng):
            logits = model(X, lens)
            loss = tg.losses.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            tg.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            loss_sum += float(loss.data) * len(y)
            right += int((logits.data.argmax(axis=1) == y).sum())
            total += len(y)
        hist["loss"].append(loss_sum / total)
        hist["train_accuracy"].append(right / total)
        hist["val_accuracy"].append(accuracy(model, val))
        hist["test_accuracy"].append(accuracy(model, test))
        if hist["val_accuracy"][-1] > best:
            best = hist["val_accuracy"][-1]
            best_state = {k: v.copy() for k, v in model.state_dict().items()}
        print(f"{name} epoch {epoch + 1}: loss {hist['loss'][-1]:.4f}  train accuracy "
              f"{hist['train_accuracy'][-1]:.4f}  validation accuracy "
              f"{hist['val_accuracy'][-1]:.4f}  test accuracy {hist['test_accuracy'][-1]:.4f}"
              f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
    seconds = time.perf_counter() - t0
    chosen = int(np.argmax(hist["val_accuracy"]))
    assert best_state is not None
    model.load_state_dict(best_state)
    test_accuracy = accuracy(model, test)
    print(f"{name}: epoch {chosen + 1} chosen by validation accuracy ({best:.4f}); its test "
          f"accuracy {test_accuracy:.4f}", flush=True)
    return {"test_accuracy": test_accuracy, "epoch_chosen": chosen + 1,
            "val_accuracy": best, "epochs": epochs,
            "parameters": model.num_parameters(), "train_seconds": round(seconds, 2),
            "seconds_per_epoch": round(seconds / max(epochs, 1), 2),
            "loss_per_epoch": [round(v, 4) for v in hist["loss"]],
            "train_accuracy_per_epoch": [round(v, 4) for v in hist["train_accuracy"]],
            "val_accuracy_per_epoch": [round(v, 4) for v in hist["val_accuracy"]],
            "test_accuracy_per_epoch": [round(v, 4) for v in hist["test_accuracy"]]}


def curves(results: dict[str, dict[str, Any]], title: str) -> str:
    """Training loss and test accuracy per epoch of both models, as SVG text."""
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    FigureCanvasSVG(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for (label, r), colour in zip(results.items(), ("#2563eb", "#dc2626")):
        epochs = np.arange(1, len(r["loss_per_epoch"]) + 1)
        ax_loss.plot(epochs, r["loss_per_epoch"], "o-", color=colour, label=label)
        ax_acc.plot(epochs, r["train_accuracy_per_epoch"], "o--", color=colour, alpha=0.6,
                    label=f"{label}, training")
        ax_acc.plot(epochs, r["val_accuracy_per_epoch"], "s:", color=colour,
                    label=f"{label}, validation")
        ax_acc.plot(epochs, r["test_accuracy_per_epoch"], "o-", color=colour,
                    label=f"{label}, test")
        ax_acc.plot([r["epoch_chosen"]], [r["test_accuracy"]], "*", ms=14, color=colour)
    ax_loss.set(xlabel="epoch", ylabel="training cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_loss.legend(fontsize=8)
    lo = min(min(r["train_accuracy_per_epoch"] + r["test_accuracy_per_epoch"])
             for r in results.values())
    ax_acc.set_ylim(min(lo, 0.75) - 0.22, 1.01)      # room below the curves for the legend
    ax_acc.legend(fontsize=7, ncol=2, loc="lower right")
    fig.suptitle(title, fontsize=11)
    return svg_text(fig)


def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        epochs: Optional[int] = None) -> dict[str, Any]:
    """Train both classifiers; returns {"figures", "results", "reproduces"}."""
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
    embedded = data is None or quick      # the gallery and --quick: the shipped slice
    cfg = CONFIGS["quick" if quick else "embedded" if embedded else "full"]
    epochs = epochs or cfg["epochs"]
    if embedded:
        sentences, labels = tg.text.load_polarity()
        source = "the 2,000-sentence slice of rt-polarity shipped in the package"
    else:
        if data is None or not Path(data).is_dir():
            raise SystemExit(f"{NAME}: corpus not found: {data} does not exist. Pass --data DIR "
                             "(the directory holding rt-polarity.pos and rt-polarity.neg), or "
                             "--quick to use the slice shipped in the package.")
        sentences, labels = tg.text.load_polarity(data)
        source = f"rt-polarity from {data}"
    (tr_s, y_tr), (te_s, y_te) = tg.text.train_test_split(sentences, labels,
                                                          test=TEST_FRACTION, seed=SEED)
    (tr_s, y_tr), (va_s, y_va) = tg.text.train_test_split(tr_s, y_tr, test=TEST_FRACTION,
                                                          seed=SEED + 1)
    if cfg["limit"]:
        n = cfg["limit"]
        tr_s, y_tr, va_s, y_va = tr_s[:n], y_tr[:n], va_s[:n // 4], y_va[:n // 4]
        te_s, y_te = te_s[:n // 4], y_te[:n // 4]
    vocab = tg.text.Vocab.build([tg.text.tokenize(s) for s in tr_s], min_freq=MIN_FREQ)
    tr_ids = encode(tr_s, vocab)
    ex.data_source = (f"{source}: {len(sentences)} sentences, seeded 90/10 split "
                      f"(train_test_split(test=0.1, seed=0)), its 90% split again 90/10 "
                      f"(seed=1) into training and validation -> {len(tr_s)} train / "
                      f"{len(va_s)} validation / {len(te_s)} test; vocabulary {len(vocab)} "
                      f"(training words seen >= {MIN_FREQ} times)")
    print(f"data: {ex.data_source}", flush=True)
    val = batches(encode(va_s, vocab), y_va, None)
    test = batches(encode(te_s, vocab), y_te, None)

    models: dict[str, tg.nn.Module] = {
        "LSTM": LSTMClassifier(len(vocab), cfg["embed"], cfg["hidden"]),
        "CNN (widths 3, 4, 5)": ConvClassifier(len(vocab), cfg["embed"], cfg["filters"])}
    results: dict[str, dict[str, Any]] = {}
    for label, model in models.items():
        print(f"model {label}: {model.num_parameters():,} parameters", flush=True)
        results[label] = train(label, model, tr_ids, y_tr, val, test, epochs, cfg["lr"])
    lstm, cnn = results["LSTM"], results["CNN (widths 3, 4, 5)"]
    ex.results.update(
        lstm_test_accuracy=lstm["test_accuracy"], cnn_test_accuracy=cnn["test_accuracy"],
        lstm_epoch_chosen=lstm["epoch_chosen"], cnn_epoch_chosen=cnn["epoch_chosen"],
        split="train_test_split(test=0.1, seed=0)",
        validation_split="train_test_split(train, test=0.1, seed=1)", n_train=len(tr_s),
        n_val=len(va_s), n_test=len(te_s),
        vocab_size=len(vocab), embedding_dim=cfg["embed"], lstm_hidden=cfg["hidden"],
        cnn_filters_per_width=cfg["filters"], cnn_widths=list(WIDTHS), batch_size=BATCH,
        optimizer=f"Adam(lr={cfg['lr']}), clip_grad_norm_(5.0), dropout 0.5", epochs=epochs,
        embedded_data=embedded, full_corpus=not embedded and not cfg["limit"],
        blas_threads=os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
        cpus=os.cpu_count(), lstm=lstm, cnn=cnn)
    what = "full corpus" if not embedded else "shipped slice"
    ex.figure(curves(results, f"Sentence polarity ({what}, {len(tr_s)} train / {len(te_s)} "
                     f"test): LSTM {lstm['test_accuracy']:.1%}, CNN {cnn['test_accuracy']:.1%}"),
              "curves.svg",
              "Learning curves of the two sentiment classifiers: the training loss per epoch "
              "(left) and the accuracy on the training sentences (dashed, measured with dropout "
              "during the epoch), on the validation sentences (dotted) and on the held-out test "
              "10% (solid) after each epoch (right). The star marks the epoch chosen by "
              "validation accuracy and the test accuracy reported.")
    return ex.finish()


def main() -> None:
    p = parser(__doc__)
    p.set_defaults(data=DEFAULT_DATA)
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs per model (default {CONFIGS['full']['epochs']} on the corpus, "
                        f"{CONFIGS['embedded']['epochs']} on the shipped slice, 1 with --quick)")
    args = p.parse_args()
    run(args.out, args.quick, args.data, args.epochs)


if __name__ == "__main__":
    main()
