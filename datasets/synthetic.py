"""SYNTHETIC data for fast tests and benchmarks -- never a stand-in for a missing real data set.

Everything here is marked: ``Dataset.synthetic is True``, the name starts or ends with
``synthetic``, class names start with ``synthetic_``, and ``source`` begins with ``"SYNTHETIC"``.

* :func:`make_synthetic_har_windows` -- raw multi-channel IMU-like windows whose spectra depend on
  the class, with per-subject gain / tempo / orientation differences and noise.
* :func:`load_synthetic_har` -- those windows through the paper's 27-feature extractor.
* :func:`make_synthetic_feature_table` -- a feature table of a given shape (e.g. DSADS's
  9120 x 405, 19 classes, 8 subjects) for benchmarks: learnable (class-dependent means in a
  low-dimensional latent space, pushed through a random nonlinear map) but not trivially
  (overlapping classes, subject shifts, feature noise).
"""
from __future__ import annotations

import numpy as np

from intsim.datasets.args import check_int
from intsim.datasets.base import Dataset
from intsim.datasets.har_features import magnitude_features

__all__ = ["make_synthetic_har_windows", "load_synthetic_har", "make_synthetic_feature_table"]


def make_synthetic_har_windows(
    n_classes: int = 6,
    n_subjects: int = 5,
    windows_per_cell: int = 20,
    length: int = 128,
    n_sensors: int = 2,
    fs: float = 50.0,
    noise: float = 0.3,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SYNTHETIC IMU windows.

    Each (class, sensor) has a fundamental frequency in [0.5, 6] Hz, an amplitude, a second-harmonic
    weight and a static 3-axis offset (like gravity).  Each subject scales amplitudes (gain ~
    1 + 0.15 N(0,1)), tempo (frequency x (1 + 0.08 N(0,1))) and perturbs the offsets.  Each window has
    random phases and Gaussian noise of sd ``noise``.

    Returns
    -------
    windows : float64 (n, length, 3 * n_sensors), n = n_classes * n_subjects * windows_per_cell,
        ordered by class, then subject, then window.
    y : int64 (n,) in 0..n_classes-1
    subject : int64 (n,) in 1..n_subjects
    """
    where = "make_synthetic_har_windows"
    n_classes, n_subjects, windows_per_cell, n_sensors = (
        check_int(where, k, v) for k, v in (("n_classes", n_classes), ("n_subjects", n_subjects),
                                            ("windows_per_cell", windows_per_cell), ("n_sensors", n_sensors)))
    length, seed = check_int(where, "length", length), check_int(where, "seed", seed, minimum=0)
    if min(n_classes, n_subjects, windows_per_cell, n_sensors) < 1 or length < 4:
        raise ValueError("make_synthetic_har_windows: counts must be >= 1 and length >= 4")
    rng = np.random.default_rng(seed)
    f0 = rng.uniform(0.5, 6.0, (n_classes, n_sensors))
    amp = rng.uniform(0.5, 2.0, (n_classes, n_sensors))
    harm = rng.uniform(0.0, 0.6, (n_classes, n_sensors))
    axis_w = rng.normal(size=(n_classes, n_sensors, 3))
    offset = rng.normal(scale=1.0, size=(n_classes, n_sensors, 3))
    gain = 1.0 + 0.15 * rng.normal(size=n_subjects)
    tempo = 1.0 + 0.08 * rng.normal(size=n_subjects)
    s_off = rng.normal(scale=0.3, size=(n_subjects, n_sensors, 3))
    t = np.arange(length) / fs
    n = n_classes * n_subjects * windows_per_cell
    W = np.empty((n, length, 3 * n_sensors))
    y = np.repeat(np.arange(n_classes), n_subjects * windows_per_cell)
    subj = np.tile(np.repeat(np.arange(1, n_subjects + 1), windows_per_cell), n_classes)
    for i in range(n):
        c, s = y[i], subj[i] - 1
        for k in range(n_sensors):
            f = f0[c, k] * tempo[s]
            ph1, ph2 = rng.uniform(0, 2 * np.pi, 2)
            base = np.sin(2 * np.pi * f * t + ph1) + harm[c, k] * np.sin(4 * np.pi * f * t + ph2)
            sig = (offset[c, k] + s_off[s, k])[None, :] + gain[s] * amp[c, k] * base[:, None] * axis_w[c, k][None, :]
            W[i, :, 3 * k:3 * k + 3] = sig + noise * rng.normal(size=(length, 3))
    return W, y.astype(np.int64), subj.astype(np.int64)


def load_synthetic_har(
    n_classes: int = 6,
    n_subjects: int = 5,
    windows_per_cell: int = 20,
    length: int = 128,
    n_sensors: int = 2,
    fs: float = 50.0,
    noise: float = 0.3,
    seed: int = 0,
) -> Dataset:
    """SYNTHETIC HAR feature vectors: :func:`make_synthetic_har_windows` -> 27 features per sensor
    magnitude, X float32 (n, 27 * n_sensors), unscaled.  Name ``"synthetic_har"``."""
    W, y, subj = make_synthetic_har_windows(n_classes, n_subjects, windows_per_cell, length, n_sensors, fs, noise, seed)
    groups = [(f"sensor{k}", (3 * k, 3 * k + 1, 3 * k + 2)) for k in range(n_sensors)]
    X, names = magnitude_features(W, groups, fs=fs)
    params = dict(n_classes=n_classes, n_subjects=n_subjects, windows_per_cell=windows_per_cell,
                  length=length, n_sensors=n_sensors, fs=fs, noise=noise, seed=seed)
    return Dataset(
        name="synthetic_har", X=X, y=y, subject=subj, is_test=None,
        class_names=tuple(f"synthetic_class_{c}" for c in range(n_classes)), synthetic=True,
        source=f"SYNTHETIC: intsim.datasets.synthetic.make_synthetic_har_windows({params})",
        original_labels=tuple(range(n_classes)), feature_names=names,
        meta={"layout": "synthetic", "params": params, "sampling_rate": fs, "window": length, "prescaled": False},
    )


def make_synthetic_feature_table(
    n_samples: int = 9120,
    n_features: int = 405,
    n_classes: int = 19,
    n_subjects: int = 8,
    latent_dim: int = 12,
    class_sep: float = 1.3,
    subject_shift: float = 0.6,
    noise: float = 1.0,
    feature_noise: float = 0.05,
    seed: int = 0,
    name: str = "synthetic_table",
) -> Dataset:
    """SYNTHETIC feature table of a given shape, scaled to [-1, 1] like the paper's tables.

    Model: class means ``mu_c ~ N(0, class_sep^2 I)`` and subject offsets
    ``s_p ~ N(0, subject_shift^2 I)`` in a ``latent_dim``-dimensional space; a sample of class c
    and subject p is ``z = mu_c + s_p + noise * N(0, I)``; features are
    ``tanh(z @ A / sqrt(latent_dim) + b) + feature_noise * N(0, 1)`` with a fixed random
    ``A`` (latent_dim x n_features) and ``b``; finally every column is min-max scaled to [-1, 1]
    over the whole table.  Rows are spread as evenly as possible over the class x subject cells
    (DSADS shape: 60 per cell), ordered by class, then subject.  Subjects are 1..n_subjects.

    With the defaults (DSADS shape), the classes overlap: logistic regression trained on 7
    subjects scores about 78-90 % on the 8th (seed-dependent) and 96-98 % on its training rows,
    not 100 %; raise ``class_sep`` for an easier table.
    """
    where = "make_synthetic_feature_table"
    n_samples, n_features, n_classes, n_subjects, latent_dim = (
        check_int(where, k, v) for k, v in (("n_samples", n_samples), ("n_features", n_features),
                                            ("n_classes", n_classes), ("n_subjects", n_subjects),
                                            ("latent_dim", latent_dim)))
    seed = check_int(where, "seed", seed, minimum=0)
    if min(n_samples, n_features, n_classes, n_subjects, latent_dim) < 1:
        raise ValueError("make_synthetic_feature_table: sizes must be >= 1")
    if n_samples < n_classes * n_subjects:
        raise ValueError(f"make_synthetic_feature_table: n_samples={n_samples} < n_classes*n_subjects="
                         f"{n_classes * n_subjects} (every class x subject cell needs a row)")
    rng = np.random.default_rng(seed)
    cells = n_classes * n_subjects
    per_cell = np.full(cells, n_samples // cells)
    per_cell[: n_samples % cells] += 1
    cell = np.repeat(np.arange(cells), per_cell)
    y = cell // n_subjects
    subj = cell % n_subjects
    mu = rng.normal(scale=class_sep, size=(n_classes, latent_dim))
    shift = rng.normal(scale=subject_shift, size=(n_subjects, latent_dim))
    Z = mu[y] + shift[subj] + noise * rng.normal(size=(n_samples, latent_dim))
    A = rng.normal(size=(latent_dim, n_features))
    b = rng.normal(scale=0.5, size=n_features)
    X = np.tanh(Z @ A / np.sqrt(latent_dim) + b) + feature_noise * rng.normal(size=(n_samples, n_features))
    lo, hi = X.min(axis=0), X.max(axis=0)
    X = 2.0 * (X - lo) / np.where(hi > lo, hi - lo, 1.0) - 1.0
    params = dict(n_samples=n_samples, n_features=n_features, n_classes=n_classes, n_subjects=n_subjects,
                  latent_dim=latent_dim, class_sep=class_sep, subject_shift=subject_shift, noise=noise,
                  feature_noise=feature_noise, seed=seed)
    return Dataset(
        name=name, X=X.astype(np.float32), y=y.astype(np.int64), subject=(subj + 1).astype(np.int64),
        is_test=None, class_names=tuple(f"synthetic_class_{c}" for c in range(n_classes)), synthetic=True,
        source=f"SYNTHETIC: intsim.datasets.synthetic.make_synthetic_feature_table({params})",
        original_labels=tuple(range(n_classes)),
        meta={"layout": "synthetic", "params": params, "prescaled": True},
    )

