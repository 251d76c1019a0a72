"""The drop-in adaptive Interpreter: LiteRT compatibility, switching, adaptation, typed errors."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import model_factory as mf
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter

from tflite_adaspring.context.snapshot import ContextSnapshot, Requirements
from tflite_adaspring.errors import ConfigError, DataValidationError, ModelFormatError
from tflite_adaspring.metadata import MissingMetadataError, save_model, write_metadata
from tflite_adaspring.runtime import Interpreter, Policy
from tflite_adaspring.runtime.interpreter import InputMismatchError

KEYS = mf.config_keys(len(mf.DEFAULT_WIDTHS))


@pytest.fixture(scope="module")
def model() -> bytes:
    return mf.build_adaspring_model()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory, model: bytes) -> Path:
    return save_model(tmp_path_factory.mktemp("rt") / "toy.tflite", model)


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(1, *mf.INPUT_SHAPE)).astype(np.float32)


@pytest.fixture(scope="module")
def reference(model: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    raw = LiteRTInterpreter(model_content=model)
    out = {key: raw.get_signature_runner(key)(x=x)["output_0"] for key in KEYS}
    assert len({o.tobytes() for o in out.values()}) == len(KEYS)  # configurations are distinguishable
    return out


# ---------------------------------------------------------------------------------------------
# drop-in compatibility


def _plain_program(interpreter_class: type, path: Path, x: np.ndarray) -> dict:
    """A program written for ai_edge_litert.interpreter.Interpreter (only the class is swapped)."""
    interpreter = interpreter_class(model_path=str(path))
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    y_plain = interpreter.get_tensor(out["index"])
    interpreter.tensor(inp["index"])()[...] = 2 * x
    interpreter.invoke()
    y_view = interpreter.tensor(out["index"])().copy()
    y_runner = interpreter.get_signature_runner("cfg00")(x=x)["output_0"]
    return {
        "plain": y_plain,
        "view": y_view,
        "runner": y_runner,
        "input": {k: v for k, v in inp.items() if k != "quantization_parameters"},
        "output": {k: v for k, v in out.items() if k != "quantization_parameters"},
        "signatures": interpreter.get_signature_list(),
    }


def _same(a: object, b: object) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype
    return a == b


def test_drop_in_plain_program(model_path: Path, x: np.ndarray) -> None:
    raw = _plain_program(LiteRTInterpreter, model_path, x)
    ours = _plain_program(Interpreter, model_path, x)
    for field in raw:
        assert _same(raw[field], ours[field]), field


def test_drop_in_default_runner_single_signature(x: np.ndarray) -> None:
    single = mf.build_adaspring_model(widths=(8,))
    raw = LiteRTInterpreter(model_content=single).get_signature_runner()(x=x)
    ours = Interpreter(model_content=single).get_signature_runner()(x=x)
    assert raw.keys() == ours.keys() == {"output_0"}
    np.testing.assert_array_equal(raw["output_0"], ours["output_0"])


def test_runner_details_match_litert(model: bytes) -> None:
    raw = LiteRTInterpreter(model_content=model).get_signature_runner("cfg02")
    ours = Interpreter(model_content=model).get_signature_runner("cfg02")
    for a, b in (
        (raw.get_input_details(), ours.get_input_details()),
        (raw.get_output_details(), ours.get_output_details()),
    ):
        assert a.keys() == b.keys()
        for name in a:
            assert _same(a[name]["shape"], b[name]["shape"]) and a[name]["index"] == b[name]["index"]
            assert a[name]["name"] == b[name]["name"] and a[name]["dtype"] == b[name]["dtype"]


# ---------------------------------------------------------------------------------------------
# switching


def test_switching_moves_every_api(model: bytes, x: np.ndarray, reference: dict) -> None:
    interp = Interpreter(model_content=model)
    assert interp.active == "cfg00" and interp.num_subgraphs() == len(KEYS)
    follow = interp.get_signature_runner()
    fixed = interp.get_signature_runner("cfg01")
    port_in, port_out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    for key in (*KEYS, "cfg01", "cfg03", "cfg00"):
        interp.set_active(key)
        assert interp.active == key and interp.active_config.key == key and follow.key == key
        np.testing.assert_array_equal(follow(x=x)["output_0"], reference[key])
        np.testing.assert_array_equal(fixed(x=x)["output_0"], reference["cfg01"])
        interp.set_tensor(port_in, x)
        interp.invoke()
        np.testing.assert_array_equal(interp.get_tensor(port_out), reference[key])
        assert interp.get_input_details()[0]["index"] == port_in
        assert interp.get_output_details()[0]["name"] == follow.get_output_details()["output_0"]["name"]


def test_inputs_set_before_a_switch_are_carried(model: bytes, x: np.ndarray, reference: dict) -> None:
    interp = Interpreter(model_content=model)
    port_in, port_out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    interp.set_tensor(port_in, x)
    interp.set_active("cfg02")  # e.g. by the context thread between set_tensor and invoke
    interp.invoke()
    interp.set_active("cfg03")  # ... and between invoke and get_tensor
    np.testing.assert_array_equal(interp.get_tensor(port_out), reference["cfg02"])
    np.testing.assert_array_equal(interp.get_tensor(port_in), x)


def test_history_and_callbacks(model: bytes) -> None:
    interp = Interpreter(model_content=model, history_size=3)
    seen = []
    interp.add_switch_callback(seen.append)
    interp.set_active("cfg01")
    interp.set_active("cfg01")  # no switch, no callback
    interp.set_active("cfg02")
    assert [(d.previous, d.key) for d in seen] == [("cfg00", "cfg01"), ("cfg01", "cfg02")]
    assert all(d.reason == "manual" and d.feasible == -1 for d in seen)
    interp.remove_switch_callback(seen.append)
    interp.set_active("cfg03")
    assert len(seen) == 2
    assert [d.key for d in interp.history] == ["cfg01", "cfg02", "cfg03"]  # bounded
    assert [c.key for c in interp.configs] == list(KEYS)


def test_initial_key(model: bytes) -> None:
    assert Interpreter(model_content=model, initial_key="cfg02").active == "cfg02"
    with pytest.raises(ConfigError, match="cfg00, cfg01"):
        Interpreter(model_content=model, initial_key="cfg09")


# ---------------------------------------------------------------------------------------------
# adaptation


class _Monitor:
    def __init__(self, snapshot: ContextSnapshot):
        self.value = snapshot

    def snapshot(self) -> ContextSnapshot:
        return self.value


def test_adapt_with_each_kind_of_context(model: bytes) -> None:
    fast = Requirements(latency_budget_ms=0.010, energy_mode="performance")  # cfg00 (6.4 us), cfg01 (8.8 us)
    slow_ok = Requirements(energy_mode="performance")
    policy = Policy(dwell_s=0.0)

    interp = Interpreter(model_content=model, policy=policy, context=slow_ok)
    assert interp.adapt().key == "cfg03"
    assert interp.adapt(fast).key == "cfg01"
    assert interp.adapt(ContextSnapshot(timestamp=1e9, requirements=slow_ok)).key == "cfg03"
    assert interp.adapt(lambda: ContextSnapshot(timestamp=2e9, requirements=fast)).key == "cfg01"
    monitor = _Monitor(ContextSnapshot(timestamp=3e9, requirements=slow_ok))
    assert interp.adapt(monitor).key == "cfg03"
    assert Interpreter(model_content=model, context=monitor).adapt().key == "cfg03"
    with pytest.raises(DataValidationError, match="ContextSnapshot"):
        interp.adapt(lambda: "not a snapshot")
    decision = interp.history[-1]
    assert decision.key == interp.active == "cfg03" and decision.feasible == 4


def test_adapt_switch_calls_callbacks_and_reports_infeasible(model: bytes) -> None:
    interp = Interpreter(model_content=model, policy=Policy(dwell_s=0.0))
    seen = []
    interp.add_switch_callback(seen.append)
    decision = interp.adapt(Requirements(latency_budget_ms=0.001, min_accuracy=0.5))
    assert decision.feasible == 0 and decision.key == "cfg00" and not decision.switched
    assert "even cfg00" in decision.reason
    decision = interp.adapt(Requirements(min_accuracy=0.89))
    assert decision.switched and decision.key == "cfg03" and seen == [decision]


def test_observed_latency_feeds_the_search(model: bytes, x: np.ndarray) -> None:
    interp = Interpreter(model_content=model)
    runner = interp.get_signature_runner()
    assert np.isnan(interp.state.latency_ratio).all()
    for _ in range(20):
        runner(x=x)
    interp.invoke()
    interp.adapt(ContextSnapshot(timestamp=5.0, cpu_contention=2.0))
    ratio = interp.state.latency_ratio
    assert np.isfinite(ratio[0]) and ratio[0] > 0
    assert np.isnan(ratio[1:]).all()
    assert interp.state.device_ratio == pytest.approx(ratio[0])
    before = ratio[0]
    interp.adapt(ContextSnapshot(timestamp=6.0))  # nothing new observed: the EMA does not move
    assert interp.state.latency_ratio[0] == before


def test_recorded_latency_is_folded_like_an_invoke(model: bytes) -> None:
    interp = Interpreter(model_content=model)
    interp.adapt(ContextSnapshot(timestamp=1.0, cpu_contention=2.0))
    key = interp.active
    row = [s.key for s in interp.configs].index(key)
    exported = interp.configs[row].latency_ms
    interp.record_latency(3.0 * exported)  # 3x the export's time under a 2x slowdown: the device is 1.5x slower
    assert interp.state.latency_ratio[row] == pytest.approx(1.5) and interp.state.device_ratio == pytest.approx(1.5)
    other = interp.configs[(row + 1) % len(interp.configs)]
    interp.record_latency(2.0 * other.latency_ms, count=4, key=other.key)  # first sample of a row: taken as is
    assert interp.state.latency_ratio[(row + 1) % len(interp.configs)] == pytest.approx(1.0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(DataValidationError, match="latency_ms"):
            interp.record_latency(bad)
    with pytest.raises(DataValidationError, match="count"):
        interp.record_latency(1.0, count=0)
    with pytest.raises(ConfigError, match="unknown configuration"):
        interp.record_latency(1.0, key="cfg99")


# ---------------------------------------------------------------------------------------------
# shapes, resizing, views


def test_dynamic_batch_runner_resizes(x: np.ndarray) -> None:
    dynamic = mf.build_adaspring_model(batch=None)
    interp = Interpreter(model_content=dynamic)
    batch = np.concatenate([x, 2 * x, -x])
    runner = interp.get_signature_runner()
    for key, width in zip(KEYS, mf.DEFAULT_WIDTHS):
        interp.set_active(key)
        out = runner(x=batch)["output_0"]
        assert out.shape == (3, mf.NUM_CLASSES)
        np.testing.assert_allclose(out, mf.numpy_reference(batch, width), rtol=1e-4, atol=1e-4)
    interp.resize_tensor_input(interp.get_input_details()[0]["index"], [2, *mf.INPUT_SHAPE])
    interp.allocate_tensors()
    interp.set_active("cfg01")
    assert tuple(interp.get_input_details()[0]["shape"]) == (2, *mf.INPUT_SHAPE)
    interp.set_tensor(interp.get_input_details()[0]["index"], batch[:2])
    interp.invoke()
    out = interp.get_tensor(interp.get_output_details()[0]["index"])
    np.testing.assert_allclose(out, mf.numpy_reference(batch[:2], 8), rtol=1e-4, atol=1e-4)


def test_held_view_blocks_invoke_like_litert(model: bytes, x: np.ndarray) -> None:
    interp = Interpreter(model_content=model)
    view = interp.tensor(interp.get_input_details()[0]["index"])()
    with pytest.raises(RuntimeError, match="reference"):
        interp.invoke()
    del view
    interp.invoke()


# ---------------------------------------------------------------------------------------------
# typed errors


def test_wrong_shape_and_dtype(model: bytes, x: np.ndarray) -> None:
    interp = Interpreter(model_content=model)
    index = interp.get_input_details()[0]["index"]
    runner = interp.get_signature_runner()
    with pytest.raises(InputMismatchError, match=r"expected shape \(1, 16, 3\).*got \(16, 3\)"):
        interp.set_tensor(index, x[0])
    with pytest.raises(InputMismatchError, match="expected dtype float32, got float64"):
        interp.set_tensor(index, x.astype(np.float64))
    with pytest.raises(InputMismatchError, match=r"expected shape \(1, 16, 3\).*got \(3, 16, 3\)"):
        runner(x=np.concatenate([x, x, x]))  # fixed batch of 1 in this model
    with pytest.raises(InputMismatchError, match="has no input 'y'"):
        runner(y=x)
    with pytest.raises(InputMismatchError, match=r"takes inputs \['x'\]"):
        runner()
    with pytest.raises(ValueError):  # the typed errors are ValueErrors, as LiteRT's are
        interp.get_signature_runner("cfg00")(x=x.astype(np.int32))
    with pytest.raises(DataValidationError, match="not a model input"):
        interp.set_tensor(interp.get_output_details()[0]["index"], x)
    interp.set_tensor(index, x.tolist())  # lists convert like numpy arrays of the input dtype


def test_unknown_keys(model: bytes) -> None:
    interp = Interpreter(model_content=model)
    for call in (lambda: interp.get_signature_runner("serving_default"), lambda: interp.set_active("cfg9")):
        with pytest.raises(ConfigError, match="cfg00, cfg01, cfg02, cfg03") as info:
            call()
        assert isinstance(info.value, ValueError)


def test_bad_models(model: bytes, tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError):
        Interpreter(model_content=model[: len(model) // 2])
    with pytest.raises(ModelFormatError):
        Interpreter(model_path=save_model(tmp_path / "junk.tflite", b"\x00" * 64))
    with pytest.raises(FileNotFoundError):
        Interpreter(model_path=tmp_path / "missing.tflite")
    with pytest.raises(MissingMetadataError, match="adaspring export"):
        Interpreter(model_content=mf.build_model())
    with pytest.raises(ValueError, match="exactly one"):
        Interpreter()


def test_metadata_that_does_not_match_the_model() -> None:
    plain = mf.build_model()
    shared = write_metadata(plain, mf.make_metadata(storage_mode="shared"))
    with pytest.raises(ModelFormatError, match="storage_mode 'shared' is not supported"):
        Interpreter(model_content=shared)
    evolve = write_metadata(plain, mf.make_metadata(storage_mode="evolve"))
    with pytest.raises(ModelFormatError, match="no 'adaspring_evolve' entry"):
        Interpreter(model_content=evolve)
    meta = mf.make_metadata()
    renamed = dataclasses.replace(
        meta, signatures=(*meta.signatures[:3], dataclasses.replace(meta.signatures[3], key="cfg07"))
    )
    with pytest.raises(ModelFormatError, match="'cfg07'"):
        Interpreter(model_content=write_metadata(plain, renamed))


def test_falls_back_to_tf_lite_without_ai_edge_litert(model_path: Path, x: np.ndarray, reference: dict) -> None:
    program = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["ai_edge_litert"] = None  # a machine without ai-edge-litert
        import numpy as np
        from tflite_adaspring.runtime import Interpreter
        from tflite_adaspring.runtime.backend import backend
        interp = Interpreter(model_path={str(model_path)!r}, initial_key="cfg02")
        y = interp.get_signature_runner()(x=np.array({x.tolist()!r}, np.float32))["output_0"]
        print(json.dumps([backend().name, interp.active, y.tolist()]))
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    name, active, y = json.loads(done.stdout.strip().splitlines()[-1])
    assert (name, active) == ("tensorflow", "cfg02")
    np.testing.assert_allclose(np.array(y, np.float32), reference["cfg02"], rtol=1e-5, atol=1e-6)
