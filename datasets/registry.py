"""``load_dataset(name, data_dir=None, **params)``: one entry point for every data set.

==================  ==================================================  =========  ==========
name                what                                                 data_dir   cached
==================  ==================================================  =========  ==========
watch               seglearn smartwatch IMU, 7 classes, 10 subjects,      optional   yes
                    128/64 windows -> 54 features (unscaled)
digits              scikit-learn digits, (1797, 64) in [0, 1]            no         no
fashion_mnist       Debian dataset-fashion-mnist, (70000, 1, 28, 28)     optional   no
dsads               raw UCI layout (-> 405 unscaled features) or the      required   yes
                    paper's dsads.csv table (405 features in [-1, 1])
pamap2              raw Protocol/*.dat (-> 243 unscaled features) or      required   yes
                    the paper's pamap.csv table; drops subjects 3, 4, 9
                    and class 24 by default (11 classes)
hapt                UCI 561-feature Train/Test files; drops users 7, 28   required   yes
                    and class 8 by default (11 classes)
cifar100            cifar-100-python pickles, (60000, 3, 32, 32)         required   no
synthetic           SYNTHETIC HAR windows -> 27 features per sensor      no         no
dsads_synthetic     SYNTHETIC 9120 x 405 table, 19 classes, 8 subjects   no         no
==================  ==================================================  =========  ==========

``data_dir=None`` means ``$INTSIM_DATA/<name>`` for the data sets that need one.  Which layout was
found is in ``Dataset.meta["layout"]`` and ``Dataset.source`` and is logged at INFO level.

Your own data: ``load_dataset("path/to/myhar.csv")`` -- any ``name`` ending in ``.csv``,
``.parquet``, ``.pq`` or ``.npz`` (or an ``os.PathLike``) is read by
:func:`intsim.datasets.byo.load_file` (formats and parameters there and in docs/data.md).  A
relative path is taken relative to ``data_dir`` when one is given.  Registry names win: a file
must be named with its suffix.

Every result names its sources: ``meta["source_files"]`` (absolute path, SHA-256, size) and
``meta["load_params"]``; :func:`intsim.datasets.dataset_identity` turns them into a record for
config.json.  A load that would give no rows (e.g. ``window`` longer than every recording) is a
ValueError naming the parameter.
"""
from __future__ import annotations

import inspect
import logging
import os
from pathlib import Path
from typing import Any, Callable

from intsim.datasets.args import check_bool, check_path
from intsim.datasets.base import Dataset, missing_data_error, resolve_data_dir
from intsim.datasets.byo import FILE_SUFFIXES, is_data_file, load_file
from intsim.datasets.cache import cached
from intsim.datasets.har_raw import (dsads_raw_files, hapt_files, load_dsads_raw, load_hapt, load_pamap2_raw,
                      pamap2_raw_files)
from intsim.datasets.identity import source_records
from intsim.datasets.images import cifar100_dir, load_cifar100
from intsim.datasets.offline import fashion_mnist_files, load_digits, load_fashion_mnist, load_watch, watch_file
from intsim.datasets.synthetic import load_synthetic_har, make_synthetic_feature_table
from intsim.datasets.tables import TABLE_SPECS, find_feature_table, load_feature_table
from intsim.datasets.watch import find_watch_file

__all__ = ["DATASET_NAMES", "load_dataset"]

log = logging.getLogger("intsim.datasets")

DATASET_NAMES = ("watch", "digits", "fashion_mnist", "dsads", "pamap2", "hapt", "cifar100",
                 "synthetic", "dsads_synthetic")
_ALIASES = {"pamap": "pamap2", "fashion": "fashion_mnist", "fmnist": "fashion_mnist",
            "cifar": "cifar100", "cifar_100": "cifar100"}
_EXPECTED_NAME = (f"a data set name ({', '.join(DATASET_NAMES)}) or a path to a "
                  f"{', '.join(FILE_SUFFIXES)} file")


def _check_params(name: str, fn: Callable, params: dict, exclude: tuple[str, ...] = ()) -> None:
    allowed = [p for p in inspect.signature(fn).parameters if p not in exclude]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise TypeError(f"load_dataset({name!r}): unknown parameter(s) {unknown}; accepted: {allowed}")


def _with_identity(ds: Dataset, files: list[Path], root: Path | None, params: dict) -> Dataset:
    """Attach ``source_files`` / ``load_params`` to a data set that did not go through the cache."""
    return ds.replace(meta={**ds.meta, "source_files": source_records(files, root), "load_params": params})


def _har_table_or_raw(name: str, data_dir: Path, layout: str, params: dict, cache: bool,
                      cache_dir: Any) -> Dataset:
    if layout not in ("auto", "raw", "table"):
        raise ValueError(f"load_dataset({name!r}): layout must be 'auto', 'raw' or 'table', got {layout!r}")
    raw_fn = load_dsads_raw if name == "dsads" else load_pamap2_raw
    spec = TABLE_SPECS[name]
    table = find_feature_table(name, data_dir) if layout in ("auto", "table") else None
    if layout == "table" and table is None:
        raise missing_data_error(name, data_dir / spec["files"][0], "feature table requested with layout='table'")
    if table is not None:
        tparams = {"drop_subjects": spec["drop_subjects"], "drop_classes": spec["drop_classes"]}
        for k in ("drop_subjects", "drop_classes"):
            if k in params:
                tparams[k] = params.pop(k)
        if params:
            raise TypeError(f"load_dataset({name!r}): parameter(s) {sorted(params)} apply to the raw layout "
                            f"only, but the feature table {table} was found; pass layout='raw'")
        from intsim.datasets.args import check_int_sequence
        for k in tparams:
            tparams[k] = check_int_sequence(f"load_dataset({name!r})", k, tparams[k])
        log.info("%s: using the paper's feature table %s", name, table)
        return cached(
            name, [table], table.parent, {"layout": "feature_table", **tparams},
            lambda: load_feature_table(table, name=name, n_features=spec["n_features"],
                                       class_names=spec["class_names"], **tparams),
            cache_dir, cache)
    _check_params(name, raw_fn, params, exclude=("data_dir",))
    if name == "dsads":
        root, files = dsads_raw_files(data_dir)
        paths = [f[3] for f in files]
    else:
        root, subj_files = pamap2_raw_files(data_dir)
        paths = [p for _, p in subj_files]
    full = {k: v.default for k, v in inspect.signature(raw_fn).parameters.items() if k != "data_dir"}
    full.update(params)
    log.info("%s: using the raw layout in %s (%d files)", name, root, len(paths))
    return cached(name, paths, root, {"layout": "raw", **full},
                  lambda: raw_fn(root, **params), cache_dir, cache)


def _load_path(name: Any, data_dir: Path | None, params: dict) -> Dataset:
    path = check_path("load_dataset", "name", name)
    if data_dir is not None and not path.is_absolute():
        path = data_dir / path
    log.info("loading your own data file %s", path)
    return load_file(path, **params)


def _nonempty(ds: Dataset, key: str, params: dict) -> Dataset:
    if len(ds) == 0:
        raise ValueError(f"load_dataset({key!r}): the data set is empty with parameters {params}; "
                         "check the filters (drop_subjects, drop_classes) and window sizes")
    return ds


def load_dataset(
    name: str | os.PathLike,
    data_dir: os.PathLike | str | None = None,
    *,
    cache: bool = True,
    cache_dir: os.PathLike | str | None = None,
    **params: Any,
) -> Dataset:
    """Load data set ``name`` (one of :data:`DATASET_NAMES`, or a data file) as a :class:`Dataset`.

    Parameters
    ----------
    name : registry name (table in the module docstring), or a path to a ``.csv``,
        ``.parquet``/``.pq`` or ``.npz`` file of your own (see :mod:`intsim.datasets.byo`).
    data_dir : folder with the downloaded data (see ``intsim.datasets.base.ARCHIVES`` for each
        layout); None uses ``$INTSIM_DATA/<name>`` where a folder is required.  For a file
        ``name``, a relative path is resolved against ``data_dir``.
    cache : use the HDF5 cache for processed arrays (watch, dsads, pamap2, hapt).
    cache_dir : cache folder (default ``$INTSIM_CACHE`` or ``~/.cache/intsim``).
    **params : passed to the loader: ``watch`` (window, step), ``digits`` / ``fashion_mnist``
        (flatten), ``dsads`` (layout), ``pamap2`` (layout, window, step, drop_subjects,
        drop_classes), ``hapt`` (drop_subjects, drop_classes), ``cifar100`` (label_type),
        ``synthetic`` (see :func:`load_synthetic_har`), ``dsads_synthetic`` (see
        :func:`make_synthetic_feature_table`; defaults give DSADS's shape); a table file
        (label_column, feature_columns, subject_column, split_column, class_names, name), an
        ``.npz`` file (class_names, name).

    Raises
    ------
    FileNotFoundError : data missing (the message names the file, layout and archive).
    DataFormatError (a ValueError) : a file exists but is malformed (names file, column, row).
    ValueError : unknown name, a bad argument value, or an empty result (names the argument).
    TypeError : an unknown parameter.
    ImportError : a Parquet file without pyarrow installed.
    """
    cache = check_bool("load_dataset", "cache", cache)
    if cache_dir is not None:
        cache_dir = check_path("load_dataset", "cache_dir", cache_dir)
    if data_dir is not None:
        data_dir = check_path("load_dataset", "data_dir", data_dir)
    if isinstance(name, os.PathLike) and not is_data_file(name):
        raise ValueError(f"load_dataset: name {os.fspath(name)!r} is a path without a {', '.join(FILE_SUFFIXES)} "
                         f"suffix; name must be {_EXPECTED_NAME}")
    if is_data_file(name):
        return _load_path(name, data_dir, params)
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"load_dataset: name must be {_EXPECTED_NAME}, got {name!r} ({type(name).__name__})")
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in DATASET_NAMES:
        suffix = Path(name).suffix
        hint = (f" (its suffix {suffix!r} is not a data-file suffix: {', '.join(FILE_SUFFIXES)})"
                if suffix or "/" in name or os.sep in name else "")
        raise ValueError(f"load_dataset: unknown data set {name!r}{hint}; name must be {_EXPECTED_NAME}")
    return _nonempty(_load_registry(key, data_dir, cache, cache_dir, params), key, params)


def _load_registry(key: str, data_dir: Path | None, cache: bool, cache_dir: Path | None,
                   params: dict) -> Dataset:
    if key == "watch":
        _check_params(key, load_watch, params, exclude=("path",))
        path = find_watch_file(data_dir) if data_dir is not None else watch_file()
        full = {"window": 128, "step": 64, **params}
        return cached("watch", [path], path.parent, full, lambda: load_watch(path=path, **params),
                      cache_dir, cache)
    if key == "digits":
        if data_dir is not None:
            raise ValueError("load_dataset('digits'): takes no data_dir (the data ship with scikit-learn)")
        _check_params(key, load_digits, params)
        ds = load_digits(**params)
        return _with_identity(ds, [], None, {"flatten": True, **params})
    if key == "fashion_mnist":
        _check_params(key, load_fashion_mnist, params, exclude=("data_dir",))
        ds = load_fashion_mnist(data_dir, **params)
        files = fashion_mnist_files(data_dir)
        return _with_identity(ds, files, files[0].parent, {"flatten": False, **params})
    if key == "synthetic":
        if data_dir is not None:
            raise ValueError("load_dataset('synthetic'): takes no data_dir (the data are generated)")
        _check_params(key, load_synthetic_har, params)
        return load_synthetic_har(**params)
    if key == "dsads_synthetic":
        if data_dir is not None:
            raise ValueError("load_dataset('dsads_synthetic'): takes no data_dir (the data are generated)")
        _check_params(key, make_synthetic_feature_table, params, exclude=("name",))
        return make_synthetic_feature_table(name="dsads_synthetic", **params)

    folder = resolve_data_dir(key, data_dir)
    if key in ("dsads", "pamap2"):
        layout = params.pop("layout", "auto")
        return _har_table_or_raw(key, folder, layout, dict(params), cache, cache_dir)
    if key == "hapt":
        _check_params(key, load_hapt, params, exclude=("data_dir",))
        files = hapt_files(folder)
        full = {"drop_subjects": (7, 28), "drop_classes": (8,), **params}
        extra = [folder / n for n in ("features.txt", "activity_labels.txt") if (folder / n).is_file()]
        return cached("hapt", list(files.values()) + extra, folder, full,
                      lambda: load_hapt(folder, **params), cache_dir, cache)
    assert key == "cifar100"
    _check_params(key, load_cifar100, params, exclude=("data_dir",))
    ds = load_cifar100(folder, **params)
    cdir = cifar100_dir(folder)
    files = [cdir / n for n in ("train", "test", "meta") if (cdir / n).is_file()]
    return _with_identity(ds, files, cdir, {"label_type": "fine", **params})
