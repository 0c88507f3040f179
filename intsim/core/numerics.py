"""Numerics: the arithmetic of one layer — operand quantizers, accumulators, Hadamard rule.

A layer computing y = x·Wᵀ runs three matmuls (hdqt.md, NUMERICS.md §6):
  forward      y  = a_fwd(x) · w_fwd(W)ᵀ                  accumulated by acc_fwd
  input grad   dx = g_in(G·H_out) · w_bwd(H_out·w)        accumulated by acc_in
  weight grad  dW = g_w(Gᵀ·H_bs) · a_bwd(H_bs·a)          accumulated by acc_w
Each operand spec is a QuantSpec or None. None on a forward operand or a gradient means
float32 (unquantized); None on w_bwd / a_bwd means "use the (Hadamard-transformed) forward
operand as it is" — integer codes when the forward operand was quantized, else float32.
Each accumulator is an intsim.Accumulator or None (float32 matmul of the operands).
`hadamard` is None (H = identity), "largest_pow2" (the paper's block rule) or "pad".
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional, Union

from intsim.core.accumulator import Accumulator
from intsim.core.quantizer import check_quant_args

OPERANDS = ("w_fwd", "a_fwd", "w_bwd", "a_bwd", "g_in", "g_w")
ACCUMULATORS = ("acc_fwd", "acc_in", "acc_w")
HADAMARD_RULES = (None, "largest_pow2", "pad")
FORMATS = ("int", "log2")


@dataclass(frozen=True)
class QuantSpec:
    """Arguments of intsim.quantize for one operand (same names, same meanings).

    format="log2" selects the radix-2 logarithmic quantizer (LUQ gradients;
    intsim.quantize.quantize_log2), which always rounds stochastically.
    """
    bits: int = 4
    rounding: str = "nearest"
    clip: float = 1.0
    signed: Optional[bool] = None
    symmetric: bool = True
    scale: Union[None, float, str] = None
    sr_bits: int = 16
    format: str = "int"

    def __post_init__(self):
        check_quant_args(self.bits, self.rounding, self.clip, self.signed, self.symmetric,
                         self.scale, self.sr_bits)
        if self.format not in FORMATS:
            raise ValueError(f"format: expected one of {FORMATS}, got {self.format!r}")
        if self.format == "log2" and (self.rounding != "stochastic" or self.bits > 5):
            raise ValueError("format='log2' needs rounding='stochastic' and bits <= 5")

    @property
    def stochastic(self) -> bool:
        return self.rounding == "stochastic"


@dataclass(frozen=True)
class Numerics:
    """One layer's arithmetic; all None = plain float32 (the "fp32" preset)."""
    w_fwd: Optional[QuantSpec] = None
    a_fwd: Optional[QuantSpec] = None
    w_bwd: Optional[QuantSpec] = None
    a_bwd: Optional[QuantSpec] = None
    g_in: Optional[QuantSpec] = None
    g_w: Optional[QuantSpec] = None
    acc_fwd: Optional[Accumulator] = None
    acc_in: Optional[Accumulator] = None
    acc_w: Optional[Accumulator] = None
    hadamard: Optional[str] = None
    name: str = "custom"

    def __post_init__(self):
        for f in OPERANDS:
            v = getattr(self, f)
            if v is not None and not isinstance(v, QuantSpec):
                raise ValueError(f"{f}: expected an intsim.QuantSpec or None, got {v!r}")
        for f in ACCUMULATORS:
            v = getattr(self, f)
            if v is not None and not isinstance(v, Accumulator):
                raise ValueError(f"{f}: expected an intsim.Accumulator or None, got {v!r}")
        if self.hadamard not in HADAMARD_RULES:
            raise ValueError(f"hadamard: expected one of {HADAMARD_RULES}, "
                             f"got {self.hadamard!r}")
        for f in ("w_fwd", "a_fwd", "w_bwd", "a_bwd"):
            v = getattr(self, f)
            if v is not None and v.format == "log2":
                raise ValueError(f"{f}: format='log2' is for gradients (g_in, g_w) only")

    @property
    def is_float(self) -> bool:
        return all(getattr(self, f) is None for f in OPERANDS + ACCUMULATORS + ("hadamard",))

    def replace(self, **changes) -> "Numerics":
        """A copy with some fields changed (dataclasses.replace)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_toml(cls, path) -> "Numerics":
        """The Numerics of a datapath TOML file (schema: intsim.datapath)."""
        from intsim.core.datapath import numerics_from_toml
        return numerics_from_toml(path)

    def to_toml(self) -> str:
        """This Numerics as datapath TOML text; from_toml of it gives back an equal Numerics."""
        from intsim.core.datapath import numerics_to_toml
        return numerics_to_toml(self)


def _hdqt_operands(sr_bits: int) -> dict:
    nearest = dict(bits=4, rounding="nearest")
    sr = dict(bits=4, rounding="stochastic", clip=1.0, signed=True, sr_bits=sr_bits)
    return dict(w_fwd=QuantSpec(clip=0.975, signed=True, **nearest),
                a_fwd=QuantSpec(clip=0.975, signed=None, **nearest),
                w_bwd=QuantSpec(clip=1.0, signed=True, **nearest),
                a_bwd=QuantSpec(**sr), g_in=QuantSpec(**sr), g_w=QuantSpec(**sr))


def _presets() -> dict:
    hw_acc = Accumulator(bits=8, tile=32, mode="saturate", tile_sum_bits=32)
    hdqt = Numerics(**_hdqt_operands(16), acc_fwd=hw_acc, acc_in=hw_acc, acc_w=hw_acc,
                    hadamard="pad", name="hdqt")
    log2_grad = QuantSpec(bits=4, rounding="stochastic", signed=True, format="log2")
    return {
        "fp32": Numerics(name="fp32"),
        "int4": hdqt.replace(hadamard=None, name="int4"),
        "luq": Numerics(w_fwd=QuantSpec(bits=4, signed=True, scale="sawb"),
                        a_fwd=QuantSpec(bits=4, signed=None, scale="sawb"),
                        g_in=log2_grad, g_w=log2_grad,
                        acc_fwd=Accumulator(bits=8, tile=None, mode="clamp_tile"),
                        acc_in=Accumulator(bits=32, tile=None, mode="exact"),
                        acc_w=Accumulator(bits=32, tile=None, mode="exact"), name="luq"),
        "hdqt_paper": Numerics(**_hdqt_operands(24),
                               acc_fwd=Accumulator(bits=8, tile=32, mode="clamp_tile"),
                               acc_in=Accumulator(bits=8, tile=None, mode="clamp_tile"),
                               acc_w=Accumulator(bits=8, tile=None, mode="clamp_tile"),
                               hadamard="largest_pow2", name="hdqt_paper"),
        "hdqt": hdqt,
    }


PRESET_NAMES = tuple(_presets())


def preset(name: str) -> Numerics:
    """The named numerics preset: fp32, int4, luq, hdqt_paper, hdqt (NUMERICS.md §7)."""
    presets = _presets()
    if name not in presets:
        raise ValueError(f"preset: unknown name {name!r}; expected one of {PRESET_NAMES}")
    return presets[name]
