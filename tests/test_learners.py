"""Class-incremental learners on tiny synthetic data: every method end to end, the NME path,
BiC's bias layer, DER/MEMO growth and freezing, teachers, checkpoint state, determinism."""
import numpy as np
import pytest

from intsim.datasets import load_dataset, minmax_preprocess
from intsim.datasets.scenario import Scenario
from intsim.models.exemplars import class_means, nme_predict
from intsim.models.learners import (METHOD_NAMES, BiasLayer, ExpandableNet, TrainSettings,
                                    make_learner, split_backbone)
from intsim.models.metrics import summarize_run
from intsim.models.networks import FCNet, IncrementalHead
from intsim.nn import gradcheck
from intsim.core.presets import preset

D_IN, HIDDEN = 54, 24


@pytest.fixture(scope="module")
def ds():
    return load_dataset("synthetic", n_classes=6, n_subjects=4, windows_per_cell=10)


def make(method, ds, numerics="fp32", epochs=3, seed=0, memory=36, **options):
    sc = Scenario.from_dataset(ds, init_cls=2, increment=2, seed=seed, memory_size=memory,
                               preprocess=minmax_preprocess())
    num = preset(numerics)
    return make_learner(method, sc, lambda s: FCNet(D_IN, HIDDEN, HIDDEN, numerics=num, seed=s),
                        num, TrainSettings(epochs=epochs, lr=0.05, batch_size=16), **options)


def run_all(learner):
    """Train every task; return ({classifier: summarize_run}, raw predictions)."""
    sc = learner.scenario
    y_true, preds = [], {}
    for t in range(sc.n_tasks):
        learner.learn_task(t)
        p = learner.evaluate(t)
        _, y = sc.test_upto(t)
        y_true.append(y)
        for k, v in p.items():
            preds.setdefault(k, []).append(v)
    task_ids = [sc.task_of(y) for y in y_true]
    return {k: summarize_run(y_true, v, task_ids, sc.n_classes) for k, v in preds.items()}, preds


def check_sane(summary, T):
    a = summary["matrix"]
    assert a.shape == (T, T)
    low = a[np.tril_indices(T)]
    assert np.all(np.isfinite(low)) and np.all((low >= 0) & (low <= 100))
    assert np.all(np.isnan(a[np.triu_indices(T, 1)]))
    assert 0 <= summary["aia"] <= 100 and 0 <= summary["last"] <= 100
    assert np.isfinite(summary["forgetting"])


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_learner_end_to_end_fp32(ds, method):
    L = make(method, ds)
    summaries, preds = run_all(L)
    T = L.scenario.n_tasks
    assert T == 3
    check_sane(summaries["cnn"], T)
    assert set(summaries) == ({"cnn", "nme"} if method == "icarl" else {"cnn"})
    for t, p in enumerate(preds["cnn"]):
        assert p.min() >= 0 and p.max() < L.scenario.n_seen(t)
    assert summaries["cnn"]["matrix"][0, 0] > 60          # the first task is learnable
    if L.uses_memory:
        m = L.scenario.memory_per_class(6)
        assert L.memory.classes == list(range(6))
        assert all(n == m for n in L.memory.counts().values())
    else:
        assert len(L.memory) == 0


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_learner_quantized_hdqt(ds, method):
    try:
        L = make(method, ds, numerics="hdqt", epochs=1)
        summaries, _ = run_all(L)
    except NotImplementedError:
        pytest.skip("quantized qlinear path not available")
    check_sane(summaries["cnn"], L.scenario.n_tasks)
    assert L.model.numerics.name == "hdqt"
    assert all(m.numerics.name == "hdqt" for m in L.model.modules())


def test_teacher_is_frozen_eval_copy_with_same_numerics(ds):
    L = make("icarl", ds, numerics="hdqt", epochs=1)
    L.learn_task(0)
    L.begin_task(1)
    assert L.teacher is not None and L.teacher is not L.model
    assert L.teacher.n_classes == 2 and L.model.n_classes == 4
    for m in L.teacher.modules():
        assert not m.requires_grad and not m.training
        assert m.numerics is L.numerics
    # the teacher and the student draw from the same per-task SR stream
    assert L.teacher.backbone.fc1.rng is L.model.backbone.fc1.rng is L.sr
    assert L.sr.path == ("task1",)


def test_icarl_nme_matches_manual_computation(ds):
    L = make("icarl", ds)
    summaries, preds = run_all(L)
    check_sane(summaries["nme"], 3)
    X, y = L.scenario.test_upto(2)
    Xm, ym = L.memory.data()
    means = class_means(L.features(Xm), ym, classes=np.arange(6))
    assert np.array_equal(preds["nme"][-1], nme_predict(L.features(X), means))
    assert summaries["nme"]["last"] > 100 / 6 * 2          # far better than chance


def test_icarl_bce_option_and_bad_option(ds):
    L = make("icarl", ds, loss="bce", epochs=2)
    summaries, _ = run_all(L)
    check_sane(summaries["cnn"], 3)
    with pytest.raises(ValueError, match="loss"):
        make("icarl", ds, loss="mse")
    with pytest.raises(ValueError, match="unknown method option"):
        make("lwf", ds, lamda=3)


def test_lwf_gradient_touches_new_logits_by_ce_and_old_by_kd(ds):
    L = make("lwf", ds, epochs=1)
    L.learn_task(0)
    L.begin_task(1)
    X, y = L.scenario.train_task(1)
    captured = {}
    orig = L.model.backward

    def spy(g):
        captured["g"] = g.copy()
        return orig(g)

    L.model.backward = spy
    L.model.train()
    L.step_loss(X[:8], y[:8])
    g = captured["g"]
    # CE over the new classes only: its gradient rows sum to zero on the new columns,
    # KD gradient rows sum to zero on the old columns
    assert np.allclose(g[:, 2:].sum(axis=1), 0, atol=1e-6)
    assert np.allclose(g[:, :2].sum(axis=1), 0, atol=1e-6)
    assert np.abs(g[:, :2]).max() > 0


def test_bic_bias_layer_trains_and_old_layers_stay_fixed(ds):
    L = make("bic", ds, epochs=4, memory=100)      # validation: int(0.1·100/known) per class
    sc = L.scenario
    L.learn_task(0)
    assert L.bias_params() == []
    L.learn_task(1)
    (a1, b1), = L.bias_params()
    assert (a1, b1) != (1.0, 0.0)
    layer = L.model.bias_layers()[0]
    assert (layer.lo, layer.hi) == (sc.task_start(1), sc.task_stop(1))
    assert not layer.requires_grad                       # frozen outside stage 2
    L.learn_task(2)
    params = L.bias_params()
    assert params[0] == (a1, b1)                         # stage 1 and 2 of task 2 leave it
    assert params[1] != (1.0, 0.0)
    # the validation split was held out of stage-1 training
    Xv, yv = L.val
    assert len(yv) > 0 and set(np.unique(yv)) == set(range(6))


def test_bias_layer_gradcheck():
    layer = BiasLayer(2, 5).to(np.float64)
    layer.params["alpha"][:] = 1.3
    layer.params["beta"][:] = -0.2
    errs = gradcheck(layer, np.random.default_rng(0).standard_normal((4, 7)))
    assert max(errs.values()) < 1e-6


def test_bic_softmax_ce_option(ds):
    L = make("bic", ds, epochs=2, memory=100, stage2_loss="softmax_ce")
    summaries, _ = run_all(L)
    check_sane(summaries["cnn"], 3)
    assert all(p != (1.0, 0.0) for p in L.bias_params())


def _snapshot(module):
    return {k: v.copy() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("method", ["der", "memo"])
def test_der_memo_grow_extractors_and_freeze_old_ones(ds, method):
    L = make(method, ds, epochs=2)
    net = L.model
    L.learn_task(0)
    assert net.n_ext == 1 and net.aux_head is None
    ext0 = _snapshot(net.ext0)
    base0 = _snapshot(net.base) if method == "memo" else None
    head0 = net.head.params["weight"].copy()
    L.learn_task(1)
    assert net.n_ext == 2
    assert not net.ext0.requires_grad and net.ext1.requires_grad
    for k, v in _snapshot(net.ext0).items():                 # old extractor unchanged
        assert np.array_equal(v, ext0[k]), k
    assert any(not np.array_equal(v, ext0[k]) for k, v in _snapshot(net.ext1).items())
    assert net.head.params["weight"].shape == (4, 2 * HIDDEN)
    assert net.aux_head.params["weight"].shape == (2 + 1, HIDDEN)
    assert not np.array_equal(net.head.params["weight"][:2, :HIDDEN], head0)  # head trains
    if method == "memo":
        assert net.base.requires_grad                         # train_base = True (paper)
        assert any(not np.array_equal(v, base0[k]) for k, v in _snapshot(net.base).items())
        assert [n for n, _ in net.base.named_children()] == ["fc1", "relu1"]
    ext1 = _snapshot(net.ext1)
    L.learn_task(2)
    assert net.n_ext == 3
    for k, v in _snapshot(net.ext0).items():
        assert np.array_equal(v, ext0[k])
    for k, v in _snapshot(net.ext1).items():
        assert np.array_equal(v, ext1[k])
    assert net.head.params["weight"].shape == (6, 3 * HIDDEN)


def test_memo_frozen_base_option(ds):
    L = make("memo", ds, epochs=2, train_base=False)
    L.learn_task(0)
    base0 = _snapshot(L.model.base)
    L.learn_task(1)
    assert not L.model.base.requires_grad
    for k, v in _snapshot(L.model.base).items():
        assert np.array_equal(v, base0[k])


def test_weight_alignment_equalises_mean_norms(ds):
    L = make("der", ds, epochs=2, weight_align=False)
    L.learn_task(0)
    L.learn_task(1)
    W = L.model.head.params["weight"]
    gamma = L.weight_align()
    n = np.linalg.norm(W.astype(np.float64), axis=1)
    assert gamma > 0
    assert np.isclose(n[:2].mean(), n[2:].mean(), rtol=1e-5)


def test_expandable_net_gradients_reach_shared_base_through_frozen_extractors():
    fc = FCNet(6, 5, 5, seed=1)
    base, deep = split_backbone(fc, "relu1")
    net = ExpandableNet(base, deep, seed=0)
    net.add_extractor(deep.copy())
    net.ext0.freeze()
    net.head = IncrementalHead(10, 3, seed=2)
    net.to(np.float64)
    errs = gradcheck(net, np.random.default_rng(0).standard_normal((4, 6)))
    trainable = {n for n, _, _ in net.named_parameters(trainable_only=True)}
    assert {"base.fc1.weight", "ext1.fc2.weight", "head.weight"} <= trainable
    assert "ext0.fc2.weight" not in trainable
    assert max(errs[k] for k in trainable | {"input"}) < 1e-6


@pytest.mark.parametrize("method", ["icarl", "bic", "der", "memo"])
def test_state_roundtrip_rebuilds_structure(ds, method):
    L = make(method, ds, epochs=1)
    L.learn_task(0)
    L.learn_task(1)
    state, meta = L.state_dict(), L.meta_state()
    L2 = make(method, ds, epochs=1)
    L2.load_state(state, meta)
    X, _ = L.scenario.test_upto(1)
    assert np.array_equal(L.logits(X), L2.logits(X))
    assert L2.memory.counts() == L.memory.counts()
    for k, v in L.evaluate(1).items():
        assert np.array_equal(v, L2.evaluate(1)[k])
    # both continue identically
    L.learn_task(2)
    L2.learn_task(2)
    X, _ = L.scenario.test_upto(2)
    assert np.array_equal(L.logits(X), L2.logits(X))


def test_same_seed_same_predictions_different_seed_different_order(ds):
    p1 = run_all(make("replay", ds, epochs=2))[1]["cnn"]
    p2 = run_all(make("replay", ds, epochs=2))[1]["cnn"]
    assert all(np.array_equal(a, b) for a, b in zip(p1, p2))
    o0 = make("replay", ds, seed=0).scenario.class_order
    o1 = make("replay", ds, seed=1).scenario.class_order
    assert not np.array_equal(o0, o1)
