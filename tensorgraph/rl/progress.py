"""A progress bar that survives Ctrl-C, and a checkpoint of the best policy."""
from __future__ import annotations

import math
import os
from collections import deque
from typing import Any, Optional

import numpy as np

from ..io import load, save
from ..train import _bar, _interactive


class Progress:
    """A tqdm progress bar over `total` units (episodes, or env steps) showing
    the last return and the mean of the last `window` returns (the `train`
    extra; silent without tqdm or a terminal). As a context manager it turns
    Ctrl-C into a clean stop::

        with rl.Progress(500, "REINFORCE") as bar:
            for episode in range(500):
                ...
                bar.update(ret=episode_return)
        if bar.interrupted:
            print("stopped early; the best checkpoint is kept")

    The KeyboardInterrupt raised inside the block ends the block and is not
    re-raised; `interrupted` is then True. `n` counts the units done, `returns`
    holds every return given.
    """

    def __init__(self, total: int, desc: str, unit: str = "episode", window: int = 100,
                 enabled: Optional[bool] = None) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.interrupted = False
        self.n = 0                                            # units done
        self.returns: list[float] = []
        self._recent: deque[float] = deque(maxlen=window)
        self._bar = _bar(_interactive() if enabled is None else enabled, total, desc, unit)

    @property
    def running_return(self) -> float:
        """The mean of the last `window` returns (NaN before the first)."""
        return float(np.mean(self._recent)) if self._recent else math.nan

    def update(self, n: int = 1, ret: Optional[float] = None) -> None:
        """Advance by `n` units; `ret` (if given) is an episode's return."""
        if ret is not None:
            self.returns.append(float(ret))
            self._recent.append(float(ret))
            self._bar.set_postfix(ret=f"{ret:.1f}", avg=f"{self.running_return:.1f}",
                                  refresh=False)
        self.n += n
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> bool:
        self.close()
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            self.interrupted = True
            print(f"\n{self.desc}: interrupted (Ctrl-C) after {self.n} {self.unit}s",
                  flush=True)
            return True                                       # swallow it: a clean stop
        return False


class BestCheckpoint:
    """Keep the best-scoring state dict in `path` (written by `tg.save`,
    atomically: a Ctrl-C during a write leaves the previous best intact).

        best = rl.BestCheckpoint(out / "policy.npz")
        best.update(mean_return, model.state_dict())   # True when it was saved
        model.load_state_dict(best.load())

    `score` is higher-is-better (a mean return); a NaN score is refused.
    """

    def __init__(self, path: "os.PathLike[str] | str") -> None:
        self.path = os.fspath(path)
        self.score = -math.inf
        self.saves = 0

    def update(self, score: float, state_dict: Any) -> bool:
        score = float(score)
        if math.isnan(score):
            raise ValueError(f"BestCheckpoint.update: score is NaN (checkpoint {self.path})")
        if score <= self.score:
            return False
        save(state_dict, self.path)
        self.score = score
        self.saves += 1
        return True

    def load(self) -> Any:
        """The best state dict saved so far."""
        if not self.saves:
            raise FileNotFoundError(f"BestCheckpoint.load: nothing saved to {self.path} yet "
                                    "(update() has not improved on -inf)")
        return load(self.path)
