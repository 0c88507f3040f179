"""Locate the overflow events of a tiled integer matmul, one row per event (NUMERICS.md §4).

The fast kernels (kernels.accumulate) only count events per output. This kernel replays the
outputs it is given — in practice only those the fast kernel reported an event for — MAC by
MAC and lists every event, in the order of the candidates, then k ascending:

    kind         when                                              k            value   register
    MAC          saturate / wrap: s = reg + a[m,k]·b[k,n] outside   the MAC's k  s       R(s)
                 the register range
    TILE_CLAMP   clamp_tile: the exact tile sum outside [lo, hi]     last k of    sum     C(sum)
                                                                     the tile
    TILE_SUM     the tile-sum register: total + part outside its     last k of    total   TS(…)
                 range (saturating, or wrapping in wrap mode)        the tile     + part

Each row: (kind, row m, column n, tile t, k, value before the limit, register after it), int64.
Mode and tile-sum codes are those of kernels.accumulate. The kernel stops once `out` is full
and returns the number of rows written. `locate_events_reference` is the plain-Python oracle:
every output, brute force, Python integers.
"""
import numba
import numpy as np

from intsim.kernels.accumulate import CLAMP_TILE, SATURATE, TS_NONE, TS_SATURATE, TS_WRAP, WRAP

MAC, TILE_CLAMP, TILE_SUM = 0, 1, 2
COLUMNS = ("kind", "m", "n", "tile", "k", "value", "register")


@numba.njit(cache=True, inline="always")
def _wrap(s, bits):
    half = np.int64(1) << (bits - 1)
    return ((s + half) & ((half << 1) - 1)) - half


@numba.njit(cache=True, inline="always")
def _put(out, w, kind, m, n, t, k, value, register):
    """Write event row w; return the next row."""
    out[w, 0], out[w, 1], out[w, 2], out[w, 3] = kind, m, n, t
    out[w, 4], out[w, 5], out[w, 6] = k, value, register
    return w + 1


@numba.njit(cache=True)
def locate_events(a, bt, rows, cols, tile, mode, lo, hi, bits, ts_mode, ts_lo, ts_hi, ts_bits,
                  out):
    """Events of outputs (rows[i], cols[i]) of a (M, K) · b (K, N) into out (limit, 7); the
    right operand is given transposed, bt = bᵀ (N, K), so both operands run contiguously."""
    limit = out.shape[0]
    K = a.shape[1]
    w = 0
    for i in range(rows.size):
        m, n = rows[i], cols[i]
        total = np.int64(0)
        t = 0
        for k0 in range(0, K, tile):
            k1 = min(K, k0 + tile)
            reg = np.int64(0)
            for k in range(k0, k1):
                s = reg + np.int64(a[m, k]) * np.int64(bt[n, k])
                if mode == SATURATE:
                    c = min(max(s, lo), hi)
                elif mode == WRAP:
                    c = _wrap(s, bits)
                else:
                    c = s
                if c != s:
                    if w == limit:
                        return w
                    w = _put(out, w, MAC, m, n, t, k, s, c)
                reg = c
            if mode == CLAMP_TILE:
                c = min(max(reg, lo), hi)
                if c != reg:
                    if w == limit:
                        return w
                    w = _put(out, w, TILE_CLAMP, m, n, t, k1 - 1, reg, c)
                reg = c
            s = total + reg
            if ts_mode == TS_SATURATE:
                c = min(max(s, ts_lo), ts_hi)
            elif ts_mode == TS_WRAP:
                c = _wrap(s, ts_bits)
            else:
                c = s
            if c != s:
                if w == limit:
                    return w
                w = _put(out, w, TILE_SUM, m, n, t, k1 - 1, s, c)
            total = c
            t += 1
    return w


def locate_events_reference(a, b, mode, bits, tile, symmetric=True, tile_sum_bits=None):
    """Oracle: every event of a (M, K) · b (K, N), outputs in row-major order, as a list of
    (kind, m, n, tile, k, value, register) tuples of Python ints. mode is a name."""
    half = 1 << (bits - 1)
    lo, hi = (-(half - 1) if symmetric else -half), half - 1

    def wrap(s, width):
        h = 1 << (width - 1)
        return ((s + h) % (2 * h)) - h

    (M, K), N = a.shape, b.shape[1]
    a, b = a.tolist(), b.tolist()
    tile = tile or max(K, 1)
    found = []
    for m in range(M):
        for n in range(N):
            total = 0
            for t, k0 in enumerate(range(0, K, tile)):
                k1 = min(K, k0 + tile)
                reg = 0
                for k in range(k0, k1):
                    s = reg + int(a[m][k]) * int(b[k][n])
                    c = (min(max(s, lo), hi) if mode == "saturate" else
                         wrap(s, bits) if mode == "wrap" else s)
                    if c != s:
                        found.append((MAC, m, n, t, k, s, c))
                    reg = c
                if mode == "clamp_tile":
                    c = min(max(reg, lo), hi)
                    if c != reg:
                        found.append((TILE_CLAMP, m, n, t, k1 - 1, reg, c))
                    reg = c
                s = total + reg
                if tile_sum_bits is None:
                    c = s
                elif mode == "wrap":
                    c = wrap(s, tile_sum_bits)
                else:
                    th = 1 << (tile_sum_bits - 1)
                    c = min(max(s, -(th - 1) if symmetric else -th), th - 1)
                if c != s:
                    found.append((TILE_SUM, m, n, t, k1 - 1, s, c))
                total = c
    return found


__all__ = ["MAC", "TILE_CLAMP", "TILE_SUM", "COLUMNS", "TS_NONE", "locate_events",
           "locate_events_reference"]
