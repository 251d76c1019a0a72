"""Tiny multi-signature .tflite models built straight from the flatbuffer schema (no TensorFlow).

The device benchmarks must run where TensorFlow is absent, so their tests build models the way a device
would receive them, without the converter: signature ``cfgNN`` is one FULLY_CONNECTED (+ReLU) layer from a
``(1, IN_FEATURES)`` input to ``(1, width)``.
"""

from __future__ import annotations

import numpy as np

from tflite_adaspring.metadata import pack_model, tflite_schema, write_metadata
from tflite_adaspring.profiling.ops import OpSpec

IN_FEATURES = 32


def fc_spec(width: int) -> OpSpec:
    """The operator of the signature of ``width`` (as the latency table keys it)."""
    return OpSpec("FULLY_CONNECTED", ((1, IN_FEATURES),), (1, width), (width, IN_FEATURES), True, activation="RELU")


def fc_model(widths: tuple[int, ...] = (8, 64, 256), signatures: bool = True, seed: int = 0) -> bytes:
    """One subgraph (and signature ``cfg00``, ``cfg01``, ...) per width.

    Args:
      widths: output width of each signature's layer.
      signatures: False builds a single-subgraph model without signature defs (``widths[0]`` only).
      seed: weight seed.

    Returns:
      The model bytes.
    """
    s = tflite_schema()
    rng = np.random.default_rng(seed)
    buffers = [s.BufferT()]
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.FULLY_CONNECTED
    code.version = 1
    subgraphs, signature_defs = [], []
    for index, width in enumerate(widths if signatures else widths[:1]):
        tensors: list = []

        def tensor(name: str, shape: tuple[int, ...], data: np.ndarray | None = None, into: list = tensors) -> int:
            buffer = s.BufferT()
            if data is not None:
                buffer.data = np.frombuffer(data.astype(np.float32).tobytes(), np.uint8)
            buffers.append(buffer)
            t = s.TensorT()
            t.name, t.shape, t.type = name, np.asarray(shape, np.int32), s.TensorType.FLOAT32
            t.buffer = len(buffers) - 1
            into.append(t)
            return len(into) - 1

        x = tensor(f"x{index}", (1, IN_FEATURES))
        w = tensor(f"w{index}", (width, IN_FEATURES), rng.normal(0, 0.2, (width, IN_FEATURES)))
        b = tensor(f"b{index}", (width,), rng.normal(0, 0.1, width))
        y = tensor(f"y{index}", (1, width))
        op = s.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = 0, np.asarray([x, w, b], np.int32), np.asarray([y], np.int32)
        op.builtinOptionsType = s.BuiltinOptions.FullyConnectedOptions
        op.builtinOptions = s.FullyConnectedOptionsT()
        op.builtinOptions.fusedActivationFunction = s.ActivationFunctionType.RELU
        graph = s.SubGraphT()
        graph.tensors, graph.operators, graph.name = tensors, [op], f"graph{index}"
        graph.inputs, graph.outputs = np.asarray([x], np.int32), np.asarray([y], np.int32)
        subgraphs.append(graph)
        signature = s.SignatureDefT()
        signature.signatureKey, signature.subgraphIndex = f"cfg{index:02d}", index
        signature.inputs = [s.TensorMapT(name="x", tensorIndex=x)]
        signature.outputs = [s.TensorMapT(name="y", tensorIndex=y)]
        signature_defs.append(signature)
    model = s.ModelT()
    model.version, model.description = 3, "tflite-adaspring bench test model"
    model.operatorCodes, model.subgraphs, model.buffers = [code], subgraphs, buffers
    model.signatureDefs = signature_defs if signatures else None
    return pack_model(model)


def fc_model_with_metadata(widths: tuple[int, ...] = (8, 64, 256)) -> bytes:
    """:func:`fc_model` carrying ``adaspring`` metadata whose config ids are ``w<width>``."""
    from model_factory import make_metadata

    return write_metadata(fc_model(widths), make_metadata(widths))
