"""Flatbuffer post-passes: merge converted models into one, rename and reorder signatures.

Merging concatenates subgraphs and buffers, shares identical operator codes and offsets every index
(tensor buffers, operator codes, signature subgraphs), so models converted with different precisions
become the signatures of one file. No TensorFlow needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tflite_adaspring.errors import ModelFormatError
from tflite_adaspring.metadata import pack_model, tflite_schema, unpack_model

_SUBGRAPH_FIELDS = ("thenSubgraphIndex", "elseSubgraphIndex", "condSubgraphIndex", "bodySubgraphIndex",
                    "initSubgraphIndex", "subgraph")  # fmt: skip
_MIN_RUNTIME = "min_runtime_version"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _version_tuple(raw: Any) -> tuple[int, ...]:
    text = bytes(raw).split(b"\0")[0].decode(errors="replace")
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def merge_models(models: Sequence[bytes]) -> bytes:
    """Merges models with disjoint signature keys into one model holding every signature.

    Args:
      models: .tflite models without control-flow operators.

    Returns:
      The merged model. Metadata entries are kept once by name (the first model's, except
      ``min_runtime_version``, which takes the highest version).

    Raises:
      ModelFormatError: duplicate signature keys, or control-flow operators that reference subgraphs.
    """
    if len(models) == 1:
        return bytes(models[0])
    schema = tflite_schema()
    merged = schema.ModelT()
    merged.version = 3
    merged.description = "tflite-adaspring merged model"
    merged.buffers = [schema.BufferT()]
    merged.operatorCodes, merged.subgraphs, merged.signatureDefs, merged.metadata = [], [], [], []
    codes: dict[tuple[int, int, str, int], int] = {}
    meta_by_name: dict[str, Any] = {}
    keys: set[str] = set()
    for model_bytes in models:
        model = unpack_model(model_bytes)
        buffer_map = {0: 0}
        for i, b in enumerate(model.buffers or []):
            if i:
                merged.buffers.append(b)
                buffer_map[i] = len(merged.buffers) - 1
        code_map = {}
        for i, c in enumerate(model.operatorCodes or []):
            ident = (c.builtinCode, c.deprecatedBuiltinCode, _text(c.customCode or ""), c.version)
            if ident not in codes:
                merged.operatorCodes.append(c)
                codes[ident] = len(merged.operatorCodes) - 1
            code_map[i] = codes[ident]
        offset = len(merged.subgraphs)
        for graph in model.subgraphs or []:
            for t in graph.tensors or []:
                t.buffer = buffer_map[t.buffer]
            for op in graph.operators or []:
                if any(getattr(op.builtinOptions, f, None) is not None for f in _SUBGRAPH_FIELDS):
                    raise ModelFormatError("merge_models does not support control-flow operators")
                op.opcodeIndex = code_map[op.opcodeIndex]
            merged.subgraphs.append(graph)
        for sd in model.signatureDefs or []:
            key = _text(sd.signatureKey)
            if key in keys:
                raise ModelFormatError(f"signature key {key!r} occurs in more than one model")
            keys.add(key)
            sd.subgraphIndex += offset
            merged.signatureDefs.append(sd)
        for entry in model.metadata or []:
            name = _text(entry.name)
            data = merged.buffers[buffer_map[entry.buffer]].data
            if name not in meta_by_name or (
                name == _MIN_RUNTIME
                and _version_tuple(data) > _version_tuple(merged.buffers[meta_by_name[name].buffer].data)
            ):
                entry.buffer = buffer_map[entry.buffer]
                meta_by_name[name] = entry
    merged.metadata = list(meta_by_name.values())
    return pack_model(merged)


def rename_signatures(model_bytes: bytes, renames: Mapping[str, str], order: Sequence[str] | None = None) -> bytes:
    """Renames signatures (and their subgraphs) and optionally reorders the signature list.

    Args:
      model_bytes: a .tflite model.
      renames: old key -> new key (keys not listed keep their name).
      order: the new keys in the wanted order (every signature exactly once), or None.

    Returns:
      The model bytes.

    Raises:
      ModelFormatError: unknown old keys, duplicate new keys, or an order that is not a permutation.
    """
    model = unpack_model(model_bytes)
    defs = model.signatureDefs or []
    old_keys = [_text(sd.signatureKey) for sd in defs]
    unknown = sorted(set(renames) - set(old_keys))
    if unknown:
        raise ModelFormatError(f"cannot rename unknown signatures {unknown}; the model has {old_keys}")
    for sd in defs:
        new = renames.get(_text(sd.signatureKey), _text(sd.signatureKey))
        sd.signatureKey = new
        model.subgraphs[sd.subgraphIndex].name = new
    new_keys = [_text(sd.signatureKey) for sd in defs]
    if len(set(new_keys)) != len(new_keys):
        raise ModelFormatError(f"renaming gives duplicate signature keys: {new_keys}")
    if order is not None:
        if sorted(order) != sorted(new_keys):
            raise ModelFormatError(f"order {list(order)} is not a permutation of the keys {new_keys}")
        position = {k: i for i, k in enumerate(order)}
        model.signatureDefs = sorted(defs, key=lambda sd: position[_text(sd.signatureKey)])
    return pack_model(model)
