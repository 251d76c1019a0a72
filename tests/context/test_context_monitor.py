"""ContextMonitor: caching period, merging, overrides, requirements, threads, the real machine."""

from __future__ import annotations

import threading
import time

import pytest

from tflite_adaspring.context.callback import CallbackSource
from tflite_adaspring.context.monitor import ContextMonitor, default_sources
from tflite_adaspring.context.requirements import RequirementsSource
from tflite_adaspring.context.snapshot import ContextSnapshot, Requirements
from tflite_adaspring.context.source import ContextSource
from tflite_adaspring.context.trace import TraceClock
from tflite_adaspring.errors import DataValidationError


class _Counter(ContextSource):
    """Reports battery = number of reads so far, so tests can see when a refresh happened."""

    name = "counter"
    fields = ("battery_percent",)

    def __init__(self) -> None:
        self.reads = 0

    def _read(self, now):
        self.reads += 1
        return {"battery_percent": float(self.reads)}


def test_caches_for_one_period_with_fake_clock():
    clock, counter = TraceClock(100.0), _Counter()
    monitor = ContextMonitor([counter], period_s=0.05, clock=clock)
    first = monitor.snapshot()
    assert first.timestamp == 100.0 and first.battery_percent == 1.0
    clock.advance(0.049)
    assert monitor.snapshot() is first
    clock.advance(0.001)
    second = monitor.snapshot()
    assert second.battery_percent == 2.0 and second.timestamp == pytest.approx(100.05)
    clock.set(10.0)  # clock went backwards (replay restarted): refresh
    assert monitor.snapshot().battery_percent == 3.0
    monitor.invalidate()
    assert monitor.snapshot().battery_percent == 4.0
    assert counter.reads == 4


def test_period_zero_reads_every_time():
    counter = _Counter()
    monitor = ContextMonitor([counter], period_s=0.0, clock=TraceClock())
    for _ in range(5):
        monitor.snapshot()
    assert counter.reads == 5


def test_later_known_values_win_and_none_never_hides():
    first = CallbackSource(lambda: {"battery_percent": 10.0, "charging": False, "temperature_c": 30.0})
    second = CallbackSource(lambda: {"battery_percent": 90.0, "charging": None})
    snap = ContextMonitor([first, second], clock=TraceClock()).snapshot()
    assert (snap.battery_percent, snap.charging, snap.temperature_c) == (90.0, False, 30.0)


def test_unknown_keys_from_custom_sources_are_ignored():
    class Sloppy(ContextSource):
        name = "sloppy"
        fields = ("battery_percent",)

        def _read(self, now):
            return {"battery_percent": 5.0, "not_a_field": 1}

    assert ContextMonitor([Sloppy()], clock=TraceClock()).snapshot().battery_percent == 5.0


def test_overrides_win_force_unknown_and_clear():
    clock = TraceClock()
    monitor = ContextMonitor([CallbackSource(lambda: {"battery_percent": 80.0, "charging": True})], clock=clock)
    assert monitor.snapshot().battery_percent == 80.0
    monitor.override(battery_percent=15, charging=None)  # takes effect within the period
    snap = monitor.snapshot()
    assert snap.battery_percent == 15.0 and snap.charging is None
    assert monitor.overrides == {"battery_percent": 15.0, "charging": None}
    monitor.clear_overrides("charging")
    assert monitor.snapshot().charging is True and monitor.snapshot().battery_percent == 15.0
    monitor.clear_overrides()
    assert monitor.snapshot().battery_percent == 80.0 and monitor.overrides == {}


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"battery": 1.0}, "battery"), ({"timestamp": 1.0}, "timestamp"), ({"cpu_utilization": 2.0}, "cpu_utilization")],
)
def test_bad_overrides(kwargs, fragment):
    with pytest.raises(DataValidationError, match=fragment):
        ContextMonitor([], clock=TraceClock()).override(**kwargs)


def test_requirements_are_visible_immediately():
    clock = TraceClock()
    monitor = ContextMonitor([], period_s=10.0, clock=clock, requirements=Requirements(latency_budget_ms=20.0))
    assert monitor.snapshot().requirements.latency_budget_ms == 20.0
    monitor.set_requirements(latency_budget_ms=5.0, energy_mode="saver")
    snap = monitor.snapshot()
    assert snap.requirements == Requirements(latency_budget_ms=5.0, energy_mode="saver") == monitor.requirements
    with pytest.raises(DataValidationError):
        monitor.set_requirements(energy_mode="warp")


def test_given_requirements_source_is_used_not_duplicated():
    req = RequirementsSource(Requirements(min_accuracy=0.5))
    monitor = ContextMonitor([req], clock=TraceClock())
    assert monitor.sources == (req,)
    monitor.set_requirements(min_accuracy=0.7)
    assert req.requirements.min_accuracy == 0.7


def test_bad_construction():
    with pytest.raises(DataValidationError, match="period_s"):
        ContextMonitor([], period_s=-1)
    with pytest.raises(DataValidationError, match="ContextSource"):
        ContextMonitor([object()])


def test_default_sources_on_fake_tree(tree):
    root = tree(
        {
            "sys/class/power_supply/BAT0/type": "Battery\n",
            "sys/class/power_supply/BAT0/capacity": "33\n",
            "sys/class/power_supply/BAT0/status": "Discharging\n",
            "proc/meminfo": "MemAvailable: 1024 kB\n",
            "proc/loadavg": "0 0 0 1/50 7\n",
            "sys/devices/system/cpu/online": "0-3\n",
        }
    )
    assert [s.name for s in default_sources(root)] == ["battery", "cpu_load", "cpufreq_thermal", "memory"]
    with ContextMonitor(root=root, clock=TraceClock()) as monitor:
        snap = monitor.snapshot()
    assert snap.battery_percent == 33.0 and snap.charging is False
    assert snap.memory_available_bytes == 1024 * 1024
    assert snap.cpu_cores_available == 4.0 and snap.cpu_contention == 1.0
    assert snap.cpu_freq_ratio is None and snap.throttled is None


def test_thread_safety_smoke():
    counter = _Counter()
    clock_lock = threading.Lock()
    ticks = [0.0]

    def clock():
        with clock_lock:
            ticks[0] += 0.001
            return ticks[0]

    monitor = ContextMonitor([counter], period_s=0.01, clock=clock)
    errors, seen = [], []

    def worker():
        try:
            last = 0.0
            for _ in range(3000):
                snap = monitor.snapshot()
                assert isinstance(snap, ContextSnapshot) and snap.battery_percent >= 1.0
                assert snap.battery_percent >= last  # refreshes never go back in time
                last = snap.battery_percent
            seen.append(last)
        except Exception as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    total_calls = 6 * 3000
    # one refresh per 10 clock ticks at most (plus a few where threads raced past the cached check)
    assert counter.reads <= total_calls / 10 + 50
    assert counter.reads >= 2


def test_real_machine_snapshot_and_cached_cost():
    with ContextMonitor() as monitor:
        snap = monitor.snapshot()
        assert snap.memory_available_bytes is not None and snap.memory_available_bytes > 0
        assert snap.cpu_cores_available is not None and snap.cpu_cores_available >= 1
        assert snap.cpu_contention is not None and snap.cpu_contention >= 1.0
        assert snap.requirements == Requirements()
        # this machine has no battery/cpufreq/thermal: those may be None, but must not raise
        for name in ("battery_percent", "charging", "cpu_freq_ratio", "throttled", "temperature_c"):
            assert getattr(snap, name) is None or isinstance(getattr(snap, name), (bool, float))
        n = 20000
        start = time.perf_counter()
        for _ in range(n):
            monitor.snapshot()
        cached_us = (time.perf_counter() - start) / n * 1e6
    assert cached_us < 50.0, f"cached snapshot() costs {cached_us:.2f} us"


def test_real_machine_utilisation_appears_after_a_window():
    with ContextMonitor(period_s=0.0) as monitor:
        monitor.snapshot()
        time.sleep(0.15)
        snap = monitor.snapshot()
    assert snap.cpu_utilization is not None and 0.0 <= snap.cpu_utilization <= 1.0
