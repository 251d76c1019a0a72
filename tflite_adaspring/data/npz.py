"""Bring-your-own data: a validated ``.npz`` file.

Required arrays: ``x_train``, ``y_train``, ``x_test``, ``y_test``. Optional: ``x_val`` + ``y_val`` (both
or neither; without them a seeded, class-stratified ``val_fraction`` of train becomes validation) and
``class_names`` (1-D strings; otherwise classes are named ``"0"..``).

Rules (a violation raises :class:`DataValidationError` naming the field):

- ``x_*``: real numeric dtype (ints or floats), finite after conversion to float32, at least one example,
  and the same per-example shape in every split. The per-example rank decides the kind: rank 2
  ``(time, channels)`` -> ``"timeseries"``; rank 3 ``(height, width, channels)`` -> ``"image"``; rank 1
  ``(features,)`` -> a univariate series, reshaped to ``(features, 1)``; other ranks are rejected.
- ``y_*``: 1-D, integer dtype, one label per example, values in ``[0, num_classes)`` where
  ``num_classes`` is ``len(class_names)`` if given, else ``max label + 1``; at least 2 classes.

The file is read with ``allow_pickle=False``; normalisation is per last-axis channel from train.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from tflite_adaspring.data._assemble import build_dataset, normalize_splits
from tflite_adaspring.data._splits import carve_validation, validation_size
from tflite_adaspring.data.spec import Dataset, Split
from tflite_adaspring.errors import DatasetUnavailableError, DataValidationError

TASK = "npz"
REQUIRED = ("x_train", "y_train", "x_test", "y_test")
OPTIONAL = ("x_val", "y_val", "class_names")
KIND_BY_RANK = {1: "timeseries", 2: "timeseries", 3: "image"}


def load(*, path: str | os.PathLike | None = None, seed: int = 0, val_fraction: float = 0.1) -> Dataset:
    """Loads and validates a user ``.npz`` file.

    Args:
      path: the ``.npz`` file (required).
      seed: seed of the validation carve (used only when the file has no ``x_val``/``y_val``).
      val_fraction: fraction of train carved out for validation when the file has none.

    Returns:
      The normalised :class:`Dataset`.

    Raises:
      DataValidationError: ``path`` missing, not an ``.npz``, or an array breaks a rule (named in the message).
      DatasetUnavailableError: the file does not exist.
    """
    arrays = read_arrays(path)
    splits = {
        name: (_features(arrays[f"x_{name}"], f"x_{name}"), _labels(arrays, name))
        for name in ("train", "val", "test")
        if f"x_{name}" in arrays
    }
    example_rank = _check_agreement(splits)
    class_names = _check_labels(splits, _class_names(arrays.get("class_names")))
    if "val" not in splits:
        x_all, y_all = splits["train"]
        train_idx, val_idx = carve_validation(y_all, validation_size(len(y_all), val_fraction), seed)
        splits["train"], splits["val"] = (x_all[train_idx], y_all[train_idx]), (x_all[val_idx], y_all[val_idx])
    norm, train, val, test = normalize_splits(splits["train"], splits["val"], splits["test"])
    return build_dataset(TASK, KIND_BY_RANK[example_rank], class_names, (train, val, test), norm)


def read_arrays(path: str | os.PathLike | None) -> dict[str, np.ndarray]:
    """Reads every known array of an ``.npz`` file (no pickles); checks the required ones are present.

    Args:
      path: the file.

    Returns:
      Field name -> array, for the fields present.
    """
    if path is None:
        raise DataValidationError("the npz task needs path=FILE.npz (arrays x_train, y_train, x_test, y_test)")
    file = Path(path)
    if not file.is_file():
        raise DatasetUnavailableError(f"npz file {file} does not exist; pass path= to an existing .npz file")
    if not zipfile.is_zipfile(file):
        raise DataValidationError(
            f"{file} is not a readable .npz archive (expected a zip of arrays, as np.savez writes)"
        )
    try:
        with np.load(file, allow_pickle=False) as archive:
            names = set(archive.files)
            missing = [name for name in REQUIRED if name not in names]
            if missing:
                raise DataValidationError(f"{file}: missing required array(s) {', '.join(missing)}")
            arrays = {}
            for name in (*REQUIRED, *OPTIONAL):
                if name in names:
                    arrays[name] = _read_field(archive, name, file)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataValidationError(f"{file} is not a readable .npz archive ({exc})") from None
    if ("x_val" in arrays) != ("y_val" in arrays):
        raise DataValidationError(f"{file}: x_val and y_val must be given together")
    return arrays


def _read_field(archive: np.lib.npyio.NpzFile, name: str, file: Path) -> np.ndarray:
    try:
        return archive[name]
    except ValueError as exc:  # object arrays need pickles, which are refused
        raise DataValidationError(f"{file}: {name} cannot be read without pickles ({exc}); save plain arrays") from None


def _features(x: np.ndarray, name: str) -> np.ndarray:
    """Validates one ``x_*`` array; returns it as float32 (rank-1 examples get a channel axis)."""
    if x.dtype.kind not in "iuf":
        raise DataValidationError(f"{name} must be a real numeric array (ints or floats), got dtype {x.dtype}")
    if x.ndim - 1 not in KIND_BY_RANK:
        raise DataValidationError(
            f"{name} has shape {x.shape}: examples must have rank 1 (features), 2 (time, channels) or "
            f"3 (height, width, channels), got rank {x.ndim - 1}"
        )
    if len(x) == 0:
        raise DataValidationError(f"{name} has no examples")
    with np.errstate(over="ignore"):  # values beyond float32 become inf and are reported below
        x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        first = np.argwhere(bad)[0]
        raise DataValidationError(
            f"{name} has {int(bad.sum())} NaN or infinite value(s) (after conversion to float32), first at index "
            f"{tuple(int(i) for i in first)}"
        )
    return x[..., None] if x.ndim == 2 else x


def _labels(arrays: dict[str, np.ndarray], split: str) -> np.ndarray:
    """Validates ``y_<split>`` against ``x_<split>``; returns it as int64."""
    name = f"y_{split}"
    y = arrays[name]
    if y.ndim != 1:
        raise DataValidationError(f"{name} must be 1-D (one integer class index per example), got shape {y.shape}")
    if y.dtype.kind not in "iu":
        raise DataValidationError(f"{name} must hold integer class indices, got dtype {y.dtype}; cast with astype(int)")
    x_len = len(arrays[f"x_{split}"])
    if len(y) != x_len:
        raise DataValidationError(f"{name} has {len(y)} labels but x_{split} has {x_len} examples")
    return y.astype(np.int64)


def _class_names(names: np.ndarray | None) -> tuple[str, ...] | None:
    if names is None:
        return None
    if names.ndim != 1 or names.dtype.kind not in "US" or len(names) == 0:
        raise DataValidationError(
            f"class_names must be a non-empty 1-D array of strings, got {names.dtype} {names.shape}"
        )
    decoded = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist())
    if len(set(decoded)) != len(decoded):
        raise DataValidationError(f"class_names has duplicates: {decoded}")
    return decoded


def _check_agreement(splits: dict[str, Split]) -> int:
    """Checks every split has the train per-example shape; returns the per-example rank."""
    shape = splits["train"][0].shape[1:]
    for name, (x, _) in splits.items():
        if x.shape[1:] != shape:
            raise DataValidationError(f"x_{name} examples have shape {x.shape[1:]}, x_train examples have {shape}")
    return len(shape)


def _check_labels(splits: dict[str, Split], class_names: tuple[str, ...] | None) -> tuple[str, ...]:
    """Checks labels are in ``[0, num_classes)``; returns the class names (generated if absent)."""
    num_classes = len(class_names) if class_names is not None else 1 + max(int(y.max()) for _, y in splits.values())
    for name, (_, y) in splits.items():
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= num_classes:
            source = "len(class_names)" if class_names is not None else "max label + 1"
            raise DataValidationError(
                f"y_{name} has labels in [{low}, {high}], outside [0, {num_classes}) ({num_classes} = {source})"
            )
    if num_classes < 2:
        raise DataValidationError(f"y_train: a classification task needs at least 2 classes, got {num_classes}")
    return class_names if class_names is not None else tuple(str(i) for i in range(num_classes))
