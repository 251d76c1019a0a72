"""The delegate's shared-weight views (``weight_source`` + ``weight_config``) on a model written without
TensorFlow: weights read from slices of larger stored tensors, a folded scale in the epilogue, and clean
refusals (a view that does not fit the graph, an ABI mismatch) instead of computing from placeholders."""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from delegate_helpers import assert_close, conv_fc_model, delegate_library, run_model

from tflite_adaspring import delegates
from tflite_adaspring.runtime.weight_source import DataSection, View, pack_weight_source

WEIGHT_NAMES = ("conv_w", "dw_w", "fc_w")


@pytest.fixture(scope="module")
def library():
    return delegate_library()


def _weights_and_blank_model(content: bytes) -> tuple[dict[str, np.ndarray], bytes]:
    """The model's weight tensors, and the model with those tensors' data zeroed (placeholders)."""
    import flatbuffers

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
    weights = {}
    for tensor in model.subgraphs[0].tensors:
        name = tensor.name.decode()
        if name in WEIGHT_NAMES:
            buffer = model.buffers[tensor.buffer]
            weights[name] = np.frombuffer(bytes(buffer.data), np.float32).reshape(tensor.shape).copy()
            buffer.data = np.zeros(len(buffer.data), np.uint8)
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return weights, bytes(builder.Output())


def _shared_source(weights: dict[str, np.ndarray], conv_scale: np.ndarray) -> bytes:
    """A weight source whose stored tensors are larger than the model's: each view is a prefix slice.

    The conv is stored divided by ``conv_scale`` (the view multiplies it back in its epilogue).
    """
    rng = np.random.default_rng(7)
    conv, dw, fc = weights["conv_w"], weights["dw_w"], weights["fc_w"]
    stored_conv = rng.standard_normal((12, 1, 3, 6)).astype(np.float32)  # OHWI, 8 of 12 out, 4 of 6 in used
    stored_conv[:8, :, :, :4] = conv / conv_scale[:, None, None, None]
    stored_dw = rng.standard_normal((1, 3, 20)).astype(np.float32)  # HWC, 16 of 20 channels used
    stored_dw[:, :, :16] = dw[0]
    stored_fc = rng.standard_normal((9, 20)).astype(np.float32)  # [out, in], 5 of 9 out, 16 of 20 in used
    stored_fc[:5, :16] = fc
    section = DataSection()
    views = [
        View("conv_w", "conv", (8, 1, 3, 4), 3 * 6, 6, section.place(stored_conv), section.place(conv_scale)),
        View("dw_w", "depthwise", (16, 1, 3, 1), 1, 20, section.place(stored_dw)),
        View("fc_w", "dense", (5, 1, 1, 16), 20, 0, section.place(stored_fc)),
    ]
    return pack_weight_source(section.tobytes(), {"cfg": views, "other": views[:1]})


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    model = conv_fc_model(seed=3)
    weights, blank = _weights_and_blank_model(model.content)
    scale = np.linspace(0.5, 2.0, 8).astype(np.float32)
    path = tmp_path_factory.mktemp("shared") / "weights.adasw"
    path.write_bytes(_shared_source(weights, scale))
    return model, blank, path


def test_views_of_larger_stored_weights_reproduce_the_model(library, case):
    model, blank, path = case
    delegate = delegates.load(weight_source=path, weight_config="cfg", library_path=library)
    (output,) = run_model(blank, [model.input], [delegate])
    assert_close(output, model.expected, "shared views (sliced, scaled) vs numpy reference")
    stats = delegates.stats(delegate, library)
    assert stats.shared_views == 3 and stats.claimed_shared == 3 and stats.claimed_nodes == 3
    assert stats.shared_weight_bytes > 0 and stats.weight_source_mappings >= 1
    (zeros,) = run_model(blank, [model.input])  # without the delegate the placeholders compute garbage
    assert not np.allclose(zeros, model.expected, atol=1e-3)


def test_every_delegate_of_a_file_shares_one_mapping(library, case):
    _, _, path = case
    first = delegates.load(weight_source=path, weight_config="cfg", library_path=library)
    base = delegates.stats(first, library).weight_source_mappings
    others = [delegates.load(weight_source=path, weight_config=k, library_path=library) for k in ("cfg", "other")]
    assert {delegates.stats(d, library).weight_source_mappings for d in [first, *others]} == {base}


def test_a_view_that_does_not_fit_the_graph_fails_the_graph_not_the_process(library, case):
    model, blank, path = case
    delegate = delegates.load(weight_source=path, weight_config="other", library_path=library)
    # "other" has the conv view but not the depthwise/FC ones: fine, those run from their own (zero) data
    run_model(blank, [model.input], [delegate])
    bad = path.with_name("bad.adasw")
    bad.write_bytes(pack_weight_source(np.zeros(64, np.float32).tobytes(), {"c": [View("fc_w", "dense", (4, 1, 1, 16),
                                                                                          16, 0, 0)]}))  # fmt: skip
    delegate = delegates.load(weight_source=bad, library_path=library)
    with pytest.raises((ValueError, RuntimeError)):
        run_model(blank, [model.input], [delegate])
    message = delegates.last_message(delegate, library)
    assert "does not fit this graph" in message and "fc_w" in message and "dims differ" in message


def test_abi_mismatch_with_shared_views_refuses_the_graph(library, case):
    from ai_edge_litert.interpreter import Interpreter, load_delegate

    _, blank, path = case
    options = {"weight_source": str(path), "weight_config": "cfg", "debug_simulate_abi_mismatch": "tensor"}
    delegate = load_delegate(str(library), options)
    with pytest.raises((ValueError, RuntimeError)):
        Interpreter(model_content=blank, experimental_delegates=[delegate])
    stats = delegates.stats(delegate, library)
    assert stats.abi_refusals == 1 and stats.claimed_nodes == 0
    assert "ABI self-check failed" in delegates.last_message(delegate, library)
