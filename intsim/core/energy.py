"""Energy of counted operations and memory accesses from a per-operation table (pJ).

An EnergyTable holds, per OpKind, energies at some widths (pJ per operation; an int_mul entry
at width w is a w×w multiply), per memory level the energy of one access of `word_bits` bits,
and the placement of each tensor class (modes.TensorClass) in a level. The default table
(intsim/formats/energy_45nm.toml, read by intsim.formats.energy_table) holds the 45 nm figures
of Horowitz, ISSCC 2014.

Rules for what a table lacks (`EnergyTable.op_energy`):

  width scaling   an adder's energy grows linearly with its width (a ripple / prefix adder
                  has one cell per bit), a multiplier's with the product of its operand widths
                  (an array multiplier has a_bits·b_bits partial-product cells). So an entry
                  is looked up on the variable s = w for adders and comparators and s = a·b
                  (w² for a table entry) for multipliers and dividers: an s at a table point
                  takes that value; between two points the straight line through them; below
                  the smallest or above the largest point the value scales in proportion to s
                  from that point. (The 45 nm integer figures agree: 0.03 pJ at 8 bits and
                  0.1 pJ at 32 bits are 3.8 and 3.1 fJ per bit; 0.2 pJ at 8×8 and 3.1 pJ at
                  32×32 are 3.1 and 3.0 fJ per partial product.) Signedness does not change
                  the price (a Baugh–Wooley signed multiplier has the same array).
  missing kinds   int_shift (a barrel shifter), int_sat (an overflow compare and a select)
                  and fp_cmp (a float compare is an integer compare of the bit patterns) cost
                  an int_add of the same width; fp_div costs an fp_mul of the same width (a
                  lower bound: an iterative divider takes several); convert costs an fp_add
                  of the float width (align / normalise and round); fp_special (exp, log,
                  sqrt) costs 8 fp_mul + 8 fp_add (a degree-7 polynomial after range
                  reduction); random_bit costs int_add(8) / 8, one full-adder cell per bit
                  (an LFSR produces a bit with one XOR and one flip-flop).
  An explicit table for a kind replaces its rule (e.g. [fp_div], or random_bit = 0.01).

Memory: an access of `bytes` bytes to level L costs bytes·8 / word_bits · energy(L).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

from intsim.core.costs import Counts, Op, Traffic
from intsim.core.modes import OpKind, TensorClass

#: kinds priced on s = a·b (multipliers), the others on s = w
QUADRATIC = (OpKind.INT_MUL, OpKind.FP_MUL, OpKind.FP_DIV)
#: kinds whose absence from a table falls back to another kind of the same width
FALLBACK = {OpKind.INT_SHIFT: OpKind.INT_ADD, OpKind.INT_SAT: OpKind.INT_ADD,
            OpKind.FP_CMP: OpKind.INT_ADD, OpKind.FP_DIV: OpKind.FP_MUL,
            OpKind.CONVERT: OpKind.FP_ADD}
SPECIAL_TERMS = 8           # fp_special = 8 fp_mul + 8 fp_add
RANDOM_BIT_ADDER = 8        # random_bit = int_add(8) / 8


@dataclass(frozen=True)
class EnergyTable:
    """Per-operation and per-access energies in pJ (module docstring)."""
    name: str
    source: str
    ops: Mapping[OpKind, Mapping[int, float]]
    memory: Mapping[str, float]
    word_bits: int = 64
    placement: Mapping[str, str] = field(default_factory=dict)
    random_bit: Optional[float] = None

    def __post_init__(self):
        for kind in (OpKind.INT_ADD, OpKind.INT_MUL, OpKind.FP_ADD, OpKind.FP_MUL):
            if not self.ops.get(kind):
                raise ValueError(f"{kind}: the energy table needs at least one entry")
        for cls, level in self.placement.items():
            if level not in self.memory:
                raise ValueError(f"placement.{cls}: unknown memory level {level!r} (levels: "
                                 f"{', '.join(self.memory)})")
        if "default" not in self.placement:
            raise ValueError("placement.default: the energy table must name the memory level "
                             "of tensors without their own placement")

    # ------------------------------------------------------------------ operations
    def op_energy(self, op: Op) -> float:
        """pJ of one operation `op` (the rules of the module docstring)."""
        kind = op.kind
        if kind == OpKind.RANDOM_BIT:
            if self.random_bit is not None:
                return float(self.random_bit)
            return self._lookup(OpKind.INT_ADD, RANDOM_BIT_ADDER) / RANDOM_BIT_ADDER
        if kind == OpKind.FP_SPECIAL and kind not in self.ops:
            return SPECIAL_TERMS * (self._lookup(OpKind.FP_MUL, op.bits * op.bits)
                                    + self._lookup(OpKind.FP_ADD, op.bits))
        while kind not in self.ops:
            kind = FALLBACK[kind]
        s = op.bits * (op.bits2 or op.bits) if kind in QUADRATIC else op.bits
        return self._lookup(kind, s)

    def _lookup(self, kind: OpKind, s: float) -> float:
        points = sorted(((w * w if kind in QUADRATIC else w), float(e))
                        for w, e in self.ops[kind].items())
        return scaled(points, s)

    # ------------------------------------------------------------------ memory
    def level(self, cls: TensorClass) -> str:
        return self.placement.get(str(cls), self.placement["default"])

    def access_energy(self, cls: TensorClass, nbytes: float) -> float:
        """pJ of moving `nbytes` bytes of tensor class `cls` (in its placed level)."""
        return nbytes * 8 / self.word_bits * float(self.memory[self.level(cls)])


def scaled(points: list, s: float) -> float:
    """The energy at s from (s_i, e_i) points sorted by s: exact at a point, linear between
    two, proportional to s beyond the ends (module docstring)."""
    if s <= points[0][0]:
        return points[0][1] * s / points[0][0]
    if s >= points[-1][0]:
        return points[-1][1] * s / points[-1][0]
    for (s0, e0), (s1, e1) in zip(points, points[1:]):
        if s0 <= s <= s1:
            return e0 + (e1 - e0) * (s - s0) / (s1 - s0)
    raise AssertionError("unreachable")


def counts_energy(counts: Counts, table: EnergyTable) -> dict:
    """{(part, op): pJ} of counted operations."""
    return {key: n * table.op_energy(key[1]) for key, n in counts.items()}


def traffic_energy(t: Traffic, table: EnergyTable) -> float:
    """pJ of one tensor's traffic."""
    return table.access_energy(t.cls, t.bytes_moved)
