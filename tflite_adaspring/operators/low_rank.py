"""Low-rank operator: truncated-SVD factorisation of a Dense (or 1x1 convolution) weight.

The supernet keeps the dense weight ``W`` (in x out). Under rank ``r`` the forward pass uses the
projection of ``W`` onto its top-``r`` left singular vectors, ``U_r U_r^T W``, which equals the
truncated SVD ``U_r S_r V_r^T``. ``U`` is computed from the current weight with gradients stopped, so
training sees truncation and the gradient is the projected one. Materialisation computes the same
SVD of the trained weight (retraining-free) and, when it saves parameters, emits two layers
``x -> x A -> (x A) B`` with ``A = U_r S_r`` and ``B = V_r^T``; otherwise one layer holding ``W_r``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras

from tflite_adaspring.cost import Cost
from tflite_adaspring.operators.base import ChoiceVariableMixin, CompressionOperator, Knob, channel_counts

DEFAULT_RANKS = (0.125, 0.25, 0.5, 1.0)


def _matrix_shape(layer: tf_keras.layers.Layer) -> tuple[int, int]:
    kernel = layer.kernel
    return int(np.prod(kernel.shape[:-1])), int(kernel.shape[-1])


def is_factorizable(layer: tf_keras.layers.Layer) -> bool:
    """True for Dense layers and for convolutions whose kernel is 1 (x 1) with stride and dilation 1."""
    if isinstance(layer, tf_keras.layers.Dense):
        return True
    if isinstance(layer, (tf_keras.layers.Conv1D, tf_keras.layers.Conv2D)) and not isinstance(
        layer, tf_keras.layers.DepthwiseConv2D
    ):
        ones = all(k == 1 for k in layer.kernel_size)
        unit = all(s == 1 for s in layer.strides) and all(d == 1 for d in layer.dilation_rate)
        return ones and unit and layer.groups == 1
    return False


class LowRank(ChoiceVariableMixin, tf_keras.layers.Wrapper, CompressionOperator):
    """Makes a Dense / 1x1 convolution low-rank with a rank knob.

    Args:
      layer: a Dense or 1x1 Conv1D/Conv2D layer.
      ranks: ascending fractions of the full rank ``min(in, out)``; the last is the default.
    """

    def __init__(self, layer: tf_keras.layers.Layer, ranks: Sequence[float] = DEFAULT_RANKS, **kwargs: Any):
        super().__init__(layer, **kwargs)
        self.ranks = tuple(float(r) for r in ranks)

    @property
    def knob(self) -> Knob:
        return Knob("rank", self.ranks)

    def build(self, input_shape: tf.TensorShape) -> None:
        if not self.layer.built:
            self.layer.build(input_shape)
        if not is_factorizable(self.layer):
            raise ValueError(
                f"LowRank wraps Dense or 1x1 stride-1 convolutions, got {type(self.layer).__name__} "
                f"{getattr(self.layer, 'kernel_size', '')}"
            )
        self.n_in, self.n_out = _matrix_shape(self.layer)
        self.full_rank = min(self.n_in, self.n_out)
        self.rank_counts = channel_counts(self.full_rank, self.ranks)
        self._counts_tensor = tf.constant(self.rank_counts, tf.int32)
        self._add_choice_variable(len(self.ranks) - 1)
        super().build(input_shape)

    def rank_for(self, fraction: float) -> int:
        """Rank kept at ``fraction``."""
        return self.rank_counts[self.knob.index(fraction)]

    def truncated_kernel(self) -> tf.Tensor:
        """The kernel projected onto its top-r left singular vectors (r = active rank)."""
        kernel = self.layer.kernel
        w = tf.reshape(kernel, (self.n_in, self.n_out))
        _, u, _ = tf.linalg.svd(tf.stop_gradient(w), full_matrices=False)
        r = tf.gather(self._counts_tensor, self._choice)
        u_r = u * tf.cast(tf.range(self.full_rank) < r, w.dtype)
        w_r = tf.matmul(u_r, tf.matmul(u_r, w, transpose_a=True))
        return tf.reshape(w_r, tf.shape(kernel))

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        kernel = self.truncated_kernel()
        layer = self.layer
        if isinstance(layer, tf_keras.layers.Dense):
            y = tf.tensordot(inputs, kernel, axes=[[inputs.shape.rank - 1], [0]])
        else:
            y = tf.tensordot(inputs, tf.reshape(kernel, (self.n_in, self.n_out)), axes=[[inputs.shape.rank - 1], [0]])
        if layer.use_bias:
            y = y + layer.bias
        return layer.activation(y)

    def factorizes(self, rank: int) -> bool:
        """True when two factors of ``rank`` hold fewer weights than the full matrix."""
        return rank * (self.n_in + self.n_out) < self.n_in * self.n_out

    def factors(self, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """``A`` (in x r) and ``B`` (r x out) with ``A @ B`` the rank-r truncation of the kernel.

        Uses the same float32 SVD as the forward pass, so materialised and supernet outputs agree.
        """
        r = self.rank_for(fraction)
        w = tf.reshape(self.layer.kernel, (self.n_in, self.n_out))
        s, u, v = tf.linalg.svd(w, full_matrices=False)
        a = (u[:, :r] * s[:r]).numpy()
        b = tf.transpose(v[:, :r]).numpy()
        return a, b

    def materialize(self, x: tf.Tensor, fraction: float) -> tf.Tensor:
        """Applies plain layer(s) holding the rank-``fraction`` weight to symbolic ``x``."""
        layer = self.layer
        r = self.rank_for(fraction)
        bias = [layer.bias.numpy()] if layer.use_bias else []
        activation = tf_keras.activations.serialize(layer.activation)
        if self.factorizes(r):
            a, b = self.factors(fraction)
            first = _same_kind(layer, r, use_bias=False, activation="linear")
            second = _same_kind(layer, self.n_out, use_bias=layer.use_bias, activation=activation)
            h = first(x)
            first.set_weights([a.reshape((*layer.kernel.shape[:-1], r))])
            y = second(h)
            second.set_weights([b.reshape((*([1] * (len(layer.kernel.shape) - 2)), r, self.n_out)), *bias])
            return y
        single = _same_kind(layer, self.n_out, use_bias=layer.use_bias, activation=activation)
        y = single(x)
        a, b = self.factors(fraction)
        single.set_weights([(a @ b).reshape(layer.kernel.shape), *bias])
        return y

    def cost(self, fraction: float, positions: int) -> Cost:
        """Cost of the materialised layer(s) applied at ``positions`` spatial positions (1 for Dense)."""
        r = self.rank_for(fraction)
        bias = self.n_out if self.layer.use_bias else 0
        if self.factorizes(r):
            kernel = r * (self.n_in + self.n_out)
            act = positions * max(self.n_in + r, r + self.n_out)
            return Cost(kernel + bias, positions * kernel, kernel, r + self.n_out, act)
        kernel = self.n_in * self.n_out
        return Cost(kernel + bias, positions * kernel, kernel, self.n_out, positions * (self.n_in + self.n_out))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "ranks": list(self.ranks)}


def _same_kind(layer: tf_keras.layers.Layer, out: int, use_bias: bool, activation: str) -> tf_keras.layers.Layer:
    if isinstance(layer, tf_keras.layers.Dense):
        return tf_keras.layers.Dense(out, use_bias=use_bias, activation=activation)
    conv = tf_keras.layers.Conv1D if isinstance(layer, tf_keras.layers.Conv1D) else tf_keras.layers.Conv2D
    return conv(out, 1, use_bias=use_bias, activation=activation)
