"""Quantized layers equal a direct composition of the numerics-core primitives (docs/method.md).

The reference below is written from the method's equations (docs/method.md), one group at a time, with the
float32 operation order of NUMERICS.md §6; the layers must match it bit for bit.
"""
import dataclasses

import numpy as np
import pytest

from intsim import SRStream, Trace, fwht, int_matmul, preset, quantize
from intsim.core.hadamard import block_size
from intsim.nn import Conv2d, Linear, im2col
from intsim.core.quantizer import quantize_log2

PRESETS = ["int4", "hdqt", "hdqt_paper", "luq"]
f32 = np.float32


def q(x, spec, stream):
    if spec is None:
        return None
    if spec.format == "log2":
        return quantize_log2(x.astype(f32), spec.bits, rng=stream, sr_bits=spec.sr_bits)
    return quantize(x.astype(f32), spec.bits, signed=spec.signed, rounding=spec.rounding,
                    clip=spec.clip, scale=spec.scale, rng=stream, sr_bits=spec.sr_bits,
                    symmetric=spec.symmetric)


def codes_scale(qt, raw):
    return (raw, f32(1)) if qt is None else (qt.codes, qt.scale)


def matmul(left, right, acc):
    if acc is not None and left.dtype.kind in "iu" and right.dtype.kind in "iu":
        return int_matmul(left, right, acc)
    return left.astype(f32) @ right.astype(f32)


def H(x, axis, rule):
    if rule is None:
        return x, 1
    blk = "pad" if rule == "pad" else None
    return fwht(x, axis=axis, block=blk), block_size(x.shape[axis], blk)


def rescale(acc, factors, p, order):
    """NUMERICS.md §6: scale_product multiplies the factors first, left_to_right applies them
    to acc one after another; both divide by p last."""
    if order == "left_to_right":
        v = acc.astype(f32)
        for s_ in factors:
            v = v * f32(s_)
        return v / f32(p)
    c = f32(factors[0])
    for s_ in factors[1:]:
        c = f32(c * f32(s_))
    return acc.astype(f32) * f32(c / f32(p))


def reference(x3, W, G3, nm, stream):
    """(y, dx, dW) for x3 (G, R, K), W (N, K), G3 = dL/dy (G, R, N), per docs/method.md."""
    s = {name: stream.child(name) for name in ("w_fwd", "a_fwd", "g_in", "w_bwd", "g_w",
                                               "a_bwd")}
    qw = q(W, nm.w_fwd, s["w_fwd"])
    w, s_w = codes_scale(qw, W)
    wh, p_out = H(w, 0, nm.hadamard)
    qv = q(wh, nm.w_bwd, s["w_bwd"])
    v, s_v = codes_scale(qv, wh)
    ys, dxs, dWs, qas = [], [], [], []
    batch = q(x3, nm.a_fwd, s["a_fwd"]) if nm.act_scale == "per_batch" else None
    for g in range(x3.shape[0]):                        # forward of every group first
        qa = q(x3[g], nm.a_fwd, s["a_fwd"]) if batch is None else dataclasses.replace(
            batch, codes=batch.codes[g])                # per_batch: one scale for all groups
        qas.append(qa)
        a, s_a = codes_scale(qa, x3[g])
        acc = matmul(a, np.ascontiguousarray(w.T), nm.acc_fwd)
        ys.append(rescale(acc, (s_w, s_a), 1, nm.rescale_order))
    for g in range(x3.shape[0]):                        # input gradients
        gh, _ = H(G3[g], -1, nm.hadamard)
        qg = q(gh, nm.g_in, s["g_in"])
        gi, s_g = codes_scale(qg, gh)
        dx = rescale(matmul(gi, v, nm.acc_in), (s_g, s_v, s_w), p_out, nm.rescale_order)
        if qas[g] is not None and not np.isinf(qas[g].clip_value):
            dx = np.where(np.abs(x3[g]) > qas[g].clip_value, f32(0), dx)
        dxs.append(dx)
    for g in range(x3.shape[0]):                        # weight gradients
        a, s_a = codes_scale(qas[g], x3[g])
        gt, p_bs = H(np.ascontiguousarray(G3[g].T), -1, nm.hadamard)
        qg2 = q(gt, nm.g_w, s["g_w"])
        g2, s_g2 = codes_scale(qg2, gt)
        ah, _ = H(a, 0, nm.hadamard)
        qah = q(ah, nm.a_bwd, s["a_bwd"])
        av, s_ah = codes_scale(qah, ah)
        dWs.append(rescale(matmul(g2, av, nm.acc_w), (s_g2, s_ah, s_a), p_bs, nm.rescale_order))
    dW = dWs[0].copy()
    for d in dWs[1:]:
        dW += d
    if qw is not None and not np.isinf(qw.clip_value):
        dW = np.where(np.abs(W) > qw.clip_value, f32(0), dW)
    return np.stack(ys), np.stack(dxs), dW


def data(B, K, N, seed, relu=True):
    r = np.random.default_rng(seed)
    x = r.standard_normal((B, K)).astype(f32)
    x = np.maximum(x, 0) if relu else x
    x[0, 0] = 9.0                                        # an outlier the clip removes
    W = (r.standard_normal((N, K)) * 0.1).astype(f32)
    G = (r.standard_normal((B, N)) * 1e-2).astype(f32)
    G[1, 2] = 0.5                                        # a heavy-tailed gradient entry
    return x, W, G


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("shape", [(128, 405, 405), (16, 64, 19), (7, 33, 5)])
def test_linear_equals_composition(name, shape):
    B, K, N = shape
    x, W, G = data(B, K, N, seed=B + K)
    nm = preset(name)
    layer = Linear(K, N, bias=False, numerics=nm, rng=SRStream(5))
    layer.params["weight"][...] = W
    y = layer.forward(x)
    dx = layer.backward(G)
    ry, rdx, rdW = reference(x[None], W, G[None], nm, SRStream(5).child(layer.label))
    assert np.array_equal(y, ry[0])
    assert np.array_equal(dx, rdx[0])
    assert np.array_equal(layer.grads["weight"], rdW)


@pytest.mark.parametrize("name", PRESETS)
def test_conv_runs_one_group_per_image(name):
    r = np.random.default_rng(3)
    x = r.standard_normal((3, 2, 6, 6)).astype(f32)
    nm = preset(name)
    conv = Conv2d(2, 4, 3, stride=1, padding=1, bias=False, numerics=nm, rng=SRStream(9))
    y = conv.forward(x)
    G = (r.standard_normal(y.shape) * 1e-2).astype(f32)
    dx = conv.backward(G)
    cols = im2col(x, 3, 1, 1)                            # (B, L, K)
    Wm = conv.params["weight"].reshape(4, -1)
    G3 = G.transpose(0, 2, 3, 1).reshape(3, 36, 4)
    ry, rdcols, rdW = reference(cols, Wm, G3, nm, SRStream(9).child(conv.label))
    assert np.array_equal(y, ry.reshape(3, 6, 6, 4).transpose(0, 3, 1, 2))
    assert np.array_equal(conv.grads["weight"].reshape(4, -1), rdW)
    assert dx.shape == x.shape


def test_paper_hadamard_rule_skips_odd_widths_and_pad_transforms_them():
    x, W, G = data(128, 405, 405, seed=1)
    tr_paper, tr_hw = Trace(), Trace()
    for nm, tr in ((preset("hdqt_paper"), tr_paper), (preset("hdqt"), tr_hw)):
        layer = Linear(405, 405, bias=False, numerics=nm, rng=SRStream(1))
        layer.params["weight"][...] = W
        layer.set_trace(tr)
        layer.forward(x)
        layer.backward(G)
    k_paper = tr_paper.to_frame("matmul").set_index("label")["K"]
    k_hw = tr_hw.to_frame("matmul").set_index("label")["K"]
    assert k_paper["/grad_in"] == 405 and k_hw["/grad_in"] == 512     # p_out: 1 vs 512
    assert k_paper["/grad_w"] == 128 and k_hw["/grad_w"] == 128       # batch 128 = 2^7


def test_deterministic_rounding_repeats_and_sr_depends_on_seed():
    x, W, G = data(32, 40, 10, seed=2)

    def run(nm, seed):
        layer = Linear(40, 10, bias=False, numerics=nm, rng=SRStream(seed))
        layer.params["weight"][...] = W
        layer.forward(x)
        return layer.backward(G), layer.grads["weight"].copy()

    nm = preset("hdqt")
    nearest = dataclasses.replace(nm, **{f: dataclasses.replace(getattr(nm, f),
                                                                rounding="nearest")
                                         for f in ("a_bwd", "g_in", "g_w")})
    for a, b in zip(run(nearest, 1), run(nearest, 2)):
        assert np.array_equal(a, b)
    same = [np.array_equal(a, b) for a, b in zip(run(nm, 1), run(nm, 1))]
    other = [np.array_equal(a, b) for a, b in zip(run(nm, 1), run(nm, 2))]
    assert all(same) and not any(other)


def test_sr_streams_advance_between_steps_and_differ_between_layers():
    x, W, G = data(16, 32, 8, seed=4)
    rng = SRStream(0)
    l1 = Linear(32, 8, bias=False, numerics=preset("hdqt"), rng=rng)
    l1.params["weight"][...] = W
    grads = []
    for _ in range(2):
        l1.zero_grad()
        l1.forward(x)
        l1.backward(G)
        grads.append(l1.grads["weight"].copy())
    assert not np.array_equal(grads[0], grads[1])          # fresh random bits each step
    assert rng.child(l1.label).child("g_w").draws == 2


def test_trace_labels_and_kinds():
    x, W, G = data(16, 32, 8, seed=4)
    tr = Trace()
    layer = Linear(32, 8, bias=False, numerics=preset("hdqt"), rng=SRStream(0))
    layer.set_trace(tr)
    layer.forward(x)
    layer.backward(G)
    labels = set(tr.to_frame()["label"])
    for kind in ("fwd", "grad_in", "grad_w"):
        assert f"/{kind}" in labels
    assert {"/fwd/w", "/fwd/a", "/grad_in/g", "/grad_in/w", "/grad_w/g",
            "/grad_w/a"} <= labels


def test_stochastic_spec_without_stream_is_a_clear_error():
    from intsim.core import linear_op as qlinear
    x, W, G = data(4, 8, 3, seed=0)
    with pytest.raises(ValueError, match="rng"):
        y, ctx = qlinear.linear_forward(x[None], W, preset("hdqt"), None)
        qlinear.linear_backward(G[None], ctx)
