"""Shared helpers of the delegate tests (``tests/test_delegate_*.py``).

* :func:`delegate_library` builds ``libadaspring_delegate.so`` from the current sources into the
  development build folder (a no-op when up to date) or, under Bazel, uses the library in runfiles.
* :func:`conv_fc_model` writes a small CONV_2D -> DEPTHWISE_CONV_2D -> FULLY_CONNECTED model directly
  as a TFLite flatbuffer (no TensorFlow), with a numpy reference of its output.
* :func:`run_model` runs a model with ai_edge_litert, optionally with delegates.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tflite_adaspring import delegates
from tflite_adaspring.delegates import build

TOLERANCE = 1e-4


def delegate_library() -> Path:
    """The delegate library to test: freshly built from the checkout, else the one Bazel provides.

    Returns:
      Path of ``libadaspring_delegate.so``.
    """
    if os.environ.get("TEST_SRCDIR"):
        return delegates.library_path()  # under `bazel test`: the artefact Bazel built (a data dependency)
    return build.build_library(build.default_output_dir())


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Assert equal shapes and values within ``TOLERANCE`` (absolute + relative).

    Args:
      actual: computed values.
      expected: reference values.
      what: label for the failure message.
    """
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=TOLERANCE, atol=TOLERANCE, err_msg=what)


def run_model(
    model: bytes,
    inputs: list[np.ndarray],
    delegate_list: list | None = None,
    input_shapes: list[list[int]] | None = None,
) -> list[np.ndarray]:
    """Run the default signature of ``model`` once with ai_edge_litert.

    Args:
      model: the .tflite flatbuffer.
      inputs: one array per model input, in input order.
      delegate_list: delegates to apply (None: the runtime's defaults only, i.e. XNNPACK).
      input_shapes: resize the inputs to these shapes first.

    Returns:
      The outputs, in output order.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, experimental_delegates=delegate_list)
    details = interpreter.get_input_details()
    for detail, shape in zip(details, input_shapes or [], strict=False):
        interpreter.resize_tensor_input(detail["index"], shape)
    interpreter.allocate_tensors()
    for detail, value in zip(details, inputs, strict=True):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()]


@dataclass(frozen=True)
class FlatbufferModel:
    """A model written without TensorFlow, its input and the numpy reference of its output."""

    content: bytes
    input: np.ndarray
    expected: np.ndarray


def _conv_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: tuple[int, int]) -> np.ndarray:
    # x [H, W, C] (N = 1), w [O, KH, KW, C]; the window slides along W only (H = 1 here).
    x = np.pad(x, ((0, 0), pad, (0, 0)))
    kw = w.shape[2]
    width = (x.shape[1] - kw) // stride + 1
    out = np.zeros((x.shape[0], width, w.shape[0]), np.float64)
    for i in range(width):
        patch = x[:, i * stride : i * stride + kw, :]
        out[:, i, :] = np.einsum("hkc,okc->ho", patch, w[:, 0])
    return out + b


def conv_fc_model(seed: int = 0) -> FlatbufferModel:
    """A three-node float model: CONV_2D (SAME, ReLU) -> DEPTHWISE_CONV_2D (x2, VALID, stride 2, ReLU6) -> FC.

    Shapes: input [1, 1, 16, 4] -> conv [1, 1, 16, 8] -> depthwise [1, 1, 7, 16] -> FC (no bias) [7, 5].

    Args:
      seed: random seed of weights and input.

    Returns:
      The model with an input and its float64-computed expected output.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 1, 16, 4)).astype(np.float32)
    conv_w = rng.standard_normal((8, 1, 3, 4)).astype(np.float32) * 0.5
    conv_b = rng.standard_normal(8).astype(np.float32) * 0.1
    dw_w = rng.standard_normal((1, 1, 3, 16)).astype(np.float32)
    dw_b = rng.standard_normal(16).astype(np.float32) * 0.1
    fc_w = rng.standard_normal((5, 16)).astype(np.float32) * 0.3

    conv = np.maximum(_conv_reference(x[0], conv_w, conv_b, 1, (1, 1)), 0.0)
    repeated = np.repeat(conv, 2, axis=-1)  # depth multiplier 2: output channel o reads input o // 2
    dw = np.zeros((1, 7, 16))
    for i in range(7):
        dw[:, i, :] = np.einsum("hkc,kc->hc", repeated[:, 2 * i : 2 * i + 3, :], dw_w[0, 0])
    dw = np.clip(dw + dw_b, 0.0, 6.0)
    expected = (dw.reshape(7, 16) @ fc_w.T.astype(np.float64)).astype(np.float32)

    buffers = [schema.BufferT()]
    tensors = []

    def tensor(name: str, shape: list[int], data: np.ndarray | None = None) -> int:
        buffer_index = 0
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data, np.float32).tobytes(), np.uint8)
            buffers.append(buffer)
            buffer_index = len(buffers) - 1
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = (
            name.encode(),
            np.array(shape, np.int32),
            schema.TensorType.FLOAT32,
            buffer_index,
        )
        tensors.append(t)
        return len(tensors) - 1

    t_in = tensor("input", [1, 1, 16, 4])
    t_conv_w, t_conv_b = tensor("conv_w", [8, 1, 3, 4], conv_w), tensor("conv_b", [8], conv_b)
    t_conv = tensor("conv_out", [1, 1, 16, 8])
    t_dw_w, t_dw_b = tensor("dw_w", [1, 1, 3, 16], dw_w), tensor("dw_b", [16], dw_b)
    t_dw = tensor("dw_out", [1, 1, 7, 16])
    t_fc_w = tensor("fc_w", [5, 16], fc_w)
    t_out = tensor("output", [7, 5])

    conv_options = schema.Conv2DOptionsT()
    conv_options.padding, conv_options.strideW, conv_options.strideH = schema.Padding.SAME, 1, 1
    conv_options.fusedActivationFunction = schema.ActivationFunctionType.RELU
    dw_options = schema.DepthwiseConv2DOptionsT()
    dw_options.padding, dw_options.strideW, dw_options.strideH = schema.Padding.VALID, 2, 1
    dw_options.depthMultiplier = 2
    dw_options.fusedActivationFunction = schema.ActivationFunctionType.RELU6
    fc_options = schema.FullyConnectedOptionsT()

    def operator(opcode: int, inputs: list[int], outputs: list[int], kind: int, options: object) -> schema.OperatorT:
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = opcode, inputs, outputs
        op.builtinOptionsType, op.builtinOptions = kind, options
        return op

    codes = []
    for builtin, version in (
        (schema.BuiltinOperator.CONV_2D, 1),
        (schema.BuiltinOperator.DEPTHWISE_CONV_2D, 2),
        (schema.BuiltinOperator.FULLY_CONNECTED, 1),
    ):
        code = schema.OperatorCodeT()
        code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, builtin, version
        codes.append(code)

    subgraph = schema.SubGraphT()
    subgraph.tensors, subgraph.inputs, subgraph.outputs = tensors, [t_in], [t_out]
    subgraph.operators = [
        operator(0, [t_in, t_conv_w, t_conv_b], [t_conv], schema.BuiltinOptions.Conv2DOptions, conv_options),
        operator(1, [t_conv, t_dw_w, t_dw_b], [t_dw], schema.BuiltinOptions.DepthwiseConv2DOptions, dw_options),
        operator(2, [t_dw, t_fc_w, -1], [t_out], schema.BuiltinOptions.FullyConnectedOptions, fc_options),
    ]
    subgraph.name = b"main"
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, codes, [subgraph], buffers
    model.description = b"tflite-adaspring delegate test model"
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return FlatbufferModel(content=bytes(builder.Output()), input=x, expected=expected)


def run_python(code: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (for cases that could crash the process).

    Args:
      code: the Python source.
      timeout: seconds.

    Returns:
      The completed process (stdout/stderr as text).
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
