"""``adaspring bench predictors``: how well the latency table and the accuracy predictor predict, on held-out configs.

* latency: the table (``--lut``, or built now and saved in ``--work``) predicts >= 20 random held-out
  configurations of every precision; they are converted, measured interleaved on this machine, and the
  median absolute percentage error is reported overall, per precision and per thread count, with the
  measurement noise (interquartile range of round medians / median);
* accuracy: the predictor is fitted on ``--train_configs`` sampled configurations and scored by Spearman
  correlation with the measured top-1 validation accuracy (BatchNorm recalibrated) of ``--test_configs``
  other ones, drawn by the same sampler, with a 95 % bootstrap interval over the held-out configurations;
  the previous predictor (ridge alone on the smoothed label) is scored on the same configurations, with a
  paired bootstrap interval of the difference. Reported for every sampler of
  :mod:`tflite_adaspring.profiling.config_sampling`, the limit applying to ``--sampler``. Measurements are
  cached in ``--work``/accuracy.json.

Writes ``docs/results/predictors_<task>.json`` and a markdown table next to it, atomically.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
from absl import flags

FLAGS = flags.FlagValues()
flags.DEFINE_string("run", "runs/demo/har_watch/run", "Trained run folder.", flag_values=FLAGS)
flags.DEFINE_string("lut", None, "Latency table (default: build one and keep it in --work).", flag_values=FLAGS)
flags.DEFINE_string("work", "runs/bench/predictors", "Folder for the table and the accuracy samples.",
                    flag_values=FLAGS)  # fmt: skip
flags.DEFINE_string("results", "docs/results", "Where the JSON and markdown go.", flag_values=FLAGS)
flags.DEFINE_list("threads", ["1", "2"], "Thread counts of the latency evaluation.", flag_values=FLAGS)
flags.DEFINE_integer("latency_configs", 24, "Held-out configurations measured for latency.", flag_values=FLAGS)
flags.DEFINE_integer("train_configs", 240, "Configurations measured to fit the accuracy predictor.", flag_values=FLAGS)
flags.DEFINE_integer("test_configs", 240, "Held-out configurations for the accuracy predictor.", flag_values=FLAGS)
flags.DEFINE_integer("seed", 7, "Seed of the held-out configurations.", flag_values=FLAGS)
flags.DEFINE_enum("sampler", "mac_stratified", ["mac_stratified", "uniform"],
                  "Sampler of the accuracy predictor's fit and held-out configurations the limit applies to (the "
                  "other one is reported too).", flag_values=FLAGS)  # fmt: skip

LIMITS = {"latency_median_abs_error_pct": 10.0, "accuracy_spearman": 0.8}
BOOTSTRAP_RESAMPLES = 2000


def _median_abs_pct(pred: list[float], meas: list[float]) -> float:
    return float(np.median(np.abs(np.asarray(pred) - np.asarray(meas)) / np.asarray(meas)) * 100) if meas else 0.0


def latency_report(supernet: Any, lut: Any, dataset: Any, n: int, threads: tuple[int, ...], seed: int) -> dict:
    """Converts ``n`` held-out configurations (precisions cycled), measures them, compares to the table."""
    from tflite_adaspring.export.packed import convert_mixed
    from tflite_adaspring.profiling.latency_measure import measure_signatures

    space = supernet.space
    rng = random.Random(f"latency-heldout-{seed}")
    configs: list[Any] = []
    while len(configs) < n:
        c = space.sample(rng, precision=space.precisions[len(configs) % len(space.precisions)])
        if c not in configs:
            configs.append(c)
    keys = [f"h{i:02d}" for i in range(n)]
    model = convert_mixed(supernet, configs, keys, np.asarray(dataset.train[0][:64], np.float32))
    out: dict[str, Any] = {"configs": n, "threads": {}}
    for t in threads:
        measured = measure_signatures(model, keys, threads=t, runs=50, rounds=8)
        rows = []
        for k, c in zip(keys, configs):
            pred = lut.predict(c, t).predicted_ms
            rows.append({"config": c.id, "measured_ms": measured[k].median_ms, "predicted_ms": pred,
                         "error_pct": (pred - measured[k].median_ms) / measured[k].median_ms * 100,
                         "noise_pct": measured[k].spread * 100})  # fmt: skip
        per_precision = {
            p: _median_abs_pct([r["predicted_ms"] for r in rows if r["config"].endswith(p)],
                               [r["measured_ms"] for r in rows if r["config"].endswith(p)])
            for p in space.precisions
        }  # fmt: skip
        errors = np.abs([r["error_pct"] for r in rows])
        out["threads"][str(t)] = {
            "median_abs_error_pct": float(np.median(errors)),
            "p90_abs_error_pct": float(np.percentile(errors, 90)),
            "per_precision_median_abs_error_pct": per_precision,
            "median_noise_pct": float(np.median([r["noise_pct"] for r in rows])),
            "rows": rows,
        }
    return out


def bootstrap_spearman(pred: list[float], truth: list[float], baseline: list[float], seed: int = 0) -> dict[str, list]:
    """95 % bootstrap intervals (held-out configurations resampled) of Spearman and of its gain over ``baseline``.

    Args:
      pred: predictions for the held-out configurations.
      truth: their measured accuracies.
      baseline: another predictor's predictions for the same configurations (paired resamples).
      seed: resampling seed.

    Returns:
      ``{"spearman_ci": [low, high], "gain_ci": [low, high]}``.
    """
    from tflite_adaspring.profiling.accuracy_predictor import spearman

    p, t, b = (np.asarray(v, np.float64) for v in (pred, truth, baseline))
    rng = np.random.default_rng(seed)
    rho, gain = [], []
    for _ in range(BOOTSTRAP_RESAMPLES):
        j = rng.integers(0, len(t), len(t))
        rho.append(spearman(p[j], t[j]))
        gain.append(rho[-1] - spearman(b[j], t[j]))
    return {
        "spearman_ci": [float(np.percentile(rho, 2.5)), float(np.percentile(rho, 97.5))],
        "gain_ci": [float(np.percentile(gain, 2.5)), float(np.percentile(gain, 97.5))],
    }


def _accuracy_seed_text(sampler: str, seed: int) -> str:
    # the uniform draw keeps the seed text of earlier versions, so its configurations stay the same
    return f"accuracy-bench-{seed}" if sampler == "uniform" else f"accuracy-bench-{sampler}-{seed}"


def accuracy_report(supernet: Any, dataset: Any, calibration: list, cache_path: Path, n_train: int, n_test: int,
                    seed: int, checkpoint: str, sampler: str = "mac_stratified") -> dict:  # fmt: skip
    """Fits the predictor on ``n_train`` measured configs and scores it on ``n_test`` held-out ones.

    Both sets come from one draw of ``sampler`` (see :mod:`tflite_adaspring.profiling.config_sampling`).
    The predictor (ridge + kernel ridge, label chosen by cross-validation) is scored by Spearman against
    measured top-1 accuracy, with bootstrap intervals; the previous predictor (ridge alone on the smoothed
    label) is scored next to it, and so is the Spearman of predictors fitted on the first quarter, half and
    three quarters of the training draw (a learning curve).

    Returns:
      The report dict (``spearman`` is the one the limit applies to).
    """
    from tflite_adaspring.profiling import accuracy_predictor as ap
    from tflite_adaspring.profiling.config_sampling import sample_configs

    space = supernet.space
    rng = random.Random(_accuracy_seed_text(sampler, seed))
    configs = sample_configs(space, sampler, n_train + n_test, rng, lambda c: supernet.cost(c).macs)
    cache = ap.load_samples(cache_path, space, checkpoint)
    measured = ap.measure_samples(supernet, configs, dataset.val, calibration, cache)
    ap.save_samples(cache_path, space, checkpoint, cache)
    train, test = configs[:n_train], configs[n_train:]
    model = ap.AccuracyPredictor.fit_samples(space, train, measured, seed=seed)
    previous = ap.AccuracyPredictor.fit_samples(space, train, measured, seed=seed, labels=(ap.LABEL_SMOOTHED,),
                                                kernel=False)  # fmt: skip
    pred = [model.predict(c) for c in test]
    truth = [measured[c.id].accuracy for c in test]
    previous_pred = [previous.predict(c) for c in test]
    curve = {}
    for m in sorted({max(5, n_train * k // 4) for k in (1, 2, 3)} - {n_train}):
        partial = ap.AccuracyPredictor.fit_samples(space, train[:m], measured, seed=seed)
        curve[str(m)] = ap.spearman([partial.predict(c) for c in test], truth)
    curve[str(n_train)] = ap.spearman(pred, truth)
    intervals = bootstrap_spearman(pred, truth, previous_pred, seed)
    return {
        "sampler": sampler,
        "label": model.label,
        "kernel": model.kernel is not None,
        "train_configs": n_train,
        "test_configs": n_test,
        "spearman": ap.spearman(pred, truth),
        "spearman_ci95": intervals["spearman_ci"],
        "spearman_vs_label": ap.spearman(pred, [measured[c.id].smoothed_accuracy for c in test]),
        "spearman_previous": ap.spearman(previous_pred, truth),
        "gain_over_previous_ci95": intervals["gain_ci"],
        "cv_spearman_train": model.cv_spearman,
        "mae_points": float(np.mean(np.abs(np.asarray(pred) - np.asarray(truth))) * 100),
        "alpha": model.alpha,
        "accuracy_range": [float(min(truth)), float(max(truth))],
        "macs_range": [min(supernet.cost(c).macs for c in test), max(supernet.cost(c).macs for c in test)],
        "spearman_by_train_configs": curve,
    }


def _markdown(task: str, result: dict) -> str:
    lat, acc = result["latency"], result["accuracy"]
    lines = [
        f"## Predictors ({task})",
        "",
        f"Latency table vs. measurement on {lat['configs']} held-out configurations (precisions cycled), "
        f"accuracy predictor on {acc['test_configs']} held-out configurations "
        f"(trained on {acc['train_configs']}).",
        "",
        "| threads | median abs error | p90 abs error | fp32 | fp16 | int8 | median noise |",
        "|---|---|---|---|---|---|---|",
    ]
    for t, r in lat["threads"].items():
        p = r["per_precision_median_abs_error_pct"]
        lines.append(f"| {t} | {r['median_abs_error_pct']:.1f} % | {r['p90_abs_error_pct']:.1f} % | "
                     f"{p.get('fp32', 0):.1f} % | {p.get('fp16', 0):.1f} % | {p.get('int8', 0):.1f} % | "
                     f"{r['median_noise_pct']:.1f} % |")  # fmt: skip
    lines += [
        "",
        "Accuracy predictor: mean of ridge regression on one-hot configuration features and Gaussian-kernel ridge "
        "regression on a compact numeric description, fitted on the label (top-1 or smoothed accuracy) with the "
        "higher cross-validated Spearman (see `tflite_adaspring/profiling/accuracy_predictor.py`), scored by "
        "Spearman correlation against the measured top-1 validation accuracy of held-out configurations drawn by "
        "the same sampler as the training ones (95 % bootstrap interval over the held-out configurations). "
        "*Previous*: ridge alone on the smoothed label, scored on the same configurations; *gain*: paired "
        f"bootstrap interval of the difference. The limit (>= {LIMITS['accuracy_spearman']}) applies to the "
        f"`{acc['sampler']}` sampler.",
        "",
        "| sampler | fit / held-out configs | label | Spearman (95 % CI) | previous | gain (95 % CI) | "
        "vs smoothed label | CV Spearman (train) | MAE | held-out val accuracy | "
        "Spearman when fitted on fewer configs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["accuracy_by_sampler"].items():
        low, high = r["accuracy_range"]
        (c_low, c_high), (g_low, g_high) = r["spearman_ci95"], r["gain_over_previous_ci95"]
        curve = ", ".join(f"{m}: {rho:.3f}" for m, rho in r["spearman_by_train_configs"].items())
        lines.append(f"| {name} | {r['train_configs']} / {r['test_configs']} | {r['label']} | {r['spearman']:.3f} "
                     f"({c_low:.3f}-{c_high:.3f}) | {r['spearman_previous']:.3f} | "
                     f"{r['spearman'] - r['spearman_previous']:+.3f} ({g_low:+.3f} to {g_high:+.3f}) | "
                     f"{r['spearman_vs_label']:.3f} | {r['cv_spearman_train']:.3f} | {r['mae_points']:.2f} pts | "
                     f"{low:.3f}-{high:.3f} | {curve} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def run(fv: flags.FlagValues) -> int:
    """Runs both evaluations and writes the results."""
    from tflite_adaspring.cli.profile_cmd import parse_threads
    from tflite_adaspring.export.pipeline import calibration_batches, checkpoint_name
    from tflite_adaspring.fileio import atomic_write_json, atomic_write_text
    from tflite_adaspring.profiling.config_sampling import SAMPLERS
    from tflite_adaspring.profiling.lut import LatencyLUT, cached_lut
    from tflite_adaspring.profiling.plan import SubnetPlanner
    from tflite_adaspring.training.run import load_run

    threads = parse_threads(fv.threads)
    info, supernet, dataset = load_run(fv.run)
    work = Path(fv.work)
    lut_path = Path(fv.lut) if fv.lut else work / "lut.json"
    if fv.lut:  # the user's table, as it is
        lut = LatencyLUT.load(lut_path).bind(SubnetPlanner(supernet))
    else:
        lut = cached_lut(lut_path, supernet, threads, representative=dataset.train[0][:64])
    calibration, checkpoint = calibration_batches(info, dataset), checkpoint_name(fv.run)
    missing = [t for t in threads if t not in lut.threads]
    if missing:
        raise flags.ValidationError(f"the table {lut_path} has no fit for threads {missing}; rebuild it")
    result = {
        "task": info.task,
        "host": lut.host,
        "lut": {"path": str(lut_path), "operators": len(lut.op_ms), "noise": lut.noise},
        "latency": latency_report(supernet, lut, dataset, fv.latency_configs, threads, fv.seed),
        "accuracy_by_sampler": {
            sampler: accuracy_report(
                supernet,
                dataset,
                calibration,
                work / "accuracy.json",
                fv.train_configs,
                fv.test_configs,
                fv.seed,
                checkpoint,
                sampler,
            )
            for sampler in dict.fromkeys([fv.sampler, *SAMPLERS])
        },
        "limits": LIMITS,
    }
    result["accuracy"] = result["accuracy_by_sampler"][fv.sampler]
    out = Path(fv.results) / f"predictors_{info.task}.json"
    atomic_write_json(out, result)
    atomic_write_text(out.with_suffix(".md"), _markdown(info.task, result))
    for t, r in result["latency"]["threads"].items():
        print(f"latency, {t} thread(s): median |error| {r['median_abs_error_pct']:.1f} % "
              f"(limit {LIMITS['latency_median_abs_error_pct']} %), noise {r['median_noise_pct']:.1f} %")  # fmt: skip
    for name, r in result["accuracy_by_sampler"].items():
        low, high = r["spearman_ci95"]
        print(f"accuracy predictor, {name} sampler: Spearman {r['spearman']:.3f} (95 % CI {low:.3f}-{high:.3f}; "
              f"previous predictor {r['spearman_previous']:.3f}; limit {LIMITS['accuracy_spearman']} on "
              f"{fv.sampler})")  # fmt: skip
    print(f"wrote {out}")
    return 0
