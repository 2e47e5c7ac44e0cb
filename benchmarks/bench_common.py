"""Workers, the round-robin timing loop and the machine description.

Timing protocol (the machine is shared and noisy): every benchmark is a set of
implementations of the same computation, each in its own worker process
(see bench_worker.py for why). Each *repeat* asks every worker for one sample,
one worker at a time, round robin, so a burst of load from another process
hits all of them alike; a sample times as many calls as fill `min_time`
(calibrated after a warm-up) and keeps the mean per call. We quote the median
over repeats; ratios are medians of the per-repeat ratios.
"""
from __future__ import annotations

import multiprocessing
import os
import platform
import statistics
import subprocess
import time
from typing import Any, Callable, Optional


class WorkerError(RuntimeError):
    pass


class Timed:
    """Summaries of `self.times` (seconds per sample) that run.py's report reads."""
    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def worst(self) -> float:
        return max(self.times)


class Worker(Timed):
    """One implementation in its own process (spawned, so it starts clean:
    no thread pools or heap inherited from the parent)."""

    def __init__(self, name: str, spec: dict[str, Any], timeout: float = 600.0) -> None:
        from bench_worker import worker_main
        self.name = name
        self.spec = spec
        self.times: list[float] = []
        self.faults: list[float] = []   # minor page faults per call, per sample
        self.timeout = timeout
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker_main, args=(child, spec), daemon=True)
        self.proc.start()
        child.close()
        self.info: dict[str, Any] = self._recv("ready")

    def _recv(self, expect: str = "ok") -> Any:
        if not self.conn.poll(self.timeout):
            self.stop()
            raise WorkerError(f"{self.name}: no answer within {self.timeout:.0f} s")
        try:
            kind, payload = self.conn.recv()
        except EOFError:
            raise WorkerError(f"{self.name}: worker exited (code {self.proc.exitcode})") from None
        if kind == "error":
            raise WorkerError(f"{self.name}: {payload}")
        if kind != expect:
            raise WorkerError(f"{self.name}: expected {expect!r}, got {kind!r}")
        return payload

    def ask(self, *msg: Any) -> Any:
        self.conn.send(msg)
        return self._recv()

    def stop(self) -> None:
        try:
            self.conn.send(("stop",))
        except (OSError, ValueError):
            pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)



def start_workers(specs: dict[str, dict[str, Any]], optional: tuple[str, ...] = (),
                  log: Callable[[str], None] = print) -> list[Worker]:
    """Start the workers one after the other (each calibrates alone); a worker
    named in `optional` that fails to start is left out with a note."""
    workers = []
    for name, spec in specs.items():
        try:
            w = Worker(name, spec)
        except WorkerError as e:
            if name not in optional:
                for w in workers:
                    w.stop()
                raise
            log(f"  {name}: left out ({str(e).splitlines()[0]})")
            continue
        workers.append(w)
        torch = (f"; torch {w.info['torch']} threads={w.info['torch threads']} "
                 f"({w.info['torch BLAS']})" if "torch" in w.info else "")
        log(f"  {name}: pid {w.info['pid']}, {w.info['calls per sample']} calls per sample, "
            f"{w.info.get('thread pools', '')}{torch}")
    return workers


def round_robin(workers: list[Worker], repeats: int, command: tuple[Any, ...] = ("sample",),
                settle: float = 0.0, progress: Optional[Callable[[str], None]] = None,
                on_result: Optional[Callable[[Worker, Any], None]] = None,
                budget: Optional[float] = None) -> None:
    """Ask each worker in turn for a sample, `repeats` times. `settle` seconds
    of sleep before each sample let the previous worker's BLAS/OpenMP threads
    stop spinning. Answers start with (seconds, page faults); `on_result`
    sees the whole answer."""
    started = time.perf_counter()
    for r in range(repeats):
        if budget is not None and r and time.perf_counter() - started > budget:
            if progress:
                progress(f"  stopping after {r} repeats: over the time budget of {budget:.0f} s")
            break
        for w in workers:
            if settle:
                time.sleep(settle)
            result = w.ask(*command)
            w.times.append(result[0])
            w.faults.append(result[1])
            if on_result:
                on_result(w, result)
        if progress:
            progress(f"  repeat {r + 1}/{repeats}: " + ", ".join(
                f"{w.name} {fmt_time(w.times[-1])}" for w in workers))


def _lscpu(field_name: str) -> Optional[str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        k, _, v = line.partition(":")
        if k.strip() == field_name:
            return v.strip()
    return None


def machine_info() -> dict[str, Any]:
    """What the README's table needs to be read: CPU, cores, load, versions."""
    import numpy as np
    info: dict[str, Any] = {
        "cpu": _lscpu("Model name") or platform.processor() or "?",
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "(unset)"),
    }
    return info


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"
