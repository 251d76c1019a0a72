"""The result of ``adaspring bench device`` and ``adaspring bench android``: one JSON layout for both.

Both harnesses measure every signature of a model at several thread counts and describe the device;
this module owns the layout so a Raspberry Pi run (LiteRT from Python) and a phone run (TFLite's
``benchmark_model`` over adb) compare field by field::

    {"benchmark": "device", "schema_version": 1, "label": "measured", "harness": ...,
     "started_utc": ..., "duration_s": ...,
     "model": {"path", "file_bytes", "sha256", "adaspring": {...} | null},
     "device": {"platform", "model", "model_source", "soc", "cpu", "abi", "cores", "os", "kernel",
                "python", "litert_version", "numpy_version", "cpus": [{"cpu", "governor", "cur_mhz",
                "max_mhz", "scaling_max_mhz"}]},
     "conditions": {"start": {"temperatures": [...], "load_average"}, "end": {...}},
     "settings": {"threads", "warmup", "rounds", "invokes_per_round", "quick", "xnnpack", "timed"},
     "signatures": [{"key", "config_id", "precision", "macs", "export_latency_ms", "inputs",
                     "by_threads": [{"threads", "init_ms", "first_invoke_ms", "warmup": {"count", "mean_ms"},
                                     "steady": {"count", "mean_ms", "median_ms", "p90_ms", "p95_ms",
                                                "min_ms", "max_ms", "std_ms", "round_medians_ms"},
                                     "memory_mb": {"init", "overall"}}]}],
     "lut": {...} | null, "lut_status": ...}

Whatever a device does not expose is ``null``, never an error. Needs numpy and ai-edge-litert only.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tflite_adaspring.context.cpufreq_thermal import millicelsius_to_celsius
from tflite_adaspring.errors import ConfigError, DataValidationError, MissingMetadataError, ModelNotFoundError

SCHEMA_VERSION = 1
BENCHMARK = "device"
_CPUFREQ_FILE = re.compile(r"cpu(\d+)/cpufreq/(scaling_governor|scaling_cur_freq|cpuinfo_max_freq|scaling_max_freq)$")
_THERMAL_FILE = re.compile(r"thermal_zone(\d+)/(type|temp)$")
_KHZ_FIELDS = {"scaling_cur_freq": "cur_mhz", "cpuinfo_max_freq": "max_mhz", "scaling_max_freq": "scaling_max_mhz"}


# ----- the model ------------------------------------------------------------------------------------


def model_summary(path: str | Path, only: Sequence[str] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Describes a model and lists the signatures to measure (LiteRT's verifier checks the file first).

    Works on any .tflite: the ``adaspring`` metadata, when present, adds config ids, precision, MACs and
    the export host's latency; a model without signatures yields one entry with ``key`` None.

    Args:
      path: the .tflite file.
      only: signature keys to keep (default: all, in the model's order).

    Returns:
      The ``model`` section and one signature stub per signature (without ``by_threads``).

    Raises:
      ModelNotFoundError: no such file.
      ModelFormatError: truncated, corrupted or not a .tflite.
      ConfigError: a key of ``only`` is not a signature of the model (the message lists them).
    """
    from tflite_adaspring.metadata import read_metadata, verify_model
    from tflite_adaspring.runtime.backend import backend

    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"model file not found: {path} (copy the exported .tflite to this device first)")
    verify_model(path)
    lite = backend()
    interpreter = lite.interpreter_class(
        model_path=str(path), experimental_op_resolver_type=lite.op_resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    keys = list(interpreter.get_signature_list())
    try:
        meta = read_metadata(path, verify=False)
    except MissingMetadataError:
        meta = None
    rows = {s.key: s for s in meta.signatures} if meta is not None else {}
    if only:
        unknown = [k for k in only if k not in keys]
        if unknown:
            raise ConfigError(f"unknown signature {', '.join(map(repr, unknown))} in {path}; "
                              f"the model has: {', '.join(keys) or '(no signatures)'}")  # fmt: skip
        keys = [k for k in keys if k in only]
    stubs = []
    for key in keys or [None]:
        if key is None:
            details = [(d["name"], d) for d in interpreter.get_input_details()]
        else:  # a signature's inputs are called by their signature names, not their tensor names
            details = list(interpreter.get_signature_runner(key).get_input_details().items())
        row = rows.get(key)
        stubs.append({
            "key": key,
            "config_id": row.config_id if row else None,
            "precision": row.precision if row else None,
            "macs": row.macs if row else None,
            "export_latency_ms": row.latency_ms if row else None,
            "inputs": [{"name": name, "shape": [int(n) for n in d["shape"]], "dtype": np.dtype(d["dtype"]).name}
                       for name, d in details],
        })  # fmt: skip
    adaspring = None
    if meta is not None:
        adaspring = {"task": meta.task, "storage_mode": meta.storage_mode, "space": meta.space,
                     "producer": meta.producer, "export_host": meta.export_host}  # fmt: skip
    section = {
        "path": str(path),
        "file_bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "adaspring": adaspring,
    }
    return section, stubs


# ----- kernel files (read locally or over adb) ---------------------------------------------------------


def _number(text: str | None) -> float | None:
    try:
        return float(text.strip()) if text is not None else None
    except ValueError:
        return None


def cpu_table(files: Mapping[str, str]) -> list[dict[str, Any]]:
    """Per-core cpufreq facts from ``{path: content}`` of ``.../cpuN/cpufreq/<file>`` entries.

    Args:
      files: file path (any prefix) -> its text; unreadable files are simply absent.

    Returns:
      ``[{"cpu", "governor", "cur_mhz", "max_mhz", "scaling_max_mhz"}]`` by core number (missing -> None).
    """
    cores: dict[int, dict[str, Any]] = {}
    for path, text in files.items():
        match = _CPUFREQ_FILE.search(path)
        if not match:
            continue
        core = cores.setdefault(int(match[1]), {"cpu": int(match[1]), "governor": None, "cur_mhz": None,
                                                "max_mhz": None, "scaling_max_mhz": None})  # fmt: skip
        if match[2] == "scaling_governor":
            core["governor"] = text.strip() or None
        else:
            khz = _number(text)
            core[_KHZ_FIELDS[match[2]]] = None if khz is None else khz / 1000.0
    return [cores[c] for c in sorted(cores)]


def thermal_table(files: Mapping[str, str]) -> list[dict[str, Any]]:
    """Thermal-zone temperatures from ``{path: content}`` of ``.../thermal_zoneN/{type,temp}`` entries.

    Returns:
      ``[{"zone", "type", "celsius"}]`` by zone number; zones without a plausible reading are left out.
    """
    zones: dict[int, dict[str, Any]] = {}
    for path, text in files.items():
        match = _THERMAL_FILE.search(path)
        if match:
            zones.setdefault(int(match[1]), {})[match[2]] = text.strip()
    out = []
    for zone in sorted(zones):
        raw = _number(zones[zone].get("temp"))
        celsius = None if raw is None else millicelsius_to_celsius(int(raw))
        if celsius is not None:
            out.append({"zone": zone, "type": zones[zone].get("type") or None, "celsius": celsius})
    return out


def conditions(files: Mapping[str, str], load_average: Sequence[float] | None) -> dict[str, Any]:
    """What may change during a run: temperatures, current clocks, load."""
    return {
        "temperatures": thermal_table(files),
        "cpu_cur_mhz": [{"cpu": c["cpu"], "mhz": c["cur_mhz"]} for c in cpu_table(files) if c["cur_mhz"] is not None],
        "load_average": None if load_average is None else [float(v) for v in load_average],
    }


DEVICE_FIELDS = ("platform", "model", "model_source", "soc", "cpu", "abi", "cores", "os", "kernel", "python",
                 "litert_version", "numpy_version")  # fmt: skip


def device_section(cpus: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """The ``device`` section: every field of :data:`DEVICE_FIELDS` (missing -> None) plus ``cpus``.

    Raises:
      ValueError: an unknown field name (a programming error).
    """
    unknown = set(fields) - set(DEVICE_FIELDS)
    if unknown:
        raise ValueError(f"unknown device fields {sorted(unknown)}")
    return {**{name: fields.get(name) for name in DEVICE_FIELDS}, "cpus": cpus}


# ----- timings ---------------------------------------------------------------------------------------


def steady_stats(
    samples_ms: Sequence[float] | None = None, round_medians_ms: Sequence[float] | None = None, **given: Any
) -> dict[str, Any]:
    """The ``steady`` block: computed from samples, or taken from ``given`` figures (a tool's summary).

    Args:
      samples_ms: every timed steady-state invoke, in ms.
      round_medians_ms: the median of each round, in ms.
      **given: precomputed fields (``count``, ``mean_ms``, ``median_ms``, ...) when no samples exist.

    Returns:
      ``{"count", "mean_ms", "median_ms", "p90_ms", "p95_ms", "min_ms", "max_ms", "std_ms", "round_medians_ms"}``.
    """
    out: dict[str, Any] = dict.fromkeys(("count", "mean_ms", "median_ms", "p90_ms", "p95_ms", "min_ms", "max_ms",
                                         "std_ms"))  # fmt: skip
    if samples_ms is not None and len(samples_ms):
        x = np.asarray(samples_ms, np.float64)
        p50, p90, p95 = np.percentile(x, [50, 90, 95])
        out.update(count=int(x.size), mean_ms=float(x.mean()), median_ms=float(p50), p90_ms=float(p90),
                   p95_ms=float(p95), min_ms=float(x.min()), max_ms=float(x.max()), std_ms=float(x.std()))  # fmt: skip
    unknown = set(given) - set(out)
    if unknown:
        raise ValueError(f"unknown steady-state fields {sorted(unknown)}")
    out.update(given)
    out["round_medians_ms"] = None if round_medians_ms is None else [float(v) for v in round_medians_ms]
    return out


def thread_entry(
    threads: int,
    steady: dict[str, Any],
    first_invoke_ms: float | None,
    warmup_count: int | None,
    warmup_mean_ms: float | None,
    init_ms: float | None = None,
    memory_mb: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """One ``by_threads`` entry (see the module docstring)."""
    return {
        "threads": int(threads),
        "init_ms": init_ms,
        "first_invoke_ms": first_invoke_ms,
        "warmup": {"count": warmup_count, "mean_ms": warmup_mean_ms},
        "steady": steady,
        "memory_mb": None if memory_mb is None else {k: memory_mb.get(k) for k in ("init", "overall")},
    }


def assemble(
    harness: str,
    model: dict[str, Any],
    device: dict[str, Any],
    start: dict[str, Any],
    end: dict[str, Any],
    settings: dict[str, Any],
    signatures: list[dict[str, Any]],
    started_utc: str,
    duration_s: float,
    lut: dict[str, Any] | None = None,
    lut_status: str = "not requested",
) -> dict[str, Any]:
    """The whole result (validated before it is returned).

    Raises:
      DataValidationError: a field does not match the layout (a harness bug; the message names it).
    """
    result = {
        "benchmark": BENCHMARK,
        "schema_version": SCHEMA_VERSION,
        "label": "measured",
        "harness": harness,
        "started_utc": started_utc,
        "duration_s": float(duration_s),
        "model": model,
        "device": device,
        "conditions": {"start": start, "end": end},
        "settings": settings,
        "signatures": signatures,
        "lut": lut,
        "lut_status": lut_status,
    }
    validate(result)
    return result


# ----- validation --------------------------------------------------------------------------------------

_NUMBER = (int, float)
_OPT_NUMBER = (int, float, type(None))
_OPT_STR = (str, type(None))
_TOP = {"benchmark": str, "schema_version": int, "label": str, "harness": str, "started_utc": str,
        "duration_s": _NUMBER, "model": dict, "device": dict, "conditions": dict, "settings": dict,
        "signatures": list, "lut": (dict, type(None)), "lut_status": str}  # fmt: skip
_MODEL = {"path": str, "file_bytes": int, "sha256": str, "adaspring": (dict, type(None))}
_DEVICE = {**{name: _OPT_STR for name in DEVICE_FIELDS}, "cores": (int, type(None)), "cpus": list}
_CPU = {"cpu": int, "governor": _OPT_STR, "cur_mhz": _OPT_NUMBER, "max_mhz": _OPT_NUMBER,
        "scaling_max_mhz": _OPT_NUMBER}  # fmt: skip
_CONDITION = {"temperatures": list, "cpu_cur_mhz": list, "load_average": (list, type(None))}
_SETTINGS = {"threads": list, "warmup": (int, type(None)), "rounds": (int, type(None)),
             "invokes_per_round": (int, type(None)), "quick": bool, "xnnpack": bool, "timed": str}  # fmt: skip
_SIGNATURE = {"key": _OPT_STR, "config_id": _OPT_STR, "precision": _OPT_STR, "macs": (int, type(None)),
              "export_latency_ms": _OPT_NUMBER, "inputs": (list, type(None)), "by_threads": list}  # fmt: skip
_ENTRY = {"threads": int, "init_ms": _OPT_NUMBER, "first_invoke_ms": _OPT_NUMBER, "warmup": dict, "steady": dict,
          "memory_mb": (dict, type(None))}  # fmt: skip
_STEADY = {**{k: _OPT_NUMBER for k in ("mean_ms", "median_ms", "p90_ms", "p95_ms", "min_ms", "max_ms", "std_ms")},
           "count": (int, type(None)), "round_medians_ms": (list, type(None))}  # fmt: skip


def _check(obj: Any, layout: Mapping[str, Any], where: str) -> None:
    if not isinstance(obj, dict):
        raise DataValidationError(f"device benchmark result: {where} must be an object, got {type(obj).__name__}")
    missing = [k for k in layout if k not in obj]
    if missing:
        raise DataValidationError(f"device benchmark result: {where} lacks {', '.join(missing)}")
    for key, types in layout.items():
        value = obj[key]
        bad_bool = isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,))
        if bad_bool or not isinstance(value, types) or (isinstance(value, float) and not math.isfinite(value)):
            raise DataValidationError(f"device benchmark result: {where}.{key} has the wrong type or value: {value!r}")


def validate(result: Any) -> None:
    """Checks a result against the layout of the module docstring.

    Raises:
      DataValidationError: naming the first missing or mistyped field.
    """
    _check(result, _TOP, "result")
    if result["benchmark"] != BENCHMARK or result["schema_version"] != SCHEMA_VERSION:
        raise DataValidationError(f"not a device benchmark result of schema {SCHEMA_VERSION}: "
                                  f"{result['benchmark']!r} v{result['schema_version']!r}")  # fmt: skip
    _check(result["model"], _MODEL, "model")
    _check(result["device"], _DEVICE, "device")
    for i, cpu in enumerate(result["device"]["cpus"]):
        _check(cpu, _CPU, f"device.cpus[{i}]")
    for moment in ("start", "end"):
        _check(result["conditions"].get(moment), _CONDITION, f"conditions.{moment}")
    _check(result["settings"], _SETTINGS, "settings")
    if not result["signatures"]:
        raise DataValidationError("device benchmark result: signatures is empty")
    for i, sig in enumerate(result["signatures"]):
        _check(sig, _SIGNATURE, f"signatures[{i}]")
        if not sig["by_threads"]:
            raise DataValidationError(f"device benchmark result: signatures[{i}].by_threads is empty")
        for j, entry in enumerate(sig["by_threads"]):
            where = f"signatures[{i}].by_threads[{j}]"
            _check(entry, _ENTRY, where)
            _check(entry["warmup"], {"count": (int, type(None)), "mean_ms": _OPT_NUMBER}, f"{where}.warmup")
            _check(entry["steady"], _STEADY, f"{where}.steady")


# ----- output ----------------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def markdown(result: dict[str, Any]) -> str:
    """A generated markdown summary: the device, then one row per signature and thread count."""
    d = result["device"]
    start, end = result["conditions"]["start"], result["conditions"]["end"]

    def hottest(c: dict[str, Any]) -> str:
        temps = [t["celsius"] for t in c["temperatures"]]
        return f"{max(temps):.1f} C" if temps else "n/a"

    governors = sorted({c["governor"] for c in d["cpus"] if c["governor"]})
    lines = [
        f"## Device benchmark: {Path(result['model']['path']).name} on {d['model'] or d['platform']} (measured)",
        "",
        f"Harness {result['harness']}; {d['cores'] or '?'} cores ({d['cpu'] or d['soc'] or d['abi'] or 'cpu n/a'}); "
        f"governor {', '.join(governors) or 'n/a'}; OS {d['os'] or 'n/a'}; LiteRT {d['litert_version'] or 'n/a'}; "
        f"hottest zone {hottest(start)} -> {hottest(end)}.",
        "",
        "| signature | config | threads | init ms | first ms | warm-up mean ms | median ms | p90 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for sig in result["signatures"]:
        for e in sig["by_threads"]:
            s = e["steady"]
            lines.append(f"| {sig['key'] or '(main)'} | {sig['config_id'] or '-'} | {e['threads']} | "
                         f"{_ms(e['init_ms'])} | {_ms(e['first_invoke_ms'])} | {_ms(e['warmup']['mean_ms'])} | "
                         f"{_ms(s['median_ms'])} | {_ms(s['p90_ms'])} | {_ms(s['p95_ms'])} |")  # fmt: skip
    lines += ["", f"Latency table: {result['lut_status']}."]
    lut = result["lut"] or {}
    if lut.get("median_abs_error_pct") is not None:
        per = ", ".join(f"{t} thread(s) {e:.1f} %" for t, e in lut["median_abs_error_pct_by_threads"].items())
        lines.append(f"Its predictions vs the measured medians: median |error| {lut['median_abs_error_pct']:.1f} % "
                     f"({per}).")  # fmt: skip
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any], path: str | Path) -> tuple[Path, Path]:
    """Writes the JSON and the markdown next to it (``.md``), both atomically.

    Returns:
      The two paths.
    """
    from tflite_adaspring.fileio import atomic_write_json, atomic_write_text

    out = Path(path)
    md = out.with_suffix(".md")
    atomic_write_json(out, result)
    atomic_write_text(md, markdown(result))
    return out, md
