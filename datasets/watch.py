"""The seglearn "watch" smartwatch recordings: the trusted release file and the safe user format.

Two file formats are read, and nothing else:

``watch_dataset.npz`` -- the safe format for watch-style recordings of your own (or a converted
copy of seglearn's).  A NumPy ``.npz`` of plain arrays, opened with ``allow_pickle=False`` (an
object array inside is an error, never unpickled):

===========  ==========================  ====================================================
key          dtype, shape                meaning
===========  ==========================  ====================================================
``X``        float, (n_samples, 6)       every recording's samples, recordings concatenated in
                                         order; channels ax ay az wx wy wz at 50 Hz
``lengths``  int, (n_recordings,)        samples per recording (each >= 1, sum = n_samples)
``y``        int, (n_recordings,)        class of each recording, 0..n_classes-1
``subject``  int, (n_recordings,)        subject id of each recording
``y_labels`` str, (n_classes,)           class names (``y == k`` is ``y_labels[k]``)
``X_labels`` str, (6,), optional         channel names
``side``     number, (n_recordings,),    seglearn's watch side flag, carried along
             optional
===========  ==========================  ====================================================

:func:`write_watch_npz` writes it from a list of (n_i, 6) recordings.

``watch_dataset.npy`` -- only seglearn 1.2.5's own file.  It is a pickled dict, so it is read
only if its SHA-256 equals :data:`WATCH_RELEASE_SHA256` (the file shipped in the seglearn==1.2.5
wheel, 18,118,091 bytes); even then the payload goes through a restricted unpickler that can only
rebuild lists, dicts and NumPy arrays.  Any other ``.npy`` is refused with an error naming the
file and pointing to the ``.npz`` format: loading a data file never executes code.

The installed release is found with ``importlib.util.find_spec("seglearn")``, which does not
import (execute) seglearn.
"""
from __future__ import annotations

import importlib.util
import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from intsim.datasets.args import check_int
from intsim.datasets.base import ARCHIVES, Dataset, malformed_error, missing_data_error
from intsim.datasets.har_features import magnitude_features, sliding_windows
from intsim.datasets.safeio import read_npy_pickle, sha256_bytes

__all__ = [
    "WATCH_FS", "WATCH_GROUPS", "WATCH_RELEASE_SHA256", "WATCH_RELEASE_BYTES", "WATCH_NPZ", "WATCH_NPY",
    "watch_file", "find_watch_file", "read_watch", "write_watch_npz", "load_watch",
]

WATCH_FS = 50.0
#: channels ax ay az wx wy wz -> accelerometer and gyroscope magnitudes
WATCH_GROUPS = (("acc", (0, 1, 2)), ("gyro", (3, 4, 5)))
#: SHA-256 of ``seglearn/data/watch_dataset.npy`` in the seglearn 1.2.5 release.
WATCH_RELEASE_SHA256 = "eb122f23cdf06ef6bd6c6c5312958ec5cf9d038e2e6d457b8081662c75a42537"
WATCH_RELEASE_BYTES = 18_118_091
WATCH_NPZ = "watch_dataset.npz"
WATCH_NPY = "watch_dataset.npy"
_NPZ_KEYS = {"X", "lengths", "y", "subject", "y_labels", "X_labels", "side"}

ARCHIVES["watch"] = (
    "the PyPI package seglearn==1.2.5 (pip install -e '.[data]')",
    "seglearn/data/watch_dataset.npy inside the installed package (used only when its SHA-256 "
    "matches the 1.2.5 release), or, in DATA_DIR, watch_dataset.npz: plain arrays X (n_samples, 6) "
    "of concatenated recordings, lengths, y, subject, y_labels (see intsim.datasets.watch; "
    "write_watch_npz writes it); a .npy other than the release file is never unpickled",
)


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
    for path in (pkg / "data" / WATCH_NPY, pkg / "datasets" / "data" / WATCH_NPY):
        if path.is_file():
            return path
    raise missing_data_error("watch", pkg / "data" / WATCH_NPY)


def find_watch_file(data_dir: os.PathLike | str) -> Path:
    """``data_dir/watch_dataset.npz`` if present, else ``data_dir/watch_dataset.npy``.

    Raises FileNotFoundError naming both when neither exists.
    """
    d = Path(data_dir)
    for fname in (WATCH_NPZ, WATCH_NPY):
        if (d / fname).is_file():
            return d / fname
    raise missing_data_error("watch", d / WATCH_NPY, f"nor {d / WATCH_NPZ}")


def _check_structure(d: dict, path: Path) -> dict:
    if not isinstance(d, dict) or not {"X", "y", "subject", "y_labels"} <= set(d):
        raise malformed_error("watch", path, "expected a dict with keys X, y, subject, y_labels")
    if not (len(d["X"]) == len(d["y"]) == len(d["subject"])):
        raise malformed_error("watch", path, "X, y and subject lengths differ")
    if len(d["X"]) == 0:
        raise malformed_error("watch", path, "no recordings")
    for i, rec in enumerate(d["X"]):
        if np.ndim(rec) != 2 or np.shape(rec)[1] != 6:
            raise malformed_error("watch", path, f"recording {i} has shape {np.shape(rec)}, expected (n, 6)")
        if not np.issubdtype(np.asarray(rec).dtype, np.number) or not np.isfinite(rec).all():
            raise malformed_error("watch", path, f"recording {i} must hold finite numbers")
    for key in ("y", "subject"):
        v = np.asarray(d[key])
        if v.ndim != 1 or not np.issubdtype(v.dtype, np.integer):
            raise malformed_error("watch", path, f"{key} must be a 1-D int array, got {v.dtype} {v.shape}")
    n_classes = len(d["y_labels"])
    y = np.asarray(d["y"])
    if y.min() < 0 or y.max() >= n_classes:
        raise malformed_error("watch", path, f"y must lie in 0..{n_classes - 1} (len(y_labels)), "
                              f"got {y.min()}..{y.max()}")
    return d


def _read_npz(raw: bytes, path: Path) -> dict:
    if not raw.startswith(b"PK"):
        raise malformed_error("watch", path, "not a readable .npz (an .npz is a zip archive of .npy arrays; "
                              "this file does not start like one)")
    try:
        z = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as err:
        raise malformed_error("watch", path, f"not a readable .npz ({type(err).__name__}: {err})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise malformed_error("watch", path, "not an .npz archive (a single .npy array)")
    with z:
        unknown = sorted(set(z.files) - _NPZ_KEYS)
        if unknown:
            raise malformed_error("watch", path, f"unknown key(s) {unknown}; accepted: {sorted(_NPZ_KEYS)}")
        missing = sorted({"X", "lengths", "y", "subject", "y_labels"} - set(z.files))
        if missing:
            raise malformed_error("watch", path, f"missing key(s) {missing}")
        try:
            arrays = {k: z[k] for k in z.files}
        except ValueError as err:
            if "pickle" not in str(err):
                raise malformed_error("watch", path, f"corrupt array ({err})") from None
            # object arrays need pickle: refused
            raise malformed_error("watch", path, f"holds an object array, which would need unpickling ({err}); "
                                  "store plain numeric and string arrays") from None
        except Exception as err:  # bad CRC, truncated member
            raise malformed_error("watch", path, f"corrupt array ({type(err).__name__}: {err})") from None
    X, lengths = arrays["X"], arrays["lengths"]
    if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer) or (lengths.size and lengths.min() < 1):
        raise malformed_error("watch", path, "lengths must be a 1-D int array of recording lengths >= 1")
    if X.ndim != 2:
        raise malformed_error("watch", path, f"X must be (n_samples, 6) concatenated recordings, got shape {X.shape}")
    if int(lengths.sum()) != X.shape[0]:
        raise malformed_error("watch", path, f"lengths sum to {int(lengths.sum())}, X has {X.shape[0]} rows")
    if arrays["y_labels"].dtype.kind not in "U":
        raise malformed_error("watch", path, f"y_labels must be a string array, got {arrays['y_labels'].dtype}")
    d = {k: v for k, v in arrays.items() if k not in ("X", "lengths")}
    d["X"] = np.split(X, np.cumsum(lengths)[:-1]) if lengths.size else []
    d["y_labels"] = [str(s) for s in arrays["y_labels"]]
    return d


def read_watch(path: os.PathLike | str | None = None) -> dict:
    """The raw watch dictionary: ``X`` list of (n_i, 6) float recordings, ``y`` 0..K-1,
    ``subject``, ``y_labels`` (and ``side``, ``X_labels`` when present).  Validates the structure.

    ``path``: a ``.npz`` in the safe format (module docstring), or seglearn 1.2.5's
    ``watch_dataset.npy`` (checked by SHA-256 before it is read; default: the installed one).
    Any other file is a DataFormatError naming it; no file is ever unpickled unverified.
    """
    path = Path(path) if path is not None else watch_file()
    if not path.is_file():
        raise missing_data_error("watch", path)
    raw = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".npz":
        d = _read_npz(raw, path)
    elif suffix == ".npy":
        digest = sha256_bytes(raw)
        if digest != WATCH_RELEASE_SHA256:
            raise malformed_error(
                "watch", path,
                f"not seglearn 1.2.5's watch_dataset.npy (SHA-256 {digest}, the release has "
                f"{WATCH_RELEASE_SHA256}); a .npy watch file holds a pickle, and intsim unpickles only "
                f"the verified release. Store your recordings as {WATCH_NPZ} (plain arrays, "
                "intsim.datasets.write_watch_npz)")
        try:
            d = read_npy_pickle(raw)
        except Exception as err:  # cannot happen for the verified release; kept for safety
            raise malformed_error("watch", path, f"cannot load ({type(err).__name__}: {err})") from None
    else:
        raise malformed_error("watch", path, f"unsupported suffix {path.suffix!r}: expected {WATCH_NPZ} "
                              f"or seglearn's {WATCH_NPY}")
    return _check_structure(d, path)


def write_watch_npz(path: os.PathLike | str, recordings: Sequence[np.ndarray], y: Sequence[int],
                    subject: Sequence[int], y_labels: Sequence[str],
                    X_labels: Sequence[str] | None = None, side: Sequence[float] | None = None) -> Path:
    """Write recordings in the safe ``watch_dataset.npz`` format (module docstring); returns the path.

    ``recordings``: sequence of (n_i, 6) arrays; ``y``/``subject``: one int per recording;
    ``y_labels``: class names.  The result is validated by reading it back.
    """
    recs = [np.asarray(r, dtype=np.float64) for r in recordings]
    lengths = np.array([r.shape[0] if r.ndim else 0 for r in recs], dtype=np.int64)
    X = np.concatenate([r.reshape(len(r), -1) if r.ndim else r.reshape(0, 6) for r in recs]) if recs \
        else np.zeros((0, 6))
    arrays = {"X": X, "lengths": lengths, "y": np.asarray(y, dtype=np.int64),
              "subject": np.asarray(subject, dtype=np.int64), "y_labels": np.asarray([str(s) for s in y_labels])}
    if X_labels is not None:
        arrays["X_labels"] = np.asarray([str(s) for s in X_labels])
    if side is not None:
        arrays["side"] = np.asarray(side, dtype=np.float64)
    path = Path(path)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_watch(window: int = 128, step: int = 64, path: os.PathLike | str | None = None) -> Dataset:
    """seglearn "watch" smartwatch IMU data -> 54 unscaled features per window.

    Each of the 140 recordings (6 channels ax ay az wx wy wz at 50 Hz) is cut into windows of
    ``window`` samples with hop ``step`` (default 128 / 64 = 2.56 s at 50% overlap; windows never
    span two recordings; a recording's trailing partial window is dropped).  Features: the 27
    magnitude features of the accelerometer, then of the gyroscope (``acc_*``, ``gyro_*``).
    Labels: seglearn's 0..6 unchanged (``class_names`` = its ``y_labels``); ``subject`` 1..10.

    ``path``: see :func:`read_watch`.  A ``window`` longer than every recording (no window at
    all) is a ValueError naming ``window``.
    """
    window = check_int("load_watch", "window", window, minimum=4)
    step = check_int("load_watch", "step", step, minimum=1)
    path = Path(path) if path is not None else watch_file()
    d = read_watch(path)
    wins, ys, subs = [], [], []
    for rec, lab, subj in zip(d["X"], d["y"], d["subject"], strict=True):
        w = sliding_windows(np.asarray(rec, dtype=np.float64), window, step)
        wins.append(w)
        ys.append(np.full(len(w), int(lab), dtype=np.int64))
        subs.append(np.full(len(w), int(subj), dtype=np.int64))
    W = np.concatenate(wins)
    if len(W) == 0:
        longest = max(len(r) for r in d["X"])
        raise ValueError(f"load_watch: window={window} is longer than every recording in {path} (longest: "
                         f"{longest} samples), so there is no window: choose window <= {longest}")
    X, names = magnitude_features(W, WATCH_GROUPS, fs=WATCH_FS)
    labels = [str(s) for s in d["y_labels"]]
    return Dataset(
        name="watch", X=X, y=np.concatenate(ys), subject=np.concatenate(subs), is_test=None,
        class_names=tuple(labels), synthetic=False,
        source=f"seglearn watch recordings ({path}), {len(d['X'])} recordings",
        original_labels=tuple(range(len(labels))), feature_names=names,
        meta={"layout": "seglearn_npy" if path.suffix.lower() == ".npy" else "watch_npz",
              "sampling_rate": WATCH_FS, "window": window, "step": step,
              "n_recordings": len(d["X"]), "prescaled": False},
    )
