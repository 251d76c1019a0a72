"""Per-configuration BatchNorm statistics for an elastic model (recalibrate, store, swap in)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

import numpy as np
import tensorflow as tf

from tflite_adaspring.operators.batchnorm import ElasticBatchNorm

Statistics = list[tuple[np.ndarray, np.ndarray]]


def read_statistics(bns: list[ElasticBatchNorm]) -> Statistics:
    """Moving (mean, variance) of every layer, as arrays."""
    return [(bn.moving_mean.numpy(), bn.moving_variance.numpy()) for bn in bns]


def write_statistics(bns: list[ElasticBatchNorm], stats: Statistics) -> None:
    """Replaces the moving statistics of every layer."""
    for bn, (mean, var) in zip(bns, stats):
        bn.set_statistics(mean, var)


class StatisticsStore:
    """Recalibrated BatchNorm statistics per configuration.

    Args:
      batchnorms: the elastic BatchNorm layers.
      train_forward: runs one batch through the network in training mode (the config already set).
    """

    def __init__(self, batchnorms: list[ElasticBatchNorm], train_forward: Callable[[tf.Tensor], Any]):
        self.batchnorms = batchnorms
        self._train_forward = train_forward
        self.stored: dict[Hashable, Statistics] = {}

    def recalibrate(self, key: Hashable, batches: Iterable[Any], store: bool = True) -> None:
        """Replaces the moving statistics by the population statistics of ``batches`` (config already active).

        Args:
          key: the configuration the statistics belong to.
          batches: input batches.
          store: keep them under ``key``.

        Raises:
          ValueError: when ``batches`` is empty.
        """
        for bn in self.batchnorms:
            bn.start_recalibration()
        seen = 0
        for x in batches:
            self._train_forward(tf.convert_to_tensor(x, tf.float32))
            seen += 1
        for bn in self.batchnorms:
            bn.finish_recalibration()
        if seen == 0:
            raise ValueError("recalibrate needs at least one calibration batch")
        if store:
            self.stored[key] = read_statistics(self.batchnorms)

    @contextlib.contextmanager
    def using(self, key: Hashable) -> Iterator[None]:
        """Within the block, the layers hold the statistics stored under ``key`` (if any)."""
        stored = self.stored.get(key)
        if stored is None:
            yield
            return
        saved = read_statistics(self.batchnorms)
        write_statistics(self.batchnorms, stored)
        try:
            yield
        finally:
            write_statistics(self.batchnorms, saved)
