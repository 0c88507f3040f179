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
                if aj == 0:
                    continue
                rj, ej, xj, xmj = r[j], e[j], x[j], xmax[j]
                if mode == SATURATE:
                    for n in range(rj.size):
                        p = T(aj * brow[n])
                        xv = xj.dtype.type(xj[n] + p)
                        xj[n] = xv
                        xmj[n] = max(xmj[n], abs(xv))
                        s = T(rj[n] + p)
                        c = min(max(s, lo), hi)
                        ej[n] += c != s
                        rj[n] = c
                elif mode == WRAP:
                    for n in range(rj.size):
                        p = T(aj * brow[n])
                        xv = xj.dtype.type(xj[n] + p)
                        xj[n] = xv
                        xmj[n] = max(xmj[n], abs(xv))
                        s = T(rj[n] + p)
                        c = T(T(s + half) & mask) - half
                        ej[n] += c != s
                        rj[n] = c
                else:
                    for n in range(rj.size):
                        p = T(aj * brow[n])
                        xv = xj.dtype.type(xj[n] + p)
                        xj[n] = xv
                        xmj[n] = max(xmj[n], abs(xv))
                        rj[n] = T(rj[n] + p)
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
               out, events, tiles_hit, ts_events, stats, exact_proto):
    """Rows 4·blk … 4·blk+3 of tiled_matmul (see there); lo, hi of the register dtype."""
    M, K = a.shape
    N = b.shape[1]
    m0 = blk * ROWS
    r = np.zeros((ROWS, N), b.dtype)
    e = np.zeros((ROWS, N), np.int32)
    x = np.zeros((ROWS, N), exact_proto.dtype)      # exact running sums (traced calls)
    xmax = np.zeros((ROWS, N), exact_proto.dtype)
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
            rj, tj = r[j], total[j]
            for n in range(N):                     # end of tile: C, then the tile-sum register
                p = np.int64(rj[n])
                if mode == CLAMP_TILE:
                    cp = min(max(p, np.int64(lo)), np.int64(hi))
                    if count:
                        e[j, n] = cp != p
                    p = cp
                t = tj[n] + p
                if ts_mode == TS_SATURATE:
                    c = min(max(t, ts_lo), ts_hi)
                elif ts_mode == TS_WRAP:
                    c = wrap_to(t, ts_bits)
                else:
                    c = t
                if count:
                    ts_events[m, n] += c != t
                tj[n] = c
            if count:                              # statistics of this tile (traced calls)
                ev_row, hit_row = events[m], tiles_hit[m]
                ej, xj = e[j], x[j]
                pmax, tmax = st[0], st[2]
                xj = x[j]
                for n in range(N):
                    ev_row[n] += ej[n]
                    hit_row[n] += ej[n] > 0
                    pmax = max(pmax, np.int64(abs(xj[n])))
                    tmax = max(tmax, abs(tj[n]))
                    st[3 + bit_length(xj[n])] += 1
                st[0], st[2] = pmax, tmax
    if count:
        st[1] = np.int64(xmax.max())
    out[m0:m0 + ROWS, :] = total


@numba.njit(cache=True, parallel=True)
def _tiled_matmul_parallel(a, b, tile, mode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits,
                           count, out, events, tiles_hit, ts_events, stats, exact_proto):
    lo = b.dtype.type(lo)
    hi = b.dtype.type(hi)
    for blk in numba.prange(a.shape[0] // ROWS):
        _row_block(blk, a, b, tile, mode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits, count,
                   out, events, tiles_hit, ts_events, stats, exact_proto)


@numba.njit(cache=True)
def _tiled_matmul_serial(a, b, tile, mode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits,
                         count, out, events, tiles_hit, ts_events, stats, exact_proto):
    lo = b.dtype.type(lo)
    hi = b.dtype.type(hi)
    for blk in range(a.shape[0] // ROWS):
        _row_block(blk, a, b, tile, mode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits, count,
                   out, events, tiles_hit, ts_events, stats, exact_proto)


PARALLEL_MIN_MACS = 1 << 21   # smaller calls run on one thread: waking threads costs more


def tiled_matmul(a, b, tile, mode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits, count,
                 out, events, tiles_hit, ts_events, stats, exact_proto):
    """out = a · b through the tiled accumulator; rows in blocks of 4, blocks in parallel.

    a (M, K) with M a multiple of 4 and b (K, N): integer arrays of the register dtype
    (wide enough for |register| + |a·b| and, in EXACT/CLAMP_TILE, for any exact tile sum).
    count=True also fills, per output: events (MACs that saturated or wrapped; tiles that
    were clamped in CLAMP_TILE), tiles_hit (tiles with ≥ 1 event), ts_events (tile-sum
    register overflows); and per row block, stats[blk] = [max |exact tile partial|,
    max |exact prefix sum within a tile|, max |tile-sum value|, log2 histogram of exact
    tile partials (HIST_BINS entries)]. exact_proto: an empty array whose integer dtype holds
    every exact running sum inside a tile (int32 when tile·max|a·b| < 2^31).
    """
    kernel = (_tiled_matmul_parallel if a.shape[0] * a.shape[1] * b.shape[1] >= PARALLEL_MIN_MACS
              else _tiled_matmul_serial)
    kernel(a, b, tile, mode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits, count,
           out, events, tiles_hit, ts_events, stats, exact_proto)


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
