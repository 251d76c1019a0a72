"""The app's requirements as a context source the app updates."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from tflite_adaspring.context.snapshot import Requirements
from tflite_adaspring.context.source import ContextSource
from tflite_adaspring.errors import DataValidationError

REQUIREMENT_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Requirements))


class RequirementsSource(ContextSource):
    """Holds the app's current :class:`Requirements`; readers always see one complete, frozen value.

    Updates build a new frozen ``Requirements`` under a lock and swap the reference, so a concurrent
    reader gets either the old or the new value, never a mix.

    Args:
      requirements: the initial requirements (default: no constraints, ``balanced`` energy mode).
    """

    name = "requirements"
    fields = ("requirements",)

    def __init__(self, requirements: Requirements | None = None) -> None:
        self._lock = threading.Lock()
        self._current = _check(requirements) if requirements is not None else Requirements()

    @property
    def requirements(self) -> Requirements:
        """The current requirements."""
        return self._current

    def set(self, requirements: Requirements | None = None, **changes: Any) -> Requirements:
        """Replaces the requirements, or changes some of their fields.

        Args:
          requirements: a complete new value (default: the current one).
          **changes: fields to change on top of it, e.g. ``latency_budget_ms=5.0`` (``None`` removes a
            constraint).

        Returns:
          The new requirements.

        Raises:
          DataValidationError: an unknown field name or an invalid value.
        """
        unknown = sorted(set(changes) - set(REQUIREMENT_NAMES))
        if unknown:
            raise DataValidationError(f"unknown requirement(s) {unknown}; choose from {list(REQUIREMENT_NAMES)}")
        with self._lock:
            base = _check(requirements) if requirements is not None else self._current
            try:
                new = dataclasses.replace(base, **changes) if changes else base
            except (ValueError, TypeError) as exc:
                raise DataValidationError(f"invalid requirements: {exc}") from exc
            self._current = new
        return new

    def _read(self, now: float) -> dict[str, Any]:
        return {"requirements": self._current}


def _check(requirements: Any) -> Requirements:
    if not isinstance(requirements, Requirements):
        raise DataValidationError(f"requirements must be a Requirements instance, got {type(requirements).__name__}")
    return requirements
