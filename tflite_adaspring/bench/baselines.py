"""Hand-crafted compression baselines of a run's backbone, trained alone and exported to TFLite.

Every baseline uses the run's data and training recipe (:func:`~tflite_adaspring.bench.standalone.fit_plain`)
with one epoch budget ``E`` for nets trained from scratch and ``F`` fine-tuning epochs for nets compressed
from the trained full model:

* ``full``: the largest configuration (standard convs, full width, full-rank head), ``E`` epochs;
* ``width50_pruned``: ``full`` with every prunable conv/dense (block inner convs, head) cut to half its
  output channels by L1 filter importance (``make_elastic`` + importance re-sort), then ``F`` epochs;
* ``svd_head``: ``full`` with the head's dense matrix replaced by its rank-``head_rank`` truncated SVD, ``F``;
* ``mobilenet_dws``: every block depthwise-separable (MobileNetV2-style inverted residual), ``E`` from scratch;
* ``squeezenet_fire``: every block a SqueezeNet fire module, ``E`` from scratch;
* ``int8_ptq``: ``full`` converted with int8 post-training quantization (no training);
* ``tfmot_prune50``: ``full`` pruned to 50 % unstructured sparsity with TFMOT ``prune_low_magnitude``
  while fine-tuning ``F`` epochs, then stripped (dense kernels with zeros: smaller gzip, same speed).

Before conversion every baseline's BatchNorm statistics are re-estimated on the run's calibration batches,
as every AdaSpring signature's are (without it, nets trained for few steps - e.g. 240 on basic_motions - keep
moving statistics far from the population's and collapse to one class at inference).

Models are cached under ``<run>/baselines/`` (``<name>.tflite`` and ``baselines.json``) and reused when the
run's checkpoint and the budgets match. Accuracy is measured with LiteRT on the test and validation splits.
"""

from __future__ import annotations

import dataclasses
import json
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

BASELINES = ("full", "width50_pruned", "svd_head", "mobilenet_dws", "squeezenet_fire", "int8_ptq", "tfmot_prune50")
DESCRIPTIONS = {
    "full": "full backbone",
    "width50_pruned": "width 0.5, L1 channel-pruned + fine-tuned",
    "svd_head": "SVD low-rank head + fine-tuned",
    "mobilenet_dws": "MobileNet-style depthwise-separable",
    "squeezenet_fire": "SqueezeNet-style fire",
    "int8_ptq": "int8 post-training quantization",
    "tfmot_prune50": "TFMOT prune_low_magnitude 50 % (stripped)",
}
SIGNATURE_KEY = "serving"
CACHE_SCHEMA = 2


@dataclasses.dataclass(frozen=True)
class BaselineSettings:
    """How the baselines are trained.

    Attributes:
      epochs: epoch budget of nets trained from scratch.
      finetune_epochs: fine-tuning epochs after pruning / SVD / TFMOT pruning.
      finetune_lr_scale: fine-tuning peak learning rate as a fraction of the run's.
      width: kept channel fraction of ``width50_pruned``.
      head_rank: kept rank fraction of ``svd_head``.
      sparsity: TFMOT sparsity.
    """

    epochs: int
    finetune_epochs: int
    finetune_lr_scale: float = 0.1
    width: float = 0.5
    head_rank: float = 0.25
    sparsity: float = 0.5

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.finetune_epochs < 1:
            raise ValueError(f"epochs and finetune_epochs must be >= 1, got {self.epochs}, {self.finetune_epochs}")


class _FixedModel:
    """Lets :func:`~tflite_adaspring.export.convert.convert_configs` convert a plain tf_keras model."""

    def __init__(self, model: Any, input_shape: tuple[int, ...]):
        self.model = model
        self.backbone = types.SimpleNamespace(input_shape=tuple(input_shape))

    def materialize(self, _: Any) -> Any:
        return self.model


class _AnyPrecision:
    def with_precision(self, _: str) -> _AnyPrecision:
        return self


def convert_plain(
    model: Any, input_shape: tuple[int, ...], precision: str = "fp32", representative: Any = None
) -> bytes:
    """A single-signature ``.tflite`` (key ``serving``) of a plain tf_keras model, converted like our signatures."""
    from tflite_adaspring.export.convert import convert_configs

    fixed = _FixedModel(model, input_shape)
    return convert_configs(fixed, [_AnyPrecision()], [SIGNATURE_KEY], precision, representative)


def uniform_config(space: Any, op: str) -> Any:
    """Every block of every stage kept with ``op`` at full width, full-rank head (fp32)."""
    from tflite_adaspring.space import BlockChoice, Config

    block = BlockChoice(op, space.widths[-1])
    return Config(tuple((block,) * n for n in space.blocks_per_stage), space.head_ranks[-1], "fp32")


def _fresh(supernet: Any, config: Any, seed: int) -> Any:
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    return tf_keras.models.clone_model(supernet.materialize(config))  # same architecture, fresh weights


def _copy(model: Any) -> Any:
    import tf_keras

    clone = tf_keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def prune_channels(model: Any, width: float, calibration: list[np.ndarray]) -> Any:
    """``model`` with every prunable layer's output channels cut to ``width`` by L1 filter importance.

    Args:
      model: a trained plain tf_keras model.
      width: kept fraction in (0, 1).
      calibration: input batches to re-estimate BatchNorm statistics of the pruned net.

    Returns:
      The pruned plain model (weights copied; ``model`` is untouched).
    """
    from tflite_adaspring.keras import make_elastic
    from tflite_adaspring.supernet import apply_permutations

    elastic = make_elastic(model, widths=(width, 1.0), ranks=None, depth=False)
    apply_permutations(elastic.channel_permutations())
    config = elastic.space.make({name: width for name in elastic.space.knob_names if name.endswith(".width")})
    elastic.recalibrate(config, calibration)
    return elastic.materialize(config)


def recalibrate_plain(model: Any, calibration: list[np.ndarray]) -> Any:
    """A copy of ``model`` whose BatchNorm statistics are re-estimated on ``calibration`` (weights unchanged)."""
    from tflite_adaspring.keras import make_elastic

    elastic = make_elastic(model, widths=None, ranks=None, depth=False)
    config = elastic.space.largest()
    elastic.recalibrate(config, calibration)
    return elastic.materialize(config)


def svd_head(model: Any, rank: float, calibration: list[np.ndarray]) -> Any:
    """``model`` with its large dense layers replaced by rank-``rank`` truncated SVD factors."""
    from tflite_adaspring.keras import make_elastic

    elastic = make_elastic(model, widths=None, ranks=(rank, 1.0), depth=False)
    config = elastic.space.make({name: rank for name in elastic.space.knob_names})
    elastic.recalibrate(config, calibration)
    return elastic.materialize(config)


def _cache_key(run_dir: Path, settings: BaselineSettings) -> dict[str, Any]:
    from tflite_adaspring.export.pipeline import checkpoint_name

    return {"schema": CACHE_SCHEMA, "checkpoint": checkpoint_name(run_dir), **dataclasses.asdict(settings)}


def build_baselines(
    run_dir: str | Path,
    settings: BaselineSettings,
    names: tuple[str, ...] = BASELINES,
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:
    """Trains (or reuses) and converts the baselines of a run.

    Args:
      run_dir: a folder written by ``adaspring train`` (data, recipe and backbone come from it).
      settings: the budgets.
      names: which baselines (subset of :data:`BASELINES`).
      cache_dir: where models and ``baselines.json`` go (default ``<run_dir>/baselines``).
      log: progress messages (which baseline, which epoch).

    Returns:
      Name -> ``{"name", "description", "path", "test_accuracy", "val_accuracy", "params", "file_bytes",
      "gzip_bytes", "train_epochs", "finetune_epochs", "seconds"}``.

    Raises:
      ValueError: an unknown baseline name.
    """
    from tflite_adaspring.export.packed import signature_accuracy
    from tflite_adaspring.export.pipeline import calibration_batches
    from tflite_adaspring.fileio import atomic_write_bytes, atomic_write_json
    from tflite_adaspring.operators.pruning import gzip_size, prune_for_storage
    from tflite_adaspring.space import OP_DEPTHWISE_SEPARABLE, OP_FIRE
    from tflite_adaspring.training.run import load_run

    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {BASELINES}")
    run_dir = Path(run_dir)
    cache = Path(cache_dir or run_dir / "baselines")
    index_path = cache / "baselines.json"
    key = _cache_key(run_dir, settings)
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    if index.get("key") != key:
        index = {"key": key, "models": {}}
    done = {n: m for n, m in index["models"].items() if n in names and (cache / f"{n}.tflite").exists()}
    todo = [n for n in names if n not in done]
    if not todo:
        log(f"baselines: all {len(names)} reused from {cache}")
        return {n: done[n] for n in names}
    info, supernet, dataset = load_run(run_dir)
    options = dataclasses.replace(info.options, epochs=settings.epochs)
    fine_lr = options.learning_rate * settings.finetune_lr_scale
    calibration = calibration_batches(info, dataset)
    shape = tuple(info.backbone.input_shape)
    representative = np.asarray(dataset.train[0][:100], np.float32)
    full_weights = cache / f"full_weights_e{options.epochs}_s{options.seed}.npz"  # trained weights, any schema
    full_model: Any = None

    def trained_full() -> Any:
        nonlocal full_model
        if full_model is None:
            full_model = _fresh(supernet, supernet.space.largest(), options.seed)
            from tflite_adaspring.bench.standalone import fit_plain, load_weights_npz, save_weights_npz

            if full_weights.exists():
                load_weights_npz(full_model, full_weights)
            else:
                log(f"baseline full: training {options.epochs} epochs from scratch")
                fit_plain(full_model, dataset, options, log=log, label="full")
                save_weights_npz(full_model, full_weights)
        return full_model

    def fine_tune(model: Any, label: str) -> Any:
        from tflite_adaspring.bench.standalone import fit_plain

        return fit_plain(model, dataset, options, settings.finetune_epochs, fine_lr, log=log, label=label)

    def make(name: str) -> tuple[Any, str, int, int]:
        """(keras model, precision, trained-from-scratch epochs, fine-tuning epochs)."""
        from tflite_adaspring.bench.standalone import fit_plain

        if name == "full":
            return trained_full(), "fp32", settings.epochs, 0
        if name in ("mobilenet_dws", "squeezenet_fire"):
            op = OP_DEPTHWISE_SEPARABLE if name == "mobilenet_dws" else OP_FIRE
            model = _fresh(supernet, uniform_config(supernet.space, op), options.seed)
            log(f"baseline {name}: training {options.epochs} epochs from scratch")
            return fit_plain(model, dataset, options, log=log, label=name), "fp32", settings.epochs, 0
        if name == "width50_pruned":
            log(f"baseline {name}: L1 channel pruning to width {settings.width}, fine-tuning")
            model = prune_channels(trained_full(), settings.width, calibration)
            return fine_tune(model, name), "fp32", settings.epochs, settings.finetune_epochs
        if name == "svd_head":
            log(f"baseline {name}: SVD head at rank {settings.head_rank}, fine-tuning")
            model = svd_head(trained_full(), settings.head_rank, calibration)
            return fine_tune(model, name), "fp32", settings.epochs, settings.finetune_epochs
        if name == "int8_ptq":
            log(f"baseline {name}: int8 post-training quantization of full")
            return trained_full(), "int8", settings.epochs, 0
        log(f"baseline {name}: TFMOT magnitude pruning to {settings.sparsity:.0%} while fine-tuning")
        model = prune_for_storage(_copy(trained_full()), settings.sparsity, fine_tune=dataset.train,
                                  epochs=settings.finetune_epochs, batch_size=options.batch_size)  # fmt: skip
        return model, "fp32", settings.epochs, settings.finetune_epochs

    ordered = sorted(todo, key=lambda n: n != "full")  # full first: others start from it
    for name in ordered:
        t0 = time.perf_counter()
        model, precision, epochs, finetune = make(name)
        model = recalibrate_plain(model, calibration)
        tflite = convert_plain(model, shape, precision, representative if precision == "int8" else None)
        path = atomic_write_bytes(cache / f"{name}.tflite", tflite)
        entry = {
            "name": name,
            "description": DESCRIPTIONS[name],
            "path": str(path),
            "precision": precision,
            "test_accuracy": signature_accuracy(tflite, SIGNATURE_KEY, *dataset.test),
            "val_accuracy": signature_accuracy(tflite, SIGNATURE_KEY, *dataset.val),
            "params": int(model.count_params()),
            "file_bytes": len(tflite),
            "gzip_bytes": gzip_size(tflite),
            "train_epochs": epochs,
            "finetune_epochs": finetune,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        done[name] = entry
        index["models"][name] = entry
        atomic_write_json(index_path, index)
        log(f"baseline {name}: test accuracy {entry['test_accuracy']:.3f}, {len(tflite) / 1e3:.1f} kB, "
            f"{entry['seconds']} s")  # fmt: skip
    return {n: done[n] for n in names}
