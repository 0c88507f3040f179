"""JSON Lines files that grow row by row: appended safely, read back, trimmed atomically.

A row is one JSON object on one line, terminated by '\\n' (https://jsonlines.org; pandas reads
it with ``pd.read_json(path, lines=True)``).

    append_row(path, {"task": 0, "epoch": 3, "loss": 0.41})
    rows = read_rows(path)                  # [] when the file does not exist
    rewrite_rows(path, rows[:10])           # atomic: the old file or the new one, never half

append_row writes the whole line with one write() on a file opened for appending, then flushes
and fsyncs: a process killed while appending leaves at most one incomplete last line (no
'\\n'), which read_rows ignores. Any other line that is not a JSON object is a ValueError naming
the file and the line. A failed write is a StorageError naming the file (intsim.formats.atomic).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from intsim.formats.atomic import atomic_write_text, storage
from intsim.formats.run_folder import jsonable


def _line(row: Mapping[str, Any]) -> str:
    return json.dumps(jsonable(dict(row)), allow_nan=False, separators=(",", ":")) + "\n"


def append_row(path: os.PathLike | str, row: Mapping[str, Any]) -> None:
    """Append `row` as one line (flushed and fsynced before returning)."""
    data = _line(row).encode("utf-8")
    with storage(path):
        fd = os.open(os.fspath(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def read_rows(path: os.PathLike | str) -> list[dict]:
    """Every complete row of the file ([] when it is absent); an incomplete last line (an
    interrupted append) is skipped; ValueError naming file and line for a bad one."""
    p = Path(path)
    if not p.exists():
        return []
    text = p.read_text(encoding="utf-8")
    lines = text.split("\n")
    complete = lines[:-1]                     # the part after the last '\n' is incomplete
    rows = []
    for i, line in enumerate(complete, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise ValueError(f"{p}: line {i} is not JSON ({e})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{p}: line {i} is not a JSON object")
        rows.append(row)
    return rows


def rewrite_rows(path: os.PathLike | str, rows: Iterable[Mapping[str, Any]]) -> None:
    """Replace the file by `rows`, atomically."""
    atomic_write_text(os.fspath(path), "".join(_line(r) for r in rows))
