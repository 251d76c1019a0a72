"""Analytic cost of a configuration: parameters, MACs, weight bytes per precision, peak activation memory."""

from __future__ import annotations

import dataclasses
from typing import Any

from tflite_adaspring.cost import KERNEL_BYTES
from tflite_adaspring.space import Config


@dataclasses.dataclass(frozen=True)
class AnalyticCost:
    """Counts of one configuration (see :mod:`tflite_adaspring.cost` for the conventions).

    Attributes:
      params: parameters of the materialised model (BatchNorm statistics included).
      macs: multiply-accumulates per inference.
      weight_bytes: precision -> bytes of exported constants.
      peak_activation_bytes: precision -> bytes of the activation peak.
    """

    params: int
    macs: int
    weight_bytes: dict[str, int]
    peak_activation_bytes: dict[str, int]

    def memory_bytes(self, precision: str) -> int:
        """Weights plus peak activations at ``precision``."""
        return self.weight_bytes[precision] + self.peak_activation_bytes[precision]

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return dataclasses.asdict(self)


def analytic_cost(supernet: Any, config: Config) -> AnalyticCost:
    """Counts ``config`` of ``supernet`` (pure arithmetic on the supernet's structure, ≈ 0.2 ms).

    Args:
      supernet: a :class:`~tflite_adaspring.supernet.Supernet`.
      config: the configuration (its precision is ignored: every precision is reported).

    Returns:
      The counts.
    """
    cost = supernet.cost(config)
    return AnalyticCost(
        params=cost.params,
        macs=cost.macs,
        weight_bytes={p: cost.weight_bytes(p) for p in KERNEL_BYTES},
        peak_activation_bytes={p: cost.peak_activation_bytes(p) for p in KERNEL_BYTES},
    )
