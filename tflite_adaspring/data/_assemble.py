"""Turning prepared split arrays into a :class:`Dataset` with its :class:`InputSpec`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tflite_adaspring.data._normalize import apply_normalization, fit_normalization
from tflite_adaspring.data.spec import Dataset, InputSpec, Normalization, Split


def normalize_splits(train: Split, val: Split, test: Split) -> tuple[Normalization, Split, Split, Split]:
    """Fits a per-channel normalisation on ``train`` only and applies it to all three splits.

    Args:
      train: ``(x, y)`` of the training split (raw values).
      val: ``(x, y)`` of the validation split.
      test: ``(x, y)`` of the test split.

    Returns:
      ``(normalization, train, val, test)`` with new float32 ``x`` arrays.
    """
    norm = fit_normalization(train[0])
    return norm, *((apply_normalization(x, norm), y) for x, y in (train, val, test))


def build_dataset(
    task: str,
    kind: str,
    class_names: Sequence[str],
    splits: tuple[Split, Split, Split],
    normalization: Normalization,
    sampling_rate_hz: float | None = None,
    groups: Mapping[str, np.ndarray] | None = None,
) -> Dataset:
    """Builds the :class:`Dataset` (float32 x, int64 y, contiguous) and its :class:`InputSpec`.

    Args:
      task: registry name of the task.
      kind: ``"timeseries"`` or ``"image"``.
      class_names: one name per class.
      splits: ``(train, val, test)``, already normalised.
      normalization: the normalisation that was applied.
      sampling_rate_hz: samples per second for time series.
      groups: optional per-split group ids.

    Returns:
      The dataset.
    """
    # x arrays are fresh from normalisation; labels are copied so no caller shares a cached array.
    train, val, test = ((np.ascontiguousarray(x, dtype=np.float32), np.array(y, dtype=np.int64)) for x, y in splits)
    spec = InputSpec(
        task=task,
        input_shape=tuple(int(d) for d in train[0].shape[1:]),
        class_names=tuple(str(c) for c in class_names),
        kind=kind,
        normalization=normalization,
        sampling_rate_hz=None if sampling_rate_hz is None else float(sampling_rate_hz),
    )
    group_ids = None if groups is None else {k: np.asarray(v, np.int64) for k, v in groups.items()}
    return Dataset(train=train, val=val, test=test, spec=spec, groups=group_ids)
