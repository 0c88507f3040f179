"""The bench's timing method (experiments.bench_timing) and its record/table plumbing.

paired() must interleave candidate and baseline (alternating which goes first), report the
median of per-repeat ratios with its spread, and measure thread CPU time only when one thread
does the work. No real benchmark runs here (fast)."""
import numpy as np
import pytest

from intsim.core.accumulator import kernel_path
from intsim.experiments import bench, bench_timing as T
from intsim.models.networks import resnet32


def _busy(n):
    def f():
        s = 0
        for i in range(n):
            s += i
        return s
    return f


def test_paired_interleaves_and_alternates():
    calls = []
    t = T.paired(lambda: calls.append("c"), lambda: calls.append("b"), 4)
    assert calls == ["c", "b", "c", "b", "b", "c", "c", "b", "b", "c"]  # warm-ups, then pairs
    assert t["repeats"] == 4 and t["clock"] == "thread_cpu"
    assert t["ratio_p25"] <= t["ratio"] <= t["ratio_p75"]


def test_paired_ratio_of_twice_the_work():
    t = T.paired(_busy(40000), _busy(20000), 7, "thread_cpu")
    assert 1.4 < t["ratio"] < 2.8, t
    assert t["ours_s"] > t["baseline_s"] > 0


def test_paired_refuses_no_repeats():
    with pytest.raises(ValueError, match="repeats"):
        T.paired(lambda: 0, lambda: 0, 0)


def test_one_thread_uses_thread_cpu_time_only_when_blas_is_limited():
    with T.threads(1) as (nb, bl, clock):
        assert nb == 1
        assert clock == ("thread_cpu" if bl == 1 else "wall")


def test_two_threads_against_one_uses_the_wall_clock():
    t = T.paired_threads(_busy(2000), 3)
    assert t["clock"] == "wall" and t["ratio"] > 0


def test_records_name_the_kernel_path_and_the_table_shows_the_spread():
    assert isinstance(kernel_path(), str) and kernel_path()
    r = bench._record("x/case", {"ours_s": 2e-3, "baseline_s": 1e-3, "ratio": 2.0,
                                 "ratio_p25": 1.9, "ratio_p75": 2.1, "clock": "thread_cpu"})
    assert r["kernel_path"] == kernel_path() and "load_1min" in r
    table = bench.format_table([r])
    assert f"kernel path: {kernel_path()}" in table and "1.90–2.10" in table


def test_conv_gemm_shapes_of_resnet32():
    net = resnet32(3, seed=0)
    net.forward(np.zeros((2, 3, 32, 32), np.float32))
    shapes = bench.conv_gemms(net)
    assert len(shapes) == 31
    assert shapes[0] == (16, 27, 2 * 32 * 32) and shapes[-1] == (64, 576, 2 * 8 * 8)
