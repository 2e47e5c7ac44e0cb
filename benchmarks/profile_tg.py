"""Profile the tensorgraph side of the benchmarks: where does the time go?

    python benchmarks/profile_tg.py                 # cProfile of chain and mlp
    python benchmarks/profile_tg.py --only mlp --top 30
    python benchmarks/profile_tg.py --lines         # line by line (needs line_profiler)
    python benchmarks/profile_tg.py --phases        # MLP step: forward/backward/update vs numpy

cProfile: functions sorted by their own time (tottime), per op for the chain
and per step for the MLP. --lines runs line_profiler over the engine's hot
functions (record, _new, Node.__init__, _backprop, _topological, unbroadcast,
_store_grad, _operand, the matmul VJPs, ...) and prints each line's share.
Run with the same thread and OpenBLAS settings as run.py (it re-executes itself
the same way).
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
import io
import os
import pstats
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.join(_HERE, ".."))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=("chain", "mlp"), action="append")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--lines", action="store_true", help="line-by-line profile (line_profiler)")
    ap.add_argument("--phases", action="store_true",
                    help="time the MLP step's phases, tensorgraph against the numpy floor")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--keep-openblas-env", action="store_true")
    args = ap.parse_args(argv)
    import run   # same environment preparation as the benchmarks
    run.prepare_environment(args)
    only = args.only or ["chain", "mlp"]

    import bench_chain
    import bench_mlp
    gc.collect()
    gc.freeze()   # as run.py does
    if args.phases:
        _phases(bench_mlp)
        return 0

    jobs = []
    if "chain" in only:
        fn = bench_chain.tensorgraph_chain()
        jobs.append(("chain", fn, 50, bench_chain.STEPS * bench_chain.OPS_PER_STEP, "op"))
    if "mlp" in only:
        trainer = bench_mlp.TensorgraphMLP(bench_mlp.init_params(0))
        batches = bench_mlp.random_batches(1)
        jobs.append(("mlp", lambda: trainer.step(*batches[0]), 300, 1, "step"))

    for name, fn, calls, per, unit in jobs:
        for _ in range(3):
            fn()
        if args.lines:
            _line_profile(name, fn, calls)
            continue
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(calls):
            fn()
        prof.disable()
        out = io.StringIO()
        st = pstats.Stats(prof, stream=out)
        total = st.total_tt  # type: ignore[attr-defined]
        print(f"== {name}: {calls} calls, {total / calls / per * 1e6:.2f} us per {unit} "
              f"under cProfile (profiling inflates small functions)")
        st.sort_stats("tottime").print_stats(args.top)
        print("\n".join(_trim(out.getvalue(), total, calls * per, unit)))
    return 0


def _trim(text: str, total: float, n: int, unit: str) -> list[str]:
    """Keep pstats' table, adding the per-unit time and share of each row."""
    lines = text.splitlines()
    out = []
    started = False
    for line in lines:
        if line.strip().startswith("ncalls"):
            started = True
            out.append(f"{'us/' + unit:>9} {'share':>6}  " + line)
            continue
        if started and line.strip():
            parts = line.split()
            try:
                tottime = float(parts[1])
            except (IndexError, ValueError):
                continue
            out.append(f"{tottime / n * 1e6:9.3f} {tottime / total:6.1%}  " + line)
    return out


def _line_profile(name: str, fn, calls: int) -> None:
    try:
        from line_profiler import LineProfiler
    except ImportError:
        print("--lines needs line_profiler (pip install line_profiler)", file=sys.stderr)
        sys.exit(2)
    importlib.import_module("tensorgraph")   # its re-exported names shadow its modules:
    tt, ag, ops = (sys.modules[f"tensorgraph.{m}"] for m in ("tensor", "autograd", "ops"))
    names = {tt: ["record", "_new", "Node.__init__"],
             ag: ["_backprop", "_topological", "unbroadcast", "_store_grad"],
             ops: ["_operand", "Op.__call__", "_unary", "_binary", "_matmul_vjp_a",
                   "_matmul_vjp_b", "_index_add", "getitem", "_index", "_mean_vjp"]}
    targets = []
    for mod, fns in names.items():
        for dotted in fns:   # skip what a later version of the core renamed
            obj = mod
            for part in dotted.split("."):
                obj = getattr(obj, part, None)
            if callable(obj):
                targets.append(obj)
    lp = LineProfiler(*targets)
    lp.enable_by_count()
    for _ in range(calls):
        fn()
    lp.disable_by_count()
    print(f"== {name}: line profile over {calls} calls")
    lp.print_stats(stripzeros=True)


def _phases(bench_mlp, repeats: int = 21, number: int = 30) -> None:
    """Forward, backward and update of one MLP step, tensorgraph (core ops)
    against the hand-written numpy step, interleaved; medians in us."""
    import statistics
    import time

    import numpy as np

    import tensorgraph as tg
    pc = time.perf_counter
    params = bench_mlp.init_params(0)
    X, y = bench_mlp.random_batches(1)[0]
    rows = np.arange(len(y))
    ps = [tg.tensor(a.copy(), requires_grad=True) for a in params]
    P = [a.copy() for a in params]
    lr = np.float32(bench_mlp.LR)

    def tg_step(T: dict) -> None:
        W1, b1, W2, b2, W3, b3 = ps
        t0 = pc()
        h = tg.relu(tg.tensor(X) @ W1 + b1)
        h = tg.relu(h @ W2 + b2)
        loss = -tg.log_softmax(h @ W3 + b3, axis=-1)[rows, y].mean()
        t1 = pc()
        loss.backward()
        t2 = pc()
        for p in ps:
            p.data -= lr * p.grad.data
            p.grad = None
        t3 = pc()
        del loss, h
        T["forward"] += t1 - t0
        T["backward"] += t2 - t1
        T["update"] += t3 - t2
        T["free graph"] += pc() - t3

    def np_step(T: dict) -> None:
        W1, b1, W2, b2, W3, b3 = P
        t0 = pc()
        z1 = X @ W1 + b1
        h1 = np.maximum(z1, 0)
        z2 = h1 @ W2 + b2
        h2 = np.maximum(z2, 0)
        logits = h2 @ W3 + b3
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        loss = -(shifted[rows, y] - np.log(s[:, 0])).mean()
        t1 = pc()
        d3 = e / s
        d3[rows, y] -= 1
        d3 /= len(y)
        grads = [None] * 6
        grads[4], grads[5] = h2.T @ d3, d3.sum(axis=0)
        d2 = (d3 @ W3.T) * (z2 > 0)
        grads[2], grads[3] = h1.T @ d2, d2.sum(axis=0)
        d1 = (d2 @ W2.T) * (z1 > 0)
        grads[0], grads[1] = X.T @ d1, d1.sum(axis=0)
        t2 = pc()
        for p, g in zip(P, grads):
            p -= lr * g
        t3 = pc()
        del z1, h1, z2, h2, logits, shifted, e, s, d3, d2, d1, grads, loss
        T["forward"] += t1 - t0
        T["backward"] += t2 - t1
        T["update"] += t3 - t2
        T["free graph"] += pc() - t3

    runs: dict[str, list[dict]] = {"tensorgraph": [], "numpy": []}
    for _ in range(repeats):
        for name, fn in (("tensorgraph", tg_step), ("numpy", np_step)):
            T = dict.fromkeys(("forward", "backward", "update", "free graph"), 0.0)
            for _ in range(number):
                fn(T)
            runs[name].append(T)
    print(f"MLP step phases, median over {repeats} samples of {number} steps, us per step")
    med = {name: {k: statistics.median(t[k] for t in ts) / number * 1e6 for k in ts[0]}
           for name, ts in runs.items()}
    print(f"{'':12s}" + "".join(f"{k:>12s}" for k in med["numpy"]) + f"{'total':>12s}")
    for name, m in med.items():
        print(f"{name:12s}" + "".join(f"{v:12.1f}" for v in m.values()) + f"{sum(m.values()):12.1f}")
    print(f"{'difference':12s}" + "".join(f"{med['tensorgraph'][k] - med['numpy'][k]:+12.1f}"
                                           for k in med["numpy"]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
