"""RequirementsSource: atomic replacement of the app's frozen requirements."""

from __future__ import annotations

import threading

import pytest

from tflite_adaspring.context.requirements import RequirementsSource
from tflite_adaspring.context.snapshot import Requirements
from tflite_adaspring.errors import DataValidationError


def test_default_and_read():
    source = RequirementsSource()
    assert source.requirements == Requirements()
    assert source.read(0.0) == {"requirements": Requirements()}


def test_set_changes_fields_and_replaces_whole_value():
    source = RequirementsSource(Requirements(latency_budget_ms=10.0, energy_mode="saver"))
    new = source.set(min_accuracy=0.9)
    assert new == Requirements(latency_budget_ms=10.0, min_accuracy=0.9, energy_mode="saver")
    assert source.requirements is new
    assert source.set(Requirements(memory_cap_bytes=1000)) == Requirements(memory_cap_bytes=1000)
    assert source.set(Requirements(latency_budget_ms=3.0), energy_mode="performance").energy_mode == "performance"
    assert source.set(latency_budget_ms=None).latency_budget_ms is None


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"latency_budget": 5.0}, "latency_budget"),
        ({"energy_mode": "turbo"}, "energy_mode"),
        ({"min_accuracy": 1.5}, "min_accuracy"),
        ({"latency_budget_ms": "fast"}, "invalid requirements"),
    ],
)
def test_invalid_changes_raise_and_keep_the_old_value(kwargs, fragment):
    source = RequirementsSource(Requirements(latency_budget_ms=10.0))
    with pytest.raises(DataValidationError, match=fragment):
        source.set(**kwargs)
    assert source.requirements == Requirements(latency_budget_ms=10.0)


def test_non_requirements_object_rejected():
    with pytest.raises(DataValidationError, match="Requirements instance"):
        RequirementsSource({"latency_budget_ms": 5.0})


def test_concurrent_readers_never_see_a_mix():
    source = RequirementsSource()
    states = [Requirements(latency_budget_ms=float(k), min_accuracy=k / 10) for k in (1, 2)]
    stop = threading.Event()
    mixed = []

    def writer():
        k = 0
        while not stop.is_set():
            source.set(states[k % 2])
            k += 1

    def reader():
        for _ in range(20000):
            req = source.read(0.0)["requirements"]
            if req.min_accuracy is not None and req.min_accuracy != req.latency_budget_ms / 10:
                mixed.append(req)

    threads = [threading.Thread(target=writer), *(threading.Thread(target=reader) for _ in range(3))]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    assert not mixed
