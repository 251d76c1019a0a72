"""Copies of user layers: unchanged clones for the supernet, and sliced plain layers for sub-networks."""

from __future__ import annotations

from typing import Any

import numpy as np
import tf_keras


def clone_layer(layer: tf_keras.layers.Layer, keep_name: bool = True, **overrides: Any) -> tf_keras.layers.Layer:
    """A new, unbuilt layer with ``layer``'s config (weights are set by the caller after building it).

    Args:
      layer: the source layer.
      keep_name: keep the source's name (otherwise Keras picks a fresh one; nested models keep theirs).
      overrides: config entries to replace, e.g. ``filters``.

    Returns:
      The new layer.
    """
    config = layer.get_config()
    if not keep_name and not isinstance(layer, tf_keras.Model):  # a nested model's config needs its name
        config.pop("name", None)
    config.update(overrides)
    return layer.__class__.from_config(config)


def call_copy(
    layer: tf_keras.layers.Layer, args: tuple[Any, ...], kwargs: dict[str, Any], keep_name: bool = False
) -> Any:
    """Calls an unchanged copy of a built layer (same config and weights) on new arguments.

    Returns:
      The copy's outputs.
    """
    copy = clone_layer(layer, keep_name=keep_name)
    outputs = copy(*args, **kwargs)
    copy.set_weights(layer.get_weights())
    return outputs


def sliced_kernel_layer(
    layer: tf_keras.layers.Layer, x: Any, rows: np.ndarray | None = None, out_keep: int | None = None
) -> Any:
    """Applies a copy of a Conv1D/Conv2D/Dense keeping some input rows and the first output channels.

    Args:
      layer: the built source layer.
      x: symbolic input with ``len(rows)`` channels.
      rows: kept input channels (kernel axis -2), ascending (None: all).
      out_keep: output channels kept (None: all).

    Returns:
      The new layer's output.
    """
    kernel = layer.kernel.numpy()
    out_keep = kernel.shape[-1] if out_keep is None else out_keep
    if rows is not None:
        kernel = np.take(kernel, rows, axis=-2)
    size_key = "units" if isinstance(layer, tf_keras.layers.Dense) else "filters"
    copy = clone_layer(layer, keep_name=False, **{size_key: out_keep})
    y = copy(x)
    weights = [kernel[..., :out_keep]]
    if layer.use_bias:
        weights.append(layer.bias.numpy()[:out_keep])
    copy.set_weights(weights)
    return y
