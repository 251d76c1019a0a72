"""``adaspring demo``: train (or reuse) a supernet, export a packed model, replay a simulated day.

Artifacts go to ``runs/demo/<task>/``: ``run/`` (the training run), ``model.tflite`` (the packed
multi-signature model), ``model_evolve.tflite`` (the same configurations in evolve storage mode),
``replay.json`` (per-window records and the summary) and ``timeline.png``.
The replay starts real busy-loop processes during the day's busy phases and stops them at the end,
on Ctrl-C, on SIGTERM and on errors (see :mod:`tflite_adaspring.demo.load`).
"""

from __future__ import annotations

import dataclasses
import random
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
from absl import flags

FLAGS = flags.FlagValues()
flags.DEFINE_string("task", "har_watch", "Task to demonstrate.", flag_values=FLAGS)
flags.DEFINE_string("out", "runs/demo", "Demo folder (artifacts under OUT/<task>/).", flag_values=FLAGS)
flags.DEFINE_integer("epochs", 12, "Training epochs when no cached run exists.", flag_values=FLAGS)
flags.DEFINE_integer("signatures", 16, "Configurations exported into the model.", flag_values=FLAGS)
flags.DEFINE_integer("candidates", 48, "Sampled configurations whose accuracy is measured to pick them.",
                     flag_values=FLAGS)  # fmt: skip
flags.DEFINE_integer("windows", 120, "Inference windows replayed over the simulated day.", flag_values=FLAGS)
flags.DEFINE_integer("invokes", 300, "Inferences per window and run.", flag_values=FLAGS)
flags.DEFINE_float("pace", 0.35, "Real seconds per window at least.", flag_values=FLAGS)
flags.DEFINE_integer("threads", 1, "LiteRT threads.", flag_values=FLAGS)
flags.DEFINE_integer("load_workers", 2, "Busy-loop processes at most during busy phases.", flag_values=FLAGS)
flags.DEFINE_integer("load_nice", 10, "Niceness of the busy loops: 10 ranks them below the app like background "
                     "apps; 0 makes them compete as equals.", lower_bound=0, upper_bound=19,
                     flag_values=FLAGS)  # fmt: skip
flags.DEFINE_enum("storage", "packed", ["packed", "evolve"], "Which of the two models the replay runs.",
                  flag_values=FLAGS)  # fmt: skip


def pareto_fronts(points: dict[Any, tuple[float, float]]) -> list[list[Any]]:
    """Non-dominated sorting of ``{item: (cost, value)}`` (lower cost, higher value is better).

    Returns:
      The fronts, best first; each sorted by cost.
    """
    left, fronts = dict(points), []
    while left:

        def dominated(a: Any) -> bool:
            ca, va = left[a]
            return any(cb <= ca and vb >= va and (cb, vb) != (ca, va) for cb, vb in left.values())

        front = sorted((a for a in left if not dominated(a)), key=lambda a: left[a])
        fronts.append(front)
        for a in front:
            del left[a]
    return fronts


def backbone_leaning_sample(space: Any, rng: random.Random, keep_op: float = 0.75) -> Any:
    """A random float32 configuration whose blocks keep the largest configuration's op with probability
    ``keep_op`` (other knobs uniform): most candidates then add no decomposition branch to the backbone."""
    config = space.sample(rng, "fp32")
    ops = [[b.op for b in stage] for stage in space.largest().stages]
    stages = tuple(
        tuple(dataclasses.replace(b, op=ops[s][i]) if rng.random() < keep_op else b for i, b in enumerate(stage))
        for s, stage in enumerate(config.stages)
    )
    return dataclasses.replace(config, stages=stages)


def select_configs(
    supernet: Any, dataset: Any, calibration: list[np.ndarray], k: int, candidates: int, branch_budget: float
) -> list:
    """The ``k`` configurations to export: the accuracy/MAC Pareto front of sampled ones, thinned evenly.

    Every candidate's validation accuracy is measured on the supernet after BatchNorm recalibration (the
    recalibrated statistics are kept, so the export reuses them). The largest and the smallest
    configurations are always kept (the static baselines); then whole fronts are taken best first, the
    last one needed thinned evenly over MACs. Candidates and picks are limited to decomposition branches
    whose weights beyond the backbone and the smallest configuration's fit ``branch_budget`` (so the
    evolve file stays near the full model's size; :func:`tflite_adaspring.export.evolve.branch_bytes`).

    Args:
      supernet: the trained supernet.
      dataset: the task's Dataset.
      calibration: BatchNorm recalibration batches.
      k: configurations wanted.
      candidates: random configurations sampled (plus the largest and the smallest).
      branch_budget: a fraction of the largest configuration's weight bytes (0: only slices of the largest
        and the smallest configurations' branches).

    Returns:
      Up to ``k`` configurations.
    """
    from tflite_adaspring.export.evolve import branch_bytes
    from tflite_adaspring.training.trainer import accuracy

    space = supernet.space
    largest, smallest = space.largest(), space.smallest()
    budget = branch_bytes(supernet, [largest, smallest]) + branch_budget * supernet.cost(largest).weight_bytes()

    def fits(configs: list) -> bool:
        return branch_bytes(supernet, configs) <= budget

    rng = random.Random(0)
    pool = [largest, smallest]
    for _ in range(100 * candidates):
        if len(pool) >= candidates + 2:
            break
        c = backbone_leaning_sample(space, rng)
        if c not in pool and fits([c]):
            pool.append(c)
    points = {c: (float(supernet.cost(c).macs), accuracy(supernet, c, dataset.val, calibration)) for c in pool}
    chosen = [largest, smallest]
    for front in pareto_fronts(points):
        front = [c for c in front if c not in chosen]
        room = k - len(chosen)
        if len(front) > room:
            front = [front[int(i)] for i in np.linspace(0, len(front) - 1, room)] if room > 0 else []
        for c in front:
            if fits([*chosen, c]):
                chosen.append(c)
        if len(chosen) >= k:
            break
    return chosen[:k]


def ensure_model(task: str, folder: Path, epochs: int, k: int, candidates: int = 48) -> Path:
    """Returns ``folder/model.tflite``, training and exporting it (and ``model_evolve.tflite``) first when
    it does not exist."""
    model_path = folder / "model.tflite"
    if model_path.exists():
        print(f"using cached model {model_path} (delete it to rebuild)")
        return model_path
    from tflite_adaspring import data
    from tflite_adaspring.cli.train_cmd import train_run
    from tflite_adaspring.export import export_packed
    from tflite_adaspring.export.evolve import evolve_from_packed
    from tflite_adaspring.export.pipeline import EVOLVE_BRANCH_BUDGET
    from tflite_adaspring.metadata import save_model
    from tflite_adaspring.training.run import load_run

    run_dir = folder / "run"
    if not (run_dir / "train_report.json").exists():
        print(f"training the {task} supernet for {epochs} epochs -> {run_dir}")
        start = time.perf_counter()
        train_run(data.load(task), {}, run_dir, epochs=epochs)
        print(f"trained in {time.perf_counter() - start:.0f} s")
    info, supernet, dataset = load_run(run_dir)
    n = info.options.batch_size
    calibration = [dataset.train[0][i : i + n] for i in range(0, min(len(dataset.train[0]), 16 * n), n)]
    start = time.perf_counter()
    print(f"measuring the validation accuracy of {candidates + 2} candidate configurations to pick {k} ...")
    configs = select_configs(supernet, dataset, calibration, k, candidates, EVOLVE_BRANCH_BUDGET)
    print(f"picked in {time.perf_counter() - start:.0f} s; exporting {len(configs)} configurations ...")
    start = time.perf_counter()
    model = export_packed(supernet, configs, dataset, calibration, task)
    evolve, report = evolve_from_packed(supernet, model, calibration)
    if report["underivable"]:
        print(f"note: {len(report['underivable'])} weights of the evolve model are stored as converted, not derived")
    save_model(folder / "model_evolve.tflite", evolve)
    save_model(model_path, model)  # last: its presence means the export is complete
    print(
        f"exported in {time.perf_counter() - start:.0f} s -> {model_path} ({len(model) / 1e6:.2f} MB packed, "
        f"{report['file_bytes'] / 1e6:.2f} MB evolve)"
    )
    return model_path


HEADER = (
    f"{'t(min)':>6} {'batt%':>6} {'mode':<11} {'load':>4} {'cont':>5} {'budget':>7} | {'config (adaptive)':<44} "
    f"{'ms':>7} {'met':>3} {'acc':>5} {'mJ':>6} | {'largest':>7} {'met':>3} | {'smallest':>8} {'met':>3}"
)


def format_window(w: dict[str, Any]) -> str:
    """One line of the per-window table."""
    a, big, small = (w["runs"][r] for r in ("adaptive", "static_largest", "static_smallest"))

    def mark(v: dict[str, Any]) -> str:
        return "yes" if v["met"] else "NO"

    contention = w["contention"] if w["contention"] is not None else float("nan")
    return (
        f"{w['t'] / 60:6.2f} {w['battery']:6.1f} {w['energy_mode']:<11} {w['load_workers']:>4} {contention:5.2f} "
        f"{w['budget_ms']:7.3f} | {w['key'] + ' ' + w['config']:<44} {a['measured_ms']:7.3f} {mark(a):>3} "
        f"{a['accuracy']:5.3f} {a['energy_mj']:6.3f} | {big['measured_ms']:7.3f} {mark(big):>3} | "
        f"{small['measured_ms']:8.3f} {mark(small):>3}"
    )


def format_summary(summary: dict[str, dict[str, float]]) -> list[str]:
    """The summary lines (budget met from measured latency; energy modeled)."""
    lines = ["summary (budget met = measured mean latency of the window's invokes <= budget; energy is modeled):"]
    for name, s in summary.items():
        lines.append(
            f"  {name:<16} budget met {s['budget_met_rate']:6.1%} ({int(s['violations'])} violations, "
            f"{s['invoke_met_rate']:.1%} of invokes)  mean accuracy {s['mean_accuracy']:.3f} "
            f"(replayed test windows {s['replay_accuracy']:.3f})  energy {s['energy_mj']:.2f} mJ  "
            f"mean latency {s['mean_latency_ms']:.3f} ms"
        )
    return lines


def _raise_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def run(fv: flags.FlagValues) -> int:
    """Builds (or reuses) the demo model and replays the simulated day."""
    from tflite_adaspring import data
    from tflite_adaspring.demo.replay import ReplaySettings, replay
    from tflite_adaspring.demo.timeline import plot_timeline
    from tflite_adaspring.fileio import atomic_write_json

    start = time.perf_counter()
    folder = Path(fv.out) / fv.task
    model_path = ensure_model(fv.task, folder, fv.epochs, fv.signatures, fv.candidates)
    if fv.storage == "evolve":
        model_path = folder / "model_evolve.tflite"
        if not model_path.exists():
            print(f"adaspring demo: {model_path} not found; delete {folder / 'model.tflite'} to export both again")
            return 1
    built_s = time.perf_counter() - start
    x, y = data.load(fv.task).test
    settings = ReplaySettings(
        windows=fv.windows,
        invokes=fv.invokes,
        pace_s=fv.pace,
        threads=fv.threads,
        max_workers=fv.load_workers,
        load_nice=fv.load_nice,
    )
    print(
        f"\nreplaying a {settings.duration_s / 60:.0f}-minute simulated day in {settings.windows} windows on "
        f"{model_path.name} (busy phases start {settings.max_workers} real busy-loop processes at nice "
        f"{settings.load_nice})\n{HEADER}"
    )
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)  # so the load processes are cleaned up
    try:
        result = replay(model_path, x, y, settings, log=lambda w: print(format_window(w), flush=True))
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("\n" + "\n".join(format_summary(result["summary"])))
    before, after = result["load_average"]["before"][0], result["load_average"]["after"][0]
    print(f"machine load average (1 min) {before:.2f} before the replay, {after:.2f} after: other processes "
          "compete with it too (the contention column measures them)")  # fmt: skip
    result["seconds"] = {"build": built_s, "total": time.perf_counter() - start}
    atomic_write_json(folder / "replay.json", result)
    plot_timeline(result, folder / "timeline.png")
    print(f"\nartifacts: {folder}/model.tflite, model_evolve.tflite, replay.json, timeline.png, run/ "
          f"(model ready after {built_s:.0f} s, total {time.perf_counter() - start:.0f} s)")  # fmt: skip
    return 0
