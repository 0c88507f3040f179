"""Loaders of the published raw layouts (DSADS, PAMAP2, HAPT, CIFAR-100) and the paper's feature
tables, on tiny fixtures written in exactly those layouts."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from intsim.datasets import (DataFormatError, FEATURE_NAMES, load_cifar100, load_dataset, load_dsads_raw,
                             load_feature_table, load_hapt, load_pamap2_raw, read_dsads_segments)

F = {n: i for i, n in enumerate(FEATURE_NAMES)}


# ------------------------------------------------------------------------------------ DSADS
def dsads_segment(activity: int, person: int, seg: int) -> np.ndarray:
    """125 x 45: every sensor constant (3, 4, 0) * scale, except torso acc x = 10 + 2 sin at 1 Hz."""
    n = np.arange(125)
    arr = np.zeros((125, 45))
    for g in range(15):
        scale = activity + 0.1 * person + 0.01 * g
        arr[:, 3 * g] = 3 * scale
        arr[:, 3 * g + 1] = 4 * scale
    # torso acc (cols 0..2): magnitude = 10 + 2 sin(2 pi 5 n / 125) (bin 5 at 25 Hz = 1 Hz)
    arr[:, 0] = 10 + 2 * np.sin(2 * np.pi * 5 * n / 125 + 0.3)
    arr[:, 1] = 0.0
    return arr


def write_dsads(root: Path, activities=(1, 3), persons=(1, 2), segs=(1, 2)) -> Path:
    for a in activities:
        for p in persons:
            d = root / f"a{a:02d}" / f"p{p}"
            d.mkdir(parents=True, exist_ok=True)
            for s in segs:
                np.savetxt(d / f"s{s:02d}.txt", dsads_segment(a, p, s), fmt="%.10f", delimiter=",")
    return root


def test_dsads_raw_shapes_labels_and_features(tmp_path):
    write_dsads(tmp_path / "data")  # the archive's own top folder is accepted
    ds = load_dsads_raw(tmp_path)
    assert ds.X.shape == (8, 405) and ds.X.dtype == np.float32
    assert ds.original_labels == (1, 3)
    assert ds.class_names == ("sitting", "lying on back")
    assert ds.y.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert ds.subject.tolist() == [1, 1, 2, 2, 1, 1, 2, 2]
    assert not ds.synthetic and ds.meta["layout"] == "raw" and ds.is_test is None
    assert ds.feature_names[0] == "torso_acc_mean" and ds.feature_names[27] == "torso_gyro_mean"
    assert ds.feature_names[81] == "right_arm_acc_mean" and ds.feature_names[-1] == "left_leg_mag_amp_kurt"
    # torso acc: 10 + 2 sin at 1 Hz
    row = ds.X[0]
    assert row[F["mean"]] == pytest.approx(10.0, rel=1e-6)
    assert row[F["std"]] == pytest.approx(np.sqrt(2), rel=1e-5)
    assert row[F["peak1_value"]] == pytest.approx(2.0, rel=1e-5)
    assert row[F["peak1_freq"]] == pytest.approx(1.0, rel=1e-6)
    assert row[F["energy"]] == pytest.approx(102.0, rel=1e-6)
    # group g (unit-major, acc/gyro/mag) of activity a, person p: constant 5 * (a + 0.1 p + 0.01 g)
    for i, (a, p) in enumerate([(1, 1), (1, 1), (1, 2), (1, 2), (3, 1), (3, 1), (3, 2), (3, 2)]):
        for g in (1, 7, 14):
            c = 5 * (a + 0.1 * p + 0.01 * g)
            assert ds.X[i, 27 * g + F["mean"]] == pytest.approx(c, rel=1e-6)
            assert ds.X[i, 27 * g + F["std"]] == pytest.approx(0.0, abs=1e-5)
            assert ds.X[i, 27 * g + F["peak1_value"]] == 0.0


def test_dsads_read_segments(tmp_path):
    write_dsads(tmp_path, activities=(2,), persons=(4,), segs=(7, 9))
    seg, act, person, segno = read_dsads_segments(tmp_path)
    assert seg.shape == (2, 125, 45)
    assert act.tolist() == [2, 2] and person.tolist() == [4, 4] and segno.tolist() == [7, 9]
    np.testing.assert_allclose(seg[1], dsads_segment(2, 4, 9), atol=1e-9)


def test_dsads_missing_and_malformed(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"a01[/\\]p1[/\\]s01\.txt.*Daily and Sports Activities"):
        load_dsads_raw(tmp_path)
    write_dsads(tmp_path, activities=(1,), persons=(1,), segs=(1, 2))
    bad = tmp_path / "a01" / "p1" / "s02.txt"
    bad.write_text("1,2,3\n4,5,6\n")
    with pytest.raises(DataFormatError, match=r"s02\.txt.*45 comma-separated"):
        load_dsads_raw(tmp_path)
    np.savetxt(bad, dsads_segment(1, 1, 2)[:100], fmt="%.6f", delimiter=",")
    with pytest.raises(DataFormatError, match=r"s02\.txt: 100 rows"):
        load_dsads_raw(tmp_path)
    text = (tmp_path / "a01" / "p1" / "s01.txt").read_text().replace("10.", "x.", 1)
    bad.write_text(text)
    with pytest.raises(DataFormatError, match="non-numeric"):
        load_dsads_raw(tmp_path)


# ----------------------------------------------------------------------------------- PAMAP2
ACT_RUNS = [(0, 50), (1, 300), (2, 250), (24, 300), (1, 60)]  # last run too short for a window


def pamap2_rows(subject: int) -> np.ndarray:
    T = sum(n for _, n in ACT_RUNS)
    arr = np.zeros((T, 54))
    arr[:, 0] = np.arange(T) / 100.0
    arr[:, 1] = np.concatenate([np.full(n, a) for a, n in ACT_RUNS])
    arr[:, 2] = np.nan  # heart rate: mostly missing in the real files
    t = np.arange(T)
    for imu in range(3):
        off = 17 * imu
        arr[:, 3 + off] = 30.0  # temperature
        arr[:, 4 + off], arr[:, 5 + off] = 3.0 * (imu + 1), 4.0 * (imu + 1)  # acc16: |.| = 5 (imu+1)
        arr[:, 7 + off:10 + off] = 99.0  # acc6: must be ignored
        arr[:, 13 + off] = subject  # mag: |.| = subject
        arr[:, 16 + off:20 + off] = 7.0  # orientation: ignored
    # chest gyro x = 10 + sin at 4 Hz (window 100 at 100 Hz -> bin 4)
    arr[:, 27] = 10 + np.sin(2 * np.pi * 4 * t / 100 + 0.5)
    arr[100, 4] = np.nan  # a dropped hand-acc sample inside activity 1: interpolated
    return arr


def write_pamap2(root: Path, subjects=(1, 2, 3)) -> Path:
    proto = root / "PAMAP2_Dataset" / "Protocol"
    proto.mkdir(parents=True)
    for s in subjects:
        np.savetxt(proto / f"subject1{s:02d}.dat", pamap2_rows(s), fmt="%.6f", delimiter=" ")
    return proto


def test_pamap2_raw_windows_labels_features(tmp_path):
    write_pamap2(tmp_path)
    ds = load_pamap2_raw(tmp_path, window=100, step=50)
    # subject 3 dropped by default, class 24 dropped; per subject: activity 1 -> 5 windows,
    # activity 2 -> 4 windows, the 60-sample run of activity 1 -> none
    assert ds.X.shape == (18, 243)
    assert ds.original_labels == (1, 2) and ds.class_names == ("lying", "sitting")
    assert ds.y.tolist() == ([0] * 5 + [1] * 4) * 2
    assert ds.subject.tolist() == [1] * 9 + [2] * 9
    names = ds.feature_names
    assert names[0] == "hand_acc_mean" and names[27] == "hand_gyro_mean" and names[81] == "chest_acc_mean"
    assert names[81 + 27] == "chest_gyro_mean" and names[162 + 54] == "ankle_mag_mean"
    hand_acc = ds.X[:, F["mean"]]
    assert hand_acc == pytest.approx(np.full(18, 5.0), rel=1e-6)  # NaN sample interpolated
    assert ds.X[:, F["std"]] == pytest.approx(np.zeros(18), abs=1e-5)
    assert ds.X[:, 162 + F["mean"]] == pytest.approx(np.full(18, 15.0), rel=1e-6)  # ankle acc 5*3
    assert ds.X[:, 162 + 54 + F["mean"]] == pytest.approx(ds.subject.astype(float), rel=1e-6)  # ankle mag
    cg = 81 + 27
    assert ds.X[:, cg + F["mean"]] == pytest.approx(np.full(18, 10.0), rel=1e-5)
    assert ds.X[:, cg + F["peak1_value"]] == pytest.approx(np.ones(18), rel=1e-4)
    assert ds.X[:, cg + F["peak1_freq"]] == pytest.approx(np.full(18, 4.0), rel=1e-6)


def test_pamap2_filters_are_parameters(tmp_path):
    write_pamap2(tmp_path)
    ds = load_pamap2_raw(tmp_path, window=100, step=50, drop_subjects=(), drop_classes=())
    assert ds.original_labels == (1, 2, 24)
    assert sorted(set(ds.subject.tolist())) == [1, 2, 3]
    assert ds.X.shape == (3 * (5 + 4 + 5), 243)


def test_pamap2_missing_and_malformed(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Protocol[/\\]subject101\.dat.*PAMAP2"):
        load_pamap2_raw(tmp_path)
    proto = write_pamap2(tmp_path, subjects=(1,))
    np.savetxt(proto / "subject102.dat", pamap2_rows(2)[:, :53], fmt="%.4f")
    with pytest.raises(DataFormatError, match=r"subject102\.dat: 53 columns, expected 54"):
        load_pamap2_raw(tmp_path, window=100, step=50)


# ------------------------------------------------------------------------------------- HAPT
def write_hapt(root: Path, ncols: int = 561) -> dict:
    spec = {
        "train": ([1, 8, 2, 3, 1, 12], [1, 1, 7, 2, 28, 2]),
        "test": ([5, 9, 8], [3, 3, 4]),
    }
    for split, (labels, subjects) in spec.items():
        d = root / split.capitalize()
        d.mkdir(parents=True)
        n = len(labels)
        X = (np.arange(n * ncols).reshape(n, ncols) % 97) / 97.0 - 0.5
        X[:, 0] = np.arange(n) + (100 if split == "test" else 0)  # row marker
        np.savetxt(d / f"X_{split}.txt", X, fmt="%.7e", delimiter=" ")
        (d / f"y_{split}.txt").write_text("\n".join(map(str, labels)) + "\n")
        (d / f"subject_id_{split}.txt").write_text("\n".join(map(str, subjects)) + "\n")
    (root / "activity_labels.txt").write_text(
        "\n".join(f"{i} ACT{i}" for i in range(1, 13)) + "\n")
    return spec


def test_hapt_official_split_and_paper_filters(tmp_path):
    write_hapt(tmp_path)
    ds = load_hapt(tmp_path)
    # dropped: class 8 (train row 1, test row 2) and users 7, 28 (train rows 2, 4)
    assert ds.X[:, 0].tolist() == [0, 3, 5, 100, 101]
    assert ds.X.shape == (5, 561)
    assert ds.original_labels == (1, 3, 5, 9, 12)
    assert ds.y.tolist() == [0, 1, 4, 2, 3]
    assert ds.subject.tolist() == [1, 2, 2, 3, 3]
    assert ds.is_test.tolist() == [False, False, False, True, True]
    assert ds.class_names == ("ACT1", "ACT3", "ACT5", "ACT9", "ACT12")
    everything = load_hapt(tmp_path, drop_subjects=(), drop_classes=())
    assert len(everything) == 9 and everything.n_classes == 7


def test_hapt_missing_and_malformed(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Train[/\\]X_train\.txt.*Postural Transitions"):
        load_hapt(tmp_path)
    write_hapt(tmp_path, ncols=560)
    with pytest.raises(DataFormatError, match=r"X_train\.txt: 560 columns, expected 561"):
        load_hapt(tmp_path)


def test_hapt_row_count_mismatch(tmp_path):
    write_hapt(tmp_path)
    (tmp_path / "Test" / "y_test.txt").write_text("5\n9\n")
    with pytest.raises(DataFormatError, match="row counts differ"):
        load_hapt(tmp_path)


# ---------------------------------------------------------------------------------- CIFAR-100
def write_cifar(root: Path, n_train=6, n_test=4, bytes_keys=False) -> dict:
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        fine = [int(v) for v in rng.integers(0, 100, n)]
        coarse = [v // 5 for v in fine]
        obj = {"data": data, "fine_labels": fine, "coarse_labels": coarse, "filenames": ["x"] * n}
        if bytes_keys:
            obj = {k.encode(): v for k, v in obj.items()}
        with open(d / split, "wb") as f:
            pickle.dump(obj, f, protocol=2)
        out[split] = (data, fine, coarse)
    with open(d / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"fine{i}" for i in range(100)],
                     "coarse_label_names": [f"coarse{i}" for i in range(20)]}, f, protocol=2)
    return out


@pytest.mark.parametrize("bytes_keys", [False, True])
def test_cifar100_layout(tmp_path, bytes_keys):
    raw = write_cifar(tmp_path, bytes_keys=bytes_keys)
    ds = load_cifar100(tmp_path)
    assert ds.X.shape == (10, 3, 32, 32) and ds.X.dtype == np.float32
    data = raw["train"][0]
    # R plane, then G plane, then B plane, each 32 x 32 row-major
    assert ds.X[0, 0, 0, 1] == pytest.approx(data[0, 1] / 255)
    assert ds.X[0, 0, 1, 0] == pytest.approx(data[0, 32] / 255)
    assert ds.X[0, 1, 0, 0] == pytest.approx(data[0, 1024] / 255)
    assert ds.X[2, 2, 31, 31] == pytest.approx(data[2, 3071] / 255)
    assert ds.y.tolist() == raw["train"][1] + raw["test"][1]
    assert ds.is_test.tolist() == [False] * 6 + [True] * 4
    assert ds.class_names[7] == "fine7" and ds.n_classes == 100
    coarse = load_cifar100(tmp_path / "cifar-100-python", label_type="coarse")
    assert coarse.y.tolist() == raw["train"][2] + raw["test"][2] and coarse.class_names[3] == "coarse3"


def test_cifar100_missing_and_malformed(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar-100-python[/\\]train.*cifar-100-python\.tar\.gz"):
        load_cifar100(tmp_path)
    write_cifar(tmp_path)
    with open(tmp_path / "cifar-100-python" / "test", "wb") as f:
        pickle.dump({"data": np.zeros((2, 100), np.uint8), "fine_labels": [0, 1]}, f, protocol=2)
    with pytest.raises(DataFormatError, match=r"test.*uint8 \(n, 3072\)"):
        load_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "test").write_bytes(b"not a pickle")
    with pytest.raises(DataFormatError, match="not a CIFAR python pickle"):
        load_cifar100(tmp_path)


def test_cifar_pickle_cannot_run_code(tmp_path):
    write_cifar(tmp_path)

    class Evil:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    with open(tmp_path / "cifar-100-python" / "train", "wb") as f:
        pickle.dump({"data": Evil()}, f, protocol=2)
    with pytest.raises(DataFormatError):
        load_cifar100(tmp_path)
    assert not (tmp_path / "pwned").exists()


# ------------------------------------------------------------------------- paper feature tables
def write_dsads_table(path: Path, n=6) -> np.ndarray:
    rng = np.random.default_rng(1)
    M = np.zeros((n, 408))
    M[:, :405] = rng.uniform(-1, 1, size=(n, 405))
    M[:, 405] = np.arange(n) + 1000  # unused sequence column
    M[:, 406] = [1, 19, 1, 5, 5, 19]
    M[:, 407] = [1, 1, 2, 2, 8, 8]
    np.savetxt(path, M, fmt="%.8f", delimiter=",")
    return M


def test_dsads_feature_table_via_registry(tmp_path, caplog):
    M = write_dsads_table(tmp_path / "dsads.csv")
    write_dsads(tmp_path, activities=(1,), persons=(1,), segs=(1,))  # raw also present
    import logging
    with caplog.at_level(logging.INFO, logger="intsim.datasets"):
        ds = load_dataset("dsads", tmp_path, cache=False)
    assert "feature table" in caplog.text
    assert ds.meta["layout"] == "feature_table" and "dsads.csv" in ds.source
    assert ds.X.shape == (6, 405)
    np.testing.assert_allclose(ds.X, M[:, :405], atol=1e-7)
    assert ds.original_labels == (1, 5, 19) and ds.y.tolist() == [0, 2, 0, 1, 1, 2]
    assert ds.subject.tolist() == [1, 1, 2, 2, 8, 8]
    assert ds.class_names == ("sitting", "ascending stairs", "playing basketball")
    raw = load_dataset("dsads", tmp_path, cache=False, layout="raw")
    assert raw.meta["layout"] == "raw" and raw.X.shape == (1, 405)


def test_pamap2_table_paper_filters(tmp_path):
    n = 8
    M = np.zeros((n, 245))
    M[:, :243] = np.linspace(-1, 1, n)[:, None]
    M[:, 243] = [1, 24, 4, 17, 1, 4, 1, 12]
    M[:, 244] = [1, 1, 3, 2, 4, 9, 5, 6]
    (tmp_path / "generated").mkdir()
    np.savetxt(tmp_path / "generated" / "pamap.csv", M, fmt="%.6f", delimiter=",")
    ds = load_dataset("pamap2", tmp_path, cache=False)
    # class 24 and subjects 3, 4, 9 dropped
    assert ds.subject.tolist() == [1, 2, 5, 6]
    assert ds.original_labels == (1, 12, 17) and ds.y.tolist() == [0, 2, 0, 1]
    assert ds.X.shape == (4, 243) and ds.meta["prescaled"] is True
    keep = load_dataset("pamap2", tmp_path, cache=False, drop_subjects=(), drop_classes=())
    assert len(keep) == 8
    with pytest.raises(TypeError, match="raw layout only"):
        load_dataset("pamap2", tmp_path, cache=False, window=100)


def test_feature_table_with_header(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("f1,f2,AID,USER\n0.5,-0.5,3,7\n0.1,0.2,1,7\n")
    ds = load_feature_table(p, name="mytable")
    assert ds.feature_names == ("f1", "f2") and ds.y.tolist() == [1, 0] and ds.original_labels == (1, 3)
    assert ds.subject.tolist() == [7, 7]


def test_feature_table_malformed(tmp_path):
    p = tmp_path / "dsads.csv"
    p.write_text("0.1,0.2,1,1\n")
    with pytest.raises(DataFormatError, match=r"dsads\.csv: 4 columns.*405 feature columns"):
        load_dataset("dsads", tmp_path, cache=False)
    M = write_dsads_table(p)
    M[2, 407] = 2.5
    np.savetxt(p, M, fmt="%.8f", delimiter=",")
    with pytest.raises(DataFormatError, match=r"person column \(column 407\) must hold integers"):
        load_dataset("dsads", tmp_path, cache=False)
    M[2, 407], M[3, 7] = 2, np.nan
    np.savetxt(p, M, fmt="%.8f", delimiter=",")
    with pytest.raises(DataFormatError, match="NaN"):
        load_dataset("dsads", tmp_path, cache=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"dsads\.csv.*layout='table'"):
        load_dataset("dsads", empty, cache=False, layout="table")
    with pytest.raises(FileNotFoundError, match="Daily and Sports Activities"):
        load_dataset("dsads", empty, cache=False)
