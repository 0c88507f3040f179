"""Losses: values against direct formulas, gradients against finite differences, stability."""
import numpy as np
import pytest

from intsim.nn.losses import bce_with_logits, cross_entropy, kd_loss, log_softmax, softmax


def fd_grad(f, z, eps=1e-6):
    g = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        old = z[i]
        z[i] = old + eps
        lp = f(z)
        z[i] = old - eps
        lm = f(z)
        z[i] = old
        g[i] = (lp - lm) / (2 * eps)
    return g


Z = np.random.default_rng(0).standard_normal((5, 4)) * 2
Y = np.array([0, 3, 1, 1, 2])


def test_cross_entropy_value_and_grad():
    loss, g = cross_entropy(Z, Y)
    p = np.exp(Z) / np.exp(Z).sum(1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(5), Y])), rel=1e-12)
    np.testing.assert_allclose(g, fd_grad(lambda z: cross_entropy(z, Y)[0], Z.copy()),
                               atol=1e-8)


def test_cross_entropy_stable_and_keeps_float32():
    z = np.array([[1e4, -1e4, 0.0], [-3e4, 3e4, 0.0]], np.float32)
    loss, g = cross_entropy(z, np.array([1, 1]))
    assert np.isfinite(loss) and loss == pytest.approx(1e4, rel=1e-6)
    assert g.dtype == np.float32 and np.isfinite(g).all()
    with pytest.raises(ValueError):
        cross_entropy(z, np.array([0, 3]))
    with pytest.raises(ValueError):
        cross_entropy(z, np.array([0.0, 1.0]))


def test_softmax_helpers():
    np.testing.assert_allclose(softmax(Z).sum(1), 1)
    np.testing.assert_allclose(np.exp(log_softmax(Z)), softmax(Z), rtol=1e-12)


@pytest.mark.parametrize("T", [1.0, 2.0, 5.0])
def test_kd_value_and_grad(T):
    old = np.random.default_rng(1).standard_normal((5, 4)) * 3
    loss, g = kd_loss(Z, old, T)
    p = softmax(old / T)
    assert loss == pytest.approx(-np.sum(p * log_softmax(Z / T)) / 5, rel=1e-12)
    np.testing.assert_allclose(g, fd_grad(lambda z: kd_loss(z, old, T)[0], Z.copy()), atol=1e-8)


def test_kd_minimum_at_teacher():
    loss, g = kd_loss(Z, Z, 2.0)
    p = softmax(Z / 2)
    assert loss == pytest.approx(-np.sum(p * np.log(p)) / 5)     # entropy of the teacher
    np.testing.assert_allclose(g, 0, atol=1e-15)


@pytest.mark.parametrize("reduction,denom", [("batch", 5), ("mean", 20), ("sum", 1)])
def test_bce_value_and_grad(reduction, denom):
    t = np.random.default_rng(2).uniform(size=(5, 4))
    loss, g = bce_with_logits(Z, t, reduction)
    s = 1 / (1 + np.exp(-Z))
    ref = -np.sum(t * np.log(s) + (1 - t) * np.log(1 - s)) / denom
    assert loss == pytest.approx(ref, rel=1e-12)
    np.testing.assert_allclose(
        g, fd_grad(lambda z: bce_with_logits(z, t, reduction)[0], Z.copy()), atol=1e-8)


def test_bce_stable_for_large_logits():
    z = np.array([[800.0, -800.0]], np.float32)
    loss, g = bce_with_logits(z, np.array([[0.0, 1.0]]))
    assert loss == pytest.approx(1600.0) and np.isfinite(g).all()
    np.testing.assert_allclose(g, [[1.0, -1.0]])
