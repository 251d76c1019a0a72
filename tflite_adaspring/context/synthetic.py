"""A deterministic simulated "day" of device context for demos, the case study and tests (values are modeled)."""

from __future__ import annotations

import math
import random

from tflite_adaspring.context.cpu_load import contention_factor
from tflite_adaspring.context.snapshot import ContextSnapshot, Requirements
from tflite_adaspring.context.trace import ContextTrace
from tflite_adaspring.errors import DataValidationError

IDLE_TEMPERATURE_C = 40.0
PASSIVE_TRIP_C = 65.0  # at or above: throttled, frequency capped at THROTTLED_FREQ_RATIO
THROTTLED_FREQ_RATIO = 0.7
THERMAL_TIME_CONSTANT_S = 10.0
HEAT_PER_BUSY_THREAD_C = 17.0  # steady-state rise per runnable other thread (up to the core count)
GIB = 1 << 30


def _energy_mode(battery_percent: float) -> str:
    """The energy mode a battery-aware app would ask for at this charge."""
    if battery_percent > 60.0:
        return "performance"
    return "balanced" if battery_percent > 25.0 else "saver"


def _bursts(duration_s: float, period_s: float, length_s: float, rng: random.Random) -> list[tuple[float, float, int]]:
    """One contention burst per period at a random offset: ``(start, end, runnable other threads)``."""
    bursts = []
    for k in range(math.ceil(duration_s / period_s)):
        start = k * period_s + rng.uniform(0.0, period_s - length_s)
        bursts.append((start, start + length_s, rng.choice((1, 2, 3))))
    return bursts


def synthetic_day(
    duration_s: float = 600.0,
    seed: int = 0,
    step_s: float = 1.0,
    cores: int = 2,
    battery_start: float = 100.0,
    battery_end: float = 5.0,
    burst_period_s: float = 60.0,
    burst_duration_s: float = 15.0,
    latency_budgets_ms: tuple[float, ...] = (10.0, 5.0, 20.0),
    budget_period_s: float = 120.0,
    min_accuracy: float | None = None,
    memory_bytes: int = 2 * GIB,
) -> ContextTrace:
    """Simulates a compressed day of phone use; the same arguments always give the same trace.

    * battery drains monotonically from ``battery_start`` to exactly ``battery_end``, faster while busy;
      the device is never charging;
    * once per ``burst_period_s`` (at a seeded random offset) other apps keep 1-3 threads runnable for
      ``burst_duration_s``: utilisation and contention rise, available memory drops by 0.75 GiB;
    * temperature follows the load with a 10 s lag; at 65 C the device is throttled (frequency capped at
      0.7 of the maximum); the current frequency follows utilisation (DVFS);
    * the latency budget cycles through ``latency_budgets_ms`` every ``budget_period_s``; the energy
      mode follows the battery (performance > 60 %, balanced > 25 %, else saver).

    Args:
      duration_s: length of the trace in seconds.
      seed: random seed for burst timing/size and noise.
      step_s: seconds between rows.
      cores: simulated cores (``cpu_cores_available``).
      battery_start: battery at t = 0, percent.
      battery_end: battery at t = duration_s, percent.
      burst_period_s: one contention burst per this many seconds.
      burst_duration_s: length of each burst.
      latency_budgets_ms: latency budgets cycled through.
      budget_period_s: seconds between budget changes.
      min_accuracy: the app's constant minimum accuracy (``None``: no constraint).
      memory_bytes: memory available outside bursts.

    Returns:
      A :class:`ContextTrace` with ``floor(duration_s / step_s) + 1`` rows starting at t = 0.

    Raises:
      DataValidationError: an argument is out of range (the message names it).
    """
    checks = {
        "duration_s": duration_s > 0,
        "step_s": 0 < step_s <= duration_s,
        "cores": cores > 0,
        "battery_start/battery_end (0 <= end <= start <= 100)": 0 <= battery_end <= battery_start <= 100,
        "burst_duration_s": 0 < burst_duration_s <= burst_period_s,
        "latency_budgets_ms": bool(latency_budgets_ms) and all(b > 0 for b in latency_budgets_ms),
        "budget_period_s": budget_period_s > 0,
        "memory_bytes (> 1 GiB)": memory_bytes > GIB,
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise DataValidationError(f"synthetic_day: invalid argument(s) {bad}; see the docstring for valid ranges")
    rng = random.Random(seed)
    bursts = _bursts(duration_s, burst_period_s, burst_duration_s, rng)
    times = [i * step_s for i in range(math.floor(duration_s / step_s + 1e-9) + 1)]
    others = [next((n for start, end, n in bursts if start <= t < end), 0) for t in times]
    utilization = [
        min(1.0, (n + 0.3) / cores + rng.uniform(-0.05, 0.05)) if n else 0.05 + 0.1 * rng.random() for n in others
    ]
    drain = [0.0] + [(1.0 + 2.0 * u) * rng.uniform(0.9, 1.1) for u in utilization[1:]]
    total_drain, drained = sum(drain), 0.0
    temperature = IDLE_TEMPERATURE_C
    decay = math.exp(-step_s / THERMAL_TIME_CONSTANT_S)
    rows = []
    for i, t in enumerate(times):
        drained += drain[i]
        battery = battery_start - (battery_start - battery_end) * (drained / total_drain if total_drain else 0.0)
        target = IDLE_TEMPERATURE_C + HEAT_PER_BUSY_THREAD_C * min(others[i], cores)
        temperature = target + (temperature - target) * decay if i else temperature
        throttled = temperature >= PASSIVE_TRIP_C
        freq = 0.5 + 0.5 * utilization[i]
        memory = memory_bytes - (3 * GIB // 4 if others[i] else 0) + rng.randint(-(1 << 25), 1 << 25)
        budget = latency_budgets_ms[int(t // budget_period_s) % len(latency_budgets_ms)]
        rows.append(
            ContextSnapshot(
                timestamp=t,
                battery_percent=round(battery_end if i == len(times) - 1 else battery, 3),
                charging=False,
                cpu_utilization=round(utilization[i], 3),
                cpu_contention=contention_factor(others[i], cores),
                cpu_cores_available=float(cores),
                cpu_freq_ratio=round(min(freq, THROTTLED_FREQ_RATIO) if throttled else freq, 3),
                cpu_freq_cap_ratio=THROTTLED_FREQ_RATIO if throttled else 1.0,
                throttled=throttled,
                temperature_c=round(temperature, 1),
                memory_available_bytes=memory,
                cpu_runnable_others=float(others[i]),
                requirements=Requirements(
                    latency_budget_ms=budget, min_accuracy=min_accuracy, energy_mode=_energy_mode(battery)
                ),
            )
        )
    return ContextTrace(tuple(rows))
