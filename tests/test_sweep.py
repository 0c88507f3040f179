"""`intsim sweep` (intsim.experiments.sweep): grid parsing and expansion, cells on a Dask LocalCluster,
restart after killing the sweep and after killing a worker mid-cell, aggregation, CSV/parquet
results, the CLI and scripts/reproduce_paper.py --sweep. Tiny synthetic data, 1–40 epochs."""
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

from intsim.experiments import sweep  # noqa: E402
from intsim.experiments.config import resolve_config  # noqa: E402
from intsim.formats.run_folder import jsonable as _jsonable  # noqa: E402
from intsim.cli import main  # noqa: E402
from intsim.models.metrics import aggregate_seeds  # noqa: E402
from intsim.core.presets import preset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

TINY = """\
name = "tiny"
datasets = ["synthetic"]
methods = ["icarl"]
numerics = {numerics}
seeds = {seeds}

[settings]
epochs = {epochs}
batch_size = 16
lr = 0.05
memory = 36
hidden = 24
trace_every = 5

[settings.dataset_params]
n_classes = 6
n_subjects = 4
windows_per_cell = 10
{extra}
"""


def write_grid(folder: Path, numerics='["fp32", "hdqt"]', seeds="[0, 1]", epochs=1, extra="",
               name="grid.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text(TINY.format(numerics=numerics, seeds=seeds, epochs=epochs, extra=extra))
    return p


# ------------------------------------------------------------------------------ the grid
def test_grid_expansion_fields_folders_and_knobs(tmp_path):
    g = sweep.Grid.load(write_grid(tmp_path, numerics='["fp32", "hdqt", "luq"]', seeds=3,
                                   extra="[overrides]\nacc_bits = [4, 12]\ntile = [8, \"none\"]\n"
                                         "momentum = [0.9, 0.5]\n"))
    assert g.seeds == [0, 1, 2] and g.field_names == ["dataset", "method", "numerics",
                                                     "acc_bits", "tile", "momentum", "seed"]
    cells = g.cells(tmp_path / "out")
    # fp32 is not multiplied by the numerics knobs: 2 momentum x 3 seeds; quantized: 2*2*2*3 each
    assert len(cells) == 6 + 2 * 24
    assert len({c.dir for c in cells}) == len(cells)
    fp = [c for c in cells if c.fields["numerics"] == "fp32"]
    assert len(fp) == 6 and all(c.fields["acc_bits"] is None and c.cfg["numerics_overrides"]
                                == {} for c in fp)
    c = next(c for c in cells if c.fields == {"dataset": "synthetic", "method": "icarl",
                                              "numerics": "hdqt", "acc_bits": 12, "tile": 8,
                                              "momentum": 0.5, "seed": 2})
    assert Path(c.dir).name == "synthetic__icarl__hdqt__acc_bits=12__tile=8__momentum=0.5__seed2"
    assert c.group == Path(c.dir).name.rsplit("__", 1)[0]
    assert Path(c.dir).parent == (tmp_path / "out" / "runs").resolve()
    assert c.cfg["momentum"] == 0.5 and c.cfg["seed"] == 2 and c.cfg["epochs"] == 1
    ov = c.cfg["numerics_overrides"]
    assert ov["name"] == "hdqt+acc_bits=12+tile=8"
    for acc in ("acc_fwd", "acc_in", "acc_w"):
        assert ov[acc] == {"bits": 12, "tile": 8}
    # luq: its forward accumulator is untiled and the backward ones exact; "none" = one tile
    c = next(c for c in cells if c.fields["numerics"] == "luq" and c.fields["tile"] == "none")
    from intsim.experiments.builders import build_numerics
    n = build_numerics(c.cfg)
    assert n.acc_fwd.tile is None and n.acc_fwd.mode == "clamp_tile"
    assert n.acc_fwd.bits == n.acc_in.bits == c.fields["acc_bits"]


def test_operand_bits_set_all_six_quantizers_and_acc_bits_all_three():
    base = preset("hdqt")
    ov = sweep.knob_overrides(base, {"operand_bits": 6, "acc_bits": 16}, "hdqt")
    from intsim.core.resolve import apply_overrides as apply_numerics_overrides
    n = apply_numerics_overrides(base, ov)
    assert [getattr(n, op).bits for op in ("w_fwd", "a_fwd", "w_bwd", "a_bwd", "g_in", "g_w")] \
        == [6] * 6
    assert [getattr(n, a).bits for a in ("acc_fwd", "acc_in", "acc_w")] == [16] * 3
    # everything else is the preset's
    from dataclasses import replace
    assert n.replace(name="hdqt") == base.replace(
        **{op: replace(getattr(base, op), bits=6)
           for op in ("w_fwd", "a_fwd", "w_bwd", "a_bwd", "g_in", "g_w")},
        **{a: replace(getattr(base, a), bits=16) for a in ("acc_fwd", "acc_in", "acc_w")})
    assert n.name == "hdqt+operand_bits=6+acc_bits=16"
    assert sweep.knob_overrides(base, {}) == {}


@pytest.mark.parametrize("text, key", [
    ('datasets = ["synthetic"]\nmethods = ["icarl"]\nnumerics = ["fp32"]\nseedz = 3\n',
     "'seedz'"),
    ('datasets = ["synthetic"]\nmethods = ["icarl"]\nnumerics = ["fp32"]\n'
     '[overrides]\nacc_bitz = [4]\n', "'acc_bitz'"),
    ('datasets = ["synthetic"]\nmethods = ["icarl"]\nnumerics = ["fp32"]\n[settings]\nseed = 3\n',
     "'seed'"),
    ('datasets = ["synthetic"]\nmethods = ["icarl"]\nnumerics = ["fp32"]\n[settings]\nepoch = 3\n',
     "'epoch'"),
    ('datasets = ["synthetic"]\nmethods = ["icarl"]\nnumerics = ["fp33"]\n', "'fp33'"),
    ('datasets = ["synthetic"]\nmethods = ["icarl"]\nnumerics = ["nowhere.toml"]\n',
     "nowhere.toml"),
    ('datasets = ["synthetic"]\nmethods = ["icarl"]\nnumerics = ["fp32"]\nseeds = [0, 0]\n',
     "seeds"),
    ('datasets = ["synthetic"]\nmethods = ["icarl"]\nnumerics = ["fp32"]\n'
     '[settings]\nlr = 0.1\n[overrides]\nlr = [0.1, 0.2]\n', "'lr'"),
    ('datasets = ["synthetic"]\nmethods = ["icarl"]\nnumerics = ["fp32"]\n[overrides]\n'
     'acc_bits = ["8"]\n', "acc_bits"),
    ('datasets = ["synthetic"]\nmethods = ["icarl"]\nnumerics = ["fp32"]\n[settings]\n'
     'epochs = -1\n', "epochs"),
])
def test_bad_grid_is_an_error_naming_the_key(tmp_path, capsys, text, key):
    g = tmp_path / "bad.toml"
    g.write_text(text)
    with pytest.raises(sweep.GridError, match=key):
        sweep.Grid.load(g).cells(tmp_path / "out")
    assert main(["sweep", "--grid", str(g), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("intsim sweep: error:") and key in err
    assert not (tmp_path / "out" / "runs").exists()


def test_datapath_toml_entry_records_the_concrete_numerics(tmp_path):
    from intsim.core.accumulator import Accumulator
    dp = preset("hdqt").replace(acc_fwd=Accumulator(10, 16, "saturate", tile_sum_bits=32),
                                name="mydp")
    (tmp_path / "dp").mkdir()
    (tmp_path / "dp" / "mydp.toml").write_text(dp.to_toml())
    g = write_grid(tmp_path, numerics='["dp/mydp.toml"]', seeds="[0]",
                   extra="[overrides]\nacc_bits = [12]\n")
    res = sweep.run_sweep(g, tmp_path / "out", workers=0, quiet=True, plots=False)
    assert res.n_failed == 0
    row = res.results.iloc[0]
    assert row["numerics"] == "mydp" and row["acc_bits"] == 12
    doc = json.loads((Path(row["dir"]) / "config.json").read_text())
    want = dp.replace(acc_fwd=dp.acc_fwd.__class__(12, 16, "saturate", tile_sum_bits=32),
                      acc_in=dp.acc_in.__class__(12, 32, "saturate", tile_sum_bits=32),
                      acc_w=dp.acc_w.__class__(12, 32, "saturate", tile_sum_bits=32),
                      name="mydp+acc_bits=12")
    assert doc["numerics_spec"] == _jsonable(want)
    assert doc["settings"]["numerics"] == str((tmp_path / "dp" / "mydp.toml").resolve())
    assert row["numerics_name"] == "mydp+acc_bits=12"


def test_numerics_overrides_in_a_cil_config_and_resume_refuses_other_numerics(tmp_path):
    from intsim.experiments.cil_run import ConfigError, CILRun, run
    base = dict(dataset="synthetic", method="finetune", numerics="hdqt", epochs=1,
                batch_size=16, memory=36, hidden=24, out=str(tmp_path / "r"),
                dataset_params=dict(n_classes=4, n_subjects=4, windows_per_cell=6))
    cfg = resolve_config({**base, "numerics_overrides": {"acc_fwd": {"bits": 12},
                                                          "hadamard": "none"}})
    run(cfg)
    spec = json.loads((tmp_path / "r" / "config.json").read_text())["numerics_spec"]
    assert spec["acc_fwd"]["bits"] == 12 and spec["acc_in"]["bits"] == 8
    assert spec["hadamard"] is None and spec["name"] == "hdqt*"
    other = resolve_config({**base, "numerics_overrides": {"acc_fwd": {"bits": 16}}})
    with pytest.raises(ConfigError, match="numerics_overrides"):
        CILRun.prepare(other, resume=True)
    with pytest.raises(ConfigError, match=r"numerics_overrides\.acc_fwd: unknown field"):
        CILRun.prepare(resolve_config({**base, "numerics_overrides": {"acc_fwd": {"bitz": 1}}}),
                       overwrite=True)


# ------------------------------------------------------------------------------ on Dask
@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    """2 presets x 2 seeds, 1 epoch, on a LocalCluster of 2 workers, plus a hdqt variant whose
    17-bit operands are invalid (its cells must fail without stopping the sweep)."""
    root = tmp_path_factory.mktemp("sweep")
    g = write_grid(root, extra="[overrides]\noperand_bits = [4, 17]\n")
    keys = (*sweep.THREAD_ENV_VARS, "MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED")
    env = {k: os.environ.get(k) for k in keys}
    res = sweep.run_sweep(g, root / "out", workers=2, quiet=True)
    # the nanny sets its pre-spawn variables in this process; they are put back
    assert {k: os.environ.get(k) for k in keys} == env
    return root, g, res


@pytest.mark.slow
def test_tiny_grid_on_two_workers(tiny_sweep):
    root, g, res = tiny_sweep
    out = root / "out"
    df = res.results
    assert len(df) == 6 and res.n_run == 6 and res.n_skipped == 0
    ok = df[df["status"] == "ok"]
    assert sorted(ok["cell"]) == sorted([
        "synthetic__icarl__fp32__seed0", "synthetic__icarl__fp32__seed1",
        "synthetic__icarl__hdqt__operand_bits=4__seed0",
        "synthetic__icarl__hdqt__operand_bits=4__seed1"])
    assert ok["worker"].nunique() == 2, "both workers ran cells"
    for _, r in ok.iterrows():
        d = Path(r["dir"])
        for f in ("config.json", "metrics.json", "trace.h5", "trace_summary.json", "status.json",
                  "checkpoints/task002.npz"):
            assert (d / f).exists(), (r["cell"], f)
        assert 0 <= r["aia"] <= 100 and r["seconds"] > 0
    assert ok[ok["numerics"] == "hdqt"]["event_rate"].notna().all()
    assert ok[ok["numerics"] == "fp32"]["event_rate"].isna().all()
    assert ok[ok["numerics"] == "fp32"]["operand_bits"].isna().all()
    # failing cells are recorded with their error and a traceback file
    bad = df[df["status"] == "error"]
    assert len(bad) == 2 and res.n_failed == 2
    for _, r in bad.iterrows():
        assert "operand_bits" in r["cell"] and "bits" in r["error"]
        assert "Traceback" in (Path(r["dir"]) / "error.txt").read_text()
    # tables and plots
    assert res.results_path.name in ("results.parquet", "results.csv")
    pd.testing.assert_frame_equal(sweep.read_results(out), df)
    assert (out / "summary.csv").exists() and (out / "grid.toml").read_text() == g.read_text()
    assert {p.name for p in res.plots} == {"acc_vs_operand_bits.png", "per_task.png",
                                           "acc_vs_energy.png"}
    # energies from each cell's cost.json; fp32 is its own reference
    for _, r in ok.iterrows():
        doc = json.loads((Path(r["dir"]) / "cost.json").read_text())
        for key in ("energy_pj_step", "energy_pj_run", "energy_rel_fp32"):
            assert r[key] == doc[key], (r["cell"], key)
    assert (ok[ok["numerics"] == "fp32"]["energy_rel_fp32"] == 1.0).all()
    assert (ok[ok["numerics"] == "hdqt"]["energy_rel_fp32"] < 1.0).all()
    assert df[df["status"] == "error"]["energy_pj_run"].isna().all()
    assert all(p.stat().st_size > 10_000 for p in res.plots)
    cells = json.loads((out / "cells.json").read_text())["cells"]
    assert len(cells) == 6


@pytest.mark.slow
def test_summary_equals_one_computed_from_the_metrics_files(tiny_sweep):
    root, _, res = tiny_sweep
    summary = pd.read_csv(root / "out" / "summary.csv")
    assert list(summary["group"]) == ["synthetic__icarl__fp32",
                                      "synthetic__icarl__hdqt__operand_bits=4",
                                      "synthetic__icarl__hdqt__operand_bits=17"]
    runs = root / "out" / "runs"
    for _, s in summary.iterrows():
        folders = sorted(runs.glob(f"{s['group']}__seed*"))
        assert len(folders) == 2
        metrics = [json.loads((f / "metrics.json").read_text()) for f in folders
                   if (f / "metrics.json").exists()]
        traces = [json.loads((f / "trace_summary.json").read_text()) for f in folders
                  if (f / "metrics.json").exists()]
        assert s["n_seeds"] == len(metrics) and s["n_failed"] == 2 - len(metrics)
        for key in ("aia", "last", "forgetting", "nme_aia", "nme_last", "event_rate"):
            src = traces if key == "event_rate" else metrics
            vals = [np.nan if m.get(key) is None else m[key] for m in src]
            if not vals or all(np.isnan(vals)):
                assert np.isnan(s[f"{key}_mean"]), (s["group"], key)
                continue
            agg = aggregate_seeds(vals)
            assert s[f"{key}_mean"] == pytest.approx(agg.mean, rel=1e-12, abs=1e-12)
            assert s[f"{key}_std"] == pytest.approx(agg.std, rel=1e-12, abs=1e-12)
        if metrics:
            curve = np.mean([m["accuracy_curve"] for m in metrics], axis=0)
            assert json.loads(s["accuracy_curve_mean_json"]) == pytest.approx(curve.tolist())
    # the same summary from the results table read back from disk
    again = sweep.summarize(sweep.read_results(root / "out"))
    pd.testing.assert_frame_equal(again, res.summary)
    assert "fp32" in sweep.format_summary(res.summary)


@pytest.mark.slow
def test_a_cell_run_on_a_worker_equals_one_run_in_process(tiny_sweep, tmp_path):
    root, _, res = tiny_sweep
    cell = next(c for c in res.cells if c.id == "synthetic__icarl__hdqt__operand_bits=4__seed1")
    cfg = resolve_config({**cell.cfg, "out": str(tmp_path / "here")})
    from intsim.experiments.cil_run import run
    run(cfg)
    assert (tmp_path / "here" / "metrics.json").read_bytes() == \
        (Path(cell.dir) / "metrics.json").read_bytes()


@pytest.mark.slow
def test_rerun_skips_complete_cells_and_retries_failed_ones(tiny_sweep):
    root, g, _ = tiny_sweep
    out = root / "out"
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/metrics.json")}
    res = sweep.run_sweep(g, out, workers=0, quiet=True, plots=False)
    assert res.n_skipped == 4 and res.n_run == 2 and res.n_failed == 2
    assert res.results[res.results["status"] == "ok"]["reused"].all()
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


@pytest.mark.slow
def test_changed_settings_are_not_overwritten(tiny_sweep, tmp_path):
    root, _, res = tiny_sweep
    cell = res.cells[0].to_dict()
    before = {p.name: p.stat().st_mtime_ns for p in Path(cell["dir"]).iterdir()}
    cell["cfg"] = {**cell["cfg"], "epochs": 2}
    assert sweep.cell_state(cell) == "changed"
    row = sweep.run_cell(cell)
    assert row["status"] == "error" and "epochs" in row["error"]
    assert {p.name: p.stat().st_mtime_ns for p in Path(cell["dir"]).iterdir()} == before


@pytest.mark.slow
def test_results_csv_fallback_and_parquet(tiny_sweep, tmp_path, monkeypatch):
    _, _, res = tiny_sweep
    monkeypatch.setattr(sweep.tables, "parquet_available", lambda: False)
    p = sweep.write_results(res.results, tmp_path)
    assert p.name == "results.csv" and not (tmp_path / "results.parquet").exists()
    pd.testing.assert_frame_equal(sweep.read_results(tmp_path), res.results)
    if importlib.util.find_spec("pyarrow") is None:
        return
    monkeypatch.setattr(sweep.tables, "parquet_available", lambda: True)
    p = sweep.write_results(res.results, tmp_path)
    assert p.name == "results.parquet" and not (tmp_path / "results.csv").exists()
    pd.testing.assert_frame_equal(sweep.read_results(p), res.results)


# ------------------------------------------------------------------------------ kills
def _wait(pred, timeout, what):
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _mid_run(runs: Path) -> list[Path]:
    """Cell folders with a checkpoint but no metrics.json (killed / running mid-cell)."""
    return [d for d in runs.iterdir() if (d / "checkpoints" / "task000.npz").exists()
            and not (d / "metrics.json").exists()] if runs.exists() else []


@pytest.mark.slow
def test_killing_the_sweep_then_rerunning_finishes_only_the_remaining_cells(tmp_path):
    # 20 epochs: a later cell's tasks 1-2 last seconds, the kill window polled every 50 ms
    g = write_grid(tmp_path, numerics='["hdqt"]', seeds=4, epochs=20)
    out = tmp_path / "out"
    runs = out / "runs"
    cmd = [sys.executable, "-m", "intsim.cli", "sweep", "--grid", str(g), "--out",
           str(out), "--workers", "2", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)

    def one_done_one_started():
        if proc.poll() is not None:
            return True
        return runs.exists() and any((d / "metrics.json").exists() for d in runs.iterdir()) \
            and bool(_mid_run(runs))
    try:
        _wait(one_done_one_started, 120, "a finished and a started cell")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)         # the sweep, its cluster and workers
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    _wait(lambda: not _group_alive(proc.pid), 30, "the killed process group to exit")
    done = {d.name: (d / "metrics.json").stat().st_mtime_ns for d in runs.iterdir()
            if (d / "metrics.json").exists()}
    killed = [d.name for d in _mid_run(runs)]
    assert done and killed and len(done) < 4
    res = sweep.run_sweep(g, out, workers=2, quiet=True)
    assert res.n_failed == 0 and res.n_skipped == len(done) and res.n_run == 4 - len(done)
    assert {n: (runs / n / "metrics.json").stat().st_mtime_ns for n in done} == done
    df = res.results.set_index("cell")
    assert df.loc[list(done), "reused"].all() and not df.loc[killed, "reused"].any()
    assert (df.loc[killed, "resumed_from_task"] >= 0).all()
    # a resumed cell writes what an uninterrupted run writes
    cell = next(c for c in res.cells if c.id == killed[0])
    row = sweep.run_cell({**cell.to_dict(), "dir": str(tmp_path / "fresh"),
                          "cfg": {**cell.cfg, "out": str(tmp_path / "fresh")}})
    assert row["status"] == "ok"
    assert (tmp_path / "fresh" / "metrics.json").read_bytes() == \
        (runs / killed[0] / "metrics.json").read_bytes()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # pragma: no cover
        return True
    return True


@pytest.mark.slow
def test_killed_worker_cell_resumes_from_its_checkpoint_and_thread_limits(tmp_path):
    g = write_grid(tmp_path, numerics='["hdqt"]', seeds=3, epochs=20)
    grid = sweep.Grid.load(g)
    out = tmp_path / "out"
    runs = out / "runs"
    victims = {}
    with sweep.dask_client(workers=2, quiet=True) as client:
        # every worker process is limited to one thread, inside and outside the task
        for rep in client.run(sweep.worker_thread_report).values():
            assert set(rep["env"].values()) == {"1"} and rep["numba_default"] == 1
        rep = client.submit(sweep.worker_thread_report, pure=False).result()
        assert rep["numba_in_task"] == 1
        assert rep["compiles"] is True          # a kernel specialisation new to the worker
        assert all(n == 1 for n in (rep["pools_in_task"] or {}).values())
        pids = client.run(os.getpid)

        def kill_one():
            t0 = time.monotonic()
            while time.monotonic() - t0 < 120 and not victims:
                for d in _mid_run(runs):
                    for addr, keys in client.processing().items():
                        if any(f"{d.name}-" in str(k) for k in keys) and addr in pids:
                            os.kill(pids[addr], signal.SIGKILL)
                            victims[d.name] = pids[addr]
                            return
                time.sleep(0.05)
        killer = threading.Thread(target=kill_one, daemon=True)
        killer.start()
        res = sweep.run_sweep(grid, out, scheduler=client, quiet=True, plots=False)
        killer.join(timeout=5)
        # an existing cluster given by its address is used and left running as it is
        addr = client.scheduler.address
        g2 = write_grid(tmp_path / "g2", numerics='["fp32"]', seeds="[0]")
        assert main(["sweep", "--grid", str(g2), "--out", str(tmp_path / "out2"), "--scheduler",
                     addr, "--quiet", "--no-plots"]) == 0
        assert len(client.scheduler_info()["workers"]) == 2
        assert sweep.read_results(tmp_path / "out2")["status"].tolist() == ["ok"]
    assert victims, "no cell was caught mid-run"
    assert res.n_failed == 0 and len(res.results) == 3
    (name, pid), = victims.items()
    r = res.results.set_index("cell").loc[name]
    assert r["resumed_from_task"] >= 0 and r["status"] == "ok"
    assert not r["worker"].endswith(f":{pid}")


# ------------------------------------------------------------------------------ CLI, script
@pytest.mark.slow
def test_cli_dry_run_and_exit_codes(tiny_sweep, capsys):
    root, g, _ = tiny_sweep
    assert main(["sweep", "--grid", str(g), "--out", str(root / "out"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "done     synthetic__icarl__fp32__seed0" in out
    assert "last attempt failed" in out and "6 cells: 2 new, 0 resume, 4 done" in out
    # failed cells give exit code 1 after writing every table
    assert main(["sweep", "--grid", str(g), "--out", str(root / "out"), "--workers", "0",
                 "--no-plots"]) == 1
    cap = capsys.readouterr()
    assert "4 already complete, 2 failed" in cap.out and "failed: synthetic" in cap.err


def test_cli_registers_under_a_parent_parser():
    import argparse
    from intsim.cli.sweep import register
    parser = argparse.ArgumentParser(prog="intsim")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sweep", "--grid", "g.toml", "--out", "d", "--scheduler",
                              "tcp://127.0.0.1:8786"])
    assert args.scheduler == "tcp://127.0.0.1:8786" and args.workers is None


@pytest.mark.slow
def test_reproduce_paper_sweep_prints_ours_beside_the_paper(tmp_path, capsys):
    from test_scripts import load_script, write_dsads_table
    write_dsads_table(tmp_path)
    script = load_script("reproduce_paper")
    argv = ["--data-dir", str(tmp_path), "--dataset", "dsads", "--methods", "icarl",
            "--numerics", "fp32", "hdqt", "--seeds", "1", "--epochs", "1",
            "--out", str(tmp_path / "runs"), "--quiet", "--sweep", "--workers", "0"]
    assert script.main(argv) == 0
    out = capsys.readouterr().out
    assert "83.99" in out and "83.63" in out
    assert (tmp_path / "runs" / "runs" / "dsads__icarl__hdqt__seed0" / "metrics.json").exists()
    assert (tmp_path / "runs" / "summary.csv").exists()
    assert script.main(argv) == 0
    assert "2 reused" in capsys.readouterr().out


@pytest.mark.slow
def test_a_worker_can_compile_new_kernels(tmp_path):
    """A worker spawned from a script that imports intsim (as the `intsim` command does)
    imports Numba before its NUMBA_NUM_THREADS is applied; without sync_numba_config the
    first compilation in a task then fails ("Cannot set NUMBA_NUM_THREADS ...")."""
    script = tmp_path / "probe.py"
    script.write_text("import json\nfrom intsim.experiments import sweep\n"
                      "if __name__ == '__main__':\n"
                      "    with sweep.dask_client(workers=1, quiet=True) as c:\n"
                      "        rep = c.submit(sweep.worker_thread_report, pure=False).result()\n"
                      "    print(json.dumps(rep))\n")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout.strip().splitlines()[-1])
    assert rep["compiles"] is True and rep["numba_in_task"] == 1


def test_missing_dask_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    for mod in ("dask", "dask.distributed"):
        monkeypatch.setitem(sys.modules, mod, None)          # import now raises ImportError
    g = write_grid(tmp_path)
    code = main(["sweep", "--grid", str(g), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install -e '.[sweep]'" in err
