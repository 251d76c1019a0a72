"""ContextMonitor: one cached, thread-safe view of every context source."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from tflite_adaspring.context._fields import SOURCE_FIELDS, VALUE_FIELDS, coerce
from tflite_adaspring.context.battery import BatterySource
from tflite_adaspring.context.cpu_load import CpuLoadSource
from tflite_adaspring.context.cpufreq_thermal import CpuFreqThermalSource
from tflite_adaspring.context.memory import MemorySource
from tflite_adaspring.context.requirements import RequirementsSource
from tflite_adaspring.context.snapshot import ContextSnapshot, Requirements
from tflite_adaspring.context.source import ContextSource
from tflite_adaspring.errors import DataValidationError


def default_sources(root: str | os.PathLike = "/") -> list[ContextSource]:
    """The Linux sources for ``root``: battery, CPU load, frequency/thermal and memory.

    Args:
      root: filesystem root (``"/"`` for this machine).

    Returns:
      New source objects, in merge order.
    """
    return [BatterySource(root), CpuLoadSource(root), CpuFreqThermalSource(root), MemorySource(root)]


class ContextMonitor:
    """Reads every source at most once per ``period_s`` and otherwise returns the cached snapshot.

    Values are merged in source order: a later source's known value replaces an earlier one, ``None``
    never hides a known value (so a :class:`CallbackSource` placed after the Linux sources fills in what
    sysfs does not expose). Overrides (:meth:`override`) win over every source. The app's requirements
    come from a :class:`RequirementsSource` (the first one in ``sources``, else a new one placed first).

    ``snapshot()`` may be called from several threads: the cached path reads one attribute holding an
    immutable tuple; refreshes are serialised by a lock and re-check the cache inside it.

    Args:
      sources: context sources (default: :func:`default_sources` for ``root``).
      period_s: cache period in seconds; 0 re-reads on every call.
      clock: time source in seconds (``time.monotonic``; a :class:`TraceClock` for replays and tests).
      requirements: initial app requirements.
      root: filesystem root for the default sources.
    """

    def __init__(
        self,
        sources: Iterable[ContextSource] | None = None,
        period_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        requirements: Requirements | None = None,
        root: str | os.PathLike = "/",
    ) -> None:
        if not (isinstance(period_s, (int, float)) and period_s >= 0 and math.isfinite(period_s)):
            raise DataValidationError(f"period_s must be a finite number >= 0 seconds, got {period_s!r}")
        chosen = list(default_sources(root) if sources is None else sources)
        for source in chosen:
            if not isinstance(source, ContextSource):
                raise DataValidationError(f"sources must be ContextSource objects, got {type(source).__name__}")
        req_source = next((s for s in chosen if isinstance(s, RequirementsSource)), None)
        if req_source is None:
            req_source = RequirementsSource()
            chosen.insert(0, req_source)
        if requirements is not None:
            req_source.set(requirements)
        self._sources = tuple(chosen)
        self._requirements = req_source
        self._period = float(period_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._overrides: dict[str, Any] = {}
        # (refreshed at, valid until, snapshot): replaced as a whole so lock-free readers see one state.
        self._state: tuple[float, float, ContextSnapshot | None] = (math.inf, -math.inf, None)

    @property
    def sources(self) -> tuple[ContextSource, ...]:
        """The sources in merge order (the requirements source included)."""
        return self._sources

    @property
    def period_s(self) -> float:
        """The cache period in seconds."""
        return self._period

    def snapshot(self) -> ContextSnapshot:
        """Returns the current context, re-reading the sources if the cached one is older than ``period_s``.

        Returns:
          A frozen :class:`ContextSnapshot` stamped with the clock time of its refresh.
        """
        now = self._clock()
        refreshed, until, snap = self._state
        if refreshed <= now < until:
            return snap
        with self._lock:
            refreshed, until, snap = self._state
            now = self._clock()  # re-read: time passed while waiting, refresh times must not go backwards
            if refreshed <= now < until:  # another thread refreshed while we waited
                return snap
            snap = self._read_sources(now)
            self._state = (now, now + self._period, snap)
        return snap

    def _read_sources(self, now: float) -> ContextSnapshot:
        values: dict[str, Any] = {}
        for source in self._sources:
            for key, value in source.read(now).items():
                if (value is not None or key not in values) and key in SOURCE_FIELDS:
                    values[key] = value
        values.update(self._overrides)
        if values.get("requirements") is None:
            values["requirements"] = self._requirements.requirements
        return ContextSnapshot(timestamp=now, **values)

    def invalidate(self) -> None:
        """Makes the next :meth:`snapshot` re-read every source."""
        with self._lock:  # after any refresh in progress, so that refresh cannot re-validate stale values
            self._invalidate()

    def _invalidate(self) -> None:
        self._state = (math.inf, -math.inf, None)

    @property
    def requirements(self) -> Requirements:
        """The app's current requirements."""
        return self._requirements.requirements

    def set_requirements(self, requirements: Requirements | None = None, **changes: Any) -> Requirements:
        """Replaces or changes the app's requirements; the next :meth:`snapshot` shows them.

        Args:
          requirements: a complete new value (default: the current one).
          **changes: fields to change, e.g. ``latency_budget_ms=5.0``.

        Returns:
          The new requirements.

        Raises:
          DataValidationError: an unknown field or an invalid value.
        """
        new = self._requirements.set(requirements, **changes)
        self.invalidate()
        return new

    def override(self, **values: Any) -> None:
        """Forces context values regardless of the sources, e.g. ``override(battery_percent=15.0)``.

        ``None`` forces "unknown". Useful for tests and demos; :meth:`clear_overrides` removes them.

        Args:
          **values: measured fields of :class:`ContextSnapshot` (not ``timestamp`` or ``requirements``).

        Raises:
          DataValidationError: an unknown field or a value of the wrong type or range.
        """
        checked = {}
        for name, value in values.items():
            if name not in VALUE_FIELDS:
                raise DataValidationError(f"cannot override {name!r}; overridable fields: {list(VALUE_FIELDS)}")
            try:
                checked[name] = coerce(name, value)
            except ValueError as exc:
                raise DataValidationError(f"override {exc}") from exc
        with self._lock:
            self._overrides = {**self._overrides, **checked}
            self._invalidate()

    def clear_overrides(self, *names: str) -> None:
        """Removes the overrides of ``names`` (all overrides when none are given)."""
        with self._lock:
            self._overrides = {k: v for k, v in self._overrides.items() if names and k not in names}
            self._invalidate()

    @property
    def overrides(self) -> dict[str, Any]:
        """A copy of the active overrides."""
        return dict(self._overrides)

    def close(self) -> None:
        """Closes every source's open files."""
        for source in self._sources:
            source.close()

    def __enter__(self) -> ContextMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
