"""The operators of one signature of a ``.tflite`` model as :class:`OpSpec` (read without TensorFlow).

Constant tensors are those with buffer data and the outputs of operators whose inputs are all constant
(the ``DEQUANTIZE`` of float16 weights): such weight-unpacking operators run once at load time and are
left out, as are constant inputs (weights, biases, axes, shapes).
"""

from __future__ import annotations

from typing import Any

from tflite_adaspring.metadata import tflite_schema, unpack_model
from tflite_adaspring.profiling.ops import OpSpec

_WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_INT8 = 9  # TensorType.INT8


def builtin_names() -> dict[int, str]:
    """Builtin operator code -> name."""
    schema = tflite_schema()
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def signature_ops(model_bytes: bytes, key: str) -> list[OpSpec]:
    """Lists the operators the signature ``key`` runs per invoke.

    Args:
      model_bytes: a .tflite model.
      key: a signature key of the model.

    Returns:
      The operators in execution order.

    Raises:
      KeyError: no such signature (the message lists the keys).
    """
    model = unpack_model(model_bytes)
    keys = [_text(sd.signatureKey) for sd in model.signatureDefs or []]
    if key not in keys:
        raise KeyError(f"no signature {key!r}; the model has {keys}")
    graph = model.subgraphs[model.signatureDefs[keys.index(key)].subgraphIndex]
    return subgraph_ops(model, graph)


def subgraph_ops(model: Any, graph: Any) -> list[OpSpec]:
    """Lists the per-invoke operators of an unpacked subgraph (see the module docstring)."""
    names = builtin_names()
    tensors = graph.tensors
    constant = {
        i for i, t in enumerate(tensors) if t.buffer > 0 and model.buffers[t.buffer].data is not None and len(
            model.buffers[t.buffer].data)
    }  # fmt: skip
    out: list[OpSpec] = []
    for op in graph.operators or []:
        code = model.operatorCodes[op.opcodeIndex]
        name = names[max(code.builtinCode, code.deprecatedBuiltinCode)]
        inputs = [i for i in op.inputs if i >= 0]
        if all(i in constant for i in inputs):
            constant.update(op.outputs)
            continue
        act_inputs = [i for i in inputs if i not in constant]
        consts = [i for i in inputs if i in constant]
        options = op.builtinOptions
        weight = None
        if name in _WEIGHTED or (name in ("MUL", "ADD") and consts):
            weight = tuple(int(d) for d in tensors[consts[0]].shape)
        bias = name in _WEIGHTED and len(op.inputs) > 2 and op.inputs[2] >= 0
        stride = (1, 1)
        if options is not None and hasattr(options, "strideH"):
            stride = (int(options.strideH), int(options.strideW))
        pool = (int(options.filterHeight), int(options.filterWidth)) if name == "MAX_POOL_2D" else None
        act = getattr(options, "fusedActivationFunction", 0) if options is not None else 0
        dtypes = {tensors[i].type for i in [*act_inputs, *op.outputs]}
        out.append(
            OpSpec(
                op=name,
                inputs=tuple(tuple(int(d) for d in tensors[i].shape) for i in act_inputs),
                output=tuple(int(d) for d in tensors[op.outputs[0]].shape),
                weight=weight,
                bias=bias,
                stride=stride,
                pool=pool,
                activation={0: "NONE", 1: "RELU"}.get(int(act), f"ACT{act}"),
                dtype="int8" if _INT8 in dtypes else "float32",
            )
        )
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
