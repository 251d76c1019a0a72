"""``adaspring bench device``: every signature of a model on this Linux device, plus its latency table.

Runs with Python + numpy + ai-edge-litert only (Raspberry Pi OS 64-bit included); TensorFlow is never
imported. For each thread count one interpreter (XNNPACK on) serves every signature, as the adaptive
runtime does; per signature it times

* warm-up: the first ``--warmup`` calls (``first_invoke_ms`` is the very first, ``warmup.mean_ms`` their
  mean, first included, like ``benchmark_model``'s "Warmup (avg)");
* steady state: ``--rounds`` rounds of ``--invokes`` calls, signatures interleaved round by round so
  background load spreads over all of them; median, p90, p95 over every call and each round's median.

``memory_mb`` is this process's RSS growth over the interpreter's creation (``init``) and the whole
run (``overall``), for the first thread count only (later interpreters reuse freed memory: null).
A timed call is ``runner(**inputs)`` (inputs in, invoke, outputs out: what an application pays, and how
the export host measured ``latency_ms``). The device section reads the device-tree / cpuinfo model,
cpufreq (governor, clocks) and thermal zones below ``--root``; what is not readable is null.
With ``--lut_probes FILE`` (written on the host, see :mod:`tflite_adaspring.bench.lut_probes`) it also
builds this device's ``lut.json`` and compares its predictions with the measured signatures.
"""

from __future__ import annotations

import glob
import importlib.metadata
import os
import platform
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from absl import flags

from tflite_adaspring.bench import device_report

FLAGS = flags.FlagValues()
flags.DEFINE_string("model", None, "The .tflite to measure (any; adaspring metadata adds config ids).",
                    flag_values=FLAGS)  # fmt: skip
flags.DEFINE_string("json", None, "Output JSON (a markdown summary is written next to it).", flag_values=FLAGS)
flags.DEFINE_list("threads", ["1", "2", "4"], "Thread counts to measure.", flag_values=FLAGS)
flags.DEFINE_list("signatures", [], "Signature keys to measure (default: all).", flag_values=FLAGS)
flags.DEFINE_integer("warmup", 20, "Warm-up calls per signature and thread count.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("rounds", 5, "Steady-state rounds (signatures interleaved).", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("invokes", 100, "Timed calls per signature per round.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_boolean("quick", False, "Smoke test: 1 thread, 3 warm-up calls, 2 rounds of 10 (< 10 s).",
                     flag_values=FLAGS)  # fmt: skip
flags.DEFINE_string("lut_probes", None, "Probe file from the host (python -m tflite_adaspring.bench.lut_probes): "
                    "also build this device's latency table.", flag_values=FLAGS)  # fmt: skip
flags.DEFINE_string("lut_out", None, "Where the latency table goes (default: <json stem>_lut.json).",
                    flag_values=FLAGS)  # fmt: skip
flags.DEFINE_string("root", "/", "Filesystem root of /proc, /sys and /etc (a fake tree in tests).", flag_values=FLAGS)
flags.mark_flag_as_required("model", flag_values=FLAGS)
flags.mark_flag_as_required("json", flag_values=FLAGS)

QUICK = {"threads": (1,), "warmup": 3, "rounds": 2, "invokes": 10}
TIMED = "signature call: inputs in, invoke, outputs out (XNNPACK on)"
_MODEL_FILES = ("proc/device-tree/model", "sys/firmware/devicetree/base/model")
_KERNEL_GLOBS = (
    "sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor",
    "sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq",
    "sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq",
    "sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_max_freq",
    "sys/class/thermal/thermal_zone[0-9]*/type",
    "sys/class/thermal/thermal_zone[0-9]*/temp",
)


# ----- the device --------------------------------------------------------------------------------------


def _read(root: str, relative: str, size: int = 4096) -> str | None:
    from tflite_adaspring.context._files import read_once

    text = read_once(os.path.join(root, relative), size)
    return (text.strip("\x00 \n") or None) if text is not None else None


def kernel_files(root: str) -> dict[str, str]:
    """``{path: content}`` of the readable cpufreq and thermal-zone files below ``root``."""
    out = {}
    for pattern in _KERNEL_GLOBS:
        for path in sorted(glob.glob(os.path.join(root, pattern))):
            text = _read(root, os.path.relpath(path, root))
            if text is not None:
                out[path] = text
    return out


def _cpuinfo(root: str) -> dict[str, str]:
    """First value of every key of ``/proc/cpuinfo`` (Raspberry Pi puts ``Model`` at the end)."""
    fields: dict[str, str] = {}
    for line in (_read(root, "proc/cpuinfo", 1 << 16) or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            fields.setdefault(key.strip(), value.strip())
    return fields


def _os_name(root: str) -> str | None:
    for line in (_read(root, "etc/os-release") or "").splitlines():
        key, _, value = line.partition("=")
        if key == "PRETTY_NAME":
            return value.strip().strip('"') or None
    return None


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _load_average(root: str) -> list[float] | None:
    try:
        return [float(v) for v in (_read(root, "proc/loadavg") or "").split()[:3]] or None
    except ValueError:
        return None


def linux_device(root: str = "/") -> tuple[dict[str, Any], dict[str, Any]]:
    """Describes this device and its current conditions; every unreadable source is None.

    Args:
      root: filesystem root of ``proc``, ``sys`` and ``etc``.

    Returns:
      The ``device`` section and the ``conditions`` at this moment.
    """
    cpuinfo = _cpuinfo(root)
    model, source = None, None
    for relative in _MODEL_FILES:
        model = _read(root, relative)
        if model:
            source = "/" + relative
            break
    if not model and cpuinfo.get("Model"):
        model, source = cpuinfo["Model"], "/proc/cpuinfo Model"
    if not model and cpuinfo.get("model name"):
        model, source = cpuinfo["model name"], "/proc/cpuinfo model name"
    files = kernel_files(root)
    device = device_report.device_section(
        device_report.cpu_table(files),
        platform="linux",
        model=model,
        model_source=source,
        soc=cpuinfo.get("Hardware"),
        cpu=cpuinfo.get("model name") or cpuinfo.get("Processor"),
        abi=platform.machine() or None,
        cores=os.cpu_count(),
        os=_os_name(root),
        kernel=platform.release() or None,
        python=platform.python_version(),
        litert_version=_version("ai-edge-litert"),
        numpy_version=np.__version__,
    )
    return device, device_report.conditions(files, _load_average(root))


# ----- timing ------------------------------------------------------------------------------------------


def _rss_mb() -> float | None:
    """This process's resident set size, from /proc/self/statm (None where unavailable)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _random_input(shape: list[int], dtype: str, rng: np.random.Generator) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.normal(0, 1, shape).astype(dt)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(max(info.min, -100), min(info.max, 100), shape, endpoint=True).astype(dt)
    return rng.integers(0, 2, shape).astype(dt)


def _caller(interpreter: Any, stub: dict[str, Any], rng: np.random.Generator) -> Callable[[], Any]:
    """A no-argument call running one signature (or the main subgraph of a model without signatures)."""
    inputs = {i["name"]: _random_input(i["shape"], i["dtype"], rng) for i in stub["inputs"]}
    if stub["key"] is not None:
        runner = interpreter.get_signature_runner(stub["key"])
        return lambda: runner(**inputs)
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], inputs[detail["name"]])
    return interpreter.invoke


def measure_at(
    model_bytes: bytes,
    stubs: list[dict[str, Any]],
    threads: int,
    warmup: int,
    rounds: int,
    invokes: int,
    memory: bool = True,
) -> list[dict[str, Any]]:
    """Times every signature at one thread count (see the module docstring).

    Args:
      model_bytes: the model.
      stubs: the signatures (from :func:`~tflite_adaspring.bench.device_report.model_summary`).
      threads: LiteRT threads.
      warmup: warm-up calls per signature.
      rounds: steady-state rounds.
      invokes: timed calls per signature per round.
      memory: record the process's RSS growth (only meaningful for the process's first interpreter: later
        ones reuse memory the allocator kept from earlier ones).

    Returns:
      One ``by_threads`` entry per stub, in order.
    """
    from tflite_adaspring.profiling._litert import make_interpreter

    clock = time.perf_counter_ns
    rss_before = _rss_mb()
    t0 = clock()
    interpreter = make_interpreter(model_bytes, threads)
    interpreter.allocate_tensors()
    init_ms = (clock() - t0) / 1e6
    rss_init = _rss_mb()
    rng = np.random.default_rng(0)
    calls = [_caller(interpreter, stub, rng) for stub in stubs]
    warm: list[list[float]] = []
    for call in calls:
        times = []
        for _ in range(warmup):
            t0 = clock()
            call()
            times.append((clock() - t0) / 1e6)
        warm.append(times)
    samples: list[list[float]] = [[] for _ in calls]
    medians: list[list[float]] = [[] for _ in calls]
    for r in range(rounds):
        order = range(len(calls)) if r % 2 == 0 else reversed(range(len(calls)))
        for i in order:
            call, times = calls[i], []
            for _ in range(invokes):
                t0 = clock()
                call()
                times.append((clock() - t0) / 1e6)
            samples[i] += times
            medians[i].append(float(np.median(times)))
    rss_end = _rss_mb()
    growth = None
    if memory and rss_before is not None and rss_init is not None and rss_end is not None:
        growth = {"init": rss_init - rss_before, "overall": rss_end - rss_before}
    entries = []
    for i in range(len(calls)):
        steady = device_report.steady_stats(samples[i], medians[i])
        warm_mean = float(np.mean(warm[i]))
        entries.append(
            device_report.thread_entry(threads, steady, warm[i][0], len(warm[i]), warm_mean, init_ms, growth)
        )
    return entries


# ----- the latency table -------------------------------------------------------------------------------


def lut_section(probes_path: str, out: Path, threads: tuple[int, ...], quick: bool,
                signatures: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """Builds and saves the device's latency table; compares it with the measured configurations.

    Returns:
      The ``lut`` section.
    """
    import dataclasses

    from tflite_adaspring.bench.lut_probes import build_lut_from_probes, read_lut_probes

    probes = read_lut_probes(probes_path)
    lut = build_lut_from_probes(probes, threads, quick=quick)
    lut.save(out)
    checks = []
    for sig in signatures:
        plan = probes.plan(sig["config_id"]) if sig["config_id"] else None
        for entry in sig["by_threads"] if plan else []:
            predicted = lut.predict_plan(plan, entry["threads"]).predicted_ms
            measured = entry["steady"]["median_ms"]
            checks.append({"key": sig["key"], "config_id": sig["config_id"], "threads": entry["threads"],
                           "predicted_ms": predicted, "measured_ms": measured,
                           "error_pct": (predicted - measured) / measured * 100})  # fmt: skip
    errors = [abs(c["error_pct"]) for c in checks]
    by_threads = {str(t): float(np.median([abs(c["error_pct"]) for c in checks if c["threads"] == t]))
                  for t in dict.fromkeys(c["threads"] for c in checks)}  # fmt: skip
    return {
        "path": str(out),
        "probes": str(probes_path),
        "space": lut.space,
        "operators": len(lut.op_ms),
        "threads": list(lut.threads),
        "noise": {str(t): v for t, v in lut.noise.items()},
        "fits": {str(t): {k: dataclasses.asdict(f) for k, f in fits.items()} for t, fits in lut.overhead.items()},
        "predicted_vs_measured": checks,
        "median_abs_error_pct": float(np.median(errors)) if errors else None,
        "median_abs_error_pct_by_threads": by_threads,
    }


# ----- the command -------------------------------------------------------------------------------------


def measure(fv: flags.FlagValues) -> dict[str, Any]:
    """Runs the whole benchmark and returns the validated result."""
    from tflite_adaspring.cli.profile_cmd import parse_threads

    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t_start = time.monotonic()
    threads = QUICK["threads"] if fv.quick else parse_threads(fv.threads)
    warmup, rounds, invokes = (QUICK["warmup"], QUICK["rounds"], QUICK["invokes"]) if fv.quick else (
        fv.warmup, fv.rounds, fv.invokes)  # fmt: skip
    model, stubs = device_report.model_summary(fv.model, fv.signatures)
    device, start = linux_device(fv.root)
    model_bytes = Path(fv.model).read_bytes()
    for stub in stubs:
        stub["by_threads"] = []
    for n, t in enumerate(threads):
        for stub, entry in zip(stubs, measure_at(model_bytes, stubs, t, warmup, rounds, invokes, memory=n == 0)):
            stub["by_threads"].append(entry)
    lut, status = None, ("not requested: pass --lut_probes FILE, written on the host by "
                         "`python -m tflite_adaspring.bench.lut_probes --run RUN --out FILE`")  # fmt: skip
    if fv.lut_probes:
        out = Path(fv.lut_out or Path(fv.json).with_name(Path(fv.json).stem + "_lut.json"))
        lut = lut_section(fv.lut_probes, out, threads, fv.quick, stubs)
        status = f"built from {fv.lut_probes} ({lut['operators']} operators, threads {lut['threads']}) into {out}"
    _, end = linux_device(fv.root)
    settings = {"threads": list(threads), "warmup": warmup, "rounds": rounds, "invokes_per_round": invokes,
                "quick": bool(fv.quick), "xnnpack": True, "timed": TIMED}  # fmt: skip
    return device_report.assemble("litert-python", model, device, start, end, settings, stubs, started,
                                  time.monotonic() - t_start, lut, status)  # fmt: skip


def run(fv: flags.FlagValues) -> int:
    """Measures, writes the JSON and its markdown summary, prints the summary."""
    result = measure(fv)
    out, md = device_report.write(result, fv.json)
    print(device_report.markdown(result))
    print(f"wrote {out} and {md}")
    return 0
