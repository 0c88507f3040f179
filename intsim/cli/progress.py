"""Progress bars (tqdm, on stderr) for the library's progress callbacks.

Bars are drawn only when both stdout and stderr are terminals (so `intsim demo > log` or a CI
log gets no bars, only the results) or in a Jupyter notebook, where tqdm.auto shows its
notebook widget; never with --quiet. Warnings are printed as one line
`intsim COMMAND: warning: …`.
"""
from __future__ import annotations

import sys
from typing import Optional

from tqdm.auto import tqdm
from tqdm.notebook import tqdm_notebook

from intsim.experiments.progress import RunProgress, SweepProgress


def bars_wanted() -> bool:
    """True in a notebook (tqdm.auto chose its widget) or when stdout and stderr are both
    terminals."""
    if issubclass(tqdm, tqdm_notebook):
        return True
    return all(getattr(s, "isatty", lambda: False)() for s in (sys.stdout, sys.stderr))


def _bar(total: int, initial: int, desc: str, quiet: bool, leave: bool = True) -> tqdm:
    return tqdm(total=total, initial=initial, desc=desc, leave=leave, file=sys.stderr,
                dynamic_ncols=True, disable=quiet or not bars_wanted())


class RunBars(RunProgress):
    """A bar over the tasks of a run and one over the epochs of the current stage."""

    def __init__(self, command: str = "cil", quiet: bool = False, label: str = ""):
        self.command, self.quiet, self.label = command, quiet, label
        self.tasks: Optional[tqdm] = None
        self.epochs: Optional[tqdm] = None

    def run_start(self, n_tasks: int, first_task: int) -> None:
        self.tasks = _bar(n_tasks, first_task, f"{self.label} tasks".strip(), self.quiet)

    def stage_start(self, task: int, name: str, epochs: int) -> None:
        self._close_epochs()
        self.epochs = _bar(epochs, 0, f"task {task} {name}", self.quiet, leave=False)

    def epoch_end(self, task: int, epoch: int, mean_loss: float) -> None:
        if self.epochs is not None:
            self.epochs.set_postfix(loss=f"{mean_loss:.4f}")
            self.epochs.update(1)

    def task_end(self, task: int, accuracy: float) -> None:
        self._close_epochs()
        if self.tasks is not None:
            self.tasks.set_postfix(acc=f"{accuracy:.1f}")
            self.tasks.update(1)

    def run_end(self) -> None:
        self._close_epochs()
        if self.tasks is not None:
            self.tasks.close()
            self.tasks = None

    def warning(self, message: str) -> None:
        tqdm.write(f"intsim {self.command}: warning: {message}", file=sys.stderr)

    def _close_epochs(self) -> None:
        if self.epochs is not None:
            self.epochs.close()
            self.epochs = None


class SweepBars(SweepProgress):
    """One line naming where the cells run, a bar over the cells, one line per failed cell."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.bar: Optional[tqdm] = None
        self.failed = 0

    def sweep_start(self, n_cells: int, n_done: int, where: str) -> None:
        if not self.quiet:
            print(f"intsim sweep: {n_cells} cells ({n_done} complete, {n_cells - n_done} to run) "
                  f"on {where}", file=sys.stderr, flush=True)
        self.bar = _bar(n_cells, n_done, "cells", self.quiet)

    def cell_end(self, cell_id: str, row: dict) -> None:
        if row["status"] not in ("ok", "diverged"):
            self.failed += 1
            if self.bar is not None:
                self.bar.set_postfix(failed=self.failed)
            if not self.quiet:
                tqdm.write(f"intsim sweep: cell {cell_id} failed: {row['error']}",
                           file=sys.stderr)
        if self.bar is not None:
            self.bar.update(1)

    def sweep_end(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
