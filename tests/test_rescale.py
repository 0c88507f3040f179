"""The operator's elementwise kernels equal their NumPy references bit for bit."""
import numpy as np

from intsim.kernels.rescale import (rescale, rescale_reference, zero_clipped,
                                    zero_clipped_reference)


def test_rescale_equals_reference_including_rounding_above_2_pow_24():
    r = np.random.default_rng(0)
    acc = r.integers(-2**40, 2**40, (3, 500)).astype(np.int64)
    acc[0, :6] = [2**24 + 1, -(2**24 + 1), 2**25 + 3, 0, 1, -1]     # int64 → float32 rounds
    c = np.array([1.0, 3.0e-7, -2.5], np.float32)
    out = np.empty(acc.shape, np.float32)
    rescale(acc, c, out)
    want = rescale_reference(acc, c)
    assert out.dtype == np.float32 and np.array_equal(out.view(np.int32), want.view(np.int32))


def test_zero_clipped_equals_reference_and_keeps_values_at_the_clamp_point():
    r = np.random.default_rng(1)
    x = r.standard_normal((4, 300)).astype(np.float32)
    m = np.array([0.5, 1.0, np.inf, 0.0], np.float32)
    x[0, 0], x[0, 1] = 0.5, -0.5                                    # |x| == m: kept
    grad = r.standard_normal((4, 300)).astype(np.float32)
    want = zero_clipped_reference(grad, x, m)
    zero_clipped(grad, x, m)
    assert np.array_equal(grad, want)
    assert grad[0, 0] != 0 and grad[0, 1] != 0 and np.count_nonzero(grad[3]) == 0


def test_rescale_chain_equals_reference_and_differs_from_the_scale_product():
    from intsim.kernels.rescale import rescale_chain, rescale_chain_reference
    r = np.random.default_rng(2)
    acc = r.integers(-2**20, 2**20, (3, 400)).astype(np.int64)
    acc[0, :3] = [2**24 + 1, 0, -1]
    f = r.uniform(1e-3, 1.0, (3, 3)).astype(np.float32)
    for p in (1, 4, 128):
        out = np.empty(acc.shape, np.float32)
        rescale_chain(acc, f, np.float32(p), out)
        want = rescale_chain_reference(acc, f, p)
        assert np.array_equal(out.view(np.int32), want.view(np.int32))
    c = (f[:, 0] * f[:, 1]) * f[:, 2] / np.float32(128)
    product = np.empty(acc.shape, np.float32)
    rescale(acc, c, product)
    assert not np.array_equal(out, product)          # the two orders round differently
