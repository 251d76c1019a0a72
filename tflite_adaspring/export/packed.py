"""Packed export: K configurations as the K signatures of one ``.tflite``, with ``adaspring`` metadata.

Each signature is a plain materialised subnet (BatchNorm recalibrated for that configuration and folded
by the converter) with its weights as constants, so XNNPACK runs it at full speed. Configurations are
converted per precision (:func:`~tflite_adaspring.export.convert.convert_configs`), merged into one
flatbuffer, measured together, and renamed ``cfg00, cfg01, ...`` in order of measured latency (ties by
config id). Identical constant buffers are shared, and every signature's accuracy is measured with
LiteRT itself on the validation (and test) split. Energy is modeled from the measured latency with the
bundled device profiles, and measured too when the host has a power sensor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from tflite_adaspring import __version__
from tflite_adaspring.export.convert import INPUT_NAME, OUTPUT_NAME, convert_configs
from tflite_adaspring.export.merge import merge_models, rename_signatures
from tflite_adaspring.metadata import (
    SCHEMA_VERSION,
    ModelMetadata,
    SignatureInfo,
    deduplicate_buffers,
    write_metadata,
)
from tflite_adaspring.profiling._litert import make_interpreter
from tflite_adaspring.profiling.analytic import analytic_cost
from tflite_adaspring.profiling.energy import bundled_profiles, find_sensor, measure_energy
from tflite_adaspring.profiling.latency_measure import LatencyMeasurement, measure_signatures
from tflite_adaspring.profiling.lut import host_description
from tflite_adaspring.space import PRECISIONS, Config


@dataclasses.dataclass(frozen=True)
class PackedExport:
    """The result of :func:`build_packed`.

    Attributes:
      model_bytes: the final model (metadata embedded).
      metadata: the embedded metadata.
      configs: signature key -> configuration.
      latency: signature key -> measurement behind ``latency_ms``.
      size_before_dedup: bytes of the merged model before buffer deduplication (metadata excluded).
      size_after_dedup: bytes after deduplication (metadata excluded).
    """

    model_bytes: bytes
    metadata: ModelMetadata
    configs: dict[str, Config]
    latency: dict[str, LatencyMeasurement]
    size_before_dedup: int
    size_after_dedup: int


def signature_accuracy(model_bytes: bytes, key: str, x: np.ndarray, y: np.ndarray, threads: int = 1) -> float:
    """Accuracy of one signature on ``(x, y)``, run with LiteRT one example at a time.

    Args:
      model_bytes: the model.
      key: the signature.
      x: inputs shaped ``(n,) + input_shape``.
      y: integer labels.
      threads: LiteRT threads.

    Returns:
      Accuracy in [0, 1].
    """
    return float(np.mean(signature_predictions(model_bytes, key, x, threads).argmax(-1) == y)) if len(x) else 0.0


def signature_predictions(model_bytes: bytes, key: str, x: np.ndarray, threads: int = 1) -> np.ndarray:
    """Probabilities of one signature for every row of ``x`` (shape ``(n, classes)``)."""
    runner = make_interpreter(model_bytes, threads).get_signature_runner(key)
    x = np.asarray(x, np.float32)
    return np.concatenate([runner(**{INPUT_NAME: x[i : i + 1]})[OUTPUT_NAME] for i in range(len(x))])


def _recalibrate(supernet: Any, configs: Sequence[Config], calibration: Sequence[np.ndarray]) -> None:
    for config in configs:
        if config.with_precision("fp32") not in supernet.bn_statistics:
            supernet.recalibrate(config, calibration)


def convert_mixed(
    supernet: Any, configs: Sequence[Config], keys: Sequence[str], representative: np.ndarray | None
) -> bytes:
    """Converts each precision group separately and merges them (signature ``keys[i]`` is ``configs[i]``)."""
    parts = []
    for precision in PRECISIONS:
        group = [(k, c) for k, c in zip(keys, configs) if c.precision == precision]
        if group:
            parts.append(
                convert_configs(supernet, [c for _, c in group], [k for k, _ in group], precision, representative)
            )
    return merge_models(parts)


def build_packed(
    supernet: Any,
    configs: Sequence[Config],
    dataset: Any,
    calibration: Sequence[np.ndarray],
    task: str,
    threads: int = 1,
    latency_model: Any = None,
    representative: np.ndarray | None = None,
    runs: int = 50,
    rounds: int = 6,
    extra_host_info: dict[str, Any] | None = None,
) -> PackedExport:
    """Recalibrates, converts, merges, measures and orders ``configs`` into one packed model.

    Args:
      supernet: the trained supernet.
      configs: the configurations with their precision (duplicates are dropped).
      dataset: the task's Dataset (``val`` for accuracy, ``test`` for test accuracy).
      calibration: input batches for BatchNorm recalibration.
      task: task name for the metadata.
      threads: LiteRT threads of the latency measurement.
      latency_model: a :class:`~tflite_adaspring.profiling.lut.LatencyLUT` whose prediction is stored
        per signature, or None.
      representative: int8 calibration inputs (default: the first 100 training inputs).
      runs: timed calls per signature per round.
      rounds: interleaved measurement rounds.
      extra_host_info: more fields for the metadata's ``export_host``.

    Returns:
      The :class:`PackedExport`.
    """
    configs = [supernet.space.validate(c) for c in dict.fromkeys(configs)]
    if not configs:
        raise ValueError("a packed export needs at least one configuration")
    _recalibrate(supernet, configs, calibration)
    if representative is None:
        representative = np.asarray(dataset.train[0][:100], np.float32)
    draft_keys = [f"draft{i:02d}" for i in range(len(configs))]
    raw = convert_mixed(supernet, configs, draft_keys, representative)
    merged = deduplicate_buffers(raw)
    latency = measure_signatures(merged, draft_keys, threads=threads, runs=runs, rounds=rounds)
    by_draft = dict(zip(draft_keys, configs))
    ordered = sorted(draft_keys, key=lambda k: (latency[k].median_ms, by_draft[k].id))
    final_keys = {old: f"cfg{i:02d}" for i, old in enumerate(ordered)}
    model_bytes = rename_signatures(merged, final_keys, [final_keys[k] for k in ordered])
    keyed = {final_keys[k]: by_draft[k] for k in ordered}
    measured = {final_keys[k]: latency[k] for k in ordered}
    sensor = find_sensor()
    rows = [
        _row(supernet, key, config, model_bytes, dataset, measured[key], threads, latency_model, sensor)
        for key, config in keyed.items()
    ]
    host = {
        **host_description(),
        "threads": threads,
        "latency_spread_median": float(np.median([m.spread for m in measured.values()])),
        "energy_sensor": None if sensor is None else sensor.name,
        **(extra_host_info or {}),
    }
    metadata = ModelMetadata(
        schema_version=SCHEMA_VERSION,
        producer=f"tflite-adaspring {__version__}",
        task=task,
        input_spec=supernet.input_spec,
        space={"name": supernet.space.name, "version": supernet.space.version},
        storage_mode="packed",
        export_host=host,
        signatures=tuple(rows),
    )
    return PackedExport(
        model_bytes=write_metadata(model_bytes, metadata),
        metadata=metadata,
        configs=keyed,
        latency=measured,
        size_before_dedup=len(raw),
        size_after_dedup=len(merged),
    )


def _row(
    supernet: Any,
    key: str,
    config: Config,
    model_bytes: bytes,
    dataset: Any,
    latency: LatencyMeasurement,
    threads: int,
    latency_model: Any,
    sensor: Any,
) -> SignatureInfo:
    """The metadata row of one signature (accuracy measured with LiteRT on val and test)."""
    cost = analytic_cost(supernet, config)
    energy = {p.name: p.modeled_energy(latency.median_ms, threads) for p in bundled_profiles()}
    if sensor is not None:
        runner = make_interpreter(model_bytes, threads).get_signature_runner(key)
        x = np.zeros(runner.get_input_details()[INPUT_NAME]["shape"], np.float32)
        runs = max(100, int(2000 / max(latency.median_ms, 1e-3)))  # about two seconds of calls
        energy["export_host"] = measure_energy(lambda: runner(**{INPUT_NAME: x}), runs, sensor)
    predicted = None
    if latency_model is not None:
        predicted = latency_model.predict(config, threads)
    val_x, val_y = dataset.val
    test_x, test_y = dataset.test
    return SignatureInfo(
        key=key,
        config_id=config.id,
        config=supernet.space.config_to_json(config),
        precision=config.precision,
        params=cost.params,
        macs=cost.macs,
        weight_bytes=cost.weight_bytes[config.precision],
        peak_activation_bytes=cost.peak_activation_bytes[config.precision],
        accuracy=signature_accuracy(model_bytes, key, val_x, val_y, threads),
        test_accuracy=signature_accuracy(model_bytes, key, test_x, test_y, threads) if len(test_x) else None,
        latency_ms=latency.median_ms,
        latency_threads=threads,
        latency_model=predicted,
        energy_mj=energy,
    )


def export_packed(
    supernet: Any,
    configs: Sequence[Config],
    dataset: Any,
    calibration: list[np.ndarray],
    task: str,
    threads: int = 1,
) -> bytes:
    """Packed model bytes for ``configs`` (see :func:`build_packed`; kept for ``adaspring demo``).

    Args:
      supernet: the trained supernet.
      configs: the configurations (with their precision).
      dataset: the task's Dataset.
      calibration: batches for BatchNorm recalibration.
      task: task name for the metadata.
      threads: threads for the latency measurement.

    Returns:
      The model bytes with the ``adaspring`` metadata entry.
    """
    return build_packed(supernet, configs, dataset, calibration, task, threads).model_bytes


def convert_signatures(supernet: Any, configs: Sequence[Config], keys: Sequence[str]) -> bytes:
    """Converts configurations into one float32 multi-signature model (see :func:`convert_configs`)."""
    return convert_configs(supernet, configs, keys, "fp32")


def measure_latency_ms(model_bytes: bytes, key: str, runs: int = 200, threads: int = 1) -> float:
    """Median call latency of one signature with LiteRT + XNNPACK (see :func:`measure_signatures`)."""
    return measure_signatures(model_bytes, [key], threads=threads, runs=max(1, runs // 4), rounds=4)[key].median_ms
