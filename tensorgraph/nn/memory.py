"""Memory-augmented networks (chapter 8): the Neural Turing Machine (Graves,
Wayne and Danihelka 2014) and the Differentiable Neural Computer (Graves et
al., Nature 2016), built from recorded ops so that gradients flow through
every read and write and the graph can be drawn.

A memory M is N rows (locations) of W numbers (a word), per batch element
(B, N, W). Heads read and write it through *weightings*: non-negative
vectors over the N rows summing to at most 1.

- Content addressing (both): a head emits a key k and a strength β; a row
  weighs by its cosine similarity to the key, sharpened by β:
      C(M, k, β)[i] = exp(β D(k, M[i])) / Σ_j exp(β D(k, M[j])),
      D(u, v) = u·v / (|u| |v|).
- NTM location addressing (`ntm_address`): interpolation with the previous
  weighting, a circular shift, a sharpening.
- DNC dynamic memory allocation (`dnc_usage`, `dnc_allocation`,
  `dnc_write_weights`), erase-then-add writes (`dnc_write`, shared with the
  NTM), the temporal link matrix (`dnc_link`) and the three read modes
  (`dnc_read_weights`).

Shapes: B batch, N memory rows, W word size, H heads (R read heads),
S shift positions. Functions take Tensors (or arrays) and return Tensors of
their dtype. The modules `NTM` and `DNC` run a sequence (T, B, input_size)
(batch_first: (B, T, input_size)) with an LSTM controller; each step is
recorded under its own scope "t0", "t1", ... (as `nn.LSTM`), so the
"modules" view of `tg.draw` folds the steps to one.
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Optional, Union

import numpy as np

from .. import ops
from ..tensor import ArrayLike, Tensor, push_scope, restore_scope
from .dense import Linear
from .init import Seed, _rng
from .module import (Cell, DiagramPart, DType, Field, MemoryNetwork, Module, Stage, _as_input,
                     _float_dtype, _join)
from .recurrent import LSTMCell, _lstm_step, _positive, _unstack

__all__ = ["content_weights", "ntm_address", "dnc_usage", "dnc_allocation", "dnc_write_weights",
           "dnc_write", "dnc_link", "dnc_read_weights", "NTMState", "DNCState", "NTM", "DNC"]


def _t(x: ArrayLike) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x))


def _check(fn: str, **args: tuple[Tensor, str]) -> None:
    """Check each argument's shape against its pattern, a letter (or a fixed
    size) per axis ("BNW", "BR3"): the same letter means the same size
    across the arguments of one call."""
    sizes: dict[str, int] = {}
    for name, (x, pattern) in args.items():
        ok = x.ndim == len(pattern)
        for d, n in zip(pattern, x.shape if ok else ()):
            if d.isdigit():
                ok = ok and n == int(d)
            elif sizes.setdefault(d, n) != n:
                ok = False
        if not ok:
            given = ", ".join(f"{k} {v[0].shape}" for k, v in args.items())
            want = ", ".join(f"{k} ({','.join(v[1])})" for k, v in args.items())
            raise ValueError(f"{fn}: {name} must have shape ({','.join(pattern)}) with sizes "
                             f"consistent across the arguments {want}; got {given}")


def _norm(x: Tensor, eps: float) -> Tensor:
    # sqrt(Σx² + ε): finite, with a finite gradient, at a zero row (memory starts at 0)
    return ops.sqrt((x * x).sum(axis=-1) + eps)


def content_weights(memory: ArrayLike, keys: ArrayLike, strengths: ArrayLike,
                    eps: float = 1e-6) -> Tensor:
    """Content-based addressing (NTM eq. 5-6; DNC methods, "content-based
    addressing"): for each head h with key k_h and strength β_h,

        w_h[i] = exp(β_h D(k_h, M[i])) / Σ_j exp(β_h D(k_h, M[j])),
        D(k, M[i]) = k·M[i] / (√(|k|² + ε) √(|M[i]|² + ε)),

    a softmax over the rows of the cosine similarity (ε keeps a zero row or
    key at D = 0 with finite gradients). memory (B, N, W), keys (B, H, W),
    strengths (B, H), β ≥ 0 by convention (a larger β focuses the weighting);
    returns (B, H, N)."""
    memory, keys, strengths = _t(memory), _t(keys), _t(strengths)
    _check("content_weights", memory=(memory, "BNW"), keys=(keys, "BHW"),
           strengths=(strengths, "BH"))
    dots = keys @ memory.swapaxes(-1, -2)                                  # (B, H, N)
    cos = dots / (_norm(keys, eps)[..., None] * _norm(memory, eps)[:, None, :])
    return ops.softmax(strengths[..., None] * cos, axis=-1)


def ntm_address(prev_w: ArrayLike, content_w: ArrayLike, gate: ArrayLike, shift: ArrayLike,
                sharpen: ArrayLike) -> Tensor:
    """The NTM's location addressing (Graves et al. 2014, eq. 7-9), per head:

        w^g = g w^c + (1 - g) w_{t-1}                     interpolation, g ∈ [0, 1]
        w̃[i] = Σ_k s[k] w^g[(i - (k - r)) mod N]          circular shift by -r..r
        w[i] = w̃[i]^γ / Σ_j w̃[j]^γ                        sharpening, γ ≥ 1

    prev_w, content_w (B, H, N); gate (B, H); shift (B, H, S) a distribution
    over the S = 2r + 1 offsets -r..r (s[r] keeps the weighting in place);
    sharpen γ (B, H). Returns (B, H, N). The shifted weighting must be
    positive somewhere (it is whenever w^c is a softmax and g > 0)."""
    prev_w, content_w, gate = _t(prev_w), _t(content_w), _t(gate)
    shift, sharpen = _t(shift), _t(sharpen)
    _check("ntm_address", prev_w=(prev_w, "BHN"), content_w=(content_w, "BHN"),
           gate=(gate, "BH"), shift=(shift, "BHS"), sharpen=(sharpen, "BH"))
    S = shift.shape[-1]
    if S % 2 == 0:
        raise ValueError(f"ntm_address: shift must hold an odd number 2r + 1 of offsets "
                         f"-r..r, got shape {shift.shape}")
    g = gate[..., None]
    wg = g * content_w + (1 - g) * prev_w
    r = S // 2
    # roll(w, d)[i] = w[i - d]: offset d = k - r moves the focus d rows on
    rolled = ops.stack([ops.roll(wg, k - r, axis=-1) for k in range(S)], axis=-2)  # (B,H,S,N)
    shifted = (shift[..., None, :] @ rolled)[..., 0, :]
    powered = shifted ** sharpen[..., None]
    return powered / powered.sum(axis=-1, keepdims=True)


def dnc_usage(prev_usage: ArrayLike, write_w: ArrayLike, read_w: ArrayLike,
              free_gates: ArrayLike) -> Tensor:
    """The DNC's usage vector (methods, "dynamic memory allocation"):

        ψ_t = Π_{i=1..R} (1 - f^i_t w^{r,i}_{t-1})                 retention
        u_t = (u_{t-1} + w^w_{t-1} - u_{t-1} ⊙ w^w_{t-1}) ⊙ ψ_t

    A row is used once written and stays used until the read heads that
    read it last free it (free gates f^i ∈ [0, 1]). prev_usage u_{t-1} (B, N);
    write_w the previous write weighting w^w_{t-1} (B, N); read_w the
    previous read weightings (B, R, N); free_gates (B, R). Returns u_t (B, N),
    in [0, 1] when its inputs are."""
    prev_usage, write_w, read_w, free_gates = map(_t, (prev_usage, write_w, read_w, free_gates))
    _check("dnc_usage", prev_usage=(prev_usage, "BN"), write_w=(write_w, "BN"),
           read_w=(read_w, "BRN"), free_gates=(free_gates, "BR"))
    retention = ops.prod(1 - free_gates[..., None] * read_w, axis=1)
    return (prev_usage + write_w - prev_usage * write_w) * retention


def dnc_allocation(usage: ArrayLike) -> Tensor:
    """The allocation weighting (DNC methods): with φ the indices of the rows
    sorted by ascending usage (φ_1 the least used),

        a[φ_j] = (1 - u[φ_j]) Π_{i<j} u[φ_i],

    which puts the weight on the least used row, the more so the more the
    rows before it are used. usage (B, N) in [0, 1]; returns (B, N), ≥ 0 and
    summing to at most 1. Ties keep the rows' order (a stable sort).

    The sort order is treated as a constant in backprop, as in DeepMind's
    implementation: the gradient flows through the sorted usages (a
    permutation) and the products, not through the choice of φ. The
    products are an exclusive `cumprod`, whose gradient is exact where a
    usage is exactly 0 or 1."""
    usage = _t(usage)
    _check("dnc_allocation", usage=(usage, "BN"))
    N = usage.shape[-1]
    ordered = ops.sort(usage, axis=-1)                                      # u[φ_j]
    one = Tensor(np.ones((usage.shape[0], 1), usage.dtype))
    before = ops.cumprod(ops.concat([one, ordered[:, :-1]], axis=-1), axis=-1)   # Π_{i<j} u[φ_i]
    # back to the rows' order: P[b, j, n] = 1 where φ_j = n, recorded (not read
    # from the values), so a replayed graph sorts each call's usage afresh
    perm = ops.one_hot(ops.argsort(usage, axis=-1), N, dtype=usage.dtype)
    return (((1 - ordered) * before)[:, None, :] @ perm)[:, 0, :]


def dnc_write_weights(allocation: ArrayLike, content_w: ArrayLike, alloc_gate: ArrayLike,
                      write_gate: ArrayLike) -> Tensor:
    """The DNC's write weighting (methods, "write weighting"):

        w^w_t = g^w_t (g^a_t a_t + (1 - g^a_t) c^w_t)

    allocation a_t and content weighting c^w_t (B, N); the allocation gate
    g^a (B,) chooses between writing to free rows and to rows like the key;
    the write gate g^w (B,) whether to write at all. Returns (B, N)."""
    allocation, content_w, alloc_gate, write_gate = map(
        _t, (allocation, content_w, alloc_gate, write_gate))
    _check("dnc_write_weights", allocation=(allocation, "BN"), content_w=(content_w, "BN"),
           alloc_gate=(alloc_gate, "B"), write_gate=(write_gate, "B"))
    ga = alloc_gate[:, None]
    return write_gate[:, None] * (ga * allocation + (1 - ga) * content_w)


def dnc_write(memory: ArrayLike, write_w: ArrayLike, erase: ArrayLike, add: ArrayLike) -> Tensor:
    """Erase, then add (NTM eq. 3-4; DNC methods):

        M_t = M_{t-1} ⊙ (E - w^w e^T) + w^w v^T

    E the matrix of ones: row i loses the fraction w^w[i] e of its word and
    gains w^w[i] v. memory (B, N, W); write_w (B, N); erase e (B, W) in
    [0, 1]; add (the write vector) v (B, W). Returns M_t (B, N, W)."""
    memory, write_w, erase, add = map(_t, (memory, write_w, erase, add))
    _check("dnc_write", memory=(memory, "BNW"), write_w=(write_w, "BN"),
           erase=(erase, "BW"), add=(add, "BW"))
    w = write_w[:, :, None]
    return memory * (1 - w * erase[:, None, :]) + w * add[:, None, :]


def dnc_link(prev_link: ArrayLike, prev_precedence: ArrayLike,
             write_w: ArrayLike) -> tuple[Tensor, Tensor]:
    """The temporal link matrix and the precedence weighting (DNC methods,
    "temporal memory linkage"):

        L_t[i, j] = (1 - w^w[i] - w^w[j]) L_{t-1}[i, j] + w^w[i] p_{t-1}[j],  L_t[i, i] = 0
        p_t = (1 - Σ_i w^w[i]) p_{t-1} + w^w

    L_t[i, j] is how much row i was written right after row j; p_t[j] how
    much row j was the last written. prev_link (B, N, N), prev_precedence
    (B, N), write_w w^w_t (B, N). Returns (L_t, p_t)."""
    prev_link, prev_precedence, write_w = map(_t, (prev_link, prev_precedence, write_w))
    _check("dnc_link", prev_link=(prev_link, "BNN"), prev_precedence=(prev_precedence, "BN"),
           write_w=(write_w, "BN"))
    N = write_w.shape[-1]
    wi, wj = write_w[:, :, None], write_w[:, None, :]
    link = (1 - wi - wj) * prev_link + wi * prev_precedence[:, None, :]
    link = link * (1 - np.eye(N, dtype=link.dtype))
    precedence = (1 - write_w.sum(axis=-1, keepdims=True)) * prev_precedence + write_w
    return link, precedence


def dnc_read_weights(link: ArrayLike, prev_read_w: ArrayLike, content_w: ArrayLike,
                     modes: ArrayLike) -> Tensor:
    """The read weightings (DNC methods, "read weighting"): read head i moves
    along the link matrix forward (to what was written after what it read),
    backward, or reads by content:

        f^i_t = L_t w^{r,i}_{t-1}     b^i_t = L_t^T w^{r,i}_{t-1}
        w^{r,i}_t = π^i[1] b^i_t + π^i[2] c^{r,i}_t + π^i[3] f^i_t

    link L_t (B, N, N); prev_read_w (B, R, N); content_w c^r (B, R, N);
    modes π (B, R, 3), each a distribution in the order backward, content,
    forward. Returns (B, R, N)."""
    link, prev_read_w, content_w, modes = map(_t, (link, prev_read_w, content_w, modes))
    _check("dnc_read_weights", link=(link, "BNN"), prev_read_w=(prev_read_w, "BRN"),
           content_w=(content_w, "BRN"), modes=(modes, "BR3"))
    # as rows: (L w)ᵀ = wᵀ Lᵀ and (Lᵀ w)ᵀ = wᵀ L
    forward = prev_read_w @ link.swapaxes(-1, -2)
    backward = prev_read_w @ link
    return modes[..., 0:1] * backward + modes[..., 1:2] * content_w + modes[..., 2:3] * forward


def _oneplus(x: Tensor) -> Tensor:
    """1 + log(1 + e^x): a strength in [1, ∞) (DNC methods)."""
    return 1 + ops.softplus(x)


def _pieces(v: Tensor, sizes: Mapping[str, Union[int, tuple[int, ...]]]) -> dict[str, Tensor]:
    """Cut the last axis of v (B, Σ sizes) into named pieces, reshaped to
    (B, *size) for tuple sizes."""
    out, at = {}, 0
    for name, size in sizes.items():
        n = int(np.prod(size))
        piece = v[:, at:at + n]
        out[name] = piece.reshape((v.shape[0],) + size) if isinstance(size, tuple) else piece
        at += n
    return out


# ---------------------------------------------------------------------------
# Modules

class NTMState(NamedTuple):
    """An NTM's state between steps: the controller's h and c (B, hidden);
    memory (B, N, W); read_vector, the last word read (B, W); read_weights
    (B, 1, N) and write_weights (B, N), the heads' last weightings."""
    h: Tensor
    c: Tensor
    memory: Tensor
    read_vector: Tensor
    read_weights: Tensor
    write_weights: Tensor


class DNCState(NamedTuple):
    """A DNC's state between steps: the controller's h and c (B, hidden);
    memory (B, N, W); read_vectors, the last words read (B, R, W);
    read_weights (B, R, N); write_weights (B, N); usage (B, N); link, the
    temporal link matrix (B, N, N); precedence (B, N)."""
    h: Tensor
    c: Tensor
    memory: Tensor
    read_vectors: Tensor
    read_weights: Tensor
    write_weights: Tensor
    usage: Tensor
    link: Tensor
    precedence: Tensor


class _MemoryNet(Module):
    """What the NTM and DNC share: an LSTMCell controller fed [x_t; r_{t-1}],
    an interface layer from h_t, the output layer y_t = W_y [h_t; r_t] + b,
    the checks, the loop over the steps and the trace."""

    num_reads = 1
    State: Any = NTMState
    shift_range: int
    _head: dict[str, int]
    _sizes: dict[str, Union[int, tuple[int, ...]]]

    def __init__(self, input_size: int, output_size: int, hidden_size: int, memory_size: int,
                 word_size: int, interface_size: int, batch_first: bool, seed: Seed,
                 name: Optional[str], dtype: DType) -> None:
        super().__init__(name=name)
        what = type(self).__name__
        self.input_size = _positive(input_size, what, "input_size")
        self.output_size = _positive(output_size, what, "output_size")
        self.hidden_size = _positive(hidden_size, what, "hidden_size")
        self.memory_size = _positive(memory_size, what, "memory_size")
        self.word_size = _positive(word_size, what, "word_size")
        self.batch_first = bool(batch_first)
        dt = _float_dtype(dtype, what)
        rng = _rng(seed, what)
        RW = self.num_reads * self.word_size
        self.controller = LSTMCell(self.input_size + RW, self.hidden_size, seed=rng, dtype=dt)
        self.interface = Linear(self.hidden_size, interface_size, seed=rng, dtype=dt)
        self.output = Linear(self.hidden_size + RW, self.output_size, seed=rng, dtype=dt)

    def _where(self) -> str:
        return f"{type(self).__name__} {self.scope_name!r}"

    @property
    def _dtype(self) -> np.dtype:
        return self.controller.weight_ih.dtype

    def _shapes(self, B: int) -> dict[str, tuple[int, ...]]:
        """Each state field's shape for a batch of B."""
        N, W, R, H = self.memory_size, self.word_size, self.num_reads, self.hidden_size
        shapes = {"h": (B, H), "c": (B, H), "memory": (B, N, W), "read_vector": (B, W),
                  "read_vectors": (B, R, W), "read_weights": (B, R, N), "write_weights": (B, N),
                  "usage": (B, N), "link": (B, N, N), "precedence": (B, N)}
        return {k: shapes[k] for k in self.State._fields}

    def initial_state(self, batch: int) -> Any:
        """The state a sequence starts from: zeros (memory, usage, links,
        reads), the heads' weightings as `_initial_weights` gives them."""
        z = {k: Tensor(np.zeros(s, self._dtype)) for k, s in self._shapes(batch).items()}
        return self.State(**{**z, **self._initial_weights(batch)})

    def _initial_weights(self, batch: int) -> dict[str, Tensor]:
        return {}

    def _state(self, state: Any, B: int) -> Any:
        if state is None:
            return self.initial_state(B)
        fields = self.State._fields
        if not isinstance(state, tuple) or len(state) != len(fields):
            raise TypeError(f"{self._where()}: state must be a {self.State.__name__} "
                            f"{fields}, got {type(state).__name__}")
        given = self.State(*(_as_input(s, self._dtype) for s in state))
        for k, shape in self._shapes(B).items():
            got = getattr(given, k).shape
            if got != shape:
                raise ValueError(f"{self._where()}: state.{k} must have shape {shape} for a "
                                 f"batch of {B} (memory_size={self.memory_size}, word_size="
                                 f"{self.word_size}, hidden_size={self.hidden_size}), got {got}")
        return given

    def _input(self, x: ArrayLike) -> Tensor:
        x = _as_input(x, self._dtype)
        layout = "(batch, seq, feature)" if self.batch_first else "(seq, batch, feature)"
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"{self._where()}: expected a 3-D input {layout} with feature = "
                             f"input_size = {self.input_size}, got shape {x.shape}")
        if self.batch_first:
            x = x.swapaxes(0, 1)
        if x.shape[0] == 0:
            raise ValueError(f"{self._where()}: the input has no time steps (shape {x.shape})")
        return x

    def forward(self, x: ArrayLike, state: Any = None, *,
                trace: bool = False) -> Union[tuple[Tensor, Any], tuple[Tensor, Any, dict]]:
        """Run the sequence x (T, B, input_size) (batch_first: (B, T, ·)) from
        `state` (None: `initial_state`). Returns (y, state) with y (T, B,
        output_size) (batch_first: (B, T, ·)) and the state after the last
        step; with trace=True also a dict of numpy arrays, each (T, B, ...)
        whatever batch_first (see the class docstring for the keys)."""
        x = self._input(x)
        T, B = x.shape[0], x.shape[1]
        s = self._state(state, B)
        cell, I, H = self.controller, self.input_size, self.hidden_size
        assert cell.bias_ih is not None and cell.bias_hh is not None   # made with bias=True
        prev = push_scope(("controller",))
        try:
            # the x part of every step's input projection: one (T·B, I) matmul
            xp = x.reshape(T * B, I) @ cell.weight_ih[:, :I].T + cell.bias_ih + cell.bias_hh
            xs = _unstack(xp.reshape(T, B, 4 * H))
            w_read, whh_t = cell.weight_ih[:, I:].T, cell.weight_hh.T
        finally:
            restore_scope(prev)
        hc = None if state is None else ops.concat([s.h, s.c], axis=-1)
        hs, reads = [], []
        steps: dict[str, list[np.ndarray]] = {}
        for t in range(T):
            prev = push_scope((f"t{t}",))
            try:
                read = self._read_vector(s)
                with_scope = push_scope(("controller",))
                try:
                    hc = _lstm_step(xs[t] + read @ w_read, hc, whh_t, None, H)
                    h = hc[:, :H]
                finally:
                    restore_scope(with_scope)
                s, seen = self._step(s, self.interface(h))
                hs.append(h)
                reads.append(self._read_vector(s))
                if trace:
                    for k, v in seen.items():
                        steps.setdefault(k, []).append(v.data)
            finally:
                restore_scope(prev)
        assert hc is not None
        s = s._replace(h=hc[:, :H], c=hc[:, H:])
        hr = ops.concat([ops.stack(hs, axis=0), ops.stack(reads, axis=0)], axis=-1)
        y = self.output(hr.reshape(T * B, -1)).reshape(T, B, -1)     # every step at once
        if self.batch_first:
            y = y.swapaxes(0, 1)
        if not trace:
            return y, s
        return y, s, {k: np.stack(v) for k, v in steps.items()}

    def _read_vector(self, s: Any) -> Tensor:
        """The words read, flat (B, R·W)."""
        raise NotImplementedError

    def _step(self, s: Any, xi: Tensor) -> tuple[Any, dict[str, Tensor]]:
        """One step of the memory from the interface vector xi (B, ·): the new
        state (h, c updated by the caller) and the values to trace."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        s = (f"{self.input_size}, {self.output_size}, hidden_size={self.hidden_size}, "
             f"memory_size={self.memory_size}, word_size={self.word_size}")
        return s + (", batch_first=True" if self.batch_first else "")

    def _diagram(self, name: str, title: str, fields: tuple[Field, ...],
                 write: tuple[Stage, ...], read: tuple[Stage, ...]) -> list[DiagramPart]:
        """The book's architecture figure (see `tg.nn.MemoryNetwork`): the
        controller as its own module describes it, the sizes, the interface
        fields and the heads' stages given by the subclass."""
        controller = self.controller.diagram(_join(name, "controller"))[0]
        assert isinstance(controller, Cell)     # an LSTMCell describes itself as one
        return [MemoryNetwork(name or self.scope_name, title, controller, self.input_size,
                              self.output_size, self.memory_size, self.word_size, self.num_reads,
                              self.interface.out_features, fields, write, read)]


class NTM(_MemoryNet):
    """A Neural Turing Machine (Graves, Wayne and Danihelka 2014): an LSTM
    controller with one read head and one write head on a memory of
    memory_size rows of word_size numbers.

    Each step t, with r_{t-1} the word read at the previous step:

        h_t, c_t = LSTMCell([x_t; r_{t-1}], (h_{t-1}, c_{t-1}))
        ξ_t = W_ξ h_t + b_ξ, cut per head into a key k, a strength β =
            softplus(·), a gate g = σ(·), a shift s = softmax(·) over the
            2·shift_range + 1 offsets, γ = 1 + softplus(·); the write head
            also an erase vector e = σ(·) and an add vector a (linear)
        write: w^w_t = ntm_address(w^w_{t-1}, content_weights(M_{t-1}, k, β), g, s, γ)
               M_t = dnc_write(M_{t-1}, w^w_t, e, a)
        read:  w^r_t = ntm_address(w^r_{t-1}, content_weights(M_t, k, β), g, s, γ)
               r_t = M_tᵀ w^r_t
        y_t = W_y [h_t; r_t] + b_y

    The memory starts at zeros and both heads at row 0 (one-hot weightings).
    Parameters: controller.weight_ih (4·hidden, input_size + word_size) and
    the LSTMCell's others, interface.weight / .bias, output.weight / .bias.

    `ntm(x, state=None, *, trace=False)` returns (y, state) (an `NTMState`),
    and with trace=True a dict of numpy arrays too: "write_weights" (T, B, N),
    "read_weights" (T, B, 1, N), "memory" (T, B, N, W) (after the write),
    "read_shift" and "write_shift" (T, B, S), "read_sharpen" and
    "write_sharpen" (T, B)."""

    State = NTMState

    def __init__(self, input_size: int, output_size: int, *, hidden_size: int = 64,
                 memory_size: int = 16, word_size: int = 16, shift_range: int = 1,
                 batch_first: bool = False, seed: Seed = None, name: Optional[str] = None,
                 dtype: DType = np.float32) -> None:
        if not isinstance(shift_range, (int, np.integer)) or isinstance(shift_range, bool) \
                or shift_range < 0:
            raise ValueError(f"NTM: shift_range must be a non-negative int, got {shift_range!r}")
        if isinstance(memory_size, (int, np.integer)) and 2 * shift_range + 1 > memory_size:
            raise ValueError(f"NTM: the 2·shift_range + 1 = {2 * shift_range + 1} shift offsets "
                             f"must fit in memory_size = {memory_size} rows")
        word_size = _positive(word_size, "NTM", "word_size")
        self.__dict__["shift_range"] = int(shift_range)
        S = 2 * self.shift_range + 1
        self.__dict__["_head"] = {"key": word_size, "strength": 1, "gate": 1, "shift": S,
                                  "sharpen": 1}
        head = sum(self._head.values())
        super().__init__(input_size, output_size, hidden_size, memory_size, word_size,
                         2 * head + 2 * word_size, batch_first, seed, name, dtype)

    def _initial_weights(self, batch: int) -> dict[str, Tensor]:
        first = np.zeros((batch, self.memory_size), self._dtype)
        first[:, 0] = 1
        return {"read_weights": Tensor(first[:, None, :].copy()), "write_weights": Tensor(first)}

    def _read_vector(self, s: Any) -> Tensor:
        return s.read_vector

    def _address(self, memory: Tensor, prev_w: Tensor, p: dict[str, Tensor],
                 seen: dict[str, Tensor], head: str) -> Tensor:
        content = content_weights(memory, p["key"][:, None, :], ops.softplus(p["strength"]))
        shift, sharpen = ops.softmax(p["shift"], axis=-1), 1 + ops.softplus(p["sharpen"])
        seen[head + "_shift"], seen[head + "_sharpen"] = shift, sharpen[:, 0]
        return ntm_address(prev_w, content, ops.sigmoid(p["gate"]), shift[:, None, :], sharpen)

    def _step(self, s: Any, xi: Tensor) -> tuple[Any, dict[str, Tensor]]:
        W = self.word_size
        sizes = {**{"w_" + k: v for k, v in self._head.items()},
                 **{"r_" + k: v for k, v in self._head.items()}, "erase": W, "add": W}
        p = _pieces(xi, sizes)
        write = {k[2:]: v for k, v in p.items() if k.startswith("w_")}
        read = {k[2:]: v for k, v in p.items() if k.startswith("r_")}
        seen: dict[str, Tensor] = {}
        prev = push_scope(("write",))
        try:
            ww = self._address(s.memory, s.write_weights[:, None, :], write, seen, "write")[:, 0, :]
            memory = dnc_write(s.memory, ww, ops.sigmoid(p["erase"]), p["add"])
        finally:
            restore_scope(prev)
        prev = push_scope(("read",))
        try:
            rw = self._address(memory, s.read_weights, read, seen, "read")
            r = (rw @ memory)[:, 0, :]
        finally:
            restore_scope(prev)
        new = s._replace(memory=memory, read_vector=r, read_weights=rw, write_weights=ww)
        seen.update(write_weights=ww, read_weights=rw, memory=memory)
        return new, seen

    def extra_repr(self) -> str:
        return super().extra_repr() + f", shift_range={self.shift_range}"

    def diagram(self, name: str = "") -> list[DiagramPart]:
        """The NTM figure (Graves et al. 2014, fig. 1-2): the interface fields
        of each head, the write head's addressing (content, interpolation,
        shift, sharpening) then erase and add, the read head's addressing
        then r⟨t⟩ = M⟨t⟩ᵀ wʳ⟨t⟩ (see `tg.nn.MemoryNetwork`)."""
        N, W, S = self.memory_size, self.word_size, 2 * self.shift_range + 1
        r = self.shift_range
        squash = {"key": "linear", "strength": "softplus", "gate": "σ", "shift": "softmax",
                  "sharpen": "1 + softplus"}
        symbol = {"key": "k", "strength": "β", "gate": "g", "shift": "s", "sharpen": "γ"}
        fields = []
        for head, mark in (("write", "ʷ"), ("read", "ʳ")):
            for k, size in self._head.items():
                fields.append(Field(f"{head} {k}", symbol[k] + mark, (size,), squash[k], head))
        fields += [Field("erase", "e", (W,), "σ", "write"), Field("add", "a", (W,), "linear",
                                                                    "write")]

        def address(head: str, mark: str, memory: str) -> list[Stage]:
            p = "" if head == "write" else "read "
            return [
                Stage(f"{p}content weighting", "c" + mark, (N,),
                      f"c{mark}[i] ∝ exp(β{mark} cos(k{mark}, {memory}[i]))",
                      (f"{head} key", f"{head} strength", "memory")),
                Stage(f"{p}interpolated weighting", "wᵍ", (N,),
                      f"wᵍ = g{mark} c{mark} + (1 − g{mark}) w{mark}⟨t−1⟩",
                      (f"{p}content weighting", f"{head} gate"),
                      previous=(f"{head} weighting",)),
                Stage(f"{p}shifted weighting", "w̃", (N,),
                      f"w̃[i] = Σₖ s{mark}[k] wᵍ[i − k]\nk = −{r}..{r}, i − k mod {N}",
                      (f"{p}interpolated weighting", f"{head} shift")),
                Stage(f"{head} weighting", "w" + mark, (N,),
                      f"w{mark}[i] = w̃[i]^γ{mark} / Σⱼ w̃[j]^γ{mark}",
                      (f"{p}shifted weighting", f"{head} sharpen"))]
        write = address("write", "ʷ", "M⟨t−1⟩") + [
            Stage("erase and add", "M", (N, W), "M⟨t⟩ = M⟨t−1⟩ ⊙ (E − wʷ eᵀ)\n+ wʷ aᵀ",
                  ("write weighting", "erase", "add", "memory"), writes=True)]
        read = address("read", "ʳ", "M⟨t⟩") + [
            Stage("read vector", "r", (W,), "r⟨t⟩ = M⟨t⟩ᵀ wʳ⟨t⟩", ("read weighting", "memory"))]
        return self._diagram(name, "Neural Turing Machine", tuple(fields), tuple(write),
                             tuple(read))


class DNC(_MemoryNet):
    """A Differentiable Neural Computer (Graves et al., Nature 2016): an LSTM
    controller, one write head and num_reads read heads on a memory of
    memory_size rows of word_size numbers, with dynamic allocation and
    temporal links.

    Each step t, with r_{t-1} the R words read at the previous step:

        h_t, c_t = LSTMCell([x_t; r_{t-1}], (h_{t-1}, c_{t-1}))
        ξ_t = W_ξ h_t + b_ξ, cut as in the paper into read keys k^r (R·W),
            read strengths β^r = oneplus (R), write key k^w (W), write
            strength β^w = oneplus (1), erase e = σ (W), write vector v (W),
            free gates f = σ (R), allocation gate g^a = σ (1), write gate
            g^w = σ (1), read modes π = softmax over 3 (R·3), with
            oneplus(x) = 1 + log(1 + e^x)
        u_t = dnc_usage(u_{t-1}, w^w_{t-1}, w^r_{t-1}, f)
        a_t = dnc_allocation(u_t)
        w^w_t = dnc_write_weights(a_t, content_weights(M_{t-1}, k^w, β^w), g^a, g^w)
        M_t = dnc_write(M_{t-1}, w^w_t, e, v)
        L_t, p_t = dnc_link(L_{t-1}, p_{t-1}, w^w_t)
        w^r_t = dnc_read_weights(L_t, w^r_{t-1}, content_weights(M_t, k^r, β^r), π)
        r_t = M_tᵀ w^r_t
        y_t = W_y [h_t; r_t] + b_y

    (The paper's y_t = W_y h_t + W_r r_t is the same map with W_y and W_r
    side by side.) Every part of the state starts at zero. Parameters:
    controller.weight_ih (4·hidden, input_size + R·W) and the LSTMCell's
    others, interface.weight (R·W + 3W + 5R + 3, hidden) / .bias,
    output.weight (output_size, hidden + R·W) / .bias.

    `dnc(x, state=None, *, trace=False)` returns (y, state) (a `DNCState`),
    and with trace=True a dict of numpy arrays too, each (T, B, ...):
    "write_weights" (T, B, N), "read_weights" (T, B, R, N), "usage",
    "allocation" (T, B, N), "free_gates" (T, B, R), "read_modes" (T, B, R, 3)
    (backward, content, forward), "write_gate", "allocation_gate" (T, B),
    "link" (T, B, N, N), "memory" (T, B, N, W) (after the write)."""

    State = DNCState

    def __init__(self, input_size: int, output_size: int, *, hidden_size: int = 64,
                 memory_size: int = 16, word_size: int = 16, num_reads: int = 1,
                 batch_first: bool = False, seed: Seed = None, name: Optional[str] = None,
                 dtype: DType = np.float32) -> None:
        R = _positive(num_reads, "DNC", "num_reads")
        W = _positive(word_size, "DNC", "word_size")
        self.__dict__["num_reads"] = R
        self.__dict__["_sizes"] = {"read_keys": (R, W), "read_strengths": R, "write_key": W,
                                   "write_strength": 1, "erase": W, "write_vector": W,
                                   "free_gates": R, "alloc_gate": 1, "write_gate": 1,
                                   "read_modes": (R, 3)}
        super().__init__(input_size, output_size, hidden_size, memory_size, word_size,
                         R * W + 3 * W + 5 * R + 3, batch_first, seed, name, dtype)

    def _read_vector(self, s: Any) -> Tensor:
        return s.read_vectors.reshape(s.read_vectors.shape[0], -1)

    def _step(self, s: Any, xi: Tensor) -> tuple[Any, dict[str, Tensor]]:
        p = _pieces(xi, self._sizes)
        free = ops.sigmoid(p["free_gates"])
        alloc_gate, write_gate = ops.sigmoid(p["alloc_gate"][:, 0]), ops.sigmoid(p["write_gate"][:, 0])
        modes = ops.softmax(p["read_modes"], axis=-1)
        prev = push_scope(("write",))
        try:
            usage = dnc_usage(s.usage, s.write_weights, s.read_weights, free)
            allocation = dnc_allocation(usage)
            content = content_weights(s.memory, p["write_key"][:, None, :],
                                      _oneplus(p["write_strength"]))[:, 0, :]
            ww = dnc_write_weights(allocation, content, alloc_gate, write_gate)
            memory = dnc_write(s.memory, ww, ops.sigmoid(p["erase"]), p["write_vector"])
            link, precedence = dnc_link(s.link, s.precedence, ww)
        finally:
            restore_scope(prev)
        prev = push_scope(("read",))
        try:
            content_r = content_weights(memory, p["read_keys"], _oneplus(p["read_strengths"]))
            rw = dnc_read_weights(link, s.read_weights, content_r, modes)
            reads = rw @ memory
        finally:
            restore_scope(prev)
        new = s._replace(memory=memory, read_vectors=reads, read_weights=rw, write_weights=ww,
                         usage=usage, link=link, precedence=precedence)
        seen = {"write_weights": ww, "read_weights": rw, "usage": usage,
                "allocation": allocation, "free_gates": free, "read_modes": modes,
                "write_gate": write_gate, "allocation_gate": alloc_gate, "link": link,
                "memory": memory}
        return new, seen

    def extra_repr(self) -> str:
        return super().extra_repr() + f", num_reads={self.num_reads}"

    def diagram(self, name: str = "") -> list[DiagramPart]:
        """The DNC figure (Graves et al. 2016, fig. 1): the interface fields,
        the write head's usage, allocation, content weighting, write
        weighting, erase and add, temporal link and precedence; a read head's
        content weighting, forward/backward weightings along the link
        matrix, read modes and read vector (see `tg.nn.MemoryNetwork`)."""
        N, W, R = self.memory_size, self.word_size, self.num_reads
        fields = (
            Field("read keys", "kʳ", (R, W), "linear", "read"),
            Field("read strengths", "βʳ", (R,), "oneplus", "read"),
            Field("write key", "kʷ", (W,), "linear", "write"),
            Field("write strength", "βʷ", (1,), "oneplus", "write"),
            Field("erase", "e", (W,), "σ", "write"),
            Field("write vector", "v", (W,), "linear", "write"),
            Field("free gates", "f", (R,), "σ", "write"),
            Field("allocation gate", "gᵃ", (1,), "σ", "write"),
            Field("write gate", "gʷ", (1,), "σ", "write"),
            Field("read modes", "π", (R, 3), "softmax", "read"))
        write = (
            Stage("usage", "u", (N,), "u⟨t⟩ = (u + wʷ − u ⊙ wʷ)⟨t−1⟩ ⊙ ψ\n"
                  "ψ = Πᵢ (1 − fⁱ wʳⁱ⟨t−1⟩)",
                  ("free gates",), previous=("usage", "write weighting", "read weighting")),
            Stage("allocation", "a", (N,), "a[φⱼ] = (1 − u[φⱼ]) Π_{i<j} u[φᵢ]\n"
                  "φ: the rows by ascending usage",
                  ("usage",)),
            Stage("write content weighting", "cʷ", (N,), "cʷ[i] ∝ exp(βʷ cos(kʷ, M⟨t−1⟩[i]))",
                  ("write key", "write strength", "memory")),
            Stage("write weighting", "wʷ", (N,), "wʷ = gʷ (gᵃ a + (1 − gᵃ) cʷ)",
                  ("allocation", "write content weighting", "allocation gate", "write gate")),
            Stage("erase and add", "M", (N, W), "M⟨t⟩ = M⟨t−1⟩ ⊙ (E − wʷ eᵀ)\n+ wʷ vᵀ",
                  ("write weighting", "erase", "write vector", "memory"), writes=True),
            Stage("temporal link", "L", (N, N),
                  "L[i,j] = (1 − wʷ[i] − wʷ[j]) L⟨t−1⟩[i,j]\n"
                  "+ wʷ[i] p⟨t−1⟩[j]",
                  ("write weighting",), previous=("temporal link", "precedence")),
            Stage("precedence", "p", (N,), "p⟨t⟩ = (1 − Σᵢ wʷ[i]) p⟨t−1⟩ + wʷ",
                  ("write weighting",), previous=("precedence",)))
        read = (
            Stage("read content weighting", "cʳ", (N,), "cʳ[i] ∝ exp(βʳ cos(kʳ, M⟨t⟩[i]))",
                  ("read keys", "read strengths", "memory")),
            Stage("forward and backward weightings", "f, b", (2, N),
                  "f = L wʳ⟨t−1⟩,  b = Lᵀ wʳ⟨t−1⟩", ("temporal link",),
                  previous=("read weighting",)),
            Stage("read weighting", "wʳ", (N,), "wʳ = π₁ b + π₂ cʳ + π₃ f",
                  ("forward and backward weightings", "read content weighting", "read modes")),
            Stage("read vector", "r", (W,), "r⟨t⟩ = M⟨t⟩ᵀ wʳ⟨t⟩", ("read weighting", "memory")))
        return self._diagram(name, "Differentiable Neural Computer", fields, write, read)
