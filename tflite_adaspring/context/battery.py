"""Battery level and external power from Linux ``/sys/class/power_supply``."""

from __future__ import annotations

import os
from typing import Any

from tflite_adaspring.context._files import PseudoFile, parse_int, parse_word, read_once
from tflite_adaspring.context.source import FileSource

POWER_SUPPLY_DIR = "sys/class/power_supply"
# Battery ``status`` values that mean the device is on external power.
ON_POWER_STATUSES = frozenset(("Charging", "Full", "Not charging"))


class BatterySource(FileSource):
    """Reads ``battery_percent`` and ``charging`` from power_supply devices.

    Batteries are supplies with ``type`` = ``Battery`` (``scope`` = ``Device`` batteries of mice and
    headsets are skipped); ``battery_percent`` is the mean ``capacity`` of the system batteries.
    ``charging`` (on external power) is True when any non-battery supply (AC, USB, wireless) reports
    ``online`` != 0; when no supply has an ``online`` file, it comes from the battery ``status``
    (Charging / Full / Not charging -> True, Discharging -> False).

    Args:
      root: filesystem root (see :class:`FileSource`).
      keep_open: see :class:`FileSource`.
      rescan_s: seconds between re-discoveries of supplies (chargers may appear).
    """

    name = "battery"
    fields = ("battery_percent", "charging")

    def __init__(self, root: str | os.PathLike = "/", keep_open: bool | None = None, rescan_s: float = 10.0) -> None:
        super().__init__(root, keep_open, rescan_s)
        self._capacity: list[PseudoFile] = []
        self._status: list[PseudoFile] = []
        self._online: list[PseudoFile] = []

    def _discover(self) -> None:
        self._capacity, self._status, self._online = [], [], []
        base = self.path(POWER_SUPPLY_DIR)
        try:
            names = sorted(os.listdir(base))
        except OSError:
            return
        for name in names:
            folder = os.path.join(base, name)
            kind = read_once(os.path.join(folder, "type"))
            if kind == "Battery":
                if read_once(os.path.join(folder, "scope")) == "Device":
                    continue
                self._capacity.append(self.open_file(os.path.join(folder, "capacity"), 32))
                self._status.append(self.open_file(os.path.join(folder, "status"), 32))
            elif kind is not None and os.path.exists(os.path.join(folder, "online")):
                self._online.append(self.open_file(os.path.join(folder, "online"), 32))

    def _read(self, now: float) -> dict[str, Any]:
        levels = [v for v in (parse_int(f.read()) for f in self._capacity) if v is not None and 0 <= v <= 100]
        percent = sum(levels) / len(levels) if levels else None
        return {"battery_percent": percent, "charging": self._on_external_power()}

    def _on_external_power(self) -> bool | None:
        online = [v for v in (parse_int(f.read()) for f in self._online) if v is not None]
        if online:
            return any(v != 0 for v in online)
        statuses = [parse_word(f.read()) for f in self._status]
        if any(s in ON_POWER_STATUSES for s in statuses):
            return True
        return False if "Discharging" in statuses else None
