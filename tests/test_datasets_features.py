"""The 27-feature extractor, windowing and the train-only scaler, against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intsim.datasets import (FEATURE_NAMES, N_FEATURES, apply_minmax, extract_features, fit_minmax,
                             magnitude, magnitude_features, minmax_preprocess, scale_dataset,
                             sliding_windows)
from intsim.datasets.base import Dataset
from intsim.datasets.har_features import amplitude_spectrum, pick_peaks

IDX = {n: i for i, n in enumerate(FEATURE_NAMES)}


def feats(x, fs=1.0):
    return dict(zip(FEATURE_NAMES, extract_features(np.atleast_2d(x), fs=fs)[0].astype(np.float64)))


def test_feature_names_and_count():
    assert N_FEATURES == 27 == len(FEATURE_NAMES) == len(set(FEATURE_NAMES))
    assert FEATURE_NAMES[:8] == ("mean", "std", "min", "max", "mode", "range", "mean_crossing_rate", "dc")
    assert FEATURE_NAMES[-1] == "amp_kurt"


def test_constant_window():
    f = feats(np.full(50, 2.5), fs=25)
    expected = {k: 0.0 for k in FEATURE_NAMES}
    expected.update(mean=2.5, min=2.5, max=2.5, mode=2.5, dc=2.5, energy=6.25)
    for k, v in expected.items():
        assert f[k] == pytest.approx(v, abs=1e-6), k


def test_pure_sine_at_known_bin():
    L, k0, fs = 64, 4, 50.0
    n = np.arange(L)
    x = np.sin(2 * np.pi * k0 * n / L + np.pi / 3)  # 4 full cycles, no sample at a zero crossing
    f = feats(x, fs=fs)
    assert f["mean"] == pytest.approx(0.0, abs=1e-7)
    assert f["std"] == pytest.approx(1 / math.sqrt(2), rel=1e-6)
    assert f["energy"] == pytest.approx(0.5, rel=1e-6)
    assert f["dc"] == pytest.approx(0.0, abs=1e-7)
    # zero crossings at n = 8m - 8/3, m = 1..8 -> 8 sign changes over 63 steps
    assert f["mean_crossing_rate"] == pytest.approx(8 / 63, rel=1e-6)
    # one-sided amplitude spectrum: amplitude 1 at bin 4 = 4 * 50 / 64 Hz, nothing else
    assert f["peak1_value"] == pytest.approx(1.0, rel=1e-6)
    assert f["peak1_freq"] == pytest.approx(k0 * fs / L, rel=1e-6)
    for i in range(2, 6):
        assert f[f"peak{i}_value"] == 0.0 and f[f"peak{i}_freq"] == 0.0
    assert f["spec_mean"] == pytest.approx(k0 * fs / L, rel=1e-6)
    assert f["spec_std"] == 0.0 and f["spec_skew"] == 0.0 and f["spec_kurt"] == 0.0
    # amplitudes A_1..A_32 = one value 1, 31 zeros: Bernoulli(p = 1/32) scaled by 1
    K, p = 32, 1 / 32
    q = 1 - p
    assert f["amp_mean"] == pytest.approx(1 / K, rel=1e-6)
    assert f["amp_std"] == pytest.approx(math.sqrt(p * q), rel=1e-6)
    assert f["amp_skew"] == pytest.approx((1 - 2 * p) / math.sqrt(p * q), rel=1e-5)
    assert f["amp_kurt"] == pytest.approx((1 - 3 * p * q) / (p * q), rel=1e-5)


def test_two_tones_peak_order_and_spectral_moments():
    L, fs = 64, 1.0
    n = np.arange(L)
    x = 3.0 + 2 * np.sin(2 * np.pi * 3 * n / L + 0.3) + np.cos(2 * np.pi * 7 * n / L + 0.1)
    f = feats(x, fs)
    assert f["dc"] == pytest.approx(3.0, rel=1e-6)
    assert (f["peak1_value"], f["peak2_value"]) == pytest.approx((2.0, 1.0), rel=1e-6)
    assert (f["peak1_freq"], f["peak2_freq"]) == pytest.approx((3 / 64, 7 / 64), rel=1e-6)
    assert f["peak3_value"] == 0.0
    # p = (2/3 at bin 3, 1/3 at bin 7), in cycles/sample
    f3, f7 = 3 / 64, 7 / 64
    mu = (2 * f3 + f7) / 3
    var = (2 * (f3 - mu) ** 2 + (f7 - mu) ** 2) / 3
    m3 = (2 * (f3 - mu) ** 3 + (f7 - mu) ** 3) / 3
    m4 = (2 * (f3 - mu) ** 4 + (f7 - mu) ** 4) / 3
    assert f["spec_mean"] == pytest.approx(mu, rel=1e-6)
    assert f["spec_std"] == pytest.approx(math.sqrt(var), rel=1e-6)
    assert f["spec_skew"] == pytest.approx(m3 / var ** 1.5, rel=1e-5)  # = 1/sqrt(2)
    assert f["spec_kurt"] == pytest.approx(m4 / var ** 2, rel=1e-5)  # = 1.5
    assert f["energy"] == pytest.approx(9 + 2 + 0.5, rel=1e-6)


def test_nyquist_bin_not_doubled():
    x = np.tile([1.0, -1.0], 8)  # amplitude 1 at the Nyquist frequency
    f = feats(x, fs=2.0)
    assert f["peak1_value"] == pytest.approx(1.0)
    assert f["peak1_freq"] == pytest.approx(1.0)  # fs / 2
    assert f["mean_crossing_rate"] == pytest.approx(1.0)


def test_mode_histogram_definition():
    # min 0, max 10 -> bins of width 1; values 3.2, 3.5, 3.9 share bin 3 -> centre 3.5
    x = np.array([0.0, 10.0, 3.2, 3.5, 3.9, 7.0, 7.5, 1.0])
    assert feats(x)["mode"] == pytest.approx(3.5)
    # tie between bin 1 and bin 9 (max lands in the last bin) -> lowest bin wins
    x = np.array([0.0, 1.1, 1.2, 10.0, 10.0, 5.0])
    assert feats(x)["mode"] == pytest.approx(1.5)
    assert feats(x)["range"] == pytest.approx(10.0)


def test_mean_crossing_rate_definition():
    # mean 0.5; s = x >= mean = [F, T, T, T, T, T, F] -> 2 changes over 6 steps
    # (with a strict ">" it would be [F, T, F, F, F, T, F] -> 4 changes)
    x = np.array([0.0, 1.0, 0.5, 0.5, 0.5, 1.0, 0.0])
    assert np.mean(x) == 0.5
    assert feats(x)["mean_crossing_rate"] == pytest.approx(2 / 6)


def test_peaks_are_local_maxima_and_padded():
    L = 40
    A = np.zeros(L // 2)
    A[[2, 3, 4]] = [1.0, 3.0, 1.0]  # one broad peak at bin 4 (index 3 -> bin 4)
    A[[9, 10]] = [2.0, 0.5]  # peak at bin 10 with a shoulder (bin 11) that is not a peak
    n = np.arange(L)
    x = sum(a * np.cos(2 * np.pi * (k + 1) * n / L) for k, a in enumerate(A) if a)
    f = feats(x)
    assert [f[f"peak{i}_value"] for i in (1, 2, 3)] == pytest.approx([3.0, 2.0, 0.0], abs=1e-6)
    assert [f[f"peak{i}_freq"] for i in (1, 2, 3)] == pytest.approx([4 / L, 10 / L, 0.0], abs=1e-7)


def test_pick_peaks_plateau_ties_and_padding():
    A = np.array([[0.0, 2.0, 2.0, 1.0, 3.0, 0.0, 2.0],   # plateau at bins 1-2 -> bin 1; tie 2.0 -> lower bin
                  [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])  # nothing -> padding
    freqs = np.arange(1, 8) * 0.5
    v, f = pick_peaks(A, freqs, n_peaks=4)
    assert v.tolist() == [[3.0, 2.0, 2.0, 0.0], [0.0] * 4]
    assert f.tolist() == [[2.5, 1.0, 3.5, 0.0], [0.0] * 4]
    # the edge bins count as peaks against -inf outside
    v, f = pick_peaks(np.array([[5.0, 1.0, 4.0]]), np.array([1.0, 2.0, 3.0]))
    assert v[0, :2].tolist() == [5.0, 4.0] and f[0, :2].tolist() == [1.0, 3.0] and v.shape == (1, 5)


def _reference(x: np.ndarray, fs: float) -> np.ndarray:
    """Slow, loop-based restatement of the documented definitions."""
    L = len(x)
    out = []
    mean = sum(x) / L
    out += [mean, math.sqrt(sum((v - mean) ** 2 for v in x) / L), min(x), max(x)]
    lo, hi = min(x), max(x)
    if hi > lo:
        counts = [0] * 10
        for v in x:
            counts[min(9, max(0, int(math.floor((v - lo) / (hi - lo) * 10))))] += 1
        b = counts.index(max(counts))
        out.append(lo + (b + 0.5) * (hi - lo) / 10)
    else:
        out.append(lo)
    out.append(hi - lo)
    s = [v - mean >= 0 for v in x]
    out.append(sum(s[i] != s[i - 1] for i in range(1, L)) / (L - 1))
    F = np.fft.rfft(x)
    out.append(abs(F[0]) / L)
    K = L // 2
    A = [2 * abs(F[k]) / L for k in range(1, K + 1)]
    if L % 2 == 0:
        A[-1] /= 2
    tol = 1e-9 * max(abs(v) for v in x)
    A = [a if a > tol else 0.0 for a in A]
    peaks = []
    for i, a in enumerate(A):
        left = A[i - 1] if i > 0 else -math.inf
        right = A[i + 1] if i < K - 1 else -math.inf
        if a > left and a >= right and a > 0:
            peaks.append((-a, i))
    peaks.sort()
    peaks = peaks[:5] + [(0.0, None)] * (5 - len(peaks[:5]))
    out += [-p[0] for p in peaks]
    out += [0.0 if p[1] is None else (p[1] + 1) * fs / L for p in peaks]
    out.append(sum(v * v for v in x) / L)
    freqs = [(k + 1) * fs / L for k in range(K)]

    def moments(vals, w):
        mu = sum(wi * v for wi, v in zip(w, vals))
        var = sum(wi * (v - mu) ** 2 for wi, v in zip(w, vals))
        if var <= 0:
            return [mu, 0.0, 0.0, 0.0]
        m3 = sum(wi * (v - mu) ** 3 for wi, v in zip(w, vals))
        m4 = sum(wi * (v - mu) ** 4 for wi, v in zip(w, vals))
        return [mu, math.sqrt(var), m3 / var ** 1.5, m4 / var ** 2]

    tot = sum(A)
    out += moments(freqs, [a / tot for a in A]) if tot > 0 else [0.0] * 4
    out += moments(A, [1 / K] * K)
    return np.array(out)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), L=st.integers(8, 90), n=st.integers(1, 4),
       offset=st.floats(-5, 20), fs=st.sampled_from([1.0, 25.0, 50.0]))
def test_vectorised_matches_loop_reference(seed, L, n, offset, fs):
    rng = np.random.default_rng(seed)
    t = np.arange(L)
    X = offset + rng.normal(size=(n, L)) * rng.uniform(0.1, 3, size=(n, 1))
    X += rng.uniform(0, 2, size=(n, 1)) * np.sin(2 * np.pi * rng.integers(1, L // 2 + 1, size=(n, 1)) * t / L)
    got = extract_features(X, fs=fs).astype(np.float64)
    for i in range(n):
        ref = _reference(X[i], fs)
        np.testing.assert_allclose(got[i], ref.astype(np.float32), rtol=2e-5, atol=2e-5 * (1 + abs(offset)),
                                   err_msg=f"row {i}")
        # rows are independent of each other
        np.testing.assert_array_equal(extract_features(X[i:i + 1], fs=fs)[0], got[i].astype(np.float32))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), L=st.integers(8, 65))
def test_parseval_energy(seed, L):
    """energy = dc^2 + sum over bins of A_k^2 / 2 (Nyquist bin: A^2)."""
    x = np.random.default_rng(seed).normal(size=(1, L)) + 1.0
    A = amplitude_spectrum(x)[0]
    power = A ** 2 / 2
    if L % 2 == 0:
        power[-1] = A[-1] ** 2
    f = extract_features(x)[0]
    assert f[IDX["energy"]] == pytest.approx(f[IDX["dc"]] ** 2 + power.sum(), rel=1e-4)


def test_extract_features_input_checks():
    with pytest.raises(ValueError, match="2-D"):
        extract_features(np.zeros(10))
    with pytest.raises(ValueError, match=">= 4"):
        extract_features(np.zeros((2, 3)))
    x = np.zeros((3, 10))
    x[1, 4] = np.nan
    with pytest.raises(ValueError, match="1 of 3 windows contain NaN"):
        extract_features(x)
    assert extract_features(np.zeros((0, 10))).shape == (0, 27)
    assert extract_features(np.zeros((2, 10))).dtype == np.float32


def test_magnitude_and_groups():
    assert magnitude(np.array([[3.0, 4.0, 0.0], [1.0, 2.0, 2.0]])) == pytest.approx([5.0, 3.0])
    with pytest.raises(ValueError, match="size 3"):
        magnitude(np.zeros((2, 2)))
    W = np.zeros((2, 16, 6))
    W[:, :, 0], W[:, :, 1] = 3.0, 4.0  # group a: |(3,4,0)| = 5
    W[:, :, 5] = -2.0  # group b: |(0,0,-2)| = 2
    X, names = magnitude_features(W, [("a", (0, 1, 2)), ("b", (3, 4, 5))])
    assert X.shape == (2, 54) and names[0] == "a_mean" and names[27] == "b_mean" and len(names) == 54
    assert X[:, 0] == pytest.approx([5, 5]) and X[:, 27] == pytest.approx([2, 2])
    with pytest.raises(ValueError, match="3 channel indices"):
        magnitude_features(W, [("bad", (0, 1, 6))])


def test_sliding_windows():
    x = np.arange(10)
    w = sliding_windows(x, 4, 2)
    assert w.tolist() == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9]]
    x2 = np.stack([np.arange(9), 10 * np.arange(9)], axis=1)  # (T=9, C=2)
    w2 = sliding_windows(x2, 4, 4)  # trailing partial window dropped
    assert w2.shape == (2, 4, 2)
    assert w2[1, :, 1].tolist() == [40, 50, 60, 70]
    assert sliding_windows(x, 11, 1).shape == (0, 11)
    w[0, 0] = 99  # a copy, not a view
    assert x[0] == 0


def test_minmax_train_only():
    Xtr = np.array([[0.0, 5.0, 1.0], [10.0, 5.0, 3.0]])
    sc = fit_minmax(Xtr)
    Z = sc.transform(np.array([[5.0, 5.0, 2.0], [20.0, 7.0, 0.0]]))
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z, [[0.0, 0.0, 0.0], [3.0, 0.0, -2.0]])  # test rows may leave [-1, 1]
    np.testing.assert_allclose(apply_minmax(sc, Xtr), [[-1, 0, -1], [1, 0, 1]])
    assert apply_minmax(sc, np.array([[20.0, 7.0, 0.0]]), clip=True).tolist() == [[1.0, 0.0, -1.0]]
    with pytest.raises(ValueError, match="X must be"):
        sc.transform(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="NaN"):
        fit_minmax(np.array([[np.nan]]))


def test_scale_dataset_uses_train_rows_only():
    X = np.array([[0.0], [2.0], [100.0]], dtype=np.float32)
    ds = Dataset("t", X, np.array([0, 1, 0]), np.array([1, 1, 2]), None, ("a", "b"), False, "test")
    scaled, sc = scale_dataset(ds, ds.subject == 1)
    assert scaled.X[:, 0].tolist() == [-1.0, 1.0, 99.0]
    assert sc.data_max.tolist() == [2.0]
    assert scaled.meta["scaled"]["fit_on"] == "train rows"
    assert ds.X[2, 0] == 100.0  # original untouched


def test_minmax_preprocess_fits_on_train_only():
    pre = minmax_preprocess()
    a, b = pre(np.array([[0.0], [4.0]]), np.array([[8.0], [2.0]]))
    assert a.ravel().tolist() == [-1.0, 1.0] and b.ravel().tolist() == [3.0, 0.0]
    _, b = minmax_preprocess(clip=True)(np.array([[0.0], [4.0]]), np.array([[8.0]]))
    assert b.ravel().tolist() == [1.0]
