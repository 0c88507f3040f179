"""SRStream: the counter-based generator behind stochastic rounding.

A stream is identified by (seed, path), path = (stream, child names …). Its key is

    key_0 = mix64(seed)
    key_{j+1} = mix64(key_j ^ mix64(component_j + GAMMA))   for each path component
    component value: int → itself (0 ≤ c < 2^64); str → FNV-1a-64 of its UTF-8 bytes

The k-th draw of a stream (k = 0, 1, …; the stream counts its draws) has
    draw_key(k) = mix64(key ^ mix64(k + 2·GAMMA))
and element i of that draw receives the bits element_bits(draw_key(k), i) (see
intsim.kernels.hashing); stochastic rounding with r random bits uses the top r of them
(element_random_bits). Nothing depends on thread count, chunking or call order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from intsim.kernels import hashing
from intsim.kernels.hashing import MASK64, mix64_reference

GAMMA = int(hashing.GAMMA)
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3

Component = Union[int, str]


def _component_value(c: Component) -> int:
    if isinstance(c, str):
        h = FNV_OFFSET
        for byte in c.encode("utf-8"):
            h = ((h ^ byte) * FNV_PRIME) & MASK64
        return h
    if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= MASK64:
        raise ValueError(f"stream: expected a str or an int in [0, 2**64), got {c!r}")
    return c


@dataclass(frozen=True)
class SRDraw:
    """One draw: element i (of the whole tensor) gets bits from (key, offset + i)."""
    key: int
    offset: int = 0

    def shifted(self, start: int) -> "SRDraw":
        """The same draw seen from element `start` on (for processing a tensor in chunks)."""
        return SRDraw(self.key, self.offset + int(start))


class SRStream:
    """Counter-based random stream keyed on (seed, stream path); see module docstring."""

    def __init__(self, seed: int, stream: Component = 0, *, _path: tuple = None):
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MASK64:
            raise ValueError(f"seed: expected an int in [0, 2**64), got {seed!r}")
        self.seed = seed
        self.path = tuple(_path) if _path is not None else (stream,)
        key = mix64_reference(seed)
        for c in self.path:
            key = mix64_reference(key ^ mix64_reference(_component_value(c) + GAMMA))
        self.key = key
        self.draws = 0
        self._children: dict = {}

    def child(self, name: Component) -> "SRStream":
        """The stream whose path extends this one by `name`.

        Children are kept: asking twice for the same name returns the same stream, whose
        draw counter carries on (a layer's operand streams persist across steps).
        """
        if name not in self._children:
            _component_value(name)
            self._children[name] = SRStream(self.seed, _path=self.path + (name,))
        return self._children[name]

    def draw(self, k: int) -> SRDraw:
        """The k-th draw of this stream (pure; does not advance the counter)."""
        return SRDraw(mix64_reference(self.key ^ mix64_reference(k + 2 * GAMMA)))

    def next_draw(self) -> SRDraw:
        """The next draw; advances the counter by one."""
        d = self.draw(self.draws)
        self.draws += 1
        return d

    def state(self) -> dict:
        """JSON-ready state of this stream and all its children (for checkpoints)."""
        return {"seed": self.seed, "path": list(self.path), "draws": self.draws,
                "children": [c.state() for c in self._children.values()]}

    @classmethod
    def from_state(cls, state: dict) -> "SRStream":
        s = cls(state["seed"], _path=tuple(state["path"]))
        s.draws = int(state["draws"])
        for cs in state.get("children", []):
            c = cls.from_state(cs)
            s._children[c.path[-1]] = c
        return s

    def __repr__(self) -> str:
        return f"SRStream(seed={self.seed}, path={self.path!r}, draws={self.draws})"


def element_random_bits(draw_key: int, count: int, sr_bits: int, offset: int = 0) -> np.ndarray:
    """R_i = element_bits(draw_key, offset + i) >> (64 - sr_bits) for i < count (uint32 for
    sr_bits ≤ 32, else uint64): the bits stochastic rounding adds below the kept LSB of
    element i (NUMERICS.md §3). Vectorised in NumPy uint64 arithmetic (modulo 2^64)."""
    if not 1 <= sr_bits <= 64:
        raise ValueError(f"sr_bits: expected 1 … 64, got {sr_bits}")
    i = np.arange(offset + 1, offset + count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(draw_key) + i * hashing.GAMMA
        z = (z ^ (z >> np.uint64(30))) * hashing.MUL1
        z = (z ^ (z >> np.uint64(27))) * hashing.MUL2
        z = z ^ (z >> np.uint64(31))
    r = z >> np.uint64(64 - sr_bits)
    return r.astype(np.uint32) if sr_bits <= 32 else r
