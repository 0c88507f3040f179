"""Exact tile sums with x86 pmaddubsw (AVX2): the order-independent modes exact, clamp_tile, wrap.

In these modes only the value of each tile sum matters, not the order of its additions
(NUMERICS.md §4: R is the identity, or a wrap, which is addition modulo 2^bits), so a tile sum
may be formed from pairs of products:

    pmaddubsw(u, s)[i] = sat16(u[2i]·s[2i] + u[2i+1]·s[2i+1])    u: 32 uint8, s: 32 int8

A pair sum is exact when 2·max|u|·max|s| ≤ 32767 (no saturation). Tile sums are accumulated
with wrapping int16 additions, exact modulo 2^16: exact when the true tile sum fits int16
(tile·max|a·b| ≤ 32767), and exact modulo 2^bits for wrap (bits ≤ 16) in any case.

Layout: lanes are output columns (16 int16 lanes per vector, two vectors = a block of 32
columns). Each block first packs its 32 columns of b into pair rows, pk[r, 2n + i] = b[k + i, n]
for the pair (k, k + 1) of row r, each tile padded to an even length with a zero row (so the
packing is shared out among the threads with the blocks, and stays in L1/L2). The row operand a is read as one
16-bit pair (a[m, k], a[m, k + 1]) per MAC pair and broadcast to every lane (at an odd tile
end the second code belongs to the next tile and meets the zero row). The first pmaddubsw operand
must be unsigned:

the row codes u = a (when a ≥ 0), or u = a − amin (when a has negative codes), are
broadcast; s = b (int8). With the offset the tile sum is Σ a·b − amin·Σ_k b[k, n] and gets
corr[t, n] = amin·Σ_{k∈t} b[k, n] (per tile and column, modulo 2^16) added at the tile end.

Blocks of 4 rows × 32 columns keep their 8 accumulators in registers for a whole tile; at the
tile end C (clamp to [lo, hi], or wrap to `bits`) and the tile-sum register (saturate / wrap)
are applied to the totals (int16 when n_tiles·max|C(tile sum)| fits int16, else int32), and
after the last tile the totals are written as int64. Every output is the same function of
its own row and column, so the blocks and the threads cannot change any result.

Needs AVX2 (llvm.x86.avx2.pmadd.ub.sw); `available()` says whether the host has it.
"""
from __future__ import annotations

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba.core.extending import intrinsic

from . import llvm_ir as L
from . import workers
from .accumulate import C_CLAMP, C_NONE, C_WRAP, TS_NONE, TS_SATURATE, TS_WRAP

NVEC = 2            # vectors of 16 int16 lanes per block
BLOCK = 16 * NVEC   # output columns per block
ROWS = 4            # rows per register block (ROWS × NVEC accumulators in registers)

_V32I8 = L.vec(L.I8, 32)
_V16I16 = L.vec(L.I16, 16)
_V16I64 = L.vec(L.I64, 16)


def available() -> bool:
    """True on x86-64 hosts with AVX2 (where llvm.x86.avx2.pmadd.ub.sw can be selected)."""
    try:
        feats = llvm.get_host_cpu_features()
    except RuntimeError:                      # not supported on this platform
        return False
    return bool(feats.get("avx2")) and llvm.get_process_triple().startswith("x86_64")


def _make_block(corrected):
    """block(u, us0, M, K, bsrc, bs, pk, pc, amin, out, os0, N, tot, tot_bytes, c0, tile, cmode,
    lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits): columns c0 … c0 + 31 (those < N) of out
    (int64, row stride os0 bytes) for every row. u: uint8 row codes (row stride us0); bsrc:
    the 32 int8 columns of b of this block (row k at bsrc + k·bs, 32 readable bytes); pk, pc:
    scratch for this block's pair rows (64 bytes each) and (`corrected` only) its column
    corrections amin·Σ_{k∈t} b[k, n] (64 bytes per tile); tot: scratch for ROWS × BLOCK totals
    of tot_bytes (2 or 4) each. Addresses and strides are int64 byte values.

    The block first packs its pair rows (and corrections) from b, then runs the rows."""

    def codegen(context, builder, sig, args):
        (a, as0, M, K, bsrc, bs, pk, pc, amin, out, os0, N, tot, tot_bytes, c0, tile, cmode, lo,
         hi, bits, ts_mode, ts_lo, ts_hi, ts_bits) = args              # a: the codes u
        b = builder
        pmadd = L.cgutils.get_or_insert_function(
            b.module, ir.FunctionType(_V16I16, [_V32I8, _V32I8]), "llvm.x86.avx2.pmadd.ub.sw")
        lo16 = L.splat(b, b.trunc(lo, L.I16), _V16I16)
        hi16 = L.splat(b, b.trunc(hi, L.I16), _V16I16)
        csh = L.splat(b, b.trunc(b.sub(L.const(16), bits), L.I16), _V16I16)
        ntiles = b.sdiv(b.add(K, b.sub(tile, L.const(1))), tile)
        ppt = b.sdiv(b.add(tile, L.const(1)), L.const(2))           # pair rows per full tile
        klast = b.sub(K, L.const(1))
        width = L.smin(b, b.sub(N, c0), L.const(BLOCK))
        accs = [[L.alloca(b, _V16I16) for _ in range(NVEC)] for _ in range(ROWS)]

        # pack: pk row (t·ppt + p) = b rows k, k+1 (k = t·tile + 2p) interleaved column by
        # column; a row past the tile's end reads as zeros
        famin = L.splat(b, b.trunc(amin, L.I16), _V16I16)
        sums = [L.alloca(b, _V16I16) for _ in range(NVEC)]
        with L.for_range(b, ntiles) as tl:
            t = tl.index
            k0 = b.mul(t, tile)
            ln = L.smin(b, tile, b.sub(K, k0))
            for c in range(NVEC):
                b.store(L.zeros(_V16I16), sums[c])
            with L.for_range(b, b.sdiv(b.add(ln, L.const(1)), L.const(2))) as pl:
                p2 = b.mul(pl.index, L.const(2))
                k = b.add(k0, p2)
                x0 = L.load(b, bsrc, b.mul(k, bs), _V32I8)
                x1 = L.load(b, bsrc, b.mul(L.smin(b, b.add(k, L.const(1)), klast), bs), _V32I8)
                x1 = b.select(b.icmp_signed("<", b.add(p2, L.const(1)), ln), x1, L.zeros(_V32I8))
                prow = b.add(pk, b.mul(b.add(b.mul(t, ppt), pl.index), L.const(64)))
                for c in range(NVEC):
                    mask = [v for i in range(16) for v in (16 * c + i, 32 + 16 * c + i)]
                    L.store(b, b.shuffle_vector(x0, x1, ir.Constant(L.vec(L.I32, 32), mask)),
                            prow, L.const(32 * c))
                    if corrected:
                        sel = ir.Constant(L.vec(L.I32, 16), list(range(16 * c, 16 * c + 16)))
                        h0 = b.sext(b.shuffle_vector(x0, ir.Constant(_V32I8, None), sel), _V16I16)
                        h1 = b.sext(b.shuffle_vector(x1, ir.Constant(_V32I8, None), sel), _V16I16)
                        b.store(b.add(b.load(sums[c]), b.add(h0, h1)), sums[c])
            if corrected:
                for c in range(NVEC):
                    L.store(b, b.mul(b.load(sums[c]), famin), pc,
                            b.add(b.mul(t, L.const(64)), L.const(32 * c)))

        def rows(m0, R, safe):
            """Rows m0 … m0+R−1; `safe` reads the second code of a pair byte-wise, clamped to
            the row (the very last row, where a 16-bit read could pass the array's end)."""
            def zero_totals(wb):
                wty = L.vec(ir.IntType(8 * wb), 16)
                for r in range(R):
                    for c in range(NVEC):
                        L.store(b, L.zeros(wty), tot, L.const((r * BLOCK + 16 * c) * wb))
            L.if_else(b, b.icmp_signed("==", tot_bytes, L.const(2)),
                      lambda: zero_totals(2), lambda: zero_totals(4))
            arows = [b.add(a, b.mul(b.add(m0, L.const(r)), as0)) for r in range(R)]
            with L.for_range(b, ntiles) as tl:
                t = tl.index
                k0 = b.mul(t, tile)
                npair = b.sdiv(b.add(L.smin(b, tile, b.sub(K, k0)), L.const(1)), L.const(2))
                prow = b.mul(t, ppt)
                for r in range(R):
                    for c in range(NVEC):
                        b.store(L.zeros(_V16I16), accs[r][c])
                with L.for_range(b, npair) as pl:
                    k = b.add(k0, b.mul(pl.index, L.const(2)))
                    brow = b.add(pk, b.mul(b.add(prow, pl.index), L.const(64)))
                    bv = [L.load(b, brow, L.const(32 * c), _V32I8) for c in range(NVEC)]
                    for r in range(R):
                        if safe:
                            x0 = b.zext(L.load(b, arows[r], k, L.I8), L.I16)
                            k1 = L.smin(b, b.add(k, L.const(1)), klast)
                            x1 = b.zext(L.load(b, arows[r], k1, L.I8), L.I16)
                            w = b.or_(x0, b.shl(x1, L.const(8, L.I16)))
                        else:
                            w = L.load(b, arows[r], k, L.I16)
                        wv = b.bitcast(L.splat(b, w, _V16I16), _V32I8)
                        for c in range(NVEC):
                            pm = b.call(pmadd, [wv, bv[c]])
                            b.store(b.add(b.load(accs[r][c]), pm), accs[r][c])
                corrs = [None] * NVEC
                if corrected:
                    crow = b.add(pc, b.mul(t, L.const(64)))
                    corrs = [L.load(b, crow, L.const(32 * c), _V16I16) for c in range(NVEC)]

                def tile_end(case):          # C, then the tile-sum register, into the totals
                    wb, cm, tm = case // 9, case // 3 % 3, case % 3
                    wty = L.vec(ir.IntType(8 * wb), 16)
                    tslo = L.splat(b, b.trunc(ts_lo, wty.element), wty)
                    tshi = L.splat(b, b.trunc(ts_hi, wty.element), wty)
                    tsh = L.splat(b, b.trunc(b.sub(L.const(8 * wb), ts_bits), wty.element), wty)
                    for r in range(R):
                        for c in range(NVEC):
                            x = b.load(accs[r][c])
                            if corrs[c] is not None:
                                x = b.add(x, corrs[c])
                            if cm == C_CLAMP:
                                x = b.call(L.vector_fn(b, "smin", _V16I16),
                                           [b.call(L.vector_fn(b, "smax", _V16I16), [x, lo16]), hi16])
                            elif cm == C_WRAP:
                                x = b.ashr(b.shl(x, csh), csh)
                            off = L.const((r * BLOCK + 16 * c) * wb)
                            s = b.add(L.load(b, tot, off, wty), x if wb == 2 else b.sext(x, wty))
                            if tm == TS_SATURATE:
                                s = b.call(L.vector_fn(b, "smin", wty),
                                           [b.call(L.vector_fn(b, "smax", wty), [s, tslo]), tshi])
                            elif tm == TS_WRAP:
                                s = b.ashr(b.shl(s, tsh), tsh)
                            L.store(b, s, tot, off)

                sel = b.add(b.mul(tot_bytes, L.const(9)), b.add(b.mul(cmode, L.const(3)), ts_mode))
                L.switch(b, sel, [9 * wb + 3 * cm + tm for wb in (2, 4)
                                  for cm in (C_NONE, C_CLAMP, C_WRAP)
                                  for tm in (TS_NONE, TS_SATURATE, TS_WRAP)], tile_end)

            def write(wb):                   # the totals, as int64, into out[m, c0 : c0 + width]
                wty = L.vec(ir.IntType(8 * wb), 16)
                for r in range(R):
                    orow = b.add(out, b.add(b.mul(b.add(m0, L.const(r)), os0), b.mul(c0, L.const(8))))

                    def whole():
                        for c in range(NVEC):
                            v = L.load(b, tot, L.const((r * BLOCK + 16 * c) * wb), wty)
                            L.store(b, b.sext(v, _V16I64), orow, L.const(128 * c))

                    def part():
                        with L.for_range(b, width) as ll:
                            v = L.load(b, tot, b.mul(b.add(ll.index, L.const(r * BLOCK)),
                                                     L.const(wb)), wty.element)
                            L.store(b, b.sext(v, L.I64), orow, b.mul(ll.index, L.const(8)))

                    L.if_else(b, b.icmp_signed("==", width, L.const(BLOCK)), whole, part)

            L.if_else(b, b.icmp_signed("==", tot_bytes, L.const(2)),
                      lambda: write(2), lambda: write(4))

        # rows in blocks of ROWS, then single rows; the very last row reads pairs byte-wise
        nfull = b.sdiv(b.sub(M, L.const(1)), L.const(ROWS))
        with L.for_range(b, nfull) as bl:
            rows(b.mul(bl.index, L.const(ROWS)), ROWS, False)
        with L.for_range(b, b.sub(b.sub(M, L.const(1)), b.mul(nfull, L.const(ROWS)))) as sl:
            rows(b.add(b.mul(nfull, L.const(ROWS)), sl.index), 1, False)
        rows(b.sub(M, L.const(1)), 1, True)
        return context.get_dummy_value()

    def typer(typingctx, u, us0, M, K, bsrc, bs, pk, pc, amin, out, os0, N, tot, tot_bytes, c0,
              tile, cmode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits):
        sig = L.int_signature(u, us0, M, K, bsrc, bs, pk, pc, amin, out, os0, N, tot, tot_bytes,
                              c0, tile, cmode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits)
        return None if sig is None else (sig, codegen)

    return intrinsic(typer)


_block_plain = _make_block(False)
_block_corrected = _make_block(True)


def block(corrected, u, us0, M, K, bsrc, bs, pk, pc, amin, out, os0, N, tot, tot_bytes, c0,
           tile, cmode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits):
    """One column block (compiled once as a C callback: see llvm_ir.cfunc_address)."""
    if corrected:
        _block_corrected(u, us0, M, K, bsrc, bs, pk, pc, amin, out, os0, N, tot, tot_bytes, c0,
                         tile, cmode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits)
    else:
        _block_plain(u, us0, M, K, bsrc, bs, pk, pc, amin, out, os0, N, tot, tot_bytes, c0,
                     tile, cmode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits)


@numba.njit(cache=True, nogil=True)
def run(state, w, block_fn, corrected, tot_bytes, a, b, tail, amin, out, tile, cmode, lo, hi,
        bits, ts_mode, ts_lo, ts_hi, ts_bits):
    """Thread w's share of the column blocks (the protocol of kernels/workers.py). block_fn:
    address of `block` as a C function; a (M, K) uint8 codes u, C order; b (K, N) int8, C
    order; tail (K, BLOCK) int8: the last, partial block's columns of b, zero-padded (when N
    is not a multiple of BLOCK); out (M, N) int64."""
    if not workers.begin(state, w):
        return True
    M, K = a.shape
    N = out.shape[1]
    nblk = -(-N // BLOCK)
    ntiles = -(-K // tile)
    tot = np.empty(ROWS * BLOCK * 4, np.uint8)
    pk = np.empty(ntiles * ((tile + 1) // 2) * 2 * BLOCK, np.uint8)
    pc = np.empty(ntiles * 2 * BLOCK, np.uint8)
    aa, oa, ta = np.int64(a.ctypes.data), np.int64(out.ctypes.data), np.int64(tot.ctypes.data)
    pka, pca = np.int64(pk.ctypes.data), np.int64(pc.ctypes.data)
    while True:
        blk = workers.claim(state)
        if blk >= nblk:
            break
        c0 = blk * BLOCK
        if c0 + BLOCK <= N:
            bsrc, bs = np.int64(b.ctypes.data) + c0, N
        else:
            bsrc, bs = np.int64(tail.ctypes.data), BLOCK
        L.call_ints(block_fn, (np.int64(corrected), aa, a.strides[0], M, K, bsrc, bs, pka, pca,
                               amin, oa, out.strides[0], N, ta, tot_bytes, c0, tile, cmode, lo, hi,
                               bits, ts_mode, ts_lo, ts_hi, ts_bits))
    return workers.finish(state, w)


@numba.njit(cache=True)
def offset_codes(a, amin, u):
    """u = a − amin as uint8 (row codes made unsigned for pmaddubsw)."""
    M, K = a.shape
    for m in range(M):
        am, um = a[m], u[m]
        for k in range(K):
            um[k] = np.uint8(am[k] - amin)
