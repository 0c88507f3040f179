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
                     derived seed, SR stream layout, numerics spec, package versions, and the
                     data set's identity (source files with SHA-256, content hash;
                     intsim.datasets.identity), checked on resume
  metrics.json       aia, last, forgetting, bwt, acc_matrix, … of the CNN classifier, and the
                     same with the prefix nme_ for methods with nearest-mean-of-exemplars;
                     "cost": the headline of cost.json (pJ per step, per epoch, per run,
                     relative to fp32)
  trace.h5           per-layer saturation/rounding records of the student's quantized matmuls,
                     every trace_every-th optimizer step, appended after every epoch
  trace_summary.json totals of trace.h5 (saturation event rate, saturated outputs)
  cost.json          operation counts, memory traffic and energy (pJ, default 45 nm table) per
                     step, per epoch and for the whole run, per task, and the fp32 reference
                     (intsim.models.cost_run); rewritten after every task
  checkpoints/       taskNNN.npz after every task
  history.jsonl      one row per epoch: task, stage, epoch, loss and its terms, train accuracy,
                     lr, saturation events, seconds (intsim.experiments.history)
  accuracy.png       accuracy per task for each classifier + the accuracy matrix
  loss.png           training loss and train accuracy per epoch (from history.jsonl)

metrics.json is written last: a folder with a metrics.json holds a finished run.

The folder: `out` must be new, empty or an intsim run folder (intsim.experiments.outputs); a
folder that already holds a run needs resume or overwrite, and overwrite removes only
intsim's own files. The run holds the folder's OS lock from start to end
(intsim.formats.ownership): a second run into it fails at once with FolderBusy naming the
holder.

Resume: the newest valid checkpoint (checksum, task and layout checked; a corrupt newer one is
skipped with a warning) restores model, memory, predictions so far, step counter and SR stream
state; every other random choice is re-derived from (seed, task index), and trace.h5 is cut
back to its length at that checkpoint (or moved aside when it cannot be). A resumed run writes
the same metrics.json as an uninterrupted one. Progress is reported to a RunProgress
(intsim.experiments.progress).

Divergence: a non-finite loss, quantizer input or weight stops training (intsim.nn.training.
Diverged); metrics.json then holds status "diverged", where it happened (task, stage, epoch,
step, reason) and the metrics of the tasks finished before, and execute raises RunDiverged.
A normal run's metrics.json has no status key (status "ok" is implied), so it is unchanged.

Storage: a failed write (full disk, permissions) raises intsim.formats.atomic.StorageError
naming the file; trace.h5 keeps its last good rows, and the run resumes once there is room.
"""
from __future__ import annotations

import platform
from pathlib import Path
from typing import Mapping, Optional

import h5py
import numba
import numpy as np

from intsim._version import __version__
from intsim.core.trace import Trace
from intsim.datasets.identity import DatasetIdentityError, check_identity, dataset_identity
from intsim.experiments.builders import (build_learner, build_numerics, build_scenario,
                                         load_data, network_spec, seed_names)
from intsim.experiments.history import HISTORY_FILE, HistoryLog
from intsim.experiments.config import (DEFAULTS, PROTOCOLS, VOLATILE, ConfigError, RunConfig,
                                       dataset_label, resolve_config)
from intsim.experiments.outputs import check_output_folder, clear_run_folder, remove_leftovers
from intsim.experiments.plots import plot_history, plot_run
from intsim.experiments.progress import RunProgress
from intsim.experiments.records import Record, compute_metrics, trace_summary
from intsim.formats.energy_table import load_energy_table
from intsim.formats.jsonl import read_rows
from intsim.formats.ownership import hold, write_marker
from intsim.formats.run_folder import (CHECKPOINT_FORMAT, CheckpointError, append_trace,
                                       checkpoint_path, checkpoints, init_trace_file, jsonable,
                                       read_checkpoint, read_json, remove_space_probe,
                                       repair_trace, trace_rows,
                                       write_checkpoint, write_json)
from intsim.models.cost_run import RunCostRecorder, cost_headline, run_cost_doc, tasks_from_doc
from intsim.models.learners import Callbacks
from intsim.nn.training import Diverged

__all__ = ["CILRun", "run", "resolve_config", "ConfigError", "RunConfig", "RunDiverged"]


class RunDiverged(RuntimeError):
    """Training diverged; metrics.json holds status "diverged" (module docstring).
    `where`: task, stage, epoch, step, reason; `metrics`: the document written."""

    def __init__(self, out: Path, diverged: Diverged, metrics: dict):
        super().__init__(f"{diverged}; wrote {out / 'metrics.json'} with status \"diverged\" "
                         f"and the metrics of the {metrics['n_tasks']} task(s) finished before")
        self.out, self.where, self.metrics = out, diverged.where(), metrics


def versions() -> dict:
    """Versions of the packages a run's bits depend on (recorded in config.json)."""
    return {"python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "intsim": __version__, "h5py": h5py.__version__}


class _RunCallbacks(Callbacks):
    """The learner's hooks during a run: a trace attached every trace_every-th step, the
    trace flushed to trace.h5 after every epoch, progress forwarded to a RunProgress."""

    def __init__(self, trace: Optional[Trace], trace_every: int, trace_path: Path,
                 progress: RunProgress, cost: Optional[RunCostRecorder] = None,
                 history: Optional[HistoryLog] = None):
        self.trace, self.every, self.path, self.progress = trace, trace_every, trace_path, progress
        self.cost, self.history = cost, history
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
            append_trace(self.trace, self.path)
            self.trace.clear()

    def epoch_end(self, learner, t, epoch, mean_loss):
        if self.history is not None:
            self.history.epoch_end(learner, t, epoch, mean_loss, *self._epoch_events())
        self.flush()
        self.progress.epoch_end(t, epoch, mean_loss)

    def _epoch_events(self) -> tuple[Optional[int], Optional[int]]:
        """(saturation events, MACs) of the matmuls traced since the last flush (None, None
        when none was traced)."""
        mm = [r for r in self.trace.records if r["op"] == "matmul"] if self.trace else []
        if not mm:
            return None, None
        return sum(r["events"] for r in mm), sum(r["macs"] for r in mm)

    def stage(self, learner, t, name, epochs):
        if name == "train" and self.cost is not None:
            self.cost.task_start(learner, t)
        if self.history is not None:
            self.history.stage_start(name)
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
        check_run_folder(Path(cfg["out"]), resume, overwrite)
        numerics = build_numerics(cfg)
        ds = load_data(cfg)
        scenario = build_scenario(cfg, ds)
        for name in seed_names(cfg["method"], scenario.n_tasks):
            scenario.seed_for(name)
        spec = network_spec(cfg, ds)
        learner = build_learner(cfg, scenario, spec, numerics)
        run = cls(cfg, ds, scenario, learner, spec, numerics, resume, overwrite)
        run.config_doc = run._config_doc()
        if resume and (run.out / "config.json").exists():
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
            "dataset_identity": dataset_identity(ds),
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
        if isinstance(old.get("dataset_identity"), dict):
            try:
                check_identity(old["dataset_identity"], self.ds)
            except DatasetIdentityError as e:
                raise ConfigError(f"--resume: {e}; the run in {self.out} was trained on other "
                                  f"data (restore the file, or start over with --overwrite)"
                                  ) from None
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

    def load_newest_valid_checkpoint(self, progress: RunProgress) -> Optional[dict]:
        """Load the newest checkpoint that passes every check (a corrupt newer one is skipped
        with a warning); None when there is none at all; CheckpointError when none is valid."""
        found = checkpoints(self.ckpt_dir)
        problems = []
        for path in reversed(found):
            try:
                meta = self.load_checkpoint(path)
            except CheckpointError as e:
                problems.append(str(e))
                progress.warning(f"skipping checkpoint {e}")
                self.learner = build_learner(self.cfg, self.scenario, self.net_spec,
                                             self.numerics)          # undo a partial load
                self.record = Record(self.classifiers)
                continue
            if problems:
                progress.warning(f"resuming from the older checkpoint {path.name} (after "
                                 f"task {meta['task']})")
            return meta
        if problems:
            raise CheckpointError(f"--resume: no valid checkpoint in {self.ckpt_dir}: "
                                  + "; ".join(problems) + "; start over with --overwrite")
        return None

    def save_checkpoint(self, t: int) -> Path:
        arrays = self.learner.state_dict()
        arrays.update(self.record.arrays())
        meta = {"format": CHECKPOINT_FORMAT, "task": t, "n_tasks": self.scenario.n_tasks,
                "learner": self.learner.meta_state(), "trace_rows": trace_rows(self.trace_path),
                "classifiers": self.classifiers}
        return write_checkpoint(checkpoint_path(self.ckpt_dir, t), arrays, meta)

    def load_checkpoint(self, path: Path) -> dict:
        """Restore the state after the task of checkpoint `path`; CheckpointError naming it
        when it is unreadable, corrupt or not a checkpoint of this run."""
        arrays, meta = read_checkpoint(path)
        task = int(path.stem[4:])
        problem = (
            "format" if meta.get("format") != CHECKPOINT_FORMAT else
            f"task {meta.get('task')!r} (the file name says {task})" if meta.get("task") != task
            else f"{meta.get('n_tasks')!r} tasks (this run has {self.scenario.n_tasks})"
            if meta.get("n_tasks") != self.scenario.n_tasks else
            f"classifiers {meta.get('classifiers')!r}"
            if meta.get("classifiers") != self.classifiers else
            "no learner state" if not isinstance(meta.get("learner"), dict) else None)
        if problem is not None:
            raise CheckpointError(f"{path}: not a checkpoint of this run ({problem})")
        try:
            self.learner.load_state(arrays, meta["learner"])
            self.record = Record.from_arrays(meta["classifiers"], arrays, task + 1)
        except (KeyError, ValueError, TypeError, IndexError) as e:
            raise CheckpointError(f"{path}: its arrays do not fit this run ({type(e).__name__}: "
                                  f"{e})") from None
        self.start_task = task + 1
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
        """Under the folder's lock: check the folder again, mark it, then either restore the
        newest valid checkpoint (resume) or clear intsim's own files (a fresh start)."""
        check_run_folder(self.out, self.resume, self.overwrite)
        if self.resume and (self.out / "config.json").exists():
            self._check_resume()
        write_marker(self.out, "run")
        remove_leftovers(self.out)
        old, new = self.version_change
        if old != new:
            progress.warning(f"package versions differ from the stored run ({old} -> {new}); "
                             f"results may differ")
        meta = self.load_newest_valid_checkpoint(progress) if self.resume else None
        if meta is not None:
            self.checkpoint_meta = meta
            if self.trace_path.exists():
                problem = repair_trace(self.trace_path, meta["trace_rows"])
                if problem:
                    progress.warning(f"{problem}; the new trace starts after task {meta['task']}")
            if not self.trace_path.exists():
                init_trace_file(self.trace_path, self._trace_attrs())
        else:
            clear_run_folder(self.out)
            init_trace_file(self.trace_path, self._trace_attrs())
        write_json(self.out / "config.json", self.config_doc)

    def execute(self, progress: Optional[RunProgress] = None) -> dict:
        """Train the remaining tasks, then write trace_summary.json, accuracy.png and, last,
        metrics.json. Returns the metrics. Holds the folder's lock throughout (FolderBusy when
        another process holds it); RunDiverged when training diverged; StorageError when a
        file cannot be written."""
        progress = progress or RunProgress()
        with hold(self.out, "intsim cil"), np.errstate(over="ignore", invalid="ignore",
                                                       divide="ignore"):
            # (a diverging run overflows; it is detected and reported, not warned about)
            try:
                self._prepare_output(progress)
                try:
                    self._train(progress)
                except Diverged as e:
                    metrics = {"status": "diverged", "diverged": e.where(),
                               **self._metrics_so_far(), **self._cost_entry()}
                    self._write_results(metrics)
                    raise RunDiverged(self.out, e, metrics) from None
                metrics = {**compute_metrics(self.record, self.scenario),
                           **self._cost_entry()}
                self._write_results(metrics)
            finally:
                remove_space_probe(self.out)
        return metrics

    def _train(self, progress: RunProgress) -> None:
        sc = self.scenario
        trace = Trace(events=self.cfg["trace_events"] or None) if self.cfg["trace_every"] \
            else None
        if trace is not None and trace.event_limit:   # the limit holds across a resume
            rows = trace_rows(self.trace_path)
            trace.events_logged = rows.get("matmul_events", 0) + rows.get("quantize_events", 0)
        cost = self._cost_recorder()
        history = HistoryLog(self.out / HISTORY_FILE)
        history.start(self.start_task)
        cb = _RunCallbacks(trace, self.cfg["trace_every"], self.trace_path, progress, cost,
                           history)
        progress.run_start(sc.n_tasks, self.start_task)
        try:
            for t in range(self.start_task, sc.n_tasks):
                try:
                    self.learner.learn_task(t, cb)
                except Diverged:
                    cb.flush()                    # the diverged epoch's records are kept
                    raise
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

    def _metrics_so_far(self) -> dict:
        """The metrics of the tasks finished so far (n_tasks 0 and no values when none)."""
        if self.record.y_true:
            return compute_metrics(self.record, self.scenario)
        return {"units": "percent", "n_tasks": 0, "classifiers": self.classifiers}

    def _write_results(self, metrics: dict) -> None:
        """trace_summary.json, accuracy.png (when a task finished), loss.png, then
        metrics.json."""
        write_json(self.out / "trace_summary.json", trace_summary(self.trace_path))
        status = "" if "status" not in metrics else f" · {metrics['status'].upper()}"
        title = (f"{dataset_label(self.cfg['dataset'])} · {self.cfg['method']} · "
                 f"{self.numerics.name} · seed {self.cfg['seed']}{status}")
        if metrics.get("n_tasks"):
            plot_run(metrics, self.out / "accuracy.png", title=title)
        rows = read_rows(self.out / HISTORY_FILE)
        if rows:
            plot_history(rows, self.out / "loss.png", title=title)
        write_json(self.out / "metrics.json", metrics)

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

    def _cost_entry(self) -> dict:
        """{"cost": the headline of cost.json} for metrics.json ({} before any task ended)."""
        doc = read_json(self.out / "cost.json")
        return {"cost": cost_headline(doc)} if isinstance(doc, dict) else {}


def check_run_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """ConfigError unless `out` may receive this run: new, empty, or an intsim run folder —
    which, when it already holds a run (config.json), needs resume or overwrite."""
    if check_output_folder(out, "run") and (out / "config.json").exists() \
            and not (resume or overwrite):
        raise ConfigError(f"{out} already holds a run (config.json); pass --resume to "
                          f"continue it, --overwrite to start over, or choose another --out")


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
