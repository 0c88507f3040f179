"""Evaluation with fixed activation scales, calibrated on training data (eval_scale "calibrated").

Training with dynamic scales recomputes every activation scale from the batch at hand, so a
quantized network's answer for one sample depends on the rest of its evaluation batch. A
deployed accelerator fixes each layer's activation scale instead. `calibrated(model, X, B)`
models that: it runs the model (eval mode, float statistics only) over the calibration data X
in batches of B and records, for every matmul layer whose forward activation quantizer has a
dynamic scale, max|x| and min x of its input over all of X; then, until the block ends, that
layer's a_fwd uses the fixed scale the dynamic rule would have chosen for the whole of X:

    signed = (min x < 0) unless the spec fixes it;  qmax = 2^(b-1) - 1 if signed else 2^b - 1
    m = fl32(max|x| · fl32(clip)),  scale = fl32(m / qmax)   (1.0 if that is 0)

(NUMERICS.md §2: with a fixed scale nothing is pre-clamped; codes saturate at qmin/qmax.)
Other layers and the weights' quantizers are unchanged; the numerics are restored afterwards.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Optional

import numpy as np

from intsim.core.numerics import Numerics
from intsim.nn import MatmulModule, Module


def fixed_activation_numerics(nm: Numerics, max_abs: float, minimum: float) -> Numerics:
    """`nm` with a_fwd's dynamic scale replaced by the fixed scale of the module docstring."""
    spec = nm.a_fwd
    signed = spec.signed if spec.signed is not None else minimum < 0
    qmax = 2 ** (spec.bits - 1) - 1 if signed else 2 ** spec.bits - 1
    m = np.float32(np.float32(max_abs) * np.float32(spec.clip))
    scale = np.float32(m / np.float32(qmax))
    fixed = dataclasses.replace(spec, signed=bool(signed),
                                scale=float(scale) if scale > 0 else 1.0)
    return nm.replace(a_fwd=fixed)


def calibratable(nm: Numerics) -> bool:
    """A layer under `nm` gets a fixed activation scale: a_fwd is an int quantizer with a
    dynamic scale."""
    return nm.a_fwd is not None and nm.a_fwd.scale is None and nm.a_fwd.format == "int"


def _calibratable(m: Module) -> bool:
    return isinstance(m, MatmulModule) and calibratable(m.numerics)


@contextlib.contextmanager
def calibrated(model: Module, X: Optional[np.ndarray], batch: int):
    """Within the block, `model` evaluates with fixed activation scales calibrated on X (module
    docstring); X None: no change."""
    if X is None:
        yield model
        return
    layers = [m for m in model.modules() if _calibratable(m)]
    if not layers:
        yield model
        return
    saved = [m.numerics for m in layers]
    try:
        for m in layers:
            m.act_range = [0.0, np.inf]
        model.eval()
        for s in range(0, len(X), batch):
            model.forward(X[s:s + batch])
        model.clear_cache()
        for m in layers:
            m.numerics = fixed_activation_numerics(m.numerics, *m.act_range)
            m.act_range = None
        yield model
    finally:
        for m, nm in zip(layers, saved):
            m.numerics, m.act_range = nm, None
