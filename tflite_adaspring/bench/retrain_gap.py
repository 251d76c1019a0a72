"""``adaspring bench retrain-gap``: subnets taken from the supernet vs the same nets trained alone.

For >= 4 configurations spanning the space (largest, smallest and MAC quantiles in between) it
reports the test accuracy of the subnet taken from the trained supernet (BN recalibrated, no
fine-tuning) next to the same architecture trained alone from scratch with the same epoch budget,
batch size, augmentation and learning-rate schedule, plus both validation accuracies (a second,
independent set of subjects for tasks split by subject) and the supernet's training time. Writes
JSON and a generated markdown table.
"""

from __future__ import annotations

import json
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
    supernet: Any,
    config: Any,
    dataset: Any,
    options: Any,
    calibration: list[np.ndarray] | None = None,
    cache_dir: Path | None = None,
) -> dict[str, float]:
    """Trains ``config``'s architecture from scratch alone and returns its test and validation accuracy.

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
      cache_dir: where trained weights are kept, keyed by config and recipe (None: always train). Use a
        folder tied to one dataset and backbone, such as the run folder.

    Returns:
      ``{"test": accuracy, "val": accuracy, "train_seconds": s}`` of the net trained alone (the seconds of
      the original training when the weights came from the cache).
    """
    import tf_keras

    from tflite_adaspring.bench.baselines import recalibrate_plain
    from tflite_adaspring.bench.standalone import fit_plain, keras_accuracy, load_weights_npz, save_weights_npz

    tf_keras.utils.set_random_seed(options.seed)
    model = tf_keras.models.clone_model(supernet.materialize(config))  # same architecture, fresh weights
    cached = None if cache_dir is None else standalone_cache_path(cache_dir, config.id, options)
    sidecar = None if cached is None else cached.with_suffix(".json")
    if cached is not None and cached.exists() and sidecar.exists():
        print(f"{config.id}: reusing the net trained alone from {cached}")
        load_weights_npz(model, cached)
        train_seconds = json.loads(sidecar.read_text())["train_seconds"]
    else:
        t0 = time.perf_counter()
        print(f"{config.id}: training alone for {options.epochs} epochs")
        model = fit_plain(model, dataset, options, log=print, label=config.id)
        train_seconds = round(time.perf_counter() - t0, 1)
        if cached is not None:
            from tflite_adaspring.fileio import atomic_write_json

            save_weights_npz(model, cached)
            atomic_write_json(sidecar, {"config": config.id, "train_seconds": train_seconds, **recipe_of(options)})
    if calibration is not None:
        model = recalibrate_plain(model, calibration)
    test, val = keras_accuracy(model, dataset.test), keras_accuracy(model, dataset.val)
    return {"test": test, "val": val, "train_seconds": train_seconds}


# The recipe fields that decide a net trained alone (fit_plain), besides its architecture and data.
STANDALONE_RECIPE = ("epochs", "batch_size", "learning_rate", "weight_decay", "label_smoothing", "augmentation", "seed")


def recipe_of(options: Any) -> dict[str, Any]:
    """The :data:`STANDALONE_RECIPE` fields of ``options`` (training options), by name."""
    return {name: getattr(options, name) for name in STANDALONE_RECIPE}


def standalone_cache_path(cache_dir: Path, config_id: str, options: Any) -> Path:
    """Where the weights of ``config_id`` trained alone with ``options``' recipe are cached.

    Args:
      cache_dir: the cache folder (one per dataset and backbone).
      config_id: the configuration's id.
      options: the training options; only the :data:`STANDALONE_RECIPE` fields enter the key.

    Returns:
      ``cache_dir / "<digest>.npz"``; a different config or recipe gives a different file.
    """
    import hashlib

    key = {"config": config_id, **recipe_of(options)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return Path(cache_dir) / f"{digest}.npz"


def whole_split_batches(x: np.ndarray, batch_size: int, seed: int) -> list[np.ndarray]:
    """The whole training split in shuffled batches, for BatchNorm recalibration of both nets compared.

    Every training window once (the supernet's own 16 random batches, or the first 16 in file order, which
    are a few recordings, move a single config's accuracy by 2-3 points between draws).

    Args:
      x: training inputs.
      batch_size: the run's batch size.
      seed: the run's seed.

    Returns:
      Batches of ``batch_size`` (the last one may be smaller).
    """
    order = np.random.default_rng(seed).permutation(len(x))
    return [x[order[i : i + batch_size]] for i in range(0, len(x), batch_size)]


def supernet_training_time(run_dir: Path) -> dict[str, float | None]:
    """How long the run's supernet training took, from its folder.

    Args:
      run_dir: a run folder written by ``adaspring train``.

    Returns:
      ``supernet_train_seconds`` (wall time of the last training call, from ``train_report.json``) and
      ``supernet_train_cpu_seconds`` (CPU time summed over ``log.jsonl``; None for runs logged without it).
    """
    report = json.loads((run_dir / "train_report.json").read_text())
    log = run_dir / "log.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    cpu = [r["cpu_seconds"] for r in records if "cpu_seconds" in r]
    return {
        "supernet_train_seconds": report.get("train_seconds_this_call"),
        "supernet_train_cpu_seconds": round(sum(cpu), 1) if cpu and len(cpu) == len(records) else None,
    }


def markdown_table(result: dict[str, Any]) -> str:
    """The generated markdown table of a result."""
    lines = [
        f"### Retraining-free gap: {result['task']} ({result['epochs']} epochs each)",
        "",
        *_training_time_line(result),
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
    if "mean_val_gap_points" in result:
        lines += [f"On the validation split: {result['mean_val_gap_points']:+.2f} points.", ""]
    return "\n".join(lines)


def _training_time_line(result: dict[str, Any]) -> list[str]:
    wall, cpu = result.get("supernet_train_seconds"), result.get("supernet_train_cpu_seconds")
    if wall is None:
        return []
    cpu_text = f", {cpu:.0f} s CPU" if cpu is not None else ""
    return [f"Supernet training: {wall:.0f} s wall{cpu_text} (measured).", ""]


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
    calibration = whole_split_batches(dataset.train[0], options.batch_size, options.seed)
    rows = []
    for config in spanning_configs(supernet, fv.configs, options.seed):
        cost = supernet.cost(config)
        ours = accuracy(supernet, config, dataset.test, calibration)
        ours_val = accuracy(supernet, config, dataset.val, calibration)
        alone = train_standalone(supernet, config, dataset, options, calibration, run_dir / "standalone")
        rows.append(
            {
                "config": config.id,
                "macs": cost.macs,
                "params": cost.params,
                "supernet_accuracy": ours,
                "standalone_accuracy": alone["test"],
                "gap_points": 100 * (ours - alone["test"]),
                "supernet_val_accuracy": ours_val,
                "standalone_val_accuracy": alone["val"],
                "val_gap_points": 100 * (ours_val - alone["val"]),
                "standalone_seconds": alone["train_seconds"],
            }
        )
        print(f"{config.id:<40} supernet {ours:.3f}  alone {alone['test']:.3f}  gap {rows[-1]['gap_points']:+.2f}  "
              f"(val gap {rows[-1]['val_gap_points']:+.2f})")  # fmt: skip
    result = {
        "task": info.task,
        "epochs": options.epochs,
        "run": str(run_dir),
        "supernet_train_seconds_this_call": round(supernet_seconds, 1),
        **supernet_training_time(run_dir),
        "rows": rows,
        "mean_gap_points": float(np.mean([r["gap_points"] for r in rows])),
        "mean_val_gap_points": float(np.mean([r["val_gap_points"] for r in rows])),
        "label": "measured",
    }
    out = Path(fv.json or f"docs/results/retrain_gap_{info.task}.json")
    atomic_write_json(out, result)
    atomic_write_text(out.with_suffix(".md"), markdown_table(result))
    print(f"mean gap {result['mean_gap_points']:+.2f} points -> {out}")
    return 0
