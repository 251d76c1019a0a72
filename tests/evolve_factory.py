"""A tiny trained-free supernet exported as packed and evolve models (TensorFlow imported lazily; cached).

The supernet is the default time-series backbone shrunk to two stages with every op (``std``, ``dws``,
``fire``); BatchNorm gammas/betas are randomised and statistics recalibrated on random inputs, so BN
folding is exercised with non-trivial values. The three configurations cover every op, partial widths,
a skipped block, a factorised head (rank 4 of 16) and unfactorised ones (ranks 8 and 16). The untrained
configurations all score chance accuracy, so the metadata's accuracies are replaced by distinct values
growing with latency (0.6, 0.7, ...) to give the search something to choose.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import numpy as np

TASK = "basic_motions"
CONFIG_IDS = (
    "s50.d25/f75-r25-fp32",
    "d100.f50/s100-r100-fp32",
    "f25/d50-r50-fp32",
)


@dataclasses.dataclass(frozen=True)
class EvolveModels:
    """The exported models.

    Attributes:
      packed: the packed multi-signature model.
      evolve: the same configurations in evolve mode.
      report: :func:`~tflite_adaspring.export.evolve.evolve_from_packed`'s report.
      x: a few test inputs (float32, batch axis first).
      supernet: the tiny supernet (statistics recalibrated for the three configurations).
      dataset: the task's Dataset.
      calibration: the recalibration batches.
    """

    packed: bytes
    evolve: bytes
    report: dict[str, Any]
    x: np.ndarray
    supernet: Any
    dataset: Any
    calibration: list[np.ndarray]


@functools.lru_cache(maxsize=1)
def build() -> EvolveModels:
    """Builds (once per process) the tiny supernet and both exports."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tflite_adaspring import data
    from tflite_adaspring.export import export_packed
    from tflite_adaspring.export.evolve import evolve_from_packed
    from tflite_adaspring.models.residual_cnn import timeseries_backbone
    from tflite_adaspring.space import Config
    from tflite_adaspring.supernet import Supernet

    dataset = data.load(TASK)
    full = timeseries_backbone(dataset.spec.input_shape, dataset.spec.num_classes)
    backbone = dataclasses.replace(
        full, stem_channels=8, stage_channels=(8, 16), blocks_per_stage=(2, 1), head_units=16
    )
    supernet = Supernet(backbone, dataset.spec)
    rng = np.random.default_rng(0)
    for bn in supernet.batchnorms():
        bn.gamma.assign(rng.uniform(0.5, 1.5, bn.gamma.shape).astype(np.float32))
        bn.beta.assign(rng.normal(0.0, 0.2, bn.beta.shape).astype(np.float32))
    calibration = [rng.normal(size=(8, *backbone.input_shape)).astype(np.float32) for _ in range(2)]
    configs = [supernet.space.validate(Config.from_id(c)) for c in CONFIG_IDS]
    packed = _spread_accuracies(export_packed(supernet, configs, dataset, calibration, TASK))
    evolve, report = evolve_from_packed(supernet, packed, strict=True)
    x = dataset.test[0][:4].astype(np.float32)
    return EvolveModels(packed, evolve, report, x, supernet, dataset, calibration)


def _spread_accuracies(model: bytes) -> bytes:
    from tflite_adaspring.metadata import read_metadata, write_metadata

    meta = read_metadata(model)
    rows = tuple(dataclasses.replace(r, accuracy=0.6 + 0.1 * i) for i, r in enumerate(meta.signatures))
    return write_metadata(model, dataclasses.replace(meta, signatures=rows))
