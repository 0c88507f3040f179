"""Several seeds of one run and their summary (`intsim cil --seeds`, `intsim demo`).

    rows, curves = run_seeds(cfg, seeds=[0, 1, 2])    # cfg["out"] = OUT

runs cfg once per seed into OUT/seed<k>/ (each an ordinary run folder, resumable on its own),
then writes OUT/summary.json (the row: metrics per seed, as the demo's) and OUT/comparison.png
(the accuracy after each task, mean over the seeds). OUT follows the output-folder policy
(intsim.experiments.outputs, kind "seeds"): a folder that already holds seeds needs resume
(every seed folder is continued from its last checkpoint; a finished one is only re-scored) or
overwrite (each seed folder loses only intsim's own files). The run holds OUT's lock.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from intsim.experiments.cil_run import CILRun, check_run_folder
from intsim.experiments.config import ConfigError, RunConfig, dataset_label
from intsim.experiments.outputs import check_output_folder
from intsim.experiments.plots import plot_comparison
from intsim.experiments.progress import RunProgress
from intsim.formats.atomic import atomic_write_text
from intsim.formats.ownership import hold, write_marker

#: (table column, metrics.json key) of a summary row
COLUMNS = (("AIA", "aia"), ("last", "last"), ("forgetting", "forgetting"),
           ("NME AIA", "nme_aia"), ("NME last", "nme_last"))
SUMMARY_FILE, PLOT_FILE = "summary.json", "comparison.png"


def new_row(label: str, seeds: Sequence[int]) -> dict:
    """An empty summary row: per-seed lists of every COLUMNS metric, event rates, seconds."""
    row = {"numerics": label, "seeds": list(seeds), "runs": []}
    row.update({k: [] for _, k in COLUMNS})
    row.update(event_rate=[], saturated_output_fraction=[], seconds=[])
    return row


def add_run(row: dict, folder: Path, metrics: dict, seconds: float) -> None:
    """Append one finished run (its metrics and trace_summary.json) to a summary row."""
    summary = json.loads((folder / "trace_summary.json").read_text())
    row["seconds"].append(seconds)
    for _, k in COLUMNS:
        row[k].append(metrics.get(k))
    row["event_rate"].append(summary.get("event_rate"))
    row["saturated_output_fraction"].append(summary.get("saturated_output_fraction"))
    row["runs"].append(str(folder))


def mean_curves(per_seed: Sequence[dict]) -> dict:
    """The accuracy curves and AIA of several runs' metrics, averaged over the runs."""
    return {f"{p}{key}": np.mean([np.array(m[f"{p}{key}"], dtype=float) for m in per_seed],
                                 axis=0).tolist()
            for p in ("", "nme_") for key in ("accuracy_curve", "aia")
            if all(f"{p}{key}" in m for m in per_seed)}


def seed_folder(out: Path, seed: int) -> Path:
    return Path(out) / f"seed{seed}"


def check_seeds_folder(out: Path, seeds: Sequence[int], resume: bool, overwrite: bool) -> None:
    """ConfigError unless `out` may receive these seeds (module docstring)."""
    held = check_output_folder(out, "seeds") and (
        (Path(out) / SUMMARY_FILE).exists()
        or any((seed_folder(out, s) / "config.json").exists() for s in seeds))
    if held and not (resume or overwrite):
        raise ConfigError(f"{out} already holds runs of these seeds; pass --resume to continue "
                          f"them, --overwrite to start over, or choose another --out")


def run_seeds(cfg: RunConfig, seeds: Sequence[int], resume: bool = False,
              overwrite: bool = False,
              progress: Optional[Callable[[int], RunProgress]] = None) -> tuple[dict, dict]:
    """One run of cfg per seed into cfg["out"]/seed<k>/; returns (summary row, mean curves).
    progress(seed) gives the RunProgress of a run (default none)."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds: expected distinct seeds, got {list(seeds)}")
    out = Path(cfg["out"])
    check_seeds_folder(out, seeds, resume, overwrite)
    cfgs = [RunConfig.from_mapping({**cfg, "seed": s, "out": str(seed_folder(out, s))})
            for s in seeds]
    for c in cfgs:                             # every folder is checked before any training
        check_run_folder(Path(c["out"]), resume, overwrite)
    with hold(out, "intsim cil --seeds"):
        check_seeds_folder(out, seeds, resume, overwrite)
        write_marker(out, "seeds")
        row, per_seed = None, []
        for s, c in zip(seeds, cfgs):
            run = CILRun.prepare(c, resume=resume, overwrite=overwrite)
            row = row or new_row(run.numerics.name, seeds)
            t0 = time.perf_counter()
            metrics = run.execute(progress(s) if progress else None)
            add_run(row, run.out, metrics, time.perf_counter() - t0)
            per_seed.append(metrics)
        curves = {row["numerics"]: mean_curves(per_seed)}
        plot_comparison(curves, out / PLOT_FILE,
                        title=f"{dataset_label(cfg['dataset'])} · {cfg['method']}: mean over "
                              f"{len(seeds)} seed(s)")
        atomic_write_text(str(out / SUMMARY_FILE), json.dumps(
            {"epochs": cfg["epochs"], "seeds": list(seeds), "rows": [row]}, indent=2) + "\n")
    return row, curves
