"""Supernet layers whose input channels follow another layer's elastic width.

The producer's :class:`~tflite_adaspring.operators.width.ElasticWidth` owns the width choice; these
layers read its mask through a callable (not a tracked attribute), so the producer's weights are
not tracked twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras

from tflite_adaspring.cost import Cost
from tflite_adaspring.operators.batchnorm import ElasticBatchNorm
from tflite_adaspring.operators.low_rank import DEFAULT_RANKS, LowRank

MaskFn = Callable[[], tf.Tensor]


def repeated_mask(mask_fn: MaskFn, repeats: int) -> tf.Tensor:
    """The channel mask as the consumer sees it: tiled ``repeats`` times when a Flatten interleaves positions."""
    mask = mask_fn()
    return mask if repeats == 1 else tf.tile(mask, [repeats])


def kept_rows(count: int, channels: int, repeats: int) -> np.ndarray:
    """Consumer input rows kept when the producer keeps its first ``count`` of ``channels`` channels.

    Args:
      count: channels kept.
      channels: the producer's full channels.
      repeats: positions a Flatten interleaved (row ``p * channels + c``); 1 without a Flatten.

    Returns:
      Ascending row indices.
    """
    return (np.arange(repeats)[:, None] * channels + np.arange(count)[None, :]).reshape(-1)


class ChannelMask(tf_keras.layers.Layer):
    """Zeroes the inactive channels of a width chain right before its consumer.

    Needed when a follower can turn masked zeros into non-zeros (a sigmoid, a depthwise bias, noise).

    Args:
      mask_fn: returns the producer's float channel mask.
      repeats: positions a Flatten interleaved (1 without a Flatten).
    """

    def __init__(self, mask_fn: MaskFn, repeats: int = 1, **kwargs: Any):
        super().__init__(**kwargs)
        self._mask_fn = mask_fn
        self.repeats = repeats

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return x * tf.cast(repeated_mask(self._mask_fn, self.repeats), x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "repeats": self.repeats}


class LinkedBatchNorm(ElasticBatchNorm):
    """An ElasticBatchNorm converted from a user's BatchNormalization, optionally masked by a producer.

    ``training=None`` means inference (as in ``tf_keras.layers.BatchNormalization``).

    Args:
      mask_fn: the producer's channel mask (None: all channels always active).
      momentum / epsilon: as the user's layer.
    """

    def __init__(self, mask_fn: MaskFn | None = None, momentum: float = 0.99, epsilon: float = 1e-3, **kwargs: Any):
        super().__init__(momentum=momentum, epsilon=epsilon, **kwargs)
        self._mask_fn = mask_fn

    def call(self, x: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        active = None if self._mask_fn is None else self._mask_fn()
        return super().call(x, training=False if training is None else training, active=active)


class LinkedLowRank(LowRank):
    """A low-rank Dense whose input channels may follow a width-elastic producer.

    With an input mask, the forward pass truncates the SVD of the kernel with inactive input rows
    zeroed, which equals the truncated SVD of the row-sliced kernel that materialisation uses (a zero
    row adds no singular direction). The effective rank is capped by the kept rows.

    Args:
      layer: a Dense layer.
      ranks: rank fractions of the full ``min(in, out)``.
      mask_fn: the producer's channel mask (None: the input is fixed).
      repeats: positions a Flatten interleaved into the input (1 without a Flatten).
    """

    def __init__(
        self,
        layer: tf_keras.layers.Dense,
        ranks: Sequence[float] = DEFAULT_RANKS,
        mask_fn: MaskFn | None = None,
        repeats: int = 1,
        **kwargs: Any,
    ):
        if type(layer) is not tf_keras.layers.Dense:
            raise ValueError(f"LinkedLowRank wraps Dense layers, got {type(layer).__name__}")
        super().__init__(layer, ranks, **kwargs)
        self._mask_fn = mask_fn
        self.repeats = repeats

    def truncated_kernel(self) -> tf.Tensor:
        """The (row-masked) kernel projected onto its top-r left singular vectors (r = active rank)."""
        w = self.layer.kernel
        if self._mask_fn is not None:
            w = w * tf.cast(repeated_mask(self._mask_fn, self.repeats), w.dtype)[:, None]
        _, u, _ = tf.linalg.svd(tf.stop_gradient(w), full_matrices=False)
        r = tf.gather(self._counts_tensor, self._choice)
        u_r = u * tf.cast(tf.range(self.full_rank) < r, w.dtype)
        return tf.matmul(u_r, tf.matmul(u_r, w, transpose_a=True))

    def effective_rank(self, fraction: float, n_rows: int) -> int:
        """Rank kept at ``fraction`` when ``n_rows`` input rows are kept."""
        return min(self.rank_for(fraction), n_rows, self.n_out)

    def _rows(self, rows: np.ndarray | None) -> np.ndarray:
        return np.arange(self.n_in) if rows is None else rows

    def row_factors(self, fraction: float, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``A`` (rows x r) and ``B`` (r x out) with ``A @ B`` the rank-r truncation of the row-sliced kernel."""
        rows = self._rows(rows)
        r = self.effective_rank(fraction, len(rows))
        s, u, v = tf.linalg.svd(tf.gather(self.layer.kernel, rows), full_matrices=False)
        return (u[:, :r] * s[:r]).numpy(), tf.transpose(v[:, :r]).numpy()

    def splits(self, fraction: float, rows: np.ndarray | None = None) -> bool:
        """True when materialisation emits two factor layers (they hold fewer weights than one)."""
        n = len(self._rows(rows))
        return self.effective_rank(fraction, n) * (n + self.n_out) < n * self.n_out

    def materialize_rows(self, x: tf.Tensor, fraction: float, rows: np.ndarray | None = None) -> tf.Tensor:
        """Applies plain Dense layer(s) holding the rank-``fraction`` weight of the kept ``rows`` to ``x``."""
        layer = self.layer
        bias = [layer.bias.numpy()] if layer.use_bias else []
        activation = tf_keras.activations.serialize(layer.activation)
        a, b = self.row_factors(fraction, rows)
        if self.splits(fraction, rows):
            first = tf_keras.layers.Dense(a.shape[1], use_bias=False)
            second = tf_keras.layers.Dense(self.n_out, use_bias=layer.use_bias, activation=activation)
            h = first(x)
            first.set_weights([a])
            y = second(h)
            second.set_weights([b, *bias])
            return y
        single = tf_keras.layers.Dense(self.n_out, use_bias=layer.use_bias, activation=activation)
        y = single(x)
        single.set_weights([a @ b, *bias])
        return y

    def cost_rows(self, fraction: float, positions: int, rows: np.ndarray | None = None) -> Cost:
        """Cost of :meth:`materialize_rows` applied at ``positions`` positions (1 for a flat input)."""
        n = len(self._rows(rows))
        bias = self.n_out if self.layer.use_bias else 0
        if self.splits(fraction, rows):
            r = self.effective_rank(fraction, n)
            kernel = r * (n + self.n_out)
            act = positions * max(n + r, r + self.n_out)
            return Cost(kernel + bias, positions * kernel, kernel, r + self.n_out, act)
        kernel = n * self.n_out
        return Cost(kernel + bias, positions * kernel, kernel, self.n_out, positions * (n + self.n_out))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "repeats": self.repeats}
