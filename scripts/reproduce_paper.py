#!/usr/bin/env python
"""Reproduce the paper's HAR protocol and print our numbers beside the paper's.

    python scripts/reproduce_paper.py --data-dir ~/data/dsads --dataset dsads

FCNet (in→in→in), 100 epochs per task, SGD lr 0.01 (momentum 0.9, wd 2e-4), batch 128,
memory 200, 2 classes first and per task, the paper's subject split — i.e. the defaults of
`intsim cil` for these data sets — for each method, numerics preset and seed. Each run is an
`intsim cil` run folder under --out; finished runs (metrics.json present) are reused and
killed ones resume from their checkpoint, so the script can be rerun after an interruption.
The paper's numbers are average incremental accuracy (CNN classifier), mean over 20 seeds.

    python scripts/reproduce_paper.py --data-dir ~/data/dsads --dataset dsads --sweep

--sweep runs the same grid (data set × methods × numerics × seeds) through `intsim sweep`
(intsim.experiments.sweep): the cells run in parallel on a Dask LocalCluster sized to the machine (or on
--scheduler tcp://host:port), complete cells are skipped and killed ones resume, and --out also
gets results.parquet/.csv, summary.csv and the plots. --acc-bits / --operand-bits add the
paper's accumulator / operand sweeps for the quantized presets (e.g. --acc-bits 4 8 12 16).

    python scripts/reproduce_paper.py --data-dir ~/data/dsads --dataset dsads --protocol paper

--protocol paper runs every cell with the published code's pipeline (`intsim cil --protocol
paper`: its initialisation, bias-free head, evaluation batching, straight-through mask and tie
rule; docs/fidelity.md); the default is intsim's. The evaluation column says how each row was
evaluated. --hadoff adds the published "HadOff" baseline (hdqt_paper_hadoff: no transform,
gradients still divided by the block size) beside the corrected one (hdqt_paper:hadamard=none).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from intsim.cli.progress import RunBars
from intsim.datasets import load_dataset
from intsim.experiments.cil_run import run
from intsim.experiments.config import PROTOCOLS, resolve_config
from intsim.experiments.records import evaluation_text, mean_std
from intsim.experiments.sweep import Grid, config_label, field_columns, run_sweep

# the paper's results (docs/method.md): (dataset, method) → (FP32, HDQT 4-bit / 8-bit acc), AIA %
PAPER_AIA = {("dsads", "icarl"): (83.99, 83.63), ("pamap2", "icarl"): (87.14, 87.01),
             ("hapt", "icarl"): (89.94, 88.94), ("dsads", "bic"): (82.94, 80.72),
             ("dsads", "lwf"): (34.30, 35.37)}
PAPER_NUMERICS = {"fp32": 0, "hdqt": 1, "hdqt_paper": 1}


HADOFF = ["hdqt_paper_hadoff", "hdqt_paper:hadamard=none"]
NUMERICS = ["fp32", "int4", "luq", "hdqt_paper", "hdqt", *HADOFF]


def run_one(dataset, data_dir, method, numerics, seed, epochs, out_root, quiet=True,
            protocol="intsim") -> dict:
    tag = numerics.replace(":", "_") + ("" if protocol == "intsim" else f"-{protocol}")
    out = Path(out_root) / f"{dataset}-{method}-{tag}-seed{seed}"
    if (out / "metrics.json").exists():
        return json.loads((out / "metrics.json").read_text())
    cfg = resolve_config(dict(dataset=dataset, data_dir=data_dir, method=method,
                              numerics=numerics, seed=seed, epochs=epochs, out=str(out),
                              protocol=protocol))
    resume = (out / "config.json").exists()
    return run(cfg, resume=resume, progress=None if quiet else RunBars("reproduce_paper"))


def table(rows: list[dict]) -> str:
    """Rows: dataset, method, numerics (label), evaluation, n, aia, last (text); optional
    paper_key (the preset whose paper number applies, when the label is not one)."""
    w = max([10] + [len(r["numerics"]) for r in rows])
    we = max([10] + [len(r.get("evaluation") or "") for r in rows])
    head = (f"{'dataset':8s} {'method':7s} {'numerics':{w}s} {'evaluation':{we}s} {'seeds':>5s} "
            f"{'AIA (ours)':>15s} {'last (ours)':>15s} {'AIA (paper)':>12s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        paper = PAPER_AIA.get((r["dataset"], r["method"]))
        key = r.get("paper_key", r["numerics"])
        p = (f"{paper[PAPER_NUMERICS[key]]:12.2f}"
             if paper and key in PAPER_NUMERICS else f"{'—':>12s}")
        lines.append(f"{r['dataset']:8s} {r['method']:7s} {r['numerics']:{w}s} "
                     f"{r.get('evaluation') or '—':{we}s} {r['n']:5d} "
                     f"{r['aia']:>15s} {r['last']:>15s} {p}")
    return "\n".join(lines)


#: the paper's quantized setting: knob values under which its HDQT number applies
PAPER_KNOBS = {"acc_bits": 8, "operand_bits": 4}


def paper_grid(dataset, data_dir, methods, numerics, seeds, epochs, acc_bits=None,
               operand_bits=None, protocol="intsim") -> dict:
    """The paper's HAR grid as an intsim sweep grid document."""
    doc = {"name": f"paper HAR grid: {dataset}", "datasets": [dataset], "methods": list(methods),
           "numerics": list(numerics), "seeds": list(range(seeds)),
           "settings": {"epochs": epochs, "protocol": protocol},
           "data_dirs": {dataset: str(data_dir)}}
    overrides = {}
    if acc_bits:
        overrides["acc_bits"] = list(acc_bits)
    if operand_bits:
        overrides["operand_bits"] = list(operand_bits)
    if overrides:
        doc["overrides"] = overrides
    return doc


def sweep_rows(results) -> list[dict]:
    """Table rows (mean ± std over the successful seeds) from a sweep's results table."""
    fields = field_columns(results)
    rows = []
    for _, g in results.groupby("group", sort=False):
        first = g.iloc[0]
        ok = g[g["status"] == "ok"]
        knobs_paper = all(k not in g.columns or pd.isna(first[k]) or int(first[k]) == v
                          for k, v in PAPER_KNOBS.items())
        rows.append(dict(dataset=first["dataset"], method=first["method"],
                         numerics=config_label(first, fields),
                         paper_key=first["numerics"] if knobs_paper else None,
                         evaluation=" / ".join(sorted(set(ok["evaluation"].dropna()))) or None,
                         n=len(ok), aia=mean_std(ok["aia"].dropna()),
                         last=mean_std(ok["last"].dropna())))
    return rows


def run_sweep_grid(args, methods) -> int:
    load_dataset(args.dataset, args.data_dir)     # a missing data set: one clear error now
    grid = Grid.from_dict(paper_grid(args.dataset, args.data_dir, methods, args.numerics,
                                     args.seeds, args.epochs, args.acc_bits, args.operand_bits,
                                     args.protocol))
    res = run_sweep(grid, args.out, scheduler=args.scheduler, workers=args.workers,
                    quiet=args.quiet)
    print(table(sweep_rows(res.results)))
    print(f"{len(res.cells)} runs ({res.n_run} run now, {res.n_skipped} reused, {res.n_failed} "
          f"failed); results in {res.results_path}, {res.summary_path}")
    if res.n_failed:
        for _, r in res.results[res.results["status"] != "ok"].iterrows():
            print(f"reproduce_paper: failed: {r['cell']}: {r['error']}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="folder of the downloaded data set "
                   "(raw layout or the paper's feature table; see the README)")
    p.add_argument("--dataset", required=True, choices=["dsads", "pamap2", "hapt"])
    p.add_argument("--methods", nargs="+", default=None,
                   help="default: the methods the paper reports for this data set")
    p.add_argument("--numerics", nargs="+", default=["fp32", "hdqt"], choices=NUMERICS)
    p.add_argument("--protocol", choices=tuple(PROTOCOLS), default="intsim",
                   help="pipeline choices of every run: intsim's or the published code's "
                        "(docs/fidelity.md)")
    p.add_argument("--hadoff", action="store_true",
                   help="also run the published HadOff baseline and the corrected one")
    p.add_argument("--seeds", type=int, default=20, help="seeds 0 … N-1 (paper: 20)")
    p.add_argument("--epochs", type=int, default=100, help="epochs per task (paper: 100)")
    p.add_argument("--out", default="runs/reproduce", help="root folder of the run folders")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--sweep", action="store_true",
                   help="run the grid through intsim sweep (Dask, parallel, restartable; also "
                        "writes results, summary.csv and plots into --out)")
    p.add_argument("--workers", type=int, default=None,
                   help="with --sweep: local worker processes (default: the cores; 0 = run in "
                        "this process)")
    p.add_argument("--scheduler", default=None,
                   help="with --sweep: address of an existing Dask cluster (tcp://host:port)")
    p.add_argument("--acc-bits", type=int, nargs="+", default=None,
                   help="with --sweep: also sweep the accumulator bits of the quantized "
                        "presets (paper: 4 8 12 16)")
    p.add_argument("--operand-bits", type=int, nargs="+", default=None,
                   help="with --sweep: also sweep the operand bits (e.g. 3 4 6 8)")
    args = p.parse_args(argv)
    methods = args.methods or sorted({m for d, m in PAPER_AIA if d == args.dataset})
    if args.hadoff:
        args.numerics = list(dict.fromkeys([*args.numerics, *HADOFF]))
    if not args.sweep and (args.workers is not None or args.scheduler or args.acc_bits
                           or args.operand_bits):
        p.error("--workers, --scheduler, --acc-bits and --operand-bits need --sweep")
    if args.sweep:
        try:
            return run_sweep_grid(args, methods)
        except (ValueError, FileNotFoundError) as err:
            print(f"reproduce_paper: error: {err}", file=sys.stderr)
            return 2
    rows = []
    try:
        for method in methods:
            for numerics in args.numerics:
                ms = [run_one(args.dataset, args.data_dir, method, numerics, s, args.epochs,
                              args.out, args.quiet, args.protocol) for s in range(args.seeds)]
                cfg = resolve_config(dict(dataset=args.dataset, method=method, numerics=numerics,
                                          out=".", protocol=args.protocol))
                rows.append(dict(dataset=args.dataset, method=method, numerics=numerics,
                                 evaluation=evaluation_text(cfg), n=len(ms), aia=mean_std([m["aia"] for m in ms]),
                                 last=mean_std([m["last"] for m in ms])))
    except (ValueError, FileNotFoundError) as err:
        print(f"reproduce_paper: error: {err}", file=sys.stderr)
        return 2
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
