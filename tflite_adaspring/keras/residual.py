"""Residual blocks ``x -> f(x) -> Add([x, f(x)]) [-> activation]`` and runs of them that can be shortened.

A block is an ``Add`` of two same-shaped tensors ``x`` and ``y`` where ``y`` depends on ``x`` and the
branch (every node between ``x`` and ``y``) is closed: it reads only ``x`` and its own tensors, and
nothing outside the block reads the branch's tensors. A single elementwise activation that is the
Add's only reader belongs to the block, so a skipped block is exactly the identity.

A run is a chain of blocks where each block's ``x`` is the previous block's output and nothing else
reads it. Blocks after the first of a run are skippable: the run's depth knob keeps a prefix.
Blocks nested inside another block's branch are not considered.
"""

from __future__ import annotations

import dataclasses

import tf_keras

from tflite_adaspring.keras.graph import GraphNode, LayerGraph
from tflite_adaspring.keras.layer_kinds import is_activation


@dataclasses.dataclass(eq=False)
class ResidualBlock:
    """One residual block.

    Attributes:
      x: id of the skip input.
      out: id of the block output (the Add's, or its activation's).
      add: the Add node.
      nodes: branch nodes, the Add and the activation, in topological order.
    """

    x: str
    out: str
    add: GraphNode
    nodes: list[GraphNode]


@dataclasses.dataclass(eq=False)
class ResidualRun:
    """Consecutive residual blocks; every block after the first can be skipped.

    Attributes:
      name: the run's name (its depth knob is ``<name>.depth``).
      blocks: the blocks in order.
    """

    name: str
    blocks: list[ResidualBlock]

    @property
    def knob(self) -> str:
        """Name of the depth knob."""
        return f"{self.name}.depth"

    @property
    def nodes(self) -> list[GraphNode]:
        """Every node of the run, in order."""
        return [n for block in self.blocks for n in block.nodes]


def _block_at(graph: LayerGraph, add: GraphNode) -> ResidualBlock | None:
    if type(add.layer) is not tf_keras.layers.Add or len(add.inputs) != 2 or graph.calls(add.layer) != 1:
        return None
    for x, y in (add.inputs, add.inputs[::-1]):
        if x == y or graph.shape(x) != graph.shape(y) or y not in graph.producer:
            continue
        y_node = graph.producer[y]
        inside = (graph.ancestors(y_node) | {y_node.index}) & graph.descendants(x)
        if y_node.index not in inside:
            continue
        produced = {t for i in inside for t in graph.nodes[i].outputs}
        closed = all(
            all(t == x or t in produced for t in graph.nodes[i].inputs)
            and all(
                not graph.is_output(t) and all(c.index in inside or c is add for c in graph.consumers[t])
                for t in graph.nodes[i].outputs
            )
            for i in inside
        )
        if not closed:
            continue
        nodes = [graph.nodes[i] for i in sorted(inside)] + [add]
        out = add.output
        readers = graph.consumers[out]
        if not graph.is_output(out) and len(readers) == 1 and is_activation(readers[0].layer):
            post = readers[0]
            if len(post.inputs) == 1 and graph.calls(post.layer) == 1:
                nodes.append(post)
                out = post.output
        return ResidualBlock(x, out, add, nodes)
    return None


def find_blocks(graph: LayerGraph) -> list[ResidualBlock]:
    """Every top-level residual block (not nested in another block's branch), in topological order."""
    blocks = [b for b in (_block_at(graph, n) for n in graph.nodes) if b is not None]
    inner = {id(b) for b in blocks for outer in blocks if outer is not b and b.add in outer.nodes}
    return [b for b in blocks if id(b) not in inner]


def _continues(graph: LayerGraph, previous: ResidualBlock, block: ResidualBlock) -> bool:
    if block.x != previous.out or graph.is_output(previous.out):
        return False
    return all(reader in block.nodes for reader in graph.consumers[previous.out])


def find_runs(graph: LayerGraph) -> tuple[list[ResidualRun], list[ResidualBlock]]:
    """Runs of two or more consecutive blocks, and the blocks that stand alone.

    Returns:
      ``(runs, single blocks)``; runs are named ``residual0``, ``residual1``, ... in topological order.
    """
    chains: list[list[ResidualBlock]] = []
    chain_ending_at: dict[str, list[ResidualBlock]] = {}
    for block in find_blocks(graph):
        chain = chain_ending_at.pop(block.x, None)
        if chain is not None and _continues(graph, chain[-1], block):
            chain.append(block)
        else:
            chain = [block]
            chains.append(chain)
        chain_ending_at[block.out] = chain
    runs = [c for c in chains if len(c) > 1]
    singles = [c[0] for c in chains if len(c) == 1]
    return [ResidualRun(f"residual{i}", blocks) for i, blocks in enumerate(runs)], singles
