"""Finite-difference gradient check for any Module (run it in float64: `module.to(np.float64)`).

With a fixed random projection R, L(x, θ) = Σ forward(x)·R, so dL/dy = R and one backward gives
the analytic dL/dx and dL/dθ. Each checked entry v is compared with the central difference
(L(v+ε) - L(v-ε)) / 2ε. Entries are sampled (at most `max_checks` per tensor) to stay fast.
"""
from __future__ import annotations

import numpy as np

from intsim.nn.module import Module


def _loss(module: Module, x: np.ndarray, R: np.ndarray) -> float:
    return float(np.sum(module.forward(x) * R))


def _sample(size: int, max_checks: int, rng) -> np.ndarray:
    return np.arange(size) if size <= max_checks else rng.choice(size, max_checks, replace=False)


def gradcheck(module: Module, x: np.ndarray, eps: float = 1e-6, max_checks: int = 40,
              seed: int = 0) -> dict[str, float]:
    """Max relative error |analytic - numeric| / max(1, |numeric|) per tensor: "input" and each
    parameter's dotted name. The module must compute in the dtype of x (use float64)."""
    rng = np.random.default_rng(seed)
    x = np.array(x, dtype=np.float64)
    y = module.forward(x)
    R = rng.standard_normal(y.shape)
    module.zero_grad()
    module.forward(x)
    dx = module.backward(R.copy())
    analytic = {"input": (x, dx)}
    for name, p, g in module.named_parameters():
        analytic[name] = (p, g.copy())

    errors = {}
    for name, (arr, grad) in analytic.items():
        flat = arr.reshape(-1)          # a view: perturbs the tensor in place
        worst = 0.0
        for i in _sample(flat.size, max_checks, rng):
            old = flat[i]
            flat[i] = old + eps
            lp = _loss(module, x, R)
            flat[i] = old - eps
            lm = _loss(module, x, R)
            flat[i] = old
            num = (lp - lm) / (2 * eps)
            worst = max(worst, abs(grad.reshape(-1)[i] - num) / max(1.0, abs(num)))
        errors[name] = worst
    return errors
