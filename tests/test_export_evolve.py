"""Evolve export: every derived weight equals the converter's own constant; the file runs like the packed one."""

from __future__ import annotations

import evolve_factory as ef
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter

from tflite_adaspring.errors import ModelFormatError
from tflite_adaspring.metadata import _schema, _unpack, read_metadata
from tflite_adaspring.runtime import Interpreter
from tflite_adaspring.runtime.evolve import read_evolve_container
from tflite_adaspring.runtime.evolve_store import WeightDeriver, assemble

SVD_KINDS = ("svd_first", "svd_second", "svd_product")


@pytest.fixture(scope="module")
def models() -> ef.EvolveModels:
    return ef.build()


def _float_constants(model, key: str) -> dict[int, np.ndarray]:
    """Float32 constants of one signature's subgraph: tensor index -> array."""
    graph = next(s.subgraphIndex for s in model.signatureDefs if s.signatureKey.decode() == key)
    out = {}
    for i, t in enumerate(model.subgraphs[graph].tensors):
        data = model.buffers[t.buffer].data
        if t.type == 0 and data is not None and len(data):
            out[i] = np.frombuffer(np.asarray(data, np.uint8).tobytes(), np.float32).reshape(tuple(t.shape))
    return out


def _stripped_tensors(skeleton) -> dict[int, object]:
    """Tensor index -> StrippedBuffer, read from the skeleton's own flatbuffer (buffers with an offset)."""
    model = _schema().Model.GetRootAs(skeleton.flatbuffer, 0)
    graph = model.Subgraphs(0)
    by_offset = {b.offset: b for b in skeleton.buffers}
    out = {}
    for i in range(graph.TensorsLength()):
        offset = model.Buffers(graph.Tensors(i).Buffer()).Offset()
        if offset > 1:
            out[i] = by_offset[offset]
    return out


def test_every_derived_buffer_equals_the_converters_constant(models: ef.EvolveModels) -> None:
    packed = _unpack(models.packed)
    container = read_evolve_container(models.evolve)
    deriver = WeightDeriver(container.tensors)
    keys = read_metadata(models.packed).keys
    assert sorted(container.skeletons) == sorted(keys[1:])  # the primary runs from the file itself
    kinds = set()
    for key, skeleton in container.skeletons.items():
        constants = _float_constants(packed, key)
        stripped = _stripped_tensors(skeleton)
        assert set(stripped) == set(constants), key  # every float constant is derived, nothing else
        for index, buffer in stripped.items():
            derived = deriver.derive(buffer.recipe)
            tolerance = 1e-4 if buffer.recipe["kind"] in SVD_KINDS else 1e-5
            assert derived.shape == constants[index].shape, (key, index)
            diff = float(np.max(np.abs(derived - constants[index]), initial=0.0))
            assert diff <= tolerance, (key, index, buffer.recipe["kind"], diff)
            kinds.add(buffer.recipe["kind"])
        # the assembled model holds exactly the derived bytes at every stripped tensor
        assembled = _float_constants(_unpack(assemble(skeleton, deriver)), key)
        for index, buffer in stripped.items():
            np.testing.assert_array_equal(assembled[index], deriver.derive(buffer.recipe))
    assert {"conv", "bias", "depthwise", "bn_scale", "bn_shift", "svd_first", "svd_second", "svd_product"} <= kinds
    assert max(v for k, v in models.report["max_abs_diff"].items() if k not in SVD_KINDS) <= 1e-5
    assert max(models.report["max_abs_diff"][k] for k in SVD_KINDS) <= 1e-4


def test_the_file_runs_its_primary_in_plain_litert(models: ef.EvolveModels) -> None:
    meta = read_metadata(models.evolve)
    assert meta.storage_mode == "evolve" and meta.keys == read_metadata(models.packed).keys
    plain = LiteRTInterpreter(model_content=models.evolve)
    assert list(plain.get_signature_list()) == [meta.keys[0]]
    x = models.x[:1]
    ours = plain.get_signature_runner(meta.keys[0])(input=x)["probabilities"]
    reference = LiteRTInterpreter(model_content=models.packed).get_signature_runner(meta.keys[0])(input=x)
    np.testing.assert_array_equal(ours, reference["probabilities"])


def test_every_configuration_computes_what_the_packed_model_computes(models: ef.EvolveModels) -> None:
    evolve = Interpreter(model_content=models.evolve, cache_size=1)
    packed = LiteRTInterpreter(model_content=models.packed)
    runner = evolve.get_signature_runner()
    for key in evolve.metadata.keys:
        evolve.set_active(key)
        assert evolve.wait_until_active(timeout=30)
        assert evolve.active == key
        for x in models.x:
            got = runner(input=x[None])["probabilities"]
            want = packed.get_signature_runner(key)(input=x[None])["probabilities"]
            np.testing.assert_allclose(got, want, atol=1e-5)
    evolve.close()


def test_tensors_are_stored_once_and_only_the_prefixes_used(models: ef.EvolveModels) -> None:
    container = read_evolve_container(models.evolve)
    names = set(container.tensors)
    # s50.d25/f75-r25 and d100.f50/s100-r100 are skeletons; f25/d50-r50 is the primary (weights in the file)
    assert "stage0.block0.std.conv_a.kernel" in names and "stage0.block0.fire.squeeze.kernel" not in names
    assert container.tensors["stage0.block0.std.conv_a.kernel"].shape[-1] == 4  # width 50 % of 8
    assert container.tensors["stage0.block0.dws.expand.kernel"].shape[-1] == 16  # the largest width used: 100 %
    assert container.tensors["head.kernel"].shape == (16, 16)  # SVD needs the whole matrix
    align = container.tensors["head.kernel.align.r4"]  # the factorised head (rank 4) is aligned, orthogonally
    np.testing.assert_allclose(align @ align.T, np.eye(4), atol=1e-5)
    assert models.report["underivable"] == []
    stats = [n for n in names if n.startswith("stats.")]
    assert stats and all(n.split(".")[1] in container.skeletons for n in stats)
    report = models.report
    assert report["tensor_bytes"] == container.tensor_bytes
    assert report["file_bytes"] == len(models.evolve)


def test_bad_inputs_fail_with_a_clear_error(models: ef.EvolveModels) -> None:
    from tflite_adaspring.export.evolve import evolve_from_packed

    with pytest.raises(ModelFormatError, match="needs a packed model"):
        evolve_from_packed(None, models.evolve)  # type: ignore[arg-type]
