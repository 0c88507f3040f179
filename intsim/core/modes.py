"""The closed vocabularies of the engine, and the table of a layer's three products.

Enums (str-valued: each member equals, hashes and prints as its value, so "saturate" and
AccMode.SATURATE are interchangeable wherever a string is accepted):

    Rounding       nearest (half to even) | half_away | half_up | floor | stochastic   (§2.1)
    AccMode        saturate | clamp_tile | wrap | exact                                 (§4)
    HadamardRule   none | largest_pow2 | pad | off_divide                               (§5, §6)
    RescaleOrder   scale_product | left_to_right       float32 order of the rescale      (§6)
    ActScale       per_image | per_batch               forward activation scale of a conv (§6)
    SteRule        clipped | code_max | none           straight-through mask             (§6)
    QuantFormat    int | log2                                                           (§2.4)
    MatmulKind     fwd | grad_in | grad_w                                               (§6)

A layer computing y = x·Wᵀ runs three integer products (NUMERICS.md §6). PRODUCTS is their one
definition: which Numerics operands feed each, which accumulator sums it, which operands are
quantized per group, which forward operand a backward operand reuses when it has no quantizer
of its own, and the record labels (`label`) the operator, the trace, the golden writer and the
overflow report share:

    kind     left (letter, field)   right (letter, field)   accumulator  reduction axis
    fwd      a  a_fwd  x            w  w_fwd  W             acc_fwd      K (in-features)
    grad_in  g  g_in   G·H_out      w  w_bwd  H_out·w       acc_in       N (out-features)
    grad_w   g  g_w    Gᵀ·H_bs      a  a_bwd  H_bs·a        acc_w        R (batch rows)
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional

from intsim.kernels import accumulate as _acc_kernels
from intsim.kernels import quantize as _quant_kernels


class StrEnum(str, Enum):
    """A str-valued Enum whose members behave as their value (str, format, hash, ==)."""

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(m.value for m in cls)

    @classmethod
    def parse(cls, value, name: str):
        """The member for `value`, or a ValueError naming the argument and the choices."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{name}: expected one of {cls.values()}, got {value!r}") from None


class Rounding(StrEnum):
    NEAREST = "nearest"
    HALF_AWAY = "half_away"
    HALF_UP = "half_up"
    FLOOR = "floor"
    STOCHASTIC = "stochastic"

    @property
    def code(self) -> int:
        """The kernel's integer code of this rule (intsim.kernels.quantize)."""
        return _ROUNDING_CODES[self]


class AccMode(StrEnum):
    SATURATE = "saturate"
    CLAMP_TILE = "clamp_tile"
    WRAP = "wrap"
    EXACT = "exact"

    @property
    def code(self) -> int:
        """The kernel's integer code of this mode (intsim.kernels.accumulate)."""
        return _ACC_CODES[self]


class HadamardRule(StrEnum):
    NONE = "none"
    LARGEST_POW2 = "largest_pow2"
    PAD = "pad"
    #: no transform, but the backward rescale still divides by the largest_pow2 block it did
    #: not apply (the published code's "HadOff" switch; dW and dx come out p times too small)
    OFF_DIVIDE = "off_divide"


class RescaleOrder(StrEnum):
    """The float32 order of an integer product's rescale (NUMERICS.md §6).

    scale_product   fl32(float32(acc) · c), c = the scales multiplied first (and divided by p):
                    one multiplier per output — intsim's presets
    left_to_right   fl32(…fl32(fl32(float32(acc) · s_1) · s_2)… ) / p — the factors applied to
                    every output one after another, dividing last, as the published code's
                    expressions `acc * s_w * s_a` and `acc * s_g * s_h * s_fwd * 1 / p` do"""
    SCALE_PRODUCT = "scale_product"
    LEFT_TO_RIGHT = "left_to_right"


class ActScale(StrEnum):
    """How many forward activation scales a convolution's batch has (NUMERICS.md §6).

    per_image   one scale (and clamp point) per image: each image's im2col matrix is
                quantized on its own, so an image is computed the same in any batch
    per_batch   one scale for the whole input batch: the (B, C, H, W) tensor is quantized once,
                before im2col (the published code); every image then runs with that scale.
    Backward quantizers are per image either way. A Linear layer has one group: both agree."""
    PER_IMAGE = "per_image"
    PER_BATCH = "per_batch"


class SteRule(StrEnum):
    """Where the straight-through estimator zeroes the gradient of a quantized x or W.

    clipped    where the forward quantizer clamped the value (|v| > m, the clamp point):
               the method's rule
    code_max   where |v| > 2^(bits-1) - 1 as a float (7 at 4 bits), whatever the scale: the
               published code's constant threshold, which never masks inputs in [-1, 1]
    none       never"""
    CLIPPED = "clipped"
    CODE_MAX = "code_max"
    NONE = "none"


class QuantFormat(StrEnum):
    INT = "int"
    LOG2 = "log2"


class MatmulKind(StrEnum):
    FWD = "fwd"
    GRAD_IN = "grad_in"
    GRAD_W = "grad_w"


_ROUNDING_CODES = {
    Rounding.NEAREST: _quant_kernels.NEAREST, Rounding.HALF_AWAY: _quant_kernels.HALF_AWAY,
    Rounding.HALF_UP: _quant_kernels.HALF_UP, Rounding.FLOOR: _quant_kernels.FLOOR,
    Rounding.STOCHASTIC: _quant_kernels.STOCHASTIC}
_ACC_CODES = {
    AccMode.EXACT: _acc_kernels.EXACT, AccMode.SATURATE: _acc_kernels.SATURATE,
    AccMode.CLAMP_TILE: _acc_kernels.CLAMP_TILE, AccMode.WRAP: _acc_kernels.WRAP}


@dataclass(frozen=True)
class OperandRole:
    """One input of one product: its Numerics field, record letter and quantization rule."""
    field: str                 # Numerics field holding its QuantSpec ("a_fwd", …)
    letter: str                # letter in record labels ("a", "w", "g")
    grouped: bool              # one scale (and one SR draw) per group; else one per tensor
    reuses: Optional[str]      # None quantizer → the forward operand it reuses (Hadamard-transformed)
    text: str                  # what the tensor is


@dataclass(frozen=True)
class Product:
    """One of a layer's three integer products: left (…, M, R) · right (R, N) → accumulator."""
    kind: MatmulKind
    accumulator: str           # Numerics field of its Accumulator
    left: OperandRole
    right: OperandRole
    reduces: str               # the axis the product sums over
    hadamard: bool             # both operands are Hadamard-transformed along that axis
    text: str

    @property
    def operands(self) -> tuple[OperandRole, OperandRole]:
        return self.left, self.right

    def operand(self, letter: str) -> OperandRole:
        for role in self.operands:
            if role.letter == letter:
                return role
        raise KeyError(f"{self.kind}: no operand {letter!r}")


PRODUCTS: dict[MatmulKind, Product] = {
    MatmulKind.FWD: Product(
        MatmulKind.FWD, "acc_fwd",
        OperandRole("a_fwd", "a", True, None, "forward activations x"),
        OperandRole("w_fwd", "w", False, None, "forward weights W"),
        "K (in-features)", False, "forward matmul a_fwd · w_fwdᵀ"),
    MatmulKind.GRAD_IN: Product(
        MatmulKind.GRAD_IN, "acc_in",
        OperandRole("g_in", "g", True, None, "output gradient G·H_out (input-gradient matmul)"),
        OperandRole("w_bwd", "w", False, "w_fwd",
                    "backward weights H_out·w (input-gradient matmul)"),
        "N (out-features)", True, "input-gradient matmul g_in · w_bwd"),
    MatmulKind.GRAD_W: Product(
        MatmulKind.GRAD_W, "acc_w",
        OperandRole("g_w", "g", True, None, "output gradient Gᵀ·H_bs (weight-gradient matmul)"),
        OperandRole("a_bwd", "a", True, "a_fwd",
                    "backward activations H_bs·a (weight-gradient matmul)"),
        "R (batch rows of a group)", True, "weight-gradient matmul g_w · a_bwd"),
}

#: Numerics operand fields in datapath-file order, and the accumulator fields
OPERANDS = ("w_fwd", "a_fwd", "w_bwd", "a_bwd", "g_in", "g_w")
ACCUMULATORS = tuple(p.accumulator for p in PRODUCTS.values())
#: operand field -> its role (and the product it feeds)
ROLES: dict[str, OperandRole] = {r.field: r for p in PRODUCTS.values() for r in p.operands}
PRODUCT_OF_OPERAND: dict[str, Product] = {r.field: p for p in PRODUCTS.values()
                                          for r in p.operands}
PRODUCT_OF_ACCUMULATOR: dict[str, Product] = {p.accumulator: p for p in PRODUCTS.values()}


def label(layer: str, kind: MatmulKind, letter: Optional[str] = None) -> str:
    """The record label of a product ("layer/kind") or of one of its operands ("layer/kind/a")."""
    return f"{layer}/{kind}" if letter is None else f"{layer}/{kind}/{letter}"


def split_label(text: str) -> tuple[str, Optional[MatmulKind], Optional[str]]:
    """(layer, kind, letter) of a label made by `label` (letter None for a product label);
    (text, None, None) when it names no product."""
    head, _, last = text.rpartition("/")
    if last in MatmulKind.values():
        return head, MatmulKind(last), None
    layer, _, kind = head.rpartition("/")
    if kind in MatmulKind.values() and head:
        return layer, MatmulKind(kind), last
    return text, None, None


class OpKind(StrEnum):
    """The operations the cost model counts (intsim.core.costs) and prices (core.energy).

    int_mul a×b multiply of two integer codes (widths of both operands); int_shift the product
    of an integer and a radix-2 log code (a shift; width of the result); int_add an integer
    addition or subtraction (width of the result); int_sat a saturation / clamp of an integer
    to a range (width of the register); fp_add fp_mul fp_div fp_cmp (comparison, max, select)
    and fp_special (exp, log, sqrt) on floats of `bits`; convert an int ↔ float conversion
    with rounding; random_bit one random bit drawn for stochastic rounding."""
    INT_MUL = "int_mul"
    INT_SHIFT = "int_shift"
    INT_ADD = "int_add"
    INT_SAT = "int_sat"
    FP_ADD = "fp_add"
    FP_MUL = "fp_mul"
    FP_DIV = "fp_div"
    FP_CMP = "fp_cmp"
    FP_SPECIAL = "fp_special"
    CONVERT = "convert"
    RANDOM_BIT = "random_bit"


class CostPart(StrEnum):
    """What an operation is for (the rows of a cost breakdown).

    matmul: the multiplies and register additions of a product (integer or float32);
    saturate: register / tile-sum clamps; tile_sum: additions of tile results;
    hadamard: the butterflies of a transform; quantize: scans, scale computation, division by
    the scale, rounding and code clamps; sr: the random bits and additions of stochastic
    rounding; rescale: float32 work inside the operator (int→float, rescale multiplies,
    straight-through masks, group sums); layer: float32 work outside it (bias, BatchNorm,
    activations, pooling, residual adds); loss, sgd, exemplars (herding, NME): the rest of a
    training run."""
    MATMUL = "matmul"
    SATURATE = "saturate"
    TILE_SUM = "tile_sum"
    HADAMARD = "hadamard"
    QUANTIZE = "quantize"
    SR = "sr"
    RESCALE = "rescale"
    LAYER = "layer"
    LOSS = "loss"
    SGD = "sgd"
    EXEMPLARS = "exemplars"


class TensorClass(StrEnum):
    """What a tensor moved to or from memory is (the memory rows of a cost breakdown).

    inputs: training or evaluation samples read; activations: layer inputs and outputs in
    flight; kept: what a layer keeps from forward for backward (codes, clip masks, BatchNorm
    x̂, ReLU masks); weights: weight codes and their Hadamard transforms; master: float32
    master weights and SGD momentum; gradients: output, input and weight gradients and their
    transforms and codes; exemplars: the exemplar memory."""
    INPUTS = "inputs"
    ACTIVATIONS = "activations"
    KEPT = "kept"
    WEIGHTS = "weights"
    MASTER = "master"
    GRADIENTS = "gradients"
    EXEMPLARS = "exemplars"
