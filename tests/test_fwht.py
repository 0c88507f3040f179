"""Tests for intsim.core.hadamard.fwht (fast Walsh–Hadamard transform) and its oracle.

Oracles: fwht_reference (definition H[i, j] = (-1)^popcount(i & j) with Python ints; the
documented butterfly order with scalar float arithmetic) and hadamard_matrix (the Sylvester
recursion), checked against each other. All randomness is seeded; Hypothesis is derandomized.
"""
import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import intsim.core.hadamard as hmod
from intsim.core.hadamard import (
    block_size,
    fwht,
    hadamard_matrix,
    largest_pow2_block,
    next_pow2,
    result_dtype,
)
from intsim.kernels.fwht import fwht_reference

INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32]
HYP = settings(derandomize=True, max_examples=40, deadline=None)


def as_obj(a):
    """Exact Python-int view of an integer array (object dtype)."""
    return np.asarray(a).astype(object)


def random_ints(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


def ref_along(x, axis, p):
    """Oracle along any axis (moves the axis last and back)."""
    return np.moveaxis(fwht_reference(np.moveaxis(x, axis, -1), p), -1, axis)


def pad_to(x, m, axis=-1):
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, m - x.shape[axis])
    return np.pad(x, widths)


@pytest.fixture(params=["serial", "parallel"])
def path(request, monkeypatch):
    """Force the serial or the prange kernels (results must be identical)."""
    monkeypatch.setattr(hmod, "_PARALLEL_MIN_WORK", 1 << 62 if request.param == "serial" else 0)
    return request.param


# ---------------------------------------------------------------------------------------
# Helpers and the two oracles
# ---------------------------------------------------------------------------------------
def test_block_helpers():
    assert [largest_pow2_block(n) for n in (1, 2, 3, 12, 96, 405, 4096, 6 << 20)] == \
        [1, 2, 1, 4, 32, 1, 4096, 2 << 20]
    assert [next_pow2(n) for n in (1, 2, 3, 5, 8, 9, 405, 4097)] == \
        [1, 2, 4, 8, 8, 16, 512, 8192]
    assert block_size(48) == 16
    assert block_size(48, None) == 16
    assert block_size(48, "pad") == 64
    assert block_size(64, "pad") == 64
    assert block_size(48, 8) == 8
    assert block_size(48, np.int64(4)) == 4
    assert block_size(0) == 1 and block_size(0, "pad") == 1 and block_size(0, 8) == 8
    for f in (largest_pow2_block, next_pow2):
        with pytest.raises(ValueError, match="`n`"):
            f(0)
        with pytest.raises(ValueError, match="`n`"):
            f(2.0)


def test_hadamard_matrix_sylvester():
    assert hadamard_matrix(1).tolist() == [[1]]
    assert hadamard_matrix(2).tolist() == [[1, 1], [1, -1]]
    assert hadamard_matrix(4).tolist() == [
        [1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]
    for n in (8, 64):
        h = hadamard_matrix(n)
        i, j = np.indices((n, n))
        popc = np.vectorize(lambda v: bin(v).count("1"))(i & j)
        assert np.array_equal(h, (-1) ** popc)
        assert np.array_equal(h @ h, n * np.eye(n, dtype=np.int64))
    assert hadamard_matrix(8, np.float32).dtype == np.float32
    for bad in (0, 3, 12, -4):
        with pytest.raises(ValueError, match="`n`"):
            hadamard_matrix(bad)


def test_reference_matches_matrix():
    """The two independent definitions agree (popcount sum vs Sylvester recursion)."""
    rng = np.random.default_rng(1)
    for p in (1, 2, 4, 8, 32):
        x = rng.integers(-1000, 1000, size=(3, 2 * p))
        bd = np.kron(np.eye(2, dtype=np.int64), hadamard_matrix(p))
        assert np.array_equal(fwht_reference(x, p), as_obj(x) @ as_obj(bd).T)
    # basis vectors give the rows of H
    assert np.array_equal(fwht_reference(np.eye(8, dtype=np.int64), 8), as_obj(hadamard_matrix(8)))


# ---------------------------------------------------------------------------------------
# Dtype growth
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt,p,expected", [
    (np.int8, 1, np.int8), (np.int8, 2, np.int16), (np.int8, 16, np.int16),
    (np.int8, 256, np.int16), (np.int8, 512, np.int32),
    (np.uint8, 1, np.int16), (np.uint8, 128, np.int16), (np.uint8, 256, np.int32),
    (np.int16, 1, np.int16), (np.int16, 2, np.int32), (np.int16, 1 << 16, np.int32),
    (np.int16, 1 << 17, np.int64), (np.uint16, 1, np.int32), (np.uint16, 1 << 15, np.int32),
    (np.uint16, 1 << 16, np.int64), (np.int32, 1, np.int32), (np.int32, 2, np.int64),
    (np.int32, 128, np.int64), (np.int32, 4096, np.int64), (np.int32, 1 << 32, np.int64),
    (np.uint32, 1, np.int64), (np.uint32, 1 << 31, np.int64), (np.int64, 1, np.int64),
    (np.float32, 1, np.float32), (np.float32, 1024, np.float32), (np.float64, 64, np.float64),
])
def test_result_dtype_table(dt, p, expected):
    assert result_dtype(dt, p) == np.dtype(expected)
    assert result_dtype(np.dtype(dt).newbyteorder(">"), p) == np.dtype(expected)


@pytest.mark.parametrize("dt,p", [(np.int64, 2), (np.int32, 1 << 33), (np.uint32, 1 << 32),
                                  (np.uint64, 1), (np.int8, 1 << 57)])
def test_result_dtype_overflow(dt, p):
    with pytest.raises(ValueError, match="`x`.*bits"):
        result_dtype(dt, p)


def test_result_dtype_bad_p():
    for bad in (0, 3, -2):
        with pytest.raises(ValueError, match="`p`"):
            result_dtype(np.int8, bad)


def test_growth_overflow_from_fwht():
    with pytest.raises(ValueError, match="`x`"):
        fwht(np.ones((2, 4), np.int64))
    with pytest.raises(ValueError, match="`x`"):
        fwht(np.ones(3, np.uint64))
    # p = 1 keeps int64 (identity, no growth)
    y = fwht(np.array([np.iinfo(np.int64).min, 5, np.iinfo(np.int64).max]))
    assert y.dtype == np.int64 and y.tolist() == [np.iinfo(np.int64).min, 5, np.iinfo(np.int64).max]


def test_fwht_output_dtype_is_tight():
    """int8, p=16 -> int16 and the worst case -128*16 = -2^11 is produced exactly."""
    y = fwht(np.full((1, 16), -128, np.int8))
    assert y.dtype == np.int16
    assert y[0, 0] == -2048 and np.all(y[0, 1:] == 0)
    # int8, p=256: 8 + 8 = 16 bits; all -128 -> -32768 = int16 min exactly
    y = fwht(np.full(256, -128, np.int8))
    assert y.dtype == np.int16 and y[0] == -32768 and np.all(y[1:] == 0)
    # row 1 of H alternates signs: max positive value (2^(b-1) * p - p/2) for int8, p=256
    x = np.where(np.arange(256) % 2 == 0, 127, -128).astype(np.int8)
    y = fwht(x)
    assert int(y[1]) == 256 * 255 // 2 == 32640


# ---------------------------------------------------------------------------------------
# Bit equality with the oracle
# ---------------------------------------------------------------------------------------
LENGTHS = [1, 2, 3, 4, 5, 8, 12, 16, 24, 32, 40, 64, 96, 128, 192, 256]


@pytest.mark.parametrize("dt", INT_DTYPES)
def test_random_ints_match_oracle(dt, path):
    rng = np.random.default_rng(100 + INT_DTYPES.index(dt))
    for n in LENGTHS:
        p = largest_pow2_block(n)
        if np.dtype(dt) == np.int64 and p > 1:
            continue  # int64 growth is rejected (tested separately)
        x = random_ints(rng, dt, (3, n))
        x0 = x.copy()
        y = fwht(x)
        assert y.dtype == result_dtype(dt, p)
        assert y.shape == x.shape and y.flags.c_contiguous
        assert np.array_equal(as_obj(y), fwht_reference(x, p)), (dt, n)
        assert np.array_equal(x, x0)  # input untouched


def edge_vector(dt):
    """Type limits, +-2^i +- {0, 1} inside the range, zeros."""
    info = np.iinfo(dt)
    vals = {info.min, info.max, info.min + 1, info.max - 1, 0, 1, -1}
    for i in range(info.bits + 1):
        for d in (-1, 0, 1):
            vals.update({2**i + d, -(2**i) + d})
    return np.array(sorted(v for v in vals if info.min <= v <= info.max), dtype=object)


@pytest.mark.parametrize("dt", [np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32])
def test_edge_values_match_oracle(dt, path):
    info = np.iinfo(dt)
    rng = np.random.default_rng(3)
    vals = edge_vector(dt)
    for n in (64, 48, 7, 256):
        rows = [rng.choice(vals, size=n) for _ in range(4)]
        rows += [np.full(n, info.min), np.full(n, info.max), np.zeros(n, dtype=object),
                 np.resize(vals, n),
                 np.where(np.arange(n) % 2 == 0, info.max, info.min)]
        x = np.array(np.stack(rows).astype(object), dtype=dt)
        p = largest_pow2_block(n)
        assert np.array_equal(as_obj(fwht(x)), fwht_reference(x, p)), (dt, n)
        assert np.array_equal(as_obj(fwht(x, block="pad")),
                              fwht_reference(pad_to(x, next_pow2(n)), next_pow2(n))), (dt, n)


@pytest.mark.parametrize("n,block", [(48, 1), (48, 2), (48, 4), (48, 8), (48, 16),
                                     (64, 8), (64, 32), (96, 32), (512, 64), (2048, 2048)])
def test_explicit_block(n, block, path):
    rng = np.random.default_rng(n + block)
    x = random_ints(rng, np.int16, (2, n))
    y = fwht(x, block=block)
    assert y.dtype == result_dtype(np.int16, block)
    if block <= 256:
        assert np.array_equal(as_obj(y), fwht_reference(x, block))
    bd = np.kron(np.eye(n // block, dtype=np.int64), hadamard_matrix(block))
    assert np.array_equal(y.astype(np.int64), x.astype(np.int64) @ bd)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 12, 33, 64, 100])
def test_pad_mode(n, path):
    rng = np.random.default_rng(n)
    m = next_pow2(n)
    x = random_ints(rng, np.int8, (3, n))
    y = fwht(x, block="pad")
    assert y.shape == (3, m) and y.dtype == result_dtype(np.int8, m)
    assert np.array_equal(as_obj(y), fwht_reference(pad_to(x, m), m))
    assert np.array_equal(fwht(x, block=np.str_("pad")), y)
    if m == n:
        assert np.array_equal(y, fwht(x))
    # pad along a leading axis
    xt = np.ascontiguousarray(np.swapaxes(x, 0, 1))[None]  # (1, n, 3)
    yt = fwht(xt, axis=1, block="pad")
    assert yt.shape == (1, m, 3) and np.array_equal(yt[0], y.T)


@pytest.mark.parametrize("shape,axis", [((5, 3, 12), 0), ((3, 12, 5), 1), ((3, 5, 12), 2),
                                        ((3, 5, 12), -1), ((4, 16, 300), -2), ((2, 2, 8, 3, 2), 2),
                                        ((40, 3), 0), ((8,), 0), ((1, 1, 16), 0),
                                        ((3, 24, 1, 1), 1)])
def test_axes_and_batching(shape, axis, path):
    rng = np.random.default_rng(len(shape) * 10 + axis)
    x = random_ints(rng, np.int16, shape)
    n = shape[axis]
    p = largest_pow2_block(n)
    y = fwht(x, axis=axis)
    assert y.shape == x.shape and y.flags.c_contiguous and y.dtype == result_dtype(np.int16, p)
    assert np.array_equal(as_obj(y), ref_along(x, axis, p))
    for block in ("pad", 1):
        yb = fwht(x, axis=axis, block=block)
        m = next_pow2(n) if block == "pad" else n
        pb = block_size(n, block)
        assert np.array_equal(as_obj(yb), ref_along(pad_to(x, m, axis), axis, pb))


def test_noncontiguous_fortran_bigendian_inputs():
    rng = np.random.default_rng(5)
    base = random_ints(rng, np.int16, (6, 64))
    want = fwht_reference(base[:, ::2], 32)
    assert np.array_equal(as_obj(fwht(base[:, ::2])), want)
    assert np.array_equal(as_obj(fwht(np.asfortranarray(base[:, ::2]))), want)
    assert np.array_equal(as_obj(fwht(base[:, ::2].astype(">i2"))), want)
    assert np.array_equal(as_obj(fwht(base[::2])), fwht_reference(base[::2], 64))
    ro = base[::2].copy()
    ro.setflags(write=False)  # read-only input works and stays untouched
    assert np.array_equal(as_obj(fwht(ro)), fwht_reference(base[::2], 64))
    # python lists are accepted (int64, p = 1 -> identity)
    assert fwht([1, 2, 3]).tolist() == [1, 2, 3]
    assert fwht(np.array([1, 2], np.int8)).tolist() == [3, -1]


def test_identity_cases_return_copies():
    x = np.arange(12, dtype=np.int8).reshape(4, 3)
    y = fwht(x)  # odd n -> p = 1
    assert y.dtype == np.int8 and np.array_equal(y, x) and not np.shares_memory(x, y)
    y = fwht(x.astype(np.uint8))  # uint8 -> 9 bits -> int16
    assert y.dtype == np.int16 and np.array_equal(y, x)
    x = np.arange(5.0).reshape(5, 1)  # n = 1
    y = fwht(x)
    assert np.array_equal(y, x) and not np.shares_memory(x, y)
    y = fwht(x, block="pad")
    assert y.shape == (5, 1)


def test_empty_and_zero_d():
    for shape, axis in (((0, 8), -1), ((0, 8), 0), ((3, 0), -1), ((3, 0, 4), 1), ((0,), 0)):
        x = np.zeros(shape, np.int8)
        for block in (None, "pad"):
            y = fwht(x, axis=axis, block=block)
            assert y.shape == shape
            assert y.dtype == result_dtype(np.int8, block_size(shape[axis], block))
    assert fwht(np.zeros((0, 8), np.int8)).dtype == np.int16  # p = 8 still sets the dtype
    with pytest.raises(ValueError, match="at least 1 dimension"):
        fwht(np.int8(3))
    with pytest.raises(ValueError, match="at least 1 dimension"):
        fwht(np.array(2.0))


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("block", [3, 0, -4, 6, 32, "foo", 2.0, True, [4]])
def test_bad_block(block):
    with pytest.raises(ValueError, match="`block`"):
        fwht(np.zeros((2, 48), np.int8), block=block)


def test_bad_block_message_says_what_is_expected():
    with pytest.raises(ValueError, match=r"`block`=32 must divide.*n=48.*power of two"):
        fwht(np.zeros(48, np.int8), block=32)


@pytest.mark.parametrize("dt", [np.float16, np.bool_, object, np.complex64, np.complex128,
                                "datetime64[s]", "U3", np.uint64])
def test_bad_dtype(dt):
    x = np.zeros((2, 8), dtype=dt)
    with pytest.raises(ValueError, match="`x`") as ei:
        fwht(x)
    if dt is not np.uint64:
        assert "float32" in str(ei.value)  # names the expected dtypes


def test_bad_axis():
    with pytest.raises(ValueError, match="axis"):
        fwht(np.zeros((2, 8), np.int8), axis=2)
    with pytest.raises(ValueError, match="`axis`"):
        fwht(np.zeros((2, 8), np.int8), axis=1.0)
    assert fwht(np.ones((2, 8), np.int8), axis=np.int64(-2)).tolist() == [[2] * 8, [0] * 8]


# ---------------------------------------------------------------------------------------
# Hypothesis properties
# ---------------------------------------------------------------------------------------
@st.composite
def int_case(draw, dtypes=(np.int8, np.int16, np.uint8), max_k=6):
    dt = draw(st.sampled_from(dtypes))
    n = draw(st.sampled_from([1, 3, 5])) << draw(st.integers(0, max_k))
    rows = draw(st.integers(1, 3))
    x = draw(hnp.arrays(dt, (rows, n)))
    block = draw(st.sampled_from([None, "pad", "explicit"]))
    if block == "explicit":
        block = 1 << draw(st.integers(0, largest_pow2_block(n).bit_length() - 1))
    return x, block


@HYP
@given(int_case())
def test_prop_involution(case):
    """fwht(fwht(x)) == p * x (pad mode: p * zero-padded x)."""
    x, block = case
    n = x.shape[-1]
    p = block_size(n, block)
    y = fwht(x, block=block)
    z = fwht(y, block=p)
    m = y.shape[-1]
    assert np.array_equal(as_obj(z), p * as_obj(pad_to(x, m)))


@HYP
@given(int_case(dtypes=(np.int8, np.int16, np.int32, np.uint8, np.uint16)))
def test_prop_block_diagonal_matrix(case):
    """fwht(x) == pad(x) @ diag(H_p, ..., H_p) with exact Python-int arithmetic."""
    x, block = case
    n = x.shape[-1]
    p = block_size(n, block)
    m = next_pow2(n) if block == "pad" else n
    bd = np.kron(np.eye(m // p, dtype=np.int64), hadamard_matrix(p))
    y = fwht(x, block=block)
    assert y.dtype == result_dtype(x.dtype, p)
    assert np.array_equal(as_obj(y), as_obj(pad_to(x, m)) @ as_obj(bd))


@HYP
@given(int_case(dtypes=(np.int8, np.int16, np.int32), max_k=8),
       st.sampled_from([np.float64, np.float32]))
def test_prop_float_integer_valued(case, fdt):
    """Integer-valued floats: float64 result equals the exact integer result (|y| < 2^53);
    float32 too while every partial sum stays below 2^24 (int8 values here)."""
    x, block = case
    if fdt == np.float32:  # keep |partial sums| < 2^24: int8 values, p <= 2^11
        x = x.astype(np.int64).clip(-128, 127).astype(np.int8)
    yi = fwht(x, block=block)
    yf = fwht(x.astype(fdt), block=block)
    assert yf.dtype == fdt
    assert np.array_equal(yf, yi.astype(fdt)) and np.array_equal(yf.astype(np.int64), yi)


@HYP
@given(st.integers(0, 2**32 - 1), st.sampled_from([(4, 64), (3, 48), (2, 1024), (5, 12)]),
       st.sampled_from([None, "pad"]), st.sampled_from([np.float32, np.float64]))
def test_prop_float_matches_documented_order(seed, shape, block, fdt):
    """Float results equal the scalar evaluation of the documented butterfly network
    (stages h = 1, 2, 4, ...), on both kernel paths, and along a middle axis."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * np.exp2(rng.integers(-20, 20, shape))).astype(fdt)
    n = shape[-1]
    p = block_size(n, block)
    want = fwht_reference(pad_to(x, next_pow2(n) if block == "pad" else n), p)
    old = hmod._PARALLEL_MIN_WORK
    try:
        for thr in (0, 1 << 62):
            hmod._PARALLEL_MIN_WORK = thr
            y = fwht(x, block=block)
            assert y.dtype == fdt and y.tobytes() == want.tobytes()
            ym = fwht(np.ascontiguousarray(x.T)[None], axis=1, block=block)
            assert ym[0].T.tobytes() == want.tobytes()
    finally:
        hmod._PARALLEL_MIN_WORK = old


def test_float_order_is_observable():
    """The data used above is order-sensitive: reversed stage order or a dense float32
    matmul give different bits, so the documented-order test can fail."""
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((4, 64)) * np.exp2(rng.integers(-20, 20, (4, 64)))).astype(np.float32)
    y = fwht(x)
    rev = x.copy()
    h = 32
    while h >= 1:  # stages in reverse order h = 32, ..., 1 (same math, other roundings)
        v = rev.reshape(4, -1, 2, h)
        a, b = v[:, :, 0, :].copy(), v[:, :, 1, :].copy()
        v[:, :, 0, :], v[:, :, 1, :] = a + b, a - b
        h //= 2
    assert np.allclose(rev, y, rtol=1e-4, atol=1e-3 * np.abs(y).max())
    assert rev.tobytes() != y.tobytes()
    assert (x @ hadamard_matrix(64, np.float32)).tobytes() != y.tobytes()


# ---------------------------------------------------------------------------------------
# Reproducibility across calls and thread counts
# ---------------------------------------------------------------------------------------
_THREAD_SCRIPT = r"""
import hashlib, numpy as np
import intsim.core.hadamard as hmod
hmod._PARALLEL_MIN_WORK = 0  # force the prange kernels
rng = np.random.default_rng(2024)
x = (rng.standard_normal((64, 1024)) * np.exp2(rng.integers(-30, 30, (64, 1024)))).astype(np.float32)
outs = [hmod.fwht(x), hmod.fwht(x[:, :1000], block="pad"),
        hmod.fwht(np.ascontiguousarray(x.T), axis=0), hmod.fwht(x.reshape(64, 128, 8), axis=1),
        hmod.fwht(x.reshape(-1, 16))]
print(*[hashlib.sha256(o.tobytes()).hexdigest() for o in outs])
"""


def _hashes_in_process(monkeypatch):
    import contextlib
    import io
    monkeypatch.setattr(hmod, "_PARALLEL_MIN_WORK", hmod._PARALLEL_MIN_WORK)  # restored after
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(_THREAD_SCRIPT, {})
    return buf.getvalue().split()


def test_float32_identical_across_calls_and_threads(monkeypatch):
    """Same bits on repeated calls, on the serial and prange kernels, with
    numba.set_num_threads(1), and in subprocesses started with NUMBA_NUM_THREADS=1 and 3."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((128, 512)).astype(np.float32)
    assert fwht(x).tobytes() == fwht(x).tobytes()
    here = _hashes_in_process(monkeypatch)
    assert len(here) == 5 and len(set(here)) == 5
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        assert _hashes_in_process(monkeypatch) == here
    finally:
        numba.set_num_threads(old)
    monkeypatch.setattr(hmod, "_PARALLEL_MIN_WORK", 1 << 62)  # serial kernels, same bits
    assert fwht(x[:4]).tobytes() == fwht_reference(x[:4], 512).tobytes()
    for threads in ("1", "3"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        res = subprocess.run([sys.executable, "-c", _THREAD_SCRIPT], env=env,
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == here, threads
