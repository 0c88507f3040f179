"""The documentation site builds with every warning an error (mkdocs build --strict): every
page, every API reference entry, every link between the pages."""
import pytest
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_docs_site_builds_strict(tmp_path):
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                          "--site-dir", str(tmp_path / "site")], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    for page in ("index.html", "numerics/index.html", "cli/index.html", "api/core/index.html",
                 "method/index.html"):
        assert (tmp_path / "site" / page).stat().st_size > 2000, page
    cli = (tmp_path / "site" / "cli" / "index.html").read_text()
    assert "intsim golden" in cli and "--numerics" in cli
