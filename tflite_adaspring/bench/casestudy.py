"""``adaspring bench casestudy``: one simulated day replayed for the adaptive runtime and every static baseline.

The trace is the demo's simulated day (:func:`tflite_adaspring.demo.replay.day_trace`: battery draining
100 -> 5 %, bursts of other apps' threads, thermal throttling, a latency budget cycling through roomy /
middle / tight values scaled to the AdaSpring model's latency range, the energy mode following the battery).
Per trace row (one window):

* the adaptive run is the real runtime: :meth:`tflite_adaspring.runtime.Interpreter.adapt` decides on the
  row's context and picks a signature of the packed AdaSpring model; then it is told the latency the
  window gives that signature (:meth:`~tflite_adaspring.runtime.Interpreter.record_latency`), as its own
  invokes would on a device, so it learns how this machine's timings drift from the export's;
* each static run keeps one model all day: every baseline of ``adaspring bench compare``;
* a run's latency in the window is its latency measured by ``bench compare`` (same harness for all) times
  the row's slowdown (:func:`tflite_adaspring.runtime.search.latency_factor`: contention / frequency cap),
  i.e. **modeled** from measured figures; it violates the budget when above it;
* accuracy is the model's measured test accuracy; energy per inference is the compare run's modeled energy;
  the app runs ``--rate_hz`` inferences per trace second; battery life = battery / (device idle power +
  the inferences' average power), plus the inference-only figure (battery / inference power).

Needs the results of ``adaspring bench compare --task T`` (``docs/results/compare_<task>.json``) and the
packed model they name. Writes ``casestudy_<task>.json``, ``.md`` and the timeline ``.png`` atomically.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
from absl import flags

from tflite_adaspring.cli.task_flags import define_task_flags

FLAGS = flags.FlagValues()
define_task_flags(FLAGS)
flags.DEFINE_string("compare_json", None, "Results of bench compare (default docs/results/compare_<task>.json).",
                    flag_values=FLAGS)  # fmt: skip
flags.DEFINE_string("json", None, "Output JSON (default docs/results/casestudy_<task>.json).", flag_values=FLAGS)
flags.DEFINE_float("duration_s", 600.0, "Simulated day length in trace seconds (one window per second).",
                   flag_values=FLAGS)  # fmt: skip
flags.DEFINE_integer("seed", 0, "Seed of the simulated day.", flag_values=FLAGS)
flags.DEFINE_float("rate_hz", 10.0, "Inferences the app runs per trace second.", flag_values=FLAGS)
flags.DEFINE_float("battery_wh", 15.4, "Battery capacity in Wh (4000 mAh x 3.85 V phone).", flag_values=FLAGS)

ADAPTIVE = "adaspring_adaptive"


def load_compare(path: str | Path, task: str = "T") -> dict[str, Any]:
    """The compare results, checked for what the case study reads.

    Raises:
      ModelNotFoundError: the file or the packed model it names is missing (run ``bench compare`` first).
      ModelFormatError: the file is not a compare result.
    """
    from tflite_adaspring.errors import ModelFormatError, ModelNotFoundError

    path = Path(path)
    if not path.exists():
        raise ModelNotFoundError(f"{path} not found: run `adaspring bench compare --task {task}` first")
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{path} is not valid JSON ({exc})") from exc
    if not isinstance(result, dict):
        raise ModelFormatError(f"{path} is not a `bench compare` result (a JSON object)")
    missing = [k for k in ("task", "rows", "packed_model", "energy_profile") if k not in result]
    if missing:
        raise ModelFormatError(f"{path} is not a `bench compare` result: it lacks {missing}")
    rows, packed = result["rows"], result["packed_model"]
    if not Path(packed).exists():
        raise ModelNotFoundError(f"the AdaSpring model {packed} named in {path} is missing: rerun bench compare")
    if not any(r.get("kind") == "adaspring" for r in rows) or not any(r.get("kind") == "baseline" for r in rows):
        raise ModelFormatError(f"{path} needs both AdaSpring and baseline rows")
    return result


def adaptive_choices(model_path: str | Path, trace: Any, latency_ms: dict[str, float] | None = None) -> list[str]:
    """The signature the adaptive runtime serves in each trace row (its real search, default policy).

    Args:
      model_path: the packed AdaSpring model.
      trace: the context snapshots.
      latency_ms: signature key -> latency without slowdown (the compare run's); each row's served
        signature is then recorded at that latency times the row's slowdown. None: no feedback.

    Returns:
      The served key per row.
    """
    from tflite_adaspring.runtime import Interpreter
    from tflite_adaspring.runtime.search import latency_factor

    interp = Interpreter(model_path=str(model_path))
    try:
        keys = []
        for snapshot in trace:
            interp.adapt(snapshot)
            keys.append(interp.active)
            if latency_ms is not None:
                interp.record_latency(latency_ms[interp.active] * latency_factor(snapshot))
        return keys
    finally:
        interp.close()


def simulate(compare: dict[str, Any], trace: Any, adaptive_keys: list[str], fv: flags.FlagValues) -> dict[str, Any]:
    """Per run: window latencies, metrics and battery life (see the module docstring)."""
    from tflite_adaspring.bench.trace_metrics import battery_life_hours, run_metrics
    from tflite_adaspring.profiling.energy import load_profile
    from tflite_adaspring.runtime.search import latency_factor

    profile = load_profile(compare["energy_profile"])
    rows = {r["name"]: r for r in compare["rows"]}
    budgets = np.array([s.requirements.latency_budget_ms for s in trace], dtype=float)
    factors = np.array([latency_factor(s) for s in trace], dtype=float)
    step = float(trace.duration / max(1, len(trace) - 1))
    choices = {ADAPTIVE: adaptive_keys}
    choices.update({r["name"]: [r["name"]] * len(trace) for r in compare["rows"] if r["kind"] == "baseline"})
    runs: dict[str, Any] = {}
    for run, keys in choices.items():
        used = [rows[k] for k in keys]
        latency = np.array([u["latency_ms"] for u in used]) * factors
        metrics = run_metrics(budgets, latency, [u["test_accuracy"] for u in used], [u["energy_mj"] for u in used],
                              step, fv.rate_hz)  # fmt: skip
        power_w = metrics["inference_power_mw"] / 1e3
        metrics["battery_life_h"] = battery_life_hours(fv.battery_wh, profile.idle_power_w, power_w)
        metrics["inference_only_battery_life_h"] = battery_life_hours(fv.battery_wh, 0.0, power_w)
        metrics["description"] = "AdaSpring adaptive runtime" if run == ADAPTIVE else rows[run]["description"]
        if run == ADAPTIVE:
            metrics["switches"] = int(sum(a != b for a, b in itertools.pairwise(keys)))
            metrics["configs_used"] = len(set(keys))
        runs[run] = {"metrics": metrics, "latency_ms": latency.round(5).tolist()}
    return {
        "step_s": step,
        "budgets_ms": budgets.tolist(),
        "factors": factors.round(4).tolist(),
        "battery": [s.battery_percent for s in trace],
        "energy_mode": [s.requirements.energy_mode for s in trace],
        "adaptive_keys": adaptive_keys,
        "runs": runs,
        "idle_power_w": profile.idle_power_w,
    }


def markdown(result: dict[str, Any], png_link: str) -> str:
    """The generated markdown of a case-study result (``png_link`` relative to docs/results.md)."""
    s = result["settings"]
    lines = [
        f"## Case study: one simulated day ({result['task']})",
        "",
        f"{s['windows']} windows of {s['step_s']:.0f} trace second; {s['rate_hz']:g} inferences/s; budgets "
        f"{', '.join(f'{b:.3f}' for b in result['budget_levels_ms'])} ms; battery {s['battery_wh']} Wh, idle "
        f"{result['simulation']['idle_power_w']} W ({result['energy_profile']}). Latency = measured (bench compare)"
        " x modeled slowdown of the window; energy modeled.",
        "",
        "| run | budget violations | mean accuracy | energy J | inference mW | battery life h | inference-only h |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    runs = result["simulation"]["runs"]
    for name in sorted(runs, key=lambda n: (n != ADAPTIVE, runs[n]["metrics"]["violation_rate"])):
        m = runs[name]["metrics"]
        extra = f" ({m['switches']} switches, {m['configs_used']} configs)" if name == ADAPTIVE else ""
        lines.append(f"| {m['description']}{extra} | {m['violation_rate']:.1%} | {m['mean_accuracy']:.2%} | "
                     f"{m['energy_j']:.3f} | {m['inference_power_mw']:.2f} | {m['battery_life_h']:.2f} | "
                     f"{m['inference_only_battery_life_h']:.0f} |")  # fmt: skip
    lines += ["", f"![case study timeline: {result['task']}]({png_link})"]
    return "\n".join(lines) + "\n"


def run(fv: flags.FlagValues) -> int:
    """Replays the day, writes JSON, markdown and the timeline PNG."""
    from tflite_adaspring.bench.casestudy_plot import plot_casestudy
    from tflite_adaspring.demo.replay import ReplaySettings, budgets_for, day_trace
    from tflite_adaspring.fileio import atomic_write_json, atomic_write_text

    if fv.rate_hz <= 0 or fv.battery_wh <= 0 or fv.duration_s < 2:
        raise flags.ValidationError("--rate_hz and --battery_wh must be > 0 and --duration_s >= 2")
    compare = load_compare(fv.compare_json or f"docs/results/compare_{fv.task}.json", fv.task)
    signature_ms = np.array([r["latency_ms"] for r in compare["rows"] if r["kind"] == "adaspring"])
    budgets = budgets_for(signature_ms)
    trace = day_trace(ReplaySettings(duration_s=fv.duration_s, seed=fv.seed), budgets)
    print(f"replaying {len(trace)} windows: adaptive runtime + {sum(r['kind'] == 'baseline' for r in compare['rows'])}"
          " static baselines")  # fmt: skip
    measured = {r["name"]: r["latency_ms"] for r in compare["rows"] if r["kind"] == "adaspring"}
    simulation = simulate(compare, trace, adaptive_choices(compare["packed_model"], trace, measured), fv)
    out = Path(fv.json or f"docs/results/casestudy_{compare['task']}.json")
    png = out.with_suffix(".png")
    result = {
        "benchmark": "casestudy",
        "task": compare["task"],
        "label": {
            "latency": "measured x modeled slowdown",
            "energy": "modeled",
            "accuracy": "measured",
            "trace": "simulated",
        },
        "settings": {
            "duration_s": fv.duration_s,
            "seed": fv.seed,
            "rate_hz": fv.rate_hz,
            "battery_wh": fv.battery_wh,
            "windows": len(trace),
            "step_s": simulation["step_s"],
        },
        "budget_levels_ms": list(budgets),
        "energy_profile": compare["energy_profile"],
        "compare_json": str(fv.compare_json or f"docs/results/compare_{fv.task}.json"),
        "simulation": simulation,
    }
    plot_casestudy(result, png)
    atomic_write_json(out, result)
    atomic_write_text(out.with_suffix(".md"), markdown(result, f"results/{png.name}"))
    for name, r in simulation["runs"].items():
        m = r["metrics"]
        print(f"{name:<18} violations {m['violation_rate']:6.1%}  accuracy {m['mean_accuracy']:.3f}  energy "
              f"{m['energy_j']:.3f} J  battery {m['battery_life_h']:.2f} h (inference-only "
              f"{m['inference_only_battery_life_h']:.0f} h)")  # fmt: skip
    print(f"wrote {out}, {out.with_suffix('.md')} and {png}")
    return 0
