"""The `intsim sweep` subcommand.

intsim/cli/__init__.py adds it with `register(subparsers)`. A bad grid file, an output folder
intsim did not make or one another sweep is using prints one line `intsim sweep: error: ...`
and exits with code 2; a sweep in which some cells failed exits with code 1 after writing
every table (the failures are listed in results and in DIR/runs/<cell>/error.txt); cells whose
training diverged are recorded results (status "diverged", column `diverged` of the table)
and do not fail the sweep; a file that cannot be written exits with 4; Ctrl-C with 130."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from intsim.cli.common import INTERRUPTED, STORAGE, error
from intsim.cli.progress import SweepBars
from intsim.experiments.config import ConfigError
from intsim.formats.ownership import FolderBusy
from intsim.experiments.sweep import Grid, cell_state, format_summary, run_sweep
from intsim.experiments.sweep.grid import __doc__ as GRID_FORMAT
from intsim.formats.run_folder import read_json

SWEEP_HELP = "run a grid of intsim cil experiments on Dask and aggregate them"
SWEEP_DESCRIPTION = """\
Run every cell of a grid — data sets × methods × numerics (presets or datapath TOML files) ×
[overrides] (acc_bits, tile, operand_bits, acc_mode, hadamard, or any intsim cil setting) ×
seeds — as one `intsim cil` run in DIR/runs/<cell>/, on a Dask LocalCluster sized to this
machine (single-threaded workers) or on an existing cluster (--scheduler). Then write
DIR/results.parquet (results.csv without pyarrow; one row per cell and seed), DIR/summary.csv
(mean ± std over seeds, with the energies of each run's cost.json) and the plots
acc_vs_acc_bits.png, acc_vs_operand_bits.png, acc_vs_tile.png (when swept), per_task.png and
acc_vs_energy.png (accuracy vs energy relative to fp32, the Pareto front marked).

Restartable: rerun the same command after a crash or kill — complete cells are skipped, started
ones resume from their last checkpoint, failed ones are retried. A cell whose training
diverged is complete (status "diverged", counted in the `diverged` column; not retried).
DIR must be new, empty or an intsim sweep folder; the sweep locks it while it runs.

exit status: 0 every cell ok or diverged; 1 some cell failed; 2 bad input (one line on
stderr); 4 a file could not be written; 130 interrupted.

""" + GRID_FORMAT.split("\n", 2)[2]


def register(subparsers) -> None:
    """Add the `sweep` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser("sweep", help=SWEEP_HELP, description=SWEEP_DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", required=True, metavar="FILE.toml", help="the grid file")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder of the sweep")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="submit to an existing Dask cluster (e.g. tcp://host:8786); its "
                        "workers must have intsim installed and see DIR")
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes of the local cluster (default: the usable cores, "
                        "at most the cells to run); 0 = run the cells in this process")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="Numba/BLAS threads per worker (default 1)")
    p.add_argument("--dry-run", action="store_true",
                   help="list the cells and their state (new, resume, done, changed) and exit")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--quiet", action="store_true", help="no progress bar or tables")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 0:
        return error("sweep", "--workers must be >= 0")
    if args.threads < 1:
        return error("sweep", "--threads must be >= 1")
    if args.scheduler is not None and args.workers is not None:
        return error("sweep", "--workers sizes the local cluster; it cannot be used with --scheduler")
    try:
        grid = Grid.load(args.grid)
        if args.dry_run:
            cells = grid.cells(args.out, threads=args.threads)
            states = [cell_state(c) for c in cells]
            for c, s in zip(cells, states):
                st = read_json(Path(c.dir) / "status.json") or {}
                note = (f"  (last attempt failed: {st.get('error')})"
                        if s != "done" and st.get("status") == "error" else "")
                print(f"{s:8s} {c.id}{note}")
            counts = {s: states.count(s) for s in ("new", "resume", "done", "changed")}
            print(f"{len(cells)} cells: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
            return 0
        res = run_sweep(grid, args.out, scheduler=args.scheduler, workers=args.workers,
                        threads=args.threads, quiet=args.quiet, plots=not args.no_plots,
                        progress=SweepBars(args.quiet))
    except (ConfigError, FolderBusy, FileNotFoundError, ValueError) as e:
        return error("sweep", e)
    except OSError as e:
        return error("sweep", f"{e}; fix the cause and rerun the same command", STORAGE)
    except KeyboardInterrupt:
        print("intsim sweep: interrupted; rerun the same command to finish the remaining "
              "cells", file=sys.stderr)
        return INTERRUPTED
    if not args.quiet:
        print(format_summary(res.summary))
        print(f"{len(res.cells)} cells: {res.n_run} run, {res.n_skipped} already complete, "
              f"{res.n_failed} failed, {res.n_diverged} diverged; {res.seconds:.1f} s")
        print(f"wrote {res.results_path}, {res.summary_path}"
              + "".join(f", {p.name}" for p in res.plots))
    for _, r in res.results[res.results["status"] == "diverged"].iterrows():
        print(f"intsim sweep: diverged: {r['cell']}: {r['error']}", file=sys.stderr)
    if res.n_failed:
        bad = res.results[~res.results["status"].isin(("ok", "diverged"))]
        for _, r in bad.iterrows():
            print(f"intsim sweep: failed: {r['cell']}: {r['error']}", file=sys.stderr)
        return 1
    return 0
