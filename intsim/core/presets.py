"""The named numerics presets (NUMERICS.md §7).

    fp32        no quantization (float32 everywhere)
    int4        4-bit operands, 8-bit saturating registers over 32-tiles, no Hadamard transform
    luq         LUQ (Chmiel et al.): SAWB 4-bit forward, radix-2 log 4-bit gradients, the
                forward result clamped once to 8 bits, exact backward accumulators
    hdqt_paper  the published HDQT code: 4-bit operands, 8-bit clamp per 32-tile forward, one
                clamp of the untiled backward sums, largest-power-of-two Hadamard blocks,
                24 random bits per stochastic rounding, its float32 rescale order
                (left_to_right) and one forward activation scale per conv batch (per_batch)
    hdqt_paper_hadoff  hdqt_paper with the published "HadOff" switch: no Hadamard transform, yet
                the gradients are still divided by the block size (hadamard = "off_divide");
                the corrected naive baseline is "hdqt_paper:hadamard=none"
    hdqt        hardware-faithful HDQT: 8-bit registers saturating after every MAC in all three
                products, 32-bit tile-sum register, zero-padded Hadamard, 16 random bits
"""
from __future__ import annotations

from intsim.core.accumulator import Accumulator
from intsim.core.numerics import Numerics
from intsim.core.quantizer import QuantSpec


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
    paper = Numerics(**_hdqt_operands(24),
                     acc_fwd=Accumulator(bits=8, tile=32, mode="clamp_tile"),
                     acc_in=Accumulator(bits=8, tile=None, mode="clamp_tile"),
                     acc_w=Accumulator(bits=8, tile=None, mode="clamp_tile"),
                     hadamard="largest_pow2", rescale_order="left_to_right",
                     act_scale="per_batch", name="hdqt_paper")
    return {
        "fp32": Numerics(name="fp32"),
        "int4": hdqt.replace(hadamard=None, name="int4"),
        "luq": Numerics(w_fwd=QuantSpec(bits=4, signed=True, scale="sawb"),
                        a_fwd=QuantSpec(bits=4, signed=None, scale="sawb"),
                        g_in=log2_grad, g_w=log2_grad,
                        acc_fwd=Accumulator(bits=8, tile=None, mode="clamp_tile"),
                        acc_in=Accumulator(bits=32, tile=None, mode="exact"),
                        acc_w=Accumulator(bits=32, tile=None, mode="exact"), name="luq"),
        "hdqt_paper": paper,
        "hdqt_paper_hadoff": paper.replace(hadamard="off_divide", name="hdqt_paper_hadoff"),
        "hdqt": hdqt,
    }


PRESET_NAMES = tuple(_presets())


def preset(name: str) -> Numerics:
    """The named numerics preset: fp32, int4, luq, hdqt_paper, hdqt_paper_hadoff, hdqt (module
    docstring)."""
    presets = _presets()
    if name not in presets:
        raise ValueError(f"preset: unknown name {name!r}; expected one of {PRESET_NAMES}")
    return presets[name]
