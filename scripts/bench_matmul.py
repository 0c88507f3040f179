"""Speed of intsim.int_matmul against float32 BLAS on the same shapes, robust on a shared machine.

    python scripts/bench_matmul.py [--quick] [--threads 1 2] [--json PATH] [--generic]

Cases: mode × shape × operand kind, 8-bit register, tile 32 (int4 codes: `signed` a, b in
[-7, 7]; `full` a, b in [-8, 7]; `unsigned` a in [0, 15] × b in [-7, 7]).

Method: every case runs in a child process started with NUMBA_NUM_THREADS and
OPENBLAS_NUM_THREADS set to the thread count (so neither library starts helper threads that a
single-threaded measurement would not see). Candidate and baseline alternate within each
repeat (the order flips every repeat); a repeat times enough calls to last ~5 ms each; the
reported ratio is the median over repeats of the per-repeat ratio intsim / baseline, with the
25th–75th percentile range. One thread: thread CPU time (time.thread_time), which a busy
machine does not inflate by waiting for the CPU. Two threads: wall-clock time (the helper
thread's work is not in the calling thread's CPU time); the `speedup` cases compare intsim
with one and two Numba threads (numba.set_num_threads) in the same process, ratio =
t(1 thread) / t(2 threads).

--generic runs the children with INTSIM_KERNELS=generic (the portable kernel).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

MODES = ["saturate", "clamp_tile", "wrap", "exact"]
SHAPES = [(128, 405, 405), (128, 561, 561), (1024, 144, 32)]
KINDS = ["signed", "full", "unsigned"]

CHILD = r"""
import json, sys, time
import numpy as np
import numba
import intsim

spec = json.loads(sys.argv[1])
mode, (M, K, N), kind, threads, reps = spec["mode"], spec["shape"], spec["kind"], spec["threads"], spec["reps"]
rng = np.random.default_rng(0)
if kind == "signed":
    a = rng.integers(-7, 8, (M, K)).astype(np.int8); b = rng.integers(-7, 8, (K, N)).astype(np.int8)
elif kind == "full":
    a = rng.integers(-8, 8, (M, K)).astype(np.int8); b = rng.integers(-8, 8, (K, N)).astype(np.int8)
else:
    a = rng.integers(0, 16, (M, K)).astype(np.uint8); b = rng.integers(-7, 8, (K, N)).astype(np.int8)
af, bf = a.astype(np.float32), b.astype(np.float32)
acc = intsim.Accumulator(8, 32, mode)
clock = time.thread_time if threads == 1 else time.perf_counter

def ours():
    return intsim.int_matmul(a, b, acc)

def base():
    return af @ bf

def one(fn, inner):
    t0 = clock()
    for _ in range(inner):
        fn()
    return (clock() - t0) / inner

def calls(fn):
    fn(); fn()
    return max(1, int(0.005 / max(one(fn, 3), 1e-7)))

def paired(f, g):
    nf, ng = calls(f), calls(g)
    ratios, tf, tg = [], [], []
    for r in range(reps):
        if r % 2:
            x = one(f, nf); y = one(g, ng)
        else:
            y = one(g, ng); x = one(f, nf)
        ratios.append(x / y); tf.append(x); tg.append(y)
    return ratios, tf, tg

if spec["what"] == "speedup":
    def one_thread():
        numba.set_num_threads(1)
        ours()
    def two_threads():
        numba.set_num_threads(threads)
        ours()
    ratios, t1, t2 = paired(one_thread, two_threads)
    res = dict(ours_s=float(np.median(t2)), baseline_s=float(np.median(t1)))
else:
    ratios, t1, t2 = paired(ours, base)
    res = dict(ours_s=float(np.median(t1)), baseline_s=float(np.median(t2)))
q = np.percentile(ratios, [25, 50, 75])
res.update(ratio=float(q[1]), q25=float(q[0]), q75=float(q[2]))
print(json.dumps(res))
"""


def run_case(what, mode, shape, kind, threads, reps, generic):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               OMP_NUM_THREADS=str(threads))
    if generic:
        env["INTSIM_KERNELS"] = "generic"
    spec = dict(what=what, mode=mode, shape=list(shape), kind=kind, threads=threads, reps=reps)
    res = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], env=env,
                         capture_output=True, text=True, check=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    label = "speedup" if what == "speedup" else mode
    out.update(case=f"matmul/{label}/{'x'.join(map(str, shape))}/{kind}/{threads}t",
               threads=threads)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer cases and repeats")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=None, help="paired repeats per case")
    ap.add_argument("--generic", action="store_true", help="INTSIM_KERNELS=generic")
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args(argv)
    reps = args.reps or (9 if args.quick else 25)
    cases = []
    for threads in args.threads:
        if threads == 1:
            for mode in MODES:
                for shape in SHAPES:
                    for kind in (["signed"] if args.quick or mode != "saturate" else KINDS):
                        cases.append(("ratio", mode, shape, kind, 1))
        else:
            for mode in (["saturate"] if args.quick else ["saturate", "clamp_tile"]):
                cases.append(("ratio", mode, (128, 561, 561), "signed", threads))
                cases.append(("speedup", mode, (128, 561, 561), "signed", threads))
    results = []
    print(f"{'case':44s} {'intsim':>10s} {'baseline':>10s} {'ratio':>6s}  (25-75%)")
    for what, mode, shape, kind, threads in cases:
        r = run_case(what, mode, shape, kind, threads, reps, args.generic)
        results.append(r)
        print(f"{r['case']:44s} {r['ours_s'] * 1e3:8.3f}ms {r['baseline_s'] * 1e3:8.3f}ms "
              f"{r['ratio']:6.2f}  ({r['q25']:.2f}-{r['q75']:.2f})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
