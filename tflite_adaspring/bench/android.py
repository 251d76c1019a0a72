"""``adaspring bench android``: every signature of a model on an Android device, via adb + ``benchmark_model``.

Pushes the model and TFLite's ``benchmark_model`` binary to ``/data/local/tmp``, runs
``benchmark_model --graph=... --signature_to_run_for=KEY --num_threads=T --use_xnnpack=true`` once per
signature and thread count over ``adb shell``, reads the device (``getprop``, cpufreq and thermal files)
before and after, and writes the same JSON layout as ``adaspring bench device``
(:mod:`tflite_adaspring.bench.device_report`). Each run is a fresh process, so ``init_ms`` and the
first inference are per signature. The steady state is what the tool reports (mean, min, max, std and,
in newer builds, median and p95; p90 is not printed by the tool and stays null).

Errors are typed: adb or the binary missing (:class:`DeviceToolNotFoundError`), no usable device
(:class:`DeviceConnectionError`), a failed run (:class:`DeviceToolError`, with the tail of its output),
an unknown signature (:class:`ConfigError`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from absl import flags

from tflite_adaspring.bench import device_report
from tflite_adaspring.bench.benchmark_model_log import BenchmarkModelRun, output_tail, parse_benchmark_output
from tflite_adaspring.errors import DeviceConnectionError, DeviceToolError, DeviceToolNotFoundError

FLAGS = flags.FlagValues()
flags.DEFINE_string("model", None, "The .tflite to measure.", flag_values=FLAGS)
flags.DEFINE_string("adb", "adb", "The adb executable (name on PATH or path).", flag_values=FLAGS)
flags.DEFINE_string("benchmark_binary", None, "TFLite's benchmark_model built for the device (android_aarch64).",
                    flag_values=FLAGS)  # fmt: skip
flags.DEFINE_string("json", None, "Output JSON (a markdown summary is written next to it).", flag_values=FLAGS)
flags.DEFINE_string("serial", None, "Device serial (needed when several devices are attached).", flag_values=FLAGS)
flags.DEFINE_list("threads", ["1", "4"], "Thread counts to measure.", flag_values=FLAGS)
flags.DEFINE_list("signatures", [], "Signature keys to measure (default: all).", flag_values=FLAGS)
flags.DEFINE_integer("num_runs", 50, "benchmark_model --num_runs (minimum regular runs).", lower_bound=1,
                     flag_values=FLAGS)  # fmt: skip
flags.DEFINE_integer("warmup_runs", 1, "benchmark_model --warmup_runs (minimum warm-up runs).", lower_bound=0,
                     flag_values=FLAGS)  # fmt: skip
flags.DEFINE_boolean("quick", False, "Smoke test: 1 thread, 10 runs.", flag_values=FLAGS)
flags.DEFINE_string("remote_dir", "/data/local/tmp", "Device folder for the model and the binary.", flag_values=FLAGS)
flags.DEFINE_integer("timeout", 900, "Seconds one adb command may take.", lower_bound=1, flag_values=FLAGS)
flags.mark_flag_as_required("model", flag_values=FLAGS)
flags.mark_flag_as_required("benchmark_binary", flag_values=FLAGS)
flags.mark_flag_as_required("json", flag_values=FLAGS)

BINARY_HINT = ("download the android_aarch64 (or android_arm) benchmark_model from the LiteRT / TensorFlow Lite "
               "releases or build it with bazel (//tensorflow/lite/tools/benchmark:benchmark_model)")  # fmt: skip
PROPS = {"model": "ro.product.model", "soc": "ro.soc.model", "os": "ro.build.version.release",
         "abi": "ro.product.cpu.abi"}  # fmt: skip
KERNEL_FILES = ("/sys/devices/system/cpu/cpu*/cpufreq/scaling_governor",
                "/sys/devices/system/cpu/cpu*/cpufreq/scaling_cur_freq",
                "/sys/devices/system/cpu/cpu*/cpufreq/cpuinfo_max_freq",
                "/sys/devices/system/cpu/cpu*/cpufreq/scaling_max_freq",
                "/sys/class/thermal/thermal_zone*/type", "/sys/class/thermal/thermal_zone*/temp",
                "/sys/devices/system/cpu/present", "/proc/loadavg")  # fmt: skip
TIMED = "benchmark_model Invoke() (XNNPACK on)"
_CONNECTION_TROUBLE = re.compile(r"no devices/emulators found|device unauthorized|device offline|"
                                 r"more than one device|device '[^']*' not found|device not found")  # fmt: skip


class Adb:
    """A thin wrapper around the adb executable, for one device.

    Args:
      adb: the adb executable (name on PATH or path).
      serial: the device serial (``-s``), or None for adb's default device.
      timeout: seconds one command may take.

    Raises:
      DeviceToolNotFoundError: adb is not installed / not at that path.
    """

    def __init__(self, adb: str = "adb", serial: str | None = None, timeout: float = 900.0):
        path = shutil.which(adb)
        if path is None:
            raise DeviceToolNotFoundError(
                f"adb not found ({adb!r} is not on PATH or not executable); install the Android platform-tools "
                "(Debian: apt install adb) or pass --adb PATH"
            )
        self.path, self.serial, self.timeout = path, serial, timeout

    def run(self, *args: str, device: bool = True) -> subprocess.CompletedProcess[str]:
        """Runs ``adb [-s SERIAL] ARGS`` and returns it (stderr folded into stdout).

        Raises:
          DeviceConnectionError: adb reports no usable device.
          DeviceToolError: adb timed out or could not start.
        """
        argv = [self.path, *(["-s", self.serial] if device and self.serial else []), *args]
        try:
            done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=self.timeout, check=False)  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise DeviceToolError(f"{shlex.join(argv)} timed out after {self.timeout:g} s") from exc
        except OSError as exc:
            raise DeviceToolError(f"could not run {self.path}: {exc}") from exc
        if done.returncode != 0 and _CONNECTION_TROUBLE.search(done.stdout):
            raise DeviceConnectionError(f"adb: {output_tail(done.stdout, 3)} (check `adb devices`; "
                                        "accept the USB-debugging prompt on the phone; pass --serial)")  # fmt: skip
        return done

    def shell(self, command: str) -> subprocess.CompletedProcess[str]:
        """Runs one shell command line on the device."""
        return self.run("shell", command)

    def push(self, local: str | Path, remote: str) -> None:
        """Copies a file to the device.

        Raises:
          DeviceToolError: the push failed (the message quotes adb).
        """
        done = self.run("push", str(local), remote)
        if done.returncode != 0:
            raise DeviceToolError(f"adb push {local} {remote} failed: {output_tail(done.stdout, 5)}")


def parse_devices(text: str) -> list[tuple[str, str]]:
    """``(serial, state)`` pairs from ``adb devices`` output (``device``, ``unauthorized``, ``offline``...)."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not line.startswith(("List of devices", "*")):
            out.append((parts[0], parts[1]))
    return out


def choose_device(devices: list[tuple[str, str]], serial: str | None) -> str:
    """The serial to use.

    Raises:
      DeviceConnectionError: none attached, the wanted one missing, unauthorized/offline, or several
        attached without ``serial``.
    """
    listed = ", ".join(f"{s} ({state})" for s, state in devices) or "none"
    if serial is not None:
        found = dict(devices).get(serial)
        if found is None:
            raise DeviceConnectionError(f"device {serial!r} is not attached (adb devices: {listed})")
        candidates = [(serial, found)]
    else:
        candidates = devices
    if not candidates:
        raise DeviceConnectionError("no Android device attached: connect one with USB debugging on (adb devices "
                                    "lists none)")  # fmt: skip
    ready = [s for s, state in candidates if state == "device"]
    if not ready:
        s, state = candidates[0]
        hint = ("accept the 'Allow USB debugging' prompt on the phone" if state == "unauthorized"
                else "reconnect it or restart adb (adb kill-server)")  # fmt: skip
        raise DeviceConnectionError(f"device {s} is {state}: {hint}")
    if len(ready) > 1:
        raise DeviceConnectionError(f"several devices attached ({listed}): pass --serial")
    return ready[0]


def parse_grep(text: str) -> dict[str, str]:
    """``{path: value}`` from ``grep -H . FILES`` output (``path:value`` lines; error lines ignored)."""
    out = {}
    for line in text.splitlines():
        path, sep, value = line.partition(":")
        if sep and path.startswith("/"):
            out.setdefault(path, value.strip())
    return out


def _cores(present: str | None) -> int | None:
    """CPU count from ``/sys/devices/system/cpu/present`` (``0-7`` or ``0-3,5``)."""
    try:
        total = 0
        for part in (present or "").split(","):
            lo, _, hi = part.partition("-")
            total += int(hi or lo) - int(lo) + 1
        return total or None
    except ValueError:
        return None


def read_device(adb: Adb) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``device`` section and current ``conditions`` of the device (unreadable -> None)."""
    props = {}
    for field, prop in PROPS.items():
        done = adb.shell(f"getprop {prop}")
        props[field] = (done.stdout.strip() or None) if done.returncode == 0 else None
    files = kernel_files(adb)
    device = device_report.device_section(
        device_report.cpu_table(files),
        platform="android",
        model=props["model"],
        model_source="getprop ro.product.model" if props["model"] else None,
        soc=props["soc"],
        abi=props["abi"],
        cores=_cores(files.get("/sys/devices/system/cpu/present")),
        os=f"Android {props['os']}" if props["os"] else None,
    )
    return device, _conditions(files)


def kernel_files(adb: Adb) -> dict[str, str]:
    """cpufreq, thermal, CPU and load files of the device in one ``grep -H`` (unreadable ones are absent)."""
    return parse_grep(adb.shell("grep -H . " + " ".join(KERNEL_FILES) + " 2>/dev/null").stdout)


def _conditions(files: dict[str, str]) -> dict[str, Any]:
    try:
        load = [float(v) for v in files.get("/proc/loadavg", "").split()[:3]] or None
    except ValueError:
        load = None
    return device_report.conditions(files, load)


def thread_entry_from_run(threads: int, run: BenchmarkModelRun) -> dict[str, Any]:
    """One ``by_threads`` entry from a parsed ``benchmark_model`` run (microseconds -> ms)."""

    def ms(value: float | None) -> float | None:
        return None if value is None else value / 1000.0

    regular = run.regular or {}
    steady = device_report.steady_stats(
        count=regular.get("count"),
        mean_ms=ms(run.inference_avg_us),
        median_ms=ms(regular.get("median")),
        p95_ms=ms(regular.get("p95")),
        min_ms=ms(regular.get("min")),
        max_ms=ms(regular.get("max")),
        std_ms=ms(regular.get("std")),
    )
    memory = None
    if run.memory_init_mb is not None or run.memory_overall_mb is not None:
        memory = {"init": run.memory_init_mb, "overall": run.memory_overall_mb}
    warmup_count = run.warmup["count"] if run.warmup else None
    return device_report.thread_entry(threads, steady, ms(run.first_us), warmup_count, ms(run.warmup_avg_us),
                                      ms(run.init_us), memory)  # fmt: skip


def benchmark_command(binary: str, graph: str, key: str | None, threads: int, num_runs: int, warmup_runs: int) -> str:
    """The device command line of one run."""
    args = [binary, f"--graph={graph}"]
    if key is not None:
        args.append(f"--signature_to_run_for={key}")
    args += [f"--num_threads={threads}", "--use_xnnpack=true", f"--num_runs={num_runs}", f"--warmup_runs={warmup_runs}"]
    return shlex.join(args)


def measure(fv: flags.FlagValues) -> dict[str, Any]:
    """Runs the whole benchmark and returns the validated result."""
    from tflite_adaspring.cli.profile_cmd import parse_threads

    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t_start = time.monotonic()
    threads = (1,) if fv.quick else parse_threads(fv.threads)
    num_runs = 10 if fv.quick else fv.num_runs
    binary = Path(fv.benchmark_binary)
    if not binary.is_file():
        raise DeviceToolNotFoundError(f"benchmark_model binary not found: {binary}; {BINARY_HINT}")
    model, stubs = device_report.model_summary(fv.model, fv.signatures)
    adb = Adb(fv.adb, fv.serial, fv.timeout)
    listing = adb.run("devices", device=False)
    if listing.returncode != 0:
        raise DeviceToolError(f"adb devices failed: {output_tail(listing.stdout, 5)}")
    adb.serial = choose_device(parse_devices(listing.stdout), fv.serial)
    remote_model = f"{fv.remote_dir}/{Path(fv.model).name}"
    remote_binary = f"{fv.remote_dir}/benchmark_model"
    adb.push(fv.model, remote_model)
    adb.push(binary, remote_binary)
    chmod = adb.shell(f"chmod 755 {shlex.quote(remote_binary)}")
    if chmod.returncode != 0:
        raise DeviceToolError(f"chmod of {remote_binary} failed: {output_tail(chmod.stdout, 5)}")
    device, start = read_device(adb)
    for stub in stubs:
        stub["by_threads"] = []
        for t in threads:
            command = benchmark_command(remote_binary, remote_model, stub["key"], t, num_runs, fv.warmup_runs)
            done = adb.shell(command)
            run = parse_benchmark_output(done.stdout, done.returncode, f"adb shell {command}")
            stub["by_threads"].append(thread_entry_from_run(t, run))
    end = _conditions(kernel_files(adb))
    settings = {"threads": list(threads), "warmup": fv.warmup_runs, "rounds": None, "invokes_per_round": num_runs,
                "quick": bool(fv.quick), "xnnpack": True, "timed": TIMED,
                "benchmark_binary": {"path": str(binary), "sha256": hashlib.sha256(binary.read_bytes()).hexdigest()},
                "serial": adb.serial}  # fmt: skip
    status = "not built on Android: build it on a Linux device with `adaspring bench device --lut_probes`"
    return device_report.assemble("android-benchmark_model", model, device, start, end, settings, stubs, started,
                                  time.monotonic() - t_start, None, status)  # fmt: skip


def run(fv: flags.FlagValues) -> int:
    """Measures, writes the JSON and its markdown summary, prints the summary."""
    result = measure(fv)
    out, md = device_report.write(result, os.fspath(fv.json))
    print(device_report.markdown(result))
    print(f"wrote {out} and {md}")
    return 0
