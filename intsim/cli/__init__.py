"""intsim — a bit-exact integer-arithmetic simulator for low-precision NN training (HDQT)."""
from __future__ import annotations

import argparse
import sys


def _cmd_bench(args) -> int:
    from intsim.experiments import bench
    bench.run(quick=args.quick, only=args.only, json_path=args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="intsim", description=__doc__,
        epilog="Run 'intsim COMMAND --help' for the options of a command.")
    from intsim import __version__
    parser.add_argument("--version", action="version", version=f"intsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("bench", help="speed of kernels and a training step vs a baseline",
                       description="Time intsim's kernels and an FCNet training step against "
                       "a baseline measured in the same run (float32 BLAS, dense Hadamard, "
                       "np.round, an fp32 step). Prints median seconds and ratio = ours / "
                       "baseline.")
    p.add_argument("--json", metavar="PATH", help="also write the records as JSON here")
    p.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    p.add_argument("--only", nargs="+", metavar="SUITE",
                   choices=["matmul", "fwht", "quantize", "train_step", "cil", "trace"],
                   help="run only these suites")
    p.set_defaults(func=_cmd_bench)

    from intsim.cli import cil as cli_cil, hw as cli_hw, sweep as cli_sweep
    cli_cil.register(sub)
    cli_hw.register(sub)
    cli_sweep.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"intsim {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
