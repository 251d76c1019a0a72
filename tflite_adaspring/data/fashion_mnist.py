"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (IDX files, read with numpy).

Where the files are looked up, first match wins:

1. the ``data_dir=`` option, else 2. the ``ADASPRING_DATA_DIR`` environment variable, else
3. ``/usr/share/datasets/fashion-mnist``.

A given folder may hold the four files directly or in a ``fashion-mnist/`` subfolder; each file may be
gzip-compressed (``*-ubyte.gz``, as Debian ships them) or plain (``*-ubyte``).

The normalisation is one mean/std over all training pixels, recorded in raw pixel units (0..255), so a
device computes ``(pixel - mean) / std``; this equals scaling to [0, 1] first and normalising with
``mean / 255`` and ``std / 255``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from tflite_adaspring.data import _files
from tflite_adaspring.data._assemble import build_dataset, normalize_splits
from tflite_adaspring.data._splits import carve_validation
from tflite_adaspring.data.idx_format import read_idx, read_idx_header
from tflite_adaspring.data.spec import Dataset
from tflite_adaspring.errors import DatasetUnavailableError, DataValidationError

TASK = "fashion_mnist"
ENV_VAR = "ADASPRING_DATA_DIR"
DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
INSTALL_COMMAND = "apt-get install dataset-fashion-mnist"
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
IMAGE_SHAPE = (28, 28, 1)
# split -> (images file stem, labels file stem)
FILE_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def data_folder(data_dir: str | os.PathLike | None = None) -> Path:
    """Returns the configured folder: ``data_dir``, else ``$ADASPRING_DATA_DIR``, else the Debian folder."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_DIR


def locate(data_dir: str | os.PathLike | None = None) -> dict[str, tuple[Path, Path]]:
    """Finds the four IDX files.

    Args:
      data_dir: folder override (see the module docstring).

    Returns:
      ``{"train": (images, labels), "test": (images, labels)}``.

    Raises:
      DatasetUnavailableError: a file is missing; the message names the folders searched and the install
        command.
    """
    folder = data_folder(data_dir)
    candidates = [folder, folder / "fashion-mnist"]
    for base in candidates:
        found: dict[str, tuple[Path, Path]] = {}
        for split, (image_stem, label_stem) in FILE_STEMS.items():
            images, labels = _find(base, image_stem), _find(base, label_stem)
            if images is None or labels is None:
                break
            found[split] = (images, labels)
        else:
            return found
    raise DatasetUnavailableError(
        f"Fashion-MNIST IDX files ({', '.join(s + '[.gz]' for pair in FILE_STEMS.values() for s in pair)}) not found "
        f"in {' or '.join(str(c) for c in candidates)}; install them with: {INSTALL_COMMAND} "
        f"(or point data_dir= / ${ENV_VAR} at a folder holding them)"
    )


def split_sizes(*, data_dir: str | os.PathLike | None = None, val_size: int = 5000) -> dict[str, int]:
    """Returns the split sizes from the IDX headers only (cheap; validates the magic numbers)."""
    files = locate(data_dir)
    counts = {split: _checked_count(images, labels) for split, (images, labels) in files.items()}
    _check_val_size(val_size, counts["train"])
    return {"train": counts["train"] - val_size, "val": val_size, "test": counts["test"]}


def load(*, data_dir: str | os.PathLike | None = None, seed: int = 0, val_size: int = 5000) -> Dataset:
    """Loads Fashion-MNIST: x ``(n, 28, 28, 1)``, 10 classes.

    Args:
      data_dir: folder override (see the module docstring).
      seed: seed of the validation carve.
      val_size: training images moved to the (class-stratified, seeded) validation split.

    Returns:
      The normalised :class:`Dataset`: 55000/5000/10000 by default.
    """
    files = locate(data_dir)
    (x_all, y_all), test = (_read_cached(*(_files.file_key(p) for p in files[s])) for s in ("train", "test"))
    _check_val_size(val_size, len(y_all))
    train_idx, val_idx = carve_validation(y_all, val_size, seed)
    raw_splits = ((x_all[train_idx], y_all[train_idx]), (x_all[val_idx], y_all[val_idx]), test)
    norm, train, val, test = normalize_splits(*((x[..., None], y) for x, y in raw_splits))
    return build_dataset(TASK, "image", CLASS_NAMES, (train, val, test), norm)


def _find(base: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (base / name).is_file():
            return base / name
    return None


def _check_val_size(val_size: int, n_train: int) -> None:
    if not 1 <= val_size < n_train:
        raise DataValidationError(f"val_size must be in [1, {n_train - 1}], got {val_size}")


def _checked_count(images: Path, labels: Path) -> int:
    """Validates the two headers of one split and returns its example count."""
    image_dtype, image_shape = read_idx_header(images)
    label_dtype, label_shape = read_idx_header(labels)
    if image_dtype != np.uint8 or len(image_shape) != 3 or image_shape[1:] != IMAGE_SHAPE[:2]:
        raise DataValidationError(f"{images}: expected uint8 images of shape (n, 28, 28), header says {image_shape}")
    if label_dtype != np.uint8 or len(label_shape) != 1:
        raise DataValidationError(f"{labels}: expected a 1-D uint8 label file, header says {label_shape}")
    if label_shape[0] != image_shape[0]:
        raise DataValidationError(f"{labels} has {label_shape[0]} labels for {image_shape[0]} images in {images}")
    return image_shape[0]


@functools.lru_cache(maxsize=4)
def _read_cached(images_key: tuple[str, int, int], labels_key: tuple[str, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Reads one split once per process: uint8 images ``(n, 28, 28)`` and int64 labels; read-only."""
    images, labels = Path(images_key[0]), Path(labels_key[0])
    _checked_count(images, labels)
    x = read_idx(images)
    y = read_idx(labels).astype(np.int64)
    if y.size and y.max() >= len(CLASS_NAMES):
        raise DataValidationError(f"{labels}: label {int(y.max())} outside [0, {len(CLASS_NAMES)})")
    for array in (x, y):
        array.flags.writeable = False
    return x, y
