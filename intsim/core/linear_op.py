"""The linear operator y = x·Wᵀ and its backward pass under a layer's Numerics.

Shapes: x (G, R, K) float32 — G independent groups (1 for Linear; images for a convolution
after im2col, with R = output positions), W (N, K) float32, y (G, R, N) float32. Each group
runs the whole operator on its own (own scales, own batch Hadamard); dW is the float32 sum
of the groups' dW in group order. The equations (docs/method.md, NUMERICS.md §6; the operands
of each product are modes.PRODUCTS):

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
from typing import Optional

import numpy as np

from intsim.core.accumulator import Accumulator, int_matmul
from intsim.core.hadamard import hadamard_transform
from intsim.core.modes import PRODUCTS, MatmulKind, OperandRole, Product, label
from intsim.core.numerics import Numerics
from intsim.core.quantizer import QuantSpec, quantize_spec
from intsim.core.rng import SRStream
from intsim.core.trace import Trace
from intsim.kernels.rescale import rescale, zero_clipped

FWD, GRAD_IN, GRAD_W = (PRODUCTS[k] for k in MatmulKind)

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
    a: Optional[Operand]
    w: Optional[Operand]
    numerics: Numerics
    rng: Optional[SRStream]
    trace: Optional[Trace]
    label: str


def _record(name: str, value) -> None:
    rec = RECORDER.get()
    if rec is not None:
        rec.record(name, value)


def _stream(rng: Optional[SRStream], layer: str, field: str) -> Optional[SRStream]:
    """The persistent stream of one operand of one layer: rng / layer / operand field."""
    return rng.child(layer).child(field) if isinstance(rng, SRStream) else None


def _operand(x: np.ndarray, role: OperandRole, kind: MatmulKind, ctx: "LinearContext"
             ) -> "Operand":
    """make_operand for one operand role of one product of the layer."""
    return make_operand(x, getattr(ctx.numerics, role.field),
                        _stream(ctx.rng, ctx.label, role.field), ctx.trace,
                        label(ctx.label, kind, role.letter), role.grouped)


def make_operand(x: np.ndarray, spec: Optional[QuantSpec], rng: Optional[SRStream],
                 trace: Optional[Trace], label: str, grouped: bool) -> Operand:
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
        q = quantize_spec(xf, spec, rng, trace, label)
        _record(label + "/codes", q.codes)
        _record(label + "/scale", q.scale)
        return Operand(q.codes, q.scale, None if np.isinf(q.clip_value) else q.clip_value)
    qs = [quantize_spec(xf[g], spec, rng, None, label) for g in range(xf.shape[0])]
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


def _product(left: np.ndarray, right: np.ndarray, acc: Optional[Accumulator],
             trace: Optional[Trace], label: str) -> np.ndarray:
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


def linear_forward(x: np.ndarray, W: np.ndarray, numerics: Optional[Numerics] = None,
                   rng: Optional[SRStream] = None, trace: Optional[Trace] = None,
                   label: str = "") -> tuple[np.ndarray, LinearContext]:
    """y[g] = x[g] · Wᵀ under `numerics` (module docstring). Returns (y, ctx)."""
    nm = numerics or Numerics(name="fp32")
    if x.ndim != 3 or W.ndim != 2 or x.shape[2] != W.shape[1]:
        raise ValueError(f"x, W: expected shapes (G, R, K) and (N, K), got {x.shape}, {W.shape}")
    ctx = LinearContext(x, W, None, None, nm, rng, trace, label)
    ctx.w = _operand(W, FWD.right, FWD.kind, ctx)
    ctx.a = _operand(x, FWD.left, FWD.kind, ctx)
    fwd = _label(ctx, FWD)
    acc = _product(ctx.a.values, ctx.w.values.T, nm.acc_fwd, trace, fwd)
    y = _rescale(acc, _factor(ctx.a.scales, ctx.w.scales, ONE, 1))
    _record(f"{fwd}/y", y)
    return y, ctx


def _label(ctx: LinearContext, product: Product) -> str:
    return label(ctx.label, product.kind)


def _hadamard_product(product: Product, g: np.ndarray, g_axis: int, v: np.ndarray, v_axis: int,
                      s_prior, ctx: LinearContext) -> np.ndarray:
    """One backward product (modes.PRODUCTS) in the Hadamard domain, rescaled to float32:

        fl32(fl32(acc(Q_left(H·g) · Q_right(H·v))) · c),  c = fl32(fl32(fl32(s_l · s_r) · s_prior) / p)

    H (block p) acts on g along g_axis and on v (the forward codes) along v_axis."""
    nm, lab = ctx.numerics, _label(ctx, product)
    gh, p = hadamard_transform(g, g_axis, nm.hadamard)
    vh, _ = hadamard_transform(v, v_axis, nm.hadamard)
    _record(f"{lab}/{product.left.letter}_hadamard", gh)
    _record(f"{lab}/{product.right.letter}_hadamard", vh)
    left = _operand(gh, product.left, product.kind, ctx)
    right = _operand(vh, product.right, product.kind, ctx)
    acc = _product(left.values, right.values, getattr(nm, product.accumulator), ctx.trace, lab)
    return _rescale(acc, _factor(left.scales, right.scales, s_prior, p))


def linear_backward(grad_y: np.ndarray, ctx: LinearContext) -> tuple[np.ndarray, np.ndarray]:
    """(dL/dx (G, R, K), dL/dW (N, K)) from dL/dy (G, R, N) (module docstring)."""
    G = grad_y.astype(np.float32, copy=False)
    # input gradient: Hadamard over the out-features axis N of G and of the forward w codes
    dx = _hadamard_product(GRAD_IN, G, -1, ctx.w.values, 0, ctx.w.scales, ctx)
    dx = _ste_mask(dx, ctx.x, ctx.a.clip, True)
    # weight gradient: Hadamard over the batch axis R of each group, per group (G, N, K)
    Gt = np.ascontiguousarray(np.swapaxes(G, 1, 2))                 # (G, N, R)
    dWg = _hadamard_product(GRAD_W, Gt, -1, ctx.a.values, 1, ctx.a.scales, ctx)
    dW = dWg[0].copy()
    for k in range(1, dWg.shape[0]):
        dW += dWg[k]
    dW = _ste_mask(dW, ctx.W, ctx.w.clip, False)
    _record(f"{_label(ctx, GRAD_IN)}/dx", dx)
    _record(f"{_label(ctx, GRAD_W)}/dW", dW)
    return dx.astype(np.float32, copy=False), dW.astype(np.float32, copy=False)
