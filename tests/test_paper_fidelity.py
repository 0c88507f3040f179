"""hdqt_paper computes what the published HDQT code computes, bit for bit (docs/fidelity.md).

The reference here is written from the published code's equations (docs/fidelity.md §1–2), with
plain NumPy float32 in its order of operations — nothing from intsim.core.linear_op:

  forward    a, s_a = Q(x) once for the batch (before unfold); w, s_w = Q(W)
             acc = Σ_tiles clamp(a_tile · w_tileᵀ, ±127);        y = acc * s_w * s_a
  input grad w_h, s_wh = Q(H_out · w);  g, s_g = SR(G · H_out)
             acc = clamp(g · w_h, ±127);                          dx = acc * s_g * s_wh * s_w * 1 / p_out
  weight grd a_h, s_ah = SR(H_bs · a);  g, s_g = SR(Gᵀ · H_bs)
             acc = clamp(g · a_h, ±127);                          dW = acc * s_g * s_ah * s_a * 1 / p_bs
  straight-through: gradient zeroed where |x| > 7 or |W| > 7 (the code_max rule)

`*` and `/` are evaluated left to right, each rounded to float32, as Python evaluates the
published expressions. A convolution runs this per image (per-image backward scales, H_bs over
the image's positions) with the batch's forward activation scale; per-image dW are summed in
image order. Two things are not the published code's and are intsim's documented choices
(docs/fidelity.md): the stochastic roundings come from intsim's counter-based stream (the
reference draws them from the same streams), and the float32 Hadamard transforms of the
gradients G·H are the butterfly network of NUMERICS.md §5.4 (stages h = 1, 2, 4, …) where the
published code multiplies by a dense matrix in BLAS order (their scales can differ by an ulp).
A convolution's per-image dW are summed in image order; PyTorch's reduction of the repeated
weight's gradient takes that order for up to 4 images (beyond, its order depends on the CPU's
SIMD width), so the convolution cases use batches of 2–4 images.
"""
import numpy as np
import pytest

from intsim import SRStream, preset, quantize
from intsim.nn import Conv2d, Linear

f32 = np.float32
PAPER = preset("hdqt_paper").replace(ste="code_max")      # hdqt_paper under protocol "paper"


# ---------------------------------------------------------------- the published equations
def q_nearest(x, clip, auto_sign):
    """Per-tensor max-abs quantizer, round half to even; unsigned [0, 15] for a tensor without
    negative values when auto_sign, else signed ±7."""
    m = f32(np.abs(x).max()) * f32(clip)
    unsigned = auto_sign and x.min() >= 0
    scale = m / f32(15 if unsigned else 7)
    lo = f32(0) if unsigned else -m
    return np.rint(np.clip(x, lo, m) / scale), f32(scale)


def q_sr(x, stream):
    """Stochastic ±7 quantizer with clip 1 (the random bits: intsim's stream, 24 bits)."""
    t = quantize(x.astype(f32), 4, signed=True, rounding="stochastic", clip=1.0, rng=stream,
                 sr_bits=24)
    return t.codes.astype(f32), f32(t.scale)


def sylvester(n):
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def block_hadamard(n):
    """The published make_hadamard: blocks of the largest power of two dividing n."""
    p = n & -n
    return np.kron(np.eye(n // p), sylvester(p)).astype(f32), p


def butterfly(x, p):
    """x · H_p blockwise along the last axis in float32, stages h = 1, 2, 4, … (§5.4)."""
    y = x.astype(f32).copy()
    n = y.shape[-1]
    h = 1
    while h < p:
        for j in range(n):
            if j % (2 * h) < h:
                u, v = y[..., j].copy(), y[..., j + h].copy()
                y[..., j], y[..., j + h] = u + v, u - v
        h *= 2
    return y


def fwd_acc(a, w, tile=32):
    out = np.zeros((a.shape[0], w.shape[0]), f32)
    for k in range(0, a.shape[1], tile):
        out += np.clip(a[:, k:k + tile] @ w[:, k:k + tile].T, -127, 127)
    return out


def operator(a, s_a, w, s_w, G, streams, swap=None):
    """y, dx_cols, dW of one group (image or Linear batch), rows R × in K, out N."""
    y = fwd_acc(a, w) * s_w * s_a
    Hout, p_out = block_hadamard(w.shape[0])
    wh, s_wh = q_nearest(Hout @ w, 1.0, False)
    g1, s_g1 = q_sr(butterfly(G, p_out), streams["g_in"])          # G · H_out
    acc_in = np.clip(g1 @ wh, -127, 127).astype(f32)
    if swap == "dx":
        dx = acc_in * s_w * s_wh * s_g1 * 1 / p_out           # a mutated chain
    else:
        dx = acc_in * s_g1 * s_wh * s_w * 1 / p_out
    Hbs, p_bs = block_hadamard(a.shape[0])
    ah, s_ah = q_sr(Hbs @ a, streams["a_bwd"])
    g2, s_g2 = q_sr(butterfly(G.T, p_bs), streams["g_w"])          # Gᵀ · H_bs
    acc_w = np.clip(g2 @ ah, -127, 127).astype(f32)
    if swap == "dW":
        dW = acc_w * s_ah * s_g2 * s_a * 1 / p_bs
    else:
        dW = acc_w * s_g2 * s_ah * s_a * 1 / p_bs
    if swap == "y":
        y = fwd_acc(a, w) * s_a * s_w
    return y, dx, dW


def streams_of(seed, layer_label):
    root = SRStream(seed).child(layer_label)
    return {k: root.child(k) for k in ("g_in", "a_bwd", "g_w")}


def linear_reference(x, W, G, seed, swap=None):
    a, s_a = q_nearest(x, 0.975, True)
    w, s_w = q_nearest(W, 0.975, False)
    y, dx, dW = operator(a.astype(f32), s_a, w.astype(f32), s_w, G, streams_of(seed, ""), swap)
    dx = np.where(np.abs(x) > 7, f32(0), dx)
    dW = np.where(np.abs(W) > 7, f32(0), dW)
    return y, dx, dW


def unfold(x, k, stride, pad):
    """(B, C, H, W) -> (B, L, C·k·k), column order (c, i, j), positions row-major."""
    B, C, H, Wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = (H + 2 * pad - k) // stride + 1, (Wd + 2 * pad - k) // stride + 1
    cols = np.zeros((B, Ho * Wo, C * k * k), x.dtype)
    for b in range(B):
        for ho in range(Ho):
            for wo in range(Wo):
                patch = xp[b, :, ho * stride:ho * stride + k, wo * stride:wo * stride + k]
                cols[b, ho * Wo + wo] = patch.reshape(-1)
    return cols, Ho, Wo


def fold(cols, shape, k, stride, pad):
    """The adjoint of unfold in PyTorch's col2im order: for each kernel offset (i, j), each
    position adds its column entry to the pixel it was read from (from zero)."""
    B, C, H, Wd = shape
    Ho, Wo = (H + 2 * pad - k) // stride + 1, (Wd + 2 * pad - k) // stride + 1
    xp = np.zeros((B, C, H + 2 * pad, Wd + 2 * pad), f32)
    c6 = cols.reshape(B, Ho, Wo, C, k, k)
    for i in range(k):
        for j in range(k):
            for ho in range(Ho):
                for wo in range(Wo):
                    xp[:, :, ho * stride + i, wo * stride + j] += c6[:, ho, wo, :, i, j]
    return xp[:, :, pad:pad + H, pad:pad + Wd]


def conv_reference(x, Wt, G4, k, stride, pad, seed, swap=None):
    """The published Conv2d: one batch scale, then the per-image operator."""
    a4, s_a = q_nearest(x, 0.975, True)                     # whole batch, before unfold
    w, s_w = q_nearest(Wt.reshape(Wt.shape[0], -1), 0.975, False)
    cols, Ho, Wo = unfold(a4.astype(f32), k, stride, pad)
    streams = streams_of(seed, "")
    ys, dcols, dW = [], [], np.zeros(w.shape, f32)
    for b in range(x.shape[0]):
        Gb = G4[b].reshape(G4.shape[1], -1).T               # (L, N)
        y, dx, dWb = operator(cols[b], s_a, w.astype(f32), s_w, Gb, streams, swap)
        ys.append(y.T.reshape(-1, Ho, Wo))
        dcols.append(dx)
        dW = dW + dWb
    dx = fold(np.stack(dcols), x.shape, k, stride, pad)
    dx = np.where(np.abs(x) > 7, f32(0), dx)
    dW = np.where(np.abs(Wt.reshape(w.shape)) > 7, f32(0), dW)
    return np.stack(ys), dx, dW.reshape(Wt.shape)


# ---------------------------------------------------------------- data and the layers
def linear_data(B, K, N, relu, seed):
    r = np.random.default_rng(seed)
    x = r.standard_normal((B, K)).astype(f32)
    x = np.maximum(x, 0) if relu else x
    W = r.uniform(-1, 1, (N, K)).astype(f32) / f32(np.sqrt(K))
    G = (r.standard_normal((B, N)) * 1e-2).astype(f32)
    G[1, 0] = 0.3                                            # a heavy-tailed gradient entry
    return x, W, G


def run_linear(x, W, G, nm, seed):
    layer = Linear(W.shape[1], W.shape[0], bias=False, numerics=nm, rng=SRStream(seed))
    layer.params["weight"][...] = W
    y = layer.forward(x)
    return y, layer.backward(G), layer.grads["weight"]


def conv_data(B, C, N, size, k, stride, pad, seed):
    r = np.random.default_rng(seed)
    x = r.standard_normal((B, C, size, size)).astype(f32)
    x *= np.array([1.0, 0.25, 3.0, 0.6][:B], f32).reshape(B, 1, 1, 1)   # different max|x|
    Wt = r.uniform(-1, 1, (N, C, k, k)).astype(f32) / f32(np.sqrt(C * k * k))
    Ho = (size + 2 * pad - k) // stride + 1
    G = (r.standard_normal((B, N, Ho, Ho)) * 1e-2).astype(f32)
    return x, Wt, G


def run_conv(x, Wt, G, k, stride, pad, nm, seed):
    conv = Conv2d(Wt.shape[1], Wt.shape[0], k, stride, pad, bias=False, numerics=nm,
                  rng=SRStream(seed))
    conv.params["weight"][...] = Wt
    y = conv.forward(x)
    return y, conv.backward(G), conv.grads["weight"]


def bits_equal(a, b):
    return a.shape == b.shape and np.array_equal(np.asarray(a, f32).view(np.int32),
                                                 np.asarray(b, f32).view(np.int32))


LINEAR_SHAPES = [(100, 54, 54, True), (100, 54, 7, True), (37, 45, 24, False),
                 (128, 405, 405, True), (6, 70, 8, False)]


@pytest.mark.parametrize("B, K, N, relu", LINEAR_SHAPES)
def test_linear_is_bit_exact_to_the_published_chains(B, K, N, relu):
    x, W, G = linear_data(B, K, N, relu, seed=B + K + N)
    got = run_linear(x, W, G, PAPER, seed=3)
    want = linear_reference(x, W, G, seed=3)
    for name, g, w in zip(("y", "dx", "dW"), got, want):
        assert bits_equal(g, w), name


CONV_CASES = [(3, 2, 4, 6, 3, 1, 1), (4, 3, 8, 7, 3, 2, 1), (2, 3, 6, 5, 1, 2, 0)]


@pytest.mark.parametrize("B, C, N, size, k, stride, pad", CONV_CASES)
def test_conv_is_bit_exact_to_the_published_chains(B, C, N, size, k, stride, pad):
    x, Wt, G = conv_data(B, C, N, size, k, stride, pad, seed=B * 7 + size)
    if stride > k:                   # a pixel no window reads still sets the batch scale
        x[0, 0, 1, 1] = 50.0
    got = run_conv(x, Wt, G, k, stride, pad, PAPER, seed=4)
    want = conv_reference(x, Wt, G, k, stride, pad, seed=4)
    for name, g, w in zip(("y", "dx", "dW"), got, want):
        assert bits_equal(g, w), name


@pytest.mark.parametrize("swap", ["y", "dx", "dW"])
def test_a_swapped_factor_is_caught(swap):
    """The comparison can fail: the reference with two factors of one chain swapped differs."""
    x, W, G = linear_data(100, 54, 54, True, seed=1)
    got = run_linear(x, W, G, PAPER, seed=3)
    mutated = linear_reference(x, W, G, seed=3, swap=swap)
    which = ("y", "dx", "dW").index(swap)
    assert not bits_equal(got[which], mutated[which])
    xc, Wc, Gc = conv_data(3, 2, 4, 6, 3, 1, 1, seed=5)
    got = run_conv(xc, Wc, Gc, 3, 1, 1, PAPER, seed=4)
    assert not bits_equal(got[which], conv_reference(xc, Wc, Gc, 3, 1, 1, 4, swap)[which])


def test_intsim_order_and_per_image_scales_differ_from_the_published_code():
    """What the two new fields change: scale_product rounds differently, per_image scales
    move a conv's outputs whenever the images differ in max|x|."""
    x, W, G = linear_data(100, 54, 54, True, seed=1)
    want = linear_reference(x, W, G, seed=3)
    own = run_linear(x, W, G, PAPER.replace(rescale_order="scale_product"), seed=3)
    assert not all(bits_equal(g, w) for g, w in zip(own, want))
    xc, Wc, Gc = conv_data(3, 2, 4, 6, 3, 1, 1, seed=5)
    y_img = run_conv(xc, Wc, Gc, 3, 1, 1, PAPER.replace(act_scale="per_image"), 4)[0]
    y_ref = conv_reference(xc, Wc, Gc, 3, 1, 1, seed=4)[0]
    assert np.max(np.abs(y_img - y_ref)) > 1e-3 * np.max(np.abs(y_ref))


def test_plain_hdqt_paper_differs_only_by_its_straight_through_rule():
    """hdqt_paper keeps the method's mask (zero where the forward quantizer clamped)."""
    x, W, G = linear_data(37, 45, 24, False, seed=2)
    y, dx, dW = run_linear(x, W, G, preset("hdqt_paper"), seed=3)
    ry, rdx, rdW = linear_reference(x, W, G, seed=3)
    m = f32(np.abs(x).max()) * f32(0.975)
    assert bits_equal(y, ry)
    assert bits_equal(dx, np.where(np.abs(x) > m, f32(0), rdx))
    assert np.count_nonzero(np.abs(x) > m) > 0
