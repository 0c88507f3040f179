"""quantize: kernel == plain-Python oracle on every rounding mode, edge values, SR statistics."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from helpers import run_python
from intsim import SRDraw, SRStream, quantize
from intsim.kernels.quantize import quantize_reference
from intsim.core.quantizer import pow2_ceil
from intsim.core.ranges import code_dtype, code_range

ROUNDINGS = ["nearest", "half_away", "half_up", "floor", "stochastic"]


def reference_scale(x, bits, clip, signed, symmetric, scale=None):
    """(m, scale) per NUMERICS.md §2 with Python floats rounded to float32 after each op.

    For float32 operands, one double-precision op followed by rounding to float32 equals
    the float32 op (the double has more than 2·24+2 bits).
    """
    qmin, qmax = code_range(bits, signed, symmetric)
    if scale not in (None, "pow2"):
        return np.float32(np.inf), np.float32(scale)
    amax = float(np.max(np.abs(x.astype(np.float32)))) if x.size else 0.0
    m = np.float32(amax * float(np.float32(clip)))
    s = np.float32(float(m) / qmax)
    if s == 0:
        return np.float32(0), np.float32(1)
    if scale == "pow2":
        e = 0
        while 2.0 ** e < s:
            e += 1
        while 2.0 ** (e - 1) >= s:
            e -= 1
        s = np.float32(2.0 ** e)
    return m, s


def check_against_oracle(x, bits, rounding, clip=1.0, signed=None, symmetric=True,
                         scale=None, sr_bits=16, seed=11):
    rng = SRStream(seed) if rounding == "stochastic" else None
    draw = SRStream(seed).draw(0)
    q = quantize(x, bits, signed=signed, rounding=rounding, clip=clip, scale=scale, rng=rng,
                 sr_bits=sr_bits, symmetric=symmetric)
    sgn = bool(np.min(x) < 0) if signed is None and x.size else bool(signed)
    m, s = reference_scale(x, bits, clip, sgn, symmetric, scale)
    qmin, qmax = code_range(bits, sgn, symmetric)
    want = quantize_reference(x, m, s, rounding, qmin, qmax, sr_bits, draw.key)
    assert q.scale == s and q.scale.dtype == np.float32
    assert q.codes.dtype == code_dtype(bits, sgn)
    assert q.codes.ravel().tolist() == want
    return q


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("bits,symmetric", [(4, True), (4, False), (8, True), (2, True),
                                            (16, False), (12, True)])
def test_random_inputs_match_oracle(rounding, bits, symmetric):
    x = np.random.default_rng(bits).standard_normal(3000).astype(np.float32) * 3
    check_against_oracle(x, bits, rounding, clip=0.975, symmetric=symmetric)
    check_against_oracle(np.abs(x), bits, rounding, clip=1.0)           # unsigned


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_edge_values_match_oracle(rounding):
    pw = [2.0 ** i + d for i in range(-10, 15) for d in (-1, 0, 1)]
    x = np.array(pw + [-v for v in pw] + [0.0, -0.0, 1e-38, -1e-38, 3.4e38, -3.4e38],
                 dtype=np.float32)
    for bits in (2, 4, 8, 16):
        check_against_oracle(x, bits, rounding)
        check_against_oracle(x[np.abs(x) < 1e38], bits, rounding, scale="pow2")
        check_against_oracle(x, bits, rounding, scale=0.37, symmetric=False)


def test_hand_derived_ties():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.25, -3.75], np.float32)
    want = {"nearest": [0, 2, 2, 0, -2, -2, 3, -4],
            "half_away": [1, 2, 3, -1, -2, -3, 3, -4],
            "half_up": [1, 2, 3, 0, -1, -2, 3, -4],
            "floor": [0, 1, 2, -1, -2, -3, 3, -4]}
    for rounding, codes in want.items():
        q = quantize(x, 8, rounding=rounding, scale=1.0)
        assert q.codes.tolist() == codes, rounding


def test_paper_example_signed_and_unsigned():
    x = np.array([-1.0, 0.25, 0.5, 1.0], np.float32)
    # signed: m = 1, scale = fl32(1/7); 0.5 / fl32(1/7) = 3.4999998 in float32 → 3, not 4
    q = quantize(x, 4)
    assert q.signed and q.scale == np.float32(1 / 7) and q.codes.tolist() == [-7, 2, 3, 7]
    # unsigned: scale = fl32(1/15); 0.5 / fl32(1/15) = 7.4999995 → 7
    q = quantize(np.abs(x), 4)
    assert not q.signed and q.codes.dtype == np.uint8
    assert q.codes.tolist() == [15, 4, 7, 15]


def test_clip_clamps_before_rounding():
    # clip 0.975: the largest value maps to exactly qmax, never beyond
    x = np.linspace(-2, 2, 101).astype(np.float32)
    for rounding in ("floor", "nearest"):
        q = quantize(x, 4, clip=0.975, rounding=rounding)
        assert q.codes.max() <= 7 and q.codes.min() >= -7
    q = quantize(x, 4, clip=0.5)
    assert q.codes[0] == -7 and q.codes[-1] == 7 and (q.codes == 7).sum() > 20


def test_all_zero_and_empty():
    for x in (np.zeros(10, np.float32), np.zeros((3, 0), np.float64)):
        q = quantize(x, 4)
        assert q.scale == 1.0 and not q.codes.any() and q.codes.shape == x.shape
        assert not q.dequantize().any()


def test_full_range_reaches_minus_two_pow():
    q = quantize(np.array([-10.0, 10.0], np.float32), 4, scale=1.0, symmetric=False)
    assert q.codes.tolist() == [-8, 7]
    q = quantize(np.array([-10.0, 10.0], np.float32), 4, scale=1.0)
    assert q.codes.tolist() == [-7, 7]


def test_pow2_scale_is_smallest_power_of_two_above_dynamic_scale():
    for s in (0.3, 0.25, 1.0, 1e-30, 3e5, np.float32(0.25) * (1 + 2**-23)):
        p = pow2_ceil(np.float32(s))
        assert p >= np.float32(s) and p / 2 < np.float32(s)
        assert np.log2(p) == int(np.log2(p))


def test_dequantize_is_codes_times_scale_in_float32():
    x = np.random.default_rng(0).standard_normal(100).astype(np.float32)
    q = quantize(x, 4)
    d = q.dequantize()
    assert d.dtype == np.float32
    assert np.array_equal(d, q.codes.astype(np.float32) * q.scale)
    assert np.abs(d - x).max() <= q.scale / 2 * 1.0001


@given(hnp.arrays(np.float32, st.integers(1, 300),
                  elements=st.floats(-1e6, 1e6, width=32, allow_subnormal=False)),
       st.integers(2, 16), st.sampled_from(ROUNDINGS), st.booleans(),
       st.sampled_from([1.0, 0.975, 0.5]))
def test_property_oracle_and_range(x, bits, rounding, symmetric, clip):
    q = check_against_oracle(x, bits, rounding, clip=clip, symmetric=symmetric)
    assert q.qmin <= q.codes.min() and q.codes.max() <= q.qmax


# -- stochastic rounding ----------------------------------------------------------------------

def test_stochastic_rounding_is_unbiased():
    """Mean code over N = 50,000 draws vs the truncated value v' = floor(v·2^16)/2^16.

    Each code is floor(v) + Bernoulli(p); the mean's standard deviation is ≤ 0.5/sqrt(N).
    The bound 5.5 σ fails with probability < 4e-8 per value for a random seed.
    """
    n = 50_000
    values = np.array([0.1, 0.5, 0.77, 1.3, -0.1, -0.5, -2.71, 3.999], np.float32)
    x = np.repeat(values, n).astype(np.float32)
    q = quantize(x, 8, rounding="stochastic", scale=1.0, rng=SRStream(2024))
    means = q.codes.reshape(len(values), n).astype(np.float64).mean(axis=1)
    truncated = np.floor(values.astype(np.float64) * 2**16) / 2**16
    p = truncated - np.floor(truncated)
    sigma = np.sqrt(np.maximum(p * (1 - p), 1e-12) / n)
    assert np.all(np.abs(means - truncated) <= 5.5 * sigma + 1e-12), (means, truncated)
    for i, v in enumerate(values):                       # both neighbours occur
        seen = set(np.unique(q.codes[i * n:(i + 1) * n]).tolist())
        assert seen == {int(np.floor(v)), int(np.floor(v)) + 1}


def test_stochastic_rounding_exact_values_never_move():
    x = np.arange(-7, 8, dtype=np.float32)
    q = quantize(x, 4, rounding="stochastic", scale=1.0, rng=SRStream(1))
    assert q.codes.tolist() == list(range(-7, 8))


def test_sr_bits_limit_the_probability_resolution():
    # with r = 1 random bit, a fraction below 1/2 truncates to 0 and never rounds up
    x = np.full(10_000, 0.4, np.float32)
    q = quantize(x, 4, rounding="stochastic", scale=1.0, rng=SRStream(3), sr_bits=1)
    assert not q.codes.any()
    x = np.full(10_000, 0.6, np.float32)
    q = quantize(x, 4, rounding="stochastic", scale=1.0, rng=SRStream(3), sr_bits=1)
    assert 0.45 < q.codes.mean() < 0.55


def test_same_seed_same_codes_other_seed_other_codes():
    x = np.random.default_rng(0).standard_normal(5000).astype(np.float32)
    a = quantize(x, 4, rounding="stochastic", rng=SRStream(1)).codes
    b = quantize(x, 4, rounding="stochastic", rng=SRStream(1)).codes
    c = quantize(x, 4, rounding="stochastic", rng=SRStream(2)).codes
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_stream_advances_between_calls():
    x = np.random.default_rng(0).standard_normal(5000).astype(np.float32)
    s = SRStream(1)
    assert not np.array_equal(quantize(x, 4, rounding="stochastic", rng=s).codes,
                              quantize(x, 4, rounding="stochastic", rng=s).codes)
    assert s.draws == 2


def test_chunks_equal_one_call():
    x = np.random.default_rng(1).standard_normal(50_000).astype(np.float32)
    draw = SRStream(9).draw(4)
    whole = quantize(x, 4, rounding="stochastic", scale=0.3, rng=draw).codes
    bounds = [0, 1, 777, 20_000, 33_333, 50_000]
    parts = [quantize(x[a:b], 4, rounding="stochastic", scale=0.3,
                      rng=draw.shifted(a)).codes for a, b in zip(bounds, bounds[1:])]
    assert np.array_equal(whole, np.concatenate(parts))


def test_identical_for_one_and_two_threads():
    code = ("import numpy as np, hashlib, intsim\n"
            "x = np.random.default_rng(5).standard_normal((300, 1000)).astype(np.float32)\n"
            "q = intsim.quantize(x, 4, rounding='stochastic', rng=intsim.SRStream(8))\n"
            "print(hashlib.sha256(q.codes.tobytes()).hexdigest(), q.scale)")
    assert run_python(code, 1) == run_python(code, 2)


# -- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,match", [
    (dict(x=np.array([1, 2])), "x: expected a float"),
    (dict(x=[1.0, 2.0]), "x: expected a float"),
    (dict(x=np.array([1.0, np.nan])), "x: contains NaN"),
    (dict(x=np.array([1.0, np.inf], np.float32)), "x: contains NaN or Inf"),
    (dict(x=np.array([1e300])), "float32 range"),
    (dict(bits=1), "bits"), (dict(bits=17), "bits"), (dict(bits=4.0), "bits"),
    (dict(rounding="round"), "rounding"),
    (dict(rounding="stochastic"), "rng"),
    (dict(clip=0.0), "clip"), (dict(clip=float("nan")), "clip"),
    (dict(scale=-1.0), "scale"), (dict(scale="log"), "scale"),
    (dict(sr_bits=0), "sr_bits"), (dict(sr_bits=33), "sr_bits"),
    (dict(signed="yes"), "signed"),
    (dict(x=np.array([-3e38], np.float32), bits=2, scale="pow2"), "2\\^127"),
    (dict(x=np.array([-1.0, 1.0]), signed=False), "signed=False"),
])
def test_bad_input_names_the_argument(kwargs, match):
    args = dict(x=np.array([0.5, -0.25], np.float32), bits=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        quantize(args.pop("x"), args.pop("bits"), **args)


def test_srdraw_is_accepted_and_does_not_advance_anything():
    x = np.linspace(-1, 1, 100).astype(np.float32)
    d = SRDraw(123)
    assert np.array_equal(quantize(x, 4, rounding="stochastic", rng=d).codes,
                          quantize(x, 4, rounding="stochastic", rng=d).codes)


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_parallel_kernel_equals_serial_kernel(rounding, monkeypatch):
    from intsim.kernels import quantize as K
    x = np.random.default_rng(7).standard_normal(200_000).astype(np.float32)
    got = []
    for threshold in (0, 1 << 62):
        monkeypatch.setattr(K, "PARALLEL_MIN", threshold)
        got.append(quantize(x, 4, rounding=rounding, rng=SRDraw(77), clip=0.9).codes)
    assert np.array_equal(got[0], got[1])


# -- LUQ pieces: radix-2 logarithmic quantizer and the SAWB statistic --------------------------

def test_log2_quantizer_matches_oracle():
    from intsim.kernels.quantize import quantize_log2_reference
    from intsim.core.quantizer import quantize_log2
    from intsim.core.ranges import log2_top
    r = np.random.default_rng(8)
    x = (r.standard_normal(2000) * np.exp(r.uniform(-8, 3, 2000))).astype(np.float32)
    x[:4] = [0.0, -0.0, x.max(), -np.abs(x).max()]
    for bits in (3, 4, 5):
        for sr_bits in (1, 8, 16):
            d = SRStream(bits).draw(sr_bits)
            q = quantize_log2(x, bits, rng=d, sr_bits=sr_bits)
            top = log2_top(bits)
            alpha = np.float32(np.float32(np.abs(x).max()) / np.float32(top))
            assert q.scale == alpha
            assert q.codes.tolist() == quantize_log2_reference(x, alpha, top, sr_bits, d.key)
            mags = np.abs(q.codes[q.codes != 0]).astype(np.int64)
            assert np.all(mags & (mags - 1) == 0) and mags.max() <= top


def test_log2_quantizer_is_unbiased():
    from intsim.core.quantizer import quantize_log2
    n = 50_000
    values = np.array([64.0, 0.3, 1.7, 5.0, -11.0, 40.0], np.float32)   # α = 1: u = |x|
    x = np.repeat(values, n)
    q = quantize_log2(x, 4, rng=SRStream(5))
    means = q.codes.reshape(len(values), n).astype(np.float64).mean(axis=1)
    # each code is one of two neighbours spaced ≤ 32 apart: σ ≤ 16/sqrt(n); bound 5.5 σ
    assert np.all(np.abs(means - values) <= 5.5 * 16 / np.sqrt(n) + 1e-3), means


def test_sawb_statistic_hand_computed():
    from intsim.core.quantizer import sawb_clip
    x = np.array([1.0, -1.0, 1.0, -1.0, 8.0], np.float32)
    s1, s2, n = 12.0, 68.0, 5
    want = np.float32(12.1 * np.sqrt(s2 / n) - 12.2 * (s1 / n))       # 15.35 > max|x| = 8
    assert want > 8 and sawb_clip(x, np.float32(8)) == np.float32(8)
    x = np.array([0.1] * 99 + [10.0], np.float32)
    s1 = float(sum(np.float64(np.float32(0.1)) for _ in range(99))) + 10.0
    s2 = float(sum(np.float64(np.float32(0.1)) ** 2 for _ in range(99))) + 100.0
    want = np.float32(12.1 * np.sqrt(s2 / 100) - 12.2 * (s1 / 100))
    assert 0 < want < 10 and sawb_clip(x, np.float32(10)) == want
    q = quantize(x, 4, scale="sawb", signed=True)
    assert q.scale == np.float32(want / np.float32(7)) and q.codes.max() == 7


def test_trace_records_quantization_statistics():
    from intsim import Trace
    x = np.array([-3.0, -1.0, 0.0, 0.1, 0.2, 1.0, 2.0, 3.0], np.float32)
    tr = Trace()
    q = quantize(x, 3, scale=1.0, trace=tr, label="t")          # codes in [-3, 3]
    rec = tr.records[-1]
    v = x / np.float32(1.0)
    err = q.codes.astype(np.float64) - v.astype(np.float64)
    assert rec["label"] == "t" and rec["elements"] == 8 and rec["rounding"] == "nearest"
    assert rec["at_bounds_fraction"] == 2 / 8 and rec["zero_fraction"] == 3 / 8
    assert rec["clipped_fraction"] == 0.0
    assert np.isclose(rec["mean_round_err"], err.mean())
    assert np.isclose(rec["mean_abs_round_err"], np.abs(err).mean())
    quantize(np.array([10.0, -0.4], np.float32), 3, scale=1.0, trace=tr)
    assert tr.records[-1]["clipped_fraction"] == 0.5


@pytest.mark.parametrize("kwargs,match", [
    (dict(clip=0.0), "clip"), (dict(sr_bits=40), "sr_bits"), (dict(bits=1), "bits"),
    (dict(scale="sawb", bits=8), "scale"), (dict(scale=-2.0), "scale"),
    (dict(symmetric="yes"), "symmetric"), (dict(rounding="up"), "rounding"),
])
def test_quantspec_checks_its_fields_like_quantize(kwargs, match):
    from intsim import QuantSpec
    with pytest.raises(ValueError, match=f"^{match}"):
        QuantSpec(**kwargs)
