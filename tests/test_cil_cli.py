"""`intsim cil` / `intsim demo`: outputs, config resolution, reproducibility, resume after a
kill, bad input. Runs the subcommands through intsim.cli.main and, for the
kill test, as a subprocess `python -m intsim.cli`."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from intsim.experiments import cil_run as cil
from intsim.formats import run_folder
from intsim.cli import main

TINY = """\
dataset = "synthetic"
method = "{method}"
numerics = "{numerics}"
epochs = {epochs}
batch_size = 16
lr = 0.05
memory = 36
hidden = 24
[dataset_params]
n_classes = 6
n_subjects = 4
windows_per_cell = 10
"""


def tiny_config(tmp_path: Path, method="icarl", numerics="fp32", epochs=3, name="tiny.toml"):
    p = tmp_path / name
    p.write_text(TINY.format(method=method, numerics=numerics, epochs=epochs))
    return str(p)


def run_cli(*argv):
    return main(["cil", *map(str, argv), "--quiet"])


def test_run_writes_every_output(tmp_path):
    out = tmp_path / "run"
    assert run_cli("--config", tiny_config(tmp_path), "--out", out, "--seed", 3) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["settings"]["seed"] == 3 and cfg["settings"]["epochs"] == 3
    assert cfg["network"] == {"type": "fcnet", "in_dim": 54, "hidden": 24, "feature_dim": 24,
                              "n_hidden": 0, "note": cfg["network"]["note"]}
    seeds = cfg["seeds"]
    assert seeds["master"] == 3
    for name in ("class_order", "subject_split", "init", "sr", "exemplar", "shuffle/task0",
                 "shuffle/task2", "augment/task1"):
        assert isinstance(seeds[name], int), name
    assert set(cfg["versions"]) >= {"numpy", "numba", "intsim", "python"}
    assert cfg["versions"]["numpy"] == np.__version__
    assert cfg["scenario"]["n_tasks"] == 3 and len(cfg["scenario"]["class_order"]) == 6
    assert cfg["sr_streams"]["paths"] == ["task0", "task1", "task2"]

    m = json.loads((out / "metrics.json").read_text())
    for key in ("aia", "last", "forgetting", "bwt", "acc_matrix", "class_forgetting",
                "macro_f1", "nme_aia", "nme_last", "nme_acc_matrix"):
        assert key in m, key
    a = np.array(m["acc_matrix"], dtype=float)
    assert a.shape == (3, 3) and np.all((a[np.tril_indices(3)] >= 0) & (a[np.tril_indices(3)]
                                                                        <= 100))
    assert m["aia"] == pytest.approx(np.mean(m["accuracy_curve"]))
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == \
        ["task000.npz", "task001.npz", "task002.npz"]
    assert (out / "accuracy.png").stat().st_size > 10_000
    with h5py.File(out / "trace.h5", "r") as f:
        assert f.attrs["numerics"] == "fp32" and not f.attrs["quantized"]
        assert "no quantized matmuls" in f.attrs["note"]


def test_replay_has_no_nme_keys_and_lwf_runs(tmp_path):
    for method in ("replay", "lwf"):
        out = tmp_path / method
        assert run_cli("--config", tiny_config(tmp_path, method), "--out", out) == 0
        m = json.loads((out / "metrics.json").read_text())
        assert "nme_aia" not in m and m["classifiers"] == ["cnn"]


def test_same_seed_identical_metrics_different_seed_different_order(tmp_path):
    cfg = tiny_config(tmp_path, "bic")
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        assert run_cli("--config", cfg, "--out", tmp_path / name, "--seed", seed) == 0
    ma, mb = ((tmp_path / n / "metrics.json").read_bytes() for n in "ab")
    assert ma == mb
    order = {n: json.loads((tmp_path / n / "config.json").read_text())["scenario"]["class_order"]
             for n in "ac"}
    assert order["a"] != order["c"]


def test_toml_and_flags_precedence(tmp_path):
    cfg = cil.resolve_config({"epochs": 1, "out": str(tmp_path / "o")},
                             tiny_config(tmp_path, epochs=7))
    assert cfg["epochs"] == 1                      # the flag wins
    assert cfg["batch_size"] == 16                 # from the file
    assert cfg["milestones"] == [] and cfg["lr_gamma"] == 0.1   # data-set / built-in defaults
    d = cil.resolve_config({"dataset": "cifar100", "method": "der", "numerics": "fp32",
                            "out": "x"})
    assert (d["network"], d["epochs"], d["lr"], d["milestones"], d["memory"], d["init_cls"],
            d["increment"]) == ("resnet32", 170, 0.05, [60, 100, 140], 2000, 20, 20)
    h = cil.resolve_config({"dataset": "dsads", "method": "icarl", "numerics": "hdqt",
                            "out": "x"})
    assert (h["network"], h["epochs"], h["lr"], h["batch_size"], h["memory"], h["init_cls"],
            h["increment"], h["n_test_subjects"]) == ("fcnet", 100, 0.01, 128, 200, 2, 2, 1)


def _stderr_of(capsys, fn):
    code = fn()
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv, needle", [
    (["--dataset", "synthetic", "--method", "ewc", "--numerics", "fp32"], "invalid choice"),
])
def test_cli_rejects_unknown_names_with_exit_code_2(tmp_path, capsys, argv, needle):
    with pytest.raises(SystemExit) as e:
        main(["cil", *argv, "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    assert needle in capsys.readouterr().err


def test_cli_rejects_an_unknown_dataset_naming_both_forms(tmp_path, capsys):
    """--dataset takes a name or a data file: an unknown name is one error line, exit 2."""
    assert main(["cil", "--dataset", "mnist", "--method", "icarl", "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "'mnist'" in err and "synthetic" in err and ".csv" in err and err.count("\n") == 1


def test_cli_numerics_takes_a_preset_or_a_datapath_file(tmp_path, capsys):
    code = main(["cil", "--dataset", "synthetic", "--method", "icarl", "--numerics", "int3",
                 "--out", str(tmp_path / "o")])
    assert code == 2 and "int3" in capsys.readouterr().err
    from intsim import preset
    dp = tmp_path / "dp.toml"
    dp.write_text(preset("hdqt").replace(name="my_datapath").to_toml())
    out = tmp_path / "run"
    assert run_cli("--config", tiny_config(tmp_path, epochs=1), "--numerics", dp,
                   "--out", out) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert "my_datapath" in json.dumps(cfg["numerics_spec"])


def test_cli_bad_config_and_existing_output(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.toml"
    bad.write_text('dataset = "synthetic"\nmethod = "icarl"\nnumerics = "fp32"\nepoch = 3\n')
    code, err = _stderr_of(capsys, lambda: run_cli("--config", bad, "--out", tmp_path / "o"))
    assert code == 2 and "unknown setting" in err and "epoch" in err
    code, err = _stderr_of(capsys, lambda: run_cli("--dataset", "synthetic", "--out",
                                                   tmp_path / "o"))
    assert code == 2 and "missing setting 'method'" in err
    bad.write_text('dataset = "synthetic"\nmethod = "icarl"\nnumerics = "fp32"\n'
                   '[method_params]\nlamda = 3\n')
    code, err = _stderr_of(capsys, lambda: run_cli("--config", bad, "--out", tmp_path / "o"))
    assert code == 2 and "unknown method option" in err
    out = tmp_path / "run"
    assert run_cli("--config", tiny_config(tmp_path, epochs=1), "--out", out) == 0
    code, err = _stderr_of(capsys, lambda: run_cli("--config", tiny_config(tmp_path, epochs=1),
                                                   "--out", out))
    assert code == 2 and "--resume" in err
    code, err = _stderr_of(capsys, lambda: run_cli("--config", tiny_config(tmp_path, epochs=2),
                                                   "--out", out, "--resume"))
    assert code == 2 and "epochs" in err
    assert run_cli("--config", tiny_config(tmp_path, epochs=2), "--out", out,
                   "--overwrite") == 0


@pytest.mark.slow
def test_missing_data_dir_is_a_clean_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "INTSIM_DATA"}
    for extra in ([], ["--data-dir", str(tmp_path / "nowhere")]):
        res = subprocess.run([sys.executable, "-m", "intsim.cli", "cil", "--dataset",
                              "dsads", "--method", "icarl", "--numerics", "fp32", "--out",
                              str(tmp_path / "o"), *extra], capture_output=True, text=True,
                             env=env, timeout=120)
        assert res.returncode == 2, res.stderr
        assert "Traceback" not in res.stderr
        assert res.stderr.startswith("intsim cil: error: dsads:")
        assert "Daily and Sports Activities" in res.stderr     # the loader's instructions
    assert not (tmp_path / "o" / "config.json").exists()


def _checkpoint_arrays(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.slow
def test_resume_after_kill_gives_identical_metrics(tmp_path):
    # 150 epochs: tasks 1-2 take seconds, far longer than the 5 ms poll until the kill
    cfg = tiny_config(tmp_path, "der", epochs=150)
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    cmd = [sys.executable, "-m", "intsim.cli", "cil", "--config", cfg, "--quiet", "--seed", "2"]
    proc = subprocess.Popen(cmd + ["--out", str(killed)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    first = killed / "checkpoints" / "task000.npz"
    deadline = time.monotonic() + 120
    while not first.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    proc.stderr.close()
    assert not (killed / "metrics.json").exists(), "the run finished before it was killed"
    assert not (killed / "checkpoints" / "task002.npz").exists()

    subprocess.run(cmd + ["--out", str(ref)], check=True, timeout=300)
    res = subprocess.run(cmd + ["--out", str(killed), "--resume"], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (killed / "metrics.json").read_bytes() == (ref / "metrics.json").read_bytes()
    a = _checkpoint_arrays(ref / "checkpoints" / "task002.npz")
    b = _checkpoint_arrays(killed / "checkpoints" / "task002.npz")
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_resume_mid_task_quantized_restores_trace_and_sr_state(tmp_path, monkeypatch):
    """Interrupt inside task 1 after an epoch's trace was flushed; the resumed run must cut
    trace.h5 back and reproduce metrics, trace and SR stream state exactly."""
    cfg = cil.resolve_config({"seed": 4, "out": str(tmp_path / "ref")},
                             tiny_config(tmp_path, "icarl", "hdqt", epochs=3))
    cfg["trace_every"] = 2
    try:
        cil.run(cfg)
    except NotImplementedError:
        pytest.skip("quantized qlinear path not available")
    cfg2 = dict(cfg, out=str(tmp_path / "cut"))
    orig = cil._RunCallbacks.epoch_end

    def interrupting(self, learner, t, epoch, loss):
        orig(self, learner, t, epoch, loss)
        if t == 1 and epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(cil._RunCallbacks, "epoch_end", interrupting)
    with pytest.raises(KeyboardInterrupt):
        cil.run(cfg2)
    monkeypatch.setattr(cil._RunCallbacks, "epoch_end", orig)
    rows_at_kill = run_folder.trace_rows(Path(cfg2["out"]) / "trace.h5")
    cil.run(cfg2, resume=True)

    ref, cut = Path(cfg["out"]), Path(cfg2["out"])
    assert (cut / "metrics.json").read_bytes() == (ref / "metrics.json").read_bytes()
    rows = run_folder.trace_rows(ref / "trace.h5")
    assert rows == run_folder.trace_rows(cut / "trace.h5")
    assert rows["matmul"] > 0 and rows_at_kill["matmul"] > 0
    ck0 = json.loads(str(_checkpoint_arrays(cut / "checkpoints" / "task000.npz")["meta_json"]))
    assert rows_at_kill["matmul"] > ck0["trace_rows"]["matmul"]   # stray task-1 rows were cut
    from intsim.core.trace import read_hdf5
    for op in ("matmul", "quantize"):
        fa = read_hdf5(str(ref / "trace.h5"), op=op)
        fb = read_hdf5(str(cut / "trace.h5"), op=op)
        assert fa.drop(columns=["hist"], errors="ignore").equals(
            fb.drop(columns=["hist"], errors="ignore"))
        if "hist" in fa:
            assert np.array_equal(np.stack(fa["hist"]), np.stack(fb["hist"]))
    summary = json.loads((ref / "trace_summary.json").read_text())
    assert summary["quantized"] and summary["records"] == rows["matmul"]
    ma = json.loads(str(_checkpoint_arrays(ref / "checkpoints" / "task002.npz")["meta_json"]))
    mb = json.loads(str(_checkpoint_arrays(cut / "checkpoints" / "task002.npz")["meta_json"]))
    assert ma["learner"] == mb["learner"]               # step counter and SR stream state


def test_trace_rows_and_truncate(tmp_path):
    from intsim.core.trace import Trace
    path = tmp_path / "t.h5"
    tr = Trace()
    for i in range(5):
        tr.step = i
        tr.record_codes("l", np.arange(4), np.arange(4.0), -7, 7, 4, True, "nearest", 1.0)
    tr.to_hdf5(str(path), run_folder.TRACE_GROUP)
    assert run_folder.trace_rows(path) == {"quantize": 5}
    run_folder.truncate_trace(path, {"quantize": 2})
    assert run_folder.trace_rows(path) == {"quantize": 2}
    with h5py.File(path, "r") as f:
        assert list(f["trace/quantize/step"][()]) == [0, 1]


@pytest.mark.slow
def test_demo_quick(tmp_path, capsys):
    assert main(["demo", "--quick", "--quiet", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    for name in ("fp32", "int4", "hdqt"):
        assert name in out
        assert (tmp_path / "demo" / f"{name}-seed0" / "metrics.json").exists()
    assert "AIA" in out and "sat.events/op" in out
    assert (tmp_path / "demo" / "comparison.png").exists()
    rows = json.loads((tmp_path / "demo" / "summary.json").read_text())["rows"]
    assert [r["numerics"] for r in rows] == ["fp32", "int4", "hdqt"]
