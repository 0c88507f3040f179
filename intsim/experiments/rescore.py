"""Re-evaluate a finished run under other evaluation settings, from its task checkpoints.

    metrics = rescore("runs/watch-icarl-hdqt", eval_batch_size=1024)
    metrics = rescore("runs/watch-icarl-hdqt", eval_scale="calibrated")

With dynamic activation scales a quantized network's accuracy depends on how the test data is
batched (docs/fidelity.md). Training does not depend on these settings (when the run fixed
feature_batch_size, as every run whose config.json has it does), so the checkpoint after each
task is loaded into a learner rebuilt from the run's config.json with only EVAL_SETTINGS
changed, evaluated, and the metrics recomputed exactly as the run computed them. With no
changes the result equals the run's metrics.json, its "cost" entry included; with changes
there is no "cost" entry (the evaluation passes' cost changes with them and is not recounted).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

from intsim.experiments.builders import (build_learner, build_numerics, build_scenario,
                                         load_data, network_spec)
from intsim.experiments.config import ConfigError, RunConfig, check_setting
from intsim.experiments.records import Record, compute_metrics
from intsim.formats.run_folder import checkpoints, read_checkpoint, read_json

#: the settings a re-evaluation may change (they act only on evaluate())
EVAL_SETTINGS = ("eval_batch_size", "eval_order", "eval_scale", "tie_rule")


def rescore(run_dir: Union[str, os.PathLike], **changes: Any) -> dict:
    """The metrics of the run in `run_dir` evaluated with `changes` (keys of EVAL_SETTINGS)
    applied to its settings; the folder is only read."""
    run_dir = Path(run_dir)
    bad = sorted(set(changes) - set(EVAL_SETTINGS))
    if bad:
        raise ConfigError(f"rescore: only {', '.join(EVAL_SETTINGS)} can change, got {bad}")
    doc = read_json(run_dir / "config.json")
    if not isinstance(doc, dict) or not isinstance(doc.get("settings"), dict):
        raise ConfigError(f"rescore: {run_dir} holds no run (config.json with settings)")
    settings = dict(doc["settings"])
    if settings.get("feature_batch_size") is None:
        raise ConfigError(f"rescore: {run_dir}: the run does not record feature_batch_size, "
                          f"so its training may depend on the evaluation batch")
    settings.update({k: check_setting(k, v) for k, v in changes.items()})
    cfg = RunConfig.from_mapping(settings)
    numerics, ds = build_numerics(cfg), load_data(cfg)
    scenario = build_scenario(cfg, ds)
    spec = network_spec(cfg, ds)
    found = checkpoints(run_dir / "checkpoints")
    if len(found) != scenario.n_tasks:
        raise ConfigError(f"rescore: {run_dir}: {len(found)} of {scenario.n_tasks} task "
                          f"checkpoints")
    record = None
    for path in found:
        arrays, meta = read_checkpoint(path)
        learner = build_learner(cfg, scenario, spec, numerics)
        learner.load_state(arrays, meta["learner"])
        record = record or Record(learner.describe()["classifiers"])
        t = int(meta["task"])
        record.add(scenario.test_upto(t)[1], learner.evaluate(t))
    metrics = compute_metrics(record, scenario)
    stored = read_json(run_dir / "metrics.json")
    if not changes and isinstance(stored, dict) and "cost" in stored:
        metrics["cost"] = stored["cost"]           # nothing changed: the run's own cost
    return metrics
