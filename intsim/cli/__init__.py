"""intsim — a bit-exact integer-arithmetic simulator for low-precision NN training (HDQT)."""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from intsim._version import __version__
from intsim.cli import bench as cli_bench
from intsim.cli import cil as cli_cil
from intsim.cli import cost as cli_cost
from intsim.cli import hw as cli_hw
from intsim.cli import sweep as cli_sweep
from intsim.cli import vectors as cli_vectors
from intsim.cli.common import STORAGE, error
from intsim.formats.atomic import StorageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="intsim", description=__doc__,
        epilog="Run 'intsim COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"intsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (cli_bench, cli_cil, cli_cost, cli_hw, cli_vectors, cli_sweep):
        module.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args) or 0
    except StorageError as err:            # an output file could not be written
        return error(args.command, err, STORAGE)
    except (ValueError, FileNotFoundError, ImportError) as err:
        return error(args.command, err)
