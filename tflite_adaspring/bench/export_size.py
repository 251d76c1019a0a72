"""``adaspring bench export``: the K-signature model of a run - speed range, file size, compressed-precision loss.

Exports the run twice through the full pipeline (predictors, Pareto search, K signatures): once with
every precision allowed (``mixed``) and once all-fp32, each with the default size cap of ``adaspring
export`` (:func:`~tflite_adaspring.export.pipeline.default_size_ratio`). Reports for each: file size
against the full single-signature fp32 model of the largest configuration, the measured latency ratio
between the largest configuration and the fastest signature (one measured run), buffer-deduplication
savings, and for every fp16/int8 signature its accuracy against its fp32 twin (converted separately,
measured with LiteRT on the validation and test splits).

Writes ``docs/results/export_<task>.json`` and a markdown table next to it, atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from absl import flags

FLAGS = flags.FlagValues()
flags.DEFINE_string("run", "runs/demo/har_watch/run", "Trained run folder.", flag_values=FLAGS)
flags.DEFINE_string("lut", "runs/bench/predictors/lut.json", "Latency table cache (measured when missing or noisy).",
                    flag_values=FLAGS)  # fmt: skip
flags.DEFINE_string("work", "runs/bench/export", "Folder for the exported models and the accuracy samples.",
                    flag_values=FLAGS)  # fmt: skip
flags.DEFINE_string("results", "docs/results", "Where the JSON and markdown go.", flag_values=FLAGS)
flags.DEFINE_integer("signatures", 16, "K.", flag_values=FLAGS)
flags.DEFINE_integer("threads", 1, "LiteRT threads.", flag_values=FLAGS)
flags.DEFINE_integer("predictor_samples", 240, "Configurations measured for the accuracy predictor.",
                     flag_values=FLAGS)  # fmt: skip

LIMITS = {"fastest_vs_largest": 5.0, "fp32_size_ratio": 3.0, "mixed_size_ratio": 2.0, "twin_loss_points": 1.5}


def _summary(result: Any, full_bytes: int, largest_id: str, size_cap: float) -> dict[str, Any]:
    meta = result.packed.metadata
    rows = {s.config_id: s for s in meta.signatures}
    fastest = min(meta.signatures, key=lambda s: s.latency_ms)
    largest = rows[largest_id]
    return {
        "file_bytes": len(result.model_bytes),
        "size_ratio_to_full": len(result.model_bytes) / full_bytes,
        "size_cap": size_cap,
        "best_val": max(s.accuracy for s in meta.signatures),
        "bytes_before_dedup": result.packed.size_before_dedup,
        "bytes_after_dedup": result.packed.size_after_dedup,
        "largest_ms": largest.latency_ms,
        "fastest_ms": fastest.latency_ms,
        "fastest_key": fastest.key,
        "fastest_vs_largest": largest.latency_ms / fastest.latency_ms,
        "latency_noise_median": meta.export_host.get("latency_spread_median"),
        "front_size": result.plan.front_size,
        "evaluated": result.plan.evaluated,
        "predictor_cv_spearman": result.plan.predictor.cv_spearman,
        "signatures": [
            {"key": s.key, "config": s.config_id, "precision": s.precision, "val": s.accuracy, "test": s.test_accuracy,
             "ms": s.latency_ms, "predicted_ms": s.latency_model.predicted_ms if s.latency_model else None,
             "weight_bytes": s.weight_bytes}
            for s in meta.signatures
        ],
    }  # fmt: skip


def _twins(run: str, result: Any) -> list[dict[str, Any]]:
    """Accuracy of every fp16/int8 signature against its fp32 twin (both measured with LiteRT)."""
    from tflite_adaspring.export.convert import convert_configs
    from tflite_adaspring.export.packed import signature_accuracy
    from tflite_adaspring.export.pipeline import calibration_batches
    from tflite_adaspring.training.run import load_run

    info, supernet, dataset = load_run(run)
    compressed = [s for s in result.packed.metadata.signatures if s.precision != "fp32"]
    if not compressed:
        return []
    configs = [result.packed.configs[s.key].with_precision("fp32") for s in compressed]
    calibration = calibration_batches(info, dataset)
    for c in configs:
        supernet.recalibrate(c, calibration)
    keys = [f"twin_{s.key}" for s in compressed]
    twins = convert_configs(supernet, configs, keys, "fp32")
    out = []
    for s, key in zip(compressed, keys):
        val = signature_accuracy(twins, key, *dataset.val)
        test = signature_accuracy(twins, key, *dataset.test)
        out.append({"key": s.key, "config": s.config_id, "precision": s.precision, "val": s.accuracy,
                    "twin_val": val, "test": s.test_accuracy, "twin_test": test,
                    "val_loss_points": (val - s.accuracy) * 100,
                    "test_loss_points": (test - (s.test_accuracy or 0.0)) * 100})  # fmt: skip
    return out


def _markdown(task: str, r: dict[str, Any]) -> str:
    lines = [
        f"## Export ({task}, K = {r['signatures']})",
        "",
        f"Full single-signature fp32 model of the largest configuration: {r['full_bytes'] / 1e6:.3f} MB.",
        "",
        "| export | file | vs full | selection cap (weights) | dedup saved | best val | largest ms | fastest ms | "
        "fastest vs largest |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("fp32", "mixed"):
        e = r[name]
        cap = "none" if e.get("size_cap") is None else f"{e['size_cap']:g}x"
        lines.append(f"| {name} | {e['file_bytes'] / 1e6:.3f} MB | {e['size_ratio_to_full']:.2f}x | {cap} | "
                     f"{(e['bytes_before_dedup'] - e['bytes_after_dedup']) / 1e3:.1f} kB | {e['best_val']:.3f} | "
                     f"{e['largest_ms']:.4f} | "
                     f"{e['fastest_ms']:.4f} | {e['fastest_vs_largest']:.1f}x |")  # fmt: skip
    lines += ["", "| signature | precision | val | fp32 twin val | loss (points) | test | twin test |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for t in r["twins"]:
        lines.append(f"| {t['key']} {t['config']} | {t['precision']} | {t['val']:.3f} | {t['twin_val']:.3f} | "
                     f"{t['val_loss_points']:+.2f} | {t['test']:.3f} | {t['twin_test']:.3f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def run(fv: flags.FlagValues) -> int:
    """Runs both exports and the twin comparison, writes the results."""
    from tflite_adaspring.export.convert import convert_configs
    from tflite_adaspring.export.pipeline import calibration_batches, default_size_ratio, export_run
    from tflite_adaspring.fileio import atomic_write_json, atomic_write_text
    from tflite_adaspring.metadata import save_model
    from tflite_adaspring.profiling.lut import cached_lut
    from tflite_adaspring.training.run import load_run

    work = Path(fv.work)
    info, supernet, dataset = load_run(fv.run)
    largest = supernet.space.largest()
    supernet.recalibrate(largest, calibration_batches(info, dataset))
    full = convert_configs(supernet, [largest], ["full"], "fp32")
    lut = Path(fv.lut)
    cached_lut(lut, supernet, (fv.threads,), representative=dataset.train[0][:64])
    common = {"k": fv.signatures, "lut_path": lut, "threads": fv.threads, "predictor_samples": fv.predictor_samples,
              "samples_cache": work / "accuracy.json"}  # fmt: skip
    results, caps = {}, {}
    for name, precisions in (("mixed", ("fp32", "fp16", "int8")), ("fp32", ("fp32",))):
        caps[name] = default_size_ratio(precisions)
        results[name] = export_run(fv.run, precisions=precisions, **common)
        save_model(work / f"model_{name}.tflite", results[name].model_bytes)
    report = {
        "task": info.task,
        "signatures": fv.signatures,
        "threads": fv.threads,
        "full_bytes": len(full),
        "fp32": _summary(results["fp32"], len(full), largest.id, caps["fp32"]),
        "mixed": _summary(results["mixed"], len(full), largest.id, caps["mixed"]),
        "twins": _twins(fv.run, results["mixed"]),
        "limits": LIMITS,
    }
    worst = max([t["val_loss_points"] for t in report["twins"]] or [0.0])
    report["worst_twin_val_loss_points"] = worst
    out = Path(fv.results) / f"export_{info.task}.json"
    atomic_write_json(out, report)
    atomic_write_text(out.with_suffix(".md"), _markdown(info.task, report))
    for name in ("fp32", "mixed"):
        e = report[name]
        print(f"{name}: {e['file_bytes'] / 1e6:.3f} MB = {e['size_ratio_to_full']:.2f}x the full model "
              f"(limit {LIMITS[name + '_size_ratio']}x); fastest signature {e['fastest_vs_largest']:.1f}x faster "
              f"than the largest (limit {LIMITS['fastest_vs_largest']}x)")  # fmt: skip
    print(f"worst fp16/int8 loss vs fp32 twin: {worst:+.2f} points on val (limit {LIMITS['twin_loss_points']})")
    print(f"wrote {out}")
    return 0
