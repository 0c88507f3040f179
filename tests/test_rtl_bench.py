"""The reference RTL bench (examples/rtl) under Icarus Verilog: golden vectors of several
datapaths and stress vectors match bit for bit; each planted bug fails `intsim compare`, and
--explain names it. Skipped (with the reason) where iverilog is not installed; .ci/run
installs the Debian package."""
import importlib.util
import pathlib
import shutil

import pytest

from intsim.cli import main as intsim_main
from intsim.formats.hexfile import HexOptions
from intsim.hw.golden import write_golden, write_vectors_file
from intsim.hw.vectors import build_vectors

ROOT = pathlib.Path(__file__).resolve().parents[1]
RTL = ROOT / "examples" / "rtl"
EXPECT = ["--expect", "*/acc", "--expect", "*/acc_register", "--expect", "*/acc_tile_sum"]

needs_iverilog = pytest.mark.skipif(
    shutil.which("iverilog") is None or shutil.which("vvp") is None,
    reason="Icarus Verilog is not installed (Debian: apt-get install -y iverilog; .ci/run "
           "installs it)")


def _bench():
    spec = importlib.util.spec_from_file_location("run_bench", RTL / "run_bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return str(tmp_path_factory.mktemp("rtl-build"))


@needs_iverilog
@pytest.mark.slow
@pytest.mark.parametrize("datapath", [str(ROOT / "examples" / "datapath_hdqt.toml"),
                                      "hdqt_paper", str(RTL / "datapath_wrap_tile16.toml")])
def test_golden_vectors_match_the_verilog_mac(datapath, tmp_path, build, capsys):
    golden = str(tmp_path / "g.h5")
    write_golden(datapath, "fcnet:34,20,12,4", batch=4, steps=1, seed=3, out=golden,
                 hex_dir=str(tmp_path / "hex"))
    dump = str(tmp_path / "dump.h5")
    assert _bench().main([str(tmp_path / "hex"), "--dump", dump, "--build", build]) == 0
    assert intsim_main(["compare", golden, dump] + EXPECT) == 0
    out = capsys.readouterr().out
    assert "RESULT: MATCH" in out and "compared 27 of" in out      # 9 matmuls × 3 tensors


@pytest.fixture(scope="module")
def stress(tmp_path_factory):
    d = tmp_path_factory.mktemp("stress")
    tensors, root = build_vectors(str(ROOT / "examples" / "datapath_hdqt.toml"),
                                  kinds=["fwd", "grad_in"], suites=["extreme", "boundary"])
    write_vectors_file(tensors, root, str(d / "v.h5"), str(d / "hex"), HexOptions())
    return d


@needs_iverilog
@pytest.mark.slow
@pytest.mark.parametrize("bug, culprit", [(None, None),
                                          ("wrap", "wrap instead of saturate"),
                                          ("floor", "asymmetric [-2^(b-1), 2^(b-1)-1] register"),
                                          ("tile", "tiles of 33 MACs instead of 32")])
def test_stress_vectors_and_planted_bugs(stress, bug, culprit, build, capsys):
    dump = str(stress / f"dump_{bug}.h5")
    args = [str(stress / "hex"), "--dump", dump, "--build", build] + (["--bug", bug] if bug
                                                                      else [])
    assert _bench().main(args) == 0
    rc = intsim_main(["compare", str(stress / "v.h5"), dump, "--explain"] + EXPECT)
    out = capsys.readouterr().out
    if bug is None:
        assert rc == 0 and "RESULT: MATCH" in out
        return
    assert rc == 1 and "RESULT: MISMATCH" in out
    best = out.split("the dump's results are reproduced by:")[1].splitlines()[1]
    assert culprit in best, out[-2000:]              # --explain's best variant is the bug


def test_cocotb_helper_is_optional(stress):
    """The cocotb helper imports with or without cocotb; the matmul iterator it uses yields
    every matmul with operands whose exact products give the golden tile partials."""
    spec = importlib.util.spec_from_file_location("cocotb_golden", RTL / "cocotb_golden.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mats = list(mod.iter_matmuls(str(stress / "v.h5")))
    assert len(mats) == 2 * (7 + 1)                  # 7 extreme + 1 boundary case per kind
    for mv in mats:
        T = mv.desc["tile"]
        K = mv.left.shape[-1]
        first = (mv.left[..., :T] @ mv.right[:, :T, :]) if K else None
        assert (first == mv.expected["partial"][0]).all()
        assert mv.expected["result"].shape == (mv.desc["G"], mv.desc["M"], mv.desc["N"])
