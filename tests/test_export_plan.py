"""The planner predicts the converted operators exactly; the latency table built on it predicts real latency."""

from __future__ import annotations

import random

import export_factory as ef
import pytest

from tflite_adaspring.profiling.lut import LatencyLUT, covering_configs, fit_overhead, space_ops
from tflite_adaspring.profiling.opbench import time_ops
from tflite_adaspring.profiling.plan import SubnetPlanner
from tflite_adaspring.profiling.tflite_ops import signature_ops


@pytest.fixture(scope="module")
def tiny() -> ef.TinyExport:
    return ef.build()


@pytest.fixture(scope="module")
def planner(tiny: ef.TinyExport) -> SubnetPlanner:
    return SubnetPlanner(tiny.supernet)


def test_plan_equals_the_converted_operators_of_every_signature(tiny: ef.TinyExport, planner: SubnetPlanner) -> None:
    for key, config in tiny.export.configs.items():
        assert planner.plan(config) == signature_ops(tiny.export.model_bytes, key), config.id


def test_covering_configurations_contain_every_operator_of_the_space(planner: SubnetPlanner) -> None:
    space = planner.space
    known = {s.key for s in space_ops(planner, space.precisions)}
    assert len(covering_configs(space, space.precisions)) == 3 * len(space.ops) * len(space.widths)
    rng = random.Random(0)
    for _ in range(300):
        assert {s.key for s in planner.plan(space.sample(rng))} <= known
    float_only = {s.key for s in space_ops(planner, ["fp32", "fp16"])}
    assert all("/int8/" not in k for k in float_only) and float_only < known
    folded = {s.key for s in space_ops(planner, ["fp16"])}  # fp16 folds the fire BatchNorm: no MUL
    assert not any(k.startswith("MUL/") for k in folded) and any(k.startswith("MUL/") for k in float_only)


def test_operator_sums_track_measured_latency(tiny: ef.TinyExport, planner: SubnetPlanner) -> None:
    specs = space_ops(planner, ["fp32", "int8"])
    timings = time_ops(specs, runs=15, rounds=3)
    lut = LatencyLUT(
        space={"name": planner.space.name, "version": planner.space.version},
        specs={s.key: s for s in specs},
        op_ms={k: {1: t.ms} for k, t in timings.items()},
        overhead={},
        host={},
        noise={},
    ).bind(planner)
    configs = list(tiny.export.configs.items())
    sums = [lut.ops_ms(planner.plan(c)) for _, c in configs]
    measured = [tiny.export.latency[k].median_ms for k, _ in configs]
    for s, m in zip(sums, measured):
        assert 0 < s < m  # operators alone never exceed a whole call
    lut.overhead[1] = {"all": fit_overhead(sums, measured)}
    for (_, config), m in zip(configs, measured):
        assert lut.predict(config).predicted_ms == pytest.approx(m, rel=0.35)
    largest = max(range(len(configs)), key=lambda i: sums[i])
    assert measured[largest] == max(measured)  # the biggest operator sum is the slowest signature


def test_folding_the_fire_batchnorm_keeps_the_outputs(tiny: ef.TinyExport) -> None:
    import numpy as np
    import tf_keras

    from tflite_adaspring.export.convert import fold_concat_batchnorm
    from tflite_adaspring.space import Config

    config = Config.from_id("f25.f75/d50-r25-fp32")
    tiny.supernet.recalibrate(config, tiny.calibration)
    model = tiny.supernet.materialize(config)
    folded = fold_concat_batchnorm(model)
    x = tiny.dataset.test[0][:8]
    np.testing.assert_allclose(folded(x).numpy(), model(x).numpy(), atol=1e-5)

    def after_concat(m: tf_keras.Model) -> int:
        return sum(
            isinstance(layer, tf_keras.layers.BatchNormalization)
            and isinstance(layer._inbound_nodes[0].inbound_layers, tf_keras.layers.Concatenate)
            for layer in m.layers
        )

    assert after_concat(model) == 2 and after_concat(folded) == 0
    plain = tiny.supernet.materialize(Config.from_id("s50.d25/s75-r25-fp32"))  # no fire block: unchanged
    assert fold_concat_batchnorm(plain) is plain
