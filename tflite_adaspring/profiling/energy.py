"""Energy per inference: modeled from latency and a device power profile, or measured from power sensors.

Modeled: ``energy_mJ = active_power_W(threads) x latency_ms x latency_scale`` where the profile (a JSON
file under ``profiling/devices/``, each stating its sources) gives the power above idle per busy thread
and how much slower the device is than the export host. Measured: Linux powercap/RAPL energy counters
or a battery's voltage x current (or ``power_now``), sampled around repeated calls, minus the same
sensor's reading over an equally long idle period. Every figure is an
:class:`~tflite_adaspring.metadata.EnergyEstimate` labelled ``modeled`` or ``measured``.
Needs no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from tflite_adaspring.errors import DataValidationError, ModelFormatError
from tflite_adaspring.metadata import EnergyEstimate

DEVICES_DIR = Path(__file__).parent / "devices"
PROFILE_SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class DeviceProfile:
    """A device's power model.

    Attributes:
      name: profile name (the key in ``SignatureInfo.energy_mj``).
      description: what device this is.
      active_power_w_per_thread: power above idle per busy inference thread, in watts.
      idle_power_w: the device's idle power (informational: not charged to inferences).
      latency_scale: device latency / export-host latency for the same model.
      sources: where the numbers come from (``what`` and ``ref`` per entry).
      confidence: how far to trust the profile.
    """

    name: str
    description: str
    active_power_w_per_thread: float
    idle_power_w: float
    latency_scale: float
    sources: tuple[dict[str, str], ...]
    confidence: str

    def active_power_w(self, threads: int = 1) -> float:
        """Power above idle while ``threads`` threads run the inference (linear in threads)."""
        return self.active_power_w_per_thread * max(1, int(threads))

    def modeled_energy(self, host_latency_ms: float, threads: int = 1) -> EnergyEstimate:
        """Energy per inference from an export-host latency.

        Args:
          host_latency_ms: latency measured (or predicted) on the export host.
          threads: inference threads.

        Returns:
          A ``modeled`` estimate in millijoules (W x ms = mJ).
        """
        return EnergyEstimate(self.active_power_w(threads) * host_latency_ms * self.latency_scale, "modeled")

    @classmethod
    def from_json(cls, obj: dict[str, Any], where: str = "device profile") -> DeviceProfile:
        """Builds a profile from its JSON; raises :class:`ModelFormatError` naming a bad field."""
        try:
            if obj["schema_version"] != PROFILE_SCHEMA_VERSION:
                raise ModelFormatError(f"{where}: schema_version {obj['schema_version']!r} is not supported")
            sources = tuple({"what": str(s["what"]), "ref": str(s["ref"])} for s in obj["sources"])
            profile = cls(
                name=str(obj["name"]),
                description=str(obj["description"]),
                active_power_w_per_thread=float(obj["active_power_w_per_thread"]),
                idle_power_w=float(obj["idle_power_w"]),
                latency_scale=float(obj["latency_scale"]),
                sources=sources,
                confidence=str(obj["confidence"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{where}: missing or malformed field ({exc!r})") from exc
        if not sources:
            raise ModelFormatError(f"{where}: a device profile must state at least one source")
        if profile.active_power_w_per_thread <= 0 or profile.latency_scale <= 0:
            raise ModelFormatError(f"{where}: active_power_w_per_thread and latency_scale must be > 0")
        return profile


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """Loads a bundled profile by name (``raspberry_pi4``) or any profile JSON by path.

    Raises:
      FileNotFoundError: naming the bundled profiles.
      ModelFormatError: the file is malformed.
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = DEVICES_DIR / f"{name_or_path}.json"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in DEVICES_DIR.glob("*.json")))
        raise FileNotFoundError(f"no device profile {str(name_or_path)!r}; bundled profiles: {known}")
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{path}: not valid JSON ({exc})") from exc
    return DeviceProfile.from_json(obj, str(path))


def bundled_profiles() -> list[DeviceProfile]:
    """Every profile shipped in ``profiling/devices/``, sorted by name."""
    return [load_profile(p) for p in sorted(DEVICES_DIR.glob("*.json"))]


def modeled_energy_table(
    host_latency_ms: float, threads: int = 1, profiles: list[DeviceProfile] | None = None
) -> dict[str, EnergyEstimate]:
    """Profile name -> modeled energy per inference (all bundled profiles by default)."""
    return {p.name: p.modeled_energy(host_latency_ms, threads) for p in profiles or bundled_profiles()}


# ---------------------------------------------------------------------------------------------
# measured energy


class EnergySensor(Protocol):
    """Something that reports cumulative energy in microjoules."""

    name: str

    def start(self) -> None:
        """Begins a measurement."""

    def stop(self) -> float:
        """Ends the measurement; returns the microjoules consumed since :meth:`start`."""


class RaplSensor:
    """Linux powercap/RAPL package energy counters (``/sys/class/powercap/intel-rapl:N/energy_uj``).

    Args:
      zones: the top-level zone folders to sum (one per package).
    """

    name = "rapl"

    def __init__(self, zones: list[Path]):
        if not zones:
            raise DataValidationError("RaplSensor needs at least one powercap zone")
        self.zones = zones
        self._start: list[int] = []

    def _read(self) -> list[int]:
        return [int((z / "energy_uj").read_text().strip()) for z in self.zones]

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> float:
        total = 0
        for zone, before, after in zip(self.zones, self._start, self._read()):
            if after < before:  # the counter wrapped
                after += int((zone / "max_energy_range_uj").read_text().strip())
            total += after - before
        return float(total)


class BatterySensor:
    """A battery's instantaneous power (``power_now`` or ``voltage_now x current_now``), integrated over time.

    Args:
      supply: the ``/sys/class/power_supply/<name>`` folder.
      interval_s: sampling interval.
    """

    name = "battery"

    def __init__(self, supply: Path, interval_s: float = 0.005):
        self.supply = supply
        self.interval_s = interval_s
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def power_w(self) -> float:
        """The current power draw in watts (absolute value: discharging currents may be negative)."""
        power = self.supply / "power_now"
        if power.exists():
            return abs(int(power.read_text().strip())) / 1e6
        volts = int((self.supply / "voltage_now").read_text().strip()) / 1e6
        amps = int((self.supply / "current_now").read_text().strip()) / 1e6
        return abs(volts * amps)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._samples.append((time.perf_counter(), self.power_w()))
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        self._samples = [(time.perf_counter(), self.power_w())]
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._samples.append((time.perf_counter(), self.power_w()))
        joules = sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(self._samples, self._samples[1:]))
        return joules * 1e6


def find_sensor(sysfs: str | Path = "/sys") -> EnergySensor | None:
    """The first available energy sensor: RAPL package zones, else a battery; None when there is none.

    Args:
      sysfs: the sysfs root (tests pass a fake tree).
    """
    root = Path(sysfs)
    powercap = root / "class" / "powercap"
    zones = sorted(p for p in powercap.glob("intel-rapl:*") if p.name.count(":") == 1 and (p / "energy_uj").exists())
    readable = []
    for zone in zones:
        try:
            int((zone / "energy_uj").read_text().strip())
            readable.append(zone)
        except (OSError, ValueError):
            continue
    if readable:
        return RaplSensor(readable)
    for supply in sorted((root / "class" / "power_supply").glob("*")):
        kind = supply / "type"
        if kind.exists() and kind.read_text().strip() == "Battery":
            has_power = (supply / "power_now").exists()
            if has_power or ((supply / "voltage_now").exists() and (supply / "current_now").exists()):
                return BatterySensor(supply)
    return None


def measure_energy(
    fn: Callable[[], Any], runs: int, sensor: EnergySensor, subtract_idle: bool = True
) -> EnergyEstimate:
    """Measured energy per call of ``fn``.

    Args:
      fn: one inference.
      runs: calls measured (make the run last well above the sensor's update period, e.g. > 1 s for RAPL).
      sensor: the energy sensor.
      subtract_idle: subtract the sensor's energy over an idle period as long as the run.

    Returns:
      A ``measured`` estimate in millijoules per call (never negative).
    """
    if runs < 1:
        raise DataValidationError(f"runs must be >= 1, got {runs}")
    sensor.start()
    t0 = time.perf_counter()
    for _ in range(runs):
        fn()
    elapsed = time.perf_counter() - t0
    busy_uj = sensor.stop()
    idle_uj = 0.0
    if subtract_idle:
        sensor.start()
        time.sleep(elapsed)
        idle_uj = sensor.stop()
    return EnergyEstimate(max(0.0, (busy_uj - idle_uj) / runs / 1e3), "measured")
