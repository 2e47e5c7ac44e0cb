"""Hypothesis strategies shared by the op tests.

Shapes (with size-1 and, where an op allows them, size-0 dimensions),
broadcastable shape tuples, small well-conditioned float64 arrays, and
axis/keepdims choices. The arrays are chosen so that finite differences mean
something: values stay away from kinks (0 for relu/abs), from ties (max/min,
maximum/minimum, clip bounds) and from the edge of an op's domain (log, sqrt).
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

MAX_DIMS = 3
MAX_SIDE = 4

Shape = tuple[int, ...]


# ---------------------------------------------------------------------------
# Shapes

def _zero_one_axis(draw: Any, shape: Shape) -> Shape:
    """With probability ~1/5, make one dimension of `shape` size 0. Rare on
    purpose: an empty array makes every other check in an example vacuous."""
    if shape and draw(st.sampled_from([False] * 4 + [True])):
        i = draw(st.integers(0, len(shape) - 1))
        shape = shape[:i] + (0,) + shape[i + 1:]
    return shape


@st.composite
def shapes(draw: Any, min_dims: int = 0, max_dims: int = MAX_DIMS, max_side: int = MAX_SIDE,
           allow_zero: bool = False) -> Shape:
    """An array shape; size-1 dimensions are common, size-0 ones only with
    `allow_zero`."""
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1,
                                  max_side=max_side))
    return _zero_one_axis(draw, shape) if allow_zero else shape


@st.composite
def broadcast_shapes(draw: Any, num_shapes: int = 2, min_dims: int = 0, max_dims: int = MAX_DIMS,
                     allow_zero: bool = False) -> tuple[tuple[Shape, ...], Shape]:
    """`num_shapes` shapes that broadcast together (size-1 dimensions and
    missing leading dimensions stretch), and the shape they broadcast to."""
    b = draw(hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=min_dims,
                                               max_dims=max_dims, min_side=1, max_side=MAX_SIDE))
    ins, out = tuple(b.input_shapes), b.result_shape
    if allow_zero and out and draw(st.sampled_from([False] * 4 + [True])):
        # A 0 in the result: every operand that has the axis gets 0 there,
        # unless it is 1 (1 broadcasts to 0 too).
        k = draw(st.integers(1, len(out)))          # axis counted from the right
        out = out[:-k] + (0,) + out[len(out) - k + 1:]
        ins = tuple(s if len(s) < k or s[-k] == 1 else s[:-k] + (0,) + s[len(s) - k + 1:]
                    for s in ins)
    return ins, out


def matmul_shapes(max_dims: int = 2) -> st.SearchStrategy[Any]:
    """Operand shapes for matmul: 1-D vectors, matrices and broadcast batches
    (numpy's gufunc signature (n?,k),(k,m?)->(n?,m?))."""
    return hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=max_dims,
                                             min_side=1, max_side=MAX_SIDE)


def _prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


@st.composite
def reshape_targets(draw: Any, shape: Shape) -> tuple[int, ...]:
    """A shape with the same number of elements as `shape` (the prime factors
    regrouped, with some 1s), sometimes with one entry written as -1."""
    factors = [f for n in shape for f in ([0] if n == 0 else _prime_factors(n))]
    factors += [1] * draw(st.integers(0, 2))
    factors = draw(st.permutations(factors))
    if not factors:
        return ()
    cuts = sorted(draw(st.sets(st.integers(1, len(factors) - 1), max_size=3))) if len(factors) > 1 else []
    bounds = [0] + cuts + [len(factors)]
    target = [math.prod(factors[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]
    if 0 not in target and draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return tuple(target)


# ---------------------------------------------------------------------------
# Arrays. All float64 (gradcheck needs it); callers cast for dtype tests.

def floats(lo: float = -2.0, hi: float = 2.0) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def arrays(shape: Shape, lo: float = -2.0, hi: float = 2.0) -> st.SearchStrategy[np.ndarray]:
    """Values in [lo, hi]."""
    return hnp.arrays(np.float64, shape, elements=floats(lo, hi))


def positive_arrays(shape: Shape, lo: float = 0.2, hi: float = 3.0) -> st.SearchStrategy[np.ndarray]:
    """Values in [lo, hi] with lo > 0: the domain of log, sqrt and a**b's ∂/∂b."""
    return arrays(shape, lo, hi)


def nonzero_arrays(shape: Shape, lo: float = 0.1, hi: float = 2.0) -> st.SearchStrategy[np.ndarray]:
    """Values with lo <= |x| <= hi, either sign: away from the kink at 0 (relu,
    abs, leaky_relu) and from a division by ~0."""
    el = st.builds(lambda s, m: s * m, st.sampled_from([-1.0, 1.0]), floats(lo, hi))
    return hnp.arrays(np.float64, shape, elements=el)


LATTICE_STEP = 0.05


def lattice_arrays(shape: Shape, odd: bool, k: int = 40) -> st.SearchStrategy[np.ndarray]:
    """Multiples of LATTICE_STEP in about [-2, 2]: odd multiples if `odd`, else
    even ones. An odd-lattice and an even-lattice value differ by at least
    LATTICE_STEP, so maximum/minimum/clip never meet a tie or a bound."""
    el = st.integers(-k, k - 1).map(lambda i: (2 * i + (1 if odd else 0)) * LATTICE_STEP)
    return hnp.arrays(np.float64, shape, elements=el)


def lattice_values(odd: bool, k: int = 40) -> st.SearchStrategy[float]:
    return st.integers(-k, k - 1).map(lambda i: (2 * i + (1 if odd else 0)) * LATTICE_STEP)


@st.composite
def distinct_arrays(draw: Any, shape: Shape, spacing: float = 0.1) -> np.ndarray:
    """All elements different, at least `spacing` apart (a shuffled evenly
    spaced grid, shifted): no ties, so max/min/argmax have one winner."""
    n = math.prod(shape)
    perm = np.array(draw(st.permutations(range(n))), dtype=np.float64)
    shift = draw(floats(-1.0, 1.0))
    return ((perm - (n - 1) / 2) * spacing + shift).reshape(shape)


def small_int_arrays(shape: Shape, lo: int = -2, hi: int = 2) -> st.SearchStrategy[np.ndarray]:
    """Small integers as float64: ties are frequent (for comparisons)."""
    return hnp.arrays(np.float64, shape, elements=st.integers(lo, hi).map(float))


# ---------------------------------------------------------------------------
# Axes

def axes(ndim: int, allow_none: bool = True, allow_tuple: bool = True) -> st.SearchStrategy[Any]:
    """An axis argument: None, an int (negative too), or a tuple of distinct
    axes (possibly empty)."""
    options: list[st.SearchStrategy[Any]] = []
    if allow_none:
        options.append(st.none())
    if ndim:
        options.append(st.integers(-ndim, ndim - 1))
    if allow_tuple:
        options.append(hnp.valid_tuple_axes(ndim))
    return st.one_of(options)


def reduction_args(ndim: int) -> st.SearchStrategy[tuple[Any, bool]]:
    """(axis, keepdims) for a reduction."""
    return st.tuples(axes(ndim), st.booleans())


def reduced_count(shape: Shape, axis: Any) -> int:
    """How many elements each reduction over `axis` combines."""
    if axis is None:
        return math.prod(shape)
    ax = (axis,) if isinstance(axis, int) else tuple(axis)
    return math.prod(shape[a] for a in ax)


# ---------------------------------------------------------------------------
# Index keys

@st.composite
def int_index_arrays(draw: Any, n: int, max_dims: int = 2) -> np.ndarray:
    """An integer array indexing an axis of size n (n > 0): negative entries
    and repeats included, since the backward must accumulate them."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=1, max_side=5))
    return draw(hnp.arrays(np.int64, shape, elements=st.integers(-n, n - 1)))


@st.composite
def index_keys(draw: Any, shape: Shape) -> Any:
    """A key for x[key]: basic (ints, slices with steps, None, Ellipsis),
    integer arrays (one or several, broadcast together, mixed with slices,
    ints and None), or boolean masks over some consecutive axes."""
    ndim = len(shape)
    kind = draw(st.sampled_from(["basic", "advanced", "mask"]))
    if kind == "basic" or ndim == 0:
        return draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    if kind == "mask":
        start = draw(st.integers(0, ndim - 1))
        stop = draw(st.integers(start + 1, ndim))
        mask = draw(hnp.arrays(np.bool_, shape[start:stop]))
        return (slice(None),) * start + (mask,)
    # Advanced: one integer-array shape shared by every array in the key.
    arr_shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4))
    key: list[Any] = []
    for n in shape:
        options = ["slice", "none+slice"] + (["array", "array", "int"] if n > 0 else [])
        choice = draw(st.sampled_from(options))
        if choice == "array":
            key.append(draw(hnp.arrays(np.int64, arr_shape, elements=st.integers(-n, n - 1))))
        elif choice == "int":
            key.append(draw(st.integers(-n, n - 1)))
        elif choice == "none+slice":
            key += [None, draw(st.slices(n))]
        else:
            key.append(draw(st.slices(n)))
    if not any(isinstance(k, np.ndarray) for k in key):
        axis = next((i for i, n in enumerate(shape) if n > 0), None)
        if axis is None:
            return tuple(key)
        key = [slice(None)] * axis + [draw(int_index_arrays(shape[axis]))]
    return tuple(key)


@st.composite
def pad_widths(draw: Any, ndim: int) -> Any:
    """pad_width in each form numpy accepts: an int, (p,), (lo, hi),
    ((lo, hi),), one (lo, hi) per axis, or one (p,) per axis."""
    w = st.integers(0, 2)
    form = draw(st.sampled_from(["int", "single", "pair", "pair_in_tuple", "per_axis",
                                 "per_axis_single"]))
    if form == "int":
        return draw(w)
    if form == "single":
        return (draw(w),)
    if form == "pair":
        return (draw(w), draw(w))
    if form == "pair_in_tuple":
        return ((draw(w), draw(w)),)
    if form == "per_axis":
        return tuple((draw(w), draw(w)) for _ in range(ndim))
    return tuple((draw(w),) for _ in range(ndim))


def subsets(items: Sequence[int]) -> st.SearchStrategy[tuple[int, ...]]:
    """A tuple of distinct elements of `items`, in a random order."""
    return st.lists(st.sampled_from(list(items)), unique=True).map(tuple) if items else st.just(())


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Optional[Any]]:
    return st.one_of(st.none(), strategy)
