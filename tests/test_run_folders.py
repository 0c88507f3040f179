"""Properties of the output folders: nothing is written outside --out and the cache, nothing
intsim did not write is ever deleted, two runs never share a folder (intsim.formats.ownership,
intsim.experiments.outputs)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from intsim.cli import main
from intsim.experiments.outputs import RUN_FILES
from intsim.formats.ownership import LOCK, MARKER, FolderBusy, hold, read_marker

from test_cil_cli import tiny_config


def config(folder: Path, epochs=1, numerics="fp32") -> Path:
    return Path(tiny_config(folder, "icarl", numerics, epochs, name=f"c{epochs}{numerics}.toml"))


def cil(capsys, *argv):
    capsys.readouterr()
    code = main(["cil", *map(str, argv), "--quiet"])
    return code, capsys.readouterr().err


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ------------------------------------------------------- nothing written outside --out
GRID = ('datasets = ["synthetic"]\nmethods = ["icarl"]\nnumerics = ["hdqt"]\nseeds = [0]\n'
        '[settings]\nepochs = 1\nbatch_size = 16\nmemory = 36\nhidden = 24\n'
        '[settings.dataset_params]\nn_classes = 6\nn_subjects = 4\nwindows_per_cell = 10\n')


@pytest.mark.parametrize("command", ["cil", "sweep"])
def test_a_run_writes_only_into_out_and_the_cache(command, tmp_path):
    """A whole `intsim cil` (or `intsim sweep` on a local Dask cluster) subprocess with HOME,
    TMPDIR, the working folder and the cache inside tmp_path: every new file is under --out
    or INTSIM_CACHE (the Dask workers' scratch space too), and none is left when it ends."""
    home, tmpdir, cwd, cache = (tmp_path / n for n in ("home", "tmp", "cwd", "cache"))
    for d in (home, tmpdir, cwd):
        d.mkdir()
    cfg = config(tmp_path)
    (tmp_path / "g.toml").write_text(GRID)
    before = snapshot(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTSIM", "MPL", "XDG"))}
    env.update(HOME=str(home), TMPDIR=str(tmpdir), INTSIM_CACHE=str(cache))
    argv = (["cil", "--config", str(cfg), "--out", "runs/a", "--quiet", "--numerics", "hdqt"]
            if command == "cil" else ["sweep", "--grid", str(tmp_path / "g.toml"), "--out",
                                      "runs/a", "--workers", "1", "--quiet", "--no-plots"])
    res = subprocess.run([sys.executable, "-m", "intsim.cli", *argv], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert not res.stderr.strip(), res.stderr              # no warnings either
    assert not (cwd / "runs" / "a" / ".dask-scratch").exists()
    new = sorted(set(snapshot(tmp_path)) - set(before))
    outside = [p for p in new if not p.startswith(("cwd/runs/a/", "cache/"))
               and not p.startswith("home/.cache/matplotlib/")]    # matplotlib's font cache
    assert not outside, outside
    assert any(p.startswith("cwd/runs/a/") for p in new)


# ------------------------------------------------------- nothing foreign is deleted
USER_FILES = {"notes.txt": "my notes", "checkpoints/mine.npz": "not a checkpoint of intsim",
              "checkpoints/task000.npz.bak": "my backup", "plots/fig.png": "my figure",
              "metrics.json.orig": "{}", ".tmp-draft": "mine", "checkpoints/.tmp-x": "mine"}


def _write(folder: Path, files: dict) -> None:
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)


def _user_files_intact(folder: Path, files: dict) -> None:
    for rel, text in files.items():
        assert (folder / rel).read_text() == text, rel


@pytest.mark.parametrize("flags", [["--overwrite"], ["--resume"]])
def test_overwrite_and_resume_keep_what_intsim_did_not_write(flags, tmp_path, capsys):
    out = tmp_path / "run"
    assert cil(capsys, "--config", config(tmp_path), "--out", out)[0] == 0
    _write(out, USER_FILES)
    code, err = cil(capsys, "--config", config(tmp_path, epochs=2), "--out", out, *flags)
    assert code == (0 if flags == ["--overwrite"] else 2), err     # resume: epochs changed
    _user_files_intact(out, USER_FILES)
    if flags == ["--overwrite"]:
        assert json.loads((out / "config.json").read_text())["settings"]["epochs"] == 2
        assert sorted(p.name for p in (out / "checkpoints").glob("task*.npz")) == \
            ["task000.npz", "task001.npz", "task002.npz"]


@pytest.mark.parametrize("content", [
    {"data.csv": "1,2\n"}, {"metrics.json": "{}"}, {"checkpoints/task000.npz": "x"},
    {"config.json": '{"settings": {}}'},            # not the keys of an intsim config
    {"trace.h5": "mine", "accuracy.png": "mine"}])
@pytest.mark.parametrize("flags", [[], ["--overwrite"], ["--resume"],
                                   ["--overwrite", "--resume"]])
def test_a_foreign_folder_is_never_touched(content, flags, tmp_path, capsys):
    out = tmp_path / "theirs"
    _write(out, content)
    before = snapshot(out)
    code, err = cil(capsys, "--config", config(tmp_path), "--out", out, *flags)
    assert code == 2 and "was not made by intsim" in err, err
    assert snapshot(out) == before


def test_a_folder_of_an_older_intsim_is_recognised_and_marked(tmp_path, capsys):
    out = tmp_path / "run"
    assert cil(capsys, "--config", config(tmp_path), "--out", out)[0] == 0
    (out / MARKER).unlink()                       # what an older intsim left behind
    code, err = cil(capsys, "--config", config(tmp_path), "--out", out)
    assert code == 2 and "already holds a run" in err
    assert cil(capsys, "--config", config(tmp_path), "--out", out, "--resume")[0] == 0
    assert read_marker(out)["kind"] == "run"


def test_overwrite_removes_exactly_intsims_files(tmp_path, capsys):
    out = tmp_path / "run"
    assert cil(capsys, "--config", config(tmp_path), "--out", out)[0] == 0
    written = {p.name for p in out.iterdir()}
    assert written - {"checkpoints", MARKER, LOCK} <= set(RUN_FILES)


# ------------------------------------------------------- one run per folder
HOLDER = """\
import sys, time
from intsim.formats.ownership import hold
with hold(sys.argv[1], "a test holder"):
    print("held", flush=True)
    time.sleep(120)
"""


def _holder(folder: Path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_into_a_held_folder_is_refused_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "run"
    assert cil(capsys, "--config", config(tmp_path), "--out", out)[0] == 0
    before = snapshot(out)
    proc = _holder(out)
    try:
        for flags in ([], ["--overwrite"], ["--resume"]):
            code, err = cil(capsys, "--config", config(tmp_path), "--out", out, *flags)
            if not flags:
                assert code == 2 and "already holds a run" in err, err
                continue
            assert code == 2, err
            assert f"{out} is in use by a test holder (pid {proc.pid} on host" in err, err
        assert snapshot(out) == {**before, LOCK: snapshot(out)[LOCK]}
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert cil(capsys, "--config", config(tmp_path), "--out", out, "--overwrite")[0] == 0


def test_two_real_runs_at_once_one_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "intsim.cli", "cil", "--config", str(config(tmp_path, 400)),
           "--out", str(out), "--quiet", "--seed", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "config.json").exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        code, err = cil(capsys, "--config", config(tmp_path), "--out", out, "--overwrite",
                        "--seed", "1")
        assert code == 2 and f"is in use by intsim cil (pid {proc.pid}" in err, err
        assert json.loads((out / "config.json").read_text())["settings"]["seed"] == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()


def test_the_lock_is_per_thread_and_nests_in_one_thread(tmp_path):
    folder = tmp_path / "f"
    with hold(folder, "outer"):
        with hold(folder, "nested, same thread"):
            pass
        errors = []

        def other():
            try:
                with hold(folder):
                    pass
            except FolderBusy as e:
                errors.append(str(e))
        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert errors and "another thread of this process" in errors[0]
    with hold(folder):                         # released
        pass


def test_a_second_sweep_into_the_same_folder_is_refused(tmp_path, capsys):
    g = tmp_path / "g.toml"
    g.write_text('datasets = ["synthetic"]\nmethods = ["icarl"]\nnumerics = ["fp32"]\n'
                 'seeds = [0]\n[settings]\nepochs = 1\nbatch_size = 16\nmemory = 36\n')
    out = tmp_path / "sw"
    proc = _holder(out)
    try:
        capsys.readouterr()
        code = main(["sweep", "--grid", str(g), "--out", str(out), "--workers", "0",
                     "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and f"is in use by a test holder (pid {proc.pid}" in err, err
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_a_cell_folder_in_use_is_an_error_row_and_left_alone(tmp_path):
    from intsim.experiments import sweep
    g = tmp_path / "g.toml"
    g.write_text('datasets = ["synthetic"]\nmethods = ["icarl"]\nnumerics = ["fp32"]\n'
                 'seeds = [0]\n[settings]\nepochs = 1\nbatch_size = 16\nmemory = 36\n'
                 '[settings.dataset_params]\nn_classes = 4\nn_subjects = 4\n'
                 'windows_per_cell = 5\n')
    cell = sweep.Grid.load(g).cells(tmp_path / "sw")[0]
    proc = _holder(Path(cell.dir))
    try:
        row = sweep.run_cell(cell.to_dict())
        assert row["status"] == "error" and "in use by a test holder" in row["error"]
        assert sorted(os.listdir(cell.dir)) == [LOCK]
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_trace_rollback_rebuilds_a_file_with_the_kept_rows_that_takes_appends(tmp_path):
    """repair_trace writes a fresh file (a killed HDF5 write can leave stale space
    bookkeeping in the old one): the checkpoint's rows, the attributes, resizable columns."""
    from intsim.core import linear_op
    from intsim.core.presets import preset
    from intsim.core.rng import SRStream
    from intsim.core.trace import Trace, read_hdf5
    from intsim.formats.run_folder import (append_trace, init_trace_file, repair_trace,
                                           trace_attrs, trace_rows)

    def trace(seed):
        t, rng = Trace(), np.random.default_rng(seed)
        for i in range(3):
            t.step = i
            linear_op.linear_forward(rng.standard_normal((1, 8, 40)).astype(np.float32),
                                     rng.standard_normal((6, 40)).astype(np.float32),
                                     preset("hdqt"), SRStream(1), t, f"L{i}")
        return t
    path = tmp_path / "trace.h5"
    init_trace_file(path, {"note": "kept"})
    append_trace(trace(0), path)
    kept = trace_rows(path)
    before = read_hdf5(path)
    append_trace(trace(1), path)
    assert repair_trace(path, kept) is None
    assert trace_rows(path) == kept and trace_attrs(path)["note"] == "kept"
    assert not list(tmp_path.glob(".tmp-*"))
    after = read_hdf5(path)
    for op in before:
        assert before[op].equals(after[op]), op
    append_trace(trace(2), path)
    assert trace_rows(path) == {op: 2 * n for op, n in kept.items()}
