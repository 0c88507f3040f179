"""Every numerics preset learns the real watch HAR data (seglearn recordings, offline)."""
import numpy as np
import pytest

from intsim import SRStream, Trace, preset
from intsim.datasets import load_dataset, minmax_preprocess
from intsim.losses import cross_entropy
from intsim.models import FCNet, IncrementalNet
from intsim.optim import SGD


def watch_split():
    ds = load_dataset("watch")
    test = np.isin(ds.subject, [9, 10])                  # two held-out subjects
    Xtr, Xte = minmax_preprocess()(ds.X[~test], ds.X[test])
    return Xtr, ds.y[~test], Xte, ds.y[test]


def train(numerics, Xtr, ytr, epochs=8, seed=0, trace=None):
    net = IncrementalNet(FCNet(Xtr.shape[1], 54, 54, seed=seed), int(ytr.max()) + 1, seed=seed)
    net.set_numerics(preset(numerics))
    net.set_rng(SRStream(seed))
    if trace is not None:
        net.set_trace(trace)
    opt = SGD(net, lr=0.05, momentum=0.9, weight_decay=2e-4)
    order = np.random.default_rng(seed)
    for epoch in range(epochs):
        perm = order.permutation(len(Xtr))
        for i in range(0, len(perm), 64):
            b = perm[i:i + 64]
            net.zero_grad()
            _, g = cross_entropy(net.forward(Xtr[b]), ytr[b])
            net.backward(g)
            opt.step()
            if trace is not None:
                trace.step += 1
    net.eval()
    return net


@pytest.fixture(scope="module")
def watch():
    pytest.importorskip("sklearn")
    return watch_split()


@pytest.mark.parametrize("numerics", ["fp32", "hdqt_paper", "hdqt"])
def test_fcnet_learns_watch(numerics, watch):
    Xtr, ytr, Xte, yte = watch
    net = train(numerics, Xtr, ytr)
    acc = np.mean(net.forward(Xte).argmax(1) == yte)
    assert acc > 0.6, f"{numerics}: test accuracy {acc:.3f} (chance 1/7)"


def test_training_is_reproducible_and_traced(watch):
    Xtr, ytr, _, _ = watch
    tr = Trace()
    a = train("hdqt", Xtr[:512], ytr[:512], epochs=1, trace=tr)
    b = train("hdqt", Xtr[:512], ytr[:512], epochs=1)
    c = train("hdqt", Xtr[:512], ytr[:512], epochs=1, seed=1)
    for (n, p, _), (_, q, _), (_, r, _) in zip(a.named_parameters(), b.named_parameters(),
                                               c.named_parameters()):
        assert np.array_equal(p, q), n
        assert not np.array_equal(p, r), n
    kinds = {lab.rsplit("/", 1)[-1] for lab in tr.summary()["label"]}
    assert kinds == {"fwd", "grad_in", "grad_w"}
    assert tr.to_frame("matmul")["step"].max() == 7      # 512 / 64 steps, stamped per step
