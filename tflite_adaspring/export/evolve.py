"""Evolve export: the backbone weights once plus a small graph skeleton per configuration.

The file is a valid single-signature ``.tflite`` of the largest float32 configuration (what a plain
LiteRT program runs: the most accurate one) carrying the ``adaspring`` table (``storage_mode: "evolve"``)
and the ``adaspring_evolve`` container (:mod:`tflite_adaspring.runtime.evolve_store`): the supernet
tensors the other configurations use, each configuration's recalibrated BatchNorm statistics, and one
skeleton per configuration - its converted subgraph with every weight buffer emptied and replaced by a
recipe. Kernels that the primary graph holds whole (its convolutions, depthwise convolutions and dense
layers, BatchNorm folded) are not stored again: the container names them as graph tensors, which the
reader unfolds, so the backbone's weights are in the file once. The container is one xz stream, so what
the file adds to the backbone is mostly the statistics and the branches the backbone lacks.

Recipes are not guessed from the converter's layout: every float constant of every configuration's
converted subgraph is matched against the candidates the supernet can derive for that configuration
(:class:`RecipeBuilder`, mirroring ``ResidualCNN.materialize``), evaluated with the runtime's own numpy
code. A constant no candidate reproduces within :data:`TOLERANCE` (:data:`SVD_TOLERANCE` for the head's
SVD factors, whose float32 singular vectors differ between TF and LAPACK) fails the export.
Configurations exported as fp16 or int8 keep their (quantised) weights in their skeleton.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from tflite_adaspring.errors import ModelFormatError
from tflite_adaspring.metadata import (
    pack_model,
    read_metadata,
    tflite_schema,
    unpack_model,
    write_metadata,
    write_metadata_entry,
)
from tflite_adaspring.runtime.evolve_store import (
    EVOLVE_METADATA_NAME,
    GRAPH_KINDS,
    Skeleton,
    StrippedBuffer,
    WeightDeriver,
    align,
    pack_container,
)
from tflite_adaspring.space import Config
from tflite_adaspring.supernet import Supernet

TOLERANCE = 1e-5
SVD_TOLERANCE = 1e-4
_SVD_KINDS = ("svd_first", "svd_second")
_FLOAT32 = 0  # TensorType.FLOAT32
_PLACEHOLDER_OFFSET = 1 << 40  # any value > 1 with a fixed encoded size while the layout is computed


def _compact(values: np.ndarray) -> np.ndarray:
    """float16 when that holds ``values`` exactly (recalibrated statistics are rounded to it), else float32."""
    values = np.asarray(values, np.float32)
    half = values.astype(np.float16)
    return half if np.array_equal(half.astype(np.float32), values) else values


class RecipeBuilder:
    """Collects the supernet tensors and the candidate recipes of each configuration.

    Args:
      supernet: the trained supernet with per-configuration BatchNorm statistics stored
        (:meth:`Supernet.recalibrate` with ``store=True``).
    """

    def __init__(self, supernet: Supernet):
        self.supernet = supernet
        self.tensors: dict[str, np.ndarray] = {}
        self._bn_index = {id(bn): i for i, bn in enumerate(supernet.batchnorms())}

    def _var(self, name: str, variable: Any) -> str:
        if name not in self.tensors:
            self.tensors[name] = np.asarray(variable.numpy(), np.float32)
        return name

    def _bn(self, name: str, layer: Any, n: int, stats: list[tuple[np.ndarray, np.ndarray]], key: str) -> dict:
        mean, var = stats[self._bn_index[id(layer)]]
        self.tensors[f"stats.{key}.{name}.mean"] = _compact(mean[:n])
        self.tensors[f"stats.{key}.{name}.var"] = _compact(var[:n])
        return {
            "gamma": self._var(f"{name}.gamma", layer.gamma),
            "beta": self._var(f"{name}.beta", layer.beta),
            "mean": f"stats.{key}.{name}.mean",
            "var": f"stats.{key}.{name}.var",
            "eps": float(layer.epsilon),
            "n": int(n),
        }

    def candidates(self, config: Config, key: str) -> list[dict[str, Any]]:
        """Every weight the converted subnet of ``config`` may hold, as recipes.

        Args:
          config: the configuration (its BatchNorm statistics must be stored).
          key: its signature key (names its statistics tensors).

        Returns:
          Recipes; ``svd_first``/``svd_second`` get their ``align`` tensor when matched.

        Raises:
          ModelFormatError: the configuration's statistics were never recalibrated.
        """
        stats = self.supernet.bn_statistics.get(config.with_precision("fp32"))
        if stats is None:
            raise ModelFormatError(
                f"no recalibrated BatchNorm statistics for {config.id}: pass calibration batches to the export"
            )
        net = self.supernet.net
        out: list[dict[str, Any]] = []

        def conv_bn(name: str, conv: Any, bn: Any, bn_name: str, keep_in: int | None, keep_out: int | None) -> None:
            n = keep_out or int(conv.kernel.shape[-1])
            ref = self._bn(bn_name, bn, n, stats, key)
            kernel = self._var(f"{name}.kernel", conv.kernel)
            out.append({"kind": "conv", "kernel": kernel, "in": keep_in, "out": keep_out, "bn": ref})
            out.append({"kind": "bias", "bias": None, "out": n, "bn": ref})

        conv_bn("stem.conv", net.stem_conv, net.stem_bn, "stem.bn", None, None)
        for s, stage in enumerate(net.stages):
            for b, (block, choice) in enumerate(zip(stage.blocks, config.stages[s])):
                self._block(f"stage{s}.block{b}.{choice.op}", block.branch(choice.op), choice.width, conv_bn, out,
                            stats, key)  # fmt: skip
            if s < len(net.transitions):
                conv, bn = net.transitions[s]
                conv_bn(f"transition{s}.conv", conv, bn, f"transition{s}.bn", None, None)
        out += self._head(config)
        classifier = net.classifier
        out.append({"kind": "dense", "kernel": self._var("classifier.kernel", classifier.kernel)})
        out.append({"kind": "bias", "bias": self._var("classifier.bias", classifier.bias),
                    "out": int(classifier.bias.shape[0]), "bn": None})  # fmt: skip
        return out

    def _block(self, p: str, branch: Any, width: float, conv_bn: Any, out: list, stats: list, key: str) -> None:
        m = branch.width_op.count_for(width)
        if branch.op == "std":
            conv_bn(f"{p}.conv_a", branch.conv_a.layer, branch.bn_a, f"{p}.bn_a", None, m)
            conv_bn(f"{p}.conv_b", branch.conv_b, branch.bn_b, f"{p}.bn_b", m, None)
        elif branch.op == "dws":
            conv_bn(f"{p}.expand", branch.expand.layer, branch.bn_a, f"{p}.bn_a", None, m)
            ref = self._bn(f"{p}.bn_dw", branch.bn_dw, m, stats, key)
            kernel = self._var(f"{p}.depthwise.kernel", branch.depthwise.depthwise_kernel)
            out.append({"kind": "depthwise", "kernel": kernel, "out": m, "bn": ref})
            out.append({"kind": "bias", "bias": None, "out": m, "bn": ref})
            conv_bn(f"{p}.project", branch.project, branch.bn_b, f"{p}.bn_b", m, None)
        elif branch.op == "fire":
            conv_bn(f"{p}.squeeze", branch.squeeze.layer, branch.bn_s, f"{p}.bn_s", None, m)
            for name, conv in (("expand_1", branch.expand_1), ("expand_k", branch.expand_k)):
                kernel = self._var(f"{p}.{name}.kernel", conv.kernel)
                out.append({"kind": "conv", "kernel": kernel, "in": m, "out": None, "bn": None})
                out.append({"kind": "zeros", "shape": [int(conv.kernel.shape[-1])]})
            ref = self._bn(f"{p}.bn_e", branch.bn_e, branch.channels, stats, key)
            out += [{"kind": "bn_scale", "bn": ref}, {"kind": "bn_shift", "bn": ref}]
        else:
            raise ModelFormatError(f"the evolve export does not know branch op {branch.op!r}")

    def _head(self, config: Config) -> list[dict[str, Any]]:
        head = self.supernet.net.head
        rank = head.rank_for(config.head_rank)
        kernel = self._var("head.kernel", head.layer.kernel)
        bias = {"kind": "bias", "bias": self._var("head.bias", head.layer.bias), "out": head.n_out, "bn": None}
        if head.factorizes(rank):
            return [{"kind": "svd_first", "kernel": kernel, "rank": rank},
                    {"kind": "svd_second", "kernel": kernel, "rank": rank}, bias]  # fmt: skip
        return [{"kind": "svd_product", "kernel": kernel, "rank": rank}, bias]


@dataclasses.dataclass(frozen=True)
class Match:
    """How one converted constant is derived.

    Attributes:
      tensor: tensor index in the subgraph.
      recipe: the recipe (SVD factors name their fitted ``align`` tensor).
      max_abs_diff: derived vs converter constant.
    """

    tensor: int
    recipe: dict[str, Any]
    max_abs_diff: float


def procrustes(canonical: np.ndarray, target: np.ndarray, kind: str) -> np.ndarray:
    """The orthogonal ``r x r`` matrix mapping canonical SVD factors closest onto the converter's.

    Args:
      canonical: the unaligned derived factor (``svd_first``: ``[r, in]``; ``svd_second``: ``[out, r]``).
      target: the converter's constant of the same shape.
      kind: ``svd_first`` or ``svd_second``.

    Returns:
      ``Q`` (float32) minimising ``|| columns @ Q - target columns ||`` (components as columns).
    """
    columns, wanted = (canonical.T, target.T) if kind == "svd_first" else (canonical, target)
    u, _, vt = np.linalg.svd(columns.astype(np.float64).T @ wanted.astype(np.float64))
    return (u @ vt).astype(np.float32)


def _fit(
    recipe: dict[str, Any], target: np.ndarray, deriver: WeightDeriver, tensors: dict[str, np.ndarray]
) -> tuple[dict[str, Any], float, dict[str, np.ndarray]]:
    """Evaluates a candidate against a constant.

    An SVD factor reuses the ``align`` tensor of its (kernel, rank) when one exists, else fits one to
    this constant (:func:`fit_align`; returned as pending: stored only if this candidate is chosen).

    Returns:
      ``(recipe, max abs diff, pending tensors)``.
    """
    pending: dict[str, np.ndarray] = {}
    if recipe["kind"] in _SVD_KINDS:
        name = f"{recipe['kernel']}.align.r{recipe['rank']}"
        if name not in tensors:
            pending[name] = fit_align(deriver.derive(recipe), target, recipe["kind"])
        recipe = {**recipe, "align": name}
    tensors.update(pending)
    try:
        diff = float(np.max(np.abs(deriver.derive(recipe) - target), initial=0.0))
    finally:
        for name in pending:
            del tensors[name]
    return recipe, diff, pending


def fit_align(canonical: np.ndarray, target: np.ndarray, kind: str) -> np.ndarray:
    """The ``align`` tensor mapping canonical SVD factors onto the converter's (see evolve_store).

    The two bases usually differ only in the signs of their vectors (plus float32 noise): then the
    ``r`` signs alone (float16, exact) are stored, when they reproduce ``target`` within half of
    :data:`SVD_TOLERANCE` (a margin for the other factor of the pair, which reuses them); otherwise the
    orthogonal Procrustes matrix.

    Args:
      canonical: the unaligned derived factor (``svd_first``: ``[r, in]``; ``svd_second``: ``[out, r]``).
      target: the converter's constant of the same shape.
      kind: ``svd_first`` or ``svd_second``.

    Returns:
      ``(r,)`` signs or the ``(r, r)`` float32 matrix.
    """
    q = procrustes(canonical, target, kind)
    signs = np.where(np.diag(q) < 0, -1.0, 1.0).astype(np.float16)
    signed = canonical * (signs[:, None] if kind == "svd_first" else signs[None, :])
    return signs if float(np.max(np.abs(signed - target), initial=0.0)) <= SVD_TOLERANCE / 2 else q


def match_constants(
    constants: dict[int, np.ndarray],
    candidates: list[dict[str, Any]],
    deriver: WeightDeriver,
    tensors: dict[str, np.ndarray],
) -> tuple[list[Match], list[int]]:
    """Finds, for every float constant, the candidate that reproduces it.

    Args:
      constants: tensor index -> the converter's constant.
      candidates: the configuration's recipes.
      deriver: evaluates recipes (over ``tensors``).
      tensors: the stored tensors; fitted ``align`` tensors of chosen SVD factors are added.

    Returns:
      ``(matches, unmatched tensor indices)``.
    """
    shaped: dict[tuple[int, ...], list[dict[str, Any]]] = {}
    for recipe in candidates:
        shaped.setdefault(deriver.derive(recipe).shape, []).append(recipe)
    matches, unmatched = [], []
    for index, target in constants.items():
        best: tuple[float, dict[str, Any], dict[str, np.ndarray]] | None = None
        for recipe in shaped.get(tuple(target.shape), []):
            fitted, diff, pending = _fit(recipe, target, deriver, tensors)
            tol = SVD_TOLERANCE if recipe["kind"] in (*_SVD_KINDS, "svd_product") else TOLERANCE
            if diff <= tol and (best is None or diff < best[0]):
                best = (diff, fitted, pending)
        if best is None:
            unmatched.append(index)
            continue
        tensors.update(best[2])
        matches.append(Match(index, best[1], best[0]))
    return matches, unmatched


# ---------------------------------------------------------------------------------------------
# flatbuffer surgery


def _constants(model: Any, subgraph: int) -> dict[int, np.ndarray]:
    """Float32 constant tensors of a subgraph: tensor index -> array (LiteRT layout)."""
    out = {}
    for i, t in enumerate(model.subgraphs[subgraph].tensors):
        data = model.buffers[t.buffer].data
        if t.type == _FLOAT32 and data is not None and len(data):
            shape = tuple(int(d) for d in t.shape) if t.shape is not None else ()
            out[i] = np.frombuffer(np.asarray(data, np.uint8).tobytes(), np.float32).reshape(shape)
    return out


def extract_signature(model: Any, subgraph: int, strip: dict[int, dict[str, Any]] | None = None) -> tuple[bytes, list]:
    """One subgraph of a multi-signature model as a standalone single-signature model.

    Args:
      model: the unpacked (object API) multi-signature model; not modified.
      subgraph: the subgraph index.
      strip: tensor index -> recipe for weights to leave out of the file: their buffers point past the
        end of the flatbuffer (None: keep every weight).

    Returns:
      ``(flatbuffer, stripped)`` where ``stripped`` lists :class:`StrippedBuffer` in offset order; the
      runnable model is the flatbuffer followed by the stripped weights at their offsets.
    """
    schema = tflite_schema()
    strip = strip or {}
    graph = copy.deepcopy(model.subgraphs[subgraph])
    signature = copy.deepcopy(next(s for s in model.signatureDefs if s.subgraphIndex == subgraph))
    signature.subgraphIndex = 0
    io = {int(i) for i in (*graph.inputs, *graph.outputs)}
    buffers, remap, stripped = [schema.BufferT()], {}, []
    for i, tensor in enumerate(graph.tensors):
        if i not in io:
            tensor.name = f"t{i}"  # names are not needed to run; long converter names would dominate the size
        source = model.buffers[tensor.buffer]
        if i in strip:
            buffer = schema.BufferT()
            buffer.offset, buffer.size = _PLACEHOLDER_OFFSET, len(source.data)
            stripped.append((len(buffers), i, buffer))
            tensor.buffer = len(buffers)
            buffers.append(buffer)
        elif source.data is None or not len(source.data):
            tensor.buffer = 0
        else:
            if tensor.buffer not in remap:
                remap[tensor.buffer] = len(buffers)
                buffers.append(schema.BufferT(data=np.asarray(source.data, np.uint8)))
            tensor.buffer = remap[tensor.buffer]
    single = schema.ModelT()
    single.version, single.description = model.version, model.description
    single.operatorCodes = copy.deepcopy(model.operatorCodes)
    single.subgraphs, single.signatureDefs = [graph], [signature]

    def pack() -> bytes:
        single.buffers = list(buffers)
        return pack_model(single)

    flatbuffer = pack()
    if not stripped:
        return flatbuffer, []
    cursor, layout = align(len(flatbuffer)), []
    for _, tensor_index, buffer in stripped:
        buffer.offset = cursor
        t = graph.tensors[tensor_index]
        layout.append(StrippedBuffer(cursor, tuple(int(d) for d in t.shape), "float32", strip[tensor_index]))
        cursor = align(cursor + buffer.size)
    final = pack()
    if len(final) != len(flatbuffer):  # offsets are fixed-size scalars: the layout cannot move
        raise ModelFormatError("internal error: skeleton size changed when its buffer offsets were set")
    return final, layout


# ---------------------------------------------------------------------------------------------
# the export


def branch_bytes(supernet: Supernet, configs: Sequence[Config]) -> int:
    """Bytes an evolve file stores for ``configs`` beyond the backbone (the largest configuration's weights).

    The largest configuration is the file's primary graph and holds the backbone; every other
    (stage, block, op) branch a configuration uses adds its float32 weights at the widest width any
    configuration uses it, and a fp16/int8 configuration adds its whole quantised weights (kept in its
    skeleton). Used to keep an evolve file near the full model's size.

    Args:
      supernet: the supernet.
      configs: the configurations.

    Returns:
      Bytes beyond the backbone.
    """
    largest = supernet.space.largest()
    widest: dict[tuple[int, int, str], float] = {}
    extra = 0
    for config in configs:
        if config.precision != "fp32":
            extra += supernet.cost(config).weight_bytes(config.precision)
        for s, stage in enumerate(config.stages):
            for b, choice in enumerate(stage):
                if choice.op != largest.stages[s][b].op:
                    key = (s, b, choice.op)
                    widest[key] = max(widest.get(key, 0.0), choice.width)
    blocks = supernet.net.stages
    return extra + 4 * sum(blocks[s].blocks[b].branch(op).cost(w, 1).params for (s, b, op), w in widest.items())


def _configs_of(supernet: Supernet, metadata: Any) -> list[Config]:
    return [supernet.space.config_from_json(row.config) for row in metadata.signatures]


def evolve_from_packed(
    supernet: Supernet, packed: bytes, calibration: Sequence[np.ndarray] | None = None, strict: bool = False
) -> tuple[bytes, dict[str, Any]]:
    """Turns a packed export into an evolve-mode model.

    Args:
      supernet: the supernet the packed model was exported from.
      packed: the packed model (its metadata names the configurations).
      calibration: batches to recalibrate configurations whose statistics the supernet does not hold
        (must be the batches the packed export used).
      strict: raise when a float constant is not derivable; otherwise it stays in its skeleton as it is
        (correct but not shared) and the report lists it under ``underivable``.

    Returns:
      ``(model bytes, report)``. The report holds sizes (``file_bytes``; ``full_model_bytes``: the
      largest configuration alone as a single-signature model; ``supernet_weight_bytes``: every
      trainable supernet weight in float32; the stored tensors, statistics, skeletons (uncompressed)
      and the whole ``adaspring_evolve`` entry) and the worst derivation error per recipe kind.

    Raises:
      ModelFormatError: the packed model is not packed mode, or (``strict``) a weight is not derivable.
    """
    metadata = read_metadata(packed)
    if metadata.storage_mode != "packed":
        raise ModelFormatError(f"evolve_from_packed needs a packed model, got storage_mode {metadata.storage_mode!r}")
    configs = _configs_of(supernet, metadata)
    for config in configs:
        if config.with_precision("fp32") not in supernet.bn_statistics:
            if calibration is None:
                raise ModelFormatError(f"no BatchNorm statistics for {config.id}; pass the export's calibration")
            supernet.recalibrate(config, calibration)
    model = unpack_model(packed)
    subgraphs = {s.signatureKey.decode() if isinstance(s.signatureKey, bytes) else s.signatureKey: s.subgraphIndex
                 for s in model.signatureDefs}  # fmt: skip
    builder = RecipeBuilder(supernet)
    candidates = {
        row.key: builder.candidates(c, row.key)
        for row, c in zip(metadata.signatures, configs)
        if row.precision == "fp32"
    }
    deriver = WeightDeriver(builder.tensors)
    primary = _primary_key(metadata)
    skeletons, worst, underivable, graph_tensors = [], {}, [], {}
    for row in metadata.signatures:
        graph = subgraphs[row.key]
        if row.precision != "fp32":  # quantised weights are not derivable from the float supernet: kept as they are
            matches = []
        else:
            constants = _constants(model, graph)
            matches, unmatched = match_constants(constants, candidates[row.key], deriver, builder.tensors)
            underivable += [{"key": row.key, "tensor": i, "shape": list(constants[i].shape)} for i in unmatched]
            if unmatched and strict:
                i = unmatched[0]
                raise ModelFormatError(
                    f"configuration {row.key}: constant tensor {i} {constants[i].shape} is not derivable from the "
                    "supernet (was the packed model exported from this supernet and these BatchNorm statistics?)"
                )
        for m in matches:
            worst[m.recipe["kind"]] = max(worst.get(m.recipe["kind"], 0.0), m.max_abs_diff)
        if row.key == primary:
            graph_tensors = _graph_tensors(matches, builder.tensors)
            continue
        flatbuffer, layout = extract_signature(model, graph, {m.tensor: m.recipe for m in matches})
        total = align(layout[-1].offset + layout[-1].nbytes) if layout else len(flatbuffer)
        skeletons.append(Skeleton(row.key, flatbuffer, total, tuple(layout)))
    stored = _used_prefixes(skeletons, builder.tensors, graph_tensors)
    container = pack_container(stored, skeletons, graph_tensors)
    main, _ = extract_signature(model, subgraphs[primary])
    evolve_meta = dataclasses.replace(metadata, storage_mode="evolve")
    out = write_metadata_entry(write_metadata(main, evolve_meta), EVOLVE_METADATA_NAME, container)
    largest = max(metadata.signatures, key=lambda r: r.params).key
    full, _ = extract_signature(model, subgraphs[largest])
    report = {
        "file_bytes": len(out),
        "full_model_bytes": len(full),
        "ratio_to_full_model": len(out) / len(full),
        "supernet_weight_bytes": int(sum(int(np.prod(v.shape)) * 4 for v in supernet.model.trainable_variables)),
        "packed_bytes": len(packed),
        "tensor_bytes": int(sum(t.nbytes for t in stored.values())),
        "statistics_bytes": int(sum(t.nbytes for n, t in stored.items() if n.startswith("stats."))),
        "skeleton_bytes": int(sum(len(s.flatbuffer) for s in skeletons)),  # uncompressed
        "container_bytes": len(container),
        "primary_bytes": len(main),
        "primary": primary,
        "graph_tensor_bytes": int(sum(builder.tensors[n].nbytes for n in graph_tensors)),
        "configs": len(metadata.signatures),
        "max_abs_diff": worst,
        "underivable": underivable,
    }
    return out, report


def _primary_key(metadata: Any) -> str:
    """The configuration the file runs itself: the largest float32 one (else the fastest)."""
    fp32 = [r for r in metadata.signatures if r.precision == "fp32"]
    if fp32:
        return max(fp32, key=lambda r: (r.params, r.latency_ms)).key
    return min(metadata.signatures, key=lambda r: r.latency_ms).key


def _graph_tensors(matches: list[Match], tensors: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Supernet kernels the primary graph holds whole: name -> graph reference (see evolve_store).

    Convolutions, depthwise convolutions and dense layers at full extent qualify, and so does a head at
    full rank (its constant is the kernel itself; lower-rank heads are derived from it by SVD).
    """
    out: dict[str, dict[str, Any]] = {}
    for m in matches:
        r = m.recipe
        if r["kind"] == "svd_product" and int(r["rank"]) == min(tensors[r["kernel"]].shape):
            r = {"kind": "dense", "kernel": r["kernel"]}  # a full-rank head is its kernel, transposed
        if r["kind"] not in GRAPH_KINDS or r["kernel"] in out:
            continue
        shape = tensors[r["kernel"]].shape
        full = {"conv": (2, 3), "depthwise": (2,), "dense": (0, 1)}[r["kind"]]
        extent = {"conv": (r.get("in"), r.get("out")), "depthwise": (r.get("out"),),
                  "dense": (r.get("in"), r.get("out"))}[r["kind"]]  # fmt: skip
        if all(e is None or int(e) == shape[axis] for e, axis in zip(extent, full)):
            bn = None if r.get("bn") is None else {f: r["bn"][f] for f in ("gamma", "var", "eps", "n")}  # its scale
            out[r["kernel"]] = {"tensor": int(m.tensor), "kind": r["kind"], "shape": [int(d) for d in shape],
                                "bn": bn}  # fmt: skip
    return out


def _used_prefixes(
    skeletons: list[Skeleton], tensors: dict[str, np.ndarray], graph_tensors: dict[str, dict[str, Any]]
) -> dict[str, np.ndarray]:
    """The tensors the skeletons' recipes and the graph tensors' BatchNorms read, each cut to the largest
    prefix any of them reads, in :func:`_storage_order`; graph tensors themselves are left out (the graph
    holds them).

    Recipes only read prefix slices (``in``/``out``/``n``), so a branch used only at narrow widths
    stores only its narrow part; SVD recipes read their whole kernel.
    """
    extents: dict[str, list[int]] = {}

    def use(name: str | None, limits: dict[int, int | None]) -> None:
        if name is None:
            return
        shape = tensors[name].shape
        current = extents.setdefault(name, [0] * len(shape))
        for axis in range(len(shape)):
            limit = limits.get(axis)
            current[axis] = max(current[axis], shape[axis] if limit is None else min(int(limit), shape[axis]))

    recipes = [b.recipe for skeleton in skeletons for b in skeleton.buffers]
    recipes += [{"kind": "graph", "bn": ref["bn"]} for ref in graph_tensors.values()]
    for r in recipes:
        kind = r["kind"]
        if kind == "conv":
            use(r["kernel"], {0: None, 1: None, 2: r.get("in"), 3: r.get("out")})
        elif kind == "depthwise":
            use(r["kernel"], {2: r.get("out")})
        elif kind == "dense":
            use(r["kernel"], {0: r.get("in"), 1: r.get("out")})
        elif kind == "bias":
            use(r.get("bias"), {0: r["out"]})
        elif kind.startswith("svd_"):
            use(r["kernel"], {})
            use(r.get("align"), {})
        if r.get("bn"):
            for field in ("gamma", "beta", "mean", "var"):
                use(r["bn"].get(field), {0: r["bn"]["n"]})
    return {
        name: np.ascontiguousarray(tensors[name][tuple(slice(0, e) for e in extents[name])])
        for name in sorted(extents, key=_storage_order)
        if name not in graph_tensors
    }


def _storage_order(name: str) -> tuple[str, str]:
    """Sort key placing the statistics of one BatchNorm in every configuration side by side (they compress
    together), after the supernet tensors."""
    if name.startswith("stats."):
        return "~" + name.split(".", 2)[2], name  # stats.<key>.<layer>.mean
    return "", name
