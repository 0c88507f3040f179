"""SGD (PyTorch semantics), freezing, LR schedules, resumable state."""
import numpy as np
import pytest

from intsim.nn import Linear, Sequential
from intsim.nn.optim import SGD, ConstantLR, MultiStepLR, StepLR


def reference_sgd(w, grads, lr, mu, wd, damp=0.0, nesterov=False):
    """Direct transcription of torch.optim.SGD's update rule."""
    w = w.copy()
    buf = None
    for g in grads:
        d = g + wd * w
        if mu:
            buf = d.copy() if buf is None else mu * buf + (1 - damp) * d
            d = d + mu * buf if nesterov else buf
        w = w - lr * d
    return w


@pytest.mark.parametrize("mu,wd,damp,nesterov", [(0.0, 0.0, 0.0, False), (0.9, 2e-4, 0.0, False),
                                                 (0.9, 0.01, 0.1, False), (0.8, 0.01, 0.0, True)])
def test_sgd_matches_reference(mu, wd, damp, nesterov):
    m = Linear(3, 2, seed=1).to(np.float64)
    w0 = m.params["weight"].copy()
    grads = [np.random.default_rng(i).standard_normal((2, 3)) for i in range(4)]
    opt = SGD(m, lr=0.1, momentum=mu, weight_decay=wd, dampening=damp, nesterov=nesterov)
    for g in grads:
        opt.zero_grad()
        m.grads["weight"] += g
        opt.step()
    np.testing.assert_allclose(m.params["weight"],
                               reference_sgd(w0, grads, 0.1, mu, wd, damp, nesterov), rtol=1e-12)


def test_sgd_updates_in_place_and_skips_frozen():
    net = Sequential(Linear(3, 3, seed=1), Linear(3, 2, seed=2))
    w0 = net[0].params["weight"]
    frozen_before = w0.copy()
    net[0].freeze()
    for _, _, g in net.named_parameters():
        g += 1
    opt = SGD(net, lr=0.1, momentum=0.9, weight_decay=0.1)
    opt.step()
    np.testing.assert_array_equal(w0, frozen_before)
    assert net[0].params["weight"] is w0
    assert set(opt.state) == {"1.weight", "1.bias"}
    net[0].unfreeze()
    opt.step()
    assert not np.array_equal(w0, frozen_before)


def test_several_modules_and_shared_arrays_visited_once():
    a, b = Linear(2, 2, seed=1), Linear(2, 2, seed=2)
    b.params["weight"] = a.params["weight"]
    b.grads["weight"] = a.grads["weight"]
    a.grads["weight"] += 1
    w0 = a.params["weight"].copy()
    opt = SGD([a, b], lr=1.0)
    assert [k for k, _, _ in opt.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    opt.step()
    np.testing.assert_allclose(a.params["weight"], w0 - 1)


def test_grown_parameter_raises():
    m = Linear(2, 2, seed=1)
    opt = SGD(m, lr=0.1, momentum=0.9)
    opt.step()
    m._add_param("weight", np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="changed shape"):
        opt.step()


def test_schedules():
    opt = SGD(Linear(1, 1), lr=0.05)
    sched = MultiStepLR(opt, milestones=[60, 100, 140], gamma=0.1)
    lrs = [opt.lr]
    for _ in range(170):
        sched.step()
        lrs.append(opt.lr)
    assert lrs[59] == 0.05 and lrs[60] == pytest.approx(0.005) and lrs[99] == pytest.approx(0.005)
    assert lrs[100] == pytest.approx(5e-4) and lrs[140] == pytest.approx(5e-5)
    opt2 = SGD(Linear(1, 1), lr=1.0)
    s2 = StepLR(opt2, step_size=3, gamma=0.5)
    assert [s2.step() for _ in range(6)] == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    opt3 = SGD(Linear(1, 1), lr=0.01)
    s3 = ConstantLR(opt3)
    assert [s3.step() for _ in range(3)] == [0.01] * 3


def test_resume_from_state_dicts_is_identical():
    def run(n_steps, resume_at=None):
        m = Linear(3, 2, seed=4)
        opt = SGD(m, lr=0.1, momentum=0.9, weight_decay=1e-3)
        sched = MultiStepLR(opt, [2], 0.1)
        for t in range(n_steps):
            if t == resume_at:
                sd, osd, ssd = m.state_dict(), opt.state_dict(), sched.state_dict()
                m = Linear(3, 2, seed=99)
                m.load_state_dict(sd)
                opt = SGD(m, lr=123.0, momentum=0.9, weight_decay=1e-3)
                opt.load_state_dict(osd)
                sched = MultiStepLR(opt, [2], 0.1)
                sched.load_state_dict(ssd)
            opt.zero_grad()
            m.grads["weight"] += np.random.default_rng(t).standard_normal((2, 3)).astype(np.float32)
            opt.step()
            sched.step()
        return m.params["weight"]

    np.testing.assert_array_equal(run(5), run(5, resume_at=3))
