"""The evolve container format and the numpy weight derivations, against hand-computed values (no TensorFlow)."""

from __future__ import annotations

import json
import lzma
import struct
import sys
import zlib

import numpy as np
import pytest

from tflite_adaspring.errors import MissingDependencyError, ModelFormatError, SchemaVersionError
from tflite_adaspring.runtime.evolve_store import (
    FORMAT_VERSION,
    MAGIC,
    Skeleton,
    StrippedBuffer,
    WeightDeriver,
    assemble,
    from_planes,
    pack_container,
    resolve_graph_tensors,
    to_planes,
    unfold_graph_tensor,
    unpack_container,
)

RNG = np.random.default_rng(3)
EPS = 1e-3


def _tensors() -> dict[str, np.ndarray]:
    f = np.float32
    return {
        "conv": RNG.normal(size=(1, 3, 6, 8)).astype(f),  # HWIO
        "dw": RNG.normal(size=(1, 3, 8, 1)).astype(f),
        "dense": RNG.normal(size=(8, 5)).astype(f),
        "bias": RNG.normal(size=(5,)).astype(f),
        "gamma": RNG.uniform(0.5, 1.5, 8).astype(f),
        "beta": RNG.normal(size=8).astype(f),
        "mean": RNG.normal(size=8).astype(f),
        "var": RNG.uniform(0.1, 2.0, 8).astype(f),
        "head": RNG.normal(size=(8, 12)).astype(f),
    }


def _bn(n: int) -> dict:
    return {"gamma": "gamma", "beta": "beta", "mean": "mean", "var": "var", "eps": EPS, "n": n}


def _affine(t: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    scale = t["gamma"][:n].astype(np.float64) / np.sqrt(t["var"][:n].astype(np.float64) + EPS)
    return scale, t["beta"][:n] - t["mean"][:n] * scale


def test_derivations_match_hand_computed_layouts() -> None:
    t = _tensors()
    d = WeightDeriver(t)
    scale, shift = _affine(t, 5)
    conv = d.derive({"kind": "conv", "kernel": "conv", "in": 4, "out": 5, "bn": _bn(5)})
    want = np.stack([t["conv"][0, :, :4, o] * scale[o] for o in range(5)])[:, None]  # OHWI
    assert conv.shape == (5, 1, 3, 4) and conv.dtype == np.float32
    np.testing.assert_allclose(conv, want, rtol=1e-6)
    bias = d.derive({"kind": "bias", "bias": None, "out": 5, "bn": _bn(5)})
    np.testing.assert_allclose(bias, shift, rtol=1e-5, atol=1e-6)
    with_bias = d.derive({"kind": "bias", "bias": "bias", "out": 5, "bn": _bn(5)})
    np.testing.assert_allclose(with_bias, t["bias"] * scale + shift, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(d.derive({"kind": "bias", "bias": "bias", "out": 3}), t["bias"][:3])
    s6, _ = _affine(t, 6)
    dw = d.derive({"kind": "depthwise", "kernel": "dw", "out": 6, "bn": _bn(6)})
    assert dw.shape == (1, 1, 3, 6)
    np.testing.assert_allclose(dw[0, 0], t["dw"][0, :, :6, 0] * s6, rtol=1e-6)
    dense = d.derive({"kind": "dense", "kernel": "dense", "in": 6})
    np.testing.assert_array_equal(dense, t["dense"][:6].T)
    s8, b8 = _affine(t, 8)
    np.testing.assert_allclose(d.derive({"kind": "bn_scale", "bn": _bn(8)}), s8, rtol=1e-6)
    np.testing.assert_allclose(d.derive({"kind": "bn_shift", "bn": _bn(8)}), b8, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(d.derive({"kind": "zeros", "shape": [3]}), np.zeros(3, np.float32))


def test_svd_factors_are_a_canonical_truncation() -> None:
    t = _tensors()
    d = WeightDeriver(t)
    w = t["head"].astype(np.float64)
    u, s, vh = np.linalg.svd(w, full_matrices=False)
    for rank in (2, 5, 8):
        first = d.derive({"kind": "svd_first", "kernel": "head", "rank": rank})  # [rank, in]
        second = d.derive({"kind": "svd_second", "kernel": "head", "rank": rank})  # [out, rank]
        truncated = (u[:, :rank] * s[:rank]) @ vh[:rank]
        np.testing.assert_allclose(first.T @ second.T, truncated, atol=1e-5)
        product = d.derive({"kind": "svd_product", "kernel": "head", "rank": rank})
        np.testing.assert_allclose(product, truncated.T, atol=1e-5)
        # canonical: the largest-magnitude entry of each left factor column is positive
        assert np.all(first[np.arange(rank), np.abs(first).argmax(axis=1)] > 0)
    # an orthogonal align rotates both factors and leaves their product (the computed function) unchanged
    q, _ = np.linalg.qr(RNG.normal(size=(4, 4)))
    rotated = WeightDeriver({**t, "q": q.astype(np.float32), "bad": np.eye(3, dtype=np.float32)})
    first = rotated.derive({"kind": "svd_first", "kernel": "head", "rank": 4, "align": "q"})
    second = rotated.derive({"kind": "svd_second", "kernel": "head", "rank": 4, "align": "q"})
    plain = d.derive({"kind": "svd_first", "kernel": "head", "rank": 4})
    np.testing.assert_allclose(first, (plain.T @ q).T, atol=1e-5)
    np.testing.assert_allclose(first.T @ second.T, (u[:, :4] * s[:4]) @ vh[:4], atol=1e-5)
    with pytest.raises(ModelFormatError, match="align"):
        rotated.derive({"kind": "svd_first", "kernel": "head", "rank": 4, "align": "bad"})
    # an align of r signs stands for diag(signs): each component flips, the product stays the truncation
    signs = np.array([1, -1, -1, 1], np.float16)
    flipped = WeightDeriver({**t, "d": signs, "q": np.diag(signs).astype(np.float32)})
    for kind in ("svd_first", "svd_second"):
        by_signs = flipped.derive({"kind": kind, "kernel": "head", "rank": 4, "align": "d"})
        np.testing.assert_allclose(by_signs, flipped.derive({"kind": kind, "kernel": "head", "rank": 4, "align": "q"}))
    first = flipped.derive({"kind": "svd_first", "kernel": "head", "rank": 4, "align": "d"})
    np.testing.assert_array_equal(first[1], -plain[1])
    second = flipped.derive({"kind": "svd_second", "kernel": "head", "rank": 4, "align": "d"})
    np.testing.assert_allclose(first.T @ second.T, (u[:, :4] * s[:4]) @ vh[:4], atol=1e-5)


def _skeleton(t: dict[str, np.ndarray]) -> Skeleton:
    flatbuffer = b"FAKE-FLATBUFFER-" * 3
    recipe = {"kind": "dense", "kernel": "dense"}
    buffer = StrippedBuffer(offset=64, shape=(5, 8), dtype="float32", recipe=recipe)
    return Skeleton("cfg01", flatbuffer, 64 + 160, (buffer,))


def test_container_round_trip_and_assembly() -> None:
    t = _tensors()
    skeleton = _skeleton(t)
    payload = pack_container(t, [skeleton])
    container = unpack_container(payload)
    assert container.tensor_bytes == sum(a.nbytes for a in t.values())
    for name, array in t.items():
        np.testing.assert_array_equal(container.tensors[name], array)
        assert not container.tensors[name].flags.writeable
    assert container.skeletons["cfg01"] == skeleton
    model = assemble(container.skeletons["cfg01"], WeightDeriver(container.tensors))
    assert len(model) == 224 and model.startswith(skeleton.flatbuffer)
    np.testing.assert_array_equal(np.frombuffer(model[64:224], np.float32).reshape(5, 8), t["dense"].T)
    wrong = Skeleton(
        "cfg01", skeleton.flatbuffer, 224, (StrippedBuffer(64, (4, 8), "float32", skeleton.buffers[0].recipe),)
    )
    with pytest.raises(ModelFormatError, match="gives shape"):
        assemble(wrong, WeightDeriver(container.tensors))


def test_malformed_containers_fail_with_a_clear_error() -> None:
    t = _tensors()
    payload = pack_container(t, [_skeleton(t)])
    with pytest.raises(ModelFormatError, match="magic"):
        unpack_container(b"NOTEVOLV" + payload[8:])
    with pytest.raises(SchemaVersionError, match="newer"):
        unpack_container(MAGIC + struct.pack("<I", FORMAT_VERSION + 1) + payload[12:])
    with pytest.raises(ModelFormatError, match=r"outside the entry|truncated"):
        unpack_container(payload[: len(payload) - 200])
    with pytest.raises(ModelFormatError, match="unknown tensors"):
        pack_container({k: v for k, v in t.items() if k != "dense"}, [_skeleton(t)])
    bad_kind = Skeleton("cfg01", b"x" * 16, 400, (StrippedBuffer(16, (1,), "float32", {"kind": "magic"}),))
    with pytest.raises(ModelFormatError, match="unknown recipe"):
        pack_container(t, [bad_kind])
    outside = Skeleton(
        "cfg01", b"x" * 16, 100, (StrippedBuffer(64, (5, 8), "float32", {"kind": "dense", "kernel": "dense"}),)
    )
    with pytest.raises(ModelFormatError, match="does not fit"):
        unpack_container(pack_container(t, [outside]))
    with pytest.raises(ModelFormatError, match="dtype"):
        pack_container({"x": np.zeros(3, np.float64)}, [])
    corrupted = bytearray(payload)
    corrupted[len(payload) // 2] ^= 0xFF
    with pytest.raises(ModelFormatError, match="corrupted"):
        unpack_container(bytes(corrupted))


BN = {"gamma": "gamma", "beta": "beta", "mean": "mean", "var": "var", "eps": EPS, "n": 8}


def test_graph_tensors_unfold_the_folded_constants_by_hand() -> None:
    t = _tensors()
    t["gamma"][3] = 0.0  # a dead channel: every configuration scales it by zero
    scale = t["gamma"] / np.sqrt(t["var"] + EPS)
    # conv: the graph holds OHWI = (kernel * scale).transpose(3, 0, 1, 2)
    folded = np.ascontiguousarray((t["conv"][:, :, :, :8] * scale).transpose(3, 0, 1, 2))
    kernel = unfold_graph_tensor({"kind": "conv", "shape": [1, 3, 6, 8], "bn": BN}, folded, t)
    expected = t["conv"].copy()
    expected[..., 3] = 0.0
    np.testing.assert_allclose(kernel, expected, rtol=1e-6, atol=1e-7)
    assert not kernel.flags.writeable
    # depthwise: [1, H, W, C] = kernel[..., 0] * scale
    folded = (t["dw"][:, :, :, 0] * scale)[None]
    kernel = unfold_graph_tensor({"kind": "depthwise", "shape": [1, 3, 8, 1], "bn": BN}, folded, t)
    expected = t["dw"].copy()
    expected[:, :, 3] = 0.0
    np.testing.assert_allclose(kernel, expected, rtol=1e-6, atol=1e-7)
    # dense, no BatchNorm: [out, in] = kernel.T
    kernel = unfold_graph_tensor({"kind": "dense", "shape": [8, 5], "bn": None}, t["dense"].T.copy(), t)
    np.testing.assert_array_equal(kernel, t["dense"])
    with pytest.raises(ModelFormatError, match="expected"):
        unfold_graph_tensor({"kind": "dense", "shape": [8, 5], "bn": None}, t["dense"], t)


def test_graph_tensors_round_trip_and_resolve() -> None:
    t = _tensors()
    stored = {k: v for k, v in t.items() if k != "dense"}
    graph = {"dense": {"tensor": 7, "kind": "dense", "shape": [8, 5], "bn": None}}
    container = unpack_container(pack_container(stored, [_skeleton(t)], graph))
    assert container.graph_tensors == graph and "dense" not in container.tensors
    assert container.tensor_bytes == sum(a.nbytes for a in stored.values())
    asked = []

    def constant(index: int) -> np.ndarray:
        asked.append(index)
        return t["dense"].T.copy()

    resolved = resolve_graph_tensors(container, constant)
    assert asked == [7] and resolved.tensor_bytes == container.tensor_bytes
    model = assemble(resolved.skeletons["cfg01"], WeightDeriver(resolved.tensors))
    np.testing.assert_array_equal(np.frombuffer(model[64:224], np.float32).reshape(5, 8), t["dense"].T)
    with pytest.raises(ModelFormatError, match="malformed reference"):
        pack_container(stored, [], {"dense": {"tensor": 7, "kind": "svd_first", "shape": [8, 5]}})
    with pytest.raises(ModelFormatError, match="unknown tensors"):
        pack_container(
            stored, [], {"x": {"tensor": 1, "kind": "conv", "shape": [1, 1, 1, 1], "bn": {**BN, "var": "v"}}}
        )
    with pytest.raises(ModelFormatError, match="unknown tensors"):  # a recipe naming neither
        pack_container(stored, [_skeleton(t)])


def _body(payload: bytes) -> tuple[dict, bytes]:
    """The header and data section of a version-3 entry, decoded by hand from the documented layout."""
    magic, version, stream_bytes = struct.unpack_from("<8sII", payload, 0)
    assert (magic, version, len(payload)) == (MAGIC, 3, 16 + stream_bytes)
    body = lzma.decompress(payload[16:], format=lzma.FORMAT_XZ)
    (header_bytes,) = struct.unpack_from("<I", body, 0)
    return json.loads(body[4 : 4 + header_bytes]), body[4 + header_bytes :]


def test_version_3_stores_tensors_byte_planar_once_in_one_xz_stream() -> None:
    np.testing.assert_array_equal(  # byte 0 of every element, then byte 1
        np.frombuffer(to_planes(np.array([1.0, 2.0], np.float16)), np.uint8), [0x00, 0x00, 0x3C, 0x40]
    )
    t = {
        **_tensors(),
        "stats.a": np.arange(6, dtype=np.float16),
        "stats.b": np.arange(6, dtype=np.float16),  # the same values: stored once
        "index": np.array([3, -1], np.int32),
        "scalar": np.array(2.5, np.float32),
        "empty": np.zeros((0, 4), np.float32),
    }
    skeleton = _skeleton(t)
    payload = pack_container(t, [skeleton])
    header, data = _body(payload)
    entries = header["tensors"]
    assert entries["stats.a"]["offset"] == entries["stats.b"]["offset"]
    assert len(data) == sum(a.nbytes for a in t.values()) - t["stats.b"].nbytes + len(skeleton.flatbuffer)
    conv = entries["conv"]
    stored = data[conv["offset"] : conv["offset"] + conv["nbytes"]]
    assert stored == to_planes(t["conv"]) and stored != t["conv"].tobytes()
    assert data[header["skeletons"]["cfg01"]["offset"] :] == skeleton.flatbuffer
    container = unpack_container(payload)
    for name, array in t.items():
        got = container.tensors[name]
        assert got.dtype == array.dtype and got.shape == array.shape and not got.flags.writeable, name
        np.testing.assert_array_equal(got, array)
    assert container.skeletons["cfg01"] == skeleton
    assert container.tensor_bytes == sum(a.nbytes for a in t.values())  # what the tensors hold, shared or not
    # skeletons and their recipes repeat each other: one stream compresses them together
    flatbuffer = bytes(RNG.integers(0, 256, 2000, dtype=np.uint8))
    alike = [Skeleton(f"cfg{i:02d}", flatbuffer, 2048 + 160, (StrippedBuffer(2048, (5, 8), "float32", recipe),))
             for i, recipe in enumerate([skeleton.buffers[0].recipe] * 20)]  # fmt: skip
    assert len(pack_container({"dense": t["dense"]}, alike)) < 2 * len(flatbuffer)
    np.testing.assert_array_equal(from_planes(to_planes(t["head"]), "float32", (8, 12)), t["head"])


def test_version_3_without_lzma_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    payload = pack_container({"dense": _tensors()["dense"]}, [])
    monkeypatch.setitem(sys.modules, "lzma", None)  # as in a Python built without liblzma
    with pytest.raises(MissingDependencyError, match="lzma"):
        unpack_container(payload)


def test_graph_tensor_batchnorm_needs_only_its_scale() -> None:
    t = _tensors()
    scale_only = {"gamma": "gamma", "var": "var", "eps": EPS, "n": 8}
    folded = np.ascontiguousarray((t["conv"] * (t["gamma"] / np.sqrt(t["var"] + EPS))).transpose(3, 0, 1, 2))
    graph = {"conv": {"tensor": 2, "kind": "conv", "shape": [1, 3, 6, 8], "bn": scale_only}}
    stored = {"gamma": t["gamma"], "var": t["var"]}
    container = unpack_container(pack_container(stored, [], graph))
    resolved = resolve_graph_tensors(container, lambda index: folded)
    np.testing.assert_allclose(resolved.tensors["conv"], t["conv"], rtol=1e-5, atol=1e-6)
    with pytest.raises(ModelFormatError, match="malformed bn"):
        pack_container(stored, [], {"conv": {**graph["conv"], "bn": {"gamma": "gamma", "eps": EPS, "n": 8}}})


def test_version_2_containers_are_still_read() -> None:
    t = _tensors()
    stored = {k: v for k, v in t.items() if k not in ("dense", "conv")}  # the graph holds those two
    skeleton = _skeleton(t)
    tensors, blobs, cursor = {}, [], 0
    for name, array in stored.items():  # version 2: raw tensors, 16-byte aligned
        start = -(-cursor // 16) * 16
        blobs.append(b"\0" * (start - cursor) + array.tobytes())
        tensors[name] = {"dtype": array.dtype.name, "shape": list(array.shape), "offset": start, "nbytes": array.nbytes}
        cursor = start + array.nbytes
    compressed = zlib.compress(skeleton.flatbuffer)
    start = -(-cursor // 16) * 16
    blobs.append(b"\0" * (start - cursor) + compressed)
    buffer = {"offset": 64, "shape": [5, 8], "dtype": "float32", "recipe": skeleton.buffers[0].recipe}
    skeletons = {"cfg01": {"offset": start, "nbytes": len(compressed), "encoding": "zlib", "model_nbytes": 224,
                           "buffers": [buffer]}}  # fmt: skip
    graph = {
        "dense": {"tensor": 7, "kind": "dense", "shape": [8, 5], "bn": None},
        "conv": {"tensor": 2, "kind": "conv", "shape": [1, 3, 6, 8], "bn": BN},
    }  # version 2 wrote the whole bn
    header = zlib.compress(json.dumps({"tensors": tensors, "graph_tensors": graph, "skeletons": skeletons}).encode())
    head = MAGIC + struct.pack("<II", 2, len(header)) + header
    payload = head + b"\0" * (-len(head) % 16) + b"".join(blobs)
    container = unpack_container(payload)
    assert container.graph_tensors == graph and set(container.tensors) == set(stored)
    for name, array in stored.items():
        np.testing.assert_array_equal(container.tensors[name], array)
    assert container.skeletons["cfg01"] == skeleton
    folded = np.ascontiguousarray((t["conv"] * (t["gamma"] / np.sqrt(t["var"] + EPS))).transpose(3, 0, 1, 2))
    resolved = resolve_graph_tensors(container, lambda index: t["dense"].T.copy() if index == 7 else folded)
    np.testing.assert_allclose(resolved.tensors["conv"], t["conv"], rtol=1e-5, atol=1e-6)
    model = assemble(resolved.skeletons["cfg01"], WeightDeriver(resolved.tensors))
    np.testing.assert_array_equal(np.frombuffer(model[64:224], np.float32).reshape(5, 8), t["dense"].T)


def test_version_1_containers_without_graph_tensors_are_still_read() -> None:
    t = {"dense": _tensors()["dense"]}
    recipe = {"kind": "dense", "kernel": "dense"}
    header = json.dumps(  # version 1: a plain JSON header, no graph tensors
        {
            "tensors": {"dense": {"dtype": "float32", "shape": [8, 5], "offset": 0, "nbytes": 160}},
            "skeletons": {
                "cfg01": {
                    "offset": 160,
                    "nbytes": 16,
                    "encoding": "raw",
                    "model_nbytes": 224,
                    "buffers": [{"offset": 64, "shape": [5, 8], "dtype": "float32", "recipe": recipe}],
                }
            },
        }
    ).encode()
    head = MAGIC + struct.pack("<II", 1, len(header)) + header
    payload = head + b"\0" * (-len(head) % 16) + t["dense"].tobytes() + b"x" * 16
    container = unpack_container(payload)
    assert container.graph_tensors == {} and set(container.tensors) == {"dense"}
    np.testing.assert_array_equal(container.tensors["dense"], t["dense"])
    assert container.skeletons["cfg01"].buffers[0].recipe == recipe
