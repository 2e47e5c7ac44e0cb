"""The module machinery: `Parameter`, `Module` (registration, scopes, buffers,
training mode, saving), the containers `ModuleList` and `Sequential`, and the
dataclasses by which a module says how it appears in the book's diagrams
(`Module.diagram`).

The layers themselves live beside this file, one file per chapter of the book
(`neurons`, `dense`, `regularization`); their initialisers in `init`.

Conventions follow PyTorch (`Module`, `Parameter`, `named_parameters`,
`register_buffer`, `state_dict`, `train`/`eval`).
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional, Sequence, Union

import numpy as np

from ..tensor import ArrayLike, Tensor, current_scope, push_scope, restore_scope

__all__ = ["Parameter", "Module", "ModuleList", "Sequential", "IncompatibleKeys",
           "Units", "Activation", "Regularizer", "Box", "FeatureMaps", "Cell", "Field", "Stage",
           "MemoryNetwork", "DiagramPart",
           "RemovableHandle"]

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
# How a module appears in the book's diagrams (asked by the network view)

@dataclass(frozen=True)
class Units:
    """A column of neurons fed by a dense weight matrix: neuron j computes
    activation(Σ_i x_i weight[i, j] + bias[j])."""
    name: str                      # dotted path inside the drawn root ("layers.0"), or scope name
    weight: np.ndarray             # (n_in, n_out) float64, the book's layout
    bias: Optional[np.ndarray]     # (n_out,) or None
    activation: Optional[str]      # "sigmoid", "tanh", "relu", "step", "linear"/None, ...
    kind: str = "layer"            # "layer", "neuron" (chapter 1) or "perceptron"


@dataclass(frozen=True)
class Activation:
    """An activation module: applies `function` to the previous Units."""
    name: str
    function: str                  # "relu", "softmax", "sigmoid", "tanh", "linear", ...


@dataclass(frozen=True)
class Regularizer:
    """A regulariser such as dropout: annotates the previous Units."""
    name: str
    kind: str                      # "dropout"
    p: float


@dataclass(frozen=True)
class Box:
    """Any other module: drawn as one labelled box."""
    name: str
    type_name: str                 # type(m).__name__: a label only, never used to dispatch
    parameters: tuple[tuple[str, tuple[int, ...]], ...]   # (local name, shape), in order


@dataclass(frozen=True)
class FeatureMaps:
    """A stage of a convolutional network (chapter 5): it takes a stack of
    feature maps, (C, H, W) or (C, L) per example, and gives another.

    `kind` says what the stage does to the stack: "conv" (a kernel slides
    over the maps and gives `channels` new ones), "pool" (a window slides over
    each map; the depth is kept), "norm" (each channel normalised; the shape
    is kept) or "flatten" (the maps become one vector, for the dense layers
    after them). `operation` is how the picture names it ("conv", "max pool",
    "avg pool", "batch norm", "flatten"). The window's arguments are tuples
    with one entry per spatial dimension (() when there is no window);
    `padding` may also be "same" or "valid".

    `output_shape` is the module's own shape arithmetic, input shape ->
    output shape, both with the batch dimension (the module's
    `output_shape` method): the picture computes each stage's size with it
    rather than repeating the formula."""
    name: str
    kind: str                           # "conv", "pool", "norm" or "flatten"
    operation: str                      # "conv", "max pool", "avg pool", "batch norm", ...
    channels: Optional[int] = None      # the output depth; None: the input's depth
    in_channels: Optional[int] = None   # the input depth it needs, if it needs one
    kernel_size: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    padding: Union[tuple[int, ...], str] = ()
    dilation: tuple[int, ...] = ()
    groups: int = 1
    output_shape: Optional[Callable[[tuple[int, ...]], tuple[int, ...]]] = field(
        default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Cell:
    """A recurrent cell or layer (chapter 7), drawn as the book's cell
    diagram: what one time step computes from x_t and the previous state.

    `kind` is "rnn" (h_t = nonlinearity(W_ih x_t + W_hh h_{t-1} + b)),
    "lstm" (forget, input and output gates, a tanh candidate, the cell
    state c_t) or "gru" (reset and update gates, a tanh candidate).
    `sequence` says whether the module runs the cell over a sequence (an
    `LSTM`) or is one step (an `LSTMCell`); `num_layers` and `bidirectional`
    say how often a sequence layer stacks and runs it."""
    name: str
    kind: str                      # "rnn", "lstm" or "gru"
    input_size: int
    hidden_size: int
    nonlinearity: str = "tanh"     # the plain RNN's: "tanh" or "relu"
    bias: bool = True
    sequence: bool = False
    num_layers: int = 1
    bidirectional: bool = False


@dataclass(frozen=True)
class Field:
    """One piece of a memory network's interface vector ξ_t (chapter 8): the
    controller emits ξ_t = W_ξ h_t + b_ξ, and the heads cut it into named
    fields, each squashed into its range (`squash`: "linear", "σ",
    "softmax", "oneplus" = 1 + log(1 + eˣ), "softplus", "1 + softplus").
    `shape` is per example: (R, W) for R read keys of W numbers, (1,) for a
    scalar gate. `head` says which head uses it: "write" or "read"."""
    name: str                      # "write key"; unique in the network's diagram
    symbol: str                    # "kʷ"
    shape: tuple[int, ...]
    squash: str
    head: str                      # "write" or "read"


@dataclass(frozen=True)
class Stage:
    """One step of what a memory head computes at each time step, in order:
    `symbol` names its result (drawn as symbol⟨t⟩), `formula` gives it in
    the book's notation, `shape` per example. `inputs` are the names of the
    interface `Field`s and `Stage`s it uses at this step, or "memory" (the
    memory matrix: M⟨t−1⟩ for the write head, M⟨t⟩ once written);
    `previous` the stages whose value at the previous step it uses (the
    state a head carries from step to step). `writes` marks the stage whose
    result is the new memory M⟨t⟩."""
    name: str                      # "allocation"; unique in the network's diagram
    symbol: str                    # "a"
    shape: tuple[int, ...]
    formula: str
    inputs: tuple[str, ...]
    previous: tuple[str, ...] = ()
    writes: bool = False


@dataclass(frozen=True)
class MemoryNetwork:
    """A memory-augmented network (chapter 8: the Neural Turing Machine, the
    Differentiable Neural Computer), drawn as the book's architecture
    figure: the `controller` (a `Cell`) takes [x_t; r_{t-1}] and emits the
    interface vector ξ_t (`interface_size` numbers, cut into `interface`
    fields); the write head's `write_head` stages end by writing the memory
    of `memory_size` rows (N) of `word_size` numbers (W); each of the
    `num_reads` read heads (R) runs the `read_head` stages, the last giving
    its read vector r_t (W), fed to the output layer y_t = W_y [h_t; r_t] +
    b_y (`output_size`) and to the controller at the next step."""
    name: str
    title: str                     # "Neural Turing Machine"
    controller: Cell
    input_size: int
    output_size: int
    memory_size: int               # N
    word_size: int                 # W
    num_reads: int                 # R
    interface_size: int
    interface: tuple[Field, ...]   # in the order ξ_t is cut
    write_head: tuple[Stage, ...]
    read_head: tuple[Stage, ...]   # one read head's stages


DiagramPart = Union[Units, Activation, Regularizer, Box, FeatureMaps, Cell, MemoryNetwork]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _f64(t: Tensor) -> np.ndarray:
    """A float64 copy for a diagram: it must not change when training goes on."""
    return np.array(t.data, dtype=np.float64)


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

    Buffers: `register_buffer(name, array)` registers state that is not
    trained (chapter 5's running means): listed by `named_buffers()`, saved
    in `state_dict` after the module's parameters (unless
    `persistent=False`), converted by `to` and copied with the module.

    Hooks (PyTorch's): `register_forward_hook(hook)` calls hook(module,
    args, output) after each call, `register_forward_pre_hook` before it;
    each returns a handle whose `.remove()` unregisters it (the feature-map
    pictures of chapter 5 collect activations this way).

    `training` is True by default; `train()` and `eval()` set it for the whole
    tree (Dropout reads it). Registered values are also ordinary instance
    attributes and Module has no `__getattr__`, so a misspelt attribute
    raises AttributeError (Python adds "Did you mean ...?").
    """

    training: bool
    name: Optional[str]
    # Set in __init__ through __dict__ (bypassing __setattr__); declared for type checkers.
    _parameters: "OrderedDict[str, Parameter]"
    _modules: "OrderedDict[str, Module]"
    _buffers: "OrderedDict[str, Optional[Tensor]]"
    _non_persistent: set[str]
    _scope_name: str
    _paths: Any
    _forward_pre_hooks: "OrderedDict[int, Callable[..., Any]]"
    _forward_hooks: "OrderedDict[int, Callable[..., Any]]"

    def __init__(self, name: Optional[str] = None) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string or None, "
                             f"got {name!r}")
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_modules"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent"] = set()
        d["training"] = True
        d["name"] = name
        d["_scope_name"] = name or type(self).__name__.lower()
        d["_paths"] = None
        d["_forward_pre_hooks"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()

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
        buffers = d["_buffers"]
        if name in buffers:
            if not isinstance(value, (Parameter, Module)):
                # Assigning to a buffer's name replaces the buffer, as in PyTorch.
                value = None if value is None else _buffer_tensor(
                    value, f"{type(self).__name__}.{name}")
                buffers[name] = value
                object.__setattr__(self, name, value)
                return
            del buffers[name]
            d["_non_persistent"].discard(name)
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
        self._buffers.pop(name, None)
        self._non_persistent.discard(name)
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
            if self._forward_pre_hooks:     # (a module without hooks pays one test)
                for hook in list(self._forward_pre_hooks.values()):
                    new = hook(self, args)
                    if new is not None:
                        args = new if isinstance(new, tuple) else (new,)
            out = self.forward(*args, **kwargs)
            if self._forward_hooks:
                for hook in list(self._forward_hooks.values()):
                    new = hook(self, args, out)
                    if new is not None:
                        out = new
            return out
        finally:
            _running.pop()
            restore_scope(prev)

    def register_forward_hook(self, hook: Callable[..., Any]) -> "RemovableHandle":
        """Call `hook(module, args, output)` after each forward of this module
        (inside its name scope), as PyTorch does: `args` is the tuple of
        positional inputs; a hook that returns something other than None
        replaces the output. Hooks run in the order registered; the returned
        handle's `.remove()` unregisters this one. E.g. collect activations:

            acts = {}
            h = net.layers[0].register_forward_hook(
                lambda m, args, out: acts.__setitem__("conv1", out))
            net(x); h.remove()
        """
        return RemovableHandle(self._forward_hooks, _check_hook(hook, "register_forward_hook"))

    def register_forward_pre_hook(self, hook: Callable[..., Any]) -> "RemovableHandle":
        """Call `hook(module, args)` before each forward of this module; a
        hook that returns something other than None replaces the positional
        inputs (a tuple, or a single value for one input). Returns a handle
        whose `.remove()` unregisters it (PyTorch's `register_forward_pre_hook`)."""
        return RemovableHandle(self._forward_pre_hooks,
                               _check_hook(hook, "register_forward_pre_hook"))

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

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Register `tensor` (a Tensor, an array or None) as a buffer: state of
        the module that is not trained, e.g. a batch norm's running mean. It
        becomes the attribute `name`; assigning to that attribute replaces it.
        A persistent buffer is saved in `state_dict` and loaded by
        `load_state_dict`; `persistent=False` keeps it out of both."""
        who = f"{type(self).__name__}.register_buffer"
        if "_buffers" not in self.__dict__:
            raise RuntimeError(f"{who}: call super().__init__() before registering buffers "
                               f"(registering {name!r})")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{who}: the name must be a non-empty string without '.', got {name!r}")
        if name in self._parameters or name in self._modules:
            kind = "parameter" if name in self._parameters else "module"
            raise KeyError(f"{who}: {name!r} is already a {kind}")
        if name not in self._buffers and hasattr(self, name):
            raise KeyError(f"{who}: attribute {name!r} already exists")
        value = None if tensor is None else _buffer_tensor(tensor, f"{who}({name!r})")
        self._buffers[name] = value
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)
        object.__setattr__(self, name, value)

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, buffer) for every buffer of the tree that is not None,
        each once, in module order."""
        seen: set[int] = set()
        for prefix, m in self.named_modules():
            for n, b in m._buffers.items():
                if b is not None and id(b) not in seen:
                    seen.add(id(b))
                    yield _join(prefix, n), b

    def buffers(self) -> list[Tensor]:
        """The buffers, in `named_buffers` order."""
        return [b for _, b in self.named_buffers()]

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
        """Convert every parameter (and its gradient) and every floating-point
        buffer to `dtype` in place (the Tensor objects stay the same); returns self."""
        dt = _float_dtype(dtype, f"{type(self).__name__}.to")
        for p in self.parameters():
            if p.dtype != dt:
                p.data = p.data.astype(dt)
                if p.grad is not None:
                    p.grad = Tensor(p.grad.data.astype(dt))
        for b in self.buffers():
            if b.dtype.kind == "f" and b.dtype != dt:   # integer counters stay integers (PyTorch)
                b.data = b.data.astype(dt)
        return self

    # -- saving -------------------------------------------------------------
    # PyTorch names a Sequential's children "0", "1", ...; ours sit in the
    # ModuleList `layers`. A class names such a child here, and its name is
    # left out of the PyTorch-style alias of every key below it.
    _flat_child: Optional[str] = None

    def _state_entries(self) -> list[tuple[str, str, Tensor]]:
        """(key, PyTorch-style alias, tensor) of everything `state_dict` saves:
        module by module (as `named_modules`), its parameters and then its
        persistent buffers; each tensor once."""
        out: list[tuple[str, str, Tensor]] = []
        seen_m: set[int] = set()
        seen_t: set[int] = set()

        def walk(m: Module, key: str, alias: str) -> None:
            if id(m) in seen_m:
                return
            seen_m.add(id(m))
            own = list(m._parameters.items()) + [
                (n, b) for n, b in m._buffers.items()
                if b is not None and n not in m._non_persistent]
            for n, t in own:
                if id(t) not in seen_t:
                    seen_t.add(id(t))
                    out.append((_join(key, n), _join(alias, n), t))
            for n, c in m._modules.items():
                walk(c, _join(key, n), alias if n == m._flat_child else _join(alias, n))

        walk(self, "", "")
        return out

    def _other_names(self) -> dict[int, list[str]]:
        """id(tensor) -> every key and PyTorch-style alias it has, through
        every path (a module or tensor shared by two paths has two names;
        PyTorch's state_dict lists both)."""
        names: dict[int, list[str]] = {}

        def walk(m: Module, key: str, alias: str, path: tuple[int, ...]) -> None:
            if id(m) in path:        # a module inside itself: no further names
                return
            for n, t in list(m._parameters.items()) + list(m._buffers.items()):
                if t is not None:
                    names.setdefault(id(t), []).extend((_join(key, n), _join(alias, n)))
            for n, c in m._modules.items():
                walk(c, _join(key, n), alias if n == m._flat_child else _join(alias, n),
                     path + (id(m),))

        walk(self, "", "", ())
        return names

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Dotted name -> a copy of its array: the parameters and persistent
        buffers of each module in turn, parameters in `named_parameters` order."""
        return OrderedDict((k, t.data.copy()) for k, _, t in self._state_entries())

    def load_state_dict(self, state: Any, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays (or Tensors) from `state` into the parameters and
        buffers, in place and cast to each one's dtype. With `strict`, the keys
        must match exactly; a shape mismatch is always an error. Nothing is
        changed when an error is raised. Returns the missing and unexpected keys.

        A key may also be spelt as PyTorch spells it: a `Sequential`'s
        children are "0", "1", ... there (our "layers.0"), so a PyTorch
        state_dict of the same architecture loads (`nn.Linear` has PyTorch's
        weight layout), and so does a tensor shared by two modules under each
        of its names, as PyTorch lists it."""
        entries = self._state_entries()
        others = self._other_names()
        given = dict(state)
        missing: list[str] = []
        used: set[str] = set()
        arrays: list[tuple[Tensor, np.ndarray]] = []
        problems = []
        for k, alias, t in entries:
            present = [n for n in dict.fromkeys([k, alias] + others.get(id(t), []))
                       if n in given]
            if not present:
                missing.append(k)
                continue
            used.update(present)
            key = present[0]
            values = []
            for name in present:
                v = given[name]
                a = np.asarray(v.data if isinstance(v, Tensor) else v)
                if a.dtype.kind not in "fiub":
                    raise TypeError(f"load_state_dict: value for {name!r} has dtype {a.dtype}, "
                                    "expected numbers")
                values.append(a)
            a = values[0]
            if a.shape != t.shape:
                problems.append(f"shape mismatch for {key!r}: the state has shape {a.shape}, "
                                f"the model has {t.shape}")
            for name, b in zip(present[1:], values[1:]):
                if b.shape != a.shape or not np.array_equal(a, b, equal_nan=True):
                    problems.append(f"{key!r} and {name!r} name the same shared tensor but "
                                    "hold different values")
            arrays.append((t, a))
        unexpected = [k for k in given if k not in used]
        if strict:
            if missing:
                problems.insert(0, "missing keys: " + ", ".join(repr(k) for k in missing))
            if unexpected:
                problems.insert(1 if missing else 0,
                                "unexpected keys: " + ", ".join(repr(k) for k in unexpected))
        if problems:
            raise RuntimeError(f"load_state_dict for {type(self).__name__} "
                               f"{self.scope_name!r}: " + "; ".join(problems))
        for t, a in arrays:
            if t.data.flags.writeable:
                np.copyto(t.data, a, casting="unsafe")
            else:
                t.data = np.array(a, dtype=t.dtype)
        return IncompatibleKeys(missing, unexpected)

    # -- diagrams -------------------------------------------------------------
    def diagram(self, name: str = "") -> list[DiagramPart]:
        """How this module appears in the book's diagrams (`tg.draw(m,
        view="network")` asks it): a list of parts, in order: `Units` (a
        column of neurons fed by a dense weight (n_in, n_out)), `Activation`
        and `Regularizer` (applied to the Units before them), `FeatureMaps`
        (a convolution, pooling, normalisation or flatten stage of chapter
        5's networks), `Cell` (a recurrent cell or layer, chapter 7),
        `MemoryNetwork` (an NTM or DNC, chapter 8), or `Box` (any other
        module, drawn as one labelled box). `name` is this module's
        dotted path inside the drawn root ("" for the root itself).

        The default is one Box with the type name and the parameter shapes: a
        module with its own forward is one box, whatever children it has.
        Layers, activations, dropout and the sequential containers override it,
        and subclasses inherit their parent's picture."""
        return [Box(name or self.scope_name, type(self).__name__,
                    tuple((n, tuple(p.shape)) for n, p in self.named_parameters()))]

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

    def diagram(self, name: str = "") -> list[DiagramPart]:
        """The elements' diagrams one after the other (a list drawn as a
        sequence), an element that appears twice (a layer applied twice) twice."""
        return [part for n, m in self._modules.items() for part in m.diagram(_join(name, n))]


class Sequential(Module):
    """Modules applied in order: `Sequential(m1, m2, ...)(x) = m2(m1(x))...`.
    The modules are in `.layers` (a ModuleList); a single list argument works too.
    (`load_state_dict` also takes PyTorch's keys "0.weight", ... for "layers.0.weight".)"""

    _flat_child = "layers"

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

    def diagram(self, name: str = "") -> list[DiagramPart]:
        """The children's diagrams in order, named "layers.0", "layers.1", ..."""
        return self.layers.diagram(_join(name, "layers"))


class RemovableHandle:
    """What `register_forward_hook` returns: `.remove()` unregisters the hook
    (a second call does nothing); usable as a context manager that removes
    it on exit."""

    _next_id = 0

    def __init__(self, hooks: "OrderedDict[int, Callable[..., Any]]",
                 hook: Callable[..., Any]) -> None:
        RemovableHandle._next_id += 1
        self.id = RemovableHandle._next_id
        self._hooks = hooks
        hooks[self.id] = hook

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def _check_hook(hook: Any, what: str) -> Callable[..., Any]:
    if not callable(hook):
        raise TypeError(f"Module.{what}: the hook must be callable, got {type(hook).__name__}")
    return hook


def _as_input(x: Any, dtype: Optional[np.dtype]) -> Tensor:
    """Module inputs: Tensors pass unchanged; arrays and lists become Tensors
    of the module's parameter dtype (so float64 data meets a float32 net as float32)."""
    if isinstance(x, Tensor):
        return x
    if dtype is not None:
        return Tensor(np.asarray(x, dtype=dtype))
    return Tensor(x)


def _buffer_tensor(value: Any, what: str) -> Tensor:
    """A buffer's Tensor: Tensors are kept (they must not require grad: a
    buffer is not trained); arrays are wrapped without a copy."""
    if isinstance(value, Tensor):
        if value.requires_grad:
            raise TypeError(f"{what}: a buffer must not require grad (it is not trained); "
                            "register a Parameter, or pass a tensor without requires_grad")
        return value
    try:
        return Tensor(value)
    except TypeError as e:
        raise TypeError(f"{what}: a buffer must be a Tensor, an array or None, got "
                        f"{type(value).__name__} ({e})") from None


def _float_dtype(dtype: DType, what: str) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"{what}: parameters must have a floating dtype, got {dt}")
    return dt


