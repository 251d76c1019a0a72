"""A training run on disk: what ``adaspring train`` writes and ``adaspring export`` reads.

Layout of ``RUN_DIR``::

    run.json            task, task options, input spec, backbone, space, train options (written first)
    checkpoints/        tf.train.Checkpoint of the supernet weights, optimizer and epoch
    log.jsonl           one JSON record per epoch
    train_report.json   final test/val accuracies of the largest, smallest and sampled configs
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from tflite_adaspring import data
from tflite_adaspring.data.spec import Dataset, InputSpec
from tflite_adaspring.errors import ModelFormatError
from tflite_adaspring.fileio import atomic_write_json
from tflite_adaspring.models.residual_cnn import BackboneSpec
from tflite_adaspring.supernet import Supernet
from tflite_adaspring.training.options import TrainOptions

RUN_SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """Everything needed to rebuild a run's supernet and data.

    Attributes:
      task: task name.
      task_options: options passed to ``data.load`` (e.g. ``{"path": ...}`` for npz).
      input_spec: the task's input spec.
      backbone: the supernet hyper-parameters.
      options: the training hyper-parameters.
    """

    task: str
    task_options: dict[str, Any]
    input_spec: InputSpec
    backbone: BackboneSpec
    options: TrainOptions

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "schema_version": RUN_SCHEMA_VERSION,
            "task": self.task,
            "task_options": self.task_options,
            "input_spec": self.input_spec.to_json(),
            "backbone": dataclasses.asdict(self.backbone),
            "space": self.backbone.space().to_json(),
            "options": self.options.to_json(),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RunInfo:
        """Inverse of :meth:`to_json`."""
        if obj.get("schema_version") != RUN_SCHEMA_VERSION:
            raise ModelFormatError(f"run.json has schema_version {obj.get('schema_version')!r}; expected 1")
        bb = dict(obj["backbone"])
        tuples = {k: tuple(v) for k, v in bb.items() if isinstance(v, list)}
        return cls(
            task=obj["task"],
            task_options=dict(obj["task_options"]),
            input_spec=InputSpec.from_json(obj["input_spec"]),
            backbone=BackboneSpec(**{**bb, **tuples}),
            options=TrainOptions.from_json(obj["options"]),
        )


def save_run_info(run_dir: str | Path, info: RunInfo) -> Path:
    """Writes ``run.json`` atomically."""
    return atomic_write_json(Path(run_dir) / "run.json", info.to_json())


def load_run(run_dir: str | Path) -> tuple[RunInfo, Supernet, Dataset]:
    """Rebuilds a run's supernet with its trained weights, and reloads its data.

    Args:
      run_dir: a folder written by ``adaspring train``.

    Returns:
      ``(info, supernet, dataset)``.

    Raises:
      FileNotFoundError: no ``run.json`` or no checkpoint in ``run_dir``.
    """
    import tensorflow as tf

    run_dir = Path(run_dir)
    path = run_dir / "run.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: train first with `adaspring train --task T --out {run_dir}`")
    info = RunInfo.from_json(json.loads(path.read_text()))
    latest = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    if latest is None:
        raise FileNotFoundError(f"no checkpoint under {run_dir / 'checkpoints'}: the run has not finished an epoch")
    supernet = Supernet(info.backbone, info.input_spec)
    tf.train.Checkpoint(model=supernet.model).restore(latest).expect_partial()
    dataset = data.load(info.task, **info.task_options)
    return info, supernet, dataset
