"""What a task's data looks like: the contract between loaders, training, export and the runtime."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Normalization:
    """Per-channel affine normalisation computed on the training split only.

    The loaders already apply it; exported models take the normalised arrays. It is recorded so a
    device app can normalise raw sensor data the same way: ``x_norm = (x_raw - mean) / std``.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-serialisable dict."""
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Normalization:
        """Builds from :meth:`to_json` output."""
        return cls(tuple(float(v) for v in obj["mean"]), tuple(float(v) for v in obj["std"]))


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """Shape and meaning of one model input and its labels.

    Attributes:
      task: registry name of the task (e.g. ``har_watch``).
      input_shape: shape of one example without the batch axis, e.g. ``(128, 6)`` or ``(28, 28, 1)``.
      class_names: one name per class; ``len(class_names)`` is the number of classes.
      kind: ``"timeseries"`` (rank-2 examples: time x channels) or ``"image"`` (rank-3: H x W x C).
      normalization: the normalisation the loader applied.
      sampling_rate_hz: samples per second for time series, None otherwise.
      dtype: dtype of the input arrays (float32).
    """

    task: str
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    kind: str
    normalization: Normalization | None = None
    sampling_rate_hz: float | None = None
    dtype: str = "float32"

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-serialisable dict (embedded in exported model metadata)."""
        return {
            "task": self.task,
            "input_shape": list(self.input_shape),
            "class_names": list(self.class_names),
            "kind": self.kind,
            "normalization": None if self.normalization is None else self.normalization.to_json(),
            "sampling_rate_hz": self.sampling_rate_hz,
            "dtype": self.dtype,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> InputSpec:
        """Builds from :meth:`to_json` output."""
        norm = obj.get("normalization")
        return cls(
            task=str(obj["task"]),
            input_shape=tuple(int(v) for v in obj["input_shape"]),
            class_names=tuple(str(v) for v in obj["class_names"]),
            kind=str(obj["kind"]),
            normalization=None if norm is None else Normalization.from_json(norm),
            sampling_rate_hz=obj.get("sampling_rate_hz"),
            dtype=str(obj.get("dtype", "float32")),
        )


Split = tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A loaded task: three ``(x, y)`` splits and its :class:`InputSpec`.

    ``x`` is float32 of shape ``(n,) + spec.input_shape``; ``y`` is int64 class indices.
    ``groups`` optionally maps each split name (``train``/``val``/``test``) to one int64 group id per
    example (e.g. the subject of every ``har_watch`` window), for leakage checks and grouped evaluation.
    """

    train: Split
    val: Split
    test: Split
    spec: InputSpec
    groups: Mapping[str, np.ndarray] | None = None
