"""Evolve storage mode: background builds, double buffering, LRU cache, failures, resizing, switch storms."""

from __future__ import annotations

import itertools
import time

import evolve_factory as ef
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter
from switch_storm import fine_thread_switching, run_storm

from tflite_adaspring.context.snapshot import ContextSnapshot, Requirements
from tflite_adaspring.errors import ModelFormatError
from tflite_adaspring.runtime import Interpreter, Policy
from tflite_adaspring.runtime.bench import bench_evolve_switch

SWITCHES = 10_000


@pytest.fixture(scope="module")
def models() -> ef.EvolveModels:
    return ef.build()


@pytest.fixture(scope="module")
def reference(models: ef.EvolveModels) -> dict[str, np.ndarray]:
    packed = LiteRTInterpreter(model_content=models.packed)
    x = models.x[:1]
    return {key: packed.get_signature_runner(key)(input=x)["probabilities"] for key in packed.get_signature_list()}


def _primary_first(interp: Interpreter) -> tuple[str, ...]:
    """The table's keys with the file's own configuration (the largest) first."""
    primary = interp.active  # an evolve interpreter starts on the configuration its file runs
    return (primary, *(k for k in interp.metadata.keys if k != primary))


def _slow_builds(interp: Interpreter, delay_s: float) -> list[float]:
    """Makes every background build wait ``delay_s`` first; returns the list of build start times."""
    storage = interp._storage
    make, starts = storage._make_interpreter, []

    def slow(content: bytes):
        starts.append(time.monotonic())
        time.sleep(delay_s)
        return make(content)

    storage._make_interpreter = slow
    return starts


def test_a_switch_never_blocks_and_the_old_configuration_serves_until_the_new_one_is_ready(
    models: ef.EvolveModels, reference: dict[str, np.ndarray]
) -> None:
    interp = Interpreter(model_content=models.evolve, policy=Policy(dwell_s=0.0, switch_margin=0.0))
    keys = _primary_first(interp)
    assert interp.storage_mode == "evolve" and interp.active == keys[0] == models.report["primary"]
    _slow_builds(interp, 0.3)
    runner, x = interp.get_signature_runner(), models.x[:1]
    start = time.perf_counter()
    tight = Requirements(latency_budget_ms=float(min(interp.table.latency_ms)) * 1.01)  # only the fastest fits
    decision = interp.adapt(ContextSnapshot(timestamp=10.0, requirements=tight))
    assert time.perf_counter() - start < 0.1  # adapt returned while the build sleeps
    assert decision.switched and interp.target == decision.key != keys[0]
    assert interp.active == keys[0]  # double buffering: the previous configuration still serves
    np.testing.assert_array_equal(runner(input=x)["probabilities"], reference[keys[0]])
    assert not interp.wait_until_active(timeout=0.01)
    assert interp.wait_until_active(timeout=30)
    assert interp.active == decision.key
    np.testing.assert_allclose(runner(input=x)["probabilities"], reference[decision.key], atol=1e-5)
    interp.close()


def test_only_the_latest_request_is_built(models: ef.EvolveModels) -> None:
    interp = Interpreter(model_content=models.evolve)
    keys = _primary_first(interp)
    starts = _slow_builds(interp, 0.2)
    interp.set_active(keys[1])
    time.sleep(0.05)  # the builder is now busy with keys[1]
    interp.set_active(keys[2])
    interp.set_active(keys[1])  # replaces the queued keys[2]: only the latest request matters
    assert interp.wait_until_active(timeout=30) and interp.active == keys[1]
    time.sleep(0.3)
    assert len(starts) == 1 and interp.active == keys[1]
    interp.close()


def test_the_lru_cache_keeps_recent_builds(models: ef.EvolveModels) -> None:
    def builds(cache_size: int) -> int:
        interp = Interpreter(model_content=models.evolve, cache_size=cache_size)
        keys = _primary_first(interp)
        for key in (keys[1], keys[2], keys[1], keys[0], keys[2]):
            interp.set_active(key)
            assert interp.wait_until_active(timeout=30) and interp.active == key
        interp.close()
        return len(interp._storage.build_ms)

    assert builds(1) == 4  # keys[1], keys[2], keys[1] again, keys[2] again; keys[0] is the file's own
    assert builds(2) == 2
    with pytest.raises(ValueError, match="cache_size"):
        Interpreter(model_content=models.evolve, cache_size=0)


def test_a_failed_build_keeps_the_running_configuration(models: ef.EvolveModels) -> None:
    interp = Interpreter(model_content=models.evolve)
    keys = _primary_first(interp)

    def broken(content: bytes):
        raise ValueError("simulated build failure")

    interp._storage._make_interpreter = broken
    interp.set_active(keys[2])
    with pytest.raises(ModelFormatError, match=f"building configuration {keys[2]} failed"):
        interp.wait_until_active(timeout=30)
    assert interp.active == keys[0] and interp.target == keys[0]
    assert interp.state.current == interp.metadata.keys.index(keys[0])
    interp.close()


def test_fixed_key_runners_build_on_first_use(models: ef.EvolveModels, reference: dict[str, np.ndarray]) -> None:
    interp = Interpreter(model_content=models.evolve)
    keys = _primary_first(interp)
    x = models.x[:1]
    runner = interp.get_signature_runner(keys[2])
    assert runner.get_input_details()["input"]["shape"].tolist() == [1, *models.x.shape[1:]]
    np.testing.assert_allclose(runner(input=x)["probabilities"], reference[keys[2]], atol=1e-5)
    assert interp.active == keys[0]  # running a fixed key does not switch
    assert len(interp._storage.build_ms) == 1
    interp.set_active(keys[2])  # already built: served at once
    assert interp.active == keys[2]
    assert interp.get_signature_list()[keys[1]] == {"inputs": ["input"], "outputs": ["probabilities"]}
    interp.close()


def test_switch_latency_measurement(models: ef.EvolveModels) -> None:
    result = bench_evolve_switch(models.evolve, n=12)
    assert result["switches"] == 12
    assert 0 < result["cold_p50_ms"] <= result["cold_p95_ms"] < 1000
    assert 0 <= result["cached_p50_ms"] <= result["cold_p50_ms"]
    assert result["build_p50_ms"] > 0


def test_switch_storm_while_invoking_gives_whole_configurations(models: ef.EvolveModels) -> None:
    xs = [models.x[j : j + 1] for j in range(3)]
    whole = Interpreter(model_content=models.evolve)  # each configuration's output, computed alone
    keys = whole.metadata.keys
    owner = {}
    for key in keys:
        for j, x in enumerate(xs):
            owner[whole.get_signature_runner(key)(input=x)["probabilities"].tobytes()] = (key, j)
    assert len(owner) == len(keys) * len(xs)
    whole.close()

    # cache_size=1: most switches between the two non-primary configurations need a fresh build
    interp = Interpreter(model_content=models.evolve, cache_size=1, policy=Policy(dwell_s=0.0, switch_margin=0.0))
    runner = interp.get_signature_runner()
    port_in, port_out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]

    def invoke(n: int, j: int) -> np.ndarray:
        if n % 2:
            return runner(input=xs[j])["probabilities"]
        interp.set_tensor(port_in, xs[j])
        interp.invoke()
        return interp.get_tensor(port_out)

    def pause(i: int) -> None:
        if i % 50 == 0:
            time.sleep(0.001)  # let builds finish between bursts of requests

    with fine_thread_switching():
        storm = run_storm(interp, SWITCHES, lambda i: keys[(i * 7 // 3) % len(keys)], invoke, owner, len(xs),
                          pause, min_invokes=300)  # fmt: skip
    interp.close()

    assert not storm.errors, storm.errors
    assert not storm.torn, storm.torn[:5]
    assert len(storm.requested) == SWITCHES
    assert sum(1 for a, b in itertools.pairwise(storm.requested) if a != b) >= SWITCHES // 2
    assert len(interp._storage.build_ms) >= 10  # real background builds overlapped the invokes
    assert len({key for key, _ in storm.seen}) >= 2
