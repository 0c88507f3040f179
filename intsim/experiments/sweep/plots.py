"""The sweep's plots: accuracy against a swept numerics knob, accuracy after each task, and
accuracy against energy with the Pareto front."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import pandas as pd

from intsim.experiments.sweep.tables import config_label
from intsim.formats.figures import figure, save_figure


def _num(v) -> Optional[float]:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def plot_vs_knob(summary, knob: str, path: Union[str, os.PathLike],
                 metrics: Sequence[str] = ("last", "aia")) -> bool:
    """Accuracy (mean ± std over seeds) vs a numerics knob: one panel per data set × method and
    metric, one line per other configuration, float numerics as dashed horizontal lines.
    Returns False (no file) when the knob has fewer than two numeric values."""
    if knob not in summary.columns:
        return False
    xs = sorted({x for x in (_num(v) for v in summary[knob]) if x is not None})
    if len(xs) < 2:
        return False
    fields = list(summary.columns[1:summary.columns.get_loc("n_seeds")])
    others = [c for c in fields if c not in ("dataset", "method", knob)]
    pairs = list(dict.fromkeys(zip(summary["dataset"], summary["method"])))
    fig = figure(4.6 * len(metrics), 3.4 * len(pairs))
    axes = np.atleast_2d(fig.subplots(len(pairs), len(metrics), squeeze=False))
    for i, (ds, me) in enumerate(pairs):
        sub = summary[(summary["dataset"] == ds) & (summary["method"] == me)]
        flat = sub[sub[knob].isna()]
        quant = sub[sub[knob].notna()]
        for j, m in enumerate(metrics):
            ax = axes[i, j]
            color = 0
            for key, g in (quant.groupby(others, sort=False, dropna=False) if others
                           else [((), quant)]):
                g = g.assign(_x=[_num(v) for v in g[knob]]).dropna(subset=["_x", f"{m}_mean"])
                g = g.sort_values("_x")
                if g.empty:
                    continue
                lab = config_label(g.iloc[0], [c for c in fields if c != knob])
                ax.errorbar(g["_x"], g[f"{m}_mean"], yerr=g[f"{m}_std"].fillna(0.0),
                            marker="o", capsize=3, color=f"C{color % 10}", label=lab)
                color += 1
            for _, r in flat.iterrows():
                mean, sd = r[f"{m}_mean"], r[f"{m}_std"]
                if pd.isna(mean):
                    continue
                c = f"C{color % 10}"
                color += 1
                ax.axhline(mean, color=c, linestyle="--",
                           label=f"{config_label(r, fields)} (float)")
                if not pd.isna(sd):
                    ax.axhspan(mean - sd, mean + sd, color=c, alpha=0.12)
            if knob == "tile":
                ax.set_xscale("log", base=2)
            ax.set_xticks(xs)
            ax.set_xticklabels([f"{x:g}" for x in xs])
            ax.set_xlabel(knob.replace("_", " "))
            ax.set_ylabel(f"{'last-task accuracy' if m == 'last' else m.upper()} (%)")
            ax.set_ylim(0, 100)
            ax.grid(alpha=0.3)
            ax.set_title(f"{ds} · {me}", fontsize=9)
            ax.legend(fontsize=6, loc="lower right")
    fig.suptitle(f"accuracy vs {knob.replace('_', ' ')} (mean ± std over seeds)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    return True


#: the classifiers of per_task.png: (results column of the per-task curve, panel title)
PER_TASK = (("accuracy_curve_json", "CNN classifier"),
            ("nme_accuracy_curve_json", "NME (nearest mean of exemplars)"))


def plot_per_task(summary, results, path: Union[str, os.PathLike], max_lines: int = 12) -> bool:
    """Accuracy after each task, mean ± std over seeds, one line per configuration (FP32
    dashed vs the quantized ones), one row of panels per data set × method: the CNN
    classifier, and next to it NME (iCaRL's headline number) when some cell has it."""
    ok = results[(results["status"] == "ok") & results["accuracy_curve_json"].notna()]
    if ok.empty:
        return False
    cols = [(c, name) for c, name in PER_TASK if c in ok and ok[c].notna().any()]
    fields = list(summary.columns[1:summary.columns.get_loc("n_seeds")])
    pairs = list(dict.fromkeys(zip(summary["dataset"], summary["method"])))
    fig = figure(6.0 * len(cols), 3.8 * len(pairs))
    axes = fig.subplots(len(pairs), len(cols), squeeze=False)
    for row, (ds, me) in zip(axes, pairs):
        sub = summary[(summary["dataset"] == ds) & (summary["method"] == me)].head(max_lines)
        for ax, (col, name) in zip(row, cols):
            _per_task_panel(ax, sub, ok, col, fields)
            ax.set_title(f"{ds} · {me} · {name}: accuracy after each task (mean ± std over "
                         f"seeds)", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def _per_task_panel(ax, sub, ok, col: str, fields) -> None:
    """The per-task curves of column `col` of every configuration (row) of `sub`."""
    for k, (_, r) in enumerate(sub.iterrows()):
        curves = [json.loads(x) for x in ok[ok["group"] == r["group"]][col].dropna()]
        if not curves or len({len(c) for c in curves}) != 1:
            continue
        a = np.array([[np.nan if v is None else v for v in c] for c in curves], float)
        t = np.arange(1, a.shape[1] + 1)
        mean = np.nanmean(a, axis=0)
        quant = r["numerics"] != "fp32" and "fp32" not in str(r["numerics"])
        ax.plot(t, mean, marker="o", color=f"C{k % 10}", linestyle="-" if quant else "--",
                label=f"{config_label(r, fields)} (n={len(curves)})")
        if len(curves) > 1:
            sd = np.nanstd(a, axis=0, ddof=1)
            ax.fill_between(t, mean - sd, mean + sd, color=f"C{k % 10}", alpha=0.12)
        ax.set_xticks(t)
    ax.set_xlabel("tasks learned")
    ax.set_ylabel("accuracy on all seen classes (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="lower left")


def pareto_front(energy: Sequence[float], accuracy: Sequence[float]) -> list[bool]:
    """Which points are Pareto-optimal when energy is minimised and accuracy maximised: no
    other point has energy <= and accuracy >= with one of them strictly better."""
    pts = list(zip(energy, accuracy))
    return [not any((e2 <= e and a2 >= a) and (e2 < e or a2 > a) for e2, a2 in pts)
            for e, a in pts]


ENERGY_AXES = (("energy_rel_fp32", "energy of the run relative to fp32"),
               ("energy_compute_rel_fp32", "compute energy of the run relative to fp32"))


def plot_acc_vs_energy(summary, path: Union[str, os.PathLike],
                       metrics: Sequence[str] = ("last", "aia")) -> bool:
    """Accuracy (mean ± std over seeds) against the run's energy relative to the same run in
    fp32 (cost.json: all of it, and compute alone) for every configuration; one row of panels
    per data set × method, the Pareto front (least energy for the accuracy) drawn as a line
    and ringed. Returns False (no file) with fewer than two configurations that have both."""
    axes_cols = [(c, t) for c, t in ENERGY_AXES if f"{c}_mean" in summary.columns]
    if not axes_cols:
        return False
    have = summary.dropna(subset=[f"{axes_cols[0][0]}_mean"])
    if len(have) < 2:
        return False
    fields = list(summary.columns[1:summary.columns.get_loc("n_seeds")])
    pairs = list(dict.fromkeys(zip(have["dataset"], have["method"])))
    panels = [(m, c, t) for m in metrics for c, t in axes_cols]
    fig = figure(4.4 * len(panels) + 2.2, 3.8 * len(pairs))
    axes = np.atleast_2d(fig.subplots(len(pairs), len(panels), squeeze=False))
    for i, (ds, me) in enumerate(pairs):
        sub = have[(have["dataset"] == ds) & (have["method"] == me)]
        for j, (m, col, title) in enumerate(panels):
            _energy_panel(axes[i, j], sub.dropna(subset=[f"{m}_mean", f"{col}_mean"]), m,
                          f"{col}_mean", fields, legend=j == len(panels) - 1)
            axes[i, j].set_xlabel(title)
            axes[i, j].set_title(f"{ds} · {me}", fontsize=9)
    fig.suptitle("accuracy vs energy (mean ± std over seeds; energies from each run's "
                 "cost.json)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    return True


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


def _energy_panel(ax, g, m: str, col: str, fields, legend: bool) -> None:
    """One panel: a marker per configuration (colour by numerics, shape by the other fields),
    the Pareto front as a step line, its points ringed and named."""
    x, y = g[col].to_numpy(float), g[f"{m}_mean"].to_numpy(float)
    front = np.array(pareto_front(x, y), bool)
    colours = {v: f"C{i % 10}" for i, v in enumerate(dict.fromkeys(g["numerics"]))}
    shapes: dict = {}
    for k, (_, r) in enumerate(g.iterrows()):
        rest = config_label(r, fields).partition(" ")[2]
        shape = shapes.setdefault(rest, MARKERS[len(shapes) % len(MARKERS)])
        ax.errorbar(x[k], y[k], yerr=0.0 if pd.isna(r[f"{m}_std"]) else r[f"{m}_std"],
                    marker=shape, capsize=3, color=colours[r["numerics"]], linestyle="none",
                    label=config_label(r, fields))
        if front[k]:
            ax.annotate(config_label(r, fields), (x[k], y[k]), textcoords="offset points",
                        xytext=(6, -10), fontsize=6)
    if front.any():
        order = np.argsort(x[front])
        ax.plot(x[front][order], y[front][order], color="k", linewidth=1, zorder=0,
                drawstyle="steps-post", label="Pareto front")
        ax.scatter(x[front], y[front], s=140, facecolors="none", edgecolors="k")
    if len(x) and x.min() > 0 and x.max() / x.min() > 10:
        ax.set_xscale("log")
    ax.set_ylabel(f"{'last-task accuracy' if m == 'last' else m.upper()} (%)")
    ax.grid(alpha=0.3, which="both")
    if legend:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))


def sweep_plots(results, summary, out: Union[str, os.PathLike]) -> list[Path]:
    """acc_vs_<knob>.png for acc_bits / operand_bits / tile (when swept), per_task.png and
    acc_vs_energy.png (with the Pareto front)."""
    out = Path(out)
    written = []
    if summary.empty:
        return written
    for knob in ("acc_bits", "operand_bits", "tile"):
        p = out / f"acc_vs_{knob}.png"
        if plot_vs_knob(summary, knob, p):
            written.append(p)
    p = out / "per_task.png"
    if plot_per_task(summary, results, p):
        written.append(p)
    p = out / "acc_vs_energy.png"
    if plot_acc_vs_energy(summary, p):
        written.append(p)
    return written
