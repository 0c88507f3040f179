"""Statistics kernels of the trace (NUMERICS.md §2.2): one pass over a quantizer's codes."""
import numba
import numpy as np


@numba.njit(cache=True)
def code_statistics(codes, v, qmin, qmax):
    """(#codes at qmin or qmax, #zero codes, #|v| > qmax, Σ(code − v), Σ|code − v|), one pass;
    the sums in float64 in index order."""
    at_bounds = zeros = clipped = 0
    err = abs_err = 0.0
    for i in range(codes.size):
        c = codes[i]
        at_bounds += (c == qmin) | (c == qmax)
        zeros += c == 0
        clipped += abs(v[i]) > qmax
        d = np.float64(c) - np.float64(v[i])
        err += d
        abs_err += abs(d)
    return at_bounds, zeros, clipped, err, abs_err


def code_statistics_reference(codes, v, qmin, qmax):
    """Oracle of code_statistics: the same counts and float64 sums with Python loops."""
    at_bounds = zeros = clipped = 0
    err = abs_err = 0.0
    for c, x in zip(codes.tolist(), np.asarray(v, np.float64).tolist()):
        at_bounds += c in (qmin, qmax)
        zeros += c == 0
        clipped += abs(x) > qmax
        err += c - x
        abs_err += abs(c - x)
    return at_bounds, zeros, clipped, err, abs_err
