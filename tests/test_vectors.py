"""`intsim vectors` (stress suites, quantizer vectors, user operands), `compare --explain`, and
the overflow report on golden/vectors files and user layers."""
import dataclasses

import h5py
import numpy as np
import pandas as pd
import pytest

from intsim import Accumulator, int_matmul
from intsim.cli import main as intsim_main
from intsim.core.numerics import dumps
from intsim.core.presets import preset
from intsim.formats.golden_file import iter_matmuls, read_coverage
from intsim.formats.hexfile import HexOptions
from intsim.hw.explain import Model, replay
from intsim.hw.golden import write_vectors_file
from intsim.hw.golden_record import round_v
from intsim.hw.overflow import report
from intsim.hw.vectors import build_vectors


@pytest.fixture(scope="module")
def hdqt_vectors(tmp_path_factory):
    d = tmp_path_factory.mktemp("vec")
    tensors, root = build_vectors("hdqt")
    res = write_vectors_file(tensors, root, str(d / "v.h5"), None, HexOptions())
    return str(d / "v.h5"), res


def test_stress_suites_cover_what_training_vectors_miss(hdqt_vectors):
    path, res = hdqt_vectors
    cov = res.coverage
    assert not cov.thin, cov.thin
    by = {r["kind"]: r for r in cov.by_kind()}
    for kind in ("fwd", "grad_in", "grad_w"):
        assert by[kind]["multi_tile"] > 0 and by[kind]["events"] > 0
    rows = {r["label"]: r for r in cov.matmuls}
    ks = sorted(r["K"] for lab, r in rows.items() if lab.startswith("extreme") and
                lab.endswith("/fwd"))
    assert ks == [1, 31, 32, 33, 63, 64, 65]
    # targeted saturation rates are met (share of outputs with an event ≥ the target, close)
    for rate in (0.05, 0.5):
        r = rows[f"rate_{rate:g}".replace(".", "p") + "/fwd"]
        share = r["outputs_affected"] / (r["rows"] * r["N"])
        assert rate <= share < rate + 0.1
    q = {x["operand"]: x for x in cov.quantizers}
    for op in ("g_in", "g_w", "a_bwd"):
        assert q[op]["carry_boundary"] > 200 and q[op]["floor_sensitive"] > 0
        assert q[op]["bits_exercised"] == 16
    assert q["w_fwd"]["ties"] > 0
    assert read_coverage(path)["thin"] == []


def test_boundary_case_saturates_at_the_tile_edge(hdqt_vectors):
    path, _ = hdqt_vectors
    mv = next(m for m in iter_matmuls(path) if m.desc["matmul"] == "vectors/boundary_k97/fwd")
    T = mv.desc["tile"]
    hi = 127
    for i in range(mv.left.shape[1]):
        p = int(mv.left[0, i, 0]) * int(mv.right[0, 0, i])
        # the register leaves its range exactly at the tile's last MAC, or would one later
        assert p * (T - 1) <= hi < p * T or p * T <= hi < p * (T + 1) or \
            p * (T - 1) >= -hi > p * T or p * T >= -hi > p * (T + 1)


def test_sr_vectors_round_by_the_spec(hdqt_vectors):
    path, _ = hdqt_vectors
    with h5py.File(path) as f:
        base = "vectors/sr_g_in/quantize/g_"
        v, R, c = (f[base + t][()] for t in ("v", "sr_bits", "codes"))
    assert np.array_equal(round_v(v, "stochastic", R, 16, -7, 7), c.astype(np.int64))


def test_user_operands_and_errors(tmp_path, capsys):
    ops = tmp_path / "ops.npz"
    rng = np.random.default_rng(0)
    np.savez(ops, **{"mine/a": rng.integers(-7, 8, (3, 70)), "mine/b": rng.integers(-7, 8, (70, 2))})
    out = tmp_path / "u.h5"
    assert intsim_main(["vectors", "--numerics", "hdqt", "--kinds", "fwd", "--operands",
                        str(ops), "--out", str(out)]) == 0
    mats = list(iter_matmuls(str(out)))
    assert [m.desc["matmul"] for m in mats] == ["vectors/mine/fwd"]
    want = int_matmul(np.load(ops)["mine/a"], np.load(ops)["mine/b"], Accumulator(8, 32,
                                                                                  tile_sum_bits=32))
    assert np.array_equal(mats[0].expected["result"][0], want)
    np.savez(ops, a=np.full((2, 4), 20), b=np.ones((4, 2), int))
    assert intsim_main(["vectors", "--numerics", "hdqt", "--kinds", "fwd", "--operands",
                        str(ops), "--out", str(out)]) == 2
    assert "user/a has values [20, 20] outside the fwd operand range [-7, 15]" in \
        capsys.readouterr().err


def _planted(vectors: str, dump: str, model_change: dict) -> None:
    """A dump whose results and tile registers come from another accumulator."""
    with h5py.File(dump, "w") as d:
        for mv in iter_matmuls(vectors):
            m = Model(mv.desc["mode"], mv.desc["acc_bits"], mv.desc["acc_symmetric"],
                      mv.desc["tile"], mv.desc["tile_sum_bits"])
            m = dataclasses.replace(m, **model_change)
            G, M, N = mv.desc["G"], mv.desc["M"], mv.desc["N"]
            res = np.zeros((G, M, N), np.int64)
            for g in range(G):
                for i in range(M):
                    for j in range(N):
                        res[g, i, j] = replay(list(mv.left[g, i]), list(mv.right[g, :, j]), m)[2]
            d[mv.desc["result"]] = res


@pytest.mark.parametrize("change, culprit", [({"mode": "wrap"}, "wrap instead of saturate"),
                                             ({"tile": 33}, "tiles of 33 MACs instead of 32")])
def test_explain_names_the_planted_bug(hdqt_vectors, tmp_path, capsys, change, culprit):
    path, _ = hdqt_vectors
    dump = str(tmp_path / "d.h5")
    _planted(path, dump, change)
    assert intsim_main(["compare", path, dump, "--explain", "--json",
                        str(tmp_path / "r.json")]) == 1
    out = capsys.readouterr().out
    assert "EXPLAIN vectors/" in out and "register (golden)" in out
    best = out.split("the dump's results are reproduced by:")[1].splitlines()[1]
    assert culprit in best
    assert "leaves the golden register at k =" in out or "the golden accumulator is in tile" in out


def test_overflow_report_on_vectors_and_user_layers(hdqt_vectors, tmp_path, capsys):
    path, _ = hdqt_vectors
    s = report([path])
    assert (s["operand_source"] == "datapath").all() and s["events"].sum() > 0
    rc = intsim_main(["overflow-report", "--train", "hdqt", "--model",
                      "conv:4,3,12,12,16,3,1,1", "--steps", "3", "--events", "500", "--out",
                      str(tmp_path), "--no-plot"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "conv" in out and "per-event log" in out
    ev = pd.read_csv(tmp_path / "overflow_events.csv")
    assert set(ev["by"]) == {"output", "column", "k", "tile", "event"}
    assert intsim_main(["overflow-report", "--model", "linear:8,70,6"]) == 2


def test_vectors_for_other_datapaths(tmp_path):
    """A wrapping register with a narrow tile-sum register: the tile_sum suite overflows it."""
    nm = preset("hdqt").replace(acc_fwd=Accumulator(9, 8, "wrap", tile_sum_bits=12))
    tensors, root = build_vectors(nm, kinds=["fwd"], suites=["tile_sum", "extreme"])
    res = write_vectors_file(tensors, root, str(tmp_path / "v.h5"), None, HexOptions())
    by = {r["kind"]: r for r in res.coverage.by_kind()}
    assert by["fwd"]["tile_sum_events"] > 0 and by["fwd"]["events"] > 0
    assert "mode = \"wrap\"" in dumps(nm)
    with pytest.raises(ValueError, match="suite: unknown 'nope'"):
        build_vectors("hdqt", suites=["nope"])
