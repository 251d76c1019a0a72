"""Evolve export: every derived weight equals the converter's own constant; the file runs like the packed one."""

from __future__ import annotations

import evolve_factory as ef
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter

from tflite_adaspring.errors import ModelFormatError
from tflite_adaspring.metadata import read_metadata, tflite_schema, unpack_model
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
    model = tflite_schema().Model.GetRootAs(skeleton.flatbuffer, 0)
    graph = model.Subgraphs(0)
    by_offset = {b.offset: b for b in skeleton.buffers}
    out = {}
    for i in range(graph.TensorsLength()):
        offset = model.Buffers(graph.Tensors(i).Buffer()).Offset()
        if offset > 1:
            out[i] = by_offset[offset]
    return out


def test_every_derived_buffer_equals_the_converters_constant(models: ef.EvolveModels) -> None:
    packed = unpack_model(models.packed)
    container = read_evolve_container(models.evolve)
    deriver = WeightDeriver(container.tensors)
    keys = read_metadata(models.packed).keys
    primary = models.report["primary"]
    assert sorted(container.skeletons) == sorted(k for k in keys if k != primary)  # the primary runs from the file
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
        assembled = _float_constants(unpack_model(assemble(skeleton, deriver)), key)
        for index, buffer in stripped.items():
            np.testing.assert_array_equal(assembled[index], deriver.derive(buffer.recipe))
    assert {"conv", "bias", "depthwise", "bn_scale", "bn_shift", "svd_first", "svd_second", "svd_product"} <= kinds
    assert max(v for k, v in models.report["max_abs_diff"].items() if k not in SVD_KINDS) <= 1e-5
    assert max(models.report["max_abs_diff"][k] for k in SVD_KINDS) <= 1e-4


def test_the_file_runs_its_primary_in_plain_litert(models: ef.EvolveModels) -> None:
    meta = read_metadata(models.evolve)
    assert meta.storage_mode == "evolve" and meta.keys == read_metadata(models.packed).keys
    plain = LiteRTInterpreter(model_content=models.evolve)
    largest = max(meta.signatures, key=lambda r: r.params).key  # plain LiteRT gets the most accurate one
    assert list(plain.get_signature_list()) == [largest] == [models.report["primary"]]
    x = models.x[:1]
    ours = plain.get_signature_runner(largest)(input=x)["probabilities"]
    reference = LiteRTInterpreter(model_content=models.packed).get_signature_runner(largest)(input=x)
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
    stored = {n for n in container.tensors if n not in container.graph_tensors}
    net = models.supernet.net
    # d100.f50/s100-r100 (the largest) is the primary graph; s50.d25/f75-r25 and f25/d50-r50 are skeletons
    assert models.report["primary"] == next(r.key for r in read_metadata(models.evolve).signatures
                                            if r.config_id == "d100.f50/s100-r100-fp32")  # fmt: skip
    assert container.tensors["stage0.block0.std.conv_a.kernel"].shape[-1] == 4  # width 50 % of 8: a prefix
    assert container.tensors["stage0.block0.fire.squeeze.kernel"].shape[-1] == 1  # the widest use: 25 % of 4
    assert container.tensors["head.kernel"].shape == (16, 16)  # SVD needs the whole matrix
    # the factorised head (rank 4) is aligned onto the converter's basis: the two differ in signs only here
    align = container.tensors["head.kernel.align.r4"]
    assert align.shape == (4,) and set(np.abs(align).tolist()) == {1.0}
    # kernels the primary graph holds whole are not stored again: the reader unfolds them from the graph
    graph = {
        "stem.conv.kernel": net.stem_conv.kernel,
        "stage0.block0.dws.expand.kernel": net.stages[0].blocks[0].branch("dws").expand.layer.kernel,
        "stage0.block0.dws.depthwise.kernel": net.stages[0].blocks[0].branch("dws").depthwise.depthwise_kernel,
        "stage1.block0.std.conv_a.kernel": net.stages[1].blocks[0].branch("std").conv_a.layer.kernel,
        "classifier.kernel": net.classifier.kernel,
        "head.kernel": net.head.layer.kernel,  # the primary's head is full rank: its constant is the kernel
    }
    assert set(graph) <= set(container.graph_tensors) and not set(graph) & stored
    for name, variable in graph.items():
        np.testing.assert_allclose(container.tensors[name], variable.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    assert models.report["underivable"] == []
    stats = [n for n in stored if n.startswith("stats.")]
    assert stats and all(n.split(".")[1] in read_metadata(models.evolve).keys for n in stats)
    assert all(container.tensors[n].dtype == np.float16 for n in stats)  # recalibration rounds them to it
    report = models.report
    assert report["tensor_bytes"] == container.tensor_bytes == sum(container.tensors[n].nbytes for n in stored)
    assert report["graph_tensor_bytes"] == sum(container.tensors[n].nbytes for n in container.graph_tensors)
    assert report["file_bytes"] == len(models.evolve)


def test_align_is_the_signs_when_the_bases_differ_in_signs_else_the_procrustes_rotation() -> None:
    from tflite_adaspring.export.evolve import SVD_TOLERANCE, fit_align

    rng = np.random.default_rng(5)
    canonical = rng.normal(size=(6, 10)).astype(np.float32)  # svd_first: [rank, in], one row per component
    signs = np.array([1, -1, -1, 1, 1, -1], np.float32)
    noisy = canonical * signs[:, None] + np.float32(SVD_TOLERANCE / 10) * rng.uniform(-1, 1, size=(6, 10))
    align = fit_align(canonical, noisy.astype(np.float32), "svd_first")
    assert align.dtype == np.float16 and align.shape == (6,)
    np.testing.assert_array_equal(align, signs)
    second = canonical.T.copy()  # svd_second: [out, rank], one column per component
    np.testing.assert_array_equal(fit_align(second, second * signs, "svd_second"), signs)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))  # a real rotation: signs cannot reproduce it
    align = fit_align(canonical, (canonical.T @ q).T.astype(np.float32), "svd_first")
    assert align.shape == (6, 6)
    np.testing.assert_allclose(align, q, atol=1e-5)
    # noise beyond half the tolerance (the partner factor's margin) keeps the full rotation
    far = canonical * signs[:, None] + np.float32(SVD_TOLERANCE * 0.7) * np.sign(rng.normal(size=(6, 10)))
    assert fit_align(canonical, far.astype(np.float32), "svd_first").shape == (6, 6)


def test_bad_inputs_fail_with_a_clear_error(models: ef.EvolveModels) -> None:
    from tflite_adaspring.export.evolve import evolve_from_packed

    with pytest.raises(ModelFormatError, match="needs a packed model"):
        evolve_from_packed(None, models.evolve)  # type: ignore[arg-type]


def test_branch_bytes_counts_each_extra_branch_once_at_its_widest(models: ef.EvolveModels) -> None:
    from tflite_adaspring.export.evolve import branch_bytes
    from tflite_adaspring.space import Config

    supernet = models.supernet
    largest, smallest = supernet.space.largest(), supernet.space.smallest()
    dws_full = Config.from_id("d100.s100/s100-r100-fp32")
    # stage 0 dws branch at 100 %, by hand: expand 1x1 8->16 (128) + BN 4x16, depthwise 5x16 (80) + BN 4x16,
    # project 1x1 16->8 (128) + BN 4x8 = 496 parameters (BatchNorm statistics included, like cost.params)
    assert branch_bytes(supernet, [largest, dws_full]) == 4 * 496
    narrower = Config.from_id("d25.s100/s100-r100-fp32")
    assert branch_bytes(supernet, [largest, dws_full, narrower]) == 4 * 496
    assert 0 < branch_bytes(supernet, [largest, narrower]) < 4 * 496
    assert branch_bytes(supernet, [largest, Config.from_id("s25/s50-r25-fp32")]) == 0  # slices of the backbone
    assert branch_bytes(supernet, [smallest]) > 0  # its fire blocks are not in the backbone
    half = largest.with_precision("fp16")  # quantised configurations keep their own weights
    assert branch_bytes(supernet, [largest, half]) == supernet.cost(half).weight_bytes("fp16")
