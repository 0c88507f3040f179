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

How this module computes it (only the speed differs from the generic kernel):

* Lanes. One SIMD lane per output column; each register row is one row of `a`. A 32-byte
  vector holds 32 int8 registers or 16 int16 registers.
* Product table. The row operand `a` holds few distinct codes (4-bit codes: at most 16), so for
  every k of a group of G = 8 consecutive k and every code value v = amin … amax the row
  v·b[k, n0:n0+B] is computed once (B columns of one block) and kept in L1; a multiply-accumulate
  is then "add the table row selected by a[m, k]": one load-and-add per vector instead of a
  widening multiply. The table is built once per column block and k-group and serves all M
  rows (its cost is about nval / M of the additions).
* Saturating int8 lanes (mode saturate, 2 ≤ bits ≤ 8, every product in [−128, 127]): with the
  register r ∈ [lo, hi] ⊆ [−128, 127] and the product p ∈ [−128, 127],
  clamp(r + p, lo, hi) = min(max(sadd8(r, p), lo), hi), where sadd8 is the int8 saturating add
  (x86 vpaddsb): clamping to [−128, 127] first does not change the final clamp because
  [lo, hi] ⊆ [−128, 127]. The max is skipped when lo = −128, the min when hi = 127 (a
  symmetric 8-bit register needs only the max against −127).
* Wrapping int8 / int16 lanes (mode wrap, bits ≤ 16): two's-complement addition modulo 2^8
  (2^16) is exact modulo 2^bits for bits ≤ 8 (≤ 16), so the register is summed with plain
  wrapping adds (table entries are products modulo 2^8 / 2^16) and sign-extended from `bits`
  at the end of the tile. Wrapping per MAC or once per tile gives the same residue.
* Exact int16 lanes (modes exact and clamp_tile): when every product fits int16, a run of
  `chunk` MACs (chunk·max|a·b| ≤ 32767) cannot overflow int16; each chunk is added into an
  int32 tile sum, which C clamps at the tile end. Mode exact with an unbounded tile-sum
  register does not depend on the tiling, so it uses one tile.
* The tile sums go into int32 totals (the caller checks n_tiles·max|C(reg)| < 2^31) with the
  tile-sum register applied per tile, then into the int64 result.

Every output is computed independently with the same per-output sequence of operations, so
the split of columns into blocks and of blocks into threads cannot change any result.

The inner loop (all M rows of one k-group for one column block) is LLVM IR emitted through
`numba.core.extending.intrinsic`: per row, 8 table-row addresses from the 8 codes, then for
each k the add (and clamp) on every vector of the block, vectors interleaved so that 1–4
independent dependency chains are in flight. It uses LLVM's target-independent vector
intrinsics (llvm.sadd.sat, llvm.smax, llvm.smin) on 32-byte vectors, which LLVM lowers to
vpaddsb / vpmaxsb / vpminsb on AVX2 and AVX-512 CPUs and to pairs of 16-byte SSE2 (or NEON)
instructions elsewhere, so the results are the same on every CPU; only the speed differs.
"""
from __future__ import annotations

import functools
import os

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.core.extending import intrinsic

from . import matmul_x86

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

# tile-end function C of the register (general tile-end path)
C_NONE, C_CLAMP, C_WRAP = 0, 1, 2
TS_NONE, TS_SATURATE, TS_WRAP = 0, 1, 2      # as kernels.accumulate

_I8, _I16, _I32, _I64 = (ir.IntType(w) for w in (8, 16, 32, 64))
_BYTEP = _I8.as_pointer()


def _splat(builder, value, vty):
    v = builder.insert_element(ir.Constant(vty, None), value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, ir.Constant(vty, None),
                                  ir.Constant(ir.VectorType(_I32, vty.count), [0] * vty.count))


def _lane_type(kind):
    lane = _I16 if kind == ADD16 else _I8
    return lane, ir.VectorType(lane, VEC_BYTES * 8 // lane.width)


def _array(context, builder, ty, value, ndim):
    """(data as i8*, shape, strides) of a Numba array argument."""
    arr = context.make_array(ty)(context, builder, value)
    return (builder.bitcast(arr.data, _BYTEP), cgutils.unpack_tuple(builder, arr.shape, ndim),
            cgutils.unpack_tuple(builder, arr.strides, ndim))


def _vec_at(builder, base, offset, vty):
    return builder.bitcast(builder.gep(base, [offset]), vty.as_pointer())


def _const(v):
    return ir.Constant(_I64, v)


def _switch(builder, selector, cases, emit):
    """Emit emit(case) in its own block for each case value; the first case is the default."""
    done = builder.append_basic_block("sw.done")
    blocks = {c: builder.append_basic_block(f"sw.{c}") for c in cases}
    sw = builder.switch(selector, blocks[cases[0]])
    for c in cases[1:]:
        sw.add_case(_const(c), blocks[c])
    for c, bb in blocks.items():
        builder.position_at_end(bb)
        emit(c)
        builder.branch(done)
    builder.position_at_end(done)


def _make_mac(kind):
    """The inner kernel of one kind:
    mac(reg, table, idx, k0, kend, ioff, nv, lo, hi, total, last).

    reg (M, ≥ nv·lanes) registers of the lane type; table (G, NVAL, MAX_NV·lanes)
    C-contiguous, table[j, v] = the products of code value `vbase + v` with b[k0 + j, block];
    idx (M, kend) int8/uint8 codes of the row operand, any strides, idx value ioff ↔ entry 0.
    For every row m, j = 0 … G−1 in order (k = min(k0 + j, kend − 1): table rows j beyond
    the group are zero, so the code read there does not matter):
    reg[m, :nv·lanes] = R(reg[m, :nv·lanes] + table[j, idx[m, k] − ioff, :nv·lanes]).
    last = KEEP stores the registers back; FOLD / FOLD_CLAMP end the tile instead:
    total[m, :nv·lanes] += (clamped) register, widened to total's dtype, and reg = 0.
    nv (vectors per row) is 1, 2 or 4; each (nv, last) pair is its own unrolled loop.
    """
    lane, vty = _lane_type(kind)
    lanes = vty.count
    suffix = f"v{lanes}i{lane.width}"
    lasts = (KEEP, FOLD, FOLD_CLAMP) if kind == ADD16 else (KEEP, FOLD)

    def codegen(context, builder, sig, args):
        regv, tabv, idxv, k0, kend, ioff, nv, lo, hi, totv, last = args
        rdata, (M, _), (rstride, _) = _array(context, builder, sig.args[0], regv, 2)
        tdata, _, _ = _array(context, builder, sig.args[1], tabv, 3)
        xdata, _, (xs0, xs1) = _array(context, builder, sig.args[2], idxv, 2)
        sdata, _, (sstride, _) = _array(context, builder, sig.args[9], totv, 2)
        widen = builder.sext if sig.args[2].dtype.signed else builder.zext
        wty = ir.VectorType(ir.IntType(sig.args[9].dtype.bitwidth), lanes)
        wbytes = lanes * sig.args[9].dtype.bitwidth // 8
        fty = ir.FunctionType(vty, [vty, vty])

        def fn(name):
            return cgutils.get_or_insert_function(builder.module, fty, f"llvm.{name}.{suffix}")

        lovec = _splat(builder, builder.trunc(lo, lane), vty)
        hivec = _splat(builder, builder.trunc(hi, lane), vty)
        tbase = builder.gep(tdata, [builder.mul(ioff, _const(-TV))])
        klast = builder.sub(kend, _const(1))
        koffs = []                                  # byte offset of k0 + j in an idx row
        for j in range(G):
            k = builder.add(k0, _const(j))
            k = builder.select(builder.icmp_signed("<", k, klast), k, klast)
            koffs.append(builder.mul(k, xs1))

        def mac(x, t):
            if kind in (ADD8, ADD16):
                return builder.add(x, t)
            x = builder.call(fn("sadd.sat"), [x, t])
            if kind in (SAT_LO, SAT_LOHI):
                x = builder.call(fn("smax"), [x, lovec])
            if kind == SAT_LOHI:
                x = builder.call(fn("smin"), [x, hivec])
            return x

        def rows(case):
            nvs, end = divmod(case, 4)
            with cgutils.for_range(builder, M) as loop:
                m = loop.index
                xrow = builder.gep(xdata, [builder.mul(m, xs0)])
                rrow = builder.gep(rdata, [builder.mul(m, rstride)])
                tabs = []
                for j in range(G):
                    v = widen(builder.load(builder.gep(xrow, [koffs[j]])), _I64)
                    tabs.append(builder.gep(tbase, [builder.add(builder.mul(v, _const(TV)),
                                                                _const(j * TJ))]))
                rps = [_vec_at(builder, rrow, _const(c * VEC_BYTES), vty) for c in range(nvs)]
                xs = [builder.load(p, align=1) for p in rps]
                for j in range(G):              # k ascending; the vectors interleaved
                    for c in range(nvs):
                        t = builder.load(_vec_at(builder, tabs[j], _const(c * VEC_BYTES), vty),
                                         align=1)
                        xs[c] = mac(xs[c], t)
                if end == KEEP:
                    for c in range(nvs):
                        builder.store(xs[c], rps[c], align=1)
                    return
                srow = builder.gep(sdata, [builder.mul(m, sstride)])
                for c in range(nvs):
                    x = xs[c]
                    if end == FOLD_CLAMP:
                        x = builder.call(fn("smin"), [builder.call(fn("smax"), [x, lovec]), hivec])
                    sp = _vec_at(builder, srow, _const(c * wbytes), wty)
                    builder.store(builder.add(builder.load(sp, align=1), builder.sext(x, wty)),
                                  sp, align=1)
                    builder.store(ir.Constant(vty, [0] * lanes), rps[c], align=1)

        sel = builder.add(builder.mul(nv, _const(4)), last)
        _switch(builder, sel, [4 * n + e for n in (4, 2, 1) for e in lasts], rows)
        return context.get_dummy_value()

    def typer(typingctx, reg, table, idx, k0, kend, ioff, nv, lo, hi, total, last):
        arrays = (reg, table, idx, total)
        if not (all(isinstance(x, types.Array) for x in arrays) and reg.ndim == 2
                and table.ndim == 3 and table.layout == "C" and idx.ndim == 2
                and idx.dtype in (types.int8, types.uint8) and total.ndim == 2
                and total.dtype in (types.int16, types.int32)):
            return None
        i64 = types.int64
        return types.void(reg, table, idx, i64, i64, i64, i64, i64, i64, total, i64), codegen

    return intrinsic(typer)


def _make_build(kind):
    """build(table, bp, g, gk, c0, nv, amin, nval): the product table of one k-group.

    table[j, v, :nv·lanes] = (amin + v) · bp[g + j, c0 : c0 + nv·lanes] modulo 2^(lane bits)
    for j < gk and v < nval (each entry one more b than the previous), zero for j ≥ gk.
    """
    lane, vty = _lane_type(kind)
    lanes = vty.count
    itemsize = lane.width // 8

    def codegen(context, builder, sig, args):
        tabv, bpv, g, gk, c0, nv, amin, nval = args
        tdata, _, _ = _array(context, builder, sig.args[0], tabv, 3)
        bdata, _, (bstride, _) = _array(context, builder, sig.args[1], bpv, 2)
        avec = _splat(builder, builder.trunc(amin, lane), vty)
        tvar = cgutils.alloca_once(builder, vty)
        zero = ir.Constant(vty, [0] * lanes)
        for j in range(G):
            jrow = builder.add(g, _const(j))
            brow = builder.gep(bdata, [builder.add(builder.mul(jrow, bstride),
                                                   builder.mul(c0, _const(itemsize)))])
            with builder.if_else(builder.icmp_signed("<", _const(j), gk)) as (inside, beyond):
                with inside:
                    with cgutils.for_range(builder, nv) as cl:
                        off = builder.mul(cl.index, _const(VEC_BYTES))
                        bvec = builder.load(_vec_at(builder, brow, off, vty), align=1)
                        dst = builder.gep(tdata, [builder.add(off, _const(j * TJ))])
                        t = builder.mul(bvec, avec)
                        builder.store(t, builder.bitcast(dst, vty.as_pointer()), align=1)
                        builder.store(t, tvar)
                        with cgutils.for_range(builder, builder.sub(nval, _const(1))) as vl:
                            t = builder.add(builder.load(tvar), bvec)
                            builder.store(t, tvar)
                            voff = builder.mul(builder.add(vl.index, _const(1)), _const(TV))
                            builder.store(t, _vec_at(builder, dst, voff, vty), align=1)
                with beyond:
                    with cgutils.for_range(builder, nv) as cl:
                        off = builder.add(builder.mul(cl.index, _const(VEC_BYTES)),
                                          _const(j * TJ))
                        with cgutils.for_range(builder, nval) as vl:
                            voff = builder.add(off, builder.mul(vl.index, _const(TV)))
                            builder.store(zero, _vec_at(builder, tdata, voff, vty), align=1)
        return context.get_dummy_value()

    def typer(typingctx, table, bp, g, gk, c0, nv, amin, nval):
        if not (isinstance(table, types.Array) and table.ndim == 3 and table.layout == "C"
                and isinstance(bp, types.Array) and bp.ndim == 2 and bp.dtype == table.dtype):
            return None
        i64 = types.int64
        return types.void(table, bp, i64, i64, i64, i64, i64, i64), codegen

    return intrinsic(typer)


_mac_sat, _mac_sat_lo, _mac_sat_lohi, _mac_add8, _mac_add16 = (
    _make_mac(k) for k in (SAT, SAT_LO, SAT_LOHI, ADD8, ADD16))
_build8, _build16 = _make_build(ADD8), _make_build(ADD16)


@numba.njit(cache=True, inline="always")
def _mac(kind, reg, table, idx, k0, ioff, nv, lo, hi, total, last):
    K = idx.shape[1]
    if kind == SAT:
        _mac_sat(reg, table, idx, k0, K, ioff, nv, lo, hi, total, last)
    elif kind == SAT_LO:
        _mac_sat_lo(reg, table, idx, k0, K, ioff, nv, lo, hi, total, last)
    elif kind == SAT_LOHI:
        _mac_sat_lohi(reg, table, idx, k0, K, ioff, nv, lo, hi, total, last)
    elif kind == ADD8:
        _mac_add8(reg, table, idx, k0, K, ioff, nv, lo, hi, total, last)
    else:
        _mac_add16(reg, table, idx, k0, K, ioff, nv, lo, hi, total, last)


@numba.njit(cache=True, inline="always")
def _build_table(table, bp, g, gk, c0, nv, amin, nval):
    if table.itemsize == 1:
        _build8(table, bp, g, gk, c0, nv, amin, nval)
    else:
        _build16(table, bp, g, gk, c0, nv, amin, nval)


@numba.njit(cache=True)
def _tile_end(reg, part, total, nl, chunked, cmode, lo, hi, bits, ts_mode, ts_lo, ts_hi,
              ts_bits):
    """total = TS(total + C(register)) for every row and lane n < nl; clears the register
    (and the int32 tile sum `part` when the register was flushed into it in chunks)."""
    M = reg.shape[0]
    half = np.int64(1) << (bits - 1)
    ts_half = np.int64(1) << (ts_bits - 1)
    for m in range(M):
        r, p, t = reg[m, :nl], part[m, :nl], total[m, :nl]
        if chunked:
            for n in range(nl):
                p[n] += r[n]
                r[n] = 0
        if cmode == C_NONE and ts_mode == TS_NONE and not chunked:
            for n in range(nl):
                t[n] += r[n]
                r[n] = 0
            continue
        if cmode == C_CLAMP and ts_mode == TS_NONE:
            if chunked:
                for n in range(nl):
                    t[n] += min(max(p[n], np.int32(lo)), np.int32(hi))
                    p[n] = 0
            else:
                for n in range(nl):
                    t[n] += min(max(np.int32(r[n]), np.int32(lo)), np.int32(hi))
                    r[n] = 0
            continue
        for n in range(nl):                               # general case
            if chunked:
                s = np.int64(p[n])
                p[n] = 0
            else:
                s = np.int64(r[n])
                r[n] = 0
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
def _columns(kind, blocks, idx, ioff, bp, out, transposed, vbase, nval, tile, chunk, cmode, lo,
             hi, bits, ts_mode, ts_lo, ts_hi, ts_bits, reg, part, table, total):
    """Every column block (first vector, vectors) of `blocks` through all tiles; reg, part,
    total (M, MAX_NV·lanes) and table (G, NVAL, MAX_NV·lanes) are scratch. Writes
    out[m, column] (or out[column, m] when `transposed`).

    Common case (no chunks, no tile-sum register limit, C = identity or clamp): the inner
    kernel ends each tile itself (FOLD / FOLD_CLAMP). Otherwise `_tile_end` does, in int64.
    """
    M, K = idx.shape
    ncols = out.shape[0] if transposed else out.shape[1]
    lanes = VEC_BYTES // reg.itemsize
    chunked = chunk < tile
    fused = not chunked and ts_mode == TS_NONE and cmode != C_WRAP
    fold = FOLD if cmode == C_NONE else FOLD_CLAMP
    for bi in range(blocks.shape[0]):
        c0, nv = blocks[bi, 0] * lanes, blocks[bi, 1]
        nl = nv * lanes
        for m in range(M):
            reg[m, :nl] = 0
            total[m, :nl] = 0
            part[m, :nl] = 0
        for k0 in range(0, K, tile):
            k1 = min(K, k0 + tile)
            for g in range(k0, k1, G):
                if chunked and g > k0 and (g - k0) % chunk == 0:
                    for m in range(M):                 # flush the int16 run into the tile sum
                        rm, pm = reg[m, :nl], part[m, :nl]
                        for n in range(nl):
                            pm[n] += rm[n]
                            rm[n] = 0
                _build_table(table, bp, g, min(G, k1 - g), c0, nv, vbase, nval)
                last = fold if fused and g + G >= k1 else KEEP
                _mac(kind, reg, table, idx, g, ioff, nv, lo, hi, total, last)
            if not fused:
                _tile_end(reg, part, total, nl, chunked, cmode, lo, hi, bits, ts_mode, ts_lo,
                          ts_hi, ts_bits)
        width = min(nl, ncols - c0)
        if transposed:
            for m0 in range(0, M, 16):                 # out[c0 + n, m] = total[m, n]
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


@numba.njit(cache=True)
def _scratch(M, lane_proto, total_proto):
    width = MAX_NV * (VEC_BYTES // lane_proto.itemsize)
    return (np.empty((M, width), lane_proto.dtype), np.empty((M, width), np.int32),
            np.empty((G, NVAL, width), lane_proto.dtype), np.empty((M, width), total_proto.dtype))


@numba.njit(cache=True)
def _serial(kind, blocks, idx, ioff, bp, out, transposed, vbase, nval, tile, chunk, cmode, lo,
            hi, bits, ts_mode, ts_lo, ts_hi, ts_bits, lane_proto, total_proto):
    reg, part, table, total = _scratch(idx.shape[0], lane_proto, total_proto)
    _columns(kind, blocks, idx, ioff, bp, out, transposed, vbase, nval, tile, chunk, cmode, lo,
             hi, bits, ts_mode, ts_lo, ts_hi, ts_bits, reg, part, table, total)


@numba.njit(cache=True, parallel=True)
def _parallel(kind, blocks, starts, idx, ioff, bp, out, transposed, vbase, nval, tile, chunk,
              cmode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits, lane_proto, total_proto):
    """Parts of the column blocks (blocks[starts[i]:starts[i+1]]) in parallel: each part
    builds the product tables of its own columns only."""
    for i in prange(starts.shape[0] - 1):
        reg, part, table, total = _scratch(idx.shape[0], lane_proto, total_proto)
        _columns(kind, blocks[starts[i]:starts[i + 1]], idx, ioff, bp, out, transposed, vbase,
                 nval, tile, chunk, cmode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits, reg,
                 part, table, total)


@numba.njit(cache=True)
def _value_range(x):
    """(min, max) of a 2-D integer array in one pass."""
    lo = np.int64(x[0, 0])
    hi = lo
    for i in range(x.shape[0]):
        row = x[i]
        rlo, rhi = row[0], row[0]
        for v in row:
            rlo = min(rlo, v)
            rhi = max(rhi, v)
        lo = min(lo, np.int64(rlo))
        hi = max(hi, np.int64(rhi))
    return lo, hi


@numba.njit(cache=True)
def _to_index(a, amin, idx):
    """idx[m, k] = a[m, k] − amin as uint8 (codes of a range of at most NVAL values)."""
    M, K = a.shape
    for m in range(M):
        am, im = a[m], idx[m]
        for k in range(K):
            im[k] = np.uint8(np.int64(am[k]) - amin)


@numba.njit(cache=True)
def _pad_lanes(x, transpose, dst):
    """dst[k, n] = x[k, n] (or x[n, k] when `transpose`) modulo 2^(dst bits); the padding
    lanes stay zero."""
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
INT32_MAX = (1 << 31) - 1


@functools.lru_cache(maxsize=256)
def _blocks(n_vec, parts):
    """Column blocks (first vector, vectors) of 4, 2 or 1 vectors covering n_vec vectors,
    cut into `parts` contiguous runs of nearly equal width; returns (blocks, starts)."""
    blocks, starts = [], [0]
    edges = [round(i * n_vec / parts) for i in range(parts + 1)]
    for p in range(parts):
        v = edges[p]
        while v < edges[p + 1]:
            nv = next(n for n in (4, 2, 1) if v + n <= edges[p + 1])
            blocks.append((v, nv))
            v += nv
        starts.append(len(blocks))
    b, st = np.array(blocks, np.int64).reshape(-1, 2), np.array(starts, np.int64)
    b.flags.writeable = st.flags.writeable = False
    return b, st


def _plan(acc, amin, amax, bmin, bmax, K):
    """(kind, lane dtype, tile, chunk, cmode, TS active) for a call, or None if no fast kernel
    computes it exactly."""
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
        return kind, np.int8, tile, tile, C_NONE, max(-lo, hi)
    if acc.mode == "wrap":
        if acc.bits > 16:
            return None
        if acc.bits <= 8:
            return ADD8, np.int8, tile, tile, (C_NONE if acc.bits == 8 else C_WRAP), 1 << (acc.bits - 1)
        return ADD16, np.int16, tile, tile, (C_NONE if acc.bits == 16 else C_WRAP), 1 << (acc.bits - 1)
    # exact or clamp_tile: exact tile sums from int16 runs of `chunk` MACs
    chunk = (32767 // maxp) // G * G
    if chunk < G:
        return None
    if acc.mode == "exact" and acc.tile_sum_bits is None:
        tile = K                                  # exact sums: the tiling does not matter
    if tile * maxp > INT32_MAX:
        return None
    chunk = min(chunk, -(-tile // G) * G)
    if acc.mode == "clamp_tile":
        cmode = C_CLAMP if tile * maxp > min(-lo, hi) else C_NONE
        return ADD16, np.int16, tile, chunk, cmode, min(max(-lo, hi), tile * maxp)
    return ADD16, np.int16, tile, chunk, C_NONE, tile * maxp


def _cost(rows, lanes, lane_bytes, transpose):
    """Estimated time of one orientation, in units of one row's MACs on one vector of one
    k: every column vector costs its rows' MACs plus its table entries (a table store costs
    about as much as a row's add); the transposed orientation also transposes the small
    operand and the result (about 1.5 units per element)."""
    lanes_per_vec = VEC_BYTES // lane_bytes
    n_vec = -(-lanes // lanes_per_vec)
    extra = 1.5 * rows * lanes / lanes_per_vec if transpose else 0.0
    return n_vec * (rows + 1.5 * NVAL) + extra


def _ts_plan(acc, n_tiles, max_part):
    """(ts_mode, ts_lo, ts_hi) of the tile-sum register, TS_NONE when it can never overflow,
    or None when the int32 totals could not hold it."""
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


PAIRS = matmul_x86.available()      # AVX2: exact tile sums from pmaddubsw pairs


def _pairs_matmul(a2, b, acc, amin, amax, bmin, bmax):
    """exact / clamp_tile / wrap through matmul_x86 (lanes over the columns of b), or None."""
    M, K = a2.shape
    N = b.shape[1]
    if amin >= 0 and amax <= 255 and bmin >= -128 and bmax <= 127:
        unsigned_rows, umax, smax = True, amax, max(-bmin, bmax)
    elif amin >= -128 and amax <= 127 and bmax - bmin <= 255:
        unsigned_rows, umax, smax = False, bmax - bmin, max(-amin, amax)
    else:
        return None
    if 2 * umax * smax > 32767:                   # pmaddubsw would saturate a pair
        return None
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
    if not unsigned_rows and tile * max(-amin, amax) * -bmin > 32767:
        return None                               # the row correction must fit int16
    n_tiles = -(-K // tile)
    ts = _ts_plan(acc, n_tiles, max_part)
    if ts is None:
        return None
    ts_mode, ts_lo, ts_hi = ts
    row_dtype = np.uint8 if unsigned_rows else np.int8
    if a2.dtype.itemsize == 1 and a2.strides[1] == 1:
        a2 = a2.view(row_dtype)                   # the codes fit row_dtype: same bytes
    else:
        a2 = np.ascontiguousarray(a2, dtype=row_dtype)
    ppt = (tile + 1) // 2
    nblk = -(-N // matmul_x86.BLOCK)
    bq = np.zeros((n_tiles * ppt, 2 * nblk * matmul_x86.BLOCK),
                  np.int8 if unsigned_rows else np.uint8)
    matmul_x86.pack_pairs(b, 0 if unsigned_rows else bmin, tile, bq)
    if unsigned_rows:
        corr = np.zeros((1, 1), np.int16)
    else:
        corr = np.empty((M, n_tiles), np.int16)
        matmul_x86.row_corrections(a2, bmin, tile, corr)
    out = np.empty((M, N), np.int64)
    args = (unsigned_rows, a2, bq, corr, out, tile, cmode, lo, hi, min(acc.bits, 16), ts_mode,
            ts_lo, ts_hi, min(acc.tile_sum_bits or 32, 32))
    parts = min(numba.get_num_threads(), nblk) if M * K * N >= PARALLEL_MIN_MACS else 1
    if parts > 1:
        matmul_x86.parallel(parts, *args)
    else:
        matmul_x86.serial(*args)
    return out


def fast_int_matmul(a2, b, acc):
    """a2 (M, K) · b (K, N) through `acc` as int64 (M, N), or None when no fast kernel applies
    (then the caller runs the generic kernel). Untraced calls only: no event counts.

    Orientation: the row operand (whose codes index the product table) is a2 and the lanes
    run over the columns of b, or (when cheaper, or the only exact choice) the row operand is
    bᵀ and the lanes run over the rows of a2: out = (bᵀ·a2ᵀ)ᵀ, the same per-output sequence.
    """
    if KERNELS == "generic":
        return None
    M, K = a2.shape
    N = b.shape[1]
    if M == 0 or N == 0 or K == 0:
        return None
    amin, amax = _value_range(a2)
    bmin, bmax = _value_range(b)
    if PAIRS and acc.mode != "saturate":
        out = _pairs_matmul(a2, b, acc, amin, amax, bmin, bmax)
        if out is not None:
            return out
    plan_n = _plan(acc, amin, amax, bmin, bmax, K)
    plan_t = _plan(acc, bmin, bmax, amin, amax, K)
    if plan_n is not None and plan_t is not None:
        lb = np.dtype(plan_n[1]).itemsize
        transpose = _cost(N, M, lb, True) < _cost(M, N, lb, False)
    elif plan_n is None and plan_t is None:
        return None
    else:
        transpose = plan_n is None
    if transpose:
        rows_op, lanes_op, rows, lanes, vmin, vmax = b.T, a2, N, M, bmin, bmax
        plan = plan_t
    else:
        rows_op, lanes_op, rows, lanes, vmin, vmax = a2, b, M, N, amin, amax
        plan = plan_n
    kind, lane_dtype, tile, chunk, cmode, max_part = plan
    n_tiles = -(-K // tile)
    lo, hi = acc.range
    ts = _ts_plan(acc, n_tiles, max_part)
    if ts is None:
        return None
    ts_mode, ts_lo, ts_hi = ts

    if rows_op.dtype.itemsize == 1:
        idx, ioff = rows_op, vmin                  # the codes index the table directly
    else:
        idx, ioff = np.empty((rows, K), np.uint8), 0
        _to_index(rows_op, vmin, idx)
    lanes_per_vec = VEC_BYTES // np.dtype(lane_dtype).itemsize
    n_vec = -(-lanes // lanes_per_vec)
    # the lane operand modulo 2^(lane bits): every table entry is then the product modulo
    # 2^(lane bits), which is the product itself wherever the plan needs it exact
    bp = np.zeros((K, n_vec * lanes_per_vec), lane_dtype)
    _pad_lanes(lanes_op, transpose, bp)
    out = np.empty((M, N), np.int64)
    fused = chunk >= tile and ts_mode == TS_NONE and cmode != C_WRAP
    total_dtype = np.int16 if (fused and lane_dtype == np.int8
                               and n_tiles * max_part <= 32767) else np.int32
    args = (idx, ioff, bp, out, transpose, vmin, vmax - vmin + 1, tile, chunk, cmode, lo, hi,
            acc.bits, ts_mode, ts_lo, ts_hi, acc.tile_sum_bits or 32, np.empty(0, lane_dtype),
            np.empty(0, total_dtype))
    parts = numba.get_num_threads() if M * K * N >= PARALLEL_MIN_MACS else 1
    parts = max(1, min(parts, n_vec))
    blocks, starts = _blocks(n_vec, parts)
    if parts > 1:
        _parallel(kind, blocks, starts, *args)
    else:
        _serial(kind, blocks, *args)
    return out
