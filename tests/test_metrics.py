"""Tests for intsim.models.metrics: hand-computed matrices + Hypothesis properties."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intsim.models import metrics as M

PROP = settings(derandomize=True, max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# ----------------------------------------------------------------------------- hand example
# 3 tasks of 2 classes (init_cls = increment = 2).  Task 0 has 4 test samples, tasks 1 and 2
# have 2 each, so A_t differs from the plain mean of row t of the matrix.
Y_TRUE = [np.array([0, 0, 1, 1]),
          np.array([0, 0, 1, 1, 2, 3]),
          np.array([0, 0, 1, 1, 2, 3, 4, 5])]
Y_PRED = [np.array([0, 0, 1, 0]),             # task0 3/4
          np.array([0, 0, 1, 1, 2, 0]),       # task0 4/4, task1 1/2
          np.array([0, 0, 1, 0, 2, 3, 4, 4])]  # task0 3/4, task1 2/2, task2 1/2
TASKS = [M.task_ids_from_labels(y, 2, 2) for y in Y_TRUE]
NAN = np.nan
A_HAND = np.array([[75.0, NAN, NAN],
                   [100.0, 50.0, NAN],
                   [75.0, 100.0, 50.0]])


def test_task_ids_from_labels_with_remainder():
    y = np.arange(7)
    assert M.task_ids_from_labels(y, 2, 2).tolist() == [0, 0, 1, 1, 2, 2, 3]
    assert M.task_ids_from_labels(y, 3, 2).tolist() == [0, 0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="increment"):
        M.task_ids_from_labels(y, 2, 0)


def test_accuracy_matrix_hand():
    a = M.accuracy_matrix(Y_TRUE, Y_PRED, TASKS)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(A_HAND))
    np.testing.assert_allclose(a[~np.isnan(a)], A_HAND[~np.isnan(A_HAND)])


def test_accuracy_curve_from_predictions_not_row_mean():
    A = M.accuracy_curve(Y_TRUE, Y_PRED)
    np.testing.assert_allclose(A, [75.0, 500.0 / 6.0, 75.0])
    # the plain row mean of the matrix at step 1 would be 75, not 83.33
    assert np.nanmean(A_HAND[1]) == 75.0
    assert A[1] == pytest.approx(83.3333333333)


def test_last_and_aia_hand():
    A = M.accuracy_curve(Y_TRUE, Y_PRED)
    assert M.last_accuracy(A) == 75.0
    assert M.average_incremental_accuracy(A) == pytest.approx((75 + 500 / 6 + 75) / 3)
    assert M.average_incremental_accuracy([80.0]) == 80.0  # first task included


def test_forgetting_variants_hand():
    # chaudhry:      j0: max(75,100) - 75 = 25;    j1: max(50) - 100 = -50   -> -12.5
    # max_incl_last: j0: max(75,100,75) - 75 = 25; j1: max(50,100) - 100 = 0 -> 12.5
    # first_last:    j0: 75 - 75 = 0;              j1: 50 - 100 = -50        -> -25
    np.testing.assert_allclose(M.forgetting_per_task(A_HAND), [25.0, -50.0])
    assert M.forgetting(A_HAND) == pytest.approx(-12.5)
    assert M.forgetting(A_HAND, "max_incl_last") == pytest.approx(12.5)
    assert M.forgetting(A_HAND, "first_last") == pytest.approx(-25.0)
    with pytest.raises(ValueError, match="variant"):
        M.forgetting(A_HAND, "average")


def test_forgetting_chaudhry_textbook():
    a = np.array([[90.0, NAN, NAN, NAN],
                  [70.0, 80.0, NAN, NAN],
                  [80.0, 60.0, 95.0, NAN],
                  [40.0, 50.0, 85.0, 99.0]])
    # j0: max(90,70,80)-40 = 50; j1: max(80,60)-50 = 30; j2: 95-85 = 10 -> 30
    assert M.forgetting(a) == pytest.approx(30.0)
    # BWT: (40-90 + 50-80 + 85-95)/3 = -30
    assert M.backward_transfer(a) == pytest.approx(-30.0)


def test_bwt_hand():
    # (a[2,0]-a[0,0] + a[2,1]-a[1,1]) / 2 = (0 + 50) / 2
    assert M.backward_transfer(A_HAND) == pytest.approx(25.0)
    assert M.backward_transfer(A_HAND) == pytest.approx(-M.forgetting(A_HAND, "first_last"))


def test_single_task_undefined():
    a = np.array([[88.0]])
    assert math.isnan(M.forgetting(a))
    assert math.isnan(M.backward_transfer(a))
    assert M.forgetting_per_task(a).shape == (0,)
    c = M.per_class_accuracy_matrix([np.array([0, 1])], [np.array([0, 0])])
    assert math.isnan(M.class_forgetting(c))


def test_per_class_and_class_forgetting_hand():
    c = M.per_class_accuracy_matrix(Y_TRUE, Y_PRED)
    expected = np.array([[100, 50, NAN, NAN, NAN, NAN],
                         [100, 100, 100, 0, NAN, NAN],
                         [100, 50, 100, 100, 100, 0]], dtype=float)
    np.testing.assert_array_equal(np.isnan(c), np.isnan(expected))
    np.testing.assert_allclose(c[~np.isnan(c)], expected[~np.isnan(expected)])
    curve = M.class_forgetting_curve(c)
    # t=1: every class at its best so far -> 0;  t=2: only class 1 dropped (100 -> 50),
    # averaged over the 6 seen classes (newest included) -> 50/6
    assert math.isnan(curve[0])
    assert curve[1] == 0.0
    assert curve[2] == pytest.approx(50.0 / 6.0)
    assert M.class_forgetting(c) == pytest.approx(50.0 / 6.0)


def test_macro_f1_hand():
    # step 2: F1 per class = 0.8, 2/3, 1, 1, 2/3, 0  -> mean 12.4/18
    assert M.macro_f1(Y_TRUE[2], Y_PRED[2]) == pytest.approx(100 * 12.4 / 18)
    assert M.macro_f1([0, 1, 1], [0, 1, 1]) == 100.0
    # a class without support is skipped (class 7 never occurs)
    assert M.macro_f1([0, 1], [0, 1], classes=[0, 1, 7]) == 100.0
    # predictions of an unseen label are errors
    assert M.macro_f1([0, 0], [0, 9]) == pytest.approx(100 * 2 / 3)
    assert math.isnan(M.macro_f1([], []))
    np.testing.assert_allclose(M.macro_f1_curve(Y_TRUE, Y_PRED)[2], 100 * 12.4 / 18)


def test_macro_f1_matches_sklearn_when_all_classes_present():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    yt = rng.integers(0, 5, 200)
    yp = np.where(rng.random(200) < 0.6, yt, rng.integers(0, 5, 200))
    assert M.macro_f1(yt, yp) == pytest.approx(
        100 * skm.f1_score(yt, yp, average="macro", labels=np.arange(5)))


def test_empty_task_gives_nan_and_is_skipped():
    # task 1 has no test samples at any step (an empty class)
    yt = [np.array([0, 1]), np.array([0, 1]), np.array([0, 1, 4, 5])]
    yp = [np.array([0, 1]), np.array([0, 0]), np.array([1, 1, 4, 5])]
    ti = [M.task_ids_from_labels(y, 2, 2) for y in yt]
    a = M.accuracy_matrix(yt, yp, ti)
    assert np.isnan(a[1, 1]) and np.isnan(a[2, 1])
    assert a[2, 0] == 50.0 and a[2, 2] == 100.0
    # j0: max(100, 50) - 50 = 50; j1 undefined -> skipped
    assert M.forgetting(a) == pytest.approx(50.0)
    assert M.backward_transfer(a) == pytest.approx(-50.0)
    assert math.isnan(M.accuracy([], []))


def test_input_validation_messages():
    with pytest.raises(ValueError, match="same number of steps"):
        M.accuracy_matrix(Y_TRUE, Y_PRED[:2], TASKS)
    with pytest.raises(ValueError, match=r"task_ids\[0\] must lie in \[0, 0\]"):
        M.accuracy_matrix([np.array([0, 2])], [np.array([0, 2])], [np.array([0, 1])])
    with pytest.raises(ValueError, match="square"):
        M.forgetting(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="one 1-D array per step"):
        M.accuracy_curve(np.array([0, 1]), np.array([0, 1]))
    with pytest.raises(ValueError, match="same length"):
        M.accuracy([0, 1], [0])


def test_aggregate_seeds_ddof():
    s = M.aggregate_seeds([80.0, 82.0, 84.0])
    assert (s.mean, s.std, s.n, s.ddof) == (82.0, 2.0, 3, 1)
    s0 = M.aggregate_seeds([80.0, 82.0, 84.0], ddof=0)
    assert s0.std == pytest.approx(math.sqrt(8 / 3))
    np.testing.assert_array_equal(s.values, [80.0, 82.0, 84.0])
    assert s.to_dict()["values"] == [80.0, 82.0, 84.0]
    assert str(s) == "82.00 ± 2.00 (n=3)"
    assert math.isnan(M.aggregate_seeds([70.0]).std)      # ddof=1, one seed
    assert math.isnan(M.aggregate_seeds([70.0, NAN]).mean)  # failed seed not dropped
    curves = M.aggregate_seeds([[1.0, 2.0], [3.0, 6.0]])
    np.testing.assert_allclose(curves.mean, [2.0, 4.0])
    np.testing.assert_allclose(curves.std, [math.sqrt(2), math.sqrt(8)])
    with pytest.raises(ValueError, match="ddof"):
        M.aggregate_seeds([1.0, 2.0], ddof=-1)


def test_summarize_run_hand():
    r = M.summarize_run(Y_TRUE, Y_PRED, TASKS)
    assert r["units"] == "percent"
    assert r["last"] == 75.0
    assert r["forgetting"] == pytest.approx(-12.5)
    assert r["bwt"] == pytest.approx(25.0)
    assert r["class_forgetting"] == pytest.approx(50 / 6)
    assert r["last_macro_f1"] == pytest.approx(100 * 12.4 / 18)


# ----------------------------------------------------------------------------- properties
@st.composite
def acc_matrices(draw, min_T=2, max_T=6, decreasing=False):
    T = draw(st.integers(min_T, max_T))
    a = np.full((T, T), np.nan)
    for j in range(T):
        prev = draw(st.floats(0, 100))
        a[j, j] = prev
        for t in range(j + 1, T):
            v = draw(st.floats(0, prev if decreasing else 100))
            a[t, j] = v
            if decreasing:
                prev = v
    return a


@PROP
@given(acc_matrices())
def test_prop_forgetting_bounds(a):
    f = M.forgetting(a)
    bwt = M.backward_transfer(a)
    # max over [j, T-2] includes a[j, j], so f_j >= a[j,j] - a[T-1,j] = -BWT_j
    assert f >= -bwt - 1e-9
    f_incl = M.forgetting(a, "max_incl_last")
    assert f_incl >= 0.0
    assert f_incl >= f - 1e-9
    assert np.all(M.forgetting_per_task(a, "max_incl_last") >= 0)
    assert M.forgetting(a, "first_last") == pytest.approx(-bwt)


@PROP
@given(acc_matrices(decreasing=True))
def test_prop_monotone_decrease(a):
    # accuracy of every task only decreases: forgetting >= 0, BWT <= 0, forgetting == -BWT
    f = M.forgetting(a)
    bwt = M.backward_transfer(a)
    assert f >= 0.0
    assert bwt <= 0.0
    assert f == pytest.approx(-bwt, abs=1e-9)


@PROP
@given(st.lists(st.floats(0, 100), min_size=1, max_size=12))
def test_prop_aia_between_min_and_max(A):
    aia = M.average_incremental_accuracy(A)
    assert min(A) - 1e-9 <= aia <= max(A) + 1e-9
    assert M.last_accuracy(A) == A[-1]


@st.composite
def runs(draw):
    """Random CIL run: T tasks of 2 classes, random test sizes (possibly 0) and predictions."""
    T = draw(st.integers(1, 5))
    C = 2 * T
    counts = draw(st.lists(st.integers(0, 4), min_size=C, max_size=C))
    y_all = np.repeat(np.arange(C), counts)
    yts, yps, tis = [], [], []
    for t in range(T):
        yt = y_all[y_all < 2 * (t + 1)]
        yp = np.array(draw(st.lists(st.integers(0, C - 1), min_size=yt.size,
                                    max_size=yt.size)), dtype=np.int64)
        yts.append(yt)
        yps.append(yp)
        tis.append(M.task_ids_from_labels(yt, 2, 2))
    return yts, yps, tis, C


@PROP
@given(runs())
def test_prop_matrix_consistency(run):
    yts, yps, tis, C = run
    a = M.accuracy_matrix(yts, yps, tis)
    A = M.accuracy_curve(yts, yps)
    T = len(yts)
    assert np.all(np.isnan(a[np.triu_indices(T, 1)]))
    fin = a[np.isfinite(a)]
    assert np.all((fin >= 0) & (fin <= 100))
    for t in range(T):
        n = np.array([np.count_nonzero(tis[t] == j) for j in range(t + 1)])
        if n.sum() == 0:
            assert np.isnan(A[t])
        else:
            w = np.where(n > 0, np.nan_to_num(a[t, :t + 1]), 0.0)
            assert A[t] == pytest.approx((w * n).sum() / n.sum())
    cf = M.class_forgetting_curve(M.per_class_accuracy_matrix(yts, yps, C))
    assert np.all(cf[np.isfinite(cf)] >= 0)
    f1 = M.macro_f1_curve(yts, yps)
    assert np.all((f1[np.isfinite(f1)] >= 0) & (f1[np.isfinite(f1)] <= 100))
    # perfect predictions: 100 everywhere it is defined, zero forgetting
    perfect = M.summarize_run(yts, yts, tis, C)
    pa = perfect["matrix"]
    assert np.all(pa[np.isfinite(pa)] == 100.0)
    assert np.all(perfect["macro_f1"][np.isfinite(perfect["macro_f1"])] == 100.0)
    if T > 1 and np.isfinite(perfect["forgetting"]):
        assert perfect["forgetting"] == 0.0


@PROP
@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=20), st.integers(0, 1))
def test_prop_aggregate_seeds(vals, ddof):
    s = M.aggregate_seeds(vals, ddof=ddof)
    assert min(vals) - 1e-6 <= s.mean <= max(vals) + 1e-6
    assert s.std >= 0
    assert s.n == len(vals)
    np.testing.assert_array_equal(s.values, vals)
