"""Supernet: materialise(config) equals forward(x, config); cost() equals independent counts."""

import random

import numpy as np
import pytest
from keras_counting import count_macs

from tflite_adaspring.data.spec import InputSpec
from tflite_adaspring.errors import ConfigError
from tflite_adaspring.space import BlockChoice, Config
from tflite_adaspring.supernet import build_supernet

SPECS = {
    "timeseries": InputSpec("t", (128, 6), tuple("abcdefg"), "timeseries"),
    "image": InputSpec("i", (28, 28, 1), tuple("0123456789"), "image"),
}


def _perturb(sn, seed=0):
    """Non-trivial BN statistics and betas, so masked channels and stats slicing really matter."""
    rng = np.random.default_rng(seed)
    for bn in sn.batchnorms():
        c = bn.channels
        bn.set_statistics(rng.normal(0, 0.1, c).astype("f"), rng.uniform(0.5, 1.5, c).astype("f"))
        bn.beta.assign(rng.normal(0, 0.1, c).astype("f"))
        bn.gamma.assign(rng.uniform(0.5, 1.5, c).astype("f"))


@pytest.fixture(scope="module", params=sorted(SPECS))
def supernet(request):
    sn = build_supernet(SPECS[request.param])
    _perturb(sn)
    return sn


def test_default_backbones_are_mobile_sized(supernet):
    largest = supernet.cost(supernet.space.largest())
    smallest = supernet.cost(supernet.space.smallest())
    low, high = (30e3, 300e3) if supernet.backbone.kind == "timeseries" else (0.3e6, 1.5e6)
    assert low <= largest.params <= high
    assert largest.macs >= 10 * smallest.macs
    assert supernet.space.size >= 10**4


def test_materialize_matches_forward_and_cost_matches_counts(supernet):
    rng = random.Random(0)
    space = supernet.space
    configs = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(48)]
    x = np.random.default_rng(1).normal(size=(3, *supernet.backbone.input_shape)).astype("f")
    for config in configs:
        model = supernet.materialize(config)
        expected = supernet.forward(x, config).numpy()
        got = model(x, training=False).numpy()
        assert np.abs(got - expected).max() <= 1e-5, config.id
        cost = supernet.cost(config)
        assert cost.params == model.count_params(), config.id
        assert cost.macs == count_macs(model), config.id


def test_materialized_model_is_plain_keras(supernet):
    model = supernet.materialize(supernet.space.smallest())
    kinds = {type(layer).__module__.split(".")[0] for layer in model.layers}
    assert kinds == {"tf_keras"}


def test_bad_config_is_rejected(supernet):
    bad = Config(((BlockChoice("std", 1.0),),) * 2, 1.0, "fp32")
    with pytest.raises(ConfigError, match="stages"):
        supernet.forward(np.zeros((1, *supernet.backbone.input_shape), "f"), bad)


def test_recalibration_only_changes_the_chosen_configs_statistics(supernet):
    x = np.random.default_rng(3).normal(size=(16, *supernet.backbone.input_shape)).astype("f")
    small, large = supernet.space.smallest(), supernet.space.largest()
    bns = supernet.batchnorms()
    before = [bn.statistics()[0].numpy().copy() for bn in bns]
    supernet.recalibrate(small, [x[:8], x[8:]])
    # moving statistics now hold the smallest config's population statistics ...
    stored = supernet.bn_statistics[small]
    i = bns.index(supernet.net.stem_bn)  # a BN every config uses
    first = bns[i]
    # (the stored copy is rounded to float16 precision: relative error <= 2^-11)
    np.testing.assert_allclose(first.statistics()[0].numpy(), stored[i][0], rtol=1e-3, atol=1e-7)
    assert not np.allclose(first.statistics()[0].numpy(), before[i])
    unused = bns.index(supernet.net.stages[0].blocks[-1].branch("std").bn_a)  # skipped by the smallest config
    assert np.array_equal(bns[unused].statistics()[0].numpy(), before[unused])
    # ... and are restored to the stored ones only inside using_statistics(small)
    for bn, mean in zip(bns, before):
        bn.set_statistics(mean, bn.statistics()[1])
    with supernet.using_statistics(large):  # nothing stored for the largest: unchanged
        assert all(np.array_equal(bn.statistics()[0].numpy(), mean) for bn, mean in zip(bns, before))
    with supernet.using_statistics(small):
        assert np.array_equal(first.statistics()[0].numpy(), stored[i][0])
    assert np.array_equal(first.statistics()[0].numpy(), before[i])
    supernet.bn_statistics.clear()


def test_half_precision_rounds_to_float16_only_when_it_can_hold_the_values():
    from tflite_adaspring.supernet import half_precision

    got = half_precision(np.array([1.0001, 0.1, -3.0], np.float32))
    # float16 has an 11-bit significand: 1.0001 -> 1.0, 0.1 -> 0.0999755859375, -3 stays
    np.testing.assert_array_equal(got, np.array([1.0, 0.0999755859375, -3.0], np.float32))
    assert got.dtype == np.float32
    big = np.array([1.0001, 70000.0], np.float32)  # beyond float16's range: left as it is
    np.testing.assert_array_equal(half_precision(big), big)
    assert np.isnan(half_precision(np.array([np.nan], np.float32))[0])


def test_stored_statistics_are_float16_exact(supernet):
    x = np.random.default_rng(4).normal(size=(16, *supernet.backbone.input_shape)).astype("f")
    small = supernet.space.smallest()
    supernet.recalibrate(small, [x[:8], x[8:]])
    for mean, var in supernet.bn_statistics[small]:
        for values in (mean, var):
            np.testing.assert_array_equal(values.astype(np.float16).astype(np.float32), values)
    supernet.bn_statistics.clear()
