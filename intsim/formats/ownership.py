"""Which folders intsim made, which files in them are its own, and who is using one now.

    .intsim.json    the marker, written first into every folder intsim makes for its output:
                    {"format": "intsim-folder", "kind": "run" | "demo" | "sweep" |
                     "overflow-report",
                     "intsim_version": …, "created": ISO time}
    .intsim.lock    an OS lock (fcntl.flock, exclusive) held for the whole lifetime of a run,
                    demo or sweep; the holder's pid, host, command and start time are written
                    into it, so a second process is told who holds the folder

intsim writes into a folder only when it is new, empty, or marked as its own (the policy of
each command — intsim.experiments — also accepts folders of older intsim versions, which have
no marker), and `remove_own_files` deletes only the files intsim itself writes there.

The lock is per open file description: a second process (or another thread of this process)
that asks for a held folder gets FolderBusy at once; the same thread may take it again
(nested holds: a sweep cell around the run inside it). The OS releases it when the holder
exits, however it exits; the lock file stays (deleting it would race with a process opening
it). flock works across hosts on NFS (Linux emulates it with fcntl locks there).
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Optional

from intsim._version import __version__
from intsim.formats.atomic import atomic_write_text

MARKER = ".intsim.json"
LOCK = ".intsim.lock"
MARKER_FORMAT = "intsim-folder"
#: the names intsim keeps in every folder it owns (never removed by remove_own_files)
BOOKKEEPING = (MARKER, LOCK)


class FolderBusy(RuntimeError):
    """Another process (or thread) holds the folder's lock; the message names both."""

    def __init__(self, folder: Path, holder: str):
        super().__init__(f"{folder} is in use by {holder}; wait for it to finish or choose "
                         f"another output folder")
        self.folder, self.holder = folder, holder


def read_marker(folder: os.PathLike | str) -> Optional[dict]:
    """The marker of `folder` (a dict with "kind"), or None when it has none (or an
    unreadable one)."""
    try:
        doc = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == MARKER_FORMAT else None


def write_marker(folder: os.PathLike | str, kind: str) -> None:
    """Mark `folder` as intsim's own folder of `kind` (kept if it is already marked so)."""
    old = read_marker(folder)
    if old is not None and old.get("kind") == kind:
        return
    atomic_write_text(os.fspath(Path(folder) / MARKER), json.dumps(
        {"format": MARKER_FORMAT, "kind": kind, "intsim_version": __version__,
         "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=1) + "\n")


def user_entries(folder: os.PathLike | str) -> list[str]:
    """The names in `folder` other than intsim's bookkeeping files ([] when it is absent)."""
    p = Path(folder)
    if not p.is_dir():
        return []
    return sorted(n for n in os.listdir(p) if n not in BOOKKEEPING)


def remove_own_files(folder: os.PathLike | str, names: Iterable[str],
                     dirs: Optional[dict[str, str]] = None) -> list[str]:
    """Delete the files `names` of `folder`, intsim's own leftovers of atomic writes
    (".tmp-*<name>"), and in each sub-folder of `dirs` (name -> glob pattern) the files
    matching the pattern or ".tmp-*<pattern>" (the sub-folder itself only if that empties
    it). Anything else is left alone. Returns the relative paths removed."""
    p = Path(folder)
    removed = []
    names = list(names)
    for n in names:
        if (p / n).is_file():
            (p / n).unlink()
            removed.append(n)
    if p.is_dir():
        for n in os.listdir(p):
            if n.startswith(".tmp-") and any(n.endswith(x) for x in names) and (p / n).is_file():
                (p / n).unlink()
                removed.append(n)
    for sub, pattern in (dirs or {}).items():
        d = p / sub
        if not d.is_dir():
            continue
        for f in sorted(d.glob(pattern)) + sorted(d.glob(".tmp-*" + pattern)):
            if f.is_file():
                f.unlink()
                removed.append(f"{sub}/{f.name}")
        if not any(d.iterdir()):
            d.rmdir()
    return removed


def remove_if_unused(folder: os.PathLike | str) -> bool:
    """Delete `folder` when it holds nothing but intsim's bookkeeping files (a command that
    made it and then failed before writing anything); True when it was removed."""
    p = Path(folder)
    if not p.is_dir() or user_entries(p):
        return False
    for n in BOOKKEEPING:
        (p / n).unlink(missing_ok=True)
    try:
        p.rmdir()
    except OSError:
        return False
    return True


# ---------------------------------------------------------------------------- the lock
_HELD: dict[str, list] = {}            # real path -> [thread ident, count, fd]
_HELD_LOCK = threading.Lock()


def _holder_text(path: Path) -> str:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return (f"{doc.get('command', 'intsim')} (pid {doc.get('pid')} on host "
                f"{doc.get('host')}, since {doc.get('started')})")
    except (OSError, ValueError, AttributeError):
        return "another intsim process (it has not written its pid yet)"


@contextmanager
def hold(folder: os.PathLike | str, command: Optional[str] = None) -> Iterator[Path]:
    """Hold the exclusive lock of `folder` (created if absent) for the `with` block.

    FolderBusy when another process or thread holds it; the same thread may nest holds.
    `command` is written into the lock file for others to read (default: the command line)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(folder)
    me = threading.get_ident()
    with _HELD_LOCK:
        entry = _HELD.get(key)
        if entry is not None:
            if entry[0] != me:
                raise FolderBusy(folder, f"another thread of this process (pid {os.getpid()})")
            entry[1] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield folder
        finally:
            with _HELD_LOCK:
                _HELD[key][1] -= 1
        return
    path = folder / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise FolderBusy(folder, _holder_text(path)) from None
        raise
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "command": command or " ".join(["intsim", *sys.argv[1:2]]),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        try:                   # who holds it is advice for others; the lock is what counts
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except OSError:        # a full disk: the first real write then names its file
            pass
        with _HELD_LOCK:
            _HELD[key] = [me, 1, fd]
        try:
            yield folder
        finally:
            with _HELD_LOCK:
                _HELD.pop(key, None)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
