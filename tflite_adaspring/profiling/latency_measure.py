"""Measured latency: time the signatures of a converted model with LiteRT + XNNPACK.

Signatures are measured in interleaved rounds (every round visits every signature) so that background
load on a shared machine spreads over all of them; the reported value is the median of every timed call
after a warm-up, and the spread is the interquartile range of the per-round medians over the median.
A call is ``runner(**inputs)``: what an application pays per inference, Python overhead included.
Needs numpy and ai-edge-litert only.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from tflite_adaspring.profiling._litert import make_interpreter


@dataclasses.dataclass(frozen=True)
class LatencyMeasurement:
    """The measured latency of one signature.

    Attributes:
      median_ms: median call latency.
      spread: interquartile range of the round medians / median (the run's noise).
      calls: timed calls.
      threads: LiteRT threads.
    """

    median_ms: float
    spread: float
    calls: int
    threads: int


def _inputs(runner: Any, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for name, detail in runner.get_input_details().items():
        out[name] = rng.normal(0, 1, detail["shape"]).astype(detail["dtype"])
    return out


def measure_signatures(
    model_bytes: bytes,
    keys: Sequence[str] | None = None,
    threads: int = 1,
    runs: int = 50,
    rounds: int = 6,
    warmup: int = 20,
) -> dict[str, LatencyMeasurement]:
    """Measures every signature of a model in one interpreter (as the runtime runs them).

    Args:
      model_bytes: the .tflite model.
      keys: signatures to measure (default: all).
      threads: LiteRT threads (XNNPACK is on).
      runs: timed calls per signature per round.
      rounds: interleaved rounds.
      warmup: untimed calls per signature first.

    Returns:
      Key -> :class:`LatencyMeasurement`.
    """
    interpreter = make_interpreter(model_bytes, threads)
    keys = list(keys) if keys is not None else list(interpreter.get_signature_list())
    rng = np.random.default_rng(0)
    runners = {k: interpreter.get_signature_runner(k) for k in keys}
    inputs = {k: _inputs(r, rng) for k, r in runners.items()}
    for k, runner in runners.items():
        for _ in range(warmup):
            runner(**inputs[k])
    samples: dict[str, list[float]] = {k: [] for k in keys}
    round_medians: dict[str, list[float]] = {k: [] for k in keys}
    clock = time.perf_counter_ns
    for r in range(rounds):
        for k in keys if r % 2 == 0 else reversed(keys):
            runner, x = runners[k], inputs[k]
            times = []
            for _ in range(runs):
                t0 = clock()
                runner(**x)
                times.append(clock() - t0)
            samples[k] += times
            round_medians[k].append(float(np.median(times)))
    out = {}
    for k in keys:
        median = float(np.median(samples[k])) / 1e6
        q1, q3 = np.percentile(round_medians[k], [25, 75]) / 1e6
        out[k] = LatencyMeasurement(median, float((q3 - q1) / median) if median else 0.0, len(samples[k]), threads)
    return out
