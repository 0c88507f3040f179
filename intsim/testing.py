"""Property testing for users of intsim: Hypothesis strategies and assertion helpers.

Check your own model of a datapath (a Python model of your RTL, a C simulator, …) against
intsim on thousands of generated cases:

    import numpy as np
    from hypothesis import given, settings
    from intsim.testing import accumulators, matmul_operands, assert_accumulator_matches

    def my_accumulator(a, b, acc):
        # my hardware: 4 rows x N lanes, a register of acc.bits that saturates per MAC ...
        lo, hi = acc.range
        out = np.zeros((a.shape[0], b.shape[1]), np.int64)
        tile = acc.tile or a.shape[1]
        for m in range(a.shape[0]):
            for n in range(b.shape[1]):
                total = 0
                for k0 in range(0, a.shape[1], tile):
                    reg = 0
                    for k in range(k0, min(k0 + tile, a.shape[1])):
                        reg = min(max(reg + int(a[m, k]) * int(b[k, n]), lo), hi)
                    total += reg
                out[m, n] = total
        return out

    @settings(derandomize=True, deadline=None)      # the same cases on every run
    @given(ab=matmul_operands(a_bits=4, b_bits=4), acc=accumulators(modes=["saturate"],
                                                                   tile_sum_bits=[None]))
    def test_my_accumulator(ab, acc):
        a, b = ab
        assert_accumulator_matches(my_accumulator, a, b, acc)

A failure reports the first differing output with its operands' row and column, and
Hypothesis shrinks the case to a minimal one.

Strategies (each argument may be a value, a list of values to sample from, or a strategy):
    int_tensors(bits, shape, signed, symmetric)      integer code tensors (edge values likely)
    matmul_operands(a_bits, b_bits, …)               (a (M, K), b (K, N)) code pairs
    accumulators(bits, tiles, modes, …)              intsim.Accumulator
    quant_specs(bits, roundings, …)                  intsim.QuantSpec
    numerics_specs(…)                                intsim.Numerics (valid datapath files)
    datapaths(…)                                     intsim.core.numerics.Datapath (+ SR seed)
Assertions:
    assert_bit_exact(expected, actual)               equal shape and bits, first mismatch shown
    assert_accumulator_matches(fn, a, b, acc)        fn(a, b, acc) == intsim.int_matmul
    assert_quantizer_matches(fn, x, spec, draw)      fn(x, spec, draw) == intsim codes/scale
    assert_no_events_when_a2q_holds(a, b, acc)       A2Q bound ⇒ no event, exact result
    a2q_bound_holds(a, b, acc), worst_case_bound(tile, a_max, b_max)
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
    from hypothesis.strategies import SearchStrategy
except ImportError as e:                                 # pragma: no cover
    raise ImportError("intsim.testing needs Hypothesis: pip install 'intsim[test]' "
                      "(or pip install hypothesis)") from e

from intsim.core.accumulator import MODES, Accumulator, int_matmul
from intsim.core.modes import OPERANDS, PRODUCTS, ActScale, RescaleOrder, SteRule
from intsim.core.numerics import Datapath, Numerics
from intsim.core.quantizer import ROUNDINGS, QuantSpec, quantize_spec
from intsim.core.ranges import (code_dtype, code_range, max_abs, n_tiles, product_operand_ranges,
                                tile_bound, tile_starts)
from intsim.core.rng import SRDraw
from intsim.core.trace import Trace

__all__ = ["int_tensors", "matmul_operands", "accumulators", "quant_specs", "numerics_specs",
           "datapaths", "assert_bit_exact", "assert_accumulator_matches",
           "assert_quantizer_matches", "assert_no_events_when_a2q_holds", "a2q_bound_holds",
           "worst_case_bound"]


def _strategy(x) -> SearchStrategy:
    """A strategy from a strategy, a list/tuple of choices, or one fixed value."""
    if isinstance(x, SearchStrategy):
        return x
    if isinstance(x, (list, tuple)):
        return st.sampled_from(list(x))
    return st.just(x)


# ---------------------------------------------------------------------------- tensors
def _code_elements(lo: int, hi: int) -> SearchStrategy:
    edges = sorted({lo, hi, 0 if lo <= 0 <= hi else lo, max(lo, min(hi, 1)),
                    max(lo, min(hi, -1)), lo + 1 if lo < hi else lo, hi - 1 if hi > lo else hi})
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


def int_tensors(bits=4, shape=None, *, signed=True, symmetric=True, min_dims: int = 1,
                max_dims: int = 2, min_side: int = 1, max_side: int = 8) -> SearchStrategy:
    """NumPy integer tensors of `bits`-bit codes (NUMERICS.md §1: code_range, code_dtype).

    shape: a tuple, a strategy of tuples, or None (min_dims…max_dims axes of min_side…
    max_side). Elements favour the edges (qmin, qmax, 0, ±1) as well as uniform values.
    """
    @st.composite
    def build(draw):
        b = draw(_strategy(bits))
        sg = draw(_strategy(signed))
        sym = draw(_strategy(symmetric))
        if isinstance(shape, tuple):
            shp = shape
        elif shape is not None:
            shp = draw(_strategy(shape))
        else:
            shp = draw(hnp.array_shapes(
                min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side))
        lo, hi = code_range(b, sg, sym)
        return draw(hnp.arrays(code_dtype(b, sg), shp, elements=_code_elements(lo, hi)))
    return build()


def matmul_operands(a_bits=4, b_bits=4, *, a_signed=True, b_signed=True, symmetric=True,
                    max_m: int = 6, max_k: int = 80, max_n: int = 6) -> SearchStrategy:
    """(a (M, K), b (K, N)) code tensors for intsim.int_matmul; K up to max_k so that
    several tiles (and overflow) occur."""
    @st.composite
    def build(draw):
        m = draw(st.integers(1, max_m))
        k = draw(st.integers(1, max_k))
        n = draw(st.integers(1, max_n))
        a = draw(int_tensors(a_bits, (m, k), signed=a_signed, symmetric=symmetric))
        b = draw(int_tensors(b_bits, (k, n), signed=b_signed, symmetric=symmetric))
        return a, b
    return build()


def accumulators(bits=st.integers(4, 24), tiles=st.one_of(st.none(), st.integers(1, 40)),
                 modes=MODES, symmetric=st.booleans(),
                 tile_sum_bits=st.one_of(st.none(), st.integers(8, 40))) -> SearchStrategy:
    """intsim.Accumulator instances (tile_sum_bits, when drawn, is at least `bits`)."""
    @st.composite
    def build(draw):
        b = draw(_strategy(bits))
        tsb = draw(_strategy(tile_sum_bits))
        if tsb is not None:
            tsb = min(63, max(tsb, b))
        return Accumulator(bits=b, tile=draw(_strategy(tiles)), mode=draw(_strategy(modes)),
                           symmetric=draw(_strategy(symmetric)), tile_sum_bits=tsb)
    return build()


_NICE_FLOATS = st.one_of(st.sampled_from([1.0, 0.975, 0.5, 0.9]),
                         st.floats(1e-3, 4.0, allow_nan=False, allow_infinity=False))


def quant_specs(bits=st.integers(2, 16), roundings=ROUNDINGS, *, signed=(True, False, None),
                symmetric=st.booleans(), clip=_NICE_FLOATS,
                scale=st.one_of(st.none(), st.sampled_from(["pow2", "sawb"]),
                                st.floats(1e-4, 1e3, allow_nan=False)),
                sr_bits=st.integers(1, 32), log2: bool = False) -> SearchStrategy:
    """intsim.QuantSpec instances a datapath file accepts (scale "sawb" only at 4 bits).

    log2=True also draws radix-2 logarithmic gradient specs (format "log2", stochastic,
    ≤ 5 bits) — only valid for g_in / g_w."""
    @st.composite
    def build(draw):
        if log2 and draw(st.booleans()):
            return QuantSpec(bits=draw(st.integers(2, 5)), rounding="stochastic",
                             signed=True, sr_bits=draw(_strategy(sr_bits)), format="log2")
        b = draw(_strategy(bits))
        sc = draw(_strategy(scale))
        if sc == "sawb" and b != 4:
            sc = None
        return QuantSpec(bits=b, rounding=draw(_strategy(roundings)), clip=draw(_strategy(clip)),
                         signed=draw(_strategy(signed)), symmetric=draw(_strategy(symmetric)),
                         scale=sc, sr_bits=draw(_strategy(sr_bits)))
    return build()


def numerics_specs(*, operand_bits=st.integers(2, 16), signed=(True, False, None),
                   allow_float: bool = True, narrow: bool = False,
                   names=st.text(max_size=12)) -> SearchStrategy:
    """intsim.Numerics instances. Each operand may be None (float) when allow_float (a product
    with a float operand then has no accumulator, which it could not use); each
    accumulator's bits are at least what one worst-case product needs unless narrow=True
    (then datapath files need allow_narrow_accumulators = true, which to_toml writes).
    For running a network, pass signed=(True, None): signed=False operands reject the
    negative values weights and gradients have."""
    @st.composite
    def build(draw):
        kw = {}
        for op in OPERANDS:
            if allow_float and draw(st.integers(0, 4)) == 0:
                kw[op] = None
            else:
                kw[op] = draw(quant_specs(bits=operand_bits, signed=signed,
                                          log2=op in ("g_in", "g_w")))
        nm = Numerics(**kw, hadamard=draw(st.sampled_from([None, "largest_pow2", "pad",
                                                            "off_divide"])),
                      name=draw(_strategy(names)),
                      rescale_order=draw(st.sampled_from(RescaleOrder.values())),
                      act_scale=draw(st.sampled_from(ActScale.values())),
                      ste=draw(st.sampled_from(SteRule.values())))
        accs = {}
        for prod in PRODUCTS.values():
            acc = prod.accumulator
            lr, rr = product_operand_ranges(nm, prod.kind)
            if lr is None or rr is None or (allow_float and draw(st.integers(0, 4)) == 0):
                accs[acc] = None
                continue
            need = None if lr is None or rr is None else max_abs(lr) * max_abs(rr)
            low = 2 if narrow or need is None else min(62, max(2, need.bit_length() + 1))
            b = draw(st.integers(low, min(62, low + 20)))
            tsb = draw(st.one_of(st.none(), st.integers(b, 63)))
            accs[acc] = Accumulator(bits=b, tile=draw(st.one_of(st.none(), st.integers(1, 64))),
                                    mode=draw(st.sampled_from(MODES)),
                                    symmetric=draw(st.booleans()),
                                    tile_sum_bits=tsb if not narrow else draw(
                                        st.one_of(st.none(), st.integers(2, 63))))
        return nm.replace(**accs)
    return build()


def datapaths(**kw) -> SearchStrategy:
    """intsim.core.numerics.Datapath: numerics_specs(**kw) plus an optional SR seed."""
    return st.builds(Datapath, numerics_specs(**kw),
                     st.one_of(st.none(), st.integers(0, 2 ** 63 - 1)))


# --------------------------------------------------------------------------- assertions
def assert_bit_exact(expected, actual, what: str = "result") -> None:
    """Same shape and identical bits (float32 by IEEE pattern); shows the first mismatch."""
    e, a = np.asarray(expected), np.asarray(actual)
    if e.shape != a.shape:
        raise AssertionError(f"{what}: shape {a.shape}, expected {e.shape}")
    if e.dtype.kind == "f" or a.dtype.kind == "f":
        eb = np.ascontiguousarray(e, np.float32).view(np.uint32)
        ab = np.ascontiguousarray(a, np.float32).view(np.uint32)
        bad = eb != ab
    else:
        bad = e.astype(np.int64) != a.astype(np.int64)
    if bad.any():
        flat = int(np.flatnonzero(bad)[0])
        idx = tuple(int(i) for i in np.unravel_index(flat, e.shape)) if e.ndim else ()
        raise AssertionError(f"{what}: {int(bad.sum())} of {e.size} elements differ; first at "
                             f"{list(idx)}: expected {e.reshape(-1)[flat]!r}, got "
                             f"{a.reshape(-1)[flat]!r}")


def assert_accumulator_matches(user_fn: Callable, a: np.ndarray, b: np.ndarray,
                               acc: Accumulator) -> np.ndarray:
    """Assert that user_fn(a, b, acc) equals intsim.int_matmul(a, b, acc) element for
    element; on failure the message shows the first differing output, the row of a, the
    column of b and intsim's per-tile partials. Returns intsim's result."""
    want = int_matmul(a, b, acc)
    got = np.asarray(user_fn(a, b, acc))
    if got.shape != want.shape:
        raise AssertionError(f"accumulator model: output shape {got.shape}, intsim gives "
                             f"{want.shape} for a {a.shape} · b {b.shape}")
    bad = got.astype(np.int64) != want
    if bad.any():
        m, n = (int(i) for i in np.argwhere(bad)[0][-2:])
        K = a.shape[-1]
        tile = acc.tile_for(K)
        parts = [int(np.dot(a.reshape(-1, K)[m, k0:k0 + tile].astype(np.int64),
                            b[k0:k0 + tile, n].astype(np.int64))) for k0 in tile_starts(K, tile)]
        raise AssertionError(
            f"accumulator model differs from intsim at output [{m}, {n}] "
            f"({int(bad.sum())} of {bad.size} outputs differ) with {acc}:\n"
            f"  intsim {int(want.reshape(-1, want.shape[-1])[m, n])}, "
            f"model {int(got.reshape(-1, got.shape[-1])[m, n])}\n"
            f"  a[{m}, :] = {a.reshape(-1, K)[m].tolist()}\n  b[:, {n}] = {b[:, n].tolist()}\n"
            f"  exact tile sums = {parts}")
    return want


def assert_quantizer_matches(user_fn: Callable, x: np.ndarray, spec: QuantSpec,
                             draw: Optional[SRDraw] = None) -> None:
    """Assert that user_fn(x, spec, draw) → (codes, scale) equals intsim's quantizer
    (NUMERICS.md §2; `draw` = the SRDraw of a stochastic spec, its random bits from
    intsim.core.rng.element_random_bits(draw.key, x.size, spec.sr_bits))."""
    if spec.stochastic and draw is None:
        raise ValueError("draw: a stochastic spec needs an SRDraw")
    q = quantize_spec(x, spec, draw)
    codes, scale = user_fn(x, spec, draw)
    assert_bit_exact(np.float32(q.scale), np.float32(scale), "scale")
    assert_bit_exact(q.codes, codes, "codes")


def worst_case_bound(tile: int, a_max: int, b_max: int) -> int:
    """A2Q-style worst case of a tile sum from the operand magnitudes: tile·max|a|·max|b|
    (intsim.core.ranges.tile_bound)."""
    return tile_bound(tile, (0, int(a_max)), (0, int(b_max)))


def a2q_bound_holds(a: np.ndarray, b: np.ndarray, acc: Accumulator) -> bool:
    """The data-dependent A2Q bound (Colbert et al.): for every K-tile t and column n,
    max|a| · Σ_{k∈t} |b[k, n]| ≤ hi of the register — then no running sum inside a tile can
    leave the register's range — and, with a finite tile-sum register, n_tiles times that
    fits it as well."""
    K = a.shape[-1]
    tile = acc.tile_for(K)
    amax = int(np.abs(a.astype(np.int64)).max()) if a.size else 0
    babs = np.abs(b.astype(np.int64))
    worst = 0
    for k0 in tile_starts(K, tile):
        if babs.size:
            worst = max(worst, amax * int(babs[k0:k0 + tile].sum(axis=0).max()))
    hi = acc.range[1]
    if acc.mode != "exact" and worst > hi:
        return False
    if acc.tile_sum_bits is not None:
        if n_tiles(K, tile) * worst > acc.tile_sum_range[1]:
            return False
    return True


def assert_no_events_when_a2q_holds(a: np.ndarray, b: np.ndarray, acc: Accumulator) -> bool:
    """If a2q_bound_holds(a, b, acc): assert that a traced int_matmul has no saturation/wrap
    event and no tile-sum event and equals the exact product. Returns whether the bound
    held (so a test can count or `assume` it)."""
    if not a2q_bound_holds(a, b, acc):
        return False
    tr = Trace()
    out = int_matmul(a, b, acc, trace=tr, label="a2q")
    rec = tr.records[-1]
    if rec["events"] or rec["tile_sum_events"]:
        raise AssertionError(f"A2Q bound holds but {rec['events']} events and "
                             f"{rec['tile_sum_events']} tile-sum events occurred with {acc}")
    exact = a.astype(np.int64) @ b.astype(np.int64)
    assert_bit_exact(exact, out, "int_matmul under the A2Q bound")
    return True
