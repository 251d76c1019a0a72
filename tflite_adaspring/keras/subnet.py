"""One configuration of an elastic model: its plain tf_keras model and its analytic cost.

Both walk the same list of active nodes (skipped residual blocks left out, their output aliased to
their input) with the same per-node choices, so ``cost(config)`` describes ``materialize(config)``.

Cost conventions (those of :mod:`tflite_adaspring.cost`): ``params`` is the materialised model's
``count_params()``; ``macs`` counts Conv/Depthwise/Dense multiply-accumulates only; kernel and bias
elements assume BatchNorm folded into a bias of every Conv/Dense; weights of other layers (e.g. an
LSTM) count as kernel elements; ``peak_activation_elems`` is the largest sum of live tensors (one
example) while a node runs, executing nodes in graph order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import tf_keras

from tflite_adaspring.cost import Cost
from tflite_adaspring.keras.analysis import ElasticPlan, WidthChain
from tflite_adaspring.keras.build import SupernetLayers
from tflite_adaspring.keras.graph import GraphNode
from tflite_adaspring.keras.knob_space import KnobConfig
from tflite_adaspring.keras.layer_kinds import KERNEL_TYPES
from tflite_adaspring.keras.layers import kept_rows
from tflite_adaspring.keras.residual import ResidualRun
from tflite_adaspring.keras.slices import clone_layer, sliced_kernel_layer
from tflite_adaspring.operators.slicing import sliced_batchnorm, sliced_depthwise


def _positions(layer: tf_keras.layers.Layer, out_shape: tuple[int | None, ...]) -> int:
    """Output positions a Conv/Dense kernel is applied at (spatial dims; none for a flat Dense)."""
    channels_first = getattr(layer, "data_format", "channels_last") == "channels_first"
    dims = out_shape[2:] if channels_first else out_shape[1:-1]
    return math.prod(int(d) for d in dims if d is not None)


@dataclasses.dataclass(frozen=True)
class Alias:
    """Tensor ``target`` is tensor ``source`` (the output of a run whose last blocks are skipped)."""

    source: str
    target: str


class Subnet:
    """The sub-network of one (validated) configuration.

    Args:
      plan: the analysis.
      layers: the supernet layers (their current weights are used).
      config: a config validated against the plan's space.
    """

    def __init__(self, plan: ElasticPlan, layers: SupernetLayers, config: KnobConfig):
        self.plan = plan
        self.layers = layers
        self.config = config
        widths = {i: config[plan.chains[i].knob] for i in layers.widths}
        self.counts = {i: layers.widths[i].count_for(w) for i, w in widths.items() if w is not None}

    # ----- per-node choices ------------------------------------------------------------------------------
    def items(self) -> Iterator[GraphNode | Alias]:
        """Active nodes in order; a shortened run yields its kept blocks' nodes and an alias of its output."""
        for step in self.plan.steps():
            if not isinstance(step, ResidualRun):
                yield step
                continue
            depth = self.config[step.knob]
            for block in step.blocks[:depth]:
                yield from block.nodes
            if depth < len(step.blocks):
                yield Alias(step.blocks[depth - 1].out, step.blocks[-1].out)

    def rows(self, node: GraphNode) -> np.ndarray | None:
        """Input rows (channels) ``node`` keeps, when its input follows a width knob."""
        chain = self.plan.chain_into(node)
        if chain is None:
            return None
        return kept_rows(self.counts[chain.producer.index], chain.channels, chain.repeats)

    def _chain_of_output(self, node: GraphNode) -> WidthChain | None:
        return self.plan.chains.get(node.index) or self.plan.chain_through(node)

    def numel(self, tensor: str) -> int:
        """Elements of one example of a tensor in this sub-network."""
        full = self.plan.graph.numel(tensor)
        producer = self.plan.graph.producer.get(tensor)
        chain = None if producer is None else self._chain_of_output(producer)
        if chain is None:
            return full
        return full // chain.channels * self.counts[chain.producer.index]

    # ----- materialisation -------------------------------------------------------------------------------
    def materialize(self, name: str) -> tf_keras.Model:
        """A plain tf_keras model with weights derived from the supernet's.

        Args:
          name: the model's name.
        """
        graph = self.plan.graph
        sources = graph.model.inputs
        inputs = [tf_keras.Input(shape=tuple(t.shape)[1:], dtype=t.dtype, name=t.name.split(":")[0]) for t in sources]
        tensors: dict[str, Any] = dict(zip(graph.input_ids, inputs))
        copies: dict[int, tf_keras.layers.Layer] = {}

        def apply(node: GraphNode, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            return self._apply(node, args, kwargs, copies)

        for item in self.items():
            if isinstance(item, Alias):
                tensors[item.target] = tensors[item.source]
            else:
                graph.replay([item], tensors, apply)
        outputs = [tensors[t] for t in graph.output_ids]
        return tf_keras.Model(
            inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0], name=name
        )

    def _apply(
        self, node: GraphNode, args: tuple[Any, ...], kwargs: dict[str, Any], copies: dict[int, tf_keras.layers.Layer]
    ) -> Any:
        layers, i = self.layers, node.index
        source = layers.layer_for(node)
        if i in layers.widths:
            return sliced_kernel_layer(source.layer, args[0], self.rows(node), self.counts[i])
        if i in layers.ranks:
            return source.materialize_rows(args[0], self.config[f"{node.name}.rank"], self.rows(node))
        if self.plan.chain_into(node) is not None:
            return sliced_kernel_layer(source, args[0], self.rows(node))
        through = self.plan.chain_through(node)
        keep = None if through is None else self.counts[through.producer.index]
        if i in layers.batchnorms:
            return sliced_batchnorm(source, args[0], keep)
        if keep is not None and type(source) is tf_keras.layers.DepthwiseConv2D:
            return sliced_depthwise(source, args[0], keep)
        copy = copies.get(id(source))
        if copy is None:  # one copy per layer, shared by all its calls
            copy = copies[id(source)] = clone_layer(source, keep_name=False)
            outputs = copy(*args, **kwargs)
            copy.set_weights(source.get_weights())
            return outputs
        return copy(*args, **kwargs)

    # ----- cost --------------------------------------------------------------------------------------------
    def node_cost(self, node: GraphNode) -> Cost:
        """Params, MACs and constants of ``node``'s materialised layer(s); the peak field holds input + output."""
        graph, layers = self.plan.graph, self.layers
        layer = layers.layer_for(node)
        io = sum(self.numel(t) for t in dict.fromkeys(node.inputs)) + sum(self.numel(t) for t in node.outputs)
        positions = _positions(layer, graph.shape(node.outputs[0])) if node.outputs else 0
        rows = self.rows(node)
        if node.index in layers.ranks:
            return layer.cost_rows(self.config[f"{node.name}.rank"], positions, rows)
        kernel_layer = layer.layer if node.index in layers.widths else layer
        if type(kernel_layer) in KERNEL_TYPES:
            shape = kernel_layer.kernel.shape
            c_in = int(shape[-2]) if rows is None else len(rows)
            c_out = self.counts.get(node.index, int(shape[-1]))
            kernel = math.prod(int(d) for d in shape[:-2]) * c_in * c_out
            bias = c_out if kernel_layer.use_bias else 0
            return Cost(kernel + bias, positions * kernel, kernel, c_out, io)
        through = self.plan.chain_through(node)
        if node.index in layers.batchnorms:
            channels = int(layer.moving_mean.shape[0]) if through is None else self.counts[through.producer.index]
            return Cost(4 * channels, 0, 0, 0, io)
        if type(layer) is tf_keras.layers.DepthwiseConv2D:
            channels = int(layer.depthwise_kernel.shape[-2])
            out = (channels if through is None else self.counts[through.producer.index]) * layer.depth_multiplier
            kernel = math.prod(layer.kernel_size) * out
            return Cost(kernel + (out if layer.use_bias else 0), positions * kernel, kernel, out, io)
        params = layer.count_params()
        return Cost(params, 0, params, 0, io)

    def cost(self) -> Cost:
        """Analytic cost of :meth:`materialize`'s model (see the module docstring)."""
        graph = self.plan.graph
        items = list(self.items())
        last_use = {t: len(items) for t in graph.output_ids}
        for position, item in enumerate(items):
            for t in [item.source] if isinstance(item, Alias) else item.inputs:
                last_use[t] = max(last_use.get(t, position), position)
        alive = {t: self.numel(t) for t in graph.input_ids}
        total, peak = Cost(), 0
        counted: set[int] = set()
        for position, item in enumerate(items):
            if isinstance(item, Alias):
                alive[item.target] = alive[item.source]
                reads, produced = [item.source], [item.target]
            else:
                node_cost = self.node_cost(item)
                held = sum(size for t, size in alive.items() if t not in item.inputs)
                peak = max(peak, held + node_cost.peak_activation_elems)
                if id(item.layer) in counted:  # a shared layer's weights count once, its MACs at every call
                    node_cost = dataclasses.replace(node_cost, params=0, kernel_elems=0, bias_elems=0)
                counted.add(id(item.layer))
                total = total + dataclasses.replace(node_cost, peak_activation_elems=0)
                reads, produced = list(item.inputs), list(item.outputs)
                alive.update({t: self.numel(t) for t in produced})
            for t in [*reads, *produced]:
                if last_use.get(t, position) <= position and t in alive:
                    del alive[t]
        return dataclasses.replace(total, peak_activation_elems=peak)
