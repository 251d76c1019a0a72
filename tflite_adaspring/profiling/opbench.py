"""Single-operator LiteRT models and their timing: the measurements behind the latency look-up table.

:func:`build_op_model` writes a flatbuffer holding ``copies`` copies of one :class:`OpSpec` (sharing
input and weights, each with its own output, all outputs kept), with the operator versions and int8
quantisation layout the TFLite converter emits (per-channel weights, int32 biases, softmax output at
scale 1/256). :func:`time_ops` runs the one-copy and the ``copies``-copy model of every operator with
XNNPACK, interleaved round by round, and takes the slope ``(t_copies - t_1) / (copies - 1)``: the
per-invoke overhead cancels, what is left is the operator's own time inside a delegated graph.
Needs numpy and ai-edge-litert only.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from tflite_adaspring.metadata import pack_model, tflite_schema
from tflite_adaspring.profiling._litert import make_interpreter
from tflite_adaspring.profiling.ops import OpSpec

# operator versions the converter writes (TF 2.21), per tensor type
_VERSIONS = {
    "float32": {},
    "int8": {
        "CONV_2D": 3,
        "DEPTHWISE_CONV_2D": 3,
        "FULLY_CONNECTED": 4,
        "ADD": 2,
        "MUL": 2,
        "CONCATENATION": 2,
        "MAX_POOL_2D": 2,
        "MEAN": 2,
        "SOFTMAX": 2,
        "DEQUANTIZE": 2,
    },
}
_ACT_SCALE = 0.05  # int8 activations: per-tensor scale, zero point 0
_SOFTMAX_SCALE, _SOFTMAX_ZERO = 1.0 / 256.0, -128


class _Builder:
    """Accumulates tensors and buffers of one subgraph."""

    def __init__(self, schema: Any, rng: np.random.Generator):
        self.s = schema
        self.rng = rng
        self.tensors: list[Any] = []
        self.buffers: list[Any] = [schema.BufferT()]

    def tensor(self, shape: Sequence[int], dtype: str, data: np.ndarray | None = None, quant: Any = None) -> int:
        types = {"float32": self.s.TensorType.FLOAT32, "int8": self.s.TensorType.INT8, "int32": self.s.TensorType.INT32}
        buffer = 0
        if data is not None:
            self.buffers.append(self.s.BufferT(data=np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)))
            buffer = len(self.buffers) - 1
        else:
            self.buffers.append(self.s.BufferT())
            buffer = len(self.buffers) - 1
        t = self.s.TensorT()
        t.shape = np.asarray(shape, np.int32)
        t.type = types[dtype]
        t.buffer = buffer
        t.name = f"t{len(self.tensors)}"
        t.quantization = quant
        self.tensors.append(t)
        return len(self.tensors) - 1

    def quant(self, scales: Sequence[float], dim: int = 0, zero: int = 0) -> Any:
        q = self.s.QuantizationParametersT()
        q.scale = np.asarray(scales, np.float32)
        q.zeroPoint = np.full(len(scales), zero, np.int64)
        q.quantizedDimension = dim
        return q

    def activation(self, shape: Sequence[int], dtype: str, softmax_out: bool = False) -> int:
        if dtype != "int8":
            return self.tensor(shape, "float32")
        q = self.quant([_SOFTMAX_SCALE], zero=_SOFTMAX_ZERO) if softmax_out else self.quant([_ACT_SCALE])
        return self.tensor(shape, "int8", quant=q)

    def weight(self, shape: Sequence[int], dtype: str, channel_dim: int | None) -> int:
        if dtype != "int8":
            return self.tensor(shape, "float32", self.rng.normal(0, 0.1, shape).astype(np.float32))
        data = self.rng.integers(-127, 128, shape).astype(np.int8)
        n = 1 if channel_dim is None else int(shape[channel_dim])
        return self.tensor(shape, "int8", data, self.quant(np.full(n, 0.01), dim=channel_dim or 0))

    def bias(self, n: int, dtype: str) -> int:
        if dtype != "int8":
            return self.tensor([n], "float32", self.rng.normal(0, 0.1, n).astype(np.float32))
        data = self.rng.integers(-1000, 1000, n).astype(np.int32)
        return self.tensor([n], "int32", data, self.quant(np.full(n, _ACT_SCALE * 0.01)))

    def int32_const(self, values: Sequence[int]) -> int:
        return self.tensor([len(values)], "int32", np.asarray(values, np.int32))


def build_op_model(spec: OpSpec, copies: int = 1, seed: int = 0) -> bytes:
    """A model running ``copies`` copies of ``spec`` on shared inputs (all outputs are model outputs).

    Args:
      spec: the operator.
      copies: how many copies run per invoke.
      seed: seed of the random weights.

    Returns:
      The .tflite bytes.
    """
    s = tflite_schema()
    b = _Builder(s, np.random.default_rng(seed))
    dt = spec.dtype
    in_dtype = "float32" if spec.op == "QUANTIZE" else dt
    inputs = [
        b.activation(shape, in_dtype, softmax_out=spec.op == "DEQUANTIZE") if in_dtype == "int8" else b.tensor(
            shape, "float32")
        for shape in spec.inputs
    ]  # fmt: skip
    const_inputs, options_type, options = _operands(spec, b, s)
    out_dtype = "float32" if spec.op == "DEQUANTIZE" else dt
    operators, outputs = [], []
    for _ in range(copies):
        out = b.activation(spec.output, out_dtype, softmax_out=spec.op == "SOFTMAX") if out_dtype == "int8" else (
            b.tensor(spec.output, "float32"))  # fmt: skip
        op = s.OperatorT()
        op.opcodeIndex = 0
        op.inputs = np.asarray([*inputs, *const_inputs], np.int32)
        op.outputs = np.asarray([out], np.int32)
        op.builtinOptionsType = options_type
        op.builtinOptions = options
        operators.append(op)
        outputs.append(out)
    graph = s.SubGraphT()
    graph.tensors, graph.operators, graph.name = b.tensors, operators, "op_bench"
    graph.inputs, graph.outputs = np.asarray(inputs, np.int32), np.asarray(outputs, np.int32)
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = getattr(s.BuiltinOperator, spec.op)
    code.version = _VERSIONS[dt].get(spec.op, 1)
    model = s.ModelT()
    model.version, model.description = 3, f"adaspring op bench: {spec.key} x{copies}"
    model.operatorCodes, model.subgraphs, model.buffers = [code], [graph], b.buffers
    return pack_model(model)


def _operands(spec: OpSpec, b: _Builder, s: Any) -> tuple[list[int], int, Any]:
    """Constant inputs and builtin options of ``spec``."""
    dt, opts = spec.dtype, s.BuiltinOptions
    act = s.ActivationFunctionType.RELU if spec.activation == "RELU" else s.ActivationFunctionType.NONE
    if spec.op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        depthwise = spec.op == "DEPTHWISE_CONV_2D"
        w = b.weight(spec.weight, dt, 3 if depthwise else 0)
        consts = [w, b.bias(spec.output[-1], dt) if spec.bias else -1]
        o = s.DepthwiseConv2DOptionsT() if depthwise else s.Conv2DOptionsT()
        o.padding, o.strideH, o.strideW, o.fusedActivationFunction = s.Padding.SAME, *spec.stride, act
        if depthwise:
            o.depthMultiplier = 1
            return consts, opts.DepthwiseConv2DOptions, o
        return consts, opts.Conv2DOptions, o
    if spec.op == "FULLY_CONNECTED":
        consts = [b.weight(spec.weight, dt, 0), b.bias(spec.output[-1], dt) if spec.bias else -1]
        o = s.FullyConnectedOptionsT()
        o.fusedActivationFunction = act
        return consts, opts.FullyConnectedOptions, o
    if spec.op in ("ADD", "MUL"):
        consts = [] if spec.weight is None else [b.weight(spec.weight, dt, None)]
        o = s.AddOptionsT() if spec.op == "ADD" else s.MulOptionsT()
        o.fusedActivationFunction = act
        return consts, opts.AddOptions if spec.op == "ADD" else opts.MulOptions, o
    if spec.op == "CONCATENATION":
        o = s.ConcatenationOptionsT()
        o.axis, o.fusedActivationFunction = len(spec.output) - 1, act
        return [], opts.ConcatenationOptions, o
    if spec.op == "MAX_POOL_2D":
        o = s.Pool2DOptionsT()
        o.padding, o.strideH, o.strideW = s.Padding.SAME, *spec.stride
        o.filterHeight, o.filterWidth = spec.pool
        o.fusedActivationFunction = act
        return [], opts.Pool2DOptions, o
    if spec.op == "MEAN":
        o = s.ReducerOptionsT()
        o.keepDims = False
        return [b.int32_const(list(range(1, len(spec.inputs[0]) - 1)))], opts.ReducerOptions, o
    if spec.op == "RESHAPE":
        return [b.int32_const(spec.output)], opts.NONE, None
    if spec.op == "SOFTMAX":
        o = s.SoftmaxOptionsT()
        o.beta = 1.0
        return [], opts.SoftmaxOptions, o
    return [], opts.NONE, None  # QUANTIZE, DEQUANTIZE


@dataclasses.dataclass(frozen=True)
class OpTiming:
    """The measured time of one operator.

    Attributes:
      ms: median over rounds of the per-copy slope, in milliseconds (never negative).
      spread: interquartile range of the rounds' slopes divided by the median (timing noise).
      rounds: number of rounds measured.
    """

    ms: float
    spread: float
    rounds: int


def _invoke_median_ns(interpreter: Any, runs: int) -> float:
    invoke = interpreter.invoke
    clock = time.perf_counter_ns
    samples = []
    for _ in range(runs):
        t0 = clock()
        invoke()
        samples.append(clock() - t0)
    return float(np.median(samples))


def _ready_interpreter(model: bytes, threads: int) -> Any:
    interpreter = make_interpreter(model, threads)
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        data = rng.normal(0, 1, detail["shape"])
        if detail["dtype"] == np.int8:
            data = np.clip(data * 20, -128, 127)
        interpreter.set_tensor(detail["index"], data.astype(detail["dtype"]))
    return interpreter


def time_ops(
    specs: Sequence[OpSpec],
    threads: int = 1,
    copies: int = 6,
    runs: int = 40,
    rounds: int = 7,
    warmup: int = 20,
) -> dict[str, OpTiming]:
    """Times every operator (see the module docstring).

    Args:
      specs: the operators (duplicates by key are timed once).
      threads: LiteRT thread count.
      copies: copies in the multi-copy model (>= 2).
      runs: invokes per model per round (their median is the round's value).
      rounds: interleaved rounds over all operators.
      warmup: invokes per model before the first round.

    Returns:
      Operator key -> :class:`OpTiming`.
    """
    if copies < 2:
        raise ValueError(f"copies must be >= 2 to cancel the invoke overhead, got {copies}")
    unique = {spec.key: spec for spec in specs}
    pairs = {
        key: tuple(_ready_interpreter(build_op_model(spec, n), threads) for n in (1, copies))
        for key, spec in unique.items()
    }
    for one, many in pairs.values():
        for _ in range(warmup):
            one.invoke()
            many.invoke()
    slopes: dict[str, list[float]] = {key: [] for key in pairs}
    for r in range(rounds):
        order = list(pairs) if r % 2 == 0 else list(reversed(pairs))
        for key in order:
            one, many = pairs[key]
            single = _invoke_median_ns(one, runs)
            multi = _invoke_median_ns(many, runs)
            slopes[key].append((multi - single) / (copies - 1) / 1e6)
    out = {}
    for key, values in slopes.items():
        q1, med, q3 = np.percentile(values, [25, 50, 75])
        out[key] = OpTiming(ms=max(0.0, float(med)), spread=float((q3 - q1) / med) if med > 0 else 0.0, rounds=rounds)
    return out
