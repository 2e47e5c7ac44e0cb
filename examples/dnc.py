"""The differentiable neural computer learns to copy and to recall:
Fundamentals of Deep Learning, chapter 8 ("Memory Augmented Neural Networks",
"Visualizing the DNC in action").

A DNC (`tg.nn.DNC`: an LSTM controller, one write head, one read head (two on
recall), dynamic allocation and temporal links; Graves et al., Nature 2016) and an LSTM
baseline of about the same number of parameters learn two tasks made in this
example (seeded), with Adam, gradient-norm clipping and the sigmoid
cross-entropy of the output bits:

- copy (`copy_batch`): L random binary vectors of `bits` bits, then a
  delimiter; the network must then output the L vectors in order. The input
  has bits + 1 channels, the last one the delimiter:

      t = 0..L-1     input [v_t; 0]      target 0
      t = L          input [0; 1]        target 0   (the delimiter)
      t = L+1..2L    input 0             target v_{t-L-1}

  Trained on L drawn uniformly from 1..L_max, L_max rising from 3 to the
  largest trained length over the first half of training (a curriculum).
- associative recall (`recall_batch`): n items of `item_len` vectors each,
  each item preceded by an item delimiter; then a query delimiter, one of the
  items (not the last), a second query delimiter; the network must output the
  item that followed the query in the list. Channels bits + 2: the bits, the
  item delimiter, the query delimiter:

      item i (i = 0..n-1):  step (l+1)i: item delimiter; the next l steps its vectors
      query:  query delimiter, the l vectors of item q (q < n-1), query delimiter
      answer: l steps of input 0, target the l vectors of item q + 1

  Trained on n drawn uniformly from 2..n_max, n_max rising from 2 to the most
  items trained over the first 80% of training.

Bit errors per sequence, the figure of merit: for one sequence, the sum over
its answer steps and bits of |round(σ(y)) - target| (a bit is wrong when the
output's sign disagrees with it), averaged over N held-out sequences drawn
with another seed (independently: a short one may also have been drawn in
training, e.g. the gallery's L = 3 of 4 bits, 4,096 possible sequences; a
copy of L ≥ 5 with 6 bits, 2^30 of them, practically never is). A copy of length L has L·bits answer bits (L = 24, 6 bits:
144); a recall answer item_len·bits. Held-out lengths include lengths longer
than any trained (copy) and more items than trained (recall), where an LSTM
that has packed the sequence into its state runs out of room and the DNC,
which writes each vector to a free row of its memory and reads them back
along the temporal links, need not.

The figure dnc_in_action.svg (`tg.draw_memory`) shows, for one held-out
copy sequence, the input, the write weighting, the read weighting and the
memory usage (memory rows x time) and the output: the writes step down the
free rows during the input and the read follows the same rows in the same
order during the answer. errors.svg draws the bit errors per sequence
against the length (copy) and the number of items (recall), DNC against LSTM.

    python examples/dnc.py [--out DIR] [--quick] [--steps N]

Without arguments, the full run (about 11 min of CPU time on one core: 3 for
copy, 8 for recall; 14 min wall at load 2); the gallery runs a small copy
task only (`run()` without `full`, about 15 s of CPU time).
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

NAME = "dnc"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 8: a differentiable neural computer "
              "learns the copy and associative recall tasks, against an LSTM; its write and "
              "read weightings and memory usage over time (\"Visualizing the DNC in action\")")
SEED, CLIP = 0, 10.0
# copy: bits, trained lengths 1..hi, held-out lengths; recall: item length, trained items
# lo..hi, held-out item counts; the DNC's sizes; Adam steps and learning rate; held-out N
CONFIGS: dict[str, dict[str, Any]] = {
    "full": dict(bits=6, copy_hi=10, copy_eval=(5, 10, 12, 16, 20, 24), item_len=3,
                 items_lo=2, items_hi=6, recall_eval=(2, 3, 4, 6, 8), memory=32, word=16,
                 hidden=64, batch=16, copy_steps=4000, recall_steps=6000, lr=3e-3,
                 recall_reads=2, recall_ramp=0.8, n_test=100, shown=10),
    "embedded": dict(bits=4, copy_hi=5, copy_eval=(3, 5, 6, 8), item_len=0, memory=10,
                     word=8, hidden=32, batch=16, copy_steps=600, recall_steps=0, lr=1e-2,
                     n_test=100, shown=6),
    "quick": dict(bits=3, copy_hi=3, copy_eval=(2, 4), item_len=2, items_lo=2, items_hi=3,
                  recall_eval=(2, 4), memory=6, word=4, hidden=8, batch=4, copy_steps=3,
                  recall_steps=3, lr=1e-3, n_test=8, shown=4),
}


# ---------------------------------------------------------------------------
# The tasks

def copy_batch(rng: np.random.Generator, batch: int, length: int, bits: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch of copy sequences of `length` vectors (layout in the module
    docstring). Returns x (2L+1, batch, bits+1), target (2L+1, batch, bits)
    (zero outside the answer) and answer (2L+1,) bool, True at the answer
    steps t = L+1..2L."""
    L = length
    v = rng.integers(0, 2, (L, batch, bits)).astype(np.float32)
    x = np.zeros((2 * L + 1, batch, bits + 1), np.float32)
    x[:L, :, :bits] = v
    x[L, :, bits] = 1
    target = np.zeros((2 * L + 1, batch, bits), np.float32)
    target[L + 1:] = v
    answer = np.arange(2 * L + 1) > L
    return x, target, answer


def recall_batch(rng: np.random.Generator, batch: int, items: int, item_len: int, bits: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A batch of associative recall sequences of `items` items of `item_len`
    vectors (layout in the module docstring). Returns x (T, batch, bits+2),
    target (T, batch, bits), answer (T,) bool (the last item_len steps) and
    query (batch,), the index q of the queried item (the answer is item q+1),
    with T = items·(item_len+1) + 2·item_len + 2."""
    n, ln = items, item_len
    if n < 2:
        raise ValueError(f"recall_batch: need at least 2 items (the answer follows the query), "
                         f"got {n}")
    v = rng.integers(0, 2, (n, ln, batch, bits)).astype(np.float32)
    q = rng.integers(0, n - 1, batch)
    T = n * (ln + 1) + 2 * ln + 2
    x = np.zeros((T, batch, bits + 2), np.float32)
    for i in range(n):
        x[i * (ln + 1), :, bits] = 1
        x[i * (ln + 1) + 1:(i + 1) * (ln + 1), :, :bits] = v[i]
    t0 = n * (ln + 1)
    cols = np.arange(batch)
    x[t0, :, bits + 1] = 1
    x[t0 + 1:t0 + 1 + ln, :, :bits] = v[q, :, cols].transpose(1, 0, 2)
    x[t0 + 1 + ln, :, bits + 1] = 1
    target = np.zeros((T, batch, bits), np.float32)
    target[T - ln:] = v[q + 1, :, cols].transpose(1, 0, 2)
    answer = np.arange(T) >= T - ln
    return x, target, answer, q


def bit_errors(logits: np.ndarray, target: np.ndarray, answer: np.ndarray) -> np.ndarray:
    """Bit errors of each sequence: Σ over the answer steps and bits of
    |round(σ(y)) - target|, with round(σ(y)) = 1 exactly when y > 0. logits
    and target (T, B, bits); returns (B,)."""
    wrong = (logits[answer] > 0).astype(np.float32) != target[answer]
    return wrong.sum(axis=(0, 2))


# ---------------------------------------------------------------------------
# The models

class LSTMNet(tg.nn.Module):
    """The baseline: an LSTM and a linear output layer on each step's h_t."""

    def __init__(self, input_size: int, output_size: int, hidden: int, seed: int) -> None:
        super().__init__()
        self.lstm = tg.nn.LSTM(input_size, hidden, seed=seed)
        self.out = tg.nn.Linear(hidden, output_size, seed=seed + 1)

    def forward(self, x: Any) -> tg.Tensor:
        h, _ = self.lstm(x)
        T, B, H = h.shape
        return self.out(h.reshape(T * B, H)).reshape(T, B, -1)


class DNCNet(tg.nn.Module):
    """tg.nn.DNC returning its output only (and the trace on request)."""

    def __init__(self, input_size: int, output_size: int, cfg: dict[str, Any], seed: int,
                 num_reads: int = 1) -> None:
        super().__init__()
        self.dnc = tg.nn.DNC(input_size, output_size, hidden_size=cfg["hidden"],
                             memory_size=cfg["memory"], word_size=cfg["word"],
                             num_reads=num_reads, seed=seed)

    def forward(self, x: Any) -> tg.Tensor:
        return self.dnc(x)[0]


def lstm_hidden_for(params: int, input_size: int, output_size: int) -> int:
    """The LSTM hidden size whose LSTMNet has the parameter count nearest `params`:
    4H(I + H) + 8H (two biases) + H·O + O."""
    def count(h: int) -> int:
        return 4 * h * (input_size + h) + 8 * h + h * output_size + output_size
    return min(range(1, 1024), key=lambda h: abs(count(h) - params))


def train(model: tg.nn.Module, batches: Any, steps: int, lr: float, label: str,
          log_every: int) -> list[float]:
    """Adam on the mean sigmoid cross-entropy of the answer bits, gradients
    clipped to norm CLIP; returns the loss per step."""
    opt = tg.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    t0 = time.perf_counter()
    for k in range(1, steps + 1):
        x, target, answer = batches(k)
        first = int(np.argmax(answer))             # the answer is the last steps
        y = model(x)
        loss = tg.losses.binary_cross_entropy(y[first:], target[first:])
        opt.zero_grad()
        loss.backward()
        tg.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        losses.append(float(loss.data))
        if k % log_every == 0 or k == steps:
            print(f"  {label} step {k}/{steps}: loss {np.mean(losses[-log_every:]):.4f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return losses


def evaluate(model: tg.nn.Module, x: np.ndarray, target: np.ndarray, answer: np.ndarray
             ) -> float:
    """Mean bit errors per sequence over the batch x."""
    with tg.no_grad():
        y = model(x).data
    return float(bit_errors(y, target, answer).mean())


def copy_schedule(rng: np.random.Generator, cfg: dict[str, Any], steps: int) -> Any:
    """Training batches of the copy task: L uniform in 1..L_max, L_max rising
    linearly from min(3, hi) to hi over the first half of the steps."""
    hi = cfg["copy_hi"]

    def batches(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lmax = min(hi, round(min(3, hi) + (hi - min(3, hi)) * k / max(steps / 2, 1)))
        return copy_batch(rng, cfg["batch"], int(rng.integers(1, lmax + 1)), cfg["bits"])
    return batches


def recall_schedule(rng: np.random.Generator, cfg: dict[str, Any], steps: int) -> Any:
    """Training batches of associative recall: items uniform in lo..hi_k,
    hi_k rising linearly from lo to hi over the first `recall_ramp` fraction
    of the steps (default a half)."""
    lo, hi = cfg["items_lo"], cfg["items_hi"]
    ramp = max(steps * cfg.get("recall_ramp", 0.5), 1)

    def batches(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        top = min(hi, round(lo + (hi - lo) * k / ramp))
        x, t, a, _ = recall_batch(rng, cfg["batch"], int(rng.integers(lo, top + 1)),
                                  cfg["item_len"], cfg["bits"])
        return x, t, a
    return batches


# ---------------------------------------------------------------------------
# Figures

def error_curves(results: dict[str, Any], cfg: dict[str, Any], title: str) -> str:
    """Bit errors per sequence against copy length and recall items, DNC vs LSTM."""
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    tasks = [t for t in (("copy", "sequence length L", cfg["copy_hi"], "copy"),
                         ("recall", "number of items", cfg.get("items_hi"), "associative recall"))
             if f"{t[0]}_dnc_bit_errors" in results]
    fig = Figure(figsize=(4.6 * len(tasks), 3.4), layout="constrained")
    FigureCanvasSVG(fig)
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, (task, xlabel, trained, name) in zip(axes, tasks):
        xs = results[f"{task}_eval"]
        ax.axvspan(min(xs) - 0.5, trained + 0.5, color="#e5e7eb", alpha=0.6,
                   label="trained range")
        ax.plot(xs, results[f"{task}_dnc_bit_errors"], "o-", color="#2563eb", label="DNC")
        ax.plot(xs, results[f"{task}_lstm_bit_errors"], "s--", color="#dc2626",
                label=f"LSTM ({results[task + '_lstm_hidden']} units)")
        ax.set(xlabel=xlabel, ylabel="bit errors per sequence", title=name,
               xlim=(min(xs) - 0.5, max(xs) + 0.5))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title, fontsize=11)
    return svg_text(fig)


# ---------------------------------------------------------------------------

def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        steps: Optional[int] = None, full: bool = False, task: str = "both",
        overrides: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Train both models on both tasks, evaluate, draw; returns {"figures",
    "results", "reproduces"}. The data is made here (`data` is ignored).
    `full` (the command line): both tasks at the sizes of the module
    docstring; else the gallery's small copy task. `steps` overrides the
    number of training steps of each task; task "copy" or "recall" runs one
    only; `overrides` replaces entries of the configuration."""
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
    cfg = {**CONFIGS["quick" if quick else "full" if full else "embedded"], **(overrides or {})}
    if task not in ("both", "copy", "recall"):
        raise ValueError(f"dnc.run: task must be 'both', 'copy' or 'recall', got {task!r}")
    bits, B = cfg["bits"], cfg["batch"]
    copy_steps = 0 if task == "recall" else cfg["copy_steps"] if steps is None else steps
    recall_steps = 0 if task == "copy" or not cfg["recall_steps"] else \
        cfg["recall_steps"] if steps is None else steps
    parts = ([f"copy of {bits}-bit vectors, trained lengths 1..{cfg['copy_hi']} (seed {SEED + 1})"]
             if copy_steps else [])
    if recall_steps:
        parts.append(f"associative recall of {cfg['item_len']}-vector items, trained "
                     f"{cfg['items_lo']}..{cfg['items_hi']} items (seed {SEED + 2})")
    parts.append(f"{cfg['n_test']} held-out sequences per length (seed {SEED + 100} + length)")
    ex.data_source = "synthetic, made in the example: " + "; ".join(parts)
    print(f"data: {ex.data_source}", flush=True)
    res = ex.results
    log_every = max(min(n for n in (copy_steps, recall_steps) if n) // 10, 1)
    timings: dict[str, float] = {}
    tasks = [("copy", bits + 1, copy_steps, copy_schedule, cfg["lr"], 1)] if copy_steps else []
    if recall_steps:
        tasks.append(("recall", bits + 2, recall_steps, recall_schedule,
                      cfg.get("recall_lr", cfg["lr"]), cfg.get("recall_reads", 1)))
    models: dict[str, tg.nn.Module] = {}
    for task, n_in, n_steps, schedule, lr, reads in tasks:
        dnc = DNCNet(n_in, bits, cfg, seed=SEED, num_reads=reads)
        hidden = lstm_hidden_for(dnc.num_parameters(), n_in, bits)
        lstm = LSTMNet(n_in, bits, hidden, seed=SEED)
        res.update({f"{task}_dnc_parameters": dnc.num_parameters(),
                    f"{task}_lstm_parameters": lstm.num_parameters(),
                    f"{task}_lstm_hidden": hidden})
        print(f"{task}: DNC {dnc.num_parameters():,} parameters, LSTM({hidden}) "
              f"{lstm.num_parameters():,}; {n_steps} Adam steps of {B} sequences", flush=True)
        for kind, model in (("dnc", dnc), ("lstm", lstm)):
            seed = SEED + (1 if task == "copy" else 2)     # both models see the same batches
            res[f"{task}_optimizer"] = f"Adam(lr={lr}), clip_grad_norm_({CLIP})"
            t0, c0 = time.perf_counter(), time.process_time()
            losses = train(model, schedule(np.random.default_rng(seed), cfg, n_steps), n_steps,
                           lr, f"{task} {kind}", log_every)
            timings[f"{task}_{kind}_train_seconds"] = round(time.perf_counter() - t0, 1)
            timings[f"{task}_{kind}_train_cpu_seconds"] = round(time.process_time() - c0, 1)
            tail = max(len(losses) // 10, 1)
            res[f"{task}_{kind}_final_loss"] = float(np.mean(losses[-tail:]))
            models[f"{task}_{kind}"] = model
        # held out: another seed, the same sequences for both models
        key = "copy_eval" if task == "copy" else "recall_eval"
        res[f"{task}_eval"] = list(cfg[key])
        for kind in ("dnc", "lstm"):
            res[f"{task}_{kind}_bit_errors"] = []
        for n in cfg[key]:
            rng = np.random.default_rng(SEED + 100 + n)
            if task == "copy":
                x, target, answer = copy_batch(rng, cfg["n_test"], n, bits)
            else:
                x, target, answer, _ = recall_batch(rng, cfg["n_test"], n, cfg["item_len"], bits)
            errs = {k: evaluate(models[f"{task}_{k}"], x, target, answer) for k in ("dnc", "lstm")}
            for k, e in errs.items():
                res[f"{task}_{k}_bit_errors"].append(e)
            print(f"  {task} held out, {'L' if task == 'copy' else 'items'} = {n} "
                  f"({int(answer.sum()) * bits} answer bits): bit errors per sequence DNC "
                  f"{errs['dnc']:.2f}, LSTM {errs['lstm']:.2f}", flush=True)
    res.update(timings)
    res.update(bits=bits, batch_size=B, copy_steps=copy_steps, recall_steps=recall_steps,
               memory_size=cfg["memory"], word_size=cfg["word"], controller_hidden=cfg["hidden"],
               n_test=cfg["n_test"], seed=SEED,
               bit_errors="per held-out sequence: sum over its answer bits of "
                          "|round(sigmoid(y)) - target|, mean over n_test sequences",
               blas_threads=os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
               cpus=os.cpu_count())
    if copy_steps:
        res.update(copy_trained_lengths=[1, cfg["copy_hi"]], copy_num_reads=1)
    if recall_steps:
        res.update(recall_item_len=cfg["item_len"], recall_num_reads=cfg.get("recall_reads", 1),
                   recall_trained_items=[cfg["items_lo"], cfg["items_hi"]],
                   recall_curriculum_fraction=cfg.get("recall_ramp", 0.5))
    if copy_steps:
        draw_in_action(ex, models["copy_dnc"], cfg)
    done = [t for t in ("copy", "recall") if f"{t}_eval" in res]
    summary = "; ".join(f"DNC {t}: " + ", ".join(f"{n}: {e:.2f}" for n, e in zip(
        res[f"{t}_eval"], res[f"{t}_dnc_bit_errors"])) for t in done)
    ex.figure(error_curves(res, cfg, f"Bit errors per held-out sequence ({summary})"),
              "errors.svg",
              f"Mistakes per held-out sequence (wrong output bits, averaged over "
              f"{cfg['n_test']} sequences) of the DNC and of an LSTM with about as many "
              f"weights ({res[done[0] + '_lstm_parameters']:,} vs "
              f"{res[done[0] + '_dnc_parameters']:,}), against "
              + " and ".join({"copy": "the length of the sequence to copy",
                              "recall": "the number of items to search (associative recall)"}[t]
                             for t in done)
              + ". The grey band is what they were trained on; to its right, lengths neither "
                "model has seen.")
    return ex.finish()


def draw_in_action(ex: Example, model: DNCNet, cfg: dict[str, Any]) -> None:
    """The trained DNC on one held-out copy sequence: tg.draw_memory of its trace."""
    L, bits = cfg["shown"], cfg["bits"]
    x, target, answer = copy_batch(np.random.default_rng(SEED + 200), 1, L, bits)
    with tg.no_grad():
        y, _, trace = model.dnc(x, trace=True)
    errors = int(bit_errors(y.data, target, answer)[0])
    ex.results.update(shown_length=L, shown_bit_errors=errors)
    chart = tg.draw_memory(trace, inputs=x[:, 0], outputs=1 / (1 + np.exp(-y.data[:, 0])),
                           targets=target[:, 0],
                           title=f"The DNC copying {L} vectors ({errors} of {L * bits} bits "
                                 "wrong)")
    ex.figure(chart, "dnc_in_action.svg",
              f"The trained DNC copying a held-out sequence of {L} random {bits}-bit vectors. "
              "Each panel has time across, one column per step; dark means a value near 1. "
              f"Input: the {L} vectors, then the delimiter (the last channel) that says "
              "'now repeat them'. Write weighting: the memory row written at each step; "
              "each vector goes to a free row (not necessarily the next one). Read weighting: "
              "the row read; after the delimiter the read visits the same rows in the order "
              "they were written, following the memory's temporal links, and the output "
              "repeats the input (only the steps after the delimiter are scored, the output "
              "before them is free). Usage: how full each row is; a row stays used once "
              "written.")


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=None,
                   help=f"training steps per task (default {CONFIGS['full']['copy_steps']} "
                        f"copy, {CONFIGS['full']['recall_steps']} recall)")
    p.add_argument("--task", choices=("both", "copy", "recall"), default="both",
                   help="run one task only (default both)")
    p.add_argument("--recall-lr", type=float, default=None,
                   help=f"Adam's learning rate on recall (default "
                        f"{CONFIGS['full'].get('recall_lr', CONFIGS['full']['lr'])})")
    p.add_argument("--recall-reads", type=int, default=None,
                   help="the DNC's read heads on recall (default "
                        f"{CONFIGS['full'].get('recall_reads', 1)})")
    p.add_argument("--recall-ramp", type=float, default=None,
                   help="fraction of the recall steps over which the curriculum reaches the "
                        f"most items (default {CONFIGS['full'].get('recall_ramp', 0.5)})")
    args = p.parse_args()
    over = {k: v for k, v in (("recall_lr", args.recall_lr), ("recall_reads", args.recall_reads),
                              ("recall_ramp", args.recall_ramp)) if v is not None}
    run(args.out, args.quick, None, args.steps, full=True, task=args.task, overrides=over)


if __name__ == "__main__":
    main()
