"""``adaspring bench runtime``: what adapting costs on this device (all figures measured).

* packed mode: ``adapt`` (Runtime3C search + switch) p50/p99 over >= 10k random context changes, and the
  search alone;
* evolve mode (``--evolve_model``): time from a switch request until the new configuration serves
  (cold builds and cache hits), and what builds cost the serving thread;
* wrapper invoke overhead against a raw LiteRT ``SignatureRunner`` on the same signature, smallest and
  largest configuration, interleaved in the same process;
* peak RSS of a runtime-only subprocess (numpy + ai-edge-litert; TensorFlow must not be imported);
* the cost of reading the device context;
* shared mode (``--mode shared``, needs ``--evolve_model``; only this section is measured and merged into
  the existing JSON): switch p50/p99, full- and smallest-configuration invoke latency against packed
  XNNPACK on the same configurations in the same run, and file bytes against the backbone's weights.

Writes ``docs/results/runtime_<task>.json`` (and a generated ``.md`` table next to it) atomically.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from absl import flags

FLAGS = flags.FlagValues()
flags.DEFINE_string("model", None, "Packed adaptive model (.tflite).", flag_values=FLAGS)
flags.DEFINE_string("evolve_model", None, "Evolve-mode model of the same configurations (optional).", flag_values=FLAGS)
flags.DEFINE_string("json", None, "Output JSON (default docs/results/runtime_<task>.json).", flag_values=FLAGS)
flags.DEFINE_integer("contexts", 10_000, "Context changes for the adapt benchmark.", flag_values=FLAGS)
flags.DEFINE_integer("evolve_switches", 200, "Switches per evolve-mode variant.", flag_values=FLAGS)
flags.DEFINE_integer("invokes", 5_000, "Invokes per timing block of the overhead benchmark.", flag_values=FLAGS)
flags.DEFINE_integer("rounds", 5, "Interleaved timing blocks of the overhead benchmark.", flag_values=FLAGS)
flags.DEFINE_integer("rss_invokes", 2_000, "Invokes run by the runtime-only RSS probe.", flag_values=FLAGS)
flags.DEFINE_integer("context_reads", 10_000, "Context reads per context-read measurement.", flag_values=FLAGS)
flags.DEFINE_integer("interference_invokes", 3_000, "Invokes timed with and without evolve builds.", flag_values=FLAGS)
flags.DEFINE_integer("threads", 1, "LiteRT threads.", flag_values=FLAGS)
flags.DEFINE_enum("mode", "all", ["all", "shared"], "all: packed (+ evolve) sections; shared: the shared-mode "
                  "section only, merged into the existing JSON.", flag_values=FLAGS)  # fmt: skip
flags.DEFINE_integer("shared_switches", 10_000, "Switches timed in shared mode.", flag_values=FLAGS)
flags.mark_flag_as_required("model", flag_values=FLAGS)

# The issue's acceptance limits (checked and recorded in the JSON).
LIMITS = {
    "packed_adapt_p99_ms": 0.1,
    "evolve_switch_p95_ms": 5.0,
    "overhead_ratio": 1.03,
    "overhead_us": 5.0,
    "rss_mb": 80.0,
    "shared_switch_p99_ms": 0.05,
    "shared_invoke_ratio": 1.5,
    "shared_file_ratio": 1.1,
}


def rss_probe(model: str, invokes: int) -> dict[str, Any]:
    """Runs :mod:`tflite_adaspring.bench.runtime_probe` in a fresh interpreter process.

    Args:
      model: model path.
      invokes: invokes the probe runs.

    Returns:
      The probe's JSON result.

    Raises:
      RuntimeError: the probe failed (its stderr is quoted).
    """
    done = subprocess.run(
        [sys.executable, "-m", "tflite_adaspring.bench.runtime_probe", str(model), str(invokes)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"runtime probe failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(fv: flags.FlagValues) -> dict[str, Any]:
    """Runs every measurement (see the module docstring) and returns the result dict."""
    from tflite_adaspring.context import benchmark_context_read
    from tflite_adaspring.metadata import read_metadata
    from tflite_adaspring.runtime.bench import (
        bench_adapt,
        bench_build_interference,
        bench_evolve_switch,
        bench_invoke_overhead,
        bench_search,
    )
    from tflite_adaspring.runtime.evolve import read_evolve_container

    meta = read_metadata(fv.model)
    if meta.storage_mode != "packed":
        from tflite_adaspring.errors import DataValidationError

        raise DataValidationError(f"--model must be a packed model (got {meta.storage_mode}); pass evolve models "
                                  "with --evolve_model")  # fmt: skip
    by_macs = sorted(meta.signatures, key=lambda r: r.macs)
    result: dict[str, Any] = {
        "benchmark": "runtime",
        "task": meta.task,
        "label": "measured",
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_start": list(os.getloadavg()),
        "packed": {
            "model": str(fv.model),
            "configs": len(meta.signatures),
            "file_bytes": os.path.getsize(fv.model),
            "adapt": bench_adapt(fv.model, n=fv.contexts),
            "search_only": bench_search(meta, n=fv.contexts),
        },
        "overhead": {
            label: {"key": row.key, **bench_invoke_overhead(fv.model, row.key, fv.invokes, fv.rounds, fv.threads)}
            for label, row in (("smallest", by_macs[0]), ("largest", by_macs[-1]))
        },
        "rss": {"packed": rss_probe(fv.model, fv.rss_invokes)},
        "context_read": benchmark_context_read(n=fv.context_reads),
    }
    if fv.evolve_model:
        container = read_evolve_container(fv.evolve_model)
        largest = max((r for r in meta.signatures if r.precision == "fp32"), key=lambda r: r.params)
        file_bytes = os.path.getsize(fv.evolve_model)
        result["evolve"] = {
            "model": str(fv.evolve_model),
            "file_bytes": file_bytes,
            "tensor_bytes": container.tensor_bytes,
            "largest_weight_bytes": largest.weight_bytes,
            "file_ratio_to_largest_weights": file_bytes / largest.weight_bytes,
            "switch": bench_evolve_switch(fv.evolve_model, n=fv.evolve_switches, num_threads=fv.threads),
            "build_interference": bench_build_interference(fv.evolve_model, fv.interference_invokes, fv.threads),
        }
        result["rss"]["evolve"] = rss_probe(fv.evolve_model, fv.rss_invokes)
    result["load_average_end"] = list(os.getloadavg())
    result["targets"] = check_targets(result)
    return result


def measure_shared(fv: flags.FlagValues) -> dict[str, Any]:
    """The ``shared`` section (see the module docstring)."""
    from tflite_adaspring.errors import DataValidationError
    from tflite_adaspring.runtime.bench import bench_shared

    if not fv.evolve_model:
        raise DataValidationError("--mode shared needs --evolve_model (the evolve-mode file shared mode runs)")
    load = os.getloadavg()[0]
    result = bench_shared(fv.model, fv.evolve_model, fv.shared_switches, num_threads=fv.threads)
    return {"model": str(fv.evolve_model), "packed_model": str(fv.model), **result,
            "load_average": (load + os.getloadavg()[0]) / 2}  # fmt: skip


def merge_shared(previous: dict[str, Any] | None, shared: dict[str, Any], task: str) -> dict[str, Any]:
    """The previous result (other sections kept) with the ``shared`` section and its targets replaced."""
    result = dict(previous or {"benchmark": "runtime", "task": task, "label": "measured"})
    result["shared"] = shared
    targets = {k: v for k, v in result.get("targets", {}).items() if not k.startswith("shared_")}
    result["targets"] = {**targets, **shared_targets(shared)}
    return result


def shared_targets(shared: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The shared-mode acceptance limits next to the measured values."""

    def target(value: float, limit: float) -> dict[str, Any]:
        return {"value": value, "limit": limit, "met": bool(value <= limit)}

    return {
        "shared_switch_p99_ms": target(shared["switch_p99_ms"], LIMITS["shared_switch_p99_ms"]),
        "shared_full_invoke_ratio": target(shared["full"]["ratio"], LIMITS["shared_invoke_ratio"]),
        "shared_smallest_invoke_ratio": target(shared["smallest"]["ratio"], LIMITS["shared_invoke_ratio"]),
        "shared_file_ratio": target(shared["file_ratio"], LIMITS["shared_file_ratio"]),
    }


def check_targets(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The acceptance limits next to the measured values."""

    def target(value: float, limit: float, met: bool | None = None) -> dict[str, Any]:
        return {"value": value, "limit": limit, "met": bool(value <= limit if met is None else met)}

    out = {
        "packed_adapt_p99_ms": target(result["packed"]["adapt"]["adapt_p99_us"] / 1e3, LIMITS["packed_adapt_p99_ms"])
    }
    for label, o in result["overhead"].items():
        ok = o["runner_ratio"] <= LIMITS["overhead_ratio"] or o["runner_overhead_us"] <= LIMITS["overhead_us"]
        out[f"overhead_{label}_us"] = target(o["runner_overhead_us"], LIMITS["overhead_us"], ok)
    for mode, probe in result["rss"].items():
        out[f"rss_{mode}_mb"] = target(probe["max_rss_mb"], LIMITS["rss_mb"], probe["max_rss_mb"] <= LIMITS["rss_mb"]
                                       and not probe["tensorflow_imported"])  # fmt: skip
    if "evolve" in result:
        out["evolve_switch_p95_ms"] = target(result["evolve"]["switch"]["cold_p95_ms"], LIMITS["evolve_switch_p95_ms"])
    if "shared" in result:
        out.update(shared_targets(result["shared"]))
    return out


def markdown(result: dict[str, Any]) -> str:
    """A generated markdown table of the result (for ``adaspring bench report``)."""
    p, t = result.get("packed"), result["targets"]
    configs = f", {p['configs']} configurations" if p else ""
    lines = [f"## Runtime costs ({result['task']}{configs}; measured)", ""]
    if "load_average_start" in result:
        start, end = result["load_average_start"][0], result["load_average_end"][0]
        lines += [f"Load average during the run: {start:.2f} -> {end:.2f}.", ""]
    lines += ["| measurement | value | limit | met |", "|---|---|---|---|"]
    names = {
        "packed_adapt_p99_ms": "packed adapt (search + switch) p99, ms",
        "overhead_smallest_us": "wrapper overhead, smallest config, us",
        "overhead_largest_us": "wrapper overhead, largest config, us",
        "rss_packed_mb": "runtime-only RSS, packed, MB",
        "rss_evolve_mb": "runtime-only RSS, evolve, MB",
        "evolve_switch_p95_ms": "evolve switch until served (cold build) p95, ms",
        "shared_switch_p99_ms": "shared switch p99, ms",
        "shared_full_invoke_ratio": "shared / packed XNNPACK invoke, full config",
        "shared_smallest_invoke_ratio": "shared / packed XNNPACK invoke, smallest config",
        "shared_file_ratio": "shared model file / backbone weights",
    }
    for key, value in t.items():
        lines.append(
            f"| {names.get(key, key)} | {value['value']:.4g} | {value['limit']:g} | {'yes' if value['met'] else 'no'} |"
        )
    lines.append("")
    if "shared" in result:
        sh = result["shared"]
        lines.append(
            f"shared: switch p50 {sh['switch_p50_ms'] * 1e3:.1f} us / p99 {sh['switch_p99_ms'] * 1e3:.1f} us; "
            + "; ".join(
                f"{label} {c['key']} {c['shared_us']:.1f} us vs packed XNNPACK {c['packed_us']:.1f} us "
                f"(CPU time ratio {c['cpu_ratio']:.2f}) "
                f"({'delegate' if c['on_delegate'] else 'primary graph, LiteRT kernels'})"
                for label, c in (("full", sh["full"]), ("smallest", sh["smallest"]))
            )
            + f"; worst delegate-served configuration {sh['max_delegate_ratio']:.2f}x packed; max |shared - packed| "
            f"{sh['max_abs_diff']:.1e}; file {sh['file_bytes'] / 1e6:.3f} MB vs backbone weights "
            f"{sh['backbone_weight_bytes'] / 1e6:.3f} MB (load average {sh.get('load_average', float('nan')):.2f})."
        )
    if p is None:
        return "\n".join(lines) + "\n"
    lines += [
        f"adapt p50 {p['adapt']['adapt_p50_us']:.1f} us over {int(p['adapt']['contexts'])} context changes; "
        f"search alone p50 {p['search_only']['search_p50_us']:.1f} us / "
        f"p99 {p['search_only']['search_p99_us']:.1f} us; "
        f"context read {result['context_read']['cached_us']:.2f} us cached, "
        f"{result['context_read']['uncached_us']:.1f} us uncached.",
    ]
    for label, o in result["overhead"].items():
        lines.append(
            f"{label} ({o['key']}): raw runner {o['raw_runner_us']:.1f} us, wrapper {o['wrapper_runner_us']:.1f} us "
            f"(ratio {o['runner_ratio']:.3f})."
        )
    if "evolve" in result:
        e, s = result["evolve"], result["evolve"]["switch"]
        lines.append(
            f"evolve file {e['file_bytes'] / 1e6:.2f} MB ({e.get('file_ratio_to_largest_weights', float('nan')):.3f}x "
            f"the largest configuration's weights) vs packed {p['file_bytes'] / 1e6:.2f} MB; switch until "
            f"served p50 {s['cold_p50_ms']:.2f} ms cold / {s['cached_p50_ms'] * 1e3:.0f} us cached; serving-thread "
            f"invoke p99 {e['build_interference']['idle_p99_us']:.0f} us idle vs "
            f"{e['build_interference']['during_builds_p99_us']:.0f} us during builds."
        )
    return "\n".join(lines) + "\n"


def run(fv: flags.FlagValues) -> int:
    """Measures and writes the JSON and markdown files."""
    from tflite_adaspring.fileio import atomic_write_json, atomic_write_text

    if fv.mode == "shared":
        from tflite_adaspring.metadata import read_metadata

        task = read_metadata(fv.model).task
        out = Path(fv.json or f"docs/results/runtime_{task}.json")
        previous = json.loads(out.read_text()) if out.is_file() else None
        result = merge_shared(previous, measure_shared(fv), task)
    else:
        result = measure(fv)
        out = Path(fv.json or f"docs/results/runtime_{result['task']}.json")
        previous = json.loads(out.read_text()) if out.is_file() else {}
        if "shared" in previous:  # measured separately (--mode shared): keep it
            result = merge_shared(result, previous["shared"], result["task"])
    atomic_write_json(out, result)
    atomic_write_text(out.with_suffix(".md"), markdown(result))
    print(markdown(result))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0
