"""Conv2d as a per-image matmul (im2col).

For an input x (B, C, H, W), a square kernel k, stride s and zero padding p:

    Ho = (H + 2p - k)//s + 1,  Wo likewise,  L = Ho·Wo output positions,  K = C·k·k
    cols[b, l, (c, i, j)] = x_pad[b, c, s·ho + i, s·wo + j]          l = ho·Wo + wo
    y[b, :, ho, wo] = W_mat · cols[b, l]          W_mat = weight.reshape(Cout, K)

so the convolution is linear_forward with x = cols (G = B images, R = L positions, K) and
W = W_mat (Cout, K): the quantized path's batch Hadamard acts over the spatial positions of one
image, as in the HDQT paper. With numerics.act_scale = "per_batch" the input x (B, C, H, W) is
quantized once (one scale for the batch, before im2col, as the published code does) and the
codes are unfolded; with "per_image" each image's cols are quantized on their own.
col2im is the adjoint of im2col: every column entry is added back to the input pixel it was
read from, each pixel summing its entries in kernel-offset order (PyTorch's col2im order; the
Numba kernels of intsim.kernels.im2col, with NumPy references there).

Float fast path (numerics.is_float): the same products in a layout that suits memory and BLAS —
cols_T (K, B·L) (rows (c, i, j), columns (b, ho, wo)), y_T = W_mat · cols_T as ONE GEMM,
dW = dy_T · cols_Tᵀ, dcols_T = W_matᵀ · dy_T. Building cols_T copies along the contiguous wo axis,
about 5× faster than the (B, L, K) layout whose innermost run is only k long.
"""
from __future__ import annotations

import math

import numpy as np

from intsim.core import linear_op
from intsim.core.checks import NONNEGATIVE_INT, POSITIVE, POSITIVE_INT, Rule
from intsim.core.modes import ActScale
from intsim.kernels import im2col as U
from intsim.nn.linear import MatmulModule, _FloatCtx, kaiming_normal
from intsim.nn.module import check_args


def conv_out_size(n: int, k: int, stride: int, padding: int) -> int:
    return (n + 2 * padding - k) // stride + 1


def _out_hw(x_shape, k: int, stride: int, padding: int) -> tuple[int, int]:
    H, W = x_shape[2], x_shape[3]
    return conv_out_size(H, k, stride, padding), conv_out_size(W, k, stride, padding)


def im2col(x: np.ndarray, k: int, stride: int = 1, padding: int = 0) -> np.ndarray:
    """x (B, C, H, W) -> cols (B, Ho·Wo, C·k·k), column order (c, i, j) = weight.reshape order."""
    B, C = x.shape[:2]
    Ho, Wo = _out_hw(x.shape, k, stride, padding)
    out = np.empty((B, Ho * Wo, C * k * k), x.dtype)
    if out.size:
        U.unfold(np.ascontiguousarray(x), k, stride, padding, Ho, Wo, out)
    return out


def col2im(cols: np.ndarray, x_shape: tuple[int, int, int, int], k: int, stride: int = 1,
           padding: int = 0) -> np.ndarray:
    """Adjoint of im2col: cols (B, Ho·Wo, C·k·k) -> dx (B, C, H, W), overlaps summed."""
    Ho, Wo = _out_hw(x_shape, k, stride, padding)
    dx = np.zeros(x_shape, dtype=cols.dtype)
    if cols.size:
        U.fold(np.ascontiguousarray(cols), k, stride, padding, Ho, Wo, dx)
    return dx


def im2col_t(x: np.ndarray, k: int, stride: int = 1, padding: int = 0) -> np.ndarray:
    """x (B, C, H, W) -> cols_T (C·k·k, B·Ho·Wo) with
    cols_T[(c, i, j), (b, ho, wo)] = cols[b, l, (c, i, j)]."""
    B, C = x.shape[:2]
    Ho, Wo = _out_hw(x.shape, k, stride, padding)
    win = U.windows(x, k, stride, padding, Ho, Wo)                 # (B, C, Ho, Wo, k, k)
    return win.transpose(1, 4, 5, 0, 2, 3).reshape(C * k * k, B * Ho * Wo)


def col2im_t(cols_t: np.ndarray, x_shape: tuple[int, int, int, int], k: int, stride: int = 1,
             padding: int = 0) -> np.ndarray:
    """Adjoint of im2col_t: cols_T (C·k·k, B·Ho·Wo) -> dx (B, C, H, W)."""
    Ho, Wo = _out_hw(x_shape, k, stride, padding)
    dx = np.zeros(x_shape, dtype=cols_t.dtype)
    if cols_t.size:
        U.fold_t(np.ascontiguousarray(cols_t), k, stride, padding, Ho, Wo, dx)
    return dx


class Conv2d(MatmulModule):
    """2-D convolution y = conv(x, weight) + bias, NCHW, square kernel, zero padding.

    x (B, Cin, H, W) -> y (B, Cout, Ho, Wo); weight (Cout, Cin, k, k) as in PyTorch, bias (Cout,).
    Forward: y = im2col(x) · weight.reshape(Cout, K)ᵀ per image (see module docstring); quantized
    numerics call linear_op.linear_forward(cols (B, L, K), W_mat (Cout, K)), float numerics run the
    equivalent single GEMM on cols_T (K, B·L).
    Backward: dcols = dy·W_mat, dx = col2im(dcols); dW += Σ_b dy[b]ᵀ·cols[b]; db += Σ_{b,h,w} dy.
    Init: Kaiming normal with fan_in = Cin·k·k, gain √2, from default_rng(seed); bias = 0.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True, *, gain: float = math.sqrt(2.0),
                 numerics=None, seed: int = 0, rng=None):
        check_args("Conv2d", locals(), {
            "in_channels": POSITIVE_INT, "out_channels": POSITIVE_INT,
            "kernel_size": POSITIVE_INT, "stride": POSITIVE_INT, "padding": NONNEGATIVE_INT,
            "bias": Rule("bool"), "gain": POSITIVE})
        super().__init__(numerics=numerics, seed=seed, rng=rng)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        fan_in = in_channels * kernel_size * kernel_size
        self._add_param("weight", kaiming_normal(
            (out_channels, in_channels, kernel_size, kernel_size), fan_in, seed, gain))
        if bias:
            self._add_param("bias", np.zeros(out_channels, np.float32))

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        self._observe(x)
        B, C, H, W = x.shape
        if C != self.in_channels:
            raise ValueError(f"{self.label or 'Conv2d'}: expected {self.in_channels} input "
                             f"channels, got {C}")
        k, s, p = self.kernel_size, self.stride, self.padding
        Ho, Wo = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
        N = self.out_channels
        Wm = self.params["weight"].reshape(N, -1)                  # (Cout, K)
        if self.numerics.is_float:
            cols_t = im2col_t(x, k, s, p)                           # (K, B·L)
            y = (Wm @ cols_t).reshape(N, B, Ho, Wo).transpose(1, 0, 2, 3)
            ctx = _FloatCtx(cols_t, Wm)
        else:
            cols = im2col(x, k, s, p)                               # (B, L, K)
            args = (cols, Wm, self.numerics, self.sr_stream(), self.active_trace(), self.label)
            if self.numerics.act_scale == ActScale.PER_BATCH:      # one scale for the batch
                a = linear_op.batch_operand(x, *args[2:], lambda c: im2col(c, k, s, p), B)
                y3, ctx = linear_op.linear_forward(*args, a=a)      # (B, L, Cout)
            else:
                y3, ctx = linear_op.linear_forward(*args)
            y = y3.reshape(B, Ho, Wo, N).transpose(0, 3, 1, 2)
        y = np.ascontiguousarray(y)
        if "bias" in self.params:
            y = y + self.params["bias"][:, None, None]
        self._cache = {"ctx": ctx, "x_shape": x.shape}
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        g = np.asarray(grad_out, dtype=self.dtype)
        B, N, Ho, Wo = g.shape
        ctx, x_shape = self._cache["ctx"], self._cache["x_shape"]
        k, s, p = self.kernel_size, self.stride, self.padding
        if isinstance(ctx, _FloatCtx):
            g_t = np.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(N, B * Ho * Wo)
            dW = g_t @ ctx.x3.T if self.requires_grad else None    # (Cout, K)
            dx = col2im_t(ctx.W.T @ g_t, x_shape, k, s, p)
        else:
            g3 = np.ascontiguousarray(g.transpose(0, 2, 3, 1)).reshape(B, Ho * Wo, N)
            dcols, dW = linear_op.linear_backward(g3, ctx)
            dx = col2im(dcols, x_shape, k, s, p)
        if self.requires_grad:
            self.grads["weight"] += dW.reshape(self.params["weight"].shape)
            if "bias" in self.params:
                self.grads["bias"] += g.sum(axis=(0, 2, 3))
        return dx

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={'bias' in self.params}, "
                f"label={self.label!r}")
