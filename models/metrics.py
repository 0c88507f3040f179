"""Class-incremental learning metrics as plain NumPy functions (continuum style).

Everything here works on arrays of labels/predictions recorded after each task; nothing
depends on a network.  Conventions used throughout the module:

* **Percent.**  Every accuracy, forgetting, transfer and F1 value is in percent (0..100),
  as the paper reports them.  Nothing is rounded (the paper code rounds per-class
  accuracies to 2 decimals; we do not).
* **Steps.**  T = number of tasks.  After training task ``t`` (0-based) the model is
  evaluated on the test data of every class seen so far.  The raw record of a run is,
  per step ``t``: ``y_true[t]`` (labels, already remapped to class-order positions),
  ``y_pred[t]`` (predicted labels) and ``task_ids[t]`` (the task each test sample belongs
  to).  Keep this record; every number below is derived from it.
* **Accuracy matrix.**  ``a[t, j]`` = accuracy after training task t on the test data of
  task j, defined for j <= t; entries with j > t are NaN, and so is an entry whose test
  set is empty.
* **A_t.**  Accuracy after task t on *all* test samples seen so far, computed from the
  predictions (sum of correct / number of samples).  It equals the sample-weighted mean
  of ``a[t, :t+1]``, *not* the plain mean when tasks have different test-set sizes.
* **NaN policy.**  Undefined quantities are NaN, never 0: forgetting and BWT with T = 1,
  a task/class without test samples, the std of a single seed with ddof = 1.  Functions
  that average over tasks/classes skip NaN terms (documented per function); functions
  over an A_t curve propagate NaN.

Which formula is which (libraries disagree; ours is the default, alternatives are named):

* Forgetting (Chaudhry et al. 2018), ``variant="chaudhry"`` (default)::

      f_j = max_{l in [j, T-2]} a[l, j] - a[T-1, j]        for j < T-1
      F   = mean_j f_j

  The max excludes the final step, so F can be negative (positive backward transfer).
  ``"max_incl_last"`` takes the max over l in [j, T-1] (always >= 0);
  ``"first_last"`` uses a[j, j] - a[T-1, j] (= -BWT).
* Class-level forgetting of the paper's code (``class_forgetting``): per class, best
  accuracy so far (current step included) minus current accuracy, averaged over every
  class seen so far (the newest classes included, contributing 0).
* BWT = mean_{j < T-1} (a[T-1, j] - a[j, j]).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

__all__ = [
    "accuracy",
    "task_ids_from_labels",
    "accuracy_matrix",
    "accuracy_curve",
    "per_class_accuracy_matrix",
    "last_accuracy",
    "average_incremental_accuracy",
    "forgetting_per_task",
    "forgetting",
    "backward_transfer",
    "class_forgetting_curve",
    "class_forgetting",
    "macro_f1",
    "macro_f1_curve",
    "SeedSummary",
    "aggregate_seeds",
    "summarize_run",
    "FORGETTING_VARIANTS",
]

FORGETTING_VARIANTS = ("chaudhry", "max_incl_last", "first_last")


# --------------------------------------------------------------------------- helpers
def _as_1d(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    return arr


def _pair(y_true: Any, y_pred: Any, where: str) -> tuple:
    yt = _as_1d(y_true, f"{where}: y_true")
    yp = _as_1d(y_pred, f"{where}: y_pred")
    if yt.shape != yp.shape:
        raise ValueError(f"{where}: y_true and y_pred must have the same length, "
                         f"got {yt.shape[0]} and {yp.shape[0]}")
    return yt, yp


def _steps(seq: Any, name: str) -> List[np.ndarray]:
    if isinstance(seq, np.ndarray) and seq.ndim == 1 and seq.dtype != object:
        raise ValueError(f"{name}: expected a sequence with one 1-D array per step "
                         f"(length T), got a single 1-D array")
    try:
        steps = [np.asarray(s) for s in seq]
    except TypeError as e:
        raise ValueError(f"{name}: expected a sequence with one 1-D array per step") from e
    if len(steps) == 0:
        raise ValueError(f"{name}: expected at least one step, got an empty sequence")
    for t, s in enumerate(steps):
        if s.ndim != 1:
            raise ValueError(f"{name}[{t}]: expected a 1-D array, got shape {s.shape}")
    return steps


def _square_matrix(a: Any, name: str = "a") -> np.ndarray:
    m = np.asarray(a, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty square (T, T) accuracy matrix, "
                         f"got shape {m.shape}")
    return m


def _curve(A: Any, name: str = "A") -> np.ndarray:
    arr = np.asarray(A, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D array of per-step accuracies "
                         f"A_t, got shape {arr.shape}")
    return arr


def _mean_finite(v: np.ndarray) -> float:
    """Mean of the finite entries; NaN (no warning) when there are none."""
    ok = np.isfinite(v)
    return float(v[ok].mean()) if ok.any() else float("nan")


# --------------------------------------------------------------------------- accuracy
def accuracy(y_true: Any, y_pred: Any) -> float:
    """Accuracy in percent: 100 · #{i : y_pred[i] == y_true[i]} / n.  NaN when n = 0."""
    yt, yp = _pair(y_true, y_pred, "accuracy")
    if yt.size == 0:
        return float("nan")
    return float(100.0 * np.count_nonzero(yt == yp) / yt.size)


def task_ids_from_labels(y: Any, init_cls: int, increment: int) -> np.ndarray:
    """Task index of each (remapped) label: 0 if y < init_cls else 1 + (y - init_cls) // increment.

    Labels are positions in the class order (0..C-1), so the first ``init_cls`` positions
    form task 0 and every further ``increment`` positions one task (the last task may be
    smaller; the formula is the same).
    """
    if int(init_cls) < 1 or int(increment) < 1:
        raise ValueError(f"task_ids_from_labels: init_cls and increment must be >= 1, "
                         f"got init_cls={init_cls}, increment={increment}")
    yy = _as_1d(y, "task_ids_from_labels: y")
    if yy.size and not np.issubdtype(yy.dtype, np.integer):
        raise ValueError(f"task_ids_from_labels: y must be integer labels, got dtype {yy.dtype}")
    yy = yy.astype(np.int64)
    if yy.size and yy.min() < 0:
        raise ValueError("task_ids_from_labels: y must be non-negative class positions")
    return np.where(yy < init_cls, 0, 1 + (yy - init_cls) // increment).astype(np.int64)


def accuracy_matrix(y_true: Sequence[Any], y_pred: Sequence[Any],
                    task_ids: Sequence[Any]) -> np.ndarray:
    """Accuracy matrix ``a`` (T × T, percent) from per-step predictions.

    Args:
        y_true: length-T sequence; ``y_true[t]`` = labels of the test samples evaluated
            after task t (all classes seen up to t).
        y_pred: same shapes, predicted labels.
        task_ids: same shapes, ``task_ids[t][i]`` = task the i-th sample belongs to
            (e.g. :func:`task_ids_from_labels` or ``Scenario.task_of``).

    Returns:
        ``a[t, j] = 100 · #{i : task_ids[t][i] == j and y_pred[t][i] == y_true[t][i]}
        / #{i : task_ids[t][i] == j}`` for j <= t; NaN for j > t (above the diagonal)
        and where the denominator is 0.

    Raises:
        ValueError: mismatched lengths, or a sample at step t tagged with a task > t.
    """
    yts = _steps(y_true, "accuracy_matrix: y_true")
    yps = _steps(y_pred, "accuracy_matrix: y_pred")
    tis = _steps(task_ids, "accuracy_matrix: task_ids")
    T = len(yts)
    if len(yps) != T or len(tis) != T:
        raise ValueError(f"accuracy_matrix: y_true, y_pred, task_ids must have the same "
                         f"number of steps, got {len(yts)}, {len(yps)}, {len(tis)}")
    a = np.full((T, T), np.nan)
    for t in range(T):
        yt, yp = _pair(yts[t], yps[t], f"accuracy_matrix step {t}")
        ti = tis[t]
        if ti.shape != yt.shape:
            raise ValueError(f"accuracy_matrix: task_ids[{t}] has length {ti.shape[0]}, "
                             f"expected {yt.shape[0]} (same as y_true[{t}])")
        if ti.size and (ti.min() < 0 or ti.max() > t):
            raise ValueError(f"accuracy_matrix: task_ids[{t}] must lie in [0, {t}] (only "
                             f"tasks seen so far are tested), got range "
                             f"[{ti.min()}, {ti.max()}]")
        correct = yt == yp
        for j in range(t + 1):
            sel = ti == j
            n = np.count_nonzero(sel)
            if n:
                a[t, j] = 100.0 * np.count_nonzero(correct[sel]) / n
    return a


def accuracy_curve(y_true: Sequence[Any], y_pred: Sequence[Any]) -> np.ndarray:
    """A_t for every step (percent): ``A_t = 100 · #correct at step t / #test samples at step t``.

    Computed from predictions over all test samples of the classes seen up to t — not as a
    mean of a[t, j], which differs when tasks have different test sizes.  NaN for a step
    with no test samples.
    """
    yts = _steps(y_true, "accuracy_curve: y_true")
    yps = _steps(y_pred, "accuracy_curve: y_pred")
    if len(yts) != len(yps):
        raise ValueError(f"accuracy_curve: y_true and y_pred must have the same number of "
                         f"steps, got {len(yts)} and {len(yps)}")
    return np.array([accuracy(yt, yp) for yt, yp in zip(yts, yps)], dtype=np.float64)


def per_class_accuracy_matrix(y_true: Sequence[Any], y_pred: Sequence[Any],
                              n_classes: Optional[int] = None) -> np.ndarray:
    """Per-class accuracy (recall) after every step: ``c[t, k]`` (T × C, percent).

    ``c[t, k] = 100 · #{i : y_true[t][i] == k and y_pred[t][i] == k} / #{i : y_true[t][i] == k}``;
    NaN where class k has no test sample at step t (not yet seen, or empty class).
    Labels must be integers in [0, n_classes); ``n_classes`` defaults to 1 + the largest
    label in any ``y_true[t]``.
    """
    yts = _steps(y_true, "per_class_accuracy_matrix: y_true")
    yps = _steps(y_pred, "per_class_accuracy_matrix: y_pred")
    if len(yts) != len(yps):
        raise ValueError(f"per_class_accuracy_matrix: y_true and y_pred must have the same "
                         f"number of steps, got {len(yts)} and {len(yps)}")
    for t, yt in enumerate(yts):
        if yt.size and not np.issubdtype(yt.dtype, np.integer):
            raise ValueError(f"per_class_accuracy_matrix: y_true[{t}] must hold integer "
                             f"labels, got dtype {yt.dtype}")
        if yt.size and yt.min() < 0:
            raise ValueError(f"per_class_accuracy_matrix: y_true[{t}] has negative labels")
    if n_classes is None:
        n_classes = 1 + max((int(yt.max()) for yt in yts if yt.size), default=-1)
    n_classes = int(n_classes)
    if n_classes < 0:
        raise ValueError(f"per_class_accuracy_matrix: n_classes must be >= 0, got {n_classes}")
    c = np.full((len(yts), n_classes), np.nan)
    for t, (yt, yp) in enumerate(zip(yts, yps)):
        yt, yp = _pair(yt, yp, f"per_class_accuracy_matrix step {t}")
        if yt.size and yt.max() >= n_classes:
            raise ValueError(f"per_class_accuracy_matrix: y_true[{t}] has label "
                             f"{int(yt.max())} >= n_classes={n_classes}")
        yt = yt.astype(np.int64)
        support = np.bincount(yt, minlength=n_classes)
        hits = np.bincount(yt[yt == yp], minlength=n_classes)
        has = support > 0
        c[t, has] = 100.0 * hits[has] / support[has]
    return c


def last_accuracy(A: Any) -> float:
    """Last accuracy = A_{T-1} (percent), the last entry of the A_t curve."""
    return float(_curve(A)[-1])


def average_incremental_accuracy(A: Any) -> float:
    """Average incremental accuracy AIA = (1/T) · Σ_{t=0}^{T-1} A_t (first task included).

    The paper's headline number.  NaN propagates (a step with no test data makes AIA NaN).
    """
    return float(np.mean(_curve(A)))


# --------------------------------------------------------------------------- forgetting / BWT
def forgetting_per_task(a: Any, variant: str = "chaudhry") -> np.ndarray:
    """Per-task forgetting f_j for j = 0..T-2 (length T-1; empty when T = 1).

    ``variant``:
      * ``"chaudhry"`` (default): f_j = max_{l in [j, T-2]} a[l, j] - a[T-1, j]
      * ``"max_incl_last"``:      f_j = max_{l in [j, T-1]} a[l, j] - a[T-1, j]  (>= 0)
      * ``"first_last"``:         f_j = a[j, j] - a[T-1, j]                      (= -BWT_j)

    NaN entries of ``a`` are ignored inside the max; f_j is NaN when a[T-1, j] or every
    entry in the max range is NaN.
    """
    if variant not in FORGETTING_VARIANTS:
        raise ValueError(f"forgetting: variant must be one of {FORGETTING_VARIANTS}, "
                         f"got {variant!r}")
    m = _square_matrix(a)
    T = m.shape[0]
    out = np.full(T - 1, np.nan)
    for j in range(T - 1):
        last = m[T - 1, j]
        if variant == "first_last":
            ref = m[j, j]
        else:
            stop = T - 1 if variant == "chaudhry" else T
            col = m[j:stop, j]
            col = col[np.isfinite(col)]
            ref = col.max() if col.size else np.nan
        out[j] = ref - last
    return out


def forgetting(a: Any, variant: str = "chaudhry") -> float:
    """Forgetting (percent points) = mean over j < T-1 of f_j (see :func:`forgetting_per_task`).

    Default (Chaudhry et al.): ``F = mean_{j<T-1} [max_{l in [j, T-2]} a[l, j] - a[T-1, j]]``.
    Tasks whose f_j is NaN are skipped.  NaN when T = 1 (no old task) or no f_j is defined.
    Can be negative for ``"chaudhry"`` and ``"first_last"`` (an old task improved at the
    last step); always >= 0 for ``"max_incl_last"``.
    """
    return _mean_finite(forgetting_per_task(a, variant))


def backward_transfer(a: Any) -> float:
    """Backward transfer BWT = mean_{j < T-1} (a[T-1, j] - a[j, j]) (percent points).

    Negative = forgetting.  Terms with a NaN operand are skipped; NaN when T = 1.
    """
    m = _square_matrix(a)
    T = m.shape[0]
    j = np.arange(T - 1)
    return _mean_finite(m[T - 1, j] - m[j, j])


def class_forgetting_curve(c: Any) -> np.ndarray:
    """The paper code's class-level forgetting after every step (length T, percent points).

    With ``c`` the per-class accuracy matrix (:func:`per_class_accuracy_matrix`; NaN =
    class not tested at that step), let S_t = {k : c[t, k] is finite} (classes seen up to
    t, newest included) and M_t[k] = max_{l <= t, c[l, k] finite} c[l, k] (current step
    included).  Then::

        F^cls_t = (1 / |S_t|) · Σ_{k in S_t} (M_t[k] - c[t, k])      for t >= 1
        F^cls_0 = NaN                                                 (first step)

    Always >= 0.  Classes first seen at step t contribute 0, so this is diluted relative
    to task-level forgetting; it is what the authors' code logged, kept for comparison.
    NaN when S_t is empty.
    """
    m = np.asarray(c, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] == 0:
        raise ValueError(f"class_forgetting: c must be a (T, C) per-class accuracy matrix, "
                         f"got shape {m.shape}")
    T = m.shape[0]
    out = np.full(T, np.nan)
    best = np.full(m.shape[1], -np.inf)
    for t in range(T):
        row = m[t]
        seen = np.isfinite(row)
        best[seen] = np.maximum(best[seen], row[seen])
        if t >= 1 and seen.any():
            out[t] = float(np.mean(best[seen] - row[seen]))
    return out


def class_forgetting(c: Any) -> float:
    """Final class-level forgetting F^cls_{T-1} (:func:`class_forgetting_curve`); NaN if T = 1."""
    return float(class_forgetting_curve(c)[-1])


# --------------------------------------------------------------------------- F1
def macro_f1(y_true: Any, y_pred: Any, classes: Optional[Any] = None) -> float:
    """Macro-F1 over the seen classes, in percent.

    For each class k in ``classes`` (default: the labels present in ``y_true``)::

        TP_k = #{y_true = k, y_pred = k},  FP_k = #{y_true != k, y_pred = k},
        FN_k = #{y_true = k, y_pred != k}
        F1_k = 2·TP_k / (2·TP_k + FP_k + FN_k)        (= 2PR/(P+R); 0 when TP_k = 0)

    macro-F1 = 100 · mean of F1_k over the classes of ``classes`` that have at least one
    test sample (a class with no support has no defined recall and is skipped — unlike
    scikit-learn, which counts it as 0).  Predictions of labels outside ``classes`` count
    as errors (FN of the true class).  NaN when no class has support.
    """
    yt, yp = _pair(y_true, y_pred, "macro_f1")
    cls = np.unique(yt) if classes is None else np.unique(_as_1d(classes, "macro_f1: classes"))
    scores = []
    for k in cls:
        t = yt == k
        n_true = np.count_nonzero(t)
        if n_true == 0:
            continue
        p = yp == k
        tp = np.count_nonzero(t & p)
        fp = np.count_nonzero(p & ~t)
        fn = n_true - tp
        scores.append(2.0 * tp / (2.0 * tp + fp + fn))
    return float(100.0 * np.mean(scores)) if scores else float("nan")


def macro_f1_curve(y_true: Sequence[Any], y_pred: Sequence[Any]) -> np.ndarray:
    """Macro-F1 (percent) after every step, each over the classes present in ``y_true[t]``."""
    yts = _steps(y_true, "macro_f1_curve: y_true")
    yps = _steps(y_pred, "macro_f1_curve: y_pred")
    if len(yts) != len(yps):
        raise ValueError(f"macro_f1_curve: y_true and y_pred must have the same number of "
                         f"steps, got {len(yts)} and {len(yps)}")
    return np.array([macro_f1(yt, yp) for yt, yp in zip(yts, yps)], dtype=np.float64)


# --------------------------------------------------------------------------- seeds
@dataclass(frozen=True)
class SeedSummary:
    """mean ± std of one metric over seeds, with the per-seed values kept.

    ``mean = (1/n) Σ_s v_s``; ``std = sqrt(Σ_s (v_s - mean)² / (n - ddof))``.
    ``values`` holds the per-seed values in the order given (shape (n,) for a scalar
    metric, (n, ...) for an array metric such as an A_t curve).
    """
    mean: Any
    std: Any
    n: int
    ddof: int
    values: np.ndarray = field(repr=False)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict: mean, std, n, ddof, values (NumPy arrays become lists)."""
        def conv(v):
            return v.tolist() if isinstance(v, np.ndarray) else float(v)
        return {"mean": conv(self.mean), "std": conv(self.std), "n": self.n,
                "ddof": self.ddof, "values": self.values.tolist()}

    def __str__(self) -> str:
        if np.ndim(self.mean) == 0:
            return f"{float(self.mean):.2f} ± {float(self.std):.2f} (n={self.n})"
        return f"SeedSummary(n={self.n}, shape={np.shape(self.mean)})"


def aggregate_seeds(values: Any, ddof: int = 1) -> SeedSummary:
    """Aggregate one metric over seeds: mean ± std along axis 0, per-seed values kept.

    Args:
        values: per-seed values, shape (n_seeds,) or (n_seeds, ...).
        ddof: delta degrees of freedom of the std.  Default 1 = sample standard deviation
            (seeds are a sample of the seed distribution); ddof = 0 gives the population
            std (``np.std`` default, what many CIL code bases print).

    NaN in any seed propagates to mean and std (a failed seed is never silently dropped).
    With ddof = 1 and a single seed the std is NaN.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 0 or v.shape[0] == 0:
        raise ValueError(f"aggregate_seeds: values must have a leading seed axis with at "
                         f"least one seed, got shape {v.shape}")
    if int(ddof) != ddof or ddof < 0:
        raise ValueError(f"aggregate_seeds: ddof must be a non-negative integer, got {ddof!r}")
    n = v.shape[0]
    mean = v.mean(axis=0)
    if n - ddof <= 0:
        std = np.full(v.shape[1:], np.nan) if v.ndim > 1 else np.float64(np.nan)
    else:
        std = v.std(axis=0, ddof=int(ddof))
    if v.ndim == 1:
        mean, std = float(mean), float(std)
    return SeedSummary(mean=mean, std=std, n=n, ddof=int(ddof), values=v)


# --------------------------------------------------------------------------- one run
def summarize_run(y_true: Sequence[Any], y_pred: Sequence[Any], task_ids: Sequence[Any],
                  n_classes: Optional[int] = None,
                  forgetting_variant: str = "chaudhry") -> Dict[str, Any]:
    """All metrics of one run (one classifier) from its raw per-step predictions.

    Returns a dict: ``matrix`` (a, T×T), ``A`` (A_t), ``last``, ``aia``, ``forgetting``
    (``forgetting_variant``), ``bwt``, ``class_matrix`` (c, T×C), ``class_forgetting``,
    ``macro_f1`` (per step), ``last_macro_f1``, ``units = "percent"``.  Arrays are NumPy;
    call ``.tolist()`` for JSON (NaN stays NaN).
    """
    a = accuracy_matrix(y_true, y_pred, task_ids)
    A = accuracy_curve(y_true, y_pred)
    c = per_class_accuracy_matrix(y_true, y_pred, n_classes)
    f1 = macro_f1_curve(y_true, y_pred)
    return {
        "units": "percent",
        "matrix": a,
        "A": A,
        "last": last_accuracy(A),
        "aia": average_incremental_accuracy(A),
        "forgetting": forgetting(a, forgetting_variant),
        "forgetting_variant": forgetting_variant,
        "bwt": backward_transfer(a),
        "class_matrix": c,
        "class_forgetting": class_forgetting(c),
        "macro_f1": f1,
        "last_macro_f1": float(f1[-1]),
    }
