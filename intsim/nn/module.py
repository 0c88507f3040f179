"""Module: the base of every layer — parameters, gradients, children, modes.

The whole engine is "forward stores what backward needs, backward walks the chain":

    y = m.forward(x)              # caches whatever the backward pass needs
    dx = m.backward(dL_dy)        # returns dL/dx, ADDS dL/dθ into m.grads

Gradients accumulate (PyTorch semantics) until `zero_grad()`. One backward per forward: a
second forward overwrites the cache.

State of a module
  params   name -> array   master weights (float32 in normal use; `to(np.float64)` for gradchecks)
  grads    name -> array   same names and shapes as params
  buffers  name -> array   non-trained state (BatchNorm running statistics)
  children name -> Module  registered automatically by attribute assignment (`self.fc = Linear(..)`)

Constructor keywords (every module): numerics=, seed= (int, weight-init seed only: Kaiming
normal from np.random.default_rng(seed)), rng= (the SR stream of the linear operator).

Per-module settings, each with a recursive setter:
  numerics  intsim.numerics.Numerics (default preset("fp32"))       set_numerics(n)
  rng       SR stream object passed untouched to the linear operator (may be None) set_rng(r)
  trace     trace object passed untouched to the linear operator (default None)    set_trace(t)
  training  train()/eval() (BatchNorm: batch statistics vs running statistics)
  requires_grad  freeze()/unfreeze(): a frozen module still returns dL/dx but does not
                 accumulate parameter gradients, and optimizers skip its parameters.
  label     qualified dotted name ("stage1.0.conv1"), maintained on attribute assignment;
            matmul layers pass it to the linear operator as `label`.
"""
from __future__ import annotations

import copy as _copy
from typing import Iterator

import numpy as np

from intsim.core.checks import NONNEGATIVE_INT, Rule, check
from intsim.core.numerics import Numerics
from intsim.core.presets import preset
from intsim.core.rng import SRStream


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def check_args(owner: str, values: dict, rules: dict[str, Rule]) -> None:
    """Check constructor arguments: values[name] against rules[name]; the ValueError names the
    class and the argument ("Linear: in_features: must be >= 1, got 0")."""
    for name, rule in rules.items():
        check(f"{owner}: {name}", values[name], rule)


def child_seed(seed: int, *key: int) -> int:
    """A deterministic 32-bit seed derived from (seed, *key); independent streams per key."""
    return int(np.random.SeedSequence(seed, spawn_key=tuple(key)).generate_state(1)[0])


class Module:
    """Base class. Subclasses implement forward(x) and backward(grad_out) -> grad_in."""

    def __init__(self, *, numerics=None, seed: int = 0, rng=None):
        name = type(self).__name__
        if numerics is not None and not isinstance(numerics, Numerics):
            raise ValueError(f"{name}: numerics: expected an intsim.Numerics (e.g. "
                             f"intsim.preset('hdqt')) or None, got {numerics!r}")
        check(f"{name}: seed", seed, NONNEGATIVE_INT)
        object.__setattr__(self, "_children", {})
        self.label = ""
        self.numerics = numerics if numerics is not None else preset("fp32")
        self.seed = seed
        self.rng = rng
        self.trace = None
        self.training = True
        self.requires_grad = True
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self._cache: dict = {}

    # ---- structure -------------------------------------------------------------------
    def __setattr__(self, name, value):
        children = self.__dict__.get("_children")
        if isinstance(value, Module):
            if children is None:
                raise AttributeError("Module.__init__ must run before assigning children")
            children[name] = value
            value._relabel(_join(self.label, name))
        elif children is not None and name in children:
            del children[name]
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._children.pop(name, None)
        object.__delattr__(self, name)

    def add_module(self, name: str, module: "Module") -> "Module":
        setattr(self, name, module)
        return module

    def _relabel(self, label: str) -> None:
        object.__setattr__(self, "label", label)
        for name, c in self._children.items():
            c._relabel(_join(label, name))

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        yield from self._children.items()

    def children(self) -> Iterator["Module"]:
        yield from self._children.values()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """(dotted name relative to self, module) for self ("" ) and every descendant."""
        yield prefix, self
        for name, c in self._children.items():
            yield from c.named_modules(_join(prefix, name))

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "", trainable_only: bool = False
                         ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """(dotted name, param array, grad array) over self and all descendants.

        trainable_only skips frozen modules (requires_grad False)."""
        for mname, m in self.named_modules(prefix):
            if trainable_only and not m.requires_grad:
                continue
            for pname, p in m.params.items():
                yield _join(mname, pname), p, m.grads[pname]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for mname, m in self.named_modules(prefix):
            for bname, b in m.buffers.items():
                yield _join(mname, bname), b

    def num_parameters(self) -> int:
        return sum(p.size for _, p, _ in self.named_parameters())

    # ---- parameters ------------------------------------------------------------------
    def _add_param(self, name: str, value: np.ndarray) -> None:
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)

    @property
    def dtype(self):
        """dtype the module computes in: that of its (first) parameter, else float32."""
        for p in self.params.values():
            return p.dtype
        return np.dtype(np.float32)

    def zero_grad(self) -> None:
        for m in self.modules():
            for g in m.grads.values():
                g.fill(0)

    def to(self, dtype) -> "Module":
        """Cast params, grads and buffers (recursively) to dtype; returns self."""
        for m in self.modules():
            for d in (m.params, m.grads, m.buffers):
                for k in d:
                    d[k] = d[k].astype(dtype)
        return self

    # ---- modes and per-layer settings ------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def freeze(self) -> "Module":
        for m in self.modules():
            m.requires_grad = False
        return self

    def unfreeze(self) -> "Module":
        for m in self.modules():
            m.requires_grad = True
        return self

    def set_trace(self, trace) -> "Module":
        for m in self.modules():
            m.trace = trace
        return self

    def set_numerics(self, numerics) -> "Module":
        for m in self.modules():
            m.numerics = numerics
        return self

    def sr_stream(self):
        """The SR stream handed to the linear operator: `rng`, or SRStream(seed) made on first use."""
        if self.rng is None:
            self.rng = SRStream(self.seed)
        return self.rng

    def set_rng(self, rng) -> "Module":
        for m in self.modules():
            m.rng = rng
        return self

    def clear_cache(self) -> None:
        """Drop the forward caches (activations kept for backward)."""
        for m in self.modules():
            m._cache = {}

    # ---- copies and checkpoints ------------------------------------------------------
    def copy(self) -> "Module":
        """Deep copy of parameters, buffers and structure (a distillation teacher).

        numerics and rng objects are shared with the original, not copied; the copy's trace
        is None (set_trace it if wanted) and its forward caches are empty."""
        memo = {}
        for m in self.modules():
            for obj in (m.numerics, m.rng):
                if obj is not None:
                    memo[id(obj)] = obj
            memo[id(m._cache)] = {}
        new = _copy.deepcopy(self, memo)
        new.set_trace(None)
        return new

    def state_dict(self) -> dict[str, np.ndarray]:
        """{dotted name: copy} of every parameter and buffer (BatchNorm running stats)."""
        sd = {name: p.copy() for name, p, _ in self.named_parameters()}
        sd.update({name: b.copy() for name, b in self.named_buffers()})
        return sd

    def load_state_dict(self, state: dict[str, np.ndarray], strict: bool = True) -> None:
        """Copy arrays into the existing parameters/buffers in place (keeps dtype).

        strict: the key sets must match exactly. Shapes must always match."""
        targets = {name: p for name, p, _ in self.named_parameters()}
        targets.update(dict(self.named_buffers()))
        if strict:
            missing = sorted(set(targets) - set(state))
            unexpected = sorted(set(state) - set(targets))
            if missing or unexpected:
                raise KeyError(f"load_state_dict: missing keys {missing}, "
                               f"unexpected keys {unexpected}")
        for name, dst in targets.items():
            if name not in state:
                continue
            src = np.asarray(state[name])
            if src.shape != dst.shape:
                raise ValueError(f"load_state_dict: {name} has shape {src.shape}, "
                                 f"the module expects {dst.shape}")
            np.copyto(dst, src, casting="unsafe")

    # ---- calling ---------------------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_out):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, c in self._children.items():
            sub = repr(c).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"
