"""$readmemh text files of a golden file's tensors, and their manifest.json.

One file per tensor, one value per line in C (row-major) order: integers as two's complement
(signed) or plain binary (unsigned) at the tensor's declared bits, ceil(bits/4) hex digits, no
prefix; float32 tensors as their IEEE-754 binary32 bit pattern (8 digits). With pack_int4, two
values of at most 4 bits share a byte, element 2j in the low nibble.
"""
from __future__ import annotations

import json
import os
from typing import Optional

import h5py
import numpy as np

from intsim.formats.atomic import atomic_write_text
from intsim.formats.golden_file import read_op_order


def to_hex_lines(values: np.ndarray, bits: int, encoding: str, pack_int4: bool = False
                 ) -> tuple[list, int, bool]:
    """(lines, hex digits per line, packed) of a tensor in C order.

    Integers: two's complement (or unsigned) at `bits`, ceil(bits/4) hex digits; float32:
    the IEEE-754 binary32 pattern, 8 digits. pack_int4 and bits ≤ 4: two values per byte,
    element 2j in the low nibble, 2j+1 in the high nibble (0 when the count is odd).
    """
    flat = np.asarray(values).reshape(-1)
    if encoding == "ieee754_binary32":
        pats = flat.astype(np.float32).view(np.uint32).astype(np.uint64)
        return [f"{int(v):08x}" for v in pats], 8, False
    mask = (1 << bits) - 1
    pats = [int(v) & mask for v in flat.astype(np.int64)]
    if pack_int4 and bits <= 4:
        if len(pats) % 2:
            pats.append(0)
        return [f"{(pats[j] & 0xF) | ((pats[j + 1] & 0xF) << 4):02x}"
                for j in range(0, len(pats), 2)], 2, True
    d = max(1, -(-bits // 4))
    return [f"{v:0{d}x}" for v in pats], d, False


def write_hex(golden_path: str, hex_dir: str, pack_int4: bool = False) -> str:
    """One $readmemh text file per tensor of a golden file, plus manifest.json; returns its path.

    File names: NNNNN_<path with '/' → '__'>.hex, NNNNN = op_index (execution order).
    """
    os.makedirs(hex_dir, exist_ok=True)
    entries = []
    with h5py.File(golden_path, "r") as f:
        for path in read_op_order(f):
            d = f[path]
            a = d.attrs
            bits, enc = int(a["bits"]), str(a["encoding"])
            lines, digits, packed = to_hex_lines(d[()], bits, enc, pack_int4)
            fname = f"{int(a['op_index']):05d}_{path.replace('/', '__')}.hex"
            with open(os.path.join(hex_dir, fname), "w", encoding="ascii") as out:
                out.write("\n".join(lines) + ("\n" if lines else ""))
            entries.append(dict(file=fname, path=path, op_index=int(a["op_index"]),
                                shape=list(d.shape), count=int(np.prod(d.shape, dtype=np.int64)),
                                lines=len(lines), bits=bits, signed=bool(a["signed"]),
                                encoding=enc, hw_type=str(a["hw_type"]), hex_digits=digits,
                                packed_int4=packed))
        root = {k: (v.item() if hasattr(v, "item") and np.ndim(v) == 0 else
                    v.tolist() if hasattr(v, "tolist") else v) for k, v in f.attrs.items()}
    manifest = dict(
        format="intsim-golden-hex", format_version=1, golden=os.path.basename(golden_path),
        model=root.get("model"), numerics=root.get("numerics"), steps=root.get("steps"),
        pack_int4=pack_int4,
        convention=("one value per line, C (row-major) order, first line = element 0; "
                    "integers as two's complement (signed) or plain binary (unsigned) at the "
                    "tensor's bits, ceil(bits/4) hex digits, no prefix; float32 tensors as "
                    "their IEEE-754 binary32 bit pattern (8 digits); packed_int4: two 4-bit "
                    "values per byte, element 2j in the low nibble, high nibble 0 when the "
                    "count is odd"),
        tensors=entries)
    mpath = os.path.join(hex_dir, "manifest.json")
    atomic_write_text(mpath, json.dumps(manifest, indent=1) + "\n")
    return mpath


def read_hex(path: str, bits: int, encoding: str, count: Optional[int] = None,
             packed_int4: bool = False) -> np.ndarray:
    """Inverse of to_hex_lines for one file (int64 values or float32)."""
    with open(path, encoding="ascii") as f:
        words = [int(w, 16) for w in f.read().split()]
    if encoding == "ieee754_binary32":
        return np.array(words, np.uint32).view(np.float32)
    if packed_int4:
        words = [v for b in words for v in (b & 0xF, b >> 4)]
        if count is not None:
            words = words[:count]
    if encoding == "twos_complement":
        half = 1 << (bits - 1)
        words = [w - (1 << bits) if w >= half else w for w in words]
    return np.array(words, np.int64)
