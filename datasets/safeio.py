"""Reading files that a user controls: UTF-8 text, hashing and restricted unpickling.

Rules every loader in :mod:`intsim.datasets` follows:

* Text files (CSV, the UCI ``.txt`` / ``.dat`` files) are decoded as UTF-8 (a leading byte-order
  mark is allowed).  Any other encoding is an error that names the file and the byte offset of
  the first undecodable byte (:func:`read_text`).
* No loader ever unpickles a file with :mod:`pickle`'s default unpickler.  The only pickles read
  at all are the CIFAR-100 archive and seglearn's bundled ``watch_dataset.npy`` (after its
  SHA-256 matched the release); both go through :class:`NumpyOnlyUnpickler`, which rebuilds
  plain containers and NumPy arrays and refuses every other callable, so a crafted file cannot
  run code.  ``.npy`` / ``.npz`` files are opened with ``allow_pickle=False``.
* :func:`sha256_bytes` / :func:`sha256_file` give the hex SHA-256 used for data-set identity
  (:mod:`intsim.datasets.identity`) and release checks.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["NumpyOnlyUnpickler", "safe_unpickle", "read_text", "decode_utf8", "sha256_bytes",
           "sha256_file", "read_npy_pickle"]

_CHUNK = 1 << 20


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds plain containers and NumPy arrays (no arbitrary callables)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 protocol-2 pickles store bytes
        ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
        ("__builtin__", "object"), ("builtins", "object"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data pickle")


def safe_unpickle(data: bytes, encoding: str = "ASCII") -> Any:
    """Unpickle ``data`` with :class:`NumpyOnlyUnpickler` (raises on any foreign callable)."""
    return NumpyOnlyUnpickler(io.BytesIO(data), encoding=encoding).load()


def read_npy_pickle(data: bytes) -> Any:
    """The object inside a ``.npy`` file that holds one pickled object (0-d object array).

    The ``.npy`` header is parsed with NumPy's format reader; the payload is unpickled with
    :class:`NumpyOnlyUnpickler`, never with ``np.load(allow_pickle=True)``.
    """
    f = io.BytesIO(data)
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    if dtype != np.dtype(object) or shape != ():
        raise ValueError(f"expected one pickled object (0-d object array), got dtype {dtype} shape {shape}")
    obj = safe_unpickle(data[f.tell():], encoding="latin1")
    # np.save pickles the whole 0-d object array; its single element is the object
    if isinstance(obj, np.ndarray) and obj.shape == () and obj.dtype == object:
        obj = obj.item()
    return obj


def decode_utf8(raw: bytes, path: os.PathLike | str, error: Callable[[str], Exception]) -> str:
    """Decode ``raw`` (the bytes of ``path``) as UTF-8, or raise ``error(problem)``.

    ``problem`` names the byte offset and value of the first undecodable byte.
    """
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        bad = raw[err.start:err.start + 1].hex()
        raise error(f"not UTF-8 text: byte 0x{bad} at offset {err.start} cannot be decoded "
                    "(save the file as UTF-8)") from None


def read_text(path: os.PathLike | str, error: Callable[[str], Exception]) -> str:
    """The UTF-8 text of ``path``; undecodable bytes raise ``error(problem)`` (see decode_utf8)."""
    return decode_utf8(Path(path).read_bytes(), path, error)


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: os.PathLike | str) -> str:
    """Hex SHA-256 of the file at ``path`` (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()
