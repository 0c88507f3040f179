"""How long-running library code reports progress: callback objects, never printing.

intsim.cli implements these with progress bars on a terminal; a notebook or a tracker can
implement them too. Warnings that a user must see go through `warning`, whose default is
Python's warnings module.
"""
from __future__ import annotations

import warnings


class RunProgress:
    """Events of one class-incremental run (all optional)."""

    def run_start(self, n_tasks: int, first_task: int) -> None:
        """Training starts at `first_task` (> 0 when resuming) of n_tasks."""

    def stage_start(self, task: int, name: str, epochs: int) -> None:
        """A training stage of a task starts ("train", "bias_correction")."""

    def epoch_end(self, task: int, epoch: int, mean_loss: float) -> None:
        """An epoch of the current stage ended."""

    def task_end(self, task: int, accuracy: float) -> None:
        """Task `task` is trained, evaluated and checkpointed (accuracy in percent)."""

    def run_end(self) -> None:
        """Training ended (normally or not)."""

    def warning(self, message: str) -> None:
        """Something the user must know about; the run goes on."""
        warnings.warn(message, stacklevel=2)


class SweepProgress:
    """Events of a sweep (all optional)."""

    def sweep_start(self, n_cells: int, n_done: int, where: str) -> None:
        """n_cells cells, n_done of them already complete, run on `where`."""

    def cell_end(self, cell_id: str, row: dict) -> None:
        """A cell finished (row["status"]: "ok", "error", …)."""

    def sweep_end(self) -> None:
        """No more cells will run."""
