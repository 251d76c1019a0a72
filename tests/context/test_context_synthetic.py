"""synthetic_day: deterministic, plausible simulated context."""

from __future__ import annotations

import itertools

import pytest

from tflite_adaspring.context.synthetic import synthetic_day
from tflite_adaspring.errors import DataValidationError


def test_deterministic_per_seed():
    assert synthetic_day(seed=0) == synthetic_day(seed=0)
    assert synthetic_day(seed=0) != synthetic_day(seed=1)


def test_shape_of_a_day():
    trace = synthetic_day()
    assert len(trace) == 601 and trace.start == 0.0 and trace.end == 600.0
    battery = [s.battery_percent for s in trace]
    assert battery[0] == 100.0 and battery[-1] == 5.0
    assert all(b1 <= b0 for b0, b1 in itertools.pairwise(battery))
    assert battery[300] < 60.0  # drains along the way, not at the end
    assert not any(s.charging for s in trace)
    contention = [s.cpu_contention for s in trace]
    busy = sum(c > 1.0 for c in contention)
    assert 0.05 * len(trace) < busy < 0.5 * len(trace)  # periodic bursts, mostly idle
    assert all(s.cpu_contention >= 1.0 and 0.0 <= s.cpu_utilization <= 1.0 for s in trace)
    budgets = [s.requirements.latency_budget_ms for s in trace]
    assert len(set(budgets)) == 3 and budgets[0] != budgets[150]
    modes = [s.requirements.energy_mode for s in trace]
    assert modes[0] == "performance" and modes[-1] == "saver" and "balanced" in modes
    first_change = [modes.index(m) for m in ("performance", "balanced", "saver")]
    assert first_change == sorted(first_change)
    throttled = [s for s in trace if s.throttled]
    assert throttled and all(s.cpu_freq_ratio <= 0.7 and s.temperature_c >= 65.0 for s in throttled)
    assert all(s.cpu_freq_cap_ratio == (0.7 if s.throttled else 1.0) for s in trace)
    assert all(s.memory_available_bytes > 0 for s in trace)


def test_busy_periods_drain_faster():
    trace = synthetic_day(duration_s=1200, seed=2)
    busy, idle = [], []
    for prev, cur in itertools.pairwise(trace):
        (busy if cur.cpu_runnable_others else idle).append(prev.battery_percent - cur.battery_percent)
    assert sum(busy) / len(busy) > 1.5 * sum(idle) / len(idle)


def test_options():
    trace = synthetic_day(duration_s=10, step_s=0.5, battery_start=50, battery_end=40, min_accuracy=0.8, cores=4)
    assert len(trace) == 21 and trace[0].battery_percent == 50.0 and trace[-1].battery_percent == 40.0
    assert trace[0].requirements.min_accuracy == 0.8 and trace[0].cpu_cores_available == 4.0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"duration_s": 0}, "duration_s"),
        ({"battery_start": 10, "battery_end": 20}, "battery_start"),
        ({"burst_duration_s": 100}, "burst_duration_s"),
        ({"latency_budgets_ms": ()}, "latency_budgets_ms"),
        ({"step_s": -1}, "step_s"),
    ],
)
def test_bad_arguments(kwargs, fragment):
    with pytest.raises(DataValidationError, match=fragment):
        synthetic_day(**kwargs)
