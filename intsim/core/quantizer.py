"""Per-tensor integer quantization (NUMERICS.md §2).

    m     = fl32(max|x| · clip)                      (dynamic scale)
    scale = fl32(m / qmax)                           ("pow2": smallest 2^e ≥ that scale)
    v     = fl32(clamp(x, -m, m) / scale)
    code  = clamp(round(v), qmin, qmax)

Signed symmetric codes span ±(2^(b-1)-1), signed full range adds -2^(b-1), unsigned codes
span [0, 2^b-1]; qmax is the positive end. All scale math is float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

from intsim.core.modes import QuantFormat, Rounding
from intsim.core.ranges import code_dtype, code_range, log2_top
from intsim.core.rng import SRDraw, SRStream
from intsim.kernels import quantize as K
from intsim.kernels import quantize_groups as KG

if TYPE_CHECKING:
    from intsim.core.trace import Trace

ROUNDINGS = Rounding.values()


class NonFiniteError(ValueError):
    """The tensor to quantize holds NaN or Inf (in training: the run diverged)."""
RandomSource = Union[None, SRStream, SRDraw]


@dataclass
class QTensor:
    """Integer codes with one float32 scale: value ≈ codes · scale."""
    codes: np.ndarray
    scale: np.float32
    bits: int
    signed: bool
    symmetric: bool = True
    clip_value: np.float32 = np.float32(np.inf)   # m: |x| beyond it was clamped (or inf)
    log2: bool = False                            # codes are 0 or ±2^e (quantize_log2)

    @property
    def qmin(self) -> int:
        return -self.qmax if self.log2 else code_range(self.bits, self.signed, self.symmetric)[0]

    @property
    def qmax(self) -> int:
        return log2_top(self.bits) if self.log2 else code_range(self.bits, self.signed,
                                                                 self.symmetric)[1]

    def dequantize(self) -> np.ndarray:
        """codes · scale in float32."""
        return self.codes.astype(np.float32) * self.scale


def pow2_ceil(s: np.float32) -> np.float32:
    """Smallest power of two ≥ s (s > 0), exactly."""
    mant, exp = np.frexp(np.float32(s))
    return np.float32(np.ldexp(np.float32(1.0), int(exp) - (1 if mant == 0.5 else 0)))


def _next_draw(rng) -> SRDraw:
    if isinstance(rng, SRStream):
        return rng.next_draw()
    if isinstance(rng, SRDraw):
        return rng
    raise ValueError(f"rng: stochastic rounding needs an intsim.SRStream or SRDraw, got {rng!r}")


def _as_float32(x: np.ndarray):
    """(flat float32 copy/view, max|x|, any negative); rejects non-float and non-finite x."""
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise ValueError(f"x: expected a float16/float32/float64 NumPy array, got "
                         f"{getattr(x, 'dtype', type(x).__name__)}")
    with np.errstate(over="ignore"):            # out-of-range float64 → inf, rejected below
        x32 = np.ascontiguousarray(x, dtype=np.float32).ravel()
    amax, has_negative, finite = K.absmax_min(x32)
    if not finite:
        raise NonFiniteError("x: contains NaN or Inf" + (
            " (or float64 values beyond float32 range)" if x.dtype == np.float64 else ""))
    return x32, amax, has_negative


def sawb_clip(x32: np.ndarray, amax: np.float32) -> np.float32:
    """4-bit SAWB clip: fl32(12.1·sqrt(E[x²]) − 12.2·E|x|), used only if in (0, max|x|].

    E are float64 sums in index order divided by n; the formula is evaluated in float64.
    """
    if x32.size == 0:
        return amax
    s1, s2 = K.sum_and_squares(x32)
    n = float(x32.size)
    c = np.float32(12.1 * np.sqrt(s2 / n) - 12.2 * (s1 / n))
    return c if 0 < c <= amax else amax


def quantize_log2(x: np.ndarray, bits: int = 4, *, rng: Union[SRStream, SRDraw],
                  sr_bits: int = 16, trace: Optional["Trace"] = None,
                  label: str = "") -> QTensor:
    """Unbiased radix-2 logarithmic quantization (LUQ), NUMERICS.md §2.4.

    Codes are 0 or ±2^e, e = 0 … L-1 with L = 2^(bits-1) - 1 magnitudes (sign + (bits-1)
    bits; 4 bits: 0, ±1, ±2, …, ±64); scale α = fl32(max|x| / 2^(L-1)) so max|x| ↦ 2^(L-1).
    Between powers of two and below α (underflow) the code rounds stochastically, unbiased.
    """
    bits = _check_int("bits", bits, 2, 5)
    sr_bits = _check_int("sr_bits", sr_bits, 1, 32)
    x32, amax, _ = _as_float32(x)
    draw = _next_draw(rng)                        # after every check: a refused call draws nothing
    top = log2_top(bits)
    alpha = np.float32(amax / np.float32(top))
    if alpha == 0:
        alpha = np.float32(1.0)
    codes = np.empty(x32.size, dtype=np.int8 if top < 128 else np.int16)
    K.quantize_log2_kernel(x32, codes, alpha, top, sr_bits, np.uint64(draw.key), draw.offset)
    q = QTensor(codes.reshape(x.shape), alpha, bits, True, True, np.float32(np.inf), True)
    if trace is not None:
        trace.record_quantize(label, x32, q, "log2_stochastic")
    return q


def check_quant_args(bits, rounding, clip, signed, symmetric, scale, sr_bits) -> tuple[int, int]:
    """Validate quantize()'s arguments (also every QuantSpec); returns (bits, sr_bits).

    Each ValueError starts with the argument's name and says what is expected. clip and a
    numeric scale must be normal float32 numbers (FLOAT32_NORMAL): all scale math is float32,
    where 1e39 is infinite and 1e-50 is zero.
    """
    bits = _check_int("bits", bits, 2, 16)
    sr_bits = _check_int("sr_bits", sr_bits, 1, 32)
    Rounding.parse(rounding, "rounding")
    if not _normal_float32(clip):
        raise ValueError(f"clip: expected a positive number in the normal float32 range "
                         f"{FLOAT32_NORMAL_TEXT}, got {clip!r}")
    if not (signed is None or isinstance(signed, (bool, np.bool_))):
        raise ValueError(f"signed: expected None, True or False, got {signed!r}")
    if not isinstance(symmetric, (bool, np.bool_)):
        raise ValueError(f"symmetric: expected True or False, got {symmetric!r}")
    if isinstance(scale, str):
        if scale not in ("pow2", "sawb"):
            raise ValueError(f"scale: expected None, 'pow2', 'sawb' or a positive float, "
                             f"got {scale!r}")
        if scale == "sawb" and bits != 4:
            raise ValueError(f"scale: 'sawb' has coefficients for 4 bits only, but bits = {bits}")
    elif scale is not None and not _normal_float32(scale):
        raise ValueError(f"scale: expected None, 'pow2', 'sawb' or a positive number in the "
                         f"normal float32 range {FLOAT32_NORMAL_TEXT}, got {scale!r}")
    return bits, sr_bits


#: (smallest, largest) positive normal float32: the range a clip or fixed scale must lie in
FLOAT32_NORMAL = (float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max))
FLOAT32_NORMAL_TEXT = f"[{FLOAT32_NORMAL[0]:.4g}, {FLOAT32_NORMAL[1]:.4g}]"


def _normal_float32(v) -> bool:
    """v is a real number (not a bool) whose float32 rounding is a positive normal number."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return False
    with np.errstate(over="ignore", under="ignore"):
        f = np.float32(v)
    return bool(np.isfinite(f) and f >= np.float32(FLOAT32_NORMAL[0]))


def _check_int(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name}: expected an int in [{lo}, {hi}], got {value!r}")
    return int(value)


def _clip_and_scale(x32: np.ndarray, amax: np.float32, qmax: int, clip: float,
                    scale: Union[None, float, str]) -> tuple[np.float32, np.float32]:
    """(m, scale) of the module docstring for flat float32 x32 with max|x| = amax."""
    if scale is not None and not isinstance(scale, str):
        return np.float32(np.inf), np.float32(scale)
    stat = sawb_clip(x32, amax) if scale == "sawb" else amax
    with np.errstate(over="ignore"):
        m = np.float32(stat * np.float32(clip))
    if not np.isfinite(m):
        raise ValueError(f"clip: the clamp point max|x|·clip = {float(stat):.4g}·{clip!r} "
                         f"overflows float32")
    s = np.float32(m / np.float32(qmax))
    if s == 0:                                   # all zero (or underflowing) input
        return np.float32(0.0), np.float32(1.0)
    if scale == "pow2":
        if s > np.float32(2.0 ** 127):
            raise ValueError("scale='pow2': max|x| needs a scale above 2^127, the "
                             "largest float32 power of two")
        s = pow2_ceil(s)
    return m, s


def quantize(x: np.ndarray, bits: int, *, signed: Optional[bool] = None,
             rounding: str = "nearest", clip: float = 1.0,
             scale: Union[None, float, str] = None,
             rng: RandomSource = None, sr_bits: int = 16,
             symmetric: bool = True, trace: Optional["Trace"] = None,
             label: str = "") -> QTensor:
    """Quantize a float tensor to `bits`-bit integer codes with one per-tensor scale.

    x: float16/32/64 array, any shape (computed in float32). signed=None → signed iff
    min(x) < 0. rounding ∈ nearest (half-even), half_away, half_up, floor, stochastic
    (needs rng: an SRStream, whose next draw is used, or an SRDraw). scale: None (dynamic),
    "pow2", "sawb" (4-bit SAWB clip statistic instead of max|x|, NUMERICS.md §2.3), or a
    positive float (then m = +inf: nothing is clamped before rounding).
    All-zero x → zero codes, scale 1.0.
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise ValueError(f"x: expected a float16/float32/float64 NumPy array, got "
                         f"{getattr(x, 'dtype', type(x).__name__)}")
    bits, sr_bits = check_quant_args(bits, rounding, clip, signed, symmetric, scale, sr_bits)
    x32, amax, has_negative = _as_float32(x)
    if signed is None:
        signed = has_negative
    elif not signed and has_negative:
        raise ValueError("signed=False but x has negative values; use signed=True or None")
    qmin, qmax = code_range(bits, signed, symmetric)
    m, s = _clip_and_scale(x32, amax, qmax, clip, scale)

    # the SR draw comes after every check, so a refused call leaves the stream untouched
    draw = _next_draw(rng) if rounding == "stochastic" else None
    codes = np.empty(x32.size, dtype=code_dtype(bits, signed))
    mode = Rounding(rounding).code
    K.quantize_kernel(x32, codes, m, s, mode, qmin, qmax, sr_bits,
           np.uint64(draw.key if draw else 0), draw.offset if draw else 0)
    q = QTensor(codes.reshape(x.shape), s, bits, signed, symmetric, m)
    if trace is not None:
        trace.record_quantize(label, x32, q, rounding)
    return q


@dataclass(frozen=True)
class QuantSpec:
    """Arguments of intsim.quantize for one operand (same names, same meanings).

    format="log2" selects the radix-2 logarithmic quantizer (LUQ gradients; quantize_log2),
    which always rounds stochastically.
    """
    bits: int = 4
    rounding: Union[Rounding, str] = Rounding.NEAREST
    clip: float = 1.0
    signed: Optional[bool] = None
    symmetric: bool = True
    scale: Union[None, float, str] = None
    sr_bits: int = 16
    format: Union[QuantFormat, str] = QuantFormat.INT

    def __post_init__(self):
        check_quant_args(self.bits, self.rounding, self.clip, self.signed, self.symmetric,
                         self.scale, self.sr_bits)
        object.__setattr__(self, "rounding", Rounding(self.rounding))
        object.__setattr__(self, "format", QuantFormat.parse(self.format, "format"))
        if self.format == QuantFormat.LOG2 and (self.rounding != Rounding.STOCHASTIC
                                                or self.bits > 5):
            raise ValueError("format='log2' needs rounding='stochastic' and bits <= 5")

    @property
    def stochastic(self) -> bool:
        return self.rounding == Rounding.STOCHASTIC


def quantize_spec(x: np.ndarray, spec: QuantSpec, rng: RandomSource = None,
                  trace: Optional["Trace"] = None, label: str = "") -> QTensor:
    """quantize (or quantize_log2 for format "log2") with the arguments a QuantSpec holds."""
    if spec.format == QuantFormat.LOG2:
        return quantize_log2(x, spec.bits, rng=rng, sr_bits=spec.sr_bits, trace=trace,
                             label=label)
    return quantize(x, spec.bits, signed=spec.signed, rounding=spec.rounding, clip=spec.clip,
                    scale=spec.scale, rng=rng, sr_bits=spec.sr_bits, symmetric=spec.symmetric,
                    trace=trace, label=label)


@dataclass
class GroupCodes:
    """quantize_groups' result: codes (G, ...), one scale and clamp point m per group."""
    codes: np.ndarray
    scales: np.ndarray          # (G,) float32
    clips: np.ndarray           # (G,) float32 (inf: nothing clamped)
    qmin: int                   # of group 0 (as QTensor.qmin)
    qmax: int
    signed: bool                # any group signed


def quantize_groups(x: np.ndarray, spec: QuantSpec, rng: RandomSource = None,
                    label: str = "") -> GroupCodes:
    """quantize_spec(x[g], spec, rng) for g = 0, 1, … in order (one SR draw per group), with
    the same bits: one absmax scan over all groups, then quantize's kernel per group without
    quantize()'s per-call argument checks.

    x (G, ...) float32 C-contiguous. The single pass covers the int format when every group
    has the same signedness and finite values; otherwise (mixed signedness, log2 format,
    NaN/Inf or a refused scale) the groups run one by one through quantize_spec, which also
    raises exactly the error (and leaves the stream exactly where) the loop would.
    """
    G = x.shape[0]
    with np.errstate(over="ignore"):            # out-of-range float64 → inf → the loop
        flat = np.ascontiguousarray(x, np.float32).reshape(G, -1) if G else x.reshape(0, 0)
    fast = spec.format == QuantFormat.INT and G > 0 and flat.shape[1] > 0
    if fast:
        amax, neg, finite = KG.absmax_min_groups(flat)
        signed = bool(neg[0]) if spec.signed is None else spec.signed
        fast = finite and (spec.signed is not None or bool(((neg > 0) == (neg[0] > 0)).all())) \
            and (signed or not neg.any())
    if fast:
        qmin, qmax = code_range(spec.bits, signed, spec.symmetric)
        try:
            ms = [_clip_and_scale(flat[g], amax[g], qmax, spec.clip, spec.scale)
                  for g in range(G)]
        except ValueError:
            fast = False
    if not fast:
        qs = [quantize_spec(x[g], spec, rng, None, label) for g in range(G)]
        codes = (np.stack([q.codes for q in qs]) if len(qs) > 1 else qs[0].codes[None]) \
            if qs else np.zeros(x.shape, np.int8)
        return GroupCodes(codes, np.array([q.scale for q in qs], np.float32),
                          np.array([q.clip_value for q in qs], np.float32),
                          qs[0].qmin if qs else 0, qs[0].qmax if qs else 0,
                          any(q.signed for q in qs))
    m = np.array([v[0] for v in ms], np.float32)
    sc = np.array([v[1] for v in ms], np.float32)
    codes = np.empty(flat.shape, dtype=code_dtype(spec.bits, signed))
    mode = Rounding(spec.rounding).code
    for g in range(G):                  # the draws in group order, as the loop makes them
        d = _next_draw(rng) if spec.stochastic else None
        K.quantize_kernel(flat[g], codes[g], m[g], sc[g], mode, qmin, qmax, spec.sr_bits,
                          np.uint64(d.key if d else 0), d.offset if d else 0)
    return GroupCodes(codes.reshape(x.shape), sc, m, qmin, qmax, signed)
