"""The `intsim cost` subcommand: operation counts, memory traffic and energy of a training step.

intsim/cli/__init__.py adds it with `register(subparsers)`. Bad input prints one line
`intsim cost: error: …` and exits with code 2."""
from __future__ import annotations

import argparse
import json
import os

from intsim.cli.common import error
from intsim.formats.atomic import atomic_write_text
from intsim.formats.energy_table import DEFAULT_TABLE
from intsim.formats.run_folder import jsonable
from intsim.hw.cost import PARTS, compare, cost

COST_HELP = "operation counts, memory traffic and energy of a training step under a datapath"
COST_DESCRIPTION = f"""\
Count exactly what one training step of a network does under a numerics (a preset or a
datapath TOML file): per layer and matmul kind (fwd, grad_in, grad_w) the integer multiplies
by operand widths, register additions and saturations by register width, tile-sum additions,
Hadamard additions by width (zero padding included), quantizer work (max scans, scales,
divisions, roundings, code clamps), the random bits and additions of stochastic rounding, the
float32 work inside the operator (rescales, straight-through masks) and outside it (BatchNorm,
ReLU, pooling, loss, SGD with momentum and weight decay), and the bytes every tensor moves at
its bit width (int4 packed two per byte). Energies in pJ from a per-operation table (--energy;
default {DEFAULT_TABLE.name}, the 45 nm figures of Horowitz, ISSCC 2014, with the width rules
documented in intsim/core/energy.py).

A step = forward, softmax cross-entropy over a CLASSES-way head, backward and one SGD step
(momentum 0.9, weight decay 2e-4); for a single layer the backward of an output gradient.
The whole of a class-incremental run is in cost.json of every `intsim cil` run folder.

model specs:
  fcnet:IN,HIDDEN,FEATURE[,CLASSES]   FCNet + a CLASSES-way head (default 10 classes)
  smallcnn[:C,H,W[,CLASSES]]          SmallCNN (default 1,28,28,10)
  resnet32[:C,H,W[,CLASSES]]          CIFAR ResNet-32 (default 3,32,32,100)
  linear:IN,OUT | conv:CIN,COUT,K,STRIDE,PAD,H,W | block:CIN,COUT,STRIDE,H,W   one layer

examples:
  intsim cost --numerics hdqt --model fcnet:405,405,405,19 --batch 128
  intsim cost --compare fp32 int4 luq hdqt_paper hdqt --model fcnet:405,405,405,19
  intsim cost --numerics my_datapath.toml --model resnet32 --energy my_process.toml --json c.json"""

PREFIXES = ((1e12, "J"), (1e9, "mJ"), (1e6, "µJ"), (1e3, "nJ"), (1.0, "pJ"))


def register(subparsers) -> None:
    p = subparsers.add_parser("cost", help=COST_HELP, description=COST_DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--numerics", metavar="NAME|FILE.toml",
                   help="numerics preset (fp32 int4 luq hdqt_paper hdqt) or datapath TOML file")
    p.add_argument("--compare", nargs="+", metavar="NAME|FILE.toml",
                   help="several numerics side by side, each relative to fp32")
    p.add_argument("--model", default="fcnet:405,405,405,19", metavar="SPEC",
                   help="network or layer (see below; default fcnet:405,405,405,19, the paper's "
                        "DSADS network)")
    p.add_argument("--batch", type=int, default=128, help="mini-batch size (default 128)")
    p.add_argument("--samples", type=int, metavar="N",
                   help="also the cost of one epoch over N training samples")
    p.add_argument("--nonnegative-input", action="store_true",
                   help="the input batch is >= 0 (e.g. a layer that follows a ReLU)")
    p.add_argument("--energy", metavar="TABLE.toml",
                   help="per-operation energy table (default: the shipped 45 nm table)")
    p.add_argument("--json", metavar="PATH", help="write the full report as JSON")
    p.set_defaults(func=cmd_cost)


def fmt_pj(v: float) -> str:
    """An energy in pJ with an SI prefix: 209.09 µJ."""
    for scale, unit in PREFIXES:
        if abs(v) >= scale:
            return f"{v / scale:.2f} {unit}"
    return f"{v:.3g} pJ"


def _layer_lines(layers) -> list[str]:
    shown = [p for p in PARTS if (layers[f"{p}_pj"] != 0).any()]
    head = ["layer", "kind", "MACs", "multiplier", *shown, "memory", "total"]
    body = []
    for _, r in layers.iterrows():
        body.append([str(r["layer"]) if r["role"] == "student" else f"{r['role']}:{r['layer']}",
                     str(r["kind"]), f"{r['macs']:,}" if r["macs"] else "",
                     str(r["multiplier"]).replace("int_mul ", ""),
                     *(fmt_pj(r[f"{p}_pj"]) if r[f"{p}_pj"] else "" for p in shown),
                     fmt_pj(r["memory_pj"]), fmt_pj(r["pj"])])
    return _grid(head, body, left=4)


def _grid(head: list, body: list, left: int) -> list[str]:
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]

    def line(cells):
        return " | ".join(f"{c:<{w}}" if i < left else f"{c:>{w}}"
                          for i, (c, w) in enumerate(zip(cells, widths)))
    return [line(head), "-" * len(line(head))] + [line(b) for b in body]


def _totals_lines(label: str, t: dict) -> list[str]:
    parts = ", ".join(f"{k} {fmt_pj(v)}" for k, v in t["compute_pj_by_part"].items() if v)
    classes = ", ".join(f"{k} {fmt_pj(v)}" for k, v in t["memory_pj_by_class"].items() if v)
    return [f"{label}: {fmt_pj(t['pj'])} (compute {fmt_pj(t['compute_pj'])}, memory "
            f"{fmt_pj(t['memory_pj'])})",
            f"  compute by part: {parts}", f"  memory by tensor class: {classes}",
            f"  {t['macs']:,} MACs, {t['random_bits']:,} random bits, "
            f"{t['bytes_moved']:,} bytes moved"]


def _print_report(r) -> None:
    print(f"{r.numerics} on {r.model}, batch {r.batch}; energy table {r.table.name}")
    print()
    print("\n".join(_layer_lines(r.layers)))
    print()
    print("\n".join(_totals_lines("per step", r.per_step)))
    print(f"  {r.rel_fp32:.3f} × the same step in fp32")
    if r.per_epoch is not None:
        print("\n".join(_totals_lines(f"per epoch ({r.samples} samples)", r.per_epoch)))
    if r.unknown:
        print(f"not counted (no rule): {', '.join(r.unknown)}")


def _print_compare(df) -> None:
    cols = [("pJ/step", "pj_step"), ("× fp32", "rel_fp32"), ("compute", "compute_pj"),
            ("memory", "memory_pj"), ("matmul", "matmul_pj"), ("saturate", "saturate_pj"),
            ("hadamard", "hadamard_pj"), ("quantize", "quantize_pj"), ("sr", "sr_pj"),
            ("MACs", "macs"), ("random bits", "random_bits")]
    body = []
    for _, r in df.iterrows():
        cells = [str(r["numerics"])]
        for name, key in cols:
            v = r[key]
            cells.append(f"{v:.3f}" if key == "rel_fp32" else f"{int(v):,}"
                         if key in ("macs", "random_bits") else fmt_pj(v))
        body.append(cells)
    print("\n".join(_grid(["numerics", *(c for c, _ in cols)], body, left=1)))


def cmd_cost(args: argparse.Namespace) -> int:
    if (args.numerics is None) == (args.compare is None):
        return error("cost", "give --numerics NAME or --compare NAME [NAME …] (one of them)")
    try:
        if args.compare:
            df = compare(args.compare, args.model, args.batch, args.energy, args.samples,
                         args.nonnegative_input)
            print(f"{args.model}, batch {args.batch}: energy per training step")
            _print_compare(df)
            doc = {"model": args.model, "batch": args.batch,
                   "rows": df.to_dict(orient="records")}
        else:
            r = cost(args.numerics, args.model, args.batch, args.energy, args.samples,
                     args.nonnegative_input)
            _print_report(r)
            doc = r.to_json()
    except (ValueError, FileNotFoundError) as e:
        return error("cost", e)
    if args.json:
        atomic_write_text(os.fspath(args.json), json.dumps(jsonable(doc), indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0
