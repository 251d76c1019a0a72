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
NOISY_SPREAD = 0.05  # median operator spread (IQR / median) above which a thread count is timed again
NOISY_FIT_PCT = 5.0  # in-sample error of the whole-model fit (%) above which it is measured again


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

    planner = SubnetPlanner(supernet)
    specs = space_ops(planner, precisions)
    configs = fit_configs(supernet.space, precisions, n_fit, seed)
    if representative is None:
        representative = np.random.default_rng(seed).normal(0, 1, (32, *supernet.backbone.input_shape))
    log(f"converting {len(configs)} whole configurations for the overhead fit ...")
    keys = [f"fit{i:02d}" for i in range(len(configs))]
    model = convert_mixed(supernet, configs, keys, np.asarray(representative, np.float32))
    lut = LatencyLUT(
        space={"name": supernet.space.name, "version": supernet.space.version},
        specs={s.key: s for s in specs},
        op_ms={s.key: {} for s in specs},
        overhead={},
        host=host_description(),
        noise={},
        planner=planner,
    )
    fit = FitModels(model, keys, [planner.plan(c) for c in configs], [PRECISION_DTYPE[c.precision] for c in configs])
    log(f"timing {len(specs)} distinct operators at threads {list(threads)} ...")
    for t in threads:
        measure_thread_count(lut, t, fit, log=log)
    return lut


@dataclasses.dataclass(frozen=True)
class FitModels:
    """The whole configurations behind the overhead fit, converted into one multi-signature model.

    Attributes:
      model_bytes: the .tflite model.
      keys: one signature per configuration.
      plans: each configuration's operators.
      dtypes: each configuration's tensor type (``float32`` or ``int8``).
    """

    model_bytes: bytes
    keys: Sequence[str]
    plans: Sequence[Sequence[OpSpec]]
    dtypes: Sequence[str]


def measure_thread_count(
    lut: LatencyLUT,
    threads: int,
    fit: FitModels,
    attempts: int = 3,
    op_kw: dict[str, int] | None = None,
    fit_kw: dict[str, int] | None = None,
    log: Callable[[str], None] = print,
) -> None:
    """Times every operator of ``lut`` at ``threads``, then fits the overhead on ``fit``; fills ``lut`` in place.

    The two are measured back to back, so a machine that changes speed between thread counts cannot skew
    one against the other. Operator timings whose median spread exceeds :data:`NOISY_SPREAD`, and a fit
    whose in-sample error exceeds :data:`NOISY_FIT_PCT`, are measured again (up to ``attempts`` times in
    all, the quietest attempt kept); a table still noisy after that is kept with a warning.

    Args:
      lut: the table (its ``specs`` are timed; ``op_ms``, ``noise`` and ``overhead`` are written).
      threads: the thread count.
      fit: the whole-configuration models of the overhead fit.
      attempts: measurements at most per step.
      op_kw: keyword arguments of :func:`~tflite_adaspring.profiling.opbench.time_ops` (e.g. quick rounds).
      fit_kw: keyword arguments of :func:`~tflite_adaspring.profiling.latency_measure.measure_signatures`.
      log: progress messages.
    """
    from tflite_adaspring.profiling.latency_measure import measure_signatures

    def time_once() -> tuple[float, dict[str, Any]]:
        timings = time_ops(list(lut.specs.values()), threads=threads, **(op_kw or {}))
        return float(np.median([timing.spread for timing in timings.values()])), timings

    noise, timings = _quietest(time_once, NOISY_SPREAD, attempts, f"operator timings at {threads} thread(s)", log)
    for key, timing in timings.items():
        lut.op_ms[key][threads] = timing.ms
    lut.noise[threads] = noise
    dtypes = np.array(fit.dtypes)
    sums = np.array([lut.ops_ms(plan, threads) for plan in fit.plans])

    def fit_once() -> tuple[float, dict[str, OverheadFit]]:
        measured = measure_signatures(fit.model_bytes, fit.keys, threads=threads, **(fit_kw or {}))
        times = np.array([measured[k].median_ms for k in fit.keys])
        fits = {"all": fit_overhead(sums, times)}
        for dtype in sorted(set(fit.dtypes)):
            if (dtypes == dtype).sum() >= 3:
                fits[dtype] = fit_overhead(sums[dtypes == dtype], times[dtypes == dtype])
        return max(f.fit_error_pct for f in fits.values()), fits

    _, lut.overhead[threads] = _quietest(fit_once, NOISY_FIT_PCT, attempts, f"overhead fit at {threads} thread(s)",
                                         log, percent=True)  # fmt: skip
    for name, f in lut.overhead[threads].items():
        log(f"  threads {threads} {name}: a = {f.a_ms * 1e3:.1f} us, b = {f.b:.3f}, "
            f"in-sample error {f.fit_error_pct:.1f} % ({f.points} configs); operator noise {noise:.1%}")  # fmt: skip


def _quietest(
    measure: Callable[[], tuple[float, Any]],
    limit: float,
    attempts: int,
    what: str,
    log: Callable[[str], None],
    percent: bool = False,
) -> tuple[float, Any]:
    """Runs ``measure`` (-> (noise, result)) until its noise is within ``limit``; the quietest result."""
    show = (lambda v: f"{v:.1f} %") if percent else (lambda v: f"{v:.1%}")
    best: tuple[float, Any] | None = None
    for attempt in range(1, max(attempts, 1) + 1):
        noise, result = measure()
        if best is None or noise < best[0]:
            best = (noise, result)
        if noise <= limit:
            break
        if attempt < attempts:
            log(f"  {what} vary by {show(noise)} (limit {show(limit)}): the machine is busy; measuring again "
                f"({attempt + 1}/{attempts})")  # fmt: skip
    if best[0] > limit:
        log(f"  WARNING: {what} still vary by {show(best[0])}; predictions at this thread count will be unreliable. "
            "Rebuild the table on an idle machine.")  # fmt: skip
    return best


def noisy_threads(lut: LatencyLUT) -> list[int]:
    """Thread counts whose operator noise (fit error) is above :data:`NOISY_SPREAD` (:data:`NOISY_FIT_PCT`)."""
    out = []
    for t in lut.threads:
        fit_error = max((f.fit_error_pct for f in lut.overhead[t].values()), default=0.0)
        if lut.noise.get(t, 0.0) > NOISY_SPREAD or fit_error > NOISY_FIT_PCT:
            out.append(t)
    return out


def cached_lut(
    path: str | Path,
    supernet: Any,
    threads: Sequence[int],
    representative: np.ndarray | None = None,
    log: Callable[[str], None] = print,
) -> LatencyLUT:
    """The table saved at ``path``, or a new one measured now and saved there (atomically).

    A saved table is measured again when it lacks one of ``threads``, was measured on a busy machine
    (:func:`noisy_threads`), or cannot be used for ``supernet`` (another search space or schema, malformed).

    Args:
      path: the cache file.
      supernet: the supernet the table is for.
      threads: thread counts the table must cover.
      representative: int8 calibration inputs of the fit models.
      log: progress messages.

    Returns:
      The table, bound to a planner of ``supernet``.
    """
    path = Path(path)
    if path.exists():
        try:
            lut = LatencyLUT.load(path).bind(SubnetPlanner(supernet))
        except (ModelFormatError, SchemaVersionError) as exc:
            why = str(exc)
        else:
            missing = [t for t in threads if t not in lut.threads]
            noisy = [t for t in noisy_threads(lut) if t in threads]
            if not missing and not noisy:
                return lut
            why = f"threads {missing} missing" if missing else f"noisy at threads {noisy}"
        log(f"the latency table {path} is not usable ({why}); measuring it again")
    else:
        log(f"measuring the latency table -> {path}")
    lut = build_lut(supernet, tuple(threads), representative=representative, log=log)
    lut.save(path)
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
