"""Which LiteRT interpreter to run on: ``ai_edge_litert`` (preferred) or, only when that package is
missing, TensorFlow's deprecated ``tf.lite.Interpreter`` (imported lazily, never otherwise)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from tflite_adaspring.errors import MissingDependencyError


@dataclasses.dataclass(frozen=True)
class Backend:
    """The three LiteRT entry points the runtime uses.

    Attributes:
      name: ``ai_edge_litert`` or ``tensorflow``.
      interpreter_class: the ``Interpreter`` class.
      op_resolver_type: the ``OpResolverType`` enum.
      load_delegate: the ``load_delegate(library, options)`` function.
    """

    name: str
    interpreter_class: type
    op_resolver_type: Any
    load_delegate: Any


@functools.lru_cache(maxsize=1)
def backend() -> Backend:
    """Returns the backend (resolved once per process).

    Raises:
      MissingDependencyError: neither ai-edge-litert nor TensorFlow is installed.
    """
    try:
        from ai_edge_litert import interpreter as litert
    except ImportError:
        try:
            import tensorflow as tf
        except ImportError as exc:
            raise MissingDependencyError(
                "the runtime needs ai-edge-litert: pip install 'ai-edge-litert>=2.3,<2.4'"
            ) from exc
        return Backend(
            "tensorflow", tf.lite.Interpreter, tf.lite.experimental.OpResolverType, tf.lite.experimental.load_delegate
        )
    return Backend("ai_edge_litert", litert.Interpreter, litert.OpResolverType, litert.load_delegate)
