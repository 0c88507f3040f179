"""intsim.nn layers: forward against direct references, backward against finite differences
(float64), and the float32 / quantized-path dispatch."""
import numpy as np
import pytest

import intsim.core.linear_op as qlinear
from intsim.nn import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Flatten, GlobalAvgPool,
                       Linear, MaxPool2d, ReLU, Sequential, col2im, gradcheck, im2col)
from intsim.core.numerics import Numerics

TOL = 1e-6


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def assert_gradcheck(module, x):
    errs = gradcheck(module.to(np.float64), x)
    assert max(errs.values()) < TOL, errs


# ---- references ----------------------------------------------------------------------------
def conv_ref(x, w, b, stride, pad):
    B, C, H, W = x.shape
    N, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = (H + 2 * pad - k) // stride + 1, (W + 2 * pad - k) // stride + 1
    y = np.zeros((B, N, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            patch = xp[:, :, i * stride:i * stride + k, j * stride:j * stride + k]
            y[:, :, i, j] = np.einsum("bcij,ncij->bn", patch, w)
    return y + (0 if b is None else b[:, None, None])


def pool_ref(x, k, s, op, pad=0):
    B, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    Ho, Wo = (H + 2 * pad - k) // s + 1, (W + 2 * pad - k) // s + 1
    y = np.zeros((B, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            y[:, :, i, j] = op(xp[:, :, i * s:i * s + k, j * s:j * s + k], axis=(2, 3))
    return y


# ---- Linear --------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
def test_linear_forward_and_gradcheck(bias):
    m = Linear(5, 4, bias=bias, seed=3).to(np.float64)
    x = rand(3, 5)
    y = m.forward(x)
    ref = x @ m.params["weight"].T + (m.params["bias"] if bias else 0)
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    assert_gradcheck(m, x)


def test_linear_accepts_extra_leading_dims():
    assert_gradcheck(Linear(4, 3, seed=1), rand(2, 3, 4))


def test_kaiming_init_statistics_and_seeding():
    w = Linear(400, 300, seed=7).params["weight"]
    assert w.dtype == np.float32
    assert abs(w.std() - np.sqrt(2 / 400)) < 0.02 * np.sqrt(2 / 400)
    assert abs(w.mean()) < 1e-3
    np.testing.assert_array_equal(w, Linear(400, 300, seed=7).params["weight"])
    assert not np.array_equal(w, Linear(400, 300, seed=8).params["weight"])
    c = Conv2d(16, 32, 3, seed=1).params["weight"]
    assert c.shape == (32, 16, 3, 3)
    assert abs(c.std() - np.sqrt(2 / 144)) < 0.05 * np.sqrt(2 / 144)


# ---- Conv2d --------------------------------------------------------------------------------
CONV_CASES = [  # (Cin, Cout, k, stride, pad, H, W, bias)
    (3, 4, 3, 1, 1, 6, 6, True),
    (2, 3, 3, 2, 1, 7, 6, False),
    (2, 3, 3, 2, 0, 8, 7, True),
    (3, 2, 1, 2, 0, 5, 5, False),
    (1, 2, 2, 1, 0, 4, 5, True),
    (2, 2, 5, 3, 2, 9, 8, False),
]


@pytest.mark.parametrize("cin,cout,k,s,p,H,W,bias", CONV_CASES)
def test_conv_forward_matches_direct_convolution(cin, cout, k, s, p, H, W, bias):
    m = Conv2d(cin, cout, k, s, p, bias=bias, seed=5).to(np.float64)
    if bias:
        m.params["bias"][:] = rand(cout, seed=9)
    x = rand(2, cin, H, W, seed=1)
    ref = conv_ref(x, m.params["weight"], m.params["bias"] if bias else None, s, p)
    np.testing.assert_allclose(m.forward(x), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cin,cout,k,s,p,H,W,bias", CONV_CASES)
def test_conv_gradcheck(cin, cout, k, s, p, H, W, bias):
    assert_gradcheck(Conv2d(cin, cout, k, s, p, bias=bias, seed=5), rand(2, cin, H, W, seed=2))


@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (3, 2, 1), (2, 2, 0), (5, 3, 2)])
def test_col2im_is_adjoint_of_im2col(k, s, p):
    x = rand(2, 3, 7, 8, seed=3)
    cols = im2col(x, k, s, p)
    c = rand(*cols.shape, seed=4)
    lhs = np.sum(cols * c)
    rhs = np.sum(x * col2im(c, x.shape, k, s, p))
    assert abs(lhs - rhs) < 1e-9 * max(1, abs(lhs))


def test_im2col_layout_is_positions_by_cin_k_k():
    x = np.arange(2 * 2 * 4 * 4, dtype=np.float64).reshape(2, 2, 4, 4)
    cols = im2col(x, 3, 1, 0)
    assert cols.shape == (2, 4, 2 * 9)
    # image 1, output position (ho=1, wo=0) -> l = 2; column (c=1, i=2, j=1)
    assert cols[1, 2, 1 * 9 + 2 * 3 + 1] == x[1, 1, 1 + 2, 0 + 1]


# ---- activations, pooling, reshaping -------------------------------------------------------
def test_relu():
    x = rand(3, 4)
    np.testing.assert_array_equal(ReLU().forward(x), np.maximum(x, 0))
    assert_gradcheck(ReLU(), x)


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 0), (2, 1, 1)])
def test_maxpool(k, s, p):
    x = rand(2, 3, 7, 6, seed=4)
    np.testing.assert_array_equal(MaxPool2d(k, s, p).forward(x), pool_ref(x, k, s, np.max, p))
    assert_gradcheck(MaxPool2d(k, s, p), x)


def test_maxpool_tie_goes_to_first_element():
    m = MaxPool2d(2)
    m.forward(np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(m.backward(np.ones((1, 1, 1, 1)))[0, 0], [[1, 0], [0, 0]])


@pytest.mark.parametrize("k,s", [(2, 2), (3, 2), (3, 1), (4, 4)])
def test_avgpool(k, s):
    x = rand(2, 3, 8, 7, seed=5)
    np.testing.assert_allclose(AvgPool2d(k, s).forward(x), pool_ref(x, k, s, np.mean),
                               rtol=1e-12)
    assert_gradcheck(AvgPool2d(k, s), x)


def test_global_avg_pool_and_flatten():
    x = rand(2, 3, 4, 5)
    np.testing.assert_allclose(GlobalAvgPool().forward(x), x.mean(axis=(2, 3)))
    assert_gradcheck(GlobalAvgPool(), x)
    f = Flatten()
    np.testing.assert_array_equal(f.forward(x), x.reshape(2, 60))
    assert_gradcheck(Flatten(), x)


# ---- BatchNorm -----------------------------------------------------------------------------
def test_batchnorm2d_train_forward_and_running_stats():
    m = BatchNorm2d(3).to(np.float64)
    m.params["weight"][:] = [1.0, 2.0, 0.5]
    m.params["bias"][:] = [0.0, -1.0, 3.0]
    x = rand(4, 3, 2, 5) * 3 + 1
    y = m.forward(x)
    mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    ref = (x - mu[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    ref = ref * m.params["weight"][:, None, None] + m.params["bias"][:, None, None]
    np.testing.assert_allclose(y, ref, rtol=1e-10)
    n = 4 * 2 * 5
    np.testing.assert_allclose(m.buffers["running_mean"], 0.1 * mu)
    np.testing.assert_allclose(m.buffers["running_var"], 0.9 + 0.1 * var * n / (n - 1))


def test_batchnorm_eval_uses_running_stats():
    m = BatchNorm1d(3).to(np.float64)
    m.buffers["running_mean"][:] = [1.0, 2.0, 3.0]
    m.buffers["running_var"][:] = [4.0, 1.0, 0.25]
    m.eval()
    x = rand(5, 3)
    ref = (x - [1.0, 2.0, 3.0]) / np.sqrt(np.array([4.0, 1.0, 0.25]) + 1e-5)
    np.testing.assert_allclose(m.forward(x), ref, rtol=1e-10)
    before = m.buffers["running_mean"].copy()
    m.forward(x)
    np.testing.assert_array_equal(m.buffers["running_mean"], before)


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_gradcheck(train):
    for m, x in [(BatchNorm1d(4), rand(6, 4)), (BatchNorm2d(3), rand(3, 3, 2, 3))]:
        m.to(np.float64)
        m.params["weight"][:] = 1 + rand(m.num_features, seed=7)
        m.params["bias"][:] = rand(m.num_features, seed=8)
        m.train(train)
        assert_gradcheck(m, x * 2 + 0.5)


def test_batchnorm_rejects_single_value_per_channel_in_training():
    with pytest.raises(ValueError):
        BatchNorm1d(3).forward(np.ones((1, 3), np.float32))


def test_sequential_gradcheck():
    net = Sequential(Conv2d(2, 3, 3, 1, 1, seed=1), BatchNorm2d(3), ReLU(), MaxPool2d(2),
                     Flatten(), Linear(12, 4, seed=2))
    assert_gradcheck(net, rand(3, 2, 4, 4))


# ---- dtype and dispatch --------------------------------------------------------------------
def test_float32_throughout():
    net = Sequential(Conv2d(1, 2, 3, 1, 1, seed=1), BatchNorm2d(2), ReLU(), AvgPool2d(2),
                     Flatten(), Linear(8, 3, seed=2))
    y = net.forward(rand(2, 1, 4, 4))  # float64 input is cast by the first layer
    assert y.dtype == np.float32
    dx = net.backward(np.ones_like(y))
    assert dx.dtype == np.float32
    assert all(p.dtype == np.float32 and g.dtype == np.float32
               for _, p, g in net.named_parameters())


class Recorder:
    """A float64-exact stand-in for the quantized linear_forward/backward that records calls."""

    def __init__(self):
        self.calls = []

    def forward(self, x, W, numerics=None, rng=None, trace=None, label=""):
        self.calls.append(dict(x_shape=x.shape, W_shape=W.shape, numerics=numerics, rng=rng,
                               trace=trace, label=label))
        return np.matmul(x, W.T), (x, W)

    def backward(self, g, ctx):
        x, W = ctx
        return np.matmul(g, W), np.einsum("grn,grk->nk", g, x)


def test_non_float_numerics_dispatch_to_qlinear(monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(qlinear, "linear_forward", rec.forward)
    monkeypatch.setattr(qlinear, "linear_backward", rec.backward)
    quant = Numerics(hadamard="pad", name="fake-quant")
    stream, trace = object(), object()
    net = Sequential(("conv", Conv2d(2, 3, 3, 2, 1, seed=1, numerics=quant, rng=stream)),
                     ("flat", Flatten()),
                     ("fc", Linear(3 * 3 * 3, 4, seed=2, numerics=quant, rng=stream)))
    net.set_trace(trace)
    ref = Sequential(Conv2d(2, 3, 3, 2, 1, seed=1), Flatten(), Linear(27, 4, seed=2))
    x = rand(5, 2, 6, 5).astype(np.float32)
    y = net.forward(x)
    np.testing.assert_allclose(y, ref.forward(x), rtol=1e-5, atol=1e-6)
    conv_call, fc_call = rec.calls
    assert conv_call["x_shape"] == (5, 9, 18) and conv_call["W_shape"] == (3, 18)
    assert fc_call["x_shape"] == (1, 5, 27) and fc_call["W_shape"] == (4, 27)
    assert [c["label"] for c in rec.calls] == ["conv", "fc"]
    assert all(c["rng"] is stream and c["trace"] is trace and c["numerics"] is quant
               for c in rec.calls)
    g = rand(*y.shape, seed=3).astype(np.float32)
    np.testing.assert_allclose(net.backward(g), ref.backward(g), rtol=1e-4, atol=1e-5)
    for (n1, _, g1), (_, _, g2) in zip(net.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-5, err_msg=n1)


# ---- ResNet basic block --------------------------------------------------------------------
@pytest.mark.parametrize("cin,cout,stride,shortcut", [(3, 3, 1, "A"), (2, 4, 2, "A"),
                                                      (2, 4, 2, "B"), (3, 5, 1, "A")])
def test_basic_block_gradcheck(cin, cout, stride, shortcut):
    from intsim.nn import BasicBlock
    assert_gradcheck(BasicBlock(cin, cout, stride, shortcut, seed=3), rand(2, cin, 6, 5, seed=6))


def test_shortcut_a_subsamples_and_zero_pads():
    from intsim.nn import ShortcutA
    x = rand(2, 3, 5, 5)
    y = ShortcutA(3, 6, 2).forward(x)
    assert y.shape == (2, 6, 3, 3)
    np.testing.assert_array_equal(y[:, :3], x[:, :, ::2, ::2])
    assert not y[:, 3:].any()


def test_transposed_im2col_matches_im2col():
    from intsim.nn.conv import col2im_t, im2col_t
    x = rand(3, 2, 7, 6, seed=8)
    for k, s, p in [(3, 1, 1), (3, 2, 1), (2, 2, 0)]:
        cols = im2col(x, k, s, p)
        B, L, K = cols.shape
        np.testing.assert_array_equal(im2col_t(x, k, s, p), cols.transpose(2, 0, 1).reshape(K, -1))
        c = rand(B, L, K, seed=9)
        np.testing.assert_allclose(col2im_t(c.transpose(2, 0, 1).reshape(K, -1), x.shape, k, s, p),
                                   col2im(c, x.shape, k, s, p), rtol=1e-12)
