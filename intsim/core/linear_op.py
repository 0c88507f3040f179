"""The linear operator y = x·Wᵀ and its backward pass under a layer's Numerics.

Shapes: x (G, R, K) float32 — G independent groups (1 for Linear; images for a convolution
after im2col, with R = output positions), W (N, K) float32, y (G, R, N) float32. Each group
runs the whole operator on its own (own scales, own batch Hadamard); dW is the float32 sum
of the groups' dW in group order. The equations (docs/method.md, NUMERICS.md §6; the operands
of each product are modes.PRODUCTS):

  forward      (w, s_w) = Q_wf(W)        (a, s_a) = Q_af(x)
               y  = R(acc_fwd(a · wᵀ);  s_w, s_a;      1)
  input grad   (g, s_g) = Q_gi(G · H_out)   (v, s_v) = Q_wb(H_out · w)
               dx = R(acc_in(g · v);    s_g, s_v, s_w; p_out)
  weight grad  (g, s_g) = Q_gw(Gᵀ · H_bs)   (v, s_v) = Q_ab(H_bs · a)
               dW = R(acc_w(g · v);     s_g, s_v, s_a; p_bs)
  straight-through: dx = 0 where |x| > t_a, dW = 0 where |W| > t_w (Numerics.ste: t = the clamp
               point m of the forward quantizer, or 2^(bits-1) - 1, or never).

The rescale R(acc; f_1 … f_k; p) in float32, by Numerics.rescale_order:
  scale_product   fl32(fl32(acc) · c),   c = fl32(…fl32(fl32(f_1 · f_2) · f_3)… / p)
  left_to_right   fl32(…fl32(fl32(fl32(acc) · f_1) · f_2)… / p)   (the published code's order)
Numerics.act_scale = per_batch: the caller (Conv2d) quantizes the whole input batch once and
passes the operand `a`; every group then uses that scale and clamp point.
An unquantized operand is its float32 values with scale 1; H with p = 1 is the identity.
"""
from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Optional

import numpy as np

from intsim.core.accumulator import Accumulator, int_matmul
from intsim.core.hadamard import hadamard_transform
from intsim.core.modes import (PRODUCTS, MatmulKind, OperandRole, Product, RescaleOrder, SteRule,
                               label)
from intsim.core.numerics import Numerics
from intsim.core.quantizer import QuantSpec, quantize_groups, quantize_spec
from intsim.core.modes import label as operand_label
from intsim.core.ranges import product_operand_ranges
from intsim.core.rng import SRStream
from intsim.core.trace import Trace
from intsim.kernels.rescale import rescale, rescale_chain, zero_clipped

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
    _record(label + "/x", xf)                       # the quantizer's input …
    if not grouped:
        q = quantize_spec(xf, spec, rng, trace, label)
        _record(label + "/codes", q.codes)
        _record(label + "/scale", q.scale)
        _record(label + "/m", q.clip_value)         # … and its clamp point m (NUMERICS §2)
        return Operand(q.codes, q.scale, None if np.isinf(q.clip_value) else q.clip_value)
    q = quantize_groups(xf, spec, rng, label)       # = quantize_spec per group, in order
    codes, scales, clips = q.codes, q.scales, q.clips
    if trace is not None and xf.shape[0]:
        v = xf / scales.reshape((-1,) + (1,) * (xf.ndim - 1))
        trace.record_codes(label, codes, v, q.qmin, q.qmax, spec.bits, q.signed, spec.rounding,
                           float(scales.mean()))
    _record(label + "/codes", codes)
    _record(label + "/scale", scales)
    _record(label + "/m", clips)
    return Operand(codes, scales, None if np.isinf(clips).all() else clips)


def _product(left: np.ndarray, right: np.ndarray, acc: Optional[Accumulator],
             trace: Optional[Trace], label: str, ranges=(None, None)) -> np.ndarray:
    """left (..., M, K) · right (K, N) or (..., K, N): integer accumulator or float32.
    `ranges`: the operands' declared code ranges (ranges.product_operand_ranges), checked by
    int_matmul."""
    if acc is not None and left.dtype.kind in "iu" and right.dtype.kind in "iu":
        kw = dict(trace=trace, label=label, a_range=ranges[0], b_range=ranges[1])
        if right.ndim == 3 and right.shape[0] == 1:      # one group: skip the batch loop
            out = int_matmul(left[0], right[0], acc, **kw)[None]
        else:
            out = int_matmul(left, right, acc, **kw)
    else:
        out = np.matmul(left.astype(np.float32), right.astype(np.float32))
    _record(label + "/acc", out)
    return out


def _rescale(acc: np.ndarray, factors, p: int, order: RescaleOrder) -> np.ndarray:
    """R(acc; factors; p) of the module docstring: acc (G, …), each factor a per-group (G,)
    array or a scalar, broadcast over each group's trailing dims."""
    groups = acc.shape[0]
    f = np.empty((groups, len(factors)), np.float32)                # (G, k)
    for j, v in enumerate(factors):
        f[:, j] = np.asarray(v, np.float32).reshape(-1)              # a (G,) array or a scalar
    flat = np.ascontiguousarray(acc).reshape(groups, -1)
    out = np.empty(acc.shape, np.float32)
    if order == RescaleOrder.LEFT_TO_RIGHT:
        rescale_chain(flat, f, np.float32(p), out.reshape(groups, -1))
        return out
    c = f[:, 0].copy()
    for j in range(1, f.shape[1]):
        c = c * f[:, j]
    rescale(flat, c / np.float32(p), out.reshape(groups, -1))
    return out


def _ste_mask(grad: np.ndarray, x: np.ndarray, op: "Operand", spec: Optional[QuantSpec],
              rule: SteRule, grouped: bool) -> np.ndarray:
    """Zero the gradient where |x| > t (module docstring): t = the operand's clamp point
    (clipped), 2^(bits-1) - 1 (code_max), or nothing (none, or an unquantized operand)."""
    groups = x.shape[0] if grouped else 1
    if spec is None or rule == SteRule.NONE:
        return grad
    if rule == SteRule.CODE_MAX:
        t = np.full(groups, 2 ** (spec.bits - 1) - 1, np.float32)
    elif op.clip is None:
        return grad
    else:
        t = np.broadcast_to(np.asarray(op.clip, np.float32).reshape(-1), (groups,)).copy()
    grad = np.ascontiguousarray(grad, np.float32)
    zero_clipped(grad.reshape(groups, -1), np.ascontiguousarray(x, np.float32).reshape(groups, -1),
                 t)
    return grad


def batch_operand(x: np.ndarray, numerics: Numerics, rng: Optional[SRStream],
                  trace: Optional[Trace], label: str, unfold, groups: int) -> Operand:
    """The forward activation operand of a whole batch with one scale (act_scale per_batch):
    x (any shape, e.g. the (B, C, H, W) input of a convolution) quantized once by a_fwd (one
    SR draw), then unfold(codes) → (G, R, K); every group carries the batch scale and clamp
    point. Zero padding in unfold is code 0."""
    role, layer = FWD.left, label
    op = make_operand(x, numerics.a_fwd, _stream(rng, layer, role.field), trace,
                      operand_label(layer, FWD.kind, role.letter), False)
    clip = None if op.clip is None else np.full(groups, op.clip, np.float32)
    cols = unfold(op.values)
    _record(operand_label(layer, FWD.kind, role.letter) + "/cols", cols)   # the matmul's a
    return Operand(cols, np.full(groups, op.scales, np.float32), clip)


def linear_forward(x: np.ndarray, W: np.ndarray, numerics: Optional[Numerics] = None,
                   rng: Optional[SRStream] = None, trace: Optional[Trace] = None,
                   label: str = "", a: Optional[Operand] = None
                   ) -> tuple[np.ndarray, LinearContext]:
    """y[g] = x[g] · Wᵀ under `numerics` (module docstring). Returns (y, ctx).

    `a`: the forward activation operand when the caller quantized it (batch_operand);
    default: Q_af of each group of x."""
    nm = numerics or Numerics(name="fp32")
    if x.ndim != 3 or W.ndim != 2 or x.shape[2] != W.shape[1]:
        raise ValueError(f"x, W: expected shapes (G, R, K) and (N, K), got {x.shape}, {W.shape}")
    ctx = LinearContext(x, W, None, None, nm, rng, trace, label)
    ctx.w = _operand(W, FWD.right, FWD.kind, ctx)
    ctx.a = _operand(x, FWD.left, FWD.kind, ctx) if a is None else a
    fwd = _label(ctx, FWD)
    acc = _product(ctx.a.values, ctx.w.values.T, nm.acc_fwd, trace, fwd,
                   product_operand_ranges(nm, FWD.kind))
    y = _rescale(acc, (ctx.w.scales, ctx.a.scales), 1, nm.rescale_order)
    _record(f"{fwd}/y", y)
    return y, ctx


def _label(ctx: LinearContext, product: Product) -> str:
    return label(ctx.label, product.kind)


def _hadamard_product(product: Product, g: np.ndarray, g_axis: int, v: np.ndarray, v_axis: int,
                      s_prior, ctx: LinearContext) -> np.ndarray:
    """One backward product (modes.PRODUCTS) in the Hadamard domain, rescaled to float32:

        R(acc(Q_left(H·g) · Q_right(H·v)); s_left, s_right, s_prior; p)

    H (block p) acts on g along g_axis and on v (the forward codes) along v_axis."""
    nm, lab = ctx.numerics, _label(ctx, product)
    gh, p = hadamard_transform(g, g_axis, nm.hadamard)
    vh, _ = hadamard_transform(v, v_axis, nm.hadamard)
    _record(f"{lab}/{product.left.letter}_hadamard", gh)
    _record(f"{lab}/{product.right.letter}_hadamard", vh)
    left = _operand(gh, product.left, product.kind, ctx)
    right = _operand(vh, product.right, product.kind, ctx)
    acc = _product(left.values, right.values, getattr(nm, product.accumulator), ctx.trace, lab,
                   product_operand_ranges(nm, product.kind, p))
    return _rescale(acc, (left.scales, right.scales, s_prior), p, nm.rescale_order)


def linear_backward(grad_y: np.ndarray, ctx: LinearContext) -> tuple[np.ndarray, np.ndarray]:
    """(dL/dx (G, R, K), dL/dW (N, K)) from dL/dy (G, R, N) (module docstring)."""
    G = grad_y.astype(np.float32, copy=False)
    # input gradient: Hadamard over the out-features axis N of G and of the forward w codes
    dx = _hadamard_product(GRAD_IN, G, -1, ctx.w.values, 0, ctx.w.scales, ctx)
    nm = ctx.numerics
    dx = _ste_mask(dx, ctx.x, ctx.a, nm.a_fwd, nm.ste, True)
    # weight gradient: Hadamard over the batch axis R of each group, per group (G, N, K)
    Gt = np.ascontiguousarray(np.swapaxes(G, 1, 2))                 # (G, N, R)
    dWg = _hadamard_product(GRAD_W, Gt, -1, ctx.a.values, 1, ctx.a.scales, ctx)
    dW = dWg[0].copy()
    for k in range(1, dWg.shape[0]):
        dW += dWg[k]
    dW = _ste_mask(dW, ctx.W, ctx.w, nm.w_fwd, nm.ste, False)
    _record(f"{_label(ctx, GRAD_IN)}/dx", dx)
    _record(f"{_label(ctx, GRAD_W)}/dW", dW)
    return dx.astype(np.float32, copy=False), dW.astype(np.float32, copy=False)
