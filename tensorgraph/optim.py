"""Optimizers: the update rules of chapters 2 and 4, with PyTorch's names and defaults.

An optimizer holds references to parameters (leaf Tensors that require grad)
and, on `step()`, moves each one against its `.grad`. Updates are written
straight into the parameter arrays (`out=` / `[...] =`): no graph is recorded
and no new parameter arrays are made, so anything else that holds `p.data`
(a module, a renderer) sees the new values.

Notation (the book's): θ the parameters, g = ∂E/∂θ the gradient of the loss,
ε the learning rate, δ a small constant that avoids division by zero.
⊙ and √ are elementwise.

    opt = tg.optim.Adam(model.parameters(), lr=1e-3)
    for X, t in tg.data.batches(X_train, t_train, 32, seed=0):
        opt.zero_grad()
        loss(model(tg.tensor(X)), t).backward()
        opt.step()

Inside `tg.capture` the same loop is recorded whole: `loss.backward()` records
the backward pass and sets each `.grad` to a captured value, and `step()`
records one effect op per parameter (`apply_sgd`, `apply_adam`, ...: the
fused updates TensorFlow's `apply_gradients` makes, `ApplyAdam` and kin) that
each replay runs in place on the parameter and on this optimizer's state
(momentum buffers, Adam's moments and step count, read by reference: a
learning-rate schedule or `load_state_dict` takes effect at the next replay).
The capture itself changes neither. A replay runs the very `_update` an eager
`step()` runs, so N replays equal N eager steps bit for bit.
"""
from __future__ import annotations

import inspect
import math
import sys
from typing import Any, Callable, Iterable, Optional, Union

import numpy as np

from .ops.registry import Op, OpTable
from .tensor import Tensor, _new, bump_versions, enable_grad, mark_written

__all__ = ["Optimizer", "Update", "SGD", "AdaGrad", "Adagrad", "RMSProp", "RMSprop", "Adam",
           "LRScheduler", "StepLR", "ExponentialLR"]

Params = Union[Iterable[Tensor], Iterable[dict[str, Any]], Any]

# The module, whose `_capture` (the recorder of tg.capture, or None) is read live.
_tensor_mod: Any = sys.modules[Tensor.__module__]

#: The optimizers' update ops (effect ops: each writes its first input, the parameter).
OPTIM = OpTable("optim")


class Update:
    """What a captured update op runs: `optimizer`'s rule on `param` with the
    hyperparameters of `group`, all read by reference when it runs (the
    `update` attribute of an `apply_*` node)."""

    __slots__ = ("optimizer", "group", "param")

    def __init__(self, optimizer: "Optimizer", group: dict[str, Any], param: Tensor) -> None:
        self.optimizer, self.group, self.param = optimizer, group, param

    def __call__(self, theta: np.ndarray, g: np.ndarray) -> None:
        self.optimizer._apply(self.param, theta, g, self.group)

    def __repr__(self) -> str:
        # what the graph listing prints: lr and the hyperparameters off their defaults
        cls = type(self.optimizer)
        defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
        hyper = ", ".join(f"{k}={v!r}" for k, v in _hyper(self.group).items()
                          if k == "lr" or defaults.get(k, inspect.Parameter.empty) != v)
        return f"{cls.__name__}({hyper})"


def _apply_forward(theta: np.ndarray, g: np.ndarray, *, update: Update) -> np.ndarray:
    update(theta, g)        # in place, on theta and the optimizer's state
    return theta


def _apply_op(name: str) -> Op:
    return OPTIM.defop(name, _apply_forward, differentiable=False, effect=True)


def _hyper(group: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in group.items() if k not in ("params", "initial_lr")}


def _subclasses(cls: type) -> list[type]:
    out: list[type] = []
    subs: list[type] = cls.__subclasses__()
    for c in subs:
        out += [c] + _subclasses(c)
    return out


def _hyper_names(cls: type) -> set[str]:
    """The hyperparameters of an optimizer class: its constructor's arguments
    after `params` (each is a key of its `defaults`)."""
    return set(inspect.signature(cls).parameters) - {"params"}


class Optimizer:
    """Base class: parameter groups, per-parameter state, `zero_grad`,
    `step`, `state_dict` / `load_state_dict` (PyTorch's layout).

    `params` is an iterable of Tensors, a module (anything with a
    `.parameters()` method), or a list of dicts (parameter groups), each with
    `"params"` and optional per-group overrides of the hyperparameters:
    `SGD([{"params": body}, {"params": head, "lr": 0.1}], lr=0.01)`.
    """

    # The names of the per-parameter buffers a subclass keeps (None: not checked).
    _state_keys: Optional[frozenset[str]] = None
    # The effect op a captured step records per parameter (subclasses: their own).
    _apply_op: Op = _apply_op("apply_update")

    def __init__(self, params: Params, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        # Per-parameter state (buffers), keyed by the parameter (Tensor hashes by identity).
        self.state: dict[Tensor, dict[str, Any]] = {}
        self._scratch_bufs: dict[tuple[Any, ...], np.ndarray] = {}
        self._flat: dict[int, Any] = {}     # Adam: id(group) -> its flat buffers
        if hasattr(params, "parameters") and callable(params.parameters):
            params = params.parameters()
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors "
                            f"(or a module), got a single Tensor of shape {params.shape}; "
                            "wrap it in a list")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        seen: set[int] = set()
        for g in groups:
            self.add_param_group(g, _seen=seen)

    def add_param_group(self, group: dict[str, Any], _seen: Optional[set[int]] = None) -> None:
        """Add a group of parameters, with hyperparameters that default to the
        optimizer's."""
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}: a parameter group must be a dict with a 'params' key")
        ps = group["params"]
        ps = [ps] if isinstance(ps, Tensor) else list(ps)
        if _seen is None:
            _seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(ps):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, not a Tensor")
            if p.node is not None:
                raise ValueError(f"{name}: parameter {i} (shape {p.shape}) is not a leaf "
                                 f"(it was made by op '{p.node.op.name}'); optimize the leaves")
            if p.dtype.kind != "f":
                raise TypeError(f"{name}: parameter {i} has dtype {p.dtype}; only "
                                "floating-point tensors can be optimized")
            if id(p) in _seen:
                raise ValueError(f"{name}: parameter {i} (shape {p.shape}) appears more than "
                                 "once; list each parameter once")
            _seen.add(id(p))
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise TypeError(f"{name}: unknown hyperparameter(s) {sorted(unknown)} in a "
                            f"parameter group (known: {sorted(self.defaults)})")
        full = {**self.defaults, **group, "params": ps}
        self._check_hyper(full)
        self.param_groups.append(full)

    def _check_hyper(self, group: dict[str, Any]) -> None:
        """Reject hyperparameters that make no sense (subclasses add theirs)."""
        name = type(self).__name__
        for key in ("lr", "weight_decay", "eps"):
            if key in group and not group[key] >= 0:  # `not >=` also catches NaN
                raise ValueError(f"{name}: {key} must be >= 0, got {group[key]!r}")

    # -- the training-loop API ------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (backward accumulates into `.grad`). With
        `set_to_none=False` the gradients become zeros instead of None."""
        rec = _tensor_mod._capture
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if rec is not None:
                    rec.touch_grad(p)     # the capture puts .grad back afterwards
                if set_to_none:
                    p.grad = None
                else:
                    p.grad = Tensor(np.zeros_like(p.data))

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Update every parameter that has a gradient; parameters whose `.grad`
        is None are skipped. `closure`, if given, recomputes and returns the
        loss (it runs first, with recording on)."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        rec = _tensor_mod._capture
        if rec is not None:
            self._record_step(rec)
            return loss
        # every gradient checked before any parameter changes
        todo = []
        for group in self.param_groups:
            items = []
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                g = grad._data if isinstance(grad, Tensor) else np.asarray(grad)
                self._check_grad(g.shape, p)
                theta = p.data
                if not theta.flags.writeable:  # e.g. a broadcast view: update a copy
                    p.data = theta.copy()
                    theta = p._data
                if g.dtype != theta.dtype:
                    g = g.astype(theta.dtype)
                items.append((p, theta, g))
            if items:
                todo.append((items, group))
        written: list[Tensor] = []
        for items, group in todo:
            self._update_group(items, group)
            written += [p for p, _, _ in items]
        if written:
            # an in-place change: a graph that saved p (or memory shared with it,
            # such as a detached target network) raises at backward instead of
            # silently using the new values
            bump_versions(written)
            for p in written:
                mark_written(p._data)
        return loss

    def _record_step(self, rec: Any) -> None:
        """Inside tg.capture: one update op per parameter, run by each replay (not now)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad if isinstance(p.grad, Tensor) else _new(np.asarray(p.grad))
                self._check_grad(g.shape, p)
                rec.effect(self._apply_op, p, (p, g), {"update": Update(self, group, p)})

    def _check_grad(self, shape: tuple[int, ...], p: Tensor) -> None:
        if shape != p.shape:
            raise RuntimeError(f"{type(self).__name__}.step: gradient of shape "
                               f"{shape} for a parameter of shape {p.shape}")

    def _update_group(self, items: list[tuple[Tensor, np.ndarray, np.ndarray]],
                      group: dict[str, Any]) -> None:
        """The eager step of one parameter group: (parameter, its array, its
        gradient) triples, gradients already of the parameter's dtype. The
        hyperparameters are read once per group; each parameter gets the very
        `_update` a captured replay runs."""
        hyper = _hyper(group)
        state = self.state
        for p, theta, g in items:
            st = state.get(p)
            if st is None:
                st = state[p] = {}
            self._update(theta, g, st, **hyper)

    def _scratch(self, like: np.ndarray, k: int = 0) -> np.ndarray:
        """A reusable work array of like's shape and dtype (the k-th), so
        that the updates make no temporaries. Not part of the state."""
        key = (like.shape, like.dtype, k)
        buf = self._scratch_bufs.get(key)
        if buf is None:
            buf = self._scratch_bufs[key] = np.empty_like(like)
        return buf

    def _apply(self, p: Tensor, theta: np.ndarray, g: np.ndarray, group: dict[str, Any]) -> None:
        """One parameter's update, in place on theta (p's array) and p's state:
        what `step()` does eagerly and a captured `apply_*` op at each replay."""
        if g.dtype != theta.dtype:
            g = g.astype(theta.dtype)
        self._update(theta, g, self.state.setdefault(p, {}), **_hyper(group))

    def _update(self, theta: np.ndarray, g: np.ndarray, state: dict[str, Any], **hyper: Any) -> None:
        raise NotImplementedError

    # -- checkpoints --------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """{"state": {index: {buffer: array | int}}, "param_groups": [{hyper...,
        "params": [index, ...]}]}, parameters numbered across groups in order
        (PyTorch's layout). Arrays are copies; `tg.save` can store it."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore buffers and hyperparameters saved by `state_dict` (the
        parameters themselves are the model's business). The state must come
        from the same kind of optimizer (the same hyperparameter names and
        buffers), the groups must have the same sizes, and each buffer the
        shape of its parameter; nothing changes when one of these fails."""
        name = type(self).__name__
        try:
            saved_groups = list(state_dict["param_groups"])
            saved_state = dict(state_dict["state"])
        except (KeyError, TypeError):
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and "
                             f"'param_groups', got {type(state_dict).__name__} with keys "
                             f"{sorted(state_dict) if isinstance(state_dict, dict) else '-'}") from None
        self._check_same_kind(saved_groups, saved_state)
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state has {len(saved_groups)} "
                             f"parameter group(s), the optimizer {len(self.param_groups)}")
        by_index: dict[int, Tensor] = {}
        for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: group {gi} has "
                                 f"{len(saved['params'])} parameter(s) in the state and "
                                 f"{len(group['params'])} in the optimizer")
            for i, p in zip(saved["params"], group["params"]):
                by_index[int(i)] = p
        new_state: dict[Tensor, dict[str, Any]] = {}
        for i, buffers in saved_state.items():
            if int(i) not in by_index:
                raise ValueError(f"{name}.load_state_dict: state for parameter {i}, which "
                                 "no group lists")
            p = by_index[int(i)]
            restored = {}
            for k, v in buffers.items():
                if isinstance(v, (np.ndarray, Tensor)):
                    a = np.asarray(v.data if isinstance(v, Tensor) else v)
                    if a.shape != p.shape:
                        raise ValueError(f"{name}.load_state_dict: buffer '{k}' of parameter "
                                         f"{i} has shape {a.shape}, the parameter {p.shape}")
                    restored[k] = np.array(a, dtype=p.dtype, copy=True)
                else:
                    restored[k] = v.item() if isinstance(v, np.generic) else v
            new_state[p] = restored
        for saved, group in zip(saved_groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    group[k] = tuple(v) if isinstance(v, list) else v
        self.state = new_state

    def _check_same_kind(self, saved_groups: list[Any], saved_state: dict[Any, Any]) -> None:
        """Refuse the state of another optimizer: its groups name other
        hyperparameters, or its per-parameter state other buffers."""
        name = type(self).__name__
        own = set(self.defaults)
        for gi, saved in enumerate(saved_groups):
            keys = set(saved) - {"params", "initial_lr"}
            if keys != own:
                others = [c.__name__ for c in _subclasses(Optimizer)
                          if c is not type(self) and _hyper_names(c) == keys]
                whose = f" (it looks like the state of {' or '.join(others)})" if others else ""
                raise ValueError(
                    f"{name}.load_state_dict: the state comes from another optimizer{whose}: "
                    f"group {gi} has hyperparameters {sorted(keys - own)} that {name} has not, "
                    f"and lacks {sorted(own - keys)}")
        if self._state_keys is None:
            return
        for i, buffers in saved_state.items():
            extra = sorted(set(buffers) - self._state_keys)
            if extra:
                raise ValueError(f"{name}.load_state_dict: the state of parameter {i} has "
                                 f"buffers {extra} that {name} does not keep (its buffers: "
                                 f"{sorted(self._state_keys)}): a state of another optimizer?")

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"  group {i}: {len(group['params'])} params, " + ", ".join(
                f"{k}={v}" for k, v in group.items() if k != "params"))
        return "\n".join(lines + [")"])


class SGD(Optimizer):
    r"""Stochastic gradient descent, with optional (Nesterov) momentum and
    weight decay (L2 regularization folded into the gradient).

    Plain (chapter 2): θ ← θ − ε g.

    Momentum (chapter 4): a velocity v accumulates past gradients,
    v_i = m v_{i−1} − ε g_i, θ_i = θ_{i−1} + v_i. PyTorch writes the same rule
    (for a constant ε) with a buffer b = −v/ε:

        g ← g + λ θ                         (weight_decay λ)
        b ← g on the first step, else b ← μ b + (1 − dampening) g
        g ← g + μ b   if nesterov   else   g ← b
        θ ← θ − ε g

    Nesterov momentum (Sutskever et al., 2013) evaluates the gradient at the
    look-ahead point θ + m v; the `g + μ b` form is its usual rewriting in
    terms of the current parameters.
    """

    _state_keys = frozenset({"momentum_buffer"})

    def __init__(self, params: Params, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check_hyper(self, group: dict[str, Any]) -> None:
        super()._check_hyper(group)
        if not group["momentum"] >= 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {group['momentum']!r}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']!r}, dampening={group['dampening']!r}")

    def _update(self, theta: np.ndarray, g: np.ndarray, state: dict[str, Any], *, lr: float,
                momentum: float, dampening: float, weight_decay: float, nesterov: bool) -> None:
        lr, momentum = float(lr), float(momentum)
        # In place, into work arrays: the same arithmetic, in the same order,
        # as θ -= ε (g + λθ) written with temporaries, so the same bits.
        if weight_decay:
            gw = self._scratch(theta, 1)
            np.multiply(theta, float(weight_decay), out=gw)
            gw += g
            g = gw
        tmp = self._scratch(theta)
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, copy=True)
            else:
                buf *= momentum
                np.multiply(g, 1.0 - float(dampening), out=tmp)
                buf += tmp
            if nesterov:
                np.multiply(buf, momentum, out=tmp)
                tmp += g
                g = tmp
            else:
                g = buf
        np.multiply(g, lr, out=tmp)
        theta -= tmp


class AdaGrad(Optimizer):
    r"""AdaGrad (Duchi et al., 2011): each parameter's learning rate shrinks
    with the history of its squared gradients.

        r_i = r_{i−1} + g_i ⊙ g_i
        θ_i = θ_{i−1} − ε / (δ ⊕ √r_i) ⊙ g_i

    As PyTorch's `Adagrad`: weight decay adds λθ to g first, and `lr_decay`
    uses ε / (1 + (i − 1)·lr_decay) at step i. `eps` is δ; r starts at
    `initial_accumulator_value`.
    """

    _state_keys = frozenset({"step", "sum"})

    def __init__(self, params: Params, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10) -> None:
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps))

    def _update(self, theta: np.ndarray, g: np.ndarray, state: dict[str, Any], *, lr: float,
                lr_decay: float, weight_decay: float, initial_accumulator_value: float,
                eps: float) -> None:
        if "sum" not in state:
            state["step"] = 0
            state["sum"] = np.full_like(theta, float(initial_accumulator_value))
        state["step"] += 1
        if weight_decay:
            g = g + float(weight_decay) * theta
        clr = float(lr) / (1.0 + (state["step"] - 1) * float(lr_decay))
        r = state["sum"]
        r += g * g
        theta -= clr * (g / (np.sqrt(r) + float(eps)))


Adagrad = AdaGrad  # PyTorch's spelling


class RMSProp(Optimizer):
    r"""RMSProp (Hinton, 2012): AdaGrad with an exponentially weighted moving
    average of squared gradients, so old gradients are forgotten.

        r_i = ρ r_{i−1} + (1 − ρ) g_i ⊙ g_i
        θ_i = θ_{i−1} − ε / (δ ⊕ √r_i) ⊙ g_i

    As PyTorch's `RMSprop` (ρ is `alpha`, δ is `eps`): `centered=True`
    divides by an estimate of the variance instead, √(r − ḡ²) with ḡ the
    moving average of g; `momentum` μ > 0 keeps a buffer
    b ← μ b + g / (δ ⊕ √r) and steps θ ← θ − ε b; weight decay adds λθ to g.
    """

    _state_keys = frozenset({"step", "square_avg", "momentum_buffer", "grad_avg"})

    def __init__(self, params: Params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _check_hyper(self, group: dict[str, Any]) -> None:
        super()._check_hyper(group)
        if not 0 <= group["alpha"] <= 1:
            raise ValueError(f"RMSProp: alpha must be in [0, 1], got {group['alpha']!r}")
        if not group["momentum"] >= 0:
            raise ValueError(f"RMSProp: momentum must be >= 0, got {group['momentum']!r}")

    def _update(self, theta: np.ndarray, g: np.ndarray, state: dict[str, Any], *, lr: float,
                alpha: float, eps: float, weight_decay: float, momentum: float,
                centered: bool) -> None:
        alpha, momentum = float(alpha), float(momentum)
        if "square_avg" not in state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(theta)
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(theta)
            if centered:
                state["grad_avg"] = np.zeros_like(theta)
        state["step"] += 1
        if weight_decay:
            g = g + float(weight_decay) * theta
        r = state["square_avg"]
        r *= alpha
        r += (1.0 - alpha) * (g * g)
        if centered:
            gbar = state["grad_avg"]
            gbar *= alpha
            gbar += (1.0 - alpha) * g
            denom = np.sqrt(r - gbar * gbar) + float(eps)
        else:
            denom = np.sqrt(r) + float(eps)
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += g / denom
            theta -= float(lr) * buf
        else:
            theta -= float(lr) * (g / denom)


RMSprop = RMSProp  # PyTorch's spelling


class Adam(Optimizer):
    r"""Adam (Kingma and Ba, 2014): momentum on the gradient and an RMSProp-
    style scale, both bias-corrected for their zero start.

        m_i = β1 m_{i−1} + (1 − β1) g_i
        v_i = β2 v_{i−1} + (1 − β2) g_i ⊙ g_i
        m̃_i = m_i / (1 − β1^i),   ṽ_i = v_i / (1 − β2^i)
        θ_i = θ_{i−1} − ε m̃_i / (δ ⊕ √ṽ_i)

    As PyTorch's `Adam` (`betas` = (β1, β2), δ is `eps`): weight decay adds
    λθ to g (L2, not AdamW's decoupled decay); `amsgrad=True` divides by the
    running maximum of v instead of v.
    """

    _state_keys = frozenset({"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"})

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))

    def _check_hyper(self, group: dict[str, Any]) -> None:
        super()._check_hyper(group)
        betas = tuple(group["betas"])
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam: betas must be two numbers in [0, 1), got {group['betas']!r}")

    def _update(self, theta: np.ndarray, g: np.ndarray, state: dict[str, Any], *, lr: float,
                betas: tuple[float, float], eps: float, weight_decay: float,
                amsgrad: bool) -> None:
        b1, b2 = float(betas[0]), float(betas[1])
        if "exp_avg" not in state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(theta)
            state["exp_avg_sq"] = np.zeros_like(theta)
            if amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(theta)
        state["step"] += 1
        if weight_decay:
            gw = self._scratch(theta, 1)
            np.multiply(theta, float(weight_decay), out=gw)
            gw += g
            g = gw
        tmp = self._scratch(theta)
        vmax = state["max_exp_avg_sq"] if amsgrad else None
        _adam_delta(state["exp_avg"], state["exp_avg_sq"], vmax, g, tmp, b1, b2, float(lr),
                    float(eps), state["step"])
        theta -= tmp

    # -- the eager step, fused per parameter group --------------------------------
    def _update_group(self, items: list[tuple[Tensor, np.ndarray, np.ndarray]],
                      group: dict[str, Any]) -> None:
        """One Adam step for a whole group at once: the moments of all its
        parameters live in one flat array per buffer (each parameter's state
        holds views into it), so the ~10 elementwise passes of the update run
        once over the group instead of once per parameter (small parameters
        such as biases cost a numpy call each, whatever their size). The
        arithmetic per element is that of `_update`, so the same bits.
        Falls back to one parameter at a time when the group is not in step
        (a parameter without a gradient, mixed dtypes or step counts)."""
        flat = self._flat_group(items, group)
        if flat is None:
            super()._update_group(items, group)
            return
        b1, b2 = (float(b) for b in group["betas"])
        wd = group["weight_decay"]
        for i, (p, theta, g) in enumerate(items):
            np.copyto(flat.g[i], g)
            if wd:   # g + λθ, the same sum as _update's
                np.multiply(theta, float(wd), out=flat.d[i])
                flat.g[i] += flat.d[i]
        t = 0
        for p, _, _ in items:
            st = self.state[p]
            st["step"] += 1
            t = st["step"]
        _adam_delta(flat.m, flat.v, flat.vmax, flat.g_all, flat.d_all, b1, b2, float(group["lr"]),
                    float(group["eps"]), t)
        for i, (_, theta, _) in enumerate(items):
            theta -= flat.d[i]

    def _flat_group(self, items: list[tuple[Tensor, np.ndarray, np.ndarray]],
                    group: dict[str, Any]) -> Optional["_FlatState"]:
        """The group's flat buffers, made (or remade after `load_state_dict`,
        from the state's values) when needed; None when the group cannot be
        stepped as one."""
        ps = group["params"]
        if len(items) != len(ps) or len(items) < 2:
            return None
        dtype = items[0][1].dtype
        if any(theta.dtype != dtype for _, theta, _ in items):
            return None
        amsgrad = bool(group["amsgrad"])
        flat = self._flat.get(id(group))
        states = [self.state.get(p) for p in ps]
        if (flat is not None and flat.params == tuple(map(id, ps)) and flat.amsgrad == amsgrad
                and flat.m.dtype == dtype and flat.views_of_flat()
                and all(m.shape == theta.shape and st is not None and st.get("exp_avg") is m
                        and st.get("exp_avg_sq") is v
                        for st, m, v, (_, theta, _) in zip(states, flat.m_views, flat.v_views,
                                                           items))):
            steps = {st["step"] for st in states}   # type: ignore[index]
            return flat if len(steps) == 1 else None
        # (re)build: all parameters fresh, or all with Adam's state at one step
        keys = {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if amsgrad else set())
        if all(not st for st in states):
            steps = {0}
        elif all(st and set(st) == keys for st in states):
            steps = {st["step"] for st in states}   # type: ignore[index]
        else:
            return None
        if len(steps) != 1:
            return None
        flat = _FlatState([theta for _, theta, _ in items], dtype, amsgrad)
        flat.params = tuple(map(id, ps))
        step = steps.pop()
        for i, (p, st) in enumerate(zip(ps, states)):
            new = {"step": step, "exp_avg": flat.m_views[i], "exp_avg_sq": flat.v_views[i]}
            if amsgrad:
                new["max_exp_avg_sq"] = flat.vmax_views[i]
            if st:   # keep the values (after load_state_dict, or a step made one at a time)
                for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                    if k in new:
                        np.copyto(new[k], st[k])
            self.state[p] = new
        self._flat[id(group)] = flat
        return flat


def _adam_delta(m: np.ndarray, v: np.ndarray, vmax: Optional[np.ndarray], g: np.ndarray,
                d: np.ndarray, b1: float, b2: float, lr: float, eps: float, t: int) -> None:
    """Adam's moments updated in place from g, and into d the step to
    subtract from θ: ε / (1 − β1^t) · m / (√v / √(1 − β2^t) + δ). No
    temporaries: the same operations in the same order as that formula
    written with them, so the same bits."""
    m *= b1
    np.multiply(g, 1.0 - b1, out=d)
    m += d
    v *= b2
    np.multiply(g, g, out=d)
    d *= 1.0 - b2
    v += d
    if vmax is not None:
        np.maximum(vmax, v, out=vmax)
        v = vmax
    # Python floats keep float32 arrays float32 (NumPy 2 promotion rules).
    np.sqrt(v, out=d)
    d /= math.sqrt(1.0 - b2 ** t)
    d += eps                       # the denominator √v̂ + δ
    np.divide(m, d, out=d)
    d *= lr / (1.0 - b1 ** t)


class _FlatState:
    """One parameter group's Adam buffers as flat arrays (m, v, and the
    running max of v with amsgrad; g and d, work arrays for the gradients
    and the step), with a view of each shaped like each parameter."""

    def __init__(self, thetas: list[np.ndarray], dtype: np.dtype, amsgrad: bool) -> None:
        sizes = [a.size for a in thetas]
        n = sum(sizes)
        self.amsgrad = amsgrad
        self.params: tuple[int, ...] = ()
        self.m = np.zeros(n, dtype)
        self.v = np.zeros(n, dtype)
        self.vmax: Optional[np.ndarray] = np.zeros(n, dtype) if amsgrad else None
        self.g_all = np.empty(n, dtype)
        self.d_all = np.empty(n, dtype)

        def views(flat: np.ndarray) -> list[np.ndarray]:
            out, at = [], 0
            for a, k in zip(thetas, sizes):
                out.append(flat[at:at + k].reshape(a.shape))
                at += k
            return out
        self.m_views, self.v_views = views(self.m), views(self.v)
        self.vmax_views = views(self.vmax) if self.vmax is not None else []
        self.g, self.d = views(self.g_all), views(self.d_all)

    def views_of_flat(self) -> bool:
        """Whether the views still share the flat arrays' memory (a deep copy
        of the optimizer copies each view on its own: then remake)."""
        return all(np.shares_memory(a, self.m) for a in self.m_views[:1]) and \
            all(np.shares_memory(a, self.v) for a in self.v_views[:1])


# The update ops a captured step records (TensorFlow: ApplyGradientDescent /
# ApplyMomentum, ApplyAdagrad, ApplyRMSProp, ApplyAdam).
SGD._apply_op = _apply_op("apply_sgd")
AdaGrad._apply_op = _apply_op("apply_adagrad")
RMSProp._apply_op = _apply_op("apply_rmsprop")
Adam._apply_op = _apply_op("apply_adam")


# ---------------------------------------------------------------------------
# Learning-rate schedules

class LRScheduler:
    """Base class of learning-rate schedules (PyTorch's semantics): call
    `step()` once per epoch, after the optimizer's steps. `last_epoch` counts
    the calls; the schedule sets each group's `lr`. Also usable as a
    `tg.train.fit` callback (it steps at the end of each epoch)."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{type(self).__name__}: resuming at last_epoch={last_epoch} "
                                   f"needs 'initial_lr' in parameter group {i}")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and set the new learning rates."""
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last `step()`."""
        return list(self._last_lr)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.step()

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """Multiply the learning rate by `gamma` every `step_size` epochs:
    ε_e = ε_0 · γ^⌊e / step_size⌋."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        # Chained like PyTorch (multiply the current lr), so manual changes persist.
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [g["lr"] for g in self.optimizer.param_groups]
        return [g["lr"] * self.gamma for g in self.optimizer.param_groups]


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by `gamma` every epoch: ε_e = ε_0 · γ^e."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [g["lr"] for g in self.optimizer.param_groups]
        return [g["lr"] * self.gamma for g in self.optimizer.param_groups]
