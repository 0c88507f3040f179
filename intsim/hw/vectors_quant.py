"""Quantizer vectors of `intsim vectors`: inputs x built so that v = fl32(clamp(x, −m, m)/scale)
lands where an RTL quantizer is most likely wrong (NUMERICS.md §2, §2.1, §3).

    sr    stochastic rounding with r bits: the draw's random bits R_i are known before the
          call (element i of draw 0 of SRStream(seed) / "vectors" / <field>), so v_i is chosen
          with low_i = floor(v_i·2^r) mod 2^r = 2^r − 1 − R_i (the sum one below the carry:
          rounds down) or 2^r − R_i (exactly the carry: rounds up), a third of them negative
          (a step that truncates toward zero instead of flooring changes these codes), plus
          random ones; elements 0 and 1 are ±X, X = max|x| (the clamp point's source)
    ties  round-to-nearest rules: v = n + 1/2 exactly for every n in [qmin, qmax), and the
          float32 neighbours of each

x_i is the float32 whose fl32(x_i/scale) equals the target (searched over float32 neighbours;
a target that is no float32, e.g. with r > 20, keeps its nearest float32 value and may miss
the boundary — the coverage report counts what was hit). Each case is written as
`vectors/<case>/quantize/<letter>_{x, sr_bits, codes, scale, m, v}`.
"""
from __future__ import annotations

import numpy as np

from intsim.core.modes import PRODUCTS, ROLES, QuantFormat, Rounding
from intsim.core.numerics import Numerics
from intsim.core.quantizer import QuantSpec, quantize_spec
from intsim.core.ranges import code_range
from intsim.core.rng import SRDraw, SRStream, element_random_bits
from intsim.formats.golden_file import float_tensor, int_tensor
from intsim.hw.golden_record import clamp_tensors, describe_spec, scaled_values, sr_bits_tensor

N_ELEMENTS = 1024
NEAREST_FAMILY = (Rounding.NEAREST, Rounding.HALF_AWAY, Rounding.HALF_UP)


def _x_for(v_target: np.ndarray, scale: np.float32, m: np.float32) -> np.ndarray:
    """float32 x with fl32(x / scale) == fl32(v_target) where reachable (|x| ≤ m)."""
    want = v_target.astype(np.float32)
    x = (v_target * np.float64(scale)).astype(np.float32)
    for _ in range(64):
        v = (x / scale).astype(np.float32)
        lo, hi = v < want, v > want
        if not (lo | hi).any():
            break
        x = np.where(lo, np.nextafter(x, np.float32(np.inf)),
                     np.where(hi, np.nextafter(x, np.float32(-np.inf)), x)).astype(np.float32)
    return np.clip(x, -m, m)


def _scale_of(spec: QuantSpec, X: float, signed: bool, n: int, key: int):
    """(scale, m) the quantizer gives a tensor whose largest magnitude is X."""
    probe = np.zeros(n, np.float32)
    probe[0] = X
    if signed:
        probe[1] = -X
    q = quantize_spec(probe, spec, SRDraw(key))
    return np.float32(q.scale), np.float32(q.clip_value)


def _targets(spec: QuantSpec, R: np.ndarray, qmin: int, qmax: int, rng) -> np.ndarray:
    n = R.size
    r = spec.sr_bits
    one = 1 << r
    whole = rng.integers(qmin, qmax, n)                       # whole + 1 ≤ qmax
    neg = np.arange(n) % 3 == 2
    if qmin < 0:
        whole = np.where(neg, rng.integers(qmin, 0, n), whole)
    low = np.where(np.arange(n) % 2 == 0, (one - 1 - R) % one, (one - R) % one)
    low = np.where(np.arange(n) % 7 == 6, rng.integers(0, one, n), low)
    return whole + low / one


def sr_case(field: str, spec: QuantSpec, seed: int):
    """(tensors, coverage entry) of the stochastic-rounding vectors of one operand field."""
    letter = ROLES[field].letter
    key = SRStream(seed).child("vectors").child(field).draw(0).key
    R = element_random_bits(key, N_ELEMENTS, spec.sr_bits).astype(np.int64)
    signed = spec.signed is not False
    qmin, qmax = code_range(spec.bits, signed, spec.symmetric)
    scale, m = _scale_of(spec, 1.0, signed, N_ELEMENTS, key)
    rng = np.random.default_rng(seed + 7)
    x = _x_for(_targets(spec, R, qmin, qmax, rng), scale, min(m, np.float32(qmax) * scale))
    x[0], x[1] = 1.0, (-1.0 if signed else 0.5)
    return _emit(f"sr_{field}", field, letter, spec, x, key)


def ties_case(field: str, spec: QuantSpec, seed: int):
    letter = ROLES[field].letter
    signed = spec.signed is not False
    qmin, qmax = code_range(spec.bits, signed, spec.symmetric)
    scale, m = _scale_of(spec, 1.0, signed, 8, 0)
    halves = np.arange(qmin, qmax, dtype=np.float64) + 0.5
    h32 = halves.astype(np.float32)
    v = np.concatenate([h32, np.nextafter(h32, np.float32(np.inf)),
                        np.nextafter(h32, np.float32(-np.inf))]).astype(np.float64)
    x = _x_for(v, scale, min(m, np.float32(qmax) * scale))
    x = np.concatenate([[1.0, -1.0 if signed else 0.5], x]).astype(np.float32)
    return _emit(f"ties_{field}", field, letter, spec, x, 0)


def _emit(case: str, field: str, letter: str, spec: QuantSpec, x: np.ndarray, key: int):
    q = quantize_spec(x, spec, SRDraw(key))
    base = f"vectors/{case}/quantize/{letter}"
    tensors = [float_tensor(f"{base}_x", x, f"{field}: the quantizer's input x (float32)",
                            operand=field)]
    if spec.stochastic:
        R = element_random_bits(key, x.size, spec.sr_bits)
        tensors.append(sr_bits_tensor(f"{base}_sr_bits", R, spec, field))
    lo, hi = code_range(spec.bits, q.signed, spec.symmetric)
    tensors.append(int_tensor(f"{base}_codes", q.codes, lo, hi, describe_spec(field, spec),
                              operand=field, code_bits=spec.bits, format=str(spec.format),
                              rounding=str(spec.rounding),
                              sr_bits=spec.sr_bits if spec.stochastic else 0,
                              scale=np.float32(q.scale),
                              draw_key=np.uint64(key) if spec.stochastic else np.uint64(0)))
    tensors.append(float_tensor(f"{base}_scale", q.scale, f"{field} scale (float32)",
                                operand=field))
    v = scaled_values(x, q.clip_value, q.scale, False)
    tensors += clamp_tensors(f"{base}_m", f"{base}_v", q.clip_value, v, field)
    for t in tensors:
        t.attrs.update(step=-1, layer=case, kind="quantize", tensor=t.path.rsplit("/", 1)[1])
    entry = dict(codes=f"{base}_codes", v=f"{base}_v",
                 sr_bits=f"{base}_sr_bits" if spec.stochastic else "", kind="quantize")
    return tensors, entry


def quantizer_vectors(nm: Numerics, kinds, suites, seed: int) -> tuple[list, list, list]:
    """(tensors, coverage entries, notes) of the sr and ties suites for the operands of the
    given product kinds."""
    fields = []
    for kind in kinds:
        for role in PRODUCTS[kind].operands:
            if getattr(nm, role.field) is not None and role.field not in fields:
                fields.append(role.field)
    tensors, entries, notes = [], [], []
    for field in fields:
        spec: QuantSpec = getattr(nm, field)
        if spec.format == QuantFormat.LOG2 or spec.scale == "sawb":
            notes.append(f"{field}: {'log2' if spec.format == QuantFormat.LOG2 else 'sawb'} "
                         "quantizer: no directed quantizer vectors")
            continue
        if spec.stochastic and "sr" in suites:
            t, e = sr_case(field, spec, seed)
        elif spec.rounding in NEAREST_FAMILY and "ties" in suites:
            t, e = ties_case(field, spec, seed)
        else:
            continue
        tensors += t
        entries.append(e)
    return tensors, entries, notes
