"""Census of the bad-input suites: how many cases each public entry point has, by outcome.

    python scripts/bad_input_census.py            # the counts, read from the case tables
    python scripts/bad_input_census.py --run      # also run the tables and the fault tests
                                                  # (pytest) and show what passed

The numbers come from the case tables themselves (tests/test_bad_input.py,
tests/test_bad_input_hw.py, tests/test_datasets_bad_input.py), never from a hand-kept list.
Each case is put under one entry point:

    API             a public function or class (quantize, Numerics, load_dataset, SGD, …)
    intsim CMD      a subcommand, with the flag the case is about
    config keys     keys of the `intsim cil --config` TOML file (and its tables)
    datapath keys   keys of a datapath TOML file
    file readers    readers of user files: datapath, config and grid files, checkpoints,
                    trace files, and the data loaders given files (per data set)

and given one outcome: "clear error" (an exception, or exit code 2 / 1 with a message naming
the argument or file; exit 1 is a verdict that must not pass), "recorded status" (exit 3: a
diverged run with metrics.json status "diverged"; exit 4: a storage error naming the file), or
"handled" (the input is valid and must work).

--run runs those tables and tests/test_faults.py, tests/test_run_folders.py under pytest and
prints, per test file, the passed / failed / skipped counts and each fault test's result.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
OUTCOMES = ("clear error", "recorded status", "handled")
FILE_READERS = {"datapath file", "config file", "grid file", "read_checkpoint", "read_hdf5"}
TABLES = ("test_bad_input.py", "test_bad_input_hw.py", "test_datasets_bad_input.py")
FAULTS = ("test_faults.py", "test_run_folders.py")


class Row(NamedTuple):
    group: str          # API / intsim CMD / config keys / datapath keys / file readers
    entry: str          # the function, flag, key or file kind
    outcome: str
    table: str


def _tables():
    sys.path.insert(0, str(TESTS))
    import test_bad_input
    import test_bad_input_hw
    import test_datasets_bad_input
    return test_bad_input, test_bad_input_hw, test_datasets_bad_input


def _flag(case_id: str, argv: Iterable[str]) -> str:
    """The flag a CLI case is about: the one its id names, else its last flag, else none."""
    flags = [a for a in argv if isinstance(a, str) and a.startswith("--")]
    named = [f for f in flags if f[2:] in case_id]
    return named[0] if named else flags[-1] if flags else "(positional / files)"


def rows_main(cases) -> list[Row]:
    """tests/test_bad_input.py: Case(entry, call, expect, …) rows."""
    out = []
    for c in cases:
        e = c.entry
        if e.startswith("intsim "):
            cmd, _, flag = e[len("intsim "):].partition(" ")
            out.append(Row(f"intsim {cmd}", flag or "(whole command)", c.outcome, "main"))
        elif e.startswith("config key "):
            out.append(Row("config keys", e[len("config key "):], c.outcome, "main"))
        elif e == "datapath key":
            key = c.text.split(": ")[1] if c.text.count(": ") >= 2 else "(key)"
            out.append(Row("datapath keys", key.split(".")[0], c.outcome, "main"))
        elif e in FILE_READERS:
            out.append(Row("file readers", e, c.outcome, "main"))
        else:
            out.append(Row("API", e.split(".")[0], c.outcome, "main"))
    return out


def rows_hw(cases) -> list[Row]:
    """tests/test_bad_input_hw.py: (id, argv, files, exit code, text); exit 1 is a verdict
    that must not pass, exit 2 bad input: both clear errors."""
    return [Row(f"intsim {argv[0]}", _flag(cid, argv[1:]), "clear error" if code in (1, 2)
                else "handled" if code == 0 else "recorded status", "hw")
            for cid, argv, _, code, _ in cases]


def rows_datasets(cases) -> list[Row]:
    """tests/test_datasets_bad_input.py: (id, fn, args, kwargs, files, exception, text): a
    case that gives the loader files counts under file readers (per data set), else API."""
    out = []
    for cid, fn, _, _, files, exc, _ in cases:
        outcome = "handled" if exc is None else "clear error"
        if files:
            out.append(Row("file readers", f"{cid.split('-')[0]} data files", outcome, "data"))
        else:
            out.append(Row("API", fn.__name__, outcome, "data"))
    return out


def census() -> list[Row]:
    main, hw, data = _tables()
    return rows_main(main.CASES) + rows_hw(hw.CASES) + rows_datasets(data.CASES)


def _line(name: str, counts: Counter, width: int) -> str:
    total = sum(counts.values())
    return f"{name:<{width}} {total:>5} " + " ".join(f"{counts[o]:>15}" for o in OUTCOMES)


def report(rows: list[Row], detail: bool = True) -> str:
    """The census table: per group (and, with detail, per entry) the case count by outcome."""
    groups: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for r in rows:
        groups[r.group][r.entry][r.outcome] += 1
    width = max(40, *(len(e) + 4 for g in groups.values() for e in g))
    head = f"{'entry point':<{width}} {'cases':>5} " + " ".join(f"{o:>15}" for o in OUTCOMES)
    lines = [head, "-" * len(head)]
    order = sorted(groups, key=lambda g: (not g.startswith("API"), not g.startswith("intsim"),
                                          g))
    for g in order:
        total = Counter()
        for c in groups[g].values():
            total.update(c)
        lines.append(_line(g, total, width))
        if detail:
            for e in sorted(groups[g]):
                lines.append(_line("    " + e, groups[g][e], width))
    lines.append("-" * len(head))
    lines.append(_line("all entry points", Counter(r.outcome for r in rows), width))
    by_table = Counter(r.table for r in rows)
    lines.append(f"(tables: {by_table['main']} in test_bad_input.py, {by_table['hw']} in "
                 f"test_bad_input_hw.py, {by_table['data']} in test_datasets_bad_input.py)")
    return "\n".join(lines)


class _Collect:
    """A pytest plugin that keeps each test's outcome."""

    def __init__(self):
        self.results: dict[str, str] = {}

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.results[report.nodeid] = report.outcome


def run_tests(files: Iterable[str]) -> dict[str, str]:
    import pytest
    plugin = _Collect()
    pytest.main(["-q", "-p", "no:cacheprovider", "--no-header", "-rN",
                 *[str(TESTS / f) for f in files]], plugins=[plugin])
    return plugin.results


def run_report(results: dict[str, str]) -> str:
    lines = ["", f"{'test file':<32} {'passed':>7} {'failed':>7} {'skipped':>8}"]
    per_file: dict[str, Counter] = defaultdict(Counter)
    for node, outcome in results.items():
        per_file[node.split("::")[0].split("/")[-1]][outcome] += 1
    for f in sorted(per_file):
        c = per_file[f]
        lines.append(f"{f:<32} {c['passed']:>7} {c['failed']:>7} {c['skipped']:>8}")
    lines += ["", "fault and folder tests:"]
    for node, outcome in sorted(results.items()):
        if node.split("::")[0].split("/")[-1] in FAULTS:
            lines.append(f"  {outcome:<8} {node.split('::', 1)[1]}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", action="store_true",
                    help="also run the bad-input tables and the fault tests (minutes)")
    ap.add_argument("--brief", action="store_true", help="groups only, no per-entry lines")
    args = ap.parse_args(argv)
    print(report(census(), detail=not args.brief))
    if args.run:
        results = run_tests((*TABLES, *FAULTS))
        print(run_report(results))
        return 0 if all(v != "failed" for v in results.values()) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
