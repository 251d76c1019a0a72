"""``adaspring demo``: train (or reuse) a supernet, export a packed model, replay a simulated day.

Artifacts go to ``runs/demo/<task>/``: ``run/`` (the training run), ``model.tflite`` (the packed
multi-signature model) and ``replay.json`` (per-window decisions and the summary).
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np
from absl import flags

FLAGS = flags.FlagValues()
flags.DEFINE_string("task", "har_watch", "Task to demonstrate.", flag_values=FLAGS)
flags.DEFINE_string("out", "runs/demo", "Demo folder (artifacts under OUT/<task>/).", flag_values=FLAGS)
flags.DEFINE_integer("epochs", 20, "Training epochs when no cached run exists.", flag_values=FLAGS)
flags.DEFINE_integer("signatures", 6, "Configurations exported into the model.", flag_values=FLAGS)
flags.DEFINE_integer("windows", 60, "Inference windows replayed over the simulated day.", flag_values=FLAGS)


def _select_configs(supernet: Any, k: int, seed: int = 0) -> list[Any]:
    """Largest, smallest and k-2 sampled configs spread over the MAC range."""
    space = supernet.space
    rng = random.Random(seed)
    pool = sorted({space.sample(rng, precision="fp32") for _ in range(200)}, key=lambda c: supernet.cost(c).macs)
    picks = [pool[int(i)] for i in np.linspace(0, len(pool) - 1, max(0, k - 2) + 2)[1:-1]]
    return [space.largest(), space.smallest(), *picks]


def _ensure_model(task: str, folder: Path, epochs: int, k: int) -> Path:
    from tflite_adaspring import data
    from tflite_adaspring.cli.train_cmd import train_run
    from tflite_adaspring.export import export_packed
    from tflite_adaspring.metadata import save_model
    from tflite_adaspring.training.run import load_run

    model_path = folder / "model.tflite"
    if model_path.exists():
        print(f"using cached model {model_path} (delete it to rebuild)")
        return model_path
    run_dir = folder / "run"
    if not (run_dir / "train_report.json").exists():
        print(f"training the {task} supernet for {epochs} epochs -> {run_dir}")
        train_run(data.load(task), {}, run_dir, epochs=epochs)
    info, supernet, dataset = load_run(run_dir)
    n = info.options.batch_size
    calibration = [dataset.train[0][i : i + n] for i in range(0, min(len(dataset.train[0]), 16 * n), n)]
    print(f"exporting {k} configurations into one model ...")
    model = export_packed(supernet, _select_configs(supernet, k), dataset, calibration, task)
    save_model(model_path, model)
    return model_path


def replay(model_path: Path, task: str, windows: int) -> dict[str, Any]:
    """Replays a simulated day: the adaptive runtime against static largest / smallest choices."""
    from tflite_adaspring import data
    from tflite_adaspring.context import synthetic_day
    from tflite_adaspring.runtime import Interpreter

    interp = Interpreter(model_path=str(model_path), num_threads=1)
    table = {row.key: row for row in interp.configs}
    fastest, slowest = min(table.values(), key=lambda r: r.latency_ms), max(table.values(), key=lambda r: r.latency_ms)
    budgets = (slowest.latency_ms * 1.3, (fastest.latency_ms + slowest.latency_ms) / 2, fastest.latency_ms * 2.5)
    trace = synthetic_day(duration_s=600.0, latency_budgets_ms=budgets, budget_period_s=100.0)
    x_test = data.load(task).test[0]
    runner = interp.get_signature_runner()  # always follows the active configuration
    rows = []
    for i in range(windows):
        t = 600.0 * i / windows
        ctx = trace.at(t)
        decision = interp.adapt(ctx)
        x = x_test[i % len(x_test)][None]
        t0 = time.perf_counter()
        runner(input=x)
        ms = (time.perf_counter() - t0) * 1e3
        row = table[decision.key]
        contention = ctx.cpu_contention or 1.0
        rows.append(
            {
                "t": t,
                "battery": ctx.battery_percent,
                "contention": contention,
                "budget_ms": ctx.requirements.latency_budget_ms,
                "key": decision.key,
                "config": row.config_id,
                "measured_ms": ms,
                "expected_ms": row.latency_ms * contention,
                "accuracy": row.accuracy,
                "energy_mj": next(iter(row.energy_mj.values())).value,
            }
        )
    summary = {"adaptive": _summary(rows, None, table)}
    for name, fixed in (("static_largest", slowest.key), ("static_smallest", fastest.key)):
        summary[name] = _summary(rows, fixed, table)
    return {"windows": rows, "summary": summary}


def _summary(rows: list[dict[str, Any]], fixed_key: str | None, table: dict[str, Any]) -> dict[str, float]:
    met, acc, energy = [], [], []
    for r in rows:
        row = table[fixed_key] if fixed_key else table[r["key"]]
        expected = row.latency_ms * r["contention"]
        met.append(expected <= r["budget_ms"])
        acc.append(row.accuracy)
        energy.append(next(iter(row.energy_mj.values())).value)
    return {
        "budget_met_rate": float(np.mean(met)),
        "mean_accuracy": float(np.mean(acc)),
        "energy_mj": float(np.sum(energy)),
    }


def run(fv: flags.FlagValues) -> int:
    """Builds (or reuses) the demo model and replays the simulated day."""
    from tflite_adaspring.fileio import atomic_write_json

    folder = Path(fv.out) / fv.task
    model_path = _ensure_model(fv.task, folder, fv.epochs, fv.signatures)
    result = replay(model_path, fv.task, fv.windows)
    print(f"{'t(s)':>6} {'batt%':>6} {'cont':>5} {'budget':>8} {'config':<38} {'ms':>7} {'acc':>6}")
    for r in result["windows"][:: max(1, len(result["windows"]) // 20)]:
        print(
            f"{r['t']:6.0f} {r['battery'] or 0:6.1f} {r['contention']:5.2f} {r['budget_ms']:8.3f} "
            f"{r['config']:<38} {r['measured_ms']:7.3f} {r['accuracy']:6.3f}"
        )
    print("\nsummary (budget check uses the exported latency x observed contention; energy is modeled):")
    for name, s in result["summary"].items():
        print(
            f"  {name:<16} budget met {s['budget_met_rate']:6.1%}  mean accuracy {s['mean_accuracy']:.3f}  "
            f"energy {s['energy_mj']:.3f} mJ"
        )
    atomic_write_json(folder / "replay.json", result)
    print(f"\nartifacts: {folder}/model.tflite, {folder}/replay.json, {folder}/run/")
    return 0
