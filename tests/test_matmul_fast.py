"""The fast integer matmul kernels (intsim/kernels/matmul_int8.py, matmul_tables.py,
matmul_x86.py) give exactly the bits of NUMERICS.md §4, in every path they take (product tables
on int8/int16 lanes in both orientations, AVX2 pairs, one or two threads), and decline what
they cannot compute exactly.

The bulk comparison uses `oracle`, a NumPy transcription of §4 vectorised over the outputs
(each output is its own k-ascending register sequence); `test_oracle_is_the_reference` checks
it against the plain-Python `int_matmul_reference`, which the fast paths are also compared
with directly on small cases.
"""
import numpy as np
import pytest

from helpers import run_python
from intsim import Accumulator, int_matmul
from intsim.core.accumulator import fast_matmul
from intsim.kernels import matmul_int8 as F
from intsim.kernels import matmul_x86 as X
from intsim.kernels.accumulate import int_matmul_reference

MODES = ["saturate", "clamp_tile", "wrap", "exact"]


def oracle(a, b, acc):
    """NUMERICS.md §4 with int64 NumPy arrays: one step of every register per k."""
    a, b = a.astype(np.int64), b.astype(np.int64)
    (M, K), N = a.shape, b.shape[1]
    lo, hi = acc.range
    tile = max(1, K if acc.tile is None else acc.tile)
    half = 1 << (acc.bits - 1)
    total = np.zeros((M, N), np.int64)
    for k0 in range(0, K, tile):
        reg = np.zeros((M, N), np.int64)
        for k in range(k0, min(K, k0 + tile)):
            s = reg + a[:, k, None] * b[None, k, :]
            if acc.mode == "saturate":
                s = np.clip(s, lo, hi)
            elif acc.mode == "wrap":
                s = (s + half) % (2 * half) - half
            reg = s
        if acc.mode == "clamp_tile":
            reg = np.clip(reg, lo, hi)
        s = total + reg
        if acc.tile_sum_bits is not None:
            th = 1 << (acc.tile_sum_bits - 1)
            if acc.mode == "wrap":
                s = (s + th) % (2 * th) - th
            else:
                s = np.clip(s, -(th - 1) if acc.symmetric else -th, th - 1)
        total = s
    return total


# operand kinds: (a range, b range, a dtype); 4-bit codes first, then the edges of the lanes
KINDS = [
    ((-7, 7), (-7, 7), np.int8),            # signed ±7
    ((-8, 7), (-8, 7), np.int8),            # full range
    ((0, 15), (-7, 7), np.uint8),           # unsigned activations × signed weights
    ((0, 15), (-8, 7), np.uint8),
    ((0, 15), (-2, 7), np.uint8),           # mostly positive products: saturates high
    ((-7, 7), (-7, 1), np.int8),
    ((0, 1), (-128, 127), np.int16),        # products on the int8 limits
    ((-1, 1), (-127, 127), np.int8),
    ((-8, 7), (-15, 15), np.int32),         # |a·b| up to 120
    ((1, 15), (-8, 8), np.int64),           # no zero code
    ((-3, 12), (-300, 300), np.int16),      # int16 products, chunked exact sums
    ((-8, 7), (0, 15), np.int8),            # unsigned b
]


def draw_operands(rng, M, K, N, kind):
    (alo, ahi), (blo, bhi), adt = KINDS[kind]
    a = rng.integers(alo, ahi + 1, (M, K)).astype(adt)
    bdt = np.int8 if -128 <= blo and bhi <= 127 else np.int16
    b = rng.integers(blo, bhi + 1, (K, N)).astype(bdt)
    layout = rng.integers(0, 5)
    if layout == 1:                                   # strided a, column-major b
        a = np.repeat(a, 2, axis=1)[:, ::2]
        b = np.asfortranarray(b)
    elif layout == 2:                                 # negative strides
        a, b = a[:, ::-1], b[::-1]
    return a, b


def draw_acc(rng, mode):
    bits = int(rng.choice([8, 8, 8, 8, 2, 3, 4, 6, 7, 9, 12, 16, 17] if mode != "saturate" else
                          [8, 8, 8, 8, 8, 2, 3, 4, 6, 7, 8, 12]))
    tile = [32, 32, 8, 1, 5, 16, 31, 33, None, 200][rng.integers(0, 10)]
    tsb = [None, None, None, 32, 9, 12, 16][rng.integers(0, 7)]
    return Accumulator(bits, tile, mode, bool(rng.integers(0, 2)), tsb)


def draw_shape(rng):
    M = int(rng.choice([1, 2, 3, 4, 5, 7, 9, 16, 31, 33, 64, 90]))
    K = int(rng.choice([1, 2, 7, 8, 9, 31, 32, 33, 45, 64, 77, 100, 129]))
    N = int(rng.choice([1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 200]))
    return M, K, N


@pytest.fixture
def path(monkeypatch):
    """path(pairs, orientation): force the AVX2 pair kernel on/off and the table orientation
    (None = the cost model, 'normal', 'transposed')."""
    def set_path(pairs, orientation):
        monkeypatch.setattr(F, "PAIRS", pairs and X.available())
        if orientation is None:
            monkeypatch.setattr(F, "_cost", COST)
        else:
            monkeypatch.setattr(F, "_cost", lambda rows, lanes, lb, transpose:
                                0 if transpose == (orientation == "transposed") else 1)
    return set_path


COST = F._cost


@pytest.mark.parametrize("mode", MODES)
def test_random_cases_match_oracle(mode, path):
    """≥ 10^5 seeded random outputs per mode over ~1000 calls: shapes across the vector widths,
    K below / not a multiple of the tile, M or N = 1, every operand kind and register width."""
    rng = np.random.default_rng(["saturate", "clamp_tile", "wrap", "exact"].index(mode) + 100)
    outputs = fast_calls = 0
    paths = [(True, None), (False, None), (False, "normal"), (False, "transposed"),
             (True, "transposed")]
    call = 0
    while outputs < 100_000 or call < 600:
        pairs, orientation = paths[call % len(paths)]
        path(pairs, orientation)
        M, K, N = draw_shape(rng)
        kind = call % len(KINDS)
        a, b = draw_operands(rng, M, K, N, kind)
        acc = draw_acc(rng, mode)
        want = oracle(a, b, acc)
        got = fast_matmul(a, b, acc)
        if got is not None:
            fast_calls += 1
            assert got.dtype == np.int64 and got.shape == (M, N)
            if not np.array_equal(got, want):
                bad = np.argwhere(got != want)[0]
                pytest.fail(f"{acc} {kind=} {(M, K, N)=} {pairs=} {orientation=}: out{tuple(bad)} "
                            f"= {got[tuple(bad)]}, expected {want[tuple(bad)]}")
            outputs += M * N
        else:                                        # declined: the generic kernel runs
            assert np.array_equal(int_matmul(a, b, acc), want)
        call += 1
    assert fast_calls > 0.5 * call, "the fast kernels declined too many cases"


def test_oracle_is_the_reference():
    rng = np.random.default_rng(7)
    for i in range(200):
        mode = MODES[i % 4]
        M, K, N = int(rng.integers(1, 6)), int(rng.integers(1, 70)), int(rng.integers(1, 6))
        a, b = draw_operands(rng, M, K, N, i % len(KINDS))
        acc = draw_acc(rng, mode)
        want = int_matmul_reference(a, b, acc.mode, acc.bits, acc.tile, acc.symmetric,
                                    acc.tile_sum_bits)[0]
        assert oracle(a, b, acc).tolist() == want


@pytest.mark.parametrize("mode", MODES)
def test_fast_paths_match_plain_python_reference(mode, path):
    rng = np.random.default_rng(11 + MODES.index(mode))
    for i in range(60):
        path(*[(True, None), (False, "normal"), (False, "transposed")][i % 3])
        M, K, N = int(rng.integers(1, 9)), int(rng.integers(1, 80)), int(rng.integers(1, 40))
        a, b = draw_operands(rng, M, K, N, i % 4)
        acc = Accumulator(8, [32, 8, None, 5][i % 4], mode, bool(i % 2), [None, 12][i % 2])
        got = fast_matmul(a, b, acc)
        assert got is not None
        want = int_matmul_reference(a, b, acc.mode, acc.bits, acc.tile, acc.symmetric,
                                    acc.tile_sum_bits)[0]
        assert got.tolist() == want


@pytest.mark.parametrize("acc", [Accumulator(8, 32, "saturate"), Accumulator(8, 32, "clamp_tile"),
                                 Accumulator(8, 32, "wrap"), Accumulator(8, None, "exact"),
                                 Accumulator(12, 32, "saturate", tile_sum_bits=16)])
def test_int_matmul_uses_fast_path_and_keeps_traced_counts(acc, monkeypatch):
    """Untraced calls take the fast kernels; traced calls keep the generic kernel's counts."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 16, (2, 37, 70)).astype(np.uint8)
    b = rng.integers(-7, 8, (70, 45)).astype(np.int8)
    taken = []
    real = fast_matmul
    monkeypatch.setattr("intsim.core.accumulator.fast_matmul",
                        lambda *args: taken.append(1) or real(*args))
    got = int_matmul(a, b, acc)
    assert taken
    assert np.array_equal(got, oracle(a.reshape(-1, 70), b, acc).reshape(2, 37, 45))
    declared = int_matmul(a, b, acc, a_range=(0, 15), b_range=(-7, 7))   # extremes not scanned
    assert len(taken) == 2 and np.array_equal(declared, got)

    class Capture:
        def record_matmul(self, label, acc, stats, shape):
            self.stats = stats
    cap = Capture()
    traced = int_matmul(a, b, acc, trace=cap)
    assert len(taken) == 2 and np.array_equal(traced, got)
    ref = int_matmul_reference(a.reshape(-1, 70), b, acc.mode, acc.bits, acc.tile,
                               acc.symmetric, acc.tile_sum_bits)
    assert cap.stats.events.tolist() == ref[1] and cap.stats.ts_events.tolist() == ref[3]


def test_declines_what_it_cannot_compute_exactly():
    a = np.full((4, 40), 15, np.uint8)
    b = np.full((40, 3), 15, np.uint8)
    assert fast_matmul(a, b, Accumulator(8, 32, "saturate")) is None    # 225 > 127
    a8 = np.full((4, 40), 7, np.int8)
    assert fast_matmul(a8, a8.T.copy(), Accumulator(9, 32, "saturate")) is None
    assert fast_matmul(a8, a8.T.copy(), Accumulator(17, 32, "wrap")) is None
    wide = np.arange(40, dtype=np.int8).reshape(1, 40) - 20               # 40 code values
    assert fast_matmul(np.repeat(wide, 4, 0), np.repeat(wide, 4, 0).T.copy(),
                       Accumulator(8, 32, "saturate")) is None
    empty = np.zeros((3, 0), np.int8)
    assert fast_matmul(empty, np.zeros((0, 2), np.int8), Accumulator()) is None
    for acc in (Accumulator(9, 32, "saturate"), Accumulator(17, 32, "wrap")):
        assert np.array_equal(int_matmul(a8, a8.T.copy(), acc), oracle(a8, a8.T, acc))


HASH_CODE = """
import hashlib, numpy as np, intsim
from intsim.core.accumulator import fast_matmul
from intsim.kernels import matmul_int8 as F, workers
workers.ADAPTIVE = False            # always the thread count of NUMBA_NUM_THREADS
r = np.random.default_rng(5)
h = hashlib.sha256()
cases = [(r.integers(0, 16, (128, 405)).astype(np.uint8), r.integers(-7, 8, (405, 405)).astype(np.int8)),
         (r.integers(-7, 8, (128, 561)).astype(np.int8), r.integers(-8, 8, (561, 561)).astype(np.int8)),
         (r.integers(-8, 8, (1024, 144)).astype(np.int8), r.integers(-7, 8, (144, 32)).astype(np.int8)),
         (r.integers(-7, 8, (40, 300)).astype(np.int8), r.integers(-7, 8, (300, 700)).astype(np.int8))]
used = 0
for mode in ['saturate', 'clamp_tile', 'wrap', 'exact']:
    for tsb in (None, 11):
        acc = intsim.Accumulator(8, 32, mode, tile_sum_bits=tsb)
        for a, b in cases:
            used += fast_matmul(a, b, acc) is not None
            h.update(intsim.int_matmul(a, b, acc).tobytes())
print(F.KERNELS, used, h.hexdigest(), workers.helped)
"""


def test_identical_for_one_and_two_threads_and_the_generic_kernel():
    """Calls above PARALLEL_MIN_MACS split their columns over the threads; the generic kernel
    (INTSIM_KERNELS=generic) gives the same bits."""
    one = run_python(HASH_CODE, 1).split()
    two = run_python(HASH_CODE, 2).split()
    generic = run_python("import os; os.environ['INTSIM_KERNELS'] = 'generic'\n" + HASH_CODE, 2).split()
    assert one[0] == two[0] == "auto" and int(one[1]) == 32
    assert generic[:2] == ["generic", "0"]
    assert one[2] == two[2] == generic[2]
    assert int(one[3]) == 0 and int(two[3]) > 0        # the 2-thread run did share the work


@pytest.mark.parametrize("pairs", [True, False])
def test_parallel_split_equals_serial(pairs, monkeypatch):
    """Helper threads claim column blocks as they come; every split gives the same bits."""
    import numba
    from intsim.kernels import workers
    monkeypatch.setattr(F, "PAIRS", pairs and X.available())
    monkeypatch.setattr(workers, "ADAPTIVE", False)
    rng = np.random.default_rng(8)
    a = rng.integers(-7, 8, (70, 200)).astype(np.int8)
    b = rng.integers(-7, 8, (200, 700)).astype(np.int8)
    helped = workers.helped
    for mode in MODES:
        acc = Accumulator(8, 32, mode)
        monkeypatch.setattr(F, "PARALLEL_MIN_MACS", 1 << 62)
        serial = fast_matmul(a, b, acc)
        assert np.array_equal(serial, oracle(a, b, acc))
        monkeypatch.setattr(F, "PARALLEL_MIN_MACS", 0)
        for _ in range(5):
            assert np.array_equal(fast_matmul(a, b, acc), serial)
    if numba.get_num_threads() > 1:
        assert workers.helped > helped, "no helper thread ever took part"


def test_bad_kernel_selection_names_the_variable():
    with pytest.raises(AssertionError, match="INTSIM_KERNELS"):
        run_python("import os; os.environ['INTSIM_KERNELS'] = 'fastest'\nimport intsim", 1)


def test_blocks_cover_the_columns_once():
    for n_vec in range(1, 40):
        for threads in (1, 2, 3):
            blocks = F._blocks(n_vec, threads)
            cols = [v for v0, nv in blocks for v in range(v0, v0 + nv)]
            assert cols == list(range(n_vec))
            assert all(nv in (1, 2, 4) for _, nv in blocks)



def test_busy_machine_verdict():
    """Helpers only while neither the runnable count nor the 1-minute load says the CPUs are taken."""
    from intsim.kernels.workers import busy_from_loadavg
    assert not busy_from_loadavg(b"0.31 0.40 0.52 1/300 99", 2, 2)
    assert not busy_from_loadavg(b"2.10 1.90 1.20 1/300 99", 2, 2)     # this process's own load
    assert busy_from_loadavg(b"0.31 0.40 0.52 3/300 99", 2, 2)         # another task runnable now
    assert busy_from_loadavg(b"8.90 9.50 9.50 1/300 99", 2, 2)         # sustained load
    assert not busy_from_loadavg(b"3.00 3.00 3.00 2/300 99", 2, 4)         # 4 CPUs: room for 2
