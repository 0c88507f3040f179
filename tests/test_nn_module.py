"""Module plumbing: names/labels, recursive setters, modes, freezing, dtype, copy, checkpoints."""
import numpy as np
import pytest

from intsim.nn import BatchNorm2d, Conv2d, Linear, Module, ReLU, Sequential
from intsim.core.numerics import Numerics
from intsim.core.presets import preset


class Net(Module):
    def __init__(self, seed=0):
        super().__init__(seed=seed)
        self.body = Sequential(("conv", Conv2d(1, 2, 3, 1, 1, seed=seed)), ("bn", BatchNorm2d(2)),
                               ("relu", ReLU()))
        self.fc = Linear(2 * 4 * 4, 3, seed=seed + 1)

    def forward(self, x):
        h = self.body.forward(x)
        self._cache = {"shape": h.shape}
        return self.fc.forward(h.reshape(h.shape[0], -1))

    def backward(self, g):
        return self.body.backward(self.fc.backward(g).reshape(self._cache["shape"]))


def x_in(seed=0):
    return np.random.default_rng(seed).standard_normal((4, 1, 4, 4)).astype(np.float32)


def test_qualified_names_and_labels():
    net = Net()
    names = [n for n, _, _ in net.named_parameters()]
    assert names == ["body.conv.weight", "body.conv.bias", "body.bn.weight", "body.bn.bias",
                     "fc.weight", "fc.bias"]
    assert net.body.conv.label == "body.conv" and net.fc.label == "fc"
    outer = Sequential(("stage1", net))              # re-parenting relabels the subtree
    assert net.body.conv.label == "stage1.body.conv"
    assert outer[0] is net and outer["stage1"] is net
    assert [n for n, _ in net.named_buffers()] == ["body.bn.running_mean", "body.bn.running_var"]
    assert net.num_parameters() == 2 * 9 + 2 + 2 + 2 + 32 * 3 + 3


def test_recursive_setters_and_modes():
    net = Net()
    trace, stream, num = object(), object(), Numerics(name="x")
    net.set_trace(trace).set_rng(stream).set_numerics(num)
    assert all(m.trace is trace and m.rng is stream and m.numerics is num for m in net.modules())
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    assert Linear(2, 2).numerics == preset("fp32")


def test_grads_accumulate_until_zero_grad():
    net = Net()
    x = x_in()
    net.backward(np.ones_like(net.forward(x)))
    g1 = net.fc.grads["weight"].copy()
    net.backward(np.ones_like(net.forward(x)))
    np.testing.assert_allclose(net.fc.grads["weight"], 2 * g1, rtol=1e-6)
    net.zero_grad()
    assert all(not g.any() for _, _, g in net.named_parameters())


def test_frozen_module_passes_gradient_but_accumulates_none():
    net = Net()
    ref = Net()
    net.body.freeze()
    x = x_in()
    dx = net.backward(np.ones((4, 3), np.float32) + 0 * net.forward(x))
    dx_ref = ref.backward(np.ones((4, 3), np.float32) + 0 * ref.forward(x))
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-6)
    assert not net.body.conv.grads["weight"].any()
    assert net.fc.grads["weight"].any()
    trainable = [n for n, _, _ in net.named_parameters(trainable_only=True)]
    assert trainable == ["fc.weight", "fc.bias"]
    net.unfreeze()
    assert len(list(net.named_parameters(trainable_only=True))) == 6


def test_to_float64_and_back():
    net = Net().to(np.float64)
    assert all(p.dtype == np.float64 and g.dtype == np.float64
               for _, p, g in net.named_parameters())
    assert net.body.bn.buffers["running_var"].dtype == np.float64
    assert net.forward(x_in()).dtype == np.float64
    net.to(np.float32)
    assert net.forward(x_in()).dtype == np.float32


def test_copy_is_independent_and_shares_numerics_and_rng():
    stream = object()
    net = Net().set_rng(stream).set_trace("T")
    net.forward(x_in())
    teacher = net.copy()
    assert teacher.fc.rng is stream and teacher.fc.numerics is net.fc.numerics
    assert teacher.fc.trace is None and net.fc.trace == "T"
    assert teacher.fc._cache == {} and net.fc._cache != {}
    assert teacher.body.conv.label == "body.conv"
    np.testing.assert_array_equal(teacher.forward(x_in(1)), net.forward(x_in(1)))
    teacher.fc.params["weight"] += 1
    assert not np.array_equal(teacher.fc.params["weight"], net.fc.params["weight"])


def test_state_dict_roundtrip_including_running_stats():
    net = Net(seed=1)
    for s in range(3):
        net.forward(x_in(s) * 2 + 1)
    sd = net.state_dict()
    assert set(sd) == {"body.conv.weight", "body.conv.bias", "body.bn.weight", "body.bn.bias",
                       "body.bn.running_mean", "body.bn.running_var", "fc.weight", "fc.bias"}
    assert all(v.dtype == np.float32 for v in sd.values())
    other = Net(seed=2)
    fc_weight = other.fc.params["weight"]
    other.load_state_dict(sd)
    assert other.fc.params["weight"] is fc_weight              # loaded in place
    net.eval(), other.eval()
    np.testing.assert_array_equal(other.forward(x_in(5)), net.forward(x_in(5)))
    sd["fc.weight"] += 1                                        # state_dict holds copies
    assert not np.array_equal(sd["fc.weight"], net.fc.params["weight"])


def test_load_state_dict_errors():
    net = Net()
    sd = net.state_dict()
    with pytest.raises(KeyError):
        net.load_state_dict({k: v for k, v in sd.items() if k != "fc.bias"})
    net.load_state_dict({"fc.bias": sd["fc.bias"]}, strict=False)
    sd["fc.weight"] = np.zeros((4, 32), np.float32)
    with pytest.raises(ValueError):
        net.load_state_dict(sd)
