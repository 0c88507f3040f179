"""Figures as PNG files: a matplotlib Figure on the Agg canvas (no global backend change),
saved atomically (a complete file or none)."""
from __future__ import annotations

import os

from intsim.formats.atomic import atomic_path


def figure(width: float, height: float, dpi: int = 110):
    """A matplotlib Figure of width × height inches on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg     # heavy: loaded on first use
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: os.PathLike | str) -> None:
    """fig as a PNG file at `path`, written atomically."""
    with atomic_path(os.fspath(path)) as tmp:
        fig.savefig(tmp, format="png")
