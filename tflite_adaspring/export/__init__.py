"""Export of supernet configurations to LiteRT (needs the ``train`` extra)."""

from tflite_adaspring.export.packed import convert_signatures, export_packed, measure_latency_ms

__all__ = ["convert_signatures", "export_packed", "measure_latency_ms"]
