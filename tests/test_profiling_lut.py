"""Single-operator models, their timing, the overhead fit and the latency table (LiteRT only, no TensorFlow)."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from tflite_adaspring.errors import ConfigError, ModelFormatError, SchemaVersionError
from tflite_adaspring.metadata import unpack_model
from tflite_adaspring.profiling import opbench
from tflite_adaspring.profiling.lut import LatencyLUT, OverheadFit, fit_overhead
from tflite_adaspring.profiling.ops import OpSpec
from tflite_adaspring.profiling.tflite_ops import subgraph_ops
from tflite_adaspring.space import SearchSpace

X = (1, 1, 32, 16)
SPECS = [
    OpSpec("QUANTIZE", ((1, 32, 4),), (1, 32, 4), dtype="int8"),
    OpSpec("RESHAPE", ((1, 32, 4),), (1, 1, 32, 4)),
    OpSpec("CONV_2D", (X,), (1, 1, 32, 8), (8, 1, 5, 16), True, activation="RELU"),
    OpSpec("CONV_2D", (X,), (1, 1, 16, 16), (16, 1, 1, 16), True, stride=(1, 2)),
    OpSpec("DEPTHWISE_CONV_2D", (X,), X, (1, 1, 5, 16), True, activation="RELU"),
    OpSpec("ADD", (X, X), X, activation="RELU"),
    OpSpec("ADD", (X,), X, (16,)),
    OpSpec("MUL", (X,), X, (16,)),
    OpSpec("CONCATENATION", ((1, 1, 32, 8), (1, 1, 32, 8)), X),
    OpSpec("MAX_POOL_2D", (X,), (1, 1, 16, 16), stride=(1, 2), pool=(1, 2)),
    OpSpec("MEAN", (X,), (1, 16)),
    OpSpec("FULLY_CONNECTED", ((1, 16),), (1, 4), (4, 16), False),
    OpSpec("FULLY_CONNECTED", ((1, 16),), (1, 8), (8, 16), True, activation="RELU"),
    OpSpec("SOFTMAX", ((1, 7),), (1, 7)),
    OpSpec("DEQUANTIZE", ((1, 7),), (1, 7), dtype="int8"),
]
ALL = SPECS + [
    OpSpec(**{**s.__dict__, "dtype": "int8"})
    for s in SPECS
    if s.op not in ("QUANTIZE", "DEQUANTIZE") and s.dtype == "float32"
]


@pytest.mark.parametrize("spec", ALL, ids=lambda s: s.key)
def test_op_model_runs_and_reads_back_as_its_spec(spec: OpSpec) -> None:
    model = opbench.build_op_model(spec, copies=3)
    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    interpreter.invoke()
    assert len(interpreter.get_output_details()) == 3
    unpacked = unpack_model(model)
    assert subgraph_ops(unpacked, unpacked.subgraphs[0]) == [spec] * 3
    assert OpSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


def test_timing_orders_a_big_convolution_above_a_tiny_one() -> None:
    big = OpSpec("CONV_2D", ((1, 1, 64, 64),), (1, 1, 64, 64), (64, 1, 5, 64), True)
    tiny = OpSpec("CONV_2D", ((1, 1, 8, 4),), (1, 1, 8, 4), (4, 1, 1, 4), True)
    times = opbench.time_ops([big, tiny, tiny], copies=4, runs=15, rounds=3)
    assert set(times) == {big.key, tiny.key}
    assert times[big.key].ms > 3 * times[tiny.key].ms >= 0.0
    assert times[big.key].rounds == 3
    with pytest.raises(ValueError, match="copies"):
        opbench.time_ops([tiny], copies=1)


def test_overhead_fit_recovers_a_line_and_falls_back_with_few_points() -> None:
    ops = np.array([0.01, 0.05, 0.1, 0.2])
    fit = fit_overhead(ops, 0.004 + 1.1 * ops)
    assert fit.a_ms == pytest.approx(0.004) and fit.b == pytest.approx(1.1) and fit.fit_error_pct < 1e-6
    two = fit_overhead([0.01, 0.05], [0.016, 0.054])
    assert two.b == 1.0 and two.a_ms == pytest.approx(0.005)
    with pytest.raises(ValueError):
        fit_overhead([], [])


def _lut() -> LatencyLUT:
    specs = {s.key: s for s in SPECS[:4]}
    return LatencyLUT(
        space={"name": "toy", "version": 1},
        specs=specs,
        op_ms={k: {1: 0.01 * (i + 1)} for i, k in enumerate(specs)},
        overhead={1: {"all": OverheadFit(0.005, 1.0, 4, 1.0), "int8": OverheadFit(0.002, 2.0, 3, 2.0)}},
        host={"cpu": "test"},
        noise={1: 0.01},
    )


def test_table_predicts_sums_round_trips_and_rejects_what_it_cannot_predict(tmp_path: Path) -> None:
    lut = _lut()
    float_plan = SPECS[1:4]
    estimate = lut.predict_plan(float_plan, threads=1)
    assert estimate.predicted_ms == pytest.approx(0.005 + 0.02 + 0.03 + 0.04)
    assert estimate.terms["n_ops"] == 3 and estimate.terms["fit"] == "all"
    int8 = lut.predict_plan(SPECS[:1], threads=1)  # an int8 plan uses the int8 fit
    assert int8.predicted_ms == pytest.approx(0.002 + 2 * 0.01) and int8.terms["fit"] == "int8"
    again = LatencyLUT.load(lut.save(tmp_path / "lut.json"))
    assert again.predict_plan(float_plan).predicted_ms == pytest.approx(estimate.predicted_ms)
    with pytest.raises(ConfigError, match="adaspring profile"):
        lut.predict_plan(SPECS[4:6])
    with pytest.raises(ConfigError, match="thread"):
        lut.predict_plan(float_plan, threads=2)
    with pytest.raises(ConfigError, match="bind"):
        lut.predict(SearchSpace("toy", 1, (1,)).largest())
    other = types.SimpleNamespace(space=SearchSpace("other", 1, (1,)))
    with pytest.raises(SchemaVersionError, match="adaspring profile"):
        lut.bind(other)


def test_table_files_of_another_kind_or_version_fail_clearly(tmp_path: Path) -> None:
    path = tmp_path / "lut.json"
    path.write_text("{not json")
    with pytest.raises(ModelFormatError, match="JSON"):
        LatencyLUT.load(path)
    obj = _lut().to_json()
    path.write_text(json.dumps({**obj, "kind": "x"}))
    with pytest.raises(ModelFormatError, match="latency table"):
        LatencyLUT.load(path)
    path.write_text(json.dumps({**obj, "schema_version": 2}))
    with pytest.raises(SchemaVersionError):
        LatencyLUT.load(path)
    broken = json.loads(json.dumps(obj))
    first = next(iter(broken["ops"]))
    broken["ops"][first]["spec"]["output"] = [1, 2]
    path.write_text(json.dumps(broken))
    with pytest.raises(ModelFormatError, match="match"):
        LatencyLUT.load(path)


def _fake_timings(spread: float, scale: float) -> object:
    def time_ops(specs: list[OpSpec], threads: int = 1, **kw: object) -> dict[str, opbench.OpTiming]:
        return {
            s.key: opbench.OpTiming(ms=scale * 0.01 * (i + 1), spread=spread, rounds=3) for i, s in enumerate(specs)
        }

    return time_ops


def test_busy_measurements_are_redone_and_the_quietest_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from tflite_adaspring.profiling import latency_measure
    from tflite_adaspring.profiling import lut as lut_module

    attempts = iter([_fake_timings(0.30, 3.0), _fake_timings(0.02, 1.0)])  # busy, then quiet
    monkeypatch.setattr(lut_module, "time_ops", lambda *a, **kw: next(attempts)(*a, **kw))
    specs = SPECS[1:4]
    plans = [specs[:1], specs[:2], specs]  # operator sums 0.01, 0.03, 0.06 ms
    fit_calls = []

    def measure_signatures(model: bytes, keys: list[str], threads: int = 1, **kw: object) -> dict:
        fit_calls.append(threads)
        ops = [0.01, 0.03, 0.06]
        jitter = [0.0, 0.02, -0.01] if len(fit_calls) == 1 else [0.0, 0.0, 0.0]  # a busy first fit
        return {k: types.SimpleNamespace(median_ms=0.004 + 1.2 * o + j) for k, o, j in zip(keys, ops, jitter)}

    monkeypatch.setattr(latency_measure, "measure_signatures", measure_signatures)
    lut = LatencyLUT({"name": "toy", "version": 1}, {s.key: s for s in specs}, {s.key: {} for s in specs}, {}, {}, {})
    fit = lut_module.FitModels(b"", ["a", "b", "c"], plans, ["float32"] * 3)
    log: list[str] = []
    lut_module.measure_thread_count(lut, 2, fit, log=log.append)
    assert lut.noise == {2: 0.02} and lut.op_ms[specs[0].key] == {2: pytest.approx(0.01)}  # the quiet attempt
    assert fit_calls == [2, 2]  # the fit was measured again
    assert lut.overhead[2]["all"].b == pytest.approx(1.2) and lut.overhead[2]["all"].fit_error_pct < 1e-6
    assert sum("measuring again" in line for line in log) == 2 and not any("WARNING" in line for line in log)
    assert lut_module.noisy_threads(lut) == []

    monkeypatch.setattr(lut_module, "time_ops", _fake_timings(0.30, 1.0))  # busy every time
    log.clear()
    lut_module.measure_thread_count(lut, 1, fit, attempts=2, log=log.append)
    assert lut.noise[1] == 0.30 and any("WARNING" in line and "idle machine" in line for line in log)
    assert lut_module.noisy_threads(lut) == [1]


def test_cached_table_is_reused_unless_noisy_or_missing_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tflite_adaspring.profiling import lut as lut_module

    supernet = types.SimpleNamespace(space=SearchSpace("toy", 1, (1,)), backbone=None)
    built: list[tuple[int, ...]] = []

    def build_lut(net: object, threads: tuple[int, ...], **kw: object) -> LatencyLUT:
        built.append(threads)
        table = _lut()
        table.overhead = {t: table.overhead[1] for t in threads}
        table.noise = {t: 0.01 for t in threads}
        return table

    monkeypatch.setattr(lut_module, "build_lut", build_lut)
    monkeypatch.setattr(lut_module, "SubnetPlanner", lambda net: types.SimpleNamespace(space=net.space))
    path = tmp_path / "lut.json"
    lut_module.cached_lut(path, supernet, (1,), log=lambda m: None)
    assert built == [(1,)] and path.exists()
    lut_module.cached_lut(path, supernet, (1,), log=lambda m: None)
    assert built == [(1,)]  # reused
    log: list[str] = []
    lut_module.cached_lut(path, supernet, (1, 2), log=log.append)
    assert built == [(1,), (1, 2)] and "threads [2] missing" in log[0]
    noisy = _lut().to_json()
    noisy["noise"] = {"1": 0.25}
    path.write_text(json.dumps(noisy))
    log.clear()
    lut_module.cached_lut(path, supernet, (1,), log=log.append)
    assert built[-1] == (1,) and len(built) == 3 and "noisy at threads [1]" in log[0]
    assert LatencyLUT.load(path).noise == {1: 0.01}  # replaced on disk
