"""SGD with momentum and weight decay (PyTorch semantics), and epoch-based LR schedules.

For every trainable parameter w with gradient g (frozen modules are skipped entirely):
    d = g + wd·w
    v = d                         on the first step
    v = μ·v + (1 - dampening)·d   afterwards
    (nesterov: d = d + μ·v, else d = v)
    w -= lr·d                      (in place, so layers keep their arrays)

The optimizer walks the modules' parameters at every step, so freezing/unfreezing takes effect
at once. Momentum buffers are keyed by dotted parameter name; a parameter that changed shape
(a grown classifier head) raises: make a new optimizer per task, as PyCIL does.
"""
from __future__ import annotations

import bisect
from typing import Iterable

import numpy as np

from intsim.core.checks import NONNEGATIVE, POSITIVE, POSITIVE_INT, Rule, check
from intsim.nn.module import Module

#: what each SGD argument means (also the rules of the run settings lr, momentum, …)
SGD_RULES = {"lr": POSITIVE, "momentum": Rule("float", minimum=0, below=1),
             "weight_decay": NONNEGATIVE, "dampening": Rule("float", minimum=0, maximum=1),
             "nesterov": Rule("bool")}
#: the factor of a learning-rate schedule (lr_gamma)
GAMMA_RULE = POSITIVE


class SGD:
    """Stochastic gradient descent (module docstring). lr > 0, momentum in [0, 1),
    weight_decay >= 0, dampening in [0, 1]: other values are ValueErrors naming them."""

    def __init__(self, modules: Module | Iterable[Module], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, dampening: float = 0.0, nesterov: bool = False):
        self.modules = [modules] if isinstance(modules, Module) else list(modules)
        if not self.modules or not all(isinstance(m, Module) for m in self.modules):
            raise ValueError(f"modules: expected an intsim.nn.Module or a list of them, got "
                             f"{modules!r}")
        args = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                "dampening": dampening, "nesterov": nesterov}
        for k, v in args.items():            # checked, kept as given (NumPy scalars too)
            check(k, v, SGD_RULES[k])
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening 0")
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.dampening, self.nesterov = dampening, nesterov
        self.state: dict[str, np.ndarray] = {}   # momentum buffers

    def named_parameters(self):
        """(key, param, grad) of trainable parameters; key = dotted name (prefixed by the module
        index when several modules are given). A shared array is visited once."""
        seen = set()
        single = len(self.modules) == 1
        for i, m in enumerate(self.modules):
            for name, p, g in m.named_parameters(trainable_only=True):
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (name if single else f"{i}.{name}"), p, g

    def step(self) -> None:
        mu, wd = self.momentum, self.weight_decay
        for key, p, g in self.named_parameters():
            d = g + wd * p if wd else g
            if mu:
                v = self.state.get(key)
                if v is None:
                    v = self.state[key] = np.array(d, dtype=p.dtype)
                else:
                    if v.shape != p.shape:
                        raise ValueError(f"SGD: parameter {key} changed shape {v.shape} -> "
                                         f"{p.shape}; create a new optimizer after growing")
                    v *= mu
                    v += (1 - self.dampening) * d
                d = d + mu * v if self.nesterov else v
            p -= self.lr * d

    def zero_grad(self) -> None:
        for m in self.modules:
            m.zero_grad()

    def state_dict(self) -> dict:
        return {"lr": self.lr, "momentum_buffers": {k: v.copy() for k, v in self.state.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.lr = state["lr"]
        self.state = {k: np.array(v) for k, v in state["momentum_buffers"].items()}


class _Schedule:
    """Epoch-based schedule: call step() once at the end of every epoch (PyTorch order)."""

    def __init__(self, optimizer: SGD):
        self.optimizer, self.base_lr, self.epoch = optimizer, optimizer.lr, 0

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> float:
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)
        return self.optimizer.lr

    def state_dict(self) -> dict:
        return {"base_lr": self.base_lr, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.base_lr, self.epoch = state["base_lr"], state["epoch"]
        self.optimizer.lr = self.lr_at(self.epoch)


class ConstantLR(_Schedule):
    """lr(epoch) = base_lr. (Not PyTorch's ConstantLR, which is a warm-up factor.)"""

    def lr_at(self, epoch: int) -> float:
        return self.base_lr


class StepLR(_Schedule):
    """lr(epoch) = base_lr · gamma^(epoch // step_size)."""

    def __init__(self, optimizer: SGD, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        check("step_size", step_size, POSITIVE_INT)
        check("gamma", gamma, GAMMA_RULE)
        self.step_size, self.gamma = step_size, gamma

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(_Schedule):
    """lr(epoch) = base_lr · gamma^(number of milestones <= epoch); e.g. milestones
    (60, 100, 140): epochs 0-59 base, 60-99 ×0.1, 100-139 ×0.01, 140- ×0.001."""

    def __init__(self, optimizer: SGD, milestones: Iterable[int], gamma: float = 0.1):
        super().__init__(optimizer)
        milestones = sorted(milestones)
        for m in milestones:
            check("milestones", m, POSITIVE_INT)
        check("gamma", gamma, GAMMA_RULE)
        self.milestones, self.gamma = milestones, gamma

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)
