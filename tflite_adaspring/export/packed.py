"""Packed export: K materialised configurations as the K signatures of one ``.tflite``.

Each signature ``cfgNN`` is a plain subnet (BN recalibrated for that config, folded by the
converter) with the configuration's weights baked in as constants, so XNNPACK runs it at full speed.
The ``adaspring`` metadata entry carries the configuration table the runtime searches.
Signature keys are ordered by measured latency (``cfg00`` = fastest).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tflite_adaspring import __version__
from tflite_adaspring.metadata import EnergyEstimate, ModelMetadata, SignatureInfo, write_metadata
from tflite_adaspring.space import Config
from tflite_adaspring.supernet import Supernet
from tflite_adaspring.training.trainer import accuracy

# Modeled device power while running inference (W). Sources: vendor TDP per core for an x86
# server core; published Raspberry Pi 4 load-power measurements; typical big-core power of a
# mid-range phone SoC. These are coarse, documented estimates: every value derived is "modeled".
POWER_W = {"x86_server_core": 12.0, "raspberry_pi4": 3.5, "android_mid": 2.0}


def convert_signatures(supernet: Supernet, configs: Sequence[Config], keys: Sequence[str]) -> bytes:
    """Converts materialised configs into one multi-signature float32 TFLite flatbuffer.

    Args:
      supernet: the trained supernet (with recalibrated statistics stored per config).
      configs: the configurations.
      keys: one distinct signature key per config (needs at least two configs).

    Returns:
      The flatbuffer bytes.
    """
    if len(configs) < 2:
        raise ValueError("a packed export needs at least two configurations")
    import tempfile

    module = tf.Module()
    spec = tf.TensorSpec([1, *supernet.backbone.input_shape], tf.float32, name="input")
    signatures = {}
    for key, config in zip(keys, configs):
        model = supernet.materialize(config)
        setattr(module, f"model_{key}", model)  # tracked, so the SavedModel holds its weights
        signatures[key] = _signature_function(model, key, spec)
    with tempfile.TemporaryDirectory(prefix="adaspring-export-") as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=list(keys))
        return bytes(converter.convert())


def _signature_function(model: tf.keras.Model, key: str, spec: tf.TensorSpec) -> tf.types.experimental.ConcreteFunction:
    def forward(input: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"probabilities": tf.nn.softmax(model(input, training=False))}

    forward.__name__ = key
    return tf.function(forward, input_signature=[spec], autograph=False).get_concrete_function()


def measure_latency_ms(model_bytes: bytes, key: str, runs: int = 200, threads: int = 1) -> float:
    """Median invoke latency of one signature with ai_edge_litert + XNNPACK (after warm-up)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes, num_threads=threads)
    runner = interpreter.get_signature_runner(key)
    shape = runner.get_input_details()["input"]["shape"]
    x = np.zeros(shape, np.float32)
    for _ in range(20):
        runner(input=x)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        runner(input=x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def export_packed(
    supernet: Supernet,
    configs: Sequence[Config],
    dataset: object,
    calibration: list[np.ndarray],
    task: str,
    threads: int = 1,
) -> bytes:
    """Recalibrates, measures and converts ``configs`` into one packed ``.tflite`` with metadata.

    Args:
      supernet: the trained supernet.
      configs: the configurations to export (deduplicated, any order).
      dataset: the task's Dataset (val for accuracy, test for test accuracy).
      calibration: batches for BatchNorm recalibration.
      task: task name for the metadata.
      threads: threads for the latency measurement.

    Returns:
      The model bytes with the ``adaspring`` metadata entry.
    """
    configs = list(dict.fromkeys(c.with_precision("fp32") for c in configs))
    val_acc = {c: accuracy(supernet, c, dataset.val, calibration) for c in configs}  # stores BN stats
    test_acc = {c: accuracy(supernet, c, dataset.test, calibration) for c in configs}
    provisional = [f"cfg{i:02d}" for i in range(len(configs))]
    draft = convert_signatures(supernet, configs, provisional)
    latency = {c: measure_latency_ms(draft, k, threads=threads) for c, k in zip(configs, provisional)}
    ordered = sorted(configs, key=lambda c: latency[c])
    keys = [f"cfg{i:02d}" for i in range(len(ordered))]
    model_bytes = convert_signatures(supernet, ordered, keys)
    rows = []
    for key, config in zip(keys, ordered):
        cost = supernet.cost(config)
        ms = measure_latency_ms(model_bytes, key, threads=threads)
        rows.append(
            SignatureInfo(
                key=key,
                config_id=config.id,
                config=supernet.space.config_to_json(config),
                precision="fp32",
                params=cost.params,
                macs=cost.macs,
                weight_bytes=cost.weight_bytes("fp32"),
                peak_activation_bytes=cost.peak_activation_bytes("fp32"),
                accuracy=val_acc[config],
                test_accuracy=test_acc[config],
                latency_ms=ms,
                latency_threads=threads,
                latency_model=None,
                energy_mj={name: EnergyEstimate(value=ms * watts, kind="modeled") for name, watts in POWER_W.items()},
            )
        )
    metadata = ModelMetadata(
        schema_version=1,
        producer=f"tflite-adaspring {__version__}",
        task=task,
        input_spec=supernet.input_spec,
        space={"name": supernet.space.name, "version": supernet.space.version},
        storage_mode="packed",
        export_host={"machine": platform.machine(), "processor": platform.processor(), "system": platform.system()},
        signatures=tuple(rows),
    )
    return write_metadata(model_bytes, metadata)
