"""Plots of class-incremental runs (matplotlib, Agg canvas; no global backend change).

plot_run(metrics, path)          accuracy A_t after each task for every classifier (CNN, NME),
                                 and the accuracy matrix a[t, j] as a heat map per classifier
plot_comparison(runs, path)      A_t curves of several runs (e.g. numerics presets) in one axis
plot_history(rows, path)         training loss (and its terms) and train accuracy per epoch

`metrics` is the dict written to metrics.json (intsim.experiments.records.compute_metrics): keys
accuracy_curve / acc_matrix for the CNN classifier and nme_accuracy_curve / nme_acc_matrix when
the method has NME; null entries (NaN) are left blank.
"""
from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from intsim.formats.figures import figure, save_figure


def _arr(v) -> np.ndarray:
    """JSON list (null = NaN) -> float array."""
    return np.array(v if v is not None else [], dtype=float)


_CLASSIFIERS = (("cnn", "", "CNN (argmax logits)"), ("nme", "nme_", "NME (nearest mean)"))


def _heatmap(ax, m: np.ndarray, title: str) -> None:
    T = m.shape[0]
    im = ax.imshow(np.ma.masked_invalid(m), vmin=0, vmax=100, cmap="viridis", origin="upper")
    for t in range(T):
        for j in range(T):
            if np.isfinite(m[t, j]) and T <= 12:
                ax.text(j, t, f"{m[t, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if m[t, j] < 60 else "black")
    ax.set_xticks(range(T))
    ax.set_yticks(range(T))
    ax.set_xlabel("test task j")
    ax.set_ylabel("after training task t")
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="accuracy (%)")


def plot_run(metrics: Mapping, path: os.PathLike | str, title: str = "") -> None:
    """Accuracy per task (all classifiers) + accuracy-matrix heat map(s), saved to `path`."""
    present = [c for c in _CLASSIFIERS if f"{c[1]}accuracy_curve" in metrics]
    fig = figure(4.2 * (1 + len(present)), 3.8)
    axes = fig.subplots(1, 1 + len(present))
    ax = axes[0]
    for _, p, label in present:
        A = _arr(metrics[f"{p}accuracy_curve"])
        aia = metrics.get(f"{p}aia")
        lab = f"{label}, AIA {aia:.1f}" if isinstance(aia, (int, float)) else label
        ax.plot(np.arange(1, len(A) + 1), A, marker="o", label=lab)
        ax.set_xticks(np.arange(1, len(A) + 1))
    _task_axes(ax)
    ax.set_title("accuracy after each task", fontsize=9)
    for ax, (_, p, label) in zip(axes[1:], present):
        _heatmap(ax, _arr(metrics[f"{p}acc_matrix"]), f"accuracy matrix, {label}")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def _task_axes(ax) -> None:
    """Axes of an accuracy-per-task plot: tasks learned vs accuracy on all seen classes."""
    ax.set_xlabel("tasks learned")
    ax.set_ylabel("accuracy on all seen classes (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")


def plot_comparison(runs: Mapping[str, Mapping], path: os.PathLike | str, title: str = "",
                    classifiers=("cnn", "nme")) -> None:
    """A_t of several runs ({label: metrics}); CNN solid, NME dashed."""
    fig = figure(6.4, 4.2)
    ax = fig.subplots()
    colors = [f"C{i}" for i in range(10)]
    for i, (name, m) in enumerate(runs.items()):
        for cname, p, _ in _CLASSIFIERS:
            if cname not in classifiers or f"{p}accuracy_curve" not in m:
                continue
            A = _arr(m[f"{p}accuracy_curve"])
            aia = m.get(f"{p}aia")
            lab = f"{name} {cname.upper()}" + (f" (AIA {aia:.1f})" if isinstance(aia, (int, float))
                                                else "")
            ax.plot(np.arange(1, len(A) + 1), A, marker="o", color=colors[i % 10],
                    linestyle="-" if cname == "cnn" else "--", label=lab)
            ax.set_xticks(np.arange(1, len(A) + 1))
    _task_axes(ax)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def plot_history(rows, path: os.PathLike | str, title: str = "") -> None:
    """Training loss (total and terms) and train accuracy per epoch of a run's history rows
    (intsim.experiments.history), the epochs of all tasks in a row, dotted lines between
    tasks; bias-correction epochs are left out."""
    rows = [r for r in rows if r.get("stage") == "train"]
    x = np.arange(1, len(rows) + 1)
    fig = figure(9.6, 3.6)
    ax_loss, ax_acc = fig.subplots(1, 2)
    terms = sorted({k for r in rows for k in r if k.startswith("loss_")})
    ax_loss.plot(x, _arr([r.get("loss") for r in rows]), label="loss (total)", color="k")
    for k in terms:
        ax_loss.plot(x, _arr([r.get(k) for r in rows]), label=k[5:], linewidth=0.9)
    ax_acc.plot(x, _arr([r.get("train_accuracy") for r in rows]), color="C2")
    starts = [i for i in range(1, len(rows)) if rows[i]["task"] != rows[i - 1]["task"]]
    for ax in (ax_loss, ax_acc):
        for i in starts:
            ax.axvline(i + 0.5, color="0.6", linestyle=":", linewidth=0.8)
        ax.set_xlabel("epoch (all tasks in a row)")
        ax.grid(alpha=0.3)
    ax_loss.set_ylabel("mean training loss")
    ax_loss.legend(fontsize=7)
    ax_acc.set_ylabel("train accuracy (%)")
    ax_acc.set_ylim(0, 100)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
