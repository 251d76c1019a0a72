"""The paper's headline ratios from a table of measured models (numpy only, no TensorFlow).

For each hand-crafted baseline, the AdaSpring signature that matches it at **iso-accuracy** is the best one
(lowest latency, or lowest energy per inference) whose accuracy is at least the baseline's minus a tolerance
(0.5 points by default); the ratio is baseline / match (> 1: AdaSpring is faster or more efficient). A
baseline no signature matches gets no ratio (``None``), never a made-up one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tflite_adaspring.errors import DataValidationError

# AdaSpring (Liu et al., IMWUT 2021), abstract: up to 3.1x latency reduction, 4.2x energy-efficiency
# improvement, evolution latency <= 6.2 ms.
PAPER = {"latency_reduction": 3.1, "energy_efficiency_gain": 4.2, "evolution_ms": 6.2}
METRICS = ("latency_ms", "energy_mj")


@dataclasses.dataclass(frozen=True)
class ModelPoint:
    """One measured model (a baseline or one AdaSpring signature).

    Attributes:
      name: baseline name or signature key.
      accuracy: test accuracy in [0, 1].
      latency_ms: measured latency per inference (> 0).
      energy_mj: energy per inference (> 0; modeled or measured).
    """

    name: str
    accuracy: float
    latency_ms: float
    energy_mj: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.accuracy <= 1.0:
            raise DataValidationError(f"{self.name}: accuracy {self.accuracy!r} is not in [0, 1]")
        for field in METRICS:
            value = getattr(self, field)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise DataValidationError(f"{self.name}: {field} must be a finite number > 0, got {value!r}")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ModelPoint:
        """From a dict with ``name``, ``accuracy``, ``latency_ms`` and ``energy_mj``; names a missing key."""
        missing = [k for k in ("name", "accuracy", *METRICS) if k not in row]
        if missing:
            raise DataValidationError(f"model row {row.get('name', row)!r} lacks {missing}")
        return cls(str(row["name"]), float(row["accuracy"]), float(row["latency_ms"]), float(row["energy_mj"]))


def iso_accuracy_match(
    baseline: ModelPoint, signatures: Sequence[ModelPoint], metric: str, tolerance_points: float = 0.5
) -> ModelPoint | None:
    """The signature with the lowest ``metric`` among those at least as accurate as ``baseline`` - tolerance.

    Args:
      baseline: the reference model.
      signatures: the AdaSpring signatures.
      metric: ``latency_ms`` or ``energy_mj``.
      tolerance_points: accuracy slack in percentage points (>= 0).

    Returns:
      The matching signature (ties: the more accurate, then the first), or None when none is accurate enough.

    Raises:
      DataValidationError: unknown metric or negative tolerance.
    """
    if metric not in METRICS:
        raise DataValidationError(f"metric must be one of {METRICS}, got {metric!r}")
    if not tolerance_points >= 0:
        raise DataValidationError(f"tolerance_points must be >= 0, got {tolerance_points!r}")
    floor = baseline.accuracy - tolerance_points / 100.0 - 1e-12
    eligible = [s for s in signatures if s.accuracy >= floor]
    if not eligible:
        return None
    return min(eligible, key=lambda s: (getattr(s, metric), -s.accuracy))


def iso_accuracy_ratios(
    baselines: Sequence[ModelPoint], signatures: Sequence[ModelPoint], metric: str, tolerance_points: float = 0.5
) -> list[dict[str, Any]]:
    """Per baseline: its iso-accuracy match and the ratio ``baseline metric / match metric``.

    Args:
      baselines: the hand-crafted baselines.
      signatures: the AdaSpring signatures (at least one).
      metric: ``latency_ms`` or ``energy_mj``.
      tolerance_points: accuracy slack in percentage points.

    Returns:
      One dict per baseline, in order: ``baseline``, ``baseline_accuracy``, ``baseline_value``, ``match``
      (None when unmatched), ``match_accuracy``, ``match_value`` and ``ratio`` (None when unmatched).

    Raises:
      DataValidationError: no signatures, unknown metric or negative tolerance.
    """
    if not signatures:
        raise DataValidationError("iso_accuracy_ratios needs at least one AdaSpring signature")
    rows = []
    for b in baselines:
        m = iso_accuracy_match(b, signatures, metric, tolerance_points)
        rows.append({
            "baseline": b.name,
            "baseline_accuracy": b.accuracy,
            "baseline_value": getattr(b, metric),
            "match": None if m is None else m.name,
            "match_accuracy": None if m is None else m.accuracy,
            "match_value": None if m is None else getattr(m, metric),
            "ratio": None if m is None else getattr(b, metric) / getattr(m, metric),
        })  # fmt: skip
    return rows


def summarize_ratios(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The headline over baselines: ``max`` (the paper's "up to"), ``geomean`` and ``min`` of the matched ratios.

    Args:
      rows: :func:`iso_accuracy_ratios` output.

    Returns:
      ``{"max", "max_baseline", "geomean", "min", "matched", "unmatched"}``; the numbers are None when no
      baseline was matched.
    """
    matched = [r for r in rows if r["ratio"] is not None]
    unmatched = [r["baseline"] for r in rows if r["ratio"] is None]
    if not matched:
        return {"max": None, "max_baseline": None, "geomean": None, "min": None, "matched": 0, "unmatched": unmatched}
    ratios = np.array([r["ratio"] for r in matched], dtype=float)
    best = matched[int(np.argmax(ratios))]
    return {
        "max": float(ratios.max()),
        "max_baseline": best["baseline"],
        "geomean": float(np.exp(np.mean(np.log(ratios)))),
        "min": float(ratios.min()),
        "matched": len(matched),
        "unmatched": unmatched,
    }
