"""quantize_groups (one absmax pass over G groups) against quantize_spec per group, and its
kernel (intsim.kernels.quantize_groups) against the NumPy reference, bit for bit.

Seeded random groups of every rounding, signedness rule, scale rule and format, with all-zero
groups, groups of one sign, huge/tiny values and ±0; the SR stream must end where the
per-group loop leaves it; errors (NaN, signed=False with negatives) come out of the loop.
"""
import itertools

import numpy as np
import pytest

from intsim.core.quantizer import NonFiniteError, QuantSpec, quantize_groups, quantize_spec
from intsim.core.rng import SRStream
from intsim.kernels import quantize_groups as KG

ROUNDINGS = ["nearest", "half_away", "half_up", "floor", "stochastic"]


def _groups(rng, G, n, kind):
    x = (rng.standard_normal((G, n)) * 10.0 ** rng.integers(-3, 4, (G, 1))).astype(np.float32)
    if kind == "nonneg":
        x = np.abs(x)
    elif kind == "edges":
        x[0] = 0.0
        if G > 1:
            x[1, : n // 2] = -0.0
        if G > 2:
            x[2, 0] = 3e38
        if G > 3:
            x[3] = np.abs(x[3]) * 1e-40
    return x


def _loop(x, spec, rng):
    qs = [quantize_spec(x[g], spec, rng) for g in range(x.shape[0])]
    return (np.stack([q.codes for q in qs]), np.array([q.scale for q in qs], np.float32),
            np.array([q.clip_value for q in qs], np.float32))


def _same_as_loop(x, spec):
    a, b = SRStream(7), SRStream(7)
    try:
        codes, scales, clips = _loop(x, spec, b)
    except ValueError as e:                      # the same error, the stream left the same
        with pytest.raises(type(e), match=str(e)[:30].replace("(", r"\(").replace("+", r"\+")):
            quantize_groups(x, spec, a)
        assert a.state() == b.state()
        return
    got = quantize_groups(x, spec, a)
    assert got.codes.dtype == codes.dtype
    np.testing.assert_array_equal(got.codes, codes)
    np.testing.assert_array_equal(got.scales.view(np.uint32), scales.view(np.uint32))
    np.testing.assert_array_equal(got.clips.view(np.uint32), clips.view(np.uint32))
    assert a.state() == b.state()


SPECS = [QuantSpec(bits=b, rounding=r, signed=sg, symmetric=sym, scale=sc, clip=cl)
         for b, r, sg, sym, sc, cl in itertools.product(
             [2, 4, 8], ROUNDINGS, [None, True], [True, False], [None, "pow2", 0.01],
             [1.0, 0.7])] + [QuantSpec(bits=4, scale="sawb"),
                             QuantSpec(bits=4, rounding="stochastic", format="log2")]


@pytest.mark.parametrize("kind", ["random", "nonneg", "edges"])
def test_groups_equal_the_per_group_loop(kind):
    rng = np.random.default_rng(0)
    for i, spec in enumerate(SPECS):
        G, n = int(rng.integers(1, 6)), int(rng.integers(1, 40))
        _same_as_loop(_groups(rng, G, n, kind), spec)
    _same_as_loop(_groups(rng, 3, 1 << 17, "random"), SPECS[4])       # parallel-sized groups


def test_mixed_signedness_and_unsigned_specs():
    rng = np.random.default_rng(1)
    x = _groups(rng, 4, 30, "random")
    x[1] = np.abs(x[1])                               # one group has no negative value
    for spec in (QuantSpec(bits=4), QuantSpec(bits=4, rounding="stochastic")):
        _same_as_loop(x, spec)
    _same_as_loop(np.abs(x), QuantSpec(bits=4, signed=False))


def test_errors_come_from_the_loop():
    x = np.ones((3, 5), np.float32)
    x[2, 1] = np.nan
    with pytest.raises(NonFiniteError, match="x: contains NaN"):
        quantize_groups(x, QuantSpec(bits=4), None)
    with pytest.raises(ValueError, match="signed=False"):
        quantize_groups(-np.ones((2, 3), np.float32), QuantSpec(bits=4, signed=False), None)
    with pytest.raises(ValueError, match="clip"):
        quantize_groups(np.full((2, 3), 3e38, np.float32), QuantSpec(bits=4, clip=1e9), None)


def test_absmax_equals_the_reference():
    rng = np.random.default_rng(3)
    for kind in ("random", "nonneg", "edges"):
        x = _groups(rng, 5, 23, kind)
        got, ref = KG.absmax_min_groups(x), KG.absmax_min_groups_reference(x)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])
        assert got[2] == ref[2]
    x[3, 4] = np.inf
    assert KG.absmax_min_groups(x)[2] is False
