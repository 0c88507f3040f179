"""Coverage of a golden file: what its vectors exercise in a datapath, and what they miss.

Per integer matmul (its descriptor and the run's trace record, NUMERICS.md §4.1):
    n_tiles, multi_tile (K crosses a tile boundary), ragged (K is not a multiple of the
    tile), events (MACs that saturated/wrapped, tiles clamped), registers_limited (tile ×
    output registers with an event), outputs_affected, tile_sum_events, max_abs_prefix and
    headroom_bits (register bits − the bits the largest exact running sum needs)
Per quantized operand tensor (its codes, v and, for stochastic rounding, R; NUMERICS.md §2.1):
    clamped (v beyond [qmin, qmax]); ties (v exactly halfway between integers: what the tie
    rule decides); for stochastic rounding with r bits, low = floor(v·2^r) mod 2^r:
    rounded_up / rounded_down, bits_exercised (positions of R seen both 0 and 1),
    carry_boundary (low + R = 2^r − 1 or 2^r: one off in the adder flips the code) and
    floor_sensitive (v < 0, v·2^r not an integer, low + R = 2^r − 1: a step that truncates
    toward zero instead of flooring gives another code)

`thin` lists what a bench verified against these vectors would not catch (loud warning):
a tiled matmul kind whose vectors never cross a tile boundary (a 33-MAC tile passes), an
accumulator kind whose register never saturates/wraps/clamps, a stochastically rounded
operand without a carry-boundary element. `notes` list the milder gaps (no ragged last tile,
a tile-sum register that never overflows, unexercised random-bit positions).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from intsim.core.modes import MatmulKind
from intsim.core.ranges import bit_width
from intsim.formats.golden_file import read_coverage

MATMUL_COLUMNS = ("matmul", "label", "kind", "step", "mode", "acc_bits", "rows", "K", "N",
                  "tile", "n_tiles", "multi_tile", "ragged", "macs", "events",
                  "registers_limited", "outputs_affected", "tile_sum_events", "max_abs_prefix",
                  "headroom_bits")
QUANT_COLUMNS = ("tensor", "operand", "kind", "rounding", "sr_bits", "elements", "clamped",
                 "ties", "rounded_up", "rounded_down", "bits_exercised", "carry_boundary",
                 "floor_sensitive")
EVENT_WORD = {"saturate": "saturated", "wrap": "wrapped", "clamp_tile": "clamped"}


@dataclass
class Coverage:
    matmuls: list = field(default_factory=list)
    quantizers: list = field(default_factory=list)
    thin: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def is_thin(self) -> bool:
        return bool(self.thin)

    def by_kind(self) -> list:
        """Totals per matmul kind (rows of dicts)."""
        out = []
        for kind in MatmulKind.values():
            rows = [r for r in self.matmuls if r["kind"] == kind]
            if not rows:
                continue
            outs = sum(r["rows"] * r["N"] for r in rows)
            out.append(dict(kind=kind, matmuls=len(rows),
                            multi_tile=sum(r["multi_tile"] for r in rows),
                            max_tiles=max(r["n_tiles"] for r in rows),
                            events=sum(r["events"] for r in rows),
                            registers_limited=sum(r["registers_limited"] for r in rows),
                            tile_sum_events=sum(r["tile_sum_events"] for r in rows),
                            outputs_affected=sum(r["outputs_affected"] for r in rows),
                            outputs=outs))
        return out

    def to_json(self) -> dict:
        return dict(matmuls=self.matmuls, quantizers=self.quantizers, by_kind=self.by_kind(),
                    thin=self.thin, notes=self.notes)

    def to_tables(self) -> dict:
        """{"matmuls": columns, "quantizers": columns, "attrs": {...}} for the HDF5 file."""
        def cols(rows, names):
            return {c: [r[c] for r in rows] for c in names}
        return dict(matmuls=cols(self.matmuls, MATMUL_COLUMNS),
                    quantizers=cols(self.quantizers, QUANT_COLUMNS),
                    attrs=dict(thin=json.dumps(self.thin), notes=json.dumps(self.notes),
                               by_kind=json.dumps(self.by_kind())))

    def format(self) -> str:
        """The printed report."""
        lines = [f"coverage: {len(self.matmuls)} integer matmuls, "
                 f"{len(self.quantizers)} quantized operand tensors"]
        head = ("kind", "matmuls", "multi-tile", "max tiles", "events", "regs limited",
                "tile-sum ev", "outputs hit")
        rows = [(r["kind"], r["matmuls"], r["multi_tile"], r["max_tiles"], r["events"],
                 r["registers_limited"], r["tile_sum_events"],
                 f"{r['outputs_affected']}/{r['outputs']}") for r in self.by_kind()]
        lines += _table(head, rows)
        q = _quant_summary(self.quantizers)
        if q:
            lines.append("")
            lines += _table(("operand", "rounding", "tensors", "elements", "clamped", "ties",
                             "R bits seen", "carry boundary", "floor-sensitive"), q)
        for n in self.notes:
            lines.append(f"note: {n}")
        if self.thin:
            lines.append("")
            lines.append("WARNING: THIN COVERAGE — a bench verified against these vectors "
                         "would not catch:")
            lines += [f"  - {t}" for t in self.thin]
            lines.append("  (add stress vectors: `intsim vectors`, a larger --model/--batch, "
                         "or more --steps)")
        return "\n".join(lines)


def _table(head, rows) -> list:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(head)]
    fmt = lambda vals: "  " + "  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)  # noqa
                                        for i, (v, w) in enumerate(zip(vals, widths)))
    return [fmt(head)] + [fmt(r) for r in rows]


def _quant_summary(quantizers) -> list:
    out = {}
    for r in quantizers:
        key = (r["operand"], r["rounding"] + (f" r={r['sr_bits']}" if r["sr_bits"] else ""))
        s = out.setdefault(key, dict(n=0, el=0, cl=0, ties=0, bits=0, cb=0, fs=0, r=r["sr_bits"]))
        s["n"] += 1
        for k, c in (("el", "elements"), ("cl", "clamped"), ("ties", "ties"),
                     ("cb", "carry_boundary"), ("fs", "floor_sensitive")):
            s[k] += r[c]
        s["bits"] = max(s["bits"], r["bits_exercised"])
    return [(op, rnd, s["n"], s["el"], s["cl"], s["ties"],
             f"{s['bits']}/{s['r']}" if s["r"] else "-", s["cb"] if s["r"] else "-",
             s["fs"] if s["r"] else "-") for (op, rnd), s in out.items()]


def quantizer_row(path: str, kind: str, attrs: dict, codes: np.ndarray, v: np.ndarray,
                  R) -> dict:
    """Coverage of one quantized operand tensor (module docstring)."""
    lo, hi = (int(x) for x in attrs["range"])
    v64 = np.asarray(v, np.float64).reshape(-1)
    inside = (v64 >= lo) & (v64 <= hi)
    r = int(attrs.get("sr_bits", 0)) if R is not None else 0
    row = dict(tensor=path, operand=str(attrs.get("operand", "")), kind=kind,
               rounding=str(attrs.get("rounding", "")), sr_bits=r, elements=int(v64.size),
               clamped=int((~inside).sum()),
               ties=int(np.count_nonzero((v64 - np.floor(v64) == 0.5) & inside)),
               rounded_up=0, rounded_down=0, bits_exercised=0, carry_boundary=0,
               floor_sensitive=0)
    if r:
        Rv = np.asarray(R, np.int64).reshape(-1)
        c = np.asarray(codes, np.int64).reshape(-1)
        fl = np.floor(v64)
        row["rounded_up"] = int(np.count_nonzero((c == fl + 1) & inside))
        row["rounded_down"] = int(np.count_nonzero((c == fl) & inside))
        seen1 = np.bitwise_or.reduce(Rv) if Rv.size else 0
        seen0 = np.bitwise_or.reduce(~Rv & ((1 << r) - 1)) if Rv.size else 0
        row["bits_exercised"] = bin(int(seen1) & int(seen0)).count("1")
        t = np.floor(np.ldexp(np.clip(v64, lo - 1, hi + 1), r))
        low = (t.astype(np.int64)) & ((1 << r) - 1)
        s = low + Rv
        row["carry_boundary"] = int(np.count_nonzero(((s == (1 << r) - 1) | (s == 1 << r))
                                                     & inside))
        frac = np.ldexp(v64, r) != t
        row["floor_sensitive"] = int(np.count_nonzero((v64 < 0) & frac & (s == (1 << r) - 1)
                                                      & inside))
    return row


def _trace_rows(trace) -> dict:
    """(label, step) -> the trace's matmul record."""
    out = {}
    for rec in getattr(trace, "records", []):
        if rec.get("op") == "matmul":
            out.setdefault((rec["label"], rec["step"]), rec)
    return out


def compute_coverage(tensors: list, matmuls: dict, trace=None, quantizers=()) -> Coverage:
    """Coverage of golden tensors (formats.golden_file.Tensor) with their matmul descriptors,
    the run's Trace (for the event counts) and standalone quantizer vectors (dicts with the
    paths codes, v, sr_bits and a kind)."""
    by_path = {t.path: t for t in tensors}
    recs = _trace_rows(trace)
    cov = Coverage()
    for d in sorted(matmuls.values(), key=lambda d: d.get("op_index", 0)):
        rec = recs.get((d["label"], d["step"]), {})
        rows = d["G"] * d["M"]
        limit_bits = d["acc_bits"] if d["mode"] != "exact" else 0
        cov.matmuls.append(dict(
            matmul=d["matmul"], label=d["label"], kind=d["kind"], step=d["step"],
            mode=d["mode"], acc_bits=d["acc_bits"], rows=rows, K=d["K"], N=d["N"],
            tile=d["tile"], n_tiles=d["n_tiles"], multi_tile=bool(d["n_tiles"] > 1),
            ragged=bool(d["K"] % d["tile"]) if d["tile"] else False,
            macs=rows * d["K"] * d["N"], events=int(rec.get("events", 0)),
            registers_limited=int(rec.get("tiles_affected", 0)),
            outputs_affected=int(rec.get("outputs_affected", 0)),
            tile_sum_events=int(rec.get("tile_sum_events", 0)),
            max_abs_prefix=int(rec.get("max_abs_prefix", 0)),
            headroom_bits=(limit_bits - bit_width(int(rec.get("max_abs_prefix", 0)))
                           if limit_bits else 0)))
        for side in ("left", "right"):
            v, cpath = d.get(f"{side}_v"), d.get(f"{side}_codes")
            if not v or v not in by_path or cpath not in by_path:
                continue
            codes = by_path[cpath]
            R = by_path.get(d.get(f"{side}_sr_bits") or "")
            cov.quantizers.append(quantizer_row(cpath, d["kind"], codes.attrs,
                                                codes.value, by_path[v].value,
                                                None if R is None else R.value))
    for q in quantizers:
        codes, R = by_path[q["codes"]], by_path.get(q.get("sr_bits") or "")
        cov.quantizers.append(quantizer_row(q["codes"], q["kind"], codes.attrs, codes.value,
                                            by_path[q["v"]].value,
                                            None if R is None else R.value))
    _verdicts(cov, matmuls)
    return cov


def _verdicts(cov: Coverage, matmuls: dict) -> None:
    descs = list(matmuls.values())
    if not descs and not cov.quantizers:
        cov.thin.append("the file holds no integer matmul and no quantizer vectors")
        return
    for kind in MatmulKind.values():
        rows = [r for r in cov.matmuls if r["kind"] == kind]
        kd = [d for d in descs if d["kind"] == kind]
        if not rows:
            continue
        tiled = [d for d in kd if d["tile_configured"]]
        if tiled and not any(r["multi_tile"] for r in rows):
            t = tiled[0]["tile_configured"]
            cov.thin.append(f"{kind}: no matmul crosses a K-tile boundary (every K ≤ {t}): "
                            f"an RTL tile of {t + 1} MACs passes")
        multi = [r for r in rows if r["multi_tile"]]
        if tiled and multi and not any(r["ragged"] for r in multi):
            cov.notes.append(f"{kind}: no multi-tile matmul has a shorter last tile")
        modes = {r["mode"] for r in rows} - {"exact"}
        for mode in sorted(modes):
            if not any(r["events"] for r in rows if r["mode"] == mode):
                other = "saturates" if mode == "wrap" else "wraps"
                cov.thin.append(f"{kind}: no {mode} register is ever {EVENT_WORD[mode]}: "
                                f"an RTL that ignores the limit (or {other}) passes")
        if any(d["tile_sum_bits"] for d in kd) and not any(r["tile_sum_events"] for r in rows):
            cov.notes.append(f"{kind}: the tile-sum register never overflows")
    for op in dict.fromkeys(q["operand"] for q in cov.quantizers if q["sr_bits"]):
        qs = [q for q in cov.quantizers if q["operand"] == op and q["sr_bits"]]
        if not any(q["carry_boundary"] for q in qs):
            cov.thin.append(f"{op}: no stochastically rounded element sits at a carry "
                            f"boundary (low + R = 2^r − 1 or 2^r): an SR step off by one "
                            f"(e.g. truncating instead of flooring) passes")
        elif not any(q["floor_sensitive"] for q in qs):
            cov.notes.append(f"{op}: no negative element tells flooring from truncation")
        r = qs[0]["sr_bits"]
        if max(q["bits_exercised"] for q in qs) < r:
            cov.notes.append(f"{op}: only {max(q['bits_exercised'] for q in qs)} of the {r} "
                             "random-bit positions take both values")


def load_coverage(path: str) -> Coverage:
    """The coverage stored in a golden file (written by `intsim golden` / `intsim vectors`)."""
    c = read_coverage(path)
    clean = lambda df: [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}  # noqa
                        for r in df.to_dict("records")]
    return Coverage(clean(c["matmuls"]), clean(c["quantizers"]), c["thin"], c["notes"])
