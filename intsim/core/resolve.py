"""The one way to name a layer's numerics: a preset, a datapath file, a Numerics — plus overrides.

    resolve_numerics("hdqt")                                   the preset
    resolve_numerics("my_datapath.toml", base_dir=grid_dir)    a datapath file (relative to base_dir)
    resolve_numerics("hdqt", {"acc_fwd": {"bits": 12}, "hadamard": "none"})
    resolve_numerics("hdqt:hadamard=none")       same as {"hadamard": "none"}, named hdqt-had_none

`intsim cil`, `intsim sweep`, `intsim golden` and `intsim overflow-report` all call it, so a
name means the same thing everywhere. Overrides (a run's `numerics_overrides` table) use the
datapath file's vocabulary (intsim.core.numerics):

    operand (w_fwd a_fwd w_bwd a_bwd g_in g_w) or accumulator (acc_fwd acc_in acc_w)
        -> a table of QuantSpec / Accumulator fields merged over the current spec (over the
           class defaults when there is none), or "none" to remove it (float32)
    hadamard -> "none" | "largest_pow2" | "pad" | "off_divide"
    rescale_order, act_scale, ste -> a word of RescaleOrder, ActScale, SteRule (core/modes)
    name     -> the name of the result (default: the base name + "*")
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from intsim.core.accumulator import Accumulator
from intsim.core.modes import ACCUMULATORS, OPERANDS
from intsim.core.numerics import (CHOICE_FIELDS, Datapath, Numerics, hadamard_value, load,
                                  table_value)
from intsim.core.presets import PRESET_NAMES, preset
from intsim.core.quantizer import QuantSpec

NumericsSource = Union[str, os.PathLike, Numerics, Datapath]
OVERRIDE_KEYS = OPERANDS + ACCUMULATORS + ("hadamard", *CHOICE_FIELDS, "name")


def numerics_source_path(source: Union[str, os.PathLike],
                         base_dir: Union[str, os.PathLike, None] = None) -> Optional[Path]:
    """The datapath file a string names (absolute; relative names are taken from base_dir,
    else the working folder), or None when it is a preset name (optionally with the
    ":hadamard=RULE" suffix)."""
    s = os.fspath(source)
    if s in PRESET_NAMES or _split_hadamard_suffix(s)[0] in PRESET_NAMES:
        return None
    p = Path(s).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    if not (p.is_file() or p.suffix == ".toml"):
        raise ValueError(f"numerics: {s!r} is neither a preset ({', '.join(PRESET_NAMES)}) "
                         "nor a datapath TOML file")
    return p.resolve() if p.exists() else p


def resolve_numerics(source: NumericsSource, overrides: Optional[Mapping[str, Any]] = None, *,
                     base_dir: Union[str, os.PathLike, None] = None) -> Datapath:
    """The Datapath (numerics, SR seed, source text) of `source` with `overrides` applied
    (module docstring). Errors are ValueError / FileNotFoundError naming the source or the
    override key."""
    if isinstance(source, Datapath):
        dp = source
    elif isinstance(source, Numerics):
        dp = Datapath(source)
    elif isinstance(source, (str, os.PathLike)):
        name, suffix = _split_hadamard_suffix(os.fspath(source))
        path = numerics_source_path(name, base_dir)
        dp = Datapath(preset(name)) if path is None else load(path)
        if suffix is not None:
            overrides = {"hadamard": suffix, "name": f"{dp.numerics.name}-had_{suffix}",
                         **(overrides or {})}
    else:
        raise ValueError(f"numerics: expected a preset name, a datapath file, a Numerics or a "
                         f"Datapath, got {source!r}")
    if overrides:
        dp = dataclasses.replace(dp, numerics=apply_overrides(dp.numerics, overrides), text=None)
    return dp


def _split_hadamard_suffix(s: str) -> tuple[str, Optional[str]]:
    """("hdqt", "none") for "hdqt:hadamard=none"; (s, None) without the suffix."""
    if ":hadamard=" not in s:
        return s, None
    s, rule = s.rsplit(":hadamard=", 1)
    hadamard_value(rule, f"{s}:hadamard")
    return s, rule


def apply_overrides(base: Numerics, overrides: Mapping[str, Any]) -> Numerics:
    """`base` with the fields named by `overrides` replaced (module docstring); errors start
    with "numerics_overrides.<key>"."""
    if not isinstance(overrides, Mapping):
        raise ValueError(f"numerics_overrides: expected a table, got {overrides!r}")
    bad = sorted(set(overrides) - set(OVERRIDE_KEYS))
    if bad:
        raise ValueError(f"numerics_overrides: unknown key(s) {bad}; known: "
                         f"{', '.join(OVERRIDE_KEYS)}")
    changes: dict[str, Any] = {}
    for key, v in overrides.items():
        where = f"numerics_overrides.{key}"
        if key in OPERANDS or key in ACCUMULATORS:
            cls = QuantSpec if key in OPERANDS else Accumulator
            if v is None or v == "none":
                changes[key] = None
                continue
            if not isinstance(v, Mapping):
                raise ValueError(f"{where}: expected a table of {cls.__name__} fields or "
                                 f"\"none\", got {v!r}")
            fields = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(v) - fields)
            if unknown:
                raise ValueError(f"{where}: unknown field(s) {unknown}; known: "
                                 f"{', '.join(sorted(fields))}")
            changes[key] = table_value(key, v, base=getattr(base, key), toml=False, where=where)
        elif key == "hadamard":
            changes[key] = hadamard_value("none" if v is None else v, where)
        elif key in CHOICE_FIELDS:
            try:
                changes[key] = CHOICE_FIELDS[key].parse(v, where)
            except ValueError as e:
                raise ValueError(str(e)) from None
        elif not isinstance(v, str):
            raise ValueError(f"{where}: expected a string, got {v!r}")
        else:
            changes[key] = v
    changes.setdefault("name", f"{base.name}*")
    try:
        return base.replace(**changes)
    except (TypeError, ValueError) as e:
        raise ValueError(f"numerics_overrides: {e}") from None
