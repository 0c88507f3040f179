"""Golden vectors: layout, self-consistency, random bits, hex files, thread-count
reproducibility."""
import json
import os
import pathlib
import sys

import h5py
import numpy as np
import pytest
from hypothesis import given, settings

from helpers import run_python
from intsim import SRStream, preset
from intsim.cli import main as hw_main
from intsim.core.ranges import hadamard_range, width_of_range
from intsim.core.rng import element_random_bits
from intsim.formats.golden_file import FORMAT, read_op_order
from intsim.formats.hexfile import read_hex, to_hex_lines
from intsim.hw.golden import parse_model, run_golden, write_golden
from intsim.kernels.hashing import element_bits
from intsim.testing import numerics_specs

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
TINY = "fcnet:16,16,16,4"
ODD = "fcnet:40,36,20,5"          # K > 32 (two tiles), odd widths (pad / largest_pow2 differ)


@pytest.fixture(scope="module")
def hdqt_golden(tmp_path_factory):
    d = tmp_path_factory.mktemp("golden")
    out = str(d / "golden.h5")
    res = write_golden(str(EXAMPLES / "datapath_hdqt.toml"), ODD, batch=6, steps=2, seed=1,
                       out=out, hex_dir=str(d / "hex"))
    return out, res, d


def test_layout_root_and_op_order(hdqt_golden):
    out, res, _ = hdqt_golden
    with h5py.File(out) as f:
        a = f.attrs
        assert a["format"] == FORMAT and a["format_version"] == 2
        for key in ("intsim_version", "datapath", "model", "seed", "sr_seed", "batch", "steps",
                    "lr", "momentum"):
            assert key in a
        assert (a["batch"], a["steps"], a["lr"], a["momentum"]) == (6, 2, 0.01, 0.9)
        assert a["model"] == "fcnet:40,36,20,5" and a["numerics"] == "hdqt"
        order = read_op_order(f)
        assert len(order) == len(set(order)) == res.n_tensors == a["n_tensors"]
        for i, p in enumerate(order):
            d = f[p]
            assert d.attrs["op_index"] == i
            for key in ("bits", "signed", "encoding", "hw_type", "description", "layer",
                        "kind", "tensor", "step"):
                assert key in d.attrs, (p, key)
            assert p.split("/")[-1] == d.attrs["tensor"]
        # one group per step / layer / kind, tensors of a matmul in execution order
        fwd = [p.split("/")[-1] for p in order if p.startswith("step_000/backbone.fc1/fwd/")]
        assert fwd == ["w_x", "w_codes", "w_scale", "w_m", "w_v", "a_x", "a_codes", "a_scale",
                       "a_m", "a_v", "acc_partial", "acc_register", "acc_tile_sum", "acc", "y"]
        gin = [p.split("/")[-1] for p in order if p.startswith("step_001/head/grad_in/")]
        assert gin == ["g_hadamard", "w_hadamard", "g_sr_bits", "g_codes", "g_scale", "g_m",
                       "g_v", "w_codes", "w_scale", "w_m", "w_v", "acc_partial",
                       "acc_register", "acc_tile_sum", "acc", "dx"]
        gw = [p.split("/")[-1] for p in order if p.startswith("step_000/backbone.fc2/grad_w/")]
        assert gw[:12] == ["g_hadamard", "a_hadamard", "g_sr_bits", "g_codes", "g_scale",
                           "g_m", "g_v", "a_sr_bits", "a_codes", "a_scale", "a_m", "a_v"]
        # execution order: forward layers, loss, backward layers in reverse, SGD
        firsts = []
        for p in order:
            if p.startswith("step_000/"):
                key = "/".join(p.split("/")[1:3])
                if key not in firsts:
                    firsts.append(key)
        assert firsts == ["input/batch", "backbone.fc1/fwd", "backbone.fc2/fwd", "head/fwd",
                          "loss/cross_entropy", "head/grad_in", "head/grad_w",
                          "backbone.fc2/grad_in", "backbone.fc2/grad_w",
                          "backbone.fc1/grad_in", "backbone.fc1/grad_w", "backbone.fc1/sgd",
                          "backbone.fc2/sgd", "head/sgd"]
        assert order[0] == "init/backbone.fc1/params/weight"
        # declared widths: 4-bit codes, 8-bit registers, 32-bit tile sum
        assert f["step_000/backbone.fc1/fwd/w_codes"].attrs["hw_type"] == "int4"
        assert f["step_000/backbone.fc2/fwd/a_codes"].attrs["hw_type"] == "uint4"
        assert f["step_000/backbone.fc1/fwd/acc_register"].attrs["bits"] == 8
        assert f["step_000/backbone.fc1/fwd/acc"].attrs["bits"] == 32
        assert f["step_000/head/grad_in/g_sr_bits"].attrs["hw_type"] == "uint16"
        assert f["step_000/head/grad_in/g_hadamard"].attrs["encoding"] == "ieee754_binary32"


def test_tiles_registers_and_tile_sums_are_consistent(hdqt_golden):
    out, _, _ = hdqt_golden
    with h5py.File(out) as f:
        st = "step_001/backbone.fc1/fwd/"
        a = f[st + "a_codes"][()].astype(np.int64)            # (1, B, 40)
        w = f[st + "w_codes"][()].astype(np.int64)            # (36, 40)
        part, reg, ts, acc = (f[st + t][()] for t in ("acc_partial", "acc_register",
                                                      "acc_tile_sum", "acc"))
        assert part.shape[0] == 2                              # K = 40, tile 32
        assert np.array_equal(part[0], a[..., :32] @ w[:, :32].T)
        assert np.array_equal(part[1], a[..., 32:] @ w[:, 32:].T)
        assert np.array_equal(part.sum(0), a @ w.T)
        # saturate: the register never leaves ±127 and equals the exact sum when it fits
        assert np.abs(reg).max() <= 127
        assert np.array_equal(ts[0], reg[0]) and np.array_equal(ts[1], reg[0] + reg[1])
        assert np.array_equal(ts[-1], acc)
        for p in read_op_order(f):
            if p.endswith("/acc_tile_sum"):
                assert np.array_equal(f[p][()][-1], f[p.replace("acc_tile_sum", "acc")][()])


def _sr_round(x, scale, R, r, qmax):
    """(floor(v·2^r) + R) >> r with v = fl32(clamp(x, ±m)/scale), m = max|x| (clip 1)."""
    x = x.astype(np.float32)
    m = np.float32(np.abs(x).max())
    v = (np.clip(x, -m, m) / np.float32(scale)).astype(np.float32).astype(np.float64)
    t = np.floor(v * 2.0 ** r).astype(np.int64)
    return np.clip((t + R.astype(np.int64)) >> r, -qmax, qmax)


def test_recorded_random_bits_are_the_bits_consumed(hdqt_golden):
    out, _, _ = hdqt_golden
    with h5py.File(out) as f:
        seed = int(f.attrs["sr_seed"])
        for step in range(2):
            for layer, kind, op, src in (("head", "grad_in", "g_in", "g_hadamard"),
                                         ("backbone.fc1", "grad_w", "g_w", "g_hadamard"),
                                         ("backbone.fc2", "grad_w", "a_bwd", "a_hadamard")):
                base = f"step_{step:03d}/{layer}/{kind}/"
                letter = op[0]
                R = f[base + f"{letter}_sr_bits"][()]
                codes = f[base + f"{letter}_codes"][()]
                # the stream of NUMERICS.md §3: rng / layer / operand, one draw per step
                key = SRStream(seed).child(layer).child(op).draw(step).key
                assert np.array_equal(R.reshape(-1), element_random_bits(key, codes.size, 16))
                x = f[base + src][()]
                scale = f[base + f"{letter}_scale"][()][0]
                assert np.array_equal(_sr_round(x, scale, R, 16, 7), codes.astype(np.int64))


def test_vectorised_bits_equal_the_numba_kernel():
    rng = np.random.default_rng(5)
    for key in [0, 1, 2 ** 64 - 1, *map(int, rng.integers(0, 2 ** 63, 4, dtype=np.uint64))]:
        for r in (1, 16, 24, 32):
            got = element_random_bits(key, 300, r, offset=7)
            want = [int(element_bits(np.uint64(key), 7 + i)) >> (64 - r) for i in range(300)]
            assert got.tolist() == want


def test_hex_files_round_trip(hdqt_golden):
    out, res, d = hdqt_golden
    man = json.loads((d / "hex" / "manifest.json").read_text())
    assert man["format"] == "intsim-golden-hex" and len(man["tensors"]) == res.n_tensors
    with h5py.File(out) as f:
        for e in man["tensors"]:
            path = d / "hex" / e["file"]
            lines = path.read_text().split()
            assert all(len(x) == e["hex_digits"] for x in lines)
            back = read_hex(str(path), e["bits"], e["encoding"], e["count"], e["packed_int4"])
            want = f[e["path"]][()]
            if e["encoding"] == "ieee754_binary32":
                assert np.array_equal(back.view(np.uint32),
                                      want.astype(np.float32).reshape(-1).view(np.uint32))
            else:
                assert back.tolist() == want.reshape(-1).astype(np.int64).tolist(), e["path"]
    assert [e["op_index"] for e in man["tensors"]] == list(range(res.n_tensors))


def test_hex_conventions():
    assert to_hex_lines(np.array([-7, 3, 7, -1]), 4, "twos_complement")[0] == ["9", "3", "7", "f"]
    assert to_hex_lines(np.array([15, 0]), 4, "unsigned")[0] == ["f", "0"]
    lines, digits, packed = to_hex_lines(np.array([-7, 3, 5]), 4, "twos_complement", True)
    assert (lines, digits, packed) == (["39", "05"], 2, True)       # low nibble first
    assert to_hex_lines(np.array([-1, 1000]), 11, "twos_complement")[0] == ["7ff", "3e8"]
    assert to_hex_lines(np.array([1.0], np.float32), 32, "ieee754_binary32")[0] == ["3f800000"]
    assert to_hex_lines(np.array([200]), 9, "twos_complement", True)[0] == ["0c8"]  # not packed


def test_pack_int4_files(tmp_path):
    out = str(tmp_path / "g.h5")
    write_golden("int4", TINY, batch=4, steps=1, seed=0, out=out, hex_dir=str(tmp_path / "h"),
                 pack_int4=True)
    man = json.loads((tmp_path / "h" / "manifest.json").read_text())
    e = next(t for t in man["tensors"] if t["path"].endswith("fc1/fwd/w_codes"))
    assert e["packed_int4"] and e["lines"] == (e["count"] + 1) // 2
    with h5py.File(out) as f:
        w = f[e["path"]][()].reshape(-1)
    first = int((tmp_path / "h" / e["file"]).read_text().split()[0], 16)
    assert (first & 0xF, first >> 4) == (int(w[0]) & 0xF, int(w[1]) & 0xF)


@pytest.mark.parametrize("name", ["hdqt_paper", "luq", "int4"])
def test_other_datapaths_pass_the_self_checks(name):
    tensors, root = run_golden(name, ODD, batch=5, steps=1, seed=2)
    paths = [t.path for t in tensors]
    assert root["numerics"] == name and len(paths) == len(set(paths))
    if name == "luq":        # w_bwd / a_bwd absent: the reused forward codes are the operands
        assert "step_000/head/grad_in/w_codes" not in paths
        g = next(t for t in tensors if t.path == "step_000/head/grad_in/g_codes")
        assert g.attrs["format"] == "log2" and g.attrs["hw_type"] == "int8"
    if name == "hdqt_paper":
        reg = next(t for t in tensors if t.path == "step_000/backbone.fc1/fwd/acc_register")
        part = next(t for t in tensors if t.path == "step_000/backbone.fc1/fwd/acc_partial")
        assert np.array_equal(reg.value, np.clip(part.value, -127, 127))     # clamp_tile


def test_seeds(tmp_path):
    toml = preset("hdqt").to_toml().replace('hadamard = "pad"', 'hadamard = "pad"\nseed = 77')
    p = tmp_path / "dp.toml"
    p.write_text(toml)
    _, root = run_golden(str(p), TINY, batch=4, steps=1)
    assert (root["seed"], root["sr_seed"]) == (77, 77)
    _, root = run_golden(str(p), TINY, batch=4, steps=1, seed=3)
    assert (root["seed"], root["sr_seed"]) == (3, 77)
    _, root = run_golden("hdqt", TINY, batch=4, steps=1, seed=3)
    assert (root["seed"], root["sr_seed"]) == (3, 3)


def test_model_spec_and_helpers():
    assert str(parse_model("fcnet:8,9,10")) == "fcnet:8,9,10,10"
    assert parse_model("FCNet:8,9,10,3").classes == 3
    for bad in ("resnet:1,2,3", "fcnet:1,2", "fcnet:a,b,c", "fcnet:4,4,4,1", "fcnet"):
        with pytest.raises(ValueError, match="model"):
            parse_model(bad)
    assert width_of_range(-7, 7) == (4, True) and width_of_range(-8, 7) == (4, True)
    assert width_of_range(0, 15) == (4, False) and width_of_range(-127, 127) == (8, True)
    assert hadamard_range(-7, 7, 4) == (-28, 28) and hadamard_range(0, 15, 2) == (-15, 30)


def test_cli_golden(tmp_path, capsys):
    out = tmp_path / "g.h5"
    rc = hw_main(["golden", "--datapath", str(EXAMPLES / "datapath_hdqt_paper.toml"),
                  "--model", TINY, "--batch", "4", "--steps", "1", "--seed", "0",
                  "--out", str(out), "--hex", str(tmp_path / "hex")])
    assert rc == 0 and out.exists() and (tmp_path / "hex" / "manifest.json").exists()
    assert "tensors" in capsys.readouterr().out
    assert hw_main(["golden", "--datapath", "hdqt", "--model", "fcnet:1", "--out",
                    str(out)]) == 2
    assert "intsim golden: error: model" in capsys.readouterr().err
    assert hw_main(["golden", "--datapath", str(tmp_path / "none.toml"), "--out",
                    str(out)]) == 2
    with pytest.raises(SystemExit) as e:
        hw_main(["golden", "--help"])
    assert e.value.code == 0
    assert "readmemh" in capsys.readouterr().out


GOLDEN_CODE = """
import sys
from intsim.cli import main
sys.exit(main(["golden", "--datapath", "hdqt", "--model", "fcnet:96,80,64,10", "--batch", "40",
               "--steps", "2", "--seed", "4", "--out", {out!r}]))
"""


def test_thread_count_reproducibility(tmp_path):
    """Golden vectors written with 1 and 2 Numba threads, in separate processes, are
    identical according to `intsim compare`."""
    outs = []
    for threads in (1, 2):
        out = str(tmp_path / f"t{threads}.h5")
        run_python(GOLDEN_CODE.format(out=out), threads)
        outs.append(out)
    code = ("import sys; from intsim.cli import main; "
            f"sys.exit(main(['compare', {outs[0]!r}, {outs[1]!r}, '--require-all']))")
    env = dict(os.environ)
    import subprocess
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "RESULT: MATCH" in res.stdout and "missing" not in res.stdout


@settings(max_examples=15)
@given(nm=numerics_specs(narrow=True, signed=(True, None)))
def test_any_datapath_passes_the_self_checks(nm):
    """Generated datapaths (every mode, tile, width, rounding, scale policy, Hadamard rule,
    float operands): the tile decomposition reproduces the accumulator, the re-derived SR
    bits reproduce the codes, every integer tensor lies in its declared range."""
    tensors, _ = run_golden(nm, "fcnet:12,10,9,3", batch=5, steps=2, seed=1)
    for t in tensors:
        if t.attrs["encoding"] != "ieee754_binary32" and t.value.size:
            bits, signed = t.attrs["bits"], t.attrs["signed"]
            lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0,
                                                                                (1 << bits) - 1)
            assert lo <= t.value.min() and t.value.max() <= hi, t.path
