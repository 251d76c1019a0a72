"""The delegate's shared-weight file (``weight_source``): backbone weights once plus per-configuration views.

Binary, little-endian, version 1 (the reader is ``delegates/weight_source.cc``, whose header documents
the same layout)::

    header   b"ADASWSRC" | u32 version | u32 config_count | u64 table_offset | u64 table_bytes
             | u64 data_offset (multiple of 64) | u64 data_bytes
    table    per configuration: u32 key_bytes, key, pad to 4 | u32 view_count | view records
    view     u32 name_bytes, name, pad to 4 | u32 layout | u32 flags | i32 dims[4]
             | i64 out_stride | i64 tap_stride | u64 weight_offset | u64 scale_offset
    data     float32 values (offsets are relative to the data section)

``layout`` is 1 (CONV_2D filter, OHWI, dims ``[O, KH, KW, I]``), 2 (DEPTHWISE_CONV_2D, dims
``[O, KH, KW, 1]`` for the tensor ``[1, KH, KW, O]``) or 3 (FULLY_CONNECTED ``[O, I]``, dims
``[O, 1, 1, I]``); strides count floats. ``flags`` bit 0: ``scale_offset`` points at ``O`` per-channel
scales (a folded BatchNorm: the node computes ``act(acc * scale + bias)``, its bias being the folded
shift). A view's ``name`` is the weight tensor's name in the configuration's graph. Never imports
TensorFlow.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Mapping, Sequence

import numpy as np

MAGIC = b"ADASWSRC"
VERSION = 1
DATA_ALIGNMENT = 64
LAYOUTS = {"conv": 1, "depthwise": 2, "dense": 3}
_HEADER = struct.Struct("<8sIIQQQQ")
_VIEW = struct.Struct("<II4iqqQQ")


@dataclasses.dataclass(frozen=True)
class View:
    """One weight tensor of one configuration as a strided view into the data section.

    Attributes:
      name: the weight tensor's name in the configuration's graph.
      layout: ``conv``, ``depthwise`` or ``dense``.
      dims: ``(out, kernel_h, kernel_w, in)`` (see the module docstring).
      out_stride: floats between output channels.
      tap_stride: floats between filter taps.
      weight_offset: byte offset of element 0 in the data section.
      scale_offset: byte offset of the per-channel scale, or None.
    """

    name: str
    layout: str
    dims: tuple[int, int, int, int]
    out_stride: int
    tap_stride: int
    weight_offset: int
    scale_offset: int | None = None


class DataSection:
    """Builds the data section: arrays placed once, 64-byte aligned."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self._placed: dict[object, int] = {}

    @property
    def nbytes(self) -> int:
        """Bytes placed so far."""
        return self._size

    def place(self, array: np.ndarray, key: object = None) -> int:
        """Appends ``array`` as float32 (once per ``key``; None: always) and returns its byte offset."""
        if key is not None and key in self._placed:
            return self._placed[key]
        start = -(-self._size // DATA_ALIGNMENT) * DATA_ALIGNMENT
        if start > self._size:
            self._parts.append(b"\0" * (start - self._size))
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        self._parts.append(data)
        self._size = start + len(data)
        if key is not None:
            self._placed[key] = start
        return start

    def tobytes(self) -> bytes:
        """The section's bytes."""
        return b"".join(self._parts)


def _padded(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<I", len(raw)) + raw + b"\0" * (-len(raw) % 4)


def pack_weight_source(data: bytes, configs: Mapping[str, Sequence[View]]) -> bytes:
    """Serialises a weight source.

    Args:
      data: the data section (:meth:`DataSection.tobytes`).
      configs: configuration key -> its views.

    Returns:
      The file's bytes.
    """
    table = bytearray()
    for key, views in configs.items():
        table += _padded(key) + struct.pack("<I", len(views))
        for v in views:
            flags = 0 if v.scale_offset is None else 1
            table += _padded(v.name) + _VIEW.pack(LAYOUTS[v.layout], flags, *v.dims, v.out_stride, v.tap_stride,
                                                 v.weight_offset, v.scale_offset or 0)  # fmt: skip
    table_offset = _HEADER.size
    data_offset = -(-(table_offset + len(table)) // DATA_ALIGNMENT) * DATA_ALIGNMENT
    header = _HEADER.pack(MAGIC, VERSION, len(configs), table_offset, len(table), data_offset, len(data))
    return header + bytes(table) + b"\0" * (data_offset - table_offset - len(table)) + data
