"""Tiled integer matmul kernels with finite accumulators (NUMERICS.md §4).

out[m, n] = TS( R(a[m, k] · b[k, n] for k in tile 0), R(… tile 1), … )
where R runs one tile through the accumulator register and TS adds the tile results, in
ascending tile order, in the tile-sum register. Within a tile k ascends.

Mode codes: EXACT (no limit), SATURATE (clamp to [lo, hi] after every multiply-accumulate),
CLAMP_TILE (exact tile sum, clamped once), WRAP (two's complement, 2^bits). Tile-sum
register codes: TS_NONE (int64, unbounded), TS_SATURATE, TS_WRAP.

Every output is computed independently, so parallelising over rows (prange) cannot change
any result. Loops run over range(arr.size) of slices so LLVM can vectorise them.
"""
import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core.extending import intrinsic

EXACT, SATURATE, CLAMP_TILE, WRAP = 0, 1, 2, 3
MODE_CODES = {"exact": EXACT, "saturate": SATURATE, "clamp_tile": CLAMP_TILE, "wrap": WRAP}
TS_NONE, TS_SATURATE, TS_WRAP = 0, 1, 2
HIST_BINS = 64     # bin j counts |partial| with bit length j (bin 0: partial == 0)


ROWS = 4           # rows of `a` per kernel block: each loaded b[k, n] serves 4 outputs


@intrinsic
def _ctlz64(typingctx, x):
    """Count of leading zero bits of a 64-bit integer (LLVM ctlz; 64 for zero)."""
    def codegen(context, builder, signature, args):
        return builder.ctlz(args[0], ir.Constant(ir.IntType(1), 0))
    return types.int64(types.int64), codegen


@numba.njit(cache=True, inline="always")
def bit_length(v):
    """Number of bits of |v| (0 for 0); the log2-histogram bin of v."""
    return 64 - _ctlz64(np.int64(abs(v)))


@numba.njit(cache=True, inline="always")
def wrap_to(s, bits):
    """s mod 2^bits as a signed two's-complement value."""
    half = np.int64(1) << (bits - 1)
    return ((s + half) & ((half << 1) - 1)) - half


@numba.njit(cache=True, inline="always")
def _sat(r, p, lo, hi):
    s = r + p
    return min(max(s, lo), hi), s


@numba.njit(cache=True, inline="always")
def _wrap(r, p, bits):
    s = np.int64(r + p)
    return wrap_to(s, bits), s


@numba.njit(cache=True)
def _tile_macs(r, e, x, xmax, a, m0, k0, k1, b, mode, lo, hi, bits, count):
    """Run k = k0..k1-1 of one tile for rows m0..m0+3 through the registers r (4, N).

    count: also count events per lane in e, keep the exact running sums in x and their
    largest magnitude so far in xmax.
    Each mode/count pair is its own loop over the N lanes so that it vectorises.
    """
    T = r.dtype.type
    r0, r1, r2, r3 = r[0], r[1], r[2], r[3]
    half = T(np.int64(1) << (bits - 1))
    mask = T((np.int64(1) << bits) - 1)
    for k in range(k0, k1):
        a0, a1, a2, a3 = T(a[m0, k]), T(a[m0 + 1, k]), T(a[m0 + 2, k]), T(a[m0 + 3, k])
        if a0 == 0 and a1 == 0 and a2 == 0 and a3 == 0:
            continue                       # adds nothing, cannot overflow
        brow = b[k]
        if count:
            for j in range(ROWS):
                aj = T(a[m0 + j, k])
                rj, ej, xj, xmj = r[j], e[j], x[j], xmax[j]
                for n in range(rj.size):
                    p = T(aj * brow[n])
                    xj[n] += p
                    xmj[n] = max(xmj[n], abs(xj[n]))
                    if mode == SATURATE:
                        c, s = _sat(rj[n], p, lo, hi)
                    elif mode == WRAP:
                        c, s = _wrap(rj[n], p, bits)
                    else:
                        c = s = rj[n] + p
                    ej[n] += c != s
                    rj[n] = T(c)
        elif mode == SATURATE:
            for n in range(r0.size):
                bv = brow[n]
                # sums fit T (the register dtype is chosen so): compare in narrow lanes
                r0[n] = min(max(T(r0[n] + T(a0 * bv)), lo), hi)
                r1[n] = min(max(T(r1[n] + T(a1 * bv)), lo), hi)
                r2[n] = min(max(T(r2[n] + T(a2 * bv)), lo), hi)
                r3[n] = min(max(T(r3[n] + T(a3 * bv)), lo), hi)
        elif mode == WRAP:      # T holds 2^bits + |a·b|: wrap in narrow lanes
            for n in range(r0.size):
                bv = brow[n]
                r0[n] = T(T(T(r0[n] + T(a0 * bv)) + half) & mask) - half
                r1[n] = T(T(T(r1[n] + T(a1 * bv)) + half) & mask) - half
                r2[n] = T(T(T(r2[n] + T(a2 * bv)) + half) & mask) - half
                r3[n] = T(T(T(r3[n] + T(a3 * bv)) + half) & mask) - half
        else:                              # EXACT and CLAMP_TILE: exact tile sum
            for n in range(r0.size):
                bv = brow[n]
                r0[n] = T(r0[n] + a0 * bv)
                r1[n] = T(r1[n] + a1 * bv)
                r2[n] = T(r2[n] + a2 * bv)
                r3[n] = T(r3[n] + a3 * bv)


@numba.njit(cache=True)
def _row_block(blk, a, b, tile, mode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits, count,
               out, events, tiles_hit, ts_events, stats):
    """Rows 4·blk … 4·blk+3 of tiled_matmul (see there); lo, hi of the register dtype."""
    M, K = a.shape
    N = b.shape[1]
    m0 = blk * ROWS
    r = np.zeros((ROWS, N), b.dtype)
    e = np.zeros((ROWS, N), np.int32)
    x = np.zeros((ROWS, N), np.int64)
    xmax = np.zeros((ROWS, N), np.int64)
    total = np.zeros((ROWS, N), np.int64)
    st = stats[blk]
    for k0 in range(0, K, tile):
        r[:] = 0
        if count:
            e[:] = 0
            x[:] = 0
        _tile_macs(r, e, x, xmax, a, m0, k0, min(K, k0 + tile), b, mode, lo, hi, bits, count)
        for j in range(ROWS):
            m = m0 + j
            for n in range(N):
                p = np.int64(r[j, n])
                ev = np.int32(0)
                if mode == CLAMP_TILE:
                    c = min(max(p, np.int64(lo)), np.int64(hi))
                    ev = np.int32(c != p)
                    p = c
                t = total[j, n] + p
                if ts_mode == TS_SATURATE:
                    c = min(max(t, ts_lo), ts_hi)
                elif ts_mode == TS_WRAP:
                    c = wrap_to(t, ts_bits)
                else:
                    c = t
                total[j, n] = c
                if count:
                    ts_events[m, n] += c != t
                    if mode == SATURATE or mode == WRAP:
                        ev = e[j, n]
                    events[m, n] += ev
                    tiles_hit[m, n] += ev > 0
                    st[0] = max(st[0], abs(x[j, n]))
                    st[2] = max(st[2], abs(c))
                    st[3 + bit_length(x[j, n])] += 1
    if count:
        st[1] = xmax.max()
    out[m0:m0 + ROWS, :] = total


@numba.njit(cache=True, parallel=True)
def _tiled_matmul_parallel(a, b, tile, mode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits,
                           count, out, events, tiles_hit, ts_events, stats):
    lo = b.dtype.type(lo)
    hi = b.dtype.type(hi)
    for blk in numba.prange(a.shape[0] // ROWS):
        _row_block(blk, a, b, tile, mode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits, count,
                   out, events, tiles_hit, ts_events, stats)


@numba.njit(cache=True)
def _tiled_matmul_serial(a, b, tile, mode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits,
                         count, out, events, tiles_hit, ts_events, stats):
    lo = b.dtype.type(lo)
    hi = b.dtype.type(hi)
    for blk in range(a.shape[0] // ROWS):
        _row_block(blk, a, b, tile, mode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits, count,
                   out, events, tiles_hit, ts_events, stats)


PARALLEL_MIN_MACS = 1 << 21   # smaller calls run on one thread: waking threads costs more


def tiled_matmul(a, b, tile, mode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits, count,
                 out, events, tiles_hit, ts_events, stats):
    """out = a · b through the tiled accumulator; rows in blocks of 4, blocks in parallel.

    a (M, K) with M a multiple of 4 and b (K, N): integer arrays of the register dtype
    (wide enough for |register| + |a·b| and, in EXACT/CLAMP_TILE, for any exact tile sum).
    count=True also fills, per output: events (MACs that saturated or wrapped; tiles that
    were clamped in CLAMP_TILE), tiles_hit (tiles with ≥ 1 event), ts_events (tile-sum
    register overflows); and per row block, stats[blk] = [max |exact tile partial|,
    max |exact prefix sum within a tile|, max |tile-sum value|, log2 histogram of exact
    tile partials (HIST_BINS entries)].
    """
    kernel = (_tiled_matmul_parallel if a.shape[0] * a.shape[1] * b.shape[1] >= PARALLEL_MIN_MACS
              else _tiled_matmul_serial)
    kernel(a, b, tile, mode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits, count,
           out, events, tiles_hit, ts_events, stats)


# --- slow reference: plain Python ints -------------------------------------------------------

def int_matmul_reference(a, b, mode, bits, tile, symmetric=True, tile_sum_bits=None):
    """Oracle: (out, events, tiles_hit, ts_events) as nested lists of Python ints.

    a: (M, K), b: (K, N) integer NumPy arrays. Follows the module docstring literally.
    """
    half = 1 << (bits - 1)
    lo, hi = (-(half - 1) if symmetric else -half), half - 1

    def wrap(s, w):
        h = 1 << (w - 1)
        return ((s + h) % (2 * h)) - h

    (M, K), N = a.shape, b.shape[1]
    a, b = a.tolist(), b.tolist()
    tile = tile or max(K, 1)
    out = [[0] * N for _ in range(M)]
    events = [[0] * N for _ in range(M)]
    hits = [[0] * N for _ in range(M)]
    ts_ev = [[0] * N for _ in range(M)]
    for m in range(M):
        for n in range(N):
            total = 0
            for k0 in range(0, K, tile):
                reg, ev = 0, 0
                for k in range(k0, min(K, k0 + tile)):
                    s = reg + int(a[m][k]) * int(b[k][n])
                    if mode == "saturate":
                        c = min(max(s, lo), hi)
                    elif mode == "wrap":
                        c = wrap(s, bits)
                    else:
                        c = s
                    ev += c != s
                    reg = c
                if mode == "clamp_tile":
                    c = min(max(reg, lo), hi)
                    ev += c != reg
                    reg = c
                events[m][n] += ev
                hits[m][n] += ev > 0
                s = total + reg
                if tile_sum_bits is None:
                    c = s
                elif mode == "wrap":
                    c = wrap(s, tile_sum_bits)
                else:
                    th = 1 << (tile_sum_bits - 1)
                    c = min(max(s, -(th - 1) if symmetric else -th), th - 1)
                ts_ev[m][n] += c != s
                total = c
            out[m][n] = total
    return out, events, hits, ts_ev
