"""The linear operator y = x·Wᵀ with its backward pass, under a layer's Numerics.

PLACEHOLDER (float32 only) until the quantized path lands: the signatures are the contract
that intsim.nn layers call.

Shapes: x (G, R, K) float32 — G independent groups (G = 1 for Linear; G = images for a
convolution after im2col, R = output positions), W (N, K) float32, y (G, R, N) float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class LinearContext:
    """What the backward pass needs from the forward pass."""
    x: np.ndarray
    W: np.ndarray
    numerics: Any
    rng: Any
    trace: Any
    label: str


def linear_forward(x: np.ndarray, W: np.ndarray, numerics=None, rng=None, trace=None,
                   label: str = "") -> tuple[np.ndarray, LinearContext]:
    """y[g] = x[g] · Wᵀ for every group g. Returns (y, ctx) for linear_backward."""
    y = np.matmul(x, W.T)
    return y.astype(np.float32, copy=False), LinearContext(x, W, numerics, rng, trace, label)


def linear_backward(grad_y: np.ndarray, ctx: LinearContext) -> tuple[np.ndarray, np.ndarray]:
    """(dL/dx (G, R, K), dL/dW (N, K)) from dL/dy (G, R, N); dW is summed over groups."""
    dx = np.matmul(grad_y, ctx.W)
    dW = np.einsum("grn,grk->nk", grad_y, ctx.x, optimize=True)
    return dx.astype(np.float32, copy=False), dW.astype(np.float32, copy=False)
