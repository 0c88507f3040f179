"""The overflow report's view of the per-event log (intsim.core.events, `--events N`): which
outputs, output columns and k positions saturate most, per layer and matmul kind.

    event_table(runs)   long table: run, layer, kind, by (output | column | k | tile | event),
                        key, events, rank — the 10 most frequent keys of each
    plot_events(runs)   heat maps of event counts over (k position, output column n), one panel
                        per (run, layer, kind) with the most events (up to 6)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from intsim.core.modes import split_label
from intsim.formats.figures import figure, save_figure

TOP = 10
BY = {"output": ["group", "m", "n"], "column": ["n"], "k": ["k"], "tile": ["tile"],
      "event": ["event"]}
COLUMNS = ["run", "layer", "kind", "by", "key", "events", "rank"]


def _layer_kind(label: str) -> tuple[str, str]:
    layer, kind, _ = split_label(str(label))
    return layer, str(kind) if kind is not None else ""


def event_table(runs: Sequence) -> pd.DataFrame:
    rows = []
    for run in runs:
        ev = getattr(run, "events", None)
        if ev is None or not len(ev):
            continue
        for label, g in ev.groupby("label", sort=False):
            layer, kind = _layer_kind(label)
            for by, cols in BY.items():
                counts = g.groupby(cols).size().sort_values(ascending=False, kind="stable")
                for rank, (key, n) in enumerate(counts.head(TOP).items()):
                    key = key if isinstance(key, tuple) else (key,)
                    rows.append(dict(run=run.name, layer=layer, kind=kind, by=by,
                                     key=",".join(str(k) for k in key), events=int(n),
                                     rank=rank + 1))
    return pd.DataFrame(rows, columns=COLUMNS)


def format_events(table: pd.DataFrame, logged: dict) -> str:
    """Text lines: per (run, layer, kind) the top output, column and k position."""
    if not len(table):
        return ""
    lines = ["", "per-event log (most frequent):"]
    for (run, layer, kind), g in table.groupby(["run", "layer", "kind"], sort=False):
        tops = []
        for by in ("output", "column", "k"):
            t = g[(g["by"] == by) & (g["rank"] == 1)]
            if len(t):
                what = {"output": "output (g,m,n)", "column": "column n", "k": "k"}[by]
                tops.append(f"{what} {t['key'].iloc[0]}: {t['events'].iloc[0]}")
        lines.append(f"  {run} {layer}/{kind}: " + "; ".join(tops))
    for run, (n, total) in logged.items():
        if total > n:
            lines.append(f"  {run}: logged {n} of {total} events (raise --events to log more)")
    return "\n".join(lines)


def plot_events(runs: Sequence, path: str) -> bool:
    """Heat maps of logged events over (k, n); False when no run logged an event."""
    panels = []
    for run in runs:
        ev = getattr(run, "events", None)
        if ev is None or not len(ev):
            continue
        for label, g in ev.groupby("label", sort=False):
            panels.append((len(g), run.name, str(label), g))
    if not panels:
        return False
    panels = sorted(panels, key=lambda p: -p[0])[:6]
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig = figure(5 * cols, 3.8 * rows, dpi=100)
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    for ax, (n, name, label, g) in zip(axes, panels):
        K, N = int(g["k"].max()) + 1, int(g["n"].max()) + 1
        grid = np.zeros((N, K))
        np.add.at(grid, (g["n"].to_numpy(int), g["k"].to_numpy(int)), 1)
        im = ax.imshow(np.log10(1 + grid), aspect="auto", origin="lower", cmap="magma",
                       interpolation="nearest")
        fig.colorbar(im, ax=ax, label="log10(1 + events)")
        ax.set_xlabel("k (reduction index)")
        ax.set_ylabel("output column n")
        ax.set_title(f"{name}: {label} ({n} events)", fontsize=9)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("Logged overflow events over (k, n)")
    fig.tight_layout()
    save_figure(fig, path)
    return True
