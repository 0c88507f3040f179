"""What each nn layer, loss and the optimizer costs: operation counts and memory traffic.

A `LayerUse` is one forward call of a module (its input and output shapes, whether its input
had values < 0, train or eval mode) and whether its backward ran and accumulated parameter
gradients. `add_use(ledger, use)` books its cost:

  Linear, Conv2d   the linear operator (intsim.core.costs.linear_op_cost) on x (G, R, K):
                   Linear G = 1, R = batch rows, K = in, N = out; Conv2d G = images,
                   R = Ho·Wo, K = Cin·k·k (im2col), N = Cout (under act_scale per_batch its
                   input quantized once, as Conv2d does); with float numerics the fp32
                   BLAS path (float_matmul_cost; dW only for a trained layer). Plus the bias
                   (one fp_add per output forward, one per output backward when trained) and,
                   for Conv2d, col2im's addition of every column entry into dx (G·R·K fp_add).
  BatchNorm        train forward per element: mean (add), centre (add), variance (mul, add),
                   normalise (mul), affine (mul, add); per channel 1/S divisions, sqrt and
                   divide of 1/√(σ²+ε), running statistics (6 mul, 2 add). Eval forward: centre,
                   normalise, affine. Backward (train): dγ (mul, add), dβ (add), the two means
                   (add; mul, add) and dx (2 mul, 2 add) per element; eval: one mul.
  ReLU             one compare-select per element forward and backward.
  MaxPool2d        k²−1 compares per output forward, k² selects per output backward.
  AvgPool2d        k²−1 adds + 1 mul per output forward, 1 mul per output backward.
  GlobalAvgPool    H·W−1 adds + 1 mul per output forward, 1 mul per output backward.
  BasicBlock       its residual add (one fp_add per output forward, per input element
                   backward); its children are booked on their own.
  ShortcutA, Identity, Flatten, containers: no arithmetic.

Memory: a layer reads its input and writes its output in forward (fp32 activations); what it
keeps for backward (ReLU: a 1-bit mask; BatchNorm: x̂ fp32; MaxPool2d: the argmax index) is
written in forward and read in backward; backward reads dy and writes dx. The linear operator
books its own tensors (core.costs).

Losses (`loss_counts`) count what intsim.nn.losses evaluates per element of the logits; SGD
(`sgd_counts`) the update of every trained parameter (weight decay: mul + add; momentum:
mul + add; step: mul + add) and its traffic (w, v read and written, the gradient read and
zeroed). These are float32 (counted at 32 bits), as in the paper.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from intsim.core.costs import FP32, Counts, Op, Traffic, float_matmul_cost, linear_op_cost
from intsim.core.ledger import Ledger
from intsim.core.modes import ActScale, CostPart, MatmulKind, OpKind, TensorClass
from intsim.core.numerics import Numerics
from intsim.nn.activation import Flatten, Identity, ReLU
from intsim.nn.conv import Conv2d
from intsim.nn.linear import Linear
from intsim.nn.module import Module
from intsim.nn.norm import _BatchNorm
from intsim.nn.pool import AvgPool2d, GlobalAvgPool, MaxPool2d
from intsim.nn.resnet_block import BasicBlock, ShortcutA

ADD, MUL, DIV = Op(OpKind.FP_ADD, FP32), Op(OpKind.FP_MUL, FP32), Op(OpKind.FP_DIV, FP32)
CMP, SPECIAL = Op(OpKind.FP_CMP, FP32), Op(OpKind.FP_SPECIAL, FP32)
FORWARD, BACKWARD = "forward", "backward"
#: module types with no arithmetic of their own (their children, if any, are booked)
PASSIVE = (ShortcutA, Identity, Flatten)


@dataclass
class LayerUse:
    """One forward call of `module` (and its backward, if it ran)."""
    module: Module
    role: str
    in_shape: tuple
    out_shape: tuple
    x_negative: bool
    training: bool
    numerics: Optional[Numerics] = None
    backward: bool = False
    trains: bool = False

    @property
    def label(self) -> str:
        return self.module.label or type(self.module).__name__


def _counts(**ops) -> Counts:
    """Counts of the LAYER part from name=(op, n) pairs."""
    c = Counts()
    for op, n in ops.values():
        c.add(CostPart.LAYER, op, n)
    return c


def _act(tensor: str, n: int, reads: int = 0, writes: int = 0, bits: int = FP32,
         cls: TensorClass = TensorClass.ACTIVATIONS) -> Traffic:
    return Traffic(tensor, cls, n, bits, reads, writes)


def _matmul_use(ledger: Ledger, use: LayerUse) -> None:
    m = use.module
    if isinstance(m, Conv2d):
        B, _, H, W = use.in_shape
        _, N, Ho, Wo = use.out_shape
        G, R, K = B, Ho * Wo, m.in_channels * m.kernel_size * m.kernel_size
    else:
        K, N = m.in_features, m.out_features
        G, R = 1, math.prod(use.in_shape[:-1])
    nm = use.numerics
    if nm is None or nm.is_float:
        oc = float_matmul_cost(G * R, K, N, weight_grad=use.trains, backward=use.backward)
    else:                         # Conv2d under per_batch quantizes its whole input once
        a_batch = (math.prod(use.in_shape) if isinstance(m, Conv2d)
                   and nm.act_scale == ActScale.PER_BATCH else None)
        oc = linear_op_cost(nm, G, R, K, N, use.x_negative, backward=use.backward,
                            a_batch=a_batch)
    for kind in oc.counts:
        ledger.add((use.role, use.label, str(kind)), oc.counts[kind], oc.traffic[kind])
    if "bias" in m.params:
        ledger.add((use.role, use.label, str(MatmulKind.FWD)), _counts(a=(ADD, G * R * N)))
        if use.backward and use.trains:
            ledger.add((use.role, use.label, str(MatmulKind.GRAD_W)),
                       _counts(a=(ADD, G * R * N)))
    if isinstance(m, Conv2d) and use.backward:
        ledger.add((use.role, use.label, str(MatmulKind.GRAD_IN)), _counts(a=(ADD, G * R * K)))


def _batchnorm(use: LayerUse) -> tuple[Counts, list, Counts, list]:
    m = use.module
    n, C = math.prod(use.in_shape), m.num_features
    affine = "weight" in m.params
    if use.training:
        f = _counts(add=(ADD, 3 * n + 3 * C), mul=(MUL, 2 * n + 6 * C),
                    div=(DIV, 3 * C), sq=(SPECIAL, C))
    else:
        f = _counts(add=(ADD, n + C), mul=(MUL, n), div=(DIV, C), sq=(SPECIAL, C))
    if affine:
        f.merge(_counts(mul=(MUL, n), add=(ADD, n)))
    f_t = [_act("x", n, reads=1 + use.training), _act("y", n, writes=1)]
    if not use.backward:
        return f, f_t, Counts(), []
    f_t.append(_act("xhat", n, writes=1, cls=TensorClass.KEPT))
    grads = affine and use.trains
    if use.training:
        b = _counts(add=(ADD, 4 * n + (2 * n if grads else 0)), mul=(MUL, 3 * n + C
                                                                     + (n if grads else 0)),
                    div=(DIV, 2 * C))
    else:
        b = _counts(mul=(MUL, n + C), add=(ADD, 2 * n if grads else 0),
                    mul2=(MUL, n if grads else 0))
    b_t = [_act("dy", n, reads=2, cls=TensorClass.GRADIENTS),
           _act("xhat", n, reads=2, cls=TensorClass.KEPT),
           _act("dx", n, writes=1, cls=TensorClass.GRADIENTS)]
    return f, f_t, b, b_t


def _elementwise(use: LayerUse) -> Optional[tuple[Counts, list, Counts, list]]:
    """(forward counts, traffic, backward counts, traffic) of the float layers."""
    m = use.module
    n_in, n_out = math.prod(use.in_shape), math.prod(use.out_shape)
    grad = [_act("dy", n_out, reads=1, cls=TensorClass.GRADIENTS),
            _act("dx", n_in, writes=1, cls=TensorClass.GRADIENTS)]
    io = [_act("x", n_in, reads=1), _act("y", n_out, writes=1)]
    if isinstance(m, ReLU):
        kept = [_act("mask", n_in, writes=1, bits=1, cls=TensorClass.KEPT)]
        return (_counts(c=(CMP, n_in)), io + kept, _counts(c=(CMP, n_in)),
                grad + [_act("mask", n_in, reads=1, bits=1, cls=TensorClass.KEPT)])
    if isinstance(m, MaxPool2d):
        k2 = m.kernel_size ** 2
        idx_bits = max(1, (k2 - 1).bit_length())
        return (_counts(c=(CMP, n_out * (k2 - 1))),
                io + [_act("argmax", n_out, writes=1, bits=idx_bits, cls=TensorClass.KEPT)],
                _counts(c=(CMP, n_out * k2)),
                grad + [_act("argmax", n_out, reads=1, bits=idx_bits, cls=TensorClass.KEPT)])
    if isinstance(m, AvgPool2d):
        k2 = m.kernel_size ** 2
        return (_counts(a=(ADD, n_out * (k2 - 1)), m=(MUL, n_out)), io,
                _counts(m=(MUL, n_out)), grad)
    if isinstance(m, GlobalAvgPool):
        return (_counts(a=(ADD, n_in - n_out), m=(MUL, n_out)), io, _counts(m=(MUL, n_out)),
                grad)
    if isinstance(m, BasicBlock):       # the residual add h + shortcut(x) and its backward
        return (_counts(a=(ADD, n_out)), [], _counts(a=(ADD, n_in)), [])
    if isinstance(m, _BatchNorm):
        return _batchnorm(use)
    return None


def add_use(ledger: Ledger, use: LayerUse) -> bool:
    """Book the cost of one LayerUse into `ledger`; False for a module type without a rule
    (a container's own arithmetic is taken to be none)."""
    m = use.module
    if isinstance(m, (Linear, Conv2d)):
        _matmul_use(ledger, use)
        return True
    if isinstance(m, PASSIVE):
        return True
    parts = _elementwise(use)
    if parts is None:
        return False
    f, f_t, b, b_t = parts
    ledger.add((use.role, use.label, FORWARD), f, f_t)
    if use.backward:
        ledger.add((use.role, use.label, BACKWARD), b, b_t)
    return True


# ------------------------------------------------------------------------ losses, SGD
#: per element of the logits / per row, the float ops each loss of intsim.nn.losses evaluates
LOSS_OPS = {
    # max, (z - max), exp, Σ, (s - log Σ), exp(logp) for the gradient, /B; per row: log, -1
    "cross_entropy": ({CMP: 1, ADD: 3, SPECIAL: 2, DIV: 1}, {SPECIAL: 1, ADD: 1}),
    # both softmaxes of z/T and z_old/T, the product and sum, exp(logq), difference, /(T·B)
    "kd_loss": ({DIV: 4, CMP: 2, ADD: 7, SPECIAL: 3, MUL: 1}, {SPECIAL: 1}),
    # max(z,0), z·t, log1p(exp(-|z|)), the sum; sigmoid(z) - t, /denominator
    "bce_with_logits": ({CMP: 2, MUL: 1, ADD: 5, SPECIAL: 3, DIV: 2}, {}),
}


def loss_counts(name: str, rows: int, cols: int) -> Counts:
    """The float work of one evaluation of loss `name` (value and gradient) on (rows, cols)."""
    per_el, per_row = LOSS_OPS[name]
    c = Counts()
    for op, k in per_el.items():
        c.add(CostPart.LOSS, op, k * rows * cols)
    for op, k in per_row.items():
        c.add(CostPart.LOSS, op, k * rows)
    return c


def sgd_counts(n_params: int, momentum: float, weight_decay: float) -> tuple[Counts, list]:
    """One SGD step over n_params trained values (intsim.nn.optim.SGD, dampening 0)."""
    c = Counts()
    terms = 1 + bool(weight_decay) + bool(momentum)
    c.add(CostPart.SGD, MUL, terms * n_params)
    c.add(CostPart.SGD, ADD, terms * n_params)
    t = [Traffic("weights", TensorClass.MASTER, n_params, FP32, 1, 1),
         Traffic("grads", TensorClass.GRADIENTS, n_params, FP32, 1, 1)]
    if momentum:
        t.append(Traffic("momentum", TensorClass.MASTER, n_params, FP32, 1, 1))
    return c, t
