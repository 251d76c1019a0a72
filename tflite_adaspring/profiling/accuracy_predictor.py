"""Accuracy predictor: ridge regression on a one-hot encoding of the configuration (numpy only).

The encoding has, per stage, the depth as one-hot; per block slot, the op, the width and the joint
(op, width) choice as one-hots (all zero when the block is skipped: each branch at each width has its own
weights, so the joint choice carries effects the separate knobs miss); the head rank as one-hot. Ridge
regression on standardised features (intercept unpenalised, ``alpha`` chosen by k-fold cross-validation)
is fitted on >= 100 sampled configurations measured on the validation split after BatchNorm
recalibration.

Labels. Top-1 validation accuracy of a small validation split is a noisy label: a window near the
decision boundary flips between right and wrong from one configuration to the next. The predictor can
instead be fitted on the *smoothed accuracy* (:func:`smoothed_accuracy`: the mean over windows of
``sigmoid(margin / T)``, ``margin`` = true-class logit minus the best other logit, ``T`` =
:data:`LABEL_TEMPERATURE`), which tends to top-1 accuracy as ``T -> 0`` and counts near-boundary windows
as about one half. Its prediction is mapped back to accuracy units by a least-squares line fitted on the
measured (smoothed, top-1) pairs of the training configurations, so :meth:`AccuracyPredictor.predict`
always returns an accuracy.

The knob ``precision`` is not encoded: the predictor predicts the float32 accuracy and subtracts a
per-precision penalty (a prior until exported signatures are measured). :func:`spearman` measures the
ranking quality on held-out configurations.
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
PREDICTOR_SCHEMA_VERSION = 2
SAMPLES_KIND = "adaspring-accuracy-samples"
SAMPLES_SCHEMA_VERSION = 2
DEFAULT_PENALTY = {"fp32": 0.0, "fp16": 0.0, "int8": 0.005}
ALPHAS = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
LABEL_TEMPERATURE = 0.5
LABEL_ACCURACY = "accuracy"
LABEL_SMOOTHED = f"smoothed_accuracy(T={LABEL_TEMPERATURE})"


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
    # einsum (numpy's own loops): multi-threaded BLAS stalls on these small products when the cores are busy
    gram = np.einsum("ij,ik->jk", xs, xs) + alpha * np.eye(x.shape[1])
    w = _spd_solve(gram, np.einsum("ij,i->j", xs, y - mean_y)) / scale
    return w, float(mean_y - mean_x @ w)


def _spd_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solves ``a @ x = b`` for symmetric positive-definite ``a``: Cholesky, then two substitutions.

    (numpy's general solver runs multi-threaded LAPACK, which stalls for ~0.2-0.4 s per 124 x 124 solve
    when the cores are busy; this takes ~0.5 ms.)
    """
    low = np.linalg.cholesky(a)
    z = np.empty_like(b)
    for i in range(len(b)):
        z[i] = (b[i] - low[i, :i] @ z[:i]) / low[i, i]
    x = np.empty_like(b)
    for i in reversed(range(len(b))):
        x[i] = (z[i] - low[i + 1 :, i] @ x[i + 1 :]) / low[i, i]
    return x


def smoothed_accuracy(logits: np.ndarray, labels: np.ndarray, temperature: float = LABEL_TEMPERATURE) -> float:
    """Mean over windows of ``sigmoid((true logit - best other logit) / temperature)``.

    Args:
      logits: ``(n, classes)`` logits (or log-probabilities: only differences matter).
      labels: ``(n,)`` integer class labels.
      temperature: > 0; top-1 accuracy is the limit ``temperature -> 0``.

    Returns:
      The smoothed accuracy in [0, 1].

    Raises:
      ValueError: for mismatched shapes, fewer than two classes or a non-positive temperature.
    """
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
    if logits.ndim != 2 or logits.shape[1] < 2 or labels.shape != (len(logits),) or temperature <= 0:
        raise ValueError(
            f"need logits (n, classes >= 2), labels (n,) and temperature > 0; got {logits.shape}, {labels.shape}, "
            f"{temperature}"
        )
    rows = np.arange(len(labels))
    true = logits[rows, labels]
    others = logits.copy()
    others[rows, labels] = -np.inf
    margin = np.clip((true - others.max(axis=1)) / temperature, -60.0, 60.0)
    return float(np.mean(1.0 / (1.0 + np.exp(-margin)))) if len(labels) else 0.0


@dataclasses.dataclass(frozen=True)
class Sample:
    """What one measurement of a configuration yields (validation split, BatchNorm recalibrated).

    Attributes:
      accuracy: top-1 accuracy.
      smoothed_accuracy: :func:`smoothed_accuracy` at :data:`LABEL_TEMPERATURE`.
    """

    accuracy: float
    smoothed_accuracy: float


@dataclasses.dataclass
class AccuracyPredictor:
    """Ridge regression from :func:`encode` features to float32 accuracy (weights on the raw features).

    Attributes:
      space: the search space.
      weights: feature weights (in accuracy units: the label-to-accuracy line is folded in).
      intercept: the intercept.
      alpha: the ridge penalty chosen by cross-validation.
      cv_spearman: cross-validated Spearman correlation with the measured top-1 accuracy of the training
        samples.
      samples: number of training configurations.
      precision_penalty: accuracy subtracted per precision.
      label: what the ridge was fitted on: :data:`LABEL_ACCURACY` or :data:`LABEL_SMOOTHED`.
    """

    space: SearchSpace
    weights: np.ndarray
    intercept: float
    alpha: float
    cv_spearman: float
    samples: int
    precision_penalty: dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_PENALTY))
    label: str = LABEL_ACCURACY

    @classmethod
    def fit(
        cls,
        space: SearchSpace,
        configs: Sequence[Config],
        accuracies: Sequence[float],
        folds: int = 5,
        seed: int = 0,
        targets: Sequence[float] | None = None,
        label: str = LABEL_SMOOTHED,
    ) -> AccuracyPredictor:
        """Fits on measured accuracies, choosing ``alpha`` by k-fold cross-validated squared error.

        Args:
          space: the search space.
          configs: measured configurations (their precision is ignored).
          accuracies: their float32 top-1 validation accuracies.
          folds: cross-validation folds.
          seed: fold shuffling seed.
          targets: lower-noise labels to fit instead (e.g. smoothed accuracies); predictions are mapped to
            accuracy units by a least-squares line from ``targets`` to ``accuracies``. None: fit the accuracies.
          label: the name of ``targets`` (stored with the predictor).

        Returns:
          The fitted predictor.

        Raises:
          ValueError: for fewer than ``max(folds, 3)`` configs or lengths that do not match.
        """
        n = len(configs)
        if len(accuracies) != n or (targets is not None and len(targets) != n) or n < max(folds, 3):
            raise ValueError(f"need >= {max(folds, 3)} configs with one accuracy (and target) each, got {n}")
        x = np.stack([encode(space, c) for c in configs])
        acc = np.asarray(accuracies, np.float64)
        y = acc if targets is None else np.asarray(targets, np.float64)
        slope, offset = (1.0, 0.0) if targets is None else _label_to_accuracy(y, acc)
        fold = np.random.default_rng(seed).permutation(n) % folds
        best = None
        for alpha in ALPHAS:
            pred = np.empty_like(y)
            for f in range(folds):
                w, b = _ridge(x[fold != f], y[fold != f], alpha)
                pred[fold == f] = x[fold == f] @ w + b
            score = float(np.mean((pred - y) ** 2))
            if best is None or score < best[0]:
                best = (score, alpha, spearman(pred, acc))
        _, alpha, cv_rho = best
        w, b = _ridge(x, y, alpha)
        return cls(space, w * slope, b * slope + offset, alpha, cv_rho, n,
                   label=LABEL_ACCURACY if targets is None else label)  # fmt: skip

    @classmethod
    def fit_samples(
        cls, space: SearchSpace, configs: Sequence[Config], samples: dict[str, Sample], seed: int = 0
    ) -> AccuracyPredictor:
        """Fits on the smoothed accuracies of measured samples (see the module docstring).

        Args:
          space: the search space.
          configs: measured configurations.
          samples: fp32 config id -> :class:`Sample` (e.g. from :func:`measure_samples`), one per config.
          seed: fold shuffling seed.

        Returns:
          The fitted predictor.

        Raises:
          KeyError: when a configuration has no sample.
        """
        chosen = [samples[c.with_precision("fp32").id] for c in configs]
        return cls.fit(space, configs, [s.accuracy for s in chosen], seed=seed,
                       targets=[s.smoothed_accuracy for s in chosen], label=LABEL_SMOOTHED)  # fmt: skip

    def predict(self, config: Config) -> float:
        """Predicted validation accuracy of ``config`` (precision penalty applied), clipped to [0, 1]."""
        value = float(encode(self.space, config) @ self.weights + self.intercept)
        return min(1.0, max(0.0, value - self.precision_penalty.get(config.precision, 0.0)))

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "kind": PREDICTOR_KIND,
            "schema_version": PREDICTOR_SCHEMA_VERSION,
            "space": self.space.to_json(),
            "weights": self.weights.tolist(),
            "intercept": self.intercept,
            "alpha": self.alpha,
            "cv_spearman": self.cv_spearman,
            "samples": self.samples,
            "precision_penalty": dict(self.precision_penalty),
            "label": self.label,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> AccuracyPredictor:
        """Inverse of :meth:`to_json`; also reads schema version 1 (fitted on top-1 accuracy, no ``label``).

        Raises:
          ModelFormatError: for another kind of file or weights that do not fit the space.
          SchemaVersionError: for an unknown schema version.
        """
        if obj.get("kind") != PREDICTOR_KIND:
            raise ModelFormatError("not an adaspring accuracy predictor")
        version = obj.get("schema_version", 1)
        if version not in (1, PREDICTOR_SCHEMA_VERSION):
            raise SchemaVersionError(
                f"accuracy predictor schema_version {version!r} is not supported (this version reads 1 and "
                f"{PREDICTOR_SCHEMA_VERSION}); refit it with this version of tflite-adaspring"
            )
        space = SearchSpace.from_json(obj["space"])
        weights = np.asarray(obj["weights"], np.float64)
        if weights.shape != encode(space, space.largest()).shape:
            raise ModelFormatError("accuracy predictor weights do not match its search space")
        return cls(space, weights, float(obj["intercept"]), float(obj["alpha"]), float(obj["cv_spearman"]),
                   int(obj["samples"]), {k: float(v) for k, v in obj["precision_penalty"].items()},
                   str(obj.get("label", LABEL_ACCURACY)))  # fmt: skip


def _label_to_accuracy(targets: np.ndarray, accuracies: np.ndarray) -> tuple[float, float]:
    """Least-squares line ``accuracy ~ slope * target + offset`` (identity when it would not increase)."""
    spread = targets - targets.mean()
    denominator = float(spread @ spread)
    slope = float(spread @ (accuracies - accuracies.mean())) / denominator if denominator > 0 else 0.0
    if slope <= 0:
        return 1.0, 0.0
    return slope, float(accuracies.mean() - slope * targets.mean())


# ---------------------------------------------------------------------------------------------
# measured samples (cached on disk: measuring one configuration costs about a second)


def measure_samples(
    supernet: Any,
    configs: Sequence[Config],
    split: tuple[np.ndarray, np.ndarray],
    calibration: Sequence[np.ndarray],
    cache: dict[str, Sample] | None = None,
) -> dict[str, Sample]:
    """Top-1 and smoothed validation accuracies (BatchNorm recalibrated per config) of fp32 configurations.

    Args:
      supernet: the trained supernet.
      configs: the configurations (measured at fp32).
      split: ``(x, y)``.
      calibration: recalibration batches.
      cache: fp32 config id -> sample already measured (updated in place).

    Returns:
      fp32 config id -> :class:`Sample`, for every config.
    """
    cache = {} if cache is None else cache
    x, y = split
    for config in configs:
        config = config.with_precision("fp32")
        if config.id not in cache:
            supernet.recalibrate(config, list(calibration), store=False)
            logits = np.concatenate(
                [np.asarray(supernet.forward(x[i : i + 512], config)) for i in range(0, len(x), 512)]
            )
            correct = float(np.mean(np.argmax(logits, axis=-1) == y)) if len(y) else 0.0
            cache[config.id] = Sample(correct, smoothed_accuracy(logits, y))
    return {c.with_precision("fp32").id: cache[c.with_precision("fp32").id] for c in configs}


def measure_accuracies(
    supernet: Any,
    configs: Sequence[Config],
    split: tuple[np.ndarray, np.ndarray],
    calibration: Sequence[np.ndarray],
    cache: dict[str, Sample] | None = None,
) -> dict[str, float]:
    """Top-1 validation accuracies of fp32 configurations (:func:`measure_samples`, accuracy only).

    Returns:
      fp32 config id -> accuracy, for every config.
    """
    return {k: s.accuracy for k, s in measure_samples(supernet, configs, split, calibration, cache).items()}


def load_samples(path: str | Path, space: SearchSpace, checkpoint: str) -> dict[str, Sample]:
    """Cached samples for ``space`` and ``checkpoint``.

    Empty when the file is missing or stale: another space, another checkpoint, another label temperature,
    or schema version 1 (top-1 accuracy only: those configurations are measured again).

    Raises:
      ModelFormatError: for another kind of file.
      SchemaVersionError: for a schema version newer than this code reads.
    """
    path = Path(path)
    if not path.exists():
        return {}
    obj = json.loads(path.read_text())
    if obj.get("kind") != SAMPLES_KIND:
        raise ModelFormatError(f"{path}: not an adaspring accuracy-samples file")
    version = obj.get("schema_version")
    if version not in (1, SAMPLES_SCHEMA_VERSION):
        raise SchemaVersionError(
            f"{path}: accuracy samples schema_version {version!r} is not 1 or {SAMPLES_SCHEMA_VERSION}; "
            "delete the file to measure again"
        )
    stale = (
        version == 1
        or obj.get("space") != space.to_json()
        or obj.get("checkpoint") != checkpoint
        or obj.get("label_temperature") != LABEL_TEMPERATURE
    )
    if stale:
        return {}
    return {str(k): Sample(float(v["accuracy"]), float(v["smoothed_accuracy"])) for k, v in obj["samples"].items()}


def save_samples(path: str | Path, space: SearchSpace, checkpoint: str, samples: dict[str, Sample]) -> Path:
    """Writes measured samples atomically (schema version 2)."""
    return atomic_write_json(
        path,
        {
            "kind": SAMPLES_KIND,
            "schema_version": SAMPLES_SCHEMA_VERSION,
            "space": space.to_json(),
            "checkpoint": checkpoint,
            "label_temperature": LABEL_TEMPERATURE,
            "samples": {k: dataclasses.asdict(s) for k, s in samples.items()},
        },
    )
