"""Class-incremental scenario: data split, seeded class order, tasks, memory budget, seeds.

A scenario = data set + class order + first-task size + increment (README, "Class-incremental learning").  This module
is pure NumPy and knows nothing about networks.

Seeds
-----
One master seed derives every other seed by name (:func:`derive_seed`)::

    derive_seed(master, name) =
        SeedSequence(entropy=master, spawn_key=(h(name),)).generate_state(1, uint64)[0] >> 1
    h(name) = int.from_bytes(sha256(name.encode("utf-8")).digest()[:8], "little")

``h`` is a fixed cryptographic hash, not Python's per-process randomised ``hash()``, so
the result is the same in every process, on every platform and NumPy version that keeps
SeedSequence's documented algorithm.  The result is shifted right by one bit so that it
fits a signed 64-bit integer (NumPy int64 arrays, JSON readers, numba).  Different names
give statistically independent streams; hierarchical names such as ``"shuffle/3"`` are
just names.

Names recorded in ``Scenario.seeds`` (for config.json): ``class_order`` (when the order is
drawn with the default rule), ``subject_split`` or ``sample_split`` (whichever split ran),
and always ``init``, ``shuffle``, ``sr``, ``exemplar``, ``bic_val``.  Consumers that need
a per-task or per-layer stream call ``scenario.seed_for("shuffle/3")``, which derives it
and records it too.

Splits
------
``split="auto"`` (default) picks the first that applies; ``split=`` forces one.

* ``is_test`` given (an official split, e.g. CIFAR-100, or the ``split`` column / array of your
  own data, see :mod:`intsim.datasets.byo`): used as is ("official").
* else ``subject`` given ("subjects"): a seeded random split of the *subjects* (sorted
  unique ids are permuted with ``default_rng(seeds["subject_split"])``; the first
  ``n_test`` are test).
  ``n_test_subjects`` fixes the count; otherwise ``test_fraction`` (default 0.2) gives
  ``n_test = max(1, floor(test_fraction · n_subjects))`` — this reproduces the paper's
  7/1 (DSADS, 8 subjects), 5/1 (PAMAP2, 6) and 23/5 (HAPT, 28).  At least one subject
  stays on each side.
* else ("samples"): a seeded per-class (stratified) split of the samples with
  ``test_fraction`` (``floor(test_fraction · n_c)`` test samples per class, at least 1 and
  at most n_c - 1 when n_c >= 2).

Feature scaling: pass ``preprocess(X_train, X_test) -> (X_train, X_test)``; it is called once
with the full training and test splits and must fit on ``X_train`` only, e.g. with
``intsim.datasets.scaling``: ``lambda a, b: (lambda s: (s.transform(a), s.transform(b)))
(fit_minmax(a))``.  It sees the training data of all tasks at once (not only the
current task's), never the test split.

Label remapping: labels become their position in the class order (0..C-1).  Every class
must have training samples; a class without test samples is allowed (recorded in
``describe()["classes_without_test"]``; its metrics are NaN).
"""
from __future__ import annotations

import hashlib
import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from intsim.datasets.args import check_int
from intsim.datasets.scenario_args import (MEMORY_MODES, ORDER_RULES, SPLITS, check_arrays,
                                           check_choices, resolved_split)

__all__ = [
    "derive_seed",
    "task_sizes",
    "Scenario",
    "bic_validation_split",
    "MEMORY_MODES",
    "SPLITS",
    "ORDER_RULES",
    "STANDARD_SEED_NAMES",
]

STANDARD_SEED_NAMES = ("init", "shuffle", "sr", "exemplar", "bic_val")  # always recorded

Preprocess = Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------- seeds
def _name_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def derive_seed(master: int, name: str) -> int:
    """Derive a named child seed from the master seed, stable across processes.

    ``SeedSequence(entropy=master, spawn_key=(sha256(name)[:8] as little-endian int,))``
    → first uint64 of ``generate_state`` → shifted right by 1 (result in [0, 2**63)).
    Use it as ``np.random.default_rng(derive_seed(master, "shuffle"))``.

    Raises:
        ValueError: ``master`` is not a non-negative int, or ``name`` is not a non-empty str.
    """
    if isinstance(master, (bool, np.bool_)) or not isinstance(master, (int, np.integer)) \
            or int(master) < 0:
        raise ValueError(f"derive_seed: master must be a non-negative int, got {master!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"derive_seed: name must be a non-empty str, got {name!r}")
    ss = np.random.SeedSequence(entropy=int(master), spawn_key=(_name_key(name),))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


# --------------------------------------------------------------------------- tasks
def task_sizes(n_classes: int, init_cls: int, increment: int) -> List[int]:
    """Classes per task: ``[init_cls, increment, ..., increment, remainder]``.

    ``n_tasks = 1 + ceil((n_classes - init_cls) / increment)``; the last task holds the
    remainder when the classes do not divide evenly (19 classes, 2/2 → 10 tasks, last 1).
    """
    n_classes, init_cls, increment = int(n_classes), int(init_cls), int(increment)
    if n_classes < 1:
        raise ValueError(f"task_sizes: n_classes must be >= 1, got {n_classes}")
    if not 1 <= init_cls <= n_classes:
        raise ValueError(f"init_cls must be in [1, n_classes={n_classes}], got {init_cls}")
    if increment < 1:
        raise ValueError(f"increment must be >= 1, got {increment}")
    sizes = [init_cls]
    rest = n_classes - init_cls
    while rest > 0:
        sizes.append(min(increment, rest))
        rest -= sizes[-1]
    return sizes


# --------------------------------------------------------------------------- BiC split
def bic_validation_split(X_new: np.ndarray, y_new: np.ndarray,
                         X_mem: Optional[np.ndarray], y_mem: Optional[np.ndarray],
                         n_known: int, memory_size: int, seed: int,
                         val_fraction: float = 0.1, new_rule: str = "balanced",
                         ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """BiC's held-out validation split of (new data ∪ memory) for stage 2.

    Per-class counts (``k_mem = int(val_fraction · memory_size / n_known)``):

    * every memory class: ``min(k_mem, n_c)`` exemplars go to validation;
    * every new class, ``new_rule="balanced"`` (default; the paper's code, which follows
      PyCIL and the BiC paper: a class-balanced validation set): ``min(k_mem, n_c)``;
      ``new_rule="fraction"``: ``int(val_fraction · n_c)`` (10 % of the class's new data).

    Which samples: per class, ``rng.choice(n_c, k, replace=False)`` with
    ``rng = default_rng(seed)``, classes visited in increasing label order, new data first
    then memory.  The remaining samples form the stage-1 training set.  Row order within
    each output follows the class visiting order, then the original order.

    Returns:
        ``(X_train, y_train, X_val, y_val)``.
    """
    if new_rule not in ("balanced", "fraction"):
        raise ValueError(f"bic_validation_split: new_rule must be 'balanced' or 'fraction', "
                         f"got {new_rule!r}")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"bic_validation_split: val_fraction must be in [0, 1), "
                         f"got {val_fraction}")
    if int(n_known) < 1:
        raise ValueError(f"bic_validation_split: n_known must be >= 1 (BiC's split starts "
                         f"at the second task), got {n_known}")
    if int(memory_size) < 0:
        raise ValueError(f"bic_validation_split: memory_size must be >= 0, got {memory_size}")
    X_new = np.asarray(X_new)
    y_new = np.asarray(y_new)
    if y_new.ndim != 1 or X_new.shape[0] != y_new.shape[0]:
        raise ValueError(f"bic_validation_split: X_new rows ({X_new.shape[0]}) must match "
                         f"1-D y_new ({y_new.shape})")
    if (X_mem is None) != (y_mem is None):
        raise ValueError("bic_validation_split: give both X_mem and y_mem, or neither")
    if X_mem is not None:
        X_mem, y_mem = np.asarray(X_mem), np.asarray(y_mem)
        if y_mem.ndim != 1 or X_mem.shape[0] != y_mem.shape[0]:
            raise ValueError(f"bic_validation_split: X_mem rows ({X_mem.shape[0]}) must "
                             f"match 1-D y_mem ({y_mem.shape})")
    k_mem = int(float(val_fraction) * int(memory_size) / int(n_known))
    rng = np.random.default_rng(seed)

    tr_x, tr_y, va_x, va_y = [], [], [], []

    def split(X: np.ndarray, y: np.ndarray, rule: str) -> None:
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            n_c = idx.size
            k = min(k_mem, n_c) if rule == "balanced" else int(float(val_fraction) * n_c)
            pick = np.zeros(n_c, dtype=bool)
            if k:
                pick[rng.choice(n_c, size=k, replace=False)] = True
            va_x.append(X[idx[pick]])
            va_y.append(y[idx[pick]])
            tr_x.append(X[idx[~pick]])
            tr_y.append(y[idx[~pick]])

    split(X_new, y_new, new_rule)
    if X_mem is not None and y_mem.size:
        split(X_mem, y_mem, "balanced")

    def cat(parts: list, like: np.ndarray) -> np.ndarray:
        return np.concatenate(parts) if parts else like[:0]

    return cat(tr_x, X_new), cat(tr_y, y_new), cat(va_x, X_new), cat(va_y, y_new)


# --------------------------------------------------------------------------- scenario
class Scenario:
    """A class-incremental scenario over one data set.

    Args:
        X: samples, shape (N, ...).
        y: original labels, shape (N,) (any sortable values; usually ints).
        subject: subject id per sample, shape (N,), or None.
        is_test: official split (True = test sample), boolean, shape (N,), or None.  Used
            when given (unless ``split`` says otherwise); then ``n_test_subjects`` and
            ``test_fraction`` must be None.
        init_cls: classes in the first task.
        increment: classes per later task (the last task may hold fewer).
        seed: master seed (non-negative int); every other seed derives from it.
        n_test_subjects: number of test subjects (subject split by count).
        test_fraction: fraction of subjects (or of each class's samples when there are no
            subjects) used for test; default 0.2 when neither count nor fraction is given.
        memory_size: exemplar budget.  ``memory_mode="fixed_total"``: total over all seen
            classes (memory_size // n_seen per class); ``"per_class"``: per class.
        memory_mode: ``"fixed_total"`` or ``"per_class"``.
        class_order: explicit class order (a permutation of the labels); default: drawn
            from the seed with ``order_rule``.
        order_rule: ``"seedsequence"`` (default): ``default_rng(seeds["class_order"])
            .permutation(C)`` applied to the sorted labels; ``"pycil"``:
            ``RandomState(seed).permutation(sorted labels)`` — the paper code's rule
            (``np.random.seed(seed); np.random.permutation(order)``), for matching its
            class orders.
        preprocess: optional ``preprocess(X_train, X_test) -> (X_train, X_test)``, called
            once on the full training and test splits; it must fit on ``X_train`` only
            (e.g. the HAR [-1, 1] scaler).
        name: free-form name recorded in ``describe()``.
        split: ``"auto"`` (default: official if ``is_test`` is given, else by subject if
            ``subject`` is given, else stratified by sample), or force ``"official"``,
            ``"subjects"`` (ignores ``is_test``: e.g. HAPT has an official 21/9 split but the
            paper uses a seeded 23/5 subject split) or ``"samples"``.

    Mapped labels are class-order positions; task t holds positions
    ``[task_start(t), task_stop(t))``.
    """

    def __init__(self, X: Any, y: Any, subject: Any = None, is_test: Any = None,
                 init_cls: int = 2, increment: int = 2, seed: int = 0,
                 n_test_subjects: Optional[int] = None,
                 test_fraction: Optional[float] = None,
                 memory_size: int = 200, memory_mode: str = "fixed_total",
                 class_order: Optional[Sequence[Any]] = None,
                 order_rule: str = "seedsequence",
                 preprocess: Optional[Preprocess] = None,
                 name: str = "", split: str = "auto") -> None:
        seed = check_int("Scenario", "seed", seed, minimum=0)
        init_cls = check_int("Scenario", "init_cls", init_cls)
        increment = check_int("Scenario", "increment", increment)
        if n_test_subjects is not None:
            n_test_subjects = check_int("Scenario", "n_test_subjects", n_test_subjects)
        X, y, subject, is_test = check_arrays(X, y, subject, is_test)
        check_choices(memory_mode, memory_size, order_rule, split)
        split = resolved_split(split, subject, is_test, n_test_subjects, test_fraction)

        self.name = str(name)
        self.master_seed = int(seed)
        self.seeds: Dict[str, int] = {}
        derive_seed(self.master_seed, "class_order")  # validates the seed early

        labels = np.unique(y)
        C = labels.size
        order = self._draw_class_order(labels, class_order, order_rule)
        self.class_order: np.ndarray = order
        pos_of_sorted = np.empty(C, dtype=np.int64)
        pos_of_sorted[np.searchsorted(labels, order)] = np.arange(C)
        y_mapped = pos_of_sorted[np.searchsorted(labels, y)]

        self.init_cls = int(init_cls)
        self.increment = int(increment)
        self._sizes = task_sizes(C, self.init_cls, self.increment)
        self._bounds = np.concatenate([[0], np.cumsum(self._sizes)]).astype(np.int64)

        X_train, X_test = self._split_train_test(X, y_mapped, subject, is_test, split,
                                                 n_test_subjects, test_fraction)
        self.preprocessed = preprocess is not None
        if preprocess is not None:
            X_train, X_test = self._preprocessed(preprocess, X_train, X_test)
        self._X_train, self._X_test = X_train, X_test

        self.memory_size = int(memory_size)
        self.memory_mode = memory_mode
        for nm in STANDARD_SEED_NAMES:
            self.seed_for(nm)

    def _draw_class_order(self, labels: np.ndarray, class_order: Optional[Sequence[Any]],
                          order_rule: str) -> np.ndarray:
        """The class order (a permutation of `labels`) and self.order_rule: explicit, or
        drawn from the seed by `order_rule` (class docstring)."""
        C = labels.size
        if class_order is not None:
            order = np.asarray(class_order)
            if order.ndim != 1 or order.size != C or not np.array_equal(np.sort(order), labels):
                raise ValueError(f"class_order: expected a permutation of the {C} labels "
                                 f"{labels.tolist()}, got {np.asarray(class_order).tolist()}")
            self.order_rule = "explicit"
        elif order_rule == "pycil":
            if self.master_seed >= 2**32:
                raise ValueError(f"order_rule='pycil' needs seed < 2**32 (legacy RandomState), "
                                 f"got {self.master_seed}")
            order = np.random.RandomState(self.master_seed).permutation(labels)
            self.order_rule = "pycil"
        else:
            perm = np.random.default_rng(self.seed_for("class_order")).permutation(C)
            order = labels[perm]
            self.order_rule = "seedsequence"
        return order

    def _split_train_test(self, X: np.ndarray, y_mapped: np.ndarray, subject, is_test,
                          split: str, n_test_subjects: Optional[int],
                          test_fraction: Optional[float]) -> tuple[np.ndarray, np.ndarray]:
        """Split by `split` (official / subjects / samples); keeps the labels and subjects of
        both parts and returns (X_train, X_test). Every class needs training samples."""
        C = self.class_order.size
        self.train_subjects: Optional[List[Any]] = None
        self.test_subjects: Optional[List[Any]] = None
        if split == "official":
            test_mask = is_test.copy()
            self.split_mode = "official"
        elif split == "subjects":
            test_mask = self._subject_split(subject, n_test_subjects, test_fraction)
        else:
            test_mask = self._sample_split(y_mapped, 0.2 if test_fraction is None
                                          else float(test_fraction))
        self.test_fraction = test_fraction
        self.n_test_subjects = n_test_subjects

        self._y_train = y_mapped[~test_mask]
        self._y_test = y_mapped[test_mask]
        self._subject_train = None if subject is None else subject[~test_mask]
        self._subject_test = None if subject is None else subject[test_mask]
        missing = np.setdiff1d(np.arange(C), self._y_train)
        if missing.size:
            raise ValueError(f"classes {self.class_order[missing].tolist()} (original labels) "
                             f"have no training samples after the split; choose another "
                             f"split/seed")
        self.classes_without_test = self.class_order[
            np.setdiff1d(np.arange(C), self._y_test)].tolist()
        return X[~test_mask], X[test_mask]

    def _preprocessed(self, preprocess: Preprocess, X_train: np.ndarray,
                      X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """preprocess(X_train, X_test), checked to return two arrays with the same rows (it
        must fit on X_train only, by contract)."""
        out = preprocess(X_train, X_test)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ValueError("preprocess must return a tuple (X_train, X_test)")
        X_train, X_test = np.asarray(out[0]), np.asarray(out[1])
        if X_train.shape[0] != self._y_train.size or X_test.shape[0] != self._y_test.size:
            raise ValueError(f"preprocess must keep the number of rows: expected "
                             f"({self._y_train.size}, {self._y_test.size}), got "
                             f"({X_train.shape[0]}, {X_test.shape[0]})")
        return X_train, X_test

    @classmethod
    def from_dataset(cls, ds: Any, **kwargs: Any) -> "Scenario":
        """Build from any object with ``X``, ``y``, ``subject``, ``is_test`` and ``name``
        attributes (e.g. ``intsim.datasets`` loaders' Dataset); ``kwargs`` go to ``__init__``."""
        kwargs.setdefault("name", getattr(ds, "name", ""))
        return cls(ds.X, ds.y, subject=getattr(ds, "subject", None),
                   is_test=getattr(ds, "is_test", None), **kwargs)

    # ---------------------------------------------------------------- split helpers
    def _subject_split(self, subject: np.ndarray, n_test: Optional[int],
                       fraction: Optional[float]) -> np.ndarray:
        subjects = np.unique(subject)
        S = subjects.size
        if S < 2:
            raise ValueError(f"subject: a subject split needs >= 2 subjects, got {S}")
        if n_test is None:
            frac = 0.2 if fraction is None else float(fraction)
            n_test = max(1, math.floor(frac * S + 1e-9))
            self.split_mode = f"subjects_fraction({frac})"
        else:
            self.split_mode = "subjects_count"
        n_test = int(n_test)
        if not 1 <= n_test <= S - 1:
            raise ValueError(f"n_test_subjects must be in [1, {S - 1}] for {S} subjects, "
                             f"got {n_test}")
        rng = np.random.default_rng(self.seed_for("subject_split"))
        perm = rng.permutation(S)
        test_s = np.sort(subjects[perm[:n_test]])
        self.test_subjects = test_s.tolist()
        self.train_subjects = np.sort(subjects[perm[n_test:]]).tolist()
        return np.isin(subject, test_s)

    def _sample_split(self, y_mapped: np.ndarray, frac: float) -> np.ndarray:
        self.split_mode = f"samples_stratified({frac})"
        rng = np.random.default_rng(self.seed_for("sample_split"))
        mask = np.zeros(y_mapped.size, dtype=bool)
        for c in range(int(y_mapped.max()) + 1):
            idx = np.flatnonzero(y_mapped == c)
            k = math.floor(frac * idx.size + 1e-9)
            if idx.size >= 2:
                k = min(max(k, 1), idx.size - 1)
            else:
                k = 0
            if k:
                mask[rng.choice(idx, size=k, replace=False)] = True
        return mask

    # ---------------------------------------------------------------- seeds
    def seed_for(self, name: str) -> int:
        """``derive_seed(master, name)``, recorded in ``self.seeds`` (for config.json)."""
        s = derive_seed(self.master_seed, name)
        self.seeds[name] = s
        return s

    def rng(self, name: str) -> np.random.Generator:
        """``np.random.default_rng(self.seed_for(name))``."""
        return np.random.default_rng(self.seed_for(name))

    # ---------------------------------------------------------------- tasks
    @property
    def n_classes(self) -> int:
        return int(self.class_order.size)

    @property
    def n_tasks(self) -> int:
        return len(self._sizes)

    @property
    def task_sizes(self) -> List[int]:
        """Classes per task (last one may be a remainder)."""
        return list(self._sizes)

    def _check_task(self, t: int, what: str = "t") -> int:
        if isinstance(t, bool) or int(t) != t or not 0 <= int(t) < self.n_tasks:
            raise ValueError(f"{what} must be a task index in [0, {self.n_tasks - 1}], got {t!r}")
        return int(t)

    def task_start(self, t: int) -> int:
        """First mapped class of task t (= number of classes known before task t)."""
        return int(self._bounds[self._check_task(t)])

    def task_stop(self, t: int) -> int:
        """One past the last mapped class of task t (= classes seen after task t)."""
        return int(self._bounds[self._check_task(t) + 1])

    def n_known(self, t: int) -> int:
        """Classes learned before task t."""
        return self.task_start(t)

    def n_seen(self, t: int) -> int:
        """Classes learned up to and including task t."""
        return self.task_stop(t)

    def task_classes(self, t: int) -> np.ndarray:
        """Mapped labels (class-order positions) of task t: ``arange(task_start, task_stop)``."""
        return np.arange(self.task_start(t), self.task_stop(t))

    def task_classes_original(self, t: int) -> np.ndarray:
        """Original labels of task t's classes, in class order."""
        return self.class_order[self.task_start(t):self.task_stop(t)]

    def task_of(self, y_mapped: Any) -> np.ndarray:
        """Task index of each mapped label (for ``metrics.accuracy_matrix``)."""
        yy = np.asarray(y_mapped, dtype=np.int64)
        if yy.size and (yy.min() < 0 or yy.max() >= self.n_classes):
            raise ValueError(f"task_of: mapped labels must lie in [0, {self.n_classes - 1}]")
        return (np.searchsorted(self._bounds, yy, side="right") - 1).astype(np.int64)

    def to_original(self, y_mapped: Any) -> np.ndarray:
        """Original labels of mapped labels: ``class_order[y_mapped]``."""
        return self.class_order[np.asarray(y_mapped, dtype=np.int64)]

    def train_task(self, t: int) -> Tuple[np.ndarray, np.ndarray]:
        """Training samples of task t's classes: ``(X, y_mapped)``, in data-set order."""
        lo, hi = self.task_start(t), self.task_stop(t)
        m = (self._y_train >= lo) & (self._y_train < hi)
        return self._X_train[m], self._y_train[m]

    def test_task(self, j: int) -> Tuple[np.ndarray, np.ndarray]:
        """Test samples of task j's classes only: ``(X, y_mapped)``."""
        lo, hi = self.task_start(j), self.task_stop(j)
        m = (self._y_test >= lo) & (self._y_test < hi)
        return self._X_test[m], self._y_test[m]

    def test_upto(self, t: int) -> Tuple[np.ndarray, np.ndarray]:
        """Test samples of every class seen up to task t: ``(X, y_mapped)``."""
        m = self._y_test < self.task_stop(t)
        return self._X_test[m], self._y_test[m]

    @property
    def train_data(self) -> Tuple[np.ndarray, np.ndarray]:
        """The whole (preprocessed) training split ``(X, y_mapped)``."""
        return self._X_train, self._y_train

    @property
    def test_data(self) -> Tuple[np.ndarray, np.ndarray]:
        """The whole (preprocessed) test split ``(X, y_mapped)``."""
        return self._X_test, self._y_test

    # ---------------------------------------------------------------- memory
    def memory_per_class(self, n_seen: int) -> int:
        """Exemplars per class with ``n_seen`` classes seen.

        ``fixed_total``: ``memory_size // n_seen`` (floor; the total never exceeds the
        budget, ``memory_size % n_seen`` slots stay unused); ``per_class``: ``memory_size``.
        """
        if isinstance(n_seen, bool) or int(n_seen) != n_seen or n_seen < 1:
            raise ValueError(f"memory_per_class: n_seen must be a positive int, got {n_seen!r}")
        if self.memory_mode == "per_class":
            return self.memory_size
        return self.memory_size // int(n_seen)

    def bic_split(self, t: int, X_mem: Optional[np.ndarray], y_mem: Optional[np.ndarray],
                  val_fraction: float = 0.1, new_rule: str = "balanced",
                  ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """BiC split for task t >= 1: :func:`bic_validation_split` of ``train_task(t)`` and
        the memory, with ``n_known = n_known(t)``, the scenario's ``memory_size`` and seed
        ``seed_for(f"bic_val/{t}")``.  Returns ``(X_train, y_train, X_val, y_val)``.

        In ``per_class`` memory mode the total budget used in ``int(0.1·memory/known)`` is
        ``memory_size · n_known``.
        """
        t = self._check_task(t)
        if t == 0:
            raise ValueError("bic_split: t must be >= 1 (task 0 has no old classes)")
        X_new, y_new = self.train_task(t)
        known = self.n_known(t)
        total = self.memory_size if self.memory_mode == "fixed_total" \
            else self.memory_size * known
        return bic_validation_split(X_new, y_new, X_mem, y_mem, n_known=known,
                                    memory_size=total, seed=self.seed_for(f"bic_val/{t}"),
                                    val_fraction=val_fraction, new_rule=new_rule)

    # ---------------------------------------------------------------- record
    def describe(self) -> Dict[str, Any]:
        """JSON-ready description (plain Python types) for config.json."""
        def py(v: Any) -> Any:
            return v.item() if isinstance(v, np.generic) else v
        return {
            "name": self.name,
            "n_classes": self.n_classes,
            "class_order": [py(v) for v in self.class_order.tolist()],
            "order_rule": self.order_rule,
            "init_cls": self.init_cls,
            "increment": self.increment,
            "n_tasks": self.n_tasks,
            "task_sizes": self.task_sizes,
            "split_mode": self.split_mode,
            "train_subjects": self.train_subjects,
            "test_subjects": self.test_subjects,
            "n_train": int(self._y_train.size),
            "n_test": int(self._y_test.size),
            "train_per_task": [int(np.count_nonzero(self.task_of(self._y_train) == t))
                               for t in range(self.n_tasks)],
            "test_per_task": [int(np.count_nonzero(self.task_of(self._y_test) == t))
                              for t in range(self.n_tasks)],
            "classes_without_test": [py(v) for v in self.classes_without_test],
            "preprocessed": self.preprocessed,
            "memory_size": self.memory_size,
            "memory_mode": self.memory_mode,
            "master_seed": self.master_seed,
            "seeds": dict(self.seeds),
            "seed_derivation": "SeedSequence(entropy=master, spawn_key=(int.from_bytes("
                               "sha256(name.encode()).digest()[:8], 'little'),))"
                               ".generate_state(1, uint64)[0] >> 1",
        }

    def __repr__(self) -> str:
        return (f"Scenario(name={self.name!r}, classes={self.n_classes}, tasks={self.n_tasks}, "
                f"sizes={self._sizes}, split={self.split_mode}, seed={self.master_seed})")
