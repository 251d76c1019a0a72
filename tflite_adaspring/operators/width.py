"""Width operator: channel scaling of Conv1D / Conv2D / Dense output channels.

``ElasticWidth(layer, widths)`` wraps a layer (like TFMOT's ``PruneLowMagnitude``). In the supernet
the wrapped layer computes all its output channels and the channels beyond the active width are
multiplied by zero, so every consumer sees exactly what the sliced network sees, and a
``tf.function`` traces once for every width. Materialisation keeps the first ``k`` output channels
(and the first input channels the producer kept): channels are kept in importance order (L1 norm of
their filters) by :func:`importance_order` and the owning block's re-sort.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras

from tflite_adaspring.operators.base import (
    ChoiceVariableMixin,
    CompressionOperator,
    Knob,
    channel_counts,
    prefix_mask,
)
from tflite_adaspring.operators.slicing import sliced_conv_or_dense

SUPPORTED = (tf_keras.layers.Conv1D, tf_keras.layers.Conv2D, tf_keras.layers.Dense)
DEFAULT_WIDTHS = (0.25, 0.5, 0.75, 1.0)


class ElasticWidth(ChoiceVariableMixin, tf_keras.layers.Wrapper, CompressionOperator):
    """Makes the output channels of a Conv1D/Conv2D/Dense elastic.

    Args:
      layer: the layer to wrap (not a DepthwiseConv: its channels follow its producer).
      widths: ascending width fractions; the last is the default (usually 1.0).
    """

    def __init__(self, layer: tf_keras.layers.Layer, widths: Sequence[float] = DEFAULT_WIDTHS, **kwargs: Any):
        if not isinstance(layer, SUPPORTED) or isinstance(layer, tf_keras.layers.DepthwiseConv2D):
            raise ValueError(
                f"ElasticWidth wraps Conv1D, Conv2D or Dense layers, got {type(layer).__name__}; "
                "depthwise convolutions follow their producer's width"
            )
        super().__init__(layer, **kwargs)
        self.widths = tuple(float(w) for w in widths)

    @property
    def knob(self) -> Knob:
        return Knob("width", self.widths)

    def build(self, input_shape: tf.TensorShape) -> None:
        if not self.layer.built:
            self.layer.build(input_shape)
        self.full_channels = int(self.layer.kernel.shape[-1])
        self.counts = channel_counts(self.full_channels, self.widths)
        self._counts_tensor = tf.constant(self.counts, tf.int32)
        self._add_choice_variable(len(self.widths) - 1)
        super().build(input_shape)

    def active_count(self) -> tf.Tensor:
        """Number of active output channels (int32 scalar tensor)."""
        return tf.gather(self._counts_tensor, self._choice)

    def output_mask(self) -> tf.Tensor:
        """Float mask over the output channels: ones for the active prefix."""
        return prefix_mask(self.active_count(), self.full_channels)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return self.layer(inputs) * self.output_mask()

    def count_for(self, width: float) -> int:
        """Output channels kept at ``width``."""
        return self.counts[self.knob.index(width)]

    def materialize(self, x: tf.Tensor, width: float, in_keep: int | None = None) -> tf.Tensor:
        """Applies a plain copy of the wrapped layer at ``width`` to symbolic ``x``.

        Args:
          x: symbolic input.
          width: the width choice.
          in_keep: input channels the producer kept (None: all).

        Returns:
          The output tensor (``count_for(width)`` channels).
        """
        return sliced_conv_or_dense(self.layer, x, in_keep=in_keep, out_keep=self.count_for(width))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "widths": list(self.widths)}


def importance_order(kernel: np.ndarray) -> np.ndarray:
    """Output-channel order by decreasing L1 norm of the filters (stable for ties).

    Args:
      kernel: a kernel whose last axis is the output channel.

    Returns:
      A permutation of the output channels.
    """
    norms = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
    return np.argsort(-norms, kind="stable")
