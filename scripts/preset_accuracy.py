#!/usr/bin/env python
"""Train FCNet on the real watch HAR data (all 7 classes at once) under every numerics preset.

    python scripts/preset_accuracy.py [--epochs 8] [--seeds 3]

Subjects 9 and 10 are held out for testing; features are min-max scaled to [-1, 1] on the
training subjects. SGD lr 0.05, momentum 0.9, weight decay 2e-4, batch 64. Prints test
accuracy (mean ± std over seeds) per preset. Not a research claim: one small data set.
"""
from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np

from intsim import SRStream, preset
from intsim.core.presets import PRESET_NAMES
from intsim.datasets import load_dataset, minmax_preprocess
from intsim.models import FCNet, IncrementalNet
from intsim.nn.optim import SGD
from intsim.nn.training import TrainHooks, epoch_batches, loss_step, run_epoch


class TraceSteps(TrainHooks):
    """Stamps a trace with the global step of every training step."""

    def __init__(self, trace):
        self.trace = trace

    def step_start(self, step: int) -> None:
        self.trace.step = step


def watch_split():
    ds = load_dataset("watch")
    test = np.isin(ds.subject, [9, 10])
    Xtr, Xte = minmax_preprocess()(ds.X[~test], ds.X[test])
    return Xtr, ds.y[~test], Xte, ds.y[test]


def train(numerics: str, Xtr, ytr, epochs: int, seed: int, trace=None):
    net = IncrementalNet(FCNet(Xtr.shape[1], 54, 54, seed=seed), int(ytr.max()) + 1, seed=seed)
    net.set_numerics(preset(numerics))
    net.set_rng(SRStream(seed))
    if trace is not None:
        net.set_trace(trace)
    opt = SGD(net, lr=0.05, momentum=0.9, weight_decay=2e-4)
    order = np.random.default_rng(seed)
    hooks = TraceSteps(trace) if trace is not None else None
    step = 0
    for _ in range(epochs):
        _, step = run_epoch(partial(loss_step, net), Xtr, ytr,
                            epoch_batches(len(Xtr), 64, order), opt, step, hooks)
    if trace is not None:
        trace.step = step
    net.eval()
    return net


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args(argv)
    Xtr, ytr, Xte, yte = watch_split()
    print(f"{'preset':11s} {'test accuracy %':>16s} {'s/run':>7s}")
    for name in PRESET_NAMES:
        accs, t0 = [], time.perf_counter()
        for seed in range(args.seeds):
            net = train(name, Xtr, ytr, args.epochs, seed)
            accs.append(100 * np.mean(net.forward(Xte).argmax(1) == yte))
        sd = np.std(accs, ddof=1) if len(accs) > 1 else 0.0
        print(f"{name:11s} {np.mean(accs):9.2f} ± {sd:4.2f} "
              f"{(time.perf_counter() - t0) / args.seeds:7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
