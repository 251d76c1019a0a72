"""ElasticModel: a user's tf_keras CNN turned into a supernet with width, rank and depth knobs.

Same interface as :class:`tflite_adaspring.supernet.Supernet` where it applies: ``space``,
``set_config`` / ``assign_codes`` / ``encode``, ``forward``, ``materialize``, ``cost``,
``recalibrate`` / ``using_statistics``, ``batchnorms`` and ``channel_permutations``; plus ``report``.
Configurations are :class:`~tflite_adaspring.keras.knob_space.KnobConfig` of a
:class:`~tflite_adaspring.keras.knob_space.KnobSpace`.

Save the supernet's weights with ``tf.train.Checkpoint(model=elastic.model)`` and restore them into
``make_elastic`` of the same user model; its layers read each other's masks through callables, so
the supernet cannot be re-created from a Keras config. Materialised models are plain and save normally.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras

from tflite_adaspring.cost import Cost
from tflite_adaspring.keras.analysis import ElasticOptions, ElasticPlan, analyse
from tflite_adaspring.keras.build import SupernetLayers, build_supernet
from tflite_adaspring.keras.calibration import StatisticsStore
from tflite_adaspring.keras.graph import LayerGraph
from tflite_adaspring.keras.knob_space import KnobConfig, KnobSpace
from tflite_adaspring.keras.report import ElasticReport
from tflite_adaspring.keras.subnet import Subnet
from tflite_adaspring.operators.base import CompressionOperator
from tflite_adaspring.operators.batchnorm import ElasticBatchNorm
from tflite_adaspring.operators.decomposition import Permutation
from tflite_adaspring.operators.width import importance_order


class ElasticModel:
    """A user's model as a supernet (see :func:`tflite_adaspring.keras.make_elastic`).

    Args:
      source: the user's built Sequential/Functional tf_keras model (not modified).
      options: what may change.

    Attributes:
      model: the trainable supernet (a functional tf_keras model).
      space: the knob space.
      report: what was made elastic and what was left as it is, and why.
      plan: the per-node analysis.
    """

    def __init__(self, source: tf_keras.Model, options: ElasticOptions | None = None):
        self.options = options or ElasticOptions()
        self.plan: ElasticPlan = analyse(LayerGraph(source), self.options)
        self.report: ElasticReport = self.plan.report
        self.space: KnobSpace = self.plan.space()
        self.layers: SupernetLayers = build_supernet(self.plan)
        self.model: tf_keras.Model = self.layers.model  # type: ignore[assignment]
        self._infer = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)
        self._train = tf.function(lambda x: self.model(x, training=True), reduce_retracing=True)
        self.statistics = StatisticsStore(self.batchnorms(), self._train)

    # ----- operators and configuration ---------------------------------------------------------------------
    def operators(self) -> dict[str, CompressionOperator]:
        """The operator owning each knob, by knob name."""
        ops: dict[str, CompressionOperator] = dict(self.layers.depths)
        ops.update({self.plan.chains[i].knob: op for i, op in self.layers.widths.items()})
        ops.update({f"{self.plan.graph.nodes[i].name}.rank": op for i, op in self.layers.ranks.items()})
        return {name: ops[name] for name in self.space.knob_names}

    def set_config(self, config: KnobConfig) -> None:
        """Makes ``config`` active for the following forward passes (no retracing).

        Raises:
          ConfigError: if ``config`` is outside :attr:`space` (naming the knob and its choices).
        """
        config = self.space.validate(config)
        for value, op in zip(config.values, self.operators().values()):
            if value is not None:  # an inactive knob's block is skipped: its value does not matter
                op.set_choice(value)

    def encode(self, config: KnobConfig) -> np.ndarray:
        """``space.encode(config)`` as an int32 array (choice indices aligned with ``space.knob_names``)."""
        return np.asarray(self.space.encode(config), np.int32)

    def assign_codes(self, codes: tf.Tensor) -> None:
        """Activates a config given as :meth:`encode` output (an int32 tensor); usable inside a ``tf.function``."""
        for i, op in enumerate(self.operators().values()):
            op.choice_variable().assign(codes[i])

    # ----- forward, materialise, cost ------------------------------------------------------------------------
    def forward(self, x: Any, config: KnobConfig, training: bool = False) -> tf.Tensor:
        """Supernet output for ``x`` under ``config``.

        Args:
          x: a batch for the model's input.
          config: the configuration.
          training: BatchNorm in training mode (batch statistics) when True.

        Returns:
          The model's output.
        """
        self.set_config(config)
        if training:
            return self.model(x, training=True)
        if len(self.model.inputs) == 1:
            x = tf.convert_to_tensor(x, self.model.inputs[0].dtype)
        return self._infer(x)

    def materialize(self, config: KnobConfig) -> tf_keras.Model:
        """A plain tf_keras model for ``config`` (sliced / truncated weights, skipped blocks left out).

        Uses the BatchNorm statistics stored by :meth:`recalibrate` for ``config``, if any.
        """
        config = self.space.validate(config)
        name = re.sub(r"[^A-Za-z0-9_]", "_", f"{self.plan.graph.model.name}_{config.id}")
        with self.using_statistics(config):
            return Subnet(self.plan, self.layers, config).materialize(name)

    def cost(self, config: KnobConfig) -> Cost:
        """Analytic params, MACs, exported weight elements and activation peak of ``materialize(config)``."""
        return Subnet(self.plan, self.layers, self.space.validate(config)).cost()

    def strip(self, config: KnobConfig | None = None) -> tf_keras.Model:
        """Like ``tfmot``'s ``strip_pruning``: the plain model of ``config`` (default: the largest)."""
        return self.materialize(self.space.largest() if config is None else config)

    # ----- BatchNorm statistics ---------------------------------------------------------------------------------
    def batchnorms(self) -> list[ElasticBatchNorm]:
        """Every converted BatchNorm layer, in graph order."""
        return list(self.layers.batchnorms.values())

    def recalibrate(self, config: KnobConfig, batches: Iterable[Any], store: bool = True) -> None:
        """Re-estimates BatchNorm statistics for ``config`` on calibration batches.

        Args:
          config: the configuration.
          batches: input batches.
          store: keep them for :meth:`materialize` and :meth:`using_statistics`.
        """
        self.set_config(config)
        self.statistics.recalibrate(self.space.validate(config), batches, store)

    @contextlib.contextmanager
    def using_statistics(self, config: KnobConfig) -> Iterator[None]:
        """Within the block, BatchNorm layers hold ``config``'s recalibrated statistics (if stored)."""
        with self.statistics.using(self.space.validate(config)):
            yield

    # ----- channel re-sorting -----------------------------------------------------------------------------------
    def channel_permutations(self) -> list[Permutation]:
        """Importance re-sort of every width-elastic layer's output channels (apply with ``apply_permutations``).

        Each producer's channels are sorted by decreasing L1 norm of their filters; its bias, the
        followers (BatchNorm, depthwise) and the consumer's input rows move with them, so the full
        network computes the same function and a prefix keeps the most important channels.
        """
        out: list[Permutation] = []
        for index, chain in self.plan.chains.items():
            producer = self.layers.widths[index].layer
            order = importance_order(producer.kernel.numpy())
            out.append((producer.kernel, len(producer.kernel.shape) - 1, order))
            if producer.use_bias:
                out.append((producer.bias, 0, order))
            for node in chain.followers:
                layer = self.layers.layer_for(node)
                if isinstance(layer, ElasticBatchNorm):
                    out += [(v, 0, order) for v in (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance)]
                elif type(layer) is tf_keras.layers.DepthwiseConv2D:
                    out.append((layer.depthwise_kernel, 2, order))
                    if layer.use_bias:
                        out.append((layer.bias, 0, order))
            consumer = self.layers.layer_for(chain.consumer)
            kernel = consumer.layer.kernel if isinstance(consumer, tf_keras.layers.Wrapper) else consumer.kernel
            rows = (np.arange(chain.repeats)[:, None] * chain.channels + order[None, :]).reshape(-1)
            out.append((kernel, len(kernel.shape) - 2, rows))
        return out
