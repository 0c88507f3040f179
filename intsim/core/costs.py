"""Exact operation counts and memory traffic of the linear operator (NUMERICS.md §2–§6).

Every count is a function of shapes and a Numerics, built from the rules the simulator
executes: a layer's three products and their operands (modes.PRODUCTS), code / register
ranges, tile geometry and Hadamard growth (core.ranges), the Hadamard block and padded length
(core.hadamard), and the QuantSpec / Accumulator fields. A count is `Counts`, a mapping
(CostPart, Op) -> number of operations; Op is an OpKind with its widths (modes.OpKind).

What one operation is (the conventions, per call):

  integer product (rows × K)·(K × N) through an Accumulator (§4)
      rows·K·N multiplies int_mul(a_bits × b_bits) — int_shift(product width) when one operand
      is a radix-2 log code (§2.4) — and as many register additions int_add(w): w = `bits` for
      saturate and wrap registers; for clamp_tile and exact the register never limits inside
      a tile, so w = the width of the exact tile sum, tile·(product range). saturate: one
      int_sat(bits) per MAC; clamp_tile: one per tile result; wrap, exact: none.
      Tile sums: n_tiles − 1 additions per output (the first tile result is loaded) at the
      tile-sum register width (tile_sum_bits, or the width of n_tiles × the register's values
      when unbounded), each followed by int_sat(tile_sum_bits) when that register saturates.
  float32 product: rows·K·N fp_mul + fp_add; integer operands are converted first.
  Hadamard transform of V vectors of length n under a rule (§5): block p, output length m
      (zero-padded under "pad": the butterflies over the padded zeros are counted, as a
      transform of the padded vector performs them); log2 p stages of m additions or
      subtractions per vector. Integer input grows exactly as hadamard_range(lo, hi, 2^s)
      after stage s (§5.3), so stage s counts int_add(width of that range); float input fp_add.
  quantizer of g groups of n elements (§2): data-dependent scales scan max|x| (n fp_cmp; an
      "auto" sign adds the n comparisons x < 0), compute m = max·clip and scale = m/qmax
      (fp_mul + fp_div per group; "pow2" adds an 8-bit exponent increment, "sawb" its float64
      sums of §2.3) and clamp x to ±m (2n fp_cmp); every scale divides (n fp_div; by a "pow2"
      scale an exact exponent subtraction, n int_add(8)), rounds (n convert) and clamps the
      code (n int_sat(bits)). Stochastic rounding adds, per element,
      r random_bit and the addition of R below the kept LSB, int_add(width of floor(v·2^r)+R)
      — both counted under CostPart.SR. Radix-2 log codes (§2.4): max scan, α = max/top, n
      divisions u = |x|/α, then the r-bit stochastic addition on the mantissa fraction and
      the cap at top.
  inside the operator (§6, CostPart.RESCALE): per output of an integer product an int→float
      convert; the rescale by Numerics.rescale_order — scale_product multiplies the scales
      once per group (1 fp_mul forward; 2 fp_mul + 1 fp_div by p backward), then each output
      once; left_to_right multiplies every output by each factor (2 forward, 3 backward) and
      divides it by p backward; a straight-through mask compare per masked element
      (Numerics.ste: clipped — operands with a data-dependent clamp point; code_max — every
      quantized forward operand; none); and the float32 sum of the groups' dW (G − 1
      additions per weight). A convolution under act_scale per_batch quantizes its whole
      input once (one scale) instead of each image's im2col matrix (`a_batch`).
  "off_divide" transforms nothing (its division by the block size is part of the rescale).

Memory traffic (`Traffic`): each tensor the operator produces is written once and read once
per pass that consumes it; a quantizer with a data-dependent scale reads its input twice
(the max scan, then scale-and-round), a fixed scale once; the inputs of the layer (x, W, the
output gradient) are read here and written by whoever produced them. Straight-through masks
are kept as 1 bit per element. Stored sizes: `stored_bytes` (1-, 2- and 4-bit values packed,
other widths in 1, 2, 4 or 8 bytes). A matmul reads each operand once (perfect on-chip reuse).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from intsim.core.accumulator import Accumulator
from intsim.core.hadamard import rule_block_size, rule_output_length
from intsim.core.modes import (PRODUCTS, AccMode, CostPart, HadamardRule, MatmulKind, OpKind,
                               QuantFormat, RescaleOrder, SteRule, TensorClass)
from intsim.core.numerics import Numerics
from intsim.core.quantizer import QuantSpec
from intsim.core.ranges import (Range, effective_tile, hadamard_range, n_tiles,
                                operand_range, product_operand_ranges, product_range,
                                width_of_range)

FP32, FP64 = 32, 64


@dataclass(frozen=True, order=True)
class Op:
    """One kind of operation at its widths: `bits` (int_mul: the left operand; int_add,
    int_sat, int_shift: the result / register; floats: 32 or 64), `bits2` (int_mul: the right
    operand) and `signs` (int_mul: "u"/"s" of left and right)."""
    kind: OpKind
    bits: int = 0
    bits2: int = 0
    signs: str = ""

    @property
    def key(self) -> str:
        """'int_mul 4u×4s', 'int_add 8', 'fp_mul 32', 'random_bit'."""
        if self.kind == OpKind.INT_MUL:
            return f"int_mul {self.bits}{self.signs[0]}×{self.bits2}{self.signs[1]}"
        if self.kind == OpKind.RANDOM_BIT:
            return "random_bit"
        return f"{self.kind} {self.bits}"


class Counts(dict):
    """(CostPart, Op) -> number of operations (exact Python ints)."""

    def add(self, part: CostPart, op: Op, n: int) -> "Counts":
        n = int(n)
        if n:
            key = (CostPart(part), op)
            self[key] = self.get(key, 0) + n
        return self

    def merge(self, other: "Counts", times: int = 1) -> "Counts":
        """Add `times` × other into self (in place); returns self."""
        for (part, op), n in other.items():
            self.add(part, op, n * times)
        return self

    def total(self, kind: Optional[OpKind] = None, part: Optional[CostPart] = None) -> int:
        return sum(n for (p, op), n in self.items()
                   if (kind is None or op.kind == kind) and (part is None or p == part))


@dataclass(frozen=True)
class Traffic:
    """One tensor moved: `elements` of `bits` each, `reads` and `writes` per step."""
    tensor: str
    cls: TensorClass
    elements: int
    bits: int
    reads: int = 0
    writes: int = 0

    @property
    def stored_bytes(self) -> int:
        return stored_bytes(self.elements, self.bits)

    @property
    def bytes_moved(self) -> int:
        return self.stored_bytes * (self.reads + self.writes)


def stored_bytes(elements: int, bits: int) -> int:
    """Bytes of `elements` values of `bits`: 1-, 2- and 4-bit values are packed 8/bits to a
    byte (int4: two per byte, a trailing half byte rounded up); wider values take the
    smallest of 1, 2, 4, 8 bytes."""
    if bits in (1, 2, 4):
        return -(-elements * bits // 8)
    size = next(b for b in (8, 16, 32, 64, 128) if b >= bits) // 8
    return elements * size


def _width(r: Range) -> tuple[int, bool]:
    return width_of_range(*r)


# ------------------------------------------------------------------------- quantizers
def data_scaled(spec: Optional[QuantSpec]) -> bool:
    """The scale (and clamp point) depends on the data: dynamic, pow2, sawb, log2."""
    return spec is not None and (spec.format == QuantFormat.LOG2 or spec.scale is None
                                 or isinstance(spec.scale, str))


def quantizer_passes(spec: Optional[QuantSpec]) -> int:
    """Reads of the input by the quantizer: 2 (scan, then quantize) or 1 (fixed scale)."""
    return 2 if data_scaled(spec) else 1


def sr_add_width(spec: QuantSpec, negative: Optional[bool] = True) -> int:
    """Width of the stochastic-rounding addition floor(v·2^r) + R (§2.1): v lies within
    [qmin − 1, qmax + 1] (the kernel's limit), R < 2^r. Log2 codes: p·2^r + R on the r-bit
    fraction of the mantissa."""
    r = spec.sr_bits
    if spec.format == QuantFormat.LOG2:
        return r + 1
    qmin, qmax = operand_range(spec, negative)
    return _width(((qmin - 1) << r, ((qmax + 2) << r) - 1))[0]


def quantizer_counts(spec: Optional[QuantSpec], n: int, groups: int = 1,
                     negative: Optional[bool] = True) -> Counts:
    """Work of quantizing `groups` tensors of `n` elements each (one scale per tensor) with
    `spec`; `negative`: whether the data has values < 0 (an "auto" sign). Module docstring."""
    c = Counts()
    total = n * groups
    if spec is None or total == 0:
        return c
    Q, SR = CostPart.QUANTIZE, CostPart.SR
    r = spec.sr_bits
    if spec.format == QuantFormat.LOG2:
        c.add(Q, Op(OpKind.FP_CMP, FP32), total)                 # max|x|
        c.add(Q, Op(OpKind.FP_DIV, FP32), groups + total)        # α = max/top; u = |x|/α
        c.add(SR, Op(OpKind.INT_ADD, sr_add_width(spec)), total)
        c.add(SR, Op(OpKind.RANDOM_BIT), total * r)
        c.add(Q, Op(OpKind.INT_SAT, spec.bits), total)           # magnitude capped at top
        return c
    if data_scaled(spec):
        c.add(Q, Op(OpKind.FP_CMP, FP32), total * (2 if spec.signed is None else 1))
        if spec.scale == "sawb":                                 # §2.3, float64
            c.add(Q, Op(OpKind.FP_ADD, FP64), 2 * total + groups)
            c.add(Q, Op(OpKind.FP_MUL, FP64), total + 2 * groups)
            c.add(Q, Op(OpKind.FP_DIV, FP64), 2 * groups)
            c.add(Q, Op(OpKind.FP_SPECIAL, FP64), groups)        # sqrt
            c.add(Q, Op(OpKind.FP_CMP, FP32), 2 * groups)        # 0 < c <= max|x|
        c.add(Q, Op(OpKind.FP_MUL, FP32), groups)                # m = stat · clip
        c.add(Q, Op(OpKind.FP_DIV, FP32), groups)                # scale = m / qmax
        if spec.scale == "pow2":
            c.add(Q, Op(OpKind.INT_ADD, 8), groups)              # exponent round-up
        c.add(Q, Op(OpKind.FP_CMP, FP32), 2 * total)             # clamp(x, -m, m)
    if spec.scale == "pow2":                                     # v = x / 2^e: exponent
        c.add(Q, Op(OpKind.INT_ADD, 8), total)                   # subtraction, exact
    else:
        c.add(Q, Op(OpKind.FP_DIV, FP32), total)                 # v = x / scale
    c.add(Q, Op(OpKind.CONVERT, FP32), total)                    # round (floor(v·2^r) for SR)
    if spec.stochastic:
        c.add(SR, Op(OpKind.INT_ADD, sr_add_width(spec, negative)), total)
        c.add(SR, Op(OpKind.RANDOM_BIT), total * r)
    c.add(Q, Op(OpKind.INT_SAT, spec.bits), total)               # code clamp
    return c


def random_bits(spec: Optional[QuantSpec], n: int, groups: int = 1) -> int:
    """Random bits a quantizer draws: r for every element (zeros and padding included) when
    it rounds stochastically (§2.1, §2.4, §3), else 0."""
    return n * groups * spec.sr_bits if spec is not None and spec.stochastic else 0


# -------------------------------------------------------------------------- Hadamard
def hadamard_counts(n: int, rule, vectors: int, value_range: Optional[Range]
                    ) -> tuple[Counts, int, int]:
    """(counts, output length m, block p) of transforming `vectors` vectors of length n under
    a Numerics.hadamard rule; value_range: the integer range of the input (None: float32)."""
    p = rule_block_size(n, rule)
    m = rule_output_length(n, rule)
    c = Counts()
    stages = p.bit_length() - 1
    for s in range(1, stages + 1):
        if value_range is None:
            op = Op(OpKind.FP_ADD, FP32)
        else:
            op = Op(OpKind.INT_ADD, _width(hadamard_range(*value_range, 1 << s))[0])
        c.add(CostPart.HADAMARD, op, m * vectors)
    return c, m, p


def hadamard_bits(value_range: Optional[Range], p: int) -> int:
    """Stored width of a transformed tensor: the exact range's width, or 32 (float32)."""
    return FP32 if value_range is None else _width(hadamard_range(*value_range, p))[0]


# --------------------------------------------------------------------------- products
def register_width(acc: Accumulator, tile: int, left: Range, right: Range) -> int:
    """Width of the register adder: `bits` (saturate, wrap) or the exact tile sum's width
    (clamp_tile, exact: the register does not limit inside a tile)."""
    if acc.mode in (AccMode.SATURATE, AccMode.WRAP):
        return acc.bits
    lo, hi = product_range(left, right)
    return _width((tile * lo, tile * hi))[0]


def tile_sum_width(acc: Accumulator, tile: int, tiles: int, left: Range, right: Range) -> int:
    """Width of the tile-sum register: tile_sum_bits, or (unbounded) the width of n_tiles ×
    the values the register can hold at a tile end."""
    vals = acc.tile_sum_values()
    if vals is None:
        reg = acc.register_values()
        if reg is None:
            lo, hi = product_range(left, right)
            reg = (tile * lo, tile * hi)
        vals = (tiles * reg[0], tiles * reg[1])
    return _width(vals)[0]


def product_counts(acc: Optional[Accumulator], rows: int, K: int, N: int,
                   left: Optional[Range], right: Optional[Range],
                   log2: bool = False) -> Counts:
    """Work of one product (rows × K)·(K × N) (module docstring). left / right: the integer
    code ranges of the operands (None: float32); log2: one operand holds radix-2 log codes.
    The product is integer iff acc is given and both operands are integer (§6)."""
    c = Counts()
    macs = rows * K * N
    if acc is None or left is None or right is None:
        c.add(CostPart.MATMUL, Op(OpKind.FP_MUL, FP32), macs)
        c.add(CostPart.MATMUL, Op(OpKind.FP_ADD, FP32), macs)
        converted = (rows * K if left is not None else 0) + (K * N if right is not None else 0)
        c.add(CostPart.MATMUL, Op(OpKind.CONVERT, FP32), converted)
        return c
    if log2:
        c.add(CostPart.MATMUL, Op(OpKind.INT_SHIFT, _width(product_range(left, right))[0]),
              macs)
    else:
        (wl, sl), (wr, sr) = _width(left), _width(right)
        c.add(CostPart.MATMUL, Op(OpKind.INT_MUL, wl, wr, "us"[sl] + "us"[sr]), macs)
    tile = effective_tile(acc.tile, K)
    tiles = n_tiles(K, acc.tile)
    c.add(CostPart.MATMUL, Op(OpKind.INT_ADD, register_width(acc, tile, left, right)), macs)
    if acc.mode == AccMode.SATURATE:
        c.add(CostPart.SATURATE, Op(OpKind.INT_SAT, acc.bits), macs)
    elif acc.mode == AccMode.CLAMP_TILE:
        c.add(CostPart.SATURATE, Op(OpKind.INT_SAT, acc.bits), rows * N * tiles)
    sums = rows * N * max(tiles - 1, 0)
    c.add(CostPart.TILE_SUM, Op(OpKind.INT_ADD, tile_sum_width(acc, tile, tiles, left, right)),
          sums)
    if acc.tile_sum_bits is not None and acc.mode != AccMode.WRAP:
        c.add(CostPart.SATURATE, Op(OpKind.INT_SAT, acc.tile_sum_bits), sums)
    return c


def product_int(acc: Optional[Accumulator], left: Optional[Range],
                right: Optional[Range]) -> bool:
    """The product runs on integers (int_matmul) rather than float32 BLAS (§6)."""
    return acc is not None and left is not None and right is not None


# ---------------------------------------------------------------- the linear operator
@dataclass
class OperatorCost:
    """One call of the linear operator on x (G, R, K), W (N, K): per product kind its counts,
    its memory traffic and its shape (rows, reduction length, columns) as the Trace records
    it (NUMERICS.md §4.1)."""
    counts: dict
    traffic: dict
    shapes: dict
    random_bits: dict

    def total(self) -> Counts:
        out = Counts()
        for c in self.counts.values():
            out.merge(c)
        return out


def _rescale_counts(c: Counts, order: RescaleOrder, groups: int, outputs: int, integer: bool,
                    backward: bool) -> None:
    """The operator's float32 rescale R of one product (§6): 2 factors forward (s_w, s_a),
    3 backward (s_l, s_r, the forward scale) and a division by p. scale_product multiplies the
    factors once per group (c), then once per output; left_to_right applies every factor, and
    the division, to every output."""
    R = CostPart.RESCALE
    factors = 3 if backward else 2
    if integer:
        c.add(R, Op(OpKind.CONVERT, FP32), outputs)                       # float32(acc)
    if order == RescaleOrder.LEFT_TO_RIGHT:
        c.add(R, Op(OpKind.FP_MUL, FP32), factors * outputs)
        c.add(R, Op(OpKind.FP_DIV, FP32), outputs if backward else 0)
        return
    c.add(R, Op(OpKind.FP_MUL, FP32), (factors - 1) * groups + outputs)   # c, then acc · c
    c.add(R, Op(OpKind.FP_DIV, FP32), groups if backward else 0)          # c / p


def transforms(rule: Optional[HadamardRule]) -> bool:
    """The rule runs a transform (largest_pow2, pad); none and off_divide do not."""
    return rule in (HadamardRule.LARGEST_POW2, HadamardRule.PAD)


def ste_masked(nm: Numerics, spec: Optional[QuantSpec]) -> bool:
    """The straight-through mask runs on the gradient of this forward operand (§6, SteRule):
    code_max always, clipped when the quantizer has a clamp point (a data-dependent scale)."""
    if spec is None or nm.ste == SteRule.NONE:
        return False
    return nm.ste == SteRule.CODE_MAX or data_scaled(spec)


def _source_reads(rule, spec: Optional[QuantSpec]) -> int:
    """Reads of a backward product's input tensor: once by the transform, else by the
    operand's quantizer, else once by the matmul."""
    return 1 if transforms(rule) else quantizer_passes(spec) if spec is not None else 1


def _forward(nm: Numerics, G, R, K, N, x_negative, backward, a_batch: Optional[int]
             ) -> tuple[Counts, list]:
    c, t = Counts(), []
    w_spec, a_spec = nm.w_fwd, nm.a_fwd
    lr, rr = operand_range(a_spec, x_negative), operand_range(w_spec, True)
    c.merge(quantizer_counts(w_spec, N * K, 1, True))
    if a_batch is None:                        # one scale per group
        c.merge(quantizer_counts(a_spec, R * K, G, x_negative))
    else:                                      # per_batch: the layer's whole input, one scale
        c.merge(quantizer_counts(a_spec, a_batch, 1, x_negative))
    integer = product_int(nm.acc_fwd, lr, rr)
    c.merge(product_counts(nm.acc_fwd, G * R, K, N, lr, rr))
    _rescale_counts(c, nm.rescale_order, G, G * R * N, integer, False)
    t.append(Traffic("W", TensorClass.MASTER, N * K, FP32, quantizer_passes(w_spec)))
    t.append(Traffic("x", TensorClass.ACTIVATIONS, G * R * K if a_batch is None else a_batch,
                     FP32, quantizer_passes(a_spec)))
    if w_spec is not None:
        back = _source_reads(nm.hadamard, nm.w_bwd) if backward else 0
        t.append(Traffic("w_codes", TensorClass.WEIGHTS, N * K, w_spec.bits, 1 + back, 1))
    elif backward:
        t.append(Traffic("W_kept", TensorClass.MASTER, N * K, FP32,
                         _source_reads(nm.hadamard, nm.w_bwd)))
    if a_spec is not None:
        back = _source_reads(nm.hadamard, nm.a_bwd) if backward else 0
        t.append(Traffic("a_codes", TensorClass.KEPT, G * R * K, a_spec.bits, 1 + back, 1))
    elif backward:
        t.append(Traffic("x_kept", TensorClass.KEPT, G * R * K, FP32,
                         _source_reads(nm.hadamard, nm.a_bwd)))
    if backward and ste_masked(nm, a_spec):
        t.append(Traffic("x_clip_mask", TensorClass.KEPT, G * R * K, 1, 1, 1))
    if backward and ste_masked(nm, w_spec):
        t.append(Traffic("W_clip_mask", TensorClass.KEPT, N * K, 1, 1, 1))
    t.append(Traffic("y", TensorClass.ACTIVATIONS, G * R * N, FP32, 0, 1))
    return c, t


def _backward_product(nm: Numerics, kind: MatmulKind, groups: int, g_vectors: int, n: int,
                      v_vectors: int, cols: int, v_range: Optional[Range],
                      negative: dict) -> tuple[Counts, list, tuple, int]:
    """One backward product (§6): the output gradient (g_vectors vectors of length n over all
    `groups`) and the forward operand v (v_vectors vectors of length n; its integer range
    v_range, None for float32) are transformed along n, quantized and multiplied; the result
    has `cols` columns per row. Returns (counts, traffic, (rows, m, cols), random bits)."""
    prod = PRODUCTS[kind]
    lspec, rspec = getattr(nm, prod.left.field), getattr(nm, prod.right.field)
    c = Counts()
    hg, m, p = hadamard_counts(n, nm.hadamard, g_vectors, None)
    hv, _, _ = hadamard_counts(n, nm.hadamard, v_vectors, v_range)
    c.merge(hg).merge(hv)
    neg = dict(negative, **{prod.left.field: True})
    neg[prod.right.field] = True if p > 1 else neg.get(prod.right.reuses, True)
    tensors = groups if prod.right.grouped else 1
    c.merge(quantizer_counts(lspec, g_vectors // groups * m, groups, True))
    c.merge(quantizer_counts(rspec, v_vectors // tensors * m, tensors, neg[prod.right.field]))
    left, right = product_operand_ranges(nm, kind, p, neg)
    rows = g_vectors
    integer = product_int(getattr(nm, prod.accumulator), left, right)
    c.merge(product_counts(getattr(nm, prod.accumulator), rows, m, cols, left, right,
                           log2=lspec is not None and lspec.format == QuantFormat.LOG2))
    _rescale_counts(c, nm.rescale_order, groups, rows * cols, integer, True)
    t = []
    if transforms(nm.hadamard):
        t.append(Traffic(f"{prod.left.letter}_hadamard", TensorClass.GRADIENTS, g_vectors * m,
                         FP32, quantizer_passes(lspec), 1))
        cls = TensorClass.WEIGHTS if prod.right.letter == "w" else TensorClass.KEPT
        t.append(Traffic(f"{prod.right.letter}_hadamard", cls, v_vectors * m,
                         hadamard_bits(v_range, p), quantizer_passes(rspec) if rspec else 1, 1))
    if lspec is not None:
        t.append(Traffic(f"{prod.left.letter}_codes", TensorClass.GRADIENTS, g_vectors * m,
                         lspec.bits, 1, 1))
    if rspec is not None:
        cls = TensorClass.WEIGHTS if prod.right.letter == "w" else TensorClass.KEPT
        t.append(Traffic(f"{prod.right.letter}_codes", cls, v_vectors * m, rspec.bits, 1, 1))
    bits = (random_bits(lspec, g_vectors * m)
            + random_bits(rspec, v_vectors * m))
    return c, t, (rows, m, cols), bits


def linear_op_cost(nm: Numerics, G: int, R: int, K: int, N: int,
                   x_negative: Optional[bool] = True, backward: bool = True,
                   a_batch: Optional[int] = None) -> OperatorCost:
    """Counts and traffic of linear_forward (and linear_backward) on x (G, R, K), W (N, K)
    under `nm` (module docstring). x_negative: whether x has values < 0 (resolves an "auto"
    activation sign; weights and gradients are taken to have both signs). a_batch: the
    elements of the whole input when the caller quantizes it with one scale (a convolution
    under act_scale per_batch, linear_op.batch_operand); None: one scale per group."""
    counts, traffic, shapes, bits = {}, {}, {}, {}
    counts[MatmulKind.FWD], traffic[MatmulKind.FWD] = _forward(nm, G, R, K, N, x_negative,
                                                               backward, a_batch)
    shapes[MatmulKind.FWD] = (G * R, K, N)
    bits[MatmulKind.FWD] = random_bits(nm.w_fwd, N * K) + (
        random_bits(nm.a_fwd, R * K, G) if a_batch is None else random_bits(nm.a_fwd, a_batch))
    if not backward:
        return OperatorCost(counts, traffic, shapes, bits)
    a_range, w_range = operand_range(nm.a_fwd, x_negative), operand_range(nm.w_fwd, True)
    neg = {"a_fwd": x_negative, "w_fwd": True}
    gi = _backward_product(nm, MatmulKind.GRAD_IN, G, G * R, N, K, K, w_range, neg)
    gw = _backward_product(nm, MatmulKind.GRAD_W, G, G * N, R, G * K, K, a_range, neg)
    for kind, (c, t, shape, b) in ((MatmulKind.GRAD_IN, gi), (MatmulKind.GRAD_W, gw)):
        counts[kind], traffic[kind], shapes[kind], bits[kind] = c, t, shape, b
    dy_reads = (_source_reads(nm.hadamard, nm.g_in) + _source_reads(nm.hadamard, nm.g_w))
    traffic[MatmulKind.GRAD_IN].insert(0, Traffic("dy", TensorClass.GRADIENTS, G * R * N,
                                                  FP32, dy_reads))
    traffic[MatmulKind.GRAD_IN].append(Traffic("dx", TensorClass.GRADIENTS, G * R * K, FP32,
                                               0, 1))
    traffic[MatmulKind.GRAD_W].append(Traffic("dW", TensorClass.GRADIENTS, N * K, FP32,
                                              G - 1, G))
    if ste_masked(nm, nm.a_fwd):
        counts[MatmulKind.GRAD_IN].add(CostPart.RESCALE, Op(OpKind.FP_CMP, FP32), G * R * K)
    if ste_masked(nm, nm.w_fwd):
        counts[MatmulKind.GRAD_W].add(CostPart.RESCALE, Op(OpKind.FP_CMP, FP32), N * K)
    counts[MatmulKind.GRAD_W].add(CostPart.RESCALE, Op(OpKind.FP_ADD, FP32), (G - 1) * N * K)
    return OperatorCost(counts, traffic, shapes, bits)


def float_matmul_cost(rows: int, K: int, N: int, weight_grad: bool = True,
                      backward: bool = True) -> OperatorCost:
    """A float32 layer (the fp32 numerics' BLAS path of nn.Linear / nn.Conv2d): x (rows, K) ·
    Wᵀ, dx = dy·W, dW = dyᵀ·x (when the weights are trained)."""
    fwd = product_counts(None, rows, K, N, None, None)
    counts = {MatmulKind.FWD: fwd}
    traffic = {MatmulKind.FWD: [Traffic("W", TensorClass.MASTER, N * K, FP32, 1),
                                Traffic("x", TensorClass.ACTIVATIONS, rows * K, FP32, 1),
                                Traffic("y", TensorClass.ACTIVATIONS, rows * N, FP32, 0, 1)]}
    shapes = {MatmulKind.FWD: (rows, K, N)}
    if backward:
        counts[MatmulKind.GRAD_IN] = product_counts(None, rows, N, K, None, None)
        traffic[MatmulKind.GRAD_IN] = [
            Traffic("dy", TensorClass.GRADIENTS, rows * N, FP32, 2 if weight_grad else 1),
            Traffic("W_kept", TensorClass.MASTER, N * K, FP32, 1),
            Traffic("dx", TensorClass.GRADIENTS, rows * K, FP32, 0, 1)]
        shapes[MatmulKind.GRAD_IN] = (rows, N, K)
        if weight_grad:
            counts[MatmulKind.GRAD_W] = product_counts(None, N, rows, K, None, None)
            traffic[MatmulKind.GRAD_W] = [
                Traffic("x_kept", TensorClass.KEPT, rows * K, FP32, 1),
                Traffic("dW", TensorClass.GRADIENTS, N * K, FP32, 0, 1)]
            shapes[MatmulKind.GRAD_W] = (N, rows, K)
    return OperatorCost(counts, traffic, shapes, {k: 0 for k in counts})

