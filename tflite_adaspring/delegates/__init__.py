"""The AdaSpring external TFLite delegate: float32 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED kernels
over strided views of shared weights, loaded into LiteRT (or TensorFlow Lite) as an external delegate.

Typical use::

    from ai_edge_litert.interpreter import Interpreter
    from tflite_adaspring import delegates

    delegate = delegates.load(num_threads=2)
    interpreter = Interpreter(model_path="model.tflite", experimental_delegates=[delegate])
    delegates.stats(delegate).claimed_nodes  # nodes running on the delegate's kernels

This package never imports TensorFlow (see :mod:`tflite_adaspring.delegates.loader`).
"""

from tflite_adaspring.delegates.loader import (
    LIBRARY_ENV,
    LIBRARY_NAME,
    DelegateStats,
    build_info,
    delegate_options,
    is_available,
    last_message,
    library_path,
    load,
    stats,
)
from tflite_adaspring.errors import DelegateBuildError, DelegateError, DelegateNotFoundError

__all__ = [
    "LIBRARY_ENV",
    "LIBRARY_NAME",
    "DelegateBuildError",
    "DelegateError",
    "DelegateNotFoundError",
    "DelegateStats",
    "build_info",
    "delegate_options",
    "is_available",
    "last_message",
    "library_path",
    "load",
    "stats",
]
