"""Real data that installs from package registries: seglearn "watch", scikit-learn digits,
Debian Fashion-MNIST.

The watch recordings live in :mod:`intsim.datasets.watch` (release check, safe ``.npz`` format)
and are re-exported here.  Fashion-MNIST is read from the Debian package's IDX files, digits
through scikit-learn.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from intsim.datasets.args import check_bool, check_path
from intsim.datasets.base import ARCHIVES, Dataset, malformed_error, missing_data_error
from intsim.datasets.images import read_idx
from intsim.datasets.watch import WATCH_FS, WATCH_GROUPS, load_watch, read_watch, watch_file

__all__ = [
    "WATCH_FS", "WATCH_GROUPS", "FASHION_MNIST_DIR", "FASHION_MNIST_CLASSES",
    "watch_file", "read_watch", "load_watch", "load_digits", "fashion_mnist_files", "load_fashion_mnist",
]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")


def load_digits(flatten: bool = True) -> Dataset:
    """scikit-learn digits: 1797 8x8 images, 10 classes; X = pixel / 16 in [0, 1].

    ``flatten=True`` (default) gives X (1797, 64); ``False`` gives (1797, 1, 8, 8).  No subjects,
    no official test split.
    """
    flatten = check_bool("load_digits", "flatten", flatten)
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


def fashion_mnist_files(data_dir: os.PathLike | str | None = None) -> list[Path]:
    """The four IDX files (train images, train labels, t10k images, t10k labels) in ``data_dir``
    (default /usr/share/datasets/fashion-mnist), ``.gz`` or uncompressed.

    Raises FileNotFoundError naming the first missing file.
    """
    d = Path(data_dir) if data_dir is not None else FASHION_MNIST_DIR
    out = []
    for split in ("train", "t10k"):
        for kind in ("images-idx3", "labels-idx1"):
            p = d / f"{split}-{kind}-ubyte.gz"
            if not p.is_file() and (d / p.stem).is_file():
                p = d / p.stem
            if not p.is_file():
                raise missing_data_error("fashion_mnist", p)
            out.append(p)
    return out


def load_fashion_mnist(data_dir: os.PathLike | str | None = None, flatten: bool = False) -> Dataset:
    """Fashion-MNIST 60k train + 10k test from IDX files (``is_test`` marks the 10k).

    ``data_dir`` defaults to /usr/share/datasets/fashion-mnist (Debian package
    ``dataset-fashion-mnist``) and must hold ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``
    (uncompressed files without ``.gz`` are accepted too).  X float32 (70000, 1, 28, 28) in
    [0, 1], or (70000, 784) with ``flatten=True``.
    """
    flatten = check_bool("load_fashion_mnist", "flatten", flatten)
    d = check_path("load_fashion_mnist", "data_dir", data_dir) if data_dir is not None else FASHION_MNIST_DIR
    files = fashion_mnist_files(d)
    Xs, ys = [], []
    for i in range(2):
        paths = files[2 * i: 2 * i + 2]
        imgs = read_idx(paths[0])
        labs = read_idx(paths[1])
        if imgs.ndim != 3 or imgs.dtype != np.uint8:
            raise malformed_error("fashion_mnist", paths[0],
                                  f"expected uint8 (n, 28, 28) images, got {imgs.dtype} {imgs.shape}")
        if imgs.shape[0] == 0 or imgs.shape[1:] != (28, 28):
            raise malformed_error("fashion_mnist", paths[0],
                                  f"expected n >= 1 images of 28 x 28, got shape {imgs.shape}")
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
