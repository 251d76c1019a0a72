"""Cost of reading the device context (for ``adaspring bench runtime``); all figures are measured."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from tflite_adaspring.context.monitor import ContextMonitor, default_sources


def _per_call_us(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def benchmark_context_read(n: int = 10000, root: str | os.PathLike = "/") -> dict[str, Any]:
    """Measures the per-call cost of ``ContextMonitor.snapshot()`` with the default sources.

    Args:
      n: calls per measurement.
      root: filesystem root of the sources (``"/"``: this machine).

    Returns:
      ``{"cached_us", "uncached_us", "per_source_us": {name: us}, "n", "label": "measured"}``:
      ``cached_us`` is a call served from the cache, ``uncached_us`` a full refresh of every source
      (``period_s=0``), ``per_source_us`` one ``read()`` of each source alone.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    with ContextMonitor(default_sources(root), period_s=0.0) as uncached:
        uncached.snapshot()  # discovery and first-read baselines are not part of the steady state
        uncached_us = _per_call_us(uncached.snapshot, n)
        per_source = {s.name: _per_call_us(lambda s=s: s.read(time.monotonic()), n) for s in uncached.sources}
    with ContextMonitor(default_sources(root), period_s=3600.0) as cached:
        cached.snapshot()
        cached_us = _per_call_us(cached.snapshot, n)
    return {
        "cached_us": cached_us,
        "uncached_us": uncached_us,
        "per_source_us": per_source,
        "n": n,
        "label": "measured",
    }
