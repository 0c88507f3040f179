"""im2col and its adjoint (col2im) for square kernels, NCHW, zero padding.

For x (B, C, H, W), kernel k, stride s, padding p, Ho = (H + 2p - k)//s + 1 (Wo likewise),
L = Ho·Wo, K = C·k·k, and x_pad the zero-padded input:

    unfold    cols[b, ho·Wo + wo, (c·k + i)·k + j]     = x_pad[b, c, s·ho + i, s·wo + j]
    fold      dx[b, c, h, w] = Σ_{(i, j) ascending} cols[b, ho·Wo + wo, (c·k + i)·k + j]
                              over the (i, j, ho, wo) with s·ho + i = h + p, s·wo + j = w + p
    fold_t    the same from cols_t[(c·k + i)·k + j, (b·Ho + ho)·Wo + wo]

fold's sum starts from 0 and adds the entries of each pixel in kernel-offset order (i, then j),
in the dtype of cols: the order of PyTorch's col2im (one strided slice add per offset), so the
float results equal the references below bit for bit. unfold copies values (any dtype; padding
is 0). Serial loops. (The float path's transposed unfold stays a NumPy window copy in nn.conv:
it is a long contiguous copy that NumPy already does at memory speed.)
"""
import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _span(i, p, s, n, n_out):
    """The outputs o in [lo, hi) whose input index s·o + i - p lies in [0, n)."""
    lo = max(0, (p - i + s - 1) // s)
    hi = min(n_out, (n - 1 + p - i) // s + 1)
    return lo, max(lo, hi)


@numba.njit(cache=True)
def unfold(x, k, s, p, Ho, Wo, out):
    """x (B, C, H, W) → out (B, Ho·Wo, C·k·k) (module docstring)."""
    B, C, H, W = x.shape
    for b in range(B):
        for ho in range(Ho):
            for wo in range(Wo):
                row = out[b, ho * Wo + wo]
                for c in range(C):
                    for i in range(k):
                        h = s * ho + i - p
                        base = (c * k + i) * k
                        for j in range(k):
                            w = s * wo + j - p
                            if 0 <= h < H and 0 <= w < W:
                                row[base + j] = x[b, c, h, w]
                            else:
                                row[base + j] = 0


@numba.njit(cache=True)
def fold(cols, k, s, p, Ho, Wo, out):
    """cols (B, Ho·Wo, C·k·k) → out (B, C, H, W), zero-filled by the caller."""
    B, C, H, W = out.shape
    for b in range(B):
        for c in range(C):
            for i in range(k):
                h_lo, h_hi = _span(i, p, s, H, Ho)
                for j in range(k):
                    w_lo, w_hi = _span(j, p, s, W, Wo)
                    col = (c * k + i) * k + j
                    for ho in range(h_lo, h_hi):
                        orow = out[b, c, s * ho + i - p]
                        cb = cols[b]
                        for wo in range(w_lo, w_hi):
                            orow[s * wo + j - p] += cb[ho * Wo + wo, col]


@numba.njit(cache=True)
def fold_t(cols_t, k, s, p, Ho, Wo, out):
    """cols_t (C·k·k, B·Ho·Wo) → out (B, C, H, W), zero-filled by the caller. Reads cols_t
    row by row (rows in (c, i, j) order, so each pixel still sums in kernel-offset order)."""
    B, C, H, W = out.shape
    for c in range(C):
        for i in range(k):
            h_lo, h_hi = _span(i, p, s, H, Ho)
            for j in range(k):
                w_lo, w_hi = _span(j, p, s, W, Wo)
                row = cols_t[(c * k + i) * k + j]
                for b in range(B):
                    for ho in range(h_lo, h_hi):
                        orow = out[b, c, s * ho + i - p]
                        o = (b * Ho + ho) * Wo
                        for wo in range(w_lo, w_hi):
                            orow[s * wo + j - p] += row[o + wo]


# --- NumPy references (sliding windows and one strided slice add per kernel offset) ---------

def windows(x, k, s, p, Ho, Wo):
    """(B, C, Ho, Wo, k, k) view of the padded x."""
    if p:
        x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return win[:, :, ::s, ::s][:, :, :Ho, :Wo]


def unfold_reference(x, k, s, p, Ho, Wo):
    B, C = x.shape[:2]
    return windows(x, k, s, p, Ho, Wo).transpose(0, 2, 3, 1, 4, 5).reshape(B, Ho * Wo, C * k * k)


def fold_reference(cols, x_shape, k, s, p, Ho, Wo):
    B, C, H, W = x_shape
    c6 = cols.reshape(B, Ho, Wo, C, k, k).transpose(0, 3, 4, 5, 1, 2)  # (B, C, k, k, Ho, Wo)
    dxp = np.zeros((B, C, H + 2 * p, W + 2 * p), dtype=cols.dtype)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s] += c6[:, :, i, j]
    return dxp[:, :, p:p + H, p:p + W]


def fold_t_reference(cols_t, x_shape, k, s, p, Ho, Wo):
    B, C = x_shape[:2]
    cols = cols_t.reshape(C * k * k, B, Ho * Wo).transpose(1, 2, 0)
    return fold_reference(cols, x_shape, k, s, p, Ho, Wo)
