"""Checks of Scenario's arguments (intsim.datasets.scenario): shapes of the arrays, the closed
vocabularies, and which split rule applies with which of n_test_subjects / test_fraction.
Every bad argument is a ValueError naming it."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

MEMORY_MODES = ("fixed_total", "per_class")
SPLITS = ("auto", "official", "subjects", "samples")
ORDER_RULES = ("seedsequence", "pycil")


def check_arrays(X: Any, y: Any, subject: Any, is_test: Any) -> tuple:
    """X (N, ...), y (N,) non-empty, subject (N,) or None, is_test boolean (N,) or None, as
    arrays; ValueError naming the argument otherwise."""
    X = np.asarray(X)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y: expected a 1-D array of labels, got shape {y.shape}")
    if X.ndim < 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X: expected shape (N, ...) with N = len(y) = {y.shape[0]}, "
                         f"got {X.shape}")
    if y.size == 0:
        raise ValueError("y: the data set is empty")
    N = y.shape[0]
    if subject is not None:
        subject = np.asarray(subject)
        if subject.shape != (N,):
            raise ValueError(f"subject: expected shape ({N},) or None, got {subject.shape}")
    if is_test is not None:
        is_test = np.asarray(is_test)
        if is_test.shape != (N,) or is_test.dtype != np.bool_:
            raise ValueError(f"is_test: expected a boolean array of shape ({N},) or None, "
                             f"got dtype {is_test.dtype}, shape {is_test.shape}")
    return X, y, subject, is_test


def check_choices(memory_mode: str, memory_size: Any, order_rule: str, split: str) -> None:
    """ValueError unless each argument is one of its closed vocabulary (memory_size: int >= 0)."""
    if memory_mode not in MEMORY_MODES:
        raise ValueError(f"memory_mode must be one of {MEMORY_MODES}, got {memory_mode!r}")
    if isinstance(memory_size, bool) or int(memory_size) != memory_size or memory_size < 0:
        raise ValueError(f"memory_size must be a non-negative int, got {memory_size!r}")
    if order_rule not in ORDER_RULES:
        raise ValueError(f"order_rule must be one of {ORDER_RULES}, got {order_rule!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def resolved_split(split: str, subject: Any, is_test: Any, n_test_subjects: Optional[int],
                    test_fraction: Optional[float]) -> str:
    """The split rule ("auto": official if is_test is given, else subjects if subject ids
    are, else samples), checked against the arguments it needs and those it excludes."""
    if split == "auto":
        split = "official" if is_test is not None else (
            "subjects" if subject is not None else "samples")
    if split == "official" and is_test is None:
        raise ValueError("split='official' needs is_test (is_test=None was given)")
    if split == "subjects" and subject is None:
        raise ValueError("split='subjects' needs subject ids (subject=None was given)")
    if n_test_subjects is not None and test_fraction is not None:
        raise ValueError("give either n_test_subjects or test_fraction, not both")
    if split == "official" and (n_test_subjects is not None or test_fraction is not None):
        raise ValueError("the official split (is_test) is used: n_test_subjects and "
                         "test_fraction must be None (pass split='subjects' to split "
                         "by subject instead)")
    if n_test_subjects is not None and split != "subjects":
        raise ValueError("n_test_subjects needs a subject split (subject ids, and "
                         "split='subjects' when is_test is also given)")
    if test_fraction is not None and not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    return split
