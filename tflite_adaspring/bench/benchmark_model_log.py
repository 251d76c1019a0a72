"""Reading the console output of TFLite / LiteRT's ``benchmark_model`` tool.

What the tool prints (each line usually prefixed by ``INFO:`` or a logcat tag) and what is read here:

* ``Running benchmark for at least N iterations ...`` opens a phase: the first is the warm-up, the
  second the regular runs; each is followed by a statistics line
  ``count=C first=F curr=X min=A max=B avg=M std=S`` (newer builds append ``p5=.. median=.. p95=..``),
  all in microseconds;
* ``Inference timings in us: Init: I, First inference: F, Warmup (avg): W, Inference (avg): A``;
* ``Memory footprint delta from the start of the tool (MB): init=X overall=Y`` and, in newer builds,
  ``Overall peak memory footprint (MB) via periodic monitoring: Z``.

A run failed when the tool exited non-zero, printed an ``ERROR``/``Failed`` line, or never printed the
timings line; a wrong ``--signature_to_run_for`` is reported as such, with the keys the tool listed.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from tflite_adaspring.errors import ConfigError, DeviceToolError

_NUM = r"([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
_TIMINGS = re.compile(rf"Inference timings in us: Init: {_NUM}, First inference: {_NUM}, "
                      rf"Warmup \(avg\): {_NUM}, Inference \(avg\): {_NUM}")  # fmt: skip
_PHASE = re.compile(r"Running benchmark for at least \d+ iterations")
_STATS = re.compile(rf"\bcount=(\d+) first={_NUM} curr={_NUM} min={_NUM} max={_NUM} avg={_NUM} std={_NUM}"
                    rf"(?: p5={_NUM} median={_NUM} p95={_NUM})?")  # fmt: skip
_MEMORY = re.compile(rf"Memory footprint delta from the start of the tool \(MB\): init={_NUM} overall={_NUM}")
_PEAK = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring: {_NUM}")
_FAILURE = re.compile(r"(^|\W)(ERROR|Failed|failed)\b")
_BAD_SIGNATURE = "Signature not specified or incorrect"
_LISTED_KEY = re.compile(r"#> Signature key: (\S+)")
_STAT_FIELDS = ("first", "curr", "min", "max", "avg", "std", "p5", "median", "p95")


@dataclasses.dataclass(frozen=True)
class BenchmarkModelRun:
    """The figures of one ``benchmark_model`` run (microseconds and megabytes; None when not printed).

    Attributes:
      init_us: model loading and interpreter setup.
      first_us: the first inference.
      warmup_avg_us: mean of the warm-up phase (first inference included).
      inference_avg_us: mean of the regular runs.
      warmup: statistics of the warm-up phase (``count``, ``first``, ``min``, ..., ``median`` or None).
      regular: statistics of the regular runs.
      memory_init_mb: memory growth after initialisation.
      memory_overall_mb: memory growth at the end.
      peak_memory_mb: peak memory footprint, where the tool monitors it.
    """

    init_us: float
    first_us: float
    warmup_avg_us: float
    inference_avg_us: float
    warmup: dict[str, Any] | None
    regular: dict[str, Any] | None
    memory_init_mb: float | None
    memory_overall_mb: float | None
    peak_memory_mb: float | None


def _stats(match: re.Match[str]) -> dict[str, Any]:
    values = [None if v is None else float(v) for v in match.groups()[1:]]
    return {"count": int(match[1]), **dict(zip(_STAT_FIELDS, values))}


def output_tail(text: str, lines: int = 15) -> str:
    """The last ``lines`` non-empty lines of a tool's output, for error messages."""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:]) or "(no output)"


def parse_benchmark_output(text: str, returncode: int = 0, what: str = "benchmark_model") -> BenchmarkModelRun:
    """Parses one run's output (stdout and stderr together).

    Args:
      text: the output.
      returncode: the tool's exit status (adb without shell protocol v2 always reports 0).
      what: the command, quoted in errors.

    Returns:
      The run's figures.

    Raises:
      ConfigError: the tool rejected the signature key (the message lists the model's keys).
      DeviceToolError: the run failed; the message ends with the tail of the output.
    """
    if _BAD_SIGNATURE in text:
        keys = _LISTED_KEY.findall(text)
        raise ConfigError(f"{what}: the model has no such signature; its keys are: {', '.join(keys) or '(none)'}")
    timings = _TIMINGS.search(text)
    failure = next((line for line in text.splitlines() if _FAILURE.search(line)), None)
    if returncode != 0 or failure is not None or timings is None:
        reason = (f"exit status {returncode}" if returncode != 0 else f"it reported {failure.strip()!r}"
                  if failure is not None else "no 'Inference timings' line in its output")  # fmt: skip
        raise DeviceToolError(f"{what} failed ({reason}); last lines of its output:\n{output_tail(text)}")
    phases: list[dict[str, Any]] = []
    waiting = False
    for line in text.splitlines():
        if _PHASE.search(line):
            waiting = True
        elif waiting and (match := _STATS.search(line)):
            phases.append(_stats(match))
            waiting = False
    memory, peak = _MEMORY.search(text), _PEAK.search(text)
    return BenchmarkModelRun(
        init_us=float(timings[1]),
        first_us=float(timings[2]),
        warmup_avg_us=float(timings[3]),
        inference_avg_us=float(timings[4]),
        warmup=phases[0] if len(phases) > 1 else None,
        regular=phases[-1] if phases else None,
        memory_init_mb=float(memory[1]) if memory else None,
        memory_overall_mb=float(memory[2]) if memory else None,
        peak_memory_mb=float(peak[1]) if peak else None,
    )
