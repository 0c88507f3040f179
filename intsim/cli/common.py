"""What every subcommand shares: the one-line error and the exit codes.

Exit codes (every subcommand; `intsim COMMAND --help` says which it uses):
    0    success
    1    a verdict that failed (compare mismatch, failed sweep cells)
    2    bad input: one line `intsim COMMAND: error: …` on stderr (a bad setting or file, an
         output folder that is not intsim's or is in use by another run, no valid checkpoint)
    3    the training run diverged (non-finite loss or weights): metrics.json holds
         status "diverged", where it happened and the metrics of the finished tasks
    4    an output file could not be written (full disk, permissions): the message names the
         file; the run can be continued with --resume once the cause is fixed
    130  interrupted (Ctrl-C)
"""
from __future__ import annotations

import sys

from intsim.formats.atomic import StorageError

BAD_INPUT, DIVERGED, STORAGE, INTERRUPTED = 2, 3, 4, 130
EXIT_CODES_HELP = ("exit status: 0 success; 2 bad input (one line on stderr); 3 training\n"
                   "diverged (metrics.json has status \"diverged\"); 4 an output file could\n"
                   "not be written (continue with --resume once fixed); 130 interrupted")


def error(command: str, message: object, code: int = BAD_INPUT) -> int:
    """Print `intsim COMMAND: error: MESSAGE` (one line) to stderr; returns `code` (default
    the bad-input exit code)."""
    text = " ".join(str(message).split("\n"))
    print(f"intsim {command}: error: {text}", file=sys.stderr)
    return code


def fail(command: str, err: BaseException) -> int:
    """error() with the exit code `err` calls for: STORAGE for a StorageError (an output file
    that could not be written: full disk, permissions; the message names it), else BAD_INPUT."""
    return error(command, err, STORAGE if isinstance(err, StorageError) else BAD_INPUT)
