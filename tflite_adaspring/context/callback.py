"""Context values pushed by a host app (Android/iOS bindings, a simulator, a test)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tflite_adaspring.context._fields import VALUE_FIELDS, coerce
from tflite_adaspring.context.source import ContextSource
from tflite_adaspring.errors import DataValidationError

logger = logging.getLogger(__name__)


class CallbackSource(ContextSource):
    """Calls ``fn()`` on every read; ``fn`` returns a partial ``{field: value}`` dict (or ``None``).

    Use it where the OS API lives in the host app, e.g. Android's ``BatteryManager`` or iOS's
    ``UIDevice.batteryLevel``. Whatever goes wrong is "unknown", never an exception: if ``fn`` raises,
    every field is ``None``; an unknown key or a bad value (wrong type, out of range) makes only that
    field ``None``. Each distinct problem is logged once as a warning.

    Args:
      fn: a zero-argument callable returning a mapping from :class:`ContextSnapshot` field names
        (``battery_percent``, ``charging``, ...) to values.
      fields: the fields this source reports (default: every measured field).
      name: the source's name in logs and benchmarks.

    Raises:
      DataValidationError: ``fields`` names something that is not a context field.
    """

    def __init__(
        self, fn: Callable[[], Mapping[str, Any] | None], fields: Iterable[str] | None = None, name: str = "callback"
    ) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        chosen = tuple(VALUE_FIELDS if fields is None else fields)
        unknown = [f for f in chosen if f not in VALUE_FIELDS]
        if unknown:
            raise DataValidationError(f"unknown context field(s) {unknown}; choose from {list(VALUE_FIELDS)}")
        self.name = name
        self.fields = chosen
        self._fn = fn
        self._logged: set[str] = set()

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._logged:
            self._logged.add(key)
            logger.warning(message, *args)

    def _read(self, now: float) -> dict[str, Any]:
        out: dict[str, Any] = dict.fromkeys(self.fields)
        try:
            got = self._fn()
            items = list(got.items()) if got is not None else []
        except Exception as exc:  # the host's code: anything it raises means "unknown"
            self._warn_once(
                f"raise:{type(exc).__name__}", "context callback %s raised %r; values unknown", self.name, exc
            )
            return out
        for key, value in items:
            if key not in out:
                self._warn_once(f"key:{key}", "context callback %s returned unknown field %r (ignored)", self.name, key)
                continue
            try:
                out[key] = coerce(key, value)
            except ValueError as exc:
                self._warn_once(f"value:{key}", "context callback %s: %s (field unknown)", self.name, exc)
        return out
