"""Min-max scaling to [-1, 1] with statistics from training rows only.

The paper feeds HAR features scaled to [-1, 1].  To keep test subjects unseen, fit the scaler on
the training subjects' rows and apply it to every row::

    scaler = fit_minmax(ds.X[train_mask])
    X = scaler.transform(ds.X)              # training rows in [-1, 1]; test rows may exceed it

or in one call ``scaled, scaler = scale_dataset(ds, train_mask)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from intsim.datasets.base import Dataset

__all__ = ["MinMaxScaler", "fit_minmax", "apply_minmax", "scale_dataset", "minmax_preprocess"]


@dataclass(frozen=True, eq=False)
class MinMaxScaler:
    """Per-column affine map of ``[data_min, data_max]`` onto ``feature_range``.

    ``x' = lo + (x - data_min) * (hi - lo) / (data_max - data_min)``, computed in float64, returned
    as float32.  A column that is constant on the training rows (``data_max == data_min``) maps to
    the midpoint ``(lo + hi) / 2``.
    """

    data_min: np.ndarray  # (d,) float64
    data_max: np.ndarray  # (d,) float64
    feature_range: tuple[float, float] = (-1.0, 1.0)

    def transform(self, X: np.ndarray, clip: bool = False) -> np.ndarray:
        """Scale ``X`` of shape (n, d); with ``clip=True`` clamp results into ``feature_range``."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.data_min.shape[0]:
            raise ValueError(
                f"MinMaxScaler.transform: X must be (n, {self.data_min.shape[0]}), got shape {X.shape}"
            )
        lo, hi = self.feature_range
        span = self.data_max - self.data_min
        const = span == 0
        factor = np.where(const, 0.0, (hi - lo) / np.where(const, 1.0, span))
        Z = lo + (X - self.data_min) * factor
        Z[:, const] = (lo + hi) / 2.0
        if clip:
            np.clip(Z, lo, hi, out=Z)
        return Z.astype(np.float32)


def fit_minmax(X_train: np.ndarray, feature_range: tuple[float, float] = (-1.0, 1.0)) -> MinMaxScaler:
    """Fit a :class:`MinMaxScaler` on training rows ``X_train`` (n_train, d), n_train >= 1, finite."""
    X = np.asarray(X_train, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"fit_minmax: X_train must be (n_train >= 1, d), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("fit_minmax: X_train contains NaN or inf")
    lo, hi = float(feature_range[0]), float(feature_range[1])
    if not lo < hi:
        raise ValueError(f"fit_minmax: feature_range must satisfy lo < hi, got {feature_range}")
    return MinMaxScaler(X.min(axis=0), X.max(axis=0), (lo, hi))


def apply_minmax(scaler: MinMaxScaler, X: np.ndarray, clip: bool = False) -> np.ndarray:
    """Function form of :meth:`MinMaxScaler.transform`."""
    return scaler.transform(X, clip=clip)


def scale_dataset(
    ds: Dataset,
    train_rows: np.ndarray,
    feature_range: tuple[float, float] = (-1.0, 1.0),
    clip: bool = False,
) -> tuple[Dataset, MinMaxScaler]:
    """Fit on ``ds.X[train_rows]`` (bool mask (n,) or indices) and scale every row of a 2-D ``ds``.

    Returns the scaled copy (``meta["scaled"]`` records the range and ``clip``) and the scaler.
    """
    if ds.X.ndim != 2:
        raise ValueError(f"scale_dataset: {ds.name} has image-shaped X {ds.X.shape}; scale feature vectors only")
    scaler = fit_minmax(ds.X[np.asarray(train_rows)], feature_range)
    meta = dict(ds.meta)
    meta["scaled"] = {"feature_range": list(scaler.feature_range), "clip": clip, "fit_on": "train rows"}
    return ds.replace(X=scaler.transform(ds.X, clip=clip), meta=meta), scaler


def minmax_preprocess(
    feature_range: tuple[float, float] = (-1.0, 1.0), clip: bool = False,
) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A ``preprocess(X_train, X_test) -> (X_train', X_test')`` callable for scenario code:
    fits :func:`fit_minmax` on ``X_train`` only and applies it to both (float32 out).

    Feature vectors (n, d) are scaled per column; images (n, C, H, W) per channel (min and max
    over every training pixel of the channel), so the shape is kept."""

    def preprocess(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if np.ndim(X_train) == 4:
            return _per_channel(X_train, X_test, feature_range, clip)
        scaler = fit_minmax(X_train, feature_range)
        return scaler.transform(X_train, clip=clip), scaler.transform(X_test, clip=clip)

    return preprocess


def _channels_last(X: np.ndarray) -> np.ndarray:
    """(n, C, H, W) -> (n * H * W, C): one row per pixel, one column per channel."""
    return np.moveaxis(np.asarray(X), 1, -1).reshape(-1, np.shape(X)[1])


def _per_channel(X_train: np.ndarray, X_test: np.ndarray, feature_range: tuple[float, float],
                 clip: bool) -> tuple[np.ndarray, np.ndarray]:
    """Min-max per channel of NCHW images, fitted on X_train's pixels (shapes kept)."""
    scaler = fit_minmax(_channels_last(X_train), feature_range)

    def apply(X: np.ndarray) -> np.ndarray:
        n, c, h, w = np.shape(X)
        Z = scaler.transform(_channels_last(X), clip=clip).reshape(n, h, w, c)
        return np.ascontiguousarray(np.moveaxis(Z, -1, 1))
    return apply(X_train), apply(X_test)
