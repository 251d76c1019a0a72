"""Names, types and valid ranges of the flat context fields (``ContextSnapshot.to_json`` keys).

Shared by everything that takes context values from outside: traces, host callbacks and overrides.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from tflite_adaspring.context.snapshot import ContextSnapshot, Requirements

# Measured context values: every ContextSnapshot field except the timestamp and the requirements.
VALUE_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(ContextSnapshot) if f.name not in ("timestamp", "requirements")
)
# Fields a source may report (values plus the requirements object).
SOURCE_FIELDS: frozenset[str] = frozenset((*VALUE_FIELDS, "requirements"))
# Flat columns of a trace row, in ContextSnapshot.to_json order.
COLUMNS: tuple[str, ...] = tuple(ContextSnapshot().to_json())


def _base_type(hint: Any) -> type:
    """Returns the one builtin type (bool, int, float, str) inside an ``X | None`` type hint."""
    candidates = [hint, *typing.get_args(hint)]
    for kind in (bool, int, float, str):
        if kind in candidates:
            return kind
    raise TypeError(f"unsupported context field type {hint!r}")


def _column_types() -> dict[str, type]:
    own = typing.get_type_hints(ContextSnapshot)
    req = typing.get_type_hints(Requirements)
    types = {name: _base_type(own[name]) for name in ("timestamp", *VALUE_FIELDS)}
    types.update({f"req_{f.name}": _base_type(req[f.name]) for f in dataclasses.fields(Requirements)})
    return types


COLUMN_TYPES: dict[str, type] = _column_types()

# Inclusive (low, high) bounds; a value outside is rejected. Fields not listed only need to be finite.
_RANGES: dict[str, tuple[float, float]] = {
    "battery_percent": (0.0, 100.0),
    "cpu_utilization": (0.0, 1.0),
    "cpu_contention": (1.0, math.inf),
    "cpu_cores_available": (1e-9, math.inf),
    "cpu_freq_ratio": (1e-9, 2.0),
    "cpu_freq_cap_ratio": (1e-9, 2.0),
    "memory_available_bytes": (0, math.inf),
    "cpu_runnable_others": (0.0, math.inf),
    "req_memory_cap_bytes": (0, math.inf),
}

_TRUE_WORDS = frozenset(("true", "1", "yes"))
_FALSE_WORDS = frozenset(("false", "0", "no"))


def coerce(name: str, value: Any) -> Any:
    """Checks and normalises one flat context value (``None`` and NaN mean unknown).

    Args:
      name: a column of :data:`COLUMNS`.
      value: a Python value (as decoded from JSON or given by a host app).

    Returns:
      The value as the field's type (``int`` fields accept integral floats), or ``None``.

    Raises:
      ValueError: unknown ``name``, wrong type, non-finite number or value out of range; the message
        names the field and the accepted values.
    """
    kind = COLUMN_TYPES.get(name)
    if kind is None:
        raise ValueError(f"unknown context field {name!r}; known fields: {', '.join(COLUMNS)}")
    if value is None:
        return None
    if kind is str:
        if not isinstance(value, str):
            raise ValueError(f"{name}: expected a string, got {value!r}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name}: expected true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    if isinstance(value, float) and math.isnan(value):
        return None
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if kind is int:
        if value != int(value):
            raise ValueError(f"{name}: expected a whole number, got {value!r}")
        value = int(value)
    else:
        value = float(value)
    low, high = _RANGES.get(name, (-math.inf, math.inf))
    if not low <= value <= high:
        raise ValueError(f"{name}: {value!r} is outside [{low}, {high}]")
    return value


def parse_text(name: str, text: str) -> Any:
    """Parses one CSV cell for column ``name``: empty means unknown; booleans are true/false, 1/0 or yes/no.

    Args:
      name: a column of :data:`COLUMNS`.
      text: the cell text.

    Returns:
      The checked value (see :func:`coerce`).

    Raises:
      ValueError: the cell cannot be parsed as the column's type or is out of range.
    """
    kind = COLUMN_TYPES.get(name)
    text = text.strip()
    if kind is None or text == "":
        return coerce(name, None)  # unknown column raises, an empty cell is unknown
    if kind is str:
        return coerce(name, text)
    if kind is bool:
        word = text.lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise ValueError(f"{name}: expected true or false, got {text!r}")
    try:
        number: float | int = int(text) if kind is int and text.lstrip("+-").isdigit() else float(text)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {text!r}") from None
    return coerce(name, number)


def format_text(value: Any) -> str:
    """Formats one value as a CSV cell (the inverse of :func:`parse_text`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
