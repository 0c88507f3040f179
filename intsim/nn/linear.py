"""Linear layer, and the matmul dispatch shared by Linear and Conv2d.

Every weight matmul of the network is y = x·Wᵀ on a grouped operand

    x (G, R, K)   G independent groups (1 for Linear; images for Conv2d), R rows per group
    W (N, K)      weight matrix
    y (G, R, N)

and its backward  dx = dy·W  (G, R, K),  dW = Σ_g dy[g]ᵀ·x[g]  (N, K).

If the layer's numerics is float (the "fp32" preset) the matmul runs here as one BLAS call
in the dtype of the operands (so float64 gradchecks stay float64). Otherwise it goes through
the contract intsim.core.linear_op.linear_forward / linear_backward with the layer's numerics, rng,
trace and label, untouched.
"""
from __future__ import annotations

import math

import numpy as np

from intsim.core import linear_op
from intsim.core.checks import POSITIVE, POSITIVE_INT, Rule
from intsim.nn.module import Module, check_args


def kaiming_normal(shape: tuple[int, ...], fan_in: int, seed: int, gain: float = math.sqrt(2.0),
                   dtype=np.float32) -> np.ndarray:
    """N(0, (gain²/fan_in)) entries from np.random.default_rng(seed) (PyTorch kaiming_normal_,
    mode fan_in; gain √2 = ReLU, 1 = linear)."""
    std = gain / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return (np.random.default_rng(seed).standard_normal(shape) * std).astype(dtype)


def torch_default_uniform(shape: tuple[int, ...], fan_in: int, seed: int,
                          dtype=np.float32) -> np.ndarray:
    """U(−1/√fan_in, 1/√fan_in) entries from np.random.default_rng(seed): PyTorch's default
    nn.Linear / nn.Conv2d weight (kaiming_uniform_ with a = √5)."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return np.random.default_rng(seed).uniform(-bound, bound, shape).astype(dtype)


class _FloatCtx:
    """What the float fast path keeps for backward."""
    __slots__ = ("x3", "W")

    def __init__(self, x3: np.ndarray, W: np.ndarray):
        self.x3, self.W = x3, W


class MatmulModule(Module):
    """A module whose core is y = x·Wᵀ; provides the float/quantized dispatch.

    `act_range`, when set to a list [max|x|, min x], is widened by every forward pass to the
    range of the layer's matmul input (calibration of a fixed activation scale)."""

    act_range = None

    def _observe(self, x: np.ndarray) -> None:
        r = self.act_range
        if r is not None and x.size:
            r[0] = max(r[0], float(np.max(np.abs(x))))
            r[1] = min(r[1], float(np.min(x)))

    def active_trace(self):
        """The trace this forward pass records into: None in eval mode when the trace was made
        with eval_passes=False."""
        t = self.trace
        if t is None or self.training or getattr(t, "eval_passes", True):
            return t
        return None

    def _matmul(self, x3: np.ndarray, W: np.ndarray):
        """x3 (G, R, K), W (N, K) -> (y3 (G, R, N), ctx)."""
        if self.numerics.is_float:
            G, R, K = x3.shape
            y = (x3.reshape(G * R, K) @ W.T).reshape(G, R, W.shape[0])
            return y, _FloatCtx(x3, W)
        return linear_op.linear_forward(x3, W, self.numerics, self.sr_stream(), self.active_trace(),
                                        self.label)

    def _matmul_backward(self, g3: np.ndarray, ctx):
        """g3 = dL/dy3 (G, R, N) -> (dx3 (G, R, K), dW (N, K) or None when frozen)."""
        if isinstance(ctx, _FloatCtx):
            x3, W = ctx.x3, ctx.W
            G, R, N = g3.shape
            g2 = g3.reshape(G * R, N)
            dx = (g2 @ W).reshape(x3.shape)
            dW = g2.T @ x3.reshape(G * R, -1) if self.requires_grad else None
            return dx, dW
        return linear_op.linear_backward(g3, ctx)


class Linear(MatmulModule):
    """y = x·Wᵀ + b.

    x (B, in_features) (or (..., in_features)), W (out_features, in_features), b (out_features,).
    Backward: dx = dy·W, dW += dyᵀ·x, db += Σ_B dy. For the quantized path the batch is one
    group: x is passed to the linear operator as (1, B, in_features).
    Init: W ~ Kaiming normal fan_in with `gain` (√2, ReLU) from default_rng(seed); b = 0.
    """

    OUT_FEATURES = POSITIVE_INT          # the rule of out_features (a growable head: >= 0)

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 gain: float = math.sqrt(2.0), numerics=None, seed: int = 0, rng=None):
        check_args(type(self).__name__, locals(), {"in_features": POSITIVE_INT,
                   "out_features": self.OUT_FEATURES, "bias": Rule("bool"), "gain": POSITIVE})
        super().__init__(numerics=numerics, seed=seed, rng=rng)
        self.in_features, self.out_features, self.gain = in_features, out_features, gain
        self._add_param("weight", kaiming_normal((out_features, in_features), in_features,
                                                 seed, gain))
        if bias:
            self._add_param("bias", np.zeros(out_features, np.float32))

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self.label or type(self).__name__}: x: expected shape (..., "
                             f"{self.in_features}), got {x.shape}")
        self._observe(x)
        lead = x.shape[:-1]
        y3, ctx = self._matmul(np.ascontiguousarray(x.reshape(1, -1, self.in_features)),
                               self.params["weight"])
        y = y3.reshape(*lead, self.out_features)
        if "bias" in self.params:
            y = y + self.params["bias"]
        self._cache = {"ctx": ctx, "lead": lead}
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        lead = self._cache["lead"]
        g = np.asarray(grad_out, dtype=self.dtype)
        dx3, dW = self._matmul_backward(
            np.ascontiguousarray(g.reshape(1, -1, self.out_features)), self._cache["ctx"])
        if self.requires_grad:
            self.grads["weight"] += dW
            if "bias" in self.params:
                self.grads["bias"] += g.reshape(-1, self.out_features).sum(axis=0)
        return dx3.reshape(*lead, self.in_features)

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, bias={'bias' in self.params}, "
                f"label={self.label!r}")
