"""Materialisation helpers: plain tf_keras layers whose weights are slices of a supernet layer's.

Every function takes a symbolic input tensor, creates a fresh plain layer, applies it and sets its
weights, returning the output tensor. Slices are prefixes: the supernet keeps channels in
importance order, so "the first k" are the most important ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras

from tflite_adaspring.operators.batchnorm import ElasticBatchNorm

CONV_TYPES = (tf_keras.layers.Conv1D, tf_keras.layers.Conv2D)


def _fresh(layer: tf_keras.layers.Layer, **overrides: Any) -> tf_keras.layers.Layer:
    config = layer.get_config()
    config.pop("name", None)
    config.update(overrides)
    return layer.__class__.from_config(config)


def sliced_conv_or_dense(
    layer: tf_keras.layers.Layer, x: tf.Tensor, in_keep: int | None = None, out_keep: int | None = None
) -> tf.Tensor:
    """Applies a copy of a Conv1D/Conv2D/Dense keeping the first input/output channels.

    Args:
      layer: the (built) source layer.
      x: symbolic input with ``in_keep`` channels.
      in_keep: input channels kept (None: all).
      out_keep: output channels kept (None: all).

    Returns:
      The output tensor of the new layer.
    """
    kernel = layer.kernel.numpy()
    in_keep = kernel.shape[-2] if in_keep is None else in_keep
    out_keep = kernel.shape[-1] if out_keep is None else out_keep
    size_key = "units" if isinstance(layer, tf_keras.layers.Dense) else "filters"
    new = _fresh(layer, **{size_key: out_keep})
    y = new(x)
    weights = [kernel[..., :in_keep, :out_keep]]
    if layer.use_bias:
        weights.append(layer.bias.numpy()[:out_keep])
    new.set_weights(weights)
    return y


def sliced_depthwise(layer: tf_keras.layers.DepthwiseConv2D, x: tf.Tensor, keep: int) -> tf.Tensor:
    """Applies a copy of a DepthwiseConv2D keeping its first ``keep`` channels (multiplier 1)."""
    new = _fresh(layer)
    y = new(x)
    weights = [layer.depthwise_kernel.numpy()[:, :, :keep, :]]
    if layer.use_bias:
        weights.append(layer.bias.numpy()[:keep])
    new.set_weights(weights)
    return y


def sliced_batchnorm(layer: tf_keras.layers.Layer, x: tf.Tensor, keep: int | None = None) -> tf.Tensor:
    """Applies a plain ``BatchNormalization`` with the first ``keep`` channels of ``layer``'s parameters.

    Works for :class:`ElasticBatchNorm` and ``tf_keras.layers.BatchNormalization`` (center and scale on).
    """
    if isinstance(layer, ElasticBatchNorm):
        params = [layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance]
        new = tf_keras.layers.BatchNormalization(epsilon=layer.epsilon, momentum=layer.momentum)
    else:
        params = [layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance]
        new = _fresh(layer)
    y = new(x)
    keep = params[0].shape[0] if keep is None else keep
    new.set_weights([np.asarray(p.numpy())[:keep] for p in params])
    return y


def copy_layer(layer: tf_keras.layers.Layer, x: tf.Tensor) -> tf.Tensor:
    """Applies an unsliced copy of any built layer (same config and weights)."""
    new = _fresh(layer)
    y = new(x)
    new.set_weights(layer.get_weights())
    return y
