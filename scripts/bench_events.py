#!/usr/bin/env python
"""Cost of the per-event overflow log (`Trace(events=N)`, `--events N`).

    python scripts/bench_events.py [--repeats 15] [--cil] [--json bench_events.json]

Matmul cases: int_matmul of int4 codes through an 8-bit saturating register (tile 32, 32-bit
tile-sum register), traced; baseline the same call traced without an event log; the two are
timed alternately (interleaved) in thread CPU time on one Numba thread, and the ratio is the
median of the paired ratios. Operands: `random` (uniform codes: few events), `biased` (mostly
positive products: many events), `all_max` (every MAC after the third saturates: the worst
case). --cil also times a whole `intsim cil` run (synthetic data, iCaRL, hdqt, every step
traced) with --events 1000000 against the same run without, wall time, alternated.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import numba
import numpy as np

from intsim import Accumulator, Trace, int_matmul

SHAPES = [(128, 405, 405), (1024, 144, 32)]


def operands(kind: str, M: int, K: int, N: int, rng):
    if kind == "random":
        return (rng.integers(-7, 8, (M, K)).astype(np.int8),
                rng.integers(-7, 8, (K, N)).astype(np.int8))
    if kind == "biased":
        return (rng.integers(0, 8, (M, K)).astype(np.int8),
                rng.integers(-2, 8, (K, N)).astype(np.int8))
    return np.full((M, K), 7, np.int8), np.full((K, N), 7, np.int8)


def paired(fn_a, fn_b, repeats: int) -> tuple[float, float, float]:
    """(median seconds of a, of b, median of the paired ratios b/a), thread CPU time."""
    fn_a(), fn_b()
    ta, tb, ratios = [], [], []
    for i in range(repeats):
        order = (fn_a, fn_b) if i % 2 == 0 else (fn_b, fn_a)
        t = {}
        for fn in order:
            t0 = time.thread_time()
            fn()
            t[fn] = time.thread_time() - t0
        ta.append(t[fn_a])
        tb.append(t[fn_b])
        ratios.append(t[fn_b] / t[fn_a])
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)


def matmul_cases(repeats: int) -> list:
    acc = Accumulator(8, 32, "saturate", tile_sum_bits=32)
    rng = np.random.default_rng(0)
    rows = []
    for M, K, N in SHAPES:
        for kind in ("random", "biased", "all_max"):
            a, b = operands(kind, M, K, N, rng)
            probe = Trace(events=10 ** 9)
            int_matmul(a, b, acc, trace=probe, label="x/fwd")
            events = probe.records[-1]["events"]
            for limit in (10 ** 9, 10 ** 4):
                base, ours, ratio = paired(
                    lambda: int_matmul(a, b, acc, trace=Trace(), label="x/fwd"),
                    lambda: int_matmul(a, b, acc, trace=Trace(events=limit), label="x/fwd"),
                    repeats)
                rows.append(dict(case=f"matmul/{kind}/{M}x{K}x{N}", limit=limit,
                                 events=int(events), macs=M * K * N, traced_ms=1e3 * base,
                                 with_events_ms=1e3 * ours, ratio=ratio))
    return rows


def cil_case(repeats: int) -> dict:
    from intsim.cli import main
    runs = {}

    def run(events: int):
        out = tempfile.mkdtemp(prefix="bench-events-")
        t0 = time.perf_counter()
        main(["cil", "--dataset", "synthetic", "--method", "icarl", "--numerics", "hdqt",
              "--epochs", "3", "--trace-every", "1", "--events", str(events), "--out", out,
              "--quiet"])
        runs[events] = out
        return time.perf_counter() - t0
    base, ours, ratios = [], [], []
    run(0)
    for i in range(repeats):
        pair = (0, 10 ** 6) if i % 2 == 0 else (10 ** 6, 0)
        t = {e: run(e) for e in pair}
        base.append(t[0])
        ours.append(t[10 ** 6])
        ratios.append(t[10 ** 6] / t[0])
    from intsim.core.trace import read_events
    logged = len(read_events(f"{runs[10 ** 6]}/trace.h5"))
    return dict(case="cil/synthetic/icarl/hdqt/every1", events=logged, traced_s=statistics.median(base),
                with_events_s=statistics.median(ours), ratio=statistics.median(ratios))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--cil", action="store_true", help="also time a whole CIL run")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    numba.set_num_threads(1)
    rows = matmul_cases(args.repeats)
    for r in rows:
        print(f"{r['case']:32s} limit {r['limit']:.0e} events {r['events']:9d} / {r['macs']:9d} "
              f"MACs   traced "
              f"{r['traced_ms']:8.2f} ms   + event log {r['with_events_ms']:8.2f} ms   "
              f"ratio {r['ratio']:6.2f}")
    if args.cil:
        c = cil_case(max(3, args.repeats // 5))
        rows.append(c)
        print(f"{c['case']:32s} events {c['events']:9d} logged   traced {c['traced_s']:.2f} s"
              f"   + event log {c['with_events_s']:.2f} s   ratio {c['ratio']:.3f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
