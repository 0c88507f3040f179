"""Exact tile sums with x86 pmaddubsw (AVX2): the order-independent modes exact, clamp_tile, wrap.

Only the order of additions inside a tile is free in these modes (NUMERICS.md §4: R is the
identity or a wrap, both homomorphisms of the integers modulo 2^16), so a tile sum may be
formed from pairs of products:

    pmaddubsw(u, s)[i] = sat16(u[2i]·s[2i] + u[2i+1]·s[2i+1])    u: 32 uint8, s: 32 int8

The pair sum is exact when 2·max|u|·max|s| ≤ 32767 (no saturation). Tile sums are then
accumulated with wrapping int16 additions, exact modulo 2^16; the tile sum is exact whenever
its true value fits int16 (tile·max|a·b| ≤ 32767), and its residue modulo 2^bits is exact for
wrap (bits ≤ 16) in any case.

Layout: lanes are the output columns (16 int16 lanes per vector, two vectors = a block of 32
columns); `bq` holds b in pair rows, bq[r, 2n + i] = b[k + i, n] for the pair (k, k + 1) of
row r (each tile padded to an even length with zero rows). The row operand a is read as one
16-bit pair (a[m, k], a[m, k + 1]) per MAC pair and broadcast to every lane. One of the two
pmaddubsw operands must be unsigned:

* variant A (a ≥ 0, a ≤ 255): u = broadcast a, s = b;
* variant B (a fits int8): u = b − bmin (packed so), s = broadcast a; the tile sum then is
  Σ a·b − bmin·Σ_k a[m, k], corrected at the tile end with corr[m, t] = bmin·Σ_{k∈t} a[m, k].

Each block of 4 rows keeps its 4 × 2 accumulators in registers for a whole tile; at the tile end
C (clamp to [lo, hi] or wrap to `bits`) and the tile-sum register (saturate / wrap) are applied
in int32, and after the last tile the totals are written as int64. Every output is the same
function of its own row and column, so blocks and threads cannot change results.

Needs AVX2 (llvm.x86.avx2.pmadd.ub.sw); `available()` says whether the host has it.
"""
from __future__ import annotations

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.core.extending import intrinsic

BLOCK = 32          # output columns per block: two vectors of 16 int16 lanes
ROWS = 4            # rows per register block
C_NONE, C_CLAMP, C_WRAP = 0, 1, 2
TS_NONE, TS_SATURATE, TS_WRAP = 0, 1, 2

_I8, _I16, _I32, _I64 = (ir.IntType(w) for w in (8, 16, 32, 64))
_V32I8 = ir.VectorType(_I8, 32)
_V16I16 = ir.VectorType(_I16, 16)
_V16I32 = ir.VectorType(_I32, 16)
_V16I64 = ir.VectorType(_I64, 16)


def available() -> bool:
    """True on x86-64 hosts with AVX2 (where llvm.x86.avx2.pmadd.ub.sw can be selected)."""
    try:
        feats = llvm.get_host_cpu_features()
    except RuntimeError:                      # not supported on this platform
        return False
    return bool(feats.get("avx2")) and llvm.get_process_triple().startswith("x86_64")


def _c(v, t=_I64):
    return ir.Constant(t, v)


def _splat(builder, value, vty):
    v = builder.insert_element(ir.Constant(vty, None), value, _c(0, _I32))
    return builder.shuffle_vector(v, ir.Constant(vty, None),
                                  ir.Constant(ir.VectorType(_I32, vty.count), [0] * vty.count))


def _array(context, builder, ty, value, ndim):
    arr = context.make_array(ty)(context, builder, value)
    return (builder.bitcast(arr.data, _I8.as_pointer()),
            cgutils.unpack_tuple(builder, arr.shape, ndim),
            cgutils.unpack_tuple(builder, arr.strides, ndim))


def _ptr(builder, base, offset, ty):
    return builder.bitcast(builder.gep(base, [offset]), ty.as_pointer())


def _switch(builder, selector, cases, emit):
    """Emit emit(case) in its own block for each case value; the first case is the default."""
    done = builder.append_basic_block("sw.done")
    blocks = {c: builder.append_basic_block(f"sw.{c}") for c in cases}
    sw = builder.switch(selector, blocks[cases[0]])
    for c in cases[1:]:
        sw.add_case(_c(c), blocks[c])
    for c, bb in blocks.items():
        builder.position_at_end(bb)
        emit(c)
        builder.branch(done)
    builder.position_at_end(done)


def _min(builder, x, y):
    return builder.select(builder.icmp_signed("<", x, y), x, y)


def _make_block(unsigned_rows):
    """block(a, bq, corr, out, tot, c0, tile, cmode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits):
    columns c0 … c0 + 31 of out (those < out.shape[1]) for every row (see the module doc)."""

    def codegen(context, builder, sig, args):
        (av, bqv, corrv, outv, totv, c0, tile, cmode, lo, hi, bits, ts_mode, ts_lo, ts_hi,
         ts_bits) = args
        adata, (M, K), (as0, _) = _array(context, builder, sig.args[0], av, 2)
        bdata, _, (bs0, _) = _array(context, builder, sig.args[1], bqv, 2)
        cdata, _, (cs0, cs1) = _array(context, builder, sig.args[2], corrv, 2)
        odata, (_, N), (os0, _) = _array(context, builder, sig.args[3], outv, 2)
        tdata, _, _ = _array(context, builder, sig.args[4], totv, 2)   # (ROWS, BLOCK) int32
        pmadd = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_V16I16, [_V32I8, _V32I8]), "llvm.x86.avx2.pmadd.ub.sw")
        fns = {}

        def vfn(name, vty):
            key = (name, vty.count, vty.element.width)
            if key not in fns:
                fns[key] = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(vty, [vty, vty]),
                    f"llvm.{name}.v{vty.count}i{vty.element.width}")
            return fns[key]

        lo16 = _splat(builder, builder.trunc(lo, _I16), _V16I16)
        hi16 = _splat(builder, builder.trunc(hi, _I16), _V16I16)
        csh = _splat(builder, builder.trunc(builder.sub(_c(16), bits), _I16), _V16I16)
        tslo = _splat(builder, builder.trunc(ts_lo, _I32), _V16I32)
        tshi = _splat(builder, builder.trunc(ts_hi, _I32), _V16I32)
        tsh = _splat(builder, builder.trunc(builder.sub(_c(32), ts_bits), _I32), _V16I32)
        ntiles = builder.sdiv(builder.add(K, builder.sub(tile, _c(1))), tile)
        ppt = builder.sdiv(builder.add(tile, _c(1)), _c(2))          # pair rows per full tile
        klast = builder.sub(K, _c(1))
        width = _min(builder, builder.sub(N, c0), _c(BLOCK))
        bcol = builder.mul(c0, _c(2))                                # byte column in bq
        accs = [[cgutils.alloca_once(builder, _V16I16) for _ in range(2)] for _ in range(ROWS)]
        zero16 = ir.Constant(_V16I16, [0] * 16)

        def rows(m0, R, safe):
            """Rows m0 … m0+R-1; `safe` reads the second code of a pair byte-wise (in bounds)."""
            for r in range(R):
                for c in range(2):
                    builder.store(ir.Constant(_V16I32, [0] * 16),
                                  _ptr(builder, tdata, _c((r * BLOCK + 16 * c) * 4), _V16I32))
            arows = [builder.gep(adata, [builder.mul(builder.add(m0, _c(r)), as0)])
                     for r in range(R)]
            with cgutils.for_range(builder, ntiles) as tl:
                t = tl.index
                k0 = builder.mul(t, tile)
                ln = _min(builder, tile, builder.sub(K, k0))
                npair = builder.sdiv(builder.add(ln, _c(1)), _c(2))
                prow = builder.mul(t, ppt)
                for r in range(R):
                    for c in range(2):
                        builder.store(zero16, accs[r][c])
                with cgutils.for_range(builder, npair) as pl:
                    p = pl.index
                    k = builder.add(k0, builder.mul(p, _c(2)))
                    brow = builder.gep(bdata, [builder.add(builder.mul(builder.add(prow, p), bs0),
                                                           bcol)])
                    bv = [builder.load(_ptr(builder, brow, _c(32 * c), _V32I8), align=1)
                          for c in range(2)]
                    for r in range(R):
                        if safe:
                            x0 = builder.zext(builder.load(builder.gep(arows[r], [k])), _I16)
                            k1 = _min(builder, builder.add(k, _c(1)), klast)
                            x1 = builder.zext(builder.load(builder.gep(arows[r], [k1])), _I16)
                            w = builder.or_(x0, builder.shl(x1, _c(8, _I16)))
                        else:
                            w = builder.load(_ptr(builder, arows[r], k, _I16), align=1)
                        wv = builder.bitcast(_splat(builder, w, _V16I16), _V32I8)
                        for c in range(2):
                            pm = (builder.call(pmadd, [wv, bv[c]]) if unsigned_rows
                                  else builder.call(pmadd, [bv[c], wv]))
                            builder.store(builder.add(builder.load(accs[r][c]), pm), accs[r][c])
                # tile end: correction, C, tile-sum register (one branch per combination)
                corrs = []
                for r in range(R):
                    if unsigned_rows:
                        corrs.append(None)
                        continue
                    cp = builder.gep(cdata, [builder.add(builder.mul(builder.add(m0, _c(r)), cs0),
                                                         builder.mul(t, cs1))])
                    corrs.append(_splat(builder, builder.load(builder.bitcast(cp, _I16.as_pointer())),
                                        _V16I16))

                def tile_end(case):
                    cm, tm = divmod(case, 3)
                    for r in range(R):
                        for c in range(2):
                            x = builder.load(accs[r][c])
                            if corrs[r] is not None:
                                x = builder.add(x, corrs[r])
                            if cm == C_CLAMP:
                                x = builder.call(vfn("smin", _V16I16),
                                                 [builder.call(vfn("smax", _V16I16), [x, lo16]), hi16])
                            elif cm == C_WRAP:
                                x = builder.ashr(builder.shl(x, csh), csh)
                            tp = _ptr(builder, tdata, _c((r * BLOCK + 16 * c) * 4), _V16I32)
                            s = builder.add(builder.load(tp), builder.sext(x, _V16I32))
                            if tm == TS_SATURATE:
                                s = builder.call(vfn("smin", _V16I32),
                                                 [builder.call(vfn("smax", _V16I32), [s, tslo]), tshi])
                            elif tm == TS_WRAP:
                                s = builder.ashr(builder.shl(s, tsh), tsh)
                            builder.store(s, tp)

                _switch(builder, builder.add(builder.mul(cmode, _c(3)), ts_mode),
                        [3 * cm + tm for cm in (C_NONE, C_CLAMP, C_WRAP)
                         for tm in (TS_NONE, TS_SATURATE, TS_WRAP)], tile_end)
            # the totals, as int64, into out[m, c0 : c0 + width]
            full = builder.icmp_signed("==", width, _c(BLOCK))
            with builder.if_else(full) as (whole, part):
                with whole:
                    for r in range(R):
                        orow = builder.gep(odata, [builder.add(builder.mul(builder.add(m0, _c(r)), os0),
                                                               builder.mul(c0, _c(8)))])
                        for c in range(2):
                            v = builder.load(_ptr(builder, tdata, _c((r * BLOCK + 16 * c) * 4), _V16I32))
                            builder.store(builder.sext(v, _V16I64), _ptr(builder, orow, _c(128 * c), _V16I64),
                                          align=1)
                with part:
                    for r in range(R):
                        orow = builder.gep(odata, [builder.add(builder.mul(builder.add(m0, _c(r)), os0),
                                                               builder.mul(c0, _c(8)))])
                        with cgutils.for_range(builder, width) as ll:
                            v = builder.load(_ptr(builder, tdata,
                                                  builder.mul(builder.add(ll.index, _c(r * BLOCK)), _c(4)),
                                                  _I32))
                            builder.store(builder.sext(v, _I64),
                                          _ptr(builder, orow, builder.mul(ll.index, _c(8)), _I64))

        # rows in blocks of ROWS, then single rows; the very last row reads pairs byte-wise
        nfull = builder.sdiv(builder.sub(M, _c(1)), _c(ROWS))
        with cgutils.for_range(builder, nfull) as bl:
            rows(builder.mul(bl.index, _c(ROWS)), ROWS, False)
        with cgutils.for_range(builder, builder.sub(builder.sub(M, _c(1)),
                                                    builder.mul(nfull, _c(ROWS)))) as sl:
            rows(builder.add(builder.mul(nfull, _c(ROWS)), sl.index), 1, False)
        rows(builder.sub(M, _c(1)), 1, True)
        return context.get_dummy_value()

    def typer(typingctx, a, bq, corr, out, tot, c0, tile, cmode, lo, hi, bits, ts_mode, ts_lo,
              ts_hi, ts_bits):
        ok = (isinstance(a, types.Array) and a.ndim == 2 and a.dtype in (types.int8, types.uint8)
              and isinstance(bq, types.Array) and bq.ndim == 2
              and bq.dtype in (types.int8, types.uint8)
              and isinstance(corr, types.Array) and corr.ndim == 2 and corr.dtype == types.int16
              and isinstance(out, types.Array) and out.ndim == 2 and out.dtype == types.int64
              and isinstance(tot, types.Array) and tot.dtype == types.int32 and tot.layout == "C")
        if not ok:
            return None
        i64 = types.int64
        return types.void(a, bq, corr, out, tot, *([i64] * 10)), codegen

    return intrinsic(typer)


_block_unsigned_rows = _make_block(True)
_block_signed_rows = _make_block(False)


@numba.njit(cache=True)
def _run_blocks(b0, b1, unsigned_rows, a, bq, corr, out, tile, cmode, lo, hi, bits, ts_mode,
                ts_lo, ts_hi, ts_bits):
    tot = np.empty((ROWS, BLOCK), np.int32)
    for blk in range(b0, b1):
        if unsigned_rows:
            _block_unsigned_rows(a, bq, corr, out, tot, blk * BLOCK, tile, cmode, lo, hi, bits,
                                 ts_mode, ts_lo, ts_hi, ts_bits)
        else:
            _block_signed_rows(a, bq, corr, out, tot, blk * BLOCK, tile, cmode, lo, hi, bits,
                               ts_mode, ts_lo, ts_hi, ts_bits)


@numba.njit(cache=True)
def serial(unsigned_rows, a, bq, corr, out, tile, cmode, lo, hi, bits, ts_mode, ts_lo, ts_hi,
           ts_bits):
    nblk = -(-out.shape[1] // BLOCK)
    _run_blocks(0, nblk, unsigned_rows, a, bq, corr, out, tile, cmode, lo, hi, bits, ts_mode,
                ts_lo, ts_hi, ts_bits)


@numba.njit(cache=True, parallel=True)
def parallel(parts, unsigned_rows, a, bq, corr, out, tile, cmode, lo, hi, bits, ts_mode, ts_lo,
             ts_hi, ts_bits):
    """Column blocks cut into `parts` contiguous runs, one per task."""
    nblk = -(-out.shape[1] // BLOCK)
    for i in prange(parts):
        _run_blocks(i * nblk // parts, (i + 1) * nblk // parts, unsigned_rows, a, bq, corr, out,
                    tile, cmode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits)


@numba.njit(cache=True)
def pack_pairs(b, boff, tile, bq):
    """bq[t·ppt + p, 2n + i] = b[t·tile + 2p + i, n] − boff (0 past the tile's end or past N),
    ppt = ceil(tile / 2) pair rows per tile."""
    K, N = b.shape
    T = bq.dtype.type
    ppt = (tile + 1) // 2
    for k0 in range(0, K, tile):
        ln = min(tile, K - k0)
        r0 = (k0 // tile) * ppt
        for p in range((ln + 1) // 2):
            k = k0 + 2 * p
            dst = bq[r0 + p]
            x0 = b[k]
            if 2 * p + 1 < ln:
                x1 = b[k + 1]
                for n in range(N):
                    dst[2 * n] = T(x0[n] - boff)
                    dst[2 * n + 1] = T(x1[n] - boff)
            else:
                for n in range(N):
                    dst[2 * n] = T(x0[n] - boff)
                    dst[2 * n + 1] = 0


@numba.njit(cache=True)
def row_corrections(a, factor, tile, corr):
    """corr[m, t] = factor · Σ_{k in tile t} a[m, k] (int16; the caller bounds it)."""
    M, K = a.shape
    for m in range(M):
        for t in range(corr.shape[1]):
            seg = a[m, t * tile:min(K, (t + 1) * tile)]
            s = np.int32(0)
            for k in range(seg.size):
                s += np.int32(seg[k])
            corr[m, t] = np.int16(factor * s)
