"""scripts/reproduce_paper.py runs the paper protocol on a DSADS-layout feature table."""
import pytest
import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_dsads_table(folder: Path, per_cell: int = 3, seed: int = 0) -> None:
    """A tiny table in the paper's dsads.csv layout: 405 features, sequence, label, person."""
    r = np.random.default_rng(seed)
    rows = []
    for label in range(1, 20):
        centre = r.uniform(-0.5, 0.5, 405)
        for person in range(1, 9):
            for s in range(per_cell):
                feats = np.clip(centre + 0.1 * r.standard_normal(405), -1, 1)
                rows.append(np.concatenate([feats, [s + 1, label, person]]))
    np.savetxt(folder / "dsads.csv", np.array(rows), delimiter=",", fmt="%.5f")


@pytest.mark.slow
def test_reproduce_paper_prints_ours_beside_the_paper(tmp_path, capsys):
    write_dsads_table(tmp_path)
    script = load_script("reproduce_paper")
    code = script.main(["--data-dir", str(tmp_path), "--dataset", "dsads", "--methods", "icarl",
                        "--numerics", "fp32", "hdqt", "--seeds", "1", "--epochs", "1",
                        "--out", str(tmp_path / "runs"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "83.99" in out and "83.63" in out                 # the paper's iCaRL AIA
    assert (tmp_path / "runs" / "dsads-icarl-hdqt-seed0" / "metrics.json").exists()
    # a second call reuses the finished runs
    assert script.main(["--data-dir", str(tmp_path), "--dataset", "dsads", "--methods",
                        "icarl", "--numerics", "fp32", "--seeds", "1", "--epochs", "1",
                        "--out", str(tmp_path / "runs"), "--quiet"]) == 0


def test_reproduce_paper_missing_data_is_a_clear_error(tmp_path, capsys):
    script = load_script("reproduce_paper")
    code = script.main(["--data-dir", str(tmp_path / "nowhere"), "--dataset", "dsads",
                        "--seeds", "1", "--epochs", "1", "--out", str(tmp_path / "r")])
    assert code == 2 and "dsads" in capsys.readouterr().err.lower()


@pytest.mark.slow
def test_reproduce_paper_protocol_switch_and_evaluation_column(tmp_path, capsys):
    import json
    write_dsads_table(tmp_path, per_cell=2)
    script = load_script("reproduce_paper")
    code = script.main(["--data-dir", str(tmp_path), "--dataset", "dsads", "--methods", "icarl",
                        "--numerics", "hdqt_paper", "--seeds", "1", "--epochs", "1",
                        "--protocol", "paper", "--out", str(tmp_path / "runs"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "batch 128, class_sorted, dynamic" in out
    cfg = json.loads((tmp_path / "runs" / "dsads-icarl-hdqt_paper-paper-seed0" /
                      "config.json").read_text())
    assert cfg["settings"]["protocol"] == "paper" and cfg["numerics_spec"]["ste"] == "code_max"
