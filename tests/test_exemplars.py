"""Tests for intsim.models.exemplars: herding by hand, memory management, NME."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from intsim.models import exemplars as E

R2 = np.sqrt(0.5)


def test_l2_normalize():
    F = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(E.l2_normalize(F), [[0.6, 0.8], [0.0, 0.0]], rtol=1e-7)
    with pytest.raises(ValueError, match="2-D"):
        E.l2_normalize(np.ones(3))


def test_herding_hand_example():
    # raw features; normalised: φ0=(1,0) φ1=(0,1) φ2=(.6,.8) φ3=(√½,√½)
    F = np.array([[2.0, 0.0], [0.0, 3.0], [3.0, 4.0], [1.0, 1.0]])
    # μ = ((1+0+.6+.7071)/4, (0+1+.8+.7071)/4) = (0.576777, 0.626777)
    # k=1: ‖μ-φi‖² = .571968, .471967, .030545, .023439          -> 3
    # k=2: ‖μ-(φ3+φi)/2‖², i=0,1,2: .151256, .101257, .021967      -> 2
    # k=3: ‖μ-(φ3+φ2+φi)/3‖², i=0,1: .052441, .063552              -> 0
    # k=4: -> 1
    assert E.herding_selection(F, 4).tolist() == [3, 2, 0, 1]
    assert E.herding_selection(F, 2).tolist() == [3, 2]
    assert E.herding_selection(F, 10).tolist() == [3, 2, 0, 1]  # m > n: all, no repeats
    assert E.herding_selection(F, 0).tolist() == []
    # herding is not "rank by distance to the mean" (that order would be 3, 2, 1, 0)
    phi = E.l2_normalize(F)
    mu = phi.mean(axis=0)
    np.testing.assert_allclose(mu, [0.576777, 0.626777], atol=1e-6)
    d1 = ((phi - mu) ** 2).sum(axis=1)
    np.testing.assert_allclose(d1, [0.571968, 0.471967, 0.030545, 0.023439], atol=1e-6)
    assert np.argsort(d1).tolist() == [3, 2, 1, 0]


def test_herding_ties_lowest_index():
    # μ = (½,½); k=1 all tie -> 0; k=2 -> 2 (mean hits μ exactly);
    # k=3: rows 1 and 3 tie at 1/18 -> 1; k=4 -> 3
    F = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert E.herding_selection(F, 4).tolist() == [0, 2, 1, 3]


def test_herding_scale_invariant_and_errors():
    F = np.array([[2.0, 0.0], [0.0, 3.0], [3.0, 4.0], [1.0, 1.0]])
    assert E.herding_selection(F * 7.5, 4).tolist() == [3, 2, 0, 1]
    with pytest.raises(ValueError, match="m: expected a non-negative int"):
        E.herding_selection(F, -1)
    with pytest.raises(ValueError, match="NaN"):
        E.herding_selection(np.array([[np.nan, 1.0]]), 1)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(1, 5)),
                  elements=st.integers(-5, 5).map(float)),
       st.integers(0, 14))
def test_prop_herding_each_pick_minimises(F, m):
    """Each pick minimises ‖μ − (S + φ_i)/k‖² over the unchosen samples (plain-loop check)."""
    got = E.herding_selection(F, m).tolist()
    n = F.shape[0]
    assert len(got) == min(m, n)
    assert len(set(got)) == len(got)
    phi = [f / (np.sqrt(sum(v * v for v in f)) + 1e-8) for f in F]
    mu = sum(phi) / n
    S = np.zeros(F.shape[1])
    for k, pick in enumerate(got, start=1):
        d = {i: float(((mu - (S + phi[i]) / k) ** 2).sum())
             for i in range(n) if i not in got[:k - 1]}
        best = min(d.values())
        assert d[pick] <= best + 1e-12
        # exact ties go to the lowest index
        assert pick == min(i for i, v in d.items() if v <= best + 1e-12) or \
            d[pick] == best
        S = S + phi[pick]


def test_memory_reduce_keeps_herding_prefix_and_update():
    mem = E.ExemplarMemory()
    F = np.array([[2.0, 0.0], [0.0, 3.0], [3.0, 4.0], [1.0, 1.0]])
    X = np.array([[10], [11], [12], [13]])
    sel = mem.add_class(0, X, F, m=3)
    assert sel.tolist() == [3, 2, 0]
    assert mem.class_data(0)[:, 0].tolist() == [13, 12, 10]
    mem.reduce(2)
    assert mem.class_data(0)[:, 0].tolist() == [13, 12]      # prefix of herding order
    # end-of-task update: old classes reduced to m, new classes added with m each
    Xn = np.array([[20], [21], [22], [30], [31]])
    yn = np.array([1, 1, 1, 2, 2])
    Fn = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 2.0], [2.0, 1.0]])
    mem.update(Xn, yn, Fn, m=1)
    assert mem.counts() == {0: 1, 1: 1, 2: 1}
    assert len(mem) == 3 and mem.classes == [0, 1, 2]
    Xm, ym = mem.data()
    assert ym.tolist() == [0, 1, 2]
    # class 1: μ ∝ (1.707, 1.707)/3 -> closest single φ is (√½,√½) = row 2 of Xn
    assert Xm[:, 0].tolist() == [13, 22, 30]
    assert mem.class_indices(1).tolist() == [2]
    with pytest.raises(ValueError, match="already in the memory"):
        mem.add_class(1, Xn[:3], Fn[:3], m=1)
    with pytest.raises(ValueError, match="already in the memory"):
        mem.update(Xn, yn, Fn, m=1)
    assert mem.counts() == {0: 1, 1: 1, 2: 1}  # failed update changed nothing


def test_memory_state_roundtrip_and_random():
    mem = E.ExemplarMemory()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    y = np.repeat([0, 1], 10)
    mem.update(X, y, X, m=4, method="random", seed=123)
    again = E.ExemplarMemory()
    again.update(X, y, X, m=4, method="random", seed=123)
    np.testing.assert_array_equal(mem.data()[0], again.data()[0])
    clone = E.ExemplarMemory.from_state_dict(mem.state_dict())
    np.testing.assert_array_equal(clone.data()[0], mem.data()[0])
    np.testing.assert_array_equal(clone.data()[1], mem.data()[1])
    with pytest.raises(ValueError, match="needs a seed"):
        E.ExemplarMemory().update(X, y, X, m=2, method="random")
    with pytest.raises(ValueError, match="memory is empty"):
        E.ExemplarMemory().data()


def test_class_means_renormalised_hand():
    feats = np.array([[5.0, 0.0], [3.0, 4.0], [0.0, 2.0]])
    labels = np.array([7, 7, 9])
    mu = E.class_means(feats, labels)
    # class 7: mean of (1,0),(.6,.8) = (.8,.4) -> /‖·‖ = (2,1)/√5
    np.testing.assert_allclose(mu[0], np.array([2.0, 1.0]) / np.sqrt(5), rtol=1e-7)
    np.testing.assert_allclose(mu[1], [0.0, 1.0], rtol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(mu, axis=1), 1.0)
    with pytest.raises(ValueError, match="class 3 has no sample"):
        E.class_means(feats, labels, classes=[7, 3])


def test_nme_distances_hand():
    means = np.array([[1.0, 0.0], [0.0, 1.0]])
    D = E.nme_distances(np.array([[3.0, 4.0]]), means)
    # φ = (.6,.8): ‖φ-(1,0)‖² = .16+.64 = .8; ‖φ-(0,1)‖² = .36+.04 = .4
    np.testing.assert_allclose(D, [[0.8, 0.4]], rtol=1e-7)


def test_nme_separable_points():
    rng = np.random.default_rng(1)
    centers = np.array([[10.0, 1.0, 0.0], [1.0, 10.0, 0.0], [0.0, 1.0, 10.0]])
    ex = np.concatenate([c + rng.normal(scale=0.5, size=(6, 3)) for c in centers])
    ey = np.repeat([4, 5, 6], 6)
    mu = E.class_means(ex, ey)
    test = np.concatenate([c * s + rng.normal(scale=0.5, size=(10, 3))
                           for c, s in zip(centers, (1.0, 3.0, 0.2))])  # scale-free
    ty = np.repeat([4, 5, 6], 10)
    np.testing.assert_array_equal(E.nme_predict(test, mu, classes=[4, 5, 6]), ty)
    np.testing.assert_array_equal(E.nme_predict(test, mu), ty - 4)


def test_nme_tie_lowest_row_and_errors():
    means = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert E.nme_predict(np.array([[1.0, 1.0]]), means).tolist() == [0]
    with pytest.raises(ValueError, match="means have 3 features"):
        E.nme_distances(np.ones((2, 2)), np.ones((1, 3)))
    with pytest.raises(ValueError, match="classes must have shape"):
        E.nme_predict(np.ones((1, 2)), means, classes=[1])
