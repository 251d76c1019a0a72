"""The layer graph of a built tf_keras Sequential or Functional model.

Nodes are layer calls (a layer called twice has two nodes), in a topological order; tensors are
identified by ``str(id(keras_tensor))`` like tf_keras' own functional engine does. :meth:`LayerGraph.replay`
re-runs a list of nodes on new tensors through a caller-supplied function, which is how the supernet
and every materialised sub-network are rebuilt from the user's graph.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

import tensorflow as tf
import tf_keras

from tflite_adaspring.errors import ModelFormatError

# (node, positional args, keyword args) -> the layer call's outputs
ApplyFn = Callable[["GraphNode", tuple[Any, ...], dict[str, Any]], Any]


@dataclasses.dataclass(eq=False)
class GraphNode:
    """One call of a layer in the model.

    Attributes:
      index: position in the graph's topological order.
      layer: the user's layer.
      keras_node: tf_keras' node object (holds the call's arguments).
      inputs: ids of the input tensors.
      outputs: ids of the output tensors.
    """

    index: int
    layer: tf_keras.layers.Layer
    keras_node: Any
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def name(self) -> str:
        """The layer's name."""
        return self.layer.name

    @property
    def output(self) -> str:
        """The id of the only output tensor."""
        return self.outputs[0]


class LayerGraph:
    """The call graph of a built Sequential/Functional tf_keras model.

    Args:
      model: the model (not modified).

    Raises:
      ModelFormatError: for Keras 3 or subclassed models, or models that are not built.
    """

    def __init__(self, model: tf_keras.Model):
        if not isinstance(model, tf_keras.Model):
            raise ModelFormatError(
                f"make_elastic needs a tf_keras model, got {type(model).__module__}.{type(model).__name__}; "
                "set TF_USE_LEGACY_KERAS=1 before importing TensorFlow and build the model with tf_keras"
            )
        if not getattr(model, "_is_graph_network", False):
            raise ModelFormatError(
                f"model {model.name!r} has no layer graph: subclassed models cannot be analysed, and a Sequential "
                "model must be built first (give the first layer an input_shape or call model.build(shape))"
            )
        self.model = model
        self.input_ids = tuple(str(id(t)) for t in model.inputs)
        self.output_ids = tuple(str(id(t)) for t in model.outputs)
        self.tensors: dict[str, Any] = {str(id(t)): t for t in model.inputs}
        order = {id(layer): i for i, layer in enumerate(model.layers)}
        keyed = [
            (-depth, order.get(id(node.layer), -1), node)
            for depth, nodes in model._nodes_by_depth.items()
            for node in nodes
            if not node.is_input
        ]
        keyed.sort(key=lambda item: item[:2])
        self.nodes: list[GraphNode] = []
        for i, (_, _, node) in enumerate(keyed):
            outputs = tf.nest.flatten(node.outputs)
            for t in outputs:
                self.tensors[str(id(t))] = t
            self.nodes.append(GraphNode(i, node.layer, node, tuple(node.flat_input_ids), tuple(node.flat_output_ids)))
        self.producer: dict[str, GraphNode] = {t: n for n in self.nodes for t in n.outputs}
        self.consumers: dict[str, list[GraphNode]] = {t: [] for t in self.tensors}
        for node in self.nodes:
            for t in dict.fromkeys(node.inputs):
                self.consumers[t].append(node)
        self._calls: dict[int, int] = {}
        for node in self.nodes:
            self._calls[id(node.layer)] = self._calls.get(id(node.layer), 0) + 1

    # ----- queries ---------------------------------------------------------------------------------
    def calls(self, layer: tf_keras.layers.Layer) -> int:
        """How many times ``layer`` is called in the model."""
        return self._calls.get(id(layer), 0)

    def shape(self, tensor_id: str) -> tuple[int | None, ...]:
        """Static shape of a tensor (batch dimension first, ``None``)."""
        return tuple(self.tensors[tensor_id].shape)

    def numel(self, tensor_id: str) -> int:
        """Elements of one example of a tensor.

        Raises:
          ModelFormatError: when a dimension is unknown.
        """
        dims = self.shape(tensor_id)[1:]
        if any(d is None for d in dims):
            raise ModelFormatError(
                f"tensor {self.tensors[tensor_id].name} has an unknown dimension {dims}; costs need fixed input shapes"
            )
        return math.prod(dims)  # type: ignore[arg-type]

    def is_output(self, tensor_id: str) -> bool:
        """True for a model output."""
        return tensor_id in self.output_ids

    def ancestors(self, node: GraphNode) -> set[int]:
        """Indices of every node ``node`` depends on (itself excluded)."""
        seen: set[int] = set()
        stack = [self.producer[t] for t in node.inputs if t in self.producer]
        while stack:
            current = stack.pop()
            if current.index not in seen:
                seen.add(current.index)
                stack += [self.producer[t] for t in current.inputs if t in self.producer]
        return seen

    def descendants(self, tensor_id: str) -> set[int]:
        """Indices of every node that depends on a tensor."""
        seen: set[int] = set()
        stack = list(self.consumers[tensor_id])
        while stack:
            current = stack.pop()
            if current.index not in seen:
                seen.add(current.index)
                for t in current.outputs:
                    stack += self.consumers[t]
        return seen

    # ----- replay ----------------------------------------------------------------------------------
    def replay(self, nodes: Iterable[GraphNode], tensors: MutableMapping[str, Any], apply: ApplyFn) -> None:
        """Runs ``nodes`` (in order) on new tensors.

        Args:
          nodes: nodes of this graph, topologically ordered.
          tensors: tensor id -> new tensor; must hold every input the nodes read; outputs are added.
          apply: called as ``apply(node, args, kwargs)`` with the node's call arguments mapped to new
            tensors; returns the new outputs (same structure as the node's).
        """
        for node in nodes:
            missing = [t for t in node.inputs if t not in tensors]
            if missing:
                raise ValueError(f"replay of {node.name!r}: inputs {missing} are not computed yet")
            args, kwargs = _mapped_arguments(node, tensors)
            outputs = tf.nest.flatten(apply(node, args, kwargs))
            if len(outputs) != len(node.outputs):
                raise ValueError(f"replay of {node.name!r} gave {len(outputs)} outputs, expected {len(node.outputs)}")
            tensors.update(zip(node.outputs, outputs))


def _mapped_arguments(node: GraphNode, tensors: MutableMapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The node's call arguments with every graph tensor replaced by its new tensor."""

    def swap(value: Any) -> Any:
        key = str(id(value))
        return tensors[key] if key in node.inputs else value

    kn = node.keras_node
    return tuple(tf.nest.map_structure(swap, list(kn.call_args))), tf.nest.map_structure(swap, dict(kn.call_kwargs))
