"""The device context as the runtime sees it at one moment. numpy-free, TensorFlow-free."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

ENERGY_MODES = ("performance", "balanced", "saver")


@dataclasses.dataclass(frozen=True)
class Requirements:
    """What the app asks for. ``None`` means "no constraint".

    Attributes:
      latency_budget_ms: per-inference latency budget.
      min_accuracy: minimum accuracy in [0, 1].
      memory_cap_bytes: memory the model may use.
      energy_mode: one of ``performance``, ``balanced``, ``saver``.
    """

    latency_budget_ms: float | None = None
    min_accuracy: float | None = None
    memory_cap_bytes: int | None = None
    energy_mode: str = "balanced"

    def __post_init__(self) -> None:
        if self.energy_mode not in ENERGY_MODES:
            raise ValueError(f"energy_mode must be one of {ENERGY_MODES}, got {self.energy_mode!r}")
        if self.latency_budget_ms is not None and not self.latency_budget_ms > 0:
            raise ValueError(f"latency_budget_ms must be > 0, got {self.latency_budget_ms!r}")
        if self.min_accuracy is not None and not 0.0 <= self.min_accuracy <= 1.0:
            raise ValueError(f"min_accuracy must be in [0, 1], got {self.min_accuracy!r}")


@dataclasses.dataclass(frozen=True)
class ContextSnapshot:
    """One reading of every context source. Any field may be ``None`` ("unknown").

    Attributes:
      timestamp: seconds (``time.monotonic()`` for live readings, trace time for replays).
      battery_percent: 0..100.
      charging: True when on external power.
      cpu_utilization: whole-machine busy fraction 0..1 over the last sampling period.
      cpu_contention: latency inflation factor >= 1 expected from other runnable work
        (1.0 = idle machine). Derived from run-queue length vs usable cores.
      cpu_cores_available: usable cores (cgroup quota / affinity), may be fractional.
      cpu_freq_ratio: current / maximum CPU frequency (0..1], averaged over cores.
      throttled: True when thermal or frequency throttling is active.
      temperature_c: hottest thermal zone in degrees Celsius.
      memory_available_bytes: memory available to this process (min of /proc/meminfo and cgroup).
      requirements: the app's requirements.
      cpu_runnable_others: runnable threads of other work (smoothed run-queue length minus the reader),
        the raw input of ``cpu_contention``; lets the runtime estimate contention for any thread count.
      cpu_freq_cap_ratio: highest frequency the CPUs may reach now / hardware maximum (0..1], averaged
        over cores: what a busy inference runs at. Below 1 when thermal or power policy caps the clock;
        unlike ``cpu_freq_ratio`` it does not drop when the CPU merely idles.
    """

    timestamp: float = 0.0
    battery_percent: float | None = None
    charging: bool | None = None
    cpu_utilization: float | None = None
    cpu_contention: float | None = None
    cpu_cores_available: float | None = None
    cpu_freq_ratio: float | None = None
    throttled: bool | None = None
    temperature_c: float | None = None
    memory_available_bytes: int | None = None
    requirements: Requirements = dataclasses.field(default_factory=Requirements)
    cpu_runnable_others: float | None = None
    cpu_freq_cap_ratio: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Returns a flat JSON-serialisable dict (requirements fields prefixed ``req_``)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "requirements"}
        out.update({f"req_{k}": v for k, v in dataclasses.asdict(self.requirements).items()})
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ContextSnapshot:
        """Builds from :meth:`to_json` output (missing or empty/NaN values become None)."""

        def clean(v: Any) -> Any:
            if v is None or v == "":
                return None
            if isinstance(v, float) and math.isnan(v):
                return None
            return v

        req_fields = {f.name for f in dataclasses.fields(Requirements)}
        req = {k[4:]: clean(v) for k, v in obj.items() if k.startswith("req_") and k[4:] in req_fields}
        if req.get("energy_mode") is None:
            req.pop("energy_mode", None)
        own = {f.name for f in dataclasses.fields(cls)} - {"requirements"}
        kwargs = {k: clean(v) for k, v in obj.items() if k in own}
        return cls(requirements=Requirements(**req), **kwargs)
