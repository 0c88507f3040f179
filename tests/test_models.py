"""Networks: structure, gradchecks, growing heads, copies, checkpoints, and a digits run."""
import numpy as np
import pytest

from intsim.nn.losses import cross_entropy
from intsim.models import (CifarResNet, FCNet, IncrementalHead, IncrementalNet, SmallCNN,
                           resnet32)
from intsim.nn import Linear, ReLU, gradcheck
from intsim.nn.optim import SGD


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_fcnet_structure():
    net = FCNet(405, 405, 405)
    kinds = [(n, type(m).__name__) for n, m in net.named_children()]
    assert kinds == [("fc1", "Linear"), ("relu1", "ReLU"), ("fc2", "Linear"), ("relu2", "ReLU")]
    for fc in (net.fc1, net.fc2):
        assert fc.params["weight"].shape == (405, 405) and "bias" not in fc.params
    assert net.feature_dim == 405
    deeper = FCNet(10, 8, 6, n_hidden=2)
    shapes = [m.params["weight"].shape for m in deeper if isinstance(m, Linear)]
    assert shapes == [(8, 10), (8, 8), (8, 8), (6, 8)]
    assert isinstance(deeper[-1], ReLU)
    assert not np.array_equal(net.fc1.params["weight"], net.fc2.params["weight"])
    np.testing.assert_array_equal(FCNet(405, 405, 405, seed=3).fc2.params["weight"],
                                  FCNet(405, 405, 405, seed=3).fc2.params["weight"])


def test_resnet32_structure():
    net = resnet32(seed=0)
    assert net.num_parameters() == 463504          # the usual 0.46M of CIFAR ResNet-32
    assert net.feature_dim == 64
    assert net.stage1[0].conv1.label == "stage1.0.conv1"
    assert len(net.stage3) == 5
    net.eval()
    y = net.forward(rand(2, 3, 32, 32).astype(np.float32))
    assert y.shape == (2, 64) and y.dtype == np.float32
    assert (y >= 0).all()


def test_small_resnet_gradcheck():
    net = CifarResNet(depth=8, widths=(2, 3, 4), seed=1)   # identity and option-A shortcuts
    errs = gradcheck(net.to(np.float64), rand(2, 3, 8, 8), max_checks=12)
    assert max(errs.values()) < 1e-6, errs


@pytest.mark.parametrize("size", [28, 8])
def test_small_cnn_shapes(size):
    net = SmallCNN(1, channels=(4, 6), seed=0)
    assert net.forward(rand(2, 1, size, size)).shape == (2, 6)
    assert net.feature_dim == 6


def test_small_cnn_gradcheck():
    errs = gradcheck(SmallCNN(1, channels=(2, 3), seed=2).to(np.float64), rand(3, 1, 8, 8),
                     max_checks=12)
    assert max(errs.values()) < 1e-6, errs


def test_head_grow_keeps_old_rows():
    head = IncrementalHead(5, 2, seed=1)
    head.params["bias"][:] = [0.5, -0.5]
    w_old = head.params["weight"].copy()
    head.grow(3, seed=7)
    assert head.n_classes == 5 and head.params["weight"].shape == (5, 5)
    np.testing.assert_array_equal(head.params["weight"][:2], w_old)
    np.testing.assert_array_equal(head.params["bias"], [0.5, -0.5, 0, 0, 0])
    assert head.grads["weight"].shape == (5, 5) and not head.grads["weight"].any()
    other = IncrementalHead(5, 2, seed=1)
    other.grow(3, seed=7)
    np.testing.assert_array_equal(other.params["weight"][2:], head.params["weight"][2:])
    assert head.forward(rand(4, 5)).shape == (4, 5)


def test_incremental_net_forward_backward_with_feature_grad():
    net = IncrementalNet(FCNet(6, 5, 4, seed=1), 0, seed=2).to(np.float64)
    net.grow(2)
    net.grow(1)
    assert net.n_classes == 3 and net.head.label == "head"
    assert net.backbone.fc1.label == "backbone.fc1"
    x = rand(3, 6)
    R1, R2 = rand(3, 3, seed=1), rand(3, 4, seed=2)

    def loss(x_):
        logits = net.forward(x_)
        return np.sum(logits * R1) + np.sum(net.last_features * R2)

    logits = net.forward(x)
    np.testing.assert_array_equal(net.features(x), net.last_features)
    net.zero_grad()
    net.forward(x)
    dx = net.backward(R1, grad_features=R2)
    eps = 1e-6
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        num[i] = (loss(xp) - loss(xm)) / (2 * eps)
    np.testing.assert_allclose(dx, num, atol=1e-7)
    assert logits.shape == (3, 3)


def test_network_copy_and_checkpoint():
    net = IncrementalNet(SmallCNN(1, channels=(3, 4), seed=1), 3, seed=2)
    x = rand(4, 1, 8, 8).astype(np.float32)
    net.forward(x)                                 # move BN running stats
    teacher = net.copy().eval()
    net.eval()
    np.testing.assert_array_equal(teacher.forward(x), net.forward(x))
    sd = net.state_dict()
    assert "backbone.bn1.running_var" in sd and sd["head.weight"].shape == (3, 4)
    fresh = IncrementalNet(SmallCNN(1, channels=(3, 4), seed=9), 3, seed=9).eval()
    fresh.load_state_dict(sd)
    np.testing.assert_array_equal(fresh.forward(x), net.forward(x))
    net.train()
    net.backward(np.ones((4, 3), np.float32) + 0 * net.forward(x))
    SGD(net, lr=0.1).step()
    assert not np.array_equal(teacher.head.params["weight"], net.head.params["weight"])


def test_fcnet_learns_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    net = IncrementalNet(FCNet(64, 64, 64, seed=0), 10, seed=1)
    opt = SGD(net, lr=0.05, momentum=0.9)
    order = np.random.default_rng(0)
    for _ in range(5):
        perm = order.permutation(len(Xtr))
        for i in range(0, len(perm), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            _, g = cross_entropy(net.forward(Xtr[b]), ytr[b])
            net.backward(g)
            opt.step()
    acc = np.mean(net.forward(Xte).argmax(1) == yte)
    assert acc > 0.85, acc


def test_default_grow_seed_depends_on_state_not_history():
    a = IncrementalNet(FCNet(6, 5, 4, seed=1), 0, seed=2)
    a.grow(2)
    a.grow(3)
    b = IncrementalNet(FCNet(6, 5, 4, seed=7), 2, seed=2)   # "resumed" after the first task
    b.load_state_dict({k: v for k, v in a.state_dict().items() if not k.startswith("head")},
                      strict=False)
    b.head.params["weight"][:] = a.head.params["weight"][:2]
    b.grow(3)
    np.testing.assert_array_equal(b.head.params["weight"], a.head.params["weight"])
