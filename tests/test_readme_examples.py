"""The README's runnable examples (blocks after a `<!-- readme-example: NAME -->` line) run as
written, in a fresh folder, with this interpreter's `python` and `intsim` first on PATH."""
import pytest
import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example(name: str) -> str:
    m = re.search(rf"<!-- readme-example: {name} -->\n```bash\n(.*?)\n```", README.read_text(),
                  re.S)
    assert m, f"README has no example {name!r}"
    return m.group(1)


@pytest.mark.slow
def test_byo_example_runs(tmp_path):
    """Your own data: the made-up HAR table and the intsim cil runs on it."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_example("byo")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "har icarl hdqt seed 0" in proc.stdout and "NME AIA" in proc.stdout
    for f in ("metrics.json", "history.jsonl", "loss.png", "config.json"):
        assert (tmp_path / "runs" / "har" / f).is_file()
    for f in ("seed0/metrics.json", "seed1/metrics.json", "summary.json", "comparison.png"):
        assert (tmp_path / "runs" / "har-seeds" / f).is_file()

