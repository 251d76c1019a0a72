"""A tiny trained run and its packed export, shared by the export and profiling tests (cached per process).

The run is a shrunken time-series backbone (stages of 8 and 16 channels, blocks (2, 1), every op) trained
for a few epochs on ``basic_motions``; the export holds a largest fp32 signature and two structures each
in fp32 and in a compressed precision (fp16, int8), so every compressed signature has an fp32 twin.
TensorFlow is imported lazily.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

TASK = "basic_motions"
TWINS = {"fp16": "d100.f50/s75-r50", "int8": "f25/d50-r25"}  # structure -> exported at fp32 and at this precision


@dataclasses.dataclass(frozen=True)
class TinyExport:
    """The run and the export.

    Attributes:
      run_dir: the run folder (``run.json`` + checkpoints).
      supernet: the supernet with the BatchNorm statistics the export used.
      dataset: the task's data.
      calibration: the recalibration batches.
      export: the :class:`~tflite_adaspring.export.packed.PackedExport`.
      configs: the exported configurations.
    """

    run_dir: Path
    supernet: Any
    dataset: Any
    calibration: list[np.ndarray]
    export: Any
    configs: list[Any]


def tiny_backbone(spec: Any) -> Any:
    """The default time-series backbone shrunk to two small stages with every op."""
    from tflite_adaspring.models.residual_cnn import timeseries_backbone

    full = timeseries_backbone(spec.input_shape, spec.num_classes)
    return dataclasses.replace(full, stem_channels=8, stage_channels=(8, 16), blocks_per_stage=(2, 1), head_units=16)


@functools.lru_cache(maxsize=1)
def build() -> TinyExport:
    """Trains the tiny run into a temporary folder and exports it (once per process)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from tflite_adaspring import data
    from tflite_adaspring.export.packed import build_packed
    from tflite_adaspring.export.pipeline import calibration_batches
    from tflite_adaspring.space import Config
    from tflite_adaspring.supernet import Supernet
    from tflite_adaspring.training import EnsembleTrainer, TrainOptions
    from tflite_adaspring.training.run import RunInfo, load_run, save_run_info

    dataset = data.load(TASK)
    backbone = tiny_backbone(dataset.spec)
    run_dir = Path(tempfile.mkdtemp(prefix="adaspring-tiny-run-"))
    options = TrainOptions(epochs=12, batch_size=8, learning_rate=1e-2, random_configs=1, recalibration_batches=4,
                           eval_random_configs=0)  # fmt: skip
    save_run_info(run_dir, RunInfo(TASK, {}, dataset.spec, backbone, options))
    trainer = EnsembleTrainer(lambda: Supernet(backbone, dataset.spec), dataset, options, verbose=False,
                              checkpoint_dir=run_dir / "checkpoints")  # fmt: skip
    trainer.fit()
    info, supernet, dataset = load_run(run_dir)
    calibration = calibration_batches(info, dataset)
    space = supernet.space
    configs = [space.largest()]
    for precision, structure in TWINS.items():
        twin = space.validate(Config.from_id(f"{structure}-fp32"))
        configs += [twin, twin.with_precision(precision)]
    export = build_packed(supernet, configs, dataset, calibration, TASK, runs=10, rounds=3)
    return TinyExport(run_dir, supernet, dataset, calibration, export, configs)
