"""Compare a hardware (or simulator) dump with a golden-vector file, tensor by tensor.

    result = compare("golden.h5", "dump.h5")
    print(format_report(result)); exit code = result.exit_code()

The dump uses the golden layout (intsim.golden) and may hold any subset of the tensors; its
attributes are not needed. Tensors are visited in the golden file's execution order
(/op_order). Integer tensors are compared as integer values (any integer or integral float
dtype in the dump); float32 tensors bit for bit (the dump's values are converted to float32
and their IEEE-754 patterns compared, so -0.0 ≠ 0.0). With `bit_patterns=True` integer
tensors are compared modulo 2^bits, for dumps that store raw unsigned register patterns
(0xF9 for -7 in 8 bits).

A dump tensor with the right number of elements but another shape (e.g. flat) is compared in
C order with a note; a different element count is a mismatch of every element. Tensors of
the golden file missing from the dump are listed (not an error unless `require_all`), as are
dump datasets the golden file does not have.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from intsim.formats.golden_file import FORMAT, read_op_order


@dataclass
class TensorDiff:
    """Mismatches of one tensor."""
    path: str
    op_index: int
    size: int
    count: int                          # mismatching elements
    index: Optional[tuple] = None       # first mismatching element (multi-index, golden shape)
    flat_index: Optional[int] = None
    expected: object = None
    actual: object = None
    expected_bits: str = ""
    actual_bits: str = ""
    differing_bits: tuple = ()          # bit positions (0 = LSB) that differ in the first one
    note: str = ""


@dataclass
class CompareResult:
    golden: str
    dump: str
    compared: list = field(default_factory=list)      # paths compared (present in both)
    mismatches: list = field(default_factory=list)    # TensorDiff, execution order
    missing: list = field(default_factory=list)       # in golden, not in dump
    extra: list = field(default_factory=list)         # in dump, not in golden
    notes: list = field(default_factory=list)         # (path, note) for matches with a note

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def first(self) -> Optional[TensorDiff]:
        return self.mismatches[0] if self.mismatches else None

    def exit_code(self, require_all: bool = False) -> int:
        """0: everything present matches; 1: a mismatch (or, with require_all, a missing
        tensor)."""
        return 1 if self.mismatches or (require_all and self.missing) else 0


def _bits_str(v: int, width: int) -> str:
    return format(v & ((1 << width) - 1), f"0{width}b")


def _int_width(v: int) -> int:
    return (max(v, 0).bit_length() if v >= 0 else (-v - 1).bit_length()) + 1


def _as_int(actual: np.ndarray) -> tuple[Optional[np.ndarray], str]:
    if actual.dtype.kind in "iub":
        return actual.astype(np.int64), ""
    if actual.dtype.kind == "f":
        if not np.all(np.isfinite(actual)) or not np.all(actual == np.round(actual)):
            return None, "dump holds non-integral floats for an integer tensor"
        return actual.astype(np.int64), "dump stores integers as floats"
    return None, f"dump dtype {actual.dtype} is not numeric"


def compare_arrays(path: str, op_index: int, expected: np.ndarray, actual: np.ndarray,
                   bits: int, encoding: str, bit_patterns: bool = False
                   ) -> tuple[Optional[TensorDiff], str]:
    """(TensorDiff or None, note) for one tensor; expected has the golden shape."""
    note = ""
    size = int(expected.size)
    if actual.shape != expected.shape:
        if actual.size != expected.size:
            return TensorDiff(path, op_index, size, size, note=(
                f"shape {tuple(actual.shape)} in the dump, {tuple(expected.shape)} in the "
                f"golden file ({actual.size} vs {size} elements)")), ""
        note = f"dump shape {tuple(actual.shape)} read in C order as {tuple(expected.shape)}"
        actual = actual.reshape(expected.shape)
    if encoding == "ieee754_binary32":
        e = np.ascontiguousarray(expected, np.float32).view(np.uint32)
        if actual.dtype.kind in "iu" and bit_patterns:
            a = actual.astype(np.uint64).astype(np.uint32)
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                a = np.ascontiguousarray(actual.astype(np.float32)).view(np.uint32)
        bad = e != a
        width = 32
        render = lambda p: np.uint32(p).view(np.float32).item()        # noqa: E731
        e_pat, a_pat = e, a
    else:
        e = expected.astype(np.int64)
        a, why = _as_int(actual)
        if a is None:
            return TensorDiff(path, op_index, size, size, note=why), ""
        if why:
            note = "; ".join(x for x in (note, why) if x)
        mask = np.int64((1 << bits) - 1) if bits < 63 else np.int64(-1)
        if bit_patterns:
            bad = (e & mask) != (a & mask)
        else:
            bad = e != a
        width = bits
        render = int
        e_pat, a_pat = e, a
    count = int(np.count_nonzero(bad))
    if not count:
        return None, note
    flat = int(np.flatnonzero(bad.reshape(-1))[0])
    idx = tuple(int(i) for i in np.unravel_index(flat, expected.shape)) if expected.ndim else ()
    ev, av = int(e_pat.reshape(-1)[flat]), int(a_pat.reshape(-1)[flat])
    if encoding == "ieee754_binary32":
        exp_v, act_v = render(ev), render(av)
        w = 32
    else:
        exp_v, act_v = ev, av
        w = width if bit_patterns else max(width, _int_width(av), _int_width(ev))
    xor = (ev ^ av) & ((1 << w) - 1)
    diff_bits = tuple(i for i in range(w) if xor >> i & 1)
    return TensorDiff(path, op_index, size, count, idx, flat, exp_v, act_v,
                      _bits_str(ev, w), _bits_str(av, w), diff_bits, note), ""


def compare(golden: str, dump: str, bit_patterns: bool = False) -> CompareResult:
    """Compare every golden tensor present in `dump` (see the module docstring)."""
    import h5py
    for p, what in ((golden, "golden"), (dump, "dump")):
        if not os.path.exists(p):
            raise FileNotFoundError(f"{what}: no such file {p}")
    res = CompareResult(golden, dump)
    with h5py.File(golden, "r") as g, h5py.File(dump, "r") as d:
        if g.attrs.get("format") != FORMAT:
            raise ValueError(f"golden: {golden} is not an intsim golden file (attribute "
                             f"format={g.attrs.get('format')!r})")
        order = read_op_order(g)
        golden_set = set(order)
        for i, path in enumerate(order):
            if path not in d or not isinstance(d[path], h5py.Dataset):
                res.missing.append(path)
                continue
            gd = g[path]
            op_index = int(gd.attrs.get("op_index", i))
            diff, note = compare_arrays(path, op_index, np.asarray(gd[()]),
                                        np.asarray(d[path][()]), int(gd.attrs["bits"]),
                                        str(gd.attrs["encoding"]), bit_patterns)
            res.compared.append(path)
            if diff is not None:
                res.mismatches.append(diff)
            elif note:
                res.notes.append((path, note))

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and name not in golden_set and name != "op_order":
                res.extra.append(name)
        d.visititems(visit)
    return res


def _fmt_value(v) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def format_report(res: CompareResult, max_list: int = 20) -> str:
    """A human-readable report: first mismatch in execution order, per-tensor counts,
    missing and extra tensors."""
    total = len(res.compared) + len(res.missing)
    lines = [f"golden: {res.golden}", f"dump:   {res.dump}",
             f"compared {len(res.compared)} of {total} golden tensors"
             + (f" ({len(res.missing)} missing from the dump)" if res.missing else "")]
    if res.first is not None:
        f = res.first
        lines.append("")
        lines.append(f"FIRST MISMATCH (execution order, op {f.op_index}): {f.path}")
        if f.index is None:
            lines.append(f"  {f.note}")
        else:
            lines.append(f"  element {list(f.index)} (flat index {f.flat_index})")
            lines.append(f"  expected {_fmt_value(f.expected)}  bits {f.expected_bits}")
            lines.append(f"  actual   {_fmt_value(f.actual)}  bits {f.actual_bits}")
            lines.append(f"  differing bit positions (0 = LSB): "
                         f"{', '.join(map(str, f.differing_bits)) or '-'}")
            if f.note:
                lines.append(f"  note: {f.note}")
        lines.append("")
        lines.append(f"mismatching tensors ({len(res.mismatches)}), in execution order:")
        for m in res.mismatches[:max_list]:
            where = f"first at {list(m.index)}" if m.index is not None else m.note
            lines.append(f"  op {m.op_index:5d}  {m.path}: {m.count} of {m.size} elements "
                         f"differ ({where})")
        if len(res.mismatches) > max_list:
            lines.append(f"  … {len(res.mismatches) - max_list} more")
    else:
        lines.append("all compared tensors match bit for bit")
    if res.missing:
        lines.append("")
        lines.append(f"missing from the dump ({len(res.missing)}), not compared:")
        for p in res.missing[:max_list]:
            lines.append(f"  {p}")
        if len(res.missing) > max_list:
            lines.append(f"  … {len(res.missing) - max_list} more")
    if res.extra:
        lines.append("")
        lines.append(f"in the dump but not in the golden file ({len(res.extra)}), ignored:")
        for p in res.extra[:max_list]:
            lines.append(f"  {p}")
    for p, n in res.notes[:max_list]:
        lines.append(f"note: {p}: {n}")
    lines.append("")
    lines.append("RESULT: " + ("MISMATCH" if res.mismatches else "MATCH"))
    return "\n".join(lines)


def to_json(res: CompareResult) -> dict:
    """A JSON-ready dict of the result."""
    def diff(m: TensorDiff) -> dict:
        return dict(path=m.path, op_index=m.op_index, size=m.size, mismatches=m.count,
                    index=list(m.index) if m.index is not None else None,
                    flat_index=m.flat_index, expected=m.expected, actual=m.actual,
                    expected_bits=m.expected_bits, actual_bits=m.actual_bits,
                    differing_bits=list(m.differing_bits), note=m.note)
    return dict(golden=res.golden, dump=res.dump, ok=res.ok, compared=len(res.compared),
                first=diff(res.first) if res.first else None,
                mismatches=[diff(m) for m in res.mismatches], missing=res.missing,
                extra=res.extra)
