"""Installing intsim creates only the `intsim` package: models/ and datasets/ live inside it."""
import pytest
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_holds_only_the_intsim_namespace(tmp_path):
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                          "-q", "-w", str(tmp_path), str(ROOT)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    wheel = next(tmp_path.glob("intsim-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"intsim", next(t for t in tops if t.endswith(".dist-info"))}
    for module in ("intsim/models/networks.py", "intsim/models/learners/icarl.py",
                   "intsim/datasets/scenario.py", "intsim/kernels/accumulate.py",
                   "intsim/nn/linear.py", "intsim/formats/energy_45nm.toml"):
        assert module in names
    # the regular install imports from the unpacked wheel, not from this checkout
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = ("import intsim, intsim.models, intsim.datasets, intsim.models.learners, sys; "
            "import importlib.util as u; "
            "assert u.find_spec('models') is None and u.find_spec('datasets') is None; "
            "from intsim.formats.energy_table import load_energy_table as L; "
            "assert 'Horowitz' in L().source; "
            "print(intsim.models.__file__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(target))
