"""intsim: a bit-exact integer-arithmetic simulator for low-precision training (HDQT).

Public API (NUMERICS.md is the normative spec of every step):
    quantize, QTensor          per-tensor integer quantization
    SRStream, SRDraw           counter-based random bits for stochastic rounding
    fwht                       fast Walsh–Hadamard transform
    Accumulator, int_matmul    tiled integer matmul with finite accumulators
    Trace                      event and rounding records
    QuantSpec, Numerics, preset  one layer's arithmetic
    fit, evaluate              train / score an intsim.nn model (the notebook level)
"""
from intsim.core.accumulator import Accumulator, int_matmul
from intsim.core.hadamard import fwht
from intsim.core.numerics import Numerics
from intsim.core.presets import preset
from intsim.core.quantizer import QTensor, QuantSpec, quantize
from intsim.core.rng import SRDraw, SRStream
from intsim.core.trace import Trace
from intsim.nn.training import evaluate, fit

from intsim._version import __version__
__all__ = ["quantize", "QTensor", "SRStream", "SRDraw", "fwht", "Accumulator", "int_matmul",
           "Trace", "QuantSpec", "Numerics", "preset", "fit", "evaluate", "__version__"]
