"""make_elastic: a user's tf_keras CNN as a supernet; materialize(config) == forward(x, config); cost == counts."""

import json
import random
import re

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from keras_counting import count_macs

from tflite_adaspring.errors import ConfigError, ModelFormatError, SchemaVersionError
from tflite_adaspring.keras import KnobConfig, KnobSpace, KnobSpec, make_elastic
from tflite_adaspring.supernet import apply_permutations

L = tf_keras.layers


def _perturb_batchnorms(model, seed=0):
    """Non-trivial BN statistics and betas, so masked channels and statistics slicing really matter."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            c = int(layer.moving_mean.shape[0])
            layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype("f"))
            layer.beta.assign(rng.normal(0, 0.3, c).astype("f"))
            layer.moving_mean.assign(rng.normal(0, 0.3, c).astype("f"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype("f"))


def sequential_cnn():
    tf_keras.utils.set_random_seed(1)
    model = tf_keras.Sequential(
        [
            L.Conv2D(8, 3, padding="same", input_shape=(12, 12, 3), name="conv1"),
            L.BatchNormalization(name="bn1"),
            L.ReLU(name="relu1"),
            L.MaxPooling2D(name="pool1"),
            L.Conv2D(16, 3, padding="same", name="conv2"),
            L.BatchNormalization(name="bn2"),
            L.ReLU(name="relu2"),
            L.GlobalAveragePooling2D(name="gap"),
            L.Dense(32, activation="relu", name="hidden"),
            L.Dense(5, name="logits"),
        ],
        name="seq_cnn",
    )
    _perturb_batchnorms(model)
    return model


def residual_1d_cnn():
    tf_keras.utils.set_random_seed(2)
    inputs = tf_keras.Input((32, 4))
    x = L.Conv1D(16, 3, padding="same", name="stem")(inputs)
    x = L.ReLU(name="stem_relu")(L.BatchNormalization(name="stem_bn")(x))
    for b in range(2):
        y = L.Conv1D(16, 3, padding="same", name=f"block{b}_a")(x)
        y = L.ReLU()(L.BatchNormalization()(y))
        y = L.BatchNormalization()(L.Conv1D(16, 3, padding="same", name=f"block{b}_b")(y))
        x = L.ReLU()(L.Add(name=f"block{b}_add")([x, y]))
    x = L.GlobalAveragePooling1D()(x)
    x = L.Dense(24, activation="relu", name="head")(x)
    model = tf_keras.Model(inputs, L.Dense(3, name="logits")(x), name="res1d")
    _perturb_batchnorms(model)
    return model


def mixed_cnn():
    """Flatten into a Dense, a biased depthwise conv and a sigmoid: followers that need the consumer-side mask."""
    tf_keras.utils.set_random_seed(3)
    inputs = tf_keras.Input((6, 6, 2))
    x = L.Conv2D(8, 3, padding="same", name="c1")(inputs)
    x = L.Activation("sigmoid")(L.DepthwiseConv2D(3, padding="same", name="dw")(x))
    x = L.Conv2D(4, 3, strides=2, name="c2")(x)
    x = L.Dropout(0.5, name="drop")(L.Flatten(name="flat")(x))
    x = L.Dense(8, activation="tanh", name="hidden")(x)
    return tf_keras.Model(inputs, L.Dense(3, name="logits")(x), name="mixed")


def unsupported_cnn():
    """Two conv branches joined by a Concatenate, then an LSTM and a Lambda: all left as they are."""
    tf_keras.utils.set_random_seed(4)
    inputs = tf_keras.Input((16, 4))
    x = L.ReLU()(L.Conv1D(8, 3, padding="same", name="first")(inputs))
    x = L.Conv1D(8, 3, padding="same", name="trunk")(x)
    a = L.Conv1D(8, 3, padding="same", name="branch_a")(x)
    b = L.Conv1D(8, 5, padding="same", name="branch_b")(x)
    x = L.Concatenate(name="concat")([a, b])
    x = L.LSTM(8, name="lstm")(x)
    x = L.Lambda(lambda t: 2.0 * t, name="double")(x)
    return tf_keras.Model(inputs, L.Dense(3, name="logits")(x), name="unsupported")


MODELS = {"sequential": sequential_cnn, "residual": residual_1d_cnn, "mixed": mixed_cnn, "unsupported": unsupported_cnn}
RANDOM_CONFIGS = {"sequential": 48, "residual": 48, "mixed": 14, "unsupported": 2}


@pytest.fixture(scope="module", params=sorted(MODELS))
def case(request):
    user = MODELS[request.param]()
    before = [w.copy() for w in user.get_weights()]
    elastic = make_elastic(user)
    x = np.random.default_rng(5).normal(size=(3, *user.input_shape[1:])).astype("f")
    return request.param, user, before, elastic, x


def test_materialize_matches_forward_and_cost_matches_counts(case):
    name, _, _, elastic, x = case
    space = elastic.space
    rng = random.Random(0)
    configs = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(RANDOM_CONFIGS[name])]
    for config in configs:
        model = elastic.materialize(config)
        expected = elastic.forward(x, config).numpy()
        got = model(x, training=False).numpy()
        assert np.abs(got - expected).max() <= 1e-5, config.id
        cost = elastic.cost(config)
        assert cost.params == model.count_params(), config.id
        assert cost.macs == count_macs(model), config.id


def test_largest_config_reproduces_the_user_model(case):
    _, user, _, elastic, x = case
    np.testing.assert_allclose(
        elastic.forward(x, elastic.space.largest()).numpy(), user(x, training=False).numpy(), atol=1e-5
    )
    stripped = elastic.strip()
    assert stripped.count_params() == user.count_params()
    np.testing.assert_allclose(stripped(x, training=False).numpy(), user(x, training=False).numpy(), atol=1e-5)


def test_materialized_model_is_plain_keras(case):
    _, _, _, elastic, _ = case
    model = elastic.materialize(elastic.space.smallest())
    assert {type(layer).__module__.split(".")[0] for layer in model.layers} == {"tf_keras"}


def test_user_model_is_unchanged_by_training_the_supernet(case):
    _, user, before, elastic, x = case
    assert not {id(w) for w in user.weights} & {id(w) for w in elastic.model.weights}
    elastic.set_config(elastic.space.smallest())  # masked channels and skipped blocks while training
    elastic.model.compile(optimizer=tf_keras.optimizers.SGD(0.1), loss="mse")
    y = np.ones_like(user(x).numpy())
    elastic.model.fit(x, y, epochs=1, verbose=0)
    for w, w0 in zip(user.get_weights(), before):
        np.testing.assert_array_equal(w, w0)
    trained = elastic.forward(x, elastic.space.largest()).numpy()
    assert np.abs(trained - user(x, training=False).numpy()).max() > 1e-4  # the supernet did train


def test_reports_of_the_example_models():
    seq = make_elastic(sequential_cnn()).report
    assert (seq["conv1"].role, seq["conv1"].knob) == ("width", "conv1.width")
    assert seq["conv2"].role == "width" and "conv1.width" in seq["conv2"].detail
    assert seq["bn1"].knob == "conv1.width" and "ElasticBatchNorm" in seq["bn1"].detail
    assert seq["hidden"].role == "rank"  # 16x32 >= min_rank_dim; its input rows follow conv2's width
    assert seq["logits"].role == "kept" and "model output" in seq["logits"].detail

    res = make_elastic(residual_1d_cnn())
    report = res.report
    assert report.runs == (("residual0.depth", ("block0_add", "block1_add")),)
    assert report["block1_add"].role == "depth" and report["block1_add"].block == "residual0 block 2/2"
    assert report["block0_a"].role == "width" and report["block1_a"].block == "residual0 block 2/2"
    assert report["block0_b"].role == "follows" and "feeds" in report["block0_b"].detail  # it feeds the Add
    assert report["stem"].role == "kept" and "2 layers" in report["stem"].detail  # residual fan-out
    assert report["head"].role == "rank" and report["logits"].role == "kept"
    assert res.space.knob_names == ("residual0.depth", "block0_a.width", "block1_a.width", "head.rank")
    assert res.space.knob("block1_a.width").gate == ("residual0.depth", 1)
    assert "residual0.depth" in str(report)


def test_unsupported_layers_are_kept_and_listed():
    elastic = make_elastic(unsupported_cnn())
    report = elastic.report
    assert {e.layer for e in report.unsupported} == {"concat", "lstm", "double"}
    assert all(report[name].role == "kept" and "not supported" in report[name].detail for name in ("lstm", "double"))
    for name in ("branch_a", "branch_b"):
        assert report[name].role == "kept" and "concat" in report[name].detail
    # trunk's input follows first's width; its own width stays because two branches read it
    assert report["trunk"].role == "follows" and "2 layers" in report["trunk"].detail
    assert report["first"].role == "width"
    assert elastic.space.knob_names == ("first.width",)
    assert {e.layer for e in report.kept} >= {"concat", "lstm", "double", "branch_a", "branch_b", "logits"}


def test_followers_that_break_zeros_are_masked_before_the_consumer():
    elastic = make_elastic(mixed_cnn())
    report = elastic.report
    assert report["c1"].role == "width" and report["dw"].knob == "c1.width"
    assert report["c2"].role == "width" and report["flat"].knob == "c2.width"
    assert report["hidden"].role == "width"  # 8 units < min_rank_dim: width instead of rank
    masks = [layer.name for layer in elastic.model.layers if type(layer).__name__ == "ChannelMask"]
    assert masks == ["c2_mask"]  # after the biased depthwise + sigmoid; not after Flatten/Dropout (zeros stay zero)
    assert elastic.space.size == 4 * 4 * 4 == len(set(elastic.space.enumerate()))


def test_bad_configs_raise_config_error_naming_the_knob():
    elastic = make_elastic(residual_1d_cnn())
    space = elastic.space
    x = np.zeros((1, 32, 4), "f")
    bad = KnobConfig(tuple((n, 0.3 if n == "block0_a.width" else v) for n, v in space.largest().knobs))
    allowed = re.escape("block0_a.width: 0.3 not allowed; choose one of (0.25, 0.5, 0.75, 1.0)")
    with pytest.raises(ConfigError, match=allowed):
        elastic.forward(x, bad)
    with pytest.raises(ConfigError, match=r"residual0\.depth"):
        space.make({"residual0.depth": 3})
    skipped = dict(space.smallest().knobs)
    skipped["block1_a.width"] = 0.5  # its block is skipped at depth 1
    with pytest.raises(ConfigError, match=r"block1_a\.width.*skipped"):
        elastic.materialize(KnobConfig(tuple(skipped.items())))
    with pytest.raises(ConfigError, match="knobs"):
        elastic.cost(KnobConfig((("head.rank", 1.0),)))
    with pytest.raises(ConfigError, match="unknown knobs"):
        space.make({"nope.width": 0.5})
    with pytest.raises(ConfigError, match="KnobConfig"):
        space.validate("w100")


def test_space_size_sampling_ids_and_json():
    space = make_elastic(residual_1d_cnn()).space
    configs = set(space.enumerate())
    assert space.size == len(configs) == 4 * (4 + 4 * 4)  # head rank x (depth 1: one width, depth 2: two)
    assert space.smallest()["block1_a.width"] is None and space.smallest()["residual0.depth"] == 1
    rng = random.Random(1)
    samples = [space.sample(rng) for _ in range(400)]
    assert set(samples) <= configs and len(set(samples)) > 40
    for config in samples[:30]:
        assert space.config_from_id(config.id) == config
        text = json.dumps(space.config_to_json(config))
        assert space.config_from_json(text) == config
        assert space.decode(space.encode(config)) == config
        assert all(space.validate(n) == n and n != config for n in space.neighbours(config))
    assert space.largest().id == "d2.w100.w100.r100"
    assert space.config_from_id("d1.w25.w-.r12p5") == space.smallest()
    assert KnobSpace.from_json(space.to_json()) == space
    other = KnobSpace(space.name, (KnobSpec("x.width", (0.5, 1.0)),))
    with pytest.raises(SchemaVersionError):
        other.config_from_json(space.config_to_json(space.largest()))


def test_assign_codes_in_a_graph_matches_set_config():
    elastic = make_elastic(sequential_cnn())
    space = elastic.space
    x = np.random.default_rng(0).normal(size=(2, 12, 12, 3)).astype("f")
    config = space.make({"conv1.width": 0.25, "hidden.rank": 0.5})

    @tf.function
    def run(codes):
        elastic.assign_codes(codes)
        return elastic.model(x, training=False)

    elastic.set_config(space.largest())
    got = run(tf.constant(elastic.encode(config))).numpy()
    np.testing.assert_allclose(got, elastic.materialize(config)(x).numpy(), atol=1e-5)


def test_channel_permutations_keep_the_full_network_and_slicing_consistent():
    user = sequential_cnn()
    elastic = make_elastic(user)
    x = np.random.default_rng(0).normal(size=(2, 12, 12, 3)).astype("f")
    small = elastic.space.make({"conv1.width": 0.5, "conv2.width": 0.25})
    before_small = elastic.forward(x, small).numpy()
    apply_permutations(elastic.channel_permutations())
    np.testing.assert_allclose(elastic.forward(x, elastic.space.largest()).numpy(), user(x).numpy(), atol=1e-5)
    after_small = elastic.forward(x, small).numpy()
    assert np.abs(after_small - before_small).max() > 1e-4  # a different prefix of channels is kept now
    np.testing.assert_allclose(elastic.materialize(small)(x).numpy(), after_small, atol=1e-5)


def test_recalibrated_statistics_are_used_by_materialize_only_for_their_config():
    elastic = make_elastic(residual_1d_cnn())
    space = elastic.space
    x = np.random.default_rng(0).normal(size=(16, 32, 4)).astype("f")
    small, large = space.smallest(), space.largest()
    before = [bn.statistics()[0].numpy().copy() for bn in elastic.batchnorms()]
    elastic.recalibrate(small, [x[:8], x[8:]])
    for bn, mean in zip(elastic.batchnorms(), before):
        bn.set_statistics(mean, bn.statistics()[1])
    with elastic.using_statistics(small):
        expected = elastic.forward(x, small).numpy()
    np.testing.assert_allclose(elastic.materialize(small)(x).numpy(), expected, atol=1e-5)
    # nothing stored for the largest config: the current statistics (outputs are large here, so rtol)
    np.testing.assert_allclose(
        elastic.materialize(large)(x).numpy(), elastic.forward(x, large).numpy(), rtol=1e-5, atol=1e-5
    )
    assert np.abs(expected - elastic.forward(x, small).numpy()).max() > 1e-4


def test_rejects_models_without_a_layer_graph():
    class Sub(tf_keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ModelFormatError, match="subclassed"):
        make_elastic(Sub())
    with pytest.raises(ModelFormatError, match="tf_keras"):
        make_elastic(object())
    with pytest.raises(ValueError, match=r"end at 1\.0"):
        make_elastic(sequential_cnn(), widths=(0.25, 0.5))
    with pytest.raises(ValueError, match="conv9"):
        make_elastic(sequential_cnn(), exclude=["conv9"])


def test_excluded_layers_are_left_as_they_are():
    report = make_elastic(sequential_cnn(), exclude=["conv2", "hidden"]).report
    assert report["conv2"].role == "kept" and "excluded" in report["conv2"].detail
    assert report["hidden"].role == "kept"
    assert report["conv1"].role == "kept" and "conv2" in report["conv1"].detail  # its consumer is excluded
