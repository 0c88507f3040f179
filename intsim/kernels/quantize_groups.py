"""The statistics quantization needs for G groups in one pass (core.quantizer.quantize_groups):

    absmax_min_groups(x (G, n))  → (max|x[g]| (G,) float32, count of x[g] < 0 (G,), all finite)

Serial over groups (results never depend on threads). Reference: the NumPy version below.
"""
import numba
import numpy as np

from intsim.kernels.quantize import ABS_MASK, INF_BITS


@numba.njit(cache=True)
def _absmax_bits_groups(x, bits, amax, neg):
    for g in range(x.shape[0]):
        a = np.int32(0)
        k = 0
        xg, bg = x[g], bits[g]
        for i in range(xg.size):
            a = max(a, bg[i] & ABS_MASK)
            k += xg[i] < 0
        amax[g] = a
        neg[g] = k


def absmax_min_groups(x: np.ndarray):
    """x (G, n) float32 C-contiguous, n ≥ 1 → (max|x[g]| as float32 (G,), negatives (G,) int64,
    every value finite). Float32 bit patterns of |x| order like the values; NaN/Inf ≥ INF_BITS."""
    G = x.shape[0]
    amax = np.zeros(G, np.int32)
    neg = np.zeros(G, np.int64)
    _absmax_bits_groups(x, x.view(np.int32), amax, neg)
    return amax.view(np.float32), neg, bool((amax < INF_BITS).all())


def absmax_min_groups_reference(x: np.ndarray):
    """Plain NumPy per group: (max|x[g]|, count of negatives, all finite)."""
    return (np.abs(x).max(axis=1).astype(np.float32), (x < 0).sum(axis=1),
            bool(np.isfinite(x).all()))
