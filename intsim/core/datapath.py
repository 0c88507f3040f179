"""Datapath description files: a TOML text ↔ intsim.Numerics (plus an SR seed).

A hardware user describes the arithmetic of every layer in one flat TOML file:

    name = "hdqt"                 # free text, becomes Numerics.name
    hadamard = "pad"              # "none" | "largest_pow2" | "pad"          (NUMERICS.md §5, §6)
    seed = 0                      # optional: seed of the stochastic-rounding stream (§3)

    [w_fwd]                       # one table per matmul operand: w_fwd a_fwd w_bwd a_bwd g_in g_w
    bits = 4                      # 2 … 16
    rounding = "nearest"          # tie rule: nearest (half-even) | half_away | half_up | floor |
                                  #           stochastic                               (§2.1)
    clip = 0.975                  # clamp point m = max|x|·clip
    signed = true                 # true | false | "auto" (signed iff the tensor has a value < 0)
    symmetric = true              # saturation range ±(2^(b-1)-1); false: [-2^(b-1), 2^(b-1)-1]
    scale = "dynamic"             # "dynamic" | "pow2" | "sawb" | a positive number (fixed)
    sr_bits = 16                  # random bits per element when rounding = "stochastic"
    format = "int"                # "int" | "log2" (radix-2 log codes, g_in / g_w only)

    [acc_fwd]                     # one table per matmul: acc_fwd acc_in acc_w
    bits = 8                      # register width, 2 … 62
    tile = 32                     # K-tile, or "none" (one tile)
    mode = "saturate"             # saturate | clamp_tile | wrap | exact             (§4)
    symmetric = true
    tile_sum_bits = 32            # width of the register adding tile results, or "none"

An absent operand table means None: a float32 operand (for w_bwd / a_bwd: the forward codes,
Hadamard-transformed, used as they are); an absent accumulator table means a float32 matmul.
A key absent from a table takes the QuantSpec / Accumulator default (the writer always spells
every key out). Unknown keys, wrong types and impossible combinations are ValueErrors whose
message starts with the key path, e.g. "acc_fwd.tile_size: unknown key".

Impossible combinations:
  * an accumulator whose register cannot hold a single worst-case product of its operands
    (max|a|·max|b| > 2^(bits-1) - 1, from the operand bit widths; mode "exact" is exempt), or
    whose tile-sum register is narrower than the accumulator register. The paper's accumulator
    sweep does run such datapaths on purpose: `allow_narrow_accumulators = true` (top level)
    accepts them, and the writer adds that line when it is needed.
  * scale = "sawb" with bits != 4; format = "log2" on a forward or backward weight/activation
    operand, or without stochastic rounding, or above 5 bits.

Round trip: loads(dumps(n)).numerics == n for every Numerics the engine accepts.
"""
from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

from intsim.core.accumulator import Accumulator
from intsim.core.numerics import ACCUMULATORS, OPERANDS, Numerics, QuantSpec
from intsim.core.quantizer import code_range, log2_top

#: top-level keys (besides the tables)
TOP_KEYS = ("name", "hadamard", "seed", "allow_narrow_accumulators")
OPERAND_KEYS = ("bits", "rounding", "clip", "signed", "symmetric", "scale", "sr_bits", "format")
ACC_KEYS = ("bits", "tile", "mode", "symmetric", "tile_sum_bits")
#: operand pair (left, right) feeding each accumulator; the right operand of the backward
#: matmuls falls back to the forward codes when w_bwd / a_bwd is absent
ACC_OPERANDS = {"acc_fwd": ("a_fwd", "w_fwd"), "acc_in": ("g_in", "w_bwd"),
                "acc_w": ("g_w", "a_bwd")}
BACKWARD_FALLBACK = {"w_bwd": "w_fwd", "a_bwd": "a_fwd"}

_OPERAND_TEXT = {
    "w_fwd": "forward weights W",
    "a_fwd": "forward activations x",
    "w_bwd": "backward weights H_out·w (input-gradient matmul)",
    "a_bwd": "backward activations H_bs·a (weight-gradient matmul)",
    "g_in": "output gradient G·H_out (input-gradient matmul)",
    "g_w": "output gradient Gᵀ·H_bs (weight-gradient matmul)",
}
_ACC_TEXT = {
    "acc_fwd": "forward matmul a_fwd · w_fwdᵀ",
    "acc_in": "input-gradient matmul g_in · w_bwd",
    "acc_w": "weight-gradient matmul g_w · a_bwd",
}


@dataclass(frozen=True)
class Datapath:
    """A parsed datapath file: the numerics, the optional SR seed, the source text."""
    numerics: Numerics
    seed: Optional[int] = None
    allow_narrow_accumulators: bool = False
    text: Optional[str] = None


# ---------------------------------------------------------------------------- reading
def load(path: Union[str, os.PathLike]) -> Datapath:
    """Parse a datapath TOML file (errors name the file and the key)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"datapath: no such file {path}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e})") from None
    try:
        return loads(text)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def loads(text: str) -> Datapath:
    """Parse datapath TOML text."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"invalid TOML: {e}") from None
    dp = from_mapping(doc, toml=True)
    return Datapath(dp.numerics, dp.seed, dp.allow_narrow_accumulators, text)


def from_mapping(doc: Mapping[str, Any], toml: bool = False, check: bool = True) -> Datapath:
    """A Datapath from a parsed TOML document or a JSON-style dict.

    With toml=False, None is also accepted where TOML needs a word ("auto", "dynamic",
    "none"), so `dataclasses.asdict(numerics)` (as found in a CIL run's config.json
    "numerics_spec") is understood. check=False skips the narrow-accumulator check (for
    describing a run that already happened).
    """
    if not isinstance(doc, Mapping):
        raise ValueError(f"datapath: expected a table, got {type(doc).__name__}")
    tables = set(OPERANDS) | set(ACCUMULATORS)
    for key in doc:
        if key not in tables and key not in TOP_KEYS:
            raise ValueError(f"{key}: unknown key (expected one of "
                             f"{', '.join(TOP_KEYS + OPERANDS + ACCUMULATORS)})")
    kw: dict[str, Any] = {}
    for op in OPERANDS:
        if op in doc and not (doc[op] is None and not toml):
            kw[op] = _quant_spec(op, doc[op], toml)
    for acc in ACCUMULATORS:
        if acc in doc and not (doc[acc] is None and not toml):
            kw[acc] = _accumulator(acc, doc[acc], toml)
    name = doc.get("name", "custom")
    if not isinstance(name, str):
        raise ValueError(f"name: expected a string, got {name!r}")
    had = doc.get("hadamard", "none")
    if had is None and not toml:
        had = "none"
    if had not in ("none", "largest_pow2", "pad"):
        raise ValueError(f"hadamard: expected \"none\", \"largest_pow2\" or \"pad\", got {had!r}")
    seed = doc.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    allow = doc.get("allow_narrow_accumulators", False)
    if not isinstance(allow, bool):
        raise ValueError(f"allow_narrow_accumulators: expected true or false, got {allow!r}")
    try:
        nm = Numerics(**kw, hadamard=None if had == "none" else had, name=name)
    except ValueError as e:
        raise ValueError(_prefixed("", str(e))) from None
    if check and not allow:
        problem = narrow_accumulator_problem(nm)
        if problem:
            raise ValueError(problem + "; widen it, or set allow_narrow_accumulators = true "
                             "if the overflow is intended")
    return Datapath(nm, seed, allow)


def _prefixed(table: str, msg: str) -> str:
    """'table.key: …' when msg starts with a known key, else 'table: …'."""
    head = msg.split(":", 1)[0].split("=", 1)[0].strip()
    if head.isidentifier():
        return f"{table}.{msg}" if table else msg
    return f"{table}: {msg}" if table else msg


def _check_keys(table: str, body, allowed) -> None:
    if not isinstance(body, Mapping):
        raise ValueError(f"{table}: expected a table ([{table}]), got {body!r}")
    for key in body:
        if key not in allowed:
            raise ValueError(f"{table}.{key}: unknown key (expected one of {', '.join(allowed)})")


def _quant_spec(op: str, body, toml: bool) -> QuantSpec:
    """QuantSpec of table [op]: TOML words mapped to None, values checked by QuantSpec."""
    _check_keys(op, body, OPERAND_KEYS)
    kw: dict[str, Any] = {k: body[k] for k in body if k not in ("signed", "scale")}
    signed = body.get("signed", "auto")
    if signed is None and not toml:
        signed = "auto"
    if signed not in (True, False, "auto"):
        raise ValueError(f"{op}.signed: expected true, false or \"auto\", got {signed!r}")
    kw["signed"] = None if signed == "auto" else signed
    scale = body.get("scale", "dynamic")
    if scale is None and not toml:
        scale = "dynamic"
    if isinstance(scale, str) and scale not in ("dynamic", "pow2", "sawb"):
        raise ValueError(f"{op}.scale: expected \"dynamic\", \"pow2\", \"sawb\" or a positive "
                         f"number, got {scale!r}")
    kw["scale"] = None if scale == "dynamic" else scale
    try:
        return QuantSpec(**kw)
    except ValueError as e:
        raise ValueError(_prefixed(op, str(e))) from None


def _accumulator(acc: str, body, toml: bool) -> Accumulator:
    """Accumulator of table [acc]: "none" mapped to None, values checked by Accumulator."""
    _check_keys(acc, body, ACC_KEYS)
    kw: dict[str, Any] = dict(body)
    for key, default in (("tile", Accumulator().tile), ("tile_sum_bits", "none")):
        v = body.get(key, default)
        if v is None and not toml:
            v = "none"
        kw[key] = None if v == "none" else v
    try:
        return Accumulator(**kw)
    except ValueError as e:
        raise ValueError(_prefixed(acc, str(e))) from None


# ----------------------------------------------------------------------- consistency
def operand_range(spec: Optional[QuantSpec]) -> Optional[tuple[int, int]]:
    """Worst-case (min, max) integer code of an operand spec; None for a float operand.

    signed=None ("auto") may produce either signed or unsigned codes: the union of both.
    """
    if spec is None:
        return None
    if spec.format == "log2":
        top = log2_top(spec.bits)
        return -top, top
    if spec.signed is None:
        lo = code_range(spec.bits, True, spec.symmetric)[0]
        return lo, code_range(spec.bits, False)[1]
    return code_range(spec.bits, spec.signed, spec.symmetric)


def matmul_operand_specs(numerics: Numerics, acc_name: str
                         ) -> tuple[Optional[QuantSpec], Optional[QuantSpec]]:
    """The operand specs (left, right) of an accumulator's matmul; a backward operand that is
    absent falls back to the forward spec it reuses (codes before the Hadamard growth)."""
    left, right = ACC_OPERANDS[acc_name]
    r = getattr(numerics, right)
    if r is None and right in BACKWARD_FALLBACK:
        r = getattr(numerics, BACKWARD_FALLBACK[right])
    return getattr(numerics, left), r


def max_product(numerics: Numerics, acc_name: str) -> Optional[int]:
    """max |a·b| over the operand code ranges (no Hadamard growth); None if not integer."""
    ls, rs = matmul_operand_specs(numerics, acc_name)
    lr, rr = operand_range(ls), operand_range(rs)
    if lr is None or rr is None:
        return None
    return max(abs(lr[0]), abs(lr[1])) * max(abs(rr[0]), abs(rr[1]))


def narrow_accumulator_problem(numerics: Numerics) -> Optional[str]:
    """The first 'impossible' accumulator of `numerics` as an error message, or None."""
    for name in ACCUMULATORS:
        acc = getattr(numerics, name)
        if acc is None:
            continue
        if acc.tile_sum_bits is not None and acc.tile_sum_bits < acc.bits:
            return (f"{name}.tile_sum_bits: a {acc.tile_sum_bits}-bit tile-sum register cannot "
                    f"hold one {acc.bits}-bit tile result")
        if acc.mode == "exact":
            continue
        p = max_product(numerics, name)
        hi = acc.range[1]
        if p is not None and p > hi:
            left, right = ACC_OPERANDS[name]
            return (f"{name}.bits: a {acc.bits}-bit register (max {hi}) cannot hold a single "
                    f"worst-case product {left} × {right} (up to {p})")
    return None


# ---------------------------------------------------------------------------- writing
def _toml_str(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_float(v) -> str:
    r = repr(float(v))
    if not math.isfinite(float(v)):
        raise ValueError(f"cannot write the non-finite number {v!r}")
    return r


def _toml_bool(v: bool) -> str:
    return "true" if v else "false"


def dumps(numerics: Numerics, seed: Optional[int] = None, comments: bool = True) -> str:
    """The TOML text of `numerics` (every key spelled out); `seed` adds the SR seed line."""
    if not isinstance(numerics, Numerics):
        raise ValueError(f"numerics: expected an intsim.Numerics, got {numerics!r}")
    lines = []
    if comments:
        lines += ["# intsim datapath description (NUMERICS.md; schema in intsim/datapath.py)",
                  "# An absent operand table = float32 operand (w_bwd / a_bwd: reuse the",
                  "# forward codes); an absent accumulator table = float32 matmul.", ""]
    lines.append(f"name = {_toml_str(numerics.name)}")
    lines.append(f"hadamard = {_toml_str(numerics.hadamard or 'none')}")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 63:
            raise ValueError(f"seed: expected an int in [0, 2**63), got {seed!r}")
        lines.append(f"seed = {seed}")
    if narrow_accumulator_problem(numerics):
        lines.append("allow_narrow_accumulators = true")
    for op in OPERANDS:
        spec = getattr(numerics, op)
        lines.append("")
        if spec is None:
            if comments:
                what = ("reuses the forward codes" if op in BACKWARD_FALLBACK else "float32")
                lines.append(f"# [{op}] absent: {_OPERAND_TEXT[op]} {what}")
            continue
        if comments:
            lines.append(f"# {_OPERAND_TEXT[op]}")
        scale = spec.scale
        scale_s = ('"dynamic"' if scale is None else _toml_str(scale) if isinstance(scale, str)
                   else _toml_float(scale))
        signed_s = '"auto"' if spec.signed is None else _toml_bool(spec.signed)
        lines += [f"[{op}]", f"bits = {int(spec.bits)}", f"rounding = {_toml_str(spec.rounding)}",
                  f"clip = {_toml_float(spec.clip)}", f"signed = {signed_s}",
                  f"symmetric = {_toml_bool(spec.symmetric)}", f"scale = {scale_s}",
                  f"sr_bits = {int(spec.sr_bits)}", f"format = {_toml_str(spec.format)}"]
    for name in ACCUMULATORS:
        acc = getattr(numerics, name)
        lines.append("")
        if acc is None:
            if comments:
                lines.append(f"# [{name}] absent: {_ACC_TEXT[name]} in float32")
            continue
        if comments:
            lines.append(f"# {_ACC_TEXT[name]}")
        tile = '"none"' if acc.tile is None else str(int(acc.tile))
        tsb = '"none"' if acc.tile_sum_bits is None else str(int(acc.tile_sum_bits))
        lines += [f"[{name}]", f"bits = {int(acc.bits)}", f"tile = {tile}",
                  f"mode = {_toml_str(acc.mode)}", f"symmetric = {_toml_bool(acc.symmetric)}",
                  f"tile_sum_bits = {tsb}"]
    return "\n".join(lines) + "\n"


def dump(numerics: Numerics, path: Union[str, os.PathLike], seed: Optional[int] = None) -> None:
    """Write dumps(numerics, seed) to `path` atomically."""
    from intsim.formats.atomic import atomic_write_text
    atomic_write_text(os.fspath(path), dumps(numerics, seed))


def numerics_from_toml(path: Union[str, os.PathLike]) -> Numerics:
    """The Numerics of a datapath file (Numerics.from_toml)."""
    return load(path).numerics


def numerics_to_toml(numerics: Numerics) -> str:
    """The datapath TOML text of a Numerics (Numerics.to_toml)."""
    return dumps(numerics)


def resolve(spec: Union[str, os.PathLike, Numerics, Datapath]) -> Datapath:
    """A Datapath from a preset name, a TOML path, a Numerics or a Datapath.

    A string may end in ":hadamard=RULE" (RULE none / largest_pow2 / pad) to override the
    Hadamard rule, e.g. "hdqt:hadamard=none"; the name then gets the suffix "-had_RULE".
    """
    if isinstance(spec, Datapath):
        return spec
    if isinstance(spec, Numerics):
        return Datapath(spec)
    s = os.fspath(spec)
    override = None
    if ":hadamard=" in s:
        s, override = s.rsplit(":hadamard=", 1)
        if override not in ("none", "largest_pow2", "pad"):
            raise ValueError(f"{spec}: hadamard override must be none, largest_pow2 or pad")
    from intsim.core.numerics import PRESET_NAMES, preset
    if s in PRESET_NAMES:
        dp = Datapath(preset(s))
    elif os.path.exists(s) or s.endswith(".toml"):
        dp = load(s)
    else:
        raise ValueError(f"datapath: {s!r} is neither a preset ({', '.join(PRESET_NAMES)}) nor "
                         "a TOML file")
    if override is not None:
        nm = dp.numerics.replace(hadamard=None if override == "none" else override,
                                 name=f"{dp.numerics.name}-had_{override}")
        dp = Datapath(nm, dp.seed, dp.allow_narrow_accumulators)
    return dp
