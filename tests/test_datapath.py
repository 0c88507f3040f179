"""Datapath TOML files ↔ Numerics: exact round trips, errors that name the key."""
import dataclasses
import json
import pathlib

import pytest
from hypothesis import given

import intsim
from intsim import Accumulator, Numerics, QuantSpec, preset
from intsim.core.numerics import Datapath, dumps, from_mapping, load, loads
from intsim.core.resolve import resolve_numerics as resolve
from intsim.core.presets import PRESET_NAMES
from intsim.testing import datapaths, numerics_specs

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_every_preset_round_trips(tmp_path, name):
    nm = preset(name)
    path = tmp_path / f"{name}.toml"
    path.write_text(nm.to_toml())
    back = Numerics.from_toml(path)
    assert back == nm
    assert back.to_toml() == nm.to_toml()          # the text is canonical too


@given(numerics_specs())
def test_generated_numerics_round_trip(nm):
    assert loads(nm.to_toml()).numerics == nm


@given(numerics_specs(narrow=True, allow_float=False))
def test_narrow_accumulators_round_trip_with_the_opt_in(nm):
    text = nm.to_toml()
    assert loads(text).numerics == nm
    assert ("allow_narrow_accumulators = true" in text) == any(
        "allow_narrow" in line for line in text.splitlines())


@given(datapaths())
def test_seed_round_trips(dp):
    back = loads(dumps(dp.numerics, seed=dp.seed))
    assert (back.numerics, back.seed) == (dp.numerics, dp.seed)


@pytest.mark.parametrize("fname, name", [("datapath_hdqt_paper.toml", "hdqt_paper"),
                                         ("datapath_hdqt.toml", "hdqt")])
def test_shipped_examples_are_the_presets(fname, name):
    dp = load(EXAMPLES / fname)
    assert dp.numerics == preset(name)
    assert dp.seed == 0
    assert Numerics.from_toml(str(EXAMPLES / fname)) == preset(name)


def _base() -> str:
    return preset("hdqt").to_toml()


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("[acc_fwd]\nbits = 8\ntile = 32", "[acc_fwd]\nbits = 8\ntile_size = 32"),
     "acc_fwd.tile_size: unknown key"),
    (lambda t: "flavour = 1\n" + t, "flavour: unknown key"),
    (lambda t: t + "\n[acc_out]\nbits = 8\n", "acc_out: unknown key"),
    (lambda t: t.replace("[w_fwd]\nbits = 4", "[w_fwd]\nbits = 17"), "w_fwd.bits"),
    (lambda t: t.replace("[w_fwd]\nbits = 4", "[w_fwd]\nbits = true"), "w_fwd.bits"),
    (lambda t: t.replace("[acc_w]\nbits = 8", "[acc_w]\nbits = 63"), "acc_w.bits"),
    (lambda t: t.replace('rounding = "nearest"', 'rounding = "banker"', 1), "w_fwd.rounding"),
    (lambda t: t.replace('mode = "saturate"', 'mode = "clip"', 1), "acc_fwd.mode"),
    (lambda t: t.replace("clip = 0.975", "clip = -1.0", 1), "w_fwd.clip"),
    (lambda t: t.replace('signed = true', 'signed = "yes"', 1), "w_fwd.signed"),
    (lambda t: t.replace('scale = "dynamic"', 'scale = "log"', 1), "w_fwd.scale"),
    (lambda t: t.replace('scale = "dynamic"', 'scale = 0.0', 1), "w_fwd.scale"),
    (lambda t: t.replace("sr_bits = 16", "sr_bits = 33", 1), "w_fwd.sr_bits"),
    (lambda t: t.replace("tile = 32", "tile = 0", 1), "acc_fwd.tile"),
    (lambda t: t.replace("tile_sum_bits = 32", "tile_sum_bits = 64", 1), "acc_fwd.tile_sum_bits"),
    (lambda t: t.replace('hadamard = "pad"', 'hadamard = "sylvester"'), "hadamard"),
    (lambda t: t.replace('format = "int"', 'format = "log2"', 1), "w_fwd"),
    (lambda t: t.replace('[w_fwd]\nbits = 4\nrounding = "nearest"\nclip = 0.975\nsigned = true'
                         '\nsymmetric = true\nscale = "dynamic"',
                         '[w_fwd]\nbits = 8\nrounding = "nearest"\nclip = 0.975\nsigned = true'
                         '\nsymmetric = true\nscale = "sawb"'), "w_fwd.scale"),
    # one worst-case product 15·7 = 105 does not fit a 6-bit register (max 31)
    (lambda t: t.replace("[acc_fwd]\nbits = 8", "[acc_fwd]\nbits = 6"), "acc_fwd.bits"),
    (lambda t: t.replace("tile_sum_bits = 32", "tile_sum_bits = 6", 1), "acc_fwd.tile_sum_bits"),
    (lambda t: t.replace("[acc_fwd]", "acc_fwd = 3\n[acc_fwdx]"), "acc_fwd"),
    (lambda t: "seed = -1\n" + t, "seed"),
    (lambda t: t + "\n[[w_fwd]]\n", "invalid TOML"),
])
def test_errors_name_the_key(edit, message):
    text = edit(_base())
    with pytest.raises(ValueError) as err:
        loads(text)
    assert str(err.value).startswith(message), str(err.value)


def test_narrow_accumulator_opt_in_and_message():
    text = _base().replace("[acc_fwd]\nbits = 8", "[acc_fwd]\nbits = 4")
    with pytest.raises(ValueError, match=r"acc_fwd\.bits: a 4-bit register \(max 7\) cannot "
                                         r"hold a single worst-case product a_fwd × w_fwd "
                                         r"\(up to 105\)"):
        loads(text)
    nm = loads("allow_narrow_accumulators = true\n" + text).numerics
    assert nm.acc_fwd.bits == 4
    assert "allow_narrow_accumulators = true" in nm.to_toml()
    # exact accumulators never overflow, so any width is accepted
    loads(text.replace('[acc_fwd]\nbits = 4\ntile = 32\nmode = "saturate"',
                       '[acc_fwd]\nbits = 4\ntile = 32\nmode = "exact"'))


def test_absent_tables_and_defaults():
    dp = loads('name = "tiny"\n[w_fwd]\nbits = 3\n[a_fwd]\nbits = 3\n[acc_fwd]\nbits = 12\n')
    nm = dp.numerics
    assert nm.w_fwd == QuantSpec(bits=3) == nm.a_fwd
    assert nm.w_bwd is None and nm.g_in is None and nm.acc_in is None and nm.hadamard is None
    assert nm.acc_fwd == Accumulator(bits=12, tile=32, mode="saturate", tile_sum_bits=None)
    assert dp.seed is None and nm.name == "tiny"


def test_words_for_none_and_fixed_scale():
    t = ('[w_fwd]\nbits = 4\n[g_in]\nbits = 5\nsigned = "auto"\nscale = 0.125\n'
         '[acc_in]\nbits = 20\ntile = "none"\ntile_sum_bits = "none"\n')
    nm = loads(t).numerics
    assert nm.g_in.signed is None and nm.g_in.scale == 0.125
    assert nm.acc_in.tile is None and nm.acc_in.tile_sum_bits is None
    assert loads(nm.to_toml()).numerics == nm


def test_odd_names_are_escaped():
    nm = preset("int4").replace(name='a "quoted" \\ name\twith\x7f controls ✓')
    assert loads(nm.to_toml()).numerics == nm


def test_file_errors_name_the_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[acc_fwd]\nwidth = 8\n")
    with pytest.raises(ValueError, match=r"bad\.toml: acc_fwd\.width: unknown key"):
        load(p)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.toml")


def test_from_mapping_reads_asdict_numerics_spec():
    """A CIL run's config.json stores dataclasses.asdict(numerics) (None → null)."""
    for name in PRESET_NAMES:
        d = json.loads(json.dumps(dataclasses.asdict(preset(name))))
        assert from_mapping(d).numerics == preset(name)


def test_resolve_presets_files_and_hadamard_override(tmp_path):
    assert resolve("hdqt").numerics == preset("hdqt")
    p = tmp_path / "x.toml"
    p.write_text(preset("int4").to_toml())
    assert resolve(str(p)).numerics == preset("int4")
    nm = resolve("hdqt:hadamard=none").numerics
    assert nm == preset("hdqt").replace(hadamard=None, name="hdqt-had_none")
    with pytest.raises(ValueError, match="neither a preset"):
        resolve("nonsense")
    assert isinstance(resolve(preset("luq")), Datapath)


def test_numerics_methods_are_exported():
    assert intsim.Numerics.from_toml is not None
    lines = preset("fp32").to_toml().splitlines()
    assert not [x for x in lines if x.startswith("[")]      # all float: no tables
    assert loads(preset("fp32").to_toml()).numerics == preset("fp32")


def test_new_top_level_fields_round_trip_and_old_files_keep_the_defaults():
    nm = preset("hdqt").replace(rescale_order="left_to_right", act_scale="per_batch",
                                ste="code_max", hadamard="off_divide")
    assert loads(nm.to_toml()).numerics == nm
    text = preset("hdqt").to_toml()
    old = "\n".join(line for line in text.splitlines()
                    if not line.startswith(("rescale_order", "act_scale", "ste")))
    back = loads(old).numerics
    assert back == preset("hdqt") and back.rescale_order == "scale_product"
    assert back.act_scale == "per_image" and back.ste == "clipped"
    with pytest.raises(ValueError, match="^ste: expected one of"):
        loads(text.replace('ste = "clipped"', 'ste = "seven"'))
    with pytest.raises(ValueError, match="off_divide"):
        loads(text.replace('hadamard = "pad"', 'hadamard = "off"'))


def test_hadoff_preset_and_overrides():
    assert preset("hdqt_paper_hadoff") == preset("hdqt_paper").replace(
        hadamard="off_divide", name="hdqt_paper_hadoff")
    nm = resolve("hdqt_paper", {"ste": "code_max", "act_scale": "per_image"}).numerics
    assert nm.ste == "code_max" and nm.act_scale == "per_image"
    with pytest.raises(ValueError, match="numerics_overrides.rescale_order"):
        resolve("hdqt", {"rescale_order": "backwards"})
