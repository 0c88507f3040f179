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
everything else here. How (only the speed differs from the generic kernel):

* Lanes. One SIMD lane per output column, one register row per row of `a`; a 32-byte vector
  holds 32 int8 or 16 int16 registers.
* Product table. The row operand holds few distinct codes (4-bit codes: at most 16), so for
  every k of a group of G = 8 consecutive k and every code value v = vmin … vmax the row
  v·b[k, block] is computed once and kept in L1 (16 entries × 8 k × 128 bytes); a
  multiply-accumulate is then "add the table row selected by a[m, k]", one load-and-add per
  vector, instead of a widening multiply. The table is built once per column block and
  k-group and serves all rows (its cost is about nval / rows of the additions).
* Saturating int8 lanes (mode saturate, 2 ≤ bits ≤ 8, every product in [−128, 127]): with the
  register r ∈ [lo, hi] ⊆ [−128, 127] and the product p ∈ [−128, 127],
  clamp(r + p, lo, hi) = min(max(sadd8(r, p), lo), hi), sadd8 the int8 saturating add (x86
  vpaddsb): clamping to [−128, 127] first cannot change the final clamp. The max is skipped
  when lo = −128, the min when hi = 127 (a symmetric 8-bit register needs only the max
  against −127), so a MAC is one or two instructions per 32 outputs.
* Wrapping int8 / int16 lanes (mode wrap, bits ≤ 16): two's-complement addition modulo 2^8
  (2^16) is exact modulo 2^bits for bits ≤ 8 (≤ 16), so the register is summed with wrapping
  adds of table entries that are the products modulo 2^8 (2^16) and sign-extended from
  `bits` at the end of the tile: wrapping per MAC or once per tile gives the same residue.
* Exact int16 lanes (modes exact and clamp_tile): when every product fits int16, a run of
  `chunk` MACs (chunk·max|a·b| ≤ 32767) cannot overflow int16; longer tiles add each run into
  an int32 tile sum, which C clamps at the tile end. Mode exact with an unbounded tile-sum
  register does not depend on the tiling, so it uses one tile.
* Tile end. Usually fused into the last k-group of the tile: the register is clamped (C),
  widened and added to int16 totals (int8 registers, when n_tiles·max|C(reg)| ≤ 32767) or
  int32 totals; with a limited tile-sum register, C = wrap or chunked tile sums, a separate
  pass does it in int64 arithmetic. The totals are finally written as int64.
* Orientation. The lanes may instead run over the rows of `a` (the row operand is then bᵀ,
  read in place): out = (bᵀ·aᵀ)ᵀ, chosen by estimated cost (few output columns, or the only
  operand with few codes). Each output is still its own k-ascending sequence.

Every output is computed independently with the same per-output sequence of operations, so
the split of columns into blocks and of blocks into threads cannot change any result. Large
calls (≥ PARALLEL_MIN_MACS) share their column blocks between Numba's thread count of threads
(kernels/workers.py: the caller does the work alone if the helpers cannot start at once, or
while other processes keep the CPUs busy); the product tables of a column are built by the
thread that computes it, once.

The inner loop (all rows of one k-group for one column block) is LLVM IR emitted through
`numba.core.extending.intrinsic`: per row, 8 table-row addresses from the 8 codes, then for
each k the add (and clamp) of every vector of the block, the vectors interleaved so that 1–4
independent dependency chains are in flight. It uses LLVM's target-independent vector
intrinsics (llvm.sadd.sat, llvm.smax, llvm.smin) on 32-byte vectors, which LLVM lowers to
vpaddsb / vpmaxsb / vpminsb on AVX2 and AVX-512 CPUs and to pairs of 16-byte SSE2 (or NEON)
instructions elsewhere: the results are the same on every CPU, only the speed differs. The
IR kernels take addresses and byte strides as int64 and are compiled once, as C callbacks
(`_kernel`), whatever the dtypes and layouts of the operands.

Selection: INTSIM_KERNELS=generic (environment, read at import) turns every fast kernel off;
"auto" (the default) uses them where they are exact.
"""
from __future__ import annotations

import functools
import os

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core.extending import intrinsic

from . import llvm_ir as L
from . import matmul_x86, workers

VEC_BYTES = 32     # bytes per SIMD vector in the emitted IR (a ymm register)
G = 8              # k per product-table group (one call of the inner kernel)
NVAL = 16          # table entries per k: the row operand spans at most 16 consecutive codes
MAX_NV = 4         # vectors per column block: 128 bytes of registers per row
TV = MAX_NV * VEC_BYTES        # table stride per code value, bytes
TJ = NVAL * TV                 # table stride per k of the group, bytes

# kernel kinds: lane width and the operation per multiply-accumulate
SAT = 0            # int8, saturating add: register [-128, 127]
SAT_LO = 1         # int8, saturating add then max(lo): symmetric 8-bit register [-127, 127]
SAT_LOHI = 2       # int8, saturating add then max(lo), min(hi): registers of 2..7 bits
ADD8 = 3           # int8, wrapping add (wrap, bits <= 8)
ADD16 = 4          # int16, wrapping add (wrap 9..16 bits; exact sums of exact / clamp_tile)

# what the inner kernel does after the last k of its group (`last`)
KEEP = 0           # store the registers (the tile goes on)
FOLD = 1           # tile end: total += register (widened), register = 0
FOLD_CLAMP = 2     # tile end: total += clamp(register, lo, hi), register = 0 (clamp_tile)

# tile-end function C of the register (general tile-end pass)
C_NONE, C_CLAMP, C_WRAP = 0, 1, 2
TS_NONE, TS_SATURATE, TS_WRAP = 0, 1, 2      # as kernels.accumulate


def _lanes(kind):
    lane = L.I16 if kind == ADD16 else L.I8
    return lane, L.vec(lane, VEC_BYTES * 8 // lane.width)


def _make_mac(kind):
    """mac(idx, xs0, xs1, ioff, M, K, k0, table, reg, rs0, tot, ts0, tot_bytes, nv, lo, hi, last):
    one k-group of every row for one column block of nv vectors (1, 2 or 4). Addresses and
    byte strides are int64:

    idx + m·xs0 + k·xs1: the row operand's code for (row m, k), a byte (int8 or uint8 codes;
        code − ioff, taken modulo 256, is its table entry 0 … NVAL−1); k = min(k0 + j, K − 1)
        for j = 0 … G−1 (table rows past the group are zero, so what is read there is moot);
    table + j·TJ + v·TV: the products of entry v with b[k0 + j, block] (lane type);
    reg + m·rs0: the row's registers; tot + m·ts0: its totals (tot_bytes = 2 or 4 per lane).

    reg = R(reg + table[j, entry(m, k0 + j)]) for j ascending; then last = KEEP stores the
    registers; FOLD / FOLD_CLAMP end the tile: tot += (clamp to [lo, hi]) reg widened, reg = 0.
    """
    lane, vty = _lanes(kind)
    lanes = vty.count

    def codegen(context, builder, sig, args):
        (idx, xs0, xs1, ioff, M, K, k0, table, reg, rs0, tot, ts0, tot_bytes, nv, lo, hi,
         last) = args
        b = builder
        ioff8 = b.trunc(ioff, L.I8)
        lov, hiv = L.splat(b, b.trunc(lo, lane), vty), L.splat(b, b.trunc(hi, lane), vty)
        klast = b.sub(K, L.const(1))
        koffs = [b.mul(L.smin(b, b.add(k0, L.const(j)), klast), xs1) for j in range(G)]

        def mac(x, t):
            if kind in (ADD8, ADD16):
                return b.add(x, t)
            x = b.call(L.vector_fn(b, "sadd.sat", vty), [x, t])
            if kind in (SAT_LO, SAT_LOHI):
                x = b.call(L.vector_fn(b, "smax", vty), [x, lov])
            if kind == SAT_LOHI:
                x = b.call(L.vector_fn(b, "smin", vty), [x, hiv])
            return x

        def fold(xs, m, wide_bytes):
            wty = L.vec(ir.IntType(8 * wide_bytes), lanes)
            trow = b.add(tot, b.mul(m, ts0))
            for c, x in enumerate(xs):
                off = L.const(c * lanes * wide_bytes)
                s = b.add(L.load(b, trow, off, wty), b.sext(x, wty) if wide_bytes > lane.width // 8
                          else x)
                L.store(b, s, trow, off)

        def rows(nvs):
            with L.for_range(b, M) as loop:
                m = loop.index
                xrow = b.add(idx, b.mul(m, xs0))
                tabs = []
                for j in range(G):
                    code = L.load(b, xrow, koffs[j], L.I8)
                    entry = b.zext(b.sub(code, ioff8), L.I64)
                    tabs.append(b.add(table, b.add(b.mul(entry, L.const(TV)), L.const(j * TJ))))
                rrow = b.add(reg, b.mul(m, rs0))
                xs = [L.load(b, rrow, L.const(c * VEC_BYTES), vty) for c in range(nvs)]
                for j in range(G):               # k ascending; the vectors interleaved
                    for c in range(nvs):
                        xs[c] = mac(xs[c], L.load(b, tabs[j], L.const(c * VEC_BYTES), vty))

                def keep():
                    for c in range(nvs):
                        L.store(b, xs[c], rrow, L.const(c * VEC_BYTES))

                def end():
                    ys = xs
                    if kind == ADD16:
                        clamped = [b.call(L.vector_fn(b, "smin", vty),
                                          [b.call(L.vector_fn(b, "smax", vty), [x, lov]), hiv])
                                   for x in xs]
                        is_clamp = b.icmp_signed("==", last, L.const(FOLD_CLAMP))
                        ys = [b.select(is_clamp, y, x) for x, y in zip(xs, clamped)]
                    if kind == ADD16:
                        fold(ys, m, 4)
                    else:
                        L.if_else(b, b.icmp_signed("==", tot_bytes, L.const(2)),
                                  lambda: fold(ys, m, 2), lambda: fold(ys, m, 4))
                    for c in range(nvs):
                        L.store(b, L.zeros(vty), rrow, L.const(c * VEC_BYTES))

                L.if_else(b, b.icmp_signed("==", last, L.const(KEEP)), keep, end)

        L.switch(b, nv, [4, 2, 1], lambda n: rows(n))
        return context.get_dummy_value()

    def typer(typingctx, idx, xs0, xs1, ioff, M, K, k0, table, reg, rs0, tot, ts0, tot_bytes, nv,
              lo, hi, last):
        sig = L.int_signature(idx, xs0, xs1, ioff, M, K, k0, table, reg, rs0, tot, ts0, tot_bytes,
                              nv, lo, hi, last)
        return None if sig is None else (sig, codegen)

    return intrinsic(typer)


def _make_build(lane_bytes):
    """build(table, bp, bs0, g, gk, c0, nv, vbase, nval): the product table of one k-group:
    table + j·TJ + v·TV = (vbase + v) · row g + j of the lane operand (address bp + (g+j)·bs0,
    from byte c0, nv vectors) modulo 2^(lane bits), for j < gk and v < nval (each entry one
    more row than the previous); zero for j ≥ gk (those k add nothing)."""
    lane = ir.IntType(8 * lane_bytes)
    vty = L.vec(lane, VEC_BYTES // lane_bytes)

    def codegen(context, builder, sig, args):
        table, bp, bs0, g, gk, c0, nv, vbase, nval = args
        b = builder
        base = L.splat(b, b.trunc(vbase, lane), vty)
        acc = L.alloca(b, vty)
        with L.for_range(b, L.const(G)) as jl:
            j = jl.index
            tj = b.add(table, b.mul(j, L.const(TJ)))

            def products():
                brow = b.add(bp, b.add(b.mul(b.add(g, j), bs0), c0))
                with L.for_range(b, nv) as cl:
                    off = b.mul(cl.index, L.const(VEC_BYTES))
                    row = L.load(b, brow, off, vty)
                    t = b.mul(row, base)
                    b.store(t, acc)
                    L.store(b, t, tj, off)
                    with L.for_range(b, b.sub(nval, L.const(1))) as vl:
                        t = b.add(b.load(acc), row)
                        b.store(t, acc)
                        L.store(b, t, tj, b.add(off, b.mul(b.add(vl.index, L.const(1)),
                                                           L.const(TV))))

            def zeros():
                with L.for_range(b, nv) as cl:
                    off = b.mul(cl.index, L.const(VEC_BYTES))
                    with L.for_range(b, nval) as vl:
                        L.store(b, L.zeros(vty), tj, b.add(off, b.mul(vl.index, L.const(TV))))

            L.if_else(b, b.icmp_signed("<", j, gk), products, zeros)
        return context.get_dummy_value()

    def typer(typingctx, table, bp, bs0, g, gk, c0, nv, vbase, nval):
        sig = L.int_signature(table, bp, bs0, g, gk, c0, nv, vbase, nval)
        return None if sig is None else (sig, codegen)

    return intrinsic(typer)


_mac_sat, _mac_sat_lo, _mac_sat_lohi, _mac_add8, _mac_add16 = (
    _make_mac(k) for k in (SAT, SAT_LO, SAT_LOHI, ADD8, ADD16))
_build8, _build16 = _make_build(1), _make_build(2)


def _mac(kind, idx, xs0, xs1, ioff, M, K, k0, table, reg, rs0, tot, ts0, tot_bytes, nv, lo, hi,
         last):
    """The inner kernel of `kind` (compiled once as a C callback, see _kernel)."""
    if kind == SAT:
        _mac_sat(idx, xs0, xs1, ioff, M, K, k0, table, reg, rs0, tot, ts0, tot_bytes, nv, lo, hi,
                 last)
    elif kind == SAT_LO:
        _mac_sat_lo(idx, xs0, xs1, ioff, M, K, k0, table, reg, rs0, tot, ts0, tot_bytes, nv, lo,
                    hi, last)
    elif kind == SAT_LOHI:
        _mac_sat_lohi(idx, xs0, xs1, ioff, M, K, k0, table, reg, rs0, tot, ts0, tot_bytes, nv, lo,
                      hi, last)
    elif kind == ADD8:
        _mac_add8(idx, xs0, xs1, ioff, M, K, k0, table, reg, rs0, tot, ts0, tot_bytes, nv, lo, hi,
                  last)
    else:
        _mac_add16(idx, xs0, xs1, ioff, M, K, k0, table, reg, rs0, tot, ts0, tot_bytes, nv, lo,
                   hi, last)


def _build(lane_bytes, table, bp, bs0, g, gk, c0, nv, vbase, nval):
    """The product table of one k-group (compiled once as a C callback, see _kernel)."""
    if lane_bytes == 1:
        _build8(table, bp, bs0, g, gk, c0, nv, vbase, nval)
    else:
        _build16(table, bp, bs0, g, gk, c0, nv, vbase, nval)


@functools.lru_cache(maxsize=None)
def _kernel(fn):
    """Address of `fn` compiled (once, cached on disk) as a C function of int64 arguments.

    The drivers reach the IR kernels through these addresses (llvm_ir.call_ints) instead of
    calling them directly: a Numba call links the callee's code into every caller and compiles
    it again there, so the kernels would be compiled once per driver and specialization."""
    nargs = fn.__code__.co_argcount
    return numba.cfunc(types.void(*([types.int64] * nargs)), cache=True)(fn).address


@numba.njit(cache=True)
def _tile_end(reg, part, total, nl, chunked, cmode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits):
    """total = TS(total + C(tile sum)) for every row and lane n < nl, in int64 arithmetic; the
    tile sum is the register, plus the int32 runs flushed into `part` when chunked. Clears both."""
    half = np.int64(1) << (bits - 1)
    ts_half = np.int64(1) << (ts_bits - 1)
    for m in range(reg.shape[0]):
        r, t = reg[m, :nl], total[m, :nl]
        for n in range(nl):
            s = np.int64(r[n])
            r[n] = 0
            if chunked:
                s += part[m, n]
                part[m, n] = 0
            if cmode == C_CLAMP:
                s = min(max(s, lo), hi)
            elif cmode == C_WRAP:
                s = ((s + half) & ((half << 1) - 1)) - half
            s += t[n]
            if ts_mode == TS_SATURATE:
                s = min(max(s, ts_lo), ts_hi)
            elif ts_mode == TS_WRAP:
                s = ((s + ts_half) & ((ts_half << 1) - 1)) - ts_half
            t[n] = s


@numba.njit(cache=True)
def _flush(reg, part, nl):
    """part += reg, reg = 0 (an int16 run of exact sums into the int32 tile sum)."""
    for m in range(reg.shape[0]):
        r, p = reg[m, :nl], part[m, :nl]
        for n in range(nl):
            p[n] += r[n]
            r[n] = 0


@numba.njit(cache=True)
def _write(total, out, c0, width, transposed):
    """out[m, c0 + n] (or out[c0 + n, m] when transposed) = total[m, n], n < width."""
    M = total.shape[0]
    if transposed:
        for m0 in range(0, M, 16):
            m1 = min(M, m0 + 16)
            for n in range(width):
                om = out[c0 + n, m0:m1]
                for r in range(m1 - m0):
                    om[r] = total[m0 + r, n]
    else:
        for m in range(M):
            om, tm = out[m, c0:c0 + width], total[m, :width]
            for n in range(width):
                om[n] = tm[n]


@numba.njit(cache=True, nogil=True)
def _tables_run(state, w, mac_fn, build_fn, kind, lane_bytes, tot_bytes, blocks, idx, M, xs0,
                xs1, ioff, bp, tail, out, transposed, vbase, nval, tile, chunk, cmode, lo, hi,
                bits, ts_mode, ts_lo, ts_hi, ts_bits):
    """Thread w's share of the column blocks (first vector, vectors) of `blocks`, each through
    all tiles (the work-sharing protocol of kernels/workers.py).

    mac_fn, build_fn: addresses of _mac, _build as C functions; idx: the row operand's codes
    (uint8 view; row m, k at byte m·xs0 + k·xs1); bp (K, ≥ lanes·lane_bytes) uint8 view of the
    lane operand; tail (K, ·): the last block's columns of it, zero-padded to whole vectors,
    or an empty array when bp itself is padded; out int64 (rows, columns), or (columns, rows)
    when `transposed`. Common case (no chunks, no tile-sum limit, C = identity or clamp): the
    inner kernel ends each tile itself; otherwise `_tile_end` does, with int32 totals.
    """
    if not workers.begin(state, w):
        return True
    K = bp.shape[0]
    ncols = out.shape[0] if transposed else out.shape[1]
    lanes = VEC_BYTES // lane_bytes
    chunked = chunk < tile
    fused = not chunked and ts_mode == TS_NONE and cmode != C_WRAP
    fold = FOLD if cmode == C_NONE else FOLD_CLAMP
    nvmax = 1                                      # scratch for the widest block only
    for bi in range(blocks.shape[0]):
        nvmax = max(nvmax, blocks[bi, 1])
    rs = nvmax * VEC_BYTES                         # register bytes per row
    os_ = nvmax * lanes * tot_bytes                # total bytes per row
    reg_b = np.zeros(M * rs, np.uint8)
    table = np.empty(G * TJ, np.uint8)
    tot_b = np.zeros(M * os_, np.uint8)
    part = np.zeros((M if chunked else 1, nvmax * lanes), np.int32)
    reg8 = reg_b.view(np.int8).reshape(M, rs)
    reg16 = reg_b.view(np.int16).reshape(M, rs // 2)
    tot16 = tot_b.view(np.int16).reshape(M, os_ // 2)
    tot32 = tot_b.view(np.int32).reshape(M, os_ // 4)
    xa, ta, ra = np.int64(idx.ctypes.data), np.int64(table.ctypes.data), np.int64(reg_b.ctypes.data)
    oa, ba, bs0 = np.int64(tot_b.ctypes.data), np.int64(bp.ctypes.data), bp.strides[0]
    fresh = True
    while True:
        bi = workers.claim(state)
        if bi >= blocks.shape[0]:
            break
        c0, nv = blocks[bi, 0] * lanes, blocks[bi, 1]
        nl = nv * lanes
        src, sstride, scol = ba, bs0, c0 * lane_bytes
        if tail.size and bi == blocks.shape[0] - 1:
            src, sstride, scol = np.int64(tail.ctypes.data), tail.strides[0], 0
        if not fresh:                              # every tile end leaves the registers 0
            tot_b[:] = 0
        fresh = False
        for k0 in range(0, K, tile):
            k1 = min(K, k0 + tile)
            for g in range(k0, k1, G):
                if chunked and g > k0 and (g - k0) % chunk == 0:
                    _flush(reg16, part, nl)
                L.call_ints(build_fn, (lane_bytes, ta, src, sstride, g, min(G, k1 - g), scol, nv,
                                       vbase, nval))
                last = fold if fused and g + G >= k1 else KEEP
                L.call_ints(mac_fn, (kind, xa, xs0, xs1, ioff, M, K, g, ta, ra, rs, oa, os_,
                                     tot_bytes, nv, lo, hi, last))
            if not fused:
                if lane_bytes == 1:
                    _tile_end(reg8, part, tot32, nl, chunked, cmode, lo, hi, bits, ts_mode, ts_lo,
                              ts_hi, ts_bits)
                else:
                    _tile_end(reg16, part, tot32, nl, chunked, cmode, lo, hi, bits, ts_mode,
                              ts_lo, ts_hi, ts_bits)
        if tot_bytes == 2:
            _write(tot16, out, c0, min(nl, ncols - c0), transposed)
        else:
            _write(tot32, out, c0, min(nl, ncols - c0), transposed)
    return workers.finish(state, w)


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


def _codes8(x):
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
def _transpose8(src, dst):
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


def _c_order8(x):
    """x (int8 / uint8) in C order: as it is, or transposed from C-ordered xᵀ in 16 × 16
    tiles (a Fortran-ordered x, e.g. the transposed view of a weight matrix), else NumPy."""
    if x.flags.c_contiguous:
        return x
    if x.dtype.itemsize == 1 and x.T.flags.c_contiguous:
        out = np.empty(x.shape, x.dtype)
        _transpose8(x.T.view(np.uint8), out.view(np.uint8))
        return out
    return np.ascontiguousarray(x)


@numba.njit(cache=True)
def _pad_lanes(x, transpose, dst):
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


# --- selection and the call ------------------------------------------------------------------

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


def _plan(acc, amin, amax, bmin, bmax, K):
    """(kind, lane bytes, tile, chunk, cmode, max |C(tile sum)|) of the table kernels for
    row codes amin … amax and lane values bmin … bmax, or None if they cannot compute the
    call exactly."""
    if amax - amin + 1 > NVAL:
        return None
    prods = (amin * bmin, amin * bmax, amax * bmin, amax * bmax)
    pmin, pmax = min(prods), max(prods)
    maxp = max(-pmin, pmax, 1)
    lo, hi = acc.range
    tile = max(1, K if acc.tile is None else min(acc.tile, K))
    if acc.mode == "saturate":
        if lo < -128 or hi > 127 or pmin < -128 or pmax > 127:
            return None
        kind = SAT if (lo == -128 and hi == 127) else SAT_LO if hi == 127 else SAT_LOHI
        return kind, 1, tile, tile, C_NONE, max(-lo, hi)
    if acc.mode == "wrap":
        if acc.bits > 16:
            return None
        kind, lane_bits = (ADD8, 8) if acc.bits <= 8 else (ADD16, 16)
        return (kind, lane_bits // 8, tile, tile, C_NONE if acc.bits == lane_bits else C_WRAP,
                1 << (acc.bits - 1))
    # exact or clamp_tile: exact tile sums from int16 runs of `chunk` MACs
    chunk = (32767 // maxp) // G * G
    if chunk < G:
        return None
    if acc.mode == "exact" and acc.tile_sum_bits is None:
        tile = K                                  # exact sums: the tiling does not matter
    if tile * maxp > INT32_MAX:
        return None
    chunk = min(chunk, -(-tile // G) * G)
    if acc.mode == "clamp_tile" and tile * maxp > min(-lo, hi):
        return ADD16, 2, tile, chunk, C_CLAMP, max(-lo, hi)
    return ADD16, 2, tile, chunk, C_NONE, tile * maxp


def _ts_plan(acc, n_tiles, max_part):
    """(ts_mode, ts_lo, ts_hi) of the tile-sum register (TS_NONE when it can never
    overflow), or None when int32 totals could not hold it."""
    ts_mode, ts_lo, ts_hi = TS_NONE, 0, 0
    if acc.tile_sum_bits is not None:
        ts_lo, ts_hi = acc.tile_sum_range
        if n_tiles * max_part > min(-ts_lo, ts_hi):
            if acc.tile_sum_bits > 32:
                return None
            ts_mode = TS_WRAP if acc.mode == "wrap" else TS_SATURATE
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


def _tables_matmul(a2, b, acc, amin, amax, bmin, bmax):
    M, K = a2.shape
    N = b.shape[1]
    plan_n = _plan(acc, amin, amax, bmin, bmax, K)
    plan_t = _plan(acc, bmin, bmax, amin, amax, K)
    if plan_n is None and plan_t is None:
        return None
    if plan_n is not None and plan_t is not None:
        transpose = _cost(N, M, plan_n[1], True) < _cost(M, N, plan_n[1], False)
    else:
        transpose = plan_n is None
    kind, lane_bytes, tile, chunk, cmode, max_part = plan_t if transpose else plan_n
    n_tiles = -(-K // tile)
    ts = _ts_plan(acc, n_tiles, max_part)
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
            _transpose8(lane_op.T.view(np.uint8), bp.view(np.uint8))
        elif byte_codes and lane_op.flags.c_contiguous:
            _pad_lanes(lane_op, False, bp)
        elif byte_codes and lane_op.T.flags.c_contiguous:
            _pad_lanes(lane_op.T, True, bp)
        else:                                     # NumPy's integer cast is modulo 2^bits too
            bp[:, :lanes] = lane_op
    out = np.empty((M, N), np.int64)
    fused = chunk >= tile and ts_mode == TS_NONE and cmode != C_WRAP
    tot_bytes = 2 if (fused and lane_bytes == 1 and n_tiles * max_part <= 32767) else 4
    lo, hi = acc.range
    mac_fn, build_fn, bpv = _kernel(_mac), _kernel(_build), bp.view(np.uint8)

    def launch(threads):
        blocks = _blocks(n_vec, threads)
        tail = _NO_TAIL
        if direct and lanes % VEC_BYTES:          # the last block would read past the rows
            c_last = int(blocks[-1, 0]) * VEC_BYTES
            tail = np.zeros((K, int(blocks[-1, 1]) * VEC_BYTES), np.uint8)
            tail[:, :lanes - c_last] = bpv[:, c_last:]
        workers.run(_tables_run, threads, mac_fn, build_fn, kind, lane_bytes, tot_bytes, blocks,
                    idx, rows, xs0, xs1, ioff, bpv, tail, out, transpose, vmin, vmax - vmin + 1,
                    tile, chunk, cmode, lo, hi, acc.bits, ts_mode, ts_lo, ts_hi,
                    acc.tile_sum_bits or 32)

    workers.run_adaptive(("tables", kind, M, K, N, tile), _threads(M * K * N), launch)
    return out


def _pairs_matmul(a2, b, acc, amin, amax, bmin, bmax):
    """exact / clamp_tile / wrap through matmul_x86 (lanes over the columns of b), or None."""
    M, K = a2.shape
    N = b.shape[1]
    umax = amax - min(amin, 0)                    # the row codes u = a (− amin if negative)
    if umax > 255 or bmin < -128 or bmax > 127 or 2 * umax * max(-bmin, bmax) > 32767:
        return None                               # u, b must fit uint8 / int8; no saturated pair
    maxp = max(abs(amin * bmin), abs(amin * bmax), abs(amax * bmin), abs(amax * bmax), 1)
    lo, hi = acc.range
    tile = max(1, K if acc.tile is None else min(acc.tile, K))
    if acc.mode == "wrap":
        if acc.bits > 16:
            return None
        cmode = C_NONE if acc.bits == 16 else C_WRAP
        max_part = 1 << (acc.bits - 1)
    else:
        if acc.mode == "exact" and acc.tile_sum_bits is None:
            tile = max(1, min(K, 32767 // maxp))  # exact sums: any tiling gives the same total
        if tile * maxp > 32767:
            return None
        if acc.mode == "clamp_tile" and tile * maxp > min(-lo, hi):
            cmode, max_part = C_CLAMP, max(-lo, hi)
        else:
            cmode, max_part = C_NONE, tile * maxp
    n_tiles = -(-K // tile)
    ts = _ts_plan(acc, n_tiles, max_part)
    if ts is None:
        return None
    ts_mode, ts_lo, ts_hi = ts
    corrected = amin < 0
    if _codes8(a2) is None:                       # other dtypes / layouts (values fit uint8)
        u = (a2.astype(np.int64) - min(amin, 0)).astype(np.uint8, order="C")
    elif corrected:
        u = np.empty((M, K), np.uint8)
        matmul_x86.offset_codes(a2, amin, u)
    else:
        u = a2.view(np.uint8)                     # codes 0 … 255: the same bytes
    if b.dtype.itemsize == 1:
        b = _c_order8(b).view(np.int8)            # b fits int8 here: the same bytes
    else:
        b = np.ascontiguousarray(b, dtype=np.int8)
    tail = np.zeros((K, matmul_x86.BLOCK), np.int8)
    if N % matmul_x86.BLOCK:                      # the last block's columns, zero-padded
        tail[:, :N % matmul_x86.BLOCK] = b[:, N - N % matmul_x86.BLOCK:]
    out = np.empty((M, N), np.int64)
    tot_bytes = 2 if n_tiles * max_part <= 32767 else 4
    block_fn = _kernel(matmul_x86._block)
    bits, ts_bits = min(acc.bits, 16), min(acc.tile_sum_bits or 32, 8 * tot_bytes)
    workers.run_adaptive(
        ("pairs", M, K, N, tile), _threads(M * K * N),
        lambda threads: workers.run(matmul_x86.run, threads, block_fn, corrected, tot_bytes, u, b,
                                    tail, amin if corrected else 0, out, tile, cmode, lo, hi, bits,
                                    ts_mode, ts_lo, ts_hi, ts_bits))
    return out


def fast_int_matmul(a2, b, acc):
    """a2 (M, K) · b (K, N) through `acc` as int64 (M, N), or None when no fast kernel applies
    (the caller then runs the generic kernel). Untraced calls only: no event counts."""
    if KERNELS == "generic":
        return None
    M, K = a2.shape
    N = b.shape[1]
    if M == 0 or N == 0 or K == 0:
        return None
    amin, amax = value_range(a2)
    bmin, bmax = value_range(b)
    if PAIRS and acc.mode != "saturate":
        out = _pairs_matmul(a2, b, acc, amin, amax, bmin, bmax)
        if out is not None:
            return out
    return _tables_matmul(a2, b, acc, amin, amax, bmin, bmax)
