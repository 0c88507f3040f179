"""The main job: iCaRL on the real smartwatch data with fp32, int4 and hdqt numerics.

    rows, curves = run_demo("intsim-demo", epochs=100, seeds=[0, 1, 2])

runs one `intsim cil` run per preset and seed into OUT/<preset>-seed<k>/, then writes
OUT/comparison.png (mean accuracy after each task per preset) and OUT/summary.json (the rows).

OUT follows the output-folder policy of intsim cil (intsim.experiments.outputs): it must be
new, empty or an intsim demo folder; one that already holds a demo is replaced only with
overwrite=True (each run folder then loses only intsim's own files), and a folder intsim did
not make is refused. The demo holds OUT's lock while it runs.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from intsim.experiments.cil_run import CILRun
from intsim.experiments.config import ConfigError, resolve_config
from intsim.experiments.outputs import check_output_folder
from intsim.experiments.plots import plot_comparison
from intsim.experiments.progress import RunProgress
from intsim.experiments.records import mean_std
from intsim.experiments.seeds import COLUMNS, add_run, mean_curves, new_row
from intsim.formats.atomic import atomic_write_text
from intsim.formats.ownership import hold, write_marker

PRESETS = ("fp32", "int4", "hdqt")
EPOCHS = 100        # the paper's HAR setting
SEEDS = 3


def check_demo_folder(out: Path, overwrite: bool) -> None:
    """ConfigError unless `out` may receive a demo (module docstring)."""
    if check_output_folder(out, "demo") and not overwrite:
        raise ConfigError(f"{out} already holds a demo; pass --overwrite to replace it, or "
                          f"choose another --out")


def run_demo(out: Path, epochs: int, seeds: Sequence[int],
             progress: Optional[Callable[[str, int], RunProgress]] = None,
             overwrite: bool = False) -> tuple[list[dict], dict]:
    """Every (preset, seed) run; returns (rows, curves): one row per preset with per-seed
    metrics, event rates and seconds, and the mean accuracy curves per preset.

    progress(preset, seed) gives the RunProgress of one run (default: none); overwrite
    replaces an earlier demo in `out` (module docstring)."""
    out = Path(out)
    check_demo_folder(out, overwrite)
    with hold(out, "intsim demo"):
        check_demo_folder(out, overwrite)
        write_marker(out, "demo")
        return _run_all(out, epochs, seeds, progress)


def _run_all(out: Path, epochs: int, seeds: Sequence[int], progress) -> tuple[list[dict], dict]:
    rows, curves = [], {}
    for name in PRESETS:
        row, per_seed = new_row(name, seeds), []
        for seed in seeds:
            folder = out / f"{name}-seed{seed}"
            cfg = resolve_config({"dataset": "watch", "method": "icarl", "numerics": name,
                                  "seed": seed, "epochs": epochs, "out": str(folder)})
            run = CILRun.prepare(cfg, overwrite=True)
            t0 = time.perf_counter()
            metrics = run.execute(progress(name, seed) if progress else None)
            add_run(row, folder, metrics, time.perf_counter() - t0)
            per_seed.append(metrics)
        rows.append(row)
        curves[name] = mean_curves(per_seed)
    plot_comparison(curves, out / "comparison.png",
                    title=f"iCaRL on watch: mean over {len(seeds)} seed(s), {epochs} "
                          f"epoch(s)/task")
    atomic_write_text(str(out / "summary.json"),
                      json.dumps({"epochs": epochs, "seeds": list(seeds), "rows": rows},
                                 indent=2) + "\n")
    return rows, curves


def demo_table(rows: list[dict]) -> str:
    """The comparison table of summary rows (the demo's, intsim cil --seeds'): per row
    (numerics), mean ± std over seeds (sample std)."""
    head = ["numerics", *(c for c, _ in COLUMNS), "sat.events/op", "sat.outputs", "time s"]
    body = []
    for r in rows:
        ev = [x for x in r["event_rate"] if x is not None]
        so = [x for x in r["saturated_output_fraction"] if x is not None]
        body.append([r["numerics"], *(mean_std(r[k]) for _, k in COLUMNS),
                     f"{np.mean(ev):.2e}" if ev else "—",
                     f"{100 * np.mean(so):.2f}%" if so else "—",
                     f"{np.sum(r['seconds']):.0f}"])
    widths = [max(len(str(x[i])) for x in [head] + body) for i in range(len(head))]

    def line(cells):
        return " | ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}"
                          for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(head), "-" * len(line(head))] + [line(b) for b in body])
