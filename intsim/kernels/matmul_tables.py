"""Product-table kernels on int8 / int16 lanes: the inner loops behind matmul_int8 for saturate
(and for the other modes where the pair kernel of matmul_x86 does not apply).

Semantics: NUMERICS.md §4, as stated in kernels/matmul_int8.py; only the speed differs from the
generic kernel of kernels/accumulate.py.

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


The inner loop (all rows of one k-group for one column block) is LLVM IR emitted through
`numba.core.extending.intrinsic`: per row, 8 table-row addresses from the 8 codes, then for
each k the add (and clamp) of every vector of the block, the vectors interleaved so that 1–4
independent dependency chains are in flight. It uses LLVM's target-independent vector
intrinsics (llvm.sadd.sat, llvm.smax, llvm.smin) on 32-byte vectors, which LLVM lowers to
vpaddsb / vpmaxsb / vpminsb on AVX2 and AVX-512 CPUs and to pairs of 16-byte SSE2 (or NEON)
instructions elsewhere: the results are the same on every CPU, only the speed differs. The
IR kernels take addresses and byte strides as int64 and are compiled once, as C callbacks
(`llvm_ir.cfunc_address`), whatever the dtypes and layouts of the operands.
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core.extending import intrinsic

from . import llvm_ir as L
from . import workers
from .accumulate import C_CLAMP, C_NONE, C_WRAP, TS_NONE, TS_SATURATE, TS_WRAP

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


def mac(kind, idx, xs0, xs1, ioff, M, K, k0, table, reg, rs0, tot, ts0, tot_bytes, nv, lo, hi,
         last):
    """The inner kernel of `kind` (compiled once as a C callback, see llvm_ir.cfunc_address)."""
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


def build(lane_bytes, table, bp, bs0, g, gk, c0, nv, vbase, nval):
    """The product table of one k-group (compiled once as a C callback, see llvm_ir.cfunc_address)."""
    if lane_bytes == 1:
        _build8(table, bp, bs0, g, gk, c0, nv, vbase, nval)
    else:
        _build16(table, bp, bs0, g, gk, c0, nv, vbase, nval)



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
def run(state, w, mac_fn, build_fn, kind, lane_bytes, tot_bytes, blocks, idx, M, xs0,
                xs1, ioff, bp, tail, out, transposed, vbase, nval, tile, chunk, cmode, lo, hi,
                bits, ts_mode, ts_lo, ts_hi, ts_bits):
    """Thread w's share of the column blocks (first vector, vectors) of `blocks`, each through
    all tiles (the work-sharing protocol of kernels/workers.py).

    mac_fn, build_fn: addresses of mac, build as C functions; idx: the row operand's codes
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

