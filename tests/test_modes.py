"""The vocabulary (core.modes), the one numerics resolver (core.resolve) and the typed run
config behave as their docstrings say."""
import dataclasses

import pytest

from intsim import Accumulator, preset
from intsim.core.modes import (ACCUMULATORS, OPERANDS, PRODUCTS, AccMode, MatmulKind, Rounding,
                               label, split_label)
from intsim.core.numerics import Numerics
from intsim.core.resolve import apply_overrides, resolve_numerics
from intsim.experiments.config import ConfigError, RunConfig, resolve_config


def test_enums_behave_as_their_values():
    assert AccMode.SATURATE == "saturate" and hash(AccMode.WRAP) == hash("wrap")
    assert f"{Rounding.STOCHASTIC}" == "stochastic" and str(MatmulKind.GRAD_W) == "grad_w"
    assert Accumulator(8, 32, "wrap").mode is AccMode.WRAP
    with pytest.raises(ValueError, match="mode: expected one of"):
        Accumulator(8, 32, "saturating")


def test_products_cover_every_numerics_field_once():
    fields = {f.name for f in dataclasses.fields(Numerics)}
    roles = [r.field for p in PRODUCTS.values() for r in p.operands]
    assert sorted(roles) == sorted(OPERANDS) and set(OPERANDS) <= fields
    assert set(ACCUMULATORS) <= fields and len(set(ACCUMULATORS)) == 3
    assert PRODUCTS[MatmulKind.GRAD_IN].right.reuses == "w_fwd"
    assert PRODUCTS[MatmulKind.GRAD_W].right.reuses == "a_fwd"


@pytest.mark.parametrize("layer", ["backbone.fc1", "head", ""])
def test_labels_round_trip(layer):
    for kind in MatmulKind:
        assert split_label(label(layer, kind)) == (layer, kind, None)
        for role in PRODUCTS[kind].operands:
            assert split_label(label(layer, kind, role.letter)) == (layer, kind, role.letter)
    assert split_label("something/else") == ("something/else", None, None)


def test_resolver_names_and_overrides():
    assert resolve_numerics("hdqt:hadamard=none").numerics.name == "hdqt-had_none"
    nm = resolve_numerics("hdqt", {"acc_fwd": {"bits": 12, "tile": "none"}}).numerics
    assert nm.acc_fwd == Accumulator(12, None, "saturate", tile_sum_bits=32)
    assert nm.name == "hdqt*" and nm.acc_in == preset("hdqt").acc_in
    assert apply_overrides(preset("hdqt"), {"w_fwd": "none", "acc_fwd": "none"}).w_fwd is None
    with pytest.raises(ValueError, match="acc_fwd: the forward matmul .* float operand"):
        apply_overrides(preset("hdqt"), {"w_fwd": "none"})      # the accumulator would be unused
    with pytest.raises(ValueError, match=r"numerics_overrides\.acc_fwd\.bits"):
        apply_overrides(preset("hdqt"), {"acc_fwd": {"bits": 1}})
    with pytest.raises(ValueError, match="neither a preset"):
        resolve_numerics("hdqt2")


def test_run_config_is_typed_and_reads_like_a_dict(tmp_path):
    cfg = resolve_config({"dataset": "synthetic", "method": "icarl", "numerics": "fp32",
                          "out": str(tmp_path)})
    assert isinstance(cfg, RunConfig) and cfg["epochs"] == cfg.epochs == 100
    assert dict(cfg)["method"] == "icarl" and {**cfg}["numerics"] == "fp32"
    cfg["epochs"] = 3
    assert cfg.epochs == 3
    with pytest.raises(ConfigError, match="epochs: must be >= 0"):
        cfg.epochs = -1
    with pytest.raises(ConfigError, match="unknown setting"):
        cfg["epoch"] = 1
    assert cfg.train_settings().epochs == 3
