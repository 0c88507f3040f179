"""Counter-based random bits for stochastic rounding (SplitMix64 mixing).

All arithmetic is on unsigned 64-bit integers, modulo 2^64.

    mix64(z):  z ^= z >> 30;  z *= 0xBF58476D1CE4E5B9
               z ^= z >> 27;  z *= 0x94D049BB133111EB
               z ^= z >> 31
    element_bits(draw_key, i) = mix64(draw_key + (i + 1) * GAMMA),  GAMMA = 0x9E3779B97F4A7C15
    random r-bit integer for element i = element_bits(draw_key, i) >> (64 - r)

`mix64` is the SplitMix64 output function; the counter form makes element i's bits a pure
function of (draw_key, i), independent of thread count, chunking and call order.
"""
import numba
import numpy as np

GAMMA = np.uint64(0x9E3779B97F4A7C15)
MUL1 = np.uint64(0xBF58476D1CE4E5B9)
MUL2 = np.uint64(0x94D049BB133111EB)
MASK64 = (1 << 64) - 1


@numba.njit(cache=True, inline="always")
def mix64(z):
    z = numba.uint64(z)
    z = (z ^ (z >> numba.uint64(30))) * MUL1
    z = (z ^ (z >> numba.uint64(27))) * MUL2
    return z ^ (z >> numba.uint64(31))


@numba.njit(cache=True, inline="always")
def element_bits(draw_key, i):
    """64 random bits of element i (i >= 0) of the draw keyed `draw_key`."""
    return mix64(numba.uint64(draw_key) + numba.uint64(i + 1) * GAMMA)


# --- slow reference (plain Python ints), the oracle for the kernels above -----------------

def mix64_reference(z: int) -> int:
    z &= MASK64
    z = ((z ^ (z >> 30)) * int(MUL1)) & MASK64
    z = ((z ^ (z >> 27)) * int(MUL2)) & MASK64
    return z ^ (z >> 31)


def element_bits_reference(draw_key: int, i: int) -> int:
    return mix64_reference((draw_key + (i + 1) * int(GAMMA)) & MASK64)
