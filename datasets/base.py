"""The common container for every data set, and the error helpers all loaders share.

Every loader in :mod:`intsim.datasets` returns a :class:`Dataset`.  Arrays inside a
``Dataset`` are made read-only, so one loaded (or cached) data set can be shared safely;
use :meth:`Dataset.subset` / :meth:`Dataset.replace` to derive new ones.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "Dataset",
    "remap_labels",
    "DataFormatError",
    "ARCHIVES",
    "missing_data_error",
    "malformed_error",
    "resolve_data_dir",
]


class DataFormatError(ValueError):
    """A data file exists but does not have the published layout (wrong columns, bad values)."""


#: For each data set: (archive the user must download, expected layout under ``data_dir``).
ARCHIVES: dict[str, tuple[str, str]] = {
    "dsads": (
        "the UCI 'Daily and Sports Activities' data set (data.zip)",
        "unzip so that DATA_DIR/a01/p1/s01.txt exists (a01..a19/p1..p8/s01..s60.txt, each "
        "125 rows x 45 comma-separated floats; DATA_DIR/data/a01/... is accepted too), or put "
        "the paper's feature table dsads.csv (9120 x 408, no header) in DATA_DIR",
    ),
    "pamap2": (
        "the UCI 'PAMAP2 Physical Activity Monitoring' data set (PAMAP2_Dataset.zip)",
        "unzip so that DATA_DIR/Protocol/subject101.dat exists (DATA_DIR/PAMAP2_Dataset/Protocol/"
        "... is accepted too; 54 space-separated columns per row), or put the paper's feature "
        "table pamap.csv (7312 x 245, no header) in DATA_DIR",
    ),
    "hapt": (
        "the UCI 'Smartphone-Based Recognition of Human Activities and Postural Transitions' "
        "data set (HAPT Data Set.zip)",
        "unzip so that DATA_DIR/Train/X_train.txt, DATA_DIR/Train/y_train.txt, "
        "DATA_DIR/Train/subject_id_train.txt and the same three files under DATA_DIR/Test/ exist "
        "(561 space-separated features per row)",
    ),
    "cifar100": (
        "the CIFAR-100 'python version' archive (cifar-100-python.tar.gz)",
        "extract so that DATA_DIR/cifar-100-python/train, .../test and .../meta exist "
        "(DATA_DIR may also be the cifar-100-python folder itself)",
    ),
    "fashion_mnist": (
        "the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)",
        "DATA_DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz "
        "(default DATA_DIR: /usr/share/datasets/fashion-mnist)",
    ),
    "watch": (
        "the PyPI package seglearn==1.2.5 (pip install -e '.[data]')",
        "seglearn/data/watch_dataset.npy inside the installed package",
    ),
    "digits": (
        "the PyPI package scikit-learn (pip install -e '.[data]')",
        "sklearn.datasets.load_digits",
    ),
}


def missing_data_error(name: str, path: os.PathLike | str, what: str = "") -> FileNotFoundError:
    """Build a FileNotFoundError naming ``path``, the expected layout and the archive for ``name``."""
    archive, layout = ARCHIVES[name]
    what = f" ({what})" if what else ""
    return FileNotFoundError(
        f"{name}: expected file or folder not found: {os.fspath(path)}{what}. "
        f"Download {archive}; {layout}."
    )


def malformed_error(name: str, path: os.PathLike | str, problem: str) -> DataFormatError:
    """Build a DataFormatError naming ``path``, the problem and the expected layout for ``name``."""
    archive, layout = ARCHIVES[name]
    return DataFormatError(
        f"{name}: malformed file {os.fspath(path)}: {problem}. Expected layout: {layout} "
        f"(from {archive})."
    )


def resolve_data_dir(name: str, data_dir: os.PathLike | str | None) -> Path:
    """Return ``data_dir`` as a Path, or ``$INTSIM_DATA/<name>`` when it is None.

    Raises FileNotFoundError (with the expected layout) when neither is given or the folder is
    missing.
    """
    if data_dir is None:
        root = os.environ.get("INTSIM_DATA")
        if not root:
            archive, layout = ARCHIVES[name]
            raise FileNotFoundError(
                f"{name}: no data_dir given and INTSIM_DATA is not set. Download {archive}; "
                f"{layout}; then pass data_dir=DATA_DIR (or set INTSIM_DATA so that "
                f"DATA_DIR=$INTSIM_DATA/{name})."
            )
        data_dir = Path(root) / name
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise missing_data_error(name, path, "data_dir is not a folder")
    return path


def _readonly(a: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return None
    # A read-only *view*: the caller's own array stays writeable, no data are copied.
    v = np.asarray(a).view()
    v.setflags(write=False)
    return v


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled data set, in memory.

    Attributes
    ----------
    name : str
        Registry name (``"watch"``, ``"dsads"``, ``"synthetic_har"``, ...).
    X : float32 array, shape (n, d) for feature vectors or (n, C, H, W) for images.
        HAR feature vectors are *unscaled* unless the loader says otherwise (the paper's
        feature tables and HAPT already lie in [-1, 1]); scale with
        :func:`intsim.datasets.fit_minmax` fitted on training subjects only.
    y : int64 array, shape (n,), values 0..n_classes-1.
        ``y == k`` means original label ``original_labels[k]``; loaders sort the original labels
        that survive filtering in ascending order, so the mapping is monotone.
    subject : int64 array, shape (n,), or None
        Original subject / person id (not remapped), None where the data set has none.
    is_test : bool array, shape (n,), or None
        True for rows of the data set's official test split (CIFAR-100, Fashion-MNIST, HAPT),
        None where there is no official split (HAR data sets are split by subject instead).
    class_names : tuple of str, length n_classes.
    synthetic : bool
        True if the data were generated, not recorded.  Never True for a loader of real data.
    source : str
        Human-readable provenance: files / package it came from and which layout was found.
    original_labels : tuple, length n_classes
        Label of class k in the source data's own coding (e.g. DSADS activity 1..19).
    feature_names : tuple of str or None
        One name per column of a 2-D ``X``.
    meta : mapping
        Extra facts (``layout``, ``params``, ``sampling_rate``, ``window``, ...).
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    subject: np.ndarray | None
    is_test: np.ndarray | None
    class_names: tuple[str, ...]
    synthetic: bool
    source: str
    original_labels: tuple[Any, ...] = ()
    feature_names: tuple[str, ...] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        X = np.asarray(self.X)
        if X.dtype != np.float32:
            X = X.astype(np.float32)
        if X.ndim not in (2, 4):
            raise ValueError(f"Dataset {self.name!r}: X must be (n, d) or (n, C, H, W), got shape {X.shape}")
        n = X.shape[0]
        y = np.asarray(self.y)
        if y.shape != (n,):
            raise ValueError(f"Dataset {self.name!r}: y must have shape ({n},), got {y.shape}")
        if y.size and not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"Dataset {self.name!r}: y must be integer, got {y.dtype}")
        y = y.astype(np.int64, copy=False)
        class_names = tuple(str(c) for c in self.class_names)
        n_classes = len(class_names)
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(
                f"Dataset {self.name!r}: labels must lie in 0..{n_classes - 1} "
                f"(len(class_names)), got {y.min()}..{y.max()}"
            )
        subject = None
        if self.subject is not None:
            subject = np.asarray(self.subject).astype(np.int64, copy=False)
            if subject.shape != (n,):
                raise ValueError(f"Dataset {self.name!r}: subject must have shape ({n},), got {subject.shape}")
        is_test = None
        if self.is_test is not None:
            is_test = np.asarray(self.is_test).astype(bool, copy=False)
            if is_test.shape != (n,):
                raise ValueError(f"Dataset {self.name!r}: is_test must have shape ({n},), got {is_test.shape}")
        original = tuple(self.original_labels) if self.original_labels else tuple(range(n_classes))
        if len(original) != n_classes:
            raise ValueError(
                f"Dataset {self.name!r}: original_labels has {len(original)} entries, "
                f"class_names has {n_classes}"
            )
        fnames = None
        if self.feature_names is not None:
            fnames = tuple(str(f) for f in self.feature_names)
            if X.ndim != 2 or len(fnames) != X.shape[1]:
                raise ValueError(
                    f"Dataset {self.name!r}: {len(fnames)} feature_names for X of shape {X.shape}"
                )
        object.__setattr__(self, "X", _readonly(X))
        object.__setattr__(self, "y", _readonly(y))
        object.__setattr__(self, "subject", _readonly(subject))
        object.__setattr__(self, "is_test", _readonly(is_test))
        object.__setattr__(self, "class_names", class_names)
        object.__setattr__(self, "original_labels", original)
        object.__setattr__(self, "feature_names", fnames)
        object.__setattr__(self, "meta", dict(self.meta))

    # ------------------------------------------------------------------ conveniences
    @property
    def n_classes(self) -> int:
        """Number of classes (``len(class_names)``; some may have no rows after subsetting)."""
        return len(self.class_names)

    @property
    def n_features(self) -> int:
        """Number of input values per sample (``prod(X.shape[1:])``)."""
        return int(np.prod(self.X.shape[1:]))

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def replace(self, **changes: Any) -> "Dataset":
        """Return a copy with some fields replaced (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def subset(self, rows: np.ndarray | Sequence[int]) -> "Dataset":
        """Rows selected by a boolean mask of shape (n,) or an integer index array.

        Labels, class names and the label mapping are kept unchanged (no remapping).
        """
        idx = np.asarray(rows)
        if idx.dtype == bool and idx.shape != (len(self),):
            raise ValueError(f"boolean mask must have shape ({len(self)},), got {idx.shape}")
        return self.replace(
            X=self.X[idx],
            y=self.y[idx],
            subject=None if self.subject is None else self.subject[idx],
            is_test=None if self.is_test is None else self.is_test[idx],
        )

    def class_counts(self) -> np.ndarray:
        """Rows per class, int64 array of shape (n_classes,)."""
        return np.bincount(self.y, minlength=self.n_classes).astype(np.int64)

    def summary(self) -> str:
        """One line: name, shape, classes, subjects, synthetic flag and source."""
        subj = "-" if self.subject is None else str(len(np.unique(self.subject)))
        test = "" if self.is_test is None else f", {int(self.is_test.sum())} official test rows"
        tag = " [SYNTHETIC]" if self.synthetic else ""
        return (
            f"{self.name}{tag}: X {tuple(self.X.shape)}, {self.n_classes} classes, "
            f"{subj} subjects{test}; source: {self.source}"
        )


def remap_labels(original: np.ndarray) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Map original labels to 0..C-1 in ascending order of the original values.

    Returns ``(y, originals)`` with ``originals[y[i]] == original[i]``.
    """
    originals, y = np.unique(np.asarray(original), return_inverse=True)
    return y.astype(np.int64).reshape(-1), tuple(v.item() for v in originals)
