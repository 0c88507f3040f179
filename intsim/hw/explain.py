"""`intsim compare --explain`: why the first mismatching output differs, MAC by MAC.

For a mismatch in a matmul's results (acc, acc_register, acc_tile_sum, acc_partial) the output
(g, m, n) is replayed from the golden operands (left[g, m, :], right[·, :, n]) through the
golden accumulator (NUMERICS.md §4): every k with a, b, a·b, the exact running sum and the
register, every tile end with the tile sum and the tile-sum register. Tile-level values the
dump holds (acc_partial / acc_register / acc_tile_sum) locate the first tile where the hardware
differs. Then alternative accumulators a buggy RTL may implement — wrap for saturate and back,
the other symmetric rule, no limit, a clamp at the tile end instead of per MAC (and back),
tiles of T ± 1, one bit more or less, an unbounded tile-sum register, k descending — are
replayed too; those that reproduce the dump's values are listed with the first k where their
register leaves the golden one.

For a mismatch in an operand's codes with v (and R) stored, the element's quantization is
shown instead: x, m, scale, v, the rounding rule's steps and the expected code, with the codes
that floor↔truncation or an off-by-one carry would give.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from intsim.core.accumulator import Accumulator, int_matmul
from intsim.formats.golden_file import matmul_operands, open_hdf5, read_matmuls

MAX_ROWS = 80


@dataclass(frozen=True)
class Model:
    """An accumulator as the replay sees it."""
    mode: str
    bits: int
    symmetric: bool
    tile: int
    ts_bits: int            # 0 = unbounded
    descending: bool = False

    def limits(self) -> tuple[int, int]:
        half = 1 << (self.bits - 1)
        return (-(half - 1) if self.symmetric and self.mode != "wrap" else -half), half - 1


def _wrap(s: int, w: int) -> int:
    h = 1 << (w - 1)
    return ((s + h) % (2 * h)) - h


def replay(a: list, b: list, model: Model) -> tuple[list, list, int]:
    """(per-MAC rows (k, tile, a, b, product, exact prefix, register), per-tile rows (tile,
    exact sum, register, tile-sum register), result) of one output."""
    lo, hi = model.limits()
    K = len(a)
    T = max(1, min(model.tile or K, K)) if K else 1
    macs, tiles, total = [], [], 0
    for t, k0 in enumerate(range(0, K, T)):
        ks = list(range(k0, min(K, k0 + T)))
        if model.descending:
            ks.reverse()
        reg = exact = 0
        for k in ks:
            p = a[k] * b[k]
            exact += p
            s = reg + p
            reg = (min(max(s, lo), hi) if model.mode == "saturate" else
                   _wrap(s, model.bits) if model.mode == "wrap" else s)
            macs.append((k, t, a[k], b[k], p, exact, reg))
        if model.mode == "clamp_tile":
            reg = min(max(reg, lo), hi)
        s = total + reg
        if model.ts_bits:
            th = 1 << (model.ts_bits - 1)
            total = (_wrap(s, model.ts_bits) if model.mode == "wrap" else
                     min(max(s, -(th - 1) if model.symmetric else -th), th - 1))
        else:
            total = s
        tiles.append((t, exact, reg, total))
    return macs, tiles, total


def alternatives(m: Model, K: int) -> list:
    """(description, Model) of the accumulator bugs the replay tries."""
    out = []
    other = {"saturate": ["wrap", "clamp_tile", "exact"], "wrap": ["saturate", "exact"],
             "clamp_tile": ["saturate", "wrap", "exact"], "exact": ["saturate", "wrap"]}
    for mode in other[m.mode]:
        out.append((f"{mode} instead of {m.mode}", replace(m, mode=mode)))
    if m.mode != "wrap":
        out.append((f"{'asymmetric [-2^(b-1), 2^(b-1)-1]' if m.symmetric else 'symmetric'} "
                    f"register range instead of {'symmetric' if m.symmetric else 'asymmetric'}",
                    replace(m, symmetric=not m.symmetric)))
    if m.tile < K:
        for t in (m.tile - 1, m.tile + 1):
            if t >= 1:
                out.append((f"tiles of {t} MACs instead of {m.tile}", replace(m, tile=t)))
        out.append(("no tiling (one tile of K)", replace(m, tile=K)))
    for bits in (m.bits - 1, m.bits + 1):
        if bits >= 2:
            out.append((f"a {bits}-bit register instead of {m.bits}", replace(m, bits=bits)))
    if m.ts_bits:
        out.append(("an unbounded tile-sum register", replace(m, ts_bits=0)))
    out.append(("k descending inside each tile", replace(m, descending=True)))
    return out


def _accumulator(m: Model) -> Accumulator:
    return Accumulator(bits=m.bits, tile=m.tile, mode=m.mode, symmetric=m.symmetric,
                       tile_sum_bits=m.ts_bits or None)


def _whole(left: np.ndarray, right: np.ndarray, m: Model) -> np.ndarray:
    """The whole matmul (G, M, N) under model m (k descending inside tiles by permuting k)."""
    if m.descending:
        K = left.shape[-1]
        idx = np.concatenate([np.arange(min(K, k0 + m.tile) - 1, k0 - 1, -1)
                              for k0 in range(0, K, m.tile)]) if K else np.arange(0)
        left, right = left[..., idx], right[:, idx, :]
    return int_matmul(np.ascontiguousarray(left), np.ascontiguousarray(right), _accumulator(m))


def score_variants(left, right, model: Model, actual: np.ndarray) -> list:
    """(description, outputs of the dump reproduced) for the golden model and each variant,
    best first (ties in the order tried)."""
    out = [("the golden accumulator", int(np.count_nonzero(_whole(left, right, model)
                                                           == actual)))]
    for text, alt in alternatives(model, left.shape[-1]):
        try:
            out.append((text, int(np.count_nonzero(_whole(left, right, alt) == actual))))
        except ValueError:                     # e.g. a variant the register model refuses
            continue
    return sorted(out, key=lambda x: -x[1])


def _first_divergence(ref: list, alt: list) -> Optional[tuple]:
    for r, x in zip(ref, alt):
        if r[6] != x[6] or r[0] != x[0] or r[1] != x[1]:
            return r, x
    return None


def _where(div) -> str:
    if div is None:
        return ""
    r, x = div
    if r[0] != x[0]:
        return f" — visits k = {x[0]} where the golden order has k = {r[0]}"
    if r[1] != x[1]:
        return (f" — at k = {r[0]} the golden accumulator is in tile {r[1]}, this one in "
                f"tile {x[1]}")
    return (f" — leaves the golden register at k = {r[0]} (tile {r[1]}): {x[6]} instead of "
            f"{r[6]}")


def _element(shape, flat) -> tuple:
    return tuple(int(i) for i in np.unravel_index(flat, shape))


def explain_matmul(g, d, desc: dict, tensor: str, flat: int) -> list:
    """Lines explaining the mismatch at flat index `flat` of result tensor `tensor`."""
    left, right = matmul_operands(g, desc)
    idx = _element(g[tensor].shape, flat)
    tile_level = tensor != desc["result"]
    gg, mm, nn = idx[1:] if tile_level else idx
    a = [int(v) for v in left[gg, mm, :]]
    b = [int(v) for v in right[gg, :, nn]]
    model = Model(desc["mode"], int(desc["acc_bits"]), bool(desc["acc_symmetric"]),
                  int(desc["tile"]), int(desc["tile_sum_bits"]))
    macs, tiles, result = replay(a, b, model)
    lo, hi = model.limits()
    lines = ["", f"EXPLAIN {tensor} element {list(idx)}: output (g={gg}, m={mm}, n={nn}) of "
             f"{desc['matmul']}",
             f"  K = {desc['K']}, tile {desc['tile']} ({desc['n_tiles']} tiles), {desc['mode']} "
             f"{desc['acc_bits']}-bit register [{lo}, {hi}], tile-sum "
             f"{desc['tile_sum_bits'] or 'unbounded'}" + (" bits" if desc['tile_sum_bits']
                                                          else ""),
             f"  left  {desc['left']}[{gg}, {mm}, :]   right {desc['right']} "
             f"(layout {desc['right_layout']}) column n={nn}"]
    observed = _observed(g, d, desc, gg, mm, nn)
    first_tile = _first_tile(observed, tiles)
    if first_tile is not None:
        t, key, e, v = first_tile
        lines.append(f"  the dump first differs at tile {t}: {key} expected {e}, actual {v}")
    hits, partial_hits = [], []
    for text, alt in alternatives(model, len(a)):
        am, at, ar = replay(a, b, alt)
        tiles_agree = all(observed[k] == [x[c] for x in at] for k, c in (
            ("partial", 1), ("register", 2), ("tile_sum", 3))
            if k in observed and len(observed[k]) == len(at))
        result_agrees = observed.get("result") == ar
        if result_agrees and tiles_agree:
            hits.append((text, _first_divergence(macs, am)))
        elif result_agrees:
            partial_hits.append((text, _first_divergence(macs, am)))
    lines += _mac_table(macs, model, _rows_to_show(macs, model, first_tile, hits))
    for t, ex, reg, ts in tiles:
        obs = "".join(f", dump {k} {observed[k][t]}" for k in ("register", "tile_sum")
                      if k in observed and observed[k][t] != (reg if k == "register" else ts))
        lines.append(f"  tile {t}: exact {ex}, register {reg}, tile-sum register {ts}{obs}")
    lines.append(f"  expected result {result}" + (f", actual {observed['result']}"
                                                   if "result" in observed else ""))
    for title, found in (("accumulators that reproduce the dump", hits),
                         ("accumulators that reproduce the result (not the dump's tile "
                          "values)", partial_hits if not hits else [])):
        if found:
            lines.append(f"  {title}:")
        for text, div in found:
            lines.append(f"    {text}{_where(div)}")
    if "result" in observed:
        actual = np.asarray(d[desc["result"]][()]).reshape(g[desc["result"]].shape)
        scores = score_variants(left, right, model, actual)
        total = actual.size
        lines.append(f"  over all {total} outputs of the matmul, the dump's results are "
                     f"reproduced by:")
        for text, n in scores[:4]:
            lines.append(f"    {n:6d}/{total}  {text}")
    if not hits and not partial_hits:
        lines.append("  no tried accumulator variant reproduces the dump (an operand, a "
                     "mapping of outputs, or another bug)")
    return lines


def _observed(g, d, desc: dict, gg: int, mm: int, nn: int) -> dict:
    """The dump's values of output (gg, mm, nn): per-tile lists and the result, where the dump
    holds them with the golden element count."""
    observed = {}
    for key in ("partial", "register", "tile_sum"):
        p = desc[key]
        if p in d and d[p].size == g[p].size:
            vals = np.asarray(d[p][()]).reshape(g[p].shape)[:, gg, mm, nn]
            observed[key] = [int(v) for v in vals]
    r = desc["result"]
    if r in d and d[r].size == g[r].size:
        observed["result"] = int(np.asarray(d[r][()]).reshape(g[r].shape)[gg, mm, nn])
    return observed


def _first_tile(observed: dict, tiles: list) -> Optional[tuple]:
    """(tile, which, expected, actual) of the first tile where the dump differs."""
    first = None
    for key, col in (("partial", 1), ("register", 2), ("tile_sum", 3)):
        for t, v in enumerate(observed.get(key, [])):
            if v != tiles[t][col] and (first is None or t < first[0]):
                first = (t, key, tiles[t][col], v)
    return first


def _mac_table(macs: list, model: Model, show: list) -> list:
    lines = ["      k  tile      a      b    a·b   exact sum   register (golden)"]
    limited, prev = set(), {}
    for i, (k, t, av, bv, p, ex, reg) in enumerate(macs):
        if reg != prev.get(t, 0) + p:
            limited.add(i)
        prev[t] = reg
    last = None
    for i in show:
        if last is not None and i != last + 1:
            lines.append("    …")
        k, t, av, bv, p, ex, reg = macs[i]
        mark = f"  ← {model.mode}" if i in limited else ""
        lines.append(f"  {k:5d} {t:5d} {av:6d} {bv:6d} {p:6d} {ex:11d} {reg:10d}{mark}")
        last = i
    return lines


def _rows_to_show(macs, model, first_tile, hits) -> list:
    if len(macs) <= MAX_ROWS:
        return list(range(len(macs)))
    keep = set()
    for text, div in hits:
        if div is not None:
            i = next(j for j, r in enumerate(macs) if r == div[0])
            keep |= set(range(max(0, i - 3), min(len(macs), i + 4)))
    if first_tile is not None:
        keep |= {i for i, r in enumerate(macs) if r[1] == first_tile[0]}
    keep |= set(range(3)) | {len(macs) - 1}
    return sorted(keep)[:MAX_ROWS]


def explain_codes(g, desc: dict, side: str, tensor: str, flat: int, actual) -> list:
    """Lines explaining a mismatching operand code from its x, m, scale, v and R."""
    attrs = g[tensor].attrs
    v = float(np.asarray(g[desc[f"{side}_v"]][()]).reshape(-1)[flat])
    expected = int(np.asarray(g[tensor][()]).reshape(-1)[flat])
    lines = ["", f"EXPLAIN {tensor} flat element {flat}: {attrs.get('description', '')}",
             f"  v = fl32(clamp(x, -m, m)/scale) = {v!r}  ({desc[f'{side}_v']})"]
    r = int(attrs.get("sr_bits", 0))
    if r and desc.get(f"{side}_sr_bits"):
        R = int(np.asarray(g[desc[f"{side}_sr_bits"]][()]).reshape(-1)[flat])
        t = int(np.floor(np.ldexp(np.float64(v), r)))
        trunc = int(np.trunc(np.ldexp(np.float64(v), r)))
        lines += [f"  stochastic, r = {r}: floor(v·2^r) = {t}, R = {R}, (floor + R) >> r = "
                  f"{(t + R) >> r} → code {expected} after the clamp",
                  f"  truncating toward zero instead: ({trunc} + R) >> r = {(trunc + R) >> r}; "
                  f"carry off by one: {(t + R + 1) >> r} / {(t + R - 1) >> r}"]
    else:
        lines.append(f"  rounding {attrs.get('rounding', '?')} of v → code {expected}")
    lines.append(f"  expected {expected}, actual {actual}")
    return lines


def _explain_one(g, d, descs, path, flat, actual) -> Optional[list]:
    for desc in descs:
        if path in (desc["partial"], desc["register"], desc["tile_sum"], desc["result"]):
            return explain_matmul(g, d, desc, path, flat)
        for side in ("left", "right"):
            if path == desc.get(f"{side}_codes") and desc.get(f"{side}_v"):
                return explain_codes(g, desc, side, path, flat, actual)
    return None


def explain(golden: str, dump: str, mismatches: list) -> list:
    """Explanation lines for the first replayable mismatch (compare.TensorDiff list, in
    execution order): a matmul result or an operand code with its v stored."""
    with open_hdf5(golden, "golden") as g, open_hdf5(dump, "dump") as d:
        descs = read_matmuls(g)
        for i, m in enumerate(mismatches):
            if m.flat_index is None:
                continue
            lines = _explain_one(g, d, descs, m.path, m.flat_index, m.actual)
            if lines is not None:
                if i:
                    lines[1:1] = [f"(the first mismatch, {mismatches[0].path}, has nothing to "
                                  f"replay; explaining the first one that has)"]
                return lines
    return ["", "EXPLAIN: no mismatch in a matmul result or in an operand with stored v "
                "(nothing to replay)"]


__all__ = ["Model", "replay", "alternatives", "explain", "explain_matmul", "explain_codes"]
