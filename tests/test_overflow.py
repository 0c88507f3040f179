"""Overflow report: aggregation, the width that would have avoided every event, the bound."""
import dataclasses
import json

import h5py
import numpy as np
import pandas as pd
import pytest

from intsim import Accumulator, Trace, int_matmul, preset, quantize
from intsim.cli import main as hw_main
from intsim.core.numerics import dumps
from intsim.core.ranges import bit_width
from intsim.hw.overflow import format_table, load_run, report, summarize
from intsim.hw.overflow_train import trace_training_run


def _codes(rng, shape, lo=-7, hi=7):
    return rng.integers(lo, hi + 1, shape).astype(np.int8)


def _write_trace(path, calls, datapath=None, with_quant=True):
    """calls: [(step, label, a, b, acc)]; quantize records for the operands if asked."""
    tr = Trace()
    rng = np.random.default_rng(0)
    for step, label, a, b, acc in calls:
        tr.step = step
        int_matmul(a, b, acc, trace=tr, label=label)
        if with_quant:
            layer, kind = label.rsplit("/", 1)
            left, right = {"fwd": ("a", "w"), "grad_in": ("g", "w"), "grad_w": ("g", "a")}[kind]
            for letter in (left, right):
                x = rng.standard_normal(8).astype(np.float32)
                quantize(x, 4, signed=True, trace=tr, label=f"{layer}/{kind}/{letter}")
    tr.to_hdf5(str(path))
    if datapath is not None:
        with h5py.File(path, "a") as f:
            f.attrs["datapath"] = datapath


@pytest.fixture
def synthetic(tmp_path):
    rng = np.random.default_rng(3)
    sat = Accumulator(bits=8, tile=32, mode="saturate", tile_sum_bits=32)
    clamp = Accumulator(bits=8, tile=None, mode="clamp_tile")
    calls = []
    for step in range(4):
        calls.append((step, "fc1/fwd", _codes(rng, (6, 70)), _codes(rng, (70, 5)), sat))
        calls.append((step, "fc1/grad_in", _codes(rng, (6, 5)), _codes(rng, (5, 70)), clamp))
    path = tmp_path / "trace.h5"
    nm = preset("hdqt").replace(acc_in=clamp, hadamard=None)
    _write_trace(path, calls, dumps(nm))
    return path, calls


def test_summary_numbers_match_the_records(synthetic):
    path, calls = synthetic
    run = load_run(path)
    assert run.numerics_source == "trace.h5 datapath attribute"
    s = summarize(run).set_index("kind")
    fwd, gin = s.loc["fwd"], s.loc["grad_in"]
    mm = run.matmul
    f = mm[mm["label"] == "fc1/fwd"]
    assert fwd["calls"] == 4 and fwd["macs"] == 4 * 6 * 70 * 5
    assert fwd["events"] == f["events"].sum()
    assert fwd["event_rate"] == pytest.approx(f["events"].sum() / f["macs"].sum())
    assert fwd["max_abs_prefix"] == f["max_abs_prefix"].max()
    assert fwd["min_acc_bits"] == bit_width(fwd["max_abs_prefix"])
    # A2Q worst case from the datapath's operand widths: tile 32 · |a| ≤ 15 (auto sign) · 7
    assert (fwd["max_a"], fwd["max_b"], fwd["bound"]) == (15, 7, 32 * 15 * 7)
    assert fwd["bound_acc_bits"] == bit_width(32 * 15 * 7) == 13
    g = mm[mm["label"] == "fc1/grad_in"]
    assert gin["event_rate"] == pytest.approx(g["events"].sum() / g["tiles"].sum())  # per tile
    assert gin["min_acc_bits"] == bit_width(g["max_abs_partial"].max())             # clamp_tile
    assert gin["bound"] == 5 * 7 * 7 and gin["tile"] == 5


def test_min_acc_bits_is_the_narrowest_register_without_events(synthetic):
    """min_acc_bits − 1 bits overflow somewhere, min_acc_bits bits never do."""
    path, calls = synthetic
    s = summarize(load_run(path)).set_index("kind")
    for kind, label in (("fwd", "fc1/fwd"), ("grad_in", "fc1/grad_in")):
        need = int(s.loc[kind, "min_acc_bits"])
        for bits, want_events in ((need, False), (need - 1, True)):
            events = 0
            for _, lab, a, b, acc in calls:
                if lab == label:
                    tr = Trace()
                    int_matmul(a, b, dataclasses.replace(acc, bits=bits, tile_sum_bits=None),
                               trace=tr, label=lab)
                    events += tr.records[-1]["events"]
            assert (events > 0) == want_events, (kind, bits)


def test_operand_widths_from_quantize_records(tmp_path):
    rng = np.random.default_rng(1)
    acc = Accumulator(bits=8, tile=16, mode="wrap")
    p = tmp_path / "t.h5"
    _write_trace(p, [(0, "L/grad_w", _codes(rng, (3, 40)), _codes(rng, (40, 4)), acc)])
    s = summarize(load_run(p))
    assert s.loc[0, "operand_source"] == "quantize records"
    assert s.loc[0, "bound"] == 16 * 7 * 7
    p2 = tmp_path / "t2.h5"
    _write_trace(p2, [(0, "L/grad_w", _codes(rng, (3, 40)), _codes(rng, (40, 4)), acc)],
                 with_quant=False)
    assert np.isnan(summarize(load_run(p2)).loc[0, "bound"])


def test_report_files_and_side_by_side(synthetic, tmp_path):
    path, _ = synthetic
    out = tmp_path / "rep"
    s = report([path, path], str(out), names=["A", "B"])
    assert set(s["run"]) == {"A", "B"} and len(s) == 4
    for f in ("overflow_summary.csv", "overflow_steps.csv", "overflow_hist.csv", "overflow.png"):
        assert (out / f).stat().st_size > 0
    steps = pd.read_csv(out / "overflow_steps.csv")
    assert sorted(steps["step"].unique()) == [0, 1, 2, 3]
    hist = pd.read_csv(out / "overflow_hist.csv")
    run = load_run(path)
    fwd = run.matmul[run.matmul["label"] == "fc1/fwd"]
    assert hist[(hist.run == "A") & (hist.kind == "fwd")]["count"].sum() == fwd["tiles"].sum()
    assert "A2Q bound" in format_table(s)
    with pytest.raises(ValueError, match="names"):
        report([path], None, names=["a", "b"])
    with pytest.raises(FileNotFoundError):
        report([tmp_path / "nothing"])


def test_cil_style_run_folder(synthetic, tmp_path):
    """An `intsim cil` run folder: config.json with numerics_spec (asdict, nulls)."""
    path, _ = synthetic
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "trace.h5").write_bytes(path.read_bytes())
    spec = json.loads(json.dumps(dataclasses.asdict(preset("hdqt_paper"))))
    (run_dir / "config.json").write_text(json.dumps({"settings": {"numerics": "hdqt_paper"},
                                                     "numerics_spec": spec}))
    run = load_run(run_dir)
    assert run.name == "run" and run.numerics == preset("hdqt_paper")
    assert run.numerics_source == "config.json numerics_spec"


def _watch_available():
    try:
        from intsim.datasets.offline import watch_file
        watch_file()
        return True
    except Exception:
        return False


@pytest.mark.skipif(not _watch_available(), reason="seglearn watch data not installed")
def test_watch_runs_with_and_without_hadamard(tmp_path, capsys):
    """hdqt vs hdqt without the transform on the same data: the CLI trains, reports, plots."""
    rc = hw_main(["overflow-report", "--train", "hdqt", "hdqt:hadamard=none", "--max-steps",
                  "3", "--hidden", "32", "--batch", "64", "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "hdqt-had_none" in out and "A2Q bound" in out
    s = pd.read_csv(tmp_path / "overflow_summary.csv")
    assert set(s["run"]) == {"hdqt", "hdqt-had_none"}
    assert set(s["kind"]) == {"fwd", "grad_in", "grad_w"}
    assert len(s) == 2 * 3 * 3                                   # 3 layers x 3 kinds x 2 runs
    cfg = json.loads((tmp_path / "runs" / "hdqt" / "config.json").read_text())
    assert cfg["steps"] == 3 and "datapath" in cfg
    assert (tmp_path / "overflow.png").stat().st_size > 10_000
    # report again from the run folders alone (numerics from config.json)
    s2 = report([tmp_path / "runs" / "hdqt", tmp_path / "runs" / "hdqt-had_none"])
    assert (s2["operand_source"] == "datapath").all()


def test_trace_training_run_with_given_data(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (40, 12)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    cfg = trace_training_run("int4", str(tmp_path), epochs=2, seed=1, hidden=16, batch=16,
                             data=(X, y, X[:8], y[:8]))
    assert cfg["steps"] == 6 and 0 <= cfg["test_accuracy"] <= 1
    run = load_run(tmp_path)
    assert sorted(run.matmul["step"].unique()) == list(range(6))
    assert run.numerics == preset("int4")


def test_cli_errors(tmp_path, capsys):
    assert hw_main(["overflow-report"]) == 2
    assert hw_main(["overflow-report", str(tmp_path / "missing.h5")]) == 2
    assert "intsim overflow-report: error" in capsys.readouterr().err
