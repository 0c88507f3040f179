"""The per-epoch history of a run: history.jsonl in the run folder, one row per epoch.

    from intsim.experiments import read_history
    df = read_history("runs/watch-icarl")          # a pandas DataFrame, one row per epoch
    df[df.stage == "train"].groupby("task").loss.last()

Columns (JSON Lines, intsim.formats.jsonl; pandas: read_history or
``pd.read_json(path, lines=True)``):

    task            task index t (0-based)
    stage           "train", or BiC's "bias_correction"
    epoch           epoch of the stage (0-based)
    steps           global optimizer step counter after the epoch (as intsim.fit's History;
                    bias correction: unchanged)
    loss            mean training loss over the epoch's mini-batches (the optimised total)
    loss_<term>     mean of each term of the method's loss, unweighted (loss_ce, loss_kd,
                    loss_bce, loss_aux_ce; which ones depends on the method and the task)
    train_accuracy  % of correct argmax predictions over the epoch's training batches, in
                    training mode (null for bias correction)
    lr              learning rate of the epoch
    events          accumulator saturation/wrap events in the epoch's traced steps (every
                    trace_every-th step; null for fp32 or with tracing off)
    traced_macs     multiply-accumulates of those traced steps (events / traced_macs is the
                    event rate of the epoch)
    seconds         wall-clock seconds of the epoch

Rows are appended (flushed and fsynced) after every epoch. A resumed run first drops the rows
of the tasks after its checkpoint (the killed task's epochs are trained again), atomically, so
the history of a resumed run has the rows of an uninterrupted one (the seconds differ).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

from intsim.formats.jsonl import append_row, read_rows, rewrite_rows

HISTORY_FILE = "history.jsonl"


class HistoryLog:
    """Writes history.jsonl of one run (module docstring)."""

    def __init__(self, path: os.PathLike | str):
        self.path = Path(path)
        self.stage = "train"
        self._t0 = time.perf_counter()

    def start(self, first_task: int) -> None:
        """Keep only the rows of the tasks before `first_task` (0: a fresh, empty history)."""
        rows = [r for r in read_rows(self.path) if int(r.get("task", -1)) < first_task] \
            if first_task else []
        rewrite_rows(self.path, rows)

    def stage_start(self, name: str) -> None:
        self.stage, self._t0 = name, time.perf_counter()

    def epoch_end(self, learner, task: int, epoch: int, mean_loss: float,
                  events: Optional[int], macs: Optional[int]) -> dict:
        """Append the row of the epoch just finished; returns it."""
        stats = getattr(learner, "epoch_stats", {}) or {}
        now = time.perf_counter()
        row = {"task": task, "stage": self.stage, "epoch": epoch,
               "steps": int(getattr(learner, "step", 0)), "loss": mean_loss,
               **{f"loss_{k}": v for k, v in stats.get("loss_terms", {}).items()},
               "train_accuracy": stats.get("train_accuracy"), "lr": stats.get("lr"),
               "events": events, "traced_macs": macs, "seconds": now - self._t0}
        self._t0 = now
        append_row(self.path, row)
        return row


def read_history(folder: os.PathLike | str):
    """history.jsonl of run folder `folder` as a pandas DataFrame (one row per epoch;
    FileNotFoundError when the folder has none, e.g. a run made before intsim wrote it)."""
    import pandas as pd                     # heavy: loaded when a frame is asked for
    path = Path(folder) / HISTORY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {HISTORY_FILE} in {folder} (is it an intsim run folder?)")
    return pd.DataFrame(read_rows(path))
