"""Hand-crafted baselines on a tiny backbone: uniform configs, L1 channel pruning, SVD head, plain conversion."""

import dataclasses

import numpy as np
import pytest
from test_training import tiny_backbone

from tflite_adaspring import data
from tflite_adaspring.bench.baselines import (
    SIGNATURE_KEY,
    BaselineSettings,
    build_baselines,
    convert_plain,
    prune_channels,
    recalibrate_plain,
    svd_head,
    uniform_config,
)
from tflite_adaspring.cli.main import main
from tflite_adaspring.supernet import Supernet


@pytest.fixture(scope="module")
def setup():
    dataset = data.load("basic_motions")
    backbone = dataclasses.replace(tiny_backbone(dataset.spec), ops=("std", "dws", "fire"))
    supernet = Supernet(backbone, dataset.spec)
    return supernet, dataset, supernet.materialize(supernet.space.largest())


def _conv_kernels(model):
    return [layer.kernel.numpy() for layer in model.layers if type(layer).__name__ == "Conv2D"]


def test_uniform_configs_use_one_op_everywhere(setup):
    supernet, _, _ = setup
    for op in ("dws", "fire"):
        config = uniform_config(supernet.space, op)
        assert config.depths == supernet.space.blocks_per_stage
        assert {b.op for s in config.stages for b in s} == {op} and config.head_rank == 1.0
        supernet.space.validate(config)


def test_channel_pruning_keeps_the_largest_l1_filters(setup):
    supernet, dataset, full = setup
    calibration = [dataset.train[0][:16]]
    pruned = prune_channels(full, 0.5, calibration)
    assert pruned.count_params() < full.count_params()
    assert pruned.output_shape == full.output_shape
    before, after = _conv_kernels(full), _conv_kernels(pruned)
    # the first block's inner conv (stem is conv 0) keeps half its filters: those of largest L1 norm
    inner_before, inner_after = before[1], after[1]
    assert inner_after.shape[-1] == inner_before.shape[-1] // 2
    norms = np.sort(np.abs(inner_before).sum(axis=(0, 1, 2)))[::-1][: inner_after.shape[-1]]
    np.testing.assert_allclose(np.sort(np.abs(inner_after).sum(axis=(0, 1, 2)))[::-1], norms, rtol=1e-6)
    assert full.count_params() == supernet.materialize(supernet.space.largest()).count_params()  # source untouched


def test_recalibration_sets_population_statistics(setup):
    _, dataset, full = setup
    batch = dataset.train[0][:16]
    recalibrated = recalibrate_plain(full, [batch])
    expected = full(batch, training=True).numpy()  # one batch: its statistics are the population's
    np.testing.assert_allclose(recalibrated(batch, training=False).numpy(), expected, rtol=1e-3, atol=1e-3)
    assert not np.allclose(full(batch, training=False).numpy(), expected, atol=1e-3)  # the source is untouched


def test_svd_head_and_plain_conversion(setup):
    from ai_edge_litert.interpreter import Interpreter

    _, dataset, full = setup
    low = svd_head(full, 0.25, [dataset.train[0][:16]])
    assert low.count_params() < full.count_params()
    x = dataset.test[0][:1]
    model = convert_plain(full, dataset.spec.input_shape)
    runner = Interpreter(model_content=model).get_signature_runner(SIGNATURE_KEY)
    probabilities = runner(input=x.astype(np.float32))["probabilities"]
    logits = full.predict(x, verbose=0)
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected, atol=1e-4)


def test_bad_settings_and_names_raise(tmp_path):
    with pytest.raises(ValueError, match="finetune_epochs"):
        BaselineSettings(epochs=2, finetune_epochs=0)
    with pytest.raises(ValueError, match="unknown baselines"):
        build_baselines(tmp_path, BaselineSettings(2, 1), names=("full", "vgg"))
    assert main(["adaspring", "bench", "compare", "--signatures", "1"]) == 2
