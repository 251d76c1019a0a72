"""adaspring demo: real background load that is always cleaned up, the replay's bookkeeping, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import evolve_factory as ef
import numpy as np
import pytest

from tflite_adaspring.cli import main as cli
from tflite_adaspring.demo.load import BusyLoad
from tflite_adaspring.demo.replay import RUNS, ReplaySettings, budgets_for, day_trace, replay


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait_dead(pids: tuple[int, ...], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def test_pareto_fronts() -> None:
    from tflite_adaspring.cli.demo_cmd import pareto_fronts

    points = {"a": (1, 0.5), "b": (2, 0.7), "c": (2, 0.6), "d": (3, 0.7), "e": (0.5, 0.4), "f": (3, 0.9)}
    assert pareto_fronts(points) == [["e", "a", "b", "f"], ["c", "d"]]
    assert pareto_fronts({}) == []


def test_busy_load_starts_stops_and_really_burns_cpu() -> None:
    with BusyLoad(max_workers=2) as load:
        assert load.set(5) == 2 and len(load.pids) == 2  # clipped to max_workers
        pids = load.pids
        time.sleep(0.3)
        ticks = [int(open(f"/proc/{p}/stat").read().split()[13]) for p in pids]  # utime
        time.sleep(0.3)
        assert all(int(open(f"/proc/{p}/stat").read().split()[13]) > t for p, t in zip(pids, ticks))
        # they run below our priority (field 19 of /proc/PID/stat: niceness), like background apps
        assert all(int(open(f"/proc/{p}/stat").read().split()[18]) == min(19, os.nice(0) + 10) for p in pids)
        assert load.set(1) == 1
        assert _wait_dead(pids[1:])
    assert load.workers == 0 and _wait_dead(pids)
    load.close()  # idempotent
    with pytest.raises(ValueError):
        BusyLoad(max_workers=-1)
    with pytest.raises(ValueError, match="nice"):
        BusyLoad(max_workers=1, nice=20)


def test_workers_exit_when_their_parent_is_killed() -> None:
    program = textwrap.dedent(
        """
        import os, signal, sys
        from tflite_adaspring.demo.load import BusyLoad
        load = BusyLoad(2)
        load.set(2)
        print(" ".join(map(str, load.pids)), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no finally: the workers must notice alone
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    pids = tuple(int(p) for p in done.stdout.split())
    assert len(pids) == 2
    assert _wait_dead(pids)


@pytest.fixture(scope="module")
def models() -> ef.EvolveModels:
    return ef.build()


def test_select_configs_keeps_the_largest_and_the_pareto_front(models: ef.EvolveModels) -> None:
    from tflite_adaspring.cli.demo_cmd import select_configs

    supernet = models.supernet
    chosen = select_configs(supernet, models.dataset, models.calibration, k=4, candidates=6, branch_budget=10.0)
    assert len(chosen) == 4 == len(set(chosen)) and chosen[0] == supernet.space.largest()
    assert chosen[1] == supernet.space.smallest()
    assert all(c.with_precision("fp32") in supernet.bn_statistics for c in chosen)  # the export reuses them


def test_select_configs_respects_the_branch_budget(models: ef.EvolveModels) -> None:
    from tflite_adaspring.cli.demo_cmd import select_configs
    from tflite_adaspring.export.evolve import branch_bytes

    supernet = models.supernet
    largest, smallest = supernet.space.largest(), supernet.space.smallest()
    # budget 0: no configuration may add a branch beyond the largest's and the smallest's own
    chosen = select_configs(supernet, models.dataset, models.calibration, k=4, candidates=6, branch_budget=0.0)
    assert chosen[:2] == [largest, smallest] and len(chosen) > 2
    assert branch_bytes(supernet, chosen) == branch_bytes(supernet, [smallest])


def test_replay_bookkeeping(models: ef.EvolveModels, tmp_path: Path) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(models.packed)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, *models.x.shape[1:])).astype(np.float32)
    y = rng.integers(0, 4, 8)
    settings = ReplaySettings(windows=10, invokes=4, pace_s=0.0, settle_s=0.0)
    seen = []
    result = replay(path, x, y, settings, log=seen.append)
    windows = result["windows"]
    assert len(windows) == len(seen) == 10
    budgets = budgets_for(np.array([c["latency_ms"] for c in result["configs"].values()]))
    assert result["budgets_ms"] == list(budgets)
    trace = day_trace(settings, budgets)
    for w in windows:
        sim = trace.at(w["t"])
        assert w["budget_ms"] == sim.requirements.latency_budget_ms
        assert w["load_workers"] == min(2, int(sim.cpu_runnable_others or 0))
        assert w["battery"] == sim.battery_percent
        for run in RUNS:
            r = w["runs"][run]
            assert r["met"] == (r["measured_ms"] <= w["budget_ms"]) and 0 <= r["correct"] <= 4
            assert r["energy_mj"] == pytest.approx(result["configs"][r["key"]]["energy_mj"] * 4)
        assert w["runs"]["adaptive"]["key"] == w["key"]
    keys = sorted(result["configs"], key=lambda k: result["configs"][k]["latency_ms"])
    assert {w["runs"]["static_largest"]["key"] for w in windows} == {keys[-1]}
    assert {w["runs"]["static_smallest"]["key"] for w in windows} == {keys[0]}
    summary = result["summary"]
    for run in RUNS:
        met = [w["runs"][run]["met"] for w in windows]
        assert summary[run]["budget_met_rate"] == pytest.approx(np.mean(met))
        assert summary[run]["violations"] == len(met) - sum(met)
    assert summary["adaptive"]["switches"] == sum(w["switched"] for w in windows)


def test_demo_cli_with_a_cached_model(models: ef.EvolveModels, tmp_path: Path, capsys) -> None:
    folder = tmp_path / ef.TASK
    folder.mkdir()
    (folder / "model.tflite").write_bytes(models.packed)
    argv = ["adaspring", "demo", "--task", ef.TASK, "--out", str(tmp_path), "--windows", "6", "--invokes", "3",
            "--pace", "0.02"]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "using cached model" in out and "static_smallest" in out and "budget met" in out
    result = json.loads((folder / "replay.json").read_text())
    assert len(result["windows"]) == 6 and set(result["summary"]) == set(RUNS)
    png = (folder / "timeline.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert not any(name.endswith(".tmp") for name in os.listdir(folder))
    assert cli.main([*argv, "--storage", "evolve"]) == 1  # no evolve model next to the cached one
    assert "model_evolve.tflite not found" in capsys.readouterr().out
    (folder / "model_evolve.tflite").write_bytes(models.evolve)
    assert cli.main([*argv, "--storage", "evolve"]) == 0
    assert "windows on model_evolve.tflite" in capsys.readouterr().out


def test_backbone_leaning_samples_keep_the_largest_ops() -> None:
    import random

    from tflite_adaspring.cli.demo_cmd import backbone_leaning_sample
    from tflite_adaspring.space import SearchSpace

    space = SearchSpace("small", 1, blocks_per_stage=(2, 2, 2))
    largest = space.largest()
    rng = random.Random(0)
    for _ in range(20):
        c = space.validate(backbone_leaning_sample(space, rng, keep_op=1.0))
        assert all(b.op == largest.stages[i][j].op for i, s in enumerate(c.stages) for j, b in enumerate(s))
    mixed = [backbone_leaning_sample(space, rng, keep_op=0.0) for _ in range(20)]
    assert any(b.op != "std" for c in mixed for s in c.stages for b in s)  # keep_op really is a probability
