"""Accuracy predictor: ridge regression on a one-hot encoding of the configuration (numpy only).

The encoding has, per stage, the depth as one-hot; per block slot, the op, the width and the joint
(op, width) choice as one-hots (all zero when the block is skipped: each branch at each width has its own
weights, so the joint choice carries effects the separate knobs miss); the head rank as one-hot. Ridge
regression on standardised features (intercept unpenalised, ``alpha`` chosen by k-fold cross-validation)
is fitted on validation accuracies measured after BatchNorm recalibration for >= 100 sampled
configurations. The knob ``precision`` is not encoded: the predictor
predicts the float32 accuracy and subtracts a per-precision penalty (a prior until exported signatures
are measured). :func:`spearman` measures the ranking quality on held-out configurations.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tflite_adaspring.errors import ModelFormatError, SchemaVersionError
from tflite_adaspring.fileio import atomic_write_json
from tflite_adaspring.space import Config, SearchSpace

PREDICTOR_KIND = "adaspring-accuracy-predictor"
SAMPLES_KIND = "adaspring-accuracy-samples"
DEFAULT_PENALTY = {"fp32": 0.0, "fp16": 0.0, "int8": 0.005}
ALPHAS = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)


def encode(space: SearchSpace, config: Config) -> np.ndarray:
    """The one-hot feature vector of ``config`` (see the module docstring)."""
    space.validate(config)
    parts: list[float] = []
    for stage, n in zip(config.stages, space.blocks_per_stage):
        depth = [0.0] * (n - space.min_depth + 1)
        depth[len(stage) - space.min_depth] = 1.0
        parts += depth
        for b in range(n):
            ops, widths = [0.0] * len(space.ops), [0.0] * len(space.widths)
            joint = [0.0] * (len(space.ops) * len(space.widths))
            if b < len(stage):
                op, width = space.ops.index(stage[b].op), _close(space.widths, stage[b].width)
                ops[op] = widths[width] = joint[op * len(space.widths) + width] = 1.0
            parts += ops + widths + joint
    ranks = [0.0] * len(space.head_ranks)
    ranks[_close(space.head_ranks, config.head_rank)] = 1.0
    return np.asarray(parts + ranks, np.float64)


def _close(values: Sequence[float], value: float) -> int:
    return next(i for i, v in enumerate(values) if math.isclose(v, value))


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    ra, rb = _ranks(np.asarray(a, np.float64)), _ranks(np.asarray(b, np.float64))
    if len(ra) < 2 or ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Ridge on standardised columns, returned as weights and intercept on the raw features."""
    mean_x, mean_y = x.mean(axis=0), y.mean()
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    xs = (x - mean_x) / scale
    w = np.linalg.solve(xs.T @ xs + alpha * np.eye(x.shape[1]), xs.T @ (y - mean_y)) / scale
    return w, float(mean_y - mean_x @ w)


@dataclasses.dataclass
class AccuracyPredictor:
    """Ridge regression from :func:`encode` features to float32 accuracy (weights on the raw features).

    Attributes:
      space: the search space.
      weights: feature weights.
      intercept: the intercept.
      alpha: the ridge penalty chosen by cross-validation.
      cv_spearman: cross-validated Spearman correlation on the training samples.
      samples: number of training configurations.
      precision_penalty: accuracy subtracted per precision.
    """

    space: SearchSpace
    weights: np.ndarray
    intercept: float
    alpha: float
    cv_spearman: float
    samples: int
    precision_penalty: dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_PENALTY))

    @classmethod
    def fit(
        cls, space: SearchSpace, configs: Sequence[Config], accuracies: Sequence[float], folds: int = 5, seed: int = 0
    ) -> AccuracyPredictor:
        """Fits on measured accuracies, choosing ``alpha`` by k-fold cross-validated squared error.

        Args:
          space: the search space.
          configs: measured configurations (their precision is ignored).
          accuracies: their float32 validation accuracies.
          folds: cross-validation folds.
          seed: fold shuffling seed.

        Returns:
          The fitted predictor.
        """
        if len(configs) != len(accuracies) or len(configs) < max(folds, 3):
            raise ValueError(f"need >= {max(folds, 3)} configs with one accuracy each, got {len(configs)}")
        x = np.stack([encode(space, c) for c in configs])
        y = np.asarray(accuracies, np.float64)
        fold = np.random.default_rng(seed).permutation(len(y)) % folds
        best = None
        for alpha in ALPHAS:
            pred = np.empty_like(y)
            for f in range(folds):
                w, b = _ridge(x[fold != f], y[fold != f], alpha)
                pred[fold == f] = x[fold == f] @ w + b
            score = float(np.mean((pred - y) ** 2))
            if best is None or score < best[0]:
                best = (score, alpha, spearman(pred, y))
        _, alpha, cv_rho = best
        w, b = _ridge(x, y, alpha)
        return cls(space, w, b, alpha, cv_rho, len(y))

    def predict(self, config: Config) -> float:
        """Predicted validation accuracy of ``config`` (precision penalty applied), clipped to [0, 1]."""
        value = float(encode(self.space, config) @ self.weights + self.intercept)
        return min(1.0, max(0.0, value - self.precision_penalty.get(config.precision, 0.0)))

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "kind": PREDICTOR_KIND,
            "schema_version": 1,
            "space": self.space.to_json(),
            "weights": self.weights.tolist(),
            "intercept": self.intercept,
            "alpha": self.alpha,
            "cv_spearman": self.cv_spearman,
            "samples": self.samples,
            "precision_penalty": dict(self.precision_penalty),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> AccuracyPredictor:
        """Inverse of :meth:`to_json`; raises :class:`ModelFormatError` for another kind of file."""
        if obj.get("kind") != PREDICTOR_KIND:
            raise ModelFormatError("not an adaspring accuracy predictor")
        space = SearchSpace.from_json(obj["space"])
        weights = np.asarray(obj["weights"], np.float64)
        if weights.shape != encode(space, space.largest()).shape:
            raise ModelFormatError("accuracy predictor weights do not match its search space")
        return cls(space, weights, float(obj["intercept"]), float(obj["alpha"]), float(obj["cv_spearman"]),
                   int(obj["samples"]), {k: float(v) for k, v in obj["precision_penalty"].items()})  # fmt: skip


# ---------------------------------------------------------------------------------------------
# measured samples (cached on disk: measuring one configuration costs about a second)


def measure_accuracies(
    supernet: Any,
    configs: Sequence[Config],
    split: tuple[np.ndarray, np.ndarray],
    calibration: Sequence[np.ndarray],
    cache: dict[str, float] | None = None,
) -> dict[str, float]:
    """Validation accuracies (BatchNorm recalibrated per config) of float32 configurations.

    Args:
      supernet: the trained supernet.
      configs: the configurations (measured at fp32).
      split: ``(x, y)``.
      calibration: recalibration batches.
      cache: config id -> accuracy already measured (updated in place).

    Returns:
      Config id (fp32) -> accuracy, for every config.
    """
    from tflite_adaspring.training.trainer import accuracy

    cache = {} if cache is None else cache
    for config in configs:
        config = config.with_precision("fp32")
        if config.id not in cache:
            cache[config.id] = accuracy(supernet, config, split, list(calibration))
    return {c.with_precision("fp32").id: cache[c.with_precision("fp32").id] for c in configs}


def load_samples(path: str | Path, space: SearchSpace, checkpoint: str) -> dict[str, float]:
    """Cached accuracy samples for ``space`` and ``checkpoint`` (empty when missing or stale)."""
    path = Path(path)
    if not path.exists():
        return {}
    obj = json.loads(path.read_text())
    if obj.get("kind") != SAMPLES_KIND:
        raise ModelFormatError(f"{path}: not an adaspring accuracy-samples file")
    if obj.get("schema_version") != 1:
        raise SchemaVersionError(f"{path}: accuracy samples schema_version {obj.get('schema_version')!r} != 1")
    if obj.get("space") != space.to_json() or obj.get("checkpoint") != checkpoint:
        return {}
    return {str(k): float(v) for k, v in obj["samples"].items()}


def save_samples(path: str | Path, space: SearchSpace, checkpoint: str, samples: dict[str, float]) -> Path:
    """Writes measured accuracy samples atomically."""
    return atomic_write_json(
        path,
        {"kind": SAMPLES_KIND, "schema_version": 1, "space": space.to_json(), "checkpoint": checkpoint,
         "samples": samples},
    )  # fmt: skip
