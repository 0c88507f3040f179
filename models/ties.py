"""Which class a prediction picks when several logits tie (the `tie_rule` of a CIL run).

    first   the lowest class index among the maxima (numpy.argmax) — intsim's default
    topk    the class torch.topk(logits, k, largest=True, sorted=True) puts first on CPU, with
            the published code's k: 5, or n - 1 when there are fewer than 5 classes

Ties are common under quantized numerics: a bias-free head computes every logit as an integer
accumulator times one scale, so two classes with equal accumulators have bit-equal logits.

torch.topk on CPU (ATen's TopKImpl.h, torch 2.x) fills a vector of (value, index) pairs in
index order and, with comp(x, y) = "x is NaN and y is not, or x > y", runs
    n >= 64·k:  std::partial_sort(q, q + k, q + n, comp)
    otherwise:  std::nth_element(q, q + k - 1, q + n, comp); std::sort(q, q + k - 1, comp)
and reports q[0]. Neither algorithm is stable, so which tied index comes first is a property of
GNU libstdc++'s introselect / introsort / heap code. `topk_order` below re-implements those
functions step for step (median-of-three pivot moved to the front, unguarded Hoare partition,
insertion sort below 16 elements or, in introselect, at most 3, heap select when the depth limit
2·floor(log2 n) runs out); tests/test_ties.py checks it against torch's answers recorded on
tied rows. Rows with one maximum (and no NaN) take the argmax directly: any correct top-k puts
a unique maximum first.
"""
from __future__ import annotations

import numpy as np

TIE_RULES = ("first", "topk")


def paper_k(n_classes: int) -> int:
    """The published code's k: topk(k=5) and, when that fails (fewer than 5 classes), n - 1."""
    return 5 if n_classes >= 5 else n_classes - 1


def predict(logits: np.ndarray, rule: str = "first") -> np.ndarray:
    """The predicted class of every row of logits (B, n) under a tie rule (int64)."""
    logits = np.asarray(logits)
    if rule not in TIE_RULES:
        raise ValueError(f"tie_rule: expected one of {TIE_RULES}, got {rule!r}")
    if logits.ndim != 2:
        raise ValueError(f"logits: expected a 2-D array (batch, classes), got {logits.shape}")
    pred = np.argmax(logits, axis=1).astype(np.int64)
    if rule == "first" or logits.shape[1] < 2:
        return pred
    k = paper_k(logits.shape[1])
    top = logits.max(axis=1, keepdims=True)
    nan = np.isnan(logits).any(axis=1)
    tied = nan | ((logits == top).sum(axis=1) > 1)
    for r in np.flatnonzero(tied):
        pred[r] = topk_order(logits[r].tolist(), k)[0]
    return pred


# --- GNU libstdc++ algorithms on a list of (value, index) pairs, comparator "greater" -------

def _comp(x, y) -> bool:
    a, b = x[0], y[0]
    return (a != a and b == b) or a > b


def topk_order(values, k: int) -> list[int]:
    """The indices torch.topk(values, k, largest=True, sorted=True) returns on CPU."""
    n = len(values)
    if not 0 < k <= n:
        raise ValueError(f"k: expected 1 <= k <= {n}, got {k}")
    q = [(float(v), i) for i, v in enumerate(values)]
    if k * 64 <= n:
        _heap_select(q, 0, k, n)
        _sort_heap(q, 0, k)
    else:
        _nth_element(q, 0, k - 1, n)
        _sort(q, 0, k - 1)
    return [i for _, i in q[:k]]


def _lg(n: int) -> int:
    return n.bit_length() - 1


def _move_median_to_first(q, result, a, b, c):
    if _comp(q[a], q[b]):
        if _comp(q[b], q[c]):
            m = b
        elif _comp(q[a], q[c]):
            m = c
        else:
            m = a
    elif _comp(q[a], q[c]):
        m = a
    elif _comp(q[b], q[c]):
        m = c
    else:
        m = b
    q[result], q[m] = q[m], q[result]


def _unguarded_partition(q, first, last, pivot):
    while True:
        while _comp(q[first], q[pivot]):
            first += 1
        last -= 1
        while _comp(q[pivot], q[last]):
            last -= 1
        if not first < last:
            return first
        q[first], q[last] = q[last], q[first]
        first += 1


def _unguarded_partition_pivot(q, first, last):
    mid = first + (last - first) // 2
    _move_median_to_first(q, first, first + 1, mid, last - 1)
    return _unguarded_partition(q, first + 1, last, first)


def _unguarded_linear_insert(q, last):
    val = q[last]
    nxt = last - 1
    while _comp(val, q[nxt]):
        q[last] = q[nxt]
        last = nxt
        nxt -= 1
    q[last] = val


def _insertion_sort(q, first, last):
    if first == last:
        return
    for i in range(first + 1, last):
        if _comp(q[i], q[first]):
            val = q[i]
            q[first + 1:i + 1] = q[first:i]
            q[first] = val
        else:
            _unguarded_linear_insert(q, i)


def _push_heap(q, first, hole, top, value):
    parent = (hole - 1) // 2
    while hole > top and _comp(q[first + parent], value):
        q[first + hole] = q[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    q[first + hole] = value


def _adjust_heap(q, first, hole, length, value):
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if _comp(q[first + child], q[first + child - 1]):
            child -= 1
        q[first + hole] = q[first + child]
        hole = child
    if length % 2 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        q[first + hole] = q[first + child - 1]
        hole = child - 1
    _push_heap(q, first, hole, top, value)


def _make_heap(q, first, last):
    length = last - first
    if length < 2:
        return
    parent = (length - 2) // 2
    while True:
        _adjust_heap(q, first, parent, length, q[first + parent])
        if parent == 0:
            return
        parent -= 1


def _pop_heap(q, first, last, result):
    value = q[result]
    q[result] = q[first]
    _adjust_heap(q, first, 0, last - first, value)


def _heap_select(q, first, middle, last):
    _make_heap(q, first, middle)
    for i in range(middle, last):
        if _comp(q[i], q[first]):
            _pop_heap(q, first, middle, i)


def _sort_heap(q, first, last):
    while last - first > 1:
        last -= 1
        _pop_heap(q, first, last, last)


def _nth_element(q, first, nth, last):
    if first == last or nth == last:
        return
    depth = _lg(last - first) * 2
    while last - first > 3:
        if depth == 0:
            _heap_select(q, first, nth + 1, last)
            q[first], q[nth] = q[nth], q[first]
            return
        depth -= 1
        cut = _unguarded_partition_pivot(q, first, last)
        if cut <= nth:
            first = cut
        else:
            last = cut
    _insertion_sort(q, first, last)


def _introsort_loop(q, first, last, depth):
    while last - first > 16:
        if depth == 0:
            _heap_select(q, first, last, last)
            _sort_heap(q, first, last)
            return
        depth -= 1
        cut = _unguarded_partition_pivot(q, first, last)
        _introsort_loop(q, cut, last, depth)
        last = cut


def _sort(q, first, last):
    if first == last:
        return
    _introsort_loop(q, first, last, _lg(last - first) * 2)
    if last - first > 16:
        _insertion_sort(q, first, first + 16)
        for i in range(first + 16, last):
            _unguarded_linear_insert(q, i)
    else:
        _insertion_sort(q, first, last)
