"""intsim.testing: the public strategies generate what they promise, and the assertion helpers
accept a correct user model and reject (with a useful message) a subtly wrong one."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from intsim import Accumulator, QuantSpec, SRStream, int_matmul
from intsim.core.numerics import loads, narrow_accumulator_problem
from intsim.hw.golden import element_random_bits
from intsim.core.ranges import code_range
from intsim.testing import (a2q_bound_holds, accumulators, assert_accumulator_matches,
                            assert_bit_exact, assert_no_events_when_a2q_holds,
                            assert_quantizer_matches, int_tensors, matmul_operands,
                            numerics_specs, quant_specs, worst_case_bound)


# -- a user's own accumulator model, written from NUMERICS.md §4 (as in the module docstring)
def my_accumulator(a, b, acc):
    lo, hi = acc.range
    half = 1 << (acc.bits - 1)
    K = a.shape[1]
    tile = K if acc.tile is None else max(1, min(acc.tile, K))
    ts = acc.tile_sum_range
    out = np.zeros((a.shape[0], b.shape[1]), np.int64)
    for m in range(a.shape[0]):
        for n in range(b.shape[1]):
            total = 0
            for k0 in range(0, K, tile):
                reg = 0
                for k in range(k0, min(K, k0 + tile)):
                    s = reg + int(a[m, k]) * int(b[k, n])
                    if acc.mode == "saturate":
                        s = min(max(s, lo), hi)
                    elif acc.mode == "wrap":
                        s = ((s + half) % (2 * half)) - half
                    reg = s
                if acc.mode == "clamp_tile":
                    reg = min(max(reg, lo), hi)
                total += reg
                if ts is not None:
                    tb = acc.tile_sum_bits
                    if acc.mode == "wrap":
                        total = ((total + (1 << (tb - 1))) % (1 << tb)) - (1 << (tb - 1))
                    else:
                        total = min(max(total, ts[0]), ts[1])
            out[m, n] = total
    return out


def buggy_accumulator(a, b, acc):
    """Clamps to the full two's-complement range even when the datapath is symmetric."""
    return my_accumulator(a, b, Accumulator(acc.bits, acc.tile, acc.mode, False,
                                            acc.tile_sum_bits))


@settings(max_examples=80)
@given(ab=matmul_operands(a_bits=4, b_bits=4, max_k=70),
       acc=accumulators(bits=st.integers(4, 12)))
def test_user_model_matches_intsim(ab, acc):
    a, b = ab
    assert_accumulator_matches(my_accumulator, a, b, acc)


def test_a_wrong_model_is_caught_with_a_useful_message():
    a = np.full((2, 40), -7, np.int8)
    b = np.full((40, 3), 7, np.int8)
    acc = Accumulator(bits=8, tile=32, mode="saturate", symmetric=True)
    with pytest.raises(AssertionError) as e:
        assert_accumulator_matches(buggy_accumulator, a, b, acc)
    msg = str(e.value)
    assert "output [0, 0]" in msg and "intsim -254" in msg and "model -256" in msg
    assert "exact tile sums = [-1568, -392]" in msg


@given(t=int_tensors(bits=st.integers(2, 16), signed=st.booleans(), symmetric=st.booleans()))
def test_int_tensors_stay_in_range(t):
    assert t.dtype.kind in "iu" and t.ndim in (1, 2)
    if t.size:
        bits = t.dtype.itemsize * 8
        assert -(1 << (bits - 1)) <= t.min() and t.max() < (1 << bits)


@given(t=int_tensors(bits=4, shape=(5, 3), signed=True, symmetric=True))
def test_int_tensors_fixed_shape_symmetric(t):
    assert t.shape == (5, 3) and t.dtype == np.int8
    assert t.min() >= -7 and t.max() <= 7


@given(acc=accumulators())
def test_accumulators_are_valid(acc):
    assert isinstance(acc, Accumulator)
    assert acc.tile_sum_bits is None or acc.tile_sum_bits >= acc.bits


@given(spec=quant_specs(log2=True))
def test_quant_specs_are_valid(spec):
    assert isinstance(spec, QuantSpec)
    assert spec.scale != "sawb" or spec.bits == 4


@given(nm=numerics_specs())
def test_numerics_specs_are_valid_datapaths(nm):
    assert narrow_accumulator_problem(nm) is None
    assert loads(nm.to_toml()).numerics == nm


@settings(max_examples=120)
@given(ab=matmul_operands(a_bits=st.integers(2, 6), b_bits=st.integers(2, 6), max_k=48),
       acc=accumulators(bits=st.integers(6, 16)))
def test_no_event_when_the_a2q_bound_holds(ab, acc):
    a, b = ab
    assume(assert_no_events_when_a2q_holds(a, b, acc))


def test_a2q_bound_is_tight_enough_to_matter():
    """All-maximal operands: the bound fails by one bit and then an event does happen."""
    a = np.full((1, 8), 7, np.int8)
    b = np.full((8, 1), 7, np.int8)
    bit = (8 * 49).bit_length() + 1                                  # 392 → 10 bits
    fits = Accumulator(bits=bit, tile=None, mode="saturate")
    assert a2q_bound_holds(a, b, fits) and assert_no_events_when_a2q_holds(a, b, fits)
    tight = Accumulator(bits=bit - 1, tile=None, mode="saturate")
    assert not a2q_bound_holds(a, b, tight)
    assert int_matmul(a, b, tight)[0, 0] == tight.range[1]          # saturated
    assert worst_case_bound(8, 7, 7) == 392


def test_quantizer_helper_with_a_user_sr_model():
    """A user's stochastic rounding from the documented random bits matches intsim."""
    spec = QuantSpec(bits=4, rounding="stochastic", signed=True, sr_bits=12)

    def my_quantizer(x, spec, draw):
        m = np.float32(np.abs(x).max())
        scale = np.float32(m / np.float32(7))
        v = (np.clip(x, -m, m) / scale).astype(np.float32).astype(np.float64)
        R = element_random_bits(draw.key, x.size, spec.sr_bits).reshape(x.shape)
        q = (np.floor(v * 2.0 ** spec.sr_bits).astype(np.int64) + R) >> spec.sr_bits
        lo, hi = code_range(4, True)
        return np.clip(q, lo, hi), scale

    x = np.random.default_rng(0).standard_normal((7, 9)).astype(np.float32)
    draw = SRStream(5).child("x").draw(0)
    assert_quantizer_matches(my_quantizer, x, spec, draw)
    with pytest.raises(AssertionError, match="codes"):
        assert_quantizer_matches(lambda x, s, d: (my_quantizer(x, s, d)[0] + (x > 1),
                                                  my_quantizer(x, s, d)[1]), x, spec, draw)


def test_assert_bit_exact():
    assert_bit_exact(np.array([1.0, -0.0], np.float32), np.array([1.0, -0.0], np.float32))
    with pytest.raises(AssertionError, match=r"first at \[1\]"):
        assert_bit_exact(np.array([1.0, 0.0], np.float32), np.array([1.0, -0.0], np.float32))
    with pytest.raises(AssertionError, match="shape"):
        assert_bit_exact(np.zeros(3), np.zeros(4))
