"""The identity of a loaded data set: which files (absolute path, SHA-256) and which arrays.

An experiment records ``dataset_identity(ds)`` in its config.json and, on resume, checks that
the data are still the same with ``check_identity(recorded, dataset_identity(reloaded))`` (or,
before loading anything, ``check_identity(recorded)``, which re-hashes the recorded files)::

    from intsim.datasets import load_dataset, dataset_identity, check_identity
    ds = load_dataset("myhar.csv")
    ident = dataset_identity(ds)          # JSON-ready dict -> config.json["dataset_identity"]
    ...
    check_identity(ident, dataset_identity(load_dataset("myhar.csv")))   # on resume

The identity is a dict of plain JSON types::

    {
      "identity_version": 1,
      "name": "myhar",                    # Dataset.name
      "synthetic": false,
      "loader": "table_csv",              # how the data were read (Dataset.meta["layout"])
      "params": {"label_column": "label"},# loader parameters that change the result
      "files": [                          # every source file, as read at load time
        {"path": "/abs/path/myhar.csv", "sha256": "3f5a...", "bytes": 18234}
      ],
      "content_sha256": "9c1e...",        # SHA-256 over X, y, subject, is_test, class names
      "shape": [1200, 54], "n_classes": 6
    }

``files`` come from ``Dataset.meta["source_files"]``, which every file-backed loader reached
through :func:`intsim.datasets.load_dataset` fills: bring-your-own files hash exactly the bytes
they parsed; registry data sets (watch, dsads, pamap2, hapt, cifar100, fashion_mnist) hash their
source files when loaded.  A source of more than :data:`MAX_LISTED_FILES` files (the 9,120 DSADS
segment files) is recorded as one folder entry ``{"path": root, "sha256": <digest over sorted
(relative path, file SHA-256) pairs>, "files": 9120, "kind": "folder"}``.  Generated and
in-memory data sets (``synthetic``, ``from_arrays``, ``digits``) have no files; their
``content_sha256`` (and, for generators, ``params``) identifies them.

:func:`check_identity` compares ``name``, ``params``, each file's SHA-256 and size (a moved file
with the same content is accepted; the new path is reported only by :func:`identity_differences`)
and ``content_sha256`` when both sides have it.  Any difference is a
:class:`DatasetIdentityError` (a ValueError) naming what changed.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from intsim.datasets.base import Dataset
from intsim.datasets.safeio import sha256_file

__all__ = ["IDENTITY_VERSION", "MAX_LISTED_FILES", "DatasetIdentityError", "file_record", "source_records",
           "content_sha256", "dataset_identity", "identity_differences", "check_identity"]

IDENTITY_VERSION = 1
#: Sources with more files than this are recorded as one folder digest.
MAX_LISTED_FILES = 64


class DatasetIdentityError(ValueError):
    """The data set differs from the one recorded (changed file, missing file, other params)."""


def file_record(path: os.PathLike | str, sha256: str | None = None, size: int | None = None) -> dict:
    """``{"path": absolute path, "sha256": hex, "bytes": size}`` of one file (hashed unless given)."""
    p = Path(path).expanduser().resolve()
    return {"path": str(p), "sha256": sha256 if sha256 is not None else sha256_file(p),
            "bytes": int(size if size is not None else p.stat().st_size)}


def source_records(paths: Iterable[os.PathLike | str], root: os.PathLike | str | None = None,
                   digests: Mapping[str, str] | None = None) -> list[dict]:
    """Records for the source files of a data set (see the module docstring).

    ``digests`` maps ``str(path)`` to an already computed SHA-256 (to avoid hashing twice).
    More than :data:`MAX_LISTED_FILES` files become one folder record relative to ``root``.
    """
    paths = [Path(p) for p in paths]
    digests = dict(digests or {})
    recs = [file_record(p, digests.get(str(p))) for p in paths]
    if len(recs) <= MAX_LISTED_FILES:
        return recs
    rootp = Path(root).expanduser().resolve() if root is not None else Path(os.path.commonpath(
        [r["path"] for r in recs]))
    outer = hashlib.sha256()
    for rel, digest in sorted((Path(r["path"]).relative_to(rootp).as_posix(), r["sha256"]) for r in recs):
        outer.update(rel.encode() + b"\0" + digest.encode() + b"\n")
    return [{"path": str(rootp), "sha256": outer.hexdigest(), "files": len(recs),
             "bytes": sum(r["bytes"] for r in recs), "kind": "folder"}]


def content_sha256(ds: Dataset) -> str:
    """SHA-256 over the arrays and labels a learner sees: X, y, subject, is_test (dtype, shape,
    bytes) and the class names, in that order."""
    h = hashlib.sha256()
    for key in ("X", "y", "subject", "is_test"):
        a = getattr(ds, key)
        h.update(key.encode() + b"\0")
        if a is None:
            h.update(b"<none>")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    h.update(json.dumps(list(ds.class_names)).encode())
    return h.hexdigest()


def jsonable(obj: Any) -> Any:
    """obj with mappings, sequences, arrays, NumPy scalars and paths turned into JSON types."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dataset_identity(ds: Dataset, content: bool = True) -> dict:
    """JSON-ready identity of ``ds`` (format in the module docstring).

    ``content=False`` skips ``content_sha256`` (hashing X costs about 1 s per GB).
    """
    if not isinstance(ds, Dataset):
        raise ValueError(f"dataset_identity: expected an intsim.datasets.Dataset, got {type(ds).__name__}")
    meta = ds.meta
    out = {
        "identity_version": IDENTITY_VERSION,
        "name": ds.name,
        "synthetic": bool(ds.synthetic),
        "loader": meta.get("layout"),
        "params": jsonable(meta.get("load_params", meta.get("params", {}))),
        "files": jsonable(list(meta.get("source_files", []))),
        "shape": list(ds.X.shape),
        "n_classes": ds.n_classes,
    }
    if content:
        out["content_sha256"] = content_sha256(ds)
    return out


def _rehash(recorded: Mapping[str, Any]) -> list[dict]:
    """Current records of the recorded files (a missing file gets ``sha256 = None``)."""
    out = []
    for r in recorded.get("files", []):
        p = Path(r["path"])
        if r.get("kind") == "folder":
            out.append({**r, "sha256": None, "note": "folder digests are checked by reloading the data set"})
        elif p.is_file():
            out.append(file_record(p))
        else:
            out.append({"path": str(p), "sha256": None, "bytes": None})
    return out


def identity_differences(recorded: Mapping[str, Any], current: Mapping[str, Any] | None = None,
                         ) -> tuple[list[str], list[str]]:
    """``(errors, notes)``: what differs between two identities (``current=None``: re-hash the
    recorded files on disk).  ``notes`` lists harmless changes (a file moved, same content)."""
    errors: list[str] = []
    notes: list[str] = []
    if current is None:
        for old, new in zip(recorded.get("files", []), _rehash(recorded), strict=True):
            if new.get("note"):
                notes.append(f"{old['path']}: {new['note']}")
            elif new["sha256"] is None:
                errors.append(f"source file {old['path']} no longer exists")
            elif new["sha256"] != old["sha256"]:
                errors.append(f"source file {old['path']} changed: SHA-256 was {old['sha256']}, "
                              f"now {new['sha256']}")
        return errors, notes
    for key in ("name", "params"):
        if recorded.get(key) != current.get(key):
            errors.append(f"{key} was {recorded.get(key)!r}, now {current.get(key)!r}")
    old_files, new_files = list(recorded.get("files", [])), list(current.get("files", []))
    if len(old_files) != len(new_files):
        errors.append(f"{len(old_files)} source file record(s) recorded, {len(new_files)} now: "
                      f"{[f['path'] for f in old_files]} vs {[f['path'] for f in new_files]}")
    else:
        for old, new in zip(old_files, new_files, strict=True):
            if old.get("sha256") != new.get("sha256") or old.get("bytes") != new.get("bytes"):
                errors.append(f"source {old['path']} changed: SHA-256 was {old.get('sha256')} "
                              f"({old.get('bytes')} bytes), now {new.get('sha256')} ({new.get('bytes')} bytes"
                              + (f", at {new['path']}" if new["path"] != old["path"] else "") + ")")
            elif old["path"] != new["path"]:
                notes.append(f"source {old['path']} is now read from {new['path']} (same content)")
    a, b = recorded.get("content_sha256"), current.get("content_sha256")
    if a is not None and b is not None and a != b:
        errors.append(f"the loaded arrays differ (content SHA-256 was {a}, now {b})")
    return errors, notes


def check_identity(recorded: Mapping[str, Any], current: Mapping[str, Any] | Dataset | None = None) -> list[str]:
    """Raise :class:`DatasetIdentityError` if ``current`` is not the recorded data set.

    ``current``: an identity dict, a :class:`Dataset` (its identity is computed), or None
    (re-hash the recorded files on disk, without loading).  Returns the harmless notes.
    """
    if not isinstance(recorded, Mapping) or "files" not in recorded:
        raise ValueError("check_identity: recorded must be a dict made by dataset_identity(), "
                         f"got {type(recorded).__name__}")
    if isinstance(current, Dataset):
        current = dataset_identity(current, content=recorded.get("content_sha256") is not None)
    errors, notes = identity_differences(recorded, current)
    if errors:
        raise DatasetIdentityError(f"data set {recorded.get('name')!r} is not the one recorded: "
                                   + "; ".join(errors))
    return notes
