"""The settings of one class-incremental run: one typed record, validated by one table.

    cfg = resolve_config({"dataset": "watch", "method": "icarl", "numerics": "hdqt",
                          "out": "runs/watch-icarl"}, config_file=None)

Precedence: built-in defaults < data-set defaults (DATASET_DEFAULTS, after the paper's
settings table in docs/method.md; FILE_DEFAULTS for a data file of one's own) < the
protocol's settings (PROTOCOLS[protocol]) < the TOML file < command-line values (None = not
given).

`protocol = "paper"` switches every setting in which the published code's pipeline differs
from intsim's defaults to the published choice (docs/fidelity.md has the table, with the
effect of each): each of them is also a setting of its own, and a value given explicitly wins
over the protocol's. An evaluation batch size left unset is the training batch size, a feature
batch size left unset the evaluation batch size.

`dataset` is a registry name or a data file (resolve_dataset: stored as an absolute path; a
relative path in a config file is taken from the config file's folder). `numerics` defaults to
DEFAULT_NUMERICS ("hdqt").

A RunConfig is a dataclass (one typed field per setting, in SETTINGS order) that also reads
like the dict it is written as to config.json: cfg["epochs"], dict(cfg), {**cfg}. Assigning a
field (cfg.epochs = 3 or cfg["epochs"] = 3) validates it like a setting read from a file.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional


from intsim.core.checks import FRACTION, NONNEGATIVE_INT, POSITIVE_INT, Rule, check
from intsim.core.resolve import OVERRIDE_KEYS, numerics_source_path
from intsim.datasets.byo import FILE_SUFFIXES, is_data_file
from intsim.datasets.registry import DATASET_NAMES
from intsim.models.learners import METHOD_NAMES, TrainSettings
from intsim.nn.optim import GAMMA_RULE, SGD_RULES

NETWORKS = ("fcnet", "resnet32", "smallcnn")
SCALINGS = ("minmax", "cifar", "none")
#: the settings each protocol chooses (docs/fidelity.md: what each one is, why intsim's
#: defaults differ, the measured effect)
PROTOCOLS: dict[str, dict[str, Any]] = {
    "intsim": {"init": "kaiming_normal", "head": "bias_normal", "eval_order": "dataset",
               "feature_batching": "task", "keep_single_batch": False, "ste": "numerics",
               "tie_rule": "first"},
    "paper": {"init": "torch_default", "head": "nobias_uniform", "eval_batch_size": 128,
              "eval_order": "class_sorted", "feature_batching": "per_class",
              "feature_batch_size": 64, "keep_single_batch": True, "ste": "code_max",
              "tie_rule": "topk"},
}


class ConfigError(ValueError):
    """A bad setting or command-line/TOML input (reported without a traceback, exit code 2)."""


_HAR = dict(network="fcnet", hidden=None, epochs=100, lr=0.01, milestones=[], batch_size=128,
            memory=200, init_cls=2, increment=2, scale="minmax")
#: data-set defaults (the paper's settings for DSADS/PAMAP2/HAPT/CIFAR-100; the others are ours)
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
                 "increment": 20, "scale": "cifar", "augment": True},
}
#: the defaults of a data file of one's own (a feature table or an image NPZ): the HAR ones
FILE_DEFAULTS: dict[str, Any] = {**_HAR}
#: the numerics of a run that names none (the paper's method)
DEFAULT_NUMERICS = "hdqt"


def resolve_dataset(value: Any, base_dir: Optional[os.PathLike | str] = None) -> str:
    """The `dataset` setting as stored: a registry name as given, or the absolute path of a
    data file (a name ending in .csv, .parquet, .pq or .npz), a relative one taken from
    `base_dir` (the config file's or grid file's folder; default the working folder). The one
    place a data-set value is interpreted (command line, config file, sweep grid)."""
    if isinstance(value, os.PathLike) or (isinstance(value, str) and is_data_file(value)):
        p = Path(value).expanduser()
        if not p.is_absolute():
            p = Path(base_dir if base_dir is not None else Path.cwd()) / p
        return os.fspath(p.resolve())
    if isinstance(value, str) and value in DATASET_NAMES:
        return value
    raise ConfigError(f"dataset: expected one of {', '.join(DATASET_NAMES)} or a data file "
                      f"({', '.join(FILE_SUFFIXES)}; docs/data.md), got {value!r}")


def dataset_defaults(dataset: str) -> dict[str, Any]:
    """The data-set defaults of `dataset` (a registry name or a data file)."""
    return DATASET_DEFAULTS.get(dataset, FILE_DEFAULTS)


def dataset_label(dataset: str) -> str:
    """A short name of `dataset` for titles and table rows: a file's stem, else the name."""
    return Path(dataset).stem if is_data_file(dataset) else dataset


def check_setting(key: str, v: Any) -> Any:
    """The validated (normalised) value of setting `key`; ConfigError naming it otherwise."""
    rule = _RULES.get(key)
    if rule is None:
        raise ConfigError(f"unknown setting {key!r}; known: {', '.join(sorted(_RULES))}")
    if v is None:
        return None
    special = _CHECKS.get(rule.kind)
    if special is not None:
        return special(key, v, rule)
    return check(key, v, rule, ConfigError)


def _check_path(key, v, rule):
    if not isinstance(v, (str, os.PathLike)):
        raise ConfigError(f"{key}: expected a string, got {v!r}")
    return os.fspath(Path(v).expanduser())


def _check_dataset(key, v, rule):
    return resolve_dataset(v)


def _check_numerics(key, v, rule):
    if not isinstance(v, (str, os.PathLike)):
        raise ConfigError(f"{key}: expected a string, got {v!r}")
    try:
        path = numerics_source_path(v)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return os.fspath(v) if path is None else os.fspath(Path(v).expanduser())


def _check_milestones(key, v, rule):
    if not isinstance(v, (list, tuple)) or not all(
            isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in v):
        raise ConfigError(f"milestones: expected a list of positive epochs, got {v!r}")
    return sorted(int(m) for m in v)


def _check_table(key, v, rule):
    if not isinstance(v, Mapping):
        raise ConfigError(f"{key}: expected a table, got {v!r}")
    return dict(v)


def _check_overrides(key, v, rule):
    v = _check_table(key, v, rule)
    bad = sorted(set(v) - set(OVERRIDE_KEYS))
    if bad:
        raise ConfigError(f"numerics_overrides: unknown key(s) {bad}; known: "
                          f"{', '.join(OVERRIDE_KEYS)}")
    return {k: dict(x) if isinstance(x, Mapping) else x for k, x in v.items()}


#: the kinds of setting beyond core.checks.Rule's (int, float, str, bool)
_CHECKS = {"dataset": _check_dataset, "path": _check_path, "numerics": _check_numerics,
           "milestones": _check_milestones, "table": _check_table, "overrides": _check_overrides}
_NONNEG, _POS = NONNEGATIVE_INT, POSITIVE_INT


def setting(default: Any, rule: Rule):
    """A RunConfig field: its built-in default (None: supplied by the data-set defaults) and
    the rule that checks it."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"rule": rule})
    return field(default=default, metadata={"rule": rule})


@dataclass
class RunConfig:
    """Every setting of one `intsim cil` run; see the module docstring."""
    dataset: Optional[str] = setting(None, Rule("dataset"))
    data_dir: Optional[str] = setting(None, Rule("path"))
    dataset_params: dict = setting({}, Rule("table"))
    method: Optional[str] = setting(None, Rule("str", choices=METHOD_NAMES))
    method_params: dict = setting({}, Rule("table"))
    numerics: str = setting(DEFAULT_NUMERICS, Rule("numerics"))
    numerics_overrides: dict = setting({}, Rule("overrides"))
    seed: int = setting(0, _NONNEG)
    network: Optional[str] = setting(None, Rule("str", choices=NETWORKS))
    hidden: Optional[int] = setting(None, _POS)
    epochs: Optional[int] = setting(None, _NONNEG)
    lr: Optional[float] = setting(None, SGD_RULES["lr"])
    milestones: list = setting([], Rule("milestones"))
    lr_gamma: float = setting(0.1, GAMMA_RULE)
    momentum: float = setting(0.9, SGD_RULES["momentum"])
    weight_decay: float = setting(2e-4, SGD_RULES["weight_decay"])
    batch_size: Optional[int] = setting(None, _POS)     # 1 only with keep_single_batch
    eval_batch_size: Optional[int] = setting(None, _POS)      # None: batch_size
    memory: Optional[int] = setting(None, _NONNEG)
    memory_mode: str = setting("fixed_total", Rule("str", choices=("fixed_total", "per_class")))
    exemplar_selection: str = setting("herding", Rule("str", choices=("herding", "random")))
    init_cls: Optional[int] = setting(None, _POS)
    increment: Optional[int] = setting(None, _POS)
    split: str = setting("auto", Rule("str", choices=("auto", "official", "subjects",
                                                       "samples")))
    n_test_subjects: Optional[int] = setting(None, _POS)
    test_fraction: Optional[float] = setting(None, FRACTION)
    order_rule: str = setting("seedsequence", Rule("str", choices=("seedsequence", "pycil")))
    scale: str = setting("minmax", Rule("str", choices=SCALINGS))
    augment: bool = setting(False, Rule("bool"))
    trace_every: int = setting(20, _NONNEG)
    trace_events: int = setting(0, _NONNEG)      # per-event overflow log limit (0 = off)
    # the pipeline choices of a protocol (PROTOCOLS; None: the protocol's value)
    protocol: str = setting("intsim", Rule("str", choices=tuple(PROTOCOLS)))
    init: Optional[str] = setting(None, Rule("str", choices=("kaiming_normal", "torch_default")))
    head: Optional[str] = setting(None, Rule("str", choices=("bias_normal", "nobias_uniform")))
    eval_order: Optional[str] = setting(None, Rule("str", choices=("dataset", "class_sorted")))
    eval_scale: str = setting("dynamic", Rule("str", choices=("dynamic", "calibrated")))
    feature_batching: Optional[str] = setting(None, Rule("str", choices=("task", "per_class")))
    feature_batch_size: Optional[int] = setting(None, _POS)   # None: eval_batch_size
    keep_single_batch: Optional[bool] = setting(None, Rule("bool"))
    ste: Optional[str] = setting(None, Rule("str", choices=("numerics", "clipped", "code_max",
                                                             "none")))
    tie_rule: Optional[str] = setting(None, Rule("str", choices=("first", "topk")))
    out: Optional[str] = setting(None, Rule("path"))

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, check_setting(name, value))

    # -- the mapping view (config.json, {**cfg}, cfg[key]) ---------------------------------
    def keys(self) -> tuple[str, ...]:
        return tuple(SETTINGS)

    def __getitem__(self, key: str) -> Any:
        if key not in SETTINGS:
            raise KeyError(key)
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)

    def __iter__(self) -> Iterator[str]:
        return iter(SETTINGS)

    def __len__(self) -> int:
        return len(SETTINGS)

    def __contains__(self, key: object) -> bool:
        return key in SETTINGS

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in SETTINGS else default

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in SETTINGS}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "RunConfig":
        """A RunConfig of a complete settings mapping (e.g. config.json "settings")."""
        unknown = sorted(set(values) - set(SETTINGS))
        if unknown:
            raise ConfigError(f"unknown setting(s) {unknown}; known: "
                              f"{', '.join(sorted(SETTINGS))}")
        return cls(**dict(values))

    def train_settings(self) -> TrainSettings:
        """The optimisation settings every learner shares (TrainSettings fields by name)."""
        kw = {f.name: (tuple(self[f.name]) if f.name == "milestones" else self[f.name])
              for f in dataclasses.fields(TrainSettings)}
        kw = {k: v for k, v in kw.items() if v is not None}      # unresolved: learner defaults
        return TrainSettings(**kw)


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


#: every setting: (built-in default, rule), in RunConfig order
SETTINGS: dict[str, tuple[Any, Rule]] = {f.name: (_default(f), f.metadata["rule"])
                                         for f in dataclasses.fields(RunConfig)}
DEFAULTS: dict[str, Any] = {k: d for k, (d, _) in SETTINGS.items()}
_RULES: dict[str, Rule] = {k: r for k, (_, r) in SETTINGS.items()}
REQUIRED = ("dataset", "method", "out")
#: settings that may change between a run and its resumption
VOLATILE = ("out",)


def load_toml(path: os.PathLike | str) -> dict:
    """Read a TOML config; keys may use '-' or '_'."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = tomllib.loads(p.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {p}: not UTF-8 text ({e})") from None
    except OSError as e:
        raise ConfigError(f"config file {p}: cannot read it ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {p}: invalid TOML: {e}") from None
    return {k.replace("-", "_"): v for k, v in data.items()}


def resolve_config(cli: Optional[Mapping[str, Any]] = None,
                   config_file: Optional[os.PathLike | str] = None) -> RunConfig:
    """Merge defaults < data-set defaults < TOML file < command line (None = not given)."""
    user: dict[str, Any] = {}
    if config_file is not None:
        user.update(load_toml(config_file))
        if user.get("dataset") is not None:        # a data file relative to the config file
            user["dataset"] = resolve_dataset(user["dataset"], Path(config_file).parent)
    user.update({k.replace("-", "_"): v for k, v in (cli or {}).items() if v is not None})
    unknown = sorted(set(user) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown}; known: {', '.join(sorted(SETTINGS))}")
    user = {k: check_setting(k, v) for k, v in user.items()}
    for key in REQUIRED:
        if user.get(key) is None:
            raise ConfigError(f"missing setting {key!r} (give --{key.replace('_', '-')} or put "
                              f"it in the --config file)")
    protocol = user.get("protocol") or DEFAULTS["protocol"]
    values = {**DEFAULTS, **dataset_defaults(user["dataset"]), **PROTOCOLS[protocol], **user}
    if values["batch_size"] == 1 and not values["keep_single_batch"]:
        raise ConfigError("batch_size: must be >= 2, got 1 (a mini-batch of one sample is "
                          "dropped, as BatchNorm needs two: batch_size 1 would train nothing; "
                          "keep_single_batch = true keeps such batches)")
    values["eval_batch_size"] = values["eval_batch_size"] or values["batch_size"]
    values["feature_batch_size"] = values["feature_batch_size"] or values["eval_batch_size"]
    if values["n_test_subjects"] is not None and values["test_fraction"] is not None:
        if "n_test_subjects" not in user:
            values["n_test_subjects"] = None        # the user chose a fraction instead
        elif "test_fraction" not in user:
            values["test_fraction"] = None
    return RunConfig.from_mapping(values)
