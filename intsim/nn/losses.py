"""Losses: each returns (loss: float, dL/dlogits: array like logits), averaged over the batch.

logits z (B, C). Stable forms via log-sum-exp: log_softmax(z) = z - max z - log Σ exp(z - max z).

cross_entropy(z, y)        L = -(1/B) Σ_b log_softmax(z_b)[y_b]
                           dL/dz = (softmax(z) - onehot(y)) / B
kd_loss(z, z_old, T)       L = -(1/B) Σ_b Σ_c softmax(z_old/T)_bc · log_softmax(z/T)_bc
                           dL/dz = (softmax(z/T) - softmax(z_old/T)) / (T·B)
                           (PyCIL's _KD_loss: no T² factor; the teacher logits get no gradient)
bce_with_logits(z, t)      ℓ_bc = max(z,0) - z·t + log(1 + exp(-|z|)),  dℓ/dz = sigmoid(z) - t
                           reduction "batch": L = (1/B) Σ_bc ℓ_bc   (sum over classes)
                                     "mean":  L = (1/(B·C)) Σ_bc ℓ_bc (PyTorch's default)
                                     "sum":   L = Σ_bc ℓ_bc
A loss over a slice of the logits (e.g. LwF's new-class CE) is the caller's business: compute it
on the slice and place the gradient into a zero array of the full shape.
"""
from __future__ import annotations

import numpy as np


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    s = z - z.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _check_logits(z) -> np.ndarray:
    z = np.asarray(z)
    if z.ndim != 2:
        raise ValueError(f"logits must be (B, C), got shape {z.shape}")
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float32)
    return z


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy with integer labels (B,), batch mean."""
    z = _check_logits(logits)
    y = np.asarray(labels)
    B, C = z.shape
    if y.shape != (B,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({B},), got {y.dtype} {y.shape}")
    if B and (y.min() < 0 or y.max() >= C):
        raise ValueError(f"labels must lie in [0, {C}), got range [{y.min()}, {y.max()}]")
    logp = log_softmax(z)
    rows = np.arange(B)
    loss = -float(np.sum(logp[rows, y], dtype=np.float64)) / B
    grad = np.exp(logp)
    grad[rows, y] -= 1
    return loss, (grad / B).astype(z.dtype, copy=False)


def kd_loss(logits: np.ndarray, old_logits: np.ndarray, T: float = 2.0
            ) -> tuple[float, np.ndarray]:
    """Distillation -Σ softmax(old/T)·log_softmax(new/T), batch mean, no T² factor."""
    z = _check_logits(logits)
    zo = np.asarray(old_logits, dtype=z.dtype)
    if zo.shape != z.shape:
        raise ValueError(f"kd_loss: logits {z.shape} vs old_logits {zo.shape}")
    B = z.shape[0]
    p_old = softmax(zo / T)
    logq = log_softmax(z / T)
    loss = -float(np.sum(p_old * logq, dtype=np.float64)) / B
    grad = (np.exp(logq) - p_old) / (T * B)
    return loss, grad.astype(z.dtype, copy=False)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1/(1+exp(-z)) without overflow for either sign."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def bce_with_logits(logits: np.ndarray, targets: np.ndarray, reduction: str = "batch"
                    ) -> tuple[float, np.ndarray]:
    """Binary cross-entropy on logits with float targets in [0, 1] of the same shape."""
    z = _check_logits(logits)
    t = np.asarray(targets, dtype=z.dtype)
    if t.shape != z.shape:
        raise ValueError(f"bce_with_logits: logits {z.shape} vs targets {t.shape}")
    B, C = z.shape
    denom = {"batch": B, "mean": B * C, "sum": 1}.get(reduction)
    if denom is None:
        raise ValueError(f"reduction must be 'batch', 'mean' or 'sum', got {reduction!r}")
    ell = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    loss = float(np.sum(ell, dtype=np.float64)) / denom
    return loss, ((sigmoid(z) - t) / denom).astype(z.dtype, copy=False)
