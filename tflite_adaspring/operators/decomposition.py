"""Convolution-decomposition operator: a residual block with alternative branches.

Each block holds three branches with their own weights, all trained in the ensemble:

- ``std``: standard ``k x k`` conv -> BN -> ReLU -> ``k x k`` conv -> BN (ResNet basic block);
- ``dws``: MobileNetV2-style inverted residual: 1x1 expand -> BN -> ReLU -> depthwise ``k x k`` -> BN
  -> ReLU -> 1x1 project -> BN;
- ``fire``: SqueezeNet-style: 1x1 squeeze -> BN -> ReLU -> [1x1 expand ‖ ``k x k`` expand] -> BN.

The block output is ``ReLU(x + branch(x))``. The op knob picks the branch (``tf.switch_case``, so
only the chosen branch runs and nothing retraces); the width knob scales each branch's inner
channels (expand / squeeze / first conv) through an :class:`ElasticWidth` whose followers (BN,
depthwise conv, consumer's input channels) are sliced and permuted consistently.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras

from tflite_adaspring.cost import Cost
from tflite_adaspring.operators.base import ChoiceVariableMixin, CompressionOperator, Knob
from tflite_adaspring.operators.batchnorm import ElasticBatchNorm
from tflite_adaspring.operators.slicing import sliced_batchnorm, sliced_conv_or_dense, sliced_depthwise
from tflite_adaspring.operators.width import DEFAULT_WIDTHS, ElasticWidth, importance_order
from tflite_adaspring.space import OP_DEPTHWISE_SEPARABLE, OP_FIRE, OP_STANDARD, BlockChoice

# (variable, axis, permutation): how a channel re-sort moves one variable.
Permutation = tuple[tf.Variable, int, np.ndarray]


def _conv(filters: int, kernel: tuple[int, int]) -> tf_keras.layers.Conv2D:
    return tf_keras.layers.Conv2D(filters, kernel, padding="same", use_bias=False)


def _bn_vars(bn: ElasticBatchNorm) -> list[tf.Variable]:
    return [bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance]


def _conv_cost(positions: int, k_area: int, c_in: int, c_out: int) -> Cost:
    """A bias-free conv followed by BN (4 params per channel); exported with a folded bias."""
    kernel = k_area * c_in * c_out
    return Cost(kernel + 4 * c_out, positions * kernel, kernel, c_out, positions * (c_in + c_out))


class Branch(tf_keras.layers.Layer, abc.ABC):
    """One alternative computation of a residual block, with an elastic inner width."""

    op: str

    def __init__(self, channels: int, kernel: tuple[int, int], widths: Sequence[float], **kwargs: Any):
        super().__init__(**kwargs)
        self.channels = channels
        self.kernel = tuple(kernel)
        self.k_area = int(np.prod(self.kernel))
        self.widths = tuple(widths)

    @property
    @abc.abstractmethod
    def width_op(self) -> ElasticWidth:
        """The operator owning the inner width."""

    @abc.abstractmethod
    def materialize(self, x: tf.Tensor, width: float) -> tf.Tensor:
        """Applies plain layers for ``width`` to symbolic ``x`` (returns the branch output, pre-residual)."""

    @abc.abstractmethod
    def cost(self, width: float, positions: int) -> Cost:
        """Cost of the materialised branch at ``positions`` spatial positions."""

    @abc.abstractmethod
    def channel_permutations(self) -> list[Permutation]:
        """How re-sorting the inner channels by importance moves each variable."""

    def inner_mask(self) -> tf.Tensor:
        """Mask of active inner channels."""
        return self.width_op.output_mask()


class StandardBranch(Branch):
    """``k x k`` conv -> BN -> ReLU -> ``k x k`` conv -> BN."""

    op = OP_STANDARD

    def build(self, input_shape: tf.TensorShape) -> None:
        c, inner = self.channels, self.channels
        self.conv_a = ElasticWidth(_conv(inner, self.kernel), self.widths)
        self.bn_a = ElasticBatchNorm()
        self.conv_b = _conv(c, self.kernel)
        self.bn_b = ElasticBatchNorm()
        mid_shape = tf.TensorShape([*input_shape[:-1], inner])
        self.conv_a.build(input_shape)
        self.bn_a.build(mid_shape)
        self.conv_b.build(mid_shape)
        self.bn_b.build(tf.TensorShape([*input_shape[:-1], c]))
        super().build(input_shape)

    @property
    def width_op(self) -> ElasticWidth:
        return self.conv_a

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        h = tf.nn.relu(self.bn_a(self.conv_a(x), training=training, active=self.inner_mask()))
        return self.bn_b(self.conv_b(h), training=training)

    def materialize(self, x: tf.Tensor, width: float) -> tf.Tensor:
        m = self.conv_a.count_for(width)
        h = tf_keras.layers.ReLU()(sliced_batchnorm(self.bn_a, self.conv_a.materialize(x, width), m))
        return sliced_batchnorm(self.bn_b, sliced_conv_or_dense(self.conv_b, h, in_keep=m))

    def cost(self, width: float, positions: int) -> Cost:
        m = self.conv_a.count_for(width)
        c = self.channels
        return _conv_cost(positions, self.k_area, c, m) + _conv_cost(positions, self.k_area, m, c)

    def channel_permutations(self) -> list[Permutation]:
        order = importance_order(self.conv_a.layer.kernel.numpy())
        return [
            (self.conv_a.layer.kernel, 3, order),
            *[(v, 0, order) for v in _bn_vars(self.bn_a)],
            (self.conv_b.kernel, 2, order),
        ]


class DepthwiseSeparableBranch(Branch):
    """1x1 expand -> BN -> ReLU -> depthwise -> BN -> ReLU -> 1x1 project -> BN.

    Args:
      expansion: inner channels = ``expansion * channels`` at full width.
    """

    op = OP_DEPTHWISE_SEPARABLE

    def __init__(self, channels: int, kernel: tuple[int, int], widths: Sequence[float], expansion: int = 2, **kw: Any):
        super().__init__(channels, kernel, widths, **kw)
        self.expansion = expansion

    def build(self, input_shape: tf.TensorShape) -> None:
        c, inner = self.channels, self.expansion * self.channels
        mid_shape = tf.TensorShape([*input_shape[:-1], inner])
        self.expand = ElasticWidth(_conv(inner, (1, 1)), self.widths)
        self.bn_a = ElasticBatchNorm()
        self.depthwise = tf_keras.layers.DepthwiseConv2D(self.kernel, padding="same", use_bias=False)
        self.bn_dw = ElasticBatchNorm()
        self.project = _conv(c, (1, 1))
        self.bn_b = ElasticBatchNorm()
        self.expand.build(input_shape)
        self.bn_a.build(mid_shape)
        self.depthwise.build(mid_shape)
        self.bn_dw.build(mid_shape)
        self.project.build(mid_shape)
        self.bn_b.build(tf.TensorShape([*input_shape[:-1], c]))
        super().build(input_shape)

    @property
    def width_op(self) -> ElasticWidth:
        return self.expand

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        mask = self.inner_mask()
        h = tf.nn.relu(self.bn_a(self.expand(x), training=training, active=mask))
        h = tf.nn.relu(self.bn_dw(self.depthwise(h), training=training, active=mask))
        return self.bn_b(self.project(h), training=training)

    def materialize(self, x: tf.Tensor, width: float) -> tf.Tensor:
        m = self.expand.count_for(width)
        h = tf_keras.layers.ReLU()(sliced_batchnorm(self.bn_a, self.expand.materialize(x, width), m))
        h = tf_keras.layers.ReLU()(sliced_batchnorm(self.bn_dw, sliced_depthwise(self.depthwise, h, m), m))
        return sliced_batchnorm(self.bn_b, sliced_conv_or_dense(self.project, h, in_keep=m))

    def cost(self, width: float, positions: int) -> Cost:
        m = self.expand.count_for(width)
        c = self.channels
        dw_kernel = self.k_area * m
        depthwise = Cost(dw_kernel + 4 * m, positions * dw_kernel, dw_kernel, m, positions * 2 * m)
        return _conv_cost(positions, 1, c, m) + depthwise + _conv_cost(positions, 1, m, c)

    def channel_permutations(self) -> list[Permutation]:
        order = importance_order(self.expand.layer.kernel.numpy())
        return [
            (self.expand.layer.kernel, 3, order),
            *[(v, 0, order) for v in _bn_vars(self.bn_a)],
            (self.depthwise.depthwise_kernel, 2, order),
            *[(v, 0, order) for v in _bn_vars(self.bn_dw)],
            (self.project.kernel, 2, order),
        ]


class FireBranch(Branch):
    """1x1 squeeze -> BN -> ReLU -> concat(1x1 expand, ``k x k`` expand) -> BN.

    Args:
      squeeze_ratio: squeeze channels = ``squeeze_ratio * channels`` at full width.
    """

    op = OP_FIRE

    def __init__(
        self, channels: int, kernel: tuple[int, int], widths: Sequence[float], squeeze_ratio: float = 0.5, **kw: Any
    ):
        super().__init__(channels, kernel, widths, **kw)
        self.squeeze_ratio = squeeze_ratio

    def build(self, input_shape: tf.TensorShape) -> None:
        c = self.channels
        s = max(1, int(round(self.squeeze_ratio * c)))
        self.e1_channels = c // 2
        self.ek_channels = c - c // 2
        mid_shape = tf.TensorShape([*input_shape[:-1], s])
        self.squeeze = ElasticWidth(_conv(s, (1, 1)), self.widths)
        self.bn_s = ElasticBatchNorm()
        self.expand_1 = _conv(self.e1_channels, (1, 1))
        self.expand_k = _conv(self.ek_channels, self.kernel)
        self.bn_e = ElasticBatchNorm()
        self.squeeze.build(input_shape)
        self.bn_s.build(mid_shape)
        self.expand_1.build(mid_shape)
        self.expand_k.build(mid_shape)
        self.bn_e.build(tf.TensorShape([*input_shape[:-1], c]))
        super().build(input_shape)

    @property
    def width_op(self) -> ElasticWidth:
        return self.squeeze

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        h = tf.nn.relu(self.bn_s(self.squeeze(x), training=training, active=self.inner_mask()))
        e = tf.concat([self.expand_1(h), self.expand_k(h)], axis=-1)
        return self.bn_e(e, training=training)

    def materialize(self, x: tf.Tensor, width: float) -> tf.Tensor:
        m = self.squeeze.count_for(width)
        h = tf_keras.layers.ReLU()(sliced_batchnorm(self.bn_s, self.squeeze.materialize(x, width), m))
        e1 = sliced_conv_or_dense(self.expand_1, h, in_keep=m)
        ek = sliced_conv_or_dense(self.expand_k, h, in_keep=m)
        return sliced_batchnorm(self.bn_e, tf_keras.layers.Concatenate()([e1, ek]))

    def cost(self, width: float, positions: int) -> Cost:
        m = self.squeeze.count_for(width)
        c = self.channels
        e1 = self.e1_channels * m
        ek = self.k_area * m * self.ek_channels
        expand = Cost(
            e1 + ek + 4 * c,
            positions * (e1 + ek),
            e1 + ek,
            c,
            positions * max(m + c, 2 * c),  # squeeze output + both expands, then the concat's in + out
        )
        return _conv_cost(positions, 1, c, m) + expand

    def channel_permutations(self) -> list[Permutation]:
        order = importance_order(self.squeeze.layer.kernel.numpy())
        return [
            (self.squeeze.layer.kernel, 3, order),
            *[(v, 0, order) for v in _bn_vars(self.bn_s)],
            (self.expand_1.kernel, 2, order),
            (self.expand_k.kernel, 2, order),
        ]


BRANCH_TYPES: dict[str, type[Branch]] = {
    OP_STANDARD: StandardBranch,
    OP_DEPTHWISE_SEPARABLE: DepthwiseSeparableBranch,
    OP_FIRE: FireBranch,
}


class DecompositionBlock(ChoiceVariableMixin, tf_keras.layers.Layer, CompressionOperator):
    """A residual block whose op (branch) and inner width are knobs.

    Args:
      channels: input = output channels.
      kernel: spatial kernel, e.g. ``(3, 3)`` for images, ``(1, 5)`` for time series.
      ops: the branch choices.
      widths: inner-width choices.
    """

    def __init__(
        self,
        channels: int,
        kernel: tuple[int, int],
        ops: Sequence[str] = (OP_STANDARD, OP_DEPTHWISE_SEPARABLE, OP_FIRE),
        widths: Sequence[float] = DEFAULT_WIDTHS,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        unknown = [op for op in ops if op not in BRANCH_TYPES]
        if unknown:
            raise ValueError(f"unknown ops {unknown}; choose from {sorted(BRANCH_TYPES)}")
        self.channels = channels
        self.kernel = tuple(kernel)
        self.ops = tuple(ops)
        self.widths = tuple(widths)
        self.branches = [BRANCH_TYPES[op](channels, self.kernel, self.widths, name=op) for op in self.ops]

    @property
    def knob(self) -> Knob:
        return Knob("op", self.ops)

    def build(self, input_shape: tf.TensorShape) -> None:
        for branch in self.branches:
            branch.build(input_shape)
        self._add_choice_variable(0)
        super().build(input_shape)

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        fns = [lambda b=b: b(x, training=training) for b in self.branches]
        y = fns[0]() if len(fns) == 1 else tf.switch_case(tf.convert_to_tensor(self._choice), fns)
        return tf.nn.relu(x + y)

    def branch(self, op: str) -> Branch:
        """The branch implementing ``op``."""
        return self.branches[self.knob.index(op)]

    def set_block_choice(self, choice: BlockChoice) -> None:
        """Activates ``choice`` (op and width) eagerly."""
        self.set_choice(choice.op)
        for branch in self.branches:
            branch.width_op.set_choice(choice.width)

    def assign_codes(self, op_index: tf.Tensor, width_index: tf.Tensor) -> None:
        """Activates the choice given as integer codes (usable inside a ``tf.function``)."""
        self._choice.assign(op_index)
        for branch in self.branches:
            branch.width_op.choice_variable().assign(width_index)

    def materialize(self, x: tf.Tensor, choice: BlockChoice) -> tf.Tensor:
        """Applies plain layers for ``choice`` to symbolic ``x``."""
        y = self.branch(choice.op).materialize(x, choice.width)
        return tf_keras.layers.ReLU()(tf_keras.layers.Add()([x, y]))

    def cost(self, choice: BlockChoice, positions: int) -> Cost:
        """Cost of the materialised block (the residual input stays alive across the branch)."""
        branch = self.branch(choice.op).cost(choice.width, positions).holding(positions * self.channels)
        return branch + Cost(peak_activation_elems=positions * 3 * self.channels)

    def channel_permutations(self) -> list[Permutation]:
        """Re-sort permutations of every branch."""
        return [p for branch in self.branches for p in branch.channel_permutations()]
