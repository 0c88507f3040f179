"""The per-event overflow log: where each saturation, wrap, clamp and tile-sum event happened.

Opt-in through `Trace(events=N)`: after a traced int_matmul whose counts show events, the
accumulator's wrapper replays the call's affected outputs with kernels.events.locate_events
(a separate kernel: the fast path is untouched) and the trace keeps, for every event,

    step, label ("layer/kind"), event, group, m, n, tile, k, value, register

`event` is mac_saturate | mac_wrap (a MAC's sum left the register range), tile_clamp (a
clamp_tile register's exact tile sum was clamped) or tile_sum_saturate | tile_sum_wrap (the
tile-sum register overflowed); `group` is the index over a's leading dimensions (the group of a
grouped operand, the batch pair of a batched product), (m, n) the output within the group, k
the reduction index (the tile's last k for tile-level events), `value` the exact sum before the
limit and `register` the value after it. For quantizers the trace keeps the elements clamped at
the code bounds (v = fl32(x/scale) of the unclamped input outside [qmin, qmax], the
`clipped_fraction` of NUMERICS.md §2.2):

    step, label ("layer/kind/letter"), index (flat, C order over all groups), v, code

At most N events are kept over the trace's life (matmul and quantizer events together, in
call order); the per-call counts of the ordinary records stay exact, so
`events − logged` tells how many were not logged.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from intsim.core.modes import AccMode
from intsim.kernels import accumulate as _acc
from intsim.kernels.events import MAC, TILE_CLAMP, TILE_SUM, locate_events

MATMUL_EVENT_COLUMNS = ("step", "label", "event", "group", "m", "n", "tile", "k", "value",
                        "register")
QUANT_EVENT_COLUMNS = ("step", "label", "index", "v", "code")


def check_event_limit(events) -> int:
    """The event limit of Trace(events=…): None or 0 = off, else a positive int."""
    if events is None:
        return 0
    if isinstance(events, bool) or not isinstance(events, (int, np.integer)) or events < 0:
        raise ValueError(f"events: expected None or a non-negative int (the most events to "
                         f"log), got {events!r}")
    return int(events)


def event_name(kind: int, mode: AccMode) -> str:
    if kind == MAC:
        return "mac_wrap" if mode == AccMode.WRAP else "mac_saturate"
    if kind == TILE_CLAMP:
        return "tile_clamp"
    return "tile_sum_wrap" if mode == AccMode.WRAP else "tile_sum_saturate"


def _locate_2d(acc, a2: np.ndarray, b: np.ndarray, counts: np.ndarray, limit: int
               ) -> np.ndarray:
    """(n, 7) event rows of a2 (rows, K) · b (K, N) for the outputs with counts > 0 (the
    number of events of each output)."""
    rows, cols = np.nonzero(counts)
    out = np.empty((max(0, min(limit, int(counts.sum()))), 7), np.int64)
    if not len(rows) or not len(out):
        return out[:0]
    lo, hi = acc.range
    ts_mode = (_acc.TS_NONE if acc.tile_sum_bits is None
               else _acc.TS_WRAP if acc.mode == AccMode.WRAP else _acc.TS_SATURATE)
    ts_lo, ts_hi = acc.tile_sum_range or (0, 0)
    K = a2.shape[1]
    n = locate_events(np.ascontiguousarray(a2, np.int64), np.ascontiguousarray(b.T, np.int64),
                      rows.astype(np.int64), cols.astype(np.int64), acc.tile_for(K),
                      acc.mode.code, lo, hi, acc.bits, ts_mode, ts_lo, ts_hi,
                      acc.tile_sum_bits or 64, out)
    return out[:n]


def matmul_events(acc, a: np.ndarray, b: np.ndarray, events: np.ndarray,
                  ts_events: np.ndarray, limit: int) -> dict:
    """Columns (event names, group, m, n, tile, k, value, register) of at most `limit` events
    of one int_matmul call: a (..., M, K) · b (K, N), or a (P, M, K) · b (P, K, N) batched;
    events / ts_events the call's per-output counts, shape (rows over all of a's leading
    dims · M, N)."""
    counts = events.astype(np.int64) + ts_events
    M, K = a.shape[-2], a.shape[-1]
    parts = []
    if b.ndim == 3:
        for p in range(b.shape[0]):
            if limit - sum(len(x) for x in parts) <= 0:
                break
            ev = _locate_2d(acc, a[p], b[p], counts[p * M:(p + 1) * M],
                            limit - sum(len(x) for x in parts))
            ev[:, 1] += p * M
            parts.append(ev)
    else:
        parts.append(_locate_2d(acc, a.reshape(-1, K), b, counts, limit))
    ev = np.concatenate(parts) if parts else np.empty((0, 7), np.int64)
    names = np.array([event_name(k, acc.mode) for k in (MAC, TILE_CLAMP, TILE_SUM)],
                     dtype=object)[ev[:, 0]]                     # shared str objects: fast
    return dict(event=names, group=ev[:, 1] // M, m=ev[:, 1] % M, n=ev[:, 2], tile=ev[:, 3],
                k=ev[:, 4], value=ev[:, 5], register=ev[:, 6])


def quantize_events(v: np.ndarray, codes: np.ndarray, qmin: int, qmax: int, limit: int
                    ) -> Optional[dict]:
    """Columns (index, v, code) of at most `limit` elements whose v lies outside
    [qmin, qmax] (clamped at a code bound); None when there is none."""
    v = np.asarray(v, np.float32).reshape(-1)
    idx = np.flatnonzero((v > qmax) | (v < qmin))[:limit]
    if not idx.size:
        return None
    return dict(index=idx.astype(np.int64), v=v[idx],
                code=np.asarray(codes).reshape(-1)[idx].astype(np.int64))


__all__ = ["MATMUL_EVENT_COLUMNS", "QUANT_EVENT_COLUMNS", "check_event_limit", "event_name",
           "matmul_events", "quantize_events", "MAC", "TILE_CLAMP", "TILE_SUM"]
