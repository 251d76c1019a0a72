"""Hyper-parameters of ensemble training."""

from __future__ import annotations

import dataclasses
from typing import Any

from tflite_adaspring.training.schedule import ShrinkSchedule


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """Ensemble-training hyper-parameters (defaults suit the bundled tasks on a 2-core CPU).

    Attributes:
      epochs: passes over the training split.
      batch_size: global batch size.
      learning_rate: peak Adam learning rate (cosine decay to 0).
      weight_decay: L2 penalty on kernels.
      random_configs: random configs per step besides the largest and the smallest (sandwich rule).
      distill_weight: weight of in-place distillation from the largest config (0..1).
      temperature: distillation temperature.
      label_smoothing: label smoothing of the largest config's cross-entropy.
      resort_every: re-sort channels by importance every this many epochs (0: never).
      recalibration_batches: batches used to recalibrate BN statistics per evaluated config.
      eval_random_configs: random configs evaluated per evaluation (with the largest and the smallest).
      eval_every: evaluate on the validation split every this many epochs and after the last one
        (each evaluation recalibrates BatchNorm for ``2 + eval_random_configs`` configs: seconds per epoch).
      augmentation: ``none`` or ``imu_rotation`` (see :mod:`tflite_adaspring.training.augment`).
      seed: seed of weights, data order and config sampling.
      schedule: progressive-shrinking phase starts.
    """

    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    random_configs: int = 2
    distill_weight: float = 0.3
    temperature: float = 1.0
    label_smoothing: float = 0.1
    resort_every: int = 5
    recalibration_batches: int = 16
    eval_random_configs: int = 2
    eval_every: int = 5
    augmentation: str = "none"
    seed: int = 0
    schedule: ShrinkSchedule = dataclasses.field(default_factory=ShrinkSchedule)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        out = dataclasses.asdict(self)
        out["schedule"] = [list(s) for s in self.schedule.starts]
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TrainOptions:
        """Inverse of :meth:`to_json`."""
        obj = dict(obj)
        schedule = ShrinkSchedule(tuple((str(n), float(f)) for n, f in obj.pop("schedule")))
        return cls(schedule=schedule, **obj)
