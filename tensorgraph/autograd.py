"""Reverse-mode autodiff: walk the recorded DAG from the output back to the leaves.

For y = f(x) the backward pass computes vector-Jacobian products: given
g = dL/dy it asks each op for dL/dx_i = g · ∂y/∂x_i (the op's VJP, see `ops`),
then sums the contributions that reach the same tensor (the multivariate chain
rule: a value used twice receives the sum of both paths' gradients).

The walk is iterative (no recursion limit) and visits each node once, in
reverse topological order, so every gradient is complete before it is passed on.
With `create_graph=True` the VJPs run on Tensors instead of arrays, so the
backward pass is itself recorded and can be differentiated again.

Gradients as graph: `tg.grad` inside `tg.capture` records the backward pass
into the captured graph, as `tf.gradients` does. Each VJP becomes one op
(`matmul_vjp1`: the VJP run on arrays, then unbroadcast to its input's
shape), so the replay computes it on the arrays it is fed: a new batch size,
new targets. The sums of gradients that meet are `add` ops. `loss.backward()`
inside `tg.capture` records the same ops and sets each leaf's `.grad` to its
recorded gradient, so that an optimizer's `step()` records its update from it
(PyTorch's training step, captured whole).
"""
from __future__ import annotations

import contextlib
import gc
import sys
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np

from .tensor import (AnomalyError, ArrayLike, Tensor, _new, _nonfinite, _where, is_anomaly_enabled,
                     record, set_anomaly_enabled, set_grad_enabled)

# The module (the package's `tensor` attribute is the function tg.tensor): its
# `_epoch` is read live on every backward.
_tensor = sys.modules[Tensor.__module__]

__all__ = ["backward", "grad", "walk", "unbroadcast", "detect_anomaly", "AnomalyError"]


def walk(roots: Union[Tensor, Sequence[Tensor]]) -> list[Tensor]:
    """Every tensor `roots` depend on (through recorded nodes), parents before
    children: a topological order. Iterative, so a million-op chain is fine.
    Each tensor appears once; the order is deterministic (argument order)."""
    return _topological([roots] if isinstance(roots, Tensor) else roots, grad_only=False)


def _topological(roots: Sequence[Tensor], grad_only: bool) -> list[Tensor]:
    """Depth-first post-order from `roots`, with an explicit stack of parent
    iterators instead of recursion. With `grad_only`, only tensors that require
    grad are followed (the only ones a gradient can flow through)."""
    order: list[Tensor] = []
    seen: set[int] = set()
    empty = ()
    for root in roots:
        if id(root) in seen:
            continue
        seen.add(id(root))
        stack = [(root, iter(root.node.parents if root.node is not None else empty))]
        while stack:
            t, it = stack[-1]
            for p in it:
                if (p.requires_grad or not grad_only) and id(p) not in seen:
                    seen.add(id(p))
                    stack.append((p, iter(p.node.parents if p.node is not None else empty)))
                    break
            else:
                stack.pop()
                order.append(t)
    return order


def unbroadcast(g: Any, shape: tuple[int, ...], what: str = "unbroadcast",
                out_shape: Optional[tuple[int, ...]] = None) -> Any:
    """Sum `g` over the axes that broadcasting added or stretched, so that it
    has `shape` again. The only place in tensorgraph that undoes broadcasting;
    works on arrays and (for create_graph) on Tensors alike.

    `shape` must broadcast to g's shape (each of its axes, aligned from the
    right, is 1 or g's size there), and g may have no more axes than the
    input or the op's output (`out_shape`): anything else is a wrong gradient,
    never reshaped or summed into place. `what` names the op and input."""
    lead = g.ndim - len(shape)
    too_many = out_shape is not None and lead > 0 and g.ndim > len(out_shape)
    if lead < 0 or too_many or any(n != 1 and n != m for n, m in zip(shape, g.shape[lead:])):
        raise RuntimeError(f"{what}: gradient of shape {tuple(g.shape)} does not match the "
                           f"input's shape {tuple(shape)}" +
                           (f" (the op's output has shape {tuple(out_shape)})"
                            if out_shape is not None else
                            " (the input cannot have been broadcast to it)"))
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    if axes:
        g = g.sum(axis=axes)
    if g.shape != shape:
        g = g.reshape(shape)
    return g


def _as_root_grad(root: Tensor, gradient: Optional[ArrayLike], create_graph: bool, what: str) -> Any:
    if gradient is None:
        if root._data.size != 1:
            raise RuntimeError(f"{what}: grad can be implicitly created only for scalar outputs; "
                               f"the output has shape {root.shape}, so pass `gradient` "
                               f"(an array of that shape)")
        g: Any = np.ones(root.shape, dtype=root.dtype)
    else:
        g = gradient._data if isinstance(gradient, Tensor) and not create_graph else gradient
        if create_graph and isinstance(g, (list, tuple)):
            # a list holding Tensors: stacked, recorded, so that their graph is kept
            from .ops.registry import as_tensor
            g = as_tensor(g, what)
            if g.dtype != root.dtype:
                g = g.astype(root.dtype)
        if not isinstance(g, Tensor):
            # A copy: a leaf's .grad must not alias the caller's array.
            g = np.array(g, dtype=root.dtype)
        if g.shape != root.shape:
            raise RuntimeError(f"{what}: gradient has shape {g.shape} but the output has "
                               f"shape {root.shape}")
    if create_graph and not isinstance(g, Tensor):
        g = _new(np.asarray(g))
    return g


_VJP_OPS: dict[tuple[Any, int], Any] = {}


def vjp_op(op: Any, i: int) -> Any:
    """The op `{op.name}_vjp{i}`: inputs (g, out, *op's inputs), attrs op's
    attrs; returns dL/d(input i) on arrays, unbroadcast and cast to that
    input's shape and dtype. What a captured `tg.grad` records per edge. Ops
    that save (the fused losses) take what forward saved as `saved=` (a
    replay passes it when the VJP's `out` is computed by that op in the same
    graph), else recompute it (`saved=None`, as for create_graph). Not
    differentiable again.""" 
    key = (op, i)
    vop = _VJP_OPS.get(key)
    if vop is not None:
        return vop
    from .ops.registry import defop
    vjp = op.vjps[0] if op.variadic else op.vjps[i]
    what = f"backward of op '{op.name}', input {i}"

    def forward(g: Any, out: Any, *xs: Any, **attrs: Any) -> Any:
        if op.saves:
            # None: recompute; a replay passes what its forward node saved (Graph._compile)
            attrs.setdefault("saved", None)
        gi = vjp(i, g, out, *xs, **attrs) if op.variadic else vjp(g, out, *xs, **attrs)
        x = xs[i]
        if gi.shape != x.shape:
            gi = unbroadcast(gi, x.shape, what, out.shape)
        if gi.dtype != x.dtype:
            gi = gi.astype(x.dtype)
        return gi
    forward.__name__ = f"{op.name}_vjp{i}"
    forward.vjp_of = op  # type: ignore[attr-defined]
    vop = defop(f"{op.name}_vjp{i}", forward, differentiable=False)
    _VJP_OPS[key] = vop
    return vop


def _run_hooks(t: Tensor, g: Any, create_graph: bool) -> Any:
    for hook in list(t._hooks):
        gt = g if isinstance(g, Tensor) else _new(np.asarray(g))
        r = hook(gt)
        if r is not None:
            r = r if isinstance(r, Tensor) else _new(np.asarray(r))
            if r.shape != t.shape:
                raise RuntimeError(f"hook {getattr(hook, '__name__', hook)!r} returned a gradient "
                                   f"of shape {r.shape} for a tensor of shape {t.shape}")
            if r.dtype != t.dtype:  # grad dtype always equals the tensor's dtype
                r = r.astype(t.dtype)
            g = r if create_graph else r._data
    return g


def _check_versions(node: Any, t: Tensor) -> None:
    """Raise if an input or the output of `node` was modified in place after
    the node was recorded (its VJP would use the new values)."""
    for i, p in enumerate(node.parents):
        if getattr(p, "_version", 0) > node.epoch:
            _modified(node, p, f"its input {i}")
        if _tensor.written_since(p._data, node.epoch):
            _modified(node, p, f"its input {i}", shared=True)
    if getattr(t, "_version", 0) > node.epoch:
        _modified(node, t, "its output")
    if _tensor.written_since(t._data, node.epoch):
        _modified(node, t, "its output", shared=True)


def _modified(node: Any, p: Tensor, which: str, shared: bool = False) -> None:
    label = f"{p.name!r} " if p.name else ""
    how = (" through another tensor that shares its memory (a view, or one made by "
           ".detach() or from the same numpy array)" if shared else "")
    raise RuntimeError(
        f"backward: tensor {label}(shape {p.shape}, {which} of op '{node.op.name}'"
        f"{_where(node.scope, node.trace)}) was modified in place{how} after the op saved "
        "it, so its gradient would be computed from the new values. Modify a copy "
        "(t.clone()), or run backward before changing it.")


def _store_grad(t: Tensor, g: Any, stored: set[int]) -> None:
    """Accumulate into `t.grad` (a fresh array each time: never in place,
    because the same gradient array may be shared by several tensors).
    `stored` holds the ids of the arrays (or their bases) already given to a
    `.grad` in this pass: `a + b` sends one array to both, and `.grad`s that
    share memory would let `a.grad.data *= 0.5` change `b.grad` too."""
    if isinstance(g, Tensor):
        if t.grad is not None:
            t.grad = t.grad + g
        elif id(g) in stored:
            # a + b sends one gradient Tensor to both: each leaf gets its own
            # (recorded, so it can still be differentiated).
            from .ops.elementwise import CLONE
            t.grad = CLONE(g)
        else:
            stored.add(id(g))
            t.grad = g
        return
    g = np.asarray(g)
    if t.grad is None:
        owner = g if g.base is None else g.base
        if not g.flags.writeable or id(owner) in stored:  # a broadcast view, or shared
            g = g.copy()
            owner = g
        stored.add(id(owner))
        t.grad = _new(g)
    else:
        t.grad = _new(t.grad._data + g)


def _backprop(roots: Sequence[Tensor], root_grads: Sequence[Any], retain_graph: bool,
              create_graph: bool, inputs: Optional[Sequence[Tensor]] = None) -> dict[int, Any]:
    """The engine. Returns the gradients reaching `inputs` (keyed by id) when
    given; otherwise accumulates into the leaves' `.grad`."""
    order = _topological(roots, grad_only=True)
    grads: dict[int, Any] = {}
    for r, g in zip(roots, root_grads):
        grads[id(r)] = grads[id(r)] + g if id(r) in grads else g
    want = {id(x) for x in inputs} if inputs is not None else None
    found: dict[int, Any] = {}
    stored: set[int] = set()
    anomaly = is_anomaly_enabled()
    epoch = _tensor._epoch
    # Inside tg.capture (and not asked for a differentiable backward): every
    # VJP is recorded as one op on the gradient Tensors (see `vjp_op`).
    capturing = _tensor._capture is not None and not create_graph
    if capturing:
        scope = _tensor._scope
    ctx = set_grad_enabled(create_graph)
    ctx.__enter__()
    # The walk creates no reference cycles, so the cyclic collector has nothing
    # to find; pausing it stops it rescanning a large live graph mid-walk.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for t in reversed(order):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if t._hooks:
                g = _run_hooks(t, g, create_graph or capturing)
            node = t.node
            if want is not None:
                if id(t) in want:
                    found[id(t)] = g
            elif node is None or t._retain:
                if capturing:
                    _tensor._capture.touch_grad(t)   # put back after the capture
                    if t.grad is not None:
                        _tensor._capture.stale_grad(t)
                _store_grad(t, g, stored)
            if node is None:
                continue
            if node.freed:
                raise RuntimeError(
                    f"backward: trying to backward through the graph a second time (op "
                    f"'{node.op.name}'{_where(node.scope, node.trace)}); its saved values "
                    "were freed by the first backward. Pass retain_graph=True to the first call.")
            op = node.op
            parents = node.parents
            if node.epoch != epoch:   # something was modified in place since it was recorded
                _check_versions(node, t)
            if create_graph or capturing:
                xs: Any = parents
                out: Any = t
            else:
                xs = [p._data for p in parents]
                out = t._data
            vjps = op.vjps
            variadic = op.variadic
            attrs = node.attrs
            if op.saves:
                # On Tensors (create_graph) the VJP recomputes what forward saved,
                # so that it is differentiated as well.
                attrs = {**attrs, "saved": None if create_graph else node.saved}
            edge: Optional[list[Any]] = [] if retain_graph else None
            for i, p in enumerate(parents):
                if not p.requires_grad:
                    if edge is not None:
                        edge.append(None)
                    continue
                if capturing:
                    # scoped like tf.gradients: the listing shows which op's backward it is
                    _tensor._scope = ("gradients",) + node.scope
                    try:
                        gi = record(vjp_op(op, i), (g, out, *xs), node.attrs)
                    finally:
                        _tensor._scope = scope
                elif variadic:
                    gi = vjps[0](i, g, out, *xs, **attrs)
                else:
                    gi = vjps[i](g, out, *xs, **attrs)
                pd = p._data
                if gi.shape != pd.shape:
                    gi = unbroadcast(gi, pd.shape, f"backward of op '{op.name}', input {i}", node.shape)
                if gi.dtype != pd.dtype:  # numpy 2 promotion guard
                    gi = gi.astype(pd.dtype)
                if anomaly:
                    a = gi._data if isinstance(gi, Tensor) else np.asarray(gi)
                    if not np.isfinite(a).all():
                        raise AnomalyError(
                            f"detect_anomaly: backward of op '{op.name}'"
                            f"{_where(node.scope, node.trace)} produced "
                            f"{_nonfinite(a)} in the gradient for its input {i} "
                            f"(shape {p.shape})")
                if edge is not None:
                    # Values only: a recorded gradient Tensor (create_graph) refers back
                    # to this node's output, and keeping it here would form a cycle.
                    edge.append(gi._data if isinstance(gi, Tensor) else gi)
                k = id(p)
                if k in grads:
                    grads[k] = grads[k] + gi
                else:
                    grads[k] = gi
            if edge is not None:
                node.edge_grads = tuple(edge)
            else:
                # Freed: nothing the walk computed is kept (a training loop would
                # otherwise hold a second copy of every activation's gradient).
                node.edge_grads = None
                node.saved = None
                node.freed = True
                # Nothing needs these values any more: `.data` is writable again.
                for p in parents:
                    if p._saves:
                        p._saves -= 1
    finally:
        if gc_was_enabled:
            gc.enable()
        ctx.__exit__(None, None, None)
    return found


def backward(root: Tensor, gradient: Optional[ArrayLike] = None, retain_graph: bool = False,
             create_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into `.grad` of every leaf that requires grad.

    With `retain_graph=True` the graph stays usable for another backward, and
    each node keeps the gradient it sent along each edge (`node.edge_grads`),
    which the renderer's backward view draws; otherwise both are dropped."""
    if not root.requires_grad:
        cut = getattr(root, "_made_by", None)
        if cut is not None:
            raise RuntimeError(f"backward: the tensor was made by op '{cut}', which is not "
                               "differentiable (its result has no gradient); nothing can flow "
                               "back through it")
        raise RuntimeError("backward: the tensor does not require grad and has no graph "
                           "(did you make it under no_grad, or from leaves without "
                           "requires_grad=True?)")
    # Inside tg.capture the root gradient is a Tensor, so that the recorded
    # VJPs take it as an input; each leaf's .grad becomes a captured value
    # (what `opt.step()` then records its update from).
    g = _as_root_grad(root, gradient, create_graph or _tensor._capture is not None, "backward")
    _backprop([root], [g], retain_graph or create_graph, create_graph)


def grad(outputs: Union[Tensor, Sequence[Tensor]], inputs: Union[Tensor, Sequence[Tensor]],
         grad_outputs: Optional[Union[ArrayLike, Sequence[Optional[ArrayLike]]]] = None,
         retain_graph: Optional[bool] = None, create_graph: bool = False,
         allow_unused: bool = False) -> tuple[Optional[Tensor], ...]:
    """The gradients of `outputs` with respect to `inputs`, as a tuple of
    Tensors; `.grad` attributes are left alone. As `torch.autograd.grad`."""
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    gos: list[Any]
    if grad_outputs is None:
        gos = [None] * len(outs)
    elif isinstance(grad_outputs, (Tensor, np.ndarray)):
        if len(outs) != 1:
            raise ValueError(f"grad: got one grad_output for {len(outs)} outputs; pass one "
                             "per output")
        gos = [grad_outputs]
    else:
        gos = list(grad_outputs)
    if len(gos) != len(outs):
        raise ValueError(f"grad: got {len(gos)} grad_outputs for {len(outs)} outputs")
    for i, x in enumerate(ins):
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    for i, o in enumerate(outs):
        if not o.requires_grad:
            raise RuntimeError(f"grad: output {i} does not require grad and has no graph")
    if retain_graph is None:
        retain_graph = create_graph
    # captured: the root gradients are Tensors, so the recorded VJPs take them as inputs
    as_t = create_graph or _tensor._capture is not None
    root_grads = [_as_root_grad(o, go, as_t, "grad") for o, go in zip(outs, gos)]
    found = _backprop(outs, root_grads, retain_graph, create_graph, inputs=ins)
    result: list[Optional[Tensor]] = []
    for i, x in enumerate(ins):
        g = found.get(id(x))
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"grad: input {i} (shape {x.shape}) was not used to compute "
                                   "the outputs; pass allow_unused=True to get None for it")
            result.append(None)
        else:
            result.append(g if isinstance(g, Tensor) else _new(np.array(g)))
    return tuple(result)


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise `AnomalyError` at the first op whose forward or backward produces
    NaN or inf, naming the op, its scope and the user line that created it.
    Slow (checks every array and records a traceback line per op): debug only."""
    prev = set_anomaly_enabled(True)
    try:
        yield
    finally:
        set_anomaly_enabled(prev)
