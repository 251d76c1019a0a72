"""The default backbones: residual CNNs built from compression operators.

One architecture serves images (H x W x C) and time series (T x C, run as 1 x T images with
``1 x k`` kernels so that every exported op is a plain CONV_2D / DEPTHWISE_CONV_2D):

``input -> stem conv/BN/ReLU -> [stage of elastic residual blocks -> transition] x S -> global average
pool -> low-rank Dense/ReLU head -> Dense classifier (logits)``.

A transition halves the spatial size (max-pool) and changes channels with a 1x1 conv/BN/ReLU.
"""

from __future__ import annotations

import dataclasses
import math

import tf_keras

from tflite_adaspring.cost import Cost
from tflite_adaspring.data.spec import InputSpec
from tflite_adaspring.operators.batchnorm import ElasticBatchNorm
from tflite_adaspring.operators.decomposition import DecompositionBlock, _conv_cost
from tflite_adaspring.operators.depth import ElasticDepth
from tflite_adaspring.operators.low_rank import LowRank
from tflite_adaspring.operators.slicing import copy_layer, sliced_batchnorm
from tflite_adaspring.space import Config, SearchSpace


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """Hyper-parameters of a residual CNN supernet.

    Attributes:
      input_shape: one example's shape: ``(T, C)`` for time series, ``(H, W, C)`` for images.
      num_classes: classifier outputs.
      kind: ``timeseries`` or ``image``.
      stem_channels: channels of the stem conv.
      stage_channels: channels of each stage.
      blocks_per_stage: maximum residual blocks per stage.
      kernel: block kernel (2-D; ``(1, k)`` for time series).
      stem_kernel: stem kernel.
      stem_stride: stem stride.
      pool: transition pooling size (and stride).
      head_units: units of the low-rank head layer.
      widths / head_ranks / min_depth / ops: the knob choices.
    """

    input_shape: tuple[int, ...]
    num_classes: int
    kind: str
    stem_channels: int
    stage_channels: tuple[int, ...]
    blocks_per_stage: tuple[int, ...]
    kernel: tuple[int, int]
    stem_kernel: tuple[int, int]
    stem_stride: tuple[int, int]
    pool: tuple[int, int]
    head_units: int
    widths: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    head_ranks: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0)
    min_depth: int = 1
    ops: tuple[str, ...] = ("std", "dws", "fire")

    @property
    def space_name(self) -> str:
        """Name of the search space (kind + channel plan)."""
        return f"{self.kind}_resnet_{'-'.join(map(str, self.stage_channels))}"

    def space(self) -> SearchSpace:
        """The search space of this backbone."""
        return SearchSpace(
            name=self.space_name,
            version=1,
            blocks_per_stage=self.blocks_per_stage,
            min_depth=self.min_depth,
            ops=self.ops,
            widths=self.widths,
            head_ranks=self.head_ranks,
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The (H, W, C) the convolutions see."""
        if self.kind == "timeseries":
            return (1, self.input_shape[0], self.input_shape[1])
        return tuple(self.input_shape)  # type: ignore[return-value]

    def stage_sizes(self) -> list[tuple[int, int]]:
        """Spatial (H, W) of each stage (after the stem, then after each transition)."""
        h, w, _ = self.image_shape
        h, w = math.ceil(h / self.stem_stride[0]), math.ceil(w / self.stem_stride[1])
        sizes = [(h, w)]
        for _ in self.stage_channels[1:]:
            h, w = math.ceil(h / self.pool[0]), math.ceil(w / self.pool[1])
            sizes.append((h, w))
        return sizes


def timeseries_backbone(input_shape: tuple[int, int], num_classes: int) -> BackboneSpec:
    """Default 1-D backbone for (T, C) sensor/speech windows (~260 k params at full size)."""
    return BackboneSpec(
        input_shape=tuple(input_shape),
        num_classes=num_classes,
        kind="timeseries",
        stem_channels=24,
        stage_channels=(24, 48, 96),
        blocks_per_stage=(2, 2, 2),
        kernel=(1, 5),
        stem_kernel=(1, 5),
        stem_stride=(1, 1),
        pool=(1, 2),
        head_units=128,
    )


def image_backbone(input_shape: tuple[int, int, int], num_classes: int) -> BackboneSpec:
    """Default image backbone for small images such as 28x28 (~0.45 M params at full size)."""
    return BackboneSpec(
        input_shape=tuple(input_shape),
        num_classes=num_classes,
        kind="image",
        stem_channels=24,
        stage_channels=(24, 48, 96),
        blocks_per_stage=(2, 2, 2),
        kernel=(3, 3),
        stem_kernel=(3, 3),
        stem_stride=(2, 2),
        pool=(2, 2),
        head_units=128,
    )


def backbone_for(spec: InputSpec) -> BackboneSpec:
    """The default backbone for a task's input spec."""
    if spec.kind == "timeseries":
        return timeseries_backbone(spec.input_shape, spec.num_classes)  # type: ignore[arg-type]
    if spec.kind == "image":
        return image_backbone(spec.input_shape, spec.num_classes)  # type: ignore[arg-type]
    raise ValueError(f"no default backbone for input kind {spec.kind!r}; expected 'timeseries' or 'image'")


class ResidualCNN:
    """The supernet's layers and the functional tf_keras model that trains them.

    Args:
      spec: the backbone hyper-parameters.
    """

    def __init__(self, spec: BackboneSpec):
        self.spec = spec
        conv = tf_keras.layers.Conv2D
        self.stem_conv = conv(spec.stem_channels, spec.stem_kernel, strides=spec.stem_stride, padding="same",
                              use_bias=False, name="stem_conv")  # fmt: skip
        self.stem_bn = ElasticBatchNorm(name="stem_bn")
        channels = [spec.stem_channels, *spec.stage_channels]
        if spec.stem_channels != spec.stage_channels[0]:
            raise ValueError("stem_channels must equal stage_channels[0] (the first stage has no transition)")
        self.stages = [
            ElasticDepth(
                [
                    DecompositionBlock(c, spec.kernel, spec.ops, spec.widths, name=f"stage{s}_block{b}")
                    for b in range(n)
                ],
                spec.min_depth,
                name=f"stage{s}",
            )
            for s, (c, n) in enumerate(zip(spec.stage_channels, spec.blocks_per_stage))
        ]
        self.transitions = [
            (
                conv(c_out, 1, use_bias=False, name=f"transition{s}_conv"),
                ElasticBatchNorm(name=f"transition{s}_bn"),
            )
            for s, c_out in enumerate(channels[2:])
        ]
        self.head = LowRank(tf_keras.layers.Dense(spec.head_units, activation="relu"), spec.head_ranks, name="head")
        self.classifier = tf_keras.layers.Dense(spec.num_classes, name="classifier")
        self.model = self._functional()

    def _functional(self) -> tf_keras.Model:
        spec = self.spec
        inputs = tf_keras.Input(spec.input_shape, name="input")
        x = tf_keras.layers.Reshape(spec.image_shape)(inputs) if spec.kind == "timeseries" else inputs
        x = tf_keras.layers.ReLU()(self.stem_bn(self.stem_conv(x)))
        for s, stage in enumerate(self.stages):
            x = stage(x)
            if s < len(self.transitions):
                conv, bn = self.transitions[s]
                x = tf_keras.layers.MaxPool2D(spec.pool, padding="same")(x)
                x = tf_keras.layers.ReLU()(bn(conv(x)))
        x = tf_keras.layers.GlobalAveragePooling2D()(x)
        logits = self.classifier(self.head(x))
        return tf_keras.Model(inputs, logits, name="supernet")

    def materialize(self, config: Config) -> tf_keras.Model:
        """A plain tf_keras model for ``config`` with weights derived from the supernet's."""
        spec = self.spec
        inputs = tf_keras.Input(spec.input_shape, name="input")
        x = tf_keras.layers.Reshape(spec.image_shape)(inputs) if spec.kind == "timeseries" else inputs
        x = tf_keras.layers.ReLU()(sliced_batchnorm(self.stem_bn, copy_layer(self.stem_conv, x)))
        for s, stage in enumerate(self.stages):
            x = stage.materialize(x, config.stages[s])
            if s < len(self.transitions):
                conv, bn = self.transitions[s]
                x = tf_keras.layers.MaxPool2D(spec.pool, padding="same")(x)
                x = tf_keras.layers.ReLU()(sliced_batchnorm(bn, copy_layer(conv, x)))
        x = tf_keras.layers.GlobalAveragePooling2D()(x)
        logits = copy_layer(self.classifier, self.head.materialize(x, config.head_rank))
        return tf_keras.Model(inputs, logits, name=f"subnet_{config.id.replace('/', '_').replace('.', '_')}")

    def cost(self, config: Config) -> Cost:
        """Analytic cost of ``materialize(config)``."""
        spec = self.spec
        h, w, c_in = spec.image_shape
        sizes = self.spec.stage_sizes()
        stem_area = spec.stem_kernel[0] * spec.stem_kernel[1]
        p0 = sizes[0][0] * sizes[0][1]
        stem = _conv_cost(p0, stem_area, c_in, spec.stem_channels)
        total = dataclasses.replace(stem, peak_activation_elems=h * w * c_in + p0 * spec.stem_channels)
        for s, stage in enumerate(self.stages):
            positions = sizes[s][0] * sizes[s][1]
            total = total + stage.cost(config.stages[s], positions)
            if s < len(self.transitions):
                c, c_next = spec.stage_channels[s], spec.stage_channels[s + 1]
                p_next = sizes[s + 1][0] * sizes[s + 1][1]
                pool = Cost(peak_activation_elems=positions * c + p_next * c)
                total = total + pool + _conv_cost(p_next, 1, c, c_next)
        last = sizes[-1][0] * sizes[-1][1] * spec.stage_channels[-1]
        total = total + Cost(peak_activation_elems=last + spec.stage_channels[-1])
        total = total + self.head.cost(config.head_rank, 1)
        n, units = spec.num_classes, spec.head_units
        return total + Cost(units * n + n, units * n, units * n, n, units + n)

    def batchnorms(self) -> list[ElasticBatchNorm]:
        """Every ElasticBatchNorm of the supernet."""
        return [layer for layer in _walk(self.model) if isinstance(layer, ElasticBatchNorm)]


def _walk(layer: tf_keras.layers.Layer) -> list[tf_keras.layers.Layer]:
    out = [layer]
    for sub in getattr(layer, "_flatten_layers", lambda **_: [])(include_self=False, recursive=True):
        out.append(sub)
    return out


__all__ = [
    "BackboneSpec",
    "ResidualCNN",
    "backbone_for",
    "image_backbone",
    "timeseries_backbone",
]
