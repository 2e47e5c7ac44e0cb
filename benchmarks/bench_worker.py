"""One implementation of one benchmark, alive in its own process.

Why a process each: with more than one thread, numpy's OpenBLAS and torch's
OpenMP keep their worker threads spinning for a while after each call (OpenBLAS
for up to ~0.1 s). In one process the two pools fight for the same 2 cores, and
torch's 2-thread MLP step measured 3.8 ms instead of 1.0 ms. In separate
processes, with the parent asking one worker at a time for a sample (and
letting the spinning threads settle in between), each library runs as it
would on its own. Each worker also imports only what its engine needs, so
tensorgraph never shares its process (and its garbage collector) with torch.

The parent talks to a worker over a Pipe: ("sample",) -> (seconds, minor page
faults) per call, ("check",) -> a result to compare across implementations,
("epoch", seed) -> (seconds, minor page faults, loss, test accuracy), ("stop",).
"""
from __future__ import annotations

import contextlib
import gc
import importlib
import os
import resource
import time
from typing import Any, Callable, Iterator


@contextlib.contextmanager
def _gc_disabled() -> Iterator[None]:
    """A sample with the cyclic garbage collector off: the difference from
    the normal row is what the collector costs tensorgraph's graph objects."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextlib.contextmanager
def _heap_unfrozen() -> Iterator[None]:
    """A sample with the imported modules' objects back in the collector's
    oldest generation, as in a plain script. A full collection first, so that
    the collector's count of long-lived objects (which decides when the next
    full collection comes) includes them."""
    gc.unfreeze()
    gc.collect()
    try:
        yield
    finally:
        gc.freeze()


def _minor_faults() -> int:
    """Page faults served without I/O so far: fresh memory the kernel had to
    zero, e.g. after the allocator returned freed memory to the system."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _thread_info(torch: Any) -> dict[str, Any]:
    info: dict[str, Any] = {}
    try:
        from threadpoolctl import threadpool_info
        pools = []
        for d in threadpool_info():
            desc = f"{d.get('internal_api')} {d.get('version') or ''}".strip()
            if d.get("architecture"):
                desc += f" kernel={d['architecture']}"
            desc += f" threads={d.get('num_threads')}"
            pools.append(desc)
        info["thread pools"] = "; ".join(pools)
    except ImportError:
        info["thread pools"] = "(install threadpoolctl to see them)"
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch threads"] = torch.get_num_threads()
        cap = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")()
        info["torch BLAS"] = ("MKL" if torch.backends.mkl.is_available() else "non-MKL") + \
            f", CPU capability {cap}"
    return info


def _build(spec: dict[str, Any], torch: Any) -> dict[str, Any]:
    """The callables for this worker: fn (one timed call), check, epoch."""
    import numpy as np

    import bench_chain
    import bench_mlp
    import bench_mnist
    bench, impl = spec["bench"], spec["impl"]
    out: dict[str, Any] = {}
    if bench.startswith(("maxpool_", "batchnorm_")):
        import bench_pool
        return bench_pool.build(spec, torch)
    if bench == "replay_chain":
        import bench_replay
        make = {"tg_replay": bench_replay.tensorgraph_replay_chain,
                "numpy": bench_replay.numpy_chain_forward,
                "torch": lambda: bench_replay.torch_chain_forward(torch),
                "torch_nograd": lambda: bench_replay.torch_chain_forward(torch, no_grad=True)}[impl]
        out["fn"] = make()
        out["check"] = lambda: make()()
        return out
    if bench == "replay_mlp":
        import bench_replay
        fwd = bench_replay.MLPForward(impl, bench_mlp.init_params(spec["seed"]), torch,
                                      seed=spec["seed"] + 1)
        out["fn"], out["check"] = fwd.step, fwd.check
        return out
    if bench == "conv":
        import bench_conv
        out["fn"], out["check"] = bench_conv.make(impl, spec["layer"], torch, spec["seed"])
        return out
    if bench == "chain":
        make = {"tg": bench_chain.tensorgraph_chain, "numpy": bench_chain.numpy_chain,
                "torch": lambda: bench_chain.torch_chain(torch)}[impl]
        out["fn"] = make()
        out["check"] = lambda: make()()
        return out

    params = bench_mlp.init_params(spec["seed"])

    def make_trainer() -> Any:
        if impl == "tg":
            return bench_mlp.TensorgraphMLP(params)
        if impl == "tg_nn":
            return bench_mlp.TensorgraphNNMLP(params)
        if impl == "numpy":
            return bench_mlp.NumpyMLP(params)
        if impl == "tg_replay":       # the captured training step (gradients as graph)
            import bench_replay
            return bench_replay.ReplayMLP(params)
        return bench_mlp.TorchMLP(torch, params)

    if bench == "mlp":
        batches = bench_mlp.random_batches(spec["seed"] + 1)
        trainer = make_trainer()
        state = [0]

        def step() -> float:
            i = state[0]
            state[0] = i + 1
            return trainer.step(*batches[i % len(batches)])

        def check() -> tuple[list[float], list[np.ndarray]]:
            t = make_trainer()
            losses = [t.step(*batches[i % len(batches)]) for i in range(3)]
            return losses, [np.array(a) for a in t.arrays()]
        out["fn"], out["check"] = step, check
        return out

    make_trainer()   # fail now (e.g. ImportError for nn/optim), not at the first epoch
    data = bench_mnist.load_mnist(spec["data"])

    def epoch(seed: int) -> tuple[float, float, float]:
        t = make_trainer()
        loss, secs = bench_mnist.run_epoch(t.step, data[0], data[1], bench_mlp.BATCH, seed)
        return loss, secs, bench_mlp.accuracy(t.arrays(), data[2], data[3])
    out["epoch"] = epoch
    return out


def worker_main(conn: Any, spec: dict[str, Any]) -> None:
    """Entry point of a worker process (multiprocessing, spawn)."""
    try:
        torch = None
        if spec["impl"].startswith("torch"):
            import torch  # type: ignore[no-redef]
            torch.set_num_threads(spec["threads"])
        try:
            from threadpoolctl import threadpool_limits
            threadpool_limits(spec["threads"])
        except ImportError:
            pass
        if spec["impl"].startswith("tg"):
            importlib.import_module("tensorgraph")   # before the freeze
        parts = _build(spec, torch)
        if spec["freeze"]:
            gc.collect()
            gc.freeze()
        context: Callable[[], Any] = {None: contextlib.nullcontext, "gc_off": _gc_disabled,
                                      "unfrozen": _heap_unfrozen}[spec.get("diag")]
        number = 1
        fn = parts.get("fn")
        if fn is not None:   # warm up, then calibrate calls per sample
            with context():
                for _ in range(spec["warmup"]):
                    fn()
                while True:
                    t0 = time.perf_counter()
                    for _ in range(number):
                        fn()
                    elapsed = time.perf_counter() - t0
                    if elapsed >= spec["min_time"] / 2:
                        break
                    number *= 2
            number = max(1, round(number * spec["min_time"] / max(elapsed, 1e-9)))
        conn.send(("ready", {"pid": os.getpid(), "calls per sample": number,
                             **_thread_info(torch)}))
        while True:
            msg = conn.recv()
            if msg[0] == "stop":
                break
            if msg[0] == "sample":
                # No gc.collect() before a sample: it would reset the collector's
                # counters, and the periodic full collections would never fall in one.
                with context():
                    f0 = _minor_faults()
                    t0 = time.perf_counter()
                    for _ in range(number):
                        fn()
                    secs = (time.perf_counter() - t0) / number
                    conn.send(("ok", (secs, (_minor_faults() - f0) / number)))
            elif msg[0] == "check":
                conn.send(("ok", parts["check"]()))
            elif msg[0] == "epoch":
                f0 = _minor_faults()
                loss, secs, acc = parts["epoch"](msg[1])
                conn.send(("ok", (secs, _minor_faults() - f0, loss, acc)))
            else:
                conn.send(("error", f"unknown command {msg[0]!r}"))
    except BaseException as e:   # report, so the parent can name the worker
        import traceback
        try:
            conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
        except (OSError, ValueError):
            pass
    finally:
        conn.close()
