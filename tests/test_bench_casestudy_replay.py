"""The case study's adaptive replay drives the real runtime, which learns the replayed latencies (TensorFlow builds
the synthetic model)."""

from __future__ import annotations

from pathlib import Path

import model_factory as mf

from tflite_adaspring.bench.casestudy import adaptive_choices
from tflite_adaspring.context.snapshot import ContextSnapshot, Requirements
from tflite_adaspring.metadata import read_metadata, save_model


def test_casestudy_runtime_learns_the_replayed_latencies(tmp_path: Path) -> None:
    path = save_model(tmp_path / "m.tflite", mf.build_adaspring_model())
    exported = {s.key: s.latency_ms for s in read_metadata(path).signatures}
    budget = max(exported.values()) * 1.01  # every signature fits by the export's timings
    wants = Requirements(latency_budget_ms=budget, energy_mode="performance")  # accuracy first
    trace = [ContextSnapshot(timestamp=float(t), requirements=wants) for t in range(20)]
    blind = adaptive_choices(path, trace)
    assert set(blind) == {max(exported, key=exported.get)}  # the most accurate, i.e. the largest
    slower = {k: 3.0 * v for k, v in exported.items()}  # this machine runs everything 3x slower
    learned = adaptive_choices(path, trace, slower)
    assert learned[0] == blind[0] and all(slower[k] <= budget for k in learned[5:])  # 3x the smallest fits
