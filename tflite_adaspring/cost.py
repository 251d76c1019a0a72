"""Analytic cost of a (sub-)network: parameters, MACs, exported weight bytes, peak activation memory.

Pure Python so that the runtime and the profiler can use it without TensorFlow.

Conventions (also used by the independent counter in the tests):
- ``params``: every weight of the materialised tf_keras model, BatchNorm statistics included
  (what ``model.count_params()`` reports).
- ``macs``: multiply-accumulates of convolutions and dense layers (BN, activations, adds, pooling excluded).
- ``kernel_elems`` / ``bias_elems``: constants of the exported TFLite model after BN folding (every
  conv/dense gets a bias of its output channels).
- ``peak_activation_elems``: largest number of activation elements alive at once under sequential
  execution (a layer's input + output, plus a residual input held across its block).
"""

from __future__ import annotations

import dataclasses

# bytes per kernel element and per bias element at each export precision (int8 biases are int32).
KERNEL_BYTES = {"fp32": 4, "fp16": 2, "int8": 1}
BIAS_BYTES = {"fp32": 4, "fp16": 2, "int8": 4}
ACTIVATION_BYTES = {"fp32": 4, "fp16": 4, "int8": 1}


@dataclasses.dataclass(frozen=True)
class Cost:
    """Additive cost of a network or a part of it (see the module docstring for conventions)."""

    params: int = 0
    macs: int = 0
    kernel_elems: int = 0
    bias_elems: int = 0
    peak_activation_elems: int = 0

    def __add__(self, other: Cost) -> Cost:
        """Sequential composition: counts add up, peaks take the maximum."""
        return Cost(
            self.params + other.params,
            self.macs + other.macs,
            self.kernel_elems + other.kernel_elems,
            self.bias_elems + other.bias_elems,
            max(self.peak_activation_elems, other.peak_activation_elems),
        )

    def holding(self, held_elems: int) -> Cost:
        """The same cost while ``held_elems`` extra activations stay alive (e.g. a residual input)."""
        return dataclasses.replace(self, peak_activation_elems=self.peak_activation_elems + held_elems)

    def weight_bytes(self, precision: str = "fp32") -> int:
        """Bytes of exported constants at ``precision``."""
        return self.kernel_elems * KERNEL_BYTES[precision] + self.bias_elems * BIAS_BYTES[precision]

    def peak_activation_bytes(self, precision: str = "fp32") -> int:
        """Bytes of the activation peak at ``precision``."""
        return self.peak_activation_elems * ACTIVATION_BYTES[precision]

    def summary(self, precision: str = "fp32") -> dict[str, int]:
        """The four headline numbers as a dict."""
        return {
            "params": self.params,
            "macs": self.macs,
            "weight_bytes": self.weight_bytes(precision),
            "peak_activation_bytes": self.peak_activation_bytes(precision),
        }
