"""Faults: kill -9 in each phase of a run, each part of a checkpoint corrupted, a full disk
(a real small tmpfs where the test may mount one, injected OSErrors at every write call
otherwise too), diverged runs in sweeps. Every case ends in a resumed run whose metrics.json
is byte-identical to an uninterrupted one, or in a clear error / recorded status."""
from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from intsim.cli import main
from intsim.experiments import sweep

CONFIG = """\
dataset = "synthetic"
method = "icarl"
numerics = "{numerics}"
epochs = 2
batch_size = 16
lr = 0.05
memory = 36
hidden = 24
trace_every = {trace_every}
[dataset_params]
n_classes = 6
n_subjects = 4
windows_per_cell = 10
"""


def write_config(folder: Path, numerics="hdqt", trace_every=1) -> Path:
    p = folder / f"{numerics}-{trace_every}.toml"
    p.write_text(CONFIG.format(numerics=numerics, trace_every=trace_every))
    return p


def cil(capsys, config, out, *extra):
    capsys.readouterr()
    code = main(["cil", "--config", str(config), "--out", str(out), "--quiet", *map(str, extra)])
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    """Uninterrupted reference runs: {(numerics, trace_every): folder}."""
    root = tmp_path_factory.mktemp("ref")
    out = {}
    for numerics, every in (("hdqt", 1), ("fp32", 0)):
        cfg = write_config(root, numerics, every)
        folder = root / f"{numerics}-{every}"
        assert main(["cil", "--config", str(cfg), "--out", str(folder), "--quiet"]) == 0
        out[numerics, every] = folder
    return out


def same_metrics(a: Path, b: Path) -> None:
    assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes()


def no_temp_files(folder: Path) -> None:
    left = [p.name for p in folder.rglob(".tmp-*")] + [p.name for p in folder.rglob(".intsim-space*")]
    assert not left, left


# ------------------------------------------------------------------ kill -9 in each phase
KILL = textwrap.dedent("""\
    import os, signal, sys
    import intsim.experiments.cil_run as run_mod, intsim.formats.run_folder as rf
    import intsim.core.trace as tr, numpy as np
    phase = sys.argv[1]
    calls = {{"n": 0}}
    def die():
        os.kill(os.getpid(), signal.SIGKILL)
    def after(obj, name, when):
        orig = getattr(obj, name)
        def wrapped(*a, **k):
            r = orig(*a, **k)
            calls["n"] += 1
            if when(a, calls["n"]):
                die()
            return r
        setattr(obj, name, wrapped)
    if phase == "after-config":
        after(run_mod, "write_json", lambda a, n: str(a[0]).endswith("config.json"))
    elif phase == "mid-task":                      # after the 3rd trace flush (task 1)
        after(run_mod, "append_trace", lambda a, n: n == 3)
    elif phase == "inside-trace-append":           # some columns appended, others not
        after(tr, "_append", lambda a, n: n == 3 * 37 + 5)
    elif phase == "inside-checkpoint-write":       # the temp file written, not yet renamed
        after(np, "savez", lambda a, n: n == 2)
    elif phase == "after-metrics":
        after(run_mod, "write_json", lambda a, n: str(a[0]).endswith("metrics.json"))
    from intsim.cli import main
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["after-config", "mid-task", "inside-trace-append",
                                   "inside-checkpoint-write", "after-metrics"])
def test_kill_in_each_phase_then_resume_is_identical(phase, ref, tmp_path, capsys):
    cfg = write_config(tmp_path, "hdqt", 1)
    out = tmp_path / "run"
    res = subprocess.run([sys.executable, "-c", KILL.format(), phase, "cil", "--config", str(cfg),
                          "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=300)
    assert res.returncode == -9, (phase, res.returncode, res.stderr[-2000:])
    assert (phase == "after-metrics") == (out / "metrics.json").exists()
    code, err = cil(capsys, cfg, out, "--resume")
    assert code == 0, err
    same_metrics(out, ref["hdqt", 1])
    no_temp_files(out)
    from intsim.formats.run_folder import trace_rows
    assert trace_rows(out / "trace.h5") == trace_rows(ref["hdqt", 1] / "trace.h5")


# ------------------------------------------------------------------ corrupt checkpoints
def _tamper(path: Path, fn, keep_meta: bool = True) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta_json")))
    fn(arrays, meta)
    if keep_meta:
        arrays["meta_json"] = np.array(json.dumps(meta))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _flip(path: Path, at: int) -> None:
    b = bytearray(path.read_bytes())
    b[at] ^= 0xFF
    path.write_bytes(bytes(b))


CORRUPTIONS = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "emptied": lambda p: p.write_bytes(b""),
    "flipped-array-bytes": lambda p: _flip(p, p.stat().st_size // 3),
    "flipped-zip-header": lambda p: _flip(p, 2),
    "array-changed-checksum-mismatch": lambda p: _tamper(
        p, lambda a, m: a.update({k: a[k] + 1 for k in a if k.startswith("model/")})),
    "meta-names-a-later-task": lambda p: _tamper(p, lambda a, m: m.update(task=5)),
    "meta-json-removed": lambda p: _tamper(p, lambda a, m: None, keep_meta=False),
    "meta-json-garbage": lambda p: _tamper(p, lambda a, m: m.clear() or m.update(format=7)),
    "array-missing": lambda p: _tamper(p, lambda a, m: a.pop("memory/classes")),
}


@pytest.fixture(scope="module")
def fp32_done(ref, tmp_path_factory):
    return ref["fp32", 0]


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(how, fp32_done, tmp_path,
                                                                  capsys):
    out = tmp_path / "run"
    shutil.copytree(fp32_done, out)
    (out / "metrics.json").unlink()
    CORRUPTIONS[how](out / "checkpoints" / "task002.npz")
    code, err = cil(capsys, write_config(tmp_path, "fp32", 0), out, "--resume")
    assert code == 0, err
    assert "skipping checkpoint" in err and "task002.npz" in err, err
    assert "resuming from the older checkpoint task001.npz" in err
    same_metrics(out, fp32_done)


def test_no_valid_checkpoint_is_a_clear_error(fp32_done, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(fp32_done, out)
    for p in (out / "checkpoints").glob("task*.npz"):
        p.write_bytes(b"junk")
    code, err = cil(capsys, write_config(tmp_path, "fp32", 0), out, "--resume")
    assert code == 2 and "no valid checkpoint in" in err and "--overwrite" in err, err
    assert "Traceback" not in err


def test_checkpoint_of_an_older_version_without_checksum_still_loads(fp32_done, tmp_path,
                                                                     capsys):
    out = tmp_path / "run"
    shutil.copytree(fp32_done, out)
    (out / "metrics.json").unlink()
    for p in (out / "checkpoints").glob("task*.npz"):
        _tamper(p, lambda a, m: m.pop("checksum"))
    (out / "checkpoints" / "task002.npz").unlink()
    code, err = cil(capsys, write_config(tmp_path, "fp32", 0), out, "--resume")
    assert code == 0 and "skipping" not in err, err
    same_metrics(out, fp32_done)


# ------------------------------------------------------------------ full disk
def _enospc(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def _fail_at(monkeypatch, target: str):
    import matplotlib.figure
    import intsim.formats.atomic as atomic
    import intsim.formats.run_folder as rf
    if target == "trace.h5":                 # the space probe finds the disk full
        monkeypatch.setattr(rf.os, "posix_fallocate", _enospc)
    elif target == "trace.h5 (HDF5 error)":  # HDF5 itself fails (h5py raises RuntimeError)
        monkeypatch.setattr(rf.Trace, "to_hdf5", lambda *a, **k: (_ for _ in ()).throw(
            RuntimeError("Can't write data (file write failed: errno = 28)")))
    elif target == "task000.npz":
        monkeypatch.setattr(rf.np, "savez", _enospc)
    elif target == "accuracy.png":
        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", _enospc)
    elif target == "metrics.json":
        real = atomic.atomic_write_text

        def text(path, s):
            if path.endswith("metrics.json"):
                with atomic.atomic_path(path):       # the temp file's write fails
                    _enospc()
            real(path, s)
        monkeypatch.setattr(atomic, "atomic_write_text", text)
        monkeypatch.setattr(rf, "atomic_write_text", text)


@pytest.mark.parametrize("target", ["trace.h5", "trace.h5 (HDF5 error)", "task000.npz",
                                    "accuracy.png", "metrics.json"])
def test_full_disk_at_each_write_is_one_clear_error_then_resume(target, ref, tmp_path, capsys,
                                                               monkeypatch):
    cfg = write_config(tmp_path, "hdqt", 1)
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _fail_at(m, target)
        code, err = cil(capsys, cfg, out)
    name = target.split(" ")[0]
    assert code == 4, err
    assert f"cannot write {out}" in err and name in err and "--resume" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (out / "metrics.json").exists()
    no_temp_files(out)
    code, err = cil(capsys, cfg, out, "--resume")
    assert code == 0, err
    same_metrics(out, ref["hdqt", 1])


FULL_DISK = textwrap.dedent("""\
    set -e
    mkdir -p "$1/mnt"
    mount -t tmpfs -o size=1100k tmpfs "$1/mnt"
    set +e
    "$2" -m intsim.cli cil --config "$3" --out "$1/mnt/run" --quiet 2> "$1/err1"
    echo $? > "$1/rc1"
    mount -o remount,size=30m "$1/mnt"
    "$2" -m intsim.cli cil --config "$3" --out "$1/mnt/run" --quiet --resume 2> "$1/err2"
    echo $? > "$1/rc2"
    cp "$1/mnt/run/metrics.json" "$1/metrics.json" 2>/dev/null
    umount "$1/mnt"
""")


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", 'd=$(mktemp -d) && mount -t tmpfs '
                            '-o size=64k tmpfs "$d"'], capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux") or not _can_mount_tmpfs(),
                    reason="needs a user namespace to mount a small tmpfs")
def test_real_full_tmpfs_then_resume_once_space_is_free(ref, tmp_path):
    """A real ENOSPC on a 1.1 MB tmpfs (in a private mount namespace): exit code 4 with one
    line naming the file, no segfault, and --resume after growing the tmpfs gives the
    reference metrics."""
    cfg = write_config(tmp_path, "hdqt", 1)
    script = tmp_path / "full.sh"
    script.write_text(FULL_DISK)
    subprocess.run(["unshare", "-rm", "sh", str(script), str(tmp_path), sys.executable, str(cfg)],
                   check=True, timeout=600)
    err1 = (tmp_path / "err1").read_text()
    assert (tmp_path / "rc1").read_text().strip() == "4", err1
    assert "No space left on device" in err1 and "trace.h5" in err1 and "Traceback" not in err1
    assert (tmp_path / "rc2").read_text().strip() == "0", (tmp_path / "err2").read_text()
    assert (tmp_path / "metrics.json").read_bytes() == (ref["hdqt", 1] / "metrics.json").read_bytes()


def test_a_trace_append_that_died_midway_is_rolled_back(tmp_path):
    from intsim.core.trace import Trace
    from intsim.formats.run_folder import append_trace, repair_trace, trace_rows
    path = tmp_path / "trace.h5"
    tr = Trace()
    for i in range(5):
        tr.step = i
        tr.record_codes("l", np.arange(4), np.arange(4.0), -7, 7, 4, True, "nearest", 1.0)
    append_trace(tr, path)
    import h5py
    with h5py.File(path, "a") as f:                # a half-done append: one column longer
        d = f["trace/quantize/step"]
        d.resize(8, axis=0)
    assert repair_trace(path, {"quantize": 5}) is None
    assert trace_rows(path) == {"quantize": 5}
    msg = repair_trace(path, {"quantize": 9})      # the checkpoint counted rows that are gone
    assert "could not be rolled back" in msg and not path.exists()
    assert Path(f"{path}.corrupt").exists()
    path.write_bytes(b"garbage")
    assert "unreadable" in repair_trace(path, {"quantize": 1})


# ------------------------------------------------------------------ diverged sweep cells
def test_sweep_records_diverged_cells_and_does_not_retry_them(tmp_path, capsys):
    g = tmp_path / "g.toml"
    g.write_text(textwrap.dedent("""\
        datasets = ["synthetic"]
        methods = ["icarl"]
        numerics = ["fp32"]
        seeds = [0]
        [settings]
        epochs = 1
        batch_size = 16
        memory = 36
        hidden = 24
        [settings.dataset_params]
        n_classes = 6
        n_subjects = 4
        windows_per_cell = 10
        [overrides]
        lr = [0.05, 1e30]
        """))
    argv = ["sweep", "--grid", str(g), "--out", str(tmp_path / "sw"), "--workers", "0",
            "--no-plots"]
    capsys.readouterr()
    assert main(argv) == 0                     # diverged is a recorded result, not a failure
    cap = capsys.readouterr()
    assert "diverged: synthetic__icarl__fp32__lr=1e+30__seed0: diverged at task 0" in cap.err
    assert "0 failed, 1 diverged" in cap.out and "diverged" in cap.out.splitlines()[0]
    res = sweep.read_results(tmp_path / "sw")
    st = dict(zip(res["cell"], res["status"]))
    assert sorted(st.values()) == ["diverged", "ok"]
    bad = res[res["status"] == "diverged"].iloc[0]
    assert np.isnan(bad["aia"]) and "step" in bad["error"]
    summary = __import__("pandas").read_csv(tmp_path / "sw" / "summary.csv")
    assert summary["n_diverged"].tolist() == [0, 1] and summary["n_failed"].tolist() == [0, 0]
    assert main(argv) == 0
    res2 = sweep.read_results(tmp_path / "sw")
    assert res2["reused"].all()               # both complete: nothing runs again


# ------------------------------------------------------------------ atomic writes
GRID_TINY = ('datasets = ["synthetic"]\nmethods = ["icarl"]\nnumerics = ["fp32"]\nseeds = [0]\n'
             '[settings]\nepochs = 1\nbatch_size = 16\nmemory = 36\nhidden = 24\n'
             '[settings.dataset_params]\nn_classes = 6\nn_subjects = 4\nwindows_per_cell = 10\n')


def _hex(folder: Path) -> None:
    from intsim.formats.hexfile import write_hex
    write_hex(_golden_file(folder.parent), str(folder / "hex"))


def _plot(folder: Path) -> None:
    from intsim.experiments.plots import plot_run
    plot_run({"accuracy_curve": [60.0, 45.0], "acc_matrix": [[60.0, None], [50.0, 40.0]],
              "aia": 52.5}, folder / "accuracy.png", title="t")


def _status(folder: Path) -> None:
    from intsim.experiments.sweep.cells import _write_status
    _write_status(folder, {"status": "ok", "seconds": 1.0})


@pytest.mark.parametrize("writer", [_plot, _status, _hex], ids=["accuracy.png", "status.json",
                                                                "hex files"])
def test_a_write_that_fails_before_its_rename_leaves_the_old_files(writer, tmp_path,
                                                                   monkeypatch):
    """Every file of the writer is written to a temporary file and renamed: when the rename
    fails (a crash or a full disk at the last moment) each old file is still there, whole, and
    no temporary file is left."""
    import intsim.formats.atomic as atomic
    from intsim.formats.atomic import StorageError
    folder = tmp_path / "out"
    folder.mkdir()
    writer(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert files
    for p in files:
        p.write_bytes(b"old")
    with monkeypatch.context() as m:
        m.setattr(atomic.os, "replace", _enospc)
        with pytest.raises(StorageError, match="No space left on device"):
            writer(folder)
    assert sorted(p for p in folder.rglob("*") if p.is_file()) == files
    assert all(p.read_bytes() == b"old" for p in files)


SWEEP_KILL = textwrap.dedent("""\
    import os, signal, sys
    import intsim.experiments.sweep.cells as cells
    real = cells._write_status
    def write_status(d, doc):          # killed after metrics.json, before status.json
        if doc.get("status") == "ok":
            os.kill(os.getpid(), signal.SIGKILL)
        real(d, doc)
    cells._write_status = write_status
    from intsim.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_a_sweep_cell_killed_after_metrics_json_is_completed_by_the_next_sweep(tmp_path,
                                                                                capsys):
    """metrics.json alone is not a finished cell: the next sweep resumes it (nothing left to
    train), writes its status.json and counts it ok."""
    g = tmp_path / "g.toml"
    g.write_text(GRID_TINY)
    argv = ["sweep", "--grid", str(g), "--out", str(tmp_path / "sw"), "--workers", "0",
            "--quiet", "--no-plots"]
    res = subprocess.run([sys.executable, "-c", SWEEP_KILL, *argv], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == -9, res.stderr[-2000:]
    cell = sweep.Grid.load(g).cells(tmp_path / "sw")[0]
    d = Path(cell.dir)
    metrics = (d / "metrics.json").read_bytes()
    assert (d / "accuracy.png").exists() and not (d / "status.json").exists()
    assert sweep.cell_state(cell) == "resume"
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    row = sweep.read_results(tmp_path / "sw").iloc[0]
    assert row["status"] == "ok" and not row["reused"] and row["resumed_from_task"] == 2
    assert json.loads((d / "status.json").read_text())["status"] == "ok"
    assert (d / "metrics.json").read_bytes() == metrics


# ------------------------------------------------------------------ full disk: every command
def _golden_file(folder: Path) -> str:
    from intsim.hw.golden import write_golden
    path = folder / "g.h5"
    if not path.exists():
        write_golden("hdqt", "fcnet:8,8,8,4", batch=4, steps=1, seed=0, out=str(path))
    return str(path)


COMMANDS = {
    "golden --out": lambda t, g: ["golden", "--numerics", "hdqt", "--model", "fcnet:8,8,8,4",
                                  "--batch", "4", "--steps", "1", "--out", f"{t}/o/g.h5"],
    "golden --hex": lambda t, g: ["golden", "--from", g, "--hex", f"{t}/o/hex"],
    "vectors --out": lambda t, g: ["vectors", "--numerics", "hdqt", "--suites", "boundary",
                                   "--kinds", "fwd", "--out", f"{t}/o/v.h5"],
    "overflow-report --out": lambda t, g: ["overflow-report", g, "--out", f"{t}/o", "--no-plot"],
    "overflow-report --train": lambda t, g: ["overflow-report", "--train", "hdqt", "--model",
                                             "linear:4,8,4", "--steps", "2", "--out", f"{t}/o",
                                             "--no-plot"],
    "compare --json": lambda t, g: ["compare", g, g, "--json", f"{t}/o/c.json"],
    "sweep": lambda t, g: ["sweep", "--grid", f"{t}/g.toml", "--out", f"{t}/o", "--workers",
                           "0", "--quiet", "--no-plots"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_full_disk_in_every_command_is_exit_4_naming_the_file(command, tmp_path, capsys,
                                                               monkeypatch):
    """Each output write fails (ENOSPC at its rename): one line naming the file meant under
    --out, exit code 4, no traceback."""
    import intsim.formats.atomic as atomic
    (tmp_path / "g.toml").write_text(GRID_TINY)
    argv = COMMANDS[command](tmp_path, _golden_file(tmp_path))
    capsys.readouterr()
    with monkeypatch.context() as m:
        m.setattr(atomic.os, "replace", _enospc)
        code = main(argv)
    err = capsys.readouterr().err
    assert code == 4, err
    lines = [ln for ln in err.splitlines() if ": error: " in ln]
    assert len(lines) == 1 and lines[0].startswith(f"intsim {argv[0]}: error: cannot write "
                                                    f"{tmp_path}/o"), err
    assert "No space left on device" in lines[0] and "Traceback" not in err


HW_FULL_DISK = textwrap.dedent("""\
    set -e
    mkdir -p "$1/mnt"
    mount -t tmpfs -o size=400k tmpfs "$1/mnt"
    dd if=/dev/zero of="$1/mnt/fill" bs=1k count=300 2>/dev/null
    set +e
    "$2" -m intsim.cli golden --numerics hdqt --model fcnet:16,16,16,4 --batch 4 --steps 2 \\
        --out "$1/mnt/g.h5" 2> "$1/err1"
    echo $? > "$1/rc1"
    "$2" -m intsim.cli overflow-report --train hdqt --model linear:64,128,64 --steps 4 \\
        --events 100000 --out "$1/mnt/ovf" --no-plot > /dev/null 2> "$1/err2"
    echo $? > "$1/rc2"
    ls -A "$1/mnt" > "$1/left"
    umount "$1/mnt"
""")


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _can_mount_tmpfs(),
                    reason="needs a user namespace to mount a small tmpfs")
def test_real_full_tmpfs_golden_and_overflow_traces_do_not_crash(tmp_path):
    """HDF5 files of the hardware commands on a nearly full tmpfs: exit code 4 with one line
    naming the file (HDF5 used to segfault there), no probe file left behind."""
    script = tmp_path / "full.sh"
    script.write_text(HW_FULL_DISK)
    subprocess.run(["unshare", "-rm", "sh", str(script), str(tmp_path), sys.executable],
                   check=True, timeout=600)
    for i, name in ((1, "g.h5"), (2, "trace.h5")):
        err = (tmp_path / f"err{i}").read_text()
        assert (tmp_path / f"rc{i}").read_text().strip() == "4", err
        line = [ln for ln in err.splitlines() if ": error: " in ln]
        assert len(line) == 1 and name in line[0] and "No space left" in line[0], err
        assert "Traceback" not in err
    assert ".intsim-space-probe" not in (tmp_path / "left").read_text()
