"""Device context: battery, CPU load and contention, frequency/thermal, memory, app requirements.

Typical use::

    monitor = ContextMonitor()                     # Linux sources under "/", cached for 50 ms
    monitor.set_requirements(latency_budget_ms=10.0)
    ctx = monitor.snapshot()                       # ContextSnapshot; unknown values are None

Every source reads below a configurable root (fake sysfs/procfs trees in tests) and reports "unknown"
instead of raising. Traces of snapshots are saved/loaded as CSV or JSON and replayed with
:class:`TraceReplaySource` + :class:`TraceClock` or :func:`replay`. Uses only the standard library;
never imports TensorFlow.
"""

from tflite_adaspring.context.battery import BatterySource
from tflite_adaspring.context.bench import benchmark_context_read
from tflite_adaspring.context.callback import CallbackSource
from tflite_adaspring.context.cpu_load import CpuLoadSource, contention_factor
from tflite_adaspring.context.cpufreq_thermal import CpuFreqThermalSource
from tflite_adaspring.context.memory import MemorySource
from tflite_adaspring.context.monitor import ContextMonitor, default_sources
from tflite_adaspring.context.requirements import RequirementsSource
from tflite_adaspring.context.snapshot import ENERGY_MODES, ContextSnapshot, Requirements
from tflite_adaspring.context.source import ContextSource, FileSource
from tflite_adaspring.context.synthetic import synthetic_day
from tflite_adaspring.context.trace import (
    ContextTrace,
    TraceClock,
    TraceReplaySource,
    load_trace,
    load_trace_csv,
    load_trace_json,
    replay,
    save_trace,
    save_trace_csv,
    save_trace_json,
)

__all__ = [
    "ENERGY_MODES",
    "BatterySource",
    "CallbackSource",
    "ContextMonitor",
    "ContextSnapshot",
    "ContextSource",
    "ContextTrace",
    "CpuFreqThermalSource",
    "CpuLoadSource",
    "FileSource",
    "MemorySource",
    "Requirements",
    "RequirementsSource",
    "TraceClock",
    "TraceReplaySource",
    "benchmark_context_read",
    "contention_factor",
    "default_sources",
    "load_trace",
    "load_trace_csv",
    "load_trace_json",
    "replay",
    "save_trace",
    "save_trace_csv",
    "save_trace_json",
    "synthetic_day",
]
