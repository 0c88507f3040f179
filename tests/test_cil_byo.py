"""Your own data through `intsim cil` (flag, config file, sweep grid), its identity checked on
resume, multi-seed runs, the per-epoch history (trimmed on resume), the generated flags and
the progress-bar switch. Tiny runs through intsim.cli.main (a few seconds each)."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intsim.cli import main
from intsim.cli import build_parser
from intsim.cli import progress as cli_progress
from intsim.datasets import minmax_preprocess
from intsim.experiments import read_history
from intsim.experiments.config import SETTINGS, ConfigError, resolve_config
from intsim.experiments.outputs import RUN_FILES
from intsim.experiments.sweep.grid import Grid, GridError
from intsim.formats.jsonl import append_row, read_rows, rewrite_rows

TINY = ["--method", "icarl", "--epochs", "2", "--hidden", "8", "--batch-size", "32",
        "--memory", "24", "--numerics", "int4", "--quiet"]


def har_table(path: Path, n: int = 240, seed: int = 0) -> Path:
    """A made-up HAR table: 6 activities, 8 features, 5 subjects."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, n)
    df = pd.DataFrame(rng.normal(size=(n, 8)) + 0.8 * y[:, None],
                      columns=[f"f{i}" for i in range(8)])
    df["label"] = [["walk", "sit", "stand", "run", "stairs", "lie"][k] for k in y]
    df["subject"] = rng.integers(1, 6, n)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path


def test_cil_on_a_csv_records_identity_and_history(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    har_table(tmp_path / "har.csv")
    assert main(["cil", "--dataset", "har.csv", *TINY, "--out", "r"]) == 0
    doc = json.loads((tmp_path / "r" / "config.json").read_text())
    assert doc["settings"]["dataset"] == str((tmp_path / "har.csv").resolve())
    (f,) = doc["dataset_identity"]["files"]
    assert f["path"] == str((tmp_path / "har.csv").resolve()) and len(f["sha256"]) == 64
    df = read_history(tmp_path / "r")
    assert list(df.task) == [0, 0, 1, 1, 2, 2] and list(df.epoch) == [0, 1] * 3
    assert set(df.stage) == {"train"} and (df.lr == 0.01).all()
    assert df.train_accuracy.between(0, 100).all() and (df.seconds >= 0).all()
    assert df.loss_kd.isna().tolist() == [True, True, False, False, False, False]
    later = df[df.task > 0]                     # iCaRL's total is CE + KD
    assert np.allclose(later.loss, later.loss_ce + later.loss_kd, rtol=1e-5)
    assert (tmp_path / "r" / "loss.png").stat().st_size > 0
    assert {"history.jsonl", "loss.png"} <= set(RUN_FILES)


def test_resume_refuses_a_changed_data_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    p = har_table(tmp_path / "har.csv")
    assert main(["cil", "--dataset", "har.csv", *TINY, "--out", "r"]) == 0
    assert main(["cil", "--dataset", "har.csv", *TINY, "--out", "r", "--resume"]) == 0
    p.write_text(p.read_text().replace("walk", "jog"))
    capsys.readouterr()
    assert main(["cil", "--dataset", "har.csv", *TINY, "--out", "r", "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume" in err and str(p.resolve()) in err
    assert "changed" in err


def test_history_is_trimmed_on_resume(tmp_path, monkeypatch):
    """A run killed in task 2 (its rows half written, the last line cut) and resumed has the
    rows of an uninterrupted run, once each."""
    monkeypatch.chdir(tmp_path)
    har_table(tmp_path / "har.csv")
    assert main(["cil", "--dataset", "har.csv", *TINY, "--out", "r"]) == 0
    run = tmp_path / "r"
    full = read_rows(run / "history.jsonl")
    (run / "metrics.json").unlink()
    (run / "checkpoints" / "task002.npz").unlink()
    with open(run / "history.jsonl", "a") as f:
        f.write('{"task": 2, "stage": "train", "epo')          # a killed append
    assert main(["cil", "--dataset", "har.csv", *TINY, "--out", "r", "--resume"]) == 0
    again = read_rows(run / "history.jsonl")

    def strip(rows):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert strip(again) == strip(full)
    assert (run / "history.jsonl").read_text().endswith("}\n")


def test_config_file_and_grid_take_paths_relative_to_themselves(tmp_path, monkeypatch):
    data = har_table(tmp_path / "exp" / "data" / "har.csv")
    cfg_file = tmp_path / "exp" / "c.toml"
    cfg_file.write_text('dataset = "data/har.csv"\nmethod = "icarl"\n')
    monkeypatch.chdir(tmp_path)                # not the config file's folder
    cfg = resolve_config({"out": "o"}, cfg_file)
    assert cfg["dataset"] == str(data.resolve()) and cfg["numerics"] == "hdqt"
    assert resolve_config({"dataset": "exp/data/har.csv", "method": "icarl",
                           "out": "o"})["dataset"] == str(data.resolve())
    with pytest.raises(ConfigError, match="a data file"):
        resolve_config({"dataset": "har.txt", "method": "icarl", "out": "o"})
    grid = Grid.from_dict({"datasets": ["data/har.csv", "synthetic"], "methods": ["icarl"],
                           "numerics": ["fp32"]}, base_dir=tmp_path / "exp")
    cells = grid.cells(tmp_path / "sweep")
    assert [c.fields["dataset"] for c in cells] == ["har", "synthetic"]
    assert cells[0].cfg["dataset"] == str(data.resolve()) and "har__icarl" in cells[0].id
    with pytest.raises(GridError, match="share a name"):
        Grid.from_dict({"datasets": ["a/har.csv", "b/har.csv"], "methods": ["icarl"],
                        "numerics": ["fp32"]}, base_dir=tmp_path)


def test_seeds_write_one_folder_each_and_a_summary(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    har_table(tmp_path / "har.csv")
    args = ["cil", "--dataset", "har.csv", *TINY, "--out", "s"]
    assert main([*args, "--seeds", "3,5"]) == 0
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    (row,) = summary["rows"]
    assert summary["seeds"] == [3, 5] and len(row["aia"]) == 2
    for s, aia in zip((3, 5), row["aia"]):
        m = json.loads((tmp_path / "s" / f"seed{s}" / "metrics.json").read_text())
        assert m["aia"] == aia
    assert (tmp_path / "s" / "comparison.png").is_file()
    capsys.readouterr()
    assert main([*args, "--seeds", "3,5"]) == 2          # holds runs: --resume / --overwrite
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--seeds", "3,5", "--resume"]) == 0
    again = json.loads((tmp_path / "s" / "summary.json").read_text())["rows"][0]
    assert again["aia"] == row["aia"]
    assert build_parser().parse_args(["cil", "--seeds", "4"]).seeds == 4
    with pytest.raises(SystemExit):
        build_parser().parse_args(["cil", "--seeds", "1,1"])


def test_image_npz_trains_a_cnn_with_per_channel_scaling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(4), 20)
    X = rng.integers(0, 256, size=(80, 2, 6, 6)).astype(np.uint8)
    np.savez(tmp_path / "img.npz", X=X, y=y, split=np.where(np.arange(80) % 5 == 0,
                                                           "test", "train"))
    assert main(["cil", "--dataset", "img.npz", "--network", "smallcnn", "--method", "replay",
                 "--epochs", "1", "--batch-size", "16", "--memory", "8", "--numerics",
                 "fp32", "--quiet", "--out", "r"]) == 0
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["n_tasks"] == 2


def test_minmax_per_channel_of_images_equals_the_per_column_oracle():
    rng = np.random.default_rng(2)
    Xtr, Xte = rng.normal(size=(5, 3, 4, 4)) * [[[1]], [[10]], [[100]]], rng.normal(
        size=(2, 3, 4, 4))
    a, b = minmax_preprocess()(Xtr, Xte)
    for c in range(3):                               # channel c alone, as one column
        lo, hi = Xtr[:, c].min(), Xtr[:, c].max()
        assert np.allclose(a[:, c], (-1 + 2 * (Xtr[:, c] - lo) / (hi - lo)), atol=1e-6)
        assert np.allclose(b[:, c], (-1 + 2 * (Xte[:, c] - lo) / (hi - lo)), atol=1e-6)
    assert a.shape == Xtr.shape and a.dtype == np.float32
    assert a.min() == -1 and a.max() == 1


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None,
                    reason="pyarrow is installed")
def test_parquet_without_pyarrow_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "t.parquet").write_bytes(b"PAR1 not really")
    assert main(["cil", "--dataset", str(tmp_path / "t.parquet"), "--method", "icarl",
                 "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pyarrow" in err and "pip install pyarrow" in err


def test_every_scalar_setting_has_a_flag():
    cil = build_parser()._subparsers._group_actions[0].choices["cil"]
    dests = {a.dest for a in cil._actions}
    tables = {k for k, (_, rule) in SETTINGS.items() if rule.kind in ("table", "overrides")}
    assert tables == {"dataset_params", "method_params", "numerics_overrides"}
    assert set(SETTINGS) - tables <= dests
    ns = build_parser().parse_args(["cil", "--milestones", "30,10", "--no-augment",
                                    "--network", "smallcnn", "--momentum", "0.5"])
    assert (ns.milestones, ns.augment, ns.network, ns.momentum) == ([30, 10], False,
                                                                     "smallcnn", 0.5)


def test_bars_only_on_terminals(monkeypatch):
    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

        def write(self, s):
            return len(s)

        def flush(self):
            pass
    monkeypatch.setattr(sys, "stdout", Stream(False))
    monkeypatch.setattr(sys, "stderr", Stream(True))
    assert not cli_progress.bars_wanted()             # `intsim demo > log`
    assert cli_progress._bar(3, 0, "x", quiet=False).disable
    monkeypatch.setattr(sys, "stdout", Stream(True))
    assert cli_progress.bars_wanted()
    assert cli_progress._bar(3, 0, "x", quiet=True).disable


def test_jsonl_append_read_rewrite(tmp_path):
    p = tmp_path / "h.jsonl"
    assert read_rows(p) == []
    append_row(p, {"a": 1, "b": float("nan")})
    append_row(p, {"a": 2})
    assert read_rows(p) == [{"a": 1, "b": None}, {"a": 2}]
    with open(p, "a") as f:
        f.write('{"a": 3')                       # incomplete last line: ignored
    assert [r["a"] for r in read_rows(p)] == [1, 2]
    rewrite_rows(p, [{"a": 9}])
    assert p.read_text() == '{"a":9}\n'
    p.write_text('{"a": 1}\nnot json\n')
    with pytest.raises(ValueError, match="line 2"):
        read_rows(p)
