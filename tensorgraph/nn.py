"""Neurons, layers and networks as modules whose ops land in the recorded graph.

Chapter 1 of *Fundamentals of Deep Learning* (Buduma, 2017) builds networks from
one unit, the neuron: inputs x_1..x_n, weights w_1..w_n, a bias b, and an
output

    y = f(w·x + b) = f(Σ_i w_i x_i + b)

with f the activation: linear (identity), sigmoid 1/(1 + e^-z), tanh, or the
rectified linear max(0, z); a softmax output layer turns a layer's logits z
into class probabilities e^{z_i} / Σ_j e^{z_j}. A `Layer` is many neurons
sharing their inputs, computed as one matmul; a `FeedForward` network stacks
layers.

Modules are graph nodes in the following sense: calling a module pushes its
*scope name* with `tg.name_scope`, so every op it records carries the path
to it (see `Module` for the rule), and its structure (sizes, activations,
weights) stays readable for the renderer.

Conventions follow PyTorch (`Module`, `Parameter`, `named_parameters`,
`state_dict`, `train`/`eval`) except the weight layout: a layer's weight has
shape (n_in, n_out), as in the book's TensorFlow code, so a batch of rows x
(batch, n_in) maps to x @ W + b (batch, n_out), and column j of W holds neuron
j's incoming weights.
"""
from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import (Any, Callable, Iterable, Iterator, NamedTuple, Optional, Sequence, Union)

import numpy as np

from . import ops
from .ops import defop
from .tensor import (ArrayLike, Tensor, current_scope, no_grad, push_scope,
                     restore_scope)

__all__ = [
    "Parameter", "Module", "ModuleList", "Sequential", "Neuron", "LinearPerceptron", "Layer",
    "FeedForward", "Dropout", "Identity", "Sigmoid", "Tanh", "ReLU", "Softmax", "NeuronView",
    "identity", "sigmoid", "tanh", "relu", "softmax", "get_activation", "ACTIVATIONS", "init",
    "IncompatibleKeys",
]

Seed = Union[None, int, np.random.Generator]
DType = Any


# ---------------------------------------------------------------------------
# Parameters

class Parameter(Tensor):
    """A tensor that is a learnable parameter of a module: a floating-point
    leaf that requires grad. Assigning one to a module attribute registers it.

    `Parameter(data, name=None)`: numpy arrays keep their (float) dtype and are
    not copied; Python numbers and lists become float32; integer or boolean
    data is converted to float32.
    """

    __slots__ = ()

    def __init__(self, data: ArrayLike, name: Optional[str] = None, dtype: DType = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        arr = data if isinstance(data, np.ndarray) else np.asarray(data)
        if dtype is None and arr.dtype.kind != "f":
            if arr.dtype.kind not in "iub":
                raise TypeError(f"Parameter: data must be numeric, got dtype {arr.dtype}")
            dtype = np.float32
        if dtype is None and not isinstance(data, np.ndarray) and arr.dtype == np.float64:
            dtype = np.float32  # Python floats -> float32, as tg.tensor
        super().__init__(arr, dtype=dtype, requires_grad=True, name=name)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", precision=4, threshold=20,
                               edgeitems=3, prefix="Parameter(")
        name = f", name={self.name!r}" if self.name else ""
        return f"Parameter({body}, dtype={self.dtype}{name})"


# ---------------------------------------------------------------------------
# Activations: functions and a registry of names

def identity(x: ArrayLike) -> Tensor:
    """The linear neuron's activation, f(z) = z. Records no op."""
    return x if isinstance(x, Tensor) else Tensor(x)


sigmoid = ops.sigmoid
tanh = ops.tanh
relu = ops.relu
softmax = ops.softmax

#: Activation names accepted by `get_activation`, `Neuron`, `Layer` and `FeedForward`.
ACTIVATIONS: dict[str, Callable[..., Tensor]] = {
    "linear": identity, "identity": identity, "sigmoid": sigmoid, "tanh": tanh,
    "relu": relu, "softmax": softmax,
}


def _activation_name(name: Optional[str], what: str, allow_none: bool = True) -> Optional[str]:
    if name is None and allow_none:
        return None
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        raise ValueError(f"{what}: unknown activation {name!r}; expected one of "
                         f"{', '.join(repr(k) for k in ACTIVATIONS)}"
                         + (" or None" if allow_none else ""))
    return name.lower()


def get_activation(name: Optional[str]) -> Callable[..., Tensor]:
    """The activation function for a name: "linear"/"identity", "sigmoid",
    "tanh", "relu", "softmax" (case-insensitive); None means identity."""
    n = _activation_name(name, "get_activation")
    return identity if n is None else ACTIVATIONS[n]


# ---------------------------------------------------------------------------
# Initializers

def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out): (n_in, n_out) for a (n_in, n_out) weight; (n, 1) for a
    single neuron's weight vector (n,)."""
    if len(shape) == 1:
        return shape[0], 1
    if len(shape) == 2:
        return shape[0], shape[1]
    raise ValueError(f"init: fan-in and fan-out are defined for 1-D and 2-D weights, "
                     f"got shape {shape}")


def _shape(shape: Any) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


class init:  # noqa: N801 - a namespace, named as torch.nn.init
    """Weight initializers: `init.NAME(shape, rng)` returns a float64 array.

    `rng` is a seed (int), a `numpy.random.Generator` or None (fresh entropy);
    the same seed gives bit-identical arrays. fan_in/fan_out are n_in/n_out for
    a (n_in, n_out) weight and n/1 for a neuron's weight vector (n,).

    - he_normal: N(0, 2/fan_in), for ReLU layers (He et al. 2015; the book's
      `stddev=(2/n_in)**0.5`); he_uniform: U(±√(6/fan_in)), the same variance.
    - xavier_uniform (= glorot_uniform): U(±√(6/(fan_in + fan_out))), for
      sigmoid and tanh (Glorot and Bengio 2010); xavier_normal: N(0, 2/(fan_in + fan_out)).
    - small_uniform: U(±a), a = 0.05 by default; zeros.
    """

    @staticmethod
    def he_normal(shape: Sequence[int], rng: Seed = None) -> np.ndarray:
        shape = _shape(shape)
        fan_in, _ = _fans(shape)
        return np.random.default_rng(rng).normal(0.0, math.sqrt(2.0 / fan_in), shape)

    @staticmethod
    def he_uniform(shape: Sequence[int], rng: Seed = None) -> np.ndarray:
        shape = _shape(shape)
        fan_in, _ = _fans(shape)
        a = math.sqrt(6.0 / fan_in)
        return np.random.default_rng(rng).uniform(-a, a, shape)

    @staticmethod
    def xavier_uniform(shape: Sequence[int], rng: Seed = None) -> np.ndarray:
        shape = _shape(shape)
        fan_in, fan_out = _fans(shape)
        a = math.sqrt(6.0 / (fan_in + fan_out))
        return np.random.default_rng(rng).uniform(-a, a, shape)

    @staticmethod
    def xavier_normal(shape: Sequence[int], rng: Seed = None) -> np.ndarray:
        shape = _shape(shape)
        fan_in, fan_out = _fans(shape)
        return np.random.default_rng(rng).normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), shape)

    glorot_uniform = xavier_uniform
    glorot_normal = xavier_normal

    @staticmethod
    def small_uniform(shape: Sequence[int], rng: Seed = None, a: float = 0.05) -> np.ndarray:
        return np.random.default_rng(rng).uniform(-a, a, _shape(shape))

    @staticmethod
    def zeros(shape: Sequence[int], rng: Seed = None) -> np.ndarray:
        return np.zeros(_shape(shape))

    #: The names accepted by `init=` in Neuron, Layer and FeedForward.
    NAMES = {"he": "he_normal", "he_normal": "he_normal", "he_uniform": "he_uniform",
             "xavier": "xavier_uniform", "glorot": "xavier_uniform",
             "xavier_uniform": "xavier_uniform", "glorot_uniform": "xavier_uniform",
             "xavier_normal": "xavier_normal", "glorot_normal": "xavier_normal",
             "uniform": "small_uniform", "small_uniform": "small_uniform", "zeros": "zeros"}


Init = Union[str, Callable[[tuple[int, ...], np.random.Generator], Any]]


def _init_weight(init_: Init, shape: tuple[int, ...], rng: np.random.Generator, dtype: DType,
                 what: str) -> np.ndarray:
    if isinstance(init_, str):
        key = init.NAMES.get(init_.lower())
        if key is None:
            raise ValueError(f"{what}: unknown init {init_!r}; expected one of "
                             f"{', '.join(repr(k) for k in init.NAMES)} or a callable (shape, rng)")
        w = getattr(init, key)(shape, rng)
    elif callable(init_):
        w = np.asarray(init_(shape, rng))
    else:
        raise TypeError(f"{what}: init must be a name or a callable (shape, rng), got "
                        f"{type(init_).__name__}")
    if w.shape != shape:
        raise ValueError(f"{what}: init returned shape {w.shape}, expected {shape}")
    return np.array(w, dtype=dtype)  # a fresh, writeable array


def _float_dtype(dtype: DType, what: str) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"{what}: parameters must have a floating dtype, got {dt}")
    return dt


# ---------------------------------------------------------------------------
# Module

class IncompatibleKeys(NamedTuple):
    """What `load_state_dict(strict=False)` skipped."""
    missing_keys: list[str]
    unexpected_keys: list[str]


def _indent(s: str, n: int) -> str:
    return s.replace("\n", "\n" + " " * n)


# The modules whose forward is running, innermost last: a module called inside
# another's forward pushes its path relative to that module.
_running: list["Module"] = []
# Bumped whenever a module is registered or removed; invalidates the path caches.
_structure_version = 0


def _structure_changed() -> None:
    global _structure_version
    _structure_version += 1


class Module:
    """Base class of neurons, layers and networks.

    Registration: assigning a `Parameter`, a `Module`, or a non-empty list or
    tuple of Modules (stored as a `ModuleList`) to an attribute registers it;
    `named_parameters()` then yields dotted names such as "layers.0.weight",
    each parameter once even when shared. Assigning None to a registered name
    unregisters it; assigning anything else to it is a TypeError.

    Scopes: every module has a scope name. A root module's is the `name`
    given to its constructor, else its class name in lower case; a registered
    child's is its attribute name (a ModuleList's children: "0", "1", ...).
    Calling a module (`module(x)`) runs `forward` inside `tg.name_scope`s:

    - called from the forward of a module that contains it, it pushes its
      path relative to that module, i.e. its dotted name there split at the
      dots: `net.layers[0]`, called by `net`, pushes "layers" and "0" (the
      ModuleList itself is a container and is never called);
    - otherwise (at top level, or from a module that does not contain it) it
      pushes its scope name.

    So for a root called outside any other scope, the ops recorded inside its
    sub-module with dotted name `d` (from `root.named_modules()`) carry

        node.scope == root.scope_path(d) == (root.scope_name, *d.split("."))

    e.g. ("net", "layers", "0"), and `root.module_for_scope(node.scope)` maps
    back (a module shared under several names takes the first name that
    `named_modules()` gives). An enclosing `tg.name_scope` adds a prefix.

    `training` is True by default; `train()` and `eval()` set it for the whole
    tree (Dropout reads it). Registered values are also ordinary instance
    attributes and Module has no `__getattr__`, so a misspelt attribute
    raises AttributeError (Python adds "Did you mean ...?").
    """

    training: bool

    def __init__(self, name: Optional[str] = None) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string or None, "
                             f"got {name!r}")
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_modules"] = OrderedDict()
        d["training"] = True
        d["name"] = name
        d["_scope_name"] = name or type(self).__name__.lower()
        d["_paths"] = None

    # -- registration -------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, (list, tuple)) and value:
            kinds = [isinstance(v, Module) for v in value]
            if all(kinds):
                value = ModuleList(value)
            elif any(kinds) or any(isinstance(v, Parameter) for v in value):
                raise TypeError(f"{type(self).__name__}.{name}: a list or tuple must hold only "
                                "Modules to be registered (got a mix); assign Parameters to "
                                "attributes one by one")
        if params is None:
            if isinstance(value, (Parameter, Module)):
                raise RuntimeError(f"{type(self).__name__}: call super().__init__() before "
                                   f"assigning parameters or modules (assigning {name!r})")
            object.__setattr__(self, name, value)
            return
        modules = d["_modules"]
        if isinstance(value, Parameter):
            if modules.pop(name, None) is not None:
                _structure_changed()
            params[name] = value
            if value.name is None:
                value.name = name
        elif isinstance(value, Module):
            params.pop(name, None)
            modules[name] = value
            value.__dict__["_scope_name"] = name
            _structure_changed()
        elif name in params or name in modules:
            kind = "parameter" if name in params else "module"
            if value is not None:
                raise TypeError(f"{type(self).__name__}.{name}: cannot assign "
                                f"{type(value).__name__} to {kind} {name!r} (expected a "
                                f"{'Parameter' if kind == 'parameter' else 'Module'} or None)")
            (params if kind == "parameter" else modules).pop(name)
            _structure_changed()
        object.__setattr__(self, name, value)

    def __getstate__(self) -> dict[str, Any]:
        # A copy (copy.deepcopy) has new sub-modules: the path cache must not follow.
        return {**self.__dict__, "_paths": None}

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        if self._modules.pop(name, None) is not None:
            _structure_changed()
        object.__delattr__(self, name)

    # -- scopes -------------------------------------------------------------
    @property
    def scope_name(self) -> str:
        """The name this module's ops carry when it is called on its own: its
        attribute name (or list index) once registered, else its `name` or
        lower-case class name."""
        return self._scope_name

    def _path_of(self, m: "Module") -> Optional[tuple[str, ...]]:
        """m's dotted name in this module's tree, as a tuple (cached)."""
        cache = self._paths
        if cache is None or cache[0] != _structure_version:
            paths: dict[int, tuple[str, ...]] = {}
            for n, sub in self.named_modules():
                if n:
                    paths[id(sub)] = tuple(n.split("."))
            cache = (_structure_version, paths)
            self.__dict__["_paths"] = cache
        return cache[1].get(id(m))

    @contextlib.contextmanager
    def name_scope(self) -> Iterator[tuple[str, ...]]:
        """Enter this module's scope as `__call__` does (see the class
        docstring); for methods other than forward that record ops, e.g.
        `FeedForward.logits`. Yields the active scope."""
        prev = self._enter_scope()
        try:
            yield current_scope()
        finally:
            _running.pop()
            restore_scope(prev)

    def _enter_scope(self) -> tuple[str, ...]:
        """Push this module's scope path (see the class docstring) and mark it
        running; returns the previous scope for `restore_scope`."""
        parent = _running[-1] if _running else None
        if parent is self:
            path: Optional[tuple[str, ...]] = ()     # already inside its own scope
        else:
            path = parent._path_of(self) if parent is not None else None
            if path is None:
                path = (self._scope_name,)
        prev = push_scope(path)
        _running.append(self)
        return prev

    def scope_path(self, name: str = "") -> tuple[str, ...]:
        """The `node.scope` of ops recorded inside the sub-module called `name`
        in `named_modules()` ("" for this module) when this module is called
        outside any other scope: (self.scope_name, *name.split("."))."""
        if name:
            self.get_submodule(name)  # must exist
        return (self._scope_name,) + (tuple(name.split(".")) if name else ())

    def module_for_scope(self, scope: Sequence[str]) -> Optional["Module"]:
        """The module (self or a sub-module) whose ops record `scope`, or None:
        the inverse of `scope_path`."""
        scope = tuple(scope)
        if not scope or scope[0] != self._scope_name:
            return None
        return dict(self.named_modules()).get(".".join(scope[1:]))

    def get_submodule(self, name: str) -> "Module":
        """The sub-module with dotted name `name` ("" is self)."""
        m: Module = self
        if name:
            for part in name.split("."):
                if part not in m._modules:
                    raise AttributeError(f"{type(self).__name__}: no sub-module {name!r} "
                                         f"({type(m).__name__} has no child {part!r})")
                m = m._modules[part]
        return m

    # -- calling ------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        prev = self._enter_scope()
        try:
            return self.forward(*args, **kwargs)
        finally:
            _running.pop()
            restore_scope(prev)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}: subclasses of Module define forward()")

    # -- traversal ----------------------------------------------------------
    def _named_modules(self, prefix: str, seen: set[int]) -> Iterator[tuple[str, "Module"]]:
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for n, m in self._modules.items():
            yield from m._named_modules(f"{prefix}.{n}" if prefix else n, seen)

    def named_modules(self) -> Iterator[tuple[str, "Module"]]:
        """("", self) and every sub-module with its dotted name, each once."""
        return self._named_modules("", set())

    def modules(self) -> Iterator["Module"]:
        return (m for _, m in self.named_modules())

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """The direct sub-modules with their attribute names, each once."""
        seen: set[int] = set()
        for n, m in self._modules.items():
            if id(m) not in seen:
                seen.add(id(m))
                yield n, m

    def children(self) -> Iterator["Module"]:
        return (m for _, m in self.named_children())

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) for every parameter of the tree; a
        parameter shared by several modules is listed once, under its first name."""
        seen: set[int] = set()
        for prefix, m in self.named_modules():
            for n, p in m._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{prefix}.{n}" if prefix else n), p

    def parameters(self) -> list[Parameter]:
        """The parameters, in `named_parameters` order (a list, so it can be
        iterated twice)."""
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        """How many numbers the parameters hold."""
        return sum(p.size for p in self.parameters())

    # -- training state -----------------------------------------------------
    def zero_grad(self) -> None:
        """Reset every parameter's gradient to None."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> "Module":
        """Set training mode on this module and all sub-modules; returns self."""
        for m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self) -> "Module":
        """`train(False)`: Dropout becomes the identity."""
        return self.train(False)

    def to(self, dtype: DType) -> "Module":
        """Convert every parameter (and its gradient) to `dtype` in place
        (the Parameter objects stay the same); returns self."""
        dt = _float_dtype(dtype, f"{type(self).__name__}.to")
        for p in self.parameters():
            if p.dtype != dt:
                p.data = p.data.astype(dt)
                if p.grad is not None:
                    p.grad = Tensor(p.grad.data.astype(dt))
        return self

    # -- saving -------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Dotted parameter name -> a copy of its array, in `named_parameters` order."""
        return OrderedDict((n, p.data.copy()) for n, p in self.named_parameters())

    def load_state_dict(self, state: Any, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays (or Tensors) from `state` into the parameters, in place
        and cast to each parameter's dtype. With `strict`, the keys must match
        exactly; a shape mismatch is always an error. Nothing is changed when
        an error is raised. Returns the missing and unexpected keys."""
        own = dict(self.named_parameters())
        given = dict(state)
        missing = [k for k in own if k not in given]
        unexpected = [k for k in given if k not in own]
        arrays: dict[str, np.ndarray] = {}
        problems = []
        for k, p in own.items():
            if k not in given:
                continue
            v = given[k]
            a = np.asarray(v.data if isinstance(v, Tensor) else v)
            if a.dtype.kind not in "fiub":
                raise TypeError(f"load_state_dict: value for {k!r} has dtype {a.dtype}, "
                                "expected numbers")
            if a.shape != p.shape:
                problems.append(f"shape mismatch for {k!r}: the state has shape {a.shape}, "
                                f"the model has {p.shape}")
            arrays[k] = a
        if strict:
            if missing:
                problems.insert(0, "missing keys: " + ", ".join(repr(k) for k in missing))
            if unexpected:
                problems.insert(1 if missing else 0,
                                "unexpected keys: " + ", ".join(repr(k) for k in unexpected))
        if problems:
            raise RuntimeError(f"load_state_dict for {type(self).__name__} "
                               f"{self.scope_name!r}: " + "; ".join(problems))
        for k, a in arrays.items():
            p = own[k]
            if p.data.flags.writeable:
                np.copyto(p.data, a, casting="unsafe")
            else:
                p.data = np.array(a, dtype=p.dtype)
        return IncompatibleKeys(missing, unexpected)

    # -- printing -----------------------------------------------------------
    def extra_repr(self) -> str:
        """The one-line description shown in the repr (override in subclasses)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        if self.name is not None:
            extra = f"name={self.name!r}" + (", " + extra if extra else "")
        lines = [f"({n}): " + _indent(repr(m), 2) for n, m in self._modules.items()]
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = ([extra] if extra else []) + lines
        return f"{type(self).__name__}(\n  " + "\n  ".join(body) + "\n)"


class ModuleList(Module):
    """A list of modules, registered as children named "0", "1", ...

    A container: it is not called; its owner calls the elements, which then
    record the list's name and their index as scopes (see `Module`)."""

    def __init__(self, modules: Iterable[Module] = (), name: Optional[str] = None) -> None:
        super().__init__(name=name)
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> "ModuleList":
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList.append: expected a Module, got {type(module).__name__}")
        n = str(len(self._modules))
        self._modules[n] = module
        module.__dict__["_scope_name"] = n
        _structure_changed()
        return self

    def extend(self, modules: Iterable[Module]) -> "ModuleList":
        for m in modules:
            self.append(m)
        return self

    def _index(self, i: int) -> str:
        n = len(self._modules)
        if not isinstance(i, (int, np.integer)) or not -n <= i < n:
            raise IndexError(f"ModuleList index {i!r} out of range for length {n}")
        return str(int(i) % n)

    def __getitem__(self, i: Union[int, slice]) -> Any:
        if isinstance(i, slice):
            return list(self._modules.values())[i]  # a plain list: no re-registration
        return self._modules[self._index(i)]

    def __setitem__(self, i: int, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList: expected a Module, got {type(module).__name__}")
        k = self._index(i)
        self._modules[k] = module
        module.__dict__["_scope_name"] = k
        _structure_changed()

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("ModuleList is a container and is not callable; call its elements "
                        "(or use Sequential)")


class Sequential(Module):
    """Modules applied in order: `Sequential(m1, m2, ...)(x) = m2(m1(x))...`.
    The modules are in `.layers` (a ModuleList); a single list argument works too."""

    def __init__(self, *modules: Module, name: Optional[str] = None) -> None:
        super().__init__(name=name)
        if len(modules) == 1 and isinstance(modules[0], (list, tuple)):
            modules = tuple(modules[0])
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module")
        self.layers = ModuleList(modules)

    def forward(self, x: Any) -> Any:
        for m in self.layers:
            x = m(x)
        return x

    def __getitem__(self, i: Union[int, slice]) -> Any:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)


# ---------------------------------------------------------------------------
# Activation modules

class _Activation(Module):
    activation: str = "linear"

    def forward(self, x: ArrayLike) -> Tensor:
        return ACTIVATIONS[self.activation](_as_input(x, None))


class Identity(_Activation):
    """f(z) = z, the linear neuron's activation. (Named Identity rather than
    Linear because PyTorch's Linear is a dense layer.)"""
    activation = "linear"


class Sigmoid(_Activation):
    """f(z) = 1/(1 + e^-z), in (0, 1); f' = f(1 - f)."""
    activation = "sigmoid"


class Tanh(_Activation):
    """f(z) = tanh z, in (-1, 1); f' = 1 - f²."""
    activation = "tanh"


class ReLU(_Activation):
    """f(z) = max(0, z), the rectified linear neuron."""
    activation = "relu"


class Softmax(_Activation):
    """y_i = e^{z_i} / Σ_j e^{z_j} along `axis`: the softmax output layer."""
    activation = "softmax"

    def __init__(self, axis: int = -1, name: Optional[str] = None) -> None:
        super().__init__(name=name)
        self.axis = int(axis)

    def forward(self, x: ArrayLike) -> Tensor:
        return softmax(_as_input(x, None), axis=self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


def _as_input(x: Any, dtype: Optional[np.dtype]) -> Tensor:
    """Module inputs: Tensors pass unchanged; arrays and lists become Tensors
    of the module's parameter dtype (so float64 data meets a float32 net as float32)."""
    if isinstance(x, Tensor):
        return x
    if dtype is not None:
        return Tensor(np.asarray(x, dtype=dtype))
    return Tensor(x)


def _unit_input(x: Any, unit: "Module", who: str) -> Tensor:
    """The input of a single unit (Neuron, LinearPerceptron): one example of
    shape (n_inputs,) or a batch (batch, n_inputs), in the unit's dtype."""
    x = _as_input(x, unit.weight.dtype)
    n = unit.n_inputs
    if x.ndim not in (1, 2) or x.shape[-1] != n:
        raise ValueError(f"{who}: expected input of shape ({n},) or (batch, {n}), got {x.shape}")
    return x


def _rng(seed: Seed, what: str) -> np.random.Generator:
    if seed is None or isinstance(seed, np.random.Generator) or (
            isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise TypeError(f"{what}: seed must be None, an int or a numpy Generator, got "
                    f"{type(seed).__name__}")


# ---------------------------------------------------------------------------
# The neuron and the perceptron

class Neuron(Module):
    """The book's neuron: y = f(w·x + b) = f(Σ_i w_i x_i + b).

    `weight` has shape (n_inputs,), `bias` shape (); `activation` is a name
    ("linear"/"identity", "sigmoid", "tanh", "relu"). An input of shape
    (n_inputs,) gives a scalar; a batch (batch, n_inputs) gives (batch,).
    """

    def __init__(self, n_inputs: int, activation: str = "sigmoid", init: Init = "he",
                 seed: Seed = None, name: Optional[str] = None, dtype: DType = np.float32) -> None:
        super().__init__(name=name)
        if not isinstance(n_inputs, (int, np.integer)) or n_inputs < 1:
            raise ValueError(f"Neuron: n_inputs must be a positive int, got {n_inputs!r}")
        dt = _float_dtype(dtype, "Neuron")
        self.n_inputs = int(n_inputs)
        self.activation = _activation_name(activation, "Neuron", allow_none=False)
        if self.activation == "softmax":
            raise ValueError("Neuron: softmax needs a layer of neurons; use Layer(..., "
                             "activation='softmax')")
        rng = _rng(seed, "Neuron")
        self.weight = Parameter(_init_weight(init, (self.n_inputs,), rng, dt, "Neuron"))
        self.bias = Parameter(np.zeros((), dtype=dt))

    def forward(self, x: ArrayLike) -> Tensor:
        x = _unit_input(x, self, f"Neuron {self.scope_name!r}")
        return ACTIVATIONS[self.activation](x @ self.weight + self.bias)

    def extra_repr(self) -> str:
        return f"n_inputs={self.n_inputs}, activation={self.activation!r}"


def _step_vjp(g: Any, out: Any, z: Any) -> Any:
    return g * 0  # the step is flat wherever it is differentiable


STEP = defop("step", lambda z: np.where(z < 0, -1, 1).astype(z.dtype), _step_vjp)


class LinearPerceptron(Module):
    """The linear perceptron (Rosenblatt 1958), the book's first classifier:

        h(x, θ) = -1 if x·[θ_1..θ_n] + θ_0 < 0 else 1

    `weight` holds θ_1..θ_n (shape (n_inputs,)), `bias` holds θ_0. Both start
    at zero. The step has no useful gradient (its derivative is 0 wherever it
    exists, so backward sends zeros): gradient descent cannot train it; `fit`
    uses the perceptron learning rule instead. (`activation` is "step", for
    drawing.)
    """

    activation = "step"

    def __init__(self, n_inputs: int, name: Optional[str] = None,
                 dtype: DType = np.float32) -> None:
        super().__init__(name=name)
        if not isinstance(n_inputs, (int, np.integer)) or n_inputs < 1:
            raise ValueError(f"LinearPerceptron: n_inputs must be a positive int, got {n_inputs!r}")
        dt = _float_dtype(dtype, "LinearPerceptron")
        self.n_inputs = int(n_inputs)
        self.weight = Parameter(np.zeros(self.n_inputs, dtype=dt))
        self.bias = Parameter(np.zeros((), dtype=dt))

    def forward(self, x: ArrayLike) -> Tensor:
        x = _unit_input(x, self, "LinearPerceptron")
        return STEP(x @ self.weight + self.bias)

    def fit(self, X: ArrayLike, t: ArrayLike, epochs: int = 100, lr: float = 1.0,
            shuffle: bool = False, seed: Seed = None) -> list[int]:
        """Train with the perceptron learning rule: for each example x with
        label t in {-1, +1} that h misclassifies, θ ← θ + lr·t·x and
        θ_0 ← θ_0 + lr·t. Returns the number of mistakes in each epoch and
        stops after the first epoch without one (on linearly separable data
        the rule converges: Novikoff's theorem bounds the total number of
        mistakes by (R/γ)²)."""
        Xa = np.asarray(X.data if isinstance(X, Tensor) else X, dtype=np.float64)
        ta = np.asarray(t.data if isinstance(t, Tensor) else t)
        if Xa.ndim != 2 or Xa.shape[1] != self.n_inputs:
            raise ValueError(f"LinearPerceptron.fit: X must have shape (n, {self.n_inputs}), "
                             f"got {Xa.shape}")
        if ta.shape != (Xa.shape[0],):
            raise ValueError(f"LinearPerceptron.fit: t must have shape ({Xa.shape[0]},) to match "
                             f"X of shape {Xa.shape}, got {ta.shape}")
        if not np.isin(ta, (-1, 1)).all():
            raise ValueError(f"LinearPerceptron.fit: labels t must be -1 or +1, got values "
                             f"{np.unique(ta)[:5].tolist()}")
        rng = _rng(seed, "LinearPerceptron.fit")
        w = self.weight.data.astype(np.float64)
        b = float(self.bias.data)
        history: list[int] = []
        for _ in range(int(epochs)):
            order = rng.permutation(len(Xa)) if shuffle else range(len(Xa))
            mistakes = 0
            for i in order:
                h = -1.0 if Xa[i] @ w + b < 0 else 1.0
                if h != ta[i]:
                    w += lr * ta[i] * Xa[i]
                    b += lr * ta[i]
                    mistakes += 1
            history.append(mistakes)
            if mistakes == 0:
                break
        with no_grad():
            self.weight.data[...] = w
            self.bias.data[...] = b
        return history

    def extra_repr(self) -> str:
        return f"n_inputs={self.n_inputs}"


# ---------------------------------------------------------------------------
# Layers and networks

@dataclass(frozen=True)
class NeuronView:
    """Neuron `index` of a Layer, for drawing: its incoming weights (a read-only
    view of column `index` of the layer's weight), its bias and activation."""
    index: int
    weight: np.ndarray
    bias: Optional[float]
    activation: Optional[str]


class Layer(Module):
    """A dense layer of n_out neurons sharing n_in inputs, computed as one matmul:

        y = f(x @ W + b),   W of shape (n_in, n_out), b of shape (n_out,)

    so neuron j computes f(Σ_i x_i W_ij + b_j). `activation` is a name
    ("linear", "sigmoid", "tanh", "relu", "softmax") or None (no activation,
    no op). `init` names an initializer of `init` ("he", "xavier"/"glorot",
    "uniform", ...) or is a callable (shape, rng) -> array; `seed` (int or
    Generator) makes it reproducible bit for bit.
    """

    def __init__(self, n_in: int, n_out: int, activation: Optional[str] = None,
                 init: Init = "he", bias: bool = True, seed: Seed = None,
                 name: Optional[str] = None, dtype: DType = np.float32) -> None:
        super().__init__(name=name)
        for what, n in (("n_in", n_in), ("n_out", n_out)):
            if not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"Layer: {what} must be a positive int, got {n!r}")
        dt = _float_dtype(dtype, "Layer")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.activation = _activation_name(activation, "Layer")
        rng = _rng(seed, "Layer")
        self.weight = Parameter(_init_weight(init, (self.n_in, self.n_out), rng, dt, "Layer"))
        self.bias = Parameter(np.zeros(self.n_out, dtype=dt)) if bias else None

    def forward(self, x: ArrayLike) -> Tensor:
        x = _as_input(x, self.weight.dtype)
        if x.ndim == 0 or x.shape[-1] != self.n_in:
            raise ValueError(f"Layer {self.scope_name!r}: expected input with last "
                             f"dimension n_in={self.n_in}, got shape {x.shape}")
        z = x @ self.weight
        if self.bias is not None:
            z = z + self.bias
        return z if self.activation is None else ACTIVATIONS[self.activation](z)

    def neuron(self, j: int) -> NeuronView:
        """Neuron j (negative counts from the end): weights W[:, j], bias b[j]."""
        if not isinstance(j, (int, np.integer)) or not -self.n_out <= j < self.n_out:
            raise IndexError(f"Layer.neuron: index {j!r} out of range for n_out={self.n_out}")
        j = int(j) % self.n_out
        w = self.weight.data[:, j]
        w.flags.writeable = False   # a view for reading; the layer's array stays writeable
        b = None if self.bias is None else float(self.bias.data[j])
        return NeuronView(j, w, b, self.activation)

    def extra_repr(self) -> str:
        s = f"n_in={self.n_in}, n_out={self.n_out}, activation={self.activation!r}"
        return s + ("" if self.bias is not None else ", bias=False")


class FeedForward(Module):
    """A feed-forward network: `sizes = [n_in, h_1, ..., n_out]` gives
    len(sizes) - 1 `Layer`s in `layers`. Hidden layers use `activation`; the
    last layer has none, and `output` (None, "softmax", "sigmoid", or another
    activation name) is applied after it:

        h_0 = x,  h_k = f(h_{k-1} W_k + b_k),  y = output(h_{L-1} W_L + b_L)

    `logits(x)` returns the last layer's output before `output`, the input
    that the fused losses (`losses.cross_entropy`, `binary_cross_entropy`) want.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu",
                 output: Optional[str] = None, init: Init = "he", seed: Seed = None,
                 name: Optional[str] = None, dtype: DType = np.float32) -> None:
        super().__init__(name=name)
        sizes = list(sizes)
        if len(sizes) < 2 or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in sizes):
            raise ValueError(f"FeedForward: sizes must be at least two positive ints "
                             f"[n_in, ..., n_out], got {sizes!r}")
        self.sizes = [int(n) for n in sizes]
        self.activation = _activation_name(activation, "FeedForward", allow_none=False)
        self.output = _activation_name(output, "FeedForward output")
        rng = _rng(seed, "FeedForward")
        last = len(self.sizes) - 2
        self.layers = ModuleList(
            Layer(n_in, n_out, activation=self.activation if i < last else None, init=init,
                  seed=rng, dtype=dtype)
            for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])))

    def _logits(self, x: ArrayLike) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x  # type: ignore[return-value]

    def forward(self, x: ArrayLike) -> Tensor:
        z = self._logits(x)
        return z if self.output is None else ACTIVATIONS[self.output](z)

    def logits(self, x: ArrayLike) -> Tensor:
        """The network without its `output` activation, in the network's scope."""
        with self.name_scope():
            return self._logits(x)

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, activation={self.activation!r}, output={self.output!r}"


class Dropout(Module):
    """Inverted dropout (Srivastava et al. 2014; chapter 2's cure for
    overfitting): in training, each input is kept with probability 1 - p and
    scaled by 1/(1 - p), so E[output] = input and nothing changes at test
    time; in eval mode it is the identity. The mask is a constant of the
    graph, so the gradient is mask/(1 - p) where kept and 0 where dropped.
    `seed` (int or Generator) makes the masks reproducible; `rng` may be reset.
    """

    def __init__(self, p: float = 0.5, seed: Seed = None, name: Optional[str] = None) -> None:
        super().__init__(name=name)
        if not isinstance(p, (int, float, np.floating)) or not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = _rng(seed, "Dropout")

    def forward(self, x: ArrayLike) -> Tensor:
        x = _as_input(x, None)
        if not self.training or self.p == 0:
            return x
        keep = self.rng.random(x.shape) >= self.p
        return x * (keep * (1.0 / (1.0 - self.p))).astype(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"
