"""Runtime3C search: pick the configuration that fits the current context (AdaSpring §5).

:func:`decide` is a pure function of ``(table, policy, context, state)`` returning ``(decision, new_state)``:

* **constraints** - predicted latency <= ``latency_budget_ms``; peak memory (weights + peak activations)
  <= min(``memory_available_bytes``, ``memory_cap_bytes``); accuracy >= ``min_accuracy``. Predicted latency
  is the export-host median times a learned device ratio (see :func:`observe_latency`) times the context's
  ``cpu_contention`` (None -> 1), divided by the frequency cap ``cpu_freq_cap_ratio`` when known (else by
  ``cpu_freq_ratio``): an idle CPU clocks down, so its current frequency says nothing about an invoke.
* **objective** - ``lambda_accuracy * accuracy - energy_weight * energy / max(energy)``, with the energy
  weight chosen from battery, charging and energy mode by :func:`energy_weight`.
* **nothing feasible** - take the configuration with the smallest normalised violation sum (latency
  violations weighted ``latency_violation_weight``, ties broken by the objective) and say why.
* **stability** - hysteresis (switch only for an objective gain > ``switch_margin``) and a minimum dwell
  time (no voluntary switch within ``dwell_s`` of the last switch); an infeasible current configuration
  is left immediately.

The table is precomputed into numpy arrays once (:class:`SearchTable`); one decision costs ~10-30 µs
for 16 configurations.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from tflite_adaspring.context.snapshot import ContextSnapshot
from tflite_adaspring.errors import ConfigError, DataValidationError, ModelFormatError
from tflite_adaspring.metadata import ModelMetadata

_INF = math.inf


@dataclasses.dataclass(frozen=True)
class Policy:
    """How the search trades accuracy for energy and how eagerly it switches.

    Attributes:
      lambda_accuracy: weight of accuracy in the objective.
      energy_weight_performance: energy weight in ``performance`` mode (≈ 0: ignore energy).
      energy_weight_charging: energy weight while charging (low).
      energy_weight_full: energy weight in ``balanced`` mode at 100 % battery.
      energy_weight_empty: energy weight in ``balanced`` mode as the battery reaches ``low_battery_percent``.
      energy_weight_saver: energy weight in ``saver`` mode or on low battery when not charging (heavy).
      low_battery_percent: battery level below which the battery counts as low.
      switch_margin: minimum objective gain for a voluntary switch (hysteresis).
      dwell_s: minimum seconds between a switch and the next voluntary one.
      ema_alpha: weight of one new latency observation in the device-ratio EMA.
      energy_profile: device profile whose energy figures are used; None = the first in the table.
      latency_violation_weight: weight of the latency violation when nothing is feasible.
    """

    lambda_accuracy: float = 1.0
    energy_weight_performance: float = 0.0
    energy_weight_charging: float = 0.05
    energy_weight_full: float = 0.1
    energy_weight_empty: float = 0.5
    energy_weight_saver: float = 1.0
    low_battery_percent: float = 20.0
    switch_margin: float = 0.005
    dwell_s: float = 1.0
    ema_alpha: float = 0.2
    energy_profile: str | None = None
    latency_violation_weight: float = 2.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "energy_profile":
                if value is not None and not isinstance(value, str):
                    raise DataValidationError(f"Policy.energy_profile must be a profile name or None, got {value!r}")
            elif not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise DataValidationError(f"Policy.{f.name} must be a finite number >= 0, got {value!r}")
        if not 0 < self.ema_alpha <= 1:
            raise DataValidationError(f"Policy.ema_alpha must be in (0, 1], got {self.ema_alpha!r}")
        if not 0 <= self.low_battery_percent <= 100:
            raise DataValidationError(f"Policy.low_battery_percent must be in [0, 100], got {self.low_battery_percent}")


def energy_weight(context: ContextSnapshot, policy: Policy) -> float:
    """The energy weight of the objective for a context (accuracy weight is ``policy.lambda_accuracy``).

    The mapping, first match wins:

    ==========================================  ==========================================
    energy_mode ``performance``                 ``energy_weight_performance`` (≈ 0)
    charging                                    ``energy_weight_charging`` (low)
    energy_mode ``saver``                       ``energy_weight_saver`` (heavy)
    battery < ``low_battery_percent``           ``energy_weight_saver`` (heavy)
    ``balanced``, battery unknown               midpoint of full and empty weights
    ``balanced``, battery b                     linear from ``energy_weight_full`` at 100 %
                                                to ``energy_weight_empty`` at the low threshold
    ==========================================  ==========================================

    Args:
      context: the current context.
      policy: the weights.

    Returns:
      The weight (>= 0) of the normalised energy in the objective.
    """
    mode = context.requirements.energy_mode
    if mode == "performance":
        return policy.energy_weight_performance
    if context.charging:
        return policy.energy_weight_charging
    if mode == "saver":
        return policy.energy_weight_saver
    battery = context.battery_percent
    if battery is None or not math.isfinite(battery):
        return 0.5 * (policy.energy_weight_full + policy.energy_weight_empty)
    if battery < policy.low_battery_percent:
        return policy.energy_weight_saver
    span = max(100.0 - policy.low_battery_percent, 1e-9)
    drained = min(1.0, (100.0 - battery) / span)
    return policy.energy_weight_full + drained * (policy.energy_weight_empty - policy.energy_weight_full)


def latency_factor(context: ContextSnapshot) -> float:
    """How much slower than on an idle machine at full clock the context makes an invoke.

    Args:
      context: the current context.

    Returns:
      ``cpu_contention`` (None -> 1) divided by ``cpu_freq_cap_ratio``, the highest frequency the CPUs may
      reach now (an invoke ramps the clock up to it; the current frequency of an idle CPU is no guide), or
      by ``cpu_freq_ratio`` when the cap is unknown (hosts and traces that only report the current clock).
    """
    factor = context.cpu_contention if context.cpu_contention is not None and context.cpu_contention > 0 else 1.0
    ratio = context.cpu_freq_cap_ratio if context.cpu_freq_cap_ratio is not None else context.cpu_freq_ratio
    if ratio is not None and ratio > 0:
        factor /= ratio
    return factor


def _frozen(values: np.ndarray) -> np.ndarray:
    values.flags.writeable = False
    return values


@dataclasses.dataclass(frozen=True, eq=False)
class SearchTable:
    """The metadata table as read-only numpy arrays (built once per model).

    Attributes:
      keys: signature keys, row order.
      latency_ms: export-host median latency per row.
      memory_bytes: weights + peak activations per row.
      accuracy: validation accuracy per row.
      energy: energy per row for ``energy_profile``, normalised so the largest is 1.
      energy_profile: the profile used (``"macs"`` when the table has no energy figures:
        then energy is modeled as proportional to MACs).
    """

    keys: tuple[str, ...]
    latency_ms: np.ndarray
    memory_bytes: np.ndarray
    accuracy: np.ndarray
    energy: np.ndarray
    energy_profile: str

    @classmethod
    def from_metadata(cls, metadata: ModelMetadata, energy_profile: str | None = None) -> SearchTable:
        """Builds the arrays.

        Args:
          metadata: the model's metadata.
          energy_profile: device profile for the energy term; None = the first profile in the table.

        Returns:
          The table.

        Raises:
          ConfigError: the named profile is not in the table.
          ModelFormatError: some rows lack the chosen profile.
        """
        rows = metadata.signatures
        profiles = metadata.energy_profiles()
        if energy_profile is not None and energy_profile not in profiles:
            raise ConfigError(f"energy profile {energy_profile!r} is not in the model; choices: {profiles}")
        profile = energy_profile or (profiles[0] if profiles else "macs")
        if profiles:
            missing = [s.key for s in rows if profile not in s.energy_mj]
            if missing:
                raise ModelFormatError(f"signatures {missing} have no energy figure for profile {profile!r}")
            energy = np.array([s.energy_mj[profile].value for s in rows], dtype=np.float64)
        else:
            energy = np.array([s.macs for s in rows], dtype=np.float64)
        top = energy.max()
        return cls(
            keys=tuple(s.key for s in rows),
            latency_ms=_frozen(np.array([s.latency_ms for s in rows], dtype=np.float64)),
            memory_bytes=_frozen(np.array([s.memory_bytes for s in rows], dtype=np.float64)),
            accuracy=_frozen(np.array([s.accuracy for s in rows], dtype=np.float64)),
            energy=_frozen(energy / top if top > 0 else energy),
            energy_profile=profile,
        )

    def __len__(self) -> int:
        return len(self.keys)

    def index(self, key: str) -> int:
        """Row of ``key``.

        Raises:
          ConfigError: naming the known keys.
        """
        try:
            return self.keys.index(key)
        except ValueError:
            raise ConfigError(f"unknown configuration {key!r}; known keys: {', '.join(self.keys)}") from None


@dataclasses.dataclass(frozen=True, eq=False)
class SearchState:
    """What the search remembers between decisions (never mutated; every step returns a new one).

    Attributes:
      current: row of the active configuration, -1 before the first decision.
      last_switch_s: context timestamp of the last switch (-inf = never).
      latency_ratio: per row, EMA of observed / predicted latency; NaN until observed.
      device_ratio: EMA of observed / predicted latency over all rows (the device vs the export host).
      effective_ratio: ``latency_ratio`` where observed, else ``device_ratio`` (what predictions use).
    """

    current: int
    last_switch_s: float
    latency_ratio: np.ndarray
    device_ratio: float
    effective_ratio: np.ndarray

    @classmethod
    def initial(cls, table: SearchTable, current: int = -1) -> SearchState:
        """The state before any decision or observation.

        Args:
          table: the search table.
          current: row of the configuration active now, or -1 for none.

        Returns:
          The state.
        """
        n = len(table)
        return cls(current, -_INF, _frozen(np.full(n, np.nan)), 1.0, _frozen(np.ones(n)))

    def with_current(self, current: int, switch_time: float) -> SearchState:
        """This state with a (manual) switch to row ``current`` at ``switch_time``."""
        return SearchState(current, switch_time, self.latency_ratio, self.device_ratio, self.effective_ratio)


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one search step.

    Attributes:
      key: chosen signature key.
      index: chosen row.
      switched: True when ``key`` differs from the previous configuration.
      previous: previous key (None before the first decision).
      reason: why, in words.
      feasible: number of configurations meeting every constraint.
      predicted_latency_ms: predicted latency of the chosen configuration in this context.
      objective: objective value of the chosen configuration.
      timestamp: the context's timestamp.
      violations: the constraints the chosen configuration violates (empty when feasible).
    """

    key: str
    index: int
    switched: bool
    previous: str | None
    reason: str
    feasible: int
    predicted_latency_ms: float
    objective: float
    timestamp: float
    violations: tuple[str, ...] = ()


def observe_latency(
    table: SearchTable,
    state: SearchState,
    index: int,
    observed_ms: float,
    count: int = 1,
    factor: float = 1.0,
    alpha: float = 0.2,
) -> SearchState:
    """Folds observed invoke latencies of one configuration into the latency EMAs.

    The observation is first divided by the context ``factor`` in force while it was measured (see
    :func:`latency_factor`), so contention is not counted twice when predictions multiply by it again.
    ``count`` observations with mean ``observed_ms`` move the EMA as far as ``count`` single steps would.
    The first observation of a row (and the first of all, for the device ratio) is taken as is.

    Args:
      table: the search table.
      state: the current state.
      index: row that was invoked.
      observed_ms: mean observed invoke latency.
      count: number of invokes averaged in ``observed_ms``.
      factor: the context's latency factor during those invokes.
      alpha: EMA weight of one observation.

    Returns:
      The new state.
    """
    if count <= 0 or not observed_ms > 0:
        return state
    ratio = observed_ms / (table.latency_ms[index] * factor)
    weight = 1.0 - (1.0 - alpha) ** count
    per_row = state.latency_ratio.copy()
    first_ever = bool(np.isnan(per_row).all())
    old = per_row[index]
    per_row[index] = ratio if np.isnan(old) else old + weight * (ratio - old)
    device = ratio if first_ever else state.device_ratio + weight * (ratio - state.device_ratio)
    effective = np.where(np.isnan(per_row), device, per_row)
    return SearchState(state.current, state.last_switch_s, _frozen(per_row), device, _frozen(effective))


def _violation_text(
    name: str, values: np.ndarray, limit: float, chosen: int, keys: tuple[str, ...], upper: bool, unit: str
) -> str:
    """Describes one violated constraint, naming the best configuration when even it fails."""
    best = int(values.argmin() if upper else values.argmax())
    best_ok = values[best] <= limit if upper else values[best] >= limit
    op = ">" if upper else "<"
    limit_word = "budget" if name == "latency" else ("limit" if upper else "min")
    shown = values[chosen] if best_ok else values[best]
    tail = f"(with {keys[chosen]}; constraints conflict)" if best_ok else f"(even {keys[best]})"
    return f"{name}: {shown:.4g}{unit} {op} {limit_word} {limit:.4g}{unit} {tail}"


def _least_violating(
    table: SearchTable,
    policy: Policy,
    pred: np.ndarray,
    budget: float,
    mem_limit: float,
    min_acc: float,
    objective: np.ndarray,
) -> tuple[int, np.ndarray]:
    """Returns the row with the smallest weighted, normalised violation sum and every row's score."""
    score = np.zeros(len(table))
    if budget < _INF:
        score += policy.latency_violation_weight * np.maximum(pred / budget - 1.0, 0.0)
    if mem_limit < _INF:
        score += np.maximum(table.memory_bytes / max(mem_limit, 1.0) - 1.0, 0.0)
    if min_acc > 0:
        score += np.maximum((min_acc - table.accuracy) / min_acc, 0.0)
    ties = score <= score.min() + 1e-12
    return int(np.where(ties, objective, -_INF).argmax()), score


def _describe_violations(
    table: SearchTable, pred: np.ndarray, budget: float, mem_limit: float, min_acc: float, row: int
) -> tuple[str, ...]:
    out = []
    if pred[row] > budget:
        out.append(_violation_text("latency", pred, budget, row, table.keys, True, " ms"))
    if table.memory_bytes[row] > mem_limit:
        out.append(_violation_text("memory", table.memory_bytes / 1e6, mem_limit / 1e6, row, table.keys, True, " MB"))
    if table.accuracy[row] < min_acc:
        out.append(_violation_text("accuracy", table.accuracy, min_acc, row, table.keys, False, ""))
    return tuple(out)


def decide(
    table: SearchTable, policy: Policy, context: ContextSnapshot, state: SearchState
) -> tuple[Decision, SearchState]:
    """One Runtime3C search step (pure: reads its arguments, returns new values).

    Args:
      table: the precomputed configuration table.
      policy: objective weights and switching rules.
      context: the current context (its ``timestamp`` must be monotonic seconds).
      state: the previous state (from :meth:`SearchState.initial` or the last call).

    Returns:
      ``(decision, new_state)``.
    """
    req = context.requirements
    now = context.timestamp
    pred = table.latency_ms * state.effective_ratio
    factor = latency_factor(context)
    if factor != 1.0:
        pred *= factor
    budget = _INF if req.latency_budget_ms is None else req.latency_budget_ms
    mem_limit = min(
        _INF if context.memory_available_bytes is None else context.memory_available_bytes,
        _INF if req.memory_cap_bytes is None else req.memory_cap_bytes,
    )
    min_acc = 0.0 if req.min_accuracy is None else req.min_accuracy

    feasible = None  # None = every row feasible
    if budget < _INF:
        feasible = pred <= budget
    if mem_limit < _INF:
        ok = table.memory_bytes <= mem_limit
        feasible = ok if feasible is None else feasible & ok
    if min_acc > 0:
        ok = table.accuracy >= min_acc
        feasible = ok if feasible is None else feasible & ok

    weight = energy_weight(context, policy)
    objective = policy.lambda_accuracy * table.accuracy
    if weight:
        objective = objective - weight * table.energy
    n_feasible = len(table) if feasible is None else int(np.count_nonzero(feasible))

    cur = state.current
    keys = table.keys
    violations: tuple[str, ...] = ()
    if n_feasible:
        best = int((objective if feasible is None else np.where(feasible, objective, -_INF)).argmax())
        cur_ok = cur >= 0 and (feasible is None or bool(feasible[cur]))
        if cur < 0:
            choice, reason = best, "initial choice"
        elif not cur_ok:
            choice = best
            why = "; ".join(_describe_violations(table, pred, budget, mem_limit, min_acc, cur))
            reason = f"{keys[cur]} infeasible ({why})"
        elif best == cur:
            choice, reason = cur, "current is best"
        else:
            gain = float(objective[best] - objective[cur])
            if gain <= policy.switch_margin:
                choice, reason = cur, f"gain {gain:.4f} of {keys[best]} within margin {policy.switch_margin}"
            elif now - state.last_switch_s < policy.dwell_s:
                choice, reason = cur, f"dwell: {now - state.last_switch_s:.3g} s < {policy.dwell_s} s"
            else:
                choice, reason = best, f"objective gain {gain:.4f} > margin {policy.switch_margin}"
    else:
        best, score = _least_violating(table, policy, pred, budget, mem_limit, min_acc, objective)
        keep = cur >= 0 and score[cur] - score[best] <= policy.switch_margin
        choice = cur if keep else best
        violations = _describe_violations(table, pred, budget, mem_limit, min_acc, choice)
        reason = "none feasible: " + "; ".join(violations)

    switched = choice != cur
    decision = Decision(
        key=keys[choice],
        index=choice,
        switched=switched,
        previous=keys[cur] if cur >= 0 else None,
        reason=reason,
        feasible=n_feasible,
        predicted_latency_ms=float(pred[choice]),
        objective=float(objective[choice]),
        timestamp=now,
        violations=violations,
    )
    if not switched:
        return decision, state
    return decision, state.with_current(choice, now)
