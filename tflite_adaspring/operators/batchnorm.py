"""BatchNorm for elastic widths, with per-configuration statistics recalibration.

Differences from ``tf_keras.layers.BatchNormalization``:
- ``call(x, training, active=None)`` takes the producer's channel mask: moving statistics of
  inactive channels are left untouched, and inactive channels stay exactly zero after the layer.
- Recalibration: while ``recalibrating`` is set, training-mode calls also accumulate the exact
  population mean and variance of their inputs (sum, sum of squares, count), so a configuration's
  statistics are the average over N calibration batches, not a momentum blend of all configurations.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tf_keras


class ElasticBatchNorm(tf_keras.layers.Layer):
    """Batch normalisation over the last axis that cooperates with channel masks.

    Args:
      momentum: moving-average momentum.
      epsilon: variance epsilon.
    """

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.momentum = momentum
        self.epsilon = epsilon

    def build(self, input_shape: tf.TensorShape) -> None:
        channels = int(input_shape[-1])
        self.channels = channels

        def vec(name: str, init: str, kind: str = "trainable", shape: tuple[int, ...] = (channels,)) -> tf.Variable:
            if kind == "trainable":
                return self.add_weight(name=name, shape=shape, initializer=init, trainable=True)
            if kind == "statistic":  # per replica under tf.distribute, averaged when read
                sync, aggregation = tf.VariableSynchronization.ON_READ, tf.VariableAggregation.MEAN
            else:  # recalibration accumulators: updated outside replica context only
                sync, aggregation = tf.VariableSynchronization.AUTO, tf.VariableAggregation.ONLY_FIRST_REPLICA
            return self.add_weight(
                name=name, shape=shape, initializer=init, trainable=False, synchronization=sync, aggregation=aggregation
            )

        self.gamma = vec("gamma", "ones")
        self.beta = vec("beta", "zeros")
        self.moving_mean = vec("moving_mean", "zeros", "statistic")
        self.moving_variance = vec("moving_variance", "ones", "statistic")
        self.acc_sum = vec("acc_sum", "zeros", "accumulator")
        self.acc_sumsq = vec("acc_sumsq", "zeros", "accumulator")
        self.acc_count = vec("acc_count", "zeros", "accumulator", shape=())
        self.recalibrating = self.add_weight(
            name="recalibrating",
            shape=(),
            dtype=tf.bool,
            initializer="zeros",
            trainable=False,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        super().build(input_shape)

    def call(self, x: tf.Tensor, training: bool | None = None, active: tf.Tensor | None = None) -> tf.Tensor:
        if not training:  # None (Keras' default outside fit) means inference
            y = self._normalize(x, self.moving_mean, self.moving_variance)
        else:
            axes = list(range(len(x.shape) - 1))
            mean, var = tf.nn.moments(x, axes)
            self._update_moving(mean, var, active)
            # recalibration runs outside replica context; inside strategy.run an accumulator update
            # would need a cross-replica merge inside tf.cond, which tf.distribute does not support
            if tf.distribute.in_cross_replica_context() or not tf.distribute.has_strategy():
                self._accumulate(x, axes)
            y = self._normalize(x, mean, var)
        if active is not None:
            y = y * active
        return y

    def _normalize(self, x: tf.Tensor, mean: tf.Tensor, var: tf.Tensor) -> tf.Tensor:
        scale = self.gamma * tf.math.rsqrt(var + self.epsilon)
        return x * scale + (self.beta - mean * scale)

    def _update_moving(self, mean: tf.Tensor, var: tf.Tensor, active: tf.Tensor | None) -> None:
        m = self.momentum
        new_mean = self.moving_mean * m + mean * (1 - m)
        new_var = self.moving_variance * m + var * (1 - m)
        if active is not None:
            keep = tf.cast(active, tf.bool)
            new_mean = tf.where(keep, new_mean, self.moving_mean)
            new_var = tf.where(keep, new_var, self.moving_variance)
        self.moving_mean.assign(new_mean)
        self.moving_variance.assign(new_var)

    def _accumulate(self, x: tf.Tensor, axes: list[int]) -> None:
        n = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
        on = tf.cast(self.recalibrating, tf.float32)
        self.acc_sum.assign_add(on * tf.reduce_sum(x, axes))
        self.acc_sumsq.assign_add(on * tf.reduce_sum(tf.square(x), axes))
        self.acc_count.assign_add(on * n)

    def start_recalibration(self) -> None:
        """Clears the accumulators and starts accumulating in training-mode calls."""
        for v in (self.acc_sum, self.acc_sumsq):
            v.assign(tf.zeros_like(v))
        self.acc_count.assign(0.0)
        self.recalibrating.assign(True)

    def finish_recalibration(self) -> None:
        """Stops accumulating and writes the population statistics into the moving statistics.

        Channels that saw no data (count 0) keep their statistics.
        """
        self.recalibrating.assign(False)
        count = float(self.acc_count.numpy())
        if count <= 0:
            return
        mean = self.acc_sum / count
        var = tf.maximum(self.acc_sumsq / count - tf.square(mean), 0.0)
        self.moving_mean.assign(mean)
        self.moving_variance.assign(var)

    def statistics(self) -> tuple[tf.Tensor, tf.Tensor]:
        """Current moving (mean, variance) as tensors (copies)."""
        return tf.identity(self.moving_mean), tf.identity(self.moving_variance)

    def set_statistics(self, mean: Any, variance: Any) -> None:
        """Replaces the moving statistics."""
        self.moving_mean.assign(mean)
        self.moving_variance.assign(variance)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}
