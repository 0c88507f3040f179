"""Every numerics preset learns the real watch HAR data (seglearn recordings, offline).

The training loop is scripts/preset_accuracy.py's, which reports the accuracy table."""
import numpy as np
import pytest

from intsim import Trace


def _script():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "scripts" / "preset_accuracy.py"
    spec = importlib.util.spec_from_file_location("preset_accuracy", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SCRIPT = _script()
watch_split, _train = SCRIPT.watch_split, SCRIPT.train


def train(numerics, Xtr, ytr, epochs=8, seed=0, trace=None):
    return _train(numerics, Xtr, ytr, epochs, seed, trace)


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
