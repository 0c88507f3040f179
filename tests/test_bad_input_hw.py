"""Bad input to the hardware-verification commands (golden, vectors, compare, overflow-report):
a table of cases, one line each.

Each case: (id, argv, files, exit code, text). `{tmp}` in argv is the test's folder, `{golden}`
a small golden file written once for the module (fcnet:16,16,16,4 under hdqt, one step).
`files` maps a path under {tmp} to its content: str or bytes, or a function(path, golden) that
writes it. Exit code 2 (bad input): stderr is exactly one line `intsim CMD: error: …` that
contains `text` (naming the argument or file). Exit code 1 (a verdict): stdout contains `text`
(the documented RESULT line and the note that explains it). Adding a case is one line.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from bad_input_cases import Evil, not_pwned
from intsim.cli import main as intsim_main
from intsim.hw.golden import write_golden

ACC = "step_000/backbone.fc1/fwd/acc"          # an int64 golden tensor with negative values
W = "step_000/backbone.fc1/fwd/w_x"             # a float32 golden tensor


def h5(**datasets):
    """A file writer: an HDF5 file holding `datasets` (path → array; "/" spelled "__")."""
    def write(path, golden):
        with h5py.File(path, "w") as f:
            for k, v in datasets.items():
                f[k.replace("__", "/")] = v
    return write


def from_golden(edit):
    """A file writer: the golden file's tensor(s) `edit(golden_file)` returns as {path: arr}."""
    def write(path, golden):
        with h5py.File(golden) as g, h5py.File(path, "w") as f:
            for k, v in edit(g).items():
                f[k] = v
    return write


def golden_v1(path, golden):
    """A golden file of format 1 (no trace group)."""
    shutil.copy(golden, path)
    with h5py.File(path, "a") as f:
        del f["trace"]
        f.attrs["format_version"] = 1


def npz(**arrays):
    def write(path, golden):
        np.savez(path, **{k.replace("__", "/"): v for k, v in arrays.items()})
    return write


def pickled_npz(path, golden):
    np.savez(path, a=np.array([Evil()], dtype=object))


def mine(*names, marker=None):
    """A folder writer: the folder holding files `names` (and an intsim marker of kind
    `marker`)."""
    def write(path, golden):
        Path(path).mkdir()
        for n in names:
            (Path(path) / n).write_text("mine")
        if marker:
            (Path(path) / ".intsim.json").write_text(f'{{"format": "intsim-folder", "kind": "{marker}"}}')
    return write


I4 = np.ones((2, 4), np.int64)
GO, VE, CO, OV = "golden", "vectors", "compare", "overflow-report"
CASES = [
    # ---- intsim golden
    ("golden-no-numerics", [GO, "--out", "{tmp}/g.h5"], {}, 2, "--numerics is required"),
    ("golden-numerics-missing", [GO, "--numerics", "{tmp}/nope.toml", "--out", "{tmp}/g.h5"], {}, 2, "nope.toml"),
    ("golden-numerics-bad-key", [GO, "--numerics", "{tmp}/d.toml"], {"d.toml": "[acc_fwd]\ntile_size = 3\n"}, 2,
     "acc_fwd.tile_size: unknown key"),
    ("golden-model-kind", [GO, "--numerics", "hdqt", "--model", "resnet:1,2,3"],
     {}, 2, "model: unknown model kind 'resnet'"),
    ("golden-model-arity", [GO, "--numerics", "hdqt", "--model", "fcnet:1"],
     {}, 2, "model: fcnet takes 3 to 4 integers"),
    ("golden-model-ints", [GO, "--numerics", "hdqt", "--model", "linear:4,a,5"],
     {}, 2, "model: dimensions must be integers"),
    ("golden-model-zero", [GO, "--numerics", "hdqt", "--model", "linear:4,0,5"], {}, 2, "model: K must be positive"),
    ("golden-model-kernel", [GO, "--numerics", "hdqt", "--model", "conv:1,1,2,2,1,5"], {}, 2,
     "model: the kernel does not fit the padded input"),
    ("golden-model-cnn-small", [GO, "--numerics", "hdqt", "--model", "smallcnn:1,3,3,2,2"],
     {}, 2, "smallcnn needs H, W >= 4"),
    ("golden-model-block-cout", [GO, "--numerics", "hdqt", "--model", "resnet-block:1,8,4,4,4"], {}, 2, "COUT >= C"),
    ("golden-batch-0", [GO, "--numerics", "hdqt", "--batch", "0", "--out", "{tmp}/g.h5"],
     {}, 2, "batch: expected a positive"),
    ("golden-batch-vs-spec", [GO, "--numerics", "hdqt", "--model", "linear:4,8,2", "--batch", "8"], {}, 2,
     "batch: the model spec linear:4,8,2 fixes the batch to 4"),
    ("golden-steps-neg", [GO, "--numerics", "hdqt", "--steps", "-1", "--out", "{tmp}/g.h5"],
     {}, 2, "steps: expected a positive"),
    ("golden-seed-neg", [GO, "--numerics", "hdqt", "--seed", "-3", "--out", "{tmp}/g.h5"],
     {}, 2, "seed: expected a non-negative"),
    ("golden-events-neg", [GO, "--numerics", "hdqt", "--events", "-1", "--out", "{tmp}/g.h5"],
     {}, 2, "events: expected a non-negative"),
    ("golden-select-none", [GO, "--numerics", "hdqt", "--select", "fc9/*", "--out", "{tmp}/g.h5"], {}, 2,
     "select: 'fc9/*' matches no matmul label"),
    ("golden-hex-word-1", [GO, "--numerics", "hdqt", "--hex", "{tmp}/h", "--hex-word-bits", "1"],
     {}, 2, "hex word bits"),
    ("golden-hex-word-int4", [GO, "--numerics", "hdqt", "--hex", "{tmp}/h", "--hex-word-bits", "8", "--pack-int4"],
     {}, 2,
     "--pack-int4 and --hex-word-bits exclude each other"),
    ("golden-from-missing", [GO, "--from", "{tmp}/none.h5", "--hex", "{tmp}/h"], {}, 2, "golden: no such file"),
    ("golden-from-text", [GO, "--from", "{tmp}/t.h5", "--hex", "{tmp}/h"], {"t.h5": "not hdf5"}, 2,
     "t.h5 is not a readable HDF5 file"),
    ("golden-from-no-hex", [GO, "--from", "{golden}"], {}, 2, "--from needs --hex DIR"),
    ("golden-from-model", [GO, "--from", "{golden}", "--hex", "{tmp}/h", "--model", "fcnet:4,4,4"], {}, 2,
     "--model does not apply"),
    # ---- intsim vectors
    ("vectors-numerics", [VE, "--numerics", "hdqtt"], {}, 2, "hdqtt"),
    ("vectors-rate-0", [VE, "--numerics", "hdqt", "--rate", "0", "--out", "{tmp}/v.h5"],
     {}, 2, "rate: expected a share in (0, 1]"),
    ("vectors-operands-missing", [VE, "--numerics", "hdqt", "--operands", "{tmp}/no.npz"],
     {}, 2, "operands: no such file"),
    ("vectors-operands-text", [VE, "--numerics", "hdqt", "--operands", "{tmp}/o.npz"], {"o.npz": "text"}, 2,
     "o.npz is not a readable .npz"),
    ("vectors-operands-pickle", [VE, "--numerics", "hdqt", "--operands", "{tmp}/o.npz"], {"o.npz": pickled_npz}, 2,
     "o.npz is not a readable .npz"),
    ("vectors-operands-key", [VE, "--numerics", "hdqt", "--operands", "{tmp}/o.npz"], {"o.npz": npz(x=I4)}, 2,
     "array 'x': expected names a, b or CASE/a, CASE/b"),
    ("vectors-operands-float", [VE, "--numerics", "hdqt", "--operands", "{tmp}/o.npz"],
     {"o.npz": npz(a=I4 * 0.5, b=I4.T)}, 2, "a must be a 2-D integer array of codes"),
    ("vectors-operands-k", [VE, "--numerics", "hdqt", "--operands", "{tmp}/o.npz"], {"o.npz": npz(a=I4, b=I4)}, 2,
     "do not share K"),
    ("vectors-operands-half", [VE, "--numerics", "hdqt", "--operands", "{tmp}/o.npz"], {"o.npz": npz(c__a=I4)}, 2,
     "case 'c' needs both a and b"),
    ("vectors-operands-range", [VE, "--numerics", "hdqt", "--kinds", "grad_in", "--operands", "{tmp}/o.npz"],
     {"o.npz": npz(a=I4 * 8, b=I4.T)}, 2, "user/a has values [8, 8] outside the grad_in operand range [-7, 7]"),
    # ---- intsim compare: bad input
    ("compare-golden-missing", [CO, "{tmp}/none.h5", "{golden}"], {}, 2, "golden: no such file"),
    ("compare-dump-missing", [CO, "{golden}", "{tmp}/none.h5"], {}, 2, "dump: no such file"),
    ("compare-dump-text", [CO, "{golden}", "{tmp}/d.h5"], {"d.h5": "hello"}, 2, "dump: "),
    ("compare-dump-truncated", [CO, "{golden}", "{tmp}/d.h5"], {"d.h5": lambda p, g: Path(p).write_bytes(
        Path(g).read_bytes()[:3000])}, 2, "d.h5 is not a readable HDF5 file"),
    ("compare-golden-plain", [CO, "{tmp}/p.h5", "{golden}"], {"p.h5": h5(x=np.zeros(2))}, 2,
     "is not an intsim golden file"),
    ("compare-dump-folder", [CO, "{golden}", "{tmp}"], {}, 2, "is a folder, expected an HDF5 file"),
    ("compare-expect-none", [CO, "{golden}", "{golden}", "--expect", "zzz*"],
     {}, 2, "--expect 'zzz*': matches no tensor"),
    # ---- intsim compare: verdicts that must not pass
    ("compare-empty-dump", [CO, "{golden}", "{tmp}/d.h5"], {"d.h5": h5()}, 1, "RESULT: NOTHING COMPARED"),
    ("compare-only-unknown", [CO, "{golden}", "{tmp}/d.h5"], {"d.h5": h5(step_000__nope__fwd__acc=np.zeros(3))}, 1,
     "RESULT: NOTHING COMPARED"),
    ("compare-typo-path", [CO, "{golden}", "{tmp}/d.h5"],
     {"d.h5": from_golden(lambda g: {ACC: g[ACC][()], ACC + "x": g[ACC][()]})}, 1, "RESULT: UNKNOWN PATHS"),
    ("compare-uint64-patterns", [CO, "{golden}", "{tmp}/d.h5"],
     {"d.h5": from_golden(lambda g: {ACC: g[ACC][()].astype(np.int64).view(np.uint64)})}, 1,
     "uint64 values above 2^63−1 are not negative numbers"),
    ("compare-float64-lossy", [CO, "{golden}", "{tmp}/d.h5"],
     {"d.h5": from_golden(lambda g: {W: g[W][()].astype(np.float64) + 1e-12})}, 1, "values are not float32 values"),
    ("compare-float-as-int", [CO, "{golden}", "{tmp}/d.h5"],
     {"d.h5": from_golden(lambda g: {W: g[W][()].view(np.int32)})}, 1, "pass --bit-patterns if they are IEEE-754"),
    ("compare-int-nan", [CO, "{golden}", "{tmp}/d.h5"],
     {"d.h5": from_golden(lambda g: {ACC: np.full(g[ACC].shape, np.nan)})}, 1, "non-integral, infinite or NaN"),
    ("compare-int-strings", [CO, "{golden}", "{tmp}/d.h5"],
     {"d.h5": from_golden(lambda g: {ACC: np.full(g[ACC].shape, b"x")})}, 1, "cannot hold integers"),
    ("compare-bits-overflow", [CO, "{golden}", "{tmp}/d.h5", "--bit-patterns"],
     {"d.h5": from_golden(lambda g: {ACC: g[ACC][()] + (1 << 40)})}, 1, "RESULT: MISMATCH"),
    ("compare-expect-missing", [CO, "{golden}", "{tmp}/d.h5", "--expect", "*/acc_register"],
     {"d.h5": from_golden(lambda g: {ACC: g[ACC][()]})}, 1, "RESULT: EXPECTED MISSING"),
    # ---- intsim overflow-report
    ("overflow-no-input", [OV], {}, 2, "give INPUT trace files/run folders or --train"),
    ("overflow-missing", [OV, "{tmp}/none.h5"], {}, 2, "none.h5"),
    ("overflow-text", [OV, "{tmp}/t.h5", "--out", "{tmp}/o"], {"t.h5": "x"}, 2, "t.h5 is not a readable HDF5 file"),
    ("overflow-empty-trace", [OV, "{tmp}/t.h5", "--out", "{tmp}/o"],
     {"t.h5": h5()}, 2, "holds no integer-matmul records"),
    ("overflow-fp32-trace", [OV, "{tmp}/t.h5", "--out", "{tmp}/o"], {"t.h5": h5(trace__quantize__step=np.zeros(1))}, 2,
     "holds no integer-matmul records"),
    ("overflow-golden-v1", [OV, "{tmp}/g1.h5", "--out", "{tmp}/o"], {"g1.h5": golden_v1}, 2,
     "is a golden file without a trace (format version 1)"),
    ("overflow-model-no-train", [OV, "--model", "linear:2,3,4"], {}, 2, "--model needs --train NUMERICS"),
    ("overflow-model-bad", [OV, "--train", "hdqt", "--model", "linear:2", "--out", "{tmp}/o"], {}, 2,
     "model: linear takes 3 integers"),
    ("overflow-names", [OV, "{golden}", "--names", "a", "b"], {}, 2, "--names needs one name per input"),
    ("overflow-out-foreign", [OV, "{golden}", "--out", "{tmp}/o"], {"o": mine("overflow_summary.csv")}, 2,
     "--out {tmp}/o is not empty (overflow_summary.csv) and was not made by intsim"),
    ("overflow-out-run-folder", [OV, "{golden}", "--out", "{tmp}/o"],
     {"o": mine("config.json", marker="run")}, 2,
     "is an intsim run folder, not an overflow-report folder"),
    ("overflow-train-missing", [OV, "--train", "{tmp}/dp.toml", "--out", "{tmp}/o"], {}, 2, "dp.toml"),
]


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    out = tmp_path_factory.mktemp("bad-hw") / "golden.h5"
    write_golden("hdqt", "fcnet:16,16,16,4", batch=4, steps=1, seed=0, out=str(out))
    return str(out)


def test_case_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, tmp_path, golden, capsys):
    _, argv, files, code, text = case
    for rel, content in files.items():
        p = tmp_path / rel
        if callable(content):
            content(str(p), golden)
        else:
            (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{golden}", golden) for a in argv]
    text = text.replace("{tmp}", str(tmp_path))
    rc = intsim_main(argv)
    out, err = capsys.readouterr()
    assert rc == code, (out + err)[-1500:]
    if code == 2:
        if "o" not in files:             # bad input makes no output folder
            assert not (tmp_path / "o").exists(), sorted(p.name for p in (tmp_path / "o").iterdir())
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"intsim {argv[0]}: error: "), err
        assert text in lines[0], f"expected {text!r} in:\n{lines[0]}"
        assert "Traceback" not in err
    else:
        assert text in out, f"expected {text!r} in the report:\n{out[-1500:]}"
        assert "RESULT: MATCH" not in out
    not_pwned()
