"""$readmemh text files of a golden file's tensors, and their manifest.json.

One file per tensor. A value's bit pattern: integers as two's complement (signed) or plain
binary (unsigned) at the tensor's declared bits; float32 as its IEEE-754 binary32 pattern.

Order (HexOptions.order) — which element comes first; it applies to the two operand tensors
of every integer matmul (the `left` / `right` of its descriptor), all other tensors are
written in C order:
    c             C (row-major) order of the stored tensor
    k-major       the reduction axis K outermost (after the group axis): left (G, M, K) is
                  written as (G, K, M), right (N, K) as (K, N); (K, N), (G, K, N) unchanged
    tile-blocked  K split into the matmul's tiles: (G, tile, M, k in tile) for the left
                  operand, (tile, N, k in tile) for a right (N, K) or (K, N), (G, tile, N, k)
                  for (G, K, N); a shorter last tile is padded with zeros to the tile length
                  (zeros add nothing to a sum; `pad` in the manifest counts them)
A row is the innermost axis in that order (C: the stored tensor's last axis).

Words (HexOptions.word_bits, 0 = one value per line): the values of a row are packed into
words of word_bits bits, ⌊word_bits / bits⌋ per word, element j of a word in bits
[j·bits, (j+1)·bits) (the first element in the lowest bits); every row starts a new word and
its last word is filled with zeros; a tensor wider than word_bits is written one value per
line. pack_int4 = word_bits 8 for tensors of ≤ 4 bits (two per byte, low nibble first, per
row). Each line holds one word (or value): ceil(width / 4) hex digits, no prefix.

manifest.json lists per file its tensor, shape, order and the shape in file order, padding,
packing, hex digits and lines; the matmul descriptors with the files of their operands and
results; and the golden file's coverage. `read_hex(entry, hex_dir)` reads a file back into the
tensor's golden shape from its manifest entry.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Optional, Union

import numpy as np

from intsim.formats.atomic import atomic_write_text
from intsim.formats.golden_file import open_hdf5, read_dataset, read_matmuls, read_op_order

ORDERS = ("c", "k-major", "tile-blocked")
CONVENTION = __doc__.split("\n\n", 1)[1].split("manifest.json lists")[0].strip()


@dataclass(frozen=True)
class HexOptions:
    order: str = "c"
    word_bits: int = 0
    pack_int4: bool = False

    def __post_init__(self):
        if self.order not in ORDERS:
            raise ValueError(f"hex order: expected one of {ORDERS}, got {self.order!r}")
        if isinstance(self.word_bits, bool) or not isinstance(self.word_bits, int) or \
                not (self.word_bits == 0 or 2 <= self.word_bits <= 4096):
            raise ValueError(f"hex word bits: expected 0 (one value per line) or 2 … 4096, "
                             f"got {self.word_bits!r}")
        if self.pack_int4 and self.word_bits:
            raise ValueError("hex: --pack-int4 and --hex-word-bits exclude each other")

    def word_for(self, bits: int) -> int:
        """Word width used for a tensor of `bits`; 0 = one value per line."""
        if self.pack_int4:
            return 8 if bits <= 4 else 0
        return self.word_bits if self.word_bits and bits <= self.word_bits else 0


def patterns(values: np.ndarray, bits: int, encoding: str) -> np.ndarray:
    """uint64 bit patterns of a tensor, flat in C order."""
    flat = np.asarray(values).reshape(-1)
    if encoding == "ieee754_binary32":
        return flat.astype(np.float32).view(np.uint32).astype(np.uint64)
    mask = np.uint64((1 << bits) - 1) if bits < 64 else np.uint64(2 ** 64 - 1)
    return flat.astype(np.int64).astype(np.uint64) & mask


def to_hex_lines(values: np.ndarray, bits: int, encoding: str, pack_int4: bool = False
                 ) -> tuple[list, int, bool]:
    """(lines, hex digits per line, packed) of a tensor in C order, rows = its last axis."""
    arr = np.asarray(values)
    width = 32 if encoding == "ieee754_binary32" else bits
    row = arr.shape[-1] if arr.ndim else 1
    word = HexOptions(pack_int4=pack_int4).word_for(width)
    return _lines(patterns(arr, bits, encoding), width, row, word), \
        max(1, -(-(word or width) // 4)), bool(word)


def _lines(pats: np.ndarray, width: int, row: int, word: int) -> list:
    if not word:
        d = max(1, -(-width // 4))
        return [f"{int(v):0{d}x}" for v in pats]
    per = word // width
    d = max(1, -(-word // 4))
    out = []
    vals = [int(v) for v in pats]
    for r0 in range(0, len(vals), max(row, 1)):
        r = vals[r0:r0 + row]
        for w0 in range(0, len(r), per):
            w = 0
            for j, v in enumerate(r[w0:w0 + per]):
                w |= v << (j * width)
            out.append(f"{w:0{d}x}")
    return out


def _reorder(value: np.ndarray, layout: str, desc: dict, order: str
             ) -> tuple[np.ndarray, int]:
    """(array in file order, zeros padded) of a matmul operand tensor stored in `layout`."""
    if order == "c":
        return value, 0
    if order == "k-major":
        return {"G,M,K": lambda v: v.transpose(0, 2, 1), "N,K": lambda v: v.T}.get(
            layout, lambda v: v)(value), 0
    T, K = int(desc["tile"]), int(desc["K"])
    nt = -(-K // T) if K else 0
    v = {"K,N": lambda x: x.T, "G,K,N": lambda x: x.transpose(0, 2, 1)}.get(
        layout, lambda x: x)(value)                          # (…, rows, K)
    v = np.pad(v, [(0, 0)] * (v.ndim - 1) + [(0, nt * T - K)])
    v = np.moveaxis(v.reshape(*v.shape[:-1], nt, T), -2, -3)   # (…, tiles, rows, T)
    return v, int(v.size - value.size)


def write_hex(golden_path: str, hex_dir: str, options: Union[HexOptions, bool, None] = None
              ) -> str:
    """One $readmemh text file per tensor of a golden file, plus manifest.json (module
    docstring); returns the manifest's path. `options` may be a bool: pack_int4 (the old
    signature). Files: NNNNN_<path with '/' → '__'>.hex, NNNNN = op_index; every file is
    written atomically."""
    opts = options if isinstance(options, HexOptions) else HexOptions(pack_int4=bool(options))
    os.makedirs(hex_dir, exist_ok=True)
    entries, by_path = [], {}
    with open_hdf5(golden_path, "golden") as f:
        matmuls = read_matmuls(f)
        sides = {d[s]: (s, d) for d in matmuls for s in ("left", "right")}
        for path in read_op_order(f):
            d = f[path]
            a = d.attrs
            bits, enc = int(a["bits"]), str(a["encoding"])
            value = read_dataset(f, path, "golden", golden_path)
            order, pad, layout = "c", 0, ""
            if path in sides and value.ndim >= 2:
                side, desc = sides[path]
                layout = desc["left_layout"] if side == "left" else desc["right_layout"]
                value, pad = _reorder(value, layout, desc, opts.order)
                order = opts.order
            width = 32 if enc == "ieee754_binary32" else bits
            word = opts.word_for(width)
            row = value.shape[-1] if value.ndim else 1
            lines = _lines(patterns(value, bits, enc), width, row, word)
            fname = f"{int(a['op_index']):05d}_{path.replace('/', '__')}.hex"
            atomic_write_text(os.path.join(hex_dir, fname),
                              "\n".join(lines) + ("\n" if lines else ""))
            entry = dict(file=fname, path=path, op_index=int(a["op_index"]),
                         shape=list(d.shape), count=int(np.prod(d.shape, dtype=np.int64)),
                         order=order, layout=layout, file_shape=list(value.shape),
                         pad=int(pad),
                         lines=len(lines), bits=bits, signed=bool(a["signed"]), encoding=enc,
                         hw_type=str(a["hw_type"]), word_bits=word,
                         values_per_word=word // width if word else 1, row_length=int(row),
                         hex_digits=max(1, -(-(word or width) // 4)),
                         packed_int4=bool(word) and opts.pack_int4)
            entries.append(entry)
            by_path[path] = fname
        root = {k: (v.item() if hasattr(v, "item") and np.ndim(v) == 0 else
                    v.tolist() if hasattr(v, "tolist") else v) for k, v in f.attrs.items()}
        coverage = ({k: json.loads(f["coverage"].attrs[k]) for k in ("thin", "notes",
                                                                     "by_kind")}
                    if "coverage" in f else None)
    for desc in matmuls:
        desc["files"] = {k: by_path.get(desc[k], "") for k in (
            "left", "right", "partial", "register", "tile_sum", "result", "left_scale",
            "right_scale", "left_sr_bits", "right_sr_bits", "left_v", "right_v", "left_m",
            "right_m") if desc.get(k)}
    manifest = dict(
        format="intsim-golden-hex", format_version=2, golden=os.path.basename(golden_path),
        golden_format_version=root.get("format_version"), model=root.get("model"),
        numerics=root.get("numerics"), steps=root.get("steps"), options=asdict(opts),
        pack_int4=opts.pack_int4, convention=CONVENTION, tensors=entries, matmuls=matmuls,
        coverage=coverage)
    mpath = os.path.join(hex_dir, "manifest.json")
    atomic_write_text(mpath, json.dumps(manifest, indent=1, default=_jsonable) + "\n")
    return mpath


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(type(v).__name__)


def _words(path: str) -> list:
    with open(path, encoding="ascii") as fh:
        return [int(w, 16) for w in fh.read().split()]


def _unpack(words: list, width: int, row: int, word: int, count_rows: int) -> list:
    if not word:
        return words
    per = word // width
    per_row = -(-row // per)
    mask = (1 << width) - 1
    out = []
    for r in range(count_rows):
        vals = []
        for w in words[r * per_row:(r + 1) * per_row]:
            vals += [(w >> (j * width)) & mask for j in range(per)]
        out += vals[:row]
    return out


def _decode(pats: list, bits: int, encoding: str) -> np.ndarray:
    if encoding == "ieee754_binary32":
        return np.array(pats, np.uint64).astype(np.uint32).view(np.float32)
    if encoding == "twos_complement":
        half = 1 << (bits - 1)
        pats = [w - (1 << bits) if w >= half else w for w in pats]
    return np.array(pats, np.int64)


def read_hex(entry: Union[dict, str, os.PathLike], hex_dir: Union[str, os.PathLike, int] = ".",
             encoding: Optional[str] = None, count: Optional[int] = None,
             packed_int4: bool = False) -> np.ndarray:
    """A tensor back from its hex file: `read_hex(manifest_entry, hex_dir)` returns the array
    in the tensor's golden shape (int64, or float32), undoing order, padding and packing.

    The loose form `read_hex(path, bits, encoding, count=None, packed_int4=False)` reads one
    file written one value per line (or packed two per byte in one row) as a flat array."""
    if not isinstance(entry, dict):
        bits = int(hex_dir)
        words = _words(os.fspath(entry))
        if packed_int4:
            words = [v for b in words for v in (b & 0xF, b >> 4)][:count]
        return _decode(words, bits, encoding)
    e = entry
    width = 32 if e["encoding"] == "ieee754_binary32" else int(e["bits"])
    shape = tuple(e.get("file_shape", e["shape"]))
    row = int(e.get("row_length", shape[-1] if shape else 1))
    n_rows = int(np.prod(shape, dtype=np.int64)) // max(row, 1) if shape else 1
    pats = _unpack(_words(os.path.join(os.fspath(hex_dir), e["file"])), width, row,
                   int(e.get("word_bits", 8 if e.get("packed_int4") else 0)), n_rows)
    vals = _decode(pats, int(e["bits"]), e["encoding"])
    if vals.size != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"hex: {e['file']} holds {vals.size} values, the manifest says "
                         f"{int(np.prod(shape, dtype=np.int64))}")
    vals = vals.reshape(shape)
    return _restore(vals, e)


def _restore(vals: np.ndarray, e: dict) -> np.ndarray:
    """Undo the file order of a manifest entry (see _reorder)."""
    order, shape, layout = e.get("order", "c"), tuple(e["shape"]), e.get("layout", "")
    if order == "c":
        return vals.reshape(shape)
    if order == "k-major":
        return {"G,M,K": lambda v: v.transpose(0, 2, 1), "N,K": lambda v: v.T}.get(
            layout, lambda v: v)(vals).reshape(shape)
    v = np.moveaxis(vals, -3, -2)                            # (…, rows, tiles, T)
    K = shape[0] if layout == "K,N" else shape[-1] if layout in ("G,M,K", "N,K") else shape[1]
    v = v.reshape(*v.shape[:-2], -1)[..., :K]                # (…, rows, K)
    if layout == "K,N":
        v = v.T
    elif layout == "G,K,N":
        v = v.transpose(0, 2, 1)
    return np.ascontiguousarray(v).reshape(shape)


__all__ = ["HexOptions", "ORDERS", "to_hex_lines", "write_hex", "read_hex", "patterns"]
