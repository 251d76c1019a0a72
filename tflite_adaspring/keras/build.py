"""Builds the trainable supernet of an :class:`ElasticPlan`: the user's graph with elastic layers.

Every user layer is replaced by a new layer holding a copy of its weights (the user's model is never
touched): width producers by :class:`ElasticWidth`, rank layers by :class:`LinkedLowRank`, plain
BatchNormalization by :class:`LinkedBatchNorm`, everything else by a clone. Each run of residual
blocks becomes one :class:`ElasticDepth` whose blocks are small functional models over the block's
replacement layers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import tf_keras

from tflite_adaspring.keras.analysis import ElasticPlan
from tflite_adaspring.keras.graph import GraphNode
from tflite_adaspring.keras.layers import ChannelMask, LinkedBatchNorm, LinkedLowRank
from tflite_adaspring.keras.residual import ResidualRun
from tflite_adaspring.keras.slices import clone_layer
from tflite_adaspring.operators.depth import ElasticDepth
from tflite_adaspring.operators.width import ElasticWidth


@dataclasses.dataclass(eq=False)
class SupernetLayers:
    """The supernet and its operators.

    Attributes:
      replacements: user layer id -> the supernet layer standing in for it.
      widths: width operators by producer node index.
      ranks: rank operators by node index.
      batchnorms: converted BatchNorm layers by node index.
      depths: depth operators by depth knob name.
      model: the trainable functional tf_keras model (set once built).
    """

    replacements: dict[int, tf_keras.layers.Layer]
    widths: dict[int, ElasticWidth]
    ranks: dict[int, LinkedLowRank]
    batchnorms: dict[int, LinkedBatchNorm]
    depths: dict[str, ElasticDepth]
    model: tf_keras.Model | None = None

    def layer_for(self, node: GraphNode) -> tf_keras.layers.Layer:
        """The supernet layer standing in for ``node``'s layer."""
        return self.replacements[id(node.layer)]


def _replacements(plan: ElasticPlan) -> SupernetLayers:
    widths: dict[int, ElasticWidth] = {}
    ranks: dict[int, LinkedLowRank] = {}
    batchnorms: dict[int, LinkedBatchNorm] = {}
    replacements: dict[int, tf_keras.layers.Layer] = {}
    for index, chain in plan.chains.items():
        layer = chain.producer.layer
        widths[index] = replacements[id(layer)] = ElasticWidth(clone_layer(layer), chain.widths, name=layer.name)
    for node in plan.graph.nodes:
        layer = node.layer
        if id(layer) in replacements:
            continue
        into = plan.chain_into(node)
        mask_fn = None if into is None else widths[into.producer.index].output_mask
        if node.index in plan.ranks:
            repeats = 1 if into is None else into.repeats
            op = LinkedLowRank(clone_layer(layer), plan.ranks[node.index], mask_fn, repeats, name=layer.name)
            ranks[node.index] = replacements[id(layer)] = op
        elif node.index in plan.batchnorms:
            through = plan.chain_through(node)
            follow = None if through is None else widths[through.producer.index].output_mask
            bn = LinkedBatchNorm(follow, momentum=layer.momentum, epsilon=layer.epsilon, name=layer.name)
            batchnorms[node.index] = replacements[id(layer)] = bn
        else:
            replacements[id(layer)] = clone_layer(layer)
    return SupernetLayers(replacements, widths, ranks, batchnorms, {})


def _copy_weights(plan: ElasticPlan, layers: SupernetLayers) -> None:
    for node in plan.graph.nodes:
        user = node.layer
        new = layers.layer_for(node)
        if node.index in layers.batchnorms:
            c = int(user.moving_mean.shape[0])
            gamma = user.gamma.numpy() if user.scale else np.ones(c, "float32")
            beta = user.beta.numpy() if user.center else np.zeros(c, "float32")
            new.gamma.assign(gamma)
            new.beta.assign(beta)
            new.set_statistics(user.moving_mean.numpy(), user.moving_variance.numpy())
        elif isinstance(new, (ElasticWidth, LinkedLowRank)):
            new.layer.set_weights(user.get_weights())
        else:
            new.set_weights(user.get_weights())


def build_supernet(plan: ElasticPlan) -> SupernetLayers:
    """Builds the supernet of ``plan`` with the user's weights.

    Args:
      plan: the analysis of the user's model.

    Returns:
      The supernet layers and model.
    """
    graph = plan.graph
    layers = _replacements(plan)

    def apply(node: GraphNode, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        chain = plan.chain_into(node)
        if chain is not None and chain.needs_mask:
            mask = ChannelMask(layers.widths[chain.producer.index].output_mask, chain.repeats, name=f"{node.name}_mask")
            args = (mask(args[0]), *args[1:])
        return layers.layer_for(node)(*args, **kwargs)

    def run_layer(run: ResidualRun) -> ElasticDepth:
        blocks = []
        for b, block in enumerate(run.blocks):
            x = graph.tensors[block.x]
            inputs = tf_keras.Input(shape=tuple(x.shape)[1:], dtype=x.dtype, name=f"{run.name}_block{b}_input")
            tensors = {block.x: inputs}
            graph.replay(block.nodes, tensors, apply)
            blocks.append(tf_keras.Model(inputs, tensors[block.out], name=f"{run.name}_block{b}"))
        return ElasticDepth(blocks, min_depth=1, name=run.name)  # type: ignore[arg-type]

    sources = graph.model.inputs
    inputs = [tf_keras.Input(shape=tuple(t.shape)[1:], dtype=t.dtype, name=t.name.split(":")[0]) for t in sources]
    tensors: dict[str, Any] = dict(zip(graph.input_ids, inputs))
    for step in plan.steps():
        if isinstance(step, ResidualRun):
            depth = layers.depths[step.knob] = run_layer(step)
            tensors[step.blocks[-1].out] = depth(tensors[step.blocks[0].x])
        else:
            graph.replay([step], tensors, apply)
    outputs = [tensors[t] for t in graph.output_ids]
    layers.model = tf_keras.Model(
        inputs if len(inputs) > 1 else inputs[0],
        outputs if len(outputs) > 1 else outputs[0],
        name=f"{graph.model.name}_elastic",
    )
    _copy_weights(plan, layers)
    return layers
