"""The machinery of the bad-input suites: one Case per input, one line each.

    Case("quantize", lambda tmp: quantize(X, 4, scale=1e39), ValueError, "scale: expected")
    Case("intsim cil --lr", ["cil", *TINY_ARGS, "--lr", "0"], 2, "lr: must be > 0")
    Case("datapath file", lambda tmp: Numerics.from_toml(tmp / "d.toml"), ValueError,
         "d.toml: acc_fwd", files={"d.toml": "[acc_fwd]\\nbits = 8\\n"})

`entry` names the public entry point (an API function or class, `intsim SUBCOMMAND --flag`,
`config key K`, `datapath key K`, or a file reader) — the report counts cases per entry.
`call` is either a function of the test's tmp folder (an API case) or the argv of `intsim`
(a CLI case; "{tmp}" in an argument is the tmp folder). `expect` is the exception type (or
tuple) an API case must raise, or the exit code of a CLI case; None (API) / 0 (CLI) means
the input is handled: the call must succeed. `text` must appear in the message (API) or on
stderr (CLI). `files` are created under tmp first ("{tmp}" in str contents is replaced;
a callable content is called with tmp). `post(tmp)`, when given, checks what the case left
behind (e.g. a metrics.json with status "diverged").

Outcomes: an exception or exit code 1/2 is a "clear error"; exit code 3 (a diverged run with
its recorded metrics.json status) and exit code 4 (a storage error naming the file) are a
"recorded status"; success is "handled". `check(case, tmp, capsys)` asserts it all; for CLI
errors also: no traceback, and (exit codes 2, 3, 4) the error is a single
`intsim COMMAND: error: …` line, the last one on stderr (argparse's usage lines may come before
it); exit code 1 (a failed verdict, failed sweep cells) needs only `text` on stderr.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import pytest

from intsim.cli import main

#: the file an adversarial pickle creates when it is unpickled (in a folder that exists, so
#: the payload really would run; every case asserts it was never created)
PWNED = Path(tempfile.gettempdir()) / f"intsim-bad-input-pwned-{os.getpid()}"


class Evil:
    """Unpickling this creates PWNED (what an attacker's data file would do)."""

    def __reduce__(self):
        return (Path.touch, (PWNED,))


#: a raw pickle, and a .npy holding it (np.load(..., allow_pickle=True) would run it)
EVIL_PICKLE = pickle.dumps(Evil())


def evil_npy() -> bytes:
    import io
    b = io.BytesIO()
    np.save(b, np.array(Evil(), dtype=object), allow_pickle=True)
    return b.getvalue()


def not_pwned() -> None:
    """Fails the case whose payload ran (and removes the file, so only that case fails)."""
    if PWNED.exists():
        PWNED.unlink()
        raise AssertionError(f"a test payload was unpickled: {PWNED} was created")

Call = Union[Callable[[Path], Any], Sequence[str]]


@dataclass(frozen=True)
class Case:
    entry: str
    call: Call
    expect: Any
    text: str = ""
    files: Mapping[str, Any] = field(default_factory=dict)
    post: Optional[Callable[[Path], None]] = None
    id: str = ""

    @property
    def is_cli(self) -> bool:
        return not callable(self.call)

    @property
    def outcome(self) -> str:
        if self.expect is None or self.expect == 0:
            return "handled"
        if self.is_cli and self.expect in (3, 4):
            return "recorded status"
        return "clear error"


def case_ids(cases: Sequence[Case]) -> list[str]:
    """Unique ids: the case's id, else its entry plus a counter."""
    seen: dict[str, int] = {}
    out = []
    for c in cases:
        base = c.id or c.entry.replace(" ", "_")
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 and c.id else f"{base}-{seen[base]}")
    assert len(set(out)) == len(out), "duplicate case ids"
    return out


def _fill(v: Any, tmp: Path) -> Any:
    return v.replace("{tmp}", str(tmp)) if isinstance(v, str) else v


def make_files(files: Mapping[str, Any], tmp: Path) -> None:
    for rel, content in files.items():
        p = tmp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        content = content(tmp) if callable(content) else _fill(content, tmp)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)


def run_cli(argv: Sequence[str], capsys) -> tuple[int, str]:
    """(exit code, stderr) of `intsim ARGV` run in this process."""
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as e:              # argparse
        code = e.code if isinstance(e.code, int) else 2
    return code, capsys.readouterr().err


def check(case: Case, tmp: Path, capsys) -> None:
    make_files(case.files, tmp)
    if case.is_cli:
        argv = [_fill(a, tmp) for a in case.call]
        code, err = run_cli(argv, capsys)
        assert code == case.expect, f"exit code {code}, expected {case.expect}; stderr:\n{err}"
        assert "Traceback" not in err, err
        assert case.text in err, f"expected {case.text!r} on stderr:\n{err}"
        if code not in (0, 1, 130):      # 1: a failed verdict or failed sweep cells, not one line
            lines = [ln for ln in err.splitlines() if ln.strip()]
            errors = [ln for ln in lines if ": error: " in ln]
            assert len(errors) == 1 and lines[-1] == errors[0], f"not one error line:\n{err}"
            assert errors[0].startswith(f"intsim {argv[0]}: error: "), err
    elif case.expect is None:
        case.call(tmp)
    else:
        with pytest.raises(case.expect) as info:
            case.call(tmp)
        msg = str(info.value)
        assert case.text in msg, f"expected {case.text!r} in the message:\n{msg}"
        assert "Traceback" not in msg
    if case.post is not None:
        case.post(tmp)
