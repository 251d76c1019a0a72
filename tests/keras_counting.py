"""An independent parameter / MAC counter for plain tf_keras models (test oracle for ``cost()``)."""

import numpy as np
import tf_keras


def count_macs(model: tf_keras.Model) -> int:
    """Multiply-accumulates of every Conv / DepthwiseConv / Dense layer, from Keras' own shapes."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, tf_keras.layers.DepthwiseConv2D):
            out = layer.output_shape
            total += int(np.prod(out[1:-1])) * int(np.prod(layer.depthwise_kernel.shape))
        elif isinstance(layer, (tf_keras.layers.Conv1D, tf_keras.layers.Conv2D)):
            out = layer.output_shape
            total += int(np.prod(out[1:-1])) * int(np.prod(layer.kernel.shape))
        elif isinstance(layer, tf_keras.layers.Dense):
            out = layer.output_shape
            total += int(np.prod(out[1:-1], dtype=np.int64)) * int(np.prod(layer.kernel.shape))
    return total
