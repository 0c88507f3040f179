"""Helpers shared by the tests."""
import os
import subprocess
import sys


def run_python(code: str, threads: int) -> str:
    """Run `code` in a fresh interpreter with NUMBA_NUM_THREADS=threads; return its stdout."""
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()
