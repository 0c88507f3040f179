"""Matmul-level and quantizer-level vectors: directed and stress operands for any datapath, or
the user's own operand arrays (`intsim vectors`).

For each product kind (fwd, grad_in, grad_w) whose accumulator is integer in the datapath, the
operand code ranges come from the datapath (intsim.core.ranges.product_operand_ranges; a reused
forward operand grown by its Hadamard block) and the accumulator with its tile T from the
datapath too. Suites (each case is one matmul `vectors/<case>/<kind>/…`):

    extreme   K ∈ {1, T−1, T, T+1, 2T−1, 2T, 2T+1}: rows of a all max, all min, alternating,
              a ramp; columns of b all max, all min, alternating, zero — every register
              saturates (or wraps) in both directions, alternating signs cancel
    boundary  K = 3T + 1, constant products p chosen so the register first leaves its range
              exactly at the last MAC of a tile (p·(T−1) ≤ hi < p·T), or would at the first MAC
              of the next tile if it were not reset (p·T ≤ hi < p·(T+1)), both signs: an RTL
              tile of T ± 1 MACs or a missing reset gives other results
    rate      K = 2T + 1, 16 × 16 outputs with a targeted share of outputs hit by an event
              (--rate, default 0.05 and 0.5), by bisection on the operands' magnitude and sign
              bias
    signs     an operand whose sign is "auto" takes signed and unsigned codes: every mix
    random    uniform codes over the full ranges, K = 2T + 3
    tile_sum  enough maximal tiles to overflow a bounded tile-sum register (when ≤ 256 tiles
              suffice)
    sr        quantizer vectors for every stochastically rounded operand: x built from the
              known random bits R of the draw so that v lands exactly on the carry boundary
              (low + R = 2^r − 1 and 2^r, low = floor(v·2^r) mod 2^r), negative values among
              them (floor vs truncation), values at ±m; quantize kind `vectors/sr_<field>/
              quantize/<letter>_{x, sr_bits, codes, scale, m, v}`
    ties      quantizer vectors for round-to-nearest operands: v = n + 1/2 exactly and ± 1 ulp

With `operands` (an .npz of integer code arrays `a` (M, K) and `b` (K, N), or `NAME/a`,
`NAME/b` for several cases) the user's pairs are the cases; values outside the kind's operand
range are an error naming the array. Cases whose goal the datapath makes unreachable (e.g. no
saturation is possible when T·max|a|·max|b| fits the register) are skipped and noted.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from intsim._version import __version__
from intsim.core.accumulator import Accumulator, int_matmul
from intsim.core.hadamard import rule_block_size
from intsim.core.modes import PRODUCTS, MatmulKind
from intsim.core.numerics import Numerics, dumps
from intsim.core.ranges import product_operand_ranges
from intsim.core.resolve import NumericsSource, resolve_numerics
from intsim.core.trace import Trace
from intsim.formats.golden_file import FORMAT, FORMAT_VERSION, Tensor, int_tensor
from intsim.hw.golden_record import LAYOUTS, matmul_descriptor, select_matmuls, \
    tile_decomposition
from intsim.hw.vectors_quant import quantizer_vectors

SUITES = ("extreme", "boundary", "rate", "signs", "random", "tile_sum", "sr", "ties")
DEFAULT_RATES = (0.05, 0.5)
Range = tuple


# ----------------------------------------------------------------------------- operands
def _kind_setup(nm: Numerics, kind: MatmulKind, K: int):
    """(accumulator, left range, right range) of a product at reduction length K, or None."""
    acc = getattr(nm, PRODUCTS[kind].accumulator)
    block = rule_block_size(K, nm.hadamard) if kind != MatmulKind.FWD else 1
    left, right = product_operand_ranges(nm, kind, block)
    if acc is None or left is None or right is None:
        return None
    return acc, left, right


def _tile_ks(acc: Accumulator) -> list:
    T = acc.tile
    if T is None:
        return [1, 16, 33, 65]
    return sorted({k for k in (1, T - 1, T, T + 1, 2 * T - 1, 2 * T, 2 * T + 1) if k >= 1})


def _pattern(r: Range, n: int) -> np.ndarray:
    """Four vectors over [lo, hi]: all max, all min, alternating max/min, a ramp."""
    lo, hi = r
    k = np.arange(n)
    return np.stack([np.full(n, hi), np.full(n, lo), np.where(k % 2, lo, hi),
                     lo + k % (hi - lo + 1)]).astype(np.int64)


def extreme_cases(acc, lr, rr) -> list:
    out = []
    for K in _tile_ks(acc):
        a = _pattern(lr, K)                                         # (4, K)
        b = _pattern(rr, K)
        b[3] = 0                                                    # a zero column
        out.append((f"extreme_k{K}", a, b.T.copy()))
    return out


def _products(lr: Range, rr: Range) -> dict:
    """product p -> one (a, b) with a·b = p."""
    ps = {}
    for a in range(lr[0], lr[1] + 1):
        for b in range(rr[0], rr[1] + 1):
            ps.setdefault(a * b, (a, b))
    return ps


def boundary_cases(acc, lr, rr) -> tuple[list, list]:
    T = acc.tile
    lo, hi = acc.register_values() or (None, None)
    if T is None or lo is None:
        return [], ["boundary: needs a tiled, limited accumulator"]
    ps = _products(lr, rr)
    picks = []
    for p, ab in sorted(ps.items()):
        last = p > 0 and p * (T - 1) <= hi < p * T or p < 0 and p * (T - 1) >= lo > p * T
        reset = p > 0 and p * T <= hi < p * (T + 1) or p < 0 and p * T >= lo > p * (T + 1)
        if last or reset:
            picks.append(ab)
    if not picks:
        return [], [f"boundary: no product a·b makes a {T}-MAC tile leave [{lo}, {hi}] at its "
                    "boundary with these operand ranges"]
    picks = picks[:8]
    K = 3 * T + 1
    a = np.array([[x] * K for x, _ in picks], np.int64)
    b = np.array([[y] * K for _, y in picks], np.int64).T.copy()
    return [(f"boundary_k{K}", a, b)], []


def _event_share(a, b, acc) -> float:
    tr = Trace()
    int_matmul(a, b, acc, trace=tr, label="x/fwd")
    return tr.records[-1]["saturated_output_fraction"]


def rate_cases(acc, lr, rr, rates: Sequence[float], seed: int) -> tuple[list, list]:
    T = acc.tile or 32
    K, M, N = 2 * T + 1, 16, 16
    rng = np.random.default_rng(seed)
    ua, ub, sb = rng.random((M, K)), rng.random((K, N)), rng.random((K, N))
    flip = np.arange(N) % 2 == 1                   # half the columns prefer negative sums
    amax = max(lr[1], 0)
    bneg, bpos = -min(rr[0], 0), max(rr[1], 0)

    def ops(theta):
        a = np.rint(theta * ua * amax).astype(np.int64)
        pos = sb < (1 + theta) / 2
        pos = np.where(flip, ~pos, pos) if bneg else np.ones_like(pos)
        mag = theta * ub
        b = np.where(pos, np.rint(mag * bpos), -np.rint(mag * bneg)).astype(np.int64)
        return a, b
    out, notes = [], []
    top = _event_share(*ops(1.0), acc)
    for rate in rates:
        if top < rate:
            notes.append(f"rate {rate:g}: unreachable (at most {top:.3g} of the outputs are "
                         "hit with these operand ranges)")
            continue
        lo_t, hi_t = 0.0, 1.0
        for _ in range(24):
            mid = (lo_t + hi_t) / 2
            if _event_share(*ops(mid), acc) < rate:
                lo_t = mid
            else:
                hi_t = mid
        out.append((f"rate_{rate:g}".replace(".", "p"), *ops(hi_t)))
    return out, notes


def _sub_ranges(r: Range) -> list:
    """[(tag, range)]: an auto-sign union range splits into its signed and unsigned parts."""
    lo, hi = r
    if lo < 0 < hi and hi > -lo:
        return [("s", (lo, -lo)), ("u", (0, hi))]
    return [("s" if lo < 0 else "u", r)]


def sign_cases(acc, lr, rr, seed: int) -> list:
    T = acc.tile or 32
    ls, rs = _sub_ranges(lr), _sub_ranges(rr)
    if len(ls) == len(rs) == 1:
        return []
    rng = np.random.default_rng(seed + 1)
    out = []
    for tl, a_r in ls:
        for tr_, b_r in rs:
            a = rng.integers(a_r[0], a_r[1] + 1, (8, T + 1))
            b = rng.integers(b_r[0], b_r[1] + 1, (T + 1, 8))
            out.append((f"sign_{tl}{tr_}", a.astype(np.int64), b.astype(np.int64)))
    return out


def random_cases(acc, lr, rr, seed: int) -> list:
    T = acc.tile or 32
    rng = np.random.default_rng(seed + 2)
    a = rng.integers(lr[0], lr[1] + 1, (8, 2 * T + 3))
    b = rng.integers(rr[0], rr[1] + 1, (2 * T + 3, 8))
    return [(f"random_k{2 * T + 3}", a.astype(np.int64), b.astype(np.int64))]


def tile_sum_cases(acc, lr, rr) -> tuple[list, list]:
    if acc.tile_sum_bits is None:
        return [], []
    T = acc.tile or 32
    lo, hi = acc.register_values() or (None, None)
    ts_lo, ts_hi = acc.tile_sum_values()
    ps = {p: ab for p, ab in _products(lr, rr).items() if p > 0 and p * T <= (hi or p * T)}
    if not ps:
        return [], ["tile_sum: no positive product fits a tile"]
    p = max(ps)
    n = (ts_hi + 1) // (p * T) + 2
    if n > 256:
        return [], [f"tile_sum: a {acc.tile_sum_bits}-bit tile-sum register needs {n} "
                    f"maximal tiles of {T} to overflow (more than 256): not generated"]
    a0, b0 = ps[p]
    K = n * T
    a = np.stack([np.full(K, a0), np.full(K, -a0 if lr[0] <= -a0 else 0)]).astype(np.int64)
    b = np.full((K, 1), b0, np.int64)
    return [(f"tile_sum_k{K}", a, b)], []


# ------------------------------------------------------------------------------ user npz
def user_cases(path: str) -> list:
    """[(case, a, b)] of an .npz of integer codes (module docstring); never unpickles."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"operands: no such file {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"operands: {path} is not a readable .npz of arrays ({e})") from None
    cases = {}
    for key, arr in arrays.items():
        case, _, side = key.rpartition("/")
        if side not in ("a", "b"):
            raise ValueError(f"operands: {path}: array {key!r}: expected names a, b or "
                             "CASE/a, CASE/b")
        if arr.dtype.kind not in "iu" or arr.ndim != 2:
            raise ValueError(f"operands: {path}: {key} must be a 2-D integer array of codes, "
                             f"got {arr.dtype} {arr.shape}")
        cases.setdefault(case or "user", {})[side] = arr.astype(np.int64)
    out = []
    for case, ab in cases.items():
        if set(ab) != {"a", "b"}:
            raise ValueError(f"operands: {path}: case {case!r} needs both a and b")
        if ab["a"].shape[1] != ab["b"].shape[0]:
            raise ValueError(f"operands: {path}: {case}: a {ab['a'].shape} and b "
                             f"{ab['b'].shape} do not share K (a is (M, K), b is (K, N))")
        out.append((case.replace("/", "_"), ab["a"], ab["b"]))
    if not out:
        raise ValueError(f"operands: {path} holds no arrays")
    return out


def _check_range(case, name, arr, r, kind, path):
    if arr.size and (arr.min() < r[0] or arr.max() > r[1]):
        raise ValueError(f"operands: {path}: {case}/{name} has values [{arr.min()}, "
                         f"{arr.max()}] outside the {kind} operand range [{r[0]}, {r[1]}] of "
                         "the datapath")


# ------------------------------------------------------------------------------ emission
def _stamp(t: Tensor, case: str, kind: str, name: str) -> Tensor:
    t.attrs.update(step=-1, layer=case, kind=str(kind), tensor=name)
    return t


def matmul_tensors(case: str, kind: MatmulKind, a: np.ndarray, b: np.ndarray,
                   acc: Accumulator, lr: Range, rr: Range, trace: Trace, rule
                   ) -> tuple[list, dict]:
    """Golden tensors of one matmul a (M, K) · b (K, N) stored in the kind's layouts, and its
    descriptor; the call is traced under label case/kind (step −1)."""
    prod = PRODUCTS[kind]
    group = f"vectors/{case}/{kind}"
    K = a.shape[1]
    left = a[None]                                                   # (1, M, K)
    right = {"N,K": b.T, "K,N": b, "G,K,N": b[None]}[LAYOUTS[kind][1]]
    lname, rname = f"{prod.left.letter}_codes", f"{prod.right.letter}_codes"
    out = [_stamp(int_tensor(f"{group}/{lname}", left, *lr, f"left operand ({prod.left.field} "
                             f"codes), layout G,M,K", operand=prod.left.field), case, kind,
                  lname),
           _stamp(int_tensor(f"{group}/{rname}", np.ascontiguousarray(right), *rr,
                             f"right operand ({prod.right.field} codes), layout "
                             f"{LAYOUTS[kind][1]}", operand=prod.right.field), case, kind, rname)]
    trace.step = -1
    acc_value = int_matmul(left, b, acc, trace=trace, label=f"{case}/{kind}")
    partials, registers, sums = tile_decomposition(left, b, acc)
    if not np.array_equal(sums[-1], acc_value):
        raise RuntimeError(f"vectors: the tile decomposition of {group} does not reproduce "
                           "int_matmul")
    tile = acc.tile_for(K)
    n = len(partials)
    plo = min(lr[0] * rr[0], lr[0] * rr[1], lr[1] * rr[0], lr[1] * rr[1])
    phi = max(lr[0] * rr[0], lr[0] * rr[1], lr[1] * rr[0], lr[1] * rr[1])
    part_rng = (tile * plo, tile * phi)
    reg_rng = acc.register_values() or part_rng
    ts_rng = acc.tile_sum_values() or (n * reg_rng[0], n * reg_rng[1])
    common = dict(tile=tile, n_tiles=n, mode=str(acc.mode), acc_bits=acc.bits,
                  acc_symmetric=acc.symmetric, tile_sum_bits=acc.tile_sum_bits or 0)
    for name, val, rng_, what in (
            ("acc_partial", np.stack(partials), part_rng, "exact sum of each K-tile"),
            ("acc_register", np.stack(registers), reg_rng, "register at the end of each tile"),
            ("acc_tile_sum", np.stack(sums), ts_rng, "tile-sum register after each tile"),
            ("acc", acc_value, ts_rng, "matmul result (the final tile-sum register)")):
        out.append(_stamp(int_tensor(f"{group}/{name}", val, *rng_, what, **common), case,
                          kind, name))
    desc = matmul_descriptor(group, -1, case, kind, acc, K, left.shape, b.shape, lname,
                             rname, {}, rule_block_size(K, rule) if kind != MatmulKind.FWD
                             else 1, rule)
    return out, desc


def _kind_cases(nm, kind, suites, rates, seed, user) -> tuple[list, list]:
    """[(case, a, b, acc, lr, rr)] and notes for one kind."""
    probe = _kind_setup(nm, kind, 32)
    if probe is None:
        return [], [f"{kind}: not an integer matmul in this datapath (float operand or "
                    "accumulator): no vectors"]
    acc = probe[0]
    cases, notes = [], []
    if user is not None:
        raw = [(c, a, b) for c, a, b in user]
    else:
        raw = []
        lr, rr = probe[1], probe[2]
        limited = str(acc.mode) != "exact"
        if not limited:
            notes.append(f"{kind}: exact accumulator: nothing can saturate, only the operand "
                         "and tile suites apply")
            suites = [s for s in suites if s not in ("boundary", "rate")]
        if "extreme" in suites:
            raw += extreme_cases(acc, lr, rr)
        for name, fn in (("boundary", lambda: boundary_cases(acc, lr, rr)),
                         ("rate", lambda: rate_cases(acc, lr, rr, rates, seed)),
                         ("tile_sum", lambda: tile_sum_cases(acc, lr, rr))):
            if name in suites:
                got, why = fn()
                raw += got
                notes += [f"{kind}: {w}" for w in why]
        if "signs" in suites:
            raw += sign_cases(acc, lr, rr, seed)
        if "random" in suites:
            raw += random_cases(acc, lr, rr, seed)
    for case, a, b in raw:
        _, lr, rr = _kind_setup(nm, kind, a.shape[1])
        if user is not None:
            _check_range(case, "a", a, lr, kind, user.path)
            _check_range(case, "b", b, rr, kind, user.path)
        cases.append((case, a, b, acc, lr, rr))
    return cases, notes


class _UserCases(list):
    path = ""


def build_vectors(datapath: NumericsSource, kinds: Sequence[str] = MatmulKind.values(),
                  suites: Sequence[str] = SUITES, operands: Optional[str] = None,
                  rates: Sequence[float] = DEFAULT_RATES, seed: int = 0,
                  select: Sequence[str] = ()) -> tuple[list, dict]:
    """(tensors, root) of a vectors file (module docstring), for write_vectors_file."""
    dp = resolve_numerics(datapath)
    nm = dp.numerics
    bad = [s for s in suites if s not in SUITES]
    if bad:
        raise ValueError(f"suite: unknown {bad[0]!r}; expected some of {', '.join(SUITES)}")
    kinds = [MatmulKind.parse(k, "kind") for k in kinds]
    for r in rates:
        if not 0 < r <= 1:
            raise ValueError(f"rate: expected a share in (0, 1], got {r!r}")
    user = None
    if operands is not None:
        user = _UserCases(user_cases(operands))
        user.path = operands
    trace = Trace()
    tensors, matmuls, notes, quant = [], {}, [], []
    for kind in kinds:
        cases, why = _kind_cases(nm, kind, suites, rates, seed, user)
        notes += why
        for case, a, b, acc, lr, rr in cases:
            ts, desc = matmul_tensors(case, kind, a, b, acc, lr, rr, trace, nm.hadamard)
            tensors += ts
            matmuls[desc["matmul"]] = desc
    if user is None:
        qt, quant, why = quantizer_vectors(nm, kinds, suites, seed)
        tensors += qt
        notes += why
    if not tensors:
        raise ValueError("vectors: nothing to write (" + "; ".join(notes) + ")")
    tensors, matmuls = select_matmuls(tensors, matmuls, select)
    for i, t in enumerate(tensors):
        t.attrs["op_index"] = i
    index = {t.path: i for i, t in enumerate(tensors)}
    for d in matmuls.values():
        d["op_index"] = index[d["result"]]
    root = dict(format=FORMAT, format_version=FORMAT_VERSION, intsim_version=__version__,
                source="vectors", datapath=dumps(nm, seed=dp.seed),
                datapath_source=dp.text or "", numerics=nm.name, model="vectors",
                model_kind="vectors", seed=seed, sr_seed=seed, steps=0,
                kinds=",".join(map(str, kinds)),
                suites="user operands" if user is not None else ",".join(suites),
                operands=os.path.basename(operands) if operands else "",
                rates=np.array(rates, np.float64), select=",".join(select) or "*",
                notes="\n".join(notes), n_tensors=len(tensors), n_matmuls=len(matmuls),
                _matmuls=matmuls, _trace=trace, _quantizers=quant)
    return tensors, root


__all__ = ["SUITES", "DEFAULT_RATES", "build_vectors", "matmul_tensors", "user_cases"]
