"""The abstract interface every compression operator implements (in the spirit of TFMOT's
``PrunableLayer`` / ``PruneLowMagnitude`` / ``strip_pruning``).

An operator

- declares its **knob** (name and choices);
- applies the **active choice** in the supernet's forward pass. The choice lives in a non-trainable
  int32 variable, so changing configuration never retraces a ``tf.function``;
- reports its **cost** for a choice and an input shape;
- **materialises** a choice into plain tf_keras layers whose weights are derived from the shared ones
  (sliced, truncated or selected), never retrained.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import tensorflow as tf
import tf_keras

from tflite_adaspring.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Knob:
    """A named discrete choice of an operator.

    Attributes:
      name: knob name, e.g. ``width`` or ``stage1.depth``.
      choices: the allowed values, in order.
    """

    name: str
    choices: tuple[Any, ...]

    def index(self, choice: Any) -> int:
        """Position of ``choice`` among the choices.

        Raises:
          ConfigError: naming the knob and the allowed values.
        """
        for i, c in enumerate(self.choices):
            if c == choice or (isinstance(c, float) and isinstance(choice, (int, float)) and math.isclose(c, choice)):
                return i
        raise ConfigError(f"{self.name}: {choice!r} not allowed; choose one of {self.choices}")


class CompressionOperator(abc.ABC):
    """Interface of a compression operator (see the module docstring)."""

    @property
    @abc.abstractmethod
    def knob(self) -> Knob:
        """The operator's knob."""

    @abc.abstractmethod
    def set_choice(self, choice: Any) -> None:
        """Makes ``choice`` active for the next forward passes."""

    @abc.abstractmethod
    def choice_variable(self) -> tf.Variable:
        """The int32 variable holding the active choice's index (assign it inside graphs)."""


class ChoiceVariableMixin:
    """Implements the choice bookkeeping of :class:`CompressionOperator` for Keras layers.

    Subclasses call :meth:`_add_choice_variable` in ``build`` and define ``knob``.
    """

    _choice: tf.Variable

    def _add_choice_variable(self, default_index: int) -> None:
        self._choice = self.add_weight(  # type: ignore[attr-defined]
            name="choice",
            shape=(),
            dtype=tf.int32,
            initializer=tf_keras.initializers.Constant(default_index),
            trainable=False,
            # every replica assigns the same config; MirroredStrategy keeps the first replica's value
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )

    def choice_variable(self) -> tf.Variable:
        """The int32 variable holding the active choice's index."""
        return self._choice

    def set_choice(self, choice: Any) -> None:
        """Makes ``choice`` active (validated against the knob)."""
        self._choice.assign(self.knob.index(choice))  # type: ignore[attr-defined]

    def active_choice(self) -> Any:
        """The currently active choice value (eager)."""
        return self.knob.choices[int(self._choice.numpy())]  # type: ignore[attr-defined]


def channel_counts(full: int, fractions: Sequence[float]) -> tuple[int, ...]:
    """Channels kept for each width fraction: ``max(1, round(f * full))``.

    Args:
      full: the full channel count.
      fractions: the width choices.

    Returns:
      One count per fraction.
    """
    return tuple(max(1, int(round(f * full))) for f in fractions)


def prefix_mask(count: tf.Tensor, size: int, dtype: tf.DType = tf.float32) -> tf.Tensor:
    """A ``[size]`` mask with ones in the first ``count`` positions."""
    return tf.cast(tf.range(size) < count, dtype)
