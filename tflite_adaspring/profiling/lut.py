"""Latency look-up table: per-operator times measured once per device, summed to predict any configuration.

``adaspring profile`` times every distinct operator of the search space (op type x shapes x tensor type,
per thread count) as a single-operator LiteRT model (:mod:`~tflite_adaspring.profiling.opbench`), then
converts a few whole configurations, measures them and fits ``latency = a + b x sum(operator times)``
per thread count: ``a`` is the per-call overhead (Python call, delegate entry), ``b`` absorbs what the
single-operator models miss (cache effects between operators). Predicting a configuration is then a
plan (:class:`~tflite_adaspring.profiling.plan.SubnetPlanner`) and a sum: ≈ 60 µs, no conversion.
float16 weights are unpacked to float32 when the model loads, so fp16 configurations use the float32
operator times; int8 configurations use int8 operators plus the input QUANTIZE and output DEQUANTIZE.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tflite_adaspring.errors import ConfigError, ModelFormatError, SchemaVersionError
from tflite_adaspring.fileio import atomic_write_json
from tflite_adaspring.metadata import LatencyEstimate
from tflite_adaspring.profiling.opbench import time_ops
from tflite_adaspring.profiling.ops import OpSpec
from tflite_adaspring.profiling.plan import PRECISION_DTYPE, SubnetPlanner
from tflite_adaspring.space import BlockChoice, Config, SearchSpace

LUT_SCHEMA_VERSION = 1
LUT_KIND = "adaspring-latency-lut"


@dataclasses.dataclass(frozen=True)
class OverheadFit:
    """``measured = a_ms + b x sum(operator ms)`` for one thread count.

    Attributes:
      a_ms: per-call overhead.
      b: scale on the operator sum.
      points: whole-model measurements behind the fit.
      fit_error_pct: median absolute error of the fit on those points (in-sample), in percent.
    """

    a_ms: float
    b: float
    points: int
    fit_error_pct: float

    def apply(self, ops_ms: float) -> float:
        """The predicted latency for an operator sum."""
        return self.a_ms + self.b * ops_ms


def fit_overhead(ops_ms: Sequence[float], measured_ms: Sequence[float]) -> OverheadFit:
    """Least-squares ``a + b x ops`` (``b`` fixed to 1 with fewer than 3 points or a non-positive slope).

    Args:
      ops_ms: operator sums of the measured configurations.
      measured_ms: their measured latencies.

    Returns:
      The fit.
    """
    x, y = np.asarray(ops_ms, np.float64), np.asarray(measured_ms, np.float64)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need matching non-empty sums and measurements, got {len(x)} and {len(y)}")
    b = 1.0
    if len(x) >= 3 and np.ptp(x) > 0:
        b = float(np.polyfit(x, y, 1)[0])
    if b <= 0:
        b = 1.0
    a = float(np.median(y - b * x))
    error = float(np.median(np.abs(a + b * x - y) / y) * 100)
    return OverheadFit(a, b, len(x), error)


class LatencyLUT:
    """Per-operator latencies of one device plus the per-thread-count overhead fits.

    Args:
      space: ``{"name": ..., "version": ...}`` of the search space it was built for.
      specs: operator key -> spec.
      op_ms: operator key -> {threads: ms}.
      overhead: threads -> tensor type (``float32``, ``int8``) or ``all`` -> :class:`OverheadFit`.
      host: description of the measuring machine.
      noise: threads -> median spread of the operator timings.
      planner: the planner used by :meth:`predict` (see :meth:`bind`).
    """

    def __init__(
        self,
        space: dict[str, Any],
        specs: dict[str, OpSpec],
        op_ms: dict[str, dict[int, float]],
        overhead: dict[int, dict[str, OverheadFit]],
        host: dict[str, Any],
        noise: dict[int, float],
        planner: SubnetPlanner | None = None,
    ):
        self.space = dict(space)
        self.specs = dict(specs)
        self.op_ms = {k: dict(v) for k, v in op_ms.items()}
        self.overhead = {t: dict(fits) for t, fits in overhead.items()}
        self.host = dict(host)
        self.noise = dict(noise)
        self.planner = planner

    @property
    def threads(self) -> tuple[int, ...]:
        """Thread counts with an overhead fit."""
        return tuple(sorted(self.overhead))

    def bind(self, planner: SubnetPlanner) -> LatencyLUT:
        """Attaches the planner of a supernet of the same space; returns ``self``.

        Raises:
          SchemaVersionError: the planner's space is not the LUT's.
        """
        mine = (self.space.get("name"), self.space.get("version"))
        theirs = (planner.space.name, planner.space.version)
        if mine != theirs:
            raise SchemaVersionError(
                f"this latency table was built for space {mine[0]!r} v{mine[1]}, not {theirs[0]!r} v{theirs[1]}; "
                "build one for this run with `adaspring profile --run RUN_DIR --out lut.json`"
            )
        self.planner = planner
        return self

    def ops_ms(self, plan: Iterable[OpSpec], threads: int = 1) -> float:
        """Sum of the operator times of a plan.

        Raises:
          ConfigError: an operator or the thread count is not in the table.
        """
        total = 0.0
        for spec in plan:
            times = self.op_ms.get(spec.key)
            if times is None or threads not in times:
                raise ConfigError(
                    f"operator {spec.key} at {threads} thread(s) is not in the latency table; rebuild it with "
                    f"`adaspring profile --threads {threads}` for this run's search space"
                )
            total += times[threads]
        return total

    def predict_plan(self, plan: Sequence[OpSpec], threads: int = 1) -> LatencyEstimate:
        """Predicted latency of a plan, with its terms (the fit of the plan's tensor type, else the pooled one)."""
        if threads not in self.overhead:
            raise ConfigError(f"no overhead fit for {threads} thread(s); the table has {self.threads}")
        ops = self.ops_ms(plan, threads)
        dtype = "int8" if any(spec.dtype == "int8" for spec in plan) else "float32"
        fits = self.overhead[threads]
        fit = fits.get(dtype, fits["all"])
        return LatencyEstimate(
            predicted_ms=fit.apply(ops),
            terms={"ops_ms": ops, "overhead_ms": fit.a_ms, "scale": fit.b, "n_ops": len(plan), "threads": threads,
                   "fit": dtype if dtype in fits else "all"},
        )  # fmt: skip

    def predict(self, config: Config, threads: int = 1) -> LatencyEstimate:
        """Predicted latency of a configuration (needs :meth:`bind`)."""
        if self.planner is None:
            raise ConfigError("bind(SubnetPlanner(supernet)) the latency table before predicting configurations")
        return self.predict_plan(self.planner.plan(config), threads)

    # ----- JSON -----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the ``lut.json`` layout)."""
        return {
            "schema_version": LUT_SCHEMA_VERSION,
            "kind": LUT_KIND,
            "space": self.space,
            "host": self.host,
            "noise": {str(t): v for t, v in self.noise.items()},
            "overhead": {
                str(t): {k: dataclasses.asdict(f) for k, f in fits.items()} for t, fits in self.overhead.items()
            },
            "ops": {
                key: {"spec": self.specs[key].to_json(), "ms": {str(t): v for t, v in times.items()}}
                for key, times in sorted(self.op_ms.items())
            },
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> LatencyLUT:
        """Inverse of :meth:`to_json`.

        Raises:
          SchemaVersionError: another kind of file or a newer schema.
          ModelFormatError: a malformed field.
        """
        if not isinstance(obj, dict) or obj.get("kind") != LUT_KIND:
            raise ModelFormatError("not an adaspring latency table (missing kind 'adaspring-latency-lut')")
        if obj.get("schema_version") != LUT_SCHEMA_VERSION:
            raise SchemaVersionError(
                f"latency table schema_version {obj.get('schema_version')!r} is not {LUT_SCHEMA_VERSION}; "
                "rebuild it with `adaspring profile`"
            )
        try:
            specs = {k: OpSpec.from_json(v["spec"]) for k, v in obj["ops"].items()}
            mismatched = [k for k, s in specs.items() if s.key != k]
            if mismatched:
                raise ModelFormatError(f"latency table keys do not match their specs: {mismatched[:3]}")
            return cls(
                space=dict(obj["space"]),
                specs=specs,
                op_ms={k: {int(t): float(ms) for t, ms in v["ms"].items()} for k, v in obj["ops"].items()},
                overhead={
                    int(t): {k: OverheadFit(**f) for k, f in fits.items()} for t, fits in obj["overhead"].items()
                },
                host=dict(obj["host"]),
                noise={int(t): float(v) for t, v in obj["noise"].items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"malformed latency table: {exc!r}") from exc

    def save(self, path: str | Path) -> Path:
        """Writes ``lut.json`` atomically."""
        return atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> LatencyLUT:
        """Reads a ``lut.json``.

        Raises:
          FileNotFoundError: no such file.
          ModelFormatError: not valid JSON or not a latency table.
        """
        try:
            obj = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise ModelFormatError(f"{path}: not valid JSON ({exc})") from exc
        return cls.from_json(obj)


def covering_configs(space: SearchSpace, precisions: Sequence[str]) -> list[Config]:
    """Configurations whose operators together include every operator of every configuration.

    Block operators depend on the stage, the (op, width) choice and the precision only, so configurations
    with every block of every stage set to one choice, cycling the head ranks, cover the space (per
    precision: fp16 shares float32 operators with fp32 but folds the fire block's BatchNorm).
    """
    choices = [BlockChoice(op, w) for op in space.ops for w in space.widths]
    n = max(len(choices), len(space.head_ranks))
    out = []
    for precision in dict.fromkeys(precisions):
        for i in range(n):
            block = choices[i % len(choices)]
            stages = tuple((block,) * count for count in space.blocks_per_stage)
            out.append(Config(stages, space.head_ranks[i % len(space.head_ranks)], precision))
    return out


def space_ops(planner: SubnetPlanner, precisions: Sequence[str]) -> list[OpSpec]:
    """Every distinct operator of the space at ``precisions`` (via :func:`covering_configs`)."""
    unique: dict[str, OpSpec] = {}
    for config in covering_configs(planner.space, precisions):
        for spec in planner.plan(config):
            unique.setdefault(spec.key, spec)
    return list(unique.values())


def fit_configs(space: SearchSpace, precisions: Sequence[str], n: int, seed: int = 0) -> list[Config]:
    """The whole configurations measured for the overhead fit: largest, smallest, then random ones.

    One precision per tensor type (the first of ``precisions`` computing in it) alternates over the list.
    """
    by_dtype = {PRECISION_DTYPE[p]: p for p in reversed(list(precisions))}
    chosen = [by_dtype[dt] for dt in sorted(by_dtype)]
    rng = random.Random(seed)
    out = list(dict.fromkeys([space.largest(chosen[0]), space.smallest(chosen[-1])]))
    for _ in range(100 * max(n, 1)):
        if len(out) >= n:
            break
        config = space.sample(rng, precision=chosen[len(out) % len(chosen)])
        if config not in out:
            out.append(config)
    return out


def build_lut(
    supernet: Any,
    threads: Sequence[int] = (1,),
    precisions: Sequence[str] = ("fp32", "fp16", "int8"),
    n_fit: int = 8,
    representative: np.ndarray | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> LatencyLUT:
    """Measures the latency table of this machine for ``supernet``'s search space.

    Args:
      supernet: the supernet (its weights only matter for the int8 calibration of the fit models).
      threads: thread counts to measure.
      precisions: export precisions the table must cover.
      n_fit: whole configurations converted and measured for the overhead fit (a tensor type gets its own
        fit when it has >= 3 of them; all are pooled into the ``all`` fit).
      representative: int8 calibration inputs for the fit models (default: random normal inputs).
      seed: seed of the random fit configurations.
      log: progress messages.

    Returns:
      The table, bound to a planner of ``supernet``.
    """
    from tflite_adaspring.export.packed import convert_mixed
    from tflite_adaspring.profiling.latency_measure import measure_signatures

    planner = SubnetPlanner(supernet)
    specs = space_ops(planner, precisions)
    log(f"timing {len(specs)} distinct operators at threads {list(threads)} ...")
    op_ms: dict[str, dict[int, float]] = {s.key: {} for s in specs}
    noise = {}
    for t in threads:
        timings = time_ops(specs, threads=t)
        for key, timing in timings.items():
            op_ms[key][t] = timing.ms
        noise[t] = float(np.median([timing.spread for timing in timings.values()]))
    configs = fit_configs(supernet.space, precisions, n_fit, seed)
    if representative is None:
        representative = np.random.default_rng(seed).normal(0, 1, (32, *supernet.backbone.input_shape))
    log(f"converting {len(configs)} whole configurations for the overhead fit ...")
    keys = [f"fit{i:02d}" for i in range(len(configs))]
    model = convert_mixed(supernet, configs, keys, np.asarray(representative, np.float32))
    lut = LatencyLUT(
        space={"name": supernet.space.name, "version": supernet.space.version},
        specs={s.key: s for s in specs},
        op_ms=op_ms,
        overhead={},
        host=host_description(),
        noise=noise,
        planner=planner,
    )
    dtypes = [PRECISION_DTYPE[c.precision] for c in configs]
    for t in threads:
        measured = measure_signatures(model, keys, threads=t)
        sums = np.array([lut.ops_ms(planner.plan(c), t) for c in configs])
        times = np.array([measured[k].median_ms for k in keys])
        fits = {"all": fit_overhead(sums, times)}
        for dtype in sorted(set(dtypes)):
            mask = np.array([d == dtype for d in dtypes])
            if mask.sum() >= 3:
                fits[dtype] = fit_overhead(sums[mask], times[mask])
        lut.overhead[t] = fits
        for name, fit in fits.items():
            log(
                f"  threads {t} {name}: a = {fit.a_ms * 1e3:.1f} us, b = {fit.b:.3f}, "
                f"in-sample error {fit.fit_error_pct:.1f} % ({fit.points} configs); operator noise {noise[t]:.1%}"
            )
    return lut


def host_description() -> dict[str, Any]:
    """Machine, processor model and CPU count of this host."""
    import os

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"machine": platform.machine(), "cpu": model, "cpus": os.cpu_count(), "system": platform.system()}
