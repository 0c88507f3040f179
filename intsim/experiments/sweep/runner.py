"""Running a sweep: every cell not complete yet, then the results, summary and plots.

The sweep folder follows intsim's output-folder policy (intsim.experiments.outputs: new,
empty, or an intsim sweep folder, which is continued) and is locked while the sweep runs, so
a second sweep into it is refused at once; each cell folder is locked by its cell as well."""
from __future__ import annotations

import asyncio
import json
import os
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from intsim.experiments.outputs import check_output_folder
from intsim.experiments.progress import SweepProgress
from intsim.experiments.sweep.cells import _error_row, cell_state, row_from_dir, run_cell
from intsim.experiments.sweep.cluster import dask_client, default_workers
from intsim.experiments.sweep.grid import Cell, Grid
from intsim.experiments.sweep.plots import sweep_plots
from intsim.experiments.sweep.tables import results_frame, summarize, write_results
from intsim.formats.atomic import atomic_path, atomic_write_text
from intsim.formats.ownership import hold, write_marker
from intsim.formats.run_folder import jsonable

#: the local Dask workers' scratch space, inside the sweep folder (nothing is written outside
#: --out); removed when the cluster closes
SCRATCH = ".dask-scratch"


@dataclass
class SweepResult:
    cells: list
    results: Any                     # pandas DataFrame, one row per cell
    summary: Any                     # pandas DataFrame, one row per configuration
    results_path: Path
    summary_path: Path
    plots: list
    n_run: int
    n_skipped: int
    n_failed: int                    # cells that did not succeed and did not diverge
    seconds: float
    n_diverged: int = 0              # cells whose training diverged (a recorded result)


def run_sweep(grid: Union[Grid, str, os.PathLike], out: Union[str, os.PathLike],
              scheduler=None, workers: Optional[int] = None, threads: int = 1,
              quiet: bool = False, plots: bool = True,
              progress: Optional[SweepProgress] = None) -> SweepResult:
    """Run every cell of `grid` that is not complete yet (intsim.experiments.sweep), then
    write results, summary.csv and the plots into `out`. Returns a SweepResult.

    quiet silences the Dask cluster's logs; progress receives the sweep's events.
    ConfigError for an output folder intsim may not use, FolderBusy when another sweep
    holds it."""
    if not isinstance(grid, Grid):
        grid = Grid.load(grid)
    out = Path(out).expanduser().resolve()
    cells = grid.cells(out, threads=threads)
    check_output_folder(out, "sweep")
    with hold(out, "intsim sweep"):
        check_output_folder(out, "sweep")
        write_marker(out, "sweep")
        return _sweep(grid, cells, out, scheduler, workers, threads, quiet, plots,
                      progress or SweepProgress())


def _sweep(grid, cells, out, scheduler, workers, threads, quiet, plots,
           progress: SweepProgress) -> SweepResult:
    t_start = time.perf_counter()
    if grid.text is not None:
        atomic_write_text(os.fspath(out / "grid.toml"), grid.text)
    atomic_write_text(os.fspath(out / "cells.json"), json.dumps(jsonable(
        {"name": grid.name, "fields": grid.field_names,
         "cells": [{"id": c.id, "fields": c.fields, "settings": c.cfg} for c in cells]}),
        indent=1) + "\n")
    rows: dict[str, dict] = {}
    todo = []
    for c in cells:
        if cell_state(c) == "done":
            r = row_from_dir(c)
            r["reused"] = True
            rows[c.id] = r
        else:
            todo.append(c)
    n_skipped = len(rows)
    n_local = workers if workers is not None else min(default_workers(), max(len(todo), 1))
    where = ("this process" if workers == 0 else
             f"the cluster at {scheduler}" if isinstance(scheduler, str) else
             "the given client" if scheduler is not None else
             f"a LocalCluster of {n_local} single-threaded worker(s)")
    progress.sweep_start(len(cells), n_skipped, where)

    def done(c: Cell, row: dict) -> None:
        rows[c.id] = row
        progress.cell_end(c.id, row)
    try:
        if workers == 0:
            for c in todo:
                done(c, run_cell(c.to_dict()))
        elif todo:
            _run_on_dask(todo, done, scheduler, n_local, threads, quiet,
                         os.fspath(out / SCRATCH))
    finally:
        progress.sweep_end()
    results = results_frame([rows[c.id] for c in cells], grid.field_names)
    results_path = write_results(results, out)
    summary = summarize(results)
    summary_path = out / "summary.csv"
    with atomic_path(os.fspath(summary_path)) as tmp:
        summary.to_csv(tmp, index=False)
    written = sweep_plots(results, summary, out) if plots else []
    n_diverged = int((results["status"] == "diverged").sum())
    n_failed = int((results["status"] != "ok").sum()) - n_diverged
    return SweepResult(cells=cells, results=results, summary=summary, results_path=results_path,
                       summary_path=summary_path, plots=written, n_run=len(todo),
                       n_skipped=n_skipped, n_failed=n_failed,
                       seconds=time.perf_counter() - t_start, n_diverged=n_diverged)


def _run_on_dask(todo: list, done, scheduler, workers, threads, quiet, scratch) -> None:
    with dask_client(scheduler, workers, threads, quiet, local_directory=scratch) as client:
        from dask.distributed import as_completed
        futures = {}
        for c in todo:
            f = client.submit(run_cell, c.to_dict(), pure=False,
                              key=f"intsim-cell-{c.id}-{uuid.uuid4().hex[:8]}")
            futures[f] = c
        try:
            for f in as_completed(list(futures)):
                c = futures[f]
                try:
                    row = f.result()
                except (Exception, asyncio.CancelledError) as e:   # KilledWorker, …
                    row = _error_row(c.to_dict(), e, traceback.format_exc())
                done(c, row)
        except BaseException:
            client.cancel(list(futures))
            raise


