"""Atomic file writes: write to a temporary file in the same folder, then os.replace.

A failed write (full disk, no permission, a read-only file system) leaves the old file (or
none) and raises StorageError, an OSError that names the file meant, not the temporary one.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager


class StorageError(OSError):
    """An output file could not be written or read back; names the path and the cause."""

    def __init__(self, path: os.PathLike | str, cause: BaseException, action: str = "write"):
        errno = getattr(cause, "errno", None)
        reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        super().__init__(errno, reason)
        self.filename = os.fspath(path)
        self.cause, self.action = cause, action

    def __str__(self) -> str:
        return f"cannot {self.action} {self.filename}: {self.strerror}"


@contextmanager
def storage(path: os.PathLike | str, action: str = "write"):
    """Turn an OSError (or an h5py RuntimeError) raised inside the block into StorageError
    naming `path` (a StorageError passes unchanged)."""
    try:
        yield
    except StorageError:
        raise
    except (OSError, RuntimeError) as e:
        raise StorageError(path, e, action) from e


@contextmanager
def atomic_path(path: str):
    """Yield a temporary path next to `path`; on success it replaces `path` atomically.
    StorageError (naming `path`) when the folder, the temporary file or the replace fails."""
    folder = os.path.dirname(os.path.abspath(path))
    with storage(path):
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=folder)
        os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        try:
            yield tmp
        except StorageError:
            raise
        except OSError as e:
            raise StorageError(path, e) from e
        with storage(path):
            os.chmod(tmp, 0o666 & ~umask)     # mkstemp's 0600 would hide results from others
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
