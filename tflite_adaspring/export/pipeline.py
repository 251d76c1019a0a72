"""``adaspring export`` end to end: run folder -> predictors -> Pareto search -> K configurations -> model.

1. load the run (supernet weights, data) and its BatchNorm calibration batches;
2. the latency table: loaded from ``--lut`` or measured now (:func:`~tflite_adaspring.profiling.lut.build_lut`);
3. the accuracy predictor: fitted on >= 100 sampled configurations measured on the validation split
   (cached in a samples file when one is given);
4. search the whole space with the predictors, select K configurations covering the front, always with
   the largest and the smallest; for ``evolve`` storage, only configurations whose decomposition branches
   beyond the backbone and the smallest configuration's fit :data:`EVOLVE_BRANCH_BUDGET` (a fraction of the
   largest configuration's weight bytes; 0: width, depth and rank slices of those two only), so the file
   stays near the full model's size whatever K is; for ``packed`` storage, only configurations whose
   weights, counted as if no tensor were shared, fit ``max_size_ratio`` x the largest configuration's
   float32 weights (:func:`packed_weight_bytes`; default :func:`default_size_ratio`: the issue's 3x when
   every signature is fp32, 2x when fp16/int8 may store the small ones), so the file stays within that
   multiple of the single full model;
5. export them (:func:`~tflite_adaspring.export.packed.build_packed`): real latency and accuracy.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tflite_adaspring.export.packed import PackedExport, build_packed
from tflite_adaspring.profiling import accuracy_predictor as ap
from tflite_adaspring.profiling.config_sampling import sample_configs
from tflite_adaspring.profiling.lut import LatencyLUT, build_lut
from tflite_adaspring.profiling.pareto import Candidate, Evaluator, extremes, restrict_precisions, search, select_k
from tflite_adaspring.profiling.plan import SubnetPlanner
from tflite_adaspring.space import PRECISIONS, Config

EVOLVE_BRANCH_BUDGET = 0.0
FP32_SIZE_RATIO = 3.0  # default packed-file cap, all signatures fp32 (x the full fp32 model's weights)
COMPACT_SIZE_RATIO = 2.0  # default cap when fp16 or int8 signatures are allowed


def default_size_ratio(precisions: Sequence[str]) -> float:
    """The default packed-file cap for the precisions the search may use (see the module docstring)."""
    return FP32_SIZE_RATIO if set(precisions) == {"fp32"} else COMPACT_SIZE_RATIO


def packed_weight_bytes(supernet: Any, configs: Sequence[Config]) -> int:
    """Weight bytes of ``configs`` at their precisions, counted as if no tensor were shared between them.

    An upper bound on the weights a packed file holds (the converter and the deduplication pass only
    share identical tensors).
    """
    return sum(supernet.cost(c).weight_bytes(c.precision) for c in configs)


@dataclasses.dataclass(frozen=True)
class ExportPlan:
    """What the search chose and why.

    Attributes:
      candidates: the K selected candidates (predicted objectives), sorted by predicted latency.
      front_size: size of the predicted Pareto front.
      evaluated: configurations evaluated by the search.
      predictor: the fitted accuracy predictor.
      lut: the latency table.
    """

    candidates: list[Candidate]
    front_size: int
    evaluated: int
    predictor: ap.AccuracyPredictor
    lut: LatencyLUT


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What :func:`export_run` produced.

    Attributes:
      model_bytes: the model to write (packed or evolve storage).
      mode: ``packed`` or ``evolve``.
      packed: the packed export (measurements, sizes) the model was built from.
      plan: the search and selection behind it.
      evolve_report: sizes and derivation errors of the evolve conversion, or None.
    """

    model_bytes: bytes
    mode: str
    packed: PackedExport
    plan: ExportPlan
    evolve_report: dict[str, Any] | None = None


def calibration_batches(info: Any, dataset: Any) -> list[np.ndarray]:
    """The run's BatchNorm recalibration batches (the trainer's fixed random subset of the training inputs)."""
    options = info.options
    n = len(dataset.train[0])
    chosen = np.random.default_rng(options.seed).permutation(n)[: options.recalibration_batches * options.batch_size]
    x = dataset.train[0][np.sort(chosen)]
    return [x[i : i + options.batch_size] for i in range(0, len(x), options.batch_size)]


def fit_accuracy_predictor(
    supernet: Any,
    dataset: Any,
    calibration: Sequence[np.ndarray],
    samples: int = 240,
    seed: int = 0,
    cache: dict[str, ap.Sample] | None = None,
    log: Callable[[str], None] = print,
    sampler: str = "mac_stratified",
) -> ap.AccuracyPredictor:
    """Measures ``samples`` sampled fp32 configurations (plus the extremes) and fits the predictor.

    Args:
      supernet: the trained supernet.
      dataset: the task's Dataset (validation split measured).
      calibration: BatchNorm recalibration batches.
      samples: configurations drawn by ``sampler``.
      seed: seed of the draw.
      cache: measured samples by config id (updated in place).
      log: progress messages.
      sampler: a :data:`~tflite_adaspring.profiling.config_sampling.SAMPLERS` name.

    Returns:
      The fitted predictor.
    """
    space = supernet.space
    drawn = sample_configs(space, sampler, samples, random.Random(f"accuracy-{seed}"),
                           lambda c: supernet.cost(c).macs)  # fmt: skip
    configs = list(dict.fromkeys([space.largest(), space.smallest(), *drawn]))
    cache = {} if cache is None else cache
    missing = sum(1 for c in configs if c.id not in cache)
    if missing:
        log(f"measuring the validation accuracy of {missing} configurations for the accuracy predictor ...")
    measured = ap.measure_samples(supernet, configs, dataset.val, calibration, cache)
    return ap.AccuracyPredictor.fit_samples(space, configs, measured, seed=seed)


def plan_export(
    supernet: Any,
    lut: LatencyLUT,
    predictor: ap.AccuracyPredictor,
    k: int = 16,
    precisions: Sequence[str] = PRECISIONS,
    threads: int = 1,
    seed: int = 0,
    population: int = 64,
    generations: int = 40,
    branch_budget: float | None = None,
    max_size_ratio: float | None = None,
) -> ExportPlan:
    """Searches the space with the predictors and selects K configurations (see the module docstring).

    At most one storage cap applies, each relative to the largest configuration's float32 weight bytes:
    ``branch_budget`` caps the decomposition-branch weights the selection may add beyond the backbone
    and the required (largest, smallest) configurations' own branches (evolve storage);
    ``max_size_ratio`` caps :func:`packed_weight_bytes` of the whole selection (packed storage; the
    required configurations are always taken). None: no cap.

    Raises:
      ValueError: both caps given, or a cap that is not positive.
    """
    if branch_budget is not None and max_size_ratio is not None:
        raise ValueError("give branch_budget (evolve storage) or max_size_ratio (packed storage), not both")
    if max_size_ratio is not None and not max_size_ratio > 0:
        raise ValueError(f"max_size_ratio must be > 0 (or None for no cap), got {max_size_ratio}")
    space = restrict_precisions(supernet.space, precisions)
    evaluate = Evaluator(supernet, lut, predictor, threads)
    front = search(space, evaluate, population=population, generations=generations, seed=seed)
    required = [evaluate(c) for c in extremes(space)]
    full_bytes = supernet.cost(supernet.space.largest()).weight_bytes()
    if branch_budget is not None:
        from tflite_adaspring.export.evolve import branch_bytes

        budget = branch_bytes(supernet, [r.config for r in required]) + int(branch_budget * full_bytes)
        chosen = select_k(front, k, required, lambda configs: branch_bytes(supernet, configs), budget)
    elif max_size_ratio is not None:
        budget = int(max_size_ratio * full_bytes)
        chosen = select_k(front, k, required, lambda configs: packed_weight_bytes(supernet, configs), budget)
    else:
        chosen = select_k(front, k, required)
    return ExportPlan(chosen, len(front), evaluate.evaluated, predictor, lut)


def export_run(
    run_dir: str | Path,
    k: int = 16,
    precisions: Sequence[str] = PRECISIONS,
    lut_path: str | Path | None = None,
    threads: int = 1,
    predictor_samples: int = 240,
    samples_cache: str | Path | None = None,
    seed: int = 0,
    mode: str = "packed",
    max_size_ratio: float | str | None = "auto",
    log: Callable[[str], None] = print,
) -> ExportResult:
    """Runs the whole export of a training run.

    Args:
      run_dir: a folder written by ``adaspring train``.
      k: number of signatures.
      precisions: precisions the search may use.
      lut_path: a ``lut.json`` from ``adaspring profile`` (None: profile this host now).
      threads: LiteRT threads for latency (prediction and measurement).
      predictor_samples: sampled configurations measured for the accuracy predictor (>= 100 recommended).
      samples_cache: JSON file caching those measurements across exports (None: no cache).
      seed: seed of sampling and search.
      mode: ``packed``, or ``evolve`` (the packed export converted by
        :func:`tflite_adaspring.export.evolve.evolve_from_packed`).
      max_size_ratio: packed storage: cap on the selection's weights as a multiple of the full model's
        (see :func:`plan_export`); ``"auto"``: :func:`default_size_ratio`; None: no cap. Ignored for
        evolve storage, which has its own branch budget.
      log: progress messages.

    Returns:
      The :class:`ExportResult`.

    Raises:
      ValueError: an unknown ``mode`` or a malformed ``max_size_ratio``.
    """
    if mode not in ("packed", "evolve"):
        raise ValueError(f"unknown storage mode {mode!r}; choose packed or evolve")
    if isinstance(max_size_ratio, str) and max_size_ratio != "auto":
        raise ValueError(f"max_size_ratio {max_size_ratio!r}: give a number, 'auto' or None")
    from tflite_adaspring.training.run import load_run

    info, supernet, dataset = load_run(run_dir)
    calibration = calibration_batches(info, dataset)
    planner = SubnetPlanner(supernet)
    if lut_path is not None:
        lut = LatencyLUT.load(lut_path).bind(planner)
    else:
        log("no --lut given: profiling this host (save one with `adaspring profile --run RUN --out lut.json`)")
        lut = build_lut(supernet, (threads,), precisions, representative=dataset.train[0][:64], log=log)
    checkpoint = checkpoint_name(run_dir)
    cache = ap.load_samples(samples_cache, supernet.space, checkpoint) if samples_cache else {}
    predictor = fit_accuracy_predictor(supernet, dataset, calibration, predictor_samples, seed, cache, log)
    if samples_cache:
        ap.save_samples(samples_cache, supernet.space, checkpoint, cache)
    log(f"accuracy predictor: {predictor.samples} configs, cross-validated Spearman {predictor.cv_spearman:.3f}")
    if mode == "evolve":
        caps: dict[str, float | None] = {"branch_budget": EVOLVE_BRANCH_BUDGET}
    else:
        ratio = default_size_ratio(precisions) if max_size_ratio == "auto" else max_size_ratio
        caps = {"max_size_ratio": None if ratio is None else float(ratio)}
        if ratio is not None:
            log(f"packed storage: selecting within {float(ratio):g}x the full model's weights")
    plan = plan_export(supernet, lut, predictor, k, precisions, threads, seed, **caps)
    log(f"search: {plan.evaluated} configurations evaluated, predicted front of {plan.front_size}; "
        f"exporting {len(plan.candidates)}")  # fmt: skip
    export = build_packed(
        supernet,
        [c.config for c in plan.candidates],
        dataset,
        calibration,
        info.task,
        threads,
        latency_model=lut,
        representative=np.asarray(dataset.train[0][:100], np.float32),
        extra_host_info={"lut_noise": lut.noise.get(threads)},
    )
    if mode == "packed":
        return ExportResult(export.model_bytes, mode, export, plan)
    from tflite_adaspring.export.evolve import evolve_from_packed

    model, report = evolve_from_packed(supernet, export.model_bytes, calibration)
    return ExportResult(model, mode, export, plan, report)


def checkpoint_name(run_dir: str | Path) -> str:
    """The name of the run's latest checkpoint (keys the accuracy-sample cache)."""
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(str(Path(run_dir) / "checkpoints"))
    return Path(latest).name if latest else ""
