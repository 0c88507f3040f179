"""Numerics: the arithmetic of one layer, and its datapath description file (TOML).

A layer computing y = x·Wᵀ runs three products (NUMERICS.md §6; their table is
intsim.core.modes.PRODUCTS):
  forward      y  = a_fwd(x) · w_fwd(W)ᵀ                  accumulated by acc_fwd
  input grad   dx = g_in(G·H_out) · w_bwd(H_out·w)        accumulated by acc_in
  weight grad  dW = g_w(Gᵀ·H_bs) · a_bwd(H_bs·a)          accumulated by acc_w
Each operand spec is a QuantSpec or None. None on a forward operand or a gradient means
float32 (unquantized); None on w_bwd / a_bwd means "use the (Hadamard-transformed) forward
operand as it is" — integer codes when the forward operand was quantized, else float32.
Each accumulator is an intsim.Accumulator or None (float32 matmul of the operands).
`hadamard` is None (H = identity), "largest_pow2" (the paper's block rule), "pad" or
"off_divide" (no transform, yet divided by the largest_pow2 block: the published HadOff).
`rescale_order`, `act_scale` and `ste` are the float32 order of the rescale, the number of
forward activation scales of a convolution batch and the straight-through rule
(intsim.core.modes: RescaleOrder, ActScale, SteRule; NUMERICS.md §6).

The datapath description file
-----------------------------
A hardware user describes the arithmetic of every layer in one flat TOML file:

    name = "hdqt"                 # free text, becomes Numerics.name
    hadamard = "pad"              # "none" | "largest_pow2" | "pad" | "off_divide" (NUMERICS.md §5, §6)
    rescale_order = "scale_product"   # "scale_product" | "left_to_right"     (§6)
    act_scale = "per_image"       # "per_image" | "per_batch" (conv forward activation scale, §6)
    ste = "clipped"               # "clipped" | "code_max" | "none" (straight-through mask, §6)
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

Absent top-level keys take the Numerics defaults (hadamard "none", rescale_order
"scale_product", act_scale "per_image", ste "clipped"), so files written before a key existed
keep their meaning. An absent operand table means None: a float32 operand (for w_bwd / a_bwd: the forward codes,
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

Round trip: loads(dumps(n)).numerics == n for every Numerics the engine accepts
(Numerics.from_toml / Numerics.to_toml).
"""
from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

from intsim.core.accumulator import Accumulator
from intsim.core.modes import (ACCUMULATORS, OPERANDS, PRODUCT_OF_ACCUMULATOR, PRODUCTS, ROLES,
                               ActScale, HadamardRule, QuantFormat, RescaleOrder, SteRule)
from intsim.core.quantizer import QuantSpec
from intsim.core.ranges import max_abs, product_operand_ranges

HADAMARD_RULES = (None, HadamardRule.LARGEST_POW2, HadamardRule.PAD, HadamardRule.OFF_DIVIDE)
#: the Enum-valued fields besides hadamard: field -> its vocabulary
CHOICE_FIELDS = {"rescale_order": RescaleOrder, "act_scale": ActScale, "ste": SteRule}
FORMATS = QuantFormat.values()


@dataclass(frozen=True)
class Numerics:
    """One layer's arithmetic; all None = plain float32 (the "fp32" preset).

    Two Numerics are equal when they compute the same arithmetic: `name` is a label and takes
    no part in ==."""
    w_fwd: Optional[QuantSpec] = None
    a_fwd: Optional[QuantSpec] = None
    w_bwd: Optional[QuantSpec] = None
    a_bwd: Optional[QuantSpec] = None
    g_in: Optional[QuantSpec] = None
    g_w: Optional[QuantSpec] = None
    acc_fwd: Optional[Accumulator] = None
    acc_in: Optional[Accumulator] = None
    acc_w: Optional[Accumulator] = None
    hadamard: Optional[HadamardRule] = None
    name: str = dataclasses.field(default="custom", compare=False)   # a label, not arithmetic
    rescale_order: RescaleOrder = RescaleOrder.SCALE_PRODUCT
    act_scale: ActScale = ActScale.PER_IMAGE
    ste: SteRule = SteRule.CLIPPED

    def __post_init__(self):
        for f in OPERANDS:
            v = getattr(self, f)
            if v is not None and not isinstance(v, QuantSpec):
                raise ValueError(f"{f}: expected an intsim.QuantSpec or None, got {v!r}")
        for f in ACCUMULATORS:
            v = getattr(self, f)
            if v is not None and not isinstance(v, Accumulator):
                raise ValueError(f"{f}: expected an intsim.Accumulator or None, got {v!r}")
        if self.hadamard not in HADAMARD_RULES or self.hadamard == HadamardRule.NONE:
            raise ValueError(f"hadamard: expected one of (None, 'largest_pow2', 'pad', "
                             f"'off_divide'), got {self.hadamard!r}")
        if self.hadamard is not None:
            object.__setattr__(self, "hadamard", HadamardRule(self.hadamard))
        for f, vocabulary in CHOICE_FIELDS.items():
            object.__setattr__(self, f, vocabulary.parse(getattr(self, f), f))
        for f in ("w_fwd", "a_fwd", "w_bwd", "a_bwd"):
            v = getattr(self, f)
            if v is not None and v.format == QuantFormat.LOG2:
                raise ValueError(f"{f}: format='log2' is for gradients (g_in, g_w) only")
        if not isinstance(self.name, str):
            raise ValueError(f"name: expected a string, got {self.name!r}")
        problem = float_operand_problem(self)
        if problem:
            raise ValueError(problem)

    @property
    def is_float(self) -> bool:
        return all(getattr(self, f) is None for f in OPERANDS + ACCUMULATORS + ("hadamard",))

    def replace(self, **changes) -> "Numerics":
        """A copy with some fields changed (dataclasses.replace). Without a new `name`, the copy
        is named after what changed: preset("hdqt").replace(acc_fwd=…) is "hdqt+acc_fwd"."""
        if "name" not in changes:
            changed = [k for k, v in changes.items() if getattr(self, k) != v]
            changes["name"] = "+".join([self.name, *changed])
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_toml(cls, path) -> "Numerics":
        """The Numerics of a datapath TOML file (schema: this module's docstring)."""
        return load(path).numerics

    def to_toml(self) -> str:
        """This Numerics as datapath TOML text; from_toml of it gives back an equal Numerics."""
        return dumps(self)


@dataclass(frozen=True)
class Datapath:
    """A parsed datapath file: the numerics, the optional SR seed, the source text."""
    numerics: Numerics
    seed: Optional[int] = None
    allow_narrow_accumulators: bool = False
    text: Optional[str] = None


#: top-level keys (besides the tables)
TOP_KEYS = ("name", "hadamard", *CHOICE_FIELDS, "seed", "allow_narrow_accumulators")
OPERAND_KEYS = tuple(f.name for f in dataclasses.fields(QuantSpec))
ACC_KEYS = tuple(f.name for f in dataclasses.fields(Accumulator))
#: the words a datapath table uses where the engine holds None
NONE_WORDS = {"tile": "none", "tile_sum_bits": "none", "signed": "auto", "scale": "dynamic"}


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
    for key in OPERANDS + ACCUMULATORS:
        if key in doc and not (doc[key] is None and not toml):
            _check_keys(key, doc[key])
            kw[key] = table_value(key, doc[key], toml=toml)
    name = doc.get("name", "custom")
    if not isinstance(name, str):
        raise ValueError(f"name: expected a string, got {name!r}")
    had = doc.get("hadamard", "none")
    if had is None and not toml:
        had = "none"
    seed = doc.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    allow = doc.get("allow_narrow_accumulators", False)
    if not isinstance(allow, bool):
        raise ValueError(f"allow_narrow_accumulators: expected true or false, got {allow!r}")
    for key in CHOICE_FIELDS:
        if key in doc and not (doc[key] is None and not toml):
            kw[key] = doc[key]
    try:
        nm = Numerics(**kw, hadamard=hadamard_value(had, "hadamard"), name=name)
    except ValueError as e:
        raise ValueError(_prefixed("", str(e))) from None
    if check and not allow:
        problem = narrow_accumulator_problem(nm)
        if problem:
            raise ValueError(problem + "; widen it, or set allow_narrow_accumulators = true "
                             "if the overflow is intended")
    return Datapath(nm, seed, allow)


def hadamard_value(word, where: str) -> Optional[HadamardRule]:
    """The Numerics.hadamard of a datapath word "none" | "largest_pow2" | "pad" | "off_divide"."""
    if word not in HadamardRule.values():
        raise ValueError(f"{where}: expected one of {', '.join(map(repr, HadamardRule.values()))}"
                         f", got {word!r}")
    return None if word == HadamardRule.NONE else HadamardRule(word)


def _prefixed(table: str, msg: str) -> str:
    """'table.key: …' when msg starts with a known key, else 'table: …'."""
    head = msg.split(":", 1)[0].split("=", 1)[0].strip()
    if head.isidentifier():
        return f"{table}.{msg}" if table else msg
    return f"{table}: {msg}" if table else msg


def _check_keys(table: str, body) -> None:
    if not isinstance(body, Mapping):
        raise ValueError(f"{table}: expected a table ([{table}]), got {body!r}")
    allowed = OPERAND_KEYS if table in OPERANDS else ACC_KEYS
    for key in body:
        if key not in allowed:
            raise ValueError(f"{table}.{key}: unknown key (expected one of {', '.join(allowed)})")


def table_value(key: str, body: Mapping[str, Any], base=None, toml: bool = True,
                where: Optional[str] = None) -> Union[QuantSpec, Accumulator]:
    """The QuantSpec (operand `key`) or Accumulator (accumulator `key`) of a datapath table.

    The table's fields replace those of `base` (a spec of the same kind), or of the class
    defaults when base is None; the words of NONE_WORDS mean None (with toml=False, None
    itself is accepted too). Errors start with `where` (default: the key) and the field."""
    where = where or key
    cls = QuantSpec if key in OPERANDS else Accumulator
    kw: dict[str, Any] = dict(body)
    for field, word in NONE_WORDS.items():
        if field in kw and (kw[field] == word or (kw[field] is None and not toml)):
            kw[field] = None
    if cls is QuantSpec:
        if body.get("signed", "auto") not in (True, False, "auto") and not (
                body.get("signed") is None and not toml):
            raise ValueError(f"{where}.signed: expected true, false or \"auto\", got "
                             f"{body['signed']!r}")
        scale = body.get("scale")
        if isinstance(scale, str) and scale not in ("dynamic", "pow2", "sawb"):
            raise ValueError(f"{where}.scale: expected \"dynamic\", \"pow2\", \"sawb\" or a "
                             f"positive number, got {scale!r}")
    try:
        return dataclasses.replace(base, **kw) if base is not None else cls(**kw)
    except ValueError as e:
        raise ValueError(_prefixed(where, str(e))) from None


# ----------------------------------------------------------------------- consistency
def float_operand_problem(numerics: Numerics) -> Optional[str]:
    """The first accumulator of `numerics` that could never be used, as an error message, or
    None: an integer accumulator sums integer codes, so a product with a float operand (no
    quantizer; for w_bwd / a_bwd: none of its own and none on the forward operand it reuses)
    runs as a float32 matmul and its accumulator would be silently ignored."""
    for prod in PRODUCTS.values():
        if getattr(numerics, prod.accumulator) is None:
            continue
        for role in prod.operands:
            if getattr(numerics, role.field) is not None:
                continue
            if role.reuses is not None and getattr(numerics, role.reuses) is not None:
                continue
            which = (f"{role.field} and {role.reuses}, whose codes it would reuse, are"
                     if role.reuses else f"{role.field} is")
            return (f"{prod.accumulator}: the {prod.text} has a float operand ({which} none: "
                    f"float32), so it runs in float32 and never uses this integer accumulator; "
                    f"quantize {role.reuses or role.field} or remove {prod.accumulator}")
    return None


def narrow_accumulator_problem(numerics: Numerics) -> Optional[str]:
    """The first 'impossible' accumulator of `numerics` as an error message, or None: a
    tile-sum register narrower than its register, or a register (not mode "exact") that cannot
    hold one worst-case product of its operands (codes before any Hadamard growth)."""
    for prod in PRODUCTS.values():
        name = prod.accumulator
        acc = getattr(numerics, name)
        if acc is None:
            continue
        if acc.tile_sum_bits is not None and acc.tile_sum_bits < acc.bits:
            return (f"{name}.tile_sum_bits: a {acc.tile_sum_bits}-bit tile-sum register cannot "
                    f"hold one {acc.bits}-bit tile result")
        if acc.mode == "exact":
            continue
        lr, rr = product_operand_ranges(numerics, prod.kind)
        p = None if lr is None or rr is None else max_abs(lr) * max_abs(rr)
        hi = acc.range[1]
        if p is not None and p > hi:
            return (f"{name}.bits: a {acc.bits}-bit register (max {hi}) cannot hold a single "
                    f"worst-case product {prod.left.field} × {prod.right.field} (up to {p})")
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
        lines += ["# intsim datapath description (NUMERICS.md; schema in intsim/core/numerics.py)",
                  "# An absent operand table = float32 operand (w_bwd / a_bwd: reuse the",
                  "# forward codes); an absent accumulator table = float32 matmul.", ""]
    lines.append(f"name = {_toml_str(numerics.name)}")
    lines.append(f"hadamard = {_toml_str(str(numerics.hadamard or HadamardRule.NONE))}")
    for key in CHOICE_FIELDS:
        lines.append(f"{key} = {_toml_str(str(getattr(numerics, key)))}")
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
                what = "reuses the forward codes" if ROLES[op].reuses else "float32"
                lines.append(f"# [{op}] absent: {ROLES[op].text} {what}")
            continue
        if comments:
            lines.append(f"# {ROLES[op].text}")
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
                lines.append(f"# [{name}] absent: {PRODUCT_OF_ACCUMULATOR[name].text} in float32")
            continue
        if comments:
            lines.append(f"# {PRODUCT_OF_ACCUMULATOR[name].text}")
        tile = '"none"' if acc.tile is None else str(int(acc.tile))
        tsb = '"none"' if acc.tile_sum_bits is None else str(int(acc.tile_sum_bits))
        lines += [f"[{name}]", f"bits = {int(acc.bits)}", f"tile = {tile}",
                  f"mode = {_toml_str(acc.mode)}", f"symmetric = {_toml_bool(acc.symmetric)}",
                  f"tile_sum_bits = {tsb}"]
    return "\n".join(lines) + "\n"
