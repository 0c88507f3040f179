"""Pooling layers, NCHW, square windows, no ceil mode (output sizes as PyTorch's default).

Window (ho, wo) covers x[:, :, s·ho + i, s·wo + j] for kernel offsets 0 <= i, j < k.
Backward of both pools is a loop over the k·k offsets, each a strided slice add (no per-pixel
Python loop, no np.add.at).
"""
from __future__ import annotations

import numpy as np

from intsim.nn.conv import conv_out_size
from intsim.core.checks import NONNEGATIVE_INT, POSITIVE_INT, Rule
from intsim.nn.module import Module, check_args

_STRIDE = Rule("int", minimum=1, optional=True)     # None: the kernel size


def _windows(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """(B, C, H, W) -> strided view (B, C, Ho, Wo, k, k)."""
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return win[:, :, ::s, ::s]


class AvgPool2d(Module):
    """y[b,c,ho,wo] = (1/k²) Σ_{i,j} x[b,c,s·ho+i,s·wo+j];  dx[.., s·ho+i, s·wo+j] += dy/k²."""

    def __init__(self, kernel_size: int, stride: int | None = None, **kw):
        check_args("AvgPool2d", locals(), {"kernel_size": POSITIVE_INT, "stride": _STRIDE})
        super().__init__(**kw)
        self.kernel_size, self.stride = kernel_size, stride or kernel_size

    def forward(self, x: np.ndarray) -> np.ndarray:
        k, s = self.kernel_size, self.stride
        self._cache = {"shape": x.shape}
        B, C, H, W = x.shape
        if k == s and H % k == 0 and W % k == 0:   # non-overlapping tiling: a reshape
            return x.reshape(B, C, H // k, k, W // k, k).mean(axis=(3, 5))
        return _windows(x, k, s).mean(axis=(-2, -1))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        k, s = self.kernel_size, self.stride
        B, C, Ho, Wo = grad_out.shape
        dx = np.zeros(self._cache["shape"], dtype=grad_out.dtype)
        g = grad_out / (k * k)
        for i in range(k):
            for j in range(k):
                dx[:, :, i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s] += g
        return dx

    def extra_repr(self) -> str:
        return f"k={self.kernel_size}, stride={self.stride}"


class MaxPool2d(Module):
    """y = max over each window (padding with -inf). The gradient goes to the first maximal
    element of each window in row-major (i, j) order (PyTorch's choice on ties)."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0, **kw):
        check_args("MaxPool2d", locals(), {"kernel_size": POSITIVE_INT, "stride": _STRIDE,
                                           "padding": NONNEGATIVE_INT})
        super().__init__(**kw)
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding

    def forward(self, x: np.ndarray) -> np.ndarray:
        k, s, p = self.kernel_size, self.stride, self.padding
        B, C, H, W = x.shape
        if p:
            x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
        Ho, Wo = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
        win = _windows(x, k, s)[:, :, :Ho, :Wo].reshape(B, C, Ho, Wo, k * k)
        arg = win.argmax(axis=-1)
        self._cache = {"arg": arg, "shape": (B, C, H, W)}
        return np.take_along_axis(win, arg[..., None], axis=-1)[..., 0]

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        k, s, p = self.kernel_size, self.stride, self.padding
        B, C, H, W = self._cache["shape"]
        arg = self._cache["arg"]
        Ho, Wo = arg.shape[2:]
        dxp = np.zeros((B, C, H + 2 * p, W + 2 * p), dtype=grad_out.dtype)
        zero = np.zeros((), dtype=grad_out.dtype)
        for idx in range(k * k):
            i, j = divmod(idx, k)
            dxp[:, :, i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s] += \
                np.where(arg == idx, grad_out, zero)
        return dxp[:, :, p:p + H, p:p + W] if p else dxp

    def extra_repr(self) -> str:
        return f"k={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class GlobalAvgPool(Module):
    """x (B, C, H, W) -> y (B, C) = mean over H, W;  dx = dy/(H·W) broadcast."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._cache = {"shape": x.shape}
        return x.mean(axis=(2, 3))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        B, C, H, W = self._cache["shape"]
        g = grad_out / (H * W)
        return np.ascontiguousarray(np.broadcast_to(g[:, :, None, None], (B, C, H, W)))
