"""Numba kernels for the fast Walsh–Hadamard transform, and a slow oracle next to them.

Definition (NUMERICS.md, "Hadamard transform"): natural-order (Sylvester) unnormalized
Hadamard matrix H_1 = [1], H_2k = [[H_k, H_k], [H_k, -H_k]], so H_p[i, j] = (-1)^popcount(i & j).
A block transform with block p applies H_p to every run of p consecutive elements.

Operation order (fixes float results bit for bit): the butterfly network with stages
h = 1, 2, 4, ..., p/2; stage h maps every pair (y[j], y[j+h]) with j mod 2h < h to
(y[j] + y[j+h], y[j] - y[j+h]), each result rounded to the working dtype. The kernels evaluate
exactly this network: consecutive stages are fused in registers (radix-8 for h = 1, 2, 4 and
for h = 8, 16, 32, ...; radix-4 / radix-2 for the last one or two stages), which performs the
same roundings on the same operands. There is no multiplication (so no FMA contraction) and
no fastmath, so results do not depend on fusion, vectorisation, task split or thread count.

Integer arithmetic: Numba widens every integer operand below 64 bits to int64 (uint64 for
unsigned input) in registers, and each stage result is stored into the output array, whose
dtype the caller chose to hold b + log2(p) bits. Every intermediate value of the network is a
partial transform of length <= p, so it fits too; + and - are exact modulo 2^64 and the stored
value fits, so every store is exact.

Memory layout used by all kernels: flat C-contiguous 1-D arrays.
  * flat kernels (transform axis last, no padding): x and out have the same length, a
    multiple of p, and every run of p elements is one block (rows play no role).
  * pad kernels: x is (rows, n), out is (rows, m), one block p = m per row, zero-padded.
  * middle-axis kernels: x is (pre, n, post), out is (pre, m, post); the transform runs
    along the middle axis, vectorised along `post` (m > n pads with zeros).
Tasks (runs of whole blocks / rows / (pre index, column chunk)) are independent; `*_par`
kernels run them under numba.prange, `*_ser` kernels in a plain loop, both through the same
per-task function, so they produce identical bits.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

# Elements per task of the parallel flat kernel (whole blocks; at least one block).
_TASK_ELEMS = 8192
# Column chunk width (elements) of one task in the middle-axis kernel.
_COL_CHUNK = 256

# Helpers marked inline="always" are inlined at Numba-IR level into their callers (so the
# array views they slice cost no calls / reference counting). Indices of every inner loop
# start at 0 on a view, which lets LLVM drop Numba's negative-index wraparound and vectorise.


@njit(cache=True, inline="always")
def _first(s, z, p):
    """z = stages h = 1, 2, 4 (those < p) of s; len(s) == len(z), a multiple of min(p, 8).

    Reads s, casts to z's dtype by storing; s may be z itself (in place)."""
    L = z.shape[0]
    if p >= 8:
        for k in range(L // 8):
            i = 8 * k
            a0 = s[i]
            a1 = s[i + 1]
            a2 = s[i + 2]
            a3 = s[i + 3]
            a4 = s[i + 4]
            a5 = s[i + 5]
            a6 = s[i + 6]
            a7 = s[i + 7]
            # stage h = 1
            b0 = a0 + a1
            b1 = a0 - a1
            b2 = a2 + a3
            b3 = a2 - a3
            b4 = a4 + a5
            b5 = a4 - a5
            b6 = a6 + a7
            b7 = a6 - a7
            # stage h = 2
            c0 = b0 + b2
            c2 = b0 - b2
            c1 = b1 + b3
            c3 = b1 - b3
            c4 = b4 + b6
            c6 = b4 - b6
            c5 = b5 + b7
            c7 = b5 - b7
            # stage h = 4
            z[i] = c0 + c4
            z[i + 4] = c0 - c4
            z[i + 1] = c1 + c5
            z[i + 5] = c1 - c5
            z[i + 2] = c2 + c6
            z[i + 6] = c2 - c6
            z[i + 3] = c3 + c7
            z[i + 7] = c3 - c7
    elif p == 4:
        for k in range(L // 4):
            i = 4 * k
            a0 = s[i]
            a1 = s[i + 1]
            a2 = s[i + 2]
            a3 = s[i + 3]
            b0 = a0 + a1  # stage h = 1
            b1 = a0 - a1
            b2 = a2 + a3
            b3 = a2 - a3
            z[i] = b0 + b2  # stage h = 2
            z[i + 2] = b0 - b2
            z[i + 1] = b1 + b3
            z[i + 3] = b1 - b3
    elif p == 2:
        for k in range(L // 2):
            i = 2 * k
            a0 = s[i]
            a1 = s[i + 1]
            z[i] = a0 + a1
            z[i + 1] = a0 - a1
    else:
        for i in range(L):
            z[i] = s[i]


@njit(cache=True, inline="always")
def _h8(z):
    """Stages h = 8, 16, 32 in place (blocks p >= 64); len(z) is a multiple of 64.

    h = 8 is a literal: LLVM unrolls the 8-long inner loop and vectorises across it
    (the generic _pass8 with a runtime h = 8 is ~3x slower)."""
    L = z.shape[0]
    for k in range(L // 64):
        for j0 in range(8):
            j = 64 * k + j0
            a0 = z[j]
            a1 = z[j + 8]
            a2 = z[j + 16]
            a3 = z[j + 24]
            a4 = z[j + 32]
            a5 = z[j + 40]
            a6 = z[j + 48]
            a7 = z[j + 56]
            b0 = a0 + a1  # stage 8
            b1 = a0 - a1
            b2 = a2 + a3
            b3 = a2 - a3
            b4 = a4 + a5
            b5 = a4 - a5
            b6 = a6 + a7
            b7 = a6 - a7
            c0 = b0 + b2  # stage 16
            c2 = b0 - b2
            c1 = b1 + b3
            c3 = b1 - b3
            c4 = b4 + b6
            c6 = b4 - b6
            c5 = b5 + b7
            c7 = b5 - b7
            z[j] = c0 + c4  # stage 32
            z[j + 32] = c0 - c4
            z[j + 8] = c1 + c5
            z[j + 40] = c1 - c5
            z[j + 16] = c2 + c6
            z[j + 48] = c2 - c6
            z[j + 24] = c3 + c7
            z[j + 56] = c3 - c7


@njit(cache=True, inline="always")
def _pass8(z, h):
    """Stages h, 2h, 4h fused, in place on z (len a multiple of 8h)."""
    L = z.shape[0]
    for i in range(0, L, 8 * h):
        u0 = z[i:i + h]
        u1 = z[i + h:i + 2 * h]
        u2 = z[i + 2 * h:i + 3 * h]
        u3 = z[i + 3 * h:i + 4 * h]
        u4 = z[i + 4 * h:i + 5 * h]
        u5 = z[i + 5 * h:i + 6 * h]
        u6 = z[i + 6 * h:i + 7 * h]
        u7 = z[i + 7 * h:i + 8 * h]
        for j in range(h):
            a0 = u0[j]
            a1 = u1[j]
            a2 = u2[j]
            a3 = u3[j]
            a4 = u4[j]
            a5 = u5[j]
            a6 = u6[j]
            a7 = u7[j]
            b0 = a0 + a1  # stage h
            b1 = a0 - a1
            b2 = a2 + a3
            b3 = a2 - a3
            b4 = a4 + a5
            b5 = a4 - a5
            b6 = a6 + a7
            b7 = a6 - a7
            c0 = b0 + b2  # stage 2h
            c2 = b0 - b2
            c1 = b1 + b3
            c3 = b1 - b3
            c4 = b4 + b6
            c6 = b4 - b6
            c5 = b5 + b7
            c7 = b5 - b7
            u0[j] = c0 + c4  # stage 4h
            u4[j] = c0 - c4
            u1[j] = c1 + c5
            u5[j] = c1 - c5
            u2[j] = c2 + c6
            u6[j] = c2 - c6
            u3[j] = c3 + c7
            u7[j] = c3 - c7


@njit(cache=True, inline="always")
def _pass4(z, h):
    """Stages h, 2h fused, in place on z (len a multiple of 4h)."""
    L = z.shape[0]
    for i in range(0, L, 4 * h):
        u0 = z[i:i + h]
        u1 = z[i + h:i + 2 * h]
        u2 = z[i + 2 * h:i + 3 * h]
        u3 = z[i + 3 * h:i + 4 * h]
        for j in range(h):
            a0 = u0[j]
            a1 = u1[j]
            a2 = u2[j]
            a3 = u3[j]
            b0 = a0 + a1  # stage h
            b1 = a0 - a1
            b2 = a2 + a3
            b3 = a2 - a3
            u0[j] = b0 + b2  # stage 2h
            u2[j] = b0 - b2
            u1[j] = b1 + b3
            u3[j] = b1 - b3


@njit(cache=True, inline="always")
def _pass2(z, h):
    """Stage h in place on z (len a multiple of 2h)."""
    L = z.shape[0]
    for i in range(0, L, 2 * h):
        u0 = z[i:i + h]
        u1 = z[i + h:i + 2 * h]
        for j in range(h):
            a0 = u0[j]
            a1 = u1[j]
            u0[j] = a0 + a1
            u1[j] = a0 - a1


@njit(cache=True, inline="always")
def _rest(z, p):
    """Stages h = 8, 16, ..., p/2 in place on z (len a multiple of p; blocks contiguous)."""
    if p == 16:
        _pass2(z, 8)
    elif p == 32:
        _pass4(z, 8)
    elif p >= 64:
        _h8(z)
        h = 64
        while 8 * h <= p:
            _pass8(z, h)
            h *= 8
        if 4 * h <= p:
            _pass4(z, h)
        elif 2 * h <= p:
            _pass2(z, h)


@njit(cache=True)
def _blocks(s, z, p):
    """z = block transform of s (same length, a multiple of p); one task, never inlined.

    Blocks up to 64 are done in flat passes over the whole range; larger blocks one at a
    time (the block stays in L1/L2 across its passes)."""
    if p <= 64:
        _first(s, z, p)
        _rest(z, p)
    else:
        for b in range(0, z.shape[0], p):
            zb = z[b:b + p]
            _first(s[b:b + p], zb, p)
            _rest(zb, p)


@njit(cache=True)
def _padded_row(s, z):
    """z = transform of s zero-padded to len(z) (one block, p = len(z))."""
    p = z.shape[0]
    n = s.shape[0]
    for j in range(n):
        z[j] = s[j]
    for j in range(n, p):
        z[j] = 0
    _first(z, z, p)
    _rest(z, p)


@njit(cache=True)
def fwht_flat_ser(x, out, p):
    """Serial block FWHT of the flat array x into out (same length, a multiple of p)."""
    _blocks(x, out, p)


@njit(cache=True, parallel=True)
def fwht_flat_par(x, out, p):
    """fwht_flat_ser with tasks of whole blocks under prange; identical bits."""
    N = out.shape[0]
    tb = max(p, (_TASK_ELEMS // p) * p)
    ntask = (N + tb - 1) // tb
    for t in prange(ntask):
        a = t * tb
        e = min(a + tb, N)
        _blocks(x[a:e], out[a:e], p)


@njit(cache=True)
def fwht_pad_ser(x, out, n, m):
    """Serial: rows of x (rows, n) zero-padded to m, one block p = m, into out (rows, m)."""
    for r in range(out.shape[0] // m):
        _padded_row(x[r * n:(r + 1) * n], out[r * m:(r + 1) * m])


@njit(cache=True, parallel=True)
def fwht_pad_par(x, out, n, m):
    """fwht_pad_ser with rows under prange; identical bits."""
    for r in prange(out.shape[0] // m):
        _padded_row(x[r * n:(r + 1) * n], out[r * m:(r + 1) * m])


# --------------------------------------------------------------------------------------
# Middle axis: (pre, n, post) -> (pre, m, post); vectorised along post.
# --------------------------------------------------------------------------------------
@njit(cache=True)
def _mid_task(x, out, n, m, post, p, t):
    nchunk = (post + _COL_CHUNK - 1) // _COL_CHUNK
    q = t // nchunk
    c0 = (t - q * nchunk) * _COL_CHUNK
    c1 = min(c0 + _COL_CHUNK, post)
    xs = x[q * n * post:(q + 1) * n * post]
    ys = out[q * m * post:(q + 1) * m * post]
    # copy (with cast) and zero-pad rows n..m-1
    for row in range(m):
        o = ys[row * post + c0:row * post + c1]
        if row < n:
            xi = xs[row * post + c0:row * post + c1]
            for c in range(c1 - c0):
                o[c] = xi[c]
        else:
            for c in range(c1 - c0):
                o[c] = 0
    # stages h = 1, 2, 4, ... (fused in pairs), every block of p rows
    for b0 in range(0, m, p):
        h = 1
        while 4 * h <= p:
            for i in range(b0, b0 + p, 4 * h):
                for j in range(i, i + h):
                    u0 = ys[j * post + c0:j * post + c1]
                    u1 = ys[(j + h) * post + c0:(j + h) * post + c1]
                    u2 = ys[(j + 2 * h) * post + c0:(j + 2 * h) * post + c1]
                    u3 = ys[(j + 3 * h) * post + c0:(j + 3 * h) * post + c1]
                    for c in range(c1 - c0):
                        a0 = u0[c]
                        a1 = u1[c]
                        a2 = u2[c]
                        a3 = u3[c]
                        e0 = a0 + a1  # stage h
                        e1 = a0 - a1
                        e2 = a2 + a3
                        e3 = a2 - a3
                        u0[c] = e0 + e2  # stage 2h
                        u2[c] = e0 - e2
                        u1[c] = e1 + e3
                        u3[c] = e1 - e3
            h *= 4
        if h < p:
            for i in range(b0, b0 + p, 2 * h):
                for j in range(i, i + h):
                    u0 = ys[j * post + c0:j * post + c1]
                    u1 = ys[(j + h) * post + c0:(j + h) * post + c1]
                    for c in range(c1 - c0):
                        a0 = u0[c]
                        a1 = u1[c]
                        u0[c] = a0 + a1
                        u1[c] = a0 - a1


@njit(cache=True)
def fwht_mid_ser(x, out, n, m, post, p):
    """Serial block FWHT of flat (pre, n, post) -> (pre, m, post) along the middle axis."""
    pre = out.shape[0] // (m * post)
    ntask = pre * ((post + _COL_CHUNK - 1) // _COL_CHUNK)
    for t in range(ntask):
        _mid_task(x, out, n, m, post, p, t)


@njit(cache=True, parallel=True)
def fwht_mid_par(x, out, n, m, post, p):
    """fwht_mid_ser with (pre index, column chunk) tasks under prange; identical bits."""
    pre = out.shape[0] // (m * post)
    ntask = pre * ((post + _COL_CHUNK - 1) // _COL_CHUNK)
    for t in prange(ntask):
        _mid_task(x, out, n, m, post, p, t)


# --------------------------------------------------------------------------------------
# Oracle
# --------------------------------------------------------------------------------------
def fwht_reference(x, block: int) -> np.ndarray:
    """Slow, obviously-correct block FWHT along the last axis (the test oracle).

    Integer input (any integer dtype, or an object array of Python ints): the definition
    y[b*p + i] = sum_j (-1)^popcount(i & j) * x[b*p + j], as a product with the explicit
    sign matrix, all in Python ints; returns an object array of Python ints (exact).
    Float input (float32/float64): the documented butterfly network (stages h = 1, 2, 4, ...,
    (a, b) -> (a + b, a - b)) evaluated one scalar operation at a time in the input dtype;
    returns an array of the input dtype.
    The last axis length must be a multiple of `block` (a power of two); no padding here.
    """
    x = np.asarray(x)
    p = int(block)
    if p < 1 or p & (p - 1):
        raise ValueError(f"fwht_reference: `block` must be a power of two >= 1; got {block!r}")
    if x.ndim == 0 or x.shape[-1] % p:
        raise ValueError(f"fwht_reference: last axis of `x` must be a multiple of block={p}")
    n = x.shape[-1]
    rows = x.reshape(-1, n)
    if x.dtype.kind == "f":
        scalar = x.dtype.type
        res = np.empty(rows.shape, x.dtype)
        for r in range(rows.shape[0]):
            y = [scalar(v) for v in rows[r]]
            for b0 in range(0, n, p):
                h = 1
                while h < p:
                    for j in range(b0, b0 + p):
                        if (j - b0) % (2 * h) < h:
                            a, c = y[j], y[j + h]
                            y[j], y[j + h] = scalar(a + c), scalar(a - c)
                    h *= 2
            res[r] = y
        return res.reshape(x.shape)
    if x.dtype.kind not in "iuO":
        raise ValueError(f"fwht_reference: `x` must be integer or float32/float64; got {x.dtype}")
    # y = blocks @ S^T with S[i, j] = (-1)^popcount(i & j), all entries Python ints
    sign = np.array([[-1 if bin(i & j).count("1") % 2 else 1 for j in range(p)]
                     for i in range(p)], dtype=object)
    blocks = np.array([[int(e) for e in blk] for blk in x.reshape(-1, p).tolist()],
                      dtype=object).reshape(-1, p)
    return (blocks @ sign.T).reshape(x.shape)
