"""Reader for the IDX format of (Fashion-)MNIST, gzip-compressed or plain.

An IDX file starts with a 4-byte magic number: two zero bytes, a type code (0x08 = uint8, ...) and the
number of dimensions; then one big-endian uint32 per dimension; then the values, big-endian, row-major.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tflite_adaspring.errors import DataValidationError

_TYPE_CODES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx_header(path: str | Path) -> tuple[np.dtype, tuple[int, ...]]:
    """Reads only the header of an IDX file.

    Args:
      path: the file (``.gz`` files are decompressed on the fly).

    Returns:
      ``(dtype, shape)`` of the stored array.

    Raises:
      DataValidationError: the magic number or header is invalid, or the file is not valid gzip.
    """
    path = Path(path)
    with _open(path) as handle:
        return _parse_header(handle, path)


def read_idx(path: str | Path) -> np.ndarray:
    """Reads a whole IDX file.

    Args:
      path: the file (``.gz`` files are decompressed on the fly).

    Returns:
      The stored array in native byte order.

    Raises:
      DataValidationError: invalid magic number or header, truncated data, or trailing bytes.
    """
    path = Path(path)
    with _open(path) as handle:
        dtype, shape = _parse_header(handle, path)
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        try:
            payload = handle.read()
        except (OSError, EOFError) as exc:
            raise DataValidationError(f"{path}: corrupt compressed data ({exc})") from None
    if len(payload) != expected:
        raise DataValidationError(
            f"{path}: header promises {expected} data bytes for shape {shape}, file has {len(payload)}"
        )
    return np.frombuffer(payload, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def _open(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _parse_header(handle: BinaryIO, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    try:
        magic = handle.read(4)
    except (OSError, EOFError) as exc:
        raise DataValidationError(f"{path}: not a readable IDX file ({exc})") from None
    if len(magic) != 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _TYPE_CODES or magic[3] == 0:
        raise DataValidationError(f"{path}: bad IDX magic number {magic.hex() or '(empty file)'}; the file is corrupt")
    ndim = magic[3]
    dims = handle.read(4 * ndim)
    if len(dims) != 4 * ndim:
        raise DataValidationError(f"{path}: IDX header truncated")
    return _TYPE_CODES[magic[2]], struct.unpack(f">{ndim}I", dims)
