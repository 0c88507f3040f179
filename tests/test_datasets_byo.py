"""Bring your own data: CSV / Parquet / NPZ tables, NPZ images, from_arrays, identity, scenario."""
from __future__ import annotations

import importlib.util
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from intsim.datasets import (DataFormatError, DatasetIdentityError, check_identity, dataset_identity,
                             from_arrays, load_dataset, minmax_preprocess)
from intsim.datasets.scenario import Scenario

HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None
ACTIVITIES = ("walk", "sit", "stairs", "run")


def write_har_csv(path: Path, n_subjects: int = 5, per_cell: int = 6, split: bool = False) -> Path:
    """A made-up HAR feature table: 4 features, string labels, subjects, optional split column."""
    rng = np.random.default_rng(0)
    lines = ["acc_mean,acc_std,gyro_mean,gyro_std,label,subject" + (",split" if split else "")]
    for s in range(1, n_subjects + 1):
        for c, act in enumerate(ACTIVITIES):
            for _ in range(per_cell):
                f = rng.normal(loc=c, scale=0.3, size=4) + 0.1 * s
                row = [f"{v:.5f}" for v in f] + [act, str(s)]
                if split:
                    row.append("test" if s == n_subjects else "train")
                lines.append(",".join(row))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_har_csv_through_load_dataset_and_scenario(tmp_path):
    path = write_har_csv(tmp_path / "myhar.csv")
    ds = load_dataset(path)
    assert len(ds) == 5 * 4 * 6 and ds.X.shape == (120, 4) and ds.X.dtype == np.float32
    assert ds.feature_names == ("acc_mean", "acc_std", "gyro_mean", "gyro_std")
    # classes: sorted distinct labels (strings in code-point order)
    assert ds.class_names == ("run", "sit", "stairs", "walk") and ds.original_labels == ds.class_names
    assert ds.y[:6].tolist() == [3] * 6  # first rows are "walk"
    assert ds.subject.tolist()[:24] == [1] * 24 and ds.is_test is None
    assert ds.name == "myhar" and not ds.synthetic and ds.meta["prescaled"] is False
    # no split column: the scenario splits by subject (1 of 5 subjects for test)
    sc = Scenario.from_dataset(ds, init_cls=2, increment=1, seed=0, preprocess=minmax_preprocess())
    assert sc.split_mode.startswith("subjects") and len(sc.test_subjects) == 1
    assert sc.n_tasks == 3 and sc.describe()["n_test"] == 24
    X0, y0 = sc.train_task(0)
    assert len(X0) == 2 * 4 * 6 and set(y0.tolist()) == {0, 1}
    # the path as a string, relative to data_dir
    again = load_dataset("myhar.csv", data_dir=tmp_path)
    np.testing.assert_array_equal(again.X, ds.X)


def test_split_column_is_the_scenario_official_split(tmp_path):
    ds = load_dataset(write_har_csv(tmp_path / "split.csv", split=True))
    assert ds.is_test.sum() == 24 and set(ds.subject[ds.is_test].tolist()) == {5}
    assert "split" not in ds.feature_names
    sc = Scenario.from_dataset(ds, init_cls=2, increment=2, seed=3)
    assert sc.split_mode == "official" and sc.describe()["n_test"] == 24
    by_subject = Scenario.from_dataset(ds, init_cls=2, increment=2, seed=3, split="subjects")
    assert by_subject.split_mode.startswith("subjects")
    ignored = load_dataset(tmp_path / "split.csv", split_column=None)
    assert ignored.is_test is None and "split" not in ignored.feature_names


def test_column_parameters(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("person,a,b,activity,note\n1,0.5,1,3,7\n2,0.1,2,1,8\n1,0.3,3,3,9\n")
    ds = load_dataset(p, label_column="activity", subject_column="person", feature_columns=["b", "a"],
                      class_names={1: "sitting", 3: "running"})
    assert ds.feature_names == ("b", "a") and ds.X[0].tolist() == [1.0, 0.5]
    assert ds.original_labels == (1, 3) and ds.class_names == ("sitting", "running") and ds.y.tolist() == [1, 0, 1]
    assert ds.subject.tolist() == [1, 2, 1]
    default = load_dataset(p, label_column="activity", subject_column="person")
    assert default.feature_names == ("a", "b", "note")


def test_string_subjects_and_case_insensitive_split(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("x,label,subject,split\n1,a,p2,Train\n2,b,p1, train\n3,a,p1,TEST\n4,b,p2,test\n")
    ds = load_dataset(p)
    assert ds.subject.tolist() == [2, 1, 1, 2] and ds.meta["subject_ids"] == {"p1": 1, "p2": 2}
    assert ds.is_test.tolist() == [False, False, True, True]


def test_trailing_blank_lines_and_bom(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b"\xef\xbb\xbff0,label\n1,0\n2,1\n\n\n")
    assert load_dataset(p).y.tolist() == [0, 1]


def test_npz_table_and_images(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "tab.npz", X=rng.normal(size=(8, 3)), y=np.array([5, 7] * 4),
             subject=np.repeat([1, 2], 4), feature_names=np.array(["u", "v", "w"]),
             class_names=np.array(["five", "seven"]))
    t = load_dataset(tmp_path / "tab.npz")
    assert t.X.shape == (8, 3) and t.class_names == ("five", "seven") and t.feature_names == ("u", "v", "w")
    assert t.meta["layout"] == "table_npz"
    imgs = rng.integers(0, 256, size=(12, 3, 4, 4), dtype=np.uint8)
    split = np.array(["train"] * 8 + ["test"] * 4)
    np.savez(tmp_path / "img.npz", X=imgs, y=np.arange(12) % 3, split=split)
    ds = load_dataset(str(tmp_path / "img.npz"))
    assert ds.X.shape == (12, 3, 4, 4) and ds.meta["layout"] == "images_npz"
    assert ds.X[1, 2, 3, 0] == pytest.approx(imgs[1, 2, 3, 0] / 255) and ds.meta["value_range"] == [0.0, 1.0]
    assert ds.is_test.tolist() == [False] * 8 + [True] * 4
    sc = Scenario.from_dataset(ds, init_cls=1, increment=1)
    assert sc.split_mode == "official" and sc.train_task(0)[0].shape[1:] == (3, 4, 4)
    # boolean split in an NPZ
    np.savez(tmp_path / "b.npz", X=np.zeros((4, 2)), y=[0, 1, 0, 1], split=np.array([False, False, True, True]))
    assert load_dataset(tmp_path / "b.npz").is_test.tolist() == [False, False, True, True]


def test_npz_pickle_payload_not_executed(tmp_path):
    target = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (target,))

    np.savez(tmp_path / "evil.npz", X=np.zeros((2, 2)), y=np.array([Payload(), Payload()], dtype=object))
    with pytest.raises(DataFormatError, match=r"evil\.npz: array 'y' cannot be read without unpickling"):
        load_dataset(tmp_path / "evil.npz")
    assert not target.exists()
    (tmp_path / "evil2.npz").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(DataFormatError, match=r"evil2\.npz"):
        load_dataset(tmp_path / "evil2.npz")
    assert not target.exists()


def test_from_arrays_matches_file(tmp_path):
    path = write_har_csv(tmp_path / "myhar.csv", split=True)
    ds = load_dataset(path)
    arr = from_arrays(ds.X, np.array(ds.class_names)[ds.y], subject=ds.subject, split=ds.is_test,
                      name="myhar", feature_names=ds.feature_names)
    np.testing.assert_array_equal(arr.X, ds.X)
    assert arr.y.tolist() == ds.y.tolist() and arr.class_names == ds.class_names
    assert arr.is_test.tolist() == ds.is_test.tolist()
    assert dataset_identity(arr)["content_sha256"] == dataset_identity(ds)["content_sha256"]
    assert dataset_identity(arr)["files"] == [] and arr.meta["layout"] == "arrays"
    sc = Scenario.from_dataset(arr, init_cls=2, increment=2)
    assert sc.split_mode == "official"


def test_identity_records_path_and_sha256(tmp_path):
    import hashlib
    path = write_har_csv(tmp_path / "myhar.csv")
    ds = load_dataset(path)
    ident = dataset_identity(ds)
    assert json.loads(json.dumps(ident)) == ident  # JSON-ready
    [f] = ident["files"]
    assert f["path"] == str(path.resolve()) and f["bytes"] == path.stat().st_size
    assert f["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ident["params"]["label_column"] == "label" and ident["loader"] == "table_csv"
    assert check_identity(ident) == [] and check_identity(ident, load_dataset(path)) == []
    # another label column choice is another data set
    with pytest.raises(DatasetIdentityError, match="params"):
        check_identity(ident, dataset_identity(load_dataset(path, subject_column=None)))
    # a moved file with the same content is fine (a note), a changed file is not
    moved = tmp_path / "moved.csv"
    moved.write_bytes(path.read_bytes())
    notes = check_identity({**ident, "name": "moved"}, dataset_identity(load_dataset(moved)))
    assert notes and "same content" in notes[0]
    path.write_text(path.read_text() + "0,0,0,0,sit,9\n")
    with pytest.raises(DatasetIdentityError, match=r"myhar\.csv changed: SHA-256 was"):
        check_identity(ident)
    with pytest.raises(DatasetIdentityError, match="myhar.csv changed"):
        check_identity(ident, load_dataset(path))
    path.unlink()
    with pytest.raises(DatasetIdentityError, match="no longer exists"):
        check_identity(ident)


def test_identity_of_registry_data(tmp_path):
    from intsim.datasets import write_watch_npz
    write_watch_npz(tmp_path / "watch_dataset.npz", [np.zeros((300, 6)), np.ones((300, 6))], y=[0, 1],
                    subject=[1, 2], y_labels=["a", "b"])
    a = load_dataset("watch", tmp_path, cache_dir=tmp_path / "c")
    b = load_dataset("watch", tmp_path, cache_dir=tmp_path / "c")
    assert (a.meta["cache"], b.meta["cache"]) == ("miss", "hit")
    assert dataset_identity(a) == dataset_identity(b)
    assert dataset_identity(a)["files"][0]["path"] == str((tmp_path / "watch_dataset.npz").resolve())
    assert dataset_identity(a)["params"] == {"window": 128, "step": 64}
    syn = load_dataset("synthetic", n_classes=3, n_subjects=2, windows_per_cell=2)
    assert dataset_identity(syn)["files"] == [] and dataset_identity(syn)["params"]["n_classes"] == 3


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow not installed")
def test_parquet_table(tmp_path):
    import pandas as pd
    csv = load_dataset(write_har_csv(tmp_path / "myhar.csv", split=True))
    pd.read_csv(tmp_path / "myhar.csv").to_parquet(tmp_path / "myhar.parquet")
    pq = load_dataset(tmp_path / "myhar.parquet")
    np.testing.assert_array_equal(pq.X, csv.X)
    assert pq.class_names == csv.class_names and pq.is_test.tolist() == csv.is_test.tolist()
    assert pq.meta["layout"] == "table_parquet"


def test_parquet_without_pyarrow_says_install(tmp_path, monkeypatch):
    import intsim.datasets.byo as byo
    real = importlib.util.find_spec
    monkeypatch.setattr(byo.importlib.util, "find_spec", lambda n, *a: None if n == "pyarrow" else real(n, *a))
    (tmp_path / "t.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ImportError, match=r"t\.parquet needs pyarrow.*pip install pyarrow"):
        load_dataset(tmp_path / "t.parquet")


def test_scenario_needs_train_rows_per_class_clear_error_from_loader(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("x,label,split\n1,a,train\n2,b,test\n3,a,test\n")
    with pytest.raises(DataFormatError, match=r"class\(es\) \['b'\] have no 'train' row"):
        load_dataset(p)


def test_csv_in_memory_bytes_are_what_is_hashed(tmp_path):
    """The identity hashes exactly the bytes that were parsed (read once)."""
    p = tmp_path / "t.csv"
    p.write_text("f,label\n1,0\n2,1\n")
    ds = load_dataset(p)
    import hashlib
    assert ds.meta["source_files"][0]["sha256"] == hashlib.sha256(b"f,label\n1,0\n2,1\n").hexdigest()


def test_docs_example_table_loads(tmp_path):
    """The example table in docs/data.md is a valid file with the documented outcome."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text()
    block = text.split("```csv\n", 1)[1].split("```", 1)[0]
    (tmp_path / "myhar.csv").write_text(block)
    ds = load_dataset(tmp_path / "myhar.csv")
    assert ds.class_names == ("run", "sit", "walk") and ds.X.shape == (6, 4)
    assert ds.is_test.tolist() == [False] * 3 + [True] * 3
    assert Scenario.from_dataset(ds, init_cls=2, increment=1).split_mode == "official"
