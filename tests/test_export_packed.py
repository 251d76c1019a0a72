"""Packed export of a tiny trained run: order, fidelity to tf_keras, fp16/int8 twins, metadata, typed errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import export_factory as ef
import numpy as np
import pytest

from tflite_adaspring import metadata as md
from tflite_adaspring.errors import ModelFormatError, SchemaVersionError
from tflite_adaspring.export.merge import merge_models, rename_signatures
from tflite_adaspring.export.packed import signature_predictions
from tflite_adaspring.profiling.tflite_ops import signature_ops


@pytest.fixture(scope="module")
def tiny() -> ef.TinyExport:
    return ef.build()


@pytest.fixture(scope="module")
def path(tiny: ef.TinyExport, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return md.save_model(tmp_path_factory.mktemp("export") / "tiny.tflite", tiny.export.model_bytes)


def _all_examples(tiny: ef.TinyExport) -> tuple[np.ndarray, np.ndarray]:
    splits = (tiny.dataset.train, tiny.dataset.val, tiny.dataset.test)
    return np.concatenate([s[0] for s in splits]).astype(np.float32), np.concatenate([s[1] for s in splits])


def test_keys_are_ordered_by_measured_latency_and_carry_their_precision(tiny: ef.TinyExport) -> None:
    meta = tiny.export.metadata
    assert meta.keys == tuple(f"cfg{i:02d}" for i in range(len(tiny.configs)))
    assert [s.latency_ms for s in meta.signatures] == sorted(s.latency_ms for s in meta.signatures)
    assert sorted(s.config_id for s in meta.signatures) == sorted(c.id for c in tiny.configs)
    for row in meta.signatures:
        assert row.precision == row.config_id.rsplit("-", 1)[1]
        assert set(row.energy_mj) >= {"x86_server_core", "raspberry_pi4", "android_mid"}
        assert all(e.kind == "modeled" for e in row.energy_mj.values())
        assert 0.0 <= row.accuracy <= 1.0 and row.latency_threads == 1
    by_id = {s.config_id: s for s in meta.signatures}
    for precision, structure in ef.TWINS.items():
        assert by_id[f"{structure}-{precision}"].weight_bytes < by_id[f"{structure}-fp32"].weight_bytes
    assert meta.signatures[-1].latency_ms > meta.signatures[0].latency_ms


def test_fp32_signatures_match_their_materialised_tf_keras_subnet(tiny: ef.TinyExport) -> None:
    import tensorflow as tf

    x = tiny.dataset.test[0][:16].astype(np.float32)
    fp32 = [(s.key, s.config_id) for s in tiny.export.metadata.signatures if s.precision == "fp32"]
    assert len(fp32) == 3
    for key, config_id in fp32:
        config = tiny.export.configs[key]
        assert config.id == config_id
        expected = tf.nn.softmax(tiny.supernet.materialize(config)(x, training=False)).numpy()
        got = signature_predictions(tiny.export.model_bytes, key, x)
        assert np.abs(got - expected).max() <= 1e-4, key


def test_compressed_signatures_lose_at_most_1p5_points_against_their_fp32_twin(tiny: ef.TinyExport) -> None:
    x, y = _all_examples(tiny)
    keys = {s.config_id: s.key for s in tiny.export.metadata.signatures}
    model = tiny.export.model_bytes
    for precision, structure in ef.TWINS.items():
        twin = signature_predictions(model, keys[f"{structure}-fp32"], x)
        compressed = signature_predictions(model, keys[f"{structure}-{precision}"], x)
        loss = np.mean(twin.argmax(-1) == y) - np.mean(compressed.argmax(-1) == y)
        assert loss <= 0.015, (precision, loss)
        assert np.abs(compressed - twin).max() < (0.01 if precision == "fp16" else 0.25)


def test_each_signature_really_has_its_precision(tiny: ef.TinyExport) -> None:
    model = md.unpack_model(tiny.export.model_bytes)
    graph = {sd.signatureKey.decode(): model.subgraphs[sd.subgraphIndex] for sd in model.signatureDefs}
    for row in tiny.export.metadata.signatures:
        types = {t.type for t in graph[row.key].tensors}
        assert (1 in types) == (row.precision == "fp16"), row.key  # FLOAT16 weights
        ops = signature_ops(tiny.export.model_bytes, row.key)
        assert all(op.dtype == ("int8" if row.precision == "int8" else "float32") for op in ops), row.key


def test_identical_buffers_are_shared(tiny: ef.TinyExport) -> None:
    assert tiny.export.size_after_dedup <= tiny.export.size_before_dedup
    model = md.unpack_model(tiny.export.model_bytes)
    referenced = [t.buffer for g in model.subgraphs for t in g.tensors if t.buffer]
    payloads = [np.asarray(model.buffers[b].data, np.uint8).tobytes() for b in set(referenced)]
    assert len(payloads) == len(set(payloads))  # no two distinct buffers hold the same bytes
    assert len(referenced) > len(set(referenced))  # some tensors share a buffer


def test_metadata_round_trips_in_a_process_without_tensorflow(tiny: ef.TinyExport, path: Path) -> None:
    program = textwrap.dedent(
        f"""
        import importlib.abc, json, sys
        class NoTensorFlow(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "tf_keras", "keras"):
                    raise ImportError("TensorFlow is not installed here: " + name)
                return None
        sys.meta_path.insert(0, NoTensorFlow())
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter
        from tflite_adaspring.metadata import read_metadata
        meta = read_metadata({str(path)!r})
        interpreter = Interpreter(model_path={str(path)!r})
        for key in meta.keys:
            out = interpreter.get_signature_runner(key)(input=np.zeros((1, 100, 6), np.float32))
            assert abs(float(out["probabilities"].sum()) - 1.0) < 0.05, key  # int8: steps of 1/256
        print(json.dumps(meta.to_json()))
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert md.ModelMetadata.from_json(json.loads(done.stdout.splitlines()[-1])) == tiny.export.metadata


def test_broken_exports_raise_typed_errors(tiny: ef.TinyExport, path: Path, tmp_path: Path) -> None:
    model = tiny.export.model_bytes
    truncated = md.save_model(tmp_path / "truncated.tflite", model[: len(model) // 2])
    with pytest.raises(ModelFormatError, match="truncated"):
        md.read_metadata(truncated)
    corrupted = bytearray(model)
    corrupted[8:64] = bytes(56)  # zero the root table's vtable region
    with pytest.raises(ModelFormatError):
        md.read_metadata(bytes(corrupted))
    stripped = md.unpack_model(model)
    stripped.metadata = [m for m in stripped.metadata if m.name not in (b"adaspring", "adaspring")]
    with pytest.raises(md.MissingMetadataError, match="adaspring export"):
        md.read_metadata(md.pack_model(stripped))
    newer = dict(tiny.export.metadata.to_json(), schema_version=md.SCHEMA_VERSION + 1)
    with pytest.raises(SchemaVersionError, match="newer"):
        md.read_metadata(md.write_metadata_entry(model, md.METADATA_NAME, json.dumps(newer).encode()))
    assert md.read_metadata(path) == tiny.export.metadata  # the saved file itself is intact
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # atomic write left no temp file


def test_merge_and_rename_reject_inconsistent_requests(tiny: ef.TinyExport) -> None:
    model = tiny.export.model_bytes
    with pytest.raises(ModelFormatError, match="more than one model"):
        merge_models([model, model])
    with pytest.raises(ModelFormatError, match="unknown"):
        rename_signatures(model, {"nope": "x"})
    with pytest.raises(ModelFormatError, match="duplicate"):
        rename_signatures(model, {"cfg00": "cfg01"})
    with pytest.raises(ModelFormatError, match="permutation"):
        rename_signatures(model, {}, ["cfg00"])
    swapped = rename_signatures(model, {"cfg00": "fast", "cfg01": "cfg00"}, None)
    x = tiny.dataset.test[0][:2].astype(np.float32)
    np.testing.assert_array_equal(signature_predictions(swapped, "fast", x), signature_predictions(model, "cfg00", x))
