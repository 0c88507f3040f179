"""The linear operator y = x·Wᵀ and its backward pass under a layer's Numerics.

Shapes: x (G, R, K) float32 — G independent groups (1 for Linear; images for a convolution
after im2col, with R = output positions), W (N, K) float32, y (G, R, N) float32. Each group
runs the whole operator on its own (own scales, own batch Hadamard); dW is the float32 sum
of the groups' dW in group order. The equations (hdqt.md, NUMERICS.md §6):

  forward      (w, s_w) = Q_wf(W)        (a, s_a) = Q_af(x)
               y = fl32(fl32(acc_fwd(a · wᵀ)) · fl32(s_a · s_w))
  input grad   (g, s_g) = Q_gi(G · H_out)   (v, s_v) = Q_wb(H_out · w)
               dx = fl32(fl32(acc_in(g · v)) · c),  c = fl32(fl32(fl32(s_g · s_v) · s_w) / p_out)
  weight grad  (g, s_g) = Q_gw(Gᵀ · H_bs)   (v, s_v) = Q_ab(H_bs · a)
               dW = fl32(fl32(acc_w(g · v)) · c),   c = fl32(fl32(fl32(s_g · s_v) · s_a) / p_bs)
  straight-through: dx = 0 where |x| > m_a, dW = 0 where |W| > m_w (m: the clamp points).

An unquantized operand is its float32 values with scale 1; H with p = 1 is the identity.
"""
from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from intsim.core.accumulator import int_matmul
from intsim.core.hadamard import block_size, fwht
from intsim.kernels.rescale import rescale, zero_clipped
from intsim.core.numerics import Numerics, QuantSpec
from intsim.core.quantizer import quantize, quantize_log2
from intsim.core.rng import SRStream

#: Set (e.g. by the golden-vector writer) to an object with record(name, array) to capture
#: every intermediate of the operator in execution order.
RECORDER: contextvars.ContextVar = contextvars.ContextVar("intsim_recorder", default=None)
ONE = np.float32(1.0)


@dataclass
class Operand:
    """One matmul input: values (int codes or float32), per-group scales, clamp points."""
    values: np.ndarray
    scales: np.ndarray          # float32, one per group (shape (G,)) or a 0-d scalar
    clip: Optional[np.ndarray] = None   # m per group (|x| > m was clamped), None: no clip

    @property
    def is_int(self) -> bool:
        return self.values.dtype.kind in "iu"


@dataclass
class LinearContext:
    """What the backward pass needs from the forward pass."""
    x: np.ndarray
    W: np.ndarray
    a: Operand
    w: Operand
    numerics: Numerics
    rng: Any
    trace: Any
    label: str


def _record(name: str, value) -> None:
    rec = RECORDER.get()
    if rec is not None:
        rec.record(name, value)


def _stream(rng, label: str, name: str) -> Optional[SRStream]:
    """The persistent stream of one operand of one layer: rng / label / name."""
    return rng.child(label).child(name) if isinstance(rng, SRStream) else None


def _quantize_one(x, spec: QuantSpec, rng, trace, label):
    if spec.format == "log2":
        return quantize_log2(x, spec.bits, rng=rng, sr_bits=spec.sr_bits, trace=trace,
                             label=label)
    return quantize(x, spec.bits, signed=spec.signed, rounding=spec.rounding, clip=spec.clip,
                    scale=spec.scale, rng=rng, sr_bits=spec.sr_bits,
                    symmetric=spec.symmetric, trace=trace, label=label)


def make_operand(x: np.ndarray, spec: Optional[QuantSpec], rng, trace, label: str,
                 grouped: bool) -> Operand:
    """Quantize x per group (grouped: one scale per x[g]) or per tensor; None: as it is.

    x may be integer (forward codes after a Hadamard transform): it is quantized as its
    exact float32 values. A stochastic spec draws from `rng` (one draw per group, in order).
    """
    if spec is None:
        vals = x if x.dtype.kind in "iu" else x.astype(np.float32, copy=False)
        n = x.shape[0] if grouped else None
        scales = np.ones(n, np.float32) if grouped else ONE
        return Operand(vals, scales)
    if spec.stochastic and rng is None:
        raise ValueError(f"rng: {label} rounds stochastically and needs an SRStream; pass "
                         "seed= or rng= to the layer")
    xf = x.astype(np.float32, copy=False)
    if not grouped:
        q = _quantize_one(xf, spec, rng, trace, label)
        _record(label + "/codes", q.codes)
        _record(label + "/scale", q.scale)
        return Operand(q.codes, q.scale, None if np.isinf(q.clip_value) else q.clip_value)
    qs = [_quantize_one(xf[g], spec, rng, None, label) for g in range(xf.shape[0])]
    if len(qs) == 1:
        codes = qs[0].codes[None]
    else:
        codes = np.stack([q.codes for q in qs]) if qs else np.zeros(x.shape, np.int8)
    scales = np.array([q.scale for q in qs], np.float32)
    clips = np.array([q.clip_value for q in qs], np.float32)
    if trace is not None and qs:
        v = xf / scales.reshape((-1,) + (1,) * (xf.ndim - 1))
        trace.record_codes(label, codes, v, qs[0].qmin, qs[0].qmax, spec.bits,
                           any(q.signed for q in qs), spec.rounding, float(scales.mean()))
    _record(label + "/codes", codes)
    _record(label + "/scale", scales)
    return Operand(codes, scales, None if np.isinf(clips).all() else clips)


def _product(left: np.ndarray, right: np.ndarray, acc, trace, label: str) -> np.ndarray:
    """left (..., M, K) · right (K, N) or (..., K, N): integer accumulator or float32."""
    if acc is not None and left.dtype.kind in "iu" and right.dtype.kind in "iu":
        if right.ndim == 3 and right.shape[0] == 1:      # one group: skip the batch loop
            out = int_matmul(left[0], right[0], acc, trace=trace, label=label)[None]
        else:
            out = int_matmul(left, right, acc, trace=trace, label=label)
    else:
        out = np.matmul(left.astype(np.float32), right.astype(np.float32))
    _record(label + "/acc", out)
    return out


def _rescale(acc: np.ndarray, c) -> np.ndarray:
    """fl32(fl32(acc) · c) with c (G,) (or a scalar) broadcast over each group's trailing dims."""
    c = np.asarray(c, np.float32)
    groups = acc.shape[0] if c.ndim else 1
    out = np.empty(acc.shape, np.float32)
    rescale(np.ascontiguousarray(acc).reshape(groups, -1),
            np.broadcast_to(c, (groups,)).copy(), out.reshape(groups, -1))
    return out


def _factor(s_left, s_right, s_prior, p: int) -> np.ndarray:
    """c = fl32(fl32(fl32(s_left · s_right) · s_prior) / p), elementwise in float32."""
    c = np.asarray(s_left, np.float32) * np.asarray(s_right, np.float32)
    c = c * np.asarray(s_prior, np.float32)
    return np.asarray(c / np.float32(p), np.float32)


def _hadamard(x: np.ndarray, axis: int, rule: Optional[str]) -> tuple[np.ndarray, int]:
    """(H·x along axis, block p); identity with p = 1 when rule is None."""
    if rule is None:
        return x, 1
    block = "pad" if rule == "pad" else None
    return fwht(x, axis=axis, block=block), block_size(x.shape[axis], block)


def _ste_mask(grad: np.ndarray, x: np.ndarray, clip, grouped: bool) -> np.ndarray:
    """Zero the gradient where |x| > m (the value was clamped by the forward quantizer)."""
    if clip is None:
        return grad
    m = np.asarray(clip, np.float32).reshape(-1)
    groups = x.shape[0] if grouped else 1
    grad = np.ascontiguousarray(grad, np.float32)
    zero_clipped(grad.reshape(groups, -1), np.ascontiguousarray(x, np.float32).reshape(groups, -1),
                 np.broadcast_to(m, (groups,)).copy())
    return grad


def linear_forward(x: np.ndarray, W: np.ndarray, numerics: Numerics = None, rng=None,
                   trace=None, label: str = "") -> tuple[np.ndarray, LinearContext]:
    """y[g] = x[g] · Wᵀ under `numerics` (module docstring). Returns (y, ctx)."""
    nm = numerics or Numerics(name="fp32")
    if x.ndim != 3 or W.ndim != 2 or x.shape[2] != W.shape[1]:
        raise ValueError(f"x, W: expected shapes (G, R, K) and (N, K), got {x.shape}, {W.shape}")
    w = make_operand(W, nm.w_fwd, _stream(rng, label, "w_fwd"), trace, f"{label}/fwd/w", False)
    a = make_operand(x, nm.a_fwd, _stream(rng, label, "a_fwd"), trace, f"{label}/fwd/a", True)
    acc = _product(a.values, w.values.T, nm.acc_fwd, trace, f"{label}/fwd")
    y = _rescale(acc, _factor(a.scales, w.scales, ONE, 1))
    _record(f"{label}/fwd/y", y)
    return y, LinearContext(x, W, a, w, nm, rng, trace, label)


def linear_backward(grad_y: np.ndarray, ctx: LinearContext) -> tuple[np.ndarray, np.ndarray]:
    """(dL/dx (G, R, K), dL/dW (N, K)) from dL/dy (G, R, N) (module docstring)."""
    nm, lab, tr, rng = ctx.numerics, ctx.label, ctx.trace, ctx.rng
    G = grad_y.astype(np.float32, copy=False)

    # input gradient: Hadamard over the out-features axis N
    gh, p_out = _hadamard(G, -1, nm.hadamard)
    wh, _ = _hadamard(ctx.w.values, 0, nm.hadamard)
    _record(f"{lab}/grad_in/g_hadamard", gh)
    _record(f"{lab}/grad_in/w_hadamard", wh)
    g = make_operand(gh, nm.g_in, _stream(rng, lab, "g_in"), tr, f"{lab}/grad_in/g", True)
    v = make_operand(wh, nm.w_bwd, _stream(rng, lab, "w_bwd"), tr, f"{lab}/grad_in/w", False)
    acc = _product(g.values, v.values, nm.acc_in, tr, f"{lab}/grad_in")
    dx = _rescale(acc, _factor(g.scales, v.scales, ctx.w.scales, p_out))
    dx = _ste_mask(dx, ctx.x, ctx.a.clip, True)

    # weight gradient: Hadamard over the batch axis R of each group
    gt = np.ascontiguousarray(np.swapaxes(G, 1, 2))                 # (G, N, R)
    gh2, p_bs = _hadamard(gt, -1, nm.hadamard)
    ah, _ = _hadamard(ctx.a.values, 1, nm.hadamard)
    _record(f"{lab}/grad_w/g_hadamard", gh2)
    _record(f"{lab}/grad_w/a_hadamard", ah)
    g2 = make_operand(gh2, nm.g_w, _stream(rng, lab, "g_w"), tr, f"{lab}/grad_w/g", True)
    va = make_operand(ah, nm.a_bwd, _stream(rng, lab, "a_bwd"), tr, f"{lab}/grad_w/a", True)
    acc_w = _product(g2.values, va.values, nm.acc_w, tr, f"{lab}/grad_w")  # (G, N, K)
    dWg = _rescale(acc_w, _factor(g2.scales, va.scales, ctx.a.scales, p_bs))
    dW = dWg[0].copy()
    for k in range(1, dWg.shape[0]):
        dW += dWg[k]
    dW = _ste_mask(dW, ctx.W, ctx.w.clip, False)
    _record(f"{lab}/grad_in/dx", dx)
    _record(f"{lab}/grad_w/dW", dW)
    return dx.astype(np.float32, copy=False), dW.astype(np.float32, copy=False)
