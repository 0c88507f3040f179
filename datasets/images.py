"""Image data sets: CIFAR-100 ("python version" pickles) and the IDX format (MNIST family).

Images are returned as float32 (n, C, H, W) in [0, 1] (uint8 / 255).  Per-channel
normalisation and augmentation belong to the training code; the usual CIFAR-100 statistics are
in :data:`CIFAR100_MEAN` / :data:`CIFAR100_STD` and in ``Dataset.meta``.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from intsim.datasets.args import check_path
from intsim.datasets.base import Dataset, malformed_error, missing_data_error
from intsim.datasets.safeio import NumpyOnlyUnpickler

__all__ = ["CIFAR100_MEAN", "CIFAR100_STD", "cifar100_dir", "read_cifar_pickle", "load_cifar100", "read_idx"]

CIFAR100_MEAN = (0.5071, 0.4867, 0.4408)
CIFAR100_STD = (0.2675, 0.2565, 0.2761)


_NumpyOnlyUnpickler = NumpyOnlyUnpickler  # former private name


def _get(d: dict, key: str) -> Any:
    if key in d:
        return d[key]
    b = key.encode()
    if b in d:
        return d[b]
    raise KeyError(key)


def cifar100_dir(data_dir: os.PathLike | str) -> Path:
    """``data_dir/cifar-100-python`` or ``data_dir`` itself, whichever holds ``train``."""
    d = Path(data_dir)
    for cand in (d / "cifar-100-python", d):
        if (cand / "train").is_file():
            return cand
    raise missing_data_error("cifar100", d / "cifar-100-python" / "train")


def read_cifar_pickle(path: os.PathLike | str) -> dict:
    """Load one CIFAR pickle (Python-2 latin1 strings or bytes keys); returns a dict with str keys."""
    path = Path(path)
    if not path.is_file():
        raise missing_data_error("cifar100", path)
    try:
        with open(path, "rb") as f:
            obj = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    except Exception as err:
        raise malformed_error("cifar100", path, f"not a CIFAR python pickle ({type(err).__name__}: {err})") from None
    if not isinstance(obj, dict):
        raise malformed_error("cifar100", path, f"pickle holds a {type(obj).__name__}, expected a dict")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def load_cifar100(data_dir: os.PathLike | str, label_type: str = "fine") -> Dataset:
    """CIFAR-100 train + test: X float32 (60000, 3, 32, 32) in [0, 1], ``is_test`` for the 10000 test rows.

    ``label_type``: ``"fine"`` (100 classes, labels 0..99 as published) or ``"coarse"`` (20).
    Class names come from ``meta`` when present.
    """
    if label_type not in ("fine", "coarse"):
        raise ValueError(f"load_cifar100: label_type must be 'fine' or 'coarse', got {label_type!r}")
    folder = cifar100_dir(check_path("load_cifar100", "data_dir", data_dir))
    n_classes = 100 if label_type == "fine" else 20
    Xs, ys = [], []
    for split in ("train", "test"):
        path = folder / split
        d = read_cifar_pickle(path)
        try:
            data = np.asarray(_get(d, "data"))
            labels = np.asarray(_get(d, f"{label_type}_labels"), dtype=np.int64)
        except KeyError as err:
            raise malformed_error("cifar100", path, f"missing key {err}") from None
        if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] != 3072 or data.dtype != np.uint8:
            raise malformed_error("cifar100", path,
                                  f"'data' must be uint8 (n, 3072) with n >= 1, got {data.dtype} {data.shape}")
        if labels.shape != (data.shape[0],) or (labels.size and (labels.min() < 0 or labels.max() >= n_classes)):
            raise malformed_error("cifar100", path,
                                  f"'{label_type}_labels' must be {data.shape[0]} ints in 0..{n_classes - 1}")
        # rows are R plane, G plane, B plane, each 32x32 row-major
        Xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    names = tuple(f"class {i}" for i in range(n_classes))
    meta_path = folder / "meta"
    if meta_path.is_file():
        m = read_cifar_pickle(meta_path)
        try:
            cand = [str(s) for s in _get(m, f"{label_type}_label_names")]
            if len(cand) == n_classes:
                names = tuple(cand)
        except KeyError:
            pass
    X = np.concatenate(Xs).astype(np.float32) / np.float32(255.0)
    is_test = np.concatenate([np.zeros(len(ys[0]), bool), np.ones(len(ys[1]), bool)])
    return Dataset(
        name="cifar100", X=X, y=np.concatenate(ys), subject=None, is_test=is_test,
        class_names=names, synthetic=False, source=f"CIFAR-100 python pickles in {folder}",
        original_labels=tuple(range(n_classes)),
        meta={"layout": "cifar-100-python", "label_type": label_type, "value_range": [0.0, 1.0],
              "mean": list(CIFAR100_MEAN), "std": list(CIFAR100_STD)},
    )


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: os.PathLike | str, dataset: str = "fashion_mnist") -> np.ndarray:
    """Read an IDX file (optionally .gz): magic ``00 00 <type> <ndim>``, ndim big-endian uint32
    sizes, then the data.  MNIST images have magic 2051 (uint8, 3 dims), labels 2049 (uint8, 1 dim).
    """
    path = Path(path)
    if not path.is_file():
        raise missing_data_error(dataset, path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise malformed_error(dataset, path, f"cannot read ({type(err).__name__}: {err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise malformed_error(dataset, path, "bad IDX magic number")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise malformed_error(dataset, path, "truncated IDX header")
    dims = tuple(int(v) for v in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dt = np.dtype(_IDX_TYPES[raw[2]])
    need = int(np.prod(dims)) * dt.itemsize
    if len(raw) - header != need:
        raise malformed_error(dataset, path, f"{len(raw) - header} data bytes, header {dims} needs {need}")
    return np.frombuffer(raw, dt, offset=header).reshape(dims)
