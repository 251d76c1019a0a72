"""CPU utilisation, contention from other runnable work, and the cores this process may use.

Contention model. Linux shares ``N`` online cores fairly among runnable threads. With ``R`` runnable
threads of other work, each of our ``T`` inference threads gets ``min(1, N / (R + T))`` of a core, so
the inference latency grows by::

    contention_factor(R, N, T) = max(1, (R + T) / N)

``cpu_contention`` in a snapshot is this factor for one thread (``T = 1``); ``cpu_runnable_others``
keeps ``R`` so the runtime can evaluate other thread counts. Measured on a 2-core machine with one busy
background process (R = 1): 1 thread 216 -> 219 us (model: 1.0), 2 threads 136 -> 227 us (model: 1.5;
the real 1.66 also pays for threads waiting on each other). ``R`` is the instantaneous run-queue length
from ``/proc/loadavg`` (field 4, ``running/total``) minus the reading thread itself, smoothed by an
exponential moving average because a single sample is noisy. The run queue is machine-wide, so ``N`` is
the machine's online cores; the process's own cap (cgroup quota, affinity) is ``cpu_cores_available``.
"""

from __future__ import annotations

import os
from typing import Any

from tflite_adaspring.context._cgroup import v1_dirs, v2_dirs
from tflite_adaspring.context._files import PseudoFile, parse_int, read_once
from tflite_adaspring.context.source import FileSource


def contention_factor(runnable_others: float, cores: float, threads: int = 1) -> float:
    """Expected latency inflation of a ``threads``-thread inference next to ``runnable_others`` threads.

    Args:
      runnable_others: runnable threads of other work (``ContextSnapshot.cpu_runnable_others``).
      cores: cores the scheduler shares among them.
      threads: threads our inference uses.

    Returns:
      ``max(1, (runnable_others + threads) / cores)``, >= 1.
    """
    if not cores > 0:
        raise ValueError(f"cores must be > 0, got {cores!r}")
    return max(1.0, (runnable_others + threads) / cores)


def parse_cpu_list(text: str | None) -> int | None:
    """Counts the CPUs in a kernel cpu list such as ``0-3,6``; ``None`` for missing or garbage text."""
    if not text:
        return None
    count = 0
    try:
        for part in text.strip().split(","):
            low, _, high = part.partition("-")
            first, last = int(low), int(high) if high else int(low)
            if last < first:
                return None
            count += last - first + 1
    except ValueError:
        return None
    return count if count > 0 else None


def _quota_cores(quota_text: str | None, period_text: str | None) -> float | None:
    """Cores granted by a CFS quota and period (``None`` = unlimited or unreadable)."""
    quota, period = parse_int(quota_text), parse_int(period_text)
    if quota is None or period is None or quota <= 0 or period <= 0:
        return None
    return quota / period


def cgroup_cpu_limit(root: str) -> float | None:
    """Smallest CPU quota (in cores) over this process's cgroup and its ancestors, v2 and v1.

    Args:
      root: filesystem root.

    Returns:
      The limit in cores, or ``None`` when no quota is set or none can be read.
    """
    limits = []
    for folder in v2_dirs(root):
        text = read_once(os.path.join(folder, "cpu.max"))
        if text:
            quota, _, period = text.partition(" ")
            limits.append(_quota_cores(quota if quota != "max" else None, period or "100000"))
    for folder in v1_dirs(root, "cpu"):
        limits.append(
            _quota_cores(
                read_once(os.path.join(folder, "cpu.cfs_quota_us")),
                read_once(os.path.join(folder, "cpu.cfs_period_us")),
            )
        )
    known = [v for v in limits if v is not None]
    return min(known) if known else None


class CpuLoadSource(FileSource):
    """Reads ``cpu_utilization``, ``cpu_contention``, ``cpu_runnable_others`` and ``cpu_cores_available``.

    ``cpu_utilization`` is the busy fraction of all cores between two reads of the ``cpu`` line of
    ``/proc/stat`` (busy = total - idle - iowait); it is ``None`` on the first read, and a window shorter
    than ``min_window_ticks`` clock ticks keeps the previous value (ticks are 10 ms per core, so short
    windows are too coarse). It includes this process's own work. ``cpu_cores_available`` is the minimum
    of the online cores, the cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``)
    and, on the real root, the scheduler affinity; it is re-read at each re-discovery. See the module
    docstring for the contention model.

    Args:
      root: filesystem root (see :class:`FileSource`).
      keep_open: see :class:`FileSource`.
      rescan_s: seconds between re-reads of online cores, quota and affinity.
      alpha: weight of the newest run-queue sample in the moving average (1 = no smoothing).
      min_window_ticks: shortest ``/proc/stat`` window (summed over cores) that updates utilisation.
    """

    name = "cpu_load"
    fields = ("cpu_utilization", "cpu_contention", "cpu_runnable_others", "cpu_cores_available")

    def __init__(
        self,
        root: str | os.PathLike = "/",
        keep_open: bool | None = None,
        rescan_s: float = 10.0,
        alpha: float = 0.5,
        min_window_ticks: int = 10,
    ) -> None:
        super().__init__(root, keep_open, rescan_s)
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        self.alpha = float(alpha)
        self.min_window_ticks = int(min_window_ticks)
        self._stat: PseudoFile | None = None
        self._loadavg: PseudoFile | None = None
        self._online: int | None = None
        self._cores: float | None = None
        self._last_ticks: tuple[int, int] | None = None  # (total, idle) at the start of the current window
        self._utilization: float | None = None
        self._others: float | None = None

    def _discover(self) -> None:
        self._stat = self.open_file(self.path("proc/stat"), 256)
        self._loadavg = self.open_file(self.path("proc/loadavg"), 128)
        self._online = parse_cpu_list(read_once(self.path("sys/devices/system/cpu/online")))
        if self._online is None and self.is_real_root:
            self._online = os.cpu_count()
        caps = [self._online, cgroup_cpu_limit(self.root)]
        if self.is_real_root and hasattr(os, "sched_getaffinity"):
            caps.append(len(os.sched_getaffinity(0)))
        known = [float(c) for c in caps if c is not None]
        self._cores = min(known) if known else None

    def _read(self, now: float) -> dict[str, Any]:
        others = self._read_runnable_others()
        contention = contention_factor(others, self._online) if others is not None and self._online else None
        return {
            "cpu_utilization": self._read_utilization(),
            "cpu_contention": contention,
            "cpu_runnable_others": others,
            "cpu_cores_available": self._cores,
        }

    def _read_utilization(self) -> float | None:
        ticks = _parse_stat_cpu_line(self._stat.read() if self._stat else None)
        if ticks is None:
            return None
        last = self._last_ticks
        if last is None or ticks[0] < last[0] or ticks[1] < last[1]:  # first read or counters reset
            self._last_ticks, self._utilization = ticks, None
            return None
        window = ticks[0] - last[0]
        if window >= self.min_window_ticks:
            busy = window - (ticks[1] - last[1])
            self._utilization = min(1.0, max(0.0, busy / window))
            self._last_ticks = ticks
        return self._utilization

    def _read_runnable_others(self) -> float | None:
        data = self._loadavg.read() if self._loadavg else None
        try:
            running = int(data.split()[3].split(b"/")[0]) if data else None
        except (IndexError, ValueError):
            running = None
        if running is None or running < 0:
            self._others = None
            return None
        sample = float(max(0, running - 1))  # the reading thread itself is running
        previous = self._others
        self._others = sample if previous is None else previous + self.alpha * (sample - previous)
        return self._others


def _parse_stat_cpu_line(data: bytes | None) -> tuple[int, int] | None:
    """Returns ``(total, idle + iowait)`` ticks from the aggregate ``cpu`` line of ``/proc/stat``."""
    if not data:
        return None
    line = data.split(b"\n", 1)[0].split()
    if len(line) < 5 or line[0] != b"cpu":
        return None
    try:
        ticks = [int(v) for v in line[1:9]]  # user nice system idle iowait irq softirq steal (guest is in user)
    except ValueError:
        return None
    if min(ticks) < 0:
        return None
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return sum(ticks), idle
