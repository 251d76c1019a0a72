"""Runtime3C search: constraints, objective weights, infeasible fallback, hysteresis, dwell, latency EMA."""

from __future__ import annotations

import dataclasses

import model_factory as mf
import numpy as np
import pytest

from tflite_adaspring.context.snapshot import ContextSnapshot, Requirements
from tflite_adaspring.errors import ConfigError, DataValidationError, ModelFormatError
from tflite_adaspring.metadata import EnergyEstimate, ModelMetadata
from tflite_adaspring.runtime.search import (
    Policy,
    SearchState,
    SearchTable,
    decide,
    energy_weight,
    latency_factor,
    observe_latency,
)

# key: (latency_ms, accuracy, energy_mj, memory_bytes) - faster = less accurate = cheaper
ROWS = {
    "cfg00": (1.0, 0.80, 1.0, 1_000),
    "cfg01": (2.0, 0.86, 2.0, 2_000),
    "cfg02": (4.0, 0.90, 4.0, 4_000),
    "cfg03": (8.0, 0.92, 8.0, 8_000),
}


def _metadata(rows: dict = ROWS, profiles: tuple[str, ...] = ("rpi4",)) -> ModelMetadata:
    signatures = []
    for key, (latency, accuracy, energy, memory) in rows.items():
        base = mf.signature_row(key, 8)
        signatures.append(
            dataclasses.replace(
                base,
                latency_ms=latency,
                accuracy=accuracy,
                weight_bytes=memory // 2,
                peak_activation_bytes=memory - memory // 2,
                energy_mj={p: EnergyEstimate(energy * (i + 1), "modeled") for i, p in enumerate(profiles)},
            )
        )
    return dataclasses.replace(mf.make_metadata(), signatures=tuple(signatures))


TABLE = SearchTable.from_metadata(_metadata())
KEYS = TABLE.keys


def ctx(t: float = 100.0, **kw) -> ContextSnapshot:
    req = {k: kw.pop(k) for k in ("latency_budget_ms", "min_accuracy", "memory_cap_bytes", "energy_mode") if k in kw}
    return ContextSnapshot(timestamp=t, requirements=Requirements(**req), **kw)


def choose(context: ContextSnapshot, policy: Policy | None = None, state: SearchState | None = None):
    return decide(TABLE, policy or Policy(), context, state or SearchState.initial(TABLE))


PERF = {"energy_mode": "performance"}


# ---------------------------------------------------------------------------------------------
# table


def test_table_arrays() -> None:
    assert KEYS == ("cfg00", "cfg01", "cfg02", "cfg03")
    np.testing.assert_array_equal(TABLE.latency_ms, [1, 2, 4, 8])
    np.testing.assert_array_equal(TABLE.memory_bytes, [1000, 2000, 4000, 8000])
    np.testing.assert_allclose(TABLE.energy, [0.125, 0.25, 0.5, 1.0])
    assert TABLE.energy_profile == "rpi4"
    assert not TABLE.latency_ms.flags.writeable
    assert TABLE.index("cfg02") == 2
    with pytest.raises(ConfigError, match="cfg00, cfg01"):
        TABLE.index("nope")


def test_table_energy_profiles() -> None:
    meta = _metadata(profiles=("rpi4", "phone"))
    assert SearchTable.from_metadata(meta).energy_profile == "rpi4"
    assert SearchTable.from_metadata(meta, "phone").energy_profile == "phone"
    with pytest.raises(ConfigError, match="phone"):
        SearchTable.from_metadata(meta, "watch")
    rows = list(meta.signatures)
    rows[1] = dataclasses.replace(rows[1], energy_mj={"rpi4": rows[1].energy_mj["rpi4"]})
    with pytest.raises(ModelFormatError, match="cfg01"):
        SearchTable.from_metadata(dataclasses.replace(meta, signatures=tuple(rows)), "phone")
    no_energy = dataclasses.replace(meta, signatures=tuple(dataclasses.replace(r, energy_mj={}) for r in rows))
    table = SearchTable.from_metadata(no_energy)
    assert table.energy_profile == "macs"
    assert table.energy.max() == 1.0


# ---------------------------------------------------------------------------------------------
# constraints


def test_unconstrained_performance_picks_most_accurate() -> None:
    decision, state = choose(ctx(**PERF))
    assert (decision.key, decision.switched, decision.previous, decision.feasible) == ("cfg03", True, None, 4)
    assert decision.reason == "initial choice"
    assert state.current == 3 and state.last_switch_s == 100.0


def test_latency_budget() -> None:
    decision, _ = choose(ctx(latency_budget_ms=4.5, **PERF))
    assert decision.key == "cfg02" and decision.feasible == 3
    assert decision.predicted_latency_ms == pytest.approx(4.0)


def test_contention_and_frequency_scale_predicted_latency() -> None:
    decision, _ = choose(ctx(latency_budget_ms=4.5, cpu_contention=2.0, **PERF))
    assert decision.key == "cfg01" and decision.predicted_latency_ms == pytest.approx(4.0)
    decision, _ = choose(ctx(latency_budget_ms=4.5, cpu_freq_ratio=0.5, **PERF))
    assert decision.key == "cfg01"
    decision, _ = choose(ctx(latency_budget_ms=4.5, cpu_contention=1.5, cpu_freq_ratio=0.5, **PERF))
    assert decision.key == "cfg00" and decision.predicted_latency_ms == pytest.approx(3.0)
    assert latency_factor(ctx(cpu_contention=None, cpu_freq_ratio=None)) == 1.0


def test_frequency_cap_wins_over_the_current_clock() -> None:
    # an idle CPU at half clock but uncapped: an invoke runs at full speed
    assert latency_factor(ctx(cpu_freq_ratio=0.5, cpu_freq_cap_ratio=1.0)) == 1.0
    decision, _ = choose(ctx(latency_budget_ms=4.5, cpu_freq_ratio=0.5, cpu_freq_cap_ratio=1.0, **PERF))
    assert decision.key == "cfg02"
    # thermally capped at half the maximum: twice as slow whatever the current clock
    assert latency_factor(ctx(cpu_contention=1.5, cpu_freq_ratio=1.0, cpu_freq_cap_ratio=0.5)) == pytest.approx(3.0)


def test_memory_uses_the_smaller_of_available_and_cap() -> None:
    assert choose(ctx(memory_available_bytes=4500, **PERF))[0].key == "cfg02"
    assert choose(ctx(memory_cap_bytes=2500, **PERF))[0].key == "cfg01"
    assert choose(ctx(memory_available_bytes=4500, memory_cap_bytes=1500, **PERF))[0].key == "cfg00"


def test_min_accuracy_excludes_weak_configs() -> None:
    decision, _ = choose(ctx(min_accuracy=0.85, energy_mode="saver"))
    assert decision.key == "cfg01" and decision.feasible == 3


# ---------------------------------------------------------------------------------------------
# objective weights


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"energy_mode": "performance", "battery_percent": 5.0}, 0.0),
        ({"energy_mode": "saver", "charging": True}, 0.05),
        ({"energy_mode": "balanced", "charging": True, "battery_percent": 5.0}, 0.05),
        ({"energy_mode": "saver", "battery_percent": 90.0}, 1.0),
        ({"energy_mode": "balanced", "battery_percent": 10.0, "charging": False}, 1.0),
        ({"energy_mode": "balanced", "battery_percent": 100.0}, 0.1),
        ({"energy_mode": "balanced", "battery_percent": 20.0}, 0.5),
        ({"energy_mode": "balanced", "battery_percent": 60.0}, 0.3),
        ({"energy_mode": "balanced"}, 0.3),
        ({"energy_mode": "balanced", "battery_percent": float("nan")}, 0.3),
    ],
)
def test_energy_weight_mapping(kw: dict, expected: float) -> None:
    assert energy_weight(ctx(**kw), Policy()) == pytest.approx(expected)


def test_energy_weight_changes_the_choice() -> None:
    assert choose(ctx(energy_mode="performance"))[0].key == "cfg03"
    assert choose(ctx(energy_mode="balanced", battery_percent=100.0))[0].key == "cfg02"
    assert choose(ctx(energy_mode="saver"))[0].key == "cfg00"
    assert choose(ctx(battery_percent=10.0))[0].key == "cfg00"
    assert choose(ctx(battery_percent=10.0, charging=True))[0].key == "cfg02"  # 0.92 - 0.05 < 0.90 - 0.025
    decision, _ = choose(ctx(energy_mode="saver"))
    assert decision.objective == pytest.approx(0.80 - 1.0 * 0.125)


# ---------------------------------------------------------------------------------------------
# nothing feasible


def test_infeasible_latency_picks_fastest_and_says_why() -> None:
    decision, _ = choose(ctx(latency_budget_ms=0.5, **PERF))
    assert decision.key == "cfg00" and decision.feasible == 0
    assert decision.violations == ("latency: 1 ms > budget 0.5 ms (even cfg00)",)
    assert decision.reason.startswith("none feasible: latency: 1 ms > budget 0.5 ms")


def test_infeasible_conflict_prefers_meeting_latency() -> None:
    # cfg00 meets latency but misses accuracy by 0.1/0.9; cfg02 meets accuracy, latency 4 vs 1.5 budget
    decision, _ = choose(ctx(latency_budget_ms=1.5, min_accuracy=0.9, **PERF))
    assert decision.key == "cfg00"
    assert decision.violations == ("accuracy: 0.8 < min 0.9 (with cfg00; constraints conflict)",)


def test_infeasible_memory_reason_names_best() -> None:
    decision, _ = choose(ctx(memory_cap_bytes=500, **PERF))
    assert decision.key == "cfg00"
    assert decision.violations == ("memory: 0.001 MB > limit 0.0005 MB (even cfg00)",)


def test_infeasible_latency_weight_is_a_policy_setting() -> None:
    context = ctx(latency_budget_ms=1.5, min_accuracy=0.9, **PERF)
    lenient = Policy(latency_violation_weight=0.01)
    assert choose(context, lenient)[0].key == "cfg02"


# ---------------------------------------------------------------------------------------------
# stability


def _state_at(key: str, switched_at: float) -> SearchState:
    return SearchState.initial(TABLE, KEYS.index(key)).with_current(KEYS.index(key), switched_at)


def test_hysteresis_margin() -> None:
    # balanced at 100 %: objective = acc - 0.1 * energy -> cfg02 0.85, cfg03 0.82, cfg01 0.835
    state = _state_at("cfg01", 0.0)
    context = ctx(t=100.0, battery_percent=100.0)
    decision, new_state = choose(context, Policy(switch_margin=0.02), state)
    assert (decision.key, decision.switched) == ("cfg01", False)
    assert "within margin" in decision.reason
    assert new_state is state
    decision, new_state = choose(context, Policy(switch_margin=0.01), state)
    assert (decision.key, decision.switched, decision.previous) == ("cfg02", True, "cfg01")
    assert new_state.current == 2 and new_state.last_switch_s == 100.0


def test_current_best_stays() -> None:
    decision, _ = choose(ctx(**PERF), state=_state_at("cfg03", 0.0))
    assert (decision.key, decision.switched, decision.reason) == ("cfg03", False, "current is best")


def test_dwell_blocks_voluntary_switches_only() -> None:
    policy = Policy(dwell_s=5.0)
    state = _state_at("cfg01", 98.0)
    decision, _ = choose(ctx(t=100.0, **PERF), policy, state)
    assert (decision.key, decision.switched) == ("cfg01", False) and decision.reason.startswith("dwell")
    decision, _ = choose(ctx(t=103.5, **PERF), policy, state)
    assert (decision.key, decision.switched) == ("cfg03", True)
    # the current configuration became infeasible: leave it at once despite the dwell time
    decision, _ = choose(ctx(t=100.0, latency_budget_ms=1.5, **PERF), policy, state)
    assert (decision.key, decision.switched) == ("cfg00", True)
    assert decision.reason == "cfg01 infeasible (latency: 2 ms > budget 1.5 ms (with cfg01; constraints conflict))"


def test_infeasible_everywhere_keeps_near_equal_current() -> None:
    # cfg00 is the least violating; staying on cfg01 is only allowed if it is within the margin
    context = ctx(latency_budget_ms=0.5, **PERF)
    assert choose(context, Policy(switch_margin=0.0), _state_at("cfg01", 99.0))[0].key == "cfg00"
    assert choose(context, Policy(switch_margin=10.0), _state_at("cfg01", 99.0))[0].key == "cfg01"


# ---------------------------------------------------------------------------------------------
# latency EMA


def test_observe_latency_ema_and_device_ratio() -> None:
    state = SearchState.initial(TABLE)
    state = observe_latency(TABLE, state, 1, observed_ms=4.0, alpha=0.5)  # cfg01 runs 2x slower
    assert state.latency_ratio[1] == pytest.approx(2.0)  # first observation is taken as is
    assert state.device_ratio == pytest.approx(2.0)
    np.testing.assert_allclose(state.effective_ratio, [2.0, 2.0, 2.0, 2.0])
    state = observe_latency(TABLE, state, 0, observed_ms=1.0, alpha=0.5)  # cfg00 runs at export speed
    assert state.device_ratio == pytest.approx(1.5)
    np.testing.assert_allclose(state.effective_ratio, [1.0, 2.0, 1.5, 1.5])
    state = observe_latency(TABLE, state, 1, observed_ms=2.0, alpha=0.5)
    assert state.latency_ratio[1] == pytest.approx(1.5)
    # three observations move the EMA like three single steps
    three = observe_latency(TABLE, state, 1, observed_ms=6.0, count=3, alpha=0.5)
    single = state
    for _ in range(3):
        single = observe_latency(TABLE, single, 1, observed_ms=6.0, alpha=0.5)
    assert three.latency_ratio[1] == pytest.approx(single.latency_ratio[1])
    assert observe_latency(TABLE, state, 1, observed_ms=0.0) is state


def test_observation_is_normalised_by_the_context_factor() -> None:
    state = observe_latency(TABLE, SearchState.initial(TABLE), 2, observed_ms=8.0, factor=2.0)
    assert state.latency_ratio[2] == pytest.approx(1.0)  # 2x slower because of contention only


def test_ema_correction_changes_feasibility() -> None:
    state = SearchState.initial(TABLE, 2)
    context = ctx(latency_budget_ms=5.0, **PERF)
    assert choose(context, state=state)[0].key == "cfg02"
    slow = observe_latency(TABLE, state, 2, observed_ms=6.0)  # cfg02 measured at 6 ms on this device
    decision, _ = choose(context, state=slow)
    assert decision.key == "cfg01"
    assert decision.predicted_latency_ms == pytest.approx(3.0)  # cfg01 inherits the device ratio 1.5
    assert decision.reason.startswith("cfg02 infeasible (latency: 6 ms")


# ---------------------------------------------------------------------------------------------
# purity and validation


def test_decide_is_pure() -> None:
    state = observe_latency(TABLE, SearchState.initial(TABLE, 1), 1, observed_ms=3.0)
    before = (state.current, state.last_switch_s, state.latency_ratio.copy(), state.effective_ratio.copy())
    context = ctx(latency_budget_ms=3.5, cpu_contention=1.2, **PERF)
    first = choose(context, state=state)
    second = choose(context, state=state)
    assert first[0] == second[0]
    assert (state.current, state.last_switch_s) == before[:2]
    np.testing.assert_array_equal(state.latency_ratio, before[2])
    np.testing.assert_array_equal(state.effective_ratio, before[3])
    with pytest.raises(ValueError):
        state.effective_ratio[0] = 5.0


@pytest.mark.parametrize(
    "kw",
    [{"switch_margin": -1.0}, {"ema_alpha": 0.0}, {"ema_alpha": 1.5}, {"dwell_s": float("nan")}, {"energy_profile": 3}],
)
def test_policy_validation(kw: dict) -> None:
    with pytest.raises(DataValidationError, match=next(iter(kw))):
        Policy(**kw)
