"""HDF5 cache (keys, corruption, atomic writes), the Dataset container and the registry."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from intsim.datasets import DATASET_NAMES, Dataset, default_cache_dir, load_dataset
from intsim.datasets import cache as cache_mod
from intsim.datasets.cache import cache_key, cached, hash_files, read_cache, write_cache


def small_ds(**kw) -> Dataset:
    args = dict(name="tiny", X=np.arange(12, dtype=np.float32).reshape(4, 3), y=np.array([0, 1, 1, 0]),
                subject=np.array([1, 1, 2, 2]), is_test=None, class_names=("a", "b"), synthetic=False,
                source="unit test", original_labels=(3, 9), feature_names=("f0", "f1", "f2"),
                meta={"layout": "test", "nested": {"k": [1, 2]}})
    args.update(kw)
    return Dataset(**args)


# --------------------------------------------------------------------------------- container
def test_dataset_validation_and_readonly():
    ds = small_ds()
    assert ds.X.dtype == np.float32 and ds.y.dtype == np.int64 and ds.subject.dtype == np.int64
    assert len(ds) == 4 and ds.n_classes == 2 and ds.n_features == 3
    with pytest.raises(ValueError, match="read-only"):
        ds.X[0, 0] = 5
    with pytest.raises(AttributeError):
        ds.name = "other"
    with pytest.raises(ValueError, match=r"labels must lie in 0..1"):
        small_ds(y=np.array([0, 1, 2, 0]))
    with pytest.raises(ValueError, match=r"y must have shape \(4,\)"):
        small_ds(y=np.array([0, 1]))
    with pytest.raises(ValueError, match="subject must have shape"):
        small_ds(subject=np.array([1]))
    with pytest.raises(ValueError, match=r"\(n, d\) or \(n, C, H, W\)"):
        small_ds(X=np.zeros((4, 3, 2)), feature_names=None)
    with pytest.raises(ValueError, match="original_labels"):
        small_ds(original_labels=(1,))
    with pytest.raises(ValueError, match="feature_names"):
        small_ds(feature_names=("a",))
    with pytest.raises(ValueError, match="integer"):
        small_ds(y=np.array([0.0, 1.0, 1.0, 0.0]))


def test_dataset_subset_keeps_mapping():
    ds = small_ds(is_test=np.array([False, True, False, True]))
    sub = ds.subset(ds.subject == 2)
    assert sub.X.tolist() == [[6, 7, 8], [9, 10, 11]] and sub.y.tolist() == [1, 0]
    assert sub.is_test.tolist() == [False, True] and sub.original_labels == (3, 9)
    assert sub.class_counts().tolist() == [1, 1]
    assert ds.subset([3]).subject.tolist() == [2]
    with pytest.raises(ValueError, match="boolean mask"):
        ds.subset(np.array([True, False]))
    assert "tiny: X (4, 3), 2 classes, 2 subjects" in ds.summary()


# ------------------------------------------------------------------------------------- cache
def write_hapt(root: Path) -> None:
    """Minimal HAPT layout: train labels 1, 8, 2 (users 1, 1, 7); test labels 5, 3 (users 3, 3)."""
    for split, labels, users in (("train", [1, 8, 2], [1, 1, 7]), ("test", [5, 3], [3, 3])):
        d = root / split.capitalize()
        d.mkdir(parents=True)
        np.savetxt(d / f"X_{split}.txt", np.full((len(labels), 561), 0.25) * np.arange(len(labels))[:, None])
        (d / f"y_{split}.txt").write_text("\n".join(map(str, labels)) + "\n")
        (d / f"subject_id_{split}.txt").write_text("\n".join(map(str, users)) + "\n")


def test_write_read_roundtrip(tmp_path):
    ds = small_ds(is_test=np.array([True, False, False, True]))
    p = tmp_path / "c" / "x.h5"
    write_cache(p, ds)
    back = read_cache(p)
    for f in ("X", "y", "subject", "is_test"):
        np.testing.assert_array_equal(getattr(back, f), getattr(ds, f))
    assert back.class_names == ds.class_names and back.original_labels == (3, 9)
    assert back.feature_names == ds.feature_names and back.meta == {"layout": "test", "nested": {"k": [1, 2]}}
    assert back.source == ds.source and back.synthetic is False
    assert [q.name for q in p.parent.iterdir()] == ["x.h5"]  # no temporary file left


def test_cached_hit_miss_and_keys(tmp_path):
    src = tmp_path / "src.txt"
    src.write_text("one")
    calls = []

    def build():
        calls.append(1)
        return small_ds()

    cdir = tmp_path / "cache"
    a = cached("tiny", [src], tmp_path, {"w": 1}, build, cdir)
    b = cached("tiny", [src], tmp_path, {"w": 1}, build, cdir)
    assert (a.meta["cache"], b.meta["cache"], len(calls)) == ("miss", "hit", 1)
    cached("tiny", [src], tmp_path, {"w": 2}, build, cdir)  # other params -> other key
    assert len(calls) == 2
    src.write_text("two")  # other content -> other key
    c = cached("tiny", [src], tmp_path, {"w": 1}, build, cdir)
    assert c.meta["cache"] == "miss" and len(calls) == 3
    assert len(list(cdir.glob("tiny-*.h5"))) == 3
    d = cached("tiny", [src], tmp_path, {"w": 1}, build, cdir, enabled=False)
    assert d.meta["cache"] == "disabled" and len(calls) == 4
    # same content under a different root-relative name -> different key
    assert hash_files([src], tmp_path) != hash_files([src], tmp_path.parent)
    assert cache_key("x", "d", {"a": (1, 2)}) == cache_key("x", "d", {"a": [1, 2]})


@pytest.mark.parametrize("damage", ["garbage", "truncate", "tamper"])
def test_corrupt_cache_is_detected_and_rebuilt(tmp_path, damage):
    src = tmp_path / "src.txt"
    src.write_text("data")
    cdir = tmp_path / "cache"
    cached("tiny", [src], tmp_path, {}, small_ds, cdir)
    (path,) = cdir.glob("tiny-*.h5")
    if damage == "garbage":
        path.write_bytes(b"this is not HDF5")
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        with h5py.File(path, "r+") as f:
            f["X"][0, 0] = 123.0  # valid HDF5, wrong content
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        ds = cached("tiny", [src], tmp_path, {}, small_ds, cdir)
    assert ds.meta["cache"] == "rebuilt" and ds.X[0, 0] == 0.0
    assert cached("tiny", [src], tmp_path, {}, small_ds, cdir).meta["cache"] == "hit"


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def boom(a, b):
        raise OSError("disk full")

    monkeypatch.setattr(cache_mod.os, "replace", boom)
    src = tmp_path / "src.txt"
    src.write_text("data")
    cdir = tmp_path / "cache"
    with pytest.warns(RuntimeWarning, match="could not write"):
        ds = cached("tiny", [src], tmp_path, {}, small_ds, cdir)
    assert ds.meta["cache"] == "unwritable" and len(ds) == 4
    assert list(cdir.iterdir()) == []  # neither a final file nor a temporary one


def test_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("INTSIM_CACHE", raising=False)
    assert default_cache_dir() == Path("~/.cache/intsim").expanduser()
    monkeypatch.setenv("INTSIM_CACHE", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    assert default_cache_dir(tmp_path / "arg") == tmp_path / "arg"


def test_registry_caches_under_env_dir(tmp_path, monkeypatch):
    """HAPT through load_dataset: first call builds, second hits, a changed source rebuilds."""
    monkeypatch.setenv("INTSIM_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "hapt"
    write_hapt(data)
    a = load_dataset("hapt", data)
    b = load_dataset("hapt", data)
    assert (a.meta["cache"], b.meta["cache"]) == ("miss", "hit")
    np.testing.assert_array_equal(a.X, b.X)
    assert b.is_test.tolist() == a.is_test.tolist() and b.class_names == a.class_names
    assert a.subject.tolist() == [1, 3, 3] and a.is_test.tolist() == [False, True, True]
    (data / "Test" / "subject_id_test.txt").write_text("3\n4\n")
    c = load_dataset("hapt", data)
    assert c.meta["cache"] == "miss" and c.subject.tolist() == [1, 3, 4]
    d = load_dataset("hapt", data, drop_subjects=())
    assert d.meta["cache"] == "miss" and len(d) == 4
    assert len(list((tmp_path / "cache").glob("hapt-*.h5"))) == 3


# ---------------------------------------------------------------------------------- registry
def test_registry_names_and_errors(tmp_path, monkeypatch):
    assert set(DATASET_NAMES) == {"watch", "digits", "fashion_mnist", "dsads", "pamap2", "hapt", "cifar100",
                                  "synthetic", "dsads_synthetic"}
    with pytest.raises(ValueError, match="unknown data set 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['bogus'\]"):
        load_dataset("synthetic", bogus=1)
    with pytest.raises(ValueError, match="takes no data_dir"):
        load_dataset("dsads_synthetic", tmp_path)
    monkeypatch.delenv("INTSIM_DATA", raising=False)
    for name, needle in [("dsads", "Daily and Sports"), ("pamap2", "PAMAP2"), ("hapt", "Postural"),
                         ("cifar100", "cifar-100-python.tar.gz")]:
        with pytest.raises(FileNotFoundError, match="INTSIM_DATA") as e:
            load_dataset(name)
        assert needle in str(e.value)
    monkeypatch.setenv("INTSIM_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"hapt.*not a folder"):
        load_dataset("hapt")
    with pytest.raises(ValueError, match="layout must be"):
        (tmp_path / "dsads").mkdir()
        load_dataset("dsads", layout="csv")
