"""Finite accumulators and the tiled integer matmul (NUMERICS.md §4).

    out[..., m, n] = TS_{tiles t ascending}( R_t ),   R_t = register over k in tile t

Register R per mode: "saturate" clamps to [lo, hi] after every multiply-accumulate (k
ascending, so the result depends on order); "clamp_tile" takes the exact tile sum and clamps
it once; "wrap" keeps it modulo 2^bits (two's complement); "exact" never limits. [lo, hi] =
±(2^(bits-1)-1) when symmetric, else [-2^(bits-1), 2^(bits-1)-1]. TS is the tile-sum register:
unbounded int64 when tile_sum_bits is None, else tile_sum_bits wide — wrapping in "wrap" mode,
saturating otherwise (same symmetric rule).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

from intsim.core.modes import AccMode
from intsim.core.ranges import effective_tile, n_tiles, register_range, twos_complement_range
from intsim.kernels import accumulate as K
from intsim.kernels import matmul_int8 as F

if TYPE_CHECKING:
    from intsim.core.trace import Trace

MODES = AccMode.values()


def kernel_path() -> str:
    """The int_matmul kernel path this process runs, as `intsim bench` reports it: "generic"
    (INTSIM_KERNELS=generic: kernels.accumulate.tiled_matmul for every call), else "fast"
    with the kernels available on this CPU (kernels.matmul_int8; traced calls and datapaths
    the fast kernels cannot compute exactly still run the generic kernel)."""
    if F.KERNELS == "generic":
        return "generic"
    return "fast (int8 product tables" + (", AVX2 pmaddubsw pairs)" if F.PAIRS else ")")


@dataclass(frozen=True)
class Accumulator:
    """An accumulator datapath: register width, K-tile, overflow mode, tile-sum register."""
    bits: int = 8
    tile: Optional[int] = 32
    mode: Union[AccMode, str] = AccMode.SATURATE
    symmetric: bool = True
    tile_sum_bits: Optional[int] = None

    def __post_init__(self):
        if isinstance(self.bits, bool) or not isinstance(self.bits, (int, np.integer)) \
                or not 2 <= self.bits <= 62:
            raise ValueError(f"bits: expected an int in [2, 62], got {self.bits!r}")
        if self.tile is not None and (isinstance(self.tile, bool) or not isinstance(
                self.tile, (int, np.integer)) or self.tile < 1):
            raise ValueError(f"tile: expected None or a positive int, got {self.tile!r}")
        object.__setattr__(self, "mode", AccMode.parse(self.mode, "mode"))
        if self.symmetric not in (True, False):
            raise ValueError(f"symmetric: expected a bool, got {self.symmetric!r}")
        tsb = self.tile_sum_bits
        if tsb is not None and (isinstance(tsb, bool) or not isinstance(tsb, (int, np.integer))
                                or not 2 <= tsb <= 63):
            raise ValueError(f"tile_sum_bits: expected None or an int in [2, 63], got {tsb!r}")

    @property
    def range(self) -> tuple[int, int]:
        """(lo, hi) of the register's saturation limits (saturate, clamp_tile)."""
        return register_range(self.bits, self.symmetric)

    @property
    def tile_sum_range(self) -> Optional[tuple[int, int]]:
        """(lo, hi) of the tile-sum register's saturation limits; None when unbounded."""
        return None if self.tile_sum_bits is None else register_range(self.tile_sum_bits,
                                                                      self.symmetric)

    def register_values(self) -> Optional[tuple[int, int]]:
        """The values the register can hold at the end of a tile: its limits, the full
        two's-complement range when it wraps, None (unbounded) when exact."""
        if self.mode == AccMode.EXACT:
            return None
        return twos_complement_range(self.bits) if self.mode == AccMode.WRAP else self.range

    def tile_sum_values(self) -> Optional[tuple[int, int]]:
        """The values the tile-sum register can hold; None when it is unbounded."""
        if self.tile_sum_bits is None:
            return None
        return (twos_complement_range(self.tile_sum_bits) if self.mode == AccMode.WRAP
                else self.tile_sum_range)

    def tile_for(self, K: int) -> int:
        """The tile used for reduction length K (ranges.effective_tile)."""
        return effective_tile(self.tile, K)


def tile_sum_register(s: np.ndarray, acc: Accumulator) -> np.ndarray:
    """TS applied to s = previous tile-sum value + tile result (int64 array): unchanged when
    unbounded, wrapped to tile_sum_bits in wrap mode, else saturated to tile_sum_range."""
    if acc.tile_sum_bits is None:
        return s
    if acc.mode == AccMode.WRAP:
        return K.wrap_to(np.asarray(s, np.int64), acc.tile_sum_bits)
    lo, hi = acc.tile_sum_range
    return np.clip(s, lo, hi)


def _extremes(x: np.ndarray) -> tuple[int, int]:
    """(min, max) of x; (0, 0) when empty."""
    return (0, 0) if x.size == 0 else (int(x.min()), int(x.max()))


def check_operand_range(name: str, x: np.ndarray, declared: Optional[tuple[int, int]],
                        extremes: Optional[tuple[int, int]] = None) -> None:
    """ValueError naming `name`, the first value outside `declared` = (lo, hi) and its index;
    nothing when declared is None. `extremes` = (min, max) of x when already known."""
    if declared is None:
        return
    if (not isinstance(declared, (tuple, list)) or len(declared) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                       for v in declared) or declared[0] > declared[1]):
        raise ValueError(f"{name}_range: expected (lo, hi) integers with lo <= hi, got "
                         f"{declared!r}")
    lo, hi = int(declared[0]), int(declared[1])
    mn, mx = extremes if extremes is not None else _extremes(x)
    if mn >= lo and mx <= hi:
        return
    flat = int(np.flatnonzero((x < lo) | (x > hi))[0])
    idx = tuple(int(i) for i in np.unravel_index(flat, x.shape))
    raise ValueError(f"{name}: value {int(x.reshape(-1)[flat])} at {list(idx)} is outside the "
                     f"declared operand range [{lo}, {hi}] ({name}_range)")


def _absmax(x: np.ndarray, extremes: Optional[tuple[int, int]] = None) -> int:
    mn, mx = extremes if extremes is not None else _extremes(x)
    return max(abs(mx), abs(mn))


def _register_dtype(bound: int) -> np.dtype:
    """Smallest of int16/int32/int64 holding magnitudes up to `bound`."""
    for dt in (np.int16, np.int32, np.int64):
        if bound <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"a, b: values up to {bound} exceed a 64-bit register model")


@dataclass
class MatmulStats:
    """What one traced int_matmul call observed (all counts over every output)."""
    events: np.ndarray          # (rows, N) MACs that saturated/wrapped; clamped tiles
    tiles_hit: np.ndarray       # (rows, N) tiles with ≥ 1 event
    ts_events: np.ndarray       # (rows, N) tile-sum register overflows
    max_abs_partial: int        # max |exact tile sum|
    max_abs_prefix: int         # max |exact running sum inside a tile|
    max_abs_total: int          # max |tile-sum register value|
    hist: np.ndarray            # (64,) log2 histogram of exact tile sums (bin = bit length)
    n_tiles: int


def int_matmul(a: np.ndarray, b: np.ndarray, acc: Accumulator, *,
               trace: Optional["Trace"] = None, label: str = "",
               a_range: Optional[tuple[int, int]] = None,
               b_range: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Integer matmul a (..., M, K) · b (K, N) through accumulator `acc` → int64 (..., M, N).

    b may also be a batch (..., K, N) with the same leading dims as a: each pair is
    multiplied separately and one trace record covers the whole batch.

    a_range, b_range: the declared (lo, hi) values of each operand — the width of the
    hardware's operand bus, e.g. core.ranges.code_range(4, True) = (-7, 7) for signed 4-bit
    codes. A value outside its declared range is a ValueError naming the operand, the value
    and its position (without a declaration any integers are accepted: the NumPy dtype is not
    a hardware width).

    Untraced calls whose registers and products fit 8- or 16-bit SIMD lanes (e.g. 4-bit
    codes, registers of up to 8 bits for saturate) run the fast kernels of
    kernels/matmul_int8.py (`fast_matmul`; INTSIM_KERNELS=generic turns them off); everything
    else, and every traced call, runs one generic Numba kernel for every mode: one SIMD lane
    per output column (per row when there are fewer than 64 columns), 4 rows share each
    loaded b[k, n], row blocks in parallel. Both give the same bits, for any thread count.
    Registers are int16/int32/int64 as the operand ranges require; event counting and the
    statistics of NUMERICS.md §5 are computed only when a trace is given.
    """
    for name, arr in (("a", a), ("b", b)):
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iu":
            raise ValueError(f"{name}: expected a NumPy integer array, got "
                             f"{getattr(arr, 'dtype', type(arr).__name__)}")
    if not isinstance(acc, Accumulator):
        raise ValueError(f"acc: expected an intsim.Accumulator, got {acc!r}")
    ext = [_extremes(x) if r is not None else None for x, r in ((a, a_range), (b, b_range))]
    check_operand_range("a", a, a_range, ext[0])
    check_operand_range("b", b, b_range, ext[1])
    if b.ndim > 2 and a.ndim == b.ndim and a.shape[:-2] == b.shape[:-2] \
            and a.shape[-1] == b.shape[-2]:
        return _batched_int_matmul(a, b, acc, trace, label)
    if a.ndim < 2 or b.ndim != 2 or a.shape[-1] != b.shape[0]:
        raise ValueError(f"a, b: expected shapes (..., M, K) and (K, N) or (..., K, N), got "
                         f"{a.shape} and {b.shape}")
    out, stats, shape = _matmul_2d(a, b, acc, trace is not None, *ext)
    if trace is not None:
        trace.record_matmul(label, acc, stats, shape=shape)
        if getattr(trace, "event_room", 0):           # opt-in per-event log (core.events)
            trace.record_matmul_events(label, acc, stats, a, b)
    return out


def _matmul_2d(a: np.ndarray, b: np.ndarray, acc: Accumulator, count: bool,
               a_ext: Optional[tuple[int, int]] = None, b_ext: Optional[tuple[int, int]] = None):
    """(out (..., M, N), MatmulStats or None, (rows, K, N)) of a (..., M, K) · b (K, N)."""
    lead, (M, Kd), N = a.shape[:-2], a.shape[-2:], b.shape[1]
    rows = math.prod(lead) * M           # (np.prod of a shape tuple costs ~9 us a call)
    a2 = a.reshape(rows, Kd)
    if not count:                         # the fast kernels (kernels/matmul_int8.py), if exact here
        out = fast_matmul(a2, b, acc, a_ext, b_ext)
        if out is not None:
            return out.reshape(*lead, M, N), None, (rows, Kd, N)
    tile = acc.tile_for(Kd)
    tiles = n_tiles(Kd, acc.tile)
    prod = _absmax(a2, a_ext) * _absmax(b, b_ext)
    lo, hi = acc.range
    mode = acc.mode.code
    if mode == K.SATURATE:
        reg_bound = max(-lo, hi) + prod
    elif mode == K.WRAP:
        reg_bound = (1 << acc.bits) + prod          # room for s + 2^(bits-1) before masking
    else:
        reg_bound = tile * prod
    if acc.tile_sum_bits is None and tiles * max(reg_bound, -lo, hi) >= 1 << 63:
        raise ValueError("a, b: the unbounded tile-sum register would exceed int64")
    rdt = _register_dtype(max(reg_bound, tile))     # also counts ≤ tile events per tile
    ts_mode = (K.TS_NONE if acc.tile_sum_bits is None
               else K.TS_WRAP if acc.mode == AccMode.WRAP else K.TS_SATURATE)
    ts_lo, ts_hi = acc.tile_sum_range or (0, 0)

    b_cols = np.ascontiguousarray(b, dtype=rdt)
    exact_dt = _register_dtype(tile * prod)         # traced calls: exact running sums
    args = (tile, mode, lo, hi, acc.bits, ts_mode, ts_lo, ts_hi, acc.tile_sum_bits or 64,
            count, exact_dt)
    if N < TRANSPOSE_BELOW_N and rows > N:
        # few output columns: give the SIMD lanes to the rows instead, out = (bᵀ · aᵀ)ᵀ
        # (every output is still its own k-ascending sequence: same bits)
        res = _kernel(np.ascontiguousarray(b_cols.T), np.ascontiguousarray(a2.T, dtype=rdt),
                      *args)
        res = [x.T if isinstance(x, np.ndarray) and x.ndim == 2 else x for x in res]
    else:
        res = _kernel(a2, b_cols, *args)
    out, events, tiles_hit, ts_events, agg, hist = res
    stats = MatmulStats(events, tiles_hit, ts_events, int(agg[0]), int(agg[1]), int(agg[2]),
                        hist, tiles) if count else None
    return np.ascontiguousarray(out).reshape(*lead, M, N), stats, (rows, Kd, N)


TRANSPOSE_BELOW_N = 64


def fast_matmul(a2: np.ndarray, b: np.ndarray, acc: Accumulator,
                a_ext: Optional[tuple[int, int]] = None,
                b_ext: Optional[tuple[int, int]] = None) -> Optional[np.ndarray]:
    """a2 (M, K) · b (K, N) through `acc` by the fast kernels of kernels/matmul_int8.py as
    int64 (M, N) — the same bits as the generic kernel — or None when none of them can
    compute it exactly (or INTSIM_KERNELS=generic). a_ext, b_ext: (min, max) when known.
    No event counts: traced calls never come here."""
    ts_lo, ts_hi = acc.tile_sum_range or (0, 0)
    reg = F.Register(acc.mode.code, acc.bits, acc.tile_for(a2.shape[1]), *acc.range,
                     acc.tile_sum_bits, ts_lo, ts_hi)
    return F.fast_int_matmul(a2, b, reg, a_ext, b_ext)


def _kernel(a2, b, tile, mode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits, count, exact_dt):
    """Run kernels.accumulate.tiled_matmul on a2 (rows, K) · b (K, N) (register dtype b's).

    Rows are padded to a multiple of 4 with zeros. Returns (out, events, tiles_hit,
    ts_events, [max|partial|, max|prefix|, max|total|], hist); the counts only if `count`.
    """
    rows, Kd = a2.shape
    N = b.shape[1]
    padded = -(-rows // K.ROWS) * K.ROWS
    ap = np.zeros((padded, Kd), b.dtype)
    ap[:rows] = a2
    shape = (padded, N) if count else (0, 0)
    out = np.empty((padded, N), np.int64)
    events, tiles_hit, ts_events = (np.zeros(shape, np.int32) for _ in range(3))
    stats = np.zeros((padded // K.ROWS, 3 + K.HIST_BINS), np.int64)
    K.tiled_matmul(ap, b, tile, mode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits, count,
                   out, events, tiles_hit, ts_events, stats, np.empty(0, exact_dt))
    agg = stats[:, :3].max(axis=0) if stats.size else np.zeros(3, np.int64)
    hist = stats[:, 3:].sum(axis=0)
    hist[0] -= (padded - rows) * N * -(-Kd // tile)          # the padded rows' zero partials
    return out[:rows], events[:rows], tiles_hit[:rows], ts_events[:rows], agg, hist


def _batched_int_matmul(a, b, acc, trace, label):
    """Each pair a[i] · b[i] on its own; one trace record covers the whole batch."""
    lead = a.shape[:-2]
    a3 = a.reshape(-1, *a.shape[-2:])
    b3 = b.reshape(-1, *b.shape[-2:])
    count = trace is not None
    parts = [_matmul_2d(x, y, acc, count) for x, y in zip(a3, b3)]
    out = np.stack([p[0] for p in parts])
    if count and parts:
        st = [p[1] for p in parts]
        stats = MatmulStats(
            np.concatenate([s.events for s in st]), np.concatenate([s.tiles_hit for s in st]),
            np.concatenate([s.ts_events for s in st]), max(s.max_abs_partial for s in st),
            max(s.max_abs_prefix for s in st), max(s.max_abs_total for s in st),
            np.sum([s.hist for s in st], axis=0), st[0].n_tiles)
        trace.record_matmul(label, acc, stats,
                            shape=(a3.shape[0] * a3.shape[1], a3.shape[2], b3.shape[2]))
        if getattr(trace, "event_room", 0):
            trace.record_matmul_events(label, acc, stats, a3, b3)
    return out.reshape(*lead, *out.shape[-2:])
