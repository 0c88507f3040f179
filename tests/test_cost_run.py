"""Cost of a CIL run (cost.json), the `intsim cost` command, and energy tables."""
import json
import math

import numpy as np
import pytest

import intsim.models.cost_run as cost_run
from intsim.cli import main
from intsim.core.costs import Op
from intsim.core.modes import OpKind
from intsim.experiments.cil_run import CILRun, run
from intsim.experiments.config import resolve_config
from intsim.experiments.sweep.plots import pareto_front
from intsim.formats.energy_table import DEFAULT_TABLE, energy_table_from_mapping, load_energy_table
from intsim.nn.training import epoch_batch_sizes

TINY = dict(dataset="synthetic", numerics="hdqt", epochs=1, batch_size=16, memory=36, hidden=24,
            dataset_params={"n_classes": 6, "n_subjects": 4, "windows_per_cell": 10})


def _cfg(tmp_path, name, method="icarl", **kw):
    return resolve_config({**TINY, "method": method, "out": str(tmp_path / name), **kw})


@pytest.mark.parametrize("method, extra", [
    ("icarl", {}), ("bic", {}), ("der", {}), ("lwf", {}),
    ("icarl", {"protocol": "paper", "numerics": "hdqt_paper"}),     # per-class features, …
    ("icarl", {"eval_scale": "calibrated"})])
def test_the_cost_hook_leaves_metrics_byte_identical(tmp_path, monkeypatch, method, extra):
    run(_cfg(tmp_path, "with", method, **extra))
    with monkeypatch.context() as m:
        m.setattr(cost_run.RunCostRecorder, "task_start", lambda *a: None)
        m.setattr(cost_run.RunCostRecorder, "task_end", lambda *a: None)
        run(_cfg(tmp_path, "without", method, **extra))
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text())
            for d in ("with", "without"))
    doc = json.loads((tmp_path / "with" / "cost.json").read_text())
    assert a.pop("cost") == cost_run.cost_headline(doc)      # metrics.json repeats the headline
    b.pop("cost", None)
    assert a == b                                            # and nothing else changes
    assert doc["complete"] and doc["numerics"].startswith(extra.get("numerics", "hdqt"))
    assert len(doc["tasks"]) == 3
    assert doc["steps"] == sum(t["steps"] for t in doc["tasks"]) > 0
    assert doc["energy_pj_step"] == pytest.approx(doc["train"]["pj"] / doc["steps"])
    assert doc["energy_pj_run"] == pytest.approx(doc["run"]["pj"])
    assert doc["run"]["pj"] > doc["train"]["pj"]
    assert 0 < doc["energy_rel_fp32"] < 1 and 0 < doc["energy_compute_rel_fp32"] < 1
    assert all(t["unmodelled_modules"] == [] for t in doc["tasks"])
    assert "Horowitz" in doc["energy_table"]["source"]


def test_task_steps_follow_the_training_set_and_batch(tmp_path):
    cfg = _cfg(tmp_path, "r", "finetune", epochs=2)
    scenario = CILRun.prepare(cfg).scenario
    run(cfg)
    doc = json.loads((tmp_path / "r" / "cost.json").read_text())
    for t, task in enumerate(doc["tasks"]):
        n = len(scenario.train_task(t)[1])
        sizes = [int(b) for b, k in task["batch_sizes"].items() for _ in range(k)]
        assert sizes == sorted(epoch_batch_sizes(n, 16, 2)) and task["steps"] == 2 * len(sizes)
        assert sum(sizes) in (n, n - 1) and max(sizes) == 16


def test_a_resumed_run_writes_the_same_cost(tmp_path):
    cfg = _cfg(tmp_path, "r")
    run(cfg)
    out = tmp_path / "r"
    whole = json.loads((out / "cost.json").read_text())
    (out / "checkpoints" / "task002.npz").unlink()
    (out / "metrics.json").unlink()
    run(cfg, resume=True)
    again = json.loads((out / "cost.json").read_text())
    assert again["complete"] and again["steps"] == whole["steps"]
    for key in ("energy_pj_run", "energy_pj_step", "energy_rel_fp32"):
        assert again[key] == pytest.approx(whole[key], rel=1e-12)
    assert again["run"]["macs"] == whole["run"]["macs"]
    assert again["run"]["random_bits"] == whole["run"]["random_bits"]
    assert again["run"]["bytes_moved"] == whole["run"]["bytes_moved"]


# ------------------------------------------------------------------------------ CLI
def test_cli_compare_and_json(tmp_path, capsys):
    p = tmp_path / "c.json"
    assert main(["cost", "--compare", "fp32", "int4", "hdqt", "--model", "fcnet:16,16,16,4",
                 "--batch", "8", "--json", str(p)]) == 0
    out = capsys.readouterr().out
    assert "× fp32" in out and "hdqt" in out and "1.000" in out
    rows = json.loads(p.read_text())["rows"]
    assert [r["numerics"] for r in rows] == ["fp32", "int4", "hdqt"]
    assert rows[0]["rel_fp32"] == pytest.approx(1.0) and rows[2]["rel_fp32"] < 1
    assert rows[2]["hadamard_pj"] > 0 == rows[1]["hadamard_pj"]


def test_cli_report_lists_layers_and_totals(tmp_path, capsys):
    assert main(["cost", "--numerics", "hdqt", "--model", "conv:3,8,3,1,1,6,6", "--batch", "4",
                 "--samples", "10"]) == 0
    out = capsys.readouterr().out
    for text in ("Conv2d", "grad_w", "per step:", "per epoch (10 samples)", "random bits",
                 "× the same step in fp32"):
        assert text in out, text


@pytest.mark.parametrize("argv, msg", [
    (["--model", "fcnet:16,16"], "model: expected 'fcnet:IN,HIDDEN,FEATURE[,CLASSES]'"),
    ([], "give --numerics NAME or --compare"),
    (["--numerics", "hdqt", "--energy", "missing.toml"], "energy table: no such file"),
])
def test_cli_bad_input_is_one_line(capsys, argv, msg):
    argv = argv if "--numerics" in argv or not argv else ["--numerics", "hdqt", *argv]
    assert main(["cost", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("intsim cost: error: ") and msg in err


# -------------------------------------------------------------------- energy tables
def test_default_table_holds_the_published_figures():
    t = load_energy_table()
    text = DEFAULT_TABLE.read_text()
    assert "Horowitz" in t.source and "ISSCC 2014" in text and "45 nm" in text
    assert t.op_energy(Op(OpKind.INT_ADD, 8)) == 0.03
    assert t.op_energy(Op(OpKind.INT_ADD, 32)) == 0.1
    assert t.op_energy(Op(OpKind.INT_MUL, 8, 8, "ss")) == 0.2
    assert t.op_energy(Op(OpKind.INT_MUL, 32, 32, "ss")) == 3.1
    assert t.op_energy(Op(OpKind.FP_ADD, 32)) == 0.9 and t.op_energy(Op(OpKind.FP_MUL, 16)) == 1.1
    assert t.memory["sram_8kb"] == 10 and t.memory["dram"] == 1300


def test_width_rules():
    t = load_energy_table()
    # adders linear in width between the points, proportional below; multipliers on a·b
    assert t.op_energy(Op(OpKind.INT_ADD, 4)) == pytest.approx(0.015)
    assert t.op_energy(Op(OpKind.INT_ADD, 20)) == pytest.approx(0.065)
    assert t.op_energy(Op(OpKind.INT_MUL, 4, 4, "us")) == pytest.approx(0.05)
    assert t.op_energy(Op(OpKind.INT_MUL, 4, 8, "us")) == pytest.approx(0.1)
    assert t.op_energy(Op(OpKind.INT_MUL, 16, 16, "ss")) == pytest.approx(0.2 + 2.9 * 192 / 960)
    assert t.op_energy(Op(OpKind.FP_ADD, 64)) == pytest.approx(1.8)
    assert t.op_energy(Op(OpKind.FP_MUL, 64)) == pytest.approx(14.8)
    # fallbacks
    assert t.op_energy(Op(OpKind.INT_SAT, 8)) == t.op_energy(Op(OpKind.INT_ADD, 8))
    assert t.op_energy(Op(OpKind.FP_DIV, 32)) == 3.7
    assert t.op_energy(Op(OpKind.CONVERT, 32)) == 0.9
    assert t.op_energy(Op(OpKind.RANDOM_BIT)) == pytest.approx(0.03 / 8)
    assert t.op_energy(Op(OpKind.FP_SPECIAL, 32)) == pytest.approx(8 * (3.7 + 0.9))
    assert t.access_energy("master", 8) == 100 and t.access_energy("weights", 8) == 20


def test_a_user_table_replaces_rules(tmp_path):
    p = tmp_path / "t.toml"
    p.write_text('name = "mine"\nrandom_bit = 0.5\n[int_add]\n16 = 1.0\n[int_mul]\n4 = 2.0\n'
                 '[fp_add]\n32 = 1.0\n[fp_mul]\n32 = 2.0\n[fp_div]\n32 = 20.0\n'
                 '[memory]\nword_bits = 32\nsram = 4.0\n')
    t = load_energy_table(p)
    assert t.op_energy(Op(OpKind.RANDOM_BIT)) == 0.5
    assert t.op_energy(Op(OpKind.FP_DIV, 32)) == 20.0
    assert t.op_energy(Op(OpKind.INT_ADD, 8)) == 0.5
    assert t.access_energy("gradients", 8) == 8.0            # 2 words of 32 bits


@pytest.mark.parametrize("doc, msg", [
    ({"int_add": {"8": 0.1}}, "memory: expected a table"),
    ({"int_add": {"eight": 0.1}, "memory": {"s": 1}}, "int_add.eight: expected a width"),
    ({"int_add": {"8": -1}, "memory": {"s": 1}}, "int_add.8: expected a positive number"),
    ({"int_ad": {"8": 1}}, "int_ad: unknown key"),
    ({"int_add": {"8": 1}, "int_mul": {"8": 1}, "fp_add": {"8": 1},
      "memory": {"s": 1}}, "fp_mul: the energy table needs"),
    ({"int_add": {"8": 1}, "int_mul": {"8": 1}, "fp_add": {"8": 1}, "fp_mul": {"8": 1},
      "memory": {"s": 1}, "placement": {"default": "dram"}}, "unknown memory level 'dram'"),
    ({"int_add": {"8": 1}, "int_mul": {"8": 1}, "fp_add": {"8": 1}, "fp_mul": {"8": 1},
      "memory": {"s": 1}, "placement": {"default": "s", "activation": "s"}},
     "placement.activation: unknown tensor class"),
])
def test_bad_tables_name_the_key(doc, msg):
    with pytest.raises(ValueError, match=msg):
        energy_table_from_mapping(doc)


def test_pareto_front():
    e = [1.0, 0.3, 0.5, 0.3, 0.9]
    a = [80, 60, 70, 50, 70]
    assert pareto_front(e, a) == [True, True, True, False, False]
    assert pareto_front([1.0, 1.0], [5, 5]) == [True, True]
    assert not any(math.isnan(x) for x in np.asarray(e))


def test_calibrated_evaluation_books_its_passes_and_fixed_scales(tmp_path):
    docs = {}
    for scale in ("dynamic", "calibrated"):
        run(_cfg(tmp_path, scale, "icarl", eval_scale=scale))
        docs[scale] = json.loads((tmp_path / scale / "cost.json").read_text())
    dyn, cal = (docs[k]["tasks"][-1]["other"] for k in ("dynamic", "calibrated"))
    assert docs["dynamic"]["train"]["macs"] == docs["calibrated"]["train"]["macs"]
    assert cal["macs"] > dyn["macs"]                     # the calibration passes
