"""Golden format 2: model specs, matmul descriptors, v and m, selection, coverage, hex orders
and words, re-export, read_hex(manifest entry)."""
import json

import h5py
import numpy as np
import pytest

from intsim.cli import main as intsim_main
from intsim.core.accumulator import Accumulator, int_matmul
from intsim.formats.golden_file import iter_matmuls, read_coverage, read_matmuls
from intsim.formats.hexfile import HexOptions, read_hex, write_hex
from intsim.hw.golden import run_golden, write_golden
from intsim.hw.golden_record import round_v
from intsim.hw.model_spec import parse_model

SPECS = ["linear:4,33,5", "conv:2,3,6,6,5,3,1,1", "resnet-block:2,4,6,6,8,2",
         "smallcnn:1,8,8,4,6,3", "fcnet:40,36,20,5"]


@pytest.mark.parametrize("spec", SPECS)
def test_every_model_spec_passes_the_self_checks(spec):
    """Tile decomposition, SR bits and v all reproduce the recorded values; one descriptor
    per integer matmul, whose operands give its result through int_matmul."""
    tensors, root = run_golden("hdqt", spec, batch=None if spec[0] in "lcr" else 4, steps=1,
                               seed=1)
    matmuls = root["_matmuls"]
    by = {t.path: t.value for t in tensors}
    n_layers = {"linear": 1, "conv": 1, "resnet-block": 2, "smallcnn": 3, "fcnet": 3}
    assert len(matmuls) == 3 * n_layers[parse_model(spec).kind]
    for d in matmuls.values():
        left = by[d["left"]].astype(np.int64)
        right = by[d["right"]].astype(np.int64)
        right = {"N,K": lambda r: r.T, "K,N": lambda r: r, "G,K,N": lambda r: r}[
            d["right_layout"]](right)
        acc = Accumulator(d["acc_bits"], d["tile_configured"] or None, d["mode"],
                          d["acc_symmetric"], d["tile_sum_bits"] or None)
        assert left.shape == (d["G"], d["M"], d["K"])
        assert np.array_equal(int_matmul(left, right, acc), by[d["result"]])
        assert d["n_tiles"] == -(-d["K"] // d["tile"])


def test_descriptors_v_and_m_in_the_file(tmp_path):
    out = tmp_path / "g.h5"
    write_golden("hdqt", "fcnet:40,36,20,5", batch=6, steps=1, seed=1, out=str(out))
    with h5py.File(out) as f:
        descs = read_matmuls(f)
        assert [d["label"] for d in descs[:3]] == ["backbone.fc1/fwd", "backbone.fc2/fwd",
                                                   "head/fwd"]
        d = descs[0]
        assert (d["left_layout"], d["right_layout"], d["K"], d["tile"], d["n_tiles"]) == \
            ("G,M,K", "N,K", 40, 32, 2)
        assert d["tile_configured"] == 32 and d["acc_bits"] == 8 and d["tile_sum_bits"] == 32
        gin = next(x for x in descs if x["label"] == "head/grad_in")
        assert gin["right_layout"] == "K,N" and gin["hadamard_block"] == 8   # N = 5 padded
        gw = next(x for x in descs if x["label"] == "head/grad_w")
        assert gw["right_layout"] == "G,K,N" and gw["left_sr_bits"].endswith("g_sr_bits")
        # v = fl32(clamp(x, -m, m)/scale) rounds to the codes (the SR rule with R for g)
        base = "step_000/head/grad_w/"
        v, R, codes = (f[base + t][()] for t in ("g_v", "g_sr_bits", "g_codes"))
        x, m, s = f[base + "g_hadamard"][()], f[base + "g_m"][()], f[base + "g_scale"][()]
        assert np.array_equal(v, (np.clip(x, -m[0], m[0]) / s[0]).astype(np.float32))
        assert np.array_equal(round_v(v, "stochastic", R, 16, -7, 7), codes.astype(np.int64))
        assert "trace/matmul" in f and "coverage/matmuls" in f
    cov = read_coverage(str(out))
    assert len(cov["matmuls"]) == 9 and cov["thin"]                      # small: thin


def test_select_and_cli_model(tmp_path, capsys):
    out = tmp_path / "s.h5"
    rc = intsim_main(["golden", "--numerics", "hdqt", "--model", "conv:2,3,6,6,5,3,1,1",
                      "--select", "conv/fwd", "--steps", "1", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "1 integer matmuls" in text and "WARNING: THIN COVERAGE" in text
    with h5py.File(out) as f:
        assert [d["label"] for d in read_matmuls(f)] == ["conv/fwd"]
        assert not any("/grad_w/" in p for p in f["op_order"].asstr()[()])
    assert intsim_main(["golden", "--numerics", "hdqt", "--model", "linear:4,33,5",
                        "--select", "nope/*", "--out", str(out)]) == 2
    assert "select: 'nope/*' matches no matmul label" in capsys.readouterr().err
    assert intsim_main(["golden", "--numerics", "hdqt", "--model", "linear:4,33,5",
                        "--batch", "8", "--out", str(out)]) == 2
    assert "fixes the batch to 4" in capsys.readouterr().err
    assert intsim_main(["golden", "--numerics", "hdqt", "--model", "fcnet:16,16,16,4",
                        "--steps", "1", "--strict-coverage", "--out", str(out)]) == 1


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("hex")
    out = str(d / "g.h5")
    write_golden("hdqt", "fcnet:37,20,12,4", batch=5, steps=1, seed=2, out=out)
    return out, d


@pytest.mark.parametrize("order", ["c", "k-major", "tile-blocked"])
@pytest.mark.parametrize("word", [0, 8, 32])
def test_hex_orders_and_words_round_trip(small, order, word):
    out, d = small
    hd = d / f"h_{order}_{word}"
    man = json.loads(open(write_hex(out, str(hd), HexOptions(order, word))).read())
    with h5py.File(out) as f:
        for e in man["tensors"]:
            back = read_hex(e, hd)
            want = f[e["path"]][()]
            if e["encoding"] == "ieee754_binary32":
                assert np.array_equal(back.view(np.uint32), want.astype(np.float32).view(
                    np.uint32)), e["path"]
            else:
                assert np.array_equal(back, want.astype(np.int64)), e["path"]
    left = next(e for e in man["tensors"] if e["path"].endswith("backbone.fc1/fwd/a_codes"))
    assert left["order"] == order
    if order == "tile-blocked":          # (G, tiles, M, T): K = 37 → 2 tiles of 32, 27 zeros
        assert left["file_shape"] == [1, 2, 5, 32] and left["pad"] == 5 * 27
    if order == "k-major":
        assert left["file_shape"] == [1, 37, 5]
    if word == 32 and left["bits"] == 4:                # 8 per word, rows do not straddle
        rows = int(np.prod(left["file_shape"][:-1]))
        assert left["lines"] == rows * -(-left["row_length"] // 8)
    assert {m["matmul"] for m in man["matmuls"]} and all(
        m["files"]["left"] and m["files"]["result"] for m in man["matmuls"])


def test_pack_int4_is_per_row_and_re_export(small, capsys):
    out, d = small
    assert intsim_main(["golden", "--from", out, "--hex", str(d / "p"), "--pack-int4"]) == 0
    assert "coverage:" in capsys.readouterr().out
    man = json.loads((d / "p" / "manifest.json").read_text())
    e = next(t for t in man["tensors"] if t["path"].endswith("fc1/fwd/w_codes"))  # (20, 37)
    assert e["packed_int4"] and e["lines"] == 20 * 19           # 37 codes → 19 bytes per row
    with h5py.File(out) as f:
        assert np.array_equal(read_hex(e, d / "p"), f[e["path"]][()])
    assert intsim_main(["golden", "--from", out]) == 2
    assert intsim_main(["golden", "--from", out, "--hex", str(d / "q"), "--model",
                        "fcnet:4,4,4"]) == 2
    assert "--model does not apply" in capsys.readouterr().err


def test_iter_matmuls(small):
    out, _ = small
    mats = list(iter_matmuls(out))
    assert len(mats) == 9
    for mv in mats:                       # the exact tile partials add up to left · right
        assert np.array_equal(mv.left @ mv.right, mv.expected["partial"].sum(0))


def test_per_batch_activation_scale_conv():
    """act_scale per_batch: a_codes / a_v keep the input's shape, a_cols (the unfolded codes)
    is the matmul's left operand, and every self-check passes (stochastic a_fwd too)."""
    from intsim import preset
    nm = preset("hdqt").replace(act_scale="per_batch")
    for numerics in (nm, nm.replace(a_fwd=nm.g_in)):
        tensors, root = run_golden(numerics, "conv:2,3,6,6,5,3,1,1", steps=1)
        d = root["_matmuls"]["step_000/conv/fwd"]
        by = {t.path: t.value for t in tensors}
        assert d["left"].endswith("a_cols") and d["left_codes"].endswith("a_codes")
        assert by[d["left_codes"]].shape == (2, 3, 6, 6) and by[d["left"]].shape == (2, 36, 27)
        assert by[d["left_v"]].shape == (2, 3, 6, 6)
