"""Fast exact integer matmul for narrow accumulators: product tables on 8- and 16-bit lanes.

Semantics (NUMERICS.md §4; the same bits as `accumulate.tiled_matmul` and the plain-Python
oracle `accumulate.int_matmul_reference`): for every output (m, n), K is cut into tiles of
`tile` (the last may be shorter), and

    total = 0
    for each tile t (ascending):
        reg = 0
        for k in tile t (ascending):  reg = R(reg + a[m,k]·b[k,n])
        total = TS(total + C(reg))

with R = clamp to [lo, hi] (saturate), two's-complement wrap to `bits` (wrap) or the exact sum
(clamp_tile, exact), C = clamp to [lo, hi] (clamp_tile) or the identity, and TS the tile-sum
register (unbounded, or `tile_sum_bits` wide, saturating or wrapping).

`fast_int_matmul` computes this for the untraced calls it can compute exactly and returns None
for the others (then `int_matmul` runs the generic kernel of kernels/accumulate.py). The
order-independent modes go to the AVX2 pair kernel of matmul_x86 where the host has AVX2;
everything else to the product-table kernels of matmul_tables (only the speed differs from
the generic kernel):

* Orientation. The lanes may instead run over the rows of `a` (the row operand is then bᵀ,
  read in place): out = (bᵀ·aᵀ)ᵀ, chosen by estimated cost (few output columns, or the only
  operand with few codes). Each output is still its own k-ascending sequence.

Every output is computed independently with the same per-output sequence of operations, so
the split of columns into blocks and of blocks into threads cannot change any result. Large
calls (≥ PARALLEL_MIN_MACS) share their column blocks between Numba's thread count of threads
(kernels/workers.py: the caller does the work alone if the helpers cannot start at once, or
while other processes keep the CPUs busy); the product tables of a column are built by the
thread that computes it, once.

Selection: INTSIM_KERNELS=generic (environment, read at import) turns every fast kernel off;
"auto" (the default) uses them where they are exact.

Modules: matmul_tables (the product-table kernels), matmul_x86 (the pair kernel), bytes8
(operand preparation), workers (threads), llvm_ir (IR helpers); this module plans a call and
picks the kernel.
"""
from __future__ import annotations

import functools
import os
from typing import NamedTuple, Optional

import numba
import numpy as np

from . import accumulate as A
from . import bytes8, matmul_x86, workers
from . import matmul_tables as T
from .accumulate import C_CLAMP, C_NONE, C_WRAP, TS_NONE, TS_SATURATE, TS_WRAP
from .llvm_ir import cfunc_address
from .matmul_tables import ADD8, ADD16, G, NVAL, SAT, SAT_LO, SAT_LOHI, VEC_BYTES


class Register(NamedTuple):
    """The accumulator datapath of one call in the kernels' terms (core.accumulator.fast_matmul
    builds it from an Accumulator): mode, a code of kernels.accumulate (SATURATE, CLAMP_TILE,
    WRAP, EXACT); the register's bits and limits lo, hi; the effective tile (1 ≤ tile ≤ K);
    the tile-sum register's bits (None: unbounded) and limits ts_lo, ts_hi."""
    mode: int
    bits: int
    tile: int
    lo: int
    hi: int
    ts_bits: Optional[int]
    ts_lo: int
    ts_hi: int


KERNELS = os.environ.get("INTSIM_KERNELS", "auto").strip().lower() or "auto"
if KERNELS not in ("auto", "generic"):
    raise ValueError(f"INTSIM_KERNELS: expected 'auto' or 'generic', got {KERNELS!r}")

PARALLEL_MIN_MACS = 1 << 21    # smaller calls run on the calling thread only
_NO_TAIL = np.zeros((1, 0), np.uint8)
INT32_MAX = (1 << 31) - 1
PAIRS = matmul_x86.available()      # AVX2: exact tile sums from pmaddubsw pairs


@functools.lru_cache(maxsize=256)
def _blocks(n_vec, threads):
    """Column blocks (first vector, vectors) covering n_vec vectors, in the order the threads
    claim them: blocks of 4 vectors while more than 4 per thread remain, then of 2 while more
    than 2 per thread remain, then single vectors (so that the threads end together)."""
    blocks, v = [], 0
    for nv in (4, 2, 1):
        while n_vec - v >= nv and (n_vec - v > nv * threads or nv == 1 or threads == 1):
            blocks.append((v, nv))
            v += nv
    out = np.array(blocks, np.int64).reshape(-1, 2)
    out.flags.writeable = False
    return out


def _plan(reg, amin, amax, bmin, bmax, K):
    """(kind, lane bytes, tile, chunk, cmode, max |C(tile sum)|) of the table kernels for
    row codes amin … amax and lane values bmin … bmax, or None if they cannot compute the
    call exactly."""
    if amax - amin + 1 > NVAL:
        return None
    prods = (amin * bmin, amin * bmax, amax * bmin, amax * bmax)
    pmin, pmax = min(prods), max(prods)
    maxp = max(-pmin, pmax, 1)
    lo, hi = (reg.lo, reg.hi)
    tile = reg.tile
    if reg.mode == A.SATURATE:
        if lo < -128 or hi > 127 or pmin < -128 or pmax > 127:
            return None
        kind = SAT if (lo == -128 and hi == 127) else SAT_LO if hi == 127 else SAT_LOHI
        return kind, 1, tile, tile, C_NONE, max(-lo, hi)
    if reg.mode == A.WRAP:
        if reg.bits > 16:
            return None
        kind, lane_bits = (ADD8, 8) if reg.bits <= 8 else (ADD16, 16)
        return (kind, lane_bits // 8, tile, tile, C_NONE if reg.bits == lane_bits else C_WRAP,
                1 << (reg.bits - 1))
    # exact or clamp_tile: exact tile sums from int16 runs of `chunk` MACs
    chunk = (32767 // maxp) // G * G
    if chunk < G:
        return None
    if reg.mode == A.EXACT and reg.ts_bits is None:
        tile = K                                  # exact sums: the tiling does not matter
    if tile * maxp > INT32_MAX:
        return None
    chunk = min(chunk, -(-tile // G) * G)
    if reg.mode == A.CLAMP_TILE and tile * maxp > min(-lo, hi):
        return ADD16, 2, tile, chunk, C_CLAMP, max(-lo, hi)
    return ADD16, 2, tile, chunk, C_NONE, tile * maxp


def _ts_plan(reg, n_tiles, max_part):
    """(ts_mode, ts_lo, ts_hi) of the tile-sum register (TS_NONE when it can never
    overflow), or None when int32 totals could not hold it."""
    ts_mode, ts_lo, ts_hi = TS_NONE, 0, 0
    if reg.ts_bits is not None:
        ts_lo, ts_hi = (reg.ts_lo, reg.ts_hi)
        if n_tiles * max_part > min(-ts_lo, ts_hi):
            if reg.ts_bits > 32:
                return None
            ts_mode = TS_WRAP if reg.mode == A.WRAP else TS_SATURATE
    if ts_mode == TS_NONE and n_tiles * max_part > INT32_MAX:
        return None
    return ts_mode, ts_lo, ts_hi


def _cost(rows, lanes, lane_bytes, transpose):
    """Estimated time of one orientation, in units of one row's MACs on one vector for one
    k: every column vector costs its rows plus its table entries (a table store costs about
    1.5 row-adds); the transposed orientation also transposes the small operand and the
    result (about 1.5 units per element)."""
    lanes_per_vec = VEC_BYTES // lane_bytes
    n_vec = -(-lanes // lanes_per_vec)
    extra = 1.5 * rows * lanes / lanes_per_vec if transpose else 0.0
    return n_vec * (rows + 1.5 * NVAL) + extra


def _threads(macs):
    """Threads for a call of `macs` multiply-accumulates: Numba's thread count (NUMBA_NUM_THREADS,
    numba.set_num_threads) for large calls, else 1 (waking a helper costs more)."""
    return numba.get_num_threads() if macs >= PARALLEL_MIN_MACS else 1


def _tables_matmul(a2, b, reg, amin, amax, bmin, bmax):
    M, K = a2.shape
    N = b.shape[1]
    plan_n = _plan(reg, amin, amax, bmin, bmax, K)
    plan_t = _plan(reg, bmin, bmax, amin, amax, K)
    if plan_n is None and plan_t is None:
        return None
    if plan_n is not None and plan_t is not None:
        transpose = _cost(N, M, plan_n[1], True) < _cost(M, N, plan_n[1], False)
    else:
        transpose = plan_n is None
    kind, lane_bytes, tile, chunk, cmode, max_part = plan_t if transpose else plan_n
    n_tiles = -(-K // tile)
    ts = _ts_plan(reg, n_tiles, max_part)
    if ts is None:
        return None
    ts_mode, ts_lo, ts_hi = ts
    rows, lanes, vmin, vmax = (N, M, bmin, bmax) if transpose else (M, N, amin, amax)
    rows_op = b.T if transpose else a2            # (rows, K): codes that index the tables
    lane_op = a2.T if transpose else b            # (K, lanes): the table entries' factors
    # the row operand's code bytes in place when it or its transpose is in C order
    if rows_op.dtype.itemsize == 1 and rows_op.flags.c_contiguous:
        idx, ioff, xs0, xs1 = rows_op.view(np.uint8), vmin, K, 1
    elif rows_op.dtype.itemsize == 1 and rows_op.T.flags.c_contiguous:
        idx, ioff, xs0, xs1 = rows_op.T.view(np.uint8), vmin, 1, rows
    else:                                         # other dtypes / layouts: code − vmin, bytes
        idx = (rows_op.astype(np.int64) - vmin).astype(np.uint8, order="C")
        ioff, xs0, xs1 = 0, K, 1
    # the lane operand modulo 2^(lane bits): every table entry is then the product modulo
    # 2^(lane bits), which is the product itself wherever the plan needs it exact
    lanes_per_vec = VEC_BYTES // lane_bytes
    n_vec = -(-lanes // lanes_per_vec)
    byte_codes = lane_op.dtype.itemsize == 1
    direct = lane_bytes == 1 and byte_codes and lane_op.flags.c_contiguous
    if direct:                                    # the tables read it in place
        bp = lane_op.view(np.uint8)
    else:
        bp = np.zeros((K, n_vec * lanes_per_vec), np.int8 if lane_bytes == 1 else np.int16)
        if lane_bytes == 1 and byte_codes and lane_op.T.flags.c_contiguous:
            bytes8.transpose8(lane_op.T.view(np.uint8), bp.view(np.uint8))
        elif byte_codes and lane_op.flags.c_contiguous:
            bytes8.pad_lanes(lane_op, False, bp)
        elif byte_codes and lane_op.T.flags.c_contiguous:
            bytes8.pad_lanes(lane_op.T, True, bp)
        else:                                     # NumPy's integer cast is modulo 2^bits too
            bp[:, :lanes] = lane_op
    out = np.empty((M, N), np.int64)
    fused = chunk >= tile and ts_mode == TS_NONE and cmode != C_WRAP
    tot_bytes = 2 if (fused and lane_bytes == 1 and n_tiles * max_part <= 32767) else 4
    lo, hi = (reg.lo, reg.hi)
    mac_fn, build_fn, bpv = cfunc_address(T.mac), cfunc_address(T.build), bp.view(np.uint8)

    def launch(threads):
        blocks = _blocks(n_vec, threads)
        tail = _NO_TAIL
        if direct and lanes % VEC_BYTES:          # the last block would read past the rows
            c_last = int(blocks[-1, 0]) * VEC_BYTES
            tail = np.zeros((K, int(blocks[-1, 1]) * VEC_BYTES), np.uint8)
            tail[:, :lanes - c_last] = bpv[:, c_last:]
        workers.run(T.run, threads, mac_fn, build_fn, kind, lane_bytes, tot_bytes, blocks,
                    idx, rows, xs0, xs1, ioff, bpv, tail, out, transpose, vmin, vmax - vmin + 1,
                    tile, chunk, cmode, lo, hi, reg.bits, ts_mode, ts_lo, ts_hi,
                    reg.ts_bits or 32)

    workers.run_adaptive(("tables", kind, M, K, N, tile), _threads(M * K * N), launch)
    return out


def _pairs_matmul(a2, b, reg, amin, amax, bmin, bmax):
    """exact / clamp_tile / wrap through matmul_x86 (lanes over the columns of b), or None."""
    M, K = a2.shape
    N = b.shape[1]
    umax = amax - min(amin, 0)                    # the row codes u = a (− amin if negative)
    if umax > 255 or bmin < -128 or bmax > 127 or 2 * umax * max(-bmin, bmax) > 32767:
        return None                               # u, b must fit uint8 / int8; no saturated pair
    maxp = max(abs(amin * bmin), abs(amin * bmax), abs(amax * bmin), abs(amax * bmax), 1)
    lo, hi = (reg.lo, reg.hi)
    tile = reg.tile
    if reg.mode == A.WRAP:
        if reg.bits > 16:
            return None
        cmode = C_NONE if reg.bits == 16 else C_WRAP
        max_part = 1 << (reg.bits - 1)
    else:
        if reg.mode == A.EXACT and reg.ts_bits is None:
            tile = max(1, min(K, 32767 // maxp))  # exact sums: any tiling gives the same total
        if tile * maxp > 32767:
            return None
        if reg.mode == A.CLAMP_TILE and tile * maxp > min(-lo, hi):
            cmode, max_part = C_CLAMP, max(-lo, hi)
        else:
            cmode, max_part = C_NONE, tile * maxp
    n_tiles = -(-K // tile)
    ts = _ts_plan(reg, n_tiles, max_part)
    if ts is None:
        return None
    ts_mode, ts_lo, ts_hi = ts
    corrected = amin < 0
    if bytes8.codes8(a2) is None:                       # other dtypes / layouts (values fit uint8)
        u = (a2.astype(np.int64) - min(amin, 0)).astype(np.uint8, order="C")
    elif corrected:
        u = np.empty((M, K), np.uint8)
        matmul_x86.offset_codes(a2, amin, u)
    else:
        u = a2.view(np.uint8)                     # codes 0 … 255: the same bytes
    if b.dtype.itemsize == 1:
        b = bytes8.c_order8(b).view(np.int8)            # b fits int8 here: the same bytes
    else:
        b = np.ascontiguousarray(b, dtype=np.int8)
    tail = np.zeros((K, matmul_x86.BLOCK), np.int8)
    if N % matmul_x86.BLOCK:                      # the last block's columns, zero-padded
        tail[:, :N % matmul_x86.BLOCK] = b[:, N - N % matmul_x86.BLOCK:]
    out = np.empty((M, N), np.int64)
    tot_bytes = 2 if n_tiles * max_part <= 32767 else 4
    block_fn = cfunc_address(matmul_x86.block)
    bits, ts_bits = min(reg.bits, 16), min(reg.ts_bits or 32, 8 * tot_bytes)
    workers.run_adaptive(
        ("pairs", M, K, N, tile), _threads(M * K * N),
        lambda threads: workers.run(matmul_x86.run, threads, block_fn, corrected, tot_bytes, u, b,
                                    tail, amin if corrected else 0, out, tile, cmode, lo, hi, bits,
                                    ts_mode, ts_lo, ts_hi, ts_bits))
    return out


def fast_int_matmul(a2: np.ndarray, b: np.ndarray, reg: Register,
                    a_ext: Optional[tuple[int, int]] = None,
                    b_ext: Optional[tuple[int, int]] = None) -> Optional[np.ndarray]:
    """a2 (M, K) · b (K, N) through register `reg` as int64 (M, N), or None when no fast kernel
    applies (the caller then runs the generic kernel). Untraced calls only: no event counts.
    a_ext, b_ext: (min, max) of a2, b when the caller knows them (else one pass finds them)."""
    if KERNELS == "generic":
        return None
    M, K = a2.shape
    N = b.shape[1]
    if M == 0 or N == 0 or K == 0:
        return None
    amin, amax = a_ext or bytes8.value_range(a2)
    bmin, bmax = b_ext or bytes8.value_range(b)
    if PAIRS and reg.mode != A.SATURATE:
        out = _pairs_matmul(a2, b, reg, amin, amax, bmin, bmax)
        if out is not None:
            return out
    return _tables_matmul(a2, b, reg, amin, amax, bmin, bmax)
