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


class _MacLatency:
    """A stand-in latency table: latency proportional to MACs."""

    def __init__(self, supernet: object):
        self.supernet = supernet

    def predict(self, config: object, threads: int = 1) -> object:
        import types

        scale = {"fp32": 1.0, "fp16": 1.0, "int8": 0.5}[config.precision]
        return types.SimpleNamespace(predicted_ms=1e-6 * self.supernet.cost(config).macs * scale + 0.01)


class _MacAccuracy:
    """A stand-in accuracy predictor: more MACs, higher accuracy; int8 a little lower."""

    def __init__(self, supernet: object):
        self.supernet = supernet

    def predict(self, config: object) -> float:
        import math

        return 0.05 * math.log(self.supernet.cost(config).macs) - (0.01 if config.precision == "int8" else 0.0)


def test_packed_size_cap_bounds_the_selected_weights(tiny: ef.TinyExport) -> None:
    from tflite_adaspring.export.pipeline import default_size_ratio, packed_weight_bytes, plan_export

    supernet = tiny.supernet
    lut, predictor = _MacLatency(supernet), _MacAccuracy(supernet)
    full = supernet.cost(supernet.space.largest()).weight_bytes("fp32")
    kw = {"k": 8, "precisions": ("fp32",), "population": 16, "generations": 4}
    free = plan_export(supernet, lut, predictor, **kw)
    free_ratio = packed_weight_bytes(supernet, [c.config for c in free.candidates]) / full
    assert free_ratio > 2.0  # uncapped, the 8 picks hold more than twice the full model's weights
    capped = plan_export(supernet, lut, predictor, max_size_ratio=2.0, **kw)
    configs = [c.config for c in capped.candidates]
    assert packed_weight_bytes(supernet, configs) <= 2.0 * full
    space = supernet.space
    assert {space.largest(), space.smallest()} <= set(configs)  # required ones survive the cap
    assert sum(supernet.cost(c).weight_bytes() for c in configs) == packed_weight_bytes(supernet, configs)
    mixed = [c.with_precision("int8") for c in configs]
    assert packed_weight_bytes(supernet, mixed) < packed_weight_bytes(supernet, configs) / 3  # int8 kernels
    assert default_size_ratio(["fp32"]) == 3.0 and default_size_ratio(["fp32", "int8"]) == 2.0
    with pytest.raises(ValueError, match="not both"):
        plan_export(supernet, lut, predictor, branch_budget=0.0, max_size_ratio=2.0, **kw)
    with pytest.raises(ValueError, match="> 0"):
        plan_export(supernet, lut, predictor, max_size_ratio=0.0, **kw)


def test_unshared_weight_bytes_bound_the_packed_buffers(tiny: ef.TinyExport) -> None:
    from tflite_adaspring.export.pipeline import packed_weight_bytes
    from tflite_adaspring.metadata import unpack_model

    weights = packed_weight_bytes(tiny.supernet, list(tiny.export.configs.values()))
    model = unpack_model(tiny.export.model_bytes)
    buffers = sum(0 if b.data is None else len(b.data) for b in model.buffers)
    metadata = sum(len(model.buffers[m.buffer].data) for m in model.metadata)
    shapes = 64 * len(tiny.export.configs)  # reshape / mean-axis constants: tens of bytes per signature
    assert 0.5 * weights < buffers - metadata <= weights + shapes
