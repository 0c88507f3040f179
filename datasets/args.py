"""Argument checks shared by the loaders: every bad argument is a ValueError naming it.

Each check takes ``where`` (the function the user called, e.g. ``"load_watch"``) and the
argument's name, so a message reads ``load_watch: window must be an int >= 4, got 'x' (str)``.
"""
from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any, Sequence

__all__ = ["check_int", "check_bool", "check_int_sequence", "check_path", "check_choice"]


def _show(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_int(where: str, name: str, value: Any, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """``value`` as an int (bools and non-integral numbers refused), within [minimum, maximum]."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok:
        v = int(value)
        ok = (minimum is None or v >= minimum) and (maximum is None or v <= maximum)
    if not ok:
        rng = ""
        if minimum is not None and maximum is not None:
            rng = f" in [{minimum}, {maximum}]"
        elif minimum is not None:
            rng = f" >= {minimum}"
        elif maximum is not None:
            rng = f" <= {maximum}"
        raise ValueError(f"{where}: {name} must be an int{rng}, got {_show(value)}")
    return v


def check_bool(where: str, name: str, value: Any) -> bool:
    """``value`` if it is a bool (NumPy bools accepted), else ValueError."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise ValueError(f"{where}: {name} must be True or False, got {_show(value)}")


def check_int_sequence(where: str, name: str, value: Any) -> tuple[int, ...]:
    """A list/tuple/set of ints (e.g. subject ids to drop) as a tuple; a bare int or str is refused."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, set, frozenset)):
        try:
            import numpy as np
            if isinstance(value, np.ndarray) and value.ndim == 1:
                value = value.tolist()
            else:
                raise TypeError
        except TypeError:
            raise ValueError(f"{where}: {name} must be a list of ints (e.g. (3, 4)), got {_show(value)}") from None
    out = []
    for v in value:
        if not isinstance(v, numbers.Integral) or isinstance(v, bool):
            raise ValueError(f"{where}: {name} must hold ints, got {_show(v)} in {value!r}")
        out.append(int(v))
    return tuple(out)


def check_path(where: str, name: str, value: Any) -> Path:
    """``value`` (str or os.PathLike) as a Path, else ValueError."""
    if isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes):
        if os.fspath(value) == "":
            raise ValueError(f"{where}: {name} must be a non-empty path, got ''")
        return Path(value).expanduser()
    raise ValueError(f"{where}: {name} must be a path (str or os.PathLike), got {_show(value)}")


def check_choice(where: str, name: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``, else ValueError listing them."""
    if isinstance(value, (str, int)) and value in choices:
        return value
    raise ValueError(f"{where}: {name} must be one of {', '.join(map(repr, choices))}, got {_show(value)}")
