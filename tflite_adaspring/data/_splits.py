"""Deterministic, seeded, class-stratified carving of a validation split out of a training split."""

from __future__ import annotations

import numpy as np

from tflite_adaspring.errors import DataValidationError


def validation_size(n: int, val_fraction: float) -> int:
    """Returns how many of ``n`` training examples go to validation (at least 1, leaving at least 1).

    Args:
      n: number of training examples before carving.
      val_fraction: fraction in (0, 1).

    Returns:
      The validation size.

    Raises:
      DataValidationError: ``val_fraction`` is outside (0, 1) or ``n < 2``.
    """
    if not 0.0 < float(val_fraction) < 1.0:
        raise DataValidationError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if n < 2:
        raise DataValidationError(f"need at least 2 training examples to carve a validation split, got {n}")
    return min(n - 1, max(1, round(n * float(val_fraction))))


def carve_validation(y: np.ndarray, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Splits example indices into (train, validation), stratified by class and seeded.

    Every class is shuffled with one seeded permutation; each example gets the fractional position
    ``(rank within its class + 0.5) / class size`` and the ``val_size`` lowest positions become the
    validation split. So each class contributes in proportion to its size, the size is exact, and
    the same ``(y, val_size, seed)`` always gives the same split, in any process.

    Args:
      y: integer labels of the training examples.
      val_size: number of validation examples, in ``[1, len(y) - 1]``.
      seed: seed of the permutation.

    Returns:
      ``(train_indices, val_indices)``, each sorted ascending.
    """
    n = len(y)
    if not 1 <= val_size <= n - 1:
        raise DataValidationError(f"validation size must be in [1, {n - 1}] for {n} training examples, got {val_size}")
    order = np.random.default_rng(seed).permutation(n)
    labels = np.asarray(y)[order]
    by_label = np.argsort(labels, kind="stable")  # groups each class, keeping the permuted order inside it
    sorted_labels = labels[by_label]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    ends = np.searchsorted(sorted_labels, sorted_labels, side="right")
    position = np.empty(n, np.float64)
    position[by_label] = (np.arange(n) - starts + 0.5) / (ends - starts)
    chosen = order[np.lexsort((np.arange(n), position))[:val_size]]
    is_val = np.zeros(n, bool)
    is_val[chosen] = True
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
