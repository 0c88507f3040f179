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

import numpy as np

from intsim import SRStream, preset
from intsim.datasets import load_dataset, minmax_preprocess
from intsim.nn.losses import cross_entropy
from intsim.models import FCNet, IncrementalNet
from intsim.core.numerics import PRESET_NAMES
from intsim.nn.optim import SGD


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
    for _ in range(epochs):
        perm = order.permutation(len(Xtr))
        for i in range(0, len(perm), 64):
            b = perm[i:i + 64]
            net.zero_grad()
            _, g = cross_entropy(net.forward(Xtr[b]), ytr[b])
            net.backward(g)
            opt.step()
            if trace is not None:
                trace.step += 1
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
