"""The paper's 27 features per sensor-magnitude window, and windowing helpers.

Wang et al. (PerCom 2018, the "cross-position activity recognition" tables the paper uses)
combine the three axes of each sensor into the magnitude ``sqrt(x^2 + y^2 + z^2)`` and compute
27 features on each magnitude window.  Their text names the features but not every definition;
this module pins each one down (so anyone can reimplement it, equal up to float rounding).

Definitions, for one window ``x[0..L-1]`` (float64, ``L >= 4``), sampling rate ``fs`` (Hz;
``fs = 1`` gives frequencies in cycles per sample):

Columns (index: name -- definition):

* 0 ``mean`` -- ``sum(x) / L``.
* 1 ``std`` -- population standard deviation ``sqrt(mean((x - mean)^2))`` (ddof 0).
* 2 ``min``, 3 ``max`` -- extremes of ``x``.
* 4 ``mode`` -- centre of the most populated bin of a histogram with ``MODE_BINS = 10``
  equal-width bins spanning ``[min, max]``: sample ``x`` goes to bin
  ``floor((x - min) / (max - min) * 10)`` clipped to 0..9 (so ``max`` is in bin 9); ties go to
  the lowest bin; the centre of bin ``b`` is ``min + (b + 0.5) * (max - min) / 10``.  If
  ``max == min`` the mode is ``min``.
* 5 ``range`` -- ``max - min``.
* 6 ``mean_crossing_rate`` -- with ``s[i] = (x[i] - mean >= 0)``, the number of ``i`` in 1..L-1
  with ``s[i] != s[i-1]``, divided by ``L - 1``; in [0, 1].
* 7 ``dc`` -- ``|rfft(x)[0]| / L`` (equals ``|mean|``).
* 8..12 ``peak1_value``..``peak5_value`` -- the five largest *local maxima* of the one-sided
  amplitude spectrum ``A`` (below), in descending order of value.
* 13..17 ``peak1_freq``..``peak5_freq`` -- the frequencies (Hz) of those peaks.
* 18 ``energy`` -- ``sum(x^2) / L`` (mean power, DC included).
* 19..22 ``spec_mean``, ``spec_std``, ``spec_skew``, ``spec_kurt`` -- moments of frequency under
  the distribution ``p_k = A_k / sum(A)``: ``mu = sum p_k f_k``,
  ``sd = sqrt(sum p_k (f_k - mu)^2)``, skewness ``sum p_k (f_k - mu)^3 / sd^3``, kurtosis
  ``sum p_k (f_k - mu)^4 / sd^4`` (Pearson, not excess).
* 23..26 ``amp_mean``, ``amp_std``, ``amp_skew``, ``amp_kurt`` -- moments of the amplitude
  values ``A_1..A_K`` as a sample: mean, population sd, skewness ``m3 / m2^1.5``, kurtosis
  ``m4 / m2^2`` (Pearson, not excess), ``m_r`` the r-th central moment.

The spectrum ``A``: ``F = numpy.fft.rfft(x)``; for bins ``k = 1 .. K`` with ``K = L // 2``
(the DC bin is excluded, so ``A`` is the spectrum of the mean-removed signal)
``A_k = 2 |F_k| / L``, except the Nyquist bin ``k = L/2`` of an even ``L`` which is ``|F_k| / L``.
A sine of amplitude ``a`` exactly at bin ``k`` thus gives ``A_k = a``.  Frequency ``f_k = k fs / L``.
Values ``A_k <= ZERO_TOL * max|x|`` (``ZERO_TOL = 1e-9``) are set to exactly 0 first, so FFT
round-off of a constant or pure-tone signal does not create spurious peaks or moments.

Peaks: bin ``k`` is a local maximum if ``A_k > A_{k-1}`` and ``A_k >= A_{k+1}`` (neighbours outside
1..K count as minus infinity; the first bin of a plateau is the peak) and ``A_k > 0``.  Ties in
value are ordered by lower frequency.  If fewer than 5 peaks exist, the missing ones have value 0
and frequency 0 (a real peak always has frequency > 0).

Degenerate cases: if ``sum(A) == 0`` all four spectral shape moments are 0; if a standard deviation
(spectral or amplitude) is 0, the corresponding skewness and kurtosis are 0.

A constant window ``c`` therefore gives: mean = min = max = mode = c, dc = |c|, energy = c^2,
every other feature 0.

All arithmetic is float64 and vectorised over windows; the output is float32.

These definitions are ours where the source names a feature without defining it (mode of a
continuous signal, crossing rule, spectrum normalisation, peak picking, moment conventions), so
features computed here from raw recordings will not reproduce the published tables' numbers
exactly; they are the same *kind* of 27 features, and after train-only [-1, 1] scaling they play
the same role.  Bump :data:`FEATURE_VERSION` whenever a definition changes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = [
    "FEATURE_NAMES",
    "N_FEATURES",
    "MODE_BINS",
    "N_PEAKS",
    "ZERO_TOL",
    "FEATURE_VERSION",
    "extract_features",
    "magnitude",
    "magnitude_features",
    "sliding_windows",
    "amplitude_spectrum",
    "pick_peaks",
]

MODE_BINS = 10
N_PEAKS = 5
ZERO_TOL = 1e-9
#: Bump when any definition above changes: it is part of the cache key.
FEATURE_VERSION = 1

FEATURE_NAMES: tuple[str, ...] = (
    ("mean", "std", "min", "max", "mode", "range", "mean_crossing_rate", "dc")
    + tuple(f"peak{i}_value" for i in range(1, N_PEAKS + 1))
    + tuple(f"peak{i}_freq" for i in range(1, N_PEAKS + 1))
    + ("energy", "spec_mean", "spec_std", "spec_skew", "spec_kurt",
       "amp_mean", "amp_std", "amp_skew", "amp_kurt")
)
N_FEATURES = len(FEATURE_NAMES)
assert N_FEATURES == 27


def magnitude(xyz: np.ndarray) -> np.ndarray:
    """Euclidean norm over the last axis (size 3): ``(..., 3) -> (...)``, float64."""
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.shape[-1] != 3:
        raise ValueError(f"magnitude: last axis must have size 3 (x, y, z), got shape {xyz.shape}")
    return np.sqrt(np.einsum("...i,...i->...", xyz, xyz))


def sliding_windows(signal: np.ndarray, length: int, step: int) -> np.ndarray:
    """Cut a recording into windows.

    Parameters
    ----------
    signal : array (T,) or (T, C)
    length, step : window length and hop in samples (``step = length // 2`` is 50% overlap).

    Returns
    -------
    array (n, length) or (n, length, C), a copy, with ``n = (T - length) // step + 1`` windows
    starting at samples ``0, step, 2 step, ...`` (0 windows if ``T < length``; a trailing partial
    window is dropped).
    """
    if length < 1 or step < 1:
        raise ValueError(f"sliding_windows: length and step must be >= 1, got {length}, {step}")
    x = np.asarray(signal)
    if x.ndim not in (1, 2):
        raise ValueError(f"sliding_windows: signal must be (T,) or (T, C), got shape {x.shape}")
    T = x.shape[0]
    if T < length:
        return np.empty((0, length) + x.shape[1:], dtype=x.dtype)
    v = np.lib.stride_tricks.sliding_window_view(x, length, axis=0)[::step]
    # sliding_window_view puts the window axis last: (n, C, length) -> (n, length, C)
    if x.ndim == 2:
        v = np.swapaxes(v, 1, 2)
    return np.ascontiguousarray(v)


def amplitude_spectrum(windows: np.ndarray) -> np.ndarray:
    """One-sided amplitude spectrum ``A`` (bins 1..L//2, see module doc), float64 (n, L//2)."""
    x = np.asarray(windows, dtype=np.float64)
    L = x.shape[-1]
    A = np.abs(np.fft.rfft(x, axis=-1)[..., 1:]) * (2.0 / L)
    if L % 2 == 0:
        A[..., -1] *= 0.5
    tol = ZERO_TOL * np.max(np.abs(x), axis=-1, keepdims=True)
    A[A <= tol] = 0.0
    return A


def _moments_weighted(values: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mean, sd, skewness, kurtosis of ``values`` (n, K) under weights ``p`` (n, K) summing to 1."""
    mu = np.sum(p * values, axis=1)
    d = values - mu[:, None]
    d2 = d * d
    var = np.sum(p * d2, axis=1)
    m3 = np.sum(p * d2 * d, axis=1)
    m4 = np.sum(p * d2 * d2, axis=1)
    sd = np.sqrt(var)
    ok = var > 0
    safe = np.where(ok, var, 1.0)
    skew = np.where(ok, m3 / (safe * np.sqrt(safe)), 0.0)
    kurt = np.where(ok, m4 / (safe * safe), 0.0)
    return mu, sd, skew, kurt


def pick_peaks(A: np.ndarray, freqs: np.ndarray, n_peaks: int = N_PEAKS) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_peaks`` largest local maxima of each row of ``A`` (n, K) -> (values, freqs), each (n, n_peaks).

    Bin k is a peak if ``A[k] > A[k-1]`` and ``A[k] >= A[k+1]`` (outside neighbours = -inf, so the
    first bin of a plateau wins) and ``A[k] > 0``; peaks are sorted by value, descending, ties by
    lower bin; missing peaks are (0, 0).  ``freqs`` (K,) gives each bin's frequency.
    """
    n, K = A.shape
    ninf = np.full((n, 1), -np.inf)
    left = np.concatenate([ninf, A[:, :-1]], axis=1)
    right = np.concatenate([A[:, 1:], ninf], axis=1)
    is_peak = (A > left) & (A >= right) & (A > 0)
    cand = np.where(is_peak, A, -1.0)
    order = np.argsort(-cand, axis=1, kind="stable")[:, :n_peaks]
    vals = np.take_along_axis(cand, order, axis=1)
    valid = vals > 0
    pv = np.zeros((n, n_peaks))
    pf = np.zeros((n, n_peaks))
    m = order.shape[1]
    pv[:, :m] = np.where(valid, vals, 0.0)
    pf[:, :m] = np.where(valid, np.asarray(freqs, dtype=np.float64)[order], 0.0)
    return pv, pf


def extract_features(windows: np.ndarray, fs: float = 1.0) -> np.ndarray:
    """The 27 features of each window (definitions in the module docstring).

    Parameters
    ----------
    windows : array (n, L), real, finite, ``L >= 4``; one magnitude signal per row.
    fs : sampling rate in Hz; only the peak frequencies and spectral moments depend on it.

    Returns
    -------
    float32 array (n, 27), columns in the order of :data:`FEATURE_NAMES`.
    """
    x = np.asarray(windows, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"extract_features: windows must be 2-D (n_windows, length), got shape {x.shape}")
    n, L = x.shape
    if L < 4:
        raise ValueError(f"extract_features: window length must be >= 4, got {L}")
    if not fs > 0:
        raise ValueError(f"extract_features: fs must be > 0, got {fs}")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise ValueError(
            f"extract_features: {int(bad.sum())} of {n} windows contain NaN/inf "
            f"(first at row {int(np.argmax(bad))}); fill or drop missing samples first"
        )
    out = np.zeros((n, N_FEATURES), dtype=np.float64)
    if n == 0:
        return out.astype(np.float32)

    mean = x.mean(axis=1)
    mn = x.min(axis=1)
    mx = x.max(axis=1)
    rng = mx - mn
    out[:, 0] = mean
    out[:, 1] = x.std(axis=1)
    out[:, 2] = mn
    out[:, 3] = mx
    out[:, 5] = rng

    # mode: centre of the most populated of MODE_BINS equal-width bins over [min, max]
    safe_rng = np.where(rng > 0, rng, 1.0)
    b = np.floor((x - mn[:, None]) / safe_rng[:, None] * MODE_BINS).astype(np.int64)
    np.clip(b, 0, MODE_BINS - 1, out=b)
    counts = np.bincount((b + MODE_BINS * np.arange(n)[:, None]).ravel(), minlength=n * MODE_BINS)
    best = counts.reshape(n, MODE_BINS).argmax(axis=1)  # first maximum = lowest bin
    out[:, 4] = np.where(rng > 0, mn + (best + 0.5) * rng / MODE_BINS, mn)

    s = (x - mean[:, None]) >= 0
    out[:, 6] = np.count_nonzero(s[:, 1:] != s[:, :-1], axis=1) / (L - 1)

    out[:, 7] = np.abs(np.fft.rfft(x, axis=1)[:, 0]) / L  # = |mean| up to rounding

    A = amplitude_spectrum(x)  # (n, K)
    K = A.shape[1]
    freqs = np.arange(1, K + 1, dtype=np.float64) * (fs / L)

    pv, pf = pick_peaks(A, freqs)
    out[:, 8:8 + N_PEAKS] = pv
    out[:, 8 + N_PEAKS:8 + 2 * N_PEAKS] = pf

    out[:, 18] = np.mean(x * x, axis=1)

    total = A.sum(axis=1)
    has = total > 0
    p = A / np.where(has, total, 1.0)[:, None]
    mu, sd, sk, ku = _moments_weighted(np.broadcast_to(freqs, A.shape), p)
    out[:, 19] = np.where(has, mu, 0.0)
    out[:, 20] = np.where(has, sd, 0.0)
    out[:, 21] = np.where(has, sk, 0.0)
    out[:, 22] = np.where(has, ku, 0.0)

    uniform = np.full(A.shape, 1.0 / K)
    out[:, 23:27] = np.stack(_moments_weighted(A, uniform), axis=1)
    return out.astype(np.float32)


def magnitude_features(
    windows: np.ndarray,
    groups: Sequence[tuple[str, Sequence[int]]],
    fs: float = 1.0,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """27 features for each 3-axis sensor group of multi-channel windows.

    Parameters
    ----------
    windows : array (n, L, C)
    groups : sequence of ``(name, (ix, iy, iz))``; each group's three channel indices are combined
        into the magnitude ``sqrt(x^2 + y^2 + z^2)``.
    fs : sampling rate in Hz.

    Returns
    -------
    features : float32 (n, 27 * len(groups)); group-major (group 0's 27 features first).
    names : ``f"{group}_{feature}"`` for each column.
    """
    w = np.asarray(windows, dtype=np.float64)
    if w.ndim != 3:
        raise ValueError(f"magnitude_features: windows must be (n, L, C), got shape {w.shape}")
    n, L, C = w.shape
    mags = []
    names: list[str] = []
    for gname, cols in groups:
        cols = list(cols)
        if len(cols) != 3 or min(cols) < 0 or max(cols) >= C:
            raise ValueError(f"magnitude_features: group {gname!r} needs 3 channel indices in 0..{C - 1}, got {cols}")
        mags.append(magnitude(w[:, :, cols]))
        names.extend(f"{gname}_{f}" for f in FEATURE_NAMES)
    G = len(mags)
    if G == 0:
        raise ValueError("magnitude_features: no sensor groups given")
    stacked = np.stack(mags, axis=1).reshape(n * G, L)
    feats = extract_features(stacked, fs=fs).reshape(n, G * N_FEATURES)
    return feats, tuple(names)
