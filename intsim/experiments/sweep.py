"""Sweeps: data sets × methods × numerics × overridden fields × seeds, one `intsim cil` run per
cell, executed on Dask distributed, aggregated into tables and plots.

    from intsim.experiments.sweep import Grid, run_sweep
    res = run_sweep("grid.toml", "runs/acc-sweep", workers=2)   # or scheduler="tcp://host:8786"
    res.summary                                                  # mean ± std over seeds

The grid file (TOML; unknown keys are errors naming the key):

    name = "acc-sweep"                    # optional free text
    datasets = ["synthetic"]              # intsim cil data-set names
    methods = ["icarl", "bic"]            # intsim cil method names
    numerics = ["fp32", "hdqt", "dp/my_datapath.toml"]   # presets or datapath TOML files
    seeds = [0, 1]                        # or seeds = 20, meaning 0 … 19

    [settings]                            # fixed intsim cil settings of every cell
    epochs = 1                            # (any key of the intsim cil TOML except dataset,
    [settings.dataset_params]             #  method, numerics, seed, out, numerics_overrides)
    n_classes = 6

    [data_dirs]                           # optional: data folder per data set
    dsads = "~/data/dsads"

    [overrides]                           # swept lists; the cartesian product defines cells
    acc_bits = [4, 8, 12, 16]             # bits of every accumulator present (acc_fwd/in/w)
    tile = [8, 16, 32, 64]                # K-tile of every accumulator present ("none" = 1 tile)
    operand_bits = [3, 4, 6, 8]           # bits of every operand QuantSpec present (all six)
    acc_mode = ["saturate", "wrap"]       # mode of every accumulator present
    hadamard = ["none", "pad"]            # the Hadamard rule
    lr = [0.01, 0.05]                     # any intsim cil setting can be swept as well

Relative paths (datapath files, data_dirs, settings.data_dir) are relative to the grid file.
The numerics knobs (acc_bits, tile, operand_bits, acc_mode, hadamard) apply to every quantized
numerics entry; a float entry (fp32) is not multiplied by them (one fp32 cell per data set ×
method × other axes × seed; its knob columns are empty). A cell's knobs become the cil setting
`numerics_overrides` (intsim.cil.apply_numerics_overrides), so the concrete Numerics is built
by the run and recorded in its config.json (`numerics_spec`).

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
                         aggregate_seeds; NaN with one seed)
    acc_vs_acc_bits.png, acc_vs_operand_bits.png, acc_vs_tile.png   accuracy vs the knob
                         (when it is swept with >= 2 values), float runs as horizontal lines
    per_task.png         accuracy after each task, every configuration (FP32 vs quantized)

Restart: a cell whose metrics.json exists (and whose stored settings equal the cell's) is skipped;
a cell with a config.json but no metrics.json resumes from its last checkpoint (intsim cil
--resume); a failing cell is recorded (status "error", error text, DIR/runs/<cell>/error.txt with
the traceback) and the sweep goes on. Rerunning the same command finishes the rest.

Execution: `scheduler` (an address "tcp://host:8786" or a dask.distributed.Client) submits to an
existing cluster unchanged (its workers must import intsim and see DIR); otherwise a LocalCluster
of `workers` single-threaded worker processes (default: the usable cores, at most the number of
cells to run). Workers must not oversubscribe cores: a LocalCluster's worker processes get
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS = threads (default 1) before they start
("distributed.nanny.pre-spawn-environ") and NUMBA_NUM_THREADS = threads in their own environment
(the nanny `env`, set before any task imports numba), and every task calls
numba.set_num_threads(threads) and threadpoolctl.threadpool_limits(threads) (when threadpoolctl
is installed) around the run, which also holds on an existing cluster (`worker_thread_report`
shows what a worker sees).
workers = 0 runs the cells one after another in this process (no Dask; for debugging).
"""
from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import itertools
import json
import logging
import math
import os
import re
import socket
import sys
import time
import tomllib
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from intsim.experiments.cil_run import ConfigError

GRID_KEYS = ("name", "datasets", "methods", "numerics", "seeds", "settings", "data_dirs",
             "overrides")
#: [overrides] keys that change the numerics of quantized entries
NUMERICS_KNOBS = ("acc_bits", "tile", "operand_bits", "acc_mode", "hadamard")
#: cil settings the grid sets per cell (not allowed in [settings] / [overrides])
CELL_SETTINGS = ("dataset", "method", "numerics", "seed", "out", "numerics_overrides")
#: scalar columns of results / summary (metrics.json, then trace_summary.json)
SCALAR_METRICS = ("aia", "last", "forgetting", "bwt", "class_forgetting", "macro_f1",
                  "nme_aia", "nme_last", "nme_forgetting", "nme_bwt", "nme_class_forgetting",
                  "nme_macro_f1", "event_rate", "saturated_output_fraction")
#: per-task curves kept as JSON text columns (<name>_json)
CURVES = ("accuracy_curve", "nme_accuracy_curve")
RUNS_DIR = "runs"
THREAD_ENV_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                   "MKL_NUM_THREADS")
#: results columns after the grid fields
STATUS_COLUMNS = ("status", "error", "numerics_name", "reused", "resumed_from_task", "seconds",
                  "worker", "dir")


class GridError(ConfigError):
    """A bad grid file (reported without a traceback, exit code 2)."""


# ------------------------------------------------------------------------------ the grid
def _as_list(key: str, v: Any) -> list:
    if isinstance(v, (str, int, float)) and not isinstance(v, bool):
        return [v]
    if not isinstance(v, list) or not v:
        raise GridError(f"grid: {key}: expected a non-empty list, got {v!r}")
    return list(v)


def _safe(s: Any) -> str:
    """A folder-name-safe rendering of a field value."""
    return re.sub(r"[^A-Za-z0-9._+=-]", "_", str(s))


@dataclass
class Cell:
    """One intsim cil run of the sweep (a configuration and a seed)."""
    id: str
    group: str                      # the id without the seed: one configuration
    dir: str
    fields: dict                    # grid field -> value (knobs None for float numerics)
    cfg: dict                       # the resolved intsim cil settings
    threads: int = 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Grid:
    """A parsed grid (see the module docstring for the file format)."""
    datasets: list
    methods: list
    numerics: list                  # [(label, source)]: source = preset name or absolute path
    seeds: list
    settings: dict = field(default_factory=dict)
    data_dirs: dict = field(default_factory=dict)
    knobs: dict = field(default_factory=dict)       # numerics knob -> values
    axes: dict = field(default_factory=dict)        # cil setting -> values
    name: str = ""
    text: Optional[str] = None
    path: Optional[str] = None

    # ---------------------------------------------------------------- parsing
    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Grid":
        p = Path(path).expanduser()
        if not p.is_file():
            raise GridError(f"grid file not found: {p}")
        text = p.read_text(encoding="utf-8")
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise GridError(f"grid file {p}: invalid TOML: {e}") from None
        try:
            g = cls.from_dict(doc, base_dir=p.resolve().parent)
        except GridError as e:
            raise GridError(f"{p}: {e}") from None
        g.text, g.path = text, os.fspath(p.resolve())
        return g

    @classmethod
    def from_dict(cls, doc: dict, base_dir: Union[str, os.PathLike, None] = None) -> "Grid":
        from intsim.experiments.cil_run import DEFAULTS
        from intsim.datasets.registry import DATASET_NAMES
        from intsim.models.learners import METHOD_NAMES
        from intsim.core.numerics import PRESET_NAMES
        doc = {k.replace("-", "_"): v for k, v in doc.items()}
        for k in doc:
            if k not in GRID_KEYS:
                raise GridError(f"grid: unknown key {k!r} (known: {', '.join(GRID_KEYS)})")
        for k in ("datasets", "methods", "numerics"):
            if k not in doc:
                raise GridError(f"grid: missing key {k!r}")
        datasets = _as_list("datasets", doc["datasets"])
        for d in datasets:
            if d not in DATASET_NAMES:
                raise GridError(f"grid: datasets: unknown data set {d!r} "
                                f"(known: {', '.join(DATASET_NAMES)})")
        methods = _as_list("methods", doc["methods"])
        for m in methods:
            if m not in METHOD_NAMES:
                raise GridError(f"grid: methods: unknown method {m!r} "
                                f"(known: {', '.join(METHOD_NAMES)})")
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        numerics = []
        for n in _as_list("numerics", doc["numerics"]):
            if not isinstance(n, str):
                raise GridError(f"grid: numerics: expected preset names or .toml paths, "
                                f"got {n!r}")
            if n in PRESET_NAMES:
                numerics.append((n, n))
            elif n.endswith(".toml"):
                p = Path(n).expanduser()
                p = p if p.is_absolute() else base / p
                if not p.is_file():
                    raise GridError(f"grid: numerics: datapath file not found: {p}")
                numerics.append((p.stem, os.fspath(p.resolve())))
            else:
                raise GridError(f"grid: numerics: {n!r} is neither a preset "
                                f"({', '.join(PRESET_NAMES)}) nor a datapath .toml file")
        labels = [lab for lab, _ in numerics]
        if len(set(labels)) != len(labels):
            raise GridError(f"grid: numerics: two entries share a name: {labels}")
        seeds = doc.get("seeds", [0])
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            if seeds < 1:
                raise GridError(f"grid: seeds: a count must be >= 1, got {seeds}")
            seeds = list(range(seeds))
        seeds = _as_list("seeds", seeds)
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds) \
                or len(set(seeds)) != len(seeds):
            raise GridError(f"grid: seeds: expected distinct non-negative integers or a count, "
                            f"got {doc.get('seeds')!r}")
        settings = doc.get("settings", {})
        if not isinstance(settings, dict):
            raise GridError(f"grid: settings: expected a table, got {settings!r}")
        settings = {k.replace("-", "_"): v for k, v in settings.items()}
        for k in settings:
            if k in CELL_SETTINGS:
                raise GridError(f"grid: settings: {k!r} is set by the grid per cell "
                                f"(use the top-level lists / [overrides])")
            if k not in DEFAULTS:
                raise GridError(f"grid: settings: unknown key {k!r} (an intsim cil setting "
                                f"is expected)")
        data_dirs = doc.get("data_dirs", {})
        if not isinstance(data_dirs, dict) or not all(isinstance(v, str)
                                                      for v in data_dirs.values()):
            raise GridError(f"grid: data_dirs: expected a table of data set = \"folder\", "
                            f"got {data_dirs!r}")
        for k in data_dirs:
            if k not in DATASET_NAMES:
                raise GridError(f"grid: data_dirs: unknown data set {k!r}")
        data_dirs = {k: _abspath(v, base) for k, v in data_dirs.items()}
        if isinstance(settings.get("data_dir"), str):
            settings["data_dir"] = _abspath(settings["data_dir"], base)
        overrides = doc.get("overrides", {})
        if not isinstance(overrides, dict):
            raise GridError(f"grid: overrides: expected a table, got {overrides!r}")
        knobs, axes = {}, {}
        for k, v in overrides.items():
            k = k.replace("-", "_")
            vals = _as_list(f"overrides.{k}", v)
            if len(set(map(repr, vals))) != len(vals):
                raise GridError(f"grid: overrides.{k}: repeated values {vals}")
            if k in NUMERICS_KNOBS:
                knobs[k] = [_check_knob(k, x) for x in vals]
            elif k in CELL_SETTINGS:
                raise GridError(f"grid: overrides: {k!r} is set by the grid per cell")
            elif k in DEFAULTS:
                if k in settings:
                    raise GridError(f"grid: {k!r} is both in [settings] and [overrides]")
                axes[k] = vals
            else:
                raise GridError(f"grid: overrides: unknown key {k!r} (numerics knobs: "
                                f"{', '.join(NUMERICS_KNOBS)}; or an intsim cil setting)")
        name = doc.get("name", "")
        if not isinstance(name, str):
            raise GridError(f"grid: name: expected a string, got {name!r}")
        return cls(datasets=datasets, methods=methods, numerics=numerics, seeds=seeds,
                   settings=settings, data_dirs=data_dirs, knobs=knobs, axes=axes, name=name)

    # ---------------------------------------------------------------- cells
    @property
    def field_names(self) -> list[str]:
        """Columns that identify a cell, in results order (seed last)."""
        return ["dataset", "method", "numerics", *self.knobs, *self.axes, "seed"]

    def cells(self, out: Union[str, os.PathLike], threads: int = 1) -> list["Cell"]:
        """Every cell (cartesian product; float numerics not multiplied by the knobs), with
        its intsim cil settings resolved (a bad setting raises GridError now)."""
        from intsim.experiments.cil_run import resolve_config
        runs = Path(out).expanduser().resolve() / RUNS_DIR
        knob_names = list(self.knobs)
        knob_combos = list(itertools.product(*self.knobs.values())) or [()]
        axis_names = list(self.axes)
        axis_combos = list(itertools.product(*self.axes.values())) or [()]
        base_numerics = {label: _load_numerics(src) for label, src in self.numerics}
        cells, seen = [], {}
        for dataset, method, (label, src) in itertools.product(self.datasets, self.methods,
                                                                 self.numerics):
            quantized = not base_numerics[label].is_float
            for kc in (knob_combos if quantized else [()]):
                knobs = dict(zip(knob_names, kc))
                overrides = knob_overrides(base_numerics[label], knobs, label)
                for ac in axis_combos:
                    axes = dict(zip(axis_names, ac))
                    parts = [dataset, method, label, *(f"{k}={v}" for k, v in knobs.items()),
                             *(f"{k}={v}" for k, v in axes.items())]
                    group = "__".join(_safe(p) for p in parts)
                    for seed in self.seeds:
                        cid = f"{group}__seed{seed}"
                        if cid in seen:
                            raise GridError(f"grid: two cells share the folder {cid}")
                        seen[cid] = True
                        d = runs / cid
                        cli = {**self.settings, **axes, "dataset": dataset, "method": method,
                               "numerics": src, "seed": seed, "out": os.fspath(d),
                               "numerics_overrides": overrides}
                        if dataset in self.data_dirs:
                            cli["data_dir"] = self.data_dirs[dataset]
                        try:
                            cfg = resolve_config(cli)
                        except ConfigError as e:
                            raise GridError(f"grid: cell {cid}: {e}") from None
                        fields = {"dataset": dataset, "method": method, "numerics": label,
                                  **{k: knobs.get(k) for k in knob_names}, **axes,
                                  "seed": seed}
                        cells.append(Cell(id=cid, group=group, dir=os.fspath(d),
                                          fields=fields, cfg=cfg, threads=int(threads)))
        return cells


def _abspath(v: str, base: Path) -> str:
    p = Path(v).expanduser()
    return os.fspath(p if p.is_absolute() else (base / p).resolve())


def _check_knob(key: str, v: Any) -> Any:
    if key in ("acc_bits", "operand_bits"):
        if isinstance(v, bool) or not isinstance(v, int):
            raise GridError(f"grid: overrides.{key}: expected integers, got {v!r}")
    elif key == "tile":
        if not (v == "none" or (isinstance(v, int) and not isinstance(v, bool))):
            raise GridError(f"grid: overrides.tile: expected integers or \"none\", got {v!r}")
    elif not isinstance(v, str):
        raise GridError(f"grid: overrides.{key}: expected strings, got {v!r}")
    return v


def _load_numerics(src: str):
    from intsim.core.numerics import PRESET_NAMES, Numerics, preset
    if src in PRESET_NAMES:
        return preset(src)
    try:
        return Numerics.from_toml(src)
    except (OSError, ValueError) as e:
        raise GridError(f"grid: numerics: {e}") from None


def knob_overrides(base, knobs: dict, label: Optional[str] = None) -> dict:
    """The cil `numerics_overrides` table that applies the sweep knobs to `base` (a Numerics):
    acc_bits / tile / acc_mode to every accumulator present, operand_bits to every operand
    QuantSpec present, hadamard to the rule. Empty for no knobs."""
    from intsim.core.numerics import ACCUMULATORS, OPERANDS
    if not knobs:
        return {}
    ov: dict[str, Any] = {}
    acc_fields = {"acc_bits": "bits", "tile": "tile", "acc_mode": "mode"}
    for acc in ACCUMULATORS:
        if getattr(base, acc) is None:
            continue
        t = {f: knobs[k] for k, f in acc_fields.items() if k in knobs}
        if t:
            ov[acc] = t
    if "operand_bits" in knobs:
        for op in OPERANDS:
            if getattr(base, op) is not None:
                ov[op] = {"bits": knobs["operand_bits"]}
    if "hadamard" in knobs:
        ov["hadamard"] = knobs["hadamard"]
    ov["name"] = (label or base.name) + "".join(f"+{k}={v}" for k, v in knobs.items())
    return ov


# ------------------------------------------------------------------------------ one cell
def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def settings_differ(cell_dir: Union[str, os.PathLike], cfg: dict) -> list[str]:
    """Settings (except `out`) in which the run stored in cell_dir differs from cfg; [] when
    equal or when there is no stored run."""
    from intsim.experiments.cil_run import DEFAULTS, _VOLATILE, _jsonable
    doc = _read_json(Path(cell_dir) / "config.json")
    if doc is None:
        return []
    a = {k: v for k, v in doc.get("settings", {}).items() if k not in _VOLATILE}
    b = {k: v for k, v in _jsonable(cfg).items() if k not in _VOLATILE}
    for k in set(b) - set(a):
        if k in DEFAULTS:
            a[k] = _jsonable(DEFAULTS[k])
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def cell_state(cell: Union[Cell, dict]) -> str:
    """"done" (complete metrics.json, same settings), "resume" (a started run), "changed" (a
    stored run with other settings), or "new"."""
    c = cell if isinstance(cell, dict) else cell.to_dict()
    d = Path(c["dir"])
    if not (d / "config.json").exists():
        return "new"
    if settings_differ(d, c["cfg"]):
        return "changed"
    m = _read_json(d / "metrics.json")
    return "done" if isinstance(m, dict) and "aia" in m else "resume"


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
    status = _read_json(d / "status.json") or {}
    for k in ("seconds", "worker", "resumed_from_task", "numerics_name"):
        row[k] = status.get(k)
    m = _read_json(d / "metrics.json")
    if not (isinstance(m, dict) and "aia" in m):
        row["status"] = status.get("status") if status.get("status") == "error" else "missing"
        row["error"] = status.get("error")
        return row
    summary = _read_json(d / "trace_summary.json")
    if summary is None and (d / "trace.h5").exists():
        from intsim.experiments.cil_run import _write_json_atomic, trace_summary
        summary = trace_summary(d / "trace.h5")
        _write_json_atomic(d / "trace_summary.json", summary)
    summary = summary or {}
    row["status"] = "ok"
    row["error"] = None
    for k in SCALAR_METRICS:
        row[k] = _finite(m.get(k, summary.get(k)))
    for k in CURVES:
        if k in m:
            row[f"{k}_json"] = json.dumps(m[k])
    if row["numerics_name"] is None:
        cfg_doc = _read_json(d / "config.json") or {}
        row["numerics_name"] = (cfg_doc.get("numerics_spec") or {}).get("name")
    return row


def sync_numba_config() -> None:
    """Make Numba's config agree with this process's environment before any kernel runs.

    A Dask worker may import Numba before its NUMBA_NUM_THREADS is applied; Numba then holds
    the machine default, launches its pool from one value and, at the next compilation,
    reloads the other and refuses to go on ("Cannot set NUMBA_NUM_THREADS ... once the
    threads have been launched"). Reloading here, before the pool starts, settles it; if the
    pool is already running, the environment is set to the pool's size instead.
    """
    import numba
    try:
        numba.config.reload_config()
    except RuntimeError:
        from numba.np.ufunc import parallel
        os.environ["NUMBA_NUM_THREADS"] = str(parallel.NUM_THREADS)
        numba.config.reload_config()


@contextmanager
def thread_limits(n: int):
    """numba.set_num_threads(n) (thread-local, restored after) and threadpoolctl's BLAS/OpenMP
    limit n, when threadpoolctl is installed."""
    import numba
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        threadpool_limits = None
    prev = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    try:
        if threadpool_limits is None:  # pragma: no cover
            yield
        else:
            with threadpool_limits(limits=int(n)):
                yield
    finally:
        numba.set_num_threads(prev)


def worker_thread_report(threads: int = 1) -> dict:
    """What a task sees on this process: the thread variables, numba's default thread count,
    the counts inside thread_limits(threads) (numba; BLAS/OpenMP pools by threadpoolctl) and
    whether Numba can still compile there. Submit it to a cluster to check that workers will
    not oversubscribe cores."""
    import numba
    sync_numba_config()
    rep = {"env": {k: os.environ.get(k) for k in THREAD_ENV_VARS},
           "numba_default": numba.get_num_threads(), "pid": os.getpid()}
    with thread_limits(threads):
        rep["numba_in_task"] = numba.get_num_threads()

        @numba.njit(cache=False)
        def fresh(x):                      # a compilation inside the task must work
            return x + 1
        try:
            rep["compiles"] = fresh(1) == 2
        except RuntimeError as err:
            rep["compiles"] = str(err)
        try:
            from threadpoolctl import threadpool_info
            rep["pools_in_task"] = {p["internal_api"]: p["num_threads"]
                                    for p in threadpool_info()}
        except ImportError:  # pragma: no cover
            rep["pools_in_task"] = None
    return rep


def _write_status(d: Path, doc: dict) -> None:
    from intsim.experiments.cil_run import _write_json_atomic
    _write_json_atomic(d / "status.json", doc)


def run_cell(cell: dict) -> dict:
    """Run one cell (a Cell.to_dict()) and return its results row. Picklable task of the sweep.

    A complete run is not repeated (reused = True); a started one resumes from its last
    checkpoint; any exception is caught into status "error" with the traceback in
    <dir>/error.txt. Writes <dir>/status.json.
    """
    from intsim.experiments.cil_run import run
    d = Path(cell["dir"])
    t0 = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
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
            found = sorted((d / "checkpoints").glob("task[0-9][0-9][0-9].npz"))
            resumed_from = int(found[-1].stem[4:]) if found else None
        d.mkdir(parents=True, exist_ok=True)
        for stale in ("error.txt", "status.json"):
            (d / stale).unlink(missing_ok=True)
        sync_numba_config()
        with thread_limits(cell.get("threads", 1)):
            run(cell["cfg"], resume=state == "resume", quiet=True)
        seconds = time.perf_counter() - t0
        cfg_doc = _read_json(d / "config.json") or {}
        _write_status(d, {"status": "ok", "seconds": seconds, "worker": worker,
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
            (d / "error.txt").write_text(f"cell {cell['id']}\n{tb}")
            _write_status(d, {"status": "error", "error": msg, "seconds": seconds,
                              "worker": worker})
        except OSError:
            pass
    row = _base_row(cell)
    row.update(status="error", error=msg, seconds=seconds, worker=worker)
    return row


# ------------------------------------------------------------------------------ execution
def default_workers() -> int:
    """Usable cores of this process (sched_getaffinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover
        return max(1, os.cpu_count() or 1)


def thread_env(threads: int = 1) -> dict:
    return {k: str(int(threads)) for k in THREAD_ENV_VARS}


@contextmanager
def dask_client(scheduler=None, workers: Optional[int] = None, threads: int = 1,
                quiet: bool = False):
    """A dask.distributed Client: of `scheduler` (address or Client, used unchanged) or of a new
    LocalCluster with `workers` single-threaded worker processes whose thread pools are limited
    to `threads` (closed on exit)."""
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError as err:
        raise ImportError("intsim sweep needs Dask distributed, which is not installed: "
                          "pip install -e '.[sweep]' (or --workers 0 to run the cells in "
                          "this process)") from err
    if scheduler is not None:
        if isinstance(scheduler, Client):
            yield scheduler
            return
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    env = thread_env(threads)
    # BLAS/OpenMP pools size themselves when their library loads, so those variables must be
    # set before the worker process starts (pre-spawn). The nanny sets them by updating *this*
    # process's os.environ, so NUMBA_NUM_THREADS goes only into the worker's own env (applied
    # first thing in the worker, before any task imports numba): numba in this process refuses
    # a NUMBA_NUM_THREADS that differs from its running thread pool. Every key the nanny
    # touches here is restored when the cluster closes.
    pre = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    pre.update({k: v for k, v in env.items() if k != "NUMBA_NUM_THREADS"})
    saved = {k: os.environ.get(k) for k in (*pre, "PYTHONHASHSEED", *env)}
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": pre}):
            cluster = LocalCluster(n_workers=int(workers or default_workers()),
                                   threads_per_worker=1, processes=True,
                                   dashboard_address=None, env=env,
                                   silence_logs=logging.CRITICAL if quiet else logging.ERROR)
        try:
            client = Client(cluster)
            try:
                yield client
            finally:
                client.close()
        finally:
            cluster.close()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


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
    n_failed: int
    seconds: float


def run_sweep(grid: Union[Grid, str, os.PathLike], out: Union[str, os.PathLike],
              scheduler=None, workers: Optional[int] = None, threads: int = 1,
              quiet: bool = False, plots: bool = True) -> SweepResult:
    """Run every cell of `grid` that is not complete yet (see the module docstring), then write
    results, summary.csv and the plots into `out`. Returns a SweepResult."""
    t_start = time.perf_counter()
    if not isinstance(grid, Grid):
        grid = Grid.load(grid)
    out = Path(out).expanduser().resolve()
    cells = grid.cells(out, threads=threads)
    out.mkdir(parents=True, exist_ok=True)
    from intsim.formats.atomic import atomic_write_text
    if grid.text is not None:
        atomic_write_text(os.fspath(out / "grid.toml"), grid.text)
    from intsim.experiments.cil_run import _jsonable
    atomic_write_text(os.fspath(out / "cells.json"), json.dumps(_jsonable(
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
    if not quiet:
        where = ("this process" if workers == 0 else
                 f"the cluster at {scheduler}" if isinstance(scheduler, str) else
                 "the given client" if scheduler is not None else
                 f"a LocalCluster of {n_local} single-threaded worker(s)")
        print(f"intsim sweep: {len(cells)} cells ({n_skipped} complete, {len(todo)} to run) "
              f"on {where} -> {out}", file=sys.stderr, flush=True)
    if todo:
        from tqdm import tqdm
        bar = tqdm(total=len(cells), initial=n_skipped, desc="cells", disable=quiet,
                   file=sys.stderr, dynamic_ncols=True)
        failed = 0

        def done(c: Cell, row: dict) -> None:
            nonlocal failed
            rows[c.id] = row
            if row["status"] != "ok":
                failed += 1
                bar.set_postfix(failed=failed)
                if not quiet:
                    tqdm.write(f"intsim sweep: cell {c.id} failed: {row['error']}",
                               file=sys.stderr)
            bar.update(1)
        try:
            if workers == 0:
                for c in todo:
                    done(c, run_cell(c.to_dict()))
            else:
                _run_on_dask(todo, done, scheduler, n_local, threads, quiet)
        finally:
            bar.close()
    results = results_frame([rows[c.id] for c in cells], grid.field_names)
    results_path = write_results(results, out)
    summary = summarize(results)
    summary_path = out / "summary.csv"
    with _atomic(summary_path) as tmp:
        summary.to_csv(tmp, index=False)
    written = sweep_plots(results, summary, out) if plots else []
    n_failed = int((results["status"] != "ok").sum())
    return SweepResult(cells=cells, results=results, summary=summary, results_path=results_path,
                       summary_path=summary_path, plots=written, n_run=len(todo),
                       n_skipped=n_skipped, n_failed=n_failed,
                       seconds=time.perf_counter() - t_start)


def _run_on_dask(todo: list, done, scheduler, workers, threads, quiet) -> None:
    import uuid
    with dask_client(scheduler, workers, threads, quiet) as client:
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


# ------------------------------------------------------------------------------ tables
@contextmanager
def _atomic(path: Path):
    from intsim.formats.atomic import atomic_path
    with atomic_path(os.fspath(path)) as tmp:
        yield tmp


def _normalize(values: Sequence) -> Any:
    """A column of grid-field values with a stable dtype: nullable Int64 for integers, float
    for numbers, strings otherwise (None stays missing)."""
    import pandas as pd
    vals = [None if (v is None or (isinstance(v, float) and math.isnan(v))) else v
            for v in values]
    present = [v for v in vals if v is not None]
    if present and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                       for v in present):
        return pd.array(vals, dtype="Int64")
    if present and all(isinstance(v, (int, float, np.integer, np.floating))
                       and not isinstance(v, (bool, np.bool_)) for v in present):
        return pd.array([np.nan if v is None else float(v) for v in vals], dtype="float64")
    return pd.array([None if v is None else str(v) for v in vals], dtype="object")


TEXT_COLUMNS = ("cell", "group", "status", "error", "numerics_name", "worker", "dir",
                *(f"{k}_json" for k in CURVES))


def _missing(v) -> bool:
    import pandas as pd
    return v is None or (not isinstance(v, (list, dict, str)) and bool(pd.isna(v)))


def _set_dtypes(df, field_names: Sequence[str]):
    """Stable dtypes whatever the source (rows, CSV, parquet): grid fields via _normalize, text
    columns object (None = missing), metrics float64, resumed_from_task Int64, reused bool."""
    import pandas as pd
    for c in field_names:
        vals = [None if _missing(v) else v for v in df[c].tolist()]
        if all(isinstance(v, (float, np.floating)) and float(v).is_integer()
               for v in vals if v is not None) and any(v is not None for v in vals) \
                and df[c].dtype.kind == "f":
            vals = [None if v is None else int(v) for v in vals]   # CSV turned Int64 to float
        df[c] = _normalize(vals)
    for c in TEXT_COLUMNS:
        df[c] = pd.array([None if _missing(v) else str(v) for v in df[c].tolist()],
                         dtype="object")
    for c in SCALAR_METRICS + ("seconds",):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    df["resumed_from_task"] = pd.array([None if _missing(v) else int(v)
                                        for v in df["resumed_from_task"].tolist()],
                                       dtype="Int64")
    df["reused"] = pd.array([bool(v) if not _missing(v) else False
                             for v in df["reused"].tolist()], dtype=bool)
    return df


def results_frame(rows: list[dict], field_names: Sequence[str]):
    """The results table (one row per cell) with a fixed column order: cell, group, the grid
    fields (seed last), status columns, scalar metrics, curve JSON columns."""
    import pandas as pd
    cols = ["cell", "group", *field_names, *STATUS_COLUMNS, *SCALAR_METRICS,
            *(f"{k}_json" for k in CURVES)]
    df = pd.DataFrame({c: (_normalize([r.get(c) for r in rows]) if c in field_names
                           else pd.array([r.get(c) for r in rows], dtype="object"))
                       for c in cols})
    return _set_dtypes(df, [])


def parquet_available() -> bool:
    """pyarrow installed (results.parquet); else results.csv."""
    return importlib.util.find_spec("pyarrow") is not None


def write_results(df, out: Union[str, os.PathLike]) -> Path:
    """results.parquet (pyarrow) or results.csv in `out`; removes the other format's stale
    file. Returns the path written."""
    out = Path(out)
    use_parquet = parquet_available()
    path = out / ("results.parquet" if use_parquet else "results.csv")
    with _atomic(path) as tmp:
        if use_parquet:
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
    other = out / ("results.csv" if use_parquet else "results.parquet")
    other.unlink(missing_ok=True)
    return path


def field_columns(df) -> list[str]:
    """The grid-field columns of a results table (between 'group' and 'status')."""
    cols = list(df.columns)
    return cols[cols.index("group") + 1: cols.index("status")]


def read_results(path: Union[str, os.PathLike]):
    """A results table written by write_results (a file or the sweep folder), with the same
    dtypes as the table that was written (integer-valued float fields of a CSV come back as
    integers)."""
    import pandas as pd
    p = Path(path)
    if p.is_dir():
        p = p / "results.parquet" if (p / "results.parquet").exists() else p / "results.csv"
    if p.suffix == ".parquet":
        df = pd.read_parquet(p)
    else:
        df = pd.read_csv(p, keep_default_na=False, na_values=[""], dtype=object)
        for c in df.columns:          # CSV gives text: numbers back to numbers
            if c in TEXT_COLUMNS:
                continue
            num = pd.to_numeric(df[c], errors="coerce")
            if num.notna().sum() == df[c].notna().sum():
                df[c] = num
        df["reused"] = [str(v) == "True" for v in df["reused"]]
    return _set_dtypes(df, field_columns(df))


def summarize(results):
    """Per configuration (the cell's group: every field but the seed): n_seeds (successful
    runs), n_failed, seeds, and <metric>_mean / <metric>_std over the successful seeds
    (aggregate_seeds, sample std; NaN with one seed or when a seed's value is missing), plus
    the mean per-task curve as JSON (accuracy_curve_mean_json)."""
    import pandas as pd
    from intsim.models.metrics import aggregate_seeds
    fields = [c for c in field_columns(results) if c != "seed"]
    out = []
    for group, g in results.groupby("group", sort=False):
        ok = g[g["status"] == "ok"]
        rec = {"group": group, **{c: g[c].iloc[0] for c in fields},
               "n_seeds": int(len(ok)), "n_failed": int(len(g) - len(ok)),
               "seeds": " ".join(str(int(s)) for s in ok["seed"])}
        for m in SCALAR_METRICS:
            if len(ok) and ok[m].notna().any():
                s = aggregate_seeds(ok[m].to_numpy(dtype=float))
                rec[f"{m}_mean"], rec[f"{m}_std"] = s.mean, s.std
            else:
                rec[f"{m}_mean"], rec[f"{m}_std"] = np.nan, np.nan
        for k in CURVES:
            curves = [json.loads(x) for x in ok[f"{k}_json"] if isinstance(x, str)]
            if curves and len(curves) == len(ok) and len({len(c) for c in curves}) == 1:
                a = np.array([[np.nan if v is None else v for v in c] for c in curves], float)
                rec[f"{k}_mean_json"] = json.dumps(
                    [None if not np.isfinite(v) else float(v) for v in a.mean(axis=0)])
            else:
                rec[f"{k}_mean_json"] = None
        out.append(rec)
    df = pd.DataFrame(out)
    for c in fields:
        df[c] = _normalize([None if pd.isna(r[c]) else r[c] for r in out])
    return df


def config_label(rec, fields: Sequence[str]) -> str:
    """'hdqt acc_bits=8 tile=32' from a results/summary row (dataset and method left out)."""
    import pandas as pd
    parts = [str(rec["numerics"])]
    for c in fields:
        if c in ("dataset", "method", "numerics", "seed"):
            continue
        v = rec[c]
        if v is not None and not pd.isna(v):
            parts.append(f"{c}={v}")
    return " ".join(parts)


TABLE_COLUMNS = (("AIA", "aia"), ("last", "last"), ("forgetting", "forgetting"),
                 ("NME AIA", "nme_aia"), ("NME last", "nme_last"))


def format_summary(summary) -> str:
    """A plain-text table of the summary (mean ± std over seeds)."""
    import pandas as pd
    fields = [c for c in summary.columns[1:summary.columns.get_loc("n_seeds")]]

    def ms(rec, m):
        mean, sd = rec[f"{m}_mean"], rec[f"{m}_std"]
        if pd.isna(mean):
            return "—"
        return f"{mean:.2f}" if pd.isna(sd) else f"{mean:.2f} ± {sd:.2f}"
    head = ["dataset", "method", "numerics", "seeds", *(c for c, _ in TABLE_COLUMNS),
            "sat.events/op", "failed"]
    body = []
    for _, r in summary.iterrows():
        ev = r["event_rate_mean"]
        body.append([str(r["dataset"]), str(r["method"]), config_label(r, fields),
                     str(r["n_seeds"]), *(ms(r, m) for _, m in TABLE_COLUMNS),
                     "—" if pd.isna(ev) else f"{ev:.2e}", str(r["n_failed"])])
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]

    def line(cells):
        return " | ".join(f"{c:<{w}}" if i < 3 else f"{c:>{w}}"
                          for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(head), "-" * len(line(head))] + [line(b) for b in body])


# ------------------------------------------------------------------------------ plots
def _num(v) -> Optional[float]:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def plot_vs_knob(summary, knob: str, path: Union[str, os.PathLike],
                 metrics: Sequence[str] = ("last", "aia")) -> bool:
    """Accuracy (mean ± std over seeds) vs a numerics knob: one panel per data set × method and
    metric, one line per other configuration, float numerics as dashed horizontal lines.
    Returns False (no file) when the knob has fewer than two numeric values."""
    import pandas as pd
    from intsim.experiments.plots import _figure
    if knob not in summary.columns:
        return False
    xs = sorted({x for x in (_num(v) for v in summary[knob]) if x is not None})
    if len(xs) < 2:
        return False
    fields = list(summary.columns[1:summary.columns.get_loc("n_seeds")])
    others = [c for c in fields if c not in ("dataset", "method", knob)]
    pairs = list(dict.fromkeys(zip(summary["dataset"], summary["method"])))
    fig = _figure(4.6 * len(metrics), 3.4 * len(pairs))
    axes = np.atleast_2d(fig.subplots(len(pairs), len(metrics), squeeze=False))
    for i, (ds, me) in enumerate(pairs):
        sub = summary[(summary["dataset"] == ds) & (summary["method"] == me)]
        flat = sub[sub[knob].isna()]
        quant = sub[sub[knob].notna()]
        for j, m in enumerate(metrics):
            ax = axes[i, j]
            color = 0
            for key, g in (quant.groupby(others, sort=False, dropna=False) if others
                           else [((), quant)]):
                g = g.assign(_x=[_num(v) for v in g[knob]]).dropna(subset=["_x", f"{m}_mean"])
                g = g.sort_values("_x")
                if g.empty:
                    continue
                lab = config_label(g.iloc[0], [c for c in fields if c != knob])
                ax.errorbar(g["_x"], g[f"{m}_mean"], yerr=g[f"{m}_std"].fillna(0.0),
                            marker="o", capsize=3, color=f"C{color % 10}", label=lab)
                color += 1
            for _, r in flat.iterrows():
                mean, sd = r[f"{m}_mean"], r[f"{m}_std"]
                if pd.isna(mean):
                    continue
                c = f"C{color % 10}"
                color += 1
                ax.axhline(mean, color=c, linestyle="--",
                           label=f"{config_label(r, fields)} (float)")
                if not pd.isna(sd):
                    ax.axhspan(mean - sd, mean + sd, color=c, alpha=0.12)
            if knob == "tile":
                ax.set_xscale("log", base=2)
            ax.set_xticks(xs)
            ax.set_xticklabels([f"{x:g}" for x in xs])
            ax.set_xlabel(knob.replace("_", " "))
            ax.set_ylabel(f"{'last-task accuracy' if m == 'last' else m.upper()} (%)")
            ax.set_ylim(0, 100)
            ax.grid(alpha=0.3)
            ax.set_title(f"{ds} · {me}", fontsize=9)
            ax.legend(fontsize=6, loc="lower right")
    fig.suptitle(f"accuracy vs {knob.replace('_', ' ')} (mean ± std over seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.fspath(path))
    return True


def plot_per_task(summary, results, path: Union[str, os.PathLike], max_lines: int = 12) -> bool:
    """Accuracy after each task (CNN classifier), mean ± std over seeds, one line per
    configuration (FP32 vs the quantized ones), one panel per data set × method."""
    from intsim.experiments.plots import _figure
    ok = results[(results["status"] == "ok") & results["accuracy_curve_json"].notna()]
    if ok.empty:
        return False
    fields = list(summary.columns[1:summary.columns.get_loc("n_seeds")])
    pairs = list(dict.fromkeys(zip(summary["dataset"], summary["method"])))
    fig = _figure(6.0, 3.8 * len(pairs))
    axes = np.atleast_1d(fig.subplots(len(pairs), 1, squeeze=False)[:, 0])
    for ax, (ds, me) in zip(axes, pairs):
        sub = summary[(summary["dataset"] == ds) & (summary["method"] == me)].head(max_lines)
        for k, (_, r) in enumerate(sub.iterrows()):
            curves = [json.loads(x) for x in ok[ok["group"] == r["group"]]["accuracy_curve_json"]]
            if not curves or len({len(c) for c in curves}) != 1:
                continue
            a = np.array([[np.nan if v is None else v for v in c] for c in curves], float)
            t = np.arange(1, a.shape[1] + 1)
            mean = np.nanmean(a, axis=0)
            quant = r["numerics"] != "fp32" and "fp32" not in str(r["numerics"])
            ax.plot(t, mean, marker="o", color=f"C{k % 10}",
                    linestyle="-" if quant else "--",
                    label=f"{config_label(r, fields)} (n={len(curves)})")
            if len(curves) > 1:
                sd = np.nanstd(a, axis=0, ddof=1)
                ax.fill_between(t, mean - sd, mean + sd, color=f"C{k % 10}", alpha=0.12)
            ax.set_xticks(t)
        ax.set_xlabel("tasks learned")
        ax.set_ylabel("accuracy on all seen classes (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower left")
        ax.set_title(f"{ds} · {me}: accuracy after each task (mean ± std over seeds)",
                     fontsize=9)
    fig.tight_layout()
    fig.savefig(os.fspath(path))
    return True


def sweep_plots(results, summary, out: Union[str, os.PathLike]) -> list[Path]:
    """acc_vs_<knob>.png for acc_bits / operand_bits / tile (when swept) and per_task.png."""
    out = Path(out)
    written = []
    if summary.empty:
        return written
    for knob in ("acc_bits", "operand_bits", "tile"):
        p = out / f"acc_vs_{knob}.png"
        if plot_vs_knob(summary, knob, p):
            written.append(p)
    p = out / "per_task.png"
    if plot_per_task(summary, results, p):
        written.append(p)
    return written
