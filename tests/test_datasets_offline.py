"""Real data that installs offline (seglearn watch, scikit-learn digits, Debian Fashion-MNIST), the
IDX reader, and the labelled synthetic generators."""
from __future__ import annotations

import gzip
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from intsim.datasets import (DataFormatError, load_dataset, load_digits, load_fashion_mnist, load_watch,
                             make_synthetic_feature_table, make_synthetic_har_windows, read_idx,
                             scale_dataset, write_watch_npz)
from intsim.datasets.offline import FASHION_MNIST_DIR

HAS_SEGLEARN = importlib.util.find_spec("seglearn") is not None
HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None
HAS_FMNIST = (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file()


@pytest.mark.skipif(not HAS_SEGLEARN, reason="seglearn not installed (pip install -e '.[data]')")
def test_watch_real_data(tmp_path):
    ds = load_dataset("watch", cache_dir=tmp_path)
    assert not ds.synthetic and ds.name == "watch"
    assert ds.n_classes == 7 and len(ds.class_names) == 7
    assert set(np.unique(ds.y)) == set(range(7))
    assert len(np.unique(ds.subject)) == 10 and set(np.unique(ds.subject)) == set(range(1, 11))
    assert 3300 <= len(ds) <= 3900
    assert ds.X.shape[1] == 54 and ds.feature_names[0] == "acc_mean" and ds.feature_names[27] == "gyro_mean"
    assert np.isfinite(ds.X).all()
    # the accelerometer magnitude of a wrist watch is about 1 g (the data are in g)
    assert 0.5 < float(np.median(ds.X[:, 0])) < 2.0
    train = ds.subject <= 8
    scaled, scaler = scale_dataset(ds, train)
    assert scaled.X[train].min() >= -1.0 and scaled.X[train].max() <= 1.0
    # every used feature reaches both ends on the training rows (constant columns map to 0)
    varying = scaler.data_max > scaler.data_min
    assert np.allclose(scaled.X[train][:, varying].min(axis=0), -1)
    assert np.allclose(scaled.X[train][:, varying].max(axis=0), 1)
    clipped, _ = scale_dataset(ds, train, clip=True)
    assert clipped.X.min() >= -1.0 and clipped.X.max() <= 1.0
    again = load_dataset("watch", cache_dir=tmp_path)
    assert again.meta["cache"] == "hit"
    np.testing.assert_array_equal(again.X, ds.X)


@pytest.mark.skipif(not HAS_SEGLEARN, reason="seglearn not installed (pip install -e '.[data]')")
def test_watch_does_not_import_seglearn():
    code = ("import sys; from intsim.datasets import load_watch; d = load_watch(window=256, step=256); "
            "assert 'seglearn' not in sys.modules, 'seglearn was imported'; print(d.X.shape[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) > 0


def test_watch_missing_file_message(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"watch_dataset\.npy.*seglearn"):
        load_dataset("watch", tmp_path, cache=False)
    # user-supplied watch files use the safe .npz format (a .npy other than seglearn's release is refused)
    bad = write_watch_npz(tmp_path / "watch_dataset.npz", [np.zeros((200, 5))], y=[0], subject=[1], y_labels=["a"])
    with pytest.raises(DataFormatError, match=r"recording 0 has shape \(200, 5\)"):
        load_watch(path=bad)


def test_watch_windows_from_fixture(tmp_path):
    """Window counts per recording and label / subject bookkeeping on a tiny watch-format file."""
    rng = np.random.default_rng(0)
    recs = [rng.normal(size=(300, 6)), rng.normal(size=(127, 6)), rng.normal(size=(192, 6))]
    write_watch_npz(tmp_path / "watch_dataset.npz", recs, y=np.array([2, 0, 1]), subject=np.array([5, 6, 7]),
                    y_labels=["A", "B", "C"], side=np.zeros(3), X_labels=list("abcdef"))
    ds = load_dataset("watch", tmp_path, cache=False)
    # 300 -> (300-128)//64+1 = 3 windows; 127 -> 0; 192 -> 2
    assert ds.y.tolist() == [2, 2, 2, 1, 1] and ds.subject.tolist() == [5, 5, 5, 7, 7]
    assert ds.class_names == ("A", "B", "C")
    acc = np.sqrt((recs[2][64:192, :3] ** 2).sum(axis=1))
    assert ds.X[4, 0] == pytest.approx(acc.mean(), rel=1e-6)
    assert ds.X[4, 3] == pytest.approx(acc.max(), rel=1e-6)


@pytest.mark.skipif(not HAS_SKLEARN, reason="scikit-learn not installed (pip install -e '.[data]')")
def test_digits():
    ds = load_digits()
    assert ds.X.shape == (1797, 64) and ds.X.min() >= 0 and ds.X.max() == 1.0
    assert ds.n_classes == 10 and ds.subject is None and ds.is_test is None
    assert load_dataset("digits", flatten=False).X.shape == (1797, 1, 8, 8)


def _write_idx(path: Path, arr: np.ndarray, magic_type=0x08):
    header = bytes([0, 0, magic_type, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def test_idx_reader_and_fashion_layout_fixture(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 5), ("t10k", 3)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    imgs = read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    assert imgs.shape == (5, 28, 28) and imgs.dtype == np.uint8
    ds = load_fashion_mnist(tmp_path)
    assert ds.X.shape == (8, 1, 28, 28) and ds.is_test.tolist() == [False] * 5 + [True] * 3
    assert ds.X[0, 0, 3, 4] == pytest.approx(imgs[0, 3, 4] / 255)
    assert ds.y.tolist() == read_idx(tmp_path / "train-labels-idx1-ubyte.gz").tolist() + \
        read_idx(tmp_path / "t10k-labels-idx1-ubyte.gz").tolist()
    assert load_fashion_mnist(tmp_path, flatten=True).X.shape == (8, 784)
    # truncated data
    raw = gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw[:-1]))
    with pytest.raises(DataFormatError, match=r"t10k-labels-idx1-ubyte\.gz: 2 data bytes"):
        load_fashion_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)


@pytest.mark.skipif(not HAS_FMNIST, reason="Fashion-MNIST absent: apt-get install dataset-fashion-mnist")
def test_fashion_mnist_real():
    ds = load_dataset("fashion_mnist")
    assert ds.X.shape == (70000, 1, 28, 28) and ds.X.dtype == np.float32
    assert int(ds.is_test.sum()) == 10000
    assert ds.class_counts().tolist() == [7000] * 10
    assert 0.0 <= ds.X.min() and ds.X.max() <= 1.0


# --------------------------------------------------------------------------------- synthetic
def test_synthetic_har_is_labelled_and_class_dependent():
    W, y, s = make_synthetic_har_windows(n_classes=3, n_subjects=2, windows_per_cell=4, length=64, seed=1)
    assert W.shape == (24, 64, 6) and y.tolist() == [0] * 8 + [1] * 8 + [2] * 8
    assert s.tolist() == ([1] * 4 + [2] * 4) * 3
    W2, _, _ = make_synthetic_har_windows(n_classes=3, n_subjects=2, windows_per_cell=4, length=64, seed=1)
    np.testing.assert_array_equal(W, W2)
    ds = load_dataset("synthetic", n_classes=4, n_subjects=3, windows_per_cell=10)
    assert ds.synthetic and "synthetic" in ds.name and ds.source.startswith("SYNTHETIC")
    assert all(c.startswith("synthetic_") for c in ds.class_names)
    assert ds.X.shape == (120, 54)
    # nearest class mean on (train-scaled) features separates classes across subjects
    train = ds.subject <= 2
    sc, _ = scale_dataset(ds, train)
    means = np.stack([sc.X[train & (sc.y == c)].mean(axis=0) for c in range(4)])
    pred = np.argmin(((sc.X[~train][:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert (pred == sc.y[~train]).mean() > 0.6


def test_synthetic_feature_table_dsads_shape_learnable_not_trivial():
    ds = load_dataset("dsads_synthetic")
    assert ds.X.shape == (9120, 405) and ds.n_classes == 19 and ds.name == "dsads_synthetic"
    assert ds.synthetic and ds.source.startswith("SYNTHETIC")
    assert ds.class_counts().tolist() == [480] * 19
    assert sorted(set(ds.subject.tolist())) == list(range(1, 9))
    assert np.bincount(ds.subject)[1:].tolist() == [1140] * 8
    assert ds.X.min() == pytest.approx(-1) and ds.X.max() == pytest.approx(1)
    # nearest class mean trained on 7 subjects, tested on the 8th: far above chance, below perfect
    train = ds.subject <= 7
    means = np.stack([ds.X[train & (ds.y == c)].mean(axis=0) for c in range(19)])
    Xt = ds.X[~train]
    d = (Xt ** 2).sum(1)[:, None] - 2 * Xt @ means.T + (means ** 2).sum(1)[None]
    acc = (d.argmin(axis=1) == ds.y[~train]).mean()
    assert 0.4 < acc < 0.99, acc
    small = make_synthetic_feature_table(n_samples=100, n_features=7, n_classes=3, n_subjects=2, seed=3)
    assert small.X.shape == (100, 7) and small.class_counts().sum() == 100
    with pytest.raises(ValueError, match="every class x subject cell"):
        make_synthetic_feature_table(n_samples=5, n_classes=3, n_subjects=2)
