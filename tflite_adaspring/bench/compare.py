"""``adaspring bench compare``: AdaSpring signatures vs hand-crafted compression baselines, and the headline ratios.

1. the task's supernet run (trained into ``runs/bench/<task>`` when missing) is exported as a K-signature
   packed model (cached as ``<run>/adaspring_k<K>.tflite``) and converted to evolve mode (cached too);
2. the baselines of :mod:`tflite_adaspring.bench.baselines` are trained alone with the same data, recipe and
   epoch budget (cached under ``<run>/baselines/``);
3. every signature and every baseline is timed by the same harness
   (:func:`~tflite_adaspring.profiling.latency_measure.measure_signatures`), in interleaved passes so the
   machine's background load spreads over all of them; energy per inference is modeled from that latency
   with a device profile; accuracy is LiteRT's on the test split;
4. the headline ratios of this run: (a) latency reduction at iso-accuracy per baseline (the fastest
   signature at least as accurate as the baseline minus 0.5 points), (b) the energy-efficiency gain likewise,
   (c) evolution latency p95 (evolve mode: request until the new configuration serves, cold builds) and the
   packed-mode adapt (search + switch) p99 - next to the paper's 3.1x / 4.2x / <= 6.2 ms.

Writes ``docs/results/compare_<task>.json`` and a markdown table next to it, atomically.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from absl import flags

from tflite_adaspring.cli.task_flags import define_task_flags

FLAGS = flags.FlagValues()
define_task_flags(FLAGS)
flags.DEFINE_string("run", None, "Trained run folder (default: runs/bench/<task>, trained there if missing).",
                    flag_values=FLAGS)  # fmt: skip
flags.DEFINE_string("json", None, "Output JSON (default docs/results/compare_<task>.json).", flag_values=FLAGS)
flags.DEFINE_integer("epochs", None, "Epoch budget of the baselines trained from scratch (and of the supernet "
                     "when it is trained here); default: the run's.", flag_values=FLAGS)  # fmt: skip
flags.DEFINE_integer("finetune_epochs", None, "Fine-tuning epochs of pruned/SVD/TFMOT baselines (default: "
                     "a quarter of --epochs, at least 1).", flag_values=FLAGS)  # fmt: skip
flags.DEFINE_integer("signatures", 16, "K: AdaSpring signatures exported.", flag_values=FLAGS)
flags.DEFINE_integer("threads", 1, "LiteRT threads.", flag_values=FLAGS)
flags.DEFINE_string("lut", None, "Latency table (default <run>/lut.json, measured and saved when missing).",
                    flag_values=FLAGS)  # fmt: skip
flags.DEFINE_integer("predictor_samples", 240, "Configurations measured for the accuracy predictor.",
                     flag_values=FLAGS)  # fmt: skip
flags.DEFINE_string("energy_profile", "android_mid", "Device profile of the modeled energy.", flag_values=FLAGS)
flags.DEFINE_float("tolerance_points", 0.5, "Iso-accuracy slack in accuracy points.", flag_values=FLAGS)
flags.DEFINE_integer("passes", 3, "Interleaved latency passes over all models.", flag_values=FLAGS)
flags.DEFINE_integer("evolve_switches", 100, "Evolve-mode switches timed for the evolution p95.", flag_values=FLAGS)
flags.DEFINE_integer("contexts", 5000, "Context changes timed for the packed adapt latency.", flag_values=FLAGS)


def measure_models(models: dict[str, bytes], threads: int, passes: int) -> dict[str, dict[str, float]]:
    """Latency of every signature of every model, by the export harness, in interleaved passes.

    Args:
      models: label -> model bytes (all signatures of each are measured).
      threads: LiteRT threads.
      passes: passes over all models; the reported value is the median of the per-pass medians.

    Returns:
      ``label -> {signature key -> median ms}``.
    """
    from tflite_adaspring.profiling.latency_measure import measure_signatures

    if passes < 1:
        raise flags.ValidationError("--passes must be >= 1")
    samples: dict[str, dict[str, list[float]]] = {label: {} for label in models}
    for p in range(passes):
        for label in models if p % 2 == 0 else reversed(list(models)):
            for key, m in measure_signatures(models[label], threads=threads, runs=40, rounds=2, warmup=10).items():
                samples[label].setdefault(key, []).append(m.median_ms)
    return {label: {k: float(np.median(v)) for k, v in keys.items()} for label, keys in samples.items()}


def _readable_evolve(path: Path, log: Any) -> bool:
    """True when this runtime reads the cached evolve model (its container format may have changed since)."""
    from tflite_adaspring.errors import ModelFormatError
    from tflite_adaspring.runtime.evolve import read_evolve_container

    try:
        read_evolve_container(str(path))
        return True
    except ModelFormatError as exc:
        log(f"cached {path} is not readable by this runtime ({exc}); converting it again")
        return False


def adaspring_models(run_dir: Path, fv: flags.FlagValues, log: Any = print) -> tuple[Path, Path]:
    """The run's packed K-signature model and its evolve-mode twin (exported once, then reused)."""
    from tflite_adaspring.export.evolve import evolve_from_packed
    from tflite_adaspring.export.pipeline import calibration_batches, export_run
    from tflite_adaspring.fileio import atomic_write_bytes, atomic_write_json
    from tflite_adaspring.profiling.lut import cached_lut
    from tflite_adaspring.training.run import load_run

    packed = run_dir / f"adaspring_k{fv.signatures}.tflite"
    evolve = run_dir / f"adaspring_k{fv.signatures}_evolve.tflite"
    if packed.exists() and evolve.exists() and _readable_evolve(evolve, log):
        log(f"AdaSpring models reused: {packed}, {evolve}")
        return packed, evolve
    info, supernet, dataset = load_run(run_dir)
    if not packed.exists():
        lut = Path(fv.lut or run_dir / "lut.json")
        if not fv.lut or not lut.exists():  # our cache (kept quiet); an existing user table is used as it is
            cached_lut(lut, supernet, (fv.threads,), representative=dataset.train[0][:64], log=log)
        log(f"exporting {fv.signatures} AdaSpring signatures from {run_dir}")
        result = export_run(run_dir, k=fv.signatures, lut_path=lut, threads=fv.threads,
                            predictor_samples=fv.predictor_samples, samples_cache=run_dir / "accuracy_samples.json",
                            log=log)  # fmt: skip
        atomic_write_bytes(packed, result.model_bytes)
    log(f"converting to evolve mode -> {evolve}")
    model, report = evolve_from_packed(supernet, packed.read_bytes(), calibration_batches(info, dataset))
    atomic_write_bytes(evolve, model)
    atomic_write_json(evolve.with_suffix(".json"), report)
    return packed, evolve


def evolution_latency(packed: Path, evolve: Path, switches: int, contexts: int, threads: int) -> dict[str, float]:
    """Measured evolution latency: evolve-mode cold switch (p50/p95/max) and packed adapt (p50/p99)."""
    from tflite_adaspring.runtime.bench import bench_adapt, bench_evolve_switch

    switch = bench_evolve_switch(str(evolve), n=switches, num_threads=threads)
    adapt = bench_adapt(str(packed), n=contexts)
    return {
        "evolve_cold_p50_ms": switch["cold_p50_ms"],
        "evolve_cold_p95_ms": switch["cold_p95_ms"],
        "evolve_cold_max_ms": switch["cold_max_ms"],
        "evolve_cached_p95_ms": switch["cached_p95_ms"],
        "packed_adapt_p50_ms": adapt["adapt_p50_us"] / 1e3,
        "packed_adapt_p99_ms": adapt["adapt_p99_us"] / 1e3,
        "switches": switch["switches"],
        "contexts": adapt["contexts"],
    }


def headline_ratios(rows: list[dict[str, Any]], tolerance_points: float) -> dict[str, Any]:
    """Iso-accuracy ratio tables and their summaries from the compare rows (``kind`` baseline/adaspring).

    ``latency`` and ``energy`` match every baseline against all signatures; ``latency_fp32`` only against
    the fp32 signatures (structural compression alone, no quantization); it is None without fp32 signatures.
    """
    from tflite_adaspring.bench.headline import ModelPoint, iso_accuracy_ratios, summarize_ratios

    def points(keep: Any) -> list[ModelPoint]:
        return [ModelPoint.from_row({**r, "accuracy": r["test_accuracy"]}) for r in rows if keep(r)]

    baselines = points(lambda r: r["kind"] == "baseline")
    signatures = points(lambda r: r["kind"] == "adaspring")
    fp32 = points(lambda r: r["kind"] == "adaspring" and r.get("precision") == "fp32")
    out: dict[str, Any] = {}
    for name, metric, candidates in (("latency", "latency_ms", signatures), ("energy", "energy_mj", signatures),
                                     ("latency_fp32", "latency_ms", fp32)):  # fmt: skip
        if not candidates:
            out[name] = None
            continue
        table = iso_accuracy_ratios(baselines, candidates, metric, tolerance_points)
        out[name] = {"per_baseline": table, "summary": summarize_ratios(table)}
    return out


def _fmt(value: float | None, spec: str, none: str = "no match") -> str:
    return none if value is None else format(value, spec)


def _fp32_row(ratios: dict[str, Any] | None) -> list[str]:
    if ratios is None:
        return ["| latency reduction, fp32 signatures only | no fp32 signature | - | - |"]
    summary = ratios["summary"]
    return [f"| latency reduction, fp32 signatures only (no quantization) | {_fmt(summary['max'], '.2f')}x "
            f"(vs {summary['max_baseline']}) | {_fmt(summary['geomean'], '.2f')}x | - |"]  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    """The generated markdown of a compare result."""
    from tflite_adaspring.bench.headline import PAPER

    lat, en, evo = result["ratios"]["latency"], result["ratios"]["energy"], result["evolution"]
    b = result["budget"]
    lines = [
        f"## AdaSpring vs hand-crafted compression: {result['task']}",
        "",
        f"Baselines trained alone: {b['baseline_epochs']} epochs from scratch, {b['finetune_epochs']} fine-tuning "
        f"epochs after pruning/SVD; AdaSpring supernet: {b['supernet_epochs']} epochs. Latency measured "
        f"({result['threads']} thread, LiteRT + XNNPACK, median of {result['passes']} interleaved passes); energy "
        f"modeled ({result['energy_profile']}); test accuracy measured with LiteRT. Iso-accuracy: accuracy >= "
        f"baseline - {result['tolerance_points']} points.",
        "",
        "### Headline ratios (this run vs the paper)",
        "",
        "| metric | ours (max over baselines) | ours (geomean) | paper |",
        "|---|---:|---:|---:|",
        f"| latency reduction at iso-accuracy | {_fmt(lat['summary']['max'], '.2f')}x "
        f"(vs {lat['summary']['max_baseline']}) | {_fmt(lat['summary']['geomean'], '.2f')}x | "
        f"{PAPER['latency_reduction']}x |",
        f"| energy-efficiency gain at iso-accuracy (modeled) | {_fmt(en['summary']['max'], '.2f')}x "
        f"(vs {en['summary']['max_baseline']}) | {_fmt(en['summary']['geomean'], '.2f')}x | "
        f"{PAPER['energy_efficiency_gain']}x |",
        *_fp32_row(result["ratios"].get("latency_fp32")),
        f"| evolution latency p95 (evolve mode, cold build) | {evo['evolve_cold_p95_ms']:.2f} ms | - | "
        f"<= {PAPER['evolution_ms']} ms |",
        f"| adapt (search + switch) p99, packed mode | {evo['packed_adapt_p99_ms']:.3f} ms | - | - |",
        "",
        "Energy is modeled as the profile's active power x latency, so the energy ratio repeats the latency ratio;"
        " accuracy is the test split's (the matching signature is picked on it too).",
        "",
        "### Per baseline",
        "",
        "| baseline | test acc | latency ms | energy mJ | size kB (gzip) | fastest match | its acc | latency x |"
        " most efficient match | energy x |",
        "|---|---:|---:|---:|---:|---|---:|---:|---|---:|",
    ]
    rows = {r["name"]: r for r in result["rows"]}
    for lr, er in zip(lat["per_baseline"], en["per_baseline"]):
        r = rows[lr["baseline"]]
        lines.append(
            f"| {r['description']} | {r['test_accuracy']:.2%} | {r['latency_ms']:.4f} | {r['energy_mj']:.4f} | "
            f"{r['file_bytes'] / 1e3:.1f} ({r['gzip_bytes'] / 1e3:.1f}) | {lr['match'] or '-'} | "
            f"{_fmt(lr['match_accuracy'], '.2%', '-')} | {_fmt(lr['ratio'], '.2f', '-')} | {er['match'] or '-'} | "
            f"{_fmt(er['ratio'], '.2f', '-')} |"
        )
    lines += [
        "",
        "### AdaSpring signatures",
        "",
        "| key | config | test acc | val acc | latency ms | energy mJ | weights kB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in sorted((r for r in result["rows"] if r["kind"] == "adaspring"), key=lambda r: r["latency_ms"]):
        lines.append(f"| {r['name']} | `{r['config']}` | {r['test_accuracy']:.2%} | {r['val_accuracy']:.2%} | "
                     f"{r['latency_ms']:.4f} | {r['energy_mj']:.4f} | {r['weight_bytes'] / 1e3:.1f} |")  # fmt: skip
    lines += ["", f"Packed model: {result['packed_file_bytes'] / 1e3:.1f} kB for {result['signatures']} signatures."]
    return "\n".join(lines) + "\n"


def run(fv: flags.FlagValues) -> int:
    """Trains/reuses everything, measures, writes JSON + markdown and prints the headline ratios."""
    from tflite_adaspring.bench.baselines import SIGNATURE_KEY, BaselineSettings, build_baselines
    from tflite_adaspring.cli.task_flags import load_task
    from tflite_adaspring.cli.train_cmd import train_run
    from tflite_adaspring.errors import ModelFormatError
    from tflite_adaspring.fileio import atomic_write_json, atomic_write_text
    from tflite_adaspring.metadata import read_metadata
    from tflite_adaspring.profiling.energy import load_profile
    from tflite_adaspring.training.run import RunInfo

    if fv.signatures < 2:
        raise flags.ValidationError("--signatures must be >= 2")
    if fv.tolerance_points < 0:
        raise flags.ValidationError("--tolerance_points must be >= 0")
    profile = load_profile(fv.energy_profile)
    t0 = time.perf_counter()
    run_dir = Path(fv.run or f"runs/bench/{fv.task}")
    if not (run_dir / "train_report.json").exists():
        print(f"training the supernet -> {run_dir}")
        train_run(load_task(fv), {"path": fv.data} if fv.task == "npz" else {}, run_dir, epochs=fv.epochs)
    info = RunInfo.from_json(json.loads((run_dir / "run.json").read_text()))
    epochs = fv.epochs or info.options.epochs
    if epochs != info.options.epochs:
        print(f"note: baselines get {epochs} epochs but the supernet in {run_dir} was trained {info.options.epochs}; "
              "for one budget, train a run with --epochs into its own folder and pass --run")  # fmt: skip
    settings = BaselineSettings(epochs=epochs, finetune_epochs=fv.finetune_epochs or max(1, epochs // 4))
    packed, evolve = adaspring_models(run_dir, fv)
    baselines = build_baselines(run_dir, settings)
    models = {"adaspring": packed.read_bytes(), **{n: Path(b["path"]).read_bytes() for n, b in baselines.items()}}
    print(f"measuring latency: {fv.signatures} signatures + {len(baselines)} baselines, {fv.passes} passes")
    latency = measure_models(models, fv.threads, fv.passes)
    rows: list[dict[str, Any]] = []
    for name, b in baselines.items():
        ms = latency[name][SIGNATURE_KEY]
        rows.append({"kind": "baseline", **b, "latency_ms": ms,
                     "energy_mj": profile.modeled_energy(ms, fv.threads).value})  # fmt: skip
    meta = read_metadata(models["adaspring"])
    for s in meta.signatures:
        if s.test_accuracy is None:
            raise ModelFormatError(f"{packed}: signature {s.key} has no test accuracy; delete it to re-export")
        ms = latency["adaspring"][s.key]
        rows.append({"kind": "adaspring", "name": s.key, "description": s.key, "config": s.config_id,
                     "precision": s.precision, "test_accuracy": s.test_accuracy, "val_accuracy": s.accuracy,
                     "latency_ms": ms, "energy_mj": profile.modeled_energy(ms, fv.threads).value,
                     "weight_bytes": s.weight_bytes, "params": s.params, "macs": s.macs})  # fmt: skip
    print("measuring evolution latency (evolve-mode switches, packed adapt)")
    result = {
        "benchmark": "compare",
        "task": info.task,
        "run": str(run_dir),
        "label": {"latency": "measured", "energy": "modeled", "accuracy": "measured"},
        "budget": {
            "supernet_epochs": info.options.epochs,
            "baseline_epochs": epochs,
            "finetune_epochs": settings.finetune_epochs,
        },
        "threads": fv.threads,
        "passes": fv.passes,
        "energy_profile": profile.name,
        "tolerance_points": fv.tolerance_points,
        "signatures": len(meta.signatures),
        "packed_model": str(packed),
        "evolve_model": str(evolve),
        "packed_file_bytes": len(models["adaspring"]),
        "rows": rows,
        "ratios": headline_ratios(rows, fv.tolerance_points),
        "evolution": evolution_latency(packed, evolve, fv.evolve_switches, fv.contexts, fv.threads),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    from tflite_adaspring.bench.headline import PAPER

    result["paper"] = PAPER
    out = Path(fv.json or f"docs/results/compare_{info.task}.json")
    atomic_write_json(out, result)
    atomic_write_text(out.with_suffix(".md"), markdown(result))
    lat, en = result["ratios"]["latency"]["summary"], result["ratios"]["energy"]["summary"]
    print(
        f"latency reduction at iso-accuracy: up to {_fmt(lat['max'], '.2f')}x (geomean "
        f"{_fmt(lat['geomean'], '.2f')}x, unmatched {lat['unmatched']}); paper {PAPER['latency_reduction']}x"
    )
    print(
        f"energy-efficiency gain (modeled): up to {_fmt(en['max'], '.2f')}x (geomean {_fmt(en['geomean'], '.2f')}x);"
        f" paper {PAPER['energy_efficiency_gain']}x"
    )
    print(f"evolution latency p95 (evolve, cold): {result['evolution']['evolve_cold_p95_ms']:.2f} ms; paper <= "
          f"{PAPER['evolution_ms']} ms")  # fmt: skip
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0
