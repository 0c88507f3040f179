"""The per-event overflow log: the locating kernel against its brute-force oracle, the trace's
event tables (limit, batched and grouped calls, quantizer clamps), HDF5 append and read."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intsim import Accumulator, Trace, int_matmul, quantize
from intsim.core.events import check_event_limit
from intsim.core.trace import read_events
from intsim.kernels.accumulate import int_matmul_reference
from intsim.kernels.events import MAC, TILE_CLAMP, TILE_SUM, locate_events_reference
from intsim.testing import accumulators, matmul_operands

NAMES = {(MAC, "saturate"): "mac_saturate", (MAC, "wrap"): "mac_wrap",
         (TILE_CLAMP, "clamp_tile"): "tile_clamp", (TILE_SUM, "wrap"): "tile_sum_wrap"}


def _name(kind, mode):
    return NAMES.get((kind, mode), "tile_sum_saturate")


def _oracle_rows(a, b, acc, group=0):
    """The oracle's events as (event, group, m, n, tile, k, value, register) tuples."""
    return [(_name(kind, str(acc.mode)), group, m, n, t, k, v, r) for kind, m, n, t, k, v, r in
            locate_events_reference(a, b, str(acc.mode), acc.bits, acc.tile_for(a.shape[1]),
                                    acc.symmetric, acc.tile_sum_bits)]


def _logged(trace):
    df = trace.events_frame()
    return [tuple(r) for r in df[["event", "group", "m", "n", "tile", "k", "value",
                                  "register"]].itertuples(index=False, name=None)]


def _check(a, b, acc):
    tr = Trace(events=10 ** 9)
    int_matmul(a, b, acc, trace=tr, label="L/fwd")
    want = _oracle_rows(a, b, acc)
    assert _logged(tr) == want
    # every counted event is listed: the fast kernel's counts agree with the list
    _, events, _, ts = int_matmul_reference(a, b, str(acc.mode), acc.bits, acc.tile,
                                            acc.symmetric, acc.tile_sum_bits)
    assert len(want) == int(np.sum(events)) + int(np.sum(ts))
    assert tr.records[-1]["events"] + tr.records[-1]["tile_sum_events"] == len(want)


@settings(max_examples=80)
@given(ab=matmul_operands(a_bits=4, b_bits=4, max_k=70),
       acc=accumulators(bits=st.integers(5, 10), tile_sum_bits=[None, 9, 12]))
def test_logged_events_equal_the_brute_force_oracle(ab, acc):
    _check(*ab, acc)


@pytest.mark.parametrize("mode", ["saturate", "wrap", "clamp_tile", "exact"])
@pytest.mark.parametrize("K", [31, 32, 33, 65])
def test_edge_operands(mode, K):
    """All −7·7 products (every MAC past the limit), K = tile − 1 … 2·tile + 1."""
    a = np.full((5, K), -7, np.int8)
    a[1] = 7
    a[2, ::2] = 7                                     # alternating signs: no event
    b = np.full((K, 3), 7, np.int8)
    for tsb in (None, 9):
        _check(a, b, Accumulator(8, 32, mode, symmetric=mode != "wrap", tile_sum_bits=tsb))


def test_first_events_and_values():
    a = np.full((1, 40), 7, np.int8)
    b = np.full((40, 1), 7, np.int8)
    tr = Trace(events=100)
    int_matmul(a, b, Accumulator(8, 32, "saturate"), trace=tr, label="x/fwd")
    df = tr.events_frame()
    # 49, 98, 147 > 127: the third MAC of each tile is the first event; 29 + 3 = 32 events
    first = df.iloc[0]
    assert (first["k"], first["tile"], first["value"], first["register"]) == (2, 0, 147, 127)
    assert len(df) == 30 + 6 and set(df["tile"]) == {0, 1}
    assert df[df["tile"] == 1].iloc[0]["k"] == 34


def test_limit_batched_grouped_and_off():
    rng = np.random.default_rng(0)
    acc = Accumulator(6, 8, "saturate")
    a = rng.integers(-7, 8, (3, 4, 20)).astype(np.int8)   # 3 groups
    b = rng.integers(-7, 8, (3, 20, 5)).astype(np.int8)   # batched right operand
    tr = Trace(events=10 ** 6)
    int_matmul(a, b, acc, trace=tr, label="L/grad_w")
    want = [row for g in range(3) for row in _oracle_rows(a[g], b[g], acc, g)]
    assert _logged(tr) == want and len(want) > 20
    tr2 = Trace(events=7)
    int_matmul(a, b, acc, trace=tr2, label="L/grad_w")
    int_matmul(a, b, acc, trace=tr2, label="L/grad_w")
    assert _logged(tr2) == want[:7] and tr2.events_logged == 7
    tr2.clear()
    assert tr2.event_room == 0                        # the limit holds over the trace's life
    # a (G, R, K) · b (K, N): the group is the index over a's leading axis
    tr3 = Trace(events=10 ** 6)
    int_matmul(a, b[0], acc, trace=tr3, label="L/fwd")
    assert _logged(tr3) == [r for g in range(3) for r in _oracle_rows(a[g], b[0], acc, g)]
    off = Trace()
    int_matmul(a, b, acc, trace=off, label="L/grad_w")
    assert off.events_frame().empty and off.records[-1]["events"] > 0


def test_quantizer_clamps_and_hdf5(tmp_path):
    x = np.linspace(-2, 2, 41).astype(np.float32)
    tr = Trace(events=1000)
    tr.step = 3
    q = quantize(x, 4, clip=0.5, trace=tr, label="L/fwd/a")
    qe = tr.events_frame("quantize_events")
    v = x / q.scale
    assert list(qe["index"]) == list(np.flatnonzero(np.abs(v) > 7))
    assert (qe["code"].abs() == 7).all() and (qe["step"] == 3).all()
    assert len(qe) == round(tr.records[-1]["clipped_fraction"] * x.size)
    a = np.full((2, 40), 7, np.int8)
    int_matmul(a, a.T.copy(), Accumulator(8, 4, "wrap", tile_sum_bits=8), trace=tr,
               label="L/fwd")
    path = tmp_path / "t.h5"
    tr.to_hdf5(str(path))
    first = tr.events_frame()
    tr.clear()
    tr.step = 4
    int_matmul(a, a.T.copy(), Accumulator(8, 4, "wrap", tile_sum_bits=8), trace=tr,
               label="L/fwd")
    tr.to_hdf5(str(path))                                       # appends
    back = read_events(str(path))
    assert len(back) == 2 * len(first) and list(back.columns)[:3] == ["step", "label", "event"]
    assert set(back["event"]) == {"mac_wrap", "tile_sum_wrap"}
    assert back.iloc[:len(first)]["value"].tolist() == first["value"].tolist()
    assert read_events(str(path), table="quantize_events")["index"].tolist() == \
        qe["index"].tolist()


def test_event_limit_argument():
    assert check_event_limit(None) == 0 and check_event_limit(5) == 5
    for bad in (-1, 2.5, True, "10"):
        with pytest.raises(ValueError, match="events"):
            Trace(events=bad)


def test_cil_events_flag(tmp_path):
    """`intsim cil --events N`: at most N events in trace.h5, each also counted by its record."""
    from intsim.cli import main
    from intsim.core.trace import read_hdf5
    out = tmp_path / "run"
    assert main(["cil", "--dataset", "synthetic", "--method", "finetune", "--numerics", "hdqt",
                 "--epochs", "1", "--trace-every", "1", "--events", "40", "--out", str(out),
                 "--quiet"]) == 0
    ev = read_events(str(out / "trace.h5"))
    qe = read_events(str(out / "trace.h5"), table="quantize_events")
    mm = read_hdf5(str(out / "trace.h5"))
    qq = read_hdf5(str(out / "trace.h5"), op="quantize")
    counted = int(mm["events"].sum() + mm["tile_sum_events"].sum()) + int(
        np.rint(qq["clipped_fraction"] * qq["elements"]).sum())
    assert len(ev) + len(qe) == min(40, counted) and counted > 40
    for table in (ev, qe):                   # every logged event belongs to a record's call
        for label, step in set(zip(table["label"], table["step"])):
            rows = (mm if table is ev else qq)
            assert ((rows["label"] == label) & (rows["step"] == step)).any()
