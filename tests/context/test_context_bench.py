"""benchmark_context_read: the numbers `adaspring bench runtime` reports."""

from __future__ import annotations

import pytest

from tflite_adaspring.context.bench import benchmark_context_read


def test_benchmark_reports_cached_and_uncached_costs():
    result = benchmark_context_read(n=300)
    assert result["label"] == "measured" and result["n"] == 300
    assert 0 < result["cached_us"] < result["uncached_us"]
    assert set(result["per_source_us"]) == {"requirements", "battery", "cpu_load", "cpufreq_thermal", "memory"}
    assert all(v > 0 for v in result["per_source_us"].values())


def test_benchmark_rejects_bad_n():
    with pytest.raises(ValueError, match="n must be"):
        benchmark_context_read(n=0)
