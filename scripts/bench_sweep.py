#!/usr/bin/env python
"""Wall time of a 16-cell synthetic sweep on 1 vs 2 (or more) Dask workers.

    python scripts/bench_sweep.py                  # 1 and 2 workers, 20 epochs per task
    python scripts/bench_sweep.py --workers 1 2 4 --epochs 40 --json bench_sweep.json

The grid: synthetic HAR features (6 classes in 3 tasks, 5 subjects, FCNet 54→54→54), iCaRL,
hdqt numerics with accumulator bits 4/8/12/16, seeds 0–3 = 16 cells. Each worker count runs the
whole grid from scratch in a fresh folder through intsim.experiments.sweep.run_sweep (a LocalCluster of N
single-threaded workers: cluster start-up, all cells, tables; no plots). Printed: wall time,
the cluster start-up alone (a LocalCluster of N workers started and closed), the sum of the
cells' own run times, and the speed-up of each worker count over the first one. The machine
is shared, so repeat (--repeat) and read the spread.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from intsim.experiments.sweep import Grid, dask_client, default_workers, run_sweep

GRID = """\
name = "bench: 16 synthetic cells"
datasets = ["synthetic"]
methods = ["icarl"]
numerics = ["hdqt"]
seeds = 4

[settings]
epochs = {epochs}

[overrides]
acc_bits = [4, 8, 12, 16]
"""


def cluster_startup(workers: int) -> float:
    t0 = time.perf_counter()
    with dask_client(workers=workers, quiet=True) as client:
        client.run(lambda: None)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                   help="worker counts to compare (default: 1 2)")
    p.add_argument("--epochs", type=int, default=20, help="epochs per task (default 20)")
    p.add_argument("--repeat", type=int, default=1, help="runs per worker count (default 1)")
    p.add_argument("--json", metavar="PATH", help="also write the records as JSON")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="intsim-bench-sweep-") as tmp:
        gpath = Path(tmp) / "grid.toml"
        gpath.write_text(GRID.format(epochs=args.epochs))
        grid = Grid.load(gpath)
        n_cells = len(grid.cells(Path(tmp) / "x"))
        print(f"bench_sweep: {n_cells} cells (synthetic, iCaRL, hdqt acc_bits 4/8/12/16 x 4 "
              f"seeds, {args.epochs} epochs/task); {default_workers()} usable core(s)",
              flush=True)
        # warm the Numba cache once so that no worker count pays the compilation
        run_sweep(grid, Path(tmp) / "warm", workers=0, quiet=True, plots=False)
        records = []
        for rep in range(args.repeat):
            for n in args.workers:
                startup = cluster_startup(n)
                out = Path(tmp) / f"w{n}-r{rep}"
                t0 = time.perf_counter()
                res = run_sweep(grid, out, workers=n, quiet=True, plots=False)
                wall = time.perf_counter() - t0
                cell_s = float(res.results["seconds"].sum())
                rec = {"workers": n, "repeat": rep, "wall_s": wall, "startup_s": startup,
                       "cells_sum_s": cell_s, "failed": res.n_failed, "cells": len(res.cells)}
                records.append(rec)
                print(f"  {n} worker(s): wall {wall:6.1f} s   (cluster start-up alone "
                      f"{startup:4.1f} s; sum of cell times {cell_s:6.1f} s; failed "
                      f"{res.n_failed})", flush=True)
    base = args.workers[0]
    best = {n: min(r["wall_s"] for r in records if r["workers"] == n) for n in args.workers}
    for n in args.workers[1:]:
        print(f"speed-up {base} -> {n} workers (best wall times): {best[base] / best[n]:.2f}x "
              f"(ideal {n / base:.0f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps({"records": records, "best_wall_s": best},
                                              indent=2) + "\n")
    return 0 if all(r["failed"] == 0 for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
