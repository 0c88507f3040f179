"""Bring your own data: feature tables (CSV, Parquet, NPZ) and image arrays (NPZ).

``load_dataset(PATH)`` (or :func:`load_file`) reads a file whose name ends in ``.csv``,
``.parquet`` (or ``.pq``) or ``.npz``; :func:`intsim.datasets.from_arrays` takes the same data as
arrays.  Every value is validated (rules in :mod:`intsim.datasets.arrays`): any problem is a
:class:`~intsim.datasets.base.DataFormatError` (a ValueError) naming the file, the column and the
row.  User-friendly description: ``docs/data.md``.

Feature table (CSV or Parquet)
------------------------------
One row per sample.  The first CSV line is a header naming the columns (names are stripped of
surrounding spaces and matched exactly, case-sensitive; duplicate names are an error).  Columns:

* the **label column** -- default ``label``, another with ``label_column="activity"``.
  Integers or strings.  Classes are the sorted distinct labels (numbers ascending, strings in
  code-point order); ``Dataset.y`` is the position in that order, ``class_names`` the labels as
  strings (or ``class_names=`` {label: name} / a list in that order).  At least 2 classes.
* optional **subject column** -- default ``subject`` (``subject_column="person"``; ``None``
  ignores it).  Integers or strings.  With subjects the scenario splits by subject (paper style:
  a seeded 80/20 of the subjects) unless a split column is present.
* optional **split column** -- default ``split`` (``split_column=``; ``None`` ignores it).
  ``train`` or ``test`` per row (case-insensitive).  When present it becomes ``Dataset.is_test``
  and :class:`~intsim.datasets.scenario.Scenario` uses it as the data set's own split: with
  ``split="auto"`` (the default) or ``split="official"``; ``split="subjects"`` or ``"samples"``
  ignore it.  Both parts must be non-empty and every class needs training rows.
* **feature columns** -- default: every other column, in file order.  The names ``label``,
  ``subject`` and ``split`` are never features by default, even when the label / subject / split
  are read from other columns (list them in ``feature_columns=`` to use them).  Every feature cell
  must be a finite number that fits float32 (no empty cell, NaN, Inf or text).

CSV files must be UTF-8 (a BOM is allowed), comma-separated, one record per line; "line L" in a
message is the file line (the header is line 1).  Empty lines at the end are ignored; an empty
line elsewhere is a row with missing values.  Parquet files need ``pyarrow`` (``pip install
pyarrow``); without it reading one is an ImportError saying so.  Rows in Parquet messages are
0-based.

Arrays file (NPZ)
-----------------
A NumPy ``.npz`` (``np.savez``), read with ``allow_pickle=False`` (object arrays are refused,
so a file cannot run code).  Keys:

================  =============================  ==========================================
key               shape, dtype                   meaning
================  =============================  ==========================================
``X``             (n, d) numbers                 feature vectors, or
                  (n, C, H, W) numbers           images (uint8 images are divided by 255)
``y``             (n,) int or str                labels (same rules as the label column)
``subject``       (n,) int or str, optional      subject ids
``split``         (n,) str or bool, optional     ``"train"``/``"test"``, or True = test
``feature_names`` (d,) str, optional             names of the columns of a 2-D ``X``
``class_names``   (C,) str, optional             names of the sorted distinct labels
================  =============================  ==========================================

Any other key is an error (it is probably a typo).  Messages name cells as ``X[i, j]``.

Identity and caching
--------------------
The file is read once into memory; its SHA-256 is computed from exactly those bytes and stored
with the absolute path in ``Dataset.meta["source_files"]``, the loader parameters in
``meta["load_params"]``; :func:`intsim.datasets.dataset_identity` returns both (record it in
config.json, compare on resume with :func:`intsim.datasets.check_identity`).  These files are
not cached (parsing is fast).  Features are not scaled (``meta["prescaled"] = False``), so
``intsim cil`` applies its train-only min-max scaling unless told otherwise.
"""
from __future__ import annotations

import csv
import importlib.util
import io
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from intsim.datasets.args import check_path
from intsim.datasets.arrays import build_dataset
from intsim.datasets.base import DataFormatError, Dataset
from intsim.datasets.identity import file_record
from intsim.datasets.safeio import decode_utf8, sha256_bytes

__all__ = ["FILE_SUFFIXES", "RESERVED_COLUMNS", "NPZ_KEYS", "is_data_file", "load_file", "load_table",
           "load_npz"]

#: suffix -> format
FILE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz"}
#: column names that are never features unless listed in feature_columns
RESERVED_COLUMNS = ("label", "subject", "split")
NPZ_KEYS = ("X", "y", "subject", "split", "feature_names", "class_names")


def is_data_file(name: Any) -> bool:
    """True if ``name`` (str or path) ends in one of :data:`FILE_SUFFIXES`."""
    if isinstance(name, (str, os.PathLike)) and not isinstance(name, bytes):
        return Path(name).suffix.lower() in FILE_SUFFIXES
    return False


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} is not a file")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataFormatError(f"{path}: file is empty")
    return raw


def _common_meta(path: Path, raw: bytes, layout: str, params: Mapping[str, Any]) -> dict:
    return {"source_files": [file_record(path, sha256_bytes(raw), len(raw))], "load_params": dict(params),
            "layout": layout}


# ------------------------------------------------------------------------------ tables
def _read_csv(path: Path, raw: bytes):
    import pandas as pd

    text = decode_utf8(raw, path, lambda problem: DataFormatError(f"{path}: {problem}"))
    first = text.split("\n", 1)[0].rstrip("\r")
    if not first.strip():
        raise DataFormatError(f"{path}: line 1 is empty; the first line must be the header naming the columns")
    header = [h.strip() for h in next(csv.reader([first]))]
    if "" in header:
        raise DataFormatError(f"{path}: line 1 (the header): column {header.index('') + 1} has no name")
    numeric = 0
    for h in header:
        try:
            float(h)
            numeric += 1
        except ValueError:
            pass
    if numeric == len(header):
        raise DataFormatError(f"{path}: line 1 ({first[:60]!r}) holds numbers, not column names; the first line must "
                              "be a header such as f0,f1,...,label (see docs/data.md)")
    try:
        df = pd.read_csv(io.StringIO(text), header=0, skip_blank_lines=False, low_memory=False)
    except pd.errors.ParserError as err:
        raise DataFormatError(f"{path}: cannot parse as CSV ({str(err).strip()})") from None
    except (ValueError, pd.errors.EmptyDataError) as err:
        raise DataFormatError(f"{path}: cannot parse as CSV ({err})") from None
    df.columns = [str(c).strip() for c in df.columns]
    # trailing empty lines become all-empty rows: drop them
    empty = df.isna().all(axis=1).to_numpy()
    if empty.any() and empty[-1]:
        last = len(empty) - int(np.argmin(empty[::-1])) if not empty.all() else 0
        df = df.iloc[:last]
    return df, header, (lambda col, i: f"{path}: column {col!r}, row {i} (line {i + 2})")


def _read_parquet(path: Path, raw: bytes):
    if importlib.util.find_spec("pyarrow") is None:
        raise ImportError(f"reading the Parquet file {path} needs pyarrow, which is not installed: "
                          "pip install pyarrow (or save the table as CSV or NPZ)")
    import pandas as pd

    try:
        df = pd.read_parquet(io.BytesIO(raw), engine="pyarrow")
    except Exception as err:  # pyarrow raises its own ArrowInvalid / OSError types
        raise DataFormatError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})") from None
    header = [str(c).strip() for c in df.columns]
    df.columns = header
    return df, header, (lambda col, i: f"{path}: column {col!r}, row {i}")


def _feature_matrix(df, cols: Sequence[str], at) -> np.ndarray:
    import pandas as pd

    X = np.empty((len(df), len(cols)), dtype=np.float64)
    for j, c in enumerate(cols):
        s = df[c]
        if s.dtype.kind == "b":
            raise DataFormatError(f"{at(c, 0)}: holds True/False values; feature values must be numbers")
        if s.dtype.kind in "iuf":
            v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            try:
                v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError):
                raise DataFormatError(f"{at(c, 0)}: column of type {s.dtype} holds no numbers; feature values "
                                      "must be numbers") from None
            bad = np.isnan(v) & s.notna().to_numpy()
            if bad.any():
                i = int(np.argmax(bad))
                raise DataFormatError(f"{at(c, i)}: non-numeric value {s.iloc[i]!r}; feature values must be numbers")
        nonfinite = ~np.isfinite(v) | (np.abs(v) > np.finfo(np.float32).max)
        if nonfinite.any():
            i = int(np.argmax(nonfinite))
            problem = ("missing value (empty cell or NaN)" if np.isnan(v[i]) else
                       "infinite value" if np.isinf(v[i]) else f"{float(v[i])!r} does not fit float32")
            raise DataFormatError(f"{at(c, i)}: {problem}; every feature value must be a finite number")
        X[:, j] = v
    return X


def load_table(
    path: os.PathLike | str,
    label_column: str = "label",
    feature_columns: Sequence[str] | None = None,
    subject_column: str | None = "subject",
    split_column: str | None = "split",
    class_names: Sequence[str] | Mapping[Any, str] | None = None,
    name: str | None = None,
) -> Dataset:
    """Load a CSV or Parquet feature table (format in the module docstring).

    ``subject_column`` / ``split_column``: the column is optional under its default name; a name
    you pass explicitly must exist.  ``None`` ignores the column.
    """
    path = check_path("load_table", "path", path).resolve()
    fmt = FILE_SUFFIXES.get(path.suffix.lower())
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"load_table: {path} must end in .csv, .parquet or .pq")
    for arg, v in (("label_column", label_column), ("subject_column", subject_column),
                   ("split_column", split_column)):
        if v is not None and (not isinstance(v, str) or not v.strip()):
            also = "" if arg == "label_column" else " or None"
            raise ValueError(f"load_table: {arg} must be a column name (non-empty str){also}, got {v!r}")
    if feature_columns is not None and (isinstance(feature_columns, (str, bytes)) or
                                        not all(isinstance(c, str) for c in feature_columns)):
        raise ValueError(f"load_table: feature_columns must be a list of column names, got {feature_columns!r}")
    raw = _read_bytes(path)
    df, header, at = (_read_csv if fmt == "csv" else _read_parquet)(path, raw)
    dups = sorted({h for h in header if header.count(h) > 1})
    if dups:
        raise DataFormatError(f"{path}: duplicate column name(s) {dups}")
    if len(df) == 0:
        raise DataFormatError(f"{path}: no data rows (only the header)")
    cols = list(df.columns)
    if label_column not in cols:
        raise DataFormatError(f"{path}: no label column {label_column!r}; columns are {cols[:20]}"
                              f"{' ...' if len(cols) > 20 else ''} (pass label_column= to choose another)")
    used = {"label": label_column, "subject": None, "split": None}
    for role, col, default in (("subject", subject_column, "subject"), ("split", split_column, "split")):
        if col is None:
            continue
        if col in cols:
            used[role] = col
        elif col != default:
            raise DataFormatError(f"{path}: no {role} column {col!r}; columns are {cols[:20]}")
    if feature_columns is None:
        skip = set(RESERVED_COLUMNS) | {c for c in used.values() if c}
        feats = [c for c in cols if c not in skip]
        if not feats:
            raise DataFormatError(f"{path}: no feature columns (columns are {cols}); every column other than "
                                  "label, subject and split is a feature")
    else:
        feats = list(feature_columns)
        if not feats:
            raise ValueError("load_table: feature_columns must name at least one column")
        missing = [c for c in feats if c not in cols]
        if missing:
            raise DataFormatError(f"{path}: feature column(s) {missing[:10]} not found; columns are {cols[:20]}")
        clash = [c for c in feats if c in {v for v in used.values() if v}]
        if clash:
            raise ValueError(f"load_table: column(s) {clash} cannot be both a feature and the label/subject/split")
        if len(set(feats)) != len(feats):
            raise ValueError(f"load_table: feature_columns lists a column twice: {feats}")
    X = _feature_matrix(df, feats, at)
    params = {"label_column": label_column, "feature_columns": None if feature_columns is None else feats,
              "subject_column": subject_column, "split_column": split_column}
    meta = _common_meta(path, raw, f"table_{fmt}", params)
    meta["columns"] = {k: v for k, v in used.items() if v}
    return build_dataset(
        X, df[label_column].to_numpy(), name=name or path.stem, src=str(path), at=at,
        at_index=lambda idx: at(feats[idx[1]], idx[0]), columns={k: v or k for k, v in used.items()},
        subject=None if used["subject"] is None else df[used["subject"]].to_numpy(),
        split=None if used["split"] is None else df[used["split"]].to_numpy(),
        class_names=class_names, feature_names=feats,
        source=f"{fmt.upper()} table {path}", layout=f"table_{fmt}", meta=meta)


# -------------------------------------------------------------------------------- NPZ
def load_npz(path: os.PathLike | str, class_names: Sequence[str] | Mapping[Any, str] | None = None,
             name: str | None = None) -> Dataset:
    """Load an arrays file (``X``, ``y``, optional ``subject``, ``split``, ``feature_names``,
    ``class_names``; format in the module docstring).  ``class_names=`` overrides the file's."""
    path = check_path("load_npz", "path", path).resolve()
    raw = _read_bytes(path)
    if raw.startswith(b"\x93NUMPY"):
        raise DataFormatError(f"{path}: holds a single array, not an .npz archive of named arrays "
                              f"({', '.join(NPZ_KEYS)}); write it with np.savez(path, X=..., y=...)")
    if not raw.startswith(b"PK"):
        raise DataFormatError(f"{path}: not an .npz file (an .npz is a zip archive of .npy arrays, written by "
                              "np.savez(path, X=..., y=...)); the file does not start like a zip archive")
    try:
        z = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as err:
        raise DataFormatError(f"{path}: not a readable .npz file ({type(err).__name__}: {err})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataFormatError(f"{path}: holds a single array, not an .npz archive of named arrays "
                              f"({', '.join(NPZ_KEYS)}); write it with np.savez(path, X=..., y=...)")
    with z:
        unknown = sorted(set(z.files) - set(NPZ_KEYS))
        if unknown:
            raise DataFormatError(f"{path}: unknown key(s) {unknown}; accepted: {', '.join(NPZ_KEYS)}")
        for key in ("X", "y"):
            if key not in z.files:
                raise DataFormatError(f"{path}: missing key {key!r} (arrays found: {sorted(z.files)})")
        arrays = {}
        for key in z.files:
            try:
                arrays[key] = z[key]
            except ValueError as err:
                if "pickle" not in str(err):
                    raise DataFormatError(f"{path}: array {key!r} is corrupt ({err})") from None
                # object arrays need pickle: refused
                raise DataFormatError(f"{path}: array {key!r} cannot be read without unpickling ({err}); store "
                                      "numbers or fixed-width strings (numpy 'U' dtype), not Python objects") from None
            except Exception as err:  # zipfile.BadZipFile (bad CRC), EOFError, zlib.error ...
                raise DataFormatError(f"{path}: array {key!r} is corrupt ({type(err).__name__}: {err})") from None
    X = arrays["X"]
    file_names = arrays.get("class_names")
    if class_names is None and file_names is not None:
        if file_names.ndim != 1 or file_names.dtype.kind != "U":
            raise DataFormatError(f"{path}: class_names must be a 1-D string array, got {file_names.dtype} "
                                  f"{file_names.shape}")
        class_names = [str(s) for s in file_names]
    fnames = arrays.get("feature_names")
    if fnames is not None:
        if fnames.ndim != 1 or fnames.dtype.kind != "U":
            raise DataFormatError(f"{path}: feature_names must be a 1-D string array, got {fnames.dtype} "
                                  f"{fnames.shape}")
        if X.ndim != 2:
            raise DataFormatError(f"{path}: feature_names is only for 2-D X (feature vectors), X has shape {X.shape}")
    layout = "images_npz" if X.ndim == 4 else "table_npz"
    meta = _common_meta(path, raw, layout, {})
    return build_dataset(
        X, arrays["y"], name=name or path.stem, src=str(path), at=lambda col, i: f"{path}: {col}[{i}]",
        at_index=lambda idx: f"{path}: X[{', '.join(map(str, idx))}]",
        columns={"label": "y", "subject": "subject", "split": "split"},
        subject=arrays.get("subject"), split=arrays.get("split"), allow_bool_split=True,
        class_names=class_names, feature_names=None if fnames is None else [str(s) for s in fnames],
        source=f"NPZ arrays {path}", layout=layout, meta=meta)


def load_file(path: os.PathLike | str, **params: Any) -> Dataset:
    """Load a ``.csv`` / ``.parquet`` / ``.pq`` table or an ``.npz`` arrays file.

    ``params``: tables take ``label_column``, ``feature_columns``, ``subject_column``,
    ``split_column``, ``class_names``, ``name``; NPZ files take ``class_names``, ``name``.
    An unknown parameter is a TypeError listing the accepted ones.
    """
    p = check_path("load_file", "path", path)
    fmt = FILE_SUFFIXES.get(p.suffix.lower())
    if fmt is None:
        raise ValueError(f"load_file: {p} has suffix {p.suffix!r}; expected one of {', '.join(FILE_SUFFIXES)}")
    fn = load_npz if fmt == "npz" else load_table
    import inspect
    accepted = [k for k in inspect.signature(fn).parameters if k != "path"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise TypeError(f"load_dataset({os.fspath(path)!r}): unknown parameter(s) {unknown} for a {fmt} file; "
                        f"accepted: {accepted}")
    return fn(p, **params)
