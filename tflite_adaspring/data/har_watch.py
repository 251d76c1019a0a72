"""Smartwatch IMU exercise recognition: seglearn 1.2.5's ``watch_dataset.npy``, read with numpy only.

The file is a pickled dict: ``X`` (140 recordings of shape ``(T, 6)``: ax, ay, az, wx, wy, wz at 50 Hz),
``y`` (7 shoulder exercises, names in ``y_labels``), ``subject`` (10 subjects) and ``side``. seglearn is
never imported; the pickle holds only numpy arrays and lists.

Splits are by subject, so no subject appears in two splits: a seeded permutation of the sorted subject
ids gives the last ``test_subjects`` to test, the ``val_subjects`` before them to validation and the
rest to training. Recordings are cut into windows of ``window`` samples: overlapping (stride
``train_stride``) for training, non-overlapping for validation and test. ``Dataset.groups`` holds the
subject id of every window.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from tflite_adaspring.data import _files
from tflite_adaspring.data._assemble import build_dataset, normalize_splits
from tflite_adaspring.data.spec import Dataset
from tflite_adaspring.errors import DataValidationError

TASK = "har_watch"
PACKAGE = "seglearn"
PINNED_VERSION = "1.2.5"
INSTALL_COMMAND = _files.install_command(PACKAGE, PINNED_VERSION)
SAMPLING_RATE_HZ = 50.0
CHANNELS = 6


def locate() -> Path:
    """Returns the path of ``watch_dataset.npy``; raises DatasetUnavailableError naming the install command."""
    return _files.package_file(PACKAGE, "data/watch_dataset.npy", PINNED_VERSION)


def subject_assignment(
    subjects: np.ndarray, seed: int, val_subjects: int, test_subjects: int
) -> dict[str, tuple[int, ...]]:
    """Assigns every subject to exactly one split.

    Args:
      subjects: subject id of every recording.
      seed: seed of the subject permutation.
      val_subjects: number of validation subjects.
      test_subjects: number of test subjects.

    Returns:
      ``{"train": ids, "val": ids, "test": ids}``, each a sorted tuple of ints.
    """
    unique = np.unique(subjects)
    if val_subjects < 1 or test_subjects < 1 or val_subjects + test_subjects > len(unique) - 1:
        raise DataValidationError(
            f"val_subjects={val_subjects} and test_subjects={test_subjects} must be >= 1 and leave at least one "
            f"of the {len(unique)} subjects for training"
        )
    order = unique[np.random.default_rng(seed).permutation(len(unique))]
    n_train = len(unique) - val_subjects - test_subjects
    parts = {"train": order[:n_train], "val": order[n_train : n_train + val_subjects], "test": order[-test_subjects:]}
    return {name: tuple(sorted(int(s) for s in ids)) for name, ids in parts.items()}


def load(
    *,
    seed: int = 0,
    window: int = 128,
    train_stride: int = 64,
    val_subjects: int = 2,
    test_subjects: int = 2,
) -> Dataset:
    """Loads the smartwatch exercise task: x ``(n, window, 6)``, 7 classes, split by subject.

    Args:
      seed: seed of the subject assignment (see :func:`subject_assignment`).
      window: samples per window (128 = 2.56 s at 50 Hz).
      train_stride: hop between training windows (64 = 50 % overlap); val/test hop by ``window``.
      val_subjects: number of validation subjects.
      test_subjects: number of test subjects.

    Returns:
      The normalised :class:`Dataset`; ``groups`` holds each window's subject id per split.
    """
    if window < 1 or train_stride < 1:
        raise DataValidationError(f"window ({window}) and train_stride ({train_stride}) must be positive")
    recordings, labels, subjects, class_names = _read_cached(_files.file_key(locate()))
    assignment = subject_assignment(subjects, seed, val_subjects, test_subjects)
    strides = {"train": train_stride, "val": window, "test": window}
    raw, groups = {}, {}
    for split, members in assignment.items():
        chosen = [i for i in range(len(recordings)) if int(subjects[i]) in members]
        x, y, g = _windows([recordings[i] for i in chosen], labels[chosen], subjects[chosen], window, strides[split])
        raw[split], groups[split] = (x, y), g
    norm, train, val, test = normalize_splits(raw["train"], raw["val"], raw["test"])
    return build_dataset(TASK, "timeseries", class_names, (train, val, test), norm, SAMPLING_RATE_HZ, groups)


def _windows(
    recordings: list[np.ndarray], labels: np.ndarray, subjects: np.ndarray, window: int, stride: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cuts recordings into windows; returns ``(x (n, window, 6) float32, y int64, subject int64)``."""
    xs, ys, gs = [], [], []
    for recording, label, subject in zip(recordings, labels, subjects, strict=True):
        if len(recording) < window:
            continue
        starts = np.arange(0, len(recording) - window + 1, stride)
        view = np.lib.stride_tricks.sliding_window_view(recording, window, axis=0)  # (T-w+1, 6, w)
        xs.append(view[starts].transpose(0, 2, 1).astype(np.float32))
        ys.append(np.full(len(starts), label, np.int64))
        gs.append(np.full(len(starts), subject, np.int64))
    if not xs:
        raise DataValidationError(f"{TASK}: no recording is at least {window} samples long")
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)


@functools.lru_cache(maxsize=2)
def _read_cached(key: tuple[str, int, int]) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray, tuple[str, ...]]:
    """Reads and validates the pickled dict once per process; arrays are read-only.

    Returns:
      ``(recordings, labels, subjects, class_names)``.
    """
    path = key[0]
    try:
        content = np.load(path, allow_pickle=True).item()  # trusted: the file ships inside seglearn
        recordings = tuple(np.asarray(r, np.float64) for r in content["X"])
        labels = np.asarray(content["y"], np.int64)
        subjects = np.asarray(content["subject"], np.int64)
        class_names = tuple(str(c) for c in content.get("y_labels", ()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataValidationError(f"{path} is not seglearn's watch dataset ({type(exc).__name__}: {exc})") from None
    if not class_names:
        class_names = tuple(str(c) for c in range(int(labels.max()) + 1))
    if not len(recordings) == len(labels) == len(subjects):
        raise DataValidationError(f"{path}: X, y and subject have different lengths")
    if any(r.ndim != 2 or r.shape[1] != CHANNELS for r in recordings):
        raise DataValidationError(f"{path}: every recording must have shape (T, {CHANNELS})")
    if labels.min() < 0 or labels.max() >= len(class_names):
        raise DataValidationError(f"{path}: labels outside [0, {len(class_names)})")
    for array in (*recordings, labels, subjects):
        array.flags.writeable = False
    return recordings, labels, subjects, class_names
