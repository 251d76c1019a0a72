"""Accuracy predictor: an ensemble of ridge regression and Gaussian-kernel ridge regression (numpy only).

Members. Both are fitted on >= 100 sampled configurations measured on the validation split after BatchNorm
recalibration; the prediction is their mean.

* *Ridge* on a one-hot encoding (:func:`encode`): per stage, the depth as one-hot; per block slot, the op,
  the width and the joint (op, width) choice as one-hots (all zero when the block is skipped: each branch at
  each width has its own weights, so the joint choice carries effects the separate knobs miss); the head
  rank as one-hot. Standardised features, unpenalised intercept, ``alpha`` chosen by k-fold
  cross-validation. It is additive in the knobs.
* *Kernel ridge* (:class:`KernelRidge`) on a compact numeric description (:func:`describe`: per stage the
  depth; per slot the width, 0 when skipped, and the op as one-hot; log2 of the head rank) with the kernel
  ``exp(-gamma * squared distance / dimensions)`` on standardised features, ``gamma`` and the penalty
  chosen by k-fold cross-validation. It is smooth in the widths and captures interactions between knobs.

On the har_watch supernet their errors differ enough that the mean ranks held-out configurations better
than either member (see ``docs/results/predictors_har_watch.md``); ``fit(kernel=False)`` gives the ridge alone.

Labels. Top-1 validation accuracy of a small validation split is a noisy label: a window near the
decision boundary flips between right and wrong from one configuration to the next. The predictor can
instead be fitted on the *smoothed accuracy* (:func:`smoothed_accuracy`: the mean over windows of
``sigmoid(margin / T)``, ``margin`` = true-class logit minus the best other logit, ``T`` =
:data:`LABEL_TEMPERATURE`), which tends to top-1 accuracy as ``T -> 0`` and counts near-boundary windows
as about one half, but also rewards confident sub-networks, which top-1 does not. :meth:`AccuracyPredictor.fit_samples`
fits both labels and keeps the one whose cross-validated Spearman correlation with top-1 accuracy is higher.
A smoothed prediction is mapped back to accuracy units by a least-squares line fitted on the measured
(smoothed, top-1) pairs of the training configurations, so :meth:`AccuracyPredictor.predict` always returns
an accuracy.

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
PREDICTOR_SCHEMA_VERSION = 3
SAMPLES_KIND = "adaspring-accuracy-samples"
SAMPLES_SCHEMA_VERSION = 2
DEFAULT_PENALTY = {"fp32": 0.0, "fp16": 0.0, "int8": 0.005}
ALPHAS = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
KERNEL_GAMMAS = (0.03, 0.1, 0.3, 1.0)
KERNEL_PENALTIES = (0.03, 0.1, 0.3, 1.0, 3.0)
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


def describe(space: SearchSpace, config: Config) -> np.ndarray:
    """The compact numeric description of ``config`` the kernel member uses (see the module docstring)."""
    space.validate(config)
    parts: list[float] = []
    for stage, n in zip(config.stages, space.blocks_per_stage):
        parts.append(float(len(stage)))
        for b in range(n):
            kept = b < len(stage)
            parts.append(stage[b].width if kept else 0.0)
            parts += [float(kept and stage[b].op == op) for op in space.ops]
    parts.append(math.log2(config.head_rank))
    return np.asarray(parts, np.float64)


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
    _, tie_group, tie_count = np.unique(x, return_inverse=True, return_counts=True)
    return (np.bincount(tie_group, weights=ranks) / tie_count)[tie_group]  # tied values share their mean rank


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


@dataclasses.dataclass(frozen=True)
class KernelRidge:
    """Gaussian-kernel ridge regression: ``offset + sum_i dual_i * exp(-gamma * |z - support_i|^2 / d)``.

    Features are standardised with the training mean and scale; ``d`` is their number.

    Attributes:
      gamma: kernel width (per dimension).
      penalty: ridge penalty on the kernel matrix.
      mean: training feature means.
      scale: training feature scales (1 where a feature is constant).
      support: standardised training features ``(n, d)``.
      dual: dual coefficients ``(n,)``.
      offset: the training label mean.
    """

    gamma: float
    penalty: float
    mean: np.ndarray
    scale: np.ndarray
    support: np.ndarray
    dual: np.ndarray
    offset: float

    @classmethod
    def fit(cls, z: np.ndarray, y: np.ndarray, gamma: float, penalty: float) -> KernelRidge:
        """Fits on features ``z`` ``(n, d)`` and labels ``y`` ``(n,)``."""
        mean, scale = z.mean(axis=0), z.std(axis=0)
        scale[scale == 0] = 1.0
        support = (z - mean) / scale
        gram = _gaussian(support, support, gamma) + penalty * np.eye(len(z))
        offset = float(y.mean())
        return cls(gamma, penalty, mean, scale, support, _spd_solve(gram, y - offset), offset)

    def predict(self, z: np.ndarray) -> np.ndarray:
        """Predictions for features ``z`` ``(m, d)``."""
        return _gaussian((z - self.mean) / self.scale, self.support, self.gamma) @ self.dual + self.offset

    def rescaled(self, slope: float, intercept: float) -> KernelRidge:
        """The model of ``slope * prediction + intercept``."""
        return dataclasses.replace(self, dual=self.dual * slope, offset=self.offset * slope + intercept)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {"gamma": self.gamma, "penalty": self.penalty, "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "support": self.support.tolist(), "dual": self.dual.tolist(),
                "offset": self.offset}  # fmt: skip

    @classmethod
    def from_json(cls, obj: dict[str, Any], dimensions: int) -> KernelRidge:
        """Inverse of :meth:`to_json`.

        Raises:
          ModelFormatError: for arrays whose shapes do not fit ``dimensions`` features.
        """
        mean, scale = np.asarray(obj["mean"], np.float64), np.asarray(obj["scale"], np.float64)
        support, dual = np.asarray(obj["support"], np.float64), np.asarray(obj["dual"], np.float64)
        if mean.shape != (dimensions,) or scale.shape != (dimensions,) or support.shape != (len(dual), dimensions):
            raise ModelFormatError("accuracy predictor kernel member does not match its search space")
        return cls(float(obj["gamma"]), float(obj["penalty"]), mean, scale, support, dual, float(obj["offset"]))


def _gaussian(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    squared = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * np.einsum("ik,jk->ij", a, b)
    return np.exp(-gamma * np.maximum(squared, 0.0) / a.shape[1])


def _cross_validated(
    fit_predict: Any, x: np.ndarray, y: np.ndarray, fold: np.ndarray, settings: Sequence[Any]
) -> tuple[Any, np.ndarray]:
    """The setting with the lowest k-fold squared error and its out-of-fold predictions.

    Args:
      fit_predict: ``(x_train, y_train, x_test, setting) -> predictions``.
      x: features.
      y: labels.
      fold: fold index of every row.
      settings: candidate settings.

    Returns:
      ``(setting, out-of-fold predictions)``.
    """
    best: tuple[float, Any, np.ndarray] | None = None
    for setting in settings:
        pred = np.empty_like(y)
        for f in np.unique(fold):
            pred[fold == f] = fit_predict(x[fold != f], y[fold != f], x[fold == f], setting)
        score = float(np.mean((pred - y) ** 2))
        if best is None or score < best[0]:
            best = (score, setting, pred)
    assert best is not None
    return best[1], best[2]


def _ridge_fit_predict(x: np.ndarray, y: np.ndarray, test: np.ndarray, alpha: float) -> np.ndarray:
    w, b = _ridge(x, y, alpha)
    return test @ w + b


def _kernel_fit_predict(z: np.ndarray, y: np.ndarray, test: np.ndarray, setting: tuple[float, float]) -> np.ndarray:
    return KernelRidge.fit(z, y, *setting).predict(test)


@dataclasses.dataclass
class AccuracyPredictor:
    """Mean of a ridge member on :func:`encode` features and a kernel member on :func:`describe` features.

    Attributes:
      space: the search space.
      weights: ridge feature weights (in accuracy units: the label-to-accuracy line is folded in).
      intercept: the ridge intercept.
      alpha: the ridge penalty chosen by cross-validation.
      cv_spearman: cross-validated Spearman correlation of the prediction with the measured top-1 accuracy of
        the training samples.
      samples: number of training configurations.
      precision_penalty: accuracy subtracted per precision.
      label: what the members were fitted on: :data:`LABEL_ACCURACY` or :data:`LABEL_SMOOTHED`.
      kernel: the kernel member (in accuracy units); None: the ridge alone (as schema versions 1 and 2).
    """

    space: SearchSpace
    weights: np.ndarray
    intercept: float
    alpha: float
    cv_spearman: float
    samples: int
    precision_penalty: dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_PENALTY))
    label: str = LABEL_ACCURACY
    kernel: KernelRidge | None = None

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
        kernel: bool = True,
    ) -> AccuracyPredictor:
        """Fits on measured accuracies, choosing each member's penalty by k-fold cross-validated squared error.

        Args:
          space: the search space.
          configs: measured configurations (their precision is ignored).
          accuracies: their float32 top-1 validation accuracies.
          folds: cross-validation folds.
          seed: fold shuffling seed.
          targets: lower-noise labels to fit instead (e.g. smoothed accuracies); predictions are mapped to
            accuracy units by a least-squares line from ``targets`` to ``accuracies``. None: fit the accuracies.
          label: the name of ``targets`` (stored with the predictor).
          kernel: fit the kernel member too (False: the ridge alone).

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
        alpha, pred = _cross_validated(_ridge_fit_predict, x, y, fold, ALPHAS)
        member = None
        if kernel:
            z = np.stack([describe(space, c) for c in configs])
            settings = [(g, p) for g in KERNEL_GAMMAS for p in KERNEL_PENALTIES]
            (gamma, penalty), kernel_pred = _cross_validated(_kernel_fit_predict, z, y, fold, settings)
            pred = (pred + kernel_pred) / 2
            member = KernelRidge.fit(z, y, gamma, penalty).rescaled(slope, offset)
        w, b = _ridge(x, y, alpha)
        return cls(space, w * slope, b * slope + offset, alpha, spearman(pred, acc), n,
                   label=LABEL_ACCURACY if targets is None else label, kernel=member)  # fmt: skip

    @classmethod
    def fit_samples(
        cls,
        space: SearchSpace,
        configs: Sequence[Config],
        samples: dict[str, Sample],
        seed: int = 0,
        labels: Sequence[str] = (LABEL_ACCURACY, LABEL_SMOOTHED),
        kernel: bool = True,
    ) -> AccuracyPredictor:
        """Fits on measured samples with each of ``labels`` and keeps the best cross-validated fit.

        Args:
          space: the search space.
          configs: measured configurations.
          samples: fp32 config id -> :class:`Sample` (e.g. from :func:`measure_samples`), one per config.
          seed: fold shuffling seed (the same folds for every label).
          labels: :data:`LABEL_ACCURACY` and/or :data:`LABEL_SMOOTHED`.
          kernel: fit the kernel member too.

        Returns:
          The fitted predictor with the highest ``cv_spearman`` (the first label on ties).

        Raises:
          KeyError: when a configuration has no sample.
          ValueError: for an empty or unknown label.
        """
        unknown = set(labels) - {LABEL_ACCURACY, LABEL_SMOOTHED}
        if not labels or unknown:
            raise ValueError(f"labels must be among {LABEL_ACCURACY!r} and {LABEL_SMOOTHED!r}, got {list(labels)}")
        chosen = [samples[c.with_precision("fp32").id] for c in configs]
        accuracies = [s.accuracy for s in chosen]
        smoothed = [s.smoothed_accuracy for s in chosen]
        fits = []
        for name in labels:
            targets = None if name == LABEL_ACCURACY else smoothed
            fits.append(cls.fit(space, configs, accuracies, seed=seed, targets=targets, label=name, kernel=kernel))
        return max(fits, key=lambda model: model.cv_spearman)

    def predict(self, config: Config) -> float:
        """Predicted validation accuracy of ``config`` (precision penalty applied), clipped to [0, 1]."""
        value = float(encode(self.space, config) @ self.weights + self.intercept)
        if self.kernel is not None:
            value = (value + float(self.kernel.predict(describe(self.space, config)[None, :])[0])) / 2
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
            "kernel": None if self.kernel is None else self.kernel.to_json(),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> AccuracyPredictor:
        """Inverse of :meth:`to_json`; also reads schema versions 1 (top-1 label, no ``label``) and 2 (no kernel).

        Raises:
          ModelFormatError: for another kind of file or members that do not fit the space.
          SchemaVersionError: for an unknown schema version.
        """
        if obj.get("kind") != PREDICTOR_KIND:
            raise ModelFormatError("not an adaspring accuracy predictor")
        version = obj.get("schema_version", 1)
        if version not in (1, 2, PREDICTOR_SCHEMA_VERSION):
            raise SchemaVersionError(
                f"accuracy predictor schema_version {version!r} is not supported (this version reads 1 to "
                f"{PREDICTOR_SCHEMA_VERSION}); refit it with this version of tflite-adaspring"
            )
        space = SearchSpace.from_json(obj["space"])
        weights = np.asarray(obj["weights"], np.float64)
        if weights.shape != encode(space, space.largest()).shape:
            raise ModelFormatError("accuracy predictor weights do not match its search space")
        member = obj.get("kernel") if version == PREDICTOR_SCHEMA_VERSION else None
        kernel = None if member is None else KernelRidge.from_json(member, len(describe(space, space.largest())))
        return cls(space, weights, float(obj["intercept"]), float(obj["alpha"]), float(obj["cv_spearman"]),
                   int(obj["samples"]), {k: float(v) for k, v in obj["precision_penalty"].items()},
                   str(obj.get("label", LABEL_ACCURACY)), kernel)  # fmt: skip


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
