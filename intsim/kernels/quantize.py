"""Quantization kernels: float32 → integer codes, one pass, parallel over elements.

Every element is independent, so results never depend on thread count. Rounding modes
(integer codes, ROUND_*), applied to the float32 value v = clamp(x, -m, m) / scale:
    NEAREST     round half to even            (np.rint)
    HALF_AWAY   floor(|v| + 1/2) · sign(v)    (exact, in float64)
    HALF_UP     floor(v + 1/2)                (exact, in float64)
    FLOOR       floor(v)
    STOCHASTIC  (floor(v · 2^r) + R_i) >> r   R_i = element_bits(draw_key, offset+i) >> (64-r)
                (two's-complement arithmetic shift, i.e. floor division by 2^r)
followed by the clamp to [qmin, qmax].
"""
import math

import numba
import numpy as np

from intsim.kernels.hashing import element_bits, element_bits_reference

NEAREST, HALF_AWAY, HALF_UP, FLOOR, STOCHASTIC = 0, 1, 2, 3, 4


@numba.njit(cache=True, inline="always")
def _scaled(x, m, scale, vlo, vhi):
    """v = clamp(x, -m, m) / scale in float32, then limited to [vlo, vhi] = [qmin-1, qmax+1].

    The second limit changes no code (every v beyond it rounds to a value the final code
    clamp maps to the same end) but keeps the integer conversions below in range.
    """
    v = numba.float32(min(max(x, -m), m) / scale)
    return min(max(v, vlo), vhi)


@numba.njit(cache=True)
def _quantize_range(x, out, m, scale, mode, qmin, qmax, sr_bits, draw_key, offset):
    """Quantize a contiguous piece; element i draws random bits as element offset + i.

    One loop per rounding mode, each over range(x.size) so that LLVM vectorises it.
    """
    vlo = numba.float32(qmin - 1)
    vhi = numba.float32(qmax + 1)
    qlo = numba.int32(qmin)
    qhi = numba.int32(qmax)
    if mode == NEAREST:
        for i in range(x.size):
            q = numba.int32(np.rint(_scaled(x[i], m, scale, vlo, vhi)))
            out[i] = min(max(q, qlo), qhi)
    elif mode == FLOOR:
        for i in range(x.size):
            q = numba.int32(math.floor(_scaled(x[i], m, scale, vlo, vhi)))
            out[i] = min(max(q, qlo), qhi)
    elif mode == HALF_UP:
        for i in range(x.size):
            v = np.float64(_scaled(x[i], m, scale, vlo, vhi))
            q = numba.int32(math.floor(v + 0.5))
            out[i] = min(max(q, qlo), qhi)
    elif mode == HALF_AWAY:
        for i in range(x.size):
            v = np.float64(_scaled(x[i], m, scale, vlo, vhi))
            r = numba.int32(math.floor(abs(v) + 0.5))
            q = -r if v < 0 else r
            out[i] = min(max(q, qlo), qhi)
    else:  # STOCHASTIC; v·2^r is exact in float64 (power-of-two scaling of a float32)
        two_r = np.float64(np.int64(1) << sr_bits)
        shift = numba.uint64(64 - sr_bits)
        for i in range(x.size):
            v = np.float64(_scaled(x[i], m, scale, vlo, vhi))
            t = np.int64(math.floor(v * two_r))
            rbits = np.int64(element_bits(draw_key, offset + i) >> shift)
            q = numba.int32((t + rbits) >> sr_bits)
            out[i] = min(max(q, qlo), qhi)


CHUNK = 8192


PARALLEL_MIN = 1 << 17     # smaller tensors run on one thread: waking threads costs more


def quantize_kernel(x, out, m, scale, mode, qmin, qmax, sr_bits, draw_key, offset):
    """out[i] = clamp(round(clamp(x[i], ±m) / scale), qmin, qmax); elements independent."""
    if x.size < PARALLEL_MIN:
        _quantize_range(x, out, m, scale, mode, qmin, qmax, sr_bits, draw_key, offset)
    else:
        _quantize_parallel(x, out, m, scale, mode, qmin, qmax, sr_bits, draw_key, offset)


@numba.njit(cache=True, parallel=True)
def _quantize_parallel(x, out, m, scale, mode, qmin, qmax, sr_bits, draw_key, offset):
    n = x.size
    for c in numba.prange((n + CHUNK - 1) // CHUNK):
        lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
        _quantize_range(x[lo:hi], out[lo:hi], m, scale, mode, qmin, qmax, sr_bits, draw_key,
                        offset + lo)


ABS_MASK = np.int32(0x7FFFFFFF)
INF_BITS = 0x7F800000


@numba.njit(cache=True)
def _absmax_bits_and_negatives_serial(x, bits):
    a = np.int32(0)
    k = 0
    for i in range(x.size):
        a = max(a, bits[i] & ABS_MASK)
        k += x[i] < 0
    return a, k


@numba.njit(cache=True, parallel=True)
def _absmax_bits_and_negatives(x, bits):
    """max over i of (float32 bit pattern of |x[i]|) and the count of x[i] < 0.

    For non-negative float32 values the bit patterns order like the values, and every NaN
    or ±Inf has |bits| >= 0x7F800000 — so one integer max finds max|x| and finiteness.
    """
    n = x.size
    nc = (n + CHUNK - 1) // CHUNK
    amax = np.zeros(nc, np.int32)
    neg = np.zeros(nc, np.int64)
    for c in numba.prange(nc):
        a = np.int32(0)
        k = 0
        lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
        xs, bs = x[lo:hi], bits[lo:hi]
        for i in range(xs.size):
            a = max(a, bs[i] & ABS_MASK)
            k += xs[i] < 0
        amax[c] = a
        neg[c] = k
    return amax.max(), neg.sum()


def absmax_min(x: np.ndarray):
    """(max |x| as float32, whether any x < 0, all finite) for a flat float32 array."""
    if x.size == 0:
        return np.float32(0.0), False, True
    kernel = (_absmax_bits_and_negatives_serial if x.size < PARALLEL_MIN
              else _absmax_bits_and_negatives)
    a, neg = kernel(x, x.view(np.int32))
    return np.int32(a).view(np.float32), bool(neg > 0), bool(a < INF_BITS)


@numba.njit(cache=True)
def _log2_range(x, out, alpha, top, sr_bits, draw_key, offset):
    """Radix-2 logarithmic stochastic quantization of a contiguous piece (NUMERICS.md §2.4).

    u = fl32(|x| / alpha). u < 1: magnitude 1 with probability u (stochastic underflow),
    else 0. u ≥ 1: with 2^e ≤ u < 2^(e+1), magnitude 2^e, or 2^(e+1) with probability
    u/2^e - 1. Probabilities p are realised as (floor(p·2^r) + R_i) >> r. Magnitude capped
    at `top`; the sign of x is restored.
    """
    two_r = np.float64(np.int64(1) << sr_bits)
    shift = numba.uint64(64 - sr_bits)
    for i in range(x.size):
        u = numba.float32(abs(x[i]) / alpha)
        rbits = np.int64(element_bits(draw_key, offset + i) >> shift)
        if u < 1:
            base = np.int64(0)
            p = np.float64(u)
        else:
            e = np.int64(math.floor(math.log2(u)))
            # guard log2 rounding: ensure 2^e <= u < 2^(e+1) exactly
            if np.float64(np.int64(1) << e) > u:
                e -= 1
            elif np.float64(np.int64(1) << (e + 1)) <= u:
                e += 1
            base = np.int64(1) << e
            p = np.float64(u) / np.float64(base) - 1.0
        up = (np.int64(math.floor(p * two_r)) + rbits) >> sr_bits
        mag = min(base + up * max(base, np.int64(1)), top)
        out[i] = -mag if x[i] < 0 else mag


def quantize_log2_kernel(x, out, alpha, top, sr_bits, draw_key, offset):
    if x.size < PARALLEL_MIN:
        _log2_range(x, out, alpha, top, sr_bits, draw_key, offset)
    else:
        _log2_parallel(x, out, alpha, top, sr_bits, draw_key, offset)


@numba.njit(cache=True, parallel=True)
def _log2_parallel(x, out, alpha, top, sr_bits, draw_key, offset):
    n = x.size
    for c in numba.prange((n + CHUNK - 1) // CHUNK):
        lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
        _log2_range(x[lo:hi], out[lo:hi], alpha, top, sr_bits, draw_key, offset + lo)


@numba.njit(cache=True)
def sum_and_squares(x):
    """(Σ|x|, Σx²) in float64, summed sequentially in index order (SAWB statistics)."""
    s1 = 0.0
    s2 = 0.0
    for i in range(x.size):
        v = np.float64(x[i])
        s1 += abs(v)
        s2 += v * v
    return s1, s2


# --- slow reference: plain Python, exact rational arithmetic where it matters ------------

def quantize_reference(x, m, scale, rounding, qmin, qmax, sr_bits=16, draw_key=0, offset=0):
    """Oracle for the kernels: list of Python ints. x, m, scale are float32 values."""
    from fractions import Fraction

    out = []
    for i, xv in enumerate(np.asarray(x, dtype=np.float32).ravel()):
        xv = min(max(xv, -m), m)
        with np.errstate(over="ignore"):
            vf = float(np.float32(np.float32(xv) / np.float32(scale)))
        if math.isinf(vf):                     # beyond float32: lands on a code bound
            out.append(qmax if vf > 0 else qmin)
            continue
        v = Fraction(vf)
        if rounding == "nearest":
            q = round(v)                       # Python's round is half-to-even
        elif rounding == "floor":
            q = math.floor(v)
        elif rounding == "half_up":
            q = math.floor(v + Fraction(1, 2))
        elif rounding == "half_away":
            q = math.floor(abs(v) + Fraction(1, 2)) * (-1 if v < 0 else 1)
        elif rounding == "stochastic":
            r = element_bits_reference(draw_key, offset + i) >> (64 - sr_bits)
            q = (math.floor(v * 2 ** sr_bits) + r) // 2 ** sr_bits
        else:
            raise ValueError(rounding)
        out.append(min(max(q, qmin), qmax))
    return out


def quantize_log2_reference(x, alpha, top, sr_bits, draw_key=0, offset=0):
    """Oracle for quantize_log2_kernel: list of Python ints (exact rational arithmetic)."""
    from fractions import Fraction

    out = []
    for i, xv in enumerate(np.asarray(x, dtype=np.float32).ravel()):
        u = Fraction(float(np.float32(abs(np.float32(xv)) / np.float32(alpha))))
        r = element_bits_reference(draw_key, offset + i) >> (64 - sr_bits)
        if u < 1:
            base, p = 0, u
        else:
            e = 0
            while 2 ** (e + 1) <= u:
                e += 1
            base, p = 2 ** e, u / 2 ** e - 1
        up = (math.floor(p * 2 ** sr_bits) + r) // 2 ** sr_bits
        mag = min(base + up * max(base, 1), top)
        out.append(-mag if xv < 0 else mag)
    return out
