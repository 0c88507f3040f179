"""Real data that installs from package registries: seglearn "watch", scikit-learn digits,
Debian Fashion-MNIST.

None of these imports the package that ships the data: the watch recordings are located with
``importlib.util.find_spec("seglearn")`` (which does not execute seglearn) and read with NumPy.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from intsim.datasets.base import ARCHIVES, Dataset, malformed_error, missing_data_error
from intsim.datasets.har_features import magnitude_features, sliding_windows
from intsim.datasets.images import read_idx

__all__ = [
    "WATCH_FS", "WATCH_GROUPS", "FASHION_MNIST_DIR", "FASHION_MNIST_CLASSES",
    "watch_file", "read_watch", "load_watch", "load_digits", "load_fashion_mnist",
]

WATCH_FS = 50.0
#: channels ax ay az wx wy wz -> accelerometer and gyroscope magnitudes
WATCH_GROUPS = (("acc", (0, 1, 2)), ("gyro", (3, 4, 5)))
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")


def watch_file() -> Path:
    """Path of seglearn's ``watch_dataset.npy`` (found without importing seglearn).

    Raises FileNotFoundError if seglearn is not installed or the file is missing.
    """
    spec = importlib.util.find_spec("seglearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "watch: the seglearn package is not installed, so its bundled watch_dataset.npy is not "
            f"available. Install {ARCHIVES['watch'][0]}."
        )
    pkg = Path(list(spec.submodule_search_locations)[0])
    for path in (pkg / "data" / "watch_dataset.npy", pkg / "datasets" / "data" / "watch_dataset.npy"):
        if path.is_file():
            return path
    raise missing_data_error("watch", pkg / "data" / "watch_dataset.npy")


def read_watch(path: os.PathLike | str | None = None) -> dict:
    """The raw watch dictionary: ``X`` list of (n_i, 6) float64 recordings, ``y`` (140,) 0..6,
    ``subject`` (140,) 1..10, ``side``, ``X_labels``, ``y_labels``.  Validates the structure.

    The file is a pickled dict inside a .npy (``allow_pickle=True``); only pass trusted files.
    """
    path = Path(path) if path is not None else watch_file()
    try:
        d = np.load(path, allow_pickle=True).item()
    except Exception as err:
        raise malformed_error("watch", path, f"cannot load ({type(err).__name__}: {err})") from None
    if not isinstance(d, dict) or not {"X", "y", "subject", "y_labels"} <= set(d):
        raise malformed_error("watch", path, "expected a dict with keys X, y, subject, y_labels")
    if not (len(d["X"]) == len(d["y"]) == len(d["subject"])):
        raise malformed_error("watch", path, "X, y and subject lengths differ")
    for i, rec in enumerate(d["X"]):
        if np.ndim(rec) != 2 or np.shape(rec)[1] != 6:
            raise malformed_error("watch", path, f"recording {i} has shape {np.shape(rec)}, expected (n, 6)")
    return d


def load_watch(window: int = 128, step: int = 64, path: os.PathLike | str | None = None) -> Dataset:
    """seglearn "watch" smartwatch IMU data -> 54 unscaled features per window.

    Each of the 140 recordings (6 channels ax ay az wx wy wz at 50 Hz) is cut into windows of
    ``window`` samples with hop ``step`` (default 128 / 64 = 2.56 s at 50% overlap; windows never
    span two recordings; a recording's trailing partial window is dropped).  Features: the 27
    magnitude features of the accelerometer, then of the gyroscope (``acc_*``, ``gyro_*``).
    Labels: seglearn's 0..6 unchanged (``class_names`` = its ``y_labels``); ``subject`` 1..10.
    """
    path = Path(path) if path is not None else watch_file()
    d = read_watch(path)
    wins, ys, subs = [], [], []
    for rec, lab, subj in zip(d["X"], d["y"], d["subject"], strict=True):
        w = sliding_windows(np.asarray(rec, dtype=np.float64), window, step)
        wins.append(w)
        ys.append(np.full(len(w), int(lab), dtype=np.int64))
        subs.append(np.full(len(w), int(subj), dtype=np.int64))
    W = np.concatenate(wins)
    X, names = magnitude_features(W, WATCH_GROUPS, fs=WATCH_FS)
    labels = [str(s) for s in d["y_labels"]]
    return Dataset(
        name="watch", X=X, y=np.concatenate(ys), subject=np.concatenate(subs), is_test=None,
        class_names=tuple(labels), synthetic=False,
        source=f"seglearn watch recordings ({path}), {len(d['X'])} recordings",
        original_labels=tuple(range(len(labels))), feature_names=names,
        meta={"layout": "seglearn_npy", "sampling_rate": WATCH_FS, "window": window, "step": step,
              "n_recordings": len(d["X"]), "prescaled": False},
    )


def load_digits(flatten: bool = True) -> Dataset:
    """scikit-learn digits: 1797 8x8 images, 10 classes; X = pixel / 16 in [0, 1].

    ``flatten=True`` (default) gives X (1797, 64); ``False`` gives (1797, 1, 8, 8).  No subjects,
    no official test split.
    """
    try:
        from sklearn.datasets import load_digits as _sk_digits
    except ImportError:
        raise FileNotFoundError(f"digits: scikit-learn is not installed. Install {ARCHIVES['digits'][0]}.") from None
    b = _sk_digits()
    X = np.asarray(b.data, dtype=np.float32) / np.float32(16.0)
    if not flatten:
        X = X.reshape(-1, 1, 8, 8)
    return Dataset(
        name="digits", X=X, y=np.asarray(b.target, dtype=np.int64), subject=None, is_test=None,
        class_names=tuple(str(i) for i in range(10)), synthetic=False,
        source="scikit-learn load_digits (UCI optical recognition of handwritten digits, test part)",
        original_labels=tuple(range(10)),
        feature_names=tuple(f"pixel_{r}_{c}" for r in range(8) for c in range(8)) if flatten else None,
        meta={"value_range": [0.0, 1.0]},
    )


def load_fashion_mnist(data_dir: os.PathLike | str | None = None, flatten: bool = False) -> Dataset:
    """Fashion-MNIST 60k train + 10k test from IDX files (``is_test`` marks the 10k).

    ``data_dir`` defaults to /usr/share/datasets/fashion-mnist (Debian package
    ``dataset-fashion-mnist``) and must hold ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``
    (uncompressed files without ``.gz`` are accepted too).  X float32 (70000, 1, 28, 28) in
    [0, 1], or (70000, 784) with ``flatten=True``.
    """
    d = Path(data_dir) if data_dir is not None else FASHION_MNIST_DIR
    Xs, ys = [], []
    for split in ("train", "t10k"):
        paths = []
        for kind in ("images-idx3", "labels-idx1"):
            p = d / f"{split}-{kind}-ubyte.gz"
            if not p.is_file() and (d / p.stem).is_file():
                p = d / p.stem
            if not p.is_file():
                raise missing_data_error("fashion_mnist", p)
            paths.append(p)
        imgs = read_idx(paths[0])
        labs = read_idx(paths[1])
        if imgs.ndim != 3 or imgs.dtype != np.uint8:
            raise malformed_error("fashion_mnist", paths[0],
                                  f"expected uint8 (n, 28, 28) images, got {imgs.dtype} {imgs.shape}")
        if labs.shape != (imgs.shape[0],) or (labs.size and labs.max() > 9):
            raise malformed_error("fashion_mnist", paths[1], f"expected {imgs.shape[0]} labels in 0..9")
        Xs.append(imgs)
        ys.append(labs.astype(np.int64))
    X = np.concatenate(Xs)[:, None].astype(np.float32) / np.float32(255.0)
    if flatten:
        X = X.reshape(len(X), -1)
    is_test = np.concatenate([np.zeros(len(ys[0]), bool), np.ones(len(ys[1]), bool)])
    return Dataset(
        name="fashion_mnist", X=X, y=np.concatenate(ys), subject=None, is_test=is_test,
        class_names=FASHION_MNIST_CLASSES, synthetic=False, source=f"Fashion-MNIST IDX files in {d}",
        original_labels=tuple(range(10)), meta={"value_range": [0.0, 1.0]},
    )
