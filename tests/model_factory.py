"""Tiny multi-signature .tflite models for tests (TensorFlow is imported here only, lazily).

Each model holds one signature per configuration (``cfg00``, ``cfg01``, ...): a 1-D CNN on ``(1, 16, 3)``
whose width is a prefix slice of one shared "supernet" weight set, the way the export slices a supernet.
The final dense bias is the same vector in every configuration, so the model has identical constant
buffers for :func:`tflite_adaspring.metadata.deduplicate_buffers` to share. Results are cached per process.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from tflite_adaspring.data.spec import InputSpec
from tflite_adaspring.metadata import EnergyEstimate, LatencyEstimate, ModelMetadata, SignatureInfo

INPUT_SHAPE = (16, 3)
NUM_CLASSES = 4
KERNEL = 3
DEFAULT_WIDTHS = (4, 8, 16, 32)


def config_keys(n: int) -> tuple[str, ...]:
    """Returns the signature keys of an ``n``-configuration model: ``cfg00 .. cfg{n-1}``.

    The converter names the signature of a single function ``serving_default`` whatever the function's name.
    """
    return ("serving_default",) if n == 1 else tuple(f"cfg{i:02d}" for i in range(n))


def _supernet_weights(max_width: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "conv_w": rng.normal(0, 0.5, (KERNEL, INPUT_SHAPE[1], max_width)).astype(np.float32),
        "conv_b": rng.normal(0, 0.1, (max_width,)).astype(np.float32),
        "dense_w": rng.normal(0, 0.5, (max_width, NUM_CLASSES)).astype(np.float32),
        "dense_b": rng.normal(0, 0.1, (NUM_CLASSES,)).astype(np.float32),
    }


def numpy_reference(x: np.ndarray, width: int, seed: int = 0, max_width: int | None = None) -> np.ndarray:
    """The float64 numpy forward pass of one width (to check the converted models).

    Args:
      x: input of shape ``(1, 16, 3)``.
      width: active width.
      seed: weight seed used by :func:`build_model`.
      max_width: supernet width (defaults to the widest of :data:`DEFAULT_WIDTHS`).

    Returns:
      Logits of shape ``(1, NUM_CLASSES)``.
    """
    w = _supernet_weights(max_width or max(DEFAULT_WIDTHS), seed)
    padded = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (0, 0)))
    conv = sum(padded[:, k : k + INPUT_SHAPE[0], :] @ w["conv_w"][k, :, :width] for k in range(KERNEL))
    hidden = np.maximum(conv + w["conv_b"][:width], 0.0).mean(axis=1)
    return hidden @ w["dense_w"][:width] + w["dense_b"]


def build_model(widths: tuple[int, ...] = DEFAULT_WIDTHS, seed: int = 0, batch: int | None = 1) -> bytes:
    """Converts one signature per width into a single .tflite (no adaspring metadata).

    Args:
      widths: conv widths, one configuration each, in signature order.
      seed: weight seed.
      batch: fixed batch size of the input, or None for a dynamic batch axis.

    Returns:
      The model bytes.
    """
    return _convert(tuple(widths), seed, batch)


@functools.lru_cache(maxsize=8)
def _convert(widths: tuple[int, ...], seed: int, batch: int | None) -> bytes:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    weights = _supernet_weights(max(widths), seed)
    module = tf.Module()
    spec = tf.TensorSpec((batch, *INPUT_SHAPE), tf.float32)

    def make_signature(key: str, width: int):
        conv_w = tf.constant(weights["conv_w"][:, :, :width])
        conv_b = tf.constant(weights["conv_b"][:width])
        dense_w = tf.constant(weights["dense_w"][:width])
        dense_b = tf.constant(weights["dense_b"])

        def forward(x):
            hidden = tf.nn.relu(tf.nn.conv1d(x, conv_w, stride=1, padding="SAME") + conv_b)
            return tf.matmul(tf.reduce_mean(hidden, axis=1), dense_w) + dense_b

        forward.__name__ = key  # the signature key is the function's name
        return tf.function(forward, input_signature=[spec], autograph=False)

    functions = [make_signature(key, w) for key, w in zip(config_keys(len(widths)), widths)]
    for fn in functions:
        setattr(module, fn.__name__, fn)
    concrete = [fn.get_concrete_function() for fn in functions]
    converter = tf.lite.TFLiteConverter.from_concrete_functions(concrete, module)
    return bytes(converter.convert())


def signature_row(key: str, width: int, latency_ms: float | None = None) -> SignatureInfo:
    """A made-up but plausible metadata row for one width of :func:`build_model`.

    Args:
      key: signature key.
      width: conv width.
      latency_ms: export-host latency; defaults to a value growing with width.

    Returns:
      The row.
    """
    params = KERNEL * INPUT_SHAPE[1] * width + width + width * NUM_CLASSES + NUM_CLASSES
    macs = INPUT_SHAPE[0] * KERNEL * INPUT_SHAPE[1] * width + width * NUM_CLASSES
    latency = 0.004 + width * 0.0006 if latency_ms is None else latency_ms
    return SignatureInfo(
        key=key,
        config_id=f"w{width}",
        config={"width": width, "kernel": KERNEL},
        precision="fp32",
        params=params,
        macs=macs,
        weight_bytes=params * 4,
        peak_activation_bytes=INPUT_SHAPE[0] * width * 4 * 2,
        accuracy=round(0.70 + 0.25 * (1 - 1 / (1 + width / 8)), 4),
        test_accuracy=None,
        latency_ms=latency,
        latency_threads=1,
        latency_model=LatencyEstimate(predicted_ms=latency * 1.1, terms={"macs": macs * 1e-7}),
        energy_mj={
            "rpi4": EnergyEstimate(value=round(latency * 2.5, 6), kind="modeled"),
            "phone": EnergyEstimate(value=round(latency * 1.2, 6), kind="modeled"),
        },
    )


def make_metadata(widths: tuple[int, ...] = DEFAULT_WIDTHS, storage_mode: str = "packed") -> ModelMetadata:
    """The metadata matching :func:`build_model` with the same widths.

    Args:
      widths: conv widths in signature order.
      storage_mode: recorded storage mode.

    Returns:
      The metadata.
    """
    spec = InputSpec(task="toy", input_shape=INPUT_SHAPE, class_names=("a", "b", "c", "d"), kind="timeseries")
    rows = tuple(signature_row(k, w) for k, w in zip(config_keys(len(widths)), widths))
    return ModelMetadata(
        schema_version=1,
        producer="tflite-adaspring test",
        task="toy",
        input_spec=spec,
        space={"name": "toy_cnn", "version": 1},
        storage_mode=storage_mode,
        export_host={"cpu": "test", "cores": 2},
        signatures=rows,
    )


def build_adaspring_model(widths: tuple[int, ...] = DEFAULT_WIDTHS, seed: int = 0, batch: int | None = 1) -> bytes:
    """:func:`build_model` with :func:`make_metadata` embedded.

    Returns:
      The model bytes.
    """
    return _with_metadata(tuple(widths), seed, batch)


@functools.lru_cache(maxsize=8)
def _with_metadata(widths: tuple[int, ...], seed: int, batch: int | None) -> bytes:
    from tflite_adaspring.metadata import write_metadata

    return write_metadata(build_model(widths, seed, batch), make_metadata(widths))
