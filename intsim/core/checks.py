"""Value rules: how one named argument or setting is checked (kind, bounds, closed set).

    MOMENTUM = Rule("float", minimum=0, below=1)
    check("momentum", 0.9, MOMENTUM)          -> 0.9
    check("momentum", 5, MOMENTUM)            ValueError "momentum: must be in [0, 1), got 5"
    check("momentum", "0.9", MOMENTUM)        ValueError "momentum: expected a number in [0, 1),
                                                          got '0.9'"

One table of Rules is the single statement of what a setting means: the run settings
(intsim.experiments.config), the learners' method options (intsim.models.learners), the SGD
arguments (intsim.nn.optim) and the layers' constructor arguments (intsim.nn) all check with
`check`, so a value outside its meaning is an error that names it and the expected form.

Kinds: "int" (an int, not a bool; NumPy integers accepted), "float" (an int or float, not a
bool; finite; returned as float), "str", "bool" (True/False only). Bounds apply to ints and
floats: minimum <= v, v <= maximum, v > 0 (positive), v < below. optional=True also accepts
None. Callers with kinds of their own (paths, tables) dispatch those before calling check.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

KINDS = ("int", "float", "str", "bool")


@dataclass(frozen=True)
class Rule:
    """How one value is checked (module docstring)."""
    kind: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    positive: bool = False
    below: Optional[float] = None
    choices: tuple = ()
    optional: bool = False
    why: str = ""                    # appended to the error: the meaning behind the bound

    def bounds(self) -> str:
        """The bounds in words: 'in [0, 1)', '>= 2', '> 0', '' (none)."""
        lo = "0" if self.positive else None if self.minimum is None else _num(self.minimum)
        top = self.below if self.below is not None else self.maximum
        hi = None if top is None else _num(top)
        if lo is not None and hi is not None:
            return (f"in {'(' if self.positive else '['}{lo}, {hi}"
                    f"{')' if self.below is not None else ']'}")
        if lo is not None:
            return f"{'>' if self.positive else '>='} {lo}"
        if hi is not None:
            return f"{'<' if self.below is not None else '<='} {hi}"
        return ""

    def expected(self) -> str:
        """The expected form in words: 'a number in [0, 1)', 'an integer >= 2', …"""
        if self.kind == "str":
            text = ("one of " + ", ".join(repr(c) for c in self.choices)) if self.choices \
                else "a string"
        elif self.kind == "bool":
            text = "true or false"
        else:
            text = ("an integer" if self.kind == "int" else "a number") + (
                f" {self.bounds()}" if self.bounds() else "")
        return text + (" (or none)" if self.optional else "")


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def check(name: str, value: Any, rule: Rule, error: type = ValueError) -> Any:
    """`value` normalised (ints to int, numbers to float) when it satisfies `rule`; else
    `error` (default ValueError) "NAME: expected FORM, got VALUE"."""
    if value is None and rule.optional:
        return None
    if rule.kind not in KINDS:
        raise ValueError(f"Rule.kind: expected one of {KINDS}, got {rule.kind!r}")

    why = f" ({rule.why})" if rule.why else ""

    def bad() -> Exception:
        return error(f"{name}: expected {rule.expected()}, got {value!r}{why}")
    if rule.kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise bad()
        return bool(value)
    if rule.kind == "str":
        if not isinstance(value, str) or (rule.choices and value not in rule.choices):
            raise bad()
        return value
    if isinstance(value, (bool, np.bool_)):
        raise bad()
    if rule.kind == "int":
        if not isinstance(value, (int, np.integer)):
            raise bad()
        v: Any = int(value)
    else:
        if not isinstance(value, (int, float, np.integer, np.floating)):
            raise bad()
        v = float(value)
        if not math.isfinite(v):
            raise bad()
    if ((rule.minimum is not None and v < rule.minimum)
            or (rule.maximum is not None and v > rule.maximum)
            or (rule.positive and v <= 0) or (rule.below is not None and v >= rule.below)):
        raise error(f"{name}: must be {rule.bounds()}, got {value!r}{why}")
    return v


#: rules many callers share
POSITIVE_INT = Rule("int", minimum=1)
NONNEGATIVE_INT = Rule("int", minimum=0)
POSITIVE = Rule("float", positive=True)
NONNEGATIVE = Rule("float", minimum=0)
FRACTION = Rule("float", positive=True, below=1)          # (0, 1)
