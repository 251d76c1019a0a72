"""TFMOT storage pruning of a materialised subnet: the zeros are where magnitude pruning puts them."""

import numpy as np
import pytest
import tf_keras

from tflite_adaspring.operators.pruning import gzip_size, prune_for_storage


def _model(kernel):
    inputs = tf_keras.Input((kernel.shape[0],))
    dense = tf_keras.layers.Dense(kernel.shape[1], use_bias=False)
    model = tf_keras.Model(inputs, dense(inputs))
    dense.set_weights([kernel])
    return model


def test_unstructured_prunes_the_smallest_magnitudes():
    kernel = np.array([[1.0, -8.0], [3.0, 0.5], [-6.0, 2.0], [7.0, -4.0]], "f")
    pruned = prune_for_storage(_model(kernel), sparsity=0.5)
    out = pruned.get_weights()[0]
    # the 4 largest magnitudes (8, 7, 6, 4) survive unchanged up to the tiny fine-tune step
    assert np.count_nonzero(out) == 4
    np.testing.assert_array_equal(out != 0, np.abs(kernel) >= 4)
    np.testing.assert_allclose(out[out != 0], kernel[np.abs(kernel) >= 4], atol=1e-3)


def test_two_of_four_keeps_two_per_group():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(8, 4)).astype("f")
    out = prune_for_storage(_model(kernel), pattern="2:4").get_weights()[0]
    # TFMOT groups four consecutive weights along the input axis of each output
    groups = (out != 0).T.reshape(-1, 4)
    assert (groups.sum(axis=1) == 2).all()


def test_pruning_buys_compressibility_and_rejects_bad_arguments():
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(64, 64)).astype("f")
    dense_bytes = kernel.tobytes()
    pruned_bytes = prune_for_storage(_model(kernel), sparsity=0.75).get_weights()[0].tobytes()
    assert gzip_size(pruned_bytes) < 0.6 * gzip_size(dense_bytes)
    with pytest.raises(ValueError, match="pattern"):
        prune_for_storage(_model(kernel), pattern="4:8")
    with pytest.raises(ValueError, match="sparsity"):
        prune_for_storage(_model(kernel), sparsity=1.5)
