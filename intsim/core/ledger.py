"""Ledger: operation counts and memory traffic by scope, added up, scaled and priced.

A scope is a tuple of strings naming where the work happens — (role, layer, kind): role
"student" / "teacher" / "eval" / "run", the layer label ("backbone.fc1", "loss", "sgd"), the
kind ("fwd", "grad_in", "grad_w" for a layer's products, "forward" / "backward" for other
layers, or what a run-level entry is: "herding", "nme"). `ledger.scaled(k)` is k repetitions
(k steps), `a.merge(b)` adds b into a. `rows(table)` flattens it into plain records (scope
fields, part, op, count, pJ) for pandas; `totals(table)` sums them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterable, Optional

from intsim.core.costs import Counts, Op, Traffic
from intsim.core.energy import EnergyTable
from intsim.core.modes import CostPart, OpKind, TensorClass

SCOPE_FIELDS = ("role", "layer", "kind")


@dataclass
class Ledger:
    counts: dict = field(default_factory=dict)      # scope -> Counts
    traffic: dict = field(default_factory=dict)     # scope -> list[Traffic]

    def add(self, scope: tuple, counts: Optional[Counts] = None,
            traffic: Iterable[Traffic] = ()) -> "Ledger":
        if counts:
            self.counts.setdefault(scope, Counts()).merge(counts)
        traffic = list(traffic)
        if traffic:
            self.traffic.setdefault(scope, []).extend(traffic)
        return self

    def merge(self, other: "Ledger", times: int = 1) -> "Ledger":
        """Add `times` × other into self (in place); returns self."""
        if times == 0:
            return self
        for scope, c in other.counts.items():
            self.counts.setdefault(scope, Counts()).merge(c, times)
        for scope, ts in other.traffic.items():
            self.traffic.setdefault(scope, []).extend(
                dataclasses.replace(t, reads=t.reads * times, writes=t.writes * times)
                for t in ts)
        return self

    def scaled(self, times: int) -> "Ledger":
        return Ledger().merge(self, times)

    def total_counts(self) -> Counts:
        out = Counts()
        for c in self.counts.values():
            out.merge(c)
        return out

    def ops(self, kind: OpKind) -> int:
        return self.total_counts().total(kind)

    def bytes_moved(self) -> int:
        return sum(t.bytes_moved for ts in self.traffic.values() for t in ts)

    # ---------------------------------------------------------------- flat records
    def rows(self, table: Optional[EnergyTable] = None) -> list[dict]:
        """One record per (scope, part, op): role, layer, kind, part, op, op_kind, bits, count
        and pJ (None without a table)."""
        out = []
        for scope, c in self.counts.items():
            for (part, op), n in c.items():
                out.append({**dict(zip(SCOPE_FIELDS, scope)), "part": str(part),
                            "op": op.key, "op_kind": str(op.kind), "bits": op.bits,
                            "count": n,
                            "pj": None if table is None else n * table.op_energy(op)})
        return out

    def memory_rows(self, table: Optional[EnergyTable] = None) -> list[dict]:
        """One record per tensor movement: scope fields, tensor, class, elements, bits,
        stored bytes, reads, writes, bytes moved, memory level and pJ."""
        out = []
        for scope, ts in self.traffic.items():
            for t in ts:
                out.append({**dict(zip(SCOPE_FIELDS, scope)), "tensor": t.tensor,
                            "class": str(t.cls), "elements": t.elements, "bits": t.bits,
                            "stored_bytes": t.stored_bytes, "reads": t.reads,
                            "writes": t.writes, "bytes_moved": t.bytes_moved,
                            "level": None if table is None else table.level(t.cls),
                            "pj": None if table is None
                            else table.access_energy(t.cls, t.bytes_moved)})
        return out

    def totals(self, table: EnergyTable) -> dict:
        """pJ by part (compute) and by tensor class (memory), plus compute / memory / total,
        and the headline counts (MACs, random bits, bytes moved)."""
        parts: dict = {}
        for r in self.rows(table):
            parts[r["part"]] = parts.get(r["part"], 0.0) + r["pj"]
        classes: dict = {}
        for r in self.memory_rows(table):
            classes[r["class"]] = classes.get(r["class"], 0.0) + r["pj"]
        compute, memory = sum(parts.values()), sum(classes.values())
        c = self.total_counts()
        return {"pj": compute + memory, "compute_pj": compute, "memory_pj": memory,
                "compute_pj_by_part": parts, "memory_pj_by_class": classes,
                "macs": c.total(OpKind.INT_MUL) + c.total(OpKind.INT_SHIFT)
                + c.total(OpKind.FP_MUL, part="matmul"),
                "random_bits": c.total(OpKind.RANDOM_BIT), "bytes_moved": self.bytes_moved()}

    # ---------------------------------------------------------------- JSON form
    def to_doc(self) -> dict:
        """The ledger's totals as JSON: counts by (part, op) and bytes moved by tensor class
        (scopes are not kept). from_doc gives back a ledger with the same totals."""
        counts = [{"part": str(part), "kind": str(op.kind), "bits": op.bits, "bits2": op.bits2,
                   "signs": op.signs, "count": n}
                  for (part, op), n in sorted(self.total_counts().items(),
                                              key=lambda kv: (str(kv[0][0]), kv[0][1]))]
        moved: dict = {}
        for ts in self.traffic.values():
            for t in ts:
                moved[str(t.cls)] = moved.get(str(t.cls), 0) + t.bytes_moved
        return {"counts": counts, "bytes_moved": moved}

    @classmethod
    def from_doc(cls, doc: dict, scope: tuple = ("restored", "", "")) -> "Ledger":
        c = Counts()
        for e in doc["counts"]:
            c.add(CostPart(e["part"]), Op(OpKind(e["kind"]), e["bits"], e["bits2"],
                                          e["signs"]), e["count"])
        traffic = [Traffic("restored", TensorClass(k), int(v), 8, 1, 0)
                   for k, v in doc["bytes_moved"].items()]
        return cls().add(scope, c, traffic)
