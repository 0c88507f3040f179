"""The paper protocol (docs/fidelity.md): the published code's initialisation, bias-free head,
evaluation batching and order, feature batching, trailing batch, straight-through and tie rules,
each selected by `protocol = "paper"` and each also a setting of its own."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from intsim import preset
from intsim.experiments.builders import build_numerics
from intsim.experiments.cil_run import CILRun
from intsim.experiments.config import ConfigError, resolve_config
from intsim.models.calibration import fixed_activation_numerics
from intsim.models.networks import FCNet, IncrementalHead, torch_default_init
from intsim.models.ties import paper_k, predict, topk_order
from intsim.nn import Linear

ALPHA = 1e-6          # false-failure probability of each distribution check


def assert_uniform(w, bound, alpha=ALPHA):
    """w looks like n i.i.d. draws of U(−bound, bound): every |w| <= bound, and the
    Kolmogorov distance to the uniform CDF is within the Dvoretzky–Kiefer–Wolfowitz band
    ε = sqrt(ln(2/α) / 2n), which a true sample leaves with probability at most α."""
    w = np.sort(np.asarray(w, np.float64).ravel())
    n = w.size
    assert np.all(np.abs(w) <= bound)
    F = (w + bound) / (2 * bound)
    d = max(np.max(np.arange(1, n + 1) / n - F), np.max(F - np.arange(n) / n))
    assert d <= math.sqrt(math.log(2 / alpha) / (2 * n)), d


def test_uniform_check_rejects_the_intsim_init():
    w = FCNet(54, 54, 54, seed=0).fc1.params["weight"]           # N(0, 2/54)
    with pytest.raises(AssertionError):
        assert_uniform(w, 1 / math.sqrt(54))


@pytest.mark.parametrize("fan_in", [54, 405])
def test_torch_default_init_is_uniform_over_one_over_sqrt_fan_in(fan_in):
    net = torch_default_init(FCNet(fan_in, fan_in, fan_in, seed=3))
    for layer in (net.fc1, net.fc2):
        assert "bias" not in layer.params
        assert_uniform(layer.params["weight"], 1 / math.sqrt(fan_in))
    assert not np.array_equal(net.fc1.params["weight"], net.fc2.params["weight"])


def test_paper_head_is_bias_free_uniform_and_grows_by_copying_old_rows():
    head = IncrementalHead(405, 2, kind="nobias_uniform", seed=1)
    assert "bias" not in head.params
    old = head.params["weight"].copy()
    head.grow(300, seed=2)
    W = head.params["weight"]
    assert W.shape == (302, 405) and np.array_equal(W[:2], old)
    assert_uniform(W, math.sqrt(3 / 405))
    x = np.random.default_rng(0).standard_normal((4, 405)).astype(np.float32)
    assert np.array_equal(head.forward(x), Linear.forward(head, x))   # no bias added
    with pytest.raises(ValueError, match="head"):
        IncrementalHead(4, 2, kind="gaussian")


def cfg(tmp_path, **kw):
    base = dict(dataset="synthetic", method="icarl", numerics="hdqt_paper", epochs=0,
                out=str(tmp_path / "run"), dataset_params={"n_classes": 4})
    return resolve_config({**base, **kw})


def test_protocol_switch_sets_every_choice_and_explicit_settings_win(tmp_path):
    own = cfg(tmp_path)
    assert (own["protocol"], own["init"], own["head"], own["eval_order"]) == (
        "intsim", "kaiming_normal", "bias_normal", "dataset")
    assert own["eval_batch_size"] == own["batch_size"] == own["feature_batch_size"]
    p = cfg(tmp_path, protocol="paper")
    assert (p["init"], p["head"], p["eval_batch_size"], p["eval_order"], p["feature_batching"],
            p["feature_batch_size"], p["keep_single_batch"], p["ste"], p["tie_rule"]) == (
        "torch_default", "nobias_uniform", 128, "class_sorted", "per_class", 64, True,
        "code_max", "topk")
    mixed = cfg(tmp_path, protocol="paper", head="bias_normal", eval_batch_size=7)
    assert mixed["head"] == "bias_normal" and mixed["eval_batch_size"] == 7
    assert mixed["init"] == "torch_default"
    with pytest.raises(ConfigError, match="protocol"):
        cfg(tmp_path, protocol="pycil")
    assert build_numerics(p).ste == "code_max" and build_numerics(own).ste == "clipped"
    assert build_numerics(cfg(tmp_path, protocol="paper", numerics="fp32")) == preset("fp32")


class Recorder:
    """Wraps a bound method, recording the inputs of every call."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, x):
        self.calls.append(np.array(x))
        return self.fn(x)


def test_paper_evaluation_batches_are_class_sorted_and_features_per_class(tmp_path):
    run = CILRun.prepare(cfg(tmp_path, protocol="paper", batch_size=32), overwrite=True)
    learner, sc = run.learner, run.scenario
    assert "bias" not in learner.model.head.params
    feats = learner.model.features = Recorder(learner.model.features)
    learner.learn_task(0)                      # epochs 0: only herding runs the network
    fwd = learner.model.forward = Recorder(learner.model.forward)
    Xtr, ytr = sc.train_task(0)
    want = [Xtr[ytr == c][s:s + 64] for c in np.unique(ytr)
            for s in range(0, int(np.sum(ytr == c)), 64)]
    assert len(feats.calls) == len(want) > 2
    assert all(np.array_equal(a, b) for a, b in zip(feats.calls, want))
    preds = learner.evaluate(0)
    X, y = sc.test_upto(0)
    order = np.argsort(y, kind="stable")
    want = [X[order][s:s + 128] for s in range(0, len(y), 128)]
    assert len(fwd.calls) == len(want)
    assert all(np.array_equal(a, b) for a, b in zip(fwd.calls, want))
    assert preds["cnn"].shape == y.shape       # returned in test_upto order
    assert run.cfg["eval_batch_size"] == 128   # not the training batch of 32


def test_intsim_evaluation_uses_the_training_batch_in_data_set_order(tmp_path):
    run = CILRun.prepare(cfg(tmp_path, batch_size=16), overwrite=True)
    learner = run.learner
    learner.learn_task(0)
    fwd = learner.model.forward = Recorder(learner.model.forward)
    learner.evaluate(0)
    X, _ = run.scenario.test_upto(0)
    assert all(np.array_equal(a, X[s:s + 16]) for a, s in zip(fwd.calls, range(0, len(X), 16)))


def test_trailing_batch_of_one_is_kept_only_when_asked(tmp_path):
    rng = np.random.default_rng(0)
    for keep, sizes in ((True, [128, 1]), (False, [128])):
        run = CILRun.prepare(cfg(tmp_path, keep_single_batch=keep), overwrite=True)
        assert [len(b) for b in run.learner.batches(129, rng)] == sizes


def test_config_json_and_cli_line_report_the_evaluation(tmp_path):
    run = CILRun.prepare(cfg(tmp_path, protocol="paper"), overwrite=True)
    run.execute()
    doc = json.loads((Path(run.out) / "config.json").read_text())
    s = doc["settings"]
    assert (s["protocol"], s["eval_batch_size"], s["eval_order"], s["eval_scale"]) == (
        "paper", 128, "class_sorted", "dynamic")
    assert doc["numerics_spec"]["ste"] == "code_max"


# ------------------------------------------------------------------ ties
FIXTURE = json.loads((Path(__file__).parent / "topk_ties.json").read_text())


def test_topk_replica_matches_recorded_torch_answers():
    """torch.topk's CPU answers on rows with ties (and NaN), recorded once with PyTorch."""
    for case in FIXTURE["cases"]:
        row = [np.nan if v is None else float(v) for v in case["row"]]
        assert topk_order(row, case["k"]) == case["topk"], case
        assert case["k"] == paper_k(len(row))
    logits = np.array([[np.nan if v is None else v for v in c["row"]]
                       for c in FIXTURE["cases"] if len(c["row"]) == 7], np.float32)
    want = [c["topk"][0] for c in FIXTURE["cases"] if len(c["row"]) == 7]
    assert predict(logits, "topk").tolist() == want


def test_tie_rules_agree_without_ties_and_differ_on_some():
    r = np.random.default_rng(0)
    z = r.standard_normal((50, 7)).astype(np.float32)
    assert np.array_equal(predict(z, "topk"), predict(z, "first"))
    tied = np.round(r.standard_normal((400, 7))).astype(np.float32)
    assert np.array_equal(predict(tied, "first"), np.argmax(tied, 1))
    assert not np.array_equal(predict(tied, "topk"), predict(tied, "first"))
    with pytest.raises(ValueError, match="tie_rule"):
        predict(z, "last")


# ------------------------------------------------------------------ calibrated evaluation
def test_calibrated_scale_is_the_dynamic_scale_of_the_whole_calibration_set():
    from intsim import quantize
    x = np.abs(np.random.default_rng(1).standard_normal((300, 20))).astype(np.float32)
    nm = fixed_activation_numerics(preset("hdqt"), float(np.abs(x).max()), float(x.min()))
    q = quantize(x, 4, clip=0.975)
    assert nm.a_fwd.scale == float(q.scale) and nm.a_fwd.signed is False
    assert nm.w_fwd == preset("hdqt").w_fwd


def test_calibrated_evaluation_does_not_depend_on_the_evaluation_batch(tmp_path):
    preds = []
    for b in (7, 128):
        run = CILRun.prepare(cfg(tmp_path, numerics="hdqt", eval_scale="calibrated",
                                 eval_batch_size=b, epochs=1), overwrite=True)
        run.learner.learn_task(0)
        numerics = [m.numerics for m in run.learner.model.modules()]
        preds.append(run.learner.evaluate(0)["cnn"])
        assert [m.numerics for m in run.learner.model.modules()] == numerics   # restored
    assert np.array_equal(*preds)


def test_rescore_without_changes_gives_the_run_metrics_and_changes_apply(tmp_path):
    from intsim.experiments.rescore import rescore
    c = cfg(tmp_path, numerics="hdqt", epochs=2, batch_size=16, init_cls=2, increment=2)
    metrics = CILRun.prepare(c, overwrite=True).execute()
    again = rescore(c["out"])
    assert json.dumps(again, sort_keys=True) == json.dumps(
        json.loads((Path(c["out"]) / "metrics.json").read_text()), sort_keys=True)
    assert again["aia"] == metrics["aia"]
    big = rescore(c["out"], eval_batch_size=100000)
    assert big["n_tasks"] == again["n_tasks"]
    with pytest.raises(ConfigError, match="only"):
        rescore(c["out"], lr=0.1)
