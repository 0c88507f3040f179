"""Build a :class:`Dataset` from plain arrays, validating every value.

:func:`from_arrays` is the Python entry for data of your own; the file readers of
:mod:`intsim.datasets.byo` (CSV, Parquet, NPZ) end in the same :func:`build_dataset`, so the rules
are the same everywhere:

* ``X``: finite numbers, shape (n, d) (feature vectors) or (n, C, H, W) (images), n >= 1; every
  value must fit float32 (|x| <= 3.4e38), since ``Dataset.X`` is float32.
* labels (``y``): integers (floats with integral values count) or strings, no missing value;
  at least 2 distinct classes.  Class ``k`` is the k-th of the sorted distinct labels
  (ascending numbers, or strings in code-point order: ``"Walk" < "run" < "sit"``), so
  ``Dataset.y`` holds 0..C-1, ``original_labels[k]`` the label itself and ``class_names[k]``
  ``str(label)`` -- unless ``class_names`` is given: a sequence of C names (in that sorted
  order) or a mapping {label: name} covering every label.
* ``subject`` (optional): integers or strings, no missing value.  Integer ids are kept as they
  are; string ids are numbered 1..S in sorted order (``meta["subject_ids"]`` maps name -> id).
* ``split`` (optional): ``"train"`` / ``"test"`` per row (case and surrounding spaces ignored);
  :func:`from_arrays` and NPZ files also accept a boolean array (True = test row).  It becomes
  ``Dataset.is_test``, which :class:`intsim.datasets.scenario.Scenario` uses as the official split
  (``split="auto"`` picks it; ``split="subjects"`` / ``"samples"`` override it).  With a split,
  both parts must be non-empty and every class needs at least one training row.

Every violation is a :class:`~intsim.datasets.base.DataFormatError` (a ValueError) naming the
source (file or ``from_arrays``), the column or argument, and the first offending row.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from intsim.datasets.base import DataFormatError, Dataset

__all__ = ["SPLIT_VALUES", "FLOAT32_MAX", "from_arrays", "build_dataset", "parse_labels", "parse_subjects",
           "parse_split", "check_features"]

SPLIT_VALUES = ("train", "test")
FLOAT32_MAX = float(np.finfo(np.float32).max)

#: ``at(column, row) -> str`` describes a cell for error messages, e.g. "myhar.csv: column 'label', row 3 (line 5)"
Locator = Callable[[str, int], str]


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    if isinstance(v, str) and not v.strip():
        return True
    try:
        import pandas as pd
        return v is pd.NA or v is pd.NaT
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False


def _as_values(values: Any, what: str, n: int | None, src: str) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != 1:
        raise DataFormatError(f"{src}: {what} must be 1-D (one value per row), got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise DataFormatError(f"{src}: {what} has {a.shape[0]} values, X has {n} rows")
    return a


def _ints_or_strings(a: np.ndarray, column: str, at: Locator, what: str) -> np.ndarray:
    """``a`` as int64 or as a str array (stripped); refuses missing, bool, non-integral values."""
    kind = a.dtype.kind
    if kind == "b":
        raise DataFormatError(f"{at(column, 0)}: {what} must be integers or strings, got True/False values")
    if kind in "iu":
        return a.astype(np.int64)
    if kind == "f":
        bad = ~np.isfinite(a) | (a != np.round(a))
        if bad.any():
            i = int(np.argmax(bad))
            problem = "missing value (empty cell or NaN)" if np.isnan(a[i]) else \
                f"{a[i].item()!r} is not an integer ({what} must be integers or strings)"
            raise DataFormatError(f"{at(column, i)}: {problem}")
        return a.astype(np.int64)
    if kind in "US":
        s = np.char.strip(a.astype(str))
        empty = s == ""
        if empty.any():
            raise DataFormatError(f"{at(column, int(np.argmax(empty)))}: missing value (empty)")
        return s
    if kind == "O":
        items = a.tolist()
        for i, v in enumerate(items):
            if _is_missing(v):
                raise DataFormatError(f"{at(column, i)}: missing value (empty cell or NaN)")
        if all(isinstance(v, str) for v in items):
            return np.array([v.strip() for v in items], dtype=str)
        for i, v in enumerate(items):
            if isinstance(v, bool) or not isinstance(v, (numbers.Integral, float, np.floating)):
                raise DataFormatError(f"{at(column, i)}: {v!r} ({type(v).__name__}): {what} must be all integers "
                                      "or all strings")
            if v != round(v):
                raise DataFormatError(f"{at(column, i)}: {v!r} is not an integer ({what} must be integers "
                                      "or strings)")
        return np.array([int(v) for v in items], dtype=np.int64)
    raise DataFormatError(f"{at(column, 0)}: {what} must be integers or strings, got dtype {a.dtype}")


def parse_labels(values: Any, column: str, at: Locator, src: str, n: int | None = None,
                 class_names: Sequence[str] | Mapping[Any, str] | None = None,
                 ) -> tuple[np.ndarray, tuple[Any, ...], tuple[str, ...]]:
    """Labels -> ``(y int64 0..C-1, original labels (sorted), class names)``; needs >= 2 classes."""
    v = _ints_or_strings(_as_values(values, f"label column {column!r}", n, src), column, at, "labels")
    if v.size == 0:
        raise DataFormatError(f"{src}: no data rows")
    originals, y = np.unique(v, return_inverse=True)
    orig = tuple(o.item() if isinstance(o, np.generic) else o for o in originals)
    orig = tuple(str(o) if isinstance(o, np.str_) else o for o in orig)
    if len(orig) < 2:
        raise DataFormatError(f"{src}: label column {column!r} holds {len(orig)} distinct class ({orig[0]!r}); "
                              "class-incremental learning needs at least 2 classes")
    if class_names is None:
        names = tuple(str(o) for o in orig)
    elif isinstance(class_names, Mapping):
        missing = [o for o in orig if o not in class_names]
        if missing:
            raise DataFormatError(f"{src}: class_names has no name for label(s) {missing[:10]}")
        names = tuple(str(class_names[o]) for o in orig)
    else:
        if isinstance(class_names, (str, bytes)):
            raise DataFormatError(f"{src}: class_names must be a sequence or mapping of names, got a string")
        names = tuple(str(c) for c in class_names)
        if len(names) != len(orig):
            raise DataFormatError(f"{src}: class_names has {len(names)} names, the labels have {len(orig)} "
                                  f"classes {list(orig)[:20]}")
    if len(set(names)) != len(names):
        raise DataFormatError(f"{src}: class names must be distinct, got {list(names)[:20]}")
    return y.reshape(-1).astype(np.int64), orig, names


def parse_subjects(values: Any, column: str, at: Locator, src: str, n: int
                   ) -> tuple[np.ndarray, dict[str, int] | None]:
    """Subject ids -> ``(int64 ids, None)`` or, for string ids, ``(1..S, {name: id})``."""
    v = _ints_or_strings(_as_values(values, f"subject column {column!r}", n, src), column, at, "subject ids")
    if v.dtype.kind in "iu":
        return v, None
    names, idx = np.unique(v, return_inverse=True)
    return (idx.reshape(-1) + 1).astype(np.int64), {str(s): i + 1 for i, s in enumerate(names)}


def parse_split(values: Any, column: str, at: Locator, src: str, n: int, allow_bool: bool) -> np.ndarray:
    """``"train"``/``"test"`` strings (or bools when ``allow_bool``: True = test) -> is_test bool (n,)."""
    a = _as_values(values, f"split column {column!r}", n, src)
    if a.dtype.kind == "b":
        if not allow_bool:
            raise DataFormatError(f"{at(column, 0)}: split values must be 'train' or 'test', got True/False")
        return a.astype(bool)
    if a.dtype.kind not in "USO":
        raise DataFormatError(f"{at(column, 0)}: split values must be 'train' or 'test', got {a.dtype} values "
                              f"such as {a[0].item()!r}")
    items = a.tolist()
    out = np.zeros(n, dtype=bool)
    for i, v in enumerate(items):
        s = v.strip().lower() if isinstance(v, str) else None
        if s not in SPLIT_VALUES:
            raise DataFormatError(f"{at(column, i)}: split value {v!r} is not 'train' or 'test'")
        out[i] = s == "test"
    return out


def check_features(X: np.ndarray, at_index: Callable[[tuple[int, ...]], str], src: str) -> np.ndarray:
    """``X`` as a numeric array of rank 2 or 4 with finite values that fit float32."""
    X = np.asarray(X)
    if X.dtype.kind not in "iuf":
        raise DataFormatError(f"{src}: X must hold numbers, got dtype {X.dtype}")
    if X.ndim not in (2, 4):
        raise DataFormatError(f"{src}: X has rank {X.ndim} (shape {X.shape}); expected rank 2, (n, d) feature "
                              "vectors, or rank 4, (n, C, H, W) images")
    if X.shape[0] == 0:
        raise DataFormatError(f"{src}: no data rows (X has shape {X.shape})")
    if 0 in X.shape[1:]:
        raise DataFormatError(f"{src}: X has shape {X.shape}: every sample needs at least one value")
    if X.dtype.kind == "f":
        bad = ~np.isfinite(X) | (np.abs(X) > FLOAT32_MAX)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            val = X[idx]
            problem = ("NaN" if np.isnan(val) else "infinite" if np.isinf(val)
                       else f"{float(val)!r} does not fit float32")
            raise DataFormatError(f"{at_index(idx)}: {problem}; every feature value must be a finite number")
    return X


def build_dataset(
    X: np.ndarray,
    labels: Any,
    *,
    name: str,
    src: str,
    at: Locator,
    at_index: Callable[[tuple[int, ...]], str],
    columns: Mapping[str, str],
    subject: Any = None,
    split: Any = None,
    allow_bool_split: bool = False,
    class_names: Sequence[str] | Mapping[Any, str] | None = None,
    feature_names: Sequence[str] | None = None,
    source: str,
    layout: str,
    meta: Mapping[str, Any] | None = None,
) -> Dataset:
    """Validate the parts (rules in the module docstring) and assemble the Dataset.

    ``columns`` names the label / subject / split column (or argument) for messages:
    ``{"label": "label", "subject": "subject", "split": "split"}``.
    """
    X = check_features(X, at_index, src)
    n = X.shape[0]
    y, orig, names = parse_labels(labels, columns["label"], at, src, n, class_names)
    extra: dict[str, Any] = dict(meta or {})
    subj = None
    if subject is not None:
        subj, ids = parse_subjects(subject, columns["subject"], at, src, n)
        if ids is not None:
            extra["subject_ids"] = ids
    is_test = None
    if split is not None:
        is_test = parse_split(split, columns["split"], at, src, n, allow_bool_split)
        for part, mask in (("train", ~is_test), ("test", is_test)):
            if not mask.any():
                raise DataFormatError(f"{src}: split column {columns['split']!r} has no {part!r} row; a split "
                                      "needs both train and test rows (or leave the split out and let the "
                                      "scenario split by subject or sample)")
        no_train = sorted(set(range(len(orig))) - set(np.unique(y[~is_test]).tolist()))
        if no_train:
            raise DataFormatError(f"{src}: class(es) {[orig[k] for k in no_train][:10]} have no 'train' row in split "
                                  f"column {columns['split']!r}; every class needs training rows")
    if feature_names is not None:
        feature_names = tuple(str(f) for f in feature_names)
        if X.ndim != 2 or len(feature_names) != X.shape[1]:
            raise DataFormatError(f"{src}: {len(feature_names)} feature names for X of shape {X.shape}")
    if X.dtype == np.uint8 and X.ndim == 4:
        X = X.astype(np.float32) / np.float32(255.0)
        extra["value_range"] = [0.0, 1.0]
        extra["uint8_scaled"] = True
    extra.setdefault("prescaled", False)
    return Dataset(name=name, X=X, y=y, subject=subj, is_test=is_test, class_names=names, synthetic=False,
                   source=source, original_labels=orig, feature_names=feature_names,
                   meta={"layout": layout, **extra})


def from_arrays(
    X: Any,
    y: Any,
    subject: Any = None,
    split: Any = None,
    name: str = "arrays",
    class_names: Sequence[str] | Mapping[Any, str] | None = None,
    feature_names: Sequence[str] | None = None,
) -> Dataset:
    """A :class:`Dataset` from in-memory arrays (rules in the module docstring).

    Parameters
    ----------
    X : (n, d) feature vectors or (n, C, H, W) images; numbers (uint8 images are divided by 255).
    y : (n,) labels, integers or strings; >= 2 classes.
    subject : (n,) subject ids (integers or strings) or None.
    split : (n,) ``"train"``/``"test"`` strings, or a boolean array (True = test), or None.
    name : ``Dataset.name``.
    class_names : names in sorted-label order, or a mapping {label: name}; default ``str(label)``.
    feature_names : one name per column of a 2-D ``X``.

    The result has no source files; :func:`intsim.datasets.dataset_identity` identifies it by the
    SHA-256 of its arrays (``content_sha256``).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"from_arrays: name must be a non-empty str, got {name!r}")
    try:
        Xa = np.asarray(X)
    except Exception as err:
        raise ValueError(f"from_arrays: X must be an array of numbers ({type(err).__name__}: {err})") from None
    if Xa.dtype.kind == "O":
        raise ValueError("from_arrays: X must be an array of numbers, got dtype object (ragged rows or mixed types?)")
    arg = {"label": "y", "subject": "subject", "split": "split"}
    return build_dataset(
        Xa, y, name=name, src="from_arrays", at=lambda col, i: f"from_arrays: {col}[{i}]",
        at_index=lambda idx: f"from_arrays: X[{', '.join(map(str, idx))}]", columns=arg,
        subject=subject, split=split, allow_bool_split=True, class_names=class_names,
        feature_names=feature_names, source=f"in-memory arrays ({name})", layout="arrays",
        meta={"load_params": {}, "source_files": []})
