"""Training runs that produce a trace for the overflow report (`overflow-report --train`).

    trace_training_run(numerics, out_dir, epochs)          FCNet on the real smartwatch data
    trace_model_run(numerics, "conv:8,3,16,16,16,3", out_dir, steps)
                                                           the user's layers (a model spec,
                                                           intsim.hw.model_spec) on seeded
                                                           synthetic inputs
Both trace every training step (optionally with the per-event log) into out_dir/trace.h5 and
write out_dir/config.json.
"""
from __future__ import annotations

import json
import os
from functools import partial
from typing import Optional

import h5py
import numpy as np

from intsim._version import __version__
from intsim.core.numerics import dumps
from intsim.core.resolve import NumericsSource, resolve_numerics
from intsim.core.rng import SRStream
from intsim.core.trace import Trace
from intsim.datasets import load_dataset, minmax_preprocess
from intsim.formats.atomic import atomic_path, atomic_write_text
from intsim.formats.run_folder import (SPACE_MARGIN, append_trace, ensure_space,
                                       remove_space_probe)
from intsim.hw.model_spec import parse_model
from intsim.models.networks import FCNet, IncrementalNet
from intsim.nn.module import child_seed
from intsim.nn.optim import SGD
from intsim.nn.training import TrainHooks, epoch_batches, loss_step, run_epoch, sgd_step

FLUSH_EVERY = 50          # steps between trace appends of trace_model_run


class _TraceSteps(TrainHooks):
    """Stamps the trace with the global step of every training step."""

    def __init__(self, trace: Trace):
        self.trace = trace

    def step_start(self, step: int) -> None:
        self.trace.step = step


def trace_training_run(numerics: NumericsSource, out_dir: str, epochs: int = 5,
                       seed: int = 0, *, hidden: Optional[int] = None, batch: int = 128,
                       lr: float = 0.01, momentum: float = 0.9,
                       max_steps: Optional[int] = None, data=None,
                       events: Optional[int] = None) -> dict:
    """Train FCNet(IN, hidden, hidden) + a 7-way head on the smartwatch data (IN = 54
    features; hidden defaults to IN, the paper's in→in→in HAR network) with every training
    step traced; write out_dir/trace.h5 and out_dir/config.json.

    Data: intsim.datasets.load_dataset("watch"), two test subjects drawn from seed, features
    min-max scaled to [-1, 1] on the training rows only; SGD (lr, momentum), batch `batch`,
    cross-entropy over all 7 classes, `epochs` epochs (or max_steps steps). `data` may be a
    ready (X_train, y_train, X_test, y_test) tuple instead. Returns the config dict (with
    the test accuracy).
    """
    dp = resolve_numerics(numerics)
    nm = dp.numerics
    sr_seed = dp.seed if dp.seed is not None else seed
    if data is None:
        ds = load_dataset("watch")
        subjects = np.unique(ds.subject)
        test_subj = np.random.default_rng(child_seed(seed, 7)).choice(subjects, 2, replace=False)
        test = np.isin(ds.subject, test_subj)
        Xtr, Xte = minmax_preprocess()(ds.X[~test], ds.X[test])
        data = (Xtr.astype(np.float32), ds.y[~test], Xte.astype(np.float32), ds.y[test])
        data_desc = (f"watch (seglearn smartwatch, {ds.X.shape[1]} features, "
                     f"{len(ds.class_names)} classes), test subjects "
                     f"{sorted(int(s) for s in test_subj)}, min-max [-1, 1] fit on train")
        n_classes = len(ds.class_names)
    else:
        data_desc = "user-supplied arrays"
        n_classes = int(max(data[1].max(), data[3].max() if len(data[3]) else 0)) + 1
    Xtr, ytr, Xte, yte = data
    in_dim = Xtr.shape[1]
    hidden = in_dim if hidden is None else hidden
    net = IncrementalNet(FCNet(in_dim, hidden, hidden, numerics=nm, seed=seed), n_classes,
                         numerics=nm, seed=child_seed(seed, 1))
    net.set_rng(SRStream(sr_seed))
    opt = SGD(net, lr=lr, momentum=momentum)
    trace = Trace(events=events)
    net.set_trace(trace)
    shuffle = np.random.default_rng(child_seed(seed, 2))
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "trace.h5")
    step, losses = 0, []
    toml_text = dumps(nm, seed=dp.seed)
    ensure_space(path, SPACE_MARGIN)           # HDF5 never meets a full disk (run_folder)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["datapath"] = toml_text
            f.attrs["numerics"] = nm.name
            f.attrs["intsim_version"] = __version__
            f.attrs["model"] = f"fcnet:{in_dim},{hidden},{hidden},{n_classes}"
        hooks = _TraceSteps(trace)
        for epoch in range(epochs):
            batch_losses, step = run_epoch(partial(loss_step, net), Xtr, ytr,
                                           epoch_batches(len(Xtr), batch, shuffle), opt, step,
                                           hooks, max_steps=max_steps)
            losses += batch_losses
            append_trace(trace, tmp)
            trace.clear()
            if max_steps is not None and step >= max_steps:
                break
    net.set_trace(None)
    net.eval()
    correct = 0
    for start in range(0, len(Xte), 512):
        correct += int(np.sum(np.argmax(net.forward(Xte[start:start + 512]), 1)
                              == yte[start:start + 512]))
    acc = correct / len(Xte) if len(Xte) else float("nan")
    cfg = dict(datapath=toml_text, numerics=nm.name, model=f"fcnet:{in_dim},{hidden},{hidden},"
               f"{n_classes}", data=data_desc, epochs=epochs, steps=step, batch=batch, lr=lr,
               momentum=momentum, seed=seed, sr_seed=sr_seed, max_steps=max_steps,
               final_loss=losses[-1] if losses else None, test_accuracy=acc,
               intsim_version=__version__)
    remove_space_probe(out_dir)
    atomic_write_text(os.path.join(out_dir, "config.json"), json.dumps(cfg, indent=1) + "\n")
    return cfg


def trace_model_run(numerics: NumericsSource, model: str, out_dir: str, steps: int = 50,
                    seed: int = 0, *, batch: Optional[int] = None, lr: float = 0.01,
                    momentum: float = 0.9, events: Optional[int] = None) -> dict:
    """Train the model of a model spec for `steps` SGD steps on the golden writer's seeded
    synthetic inputs (ModelSpec.synthetic_batch: x uniform [-1, 1), labels or the projection
    loss), every step traced; write out_dir/trace.h5 and out_dir/config.json. Returns the
    config dict."""
    dp = resolve_numerics(numerics)
    nm = dp.numerics
    spec = parse_model(model)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: expected a positive integer, got {steps!r}")
    if spec.fixed_batch is not None and batch is not None and batch != spec.fixed_batch:
        raise ValueError(f"batch: the model spec {spec} fixes the batch to {spec.fixed_batch}")
    batch = spec.fixed_batch or batch or 32
    sr_seed = dp.seed if dp.seed is not None else seed
    net = spec.build(nm, seed)
    net.set_rng(SRStream(sr_seed))
    trace = Trace(events=events)
    net.set_trace(trace)
    opt = SGD(net, lr=lr, momentum=momentum)
    data = np.random.default_rng(seed)
    step_fn = partial(loss_step, net, loss_fn=spec.loss_fn())
    os.makedirs(out_dir, exist_ok=True)
    toml_text = dumps(nm, seed=dp.seed)
    losses = []
    ensure_space(os.path.join(out_dir, "trace.h5"), SPACE_MARGIN)
    with atomic_path(os.path.join(out_dir, "trace.h5")) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs.update(datapath=toml_text, numerics=nm.name, intsim_version=__version__,
                           model=str(spec))
        for step in range(steps):
            trace.step = step
            x, target = spec.synthetic_batch(data, batch)
            losses.append(sgd_step(opt, step_fn, x, target))
            if (step + 1) % FLUSH_EVERY == 0 or step + 1 == steps:
                append_trace(trace, tmp)
                trace.clear()
    net.set_trace(None)
    cfg = dict(datapath=toml_text, numerics=nm.name, model=str(spec),
               data="synthetic: x ~ default_rng(seed).uniform(-1, 1), labels or projection r",
               steps=steps, batch=batch, lr=lr, momentum=momentum, seed=seed, sr_seed=sr_seed,
               events=events or 0, final_loss=losses[-1], intsim_version=__version__)
    remove_space_probe(out_dir)
    atomic_write_text(os.path.join(out_dir, "config.json"), json.dumps(cfg, indent=1) + "\n")
    return cfg
