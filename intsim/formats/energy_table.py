"""The energy table file (TOML): per-operation energies in pJ, memory levels, placement.

    name = "my-process"                 # free text
    source = "where the numbers come from"
    random_bit = 0.004                  # optional: pJ per random bit of stochastic rounding

    [int_add]                           # one table per operation kind (intsim.core.modes.OpKind):
    8 = 0.03                            #   int_add int_mul fp_add fp_mul (required) and
    32 = 0.1                            #   int_shift int_sat fp_div fp_cmp fp_special convert
                                        #   (optional); keys are widths in bits (an int_mul key w
                                        #   is a w×w multiply), values pJ per operation
    [memory]
    word_bits = 64                      # bits per access
    sram = 20.0                         # pJ per access of each level (any names)
    dram = 1300.0

    [placement]                         # tensor class -> level (intsim.core.modes.TensorClass:
    default = "sram"                    #   inputs activations kept weights master gradients
    exemplars = "dram"                  #   exemplars); "default" for the classes not named

How widths and kinds a table lacks are priced: intsim.core.energy. The default table,
DEFAULT_TABLE (energy_45nm.toml next to this module, shipped as package data), holds the 45 nm
figures of Horowitz, ISSCC 2014, with its source in the file. Errors name the file and the key.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from intsim.core.energy import EnergyTable
from intsim.core.modes import OpKind, TensorClass

DEFAULT_TABLE = Path(__file__).with_name("energy_45nm.toml")
TOP_KEYS = ("name", "source", "random_bit", "memory", "placement")


def load_energy_table(path: Union[None, str, os.PathLike] = None) -> EnergyTable:
    """The EnergyTable of a TOML file (None: the default 45 nm table)."""
    p = DEFAULT_TABLE if path is None else Path(path).expanduser()
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"energy table: no such file {p}") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{p}: not a valid TOML energy table ({e})") from None
    try:
        return energy_table_from_mapping(doc)
    except ValueError as e:
        raise ValueError(f"{p}: {e}") from None


def _number(where: str, v: Any, positive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or (positive and v == 0):
        raise ValueError(f"{where}: expected a {'positive' if positive else 'non-negative'} "
                         f"number (pJ), got {v!r}")
    return float(v)


def _width(where: str, key: str) -> int:
    try:
        w = int(key)
    except ValueError:
        w = 0
    if w < 1 or str(w) != key.strip():
        raise ValueError(f"{where}: expected a width in bits (a positive integer key), got "
                         f"{key!r}")
    return w


def energy_table_from_mapping(doc: Mapping[str, Any]) -> EnergyTable:
    """An EnergyTable from a parsed TOML document (module docstring); ValueErrors name the key."""
    kinds = OpKind.values()
    for key in doc:
        if key not in TOP_KEYS and key not in kinds:
            raise ValueError(f"{key}: unknown key (expected one of "
                             f"{', '.join(TOP_KEYS + tuple(k for k in kinds if k != 'random_bit'))})")
    ops: dict = {}
    for kind in kinds:
        if kind not in doc or kind == OpKind.RANDOM_BIT:
            continue
        body = doc[kind]
        if not isinstance(body, Mapping) or not body:
            raise ValueError(f"{kind}: expected a table of width = pJ entries, got {body!r}")
        ops[OpKind(kind)] = {_width(f"{kind}.{k}", k): _number(f"{kind}.{k}", v, True)
                             for k, v in body.items()}
    memory = doc.get("memory")
    if not isinstance(memory, Mapping):
        raise ValueError("memory: expected a table with word_bits and one pJ entry per level")
    word_bits = memory.get("word_bits", 64)
    if isinstance(word_bits, bool) or not isinstance(word_bits, int) or word_bits < 1:
        raise ValueError(f"memory.word_bits: expected a positive integer, got {word_bits!r}")
    levels = {k: _number(f"memory.{k}", v) for k, v in memory.items() if k != "word_bits"}
    if not levels:
        raise ValueError("memory: expected at least one level (e.g. sram = 20.0)")
    placement = doc.get("placement", {"default": next(iter(levels))})
    if not isinstance(placement, Mapping):
        raise ValueError(f"placement: expected a table of class = level, got {placement!r}")
    classes = TensorClass.values() + ("default",)
    for cls, level in placement.items():
        if cls not in classes:
            raise ValueError(f"placement.{cls}: unknown tensor class (expected one of "
                             f"{', '.join(classes)})")
        if not isinstance(level, str):
            raise ValueError(f"placement.{cls}: expected a level name, got {level!r}")
    for key in ("name", "source"):
        if key in doc and not isinstance(doc[key], str):
            raise ValueError(f"{key}: expected a string, got {doc[key]!r}")
    rb: Optional[float] = None
    if "random_bit" in doc:
        rb = _number("random_bit", doc["random_bit"])
    try:
        return EnergyTable(name=doc.get("name", "custom"), source=doc.get("source", ""),
                           ops=ops, memory=levels, word_bits=word_bits,
                           placement=dict(placement), random_bit=rb)
    except ValueError as e:
        raise ValueError(str(e)) from None
