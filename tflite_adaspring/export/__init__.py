"""Export of supernet configurations to LiteRT (needs the ``train`` extra)."""

from tflite_adaspring.export.packed import (
    PackedExport,
    build_packed,
    convert_signatures,
    export_packed,
    measure_latency_ms,
)

__all__ = ["PackedExport", "build_packed", "convert_signatures", "export_packed", "measure_latency_ms"]
