"""Shared storage mode: every configuration of an evolve file computed by the delegate from one copy of
the weights; equivalence with the packed model, no weight copies, and warned fallbacks to evolve mode."""

from __future__ import annotations

import warnings

import evolve_factory as ef
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter
from ai_edge_litert.interpreter import load_delegate
from delegate_helpers import delegate_library

from tflite_adaspring import delegates
from tflite_adaspring.errors import ConfigError
from tflite_adaspring.runtime import Interpreter
from tflite_adaspring.runtime import shared as shared_module

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def models() -> ef.EvolveModels:
    delegate_library()  # built from the current sources
    return ef.build()


@pytest.fixture(scope="module")
def reference(models: ef.EvolveModels) -> dict[str, np.ndarray]:
    packed = LiteRTInterpreter(model_content=models.packed)
    return {
        key: np.concatenate([packed.get_signature_runner(key)(input=x[None])["probabilities"] for x in models.x])
        for key in packed.get_signature_list()
    }


def _shared(models: ef.EvolveModels, **kwargs) -> Interpreter:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning allowed here
        return Interpreter(model_content=models.evolve, storage="shared", **kwargs)


def _outputs(interp: Interpreter, key: str, x: np.ndarray) -> np.ndarray:
    runner = interp.get_signature_runner(key)
    return np.concatenate([runner(input=row[None])["probabilities"] for row in x])


def test_every_signature_matches_the_packed_model(models, reference):
    interp = _shared(models)
    assert interp.storage_mode == "shared"
    for key, expected in reference.items():
        np.testing.assert_allclose(_outputs(interp, key, models.x), expected, atol=TOLERANCE, rtol=TOLERANCE,
                                   err_msg=key)  # fmt: skip


def test_switching_copies_no_weights(models, reference):
    interp = _shared(models, num_threads=2)
    storage = interp._storage
    stats = storage.delegate_stats()
    assert len(stats) == len(interp.configs) - 1  # every configuration but the file's own primary
    assert all(s.claimed_shared == s.shared_views > 0 and s.abi_refusals == 0 for s in stats)
    assert len({s.weight_source_mappings for s in stats}) == 1 and stats[0].weight_source_mappings >= 1
    assert len({s.shared_weight_bytes for s in stats}) == 1  # one data section behind every configuration
    # The graphs' own weight tensors are empty placeholders: the outputs can only come from the views.
    slot = next(s for s in storage.slots() if s is not storage.primary())
    placeholders = [d for d in slot.interpreter.get_tensor_details() if len(d["shape"]) == 4 and d["index"] not in
                    {p.index for p in (*slot.input_list, *slot.output_list)}]  # fmt: skip
    sampled = [slot.interpreter.get_tensor(d["index"]) for d in placeholders[:3]]
    assert sampled and all(not np.any(t) for t in sampled)
    runner = interp.get_signature_runner()
    for _ in range(3):
        for key, expected in reference.items():
            interp.set_active(key)
            assert interp.active == key  # a switch is immediate: every configuration is built
            out = runner(input=models.x[:1])["probabilities"]
            np.testing.assert_allclose(out, expected[:1], atol=TOLERANCE, rtol=TOLERANCE)
    after = storage.delegate_stats()
    assert [s.weight_source_mappings for s in after] == [s.weight_source_mappings for s in stats]
    assert all(a.claimed_shared == s.claimed_shared for a, s in zip(after, stats))  # nothing rebuilt


def _assert_warned_fallback(models, reference, fragment: str) -> None:
    with pytest.warns(RuntimeWarning, match="shared storage unavailable, running in evolve mode") as record:
        interp = Interpreter(model_content=models.evolve, storage="shared")
    assert fragment in str(record[0].message)
    assert interp.storage_mode == "evolve"
    key = interp.metadata.keys[-1]
    np.testing.assert_allclose(_outputs(interp, key, models.x[:1]), reference[key][:1], atol=TOLERANCE)
    interp.close()


def test_missing_library_falls_back_to_evolve_with_a_warning(models, reference, monkeypatch, tmp_path):
    monkeypatch.setenv(delegates.LIBRARY_ENV, str(tmp_path / "missing.so"))
    _assert_warned_fallback(models, reference, "does not name a file")


def test_abi_mismatch_falls_back_to_evolve_with_a_warning(models, reference, monkeypatch):
    library = delegate_library()

    def load_with_mismatch(num_threads, weight_source, weight_config, library_path):
        options = {"weight_source": str(weight_source), "weight_config": weight_config}
        return load_delegate(str(library), dict(options, debug_simulate_abi_mismatch="tensor"))

    monkeypatch.setattr(shared_module.delegates, "load", load_with_mismatch)
    _assert_warned_fallback(models, reference, "ABI self-check failed")


def test_corrupted_weight_source_falls_back_to_evolve_with_a_warning(models, reference, monkeypatch):
    monkeypatch.setattr(shared_module, "pack_weight_source", lambda data, configs: b"ADASWSRC" + b"\xff" * 64)
    _assert_warned_fallback(models, reference, "format version")


def test_storage_must_fit_the_file(models):
    with pytest.raises(ConfigError, match="storage='shared' does not apply to a packed model"):
        Interpreter(model_content=models.packed, storage="shared")
    with pytest.raises(ConfigError, match="storage='mirrored' does not apply"):
        Interpreter(model_content=models.evolve, storage="mirrored")
    assert Interpreter(model_content=models.evolve, storage="evolve").storage_mode == "evolve"


def test_bench_shared_measures_switches_invokes_and_sizes(models, tmp_path):
    from tflite_adaspring.bench.runtime import merge_shared
    from tflite_adaspring.runtime.bench import bench_shared

    result = bench_shared(models.packed, models.evolve, switches=300, n=20, rounds=2)
    assert len(result["configs"]) == 3 and 0 < result["switch_p50_ms"] <= result["switch_p99_ms"] < 5.0
    assert sum(not c["on_delegate"] for c in result["configs"].values()) == 1  # only the primary
    assert result["full"]["macs"] >= result["smallest"]["macs"] and result["full"]["ratio"] > 0
    assert result["max_abs_diff"] < TOLERANCE and result["max_delegate_ratio"] > 0
    assert result["file_bytes"] == len(models.evolve) and result["backbone_weight_bytes"] > 0
    assert result["file_ratio"] == pytest.approx(result["file_bytes"] / result["backbone_weight_bytes"])
    previous = {"benchmark": "runtime", "task": "t", "packed": {"kept": 1}, "targets": {"x": {"met": True}}}
    merged = merge_shared(previous, result, "t")
    assert merged["packed"] == {"kept": 1} and merged["shared"] is result and "x" in merged["targets"]
    assert merged["targets"]["shared_switch_p99_ms"]["limit"] == 0.05
