"""One TFLite operator of a materialised subnet, described by what its cost depends on.

An :class:`OpSpec` names the builtin operator, its activation input and output shapes, its constant
weight shape, options (stride, pool size, fused activation) and the tensor type. Its :attr:`OpSpec.key`
is the latency look-up table's key: two operators with the same key cost the same on one device.
Pure Python (no numpy, no TensorFlow).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tflite_adaspring.errors import ModelFormatError

Shape = tuple[int, ...]

# builtin operators a supernet's subnets use (TFLite BuiltinOperator names)
OPS = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "ADD",
    "MUL",
    "CONCATENATION",
    "MAX_POOL_2D",
    "MEAN",
    "SOFTMAX",
    "RESHAPE",
    "QUANTIZE",
    "DEQUANTIZE",
)
DTYPES = ("float32", "int8")
ACTIVATIONS = ("NONE", "RELU")


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """The cost-relevant description of one operator.

    Attributes:
      op: builtin operator name (one of :data:`OPS`).
      inputs: shapes of the activation (non-constant) inputs.
      output: shape of the output.
      weight: shape of the constant weight (OHWI conv filter, 1HWC depthwise filter, ``[out, in]``
        fully-connected weight, ``[C]`` constant of a broadcast MUL/ADD), or None.
      bias: the operator has a bias constant.
      stride: spatial stride (convolutions and pooling).
      pool: pooling window (MAX_POOL_2D), or None.
      activation: fused activation, ``NONE`` or ``RELU``.
      dtype: tensor type the operator computes in: ``float32`` or ``int8``. QUANTIZE takes float32
        and produces int8; DEQUANTIZE the reverse; both are labelled ``int8``.
    """

    op: str
    inputs: tuple[Shape, ...]
    output: Shape
    weight: Shape | None = None
    bias: bool = False
    stride: tuple[int, int] = (1, 1)
    pool: tuple[int, int] | None = None
    activation: str = "NONE"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown op {self.op!r}; known: {OPS}")
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; known: {DTYPES}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; known: {ACTIVATIONS}")

    @property
    def key(self) -> str:
        """Stable text key, e.g. ``CONV_2D/float32/in=1x1x128x24/w=12x1x5x24/b/s=1x1/RELU/out=1x1x128x12``."""
        parts = [self.op, self.dtype, "in=" + ",".join(_dims(s) for s in self.inputs)]
        if self.weight is not None:
            parts.append("w=" + _dims(self.weight))
        if self.bias:
            parts.append("b")
        if self.stride != (1, 1):
            parts.append("s=" + _dims(self.stride))
        if self.pool is not None:
            parts.append("p=" + _dims(self.pool))
        if self.activation != "NONE":
            parts.append(self.activation)
        parts.append("out=" + _dims(self.output))
        return "/".join(parts)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "op": self.op,
            "inputs": [list(s) for s in self.inputs],
            "output": list(self.output),
            "weight": None if self.weight is None else list(self.weight),
            "bias": self.bias,
            "stride": list(self.stride),
            "pool": None if self.pool is None else list(self.pool),
            "activation": self.activation,
            "dtype": self.dtype,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> OpSpec:
        """Inverse of :meth:`to_json`.

        Raises:
          ModelFormatError: a field is missing or malformed.
        """
        try:
            return cls(
                op=str(obj["op"]),
                inputs=tuple(tuple(int(d) for d in s) for s in obj["inputs"]),
                output=tuple(int(d) for d in obj["output"]),
                weight=None if obj["weight"] is None else tuple(int(d) for d in obj["weight"]),
                bias=bool(obj["bias"]),
                stride=tuple(int(d) for d in obj["stride"]),  # type: ignore[arg-type]
                pool=None if obj["pool"] is None else tuple(int(d) for d in obj["pool"]),  # type: ignore[arg-type]
                activation=str(obj["activation"]),
                dtype=str(obj["dtype"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"malformed operator spec {obj!r}: {exc}") from exc


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(int(d)) for d in shape)
