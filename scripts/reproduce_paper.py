#!/usr/bin/env python
"""Reproduce the paper's HAR protocol and print our numbers beside the paper's.

    python scripts/reproduce_paper.py --data-dir ~/data/dsads --dataset dsads

FCNet (in→in→in), 100 epochs per task, SGD lr 0.01 (momentum 0.9, wd 2e-4), batch 128,
memory 200, 2 classes first and per task, the subject split of hdqt.md — i.e. the defaults of
`intsim cil` for these data sets — for each method, numerics preset and seed. Each run is an
`intsim cil` run folder under --out; finished runs (metrics.json present) are reused and
killed ones resume from their checkpoint, so the script can be rerun after an interruption.
The paper's numbers are average incremental accuracy (CNN classifier), mean over 20 seeds.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# hdqt.md "Paper results": (dataset, method) → (FP32, HDQT 4-bit / 8-bit acc), AIA in %
PAPER_AIA = {("dsads", "icarl"): (83.99, 83.63), ("pamap2", "icarl"): (87.14, 87.01),
             ("hapt", "icarl"): (89.94, 88.94), ("dsads", "bic"): (82.94, 80.72),
             ("dsads", "lwf"): (34.30, 35.37)}
PAPER_NUMERICS = {"fp32": 0, "hdqt": 1, "hdqt_paper": 1}


def run_one(dataset, data_dir, method, numerics, seed, epochs, out_root, quiet=True) -> dict:
    from intsim.cil import run
    from intsim.cil import resolve_config
    out = Path(out_root) / f"{dataset}-{method}-{numerics}-seed{seed}"
    if (out / "metrics.json").exists():
        return json.loads((out / "metrics.json").read_text())
    cfg = resolve_config(dict(dataset=dataset, data_dir=data_dir, method=method,
                              numerics=numerics, seed=seed, epochs=epochs, out=str(out)))
    resume = (out / "config.json").exists()
    return run(cfg, resume=resume, quiet=quiet)


def table(rows: list[dict]) -> str:
    head = (f"{'dataset':8s} {'method':7s} {'numerics':10s} {'seeds':>5s} "
            f"{'AIA (ours)':>15s} {'last (ours)':>15s} {'AIA (paper)':>12s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        paper = PAPER_AIA.get((r["dataset"], r["method"]))
        p = (f"{paper[PAPER_NUMERICS[r['numerics']]]:12.2f}"
             if paper and r["numerics"] in PAPER_NUMERICS else f"{'—':>12s}")
        lines.append(f"{r['dataset']:8s} {r['method']:7s} {r['numerics']:10s} {r['n']:5d} "
                     f"{r['aia']:>15s} {r['last']:>15s} {p}")
    return "\n".join(lines)


def mean_std(values) -> str:
    v = np.asarray(values, float)
    sd = v.std(ddof=1) if len(v) > 1 else 0.0
    return f"{v.mean():6.2f} ± {sd:5.2f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="folder of the downloaded data set "
                   "(raw layout or the paper's feature table; see the README)")
    p.add_argument("--dataset", required=True, choices=["dsads", "pamap2", "hapt"])
    p.add_argument("--methods", nargs="+", default=None,
                   help="default: the methods the paper reports for this data set")
    p.add_argument("--numerics", nargs="+", default=["fp32", "hdqt"],
                   choices=["fp32", "int4", "luq", "hdqt_paper", "hdqt"])
    p.add_argument("--seeds", type=int, default=20, help="seeds 0 … N-1 (paper: 20)")
    p.add_argument("--epochs", type=int, default=100, help="epochs per task (paper: 100)")
    p.add_argument("--out", default="runs/reproduce", help="root folder of the run folders")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    methods = args.methods or sorted({m for d, m in PAPER_AIA if d == args.dataset})
    rows = []
    try:
        for method in methods:
            for numerics in args.numerics:
                ms = [run_one(args.dataset, args.data_dir, method, numerics, s, args.epochs,
                              args.out, args.quiet) for s in range(args.seeds)]
                rows.append(dict(dataset=args.dataset, method=method, numerics=numerics,
                                 n=len(ms), aia=mean_std([m["aia"] for m in ms]),
                                 last=mean_std([m["last"] for m in ms])))
    except (ValueError, FileNotFoundError) as err:
        print(f"reproduce_paper: error: {err}", file=sys.stderr)
        return 2
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
