"""`intsim bench`: speed of the kernels, training steps and a CIL run, as ratios to a
baseline measured in the same run (ratio = ours / baseline).

Timing (experiments.bench_timing): candidate and baseline interleaved per repeat; a case
reports the median of the paired ratios and their 25th-75th percentile spread, and the median
seconds of each side. Cases ending in /t1 run with Numba and BLAS limited to one thread and are
timed in thread CPU time; /t2 cases run with two threads on the wall clock. Every record names
the int_matmul kernel path that ran (core.accumulator.kernel_path).

Cases: matmul/{mode}/MxKxN[/operands]/t{1,2} (int4 codes, 8-bit accumulator, tile 32; baseline
float32 a @ b with the same thread count); threads/matmul/saturate/128x561x561 (two threads
against one, wall clock; speed-up = 1 / ratio); fwht/NxROWS/{dtype} (baseline a copy of the
same array); quantize_sr/128x4096 (baseline np.round); train_step/fcnet405/{preset} (one SGD
step of FCNet 405→405→405 + 19-class head, batch 128; baseline the fp32 step);
conv/resnet32/b32/fp32 (one fp32 SGD step of ResNet-32 on 32×32 inputs, batch 32; baseline
the float32 GEMMs of its convolutions on the same im2col shapes — `flop_share` = the step's
convolution FLOP rate over sgemm's), train_step/resnet32/b32/{preset} (baseline the fp32
step); cil/dsads_synthetic/icarl/{preset} (seconds per epoch of the paper's HAR protocol on a
synthetic DSADS-shaped table, first 2 tasks; baseline the fp32 epoch; also the projected time
of the full 10-task, 100-epoch run), trace/dsads_synthetic/icarl/hdqt/every{N} (a whole hdqt
CIL run tracing every N-th step into trace.h5; baseline the same run untraced). The ResNet-32
records also carry the projected time of one CIFAR-100 iCaRL task (cifar_task_s).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from functools import partial
from typing import Callable

import numpy as np

from intsim.core.accumulator import Accumulator, int_matmul, kernel_path
from intsim.core.hadamard import fwht
from intsim.core.presets import preset
from intsim.core.quantizer import quantize
from intsim.core.rng import SRStream
from intsim.experiments.bench_timing import paired, paired_threads, threads
from intsim.experiments.cil_run import CILRun, run as run_cil
from intsim.experiments.config import resolve_config
from intsim.formats.atomic import atomic_write_text
from intsim.models.learners.base import Callbacks
from intsim.models.networks import FCNet, IncrementalNet, resnet32
from intsim.nn.conv import Conv2d
from intsim.nn.optim import SGD
from intsim.nn.training import loss_step, sgd_step

#: (mode, M, K, N, operands): operands "s4" = signed codes in [-7, 7], "u4" = unsigned
#: activations in [0, 15] times signed weights, "f4" = the full signed range [-8, 7]
MATMUL_CASES = [("saturate", 128, 405, 405, "s4"), ("saturate", 128, 405, 405, "u4"),
                ("saturate", 128, 405, 405, "f4"), ("saturate", 128, 561, 561, "s4"),
                ("saturate", 1024, 144, 32, "s4"), ("clamp_tile", 128, 405, 405, "s4"),
                ("wrap", 128, 405, 405, "s4"), ("exact", 128, 405, 405, "s4")]
TWO_THREAD_CASES = [("saturate", 128, 561, 561, "s4")]
OPERANDS = {"s4": ((-7, 8), (-7, 8)), "u4": ((0, 16), (-7, 8)), "f4": ((-8, 8), (-8, 8))}
FWHT_SIZES = [(64, "int32"), (512, "int32"), (4096, "int32"), (4096, "float32")]
FWHT_ROWS = 128
TRAIN_PRESETS = ["hdqt_paper", "hdqt"]
CONV_BATCH, CONV_PRESETS = 32, ["hdqt"]
#: one CIFAR-100 iCaRL task (README defaults): 170 epochs over 20 classes × 500 images, plus
#: the 2000 exemplars from the second task on
CIFAR_EPOCHS, CIFAR_TASK_IMAGES = 170, 20 * 500 + 2000


def _record(case: str, timing: dict, **extra) -> dict:
    """One case: its timing (bench_timing.paired), the kernel path, the 1-minute load."""
    return {"case": case, **timing, "kernel_path": kernel_path(),
            "load_1min": os.getloadavg()[0], **extra}


def _unpaired(ours: float, base: float) -> dict:
    """Timing fields of a case measured as whole runs (not paired repeats), wall clock."""
    return {"ours_s": ours, "baseline_s": base, "ratio": ours / base, "clock": "wall"}


def _operands(M: int, K: int, N: int, kind: str, seed: int = 0):
    (alo, ahi), (blo, bhi) = OPERANDS[kind]
    rng = np.random.default_rng(seed)
    a = rng.integers(alo, ahi, (M, K)).astype(np.int8)
    b = rng.integers(blo, bhi, (K, N)).astype(np.int8)
    return a, b


def _matmul_case(mode: str, M: int, K: int, N: int, kind: str, n_threads: int,
                 repeats: int) -> dict:
    a, b = _operands(M, K, N, kind)
    af, bf = a.astype(np.float32), b.astype(np.float32)
    acc = Accumulator(bits=8, tile=32, mode=mode)
    with threads(n_threads) as (nb, bl, clock):
        t = paired(lambda: int_matmul(a, b, acc), lambda: af @ bf, repeats, clock, 0.02)
    suffix = "" if kind == "s4" else f"/{kind}"
    return _record(f"matmul/{mode}/{M}x{K}x{N}{suffix}/t{n_threads}", t, numba_threads=nb,
                   blas_threads=bl)


def bench_matmul(repeats: int) -> list[dict]:
    out = [_matmul_case(*c, 1, repeats) for c in MATMUL_CASES]
    out += [_matmul_case(*c, 2, repeats) for c in TWO_THREAD_CASES]
    for mode, M, K, N, kind in TWO_THREAD_CASES:
        a, b = _operands(M, K, N, kind)
        acc = Accumulator(bits=8, tile=32, mode=mode)
        t = paired_threads(lambda: int_matmul(a, b, acc), repeats, 2, 0.02)
        out.append(_record(f"threads/matmul/{mode}/{M}x{K}x{N}", t, speedup=1 / t["ratio"]))
    return out


def bench_fwht(repeats: int) -> list[dict]:
    out = []
    rng = np.random.default_rng(1)
    for n, dtype in FWHT_SIZES:
        x = rng.integers(-8, 8, (FWHT_ROWS, n)).astype(dtype)
        with threads(1) as (_, _, clock):
            t = paired(lambda: fwht(x), x.copy, repeats, clock, 0.02)
        stages = FWHT_ROWS * n * int(np.log2(n))
        out.append(_record(f"fwht/{n}x{FWHT_ROWS}/{dtype}", t,
                           element_stages_per_s=stages / t["ours_s"]))
    return out


def bench_quantize(repeats: int) -> list[dict]:
    x = np.random.default_rng(2).standard_normal((128, 4096)).astype(np.float32)
    s = SRStream(0)
    with threads(1) as (_, _, clock):
        t = paired(lambda: quantize(x, 4, rounding="stochastic", rng=s), lambda: np.round(x),
                   repeats, clock, 0.02)
    return [_record("quantize_sr/128x4096", t)]


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
    out = []
    with threads(1) as (_, _, clock):
        for p in TRAIN_PRESETS:
            t = paired(_fcnet_step(p), _fcnet_step("fp32"), repeats, clock)
            out.append(_record(f"train_step/fcnet405/{p}", t))
    return out


def _resnet_step(preset_name: str, batch: int = CONV_BATCH):
    """(one SGD step of ResNet-32 + 20-class head on 32×32 inputs as a closure, the network)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 20, batch)
    net = IncrementalNet(resnet32(3, seed=0), 20)
    net.set_numerics(preset(preset_name))
    net.set_rng(SRStream(0))
    opt = SGD(net, lr=0.05, momentum=0.9, weight_decay=2e-4)
    return partial(sgd_step, opt, partial(loss_step, net), x, y), net


def conv_gemms(net) -> list[tuple[int, int, int]]:
    """(N, K, L) of every Conv2d of `net` after one forward pass: weight (N, K = Cin·k·k),
    im2col columns (K, L = batch · output positions). Each costs 3 GEMMs of 2·N·K·L FLOPs in a
    float step: y = W·cols, dW = dy·colsᵀ, dcols = Wᵀ·dy."""
    out = []
    for _, m in net.named_modules():
        if isinstance(m, Conv2d):
            B, C, H, W = m._cache["x_shape"]
            k, s, p = m.kernel_size, m.stride, m.padding
            Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
            out.append((m.out_channels, C * k * k, B * Ho * Wo))
    return out


def _sgemms(shapes: list[tuple[int, int, int]]) -> Callable[[], None]:
    """The float32 GEMMs of conv_gemms' shapes, operands laid out as the fp32 Conv2d has them."""
    rng = np.random.default_rng(5)
    ops = [tuple(rng.standard_normal(sh).astype(np.float32) for sh in ((N, K), (K, L), (N, L)))
           for N, K, L in shapes]

    def run():
        for w, cols, g in ops:
            w @ cols
            g @ cols.T
            w.T @ g
    return run


def bench_conv(repeats: int) -> list[dict]:
    n = max(3, repeats // 5)
    fp32, net = _resnet_step("fp32")
    fp32()
    shapes = conv_gemms(net)
    flops = sum(6 * N * K * L for N, K, L in shapes)
    out = []
    with threads(1) as (_, _, clock):
        t = paired(fp32, _sgemms(shapes), n, clock)
        out.append(_record(f"conv/resnet32/b{CONV_BATCH}/fp32", t, conv_flops=flops,
                           sgemm_gflops=flops / t["baseline_s"] / 1e9,
                           step_gflops=flops / t["ours_s"] / 1e9, flop_share=1 / t["ratio"],
                           cifar_task_s=_cifar_task_s(t["ours_s"])))
        for p in CONV_PRESETS:
            t = paired(_resnet_step(p)[0], fp32, n, clock)
            out.append(_record(f"train_step/resnet32/b{CONV_BATCH}/{p}", t,
                               cifar_task_s=_cifar_task_s(t["ours_s"])))
    return out


def _cifar_task_s(step_s: float) -> float:
    """Projected seconds of one CIFAR-100 iCaRL task from one batch-CONV_BATCH step (linear
    in the number of images; training steps only: no evaluation or herding)."""
    return CIFAR_EPOCHS * CIFAR_TASK_IMAGES / CONV_BATCH * step_s


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
    return [_record(f"cil/dsads_synthetic/icarl/{p}", _unpaired(t["epoch_s"], base),
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
    return [_record(f"trace/dsads_synthetic/icarl/hdqt/every{k}", _unpaired(
        float(np.median([time_cil_run("hdqt", epochs, k) for _ in range(n)])), base))
        for k in TRACE_EVERY]


SUITES = {"matmul": bench_matmul, "fwht": bench_fwht, "quantize": bench_quantize,
          "train_step": bench_train_step, "conv": bench_conv, "cil": bench_cil,
          "trace": bench_trace}


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
    """The records as a text table: header (kernel path, load), one line per case with the
    median seconds, the median paired ratio and its 25th-75th percentile spread."""
    paths = sorted({r.get("kernel_path", "?") for r in records})
    loads = [r["load_1min"] for r in records if "load_1min" in r]
    head = f"kernel path: {', '.join(paths)}"
    if loads:
        head += (f"; load average (1 min) {min(loads):.1f}–{max(loads):.1f} on "
                 f"{os.cpu_count()} cores")
    lines = [head, f"{'case':44s} {'ours (ms)':>10s} {'base (ms)':>10s} {'ratio':>6s} "
                   f"{'p25–p75':>11s} clock"]
    for r in records:
        spread = (f"{r['ratio_p25']:.2f}–{r['ratio_p75']:.2f}" if "ratio_p25" in r else "")
        line = (f"{r['case']:44s} {r['ours_s'] * 1e3:10.3f} {r['baseline_s'] * 1e3:10.3f} "
                f"{r['ratio']:6.2f} {spread:>11s} {r.get('clock', '')}")
        if "element_stages_per_s" in r:
            line += f"   {r['element_stages_per_s'] / 1e9:.2f} G element·stages/s"
        if "speedup" in r:
            line += f"   speed-up {r['speedup']:.2f}×"
        if "flop_share" in r:
            line += (f"   sgemm {r['sgemm_gflops']:.1f} GFLOP/s, step {r['step_gflops']:.1f} "
                     f"({r['flop_share'] * 100:.0f}%)")
        if "cifar_task_s" in r:
            line += f"   CIFAR-100 task ≈ {r['cifar_task_s'] / 3600:.1f} h"
        if "projected_full_run_s" in r:
            line += (f"   per epoch; full 10-task 100-epoch run ≈ "
                     f"{r['projected_full_run_s'] / 60:.1f} min")
        lines.append(line)
    return "\n".join(lines)
