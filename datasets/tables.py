"""The paper's pre-extracted HAR feature tables (Wang et al.'s cross-position tables).

Layout (one row per window): feature columns first, then the label column, then the person
column, no header.  DSADS ``dsads.csv``: 9120 x 408 = 405 features, an unused activity-sequence
column, label 1..19, person 1..8.  PAMAP2 ``pamap.csv``: 7312 x 245 = 243 features, label
(PAMAP2 activity id), person 1..9.  The MATLAB versions ``dsads.mat`` / ``pamap.mat`` (one 2-D
numeric variable, e.g. ``data_dsads``) are read too when SciPy is installed.  A CSV *with* a header
is accepted if it names the label column (label/activity/aid/lbl) and the person column
(person/subject/user); then every other column is a feature unless ``n_features`` says otherwise.

General rule without header: features = the first ``n_features`` columns (default: all but the
last two), label = second-to-last column, person = last column; columns in between are ignored.
When the total column count is known (``n_columns``: 408 for DSADS, 245 for PAMAP2) a table with
any other count is an error naming the file and the expected count -- otherwise a 407-column
DSADS table would silently take its sequence column as the label.
Feature values are used as stored (the published tables are already scaled to [-1, 1]).
Files must be UTF-8 text; a table without data rows is an error.

For tables of your own (a header naming the columns, string labels, a train/test split column),
see :mod:`intsim.datasets.byo`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from intsim.datasets.args import check_int, check_int_sequence, check_path
from intsim.datasets.base import ARCHIVES, Dataset, malformed_error, missing_data_error, remap_labels
from intsim.datasets.har_raw import DSADS_ACTIVITIES, PAMAP2_ACTIVITIES
from intsim.datasets.safeio import decode_utf8

__all__ = ["TABLE_SPECS", "find_feature_table", "read_feature_table", "load_feature_table"]

ARCHIVES.setdefault("feature_table", (
    "the paper's pre-extracted feature table",
    "a CSV with one row per window: feature columns, then the label column, then the person "
    "column (no header, or a header naming 'label' and 'person')",
))

#: Per data set: candidate file names (searched in DATA_DIR and DATA_DIR/generated), feature count
#: and the paper's default filters.
TABLE_SPECS: dict[str, dict] = {
    "dsads": {"files": ("dsads.csv", "dsads.mat"), "n_features": 405, "n_columns": 408,
              "columns": "405 feature columns, then the sequence, label and person columns",
              "drop_subjects": (), "drop_classes": (), "class_names": DSADS_ACTIVITIES},
    "pamap2": {"files": ("pamap.csv", "pamap2.csv", "pamap.mat", "pamap2.mat"), "n_features": 243,
               "n_columns": 245, "columns": "243 feature columns, then the label and person columns",
               "drop_subjects": (3, 4, 9), "drop_classes": (24,), "class_names": PAMAP2_ACTIVITIES},
}

_LABEL_NAMES = {"label", "labels", "activity", "aid", "lbl", "class", "y"}
_PERSON_NAMES = {"person", "subject", "user", "subject_id", "usr"}


def find_feature_table(name: str, data_dir: os.PathLike | str) -> Path | None:
    """Path of the paper's table for ``name`` (``"dsads"``/``"pamap2"``) in data_dir, or None."""
    d = Path(data_dir)
    for folder in (d, d / "generated"):
        for fname in TABLE_SPECS[name]["files"]:
            if (folder / fname).is_file():
                return folder / fname
    return None


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _read_mat(path: Path, dataset: str, n_columns: int | None, columns: str) -> tuple:
    """(M float64, label column, person column, None, None) of a MATLAB table: its one 2-D
    numeric variable, label and person as its last two columns."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise ImportError(f"reading {path} needs SciPy (pip install -e '.[data]' installs scikit-learn, "
                          "which brings it), or convert the table to CSV") from None
    try:
        mat = loadmat(path)
    except Exception as err:
        raise malformed_error(dataset, path, f"not a readable MATLAB file ({err})") from None
    cands = [v for k, v in mat.items() if not k.startswith("__") and isinstance(v, np.ndarray)
             and v.ndim == 2 and v.dtype.kind in "fiu"]
    if len(cands) != 1:
        raise malformed_error(dataset, path, f"expected exactly one 2-D numeric variable, found {len(cands)}")
    M = cands[0].astype(np.float64)
    lab_col, per_col, feat_cols = M.shape[1] - 2, M.shape[1] - 1, None
    if n_columns is not None and M.shape[1] != n_columns:
        raise malformed_error(dataset, path, f"{M.shape[1]} columns, expected {n_columns}"
                              + (f" ({columns})" if columns else ""))
    if M.shape[0] == 0:
        raise malformed_error(dataset, path, "no data rows")
    return M, lab_col, per_col, feat_cols, None


def _read_csv(path: Path, dataset: str, n_features: int | None, n_columns: int | None,
              columns: str) -> tuple:
    """(M float64, label column, person column, feature columns or None, names or None) of a
    CSV table: with a header naming the label and person columns, or without one (label and
    person last)."""
    names: tuple[str, ...] | None = None
    import io

    import pandas as pd

    text = decode_utf8(path.read_bytes(), path, lambda problem: malformed_error(dataset, path, problem))
    first = text.lstrip("\r\n").split("\n", 1)[0]
    if not first.strip():
        raise malformed_error(dataset, path, "file is empty")
    cells = [c.strip().strip('"') for c in first.strip().split(",")]
    has_header = not all(_is_number(c) for c in cells if c)
    try:
        df = pd.read_csv(io.StringIO(text), header=0 if has_header else None)
    except pd.errors.EmptyDataError:
        raise malformed_error(dataset, path, "file is empty") from None
    except (ValueError, pd.errors.ParserError) as err:
        raise malformed_error(dataset, path, f"cannot parse as CSV ({err})") from None
    if len(df) == 0:
        raise malformed_error(dataset, path, "no data rows")
    if has_header:
        lower = [str(c).strip().lower() for c in df.columns]
        lab = [i for i, c in enumerate(lower) if c in _LABEL_NAMES]
        per = [i for i, c in enumerate(lower) if c in _PERSON_NAMES]
        if len(lab) != 1 or len(per) != 1:
            raise malformed_error(dataset, path, "header must name exactly one label column "
                                  f"({sorted(_LABEL_NAMES)}) and one person column ({sorted(_PERSON_NAMES)})")
        lab_col, per_col = lab[0], per[0]
        feat_cols = [i for i in range(df.shape[1]) if i not in (lab_col, per_col)]
        if n_features is not None:
            feat_cols = feat_cols[:n_features]
        names = tuple(str(df.columns[i]) for i in feat_cols)
    else:
        lab_col, per_col, feat_cols = df.shape[1] - 2, df.shape[1] - 1, None
        if n_columns is not None and df.shape[1] != n_columns:
            raise malformed_error(dataset, path, f"{df.shape[1]} columns, expected {n_columns}"
                                  + (f" ({columns})" if columns else ""))
    try:
        M = df.to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        for j, col in enumerate(df.columns):
            conv = pd.to_numeric(df[col], errors="coerce")
            bad = (conv.isna() & df[col].notna()).to_numpy()
            if bad.any():
                r = int(np.argmax(bad))
                raise malformed_error(dataset, path, f"non-numeric value {df[col].iloc[r]!r} in row {r}, "
                                      f"column {j}") from None
        raise malformed_error(dataset, path, "non-numeric values") from None
    return M, lab_col, per_col, feat_cols, names


def read_feature_table(
    path: os.PathLike | str,
    n_features: int | None = None,
    dataset: str = "feature_table",
    n_columns: int | None = None,
    columns: str = "",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...] | None]:
    """Read a table -> (features float64 (n, d), label int64 (n,), person int64 (n,), names or None).

    ``dataset`` only selects the wording of error messages (expected layout, archive).
    ``n_columns``: the exact column count a table without header must have (``columns``
    describes them in the error message).
    """
    path = check_path("read_feature_table", "path", path)
    if n_features is not None:
        n_features = check_int("read_feature_table", "n_features", n_features, minimum=1)
    if not path.is_file():
        raise missing_data_error(dataset, path)
    if path.suffix.lower() == ".mat":
        M, lab_col, per_col, feat_cols, names = _read_mat(path, dataset, n_columns, columns)
    else:
        M, lab_col, per_col, feat_cols, names = _read_csv(path, dataset, n_features, n_columns,
                                                          columns)
    ncols = M.shape[1]
    if feat_cols is None:
        nf = ncols - 2 if n_features is None else n_features
        if nf < 1 or nf > ncols - 2:
            raise malformed_error(dataset, path, f"{ncols} columns: need {n_features} feature columns "
                                  "followed by label and person columns")
        feat_cols = list(range(nf))
    elif n_features is not None and len(feat_cols) != n_features:
        raise malformed_error(dataset, path, f"{len(feat_cols)} feature columns, expected {n_features}")
    X = M[:, feat_cols]
    if not np.isfinite(X).all():
        r, c = np.argwhere(~np.isfinite(X))[0]
        raise malformed_error(dataset, path, f"feature columns contain NaN or inf (first: row {r}, column "
                              f"{feat_cols[c]}: {X[r, c]})")
    out = []
    for col, what in ((lab_col, "label"), (per_col, "person")):
        v = M[:, col]
        bad = ~np.isfinite(v) | (v != np.round(v))
        if bad.any():
            r = int(np.argmax(bad))
            raise malformed_error(dataset, path, f"{what} column (column {col}) must hold integers "
                                  f"(row {r}: {v[r]})")
        out.append(v.astype(np.int64))
    return X, out[0], out[1], names


def load_feature_table(
    path: os.PathLike | str,
    name: str = "feature_table",
    n_features: int | None = None,
    drop_subjects: Sequence[int] = (),
    drop_classes: Sequence[int] = (),
    class_names: Mapping[int, str] | None = None,
) -> Dataset:
    """Load a feature table as a :class:`Dataset` (``meta["layout"] = "feature_table"``).

    Rows whose person is in ``drop_subjects`` or label in ``drop_classes`` are removed; the
    remaining original labels, sorted, become 0..C-1.  ``subject`` keeps the person ids.
    """
    err_key = name if name in ARCHIVES else "feature_table"
    drop_subjects = check_int_sequence("load_feature_table", "drop_subjects", drop_subjects)
    drop_classes = check_int_sequence("load_feature_table", "drop_classes", drop_classes)
    spec = TABLE_SPECS.get(name, {})
    n_columns = spec.get("n_columns") if n_features in (None, spec.get("n_features")) else None
    X, lab, per, names = read_feature_table(path, n_features, err_key, n_columns, spec.get("columns", ""))
    keep = ~np.isin(per, list(drop_subjects)) & ~np.isin(lab, list(drop_classes))
    if not keep.any():
        raise malformed_error(err_key, path, "no rows left after dropping subjects "
                              f"{list(drop_subjects)} and classes {list(drop_classes)}")
    y, orig = remap_labels(lab[keep])
    cn = class_names or {}
    return Dataset(
        name=name, X=X[keep], y=y, subject=per[keep], is_test=None,
        class_names=tuple(cn.get(a, f"activity {a}") for a in orig),
        synthetic=False,
        source=f"feature table {Path(path)}",
        original_labels=orig, feature_names=names,
        meta={"layout": "feature_table", "drop_subjects": sorted(int(s) for s in drop_subjects),
              "drop_classes": sorted(int(c) for c in drop_classes),
              # the published tables are scaled to [-1, 1]; record what this file holds
              "prescaled": bool(X.size and X.min() >= -1.0 and X.max() <= 1.0)},
    )
