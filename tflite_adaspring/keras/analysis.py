"""Decides, layer by layer, which knob (if any) applies to a user's model.

Rules (in this order):

1. **Depth.** Runs of two or more consecutive same-shape residual blocks get a depth knob; every
   block after the first can be skipped (see :mod:`tflite_adaspring.keras.residual`).
2. **Rank.** A Dense layer gets a rank knob (truncated SVD, :class:`LinkedLowRank`) when its matrix
   is at least ``min_rank_dim`` in both dimensions. The output layer qualifies too: low rank keeps
   its output width.
3. **Width.** Every other Conv1D/Conv2D/Dense gets a width knob when its output channels reach
   exactly one Conv1D/Conv2D/Dense (the consumer, which may itself have a rank knob) through
   channelwise followers only - BatchNormalization, elementwise activations, dropouts, pooling,
   padding, cropping, up-sampling, DepthwiseConv2D (multiplier 1) and at most one channels-last
   Flatten (the consumer's input rows ``p * C + c`` follow) - with no fan-out, no merge (Add,
   Concatenate, ...) and no model output on the way. So the layer producing a model output, layers
   feeding residual Adds, and layers feeding unknown layers keep their width.

Every plain channels-last BatchNormalization becomes an :class:`ElasticBatchNorm` (so statistics
can be recalibrated per configuration); one without ``center``/``scale`` gets a fixed beta of 0 /
gamma of 1 that becomes trainable (noted in the report). Layers called more than once, layers named
in ``exclude`` and unknown layer types are left as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import tf_keras

from tflite_adaspring.keras.graph import GraphNode, LayerGraph
from tflite_adaspring.keras.knob_space import KnobSpace, KnobSpec
from tflite_adaspring.keras.layer_kinds import (
    ELEMENTWISE_TYPES,
    SPATIAL_TYPES,
    batchnorm_problem,
    follower_problem,
    is_kernel_layer,
    preserves_zero,
)
from tflite_adaspring.keras.report import (
    ROLE_DEPTH,
    ROLE_FOLLOWS,
    ROLE_KEPT,
    ROLE_RANK,
    ROLE_WIDTH,
    ElasticReport,
    LayerEntry,
)
from tflite_adaspring.keras.residual import ResidualRun, find_runs
from tflite_adaspring.operators.base import channel_counts

L = tf_keras.layers
KNOWN_TYPES = (
    *ELEMENTWISE_TYPES,
    *SPATIAL_TYPES,
    L.Conv1D,
    L.Conv2D,
    L.Dense,
    L.DepthwiseConv2D,
    L.BatchNormalization,
    L.Flatten,
    L.Add,
    L.InputLayer,
)


@dataclasses.dataclass(frozen=True)
class ElasticOptions:
    """What ``make_elastic`` may change.

    Attributes:
      widths: width fractions, ascending (None: no width knobs).
      ranks: rank fractions, ascending (None: no rank knobs).
      depth: give runs of residual blocks a depth knob.
      min_rank_dim: smallest ``min(in, out)`` of a Dense matrix that gets a rank knob.
      exclude: names of layers to leave as they are.
    """

    widths: tuple[float, ...] | None = (0.25, 0.5, 0.75, 1.0)
    ranks: tuple[float, ...] | None = (0.125, 0.25, 0.5, 1.0)
    depth: bool = True
    min_rank_dim: int = 16
    exclude: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name, values in (("widths", self.widths), ("ranks", self.ranks)):
            if values is not None and (
                not values or list(values) != sorted(values) or not all(0 < v <= 1 for v in values)
            ):
                raise ValueError(f"{name} must be ascending fractions in (0, 1] (or None), got {values}")
            if values is not None and values[-1] != 1.0:
                raise ValueError(f"{name} must end at 1.0 (the user's full layer), got {values}")
        if self.min_rank_dim < 2:
            raise ValueError(f"min_rank_dim must be >= 2, got {self.min_rank_dim}")


@dataclasses.dataclass(eq=False)
class WidthChain:
    """A width-elastic producer, the channelwise layers its channels flow through, and its consumer.

    Attributes:
      producer: the Conv/Dense node whose output channels are elastic.
      followers: channelwise nodes in order (a Flatten included).
      consumer: the Conv/Dense node whose input channels follow.
      channels: the producer's full output channels.
      repeats: positions a Flatten interleaved into the consumer's input (1 without a Flatten).
      widths: the width choices (fractions giving distinct channel counts).
      needs_mask: a follower may turn zeroed channels into non-zeros, so the consumer's input is masked.
    """

    producer: GraphNode
    followers: list[GraphNode]
    consumer: GraphNode
    channels: int
    repeats: int
    widths: tuple[float, ...]
    needs_mask: bool

    @property
    def knob(self) -> str:
        """Name of the width knob."""
        return f"{self.producer.name}.width"

    def counts(self) -> tuple[int, ...]:
        """Channels kept at each width."""
        return channel_counts(self.channels, self.widths)


@dataclasses.dataclass(eq=False)
class ElasticPlan:
    """The per-node decisions of :func:`analyse`.

    Attributes:
      graph: the user's layer graph.
      chains: width chains by producer node index.
      ranks: rank choices by node index.
      batchnorms: indices of BatchNormalization nodes converted to ElasticBatchNorm.
      runs: runs of skippable residual blocks.
      gates: per node inside a skippable block, ``(depth knob, block position)``.
      report: the per-layer report.
    """

    graph: LayerGraph
    chains: dict[int, WidthChain]
    ranks: dict[int, tuple[float, ...]]
    batchnorms: set[int]
    runs: list[ResidualRun]
    gates: dict[int, tuple[str, int]]
    report: ElasticReport

    def __post_init__(self) -> None:
        self._into = {c.consumer.index: c for c in self.chains.values()}
        self._through = {f.index: c for c in self.chains.values() for f in c.followers}

    def chain_into(self, node: GraphNode) -> WidthChain | None:
        """The chain whose consumer is ``node``."""
        return self._into.get(node.index)

    def chain_through(self, node: GraphNode) -> WidthChain | None:
        """The chain that ``node`` follows."""
        return self._through.get(node.index)

    def steps(self) -> list[GraphNode | ResidualRun]:
        """The graph in topological order with each run of residual blocks as one step (at its last node)."""
        run_of = {n.index: run for run in self.runs for n in run.nodes}
        last = {id(run): max(n.index for n in run.nodes) for run in self.runs}
        out: list[GraphNode | ResidualRun] = []
        for node in self.graph.nodes:
            run = run_of.get(node.index)
            if run is None:
                out.append(node)
            elif node.index == last[id(run)]:
                out.append(run)
        return out

    def space(self) -> KnobSpace:
        """The knob space: knobs ordered by where they act in the graph."""
        anchored: list[tuple[int, KnobSpec]] = []
        for run in self.runs:
            anchored.append((run.blocks[0].nodes[0].index, KnobSpec(run.knob, tuple(range(1, len(run.blocks) + 1)))))
        for index, chain in self.chains.items():
            anchored.append((index, KnobSpec(chain.knob, chain.widths, self.gates.get(index))))
        for index, ranks in self.ranks.items():
            node = self.graph.nodes[index]
            anchored.append((index, KnobSpec(f"{node.name}.rank", ranks, self.gates.get(index))))
        anchored.sort(key=lambda item: item[0])
        return KnobSpace(self.graph.model.name, tuple(spec for _, spec in anchored))


def distinct_choices(fractions: Sequence[float], full: int) -> tuple[float, ...]:
    """The fractions that give distinct counts of ``full`` (the largest fraction of each count)."""
    by_count: dict[int, float] = {}
    for fraction, count in zip(fractions, channel_counts(full, fractions)):
        by_count[count] = fraction
    return tuple(by_count[c] for c in sorted(by_count))


class _Analyser:
    """Holds the graph, options and decisions while :func:`analyse` runs."""

    def __init__(self, graph: LayerGraph, options: ElasticOptions):
        unknown = sorted(options.exclude - {n.name for n in graph.nodes})
        if unknown:
            raise ValueError(f"exclude names layers that are not in model {graph.model.name!r}: {unknown}")
        self.graph = graph
        self.options = options
        self.why: dict[int, list[str]] = {}  # why a node keeps its width or rank / is not converted

    def note(self, node: GraphNode, reason: str) -> None:
        """Records why no knob applies to ``node`` (in one respect)."""
        self.why.setdefault(node.index, []).append(reason)

    def movable(self, node: GraphNode) -> str | None:
        """Why ``node``'s layer may not be changed at all (None when it may)."""
        if node.name in self.options.exclude:
            return "excluded by the caller"
        if self.graph.calls(node.layer) != 1:
            return f"shared layer (called {self.graph.calls(node.layer)} times)"
        return None

    def batchnorms(self) -> set[int]:
        out = set()
        for node in self.graph.nodes:
            if type(node.layer) is not L.BatchNormalization:
                continue
            problem = self.movable(node) or batchnorm_problem(node.layer, len(self.graph.shape(node.inputs[0])))
            if problem is None:
                out.add(node.index)
            else:
                self.note(node, f"BatchNormalization kept: {problem}")
        return out

    def ranks(self) -> dict[int, tuple[float, ...]]:
        out: dict[int, tuple[float, ...]] = {}
        if self.options.ranks is None:
            return out
        for node in self.graph.nodes:
            if type(node.layer) is not L.Dense or self.movable(node) is not None:
                continue
            n_in, n_out = (int(d) for d in node.layer.kernel.shape)
            full = min(n_in, n_out)
            choices = distinct_choices(self.options.ranks, full)
            if full < self.options.min_rank_dim:
                self.note(node, f"rank kept: matrix {n_in}x{n_out} is below min_rank_dim={self.options.min_rank_dim}")
            elif len(choices) < 2:
                self.note(node, f"rank kept: the ranks give a single rank of {full}")
            else:
                out[node.index] = choices
        return out

    def chain(self, producer: GraphNode, batchnorms: set[int], gates: dict[int, tuple[str, int]]) -> WidthChain | str:
        """The width chain starting at ``producer``, or why there is none."""
        graph = self.graph
        channels = int(producer.layer.kernel.shape[-1])
        t = producer.output
        followers: list[GraphNode] = []
        repeats = 1
        while True:
            if graph.is_output(t):
                return "its output is a model output"
            readers = graph.consumers[t]
            if len(readers) != 1:
                return f"its output feeds {len(readers)} layers ({', '.join(r.name for r in readers)})"
            reader = readers[0]
            problem = self.movable(reader)
            if problem is not None:
                return f"its output feeds {reader.name!r}: {problem}"
            if reader.inputs != (t,):
                return f"its output feeds {reader.name!r} ({type(reader.layer).__name__}) with other inputs"
            if gates.get(reader.index) != gates.get(producer.index):
                return f"its output leaves its skippable residual block at {reader.name!r}"
            if is_kernel_layer(reader.layer):
                if int(reader.layer.kernel.shape[-2]) != channels * repeats:
                    return f"its channels do not map onto the input of {reader.name!r}"
                break
            rank = len(graph.shape(t))
            if type(reader.layer) is L.Flatten and repeats == 1 and reader.layer.data_format == "channels_last":
                repeats = graph.numel(t) // channels
            elif repeats > 1 and type(reader.layer) not in ELEMENTWISE_TYPES:
                return f"its output feeds {reader.name!r} ({type(reader.layer).__name__}) after a Flatten"
            else:
                problem = follower_problem(reader.layer, rank)
                if problem is None and type(reader.layer) is L.BatchNormalization and reader.index not in batchnorms:
                    problem = "; ".join(self.why.get(reader.index, ["BatchNormalization cannot be converted"]))
                if problem is not None:
                    return f"its output feeds {reader.name!r}: {problem}"
            followers.append(reader)
            t = reader.output
        widths = distinct_choices(self.options.widths or (), channels)
        if len(widths) < 2:
            return f"{channels} output channel(s): the widths give a single channel count"
        needs_mask = not all(preserves_zero(f.layer) for f in followers)
        return WidthChain(producer, followers, reader, channels, repeats, widths, needs_mask)

    def chains(
        self, ranks: dict[int, tuple[float, ...]], batchnorms: set[int], gates: dict[int, tuple[str, int]]
    ) -> dict[int, WidthChain]:
        out: dict[int, WidthChain] = {}
        if self.options.widths is None:
            return out
        for node in self.graph.nodes:
            if not is_kernel_layer(node.layer) or node.index in ranks:
                continue
            problem = self.movable(node)
            found = self.chain(node, batchnorms, gates) if problem is None else problem
            if isinstance(found, WidthChain):
                out[node.index] = found
            else:
                self.note(node, f"width kept: {found}")
        return out


def analyse(graph: LayerGraph, options: ElasticOptions) -> ElasticPlan:
    """Decides the knobs of every layer (see the module docstring).

    Args:
      graph: the user's layer graph.
      options: what may change.

    Returns:
      The plan, with its report.
    """
    analyser = _Analyser(graph, options)
    runs, singles = find_runs(graph) if options.depth else ([], [])
    for block in singles:
        analyser.note(block.add, "lone residual block: a run needs 2+ consecutive blocks (the first always runs)")
    gates = {n.index: (run.knob, b) for run in runs for b, block in enumerate(run.blocks) if b > 0 for n in block.nodes}
    batchnorms = analyser.batchnorms()
    ranks = analyser.ranks()
    chains = analyser.chains(ranks, batchnorms, gates)
    plan = ElasticPlan(graph, chains, ranks, batchnorms, runs, gates, ElasticReport(()))
    plan.report = _report(plan, analyser.why)
    return plan


def _report(plan: ElasticPlan, notes: dict[int, list[str]]) -> ElasticReport:
    graph = plan.graph
    why = {index: "; ".join(reasons) for index, reasons in notes.items()}
    position = {n.index: (run, b) for run in plan.runs for b, block in enumerate(run.blocks) for n in block.nodes}
    entries = []
    reported: set[int] = set()
    for node in graph.nodes:
        layer = node.layer
        if id(layer) in reported:  # a shared layer is reported once
            continue
        reported.add(id(layer))
        known = type(layer) in KNOWN_TYPES
        default = "no knob applies" if known else f"{type(layer).__name__} is not supported: copied unchanged"
        role, knob, detail = ROLE_KEPT, None, why.get(node.index, default)
        into = plan.chain_into(node)
        through = plan.chain_through(node)
        if node.index in plan.chains:
            chain = plan.chains[node.index]
            role, knob = ROLE_WIDTH, chain.knob
            detail = f"{len(chain.widths)} widths of {chain.channels} channels; consumer {chain.consumer.name!r}"
        elif node.index in plan.ranks:
            role, knob = ROLE_RANK, f"{node.name}.rank"
            n_in, n_out = (int(d) for d in layer.kernel.shape)
            detail = f"truncated SVD of the {n_in}x{n_out} matrix"
        elif through is not None:
            role, knob, detail = ROLE_FOLLOWS, through.knob, "channels follow the producer's width"
        elif into is not None:
            role, knob, detail = ROLE_FOLLOWS, into.knob, f"input channels follow; {why.get(node.index, '')}"
        elif node.index in position and node is position[node.index][0].blocks[position[node.index][1]].add:
            run, b = position[node.index]
            role, knob = ROLE_DEPTH, run.knob
            detail = "first block of the run: always runs" if b == 0 else "skippable block (identity when skipped)"
        if into is not None and role in (ROLE_WIDTH, ROLE_RANK):
            detail += f"; input channels follow {into.knob}"
        if node.index in plan.batchnorms:
            missing = "/".join(name for name, on in (("beta", layer.center), ("gamma", layer.scale)) if not on)
            conversion = "converted to ElasticBatchNorm" + (f" (added trainable {missing})" if missing else "")
            detail = conversion if role == ROLE_KEPT else f"{detail}; {conversion}"
        block = None
        if node.index in position:
            run, b = position[node.index]
            block = f"{run.name} block {b + 1}/{len(run.blocks)}"
        entries.append(LayerEntry(layer.name, type(layer).__name__, role, knob, detail, block, known))
    runs = tuple((run.knob, tuple(b.add.name for b in run.blocks)) for run in plan.runs)
    return ElasticReport(tuple(entries), runs)
