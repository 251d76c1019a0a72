"""adaspring bench runtime: every figure is measured, written atomically, and checked against the limits."""

from __future__ import annotations

import json
from pathlib import Path

import evolve_factory as ef
import pytest

from tflite_adaspring.bench.runtime_probe import probe
from tflite_adaspring.cli import main as cli


@pytest.fixture(scope="module")
def models() -> ef.EvolveModels:
    return ef.build()


def test_bench_runtime_writes_every_measurement(models: ef.EvolveModels, tmp_path: Path, capsys) -> None:
    packed, evolve = tmp_path / "packed.tflite", tmp_path / "evolve.tflite"
    packed.write_bytes(models.packed)
    evolve.write_bytes(models.evolve)
    out = tmp_path / "results" / "runtime.json"
    argv = ["adaspring", "bench", "runtime", "--model", str(packed), "--evolve_model", str(evolve), "--json", str(out),
            "--contexts", "400", "--evolve_switches", "8", "--invokes", "200", "--rounds", "2", "--rss_invokes", "50",
            "--context_reads", "50", "--interference_invokes", "200"]  # fmt: skip
    assert cli.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["label"] == "measured" and result["task"] == ef.TASK
    adapt = result["packed"]["adapt"]
    assert adapt["contexts"] == 400 and 0 < adapt["adapt_p50_us"] <= adapt["adapt_p99_us"]
    assert 0 < result["packed"]["adapt"]["switched_fraction"] <= 1
    for label in ("smallest", "largest"):
        o = result["overhead"][label]
        assert o["raw_runner_us"] > 0 and o["runner_ratio"] == pytest.approx(
            o["wrapper_runner_us"] / o["raw_runner_us"]
        )
    assert result["overhead"]["smallest"]["key"] != result["overhead"]["largest"]["key"]
    for mode in ("packed", "evolve"):
        probe_result = result["rss"][mode]
        assert probe_result["storage_mode"] == mode and not probe_result["tensorflow_imported"]
        assert 10 < probe_result["max_rss_mb"] < 500
    switch = result["evolve"]["switch"]
    assert 0 < switch["cold_p50_ms"] <= switch["cold_p95_ms"] and switch["switches"] == 8
    assert result["evolve"]["build_interference"]["builds"] >= 1
    assert result["context_read"]["label"] == "measured"
    targets = result["targets"]
    assert set(targets) >= {"packed_adapt_p99_ms", "overhead_smallest_us", "overhead_largest_us", "rss_packed_mb",
                            "rss_evolve_mb", "evolve_switch_p95_ms"}  # fmt: skip
    assert targets["rss_packed_mb"]["value"] == result["rss"]["packed"]["max_rss_mb"]
    table = out.with_suffix(".md").read_text()
    assert "| packed adapt (search + switch) p99, ms |" in table
    assert "wrote" in capsys.readouterr().out


def test_bench_runtime_rejects_an_evolve_model_as_the_packed_one(models: ef.EvolveModels, tmp_path: Path) -> None:
    evolve = tmp_path / "evolve.tflite"
    evolve.write_bytes(models.evolve)
    assert cli.main(["adaspring", "bench", "runtime", "--model", str(evolve), "--json", str(tmp_path / "x.json")]) == 1
    assert not (tmp_path / "x.json").exists()


def test_runtime_probe_in_process(models: ef.EvolveModels, tmp_path: Path) -> None:
    path = tmp_path / "evolve.tflite"
    path.write_bytes(models.evolve)
    result = probe(str(path), 20)
    assert result["storage_mode"] == "evolve" and result["configs"] == 3 and result["max_rss_mb"] > 0
