"""The im2col kernels (intsim.kernels.im2col) against their NumPy references, bit for bit.

Seeded random shapes (kernel 1-4, stride 1-3, padding 0-2, outputs down to 1×1) and dtypes;
float inputs include ±0, ±inf, huge and tiny values so that a different summation order in
fold would show. fold is also checked as the exact adjoint of unfold on integers:
<unfold(x), c> = <x, fold(c)>.
"""
import numpy as np
import pytest

from intsim.kernels import im2col as U
from intsim.nn.conv import col2im, col2im_t, conv_out_size, im2col, im2col_t


def _cases(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        k, s, p = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(0, 3))
        B, C = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        H, W = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        if conv_out_size(H, k, s, p) >= 1 and conv_out_size(W, k, s, p) >= 1:
            out.append((B, C, H, W, k, s, p))
    return out


EDGES = np.array([0.0, -0.0, np.inf, -np.inf, 3e38, -3e38, 1e-45, -1e-45, 1.0, -1.0, 1e7, 0.1],
                 np.float32)


def _floats(rng, shape, dtype):
    x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(dtype)
    mask = rng.random(shape) < 0.2
    x[mask] = rng.choice(EDGES, int(mask.sum())).astype(dtype)
    return x


def _same(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype
    if a.dtype.kind == "f":
        np.testing.assert_array_equal(np.ascontiguousarray(a).view(np.uint8),
                                      np.ascontiguousarray(b).view(np.uint8))
    else:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.int64])
def test_kernels_equal_references(dtype):
    rng = np.random.default_rng(1)
    for B, C, H, W, k, s, p in _cases(120):
        Ho, Wo = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
        x = (_floats(rng, (B, C, H, W), dtype) if np.dtype(dtype).kind == "f"
             else rng.integers(-100, 100, (B, C, H, W)).astype(dtype))
        _same(im2col(x, k, s, p), U.unfold_reference(x, k, s, p, Ho, Wo))
        _same(im2col_t(x, k, s, p),
              U.unfold_reference(x, k, s, p, Ho, Wo).transpose(2, 0, 1).reshape(C * k * k, -1))
        if np.dtype(dtype).kind != "f":
            continue
        cols = _floats(rng, (B, Ho * Wo, C * k * k), dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            _same(col2im(cols, x.shape, k, s, p),
                  U.fold_reference(cols, x.shape, k, s, p, Ho, Wo))
            cols_t = _floats(rng, (C * k * k, B * Ho * Wo), dtype)
            _same(col2im_t(cols_t, x.shape, k, s, p),
                  U.fold_t_reference(cols_t, x.shape, k, s, p, Ho, Wo))


def test_fold_is_the_exact_adjoint_of_unfold():
    rng = np.random.default_rng(2)
    for B, C, H, W, k, s, p in _cases(60, seed=3):
        Ho, Wo = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
        x = rng.integers(-50, 50, (B, C, H, W)).astype(np.int64)
        c = rng.integers(-50, 50, (B, Ho * Wo, C * k * k)).astype(np.int64)
        assert (im2col(x, k, s, p) * c).sum() == (x * col2im(c, x.shape, k, s, p)).sum()
        ct = np.ascontiguousarray(c.transpose(2, 0, 1).reshape(C * k * k, -1))
        assert (im2col_t(x, k, s, p) * ct).sum() == (x * col2im_t(ct, x.shape, k, s, p)).sum()


def test_a_known_unfold():
    """1 image, 1 channel, 3×3 input, k = 2, stride 1, no padding: the four 2×2 windows."""
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    np.testing.assert_array_equal(im2col(x, 2)[0], [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7],
                                                    [4, 5, 7, 8]])
    np.testing.assert_array_equal(col2im(np.ones((1, 4, 4), np.float32), x.shape, 2)[0, 0],
                                  [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
