"""Training loops: `fit`, `evaluate`, early stopping and a history of the run.

`fit` is chapter 2's minibatch gradient descent written once:

    for each epoch:
        for each minibatch (X, t) of the (reshuffled) training set:
            zero the gradients; y = model(X); E = loss(y, t)
            backpropagate ∂E/∂θ; let the optimizer update θ
        measure the loss and metrics on the validation set (no graph recorded)
        stop early if the validation loss has not improved for `patience` epochs

The model is anything callable on a Tensor batch; if it has `train()` and
`eval()` (a `tg.nn.Module`), it is in training mode for the updates (dropout
on) and in evaluation mode for measuring. With the same `seed` (and the same
initial weights) two runs are identical bit for bit.
"""
from __future__ import annotations

import math
import sys
import warnings
from typing import Any, Callable, Iterable, Optional, Sequence, Union

import numpy as np

from .data import DataLoader, _pair, _whole
from .tensor import Tensor, no_grad, tensor

__all__ = ["fit", "evaluate", "History", "EarlyStopping", "Callback", "StopTraining", "accuracy",
           "NonFiniteLossError", "NonFiniteLossWarning"]

Metric = Union[str, Callable[[np.ndarray, np.ndarray], float]]


class StopTraining(Exception):
    """Raise from a callback to end `fit` after the current epoch's bookkeeping."""


class NonFiniteLossError(FloatingPointError):
    """`fit` met a loss that is NaN or infinite (`on_nonfinite="raise"`)."""


class NonFiniteLossWarning(RuntimeWarning):
    """`fit` met a loss that is NaN or infinite and stopped (`on_nonfinite="warn"`)."""


class Callback:
    """Hooks called by `fit`; override the ones you need. A plain function is
    also accepted as a callback: it is called as `fn(epoch, logs)` at the end
    of each epoch. Raise `StopTraining` to end training."""

    def on_train_begin(self, history: "History") -> None: ...
    def on_epoch_begin(self, epoch: int) -> None: ...
    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None: ...
    def on_train_end(self, history: "History") -> None: ...


class History:
    """What happened in a `fit` run, epoch by epoch.

    `history` maps names to per-epoch lists, like Keras: "loss" and each
    metric on the training data (averaged over the epoch's minibatches,
    weighted by their sizes), "val_loss", "val_<metric>" on the validation
    data, and "lr" (the first parameter group's learning rate that epoch).
    `epochs` lists the completed epochs (0-based). `interrupted` is True if
    Ctrl-C ended the run; `stopped_epoch` and `best_epoch` are set by early
    stopping.
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epochs: list[int] = []
        self.interrupted = False
        self.stopped_epoch: Optional[int] = None
        self.best_epoch: Optional[int] = None

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epochs.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __len__(self) -> int:
        return len(self.epochs)

    def __repr__(self) -> str:
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        flags = " interrupted" if self.interrupted else ""
        if self.stopped_epoch is not None:
            flags += f" stopped early at epoch {self.stopped_epoch}"
        return f"<History {len(self.epochs)} epochs{flags}; last {last}>"


class EarlyStopping:
    """Stop when a monitored quantity has stopped improving (chapter 2's cure
    for overfitting: the validation error starts rising while the training
    error still falls).

    An epoch improves on the best so far if the value is lower by more than
    `min_delta` (or higher, for `mode="max"`; "auto" picks "max" for accuracy
    metrics). After `patience` epochs without improvement training stops; with
    `restore_best_weights` the model gets back the weights of its best epoch.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True) -> None:
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if not _whole(patience) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an integer >= 0, got {patience!r}")
        if not isinstance(min_delta, (int, float, np.number)) or not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta!r}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.restore_best_weights = restore_best_weights
        self.reset()

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: Optional[int] = None
        self.best_weights: Any = None
        self.wait = 0

    def update(self, epoch: int, logs: dict[str, float], model: Any) -> bool:
        """Record one epoch; True when training should stop."""
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping: monitored quantity {self.monitor!r} is not "
                             f"among the epoch's logs {sorted(logs)}")
        value = logs[self.monitor]
        if self.mode == "min":
            improved = value < self.best - self.min_delta
        else:
            improved = value > self.best + self.min_delta
        if improved:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = _snapshot(model)
            return False
        self.wait += 1
        return self.wait >= self.patience


# ---------------------------------------------------------------------------
# Metrics: functions of (outputs, targets) as numpy arrays -> the batch mean.

def accuracy(outputs: np.ndarray, targets: np.ndarray) -> float:
    """The fraction of examples classified correctly.

    Several outputs per example: the predicted class is the argmax, and the
    targets are class indices or one-hot rows. One output per example: with
    targets in {-1, +1} (the perceptron's) the prediction is the sign
    (0 counts as +1); otherwise targets are 0/1 and the output, a
    probability, is thresholded at 0.5. (For logits pass your own metric.)
    """
    out = np.asarray(outputs)
    t = np.asarray(targets)
    if out.ndim >= 2 and out.shape[-1] > 1:
        pred = out.argmax(axis=-1)
        if t.ndim == out.ndim:
            t = t.argmax(axis=-1)
        return float(np.mean(pred == t))
    out = out.reshape(len(out)) if out.ndim else out.reshape(1)
    t = t.reshape(len(out))
    if (t < 0).any():
        pred = np.where(out >= 0, 1, -1)
    else:
        pred = (out > 0.5).astype(t.dtype)
    return float(np.mean(pred == t))


_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {"accuracy": accuracy}


def _metrics(metrics: Optional[Iterable[Metric]]) -> list[tuple[str, Callable[..., float]]]:
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]  # type: ignore[list-item]
    out = []
    for m in metrics:  # type: ignore[union-attr]
        if isinstance(m, str):
            if m not in _METRICS:
                raise ValueError(f"unknown metric {m!r}; known: {sorted(_METRICS)} "
                                 "(or pass a function of (outputs, targets))")
            out.append((m, _METRICS[m]))
        elif callable(m):
            out.append((getattr(m, "__name__", type(m).__name__), m))
        else:
            raise TypeError(f"a metric must be a name or a function, got {m!r}")
    names = [n for n, _ in out]
    if len(set(names)) != len(names) or "loss" in names:
        raise ValueError(f"metric names must be distinct and not 'loss', got {names}")
    return out


# ---------------------------------------------------------------------------
# Helpers for duck-typed models

def _set_mode(model: Any, training: bool) -> None:
    method = getattr(model, "train" if training else "eval", None)
    if callable(method):
        method()


def _params(model: Any) -> list[Tensor]:
    ps = getattr(model, "parameters", None)
    return list(ps()) if callable(ps) else []


def _snapshot(model: Any) -> Any:
    """A copy of the model's weights (its state_dict if it has one)."""
    sd = getattr(model, "state_dict", None)
    if callable(sd):
        return ("state_dict", {k: np.array(v.data if isinstance(v, Tensor) else v, copy=True)
                               for k, v in sd().items()})
    return ("params", [np.array(p.data, copy=True) for p in _params(model)])


def _restore(model: Any, snap: Any) -> None:
    kind, weights = snap
    if kind == "state_dict":
        model.load_state_dict(weights)
    else:
        with no_grad():   # in place (whatever holds p sees the restored weights),
            for p, w in zip(_params(model), weights):   # and a graph that saw the old ones knows
                p.copy_(w)


def _scalar_loss(value: Any, fn: str) -> float:
    if not isinstance(value, Tensor):
        raise TypeError(f"{fn}: the loss function must return a Tensor, got {type(value).__name__}")
    if value.size != 1:
        raise ValueError(f"{fn}: the loss must be a scalar (use reduction='mean'), got shape "
                         f"{value.shape}")
    return float(value.item())


def _bar(enabled: bool, total: int, desc: str, unit: str = "batch") -> Any:
    if enabled:
        try:
            from tqdm.auto import tqdm
            return tqdm(total=total, desc=desc, unit=unit, leave=True, dynamic_ncols=True)
        except ImportError:  # tqdm is optional: train silently without it
            pass
    return _NoBar()


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, *a: Any, **k: Any) -> None: ...
    def close(self) -> None: ...


def _interactive() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty()) or "ipykernel" in sys.modules


# ---------------------------------------------------------------------------

def evaluate(model: Any, loss: Optional[Callable[[Tensor, Tensor], Tensor]], data: Any,
             metrics: Optional[Iterable[Metric]] = ("accuracy",), batch_size: int = 1024
             ) -> dict[str, float]:
    """The mean loss and metrics of `model` on `data` = (X, y), in evaluation
    mode and without recording a graph. Computed in batches of `batch_size`
    (means weighted by batch size, so the result is the mean over all
    examples). `loss=None` skips the loss. The model's mode is restored."""
    X, y = _pair(*_xy(data, "evaluate"), "evaluate")
    return _evaluate(model, loss, X, y, _metrics(metrics), batch_size)


def _evaluate(model: Any, loss: Any, X: np.ndarray, y: np.ndarray,
              fns: list[tuple[str, Callable[..., float]]], batch_size: int) -> dict[str, float]:
    was_training = getattr(model, "training", None)
    _set_mode(model, False)
    sums = dict.fromkeys((["loss"] if loss is not None else []) + [n for n, _ in fns], 0.0)
    try:
        with no_grad():
            for xb, yb in DataLoader(X, y, batch_size, shuffle=False):
                out = model(tensor(xb))
                k = len(xb)
                if loss is not None:
                    sums["loss"] += _scalar_loss(loss(out, tensor(yb)), "evaluate") * k
                for name, fn in fns:
                    sums[name] += float(fn(_data(out), yb)) * k
    finally:
        if was_training:
            _set_mode(model, True)
    n = len(X)
    return {k: v / n for k, v in sums.items()} if n else {k: math.nan for k in sums}


def _xy(data: Any, fn: str) -> tuple[Any, Any]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{fn}: data must be an (X, y) pair, got {type(data).__name__}"
                        + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else ""))
    return data[0], data[1]


def _data(out: Any) -> np.ndarray:
    return out.data if isinstance(out, Tensor) else np.asarray(out)


def fit(model: Any, loss: Callable[[Tensor, Tensor], Tensor], optimizer: Any, train: Any,
        epochs: int, val: Any = None, metrics: Optional[Iterable[Metric]] = ("accuracy",),
        early_stopping: Union[None, int, EarlyStopping] = None, batch_size: int = 32,
        shuffle: bool = True, seed: Union[None, int, np.random.Generator] = None,
        progress: bool = True, callbacks: Sequence[Any] = (),
        on_nonfinite: str = "raise", log_dir: Any = None) -> History:
    """Train `model` on `train` = (X, y) for `epochs` epochs of minibatch
    gradient descent and return a `History`.

    loss          `loss(outputs, targets) -> scalar Tensor`, e.g. `tg.losses.cross_entropy`
    optimizer     a `tg.optim` optimizer over the model's parameters
    val           optional (X, y): measured after every epoch (eval mode, no graph)
    metrics       names ("accuracy") or functions `(outputs, targets) -> float`
    early_stopping  an `EarlyStopping`, or an int patience (monitoring "val_loss"
                  if there is validation data, else "loss")
    seed          seeds the shuffling: the same seed, data and initial weights give
                  the same run bit for bit (with `seed=None` the order is random)
    progress      a tqdm progress bar on a terminal (or notebook); silent if False
    callbacks     `Callback`s (`tg.optim` schedules work too: they step each epoch)
                  or functions `fn(epoch, logs)`
    on_nonfinite  what a NaN or infinite training loss does (data with NaN, a
                  diverging learning rate): "raise" (default) stops with a
                  `NonFiniteLossError` naming the epoch and batch; "warn" issues a
                  `NonFiniteLossWarning` and returns the history of the completed
                  epochs, with `stopped_epoch` set (Keras' TerminateOnNaN);
                  "ignore" trains on. Either way the bad batch's update is not
                  made, so the weights stay finite.
    log_dir       a directory for TensorBoard (needs the tensorboard package):
                  every history entry per epoch ("DIR/train" gets "loss", the
                  metrics and "lr"; "DIR/validation" the "val_" ones under the
                  same tags), the model's graph once, and a histogram of each
                  parameter per epoch (see `tg.tensorboard.FitLogger`). A
                  log_dir that cannot be written raises OSError before training.

    Ctrl-C (KeyboardInterrupt) ends training cleanly: the history of the
    completed epochs is returned with `interrupted=True`, and the weights are
    those at the moment of the interrupt (or the best ones, if early stopping
    restores them).
    """
    X, y = _pair(*_xy(train, "fit: train"), "fit")
    if on_nonfinite not in ("raise", "warn", "ignore"):
        raise ValueError(f"fit: on_nonfinite must be 'raise', 'warn' or 'ignore', got "
                         f"{on_nonfinite!r}")
    if not _whole(epochs) or epochs < 0:
        raise ValueError(f"fit: epochs must be an integer >= 0, got {epochs!r}")
    if val is not None:
        Xv, yv = _pair(*_xy(val, "fit: val"), "fit (val)")
    fns = _metrics(metrics)
    es: Optional[EarlyStopping]
    if early_stopping is None or isinstance(early_stopping, EarlyStopping):
        es = early_stopping
    elif isinstance(early_stopping, int) and not isinstance(early_stopping, bool):
        es = EarlyStopping("val_loss" if val is not None else "loss", patience=early_stopping)
    else:
        raise TypeError(f"fit: early_stopping must be an EarlyStopping or an int patience, got "
                        f"{early_stopping!r}")
    if es is not None:
        es.reset()
        if es.monitor.startswith("val_") and val is None:
            raise ValueError(f"fit: early stopping monitors {es.monitor!r} but no val data was "
                             "given")
    cbs = list(callbacks)
    loader = DataLoader(X, y, batch_size, shuffle=shuffle, seed=seed)
    board = None
    if log_dir is not None:   # last of the checks: it creates the directories
        from .tensorboard import FitLogger
        board = FitLogger(log_dir, validation=val is not None)
    history = History()
    show = bool(progress) and _interactive()
    was_training = getattr(model, "training", None)
    groups = getattr(optimizer, "param_groups", None)

    def hook(name: str, *args: Any) -> None:
        for cb in cbs:
            method = getattr(cb, name, None)
            if callable(method):
                method(*args)
            elif name == "on_epoch_end" and callable(cb) and not hasattr(cb, "on_epoch_begin"):
                cb(*args)

    hook("on_train_begin", history)
    epoch = batch = 0
    try:
        for epoch in range(int(epochs)):
            hook("on_epoch_begin", epoch)
            _set_mode(model, True)
            lr = float(groups[0]["lr"]) if groups else None
            sums = dict.fromkeys(["loss"] + [n for n, _ in fns], 0.0)
            seen = 0
            bar = _bar(show, len(loader), f"epoch {epoch + 1}/{epochs}")
            nonfinite = False
            try:
                for batch, (xb, yb) in enumerate(loader):
                    optimizer.zero_grad()
                    xt, yt = tensor(xb), tensor(yb)
                    out = model(xt)
                    value = loss(out, yt)
                    lv = _scalar_loss(value, "fit")
                    if board is not None and not board.graph_written:
                        board.graph(value, model, xt, yt)   # before backward frees the graph
                    if not math.isfinite(lv) and on_nonfinite != "ignore":
                        msg = (f"fit: the loss is {lv} in epoch {epoch + 1} of {epochs}, batch "
                               f"{batch + 1} of {len(loader)} (1-based); training stopped before "
                               "that batch's update. Look for NaN or inf in the data, or lower "
                               "the learning rate")
                        if on_nonfinite == "raise":
                            raise NonFiniteLossError(msg + " (on_nonfinite='warn' warns and "
                                                           "returns the history instead)")
                        warnings.warn(msg, NonFiniteLossWarning, stacklevel=2)
                        nonfinite = True
                        break
                    value.backward()
                    optimizer.step()
                    k = len(xb)
                    seen += k
                    sums["loss"] += lv * k
                    for name, fn in fns:
                        sums[name] += float(fn(_data(out), yb)) * k
                    bar.update(1)
                    bar.set_postfix(loss=f"{sums['loss'] / seen:.4g}", refresh=False)
                    if cbs:
                        hook("on_batch_end", batch, {"loss": lv})
                if nonfinite:
                    history.stopped_epoch = epoch
                    break
                logs = {k: v / seen for k, v in sums.items()} if seen else \
                    {k: math.nan for k in sums}
                if val is not None:
                    scores = _evaluate(model, loss, Xv, yv, fns, max(1024, loader.batch_size))
                    logs.update({f"val_{k}": v for k, v in scores.items()})
                if lr is not None:
                    logs["lr"] = lr
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k != "lr"})
            finally:
                bar.close()
            history.append(epoch, logs)
            if board is not None:
                board.epoch(epoch, logs, model)
            try:
                hook("on_epoch_end", epoch, logs)
            except StopTraining:
                history.stopped_epoch = epoch
                break
            if es is not None and es.update(epoch, logs, model):
                history.stopped_epoch = epoch
                break
    except KeyboardInterrupt:
        history.interrupted = True
        if show:
            print(f"\ninterrupted in epoch {epoch + 1}, batch {batch + 1}: returning the history "
                  f"of {len(history)} completed epoch(s)", file=sys.stderr)
    finally:
        if was_training is not None:
            _set_mode(model, bool(was_training))
        if board is not None:
            board.close()
    if es is not None:
        history.best_epoch = es.best_epoch
        if es.restore_best_weights and es.best_weights is not None:
            _restore(model, es.best_weights)
    hook("on_train_end", history)
    return history

