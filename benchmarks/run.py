"""Run tensorgraph's benchmarks and print a table of ratios measured in one run.

    python benchmarks/run.py                  # everything (2-3 minutes on an idle machine)
    python benchmarks/run.py --quick          # a smoke run (under a minute)
    python benchmarks/run.py --only chain     # or mlp, mnist, replay_chain, replay_mlp, conv, embedding, pool, rnn, dqn
    python benchmarks/run.py --repeats 21 --json results.json

Benchmarks (see benchmarks/README.md):
  chain  per-op overhead: x = tanh(x * w + b), 1,000 steps, forward + backward, us/op
  mlp    one training step of 784-256-256-10 ReLU, batch 128, float32, cross-entropy, SGD
  mnist  one epoch of that network over MNIST's 60,000 training images (--data DIR)
  replay_chain  the chain's forward replayed from a captured graph (tg.capture), us/op
  replay_mlp    the MLP's forward (to the logits) replayed from a captured graph, ms
  conv   conv2d forward + backward on the book's two conv layers, batch 64, 5x5 'same', ms
  embedding  embedding lookup forward + backward, 10,000 x 256 table, 32 x 35 ids, ms
  pool   max_pool2d 2x2 and batch_norm (training) forward + backward, batch 64,
         32x28x28 and 64x14x14 (the book's conv net), float32, ms
  rnn    one LSTM training step: 10,000 x 256 embedding, LSTM(256, 256), batch 32, 35 steps, ms
  dqn    the DQN training loop on CartPole-v1 (Q-network 4-128-128-2, Adam, replay batch 64,
         one gradient step per env step): us per env step and env steps/s, in one process,
         engines alternating, always at 1 thread (bench_dqn.py)

Each is run for tensorgraph, hand-written numpy (the floor for a numpy engine) and
PyTorch CPU eager (when installed), each in its own worker process, round robin,
and quoted as the median over repeats.

Threads: numpy's BLAS and torch both get --threads (default: all cores).
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: this workplace sets them on some processors
for old OpenBLAS builds; they pin numpy's current OpenBLAS to an older, slower
kernel. Unless --keep-openblas-env is given, this script re-executes itself once
with both removed (for this process and its workers only).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys

from bench_common import Worker, WorkerError, machine_info, round_robin, start_workers

_HERE = os.path.dirname(os.path.abspath(__file__))
_OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_REMOVED_MARK = "TG_BENCH_REMOVED_OPENBLAS_ENV"
DEFAULT_DATA = os.path.join(_HERE, "..", "..", "shared", "data", "mnist")
BENCHMARKS = ("chain", "mlp", "mnist", "replay_chain", "replay_mlp", "conv", "embedding", "pool", "rnn",
              "dqn")

NUMPY, TORCH = "numpy (by hand)", "pytorch eager"
TG, TG_NN = "tensorgraph (core ops)", "tensorgraph (nn/optim)"
TG_GC_OFF = "diagnostic: tensorgraph, cyclic GC off"
TG_UNFROZEN = "diagnostic: tensorgraph, heap not frozen"
TG_REPLAY = "tensorgraph replay (tg.capture)"
TG_EAGER_NOGRAD = "tensorgraph eager, no_grad"
TORCH_NOGRAD = "pytorch eager, no_grad"
IMPL_KEYS = {TG: "tg", TG_NN: "tg_nn", NUMPY: "numpy", TORCH: "torch", TG_REPLAY: "tg_replay",
             TG_EAGER_NOGRAD: "tg", TORCH_NOGRAD: "torch_nograd"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[1:]))
    ap.add_argument("--only", action="append", default=None,
                    help="run only these benchmarks: chain, mlp, mnist, replay_chain, replay_mlp, conv, embedding, pool, rnn, dqn "
                         "(repeatable or comma-separated)")
    ap.add_argument("--quick", action="store_true", help="fewer repeats and shorter samples (a smoke run)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="samples per implementation for chain and mlp (default 15, quick 3)")
    ap.add_argument("--epoch-repeats", type=int, default=None,
                    help="epochs per implementation for mnist (default 5, quick 1)")
    ap.add_argument("--min-time", type=float, default=None,
                    help="seconds each chain/mlp sample lasts at least (default 0.2, quick 0.1)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="threads for numpy's BLAS and for torch (default: all cores, %(default)s)")
    ap.add_argument("--settle", type=float, default=None,
                    help="seconds to wait before each sample so that the previous worker's BLAS/"
                         "OpenMP threads stop spinning (default 0.2 with several threads, else 0)")
    ap.add_argument("--data", default=DEFAULT_DATA,
                    help="directory with the four MNIST IDX files (mnist is skipped when missing)")
    ap.add_argument("--epoch-budget", type=float, default=300.0,
                    help="stop repeating mnist epochs once they took this many seconds (default %(default)s)")
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    ap.add_argument("--keep-openblas-env", action="store_true",
                    help="keep OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE as set in the environment")
    ap.add_argument("--no-gc-freeze", action="store_true",
                    help="do not gc.freeze() the imported modules' objects before timing")
    ap.add_argument("--no-diagnostics", action="store_true",
                    help="leave out the chain's diagnostic rows (tensorgraph with the cyclic GC "
                         "off, and with the heap not frozen)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--seed", type=int, default=0, help="seed for weights and data")
    args = ap.parse_args(argv)
    only = [b.strip() for o in (args.only or list(BENCHMARKS)) for b in o.split(",") if b.strip()]
    for b in only:
        if b not in BENCHMARKS:
            ap.error(f"--only: unknown benchmark {b!r} (choose from {', '.join(BENCHMARKS)})")
    args.only = only
    args.repeats = args.repeats or (3 if args.quick else 15)
    args.epoch_repeats = args.epoch_repeats or (1 if args.quick else 5)
    args.min_time = args.min_time or (0.1 if args.quick else 0.2)
    if args.settle is None:
        args.settle = 0.2 if args.threads > 1 else 0.0
    if args.repeats < 1 or args.epoch_repeats < 1 or args.threads < 1:
        ap.error("--repeats, --epoch-repeats and --threads must be positive")
    return args


def prepare_environment(args: argparse.Namespace) -> None:
    """Before numpy is imported: drop the OpenBLAS core-type pin (re-exec) and
    fix the thread counts of every BLAS/OpenMP runtime by environment (the
    workers inherit it)."""
    if not args.keep_openblas_env and any(v in os.environ for v in _OPENBLAS_VARS):
        env = dict(os.environ)
        env[_REMOVED_MARK] = ", ".join(f"{v}={env.pop(v)}" for v in _OPENBLAS_VARS if v in env)
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable] + sys.argv, env)   # this script again
    n = str(args.threads)
    for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = n


def paired_ratio(a: Worker, b: Worker) -> float:
    """Median over repeats of a's time / b's time in the same repeat: the two
    ran back to back, under the same load, so the ratio is steadier than a
    ratio of medians on a shared machine."""
    return statistics.median(x / y for x, y in zip(a.times, b.times))


class Report:
    """The rows and targets of the final tables."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.targets: list[dict] = []

    def add(self, bench: str, unit: str, scale: float, workers: list[Worker],
            extra: dict[str, dict] | None = None, calls_per_sample: int = 1) -> dict[str, Worker]:
        by_name = {w.name: w for w in workers}
        for w in workers:
            row = {"benchmark": bench, "implementation": w.name, "unit": unit,
                   "median": w.median * scale, "min": w.best * scale, "max": w.worst * scale,
                   "samples": [t * scale for t in w.times], "worker": w.info,
                   "page faults per step (median)": statistics.median(w.faults) / calls_per_sample,
                   **((extra or {}).get(w.name, {}))}
            for ref, col in ((NUMPY, "vs numpy"), (TORCH, "vs torch")):
                if ref in by_name:
                    row[col] = paired_ratio(w, by_name[ref])
                    row[col + " (best)"] = w.best / by_name[ref].best
            self.rows.append(row)
            faults = row["page faults per step (median)"]
            if faults > 50:
                print(f"  note: {w.name} takes {faults:.0f} minor page faults per step: the "
                      "allocator keeps handing memory back to the system and re-faulting it "
                      "(see benchmarks/README.md, 'Page faults')")
        return by_name

    def target(self, what: str, done: dict[str, Worker], name: str, ref: str, limit: float) -> None:
        if name not in done:
            return
        if ref not in done:
            self.targets.append({"target": what, "ratio": None, "best": None, "limit": limit,
                                 "result": "n/a"})
            return
        ratio = paired_ratio(done[name], done[ref])
        self.targets.append({"target": what, "ratio": ratio, "limit": limit,
                             "best": done[name].best / done[ref].best,
                             "result": "PASS" if ratio <= limit else "MISS"})

    def not_measurable(self, what: str, limit: float, why: str) -> None:
        """A target of the issue that nothing built yet can be measured against."""
        self.targets.append({"target": what, "ratio": None, "best": None, "limit": limit,
                             "result": f"not yet measurable: {why}"})

    def print(self) -> None:
        if not self.rows:
            print("No benchmark ran.")
            return
        print("Results: median over repeats (min - max); ratios are medians of per-repeat "
              "ratios, each repeat running every implementation back to back\n")
        print("| benchmark | implementation | median | min - max | vs numpy | vs torch |")
        print("|---|---|---:|---:|---:|---:|")
        for r in self.rows:
            ratio = lambda k: f"{r[k]:.2f}x" if k in r else "-"  # noqa: E731
            extra = f" (test acc {r['test_acc']:.4f})" if "test_acc" in r else ""
            print(f"| {r['benchmark']} | {r['implementation']}{extra} | {r['median']:.2f} "
                  f"{r['unit']} | {r['min']:.2f} - {r['max']:.2f} | {ratio('vs numpy')} | "
                  f"{ratio('vs torch')} |")
        if self.targets:
            print("\n| target | ratio (median) | ratio of best times | result |")
            print("|---|---:|---:|---|")
            for t in self.targets:
                meas = "-" if t["ratio"] is None else f"{t['ratio']:.2f}x"
                best = "-" if t.get("best") is None else f"{t['best']:.2f}x"
                print(f"| {t['target']} | {meas} | {best} | {t['result']} |")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    prepare_environment(args)
    sys.path.insert(0, _HERE)
    sys.path.insert(0, os.path.join(_HERE, ".."))   # tensorgraph from this tree, even uninstalled
    import numpy as np

    import bench_chain
    import bench_conv
    import bench_embedding
    import bench_mlp
    import bench_rnn
    import bench_mnist
    import bench_pool
    import bench_replay

    # A wrong BLAS kernel gives wrong numbers, not just slow ones: check sgemm.
    rng = np.random.default_rng(0)
    a, b = rng.random((300, 200), dtype=np.float32), rng.random((200, 100), dtype=np.float32)
    if not np.allclose(a @ b, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4):
        print("numpy's float32 matmul is wrong with this OpenBLAS kernel; rerun with "
              "--keep-openblas-env", file=sys.stderr)
        return 2

    have_torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    info = machine_info()
    if os.environ.get(_REMOVED_MARK):
        info["OPENBLAS env removed for this run"] = os.environ[_REMOVED_MARK]
    info["torch"] = "installed" if have_torch else ("left out (--no-torch)" if args.no_torch else
                                                    "not installed: pip install -e '.[bench]'")
    info["gc"] = "imports frozen in each worker" if not args.no_gc_freeze else "not frozen"
    print("Machine")
    for k, v in info.items():
        print(f"  {k}: {v}")
    print(f"Settings: threads={args.threads} (numpy's BLAS and torch), repeats={args.repeats}, "
          f"epoch repeats={args.epoch_repeats}, min sample {args.min_time} s, "
          f"settle {args.settle} s", flush=True)
    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        print(f"Note: the 1-minute load average is {load1:.2f} before we start: other processes "
              "share the cores, so expect noise" + (" (and BLAS threads waiting for a busy core: "
                                                    "--threads 1 is steadier)" if args.threads > 1 else ""))
    print()

    report = Report()
    workers_info: dict[str, dict] = {}

    def spec(bench: str, name: str, **kw) -> dict:
        return {"bench": bench, "impl": IMPL_KEYS[name], "threads": args.threads,
                "seed": args.seed, "freeze": not args.no_gc_freeze, "min_time": args.min_time,
                "warmup": 3, "data": args.data, **kw}

    def engines(bench: str) -> dict[str, dict]:
        names = [TG, TG_NN, NUMPY] if bench != "chain" else [TG, NUMPY]
        if bench == "mlp":
            names.insert(2, TG_REPLAY)    # the captured step: forward, loss, tg.grad, replayed
        if have_torch:
            names.append(TORCH)
        return {n: spec(bench, n) for n in names}

    def run(bench: str, specs: dict[str, dict], body) -> None:
        workers = start_workers(specs, optional=(TG_NN,))
        try:
            body(workers)
        finally:
            for w in workers:
                w.stop()
                workers_info[f"{bench}: {w.name}"] = w.info

    def progress(msg: str) -> None:
        print(msg, flush=True)

    # -- per-op overhead -------------------------------------------------
    if "chain" in args.only:
        n_ops = bench_chain.STEPS * bench_chain.OPS_PER_STEP
        print(f"chain: x = tanh(x * w + b), {bench_chain.STEPS} steps = {n_ops} ops, "
              "forward + backward", flush=True)
        specs = engines("chain")
        if not args.no_diagnostics:
            specs[TG_GC_OFF] = spec("chain", TG, diag="gc_off")
            if not args.no_gc_freeze:
                # Long samples: a full collection comes about every 7 chains.
                specs[TG_UNFROZEN] = spec("chain", TG, diag="unfrozen",
                                          min_time=max(args.min_time, 0.6))

        def chain_body(workers: list[Worker]) -> None:
            bench_chain.check_agree({w.name: w.ask("check") for w in workers if "diag" not in w.spec})
            round_robin(workers, args.repeats, settle=args.settle, progress=progress)
            done = report.add("chain", "us/op", 1e6 / n_ops, workers)
            report.target("chain: per-op overhead <= PyTorch eager", done, TG, TORCH, 1.0)
        run("chain", specs, chain_body)
        print()

    # -- MLP training step ------------------------------------------------
    if "mlp" in args.only:
        print(f"mlp: one SGD step of 784-256-256-10 ReLU, batch {bench_mlp.BATCH}, float32, "
              f"softmax cross-entropy (mean), lr {bench_mlp.LR}", flush=True)

        def mlp_body(workers: list[Worker]) -> None:
            bench_mlp.check_agree_results({w.name: w.ask("check") for w in workers})
            round_robin(workers, args.repeats, settle=args.settle, progress=progress)
            done = report.add("mlp", "ms/step", 1e3, workers)
            for name, label in ((TG, ""), (TG_NN, " (nn/optim)")):
                report.target(f"mlp: step{label} <= PyTorch eager", done, name, TORCH, 1.0)
                report.target(f"mlp: step{label} <= 1.15 x hand-written numpy", done, name,
                              NUMPY, 1.15)
            report.target("mlp: replayed step (tg.capture) <= 1.05 x hand-written numpy", done,
                          TG_REPLAY, NUMPY, 1.05)
        run("mlp", engines("mlp"), mlp_body)
        print()

    # -- MNIST epoch -------------------------------------------------------
    if "mnist" in args.only:
        if not bench_mnist.data_available(args.data):
            print(f"mnist: skipped, no MNIST IDX files in {os.path.abspath(args.data)} "
                  "(--data DIR)\n")
        else:
            print(f"mnist: one epoch over the 60,000 training images, batch {bench_mlp.BATCH}, "
                  f"SGD lr {bench_mlp.LR}, from {os.path.abspath(args.data)}", flush=True)
            log: dict[str, list[tuple[float, float, float]]] = {}

            def epoch_seconds(w: Worker, result: tuple[float, float, float, float]) -> None:
                secs, faults, loss, acc = result
                log.setdefault(w.name, []).append((loss, secs, acc))

            def mnist_body(workers: list[Worker]) -> None:
                round_robin(workers, args.epoch_repeats, command=("epoch", args.seed + 2),
                            settle=args.settle, progress=progress, on_result=epoch_seconds,
                            budget=args.epoch_budget)
                ref = log.get(NUMPY, next(iter(log.values())))[0][0]
                for name, entries in log.items():   # same data, same start: same training
                    if abs(entries[0][0] - ref) > 1e-3 * abs(ref):
                        print(f"  warning: {name} ends the epoch at loss {entries[0][0]:.5f}, "
                              f"numpy at {ref:.5f}")
                extra = {name: {"train_loss": e[-1][0], "test_acc": e[-1][2]}
                         for name, e in log.items()}
                n_steps = -(-60000 // bench_mlp.BATCH)
                done = report.add("mnist", "s/epoch", 1.0, workers, extra, calls_per_sample=n_steps)
                report.target("mnist: epoch <= PyTorch eager", done, TG, TORCH, 1.0)
                report.target("mnist: epoch (nn/optim) <= PyTorch eager", done, TG_NN, TORCH, 1.0)
            run("mnist", engines("mnist"), mnist_body)
            print()

    # -- replay of a captured graph (issue 9) -------------------------------
    if "replay_chain" in args.only:
        n_ops = bench_chain.STEPS * bench_chain.OPS_PER_STEP
        print(f"replay_chain: x = tanh(x * w + b), {bench_chain.STEPS} steps = {n_ops} ops, "
              "forward only; tensorgraph replays the captured graph", flush=True)
        names = [TG_REPLAY, NUMPY] + ([TORCH, TORCH_NOGRAD] if have_torch else [])

        def replay_chain_body(workers: list[Worker]) -> None:
            bench_replay.check_chain({w.name: w.ask("check") for w in workers})
            round_robin(workers, args.repeats, settle=args.settle, progress=progress)
            done = report.add("replay_chain", "us/op", 1e6 / n_ops, workers)
            report.target("replay_chain: replay per op <= 0.5 x PyTorch eager forward",
                          done, TG_REPLAY, TORCH, 0.5)
            report.target("replay_chain: replay per op <= 0.5 x PyTorch eager forward, no_grad",
                          done, TG_REPLAY, TORCH_NOGRAD, 0.5)
        run("replay_chain", {n: spec("replay_chain", n) for n in names}, replay_chain_body)
        print()

    if "replay_mlp" in args.only:
        print(f"replay_mlp: forward of 784-256-256-10 ReLU to the logits, batch {bench_mlp.BATCH}, "
              "float32; tensorgraph replays the captured graph", flush=True)
        names = [TG_REPLAY, TG_EAGER_NOGRAD, NUMPY] + ([TORCH] if have_torch else [])

        def replay_mlp_body(workers: list[Worker]) -> None:
            bench_replay.check_mlp({w.name: w.ask("check") for w in workers})
            round_robin(workers, args.repeats, settle=args.settle, progress=progress)
            done = report.add("replay_mlp", "ms/forward", 1e3, workers)
            report.target("replay_mlp: forward <= 1.05 x hand-written numpy forward",
                          done, TG_REPLAY, NUMPY, 1.05)
        run("replay_mlp", {n: spec("replay_mlp", n) for n in names}, replay_mlp_body)
        print()

    # -- convolution (issue 10) --------------------------------------------
    if "conv" in args.only:
        names = [TG, NUMPY] + ([TORCH] if have_torch else [])
        for layer, (cin, cout, side, input_grad) in bench_conv.LAYERS.items():
            print(f"conv ({layer}): conv2d forward + backward, batch {bench_conv.BATCH}, "
                  f"{cin} -> {cout} channels, {side}x{side}, {bench_conv.K}x{bench_conv.K} "
                  f"'same', float32" + (", input gradient too" if input_grad else ""), flush=True)

            def conv_body(workers: list[Worker], layer: str = layer) -> None:
                bench_conv.check_agree({w.name: w.ask("check") for w in workers})
                round_robin(workers, args.repeats, settle=args.settle, progress=progress)
                done = report.add(f"conv_{layer}", "ms/step", 1e3, workers)
                report.target(f"conv ({layer}): <= 1.5 x hand-written numpy im2col", done, TG,
                              NUMPY, 1.5)
                report.target(f"conv ({layer}): <= 1.25 x PyTorch eager", done, TG, TORCH, 1.25)
            run(f"conv_{layer}", {n: spec("conv", n, layer=layer) for n in names}, conv_body)
            print()

    # -- embedding lookup (issue 11) ---------------------------------------
    if "embedding" in args.only:
        names = [TG, NUMPY] + ([TORCH] if have_torch else [])
        print(f"embedding: lookup forward + backward, {bench_embedding.VOCAB} x "
              f"{bench_embedding.DIM} float32 table, {bench_embedding.BATCH} x "
              f"{bench_embedding.STEPS} ids, dense table gradient", flush=True)

        def embedding_body(workers: list[Worker]) -> None:
            bench_embedding.check_agree({w.name: w.ask("check") for w in workers})
            round_robin(workers, args.repeats, settle=args.settle, progress=progress)
            done = report.add("embedding", "ms/step", 1e3, workers)
            report.target("embedding: <= 1.5 x PyTorch eager", done, TG, TORCH, 1.5)
            report.target("embedding: <= 1.0 x hand-written numpy (np.add.at)", done, TG,
                          NUMPY, 1.0)
        run("embedding", {n: spec("embedding", n) for n in names}, embedding_body)
        print()
    # -- pooling and batch norm (chapter 5) ----------------------------------
    if "pool" in args.only:
        for kind, what in (("maxpool", "max_pool2d(x, 2)"),
                           ("batchnorm", "batch_norm(x, training=True)")):
            for i, shape in enumerate(bench_pool.SHAPES):
                bench = f"{kind}_{i}"
                label = f"{kind} {'x'.join(map(str, shape))}"
                print(f"{label}: {what}, forward + backward, float32", flush=True)
                names = [TG, NUMPY] + ([TORCH] if have_torch else [])

                def pool_body(workers: list[Worker], label: str = label) -> None:
                    bench_pool.check_agree({w.name: w.ask("check") for w in workers})
                    round_robin(workers, args.repeats, settle=args.settle, progress=progress)
                    done = report.add(label, "ms", 1e3, workers)
                    if label.startswith("maxpool"):     # the goal (batch norm has none)
                        report.target(f"{label}: forward + backward <= 1.25 x PyTorch eager",
                                      done, TG, TORCH, 1.25)
                run(bench, {n: spec(bench, n) for n in names}, pool_body)
                print()
    # -- recurrent (issue 11) ----------------------------------------------
    if "rnn" in args.only:
        names = [TG, NUMPY] + ([TORCH] if have_torch else [])
        print(f"rnn: one LSTM training step, embedding {bench_rnn.VOCAB} x {bench_rnn.EMBED}, "
              f"LSTM({bench_rnn.EMBED}, {bench_rnn.HIDDEN}), batch {bench_rnn.BATCH}, "
              f"{bench_rnn.STEPS} steps, Linear to {bench_rnn.CLASSES} classes, cross-entropy, "
              "SGD, float32", flush=True)

        def rnn_body(workers: list[Worker]) -> None:
            bench_rnn.check_agree({w.name: w.ask("check") for w in workers})
            round_robin(workers, args.repeats, settle=args.settle, progress=progress)
            done = report.add("rnn_lstm_step", "ms/step", 1e3, workers)
            report.target("rnn: LSTM training step <= 1.5 x PyTorch eager", done, TG, TORCH, 1.5)
        run("rnn", {n: spec("rnn", n) for n in names}, rnn_body)
        print()

    # -- the DQN loop on CartPole (issue 12) ----------------------------------
    if "dqn" in args.only:
        import bench_dqn
        kinds = tuple(k for k in bench_dqn.KINDS if have_torch or k != "torch")
        steps = 100 if args.quick else 300
        print(f"dqn: the DQN loop on {bench_dqn.ENV_ID}, Q-network "
              f"{'-'.join(map(str, bench_dqn.SIZES))} ReLU, Adam lr {bench_dqn.LR}, replay batch "
              f"{bench_dqn.BATCH}, target sync every {bench_dqn.SYNC} steps, Huber loss; "
              f"{steps} env steps per sample, engines alternating in this process, 1 thread",
              flush=True)
        limiter = bench_dqn.limit_threads(1)
        diffs = bench_dqn.check_same_training(kinds)
        print("  same training (float64, 6 steps from the same weights): largest parameter "
              "difference " + ", ".join(f"{bench_dqn.NAMES[k]} {d:.2g}" for k, d in diffs.items()))
        timings = bench_dqn.measure(kinds, args.repeats, steps, args.seed, progress=progress)
        del limiter
        print(bench_dqn.table(timings))
        extra = {t.name: {"env steps/s": 1 / t.median,
                          "us per step without env (median)": statistics.median(t.no_env) * 1e6,
                          "CPU us per step (median)": statistics.median(t.cpu) * 1e6}
                 for t in timings}
        done = report.add("dqn", "us/env step", 1e6, timings, extra)  # type: ignore[arg-type]
        report.target("dqn: env step (tensorgraph eager) <= PyTorch eager", done,
                      bench_dqn.NAMES["tg"], TORCH, 1.0)
        report.target("dqn: env step (captured step) <= PyTorch eager", done,
                      bench_dqn.NAMES["tg_capture"], TORCH, 1.0)
        print()

    report.print()
    print("\nload average at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "workers": workers_info, "threads": args.threads,
                       "repeats": args.repeats, "epoch_repeats": args.epoch_repeats,
                       "settle": args.settle, "rows": report.rows, "targets": report.targets},
                      f, indent=2, default=str)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except WorkerError as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        sys.exit(1)
