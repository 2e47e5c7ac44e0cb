"""Recurrent layers (chapter 7): the cells `RNNCell`, `LSTMCell`, `GRUCell`
and the sequence layers `RNN`, `LSTM`, `GRU` built from them.

PyTorch's constructor arguments, parameter names, shapes, gate order, call
signatures and returns, so a PyTorch `state_dict` of the same-shaped module
loads unchanged and gives the same outputs and gradients:

    weight_ih_l{k}[_reverse]  (G·H, input_size)   layer k > 0: input D·H
    weight_hh_l{k}[_reverse]  (G·H, H)
    bias_ih_l{k}[_reverse]    (G·H,)
    bias_hh_l{k}[_reverse]    (G·H,)

with G = 1 (RNN), 4 (LSTM: gates i, f, g, o) or 3 (GRU: r, z, n), H =
hidden_size, D = 2 when bidirectional. All are initialised ~ U(±1/√H).

The equations (x_t the input, h_{t-1} the previous hidden state, σ the
logistic sigmoid, ⊙ the elementwise product):

    RNN   h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)      (or relu)

    LSTM  i = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)           input gate
          f = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)           forget gate
          g = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)        candidate
          o = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)           output gate
          c_t = f ⊙ c_{t-1} + i ⊙ g
          h_t = o ⊙ tanh(c_t)

    GRU   r = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)           reset gate
          z = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)           update gate
          n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t-1} + b_hn))
          h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

How a layer runs: a one-direction `LSTM` layer without `lengths` is ONE op,
`lstm_sequence` (tensorgraph/ops/recurrent.py): its forward runs the T steps
in numpy and its VJP is backpropagation through time, with each weight's
gradient one matmul over all steps (as PyTorch's fused layer; fewer ops to
record and walk, no per-step gradient accumulation: benchmarks/bench_rnn.py).
Every other layer, and an LSTM inside `record_steps()`, under `tg.capture`,
with `lengths` or bidirectional, records its steps: the input projection
W_ih x_t + b_ih of every time step is ONE matmul before the loop (T·B rows);
each step then records its small ops (the h_{t-1} product, the gate math)
under its own scope element. Both give the same values and gradients.
`tg.draw(module, input=...)` traces inside `record_steps()`, so that its
drawings fold or unroll the steps; a captured graph keeps the steps so that
it exports to ONNX with its gradients.

Scopes: inside the layer's scope, layer k of direction d records under
"l{k}" ("l{k}_reverse" for the backward direction; the input projection and
the stacking of the outputs), and its step t under ("l{k}", "t{t}"). So the
ops of step 3 of an `LSTM` registered as `net.encoder` carry
("net", "encoder", "l0", "t3"): repeated steps are distinguishable, and a
drawing can fold them. A cell records under its own scope; a loop over a
cell may add `tg.name_scope(f"t{t}")` itself.

Variable-length batches: `lengths=` (one length per batch element, 1..T)
masks the padded steps: there the state is carried over unchanged
(`tg.where`, so they get no gradient), the output rows are zero (as
`pad_packed_sequence` gives), and h_n / c_n hold each sequence's state at
its own last step. The backward direction of a bidirectional layer starts
at each sequence's own last step, as with packed sequences.
"""
from __future__ import annotations

import contextlib
import math
import sys
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np

from .. import ops
from ..ops.random import DROPOUT_MASK, Generator
from ..tensor import ArrayLike, Tensor, push_scope, restore_scope
from .init import Seed, _rng
from .module import Cell, DiagramPart, DType, Module, Parameter, _as_input, _float_dtype

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU", "record_steps"]

State = Union[Tensor, tuple[Tensor, Tensor]]
_tensor_mod: Any = sys.modules[Tensor.__module__]   # its live `_capture` (tg.tensor shadows it)
_record_steps = 0


@contextlib.contextmanager
def record_steps() -> Iterator[None]:
    """Inside, `nn.LSTM` records every time step as its own ops (the product
    with W_hh and `lstm_cell`, under scope "t{k}"), as the RNN and GRU
    layers always do, instead of one `lstm_sequence` op per layer: for a
    drawing of the steps (`tg.draw(module, input=...)` uses it) or a graph
    that must show them. The values and gradients are the same.

        with tg.nn.record_steps():
            out, (h, c) = lstm(x)
    """
    global _record_steps
    _record_steps += 1
    try:
        yield
    finally:
        _record_steps -= 1


# ---------------------------------------------------------------------------
# One step of each kind, on projected inputs: `xp` = W_ih x + b_ih (B, G·H),
# `whh_t` = W_hhᵀ (H, G·H). The gate math of the LSTM and GRU is one fused op
# each (tensorgraph/ops/recurrent.py); the products stay matmuls. An LSTM's
# state travels as hc = [h, c] (B, 2H), the fused op's output.

def _zeros(n: int, like: Tensor) -> Tensor:
    return Tensor(np.zeros(n, like.dtype))


def _rnn_step(xp: Tensor, h: Optional[Tensor], whh_t: Tensor, b_hh: Optional[Tensor],
              nonlinearity: str) -> Tensor:
    # h None: the zero initial state, whose product with W_hh is skipped
    a = xp if h is None else xp + h @ whh_t
    if b_hh is not None:
        a = a + b_hh
    return ops.tanh(a) if nonlinearity == "tanh" else ops.relu(a)


def _lstm_step(xp: Tensor, hc: Optional[Tensor], whh_t: Tensor, b_hh: Optional[Tensor],
               H: int) -> Tensor:
    a = xp if hc is None else xp + hc[..., :H] @ whh_t
    if b_hh is not None:
        a = a + b_hh
    return ops.lstm_cell(a, _zeros(2 * H, xp) if hc is None else hc)


def _gru_step(xp: Tensor, h: Optional[Tensor], whh_t: Tensor, b_hh: Optional[Tensor],
              H: int) -> Tensor:
    if h is None:
        return ops.gru_cell(xp, _zeros(3 * H, xp) if b_hh is None else b_hh, _zeros(H, xp))
    hp = h @ whh_t
    if b_hh is not None:
        hp = hp + b_hh
    return ops.gru_cell(xp, hp, h)


def _unstack(x: Tensor, lo: int = 0) -> list[Tensor]:
    """[x[0], ..., x[T-1]] by halving: each slice's gradient is scattered into
    its parent's shape, so halving costs O(T log T) in the backward where T
    slices of x would cost O(T²)."""
    T = x.shape[0]
    if T == 1:
        return [x[0]]
    if T <= 3:
        return [x[t] for t in range(T)]
    m = T // 2
    return _unstack(x[:m]) + _unstack(x[m:])


_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _positive(v: Any, what: str, arg: str) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{what}: {arg} must be a positive int, got {v!r}")
    return int(v)


def _nonlinearity(v: Any, what: str) -> str:
    if v not in ("tanh", "relu"):
        raise ValueError(f"{what}: nonlinearity must be 'tanh' or 'relu', got {v!r}")
    return str(v)


def _uniform(rng: np.random.Generator, bound: float, shape: tuple[int, ...],
             dt: np.dtype) -> Parameter:
    return Parameter(rng.uniform(-bound, bound, shape).astype(dt))


# ---------------------------------------------------------------------------
# Cells

class _CellBase(Module):
    mode = "RNN_TANH"
    bias_ih: Optional[Parameter]
    bias_hh: Optional[Parameter]

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 seed: Seed = None, name: Optional[str] = None,
                 dtype: DType = np.float32) -> None:
        super().__init__(name=name)
        what = type(self).__name__
        self.input_size = _positive(input_size, what, "input_size")
        self.hidden_size = _positive(hidden_size, what, "hidden_size")
        self.bias = bool(bias)
        dt = _float_dtype(dtype, what)
        rng = _rng(seed, what)
        GH = _GATES[self.mode] * self.hidden_size
        k = 1.0 / math.sqrt(self.hidden_size)
        self.weight_ih = _uniform(rng, k, (GH, self.input_size), dt)
        self.weight_hh = _uniform(rng, k, (GH, self.hidden_size), dt)
        if self.bias:
            self.bias_ih = _uniform(rng, k, (GH,), dt)
            self.bias_hh = _uniform(rng, k, (GH,), dt)
        else:
            self.bias_ih = self.bias_hh = None

    def _input(self, x: ArrayLike) -> tuple[Tensor, bool]:
        x = _as_input(x, self.weight_ih.dtype)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__} {self.scope_name!r}: expected an input of "
                             f"shape (batch, {self.input_size}) or ({self.input_size},) "
                             f"(input_size = {self.input_size}), got shape {x.shape}")
        return x, x.ndim == 1

    def _state(self, h: Optional[ArrayLike], x: Tensor, arg: str) -> Optional[Tensor]:
        """The given state, checked; None (the zero state) when not given."""
        if h is None:
            return None
        shape = x.shape[:-1] + (self.hidden_size,)
        h = _as_input(h, self.weight_ih.dtype)
        if h.shape != shape:
            raise ValueError(f"{type(self).__name__} {self.scope_name!r}: {arg} must have shape "
                             f"{shape} for an input of shape {x.shape}, got {h.shape}")
        return h

    def _check(self, h: ArrayLike, x: Tensor, arg: str) -> Tensor:
        checked = self._state(h, x, arg)
        assert checked is not None
        return checked

    def _project(self, x: Tensor) -> Tensor:
        xp = x @ self.weight_ih.T
        return xp if self.bias_ih is None else xp + self.bias_ih

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        return s

    def diagram(self, name: str = "") -> list[DiagramPart]:
        """The book's cell diagram of one step (see `tg.nn.Cell`)."""
        return [_cell(self, name)]


def _cell(m: Any, name: str, **layer: Any) -> Cell:
    kind = "lstm" if m.mode == "LSTM" else "gru" if m.mode == "GRU" else "rnn"
    return Cell(name or m.scope_name, kind, m.input_size, m.hidden_size,
                nonlinearity="relu" if m.mode == "RNN_RELU" else "tanh", bias=m.bias, **layer)


class RNNCell(_CellBase):
    """One step of an Elman RNN (PyTorch's nn.RNNCell):

        h' = tanh(W_ih x + b_ih + W_hh h + b_hh)          (nonlinearity="relu": relu)

    `cell(input, hx=None)`: input (batch, input_size) or (input_size,), hx
    (batch, hidden_size) or (hidden_size,) (zeros when None); returns h'.
    weight_ih (H, input_size), weight_hh (H, H), biases (H,), all ~ U(±1/√H)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", *, seed: Seed = None, name: Optional[str] = None,
                 dtype: DType = np.float32) -> None:
        self.__dict__["mode"] = "RNN_" + _nonlinearity(nonlinearity, "RNNCell").upper()
        super().__init__(input_size, hidden_size, bias, seed=seed, name=name, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: ArrayLike, hx: Optional[ArrayLike] = None) -> Tensor:  # noqa: A002
        x, _ = self._input(input)
        h = self._state(hx, x, "hx")
        return _rnn_step(self._project(x), h, self.weight_hh.T, self.bias_hh, self.nonlinearity)


class LSTMCell(_CellBase):
    """One step of a long short-term memory unit (Hochreiter and Schmidhuber
    1997; PyTorch's nn.LSTMCell), gates in PyTorch's order i, f, g, o:

        i = σ(W_ii x + b_ii + W_hi h + b_hi)    f = σ(W_if x + b_if + W_hf h + b_hf)
        g = tanh(W_ig x + b_ig + W_hg h + b_hg) o = σ(W_io x + b_io + W_ho h + b_ho)
        c' = f ⊙ c + i ⊙ g                      h' = o ⊙ tanh(c')

    `cell(input, hx=None)`: hx = (h, c), each (batch, hidden_size) or
    (hidden_size,) (zeros when None); returns (h', c'). weight_ih (4H,
    input_size) = [W_ii; W_if; W_ig; W_io], weight_hh (4H, H), biases (4H,)."""

    mode = "LSTM"

    def forward(self, input: ArrayLike,  # noqa: A002
                hx: Optional[tuple[ArrayLike, ArrayLike]] = None) -> tuple[Tensor, Tensor]:
        x, _ = self._input(input)
        H = self.hidden_size
        hc: Optional[Tensor] = None
        if hx is not None:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"LSTMCell {self.scope_name!r}: hx must be a pair (h, c), got "
                                f"{type(hx).__name__}")
            hc = ops.concat([self._check(hx[0], x, "hx[0] (h)"),
                             self._check(hx[1], x, "hx[1] (c)")], axis=-1)
        hc = _lstm_step(self._project(x), hc, self.weight_hh.T, self.bias_hh, H)
        return hc[..., :H], hc[..., H:]


class GRUCell(_CellBase):
    """One step of a gated recurrent unit (Cho et al. 2014; PyTorch's
    nn.GRUCell), gates in PyTorch's order r, z, n:

        r = σ(W_ir x + b_ir + W_hr h + b_hr)    z = σ(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
        h' = (1 - z) ⊙ n + z ⊙ h

    `cell(input, hx=None)` returns h'. weight_ih (3H, input_size), weight_hh
    (3H, H), biases (3H,)."""

    mode = "GRU"

    def forward(self, input: ArrayLike, hx: Optional[ArrayLike] = None) -> Tensor:  # noqa: A002
        x, _ = self._input(input)
        h = self._state(hx, x, "hx")
        return _gru_step(self._project(x), h, self.weight_hh.T, self.bias_hh, self.hidden_size)


# ---------------------------------------------------------------------------
# Sequence layers

class _RNNBase(Module):
    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, seed: Seed = None,
                 name: Optional[str] = None, dtype: DType = np.float32) -> None:
        super().__init__(name=name)
        what = type(self).__name__
        self.input_size = _positive(input_size, what, "input_size")
        self.hidden_size = _positive(hidden_size, what, "hidden_size")
        self.num_layers = _positive(num_layers, what, "num_layers")
        if not isinstance(dropout, (int, float, np.floating)) or isinstance(dropout, bool) \
                or not 0 <= dropout < 1:
            raise ValueError(f"{what}: dropout must be a number in [0, 1), got {dropout!r}")
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        self.dropout, self.bidirectional = float(dropout), bool(bidirectional)
        dt = _float_dtype(dtype, what)
        rng = _rng(seed, what)
        self.generator = Generator(rng)       # the inter-layer dropout masks
        H, D = self.hidden_size, self.num_directions
        GH = _GATES[self.mode] * H
        k = 1.0 / math.sqrt(H)
        for layer in range(self.num_layers):
            n_in = self.input_size if layer == 0 else D * H
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                setattr(self, "weight_ih" + sfx, _uniform(rng, k, (GH, n_in), dt))
                setattr(self, "weight_hh" + sfx, _uniform(rng, k, (GH, H), dt))
                if self.bias:
                    setattr(self, "bias_ih" + sfx, _uniform(rng, k, (GH,), dt))
                    setattr(self, "bias_hh" + sfx, _uniform(rng, k, (GH,), dt))

    @property
    def _dtype(self) -> np.dtype:
        return self._parameters["weight_ih_l0"].dtype

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _weights(self, layer: int, d: int) -> tuple[Parameter, Parameter,
                                                    Optional[Parameter], Optional[Parameter]]:
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        p = self._parameters
        return (p["weight_ih" + sfx], p["weight_hh" + sfx], p.get("bias_ih" + sfx),
                p.get("bias_hh" + sfx))

    def _where(self) -> str:
        return f"{type(self).__name__} {self.scope_name!r}"

    # -- checks ---------------------------------------------------------------
    def _input(self, x: ArrayLike) -> tuple[Tensor, bool]:
        x = _as_input(x, self._dtype)
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            layout = "(batch, seq, feature)" if self.batch_first else "(seq, batch, feature)"
            raise ValueError(f"{self._where()}: expected a 3-D input {layout} or an unbatched "
                             f"2-D one (seq, feature) with feature = input_size = "
                             f"{self.input_size}, got shape {x.shape}")
        return x, x.ndim == 2

    def _initial(self, h: Optional[ArrayLike], batch: Optional[int],
                 arg: str) -> list[Optional[Tensor]]:
        """The initial state as one (B, H) tensor per (layer, direction)."""
        LD = self.num_layers * self.num_directions
        shape = (LD, self.hidden_size) if batch is None else (LD, batch, self.hidden_size)
        if h is None:
            return [None] * LD           # the zero state: its products are skipped
        h = _as_input(h, self._dtype)
        if h.shape != shape:
            what = "an unbatched input" if batch is None else f"a batch of {batch}"
            raise ValueError(f"{self._where()}: {arg} must have shape {shape} (num_layers · "
                             f"num_directions, {'' if batch is None else 'batch, '}hidden_size) "
                             f"for {what}, got {h.shape}")
        return [h[k] for k in range(LD)]

    def _lengths(self, lengths: Any, T: int, B: int) -> Optional[np.ndarray]:
        if lengths is None:
            return None
        if isinstance(lengths, Tensor):
            lengths = lengths.data
        arr = np.asarray(lengths)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.dtype.kind not in "iu" or arr.ndim != 1:
            raise TypeError(f"{self._where()}: lengths must be a sequence of ints (one per batch "
                            f"element), got {arr.dtype} of shape {arr.shape}")
        if arr.shape[0] != B:
            raise ValueError(f"{self._where()}: lengths has {arr.shape[0]} entries but the batch "
                             f"has {B} sequences")
        if arr.size and (arr.max() > T or arr.min() < 1):
            bad = int(arr.max()) if arr.max() > T else int(arr.min())
            raise ValueError(f"{self._where()}: lengths must be in 1..{T} (the padded sequence "
                             f"length), got {bad}")
        return arr.astype(np.int64)

    # -- running --------------------------------------------------------------
    def _direction(self, xp: Tensor, h: Optional[Tensor], whh_t: Tensor, b_hh: Optional[Tensor],
                   lengths: Optional[np.ndarray], reverse: bool,
                   scope: str) -> tuple[Tensor, Tensor]:
        """Run one direction over the projected inputs xp (T, B, G·H) from the
        state h (an LSTM's [h, c]); returns (the state at every step (T, B, ·),
        the state at the end)."""
        T = xp.shape[0]
        H, mode = self.hidden_size, self.mode
        outs: list[Optional[Tensor]] = [None] * T
        xs = _unstack(xp)
        for t in (range(T - 1, -1, -1) if reverse else range(T)):
            prev = push_scope((scope, f"t{t}"))
            try:
                if mode == "LSTM":
                    new = _lstm_step(xs[t], h, whh_t, b_hh, H)
                elif mode == "GRU":
                    new = _gru_step(xs[t], h, whh_t, b_hh, H)
                else:
                    new = _rnn_step(xs[t], h, whh_t, b_hh, mode[4:].lower())
                if lengths is not None and (lengths <= t).any():
                    # padded rows keep the state and give zeros, so they get no gradient
                    live = (lengths > t)[:, None]
                    outs[t] = ops.where(live, new, 0.0)
                    h = ops.where(live, new, 0.0 if h is None else h)
                else:
                    outs[t] = h = new
            finally:
                restore_scope(prev)
        assert h is not None
        return ops.stack([o for o in outs if o is not None], axis=0), h

    def _run(self, input: ArrayLike, hx: Any,  # noqa: A002
             lengths: Any) -> tuple[Tensor, Tensor, Optional[Tensor]]:
        x, unbatched = self._input(input)
        given = x.shape
        if unbatched:
            if lengths is not None:
                raise ValueError(f"{self._where()}: lengths needs a batched (3-D) input, got an "
                                 f"unbatched one of shape {x.shape}")
            x = x[:, None, :]
        elif self.batch_first:
            x = x.swapaxes(0, 1)
        T, B = x.shape[0], x.shape[1]
        if T == 0:
            raise ValueError(f"{self._where()}: the input has no time steps (shape {given})")
        lens = self._lengths(lengths, T, B)
        batch = None if unbatched else B
        if self.mode == "LSTM":
            if hx is None:
                h0 = c0 = self._initial(None, batch, "h_0")
            else:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise TypeError(f"{self._where()}: hx must be a pair (h_0, c_0), got "
                                    f"{type(hx).__name__}")
                h0 = self._initial(hx[0], batch, "h_0")
                c0 = self._initial(hx[1], batch, "c_0")
        else:
            h0, c0 = self._initial(hx, batch, "h_0"), []
        if unbatched and hx is not None:
            h0 = [None if h is None else h[None] for h in h0]
            c0 = [None if c is None else c[None] for c in c0]
        H, D = self.hidden_size, self.num_directions
        hs: list[Tensor] = []
        cs: list[Tensor] = []
        for layer in range(self.num_layers):
            if layer and self.training and self.dropout > 0:
                x = x * DROPOUT_MASK(x, p=self.dropout, generator=self.generator)
            outs = []
            for d in range(D):
                w_ih, w_hh, b_ih, b_hh = self._weights(layer, d)
                scope = f"l{layer}" + ("_reverse" if d else "")
                k = layer * D + d
                if self._fused(D, lens):
                    seq, last = self._sequence(x, h0[k], c0[k], (w_ih, w_hh, b_ih, b_hh), scope)
                    outs.append(seq[..., :H])
                    hs.append(last[..., :H])
                    cs.append(last[..., H:])
                    continue
                prev = push_scope((scope,))
                try:
                    # the input projection of every step: one (T·B, in) @ (in, G·H) matmul
                    # 2-D, so that the weight's gradient is one matmul too
                    xp = x.reshape(-1, x.shape[2]) @ w_ih.T
                    if b_ih is not None:
                        xp = xp + b_ih
                    if b_hh is not None and self.mode != "GRU":
                        xp, b_hh = xp + b_hh, None     # folded: added once, not per step
                    xp = xp.reshape(T, -1, xp.shape[1])
                    whh_t = w_hh.T
                finally:
                    restore_scope(prev)
                if self.mode == "LSTM":
                    state = self._hc(h0[k], c0[k])
                else:
                    state = h0[k]
                out, state = self._direction(xp, state, whh_t, b_hh, lens, bool(d), scope)
                if self.mode == "LSTM":
                    out = out[..., :H]
                    hs.append(state[..., :H])
                    cs.append(state[..., H:])
                else:
                    hs.append(state)
                outs.append(out)
            x = outs[0] if D == 1 else ops.concat(outs, axis=-1)
        h_n = ops.stack(hs, axis=0)
        c_n = ops.stack(cs, axis=0) if cs else None
        if unbatched:
            x = x[:, 0, :]
            h_n = h_n[:, 0, :]
            c_n = None if c_n is None else c_n[:, 0, :]
        elif self.batch_first:
            x = x.swapaxes(0, 1)
        return x, h_n, c_n

    def _fused(self, D: int, lengths: Optional[np.ndarray]) -> bool:
        """Whether this layer runs as one `lstm_sequence` op per layer (see the
        module docstring for when the steps are recorded instead)."""
        return (self.mode == "LSTM" and D == 1 and lengths is None and not _record_steps
                and _tensor_mod._capture is None)

    def _sequence(self, x: Tensor, h0: Optional[Tensor], c0: Optional[Tensor],
                  weights: tuple[Any, ...], scope: str) -> tuple[Tensor, Tensor]:
        """One LSTM layer as one op: (the states [h_t, c_t] of every step
        (T, B, 2H), the last one)."""
        prev = push_scope((scope,))
        try:
            hc = ops.lstm_sequence(x, h0, c0, *weights)
            return hc, hc[-1]
        finally:
            restore_scope(prev)

    def diagram(self, name: str = "") -> list[DiagramPart]:
        """The book's cell diagram of one step, which the layer runs over the
        sequence for each layer and direction (see `tg.nn.Cell`)."""
        return [_cell(self, name, sequence=True, num_layers=self.num_layers,
                      bidirectional=self.bidirectional)]

    def _hc(self, h: Optional[Tensor], c: Optional[Tensor]) -> Optional[Tensor]:
        """An LSTM's initial state as [h, c] (None: zero)."""
        if h is None or c is None:
            return None
        return ops.concat([h, c], axis=-1)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


_LAYER_DOC = """

    `{name}(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False{extra})`, PyTorch's arguments: `dropout` is
    applied (in training only) to the outputs of every layer but the last;
    `seed` makes the initialisation and the dropout masks reproducible.

    `layer(input, hx=None, lengths=None)`: input (T, B, input_size) (or (B, T,
    input_size) with batch_first) or unbatched (T, input_size); {state}
    `lengths`: one length per batch element (1..T) for a padded batch (see
    the module docstring). Returns {returns}, output (T, B, D·H) (batch_first:
    (B, T, D·H)) holding the last layer's h_t of each step (both directions
    concatenated), and the final states of every layer and direction, (L·D, B, H).
"""


class RNN(_RNNBase):
    __doc__ = ("""An Elman recurrent network (PyTorch's nn.RNN): each layer computes

        h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)     (nonlinearity="relu": relu)
""" + _LAYER_DOC.format(name="RNN", extra=", nonlinearity='tanh'",
                        state="hx: h_0 (L·D, B, H) (zeros when None);",
                        returns="(output, h_n)"))

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, *, seed: Seed = None,
                 name: Optional[str] = None, dtype: DType = np.float32) -> None:
        self.__dict__["mode"] = "RNN_" + _nonlinearity(nonlinearity, "RNN").upper()
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, seed=seed, name=name, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: ArrayLike, hx: Optional[ArrayLike] = None,  # noqa: A002
                lengths: Optional[Sequence[int]] = None) -> tuple[Tensor, Tensor]:
        out, h_n, _ = self._run(input, hx, lengths)
        return out, h_n


class LSTM(_RNNBase):
    __doc__ = ("""A long short-term memory network (PyTorch's nn.LSTM): each layer computes,
    gates in the order i, f, g, o,

        i = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)    f = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
        g = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg) o = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
        c_t = f ⊙ c_{t-1} + i ⊙ g                       h_t = o ⊙ tanh(c_t)
""" + _LAYER_DOC.format(name="LSTM", extra="",
                        state="hx: (h_0, c_0), each (L·D, B, H) (zeros when None);",
                        returns="(output, (h_n, c_n))"))

    mode = "LSTM"

    def forward(self, input: ArrayLike, hx: Optional[tuple[ArrayLike, ArrayLike]] = None,  # noqa: A002
                lengths: Optional[Sequence[int]] = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        out, h_n, c_n = self._run(input, hx, lengths)
        assert c_n is not None
        return out, (h_n, c_n)


class GRU(_RNNBase):
    __doc__ = ("""A gated recurrent unit network (PyTorch's nn.GRU): each layer computes,
    gates in the order r, z, n,

        r = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)    z = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t-1} + b_hn))
        h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
""" + _LAYER_DOC.format(name="GRU", extra="",
                        state="hx: h_0 (L·D, B, H) (zeros when None);",
                        returns="(output, h_n)"))

    mode = "GRU"

    def forward(self, input: ArrayLike, hx: Optional[ArrayLike] = None,  # noqa: A002
                lengths: Optional[Sequence[int]] = None) -> tuple[Tensor, Tensor]:
        out, h_n, _ = self._run(input, hx, lengths)
        return out, h_n
