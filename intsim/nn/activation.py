"""Parameter-free elementwise / reshaping layers."""
from __future__ import annotations

import numpy as np

from intsim.nn.module import Module


class ReLU(Module):
    """y = max(x, 0);  dx = dy · [x > 0]  (subgradient 0 at x = 0, as PyTorch)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        mask = x > 0
        self._cache = {"mask": mask}
        return np.where(mask, x, np.zeros((), dtype=x.dtype))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return np.where(self._cache["mask"], grad_out, np.zeros((), dtype=grad_out.dtype))


class Identity(Module):
    """y = x, dx = dy."""

    def forward(self, x):
        return x

    def backward(self, grad_out):
        return grad_out


class Flatten(Module):
    """x (B, ...) -> (B, prod(...)) in C order (NCHW flattens as c, h, w like PyTorch)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._cache = {"shape": x.shape}
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out.reshape(self._cache["shape"])
