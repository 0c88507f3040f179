"""Byte operands of the fast matmul kernels: value ranges in one pass, C order from a transposed
view (16 × 16 byte tiles transposed in registers), lane padding.

Only C-contiguous int8 / uint8 arrays reach the compiled helpers (other dtypes and layouts go
through NumPy), so each compiles for those two dtypes only.
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core.extending import intrinsic

from . import llvm_ir as L


@numba.njit(cache=True)
def _value_range(x):
    """(min, max) of a 1-D integer array in one pass."""
    lo = hi = x[0]
    for v in x:
        lo = min(lo, v)
        hi = max(hi, v)
    return np.int64(lo), np.int64(hi)


def value_range(x):
    """(min, max) of an integer array: one vectorised pass over contiguous int8/uint8 codes,
    NumPy otherwise (so that only those two dtypes are compiled)."""
    if x.dtype.itemsize == 1 and x.flags.c_contiguous:
        return _value_range(x.reshape(-1))
    return int(x.min()), int(x.max())


def codes8(x):
    """x as a C-contiguous int8/uint8 array if it is one already (else None)."""
    return x if x.dtype.itemsize == 1 and x.flags.c_contiguous else None


def _transpose_tile_codegen(context, builder, sig, args):
    """dst[j·d0 + i] = src[i·s0 + j] for a 16 × 16 byte tile: four rounds of the perfect
    shuffle (interleave rows i and i + 8, bytes low and high), which transposes 16 rows of 16."""
    src, s0, dst, d0 = args
    b = builder
    v16 = L.vec(L.I8, 16)
    lo = ir.Constant(L.vec(L.I32, 16), [v for k in range(8) for v in (k, 16 + k)])
    hi = ir.Constant(L.vec(L.I32, 16), [v for k in range(8, 16) for v in (k, 16 + k)])
    rows = [L.load(b, src, b.mul(L.const(i), s0), v16) for i in range(16)]
    for _ in range(4):
        nxt = []
        for i in range(8):
            nxt += [b.shuffle_vector(rows[i], rows[i + 8], lo),
                    b.shuffle_vector(rows[i], rows[i + 8], hi)]
        rows = nxt
    for j in range(16):
        L.store(b, rows[j], dst, b.mul(L.const(j), d0))
    return context.get_dummy_value()


@intrinsic
def _transpose_tile(typingctx, src, s0, dst, d0):
    sig = L.int_signature(src, s0, dst, d0)
    return None if sig is None else (sig, _transpose_tile_codegen)


@numba.njit(cache=True)
def transpose8(src, dst):
    """dst[:, :R] = srcᵀ for byte matrices (uint8 views, C order; dst rows may be longer):
    16 × 16 tiles in registers, the edges element by element."""
    R, C = src.shape
    DR = dst.shape[1]
    sa, da = np.int64(src.ctypes.data), np.int64(dst.ctypes.data)
    R16, C16 = R - R % 16, C - C % 16
    for i0 in range(0, R16, 16):
        for j0 in range(0, C16, 16):
            _transpose_tile(sa + i0 * C + j0, C, da + j0 * DR + i0, DR)
    for i in range(R):
        for j in range(C16, C):
            dst[j, i] = src[i, j]
    for i in range(R16, R):
        for j in range(C16):
            dst[j, i] = src[i, j]


def c_order8(x):
    """x (int8 / uint8) in C order: as it is, or transposed from C-ordered xᵀ in 16 × 16
    tiles (a Fortran-ordered x, e.g. the transposed view of a weight matrix), else NumPy."""
    if x.flags.c_contiguous:
        return x
    if x.dtype.itemsize == 1 and x.T.flags.c_contiguous:
        out = np.empty(x.shape, x.dtype)
        transpose8(x.T.view(np.uint8), out.view(np.uint8))
        return out
    return np.ascontiguousarray(x)


@numba.njit(cache=True)
def pad_lanes(x, transpose, dst):
    """dst[k, n] = x[k, n] (or x[n, k] when `transpose`) modulo 2^(dst bits); x C-contiguous
    int8/uint8, the padding lanes stay zero."""
    T = dst.dtype.type
    if transpose:
        N, K = x.shape
        for n0 in range(0, N, 16):                 # blocks of 16 rows of x
            n1 = min(N, n0 + 16)
            for k in range(K):
                d = dst[k, n0:n1]
                for r in range(n1 - n0):
                    d[r] = T(x[n0 + r, k])
    else:
        K, N = x.shape
        for k in range(K):
            xk, d = x[k], dst[k, :N]
            for n in range(N):
                d[n] = T(xk[n])
