"""Exemplar selection (iCaRL herding), exemplar memory, nearest-mean-of-exemplars (NME).

All of this stays float, as in the paper (docs/method.md, "What stays float"); we compute in
float64 (the paper's code in float32), so near-ties may resolve differently from it.

Normalisation (same as the paper's code):
  φ(x) = f(x) / (‖f(x)‖₂ + 1e-8)                       (feature L2-normalised, ε-guarded)

Herding (iCaRL, Rebuffi et al. 2017, Alg. 4) for one class with normalised features
φ_1..φ_n and class mean μ = (1/n) Σ_i φ_i (μ is *not* re-normalised for herding)::

    for k = 1..m:
        p_k = argmin_{i not yet chosen} ‖ μ − (1/k)(φ_i + Σ_{j<k} φ_{p_j}) ‖²

Ties resolve to the lowest sample index; no sample is picked twice; m > n returns all n
samples in herding order.  The returned order matters: reducing the memory keeps a prefix.

NME class mean of class c from its exemplars E_c (re-normalised, as iCaRL does)::

    ν_c = mean_{x in E_c} φ(x);   μ_c = ν_c / ‖ν_c‖₂        (ν_c = 0 stays 0)

NME prediction: ŷ(x) = argmin_c ‖φ(x) − μ_c‖² (ties → lowest class index).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "EPS",
    "l2_normalize",
    "herding_selection",
    "random_selection",
    "select_exemplars",
    "ExemplarMemory",
    "class_means",
    "nme_distances",
    "nme_predict",
]

EPS = 1e-8


def _features(F: Any, name: str = "features") -> np.ndarray:
    arr = np.asarray(F, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (n_samples, n_features), "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


def _py(v: Any) -> Any:
    """NumPy scalar -> Python scalar (clean keys and error messages)."""
    return v.item() if isinstance(v, np.generic) else v


def _check_m(m: Any) -> int:
    if isinstance(m, bool) or int(m) != m or m < 0:
        raise ValueError(f"m: expected a non-negative int (exemplars per class), got {m!r}")
    return int(m)


def l2_normalize(F: Any, eps: float = EPS) -> np.ndarray:
    """Row-wise ``F / (‖F‖₂ + eps)`` in float64 (a zero row stays zero)."""
    arr = _features(F)
    return arr / (np.linalg.norm(arr, axis=1, keepdims=True) + eps)


def herding_selection(features: Any, m: int, normalize: bool = True) -> np.ndarray:
    """Indices of the iCaRL herding exemplars, in selection order (length min(m, n)).

    ``features``: (n, d) features of one class.  With ``normalize=True`` they are
    L2-normalised first (φ above); pass ``normalize=False`` if they already are.
    Step k (1-based) picks the unchosen i minimising ‖μ − (S + φ_i)/k‖², S = sum of the
    chosen φ; ties → lowest index.
    """
    m = _check_m(m)
    phi = l2_normalize(features) if normalize else _features(features)
    n = phi.shape[0]
    m = min(m, n)
    mu = phi.mean(axis=0) if n else np.zeros(phi.shape[1])
    chosen = np.zeros(n, dtype=bool)
    S = np.zeros(phi.shape[1])
    order = np.empty(m, dtype=np.int64)
    for k in range(1, m + 1):
        diff = mu[None, :] - (S[None, :] + phi) / k
        dist = np.einsum("ij,ij->i", diff, diff)
        dist[chosen] = np.inf
        i = int(np.argmin(dist))  # first minimum = lowest index on ties
        order[k - 1] = i
        chosen[i] = True
        S = S + phi[i]
    return order


def random_selection(n: int, m: int, seed: int) -> np.ndarray:
    """``default_rng(seed).choice(n, min(m, n), replace=False)`` — the random-exemplar baseline."""
    m = _check_m(m)
    if int(n) < 0:
        raise ValueError(f"random_selection: n must be >= 0, got {n}")
    return np.random.default_rng(seed).choice(int(n), size=min(m, int(n)), replace=False)


def select_exemplars(features: Any, m: int, method: str = "herding",
                     seed: Optional[int] = None) -> np.ndarray:
    """Exemplar indices for one class: ``method="herding"`` (deterministic) or ``"random"``
    (needs ``seed``, e.g. ``scenario.seed_for(f"exemplar/{label}")``)."""
    if method == "herding":
        return herding_selection(features, m)
    if method == "random":
        if seed is None:
            raise ValueError("select_exemplars: method='random' needs a seed")
        return random_selection(_features(features).shape[0], m, seed)
    raise ValueError(f"select_exemplars: method must be 'herding' or 'random', got {method!r}")


class ExemplarMemory:
    """Per-class exemplar store, each class kept in selection (herding) order.

    ``reduce(m)`` keeps the first m exemplars of every class (the herding prefix);
    ``add_class`` selects and stores a new class; ``data()`` returns all exemplars.
    The per-class budget m comes from ``Scenario.memory_per_class(n_seen)``.
    """

    def __init__(self) -> None:
        self._X: Dict[Any, np.ndarray] = {}
        self._idx: Dict[Any, Optional[np.ndarray]] = {}

    # ------------------------------------------------------------ queries
    @property
    def classes(self) -> List[Any]:
        """Stored class labels, increasing."""
        return sorted(self._X)

    def __len__(self) -> int:
        return int(sum(v.shape[0] for v in self._X.values()))

    def __contains__(self, label: Any) -> bool:
        return label in self._X

    def counts(self) -> Dict[Any, int]:
        """Exemplars per class."""
        return {c: int(self._X[c].shape[0]) for c in self.classes}

    def class_data(self, label: Any) -> np.ndarray:
        """Exemplars of one class, in selection order."""
        label = _py(label)
        if label not in self._X:
            raise ValueError(f"class_data: class {label!r} is not in the memory "
                             f"(stored: {self.classes})")
        return self._X[label]

    def class_indices(self, label: Any) -> Optional[np.ndarray]:
        """Source indices recorded when the class was added (None if not given)."""
        label = _py(label)
        if label not in self._X:
            raise ValueError(f"class_indices: class {label!r} is not in the memory")
        return self._idx[label]

    def data(self) -> Tuple[np.ndarray, np.ndarray]:
        """All exemplars ``(X, y)``: classes in increasing label order, each in selection order."""
        if not self._X:
            raise ValueError("data: the memory is empty")
        cs = self.classes
        X = np.concatenate([self._X[c] for c in cs])
        y = np.concatenate([np.full(self._X[c].shape[0], c) for c in cs])
        return X, y

    # ------------------------------------------------------------ updates
    def set_class(self, label: Any, X: Any, index: Any = None) -> None:
        """Store already-ordered exemplars of one class (replaces any previous entry)."""
        X = np.asarray(X)
        if X.ndim < 1:
            raise ValueError("set_class: X must have a sample axis")
        if index is not None:
            index = np.asarray(index, dtype=np.int64)
            if index.shape != (X.shape[0],):
                raise ValueError(f"set_class: index must have shape ({X.shape[0]},), "
                                 f"got {index.shape}")
        label = _py(label)
        self._X[label] = X.copy()
        self._idx[label] = None if index is None else index.copy()

    def add_class(self, label: Any, X: Any, features: Any, m: int,
                  method: str = "herding", seed: Optional[int] = None,
                  index: Any = None) -> np.ndarray:
        """Select m exemplars of one class from ``X`` (features aligned row by row) and store
        them in selection order.  ``index`` (optional) = source ids of the rows of X, kept
        for bookkeeping.  Returns the selected row positions into ``X``."""
        label = _py(label)
        X = np.asarray(X)
        F = _features(features)
        if F.shape[0] != X.shape[0]:
            raise ValueError(f"add_class: features has {F.shape[0]} rows, X has {X.shape[0]}")
        if label in self._X:
            raise ValueError(f"add_class: class {label!r} is already in the memory; "
                             f"use reduce() for old classes")
        sel = select_exemplars(F, m, method=method, seed=seed)
        src = None if index is None else np.asarray(index, dtype=np.int64)[sel]
        self.set_class(label, X[sel], src)
        return sel

    def reduce(self, m: int) -> None:
        """Keep the first m exemplars (selection-order prefix) of every stored class."""
        m = _check_m(m)
        for c in self.classes:
            self._X[c] = self._X[c][:m]
            if self._idx[c] is not None:
                self._idx[c] = self._idx[c][:m]

    def update(self, X_new: Any, y_new: Any, features_new: Any, m: int,
               method: str = "herding", seed: Optional[int] = None) -> None:
        """End-of-task update: ``reduce(m)`` the old classes, then ``add_class`` every class
        of ``y_new`` (increasing label order) with m exemplars, recording the row positions
        in ``X_new`` as source indices.  With ``method="random"`` class c (an integer label)
        draws from ``SeedSequence([seed, c])``, so its choice does not depend on the other
        classes of the task."""
        X_new = np.asarray(X_new)
        y_new = np.asarray(y_new)
        F = _features(features_new, "features_new")
        if y_new.ndim != 1 or X_new.shape[0] != y_new.shape[0] or F.shape[0] != y_new.shape[0]:
            raise ValueError(f"update: X_new ({X_new.shape[0]} rows), y_new (shape "
                             f"{y_new.shape}) and features_new ({F.shape[0]} rows) must align")
        if method == "random" and seed is None:
            raise ValueError("update: method='random' needs a seed")
        clash = [c for c in np.unique(y_new).tolist() if c in self._X]
        if clash:
            raise ValueError(f"update: classes {clash} of y_new are already in the memory")
        self.reduce(m)
        for c in np.unique(y_new):
            rows = np.flatnonzero(y_new == c)
            label = _py(c)
            s = None
            if method == "random":
                s = int(np.random.SeedSequence([int(seed), int(label)]).generate_state(1)[0])
            self.add_class(label, X_new[rows], F[rows], m, method=method, seed=s, index=rows)

    # ------------------------------------------------------------ checkpoint
    def state_dict(self) -> Dict[str, Any]:
        """Arrays for checkpointing: ``{"classes", "X": [...], "index": [...]}``."""
        cs = self.classes
        return {"classes": cs, "X": [self._X[c] for c in cs],
                "index": [self._idx[c] for c in cs]}

    @classmethod
    def from_state_dict(cls, state: Dict[str, Any]) -> "ExemplarMemory":
        """Inverse of :meth:`state_dict`."""
        mem = cls()
        for c, X, idx in zip(state["classes"], state["X"], state["index"]):
            mem.set_class(c, X, idx)
        return mem


# --------------------------------------------------------------------------- NME
def class_means(features: Any, labels: Any, classes: Optional[Sequence[Any]] = None,
                ) -> np.ndarray:
    """NME class means μ_c (one row per class, in ``classes`` order; default sorted labels).

    μ_c = ν_c / ‖ν_c‖₂ with ν_c = mean of the L2-normalised features of class c (a zero ν_c
    stays zero).  ``features``/``labels`` are normally the exemplars' features and labels.

    Raises:
        ValueError: a requested class has no sample.
    """
    F = _features(features)
    y = np.asarray(labels)
    if y.shape != (F.shape[0],):
        raise ValueError(f"class_means: labels must have shape ({F.shape[0]},), got {y.shape}")
    cs = np.unique(y) if classes is None else np.asarray(classes)
    phi = l2_normalize(F)
    out = np.zeros((len(cs), F.shape[1]))
    for r, c in enumerate(cs):
        sel = y == c
        if not np.any(sel):
            raise ValueError(f"class_means: class {_py(c)!r} has no sample (no exemplars?)")
        nu = phi[sel].mean(axis=0)
        norm = np.linalg.norm(nu)
        out[r] = nu / norm if norm > 0 else nu
    return out


def nme_distances(features: Any, means: Any) -> np.ndarray:
    """Squared distances ``D[i, c] = ‖φ(f_i) − μ_c‖²`` (N × C), computed directly (not by
    the expanded dot-product form), in row chunks."""
    F = _features(features)
    M = _features(means, "means")
    if M.shape[1] != F.shape[1]:
        raise ValueError(f"nme_distances: means have {M.shape[1]} features, "
                         f"features have {F.shape[1]}")
    phi = l2_normalize(F)
    N, C = phi.shape[0], M.shape[0]
    D = np.empty((N, C))
    chunk = max(1, 4_000_000 // max(1, C * F.shape[1]))
    for s in range(0, N, chunk):
        diff = phi[s:s + chunk, None, :] - M[None, :, :]
        D[s:s + chunk] = np.einsum("icd,icd->ic", diff, diff)
    return D


def nme_predict(features: Any, means: Any, classes: Optional[Sequence[Any]] = None,
                ) -> np.ndarray:
    """NME prediction ``argmin_c ‖φ(f) − μ_c‖²`` (ties → lowest row of ``means``).

    Returns row indices into ``means``, or ``classes[row]`` when ``classes`` is given.
    """
    M = _features(means, "means")
    if M.shape[0] == 0:
        raise ValueError("nme_predict: means is empty (no class)")
    rows = np.argmin(nme_distances(features, M), axis=1)
    if classes is None:
        return rows
    cs = np.asarray(classes)
    if cs.shape != (M.shape[0],):
        raise ValueError(f"nme_predict: classes must have shape ({M.shape[0]},), got {cs.shape}")
    return cs[rows]
