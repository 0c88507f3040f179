"""int_matmul: kernel == plain-Python oracle in every mode; properties of each mode."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import run_python
from intsim import Accumulator, Trace, int_matmul
from intsim.kernels.accumulate import int_matmul_reference

MODES = ["saturate", "clamp_tile", "wrap", "exact"]


class Capture:
    """A minimal trace that keeps the raw statistics of the last call."""

    def record_matmul(self, label, acc, stats, shape):
        self.stats, self.shape = stats, shape


def check_against_oracle(a, b, acc):
    cap = Capture()
    got = int_matmul(a, b, acc, trace=cap)
    assert got.dtype == np.int64
    assert np.array_equal(int_matmul(a, b, acc), got), "traced and untraced results differ"
    a2 = a.reshape(int(np.prod(a.shape[:-1])), a.shape[-1])
    out, events, hits, ts_ev = int_matmul_reference(a2, b, acc.mode,
                                                    acc.bits, acc.tile, acc.symmetric,
                                                    acc.tile_sum_bits)
    want = np.array(out, dtype=np.int64).reshape(got.shape)
    assert np.array_equal(got, want)
    assert cap.stats.events.tolist() == events
    assert cap.stats.tiles_hit.tolist() == hits
    assert cap.stats.ts_events.tolist() == ts_ev
    return got, cap.stats


SHAPES = [(5, 70, 6), (1, 3, 1), (4, 32, 4), (7, 31, 3), (3, 100, 17), (9, 64, 1),
          (1, 1, 9), (6, 0, 2)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("tile_sum_bits", [None, 9, 12])
def test_random_matches_oracle(mode, symmetric, tile_sum_bits):
    rng = np.random.default_rng(hash((mode, symmetric, tile_sum_bits)) % 2**32)
    for M, K, N in SHAPES:
        for tile in (32, 8, None, 1, 200):
            a = rng.integers(-8, 8, (M, K)).astype(np.int8)
            b = rng.integers(-8, 8, (K, N)).astype(np.int8)
            check_against_oracle(a, b, Accumulator(8, tile, mode, symmetric, tile_sum_bits))


@pytest.mark.parametrize("mode", MODES)
def test_edge_values_match_oracle(mode):
    """Type limits and ±2^i±{0,1} operands, several accumulator widths."""
    vals = sorted({v for i in range(8) for v in (2**i - 1, 2**i, 2**i + 1, -(2**i) - 1,
                                                 -(2**i), -(2**i) + 1)} | {-128, 127, 0})
    vals = np.array([v for v in vals if -128 <= v <= 127], np.int8)
    rng = np.random.default_rng(1)
    a = rng.choice(vals, (6, 45)).astype(np.int8)
    b = rng.choice(vals, (45, 5)).astype(np.int8)
    for bits in (4, 8, 16, 20):
        for tsb in (None, bits + 2):
            check_against_oracle(a, b, Accumulator(bits, 16, mode, tile_sum_bits=tsb))
    extremes = np.full((4, 40), -128, np.int8)
    check_against_oracle(extremes, np.full((40, 3), -128, np.int8), Accumulator(8, 32, mode))
    check_against_oracle(np.zeros((3, 10), np.int8), np.zeros((10, 2), np.int8),
                         Accumulator(8, 4, mode))


@pytest.mark.parametrize("mode", MODES)
def test_wide_dtypes_and_unsigned(mode):
    rng = np.random.default_rng(2)
    a = rng.integers(0, 16, (5, 50)).astype(np.uint8)              # unsigned activations
    b = rng.integers(-7, 8, (50, 4)).astype(np.int8)
    check_against_oracle(a, b, Accumulator(8, 32, mode))
    a = rng.integers(-30000, 30000, (4, 20)).astype(np.int32)        # needs int64 registers
    b = rng.integers(-30000, 30000, (20, 3)).astype(np.int16)
    check_against_oracle(a, b, Accumulator(40, 8, mode, tile_sum_bits=44))


def test_batched_leading_dims():
    rng = np.random.default_rng(3)
    a = rng.integers(-7, 8, (2, 3, 5, 40)).astype(np.int8)
    b = rng.integers(-7, 8, (40, 6)).astype(np.int8)
    acc = Accumulator(8, 16, "saturate")
    got, _ = check_against_oracle(a, b, acc)
    assert got.shape == (2, 3, 5, 6)
    for i in range(2):
        for j in range(3):
            assert np.array_equal(got[i, j], int_matmul(a[i, j], b, acc))


def test_saturation_depends_on_order():
    # 100 + 100 saturates to 127 before -100 arrives: 27, not the exact 100
    a = np.array([[1, 1, 1]], np.int8)
    b = np.array([[100], [100], [-100]], np.int16)
    assert int_matmul(a, b, Accumulator(8, None, "saturate"))[0, 0] == 27
    assert int_matmul(a, b, Accumulator(8, None, "clamp_tile"))[0, 0] == 100
    assert int_matmul(a, b, Accumulator(8, None, "wrap"))[0, 0] == 100
    assert int_matmul(a, b[::-1].copy(), Accumulator(8, None, "saturate"))[0, 0] == 100


def test_hand_computed_tiles_and_tile_sum_register():
    a = np.ones((1, 6), np.int8)
    b = np.array([[60], [60], [60], [60], [-10], [-10]], np.int8)
    # tiles of 2: exact partials 120, 120, -20
    assert int_matmul(a, b, Accumulator(8, 2, "clamp_tile"))[0, 0] == 220
    # tiles of 3: partials 180 → 127, 40 → 167 in total
    assert int_matmul(a, b, Accumulator(8, 3, "clamp_tile"))[0, 0] == 167
    # the same with an 8-bit tile-sum register: 127 + 40 saturates at 127
    cap = Capture()
    got = int_matmul(a, b, Accumulator(8, 3, "clamp_tile", tile_sum_bits=8), trace=cap)
    assert got[0, 0] == 127 and cap.stats.ts_events[0, 0] == 1
    assert cap.stats.events[0, 0] == 1 and cap.stats.max_abs_partial == 180
    # wrap: 180 ≡ -76 (mod 256); -76 + 40 = -36
    assert int_matmul(a, b, Accumulator(8, 3, "wrap"))[0, 0] == -36


# -- properties ---------------------------------------------------------------------------------

@st.composite
def matmul_case(draw):
    M, K, N = draw(st.integers(1, 6)), draw(st.integers(1, 80)), draw(st.integers(1, 6))
    abits = draw(st.integers(2, 6))
    lim = 2 ** (abits - 1)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    a = rng.integers(-lim, lim, (M, K)).astype(np.int8)
    b = rng.integers(-lim, lim, (K, N)).astype(np.int8)
    acc = Accumulator(draw(st.integers(3, 14)), draw(st.sampled_from([None, 1, 4, 16, 32])),
                      draw(st.sampled_from(MODES)), draw(st.booleans()))
    return a, b, acc


def exact(a, b):
    return a.astype(np.int64) @ b.astype(np.int64)


@given(matmul_case())
def test_no_event_means_exact(case):
    a, b, acc = case
    cap = Capture()
    got = int_matmul(a, b, acc, trace=cap)
    if cap.stats.events.sum() == 0 and cap.stats.ts_events.sum() == 0:
        assert np.array_equal(got, exact(a, b))
    else:
        assert acc.mode != "exact"


@given(matmul_case())
def test_saturating_outputs_stay_in_range(case):
    a, b, acc = case
    acc = Accumulator(acc.bits, None, "saturate", acc.symmetric)       # one tile
    got = int_matmul(a, b, acc)
    lo, hi = acc.range
    assert got.min() >= lo and got.max() <= hi


@given(matmul_case())
def test_wrap_is_exact_modulo_2_pow_bits(case):
    a, b, acc = case
    acc = Accumulator(acc.bits, acc.tile, "wrap")
    got = int_matmul(a, b, acc)
    assert np.array_equal(got % 2**acc.bits, exact(a, b) % 2**acc.bits)
    lo, hi = -(2 ** (acc.bits - 1)), 2 ** (acc.bits - 1) - 1
    if acc.tile is None:
        assert got.min() >= lo and got.max() <= hi


@given(matmul_case())
def test_clamp_tile_is_sum_of_clamped_exact_tile_sums(case):
    a, b, acc = case
    acc = Accumulator(acc.bits, acc.tile, "clamp_tile", acc.symmetric)
    K = a.shape[1]
    tile = acc.tile or K
    lo, hi = acc.range
    want = sum(np.clip(exact(a[:, k:k + tile], b[k:k + tile]), lo, hi)
               for k in range(0, K, tile))
    assert np.array_equal(int_matmul(a, b, acc), want)


@given(matmul_case())
def test_a2q_bound_excludes_events(case):
    """If Σ_{k∈tile} |b[k,n]| · max|a| ≤ 2^(bits-1) - 1 for every tile and column, no event."""
    a, b, acc = case
    acc = Accumulator(acc.bits, acc.tile, acc.mode if acc.mode != "exact" else "saturate")
    K = a.shape[1]
    tile = acc.tile or K
    amax = np.abs(a.astype(np.int64)).max()
    bound_ok = all((np.abs(b[k:k + tile].astype(np.int64)).sum(axis=0) * amax
                    <= 2 ** (acc.bits - 1) - 1).all() for k in range(0, K, tile))
    cap = Capture()
    int_matmul(a, b, acc, trace=cap)
    if bound_ok:
        assert cap.stats.events.sum() == 0
    assert cap.stats.max_abs_prefix <= tile * amax * np.abs(b.astype(np.int64)).max()


def test_a2q_bound_violation_is_exercised():
    # the bound's complement must produce events, or the property test above proves nothing
    a = np.full((2, 32), 7, np.int8)
    b = np.full((32, 2), 7, np.int8)
    cap = Capture()
    int_matmul(a, b, Accumulator(8, 32, "saturate"), trace=cap)
    assert cap.stats.events.sum() > 0 and cap.stats.max_abs_prefix == 32 * 49


def test_trace_records_counts_and_histogram():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 16, (10, 70)).astype(np.uint8)
    b = rng.integers(-7, 8, (70, 5)).astype(np.int8)
    tr = Trace()
    tr.step = 3
    int_matmul(a, b, Accumulator(8, 32, "saturate"), trace=tr, label="fc1/fwd")
    rec = tr.records[-1]
    assert rec["label"] == "fc1/fwd" and rec["step"] == 3 and rec["macs"] == 10 * 70 * 5
    assert rec["tiles"] == 10 * 5 * 3
    # histogram counts every exact tile partial once, binned by bit length
    partials = [exact(a[:, k:k + 32], b[k:k + 32]) for k in range(0, 70, 32)]
    want = np.zeros(64, np.int64)
    for p in partials:
        for v in np.abs(p).ravel():
            want[int(v).bit_length()] += 1
    assert np.array_equal(tr.hists[-1], want)
    assert rec["max_abs_partial"] == max(np.abs(p).max() for p in partials)


def test_identical_for_one_and_two_threads():
    code = ("import numpy as np, hashlib, intsim\n"
            "r = np.random.default_rng(5)\n"
            "a = r.integers(0, 16, (257, 405)).astype(np.uint8)\n"
            "b = r.integers(-7, 8, (405, 99)).astype(np.int8)\n"
            "h = hashlib.sha256()\n"
            "for mode in ['saturate', 'clamp_tile', 'wrap', 'exact']:\n"
            "    t = intsim.Trace()\n"
            "    h.update(intsim.int_matmul(a, b, intsim.Accumulator(8, 32, mode), trace=t)"
            ".tobytes())\n"
            "    h.update(repr(t.records).encode())\n"
            "print(h.hexdigest())")
    assert run_python(code, 1) == run_python(code, 2)


@pytest.mark.parametrize("call,match", [
    (lambda: int_matmul(np.ones((2, 3)), np.ones((3, 2), np.int8), Accumulator()), "a:"),
    (lambda: int_matmul(np.ones((2, 3), np.int8), [[1], [2], [3]], Accumulator()), "b:"),
    (lambda: int_matmul(np.ones((2, 3), np.int8), np.ones((4, 2), np.int8), Accumulator()),
     "shapes"),
    (lambda: int_matmul(np.ones(3, np.int8), np.ones((3, 2), np.int8), Accumulator()),
     "shapes"),
    (lambda: int_matmul(np.ones((2, 3), np.int8), np.ones((3, 2), np.int8), "8bit"), "acc"),
    (lambda: Accumulator(bits=1), "bits"), (lambda: Accumulator(bits=63), "bits"),
    (lambda: Accumulator(tile=0), "tile"), (lambda: Accumulator(mode="clip"), "mode"),
    (lambda: Accumulator(tile_sum_bits=1), "tile_sum_bits"),
    (lambda: Accumulator(symmetric=None), "symmetric"),
    (lambda: int_matmul(np.full((1, 4), 2**62, np.int64), np.full((4, 1), 4, np.int64),
                        Accumulator(8, None, "exact")), "int64|64-bit"),
])
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("mode", MODES)
def test_parallel_kernel_equals_serial_kernel(mode, monkeypatch):
    """Large calls take the parallel kernel; it must give the serial kernel's bits."""
    from intsim.kernels import accumulate as K
    rng = np.random.default_rng(6)
    a = rng.integers(0, 16, (130, 300)).astype(np.uint8)
    b = rng.integers(-7, 8, (300, 70)).astype(np.int8)
    acc = Accumulator(8, 32, mode, tile_sum_bits=11)
    results = []
    for threshold in (0, 1 << 62):
        monkeypatch.setattr(K, "PARALLEL_MIN_MACS", threshold)
        tr = Trace()
        results.append((int_matmul(a, b, acc, trace=tr), tr.records[0], tr.hists[0]))
    assert np.array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1] and np.array_equal(results[0][2], results[1][2])


@pytest.mark.parametrize("shape", [(6, 0, 2), (9, 40, 1), (130, 70, 5), (5, 70, 130)])
def test_histogram_counts_every_tile_partial_once(shape):
    """Both kernel orientations (few columns → lanes over rows) and K = 0."""
    M, K, N = shape
    rng = np.random.default_rng(9)
    a = rng.integers(-7, 8, (M, K)).astype(np.int8)
    b = rng.integers(-7, 8, (K, N)).astype(np.int8)
    tr = Trace()
    int_matmul(a, b, Accumulator(8, 32, "saturate"), trace=tr)
    assert tr.hists[-1].min() >= 0
    assert tr.hists[-1].sum() == M * N * -(-K // 32)
