"""Where the commands write: one policy for the output folders of intsim cil, demo and sweep.

Every folder intsim makes for output carries the marker .intsim.json with its kind ("run",
"demo", "sweep", "overflow-report"; intsim.formats.ownership). For an output folder DIR:

    DIR absent or empty                 created and marked; the command writes into it
    DIR marked as this kind             intsim's own: the command's rules for an existing
                                        folder apply (cil, demo: refused unless --resume /
                                        --overwrite; sweep: continued)
    DIR unmarked, made by an older      treated as intsim's own (and marked from now on); it
      intsim (LEGACY: the kind's main   is recognised by that file and its keys
      file with its known keys)
    DIR marked as another kind          refused, naming the kind
    anything else (a non-empty folder   refused, also with --overwrite: intsim never writes
      intsim did not make)              into, and never deletes from, a folder it did not make

--overwrite removes only the files intsim writes there (RUN_FILES, the checkpoints), never
anything else a user put into the folder. Each command holds the folder's lock while it runs.
"""
from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Optional

from intsim.experiments.config import ConfigError
from intsim.formats.ownership import MARKER, read_marker, remove_own_files, user_entries
from intsim.formats.run_folder import read_json

#: the files intsim writes into a run folder (what --overwrite may remove)
RUN_FILES = ("config.json", "metrics.json", "trace.h5", "trace_summary.json", "accuracy.png",
             "cost.json", "trace.h5.corrupt", "status.json", "error.txt", ".intsim-space-probe",
             "history.jsonl", "loss.png")
RUN_DIRS = {"checkpoints": "task[0-9][0-9][0-9].npz"}
#: kind -> (main file of a folder made before markers existed, keys it must hold)
LEGACY = {"run": ("config.json", {"settings", "scenario", "seeds"}),
          "demo": ("summary.json", {"epochs", "seeds", "rows"}),
          "sweep": ("cells.json", {"fields", "cells"})}


def folder_kind(folder: os.PathLike | str) -> Optional[str]:
    """The kind of intsim folder `folder` is (marker, else LEGACY), or None."""
    marker = read_marker(folder)
    if marker is not None:
        return str(marker.get("kind"))
    for kind, (name, keys) in LEGACY.items():
        doc = read_json(Path(folder) / name)
        if isinstance(doc, dict) and keys <= set(doc):
            return kind
    return None


def check_output_folder(folder: os.PathLike | str, kind: str, flag: str = "--out") -> bool:
    """True when `folder` is intsim's own folder of `kind` with content, False when it is
    absent or empty; ConfigError when it is a non-empty folder intsim did not make or an
    intsim folder of another kind (module docstring)."""
    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{flag} {p} exists and is not a folder")
    entries = user_entries(p)
    if not entries:
        return False
    found = folder_kind(p)
    if found == kind:
        return True
    if found is not None:
        article = "an" if kind[0] in "aeiou" else "a"
        raise ConfigError(f"{flag} {p} is an intsim {found} folder, not {article} {kind} "
                          f"folder; choose another {flag}")
    shown = ", ".join(entries[:3]) + (", …" if len(entries) > 3 else "")
    raise ConfigError(f"{flag} {p} is not empty ({shown}) and was not made by intsim (no "
                      f"{MARKER}); intsim writes only into a new, empty or intsim-made folder "
                      f"and never deletes what it did not write: choose another {flag}")


def remove_leftovers(folder: os.PathLike | str) -> list[str]:
    """Remove the temporary files a killed atomic write of intsim's left in a run folder."""
    removed = []
    for d in (Path(folder), Path(folder) / "checkpoints"):
        if d.is_dir():
            for p in d.glob(".tmp-*"):
                if p.is_file() and (p.name.endswith(RUN_FILES) or fnmatch.fnmatch(
                        p.name, ".tmp-*" + RUN_DIRS["checkpoints"])):
                    p.unlink()
                    removed.append(os.fspath(p.relative_to(folder)))
    return removed


def clear_run_folder(folder: os.PathLike | str) -> list[str]:
    """Remove intsim's own files of a run folder (a fresh start); returns what was removed."""
    return remove_own_files(folder, RUN_FILES, RUN_DIRS)
