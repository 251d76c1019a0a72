"""Which tf_keras layers ``make_elastic`` understands, and how channels flow through them.

Types are matched exactly (``type(layer) is ...``): a subclass may override ``call`` and is treated
as an unknown layer, left as it is.
"""

from __future__ import annotations

import tf_keras

L = tf_keras.layers

# Conv/Dense layers whose output channels can be made elastic and whose input channels can follow.
KERNEL_TYPES = (L.Conv1D, L.Conv2D, L.Dense)

# Layers that act on each channel independently, keeping the channel axis last.
ELEMENTWISE_TYPES = (
    L.ReLU,
    L.LeakyReLU,
    L.ELU,
    L.ThresholdedReLU,
    L.Activation,
    L.Dropout,
    L.SpatialDropout1D,
    L.SpatialDropout2D,
    L.GaussianNoise,
    L.GaussianDropout,
    L.AlphaDropout,
    L.ActivityRegularization,
)
SPATIAL_TYPES = (
    L.MaxPooling1D,
    L.MaxPooling2D,
    L.AveragePooling1D,
    L.AveragePooling2D,
    L.GlobalAveragePooling1D,
    L.GlobalAveragePooling2D,
    L.GlobalMaxPooling1D,
    L.GlobalMaxPooling2D,
    L.ZeroPadding1D,
    L.ZeroPadding2D,
    L.Cropping1D,
    L.Cropping2D,
    L.UpSampling1D,
    L.UpSampling2D,
)
# activations that mix channels (not elementwise)
CHANNEL_MIXING_ACTIVATIONS = ("softmax", "log_softmax")
# activations with f(0) == 0
ZERO_ACTIVATIONS = ("relu", "relu6", "linear", "tanh", "elu", "selu", "gelu", "swish", "silu", "softsign", "mish")


def _activation_name(layer: tf_keras.layers.Layer) -> str:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", str(activation))


def is_kernel_layer(layer: tf_keras.layers.Layer) -> bool:
    """A Conv1D/Conv2D/Dense with channels last and no groups (its channels can be sliced)."""
    if type(layer) not in KERNEL_TYPES:
        return False
    return getattr(layer, "groups", 1) == 1 and getattr(layer, "data_format", "channels_last") == "channels_last"


def is_activation(layer: tf_keras.layers.Layer) -> bool:
    """An elementwise activation layer (ReLU, LeakyReLU, ELU, Activation other than softmax)."""
    if type(layer) is L.Activation:
        return _activation_name(layer) not in CHANNEL_MIXING_ACTIVATIONS
    return type(layer) in (L.ReLU, L.LeakyReLU, L.ELU, L.ThresholdedReLU)


def batchnorm_problem(layer: tf_keras.layers.Layer, input_rank: int) -> str | None:
    """Why a BatchNormalization cannot become an ElasticBatchNorm (None when it can).

    Args:
      layer: the (built) layer.
      input_rank: rank of its input, batch included.
    """
    if type(layer) is not L.BatchNormalization:
        return f"{type(layer).__name__} is not a plain BatchNormalization"
    axes = [a % input_rank for a in (layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis])]
    if axes != [input_rank - 1]:
        return f"normalises axis {layer.axis}, not the channel axis (last)"
    if layer.renorm or layer.virtual_batch_size is not None or layer.adjustment is not None:
        return "uses renorm, virtual batches or an adjustment"
    if getattr(layer, "synchronized", False):
        return "is synchronised across replicas"
    return None


def follower_problem(layer: tf_keras.layers.Layer, input_rank: int) -> str | None:
    """Why channels cannot flow through ``layer`` one by one (None when they can).

    Followers act on every channel independently with the channel axis last: elementwise
    activations and dropouts, pooling, padding, cropping, up-sampling, convertible BatchNorm and
    DepthwiseConv2D with depth multiplier 1.

    Args:
      layer: the layer.
      input_rank: rank of its input, batch included.
    """
    kind = type(layer)
    if kind is L.Activation:
        return None if is_activation(layer) else f"activation {_activation_name(layer)!r} mixes channels"
    if kind in ELEMENTWISE_TYPES:
        return None
    if kind in SPATIAL_TYPES:
        return None if getattr(layer, "data_format", "channels_last") == "channels_last" else "has channels first"
    if kind is L.BatchNormalization:
        return batchnorm_problem(layer, input_rank)
    if kind is L.DepthwiseConv2D:
        if layer.depth_multiplier != 1 or layer.data_format != "channels_last":
            return "is a DepthwiseConv2D with depth multiplier != 1 or channels first"
        return None
    return f"{kind.__name__} mixes or reshapes channels (or is not supported)"


def preserves_zero(layer: tf_keras.layers.Layer) -> bool:
    """True when channels that are exactly zero stay zero through a follower (in training and inference)."""
    kind = type(layer)
    if kind is L.Activation:
        return _activation_name(layer) in ZERO_ACTIVATIONS
    if kind is L.ReLU:
        return float(layer.threshold) == 0.0
    if kind is L.DepthwiseConv2D:
        return not layer.use_bias
    if kind is L.BatchNormalization:  # replaced by an ElasticBatchNorm that masks its output
        return True
    if kind in (L.GaussianNoise, L.AlphaDropout):  # add noise / shift dropped units while training
        return False
    if kind is L.Flatten:
        return True
    return kind in ELEMENTWISE_TYPES or kind in SPATIAL_TYPES
