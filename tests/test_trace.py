"""Trace: records become a DataFrame and append to HDF5 groups that read back unchanged."""
import numpy as np
import pytest

from intsim import Accumulator, SRStream, Trace, int_matmul, quantize
from intsim.core.trace import read_hdf5


def fill(tr: Trace, step: int) -> None:
    tr.step = step
    r = np.random.default_rng(step)
    a = r.integers(0, 16, (8, 70)).astype(np.uint8)
    b = r.integers(-7, 8, (70, 5)).astype(np.int8)
    int_matmul(a, b, Accumulator(8, 32, "saturate"), trace=tr, label="fc1/fwd")
    int_matmul(a, b, Accumulator(8, 32, "clamp_tile"), trace=tr, label="fc1/grad_in")
    quantize(r.standard_normal(100).astype(np.float32), 4, rounding="stochastic",
             rng=SRStream(step), trace=tr, label="fc1/grad_in/g")


def test_frame_summary_and_hdf5_append(tmp_path):
    tr = Trace()
    fill(tr, 0)
    frame = tr.to_frame()
    assert list(frame["op"]) == ["matmul", "matmul", "quantize"]
    assert frame.loc[0, "hist"].sum() == 8 * 5 * 3          # tiles of the first call
    path = tmp_path / "trace.h5"
    tr.to_hdf5(path, "run")
    first = [dict(r) for r in tr.records]
    tr.clear()
    assert len(tr) == 0
    fill(tr, 1)
    tr.to_hdf5(path, "run")                                  # appends
    back = read_hdf5(path, "run", "matmul")
    assert list(back["step"]) == [0, 0, 1, 1]
    assert list(back["label"]) == ["fc1/fwd", "fc1/grad_in"] * 2
    assert back.loc[0, "events"] == first[0]["events"]
    assert back.loc[0, "max_abs_prefix"] == first[0]["max_abs_prefix"]
    assert np.array_equal(back.loc[0, "hist"], frame.loc[0, "hist"])
    q = read_hdf5(path, "run", "quantize")
    assert list(q["rounding"]) == ["stochastic"] * 2 and list(q["elements"]) == [100, 100]
    s = tr.summary()
    assert set(s["label"]) == {"fc1/fwd", "fc1/grad_in"} and (s["calls"] == 1).all()


def test_read_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        read_hdf5(tmp_path / "nowhere.h5")


def test_code_statistics_kernel_equals_its_reference():
    from intsim.kernels.stats import code_statistics, code_statistics_reference
    rng = np.random.default_rng(5)
    for n in (0, 1, 7, 1000):
        v = (rng.standard_normal(n) * 6).astype(np.float32)
        codes = np.clip(np.rint(v), -7, 7).astype(np.int8)
        got = code_statistics(codes, v, -7, 7)
        want = code_statistics_reference(codes, v, -7, 7)
        assert tuple(got[:3]) == tuple(want[:3])
        assert float(got[3]) == float(want[3]) and float(got[4]) == float(want[4])
