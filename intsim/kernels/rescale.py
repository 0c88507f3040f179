"""Elementwise float32 steps of the linear operator (NUMERICS.md §6), one pass each.

    rescale:       out[g, i] = fl32(float32(acc[g, i]) · c[g])   (int64 → float32: nearest-even)
    rescale_chain: v = float32(acc[g, i]);  v = fl32(v · f[g, j]) for j = 0, 1, …;
                   out[g, i] = fl32(v / p)                        (factors one after another,
                                                                   dividing last)
    zero_clipped:  grad[g, i] = 0 where |x[g, i]| > m[g]          (straight-through mask)

Each has a NumPy reference below; the kernels are serial (memory-bound, cheap).
"""
import numba
import numpy as np


@numba.njit(cache=True)
def rescale(acc, c, out):
    """acc (G, n) integer or float, c (G,) float32 → out (G, n) float32."""
    for g in range(acc.shape[0]):
        cg = c[g]
        ag, og = acc[g], out[g]
        for i in range(ag.size):
            og[i] = np.float32(ag[i]) * cg


@numba.njit(cache=True)
def rescale_chain(acc, f, p, out):
    """acc (G, n) integer or float, f (G, m) float32, p float32 → out (G, n) float32."""
    for g in range(acc.shape[0]):
        fg = f[g]
        ag, og = acc[g], out[g]
        for i in range(ag.size):
            v = np.float32(ag[i])
            for j in range(fg.size):
                v = v * fg[j]
            og[i] = v / p


@numba.njit(cache=True)
def zero_clipped(grad, x, m):
    """In place: grad (G, n) float32 set to 0 where |x (G, n)| > m[g] (m (G,) float32)."""
    for g in range(grad.shape[0]):
        mg = m[g]
        gg, xg = grad[g], x[g]
        for i in range(gg.size):
            if abs(xg[i]) > mg:
                gg[i] = np.float32(0.0)


# --- NumPy references -----------------------------------------------------------------------

def rescale_reference(acc: np.ndarray, c: np.ndarray) -> np.ndarray:
    return acc.astype(np.float32) * c.astype(np.float32)[:, None]


def rescale_chain_reference(acc: np.ndarray, f: np.ndarray, p) -> np.ndarray:
    v = acc.astype(np.float32)
    for j in range(f.shape[1]):
        v = v * f[:, j:j + 1].astype(np.float32)
    return v / np.float32(p)


def zero_clipped_reference(grad: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) > m.astype(np.float32)[:, None], np.float32(0), grad)
