"""One cell of a sweep: its state on disk, running it, and its results row.

A cell's folder is an `intsim cil` run folder plus status.json (and error.txt on failure).
run_cell is the picklable task the sweep submits; it never raises (a failure becomes a row
with status "error"). It holds the cell folder's lock while it runs (a second sweep, or an
`intsim cil`, into the same folder is refused: status "error", the folder left untouched).

Row status: "ok" (complete), "diverged" (training diverged: neither success nor failure; the
cell is complete — rerunning would diverge the same way — its metrics columns stay empty and
`error` says where it diverged), "error" (retried by the next sweep), "missing".
A cell is "done" when metrics.json is complete and status.json, written last, says "ok" or
"diverged"; a cell killed between the two resumes (nothing is retrained: its last checkpoint
is after the last task) and writes both again.
"""
from __future__ import annotations

import json
import math
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Mapping, Optional, Union

from intsim.experiments.cil_run import RunDiverged, run, settings_diff
from intsim.experiments.config import ConfigError
from intsim.experiments.records import evaluation_text, trace_summary
from intsim.experiments.sweep.cluster import sync_numba_config, thread_limits
from intsim.experiments.sweep.grid import Cell
from intsim.experiments.sweep.tables import CURVES, SCALAR_METRICS, STATUS_COLUMNS
from intsim.formats.atomic import atomic_write_text
from intsim.formats.ownership import FolderBusy, hold
from intsim.formats.run_folder import checkpoints, read_json, write_json

#: row statuses of a cell that is complete (not run again)
COMPLETE = ("ok", "diverged")


def settings_differ(cell_dir: Union[str, os.PathLike], cfg: Mapping) -> list[str]:
    """Settings (except `out`) in which the run stored in cell_dir differs from cfg; [] when
    equal or when there is no stored run."""
    doc = read_json(Path(cell_dir) / "config.json")
    if not isinstance(doc, dict):
        return []
    return [k for k, _, _ in settings_diff(doc.get("settings", {}), cfg)]


def _complete(d: Path) -> Optional[str]:
    """"ok" / "diverged" when the cell folder holds a complete result (metrics.json and the
    status.json written after it agree), else None."""
    m = read_json(d / "metrics.json")
    st = read_json(d / "status.json")
    if not (isinstance(m, dict) and isinstance(st, dict)):
        return None
    status = m.get("status", "ok")
    if status == "ok" and "aia" not in m:
        return None
    return status if st.get("status") == status and status in COMPLETE else None


def cell_state(cell: Union[Cell, dict]) -> str:
    """"done" (a complete result: ok or diverged, same settings), "resume" (a started run),
    "changed" (a stored run with other settings), or "new"."""
    c = cell if isinstance(cell, dict) else cell.to_dict()
    d = Path(c["dir"])
    if not (d / "config.json").exists():
        return "new"
    if settings_differ(d, c["cfg"]):
        return "changed"
    return "done" if _complete(d) else "resume"


def _base_row(c: dict) -> dict:
    row = {"cell": c["id"], "group": c["group"], **c["fields"]}
    row.update({k: None for k in STATUS_COLUMNS})
    row.update({"dir": c["dir"], "reused": False})
    row.update({m: None for m in SCALAR_METRICS})
    row.update({f"{k}_json": None for k in CURVES})
    return row


def _finite(v) -> Optional[float]:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def row_from_dir(cell: Union[Cell, dict]) -> dict:
    """The results row of a cell, from the files in its folder (metrics.json,
    trace_summary.json, status.json); status "ok" needs a complete metrics.json."""
    c = cell if isinstance(cell, dict) else cell.to_dict()
    d = Path(c["dir"])
    row = _base_row(c)
    status = read_json(d / "status.json") or {}
    for k in ("seconds", "worker", "resumed_from_task", "numerics_name"):
        row[k] = status.get(k)
    complete = _complete(d)
    if complete == "diverged":
        row["status"] = "diverged"
        row["error"] = status.get("error")
        return row
    m = read_json(d / "metrics.json")
    if complete is None:
        row["status"] = status.get("status") if status.get("status") == "error" else "missing"
        row["error"] = status.get("error")
        return row
    summary = read_json(d / "trace_summary.json")
    if summary is None and (d / "trace.h5").exists():
        summary = trace_summary(d / "trace.h5")
        write_json(d / "trace_summary.json", summary)
    summary = summary or {}
    cost = read_json(d / "cost.json") or {}            # energies (intsim.models.cost_run)
    row["status"] = "ok"
    row["error"] = None
    for k in SCALAR_METRICS:
        row[k] = _finite(m.get(k, summary.get(k, cost.get(k))))
    for k in CURVES:
        if k in m:
            row[f"{k}_json"] = json.dumps(m[k])
    cfg_doc = read_json(d / "config.json") or {}
    if row["numerics_name"] is None:
        row["numerics_name"] = (cfg_doc.get("numerics_spec") or {}).get("name")
    if isinstance(cfg_doc.get("settings"), dict):
        row["evaluation"] = evaluation_text(cfg_doc["settings"])
    return row


def _write_status(d: Path, doc: dict) -> None:
    write_json(d / "status.json", doc)


def run_cell(cell: dict) -> dict:
    """Run one cell (a Cell.to_dict()) and return its results row. Picklable task of the sweep.

    A complete run is not repeated (reused = True); a started one resumes from its last
    checkpoint; any exception is caught into status "error" with the traceback in
    <dir>/error.txt. Writes <dir>/status.json.
    """
    d = Path(cell["dir"])
    t0 = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        if cell_state(cell) in ("done", "changed"):      # nothing to write: no lock needed
            return _run_held(cell, d, t0, worker)
        with hold(d, f"intsim sweep cell {cell['id']}"):
            return _run_held(cell, d, t0, worker)
    except FolderBusy as e:            # another run is in it: leave its files alone
        return _error_row(cell, e, "", time.perf_counter() - t0, worker, write=False)
    except Exception as e:       # noqa: BLE001 — a failing cell must not stop the sweep
        return _error_row(cell, e, traceback.format_exc(), time.perf_counter() - t0, worker)


def _run_held(cell: dict, d: Path, t0: float, worker: str) -> dict:
    """run_cell's work, with the cell folder's lock held."""
    try:
        state = cell_state(cell)
        if state == "done":
            row = row_from_dir(cell)
            row["reused"] = True
            return row
        if state == "changed":          # leave the other run's folder untouched
            diff = settings_differ(d, cell["cfg"])
            err = ConfigError(f"{d} holds a run with other settings ({', '.join(diff)}); "
                              f"delete the folder or sweep into another --out")
            return _error_row(cell, err, "", time.perf_counter() - t0, worker, write=False)
        resumed_from = None
        if state == "resume":
            found = checkpoints(d / "checkpoints")
            resumed_from = int(found[-1].stem[4:]) if found else None
        d.mkdir(parents=True, exist_ok=True)
        for stale in ("error.txt", "status.json"):
            (d / stale).unlink(missing_ok=True)
        sync_numba_config()
        status: dict = {"status": "ok"}
        with thread_limits(cell.get("threads", 1)):
            try:
                run(cell["cfg"], resume=state == "resume")
            except RunDiverged as e:
                w = e.where
                status = {"status": "diverged", "diverged": w,
                          "error": f"diverged at task {w['task']} ({w['stage']}), epoch "
                                   f"{w['epoch']}, step {w['step']}: {w['reason']}"}
        cfg_doc = read_json(d / "config.json") or {}
        _write_status(d, {**status, "seconds": time.perf_counter() - t0, "worker": worker,
                          "resumed_from_task": resumed_from,
                          "numerics_name": (cfg_doc.get("numerics_spec") or {}).get("name")})
        return row_from_dir(cell)
    except Exception as e:       # noqa: BLE001 — a failing cell must not stop the sweep
        return _error_row(cell, e, traceback.format_exc(), time.perf_counter() - t0, worker)


def _error_row(cell: dict, err: BaseException, tb: str, seconds=None, worker=None,
               write: bool = True) -> dict:
    d = Path(cell["dir"])
    msg = f"{type(err).__name__}: {err}".strip().splitlines()[0][:500] if str(err) else \
        type(err).__name__
    if write:
        try:
            d.mkdir(parents=True, exist_ok=True)
            atomic_write_text(os.fspath(d / "error.txt"), f"cell {cell['id']}\n{tb}")
            _write_status(d, {"status": "error", "error": msg, "seconds": seconds,
                              "worker": worker})
        except OSError:
            pass
    row = _base_row(cell)
    row.update(status="error", error=msg, seconds=seconds, worker=worker)
    return row


