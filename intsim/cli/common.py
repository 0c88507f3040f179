"""What every subcommand shares: the one-line error and the exit codes.

Exit codes: 0 success; 1 a verdict that failed (compare mismatch, failed sweep cells);
2 bad input (one line `intsim COMMAND: error: …` on stderr); 130 interrupted.
"""
from __future__ import annotations

import sys

BAD_INPUT, INTERRUPTED = 2, 130


def error(command: str, message: object) -> int:
    """Print `intsim COMMAND: error: MESSAGE` to stderr; returns the bad-input exit code."""
    print(f"intsim {command}: error: {message}", file=sys.stderr)
    return BAD_INPUT
