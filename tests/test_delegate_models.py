"""Converted tf_keras / tf.function models run with and without the delegate (TensorFlow builds the models).

Every case checks the delegate's outputs against the runtime's own kernels (XNNPACK) within 1e-4 and
that the delegate claimed exactly the expected nodes, so a model silently left to the runtime fails.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from delegate_helpers import assert_close, delegate_library, run_model

from tflite_adaspring import delegates

L = keras.layers


@pytest.fixture(scope="module")
def library() -> Path:
    return delegate_library()


def randomize(model: keras.Model, seed: int) -> keras.Model:
    """Random weights everywhere (non-zero biases, non-trivial batch-norm statistics)."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = rng.standard_normal(weight.shape).astype(np.float32) * 0.3
        if "moving_variance" in weight.name:
            value = np.abs(value) + 0.5
        weight.assign(value)
    return model


def convert_keras(model: keras.Model) -> bytes:
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def conv2d_model() -> keras.Model:
    return keras.Sequential(
        [
            L.Input((12, 10, 3)),
            L.Conv2D(8, 3, padding="same", activation="relu"),
            L.Conv2D(6, (3, 2), strides=(2, 1), padding="valid", activation="relu6"),
            L.Conv2D(4, 1),
        ]
    )


def conv2d_batchnorm_model() -> keras.Model:
    return keras.Sequential(
        [L.Input((10, 10, 3)), L.Conv2D(8, 3, use_bias=False), L.BatchNormalization(), L.ReLU(), L.Conv2D(2, 3)]
    )


def conv1d_model() -> keras.Model:
    return keras.Sequential(
        [
            L.Input((128, 6)),
            L.Conv1D(16, 5, padding="same", activation="relu"),
            L.Conv1D(8, 3, strides=2, activation="relu6"),
            L.Conv1D(8, 3, dilation_rate=2, padding="same"),
            L.GlobalAveragePooling1D(),
            L.Dense(5),
        ]
    )


def depthwise_model() -> keras.Model:
    return keras.Sequential(
        [
            L.Input((9, 9, 3)),
            L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu"),
            L.DepthwiseConv2D(3, strides=2, activation="relu6"),
            L.SeparableConv2D(4, 3, padding="same"),
        ]
    )


def dense_model() -> keras.Model:
    return keras.Sequential(
        [L.Input((20,)), L.Dense(32, activation="relu"), L.Dense(16, activation="relu6"), L.Dense(4)]
    )


def dilated_raw_ops_model() -> bytes:
    """tf.nn ops with dilation factors (Keras layers lower dilation to SPACE_TO_BATCH instead)."""
    rng = np.random.default_rng(7)
    module = tf.Module()
    module.w = tf.Variable(rng.standard_normal((3, 3, 4, 5)).astype(np.float32))
    module.b = tf.Variable(rng.standard_normal(5).astype(np.float32))
    module.dw = tf.Variable(rng.standard_normal((3, 3, 5, 2)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 4], tf.float32)])
    def dilated(x):
        y = tf.nn.relu(tf.nn.conv2d(x, module.w, strides=1, padding="SAME", dilations=[1, 2, 3, 1]) + module.b)
        return tf.nn.depthwise_conv2d(y, module.dw, strides=[1, 1, 1, 1], padding="VALID", dilations=[2, 2])

    return tf.lite.TFLiteConverter.from_concrete_functions([dilated.get_concrete_function()], module).convert()


# name -> (model bytes factory, input shape, expected claims (conv2d, depthwise_conv2d, fully_connected))
CASES: dict[str, tuple[Callable[[], bytes], tuple[int, ...], tuple[int, int, int]]] = {
    "conv2d_same_valid_strided": (lambda: convert_keras(randomize(conv2d_model(), 1)), (1, 12, 10, 3), (3, 0, 0)),
    "conv2d_batchnorm_folded": (
        lambda: convert_keras(randomize(conv2d_batchnorm_model(), 2)),
        (1, 10, 10, 3),
        (2, 0, 0),
    ),
    "conv1d_dense": (lambda: convert_keras(randomize(conv1d_model(), 3)), (1, 128, 6), (3, 0, 1)),
    "depthwise_multiplier": (lambda: convert_keras(randomize(depthwise_model(), 4)), (1, 9, 9, 3), (1, 3, 0)),
    "dense": (lambda: convert_keras(randomize(dense_model(), 5)), (1, 20), (0, 0, 3)),
    "dilated_raw_ops": (dilated_raw_ops_model, (1, 16, 16, 4), (1, 1, 0)),
}


@pytest.fixture(scope="module")
def converted() -> dict[str, bytes]:
    return {name: factory() for name, (factory, _, _) in CASES.items()}


def claims(stats: delegates.DelegateStats) -> tuple[int, int, int]:
    return stats.claimed_conv2d, stats.claimed_depthwise_conv2d, stats.claimed_fully_connected


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", list(CASES))
def test_delegate_matches_builtin_kernels(library, converted, name, threads):
    _, shape, expected_claims = CASES[name]
    model = converted[name]
    rng = np.random.default_rng(threads)
    inputs = [rng.standard_normal(shape).astype(np.float32) for _ in range(2)]
    delegate = delegates.load(num_threads=threads, library_path=library)
    for x in inputs:
        (reference,) = run_model(model, [x])
        (actual,) = run_model(model, [x], [delegate])
        assert_close(actual, reference, f"{name}, {threads} thread(s)")
    stats = delegates.stats(delegate, library)
    assert stats.abi_refusals == 0
    assert claims(stats) == tuple(2 * n for n in expected_claims), f"claims per run: {expected_claims}"
    assert stats.skipped_candidates == 0
    assert stats.node_invokes == 2 * sum(expected_claims)


@pytest.mark.parametrize(("name", "batch_shape"), [("dense", [5, 20]), ("conv1d_dense", [3, 128, 6])])
def test_resized_batch(library, converted, name, batch_shape):
    model = converted[name]
    x = np.random.default_rng(11).standard_normal(batch_shape).astype(np.float32)
    delegate = delegates.load(num_threads=2, library_path=library)
    (reference,) = run_model(model, [x], input_shapes=[batch_shape])
    (actual,) = run_model(model, [x], [delegate], input_shapes=[batch_shape])
    assert reference.shape[0] == batch_shape[0]
    assert_close(actual, reference, f"{name} resized to {batch_shape}")
    assert delegates.stats(delegate, library).claimed_nodes == sum(CASES[name][2])


# Signature key -> width of the slimmable test network.
WIDTHS = {"full": 32, "half": 16, "quarter": 8}


class SlimmableCnn(tf.Module):
    """A 1-D CNN whose signatures compute prefix widths of the same variables (shared weights)."""

    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(9)

        def variable(*shape: int) -> tf.Variable:
            return tf.Variable(rng.standard_normal(shape).astype(np.float32) * 0.3)

        self.w1, self.b1 = variable(1, 5, 6, 32), variable(32)
        self.w2, self.b2 = variable(1, 3, 32, 32), variable(32)
        self.fc, self.fc_bias = variable(32, 4), variable(4)

    def _forward(self, x: tf.Tensor, width: int) -> dict[str, tf.Tensor]:
        y = tf.expand_dims(x, 1)
        y = tf.nn.relu(tf.nn.conv2d(y, self.w1[..., :width], 1, "SAME") + self.b1[:width])
        y = tf.nn.relu6(tf.nn.conv2d(y, self.w2[:, :, :width, :width], 1, "SAME") + self.b2[:width])
        y = tf.reduce_mean(y, axis=[1, 2])
        return {"logits": tf.matmul(y, self.fc[:width]) + self.fc_bias}

    def concrete_functions(self) -> list:
        """One concrete function per width; the distinct function names become the signature keys."""
        spec = tf.TensorSpec([1, 128, 6], tf.float32, name="x")
        functions = []
        for key, width in WIDTHS.items():

            def forward(x: tf.Tensor, width: int = width) -> dict[str, tf.Tensor]:
                return self._forward(x, width)

            forward.__name__ = key
            functions.append(tf.function(forward, input_signature=[spec]).get_concrete_function())
        return functions


@pytest.fixture(scope="module")
def multi_signature_model() -> bytes:
    module = SlimmableCnn()
    return tf.lite.TFLiteConverter.from_concrete_functions(module.concrete_functions(), module).convert()


def test_multi_signature_model(library, multi_signature_model):
    from ai_edge_litert.interpreter import Interpreter

    x = np.random.default_rng(12).standard_normal((1, 128, 6)).astype(np.float32)
    builtin = Interpreter(model_content=multi_signature_model)
    delegate = delegates.load(num_threads=2, library_path=library)
    delegated = Interpreter(model_content=multi_signature_model, experimental_delegates=[delegate])
    assert set(delegated.get_signature_list()) == set(WIDTHS)
    stats = delegates.stats(delegate, library)
    assert stats.prepare_calls == 3, "the delegate's Prepare runs once per signature subgraph"
    assert claims(stats) == (6, 0, 3)
    for key in WIDTHS:
        expected = builtin.get_signature_runner(key)(x=x)["logits"]
        actual = delegated.get_signature_runner(key)(x=x)["logits"]
        assert_close(actual, expected, f"signature {key}")
    assert delegates.stats(delegate, library).partition_invokes >= 3


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_tensorflow_interpreter_with_tensorflow_load_delegate(library, converted):
    model = converted["conv1d_dense"]
    x = np.random.default_rng(13).standard_normal((1, 128, 6)).astype(np.float32)
    delegate = tf.lite.experimental.load_delegate(str(library), {"num_threads": "2"})
    interpreter = tf.lite.Interpreter(model_content=model, experimental_delegates=[delegate])
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    actual = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    (reference,) = run_model(model, [x])
    assert_close(actual, reference, "tf.lite.Interpreter + delegate")
    stats = delegates.stats(delegate, library)
    assert claims(stats) == (3, 0, 1) and stats.abi_refusals == 0 and stats.partition_invokes > 0


def test_tensorflow_load_delegate_reports_bad_options(library):
    with pytest.raises(ValueError, match="unknown option 'threads'"):
        tf.lite.experimental.load_delegate(str(library), {"threads": "2"})


def test_model_with_run_time_shapes_loads_and_leaves_placeholder_nodes(library):
    # Dense on a 3-D input: the converter computes the FC input shape at run time (SHAPE -> RESHAPE), so the
    # FC nodes carry placeholder shapes when the delegate is applied; they stay with the runtime.
    model = convert_keras(randomize(keras.Sequential([L.Input((5, 8)), L.Dense(4), L.Dense(3)]), 6))
    x = np.random.default_rng(14).standard_normal((1, 5, 8)).astype(np.float32)
    delegate = delegates.load(library_path=library)
    (reference,) = run_model(model, [x])
    (actual,) = run_model(model, [x], [delegate])
    assert_close(actual, reference, "run-time shapes")
    stats = delegates.stats(delegate, library)
    assert stats.abi_refusals == 0 and stats.claimed_nodes == 0 and stats.skipped_candidates == 2
