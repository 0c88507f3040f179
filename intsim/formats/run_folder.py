"""The files of an `intsim cil` run folder: JSON documents, checkpoints and the trace file.

    config.json, metrics.json, trace_summary.json   JSON (NaN/inf written as null), atomic
    checkpoints/taskNNN.npz                         learner arrays + "meta_json" (no pickles)
    trace.h5                                        intsim.core.trace records under group "trace"

Every file is written atomically (a complete file or none). What is in each document is
decided by intsim.experiments; this module only knows how the files are stored.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, Optional

import h5py
import numpy as np

from intsim.core.trace import TABLES as TRACE_TABLES
from intsim.formats.atomic import atomic_path, atomic_write_text

TRACE_GROUP = "trace"
TRACE_OPS = tuple(TRACE_TABLES)      # records and the optional per-event logs
CHECKPOINT_FORMAT = 1


def jsonable(obj: Any) -> Any:
    """JSON-ready copy: dataclasses -> dicts, mappings -> dicts, NumPy -> Python, NaN/inf -> None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    return repr(obj)


def write_json(path: os.PathLike | str, obj: Any) -> None:
    """obj (made jsonable) as indented JSON at `path`, atomically."""
    atomic_write_text(os.fspath(path), json.dumps(jsonable(obj), indent=2) + "\n")


def read_json(path: os.PathLike | str) -> Optional[Any]:
    """The JSON document at `path`, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------- checkpoints
def checkpoint_path(folder: Path, task: int) -> Path:
    return Path(folder) / f"task{task:03d}.npz"


def checkpoints(folder: Path) -> list[Path]:
    """The checkpoints of a folder, oldest task first."""
    folder = Path(folder)
    return sorted(folder.glob("task[0-9][0-9][0-9].npz")) if folder.is_dir() else []


def write_checkpoint(path: Path, arrays: dict, meta: dict) -> Path:
    """arrays + meta (JSON, stored as the string array "meta_json") as an npz, atomically and
    synced to disk."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    arrays = dict(arrays, meta_json=np.array(json.dumps(meta)))
    with atomic_path(os.fspath(path)) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def read_checkpoint(path: Path) -> tuple[dict, dict]:
    """(arrays, meta) of a checkpoint (never unpickles)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta_json")))
    return arrays, meta


# ---------------------------------------------------------------------------- trace.h5
def trace_rows(path: Path) -> dict[str, int]:
    """Rows per record kind ("matmul", "quantize") in a trace file; {} when it is absent."""
    rows = {}
    if not Path(path).exists():
        return rows
    with h5py.File(path, "r") as f:
        for op in TRACE_OPS:
            key = f"{TRACE_GROUP}/{op}"
            if key in f and "step" in f[key]:
                rows[op] = int(f[key]["step"].shape[0])
    return rows


def truncate_trace(path: Path, rows: dict[str, int]) -> None:
    """Cut every column of a trace file back to the row counts of `rows` (a checkpoint's)."""
    with h5py.File(path, "a") as f:
        for op in TRACE_OPS:
            key = f"{TRACE_GROUP}/{op}"
            if key not in f:
                continue
            n = rows.get(op, 0)
            for name, d in f[key].items():
                if d.shape[0] > n:
                    d.resize(n, axis=0)


def init_trace_file(path: Path, attrs: dict) -> None:
    """A new, empty trace file with root attributes `attrs` (replacing any file there)."""
    with h5py.File(path, "w") as f:
        for k, v in attrs.items():
            f.attrs[k] = str(v) if isinstance(v, str) else v


def trace_attrs(path: Path) -> dict:
    """The root attributes of a trace file (str for byte strings)."""
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
