"""One class-incremental run: configuration, data, learner, checkpoints, trace, metrics, plots.

    cfg = resolve_config({"dataset": "watch", "method": "icarl", "numerics": "hdqt",
                          "out": "runs/watch-icarl"})
    run = CILRun.prepare(cfg)            # validates, loads data, builds scenario and learner
    metrics = run.execute()              # trains every task, writes the output folder

Configuration precedence: built-in defaults < data-set defaults (DATASET_DEFAULTS, after the
paper's settings table) < the TOML file < command-line flags.

Numerics: `numerics` is a preset name or the path of a datapath TOML file (intsim.datapath,
read with Numerics.from_toml); the optional `numerics_overrides` table then replaces fields of
it (see apply_numerics_overrides). The concrete Numerics is written to config.json as
`numerics_spec`, and a resume refuses a run whose numerics_spec differs.

Output folder:
  config.json        the fully resolved settings, scenario (class order, subject split), every
                     derived seed, SR stream layout, numerics spec, package versions
  metrics.json       aia, last, forgetting, bwt, acc_matrix, … of the CNN classifier, and the
                     same with the prefix nme_ for methods with nearest-mean-of-exemplars
  trace.h5           per-layer saturation/rounding records of the student's quantized matmuls,
                     every trace_every-th optimizer step, appended after every epoch
  trace_summary.json totals of trace.h5 (saturation event rate, saturated outputs)
  checkpoints/       taskNNN.npz after every task (atomic: temp file + os.replace)
  accuracy.png       accuracy per task for each classifier + the accuracy matrix

Resume: the latest checkpoint restores model, memory, predictions so far, step counter and SR
stream state; every other random choice is re-derived from (seed, task index), and trace.h5 is
cut back to its length at that checkpoint. A resumed run writes the same metrics.json as an
uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any, Optional

import numpy as np

from intsim.datasets.registry import DATASET_NAMES
from intsim.formats.atomic import atomic_path, atomic_write_text
from intsim.models.learners import METHOD_NAMES
from intsim.core.numerics import ACCUMULATORS, HADAMARD_RULES, OPERANDS, PRESET_NAMES, preset

NETWORKS = ("fcnet", "resnet32", "smallcnn")
SCALINGS = ("minmax", "cifar", "none")
CIFAR_MEAN = (0.5071, 0.4867, 0.4408)
CIFAR_STD = (0.2675, 0.2565, 0.2761)


class ConfigError(ValueError):
    """A bad setting or command-line/TOML input (reported without a traceback, exit code 2)."""


# ------------------------------------------------------------------------------ settings
#: every setting with its built-in default (None = supplied by the data-set defaults)
DEFAULTS: dict[str, Any] = {
    "dataset": None, "data_dir": None, "dataset_params": {},
    "method": None, "method_params": {}, "numerics": None, "numerics_overrides": {},
    "seed": 0,
    "network": None, "hidden": None,
    "epochs": None, "lr": None, "milestones": [], "lr_gamma": 0.1, "momentum": 0.9,
    "weight_decay": 2e-4, "batch_size": None, "eval_batch_size": 1024,
    "memory": None, "memory_mode": "fixed_total", "exemplar_selection": "herding",
    "init_cls": None, "increment": None,
    "split": "auto", "n_test_subjects": None, "test_fraction": None,
    "order_rule": "seedsequence", "scale": "minmax", "augment": False,
    "trace_every": 20, "out": None,
}

_HAR = dict(network="fcnet", hidden=None, epochs=100, lr=0.01, milestones=[], batch_size=128,
            memory=200, init_cls=2, increment=2, scale="minmax")
#: data-set defaults (hdqt.md settings table for DSADS/PAMAP2/HAPT/CIFAR-100; the others are ours)
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "dsads": {**_HAR, "n_test_subjects": 1},                        # 7 / 1 subjects
    "pamap2": {**_HAR, "n_test_subjects": 1},                       # 5 / 1
    "hapt": {**_HAR, "split": "subjects", "n_test_subjects": 5},    # 23 / 5, not the official
    "dsads_synthetic": {**_HAR, "n_test_subjects": 1},
    "synthetic": {**_HAR},                                          # 4 / 1 (test_fraction 0.2)
    "watch": {**_HAR},                                              # 8 / 2 (test_fraction 0.2)
    "digits": {**_HAR, "epochs": 30, "lr": 0.05, "test_fraction": 0.2, "scale": "none"},
    "fashion_mnist": {**_HAR, "hidden": 256, "epochs": 10, "lr": 0.05, "memory": 2000,
                      "scale": "none"},
    "cifar100": {"network": "resnet32", "epochs": 170, "lr": 0.05, "milestones": [60, 100, 140],
                 "lr_gamma": 0.1, "batch_size": 128, "memory": 2000, "init_cls": 20,
                 "increment": 20, "scale": "cifar", "augment": True, "eval_batch_size": 256},
}

_INT = {"seed", "epochs", "batch_size", "eval_batch_size", "memory", "init_cls", "increment",
        "trace_every", "hidden", "n_test_subjects"}
_FLOAT = {"lr", "lr_gamma", "momentum", "weight_decay", "test_fraction"}
_STR = {"dataset", "data_dir", "method", "numerics", "network", "memory_mode",
        "exemplar_selection", "split", "order_rule", "scale", "out"}
_CHOICES = {"dataset": DATASET_NAMES, "method": METHOD_NAMES, "numerics": PRESET_NAMES,
            "network": NETWORKS, "scale": SCALINGS, "memory_mode": ("fixed_total", "per_class"),
            "exemplar_selection": ("herding", "random"),
            "split": ("auto", "official", "subjects", "samples"),
            "order_rule": ("seedsequence", "pycil")}
#: settings that may change between a run and its resumption
_VOLATILE = ("out",)


def load_toml(path: os.PathLike | str) -> dict:
    """Read a TOML config; keys may use '-' or '_'."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {p}: invalid TOML: {e}") from None
    return {k.replace("-", "_"): v for k, v in data.items()}


def _check_value(key: str, v: Any) -> Any:
    if v is None:
        return None
    if key in _INT:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ConfigError(f"{key}: expected an integer, got {v!r}")
        v = int(v)
        if key == "seed" and v < 0:
            raise ConfigError(f"seed: must be >= 0, got {v}")
        if key in ("epochs", "memory", "trace_every") and v < 0:
            raise ConfigError(f"{key}: must be >= 0, got {v}")
        if key in ("batch_size", "eval_batch_size", "init_cls", "increment", "hidden",
                   "n_test_subjects") and v < 1:
            raise ConfigError(f"{key}: must be >= 1, got {v}")
    elif key in _FLOAT:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {v!r}")
        v = float(v)
        if not math.isfinite(v) or (key == "lr" and v <= 0):
            raise ConfigError(f"{key}: bad value {v}")
    elif key in _STR:
        if not isinstance(v, (str, os.PathLike)):
            raise ConfigError(f"{key}: expected a string, got {v!r}")
        v = os.fspath(v)
        if key == "numerics" and v not in PRESET_NAMES:
            if not v.endswith(".toml"):
                raise ConfigError(f"numerics: unknown value {v!r}; expected one of "
                                  f"{', '.join(PRESET_NAMES)} or a datapath .toml file")
            v = os.fspath(Path(v).expanduser())
        elif key in _CHOICES and v not in _CHOICES[key]:
            raise ConfigError(f"{key}: unknown value {v!r}; expected one of "
                              f"{', '.join(_CHOICES[key])}")
    elif key == "milestones":
        if not isinstance(v, (list, tuple)) or not all(
                isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in v):
            raise ConfigError(f"milestones: expected a list of positive epochs, got {v!r}")
        v = sorted(int(m) for m in v)
    elif key == "augment":
        if not isinstance(v, bool):
            raise ConfigError(f"augment: expected true/false, got {v!r}")
    elif key in ("dataset_params", "method_params"):
        if not isinstance(v, dict):
            raise ConfigError(f"{key}: expected a table, got {v!r}")
        v = dict(v)
    elif key == "numerics_overrides":
        if not isinstance(v, dict):
            raise ConfigError(f"{key}: expected a table, got {v!r}")
        known = OPERANDS + ACCUMULATORS + ("hadamard", "name")
        bad = sorted(set(v) - set(known))
        if bad:
            raise ConfigError(f"numerics_overrides: unknown key(s) {bad}; known: "
                              f"{', '.join(known)}")
        v = {k: dict(x) if isinstance(x, dict) else x for k, x in v.items()}
    return v


#: TOML words for None in numerics_overrides (the datapath schema's spelling)
_NONE_WORDS = {"tile": "none", "tile_sum_bits": "none", "signed": "auto", "scale": "dynamic"}


def apply_numerics_overrides(base, overrides: Optional[dict]):
    """`base` (a Numerics) with the fields of `overrides` replaced.

    Keys: an operand (w_fwd a_fwd w_bwd a_bwd g_in g_w) or accumulator (acc_fwd acc_in acc_w)
    name -> a table of QuantSpec / Accumulator fields merged over the base's spec (over the
    class defaults when the base has none), or "none" to remove it (float32); `hadamard` ->
    "none" | "largest_pow2" | "pad"; `name` -> the Numerics name (default: base name + "*").
    In a table, tile / tile_sum_bits "none", signed "auto" and scale "dynamic" mean None.
    Raises ConfigError naming the key for anything invalid.
    """
    from intsim.core.accumulator import Accumulator
    from intsim.core.numerics import QuantSpec
    if not overrides:
        return base
    changes: dict[str, Any] = {}
    for key, v in overrides.items():
        where = f"numerics_overrides.{key}"
        if key in OPERANDS or key in ACCUMULATORS:
            cls = QuantSpec if key in OPERANDS else Accumulator
            if v is None or v == "none":
                changes[key] = None
                continue
            if not isinstance(v, dict):
                raise ConfigError(f"{where}: expected a table of {cls.__name__} fields or "
                                  f"\"none\", got {v!r}")
            fields = {f.name for f in dataclasses.fields(cls)}
            bad = sorted(set(v) - fields)
            if bad:
                raise ConfigError(f"{where}: unknown field(s) {bad}; known: "
                                  f"{', '.join(sorted(fields))}")
            vals = {k: (None if _NONE_WORDS.get(k) == x else x) for k, x in v.items()}
            cur = getattr(base, key)
            try:
                changes[key] = (dataclasses.replace(cur, **vals) if cur is not None
                                else cls(**vals))
            except (TypeError, ValueError) as e:
                raise ConfigError(f"{where}: {e}") from None
        elif key == "hadamard":
            h = None if v in (None, "none") else v
            if h not in HADAMARD_RULES:
                raise ConfigError(f"{where}: expected \"none\", \"largest_pow2\" or \"pad\", "
                                  f"got {v!r}")
            changes[key] = h
        elif key == "name":
            if not isinstance(v, str):
                raise ConfigError(f"{where}: expected a string, got {v!r}")
            changes[key] = v
        else:
            raise ConfigError(f"numerics_overrides: unknown key {key!r}")
    changes.setdefault("name", f"{base.name}*")
    try:
        return base.replace(**changes)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"numerics_overrides: {e}") from None


def build_numerics(cfg: dict):
    """The concrete Numerics of a resolved config: the preset or datapath TOML file named by
    `numerics`, with `numerics_overrides` applied."""
    name = cfg["numerics"]
    if name in PRESET_NAMES:
        base = preset(name)
    else:
        from intsim.core.numerics import Numerics
        try:
            base = Numerics.from_toml(name)
        except (OSError, ValueError) as e:
            raise ConfigError(f"numerics: {e}") from None
    return apply_numerics_overrides(base, cfg.get("numerics_overrides"))


def resolve_config(cli: Optional[dict] = None, config_file: Optional[os.PathLike | str] = None
                   ) -> dict:
    """Merge defaults < data-set defaults < TOML file < command line (None = not given)."""
    user: dict[str, Any] = {}
    if config_file is not None:
        user.update(load_toml(config_file))
    user.update({k.replace("-", "_"): v for k, v in (cli or {}).items() if v is not None})
    unknown = sorted(set(user) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown}; known: {', '.join(sorted(DEFAULTS))}")
    user = {k: _check_value(k, v) for k, v in user.items()}
    for key in ("dataset", "method", "numerics", "out"):
        if user.get(key) is None:
            raise ConfigError(f"missing setting {key!r} (give --{key.replace('_', '-')} or put "
                              f"it in the --config file)")
    cfg = dict(DEFAULTS)
    cfg.update(DATASET_DEFAULTS[user["dataset"]])
    cfg.update(user)
    cfg["out"] = os.fspath(Path(cfg["out"]).expanduser())
    if cfg["data_dir"] is not None:
        cfg["data_dir"] = os.fspath(Path(cfg["data_dir"]).expanduser())
    if cfg["n_test_subjects"] is not None and cfg["test_fraction"] is not None:
        if "n_test_subjects" not in user:
            cfg["n_test_subjects"] = None           # the user chose a fraction instead
        elif "test_fraction" not in user:
            cfg["test_fraction"] = None
    return cfg


# ------------------------------------------------------------------------------ setup
def _versions() -> dict:
    import numba
    import intsim
    v = {"python": platform.python_version(), "numpy": np.__version__,
         "numba": numba.__version__, "intsim": intsim.__version__}
    try:
        import h5py
        v["h5py"] = h5py.__version__
    except ImportError:  # pragma: no cover
        pass
    return v


def _jsonable(obj: Any) -> Any:
    """JSON-ready copy: dataclasses -> dicts, NumPy -> Python, NaN/inf -> None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    return repr(obj)


def _write_json_atomic(path: Path, obj: Any) -> None:
    atomic_write_text(os.fspath(path), json.dumps(_jsonable(obj), indent=2) + "\n")


def _cifar_normalize(X_train, X_test):
    m = np.asarray(CIFAR_MEAN, np.float32).reshape(1, 3, 1, 1)
    s = np.asarray(CIFAR_STD, np.float32).reshape(1, 3, 1, 1)
    return (X_train - m) / s, (X_test - m) / s


def load_data(cfg: dict):
    """The Dataset for cfg (shape adapted to the network)."""
    from intsim.datasets import load_dataset
    params = dict(cfg["dataset_params"])
    if cfg["dataset"] in ("digits", "fashion_mnist"):
        params.setdefault("flatten", cfg["network"] == "fcnet")
    ds = load_dataset(cfg["dataset"], cfg["data_dir"], **params)
    if cfg["network"] == "fcnet" and ds.X.ndim == 4:
        ds = ds.replace(X=ds.X.reshape(len(ds), -1), feature_names=None)
    if cfg["network"] != "fcnet" and ds.X.ndim != 4:
        raise ConfigError(f"network {cfg['network']!r} needs image data (n, C, H, W); "
                          f"{cfg['dataset']} gives {tuple(ds.X.shape)} (use network = 'fcnet')")
    return ds


def network_spec(cfg: dict, ds) -> dict:
    if cfg["network"] == "fcnet":
        d = int(ds.X.shape[1])
        h = cfg["hidden"] or d
        return {"type": "fcnet", "in_dim": d, "hidden": h, "feature_dim": h, "n_hidden": 0,
                "note": "Linear(no bias)+ReLU: in_dim -> hidden -> feature_dim"}
    if cfg["network"] == "resnet32":
        return {"type": "resnet32", "in_channels": int(ds.X.shape[1]), "feature_dim": 64}
    return {"type": "smallcnn", "in_channels": int(ds.X.shape[1]), "channels": [32, 64],
            "feature_dim": 64}


def backbone_factory(spec: dict, numerics):
    from intsim.models.networks import FCNet, SmallCNN, resnet32

    def make(seed: int):
        if spec["type"] == "fcnet":
            return FCNet(spec["in_dim"], spec["hidden"], spec["feature_dim"], spec["n_hidden"],
                         numerics=numerics, seed=seed)
        if spec["type"] == "resnet32":
            return resnet32(spec["in_channels"], numerics=numerics, seed=seed)
        return SmallCNN(spec["in_channels"], tuple(spec["channels"]), numerics=numerics,
                        seed=seed)
    return make


def build_scenario(cfg: dict, ds):
    from intsim.datasets import minmax_preprocess
    from intsim.datasets.scenario import Scenario
    prep = None
    if cfg["scale"] == "minmax" and not ds.meta.get("prescaled", False):
        prep = minmax_preprocess()
    elif cfg["scale"] == "cifar":
        prep = _cifar_normalize
    return Scenario.from_dataset(
        ds, init_cls=cfg["init_cls"], increment=cfg["increment"], seed=cfg["seed"],
        n_test_subjects=cfg["n_test_subjects"], test_fraction=cfg["test_fraction"],
        memory_size=cfg["memory"], memory_mode=cfg["memory_mode"], order_rule=cfg["order_rule"],
        preprocess=prep, name=cfg["dataset"], split=cfg["split"])


def seed_names(method: str, n_tasks: int) -> list[str]:
    """Every seed name a run derives (recorded in config.json before training starts)."""
    names = ["init", "sr", "exemplar"]
    for t in range(n_tasks):
        names += [f"shuffle/task{t}", f"augment/task{t}"]
        if method == "bic" and t > 0:
            names += [f"bic_val/{t}", f"bic_stage2/task{t}"]
    return names


# ------------------------------------------------------------------------------ record
class Record:
    """Per-task labels and predictions of each classifier (the raw material of metrics)."""

    def __init__(self, classifiers: list[str]):
        self.classifiers = list(classifiers)
        self.y_true: list[np.ndarray] = []
        self.preds: dict[str, list[np.ndarray]] = {c: [] for c in self.classifiers}

    def add(self, y_true: np.ndarray, preds: dict[str, np.ndarray]) -> None:
        self.y_true.append(np.asarray(y_true, np.int64))
        for c in self.classifiers:
            self.preds[c].append(np.asarray(preds[c], np.int64))

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"record/y_true/{t}": y for t, y in enumerate(self.y_true)}
        for c in self.classifiers:
            out.update({f"record/{c}/{t}": p for t, p in enumerate(self.preds[c])})
        return out

    @classmethod
    def from_arrays(cls, classifiers: list[str], arrays: dict, n: int) -> "Record":
        r = cls(classifiers)
        for t in range(n):
            r.add(arrays[f"record/y_true/{t}"],
                  {c: arrays[f"record/{c}/{t}"] for c in classifiers})
        return r


def compute_metrics(record: Record, scenario) -> dict:
    """metrics.json content (percent; NaN -> null). Keys without prefix: CNN classifier."""
    from intsim.models.metrics import summarize_run
    task_ids = [scenario.task_of(y) for y in record.y_true]
    out: dict[str, Any] = {
        "units": "percent", "n_tasks": len(record.y_true), "classifiers": record.classifiers,
        "forgetting_definition": "chaudhry: mean_{j<T-1} max_{l in [j,T-2]} a[l,j] - a[T-1,j]",
        "class_forgetting_definition": "paper code: mean over seen classes of (best per-class "
                                       "accuracy so far - current), after the last task",
    }
    for clf in record.classifiers:
        s = summarize_run(record.y_true, record.preds[clf], task_ids,
                          n_classes=scenario.n_classes)
        p = "" if clf == "cnn" else f"{clf}_"
        out.update({
            f"{p}aia": s["aia"], f"{p}last": s["last"], f"{p}forgetting": s["forgetting"],
            f"{p}bwt": s["bwt"], f"{p}acc_matrix": s["matrix"],
            f"{p}accuracy_curve": s["A"], f"{p}class_forgetting": s["class_forgetting"],
            f"{p}macro_f1": s["last_macro_f1"], f"{p}macro_f1_curve": s["macro_f1"],
        })
    return _jsonable(out)


# ------------------------------------------------------------------------------ trace file
TRACE_GROUP = "trace"


def _trace_rows(path: Path) -> dict[str, int]:
    import h5py
    rows = {}
    if not path.exists():
        return rows
    with h5py.File(path, "r") as f:
        for op in ("matmul", "quantize"):
            key = f"{TRACE_GROUP}/{op}"
            if key in f and "step" in f[key]:
                rows[op] = int(f[key]["step"].shape[0])
    return rows


def _truncate_trace(path: Path, rows: dict[str, int]) -> None:
    """Cut every column of trace.h5 back to the lengths recorded in a checkpoint."""
    import h5py
    with h5py.File(path, "a") as f:
        for op in ("matmul", "quantize"):
            key = f"{TRACE_GROUP}/{op}"
            if key not in f:
                continue
            n = rows.get(op, 0)
            for name, d in f[key].items():
                if d.shape[0] > n:
                    d.resize(n, axis=0)


def _init_trace_file(path: Path, cfg: dict, numerics) -> None:
    import h5py
    with h5py.File(path, "w") as f:
        f.attrs["numerics"] = numerics.name
        f.attrs["quantized"] = not numerics.is_float
        f.attrs["trace_every"] = int(cfg["trace_every"])
        if numerics.is_float:
            f.attrs["note"] = ("numerics fp32: no quantized matmuls, so there are no records")
        else:
            f.attrs["note"] = (f"records of the student's quantized matmuls and quantizers at "
                               f"every {cfg['trace_every']}-th optimizer step (teacher and "
                               f"evaluation passes are not traced); appended after every epoch")


def trace_summary(path: Path) -> dict:
    """Totals over trace.h5: saturation event rate (events per accumulation opportunity: per
    tile for clamp_tile, per MAC otherwise), fraction of saturated outputs, per layer."""
    import h5py
    from intsim.core.trace import read_hdf5
    out: dict[str, Any] = {"records": 0, "event_rate": None, "saturated_output_fraction": None,
                           "layers": []}
    if not path.exists():
        return out
    with h5py.File(path, "r") as f:
        out["numerics"] = str(f.attrs.get("numerics", ""))
        out["quantized"] = bool(f.attrs.get("quantized", False))
        has = f"{TRACE_GROUP}/matmul" in f
    if not has:
        return out
    df = read_hdf5(str(path), TRACE_GROUP, "matmul")
    if df.empty:
        return out
    opp = np.where(df["mode"] == "clamp_tile", df["tiles"], df["macs"]).astype(np.float64)
    df = df.assign(opportunities=opp)
    out["records"] = int(len(df))
    out["event_rate"] = float(df["events"].sum() / max(opp.sum(), 1.0))
    out["saturated_output_fraction"] = float(df["outputs_affected"].sum()
                                             / max(float(df["outputs"].sum()), 1.0))
    for label, g in df.groupby("label", sort=True):
        out["layers"].append({
            "label": label, "records": int(len(g)), "events": int(g["events"].sum()),
            "event_rate": float(g["events"].sum() / max(g["opportunities"].sum(), 1.0)),
            "saturated_output_fraction": float(g["outputs_affected"].sum()
                                               / max(float(g["outputs"].sum()), 1.0)),
            "max_abs_total": float(g["max_abs_total"].max())})
    return out


# ------------------------------------------------------------------------------ callbacks
class _RunCallbacks:
    """Trace attachment every trace_every steps, trace flush per epoch, progress bars."""

    def __init__(self, trace, trace_every: int, trace_path: Path, quiet: bool):
        self.trace, self.every, self.path, self.quiet = trace, trace_every, trace_path, quiet
        self.bar = None
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
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{mean_loss:.4f}")
            self.bar.update(1)

    def stage(self, learner, t, name, epochs):
        from tqdm import tqdm
        self.close()
        self.bar = tqdm(total=epochs, desc=f"task {t} {name}", leave=False, disable=self.quiet,
                        file=sys.stderr, dynamic_ncols=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ------------------------------------------------------------------------------ the run
class CILRun:
    """A prepared run (see module docstring). Build with CILRun.prepare(cfg)."""

    def __init__(self, cfg, ds, scenario, learner, net_spec, numerics, resume, overwrite):
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

    # ---------------------------------------------------------------- preparation
    @classmethod
    def prepare(cls, cfg: dict, resume: bool = False, overwrite: bool = False) -> "CILRun":
        """Validate, load data, build scenario and learner, check the output folder and load
        the latest checkpoint when resuming. Raises ConfigError / FileNotFoundError /
        ValueError for bad input (before any training)."""
        from intsim.models.learners import TrainSettings, make_learner
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
        train = TrainSettings(epochs=cfg["epochs"], lr=cfg["lr"], batch_size=cfg["batch_size"],
                              momentum=cfg["momentum"], weight_decay=cfg["weight_decay"],
                              milestones=tuple(cfg["milestones"]), lr_gamma=cfg["lr_gamma"],
                              eval_batch_size=cfg["eval_batch_size"], augment=cfg["augment"],
                              exemplar_selection=cfg["exemplar_selection"])
        try:
            learner = make_learner(cfg["method"], scenario, backbone_factory(spec, numerics),
                                   numerics, train, **cfg["method_params"])
        except TypeError as e:
            raise ConfigError(f"method_params: {e}") from None
        run = cls(cfg, ds, scenario, learner, spec, numerics, resume, overwrite)
        run.config_doc = run._config_doc()
        if resume and (out / "config.json").exists():
            run._check_resume()
        return run

    def _config_doc(self) -> dict:
        sc = self.scenario
        return {
            "settings": self.cfg,
            "network": self.net_spec,
            "numerics_spec": self.numerics,
            "learner": self.learner.describe(),
            "dataset": {"name": self.ds.name, "source": self.ds.source,
                        "synthetic": self.ds.synthetic, "shape": list(self.ds.X.shape),
                        "class_names": list(self.ds.class_names),
                        "scaled": self.cfg["scale"] if not (self.cfg["scale"] == "minmax" and
                                                            self.ds.meta.get("prescaled"))
                        else "none (data set is prescaled to [-1, 1])"},
            "scenario": sc.describe(),
            "seeds": {"master": sc.master_seed, **sc.seeds},
            "sr_streams": {"seed": sc.seeds["sr"], "paths": [f"task{t}" for t in
                                                               range(sc.n_tasks)],
                           "rule": "SRStream(seeds['sr'], f'task{t}'), fresh per task, shared "
                                   "by student and teacher"},
            "seed_rules": {
                "init": "model init seed (growth seeds derive from it and the class count)",
                "shuffle/task{t}": "default_rng(seed).permutation per epoch of task t",
                "augment/task{t}": "crop/flip draws of task t (when augment = true)",
                "exemplar": "random exemplar selection (herding is deterministic)",
                "bic_val/{t}": "BiC validation split of task t",
                "bic_stage2/task{t}": "BiC stage-2 batch order of task t"},
            "versions": _versions(),
        }

    def _check_resume(self) -> None:
        try:
            old = json.loads((self.out / "config.json").read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"--resume: cannot read {self.out / 'config.json'}: {e}") from None
        new = _jsonable(self.config_doc)
        a = {k: v for k, v in old.get("settings", {}).items() if k not in _VOLATILE}
        b = {k: v for k, v in new["settings"].items() if k not in _VOLATILE}
        for k in set(b) - set(a):          # a setting added after the stored run was made
            if k in DEFAULTS:
                a[k] = _jsonable(DEFAULTS[k])
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        if diff:
            raise ConfigError(f"--resume: settings differ from the run in {self.out}: "
                              + ", ".join(f"{k} ({a.get(k)!r} -> {b.get(k)!r})" for k in diff))
        if old.get("scenario", {}).get("class_order") != new["scenario"]["class_order"]:
            raise ConfigError("--resume: the class order differs from the stored run")
        if "numerics_spec" in old and old["numerics_spec"] != new["numerics_spec"]:
            raise ConfigError(f"--resume: the numerics differ from the run in {self.out} "
                              f"(was the datapath file {self.cfg['numerics']!r} changed?)")
        if old.get("versions") != new["versions"]:
            print(f"intsim cil: warning: package versions differ from the stored run "
                  f"({old.get('versions')} -> {new['versions']}); results may differ",
                  file=sys.stderr)

    # ---------------------------------------------------------------- checkpoints
    def _checkpoint_path(self, t: int) -> Path:
        return self.ckpt_dir / f"task{t:03d}.npz"

    def latest_checkpoint(self) -> Optional[Path]:
        if not self.ckpt_dir.is_dir():
            return None
        found = sorted(self.ckpt_dir.glob("task[0-9][0-9][0-9].npz"))
        return found[-1] if found else None

    def save_checkpoint(self, t: int) -> Path:
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        arrays = self.learner.state_dict()
        arrays.update(self.record.arrays())
        meta = {"format": 1, "task": t, "n_tasks": self.scenario.n_tasks,
                "learner": self.learner.meta_state(), "trace_rows": _trace_rows(self.trace_path),
                "classifiers": self.classifiers}
        arrays["meta_json"] = np.array(json.dumps(meta))
        final = self._checkpoint_path(t)
        with atomic_path(os.fspath(final)) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
        return final

    def load_checkpoint(self, path: Path) -> dict:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta_json")))
        lm = meta["learner"]
        self.learner.load_state(arrays, lm)
        self.record = Record.from_arrays(meta["classifiers"], arrays, meta["task"] + 1)
        self.start_task = meta["task"] + 1
        return meta

    # ---------------------------------------------------------------- execution
    def _prepare_output(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        ck = self.latest_checkpoint() if self.resume else None
        if ck is not None:
            meta = self.load_checkpoint(ck)
            self.checkpoint_meta = meta
            if self.trace_path.exists():
                try:
                    _truncate_trace(self.trace_path, meta["trace_rows"])
                except OSError:
                    bad = self.trace_path.with_suffix(".h5.corrupt")
                    os.replace(self.trace_path, bad)
                    print(f"intsim cil: warning: {self.trace_path} was unreadable (moved to "
                          f"{bad}); the new trace starts after task {meta['task']}",
                          file=sys.stderr)
            if not self.trace_path.exists():
                _init_trace_file(self.trace_path, self.cfg, self.numerics)
        else:
            for name in ("metrics.json", "trace.h5", "trace_summary.json", "accuracy.png"):
                p = self.out / name
                if p.exists():
                    p.unlink()
            if self.ckpt_dir.exists():
                shutil.rmtree(self.ckpt_dir)
            _init_trace_file(self.trace_path, self.cfg, self.numerics)
        _write_json_atomic(self.out / "config.json", self.config_doc)

    def execute(self, quiet: bool = False) -> dict:
        """Train the remaining tasks, then write metrics.json, trace_summary.json and
        accuracy.png. Returns the metrics."""
        from intsim.core.trace import Trace
        from tqdm import tqdm
        self._prepare_output()
        sc = self.scenario
        trace = Trace() if self.cfg["trace_every"] else None
        cb = _RunCallbacks(trace, self.cfg["trace_every"], self.trace_path, quiet)
        tasks = tqdm(total=sc.n_tasks, initial=self.start_task, desc="tasks", disable=quiet,
                     file=sys.stderr, dynamic_ncols=True)
        try:
            for t in range(self.start_task, sc.n_tasks):
                self.learner.learn_task(t, cb)
                cb.flush()
                cb.close()
                _, y = sc.test_upto(t)
                self.record.add(y, self.learner.evaluate(t))
                self.save_checkpoint(t)
                a = 100.0 * np.mean(self.record.preds["cnn"][-1] == y) if len(y) else float("nan")
                tasks.set_postfix(acc=f"{a:.1f}")
                tasks.update(1)
        finally:
            cb.close()
            tasks.close()
        metrics = compute_metrics(self.record, sc)
        _write_json_atomic(self.out / "metrics.json", metrics)
        _write_json_atomic(self.out / "trace_summary.json", trace_summary(self.trace_path))
        from intsim.experiments.plots import plot_run
        plot_run(metrics, self.out / "accuracy.png",
                 title=f"{self.cfg['dataset']} · {self.cfg['method']} · {self.numerics.name} "
                       f"· seed {self.cfg['seed']}")
        return metrics


def run(cfg: dict, resume: bool = False, quiet: bool = False, overwrite: bool = False) -> dict:
    """prepare + execute; returns the metrics dict."""
    return CILRun.prepare(cfg, resume=resume, overwrite=overwrite).execute(quiet=quiet)
