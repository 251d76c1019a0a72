"""Reader for the ``.ts`` time-series classification format used by aeon / sktime / the UEA archive.

Format: ``#`` comment lines, a header of ``@key value`` lines ending with ``@data``, then one case per
line: its dimensions separated by ``:``, the values of one dimension separated by ``,``, and the class
label last. ``?`` marks a missing value (read as NaN). Only the untimestamped variant is supported.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from tflite_adaspring.errors import DataValidationError


@dataclasses.dataclass(frozen=True)
class TsData:
    """A parsed ``.ts`` file.

    Attributes:
      series: one float64 array of shape ``(dimensions, length)`` per case (lengths may differ).
      labels: int64 index of each case's label in ``class_names``.
      class_names: the labels declared by ``@classLabel``, in declaration order.
      header: the ``@`` header as lower-cased key -> raw value string.
    """

    series: tuple[np.ndarray, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]
    header: dict[str, str]


def read_ts(path: str | Path) -> TsData:
    """Parses a classification ``.ts`` file.

    Args:
      path: the file.

    Returns:
      The parsed :class:`TsData`.

    Raises:
      DataValidationError: the header or a data line is malformed; the message names the file and line.
    """
    path = Path(path)
    header: dict[str, str] = {}
    series: list[np.ndarray] = []
    labels: list[int] = []
    class_index: dict[str, int] | None = None
    dimensions: int | None = None
    in_data = False
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            where = f"{path}:{number}"
            if not in_data:
                if not line.startswith("@"):
                    raise DataValidationError(f"{where}: expected an '@' header line or '@data', got {line[:40]!r}")
                key, _, value = line[1:].partition(" ")
                key = key.lower()
                if key == "data":
                    class_index, dimensions = _check_header(header, path)
                    in_data = True
                else:
                    header[key] = value.strip()
                continue
            assert class_index is not None
            case, label = _parse_case(line, where, dimensions)
            if label not in class_index:
                raise DataValidationError(f"{where}: label {label!r} is not declared in @classLabel")
            series.append(case)
            labels.append(class_index[label])
    if not in_data:
        raise DataValidationError(f"{path}: no '@data' line; not a .ts file")
    if not series:
        raise DataValidationError(f"{path}: no cases after '@data'")
    assert class_index is not None
    return TsData(tuple(series), np.asarray(labels, np.int64), tuple(class_index), header)


def _check_header(header: dict[str, str], path: Path) -> tuple[dict[str, int], int | None]:
    """Validates the header; returns (label -> index, declared dimension count or None)."""
    if header.get("timestamps", "false").lower() == "true":
        raise DataValidationError(f"{path}: timestamped .ts files are not supported")
    class_decl = header.get("classlabel", "").split()
    if not class_decl or class_decl[0].lower() != "true" or len(class_decl) < 2:
        raise DataValidationError(f"{path}: '@classLabel true <labels...>' is required for a classification task")
    names = class_decl[1:]
    if len(set(names)) != len(names):
        raise DataValidationError(f"{path}: @classLabel lists a label twice: {names}")
    dims = header.get("dimensions")
    return {name: i for i, name in enumerate(names)}, (int(dims) if dims and dims.isdigit() else None)


def _parse_case(line: str, where: str, dimensions: int | None) -> tuple[np.ndarray, str]:
    """Parses one data line into a ``(dimensions, length)`` float64 array and its label."""
    *fields, label = line.split(":")
    if not fields:
        raise DataValidationError(f"{where}: a case needs at least one dimension before its label")
    if dimensions is not None and len(fields) != dimensions:
        raise DataValidationError(f"{where}: {len(fields)} dimensions, header declares {dimensions}")
    try:
        rows = [np.array(field.replace("?", "nan").split(","), dtype=np.float64) for field in fields]
    except ValueError as exc:
        raise DataValidationError(f"{where}: non-numeric value ({exc})") from None
    lengths = {len(row) for row in rows}
    if len(lengths) != 1:
        raise DataValidationError(f"{where}: dimensions of one case have different lengths {sorted(lengths)}")
    return np.stack(rows), label.strip()
