"""Golden vectors: every intermediate of a few seeded training steps, for hardware test benches.

    write_golden(datapath, "fcnet:100,72,40,10", batch=32, steps=2, seed=0, out="golden.h5",
                 hex_dir="hex/")

runs S steps of SGD on the model of a model spec (intsim.hw.model_spec: an FCNet or SmallCNN
with a head, a single linear or conv layer, a ResNet block) with the datapath's numerics on
every layer, seeded synthetic inputs, and writes one HDF5 file (layout in
intsim.formats.golden_file). Every intermediate of every quantized layer is captured through
intsim.core.linear_op.RECORDER (intsim.hw.golden_record): codes, scales, the quantizers'
inputs, clamp points and scaled values, the random bits of stochastic rounding, per-tile
partial sums, registers and tile-sum registers — each checked against the recorded result —
plus a descriptor of every integer matmul, the run's trace (trace/matmul, trace/quantize; with
`events`, the per-event log) and a coverage report (intsim.hw.coverage). `select` keeps only
the matmuls whose label ("layer/kind") matches one of the globs.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Optional, Sequence

import numpy as np

from intsim._version import __version__
from intsim.core.linear_op import RECORDER
from intsim.core.numerics import dumps
from intsim.core.resolve import NumericsSource, resolve_numerics
from intsim.core.rng import SRStream, element_random_bits
from intsim.core.trace import Trace
from intsim.formats.golden_file import FORMAT, FORMAT_VERSION, Tensor, float_tensor, int_tensor, \
    write_hdf5
from intsim.formats.hexfile import HexOptions, write_hex
from intsim.hw.coverage import Coverage, compute_coverage
from intsim.hw.golden_record import StepRecorder, select_matmuls, spec_range
from intsim.hw.model_spec import ModelSpec, parse_model
from intsim.nn.optim import SGD
from intsim.nn.training import loss_step, sgd_step

LR, MOMENTUM = 0.01, 0.9
DEFAULT_MODEL, DEFAULT_BATCH = "fcnet:16,16,16,4", 8

__all__ = ["parse_model", "ModelSpec", "run_golden", "write_golden", "GoldenResult",
           "select_matmuls", "write_vectors_file",
           "element_random_bits", "spec_range"]       # the last two: names of format 1


@dataclass
class GoldenResult:
    path: str
    n_tensors: int
    steps: int
    losses: list
    hex_manifest: Optional[str] = None
    coverage: Optional[Coverage] = None
    n_matmuls: int = 0


def _param_tensors(net, prefix: str, kind: str, step: int, what: str) -> list:
    out = []
    for name, p, _ in net.named_parameters():
        layer, pname = name.rsplit(".", 1) if "." in name else ("model", name)
        t = float_tensor(f"{prefix}/{layer}/{kind}/{pname}", p, f"{what} {pname} (float32 "
                         "master copy)")
        t.attrs.update(step=step, layer=layer, kind=kind, tensor=pname)
        out.append(t)
    return out


def _stamp(t: Tensor, step: int, layer: str, kind: str, name: str) -> Tensor:
    t.attrs.update(step=step, layer=layer, kind=kind, tensor=name)
    return t


def _check_args(batch, steps, seed, events, spec: ModelSpec):
    for name, v in (("batch", batch), ("steps", steps)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    if spec.fixed_batch is not None and batch is not None and batch != spec.fixed_batch:
        raise ValueError(f"batch: the model spec {spec} fixes the batch to "
                         f"{spec.fixed_batch}; leave --batch out or give the same value")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 63:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    if events is not None and (isinstance(events, bool) or not isinstance(events, int)
                               or events < 0):
        raise ValueError(f"events: expected a non-negative integer, got {events!r}")


def _root(dp, spec: ModelSpec, seed, sr_seed, batch, steps, lr, momentum, select, events,
          losses) -> dict:
    """The root attributes of a training golden file."""
    return dict(format=FORMAT, format_version=FORMAT_VERSION, intsim_version=__version__,
                source="training", datapath=dumps(dp.numerics, seed=dp.seed),
                datapath_source=dp.text or "", numerics=dp.numerics.name, model=str(spec),
                model_kind=spec.kind, seed=seed, sr_seed=sr_seed, batch=batch, steps=steps,
                lr=lr, momentum=momentum, weight_decay=0.0,
                loss=("cross_entropy (batch mean)" if spec.has_head else
                      "projection (1/B)·Σ r⊙y"),
                inputs="x ~ default_rng(seed).uniform(-1, 1, input shape) as float32, then "
                       + ("labels ~ .integers(0, CLASSES, batch)" if spec.has_head else
                          "r ~ .uniform(-1, 1, output shape)") + ", per step",
                init=f"{spec.describe()}; SRStream(sr_seed) for every layer",
                select=",".join(select) or "*", events_limit=events or 0,
                losses=np.array(losses, np.float64))


def run_golden(datapath: NumericsSource, model: str = DEFAULT_MODEL,
               batch: Optional[int] = None, steps: int = 2,
               seed: Optional[int] = None, lr: float = LR, momentum: float = MOMENTUM, *,
               select: Sequence[str] = (), events: Optional[int] = None,
               trace: Optional[Trace] = None) -> tuple[list, dict]:
    """Run the steps; return (tensors in execution order, root attributes). The root dict
    also carries "_matmuls" (group path -> descriptor) and "_trace" (the run's Trace)."""
    dp = resolve_numerics(datapath)
    spec = parse_model(model) if isinstance(model, str) else model
    if seed is None:
        seed = dp.seed if dp.seed is not None else 0
    _check_args(batch, steps, seed, events, spec)
    batch = spec.fixed_batch or batch or DEFAULT_BATCH
    sr_seed = dp.seed if dp.seed is not None else seed
    nm = dp.numerics
    net = spec.build(nm, seed)
    stream = SRStream(sr_seed)
    net.set_rng(stream)
    trace = trace if trace is not None else Trace(events=events)
    net.set_trace(trace)
    opt = SGD(net, lr=lr, momentum=momentum)
    data = np.random.default_rng(seed)
    loss_name = "cross_entropy" if spec.has_head else "projection"
    matmuls: dict = {}
    tensors: list[Tensor] = _param_tensors(net, "init", "params", -1, "initial")
    losses = []
    for step in range(steps):
        trace.step = step
        x, target = spec.synthetic_batch(data, batch)
        pre = f"step_{step:03d}"
        tensors.append(_stamp(float_tensor(
            f"{pre}/input/batch/x", x, "synthetic input, uniform [-1, 1) float32 "
            "(default_rng(seed).uniform, one draw per step)"), step, "input", "batch", "x"))
        if spec.has_head:
            tensors.append(_stamp(int_tensor(
                f"{pre}/input/batch/labels", target, 0, spec.args["CLASSES"] - 1,
                "class labels (default_rng(seed).integers, after x)"), step, "input", "batch",
                "labels"))
        else:
            tensors.append(_stamp(float_tensor(
                f"{pre}/input/batch/r", target, "projection r of the loss (1/B)·Σ r⊙y, uniform "
                "[-1, 1) float32 (default_rng(seed).uniform, after x)"), step, "input",
                "batch", "r"))
        step_fn = partial(loss_step, net, loss_fn=spec.loss_fn())
        seen = {}

        def on_loss(out, grad, loss):
            seen.update(out=out, grad=grad, loss=loss, at=len(tensors))
        token = RECORDER.set(StepRecorder(tensors, step, nm, stream, matmuls))
        try:
            loss = sgd_step(opt, partial(step_fn, on_loss=on_loss), x, target)
        finally:
            RECORDER.reset(token)
        names = ("logits", "grad_logits") if spec.has_head else ("output", "grad_output")
        descs = (("head output + bias (float32)", "dL/dlogits = (softmax - onehot)/B "
                  "(float32)") if spec.has_head else
                 ("the model's output y (float32)", "dL/dy = r/B (float32)"))
        lt = [_stamp(float_tensor(f"{pre}/loss/{loss_name}/{n}", seen[k], d), step, "loss",
                     loss_name, n) for n, k, d in zip(names, ("out", "grad"), descs)]
        lt[1].attrs["loss"] = float(loss)
        tensors[seen["at"]:seen["at"]] = lt        # the loss comes between fwd and bwd
        tensors.extend(_param_tensors(net, pre, "sgd", step, "after the SGD step:"))
        losses.append(float(loss))
    net.set_trace(None)
    tensors, matmuls = select_matmuls(tensors, matmuls, select)
    for i, t in enumerate(tensors):
        t.attrs["op_index"] = i
    index = {t.path: t.attrs["op_index"] for t in tensors}
    for d in matmuls.values():
        d["op_index"] = index[d["result"]]
    root = _root(dp, spec, seed, sr_seed, batch, steps, lr, momentum, select, events, losses)
    root.update(n_tensors=len(tensors), n_matmuls=len(matmuls), _matmuls=matmuls, _trace=trace)
    return tensors, root


def write_golden(datapath: NumericsSource, model: str = DEFAULT_MODEL,
                 batch: Optional[int] = None, steps: int = 2,
                 seed: Optional[int] = None, out: str = "golden.h5",
                 hex_dir: Optional[str] = None, pack_int4: bool = False,
                 lr: float = LR, momentum: float = MOMENTUM, *, select: Sequence[str] = (),
                 events: Optional[int] = None, hex_options: Optional[HexOptions] = None
                 ) -> GoldenResult:
    """Run the golden steps and write `out` (and, with hex_dir, the $readmemh files)."""
    tensors, root = run_golden(datapath, model, batch, steps, seed, lr, momentum,
                               select=select, events=events)
    return write_vectors_file(tensors, root, out, hex_dir, hex_options or HexOptions(
        pack_int4=pack_int4), steps=steps, losses=list(root["losses"]))


def write_vectors_file(tensors: list, root: dict, out: str, hex_dir: Optional[str],
                       hex_options: HexOptions, steps: int = 0, losses=()) -> GoldenResult:
    """Coverage, then the HDF5 file (tensors, matmul groups, trace, coverage) and hex files."""
    matmuls, trace = root.pop("_matmuls"), root.pop("_trace")
    cov = compute_coverage(tensors, matmuls, trace, root.pop("_quantizers", ()))
    write_hdf5(tensors, root, out, groups=matmuls, trace=trace, coverage=cov.to_tables())
    manifest = write_hex(out, hex_dir, hex_options) if hex_dir else None
    return GoldenResult(out, len(tensors), steps, list(losses), manifest, cov, len(matmuls))
