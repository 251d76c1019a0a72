"""The ``adaspring`` metadata entry: round trip, validation, error cases, buffer deduplication."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import model_factory as mf
import numpy as np
import pytest

from tflite_adaspring import metadata as md
from tflite_adaspring.errors import ModelFormatError, SchemaVersionError


@pytest.fixture(scope="module")
def plain_model() -> bytes:
    return mf.build_model()


@pytest.fixture(scope="module")
def model() -> bytes:
    return mf.build_adaspring_model()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory, model: bytes) -> Path:
    return md.save_model(tmp_path_factory.mktemp("md") / "toy.tflite", model)


def _outputs(model_bytes: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    raw = Interpreter(model_content=model_bytes)
    return {key: raw.get_signature_runner(key)(x=x)["output_0"] for key in raw.get_signature_list()}


def _entries(model_bytes: bytes) -> list[bytes]:
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAs(model_bytes, 0)
    return [m.Metadata(i).Name() for i in range(m.MetadataLength())]


def test_round_trip_bytes_path_and_views(model: bytes, model_path: Path) -> None:
    expected = mf.make_metadata()
    assert md.read_metadata(model) == expected
    assert md.read_metadata(model_path) == expected
    assert md.read_metadata(str(model_path), verify=False) == expected
    assert md.read_metadata(bytearray(model)) == expected
    assert md.read_metadata(memoryview(model)) == expected
    assert md.ModelMetadata.from_json(json.loads(json.dumps(expected.to_json()))) == expected


def test_metadata_accessors(model: bytes) -> None:
    meta = md.read_metadata(model)
    assert meta.keys == mf.config_keys(4)
    assert meta.energy_profiles() == ("rpi4", "phone")
    row = meta.signature("cfg02")
    assert row.config == {"width": 16, "kernel": mf.KERNEL}
    assert row.memory_bytes == row.weight_bytes + row.peak_activation_bytes
    with pytest.raises(KeyError, match="cfg00, cfg01"):
        meta.signature("cfg99")


def test_read_does_not_import_tensorflow(model_path: Path) -> None:
    program = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from tflite_adaspring.metadata import read_metadata
        from tflite_adaspring.runtime import Interpreter
        meta = read_metadata({str(model_path)!r})
        interp = Interpreter(model_path={str(model_path)!r})
        out = interp.get_signature_runner()(x=np.zeros((1, 16, 3), np.float32))
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras", "keras"))
        print(",".join(meta.keys), out["output_0"].shape, heavy)
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "cfg00,cfg01,cfg02,cfg03 (1, 4) []"


@pytest.mark.parametrize("cut", [0, 7, 100, 0.5, 0.9, -64, -9])
def test_truncated_model_is_a_format_error(model: bytes, cut: float) -> None:
    end = int(len(model) * cut) if isinstance(cut, float) else cut
    with pytest.raises(ModelFormatError):
        md.read_metadata(model[:end])


def test_truncated_file_is_a_format_error(model: bytes, tmp_path: Path) -> None:
    path = md.save_model(tmp_path / "cut.tflite", model[: len(model) // 3])
    with pytest.raises(ModelFormatError, match=r"cut\.tflite"):
        md.read_metadata(path)
    with pytest.raises(ModelFormatError):
        md.read_metadata(md.save_model(tmp_path / "empty.tflite", b""))


def test_corrupted_models_are_format_errors(model: bytes) -> None:
    rng = np.random.default_rng(0)
    garbage = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(ModelFormatError, match="TFL3"):
        md.read_metadata(garbage)
    with pytest.raises(ModelFormatError):
        md.read_metadata(garbage[:4] + b"TFL3" + garbage[8:])
    bad_root = b"\xff\xff\xff\x7f" + model[4:]
    with pytest.raises(ModelFormatError):
        md.read_metadata(bad_root)
    with pytest.raises(ModelFormatError):  # even unverified, garbage must not escape as IndexError etc.
        md.read_metadata(bad_root, verify=False)
    with pytest.raises(ModelFormatError):
        md.write_metadata(garbage, mf.make_metadata())


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        md.read_metadata(tmp_path / "nope.tflite")


def test_model_without_metadata(plain_model: bytes) -> None:
    with pytest.raises(md.MissingMetadataError, match="adaspring export") as info:
        md.read_metadata(plain_model)
    assert isinstance(info.value, ModelFormatError)


def test_newer_schema_version(plain_model: bytes) -> None:
    obj = dict(mf.make_metadata().to_json(), schema_version=md.SCHEMA_VERSION + 1, signatures="changed")
    newer = md.write_metadata_entry(plain_model, md.METADATA_NAME, json.dumps(obj).encode())
    with pytest.raises(SchemaVersionError, match="newer"):
        md.read_metadata(newer)
    with pytest.raises(SchemaVersionError):
        md.write_metadata(plain_model, dataclasses.replace(mf.make_metadata(), schema_version=2))


def test_payload_not_json(plain_model: bytes) -> None:
    for payload in (b"\xff\xfe not utf8", b"{not json"):
        broken = md.write_metadata_entry(plain_model, md.METADATA_NAME, payload)
        with pytest.raises(ModelFormatError, match="JSON"):
            md.read_metadata(broken)


def _row_json() -> dict:
    return mf.signature_row("cfg00", 4).to_json()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"accuracy": 1.5}, "signatures[0].accuracy"),
        ({"accuracy": float("nan")}, "signatures[0].accuracy"),
        ({"precision": "fp8"}, "signatures[0].precision"),
        ({"params": -1}, "signatures[0].params"),
        ({"macs": True}, "signatures[0].macs"),
        ({"macs": 1.5}, "signatures[0].macs"),
        ({"latency_threads": 0}, "signatures[0].latency_threads"),
        ({"test_accuracy": "high"}, "signatures[0].test_accuracy"),
        ({"config": [1, 2]}, "signatures[0].config"),
        ({"energy_mj": {"rpi4": {"value": 1.0, "kind": "guessed"}}}, "signatures[0].energy_mj.rpi4.kind"),
        ({"energy_mj": {"rpi4": {"kind": "modeled"}}}, "signatures[0].energy_mj.rpi4.value"),
        ({"latency_model": {"terms": {}}}, "signatures[0].latency_model.predicted_ms"),
    ],
)
def test_bad_signature_field_is_named(change: dict, field: str) -> None:
    obj = mf.make_metadata().to_json()
    obj["signatures"][0] = dict(_row_json(), **change)
    with pytest.raises(ModelFormatError, match=field.replace("[", r"\[").replace("]", r"\]")):
        md.ModelMetadata.from_json(obj)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"storage_mode": "zip"}, "storage_mode"),
        ({"signatures": []}, "signatures"),
        ({"space": {"name": "x"}}, "space.version"),
        ({"input_spec": {"task": "x"}}, "input_spec"),
        ({"schema_version": 0}, "schema_version"),
        ({"task": None}, "task"),
    ],
)
def test_bad_top_level_field_is_named(change: dict, field: str) -> None:
    obj = dict(mf.make_metadata().to_json(), **change)
    with pytest.raises(ModelFormatError, match=field):
        md.ModelMetadata.from_json(obj)


def test_missing_field_and_duplicate_keys_are_named() -> None:
    obj = mf.make_metadata().to_json()
    del obj["signatures"][1]["weight_bytes"]
    with pytest.raises(ModelFormatError, match=r"signatures\[1\]\.weight_bytes is missing"):
        md.ModelMetadata.from_json(obj)
    obj = mf.make_metadata().to_json()
    obj["signatures"][1]["key"] = "cfg00"
    with pytest.raises(ModelFormatError, match="unique"):
        md.ModelMetadata.from_json(obj)
    with pytest.raises(ModelFormatError, match="object"):
        md.ModelMetadata.from_json([1, 2])


def test_write_keeps_outputs_and_other_entries(plain_model: bytes, model: bytes) -> None:
    x = np.random.default_rng(3).normal(size=(1, *mf.INPUT_SHAPE)).astype(np.float32)
    before, after = _outputs(plain_model, x), _outputs(model, x)
    assert before.keys() == after.keys() == set(mf.config_keys(4))
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])
    assert set(_entries(plain_model)) < set(_entries(model))
    assert _entries(model).count(b"adaspring") == 1


def test_write_replaces_the_entry(model: bytes) -> None:
    other = dataclasses.replace(mf.make_metadata(), task="other")
    rewritten = md.write_metadata(model, other)
    assert _entries(rewritten).count(b"adaspring") == 1
    assert md.read_metadata(rewritten).task == "other"
    assert abs(len(rewritten) - len(model)) < 64


def test_written_buffers_are_16_byte_aligned(model: bytes) -> None:
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAs(model, 0)
    starts = []
    for i in range(m.BuffersLength()):
        b = m.Buffers(i)
        if b.DataLength():
            starts.append(b._tab.Vector(b._tab.Offset(4)))
    assert starts and all(s % 16 == 0 for s in starts)


def _unshare_buffers(model_bytes: bytes) -> bytes:
    """Gives every constant tensor its own copy of its buffer (what exporting slices separately yields)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model_bytes, 0))
    for sg in m.subgraphs:
        for t in sg.tensors:
            if t.buffer and m.buffers[t.buffer].data is not None:
                m.buffers.append(schema.BufferT(data=np.array(m.buffers[t.buffer].data)))
                t.buffer = len(m.buffers) - 1
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_deduplicate_shares_identical_buffers_and_keeps_outputs(model: bytes) -> None:
    unshared = _unshare_buffers(model)
    deduped = md.deduplicate_buffers(unshared)
    # the four configurations share the dense bias and two small index constants: 9 copies go away
    assert len(deduped) <= len(unshared) - 9 * 8
    x = np.random.default_rng(4).normal(size=(1, *mf.INPUT_SHAPE)).astype(np.float32)
    before, middle, after = _outputs(model, x), _outputs(unshared, x), _outputs(deduped, x)
    for key in before:
        np.testing.assert_array_equal(before[key], middle[key])
        np.testing.assert_array_equal(before[key], after[key])
    assert md.read_metadata(deduped) == md.read_metadata(model)
    assert len(md.deduplicate_buffers(deduped)) == len(deduped)


def test_deduplicate_identical_configurations() -> None:
    twin = _unshare_buffers(mf.build_model(widths=(32, 32)))
    deduped = md.deduplicate_buffers(twin)
    weight_bytes = 4 * (mf.KERNEL * mf.INPUT_SHAPE[1] * 32 + 32 + 32 * mf.NUM_CLASSES)
    assert len(twin) - len(deduped) >= weight_bytes
    x = np.ones((1, *mf.INPUT_SHAPE), np.float32)
    out = _outputs(deduped, x)
    np.testing.assert_array_equal(out["cfg00"], out["cfg01"])
    np.testing.assert_allclose(out["cfg00"], mf.numpy_reference(x, 32, max_width=32), rtol=1e-5, atol=1e-5)


def test_save_model_is_atomic_and_complete(model: bytes, tmp_path: Path) -> None:
    path = md.save_model(tmp_path / "sub" / "m.tflite", model)
    assert path.read_bytes() == model
    assert [p.name for p in path.parent.iterdir()] == ["m.tflite"]
