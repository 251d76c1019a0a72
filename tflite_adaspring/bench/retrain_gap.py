"""``adaspring bench retrain-gap``: subnets taken from the supernet vs the same nets trained alone.

For >= 4 configurations spanning the space (largest, smallest and MAC quantiles in between) it
reports the test accuracy of the subnet taken from the trained supernet (BN recalibrated, no
fine-tuning) next to the same architecture trained alone from scratch with the same epoch budget,
batch size, augmentation and learning-rate schedule. Writes JSON and a generated markdown table.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np
from absl import flags

from tflite_adaspring.cli.task_flags import define_task_flags, load_task

FLAGS = flags.FlagValues()
define_task_flags(FLAGS)
flags.DEFINE_string("run", None, "Trained run folder (default: train into runs/bench/<task>).", flag_values=FLAGS)
flags.DEFINE_string("json", None, "Output JSON (default docs/results/retrain_gap_<task>.json).", flag_values=FLAGS)
flags.DEFINE_integer("epochs", None, "Epoch budget for both (default: the task's training budget).", flag_values=FLAGS)
flags.DEFINE_integer("configs", 4, "Configurations compared (>= 4).", flag_values=FLAGS)


def spanning_configs(supernet: Any, n: int, seed: int = 0) -> list[Any]:
    """Largest, smallest, and ``n - 2`` sampled configs at evenly spaced MAC quantiles."""
    space = supernet.space
    rng = random.Random(seed)
    pool = sorted({space.sample(rng, precision="fp32") for _ in range(300)}, key=lambda c: supernet.cost(c).macs)
    middle = [pool[int(q * (len(pool) - 1))] for q in np.linspace(0, 1, n)[1:-1]]
    return [space.largest(), *middle, space.smallest()]


def train_standalone(
    supernet: Any, config: Any, dataset: Any, options: Any, calibration: list[np.ndarray] | None = None
) -> float:
    """Trains ``config``'s architecture from scratch alone and returns its test accuracy.

    Same epochs, batch size, optimizer, schedule, weight decay, label smoothing and augmentation as
    the ensemble run (:func:`~tflite_adaspring.bench.standalone.fit_plain`); no distillation. Like the
    supernet subnet it is compared with, it is evaluated after BatchNorm recalibration on the same
    batches: with few training steps the moving statistics lag the weights, and an unrecalibrated
    small net can score near chance on a split whose batch statistics would give it 90 %.

    Args:
      supernet: the trained supernet (only its architecture for ``config`` is used).
      config: the configuration to train alone.
      dataset: the task's dataset.
      options: the run's training options.
      calibration: input batches for the BatchNorm recalibration (None: moving statistics as trained).

    Returns:
      Test accuracy of the net trained alone.
    """
    import tf_keras

    from tflite_adaspring.bench.baselines import recalibrate_plain
    from tflite_adaspring.bench.standalone import fit_plain, keras_accuracy

    tf_keras.utils.set_random_seed(options.seed)
    model = tf_keras.models.clone_model(supernet.materialize(config))  # same architecture, fresh weights
    model = fit_plain(model, dataset, options)
    if calibration is not None:
        model = recalibrate_plain(model, calibration)
    return keras_accuracy(model, dataset.test)


def markdown_table(result: dict[str, Any]) -> str:
    """The generated markdown table of a result."""
    lines = [
        f"### Retraining-free gap: {result['task']} ({result['epochs']} epochs each)",
        "",
        "| config | MACs | params | supernet subnet (no retraining) | trained alone | gap (points) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| `{r['config']}` | {r['macs']:,} | {r['params']:,} | {r['supernet_accuracy']:.2%} | "
            f"{r['standalone_accuracy']:.2%} | {r['gap_points']:+.2f} |"
        )
    lines += ["", f"Mean gap (supernet - standalone): **{result['mean_gap_points']:+.2f} points** "
              f"(positive: the supernet subnet is better).", ""]  # fmt: skip
    return "\n".join(lines)


def run(fv: flags.FlagValues) -> int:
    """Trains (or reuses) the supernet and the standalone nets, then writes JSON + markdown."""
    from tflite_adaspring.cli.train_cmd import train_run
    from tflite_adaspring.fileio import atomic_write_json, atomic_write_text
    from tflite_adaspring.training.run import load_run
    from tflite_adaspring.training.trainer import accuracy

    if fv.configs < 4:
        raise flags.ValidationError("--configs must be >= 4")
    run_dir = Path(fv.run or f"runs/bench/{fv.task}")
    t0 = time.perf_counter()
    if not (run_dir / "train_report.json").exists():
        print(f"training the supernet -> {run_dir}")
        train_run(load_task(fv), {"path": fv.data} if fv.task == "npz" else {}, run_dir, epochs=fv.epochs)
    supernet_seconds = time.perf_counter() - t0
    info, supernet, dataset = load_run(run_dir)
    options = info.options
    b = options.batch_size
    calibration = [dataset.train[0][i : i + b] for i in range(0, min(len(dataset.train[0]), 16 * b), b)]
    rows = []
    for config in spanning_configs(supernet, fv.configs, options.seed):
        cost = supernet.cost(config)
        ours = accuracy(supernet, config, dataset.test, calibration)
        t1 = time.perf_counter()
        alone = train_standalone(supernet, config, dataset, options, calibration)
        rows.append(
            {
                "config": config.id,
                "macs": cost.macs,
                "params": cost.params,
                "supernet_accuracy": ours,
                "standalone_accuracy": alone,
                "gap_points": 100 * (ours - alone),
                "standalone_seconds": round(time.perf_counter() - t1, 1),
            }
        )
        print(f"{config.id:<40} supernet {ours:.3f}  alone {alone:.3f}  gap {100 * (ours - alone):+.2f}")
    result = {
        "task": info.task,
        "epochs": options.epochs,
        "run": str(run_dir),
        "supernet_train_seconds_this_call": round(supernet_seconds, 1),
        "rows": rows,
        "mean_gap_points": float(np.mean([r["gap_points"] for r in rows])),
        "label": "measured",
    }
    out = Path(fv.json or f"docs/results/retrain_gap_{info.task}.json")
    atomic_write_json(out, result)
    atomic_write_text(out.with_suffix(".md"), markdown_table(result))
    print(f"mean gap {result['mean_gap_points']:+.2f} points -> {out}")
    return 0
