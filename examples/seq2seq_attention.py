"""Sequence to sequence with attention: Fundamentals of Deep Learning, chapter 7
("Solving seq2seq Tasks with Recurrent Neural Networks", "Augmenting Recurrent
Networks with Attention").

An encoder-decoder learns to reverse strings of digits ("3 1 4 1 5" ->
"5 1 4 1 3"), a synthetic task made in this example: the source strings are
4 to 10 random digits (3 to 7 in the gallery), the target is the reversed
string and an end-of-sequence token. Training and held-out strings are drawn
independently (seeded), except that a training draw that equals a held-out
string is redrawn: no held-out string is ever trained on.

The model (Bahdanau, Cho and Bengio 2015, the book's attention):

- encoder: embedded digits through a bidirectional GRU (`lengths=`), giving
  one annotation h_s = [→h_s; ←h_s] per source position;
- decoder: a GRU cell whose input at step t is the embedding of the previous
  output token and the context c_t = Σ_s a_ts h_s, where the weights
  a_t = softmax_s(vᵀ tanh(W_q d_{t-1} + W_k h_s)) (`tg.nn.AdditiveAttention`)
  are computed from the previous decoder state d_{t-1}; the output layer reads
  [d_t; c_t]. The decoder starts from tanh(W [→h_S; ←h_1]).

Trained with teacher forcing (the cross-entropy of each target token given
the true previous ones) by Adam, then decoded on held-out strings with
`tg.nn.greedy_decode` and `tg.nn.beam_search` (beam width 4); the figure of
merit is exact match (the whole output string right). The heatmaps show the
attention weights a_ts of a few held-out inputs (`tg.draw_attention`): for
reversal, an anti-diagonal.

Writes attention.svg (heatmaps), curves.svg (training loss and held-out
exact match) and results.json.

    python examples/seq2seq_attention.py [--out DIR] [--quick] [--steps N]
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

NAME = "seq2seq_attention"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 7: an encoder-decoder with attention "
              "(Bahdanau), greedy decoding against beam search, attention heatmaps")
PAD, BOS, EOS = 0, 1, 2
TOKENS = ["<pad>", "<s>", "</s>"] + [str(d) for d in range(10)]
V = len(TOKENS)
SEED, BATCH, LR, BEAM = 0, 64, 3e-3, 4
# (min length, max length, embedding, hidden, training steps, held-out strings)
CONFIGS = {"full": dict(lo=4, hi=10, embed=32, hidden=64, steps=1500, n_test=1000),
           "embedded": dict(lo=3, hi=7, embed=24, hidden=48, steps=300, n_test=300),
           "quick": dict(lo=3, hi=4, embed=8, hidden=12, steps=8, n_test=20)}


def strings(n: int, lo: int, hi: int, rng: np.random.Generator,
            exclude: frozenset[tuple[int, ...]] = frozenset()) -> list[list[int]]:
    """n random digit strings (as token ids) of lengths lo..hi, none of them
    in `exclude` (redrawn if so: training never sees a held-out string)."""
    out: list[list[int]] = []
    while len(out) < n:
        s = (rng.integers(0, 10, rng.integers(lo, hi + 1)) + 3).tolist()
        if tuple(s) not in exclude:
            out.append(s)
    return out


def target(src: list[int]) -> list[int]:
    """What the model must output: the string reversed, then </s>."""
    return src[::-1] + [EOS]


class Seq2Seq(tg.nn.Module):
    """Bidirectional GRU encoder, GRU-cell decoder with additive attention."""

    def __init__(self, embed: int, hidden: int, seed: int = SEED) -> None:
        super().__init__()
        self.hidden = hidden
        self.src_embed = tg.nn.Embedding(V, embed, padding_idx=PAD, seed=seed)
        self.encoder = tg.nn.GRU(embed, hidden, batch_first=True, bidirectional=True,
                                 seed=seed + 1)
        self.bridge = tg.nn.Linear(2 * hidden, hidden, seed=seed + 2)
        self.tgt_embed = tg.nn.Embedding(V, embed, seed=seed + 3)
        self.attention = tg.nn.AdditiveAttention(hidden, 2 * hidden, hidden, seed=seed + 4)
        self.decoder = tg.nn.GRUCell(embed + 2 * hidden, hidden, seed=seed + 5)
        self.out = tg.nn.Linear(3 * hidden, V, seed=seed + 6)

    def encode(self, src: np.ndarray, lengths: np.ndarray) -> tuple[tg.Tensor, tg.Tensor]:
        """(annotations (B, S, 2H), the decoder's initial state (B, H))."""
        enc, h_n = self.encoder(self.src_embed(src), lengths=lengths)
        return enc, tg.tanh(self.bridge(tg.concat([h_n[0], h_n[1]], axis=1)))

    def step(self, prev: np.ndarray, h: tg.Tensor, enc: tg.Tensor, lengths: np.ndarray
             ) -> tuple[tg.Tensor, tg.Tensor, tg.Tensor]:
        """One decoder step: (logits (B, V), new state, attention weights (B, S))."""
        context, weights = self.attention(h, enc, lengths=lengths)
        h = self.decoder(tg.concat([self.tgt_embed(prev), context], axis=1), h)
        return self.out(tg.concat([h, context], axis=1)), h, weights

    def loss(self, src: np.ndarray, src_len: np.ndarray, tgt: np.ndarray,
             tgt_len: np.ndarray) -> tg.Tensor:
        """Teacher forcing: the mean cross-entropy of the real target tokens."""
        enc, h = self.encode(src, src_len)
        prev = np.full(len(src), BOS, dtype=np.int64)
        terms = []
        for t in range(tgt.shape[1]):
            logits, h, _ = self.step(prev, h, enc, src_len)
            terms.append(tg.losses.cross_entropy(logits, tgt[:, t], reduction="none"))
            prev = tgt[:, t]
        mask = (np.arange(tgt.shape[1])[None, :] < tgt_len[:, None]).astype(np.float32)
        return (tg.stack(terms, axis=1) * mask).sum() / float(mask.sum())


def batch(srcs: list[list[int]]) -> tuple[np.ndarray, ...]:
    src, src_len = tg.text.pad_batch(srcs, PAD)
    tgt, tgt_len = tg.text.pad_batch([target(s) for s in srcs], PAD)
    return src, src_len, tgt, tgt_len


def decode(model: Seq2Seq, srcs: list[list[int]], beam: int, max_len: int,
           record: Optional[list[np.ndarray]] = None) -> list[list[int]]:
    """Greedy (beam = 1) or beam-search outputs, without their </s>."""
    src, src_len = tg.text.pad_batch(srcs, PAD)
    with tg.no_grad():
        enc, h = model.encode(src, src_len)

        def step(state: Any, prev: np.ndarray) -> tuple[Any, Any]:
            h, enc, lens = state
            logits, h, weights = model.step(prev, h, enc, lens)
            if record is not None:
                record.append(weights.data)
            return tg.log_softmax(logits, axis=-1), (h, enc, lens)

        state = (h, enc, src_len)
        if beam == 1:
            out = tg.nn.greedy_decode(step, state, len(srcs), BOS, EOS, max_len)
        else:
            out = tg.nn.beam_search(step, state, len(srcs), BOS, EOS, max_len, beam_width=beam)
    return [t[:-1] if t and t[-1] == EOS else t for t in out.tokens]


def exact_match(model: Seq2Seq, srcs: list[list[int]], beam: int, hi: int) -> float:
    got = []
    for i in range(0, len(srcs), 250):
        got += decode(model, srcs[i:i + 250], beam, hi + 2)
    return float(np.mean([g == s[::-1] for g, s in zip(got, srcs)]))


def heatmap(model: Seq2Seq, src: list[int]) -> tuple[Any, list[int]]:
    """The attention weights of the greedy decoding of `src`, drawn by
    tg.draw_attention (rows: the output tokens, </s> included), and the output."""
    weights: list[np.ndarray] = []
    out = decode(model, [src], 1, len(src) + 2, record=weights)[0]
    w = np.concatenate(weights, axis=0)                         # (T_out, S): one row a step
    shown = out + [EOS] if len(w) > len(out) else out           # </s> unless cut at max_len
    right = "right" if out == src[::-1] else "WRONG"
    title = f"{''.join(TOKENS[i] for i in src)} -> {''.join(TOKENS[i] for i in out)} ({right})"
    return tg.draw_attention(w, [TOKENS[i] for i in src], [TOKENS[i] for i in shown],
                             title=title), out


def curves(history: dict[str, list[float]], title: str) -> str:
    """Training loss per step and held-out exact match (greedy and beam) at checkpoints."""
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.4), layout="constrained")
    FigureCanvasSVG(fig)
    ax_loss, ax_em = fig.subplots(1, 2)
    ax_loss.semilogy(np.arange(1, len(history["loss"]) + 1), history["loss"], color="#2563eb",
                     lw=0.8)
    ax_loss.set(xlabel="training step", ylabel="cross-entropy per token", title="training loss")
    ax_em.plot(history["checkpoint_steps"], history["checkpoint_exact_match"], "o-",
               color="#dc2626", label="greedy")
    ax_em.plot(history["checkpoint_steps"], history["checkpoint_beam"], "s--",
               color="#2563eb", label=f"beam search (width {BEAM})")
    ax_em.legend(fontsize=8, loc="lower right")
    ax_em.set(xlabel="training step", ylabel="exact match", ylim=(-0.02, 1.02),
              title="held-out exact match")
    for ax in (ax_loss, ax_em):
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(title, fontsize=11)
    return svg_text(fig)


def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        steps: Optional[int] = None, full: bool = False) -> dict[str, Any]:
    """Train, decode and draw; returns {"figures", "results", "reproduces"}. The
    data is made here (`data` is ignored); `full` (the command line) trains the
    larger model on longer strings, else the gallery's smaller run."""
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
    cfg = CONFIGS["quick" if quick else "full" if full else "embedded"]
    n_steps = cfg["steps"] if steps is None else steps
    lo, hi = cfg["lo"], cfg["hi"]
    test = strings(cfg["n_test"], lo, hi, np.random.default_rng(SEED + 100))
    held_out = frozenset(tuple(s) for s in test)
    seen: set[tuple[int, ...]] = set()
    ex.data_source = (f"synthetic: random digit strings of {lo} to {hi} digits and their "
                      f"reversals, made in the example; {BATCH} fresh strings per training step "
                      f"(seed {SEED + 1}), {len(test)} held-out strings (seed {SEED + 100})")
    print(f"data: {ex.data_source}", flush=True)
    model = Seq2Seq(cfg["embed"], cfg["hidden"])
    opt = tg.optim.Adam(model.parameters(), lr=LR)
    print(f"model: {model.num_parameters():,} parameters; {n_steps} Adam steps of {BATCH} "
          "strings", flush=True)
    rng = np.random.default_rng(SEED + 1)
    history: dict[str, list[float]] = {"loss": [], "checkpoint_steps": [],
                                       "checkpoint_exact_match": [], "checkpoint_beam": []}
    every = max(n_steps // 10, 1)
    t0 = time.perf_counter()
    for k in range(1, n_steps + 1):
        srcs = strings(BATCH, lo, hi, rng, held_out)
        seen.update(tuple(s) for s in srcs)
        loss = model.loss(*batch(srcs))
        opt.zero_grad()
        loss.backward()
        tg.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        history["loss"].append(float(loss.data))
        if k % every == 0 or k == n_steps:
            em = exact_match(model, test[:200], 1, hi)
            em_beam = exact_match(model, test[:200], BEAM, hi)
            history["checkpoint_steps"].append(k)
            history["checkpoint_exact_match"].append(em)
            history["checkpoint_beam"].append(em_beam)
            print(f"step {k}: loss {np.mean(history['loss'][-every:]):.4f}  exact match (first "
                  f"200 held out) greedy {em:.3f}, beam {em_beam:.3f}  "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)
    train_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    greedy = exact_match(model, test, 1, hi)
    greedy_seconds = time.perf_counter() - t1
    t1 = time.perf_counter()
    beam = exact_match(model, test, BEAM, hi)
    beam_seconds = time.perf_counter() - t1
    overlap = sum(tuple(s) in seen for s in test)
    print(f"held-out exact match: greedy {greedy:.4f}, beam search (width {BEAM}) {beam:.4f} "
          f"on {len(test)} strings ({overlap} of them also drawn in training)", flush=True)

    ex.results.update(greedy_exact_match=greedy, beam_exact_match=beam, beam_width=BEAM,
                      n_test=len(test), test_strings_also_in_training=overlap,
                      training_steps=n_steps, batch_size=BATCH, min_length=lo, max_length=hi,
                      embedding_dim=cfg["embed"], hidden_size=cfg["hidden"],
                      parameters=model.num_parameters(),
                      optimizer=f"Adam(lr={LR}), clip_grad_norm_(1.0)",
                      final_loss=float(np.mean(history["loss"][-every:])),
                      train_seconds=round(train_seconds, 2),
                      greedy_seconds=round(greedy_seconds, 2),
                      beam_seconds=round(beam_seconds, 2),
                      checkpoint_steps=history["checkpoint_steps"],
                      checkpoint_greedy_exact_match=history["checkpoint_exact_match"],
                      checkpoint_beam_exact_match=history["checkpoint_beam"],
                      blas_threads=os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
                      cpus=os.cpu_count())
    # a short, a middle and a long held-out string (--quick: the long one)
    by_len = sorted(test, key=len)
    shown = [by_len[-1]] if quick else [by_len[0], by_len[len(by_len) // 2], by_len[-1]]
    for i, src in enumerate(shown, 1):
        chart, _ = heatmap(model, src)
        ex.figure(chart, f"attention_{i}.svg",
                  f"Attention weights of the trained model reversing the held-out string "
                  f"{' '.join(TOKENS[j] for j in src)} (greedy decoding): row t shows how "
                  "output token t spread its attention over the source digits. Reversal "
                  "reads the source from its end: the weight sits on the anti-diagonal.")
    ex.figure(curves(history, f"Reversing digit strings: greedy {greedy:.1%}, beam "
                     f"{beam:.1%} exact match on {len(test)} held-out strings"), "curves.svg",
              "Training loss per step (teacher forcing, log scale) and the exact match of "
              "greedy decoding and of beam search on the first 200 held-out strings at ten "
              "checkpoints during training.")
    return ex.finish()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=None,
                   help=f"training steps (default {CONFIGS['full']['steps']}, "
                        f"{CONFIGS['quick']['steps']} with --quick)")
    args = p.parse_args()
    run(args.out, args.quick, None, args.steps, full=True)


if __name__ == "__main__":
    main()
