"""Fast Walsh–Hadamard transform (FWHT): unnormalized, natural (Sylvester) order, blockwise.

H_1 = [1],  H_2k = [[H_k, H_k], [H_k, -H_k]],  i.e.  H_p[i, j] = (-1)^popcount(i & j),
H_p · H_p = p · I.  A transform with block p applies H_p to every run of p consecutive
elements along the axis (a block-diagonal matrix diag(H_p, ..., H_p)); no 1/p or 1/sqrt(p).

Block rules (`block=`):
  None    p = largest power of two dividing n (HDQT's rule; odd n -> p = 1 -> identity).
  "pad"   zero-pad the axis to m = next power of two >= n, one block p = m.
  int     an explicit power of two dividing n.
Dtypes: integers are transformed exactly into the smallest signed integer dtype holding
b + log2(p) bits (b = bits of the input type, unsigned types count one extra sign bit);
float32/float64 keep their dtype, with the operation order fixed in
intsim.kernels.fwht (stages h = 1, 2, 4, ...; (a, b) -> (a + b, a - b)), so float results are
bit-reproducible for any thread count. See NUMERICS.md, section "Hadamard transform".
"""
from __future__ import annotations

import math
import operator
from typing import Optional, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from intsim.core.modes import HadamardRule
from intsim.kernels.fwht import (
    fwht_flat_par,
    fwht_flat_ser,
    fwht_mid_par,
    fwht_mid_ser,
    fwht_pad_par,
    fwht_pad_ser,
    fwht_reference,
)

__all__ = [
    "fwht",
    "hadamard_transform",
    "rule_block_size",
    "rule_output_length",
    "padded_length",
    "block_size",
    "largest_pow2_block",
    "next_pow2",
    "hadamard_matrix",
    "result_dtype",
    "fwht_reference",
]

BlockArg = Union[None, str, int]

# Work (output elements x (log2 p + 1)) from which the prange kernels are used; either path
# gives identical bits, so this is only a speed knob. On an idle 2-core machine prange wins
# from ~1e5 (e.g. 128 x 512 int32: 33 us serial, 19 us parallel). But when another process
# keeps one core busy, every prange call waits for its worker thread for about a scheduler
# time slice (measured 6-7 ms for 128 x 512 and 128 x 4096, against 29 us / 350 us serial).
# So the default is robust: parallel only for jobs whose serial time is several ms, where
# that stall is bounded by the gain. Set to ~1 << 17 on a dedicated machine.
_PARALLEL_MIN_WORK = 1 << 24

# Input bits of each accepted integer dtype (unsigned types need one more bit as signed).
_INT_BITS = {
    np.dtype(np.int8): 8, np.dtype(np.int16): 16, np.dtype(np.int32): 32,
    np.dtype(np.int64): 64, np.dtype(np.uint8): 9, np.dtype(np.uint16): 17,
    np.dtype(np.uint32): 33, np.dtype(np.uint64): 65,
}
_SIGNED = (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.int32), np.dtype(np.int64))
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_EXPECTED = "an integer dtype (int8..int64, uint8..uint32) or float32/float64"

# (input dtype, p) -> output dtype; filled lazily so repeated calls skip the arithmetic.
_dtype_cache: dict = {}


def largest_pow2_block(n: int) -> int:
    """Largest power of two dividing n (n >= 1): n & -n. Odd n -> 1."""
    n = _as_int(n, "n")
    if n < 1:
        raise ValueError(f"largest_pow2_block: `n` must be >= 1; got {n}")
    return n & -n


def next_pow2(n: int) -> int:
    """Smallest power of two >= n (n >= 1): 1 -> 1, 5 -> 8, 8 -> 8."""
    n = _as_int(n, "n")
    if n < 1:
        raise ValueError(f"next_pow2: `n` must be >= 1; got {n}")
    return 1 << (n - 1).bit_length()


def block_size(n: int, block: BlockArg = None) -> int:
    """Resolve the block rule for axis length n to the block p (a power of two).

    None -> largest_pow2_block(n); "pad" -> next_pow2(n) (the padded length, one block);
    int -> `block` itself after checking it is a power of two dividing n.
    n = 0 (empty axis): None and "pad" give p = 1 (nothing to transform or pad).
    """
    n = _as_int(n, "n")
    if n < 0:
        raise ValueError(f"block_size: `n` must be >= 0; got {n}")
    if block is None:
        return n & -n if n else 1
    if isinstance(block, str):
        if block == "pad":
            return 1 << (n - 1).bit_length() if n else 1
        raise ValueError(f"fwht: `block` must be None, 'pad' or a power-of-two int; got {block!r}")
    if isinstance(block, (bool, np.bool_)):
        raise ValueError(f"fwht: `block` must be None, 'pad' or a power-of-two int; got {block!r}")
    try:
        p = operator.index(block)
    except TypeError:
        raise ValueError(
            f"fwht: `block` must be None, 'pad' or a power-of-two int; got {block!r}") from None
    if p < 1 or p & (p - 1):
        raise ValueError(f"fwht: `block` must be a power of two >= 1; got {p}")
    if n % p:
        raise ValueError(
            f"fwht: `block`={p} must divide the axis length n={n} (expected a power of two "
            f"dividing n, e.g. {n & -n if n else 1}, or block='pad')")
    return p


def rule_block(rule: Optional[HadamardRule]) -> BlockArg:
    """fwht's `block` for a Numerics.hadamard rule: largest_pow2 → None, pad → "pad"."""
    return "pad" if rule == HadamardRule.PAD else None


def rule_block_size(n: int, rule: Optional[HadamardRule]) -> int:
    """The block p a Numerics.hadamard rule transforms an axis of length n with (1: no
    transform; also for off_divide, which transforms nothing)."""
    if rule is None or rule == HadamardRule.OFF_DIVIDE:
        return 1
    return block_size(n, rule_block(rule))


def padded_length(n: int, block: BlockArg, p: int) -> int:
    """Length of the transformed axis of length n with block p resolved from `block`: the
    padded length p under "pad" (n >= 1), else n (the transform keeps the length)."""
    return p if (n and isinstance(block, str)) else n


def rule_output_length(n: int, rule: Optional[HadamardRule]) -> int:
    """Length of an axis of length n after the transform of a Numerics.hadamard rule (the
    zero-padded length under "pad"; n otherwise, also for no transform)."""
    if rule is None:
        return n
    block = rule_block(rule)
    return padded_length(n, block, block_size(n, block))


def hadamard_transform(x: np.ndarray, axis: int, rule: Optional[HadamardRule]
                       ) -> tuple[np.ndarray, int]:
    """(H·x along axis, the divisor p of the rescale) under a Numerics.hadamard rule.

    None: x itself, p = 1. off_divide: x itself, but p = the largest_pow2 block of the axis —
    the published HadOff switch, which skips the transform and still divides by its size."""
    if rule is None:
        return x, 1
    if rule == HadamardRule.OFF_DIVIDE:
        return x, block_size(x.shape[axis], None)
    block = rule_block(rule)
    return fwht(x, axis=axis, block=block), block_size(x.shape[axis], block)


def result_dtype(dtype: DTypeLike, p: int) -> np.dtype:
    """Output dtype of fwht for input `dtype` and block p.

    Integers: smallest of int8/16/32/64 with >= b + log2(p) bits, b = itemsize*8 for signed
    and itemsize*8 + 1 for unsigned input (ValueError if more than 64 bits are needed).
    float32/float64: unchanged. Anything else: ValueError naming `x`.
    """
    p = _as_int(p, "p")
    if p < 1 or p & (p - 1):
        raise ValueError(f"result_dtype: `p` must be a power of two >= 1; got {p}")
    dt = np.dtype(dtype)
    if not dt.isnative:
        dt = dt.newbyteorder("=")
    key = (dt, p)
    try:
        return _dtype_cache[key]
    except KeyError:
        pass
    if dt in _FLOATS:
        out = dt
    elif dt in _INT_BITS:
        bits = _INT_BITS[dt] + (p.bit_length() - 1)
        if bits > 64:
            raise ValueError(
                f"fwht: `x` of dtype {dt} with block p={p} needs {bits} bits "
                f"({_INT_BITS[dt]} + log2(p) = {p.bit_length() - 1}), more than int64 holds; "
                f"cast `x` to a narrower dtype or use a smaller `block`")
        out = next(s for s in _SIGNED if s.itemsize * 8 >= bits)
    else:
        raise ValueError(f"fwht: `x` must have {_EXPECTED}; got dtype {dt}")
    _dtype_cache[key] = out
    return out


def hadamard_matrix(n: int, dtype: DTypeLike = np.int64) -> np.ndarray:
    """Explicit Sylvester matrix H_n (n a power of two), natural order, entries +-1.

    Built by the recursion H_1 = [1], H_2k = [[H_k, H_k], [H_k, -H_k]]; O(n^2) memory — for
    tests and dense baselines only.
    """
    n = _as_int(n, "n")
    if n < 1 or n & (n - 1):
        raise ValueError(f"hadamard_matrix: `n` must be a power of two >= 1; got {n}")
    h = np.ones((1, 1), dtype=np.int64)
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h.astype(dtype, copy=False)


def fwht(x: ArrayLike, axis: int = -1, block: BlockArg = None) -> np.ndarray:
    """Unnormalized block Walsh–Hadamard transform of `x` along `axis` (batched elsewhere).

    y = diag(H_p, ..., H_p) · x along `axis`, H_p the natural-order Sylvester matrix,
    p resolved by block_size(n, block) (None: largest power of two dividing n; "pad": pad
    with zeros to m = next_pow2(n), output length m; int: explicit power of two dividing n).
    Applying it twice gives p · x. Integer input is exact (dtype from result_dtype),
    float32/float64 keep their dtype with the documented butterfly order. Returns a new
    C-contiguous array, axis in its original position; `x` is not modified.
    Empty axis (n = 0): p = 1, empty output of length 0 along `axis`.
    """
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    ndim = x.ndim
    if ndim == 0:
        raise ValueError("fwht: `x` must have at least 1 dimension; got a 0-d array")
    if type(axis) is not int or not -ndim <= axis < ndim:
        axis = _norm_axis(axis, ndim)
    ax = axis % ndim
    shape = x.shape
    n = shape[ax]
    p = block_size(n, block) if block is not None else (n & -n if n else 1)
    m = padded_length(n, block, p)
    dt = x.dtype
    odt = _dtype_cache.get((dt, p))
    if odt is None:
        if not dt.isnative:
            x = x.astype(dt.newbyteorder("="))
            dt = x.dtype
        odt = result_dtype(dt, p)
    out = np.empty(shape[:ax] + (m,) + shape[ax + 1:], dtype=odt)
    if out.size == 0:
        return out
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    xf = x.reshape(-1)
    of = out.reshape(-1)
    parallel = of.size * p.bit_length() >= _PARALLEL_MIN_WORK
    post = math.prod(shape[ax + 1:]) if ax != ndim - 1 else 1
    if post != 1:
        (fwht_mid_par if parallel else fwht_mid_ser)(xf, of, n, m, post, p)
    elif m == n:
        (fwht_flat_par if parallel else fwht_flat_ser)(xf, of, p)
    else:
        (fwht_pad_par if parallel else fwht_pad_ser)(xf, of, n, m)
    return out


def _as_int(v, name: str) -> int:
    if isinstance(v, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be an int; got {v!r}")
    try:
        return operator.index(v)
    except TypeError:
        raise ValueError(f"`{name}` must be an int; got {v!r}") from None


def _norm_axis(axis, ndim: int) -> int:
    a = _as_int(axis, "axis")
    if not -ndim <= a < ndim:
        raise np.exceptions.AxisError(a, ndim, "fwht: `axis`")
    return a
