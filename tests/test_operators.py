"""Each compression operator against a hand-computed case."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tflite_adaspring.errors import ConfigError
from tflite_adaspring.operators.batchnorm import ElasticBatchNorm
from tflite_adaspring.operators.decomposition import DecompositionBlock
from tflite_adaspring.operators.depth import ElasticDepth
from tflite_adaspring.operators.low_rank import LowRank
from tflite_adaspring.operators.width import ElasticWidth, importance_order
from tflite_adaspring.space import BlockChoice


def _materialize(op_apply, input_shape):
    inputs = tf_keras.Input(input_shape)
    return tf_keras.Model(inputs, op_apply(inputs))


def test_width_masks_and_slices_dense():
    dense = tf_keras.layers.Dense(4, use_bias=True)
    op = ElasticWidth(dense, widths=(0.5, 1.0))
    op.build((None, 2))
    dense.set_weights([np.array([[1, 2, 3, 4], [5, 6, 7, 8]], "f"), np.array([1, 1, 1, 1], "f")])
    x = np.array([[1.0, 1.0]], "f")
    np.testing.assert_allclose(op(x).numpy(), [[7, 9, 11, 13]])  # full width: x @ W + b
    op.set_choice(0.5)
    np.testing.assert_allclose(op(x).numpy(), [[7, 9, 0, 0]])  # half width: last two channels masked
    sub = _materialize(lambda t: op.materialize(t, 0.5), (2,))
    np.testing.assert_allclose(sub(x).numpy(), [[7, 9]])
    sub_in = _materialize(lambda t: op.materialize(t, 0.5, in_keep=1), (1,))  # producer kept 1 channel
    np.testing.assert_allclose(sub_in(np.array([[2.0]], "f")).numpy(), [[3, 5]])
    with pytest.raises(ConfigError, match="width"):
        op.set_choice(0.3)


def test_importance_order_sorts_by_l1_norm():
    kernel = np.array([[1.0, -5.0, 2.0], [0.0, 1.0, -2.0]])  # L1 per output: 1, 6, 4
    assert importance_order(kernel).tolist() == [1, 2, 0]


def test_low_rank_truncates_to_top_singular_direction():
    # W = 3 * e1 e1^T + 1 * e2 e2^T (rotated): the rank-1 truncation keeps only the 3-direction.
    c, s = np.cos(0.3), np.sin(0.3)
    rot = np.array([[c, -s], [s, c]])
    w = rot @ np.diag([3.0, 1.0]) @ rot.T
    dense = tf_keras.layers.Dense(2, use_bias=False)
    op = LowRank(dense, ranks=(0.5, 1.0))
    op.build((None, 2))
    dense.set_weights([w.astype("f")])
    x = np.array([[1.0, 0.0], [0.0, 1.0]], "f")
    np.testing.assert_allclose(op(x).numpy(), w, atol=1e-6)
    op.set_choice(0.5)
    u1 = rot[:, :1]
    np.testing.assert_allclose(op(x).numpy(), 3.0 * u1 @ u1.T, atol=1e-5)
    a, b = op.factors(0.5)
    np.testing.assert_allclose(a @ b, 3.0 * u1 @ u1.T, atol=1e-5)


def test_low_rank_factorises_only_when_it_saves_weights():
    dense = tf_keras.layers.Dense(64, use_bias=True)
    op = LowRank(dense, ranks=(0.125, 1.0))
    op.build((None, 32))
    small = _materialize(lambda t: op.materialize(t, 0.125), (32,))
    assert [type(layer).__name__ for layer in small.layers[1:]] == ["Dense", "Dense"]  # 4 * (32 + 64) < 32 * 64
    assert small.count_params() == op.cost(0.125, 1).params == 4 * 96 + 64
    full = _materialize(lambda t: op.materialize(t, 1.0), (32,))
    assert full.count_params() == op.cost(1.0, 1).params == 32 * 64 + 64
    x = np.random.default_rng(0).normal(size=(5, 32)).astype("f")
    np.testing.assert_allclose(full(x).numpy(), dense(x).numpy(), atol=1e-5)


def test_batchnorm_masks_and_recalibrates_to_population_statistics():
    bn = ElasticBatchNorm(momentum=0.5)
    bn.build((None, 2))
    active = tf.constant([1.0, 0.0])
    x = np.array([[1.0, 5.0], [3.0, 5.0]], "f")  # channel 0: mean 2, var 1
    y = bn(x, training=True, active=active).numpy()
    np.testing.assert_allclose(y[:, 0], [-1 / np.sqrt(1 + 1e-3), 1 / np.sqrt(1 + 1e-3)], rtol=1e-5)
    np.testing.assert_array_equal(y[:, 1], [0.0, 0.0])  # inactive channel stays exactly zero
    mean, var = (t.numpy() for t in bn.statistics())
    np.testing.assert_allclose(mean, [1.0, 0.0])  # 0.5 * 0 + 0.5 * 2; inactive channel untouched
    np.testing.assert_allclose(var, [1.0, 1.0])  # 0.5 * 1 + 0.5 * 1
    bn.start_recalibration()
    bn(np.array([[0.0, 0.0], [2.0, 2.0]], "f"), training=True)
    bn(np.array([[4.0, 4.0], [6.0, 6.0]], "f"), training=True)
    bn.finish_recalibration()
    mean, var = (t.numpy() for t in bn.statistics())
    np.testing.assert_allclose(mean, [3.0, 3.0])  # population of {0, 2, 4, 6}
    np.testing.assert_allclose(var, [5.0, 5.0])


def test_decomposition_block_is_residual_and_selects_branch():
    block = DecompositionBlock(2, (1, 1), widths=(0.5, 1.0))
    block.build(tf.TensorShape((None, 1, 1, 2)))
    for layer in block.branches:
        for w in layer.trainable_weights:
            w.assign(tf.zeros_like(w))
    x = np.array([[[[1.0, -2.0]]]], "f")
    # every branch outputs BN(0) = beta = 0, so the block is ReLU(x + 0)
    for op in ("std", "dws", "fire"):
        block.set_block_choice(BlockChoice(op, 0.5))
        np.testing.assert_allclose(block(x).numpy(), [[[[1.0, 0.0]]]])
    block.branch("fire").bn_e.beta.assign([0.5, 0.25])
    block.set_block_choice(BlockChoice("fire", 1.0))
    np.testing.assert_allclose(block(x).numpy(), [[[[1.5, 0.0]]]])  # ReLU([1, -2] + [0.5, 0.25])
    block.set_block_choice(BlockChoice("std", 1.0))
    np.testing.assert_allclose(block(x).numpy(), [[[[1.0, 0.0]]]])


def test_depth_skips_blocks_as_identity():
    blocks = [DecompositionBlock(1, (1, 1), ops=("std",), widths=(1.0,)) for _ in range(2)]
    stage = ElasticDepth(blocks, min_depth=1)
    stage.build(tf.TensorShape((None, 1, 1, 1)))
    for block in blocks:  # each block adds BN beta = 1 to its input
        block.branch("std").bn_b.beta.assign([1.0])
        for w in block.branch("std").trainable_weights:
            if "kernel" in w.name:
                w.assign(tf.zeros_like(w))
    x = np.array([[[[2.0]]]], "f")
    np.testing.assert_allclose(stage(x).numpy(), [[[[4.0]]]])  # two blocks
    stage.set_stage_choice([BlockChoice("std", 1.0)])
    np.testing.assert_allclose(stage(x).numpy(), [[[[3.0]]]])  # one block, the second is identity
    with pytest.raises(ConfigError, match="depth"):
        stage.set_choice(3)
