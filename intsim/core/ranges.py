"""Integer ranges, register widths, tile geometry and worst-case bounds (NUMERICS.md §1, §4).

Every range in the engine comes from here:

    code_range(b, signed, symmetric)   codes of a b-bit quantizer: signed symmetric ±(2^(b-1)-1),
                                       signed full range [-2^(b-1), 2^(b-1)-1], unsigned [0, 2^b-1]
    register_range(b, symmetric)       a saturating b-bit register (the signed code range)
    twos_complement_range(b)           what a wrapping b-bit register holds
    effective_tile(tile, K)            the K-tile actually used (None or > K: one tile of K)
    hadamard_range(lo, hi, p)          exact range of H_p·x for x in [lo, hi]^p
    product_range(a, b)                range of one product a·b
    tile_bound(tile, a, b)             A2Q-style worst case of a tile sum: tile·max|a|·max|b|
    operand_range(spec, negative)      worst-case codes of a QuantSpec (auto sign: by `negative`,
                                       both when unknown)
    product_operand_ranges(nm, kind)   the operand ranges of one of a layer's three products,
                                       a reused forward operand grown by its Hadamard transform
    width_of_range(lo, hi)             narrowest two's-complement / unsigned type holding [lo, hi]
    bit_width(v)                       narrowest symmetric signed register holding ±v
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from intsim.core.modes import PRODUCTS, MatmulKind, QuantFormat

if TYPE_CHECKING:                      # types only: numerics.py imports this module
    from intsim.core.numerics import Numerics
    from intsim.core.quantizer import QuantSpec

Range = tuple[int, int]


def code_range(bits: int, signed: bool, symmetric: bool = True) -> Range:
    """(qmin, qmax) of b-bit codes."""
    if not signed:
        return 0, (1 << bits) - 1
    qmax = (1 << (bits - 1)) - 1
    return (-qmax if symmetric else -qmax - 1), qmax


def code_dtype(bits: int, signed: bool) -> np.dtype:
    """Smallest NumPy integer dtype that holds b-bit codes."""
    if bits <= 8:
        return np.dtype(np.int8 if signed else np.uint8)
    return np.dtype(np.int16 if signed else np.uint16)


def log2_top(bits: int) -> int:
    """Largest magnitude of a `bits`-bit radix-2 log code: sign + (bits-1) bits → 2^(2^(b-1)-2)."""
    return 1 << ((1 << (bits - 1)) - 2)


def register_range(bits: int, symmetric: bool = True) -> Range:
    """(lo, hi) of a saturating b-bit register: ±(2^(b-1)-1), or [-2^(b-1), 2^(b-1)-1]."""
    return code_range(bits, True, symmetric)


def twos_complement_range(bits: int) -> Range:
    """(lo, hi) of a wrapping b-bit register: [-2^(b-1), 2^(b-1)-1]."""
    return code_range(bits, True, False)


def effective_tile(tile: Optional[int], K: int) -> int:
    """The K-tile a product of reduction length K uses: `tile`, or K if tile is None or larger
    (at least 1, so that K = 0 has one empty tile)."""
    return max(1, K if tile is None else min(tile, K))


def n_tiles(K: int, tile: Optional[int]) -> int:
    """Number of K-tiles (0 when K = 0)."""
    return -(-K // effective_tile(tile, K))


def tile_starts(K: int, tile: Optional[int]) -> range:
    """First k of every tile, ascending."""
    return range(0, K, effective_tile(tile, K))


def hadamard_range(lo: int, hi: int, p: int) -> Range:
    """Exact range of H_p·x for x in [lo, hi]^p (row 0 sums, other rows are half ±)."""
    if p == 1:
        return lo, hi
    h = p // 2
    return min(p * lo, h * (lo - hi)), max(p * hi, h * (hi - lo))


def product_range(a: Range, b: Range) -> Range:
    """Range of a·b for a in [a0, a1], b in [b0, b1]."""
    c = (a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1])
    return min(c), max(c)


def max_abs(r: Optional[Range]) -> Optional[int]:
    return None if r is None else max(abs(r[0]), abs(r[1]))


def tile_bound(tile: int, a: Range, b: Range) -> int:
    """A2Q-style worst case |tile sum| ≤ tile·max|a|·max|b| (Colbert et al.)."""
    return int(tile) * max_abs(a) * max_abs(b)


def operand_range(spec: Optional["QuantSpec"], negative: Optional[bool] = None
                  ) -> Optional[Range]:
    """Worst-case (min, max) code of a quantizer spec; None for a float operand.

    signed=None ("auto") gives signed codes iff the tensor has a value < 0 (§2): with
    `negative` known (True / False) that range, else (None) the union of both."""
    if spec is None:
        return None
    if spec.format == QuantFormat.LOG2:
        top = log2_top(spec.bits)
        return -top, top
    if spec.signed is None:
        if negative is not None:
            return code_range(spec.bits, bool(negative), spec.symmetric)
        return code_range(spec.bits, True, spec.symmetric)[0], code_range(spec.bits, False)[1]
    return code_range(spec.bits, spec.signed, spec.symmetric)


def product_operand_ranges(numerics: "Numerics", kind: MatmulKind, block: int = 1,
                           negative: Optional[dict] = None
                           ) -> tuple[Optional[Range], Optional[Range]]:
    """(left, right) worst-case code ranges of one of the layer's products (modes.PRODUCTS).

    A backward operand without a quantizer reuses the forward codes transformed by H_p along
    the reduction axis: its range is hadamard_range of the forward range with p = `block`
    (1: before the transform's growth, when the block is not known). `negative` maps operand
    fields to whether their tensor has a value < 0 (resolves "auto" signs; absent: unknown)."""
    prod = PRODUCTS[MatmulKind(kind)]
    neg = negative or {}
    out = []
    for role in prod.operands:
        spec = getattr(numerics, role.field)
        if spec is None and role.reuses is not None:
            base = operand_range(getattr(numerics, role.reuses), neg.get(role.reuses))
            out.append(None if base is None else hadamard_range(*base, block))
        else:
            out.append(operand_range(spec, neg.get(role.field)))
    return out[0], out[1]


def width_of_range(lo: int, hi: int) -> tuple[int, bool]:
    """(bits, signed) of the narrowest two's-complement (lo < 0) or unsigned type holding
    every integer in [lo, hi]."""
    lo, hi = int(lo), int(hi)
    if lo < 0:
        return max(max(hi, 0).bit_length(), (-lo - 1).bit_length()) + 1, True
    return max(1, hi.bit_length()), False


def bit_width(v: int) -> int:
    """Bits of the narrowest symmetric signed register holding ±v: bit_length(v) + 1."""
    return int(v).bit_length() + 1
