"""CPU frequency, temperature and throttling from cpufreq, thermal zones and throttle counters.

Throttling rule (kept simple on purpose). ``throttled`` is True when any of these signals fires:

* frequency cap: a cpufreq policy's ``scaling_max_freq`` is below ``cap_ratio`` (0.8) of its
  ``cpuinfo_max_freq``, i.e. the most the governor may pick *under load* has been lowered (thermal
  cooling devices and power daemons lower it). A low ``scaling_cur_freq`` alone is not throttling:
  an idle CPU runs slowly by design (DVFS);
* temperature: a thermal zone is at or above its lowest ``passive`` (or ``hot``) trip point, where the
  kernel starts passive cooling, i.e. throttling;
* counters: an x86 ``thermal_throttle/{core,package}_throttle_count`` grew since the previous read.

It is False when at least one signal could be evaluated and none fired, and ``None`` when none could.
``cpu_freq_ratio`` is ``scaling_cur_freq / cpuinfo_max_freq`` and ``cpu_freq_cap_ratio`` is
``scaling_max_freq / cpuinfo_max_freq``, each averaged over CPUs (a policy shared by several CPUs counts
once per CPU). The current ratio is low whenever the CPU idles, so latency predictions should use the cap
ratio: under load the governor raises the clock up to the cap. ``temperature_c`` is the hottest zone.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from typing import Any

from tflite_adaspring.context._files import PseudoFile, parse_int, read_once
from tflite_adaspring.context.source import FileSource

CPU_DIR = "sys/devices/system/cpu"
THERMAL_DIR = "sys/class/thermal"
THROTTLE_TRIP_TYPES = frozenset(("passive", "hot"))
THROTTLE_COUNTERS = ("core_throttle_count", "package_throttle_count")
_CPU_NAME = re.compile(r"cpu(\d+)")
_ZONE_NAME = re.compile(r"thermal_zone(\d+)")
_TRIP_TYPE = re.compile(r"trip_point_(\d+)_type")


def millicelsius_to_celsius(raw: int) -> float | None:
    """Converts a thermal-zone reading to degrees Celsius.

    The kernel ABI is millidegrees; some vendor drivers report whole degrees, so values below 200 in
    magnitude are taken as degrees. Results outside [-60, 200] C are treated as bogus sensors.

    Args:
      raw: the integer read from ``temp`` or ``trip_point_N_temp``.

    Returns:
      Degrees Celsius, or ``None`` for an implausible reading.
    """
    celsius = raw / 1000.0 if abs(raw) >= 200 else float(raw)
    return celsius if -60.0 <= celsius <= 200.0 else None


@dataclasses.dataclass(frozen=True)
class _Policy:
    weight: int  # CPUs sharing this policy
    max_khz: int
    cur: PseudoFile
    cap: PseudoFile


@dataclasses.dataclass(frozen=True)
class _Zone:
    temp: PseudoFile
    trip_c: float | None  # lowest passive/hot trip point


def _numbered(folder: str, pattern: re.Pattern[str]) -> list[tuple[int, str]]:
    """Returns ``(number, name)`` of the entries of ``folder`` that fully match ``pattern``, by number."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted((int(m.group(1)), n) for n in names if (m := pattern.fullmatch(n)))


class CpuFreqThermalSource(FileSource):
    """Reads ``cpu_freq_ratio``, ``cpu_freq_cap_ratio``, ``temperature_c`` and ``throttled`` (module docstring).

    Args:
      root: filesystem root (see :class:`FileSource`).
      keep_open: see :class:`FileSource`.
      rescan_s: seconds between re-discoveries of CPUs, zones, maximum frequencies and trip points.
      cap_ratio: a policy whose allowed maximum is below this fraction of the hardware maximum counts
        as throttled.
    """

    name = "cpufreq_thermal"
    fields = ("cpu_freq_ratio", "cpu_freq_cap_ratio", "throttled", "temperature_c")

    def __init__(
        self,
        root: str | os.PathLike = "/",
        keep_open: bool | None = None,
        rescan_s: float = 10.0,
        cap_ratio: float = 0.8,
    ) -> None:
        super().__init__(root, keep_open, rescan_s)
        if not 0 < cap_ratio <= 1:
            raise ValueError(f"cap_ratio must be in (0, 1], got {cap_ratio!r}")
        self.cap_ratio = float(cap_ratio)
        self._policies: list[_Policy] = []
        self._zones: list[_Zone] = []
        self._counters: list[PseudoFile] = []
        self._counter_values: list[int | None] = []

    def _discover(self) -> None:
        self._policies, self._zones, self._counters = [], [], []
        cpu_dir = self.path(CPU_DIR)
        shared: dict[str, list[str]] = {}  # policy folder (resolved) -> cpu folders using it
        for _, name in _numbered(cpu_dir, _CPU_NAME):
            cpufreq = os.path.join(cpu_dir, name, "cpufreq")
            if os.path.isdir(cpufreq):
                shared.setdefault(os.path.realpath(cpufreq), []).append(cpufreq)
            for counter in THROTTLE_COUNTERS:
                path = os.path.join(cpu_dir, name, "thermal_throttle", counter)
                if os.path.exists(path):
                    self._counters.append(self.open_file(path, 32))
        for folder, users in shared.items():
            max_khz = parse_int(read_once(os.path.join(folder, "cpuinfo_max_freq")))
            if max_khz is not None and max_khz > 0:
                cur = self.open_file(os.path.join(folder, "scaling_cur_freq"), 32)
                cap = self.open_file(os.path.join(folder, "scaling_max_freq"), 32)
                self._policies.append(_Policy(len(users), max_khz, cur, cap))
        thermal_dir = self.path(THERMAL_DIR)
        for _, name in _numbered(thermal_dir, _ZONE_NAME):
            zone = os.path.join(thermal_dir, name)
            if os.path.exists(os.path.join(zone, "temp")):
                self._zones.append(_Zone(self.open_file(os.path.join(zone, "temp"), 32), _lowest_trip_c(zone)))
        self._counter_values = [None] * len(self._counters)

    def _read(self, now: float) -> dict[str, Any]:
        ratio, cap_ratio, capped = self._read_frequency()
        temperature, hot = self._read_thermal()
        signals = (capped, hot, self._read_counters())
        if True in signals:
            throttled: bool | None = True
        else:
            throttled = False if False in signals else None
        return {
            "cpu_freq_ratio": ratio,
            "cpu_freq_cap_ratio": cap_ratio,
            "throttled": throttled,
            "temperature_c": temperature,
        }

    def _read_frequency(self) -> tuple[float | None, float | None, bool | None]:
        """Returns (mean cur/max, mean cap/max, any policy capped below ``cap_ratio``); None if unreadable."""
        current = self._ratios(lambda p: p.cur)
        caps = self._ratios(lambda p: p.cap)
        capped = any(ratio < self.cap_ratio for _, ratio in caps) if caps else None
        return _weighted_mean(current), _weighted_mean(caps), capped

    def _ratios(self, file_of: Callable[[_Policy], PseudoFile]) -> list[tuple[int, float]]:
        """Returns ``(CPU count, value / cpuinfo_max_freq)`` for each policy whose file reads as a frequency."""
        ratios = []
        for policy in self._policies:
            khz = parse_int(file_of(policy).read())
            if khz is not None and khz > 0:
                ratios.append((policy.weight, khz / policy.max_khz))
        return ratios

    def _read_thermal(self) -> tuple[float | None, bool | None]:
        """Returns (hottest zone in C, any zone at/above its trip point) - each None if unknown."""
        hottest, hot = None, None
        for zone in self._zones:
            raw = parse_int(zone.temp.read())
            celsius = millicelsius_to_celsius(raw) if raw is not None else None
            if celsius is None:
                continue
            hottest = celsius if hottest is None else max(hottest, celsius)
            if zone.trip_c is not None:
                hot = hot or celsius >= zone.trip_c
        return hottest, hot

    def _read_counters(self) -> bool | None:
        """Returns whether a throttle counter grew since the last read (None before a baseline exists)."""
        grew = None
        for i, counter in enumerate(self._counters):
            value = parse_int(counter.read())
            previous, self._counter_values[i] = self._counter_values[i], value
            if value is not None and previous is not None:
                grew = grew or value > previous
        return grew


def _weighted_mean(pairs: list[tuple[int, float]]) -> float | None:
    """Mean of ``(weight, value)`` pairs, ``None`` when empty."""
    total = sum(w for w, _ in pairs)
    return sum(w * v for w, v in pairs) / total if total else None


def _lowest_trip_c(zone: str) -> float | None:
    """Lowest passive/hot trip point of a thermal zone folder in C, or None if it has none."""
    trips = []
    for number, name in _numbered(zone, _TRIP_TYPE):
        if read_once(os.path.join(zone, name)) in THROTTLE_TRIP_TYPES:
            raw = parse_int(read_once(os.path.join(zone, f"trip_point_{number}_temp")))
            celsius = millicelsius_to_celsius(raw) if raw is not None else None
            if celsius is not None:
                trips.append(celsius)
    return min(trips) if trips else None
