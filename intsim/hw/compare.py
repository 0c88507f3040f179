"""Compare a hardware (or simulator) dump with a golden-vector file, tensor by tensor.

    result = compare("golden.h5", "dump.h5", expect=["*/acc"])
    print(format_report(result)); exit code = result.exit_code()

The dump uses the golden layout (intsim.formats.golden_file) and may hold any subset of the
tensors; its attributes are not needed. Tensors are visited in the golden file's execution
order (/op_order).

Integer tensors are compared as integer values: any integer dtype (uint64 values above 2^63−1
are not negative numbers: 0xFFFF…F9 never equals −7), bool, or floats holding integers exactly.
With `bit_patterns=True` they are compared modulo 2^bits instead (dumps of raw register
patterns: 0xF9 for −7 at 8 bits); a dump value outside [−2^(bits−1), 2^bits) does not fit the
register and never matches.

float32 tensors are compared by their declared IEEE-754 binary32 patterns (−0.0 ≠ 0.0): a
float32 dump pattern for pattern; a float16 or float64 dump by its exact value (a float64 value
that is not exactly a float32 value — e.g. weights + 1e-12 — is a mismatch, and the note says
the dump is lossy); an integer dump only with `bit_patterns` (then read as the 32-bit pattern).
Other dtypes (complex, long double, strings) are refused with a note.

A dump tensor with the right number of elements but another shape (e.g. flat) is compared in
C order with a note; a different element count is a mismatch of every element.

Verdict (CompareResult.verdict, exit_code):
  MATCH             something was compared, everything compared matches, no unknown dump
                    paths (or allow_extra), every `expect` glob's tensors present — exit 0
  MISMATCH          a tensor differs — exit 1
  NOTHING COMPARED  the dump holds none of the golden tensors — exit 1
  UNKNOWN PATHS     the dump holds datasets the golden file does not have (a typo'd path would
                    otherwise never be checked) — exit 1; allow_extra lists them only
  EXPECTED MISSING  a golden tensor matching an `expect` glob is absent from the dump — exit 1
Missing tensors are listed; with require_all any missing tensor fails (exit 1).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Optional, Sequence

import h5py
import numpy as np

from intsim.formats.golden_file import FORMAT, open_hdf5, read_dataset, read_op_order

INT64_MAX = np.iinfo(np.int64).max


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
    allow_extra: bool = False
    expect: tuple = ()                                # the globs given
    expect_missing: list = field(default_factory=list)  # golden paths an expect glob needs

    @property
    def verdict(self) -> str:
        if self.mismatches:
            return "MISMATCH"
        if not self.compared:
            return "NOTHING COMPARED"
        if self.extra and not self.allow_extra:
            return "UNKNOWN PATHS"
        if self.expect_missing:
            return "EXPECTED MISSING"
        return "MATCH"

    @property
    def ok(self) -> bool:
        return self.verdict == "MATCH"

    @property
    def first(self) -> Optional[TensorDiff]:
        return self.mismatches[0] if self.mismatches else None

    def exit_code(self, require_all: bool = False) -> int:
        """0: MATCH (and, with require_all, nothing missing); 1 otherwise."""
        return 0 if self.ok and not (require_all and self.missing) else 1


def _bits_str(v: int, width: int) -> str:
    return format(v & ((1 << width) - 1), f"0{width}b")


def _int_width(v: int) -> int:
    return (max(v, 0).bit_length() if v >= 0 else (-v - 1).bit_length()) + 1


def _whole(size: int, path: str, op_index: int, note: str) -> TensorDiff:
    return TensorDiff(path, op_index, size, size, note=note)


def _int_values(actual: np.ndarray, bits: int, bit_patterns: bool
                ) -> tuple[Optional[np.ndarray], Optional[np.ndarray], str]:
    """(int64 values, elements that can never match, note) of a dump for an integer tensor;
    values None (and the note says why) when the dtype cannot hold integers."""
    kind = actual.dtype.kind
    if kind in "b":
        return actual.astype(np.int64), np.zeros(actual.shape, bool), ""
    if kind == "f" and actual.dtype.itemsize <= 8:
        a = actual.astype(np.float64)
        ok = np.isfinite(a) & (a == np.round(a)) & (np.abs(a) < 2.0 ** 63)
        if not ok.all():
            return None, None, (f"dump holds {int((~ok).sum())} non-integral, infinite or "
                                f"NaN float values ({actual.dtype}) for an integer tensor")
        return a.astype(np.int64), np.zeros(a.shape, bool), "dump stores integers as floats"
    if kind not in "iu":
        return None, None, f"dump dtype {actual.dtype} cannot hold integers"
    never = np.zeros(actual.shape, bool)
    if actual.dtype == np.uint64:
        big = actual > np.uint64(INT64_MAX)
        if bit_patterns:                          # reduce modulo 2^bits first: exact in uint64
            mask = np.uint64((1 << bits) - 1) if bits < 64 else np.uint64(2 ** 64 - 1)
            never = actual > mask
            return (actual & mask).astype(np.int64), never, ""
        a = np.where(big, np.uint64(0), actual).astype(np.int64)
        return a, big, ("dump uint64 values above 2^63−1 are not negative numbers (use "
                        "--bit-patterns for raw register patterns)" if big.any() else "")
    a = actual.astype(np.int64)
    if bit_patterns:
        lo, hi = -(1 << (bits - 1)), (1 << bits) - 1
        never = (a < lo) | (a > hi)
    return a, never, ""


def _float_values(actual: np.ndarray, expected32: np.ndarray, bit_patterns: bool
                  ) -> tuple[Optional[np.ndarray], Optional[np.ndarray], str]:
    """(expected patterns, actual patterns, note) in one comparable integer form, or
    (None, None, why) when the dump's dtype cannot be compared without loss."""
    e32 = np.ascontiguousarray(expected32, np.float32)
    kind, size = actual.dtype.kind, actual.dtype.itemsize
    if kind == "f" and size == 4:
        return e32.view(np.uint32), np.ascontiguousarray(actual, np.float32).view(np.uint32), ""
    if kind == "f" and size in (2, 8):
        a64 = np.ascontiguousarray(actual, np.float64)
        e64 = e32.astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            lossy = int(np.count_nonzero(a64.astype(np.float32).astype(np.float64)
                                         .view(np.uint64) != a64.view(np.uint64)))
        note = (f"dump dtype {actual.dtype}: {lossy} values are not float32 values (a lossy "
                f"dump: write float32, or the raw 32-bit patterns with --bit-patterns)"
                if lossy else f"dump dtype {actual.dtype} compared by exact value")
        return e64.view(np.uint64), a64.view(np.uint64), note
    if kind in "iu" and bit_patterns:
        a = actual.astype(np.int64) if actual.dtype != np.uint64 else actual
        fits = (a >= -(1 << 31)) & (a <= (1 << 32) - 1)
        pats = np.where(fits, a, 0).astype(np.int64) & 0xFFFFFFFF
        # a value that does not fit 32 bits can never equal a pattern: give it an impossible one
        return (e32.view(np.uint32).astype(np.int64),
                np.where(fits, pats, -1), "" if fits.all() else "dump values beyond 32 bits")
    if kind in "iub":
        return None, None, (f"dump holds integers ({actual.dtype}) for a float32 tensor: "
                            "pass --bit-patterns if they are IEEE-754 bit patterns")
    return None, None, f"dump dtype {actual.dtype} cannot be compared with float32 losslessly"


def compare_arrays(path: str, op_index: int, expected: np.ndarray, actual: np.ndarray,
                   bits: int, encoding: str, bit_patterns: bool = False
                   ) -> tuple[Optional[TensorDiff], str]:
    """(TensorDiff or None, note) for one tensor; expected has the golden shape."""
    note = ""
    size = int(expected.size)
    if actual.shape != expected.shape:
        if actual.size != expected.size:
            return _whole(size, path, op_index, (
                f"shape {tuple(actual.shape)} in the dump, {tuple(expected.shape)} in the "
                f"golden file ({actual.size} vs {size} elements)")), ""
        note = f"dump shape {tuple(actual.shape)} read in C order as {tuple(expected.shape)}"
        actual = actual.reshape(expected.shape)
    if encoding == "ieee754_binary32":
        e, a, why = _float_values(actual, expected, bit_patterns)
        if e is None:
            return _whole(size, path, op_index, why), ""
        bad = e != a
        width = 32
    else:
        e = expected.astype(np.int64)
        a, never, why = _int_values(actual, bits, bit_patterns)
        if a is None:
            return _whole(size, path, op_index, why), ""
        if bit_patterns:
            mask = np.int64((1 << bits) - 1) if bits < 63 else np.int64(-1)
            bad = ((e & mask) != (a & mask)) | never
        else:
            bad = (e != a) | never
        width = bits
    note = "; ".join(x for x in (note, why) if x)
    count = int(np.count_nonzero(bad))
    if not count:
        return None, note
    flat = int(np.flatnonzero(bad.reshape(-1))[0])
    idx = tuple(int(i) for i in np.unravel_index(flat, expected.shape)) if expected.ndim else ()
    if encoding == "ieee754_binary32":
        exp_v = float(np.asarray(expected, np.float32).reshape(-1)[flat])
        act_raw = actual.reshape(-1)[flat]
        act_v = (int(act_raw) if actual.dtype.kind in "iu" else float(act_raw))
        ev = int(np.float32(exp_v).view(np.uint32))
        if actual.dtype.kind in "iu":
            av = int(a.reshape(-1)[flat]) & 0xFFFFFFFF
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                av = int(np.float32(act_raw).view(np.uint32))
        w = 32
    else:
        ev, av = int(e.reshape(-1)[flat]), int(a.reshape(-1)[flat])
        if actual.dtype == np.uint64:
            av = int(actual.reshape(-1)[flat])
        exp_v, act_v = ev, av
        w = width if bit_patterns else max(width, _int_width(av), _int_width(ev))
    xor = (ev ^ av) & ((1 << w) - 1)
    diff_bits = tuple(i for i in range(w) if xor >> i & 1)
    return TensorDiff(path, op_index, size, count, idx, flat, exp_v, act_v,
                      _bits_str(ev, w), _bits_str(av, w), diff_bits, note), ""


def compare(golden: str, dump: str, bit_patterns: bool = False, allow_extra: bool = False,
            expect: Sequence[str] = ()) -> CompareResult:
    """Compare every golden tensor present in `dump` (see the module docstring).

    expect: globs (fnmatch, on tensor paths) of golden tensors that must be in the dump; a
    glob that matches no golden tensor is a ValueError naming it."""
    res = CompareResult(golden, dump, allow_extra=allow_extra, expect=tuple(expect))
    with open_hdf5(golden, "golden") as g, open_hdf5(dump, "dump") as d:
        if g.attrs.get("format") != FORMAT:
            raise ValueError(f"golden: {golden} is not an intsim golden file (attribute "
                             f"format={g.attrs.get('format')!r})")
        order = read_op_order(g)
        golden_set = set(order)
        for glob in expect:
            hits = [p for p in order if fnmatch.fnmatchcase(p, glob)]
            if not hits:
                raise ValueError(f"--expect {glob!r}: matches no tensor of the golden file "
                                 f"{golden}")
            res.expect_missing += [p for p in hits
                                   if p not in d or not isinstance(d[p], h5py.Dataset)]
        for i, path in enumerate(order):
            if path not in d or not isinstance(d[path], h5py.Dataset):
                res.missing.append(path)
                continue
            gd = g[path]
            op_index = int(gd.attrs.get("op_index", i))
            diff, note = compare_arrays(path, op_index, read_dataset(g, path, "golden", golden),
                                        read_dataset(d, path, "dump", dump),
                                        int(gd.attrs["bits"]), str(gd.attrs["encoding"]),
                                        bit_patterns)
            res.compared.append(path)
            if diff is not None:
                res.mismatches.append(diff)
            elif note:
                res.notes.append((path, note))

        def visit(name, obj):              # metadata datasets of the golden file (op_order,
            if isinstance(obj, h5py.Dataset) and name not in golden_set and not isinstance(
                    g.get(name), h5py.Dataset):            # trace, coverage) are not extra
                res.extra.append(name)
        d.visititems(visit)
    res.expect_missing = list(dict.fromkeys(res.expect_missing))
    return res


def _fmt_value(v) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def _listing(header: str, items: list, max_list: int) -> list:
    lines = ["", header] + [f"  {p}" for p in items[:max_list]]
    if len(items) > max_list:
        lines.append(f"  … {len(items) - max_list} more")
    return lines


def format_report(res: CompareResult, max_list: int = 20) -> str:
    """A human-readable report: first mismatch in execution order, per-tensor counts,
    missing and extra tensors, the verdict."""
    total = len(res.compared) + len(res.missing)
    lines = [f"golden: {res.golden}", f"dump:   {res.dump}",
             f"compared {len(res.compared)} of {total} golden tensors"
             + (f" ({len(res.missing)} missing from the dump)" if res.missing else "")]
    if res.first is not None:
        f = res.first
        lines += ["", f"FIRST MISMATCH (execution order, op {f.op_index}): {f.path}"]
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
        lines += ["", f"mismatching tensors ({len(res.mismatches)}), in execution order:"]
        for m in res.mismatches[:max_list]:
            where = f"first at {list(m.index)}" if m.index is not None else m.note
            lines.append(f"  op {m.op_index:5d}  {m.path}: {m.count} of {m.size} elements "
                         f"differ ({where})")
        if len(res.mismatches) > max_list:
            lines.append(f"  … {len(res.mismatches) - max_list} more")
    elif res.compared:
        lines.append("all compared tensors match bit for bit")
    else:
        lines.append("nothing was compared: the dump holds none of the golden file's tensors")
    if res.missing:
        lines += _listing(f"missing from the dump ({len(res.missing)}), not compared:",
                          res.missing, max_list)
    if res.expect_missing:
        lines += _listing(f"required by --expect {' '.join(res.expect)} but missing from the "
                          f"dump ({len(res.expect_missing)}):", res.expect_missing, max_list)
    if res.extra:
        what = ("listed only (--allow-extra)" if res.allow_extra else
                "not golden tensors, a wrong path? (--allow-extra accepts them)")
        lines += _listing(f"in the dump but not in the golden file ({len(res.extra)}), "
                          f"{what}:", res.extra, max_list)
    for p, n in res.notes[:max_list]:
        lines.append(f"note: {p}: {n}")
    lines += ["", "RESULT: " + res.verdict]
    return "\n".join(lines)


def to_json(res: CompareResult) -> dict:
    """A JSON-ready dict of the result."""
    def diff(m: TensorDiff) -> dict:
        return dict(path=m.path, op_index=m.op_index, size=m.size, mismatches=m.count,
                    index=list(m.index) if m.index is not None else None,
                    flat_index=m.flat_index, expected=m.expected, actual=m.actual,
                    expected_bits=m.expected_bits, actual_bits=m.actual_bits,
                    differing_bits=list(m.differing_bits), note=m.note)
    return dict(golden=res.golden, dump=res.dump, ok=res.ok, verdict=res.verdict,
                compared=len(res.compared),
                first=diff(res.first) if res.first else None,
                mismatches=[diff(m) for m in res.mismatches], missing=res.missing,
                extra=res.extra, expect=list(res.expect), expect_missing=res.expect_missing)
