"""`intsim bench`: the speed suites, as ratios to baselines measured in the same run."""
from __future__ import annotations

import argparse
from pathlib import Path

from intsim.cli.common import error
from intsim.experiments import bench

DESCRIPTION = ("Time intsim's kernels, FCNet and ResNet-32 training steps and a CIL run against "
               "a baseline measured in the same run (float32 BLAS on the same shapes, a copy of "
               "the same array, np.round, the fp32 step, the convolutions' sgemms). Candidate "
               "and baseline are interleaved per repeat; each case prints the median seconds, "
               "the median of the paired ratios ours / baseline and their 25th-75th percentile "
               "spread. Cases ending in /t1 run on one Numba and BLAS thread in thread CPU time, "
               "/t2 on two threads on the wall clock. The header names the int_matmul kernel "
               "path and the machine load.")


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="speed of kernels and training steps vs a baseline",
                              description=DESCRIPTION)
    p.add_argument("--json", metavar="PATH", help="also write the records as JSON here")
    p.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    p.add_argument("--only", nargs="+", metavar="SUITE", choices=list(bench.SUITES),
                   help="run only these suites")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.json:                      # before minutes of timing, not after
        target = Path(args.json)
        if target.is_dir():
            return error("bench", f"--json: {target} is a folder; give a file name")
        parent = next((p for p in target.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            return error("bench", f"--json: {parent} is not a folder")
    records = bench.run(quick=args.quick, only=args.only, json_path=args.json)
    print(bench.format_table(records))
    return 0
