"""JapaneseVowels and BasicMotions: the multivariate ``.ts`` sets bundled with aeon 1.6.0.

The files are read with :mod:`tflite_adaspring.data.ts_format` (numpy only); aeon itself is never
imported. Series are returned time-major, ``(frames, dimensions)``; shorter JapaneseVowels utterances
are zero-padded at the end *after* normalisation (so padding equals the training mean). The
validation split is a seeded, class-stratified slice of aeon's TRAIN file; TEST is aeon's TEST file.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from tflite_adaspring.data import _files
from tflite_adaspring.data._assemble import build_dataset
from tflite_adaspring.data._normalize import apply_normalization, fit_normalization
from tflite_adaspring.data._splits import carve_validation, validation_size
from tflite_adaspring.data.spec import Dataset
from tflite_adaspring.data.ts_format import TsData, read_ts
from tflite_adaspring.errors import DataValidationError

PACKAGE = "aeon"
PINNED_VERSION = "1.6.0"
INSTALL_COMMAND = _files.install_command(PACKAGE, PINNED_VERSION)


@dataclasses.dataclass(frozen=True)
class TsTask:
    """One aeon-bundled task.

    Attributes:
      name: registry name.
      folder: folder (and file prefix) under ``aeon/datasets/data``.
      frames: time steps of the model input; shorter series are padded to it.
      sampling_rate_hz: frames per second.
    """

    name: str
    folder: str
    frames: int
    sampling_rate_hz: float


# JapaneseVowels: 12 LPC cepstrum coefficients per 25.6 ms frame with a 6.4 ms shift (UCI description),
# i.e. 156.25 frames/s; utterances have 7..29 frames. Labels are speakers 1..9.
JAPANESE_VOWELS = TsTask("japanese_vowels", "JapaneseVowels", frames=29, sampling_rate_hz=156.25)
# BasicMotions: smartwatch accelerometer + gyroscope, 10 s at 10 Hz.
BASIC_MOTIONS = TsTask("basic_motions", "BasicMotions", frames=100, sampling_rate_hz=10.0)


def locate(task: TsTask, split: str) -> Path:
    """Returns the ``.ts`` file of ``split`` (``"TRAIN"`` or ``"TEST"``); raises DatasetUnavailableError."""
    return _files.package_file(PACKAGE, f"datasets/data/{task.folder}/{task.folder}_{split}.ts", PINNED_VERSION)


def load_japanese_vowels(*, seed: int = 0, val_fraction: float = 0.2) -> Dataset:
    """Loads JapaneseVowels (speaker identification): x ``(n, 29, 12)``, 9 classes.

    Args:
      seed: seed of the validation carve.
      val_fraction: fraction of aeon's TRAIN file used for validation.

    Returns:
      The normalised :class:`Dataset` (270 TRAIN cases split into train/val, 370 test cases).
    """
    return _load(JAPANESE_VOWELS, seed, val_fraction)


def load_basic_motions(*, seed: int = 0, val_fraction: float = 0.2) -> Dataset:
    """Loads BasicMotions (standing/running/walking/badminton): x ``(n, 100, 6)``, 4 classes.

    Args:
      seed: seed of the validation carve.
      val_fraction: fraction of aeon's TRAIN file used for validation.

    Returns:
      The normalised :class:`Dataset` (40 TRAIN cases split into train/val, 40 test cases).
    """
    return _load(BASIC_MOTIONS, seed, val_fraction)


def _load(task: TsTask, seed: int, val_fraction: float) -> Dataset:
    train_file, test_file = (_read_cached(_files.file_key(locate(task, s))) for s in ("TRAIN", "TEST"))
    if train_file.class_names != test_file.class_names:
        raise DataValidationError(
            f"{task.name}: TRAIN and TEST declare different classes {train_file.class_names} vs {test_file.class_names}"
        )
    x_all, mask_all = _pad_time_major(train_file.series, task)
    x_test, mask_test = _pad_time_major(test_file.series, task)
    y_all = train_file.labels
    train_idx, val_idx = carve_validation(y_all, validation_size(len(y_all), val_fraction), seed)
    norm = fit_normalization(x_all[train_idx][mask_all[train_idx]])  # real frames only, not padding
    splits = []
    for x, mask, y in (
        (x_all[train_idx], mask_all[train_idx], y_all[train_idx]),
        (x_all[val_idx], mask_all[val_idx], y_all[val_idx]),
        (x_test, mask_test, test_file.labels),
    ):
        x_norm = apply_normalization(x, norm)
        x_norm[~mask] = 0.0
        splits.append((x_norm, y.copy()))
    return build_dataset(task.name, "timeseries", train_file.class_names, tuple(splits), norm, task.sampling_rate_hz)


def _pad_time_major(series: tuple[np.ndarray, ...], task: TsTask) -> tuple[np.ndarray, np.ndarray]:
    """Stacks ``(dims, length)`` series into ``(n, frames, dims)`` plus a ``(n, frames)`` real-frame mask."""
    dims = {s.shape[0] for s in series}
    if len(dims) != 1:
        raise DataValidationError(f"{task.name}: cases have different dimension counts {sorted(dims)}")
    x = np.zeros((len(series), task.frames, dims.pop()), np.float32)
    mask = np.zeros((len(series), task.frames), bool)
    for i, case in enumerate(series):
        length = case.shape[1]
        if length > task.frames:
            raise DataValidationError(f"{task.name}: case {i} has {length} frames, more than {task.frames}")
        if not np.isfinite(case).all():
            raise DataValidationError(f"{task.name}: case {i} has missing or non-finite values")
        x[i, :length] = case.T
        mask[i, :length] = True
    return x, mask


@functools.lru_cache(maxsize=8)
def _read_cached(key: tuple[str, int, int]) -> TsData:
    """Parses a ``.ts`` file once per process (keyed by path, mtime and size); arrays are read-only."""
    data = read_ts(key[0])
    for array in (*data.series, data.labels):
        array.flags.writeable = False
    return data
