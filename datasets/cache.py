"""HDF5 cache of processed data sets, keyed by source-file checksums and processing parameters.

A cache file is ``<cache_dir>/<name>-<key16>.h5`` where ``key`` is the SHA-256 of a JSON record
of: the data set name, :data:`CACHE_FORMAT`, the feature-extractor version, the processing
parameters, and the SHA-256 of every source file (relative path + content).  Changing a source
file or a parameter therefore selects a different file; nothing is ever reused across them.

Each file stores ``X``, ``y``, optional ``subject`` / ``is_test`` and a JSON attribute with the
other :class:`~intsim.datasets.base.Dataset` fields, plus a SHA-256 of all of that.  On read, a
file that fails to open, lacks a field or fails the checksum is reported with a warning, deleted
and rebuilt.  Writes go to a temporary file in the cache folder, then ``os.replace`` (atomic on
POSIX), so a crash never leaves a half-written file under the final name.

Cache folder: the ``cache_dir`` argument, else ``$INTSIM_CACHE``, else ``~/.cache/intsim``.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from intsim.datasets.base import Dataset
from intsim.datasets.har_features import FEATURE_VERSION
from intsim.datasets.identity import jsonable, source_records
from intsim.datasets.safeio import sha256_file

__all__ = ["CACHE_FORMAT", "default_cache_dir", "hash_files", "cache_key", "cache_path",
           "read_cache", "write_cache", "cached"]

CACHE_FORMAT = 1
_CHUNK = 1 << 20


def default_cache_dir(cache_dir: os.PathLike | str | None = None) -> Path:
    """``cache_dir`` if given, else ``$INTSIM_CACHE``, else ``~/.cache/intsim`` (not created here)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("INTSIM_CACHE")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/intsim").expanduser()


def hash_files(paths: Iterable[os.PathLike | str], root: os.PathLike | str | None = None,
               digests: Mapping[str, str] | None = None) -> str:
    """SHA-256 over the sorted (relative path, content SHA-256) pairs of ``paths``.

    Paths are taken relative to ``root`` when given, so moving a data folder keeps its key.
    ``digests`` maps ``str(path)`` to an already computed content SHA-256.
    """
    rootp = Path(root) if root is not None else None
    digests = digests or {}
    entries = []
    for p in paths:
        p = Path(p)
        digest = digests.get(str(p)) or sha256_file(p)
        rel = p.relative_to(rootp).as_posix() if rootp is not None else p.name
        entries.append((rel, digest))
    outer = hashlib.sha256()
    for rel, digest in sorted(entries):
        outer.update(rel.encode() + b"\0" + digest.encode() + b"\n")
    return outer.hexdigest()


def cache_key(name: str, source_digest: str, params: Mapping[str, Any]) -> str:
    """Hex SHA-256 identifying (name, sources, params, cache format, feature version)."""
    record = {
        "name": name,
        "cache_format": CACHE_FORMAT,
        "feature_version": FEATURE_VERSION,
        "sources": source_digest,
        "params": jsonable(params),
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def cache_path(name: str, key: str, cache_dir: os.PathLike | str | None = None) -> Path:
    """Where the cache file for ``(name, key)`` lives."""
    return default_cache_dir(cache_dir) / f"{name}-{key[:16]}.h5"


def _digest(arrays: Mapping[str, np.ndarray | None], meta_json: str) -> str:
    h = hashlib.sha256(meta_json.encode())
    for k in sorted(arrays):
        a = arrays[k]
        h.update(k.encode())
        if a is None:
            h.update(b"<none>")
        else:
            a = np.ascontiguousarray(a)
            h.update(str(a.dtype).encode() + str(a.shape).encode())
            h.update(a.tobytes())
    return h.hexdigest()


def _fields(ds: Dataset) -> tuple[dict[str, np.ndarray | None], str]:
    arrays = {"X": ds.X, "y": ds.y, "subject": ds.subject, "is_test": ds.is_test}
    meta = {
        "name": ds.name,
        "class_names": list(ds.class_names),
        "synthetic": bool(ds.synthetic),
        "source": ds.source,
        "original_labels": jsonable(list(ds.original_labels)),
        "feature_names": None if ds.feature_names is None else list(ds.feature_names),
        "meta": jsonable(ds.meta),
    }
    return arrays, json.dumps(meta, sort_keys=True)


def write_cache(path: os.PathLike | str, ds: Dataset) -> None:
    """Write ``ds`` to ``path`` atomically (temporary file in the same folder, then os.replace)."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays, meta_json = _fields(ds)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".h5.tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            for k, a in arrays.items():
                if a is not None:
                    f.create_dataset(k, data=np.ascontiguousarray(a))
            f.attrs["meta_json"] = meta_json
            f.attrs["sha256"] = _digest(arrays, meta_json)
            f.attrs["cache_format"] = CACHE_FORMAT
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_cache(path: os.PathLike | str) -> Dataset:
    """Read a cache file; raises (OSError, KeyError, ValueError) if it is missing or corrupt."""
    import h5py

    with h5py.File(path, "r") as f:
        if int(f.attrs["cache_format"]) != CACHE_FORMAT:
            raise ValueError(f"cache format {f.attrs['cache_format']} != {CACHE_FORMAT}")
        meta_json = f.attrs["meta_json"]
        if isinstance(meta_json, bytes):
            meta_json = meta_json.decode()
        arrays = {k: (f[k][()] if k in f else None) for k in ("X", "y", "subject", "is_test")}
        stored = f.attrs["sha256"]
    if isinstance(stored, bytes):
        stored = stored.decode()
    if arrays["X"] is None or arrays["y"] is None:
        raise KeyError("cache file lacks X or y")
    if _digest(arrays, meta_json) != stored:
        raise ValueError("checksum mismatch")
    m = json.loads(meta_json)
    return Dataset(
        name=m["name"],
        X=arrays["X"],
        y=arrays["y"],
        subject=arrays["subject"],
        is_test=arrays["is_test"],
        class_names=tuple(m["class_names"]),
        synthetic=m["synthetic"],
        source=m["source"],
        original_labels=tuple(m["original_labels"]),
        feature_names=None if m["feature_names"] is None else tuple(m["feature_names"]),
        meta=m["meta"],
    )


def cached(
    name: str,
    sources: Iterable[os.PathLike | str],
    root: os.PathLike | str | None,
    params: Mapping[str, Any],
    build: Callable[[], Dataset],
    cache_dir: os.PathLike | str | None = None,
    enabled: bool = True,
) -> Dataset:
    """Return the cached data set for (sources, params), or ``build()`` it and cache the result.

    ``meta["cache"]`` of the result says ``"hit"``, ``"miss"`` (built and written), ``"rebuilt"``
    (a corrupt file was replaced) or ``"disabled"``.  A cache folder that cannot be written only
    gives a warning: the freshly built data set is still returned.

    Every result also carries its identity (:mod:`intsim.datasets.identity`):
    ``meta["source_files"]`` (absolute path, SHA-256 and size of each source, hashed now, also on a
    cache hit) and ``meta["load_params"]`` (= ``params``).
    """
    sources = [Path(p) for p in sources]
    digests = {str(p): sha256_file(p) for p in sources}
    ident = {"source_files": source_records(sources, root, digests), "load_params": jsonable(params)}
    if not enabled:
        ds = build()
        return ds.replace(meta={**ds.meta, **ident, "cache": "disabled"})
    key = cache_key(name, hash_files(sources, root, digests), params)
    path = cache_path(name, key, cache_dir)
    status = "miss"
    if path.exists():
        try:
            ds = read_cache(path)
            return ds.replace(meta={**ds.meta, **ident, "cache": "hit", "cache_file": str(path)})
        except Exception as err:  # corrupt / truncated / foreign file: rebuild it
            warnings.warn(f"intsim cache file {path} is unreadable ({type(err).__name__}: {err}); rebuilding it",
                          RuntimeWarning, stacklevel=2)
            status = "rebuilt"
            try:
                path.unlink()
            except OSError:
                pass
    ds = build()
    try:
        write_cache(path, ds)
    except OSError as err:
        warnings.warn(f"could not write intsim cache file {path}: {err}", RuntimeWarning, stacklevel=2)
        return ds.replace(meta={**ds.meta, **ident, "cache": "unwritable"})
    return ds.replace(meta={**ds.meta, **ident, "cache": status, "cache_file": str(path)})
