"""`intsim bench`: speed of the kernels, a training step and a CIL run, as ratios to a
baseline measured in the same run (median seconds over repeats; ratio = ours / baseline).

Cases: matmul/{mode}/MxKxN (int4 codes, 8-bit accumulator, tile 32; baseline float32 a @ b),
fwht/NxROWS (int32; baseline float32 product with the dense Hadamard matrix),
quantize_sr/128x4096 (baseline np.round), train_step/fcnet405/{preset} (one SGD step of
FCNet 405→405→405 + 19-class head, batch 128; baseline the fp32 step),
cil/dsads_synthetic/icarl/{preset} (seconds per epoch of the paper's HAR protocol on a
synthetic DSADS-shaped table, first 2 tasks; baseline the fp32 epoch; also the projected
time of the full 10-task, 100-epoch run), trace/dsads_synthetic/icarl/hdqt/every{N} (a whole
hdqt CIL run tracing every N-th step into trace.h5; baseline the same run untraced).
"""
from __future__ import annotations

import json
import tempfile
import time
from functools import partial
from typing import Callable

import numpy as np

from intsim.core.accumulator import Accumulator, int_matmul
from intsim.core.hadamard import fwht, hadamard_matrix
from intsim.core.presets import preset
from intsim.core.quantizer import quantize
from intsim.core.rng import SRStream
from intsim.experiments.cil_run import CILRun, run as run_cil
from intsim.experiments.config import resolve_config
from intsim.formats.atomic import atomic_write_text
from intsim.models.learners.base import Callbacks
from intsim.models.networks import FCNet, IncrementalNet
from intsim.nn.optim import SGD
from intsim.nn.training import loss_step, sgd_step

MATMUL_CASES = [("saturate", 128, 405, 405), ("clamp_tile", 128, 405, 405),
                ("saturate", 128, 561, 561), ("saturate", 1024, 144, 32)]
FWHT_SIZES = [64, 512, 4096]
FWHT_ROWS = 128
TRAIN_PRESETS = ["fp32", "hdqt_paper", "hdqt"]


def median_seconds(fn: Callable[[], object], repeats: int, min_time: float = 0.0) -> float:
    """Median wall time of fn() over `repeats` calls (after one warm-up call).

    Very short calls are batched so each sample lasts at least `min_time` seconds.
    """
    fn()
    inner = 1
    if min_time > 0:
        t0 = time.perf_counter()
        fn()
        one = time.perf_counter() - t0
        inner = max(1, int(min_time / max(one, 1e-9)))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return float(np.median(samples))


def _record(case: str, ours: float, base: float, **extra) -> dict:
    return {"case": case, "ours_s": ours, "baseline_s": base, "ratio": ours / base, **extra}


def bench_matmul(repeats: int) -> list[dict]:
    out = []
    rng = np.random.default_rng(0)
    for mode, M, K, N in MATMUL_CASES:
        a = rng.integers(-7, 8, (M, K)).astype(np.int8)
        b = rng.integers(-7, 8, (K, N)).astype(np.int8)
        af, bf = a.astype(np.float32), b.astype(np.float32)
        acc = Accumulator(bits=8, tile=32, mode=mode)
        ours = median_seconds(lambda: int_matmul(a, b, acc), repeats, 0.02)
        base = median_seconds(lambda: af @ bf, repeats, 0.02)
        out.append(_record(f"matmul/{mode}/{M}x{K}x{N}", ours, base))
    return out


def bench_fwht(repeats: int) -> list[dict]:
    out = []
    rng = np.random.default_rng(1)
    for n in FWHT_SIZES:
        x = rng.integers(-8, 8, (FWHT_ROWS, n)).astype(np.int32)
        Hm = hadamard_matrix(n).astype(np.float32)
        xf = x.astype(np.float32)
        ours = median_seconds(lambda: fwht(x), repeats, 0.02)
        base = median_seconds(lambda: xf @ Hm, repeats, 0.02)
        stages = FWHT_ROWS * n * int(np.log2(n))
        out.append(_record(f"fwht/{n}x{FWHT_ROWS}", ours, base,
                           element_stages_per_s=stages / ours))
    return out


def bench_quantize(repeats: int) -> list[dict]:
    x = np.random.default_rng(2).standard_normal((128, 4096)).astype(np.float32)
    s = SRStream(0)
    ours = median_seconds(lambda: quantize(x, 4, rounding="stochastic", rng=s), repeats, 0.02)
    base = median_seconds(lambda: np.round(x), repeats, 0.02)
    return [_record("quantize_sr/128x4096", ours, base)]


def _fcnet_step(preset_name: str):
    """One SGD step of FCNet 405→405→405 + 19-class head, batch 128, as a closure."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (128, 405)).astype(np.float32)
    y = rng.integers(0, 19, 128)
    net = IncrementalNet(FCNet(405, 405, 405, seed=0), 19)
    net.set_numerics(preset(preset_name))
    net.set_rng(SRStream(0))
    opt = SGD(net, lr=0.01, momentum=0.9, weight_decay=2e-4)

    return partial(sgd_step, opt, partial(loss_step, net), x, y)


def bench_train_step(repeats: int) -> list[dict]:
    times = {p: median_seconds(_fcnet_step(p), repeats) for p in TRAIN_PRESETS}
    return [_record(f"train_step/fcnet405/{p}", t, times["fp32"]) for p, t in times.items()]


CIL_PRESETS = ["fp32", "hdqt_paper", "hdqt"]
CIL_TASKS = 2
PAPER_TASKS, PAPER_EPOCHS = 10, 100


def time_cil_tasks(numerics: str, epochs: int, tasks: int = CIL_TASKS,
                   dataset: str = "dsads_synthetic", method: str = "icarl") -> dict:
    """Train the first `tasks` tasks of the paper's HAR protocol; time epochs and the rest.

    Returns seconds per epoch (median over all epochs), seconds of per-task work outside the
    epochs (herding, evaluation; mean), and the projected time of the full 10-task,
    100-epoch run = 10 · (100 · epoch + per-task).
    """
    class Clock(Callbacks):
        def __init__(self):
            self.last = None
            self.epochs = []

        def stage(self, learner, t, name, n):
            self.last = time.perf_counter()

        def epoch_end(self, learner, t, epoch, mean_loss):
            now = time.perf_counter()
            self.epochs.append(now - self.last)
            self.last = now

    with tempfile.TemporaryDirectory() as out:
        cfg = resolve_config(dict(dataset=dataset, method=method, numerics=numerics,
                                  epochs=epochs, out=out, trace_every=0))
        run = CILRun.prepare(cfg)
        clock = Clock()
        per_task = []
        for t in range(tasks):
            t0 = time.perf_counter()
            run.learner.learn_task(t, clock)
            run.learner.evaluate(t)
            per_task.append(time.perf_counter() - t0)
    epoch_s = float(np.median(clock.epochs))
    overhead = float(np.mean(per_task)) - epochs * float(np.mean(clock.epochs))
    return {"epoch_s": epoch_s, "task_overhead_s": max(overhead, 0.0),
            "projected_full_run_s": PAPER_TASKS * (PAPER_EPOCHS * epoch_s + max(overhead, 0.0))}


def bench_cil(repeats: int) -> list[dict]:
    epochs = 3 if repeats < 10 else 6
    times = {p: time_cil_tasks(p, epochs) for p in CIL_PRESETS}
    base = times["fp32"]["epoch_s"]
    return [_record(f"cil/dsads_synthetic/icarl/{p}", t["epoch_s"], base,
                    projected_full_run_s=t["projected_full_run_s"],
                    task_overhead_s=t["task_overhead_s"]) for p, t in times.items()]


TRACE_EVERY = [20, 10, 1]


def time_cil_run(numerics: str, epochs: int, trace_every: int,
                 dataset: str = "dsads_synthetic", method: str = "icarl") -> float:
    """Wall seconds of a whole `intsim cil` run (all tasks, writing trace.h5 and plots)."""
    with tempfile.TemporaryDirectory() as out:
        cfg = resolve_config(dict(dataset=dataset, method=method, numerics=numerics,
                                  epochs=epochs, out=out, trace_every=trace_every))
        t0 = time.perf_counter()
        run_cil(cfg)
        return time.perf_counter() - t0


def bench_trace(repeats: int) -> list[dict]:
    """Cost of tracing every N-th training step (and writing trace.h5) in a CIL run."""
    epochs = 2 if repeats < 10 else 5
    n = 1 if repeats < 10 else 3
    base = float(np.median([time_cil_run("hdqt", epochs, 0) for _ in range(n)]))
    return [_record(f"trace/dsads_synthetic/icarl/hdqt/every{k}",
                    float(np.median([time_cil_run("hdqt", epochs, k) for _ in range(n)])), base)
            for k in TRACE_EVERY]


SUITES = {"matmul": bench_matmul, "fwht": bench_fwht, "quantize": bench_quantize,
          "train_step": bench_train_step, "cil": bench_cil, "trace": bench_trace}


def run(quick: bool = False, only: list[str] | None = None,
        json_path: str | None = None) -> list[dict]:
    """Run the suites (all, or those named in `only`); optionally write the records as JSON.
    Returns the records (format_table renders them)."""
    repeats = 5 if quick else 25
    records = []
    for name, fn in SUITES.items():
        if only and name not in only:
            continue
        records.extend(fn(repeats))
    if json_path:
        atomic_write_text(json_path, json.dumps(records, indent=2))
    return records


def format_table(records: list[dict]) -> str:
    lines = [f"{'case':36s} {'ours (ms)':>11s} {'baseline (ms)':>14s} {'ratio':>7s}"]
    for r in records:
        line = (f"{r['case']:36s} {r['ours_s'] * 1e3:11.3f} {r['baseline_s'] * 1e3:14.3f} "
                f"{r['ratio']:7.2f}")
        if "element_stages_per_s" in r:
            line += f"   {r['element_stages_per_s'] / 1e9:.2f} G element·stages/s"
        if "projected_full_run_s" in r:
            line += (f"   per epoch; full 10-task 100-epoch run ≈ "
                     f"{r['projected_full_run_s'] / 60:.1f} min")
        lines.append(line)
    return "\n".join(lines)
