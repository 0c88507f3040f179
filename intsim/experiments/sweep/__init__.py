"""Sweeps: data sets × methods × numerics × overridden fields × seeds, one `intsim cil` run per
cell, executed on Dask distributed, aggregated into tables and plots.

    from intsim.experiments.sweep import Grid, run_sweep
    res = run_sweep("grid.toml", "runs/acc-sweep", workers=2)   # or scheduler="tcp://host:8786"
    res.summary                                                  # mean ± std over seeds

The grid file format: intsim.experiments.sweep.grid (also `intsim sweep --help`).

Output folder DIR:
    grid.toml            the grid as given;     cells.json   every cell: id, fields, settings
    runs/<cell>/         one intsim cil run folder per cell (config.json, metrics.json,
                         trace.h5, checkpoints/, …) + status.json (and error.txt on failure);
                         <cell> = dataset__method__numerics[__knob=value…]__seed<k>
    results.parquet      one row per cell (= configuration and seed): every grid field, status,
                         error, seconds, worker and every scalar metric; per-task curves as JSON
                         text (results.csv when pyarrow is not installed)
    summary.csv          per configuration: n_seeds, n_failed, <metric>_mean, <metric>_std
                         (sample std over the successful seeds, intsim.models.metrics.
                         aggregate_seeds; NaN with one seed), including the energies
                         energy_pj_step / energy_pj_run / energy_rel_fp32 of cost.json
    acc_vs_acc_bits.png, acc_vs_operand_bits.png, acc_vs_tile.png   accuracy vs the knob
                         (when it is swept with >= 2 values), float runs as horizontal lines
    per_task.png         accuracy after each task, every configuration (FP32 vs quantized)
    acc_vs_energy.png    accuracy vs the run's energy relative to fp32 (cost.json of each
                         cell), the Pareto front marked

Restart: a cell whose metrics.json exists (and whose stored settings equal the cell's) is skipped;
a cell with a config.json but no metrics.json resumes from its last checkpoint (intsim cil
--resume); a failing cell is recorded (status "error", error text, DIR/runs/<cell>/error.txt with
the traceback) and the sweep goes on. Rerunning the same command finishes the rest.

Execution: `scheduler` (an address "tcp://host:8786" or a dask.distributed.Client) submits to an
existing cluster unchanged (its workers must import intsim and see DIR); otherwise a LocalCluster
of `workers` single-threaded worker processes (default: the usable cores, at most the number of
cells to run). How workers are kept to one thread each: intsim.experiments.sweep.cluster.
workers = 0 runs the cells one after another in this process (no Dask; for debugging).

Modules: grid (file format, cells), cells (one cell's state, run and row), cluster (Dask,
thread limits), runner (run_sweep), tables (results, summary), plots.
"""
from intsim.experiments.sweep.cells import cell_state, row_from_dir, run_cell, settings_differ
from intsim.experiments.sweep.cluster import (THREAD_ENV_VARS, dask_client, default_workers,
                                              sync_numba_config, thread_env, thread_limits,
                                              worker_thread_report)
from intsim.experiments.sweep.grid import (CELL_SETTINGS, GRID_KEYS, NUMERICS_KNOBS, RUNS_DIR,
                                           Cell, Grid, GridError, knob_overrides)
from intsim.experiments.sweep.plots import (pareto_front, plot_acc_vs_energy, plot_per_task,
                                           plot_vs_knob, sweep_plots)
from intsim.experiments.sweep.runner import SweepResult, run_sweep
from intsim.experiments.sweep.tables import (CURVES, SCALAR_METRICS, STATUS_COLUMNS,
                                             config_label, field_columns, format_summary,
                                             parquet_available,
                                             read_results, results_frame, summarize,
                                             write_results)

__all__ = ["Grid", "Cell", "GridError", "knob_overrides", "run_sweep", "SweepResult",
           "run_cell", "cell_state", "row_from_dir", "settings_differ", "dask_client",
           "default_workers", "thread_env", "thread_limits", "sync_numba_config",
           "worker_thread_report", "results_frame", "write_results", "read_results",
           "summarize", "format_summary", "config_label", "field_columns", "parquet_available", "sweep_plots",
           "plot_vs_knob", "plot_per_task", "plot_acc_vs_energy", "pareto_front",
           "THREAD_ENV_VARS", "GRID_KEYS", "NUMERICS_KNOBS",
           "CELL_SETTINGS", "RUNS_DIR", "SCALAR_METRICS", "CURVES", "STATUS_COLUMNS"]
