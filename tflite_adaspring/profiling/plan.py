"""The operator sequence LiteRT runs for a configuration, predicted without converting it.

:class:`SubnetPlanner` reads the channel counts of every branch, width and rank from a supernet once;
:meth:`SubnetPlanner.plan` then lists the :class:`~tflite_adaspring.profiling.ops.OpSpec` of the
converted subnet in pure Python (≈ 20 µs), matching what the TFLite converter emits for
``supernet.materialize(config)`` with BatchNorm folded (the tests compare the two op by op):

- time series: ``RESHAPE`` to ``1 x T`` images; stem ``CONV_2D`` (+ReLU);
- ``std`` block: ``CONV_2D`` (+ReLU), ``CONV_2D``, ``ADD`` (+ReLU);
- ``dws`` block: 1x1 ``CONV_2D`` (+ReLU), ``DEPTHWISE_CONV_2D`` (+ReLU), 1x1 ``CONV_2D``, ``ADD`` (+ReLU);
- ``fire`` block: 1x1 ``CONV_2D`` (+ReLU), 1x1 and ``k`` ``CONV_2D``, ``CONCATENATION``, at fp32 the
  BatchNorm after the concat as ``MUL`` and ``ADD`` by constants (fp16/int8 exports fold it into the
  two convolutions, see :func:`tflite_adaspring.export.convert.fold_concat_batchnorm`), ``ADD`` (+ReLU);
- transition: ``MAX_POOL_2D``, 1x1 ``CONV_2D`` (+ReLU); ``MEAN``; low-rank head as one or two
  ``FULLY_CONNECTED``; classifier ``FULLY_CONNECTED``; ``SOFTMAX``;
- int8: a ``QUANTIZE`` of the float input first and a ``DEQUANTIZE`` of the probabilities last.
"""

from __future__ import annotations

import math
from typing import Any

from tflite_adaspring.profiling.ops import OpSpec, Shape
from tflite_adaspring.space import OP_DEPTHWISE_SEPARABLE, OP_FIRE, OP_STANDARD, BlockChoice, Config

PRECISION_DTYPE = {"fp32": "float32", "fp16": "float32", "int8": "int8"}


class SubnetPlanner:
    """Lists the operators of any configuration of one supernet.

    Args:
      supernet: a :class:`~tflite_adaspring.supernet.Supernet` (only its structure is read).
    """

    def __init__(self, supernet: Any):
        bb = supernet.backbone
        self.space = supernet.space
        self.kind = bb.kind
        self.input_shape = (1, *bb.input_shape)
        self.image_shape = tuple(bb.image_shape)
        self.stem = (bb.stem_channels, tuple(bb.stem_kernel), tuple(bb.stem_stride))
        self.stage_channels = tuple(bb.stage_channels)
        self.stage_sizes = [tuple(s) for s in bb.stage_sizes()]
        self.kernel = tuple(bb.kernel)
        self.pool = tuple(bb.pool)
        self.head_units = bb.head_units
        self.num_classes = bb.num_classes
        # (stage, block, op) -> {width: inner channels}; fire blocks also -> (1x1 expand, k expand) channels
        self.inner: dict[tuple[int, int, str], dict[float, int]] = {}
        self.fire_split: dict[tuple[int, int], tuple[int, int]] = {}
        for s, stage in enumerate(supernet.net.stages):
            for b, block in enumerate(stage.blocks):
                for op in block.ops:
                    branch = block.branch(op)
                    self.inner[(s, b, op)] = {w: branch.width_op.count_for(w) for w in branch.widths}
                    if op == OP_FIRE:
                        self.fire_split[(s, b)] = (branch.e1_channels, branch.ek_channels)
        head = supernet.net.head
        self.head_in = head.n_in
        self.head_ranks = {r: (head.rank_for(r), head.factorizes(head.rank_for(r))) for r in head.ranks}

    def plan(self, config: Config) -> list[OpSpec]:
        """The operators of the converted subnet of ``config``, in execution order.

        Args:
          config: a configuration of the supernet's space.

        Returns:
          One :class:`OpSpec` per TFLite operator.
        """
        self.space.validate(config)
        dt = PRECISION_DTYPE[config.precision]
        ops: list[OpSpec] = []
        if dt == "int8":
            ops.append(OpSpec("QUANTIZE", (self.input_shape,), self.input_shape, dtype=dt))
        h, w, c_in = self.image_shape
        x: Shape = (1, h, w, c_in)
        if self.kind == "timeseries":
            ops.append(OpSpec("RESHAPE", (self.input_shape,), x, dtype=dt))
        channels, kernel, stride = self.stem
        x = _conv(ops, x, channels, kernel, stride, "RELU", dt)
        for s, stage in enumerate(config.stages):
            for b, choice in enumerate(stage):
                x = self._block(ops, x, s, b, choice, dt, fold=config.precision != "fp32")
            if s + 1 < len(config.stages):
                pooled = (1, math.ceil(x[1] / self.pool[0]), math.ceil(x[2] / self.pool[1]), x[3])
                ops.append(OpSpec("MAX_POOL_2D", (x,), pooled, stride=self.pool, pool=self.pool, dtype=dt))
                x = _conv(ops, pooled, self.stage_channels[s + 1], (1, 1), (1, 1), "RELU", dt)
        pooled = (1, x[3])
        ops.append(OpSpec("MEAN", (x,), pooled, dtype=dt))
        rank, factorized = self.head_ranks[_match(self.head_ranks, config.head_rank)]
        if factorized:
            ops.append(_fc(pooled, rank, False, "NONE", dt))
            ops.append(_fc((1, rank), self.head_units, True, "RELU", dt))
        else:
            ops.append(_fc(pooled, self.head_units, True, "RELU", dt))
        logits = (1, self.num_classes)
        ops.append(_fc((1, self.head_units), self.num_classes, True, "NONE", dt))
        ops.append(OpSpec("SOFTMAX", (logits,), logits, dtype=dt))
        if dt == "int8":
            ops.append(OpSpec("DEQUANTIZE", (logits,), logits, dtype=dt))
        return ops

    def _block(self, ops: list[OpSpec], x: Shape, s: int, b: int, choice: BlockChoice, dt: str, fold: bool) -> Shape:
        c, op = x[3], choice.op
        m = self.inner[(s, b, op)][_match(self.inner[(s, b, op)], choice.width)]
        if op == OP_STANDARD:
            h = _conv(ops, x, m, self.kernel, (1, 1), "RELU", dt)
            y = _conv(ops, h, c, self.kernel, (1, 1), "NONE", dt)
        elif op == OP_DEPTHWISE_SEPARABLE:
            h = _conv(ops, x, m, (1, 1), (1, 1), "RELU", dt)
            ops.append(OpSpec("DEPTHWISE_CONV_2D", (h,), h, (1, *self.kernel, m), True, activation="RELU", dtype=dt))
            y = _conv(ops, h, c, (1, 1), (1, 1), "NONE", dt)
        else:
            e1, ek = self.fire_split[(s, b)]
            h = _conv(ops, x, m, (1, 1), (1, 1), "RELU", dt)
            a = _conv(ops, h, e1, (1, 1), (1, 1), "NONE", dt)
            k = _conv(ops, h, ek, self.kernel, (1, 1), "NONE", dt)
            y = (*x[:3], e1 + ek)
            ops.append(OpSpec("CONCATENATION", (a, k), y, dtype=dt))
            if not fold:
                ops.append(OpSpec("MUL", (y,), y, (y[3],), dtype=dt))
                ops.append(OpSpec("ADD", (y,), y, (y[3],), dtype=dt))
        ops.append(OpSpec("ADD", (x, y), x, activation="RELU", dtype=dt))
        return x


def _conv(
    ops: list[OpSpec], x: Shape, out: int, kernel: tuple[int, int], stride: tuple[int, int], act: str, dt: str
) -> Shape:
    y = (1, math.ceil(x[1] / stride[0]), math.ceil(x[2] / stride[1]), out)
    ops.append(OpSpec("CONV_2D", (x,), y, (out, *kernel, x[3]), True, stride, activation=act, dtype=dt))
    return y


def _fc(x: Shape, out: int, bias: bool, act: str, dt: str) -> OpSpec:
    return OpSpec("FULLY_CONNECTED", (x,), (1, out), (out, x[1]), bias, activation=act, dtype=dt)


def _match(table: dict[float, Any], value: float) -> float:
    for key in table:
        if math.isclose(key, value):
            return key
    raise KeyError(f"{value!r} is not among {tuple(table)}")
