"""Paired timing for `intsim bench`: candidate and baseline interleaved, median of ratios.

On a shared machine the speed of a core changes from one moment to the next (other processes,
frequency scaling, a parallel region waiting for a scheduler slice). Timing the candidate for a
while and then the baseline lets such swings land on one side only; so every repeat r times
one candidate sample c_r and one baseline sample b_r back to back (alternating which goes first)
and the case reports

    ratio = median_r (c_r / b_r),   spread = (25th, 75th percentile of c_r / b_r)

next to median_r c_r and median_r b_r. A sample is `inner` calls (chosen once so that a sample
lasts at least `min_time`), divided by `inner`.

Clocks: single-threaded cases use the thread's CPU time (time.thread_time: the time this thread
ran, so waiting for a busy core costs nothing) — valid only if no other thread does the work,
so it is used only when Numba and BLAS are both limited to one thread (BLAS limits need
threadpoolctl; without it the wall clock is used and the record says so). Multi-threaded
cases use the wall clock (time.perf_counter).
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Optional

import numba
import numpy as np

from intsim.experiments.sweep.cluster import thread_limits

CLOCKS = {"thread_cpu": time.thread_time, "wall": time.perf_counter}


def blas_threads() -> Optional[int]:
    """The thread count of the BLAS numpy calls (threadpoolctl); None when it cannot be read."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - threadpoolctl is optional
        return None
    counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return max(counts) if counts else None


@contextmanager
def threads(n: int):
    """Numba and BLAS limited to n threads inside the block. Yields (numba threads, BLAS
    threads or None when unknown, the clock name a case must use)."""
    with thread_limits(n):
        nb, bl = numba.get_num_threads(), blas_threads()
        single = nb == 1 and bl == 1
        yield nb, bl, "thread_cpu" if single else "wall"


def _sample(fn: Callable[[], object], inner: int, clock, n_threads: Optional[int] = None
            ) -> float:
    """Seconds per call of `inner` calls; inside thread_limits(n_threads) when given."""
    if n_threads is not None:
        with thread_limits(n_threads):
            return _sample(fn, inner, clock)
    t0 = clock()
    for _ in range(inner):
        fn()
    return (clock() - t0) / inner


def _inner(fn: Callable[[], object], clock, min_time: float, n_threads=None) -> int:
    if min_time <= 0:
        return 1
    one = _sample(fn, 1, clock, n_threads)
    return max(1, int(min_time / max(one, 1e-9)))


def paired(candidate: Callable[[], object], baseline: Callable[[], object], repeats: int,
           clock: str = "thread_cpu", min_time: float = 0.0,
           thread_counts: tuple[Optional[int], Optional[int]] = (None, None)) -> dict:
    """Time candidate and baseline interleaved (module docstring); one warm-up call each.
    thread_counts: (candidate's, baseline's) Numba/BLAS thread limits per sample (None: as set).

    Returns {"ours_s", "baseline_s", "ratio", "ratio_p25", "ratio_p75", "repeats", "clock"}."""
    if repeats < 1:
        raise ValueError(f"repeats: expected a positive int, got {repeats!r}")
    tick = CLOCKS[clock]
    tc, tb = thread_counts
    _sample(candidate, 1, tick, tc)
    _sample(baseline, 1, tick, tb)
    ni, nb = _inner(candidate, tick, min_time, tc), _inner(baseline, tick, min_time, tb)
    ours, base = [], []
    for r in range(repeats):
        if r % 2:
            b = _sample(baseline, nb, tick, tb)
            c = _sample(candidate, ni, tick, tc)
        else:
            c = _sample(candidate, ni, tick, tc)
            b = _sample(baseline, nb, tick, tb)
        ours.append(c)
        base.append(b)
    ratios = np.array(ours) / np.maximum(np.array(base), 1e-12)
    p25, p50, p75 = np.percentile(ratios, [25, 50, 75])
    return {"ours_s": float(np.median(ours)), "baseline_s": float(np.median(base)),
            "ratio": float(p50), "ratio_p25": float(p25), "ratio_p75": float(p75),
            "repeats": repeats, "clock": clock}


def paired_threads(fn: Callable[[], object], repeats: int, many: int = 2,
                   min_time: float = 0.0) -> dict:
    """fn with `many` Numba/BLAS threads (candidate) against fn with one (baseline), wall clock,
    interleaved; ratio = time(many) / time(one) (the speed-up is 1 / ratio)."""
    return paired(fn, fn, repeats, "wall", min_time, (many, 1))
