"""Conversion of materialised configurations to LiteRT: one multi-signature model per precision.

A signature ``key`` runs ``softmax(materialize(config)(input))`` with the configuration's weights (BN
folded by the converter) as constants. All signatures of one call share the converter's precision:
``fp32``; ``fp16`` (float16 weights, float32 compute); ``int8`` (full integer ops with float32 input
and output, calibrated per signature: the representative dataset yields ``(signature_key, inputs)``).

The converter folds a BatchNorm into the convolution before it, but not a BatchNorm after a
concatenation (the fire block's), which stays a per-channel MUL and ADD. For fp16 and int8 signatures
:func:`fold_concat_batchnorm` folds it into the concatenated convolutions first: in int8 those ops see the
unnormalised concat range and XNNPACK refuses ADDs whose scale ratio is below 2^-10, splitting the
delegated graph. fp32 signatures keep the materialised graph unchanged (the evolve export matches their
constants against the unfolded weights).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras

from tflite_adaspring.space import Config

INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"


def signature_function(model: tf_keras.Model, key: str, input_shape: Sequence[int]) -> Any:
    """A concrete function named ``key`` mapping ``input`` to ``probabilities`` (batch of one)."""
    spec = tf.TensorSpec([1, *input_shape], tf.float32, name=INPUT_NAME)

    def forward(input: tf.Tensor) -> dict[str, tf.Tensor]:
        return {OUTPUT_NAME: tf.nn.softmax(model(input, training=False))}

    forward.__name__ = key
    return tf.function(forward, input_signature=[spec], autograph=False).get_concrete_function()


def _inbound(layer: tf_keras.layers.Layer) -> list[tf_keras.layers.Layer]:
    nodes = layer._inbound_nodes  # functional-graph introspection (no public API in tf_keras)
    if len(nodes) != 1:
        return []
    inbound = nodes[0].inbound_layers
    return list(inbound) if isinstance(inbound, (list, tuple)) else [inbound]


def _plain_linear_conv(layer: tf_keras.layers.Layer) -> bool:
    """A Conv2D without activation whose output goes to one consumer only."""
    return (
        type(layer) is tf_keras.layers.Conv2D
        and layer.get_config()["activation"] == "linear"
        and len(layer._outbound_nodes) == 1
    )


def fold_concat_batchnorm(model: tf_keras.Model) -> tf_keras.Model:
    """A copy of ``model`` where every ``BatchNormalization(Concatenate([Conv2D, ...]))`` is folded.

    Each convolution feeding such a concatenation (and used nowhere else) gets its channel slice of
    the BatchNorm's scale in its kernel and the shift as a bias; the BatchNorm becomes an identity.

    Args:
      model: a functional tf_keras model (e.g. ``supernet.materialize(config)``).

    Returns:
      The folded model (``model`` itself when nothing is foldable); same outputs up to float rounding.
    """
    folds: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # conv name -> (scale, shift) of its channels
    identities: set[str] = set()
    for layer in model.layers:
        if not isinstance(layer, tf_keras.layers.BatchNormalization):
            continue
        concat = _inbound(layer)
        if len(concat) != 1 or not isinstance(concat[0], tf_keras.layers.Concatenate):
            continue
        convs = _inbound(concat[0])
        if not convs or not all(_plain_linear_conv(c) for c in convs):
            continue
        gamma, beta, mean, var = (np.asarray(w, np.float64) for w in layer.get_weights())
        scale = gamma / np.sqrt(var + layer.epsilon)
        shift = beta - mean * scale
        offset = 0
        for conv in convs:
            n = conv.filters
            folds[conv.name] = (scale[offset : offset + n], shift[offset : offset + n])
            offset += n
        identities.add(layer.name)
    if not folds:
        return model

    def clone(layer: tf_keras.layers.Layer) -> tf_keras.layers.Layer:
        if layer.name in identities:
            return tf_keras.layers.Activation("linear", name=layer.name)
        config = layer.get_config()
        if layer.name in folds:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    folded = tf_keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.name in identities or not layer.weights:
            continue
        new = folded.get_layer(layer.name)
        if layer.name in folds:
            scale, shift = folds[layer.name]
            weights = layer.get_weights()
            kernel = np.asarray(weights[0], np.float64) * scale
            bias = shift + (np.asarray(weights[1], np.float64) * scale if len(weights) > 1 else 0.0)
            new.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
        else:
            new.set_weights(layer.get_weights())
    return folded


def convert_configs(
    supernet: Any,
    configs: Sequence[Config],
    keys: Sequence[str],
    precision: str = "fp32",
    representative: np.ndarray | None = None,
) -> bytes:
    """Converts configurations into one model whose signatures all use ``precision``.

    Args:
      supernet: the trained supernet; BatchNorm statistics recalibrated per config (``recalibrate``
        with ``store=True``) are used when present.
      configs: the configurations (their own ``precision`` field is not read).
      keys: one distinct signature key per configuration.
      precision: ``fp32``, ``fp16`` or ``int8``.
      representative: int8 calibration inputs shaped ``(n,) + input_shape`` (every signature sees all).

    Returns:
      The flatbuffer bytes.
    """
    if len(configs) != len(keys) or len(set(keys)) != len(keys) or not keys:
        raise ValueError(f"need one distinct key per config, got {len(keys)} keys for {len(configs)} configs")
    if precision == "int8" and (representative is None or len(representative) == 0):
        raise ValueError("int8 conversion needs representative inputs (calibration samples)")
    input_shape = supernet.backbone.input_shape
    module = tf.Module()
    signatures = {}
    for key, config in zip(keys, configs):
        model = supernet.materialize(config.with_precision("fp32"))
        if precision != "fp32":
            model = fold_concat_batchnorm(model)
        setattr(module, f"model_{key}", model)  # tracked, so the SavedModel holds its weights
        signatures[key] = signature_function(model, key, input_shape)
    with tempfile.TemporaryDirectory(prefix="adaspring-export-") as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=list(keys))
        if precision == "fp16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif precision == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.representative_dataset = _representative(list(keys), np.asarray(representative, np.float32))
        elif precision != "fp32":
            raise ValueError(f"unknown precision {precision!r}; choose fp32, fp16 or int8")
        return bytes(converter.convert())


def _representative(keys: list[str], samples: np.ndarray) -> Any:
    def generate() -> Iterator[tuple[str, dict[str, np.ndarray]]]:
        for i in range(len(samples)):
            for key in keys:
                yield key, {INPUT_NAME: samples[i : i + 1]}

    return generate
