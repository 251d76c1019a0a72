"""The runtime micro-benchmarks run and report sane numbers (tiny sizes; the real runs are in `make bench`)."""

from __future__ import annotations

import dataclasses

import model_factory as mf
import pytest

from tflite_adaspring.runtime import Interpreter, Policy, SearchTable, bench


@pytest.fixture(scope="module")
def model() -> bytes:
    return mf.build_adaspring_model()


def test_random_contexts_cover_the_cases() -> None:
    meta = mf.make_metadata()
    contexts = list(bench.random_contexts(SearchTable.from_metadata(meta), 300))
    assert [c.timestamp for c in contexts] == sorted(c.timestamp for c in contexts)
    assert {c.requirements.energy_mode for c in contexts} == {"performance", "balanced", "saver"}
    assert any(c.requirements.latency_budget_ms is None for c in contexts)
    assert any(c.cpu_contention is not None and c.cpu_contention > 1 for c in contexts)


def test_bench_search_sixteen_configs() -> None:
    meta = mf.make_metadata()
    rows = tuple(mf.signature_row(f"cfg{i:02d}", 4 + 4 * i) for i in range(16))
    result = bench.bench_search(dataclasses.replace(meta, signatures=rows), n=300)
    assert result["configs"] == 16
    assert 0 < result["search_p50_us"] <= result["search_p99_us"]
    assert 0 < result["infeasible_fraction"] < 1 and 0 < result["switch_fraction"] < 1


def test_bench_switch_forces_switches(model: bytes) -> None:
    result = bench.bench_switch(Interpreter(model_content=model, policy=Policy(dwell_s=0.0)), n=50)
    assert result["adapt_switched_fraction"] == 1.0
    assert 0 < result["adapt_switch_p50_us"] and 0 < result["set_active_p50_us"]


def test_bench_invoke_overhead_and_reads(model: bytes) -> None:
    result = bench.bench_invoke_overhead(model, n=50, rounds=1)
    expected = {"raw_runner_us", "wrapper_runner_us", "wrapper_fixed_runner_us", "raw_plain_us", "wrapper_plain_us"}
    assert expected | {"raw_plain_api_us"} <= result.keys()  # the smallest configuration is subgraph 0
    assert all(result[k] > 0 for k in expected)
    assert result["runner_ratio"] == pytest.approx(result["wrapper_runner_us"] / result["raw_runner_us"])
    reads = bench.bench_metadata_read(model, n=20)
    assert 0 < reads["read_unverified_p50_us"] and 0 < reads["read_verified_p50_us"]
    created = bench.bench_creation(model, n=3)
    assert 0 < created["create_cold_p50_us"] and 0 < created["create_warm_p50_us"]
