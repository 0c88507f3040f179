"""The notebook level: intsim.fit / intsim.evaluate, self-stamping traces, renamed numerics, and
the notebook example running end to end."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import intsim
from intsim import Accumulator, Trace, preset
from intsim.models import FCNet, IncrementalNet

ROOT = Path(__file__).resolve().parents[1]


def _data(n=96, d=12, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    X = (rng.standard_normal((n, d)) + y[:, None]).astype(np.float32)
    return X, y


def _model(numerics="hdqt", seed=0):
    nm = preset(numerics)
    return IncrementalNet(FCNet(12, 16, 16, numerics=nm, seed=seed), 3, numerics=nm, seed=seed + 1)


def test_fit_is_deterministic_and_records_each_epoch():
    X, y = _data()
    runs = []
    for _ in range(2):
        m = _model()
        h = intsim.fit(m, X, y, epochs=3, batch_size=32, lr=0.05, seed=4, validation=(X, y))
        runs.append((h, m.state_dict()))
    (h1, s1), (h2, s2) = runs
    assert [r["loss"] for r in h1] == [r["loss"] for r in h2]
    assert all(np.array_equal(s1[k], s2[k]) for k in s1)
    frame = h1.to_frame()
    assert list(frame["epoch"]) == [0, 1, 2] and list(frame["steps"]) == [3, 6, 9]
    assert {"loss", "train_accuracy", "lr", "seconds", "val_accuracy", "val_loss"} <= set(frame)
    assert frame["loss"].iloc[-1] < frame["loss"].iloc[0]
    ev = intsim.evaluate(m, X, y, batch_size=32)
    assert ev["accuracy"] == frame["val_accuracy"].iloc[-1]


def test_fit_stamps_the_trace_and_skips_evaluation():
    X, y = _data()
    tr = Trace()
    h = intsim.fit(_model(), X, y, epochs=2, batch_size=32, trace=tr, trace_every=2,
                   validation=(X, y))
    steps = sorted(set(tr.to_frame("matmul")["step"]))
    assert steps == [0, 2, 4]                      # every 2nd of 6 steps; no evaluation rows
    assert sum(r["events"] for r in h) == int(tr.to_frame("matmul")["events"].sum())


def test_trace_eval_passes_off_skips_eval_mode_layers():
    X, _ = _data(16)
    for eval_passes, expected in ((True, 3), (False, 0)):
        m = _model()
        tr = Trace(eval_passes=eval_passes)
        m.set_trace(tr).eval()
        m.forward(X)
        assert len(tr.to_frame("matmul")) == expected
    tr = Trace()
    assert tr.advance() == 1 and tr.advance(10) == 10 and tr.step == 10


def test_replace_names_what_changed_and_names_do_not_decide_equality():
    hw = preset("hdqt").replace(acc_fwd=Accumulator(12, 32, "saturate", tile_sum_bits=32))
    assert hw.name == "hdqt+acc_fwd"
    assert preset("hdqt").replace(hadamard=None).name == "hdqt+hadamard"
    assert preset("hdqt").replace(name="x") == preset("hdqt")
    assert preset("hdqt").replace(hadamard="pad").name == "hdqt"        # nothing changed


def test_fit_rejects_nonsense():
    X, y = _data()
    with pytest.raises(ValueError, match="batch_size"):
        intsim.fit(_model(), X, y, batch_size=0)


def test_notebook_example_runs():
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "notebook_quickstart.py"),
                          "--epochs", "1"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "saturation events per layer" in res.stdout and "test accuracy: fp32" in res.stdout
