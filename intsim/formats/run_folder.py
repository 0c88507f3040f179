"""The files of an `intsim cil` run folder: JSON documents, checkpoints and the trace file.

    config.json, metrics.json, trace_summary.json   JSON (NaN/inf written as null), atomic
    checkpoints/taskNNN.npz                         learner arrays + "meta_json" (no pickles);
                                                    meta "checksum": SHA-256 of the arrays
    trace.h5                                        intsim.core.trace records under group "trace"

Every file is written atomically (a complete file or none), except trace.h5, which grows by
appends. HDF5 writes some of its data when its objects are closed, inside destructors that
cannot report errors; after such a failed write (a full disk) HDF5's caches are inconsistent
and the next HDF5 call may crash the process (h5py 3.16 / HDF5 2.0 segfault there). So every
write to trace.h5 first checks that the file system has room for it (`ensure_space`, a
posix_fallocate probe of a bound on the bytes the write can allocate) and raises StorageError
naming the file otherwise — HDF5 never sees the full disk and the file keeps its last good
rows; `repair_trace` rolls a trace back to a checkpoint's row counts on resume (or moves an
unreadable one aside). Storage failures are StorageError (an OSError) naming the path.
What is in each document is decided by intsim.experiments; this module only knows how the
files are stored.
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any, Optional

import h5py
import numpy as np

from intsim.core.trace import CHUNK_BYTES, Trace
from intsim.core.trace import TABLES as TRACE_TABLES
from intsim.formats.atomic import StorageError, atomic_path, atomic_write_text, storage

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


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (unreadable, corrupt, or not this run's); names it."""


def arrays_checksum(arrays: dict) -> str:
    """SHA-256 over the arrays in name order: name, dtype, shape and bytes of each."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(json.dumps([k, a.dtype.str, list(a.shape)]).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write_checkpoint(path: Path, arrays: dict, meta: dict) -> Path:
    """arrays + meta (JSON, stored as the string array "meta_json", with "checksum" =
    arrays_checksum(arrays)) as an npz, atomically and synced to disk."""
    with storage(path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    meta = dict(meta, checksum={"sha256": arrays_checksum(arrays)})
    arrays = dict(arrays, meta_json=np.array(json.dumps(meta)))
    with atomic_path(os.fspath(path)) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def read_checkpoint(path: Path) -> tuple[dict, dict]:
    """(arrays, meta) of a checkpoint (never unpickles). CheckpointError naming the file when
    it is unreadable, truncated or corrupt, or its checksum does not match (checkpoints of
    older intsim versions have no checksum; their zip CRCs are still checked)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read it ({e.strerror})") from None
    if head != b"PK\x03\x04":
        raise CheckpointError(f"{path}: not a readable checkpoint (not an .npz archive: "
                              f"{'empty file' if not head else 'no zip signature'})")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile,
            NotImplementedError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: "
                              f"{str(e) or 'no detail'})") from None
    if "meta_json" not in arrays:
        raise CheckpointError(f"{path}: not an intsim checkpoint (no meta_json)")
    try:
        meta = json.loads(str(arrays.pop("meta_json")))
    except ValueError as e:
        raise CheckpointError(f"{path}: corrupt meta_json ({e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: corrupt meta_json (not an object)")
    want = (meta.get("checksum") or {}).get("sha256") if isinstance(meta.get("checksum"),
                                                                     dict) else None
    if "checksum" in meta and want != arrays_checksum(arrays):
        raise CheckpointError(f"{path}: checksum mismatch (the arrays changed after they "
                              f"were written)")
    return arrays, meta


# ---------------------------------------------------------------------------- trace.h5
def trace_rows(path: Path) -> dict[str, int]:
    """Rows per record kind ("matmul", "quantize") in a trace file; {} when it is absent."""
    rows = {}
    if not Path(path).exists():
        return rows
    with storage(path, "read"), h5py.File(path, "r") as f:
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
    ensure_space(path, SPACE_MARGIN)
    with storage(path), h5py.File(path, "w") as f:
        for k, v in attrs.items():
            f.attrs[k] = str(v) if isinstance(v, str) else v
        f.flush()


#: free space kept in reserve beyond the bound of every trace.h5 write (HDF5 metadata)
SPACE_MARGIN = 256 << 10
_PROBE = ".intsim-space-probe"


def ensure_space(path: Path, nbytes: int) -> None:
    """StorageError naming `path` unless its file system can allocate `nbytes` now (a probe
    file next to it is allocated that size, then truncated to 0: quotas count, nothing is
    written; remove_space_probe deletes it at the end of a run)."""
    probe = Path(path).parent / _PROBE
    with storage(path):
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, int(nbytes))
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise OSError(e.errno, f"{e.strerror} (no room for {nbytes} bytes)") from None
            st = os.statvfs(probe)                # no fallocate here: ask for the free space
            if st.f_bavail * st.f_frsize < nbytes:
                raise OSError(errno.ENOSPC, f"No space left on device (no room for "
                                            f"{nbytes} bytes)") from None
        finally:
            try:
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)


def remove_space_probe(folder: Path) -> None:
    """Delete the (empty) probe file of ensure_space in `folder`, if any."""
    (Path(folder) / _PROBE).unlink(missing_ok=True)


def append_bytes_bound(trace: Trace | dict) -> int:
    """An upper bound on the bytes appending `trace` to a trace file allocates: per column the
    new rows plus one chunk (core.trace.chunk_rows: at least CHUNK_BYTES or 16 rows; appending
    k rows to n allocates chunks floor(n/c) .. floor((n+k-1)/c), at most k/c + 1 of them),
    strings at 16 bytes + their length + 32 of heap per element; times 1.25, plus
    SPACE_MARGIN for HDF5's metadata."""
    total = 0
    columns = trace.columns() if isinstance(trace, Trace) else trace
    for cols in columns.values():
        for arr in cols.values():
            if arr.dtype.kind == "O":
                row = 48 + max((len(str(v)) for v in arr), default=0)
            else:
                row = arr.dtype.itemsize * int(np.prod(arr.shape[1:], dtype=np.int64))
            total += len(arr) * row + max(CHUNK_BYTES, 16 * row)
    return int(1.25 * total) + SPACE_MARGIN


def append_trace(trace: Trace, path: Path) -> None:
    """Append the records of `trace` to the trace file `path` (group TRACE_GROUP) after
    checking there is room (module docstring); StorageError naming the file otherwise."""
    columns = trace.columns()
    ensure_space(path, append_bytes_bound(columns))
    with storage(path):
        trace.to_hdf5(os.fspath(path), TRACE_GROUP, columns)


def repair_trace(path: Path, rows: dict[str, int]) -> Optional[str]:
    """Roll the trace file back to `rows` (a checkpoint's row counts): None when that worked;
    when the file is unreadable or holds fewer rows than the checkpoint counted, it is moved
    to <name>.corrupt and a warning text is returned (the caller starts a new trace)."""
    problem = None
    try:
        with h5py.File(path, "r") as f:
            for op in TRACE_OPS:
                key = f"{TRACE_GROUP}/{op}"
                n = rows.get(op, 0)
                have = {name: d.shape[0] for name, d in f[key].items()} if key in f else {}
                short = sorted(k for k, m in have.items() if m < n)
                if short or (n and not have):
                    problem = (f"its {op} records end before the {n} rows the checkpoint "
                               f"counted ({', '.join(short) or 'no columns'})")
                    break
        if problem is None:
            _rebuild_trace(path, rows)
            return None
    except StorageError:
        raise
    except Exception as e:                # noqa: BLE001 — any HDF5 failure means unreadable
        problem = f"it is unreadable ({type(e).__name__}: {e})"
    bad = Path(f"{path}.corrupt")
    with storage(bad):
        os.replace(path, bad)
    return f"{path} could not be rolled back: {problem}; moved it to {bad}"


def _rebuild_trace(path: Path, rows: dict[str, int]) -> None:
    """Replace the trace file by a fresh one holding its first `rows` rows: a process killed
    inside an HDF5 write can leave a file whose kept rows read correctly but whose space
    bookkeeping is stale, so that the next append (or any walk of the lost chunks) fails
    ("len not positive after adjustment for EOA"). Only the kept rows are read; each column is
    written again with its dtype, chunking, resizable shape and filters, every attribute
    copied. The new file is written as .tmp-<name> (a killed rebuild leaves only that, which
    remove_leftovers deletes) and moved over the old one."""
    tmp = Path(path).with_name(f".tmp-{Path(path).name}")
    ensure_space(path, Path(path).stat().st_size + SPACE_MARGIN)

    def copy(src, dst, n: Optional[int]) -> None:
        dst.attrs.update(dict(src.attrs))
        for name, obj in src.items():
            if isinstance(obj, h5py.Group):
                copy(obj, dst.create_group(name), rows.get(name, 0) if src.name.endswith(
                    TRACE_GROUP) else None)
                continue
            k = obj.shape[0] if n is None else min(n, obj.shape[0])
            d = dst.create_dataset(name, data=obj[:k], dtype=obj.dtype, maxshape=obj.maxshape,
                                   chunks=obj.chunks, compression=obj.compression,
                                   compression_opts=obj.compression_opts, shuffle=obj.shuffle)
            d.attrs.update(dict(obj.attrs))

    with storage(tmp):
        with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
            copy(src, dst, None)
        os.replace(tmp, path)


def trace_attrs(path: Path) -> dict:
    """The root attributes of a trace file (str for byte strings)."""
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
