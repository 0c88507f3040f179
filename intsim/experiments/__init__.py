"""Experiments: class-incremental runs, the demo, sweeps, and reading their results.

``read_history(DIR)`` gives a run folder's per-epoch history (history.jsonl) as a DataFrame.
"""
from intsim.experiments.history import read_history

__all__ = ["read_history"]
