"""Case-study metrics of one model choice per trace window (numpy only, no TensorFlow).

A run (the adaptive runtime, or a static baseline) is described window by window: the latency budget the
app asked for, the latency the run had in that window, the accuracy of the model it used and its energy per
inference. The app runs ``rate_hz`` inferences per second of trace time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tflite_adaspring.errors import DataValidationError


def _vector(name: str, values: Sequence[float] | np.ndarray, n: int | None) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise DataValidationError(f"{name} must be a non-empty 1-D sequence, got shape {array.shape}")
    if n is not None and array.size != n:
        raise DataValidationError(f"{name} has {array.size} windows, expected {n} (one value per window)")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise DataValidationError(f"{name} must hold finite values >= 0")
    return array


def run_metrics(
    budgets_ms: Sequence[float],
    latencies_ms: Sequence[float],
    accuracies: Sequence[float],
    energy_mj: Sequence[float],
    step_s: float,
    rate_hz: float,
) -> dict[str, Any]:
    """Budget violations, accuracy and energy of one run over a trace.

    Args:
      budgets_ms: latency budget per window (> 0).
      latencies_ms: the run's latency per window.
      accuracies: accuracy (0..1) of the model the run used in each window.
      energy_mj: energy per inference of that model in each window.
      step_s: trace seconds per window (> 0).
      rate_hz: inferences per trace second (> 0).

    Returns:
      ``windows``, ``violations``, ``violation_rate`` (latency > budget), ``mean_accuracy``,
      ``mean_latency_ms``, ``energy_j`` (over the trace) and ``inference_power_mw`` (average power spent on
      inferences).

    Raises:
      DataValidationError: mismatched lengths, negative or non-finite values, budgets or step/rate <= 0.
    """
    budgets = _vector("budgets_ms", budgets_ms, None)
    n = budgets.size
    latency = _vector("latencies_ms", latencies_ms, n)
    accuracy = _vector("accuracies", accuracies, n)
    energy = _vector("energy_mj", energy_mj, n)
    if np.any(budgets <= 0):
        raise DataValidationError("budgets_ms must be > 0 in every window")
    if np.any(accuracy > 1):
        raise DataValidationError("accuracies must be in [0, 1]")
    if not (step_s > 0 and rate_hz > 0 and math.isfinite(step_s) and math.isfinite(rate_hz)):
        raise DataValidationError(f"step_s and rate_hz must be finite and > 0, got {step_s!r}, {rate_hz!r}")
    violated = latency > budgets
    energy_j = float(np.sum(energy) * rate_hz * step_s / 1e3)
    return {
        "windows": int(n),
        "violations": int(violated.sum()),
        "violation_rate": float(violated.mean()),
        "mean_accuracy": float(accuracy.mean()),
        "mean_latency_ms": float(latency.mean()),
        "energy_j": energy_j,
        "inference_power_mw": energy_j / (n * step_s) * 1e3,
    }


def battery_life_hours(battery_wh: float, idle_power_w: float, inference_power_w: float) -> float:
    """Hours a full battery lasts at a constant idle power plus the inferences' average power.

    Args:
      battery_wh: battery capacity in watt-hours (> 0).
      idle_power_w: the device's power without our inferences (>= 0).
      inference_power_w: average power of the inferences (>= 0).

    Returns:
      ``battery_wh / (idle_power_w + inference_power_w)``; ``inf`` when both powers are 0.

    Raises:
      DataValidationError: a value out of range.
    """
    values = {"battery_wh": battery_wh, "idle_power_w": idle_power_w, "inference_power_w": inference_power_w}
    bad = [k for k, v in values.items() if not (math.isfinite(v) and v >= 0)] + (["battery_wh"] * (battery_wh <= 0))
    if bad:
        raise DataValidationError(f"battery_life_hours: {sorted(set(bad))} out of range (finite, >= 0, battery > 0)")
    power = idle_power_w + inference_power_w
    return math.inf if power == 0 else battery_wh / power
