"""Batch normalization (float, as in the paper), PyTorch semantics.

Per channel c, over the reduction set S (batch for 1d; batch and pixels for 2d), n = |S|:

  train:  μ = mean_S x,  σ² = mean_S (x-μ)²  (biased),  x̂ = (x-μ)/√(σ²+ε),  y = γ·x̂ + β
          running_mean ← (1-m)·running_mean + m·μ
          running_var  ← (1-m)·running_var  + m·σ²·n/(n-1)      (unbiased), m = momentum = 0.1
  eval:   x̂ = (x - running_mean)/√(running_var+ε)

Backward (train):  dβ = Σ_S dy,  dγ = Σ_S dy·x̂,
                   dx = γ/√(σ²+ε) · (dy - mean_S dy - x̂·mean_S(dy·x̂))
Backward (eval):   dx = dy·γ/√(running_var+ε)   (statistics are constants)
"""
from __future__ import annotations

import numpy as np

from intsim.core.checks import POSITIVE, POSITIVE_INT, Rule
from intsim.nn.module import Module, check_args


class _BatchNorm(Module):
    _ndim: int = 0  # input rank

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, *, numerics=None, seed: int = 0, rng=None):
        check_args(type(self).__name__, locals(), {
            "num_features": POSITIVE_INT, "eps": POSITIVE,
            "momentum": Rule("float", minimum=0, maximum=1), "affine": Rule("bool")})
        super().__init__(numerics=numerics, seed=seed, rng=rng)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        if affine:
            self._add_param("weight", np.ones(num_features, np.float32))
            self._add_param("bias", np.zeros(num_features, np.float32))
        self.buffers["running_mean"] = np.zeros(num_features, np.float32)
        self.buffers["running_var"] = np.ones(num_features, np.float32)

    @property
    def dtype(self):
        return self.buffers["running_mean"].dtype

    def _shape(self, v):  # (C,) -> broadcastable against the input
        return v.reshape((1, -1) + (1,) * (self._ndim - 2))

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != self._ndim or x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}): bad input shape "
                             f"{x.shape}")
        axes = (0,) + tuple(range(2, x.ndim))
        if self.training:
            n = x.size // self.num_features
            if n <= 1:
                raise ValueError(f"{type(self).__name__}: need more than 1 value per channel "
                                 f"in training mode, got input shape {x.shape}")
            mu = x.mean(axis=axes)
            xc = x - self._shape(mu)
            var = np.mean(xc * xc, axis=axes)
            m = self.momentum
            rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
            rm *= 1 - m
            rm += m * mu
            rv *= 1 - m
            rv += m * var * (n / (n - 1))
        else:
            xc = x - self._shape(self.buffers["running_mean"])
            var = self.buffers["running_var"]
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(self.dtype)
        xhat = xc * self._shape(inv_std)
        self._cache = {"xhat": xhat, "inv_std": inv_std, "axes": axes, "train": self.training}
        if "weight" in self.params:
            return xhat * self._shape(self.params["weight"]) + self._shape(self.params["bias"])
        return xhat

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        c = self._cache
        g = np.asarray(grad_out, dtype=self.dtype)
        xhat, axes = c["xhat"], c["axes"]
        if "weight" in self.params:
            if self.requires_grad:
                self.grads["weight"] += np.sum(g * xhat, axis=axes)
                self.grads["bias"] += g.sum(axis=axes)
            scale = self.params["weight"] * c["inv_std"]
        else:
            scale = c["inv_std"]
        if not c["train"]:
            return g * self._shape(scale)
        g_mean = g.mean(axis=axes)
        gx_mean = np.mean(g * xhat, axis=axes)
        return self._shape(scale) * (g - self._shape(g_mean) - xhat * self._shape(gx_mean))

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """BatchNorm over x (B, C): statistics per feature over the batch."""
    _ndim = 2


class BatchNorm2d(_BatchNorm):
    """BatchNorm over x (B, C, H, W): statistics per channel over batch and pixels."""
    _ndim = 4
