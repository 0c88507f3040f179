"""The overflow report's figure: three rows × the three products (fwd, grad_in, grad_w)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from intsim.core.modes import MatmulKind
from intsim.formats.figures import figure, save_figure

if TYPE_CHECKING:
    from intsim.hw.overflow import RunData

KINDS = MatmulKind.values()


def _legend(ax, **kw) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kw)


def plot_report(runs: Sequence["RunData"], summaries, steps, hists, path: str) -> None:
    """Three rows × (fwd, grad_in, grad_w): log2 histograms of tile sums (runs overlaid),
    the fraction of outputs hit by an event over training, and observed vs worst-case
    accumulator width per layer (dashed lines: the configured width)."""
    fig = figure(15, 11, dpi=100)
    axes = fig.subplots(3, 3)
    colors = ["C0", "C3", "C2", "C1", "C4", "C5", "C6", "C7"]
    names = [r.name for r in runs]
    for c, kind in enumerate(KINDS):
        ax = axes[0, c]
        acc_bits = set()
        for i, name in enumerate(names):
            h = hists[(hists["run"] == name) & (hists["kind"] == kind)]
            s = summaries[(summaries["run"] == name) & (summaries["kind"] == kind)]
            acc_bits |= set(int(b) for b in s["acc_bits"])
            if not len(h):
                continue
            tot = h.groupby("bin")["count"].sum()
            x = np.arange(0, max(int(tot.index.max()) + 2, 12))
            y = np.array([tot.get(j, 0) for j in x], float)
            ax.step(x, y / y.sum(), where="mid", color=colors[i % len(colors)], label=name)
        for b in sorted(acc_bits):
            ax.axvline(b - 0.5, color="k", ls="--", lw=0.8)
            ax.text(b - 0.4, 0.95, f"> {b}-bit acc", transform=ax.get_xaxis_transform(),
                    fontsize=7, va="top")
        ax.set_yscale("log")
        ax.set_title(f"{kind}: tile partial sums (all layers)")
        ax.set_xlabel("bit length of |tile sum|")
        ax.set_ylabel("fraction of tile sums")
        _legend(ax, fontsize=7)

        ax = axes[1, c]
        for i, name in enumerate(names):
            st = steps[(steps["run"] == name) & (steps["kind"] == kind)]
            if not len(st):
                continue
            agg = st.groupby("step")["saturated_output_fraction"].mean()
            ax.plot(agg.index, 100 * agg.to_numpy(), color=colors[i % len(colors)], lw=1,
                    label=name)
        ax.set_title(f"{kind}: outputs hit by an event (mean over layers)")
        ax.set_xlabel("training step")
        ax.set_ylabel("% of outputs with ≥ 1 event")
        _legend(ax, fontsize=7)

        ax = axes[2, c]
        layers = []
        for name in names:
            for lay in summaries[(summaries["run"] == name) & (summaries["kind"] == kind)][
                    "layer"]:
                if lay not in layers:
                    layers.append(lay)
        width = 0.8 / max(1, len(names))
        for i, name in enumerate(names):
            s = summaries[(summaries["run"] == name) & (summaries["kind"] == kind)].set_index(
                "layer")
            xs = np.arange(len(layers)) + (i - (len(names) - 1) / 2) * width
            obs = [s.loc[lay, "min_acc_bits"] if lay in s.index else np.nan for lay in layers]
            bnd = [s.loc[lay, "bound_acc_bits"] if lay in s.index else np.nan for lay in layers]
            ax.bar(xs, obs, width, color=colors[i % len(colors)], alpha=0.8,
                   label=f"{name}: needed (observed)")
            ax.scatter(xs, bnd, marker="_", s=200, color=colors[i % len(colors)],
                       label=f"{name}: A2Q worst case")
        for b in sorted(acc_bits):
            ax.axhline(b, color="k", ls="--", lw=0.8)
        ax.set_xticks(np.arange(len(layers)))
        ax.set_xticklabels(layers, rotation=20, fontsize=7)
        ax.set_ylabel("accumulator bits")
        ax.set_title(f"{kind}: bits needed (bars) vs A2Q bound (—)")
        if c == 0:
            _legend(ax, fontsize=6, loc="lower left")
    fig.suptitle("Accumulator overflow report: " + " vs ".join(names))
    fig.tight_layout()
    save_figure(fig, path)
