"""The grid of a sweep: its file format, parsing, and the cells it defines.

The grid file (TOML; unknown keys are errors naming the key):

    name = "acc-sweep"                    # optional free text
    datasets = ["synthetic", "data/myhar.csv"]   # data-set names or data files of your own
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

Relative paths (data files, datapath files, data_dirs, settings.data_dir) are relative to the
grid file. A data file (.csv, .parquet, .pq, .npz; docs/data.md) is named by its stem in the
tables and cell folders ("myhar"); two data files with the same stem are an error.
The numerics knobs (acc_bits, tile, operand_bits, acc_mode, hadamard) apply to every quantized
numerics entry; a float entry (fp32) is not multiplied by them (one fp32 cell per data set ×
method × other axes × seed; its knob columns are empty). A cell's knobs become the cil setting
`numerics_overrides` (intsim.cil.apply_numerics_overrides), so the concrete Numerics is built
by the run and recorded in its config.json (`numerics_spec`).

"""
from __future__ import annotations

import dataclasses
import itertools
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from intsim.core.modes import ACCUMULATORS, OPERANDS
from intsim.core.numerics import Numerics
from intsim.core.resolve import numerics_source_path
from intsim.datasets.registry import DATASET_NAMES
from intsim.experiments.builders import run_numerics
from intsim.experiments.config import (DEFAULTS, ConfigError, RunConfig, dataset_label,
                                       resolve_config, resolve_dataset)
from intsim.models.learners import METHOD_NAMES

GRID_KEYS = ("name", "datasets", "methods", "numerics", "seeds", "settings", "data_dirs",
             "overrides")
#: [overrides] keys that change the numerics of quantized entries
NUMERICS_KNOBS = ("acc_bits", "tile", "operand_bits", "acc_mode", "hadamard")
#: cil settings the grid sets per cell (not allowed in [settings] / [overrides])
CELL_SETTINGS = ("dataset", "method", "numerics", "seed", "out", "numerics_overrides")
RUNS_DIR = "runs"


class GridError(ConfigError):
    """A bad grid file (reported without a traceback, exit code 2)."""


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
    cfg: RunConfig                  # the resolved intsim cil settings
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
        try:
            text = p.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise GridError(f"grid file {p}: not UTF-8 text ({e})") from None
        except OSError as e:
            raise GridError(f"grid file {p}: cannot read it ({e.strerror})") from None
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
        """A Grid of a parsed grid document; relative paths are taken from base_dir (default:
        the working folder). Every error is a GridError naming the key."""
        doc = {k.replace("-", "_"): v for k, v in doc.items()}
        for k in doc:
            if k not in GRID_KEYS:
                raise GridError(f"grid: unknown key {k!r} (known: {', '.join(GRID_KEYS)})")
        for k in ("datasets", "methods", "numerics"):
            if k not in doc:
                raise GridError(f"grid: missing key {k!r}")
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        settings = _parse_settings(doc.get("settings", {}), base)
        knobs, axes = _parse_overrides(doc.get("overrides", {}), settings)
        name = doc.get("name", "")
        if not isinstance(name, str):
            raise GridError(f"grid: name: expected a string, got {name!r}")
        return cls(datasets=_parse_datasets(doc["datasets"], base),
                   methods=_names("methods", doc["methods"], METHOD_NAMES, "method"),
                   numerics=_parse_numerics(doc["numerics"], base),
                   seeds=_parse_seeds(doc.get("seeds", [0])), settings=settings,
                   data_dirs=_parse_data_dirs(doc.get("data_dirs", {}), base), knobs=knobs,
                   axes=axes, name=name)

    # ---------------------------------------------------------------- cells
    @property
    def field_names(self) -> list[str]:
        """Columns that identify a cell, in results order (seed last)."""
        return ["dataset", "method", "numerics", *self.knobs, *self.axes, "seed"]

    def cells(self, out: Union[str, os.PathLike], threads: int = 1) -> list["Cell"]:
        """Every cell (cartesian product; float numerics not multiplied by the knobs), with
        its intsim cil settings resolved (a bad setting raises GridError now)."""
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
                    parts = [dataset_label(dataset), method, label,
                             *(f"{k}={v}" for k, v in knobs.items()),
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
                        fields = {"dataset": dataset_label(dataset), "method": method,
                                  "numerics": label,
                                  **{k: knobs.get(k) for k in knob_names}, **axes,
                                  "seed": seed}
                        cells.append(Cell(id=cid, group=group, dir=os.fspath(d),
                                          fields=fields, cfg=cfg, threads=int(threads)))
        return cells


def _names(key: str, value: Any, known: tuple, what: str) -> list:
    names = _as_list(key, value)
    for n in names:
        if n not in known:
            raise GridError(f"grid: {key}: unknown {what} {n!r} (known: {', '.join(known)})")
    return names


def _parse_datasets(value: Any, base: Path) -> list[str]:
    """Registry names as given, data files as absolute paths (relative to `base`)."""
    out = []
    for n in _as_list("datasets", value):
        try:
            out.append(resolve_dataset(n, base))
        except ConfigError as e:
            raise GridError(f"grid: datasets: {e}") from None
    labels = [dataset_label(d) for d in out]
    if len(set(labels)) != len(labels):
        raise GridError(f"grid: datasets: two entries share a name: {labels}")
    return out


def _parse_numerics(value: Any, base: Path) -> list[tuple[str, str]]:
    """[(label, source)]: source a preset name or the absolute path of a datapath file."""
    numerics = []
    for n in _as_list("numerics", value):
        if not isinstance(n, str):
            raise GridError(f"grid: numerics: expected preset names or .toml paths, got {n!r}")
        try:
            path = numerics_source_path(n, base)
        except ValueError as e:
            raise GridError(f"grid: {e}") from None
        if path is None:
            numerics.append((n, n))
        elif not path.is_file():
            raise GridError(f"grid: numerics: datapath file not found: {path}")
        else:
            numerics.append((path.stem, os.fspath(path)))
    labels = [lab for lab, _ in numerics]
    if len(set(labels)) != len(labels):
        raise GridError(f"grid: numerics: two entries share a name: {labels}")
    return numerics


def _parse_seeds(value: Any) -> list[int]:
    seeds = value
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise GridError(f"grid: seeds: a count must be >= 1, got {seeds}")
        seeds = list(range(seeds))
    seeds = _as_list("seeds", seeds)
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise GridError(f"grid: seeds: expected distinct non-negative integers or a count, "
                        f"got {value!r}")
    return seeds


def _parse_settings(value: Any, base: Path) -> dict:
    if not isinstance(value, dict):
        raise GridError(f"grid: settings: expected a table, got {value!r}")
    settings = {k.replace("-", "_"): v for k, v in value.items()}
    for k in settings:
        if k in CELL_SETTINGS:
            raise GridError(f"grid: settings: {k!r} is set by the grid per cell "
                            f"(use the top-level lists / [overrides])")
        if k not in DEFAULTS:
            raise GridError(f"grid: settings: unknown key {k!r} (an intsim cil setting "
                            f"is expected)")
    if isinstance(settings.get("data_dir"), str):
        settings["data_dir"] = _abspath(settings["data_dir"], base)
    return settings


def _parse_data_dirs(value: Any, base: Path) -> dict:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise GridError(f"grid: data_dirs: expected a table of data set = \"folder\", "
                        f"got {value!r}")
    for k in value:
        if k not in DATASET_NAMES:
            raise GridError(f"grid: data_dirs: unknown data set {k!r}")
    return {k: _abspath(v, base) for k, v in value.items()}


def _parse_overrides(value: Any, settings: dict) -> tuple[dict, dict]:
    """(numerics knob -> values, cil setting -> values) of the [overrides] table."""
    if not isinstance(value, dict):
        raise GridError(f"grid: overrides: expected a table, got {value!r}")
    knobs, axes = {}, {}
    for k, v in value.items():
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
    return knobs, axes


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


def _load_numerics(src: str) -> Numerics:
    try:
        return run_numerics(src)
    except ConfigError as e:
        raise GridError(f"grid: {e}") from None


def knob_overrides(base: Numerics, knobs: dict, label: Optional[str] = None) -> dict:
    """The cil `numerics_overrides` table that applies the sweep knobs to `base` (a Numerics):
    acc_bits / tile / acc_mode to every accumulator present, operand_bits to every operand
    QuantSpec present, hadamard to the rule. Empty for no knobs."""
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


