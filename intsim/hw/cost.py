"""What a datapath costs: exact operation counts, memory traffic and energy of a training step.

    from intsim.hw.cost import cost, compare
    r = cost("hdqt", model="fcnet:405,405,405,19", batch=128)     # numerics: preset or TOML
    r.per_step["pj"], r.per_step["compute_pj_by_part"]            # totals (pJ, MACs, bits …)
    r.ops        # DataFrame: role, layer, kind, part, op, op_kind, bits, count, pj
    r.memory     # DataFrame: one row per tensor moved (elements, bits, bytes, reads, writes, pJ)
    r.layers     # DataFrame: per layer and kind (fwd, grad_in, grad_w, …): MACs, pJ by part
    compare(["fp32", "int4", "luq", "hdqt_paper", "hdqt"], model=…, batch=…)  # vs fp32

A step is what the simulator runs for one mini-batch: the forward pass, the loss (softmax
cross-entropy over the logits of a CLASSES-way head), the backward pass and one SGD step
(momentum 0.9, weight decay 2e-4) over every parameter; for a single layer (linear:, conv:,
block:) the backward of a gradient of the output's shape instead of a loss. Counts come from
walking the real network (intsim.models.cost_walk) and the rules of intsim.core.costs and
intsim.nn.costs; energies from an energy table (intsim.formats.energy_table; default: 45 nm,
Horowitz ISSCC 2014). `samples` adds the cost of one epoch over that many samples
(mini-batches as the learners cut them). The whole of a class-incremental run is in the
cost.json of an `intsim cil` run folder.

Model specs:
    fcnet:IN,HIDDEN,FEATURE[,CLASSES]    FCNet + a CLASSES-way head (default 10)
    smallcnn[:C,H,W[,CLASSES]]           SmallCNN (default 1,28,28,10)
    resnet32[:C,H,W[,CLASSES]]           CIFAR ResNet-32 (default 3,32,32,100)
    linear:IN,OUT                        one Linear layer without bias
    conv:CIN,COUT,K,STRIDE,PAD,H,W       one Conv2d layer without bias
    block:CIN,COUT,STRIDE,H,W            one ResNet basic block (shortcut A)
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import pandas as pd

from intsim.core.energy import EnergyTable
from intsim.core.ledger import Ledger
from intsim.core.modes import CostPart, OpKind
from intsim.core.resolve import NumericsSource, resolve_numerics
from intsim.formats.energy_table import load_energy_table
from intsim.models.cost_walk import FP32_NUMERICS, book_uses, input_traffic, model_step_uses
from intsim.models.networks import FCNet, IncrementalNet, SmallCNN, resnet32
from intsim.nn import BasicBlock, Conv2d, Linear
from intsim.nn.costs import loss_counts, sgd_counts
from intsim.nn.losses import cross_entropy
from intsim.nn.module import Module
from intsim.nn.training import epoch_batch_sizes

MOMENTUM, WEIGHT_DECAY, MIN_BATCH = 0.9, 2e-4, 2
PARTS = CostPart.values()
_SPECS = {
    "fcnet": ("IN,HIDDEN,FEATURE[,CLASSES]", (3, 4)),
    "smallcnn": ("C,H,W[,CLASSES]", (0, 3, 4)),
    "resnet32": ("C,H,W[,CLASSES]", (0, 3, 4)),
    "linear": ("IN,OUT", (2,)),
    "conv": ("CIN,COUT,K,STRIDE,PAD,H,W", (7,)),
    "block": ("CIN,COUT,STRIDE,H,W", (5,)),
}


@dataclass(frozen=True)
class Workload:
    """A parsed model spec: the module, the input shape of one sample, the classes of its
    head (0: a single layer, trained on an output gradient instead of a loss)."""
    spec: str
    module: Module
    sample_shape: tuple
    classes: int


def _ints(kind: str, body: str) -> list[int]:
    try:
        vals = [int(v) for v in body.split(",")] if body else []
    except ValueError:
        vals = None
    form, counts = _SPECS[kind]
    if vals is None or len(vals) not in counts or any(v < (0 if kind == "conv" else 1)
                                                      for v in vals):
        raise ValueError(f"model: expected '{kind}:{form}' with positive integers, got "
                         f"{kind}:{body!r}")
    return vals


def parse_workload(spec: str) -> Workload:
    """The Workload of a model spec (module docstring); ValueError naming the form otherwise."""
    if not isinstance(spec, str):
        raise ValueError(f"model: expected a string such as 'fcnet:405,405,405,19', got {spec!r}")
    kind, _, body = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in _SPECS:
        raise ValueError(f"model: unknown kind {kind!r}; expected one of "
                         + ", ".join(f"{k}:{f}" for k, (f, _) in _SPECS.items()))
    v = _ints(kind, body)
    if kind == "fcnet":
        classes = v[3] if len(v) == 4 else 10
        return Workload(spec, IncrementalNet(FCNet(v[0], v[1], v[2]), classes), (v[0],), classes)
    if kind in ("smallcnn", "resnet32"):
        c, h, w = v[:3] if v else ((1, 28, 28) if kind == "smallcnn" else (3, 32, 32))
        classes = v[3] if len(v) == 4 else (10 if kind == "smallcnn" else 100)
        net = SmallCNN(c) if kind == "smallcnn" else resnet32(c)
        return Workload(spec, IncrementalNet(net, classes), (c, h, w), classes)
    if kind == "linear":
        return Workload(spec, Linear(v[0], v[1], bias=False), (v[0],), 0)
    if kind == "conv":
        cin, cout, k, s, p, h, w = v
        if k < 1 or s < 1:
            raise ValueError("model: conv K and STRIDE must be at least 1")
        return Workload(spec, Conv2d(cin, cout, k, s, p, bias=False), (cin, h, w), 0)
    cin, cout, s, h, w = v
    return Workload(spec, BasicBlock(cin, cout, s), (cin, h, w), 0)


def workload_step_ledgers(workload: Workload, numerics, batch: int, nonnegative_input: bool = False,
                 seed: int = 0) -> tuple[Ledger, Ledger, list]:
    """(ledger, fp32 reference, modules without a rule) of one training step at `batch`."""
    net = workload.module
    net.set_numerics(numerics)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *workload.sample_shape)).astype(np.float32)
    if nonnegative_input:
        x = np.abs(x)
    if workload.classes:
        y = rng.integers(0, workload.classes, batch)
        grad_fn = lambda z: cross_entropy(z, y)[1]        # noqa: E731
    else:
        grad_fn = lambda z: np.ones_like(z)              # noqa: E731
    uses = model_step_uses(net, x, grad_fn)
    real, unknown = book_uses(uses)
    ref, _ = book_uses(uses, FP32_NUMERICS)
    n_params = sum(p.size for _, p, _ in net.named_parameters())
    sgd, sgd_t = sgd_counts(n_params, MOMENTUM, WEIGHT_DECAY)
    for ledger in (real, ref):
        if workload.classes:
            ledger.add(("student", "loss", "cross_entropy"),
                       loss_counts("cross_entropy", batch, workload.classes))
        ledger.add(("student", "sgd", "step"), sgd, sgd_t)
        ledger.add(("student", "input", "batch"), traffic=[input_traffic(x.shape)])
    return real, ref, unknown


@dataclass
class CostReport:
    """The cost of one training step (and one epoch) of a workload under one numerics."""
    numerics: str
    model: str
    batch: int
    table: EnergyTable
    step: Ledger
    step_fp32: Ledger
    epoch: Optional[Ledger]
    epoch_fp32: Optional[Ledger]
    samples: Optional[int]
    unknown: list

    @property
    def per_step(self) -> dict:
        return self.step.totals(self.table)

    @property
    def per_epoch(self) -> Optional[dict]:
        return None if self.epoch is None else self.epoch.totals(self.table)

    @property
    def rel_fp32(self) -> float:
        ref = self.step_fp32.totals(self.table)["pj"]
        return self.per_step["pj"] / ref if ref else math.nan

    @property
    def ops(self) -> pd.DataFrame:
        return pd.DataFrame(self.step.rows(self.table))

    @property
    def memory(self) -> pd.DataFrame:
        return pd.DataFrame(self.step.memory_rows(self.table))

    @property
    def layers(self) -> pd.DataFrame:
        """Per (role, layer, kind): MACs, the multiplier widths, pJ of every part, memory pJ
        and the total, in execution order."""
        return layer_table(self.step, self.table)

    def to_json(self) -> dict:
        """Everything as plain JSON-ready data."""
        return {"numerics": self.numerics, "model": self.model, "batch": self.batch,
                "energy_table": {"name": self.table.name, "source": self.table.source},
                "per_step": self.per_step, "per_step_fp32_pj":
                    self.step_fp32.totals(self.table)["pj"], "rel_fp32": self.rel_fp32,
                "samples": self.samples, "per_epoch": self.per_epoch,
                "layers": self.layers.to_dict(orient="records"),
                "ops": self.ops.to_dict(orient="records"),
                "memory": self.memory.to_dict(orient="records"),
                "unmodelled_modules": self.unknown}


def layer_table(ledger: Ledger, table: EnergyTable) -> pd.DataFrame:
    ops = pd.DataFrame(ledger.rows(table))
    mem = pd.DataFrame(ledger.memory_rows(table))
    keys = list(dict.fromkeys(list(ledger.counts) + list(ledger.traffic)))
    out = []
    for scope in keys:
        role, layer, kind = scope
        rec = {"role": role, "layer": layer, "kind": kind}
        o = ops[(ops["role"] == role) & (ops["layer"] == layer) & (ops["kind"] == kind)] \
            if len(ops) else ops
        mm = o[(o["part"] == "matmul") & o["op_kind"].isin([OpKind.INT_MUL, OpKind.INT_SHIFT,
                                                             OpKind.FP_MUL])] if len(o) else o
        rec["macs"] = int(mm["count"].sum()) if len(mm) else 0
        rec["multiplier"] = ", ".join(sorted(set(mm["op"]))) if len(mm) else ""
        for part in PARTS:
            rec[f"{part}_pj"] = float(o[o["part"] == part]["pj"].sum()) if len(o) else 0.0
        m = mem[(mem["role"] == role) & (mem["layer"] == layer) & (mem["kind"] == kind)] \
            if len(mem) else mem
        rec["memory_pj"] = float(m["pj"].sum()) if len(m) else 0.0
        rec["pj"] = sum(rec[f"{p}_pj"] for p in PARTS) + rec["memory_pj"]
        out.append(rec)
    return pd.DataFrame(out)


def _table(energy: Union[None, str, os.PathLike, EnergyTable]) -> EnergyTable:
    return energy if isinstance(energy, EnergyTable) else load_energy_table(energy)


def cost(numerics: NumericsSource, model: str = "fcnet:405,405,405,19", batch: int = 128,
         energy: Union[None, str, os.PathLike, EnergyTable] = None,
         samples: Optional[int] = None, nonnegative_input: bool = False) -> CostReport:
    """The CostReport of one training step of `model` at `batch` under `numerics` (a preset,
    a datapath TOML file or a Numerics), priced with `energy` (a TOML file or EnergyTable;
    default: the 45 nm table). samples: also one epoch over that many samples.
    nonnegative_input: the input batch is ≥ 0 (e.g. a layer after a ReLU)."""
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < MIN_BATCH:
        raise ValueError(f"batch: expected an integer >= {MIN_BATCH}, got {batch!r}")
    if samples is not None and (isinstance(samples, bool) or not isinstance(
            samples, (int, np.integer)) or samples < MIN_BATCH):
        raise ValueError(f"samples: expected an integer >= {MIN_BATCH}, got {samples!r}")
    nm = resolve_numerics(numerics).numerics
    table = _table(energy)
    work = parse_workload(model)
    step, ref, unknown = workload_step_ledgers(work, nm, int(batch), nonnegative_input)
    epoch = epoch32 = None
    if samples is not None:
        epoch, epoch32 = Ledger(), Ledger()
        sizes = epoch_batch_sizes(int(samples), int(batch), MIN_BATCH)
        for size in sorted(set(sizes)):
            led, led32 = (step, ref) if size == batch else workload_step_ledgers(work, nm, size,
                                                                        nonnegative_input)[:2]
            epoch.merge(led, sizes.count(size))
            epoch32.merge(led32, sizes.count(size))
    return CostReport(nm.name, model, int(batch), table, step, ref, epoch, epoch32, samples,
                      unknown)


def compare(numerics: Sequence[NumericsSource], model: str = "fcnet:405,405,405,19",
            batch: int = 128, energy: Union[None, str, os.PathLike, EnergyTable] = None,
            samples: Optional[int] = None, nonnegative_input: bool = False) -> pd.DataFrame:
    """One row per numerics: pJ per step, relative to fp32, compute / memory pJ, pJ by part,
    MACs, random bits, bytes moved (and pJ per epoch with `samples`)."""
    table = _table(energy)
    rows = []
    for src in numerics:
        r = cost(src, model, batch, table, samples, nonnegative_input)
        s = r.per_step
        rec = {"numerics": r.numerics, "pj_step": s["pj"], "rel_fp32": r.rel_fp32,
               "compute_pj": s["compute_pj"], "memory_pj": s["memory_pj"]}
        rec.update({f"{p}_pj": s["compute_pj_by_part"].get(p, 0.0) for p in PARTS})
        rec.update(macs=s["macs"], random_bits=s["random_bits"], bytes_moved=s["bytes_moved"])
        if r.per_epoch is not None:
            rec["pj_epoch"] = r.per_epoch["pj"]
        rows.append(rec)
    return pd.DataFrame(rows)
