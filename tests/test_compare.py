"""`intsim compare`: planted single-bit flips are found at the right tensor and element."""
import json
import shutil

import h5py
import numpy as np
import pytest

from intsim.cli import main as hw_main
from intsim.hw.compare import compare, format_report
from intsim.formats.golden_file import read_op_order
from intsim.hw.golden import write_golden


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    d = tmp_path_factory.mktemp("cmp")
    out = str(d / "golden.h5")
    write_golden("hdqt", "fcnet:16,16,16,4", batch=8, steps=2, seed=0, out=out)
    with h5py.File(out) as f:
        order = read_op_order(f)
    return out, order, d


def _copy(golden, d, name="dump.h5"):
    dst = str(d / name)
    shutil.copy(golden, dst)
    return dst


def _flip(path, tensor, flat, bit):
    """Flip one bit of element `flat` of `tensor` (integers in two's complement, floats in
    their IEEE pattern)."""
    with h5py.File(path, "r+") as f:
        d = f[tensor]
        v = d[()]
        flatv = v.reshape(-1).copy()
        if v.dtype.kind == "f":
            pat = flatv.view(np.uint32)
            pat[flat] ^= np.uint32(1 << bit)
            flatv = pat.view(np.float32)
        else:
            flatv[flat] = flatv.dtype.type(int(flatv[flat]) ^ (1 << bit)) \
                if v.dtype.kind == "u" else np.int64(int(flatv[flat]) ^ (1 << bit)).astype(
                    flatv.dtype)
        d[...] = flatv.reshape(v.shape)
    return v.reshape(-1)[flat]


def test_identical_files_match(golden):
    out, order, d = golden
    res = compare(out, _copy(out, d, "same.h5"))
    assert res.ok and res.exit_code(require_all=True) == 0
    assert len(res.compared) == len(order) and not res.missing and not res.extra
    assert "RESULT: MATCH" in format_report(res)


@pytest.mark.parametrize("where", ["first", "middle_int", "middle_float", "last_element"])
def test_planted_single_bit_flip_is_found(golden, where):
    out, order, d = golden
    dump = _copy(out, d, f"flip_{where}.h5")
    with h5py.File(out) as f:
        ints = [p for p in order if f[p].dtype.kind in "iu" and f[p].size > 5]
        if where == "first":
            tensor, flat, bit = order[0], 0, 0                       # first tensor, element 0
        elif where == "middle_int":
            tensor = [p for p in ints if p.endswith("/acc")][len(ints) // 20]
            flat, bit = 5, 2
        elif where == "middle_float":
            tensor, flat, bit = order[len(order) // 2], 3, 13
            assert f[tensor].dtype.kind == "f", tensor
        else:
            tensor = order[-1]                                       # last tensor, last element
            flat, bit = f[tensor].size - 1, 31
        shape = f[tensor].shape
    expected = _flip(dump, tensor, flat, bit)
    res = compare(out, dump)
    assert not res.ok and res.exit_code() == 1
    assert len(res.mismatches) == 1                       # exactly the planted one
    m = res.first
    assert m.path == tensor and m.count == 1 and m.flat_index == flat
    assert m.index == tuple(int(i) for i in np.unravel_index(flat, shape))
    assert m.op_index == order.index(tensor)
    assert m.differing_bits == (bit,)
    if isinstance(m.expected, float):
        assert m.expected == float(expected)
    else:
        assert m.expected == int(expected)
    text = format_report(res)
    assert f"FIRST MISMATCH (execution order, op {m.op_index}): {tensor}" in text
    assert f"element {list(m.index)}" in text and "RESULT: MISMATCH" in text


def test_first_mismatch_is_first_in_execution_order(golden):
    out, order, d = golden
    dump = _copy(out, d, "two.h5")
    late, early = order[-3], order[10]
    _flip(dump, late, 0, 1)
    _flip(dump, early, 0, 1)
    res = compare(out, dump)
    assert [m.path for m in res.mismatches] == [early, late]
    assert res.first.path == early


def test_missing_tensors_are_listed_not_skipped(golden, capsys):
    out, order, d = golden
    dump = str(d / "subset.h5")
    keep = [p for p in order if "/fwd/" in p]
    with h5py.File(out) as f, h5py.File(dump, "w") as g:
        for p in keep:
            g.create_dataset(p, data=f[p][()])           # no attributes: not needed
        g.create_dataset("step_000/extra/thing/x", data=np.zeros(3))
    res = compare(out, dump, allow_extra=True)
    assert res.ok and res.compared == keep
    assert res.missing == [p for p in order if p not in keep]
    assert res.extra == ["step_000/extra/thing/x"]
    assert hw_main(["compare", out, dump, "--allow-extra"]) == 0
    text = capsys.readouterr().out
    assert f"missing from the dump ({len(res.missing)})" in text
    assert hw_main(["compare", out, dump, "--require-all", "--allow-extra"]) == 1
    # an unknown dump path (a typo would never be checked) fails without --allow-extra
    assert compare(out, dump).verdict == "UNKNOWN PATHS"
    assert hw_main(["compare", out, dump]) == 1
    assert "RESULT: UNKNOWN PATHS" in capsys.readouterr().out


def test_dump_formats(golden):
    """Flat arrays, other integer widths, raw register patterns, shape errors."""
    out, order, d = golden
    dump = str(d / "formats.h5")
    acc = next(p for p in order if p.endswith("fwd/acc"))
    codes = next(p for p in order if p.endswith("fwd/w_codes"))
    with h5py.File(out) as f, h5py.File(dump, "w") as g:
        g.create_dataset(acc, data=f[acc][()].reshape(-1).astype(np.int32))      # flat int32
        raw = f[codes][()].astype(np.int64) & 0xF                                # raw nibbles
        g.create_dataset(codes, data=raw.astype(np.uint8))
        y = next(p for p in order if p.endswith("fwd/y"))
        g.create_dataset(y, data=f[y][()][..., :-1])                              # wrong size
    res = compare(out, dump)
    paths = [m.path for m in res.mismatches]
    assert acc not in paths                                     # flat, same values: match
    assert codes in paths and y in paths
    assert "elements" in next(m for m in res.mismatches if m.path == y).note
    res2 = compare(out, dump, bit_patterns=True)
    assert codes not in [m.path for m in res2.mismatches]       # equal modulo 2^4


def test_cli_compare_json_and_errors(golden, tmp_path, capsys):
    out, order, d = golden
    dump = _copy(out, d, "json.h5")
    _flip(dump, order[20], 0, 0)
    js = tmp_path / "r.json"
    assert hw_main(["compare", out, dump, "--json", str(js)]) == 1
    r = json.loads(js.read_text())
    assert r["ok"] is False and r["first"]["path"] == order[20]
    assert r["mismatches"][0]["differing_bits"] == [0]
    assert hw_main(["compare", out, str(tmp_path / "nope.h5")]) == 2
    assert hw_main(["compare", dump.replace("json", "nope"), out]) == 2
    assert "intsim compare: error" in capsys.readouterr().err
    not_golden = str(tmp_path / "plain.h5")
    with h5py.File(not_golden, "w") as g:
        g.create_dataset("x", data=[1])
    assert hw_main(["compare", not_golden, out]) == 2
