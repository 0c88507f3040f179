"""`intsim vectors`: directed and stress vectors (or the user's operands) for any datapath.

Parsing and printing only; the work is intsim.hw.vectors."""
from __future__ import annotations

import argparse

from intsim.cli.common import fail
from intsim.cli.hw import add_hex_options, hex_options_from, print_coverage
from intsim.core.modes import MatmulKind
from intsim.hw.golden import write_vectors_file
from intsim.hw.vectors import DEFAULT_RATES, SUITES, build_vectors

DESCRIPTION = """\
Write matmul-level and quantizer-level golden vectors for a datapath, in the golden-file
layout (paths vectors/<case>/<kind>/<tensor>, one descriptor per matmul), with their coverage.

For every product kind (fwd, grad_in, grad_w) whose accumulator is integer, the operand code
ranges and the accumulator (tile T, register, mode) come from the datapath. Suites:
  extreme   K = 1, T-1, T, T+1, 2T-1, 2T, 2T+1 with all-max / all-min / alternating / ramp
            rows and columns: every register saturates (or wraps) both ways
  boundary  K = 3T+1, constant products that leave the register range exactly at the last
            MAC of a tile, or one MAC later (catches T±1-MAC tiles and a missing reset)
  rate      targeted shares of outputs hit by an event (--rate, default 0.05 0.5)
  signs     signed/unsigned mixes of an operand with sign "auto"
  random    uniform codes, K = 2T+3
  tile_sum  maximal tiles until a bounded tile-sum register overflows (≤ 256 tiles)
  sr        stochastic-rounding inputs built from the known random bits so that v sits on
            the carry boundary (low + R = 2^r - 1 and 2^r), negative ones included
  ties      round-to-nearest inputs with v = n + 1/2 exactly and its float32 neighbours

--operands FILE.npz uses your own integer code arrays instead: `a` (M, K) and `b` (K, N), or
`CASE/a`, `CASE/b` for several cases, checked against the kind's operand ranges.

examples:
  intsim vectors --numerics examples/datapath_hdqt.toml --out vectors.h5 --hex vhex/
  intsim vectors --numerics hdqt --kinds fwd --operands my_ops.npz --out mine.h5
  intsim vectors --numerics hdqt --suites boundary sr --select 'boundary*/*' --out b.h5"""


def cmd_vectors(args) -> int:
    try:
        tensors, root = build_vectors(args.numerics, args.kinds or MatmulKind.values(),
                                      args.suites or SUITES, args.operands,
                                      args.rate or DEFAULT_RATES, args.seed,
                                      args.select or ())
        notes = root["notes"]
        res = write_vectors_file(tensors, root, args.out, args.hex, hex_options_from(args))
    except (ValueError, OSError) as e:
        return fail("vectors", e)
    print(f"wrote {res.path}: {res.n_tensors} tensors, {res.n_matmuls} integer matmuls")
    for n in filter(None, notes.split("\n")):
        print(f"skipped: {n}")
    if res.hex_manifest:
        print(f"wrote $readmemh files and {res.hex_manifest}")
    return print_coverage(res.coverage, args.strict_coverage)


def register(subparsers) -> None:
    p = subparsers.add_parser("vectors", help="directed and stress vectors for a datapath",
                              description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--numerics", "--datapath", dest="numerics", required=True,
                   metavar="PRESET|FILE.toml", help="numerics preset or datapath TOML file")
    p.add_argument("--kinds", nargs="+", choices=MatmulKind.values(), metavar="KIND",
                   help="products to write vectors for (default: fwd grad_in grad_w)")
    p.add_argument("--suites", nargs="+", choices=SUITES, metavar="SUITE",
                   help=f"suites (default all: {' '.join(SUITES)})")
    p.add_argument("--operands", metavar="FILE.npz",
                   help="your own integer operands (a, b or CASE/a, CASE/b) instead of suites")
    p.add_argument("--rate", type=float, nargs="+", metavar="SHARE",
                   help="target shares of outputs hit by an event for the rate suite")
    p.add_argument("--seed", type=int, default=0, help="seed of the random suites (default 0)")
    p.add_argument("--select", action="append", metavar="GLOB",
                   help="keep only the matmuls whose label case/kind matches GLOB; repeatable")
    p.add_argument("--out", default="vectors.h5", metavar="FILE.h5",
                   help="output HDF5 file (default vectors.h5)")
    add_hex_options(p)
    p.set_defaults(func=cmd_vectors)
