"""Device context: battery, CPU load and contention, frequency/thermal, memory, app requirements.

Uses only the standard library; never imports TensorFlow.
"""

from tflite_adaspring.context.snapshot import ENERGY_MODES, ContextSnapshot, Requirements

__all__ = ["ENERGY_MODES", "ContextSnapshot", "Requirements"]
