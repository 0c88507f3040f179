"""One class-incremental run: prepare (config, data, learner), train task by task, write the folder.

    cfg = resolve_config({"dataset": "watch", "method": "icarl", "numerics": "hdqt",
                          "out": "runs/watch-icarl"})
    run = CILRun.prepare(cfg)            # validates, loads data, builds scenario and learner
    metrics = run.execute()              # trains every task, writes the output folder

Settings: intsim.experiments.config. Numerics: `numerics` names a preset or a datapath file
and `numerics_overrides` changes fields of it (intsim.core.resolve); the concrete Numerics is
written to config.json as `numerics_spec`, and a resume refuses a run whose numerics differ.

Output folder (file formats: intsim.formats.run_folder):
  config.json        the fully resolved settings, scenario (class order, subject split), every
                     derived seed, SR stream layout, numerics spec, package versions
  metrics.json       aia, last, forgetting, bwt, acc_matrix, … of the CNN classifier, and the
                     same with the prefix nme_ for methods with nearest-mean-of-exemplars
  trace.h5           per-layer saturation/rounding records of the student's quantized matmuls,
                     every trace_every-th optimizer step, appended after every epoch
  trace_summary.json totals of trace.h5 (saturation event rate, saturated outputs)
  cost.json          operation counts, memory traffic and energy (pJ, default 45 nm table) per
                     step, per epoch and for the whole run, per task, and the fp32 reference
                     (intsim.models.cost_run); rewritten after every task
  checkpoints/       taskNNN.npz after every task
  accuracy.png       accuracy per task for each classifier + the accuracy matrix

Resume: the latest checkpoint restores model, memory, predictions so far, step counter and SR
stream state; every other random choice is re-derived from (seed, task index), and trace.h5 is
cut back to its length at that checkpoint. A resumed run writes the same metrics.json as an
uninterrupted one. Progress is reported to a RunProgress (intsim.experiments.progress).
"""
from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path
from typing import Mapping, Optional

import h5py
import numba
import numpy as np

from intsim._version import __version__
from intsim.core.trace import Trace
from intsim.experiments.builders import (build_learner, build_numerics, build_scenario,
                                         load_data, network_spec, seed_names)
from intsim.experiments.config import (DEFAULTS, PROTOCOLS, VOLATILE, ConfigError, RunConfig,
                                       resolve_config)
from intsim.experiments.plots import plot_run
from intsim.experiments.progress import RunProgress
from intsim.experiments.records import Record, compute_metrics, trace_summary
from intsim.formats.energy_table import load_energy_table
from intsim.formats.run_folder import (CHECKPOINT_FORMAT, TRACE_GROUP, checkpoint_path,
                                       checkpoints, init_trace_file, jsonable, read_checkpoint,
                                       read_json, trace_rows, truncate_trace, write_checkpoint,
                                       write_json)
from intsim.models.cost_run import RunCostRecorder, run_cost_doc, tasks_from_doc
from intsim.models.learners import Callbacks

__all__ = ["CILRun", "run", "resolve_config", "ConfigError", "RunConfig"]
#: files of a run folder that a fresh start (--overwrite) replaces
OUTPUT_FILES = ("metrics.json", "trace.h5", "trace_summary.json", "accuracy.png", "cost.json")


def versions() -> dict:
    """Versions of the packages a run's bits depend on (recorded in config.json)."""
    return {"python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "intsim": __version__, "h5py": h5py.__version__}


class _RunCallbacks(Callbacks):
    """The learner's hooks during a run: a trace attached every trace_every-th step, the
    trace flushed to trace.h5 after every epoch, progress forwarded to a RunProgress."""

    def __init__(self, trace: Optional[Trace], trace_every: int, trace_path: Path,
                 progress: RunProgress, cost: Optional[RunCostRecorder] = None):
        self.trace, self.every, self.path, self.progress = trace, trace_every, trace_path, progress
        self.cost = cost
        self._attached = False

    def step_start(self, learner, step):
        if self.trace is not None and self.every and step % self.every == 0:
            self.trace.step = step
            learner.set_trace(self.trace)
            self._attached = True

    def step_end(self, learner, step, loss):
        if self._attached:
            learner.set_trace(None)
            self._attached = False

    def flush(self):
        if self.trace is not None and len(self.trace):
            self.trace.to_hdf5(str(self.path), TRACE_GROUP)
            self.trace.clear()

    def epoch_end(self, learner, t, epoch, mean_loss):
        self.flush()
        self.progress.epoch_end(t, epoch, mean_loss)

    def stage(self, learner, t, name, epochs):
        if name == "train" and self.cost is not None:
            self.cost.task_start(learner, t)
        self.progress.stage_start(t, name, epochs)


class CILRun:
    """A prepared run (see module docstring). Build with CILRun.prepare(cfg)."""

    def __init__(self, cfg: RunConfig, ds, scenario, learner, net_spec, numerics,
                 resume: bool, overwrite: bool):
        self.cfg, self.ds, self.scenario, self.learner = cfg, ds, scenario, learner
        self.net_spec, self.numerics = net_spec, numerics
        self.resume, self.overwrite = resume, overwrite
        self.out = Path(cfg["out"])
        self.ckpt_dir = self.out / "checkpoints"
        self.trace_path = self.out / "trace.h5"
        self.classifiers = learner.describe()["classifiers"]
        self.record = Record(self.classifiers)
        self.start_task = 0
        self.checkpoint_meta: Optional[dict] = None
        self.config_doc: dict = {}
        self.version_change: tuple = (None, None)     # (stored, current) when resuming

    # ---------------------------------------------------------------- preparation
    @classmethod
    def prepare(cls, cfg: Mapping, resume: bool = False, overwrite: bool = False) -> "CILRun":
        """Validate, load data, build scenario and learner, check the output folder and load
        the latest checkpoint when resuming. Raises ConfigError / FileNotFoundError /
        ValueError for bad input (before any training)."""
        cfg = cfg if isinstance(cfg, RunConfig) else RunConfig.from_mapping(cfg)
        out = Path(cfg["out"])
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} exists and is not a folder")
        if (out / "config.json").exists() and not (resume or overwrite):
            raise ConfigError(f"{out} already holds a run (config.json); pass --resume to "
                              f"continue it, --overwrite to start over, or choose another --out")
        numerics = build_numerics(cfg)
        ds = load_data(cfg)
        scenario = build_scenario(cfg, ds)
        for name in seed_names(cfg["method"], scenario.n_tasks):
            scenario.seed_for(name)
        spec = network_spec(cfg, ds)
        learner = build_learner(cfg, scenario, spec, numerics)
        run = cls(cfg, ds, scenario, learner, spec, numerics, resume, overwrite)
        run.config_doc = run._config_doc()
        if resume and (out / "config.json").exists():
            run._check_resume()
        return run

    def _config_doc(self) -> dict:
        sc, ds, cfg = self.scenario, self.ds, self.cfg
        prescaled = cfg["scale"] == "minmax" and ds.meta.get("prescaled")
        return {
            "settings": cfg,
            "network": self.net_spec,
            "numerics_spec": self.numerics,
            "learner": self.learner.describe(),
            "dataset": {"name": ds.name, "source": ds.source, "synthetic": ds.synthetic,
                        "shape": list(ds.X.shape), "class_names": list(ds.class_names),
                        "scaled": "none (data set is prescaled to [-1, 1])" if prescaled
                        else cfg["scale"]},
            "scenario": sc.describe(),
            "seeds": {"master": sc.master_seed, **sc.seeds},
            "sr_streams": {"seed": sc.seeds["sr"],
                           "paths": [f"task{t}" for t in range(sc.n_tasks)],
                           "rule": "SRStream(seeds['sr'], f'task{t}'), fresh per task, shared "
                                   "by student and teacher"},
            "seed_rules": {
                "init": "model init seed (growth seeds derive from it and the class count)",
                "shuffle/task{t}": "default_rng(seed).permutation per epoch of task t",
                "augment/task{t}": "crop/flip draws of task t (when augment = true)",
                "exemplar": "random exemplar selection (herding is deterministic)",
                "bic_val/{t}": "BiC validation split of task t",
                "bic_stage2/task{t}": "BiC stage-2 batch order of task t"},
            "versions": versions(),
        }

    def _check_resume(self) -> None:
        old = read_json(self.out / "config.json")
        if not isinstance(old, dict):
            raise ConfigError(f"--resume: cannot read {self.out / 'config.json'}")
        new = jsonable(self.config_doc)
        diff = settings_diff(old.get("settings", {}), new["settings"])
        if diff:
            raise ConfigError(f"--resume: settings differ from the run in {self.out}: "
                              + ", ".join(f"{k} ({a!r} -> {b!r})" for k, a, b in diff))
        if old.get("scenario", {}).get("class_order") != new["scenario"]["class_order"]:
            raise ConfigError("--resume: the class order differs from the stored run")
        if "numerics_spec" in old and old["numerics_spec"] != new["numerics_spec"]:
            raise ConfigError(f"--resume: the numerics differ from the run in {self.out} "
                              f"(was the datapath file {self.cfg['numerics']!r} changed?)")
        self.version_change = (old.get("versions"), new["versions"])

    # ---------------------------------------------------------------- checkpoints
    def latest_checkpoint(self) -> Optional[Path]:
        found = checkpoints(self.ckpt_dir)
        return found[-1] if found else None

    def save_checkpoint(self, t: int) -> Path:
        arrays = self.learner.state_dict()
        arrays.update(self.record.arrays())
        meta = {"format": CHECKPOINT_FORMAT, "task": t, "n_tasks": self.scenario.n_tasks,
                "learner": self.learner.meta_state(), "trace_rows": trace_rows(self.trace_path),
                "classifiers": self.classifiers}
        return write_checkpoint(checkpoint_path(self.ckpt_dir, t), arrays, meta)

    def load_checkpoint(self, path: Path) -> dict:
        arrays, meta = read_checkpoint(path)
        self.learner.load_state(arrays, meta["learner"])
        self.record = Record.from_arrays(meta["classifiers"], arrays, meta["task"] + 1)
        self.start_task = meta["task"] + 1
        return meta

    # ---------------------------------------------------------------- execution
    def _trace_attrs(self) -> dict:
        nm, every = self.numerics, int(self.cfg["trace_every"])
        note = ("numerics fp32: no quantized matmuls, so there are no records" if nm.is_float
                else f"records of the student's quantized matmuls and quantizers at every "
                     f"{every}-th optimizer step (teacher and evaluation passes are not "
                     f"traced); appended after every epoch")
        return {"numerics": nm.name, "quantized": not nm.is_float, "trace_every": every,
                "note": note}

    def _prepare_output(self, progress: RunProgress) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        old, new = self.version_change
        if old != new:
            progress.warning(f"package versions differ from the stored run ({old} -> {new}); "
                             f"results may differ")
        ck = self.latest_checkpoint() if self.resume else None
        if ck is not None:
            meta = self.load_checkpoint(ck)
            self.checkpoint_meta = meta
            if self.trace_path.exists():
                try:
                    truncate_trace(self.trace_path, meta["trace_rows"])
                except OSError:
                    bad = self.trace_path.with_suffix(".h5.corrupt")
                    os.replace(self.trace_path, bad)
                    progress.warning(f"{self.trace_path} was unreadable (moved to {bad}); the "
                                     f"new trace starts after task {meta['task']}")
            if not self.trace_path.exists():
                init_trace_file(self.trace_path, self._trace_attrs())
        else:
            for name in OUTPUT_FILES:
                p = self.out / name
                if p.exists():
                    p.unlink()
            if self.ckpt_dir.exists():
                shutil.rmtree(self.ckpt_dir)
            init_trace_file(self.trace_path, self._trace_attrs())
        write_json(self.out / "config.json", self.config_doc)

    def execute(self, progress: Optional[RunProgress] = None) -> dict:
        """Train the remaining tasks, then write metrics.json, trace_summary.json and
        accuracy.png. Returns the metrics."""
        progress = progress or RunProgress()
        self._prepare_output(progress)
        sc = self.scenario
        trace = Trace(events=self.cfg["trace_events"] or None) if self.cfg["trace_every"] \
            else None
        if trace is not None and trace.event_limit:   # the limit holds across a resume
            rows = trace_rows(self.trace_path)
            trace.events_logged = rows.get("matmul_events", 0) + rows.get("quantize_events", 0)
        cost = self._cost_recorder()
        cb = _RunCallbacks(trace, self.cfg["trace_every"], self.trace_path, progress, cost)
        progress.run_start(sc.n_tasks, self.start_task)
        try:
            for t in range(self.start_task, sc.n_tasks):
                self.learner.learn_task(t, cb)
                cb.flush()
                _, y = sc.test_upto(t)
                self.record.add(y, self.learner.evaluate(t))
                cost.task_end(self.learner, t)
                self._write_cost(cost, complete=t == sc.n_tasks - 1)
                self.save_checkpoint(t)
                progress.task_end(t, 100.0 * np.mean(self.record.preds["cnn"][-1] == y)
                                  if len(y) else float("nan"))
        finally:
            progress.run_end()
        metrics = compute_metrics(self.record, sc)
        write_json(self.out / "metrics.json", metrics)
        write_json(self.out / "trace_summary.json", trace_summary(self.trace_path))
        plot_run(metrics, self.out / "accuracy.png",
                 title=f"{self.cfg['dataset']} · {self.cfg['method']} · {self.numerics.name} "
                       f"· seed {self.cfg['seed']}")
        return metrics


    # ---------------------------------------------------------------- cost.json
    def _cost_recorder(self) -> RunCostRecorder:
        """The recorder of the run's cost; a resumed run takes the finished tasks' costs from
        the cost.json it wrote before."""
        rec = RunCostRecorder()
        doc = read_json(self.out / "cost.json") if self.start_task else None
        if isinstance(doc, dict):
            rec.tasks = {t: tc for t, tc in tasks_from_doc(doc).items() if t < self.start_task}
        return rec

    def _write_cost(self, rec: RunCostRecorder, complete: bool) -> None:
        done = sorted(rec.tasks)
        complete = complete and done == list(range(self.scenario.n_tasks))
        write_json(self.out / "cost.json",
                   run_cost_doc(rec.tasks, load_energy_table(), self.numerics.name, complete))


def settings_diff(stored: Mapping, current: Mapping) -> list[tuple[str, object, object]]:
    """(key, stored, current) of every setting (but VOLATILE ones) in which a stored run's
    config.json settings differ from `current`; a setting added to intsim after the stored run
    was made counts with its default (for the protocol's settings: intsim's protocol)."""
    a = {k: v for k, v in stored.items() if k not in VOLATILE}
    b = {k: v for k, v in jsonable(current).items() if k not in VOLATILE}
    old_defaults = {**DEFAULTS, **PROTOCOLS["intsim"],
                    "feature_batch_size": a.get("eval_batch_size")}  # before it was a setting
    for k in set(b) - set(a):
        if k in old_defaults:
            a[k] = jsonable(old_defaults[k])
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def run(cfg: Mapping, resume: bool = False, overwrite: bool = False,
        progress: Optional[RunProgress] = None) -> dict:
    """prepare + execute; returns the metrics dict."""
    return CILRun.prepare(cfg, resume=resume, overwrite=overwrite).execute(progress)
