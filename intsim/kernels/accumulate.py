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
TS_NONE, TS_SATURATE, TS_WRAP = 0, 1, 2
C_NONE, C_CLAMP, C_WRAP = 0, 1, 2     # tile-end function C of the fast kernels' registers
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
def _tile_macs(r, e, a, m0, k0, k1, b, mode, lo, hi, bits, count):
    """Run k = k0..k1-1 of one tile for rows m0..m0+3 through the registers r (4, N).

    count: also count, per lane, the MACs whose sum was saturated or wrapped (in e).
    Each mode/count pair is its own loop over the N lanes, four rows sharing each loaded
    b[k, n], all in the register dtype T (every sum fits it), so that LLVM vectorises it.
    """
    T = r.dtype.type
    r0, r1, r2, r3 = r[0], r[1], r[2], r[3]
    e0, e1, e2, e3 = e[0], e[1], e[2], e[3]
    half = T(np.int64(1) << (bits - 1))
    mask = T((np.int64(1) << bits) - 1)
    k = k0
    while k < k1:
        if k + 1 < k1 and not count and (mode == SATURATE or mode == EXACT
                                         or mode == CLAMP_TILE):
            # two k-steps per pass over the lanes: each register is loaded and stored once
            # per pair (the same sequence of operations per output, so the same bits)
            a0, a1, a2, a3 = T(a[m0, k]), T(a[m0 + 1, k]), T(a[m0 + 2, k]), T(a[m0 + 3, k])
            c0, c1 = T(a[m0, k + 1]), T(a[m0 + 1, k + 1])
            c2, c3 = T(a[m0 + 2, k + 1]), T(a[m0 + 3, k + 1])
            br, bs = b[k], b[k + 1]
            if mode == SATURATE:
                for n in range(r0.size):
                    bv, bw = br[n], bs[n]
                    r0[n] = min(max(T(min(max(T(r0[n] + T(a0 * bv)), lo), hi) + T(c0 * bw)), lo), hi)
                    r1[n] = min(max(T(min(max(T(r1[n] + T(a1 * bv)), lo), hi) + T(c1 * bw)), lo), hi)
                    r2[n] = min(max(T(min(max(T(r2[n] + T(a2 * bv)), lo), hi) + T(c2 * bw)), lo), hi)
                    r3[n] = min(max(T(min(max(T(r3[n] + T(a3 * bv)), lo), hi) + T(c3 * bw)), lo), hi)
            else:
                for n in range(r0.size):
                    bv, bw = br[n], bs[n]
                    r0[n] = T(r0[n] + T(a0 * bv) + T(c0 * bw))
                    r1[n] = T(r1[n] + T(a1 * bv) + T(c1 * bw))
                    r2[n] = T(r2[n] + T(a2 * bv) + T(c2 * bw))
                    r3[n] = T(r3[n] + T(a3 * bv) + T(c3 * bw))
            k += 2
            continue
        a0, a1, a2, a3 = T(a[m0, k]), T(a[m0 + 1, k]), T(a[m0 + 2, k]), T(a[m0 + 3, k])
        brow = b[k]
        k += 1
        if a0 == 0 and a1 == 0 and a2 == 0 and a3 == 0:
            continue                       # adds nothing, cannot overflow
        if mode == SATURATE and count:
            for n in range(r0.size):
                bv = brow[n]
                s = T(r0[n] + T(a0 * bv))
                c = min(max(s, lo), hi)
                e0[n] += e0.dtype.type(c != s)
                r0[n] = c
                s = T(r1[n] + T(a1 * bv))
                c = min(max(s, lo), hi)
                e1[n] += e1.dtype.type(c != s)
                r1[n] = c
                s = T(r2[n] + T(a2 * bv))
                c = min(max(s, lo), hi)
                e2[n] += e2.dtype.type(c != s)
                r2[n] = c
                s = T(r3[n] + T(a3 * bv))
                c = min(max(s, lo), hi)
                e3[n] += e3.dtype.type(c != s)
                r3[n] = c
        elif mode == SATURATE:
            for n in range(r0.size):
                bv = brow[n]
                r0[n] = min(max(T(r0[n] + T(a0 * bv)), lo), hi)
                r1[n] = min(max(T(r1[n] + T(a1 * bv)), lo), hi)
                r2[n] = min(max(T(r2[n] + T(a2 * bv)), lo), hi)
                r3[n] = min(max(T(r3[n] + T(a3 * bv)), lo), hi)
        elif mode == WRAP and count:
            for n in range(r0.size):
                bv = brow[n]
                s = T(r0[n] + T(a0 * bv))
                c = T(T(s + half) & mask) - half
                e0[n] += e0.dtype.type(c != s)
                r0[n] = c
                s = T(r1[n] + T(a1 * bv))
                c = T(T(s + half) & mask) - half
                e1[n] += e1.dtype.type(c != s)
                r1[n] = c
                s = T(r2[n] + T(a2 * bv))
                c = T(T(s + half) & mask) - half
                e2[n] += e2.dtype.type(c != s)
                r2[n] = c
                s = T(r3[n] + T(a3 * bv))
                c = T(T(s + half) & mask) - half
                e3[n] += e3.dtype.type(c != s)
                r3[n] = c
        elif mode == WRAP:
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
def _tile_exact(x, xmax, a, m0, k0, k1, b):
    """Exact running sums x (4, N) of one tile for rows m0..m0+3 and their largest
    magnitude so far in xmax; in x's dtype, which holds every exact sum (traced calls)."""
    X = x.dtype.type
    x0, x1, x2, x3 = x[0], x[1], x[2], x[3]
    q0, q1, q2, q3 = xmax[0], xmax[1], xmax[2], xmax[3]
    for k in range(k0, k1):
        a0, a1, a2, a3 = X(a[m0, k]), X(a[m0 + 1, k]), X(a[m0 + 2, k]), X(a[m0 + 3, k])
        if a0 == 0 and a1 == 0 and a2 == 0 and a3 == 0:
            continue
        brow = b[k]
        for n in range(x0.size):
            bv = X(brow[n])
            v = X(x0[n] + X(a0 * bv))
            x0[n] = v
            q0[n] = max(q0[n], X(abs(v)))
            v = X(x1[n] + X(a1 * bv))
            x1[n] = v
            q1[n] = max(q1[n], X(abs(v)))
            v = X(x2[n] + X(a2 * bv))
            x2[n] = v
            q2[n] = max(q2[n], X(abs(v)))
            v = X(x3[n] + X(a3 * bv))
            x3[n] = v
            q3[n] = max(q3[n], X(abs(v)))


@numba.njit(cache=True)
def _row_block(blk, a, b, tile, mode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits, count,
               out, events, tiles_hit, ts_events, stats, exact_proto):
    """Rows 4·blk … 4·blk+3 of tiled_matmul (see there); lo, hi of the register dtype."""
    M, K = a.shape
    N = b.shape[1]
    m0 = blk * ROWS
    r = np.zeros((ROWS, N), b.dtype)
    e = np.zeros((ROWS, N), b.dtype)                # events of one tile (≤ tile ≤ what r holds)
    x = np.zeros((ROWS, N), exact_proto.dtype)      # exact running sums (traced calls)
    xmax = np.zeros((ROWS, N), exact_proto.dtype)
    total = np.zeros((ROWS, N), np.int64)
    st = stats[blk]
    for k0 in range(0, K, tile):
        r[:] = 0
        if count:
            e[:] = 0
            x[:] = 0
        _tile_macs(r, e, a, m0, k0, min(K, k0 + tile), b, mode, lo, hi, bits, count)
        if count:
            _tile_exact(x, xmax, a, m0, k0, min(K, k0 + tile), b)
        for j in range(ROWS):
            m = m0 + j
            rj, tj = r[j], total[j]
            for n in range(N):                     # end of tile: C, then the tile-sum register
                p = np.int64(rj[n])
                if mode == CLAMP_TILE:
                    cp = min(max(p, np.int64(lo)), np.int64(hi))
                    if count:
                        e[j, n] = b.dtype.type(cp != p)
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
                for n in range(N):                 # vectorisable counts and maxima
                    ev_row[n] += ej[n]
                    hit_row[n] += ej[n] > 0
                    pmax = max(pmax, np.int64(abs(xj[n])))
                    tmax = max(tmax, abs(tj[n]))
                for n in range(N):                 # the log2 histogram (a scatter)
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
