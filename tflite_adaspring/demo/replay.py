"""Replay a simulated day on the adaptive runtime, under real CPU contention, against static choices.

Per window of the compressed day: the trace gives the battery, the app's latency budget and energy mode,
and whether other apps are busy; busy phases start real busy-loop processes (:class:`BusyLoad`), which the
:class:`~tflite_adaspring.context.ContextMonitor` measures from ``/proc`` like any other load. The
adaptive interpreter decides on that snapshot; then the adaptive run, the static largest and the static
smallest configuration each run the same test windows, interleaved invoke by invoke so they share the
same load. A window's latency is the **measured** mean wall time per invoke (time the CPU spent on other
processes included: with one inference thread, contention shows as waits between time slices rather
than as slower invokes, so the median would hide it); the window meets its budget when that is within
the budget. Accuracy is the configuration's validation accuracy from the model's table (and, separately, the
fraction of replayed test windows classified correctly); energy is modeled (table energy per inference).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tflite_adaspring.context import ContextMonitor, ContextTrace, synthetic_day
from tflite_adaspring.demo.load import BusyLoad
from tflite_adaspring.runtime import Interpreter, Policy

RUNS = ("adaptive", "static_largest", "static_smallest")


@dataclasses.dataclass(frozen=True)
class ReplaySettings:
    """How the day is replayed.

    Attributes:
      duration_s: simulated length of the day in seconds.
      windows: inference windows replayed over the day.
      invokes: inferences per window and run (back to back: enough CPU time to share it with the load).
      pace_s: real seconds per window at least (lets the load and the context readings settle).
      settle_s: real seconds between changing the load and reading the context.
      max_workers: busy-loop processes at most (the trace asks for 1-3 busy threads).
      load_nice: their niceness (:class:`BusyLoad`: 10 = background apps, 0 = equals of the app).
      threads: LiteRT threads.
      seed: seed of the simulated day.
      ema_alpha: the search's per-invoke latency-EMA weight: small, because a window runs many invokes
        and one window disturbed by other processes must not rewrite what the search learned.
    """

    duration_s: float = 600.0
    windows: int = 120
    invokes: int = 300
    pace_s: float = 0.35
    settle_s: float = 0.15
    max_workers: int = 2
    load_nice: int = 10
    threads: int = 1
    seed: int = 0
    ema_alpha: float = 0.002

    def __post_init__(self) -> None:
        if self.windows < 1 or self.invokes < 1 or self.duration_s <= 0:
            raise ValueError("windows and invokes must be >= 1 and duration_s > 0")


def budgets_for(latencies_ms: np.ndarray) -> tuple[float, float, float]:
    """Latency budgets scaled to a model's range: roomy, middle and tight.

    Args:
      latencies_ms: the table's export-host latencies.

    Returns:
      ``(1.3 x slowest, midpoint, 2.5 x fastest)``.
    """
    lo, hi = float(latencies_ms.min()), float(latencies_ms.max())
    return (hi * 1.3, (lo + hi) / 2, lo * 2.5)


def day_trace(settings: ReplaySettings, budgets: tuple[float, ...]) -> ContextTrace:
    """The simulated day: six budget phases, ten busy phases (each a quarter of its period)."""
    d = settings.duration_s
    return synthetic_day(duration_s=d, seed=settings.seed, latency_budgets_ms=budgets, budget_period_s=d / 6,
                         burst_period_s=d / 10, burst_duration_s=d / 40)  # fmt: skip


def _poll(monitor: ContextMonitor, seconds: float) -> None:
    """Keeps reading the context for ``seconds`` (the CPU reading is a moving average of samples)."""
    end = time.monotonic() + seconds
    while True:
        monitor.snapshot()
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(0.05, left))


def replay(
    model_path: str | Path,
    x: np.ndarray,
    y: np.ndarray,
    settings: ReplaySettings,
    log: Callable[[dict[str, Any]], Any] | None = None,
    monitor: ContextMonitor | None = None,
) -> dict[str, Any]:
    """Replays the day (see the module docstring).

    Args:
      model_path: the adaptive model.
      x: test inputs (one example per row, no batch axis).
      y: their labels.
      settings: replay settings.
      log: called with each window's record as it completes (e.g. to print it).
      monitor: the context monitor (default: this machine's sources, 50 ms cache).

    Returns:
      ``{"settings", "budgets_ms", "configs", "windows": [...], "summary": {run: {...}}}``.
    """
    policy = Policy(ema_alpha=settings.ema_alpha)
    interps = {
        run: Interpreter(model_path=str(model_path), num_threads=settings.threads, policy=policy) for run in RUNS
    }
    adaptive = interps["adaptive"]
    rows = {r.key: r for r in adaptive.configs}
    largest = max(rows.values(), key=lambda r: r.latency_ms)
    smallest = min(rows.values(), key=lambda r: r.latency_ms)
    profile = adaptive.table.energy_profile
    energy = {k: (r.energy_mj[profile].value if profile in r.energy_mj else float("nan")) for k, r in rows.items()}
    runners = {
        "adaptive": adaptive.get_signature_runner(),
        "static_largest": interps["static_largest"].get_signature_runner(largest.key),
        "static_smallest": interps["static_smallest"].get_signature_runner(smallest.key),
    }
    input_name = next(iter(runners["adaptive"].get_input_details()))
    budgets = budgets_for(adaptive.table.latency_ms)
    trace = day_trace(settings, budgets)
    monitor = monitor or ContextMonitor()
    records = []
    load_before = os.getloadavg()
    with BusyLoad(settings.max_workers, settings.load_nice) as load:
        for i in range(settings.windows):
            start = time.monotonic()
            t = settings.duration_s * i / settings.windows
            sim = trace.at(t)
            workers = load.set(int(sim.cpu_runnable_others or 0))
            monitor.override(battery_percent=sim.battery_percent, charging=sim.charging)
            monitor.set_requirements(sim.requirements)
            _poll(monitor, settings.settle_s)
            context = monitor.snapshot()
            decision = adaptive.adapt(context)
            key = adaptive.active
            latencies = {run: np.empty(settings.invokes) for run in RUNS}
            correct = dict.fromkeys(RUNS, 0)
            for k in range(settings.invokes):
                j = (i * settings.invokes + k) % len(x)
                sample = x[j : j + 1]
                for run in RUNS:
                    t0 = time.perf_counter()
                    out = runners[run](**{input_name: sample})
                    latencies[run][k] = (time.perf_counter() - t0) * 1e3
                    correct[run] += int(np.argmax(next(iter(out.values()))) == y[j])
            budget = sim.requirements.latency_budget_ms
            keys = {"adaptive": key, "static_largest": largest.key, "static_smallest": smallest.key}
            record = {
                "t": t,
                "battery": sim.battery_percent,
                "energy_mode": sim.requirements.energy_mode,
                "budget_ms": budget,
                "load_workers": workers,
                "contention": context.cpu_contention,
                "runnable_others": context.cpu_runnable_others,
                "key": key,
                "config": rows[key].config_id,
                "switched": decision.switched,
                "predicted_ms": decision.predicted_latency_ms,
                "runs": {
                    run: {
                        "key": keys[run],
                        "measured_ms": float(np.mean(latencies[run])),
                        "median_ms": float(np.median(latencies[run])),
                        "p90_ms": float(np.percentile(latencies[run], 90)),
                        "met": bool(np.mean(latencies[run]) <= budget),
                        "invokes_met": int(np.sum(latencies[run] <= budget)),
                        "accuracy": rows[keys[run]].accuracy,
                        "correct": correct[run],
                        "energy_mj": energy[keys[run]] * settings.invokes,
                    }
                    for run in RUNS
                },
            }
            records.append(record)
            if log is not None:
                log(record)
            _poll(monitor, max(0.0, settings.pace_s - (time.monotonic() - start)))
    monitor.clear_overrides()
    for interp in interps.values():
        interp.close()
    return {
        "settings": dataclasses.asdict(settings),
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "budgets_ms": list(budgets),
        "energy_profile": profile,
        "configs": {
            k: {"config": r.config_id, "latency_ms": r.latency_ms, "accuracy": r.accuracy, "energy_mj": energy[k]}
            for k, r in rows.items()
        },
        "windows": records,
        "summary": summarize(records, settings.invokes),
    }


def summarize(records: list[dict[str, Any]], invokes: int) -> dict[str, dict[str, float]]:
    """Per run: budget-met rate and violations (measured), mean accuracy, replay accuracy, modeled energy.

    Args:
      records: the window records of :func:`replay`.
      invokes: invokes per window and run.

    Returns:
      ``{run: {"budget_met_rate", "violations", "invoke_met_rate", "mean_accuracy", "replay_accuracy",
      "energy_mj", "mean_latency_ms", "windows"}}`` (adaptive also ``switches`` and ``configs_used``).
    """
    out = {}
    for run in RUNS:
        r = [w["runs"][run] for w in records]
        stats = {
            "windows": float(len(r)),
            "budget_met_rate": float(np.mean([v["met"] for v in r])),
            "violations": float(sum(not v["met"] for v in r)),
            "invoke_met_rate": float(sum(v["invokes_met"] for v in r) / (len(r) * invokes)),
            "mean_accuracy": float(np.mean([v["accuracy"] for v in r])),
            "replay_accuracy": float(sum(v["correct"] for v in r) / (len(r) * invokes)),
            "energy_mj": float(sum(v["energy_mj"] for v in r)),
            "mean_latency_ms": float(np.mean([v["measured_ms"] for v in r])),
        }
        if run == "adaptive":
            stats["switches"] = float(sum(w["switched"] for w in records))
            stats["configs_used"] = float(len({w["key"] for w in records}))
        out[run] = stats
    return out
