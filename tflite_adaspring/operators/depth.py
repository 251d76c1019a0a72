"""Depth operator: a stage of residual blocks of which the first ``d`` run; skipped blocks are identity.

The depth knob lives in an int32 variable; blocks beyond the minimum depth run under ``tf.cond``,
so a shallower configuration neither computes nor retraces anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf
import tf_keras

from tflite_adaspring.cost import Cost
from tflite_adaspring.operators.base import ChoiceVariableMixin, CompressionOperator, Knob
from tflite_adaspring.operators.decomposition import DecompositionBlock
from tflite_adaspring.space import BlockChoice


class ElasticDepth(ChoiceVariableMixin, tf_keras.layers.Layer, CompressionOperator):
    """A stage of residual blocks with a depth knob.

    Args:
      blocks: the stage's blocks (same input and output shape).
      min_depth: blocks that always run.
    """

    def __init__(self, blocks: Sequence[DecompositionBlock], min_depth: int = 1, **kwargs: Any):
        super().__init__(**kwargs)
        if not 1 <= min_depth <= len(blocks):
            raise ValueError(f"min_depth must be in 1..{len(blocks)}, got {min_depth}")
        self.blocks = list(blocks)
        self.min_depth = min_depth
        self.depths = tuple(range(min_depth, len(blocks) + 1))

    @property
    def knob(self) -> Knob:
        return Knob("depth", self.depths)

    def build(self, input_shape: tf.TensorShape) -> None:
        for block in self.blocks:
            block.build(input_shape)
        self._depths_tensor = tf.constant(self.depths, tf.int32)
        self._add_choice_variable(len(self.depths) - 1)
        super().build(input_shape)

    def active_depth(self) -> tf.Tensor:
        """Number of blocks that run (int32 scalar tensor)."""
        return tf.gather(self._depths_tensor, self._choice)

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        depth = self.active_depth()
        for i, block in enumerate(self.blocks):
            if i < self.min_depth:
                x = block(x, training=training)
            else:
                x = tf.cond(i < depth, lambda b=block, h=x: b(h, training=training), lambda h=x: tf.identity(h))
        return x

    def set_stage_choice(self, stage: Sequence[BlockChoice]) -> None:
        """Activates a stage choice eagerly: its depth and each kept block's op and width."""
        self.set_choice(len(stage))
        for block, choice in zip(self.blocks, stage):
            block.set_block_choice(choice)

    def materialize(self, x: tf.Tensor, stage: Sequence[BlockChoice]) -> tf.Tensor:
        """Applies plain layers for the kept blocks to symbolic ``x``."""
        for block, choice in zip(self.blocks, stage):
            x = block.materialize(x, choice)
        return x

    def cost(self, stage: Sequence[BlockChoice], positions: int) -> Cost:
        """Cost of the kept blocks."""
        total = Cost()
        for block, choice in zip(self.blocks, stage):
            total = total + block.cost(choice, positions)
        return total
