#!/usr/bin/env python
"""How much the evaluation batching moves a run's accuracy: re-evaluate finished runs.

    python scripts/rescore_evaluation.py RUN_DIR [RUN_DIR ...]

For each `intsim cil` run folder (e.g. the cells of an `intsim sweep`), re-evaluates every task
checkpoint (intsim.experiments.rescore) with the evaluation of the run, with the other test
order (dataset ↔ class_sorted), with one batch holding the whole test set (--big, default
100000) and with fixed activation scales calibrated on the training data, and prints AIA and
last-task accuracy (CNN classifier) per setting, mean ± std over the runs of each (method,
numerics, protocol). Training is not repeated.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict

from intsim.experiments.config import ConfigError
from intsim.experiments.records import mean_std
from intsim.experiments.rescore import rescore
from intsim.formats.run_folder import read_json


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders (config.json + checkpoints/)")
    p.add_argument("--big", type=int, default=100000, help="the one-big-batch size")
    args = p.parse_args(argv)
    rows = defaultdict(lambda: defaultdict(list))
    try:
        for run in args.runs:
            s = read_json(f"{run}/config.json")["settings"]
            key = (s["method"], s["numerics"], s.get("protocol", "intsim"))
            other = "dataset" if s.get("eval_order") == "class_sorted" else "class_sorted"
            variants = {f"batch {s['eval_batch_size']} {s.get('eval_order', 'dataset')}": {},
                        f"batch {s['eval_batch_size']} {other}": {"eval_order": other},
                        "one batch": {"eval_batch_size": args.big},
                        "calibrated": {"eval_scale": "calibrated"}}
            for name, change in variants.items():
                m = rescore(run, **change)
                rows[key][name + " AIA"].append(m["aia"])
                rows[key][name + " last"].append(m["last"])
    except (ConfigError, FileNotFoundError, KeyError, TypeError, ValueError) as e:
        print(f"rescore_evaluation: error: {e}", file=sys.stderr)
        return 2
    cols = list(next(iter(rows.values())))
    print(" | ".join(["method", "numerics", "protocol", *cols]))
    for (method, numerics, protocol), r in rows.items():
        print(" | ".join([method, numerics, protocol, *(mean_std(r[c]) for c in cols)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
