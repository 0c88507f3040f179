"""Loaders for the published raw layouts of DSADS, PAMAP2 and HAPT.

DSADS and PAMAP2 raw recordings are turned into the paper's feature vectors (27 features per
3-axis sensor magnitude, :mod:`intsim.datasets.har_features`): DSADS 5 units x 3 sensors x 27 =
405, PAMAP2 3 IMUs x 3 sensors x 27 = 243.  The features are *not* scaled; scale with
:func:`intsim.datasets.fit_minmax` on training subjects only.  HAPT ships the official 561 UCI
features (already in [-1, 1]).

Label mapping: the original activity ids that survive filtering, sorted ascending, become
0..C-1 (``Dataset.original_labels[k]`` is the original id of class ``k``).
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from intsim.datasets.args import check_int, check_int_sequence, check_path
from intsim.datasets.base import Dataset, malformed_error, missing_data_error, remap_labels
from intsim.datasets.har_features import magnitude_features, sliding_windows
from intsim.datasets.safeio import read_text

__all__ = [
    "DSADS_ACTIVITIES", "DSADS_UNITS", "PAMAP2_ACTIVITIES", "PAMAP2_IMUS", "HAPT_ACTIVITIES",
    "dsads_raw_files", "read_dsads_segments", "load_dsads_raw",
    "pamap2_raw_files", "read_pamap2_file", "load_pamap2_raw",
    "hapt_files", "load_hapt",
]

# ----------------------------------------------------------------------------------- DSADS
DSADS_ACTIVITIES: dict[int, str] = {
    1: "sitting", 2: "standing", 3: "lying on back", 4: "lying on right side",
    5: "ascending stairs", 6: "descending stairs", 7: "standing in elevator",
    8: "moving in elevator", 9: "walking in parking lot", 10: "walking on treadmill (flat)",
    11: "walking on treadmill (inclined)", 12: "running on treadmill", 13: "exercising on stepper",
    14: "exercising on cross trainer", 15: "cycling (horizontal)", 16: "cycling (vertical)",
    17: "rowing", 18: "jumping", 19: "playing basketball",
}
DSADS_UNITS = ("torso", "right_arm", "left_arm", "right_leg", "left_leg")
DSADS_SENSORS = ("acc", "gyro", "mag")
DSADS_COLUMNS = 45
#: rows per segment file: 5 s at 25 Hz
DSADS_ROWS = 125
DSADS_FS = 25.0
#: (group name, 3 column indices): unit-major, then acc/gyro/mag -> 15 magnitudes
DSADS_GROUPS = tuple(
    (f"{u}_{s}", (9 * iu + 3 * js, 9 * iu + 3 * js + 1, 9 * iu + 3 * js + 2))
    for iu, u in enumerate(DSADS_UNITS) for js, s in enumerate(DSADS_SENSORS)
)

_A_RE = re.compile(r"^a(\d{2})$")
_P_RE = re.compile(r"^p(\d+)$")
_S_RE = re.compile(r"^s(\d{2})\.txt$")


def _dsads_root(data_dir: Path) -> Path:
    if not data_dir.is_dir():
        raise missing_data_error("dsads", data_dir, "data_dir is not a folder")
    if (data_dir / "a01").is_dir() or any(_A_RE.match(p.name) for p in data_dir.iterdir() if p.is_dir()):
        return data_dir
    if (data_dir / "data").is_dir():
        return data_dir / "data"
    raise missing_data_error("dsads", data_dir / "a01" / "p1" / "s01.txt")


def dsads_raw_files(data_dir: os.PathLike | str) -> tuple[Path, list[tuple[int, int, int, Path]]]:
    """Find DSADS segment files: returns (root, sorted list of (activity, person, segment, path)).

    Raises FileNotFoundError naming the expected layout when no ``aNN/pN/sNN.txt`` file exists.
    """
    root = _dsads_root(check_path("load_dsads_raw", "data_dir", data_dir))
    found = []
    for a_dir in sorted(root.iterdir()):
        ma = _A_RE.match(a_dir.name)
        if not (ma and a_dir.is_dir()):
            continue
        for p_dir in sorted(a_dir.iterdir()):
            mp = _P_RE.match(p_dir.name)
            if not (mp and p_dir.is_dir()):
                continue
            for f in sorted(p_dir.iterdir()):
                ms = _S_RE.match(f.name)
                if ms and f.is_file():
                    found.append((int(ma.group(1)), int(mp.group(1)), int(ms.group(1)), f))
    if not found:
        raise missing_data_error("dsads", root / "a01" / "p1" / "s01.txt", "no aNN/pN/sNN.txt files found")
    return root, found


def _parse_dsads_file(path: Path) -> np.ndarray:
    text = read_text(path, lambda problem: malformed_error("dsads", path, problem)).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise malformed_error("dsads", path, "file is empty")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            vals = np.fromstring(",".join(lines), sep=",")
        except (ValueError, DeprecationWarning) as err:
            raise malformed_error("dsads", path, f"non-numeric value ({err})") from None
    if vals.size != len(lines) * DSADS_COLUMNS:
        raise malformed_error(
            "dsads", path, f"{vals.size} values in {len(lines)} rows; every row needs {DSADS_COLUMNS} "
            "comma-separated floats")
    arr = vals.reshape(len(lines), DSADS_COLUMNS)
    if not np.isfinite(arr).all():
        raise malformed_error("dsads", path, "contains NaN or inf")
    return arr


def read_dsads_segments(
    data_dir: os.PathLike | str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read every DSADS segment.

    Returns
    -------
    segments : float64 (n, 125, 45) (a file without exactly 125 rows is an error naming it)
    activity : int64 (n,), 1..19 from the folder name aNN
    person : int64 (n,), 1..8 from the folder name pN
    segment : int64 (n,), 1..60 from the file name sNN.txt
    """
    _, files = dsads_raw_files(data_dir)
    arrays = []
    for _, _, _, path in files:
        arr = _parse_dsads_file(path)
        if arr.shape[0] != DSADS_ROWS:
            raise malformed_error("dsads", path, f"{arr.shape[0]} rows, expected {DSADS_ROWS} "
                                  "(every segment is 5 s at 25 Hz)")
        arrays.append(arr)
    meta = np.array([f[:3] for f in files], dtype=np.int64)
    return np.stack(arrays), meta[:, 0], meta[:, 1], meta[:, 2]


def load_dsads_raw(data_dir: os.PathLike | str) -> Dataset:
    """DSADS from the raw UCI layout -> 405 unscaled features per 5 s segment.

    Each segment file (125 samples at 25 Hz) is one window.  Features: for each unit (torso, right
    arm, left arm, right leg, left leg) and sensor (acc, gyro, mag) the 27 magnitude features,
    in that order (``feature_names`` like ``torso_acc_mean``).  ``y`` = activity - 1 when all 19
    activities are present (generally: sorted present activities -> 0..C-1); ``subject`` = person.
    """
    root, files = dsads_raw_files(data_dir)
    seg, act, person, segno = read_dsads_segments(root)
    X, names = magnitude_features(seg, DSADS_GROUPS, fs=DSADS_FS)
    y, orig = remap_labels(act)
    return Dataset(
        name="dsads", X=X, y=y, subject=person, is_test=None,
        class_names=tuple(DSADS_ACTIVITIES.get(a, f"activity {a}") for a in orig),
        synthetic=False,
        source=f"DSADS raw layout (UCI 'Daily and Sports Activities') in {root}: {len(files)} segment files",
        original_labels=orig, feature_names=names,
        meta={"layout": "raw", "sampling_rate": DSADS_FS, "window": int(seg.shape[1]), "prescaled": False},
    )


# ---------------------------------------------------------------------------------- PAMAP2
PAMAP2_ACTIVITIES: dict[int, str] = {
    1: "lying", 2: "sitting", 3: "standing", 4: "walking", 5: "running", 6: "cycling",
    7: "Nordic walking", 9: "watching TV", 10: "computer work", 11: "car driving",
    12: "ascending stairs", 13: "descending stairs", 16: "vacuum cleaning", 17: "ironing",
    18: "folding laundry", 19: "house cleaning", 20: "playing soccer", 24: "rope jumping",
}
PAMAP2_IMUS = ("hand", "chest", "ankle")
PAMAP2_COLUMNS = 54
PAMAP2_FS = 100.0
#: 0-based columns: acc +-16 g xyz 4-6, gyro 10-12, mag 13-15 for the hand IMU; chest +17, ankle +34
PAMAP2_GROUPS = tuple(
    (f"{imu}_{s}", tuple(base + 17 * i + j for j in range(3)))
    for i, imu in enumerate(PAMAP2_IMUS) for s, base in (("acc", 4), ("gyro", 10), ("mag", 13))
)
_SUBJ_RE = re.compile(r"^subject1(\d{2})\.dat$")


def pamap2_raw_files(data_dir: os.PathLike | str) -> tuple[Path, list[tuple[int, Path]]]:
    """Find ``Protocol/subject1NN.dat`` files: returns (Protocol folder, [(subject NN, path)])."""
    d = Path(data_dir)
    for cand in (d / "Protocol", d / "PAMAP2_Dataset" / "Protocol", d):
        if cand.is_dir():
            files = sorted((int(m.group(1)), p) for p in cand.iterdir()
                           if (m := _SUBJ_RE.match(p.name)) and p.is_file())
            if files:
                return cand, files
    raise missing_data_error("pamap2", d / "Protocol" / "subject101.dat", "no subject1NN.dat files found")


def read_pamap2_file(path: os.PathLike | str) -> np.ndarray:
    """Parse one protocol file -> float64 (T, 54) (NaN kept). Raises DataFormatError if malformed."""
    import pandas as pd

    path = Path(path)
    try:
        df = pd.read_csv(path, sep=r"\s+", header=None, dtype=np.float64, engine="c")
    except UnicodeDecodeError:
        read_text(path, lambda problem: malformed_error("pamap2", path, problem))
        raise  # not reached: read_text raised the clear error
    except pd.errors.EmptyDataError:
        raise malformed_error("pamap2", path, "file is empty") from None
    except (ValueError, pd.errors.ParserError) as err:
        raise malformed_error("pamap2", path, f"cannot parse as whitespace-separated floats ({err})") from None
    if df.shape[1] != PAMAP2_COLUMNS:
        raise malformed_error("pamap2", path, f"{df.shape[1]} columns, expected {PAMAP2_COLUMNS}")
    arr = df.to_numpy()
    act = arr[:, 1]
    if not np.all(np.isfinite(act)) or np.any(act != np.round(act)):
        raise malformed_error("pamap2", path, "column 2 (activity id) must hold integers")
    return arr


def _fill_nan_linear(block: np.ndarray) -> np.ndarray | None:
    """Linearly interpolate NaNs per column (constant extension at the ends); None if a column is all NaN."""
    out = block.copy()
    t = np.arange(block.shape[0])
    for j in range(block.shape[1]):
        col = out[:, j]
        bad = np.isnan(col)
        if bad.all():
            return None
        if bad.any():
            col[bad] = np.interp(t[bad], t[~bad], col[~bad])
    return out


def load_pamap2_raw(
    data_dir: os.PathLike | str,
    window: int = 512,
    step: int = 256,
    drop_subjects: Sequence[int] = (3, 4, 9),
    drop_classes: Sequence[int] = (24,),
) -> Dataset:
    """PAMAP2 protocol recordings -> 243 unscaled features per window.

    Processing, per subject file: drop activity 0 (transient) and ``drop_classes``; split the
    recording into runs of constant activity; in each run, linearly interpolate NaN samples of the
    27 used columns (a run with an all-NaN column is dropped); cut windows of ``window`` samples
    with hop ``step`` inside each run (windows never straddle two activities); compute the 27
    features of the 9 sensor magnitudes (hand/chest/ankle x acc16/gyro/mag, in that order) at
    100 Hz.  Defaults: 5.12 s windows with 50% overlap -- our choice, the paper's tables do not
    state theirs (they have 7312 windows over all 9 subjects).

    Defaults follow the paper: subjects 3, 4, 9 and class 24 (rope jumping) are dropped, leaving
    11 classes (original ids 1-7, 12, 13, 16, 17 -> 0..10).  Pass ``()`` to keep them.
    """
    window = check_int("load_pamap2_raw", "window", window, minimum=4)
    step = check_int("load_pamap2_raw", "step", step, minimum=1)
    drop_subjects = check_int_sequence("load_pamap2_raw", "drop_subjects", drop_subjects)
    drop_classes = check_int_sequence("load_pamap2_raw", "drop_classes", drop_classes)
    folder, files = pamap2_raw_files(check_path("load_pamap2_raw", "data_dir", data_dir))
    cols = [c for _, g in PAMAP2_GROUPS for c in g]
    remap = {c: i for i, c in enumerate(cols)}
    groups = [(n, tuple(remap[c] for c in g)) for n, g in PAMAP2_GROUPS]
    drop_s, drop_c = set(int(s) for s in drop_subjects), set(int(c) for c in drop_classes)
    feats, acts, subs = [], [], []
    names: tuple[str, ...] = ()
    for subj, path in files:
        if subj in drop_s:
            continue
        arr = read_pamap2_file(path)
        act = arr[:, 1].astype(np.int64)
        edges = np.flatnonzero(np.diff(act)) + 1
        starts = np.concatenate([[0], edges])
        ends = np.concatenate([edges, [len(act)]])
        wins = []
        labs = []
        for s, e in zip(starts, ends, strict=True):
            a = int(act[s])
            if a == 0 or a in drop_c or e - s < window:
                continue
            block = _fill_nan_linear(arr[s:e][:, cols])
            if block is None:
                continue
            w = sliding_windows(block, window, step)
            wins.append(w)
            labs.append(np.full(len(w), a, dtype=np.int64))
        if wins:
            W = np.concatenate(wins)
            f, names = magnitude_features(W, groups, fs=PAMAP2_FS)
            feats.append(f)
            acts.append(np.concatenate(labs))
            subs.append(np.full(len(W), subj, dtype=np.int64))
    if not feats:
        raise ValueError(f"load_pamap2_raw: no complete window={window}-sample window of a kept activity in "
                         f"the {len(files)} subject files of {folder} (drop_subjects={list(drop_subjects)}, "
                         f"drop_classes={list(drop_classes)}): use a smaller window or drop less")
    y, orig = remap_labels(np.concatenate(acts))
    return Dataset(
        name="pamap2", X=np.concatenate(feats), y=y, subject=np.concatenate(subs), is_test=None,
        class_names=tuple(PAMAP2_ACTIVITIES.get(a, f"activity {a}") for a in orig),
        synthetic=False,
        source=f"PAMAP2 raw protocol layout in {folder}: {len(files)} subject files",
        original_labels=orig, feature_names=names,
        meta={"layout": "raw", "sampling_rate": PAMAP2_FS, "window": window, "step": step,
              "drop_subjects": sorted(drop_s), "drop_classes": sorted(drop_c), "prescaled": False},
    )


# ------------------------------------------------------------------------------------ HAPT
HAPT_ACTIVITIES: dict[int, str] = {
    1: "WALKING", 2: "WALKING_UPSTAIRS", 3: "WALKING_DOWNSTAIRS", 4: "SITTING", 5: "STANDING",
    6: "LAYING", 7: "STAND_TO_SIT", 8: "SIT_TO_STAND", 9: "SIT_TO_LIE", 10: "LIE_TO_SIT",
    11: "STAND_TO_LIE", 12: "LIE_TO_STAND",
}
HAPT_FEATURES = 561


def hapt_files(data_dir: os.PathLike | str) -> dict[str, Path]:
    """The six required HAPT files (keys ``X_train``, ``y_train``, ``subject_id_train``, same for test).

    Raises FileNotFoundError naming the first missing file and the expected layout.
    """
    d = Path(data_dir)
    out = {}
    for split, folder in (("train", "Train"), ("test", "Test")):
        for stem in ("X", "y", "subject_id"):
            p = d / folder / f"{stem}_{split}.txt"
            if not p.is_file():
                raise missing_data_error("hapt", p)
            out[f"{stem}_{split}"] = p
    return out


def _read_table(path: Path, ncols: int | None, dtype) -> np.ndarray:
    import pandas as pd

    try:
        df = pd.read_csv(path, sep=r"\s+", header=None, engine="c")
    except UnicodeDecodeError:
        read_text(path, lambda problem: malformed_error("hapt", path, problem))
        raise  # not reached: read_text raised the clear error
    except pd.errors.EmptyDataError:
        raise malformed_error("hapt", path, "file is empty") from None
    except (ValueError, pd.errors.ParserError) as err:
        raise malformed_error("hapt", path, f"cannot parse ({err})") from None
    if ncols is not None and df.shape[1] != ncols:
        raise malformed_error("hapt", path, f"{df.shape[1]} columns, expected {ncols}")
    try:
        arr = df.to_numpy(dtype=dtype)
    except (ValueError, TypeError) as err:
        raise malformed_error("hapt", path, f"non-numeric value ({err})") from None
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise malformed_error("hapt", path, "contains NaN or inf")
    return arr


def load_hapt(
    data_dir: os.PathLike | str,
    drop_subjects: Sequence[int] = (7, 28),
    drop_classes: Sequence[int] = (8,),
) -> Dataset:
    """HAPT official 561 features (Train + Test files, ``is_test`` marks the official test rows).

    Defaults follow the paper: users 7 and 28 and class 8 (sit-to-stand) are dropped, leaving 11
    classes (original ids 1-7, 9-12 -> 0..10).  Feature values are the UCI ones (already in
    [-1, 1], scaled by the UCI authors over all data).  ``features.txt`` and
    ``activity_labels.txt`` are used for names when present.
    """
    d = check_path("load_hapt", "data_dir", data_dir)
    drop_subjects = check_int_sequence("load_hapt", "drop_subjects", drop_subjects)
    drop_classes = check_int_sequence("load_hapt", "drop_classes", drop_classes)
    files = hapt_files(d)
    parts = {}
    for split in ("train", "test"):
        X = _read_table(files[f"X_{split}"], HAPT_FEATURES, np.float64)
        y = _read_table(files[f"y_{split}"], 1, np.int64)[:, 0]
        s = _read_table(files[f"subject_id_{split}"], 1, np.int64)[:, 0]
        if not (len(X) == len(y) == len(s)):
            raise malformed_error("hapt", files[f"y_{split}"], f"row counts differ: X {len(X)}, y {len(y)}, "
                                  f"subject_id {len(s)}")
        if y.size and (y.min() < 1 or y.max() > 12):
            raise malformed_error("hapt", files[f"y_{split}"], f"labels must be 1..12, got {y.min()}..{y.max()}")
        parts[split] = (X, y, s)
    X = np.concatenate([parts["train"][0], parts["test"][0]])
    y0 = np.concatenate([parts["train"][1], parts["test"][1]])
    subj = np.concatenate([parts["train"][2], parts["test"][2]])
    is_test = np.concatenate([np.zeros(len(parts["train"][1]), bool), np.ones(len(parts["test"][1]), bool)])
    keep = ~np.isin(subj, list(drop_subjects)) & ~np.isin(y0, list(drop_classes))
    if not keep.any():
        raise ValueError(f"load_hapt: no rows of {d} left after drop_subjects={list(drop_subjects)} and "
                         f"drop_classes={list(drop_classes)}")
    y, orig = remap_labels(y0[keep])
    names = dict(HAPT_ACTIVITIES)
    lab_file = d / "activity_labels.txt"
    if lab_file.is_file():
        for line in read_text(lab_file, lambda problem: malformed_error("hapt", lab_file, problem)).splitlines():
            parts_ = line.split()
            if len(parts_) >= 2 and parts_[0].isdigit():
                names[int(parts_[0])] = parts_[1]
    fnames = None
    feat_file = d / "features.txt"
    if feat_file.is_file():
        text = read_text(feat_file, lambda problem: malformed_error("hapt", feat_file, problem))
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if len(lines) == HAPT_FEATURES:
            fnames = tuple(lines)
    return Dataset(
        name="hapt", X=X[keep], y=y, subject=subj[keep], is_test=is_test[keep],
        class_names=tuple(names.get(a, f"activity {a}") for a in orig),
        synthetic=False,
        source=f"HAPT official 561-feature Train/Test files in {d}",
        original_labels=orig, feature_names=fnames,
        meta={"layout": "uci_features", "drop_subjects": sorted(int(s) for s in drop_subjects),
              "drop_classes": sorted(int(c) for c in drop_classes), "prescaled": True},
    )
