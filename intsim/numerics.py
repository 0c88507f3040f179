"""Numerics: the arithmetic of one layer — operand quantizers, accumulators, Hadamard rule.

A layer computing y = x·Wᵀ runs three matmuls (hdqt.md):
  forward      y  = a_fwd(x) · w_fwd(W)ᵀ          accumulated by acc_fwd
  input grad   dx = g_in(G) · w_bwd(W)            accumulated by acc_in
  weight grad  dW = g_w(Gᵀ) · a_bwd(x)            accumulated by acc_w
Each operand spec is a QuantSpec or None (float32, unquantized); each accumulator an
intsim.Accumulator or None (float32). `hadamard` is None, "largest_pow2" or "pad".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union


@dataclass(frozen=True)
class QuantSpec:
    """Arguments of intsim.quantize for one operand (same names, same meanings)."""
    bits: int = 4
    rounding: str = "nearest"
    clip: float = 1.0
    signed: Optional[bool] = None
    symmetric: bool = True
    scale: Union[None, float, str] = None
    sr_bits: int = 16


@dataclass(frozen=True)
class Numerics:
    """One layer's arithmetic; all None = plain float32 (the "fp32" preset)."""
    w_fwd: Optional[QuantSpec] = None
    a_fwd: Optional[QuantSpec] = None
    w_bwd: Optional[QuantSpec] = None
    a_bwd: Optional[QuantSpec] = None
    g_in: Optional[QuantSpec] = None
    g_w: Optional[QuantSpec] = None
    acc_fwd: Any = None
    acc_in: Any = None
    acc_w: Any = None
    hadamard: Optional[str] = None
    name: str = "custom"

    @property
    def is_float(self) -> bool:
        return all(getattr(self, f) is None for f in
                   ("w_fwd", "a_fwd", "w_bwd", "a_bwd", "g_in", "g_w",
                    "acc_fwd", "acc_in", "acc_w", "hadamard"))


def preset(name: str) -> Numerics:
    """The named numerics preset (see NUMERICS.md). Placeholder: only "fp32" so far."""
    if name == "fp32":
        return Numerics(name="fp32")
    raise ValueError(f"preset: unknown name {name!r}; expected one of ['fp32']")
