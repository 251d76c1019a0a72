"""``adaspring train``: ensemble-train a supernet on a task and write a run folder."""

from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path
from typing import Any

from absl import flags

from tflite_adaspring.cli.task_flags import define_task_flags, load_task

FLAGS = flags.FlagValues()
define_task_flags(FLAGS)
flags.DEFINE_string("out", None, "Run folder to write (resumes if it holds a checkpoint).", flag_values=FLAGS)
flags.DEFINE_integer("epochs", None, "Epochs (default: the task's recommended budget).", flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Seed of weights, data order and config sampling.", flag_values=FLAGS)
flags.DEFINE_integer("batch_size", None, "Global batch size.", flag_values=FLAGS)
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"], "tf.distribute strategy.",
                  flag_values=FLAGS)  # fmt: skip
flags.DEFINE_boolean("quiet", False, "No progress bar.", flag_values=FLAGS)
flags.mark_flag_as_required("out", flag_values=FLAGS)

# Epoch budgets that reach the accuracy targets on this 2-core machine (see docs/results).
DEFAULT_EPOCHS = {"har_watch": 40, "fashion_mnist": 12, "japanese_vowels": 60, "basic_motions": 60}
DEFAULT_BATCH_SIZE = {"fashion_mnist": 128, "har_watch": 32}  # har_watch: twice the updates per epoch for every subnet
# Tasks recorded by a wrist-worn IMU (accelerometer + gyroscope) generalise across people with rotations.
DEFAULT_AUGMENTATION = {"har_watch": "imu_rotation", "basic_motions": "imu_rotation"}


def train_run(task_data: Any, task_options: dict[str, Any], out: Path, **overrides: Any) -> dict[str, Any]:
    """Trains (or resumes) a run and writes ``run.json``, checkpoints, ``log.jsonl`` and ``train_report.json``.

    Args:
      task_data: the loaded dataset.
      task_options: options that reload it (stored in run.json).
      out: the run folder.
      **overrides: TrainOptions fields (``epochs``, ``seed``, ``batch_size``, ...) and ``strategy``, ``verbose``.

    Returns:
      The train report.
    """
    from tflite_adaspring.fileio import atomic_write_json
    from tflite_adaspring.models.residual_cnn import backbone_for
    from tflite_adaspring.supernet import Supernet
    from tflite_adaspring.training import EnsembleTrainer, TrainOptions, make_strategy
    from tflite_adaspring.training.run import RunInfo, save_run_info

    strategy = make_strategy(overrides.pop("strategy", "default"))
    verbose = overrides.pop("verbose", True)
    spec = task_data.spec
    fields = {k: v for k, v in overrides.items() if v is not None}
    fields.setdefault("epochs", DEFAULT_EPOCHS.get(spec.task, 40))
    fields.setdefault("augmentation", DEFAULT_AUGMENTATION.get(spec.task, "none"))
    # small data sets (basic_motions has 32 training examples) still get several steps per epoch
    small_data_batch = int(min(64, max(4, len(task_data.train[0]) // 4)))
    fields.setdefault("batch_size", DEFAULT_BATCH_SIZE.get(spec.task, small_data_batch))
    options = dataclasses.replace(TrainOptions(), **fields)
    backbone = backbone_for(spec)
    save_run_info(out, RunInfo(spec.task, task_options, spec, backbone, options))
    trainer = EnsembleTrainer(
        lambda: Supernet(backbone, spec),
        task_data,
        options,
        strategy=strategy,
        checkpoint_dir=out / "checkpoints",
        log_path=out / "log.jsonl",
        verbose=verbose,
    )
    t0 = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - t0
    space = trainer.supernet.space
    rng = random.Random(options.seed)
    sampled = [space.sample(rng, precision="fp32") for _ in range(4)]
    report = {
        "task": spec.task,
        "epochs": options.epochs,
        "train_seconds_this_call": round(seconds, 1),
        "strategy": type(strategy).__name__,
        "test_accuracy": {
            "largest": trainer.accuracy(space.largest(), "test"),
            "smallest": trainer.accuracy(space.smallest(), "test"),
            "sampled": {c.id: trainer.accuracy(c, "test") for c in sampled},
        },
        "val_accuracy": trainer.evaluate_sample("val"),
        "space": space.to_json(),
    }
    atomic_write_json(out / "train_report.json", report)
    return report


def run(fv: flags.FlagValues) -> int:
    """Trains and prints the summary."""
    task_data = load_task(fv)
    options = {"path": fv.data} if fv.task == "npz" else {}
    if fv.data_dir:
        options["data_dir"] = fv.data_dir
    report = train_run(
        task_data,
        options,
        Path(fv.out),
        epochs=fv.epochs,
        seed=fv.seed,
        batch_size=fv.batch_size,
        strategy=fv.strategy,
        verbose=not fv.quiet,
    )
    acc = report["test_accuracy"]
    print(f"trained {report['task']} for {report['epochs']} epochs -> {fv.out}")
    print(f"test accuracy: largest {acc['largest']:.3f}, smallest {acc['smallest']:.3f}")
    for cid, a in acc["sampled"].items():
        print(f"  {cid:<40} {a:.3f}")
    return 0
